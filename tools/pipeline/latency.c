/* End-to-end latency: each valid record's Kafka timestamp (the time the simulator produced
 * the event; validate keeps it) joined with the first sample of the sink's sync_markers that
 * shows the record's partition committed past it; per stage, each input record's timestamp
 * joined with the first sample of the input topic's end offset (appended) and of the validate
 * group's committed offset (validated) past it. The samples are taken every few ms, so a
 * latency is an upper bound by at most the sampling interval (plus the sample's round trip). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

typedef struct sample {
    int64_t t_ms;
    int64_t next;
} sample;

typedef struct series {
    char topic[300];
    int partition;
    sample *s;
    size_t n, cap;
} series;

typedef struct lat_ctx {
    series *sr;
    size_t nsr;
    double *lat;   /* latency per sampled record */
    int64_t *when; /* its sample time */
    int64_t *ts;   /* its Kafka timestamp */
    size_t n, cap;
    uint64_t uncommitted;
    int64_t first_ts;
} lat_ctx;

static series *find_series(lat_ctx *c, const char *topic, int partition)
{
    for (size_t i = 0; i < c->nsr; i++)
        if (c->sr[i].partition == partition && strcmp(c->sr[i].topic, topic) == 0)
            return &c->sr[i];
    return NULL;
}

static int load_samples(lat_ctx *c, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return KF_ERR_IO;
    char topic[300];
    int64_t t, next;
    int partition;
    int rc = KF_OK;
    while (rc == KF_OK &&
           fscanf(f, "%" SCNd64 " %299s %d %" SCNd64, &t, topic, &partition, &next) == 4) {
        series *s = find_series(c, topic, partition);
        if (!s) {
            series *grown = realloc(c->sr, (c->nsr + 1) * sizeof(*grown));
            if (!grown) {
                rc = KF_ERR_NOMEM;
                break;
            }
            c->sr = grown;
            s = &c->sr[c->nsr++];
            memset(s, 0, sizeof(*s));
            memcpy(s->topic, topic, sizeof(s->topic));
            s->partition = partition;
        }
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 256;
            sample *grown = realloc(s->s, cap * sizeof(*grown));
            if (!grown) {
                rc = KF_ERR_NOMEM;
                break;
            }
            s->s = grown;
            s->cap = cap;
        }
        s->s[s->n++] = (sample){t, next};
    }
    fclose(f);
    return rc;
}

static void lat_ctx_free(lat_ctx *c)
{
    for (size_t i = 0; i < c->nsr; i++)
        free(c->sr[i].s);
    free(c->sr);
    free(c->lat);
    free(c->when);
    free(c->ts);
}

static int on_record(void *ctx, const rd_kafka_message_t *m, kf_error *err)
{
    lat_ctx *c = ctx;
    if (!m->payload) /* tombstones follow deletes; they are not events */
        return KF_OK;
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    series *s = find_series(c, rd_kafka_topic_name(m->rkt), m->partition);
    /* the first sample past the record: the offsets only grow, so binary search */
    size_t lo = 0, hi = s ? s->n : 0;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->s[mid].next > m->offset)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (!s || lo == s->n || ts <= 0) {
        c->uncommitted++;
        return KF_OK;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4096;
        double *l = realloc(c->lat, cap * sizeof(*l));
        if (l)
            c->lat = l;
        int64_t *w = l ? realloc(c->when, cap * sizeof(*w)) : NULL;
        if (w)
            c->when = w;
        int64_t *t = w ? realloc(c->ts, cap * sizeof(*t)) : NULL;
        if (!t)
            return kf_error_set(err, KF_ERR_NOMEM, false, "could not grow the latency samples");
        c->ts = t;
        c->cap = cap;
    }
    c->lat[c->n] = (double)(s->s[lo].t_ms - ts);
    c->when[c->n] = s->s[lo].t_ms;
    c->ts[c->n] = ts;
    c->n++;
    if (!c->first_ts || ts < c->first_ts)
        c->first_ts = ts;
    return KF_OK;
}

