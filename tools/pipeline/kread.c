/* Kafka side of the report: reading a topic to its end with read_committed, consumer-group
 * lag counted in records, topic creation, and the dead-letter topics of a run. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kfleet/dlq.h"
#include "kfleet/event.h"
#include "kfleet/kafka.h"
#include "kfleet/serde.h"
#include "pipeline.h"

#define META_TIMEOUT_MS 10000
#define READ_TIMEOUT_MS 120000

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A consumer with the run's settings and the isolation level, without commits. */
static rd_kafka_t *consumer_new_isolated(const pl_kafka *k, const char *group,
                                         const char *isolation, kf_error *err)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (size_t i = 0; i < k->npairs; i++)
        if (rd_kafka_conf_set(conf, k->kv[2 * i], k->kv[2 * i + 1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            kf_error_set(err, KF_ERR_CONFIG, false, "could not set kafka.%s: %s", k->kv[2 * i],
                         errstr);
            return NULL;
        }
    const char *fixed[][2] = {{"group.id", group},
                              {"enable.auto.commit", "false"},
                              {"enable.auto.offset.store", "false"},
                              {"enable.partition.eof", "true"},
                              {"isolation.level", isolation},
                              {"log_level", "3"}};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (rd_kafka_conf_set(conf, fixed[i][0], fixed[i][1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            kf_error_set(err, KF_ERR_KAFKA, false, "could not set %s: %s", fixed[i][0], errstr);
            return NULL;
        }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) {
        kf_error_set(err, KF_ERR_KAFKA, false, "could not create a consumer: %s", errstr);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

/* A read_committed consumer with the run's settings, without commits. */
static rd_kafka_t *consumer_new(const pl_kafka *k, const char *group, kf_error *err)
{
    return consumer_new_isolated(k, group, "read_committed", err);
}

/* Partition count of topic, 0 when it does not exist, negative on error. */
static int partitions_of(rd_kafka_t *rk, const char *topic, kf_error *err)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (!rkt)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not create a topic handle");
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, META_TIMEOUT_MS);
    rd_kafka_topic_destroy(rkt);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return kf_error_set(err, KF_ERR_KAFKA, true, "could not read the metadata of \"%s\": %s",
                            topic, rd_kafka_err2str(e));
    int n = 0;
    if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
        n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return n;
}

int pl_topic_read(const pl_kafka *k, const char *topic, const int64_t *from, size_t nfrom,
                  pl_msg_fn fn, void *ctx, int timeout_ms, kf_error *err)
{
    rd_kafka_t *rk = consumer_new(k, PL_PROGRAM "-reader", err);
    if (!rk)
        return err->code;
    int rc = KF_OK;
    int64_t *end = NULL;
    rd_kafka_topic_partition_list_t *assign = NULL;
    int np = partitions_of(rk, topic, err);
    if (np <= 0) {
        rc = np < 0
                 ? np
                 : kf_error_set(err, KF_ERR_NOT_FOUND, false, "topic \"%s\" does not exist", topic);
        goto out_destroy;
    }
    if (!(end = calloc((size_t)np, sizeof(*end))) ||
        !(assign = rd_kafka_topic_partition_list_new(np))) {
        rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate partitions");
        goto out_destroy;
    }
    int open = 0;
    for (int p = 0; p < np; p++) {
        int64_t lo, hi;
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, META_TIMEOUT_MS);
        if (e) {
            rc = kf_error_set(err, KF_ERR_KAFKA, true, "could not read the end of %s[%d]: %s",
                              topic, p, rd_kafka_err2str(e));
            goto out_destroy;
        }
        /* with `from`, only its partitions are read */
        int64_t start = !from ? lo : (size_t)p < nfrom && from[p] >= 0 ? from[p] : INT64_MAX;
        if (start < lo)
            start = lo;
        end[p] = hi;
        if (start < hi) {
            rd_kafka_topic_partition_list_add(assign, topic, p)->offset = start;
            open++;
        } else {
            end[p] = -1; /* nothing to read */
        }
    }
    if (open == 0)
        goto out_destroy;
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, assign);
    if (e) {
        rc = kf_error_set(err, KF_ERR_KAFKA, false, "could not assign %s: %s", topic,
                          rd_kafka_err2str(e));
        goto out_destroy;
    }
    int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : READ_TIMEOUT_MS);
    while (open > 0 && rc == KF_OK) {
        if (mono_ms() > deadline) {
            rc = kf_error_set(err, KF_ERR_TIMEOUT, true, "could not read \"%s\" to its end in time",
                              topic);
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        int p = m->partition;
        bool valid_part = p >= 0 && p < np && end[p] >= 0;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (valid_part) {
                end[p] = -1;
                open--;
            }
        } else if (m->err) {
            rc = kf_error_set(err, KF_ERR_KAFKA, false, "could not read \"%s\": %s", topic,
                              rd_kafka_message_errstr(m));
        } else if (valid_part) {
            rc = fn(ctx, m, err);
            if (m->offset + 1 >= end[p]) {
                end[p] = -1;
                open--;
            }
        }
        rd_kafka_message_destroy(m);
    }

