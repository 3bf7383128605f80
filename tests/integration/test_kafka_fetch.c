/* Integration test: kf_consumer_poll_batch keeps a fast consumer fed when its prefetch queue
 * is small. librdkafka before 2.2 parks the fetcher once queued.min.messages are queued and
 * looks again only after up to a second:
 * - a backlog of 60000 records through a 2000-record queue took 5 s that way, and takes about
 *   0.1 s with the fetcher woken;
 * - a consumer of a live stream that falls behind for a moment, fills its queue, drains it and
 *   catches up stopped receiving records for up to a second each time (the fetcher parked
 *   with the high watermark it last saw, which the consumer's position then equals). */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kf_test_env.h"
#include "kfleet/kafka.h"
#include "kfleet/log.h"
#include "kfleet/retry.h"

#define RECORDS 60000
#define BATCH   1000

/* The live stream: LIVE_RATE records/s for LIVE_MS, produced in 1 ms steps. */
#define LIVE_RATE 20000
#define LIVE_MS   4000
/* The consumer falls behind by STALL_MS every STALL_EVERY batches. */
#define STALL_MS    150
#define STALL_EVERY 20

static void test_small_queue_does_not_starve(void **state)
{
    (void)state;
    const char *bootstrap = kf_test_env("KFLEET_BOOTSTRAP");
    char topic[128], group[128];
    kf_test_unique_name(topic, sizeof(topic), "fetch_nudge");
    kf_test_unique_name(group, sizeof(group), "fetch_nudge_group");
    kf_error err;
    const char *akv[] = {"bootstrap.servers", bootstrap};
    kf_admin *a = kf_admin_new(akv, 1, &err);
    assert_non_null(a);
    kf_topic_spec spec = {.name = topic, .partitions = 1, .replication_factor = 1};
    assert_int_equal(kf_admin_create_topics(a, &spec, 1, false, 30000, &err), KF_OK);

    const char *pkv[] = {"bootstrap.servers", bootstrap, "linger.ms", "20"};
    kf_producer *p = kf_producer_new(pkv, 2, NULL, &err);
    assert_non_null(p);
    char value[100];
    memset(value, 'v', sizeof(value));
    for (int i = 0; i < RECORDS; i++) {
        kf_produce_msg m = {.topic = topic, .partition = 0, .value = value, .value_len = 100};
        assert_int_equal(kf_producer_produce(p, &m, NULL, &err), KF_OK);
    }
    assert_int_equal(kf_producer_flush(p, 60000, &err), KF_OK);
    assert_false(kf_producer_failed(p, &err));
    kf_producer_destroy(p);

    const char *ckv[] = {
        "bootstrap.servers",   bootstrap, "group.id", group, "enable.auto.commit", "false",
        "queued.min.messages", "2000"};
    kf_consumer *c = kf_consumer_new(ckv, 4, NULL, &err);
    assert_non_null(c);
    const char *topics[] = {topic};
    assert_int_equal(kf_consumer_subscribe(c, topics, 1, &err), KF_OK);
    rd_kafka_message_t *msgs[BATCH];
    size_t got = 0;
    int64_t first = 0, deadline = kf_retry_now_ms() + 60000;
    while (got < RECORDS && kf_retry_now_ms() < deadline) {
        int n = kf_consumer_poll_batch(c, msgs, BATCH, 500, &err);
        assert_true(n >= 0);
        if (n > 0 && !first)
            first = kf_retry_now_ms();
        for (int i = 0; i < n; i++)
            rd_kafka_message_destroy(msgs[i]);
        got += (size_t)n;
    }
    int64_t took = kf_retry_now_ms() - first;
    uint64_t nudges = kf_consumer_fetch_nudges(c);
    assert_int_equal(kf_consumer_close(c, &err), KF_OK);
    kf_consumer_destroy(c);
    assert_int_equal(got, RECORDS);
    print_message("consumed %d records in %lld ms with %llu fetcher nudges\n", RECORDS,
                  (long long)took, (unsigned long long)nudges);
    if (rd_kafka_version() < 0x02020000)
        assert_true(nudges > 0);
    assert_true(took < 2000);

    const char *names[] = {topic};
    assert_int_equal(kf_admin_delete_topics(a, names, 1, true, 30000, &err), KF_OK);
    kf_admin_destroy(a);
}

typedef struct live_producer {
    const char *bootstrap;
    const char *topic;
    bool ok;
} live_producer;

