/* Batches per destination table: decoding records into COPY lines (last change per key wins),
 * and applying a batch in one transaction — staging COPY, one upsert, one delete, the sync
 * markers — isolating records Postgres refuses by bisecting the batch under savepoints. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfleet/log.h"
#include "kfleet/pg.h"
#include "sink.h"

/* batches that go the staging way after a straight COPY met a key that existed */
#define FAST_SKIP_BATCHES 32
/* batches the loop applies itself after one in flight failed */
#define SYNC_SKIP_BATCHES 2

#define GROW_ERR(rc, err) kf_error_set((err), (rc), false, "could not grow a buffer")

static const kf_cell null_cell = {.kind = KF_CELL_NULL};

/* One debug line per applied batch: how it went in and where its time went (filling it,
 * including any wait for the batch before; applying it). */
static void log_batch(const char *msg, const sink_table *t, const char *way, size_t nrecs,
                      int64_t first_ms, int64_t t0, int64_t done_ms)
{
    if (!kf_log_enabled(KF_LOG_DEBUG))
        return;
    char n[24], fill[24], apply[24];
    snprintf(n, sizeof(n), "%zu", nrecs);
    snprintf(fill, sizeof(fill), "%" PRId64, t0 - first_ms);
    snprintf(apply, sizeof(apply), "%" PRId64, done_ms - t0);
    kf_log(KF_LOG_DEBUG, msg, "table", t->name, "way", way, "records", n, "fill_ms", fill,
           "apply_ms", apply, (char *)NULL);
}

/* ---- partitions ---- */

static sink_part *part_of(sink *s, const rd_kafka_message_t *msg, kf_error *err)
{
    const char *topic = rd_kafka_topic_name(msg->rkt);
    for (size_t i = 0; i < s->nparts; i++) {
        sink_part *p = s->parts[i];
        if (p->partition == msg->partition && strcmp(p->topic, topic) == 0)
            return p;
    }
    kf_error_set(err, KF_ERR_STATE, false, "message from unassigned partition %s [%d]", topic,
                 (int)msg->partition);
    return NULL;
}

/* ---- batch bookkeeping ---- */

