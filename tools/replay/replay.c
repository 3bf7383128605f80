/* The replay loop: one consumed batch of DLQ records is one Kafka transaction holding the
 * re-produced (or parked) records and the replay group's offsets, so every selected record
 * reaches its target exactly once even when the tool is interrupted and run again. */
#include "replay.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "kfleet/dlq.h"
#include "kfleet/kafka.h"
#include "kfleet/log.h"
#include "kfleet/retry.h"
#include "kfleet/signals.h"
#include "materialize.h"

#define BATCH            500
#define POLL_MS          200
#define PROGRESS_MS      5000
#define ASSIGN_WAIT_MS   60000
#define TXN_TIMEOUT_MS   60000
#define TOPIC_MAX        250
#define ADMIN_TIMEOUT_MS 30000

int kf_replay_parse_range(const char *s, kf_replay_range *out)
{
    char *end;
    out->partition = -1;
    const char *colon = strchr(s, ':');
    errno = 0;
    if (colon) {
        long p = strtol(s, &end, 10);
        if (end != colon || p < 0 || p > INT32_MAX || errno)
            return KF_ERR_INVALID;
        out->partition = (int32_t)p;
        s = colon + 1;
    }
    long long first = strtoll(s, &end, 10);
    if (end == s || first < 0 || errno)
        return KF_ERR_INVALID;
    out->first = first;
    out->last = first;
    if (*end == '\0')
        return KF_OK;
    if (*end != '-')
        return KF_ERR_INVALID;
    s = end + 1;
    if (*s == '\0') {
        out->last = -1;
        return KF_OK;
    }
    long long last = strtoll(s, &end, 10);
    if (*end || last < first || errno)
        return KF_ERR_INVALID;
    out->last = last;
    return KF_OK;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* Reads exactly n digits into *out. */
static bool num(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + (*p)[i] - '0';
    }
    *p += n;
    *out = v;
    return true;
}

int kf_replay_parse_time(const char *s, int64_t *ms)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s && !*end && !errno && v >= 0) {
        *ms = v;
        return KF_OK;
    }
    const char *p = s;
    int y, mo, d, hh = 0, mi = 0, ss = 0;
    if (!num(&p, 4, &y) || *p++ != '-' || !num(&p, 2, &mo) || *p++ != '-' || !num(&p, 2, &d) ||
        mo < 1 || mo > 12 || d < 1 || d > 31)
        return KF_ERR_INVALID;
    int64_t t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400000;
    if (*p == 'T' || *p == ' ') {
        p++;
        if (!num(&p, 2, &hh) || *p++ != ':' || !num(&p, 2, &mi) || hh > 23 || mi > 59)
            return KF_ERR_INVALID;
        if (*p == ':') {
            p++;
            if (!num(&p, 2, &ss) || ss > 60)
                return KF_ERR_INVALID;
            if (*p == '.') {
                int scale = 100;
                for (p++; isdigit((unsigned char)*p); p++, scale /= 10)
                    t += (*p - '0') * scale;
            }
        }
        t += (int64_t)hh * 3600000 + (int64_t)mi * 60000 + (int64_t)ss * 1000;
        if (*p == 'Z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
            if (!num(&p, 2, &oh))
                return KF_ERR_INVALID;
            if (*p == ':')
                p++;
            if (*p && !num(&p, 2, &om))
                return KF_ERR_INVALID;
            t -= sign * ((int64_t)oh * 3600000 + (int64_t)om * 60000);
        }
    }
    if (*p)
        return KF_ERR_INVALID;
    *ms = t;
    return KF_OK;
}

/* Where the replay of one partition ends: the end it had when first assigned (its last stable
 * offset, as the consumer reads committed records only), and where the group starts it. */
typedef struct part_end {
    char topic[TOPIC_MAX];
    int32_t partition;
    int64_t low, end;
    int64_t start; /* -1 until known */
} part_end;

