/* Unit tests for read-process-write transactions on librdkafka's mock cluster: a committed
 * cycle succeeds, an abort rewinds the consumer, an abortable failure is
 * aborted and rewound by the commit, a fenced producer is fatal. The mock broker neither
 * honours read_committed nor stores transactional offsets: visibility and the group's
 * committed offset after a transaction are checked in the integration test. */
#include "kf_test_kafka.h"
#include "kfleet/kafka.h"
#include "kfleet/log.h"

/* Kafka protocol request types, for error injection. */
#define APIKEY_PRODUCE 0
#define APIKEY_END_TXN 26

typedef struct fixture {
    kf_test_mock mock;
    kf_producer *p;
    kf_consumer *c;
    kf_txn *t;
} fixture;

static int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof(f));
    if (kf_test_mock_start(&f.mock, 3) < 0)
        return -1;
    rd_kafka_mock_topic_create(f.mock.mc, "in", 1, 3);
    rd_kafka_mock_topic_create(f.mock.mc, "out", 1, 3);
    /* a different transactional.id and group per test: no state leaks between tests */
    static int seq;
    char txid[32], group[32];
    snprintf(txid, sizeof(txid), "tx-%d", ++seq);
    snprintf(group, sizeof(group), "rpw-%d", seq);
    kf_error err;
    const char *pkv[] = {"bootstrap.servers", f.mock.bootstraps, "transactional.id", txid};
    f.p = kf_producer_new(pkv, 2, NULL, &err);
    const char *ckv[] = {
        "bootstrap.servers", f.mock.bootstraps, "group.id", group, "enable.auto.commit", "false"};
    f.c = kf_consumer_new(ckv, 3, NULL, &err);
    if (!f.p || !f.c)
        return -1;
    const char *topics[] = {"in"};
    if (kf_consumer_subscribe(f.c, topics, 1, &err) < 0)
        return -1;
    f.t = kf_txn_new(f.p, f.c, 10000, &err);
    if (!f.t) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kf_txn_destroy(f->t);
    kf_consumer_destroy(f->c);
    kf_producer_destroy(f->p);
    kf_test_mock_stop(&f->mock);
    return 0;
}

/* Produces one output per input, still holding the inputs. */
static int process(fixture *f, rd_kafka_message_t **msgs, int n, kf_error *err)
{
    for (int i = 0; i < n; i++) {
        kf_produce_msg out = {.topic = "out",
                              .partition = RD_KAFKA_PARTITION_UA,
                              .value = msgs[i]->payload,
                              .value_len = msgs[i]->len,
                              .headers = kf_headers_copy(msgs[i])};
        int rc = kf_producer_produce(f->p, &out, NULL, err);
        if (rc < 0)
            return rc;
    }
    return KF_OK;
}

static void committed_cycle_succeeds(void **state)
{
    fixture *f = *state;
    kf_error err;
    kf_test_fill(f->mock.bootstraps, "in", 0, 10);
    rd_kafka_message_t *msgs[10];
    assert_int_equal(kf_txn_begin(f->t, &err), KF_OK);
    assert_true(kf_txn_open(f->t));
    int n = kf_test_consume(f->c, msgs, 10, 10000);
    assert_int_equal(n, 10);
    assert_int_equal(process(f, msgs, n, &err), KF_OK);
    kf_test_destroy_all(msgs, n);
    assert_int_equal(kf_txn_send_offsets(f->t, &err), KF_OK);
    assert_int_equal(kf_txn_commit(f->t, &err), KF_OK);
    assert_false(kf_txn_open(f->t));
    int64_t lo, hi;
    assert_int_equal(
        rd_kafka_query_watermark_offsets(kf_producer_handle(f->p), "out", 0, &lo, &hi, 5000), 0);
    assert_true(hi >= 10); /* outputs (and the commit marker) */
    kf_producer_stats st;
    kf_producer_stats_get(f->p, &st);
    assert_int_equal(st.acked, 10);
    assert_int_equal(kf_txn_commit(f->t, &err), KF_ERR_STATE); /* nothing open */
}

static void abort_rewinds_to_committed_offsets(void **state)
{
    fixture *f = *state;
    kf_error err;
    kf_test_fill(f->mock.bootstraps, "in", 0, 6);
    rd_kafka_message_t *msgs[6];
    /* offsets 0..1 committed earlier (the mock broker keeps group commits, not transactional
     * ones, so the committed position is set through the consumer here) */
    int n = kf_test_consume(f->c, msgs, 6, 10000);
    assert_int_equal(n, 6);
    assert_int_equal(kf_consumer_store_offset(f->c, msgs[1], &err), KF_OK);
    assert_int_equal(kf_consumer_commit(f->c, false, &err), KF_OK);
    assert_int_equal(kf_test_committed(f->c, "in", 0, 5000), 2);

    assert_int_equal(kf_txn_begin(f->t, &err), KF_OK);
    assert_int_equal(process(f, msgs + 2, 4, &err), KF_OK);
    kf_test_destroy_all(msgs, n);
    assert_int_equal(kf_txn_send_offsets(f->t, &err), KF_OK);
    assert_int_equal(kf_txn_abort(f->t, &err), KF_OK);
    assert_false(kf_txn_open(f->t));
    assert_false(kf_producer_failed(f->p, NULL));

    /* the aborted inputs come back, from the first uncommitted one */
    n = kf_test_consume(f->c, msgs, 4, 10000);
    assert_int_equal(n, 4);
    assert_int_equal(msgs[0]->offset, 2);
    assert_int_equal(msgs[3]->offset, 5);
    assert_int_equal(kf_txn_begin(f->t, &err), KF_OK);
    assert_int_equal(process(f, msgs, n, &err), KF_OK);
    kf_test_destroy_all(msgs, n);
    assert_int_equal(kf_txn_send_offsets(f->t, &err), KF_OK);
    assert_int_equal(kf_txn_commit(f->t, &err), KF_OK);
}