out_destroy:
    if (assign)
        rd_kafka_topic_partition_list_destroy(assign);
    free(end);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

static int count_record(void *ctx, const rd_kafka_message_t *m, kf_error *err)
{
    (void)m;
    (void)err;
    (*(int64_t *)ctx)++;
    return KF_OK;
}

/* Fills lag from the committed (next) offsets of every partition of the topics; committed[i]
 * < 0 means nothing committed. */
static void lag_from(const pl_kafka *k, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts,
                     pl_lag *out)
{
    kf_error err;
    out->offsets = 0;
    out->records = 0;
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int64_t lo, hi;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, tp->topic, tp->partition, &lo,
                                                                 &hi, META_TIMEOUT_MS);
        if (e) {
            snprintf(out->error, sizeof(out->error), "could not read the end of %s[%d]: %s",
                     tp->topic, (int)tp->partition, rd_kafka_err2str(e));
            return;
        }
        int64_t next = tp->offset >= 0 ? tp->offset : lo;
        if (next >= hi)
            continue;
        out->offsets += hi - next;
        /* Offsets of transaction markers are not records: count what a reader would get. */
        int64_t *from = calloc((size_t)tp->partition + 1, sizeof(*from));
        if (!from) {
            snprintf(out->error, sizeof(out->error), "out of memory");
            return;
        }
        for (int p = 0; p <= tp->partition; p++)
            from[p] = p == tp->partition ? next : -1;
        int64_t n = 0;
        int rc =
            pl_topic_read(k, tp->topic, from, (size_t)tp->partition + 1, count_record, &n, 0, &err);
        free(from);
        if (rc < 0) {
            snprintf(out->error, sizeof(out->error), "%s", err.message);
            return;
        }
        out->records += n;
    }
    out->known = true;
}

/* Every partition of the topics (that exist) in a new list. */
static rd_kafka_topic_partition_list_t *all_parts(rd_kafka_t *rk, char *const *topics, size_t n,
                                                  kf_error *err)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    for (size_t t = 0; t < n; t++) {
        int np = partitions_of(rk, topics[t], err);
        if (np < 0) {
            rd_kafka_topic_partition_list_destroy(l);
            return NULL;
        }
        for (int p = 0; p < np; p++)
            rd_kafka_topic_partition_list_add(l, topics[t], p)->offset = RD_KAFKA_OFFSET_INVALID;
    }
    return l;
}

void pl_group_lag(const pl_kafka *k, const char *group, char *const *topics, size_t ntopics,
                  pl_lag *out)
{
    memset(out, 0, sizeof(*out));
    kf_error err;
    rd_kafka_t *rk = consumer_new(k, group, &err);
    if (!rk) {
        snprintf(out->error, sizeof(out->error), "%s", err.message);
        return;
    }
    rd_kafka_topic_partition_list_t *parts = all_parts(rk, topics, ntopics, &err);
    if (!parts) {
        snprintf(out->error, sizeof(out->error), "%s", err.message);
    } else {
        rd_kafka_resp_err_t e = rd_kafka_committed(rk, parts, META_TIMEOUT_MS);
        if (e)
            snprintf(out->error, sizeof(out->error),
                     "could not read the committed offsets of \"%s\": %s", group,
                     rd_kafka_err2str(e));
        else
            lag_from(k, rk, parts, out);
        rd_kafka_topic_partition_list_destroy(parts);
    }
    rd_kafka_destroy(rk);
}

