/* Integration tests for the kafka module against the real broker (KFLEET_BOOTSTRAP): topic
 * administration, 1000 keyed messages round trip, transaction visibility under
 * read_committed, a read-process-write cycle, and a cooperative group of two consumers. */
#include <stdlib.h>
#include <unistd.h>

#include "kf_test_kafka.h"
#include "kfleet/kafka.h"
#include "kfleet/log.h"

#define TIMEOUT_MS 30000
#define KEYS       37

static const char *bootstrap;
static char run_id[32];
static kf_admin *admin;

/* A topic (or group, or transactional id) name unique to this run. */
static void unique(char *buf, size_t size, const char *what)
{
    snprintf(buf, size, "kfleet.test.kafka.%s.%s", run_id, what);
}

static void create_topic(const char *name, int partitions)
{
    kf_error err;
    kf_topic_spec spec = {.name = name, .partitions = partitions, .replication_factor = 1};
    if (kf_admin_create_topics(admin, &spec, 1, false, TIMEOUT_MS, &err) < 0)
        fail_msg("%s", err.message);
}

static void delete_topic(const char *name)
{
    kf_error err;
    if (kf_admin_delete_topics(admin, &name, 1, true, TIMEOUT_MS, &err) < 0)
        fail_msg("%s", err.message);
}

static kf_consumer *consumer_new(const char *group, const char *isolation, const char *auto_commit,
                                 const kf_consumer_options *opts)
{
    const char *kv[] = {"bootstrap.servers", bootstrap, "group.id",           group,
                        "isolation.level",   isolation, "enable.auto.commit", auto_commit};
    kf_error err;
    kf_consumer *c = kf_consumer_new(kv, 4, opts, &err);
    if (!c)
        fail_msg("%s", err.message);
    return c;
}

static void subscribe(kf_consumer *c, const char *topic)
{
    kf_error err;
    if (kf_consumer_subscribe(c, &topic, 1, &err) < 0)
        fail_msg("%s", err.message);
}

static int setup(void **state)
{
    bootstrap = getenv("KFLEET_BOOTSTRAP");
    if (!bootstrap || !*bootstrap) {
        fprintf(stderr, "KFLEET_BOOTSTRAP is not set: start the stack with tools/stack up and "
                        "run eval \"$(tools/stack env)\"\n");
        return -1;
    }
    snprintf(run_id, sizeof(run_id), "%ld-%d", (long)time(NULL), (int)getpid());
    const char *kv[] = {"bootstrap.servers", bootstrap};
    kf_error err;
    admin = kf_admin_new(kv, 1, &err);
    if (!admin) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    kf_admin_destroy(admin);
    return 0;
}

static void admin_creates_describes_lists_and_deletes(void **state)
{
    char topic[128];
    unique(topic, sizeof(topic), "admin");
    const char *cfg[] = {"retention.ms", "3600000", "cleanup.policy", "delete"};
    kf_topic_spec spec = {
        .name = topic, .partitions = 3, .replication_factor = 1, .config = cfg, .config_npairs = 2};
    kf_error err;
    assert_int_equal(kf_admin_create_topics(admin, &spec, 1, false, TIMEOUT_MS, &err), KF_OK);
    assert_int_equal(kf_admin_create_topics(admin, &spec, 1, true, TIMEOUT_MS, &err), KF_OK);
    assert_int_equal(kf_admin_create_topics(admin, &spec, 1, false, TIMEOUT_MS, &err),
                     KF_ERR_KAFKA);
    assert_non_null(strstr(err.message, "already exists"));
    assert_false(err.retriable);

    kf_topic_info info;
    int64_t deadline = kf_test_now_ms() + TIMEOUT_MS;
    int rc;
    while ((rc = kf_admin_describe_topic(admin, topic, &info, TIMEOUT_MS, &err)) ==
               KF_ERR_NOT_FOUND &&
           kf_test_now_ms() < deadline)
        usleep(100000);
    assert_int_equal(rc, KF_OK);
    assert_int_equal(info.partitions, 3);
    assert_int_equal(info.replication_factor, 1);

    char **names = NULL;
    size_t n = 0;
    assert_int_equal(kf_admin_list_topics(admin, &names, &n, TIMEOUT_MS, &err), KF_OK);
    bool found = false;
    for (size_t i = 0; i < n; i++)
        found |= strcmp(names[i], topic) == 0;
    kf_admin_names_free(names, n);
    assert_true(found);

    delete_topic(topic);
    deadline = kf_test_now_ms() + TIMEOUT_MS;
    while ((rc = kf_admin_describe_topic(admin, topic, &info, TIMEOUT_MS, &err)) == KF_OK &&
           kf_test_now_ms() < deadline)
        usleep(100000);
    assert_int_equal(rc, KF_ERR_NOT_FOUND);
    const char *names_missing[] = {topic};
    assert_int_equal(kf_admin_delete_topics(admin, names_missing, 1, true, TIMEOUT_MS, &err),
                     KF_OK);
    assert_true(kf_admin_delete_topics(admin, names_missing, 1, false, TIMEOUT_MS, &err) < 0);
}

