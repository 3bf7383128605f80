/* Integration test of kfleet-validate's alerts and of `check` over time ranges, against the
 * real broker and registry: the worker calls a fake webhook naming the failing rule, its count
 * and the DLQ topic; a dataset time window left open by a quiet stream closes on the clock and
 * alerts; --no-actions calls nothing but still logs; `check --from/--to` with ISO-8601 times
 * (and mixed with offsets) checks exactly the records in the range; check's Kafka client logs
 * through the project's logger. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>

#include "fake_webhook.h"
#include "kf_test_env.h"
#include "vt.h"

#define NEVENTS 30
/* Record times 1700000000510 .. 1700000000800: all in the 2 s window [..000000, ..002000) */
#define TS(id) (1700000000500LL + (int64_t)(id)*10)

typedef struct fx {
    const char *bootstrap, *registry_url, *validate_bin;
    char prefix[96], topic[160], dlq[300], contract[256], log[256], out[256];
    char set_boot[200], set_reg[300], set_prefix[160];
    kf_registry *reg;
    kf_serde *serde;
    kf_table *table;
    kf_event_writer *w;
    fake_webhook *hook;
} fx;

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* Events id 1..NEVENTS at TS(id) in one partition; every 10th has a null email. */
static void produce_events(fx *f)
{
    kf_error err;
    const char *kv[] = {"bootstrap.servers", f->bootstrap};
    kf_producer *p = kf_producer_new(kv, 1, NULL, &err);
    assert_non_null(p);
    for (int id = 1; id <= NEVENTS; id++) {
        kf_buf key = {0}, value = {0};
        assert_int_equal(kf_event_writer_begin(f->w, KF_OP_CREATE, TS(id), &err), KF_OK);
        assert_int_equal(kf_event_set_int(f->w, KF_AFTER, 0, id, &err), KF_OK);
        char email[64];
        snprintf(email, sizeof(email), "user%d@example.com", id);
        if (id % 10 == 0)
            assert_int_equal(kf_event_set_null(f->w, KF_AFTER, 1, &err), KF_OK);
        else
            assert_int_equal(kf_event_set_string(f->w, KF_AFTER, 1, email, strlen(email), &err),
                             KF_OK);
        assert_int_equal(kf_event_writer_encode(f->w, &key, &value, &err), KF_OK);
        kf_produce_msg msg = {.topic = f->topic,
                              .partition = 0,
                              .key = key.data,
                              .key_len = key.len,
                              .value = value.data,
                              .value_len = value.len,
                              .timestamp_ms = TS(id)};
        assert_int_equal(kf_producer_produce(p, &msg, NULL, &err), KF_OK);
        kf_buf_free(&key);
        kf_buf_free(&value);
    }
    assert_int_equal(kf_producer_flush(p, 30000, &err), KF_OK);
    assert_false(kf_producer_failed(p, NULL));
    kf_producer_destroy(p);
}

