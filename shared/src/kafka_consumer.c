/* The kfleet group consumer: offsets stored only after processing, rebalance hooks for both
 * protocols, batch polling, pause/resume for backpressure and a rewind for aborted batches. */
#include "kafka_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfleet/log.h"
#include "kfleet/retry.h"

struct kf_consumer {
    kf_kafka_client cl; /* first: librdkafka's opaque points here */
    rd_kafka_t *rk;
    kf_consumer_hooks hooks;
    bool paused; /* only touched from the polling thread */
    bool closed;
    int64_t reset_offset;    /* logical offset a partition without a committed offset starts at */
    rd_kafka_queue_t *queue; /* the consumer queue every partition forwards to */
    kf_fetch_waker *waker;   /* librdkafka before 2.2; see kafka_fetch_waker.c */
};

/* "topic[p],topic[p],..." for logs, truncated to fit. */
static void parts_format(const rd_kafka_topic_partition_list_t *parts, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < parts->cnt && used < size; i++) {
        int w = snprintf(buf + used, size - used, "%s%s[%d]", i ? "," : "", parts->elems[i].topic,
                         (int)parts->elems[i].partition);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static void log_parts(const char *msg, rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts,
                      const char *protocol)
{
    char buf[1024];
    parts_format(parts, buf, sizeof(buf));
    kf_log(KF_LOG_INFO, msg, "client", rd_kafka_name(rk), "protocol", protocol, "partitions", buf,
           (char *)NULL);
}

static void log_assign_error(kf_consumer *c, rd_kafka_error_t *e, const char *what)
{
    kf_error err;
    if (kf_kafka_error_set(&err, e, what) == KF_ERR_FATAL)
        kf_kafka_fatal_record(&c->cl, rd_kafka_name(c->rk), err.message);
    else
        kf_log(KF_LOG_ERROR, err.message, "client", rd_kafka_name(c->rk), (char *)NULL);
    rd_kafka_error_destroy(e);
}

static void on_assign(kf_consumer *c, rd_kafka_topic_partition_list_t *parts, bool cooperative)
{
    rd_kafka_t *rk = c->rk;
    log_parts("partitions assigned", rk, parts, cooperative ? "cooperative" : "eager");
    if (c->hooks.on_assign && c->hooks.on_assign(c->hooks.ctx, c, parts) < 0)
        kf_log(KF_LOG_ERROR, "assign hook failed, assigning with the offsets set so far", "client",
               rd_kafka_name(rk), (char *)NULL);
    if (cooperative) {
        rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, parts);
        if (e) {
            log_assign_error(c, e, "could not add assigned partitions");
            return;
        }
    } else {
        rd_kafka_resp_err_t code = rd_kafka_assign(rk, parts);
        if (code) {
            kf_log(KF_LOG_ERROR, "could not assign partitions", "client", rd_kafka_name(rk),
                   "error", rd_kafka_err2str(code), (char *)NULL);
            return;
        }
    }
    if (c->paused) {
        rd_kafka_resp_err_t code = rd_kafka_pause_partitions(rk, parts);
        if (code)
            kf_log(KF_LOG_ERROR, "could not pause newly assigned partitions", "client",
                   rd_kafka_name(rk), "error", rd_kafka_err2str(code), (char *)NULL);
    }
}

static void on_revoke(kf_consumer *c, rd_kafka_topic_partition_list_t *parts, bool cooperative)
{
    rd_kafka_t *rk = c->rk;
    bool lost = rd_kafka_assignment_lost(rk);
    log_parts(lost ? "partitions lost" : "partitions revoked", rk, parts,
              cooperative ? "cooperative" : "eager");
    if (c->hooks.on_revoke)
        c->hooks.on_revoke(c->hooks.ctx, c, parts, lost);
    if (cooperative) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
        if (e)
            log_assign_error(c, e, "could not remove revoked partitions");
    } else {
        rd_kafka_resp_err_t code = rd_kafka_assign(rk, NULL);
        if (code)
            kf_log(KF_LOG_ERROR, "could not clear the assignment", "client", rd_kafka_name(rk),
                   "error", rd_kafka_err2str(code), (char *)NULL);
    }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t code,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    kf_consumer *c = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    switch (code) {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        on_assign(c, parts, cooperative);
        break;
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        on_revoke(c, parts, cooperative);
        break;
    default:
        kf_log(KF_LOG_ERROR, "rebalance failed, dropping the assignment", "client",
               rd_kafka_name(rk), "error", rd_kafka_err2str(code), (char *)NULL);
        if (cooperative) {
            rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
            if (e)
                log_assign_error(c, e, "could not remove partitions after a failed rebalance");
        } else {
            rd_kafka_assign(rk, NULL);
        }
        break;
    }
}

