/* Writes dead-letter records into kfleet_meta.quarantine: one row per DLQ record keyed by its
 * DLQ coordinates (so a repeated batch inserts nothing twice), with the decoded row as JSON. */
#include "materialize.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "kfleet/dlq.h"
#include "kfleet/event.h"
#include "kfleet/log.h"
#include "kfleet/pg.h"
#include "kfleet/serde.h"

static const char DDL[] =
    "CREATE SCHEMA IF NOT EXISTS kfleet_meta;"
    "CREATE TABLE IF NOT EXISTS kfleet_meta.quarantine ("
    " dlq_topic text NOT NULL, dlq_partition integer NOT NULL, dlq_offset bigint NOT NULL,"
    " origin_topic text, origin_partition integer, origin_offset bigint,"
    " record jsonb, record_key bytea, record_value bytea, record_ts timestamptz,"
    " _error_reason text, _violated_rule_id text, error_code text, error_stage text,"
    " error_class text, worker text, replay_count bigint NOT NULL DEFAULT 0,"
    " quarantined_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset))";

/* A batch is copied into a temporary table and moved with one INSERT ... SELECT, so a batch
 * costs a few round trips whatever its size; ON CONFLICT keeps a repeated batch harmless. */
static const char STAGE[] =
    "CREATE TEMP TABLE IF NOT EXISTS kf_quarantine_stage ("
    " dlq_topic text, dlq_partition integer, dlq_offset bigint, origin_topic text,"
    " origin_partition integer, origin_offset bigint, record text, record_key bytea,"
    " record_value bytea, record_ts_ms bigint, _error_reason text, _violated_rule_id text,"
    " error_code text, error_stage text, error_class text, worker text, replay_count bigint)"
    " ON COMMIT DELETE ROWS";

static const char COPY[] = "COPY kf_quarantine_stage FROM STDIN";

static const char MOVE[] =
    "INSERT INTO kfleet_meta.quarantine (dlq_topic, dlq_partition, dlq_offset, origin_topic,"
    " origin_partition, origin_offset, record, record_key, record_value, record_ts,"
    " _error_reason, _violated_rule_id, error_code, error_stage, error_class, worker,"
    " replay_count) SELECT dlq_topic, dlq_partition, dlq_offset, origin_topic,"
    " origin_partition, origin_offset, record::jsonb, record_key, record_value,"
    " to_timestamp(record_ts_ms / 1000.0), _error_reason, _violated_rule_id, error_code,"
    " error_stage, error_class, worker, replay_count FROM kf_quarantine_stage"
    " ON CONFLICT (dlq_topic, dlq_partition, dlq_offset) DO NOTHING";

struct kf_quarantine {
    PGconn *pg;
    kf_serde *serde;
    kf_event_reader *reader;
    kf_buf rows; /* COPY text of the batch */
    size_t nrows;
    uint64_t inserted;
};

static int pg_error(kf_error *err, PGconn *pg, PGresult *res, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    bool retriable = !state || strncmp(state, "08", 2) == 0 || strcmp(state, "40001") == 0 ||
                     strcmp(state, "40P01") == 0 || strcmp(state, "57P01") == 0;
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(pg);
    char clean[400];
    snprintf(clean, sizeof(clean), "%s", msg ? msg : "");
    size_t n = strlen(clean);
    while (n && (clean[n - 1] == '\n' || clean[n - 1] == ' '))
        clean[--n] = '\0';
    return kf_error_set(err, KF_ERR_PG, retriable, "could not %s: %s", what, clean);
}

static int exec(kf_quarantine *q, const char *sql, const char *what, kf_error *err)
{
    PGresult *res = PQexec(q->pg, sql);
    int rc = KF_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = pg_error(err, q->pg, res, what);
    PQclear(res);
    return rc;
}

/* Server notices ("relation already exists, skipping") are debug lines, not stderr noise. */
static void on_notice(void *ctx, const char *message)
{
    (void)ctx;
    char clean[512];
    snprintf(clean, sizeof(clean), "%s", message);
    clean[strcspn(clean, "\n")] = '\0';
    kf_log(KF_LOG_DEBUG, "postgres notice", "message", clean, (char *)NULL);
}

