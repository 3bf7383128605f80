/* The validate worker's read-process-write loop: one consumed batch becomes one Kafka
 * transaction holding the valid outputs, the DLQ records and the input offsets; rule state is
 * rolled back with an aborted transaction so a retried batch gives the same outputs. With
 * exactly-once the next batch is read and checked while the previous transaction commits. */
#include "loop.h"

#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kfleet/dlq.h"
#include "kfleet/event.h"
#include "kfleet/kafka.h"
#include "kfleet/log.h"
#include "kfleet/retry.h"
#include "kfleet/serde.h"
#include "kfleet/signals.h"
#include "kfleet/wire.h"
#include "rules.h"

#define TOPIC_MAX                  250
#define ADMIN_TIMEOUT_MS           30000
#define FLUSH_TIMEOUT_MS           60000
#define TXN_TIMEOUT_MS             60000
#define REWIND_TIMEOUT_MS          10000
#define COMMIT_ATTEMPTS            3
#define MAX_TALLIES                256
#define DEFAULT_COMMIT_INTERVAL_MS 100
#define RETRY_PAUSE_MS             500
#define ASSIGN_LOOKUP_MS           500
#define MIN_PREFETCH_RECORDS       1000
#define MMAP_THRESHOLD_BYTES       (128 * 1024)
#define MALLOC_ARENAS              2

/* Where the records of one input topic go. */
typedef struct route {
    char topic[TOPIC_MAX];
    int contract; /* index, or -1: no contract covers the topic (records pass unchecked) */
    char valid[TOPIC_MAX];
    char dlq[TOPIC_MAX];
    bool keep_partition; /* the outputs have at least the input's partitions */
    kf_counter_series *m_in, *m_valid;
} route;

/* Quarantined records of one rule (or decode reason) into one DLQ topic in a batch. */
typedef struct tally {
    const char *rule; /* borrowed from a contract or a static reason */
    size_t route;     /* index into vloop.routes */
    uint64_t count;
} tally;

/* A record of a batch that goes to the dead-letter topic, and why. The strings are static or
 * borrowed from the contracts, except the message: an offset into batch.text. */
typedef struct dlq_note {
    size_t index; /* of the record in the batch */
    const char *stage, *error_class, *rule_id, *reason;
    size_t message;
} dlq_note;

/* A job for the committer thread (see below). */
typedef enum job_kind { JOB_OPEN, JOB_CLOSE } job_kind;

typedef struct job {
    job_kind kind;
    const rd_kafka_topic_partition_list_t *offsets; /* JOB_OPEN: the batch's input positions */
    bool done;
    int rc;
    kf_error err;
    int64_t took_us; /* how long it ran */
} job;

/* One consumed batch: its records, where each goes, and what it adds to the counters once its
 * transaction committed. */
typedef struct batch {
    rd_kafka_message_t **msgs; /* batch_size entries; n used */
    size_t n;
    bool released;   /* the records are destroyed already (see batch_release) */
    uint32_t *route; /* per record: index into vloop.routes */
    dlq_note *notes; /* the records going to the dead-letter topic, in record order */
    size_t nnotes, cap_notes, next_note;
    kf_buf text; /* their messages, NUL-terminated */
    tally tallies[MAX_TALLIES];
    size_t ntallies;
    uint64_t in, valid, quarantined, undecodable, unchecked;
    rd_kafka_topic_partition_list_t *offsets; /* positions after it was read (exactly-once) */
    int64_t started_ms;
    int64_t read_us, check_us, emit_us; /* phase durations, for the debug log */
    job open, close;
} batch;

typedef struct series_cache {
    char key[TOPIC_MAX + 260];
    kf_counter_series *s;
} series_cache;

/*
 * The committer runs the transactional calls that wait for the brokers, in order, while the
 * loop reads and checks the next batch: JOB_OPEN begins a transaction and sends the batch's
 * input offsets first (so the transaction is registered with its coordinator before any
 * output needs a partition added), JOB_CLOSE commits it. Only one thread uses the producer
 * at a time: the loop produces a batch's outputs between the batch's JOB_OPEN and JOB_CLOSE,
 * and the committer touches it only inside a job. After a failed job (its transaction aborted
 * and the consumer rewound) the jobs queued behind it are skipped until the loop has dropped
 * the batches involved and calls committer_reset.
 */
#define JOB_QUEUE 4

typedef struct committer {
    kf_txn *t;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    job *queue[JOB_QUEUE];
    size_t head, count;
    bool failed;
    bool quit;
} committer;

typedef struct vloop {
    const kf_vloop_config *cfg;
    kf_serde *serde;
    kf_event_reader *reader;
    kf_producer *p;
    kf_consumer *c;
    kf_txn *t;
    kf_admin *admin;
    kf_dlq *dlq;
    kf_rules **rules;
    route *routes;
    size_t nroutes, cap_routes;
    series_cache *dlq_series;
    size_t ndlq_series;
    kf_counter *m_in, *m_out, *m_dlq;
    kf_histogram_series *m_batch;
    kf_vloop_stats *stats;
    batch slots[2];
    committer cm;
    /* Partitions a rebalance took during the current gather, and whether one of them came
     * back in it, or the protocol was eager (see settle_revoked). */
    rd_kafka_topic_partition_list_t *revoked;
    bool revoke_all;
    bool reset_earliest; /* partitions without a committed offset start at the earliest */
} vloop;

int kf_vloop_valid_topic(const char *prefix, const char *topic, char *buf, size_t len)
{
    size_t pl = strlen(prefix);
    const char *rest = topic;
    if (strncmp(topic, prefix, pl) == 0 && topic[pl] == '.') {
        rest = topic + pl + 1;
        if (strncmp(rest, "evolved.", 8) == 0)
            rest += 8;
    }
    int n = snprintf(buf, len, "%s.valid.%s", prefix, rest);
    return n < 0 || (size_t)n >= len || n > 249 ? KF_ERR_INVALID : KF_OK;
}

void kf_vloop_topics_free(char **topics, size_t n)
{
    for (size_t i = 0; topics && i < n; i++)
        free(topics[i]);
    free(topics);
}

/* Escapes regex metacharacters of s into out. */
static void regex_quote(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; *s && o + 3 < cap; s++) {
        if (strchr(".^$|()[]{}*+?\\", *s))
            out[o++] = '\\';
        out[o++] = *s;
    }
    out[o] = '\0';
}

int kf_vloop_contract_topics(const char *prefix, kf_contract *const *contracts, size_t n,
                             char ***out, size_t *nout, kf_error *err)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += contracts[i]->ntables + contracts[i]->ntopics;
    char **list = calloc(total ? total : 1, sizeof(*list));
    if (!list)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate topic list");
    size_t k = 0;
    char qp[256], qt[512], buf[1024];
    regex_quote(prefix, qp, sizeof(qp));
    for (size_t i = 0; i < n; i++) {
        const kf_contract *c = contracts[i];
        if (c->ntables == 0 && c->ntopics == 0) {
            kf_vloop_topics_free(list, k);
            return kf_error_set(err, KF_ERR_CONFIG, false,
                                "contract \"%s\" (%s) has no match section: give the topics to "
                                "read with validate.topics",
                                c->name, c->path);
        }
        for (size_t j = 0; j < c->ntables; j++) {
            regex_quote(c->tables[j], qt, sizeof(qt));
            snprintf(buf, sizeof(buf), "^%s\\.(evolved\\.)?%s$", qp, qt);
            if (!(list[k++] = strdup(buf)))
                goto out_nomem;
        }
        for (size_t j = 0; j < c->ntopics; j++) {
            const char *t = c->topics[j];
            /* librdkafka treats only names starting with ^ as patterns */
            if (t[0] != '^')
                snprintf(buf, sizeof(buf), "^.*%s", t);
            else
                snprintf(buf, sizeof(buf), "%s", t);
            if (!(list[k++] = strdup(buf)))
                goto out_nomem;
        }
    }
    *out = list;
    *nout = k;
    return KF_OK;