/* Reads "k<key>:<n>" back; returns key and n. */
static void parse_value(const rd_kafka_message_t *m, int *key, int *n)
{
    char buf[64];
    size_t len = m->len < sizeof(buf) - 1 ? m->len : sizeof(buf) - 1;
    memcpy(buf, m->payload, len);
    buf[len] = '\0';
    assert_int_equal(sscanf(buf, "k%d:%d", key, n), 2);
}

static void thousand_keyed_messages_round_trip_in_order(void **state)
{
    char topic[128], group[128];
    unique(topic, sizeof(topic), "keyed");
    unique(group, sizeof(group), "keyed-group");
    create_topic(topic, 3);

    const char *pkv[] = {"bootstrap.servers", bootstrap, "linger.ms", "5"};
    kf_producer_options po = {.max_in_flight = 100};
    kf_error err;
    kf_producer *p = kf_producer_new(pkv, 2, &po, &err);
    assert_non_null(p);
    int next[KEYS] = {0};
    for (int i = 0; i < 1000; i++) {
        int k = (i * 7) % KEYS;
        char key[16], value[32], idx[16];
        snprintf(key, sizeof(key), "key-%d", k);
        snprintf(value, sizeof(value), "k%d:%d", k, next[k]++);
        snprintf(idx, sizeof(idx), "%d", i);
        kf_header hdrs[] = {{"kfleet.test", "round-trip", 10}, {"idx", idx, strlen(idx)}};
        kf_produce_msg msg = {.topic = topic,
                              .partition = RD_KAFKA_PARTITION_UA,
                              .key = key,
                              .key_len = strlen(key),
                              .value = value,
                              .value_len = strlen(value),
                              .header_list = hdrs,
                              .header_count = 2};
        assert_int_equal(kf_producer_produce(p, &msg, NULL, &err), KF_OK);
    }
    assert_int_equal(kf_producer_flush(p, TIMEOUT_MS, &err), KF_OK);
    assert_int_equal(kf_producer_acked_upto(p), 1000);
    kf_producer_stats st;
    kf_producer_stats_get(p, &st);
    assert_int_equal(st.produced, 1000);
    assert_int_equal(st.acked, 1000);
    assert_int_equal(st.failed, 0);
    assert_true(st.window <= 100);
    assert_false(kf_producer_failed(p, NULL));
    kf_producer_destroy(p);

    kf_consumer *c = consumer_new(group, "read_committed", "false", NULL);
    subscribe(c, topic);
    int last[KEYS], part_of[KEYS];
    for (int k = 0; k < KEYS; k++)
        last[k] = part_of[k] = -1;
    int got = 0;
    int64_t deadline = kf_test_now_ms() + 60000;
    while (got < 1000 && kf_test_now_ms() < deadline) {
        rd_kafka_message_t *msgs[100];
        int n = kf_consumer_poll_batch(c, msgs, 100, 500, &err);
        assert_true(n >= 0);
        for (int i = 0; i < n; i++) {
            int k, seq;
            parse_value(msgs[i], &k, &seq);
            assert_int_equal(seq, last[k] + 1); /* per-key order kept, nothing missing */
            last[k] = seq;
            if (part_of[k] >= 0)
                assert_int_equal(part_of[k], msgs[i]->partition);
            part_of[k] = msgs[i]->partition;
            const void *hv;
            size_t hl;
            assert_true(kf_headers_get(msgs[i], "kfleet.test", &hv, &hl));
            assert_int_equal(hl, 10);
            assert_memory_equal(hv, "round-trip", 10);
            assert_true(kf_headers_get(msgs[i], "idx", &hv, &hl));
            assert_int_equal(kf_consumer_store_offset(c, msgs[i], &err), KF_OK);
        }
        kf_test_destroy_all(msgs, n);
        got += n;
        assert_int_equal(kf_consumer_commit(c, false, &err), KF_OK);
    }
    assert_int_equal(got, 1000);
    for (int k = 0; k < KEYS; k++)
        assert_int_equal(last[k] + 1, next[k]);

    /* the group's committed offsets cover every message */
    int64_t sum = 0;
    for (int i = 0; i < 3; i++)
        sum += kf_test_committed(c, topic, i, TIMEOUT_MS);
    assert_int_equal(sum, 1000);
    assert_int_equal(kf_consumer_close(c, &err), KF_OK);
    kf_consumer_destroy(c);
    delete_topic(topic);
}