kf_quarantine *kf_quarantine_open(const char *const *keys, const char *const *values,
                                  kf_registry *registry, kf_error *err)
{
    kf_quarantine *q = calloc(1, sizeof(*q));
    if (!q) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate the quarantine writer");
        return NULL;
    }
    q->pg = PQconnectdbParams(keys, values, 1);
    if (!q->pg || PQstatus(q->pg) != CONNECTION_OK) {
        pg_error(err, q->pg, NULL, "connect to PostgreSQL");
        goto out_close;
    }
    PQsetNoticeProcessor(q->pg, on_notice, NULL);
    if (!(q->serde = kf_serde_new(registry, err)) ||
        !(q->reader = kf_event_reader_new(q->serde, err)))
        goto out_close;
    if (exec(q, DDL, "create kfleet_meta.quarantine", err) != KF_OK)
        goto out_close;
    if (exec(q, STAGE, "create the quarantine staging table", err) != KF_OK)
        goto out_close;
    return q;

out_close:
    kf_quarantine_close(q);
    return NULL;
}

void kf_quarantine_close(kf_quarantine *q)
{
    if (!q)
        return;
    kf_event_reader_destroy(q->reader);
    kf_serde_destroy(q->serde);
    kf_buf_free(&q->rows);
    PQfinish(q->pg);
    free(q);
}

int kf_quarantine_begin(kf_quarantine *q, kf_error *err)
{
    (void)err;
    q->rows.len = 0;
    q->nrows = 0;
    return KF_OK;
}

int kf_quarantine_commit(kf_quarantine *q, kf_error *err)
{
    if (q->nrows == 0)
        return KF_OK;
    int rc = exec(q, "BEGIN", "begin a transaction", err);
    if (rc != KF_OK)
        return rc;
    PGresult *res = PQexec(q->pg, COPY);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        rc = pg_error(err, q->pg, res, "start copying quarantine rows");
        PQclear(res);
        goto out_rollback;
    }
    PQclear(res);
    if ((rc = kf_pg_copy_send(q->pg, q->rows.data, q->rows.len, NULL, err)) != KF_OK)
        goto out_rollback;
    res = PQexec(q->pg, MOVE);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = pg_error(err, q->pg, res, "insert quarantine rows");
        PQclear(res);
        goto out_rollback;
    }
    uint64_t added = strtoull(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    if ((rc = exec(q, "COMMIT", "commit the quarantine rows", err)) != KF_OK)
        goto out_rollback;
    q->inserted += added;
    q->rows.len = 0;
    q->nrows = 0;
    return KF_OK;

out_rollback:
    PQclear(PQexec(q->pg, "ROLLBACK"));
    return rc;
}

void kf_quarantine_rollback(kf_quarantine *q)
{
    q->rows.len = 0;
    q->nrows = 0;
}

uint64_t kf_quarantine_inserted(const kf_quarantine *q)
{
    return q->inserted;
}

static json_t *cell_json(const kf_cell *c, const kf_column *col)
{
    switch (c->kind) {
    case KF_CELL_NULL:
        return json_null();
    case KF_CELL_INT:
        return json_integer((json_int_t)c->v.i);
    case KF_CELL_DOUBLE:
        return json_real(c->v.d);
    case KF_CELL_BOOL:
        return json_boolean(c->v.b);
    case KF_CELL_STRING:
        return json_stringn(c->v.s.ptr, c->v.s.len);
    case KF_CELL_BYTES: {
        char buf[1100];
        if (col && col->type == KF_COL_DECIMAL &&
            kf_decimal_format((const uint8_t *)c->v.s.ptr, c->v.s.len, col->scale, buf, sizeof(buf),
                              NULL) == KF_OK)
            return json_string(buf);
        /* raw bytes as PostgreSQL's hex form */
        size_t n = c->v.s.len;
        char *hex = malloc(2 * n + 3);
        if (!hex)
            return NULL;
        hex[0] = '\\';
        hex[1] = 'x';
        for (size_t i = 0; i < n; i++)
            snprintf(hex + 2 + 2 * i, 3, "%02x", (unsigned char)c->v.s.ptr[i]);
        json_t *s = json_string(hex);
        free(hex);
        return s;
    }
    }
    return json_null();
}

/* The record's columns as JSON text (the after image, or the before image of a delete), or
 * NULL when the value cannot be decoded. Caller frees. */