out_nomem:
    kf_vloop_topics_free(list, k);
    return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate topic list");
}

/* ---- routes: output topics per input topic, created on first sight ---- */

static int ensure_outputs(vloop *v, route *r, kf_error *err)
{
    kf_topic_info in;
    int rc = kf_admin_describe_topic(v->admin, r->topic, &in, ADMIN_TIMEOUT_MS, err);
    if (rc != KF_OK)
        return rc;
    kf_topic_spec specs[2] = {
        {.name = r->valid, .partitions = in.partitions, .replication_factor = -1},
        {.name = r->dlq, .partitions = in.partitions, .replication_factor = -1},
    };
    rc = kf_admin_create_topics(v->admin, specs, 2, true, ADMIN_TIMEOUT_MS, err);
    if (rc != KF_OK)
        return rc;
    kf_topic_info out;
    rc = kf_admin_describe_topic(v->admin, r->valid, &out, ADMIN_TIMEOUT_MS, err);
    if (rc != KF_OK)
        return rc;
    r->keep_partition = out.partitions >= in.partitions;
    if (!r->keep_partition)
        kf_log(KF_LOG_WARN,
               "valid topic has fewer partitions than its input; records are "
               "partitioned by key",
               "topic", r->valid, (char *)NULL);
    return KF_OK;
}

/* Loads the output topics' metadata into the producer now. Without it the first records
 * for a topic the producer has never seen wait for its periodic metadata refresh: 0.8 s on
 * the first batch of every new route in the measurements. */
static int prime_producer(vloop *v, const route *r, kf_error *err)
{
    rd_kafka_t *rk = kf_producer_handle(v->p);
    const char *names[] = {r->valid, r->dlq};
    for (size_t i = 0; i < 2; i++) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, names[i], NULL);
        if (!rkt)
            return kf_error_set(err, KF_ERR_NOMEM, false, "could not create topic handle \"%s\"",
                                names[i]);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t code = rd_kafka_metadata(rk, 0, rkt, &md, ADMIN_TIMEOUT_MS);
        if (md)
            rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        if (code != RD_KAFKA_RESP_ERR_NO_ERROR)
            return kf_kafka_error_set_code(err, code, "could not read output topic metadata");
    }
    return KF_OK;
}

/* The index of topic's route in v->routes (set up on first sight), or -1 with err set. */
static long route_for(vloop *v, const char *topic, kf_error *err)
{
    for (size_t i = 0; i < v->nroutes; i++)
        if (strcmp(v->routes[i].topic, topic) == 0)
            return (long)i;
    if (v->nroutes == v->cap_routes) {
        size_t cap = v->cap_routes ? v->cap_routes * 2 : 8;
        route *grown = realloc(v->routes, cap * sizeof(*grown));
        if (!grown) {
            kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate topic routes");
            return -1;
        }
        v->routes = grown;
        v->cap_routes = cap;
    }
    route *r = &v->routes[v->nroutes];
    memset(r, 0, sizeof(*r));
    snprintf(r->topic, sizeof(r->topic), "%s", topic);
    r->contract = -1;
    for (size_t i = 0; i < v->cfg->ncontracts; i++) {
        if (kf_contract_matches(v->cfg->contracts[i], v->cfg->prefix, topic)) {
            r->contract = (int)i;
            break;
        }
    }
    if (kf_vloop_valid_topic(v->cfg->prefix, topic, r->valid, sizeof(r->valid)) != KF_OK ||
        kf_dlq_topic_name(v->dlq, topic, r->dlq, sizeof(r->dlq)) != KF_OK) {
        kf_error_set(err, KF_ERR_INVALID, false,
                     "cannot derive output topics of \"%s\": names longer than 249 characters",
                     topic);
        return -1;
    }
    if (ensure_outputs(v, r, err) != KF_OK || prime_producer(v, r, err) != KF_OK)
        return -1;
    if (v->m_in) {
        r->m_in = kf_counter_child(v->m_in, 1, (const char *[]){topic}, err);
        r->m_valid = kf_counter_child(v->m_out, 1, (const char *[]){r->valid}, err);
        if (!r->m_in || !r->m_valid)
            return -1;
    }
    kf_log(KF_LOG_INFO, "routing topic", "topic", topic, "valid", r->valid, "dlq", r->dlq,
           "contract",
           r->contract >= 0 ? v->cfg->contracts[r->contract]->name : "(none: passed unchecked)",
           (char *)NULL);
    return (long)v->nroutes++;
}

/* Sets up the routes of the topics subscribed by name before the group is joined, so the
 * first batch does not wait for its output topics. A topic that does not exist yet gets its
 * route when its first record comes. */
static void prepare_routes(vloop *v, const char *const *topics, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (topics[i][0] == '^')
            continue;
        kf_error err;
        if (route_for(v, topics[i], &err) < 0)
            kf_log(KF_LOG_DEBUG, "output topics are set up with the first record", "topic",
                   topics[i], "reason", err.message, (char *)NULL);
    }
}

/* ---- batches ---- */

static void batch_free(batch *b)
{
    free(b->msgs);
    free(b->route);
    free(b->notes);
    kf_buf_free(&b->text);
    if (b->offsets)
        rd_kafka_topic_partition_list_destroy(b->offsets);
}

static int batch_init(batch *b, size_t cap)
{
    memset(b, 0, sizeof(*b));
    kf_buf_init(&b->text);
    b->msgs = calloc(cap, sizeof(*b->msgs));
    b->route = calloc(cap, sizeof(*b->route));
    return b->msgs && b->route ? KF_OK : KF_ERR_NOMEM;
}

/* Forgets the batch's records (destroying them) and everything derived from them. */
static void batch_clear(batch *b)
{
    for (size_t i = 0; i < b->n && !b->released; i++)
        rd_kafka_message_destroy(b->msgs[i]);
    b->n = 0;
    b->released = false;
    b->nnotes = b->next_note = 0;
    b->text.len = 0;
    b->ntallies = 0;
    b->in = b->valid = b->quarantined = b->undecodable = b->unchecked = 0;
    if (b->offsets) {
        rd_kafka_topic_partition_list_destroy(b->offsets);
        b->offsets = NULL;
    }
}

static void tally_add(batch *b, const char *rule, size_t r)
{
    for (size_t i = 0; i < b->ntallies; i++) {
        if (b->tallies[i].route == r && strcmp(b->tallies[i].rule, rule) == 0) {
            b->tallies[i].count++;
            return;
        }
    }
    if (b->ntallies < MAX_TALLIES)
        b->tallies[b->ntallies++] = (tally){rule, r, 1};
    else
        b->tallies[MAX_TALLIES - 1].count++;
}

/* Records that record i goes to the dead-letter topic; why's strings are static or outlive
 * the batch, except the message, which is copied. */
