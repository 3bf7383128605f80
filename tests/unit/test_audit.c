/* Unit tests for the audit emitter: an encoded event decodes field by field with avro-c's
 * generic reader; events go through librdkafka's mock cluster with the schema registered in
 * a fake registry; invalid events are refused, the queue is bounded, a registry failure at
 * start and a failed delivery are retried or counted without stopping later events. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "kf_fake_registry.c"
#include "kf_test_kafka.h"
#include "kfleet/audit.h"
#include "kfleet/log.h"
#include "kfleet/wire.h"

#define TOPIC "unit.audit"

/* ---- decoding with avro-c's generic reader (not the serde under test) ---- */

typedef struct decoded {
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t value;
    int32_t id;
} decoded;

static void decode(const void *buf, size_t len, decoded *d)
{
    const uint8_t *payload;
    size_t plen;
    assert_int_equal(kf_wire_parse(buf, len, &d->id, &payload, &plen, NULL), KF_OK);
    assert_int_equal(
        avro_schema_from_json_length(kf_audit_schema(), strlen(kf_audit_schema()), &d->schema), 0);
    assert_non_null(d->iface = avro_generic_class_from_schema(d->schema));
    assert_int_equal(avro_generic_value_new(d->iface, &d->value), 0);
    avro_reader_t r = avro_reader_memory((const char *)payload, (int64_t)plen);
    assert_int_equal(avro_value_read(r, &d->value), 0);
    avro_reader_free(r);
    /* every byte was used: the decoded record encodes to exactly the payload's length */
    size_t size = 0;
    assert_int_equal(avro_value_sizeof(&d->value, &size), 0);
    assert_int_equal(size, plen);
}

static void decoded_free(decoded *d)
{
    avro_value_decref(&d->value);
    avro_value_iface_decref(d->iface);
    avro_schema_decref(d->schema);
}

static avro_value_t field(decoded *d, const char *name)
{
    avro_value_t f = {NULL, NULL};
    assert_int_equal(avro_value_get_by_name(&d->value, name, &f, NULL), 0);
    return f;
}

/* A ["null", T] field: the branch it holds (0 null, 1 value) and the value branch. */
static int branch(decoded *d, const char *name, avro_value_t *b)
{
    avro_value_t u = field(d, name);
    int disc = -1;
    assert_int_equal(avro_value_get_discriminant(&u, &disc), 0);
    assert_int_equal(avro_value_get_current_branch(&u, b), 0);
    return disc;
}

static void expect_null_field(decoded *d, const char *name)
{
    avro_value_t b;
    assert_int_equal(branch(d, name, &b), 0);
}

/* The value of a ["null", T] field that must hold one. */
static avro_value_t opt_field(decoded *d, const char *name)
{
    avro_value_t b;
    assert_int_equal(branch(d, name, &b), 1);
    return b;
}

static const char *str_of(avro_value_t v)
{
    const char *s = NULL;
    size_t n;
    assert_int_equal(avro_value_get_string(&v, &s, &n), 0);
    return s;
}

static int32_t int_of(avro_value_t v)
{
    int32_t i = 0;
    assert_int_equal(avro_value_get_int(&v, &i), 0);
    return i;
}

static int64_t long_of(avro_value_t v)
{
    int64_t l = 0;
    assert_int_equal(avro_value_get_long(&v, &l), 0);
    return l;
}

/* The fields every event has. */
static void assert_required(decoded *d, const char *id, int64_t ts_ms, const char *program,
                            const char *instance, const char *action, const char *level,
                            const char *message)
{
    assert_string_equal(str_of(field(d, "id")), id);
    assert_int_equal(long_of(field(d, "ts_ms")), ts_ms);
    assert_string_equal(str_of(field(d, "program")), program);
    assert_string_equal(str_of(field(d, "instance")), instance);
    assert_string_equal(str_of(field(d, "action")), action);
    assert_string_equal(str_of(field(d, "level")), level);
    assert_string_equal(str_of(field(d, "message")), message);
}

