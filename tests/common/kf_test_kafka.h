/* Kafka test helpers shared by the kafka unit tests (librdkafka's mock cluster) and the
 * integration test (the real broker): a monotonic clock, polling with a deadline, filling a
 * partition, committed offsets and assignment checks. Header-only. */
#ifndef KF_TEST_KAFKA_H
#define KF_TEST_KAFKA_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "kfleet/kafka.h"

/* A mock cluster and the quiet client handle that owns it. */
typedef struct kf_test_mock {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    char bootstraps[256]; /* the cluster's bootstrap.servers list */
} kf_test_mock;

/* Starts a mock cluster of the given number of brokers and copies its bootstrap list into m.
 * Returns 0, or -1 with the reason on stderr and nothing left to stop, so that both a test
 * (assert it is 0) and a cmocka setup function (return -1) can use it. */
static inline int kf_test_mock_start(kf_test_mock *m, int brokers)
{
    char errstr[256];
    memset(m, 0, sizeof(*m));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "could not configure the mock cluster's client: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (m->rk == NULL) {
        fprintf(stderr, "could not create the mock cluster's client: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    m->mc = rd_kafka_mock_cluster_new(m->rk, brokers);
    if (m->mc == NULL) {
        fprintf(stderr, "could not create a mock cluster of %d brokers\n", brokers);
        rd_kafka_destroy(m->rk);
        m->rk = NULL;
        return -1;
    }
    snprintf(m->bootstraps, sizeof(m->bootstraps), "%s", rd_kafka_mock_cluster_bootstraps(m->mc));
    return 0;
}

/* Destroys the cluster and its client; a mock that never started is a no-op. */
static inline void kf_test_mock_stop(kf_test_mock *m)
{
    if (m->mc != NULL) {
        rd_kafka_mock_cluster_destroy(m->mc);
    }
    if (m->rk != NULL) {
        rd_kafka_destroy(m->rk);
    }
    m->mc = NULL;
    m->rk = NULL;
}

/* Milliseconds on the monotonic clock, for deadlines. */
static inline int64_t kf_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls c until want messages arrived or timeout_ms passed and stores them in out (the caller
 * destroys them, e.g. with kf_test_destroy_all). Fails the running test when a poll fails.
 * Returns how many arrived. */
static inline int kf_test_consume(kf_consumer *c, rd_kafka_message_t **out, int want,
                                  int timeout_ms)
{
    int got = 0;
    int64_t deadline = kf_test_now_ms() + timeout_ms;
    kf_error err;
    while (got < want && kf_test_now_ms() < deadline) {
        int n = kf_consumer_poll_batch(c, out + got, (size_t)(want - got), 200, &err);
        if (n < 0) {
            fail_msg("%s", err.message);
        }
        got += n;
    }
    return got;
}

/* Destroys the first n messages of msgs. */
static inline void kf_test_destroy_all(rd_kafka_message_t **msgs, int n)
{
    for (int i = 0; i < n; i++) {
        rd_kafka_message_destroy(msgs[i]);
    }
}

/* Produces n messages "v0" .. "v<n-1>" to topic/partition through a producer of its own on
 * bootstraps (borrowed) and asserts that every one of them was acknowledged. */
static inline void kf_test_fill(const char *bootstraps, const char *topic, int32_t partition, int n)
{
    const char *kv[] = {"bootstrap.servers", bootstraps};
    kf_error err;
    kf_producer *p = kf_producer_new(kv, 1, NULL, &err);
    if (p == NULL) {
        fail_msg("%s", err.message);
    }
    for (int i = 0; i < n; i++) {
        char v[16];
        snprintf(v, sizeof(v), "v%d", i);
        kf_produce_msg msg = {
            .topic = topic, .partition = partition, .value = v, .value_len = strlen(v)};
        assert_int_equal(kf_producer_produce(p, &msg, NULL, &err), KF_OK);
    }
    assert_int_equal(kf_producer_flush(p, 10000, &err), KF_OK);
    assert_int_equal(kf_producer_acked_upto(p), (uint64_t)n);
    kf_producer_destroy(p);
}

/* The offset c's group has committed for topic/partition, asked of the broker (waiting at most
 * timeout_ms); RD_KAFKA_OFFSET_INVALID when there is none. Fails the test when the broker does
 * not answer. */
static inline int64_t kf_test_committed(kf_consumer *c, const char *topic, int32_t partition,
                                        int timeout_ms)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    assert_non_null(parts);
    rd_kafka_topic_partition_list_add(parts, topic, partition);
    assert_int_equal(rd_kafka_committed(kf_consumer_handle(c), parts, timeout_ms),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    int64_t offset = parts->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(parts);
    return offset;
}

/* Asserts that the current assignments of c1 and c2 share no partition and stores how many
 * partitions each holds in n1 and n2. */
static inline void kf_test_assert_disjoint(kf_consumer *c1, kf_consumer *c2, int *n1, int *n2)
{
    rd_kafka_topic_partition_list_t *a1 = NULL;
    rd_kafka_topic_partition_list_t *a2 = NULL;
    kf_error err;
    assert_int_equal(kf_consumer_assignment(c1, &a1, &err), KF_OK);
    assert_int_equal(kf_consumer_assignment(c2, &a2, &err), KF_OK);
    for (int i = 0; i < a1->cnt; i++) {
        for (int j = 0; j < a2->cnt; j++) {
            assert_int_not_equal(a1->elems[i].partition, a2->elems[j].partition);
        }
    }
    *n1 = a1->cnt;
    *n2 = a2->cnt;
    rd_kafka_topic_partition_list_destroy(a1);
    rd_kafka_topic_partition_list_destroy(a2);
}

#endif
