/* Kafka transactions for read-process-write: the outputs of a batch and the input offsets
 * commit together; errors are sorted into retry, abort-and-rewind, and fatal. */
#include "kafka_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kfleet/log.h"

#define DEFAULT_TXN_TIMEOUT_MS 60000
#define RETRY_PAUSE_MS         100

struct kf_txn {
    kf_producer *p;
    kf_consumer *c;
    int timeout_ms;
    bool open;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What the caller of a transactional call does next. */
enum step { STEP_DONE, STEP_RETRY };

static int abort_and_rewind(kf_txn *t, kf_error *err);

/* Classifies e (destroyed here): fatal -> KF_ERR_FATAL; abortable -> abort, rewind and
 * KF_ERR_KAFKA retriable; retriable with time left -> *step = STEP_RETRY; else KF_ERR_KAFKA
 * or KF_ERR_TIMEOUT. */
static int classify(kf_txn *t, rd_kafka_error_t *e, const char *what, int64_t deadline,
                    enum step *step, kf_error *err)
{
    *step = STEP_DONE;
    int rc;
    if (rd_kafka_error_is_fatal(e)) {
        rc = kf_kafka_error_set(err, e, what);
        kf_kafka_fatal_record(kf_producer_client(t->p), rd_kafka_name(kf_producer_handle(t->p)),
                              rd_kafka_error_string(e));
    } else if (rd_kafka_error_txn_requires_abort(e)) {
        kf_error reason;
        kf_kafka_error_set(&reason, e, what);
        kf_log(KF_LOG_WARN, "aborting transaction", "reason", reason.message, (char *)NULL);
        rc = abort_and_rewind(t, err);
        if (rc == KF_OK)
            rc = kf_error_set(err, KF_ERR_KAFKA, true,
                              "transaction aborted and consumer rewound: %s", reason.message);
    } else if (rd_kafka_error_is_retriable(e) && now_ms() + RETRY_PAUSE_MS < deadline) {
        kf_error reason;
        kf_kafka_error_set(&reason, e, what);
        kf_log(KF_LOG_WARN, "retrying transactional call", "reason", reason.message, (char *)NULL);
        *step = STEP_RETRY;
        rc = KF_OK;
    } else if (rd_kafka_error_is_retriable(e)) {
        kf_kafka_error_set(err, e, what);
        err->code = KF_ERR_TIMEOUT;
        rc = KF_ERR_TIMEOUT;
    } else {
        rc = kf_kafka_error_set(err, e, what);
    }
    rd_kafka_error_destroy(e);
    return rc;
}

static int remaining(int64_t deadline)
{
    int64_t left = deadline - now_ms();
    return left > 0 ? (int)left : 1;
}

kf_txn *kf_txn_new(kf_producer *p, kf_consumer *c, int timeout_ms, kf_error *err)
{
    kf_txn *t = calloc(1, sizeof(*t));
    if (!t) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate transaction state");
        return NULL;
    }
    t->p = p;
    t->c = c;
    t->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TXN_TIMEOUT_MS;
    int64_t deadline = now_ms() + t->timeout_ms;
    for (;;) {
        rd_kafka_error_t *e =
            rd_kafka_init_transactions(kf_producer_handle(p), remaining(deadline));
        if (!e)
            return t;
        bool retry = !rd_kafka_error_is_fatal(e) && rd_kafka_error_is_retriable(e) &&
                     now_ms() + RETRY_PAUSE_MS < deadline;
        if (!retry) {
            int rc = kf_kafka_error_set(err, e, "could not initialize transactions");
            if (rc == KF_ERR_FATAL)
                kf_kafka_fatal_record(kf_producer_client(p), rd_kafka_name(kf_producer_handle(p)),
                                      rd_kafka_error_string(e));
            else if (rd_kafka_error_is_retriable(e) && err)
                err->code = KF_ERR_TIMEOUT;
            rd_kafka_error_destroy(e);
            free(t);
            return NULL;
        }
        rd_kafka_error_destroy(e);
        rd_kafka_poll(kf_producer_handle(p), RETRY_PAUSE_MS);
    }
}

void kf_txn_destroy(kf_txn *t)
{
    if (!t)
        return;
    if (t->open) {
        rd_kafka_error_t *e = rd_kafka_abort_transaction(kf_producer_handle(t->p), t->timeout_ms);
        if (e) {
            kf_log(KF_LOG_WARN, "could not abort the open transaction", "reason",
                   rd_kafka_error_string(e), (char *)NULL);
            rd_kafka_error_destroy(e);
        }
    }
    free(t);
}

int kf_txn_begin(kf_txn *t, kf_error *err)
{
    kf_error scratch;
    if (!err)
        err = &scratch;
    int rc = kf_kafka_fatal_check(kf_producer_client(t->p), kf_producer_handle(t->p), err);
    if (rc < 0)
        return rc;
    rd_kafka_error_t *e = rd_kafka_begin_transaction(kf_producer_handle(t->p));
    if (e) {
        enum step step;
        return classify(t, e, "could not begin transaction", 0, &step, err);
    }
    t->open = true;
    return KF_OK;
}

