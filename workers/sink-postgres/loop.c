/* The consume -> batch -> apply loop: Kafka clients, rebalance hooks that seek to the offsets
 * Postgres holds, retries with backoff while consumption is paused, and the graceful stop. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kfleet/log.h"
#include "kfleet/pg.h"
#include "kfleet/signals.h"
#include "sink.h"

#define POLL_MAX      2000
#define MAX_FAILURES  20
#define SEEK_TIMEOUT  10000
#define FLUSH_TIMEOUT 30000
#define IDLE_FLUSH_MS 50
#define START_TIMEOUT 5000

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static bool lag_value(void *ctx, double *out)
{
    sink_part *p = ctx;
    if (!atomic_load(&p->assigned))
        return false;
    int64_t lo, hi;
    if (rd_kafka_get_watermark_offsets(p->rk, p->topic, p->partition, &lo, &hi) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        hi < 0)
        return false;
    int64_t at = atomic_load(&p->marker);
    if (at < lo)
        at = lo;
    *out = hi > at ? (double)(hi - at) : 0.0;
    return true;
}

static sink_part *part_get(sink *s, const char *topic, int32_t partition, kf_error *err)
{
    for (size_t i = 0; i < s->nparts; i++)
        if (s->parts[i]->partition == partition && strcmp(s->parts[i]->topic, topic) == 0)
            return s->parts[i];
    sink_table *t = sink_table_for_topic(s, topic, err);
    if (!t)
        return NULL;
    sink_part **grown = realloc(s->parts, (s->nparts + 1) * sizeof(*grown));
    if (!grown) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate a partition");
        return NULL;
    }
    s->parts = grown;
    sink_part *p = calloc(1, sizeof(*p));
    if (!p || !(p->topic = strdup(topic))) {
        free(p);
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate a partition");
        return NULL;
    }
    p->partition = partition;
    p->table = t;
    p->rk = kf_consumer_handle(s->consumer);
    atomic_store(&p->marker, -1);
    s->parts[s->nparts++] = p;
    char pbuf[16];
    snprintf(pbuf, sizeof(pbuf), "%d", (int)partition);
    const char *labels[3] = {topic, pbuf, t->name};
    if (kf_gauge_child_func(s->g_lag, 3, labels, lag_value, p, err) < 0)
        return NULL;
    return p;
}

/* Drops every held message (inbox and batches). */
static void drop_pending(sink *s)
{
    for (size_t i = 0; i < s->inbox_len; i++)
        rd_kafka_message_destroy(s->inbox[i]);
    s->inbox_len = 0;
    sink_apply_drop_all(s);
}

/* Partitions without a sync marker start at the beginning of the log. Left to librdkafka, the
 * logical offset is looked up per partition once its leader is known, and a partition whose
 * leader is not known yet at assignment retries after half a second, then waits behind the
 * other partitions' long-polling fetches: it starts up to a second late. One ListOffsets
 * request for them all, made here, lets every partition start fetching at once. When it
 * fails the logical offsets stay (librdkafka resolves them as before). */
