/* Unit tests for the kafka producer on librdkafka's mock cluster: round trip with headers,
 * contiguous delivery accounting, the in-flight bound and backpressure. */
#include <unistd.h>

#include "kf_test_kafka.h"
#include "kfleet/kafka.h"
#include "kfleet/log.h"

/* Parses a decimal number that is not NUL-terminated. */
static int parse_int(const char *s, size_t len)
{
    int v = 0;
    for (size_t i = 0; i < len; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

static kf_producer *producer_on(const kf_test_mock *m, size_t max_in_flight, int full_wait_ms,
                                const char *extra_key, const char *extra_value)
{
    const char *kv[] = {"bootstrap.servers",
                        m->bootstraps,
                        "linger.ms",
                        "5",
                        extra_key ? extra_key : "client.id",
                        extra_value ? extra_value : "test"};
    kf_producer_options o = {.max_in_flight = max_in_flight, .full_wait_ms = full_wait_ms};
    kf_error err;
    kf_producer *p = kf_producer_new(kv, 3, &o, &err);
    if (!p)
        fail_msg("%s", err.message);
    return p;
}

static int produce_str(kf_producer *p, const char *topic, int32_t partition, const char *key,
                       const char *value, uint64_t seq, kf_error *err)
{
    kf_produce_msg m = {.topic = topic,
                        .partition = partition,
                        .key = key,
                        .key_len = key ? strlen(key) : 0,
                        .value = value,
                        .value_len = value ? strlen(value) : 0,
                        .seq = seq};
    return kf_producer_produce(p, &m, NULL, err);
}

static void round_trip_keeps_key_value_headers(void **state)
{
    kf_test_mock m;
    assert_int_equal(kf_test_mock_start(&m, 1), 0);
    rd_kafka_mock_topic_create(m.mc, "rt", 3, 1);
    kf_producer *p = producer_on(&m, 0, 0, NULL, NULL);
    kf_error err;

    for (int i = 0; i < 20; i++) {
        char key[16], value[32], seqs[16];
        snprintf(key, sizeof(key), "k%d", i % 4);
        snprintf(value, sizeof(value), "v%d", i);
        snprintf(seqs, sizeof(seqs), "%d", i);
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(2);
        assert_int_equal(kf_headers_add_str(hdrs, "origin", "unit", &err), KF_OK);
        kf_header extra[] = {{"seq", seqs, strlen(seqs)}, {"nullvalue", NULL, 0}};
        kf_produce_msg msg = {.topic = "rt",
                              .partition = RD_KAFKA_PARTITION_UA,
                              .key = key,
                              .key_len = strlen(key),
                              .value = value,
                              .value_len = strlen(value),
                              .headers = hdrs,
                              .header_list = extra,
                              .header_count = 2};
        uint64_t seq = 0;
        assert_int_equal(kf_producer_produce(p, &msg, &seq, &err), KF_OK);
        assert_int_equal(seq, (uint64_t)i + 1);
    }
    assert_int_equal(kf_producer_flush(p, 10000, &err), KF_OK);
    assert_int_equal(kf_producer_acked_upto(p), 20);
    kf_producer_stats st;
    kf_producer_stats_get(p, &st);
    assert_int_equal(st.produced, 20);
    assert_int_equal(st.acked, 20);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.in_flight, 0);
    assert_false(kf_producer_failed(p, NULL));

    const char *ckv[] = {"bootstrap.servers", m.bootstraps, "group.id", "rt-group"};
    kf_consumer *c = kf_consumer_new(ckv, 2, NULL, &err);
    assert_non_null(c);
    const char *topics[] = {"rt"};
    assert_int_equal(kf_consumer_subscribe(c, topics, 1, &err), KF_OK);
    int got = 0;
    int32_t key_partition[4] = {-1, -1, -1, -1};
    int last_value_of_key[4] = {-1, -1, -1, -1};
    int64_t deadline = kf_test_now_ms() + 20000;
    while (got < 20 && kf_test_now_ms() < deadline) {
        rd_kafka_message_t *msgs[8];
        int n = kf_consumer_poll_batch(c, msgs, 8, 500, &err);
        assert_true(n >= 0);
        for (int i = 0; i < n; i++) {
            rd_kafka_message_t *msg = msgs[i];
            assert_int_equal(msg->key_len, 2);
            int k = ((const char *)msg->key)[1] - '0';
            int v = parse_int((const char *)msg->payload + 1, msg->len - 1);
            assert_int_equal(v % 4, k);
            /* same key, same partition, in order */
            if (key_partition[k] >= 0)
                assert_int_equal(key_partition[k], msg->partition);
            key_partition[k] = msg->partition;
            assert_true(v > last_value_of_key[k]);
            last_value_of_key[k] = v;
            const void *hv;
            size_t hl;
            assert_true(kf_headers_get(msg, "origin", &hv, &hl));
            assert_int_equal(hl, 4);
            assert_memory_equal(hv, "unit", 4);
            assert_true(kf_headers_get(msg, "seq", &hv, &hl));
            char seqs[16];
            snprintf(seqs, sizeof(seqs), "%d", v);
            assert_int_equal(hl, strlen(seqs));
            assert_memory_equal(hv, seqs, hl);
            assert_true(kf_headers_get(msg, "nullvalue", &hv, &hl));
            assert_null(hv);
            assert_false(kf_headers_get(msg, "absent", &hv, &hl));

            /* copying keeps every header in order, byte for byte */
            rd_kafka_headers_t *copy = kf_headers_copy(msg);
            assert_non_null(copy);
            assert_int_equal(rd_kafka_header_cnt(copy), 3);
            assert_int_equal(kf_headers_set_str(copy, "origin", "copy", &err), KF_OK);
            assert_int_equal(rd_kafka_header_cnt(copy), 3);
            const char *name;
            assert_int_equal(rd_kafka_header_get_all(copy, 0, &name, &hv, &hl), 0);
            assert_string_equal(name, "seq");
            assert_int_equal(rd_kafka_header_get_last(copy, "origin", &hv, &hl), 0);
            assert_memory_equal(hv, "copy", 4);
            rd_kafka_headers_destroy(copy);
            rd_kafka_message_destroy(msg);
            got++;
        }
    }
    assert_int_equal(got, 20);
    for (int k = 0; k < 4; k++)
        assert_int_equal(last_value_of_key[k], 16 + k);
    kf_consumer_destroy(c);
    kf_producer_destroy(p);
    kf_test_mock_stop(&m);
}

/* murmur2_random puts a key where the Java client (and so Debezium) would:
 * partition = (murmur2(key) & 0x7fffffff) % n; hashes from Kafka's own murmur2 test vectors. */
static void keys_partition_like_java(void **state)
{
    static const struct {
        const char *key;
        int32_t partition; /* of 16 */
    } cases[] = {{"21", 12}, {"foobar", 14}, {"a-little-bit-long-string", 0}, {"abc", 11}};
    kf_test_mock m;
    assert_int_equal(kf_test_mock_start(&m, 1), 0);
    kf_producer *p = producer_on(&m, 0, 0, NULL, NULL);
    rd_kafka_t *rk = kf_producer_handle(p);
    kf_error err;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char topic[32];
        snprintf(topic, sizeof(topic), "java-%zu", i);
        rd_kafka_mock_topic_create(m.mc, topic, 16, 1);
        assert_int_equal(produce_str(p, topic, RD_KAFKA_PARTITION_UA, cases[i].key, "x", 0, &err),
                         KF_OK);
        assert_int_equal(kf_producer_flush(p, 10000, &err), KF_OK);
        int found = -1;
        for (int32_t part = 0; part < 16; part++) {
            int64_t lo, hi;
            assert_int_equal(rd_kafka_query_watermark_offsets(rk, topic, part, &lo, &hi, 5000), 0);
            if (hi > 0)
                found = part;
        }
        assert_int_equal(found, cases[i].partition);
    }
    kf_producer_destroy(p);
    kf_test_mock_stop(&m);
}

