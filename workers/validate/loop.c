/* The validate worker's read-process-write loop: one consumed batch becomes one Kafka
 * transaction holding the valid outputs, the DLQ records and the input offsets; rule state is
 * rolled back with an aborted transaction so a retried batch gives the same outputs. */
#include "loop.h"

#include <inttypes.h>
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
#define COMMIT_ATTEMPTS            3
#define MAX_TALLIES                256
#define DEFAULT_COMMIT_INTERVAL_MS 100
#define REGISTRATION_WAIT_MS       1000
#define REGISTRATION_POLL_MS       5

/* Where the records of one input topic go. */
typedef struct route {
    char topic[TOPIC_MAX];
    int contract; /* index, or -1: no contract covers the topic (records pass unchecked) */
    char valid[TOPIC_MAX];
    char dlq[TOPIC_MAX];
    bool keep_partition; /* the outputs have at least the input's partitions */
    kf_counter_series *m_in, *m_valid;
} route;

/* Quarantined records of one rule (or decode reason) into one DLQ topic in this batch. */
typedef struct tally {
    const char *rule; /* borrowed from a contract or a static reason */
    const route *r;
    uint64_t count;
} tally;

typedef struct series_cache {
    char key[TOPIC_MAX + 260];
    kf_counter_series *s;
} series_cache;

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
    tally tallies[MAX_TALLIES];
    size_t ntallies;
    uint64_t b_in, b_valid, b_quarantined, b_undecodable, b_unchecked;
    series_cache *dlq_series;
    size_t ndlq_series;
    kf_counter *m_in, *m_out, *m_dlq;
    kf_histogram_series *m_batch;
    kf_vloop_stats *stats;
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