static kf_producer *txn_producer_new(const char *txid)
{
    const char *kv[] = {"bootstrap.servers", bootstrap, "transactional.id", txid};
    kf_error err;
    kf_producer *p = kf_producer_new(kv, 2, NULL, &err);
    if (!p)
        fail_msg("%s", err.message);
    return p;
}

static void produce_values(kf_producer *p, const char *topic, const char *prefix, int n)
{
    kf_error err;
    for (int i = 0; i < n; i++) {
        char v[64];
        snprintf(v, sizeof(v), "%s-%d", prefix, i);
        kf_produce_msg msg = {.topic = topic, .partition = 0, .value = v, .value_len = strlen(v)};
        assert_int_equal(kf_producer_produce(p, &msg, NULL, &err), KF_OK);
    }
    assert_int_equal(kf_producer_flush(p, TIMEOUT_MS, &err), KF_OK);
}

static void aborted_transaction_is_invisible_to_read_committed(void **state)
{
    char topic[128], txid[128], g1[128], g2[128];
    unique(topic, sizeof(topic), "visibility");
    unique(txid, sizeof(txid), "visibility-tx");
    unique(g1, sizeof(g1), "visibility-rc");
    unique(g2, sizeof(g2), "visibility-ru");
    create_topic(topic, 1);
    kf_producer *p = txn_producer_new(txid);
    kf_error err;
    kf_txn *t = kf_txn_new(p, NULL, TIMEOUT_MS, &err);
    if (!t)
        fail_msg("%s", err.message);
    assert_int_equal(kf_txn_begin(t, &err), KF_OK);
    produce_values(p, topic, "aborted", 5);
    assert_int_equal(kf_txn_send_offsets(t, &err), KF_ERR_STATE); /* no consumer */
    assert_int_equal(kf_txn_abort(t, &err), KF_OK);
    assert_int_equal(kf_txn_begin(t, &err), KF_OK);
    produce_values(p, topic, "committed", 5);
    assert_int_equal(kf_txn_commit(t, &err), KF_OK);
    assert_false(kf_producer_failed(p, NULL));
    kf_txn_destroy(t);
    kf_producer_destroy(p);

    rd_kafka_message_t *msgs[16];
    kf_consumer *c = consumer_new(g1, "read_committed", "false", NULL);
    subscribe(c, topic);
    int n = kf_test_consume(c, msgs, 16, 15000);
    assert_int_equal(n, 5);
    for (int i = 0; i < n; i++) {
        char want[32];
        snprintf(want, sizeof(want), "committed-%d", i);
        assert_int_equal(msgs[i]->len, strlen(want));
        assert_memory_equal(msgs[i]->payload, want, msgs[i]->len);
    }
    kf_test_destroy_all(msgs, n);
    kf_consumer_destroy(c);

    /* the aborted records are in the log: a read_uncommitted reader sees all ten */
    c = consumer_new(g2, "read_uncommitted", "false", NULL);
    subscribe(c, topic);
    n = kf_test_consume(c, msgs, 16, 15000);
    assert_int_equal(n, 10);
    assert_memory_equal(msgs[0]->payload, "aborted-0", 9);
    kf_test_destroy_all(msgs, n);
    kf_consumer_destroy(c);
    delete_topic(topic);
}

