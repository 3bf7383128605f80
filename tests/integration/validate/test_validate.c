/* Integration test of kfleet-validate against the real broker and registry: change events with
 * injected bad records and poison messages go through the worker; exactly the injected records
 * land in the DLQ with the right rule ids and headers, the rest byte-identical in the valid
 * topic; a kill -9 in the middle of a run leaves exactly-once outputs (read_committed); after
 * the contract is fixed, kfleet-replay brings the quarantined records into the valid topic
 * exactly once; `check` exit codes on the topic. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <libpq-fe.h>

#include "kf_test_env.h"
#include "kfleet/dlq.h"
#include "vt.h"

#define NGOOD_FIRST 300
#define NMORE       3000

enum { FX_PREFIX_SIZE = 96, FX_TOPIC_SIZE = 160 };

typedef struct fx {
    const char *bootstrap, *registry_url, *validate_bin, *replay_bin;
    char prefix[FX_PREFIX_SIZE], topic[FX_TOPIC_SIZE], valid[200];
    char dlq[FX_PREFIX_SIZE + sizeof(".dlq.") - 1 + FX_TOPIC_SIZE]; /* <prefix>.dlq.<topic> */
    char contract[256], fixed[256], log[256];
    kf_registry *reg;
    kf_serde *serde;
    kf_table *table;
    kf_event_writer *w;
    kf_producer *p;
    int32_t key_id, value_id;
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
    kf_produce_msg msg = {.topic = f->topic,
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
    assert_int_equal(kf_event_writer_begin(f->w, KF_OP_CREATE, 1700000000000 + id, &err), KF_OK);
    assert_int_equal(kf_event_set_int(f->w, KF_AFTER, 0, id, &err), KF_OK);
    char email[64];
    snprintf(email, sizeof(email), "user%" PRId64 "@example.com", id);
    if (null_email)
        assert_int_equal(kf_event_set_null(f->w, KF_AFTER, 1, &err), KF_OK);
    else
        assert_int_equal(kf_event_set_string(f->w, KF_AFTER, 1, email, strlen(email), &err), KF_OK);
    assert_int_equal(kf_event_set_int(f->w, KF_AFTER, 2, neg_qty ? -5 : id % 100, &err), KF_OK);
    assert_int_equal(kf_event_writer_encode(f->w, &key, &value, &err), KF_OK);
    produce_raw(f, key.data, key.len, value.data, value.len,
                null_email || neg_qty ? VT_RULE : VT_VALID,
                null_email ? "orders.email.not_null"
                : neg_qty  ? "orders.qty.range"
                           : NULL);
    kf_buf_free(&key);
    kf_buf_free(&value);
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    kf_error err;
    f->bootstrap = kf_test_env("KFLEET_BOOTSTRAP");
    f->registry_url = kf_test_env("KFLEET_REGISTRY_URL");
    f->validate_bin = kf_test_env("KFLEET_VALIDATE_BIN");
    f->replay_bin = kf_test_env("KFLEET_REPLAY_BIN");
    char name[80];
    kf_test_unique_name(name, sizeof(name), "vt");
    snprintf(f->prefix, sizeof(f->prefix), "%s", name);
    snprintf(f->topic, sizeof(f->topic), "%s.shop.orders", f->prefix);
    snprintf(f->valid, sizeof(f->valid), "%s.valid.shop.orders", f->prefix);
    snprintf(f->dlq, sizeof(f->dlq), "%s.dlq.%s", f->prefix, f->topic);
    snprintf(f->contract, sizeof(f->contract), "/tmp/%s-contract.yaml", name);
    snprintf(f->fixed, sizeof(f->fixed), "/tmp/%s-fixed.yaml", name);
    snprintf(f->log, sizeof(f->log), "/tmp/%s.log", name);
    write_file(f->contract, "contract: orders\nmatch:\n  tables: [shop.orders]\ncolumns:\n"
                            "  email: [not_null, {regex: '^[^@]+@[^@]+$'}]\n"
                            "  qty: [{range: {min: 0, max: 1000}}]\n  id: [not_null]\n");
    /* the fix: negative quantities are refunds and allowed */
    write_file(f->fixed, "contract: orders\nmatch:\n  tables: [shop.orders]\ncolumns:\n"
                         "  email: [not_null, {regex: '^[^@]+@[^@]+$'}]\n"
                         "  qty: [{range: {min: -100, max: 1000}}]\n  id: [not_null]\n");

    kf_registry_config rc = {.url = f->registry_url};
    assert_non_null(f->reg = kf_registry_new(&rc, &err));
    assert_non_null(f->serde = kf_serde_new(f->reg, &err));
    assert_non_null(f->table = kf_table_new(f->prefix, "shop", NULL, "orders", &err));
    kf_column id = {.name = "id", .pk_order = 1}, email = {.name = "email", .nullable = true},
              qty = {.name = "qty", .nullable = true};
    assert_int_equal(kf_coltype_parse("bigint", &id, &err), KF_OK);
    assert_int_equal(kf_coltype_parse("text", &email, &err), KF_OK);
    assert_int_equal(kf_coltype_parse("int", &qty, &err), KF_OK);
    assert_int_equal(kf_table_add_column(f->table, &id, &err), KF_OK);
    assert_int_equal(kf_table_add_column(f->table, &email, &err), KF_OK);
    assert_int_equal(kf_table_add_column(f->table, &qty, &err), KF_OK);
    char *ks = kf_table_key_schema(f->table, &err), *es = kf_table_envelope_schema(f->table, &err);
    char subject[256];
    snprintf(subject, sizeof(subject), "%s-key", f->topic);
    assert_int_equal(kf_serde_register(f->serde, subject, ks, &f->key_id, &err), KF_OK);
    snprintf(subject, sizeof(subject), "%s-value", f->topic);
    assert_int_equal(kf_serde_register(f->serde, subject, es, &f->value_id, &err), KF_OK);
    free(ks);
    free(es);
    assert_non_null(f->w = kf_event_writer_new(f->serde, f->table, f->key_id, f->value_id, &err));
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
    kf_topic_spec spec = {.name = f->topic, .partitions = 3, .replication_factor = 1};
    assert_int_equal(kf_admin_create_topics(a, &spec, 1, false, 30000, &err), KF_OK);
    kf_admin_destroy(a);
    assert_non_null(f->p = kf_producer_new(akv, 1, NULL, &err));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    /* the audit topic the worker and replay wrote to */
    char audit[FX_PREFIX_SIZE + 8];
    snprintf(audit, sizeof(audit), "%s.audit", f->prefix);
    const char *akv[] = {"bootstrap.servers", f->bootstrap};
    kf_error err;
    kf_admin *a = kf_admin_new(akv, 1, &err);
    if (a)
        kf_admin_delete_topics(a, (const char *[]){audit}, 1, true, 30000, &err);
    kf_admin_destroy(a);
    kf_producer_destroy(f->p);
    kf_event_writer_destroy(f->w);
    kf_table_destroy(f->table);
    kf_serde_destroy(f->serde);
    kf_registry_destroy(f->reg);
    vt_list_free(&f->sent);
    remove(f->contract);
    remove(f->fixed);
    free(f);
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
    char set_prefix[160], set_boot[200], set_reg[300];
    snprintf(set_prefix, sizeof(set_prefix), "topic.prefix=%s", f->prefix);
    snprintf(set_boot, sizeof(set_boot), "kafka.bootstrap.servers=%s", f->bootstrap);
    snprintf(set_reg, sizeof(set_reg), "registry.url=%s", f->registry_url);
    char *argv[] = {(char *)f->validate_bin,
                    "--contract",
                    (char *)contract,
                    "--set",
                    set_prefix,
                    "--set",
                    set_boot,
                    "--set",
                    set_reg,
                    "--group",
                    f->prefix,
                    "--batch-size",
                    "100",
                    "--max-records",
                    (char *)max_records,
                    "--log-level",
                    "warn",
                    NULL};
    pid_t pid = vt_spawn(argv, f->log);
    return vt_wait(pid, timeout_ms);
}