static uint32_t hash_bytes(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    /* FNV's low bits (the ones the mask keeps) depend only on the low bits of the input, and
     * decimal keys differ in few of them: mix the high bits down (murmur3's finalizer) */
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

/* Remembers record idx as the latest change of its key; an earlier live row of the same key
 * stops being live. */
static void hash_put(sink_table *t, size_t idx)
{
    sink_rec *r = &t->recs[idx];
    const uint8_t *key = t->rows.data + r->off;
    size_t mask = t->hash_cap - 1;
    for (size_t h = hash_bytes(key, r->keylen) & mask;; h = (h + 1) & mask) {
        int32_t other = t->hash[h];
        if (other < 0) {
            t->hash[h] = (int32_t)idx;
            return;
        }
        sink_rec *o = &t->recs[other];
        if (o->keylen == r->keylen && memcmp(t->rows.data + o->off, key, r->keylen) == 0) {
            o->live = false;
            t->hash[h] = (int32_t)idx;
            return;
        }
    }
}

/* Doubles the key hash of a batch growing past the table's batch size (catch-up). */
static int hash_grow(sink_table *t, kf_error *err)
{
    size_t ncap = t->hash_cap * 2;
    int32_t *h = malloc(ncap * sizeof(*h));
    if (!h)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not grow a batch");
    free(t->hash);
    t->hash = h;
    t->hash_cap = ncap;
    memset(t->hash, 0xff, ncap * sizeof(*t->hash));
    /* only the latest row of each key is live, so re-adding the live rows rebuilds the map */
    for (size_t i = 0; i < t->nrecs; i++)
        if (t->recs[i].live && t->recs[i].len > 0)
            hash_put(t, i);
    return KF_OK;
}

static int add_rec(sink_table *t, rd_kafka_message_t *msg, sink_part *part, size_t off, size_t len,
                   size_t keylen, kf_error *err)
{
    if (t->hash_cap < 2 * (t->nrecs + 1) && hash_grow(t, err) < 0)
        return err->code;
    if (t->nrecs == t->cap_recs) {
        size_t ncap = t->cap_recs ? t->cap_recs * 2 : 64;
        sink_rec *r = realloc(t->recs, ncap * sizeof(*r));
        if (!r)
            return kf_error_set(err, KF_ERR_NOMEM, false, "could not grow a batch");
        t->recs = r;
        t->cap_recs = ncap;
    }
    size_t idx = t->nrecs++;
    t->recs[idx] = (sink_rec){msg, part, off, len, keylen, len > 0};
    t->msg_bytes += msg->len + msg->key_len;
    if (t->nrecs == 1)
        t->first_ms = kf_retry_now_ms();
    size_t k;
    for (k = 0; k < t->nparts; k++)
        if (t->parts[k].part == part)
            break;
    if (k == t->nparts) {
        if (t->nparts == t->cap_parts) {
            size_t ncap = t->cap_parts ? t->cap_parts * 2 : 8;
            sink_batch_part *p = realloc(t->parts, ncap * sizeof(*p));
            if (!p)
                return kf_error_set(err, KF_ERR_NOMEM, false, "could not grow a batch");
            t->parts = p;
            t->cap_parts = ncap;
        }
        t->parts[t->nparts++] = (sink_batch_part){part, 0};
    }
    t->parts[k].next = msg->offset + 1;
    part->seen = msg->offset + 1;
    /* last change per key wins */
    if (len > 0)
        hash_put(t, idx);
    return KF_OK;
}

static void clear_batch(sink_table *t)
{
    for (size_t i = 0; i < t->nrecs; i++)
        rd_kafka_message_destroy(t->recs[i].msg);
    t->nrecs = 0;
    t->rows.len = 0;
    t->nparts = 0;
    t->truncate = false;
    t->has_del = false;
    t->errors.len = 0;
    t->nerrors = 0;
    t->msg_bytes = 0;
    memset(t->hash, 0xff, t->hash_cap * sizeof(*t->hash));
}

/* Whether more records are already waiting: unread ones in the inbox, a last poll that filled
 * its room, or an assigned partition of t whose high watermark lies beyond the records taken
 * from it (whether or not the batch holds any of them: a fetcher librdkafka parked brings
 * them a little later). */
static bool backlog(const sink *s, const sink_table *t)
{
    if (s->inbox_waiting > 0 || s->poll_full)
        return true;
    for (size_t k = 0; k < s->nparts; k++) {
        const sink_part *p = s->parts[k];
        if (p->table != t || !atomic_load(&p->assigned))
            continue;
        int64_t at = atomic_load(&p->marker);
        if (p->seen > at)
            at = p->seen;
        int64_t lo, hi;
        if (rd_kafka_get_watermark_offsets(p->rk, p->topic, p->partition, &lo, &hi) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            hi > at && hi > lo)
            return true;
    }
    return false;
}

/* Whether t's batch is to be applied before it takes another record. At sink.batch.size it is,
 * unless a backlog waits: then it grows up to sink.batch.max.rows / .max.bytes, so a catch-up
 * commits (and flushes the WAL) rarely while a trickle is still applied at once. */
static bool batch_full(const sink *s, const sink_table *t)
{
    if (t->nrecs >= (size_t)t->batch_max ||
        (int64_t)(t->rows.len + t->msg_bytes) >= s->cfg->batch_max_bytes)
        return true;
    return t->nrecs >= (size_t)t->batch_size && !backlog(s, t);
}

void sink_apply_drop_all(sink *s)
{
    sink_apply_wait(s);
    for (size_t i = 0; i < s->ntables; i++) {
        clear_batch(s->tables[i]);
        sink_table_unbind(s->tables[i]);
    }
}

/* ---- quarantine ---- */

static int quarantine(sink *s, sink_table *t, const rd_kafka_message_t *msg, const char *stage,
                      const char *cls, const char *reason, const char *message, kf_error *err)
{
    kf_dlq_reason why = {
        .stage = stage, .error_class = cls, .message = message, .rule_id = NULL, .reason = reason};
    int rc = kf_dlq_send(s->dlq, msg, &why, err);
    if (rc < 0)
        return rc;
    s->n_dlq++;
    if (t)
        kf_counter_inc(t->m.dlq, 1);
    char off[24];
    snprintf(off, sizeof(off), "%" PRId64, msg->offset);
    kf_log(KF_LOG_WARN, "record sent to the dead-letter queue", "topic",
           rd_kafka_topic_name(msg->rkt), "offset", off, "reason", reason, "error", message,
           (char *)NULL);
    return KF_OK;
}

/* Records one value that could not be converted (stored as null) for kfleet_meta.error_log. */
static int log_conversion(sink *s, sink_table *t, const rd_kafka_message_t *msg, const char *column,
                          const char *message, kf_error *err)
{
    sink_apply_wait(s); /* quoting reads the connection */
    kf_buf *b = &t->errors;
    int rc;
    if ((rc = kf_pg_buf_puts(b, t->nerrors ? ", ('" : "('")) < 0 ||
        (rc = kf_pg_buf_puts(b, SINK_PROGRAM "', ")) < 0 ||
        (rc = sink_sql_literal(s, b, s->schema, strlen(s->schema), err)) < 0 ||
        (rc = kf_pg_buf_puts(b, ", ")) < 0 ||
        (rc = sink_sql_literal(s, b, t->name, strlen(t->name), err)) < 0 ||
        (rc = kf_pg_buf_puts(b, ", ")) < 0 ||
        (rc = sink_sql_literal(s, b, column, strlen(column), err)) < 0 ||
        (rc = kf_pg_buf_puts(b, ", ")) < 0 ||
        (rc = sink_sql_literal(s, b, rd_kafka_topic_name(msg->rkt),
                               strlen(rd_kafka_topic_name(msg->rkt)), err)) < 0 ||
        (rc = kf_pg_buf_printf(b, ", %d, %" PRId64 ", ", (int)msg->partition, msg->offset)) < 0 ||
        (rc = sink_sql_literal(s, b, message, strlen(message), err)) < 0 ||
        (rc = kf_pg_buf_puts(b, ")")) < 0)
        return rc < 0 && err->code ? rc : GROW_ERR(rc, err);
    t->nerrors++;
    kf_counter_inc(t->m.conv_errors, 1);
    kf_log(KF_LOG_WARN, "value could not be converted, stored as null", "table", t->name, "column",
           column, "error", message, (char *)NULL);
    return KF_OK;
}

/* ---- encoding ---- */

/* Appends the COPY row of one change: key fields, the other fields (null for a delete), and
 * the _kf_del flag; a text line, or a binary tuple without its field count (the sender writes
 * it: one more field than the destination has). cells[p] is the value for staging position
 * p (NULL entries: null). On a key that cannot be encoded, the row is removed and
 * KF_ERR_INVALID returned. */
static int encode_line(sink *s, sink_table *t, const rd_kafka_message_t *msg,
                       const kf_column *const *cols, const kf_cell *const *cells, bool del,
                       size_t *keylen, kf_error *err)
{
    size_t start = t->rows.len;
    int rc;
    for (size_t p = 0; p < t->ncols; p++) {
        if (p > 0 && !t->binary && (rc = kf_pg_buf_append(&t->rows, "\t", 1)) < 0)
            return GROW_ERR(rc, err);
        if (p == t->npk)
            *keylen = t->rows.len - start;
        const kf_cell *cell = cells[p] ? cells[p] : &null_cell;
        if (del && p >= t->npk && s->cfg->deletion == SINK_DELETE_HARD)
            cell = &null_cell;
        const kf_column *col = cols[p] ? cols[p] : kf_table_column(t->target, 0);
        size_t before = t->rows.len;
        kf_error cerr;
        rc = t->binary ? kf_pg_copy_bin_cell(&t->rows, t->bin[p], col, cell, &cerr)
                       : kf_pg_copy_cell(&t->rows, col, cell, &cerr);
        if (rc == KF_ERR_INVALID) {
            t->rows.len = before;
            if (p < t->npk) {
                t->rows.len = start;
                *err = cerr;
                return KF_ERR_INVALID;
            }
            const kf_column *dc = kf_table_column(t->target, (size_t)t->stage_col[p]);
            if ((rc = log_conversion(s, t, msg, dc->name, cerr.message, err)) < 0)
                return rc;
            rc = t->binary ? kf_pg_copy_bin_cell(&t->rows, t->bin[p], col, &null_cell, &cerr)
                           : kf_pg_buf_append(&t->rows, "\\N", 2);
        }
        if (rc < 0)
            return GROW_ERR(rc, err);
    }
    if (t->ncols == t->npk)
        *keylen = t->rows.len - start;
    if (t->binary)
        rc = kf_pg_buf_append(&t->rows, del ? "\0\0\0\1\1" : "\0\0\0\1\0", 5);
    else
        rc = kf_pg_buf_puts(&t->rows, del ? "\tt\n" : "\tf\n");
    if (rc < 0)
        return GROW_ERR(rc, err);
    t->has_del |= del;
    return KF_OK;
}

/* Bytes of the _kf_del flag at the end of a row ("\tf\n", or the binary field), which COPY
 * straight into the destination leaves out (a text line keeps its newline). */
#define FLAG_TEXT   3
#define FLAG_BINARY 5
/* COPY data is sent in CopyData messages of about this size, not one per row */
#define CHUNK_BYTES 65536

static int chunk_flush(PGconn *conn, kf_buf *chunk, kf_error *err)
{
    if (chunk->len > 0 && PQputCopyData(conn, (const char *)chunk->data, (int)chunk->len) != 1) {
        kf_pg_result_error(err, conn, NULL, "could not send COPY data");
        err->retriable = true;
        return KF_ERR_PG;
    }
    chunk->len = 0;
    return KF_OK;
}

static int chunk_put(PGconn *conn, kf_buf *chunk, const void *p, size_t n, kf_error *err)
{
    int rc;
    if (chunk->len > 0 && chunk->len + n > CHUNK_BYTES && (rc = chunk_flush(conn, chunk, err)) < 0)
        return rc;
    if ((rc = kf_pg_buf_append(chunk, p, n)) < 0)
        return GROW_ERR(rc, err);
    return KF_OK;
}

/* The rows a COPY sends: the live ones among recs[idx[lo..hi)] (recs[lo..hi) when idx is
 * NULL), taken from rows, binary tuples of ncols fields plus the flag or text lines. */
typedef struct copy_rows {
    const sink_rec *recs;
    const size_t *idx;
    size_t lo, hi;
    const kf_buf *rows;
    size_t ncols;
    bool binary;
} copy_rows;

/* Sends the rows as COPY data (the connection is in COPY IN), without the flag field when
 * strip (COPY straight into the destination); *n gets the number of rows sent. The caller
 * ends the COPY. */
static int send_rows(PGconn *conn, kf_buf *chunk, const copy_rows *cr, bool strip, long *n,
                     kf_error *err)
{
    int rc;
    chunk->len = 0;
    *n = 0;
    if (cr->binary &&
        (rc = chunk_put(conn, chunk, kf_pg_copy_bin_header, KF_PG_COPY_BIN_HEADER_LEN, err)) < 0)
        return rc;
    size_t nfields = cr->ncols + (strip ? 0 : 1);
    const uint8_t count[2] = {(uint8_t)(nfields >> 8), (uint8_t)nfields};
    for (size_t k = cr->lo; k < cr->hi; k++) {
        const sink_rec *r = &cr->recs[cr->idx ? cr->idx[k] : k];
        if (!r->live)
            continue;
        const uint8_t *line = cr->rows->data + r->off;
        size_t len = r->len;
        if (cr->binary) {
            if ((rc = chunk_put(conn, chunk, count, 2, err)) < 0 ||
                (rc = chunk_put(conn, chunk, line, strip ? len - FLAG_BINARY : len, err)) < 0)
                return rc;
        } else if (strip) {
            if ((rc = chunk_put(conn, chunk, line, len - FLAG_TEXT, err)) < 0 ||
                (rc = chunk_put(conn, chunk, "\n", 1, err)) < 0)
                return rc;
        } else if ((rc = chunk_put(conn, chunk, line, len, err)) < 0) {
            return rc;
        }
        (*n)++;
    }
    if (cr->binary && (rc = chunk_put(conn, chunk, KF_PG_COPY_BIN_TRAILER, 2, err)) < 0)
        return rc;
    return chunk_flush(conn, chunk, err);
}

/* Postgres refused binary COPY data as not of its column's binary form (SQLSTATE 22P03): the
 * sink's idea of a column type was wrong. Never a record's fault, so never isolated. */
static bool binary_refused(const char *state)
{
    return strcmp(state, "22P03") == 0;
}

/* Turns binary COPY off for t (the loop's thread only) and fails the batch so that it is read
 * again from the sync markers and encoded as text. */
static int refuse_binary(sink_table *t, kf_error *err)
{
    t->bin_off = true;
    sink_table_unbind(t);
    kf_log(KF_LOG_WARN, "Postgres refused binary COPY data, sending text from now on", "table",
           t->name, "error", err->message, (char *)NULL);
    return kf_error_set(err, KF_ERR_STATE, false,
                        "table \"%s\" refused binary COPY data; re-reading from the sync markers",
                        t->name);
}

/* ---- applying a batch ---- */

/* Sends sql (several statements) and reads every result. counts[i] gets the affected rows of
 * the i-th statement (up to ncounts). Stops at a COPY IN (sets *copy). On error returns
 * KF_ERR_PG with *failed_at = the failing statement's index and *state its SQLSTATE. */
static int run(sink *s, const char *sql, long *counts, size_t ncounts, bool *copy, int *failed_at,
               char *state, kf_error *err)
{
    if (copy)
        *copy = false;
    *failed_at = -1;
    state[0] = '\0';
    if (!PQsendQuery(s->conn, sql))
        return kf_pg_result_error(err, s->conn, NULL, "could not send a batch statement");
    int rc = KF_OK;
    size_t i = 0;
    PGresult *res;
    while ((res = PQgetResult(s->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_COPY_IN) {
            PQclear(res);
            if (copy)
                *copy = true;
            return rc;
        }
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            if (i < ncounts)
                counts[i] = atol(PQcmdTuples(res));
        } else if (rc == KF_OK) {
            rc = kf_pg_result_error(err, s->conn, res, "could not apply a batch");
            *failed_at = (int)i;
            snprintf(state, 6, "%s", kf_pg_sqlstate(res));
        }
        i++;
        PQclear(res);
    }
    return rc;
}

static void rollback(sink *s)
{
    if (PQstatus(s->conn) == CONNECTION_OK && PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        PQclear(PQexec(s->conn, "ROLLBACK"));
}

static bool is_data_error(const char *state)
{
    return kf_pg_classify(state) == KF_PG_DATA;
}

/* The staging position of the column a COPY error's context names ("COPY kf_stage_0, line 3,
 * column qty: ..."), and the line; -1 when the context names no column of the staging table. */
static int copy_error_at(const sink_table *t, const char *context, unsigned long *line)
{
    /* the COPY line of the context; others come first (json's "JSON data, line 1: ...") */
    const char *copy = context;
    while (copy && strncmp(copy, "COPY ", 5) != 0) {
        copy = strchr(copy, '\n');
        if (copy)
            copy++;
    }
    const char *at = copy ? strstr(copy, ", line ") : NULL;
    if (!at)
        return -1;
    char *end;
    *line = strtoul(at + 7, &end, 10);
    if (*line == 0 || strncmp(end, ", column ", 9) != 0)
        return -1;
    const char *name = end + 9;
    int best = -1;
    size_t best_len = 0;
    for (size_t p = 0; p < t->ncols; p++) {
        const char *col = kf_table_column(t->target, (size_t)t->stage_col[p])->name;
        size_t n = strlen(col);
        if (n > best_len && strncmp(name, col, n) == 0 && (name[n] == ':' || name[n] == '\0')) {
            best = (int)p;
            best_len = n;
        }
    }
    return best;
}

/* Rewrites the COPY row of r with field p null (appending the new row to the row buffer). */
static int null_field(sink_table *t, sink_rec *r, size_t p, kf_error *err)
{
    int rc = kf_buf_reserve(&t->rows, t->rows.len + r->len + 4);
    if (rc < 0)
        return GROW_ERR(rc, err);
    const char *line = (const char *)t->rows.data + r->off;
    size_t from = 0, to;
    if (t->binary) {
        /* fields are a 4-byte big-endian length (-1: null) and that many bytes */
        const uint8_t *u = (const uint8_t *)line;
        for (size_t k = 0;; k++) {
            uint32_t n = (uint32_t)u[from] << 24 | (uint32_t)u[from + 1] << 16 |
                         (uint32_t)u[from + 2] << 8 | u[from + 3];
            to = from + 4 + (n == UINT32_MAX ? 0 : n);
            if (k == p)
                break;
            from = to;
        }
    } else {
        for (size_t k = 0; k < p; k++)
            from = (size_t)((const char *)memchr(line + from, '\t', r->len - from) - line) + 1;
        const char *tab = memchr(line + from, '\t', r->len - from);
        to = tab ? (size_t)(tab - line) : r->len - 1;
    }
    size_t off = t->rows.len;
    if ((rc = kf_pg_buf_append(&t->rows, line, from)) < 0 ||
        (rc = kf_pg_buf_append(&t->rows, t->binary ? "\377\377\377\377" : "\\N",
                               t->binary ? 4 : 2)) < 0 ||
        (rc = kf_pg_buf_append(&t->rows, (const char *)t->rows.data + r->off + to, r->len - to)) <
            0)
        return GROW_ERR(rc, err);
    r->off = off;
    r->len = t->rows.len - off;
    return KF_OK;
}

/* A COPY into staging failed on a value Postgres refused to convert (class 22, with the line
 * and column in the error's context): a non-key value becomes null (logged, counted in
 * error_log); a key value sends its record to the DLQ. Returns 1 when the record was fixed
 * or quarantined, so the COPY can run again, 0 when the error is not of that kind. */
static int fix_copy_error(sink *s, sink_table *t, const size_t *idx, size_t lo, size_t hi,
                          const PGresult *res, kf_error *err)
{
    const char *state = kf_pg_sqlstate(res);
    if (strncmp(state, "22", 2) != 0 || binary_refused(state))
        return 0;
    unsigned long line = 0;
    int p = copy_error_at(t, PQresultErrorField(res, PG_DIAG_CONTEXT), &line);
    if (p < 0)
        return 0;
    sink_rec *r = NULL;
    unsigned long n = 0;
    for (size_t k = lo; k < hi && !r; k++) {
        sink_rec *c = &t->recs[idx ? idx[k] : k];
        if (c->live && ++n == line)
            r = c;
    }
    if (!r)
        return 0;
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    char msg[512];
    snprintf(msg, sizeof(msg), "%s (SQLSTATE %s)", primary ? primary : "value refused", state);
    int rc;
    if ((size_t)p < t->npk) {
        if ((rc = quarantine(s, t, r->msg, "sink", "ConversionError", "unconvertible_key", msg,
                             err)) < 0)
            return rc;
        r->live = false;
        return 1;
    }
    const kf_column *dc = kf_table_column(t->target, (size_t)t->stage_col[p]);
    if ((rc = log_conversion(s, t, r->msg, dc->name, msg, err)) < 0 ||
        (rc = null_field(t, r, (size_t)p, err)) < 0)
        return rc;
    return 1;
}

/* Copies the live rows among idx[lo, hi) (all live rows when idx is NULL) into staging and runs
 * the upsert and the delete, under a savepoint. A value Postgres refuses to convert is fixed
 * (fix_copy_error) and the COPY repeated. With truncate the staging table is emptied first
 * (isolating: earlier ranges left their rows in it). Another data error rolls back to the
 * savepoint (KF_ERR_PG with *data set). */
static int rows_step(sink *s, sink_table *t, const size_t *idx, size_t lo, size_t hi, bool truncate,
                     long *ups, long *dels, bool *data, kf_error *err)
{
    char stage[32], state[8];
    snprintf(stage, sizeof(stage), "kf_stage_%zu", t->index);
    kf_buf *q = &s->sql;
    int rc, failed;
    bool copy;
    long counts[4] = {0};
    *data = false;
    for (;;) {
        q->len = 0;
        const char *fmt = t->binary ? " (FORMAT binary)" : "";
        if (truncate)
            rc = kf_pg_buf_printf(q, "SAVEPOINT kf_rows; TRUNCATE %s; COPY %s FROM STDIN%s", stage,
                                  stage, fmt);
        else
            rc = kf_pg_buf_printf(q, "SAVEPOINT kf_rows; COPY %s FROM STDIN%s", stage, fmt);
        if (rc < 0)
            return GROW_ERR(rc, err);
        rc = run(s, (const char *)q->data, counts, 4, &copy, &failed, state, err);
        if (rc < 0 || !copy)
            return rc < 0 ? rc : kf_error_set(err, KF_ERR_PG, true, "COPY did not start");
        PGresult *res = NULL;
        copy_rows cr = {t->recs, idx, lo, hi, &t->rows, t->ncols, t->binary};
        long sent;
        if ((rc = send_rows(s->conn, &s->chunk, &cr, false, &sent, err)) < 0)
            return rc;
        rc = kf_pg_copy_send(s->conn, "", 0, &res, err);
        if (rc == KF_OK)
            break;
        snprintf(state, sizeof(state), "%s", kf_pg_sqlstate(res));
        int fixed = fix_copy_error(s, t, idx, lo, hi, res, err);
        PQclear(res);
        if (fixed < 0)
            return fixed;
        if (binary_refused(state))
            return refuse_binary(t, err);
        if (fixed == 0)
            goto out_failed;
        if (PQstatus(s->conn) != CONNECTION_OK)
            return kf_pg_result_error(err, s->conn, NULL, "could not copy rows");
        PGresult *rb = PQexec(s->conn, "ROLLBACK TO SAVEPOINT kf_rows");
        bool ok = PQresultStatus(rb) == PGRES_COMMAND_OK;
        if (!ok)
            kf_pg_result_error(err, s->conn, rb, "could not roll back to a savepoint");
        PQclear(rb);
        if (!ok)
            return KF_ERR_PG;
    }
    q->len = 0;
    /* without a delete line in the batch the DELETE ... USING would only scan staging */
    bool deletes = t->has_del && t->sql_delete.len > 0;
    if ((rc = kf_pg_buf_puts(q, (const char *)t->sql_upsert.data)) < 0 ||
        (deletes && (rc = kf_pg_buf_puts(q, (const char *)t->sql_delete.data)) < 0) ||
        (rc = kf_pg_buf_puts(q, "RELEASE SAVEPOINT kf_rows;")) < 0)
        return GROW_ERR(rc, err);
    rc = run(s, (const char *)q->data, counts, 4, NULL, &failed, state, err);
    if (rc < 0)
        goto out_failed;
    *ups += counts[0];
    if (deletes)
        *dels += counts[1];
    return KF_OK;

out_failed:
    *data = is_data_error(state) && !binary_refused(state);
    if (*data && PQstatus(s->conn) == CONNECTION_OK) {
        PGresult *rb = PQexec(s->conn, "ROLLBACK TO SAVEPOINT kf_rows");
        if (PQresultStatus(rb) != PGRES_COMMAND_OK)
            *data = false;
        PQclear(rb);
    }
    return rc;
}

/* Applies the live rows among idx[lo, hi) under savepoints, quarantining single rows that
 * Postgres refuses. */
static int isolate(sink *s, sink_table *t, const size_t *idx, size_t lo, size_t hi, long *ups,
                   long *dels, kf_error *err)
{
    if (lo >= hi)
        return KF_OK;
    bool data;
    int rc = rows_step(s, t, idx, lo, hi, true, ups, dels, &data, err);
    if (rc == KF_OK || !data)
        return rc;
    if (hi - lo == 1) {
        sink_rec *r = &t->recs[idx[lo]];
        char msg[sizeof(err->message)];
        snprintf(msg, sizeof(msg), "%s", err->message);
        if ((rc = quarantine(s, t, r->msg, "sink", "PostgresError", "rejected_by_postgres", msg,
                             err)) < 0)
            return rc;
        r->live = false;
        return KF_OK;
    }
    size_t mid = lo + (hi - lo) / 2;
    if ((rc = isolate(s, t, idx, lo, mid, ups, dels, err)) < 0)
        return rc;
    return isolate(s, t, idx, mid, hi, ups, dels, err);
}

/* A batch without deletes is first tried as a plain COPY into the destination, which is all
 * an insert-only stream needs (no staging, no upsert). A refusal (a key that exists already, a
 * value Postgres does not take) rolls back to the savepoint: returns 0 and the batch goes the
 * staging way; after a key that existed (*dup) the next batches go that way directly. Binary
 * data refused as such (*refused) is an error, not a refusal of the rows. Returns 1 when the
 * rows are in. */
static int fast_insert(sink *s, kf_buf *chunk, const sink_table *t, const copy_rows *cr, bool *dup,
                       bool *refused, long *ups, kf_error *err)
{
    *dup = *refused = false;
    int failed;
    char state[8];
    bool copy;
    int rc = run(s, (const char *)t->sql_copy.data, NULL, 0, &copy, &failed, state, err);
    if (rc < 0 || !copy)
        return rc < 0 ? rc : kf_error_set(err, KF_ERR_PG, true, "COPY did not start");
    long n;
    if ((rc = send_rows(s->conn, chunk, cr, true, &n, err)) < 0)
        return rc;
    PGresult *res = NULL;
    rc = kf_pg_copy_send(s->conn, "", 0, &res, err);
    if (rc == KF_OK) {
        *ups += n;
        return 1;
    }
    snprintf(state, sizeof(state), "%s", kf_pg_sqlstate(res));
    PQclear(res);
    *refused = binary_refused(state);
    if (!is_data_error(state) || *refused || PQstatus(s->conn) != CONNECTION_OK)
        return rc;
    *dup = strcmp(state, "23505") == 0;
    PGresult *rb = PQexec(s->conn, "ROLLBACK TO SAVEPOINT kf_fast");
    bool ok = PQresultStatus(rb) == PGRES_COMMAND_OK;
    if (!ok)
        rc = kf_pg_result_error(err, s->conn, rb, "could not roll back to a savepoint");
    PQclear(rb);
    return ok ? 0 : rc;
}

/* BEGIN, the DDL the batch needs, the staging table and a truncate. */
static int begin_step(sink *s, sink_table *t, kf_error *err)
{
    kf_buf *q = &s->sql;
    q->len = 0;
    int rc, failed;
    char state[8];
    if ((rc = kf_pg_buf_puts(q, "BEGIN;")) < 0 ||
        (t->bound_id != -1 && (rc = kf_pg_buf_puts(q, (const char *)t->sql_ddl.data)) < 0) ||
        (t->bound_id != -1 && t->stage_gen != s->conn_gen &&
         (rc = kf_pg_buf_puts(q, (const char *)t->sql_stage.data)) < 0) ||
        (t->truncate && t->shape &&
         (rc = kf_pg_buf_puts(q, (const char *)t->sql_truncate.data)) < 0))
        return GROW_ERR(rc, err);
    return run(s, (const char *)q->data, NULL, 0, NULL, &failed, state, err);
}

/* The error_log rows, the fenced sync markers and COMMIT. A marker that moved under us
 * (another consumer, or a commit whose outcome we never saw) fails the batch with KF_ERR_STATE. */
static int finish_step(sink *s, kf_buf *q, const sink_table *t, const sink_batch_part *parts,
                       size_t nparts, const kf_buf *errors, size_t nerrors, kf_error *err)
{
    q->len = 0;
    int rc, failed;
    char state[8];
    int stmt = 0, marker_stmt = -1;
    if (nerrors > 0) {
        if ((rc = kf_pg_buf_puts(q, "INSERT INTO kfleet_meta.error_log (worker, table_schema, "
                                    "table_name, column_name, topic, partition, kafka_offset, "
                                    "error) VALUES ")) < 0 ||
            (rc = kf_pg_buf_append(q, (const char *)errors->data, errors->len)) < 0 ||
            (rc = kf_pg_buf_puts(q, ";")) < 0)
            return GROW_ERR(rc, err);
        stmt++;
    }
    if (nparts > 0) {
        if ((rc = kf_pg_buf_puts(q, "WITH up AS (INSERT INTO kfleet_meta.sync_markers AS m "
                                    "(group_id, topic, partition, next_offset, prev_offset) "
                                    "VALUES ")) < 0)
            return GROW_ERR(rc, err);
        for (size_t k = 0; k < nparts; k++) {
            const sink_batch_part *bp = &parts[k];
            if ((rc = kf_pg_buf_puts(q, k ? ", (" : "(")) < 0 ||
                (rc = sink_sql_literal(s, q, s->group, strlen(s->group), err)) < 0 ||
                (rc = kf_pg_buf_puts(q, ", ")) < 0 ||
                (rc = sink_sql_literal(s, q, bp->part->topic, strlen(bp->part->topic), err)) < 0 ||
                (rc = kf_pg_buf_printf(q, ", %d, %" PRId64 ", %" PRId64 ")",
                                       (int)bp->part->partition, bp->next,
                                       atomic_load(&bp->part->marker))) < 0)
                return rc < 0 && err->code ? rc : GROW_ERR(rc, err);
        }
        if ((rc = kf_pg_buf_printf(
                 q,
                 " ON CONFLICT (group_id, topic, partition) DO UPDATE SET "
                 "next_offset = EXCLUDED.next_offset, prev_offset = "
                 "EXCLUDED.prev_offset, updated_at = now() WHERE m.next_offset "
                 "= EXCLUDED.prev_offset RETURNING 1) SELECT CASE WHEN "
                 "count(*) = %zu THEN 0 ELSE 1 / (count(*) - count(*)) END FROM up;",
                 nparts)) < 0)
            return GROW_ERR(rc, err);
        marker_stmt = stmt++;
    }
    if ((rc = kf_pg_buf_puts(q, "COMMIT;")) < 0)
        return GROW_ERR(rc, err);
    rc = run(s, (const char *)q->data, NULL, 0, NULL, &failed, state, err);
    if (rc < 0 && failed == marker_stmt && strcmp(state, "22012") == 0)
        return kf_error_set(err, KF_ERR_STATE, false,
                            "sync marker of table \"%s\" moved: another consumer or an earlier "
                            "commit applied these offsets",
                            t->name);
    if (rc == KF_OK && PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        return kf_error_set(err, KF_ERR_PG, true, "transaction did not commit");
    return rc;
}

/* After a commit: the partitions' markers move to the batch's next offsets, which are stored
 * for the Kafka offset commit too (a position only; Postgres' markers are the truth). */
static void committed(sink *s, const sink_batch_part *parts, size_t nparts)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)nparts);
    for (size_t k = 0; k < nparts; k++) {
        atomic_store(&parts[k].part->marker, parts[k].next);
        if (list)
            rd_kafka_topic_partition_list_add(list, parts[k].part->topic, parts[k].part->partition)
                ->offset = parts[k].next;
    }
    if (!list) {
        kf_log(KF_LOG_WARN, "could not store Kafka offsets", "error", "out of memory",
               (char *)NULL);
        return;
    }
    rd_kafka_resp_err_t code = rd_kafka_offsets_store(kf_consumer_handle(s->consumer), list);
    for (int i = 0; i < list->cnt && code == RD_KAFKA_RESP_ERR_NO_ERROR; i++)
        code = list->elems[i].err;
    if (code != RD_KAFKA_RESP_ERR_NO_ERROR)
        kf_log(KF_LOG_WARN, "could not store Kafka offsets", "error", rd_kafka_err2str(code),
               (char *)NULL);
    rd_kafka_topic_partition_list_destroy(list);
}