static void encode_round_trip(void **state)
{
    (void)state;
    kf_error err;
    kf_serde *s = kf_serde_new(NULL, &err);
    assert_non_null(s);
    assert_int_equal(kf_serde_add_schema(s, 41, kf_audit_schema(), &err), KF_OK);
    kf_buf out = {0};
    kf_audit_event full = {.action = "alert",
                           .level = KF_AUDIT_WARN,
                           .message = "rule orders.min_rows: 3 rows",
                           .topic = "kfleet.shop.orders",
                           .has_partition = true,
                           .partition = 2,
                           .has_offset = true,
                           .offset = 9000000000LL,
                           .db = "shop",
                           .table = "orders",
                           .has_schema_id = true,
                           .schema_id = 17,
                           .rule_id = "orders.min_rows",
                           .has_count = true,
                           .count = 3,
                           .details = "{\"limit\":10}"};
    assert_int_equal(kf_audit_encode(s, 41, "0b7e58ba-6c4c-4b8e-9d55-27d1c1f0a001", 1700000000123LL,
                                     "kfleet-validate", "host:42", &full, &out, &err),
                     KF_OK);
    decoded d;
    decode(out.data, out.len, &d);
    assert_int_equal(d.id, 41);
    assert_required(&d, "0b7e58ba-6c4c-4b8e-9d55-27d1c1f0a001", 1700000000123LL, "kfleet-validate",
                    "host:42", "alert", "warn", "rule orders.min_rows: 3 rows");
    assert_string_equal(str_of(opt_field(&d, "topic")), "kfleet.shop.orders");
    assert_int_equal(int_of(opt_field(&d, "partition")), 2);
    assert_int_equal(long_of(opt_field(&d, "offset")), 9000000000LL);
    assert_string_equal(str_of(opt_field(&d, "db")), "shop");
    assert_string_equal(str_of(opt_field(&d, "table")), "orders");
    assert_int_equal(int_of(opt_field(&d, "schema_id")), 17);
    assert_string_equal(str_of(opt_field(&d, "rule_id")), "orders.min_rows");
    assert_int_equal(long_of(opt_field(&d, "count")), 3);
    assert_string_equal(str_of(opt_field(&d, "details")), "{\"limit\":10}");
    decoded_free(&d);

    /* the same reused value, now with every optional field absent: all null again */
    kf_audit_event bare = {.action = "stop", .level = KF_AUDIT_ERROR, .message = "stopped"};
    assert_int_equal(kf_audit_encode(s, 41, "0b7e58ba-6c4c-4b8e-9d55-27d1c1f0a002", 5, "p", "i",
                                     &bare, &out, &err),
                     KF_OK);
    decode(out.data, out.len, &d);
    assert_string_equal(str_of(field(&d, "level")), "error");
    assert_string_equal(str_of(field(&d, "action")), "stop");
    const char *optional[] = {"topic",     "partition", "offset", "db",     "table",
                              "schema_id", "rule_id",   "count",  "details"};
    for (size_t i = 0; i < sizeof(optional) / sizeof(optional[0]); i++)
        expect_null_field(&d, optional[i]);
    decoded_free(&d);

    /* missing required fields and a schema that is not an AuditEvent */
    kf_audit_event nomsg = {.action = "stop"};
    assert_int_equal(kf_audit_encode(s, 41, "x", 5, "p", "i", &nomsg, &out, &err), KF_ERR_INVALID);
    assert_int_equal(
        kf_serde_add_schema(
            s, 42,
            "{\"type\":\"record\",\"name\":\"X\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}",
            &err),
        KF_OK);
    assert_int_equal(kf_audit_encode(s, 42, "x", 5, "p", "i", &bare, &out, &err), KF_ERR_INVALID);
    assert_non_null(strstr(err.message, "not an AuditEvent"));
    kf_buf_free(&out);
    kf_serde_destroy(s);
}

