/* Postgres side of the report: each sink table compared row by row with the rows it should
 * hold, the DDL the sink recorded, the marker sampler behind the latency figures, and the
 * wait until every stage has drained. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kfleet/log.h"
#include "kfleet/signals.h"
#include "pipeline.h"

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Appends s to buf at *used; false when it does not fit. */
static bool put(char *buf, size_t cap, size_t *used, const char *s)
{
    size_t n = strlen(s);
    if (*used + n + 1 > cap)
        return false;
    memcpy(buf + *used, s, n + 1);
    *used += n;
    return true;
}

static bool ident(PGconn *conn, char *buf, size_t cap, size_t *used, const char *name)
{
    char *q = PQescapeIdentifier(conn, name, strlen(name));
    bool ok = q && put(buf, cap, used, q);
    PQfreemem(q);
    return ok;
}

/* The active columns of t, in order, with their types. */
typedef struct colref {
    const char *name, *type;
    bool key;
} colref;

static size_t active_columns(const pl_table *t, colref *out, size_t cap)
{
    size_t n = 0, i;
    json_t *c;
    json_array_foreach(t->columns, i, c)
    {
        const char *state = json_string_value(json_object_get(c, "state"));
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *type = json_string_value(json_object_get(c, "type"));
        if (!state || strcmp(state, "active") != 0 || !name || !type || n == cap)
            continue;
        out[n].name = name;
        out[n].type = type;
        out[n].key = false;
        for (size_t k = 0; k < t->nkey; k++)
            if (strcmp(t->key[k], name) == 0)
                out[n].key = true;
        n++;
    }
    return n;
}

/* Builds the row of one result tuple as canonical text per column (NULL for SQL null) and
 * compares it with the JSON row `want` (NULL: not expected). */
static bool tuple_equals(const PGresult *res, int r, const colref *cols, size_t n,
                         const json_t *want)
{
    if (!want)
        return false;
    for (size_t c = 0; c < n; c++) {
        char a[4096], b[4096];
        const char *text = PQgetisnull(res, r, (int)c) ? NULL : PQgetvalue(res, r, (int)c);
        bool na = pl_canon_pg(cols[c].type, text, a, sizeof(a));
        bool nb = pl_canon_json(cols[c].type, json_object_get(want, cols[c].name), b, sizeof(b));
        if (na != nb || (na && strcmp(a, b) != 0))
            return false;
    }
    return true;
}

static void compare_table(PGconn *conn, const char *schema, pl_run *run, pl_table *t)
{
    pl_cmp *cmp = &t->pg;
    memset(cmp, 0, sizeof(*cmp));
    colref cols[256];
    size_t n = active_columns(t, cols, 256);
    char sql[32768];
    size_t used = 0;
    bool ok = put(sql, sizeof(sql), &used, "SELECT ");
    for (size_t c = 0; ok && c < n; c++) {
        char id[512], expr[1024];
        size_t iu = 0;
        ok = ident(conn, id, sizeof(id), &iu, cols[c].name) &&
             pl_pg_expr(cols[c].type, id, expr, sizeof(expr)) == KF_OK &&
             put(sql, sizeof(sql), &used, c ? ", " : "") && put(sql, sizeof(sql), &used, expr);
    }
    ok = ok && put(sql, sizeof(sql), &used, " FROM ") &&
         ident(conn, sql, sizeof(sql), &used, schema) && put(sql, sizeof(sql), &used, ".") &&
         ident(conn, sql, sizeof(sql), &used, t->name);
    if (!ok || n == 0) {
        snprintf(cmp->error, sizeof(cmp->error), "could not build the query of \"%s\"", t->name);
        return;
    }
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        snprintf(cmp->error, sizeof(cmp->error), "could not read %s.%s: %s", schema, t->name,
                 msg ? msg : PQerrorMessage(conn));
        PQclear(res);
        return;
    }
    json_t *seen = json_object();
    json_t *expect_rows = json_object();
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(t->expect, "rows"), i, row)
    {
        char key[2048];
        if (expect_rows && pl_row_key(t, row, key, sizeof(key)))
            json_object_set(expect_rows, key, row);
    }
    cmp->rows = (uint64_t)PQntuples(res);
    for (int r = 0; r < PQntuples(res); r++) {
        char key[2048] = "";
        size_t ku = 0;
        bool key_ok = true;
        for (size_t c = 0, k = 0; c < n; c++) {
            if (!cols[c].key)
                continue;
            char v[512];
            const char *text = PQgetisnull(res, r, (int)c) ? NULL : PQgetvalue(res, r, (int)c);
            key_ok = key_ok && pl_canon_pg(cols[c].type, text, v, sizeof(v)) &&
                     put(key, sizeof(key), &ku, k++ ? "\x1f" : "") && put(key, sizeof(key), &ku, v);
        }
        json_t *want = key_ok ? json_object_get(t->want, key) : NULL;
        if (seen)
            json_object_set_new(seen, key, json_true());
        if (tuple_equals(res, r, cols, n, json_object_get(expect_rows, key)))
            t->pg_equal_expect++;
        if (!want) {
            cmp->extra++;
            if (!cmp->example[0])
                snprintf(cmp->example, sizeof(cmp->example), "row with key %s is not expected",
                         key);
        } else if (tuple_equals(res, r, cols, n, want)) {
            cmp->equal++;
        } else {
            cmp->differ++;
            if (!cmp->example[0])
                snprintf(cmp->example, sizeof(cmp->example), "row with key %s differs", key);
        }
    }
    const char *key;
    json_t *v;
    json_object_foreach(t->want, key, v)
    {
        if (seen && !json_object_get(seen, key)) {
            cmp->missing++;
            if (!cmp->example[0])
                snprintf(cmp->example, sizeof(cmp->example), "row with key %s is missing", key);
        }
    }
    (void)run;
    json_decref(seen);
    json_decref(expect_rows);
    PQclear(res);
    cmp->done = seen && expect_rows;
    if (!cmp->done)
        snprintf(cmp->error, sizeof(cmp->error), "out of memory");
}