/* ---- the writer thread ---- */

/* COPY of the flight's live rows into staging, then the upsert and the delete. */
static int flight_staged(sink *s, sink_flight *f)
{
    sink_table *t = f->t;
    kf_buf *q = &f->sql;
    int rc, failed;
    char state[8];
    bool copy;
    long counts[3] = {0};
    q->len = 0;
    if ((rc = kf_pg_buf_printf(q, "COPY kf_stage_%zu FROM STDIN%s", t->index,
                               f->binary ? " (FORMAT binary)" : "")) < 0)
        return GROW_ERR(rc, &f->err);
    rc = run(s, (const char *)q->data, NULL, 0, &copy, &failed, state, &f->err);
    if (rc < 0 || !copy)
        return rc < 0 ? rc : kf_error_set(&f->err, KF_ERR_PG, true, "COPY did not start");
    copy_rows cr = {f->recs, NULL, 0, f->nrecs, &f->rows, f->ncols, f->binary};
    long sent;
    if ((rc = send_rows(s->conn, &f->chunk, &cr, false, &sent, &f->err)) < 0)
        return rc;
    PGresult *res = NULL;
    rc = kf_pg_copy_send(s->conn, "", 0, &res, &f->err);
    if (rc < 0)
        f->bin_refused = binary_refused(kf_pg_sqlstate(res));
    PQclear(res);
    if (rc < 0)
        return rc;
    bool deletes = f->has_del && t->sql_delete.len > 0;
    q->len = 0;
    if ((rc = kf_pg_buf_puts(q, (const char *)t->sql_upsert.data)) < 0 ||
        (deletes && (rc = kf_pg_buf_puts(q, (const char *)t->sql_delete.data)) < 0))
        return GROW_ERR(rc, &f->err);
    if ((rc = run(s, (const char *)q->data, counts, 3, NULL, &failed, state, &f->err)) < 0)
        return rc;
    f->ups = counts[0];
    f->dels = deletes ? counts[1] : 0;
    return KF_OK;
}