static route *route_for(vloop *v, const char *topic, kf_error *err)
{
    for (size_t i = 0; i < v->nroutes; i++)
        if (strcmp(v->routes[i].topic, topic) == 0)
            return &v->routes[i];
    if (v->nroutes == v->cap_routes) {
        size_t cap = v->cap_routes ? v->cap_routes * 2 : 8;
        route *grown = realloc(v->routes, cap * sizeof(*grown));
        if (!grown) {
            kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate topic routes");
            return NULL;
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
        return NULL;
    }
    if (ensure_outputs(v, r, err) != KF_OK || prime_producer(v, r, err) != KF_OK)
        return NULL;
    if (v->m_in) {
        r->m_in = kf_counter_child(v->m_in, 1, (const char *[]){topic}, err);
        r->m_valid = kf_counter_child(v->m_out, 1, (const char *[]){r->valid}, err);
        if (!r->m_in || !r->m_valid)
            return NULL;
    }
    kf_log(KF_LOG_INFO, "routing topic", "topic", topic, "valid", r->valid, "dlq", r->dlq,
           "contract",
           r->contract >= 0 ? v->cfg->contracts[r->contract]->name : "(none: passed unchecked)",
           (char *)NULL);
    v->nroutes++;
    return r;
}

/* ---- one record ---- */

static void tally_add(vloop *v, const char *rule, const route *r)
{
    for (size_t i = 0; i < v->ntallies; i++) {
        if (v->tallies[i].r == r && strcmp(v->tallies[i].rule, rule) == 0) {
            v->tallies[i].count++;
            return;
        }
    }
    if (v->ntallies < MAX_TALLIES)
        v->tallies[v->ntallies++] = (tally){rule, r, 1};
    else
        v->tallies[MAX_TALLIES - 1].count++;
}

static bool has_headers(const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *h = NULL;
    return rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h &&
           rd_kafka_header_cnt(h) > 0;
}

/* ts: the record's timestamp (rd_kafka_message_timestamp). */
static int produce_valid(vloop *v, const route *r, const rd_kafka_message_t *m, int64_t ts,
                         kf_error *err)
{
    rd_kafka_headers_t *hdrs = NULL;
    if (has_headers(m) && !(hdrs = kf_headers_copy(m)))
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not copy record headers");
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

static int process(vloop *v, const rd_kafka_message_t *m, kf_error *err)
{
    route *r = route_for(v, rd_kafka_topic_name(m->rkt), err);
    if (!r)
        return err->code;
    v->b_in++;
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    if (r->contract < 0 || !m->payload) {
        if (r->contract < 0)
            v->b_unchecked++;
        v->b_valid++;
        return produce_valid(v, r, m, ts, err);
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
        v->b_undecodable++;
        tally_add(v, reason, r);
        return kf_dlq_send(v->dlq, m, &why, err);
    }
    kf_verdict vd;
    rc = kf_rules_check_event(v->rules[r->contract], &ev, m->key, m->key_len,
                              ts > 0 ? ts : (ev.has_ts_ms ? ev.ts_ms : 0), &vd);
    if (rc != KF_OK)
        return kf_error_set(err, rc, false, "could not check a record of \"%s\" (%s)", r->topic,
                            kf_err_name(rc));
    if (!vd.failed) {
        v->b_valid++;
        return produce_valid(v, r, m, ts, err);
    }
    kf_dlq_reason why = {.stage = "validate",
                         .error_class = "RuleViolation",
                         .message = vd.message,
                         .rule_id = vd.failed->id,
                         .reason = kf_rule_kind_name(vd.failed->kind)};
    v->b_quarantined++;
    tally_add(v, vd.failed->id, r);
    return kf_dlq_send(v->dlq, m, &why, err);
}

/* ---- batch boundaries ---- */

static void batch_reset(vloop *v)
{
    v->ntallies = 0;
    v->b_in = v->b_valid = v->b_quarantined = v->b_undecodable = v->b_unchecked = 0;
    for (size_t i = 0; i < v->cfg->ncontracts; i++)
        kf_rules_begin(v->rules[i]);
}

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

/* The batch is durable: make its counters, metrics and alerts final. */
static void batch_committed(vloop *v, int64_t started_ms)
{
    for (size_t i = 0; i < v->cfg->ncontracts; i++) {
        kf_rules_end_batch(v->rules[i]);
        kf_rules_commit(v->rules[i], on_breach, v);
    }
    kf_vloop_stats *s = v->stats;
    s->records_in += v->b_in;
    s->valid += v->b_valid;
    s->quarantined += v->b_quarantined;
    s->undecodable += v->b_undecodable;
    s->unchecked += v->b_unchecked;
    s->batches++;
    s->last_commit_ms = kf_retry_now_ms();
    for (size_t i = 0; i < v->ntallies; i++) {
        const tally *t = &v->tallies[i];
        if (v->m_dlq) {
            kf_counter_series *cs = dlq_series(v, t->r->topic, t->rule);
            if (cs)
                kf_counter_inc(cs, t->count);
        }
        kf_alert_quarantined(v->cfg->alert, t->rule, t->r->dlq, t->count);
    }
    if (v->m_batch)
        kf_histogram_observe(v->m_batch, (double)(kf_retry_now_ms() - started_ms) / 1000.0);
}

static void batch_rolled_back(vloop *v)
{
    for (size_t i = 0; i < v->cfg->ncontracts; i++)
        kf_rules_rollback(v->rules[i]);
    v->stats->aborts++;
}

/* Dataset time windows close on the clock too, so a quiet stream still reports its breaches. */
static void tick_windows(vloop *v)
{
    int64_t now = kf_retry_now_ms();
    for (size_t i = 0; i < v->cfg->ncontracts; i++)
        kf_rules_tick(v->rules[i], now, on_breach, v);
}

/* Route metrics count per message; they are applied after the commit from the messages. */
static void count_routes(vloop *v, rd_kafka_message_t **msgs, size_t n)
{
    if (!v->m_in)
        return;
    for (size_t i = 0; i < n; i++) {
        const char *topic = rd_kafka_topic_name(msgs[i]->rkt);
        for (size_t j = 0; j < v->nroutes; j++)
            if (strcmp(v->routes[j].topic, topic) == 0)
                kf_counter_inc(v->routes[j].m_in, 1);
    }
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t acked(vloop *v)
{
    kf_producer_stats st;
    kf_producer_stats_get(v->p, &st);
    return st.acked;
}

/* Waits until a record of the open transaction is acknowledged (or none is in flight). Right
 * after a commit the coordinator answers CONCURRENT_TRANSACTIONS until that transaction's
 * markers are written; librdkafka retries the partition registration that a produce needs
 * after 20 ms, but AddOffsetsToTxn only after retry.backoff.ms (100 ms): a stall of 100 ms
 * in about one commit of six in the benchmark. An acknowledged record proves the partitions
 * registered, so the offsets then go through at once. */
static void await_registration(vloop *v, uint64_t acked_before)
{
    int64_t deadline = kf_retry_now_ms() + REGISTRATION_WAIT_MS;
    for (;;) {
        kf_producer_stats st;
        kf_producer_stats_get(v->p, &st);
        if (st.acked > acked_before || st.in_flight == 0 || kf_retry_now_ms() >= deadline)
            return;
        kf_producer_poll(v->p, REGISTRATION_POLL_MS);
    }
}

/* One batch in one transaction. Returns 0 (committed, or aborted and rewound: the records
 * come again) or a fatal error. */
static int batch_eos(vloop *v, rd_kafka_message_t **msgs, size_t n, kf_error *err)
{
    int64_t started = kf_retry_now_ms();
    batch_reset(v);
    uint64_t acked_before = acked(v);
    int rc = kf_txn_begin(v->t, err);
    for (size_t i = 0; i < n && rc == KF_OK; i++)
        rc = process(v, msgs[i], err);
    if (rc == KF_OK) {
        await_registration(v, acked_before);
        rc = kf_txn_send_offsets(v->t, err);
    }
    if (rc == KF_OK) {
        for (int attempt = 0; attempt < COMMIT_ATTEMPTS; attempt++) {
            rc = kf_txn_commit(v->t, err);
            if (rc != KF_ERR_TIMEOUT)
                break;
        }
        if (rc == KF_OK) {
            count_routes(v, msgs, n);
            batch_committed(v, started);
            return KF_OK;
        }
    }
    if (rc == KF_ERR_FATAL)
        return rc;
    kf_log(KF_LOG_WARN, "batch aborted; its records will be processed again", "reason",
           err->message, (char *)NULL);
    kf_error aerr;
    int arc = kf_txn_abort(v->t, &aerr);
    batch_rolled_back(v);
    if (arc == KF_ERR_FATAL) {
        *err = aerr;
        return arc;
    }
    if (rc == KF_ERR_NOMEM || rc == KF_ERR_INVALID)
        return rc;
    sleep_ms(500);
    return KF_OK;
}

/* Fills msgs with the next batch: the first poll waits up to poll_timeout_ms for a record;
 * then records are added as they come until the batch is full, the commit interval since
 * the first one has passed, max_records is reached or a stop is requested. Returns the
 * count, or a negative error (the records taken so far destroyed). */
static int gather(vloop *v, rd_kafka_message_t **msgs, kf_error *err)
{
    const kf_vloop_config *cfg = v->cfg;
    size_t max = cfg->batch_size;
    if (cfg->max_records > 0) {
        uint64_t left = (uint64_t)cfg->max_records - v->stats->records_in;
        if (left < max)
            max = (size_t)left;
    }
    int n = kf_consumer_poll_batch(v->c, msgs, max, cfg->poll_timeout_ms, err);
    if (n <= 0)
        return n;
    int interval =
        cfg->commit_interval_ms > 0 ? cfg->commit_interval_ms : DEFAULT_COMMIT_INTERVAL_MS;
    int64_t deadline = kf_retry_now_ms() + interval;
    while ((size_t)n < max && !kf_signals_stop_requested()) {
        int64_t wait = deadline - kf_retry_now_ms();
        if (wait <= 0)
            break;
        int k = kf_consumer_poll_batch(v->c, msgs + n, max - (size_t)n, (int)wait, err);
        if (k < 0) {
            for (int i = 0; i < n; i++)
                rd_kafka_message_destroy(msgs[i]);
            return k;
        }
        n += k;
    }
    return n;
}

/* At-least-once: produce, flush, then commit the offsets of what was processed. */
static int batch_plain(vloop *v, rd_kafka_message_t **msgs, size_t n, kf_error *err)
{
    int64_t started = kf_retry_now_ms();
    batch_reset(v);
    int rc = KF_OK;
    size_t done = 0;
    for (; done < n && rc == KF_OK; done++)
        rc = process(v, msgs[done], err);
    if (rc != KF_OK)
        done--;
    kf_error ferr;
    if (kf_producer_flush(v->p, FLUSH_TIMEOUT_MS, &ferr) != KF_OK ||
        kf_producer_failed(v->p, &ferr)) {
        *err = ferr;
        return KF_ERR_FATAL;
    }
    for (size_t i = 0; i < done; i++) {
        int src = kf_consumer_store_offset(v->c, msgs[i], &ferr);
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
    count_routes(v, msgs, done);
    batch_committed(v, started);
    if (rc != KF_OK) {
        if (rc == KF_ERR_NOMEM || rc == KF_ERR_INVALID || rc == KF_ERR_FATAL)
            return rc;
        kf_log(KF_LOG_WARN, "batch stopped early; the rest will be processed again", "reason",
               err->message, (char *)NULL);
        if (kf_consumer_rewind(v->c, 10000, &ferr) != KF_OK) {
            *err = ferr;
            return ferr.code;
        }
        sleep_ms(500);
    }
    return KF_OK;
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
                                  "Records quarantined, by input topic and rule id (or decode "
                                  "reason).",
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
    const char **kv = calloc(2 * (n ? n : 1), sizeof(*kv));
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

/* Notes when the first partitions arrived: the benchmark measures from there, as
 * kafka-consumer-perf-test measures its fetch rate from the end of its group join. */
static int on_assign(void *ctx, kf_consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    (void)c;
    (void)parts;
    vloop *v = ctx;
    if (!v->stats->assigned_ms)
        v->stats->assigned_ms = kf_retry_now_ms();
    return 0;
}

static void vloop_free(vloop *v)
{
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
}

static int vloop_open(vloop *v, kf_error *err)
{
    const kf_vloop_config *cfg = v->cfg;
    int rc = register_metrics(v, err);
    if (rc != KF_OK)
        return rc;
    if (!(v->serde = kf_serde_new(cfg->registry, err)) ||
        !(v->reader = kf_event_reader_new(v->serde, err)))
        return err->code;
    v->rules = calloc(cfg->ncontracts ? cfg->ncontracts : 1, sizeof(*v->rules));
    if (!v->rules)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate rule state");
    for (size_t i = 0; i < cfg->ncontracts; i++)
        if (!(v->rules[i] = kf_rules_new(cfg->contracts[i], cfg->batch_size, err)))
            return err->code;

    const char **kv = NULL;
    size_t n = 0;
    if (build_kv(cfg, NULL, 0, NULL, 0, &kv, &n) != KF_OK)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate client settings");
    v->admin = kf_admin_new(kv, n, err);
    free(kv);
    if (!v->admin)
        return err->code;

    /* A transaction's first AddPartitionsToTxn is refused (CONCURRENT_TRANSACTIONS) while the
     * coordinator still writes the previous one's markers, and librdkafka retries it after
     * retry.backoff.ms: its default 100 ms put a 100 ms gap after every commit. */
    const char *pdefaults[] = {"retry.backoff.ms", "10"};
    const char *pextra[] = {"transactional.id", cfg->transactional_id};
    if (build_kv(cfg, pdefaults, 1, pextra, cfg->eos ? 1 : 0, &kv, &n) != KF_OK)
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
     * buffer lives until its last record is destroyed; 1000 records per partition / 2 MiB
     * queued and 1 MiB fetches (256 KiB per partition) keep the worker under 50 MB with the example
     * contracts' 300000 keys of unique windows. kf_consumer_poll_batch wakes a parked fetcher
     * within a round trip, so a queue of a few hundredths of a second of work does not starve the
     * loop. */
    const char *cdefaults[] = {"group.id",
                               cfg->group,
                               "enable.auto.commit",
                               "false",
                               "isolation.level",
                               "read_committed",
                               "queued.min.messages",
                               "1000",
                               "queued.max.messages.kbytes",
                               "2048",
                               "fetch.max.bytes",
                               "1048576",
                               "max.partition.fetch.bytes",
                               "262144"};
    if (build_kv(cfg, cdefaults, sizeof(cdefaults) / sizeof(cdefaults[0]) / 2, NULL, 0, &kv, &n) !=
        KF_OK)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate client settings");
    kf_consumer_options copts = {.hooks = {.on_assign = on_assign, .ctx = v}};
    v->c = kf_consumer_new(kv, n, &copts, err);
    free(kv);
    if (!v->c)
        return err->code;
    if (cfg->eos && !(v->t = kf_txn_new(v->p, v->c, TXN_TIMEOUT_MS, err)))
        return err->code;

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
    vloop v = {.cfg = cfg, .stats = stats};
    rd_kafka_message_t **msgs = calloc(cfg->batch_size, sizeof(*msgs));
    int rc = msgs ? vloop_open(&v, err)
                  : kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate batch");
    if (rc != KF_OK)
        goto out_close;
    if (cfg->on_ready)
        cfg->on_ready(cfg->ready_ctx, true);
    while (!kf_signals_stop_requested()) {
        if (cfg->max_records > 0 && stats->records_in >= (uint64_t)cfg->max_records)
            break;
        tick_windows(&v);
        int n = gather(&v, msgs, err);
        if (n < 0) {
            rc = n;
            break;
        }
        if (n == 0)
            continue;
        if (!stats->first_record_ms)
            stats->first_record_ms = kf_retry_now_ms();
        rc = cfg->eos ? batch_eos(&v, msgs, (size_t)n, err) : batch_plain(&v, msgs, (size_t)n, err);
        for (int i = 0; i < n; i++)
            rd_kafka_message_destroy(msgs[i]);
        if (rc != KF_OK)
            break;
    }
    if (cfg->on_ready)
        cfg->on_ready(cfg->ready_ctx, false);
    kf_error cerr;
    if (v.c && kf_consumer_close(v.c, &cerr) != KF_OK && rc == KF_OK)
        kf_log(KF_LOG_WARN, cerr.message, (char *)NULL);
    if (v.p && kf_producer_failed(v.p, &cerr) && rc == KF_OK) {
        *err = cerr;
        rc = KF_ERR_KAFKA;
    }

out_close:
    vloop_free(&v);
    free(msgs);
    return rc;
}
