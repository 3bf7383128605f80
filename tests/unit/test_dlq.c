/* Unit tests for the dead-letter writer on librdkafka's mock cluster: topic names, a quarantined
 * record keeps key, value, timestamp and headers byte for byte and gains the error headers,
 * tombstones, header parsing and the headers for a replay. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "kfleet/dlq.h"
#include "kfleet/kafka.h"

#define SOURCE "kfleet.shop.orders"
#define DLQ    "kfleet.dlq.kfleet.shop.orders"

typedef struct fixture {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    char bootstraps[256];
    kf_producer *p;
    kf_dlq *d;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    f->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    f->mc = rd_kafka_mock_cluster_new(f->rk, 1);
    snprintf(f->bootstraps, sizeof(f->bootstraps), "%s", rd_kafka_mock_cluster_bootstraps(f->mc));
    rd_kafka_mock_topic_create(f->mc, SOURCE, 1, 1);
    rd_kafka_mock_topic_create(f->mc, DLQ, 1, 1);
    kf_error err;
    const char *kv[] = {"bootstrap.servers", f->bootstraps};
    f->p = kf_producer_new(kv, 1, NULL, &err);
    if (!f->p)
        return -1;
    f->d = kf_dlq_new(f->p, "kfleet", "kfleet-validate", &err);
    if (!f->d)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kf_dlq_destroy(f->d);
    kf_producer_destroy(f->p);
    rd_kafka_mock_cluster_destroy(f->mc);
    rd_kafka_destroy(f->rk);
    free(f);
    return 0;
}

/* Reads the message at offset of partition 0 of topic with a plain assigned consumer. */
static rd_kafka_message_t *read_at(fixture *f, rd_kafka_t **rk_out, const char *topic,
                                   int64_t offset)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", f->bootstraps, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", "dlq-test", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = offset;
    assert_int_equal(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_message_t *m = NULL;
    for (int i = 0; i < 100 && !m; i++) {
        m = rd_kafka_consumer_poll(rk, 100);
        if (m && m->err) {
            rd_kafka_message_destroy(m);
            m = NULL;
        }
    }
    assert_non_null(m);
    *rk_out = rk;
    return m;
}