/* Loads the samples and joins every record of the topics with them. */
static int lat_ctx_fill(lat_ctx *c, const pl_kafka *k, char *const *topics, size_t ntopics,
                        const char *samples, char *error, size_t error_cap)
{
    kf_error err;
    if (load_samples(c, samples) < 0) {
        snprintf(error, error_cap, "could not read the samples \"%s\"", samples);
        return KF_ERR_IO;
    }
    for (size_t i = 0; i < ntopics; i++) {
        int rc = pl_topic_read(k, topics[i], NULL, 0, on_record, c, 0, &err);
        if (rc < 0 && rc != KF_ERR_NOT_FOUND) {
            snprintf(error, error_cap, "%s", err.message);
            return rc;
        }
    }
    if (c->n == 0) {
        snprintf(error, error_cap, "no record was sampled in \"%s\"", samples);
        return KF_ERR_NOT_FOUND;
    }
    return KF_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

/* Per second of commit time: events committed, p50 and p99 of their latency. */
static json_t *per_second(const lat_ctx *c, int64_t t0)
{
    json_t *out = json_array();
    if (!out || c->n == 0)
        return out;
    int64_t last = 0;
    for (size_t i = 0; i < c->n; i++)
        last = c->when[i] > last ? c->when[i] : last;
    size_t secs = (size_t)((last - t0) / 1000) + 1;
    size_t *count = calloc(secs + 1, sizeof(*count));
    size_t *fill = calloc(secs + 1, sizeof(*fill));
    double *buf = malloc(c->n * sizeof(*buf));
    if (!count || !fill || !buf) {
        free(count);
        free(fill);
        free(buf);
        json_decref(out);
        return NULL;
    }
    /* bucket the latencies by second (counting sort), then sort each bucket */
    for (size_t i = 0; i < c->n; i++)
        count[(size_t)((c->when[i] - t0) / 1000) + 1]++;
    for (size_t sec = 1; sec <= secs; sec++)
        count[sec] += count[sec - 1];
    for (size_t i = 0; i < c->n; i++) {
        size_t sec = (size_t)((c->when[i] - t0) / 1000);
        buf[count[sec] + fill[sec]++] = c->lat[i];
    }
    for (size_t sec = 0; sec < secs; sec++) {
        double *b = buf + count[sec];
        size_t k = fill[sec];
        qsort(b, k, sizeof(*b), cmp_double);
        json_array_append_new(out, json_pack("{s:I,s:I,s:f,s:f}", "t", (json_int_t)sec, "events",
                                             (json_int_t)k, "p50_ms", pct(b, k, 0.50), "p99_ms",
                                             pct(b, k, 0.99)));
    }
    free(fill);
    free(count);
    free(buf);
    return out;
}

/* p50/p99 of the latencies of records with a timestamp at or after from_ts (sorts a copy). */
static int steady(const lat_ctx *c, int64_t from_ts, uint64_t *events, double *p50, double *p99)
{
    double *l = malloc((c->n ? c->n : 1) * sizeof(*l));
    if (!l)
        return KF_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->ts[i] >= from_ts)
            l[k++] = c->lat[i];
    qsort(l, k, sizeof(*l), cmp_double);
    *events = k;
    *p50 = pct(l, k, 0.50);
    *p99 = pct(l, k, 0.99);
    free(l);
    return KF_OK;
}

static void stage_compute(const pl_kafka *k, char *const *in, size_t nin, const char *samples,
                          pl_stage_latency *out, lat_ctx *c)
{
    if (lat_ctx_fill(c, k, in, nin, samples, out->error, sizeof(out->error)) == KF_OK)
        out->known = true;
}

void pl_latency_compute(const pl_latency_opts *o, pl_latency *out)
{
    memset(out, 0, sizeof(*out));
    lat_ctx c = {0}, cp = {0}, cv = {0};
    if (o->produced && o->validated) {
        stage_compute(o->kafka, o->in, o->nin, o->produced, &out->produced, &cp);
        stage_compute(o->kafka, o->in, o->nin, o->validated, &out->validated, &cv);
    }
    if (lat_ctx_fill(&c, o->kafka, o->valid, o->nvalid, o->samples, out->error,
                     sizeof(out->error)) < 0)
        goto out_free;
    out->series = per_second(&c, c.first_ts);
    out->last_commit_ms = 0;
    for (size_t i = 0; i < c.n; i++)
        out->last_commit_ms = c.when[i] > out->last_commit_ms ? c.when[i] : out->last_commit_ms;
    /* the run starts with its first event, whichever topic shows it first */
    int64_t first = c.first_ts;
    if (out->produced.known && cp.first_ts < first)
        first = cp.first_ts;
    int64_t from = first + o->warmup_ms;
    /* the same warm-up after the burst of schema changes as after the start */
    int64_t settled = o->last_schema_change_ms + o->warmup_ms;
    if (settled < from)
        settled = from;
    out->settled_from_ms = settled - first;
    out->settled.known = true;
    if (steady(&c, from, &out->events_steady, &out->p50_ms, &out->p99_ms) < 0 ||
        steady(&c, settled, &out->settled.events, &out->settled.p50_ms, &out->settled.p99_ms) < 0 ||
        (out->produced.known && steady(&cp, from, &out->produced.events, &out->produced.p50_ms,
                                       &out->produced.p99_ms) < 0) ||
        (out->validated.known && steady(&cv, from, &out->validated.events, &out->validated.p50_ms,
                                        &out->validated.p99_ms) < 0)) {
        snprintf(out->error, sizeof(out->error), "could not allocate the latency samples");
        goto out_free;
    }
    pl_stage_latency *st[3] = {&out->produced, &out->validated, &out->settled};
    for (int i = 0; i < 3; i++)
        if (st[i]->known && st[i]->events == 0) {
            st[i]->known = false;
            snprintf(st[i]->error, sizeof(st[i]->error), "no event after the warm-up");
        }
    qsort(c.lat, c.n, sizeof(*c.lat), cmp_double);
    out->events = c.n;
    out->all_p50_ms = pct(c.lat, c.n, 0.50);
    out->all_p99_ms = pct(c.lat, c.n, 0.99);
    out->max_ms = c.lat[c.n - 1];
    out->warmup_ms = o->warmup_ms;
    out->first_ts_ms = first;
    int64_t span = out->last_commit_ms - c.first_ts;
    out->events_per_s = span > 0 ? (double)c.n * 1000.0 / (double)span : 0;
    out->known = true;

out_free:
    lat_ctx_free(&c);
    lat_ctx_free(&cp);
    lat_ctx_free(&cv);
}