static int setup(void **state)
{
    /* the environment first: a missing variable fails the test before anything is allocated */
    const char *bootstrap = kf_test_env("KFLEET_BOOTSTRAP");
    const char *registry_url = kf_test_env("KFLEET_REGISTRY_URL");
    const char *validate_bin = kf_test_env("KFLEET_VALIDATE_BIN");
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    kf_error err;
    f->bootstrap = bootstrap;
    f->registry_url = registry_url;
    f->validate_bin = validate_bin;
    char name[80];
    kf_test_unique_name(name, sizeof(name), "va");
    snprintf(f->prefix, sizeof(f->prefix), "%s", name);
    snprintf(f->topic, sizeof(f->topic), "%s.shop.orders", name);
    snprintf(f->dlq, sizeof(f->dlq), "%s.dlq.%s", name, f->topic);
    snprintf(f->contract, sizeof(f->contract), "/tmp/%s-contract.yaml", name);
    snprintf(f->log, sizeof(f->log), "/tmp/%s.log", name);
    snprintf(f->out, sizeof(f->out), "/tmp/%s.out", name);
    snprintf(f->set_boot, sizeof(f->set_boot), "kafka.bootstrap.servers=%s", f->bootstrap);
    snprintf(f->set_reg, sizeof(f->set_reg), "registry.url=%s", f->registry_url);
    snprintf(f->set_prefix, sizeof(f->set_prefix), "topic.prefix=%s", f->prefix);
    write_file(f->contract, "contract: orders\nmatch:\n  tables: [shop.orders]\ncolumns:\n"
                            "  email: [not_null]\n  id: [not_null]\ndataset:\n"
                            "  - min_rows: 1000\n    window: 2s\n");
    kf_registry_config rc = {.url = f->registry_url};
    assert_non_null(f->reg = kf_registry_new(&rc, &err));
    assert_non_null(f->serde = kf_serde_new(f->reg, &err));
    assert_non_null(f->table = kf_table_new(f->prefix, "shop", NULL, "orders", &err));
    kf_column id = {.name = "id", .pk_order = 1}, email = {.name = "email", .nullable = true};
    assert_int_equal(kf_coltype_parse("bigint", &id, &err), KF_OK);
    assert_int_equal(kf_coltype_parse("text", &email, &err), KF_OK);
    assert_int_equal(kf_table_add_column(f->table, &id, &err), KF_OK);
    assert_int_equal(kf_table_add_column(f->table, &email, &err), KF_OK);
    char *ks = kf_table_key_schema(f->table, &err), *es = kf_table_envelope_schema(f->table, &err);
    char subject[256];
    int32_t key_id, value_id;
    snprintf(subject, sizeof(subject), "%s-key", f->topic);
    assert_int_equal(kf_serde_register(f->serde, subject, ks, &key_id, &err), KF_OK);
    snprintf(subject, sizeof(subject), "%s-value", f->topic);
    assert_int_equal(kf_serde_register(f->serde, subject, es, &value_id, &err), KF_OK);
    free(ks);
    free(es);
    assert_non_null(f->w = kf_event_writer_new(f->serde, f->table, key_id, value_id, &err));
    kf_source src = {.version = "0.1.0",
                     .connector = "sim",
                     .name = f->prefix,
                     .db = "shop",
                     .table = "orders",
                     .snapshot = "false",
                     .has_seq = true,
                     .seq = 1};
    assert_int_equal(kf_event_writer_set_source(f->w, &src, &err), KF_OK);
    const char *akv[] = {"bootstrap.servers", f->bootstrap};
    kf_admin *a = kf_admin_new(akv, 1, &err);
    assert_non_null(a);
    kf_topic_spec spec = {.name = f->topic, .partitions = 1, .replication_factor = -1};
    assert_int_equal(kf_admin_create_topics(a, &spec, 1, false, 30000, &err), KF_OK);
    kf_admin_destroy(a);
    produce_events(f);
    assert_non_null(f->hook = fake_webhook_start(0));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char valid[200], audit[110];
    snprintf(valid, sizeof(valid), "%s.valid.shop.orders", f->prefix);
    snprintf(audit, sizeof(audit), "%s.audit", f->prefix);
    const char *names[] = {f->topic, valid, f->dlq, audit};
    const char *akv[] = {"bootstrap.servers", f->bootstrap};
    kf_error err;
    kf_admin *a = kf_admin_new(akv, 1, &err);
    if (a)
        kf_admin_delete_topics(a, names, 4, true, 30000, &err);
    kf_admin_destroy(a);
    fake_webhook_stop(f->hook);
    kf_event_writer_destroy(f->w);
    kf_table_destroy(f->table);
    kf_serde_destroy(f->serde);
    kf_registry_destroy(f->reg);
    remove(f->contract);
    remove(f->out);
    free(f);
    return 0;
}

/* The "text" of every webhook request so far, joined by newlines. */
static void hook_texts(fx *f, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < fake_webhook_count(f->hook); i++) {
        fake_webhook_request r;
        assert_true(fake_webhook_request_get(f->hook, i, &r));
        json_t *o = json_loads(r.body, 0, NULL);
        assert_non_null(o);
        const char *t = json_string_value(json_object_get(o, "text"));
        assert_non_null(t);
        len += (size_t)snprintf(out + len, cap - len, "%s\n", t);
        json_decref(o);
    }
}

static bool wait_hook_text(fx *f, const char *needle, int timeout_ms)
{
    static char texts[64 * 1024];
    int64_t deadline = vt_now_ms() + timeout_ms;
    for (;;) {
        hook_texts(f, texts, sizeof(texts));
        if (strstr(texts, needle))
            return true;
        if (vt_now_ms() > deadline)
            return false;
        usleep(100000);
    }
}

