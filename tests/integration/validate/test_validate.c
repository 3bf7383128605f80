/* Integration test of kfleet-validate against the real broker and registry: change events with
 * injected bad records and poison messages go through the worker; exactly the injected records
 * land in the DLQ with the right rule ids and headers, the rest byte-identical in the valid
 * topic; a kill -9 in the middle of a run leaves exactly-once outputs (read_committed); after
 * the contract is fixed, kfleet-replay brings the quarantined records into the valid topic
 * exactly once; `check` exit codes on the topic. */
#include <libpq-fe.h>

#include "kfleet/dlq.h"
#include "vt_fixture.h"

#define NGOOD_FIRST 300
#define NMORE       3000

typedef struct fx {
    vt_env env; /* first */
    char fixed[256];
    vt_orders orders; /* id, email, qty */
    kf_producer *p;
    vt_list sent; /* fate per produced record, by value */
    int64_t next_id;
} fx;

static void produce_raw(fx *f, const void *key, size_t klen, const void *value, size_t vlen,
                        vt_fate fate, const char *rule)
{
    kf_error err;
    static int n;
    char trace[32];
    snprintf(trace, sizeof(trace), "t-%d", n++);
    kf_header h = {"trace", trace, strlen(trace)};
    kf_produce_msg msg = {.topic = f->env.topic,
                          .partition = RD_KAFKA_PARTITION_UA,
                          .key = key,
                          .key_len = klen,
                          .value = value,
                          .value_len = vlen,
                          .header_list = &h,
                          .header_count = 1,
                          .timestamp_ms = 1700000000000 + n};
    assert_int_equal(kf_producer_produce(f->p, &msg, NULL, &err), KF_OK);
    vt_record *r = vt_list_push(&f->sent);
    r->key = vt_dup(key, klen);
    r->key_len = klen;
    r->value = vt_dup(value, vlen);
    r->value_len = vlen;
    r->fate = fate;
    snprintf(r->header, sizeof(r->header), "%s", trace);
    snprintf(r->rule, sizeof(r->rule), "%s", rule ? rule : "");
}

/* One create event; every 10th has a null email (not_null), every 15th a negative qty. */
static void produce_event(fx *f)
{
    kf_error err;
    int64_t id = ++f->next_id;
    bool null_email = id % 10 == 0, neg_qty = id % 15 == 0;
    kf_buf key = {0}, value = {0};
    vt_ok(vt_orders_encode(&f->orders, id, 1700000000000 + id, &key, &value, &err), &err);
    produce_raw(f, key.data, key.len, value.data, value.len,
                null_email || neg_qty ? VT_RULE : VT_VALID,
                null_email ? "orders.email.not_null"
                : neg_qty  ? "orders.qty.range"
                           : NULL);
    kf_buf_free(&key);
    kf_buf_free(&value);
}

static int setup(void **state)
{
    fx *f = vt_fixture_new(sizeof(*f), "vt");
    kf_error err;
    snprintf(f->fixed, sizeof(f->fixed), "/tmp/%s-fixed.yaml", f->env.prefix);
    assert_true(vt_write_file(f->env.contract, "contract: orders\nmatch:\n  tables: [shop.orders]\n"
                                               "columns:\n"
                                               "  email: [not_null, {regex: '^[^@]+@[^@]+$'}]\n"
                                               "  qty: [{range: {min: 0, max: 1000}}]\n"
                                               "  id: [not_null]\n"));
    /* the fix: negative quantities are refunds and allowed */
    assert_true(vt_write_file(f->fixed, "contract: orders\nmatch:\n  tables: [shop.orders]\n"
                                        "columns:\n"
                                        "  email: [not_null, {regex: '^[^@]+@[^@]+$'}]\n"
                                        "  qty: [{range: {min: -100, max: 1000}}]\n"
                                        "  id: [not_null]\n"));
    vt_ok(vt_orders_new(&f->orders, f->env.serde, f->env.prefix, f->env.topic, 3, &err), &err);
    vt_ok(vt_create_topic(f->env.bootstrap, f->env.topic, 3, 1, &err), &err);
    const char *kv[] = {"bootstrap.servers", f->env.bootstrap};
    assert_non_null(f->p = kf_producer_new(kv, 1, NULL, &err));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    kf_producer_destroy(f->p);
    vt_orders_free(&f->orders);
    vt_list_free(&f->sent);
    remove(f->fixed);
    vt_fixture_free(&f->env, NULL, 0);
    return 0;
}

