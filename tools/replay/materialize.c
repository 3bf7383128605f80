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

static const char INSERT[] =
    "INSERT INTO kfleet_meta.quarantine (dlq_topic, dlq_partition, dlq_offset, origin_topic,"
    " origin_partition, origin_offset, record, record_key, record_value, record_ts,"
    " _error_reason, _violated_rule_id, error_code, error_stage, error_class, worker,"
    " replay_count) VALUES ($1, $2, $3, NULLIF($4, ''), $5, $6, $7::jsonb, $8, $9,"
    " to_timestamp($10::double precision / 1000), NULLIF($11, ''), NULLIF($12, ''),"
    " NULLIF($13, ''), NULLIF($14, ''), NULLIF($15, ''), NULLIF($16, ''), $17)"
    " ON CONFLICT (dlq_topic, dlq_partition, dlq_offset) DO NOTHING";

struct kf_quarantine {
    PGconn *pg;
    kf_serde *serde;
    kf_event_reader *reader;
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
    if (!(q->serde = kf_serde_new(registry, err)) ||
        !(q->reader = kf_event_reader_new(q->serde, err)))
        goto out_close;
    if (exec(q, DDL, "create kfleet_meta.quarantine", err) != KF_OK)
        goto out_close;
    PGresult *res = PQprepare(q->pg, "kf_quarantine_insert", INSERT, 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        pg_error(err, q->pg, res, "prepare the quarantine insert");
        PQclear(res);
        goto out_close;
    }
    PQclear(res);
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
    PQfinish(q->pg);
    free(q);
}

int kf_quarantine_begin(kf_quarantine *q, kf_error *err)
{
    return exec(q, "BEGIN", "begin a transaction", err);
}

int kf_quarantine_commit(kf_quarantine *q, kf_error *err)
{
    return exec(q, "COMMIT", "commit the quarantine rows", err);
}

void kf_quarantine_rollback(kf_quarantine *q)
{
    PQclear(PQexec(q->pg, "ROLLBACK"));
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

int kf_quarantine_add(kf_quarantine *q, const rd_kafka_message_t *m, kf_error *err)
{
    kf_dlq_info info;
    kf_dlq_info_get(m, &info);
    char part[16], off[24], opart[16], ooff[24], ts[24], replays[24];
    snprintf(part, sizeof(part), "%" PRId32, m->partition);
    snprintf(off, sizeof(off), "%" PRId64, m->offset);
    snprintf(opart, sizeof(opart), "%" PRId32, info.partition);
    snprintf(ooff, sizeof(ooff), "%" PRId64, info.offset);
    rd_kafka_timestamp_type_t tt;
    snprintf(ts, sizeof(ts), "%" PRId64, rd_kafka_message_timestamp(m, &tt));
    snprintf(replays, sizeof(replays), "%" PRId64, info.replay_count);
    char *json = record_json(q, m);
    const char *values[17] = {
        rd_kafka_topic_name(m->rkt),
        part,
        off,
        info.topic,
        info.partition >= 0 ? opart : NULL,
        info.offset >= 0 ? ooff : NULL,
        json,
        m->key,
        m->payload,
        ts,
        info.message,
        info.rule_id,
        info.reason,
        info.stage,
        info.error_class,
        info.worker,
        replays,
    };
    int lengths[17] = {0};
    int formats[17] = {0};
    lengths[7] = (int)m->key_len;
    formats[7] = 1;
    lengths[8] = (int)m->len;
    formats[8] = 1;
    PGresult *res = PQexecPrepared(q->pg, "kf_quarantine_insert", 17, values, lengths, formats, 0);
    free(json);
    int rc = KF_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = pg_error(err, q->pg, res, "insert a quarantine row");
    PQclear(res);
    return rc;
}