static void read_process_write_commits_input_offsets(void **state)
{
    char in[128], out[128], txid[128], group[128], check[128];
    unique(in, sizeof(in), "rpw-in");
    unique(out, sizeof(out), "rpw-out");
    unique(txid, sizeof(txid), "rpw-tx");
    unique(group, sizeof(group), "rpw-group");
    unique(check, sizeof(check), "rpw-check");
    create_topic(in, 3);
    create_topic(out, 3);

    const char *pkv[] = {"bootstrap.servers", bootstrap};
    kf_error err;
    kf_producer *src = kf_producer_new(pkv, 1, NULL, &err);
    assert_non_null(src);
    for (int i = 0; i < 30; i++) {
        char key[16];
        snprintf(key, sizeof(key), "key-%d", i);
        kf_produce_msg msg = {.topic = in,
                              .partition = RD_KAFKA_PARTITION_UA,
                              .key = key,
                              .key_len = strlen(key),
                              .value = key,
                              .value_len = strlen(key)};
        assert_int_equal(kf_producer_produce(src, &msg, NULL, &err), KF_OK);
    }
    assert_int_equal(kf_producer_flush(src, TIMEOUT_MS, &err), KF_OK);
    kf_producer_destroy(src);

    kf_consumer *c = consumer_new(group, "read_committed", "false", NULL);
    subscribe(c, in);
    kf_producer *p = txn_producer_new(txid);
    kf_txn *t = kf_txn_new(p, c, TIMEOUT_MS, &err);
    if (!t)
        fail_msg("%s", err.message);
    int processed = 0;
    int64_t deadline = kf_test_now_ms() + 60000;
    while (processed < 30 && kf_test_now_ms() < deadline) {
        rd_kafka_message_t *msgs[8];
        int n = kf_consumer_poll_batch(c, msgs, 8, 500, &err);
        assert_true(n >= 0);
        if (n == 0)
            continue;
        assert_int_equal(kf_txn_begin(t, &err), KF_OK);
        for (int i = 0; i < n; i++) {
            rd_kafka_headers_t *h = kf_headers_copy(msgs[i]);
            assert_int_equal(kf_headers_add_str(h, "kfleet.worker", "test", &err), KF_OK);
            kf_produce_msg msg = {.topic = out,
                                  .partition = RD_KAFKA_PARTITION_UA,
                                  .key = msgs[i]->key,
                                  .key_len = msgs[i]->key_len,
                                  .value = msgs[i]->payload,
                                  .value_len = msgs[i]->len,
                                  .headers = h};
            assert_int_equal(kf_producer_produce(p, &msg, NULL, &err), KF_OK);
        }
        kf_test_destroy_all(msgs, n);
        assert_int_equal(kf_txn_send_offsets(t, &err), KF_OK);
        int rc = kf_txn_commit(t, &err);
        if (rc != KF_OK)
            fail_msg("%s", err.message);
        processed += n;
    }
    assert_int_equal(processed, 30);

    /* the group's committed offsets are at the end of every input partition */
    for (int i = 0; i < 3; i++) {
        int64_t lo, hi;
        assert_int_equal(
            rd_kafka_query_watermark_offsets(kf_consumer_handle(c), in, i, &lo, &hi, TIMEOUT_MS),
            0);
        assert_int_equal(kf_test_committed(c, in, i, TIMEOUT_MS), hi);
    }
    kf_txn_destroy(t);
    kf_producer_destroy(p);
    kf_consumer_destroy(c);

    kf_consumer *reader = consumer_new(check, "read_committed", "false", NULL);
    subscribe(reader, out);
    rd_kafka_message_t *msgs[40];
    int n = kf_test_consume(reader, msgs, 40, 15000);
    assert_int_equal(n, 30);
    const void *hv;
    size_t hl;
    assert_true(kf_headers_get(msgs[0], "kfleet.worker", &hv, &hl));
    kf_test_destroy_all(msgs, n);
    kf_consumer_destroy(reader);
    delete_topic(in);
    delete_topic(out);
}

