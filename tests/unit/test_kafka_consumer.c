/* Unit tests for the kafka consumer on librdkafka's mock cluster: rebalance hooks under both
 * protocols, a seek from the assign hook, stored offsets and commits, pause/resume. */
#include "kf_test_kafka.h"
#include "kfleet/kafka.h"
#include "kfleet/log.h"

typedef struct hook_log {
    int assigns;
    int revokes;
    int assigned_parts; /* total partitions seen by on_assign */
    int revoked_parts;
    bool lost_seen;
    int64_t seek_to;          /* >= 0: the assign hook starts partition 0 there */
    int64_t commit_in_revoke; /* the revoke hook commits stored offsets when >= 0 */
    int revoke_commit_rc;
} hook_log;

static int on_assign(void *ctx, kf_consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    hook_log *h = ctx;
    h->assigns++;
    h->assigned_parts += parts->cnt;
    for (int i = 0; i < parts->cnt; i++) {
        assert_int_equal(parts->elems[i].offset, RD_KAFKA_OFFSET_INVALID);
        if (h->seek_to >= 0 && parts->elems[i].partition == 0)
            parts->elems[i].offset = h->seek_to;
    }
    return 0;
}

static void on_revoke(void *ctx, kf_consumer *c, const rd_kafka_topic_partition_list_t *parts,
                      bool lost)
{
    hook_log *h = ctx;
    h->revokes++;
    h->revoked_parts += parts->cnt;
    h->lost_seen |= lost;
    if (h->commit_in_revoke >= 0) {
        kf_error err;
        h->revoke_commit_rc = kf_consumer_commit(c, false, &err);
    }
}

static kf_consumer *consumer_on(const kf_test_mock *m, const char *group, const char *strategy,
                                hook_log *h)
{
    const char *kv[] = {"bootstrap.servers",
                        m->bootstraps,
                        "group.id",
                        group,
                        "enable.auto.commit",
                        "false",
                        "partition.assignment.strategy",
                        strategy ? strategy : "cooperative-sticky",
                        "session.timeout.ms",
                        "6000",
                        "heartbeat.interval.ms",
                        "500"};
    kf_consumer_options o = {.hooks = {.on_assign = on_assign, .on_revoke = on_revoke, .ctx = h}};
    kf_error err;
    kf_consumer *c = kf_consumer_new(kv, 6, h ? &o : NULL, &err);
    if (!c)
        fail_msg("%s", err.message);
    return c;
}

static void run_assign_hook_seek(const char *strategy)
{
    kf_test_mock m;
    assert_int_equal(kf_test_mock_start(&m, 1), 0);
    rd_kafka_mock_topic_create(m.mc, "seek", 2, 1);
    kf_test_fill(m.bootstraps, "seek", 0, 10);
    hook_log h = {.seek_to = 6, .commit_in_revoke = -1};
    kf_consumer *c = consumer_on(&m, "seek-group", strategy, &h);
    const char *topics[] = {"seek"};
    kf_error err;
    assert_int_equal(kf_consumer_subscribe(c, topics, 1, &err), KF_OK);
    rd_kafka_message_t *msgs[16];
    int n = kf_test_consume(c, msgs, 4, 8000);
    assert_int_equal(n, 4); /* offsets 6..9: the hook's seek took effect */
    assert_int_equal(msgs[0]->offset, 6);
    assert_int_equal(msgs[3]->offset, 9);
    kf_test_destroy_all(msgs, n);
    assert_int_equal(kf_test_consume(c, msgs, 16, 500), 0); /* and nothing before them */
    assert_int_equal(h.assigns, 1);
    assert_int_equal(h.assigned_parts, 2);

    rd_kafka_topic_partition_list_t *asg = NULL;
    assert_int_equal(kf_consumer_assignment(c, &asg, &err), KF_OK);
    assert_int_equal(asg->cnt, 2);
    rd_kafka_topic_partition_list_destroy(asg);

    assert_int_equal(kf_consumer_close(c, &err), KF_OK);
    assert_int_equal(h.revokes, 1); /* leaving the group revokes everything */
    assert_int_equal(h.revoked_parts, 2);
    assert_false(h.lost_seen);
    assert_int_equal(kf_consumer_close(c, &err), KF_OK); /* idempotent */
    kf_consumer_destroy(c);
    kf_test_mock_stop(&m);
}