static int note_dlq(batch *b, size_t i, const kf_dlq_reason *why, kf_error *err)
{
    if (b->nnotes == b->cap_notes) {
        size_t cap = b->cap_notes ? b->cap_notes * 2 : 16;
        dlq_note *grown = realloc(b->notes, cap * sizeof(*grown));
        if (!grown)
            return kf_error_set(err, KF_ERR_NOMEM, false, "could not note a dead-letter record");
        b->notes = grown;
        b->cap_notes = cap;
    }
    size_t len = why->message ? strlen(why->message) : 0;
    size_t at = b->text.len;
    if (kf_buf_reserve(&b->text, at + len + 1) != KF_OK)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not note a dead-letter record");
    if (len)
        memcpy(b->text.data + at, why->message, len);
    b->text.data[at + len] = '\0';
    b->text.len = at + len + 1;
    b->notes[b->nnotes++] = (dlq_note){.index = i,
                                       .stage = why->stage,
                                       .error_class = why->error_class,
                                       .rule_id = why->rule_id,
                                       .reason = why->reason,
                                       .message = at};
    return KF_OK;
}

/* Why a record could not be decoded, as a reason code and an error class. */
static void decode_reason(const rd_kafka_message_t *m, int code, const char **reason,
                          const char **cls)
{
    const uint8_t *b = m->payload;
    if (code == KF_ERR_NOT_FOUND) {
        *reason = "unknown_schema_id";
        *cls = "UnknownSchemaError";
    } else if (m->len < KF_WIRE_HEADER_SIZE) {
        *reason = "truncated_header";
        *cls = "DecodeError";
    } else if (b[0] != KF_WIRE_MAGIC) {
        *reason = "bad_magic_byte";
        *cls = "DecodeError";
    } else {
        *reason = "undecodable_avro";
        *cls = "DecodeError";
    }
}

/* Decides where record i goes: the valid topic, or the dead-letter topic with a reason. The
 * rules count it in the open batch. Returns 0 or an error that fails the batch (a retriable
 * decode error such as an unreachable registry, out of memory, a rule state overflow). */
static int check_record(vloop *v, batch *b, size_t i, kf_error *err)
{
    const rd_kafka_message_t *m = b->msgs[i];
    long ri = route_for(v, rd_kafka_topic_name(m->rkt), err);
    if (ri < 0)
        return err->code;
    b->route[i] = (uint32_t)ri;
    const route *r = &v->routes[ri];
    b->in++;
    if (r->contract < 0 || !m->payload) {
        if (r->contract < 0)
            b->unchecked++;
        b->valid++;
        return KF_OK;
    }
    kf_event ev;
    kf_error derr;
    int rc = kf_event_reader_decode(v->reader, m->payload, m->len, &ev, &derr);
    if (rc != KF_OK) {
        if (derr.retriable || rc == KF_ERR_NOMEM || rc == KF_ERR_FATAL) {
            *err = derr;
            return rc;
        }
        const char *reason, *cls;
        decode_reason(m, rc, &reason, &cls);
        kf_dlq_reason why = {.stage = "decode",
                             .error_class = cls,
                             .message = derr.message,
                             .rule_id = KF_DLQ_RULE_DECODE,
                             .reason = reason};
        b->undecodable++;
        /* metrics and alerts name the rule id of the DLQ headers; the reason stays there */
        tally_add(b, KF_DLQ_RULE_DECODE, (size_t)ri);
        return note_dlq(b, i, &why, err);
    }
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    kf_verdict vd;
    rc = kf_rules_check_event(v->rules[r->contract], &ev, m->key, m->key_len,
                              ts > 0 ? ts : (ev.has_ts_ms ? ev.ts_ms : 0), &vd);
    if (rc != KF_OK)
        return kf_error_set(err, rc, false, "could not check a record of \"%s\" (%s)", r->topic,
                            kf_err_name(rc));
    if (!vd.failed) {
        b->valid++;
        return KF_OK;
    }
    kf_dlq_reason why = {.stage = "validate",
                         .error_class = "RuleViolation",
                         .message = vd.message,
                         .rule_id = vd.failed->id,
                         .reason = kf_rule_kind_name(vd.failed->kind)};
    b->quarantined++;
    tally_add(b, vd.failed->id, (size_t)ri);
    return note_dlq(b, i, &why, err);
}

/* The valid copy: key, value, timestamp and headers as consumed. The headers are taken from
 * the consumed record, which is only destroyed (never produced again) after this. */
static int produce_valid(vloop *v, const route *r, rd_kafka_message_t *m, kf_error *err)
{
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_detach_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        hdrs = NULL;
    if (hdrs && rd_kafka_header_cnt(hdrs) == 0) {
        rd_kafka_headers_destroy(hdrs);
        hdrs = NULL;
    }
    kf_produce_msg out = {
        .topic = r->valid,
        .partition = r->keep_partition ? m->partition : RD_KAFKA_PARTITION_UA,
        .key = m->key,
        .key_len = m->key_len,
        .value = m->payload,
        .value_len = m->len,
        .headers = hdrs,
        .timestamp_ms = ts > 0 ? ts : 0,
    };
    return kf_producer_produce(v->p, &out, NULL, err);
}

/* Writes record i where check_record sent it (records are emitted in order, except those
 * emit_batch sends first). */
static int emit_record(vloop *v, batch *b, size_t i, kf_error *err)
{
    rd_kafka_message_t *m = b->msgs[i];
    const route *r = &v->routes[b->route[i]];
    if (b->next_note < b->nnotes && b->notes[b->next_note].index == i) {
        const dlq_note *dn = &b->notes[b->next_note++];
        kf_dlq_reason why = {.stage = dn->stage,
                             .error_class = dn->error_class,
                             .message = (const char *)b->text.data + dn->message,
                             .rule_id = dn->rule_id,
                             .reason = dn->reason};
        return kf_dlq_send(v->dlq, m, &why, err);
    }
    return produce_valid(v, r, m, err);
}

/*
 * Writes every record of a checked batch. The first valid record of each output partition
 * goes first, then the others in order (so each partition still gets its records in input
 * order, and its log is the same). librdkafka (2.0) adds partitions to a transaction one
 * AddPartitionsToTxn request at a time, the next only a millisecond after the previous
 * answer, and a partition's records wait for it: records of the second and third partition
 * of a batch waited about 4 ms. Produced together, the partitions join in one request.
 */
#define EARLY_MAX 64

static int emit_batch(vloop *v, batch *b, kf_error *err)
{
    size_t early[EARLY_MAX], nearly = 0, note = 0;
    for (size_t i = 0; i < b->n && nearly < EARLY_MAX; i++) {
        if (note < b->nnotes && b->notes[note].index == i) {
            note++;
            continue;
        }
        const route *r = &v->routes[b->route[i]];
        if (!r->keep_partition)
            continue;
        bool seen = false;
        for (size_t k = 0; k < nearly && !seen; k++)
            seen = b->route[early[k]] == b->route[i] &&
                   b->msgs[early[k]]->partition == b->msgs[i]->partition;
        if (!seen)
            early[nearly++] = i;
    }
    for (size_t k = 0; k < nearly; k++) {
        int rc = emit_record(v, b, early[k], err);
        if (rc != KF_OK)
            return rc;
    }
    for (size_t i = 0, k = 0; i < b->n; i++) {
        if (k < nearly && early[k] == i) {
            k++;
            continue;
        }
        int rc = emit_record(v, b, i, err);
        if (rc != KF_OK)
            return rc;
    }
    return KF_OK;
}

/* The batch's outputs are produced (the producer holds copies) and its input offsets are in
 * its transaction: its records are not needed any more, and their fetch buffers can go while
 * the transaction commits. An abort reads them again. */