/* Partition 0 is led by a slow broker: messages to partition 1 are acknowledged first, yet
 * acked_upto waits for the first message. */
static void acked_upto_advances_only_contiguously(void **state)
{
    kf_test_mock m;
    assert_int_equal(kf_test_mock_start(&m, 2), 0);
    rd_kafka_mock_topic_create(m.mc, "order", 2, 1);
    rd_kafka_mock_partition_set_leader(m.mc, "order", 0, 1);
    rd_kafka_mock_partition_set_leader(m.mc, "order", 1, 2);
    kf_producer *p = producer_on(&m, 0, 0, NULL, NULL);
    kf_error err;
    /* warm up both connections before slowing broker 1 */
    assert_int_equal(produce_str(p, "order", 0, "k", "warm", 0, &err), KF_OK);
    assert_int_equal(produce_str(p, "order", 1, "k", "warm", 0, &err), KF_OK);
    assert_int_equal(kf_producer_flush(p, 10000, &err), KF_OK);
    assert_int_equal(kf_producer_acked_upto(p), 2);

    rd_kafka_mock_broker_set_rtt(m.mc, 1, 1500);
    assert_int_equal(produce_str(p, "order", 0, "k", "slow", 0, &err), KF_OK); /* seq 3 */
    for (int i = 0; i < 4; i++)                                                /* seq 4..7 */
        assert_int_equal(produce_str(p, "order", 1, "k", "fast", 0, &err), KF_OK);

    kf_producer_stats st;
    int64_t deadline = kf_test_now_ms() + 5000;
    do {
        kf_producer_poll(p, 50);
        kf_producer_stats_get(p, &st);
    } while (st.acked < 6 && kf_test_now_ms() < deadline);
    assert_int_equal(st.acked, 6); /* 2 warm-up + 4 fast */
    assert_int_equal(st.in_flight, 1);
    assert_int_equal(st.window, 5); /* the slow message holds the window open */
    assert_int_equal(kf_producer_acked_upto(p), 2);

    assert_int_equal(kf_producer_flush(p, 10000, &err), KF_OK);
    assert_int_equal(kf_producer_acked_upto(p), 7);
    kf_producer_destroy(p);
    kf_test_mock_stop(&m);
}

