/* Integration test of kfleet-validate's audit events against the real broker and registry: a
 * contract with a min_rows rule over a 10 s window gets fewer rows than its minimum; the
 * worker writes exactly a start event, one alert event for that window and a stop event to
 * <p>.audit, each checked field by field after decoding it through the registry with a
 * read_committed consumer. With audit.enabled=false nothing more is written. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>

#include "kf_test_env.h"
#include "kfleet/audit.h"
#include "vt.h"

#define NEVENTS 5
#define MIN     10
#define WINDOW0 1700000000000LL /* a multiple of the 10 s window */
/* Record times near the end of [WINDOW0, WINDOW0 + 10 s): a quiet stream closes that window
 * on the clock about half a second later, and the next (empty, so also breached) one only
 * 10 s after that, far after the test stopped the worker. */
#define TS(i) (WINDOW0 + 9500 + (int64_t)(i)*10)

typedef struct fx {
    const char *bootstrap, *registry_url, *validate_bin;
    char prefix[96], topic[160], audit[160], contract[256], log[256];
    char set_boot[200], set_reg[300], set_prefix[160];
    kf_registry *reg;
    kf_serde *serde;
} fx;

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void produce_events(fx *f)
{
    kf_error err;
    kf_table *t = kf_table_new(f->prefix, "shop", NULL, "orders", &err);
    assert_non_null(t);
    kf_column id = {.name = "id", .pk_order = 1};
    assert_int_equal(kf_coltype_parse("bigint", &id, &err), KF_OK);
    assert_int_equal(kf_table_add_column(t, &id, &err), KF_OK);
    char *ks = kf_table_key_schema(t, &err), *es = kf_table_envelope_schema(t, &err);
    char subject[256];
    int32_t key_id, value_id;
    snprintf(subject, sizeof(subject), "%s-key", f->topic);
    assert_int_equal(kf_serde_register(f->serde, subject, ks, &key_id, &err), KF_OK);
    snprintf(subject, sizeof(subject), "%s-value", f->topic);
    assert_int_equal(kf_serde_register(f->serde, subject, es, &value_id, &err), KF_OK);
    free(ks);
    free(es);
    kf_event_writer *w = kf_event_writer_new(f->serde, t, key_id, value_id, &err);
    assert_non_null(w);
    kf_source src = {.version = "0.1.0",
                     .connector = "sim",
                     .name = f->prefix,
                     .db = "shop",
                     .table = "orders",
                     .snapshot = "false",
                     .has_seq = true,
                     .seq = 1};
    assert_int_equal(kf_event_writer_set_source(w, &src, &err), KF_OK);
    const char *kv[] = {"bootstrap.servers", f->bootstrap};
    kf_producer *p = kf_producer_new(kv, 1, NULL, &err);
    assert_non_null(p);
    for (int i = 1; i <= NEVENTS; i++) {
        kf_buf key = {0}, value = {0};
        assert_int_equal(kf_event_writer_begin(w, KF_OP_CREATE, TS(i), &err), KF_OK);
        assert_int_equal(kf_event_set_int(w, KF_AFTER, 0, i, &err), KF_OK);
        assert_int_equal(kf_event_writer_encode(w, &key, &value, &err), KF_OK);
        kf_produce_msg msg = {.topic = f->topic,
                              .partition = 0,
                              .key = key.data,
                              .key_len = key.len,
                              .value = value.data,
                              .value_len = value.len,
                              .timestamp_ms = TS(i)};
        assert_int_equal(kf_producer_produce(p, &msg, NULL, &err), KF_OK);
        kf_buf_free(&key);
        kf_buf_free(&value);
    }
    assert_int_equal(kf_producer_flush(p, 30000, &err), KF_OK);
    assert_false(kf_producer_failed(p, NULL));
    kf_producer_destroy(p);
    kf_event_writer_destroy(w);
    kf_table_destroy(t);
}