/* Every produced record is in exactly one of valid/DLQ, exactly once, as expected. */
static void verify_outputs(fx *f, bool replayed)
{
    vt_list valid = {0}, dlq = {0};
    assert_true(vt_read_topic(f->bootstrap, f->valid, &valid, 60000));
    assert_true(vt_read_topic(f->bootstrap, f->dlq, &dlq, 60000));
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
            assert_string_equal(d->origin, f->topic);
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
    assert_int_equal(kf_event_writer_begin(f->w, KF_OP_CREATE, 1, &err), KF_OK);
    assert_int_equal(kf_event_set_int(f->w, KF_AFTER, 0, 999999, &err), KF_OK);
    assert_int_equal(kf_event_set_string(f->w, KF_AFTER, 1, "x@y", 3, &err), KF_OK);
    assert_int_equal(kf_event_writer_encode(f->w, &key, &value, &err), KF_OK);
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
    assert_int_equal(run_validate(f, f->contract, max, 120000), 0);
    verify_outputs(f, false);

    /* check mode on the input: violations found -> exit 1; the fixed contract still sees the
     * null emails and the poison -> 1; a missing contract -> 2 */
    char set_boot[200], set_reg[300];
    snprintf(set_boot, sizeof(set_boot), "kafka.bootstrap.servers=%s", f->bootstrap);
    snprintf(set_reg, sizeof(set_reg), "registry.url=%s", f->registry_url);
    char *check[] = {(char *)f->validate_bin,
                     "check",
                     "--contract",
                     f->contract,
                     "--topic",
                     f->topic,
                     "--set",
                     set_boot,
                     "--set",
                     set_reg,
                     "--output-format",
                     "json",
                     NULL};
    assert_int_equal(vt_wait(vt_spawn(check, f->log), 60000), 1);
    char *check_range[] = {(char *)f->validate_bin,
                           "check",
                           "--contract",
                           f->contract,
                           "--topic",
                           f->topic,
                           "--from",
                           "0",
                           "--to",
                           "1",
                           "--set",
                           set_boot,
                           "--set",
                           set_reg,
                           NULL};
    int rc = vt_wait(vt_spawn(check_range, f->log), 60000);
    assert_true(rc == 0 || rc == 1);
    char *check_missing[] = {(char *)f->validate_bin,
                             "check",
                             "--contract",
                             "/nonexistent.yaml",
                             "--topic",
                             f->topic,
                             "--set",
                             set_boot,
                             "--set",
                             set_reg,
                             NULL};
    assert_int_equal(vt_wait(vt_spawn(check_missing, f->log), 60000), 2);
    char *check_notopic[] = {(char *)f->validate_bin,
                             "check",
                             "--contract",
                             f->contract,
                             "--topic",
                             "kfleet-no-such-topic-xyz",
                             "--set",
                             set_boot,
                             "--set",
                             set_reg,
                             NULL};
    assert_int_equal(vt_wait(vt_spawn(check_notopic, f->log), 60000), 2);

    /* kill -9 in the middle of a larger run, then a restart: still exactly once */
    for (int i = 0; i < NMORE; i++)
        produce_event(f);
    flush(f);
    char set_prefix[160];
    snprintf(set_prefix, sizeof(set_prefix), "topic.prefix=%s", f->prefix);
    char *argv[] = {(char *)f->validate_bin,
                    "--contract",
                    f->contract,
                    "--set",
                    set_prefix,
                    "--set",
                    set_boot,
                    "--set",
                    set_reg,
                    "--group",
                    f->prefix,
                    "--batch-size",
                    "50",
                    "--log-level",
                    "warn",
                    NULL};
    pid_t pid = vt_spawn(argv, f->log);
    /* wait until some but not all of the new records are committed */
    int64_t deadline = vt_now_ms() + 60000;
    for (;;) {
        vt_list v = {0};
        assert_true(vt_read_topic(f->bootstrap, f->valid, &v, 30000));
        size_t n = v.n;
        vt_list_free(&v);
        if (n > NGOOD_FIRST)
            break;
        assert_true(vt_now_ms() < deadline);
        usleep(50000);
    }
    kill(pid, SIGKILL);
    assert_int_equal(vt_wait(pid, 10000), 128 + SIGKILL);
    /* the restart consumes the rest; it stops after at most everything again */
    snprintf(max, sizeof(max), "%d", NMORE);
    pid = vt_spawn(argv, f->log);
    deadline = vt_now_ms() + 120000;
    size_t expect_total = 0;
    for (size_t i = 0; i < f->sent.n; i++)
        expect_total++;
    for (;;) {
        vt_list v = {0}, d = {0};
        assert_true(vt_read_topic(f->bootstrap, f->valid, &v, 30000));
        assert_true(vt_read_topic(f->bootstrap, f->dlq, &d, 30000));
        size_t n = v.n + d.n;
        vt_list_free(&v);
        vt_list_free(&d);
        if (n >= expect_total)
            break;
        assert_true(vt_now_ms() < deadline);
        usleep(200000);
    }
    kill(pid, SIGTERM);
    assert_int_equal(vt_wait(pid, 60000), 0);
    verify_outputs(f, false);

    /* the fix: replay the range violations and validate them with the fixed contract */
    char replay_group[160];
    snprintf(replay_group, sizeof(replay_group), "%s-replay", f->prefix);
    char *dry[] = {(char *)f->replay_bin,
                   "--dry-run",
                   "--rule",
                   "orders.qty.range",
                   "--set",
                   set_reg,
                   "--set",
                   set_boot,
                   "--group",
                   replay_group,
                   "--set",
                   set_prefix,
                   f->dlq,
                   NULL};
    assert_int_equal(vt_wait(vt_spawn(dry, f->log), 60000), 0);
    char *replay[] = {(char *)f->replay_bin,
                      "--rule",
                      "orders.qty.range",
                      "--set",
                      set_boot,
                      "--set",
                      set_reg,
                      "--group",
                      replay_group,
                      "--set",
                      set_prefix,
                      f->dlq,
                      NULL};
    assert_int_equal(vt_wait(vt_spawn(replay, f->log), 120000), 0);
    /* running it again replays nothing more: it resumes from its group's offsets */
    assert_int_equal(vt_wait(vt_spawn(replay, f->log), 120000), 0);
    size_t nrange = 0;
    for (size_t i = 0; i < f->sent.n; i++)
        if (strcmp(f->sent.r[i].rule, "orders.qty.range") == 0)
            nrange++;
    vt_list in = {0};
    assert_true(vt_read_topic(f->bootstrap, f->topic, &in, 60000));
    assert_int_equal(in.n, f->sent.n + nrange);
    size_t replayed = 0;
    for (size_t i = 0; i < in.n; i++)
        if (in.r[i].replay_count == 1) {
            replayed++;
            assert_string_equal(in.r[i].rule, ""); /* error headers are gone */
        }
    assert_int_equal(replayed, nrange);
    vt_list_free(&in);
    char *fixed[] = {(char *)f->validate_bin,
                     "--contract",
                     f->fixed,
                     "--set",
                     set_prefix,
                     "--set",
                     set_boot,
                     "--set",
                     set_reg,
                     "--group",
                     f->prefix,
                     "--max-records",
                     max,
                     "--log-level",
                     "warn",
                     NULL};
    snprintf(max, sizeof(max), "%zu", nrange);
    assert_int_equal(vt_wait(vt_spawn(fixed, f->log), 120000), 0);
    verify_outputs(f, true);

    /* the DLQ materialized into kfleet_meta.quarantine; a second pass adds nothing */
    const char *dsn = kf_test_env("KFLEET_PG_DSN");
    char mat_group[160];
    snprintf(mat_group, sizeof(mat_group), "%s-mat", f->prefix);
    char *mat[] = {(char *)f->replay_bin,
                   "--materialize",
                   "--pg-dsn",
                   (char *)dsn,
                   "--set",
                   set_boot,
                   "--set",
                   set_reg,
                   "--group",
                   mat_group,
                   f->dlq,
                   NULL};
    assert_int_equal(vt_wait(vt_spawn(mat, f->log), 120000), 0);
    /* a fresh group reads the whole DLQ again: rows are keyed by DLQ coordinates */
    char mat_group2[170];
    snprintf(mat_group2, sizeof(mat_group2), "%s-mat2", f->prefix);
    char *mat_again[] = {(char *)f->replay_bin,
                         "--materialize",
                         "--pg-dsn",
                         (char *)dsn,
                         "--offsets",
                         "0-",
                         "--set",
                         set_boot,
                         "--set",
                         set_reg,
                         "--group",
                         mat_group2,
                         f->dlq,
                         NULL};
    assert_int_equal(vt_wait(vt_spawn(mat_again, f->log), 120000), 0);
    size_t nrule = 0, npoison = 0;
    for (size_t i = 0; i < f->sent.n; i++) {
        nrule += f->sent.r[i].fate == VT_RULE;
        npoison += f->sent.r[i].fate == VT_POISON;
    }
    PGconn *pg = PQconnectdb(dsn);
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    const char *params[] = {f->dlq};
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