/* A produce request the broker rejects for good fails its message: acked_upto freezes below
 * it while later messages are still acknowledged, and the producer reports the failure. */
static void failed_delivery_freezes_acked_upto(void **state)
{
    kf_test_mock m;
    assert_int_equal(kf_test_mock_start(&m, 1), 0);
    rd_kafka_mock_topic_create(m.mc, "fail", 1, 1);
    kf_producer *p = producer_on(&m, 0, 0, NULL, NULL);
    kf_error err;
    for (uint64_t s = 10; s <= 30; s += 10) /* caller sequences with gaps */
        assert_int_equal(produce_str(p, "fail", 0, "k", "ok", s, &err), KF_OK);
    assert_int_equal(kf_producer_flush(p, 10000, &err), KF_OK);
    assert_int_equal(kf_producer_acked_upto(p), 30);
    assert_int_equal(produce_str(p, "fail", 0, "k", "late", 25, &err), KF_ERR_INVALID);

    rd_kafka_mock_push_request_errors(m.mc, 0 /* Produce */, 1, RD_KAFKA_RESP_ERR_INVALID_RECORD);
    assert_int_equal(produce_str(p, "fail", 0, "k", "rejected", 40, &err), KF_OK);
    assert_int_equal(kf_producer_flush(p, 10000, &err), KF_OK);
    assert_int_equal(produce_str(p, "fail", 0, "k", "after", 50, &err), KF_OK);
    assert_int_equal(kf_producer_flush(p, 10000, &err), KF_OK);

    kf_producer_stats st;
    kf_producer_stats_get(p, &st);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.acked, 4);
    assert_int_equal(kf_producer_acked_upto(p), 39);
    kf_error_clear(&err);
    assert_true(kf_producer_failed(p, &err));
    assert_non_null(strstr(err.message, "could not deliver message 40"));
    kf_producer_destroy(p);
    kf_test_mock_stop(&m);
}