static void uuids_are_random_v4(void **state)
{
    (void)state;
    enum { N = 300 };
    static char ids[N][37];
    for (int i = 0; i < N; i++) {
        kf_audit_uuid(ids[i]);
        assert_int_equal(strlen(ids[i]), 36);
        for (int k = 0; k < 36; k++) {
            char c = ids[i][k];
            if (k == 8 || k == 13 || k == 18 || k == 23)
                assert_int_equal(c, '-');
            else
                assert_true((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
        }
        assert_int_equal(ids[i][14], '4');
        assert_non_null(strchr("89ab", ids[i][19]));
        for (int j = 0; j < i; j++)
            assert_string_not_equal(ids[i], ids[j]);
    }
}

/* ---- the emitter on a mock cluster with a fake registry ---- */

typedef struct fx {
    kf_test_mock mock;
    kf_fake_registry *fake;
    kf_registry *reg;
    kf_metrics *metrics;
    kf_audit *a;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    if (!f || kf_test_mock_start(&f->mock, 1) != 0)
        return -1;
    kf_log_init("test-audit", KF_LOG_ERROR, KF_LOG_LOGFMT);
    /* the mock broker of librdkafka 2.0 does not answer CreateTopics: the topic exists */
    if (rd_kafka_mock_topic_create(f->mock.mc, TOPIC, 1, 1) != 0)
        return -1;
    kf_error err;
    kf_registry_config rc = {.max_retries = -1};
    if (!(f->reg = kf_fake_registry_client_new(&rc, &f->fake)) ||
        !(f->metrics = kf_metrics_new(&err)))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    kf_audit_destroy(f->a);
    kf_metrics_destroy(f->metrics);
    kf_fake_registry_client_destroy(f->reg, f->fake);
    kf_test_mock_stop(&f->mock);
    free(f);
    return 0;
}

static void open_emitter(fx *f, size_t max_pending)
{
    kf_error err;
    const char *kv[] = {"bootstrap.servers", f->mock.bootstraps, "transactional.id", "ignored"};
    kf_audit_options o = {.program = "kfleet-test",
                          .instance = "test-instance",
                          .prefix = "unit",
                          .kafka_kv = kv,
                          .kafka_npairs = 2,
                          .registry = f->reg,
                          .metrics = f->metrics,
                          .max_pending = max_pending,
                          .flush_timeout_ms = 2000};
    f->a = kf_audit_new(&o, &err);
    if (!f->a)
        fail_msg("kf_audit_new: %s", err.message);
    assert_string_equal(kf_audit_topic(f->a), TOPIC);
}

/* Emits an event of action with message and waits up to timeout_ms until it left the queue. */
static void emit_flushed(fx *f, const char *action, const char *message, int timeout_ms)
{
    kf_audit_event ev = {.action = action, .message = message};
    assert_int_equal(kf_audit_emit(f->a, &ev), KF_OK);
    assert_int_equal(kf_audit_flush(f->a, timeout_ms), KF_OK);
}

static kf_audit_stats stats_of(fx *f)
{
    kf_audit_stats st;
    kf_audit_stats_get(f->a, &st);
    return st;
}

/* The rendered metrics contain line (a whole sample line). */
static bool has_sample(fx *f, const char *line)
{
    char *text;
    size_t len;
    kf_error err;
    assert_int_equal(kf_metrics_render(f->metrics, &text, &len, &err), KF_OK);
    char want[512];
    snprintf(want, sizeof(want), "\n%s\n", line);
    bool found = strstr(text, want) != NULL;
    if (!found)
        fprintf(stderr, "metrics without \"%s\":\n%s", line, text);
    free(text);
    return found;
}

/* A record read back: copies, as the messages must go before their consumer does. */
typedef struct record {
    char key[64];
    size_t key_len;
    uint8_t *value;
    size_t len;
    int64_t ts;
} record;

static void records_free(record *r, int n)
{
    for (int i = 0; i < n; i++)
        free(r[i].value);
}

/* Reads exactly n records of the audit topic from offset 0 (fails on more or fewer). */
static void read_topic(fx *f, record *out, int n)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", f->mock.bootstraps, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", "audit-reader", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, TOPIC, 0)->offset = 0;
    assert_int_equal(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    int got = 0;
    for (int i = 0; i < 200 && got < n; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 50);
        if (m && m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (!m)
            continue;
        record *r = &out[got++];
        assert_true(m->key_len < sizeof(r->key));
        memcpy(r->key, m->key, m->key_len);
        r->key_len = m->key_len;
        assert_non_null(r->value = malloc(m->len));
        memcpy(r->value, m->payload, m->len);
        r->len = m->len;
        rd_kafka_timestamp_type_t tt;
        r->ts = rd_kafka_message_timestamp(m, &tt);
        rd_kafka_message_destroy(m);
    }
    assert_int_equal(got, n);
    /* nothing more */
    rd_kafka_message_t *extra = rd_kafka_consumer_poll(rk, 300);
    if (extra && !extra->err)
        fail_msg("an unexpected record at offset %lld", (long long)extra->offset);
    if (extra)
        rd_kafka_message_destroy(extra);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

static void null_emitter_is_a_no_op(void **state)
{
    (void)state;
    kf_audit_event ev = {.action = "start", .message = "m"};
    assert_int_equal(kf_audit_emit(NULL, &ev), KF_OK);
    assert_int_equal(kf_audit_flush(NULL, 10), KF_OK);
    kf_audit_destroy(NULL);
}

static void needs_a_registry(void **state)
{
    (void)state;
    kf_error err;
    kf_audit_options o = {.program = "kfleet-test"};
    assert_null(kf_audit_new(&o, &err));
    assert_int_equal(err.code, KF_ERR_CONFIG);
    assert_non_null(strstr(err.message, "audit.enabled=false"));
}

static void bad_topic_is_a_config_error(void **state)
{
    fx *f = *state;
    kf_error err;
    kf_audit_options o = {.program = "kfleet-test", .topic = "audit events", .registry = f->reg};
    assert_null(kf_audit_new(&o, &err));
    assert_int_equal(err.code, KF_ERR_CONFIG);
    assert_non_null(strstr(err.message, "\"audit events\" is not a Kafka topic name"));
    const char *kv[] = {"no.such.property", "1"};
    kf_audit_options bad = {
        .program = "kfleet-test", .registry = f->reg, .kafka_kv = kv, .kafka_npairs = 1};
    assert_null(kf_audit_new(&bad, &err));
    assert_int_equal(err.code, KF_ERR_CONFIG);
    assert_non_null(strstr(err.message, "kafka.no.such.property"));
}

static void invalid_events_are_refused(void **state)
{
    fx *f = *state;
    open_emitter(f, 0);
    const kf_audit_event bad[] = {
        {.action = "Start!", .message = "m"},
        {.action = "", .message = "m"},
        {.action = "start", .message = ""},
        {.action = "start", .message = "m", .details = "[1,2]"},
        {.action = "start", .message = "m", .details = "{not json"},
        {.action = "start", .message = "m", .id = "0b7e58ba-6c4c-4b8e-9d55"},
        {.action = "start", .message = "m", .level = (kf_audit_level)7},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(kf_audit_emit(f->a, &bad[i]), KF_ERR_INVALID);
    kf_audit_stats st = stats_of(f);
    assert_int_equal(st.refused, 7);
    assert_int_equal(st.emitted, 0);
    assert_int_equal(st.pending, 0);
    assert_true(
        has_sample(f, "kfleet_audit_failures_total{action=\"unknown\",reason=\"invalid\"} 2"));
    assert_true(
        has_sample(f, "kfleet_audit_failures_total{action=\"start\",reason=\"invalid\"} 5"));
    assert_int_equal(kf_audit_flush(f->a, 100), KF_OK);
}

static void events_reach_the_topic(void **state)
{
    fx *f = *state;
    open_emitter(f, 0);
    /* a message of invalid UTF-8 and over 4 KiB */
    static char longmsg[6000];
    memset(longmsg, 'x', sizeof(longmsg) - 1);
    memcpy(longmsg, "bad \xff\xfe byte", 11);
    /* two bad bytes grow by 4 as U+FFFD: input byte i >= 11 lands at i + 4, so this 2-byte
     * character would end at byte 4097 of the copy */
    memcpy(longmsg + 4091, "\xc3\xa9", 2);
    kf_audit_event e1 = {.action = "start",
                         .message = "kfleet-test started",
                         .details = "{\"group\":\"g\"}",
                         .id = "0B7E58BA-6c4c-4b8e-9d55-27d1c1f0a001",
                         .ts_ms = 1700000000123LL};
    kf_audit_event e2 = {.action = "stop",
                         .level = KF_AUDIT_WARN,
                         .message = longmsg,
                         .has_count = true,
                         .count = 12};
    assert_int_equal(kf_audit_emit(f->a, &e1), KF_OK);
    assert_int_equal(kf_audit_emit(f->a, &e2), KF_OK);
    assert_int_equal(kf_audit_flush(f->a, 10000), KF_OK);
    kf_audit_stats st = stats_of(f);
    assert_int_equal(st.emitted, 2);
    assert_int_equal(st.sent, 2);
    assert_int_equal(st.failed, 0);
    assert_true(st.schema_id >= 0);
    /* the schema went to "<topic>-value" */
    kf_fake_request req;
    assert_true(kf_fake_registry_last(f->fake, &req));
    assert_string_equal(req.method, "POST");
    assert_string_equal(req.raw_path, "/subjects/" TOPIC "-value/versions");
    assert_true(has_sample(f, "kfleet_audit_events_total{action=\"start\"} 1"));
    assert_true(has_sample(f, "kfleet_audit_events_total{action=\"stop\"} 1"));

    record m[2];
    read_topic(f, m, 2);
    assert_int_equal(m[0].ts, 1700000000123LL);
    assert_int_equal(m[0].key_len, strlen("test-instance"));
    assert_memory_equal(m[0].key, "test-instance", m[0].key_len);
    decoded d;
    decode(m[0].value, m[0].len, &d);
    assert_int_equal(d.id, st.schema_id);
    assert_required(&d, "0B7E58BA-6c4c-4b8e-9d55-27d1c1f0a001", 1700000000123LL, "kfleet-test",
                    "test-instance", "start", "info", "kfleet-test started");
    assert_string_equal(str_of(opt_field(&d, "details")), "{\"group\":\"g\"}");
    expect_null_field(&d, "count");
    decoded_free(&d);

    decode(m[1].value, m[1].len, &d);
    const char *msg = str_of(field(&d, "message"));
    /* U+FFFD for each bad byte, cut before the character that would cross 4096 bytes */
    assert_memory_equal(msg, "bad \xef\xbf\xbd\xef\xbf\xbd bytex", 16);
    assert_int_equal(strlen(msg), 4095);
    assert_int_equal(msg[4094], 'x');
    assert_int_equal(long_of(opt_field(&d, "count")), 12);
    assert_string_equal(str_of(field(&d, "level")), "warn");
    /* a fresh random id and the emit time */
    const char *id = str_of(field(&d, "id"));
    assert_int_equal(strlen(id), 36);
    assert_int_equal(id[14], '4');
    assert_true(long_of(field(&d, "ts_ms")) > 1700000000000LL);
    decoded_free(&d);
    records_free(m, 2);
}

static void registry_failure_at_start_is_retried(void **state)
{
    fx *f = *state;
    /* the first registration is refused (4xx: the client does not retry by itself) */
    kf_fake_registry_fail_next(f->fake, 1, 400);
    open_emitter(f, 0);
    /* the set-up is tried again after about a second */
    emit_flushed(f, "start", "m", 15000);
    kf_audit_stats st = stats_of(f);
    assert_int_equal(st.sent, 1);
    assert_int_equal(st.failed, 0);
}

static void queue_is_bounded(void **state)
{
    fx *f = *state;
    kf_fake_registry_fail_next(f->fake, 100000, 400); /* never set up */
    open_emitter(f, 3);
    kf_audit_event ev = {.action = "start", .message = "m"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(kf_audit_emit(f->a, &ev), KF_OK);
    assert_int_equal(kf_audit_emit(f->a, &ev), KF_ERR_FULL);
    kf_audit_stats st = stats_of(f);
    assert_int_equal(st.emitted, 3);
    assert_int_equal(st.refused, 1);
    assert_int_equal(st.pending, 3);
    assert_int_equal(kf_audit_flush(f->a, 300), KF_ERR_TIMEOUT);
    assert_true(
        has_sample(f, "kfleet_audit_failures_total{action=\"start\",reason=\"queue_full\"} 1"));
    /* at the end the queued events are counted as lost */
    kf_audit_destroy(f->a);
    f->a = NULL;
    assert_true(
        has_sample(f, "kfleet_audit_failures_total{action=\"start\",reason=\"shutdown\"} 3"));
}

static void failed_delivery_is_counted_and_later_events_go(void **state)
{
    fx *f = *state;
    open_emitter(f, 0);
    emit_flushed(f, "start", "first", 10000);
    /* the broker refuses the next produce request with a permanent error */
    rd_kafka_mock_push_request_errors(f->mock.mc, 0 /* ApiKey Produce */, 1,
                                      RD_KAFKA_RESP_ERR_INVALID_RECORD);
    emit_flushed(f, "alert", "lost", 10000);
    emit_flushed(f, "stop", "later", 10000);
    kf_audit_stats st = stats_of(f);
    assert_int_equal(st.sent, 2);
    assert_int_equal(st.failed, 1);
    assert_true(
        has_sample(f, "kfleet_audit_failures_total{action=\"alert\",reason=\"delivery\"} 1"));
    assert_true(has_sample(f, "kfleet_audit_events_total{action=\"stop\"} 1"));
    record m[2];
    read_topic(f, m, 2);
    decoded d;
    decode(m[1].value, m[1].len, &d);
    assert_string_equal(str_of(field(&d, "message")), "later");
    decoded_free(&d);
    records_free(m, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encode_round_trip),
        cmocka_unit_test(uuids_are_random_v4),
        cmocka_unit_test(null_emitter_is_a_no_op),
        cmocka_unit_test(needs_a_registry),
        cmocka_unit_test_setup_teardown(bad_topic_is_a_config_error, setup, teardown),
        cmocka_unit_test_setup_teardown(invalid_events_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(events_reach_the_topic, setup, teardown),
        cmocka_unit_test_setup_teardown(registry_failure_at_start_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(queue_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_delivery_is_counted_and_later_events_go, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