static int setup(void **state)
{
    const char *bootstrap = kf_test_env("KFLEET_BOOTSTRAP");
    const char *registry_url = kf_test_env("KFLEET_REGISTRY_URL");
    const char *validate_bin = kf_test_env("KFLEET_VALIDATE_BIN");
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->bootstrap = bootstrap;
    f->registry_url = registry_url;
    f->validate_bin = validate_bin;
    char name[80];
    kf_test_unique_name(name, sizeof(name), "vau");
    snprintf(f->prefix, sizeof(f->prefix), "%s", name);
    snprintf(f->topic, sizeof(f->topic), "%s.shop.orders", name);
    snprintf(f->audit, sizeof(f->audit), "%s.audit", name);
    snprintf(f->contract, sizeof(f->contract), "/tmp/%s-contract.yaml", name);
    snprintf(f->log, sizeof(f->log), "/tmp/%s.log", name);
    snprintf(f->set_boot, sizeof(f->set_boot), "kafka.bootstrap.servers=%s", bootstrap);
    snprintf(f->set_reg, sizeof(f->set_reg), "registry.url=%s", registry_url);
    snprintf(f->set_prefix, sizeof(f->set_prefix), "topic.prefix=%s", name);
    char text[256];
    snprintf(text, sizeof(text),
             "contract: orders\nmatch:\n  tables: [shop.orders]\ncolumns:\n  id: [not_null]\n"
             "dataset:\n  - min_rows: %d\n    window: 10s\n",
             MIN);
    write_file(f->contract, text);
    kf_error err;
    kf_registry_config rc = {.url = registry_url};
    assert_non_null(f->reg = kf_registry_new(&rc, &err));
    assert_non_null(f->serde = kf_serde_new(f->reg, &err));
    const char *akv[] = {"bootstrap.servers", bootstrap};
    kf_admin *a = kf_admin_new(akv, 1, &err);
    assert_non_null(a);
    kf_topic_spec spec = {.name = f->topic, .partitions = 1, .replication_factor = -1};
    assert_int_equal(kf_admin_create_topics(a, &spec, 1, false, 30000, &err), KF_OK);
    kf_admin_destroy(a);
    produce_events(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char valid[200], dlq[340];
    snprintf(valid, sizeof(valid), "%s.valid.shop.orders", f->prefix);
    snprintf(dlq, sizeof(dlq), "%s.dlq.%s", f->prefix, f->topic);
    const char *names[] = {f->topic, valid, dlq, f->audit};
    const char *akv[] = {"bootstrap.servers", f->bootstrap};
    kf_error err;
    kf_admin *a = kf_admin_new(akv, 1, &err);
    if (a)
        kf_admin_delete_topics(a, names, 4, true, 30000, &err);
    kf_admin_destroy(a);
    kf_serde_destroy(f->serde);
    kf_registry_destroy(f->reg);
    remove(f->contract);
    remove(f->log);
    free(f);
    return 0;
}

/* The audit events so far (0 when the topic does not exist yet). */
static int read_audit(fx *f, vt_audit *out, size_t max)
{
    int n = vt_audit_read(f->bootstrap, f->serde, f->audit, out, max, 30000);
    return n < 0 ? 0 : n;
}

static json_t *details_of(const vt_audit *a)
{
    assert_non_null(a->details);
    json_error_t jerr;
    json_t *d = json_loads(a->details, 0, &jerr);
    if (!d || !json_is_object(d))
        fail_msg("details of %s are not a JSON object: %s", a->action, a->details);
    return d;
}

static long long jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("details have no integer \"%s\"", key);
    return json_integer_value(v);
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        fail_msg("details have no string \"%s\"", key);
    return json_string_value(v);
}

/* Fields every event of one worker shares. */
static void check_common(fx *f, const vt_audit *a, const char *instance, int32_t schema_id,
                         int64_t t0, int64_t t1)
{
    assert_int_equal(a->schema_id, schema_id);
    assert_true(vt_is_uuid_v4(a->id));
    assert_string_equal(a->program, "kfleet-validate");
    assert_string_equal(a->instance, instance);
    assert_string_equal(a->key, instance);
    if (a->ts_ms < t0 || a->ts_ms > t1)
        fail_msg("%s at %lld is outside the run [%lld, %lld]", a->action, (long long)a->ts_ms,
                 (long long)t0, (long long)t1);
    /* none of these events is about a record, table or schema */
    assert_null(a->topic);
    assert_null(a->db);
    assert_null(a->table);
    assert_false(a->has_partition);
    assert_false(a->has_offset);
    assert_false(a->has_schema_id);
    (void)f;
}