static void batch_release(batch *b)
{
    for (size_t i = 0; i < b->n && !b->released; i++)
        rd_kafka_message_destroy(b->msgs[i]);
    b->released = true;
}

/* ---- batch boundaries ---- */

static void on_breach(void *ctx, const kf_rule *rule, int64_t rows, int64_t start, int64_t end)
{
    vloop *v = ctx;
    kf_alert_breach(v->cfg->alert, rule->id, kf_rule_kind_name(rule->kind), rows, rule->rows, start,
                    end);
}

static kf_counter_series *dlq_series(vloop *v, const char *topic, const char *rule)
{
    char key[sizeof(v->dlq_series[0].key)];
    snprintf(key, sizeof(key), "%s\n%s", topic, rule);
    for (size_t i = 0; i < v->ndlq_series; i++)
        if (strcmp(v->dlq_series[i].key, key) == 0)
            return v->dlq_series[i].s;
    series_cache *grown = realloc(v->dlq_series, (v->ndlq_series + 1) * sizeof(*grown));
    if (!grown)
        return NULL;
    v->dlq_series = grown;
    kf_counter_series *s = kf_counter_child(v->m_dlq, 2, (const char *[]){topic, rule}, NULL);
    if (!s)
        return NULL;
    snprintf(grown[v->ndlq_series].key, sizeof(key), "%s", key);
    grown[v->ndlq_series++].s = s;
    return s;
}

/* Opens the batch in the rule engines (the rules roll back to here if it aborts). */
static int batch_begin(vloop *v, batch *b, kf_error *err)
{
    b->started_ms = kf_retry_now_ms();
    for (size_t i = 0; i < v->cfg->ncontracts; i++)
        if (kf_rules_begin(v->rules[i]) != KF_OK)
            return kf_error_set(err, KF_ERR_STATE, false, "rule state: too many open batches");
    return KF_OK;
}

/* Every record of the batch has been checked: the per-batch dataset rules are evaluated. */
static void batch_checked(vloop *v)
{
    for (size_t i = 0; i < v->cfg->ncontracts; i++)
        kf_rules_end_batch(v->rules[i]);
}

/* The first `done` records of the batch are durable: make their counters, metrics and alerts
 * final (the rules commit their oldest open batch). */
static void batch_committed(vloop *v, batch *b, size_t done)
{
    for (size_t i = 0; i < v->cfg->ncontracts; i++)
        kf_rules_commit(v->rules[i], on_breach, v);
    kf_vloop_stats *s = v->stats;
    s->records_in += b->in;
    s->valid += b->valid;
    s->quarantined += b->quarantined;
    s->undecodable += b->undecodable;
    s->unchecked += b->unchecked;
    s->batches++;
    s->last_commit_ms = kf_retry_now_ms();
    for (size_t i = 0; i < b->ntallies; i++) {
        const tally *t = &b->tallies[i];
        const route *r = &v->routes[t->route];
        if (v->m_dlq) {
            kf_counter_series *cs = dlq_series(v, r->topic, t->rule);
            if (cs)
                kf_counter_inc(cs, t->count);
        }
        kf_alert_quarantined(v->cfg->alert, t->rule, r->dlq, t->count);
    }
    /* route metrics count per record */
    for (size_t i = 0; v->m_in && i < done; i++)
        kf_counter_inc(v->routes[b->route[i]].m_in, 1);
    if (v->m_batch)
        kf_histogram_observe(v->m_batch, (double)(kf_retry_now_ms() - b->started_ms) / 1000.0);
}

/* The open batches are dropped: the rules forget them and their records come again. */
static void batches_rolled_back(vloop *v)
{
    size_t open = v->cfg->ncontracts ? kf_rules_open(v->rules[0]) : 0;
    for (size_t i = 0; i < v->cfg->ncontracts; i++)
        kf_rules_rollback(v->rules[i]);
    v->stats->aborts += open ? open : 1;
}

/* Dataset time windows close on the clock too, so a quiet stream still reports its breaches. */
static void tick_windows(vloop *v)
{
    int64_t now = kf_retry_now_ms();
    for (size_t i = 0; i < v->cfg->ncontracts; i++)
        kf_rules_tick(v->rules[i], now, on_breach, v);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Seeks the consumer back to the committed offsets after records it returned were dropped. A
 * failed rewind is fatal: going on would skip them. */
static int rewind_consumer(vloop *v, kf_error *err)
{
    kf_error rerr;
    if (kf_consumer_rewind(v->c, REWIND_TIMEOUT_MS, &rerr) == KF_OK)
        return KF_OK;
    return kf_error_set(err, KF_ERR_FATAL, false, "could not rewind the consumer: %s",
                        rerr.message);
}

/* Fills b with the next batch: the first poll waits up to poll_timeout_ms for a record; then
 * records are added as they come until the batch is full, the commit interval since the first
 * one has passed, max_records is reached (counting `pending` records of a batch still
 * committing) or a stop is requested. Returns the count, or a negative error (the records
 * taken so far destroyed). */
static int gather(vloop *v, batch *b, size_t pending, kf_error *err)
{
    const kf_vloop_config *cfg = v->cfg;
    size_t max = cfg->batch_size;
    if (cfg->max_records > 0) {
        uint64_t done = v->stats->records_in + pending;
        uint64_t left = (uint64_t)cfg->max_records > done ? (uint64_t)cfg->max_records - done : 0;
        if (left < max)
            max = (size_t)left;
    }
    b->n = 0;
    if (max == 0)
        return 0;
    int n = kf_consumer_poll_batch(v->c, b->msgs, max, cfg->poll_timeout_ms, err);
    if (n <= 0)
        return n;
    int interval =
        cfg->commit_interval_ms > 0 ? cfg->commit_interval_ms : DEFAULT_COMMIT_INTERVAL_MS;
    int64_t deadline = kf_retry_now_ms() + interval;
    while ((size_t)n < max && !kf_signals_stop_requested()) {
        int64_t wait = deadline - kf_retry_now_ms();
        if (wait <= 0)
            break;
        int k = kf_consumer_poll_batch(v->c, b->msgs + n, max - (size_t)n, (int)wait, err);
        if (k < 0) {
            for (int i = 0; i < n; i++)
                rd_kafka_message_destroy(b->msgs[i]);
            return k;
        }
        n += k;
    }
    b->n = (size_t)n;
    return n;
}

/* The consumer's positions now, i.e. right after the batch was read: the input offsets its
 * transaction commits (the next offset of each assigned partition that consumed something). */
static int snapshot_offsets(vloop *v, batch *b, kf_error *err)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    int rc = kf_consumer_assignment(v->c, &parts, err);
    if (rc != KF_OK)
        return rc;
    rd_kafka_resp_err_t code = rd_kafka_position(kf_consumer_handle(v->c), parts);
    if (code) {
        rd_kafka_topic_partition_list_destroy(parts);
        return kf_kafka_error_set_code(err, code, "could not read consumer positions");
    }
    b->offsets = rd_kafka_topic_partition_list_new(parts->cnt > 0 ? parts->cnt : 1);
    if (!b->offsets) {
        rd_kafka_topic_partition_list_destroy(parts);
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate offset list");
    }
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        if (tp->offset >= 0)
            rd_kafka_topic_partition_list_add(b->offsets, tp->topic, tp->partition)->offset =
                tp->offset;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return KF_OK;
}

/* ---- the committer thread ---- */