void pl_pg_compare(PGconn *conn, const char *schema, pl_run *run)
{
    PQclear(PQexec(conn, "SET extra_float_digits = 3; SET DateStyle = ISO"));
    for (size_t i = 0; i < run->ntables; i++) {
        pl_table *t = &run->tables[i];
        compare_table(conn, schema, run, t);
        const char *params[2] = {schema, t->name};
        PGresult *res = PQexecParams(conn,
                                     "SELECT count(*) FROM kfleet_meta.schema_history "
                                     "WHERE table_schema = $1 AND table_name = $2",
                                     2, NULL, params, NULL, NULL, 0);
        t->ddl =
            PQresultStatus(res) == PGRES_TUPLES_OK ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
        PQclear(res);
    }
}

int pl_watch(PGconn *conn, const char *group, int interval_ms, const pl_watch_out *out,
             kf_error *err)
{
    json_t *last = json_object();
    if (!last)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate the marker map");
    const char *params[1] = {group};
    int rc = KF_OK;
    char failed[sizeof(err->message)] = ""; /* the last failure logged, not repeated */
    while (!kf_signals_stop_requested()) {
        PGresult *res = PQexecParams(conn,
                                     "SELECT topic, partition, next_offset FROM "
                                     "kfleet_meta.sync_markers WHERE group_id = $1",
                                     1, NULL, params, NULL, NULL, 0);
        int64_t now = wall_ms();
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            for (int r = 0; r < PQntuples(res); r++) {
                char id[600];
                snprintf(id, sizeof(id), "%s[%s]", PQgetvalue(res, r, 0), PQgetvalue(res, r, 1));
                json_int_t next = strtoll(PQgetvalue(res, r, 2), NULL, 10);
                json_t *prev = json_object_get(last, id);
                if (prev && json_integer_value(prev) == next)
                    continue;
                json_object_set_new(last, id, json_integer(next));
                fprintf(out->markers, "%" PRId64 " %s %s %" JSON_INTEGER_FORMAT "\n", now,
                        PQgetvalue(res, r, 0), PQgetvalue(res, r, 1), next);
            }
            fflush(out->markers);
        } else if (PQstatus(conn) != CONNECTION_OK) {
            PQreset(conn); /* the table may not exist yet; a lost connection is retried */
        }
        PQclear(res);
        if (out->stages) {
            kf_error serr;
            if (pl_stage_sampler_sample(out->stages, out->produced, out->validated, &serr) < 0) {
                if (strcmp(failed, serr.message) != 0)
                    kf_log(KF_LOG_WARN, "could not sample the stages", "error", serr.message,
                           (char *)NULL);
                snprintf(failed, sizeof(failed), "%s", serr.message);
            } else {
                failed[0] = '\0';
            }
            fflush(out->produced);
            fflush(out->validated);
        }
        usleep((useconds_t)interval_ms * 1000);
    }
    json_decref(last);
    bool bad =
        ferror(out->markers) || (out->stages && (ferror(out->produced) || ferror(out->validated)));
    return bad ? kf_error_set(err, KF_ERR_IO, false, "could not write the samples") : rc;
}

int pl_drain(const pl_kafka *k, PGconn *conn, const char *vgroup, char *const *in, size_t nin,
             const char *sgroup, char *const *valid, size_t nvalid, int64_t timeout_ms,
             kf_error *err)
{
    int64_t deadline = mono_ms() + timeout_ms;
    pl_lag v = {0}, s = {0};
    while (!kf_signals_stop_requested()) {
        pl_group_lag(k, vgroup, in, nin, &v);
        if (v.known && v.records == 0) {
            pl_marker_lag(k, conn, sgroup, valid, nvalid, &s);
            if (s.known && s.records == 0)
                return KF_OK;
        }
        if (mono_ms() > deadline)
            break;
        usleep(500 * 1000);
    }
    if (kf_signals_stop_requested())
        return kf_error_set(err, KF_ERR_STATE, false, "interrupted while waiting for the drain");
    char vs[sizeof(v.error) + 16], ss[sizeof(s.error) + 16];
    if (v.known)
        snprintf(vs, sizeof(vs), "%" PRId64 " records", v.records);
    else
        snprintf(vs, sizeof(vs), "unknown (%s)", v.error);
    if (s.known)
        snprintf(ss, sizeof(ss), "%" PRId64 " records", s.records);
    else
        snprintf(ss, sizeof(ss), "unknown (%s)", s.error);
    return kf_error_set(err, KF_ERR_TIMEOUT, false,
                        "the pipeline did not drain in time: validate lag %s, sink lag %s", vs, ss);
}