/* Retriable broker errors are retried by the client: nothing fails, accounting completes. */
static void retriable_errors_do_not_fail_deliveries(void **state)
{
    kf_test_mock m;
    assert_int_equal(kf_test_mock_start(&m, 1), 0);
    rd_kafka_mock_topic_create(m.mc, "retry", 1, 1);
    kf_producer *p = producer_on(&m, 0, 0, "retry.backoff.ms", "10");
    kf_error err;
    rd_kafka_mock_push_request_errors(m.mc, 0, 3, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                      RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
    for (int i = 0; i < 10; i++)
        assert_int_equal(produce_str(p, "retry", 0, "k", "v", 0, &err), KF_OK);
    assert_int_equal(kf_producer_flush(p, 20000, &err), KF_OK);
    assert_int_equal(kf_producer_acked_upto(p), 10);
    assert_false(kf_producer_failed(p, NULL));
    kf_producer_destroy(p);
    kf_test_mock_stop(&m);
}

/* With a slow broker, the producer never holds more than max_in_flight messages: it says
 * KF_ERR_FULL when told not to wait, and otherwise waits for deliveries. */
static void in_flight_bound_applies_backpressure(void **state)
{
    kf_test_mock m;
    assert_int_equal(kf_test_mock_start(&m, 1), 0);
    rd_kafka_mock_topic_create(m.mc, "bp", 1, 1);
    kf_error err;

    kf_producer *p = producer_on(&m, 5, -1, NULL, NULL);
    assert_int_equal(produce_str(p, "bp", 0, NULL, "warm", 0, &err), KF_OK);
    assert_int_equal(kf_producer_flush(p, 10000, &err), KF_OK);
    rd_kafka_mock_broker_set_rtt(m.mc, 1, 300);
    for (int i = 0; i < 5; i++)
        assert_int_equal(produce_str(p, "bp", 0, NULL, "v", 0, &err), KF_OK);
    assert_int_equal(produce_str(p, "bp", 0, NULL, "v", 0, &err), KF_ERR_FULL);
    assert_true(err.retriable);
    kf_producer_stats st;
    kf_producer_stats_get(p, &st);
    assert_int_equal(st.in_flight, 5);
    assert_int_equal(st.window, 5);
    assert_int_equal(st.produced, 6);
    assert_int_equal(kf_producer_flush(p, 10000, &err), KF_OK);
    assert_int_equal(produce_str(p, "bp", 0, NULL, "v", 0, &err), KF_OK);
    assert_int_equal(kf_producer_flush(p, 10000, &err), KF_OK);
    assert_int_equal(kf_producer_acked_upto(p), 7);
    kf_producer_destroy(p);

    /* waiting producer: 30 messages through a window of 4 */
    p = producer_on(&m, 4, 10000, NULL, NULL);
    rd_kafka_mock_broker_set_rtt(m.mc, 1, 20);
    uint64_t max_seen = 0;
    for (int i = 0; i < 30; i++) {
        assert_int_equal(produce_str(p, "bp", 0, NULL, "w", 0, &err), KF_OK);
        kf_producer_stats_get(p, &st);
        if (st.window > max_seen)
            max_seen = st.window;
    }
    assert_true(max_seen <= 4);
    assert_int_equal(kf_producer_flush(p, 10000, &err), KF_OK);
    assert_int_equal(kf_producer_acked_upto(p), 30);
    kf_producer_destroy(p);
    kf_test_mock_stop(&m);
}

/* librdkafka's own queue limit (queue.buffering.max.messages) is backpressure as well. */
static void client_queue_full_is_backpressure(void **state)
{
    kf_test_mock m;
    assert_int_equal(kf_test_mock_start(&m, 1), 0);
    rd_kafka_mock_topic_create(m.mc, "qf", 1, 1);
    kf_error err;
    kf_producer *p = producer_on(&m, 100, -1, "queue.buffering.max.messages", "3");
    int rc = KF_OK, accepted = 0;
    for (int i = 0; i < 10 && rc == KF_OK; i++) {
        rc = produce_str(p, "qf", 0, NULL, "v", 0, &err);
        if (rc == KF_OK)
            accepted++;
    }
    assert_int_equal(rc, KF_ERR_FULL);
    assert_int_equal(accepted, 3);
    kf_producer_stats st;
    kf_producer_stats_get(p, &st);
    assert_int_equal(st.in_flight, 3); /* the refused message left no slot behind */
    assert_int_equal(kf_producer_flush(p, 10000, &err), KF_OK);
    assert_int_equal(kf_producer_acked_upto(p), 3);
    kf_producer_destroy(p);

    p = producer_on(&m, 100, 10000, "queue.buffering.max.messages", "3");
    for (int i = 0; i < 10; i++)
        assert_int_equal(produce_str(p, "qf", 0, NULL, "v", 0, &err), KF_OK);
    assert_int_equal(kf_producer_flush(p, 10000, &err), KF_OK);
    assert_int_equal(kf_producer_acked_upto(p), 10);
    kf_producer_destroy(p);
    kf_test_mock_stop(&m);
}

static void bad_configuration_is_a_config_error(void **state)
{
    const char *kv[] = {"bootstrap.servers", "127.0.0.1:1", "no.such.property", "1"};
    kf_error err;
    assert_null(kf_producer_new(kv, 2, NULL, &err));
    assert_int_equal(err.code, KF_ERR_CONFIG);
    assert_non_null(strstr(err.message, "kafka.no.such.property"));
    kf_producer_destroy(NULL);
}

static void message_without_topic_is_invalid(void **state)
{
    const char *kv[] = {"bootstrap.servers", "127.0.0.1:1"};
    kf_error err;
    kf_producer *p = kf_producer_new(kv, 1, NULL, &err);
    assert_non_null(p);
    kf_produce_msg msg = {.partition = RD_KAFKA_PARTITION_UA, .headers = rd_kafka_headers_new(1)};
    assert_int_equal(kf_producer_produce(p, &msg, NULL, &err), KF_ERR_INVALID);
    kf_producer_destroy(p);
}

/* librdkafka's log lines reach kf_log with their level mapped and facility/client fields. */
static void client_logs_are_routed_to_kf_log(void **state)
{
    FILE *capture = tmpfile();
    assert_non_null(capture);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(capture), STDERR_FILENO) >= 0);

    const char *kv[] = {"bootstrap.servers", "127.0.0.1:1", "client.id", "logcheck"};
    kf_error err;
    kf_producer *p = kf_producer_new(kv, 2, NULL, &err);
    assert_non_null(p);
    for (int i = 0; i < 10; i++)
        kf_producer_poll(p, 100);
    kf_producer_destroy(p);

    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    char buf[8192];
    rewind(capture);
    size_t n = fread(buf, 1, sizeof(buf) - 1, capture);
    buf[n] = '\0';
    fclose(capture);
    /* the refused connection: a syslog error line from the broker thread, then the client
     * error callback */
    assert_non_null(strstr(buf, "level=error"));
    assert_non_null(strstr(buf, "facility=FAIL"));
    assert_non_null(strstr(buf, "client=logcheck#producer-"));
    assert_non_null(strstr(buf, "msg=\"kafka client error\""));
}