/* Aborts the transaction if the failed call left it open (an abortable error already
 * aborted it and rewound the consumer). Returns rc, or the abort's fatal error. */
static int abort_open(kf_txn *t, int rc, kf_error *err)
{
    if (rc == KF_OK || rc == KF_ERR_FATAL || !kf_txn_open(t))
        return rc;
    kf_error aerr;
    int arc = kf_txn_abort(t, &aerr);
    if (arc == KF_ERR_FATAL) {
        *err = aerr;
        return arc;
    }
    return rc;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void run_job(kf_txn *t, job *j)
{
    int64_t started = now_us();
    int rc;
    if (j->kind == JOB_OPEN) {
        rc = kf_txn_begin(t, &j->err);
        if (rc == KF_OK && j->offsets->cnt > 0)
            rc = kf_txn_send_offset_list(t, j->offsets, &j->err);
    } else {
        rc = KF_ERR_TIMEOUT;
        for (int attempt = 0; attempt < COMMIT_ATTEMPTS && rc == KF_ERR_TIMEOUT; attempt++)
            rc = kf_txn_commit(t, &j->err);
    }
    if (rc != KF_OK && rc != KF_ERR_FATAL)
        kf_log(KF_LOG_WARN, "batch aborted; its records will be processed again", "reason",
               j->err.message, (char *)NULL);
    j->rc = abort_open(t, rc, &j->err);
    j->took_us = now_us() - started;
}

static void *committer_main(void *arg)
{
    committer *cm = arg;
    pthread_mutex_lock(&cm->lock);
    for (;;) {
        while (!cm->count && !cm->quit)
            pthread_cond_wait(&cm->cond, &cm->lock);
        if (!cm->count)
            break;
        job *j = cm->queue[cm->head];
        bool skip = cm->failed;
        pthread_mutex_unlock(&cm->lock);
        if (skip)
            j->rc =
                kf_error_set(&j->err, KF_ERR_STATE, true, "skipped: an earlier transaction failed");
        else
            run_job(cm->t, j);
        pthread_mutex_lock(&cm->lock);
        cm->head = (cm->head + 1) % JOB_QUEUE;
        cm->count--;
        if (j->rc != KF_OK)
            cm->failed = true;
        j->done = true;
        pthread_cond_broadcast(&cm->cond);
    }
    pthread_mutex_unlock(&cm->lock);
    return NULL;
}

static int committer_start(committer *cm, kf_txn *t, kf_error *err)
{
    cm->t = t;
    pthread_mutex_init(&cm->lock, NULL);
    pthread_cond_init(&cm->cond, NULL);
    if (pthread_create(&cm->thread, NULL, committer_main, cm) != 0) {
        pthread_cond_destroy(&cm->cond);
        pthread_mutex_destroy(&cm->lock);
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not start the committer thread");
    }
    cm->started = true;
    return KF_OK;
}

/* Runs the queued jobs to the end, then stops the thread. */
static void committer_stop(committer *cm)
{
    if (!cm->started)
        return;
    pthread_mutex_lock(&cm->lock);
    cm->quit = true;
    pthread_cond_broadcast(&cm->cond);
    pthread_mutex_unlock(&cm->lock);
    pthread_join(cm->thread, NULL);
    pthread_cond_destroy(&cm->cond);
    pthread_mutex_destroy(&cm->lock);
    cm->started = false;
}

static void committer_submit(committer *cm, job *j, job_kind kind,
                             const rd_kafka_topic_partition_list_t *offsets)
{
    j->kind = kind;
    j->offsets = offsets;
    j->done = false;
    j->rc = KF_OK;
    kf_error_clear(&j->err);
    pthread_mutex_lock(&cm->lock);
    cm->queue[(cm->head + cm->count) % JOB_QUEUE] = j;
    cm->count++;
    pthread_cond_broadcast(&cm->cond);
    pthread_mutex_unlock(&cm->lock);
}

/* Waits for j (submitted) and returns its result, its error in *err. */
static int committer_wait(committer *cm, job *j, kf_error *err)
{
    pthread_mutex_lock(&cm->lock);
    while (!j->done)
        pthread_cond_wait(&cm->cond, &cm->lock);
    pthread_mutex_unlock(&cm->lock);
    if (j->rc != KF_OK)
        *err = j->err;
    return j->rc;
}

/* The loop has dropped every batch a failed job concerned: run jobs again. */
static void committer_reset(committer *cm)
{
    pthread_mutex_lock(&cm->lock);
    cm->failed = false;
    pthread_mutex_unlock(&cm->lock);
}

/* ---- exactly-once: one transaction per batch, the next batch checked while one commits ---- */

/* Where the time of a committed batch went (debug): reading it, checking it, beginning its
 * transaction with the offsets (JOB_OPEN), writing it, committing it (JOB_CLOSE). */
static void log_batch(const batch *b)
{
    char f[6][32];
    snprintf(f[0], sizeof(f[0]), "%zu", b->n);
    const int64_t us[5] = {b->read_us, b->check_us, b->open.took_us, b->emit_us, b->close.took_us};
    for (size_t i = 0; i < 5; i++)
        snprintf(f[i + 1], sizeof(f[0]), "%.1f", (double)us[i] / 1000.0);
    kf_log(KF_LOG_DEBUG, "batch committed", "records", f[0], "read_ms", f[1], "check_ms", f[2],
           "open_ms", f[3], "emit_ms", f[4], "commit_ms", f[5], (char *)NULL);
}

/* Waits for the commit of b (the oldest open batch). Committed: its counters become final.
 * Failed: every open batch is rolled back (its transaction was aborted and the consumer
 * rewound). Either way its records are destroyed. Returns 0 when it committed, else the
 * job's error. */
static int finish_close(vloop *v, batch *b, kf_error *err)
{
    int rc = committer_wait(&v->cm, &b->close, err);
    if (rc == KF_OK) {
        batch_committed(v, b, b->n);
        if (kf_log_enabled(KF_LOG_DEBUG))
            log_batch(b);
    } else {
        batches_rolled_back(v);
    }
    batch_clear(b);
    return rc;
}

/* After a failure that dropped batches: the consumer goes back to the committed offsets
 * (the committer may have rewound it while the loop was still reading, so the loop rewinds
 * too), the committer runs jobs again, and the loop pauses before reading again. Returns 0,
 * or the fatal error that ends the loop. */
static int recover(vloop *v, int rc, kf_error *err)
{
    if (rc == KF_ERR_FATAL || rc == KF_ERR_NOMEM || rc == KF_ERR_INVALID)
        return rc;
    int rrc = rewind_consumer(v, err);
    if (rrc != KF_OK)
        return rrc;
    committer_reset(&v->cm);
    sleep_ms(RETRY_PAUSE_MS);
    return KF_OK;
}

/* Checks the records of b in a new rule batch; stops at the first error. */
static int check_batch(vloop *v, batch *b, kf_error *err)
{
    int rc = batch_begin(v, b, err);
    for (size_t i = 0; i < b->n && rc == KF_OK; i++)
        rc = check_record(v, b, i, err);
    if (rc == KF_OK)
        batch_checked(v);
    return rc;
}

/* Before a batch is used: records of partitions a rebalance took while it was read belong to
 * another member now, which reads them from the committed offsets. With the cooperative
 * protocol they are dropped and the rest of the batch stays (the partitions kept go on where
 * they were). When a taken partition came back within the same read, or with the eager
 * protocol (every partition taken and assigned again, from the committed offsets), the whole
 * batch is dropped and *rewind is set: the consumer must go back to the committed offsets.
 * Returns the records left. */
static size_t settle_revoked(vloop *v, batch *b, bool *rewind)
{
    *rewind = false;
    if (v->revoked->cnt == 0)
        return b->n;
    if (v->revoke_all) {
        *rewind = b->n > 0;
        batch_clear(b);
    } else {
        size_t kept = 0;
        for (size_t i = 0; i < b->n; i++) {
            rd_kafka_message_t *m = b->msgs[i];
            if (rd_kafka_topic_partition_list_find(v->revoked, rd_kafka_topic_name(m->rkt),
                                                   m->partition))
                rd_kafka_message_destroy(m);
            else
                b->msgs[kept++] = m;
        }
        b->n = kept;
    }
    while (v->revoked->cnt > 0)
        rd_kafka_topic_partition_list_del_by_idx(v->revoked, v->revoked->cnt - 1);
    v->revoke_all = false;
    return b->n;
}

static int run_eos(vloop *v, kf_error *err)
{
    batch *cur = &v->slots[0], *prev = NULL; /* prev: its transaction is committing */
    const kf_vloop_config *cfg = v->cfg;
    int rc = KF_OK;
    while (!kf_signals_stop_requested()) {
        size_t pending = prev ? prev->n : 0;
        if (cfg->max_records > 0 && v->stats->records_in + pending >= (uint64_t)cfg->max_records)
            break;
        if (!prev)
            tick_windows(v);
        int64_t t0 = now_us();
        int n = gather(v, cur, pending, err);
        if (n < 0) {
            rc = n;
            break;
        }
        int64_t t1 = now_us();
        cur->read_us = t1 - t0;
        bool rewind;
        if (settle_revoked(v, cur, &rewind) == 0) {
            /* Nothing to do: the batch in flight is finished. After a rebalance that dropped
             * the records read, the consumer goes back to the committed offsets once that
             * batch has committed (the offsets then include it). */
            kf_error cerr;
            int crc = prev ? finish_close(v, prev, &cerr) : KF_OK;
            prev = NULL;
            if (crc != KF_OK) {
                *err = cerr;
                if ((rc = recover(v, crc, err)) != KF_OK)
                    break;
            } else if (rewind && (rc = rewind_consumer(v, err)) != KF_OK) {
                break;
            }
            continue;
        }
        if (!v->stats->first_record_ms)
            v->stats->first_record_ms = kf_retry_now_ms();
        /* the transaction of this batch begins with its input offsets as soon as the one in
         * flight has committed; meanwhile the records are checked */
        rc = snapshot_offsets(v, cur, err);
        if (rc != KF_OK) {
            if (prev) {
                kf_error cerr;
                finish_close(v, prev, &cerr);
            }
            break;
        }
        committer_submit(&v->cm, &cur->open, JOB_OPEN, cur->offsets);
        kf_error kerr;
        int krc = check_batch(v, cur, &kerr);
        cur->check_us = now_us() - t1;
        int crc = KF_OK;
        kf_error cerr;
        if (prev) {
            crc = finish_close(v, prev, &cerr);
            prev = NULL;
        }
        kf_error oerr;
        int orc = committer_wait(&v->cm, &cur->open, &oerr);
        if (crc != KF_OK || orc != KF_OK || krc != KF_OK) {
            /* the batch in flight failed (every open batch was rolled back), this one could
             * not begin its transaction, or a record could not be checked */
            if (crc != KF_OK) {
                *err = cerr;
                rc = crc;
            } else if (orc != KF_OK) {
                *err = oerr;
                rc = orc;
            } else {
                *err = kerr;
                rc = abort_open(v->t, krc, err);
                kf_log(KF_LOG_WARN, "batch aborted; its records will be processed again", "reason",
                       kerr.message, (char *)NULL);
            }
            if (crc == KF_OK)
                batches_rolled_back(v);
            batch_clear(cur);
            if ((rc = recover(v, rc, err)) != KF_OK)
                break;
            continue;
        }
        int64_t t2 = now_us();
        rc = emit_batch(v, cur, err);
        cur->emit_us = now_us() - t2;
        if (rc != KF_OK) {
            kf_log(KF_LOG_WARN, "batch aborted; its records will be processed again", "reason",
                   err->message, (char *)NULL);
            rc = abort_open(v->t, rc, err);
            batches_rolled_back(v);
            batch_clear(cur);
            if ((rc = recover(v, rc, err)) != KF_OK)
                break;
            continue;
        }
        batch_release(cur);
        committer_submit(&v->cm, &cur->close, JOB_CLOSE, NULL);
        prev = cur;
        cur = cur == &v->slots[0] ? &v->slots[1] : &v->slots[0];
    }
    if (prev) {
        kf_error cerr;
        int crc = finish_close(v, prev, &cerr);
        if (crc == KF_ERR_FATAL && rc == KF_OK) {
            *err = cerr;
            rc = crc;
        }
    }
    return rc;
}

/* ---- at-least-once: produce, flush, then commit the offsets of what was processed ---- */

static int batch_plain(vloop *v, batch *b, kf_error *err)
{
    int rc = batch_begin(v, b, err);
    size_t done = 0;
    for (; done < b->n && rc == KF_OK; done++) {
        rc = check_record(v, b, done, err);
        if (rc == KF_OK)
            rc = emit_record(v, b, done, err);
    }
    if (rc != KF_OK && done > 0)
        done--;
    kf_error ferr;
    if (kf_producer_flush(v->p, FLUSH_TIMEOUT_MS, &ferr) != KF_OK ||
        kf_producer_failed(v->p, &ferr)) {
        *err = ferr;
        return KF_ERR_FATAL;
    }
    for (size_t i = 0; i < done; i++) {
        int src = kf_consumer_store_offset(v->c, b->msgs[i], &ferr);
        if (src != KF_OK) {
            *err = ferr;
            return src;
        }
    }
    int crc = kf_consumer_commit(v->c, false, &ferr);
    if (crc != KF_OK && crc != KF_ERR_KAFKA) {
        *err = ferr;
        return crc;
    }
    batch_checked(v);
    batch_committed(v, b, done);
    if (rc != KF_OK) {
        if (rc == KF_ERR_NOMEM || rc == KF_ERR_INVALID || rc == KF_ERR_FATAL)
            return rc;
        kf_log(KF_LOG_WARN, "batch stopped early; the rest will be processed again", "reason",
               err->message, (char *)NULL);
        if (kf_consumer_rewind(v->c, REWIND_TIMEOUT_MS, &ferr) != KF_OK) {
            *err = ferr;
            return ferr.code;
        }
        sleep_ms(RETRY_PAUSE_MS);
    }
    return KF_OK;
}

static int run_plain(vloop *v, kf_error *err)
{
    const kf_vloop_config *cfg = v->cfg;
    batch *b = &v->slots[0];
    int rc = KF_OK;
    while (!kf_signals_stop_requested()) {
        if (cfg->max_records > 0 && v->stats->records_in >= (uint64_t)cfg->max_records)
            break;
        tick_windows(v);
        int n = gather(v, b, 0, err);
        if (n < 0) {
            rc = n;
            break;
        }
        bool rewind;
        if (settle_revoked(v, b, &rewind) == 0) {
            if (rewind && (rc = rewind_consumer(v, err)) != KF_OK)
                break;
            continue;
        }
        if (!v->stats->first_record_ms)
            v->stats->first_record_ms = kf_retry_now_ms();
        rc = batch_plain(v, b, err);
        batch_clear(b);
        if (rc != KF_OK)
            break;
    }
    return rc;
}

/* ---- setup ---- */

static int register_metrics(vloop *v, kf_error *err)
{
    kf_metrics *m = v->cfg->metrics;
    if (!m)
        return KF_OK;
    v->m_in = kf_metrics_counter(m, "kfleet_records_in_total", "Records consumed, by topic.", 1,
                                 (const char *[]){"topic"}, err);
    v->m_out =
        kf_metrics_counter(m, "kfleet_records_out_total", "Valid records written, by output topic.",
                           1, (const char *[]){"topic"}, err);
    v->m_dlq = kf_metrics_counter(m, "kfleet_dlq_records_total",
                                  "Records quarantined, by input topic and rule id (kfleet.decode "
                                  "for records that could not be decoded).",
                                  2, (const char *[]){"topic", "rule"}, err);
    kf_histogram *h = kf_metrics_histogram(m, "kfleet_batch_duration_seconds",
                                           "Time from the start of a batch to its commit.", 0, NULL,
                                           NULL, 0, err);
    if (!v->m_in || !v->m_out || !v->m_dlq || !h)
        return err->code;
    v->m_batch = kf_histogram_child(h, 0, NULL, err);
    return v->m_batch ? KF_OK : err->code;
}

static int build_kv(const kf_vloop_config *cfg, const char *const *defaults, size_t nd,
                    const char *const *extra, size_t ne, const char ***out, size_t *nout)
{
    size_t n = nd + cfg->kafka_npairs + ne;
    const char **kv = calloc(2 * n + 2, sizeof(*kv));
    if (!kv)
        return KF_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < 2 * nd; i++)
        kv[k++] = defaults[i];
    for (size_t i = 0; i < 2 * cfg->kafka_npairs; i++)
        kv[k++] = cfg->kafka_kv[i];
    for (size_t i = 0; i < 2 * ne; i++)
        kv[k++] = extra[i];
    *out = kv;
    *nout = n;
    return KF_OK;
}

