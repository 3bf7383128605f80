/* End-to-end latency: each valid record's Kafka timestamp (the time the simulator produced
 * the event; validate keeps it) joined with the first sample of the sink's sync_markers that
 * shows the record's partition committed past it. The samples are taken every few ms, so a
 * latency is an upper bound by at most the sampling interval. */
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
    double *lat;   /* latency per committed record */
    int64_t *when; /* its commit sample time */
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
            snprintf(s->topic, sizeof(s->topic), "%s", topic);
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

static int on_record(void *ctx, const rd_kafka_message_t *m, kf_error *err)
{
    lat_ctx *c = ctx;
    if (!m->payload) /* tombstones follow deletes; they are not events */
        return KF_OK;
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    series *s = find_series(c, rd_kafka_topic_name(m->rkt), m->partition);
    /* the first sample past the record: markers only grow, so binary search */
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
        if (!l || !w)
            return kf_error_set(err, KF_ERR_NOMEM, false, "could not grow the latency samples");
        c->when = w;
        c->cap = cap;
    }
    c->lat[c->n] = (double)(s->s[lo].t_ms - ts);
    c->when[c->n] = s->s[lo].t_ms;
    c->n++;
    if (!c->first_ts || ts < c->first_ts)
        c->first_ts = ts;
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

void pl_latency_compute(const pl_kafka *k, char *const *valid, size_t nvalid, const char *samples,
                        pl_latency *out)
{
    memset(out, 0, sizeof(*out));
    lat_ctx c = {0};
    kf_error err;
    int rc = load_samples(&c, samples);
    if (rc < 0) {
        snprintf(out->error, sizeof(out->error), "could not read the marker samples \"%s\"",
                 samples);
        goto out_free;
    }
    for (size_t i = 0; i < nvalid; i++) {
        rc = pl_topic_read(k, valid[i], NULL, 0, on_record, &c, 0, &err);
        if (rc < 0 && rc != KF_ERR_NOT_FOUND) {
            snprintf(out->error, sizeof(out->error), "%s", err.message);
            goto out_free;
        }
    }
    if (c.n == 0) {
        snprintf(out->error, sizeof(out->error), "no committed record was sampled");
        goto out_free;
    }
    out->series = per_second(&c, c.first_ts);
    out->last_commit_ms = 0;
    for (size_t i = 0; i < c.n; i++)
        out->last_commit_ms = c.when[i] > out->last_commit_ms ? c.when[i] : out->last_commit_ms;
    qsort(c.lat, c.n, sizeof(*c.lat), cmp_double);
    out->events = c.n;
    out->p50_ms = pct(c.lat, c.n, 0.50);
    out->p99_ms = pct(c.lat, c.n, 0.99);
    out->max_ms = c.lat[c.n - 1];
    out->first_ts_ms = c.first_ts;
    int64_t span = out->last_commit_ms - c.first_ts;
    out->events_per_s = span > 0 ? (double)c.n * 1000.0 / (double)span : 0;
    out->known = true;

out_free:
    for (size_t i = 0; i < c.nsr; i++)
        free(c.sr[i].s);
    free(c.sr);
    free(c.lat);
    free(c.when);
}