/* Workers hand every "kafka." key to their consumer and their producer alike: a producer
 * leaves the consumer's keys out quietly (librdkafka would warn about each), and still
 * checks its own. */
static void consumer_keys_are_left_out(void **state)
{
    kf_log_init("test_kafka_producer", KF_LOG_WARN, KF_LOG_LOGFMT);
    FILE *capture = tmpfile();
    assert_non_null(capture);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(capture), STDERR_FILENO) >= 0);

    const char *kv[] = {"bootstrap.servers",   "127.0.0.1:1", "group.id",          "g",
                        "queued.min.messages", "5000",        "auto.offset.reset", "earliest",
                        "session.timeout.ms",  "10000",       "linger.ms",         "7"};
    kf_error err;
    kf_producer *p = kf_producer_new(kv, 6, NULL, &err);
    assert_non_null(p);
    char linger[32];
    size_t len = sizeof(linger);
    const rd_kafka_conf_t *conf = rd_kafka_conf(kf_producer_handle(p));
    assert_int_equal(rd_kafka_conf_get(conf, "linger.ms", linger, &len), RD_KAFKA_CONF_OK);
    kf_producer_destroy(p);

    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    kf_log_init("test_kafka_producer", KF_LOG_ERROR, KF_LOG_LOGFMT);
    char buf[16384];
    rewind(capture);
    size_t n = fread(buf, 1, sizeof(buf) - 1, capture);
    buf[n] = '\0';
    fclose(capture);
    assert_null(strstr(buf, "will be ignored"));
    assert_string_equal(linger, "7");

    const char *bad[] = {"bootstrap.servers", "127.0.0.1:1", "linger.ms", "soon"};
    assert_null(kf_producer_new(bad, 2, NULL, &err));
    assert_int_equal(err.code, KF_ERR_CONFIG);
}

int main(void)
{
    kf_log_init("test_kafka_producer", KF_LOG_ERROR, KF_LOG_LOGFMT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_keeps_key_value_headers),
        cmocka_unit_test(keys_partition_like_java),
        cmocka_unit_test(acked_upto_advances_only_contiguously),
        cmocka_unit_test(failed_delivery_freezes_acked_upto),
        cmocka_unit_test(retriable_errors_do_not_fail_deliveries),
        cmocka_unit_test(in_flight_bound_applies_backpressure),
        cmocka_unit_test(client_queue_full_is_backpressure),
        cmocka_unit_test(bad_configuration_is_a_config_error),
        cmocka_unit_test(message_without_topic_is_invalid),
        cmocka_unit_test(client_logs_are_routed_to_kf_log),
        cmocka_unit_test(consumer_keys_are_left_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
