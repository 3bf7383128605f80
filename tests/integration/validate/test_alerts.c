/* Integration test of kfleet-validate's alerts and of `check` over time ranges, against the
 * real broker and registry: the worker calls a fake webhook naming the failing rule, its count
 * and the DLQ topic; a dataset time window left open by a quiet stream closes on the clock and
 * alerts; --no-actions calls nothing but still logs; `check --from/--to` with ISO-8601 times
 * (and mixed with offsets) checks exactly the records in the range; check's Kafka client logs
 * through the project's logger. */
#include "fake_webhook.h"
#include "vt_fixture.h"

#define NEVENTS 30
/* Record times 1700000000510 .. 1700000000800: all in the 2 s window [..000000, ..002000) */
#define TS(id) (1700000000500LL + (int64_t)(id)*10)

typedef struct fx {
    vt_env env; /* first */
    fake_webhook *hook;
} fx;

static int setup(void **state)
{
    fx *f = vt_fixture_new(sizeof(*f), "va");
    assert_true(vt_write_file(f->env.contract, "contract: orders\nmatch:\n  tables: [shop.orders]\n"
                                               "columns:\n  email: [not_null]\n  id: [not_null]\n"
                                               "dataset:\n  - min_rows: 1000\n    window: 2s\n"));
    /* ids 1..NEVENTS at TS(id) in one partition; every 10th has a null email */
    vt_produce_orders(&f->env, 2, 1, NEVENTS, TS(0), 10);
    assert_non_null(f->hook = fake_webhook_start(0));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    fake_webhook_stop(f->hook);
    vt_fixture_free(&f->env, NULL, 0);
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

typedef struct hook_wait {
    fx *f;
    const char *needle;
} hook_wait;

static bool hook_has_text(void *ctx)
{
    static char texts[64 * 1024];
    hook_wait *w = ctx;
    hook_texts(w->f, texts, sizeof(texts));
    return strstr(texts, w->needle) != NULL;
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

/* Whether the webhook calls reported the three null emails quarantined. */
static bool three_quarantined(void *ctx)
{
    fx *f = ctx;
    return rule_total(f, "orders.email.not_null", f->env.dlq) >= 3;
}

static void test_worker_alerts(void **state)
{
    fx *f = *state;
    char group[160];
    snprintf(group, sizeof(group), "%s-alerts", f->env.prefix);
    const char *extra[] = {"--alert-webhook", f->hook->url, "--set",
                           "validate.alert.interval=200ms", NULL};
    pid_t pid = vt_spawn_validate(&f->env, f->env.contract, group, extra);
    /* the three null emails, named with their rule and DLQ topic (in one or more calls) */
    vt_poll(three_quarantined, f, 100, 90000);
    long quarantined = rule_total(f, "orders.email.not_null", f->env.dlq);
    /* the stream is quiet now: its only window [..000000, ..002000) never sees a later record
     * and closes on the clock about 1.2 s later */
    hook_wait dataset = {f, "- dataset: rule orders.min_rows (min_rows 1000): 30 rows "
                            "in [1700000000000, 1700000002000) ms"};
    bool dataset_seen = vt_poll(hook_has_text, &dataset, 100, 30000);
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
    snprintf(group, sizeof(group), "%s-quiet", f->env.prefix);
    snprintf(max, sizeof(max), "%d", NEVENTS);
    const char *extra[] = {
        "--alert-webhook", f->hook->url,    "--set", "validate.alert.interval=100ms",
        "--no-actions",    "--max-records", max,     NULL};
    remove(f->env.log);
    assert_int_equal(vt_wait(vt_spawn_validate(&f->env, f->env.contract, group, extra), 90000), 0);
    usleep(300000);
    assert_int_equal(fake_webhook_count(f->hook), 0);
    /* the alert is still logged */
    FILE *fp = fopen(f->env.log, "r");
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
    const char *extra[8];
    size_t n = 0;
    extra[n++] = "--output-format";
    extra[n++] = "json";
    if (from) {
        extra[n++] = "--from";
        extra[n++] = from;
    }
    if (to) {
        extra[n++] = "--to";
        extra[n++] = to;
    }
    extra[n] = NULL;
    int rc =
        vt_wait(vt_spawn_check(&f->env, f->env.contract, f->env.topic, extra, f->env.out), 60000);
    *report = json_load_file(f->env.out, 0, NULL);
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
    remove(f->env.log);
    /* no broker at that address */
    vt_env no_broker = f->env;
    snprintf(no_broker.set.boot, sizeof(no_broker.set.boot), "kafka.bootstrap.servers=127.0.0.1:1");
    const char *extra[] = {"--log-format", "json", NULL};
    assert_int_equal(
        vt_wait(vt_spawn_check(&no_broker, f->env.contract, f->env.topic, extra, NULL), 60000), 2);
    FILE *fp = fopen(f->env.log, "r");
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