typedef struct replay {
    const kf_replay_options *o;
    FILE *out;
    kf_replay_stats *st;
    kf_producer *p;
    kf_consumer *c;
    kf_txn *t;
    kf_admin *admin;
    kf_quarantine *q;
    char (*parked)[TOPIC_MAX + 8]; /* parking topics known to exist */
    size_t nparked;
    /* per-batch counts, applied after the commit */
    kf_replay_stats b;
    kf_replay_topics b_targets, b_origins;
    part_end *ends;
    size_t nends, cap_ends;
    kf_error end_err; /* a failure inside the assignment hook */
    bool end_failed;
    bool start_at_end; /* auto.offset.reset is latest: a partition without offsets starts at its end
                        */
} replay;

static bool selected(const kf_replay_options *o, const rd_kafka_message_t *m,
                     const kf_dlq_info *info)
{
    if (o->nrules) {
        bool hit = false;
        for (size_t i = 0; i < o->nrules && !hit; i++)
            hit = strcmp(o->rules[i], info->rule_id) == 0;
        if (!hit)
            return false;
    }
    if (o->nreasons) {
        bool hit = false;
        for (size_t i = 0; i < o->nreasons && !hit; i++)
            hit = strstr(info->reason, o->reasons[i]) != NULL;
        if (!hit)
            return false;
    }
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    if ((o->has_since && ts < o->since_ms) || (o->has_until && ts >= o->until_ms))
        return false;
    if (o->nranges) {
        bool hit = false;
        for (size_t i = 0; i < o->nranges && !hit; i++) {
            const kf_replay_range *r = &o->ranges[i];
            hit = (r->partition < 0 || r->partition == m->partition) && m->offset >= r->first &&
                  (r->last < 0 || m->offset <= r->last);
        }
        if (!hit)
            return false;
    }
    return true;
}

/* Creates the parking topic (with the partitions of the DLQ topic) the first time a record
 * is parked there, so parking works where the brokers do not create topics on first use. */
static int ensure_parking(replay *r, const char *parking, const char *dlq_topic, kf_error *err)
{
    for (size_t i = 0; i < r->nparked; i++)
        if (strcmp(r->parked[i], parking) == 0)
            return KF_OK;
    kf_topic_info dlq;
    int rc = kf_admin_describe_topic(r->admin, dlq_topic, &dlq, ADMIN_TIMEOUT_MS, err);
    if (rc != KF_OK)
        return rc;
    kf_topic_spec spec = {.name = parking, .partitions = dlq.partitions, .replication_factor = -1};
    if ((rc = kf_admin_create_topics(r->admin, &spec, 1, true, ADMIN_TIMEOUT_MS, err)) != KF_OK)
        return rc;
    char(*grown)[TOPIC_MAX + 8] = realloc(r->parked, (r->nparked + 1) * sizeof(*grown));
    if (!grown)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate parking topics");
    r->parked = grown;
    snprintf(r->parked[r->nparked++], sizeof(r->parked[0]), "%s", parking);
    kf_log(KF_LOG_INFO, "parking records over the replay limit", "topic", parking, (char *)NULL);
    return KF_OK;
}

static void topics_add(kf_replay_topics *ts, const char *name, bool parking, uint64_t n)
{
    for (size_t i = 0; i < ts->n; i++) {
        if (strcmp(ts->t[i].name, name) == 0) {
            ts->t[i].records += n;
            return;
        }
    }
    if (ts->n == KF_REPLAY_MAX_TOPICS) {
        ts->other += n;
        return;
    }
    kf_replay_topic *t = &ts->t[ts->n++];
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->parking = parking;
    t->records = n;
}

static void topics_merge(kf_replay_topics *into, kf_replay_topics *from)
{
    for (size_t i = 0; i < from->n; i++)
        topics_add(into, from->t[i].name, from->t[i].parking, from->t[i].records);
    into->other += from->other;
    memset(from, 0, sizeof(*from));
}