int kf_txn_send_offset_list(kf_txn *t, const rd_kafka_topic_partition_list_t *offsets,
                            kf_error *err)
{
    kf_error scratch;
    if (!err)
        err = &scratch;
    if (!t->open)
        return kf_error_set(err, KF_ERR_STATE, false,
                            "cannot send offsets: no transaction is open");
    if (!t->c)
        return kf_error_set(err, KF_ERR_STATE, false,
                            "cannot send offsets: the transaction has no consumer");
    if (offsets->cnt == 0)
        return KF_OK;
    rd_kafka_consumer_group_metadata_t *cgmd =
        rd_kafka_consumer_group_metadata(kf_consumer_handle(t->c));
    if (!cgmd)
        return kf_error_set(err, KF_ERR_STATE, false,
                            "cannot send offsets: the consumer has no group metadata");
    int64_t deadline = now_ms() + t->timeout_ms;
    int rc = KF_OK;
    for (;;) {
        rd_kafka_error_t *e = rd_kafka_send_offsets_to_transaction(
            kf_producer_handle(t->p), offsets, cgmd, remaining(deadline));
        if (!e)
            break;
        enum step step;
        rc = classify(t, e, "could not send offsets to the transaction", deadline, &step, err);
        if (step != STEP_RETRY)
            break;
        rd_kafka_poll(kf_producer_handle(t->p), RETRY_PAUSE_MS);
    }
    rd_kafka_consumer_group_metadata_destroy(cgmd);
    return rc;
}

int kf_txn_send_offsets(kf_txn *t, kf_error *err)
{
    kf_error scratch;
    if (!err)
        err = &scratch;
    if (!t->c)
        return kf_error_set(err, KF_ERR_STATE, false,
                            "cannot send offsets: the transaction has no consumer");
    rd_kafka_topic_partition_list_t *parts = NULL;
    int rc = kf_consumer_assignment(t->c, &parts, err);
    if (rc < 0)
        return rc;
    rd_kafka_resp_err_t code = rd_kafka_position(kf_consumer_handle(t->c), parts);
    if (code) {
        rc = kf_kafka_error_set_code(err, code, "could not read consumer positions");
        goto out_destroy_parts;
    }
    rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(parts->cnt);
    if (!offsets) {
        rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate offset list");
        goto out_destroy_parts;
    }
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        if (tp->offset >= 0)
            rd_kafka_topic_partition_list_add(offsets, tp->topic, tp->partition)->offset =
                tp->offset;
    }
    rc = kf_txn_send_offset_list(t, offsets, err);
    rd_kafka_topic_partition_list_destroy(offsets);

out_destroy_parts:
    rd_kafka_topic_partition_list_destroy(parts);
    return rc;
}

int kf_txn_commit(kf_txn *t, kf_error *err)
{
    kf_error scratch;
    if (!err)
        err = &scratch;
    if (!t->open)
        return kf_error_set(err, KF_ERR_STATE, false, "cannot commit: no transaction is open");
    int64_t deadline = now_ms() + t->timeout_ms;
    for (;;) {
        rd_kafka_error_t *e =
            rd_kafka_commit_transaction(kf_producer_handle(t->p), remaining(deadline));
        if (!e) {
            t->open = false;
            return KF_OK;
        }
        enum step step;
        int rc = classify(t, e, "could not commit transaction", deadline, &step, err);
        if (step != STEP_RETRY)
            return rc;
        rd_kafka_poll(kf_producer_handle(t->p), RETRY_PAUSE_MS);
    }
}

/* Aborts, waits for the purged messages to be reported, clears the failures they caused and
 * rewinds the consumer. A failed rewind is fatal: going on would skip the aborted inputs. */
static int abort_and_rewind(kf_txn *t, kf_error *err)
{
    rd_kafka_t *rk = kf_producer_handle(t->p);
    int64_t deadline = now_ms() + t->timeout_ms;
    for (;;) {
        rd_kafka_error_t *e = rd_kafka_abort_transaction(rk, remaining(deadline));
        if (!e)
            break;
        int rc = kf_kafka_error_set(err, e, "could not abort transaction");
        bool retry = !rd_kafka_error_is_fatal(e) && rd_kafka_error_is_retriable(e) &&
                     now_ms() + RETRY_PAUSE_MS < deadline;
        rd_kafka_error_destroy(e);
        if (rc == KF_ERR_FATAL) {
            kf_kafka_fatal_record(kf_producer_client(t->p), rd_kafka_name(rk), err->message);
            return rc;
        }
        if (!retry) {
            /* The transaction state is unknown: only a restart is safe. */
            err->code = KF_ERR_FATAL;
            err->fatal = true;
            return KF_ERR_FATAL;
        }
        rd_kafka_poll(rk, RETRY_PAUSE_MS);
    }
    t->open = false;
    while (rd_kafka_outq_len(rk) > 0 && now_ms() < deadline)
        rd_kafka_poll(rk, 10);
    kf_producer_txn_reset(t->p);
    if (!t->c)
        return KF_OK;
    int rc = kf_consumer_rewind(t->c, remaining(deadline), err);
    if (rc < 0) {
        char reason[sizeof(err->message)];
        snprintf(reason, sizeof(reason), "%s", err->message);
        return kf_error_set(err, KF_ERR_FATAL, false,
                            "could not rewind the consumer after an abort: %s", reason);
    }
    return KF_OK;
}

int kf_txn_abort(kf_txn *t, kf_error *err)
{
    kf_error scratch;
    if (!err)
        err = &scratch;
    return abort_and_rewind(t, err);
}

bool kf_txn_open(const kf_txn *t)
{
    return t->open;
}