/* Whether a partition without a committed offset starts at the earliest offset, as
 * librdkafka would: known only with isolation.level=read_committed, where reading committed
 * offsets waits for the transactions still holding some (a pending commit is never mistaken
 * for none). */
static void learn_reset(vloop *v)
{
    const rd_kafka_conf_t *conf = rd_kafka_conf(kf_consumer_handle(v->c));
    char iso[32], reset[32];
    size_t iso_len = sizeof(iso), reset_len = sizeof(reset);
    if (rd_kafka_conf_get(conf, "isolation.level", iso, &iso_len) != RD_KAFKA_CONF_OK ||
        strcmp(iso, "read_committed") != 0 ||
        rd_kafka_conf_get(conf, "auto.offset.reset", reset, &reset_len) != RD_KAFKA_CONF_OK)
        return;
    v->reset_earliest =
        !strcmp(reset, "smallest") || !strcmp(reset, "earliest") || !strcmp(reset, "beginning");
}

/* librdkafka (2.0) starts a partition that has no committed offset only after a 100 ms
 * back-off (the missing offset counts as an error), every time a group is new, and a logical
 * offset given here can wait 500 ms for the partition's leader. So the group's committed
 * offsets are read here, and partitions without one start at their earliest offset, looked
 * up now; the others keep INVALID (their committed offset). Any doubt (an error, a
 * transaction still holding offsets past the short wait) leaves them all to librdkafka. */