static void *flight_main(void *arg)
{
    sink *s = arg;
    sink_flight *f = &s->flight;
    int failed;
    char state[8];
    f->ups = f->dels = 0;
    f->dup = false;
    kf_buf *q = &f->sql;
    q->len = 0;
    int rc = kf_pg_buf_puts(q, "BEGIN;");
    if (rc == KF_OK && f->staged && f->need_stage)
        rc = kf_pg_buf_puts(q, (const char *)f->t->sql_stage.data);
    if (rc < 0)
        rc = GROW_ERR(rc, &f->err);
    else
        rc = run(s, (const char *)q->data, NULL, 0, NULL, &failed, state, &f->err);
    if (rc == KF_OK && !f->staged) {
        copy_rows cr = {f->recs, NULL, 0, f->nrecs, &f->rows, f->ncols, f->binary};
        int fast = fast_insert(s, &f->chunk, f->t, &cr, &f->dup, &f->bin_refused, &f->ups, &f->err);
        if (fast < 0)
            rc = fast;
        else if (fast == 0) {
            /* refused (a key that exists already, a value Postgres does not take), and rolled
             * back to its savepoint: the staging way, in the same transaction */
            f->staged = true;
            if (f->need_stage)
                rc = run(s, (const char *)f->t->sql_stage.data, NULL, 0, NULL, &failed, state,
                         &f->err);
        }
    }
    if (rc == KF_OK && f->staged)
        rc = flight_staged(s, f);
    if (rc == KF_OK)
        rc = finish_step(s, &f->sql, f->t, f->parts, f->nparts, NULL, 0, &f->err);
    if (rc < 0)
        rollback(s);
    f->rc = rc;
    f->commit_ms = kf_retry_now_ms();
    atomic_store(&f->done, true);
    return NULL;
}