static int one(replay *r, const rd_kafka_message_t *m, kf_error *err)
{
    const kf_replay_options *o = r->o;
    const char *dlq_topic = rd_kafka_topic_name(m->rkt);
    kf_dlq_info info;
    kf_dlq_info_get(m, &info);
    r->b.read++;
    if (!selected(o, m, &info)) {
        r->b.skipped++;
        return KF_OK;
    }
    if (o->materialize) {
        r->b.materialized++;
        return o->dry_run ? KF_OK : kf_quarantine_add(r->q, m, err);
    }
    char parking[TOPIC_MAX + 8];
    const char *target = o->to ? o->to : info.topic;
    bool park = info.replay_count >= o->max_replays;
    if (park) {
        if (o->parking_topic)
            snprintf(parking, sizeof(parking), "%s", o->parking_topic);
        else
            snprintf(parking, sizeof(parking), "%s.parked", dlq_topic);
        target = parking;
    } else if (!target[0]) {
        r->b.no_origin++;
        r->b.skipped++;
        kf_log(KF_LOG_WARN, "record has no origin topic header; give --to to replay it", "topic",
               dlq_topic, (char *)NULL);
        return KF_OK;
    }
    if (o->dry_run) {
        fprintf(r->out,
                "%s [%" PRId32 "] @%" PRId64 " rule=%s reason=%s replays=%" PRId64 " -> %s %s\n",
                dlq_topic, m->partition, m->offset, info.rule_id[0] ? info.rule_id : "-",
                info.reason[0] ? info.reason : "-", info.replay_count, park ? "park" : "replay",
                target);
    } else {
        if (park) {
            int prc = ensure_parking(r, target, dlq_topic, err);
            if (prc != KF_OK)
                return prc;
        }
        rd_kafka_headers_t *hdrs =
            park ? kf_headers_copy(m) : kf_dlq_replay_headers(m, info.replay_count + 1);
        if (!hdrs)
            return kf_error_set(err, KF_ERR_NOMEM, false, "could not build record headers");
        rd_kafka_timestamp_type_t tt;
        int64_t ts = rd_kafka_message_timestamp(m, &tt);
        kf_produce_msg msg = {.topic = target,
                              .partition = park || o->to || info.partition < 0
                                               ? RD_KAFKA_PARTITION_UA
                                               : info.partition,
                              .key = m->key,
                              .key_len = m->key_len,
                              .value = m->payload,
                              .value_len = m->len,
                              .headers = hdrs,
                              .timestamp_ms = ts > 0 ? ts : 0};
        int rc = kf_producer_produce(r->p, &msg, NULL, err);
        if (rc != KF_OK)
            return rc;
    }
    if (park)
        r->b.parked++;
    else
        r->b.replayed++;
    topics_add(&r->b_targets, target, park, 1);
    if (info.topic[0])
        topics_add(&r->b_origins, info.topic, false, 1);
    return KF_OK;
}

static void apply(replay *r)
{
    r->st->read += r->b.read;
    r->st->replayed += r->b.replayed;
    r->st->parked += r->b.parked;
    r->st->skipped += r->b.skipped;
    r->st->materialized += r->b.materialized;
    r->st->no_origin += r->b.no_origin;
    memset(&r->b, 0, sizeof(r->b));
    topics_merge(&r->st->targets, &r->b_targets);
    topics_merge(&r->st->origins, &r->b_origins);
}

/* One batch: produced in a transaction with the offsets, or inserted in one database
 * transaction followed by an offset commit, or only listed (dry run). */