static void assign_hook_seek_cooperative(void **state)
{
    run_assign_hook_seek("cooperative-sticky");
}

static void assign_hook_seek_eager(void **state)
{
    run_assign_hook_seek("range");
}

/* Only stored offsets are committed; a new member of the group resumes after them. */
static void stored_offsets_are_committed(void **state)
{
    kf_test_mock m;
    assert_int_equal(kf_test_mock_start(&m, 1), 0);
    rd_kafka_mock_topic_create(m.mc, "store", 1, 1);
    kf_test_fill(m.bootstraps, "store", 0, 10);
    hook_log h = {.seek_to = -1, .commit_in_revoke = 0};
    kf_consumer *c = consumer_on(&m, "store-group", NULL, &h);
    const char *topics[] = {"store"};
    kf_error err;
    assert_int_equal(kf_consumer_subscribe(c, topics, 1, &err), KF_OK);
    rd_kafka_message_t *msgs[10];
    int n = kf_test_consume(c, msgs, 10, 8000);
    assert_int_equal(n, 10);
    assert_int_equal(kf_consumer_commit(c, false, &err), KF_OK); /* nothing stored yet: no-op */
    for (int i = 0; i < 4; i++)
        assert_int_equal(kf_consumer_store_offset(c, msgs[i], &err), KF_OK);
    kf_test_destroy_all(msgs, n);
    assert_int_equal(kf_consumer_commit(c, false, &err), KF_OK);

    assert_int_equal(kf_test_committed(c, "store", 0, 5000), 4);
    kf_consumer_destroy(c); /* closes: the revoke hook commits */
    assert_int_equal(h.revokes, 1);
    assert_int_equal(h.revoke_commit_rc, KF_OK);

    c = consumer_on(&m, "store-group", NULL, NULL);
    assert_int_equal(kf_consumer_subscribe(c, topics, 1, &err), KF_OK);
    n = kf_test_consume(c, msgs, 6, 8000);
    assert_int_equal(n, 6);
    assert_int_equal(msgs[0]->offset, 4);
    kf_test_destroy_all(msgs, n);
    assert_int_equal(kf_test_consume(c, msgs, 10, 300), 0);
    kf_consumer_destroy(c);
    kf_test_mock_stop(&m);
}

/* Paused partitions deliver nothing while the consumer keeps polling; resume delivers. */
static void pause_and_resume(void **state)
{
    kf_test_mock m;
    assert_int_equal(kf_test_mock_start(&m, 1), 0);
    rd_kafka_mock_topic_create(m.mc, "pause", 2, 1);
    kf_test_fill(m.bootstraps, "pause", 0, 3);
    hook_log h = {.seek_to = -1, .commit_in_revoke = -1};
    kf_consumer *c = consumer_on(&m, "pause-group", NULL, &h);
    const char *topics[] = {"pause"};
    kf_error err;
    assert_int_equal(kf_consumer_subscribe(c, topics, 1, &err), KF_OK);
    rd_kafka_message_t *msgs[8];
    int n = kf_test_consume(c, msgs, 3, 8000);
    assert_int_equal(n, 3);
    kf_test_destroy_all(msgs, n);

    assert_int_equal(kf_consumer_pause(c, &err), KF_OK);
    assert_true(kf_consumer_paused(c));
    kf_test_fill(m.bootstraps, "pause", 0, 2);
    kf_test_fill(m.bootstraps, "pause", 1, 2);
    n = kf_test_consume(c, msgs, 8, 1500);
    assert_int_equal(n, 0);

    assert_int_equal(kf_consumer_resume(c, &err), KF_OK);
    assert_false(kf_consumer_paused(c));
    n = kf_test_consume(c, msgs, 4, 8000);
    assert_int_equal(n, 4);
    kf_test_destroy_all(msgs, n);
    kf_consumer_destroy(c);
    kf_test_mock_stop(&m);
}