void pl_marker_lag(const pl_kafka *k, PGconn *conn, const char *group, char *const *topics,
                   size_t ntopics, pl_lag *out)
{
    memset(out, 0, sizeof(*out));
    kf_error err;
    rd_kafka_t *rk = consumer_new(k, PL_PROGRAM "-lag", &err);
    if (!rk) {
        snprintf(out->error, sizeof(out->error), "%s", err.message);
        return;
    }
    rd_kafka_topic_partition_list_t *parts = all_parts(rk, topics, ntopics, &err);
    if (!parts) {
        snprintf(out->error, sizeof(out->error), "%s", err.message);
        rd_kafka_destroy(rk);
        return;
    }
    const char *params[1] = {group};
    PGresult *res = PQexecParams(conn,
                                 "SELECT topic, partition, next_offset FROM "
                                 "kfleet_meta.sync_markers WHERE group_id = $1",
                                 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(out->error, sizeof(out->error), "could not read kfleet_meta.sync_markers: %s",
                 PQresultErrorMessage(res));
    } else {
        for (int r = 0; r < PQntuples(res); r++) {
            rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(
                parts, PQgetvalue(res, r, 0), atoi(PQgetvalue(res, r, 1)));
            if (tp)
                tp->offset = strtoll(PQgetvalue(res, r, 2), NULL, 10);
        }
        lag_from(k, rk, parts, out);
    }
    PQclear(res);
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(rk);
}

int pl_topics_create(const pl_kafka *k, char *const *names, size_t n, int partitions, kf_error *err)
{
    kf_admin *a = kf_admin_new(k->kv, k->npairs, err);
    if (!a)
        return err->code;
    kf_topic_spec *specs = calloc(n ? n : 1, sizeof(*specs));
    if (!specs) {
        kf_admin_destroy(a);
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate topic specs");
    }
    for (size_t i = 0; i < n; i++)
        specs[i] =
            (kf_topic_spec){.name = names[i], .partitions = partitions, .replication_factor = -1};
    int rc = kf_admin_create_topics(a, specs, n, true, META_TIMEOUT_MS * 3, err);
    free(specs);
    kf_admin_destroy(a);
    return rc;
}

/* ---- dead-letter topics ---- */

typedef struct dlq_ctx {
    pl_table *t;
    kf_event_reader *reader;
    json_t *skip;
} dlq_ctx;

static int dlq_record(void *ctx, const rd_kafka_message_t *m, kf_error *err)
{
    dlq_ctx *d = ctx;
    pl_table *t = d->t;
    t->dlq_records++;
    const void *v;
    size_t n;
    char rule[256] = "";
    if (kf_headers_get(m, KF_DLQ_H_RULE_ID, &v, &n) && v && n < sizeof(rule)) {
        memcpy(rule, v, n);
        rule[n] = '\0';
    }
    pl_rule *r = NULL;
    for (size_t i = 0; i < t->nrules && !r; i++)
        if (strcmp(t->rules[i].id, rule) == 0)
            r = &t->rules[i];
    if (!r) {
        t->dlq_other++;
        return KF_OK;
    }
    r->found++;
    kf_event ev;
    kf_error derr;
    if (!m->payload || kf_event_reader_decode(d->reader, m->payload, m->len, &ev, &derr) != KF_OK ||
        !ev.source.has_seq) {
        t->dlq_other++;
        return KF_OK;
    }
    char id[300];
    snprintf(id, sizeof(id), "%s:%" PRId64, t->name, ev.source.seq);
    if (json_object_get(d->skip, id)) {
        t->dlq_duplicates++;
        return KF_OK;
    }
    return json_object_set_new(d->skip, id, json_true()) == 0
               ? KF_OK
               : kf_error_set(err, KF_ERR_NOMEM, false, "could not record a quarantined change");
}

int pl_dlq_read(pl_run *run, const pl_kafka *k, kf_registry *reg, json_t **skip, kf_error *err)
{
    *skip = json_object();
    kf_serde *serde = *skip ? kf_serde_new(reg, err) : NULL;
    kf_event_reader *reader = serde ? kf_event_reader_new(serde, err) : NULL;
    int rc = KF_OK;
    if (!*skip)
        rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate the quarantine set");
    else if (!reader)
        rc = err->code;
    for (size_t i = 0; rc == KF_OK && i < run->ntables; i++) {
        pl_table *t = &run->tables[i];
        char topic[600];
        snprintf(topic, sizeof(topic), "%s.dlq.%s", run->prefix, t->topic);
        dlq_ctx d = {.t = t, .reader = reader, .skip = *skip};
        rc = pl_topic_read(k, topic, NULL, 0, dlq_record, &d, 0, err);
        if (rc == KF_ERR_NOT_FOUND) /* nothing was ever quarantined */
            rc = KF_OK;
    }
    kf_event_reader_destroy(reader);
    kf_serde_destroy(serde);
    return rc;
}