static char *record_json(kf_quarantine *q, const rd_kafka_message_t *m)
{
    if (!m->payload)
        return NULL;
    kf_event ev;
    kf_error err;
    if (kf_event_reader_decode(q->reader, m->payload, m->len, &ev, &err) != KF_OK)
        return NULL;
    const kf_cell *cells = ev.after ? ev.after : ev.before;
    if (!cells || !ev.table)
        return NULL;
    json_t *o = json_object();
    if (!o)
        return NULL;
    for (size_t i = 0; i < ev.ncols; i++) {
        const kf_column *col = kf_table_column(ev.table, i);
        json_t *v = cell_json(&cells[i], col);
        if (!v || json_object_set_new(o, col->name, v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

/* Appends a text field (NULL or "" becomes \N) and the separator. */
static int put_text(kf_buf *b, const char *s, char sep, kf_error *err)
{
    int rc = s && *s ? kf_pg_copy_escape(b, s, strlen(s), err) : kf_pg_buf_puts(b, "\\N");
    if (rc == KF_OK)
        rc = kf_pg_buf_append(b, &sep, 1);
    return rc;
}

/* Appends bytes as a bytea in COPY text form (\\x hex; NULL data becomes \N). */
static int put_bytes(kf_buf *b, const void *data, size_t len, char sep)
{
    static const char hex[] = "0123456789abcdef";
    if (!data)
        return kf_pg_buf_printf(b, "\\N%c", sep);
    if (kf_buf_reserve(b, b->len + 2 * len + 8) != KF_OK)
        return KF_ERR_NOMEM;
    int rc = kf_pg_buf_puts(b, "\\\\x");
    const uint8_t *p = data;
    for (size_t i = 0; rc == KF_OK && i < len; i++) {
        char two[2] = {hex[p[i] >> 4], hex[p[i] & 15]};
        rc = kf_pg_buf_append(b, two, 2);
    }
    if (rc == KF_OK)
        rc = kf_pg_buf_append(b, &sep, 1);
    return rc;
}

int kf_quarantine_add(kf_quarantine *q, const rd_kafka_message_t *m, kf_error *err)
{
    kf_dlq_info info;
    kf_dlq_info_get(m, &info);
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    char *json = record_json(q, m);
    /* jsonb cannot hold a NUL character: such a record keeps only its raw value */
    if (json && strstr(json, "\\u0000")) {
        free(json);
        json = NULL;
    }
    kf_buf *b = &q->rows;
    size_t mark = b->len;
    int rc = put_text(b, rd_kafka_topic_name(m->rkt), '\t', err);
    if (rc == KF_OK)
        rc = kf_pg_buf_printf(b, "%" PRId32 "\t%" PRId64 "\t", m->partition, m->offset);
    if (rc == KF_OK)
        rc = put_text(b, info.topic, '\t', err);
    if (rc == KF_OK && info.partition >= 0)
        rc = kf_pg_buf_printf(b, "%" PRId32 "\t", info.partition);
    else if (rc == KF_OK)
        rc = kf_pg_buf_puts(b, "\\N\t");
    if (rc == KF_OK && info.offset >= 0)
        rc = kf_pg_buf_printf(b, "%" PRId64 "\t", info.offset);
    else if (rc == KF_OK)
        rc = kf_pg_buf_puts(b, "\\N\t");
    if (rc == KF_OK)
        rc = put_text(b, json, '\t', err);
    if (rc == KF_OK)
        rc = put_bytes(b, m->key, m->key_len, '\t');
    if (rc == KF_OK)
        rc = put_bytes(b, m->payload, m->len, '\t');
    if (rc == KF_OK && ts >= 0)
        rc = kf_pg_buf_printf(b, "%" PRId64 "\t", ts);
    else if (rc == KF_OK)
        rc = kf_pg_buf_puts(b, "\\N\t");
    const char *texts[] = {info.message, info.rule_id,     info.reason,
                           info.stage,   info.error_class, info.worker};
    for (size_t i = 0; rc == KF_OK && i < sizeof(texts) / sizeof(texts[0]); i++)
        rc = put_text(b, texts[i], '\t', err);
    if (rc == KF_OK)
        rc = kf_pg_buf_printf(b, "%" PRId64 "\n", info.replay_count);
    free(json);
    if (rc != KF_OK) {
        b->len = mark;
        if (rc == KF_ERR_NOMEM || rc == KF_ERR_FULL)
            return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate the quarantine rows");
        return rc;
    }
    q->nrows++;
    return KF_OK;
}