typedef struct hooks_seen {
    int assigned;
    int revoked;
    int assign_calls;
    int revoke_calls;
} hooks_seen;

static int count_assign(void *ctx, kf_consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    hooks_seen *h = ctx;
    h->assign_calls++;
    h->assigned += parts->cnt;
    return 0;
}

static void count_revoke(void *ctx, kf_consumer *c, const rd_kafka_topic_partition_list_t *parts,
                         bool lost)
{
    hooks_seen *h = ctx;
    h->revoke_calls++;
    h->revoked += parts->cnt;
}

static int assigned_now(kf_consumer *c)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    kf_error err;
    assert_int_equal(kf_consumer_assignment(c, &parts, &err), KF_OK);
    int n = parts->cnt;
    rd_kafka_topic_partition_list_destroy(parts);
    return n;
}

static void two_consumers_split_partitions(void **state)
{
    char topic[128], group[128];
    unique(topic, sizeof(topic), "split");
    unique(group, sizeof(group), "split-group");
    create_topic(topic, 4);
    hooks_seen h1 = {0}, h2 = {0};
    kf_consumer_options o1 = {.hooks = {count_assign, count_revoke, &h1}};
    kf_consumer_options o2 = {.hooks = {count_assign, count_revoke, &h2}};
    kf_consumer *c1 = consumer_new(group, "read_committed", "true", &o1);
    subscribe(c1, topic);
    rd_kafka_message_t *msgs[4];
    kf_error err;
    int64_t deadline = kf_test_now_ms() + 60000;
    while (assigned_now(c1) < 4 && kf_test_now_ms() < deadline)
        assert_int_equal(kf_consumer_poll_batch(c1, msgs, 4, 200, &err), 0);
    assert_int_equal(assigned_now(c1), 4);
    assert_int_equal(h1.assigned, 4);

    kf_consumer *c2 = consumer_new(group, "read_committed", "true", &o2);
    subscribe(c2, topic);
    deadline = kf_test_now_ms() + 60000;
    while ((assigned_now(c1) != 2 || assigned_now(c2) != 2) && kf_test_now_ms() < deadline) {
        assert_int_equal(kf_consumer_poll_batch(c1, msgs, 4, 100, &err), 0);
        assert_int_equal(kf_consumer_poll_batch(c2, msgs, 4, 100, &err), 0);
    }
    assert_int_equal(assigned_now(c1), 2);
    assert_int_equal(assigned_now(c2), 2);
    assert_int_equal(h1.revoked, 2); /* cooperative: only the moved partitions */
    assert_int_equal(h2.assigned, 2);
    assert_int_equal(h2.revoke_calls, 0);

    int n1, n2;
    kf_test_assert_disjoint(c1, c2, &n1, &n2);
    assert_int_equal(n1 + n2, 4);

    /* c2 leaves: its partitions go back to c1 through the hooks */
    assert_int_equal(kf_consumer_close(c2, &err), KF_OK);
    assert_int_equal(h2.revoked, 2);
    deadline = kf_test_now_ms() + 60000;
    while (assigned_now(c1) < 4 && kf_test_now_ms() < deadline)
        assert_int_equal(kf_consumer_poll_batch(c1, msgs, 4, 200, &err), 0);
    assert_int_equal(assigned_now(c1), 4);
    assert_int_equal(h1.assigned, 6);
    kf_consumer_destroy(c2);
    kf_consumer_destroy(c1);
    delete_topic(topic);
}

int main(void)
{
    kf_log_init("test_kafka", KF_LOG_WARN, KF_LOG_LOGFMT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(admin_creates_describes_lists_and_deletes),
        cmocka_unit_test(thousand_keyed_messages_round_trip_in_order),
        cmocka_unit_test(aborted_transaction_is_invisible_to_read_committed),
        cmocka_unit_test(read_process_write_commits_input_offsets),
        cmocka_unit_test(two_consumers_split_partitions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