/* Whether t's batch may go to the writer: rows with nothing else to write (no DDL, truncate
 * or error_log rows), no flight of the table failed lately, and more records are waiting to be
 * decoded meanwhile. A batch with deletes, or of a table whose straight COPY met a key that
 * existed lately, takes the staging way (*staged); an insert-only one is first tried by COPY
 * straight into the table, and the writer goes the staging way if that is refused. */
static bool flight_fits(const sink *s, const sink_table *t, size_t live, bool *staged)
{
    if (live == 0 || t->sync_skip > 0 || t->truncate || t->nerrors > 0 || t->bound_id == -1 ||
        t->sql_ddl.len > 0 || !backlog(s, t))
        return false;
    *staged = t->has_del || t->fast_skip > 0;
    return true;
}

/* The writer needs no message: a failed flight is read again from the sync markers, and the
 * Kafka offsets to store are the batch's next offsets. The messages (and the fetch buffers
 * they keep alive) go now rather than after the commit. */
static void flight_release(sink_flight *f)
{
    for (size_t i = 0; i < f->nrecs; i++) {
        rd_kafka_message_destroy(f->recs[i].msg);
        f->recs[i].msg = NULL;
    }
}

#define SWAP(type, a, b)                                                                           \
    do {                                                                                           \
        type swap_tmp = (a);                                                                       \
        (a) = (b);                                                                                 \
        (b) = swap_tmp;                                                                            \
    } while (0)