/* The records the webhook calls so far reported quarantined by rule into dlq. */
static long rule_total(fx *f, const char *rule, const char *dlq)
{
    static char texts[64 * 1024];
    hook_texts(f, texts, sizeof(texts));
    char head[256];
    snprintf(head, sizeof(head), "- rule %s: ", rule);
    long total = 0;
    for (const char *p = strstr(texts, head); p; p = strstr(p, head)) {
        char *end;
        p += strlen(head);
        long n = strtol(p, &end, 10);
        if (strncmp(end, " to ", 4) == 0 && strncmp(end + 4, dlq, strlen(dlq)) == 0)
            total += n;
    }
    return total;
}

static void test_worker_alerts(void **state)
{
    fx *f = *state;
    char group[160];
    snprintf(group, sizeof(group), "%s-alerts", f->prefix);
    char *argv[] = {(char *)f->validate_bin,
                    "--contract",
                    f->contract,
                    "--set",
                    f->set_prefix,
                    "--set",
                    f->set_boot,
                    "--set",
                    f->set_reg,
                    "--group",
                    group,
                    "--alert-webhook",
                    f->hook->url,
                    "--set",
                    "validate.alert.interval=200ms",
                    "--log-level",
                    "warn",
                    NULL};
    pid_t pid = vt_spawn(argv, f->log);
    /* the three null emails, named with their rule and DLQ topic (in one or more calls) */
    int64_t deadline = vt_now_ms() + 90000;
    while (rule_total(f, "orders.email.not_null", f->dlq) < 3 && vt_now_ms() < deadline)
        usleep(100000);
    long quarantined = rule_total(f, "orders.email.not_null", f->dlq);
    /* the stream is quiet now: its only window [..000000, ..002000) never sees a later record
     * and closes on the clock about 1.2 s later */
    bool dataset_seen = wait_hook_text(f,
                                       "- dataset: rule orders.min_rows (min_rows 1000): 30 rows "
                                       "in [1700000000000, 1700000002000) ms",
                                       30000);
    kill(pid, SIGTERM);
    assert_int_equal(vt_wait(pid, 60000), 0);
    assert_int_equal(quarantined, 3);
    assert_true(dataset_seen);
    for (size_t i = 0; i < fake_webhook_count(f->hook); i++) {
        fake_webhook_request r;
        assert_true(fake_webhook_request_get(f->hook, i, &r));
        assert_int_equal(r.status, 200);
        assert_string_equal(r.method, "POST");
        assert_string_equal(r.content_type, "application/json");
    }
}

static void test_no_actions(void **state)
{
    fx *f = *state;
    char group[160], max[16];
    snprintf(group, sizeof(group), "%s-quiet", f->prefix);
    snprintf(max, sizeof(max), "%d", NEVENTS);
    char *argv[] = {(char *)f->validate_bin,
                    "--contract",
                    f->contract,
                    "--set",
                    f->set_prefix,
                    "--set",
                    f->set_boot,
                    "--set",
                    f->set_reg,
                    "--group",
                    group,
                    "--alert-webhook",
                    f->hook->url,
                    "--set",
                    "validate.alert.interval=100ms",
                    "--no-actions",
                    "--max-records",
                    max,
                    "--log-level",
                    "warn",
                    NULL};
    remove(f->log);
    assert_int_equal(vt_wait(vt_spawn(argv, f->log), 90000), 0);
    usleep(300000);
    assert_int_equal(fake_webhook_count(f->hook), 0);
    /* the alert is still logged */
    FILE *fp = fopen(f->log, "r");
    assert_non_null(fp);
    char line[2048];
    bool logged = false;
    while (fgets(line, sizeof(line), fp))
        logged = logged || (strstr(line, "records quarantined") &&
                            strstr(line, "rule=orders.email.not_null") && strstr(line, "count=3"));
    fclose(fp);
    assert_true(logged);
}

/* Runs `check` on the topic with from/to (NULL: not given) and JSON output; returns the exit
 * code and the report in *report (caller decrefs; NULL when the output is not JSON). */