static void resolve_start(sink *s, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *q = NULL;
    for (int i = 0; i < parts->cnt; i++) {
        if (parts->elems[i].offset != RD_KAFKA_OFFSET_BEGINNING)
            continue;
        if (!q && !(q = rd_kafka_topic_partition_list_new(parts->cnt)))
            return;
        /* a "timestamp" of -2 asks ListOffsets for the earliest offset */
        rd_kafka_topic_partition_list_add(q, parts->elems[i].topic, parts->elems[i].partition)
            ->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    if (!q)
        return;
    rd_kafka_resp_err_t e =
        rd_kafka_offsets_for_times(kf_consumer_handle(s->consumer), q, START_TIMEOUT);
    for (int i = 0; e == RD_KAFKA_RESP_ERR_NO_ERROR && i < q->cnt; i++) {
        const rd_kafka_topic_partition_t *r = &q->elems[i];
        if (r->err || r->offset < 0)
            continue;
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(parts, r->topic, r->partition);
        if (tp && tp->offset == RD_KAFKA_OFFSET_BEGINNING)
            tp->offset = r->offset;
    }
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        kf_log(KF_LOG_INFO, "could not look up where partitions without a sync marker begin",
               "error", rd_kafka_err2str(e), (char *)NULL);
    rd_kafka_topic_partition_list_destroy(q);
}

static int on_assign(void *ctx, kf_consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    sink *s = ctx;
    kf_error err;
    kf_backoff b;
    kf_backoff_init(&b, (uint64_t)s->cfg->backoff_initial_ms, (uint64_t)s->cfg->backoff_max_ms, 2.0,
                    KF_JITTER_FULL, kf_retry_seed(), NULL);
    /* the offsets to start from are in Postgres: wait for it rather than guess */
    while (sink_meta_load_markers(s, parts, &err) < 0) {
        if (kf_signals_stop_requested())
            return -1;
        kf_app_set_ready(s->app, false, "cannot read sync markers");
        kf_log(KF_LOG_WARN, "could not read sync markers, retrying", "error", err.message,
               (char *)NULL);
        sleep_ms((int64_t)kf_backoff_next_ms(&b));
    }
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        sink_part *p = part_get(s, tp->topic, tp->partition, &err);
        if (!p) {
            kf_log(KF_LOG_ERROR, "could not track an assigned partition", "error", err.message,
                   (char *)NULL);
            return -1;
        }
        atomic_store(&p->marker, tp->offset >= 0 ? tp->offset : -1);
        p->seen = 0;
        atomic_store(&p->assigned, true);
    }
    resolve_start(s, parts); /* after the markers: -1 stays "none in Postgres" */
    (void)c;
    return 0;
}

static void on_revoke(void *ctx, kf_consumer *c, const rd_kafka_topic_partition_list_t *parts,
                      bool lost)
{
    sink *s = ctx;
    (void)c;
    kf_error err;
    sink_apply_wait(s); /* the batch in flight commits before the partitions go */
    if (!lost && sink_apply_flush_due(s, true, &err) < 0) {
        kf_log(KF_LOG_WARN, "could not apply the batch before giving partitions up", "error",
               err.message, (char *)NULL);
        lost = true;
    }
    for (int i = 0; i < parts->cnt; i++)
        for (size_t k = 0; k < s->nparts; k++)
            if (s->parts[k]->partition == parts->elems[i].partition &&
                strcmp(s->parts[k]->topic, parts->elems[i].topic) == 0)
                atomic_store(&s->parts[k]->assigned, false);
    if (lost) {
        /* what is held was not applied: the partitions we keep restart from their markers */
        drop_pending(s);
        s->need_reseek = true;
        return;
    }
    size_t keep = 0;
    for (size_t i = 0; i < s->inbox_len; i++) {
        rd_kafka_message_t *m = s->inbox[i];
        bool mine = false;
        for (size_t k = 0; k < s->nparts; k++)
            if (s->parts[k]->partition == m->partition &&
                strcmp(s->parts[k]->topic, rd_kafka_topic_name(m->rkt)) == 0)
                mine = atomic_load(&s->parts[k]->assigned);
        if (mine)
            s->inbox[keep++] = m;
        else
            rd_kafka_message_destroy(m);
    }
    s->inbox_len = keep;
}

/* Seeks every assigned partition to the marker Postgres holds (after held records were
 * dropped). */