static void *produce_live(void *arg)
{
    live_producer *lp = arg;
    kf_error err;
    const char *pkv[] = {"bootstrap.servers", lp->bootstrap, "linger.ms", "2"};
    kf_producer *p = kf_producer_new(pkv, 2, NULL, &err);
    if (!p)
        return NULL;
    char value[100];
    memset(value, 'v', sizeof(value));
    int64_t start = kf_retry_now_ms();
    int sent = 0;
    bool ok = true;
    const int total = LIVE_RATE / 1000 * LIVE_MS;
    while (ok && sent < total) {
        int64_t due = (kf_retry_now_ms() - start + 1) * LIVE_RATE / 1000;
        for (; ok && sent < due && sent < total; sent++) {
            kf_produce_msg m = {.topic = lp->topic,
                                .partition = sent % 3,
                                .value = value,
                                .value_len = sizeof(value)};
            ok = kf_producer_produce(p, &m, NULL, &err) == KF_OK;
        }
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    ok = ok && kf_producer_flush(p, 30000, &err) == KF_OK && !kf_producer_failed(p, &err);
    kf_producer_destroy(p);
    lp->ok = ok;
    return NULL;
}

/* How late each record is polled (poll time minus its Kafka timestamp): at most the stall
 * plus the time to catch up, never the second of a parked fetcher. */
static void test_live_consumer_is_not_parked(void **state)
{
    (void)state;
    const char *bootstrap = kf_test_env("KFLEET_BOOTSTRAP");
    char topic[128], group[128];
    kf_test_unique_name(topic, sizeof(topic), "fetch_live");
    kf_test_unique_name(group, sizeof(group), "fetch_live_group");
    kf_error err;
    const char *akv[] = {"bootstrap.servers", bootstrap};
    kf_admin *a = kf_admin_new(akv, 1, &err);
    assert_non_null(a);
    kf_topic_spec spec = {.name = topic, .partitions = 3, .replication_factor = 1};
    assert_int_equal(kf_admin_create_topics(a, &spec, 1, false, 30000, &err), KF_OK);

    const char *ckv[] = {"bootstrap.servers",   bootstrap, "group.id",          group,
                         "enable.auto.commit",  "false",   "auto.offset.reset", "earliest",
                         "queued.min.messages", "2000"};
    kf_consumer *c = kf_consumer_new(ckv, 5, NULL, &err);
    assert_non_null(c);
    const char *topics[] = {topic};
    assert_int_equal(kf_consumer_subscribe(c, topics, 1, &err), KF_OK);
    rd_kafka_message_t *msgs[BATCH];
    /* Joined before the stream starts (the topic is new: every record is read). */
    for (int64_t until = kf_retry_now_ms() + 30000; kf_retry_now_ms() < until;) {
        assert_true(kf_consumer_poll_batch(c, msgs, BATCH, 100, &err) >= 0);
        rd_kafka_topic_partition_list_t *parts = NULL;
        assert_int_equal(kf_consumer_assignment(c, &parts, &err), KF_OK);
        int cnt = parts->cnt;
        rd_kafka_topic_partition_list_destroy(parts);
        if (cnt == 3)
            break;
    }

    live_producer lp = {.bootstrap = bootstrap, .topic = topic};
    pthread_t producer;
    assert_int_equal(pthread_create(&producer, NULL, produce_live, &lp), 0);
    const int total = LIVE_RATE / 1000 * LIVE_MS;
    int got = 0, batches = 0;
    int64_t worst = 0, deadline = kf_retry_now_ms() + LIVE_MS + 30000;
    while (got < total && kf_retry_now_ms() < deadline) {
        int n = kf_consumer_poll_batch(c, msgs, BATCH, 100, &err);
        assert_true(n >= 0);
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        for (int i = 0; i < n; i++) {
            int64_t late = now_ms - rd_kafka_message_timestamp(msgs[i], NULL);
            if (late > worst)
                worst = late;
            rd_kafka_message_destroy(msgs[i]);
        }
        got += n;
        if (n > 0 && ++batches % STALL_EVERY == 0) {
            struct timespec stall = {0, STALL_MS * 1000000L};
            nanosleep(&stall, NULL);
        }
    }
    pthread_join(producer, NULL);
    uint64_t nudges = kf_consumer_fetch_nudges(c);
    assert_int_equal(kf_consumer_close(c, &err), KF_OK);
    kf_consumer_destroy(c);
    print_message("live stream: %d of %d records, %d batches, latest poll %lld ms after the "
                  "record's timestamp, %llu fetcher nudges\n",
                  got, total, batches, (long long)worst, (unsigned long long)nudges);
    assert_true(lp.ok);
    assert_int_equal(got, total);
    /* A parked fetcher shows as ~1000 ms; a stall and its catching up take ~STALL_MS + 100. */
    assert_true(worst < STALL_MS + 450);

    const char *names[] = {topic};
    assert_int_equal(kf_admin_delete_topics(a, names, 1, true, 30000, &err), KF_OK);
    kf_admin_destroy(a);
}

int main(void)
{
    kf_log_init("integration_kafka_fetch", KF_LOG_WARN, KF_LOG_LOGFMT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_queue_does_not_starve),
        cmocka_unit_test(test_live_consumer_is_not_parked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