static int batch(replay *r, rd_kafka_message_t **msgs, size_t n, kf_error *err)
{
    memset(&r->b, 0, sizeof(r->b));
    memset(&r->b_targets, 0, sizeof(r->b_targets));
    memset(&r->b_origins, 0, sizeof(r->b_origins));
    int rc = KF_OK;
    if (r->o->dry_run) {
        for (size_t i = 0; i < n && rc == KF_OK; i++)
            rc = one(r, msgs[i], err);
        apply(r);
        return rc;
    }
    if (r->q) {
        rc = kf_quarantine_begin(r->q, err);
        for (size_t i = 0; i < n && rc == KF_OK; i++)
            rc = one(r, msgs[i], err);
        if (rc == KF_OK)
            rc = kf_quarantine_commit(r->q, err);
        if (rc != KF_OK) {
            kf_quarantine_rollback(r->q);
            return rc;
        }
        for (size_t i = 0; i < n && rc == KF_OK; i++)
            rc = kf_consumer_store_offset(r->c, msgs[i], err);
        if (rc == KF_OK)
            rc = kf_consumer_commit(r->c, false, err);
        if (rc == KF_OK)
            apply(r);
        return rc;
    }
    rc = kf_txn_begin(r->t, err);
    for (size_t i = 0; i < n && rc == KF_OK; i++)
        rc = one(r, msgs[i], err);
    if (rc == KF_OK)
        rc = kf_txn_send_offsets(r->t, err);
    if (rc == KF_OK)
        rc = kf_txn_commit(r->t, err);
    if (rc == KF_OK) {
        apply(r);
        return KF_OK;
    }
    if (rc == KF_ERR_FATAL)
        return rc;
    kf_error aerr;
    if (kf_txn_abort(r->t, &aerr) == KF_ERR_FATAL) {
        *err = aerr;
        return KF_ERR_FATAL;
    }
    kf_log(KF_LOG_WARN, "replay batch aborted; it will be retried", "reason", err->message,
           (char *)NULL);
    return err->retriable ? KF_OK : rc;
}

/* Logs the counts so far; remaining is the records left to the ends (negative: not known). */
static void progress(const replay *r, const char *what, int64_t remaining)
{
    char f[6][24];
    snprintf(f[5], 24, "%" PRId64, remaining);
    snprintf(f[0], 24, "%" PRIu64, r->st->read);
    snprintf(f[1], 24, "%" PRIu64, r->st->replayed);
    snprintf(f[2], 24, "%" PRIu64, r->st->parked);
    snprintf(f[3], 24, "%" PRIu64, r->st->skipped);
    snprintf(f[4], 24, "%" PRIu64, r->st->materialized);
    kf_log(KF_LOG_INFO, what, "read", f[0], "replayed", f[1], "parked", f[2], "skipped", f[3],
           "materialized", f[4], remaining >= 0 ? "remaining" : (char *)NULL, f[5], (char *)NULL);
}

static part_end *find_end(replay *r, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < r->nends; i++)
        if (r->ends[i].partition == partition && strcmp(r->ends[i].topic, topic) == 0)
            return &r->ends[i];
    return NULL;
}

/* Partitions arrive: remember the end each one has now; the replay stops there. A partition
 * assigned again after a rebalance keeps the end it had the first time. */
static int on_assign(void *ctx, kf_consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    replay *r = ctx;
    rd_kafka_t *rk = kf_consumer_handle(c);
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        if (find_end(r, tp->topic, tp->partition))
            continue;
        int64_t low = 0, high = 0;
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(rk, tp->topic, tp->partition, &low, &high, 10000);
        if (e) {
            if (!r->end_failed)
                kf_error_set(&r->end_err, KF_ERR_KAFKA, true,
                             "could not read the end offsets of \"%s\" [%" PRId32 "]: %s",
                             tp->topic, tp->partition, rd_kafka_err2str(e));
            r->end_failed = true;
            return -1;
        }
        if (r->nends == r->cap_ends) {
            size_t cap = r->cap_ends ? r->cap_ends * 2 : 16;
            part_end *grown = realloc(r->ends, cap * sizeof(*grown));
            if (!grown) {
                kf_error_set(&r->end_err, KF_ERR_NOMEM, false, "could not allocate partition ends");
                r->end_failed = true;
                return -1;
            }
            r->ends = grown;
            r->cap_ends = cap;
        }
        part_end *pe = &r->ends[r->nends++];
        snprintf(pe->topic, sizeof(pe->topic), "%s", tp->topic);
        pe->partition = tp->partition;
        pe->low = low;
        pe->end = high;
        pe->start = -1;
    }
    return 0;
}

/* Where the group starts reading a partition it has not read from yet in this run: its
 * committed offset, else the reset position. */
