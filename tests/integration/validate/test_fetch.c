/* Integration test: kf_consumer_poll_batch keeps a fast consumer fed when its prefetch queue
 * is small. librdkafka before 2.2 parks the fetcher once queued.min.messages are queued and
 * looks again only after up to a second; 60000 records through a 2000-record queue took 5 s
 * that way, and take about 0.1 s with the fetcher woken. */
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

#define RECORDS 60000
#define BATCH   1000

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
    int64_t first = 0, deadline = mono_ms() + 60000;
    while (got < RECORDS && mono_ms() < deadline) {
        int n = kf_consumer_poll_batch(c, msgs, BATCH, 500, &err);
        assert_true(n >= 0);
        if (n > 0 && !first)
            first = mono_ms();
        for (int i = 0; i < n; i++)
            rd_kafka_message_destroy(msgs[i]);
        got += (size_t)n;
    }
    int64_t took = mono_ms() - first;
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

int main(void)
{
    kf_log_init("integration_validate_fetch", KF_LOG_WARN, KF_LOG_LOGFMT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_queue_does_not_starve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