static void offset_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t code,
                             rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    if (code == RD_KAFKA_RESP_ERR_NO_ERROR || code == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    kf_log(KF_LOG_WARN, "could not commit offsets", "client", rd_kafka_name(rk), "error",
           rd_kafka_err2str(code), (char *)NULL);
}

static int64_t reset_offset_of(const char *policy)
{
    if (policy && (strcmp(policy, "largest") == 0 || strcmp(policy, "latest") == 0 ||
                   strcmp(policy, "end") == 0))
        return RD_KAFKA_OFFSET_END;
    return RD_KAFKA_OFFSET_BEGINNING;
}

kf_consumer *kf_consumer_new(const char *const *kv, size_t npairs, const kf_consumer_options *opts,
                             kf_error *err)
{
    static const char *const defaults[] = {
        "partition.assignment.strategy",
        "cooperative-sticky",
        "auto.offset.reset",
        "earliest",
        "enable.auto.offset.store",
        "false",
    };
    const char *v = NULL;
    if (!kf_kafka_kv_find(kv, npairs, "group.id", &v) || !v || !*v) {
        kf_error_set(err, KF_ERR_CONFIG, false, "kafka.group.id is required for a consumer");
        return NULL;
    }
    if (kf_kafka_kv_find(kv, npairs, "enable.auto.offset.store", &v) && v &&
        strcmp(v, "false") != 0) {
        kf_error_set(err, KF_ERR_CONFIG, false,
                     "kafka.enable.auto.offset.store cannot be \"%s\": offsets are stored only "
                     "after processing",
                     v);
        return NULL;
    }

    kf_consumer *c = calloc(1, sizeof(*c));
    if (!c) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate consumer");
        return NULL;
    }
    kf_kafka_client_init(&c->cl);
    if (opts)
        c->hooks = opts->hooks;
    const char *policy = "earliest";
    kf_kafka_kv_find(kv, npairs, "auto.offset.reset", &policy);
    c->reset_offset = reset_offset_of(policy);

    rd_kafka_conf_t *conf =
        kf_kafka_conf_build(RD_KAFKA_CONSUMER, defaults, sizeof(defaults) / sizeof(defaults[0]) / 2,
                            kv, npairs, c, err);
    if (!conf)
        goto out_free_consumer;
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, offset_commit_cb);
    c->rk = kf_kafka_handle_new(RD_KAFKA_CONSUMER, conf, err);
    if (!c->rk)
        goto out_free_consumer;
    /* One queue for messages, rebalances and client errors, all served by poll_batch. */
    rd_kafka_poll_set_consumer(c->rk);
    c->queue = rd_kafka_queue_get_consumer(c->rk);
    if (!c->queue) {
        kf_error_set(err, KF_ERR_STATE, false, "could not get the consumer queue");
        rd_kafka_destroy(c->rk);
        goto out_free_consumer;
    }
    if (rd_kafka_version() < 0x02020000 && !(c->waker = kf_fetch_waker_new(c->rk, c->queue, err))) {
        rd_kafka_queue_destroy(c->queue);
        rd_kafka_destroy(c->rk);
        goto out_free_consumer;
    }
    return c;

out_free_consumer:
    kf_kafka_client_fini(&c->cl);
    free(c);
    return NULL;
}