static void close_reader(rd_kafka_t *rk, rd_kafka_message_t *m)
{
    rd_kafka_message_destroy(m);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

static void produce_source(fixture *f, const void *value, size_t len)
{
    kf_error err;
    const kf_header hl[] = {
        {"trace", "a", 1},
        {"trace", "b\0c", 3},
        {"kfleet.rule.id", "stale", 5},
        {"kfleet.replay.count", "2", 1},
        {"nullish", NULL, 0},
    };
    kf_produce_msg msg = {.topic = SOURCE,
                          .partition = 0,
                          .key = "\x00\x01k",
                          .key_len = 3,
                          .value = value,
                          .value_len = len,
                          .header_list = hl,
                          .header_count = 5,
                          .timestamp_ms = 1700000000123};
    assert_int_equal(kf_producer_produce(f->p, &msg, NULL, &err), KF_OK);
    assert_int_equal(kf_producer_flush(f->p, 10000, &err), KF_OK);
}

static void expect_header(rd_kafka_headers_t *h, size_t idx, const char *name, const void *value,
                          size_t len)
{
    const char *n;
    const void *v;
    size_t sz;
    assert_int_equal(rd_kafka_header_get_all(h, idx, &n, &v, &sz), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_string_equal(n, name);
    if (!value) {
        assert_null(v);
        return;
    }
    assert_int_equal(sz, len);
    assert_memory_equal(v, value, len);
}

static void test_topic_name(void **state)
{
    fixture *f = *state;
    char buf[256];
    assert_int_equal(kf_dlq_topic_name(f->d, "kfleet.shop.orders", buf, sizeof(buf)), KF_OK);
    assert_string_equal(buf, "kfleet.dlq.kfleet.shop.orders");
    assert_int_equal(kf_dlq_topic_name(f->d, "dbserver1.inventory.customers", buf, sizeof(buf)),
                     KF_OK);
    assert_string_equal(buf, "kfleet.dlq.dbserver1.inventory.customers");
    /* a DLQ topic stays itself: no kfleet.dlq.kfleet.dlq.... */
    assert_int_equal(kf_dlq_topic_name(f->d, DLQ, buf, sizeof(buf)), KF_OK);
    assert_string_equal(buf, DLQ);
    char small[8];
    assert_int_equal(kf_dlq_topic_name(f->d, "kfleet.shop.orders", small, sizeof(small)),
                     KF_ERR_INVALID);
    char longname[260];
    memset(longname, 'x', 245);
    longname[245] = '\0';
    assert_int_equal(kf_dlq_topic_name(f->d, longname, buf, sizeof(buf)), KF_ERR_INVALID);
}

static void test_send_keeps_record_and_adds_headers(void **state)
{
    fixture *f = *state;
    const char value[] = "\x00\x00\x00\x00\x07payload";
    produce_source(f, value, sizeof(value) - 1);
    rd_kafka_t *rk;
    rd_kafka_message_t *in = read_at(f, &rk, SOURCE, 0);

    kf_error err;
    kf_dlq_reason why = {.stage = "validate",
                         .error_class = "RuleViolation",
                         .message = "column \"email\" is null",
                         .rule_id = "orders.email.not_null",
                         .reason = "not_null"};
    assert_int_equal(kf_dlq_send(f->d, in, &why, &err), KF_OK);
    assert_int_equal(kf_dlq_count(f->d), 1);
    assert_int_equal(kf_producer_flush(f->p, 10000, &err), KF_OK);
    assert_false(kf_producer_failed(f->p, NULL));
    close_reader(rk, in);

    rd_kafka_message_t *out = read_at(f, &rk, DLQ, 0);
    assert_int_equal(out->key_len, 3);
    assert_memory_equal(out->key, "\x00\x01k", 3);
    assert_int_equal(out->len, sizeof(value) - 1);
    assert_memory_equal(out->payload, value, sizeof(value) - 1);
    rd_kafka_timestamp_type_t tt;
    assert_int_equal(rd_kafka_message_timestamp(out, &tt), 1700000000123);

    rd_kafka_headers_t *h = NULL;
    assert_int_equal(rd_kafka_message_headers(out, &h), RD_KAFKA_RESP_ERR_NO_ERROR);
    /* the originals in order (the stale rule id replaced), then the error headers */
    expect_header(h, 0, "trace", "a", 1);
    expect_header(h, 1, "trace", "b\0c", 3);
    expect_header(h, 2, "kfleet.replay.count", "2", 1);
    expect_header(h, 3, "nullish", NULL, 0);
    expect_header(h, 4, KF_DLQ_H_TOPIC, SOURCE, strlen(SOURCE));
    expect_header(h, 5, KF_DLQ_H_PARTITION, "0", 1);
    expect_header(h, 6, KF_DLQ_H_OFFSET, "0", 1);
    expect_header(h, 7, KF_DLQ_H_STAGE, "validate", 8);
    expect_header(h, 8, KF_DLQ_H_CLASS, "RuleViolation", 13);
    expect_header(h, 10, KF_DLQ_H_RULE_ID, "orders.email.not_null", 21);
    expect_header(h, 11, KF_DLQ_H_REASON, "not_null", 8);
    expect_header(h, 12, KF_DLQ_H_WORKER, "kfleet-validate", 15);
    assert_int_equal(rd_kafka_header_cnt(h), 13);

    kf_dlq_info info;
    kf_dlq_info_get(out, &info);
    assert_string_equal(info.topic, SOURCE);
    assert_int_equal(info.partition, 0);
    assert_int_equal(info.offset, 0);
    assert_string_equal(info.stage, "validate");
    assert_string_equal(info.error_class, "RuleViolation");
    assert_string_equal(info.message, "column \"email\" is null");
    assert_string_equal(info.rule_id, "orders.email.not_null");
    assert_string_equal(info.reason, "not_null");
    assert_string_equal(info.worker, "kfleet-validate");
    assert_int_equal(info.replay_count, 2);

    rd_kafka_headers_t *r = kf_dlq_replay_headers(out, info.replay_count + 1);
    assert_non_null(r);
    assert_int_equal(rd_kafka_header_cnt(r), 4);
    expect_header(r, 0, "trace", "a", 1);
    expect_header(r, 1, "trace", "b\0c", 3);
    expect_header(r, 2, "nullish", NULL, 0);
    expect_header(r, 3, KF_DLQ_H_REPLAY, "3", 1);
    rd_kafka_headers_destroy(r);
    close_reader(rk, out);
}

static void test_tombstone_and_no_rule(void **state)
{
    fixture *f = *state;
    produce_source(f, NULL, 0);
    rd_kafka_t *rk;
    rd_kafka_message_t *in = read_at(f, &rk, SOURCE, 0);
    assert_null(in->payload);
    kf_error err;
    kf_dlq_reason why = {.stage = "decode",
                         .error_class = "DecodeError",
                         .message = "unknown schema id 99",
                         .reason = "unknown_schema_id"};
    assert_int_equal(kf_dlq_send(f->d, in, &why, &err), KF_OK);
    assert_int_equal(kf_producer_flush(f->p, 10000, &err), KF_OK);
    close_reader(rk, in);

    rd_kafka_message_t *out = read_at(f, &rk, DLQ, 0);
    assert_null(out->payload);
    assert_int_equal(out->len, 0);
    kf_dlq_info info;
    kf_dlq_info_get(out, &info);
    /* the stale kfleet.rule.id of the input is removed, not kept */
    assert_string_equal(info.rule_id, "");
    assert_string_equal(info.reason, "unknown_schema_id");
    assert_string_equal(info.stage, "decode");
    close_reader(rk, out);
}

static void test_invalid_arguments(void **state)
{
    fixture *f = *state;
    kf_error err;
    assert_null(kf_dlq_new(NULL, "kfleet", "w", &err));
    assert_int_equal(err.code, KF_ERR_INVALID);
    assert_null(kf_dlq_new(f->p, "", "w", &err));
    kf_dlq_destroy(NULL);
    assert_int_equal(kf_dlq_send(f->d, NULL, NULL, &err), KF_ERR_INVALID);
    assert_int_equal(kf_dlq_count(NULL), 0);
    kf_dlq_info info;
    kf_dlq_info_get(NULL, &info);
    assert_int_equal(info.partition, -1);
    assert_int_equal(info.offset, -1);
    assert_true(kf_dlq_is_error_header("__connect.errors.exception.stacktrace"));
    assert_true(kf_dlq_is_error_header(KF_DLQ_H_WORKER));
    assert_false(kf_dlq_is_error_header(KF_DLQ_H_REPLAY));
    assert_false(kf_dlq_is_error_header("trace"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_topic_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_keeps_record_and_adds_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tombstone_and_no_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