static void test_min_rows_breach_start_stop(void **state)
{
    fx *f = *state;
    char group[160];
    snprintf(group, sizeof(group), "%s-g", f->prefix);
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
                    "--log-level",
                    "warn",
                    NULL};
    int64_t t0 = vt_wall_ms();
    pid_t pid = vt_spawn(argv, f->log);
    assert_true(pid > 0);
    /* the window closes on the clock once the stream is quiet; then stop at once */
    static vt_audit ev[16];
    int64_t deadline = vt_now_ms() + 90000;
    bool alerted = false;
    while (!alerted && vt_now_ms() < deadline) {
        int n = read_audit(f, ev, 16);
        for (int i = 0; i < n; i++)
            alerted = alerted || strcmp(ev[i].action, "alert") == 0;
        vt_audit_free(ev, (size_t)n);
        if (!alerted)
            usleep(200000);
    }
    kill(pid, SIGTERM);
    assert_int_equal(vt_wait(pid, 60000), 0);
    int64_t t1 = vt_wall_ms();
    assert_true(alerted);

    int n = read_audit(f, ev, 16);
    if (n != 3) {
        for (int i = 0; i < n; i++)
            fprintf(stderr, "event %d: %s %s\n", i, ev[i].action, ev[i].message);
        fail_msg("expected start, alert, stop; got %d events", n);
    }
    char host[256] = "", instance[300];
    gethostname(host, sizeof(host) - 1);
    snprintf(instance, sizeof(instance), "%s:%ld", host, (long)pid);
    /* the schema the records name is the one registered under <audit topic>-value */
    char subject[200];
    snprintf(subject, sizeof(subject), "%s-value", f->audit);
    int32_t schema_id = -1;
    kf_error err;
    assert_int_equal(kf_registry_lookup(f->reg, subject, kf_audit_schema(), &schema_id, NULL, &err),
                     KF_OK);
    for (int i = 0; i < 3; i++)
        check_common(f, &ev[i], instance, schema_id, t0, t1);
    assert_string_not_equal(ev[0].id, ev[1].id);
    assert_string_not_equal(ev[1].id, ev[2].id);
    assert_string_not_equal(ev[0].id, ev[2].id);
    assert_true(ev[0].ts_ms <= ev[1].ts_ms && ev[1].ts_ms <= ev[2].ts_ms);

    /* start */
    const vt_audit *s = &ev[0];
    assert_string_equal(s->action, "start");
    assert_string_equal(s->level, "info");
    assert_string_equal(s->message, "kfleet-validate started");
    assert_null(s->rule_id);
    assert_false(s->has_count);
    json_t *d = details_of(s);
    assert_string_equal(jstr(d, "group"), group);
    assert_true(json_is_true(json_object_get(d, "eos")));
    assert_int_equal(jint(d, "batch_size"), 2000);
    assert_true(strncmp(jstr(d, "transactional_id"), group, strlen(group)) == 0);
    assert_true(jstr(d, "version")[0] != '\0');
    json_t *contracts = json_object_get(d, "contracts");
    assert_int_equal(json_array_size(contracts), 1);
    assert_string_equal(json_string_value(json_array_get(contracts, 0)), "orders");
    assert_int_equal(json_array_size(json_object_get(d, "topics")), 0);
    json_decref(d);

    /* the breach: 5 rows in [WINDOW0, WINDOW0 + 10 s), minimum 10 */
    const vt_audit *b = &ev[1];
    assert_string_equal(b->action, "alert");
    assert_string_equal(b->level, "warn");
    char want[256];
    snprintf(
        want, sizeof(want),
        "dataset rule breached: rule orders.min_rows (min_rows %d): %d rows in [%lld, %lld) ms",
        MIN, NEVENTS, (long long)WINDOW0, (long long)WINDOW0 + 10000);
    assert_string_equal(b->message, want);
    assert_non_null(b->rule_id);
    assert_string_equal(b->rule_id, "orders.min_rows");
    assert_true(b->has_count);
    assert_int_equal(b->count, NEVENTS);
    d = details_of(b);
    assert_string_equal(jstr(d, "kind"), "min_rows");
    assert_int_equal(jint(d, "limit"), MIN);
    assert_int_equal(jint(d, "rows"), NEVENTS);
    assert_string_equal(jstr(d, "window"), "time");
    assert_int_equal(jint(d, "window_start_ms"), WINDOW0);
    assert_int_equal(jint(d, "window_end_ms"), WINDOW0 + 10000);
    assert_int_equal(json_object_size(d), 6);
    json_decref(d);

    /* stop: what the run did */
    const vt_audit *e = &ev[2];
    assert_string_equal(e->action, "stop");
    assert_string_equal(e->level, "info");
    assert_string_equal(e->message, "kfleet-validate stopped");
    assert_null(e->rule_id);
    assert_true(e->has_count);
    assert_int_equal(e->count, NEVENTS);
    d = details_of(e);
    assert_int_equal(jint(d, "records_in"), NEVENTS);
    assert_int_equal(jint(d, "valid"), NEVENTS);
    assert_int_equal(jint(d, "quarantined"), 0);
    assert_int_equal(jint(d, "undecodable"), 0);
    assert_int_equal(jint(d, "unchecked"), 0);
    assert_true(jint(d, "batches") >= 1);
    assert_int_equal(jint(d, "aborted_batches"), 0);
    assert_int_equal(jint(d, "exit_code"), 0);
    json_decref(d);
    vt_audit_free(ev, 3);

    /* audit.enabled=false: a second run of its own group (reading all five records again)
     * writes nothing, not even start and stop */
    char group2[170], max[8];
    snprintf(group2, sizeof(group2), "%s-off", f->prefix);
    snprintf(max, sizeof(max), "%d", NEVENTS);
    char *off[] = {(char *)f->validate_bin,
                   "--contract",
                   f->contract,
                   "--set",
                   f->set_prefix,
                   "--set",
                   f->set_boot,
                   "--set",
                   f->set_reg,
                   "--set",
                   "audit.enabled=false",
                   "--group",
                   group2,
                   "--max-records",
                   max,
                   "--log-level",
                   "warn",
                   NULL};
    assert_int_equal(vt_wait(vt_spawn(off, f->log), 90000), 0);
    n = read_audit(f, ev, 16);
    assert_int_equal(n, 3);
    vt_audit_free(ev, (size_t)n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_min_rows_breach_start_stop, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
