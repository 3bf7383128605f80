/* The kfleet producer: asynchronous produce with a bounded number of messages in flight and
 * contiguous delivery accounting (acked_upto), so a source acknowledges only what Kafka has. */
#include "kafka_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfleet/log.h"

/* The sequence travels as the message opaque. */
_Static_assert(sizeof(void *) >= sizeof(uint64_t), "sequence numbers must fit in a pointer");

#define DEFAULT_MAX_IN_FLIGHT 100000
#define DEFAULT_FULL_WAIT_MS  30000
#define FULL_POLL_SLICE_MS    10

enum slot_state { SLOT_PENDING = 0, SLOT_ACKED, SLOT_FAILED, SLOT_PURGED };

typedef struct slot {
    uint64_t seq;
    uint8_t state;
} slot;

struct kf_producer {
    kf_kafka_client cl; /* first: librdkafka's opaque points here */
    rd_kafka_t *rk;
    bool transactional;
    int full_wait_ms;

    pthread_mutex_t lock; /* guards everything below */
    /* Messages in produce order, oldest at head; sequences strictly increase. */
    slot *ring;
    size_t cap;
    size_t head;
    size_t count;
    uint64_t last_seq; /* highest sequence produced */
    bool frozen;       /* a delivery failed: acked_upto stays at frozen_upto */
    uint64_t frozen_upto;
    uint64_t produced, acked, failed, purged;
    bool has_failure; /* a failure not yet cleared by a transaction abort */
    rd_kafka_resp_err_t first_failure_code;
    char first_failure[512];
};

/* The i-th message from the head (i < cap). */
static slot *ring_at(kf_producer *p, size_t i)
{
    size_t at = p->head + i;
    return &p->ring[at >= p->cap ? at - p->cap : at];
}

/* Index (0 = head) of seq among the in-flight messages, or -1. Sequences are usually
 * consecutive, so seq's distance from the head's is tried first. */
static long ring_find(kf_producer *p, uint64_t seq)
{
    if (p->count == 0)
        return -1;
    uint64_t first = ring_at(p, 0)->seq;
    if (seq >= first && seq - first < p->count && ring_at(p, (size_t)(seq - first))->seq == seq)
        return (long)(seq - first);
    size_t lo = 0, hi = p->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t s = ring_at(p, mid)->seq;
        if (s == seq)
            return (long)mid;
        if (s < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Drops reported messages from the head; the first failure freezes acked_upto. */
static void ring_advance(kf_producer *p)
{
    while (p->count > 0) {
        slot *s = ring_at(p, 0);
        if (s->state == SLOT_PENDING)
            break;
        if (s->state == SLOT_FAILED && !p->frozen) {
            p->frozen = true;
            p->frozen_upto = s->seq - 1;
        }
        p->head = p->head + 1 == p->cap ? 0 : p->head + 1;
        p->count--;
    }
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    kf_producer *p = opaque;
    uint64_t seq = (uint64_t)(uintptr_t)m->_private;
    bool purged = p->transactional && (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
                                       m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT);
    pthread_mutex_lock(&p->lock);
    long idx = ring_find(p, seq);
    if (idx >= 0) {
        slot *s = ring_at(p, (size_t)idx);
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            s->state = SLOT_ACKED;
            p->acked++;
        } else if (purged) {
            s->state = SLOT_PURGED;
            p->purged++;
        } else {
            s->state = SLOT_FAILED;
            p->failed++;
            if (!p->has_failure) {
                p->has_failure = true;
                p->first_failure_code = m->err;
                snprintf(p->first_failure, sizeof(p->first_failure),
                         "could not deliver message %llu to \"%s\" [%d]", (unsigned long long)seq,
                         m->rkt ? rd_kafka_topic_name(m->rkt) : "", (int)m->partition);
            }
        }
        ring_advance(p);
    }
    pthread_mutex_unlock(&p->lock);

    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR && !purged) {
        char seqbuf[24], partbuf[16];
        snprintf(seqbuf, sizeof(seqbuf), "%llu", (unsigned long long)seq);
        snprintf(partbuf, sizeof(partbuf), "%d", (int)m->partition);
        kf_log(KF_LOG_ERROR, "could not deliver message", "client", rd_kafka_name(rk), "topic",
               m->rkt ? rd_kafka_topic_name(m->rkt) : "", "partition", partbuf, "seq", seqbuf,
               "error", rd_kafka_err2str(m->err), (char *)NULL);
    }
}