/* Hands t's batch to the writer; t gets the flight's previous arrays, empty. */
static void flight_start(sink *s, sink_table *t, bool staged)
{
    sink_flight *f = &s->flight;
    f->staged = staged;
    f->need_stage = t->stage_gen != s->conn_gen;
    f->binary = t->binary;
    f->ncols = t->ncols;
    f->bin_refused = false;
    f->has_del = t->has_del;
    t->has_del = false;
    if (staged && t->fast_skip > 0)
        t->fast_skip--; /* counts as a batch gone the staging way */
    SWAP(sink_rec *, f->recs, t->recs);
    SWAP(size_t, f->cap_recs, t->cap_recs);
    SWAP(kf_buf, f->rows, t->rows);
    SWAP(sink_batch_part *, f->parts, t->parts);
    SWAP(size_t, f->cap_parts, t->cap_parts);
    f->nrecs = t->nrecs;
    f->nparts = t->nparts;
    f->first_ms = t->first_ms;
    f->t0 = kf_retry_now_ms();
    f->t = t;
    t->nrecs = 0;
    t->nparts = 0;
    t->rows.len = 0;
    t->msg_bytes = 0;
    memset(t->hash, 0xff, t->hash_cap * sizeof(*t->hash));
    flight_release(f);
    atomic_store(&f->done, false);
    if (pthread_create(&f->thread, NULL, flight_main, s) != 0) {
        /* no thread to be had: apply it here, collected the same way */
        flight_main(s);
        f->thread = pthread_self();
    }
}

static void flight_collect(sink *s, bool wait)
{
    sink_flight *f = &s->flight;
    if (!f->t || (!wait && !atomic_load(&f->done)))
        return;
    int64_t join_at = kf_retry_now_ms();
    if (!pthread_equal(f->thread, pthread_self()))
        pthread_join(f->thread, NULL);
    if (kf_log_enabled(KF_LOG_DEBUG) && kf_retry_now_ms() - join_at > 0) {
        char w[24];
        snprintf(w, sizeof(w), "%" PRId64, kf_retry_now_ms() - join_at);
        kf_log(KF_LOG_DEBUG, "waited for the writer", "ms", w, (char *)NULL);
    }
    sink_table *t = f->t;
    f->t = NULL;
    if (f->rc == KF_OK) {
        if (f->staged)
            t->stage_gen = s->conn_gen;
        committed(s, f->parts, f->nparts);
        kf_counter_inc(t->m.upserted, (uint64_t)f->ups);
        kf_counter_inc(t->m.deleted, (uint64_t)f->dels);
        s->n_upserted += (uint64_t)f->ups;
        s->n_deleted += (uint64_t)f->dels;
        s->n_records += f->nrecs;
        s->n_batches++;
        if (s->first_batch_ms == 0)
            s->first_batch_ms = f->first_ms;
        s->last_commit_ms = f->commit_ms;
        if (f->dup)
            t->fast_skip = FAST_SKIP_BATCHES;
        kf_histogram_observe(t->m.duration, (double)(f->commit_ms - f->t0) / 1000.0);
        log_batch("batch committed by the writer", t, f->staged ? "staged" : "copy", f->nrecs,
                  f->first_ms, f->t0, f->commit_ms);
    } else {
        /* the batches decoded meanwhile follow the failed one: all is read again */
        if (f->dup)
            t->fast_skip = FAST_SKIP_BATCHES;
        if (f->bin_refused) {
            t->bin_off = true;
            kf_log(KF_LOG_WARN, "Postgres refused binary COPY data, sending text from now on",
                   "table", t->name, "error", f->err.message, (char *)NULL);
        }
        /* the loop applies the next batches itself, isolating what Postgres refuses */
        t->sync_skip = SYNC_SKIP_BATCHES;
        t->stage_gen = -1;
        s->need_reseek = true;
        kf_counter_inc(s->c_retries, 1);
        kf_log(KF_LOG_WARN, "could not apply a batch, reading it again from the sync markers",
               "table", t->name, "error", f->err.message, (char *)NULL);
    }
    for (size_t i = 0; i < f->nrecs; i++)
        if (f->recs[i].msg)
            rd_kafka_message_destroy(f->recs[i].msg);
    f->nrecs = 0;
    f->nparts = 0;
    f->rows.len = 0;
}

void sink_apply_wait(sink *s)
{
    flight_collect(s, true);
}

void sink_apply_poll(sink *s)
{
    flight_collect(s, false);
}

void sink_apply_free(sink *s)
{
    sink_apply_wait(s);
    free(s->flight.recs);
    free(s->flight.parts);
    kf_buf_free(&s->flight.rows);
    kf_buf_free(&s->flight.sql);
    kf_buf_free(&s->flight.chunk);
    memset(&s->flight, 0, sizeof(s->flight));
}

/* Waits until every record sent to the DLQ so far is in Kafka: quarantined records (when
 * decoding, or isolated from a batch Postgres refused) must be there before the sync markers
 * move past them. */
static int dlq_settle(sink *s, kf_error *err)
{
    uint64_t n = kf_dlq_count(s->dlq);
    if (n == s->dlq_settled)
        return KF_OK;
    int rc = kf_producer_flush(s->producer, 30000, err);
    if (rc < 0)
        return rc;
    if (kf_producer_failed(s->producer, err)) {
        err->code = KF_ERR_FATAL;
        return KF_ERR_FATAL;
    }
    s->dlq_settled = n;
    return KF_OK;
}