static int start_offset(replay *r, part_end *pe, kf_error *err)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    if (!l)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate partition list");
    rd_kafka_topic_partition_list_add(l, pe->topic, pe->partition);
    rd_kafka_resp_err_t e = rd_kafka_committed(kf_consumer_handle(r->c), l, 10000);
    int64_t committed = l->elems[0].offset;
    if (!e)
        e = l->elems[0].err;
    rd_kafka_topic_partition_list_destroy(l);
    if (e)
        return kf_error_set(err, KF_ERR_KAFKA, true,
                            "could not read the committed offset of \"%s\" [%" PRId32 "]: %s",
                            pe->topic, pe->partition, rd_kafka_err2str(e));
    pe->start = committed >= 0 ? committed : r->start_at_end ? pe->end : pe->low;
    return KF_OK;
}

/* Whether every assigned partition was read up to its end; *remaining gets the records
 * (offsets) still to read. False while nothing is assigned. */
static int drained(replay *r, bool *done, int64_t *remaining, kf_error *err)
{
    *done = false;
    *remaining = 0;
    rd_kafka_topic_partition_list_t *l = NULL;
    int rc = kf_consumer_assignment(r->c, &l, err);
    if (rc != KF_OK)
        return rc;
    if (l->cnt == 0) {
        rd_kafka_topic_partition_list_destroy(l);
        return KF_OK;
    }
    rd_kafka_position(kf_consumer_handle(r->c), l);
    bool all = true;
    for (int i = 0; i < l->cnt && rc == KF_OK; i++) {
        part_end *pe = find_end(r, l->elems[i].topic, l->elems[i].partition);
        if (!pe) {
            all = false;
            continue;
        }
        int64_t pos = l->elems[i].offset;
        if (pos < 0) {
            if (pe->start < 0 && (rc = start_offset(r, pe, err)) != KF_OK)
                break;
            pos = pe->start;
        }
        if (pos < pe->end) {
            all = false;
            *remaining += pe->end - pos;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    *done = all && rc == KF_OK;
    return rc;
}

static int open_clients(replay *r, kf_error *err)
{
    const kf_replay_options *o = r->o;
    size_t n = o->kafka_npairs + 4;
    const char **kv = calloc(2 * n, sizeof(*kv));
    if (!kv)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate client settings");
    size_t k = 0;
    kv[k++] = "group.id";
    kv[k++] = o->group;
    kv[k++] = "enable.auto.commit";
    kv[k++] = "false";
    for (size_t i = 0; i < 2 * o->kafka_npairs; i++)
        kv[k++] = o->kafka_kv[i];
    kf_consumer_options copts = {.hooks = {.on_assign = on_assign, .ctx = r}};
    r->c = kf_consumer_new(kv, k / 2, &copts, err);
    int rc = r->c ? KF_OK : err->code;
    if (rc == KF_OK && !o->dry_run && !o->materialize) {
        k = 0;
        for (size_t i = 0; i < 2 * o->kafka_npairs; i++)
            kv[k++] = o->kafka_kv[i];
        kv[k++] = "transactional.id";
        kv[k++] = o->transactional_id;
        r->p = kf_producer_new(kv, k / 2, NULL, err);
        if (!r->p || !(r->t = kf_txn_new(r->p, r->c, TXN_TIMEOUT_MS, err)) ||
            !(r->admin = kf_admin_new(o->kafka_kv, o->kafka_npairs, err)))
            rc = err->code;
    }
    free(kv);
    if (rc == KF_OK && o->materialize && !o->dry_run &&
        !(r->q = kf_quarantine_open(o->pg_keys, o->pg_values, o->registry, err)))
        rc = err->code;
    if (rc == KF_OK)
        rc = kf_consumer_subscribe(r->c, o->topics, o->ntopics, err);
    return rc;
}

static bool reset_to_end(const kf_replay_options *o)
{
    const char *policy = NULL;
    for (size_t i = 0; i < o->kafka_npairs; i++)
        if (strcmp(o->kafka_kv[2 * i], "auto.offset.reset") == 0)
            policy = o->kafka_kv[2 * i + 1];
    return policy && (strcmp(policy, "latest") == 0 || strcmp(policy, "end") == 0 ||
                      strcmp(policy, "largest") == 0);
}

int kf_replay_run(const kf_replay_options *o, FILE *out, kf_replay_stats *stats, kf_error *err)
{
    memset(stats, 0, sizeof(*stats));
    replay r = {.o = o, .out = out, .st = stats, .start_at_end = reset_to_end(o)};
    rd_kafka_message_t *msgs[BATCH];
    int rc = open_clients(&r, err);
    int64_t start = kf_retry_now_ms(), last_progress = start, remaining = 0;
    bool was_assigned = false;
    while (rc == KF_OK && !kf_signals_stop_requested()) {
        int n = kf_consumer_poll_batch(r.c, msgs, BATCH, POLL_MS, err);
        if (n < 0) {
            rc = n;
            break;
        }
        if (r.end_failed) {
            *err = r.end_err;
            rc = err->code;
            for (int i = 0; i < n; i++)
                rd_kafka_message_destroy(msgs[i]);
            break;
        }
        if (n > 0) {
            rc = batch(&r, msgs, (size_t)n, err);
            for (int i = 0; i < n; i++)
                rd_kafka_message_destroy(msgs[i]);
            if (rc != KF_OK)
                break;
        }
        int64_t now = kf_retry_now_ms();
        bool done = false;
        if (!o->follow) {
            if ((rc = drained(&r, &done, &remaining, err)) != KF_OK)
                break;
            was_assigned = was_assigned || r.nends > 0;
            if (done)
                break;
            if (!was_assigned && now - start > ASSIGN_WAIT_MS) {
                rc = kf_error_set(err, KF_ERR_TIMEOUT, true,
                                  "no partition of the dead-letter topics was assigned within "
                                  "%d s; do the topics exist?",
                                  ASSIGN_WAIT_MS / 1000);
                break;
            }
        }
        if (now - last_progress >= PROGRESS_MS) {
            progress(&r, "replay progress", o->follow ? -1 : remaining);
            last_progress = now;
        }
    }
    kf_error cerr;
    if (r.c && kf_consumer_close(r.c, &cerr) != KF_OK)
        kf_log(KF_LOG_WARN, cerr.message, (char *)NULL);
    kf_txn_destroy(r.t);
    kf_consumer_destroy(r.c);
    if (r.p && kf_producer_flush(r.p, 30000, &cerr) != KF_OK && rc == KF_OK) {
        *err = cerr;
        rc = cerr.code;
    }
    kf_producer_destroy(r.p);
    kf_admin_destroy(r.admin);
    free(r.parked);
    if (r.q)
        stats->inserted = kf_quarantine_inserted(r.q);
    kf_quarantine_close(r.q);
    free(r.ends);
    if (rc == KF_OK) {
        progress(&r, "replay finished", -1);
        if (o->materialize)
            fprintf(out,
                    "%s: read %" PRIu64 ", materialized %" PRIu64 " (%" PRIu64
                    " new rows), skipped %" PRIu64 " (filters)\n",
                    o->dry_run ? "dry run" : "done", stats->read, stats->materialized,
                    stats->inserted, stats->skipped);
        else
            fprintf(out,
                    "%s: read %" PRIu64 ", replayed %" PRIu64 ", parked %" PRIu64
                    ", skipped %" PRIu64 " (filters%s)\n",
                    o->dry_run ? "dry run" : "done", stats->read, stats->replayed, stats->parked,
                    stats->skipped, stats->no_origin ? ", or no origin topic" : "");
    }
    return rc;
}

static json_t *topics_json(const kf_replay_topics *ts, bool with_parking)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < ts->n; i++) {
        json_t *t = json_pack("{s:s, s:I}", "topic", ts->t[i].name, "records",
                              (json_int_t)ts->t[i].records);
        if (t && with_parking)
            json_object_set_new(t, "parking", json_boolean(ts->t[i].parking));
        json_array_append_new(a, t);
    }
    return a;
}