static int run_check(fx *f, const char *from, const char *to, json_t **report)
{
    char *argv[24];
    size_t n = 0;
    argv[n++] = (char *)f->validate_bin;
    argv[n++] = "check";
    argv[n++] = "--contract";
    argv[n++] = f->contract;
    argv[n++] = "--topic";
    argv[n++] = f->topic;
    if (from) {
        argv[n++] = "--from";
        argv[n++] = (char *)from;
    }
    if (to) {
        argv[n++] = "--to";
        argv[n++] = (char *)to;
    }
    argv[n++] = "--set";
    argv[n++] = f->set_boot;
    argv[n++] = "--set";
    argv[n++] = f->set_reg;
    argv[n++] = "--output-format";
    argv[n++] = "json";
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(f->log, "a", stderr) || !freopen(f->out, "w", stdout))
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    int rc = vt_wait(pid, 60000);
    *report = json_load_file(f->out, 0, NULL);
    return rc;
}

static long long violations(json_t *report, const char *rule)
{
    json_t *rules = json_object_get(report, "rules"), *r;
    size_t i;
    json_array_foreach(rules, i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "id")), rule) == 0)
            return json_integer_value(json_object_get(r, "violations"));
    }
    fail_msg("rule %s is not in the report", rule);
    return -1;
}

static void test_check_time_range(void **state)
{
    fx *f = *state;
    json_t *rep;
    /* ids 10..19: TS(10) = .600 inclusive, TS(20) = .700 exclusive; id 10 has no email */
    assert_int_equal(run_check(f, "2023-11-14T22:13:20.600Z", "2023-11-14T22:13:20.700Z", &rep), 1);
    assert_non_null(rep);
    assert_int_equal(json_integer_value(json_object_get(rep, "records")), 10);
    assert_int_equal(violations(rep, "orders.email.not_null"), 1);
    assert_string_equal(json_string_value(json_object_get(rep, "result")), "fail");
    json_decref(rep);
    /* ids 11..19, with a time zone offset: nothing fails */
    assert_int_equal(
        run_check(f, "2023-11-15T00:13:20.610+02:00", "2023-11-14T22:13:20.700Z", &rep), 0);
    assert_non_null(rep);
    assert_int_equal(json_integer_value(json_object_get(rep, "records")), 9);
    assert_int_equal(violations(rep, "orders.email.not_null"), 0);
    json_decref(rep);
    /* an offset start and a time end: offsets 5.. (ids 6..) up to id 19 */
    assert_int_equal(run_check(f, "5", "2023-11-14T22:13:20.700Z", &rep), 1);
    assert_non_null(rep);
    assert_int_equal(json_integer_value(json_object_get(rep, "records")), 14);
    json_decref(rep);
    /* a start after the last record: an empty range passes */
    assert_int_equal(run_check(f, "2030-01-01", NULL, &rep), 0);
    assert_non_null(rep);
    assert_int_equal(json_integer_value(json_object_get(rep, "records")), 0);
    json_decref(rep);
    /* a date that is not one is a usage error */
    assert_int_equal(run_check(f, "2023-13-01", NULL, &rep), 2);
    json_decref(rep);
}

/* librdkafka's own lines come out through the project's logger (JSON here), not in
 * librdkafka's "%3|..." format. */
static void test_check_logs_through_kf_log(void **state)
{
    fx *f = *state;
    remove(f->log);
    char *argv[] = {(char *)f->validate_bin,
                    "check",
                    "--contract",
                    f->contract,
                    "--topic",
                    f->topic,
                    "--set",
                    "kafka.bootstrap.servers=127.0.0.1:1",
                    "--set",
                    f->set_reg,
                    "--log-format",
                    "json",
                    NULL};
    assert_int_equal(vt_wait(vt_spawn(argv, f->log), 60000), 2);
    FILE *fp = fopen(f->log, "r");
    assert_non_null(fp);
    char line[4096];
    int kafka_lines = 0;
    while (fgets(line, sizeof(line), fp)) {
        assert_false(line[0] == '%'); /* librdkafka's default log format */
        json_t *o = json_loads(line, 0, NULL);
        if (o && json_object_get(o, "facility"))
            kafka_lines++;
        json_decref(o);
    }
    fclose(fp);
    assert_true(kafka_lines > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_worker_alerts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_actions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_time_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_logs_through_kf_log, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