static int flush_table(sink *s, sink_table *t, kf_error *err)
{
    if (t->nrecs == 0 && !t->truncate)
        return KF_OK;
    sink_apply_wait(s);
    if (s->need_reseek)
        /* a batch before this one failed: this one must not commit past it */
        return kf_error_set(err, KF_ERR_STATE, false,
                            "an earlier batch failed; re-reading from the sync markers");
    int64_t t0 = kf_retry_now_ms();
    int rc = sink_pg_ensure(s, err);
    if (rc < 0)
        return rc;
    size_t live = 0;
    for (size_t i = 0; i < t->nrecs; i++)
        live += t->recs[i].live;
    if (live > 0 && t->bound_id == -1) {
        /* rows encoded for a binding that was dropped (its DDL and staging table went with a
         * failed transaction): decode them again from the sync markers */
        s->need_reseek = true;
        return kf_error_set(err, KF_ERR_STATE, false,
                            "batch of table \"%s\" lost its binding; re-reading from the sync "
                            "markers",
                            t->name);
    }
    bool staged = false;
    if (flight_fits(s, t, live, &staged)) {
        if ((rc = dlq_settle(s, err)) < 0)
            return rc;
        flight_start(s, t, staged);
        return KF_OK;
    }
    if (t->sync_skip > 0)
        t->sync_skip--;
    long ups = 0, dels = 0;
    bool data = false;
    if ((rc = begin_step(s, t, err)) < 0)
        goto out_rollback;
    int fast = 0;
    if (live > 0 && !t->has_del && !t->truncate) {
        bool dup = false, refused = false;
        if (t->fast_skip > 0)
            t->fast_skip--;
        else if ((fast = fast_insert(
                      s, &s->chunk, t,
                      &(copy_rows){t->recs, NULL, 0, t->nrecs, &t->rows, t->ncols, t->binary}, &dup,
                      &refused, &ups, err)) < 0) {
            if (refused)
                fast = refuse_binary(t, err);
            rc = fast;
            goto out_rollback;
        }
        if (dup)
            t->fast_skip = FAST_SKIP_BATCHES;
    }
    if (live > 0 && !fast) {
        rc = rows_step(s, t, NULL, 0, t->nrecs, false, &ups, &dels, &data, err);
        if (rc < 0 && data) {
            kf_log(KF_LOG_WARN, "batch refused, isolating the failing records", "table", t->name,
                   "error", err->message, (char *)NULL);
            rollback(s);
            size_t *idx = malloc(t->nrecs * sizeof(*idx));
            if (!idx) {
                rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate an index");
                goto out_rollback;
            }
            size_t n = 0;
            for (size_t i = 0; i < t->nrecs; i++)
                if (t->recs[i].live)
                    idx[n++] = i;
            ups = dels = 0;
            t->stage_gen = -1;
            rc = begin_step(s, t, err);
            if (rc == KF_OK)
                rc = isolate(s, t, idx, 0, n, &ups, &dels, err);
            free(idx);
        }
        if (rc < 0)
            goto out_rollback;
    }
    if ((rc = dlq_settle(s, err)) < 0)
        goto out_rollback;
    if ((rc = finish_step(s, &s->sql, t, t->parts, t->nparts, &t->errors, t->nerrors, err)) < 0)
        goto out_rollback;

    t->stage_gen = s->conn_gen;
    s->n_batches++;
    bool had_ddl = t->bound_id != -1 && t->sql_ddl.len > 0;
    committed(s, t->parts, t->nparts);
    if (had_ddl)
        sink_table_announce(s, t); /* the DDL committed: its schema_change audit events */
    kf_counter_inc(t->m.upserted, (uint64_t)ups);
    kf_counter_inc(t->m.deleted, (uint64_t)dels);
    s->n_upserted += (uint64_t)ups;
    s->n_deleted += (uint64_t)dels;
    s->n_records += t->nrecs;
    if (s->first_batch_ms == 0)
        s->first_batch_ms = t->first_ms;
    s->last_commit_ms = kf_retry_now_ms();
    kf_histogram_observe(t->m.duration, (double)(kf_retry_now_ms() - t0) / 1000.0);
    log_batch("batch committed", t, fast == 1 ? "copy" : "staged", t->nrecs, t->first_ms, t0,
              s->last_commit_ms);
    clear_batch(t);
    if (had_ddl) {
        kf_counter_inc(t->m.ddl, 1);
        s->n_ddl++;
        kf_log(KF_LOG_INFO, "table changed", "table", t->name, (char *)NULL);
        sink_table_unbind(t);
        if ((rc = sink_table_refresh(s, t, err)) < 0) {
            t->shape_version = -1;
            return KF_OK; /* the batch is committed; the catalog is read again next time */
        }
    }
    return KF_OK;

out_rollback:
    rollback(s);
    t->stage_gen = -1;
    if (rc == KF_ERR_STATE) {
        kf_log(KF_LOG_WARN, err->message, (char *)NULL);
        s->need_reseek = true;
    }
    return rc;
}

int sink_apply_flush_due(sink *s, bool all, kf_error *err)
{
    int64_t now = kf_retry_now_ms();
    for (size_t i = 0; i < s->ntables; i++) {
        sink_table *t = s->tables[i];
        if (t->nrecs == 0 && !t->truncate)
            continue;
        if (!all && !batch_full(s, t) && now - t->first_ms < t->flush_ms)
            continue;
        int rc = flush_table(s, t, err);
        if (rc < 0)
            return rc;
    }
    return KF_OK;
}

int64_t sink_apply_next_due_ms(sink *s)
{
    int64_t best = -1, now = kf_retry_now_ms();
    for (size_t i = 0; i < s->ntables; i++) {
        sink_table *t = s->tables[i];
        if (t->nrecs == 0)
            continue;
        int64_t left = t->first_ms + t->flush_ms - now;
        if (left < 0)
            left = 0;
        if (best < 0 || left < best)
            best = left;
    }
    return best;
}

/* ---- appending ---- */

/* Binds a table without events of its own (a tombstone first): the destination's shape is its
 * own event shape. */
static int bind_for_key(sink *s, sink_table *t, kf_error *err)
{
    if (t->bound_id != -1 && t->bound_version == t->shape_version)
        return KF_OK;
    int rc;
    if (t->shape_version < 0 && (rc = sink_table_refresh(s, t, err)) < 0)
        return rc;
    if (!t->shape)
        return KF_OK;
    return sink_table_bind(s, t, -2, t->shape, err);
}

static int append_tombstone(sink *s, sink_table *t, rd_kafka_message_t *msg, sink_part *part,
                            kf_error *err)
{
    const kf_table *kt;
    const kf_cell *kc;
    int rc = kf_event_reader_decode_key(s->reader, msg->key, msg->key_len, &kt, &kc, err);
    if (rc < 0) {
        if (err->retriable)
            return rc;
        if ((rc = quarantine(s, t, msg, "decode", "DecodeError", "undecodable_key", err->message,
                             err)) < 0)
            return rc;
        return add_rec(t, msg, part, 0, 0, 0, err);
    }
    if ((rc = bind_for_key(s, t, err)) < 0)
        return rc;
    /* without a table there is nothing to delete; with soft deletes the delete event before
     * the tombstone already flagged the row */
    if (t->bound_id == -1 || s->cfg->deletion == SINK_DELETE_SOFT)
        return add_rec(t, msg, part, 0, 0, 0, err);
    const kf_column *cols[t->ncols + 1];
    const kf_cell *cells[t->ncols + 1];
    for (size_t p = 0; p < t->ncols; p++) {
        cols[p] = NULL;
        cells[p] = NULL;
        if (p >= t->npk)
            continue;
        const char *name = kf_table_column(t->target, (size_t)t->stage_col[p])->name;
        for (size_t k = 0; k < kf_table_ncolumns(kt); k++) {
            if (strcmp(kf_table_column(kt, k)->name, name) == 0) {
                cols[p] = kf_table_column(kt, k);
                cells[p] = &kc[k];
            }
        }
        if (!cells[p]) {
            char msgtxt[300];
            snprintf(msgtxt, sizeof(msgtxt), "key has no column \"%s\"", name);
            if ((rc = quarantine(s, t, msg, "sink", "KeyMismatch", "key_mismatch", msgtxt, err)) <
                0)
                return rc;
            return add_rec(t, msg, part, 0, 0, 0, err);
        }
    }
    size_t off = t->rows.len, keylen = 0;
    rc = encode_line(s, t, msg, cols, cells, true, &keylen, err);
    if (rc == KF_ERR_INVALID) {
        if ((rc = quarantine(s, t, msg, "sink", "ConversionError", "unconvertible_key",
                             err->message, err)) < 0)
            return rc;
        return add_rec(t, msg, part, 0, 0, 0, err);
    }
    if (rc < 0)
        return rc;
    return add_rec(t, msg, part, off, t->rows.len - off, keylen, err);
}