kf_producer *kf_producer_new(const char *const *kv, size_t npairs, const kf_producer_options *opts,
                             kf_error *err)
{
    static const char *const defaults[] = {
        "enable.idempotence", "true",    /* no duplicates or reordering on retry */
        "partitioner", "murmur2_random", /* the Java client's key -> partition mapping */
    };
    kf_producer_options o = {0};
    if (opts)
        o = *opts;

    kf_producer *p = calloc(1, sizeof(*p));
    if (!p) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate producer");
        return NULL;
    }
    kf_kafka_client_init(&p->cl);
    pthread_mutex_init(&p->lock, NULL);
    p->cap = o.max_in_flight ? o.max_in_flight : DEFAULT_MAX_IN_FLIGHT;
    p->full_wait_ms = o.full_wait_ms ? o.full_wait_ms : DEFAULT_FULL_WAIT_MS;
    const char *txid = NULL;
    p->transactional = kf_kafka_kv_find(kv, npairs, "transactional.id", &txid) && txid && *txid;

    p->ring = calloc(p->cap, sizeof(*p->ring));
    if (!p->ring) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate %zu in-flight slots", p->cap);
        goto out_free_producer;
    }
    rd_kafka_conf_t *conf =
        kf_kafka_conf_build(RD_KAFKA_PRODUCER, defaults, sizeof(defaults) / sizeof(defaults[0]) / 2,
                            kv, npairs, p, err);
    if (!conf)
        goto out_free_producer;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    p->rk = kf_kafka_handle_new(RD_KAFKA_PRODUCER, conf, err);
    if (!p->rk)
        goto out_free_producer;
    return p;

out_free_producer:
    free(p->ring);
    pthread_mutex_destroy(&p->lock);
    kf_kafka_client_fini(&p->cl);
    free(p);
    return NULL;
}

void kf_producer_destroy(kf_producer *p)
{
    if (!p)
        return;
    if (p->rk)
        rd_kafka_destroy(p->rk);
    free(p->ring);
    pthread_mutex_destroy(&p->lock);
    kf_kafka_client_fini(&p->cl);
    free(p);
}

/* Headers handed to librdkafka: msg->headers (taken) with header_list appended. */
static int build_headers(const kf_produce_msg *msg, rd_kafka_headers_t **out, kf_error *err)
{
    rd_kafka_headers_t *hdrs = msg->headers;
    *out = NULL;
    if (msg->header_count == 0) {
        *out = hdrs;
        return KF_OK;
    }
    if (!hdrs) {
        hdrs = rd_kafka_headers_new(msg->header_count);
        if (!hdrs)
            return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate message headers");
    }
    for (size_t i = 0; i < msg->header_count; i++) {
        const kf_header *h = &msg->header_list[i];
        if (!h->name) {
            rd_kafka_headers_destroy(hdrs);
            return kf_error_set(err, KF_ERR_INVALID, false, "header %zu has no name", i);
        }
        rd_kafka_header_add(hdrs, h->name, -1, h->value, h->value ? (ssize_t)h->len : 0);
    }
    *out = hdrs;
    return KF_OK;
}

/* Waits, serving delivery reports, until a slot is free; KF_ERR_FULL after full_wait_ms. */
static int wait_for_slot(kf_producer *p, kf_error *err)
{
    int waited = 0;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        bool full = p->count == p->cap;
        pthread_mutex_unlock(&p->lock);
        if (!full)
            return KF_OK;
        if (p->full_wait_ms < 0 || waited >= p->full_wait_ms)
            return kf_error_set(err, KF_ERR_FULL, true,
                                "could not produce: %zu messages in the delivery window, the "
                                "configured maximum",
                                p->cap);
        rd_kafka_poll(p->rk, FULL_POLL_SLICE_MS);
        waited += FULL_POLL_SLICE_MS;
    }
}