static void flush(fx *f)
{
    kf_error err;
    assert_int_equal(kf_producer_flush(f->p, 30000, &err), KF_OK);
    assert_false(kf_producer_failed(f->p, NULL));
}

static int run_validate(fx *f, const char *contract, const char *max_records, int timeout_ms)
{
    const char *extra[] = {"--batch-size", "100", "--max-records", max_records, NULL};
    return vt_wait(vt_spawn_validate(&f->env, contract, f->env.prefix, extra), timeout_ms);
}

/* Runs `check` on contract and topic with extra flags; returns its exit code. */
static int run_check(fx *f, const char *contract, const char *topic, const char *const *extra)
{
    return vt_wait(vt_spawn_check(&f->env, contract, topic, extra, NULL), 60000);
}

/* Runs kfleet-replay with args on the DLQ; returns its exit code. */
static int run_replay(fx *f, const char *const *args)
{
    return vt_wait(vt_spawn_replay(&f->env, args, NULL), 120000);
}

/* Every produced record is in exactly one of valid/DLQ, exactly once, as expected. */
static void verify_outputs(fx *f, bool replayed)
{
    vt_list valid = {0}, dlq = {0};
    assert_true(vt_read_topic(f->env.bootstrap, f->env.valid, &valid, 60000));
    assert_true(vt_read_topic(f->env.bootstrap, f->env.dlq, &dlq, 60000));
    size_t expect_valid = 0, expect_dlq = 0;
    for (size_t i = 0; i < f->sent.n; i++) {
        vt_record *s = &f->sent.r[i];
        bool to_valid =
            s->fate == VT_VALID || (replayed && strcmp(s->rule, "orders.qty.range") == 0);
        size_t in_valid = 0, in_dlq = 0;
        vt_record *d = NULL;
        for (size_t j = 0; j < valid.n; j++)
            if (valid.r[j].value_len == s->value_len && s->value &&
                memcmp(valid.r[j].value, s->value, s->value_len) == 0) {
                in_valid++;
                /* byte-identical: key and headers too */
                assert_int_equal(valid.r[j].key_len, s->key_len);
                assert_memory_equal(valid.r[j].key, s->key, s->key_len);
                assert_string_equal(valid.r[j].header, s->header);
            }
        for (size_t j = 0; j < dlq.n; j++)
            if (dlq.r[j].value_len == s->value_len &&
                (s->value_len == 0 || memcmp(dlq.r[j].value, s->value, s->value_len) == 0)) {
                in_dlq++;
                d = &dlq.r[j];
            }
        if (to_valid) {
            expect_valid++;
            if (in_valid != 1)
                fail_msg("record %zu (%s) is %zu times in the valid topic", i, s->header, in_valid);
        } else {
            assert_int_equal(in_valid, 0);
        }
        if (s->fate != VT_VALID) {
            expect_dlq++;
            if (in_dlq != 1)
                fail_msg("record %zu (%s) is %zu times in the DLQ", i, s->header, in_dlq);
            assert_string_equal(d->header, s->header);
            assert_string_equal(d->origin, f->env.topic);
            assert_true(d->origin_offset >= 0);
            if (s->fate == VT_RULE) {
                assert_string_equal(d->rule, s->rule);
            } else {
                /* undecodable: the reserved rule id, the failure in the reason */
                assert_string_equal(d->rule, KF_DLQ_RULE_DECODE);
                assert_string_equal(d->reason, s->rule);
            }
        } else {
            assert_int_equal(in_dlq, 0);
        }
    }
    assert_int_equal(valid.n, expect_valid);
    assert_int_equal(dlq.n, expect_dlq);
    vt_list_free(&valid);
    vt_list_free(&dlq);
}