void kf_consumer_destroy(kf_consumer *c)
{
    if (!c)
        return;
    if (!c->closed) {
        kf_error err;
        if (kf_consumer_close(c, &err) < 0)
            kf_log(KF_LOG_WARN, err.message, (char *)NULL);
    }
    rd_kafka_queue_destroy(c->queue);
    rd_kafka_destroy(c->rk);
    kf_kafka_client_fini(&c->cl);
    free(c);
}

int kf_consumer_subscribe(kf_consumer *c, const char *const *topics, size_t n, kf_error *err)
{
    if (n == 0)
        return kf_error_set(err, KF_ERR_INVALID, false, "could not subscribe: no topics given");
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)n);
    if (!list)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate topic list");
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(list, topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t code = rd_kafka_subscribe(c->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (code)
        return kf_kafka_error_set_code(err, code, "could not subscribe");
    return KF_OK;
}

/* While the poller waits for records, a parked fetcher is woken every WAIT_SLICE_MS. */
#define WAIT_SLICE_MS 20

int kf_consumer_poll_batch(kf_consumer *c, rd_kafka_message_t **msgs, size_t max, int timeout_ms,
                           kf_error *err)
{
    int rc = kf_kafka_fatal_check(&c->cl, c->rk, err);
    if (rc < 0)
        return rc;
    size_t n = 0;
    int64_t deadline = kf_retry_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    while (n < max) {
        int wait = 0;
        if (n == 0) {
            int64_t left = deadline - kf_retry_now_ms();
            wait = left > 0 ? (int)left : 0;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 0);
        if (!m && n == 0 && wait > 0) {
            /* The queue is empty: the fetcher may be parked behind a queue that was full. */
            if (c->waker && !c->paused) {
                kf_fetch_waker_want(c->waker);
                if (wait > WAIT_SLICE_MS)
                    wait = WAIT_SLICE_MS;
            }
            m = rd_kafka_consumer_poll(c->rk, wait);
        }
        if (!m) {
            if (n > 0 || wait == 0)
                break;
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            msgs[n++] = m;
            continue;
        }
        rd_kafka_resp_err_t code = m->err;
        if (code != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            char part[16];
            snprintf(part, sizeof(part), "%d", (int)m->partition);
            kf_log(KF_LOG_WARN, "consumer error", "client", rd_kafka_name(c->rk), "topic",
                   m->rkt ? rd_kafka_topic_name(m->rkt) : "", "partition", part, "error",
                   rd_kafka_message_errstr(m), (char *)NULL);
        }
        rd_kafka_message_destroy(m);
        if (code == RD_KAFKA_RESP_ERR__FATAL) {
            for (size_t i = 0; i < n; i++)
                rd_kafka_message_destroy(msgs[i]);
            return kf_kafka_fatal_check(&c->cl, c->rk, err);
        }
    }
    rc = kf_kafka_fatal_check(&c->cl, c->rk, err);
    if (rc < 0) {
        for (size_t i = 0; i < n; i++)
            rd_kafka_message_destroy(msgs[i]);
        return rc;
    }
    return (int)n;
}

int kf_consumer_store_offset(kf_consumer *c, const rd_kafka_message_t *msg, kf_error *err)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    if (!list)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate offset list");
    const char *topic = rd_kafka_topic_name(msg->rkt);
    rd_kafka_topic_partition_list_add(list, topic, msg->partition)->offset = msg->offset + 1;
    rd_kafka_resp_err_t code = rd_kafka_offsets_store(c->rk, list);
    if (code == RD_KAFKA_RESP_ERR_NO_ERROR)
        code = list->elems[0].err;
    rd_kafka_topic_partition_list_destroy(list);
    if (code == RD_KAFKA_RESP_ERR__STATE)
        return kf_error_set(err, KF_ERR_STATE, false,
                            "could not store offset for \"%s\" [%d]: the partition is no longer "
                            "assigned",
                            topic, (int)msg->partition);
    if (code)
        return kf_kafka_error_set_code(err, code, "could not store offset");
    return KF_OK;
}