/* ---- stage sampler ---- */

struct pl_stage_sampler {
    rd_kafka_t *rk;                         /* read_committed, group.id = the validate group */
    rd_kafka_topic_partition_list_t *parts; /* every partition of the input topics */
    int64_t *produced, *validated;          /* last value written per partition (-1: none) */
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

pl_stage_sampler *pl_stage_sampler_new(const pl_kafka *k, const char *vgroup, char *const *in,
                                       size_t nin, kf_error *err)
{
    pl_stage_sampler *s = calloc(1, sizeof(*s));
    if (!s) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate the stage sampler");
        return NULL;
    }
    /* read_uncommitted: a read_committed client asks for stable offsets, which the broker
     * refuses while a transaction of the group is open (librdkafka then retries after a
     * backoff), so samples would come late exactly when validate is busy. The offsets it
     * returns are those of committed transactions either way, and the input topics are not
     * transactional, so their end offsets are the same. */
    if (!(s->rk = consumer_new_isolated(k, vgroup, "read_uncommitted", err)) ||
        !(s->parts = all_parts(s->rk, in, nin, err)))
        goto out_destroy;
    if (s->parts->cnt == 0) {
        kf_error_set(err, KF_ERR_NOT_FOUND, false, "the input topics do not exist");
        goto out_destroy;
    }
    s->produced = malloc((size_t)s->parts->cnt * sizeof(*s->produced));
    s->validated = malloc((size_t)s->parts->cnt * sizeof(*s->validated));
    if (!s->produced || !s->validated) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate the stage sampler");
        goto out_destroy;
    }
    for (int i = 0; i < s->parts->cnt; i++)
        s->produced[i] = s->validated[i] = -1;
    return s;

out_destroy:
    pl_stage_sampler_destroy(s);
    return NULL;
}

void pl_stage_sampler_destroy(pl_stage_sampler *s)
{
    if (!s)
        return;
    if (s->parts)
        rd_kafka_topic_partition_list_destroy(s->parts);
    if (s->rk)
        rd_kafka_destroy(s->rk);
    free(s->produced);
    free(s->validated);
    free(s);
}

/* Writes the partitions of l whose offset moved past last[], stamped with the time now. */
static void write_moved(const rd_kafka_topic_partition_list_t *l, int64_t *last, int64_t now,
                        FILE *out)
{
    for (int i = 0; i < l->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &l->elems[i];
        if (tp->err || tp->offset < 0 || tp->offset == last[i])
            continue;
        last[i] = tp->offset;
        fprintf(out, "%" PRId64 " %s %d %" PRId64 "\n", now, tp->topic, (int)tp->partition,
                tp->offset);
    }
}

int pl_stage_sampler_sample(pl_stage_sampler *s, FILE *produced, FILE *validated, kf_error *err)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_copy(s->parts);
    if (!l)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not copy the partition list");
    for (int i = 0; i < l->cnt; i++)
        l->elems[i].offset = RD_KAFKA_OFFSET_END; /* ListOffsets "latest": the end offsets */
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(s->rk, l, META_TIMEOUT_MS);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        write_moved(l, s->produced, wall_ms(), produced);
    for (int i = 0; i < l->cnt; i++) {
        l->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
        l->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
    }
    rd_kafka_resp_err_t c = rd_kafka_committed(s->rk, l, META_TIMEOUT_MS);
    if (c == RD_KAFKA_RESP_ERR_NO_ERROR)
        write_moved(l, s->validated, wall_ms(), validated);
    rd_kafka_topic_partition_list_destroy(l);
    if (e)
        return kf_error_set(err, KF_ERR_KAFKA, true, "could not read the end offsets: %s",
                            rd_kafka_err2str(e));
    if (c)
        return kf_error_set(err, KF_ERR_KAFKA, true,
                            "could not read the committed offsets of the validate group: %s",
                            rd_kafka_err2str(c));
    return KF_OK;
}