static void produce_poison(fx *f)
{
    /* wrong magic byte */
    produce_raw(f, "k1", 2, "\x01garbage", 8, VT_POISON, "bad_magic_byte");
    /* a schema id no registry knows */
    produce_raw(f, "k2", 2, "\x00\x7f\xff\xff\xf0\x02\x04", 7, VT_POISON, "unknown_schema_id");
    /* a real event cut in half */
    kf_error err;
    kf_buf key = {0}, value = {0};
    assert_int_equal(kf_event_writer_begin(f->orders.w, KF_OP_CREATE, 1, &err), KF_OK);
    assert_int_equal(kf_event_set_int(f->orders.w, KF_AFTER, 0, 999999, &err), KF_OK);
    assert_int_equal(kf_event_set_string(f->orders.w, KF_AFTER, 1, "x@y", 3, &err), KF_OK);
    assert_int_equal(kf_event_writer_encode(f->orders.w, &key, &value, &err), KF_OK);
    produce_raw(f, key.data, key.len, value.data, value.len - 12, VT_POISON, "undecodable_avro");
    kf_buf_free(&key);
    kf_buf_free(&value);
}

static void test_validate_end_to_end(void **state)
{
    fx *f = *state;
    for (int i = 0; i < NGOOD_FIRST / 2; i++)
        produce_event(f);
    produce_poison(f);
    for (int i = 0; i < NGOOD_FIRST / 2; i++)
        produce_event(f);
    flush(f);
    char max[32];
    snprintf(max, sizeof(max), "%zu", f->sent.n);
    assert_int_equal(run_validate(f, f->env.contract, max, 120000), 0);
    verify_outputs(f, false);

    /* check mode on the input: violations found -> exit 1; the fixed contract still sees the
     * null emails and the poison -> 1; a missing contract -> 2 */
    const char *json[] = {"--output-format", "json", NULL};
    assert_int_equal(run_check(f, f->env.contract, f->env.topic, json), 1);
    const char *range[] = {"--from", "0", "--to", "1", NULL};
    int rc = run_check(f, f->env.contract, f->env.topic, range);
    assert_true(rc == 0 || rc == 1);
    assert_int_equal(run_check(f, "/nonexistent.yaml", f->env.topic, NULL), 2);
    assert_int_equal(run_check(f, f->env.contract, "kfleet-no-such-topic-xyz", NULL), 2);

    /* kill -9 in the middle of a larger run, then a restart: still exactly once */
    for (int i = 0; i < NMORE; i++)
        produce_event(f);
    flush(f);
    const char *batch50[] = {"--batch-size", "50", NULL};
    pid_t pid = vt_spawn_validate(&f->env, f->env.contract, f->env.prefix, batch50);
    /* wait until some but not all of the new records are committed */
    const char *valid[] = {f->env.valid}, *outputs[] = {f->env.valid, f->env.dlq};
    assert_true(vt_wait_records(f->env.bootstrap, valid, 1, NGOOD_FIRST + 1, 50, 60000));
    kill(pid, SIGKILL);
    assert_int_equal(vt_wait(pid, 10000), 128 + SIGKILL);
    /* the restart consumes the rest: every record lands in one of the outputs */
    pid = vt_spawn_validate(&f->env, f->env.contract, f->env.prefix, batch50);
    assert_true(vt_wait_records(f->env.bootstrap, outputs, 2, f->sent.n, 200, 120000));
    kill(pid, SIGTERM);
    assert_int_equal(vt_wait(pid, 60000), 0);
    verify_outputs(f, false);

    /* the fix: replay the range violations and validate them with the fixed contract */
    char replay_group[160];
    snprintf(replay_group, sizeof(replay_group), "%s-replay", f->env.prefix);
    const char *dry[] = {"--dry-run", "--rule", "orders.qty.range", "--group", replay_group, NULL};
    assert_int_equal(run_replay(f, dry), 0);
    const char *replay[] = {"--rule", "orders.qty.range", "--group", replay_group, NULL};
    assert_int_equal(run_replay(f, replay), 0);
    /* running it again replays nothing more: it resumes from its group's offsets */
    assert_int_equal(run_replay(f, replay), 0);
    size_t nrange = 0;
    for (size_t i = 0; i < f->sent.n; i++)
        if (strcmp(f->sent.r[i].rule, "orders.qty.range") == 0)
            nrange++;
    vt_list in = {0};
    assert_true(vt_read_topic(f->env.bootstrap, f->env.topic, &in, 60000));
    assert_int_equal(in.n, f->sent.n + nrange);
    size_t replayed = 0;
    for (size_t i = 0; i < in.n; i++)
        if (in.r[i].replay_count == 1) {
            replayed++;
            assert_string_equal(in.r[i].rule, ""); /* error headers are gone */
        }
    assert_int_equal(replayed, nrange);
    vt_list_free(&in);
    snprintf(max, sizeof(max), "%zu", nrange);
    const char *upto[] = {"--max-records", max, NULL};
    assert_int_equal(vt_wait(vt_spawn_validate(&f->env, f->fixed, f->env.prefix, upto), 120000), 0);
    verify_outputs(f, true);

    /* the DLQ materialized into kfleet_meta.quarantine; a second pass adds nothing */
    const char *dsn = kf_test_env("KFLEET_PG_DSN");
    char mat_group[160];
    snprintf(mat_group, sizeof(mat_group), "%s-mat", f->env.prefix);
    const char *mat[] = {"--materialize", "--pg-dsn", dsn, "--group", mat_group, NULL};
    assert_int_equal(run_replay(f, mat), 0);
    /* a fresh group reads the whole DLQ again: rows are keyed by DLQ coordinates */
    char mat_group2[170];
    snprintf(mat_group2, sizeof(mat_group2), "%s-mat2", f->env.prefix);
    const char *mat_again[] = {"--materialize", "--pg-dsn", dsn, "--offsets", "0-",
                               "--group",       mat_group2, NULL};
    assert_int_equal(run_replay(f, mat_again), 0);
    size_t nrule = 0, npoison = 0;
    for (size_t i = 0; i < f->sent.n; i++) {
        nrule += f->sent.r[i].fate == VT_RULE;
        npoison += f->sent.r[i].fate == VT_POISON;
    }
    PGconn *pg = PQconnectdb(dsn);
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    const char *params[] = {f->env.dlq};
    PGresult *res = PQexecParams(
        pg,
        "SELECT count(*), count(*) FILTER (WHERE _violated_rule_id = 'orders.qty.range'),"
        " count(*) FILTER (WHERE record IS NULL),"
        " count(*) FILTER (WHERE _violated_rule_id = 'orders.email.not_null'"
        "   AND record ? 'email' AND record->>'email' IS NULL AND origin_topic IS NOT NULL),"
        " count(*) FILTER (WHERE error_code = 'unknown_schema_id' AND error_stage = 'decode')"
        " FROM kfleet_meta.quarantine WHERE dlq_topic = $1",
        1, NULL, params, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_int_equal(strtoll(PQgetvalue(res, 0, 0), NULL, 10), (long long)(nrule + npoison));
    assert_int_equal(strtoll(PQgetvalue(res, 0, 1), NULL, 10), (long long)nrange);
    assert_int_equal(strtoll(PQgetvalue(res, 0, 2), NULL, 10), (long long)npoison);
    assert_int_equal(strtoll(PQgetvalue(res, 0, 3), NULL, 10), (long long)(nrule - nrange));
    assert_int_equal(strtoll(PQgetvalue(res, 0, 4), NULL, 10), 1);
    PQclear(res);
    PQfinish(pg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_validate_end_to_end, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