int kf_consumer_commit(kf_consumer *c, bool async, kf_error *err)
{
    rd_kafka_resp_err_t code = rd_kafka_commit(c->rk, NULL, async ? 1 : 0);
    if (code == RD_KAFKA_RESP_ERR_NO_ERROR || code == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return KF_OK;
    if (code == RD_KAFKA_RESP_ERR__FATAL)
        return kf_kafka_fatal_check(&c->cl, c->rk, err);
    return kf_kafka_error_set_code(err, code, "could not commit offsets");
}

static int set_paused(kf_consumer *c, bool pause, kf_error *err)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t code = rd_kafka_assignment(c->rk, &parts);
    if (code)
        return kf_kafka_error_set_code(err, code, "could not read the assignment");
    code =
        pause ? rd_kafka_pause_partitions(c->rk, parts) : rd_kafka_resume_partitions(c->rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (code)
        return kf_kafka_error_set_code(
            err, code, pause ? "could not pause partitions" : "could not resume partitions");
    c->paused = pause;
    return KF_OK;
}

int kf_consumer_pause(kf_consumer *c, kf_error *err)
{
    return set_paused(c, true, err);
}

int kf_consumer_resume(kf_consumer *c, kf_error *err)
{
    return set_paused(c, false, err);
}

bool kf_consumer_paused(const kf_consumer *c)
{
    return c->paused;
}

int kf_consumer_assignment(kf_consumer *c, rd_kafka_topic_partition_list_t **out, kf_error *err)
{
    rd_kafka_resp_err_t code = rd_kafka_assignment(c->rk, out);
    if (code)
        return kf_kafka_error_set_code(err, code, "could not read the assignment");
    return KF_OK;
}

int kf_consumer_rewind(kf_consumer *c, int timeout_ms, kf_error *err)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    int rc = kf_consumer_assignment(c, &parts, err);
    if (rc < 0)
        return rc;
    if (parts->cnt == 0)
        goto out_destroy_parts;
    rd_kafka_resp_err_t code = rd_kafka_committed(c->rk, parts, timeout_ms);
    if (code) {
        rc = kf_kafka_error_set_code(err, code, "could not read committed offsets to rewind");
        goto out_destroy_parts;
    }
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        if (tp->err) {
            rc = kf_kafka_error_set_code(err, tp->err,
                                         "could not read a committed offset to rewind");
            goto out_destroy_parts;
        }
        if (tp->offset < 0)
            tp->offset = c->reset_offset;
    }
    rd_kafka_error_t *e = rd_kafka_seek_partitions(c->rk, parts, timeout_ms);
    if (e) {
        rc = kf_kafka_error_set(err, e, "could not rewind the consumer");
        rd_kafka_error_destroy(e);
        goto out_destroy_parts;
    }
    for (int i = 0; i < parts->cnt; i++) {
        if (parts->elems[i].err) {
            rc = kf_kafka_error_set_code(err, parts->elems[i].err, "could not rewind a partition");
            goto out_destroy_parts;
        }
    }
    char buf[1024];
    parts_format(parts, buf, sizeof(buf));
    kf_log(KF_LOG_INFO, "consumer rewound to the committed offsets", "client", rd_kafka_name(c->rk),
           "partitions", buf, (char *)NULL);

out_destroy_parts:
    rd_kafka_topic_partition_list_destroy(parts);
    return rc;
}

int kf_consumer_close(kf_consumer *c, kf_error *err)
{
    if (c->closed)
        return KF_OK;
    c->closed = true;
    kf_fetch_waker_destroy(c->waker); /* its requests need the open consumer */
    c->waker = NULL;
    rd_kafka_resp_err_t code = rd_kafka_consumer_close(c->rk);
    if (code)
        return kf_kafka_error_set_code(err, code, "could not close the consumer cleanly");
    return KF_OK;
}

uint64_t kf_consumer_fetch_nudges(const kf_consumer *c)
{
    return kf_fetch_waker_nudges(c->waker);
}

rd_kafka_t *kf_consumer_handle(kf_consumer *c)
{
    return c->rk;
}

kf_kafka_client *kf_consumer_client(kf_consumer *c)
{
    return &c->cl;
}