/* The event columns with their primary key. kfleet's value schemas mark it; Debezium's say
 * nothing of it, the message key's schema does: then a copy of the event columns with the key
 * record's fields as primary key, made once per value schema. NULL and err set on failure. */
static const kf_table *keyed_table(sink *s, sink_table *t, const kf_event *ev,
                                   const rd_kafka_message_t *msg, kf_error *err)
{
    if (kf_table_npk(ev->table) > 0 || !msg->key)
        return ev->table;
    if (t->keyed && t->keyed_src == ev->table)
        return t->keyed;
    const kf_table *kt;
    const kf_cell *kc;
    if (kf_event_reader_decode_key(s->reader, msg->key, msg->key_len, &kt, &kc, err) < 0)
        return NULL;
    kf_table *k = kf_table_new(kf_table_prefix(ev->table), kf_table_db(ev->table),
                               kf_table_schema(ev->table), kf_table_name(ev->table), err);
    if (!k)
        return NULL;
    for (size_t i = 0; i < kf_table_ncolumns(ev->table); i++) {
        kf_column c = *kf_table_column(ev->table, i);
        c.pk_order = 0;
        for (size_t j = 0; j < kf_table_ncolumns(kt); j++)
            if (strcmp(kf_table_column(kt, j)->name, c.name) == 0)
                c.pk_order = (int)j + 1;
        if (kf_table_add_column(k, &c, err) < 0) {
            kf_table_destroy(k);
            return NULL;
        }
    }
    /* a batch holds one schema, so nothing pending is bound to the copy being replaced */
    sink_table_unbind(t);
    kf_table_destroy(t->keyed);
    t->keyed = k;
    t->keyed_src = ev->table;
    return k;
}

static int append_event(sink *s, sink_table *t, rd_kafka_message_t *msg, sink_part *part,
                        const kf_event *ev, kf_error *err)
{
    int rc;
    if (ev->op == KF_OP_TRUNCATE) {
        /* every earlier change of the table in this batch is superseded */
        for (size_t i = 0; i < t->nrecs; i++)
            t->recs[i].live = false;
        memset(t->hash, 0xff, t->hash_cap * sizeof(*t->hash));
        if (t->shape_version < 0 && (rc = sink_table_refresh(s, t, err)) < 0)
            return rc;
        t->truncate = t->shape != NULL;
        return add_rec(t, msg, part, 0, 0, 0, err);
    }
    const kf_table *cols_of = keyed_table(s, t, ev, msg, err);
    if (!cols_of && (err->retriable || err->code == KF_ERR_NOMEM))
        return err->code;
    if (!cols_of || (rc = sink_table_bind(s, t, ev->schema_id, cols_of, err)) < 0) {
        rc = cols_of ? rc : err->code;
        if (err->retriable || rc == KF_ERR_PG || rc == KF_ERR_NOMEM)
            return rc;
        if ((rc = quarantine(s, t, msg, "sink", "SchemaError", "unappliable_schema", err->message,
                             err)) < 0)
            return rc;
        return add_rec(t, msg, part, 0, 0, 0, err);
    }
    bool del = ev->op == KF_OP_DELETE;
    const kf_cell *image = del ? ev->before : ev->after;
    const char *problem = !t->pk_ok ? "the events do not carry the table's primary key"
                          : !image  ? "the event has no row image"
                                    : NULL;
    if (problem) {
        if ((rc = quarantine(s, t, msg, "sink", "SchemaError",
                             !t->pk_ok ? "no_primary_key" : "no_row_image", problem, err)) < 0)
            return rc;
        return add_rec(t, msg, part, 0, 0, 0, err);
    }
    const kf_column *cols[t->ncols + 1];
    const kf_cell *cells[t->ncols + 1];
    for (size_t p = 0; p < t->ncols; p++) {
        int e = t->ev_col[p];
        cols[p] = e >= 0 ? kf_table_column(ev->table, (size_t)e) : NULL;
        cells[p] = e >= 0 ? &image[e] : NULL;
    }
    size_t off = t->rows.len, keylen = 0;
    rc = encode_line(s, t, msg, cols, cells, del, &keylen, err);
    if (rc == KF_ERR_INVALID) {
        if ((rc = quarantine(s, t, msg, "sink", "ConversionError", "unconvertible_key",
                             err->message, err)) < 0)
            return rc;
        return add_rec(t, msg, part, 0, 0, 0, err);
    }
    if (rc < 0)
        return rc;
    return add_rec(t, msg, part, off, t->rows.len - off, keylen, err);
}

int sink_apply_message(sink *s, rd_kafka_message_t *msg, bool *taken, kf_error *err)
{
    *taken = false;
    sink_part *part = part_of(s, msg, err);
    if (!part) {
        /* not ours (any more): the partition's owner reads it from its marker */
        rd_kafka_message_destroy(msg);
        *taken = true;
        return KF_OK;
    }
    int64_t marker = atomic_load(&part->marker);
    if (!atomic_load(&part->assigned) || (marker >= 0 && msg->offset < marker)) {
        rd_kafka_message_destroy(msg); /* applied before */
        *taken = true;
        return KF_OK;
    }
    sink_table *t = part->table;
    int rc;
    kf_event ev;
    rc = kf_event_reader_decode(s->reader, msg->payload, msg->len, &ev, err);
    bool schema_change = rc == KF_OK && ev.op != KF_OP_TOMBSTONE && ev.op != KF_OP_TRUNCATE &&
                         t->nrecs > 0 && t->bound_id != ev.schema_id && t->bound_id != -1;
    /* Partitions of an evolving table reach a new schema version at different times and are
     * read interleaved: events of a version the batch's destination already covers join the
     * batch (kfleet's events carry their key; Debezium's take it from the key schema, bound
     * per value schema, so they flush). */
    if (schema_change && kf_table_npk(ev.table) > 0) {
        int jrc = sink_table_join(t, ev.schema_id, ev.table, err);
        if (jrc < 0)
            return jrc;
        schema_change = jrc == 0;
    }
    if (batch_full(s, t) || schema_change) {
        /* a batch is bound to one destination shape: flush before an event that changes it */
        int frc = flush_table(s, t, err);
        if (frc < 0)
            return frc;
    }
    if (rc < 0) {
        if (err->retriable)
            return rc;
        const char *reason = rc == KF_ERR_NOT_FOUND ? "unknown_schema_id" : "undecodable";
        if ((rc = quarantine(s, t, msg, "decode", "DecodeError", reason, err->message, err)) < 0)
            return rc;
        rc = add_rec(t, msg, part, 0, 0, 0, err);
    } else if (ev.op == KF_OP_TOMBSTONE) {
        rc = append_tombstone(s, t, msg, part, err);
    } else {
        rc = append_event(s, t, msg, part, &ev, err);
    }
    /* add_rec took the message whenever it got that far; errors before leave it to the caller */
    for (size_t i = t->nrecs; i-- > 0 && rc < 0;)
        if (t->recs[i].msg == msg)
            *taken = true;
    if (rc == KF_OK)
        *taken = true;
    return rc;
}