static int reseek(sink *s, kf_error *err)
{
    drop_pending(s);
    rd_kafka_topic_partition_list_t *list = NULL;
    int rc = kf_consumer_assignment(s->consumer, &list, err);
    if (rc < 0)
        return rc;
    if (list->cnt > 0 && (rc = sink_meta_load_markers(s, list, err)) == KF_OK) {
        for (int i = 0; i < list->cnt; i++) {
            sink_part *p = part_get(s, list->elems[i].topic, list->elems[i].partition, err);
            if (!p) {
                rc = err->code;
                goto out_destroy_list;
            }
            atomic_store(&p->marker, list->elems[i].offset >= 0 ? list->elems[i].offset : -1);
            p->seen = 0;
        }
        resolve_start(s, list);
        rd_kafka_error_t *e =
            rd_kafka_seek_partitions(kf_consumer_handle(s->consumer), list, SEEK_TIMEOUT);
        if (e) {
            rc = kf_kafka_error_set(err, e, "could not seek to the sync markers");
            rd_kafka_error_destroy(e);
            goto out_destroy_list;
        }
        kf_log(KF_LOG_INFO, "consumer moved to the sync markers", (char *)NULL);
    }
    if (rc == KF_OK)
        s->need_reseek = false;

out_destroy_list:
    rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

/* Applies the inbox in order and flushes the batches that are due. A failure leaves the
 * message that could not be taken, and those after it, in the inbox. */
static int step(sink *s, kf_error *err)
{
    int rc;
    if (s->need_reseek && (rc = reseek(s, err)) < 0)
        return rc;
    size_t i = 0;
    rc = KF_OK;
    for (; i < s->inbox_len; i++) {
        bool taken;
        s->inbox_waiting = s->inbox_len - i - 1;
        rc = sink_apply_message(s, s->inbox[i], &taken, err);
        if (rc < 0) {
            if (taken)
                i++;
            break;
        }
        if (s->need_reseek) {
            /* message i was taken; what is held is read again from the sync markers */
            i++;
            break;
        }
    }
    s->inbox_waiting = 0;
    /* the first i were taken, unless the inbox was dropped meanwhile */
    if (i <= s->inbox_len) {
        memmove(s->inbox, s->inbox + i, (s->inbox_len - i) * sizeof(*s->inbox));
        s->inbox_len -= i;
    }
    if (rc < 0)
        return rc;
    bool all = s->idle_flush;
    s->idle_flush = false;
    return sink_apply_flush_due(s, all, err);
}

static void set_status(sink *s, bool ok, const char *reason)
{
    kf_gauge_set(s->g_status, ok ? 1.0 : 0.0);
    kf_app_set_ready(s->app, ok, reason);
}

/* Polls into the inbox; returns the number of messages taken (0 on timeout). */
static int poll_some(sink *s, int wait_ms)
{
    size_t room = s->inbox_cap - s->inbox_len;
    if (room > s->poll_max)
        room = s->poll_max;
    if (room == 0) {
        sleep_ms(wait_ms);
        return 0;
    }
    kf_error err;
    int n = kf_consumer_poll_batch(s->consumer, s->polled, room, wait_ms, &err);
    s->poll_full = n > 0 && (size_t)n == room;
    if (n < 0) {
        kf_log(KF_LOG_ERROR, "could not poll the consumer", "error", err.message, (char *)NULL);
        if (err.code == KF_ERR_FATAL)
            kf_signals_request_stop();
        return 0;
    }
    /* hooks inside the poll may have dropped the inbox; append after them */
    for (int k = 0; k < n; k++)
        s->inbox[s->inbox_len++] = s->polled[k];
    return n;
}

int sink_run(sink *s, kf_error *err)
{
    set_status(s, true, NULL);
    int rc = KF_OK;
    while (!kf_signals_stop_requested()) {
        sink_apply_poll(s);
        int64_t now = kf_retry_now_ms();
        if (s->retrying && now < s->retry_at_ms) {
            int64_t left = s->retry_at_ms - now;
            poll_some(s, left > 200 ? 200 : (int)left);
            continue;
        }
        rc = step(s, err);
        if (rc < 0) {
            if (rc == KF_ERR_FATAL || err->fatal)
                return rc;
            bool transient = err->retriable || rc == KF_ERR_STATE;
            if (!transient && ++s->fail_streak > MAX_FAILURES)
                return rc;
            if (!s->retrying) {
                kf_error perr;
                if (kf_consumer_pause(s->consumer, &perr) < 0)
                    kf_log(KF_LOG_WARN, perr.message, (char *)NULL);
            }
            s->retrying = true;
            uint64_t delay = kf_backoff_next_ms(&s->backoff);
            s->retry_at_ms = kf_retry_now_ms() + (int64_t)delay;
            kf_counter_inc(s->c_retries, 1);
            set_status(s, false, err->message);
            char d[24];
            snprintf(d, sizeof(d), "%llu", (unsigned long long)delay);
            kf_log(KF_LOG_WARN, "could not apply changes, retrying", "error", err->message,
                   "retry_in_ms", d, (char *)NULL);
            if (!transient) {
                /* the held batches were encoded for bindings (DDL, staging tables) that died
                 * with the failed transaction: read them again from the sync markers */
                sink_table_unbind_all(s);
                s->need_reseek = true;
            }
            continue;
        }
        if (s->retrying) {
            kf_error perr;
            if (kf_consumer_resume(s->consumer, &perr) < 0)
                kf_log(KF_LOG_WARN, perr.message, (char *)NULL);
            s->retrying = false;
            s->fail_streak = 0;
            kf_backoff_reset(&s->backoff);
            set_status(s, true, NULL);
            kf_log(KF_LOG_INFO, "applying changes again", (char *)NULL);
        }
        /* with changes waiting in batches, a short quiet spell means the input is drained:
         * apply them now instead of waiting for the flush interval */
        int64_t due = sink_apply_next_due_ms(s);
        int wait = due < 0 || due > 500 ? 500 : (int)due;
        bool pending = due >= 0;
        if (pending && wait > IDLE_FLUSH_MS)
            wait = IDLE_FLUSH_MS;
        if (s->inbox_len > 0)
            wait = 0;
        if (poll_some(s, wait) == 0 && pending && wait > 0 && s->inbox_len == 0)
            s->idle_flush = true;
    }
    /* finish the batch: a few attempts, then give up (the markers keep it safe) */
    set_status(s, false, "stopping");
    for (int attempt = 0; attempt < 5; attempt++) {
        rc = step(s, err);
        if (rc == KF_OK)
            rc = sink_apply_flush_due(s, true, err);
        if (rc == KF_OK || rc == KF_ERR_FATAL)
            break;
        kf_log(KF_LOG_WARN, "could not apply the last batch, retrying", "error", err->message,
               (char *)NULL);
        sleep_ms((int64_t)kf_backoff_next_ms(&s->backoff));
    }
    sink_apply_wait(s);
    kf_error cerr;
    if (kf_consumer_commit(s->consumer, false, &cerr) < 0)
        kf_log(KF_LOG_WARN, "could not commit Kafka offsets", "error", cerr.message, (char *)NULL);
    return rc;
}

void sink_log_summary(const sink *s)
{
    int64_t span = s->first_batch_ms > 0 ? s->last_commit_ms - s->first_batch_ms : 0;
    char recs[24], batches[24], ups[24], dels[24], dlq[24], ms[24], rate[32], nudges[24];
    snprintf(recs, sizeof(recs), "%" PRIu64, s->n_records);
    snprintf(batches, sizeof(batches), "%" PRIu64, s->n_batches);
    snprintf(ups, sizeof(ups), "%" PRIu64, s->n_upserted);
    snprintf(dels, sizeof(dels), "%" PRIu64, s->n_deleted);
    snprintf(dlq, sizeof(dlq), "%" PRIu64, s->n_dlq);
    snprintf(ms, sizeof(ms), "%" PRId64, span);
    snprintf(rate, sizeof(rate), "%.0f",
             span > 0 ? (double)s->n_records * 1000.0 / (double)span : 0.0);
    snprintf(nudges, sizeof(nudges), "%" PRIu64,
             s->consumer ? kf_consumer_fetch_nudges(s->consumer) : UINT64_C(0));
    kf_log(KF_LOG_INFO, "run summary", "records", recs, "batches", batches, "rows_upserted", ups,
           "rows_deleted", dels, "dlq_records", dlq, "active_ms", ms, "records_per_s", rate,
           "fetch_nudges", nudges, (char *)NULL);
}

void sink_table_unbind_all(sink *s)
{
    sink_apply_wait(s);
    for (size_t i = 0; i < s->ntables; i++) {
        sink_table_unbind(s->tables[i]);
        s->tables[i]->shape_version = -1;
    }
}

static int collect_pg(const char *key, const char *value, const char *source, void *ctx)
{
    sink *s = ctx;
    (void)source;
    const char **grown = realloc(s->pg_kv, (2 * s->pg_npairs + 2) * sizeof(*grown));
    if (!grown)
        return -1;
    s->pg_kv = grown;
    s->pg_kv[2 * s->pg_npairs] = key;
    s->pg_kv[2 * s->pg_npairs + 1] = value;
    s->pg_npairs++;
    return 0;
}

static int register_metrics(sink *s, kf_error *err)
{
    kf_metrics *m = s->app->metrics;
    const char *tbl[1] = {"table"};
    s->c_upserted = kf_metrics_counter(m, "kfleet_sink_rows_upserted_total",
                                       "Rows inserted or updated, per table.", 1, tbl, err);
    s->c_deleted = kf_metrics_counter(m, "kfleet_sink_rows_deleted_total",
                                      "Rows deleted (or soft-deleted), per table.", 1, tbl, err);
    s->c_ddl = kf_metrics_counter(m, "kfleet_sink_ddl_total",
                                  "Schema changes applied to destination tables.", 1, tbl, err);
    s->c_dlq = kf_metrics_counter(m, "kfleet_sink_dlq_records_total",
                                  "Records sent to the dead-letter queue, per table.", 1, tbl, err);
    s->c_conv = kf_metrics_counter(m, "kfleet_sink_conversion_errors_total",
                                   "Values stored as null because they could not be converted.", 1,
                                   tbl, err);
    s->h_duration =
        kf_metrics_histogram(m, "kfleet_sink_batch_duration_seconds",
                             "Time to apply one batch, per table.", 1, tbl, NULL, 0, err);
    const char *lag_labels[3] = {"topic", "partition", "table"};
    s->g_lag = kf_metrics_gauge(m, "kfleet_consumer_lag",
                                "Messages in the partition after the applied sync marker.", 3,
                                lag_labels, err);
    kf_gauge *status = kf_metrics_gauge(
        m, "kfleet_sink_sync_status",
        "1 while changes are applied, 0 while retrying (Postgres down or refusing).", 0, NULL, err);
    kf_counter *retries =
        kf_metrics_counter(m, "kfleet_sink_retries_total",
                           "Failed attempts to apply changes that were retried.", 0, NULL, err);
    if (!s->c_upserted || !s->c_deleted || !s->c_ddl || !s->c_dlq || !s->c_conv || !s->h_duration ||
        !s->g_lag || !status || !retries)
        return err->code;
    s->g_status = kf_gauge_child(status, 0, NULL, err);
    s->c_retries = kf_counter_child(retries, 0, NULL, err);
    if (!s->g_status || !s->c_retries)
        return err->code;
    return KF_OK;
}

int sink_open(sink *s, const kf_config *cfg, kf_error *err)
{
    int rc;
    if (kf_config_passthrough(cfg, "pg.", collect_pg, s) != 0)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not collect pg.* settings");
    if ((rc = kf_backoff_init(&s->backoff, (uint64_t)s->cfg->backoff_initial_ms,
                              (uint64_t)s->cfg->backoff_max_ms, 2.0, KF_JITTER_FULL,
                              kf_retry_seed(), err)) < 0)
        return KF_ERR_CONFIG;
    s->schema = s->cfg->target_schema;
    if ((rc = register_metrics(s, err)) < 0)
        return rc;
    /* librdkafka prefetches up to 64 MB by default. The sink holds two batches (one decoding,
     * one in flight) of sink.batch.max.bytes; 2 MB queued besides (librdkafka then fetches at
     * most that much at a time) keep it fed through a catch-up within its memory budget. The
     * byte limit, not a record count, stops fetching: librdkafka before 2.2 parks a fetcher for
     * up to a second once either is reached (the consumer's fetch nudge wakes it), and a count
     * reached first would park it with a quarter of that in the queue. */
    static const char *const defaults[] = {"group.id",
                                           SINK_PROGRAM,
                                           "enable.auto.commit",
                                           "true",
                                           "queued.max.messages.kbytes",
                                           "2048",
                                           "queued.min.messages",
                                           "1000000"};
    if ((rc = kf_app_kafka_kv(cfg, defaults, 4, &s->kafka, err)) < 0)
        return rc;
    s->group = kf_app_kv_get(&s->kafka, "group.id");
    /* the producer leaves out the consumer's keys itself (kf_kafka_property_ignored) */
    s->producer = kf_producer_new(s->kafka.kv, s->kafka.npairs, NULL, err);
    if (!s->producer)
        return err->code;
    if (!(s->dlq = kf_dlq_new(s->producer, s->cfg->app.topic_prefix, SINK_PROGRAM, err)))
        return err->code;
    if (!(s->serde = kf_serde_new(s->app->registry, err)) ||
        !(s->reader = kf_event_reader_new(s->serde, err)))
        return err->code;
    s->poll_max = POLL_MAX;
    s->inbox_cap = 2 * POLL_MAX;
    s->polled = calloc(s->poll_max, sizeof(*s->polled));
    s->inbox = calloc(s->inbox_cap, sizeof(*s->inbox));
    if (!s->polled || !s->inbox)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate the inbox");
    if ((rc = sink_pg_ensure(s, err)) < 0 || (rc = sink_meta_init(s, err)) < 0)
        return rc;
    kf_consumer_options opts = {
        .hooks = {.on_assign = on_assign, .on_revoke = on_revoke, .ctx = s}};
    if (!(s->consumer = kf_consumer_new(s->kafka.kv, s->kafka.npairs, &opts, err)))
        return err->code;
    return kf_consumer_subscribe(s->consumer, (const char *const *)s->cfg->topics.items,
                                 s->cfg->topics.count, err);
}

void sink_close(sink *s)
{
    kf_error err;
    sink_apply_free(s);
    if (s->consumer) {
        if (kf_consumer_close(s->consumer, &err) < 0)
            kf_log(KF_LOG_WARN, err.message, (char *)NULL);
        drop_pending(s);
        for (size_t i = 0; i < s->nparts; i++)
            atomic_store(&s->parts[i]->assigned, false);
        kf_consumer_destroy(s->consumer);
    }
    if (s->producer) {
        if (kf_producer_flush(s->producer, FLUSH_TIMEOUT, &err) < 0)
            kf_log(KF_LOG_WARN, "could not flush the dead-letter producer", "error", err.message,
                   (char *)NULL);
    }
    kf_dlq_destroy(s->dlq);
    kf_producer_destroy(s->producer);
    kf_event_reader_destroy(s->reader);
    kf_serde_destroy(s->serde);
    for (size_t i = 0; i < s->ntables; i++)
        sink_table_destroy(s->tables[i]);
    free(s->tables);
    free(s->polled);
    free(s->inbox);
    kf_buf_free(&s->sql);
    kf_buf_free(&s->chunk);
    if (s->conn)
        PQfinish(s->conn);
    free(s->pg_kv);
    kf_app_kv_free(&s->kafka);
}

/* Partitions are read by the lag gauge at scrape time: free them after the metrics. */
void sink_free_parts(sink *s)
{
    for (size_t i = 0; i < s->nparts; i++) {
        free(s->parts[i]->topic);
        free(s->parts[i]);
    }
    free(s->parts);
    s->parts = NULL;
    s->nparts = 0;
}