static int produce_error(kf_producer *p, rd_kafka_resp_err_t code, const char *topic, kf_error *err)
{
    char what[300];
    snprintf(what, sizeof(what), "could not produce to \"%s\"", topic);
    switch (code) {
    case RD_KAFKA_RESP_ERR__FATAL:
        return kf_kafka_fatal_check(&p->cl, p->rk, err);
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        kf_kafka_error_set_code(err, code, what);
        err->code = KF_ERR_INVALID;
        return KF_ERR_INVALID;
    case RD_KAFKA_RESP_ERR__STATE:
        kf_kafka_error_set_code(err, code, what);
        err->code = KF_ERR_STATE;
        return KF_ERR_STATE;
    default:
        return kf_kafka_error_set_code(err, code, what);
    }
}

int kf_producer_produce(kf_producer *p, const kf_produce_msg *msg, uint64_t *seq_out, kf_error *err)
{
    kf_error local;
    if (!err)
        err = &local;
    if (!msg->topic || !*msg->topic) {
        if (msg->headers)
            rd_kafka_headers_destroy(msg->headers);
        return kf_error_set(err, KF_ERR_INVALID, false, "could not produce: no topic given");
    }
    int rc = kf_kafka_fatal_check(&p->cl, p->rk, err);
    if (rc < 0)
        goto out_destroy_headers;

    pthread_mutex_lock(&p->lock);
    uint64_t last = p->last_seq;
    bool full = p->count == p->cap;
    pthread_mutex_unlock(&p->lock);
    uint64_t seq = msg->seq ? msg->seq : last + 1;
    if (seq <= last) {
        rc = kf_error_set(err, KF_ERR_INVALID, false,
                          "could not produce: sequence %llu is not above the last one (%llu)",
                          (unsigned long long)seq, (unsigned long long)last);
        goto out_destroy_headers;
    }
    if (full && (rc = wait_for_slot(p, err)) < 0)
        goto out_destroy_headers;

    rd_kafka_headers_t *hdrs = NULL;
    rc = build_headers(msg, &hdrs, err);
    if (rc < 0)
        return rc; /* build_headers destroyed them */

    rd_kafka_vu_t vu[8];
    size_t nvu = 0;
    vu[nvu].vtype = RD_KAFKA_VTYPE_TOPIC;
    vu[nvu++].u.cstr = msg->topic;
    vu[nvu].vtype = RD_KAFKA_VTYPE_PARTITION;
    vu[nvu++].u.i32 = msg->partition;
    vu[nvu].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[nvu++].u.i = RD_KAFKA_MSG_F_COPY;
    vu[nvu].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vu[nvu++].u.ptr = (void *)(uintptr_t)seq;
    if (msg->key) {
        vu[nvu].vtype = RD_KAFKA_VTYPE_KEY;
        vu[nvu].u.mem.ptr = (void *)(uintptr_t)msg->key;
        vu[nvu++].u.mem.size = msg->key_len;
    }
    if (msg->value) {
        vu[nvu].vtype = RD_KAFKA_VTYPE_VALUE;
        vu[nvu].u.mem.ptr = (void *)(uintptr_t)msg->value;
        vu[nvu++].u.mem.size = msg->value_len;
    }
    if (msg->timestamp_ms) {
        vu[nvu].vtype = RD_KAFKA_VTYPE_TIMESTAMP;
        vu[nvu++].u.i64 = msg->timestamp_ms;
    }
    if (hdrs) {
        vu[nvu].vtype = RD_KAFKA_VTYPE_HEADERS;
        vu[nvu++].u.headers = hdrs;
    }

    /* Reserve the slot and the sequence first: the report can only arrive in a later poll on
     * this thread. */
    pthread_mutex_lock(&p->lock);
    slot *s = ring_at(p, p->count);
    s->seq = seq;
    s->state = SLOT_PENDING;
    p->count++;
    p->last_seq = seq;
    p->produced++;
    pthread_mutex_unlock(&p->lock);

    int waited = 0;
    for (;;) {
        rd_kafka_error_t *e = rd_kafka_produceva(p->rk, vu, nvu);
        if (!e)
            break;
        rd_kafka_resp_err_t code = rd_kafka_error_code(e);
        rd_kafka_error_destroy(e);
        if (code == RD_KAFKA_RESP_ERR__QUEUE_FULL && p->full_wait_ms >= 0 &&
            waited < p->full_wait_ms) {
            rd_kafka_poll(p->rk, FULL_POLL_SLICE_MS);
            waited += FULL_POLL_SLICE_MS;
            continue;
        }
        pthread_mutex_lock(&p->lock);
        p->count--; /* the reserved slot is the newest one */
        p->last_seq = last;
        p->produced--;
        pthread_mutex_unlock(&p->lock);
        if (hdrs)
            rd_kafka_headers_destroy(hdrs);
        if (code == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return kf_error_set(err, KF_ERR_FULL, true,
                                "could not produce to \"%s\": the client queue is full",
                                msg->topic);
        return produce_error(p, code, msg->topic, err);
    }

    if (seq_out)
        *seq_out = seq;
    rd_kafka_poll(p->rk, 0);
    return KF_OK;

out_destroy_headers:
    if (msg->headers)
        rd_kafka_headers_destroy(msg->headers);
    return rc;
}

int kf_producer_poll(kf_producer *p, int timeout_ms)
{
    return rd_kafka_poll(p->rk, timeout_ms);
}

int kf_producer_flush(kf_producer *p, int timeout_ms, kf_error *err)
{
    rd_kafka_resp_err_t code = rd_kafka_flush(p->rk, timeout_ms);
    int rc = kf_kafka_fatal_check(&p->cl, p->rk, err);
    if (rc < 0)
        return rc;
    if (code == RD_KAFKA_RESP_ERR__TIMED_OUT)
        return kf_error_set(err, KF_ERR_TIMEOUT, true,
                            "could not flush producer: %d messages still queued after %d ms",
                            rd_kafka_outq_len(p->rk), timeout_ms);
    if (code != RD_KAFKA_RESP_ERR_NO_ERROR)
        return kf_kafka_error_set_code(err, code, "could not flush producer");
    return KF_OK;
}

static uint64_t acked_upto_locked(const kf_producer *p)
{
    if (p->frozen)
        return p->frozen_upto;
    if (p->count > 0)
        return p->ring[p->head].seq - 1;
    return p->last_seq;
}

uint64_t kf_producer_acked_upto(const kf_producer *p)
{
    kf_producer *mp = (kf_producer *)p; /* the lock is not part of the logical state */
    pthread_mutex_lock(&mp->lock);
    uint64_t v = acked_upto_locked(p);
    pthread_mutex_unlock(&mp->lock);
    return v;
}

bool kf_producer_failed(const kf_producer *p, kf_error *err)
{
    kf_producer *mp = (kf_producer *)p;
    if (kf_kafka_fatal_check(&mp->cl, mp->rk, err) < 0)
        return true;
    pthread_mutex_lock(&mp->lock);
    bool failed = p->has_failure;
    if (failed)
        kf_kafka_error_set_code(err, p->first_failure_code, p->first_failure);
    pthread_mutex_unlock(&mp->lock);
    return failed;
}

void kf_producer_stats_get(const kf_producer *p, kf_producer_stats *out)
{
    kf_producer *mp = (kf_producer *)p;
    pthread_mutex_lock(&mp->lock);
    out->produced = p->produced;
    out->acked = p->acked;
    out->failed = p->failed;
    out->purged = p->purged;
    out->in_flight = p->produced - p->acked - p->failed - p->purged;
    out->window = p->count;
    out->acked_upto = acked_upto_locked(p);
    pthread_mutex_unlock(&mp->lock);
}

rd_kafka_t *kf_producer_handle(kf_producer *p)
{
    return p->rk;
}

kf_kafka_client *kf_producer_client(kf_producer *p)
{
    return &p->cl;
}

/* After an abort the failed outputs are gone with the transaction and will be produced
 * again: they no longer block the accounting or mark the program failed. */
void kf_producer_txn_reset(kf_producer *p)
{
    pthread_mutex_lock(&p->lock);
    p->frozen = false;
    p->has_failure = false;
    p->first_failure_code = RD_KAFKA_RESP_ERR_NO_ERROR;
    p->first_failure[0] = '\0';
    for (size_t i = 0; i < p->count; i++)
        if (ring_at(p, i)->state == SLOT_FAILED)
            ring_at(p, i)->state = SLOT_PURGED;
    ring_advance(p);
    pthread_mutex_unlock(&p->lock);
}