static void start_unread(vloop *v, kf_consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    if (!v->reset_earliest || parts->cnt == 0)
        return;
    rd_kafka_t *rk = kf_consumer_handle(c);
    rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_topic_partition_list_t *unread = rd_kafka_topic_partition_list_new(parts->cnt);
    if (!committed || !unread)
        goto out_destroy;
    if (rd_kafka_committed(rk, committed, ASSIGN_LOOKUP_MS) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        committed->cnt != parts->cnt)
        goto out_destroy;
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &committed->elems[i];
        if (tp->err)
            goto out_destroy;
        if (tp->offset == RD_KAFKA_OFFSET_INVALID &&
            parts->elems[i].offset == RD_KAFKA_OFFSET_INVALID)
            rd_kafka_topic_partition_list_add(unread, tp->topic, tp->partition)->offset =
                RD_KAFKA_OFFSET_BEGINNING; /* ListOffsets "earliest" */
    }
    if (unread->cnt == 0 ||
        rd_kafka_offsets_for_times(rk, unread, ASSIGN_LOOKUP_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
        goto out_destroy;
    for (int i = 0; i < unread->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &unread->elems[i];
        if (tp->err || tp->offset < 0)
            continue;
        rd_kafka_topic_partition_t *at =
            rd_kafka_topic_partition_list_find(parts, tp->topic, tp->partition);
        if (at)
            at->offset = tp->offset;
    }

out_destroy:
    if (committed)
        rd_kafka_topic_partition_list_destroy(committed);
    if (unread)
        rd_kafka_topic_partition_list_destroy(unread);
}

/* Notes when the first partitions arrived: the benchmark measures from there, as
 * kafka-consumer-perf-test measures its fetch rate from the end of its group join. */
static int on_assign(void *ctx, kf_consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    vloop *v = ctx;
    if (!v->stats->assigned_ms)
        v->stats->assigned_ms = kf_retry_now_ms();
    for (int i = 0; i < parts->cnt && !v->revoke_all; i++)
        if (rd_kafka_topic_partition_list_find(v->revoked, parts->elems[i].topic,
                                               parts->elems[i].partition))
            v->revoke_all = true; /* taken and given back within one read */
    start_unread(v, c, parts);
    return 0;
}

static void on_revoke(void *ctx, kf_consumer *c, const rd_kafka_topic_partition_list_t *parts,
                      bool lost)
{
    (void)lost;
    vloop *v = ctx;
    if (strcmp(rd_kafka_rebalance_protocol(kf_consumer_handle(c)), "COOPERATIVE") != 0)
        v->revoke_all = true;
    for (int i = 0; i < parts->cnt; i++)
        rd_kafka_topic_partition_list_add(v->revoked, parts->elems[i].topic,
                                          parts->elems[i].partition);
}

static void vloop_free(vloop *v)
{
    committer_stop(&v->cm);
    for (size_t i = 0; i < 2; i++)
        batch_clear(&v->slots[i]);
    kf_txn_destroy(v->t);
    kf_consumer_destroy(v->c);
    kf_dlq_destroy(v->dlq);
    if (v->p) {
        kf_error err;
        kf_producer_flush(v->p, FLUSH_TIMEOUT_MS, &err);
    }
    kf_producer_destroy(v->p);
    kf_admin_destroy(v->admin);
    if (v->rules)
        for (size_t i = 0; i < v->cfg->ncontracts; i++)
            kf_rules_destroy(v->rules[i]);
    free(v->rules);
    kf_event_reader_destroy(v->reader);
    kf_serde_destroy(v->serde);
    free(v->routes);
    free(v->dlq_series);
    for (size_t i = 0; i < 2; i++)
        batch_free(&v->slots[i]);
    if (v->revoked)
        rd_kafka_topic_partition_list_destroy(v->revoked);
}

static int vloop_open(vloop *v, kf_error *err)
{
    const kf_vloop_config *cfg = v->cfg;
    int rc = register_metrics(v, err);
    if (rc != KF_OK)
        return rc;
    for (size_t i = 0; i < 2; i++)
        if (batch_init(&v->slots[i], cfg->batch_size) != KF_OK)
            return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate batches");
    if (!(v->revoked = rd_kafka_topic_partition_list_new(4)))
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate batches");
    if (!(v->serde = kf_serde_new(cfg->registry, err)) ||
        !(v->reader = kf_event_reader_new(v->serde, err)))
        return err->code;
    v->rules = calloc(cfg->ncontracts ? cfg->ncontracts : 1, sizeof(*v->rules));
    if (!v->rules)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate rule state");
    /* with exactly-once two batches are open in the rules: one checked while one commits */
    size_t open_records = cfg->eos ? 2 * cfg->batch_size : cfg->batch_size;
    for (size_t i = 0; i < cfg->ncontracts; i++)
        if (!(v->rules[i] = kf_rules_new(cfg->contracts[i], open_records, err)))
            return err->code;

    const char **kv = NULL;
    size_t n = 0;
    if (build_kv(cfg, NULL, 0, NULL, 0, &kv, &n) != KF_OK)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate client settings");
    v->admin = kf_admin_new(kv, n, err);
    free(kv);
    if (!v->admin)
        return err->code;

    /* A transaction's first AddOffsetsToTxn (JOB_OPEN) is refused (CONCURRENT_TRANSACTIONS)
     * while the coordinator still writes the previous one's markers, a few milliseconds after
     * the commit, and librdkafka retries it after retry.backoff.ms: its default 100 ms put a
     * 100 ms gap after most commits, 10 ms still 5 ms on average after four in ten. A batch's
     * outputs are flushed by its commit anyway; with linger.ms 1 (not 5) they are on their
     * way while the batch is still being written, and the commit waits less. (lz4 made runs
     * a quarter faster, the broker doing less, but its buffers cost this worker 1-2 MB and a
     * consumer of the outputs 10 MB.) */
    const char *pdefaults[] = {"retry.backoff.ms", "2", "linger.ms", "1"};
    const char *pextra[] = {"transactional.id", cfg->transactional_id};
    if (build_kv(cfg, pdefaults, sizeof(pdefaults) / sizeof(pdefaults[0]) / 2, pextra,
                 cfg->eos ? 1 : 0, &kv, &n) != KF_OK)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate client settings");
    kf_producer_options popts = {.max_in_flight = cfg->batch_size * 4 + 1000};
    v->p = kf_producer_new(kv, n, &popts, err);
    free(kv);
    if (!v->p)
        return err->code;
    if (!(v->dlq = kf_dlq_new(v->p, cfg->prefix, cfg->worker, err)))
        return err->code;

    /* Prefetch: librdkafka's defaults (100000 records / 64 MiB queued, 50 MiB fetches) made
     * this worker 90 MB. Queued records cost their share of a fetch buffer plus ~300 bytes of
     * librdkafka bookkeeping each (not counted in queued.max.messages.kbytes), and a fetch
     * buffer lives until its last record is destroyed. The queue holds up to two batches (at
     * least 1000 records) within 2 MiB, with 1 MiB fetches (256 KiB per partition): the next
     * batch is mostly there when the loop takes it (with 1000 records a batch of 5000 waited
     * 10 ms for fetches), and the worker stays under 50 MB with the example contracts' 300000
     * keys of unique windows. librdkafka counts the whole consumer queue against these
     * limits, not each partition. kf_consumer_poll_batch wakes a parked fetcher within a
     * round trip. */
    char prefetch[32];
    size_t want = 2 * cfg->batch_size;
    snprintf(prefetch, sizeof(prefetch), "%zu",
             want < MIN_PREFETCH_RECORDS ? (size_t)MIN_PREFETCH_RECORDS : want);
    const char *cdefaults[] = {"group.id",
                               cfg->group,
                               "enable.auto.commit",
                               "false",
                               "isolation.level",
                               "read_committed",
                               "queued.min.messages",
                               prefetch,
                               "queued.max.messages.kbytes",
                               "2048",
                               "fetch.max.bytes",
                               "1048576",
                               "max.partition.fetch.bytes",
                               "262144"};
    if (build_kv(cfg, cdefaults, sizeof(cdefaults) / sizeof(cdefaults[0]) / 2, NULL, 0, &kv, &n) !=
        KF_OK)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate client settings");
    kf_consumer_options copts = {
        .hooks = {.on_assign = on_assign, .on_revoke = on_revoke, .ctx = v}};
    v->c = kf_consumer_new(kv, n, &copts, err);
    free(kv);
    if (!v->c)
        return err->code;
    learn_reset(v);
    if (cfg->eos) {
        if (!(v->t = kf_txn_new(v->p, v->c, TXN_TIMEOUT_MS, err)))
            return err->code;
        if ((rc = committer_start(&v->cm, v->t, err)) != KF_OK)
            return rc;
    }

    char **derived = NULL;
    size_t nderived = 0;
    const char *const *topics = cfg->topics;
    size_t ntopics = cfg->ntopics;
    if (!ntopics) {
        if ((rc = kf_vloop_contract_topics(cfg->prefix, cfg->contracts, cfg->ncontracts, &derived,
                                           &nderived, err)) != KF_OK)
            return rc;
        topics = (const char *const *)derived;
        ntopics = nderived;
    }
    prepare_routes(v, topics, ntopics);
    rc = kf_consumer_subscribe(v->c, topics, ntopics, err);
    for (size_t i = 0; i < ntopics; i++)
        kf_log(KF_LOG_INFO, "subscribed", "topic", topics[i], (char *)NULL);
    kf_vloop_topics_free(derived, nderived);
    return rc;
}

int kf_vloop_run(const kf_vloop_config *cfg, kf_vloop_stats *stats, kf_error *err)
{
    memset(stats, 0, sizeof(*stats));
    if (cfg->batch_size == 0 || cfg->ncontracts == 0 || !cfg->group ||
        (cfg->eos && (!cfg->transactional_id || !*cfg->transactional_id)))
        return kf_error_set(err, KF_ERR_CONFIG, false,
                            "the worker needs contracts, a batch size, a group and (with "
                            "kfleet.eos) a transactional id");
    /* Memory: fetch buffers (up to fetch.max.bytes) are freed as their last record is; with
     * glibc's dynamic threshold the first such free moves buffers of that size into the heap,
     * where freed ones stay resident: a fixed threshold keeps returning them (4 MB less at
     * peak). And the client threads share one malloc arena instead of one each (1 MB less in
     * the end-to-end run, no slower). */
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
    mallopt(M_ARENA_MAX, MALLOC_ARENAS);
    vloop v = {.cfg = cfg, .stats = stats};
    int rc = vloop_open(&v, err);
    if (rc != KF_OK)
        goto out_close;
    if (cfg->on_ready)
        cfg->on_ready(cfg->ready_ctx, true);
    rc = cfg->eos ? run_eos(&v, err) : run_plain(&v, err);
    for (size_t i = 0; i < 2; i++)
        batch_clear(&v.slots[i]);
    if (cfg->on_ready)
        cfg->on_ready(cfg->ready_ctx, false);
    kf_error cerr;
    if (v.c)
        v.stats->fetch_nudges = kf_consumer_fetch_nudges(v.c);
    if (v.c && kf_consumer_close(v.c, &cerr) != KF_OK && rc == KF_OK)
        kf_log(KF_LOG_WARN, cerr.message, (char *)NULL);
    if (v.p && kf_producer_failed(v.p, &cerr) && rc == KF_OK) {
        *err = cerr;
        rc = KF_ERR_KAFKA;
    }

out_close:
    vloop_free(&v);
    return rc;
}
