/* Integration test of kfleet-validate's audit events against the real broker and registry: a
 * contract with a min_rows rule over a 10 s window gets fewer rows than its minimum; the
 * worker writes exactly a start event, one alert event for that window and a stop event to
 * <p>.audit, each checked field by field after decoding it through the registry with a
 * read_committed consumer. With audit.enabled=false nothing more is written. */
#include "kfleet/audit.h"
#include "vt_fixture.h"

#define NEVENTS 5
#define MIN     10
#define WINDOW0 1700000000000LL /* a multiple of the 10 s window */
/* Record times near the end of [WINDOW0, WINDOW0 + 10 s): a quiet stream closes that window
 * on the clock about half a second later, and the next (empty, so also breached) one only
 * 10 s after that, far after the test stopped the worker. */
#define TS(i) (WINDOW0 + 9500 + (int64_t)(i)*10)

typedef vt_env fx;

static int setup(void **state)
{
    fx *f = vt_fixture_new(sizeof(*f), "vau");
    char text[256];
    snprintf(text, sizeof(text),
             "contract: orders\nmatch:\n  tables: [shop.orders]\ncolumns:\n  id: [not_null]\n"
             "dataset:\n  - min_rows: %d\n    window: 10s\n",
             MIN);
    assert_true(vt_write_file(f->contract, text));
    /* NEVENTS rows with only an id, at TS(1) .. TS(NEVENTS) */
    vt_produce_orders(f, 1, 1, NEVENTS, TS(0), 10);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    vt_fixture_free(*state, NULL, 0);
    return 0;
}

/* The audit events so far (0 when the topic does not exist yet). */
static int read_audit(fx *f, vt_audit *out, size_t max)
{
    int n = vt_audit_read(f->bootstrap, f->serde, f->audit, out, max, 30000);
    return n < 0 ? 0 : n;
}

/* Whether an alert event is among the audit events. */
static bool alerted(void *ctx)
{
    static vt_audit ev[16];
    int n = read_audit(ctx, ev, 16);
    bool found = false;
    for (int i = 0; i < n; i++)
        found = found || strcmp(ev[i].action, "alert") == 0;
    vt_audit_free(ev, (size_t)n);
    return found;
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
    int64_t t0 = vt_wall_ms();
    pid_t pid = vt_spawn_validate(f, f->contract, group, NULL);
    assert_true(pid > 0);
    /* the window closes on the clock once the stream is quiet; then stop at once */
    bool alert = vt_poll(alerted, f, 200, 90000);
    kill(pid, SIGTERM);
    assert_int_equal(vt_wait(pid, 60000), 0);
    int64_t t1 = vt_wall_ms();
    assert_true(alert);

    static vt_audit ev[16];
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
    json_t *d = vt_details(s);
    assert_string_equal(vt_jstr(d, "group"), group);
    assert_true(json_is_true(json_object_get(d, "eos")));
    assert_int_equal(vt_jint(d, "batch_size"), 2000);
    assert_true(strncmp(vt_jstr(d, "transactional_id"), group, strlen(group)) == 0);
    assert_true(vt_jstr(d, "version")[0] != '\0');
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
    d = vt_details(b);
    assert_string_equal(vt_jstr(d, "kind"), "min_rows");
    assert_int_equal(vt_jint(d, "limit"), MIN);
    assert_int_equal(vt_jint(d, "rows"), NEVENTS);
    assert_string_equal(vt_jstr(d, "window"), "time");
    assert_int_equal(vt_jint(d, "window_start_ms"), WINDOW0);
    assert_int_equal(vt_jint(d, "window_end_ms"), WINDOW0 + 10000);
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
    d = vt_details(e);
    assert_int_equal(vt_jint(d, "records_in"), NEVENTS);
    assert_int_equal(vt_jint(d, "valid"), NEVENTS);
    assert_int_equal(vt_jint(d, "quarantined"), 0);
    assert_int_equal(vt_jint(d, "undecodable"), 0);
    assert_int_equal(vt_jint(d, "unchecked"), 0);
    assert_true(vt_jint(d, "batches") >= 1);
    assert_int_equal(vt_jint(d, "aborted_batches"), 0);
    assert_int_equal(vt_jint(d, "exit_code"), 0);
    json_decref(d);
    vt_audit_free(ev, 3);

    /* audit.enabled=false: a second run of its own group (reading all five records again)
     * writes nothing, not even start and stop */
    char group2[170], max[8];
    snprintf(group2, sizeof(group2), "%s-off", f->prefix);
    snprintf(max, sizeof(max), "%d", NEVENTS);
    const char *off[] = {"--set", "audit.enabled=false", "--max-records", max, NULL};
    assert_int_equal(vt_wait(vt_spawn_validate(f, f->contract, group2, off), 90000), 0);
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