/* A second member joins: with cooperative-sticky the first gives up partitions through the
 * revoke hook and keeps the rest; together they hold every partition once. */
static void second_member_splits_partitions(void **state)
{
    kf_test_mock m;
    assert_int_equal(kf_test_mock_start(&m, 1), 0);
    rd_kafka_mock_topic_create(m.mc, "split", 4, 1);
    hook_log h1 = {.seek_to = -1, .commit_in_revoke = -1};
    hook_log h2 = {.seek_to = -1, .commit_in_revoke = -1};
    kf_consumer *c1 = consumer_on(&m, "split-group", NULL, &h1);
    const char *topics[] = {"split"};
    kf_error err;
    assert_int_equal(kf_consumer_subscribe(c1, topics, 1, &err), KF_OK);
    rd_kafka_message_t *msgs[4];
    int64_t deadline = kf_test_now_ms() + 10000;
    while (h1.assigned_parts < 4 && kf_test_now_ms() < deadline)
        assert_int_equal(kf_consumer_poll_batch(c1, msgs, 4, 100, &err), 0);
    assert_int_equal(h1.assigned_parts, 4);

    kf_consumer *c2 = consumer_on(&m, "split-group", NULL, &h2);
    assert_int_equal(kf_consumer_subscribe(c2, topics, 1, &err), KF_OK);
    deadline = kf_test_now_ms() + 20000;
    while (h2.assigned_parts < 2 && kf_test_now_ms() < deadline) {
        assert_int_equal(kf_consumer_poll_batch(c1, msgs, 4, 100, &err), 0);
        assert_int_equal(kf_consumer_poll_batch(c2, msgs, 4, 100, &err), 0);
    }
    assert_int_equal(h2.assigned_parts, 2);
    assert_int_equal(h1.revoked_parts, 2); /* only what moved was revoked */
    int n1, n2;
    kf_test_assert_disjoint(c1, c2, &n1, &n2);
    assert_int_equal(n1, 2);
    assert_int_equal(n2, 2);
    kf_consumer_destroy(c2);
    kf_consumer_destroy(c1);
    kf_test_mock_stop(&m);
}

static void configuration_is_checked(void **state)
{
    kf_error err;
    const char *no_group[] = {"bootstrap.servers", "127.0.0.1:1"};
    assert_null(kf_consumer_new(no_group, 1, NULL, &err));
    assert_int_equal(err.code, KF_ERR_CONFIG);
    assert_non_null(strstr(err.message, "group.id"));
    const char *auto_store[] = {"bootstrap.servers",        "127.0.0.1:1", "group.id", "g",
                                "enable.auto.offset.store", "true"};
    assert_null(kf_consumer_new(auto_store, 3, NULL, &err));
    assert_int_equal(err.code, KF_ERR_CONFIG);
    const char *bad_value[] = {"bootstrap.servers",  "127.0.0.1:1", "group.id", "g",
                               "session.timeout.ms", "many"};
    assert_null(kf_consumer_new(bad_value, 3, NULL, &err));
    assert_int_equal(err.code, KF_ERR_CONFIG);
    kf_consumer_destroy(NULL);
}

int main(void)
{
    kf_log_init("test_kafka_consumer", KF_LOG_ERROR, KF_LOG_LOGFMT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(assign_hook_seek_cooperative),
        cmocka_unit_test(assign_hook_seek_eager),
        cmocka_unit_test(stored_offsets_are_committed),
        cmocka_unit_test(pause_and_resume),
        cmocka_unit_test(second_member_splits_partitions),
        cmocka_unit_test(configuration_is_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