/* A produce the broker rejects makes the transaction abortable: commit aborts, rewinds and
 * says so; reprocessing then commits. */
static void abortable_commit_aborts_and_rewinds(void **state)
{
    fixture *f = *state;
    kf_error err;
    kf_test_fill(f->mock.bootstraps, "in", 0, 4);
    rd_kafka_message_t *msgs[4];
    assert_int_equal(kf_txn_begin(f->t, &err), KF_OK);
    int n = kf_test_consume(f->c, msgs, 4, 10000);
    assert_int_equal(n, 4);
    rd_kafka_mock_push_request_errors(f->mock.mc, APIKEY_PRODUCE, 1,
                                      RD_KAFKA_RESP_ERR_INVALID_RECORD);
    assert_int_equal(process(f, msgs, n, &err), KF_OK);
    kf_test_destroy_all(msgs, n);
    int rc = kf_txn_send_offsets(f->t, &err);
    if (rc == KF_OK)
        rc = kf_txn_commit(f->t, &err);
    assert_int_equal(rc, KF_ERR_KAFKA);
    assert_true(err.retriable);
    assert_non_null(strstr(err.message, "transaction aborted and consumer rewound"));
    assert_false(kf_txn_open(f->t));
    assert_false(kf_producer_failed(f->p, NULL)); /* the failure went with the abort */

    /* A worker retries the batch; every attempt starts at the first uncommitted input (the
     * client may need one more abort to bump its epoch after the rejected batch). */
    int rc2 = KF_ERR_KAFKA;
    for (int attempt = 0; attempt < 3 && rc2 != KF_OK; attempt++) {
        n = kf_test_consume(f->c, msgs, 4, 10000);
        assert_int_equal(n, 4);
        assert_int_equal(msgs[0]->offset, 0);
        assert_int_equal(kf_txn_begin(f->t, &err), KF_OK);
        assert_int_equal(process(f, msgs, n, &err), KF_OK);
        kf_test_destroy_all(msgs, n);
        rc2 = kf_txn_send_offsets(f->t, &err);
        if (rc2 == KF_OK)
            rc2 = kf_txn_commit(f->t, &err);
        if (rc2 != KF_OK) {
            assert_int_equal(rc2, KF_ERR_KAFKA);
            assert_true(err.retriable);
        }
    }
    assert_int_equal(rc2, KF_OK);
    assert_false(kf_producer_failed(f->p, NULL));
}

/* A newer instance fenced this producer: the commit is fatal and stays fatal. */
static void fenced_producer_is_fatal(void **state)
{
    fixture *f = *state;
    kf_error err;
    kf_test_fill(f->mock.bootstraps, "in", 0, 2);
    rd_kafka_message_t *msgs[2];
    assert_int_equal(kf_txn_begin(f->t, &err), KF_OK);
    int n = kf_test_consume(f->c, msgs, 2, 10000);
    assert_int_equal(n, 2);
    assert_int_equal(process(f, msgs, n, &err), KF_OK);
    kf_test_destroy_all(msgs, n);
    assert_int_equal(kf_txn_send_offsets(f->t, &err), KF_OK);
    rd_kafka_mock_push_request_errors(f->mock.mc, APIKEY_END_TXN, 1,
                                      RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
    assert_int_equal(kf_txn_commit(f->t, &err), KF_ERR_FATAL);
    assert_true(err.fatal);
    assert_int_equal(kf_txn_begin(f->t, &err), KF_ERR_FATAL);
    assert_true(kf_producer_failed(f->p, &err));
    assert_int_equal(err.code, KF_ERR_FATAL);
    kf_produce_msg out = {.topic = "out", .partition = 0, .value = "x", .value_len = 1};
    assert_int_equal(kf_producer_produce(f->p, &out, NULL, &err), KF_ERR_FATAL);
}

int main(void)
{
    kf_log_init("test_kafka_txn", KF_LOG_ERROR, KF_LOG_LOGFMT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(committed_cycle_succeeds, setup, teardown),
        cmocka_unit_test_setup_teardown(abort_rewinds_to_committed_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(abortable_commit_aborts_and_rewinds, setup, teardown),
        cmocka_unit_test_setup_teardown(fenced_producer_is_fatal, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