static json_t *strings_json(const char *const *s, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(s[i]));
    return a;
}

void kf_replay_audit(kf_audit *audit, const kf_replay_options *o, const kf_replay_stats *st, int rc,
                     const kf_error *err)
{
    if (!audit)
        return;
    json_t *offsets = json_array();
    for (size_t i = 0; offsets && i < o->nranges; i++) {
        const kf_replay_range *rg = &o->ranges[i];
        char text[80];
        if (rg->last < 0)
            snprintf(text, sizeof(text), "%" PRId64 "-", rg->first);
        else
            snprintf(text, sizeof(text), "%" PRId64 "-%" PRId64, rg->first, rg->last);
        char full[100];
        if (rg->partition >= 0)
            snprintf(full, sizeof(full), "%" PRId32 ":%s", rg->partition, text);
        else
            snprintf(full, sizeof(full), "%s", text);
        json_array_append_new(offsets, json_string(full));
    }
    json_t *filters =
        json_pack("{s:o*, s:o*, s:o*}", "rules", strings_json(o->rules, o->nrules), "reasons",
                  strings_json(o->reasons, o->nreasons), "offsets", offsets);
    if (filters && o->has_since)
        json_object_set_new(filters, "since_ms", json_integer(o->since_ms));
    if (filters && o->has_until)
        json_object_set_new(filters, "until_ms", json_integer(o->until_ms));
    json_t *d = json_pack("{s:s, s:s, s:o*, s:o*, s:I, s:I, s:I, s:I, s:I, s:i}", "mode",
                          o->materialize ? "materialize" : "replay", "group", o->group,
                          "dlq_topics", strings_json(o->topics, o->ntopics), "filters", filters,
                          "read", (json_int_t)st->read, "replayed", (json_int_t)st->replayed,
                          "parked", (json_int_t)st->parked, "skipped", (json_int_t)st->skipped,
                          "no_origin", (json_int_t)st->no_origin, "exit_code",
                          rc == KF_OK           ? 0
                          : rc == KF_ERR_CONFIG ? 2
                                                : 1);
    if (d && o->materialize) {
        json_object_set_new(d, "materialized", json_integer((json_int_t)st->materialized));
        json_object_set_new(d, "inserted", json_integer((json_int_t)st->inserted));
    } else if (d) {
        json_object_set_new(d, "targets", topics_json(&st->targets, true));
        json_object_set_new(d, "origins", topics_json(&st->origins, false));
        if (st->targets.other)
            json_object_set_new(d, "other_target_records",
                                json_integer((json_int_t)st->targets.other));
        if (st->origins.other)
            json_object_set_new(d, "other_origin_records",
                                json_integer((json_int_t)st->origins.other));
        json_object_set_new(d, "max_replays", json_integer(o->max_replays));
        if (o->to)
            json_object_set_new(d, "to", json_string(o->to));
    }
    char *details = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(d);
    char what[200], message[1200];
    if (o->materialize)
        snprintf(what, sizeof(what), "materialized %" PRIu64 " (%" PRIu64 " new rows)",
                 st->materialized, st->inserted);
    else
        snprintf(what, sizeof(what), "replayed %" PRIu64 ", parked %" PRIu64, st->replayed,
                 st->parked);
    char from[300];
    if (o->ntopics == 1)
        snprintf(from, sizeof(from), "%s", o->topics[0]);
    else
        snprintf(from, sizeof(from), "%zu dead-letter topics", o->ntopics);
    if (rc == KF_OK)
        snprintf(message, sizeof(message),
                 "kfleet-replay %s, skipped %" PRIu64 " of %" PRIu64 " records read from %s", what,
                 st->skipped, st->read, from);
    else
        snprintf(message, sizeof(message), "kfleet-replay failed after it %s from %s: %s", what,
                 from, err->message);
    kf_audit_event ev = {
        .action = "replay",
        .level = rc == KF_OK ? KF_AUDIT_INFO : KF_AUDIT_ERROR,
        .message = message,
        .topic = o->ntopics == 1 ? o->topics[0] : NULL,
        .has_count = true,
        .count = (int64_t)(o->materialize ? st->materialized : st->replayed + st->parked),
        .details = details};
    kf_audit_emit(audit, &ev);
    free(details);
}
