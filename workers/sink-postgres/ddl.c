/* Destination tables: topic -> table naming, the catalog's view of a table, and binding a batch's
 * event schema to it (evolution plan, DDL, staging table and the upsert/delete statements). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kfleet/log.h"
#include "kfleet/pg.h"
#include "sink.h"

#define SQL_GROW_ERR(rc, err) kf_error_set((err), (rc), false, "could not grow an SQL buffer")

/* Expands table.name.format for topic: ${topic}, ${table} (last dot-separated part), ${db}
 * (the part before it). */
static int format_name(const char *fmt, const char *topic, char *out, size_t cap, kf_error *err)
{
    const char *last = strrchr(topic, '.');
    const char *table = last ? last + 1 : topic;
    const char *db = topic;
    size_t dblen = 0;
    if (last) {
        const char *p = last;
        while (p > topic && p[-1] != '.')
            p--;
        db = p;
        dblen = (size_t)(last - p);
    }
    size_t n = 0;
    for (const char *f = fmt; *f;) {
        const char *v = NULL;
        size_t vlen = 0, skip = 0;
        if (strncmp(f, "${topic}", 8) == 0)
            v = topic, vlen = strlen(topic), skip = 8;
        else if (strncmp(f, "${table}", 8) == 0)
            v = table, vlen = strlen(table), skip = 8;
        else if (strncmp(f, "${db}", 5) == 0)
            v = db, vlen = dblen, skip = 5;
        else
            v = f, vlen = 1, skip = 1;
        if (n + vlen + 1 > cap)
            return kf_error_set(err, KF_ERR_INVALID, false,
                                "table name for topic \"%s\" is too long", topic);
        memcpy(out + n, v, vlen);
        n += vlen;
        f += skip;
    }
    out[n] = '\0';
    if (n == 0)
        return kf_error_set(err, KF_ERR_INVALID, false, "table name for topic \"%s\" is empty",
                            topic);
    return KF_OK;
}

/* Applies a "table=rows[/interval]" override from sink.batch.overrides to t. */
static int apply_overrides(const sink_cfg *cfg, sink_table *t, kf_error *err)
{
    t->batch_size = cfg->batch_size;
    t->batch_max = cfg->batch_max_rows;
    t->flush_ms = cfg->flush_ms;
    for (size_t i = 0; i < cfg->overrides.count; i++) {
        const char *item = cfg->overrides.items[i];
        const char *eq = strrchr(item, '=');
        if (!eq || (size_t)(eq - item) != strlen(t->name) ||
            strncmp(item, t->name, (size_t)(eq - item)) != 0)
            continue;
        char *end = NULL;
        long rows = strtol(eq + 1, &end, 10);
        if (end == eq + 1 || rows < 1 || rows > 1000000 || (*end && *end != '/'))
            return kf_error_set(err, KF_ERR_CONFIG, false,
                                "sink.batch.overrides: bad rows in \"%s\"", item);
        t->batch_size = (int)rows;
        if (*end == '/' && kf_config_parse_duration(end + 1, &t->flush_ms) < 0)
            return kf_error_set(err, KF_ERR_CONFIG, false,
                                "sink.batch.overrides: bad interval in \"%s\"", item);
    }
    /* the catch-up cap never makes a batch smaller than the table's own size */
    if (t->batch_max < t->batch_size)
        t->batch_max = t->batch_size;
    return KF_OK;
}

static int metric_children(sink *s, sink_table *t, kf_error *err)
{
    const char *v[1] = {t->name};
    t->m.upserted = kf_counter_child(s->c_upserted, 1, v, err);
    t->m.deleted = kf_counter_child(s->c_deleted, 1, v, err);
    t->m.ddl = kf_counter_child(s->c_ddl, 1, v, err);
    t->m.dlq = kf_counter_child(s->c_dlq, 1, v, err);
    t->m.conv_errors = kf_counter_child(s->c_conv, 1, v, err);
    t->m.duration = kf_histogram_child(s->h_duration, 1, v, err);
    if (!t->m.upserted || !t->m.deleted || !t->m.ddl || !t->m.dlq || !t->m.conv_errors ||
        !t->m.duration)
        return err->code;
    return KF_OK;
}

sink_table *sink_table_for_topic(sink *s, const char *topic, kf_error *err)
{
    char name[256];
    if (format_name(s->cfg->table_format, topic, name, sizeof(name), err) < 0)
        return NULL;
    for (size_t i = 0; i < s->ntables; i++)
        if (strcmp(s->tables[i]->name, name) == 0)
            return s->tables[i];
    sink_table **grown = realloc(s->tables, (s->ntables + 1) * sizeof(*grown));
    if (!grown) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate a table");
        return NULL;
    }
    s->tables = grown;
    sink_table *t = calloc(1, sizeof(*t));
    if (!t || !(t->name = strdup(name))) {
        free(t);
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate a table");
        return NULL;
    }
    t->index = s->ntables;
    t->bound_id = -1;
    t->stage_gen = -1;
    t->shape_version = -1; /* catalog not read yet */
    t->cap_recs = 0;
    s->tables[s->ntables++] = t;
    if (apply_overrides(s->cfg, t, err) < 0 || metric_children(s, t, err) < 0)
        return NULL;
    size_t hcap = 16;
    while (hcap < 2 * (size_t)t->batch_size)
        hcap *= 2;
    t->cap_recs = (size_t)t->batch_size;
    t->recs = calloc(t->cap_recs, sizeof(*t->recs));
    t->hash = malloc(hcap * sizeof(*t->hash));
    if (!t->recs || !t->hash) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate a batch");
        return NULL;
    }
    t->hash_cap = hcap;
    memset(t->hash, 0xff, hcap * sizeof(*t->hash));
    kf_log(KF_LOG_INFO, "topic mapped to table", "topic", topic, "table", name, (char *)NULL);
    return t;
}

int sink_table_refresh(sink *s, sink_table *t, kf_error *err)
{
    int rc = sink_pg_ensure(s, err);
    if (rc < 0)
        return rc;
    const char *params[2] = {s->schema, t->name};
    PGresult *res = PQexecParams(
        s->conn,
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
        " COALESCE((SELECT k.n FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(att, n)"
        " WHERE k.att = a.attnum), 0), a.atttypid"
        " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary"
        " WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')"
        " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = kf_pg_result_error(err, s->conn, res, "could not read the destination table");
        PQclear(res);
        return rc;
    }
    kf_table *shape = NULL;
    int rows = PQntuples(res);
    unsigned int *oids = NULL;
    if (rows > 0) {
        shape = kf_table_new("kfleet", s->schema, NULL, t->name, err);
        oids = calloc((size_t)rows, sizeof(*oids));
        if (!shape || !oids) {
            if (shape && !oids)
                kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate a column list");
            kf_table_destroy(shape);
            free(oids);
            goto out_clear;
        }
    }
    for (int r = 0; r < rows; r++) {
        const char *col = PQgetvalue(res, r, 0);
        if (s->cfg->deletion == SINK_DELETE_SOFT && strcmp(col, s->cfg->soft_column) == 0)
            continue;
        kf_column c;
        memset(&c, 0, sizeof(c));
        c.name = col;
        /* a type this mapping does not know is treated as text: it is never altered */
        if (kf_pg_type_parse(PQgetvalue(res, r, 1), &c) < 0)
            c.type = KF_COL_TEXT;
        c.nullable = PQgetvalue(res, r, 2)[0] != 't';
        c.pk_order = atoi(PQgetvalue(res, r, 3));
        if (kf_table_add_column(shape, &c, err) < 0) {
            kf_table_destroy(shape);
            free(oids);
            goto out_clear;
        }
        oids[kf_table_ncolumns(shape) - 1] = (unsigned int)strtoul(PQgetvalue(res, r, 4), NULL, 10);
    }
    kf_table_destroy(t->shape);
    t->shape = shape;
    free(t->shape_oid);
    t->shape_oid = oids;
    t->shape_version++;
    if (t->shape_version < 0)
        t->shape_version = 0;
    PQclear(res);
    return KF_OK;

out_clear:
    PQclear(res);
    return err->code;
}

/* ---- the changes a binding's DDL applies, announced once it committed ---- */

static void changes_clear(sink_table *t)
{
    for (size_t i = 0; i < t->nchanges; i++) {
        free(t->changes[i].message);
        free(t->changes[i].details);
    }
    free(t->changes);
    t->changes = NULL;
    t->nchanges = 0;
}

/* Notes one change of t: its audit level, "schema change of <schema>.<table>: <what>" as the
 * message and the details (taken; NULL when building them ran out of memory). */
static int change_add(sink *s, sink_table *t, kf_audit_level level, const char *what,
                      json_t *details, kf_error *err)
{
    char *text = details ? json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(details);
    size_t cap = strlen(s->schema) + strlen(t->name) + strlen(what) + 32;
    char *message = malloc(cap);
    sink_change *grown = NULL;
    if (text && message)
        grown = realloc(t->changes, (t->nchanges + 1) * sizeof(*grown));
    if (!grown) {
        free(text);
        free(message);
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not note a schema change");
    }
    snprintf(message, cap, "schema change of %s.%s: %s", s->schema, t->name, what);
    t->changes = grown;
    t->changes[t->nchanges++] = (sink_change){level, message, text};
    return KF_OK;
}

/* The change of a batch that creates t: its columns, as created. */
static int note_create(sink *s, sink_table *t, kf_error *err)
{
    json_t *cols = json_array(), *d = NULL;
    size_t n = kf_table_ncolumns(t->target);
    for (size_t i = 0; cols && i < n; i++) {
        const kf_column *c = kf_table_column(t->target, i);
        char type[64];
        kf_coltype_format(c, type, sizeof(type));
        if (json_array_append_new(cols,
                                  json_pack("{s:s, s:s, s:b, s:i}", "name", c->name, "type", type,
                                            "nullable", c->nullable, "pk", c->pk_order)) < 0) {
            json_decref(cols);
            cols = NULL;
        }
    }
    if (cols)
        d = json_pack("{s:s, s:o}", "change", "create", "columns", cols);
    char what[64];
    snprintf(what, sizeof(what), "create (%zu columns)", n);
    return change_add(s, t, KF_AUDIT_INFO, what, d, err);
}

/* One change per step of t's plan, written as describe_plan writes them to schema_history. */
static int note_steps(sink *s, sink_table *t, kf_error *err)
{
    for (size_t i = 0; i < kf_plan_nsteps(t->plan); i++) {
        const kf_plan_step *st = kf_plan_step_at(t->plan, i);
        char from[64] = "", to[64], what[256];
        if (st->from)
            kf_coltype_format(st->from, from, sizeof(from));
        kf_coltype_format(st->to, to, sizeof(to));
        const char *action = kf_plan_action_name(st->action);
        json_t *d =
            json_pack("{s:s, s:s, s:s?, s:s, s:b}", "change", action, "column", st->column, "from",
                      st->from ? from : NULL, "to", to, "nullable", st->to->nullable);
        snprintf(what, sizeof(what), "%s %s %s->%s", action, st->column, from, to);
        int rc = change_add(s, t, st->warning ? KF_AUDIT_WARN : KF_AUDIT_INFO, what, d, err);
        if (rc < 0)
            return rc;
    }
    return KF_OK;
}

void sink_table_announce(sink *s, sink_table *t)
{
    /* the topic of the batch, when it read only one */
    const char *topic = t->nparts > 0 ? t->parts[0].part->topic : NULL;
    for (size_t k = 1; topic && k < t->nparts; k++)
        if (strcmp(t->parts[k].part->topic, topic) != 0)
            topic = NULL;
    for (size_t i = 0; i < t->nchanges; i++) {
        const sink_change *c = &t->changes[i];
        kf_audit_event ev = {.action = "schema_change",
                             .level = c->level,
                             .message = c->message,
                             .topic = topic,
                             .db = s->schema,
                             .table = t->name,
                             .has_schema_id = t->ddl_schema_id >= 0,
                             .schema_id = t->ddl_schema_id,
                             .details = c->details};
        kf_audit_emit(s->audit, &ev);
    }
    changes_clear(t);
}

void sink_table_unbind(sink_table *t)
{
    changes_clear(t);
    kf_plan_destroy(t->plan);
    t->plan = NULL;
    t->target = NULL;
    t->ev = NULL;
    t->bound_id = -1;
    free(t->stage_col);
    free(t->ev_col);
    free(t->bin);
    t->stage_col = t->ev_col = NULL;
    t->bin = NULL;
    t->binary = false;
    t->ncols = t->npk = 0;
    t->stage_gen = -1;
}

void sink_table_destroy(sink_table *t)
{
    if (!t)
        return;
    sink_table_unbind(t);
    kf_table_destroy(t->shape);
    free(t->shape_oid);
    kf_table_destroy(t->keyed);
    kf_buf_free(&t->sql_ddl);
    kf_buf_free(&t->sql_stage);
    kf_buf_free(&t->sql_upsert);
    kf_buf_free(&t->sql_delete);
    kf_buf_free(&t->sql_truncate);
    kf_buf_free(&t->sql_copy);
    kf_buf_free(&t->rows);
    kf_buf_free(&t->errors);
    free(t->recs);
    free(t->hash);
    free(t->parts);
    free(t->name);
    free(t);
}

/* Staging order: key columns first (so a row's key is a prefix of its COPY line), then the
 * rest in table order. */
static int build_order(sink_table *t, kf_error *err)
{
    const kf_table *d = t->target;
    size_t n = kf_table_ncolumns(d), npk = kf_table_npk(d);
    t->stage_col = calloc(n + 1, sizeof(int));
    t->ev_col = calloc(n + 1, sizeof(int));
    t->bin = calloc(n + 1, sizeof(*t->bin));
    if (!t->stage_col || !t->ev_col || !t->bin)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate a column map");
    size_t k = 0;
    for (size_t i = 0; i < npk; i++)
        t->stage_col[k++] = (int)kf_table_pk_column(d, i);
    for (size_t i = 0; i < n; i++)
        if (kf_table_column(d, i)->pk_order == 0)
            t->stage_col[k++] = (int)i;
    t->ncols = n;
    t->npk = npk;
    t->pk_ok = npk > 0;
    for (size_t p = 0; p < n; p++) {
        const kf_column *c = kf_table_column(d, (size_t)t->stage_col[p]);
        int e = kf_table_find(t->ev, c->name);
        if (e >= 0 && strcmp(kf_table_column(t->ev, (size_t)e)->name, c->name) != 0)
            e = -1;
        t->ev_col[p] = e;
        if (p < npk && e < 0)
            t->pk_ok = false;
    }
    return KF_OK;
}

/* Whether two descriptions name the same Postgres type (the plan left the column alone). */
static bool same_type(const kf_column *a, const kf_column *b)
{
    return a->type == b->type && a->length == b->length && a->precision == b->precision &&
           a->scale == b->scale;
}

/* The COPY format of the binding: binary when every staging column's binary form is known for
 * the destination's actual type (the catalog's, or the one the binding's DDL gives it) and
 * for the staging table's (which follows the target description), and the events' values can
 * be written in it; text otherwise, or when configured, or after Postgres refused the binary
 * data of this table. */
static void choose_format(sink *s, sink_table *t)
{
    bool binary = s->cfg->copy_format == SINK_COPY_BINARY && !t->bin_off;
    for (size_t p = 0; p < t->ncols; p++) {
        const kf_column *c = kf_table_column(t->target, (size_t)t->stage_col[p]);
        kf_pg_bin bin = kf_pg_bin_of_column(c);
        t->bin[p] = bin;
        if (bin == KF_PG_BIN_NONE)
            binary = false;
        int k = t->shape ? kf_table_find(t->shape, c->name) : -1;
        if (k >= 0) {
            const kf_column *have = kf_table_column(t->shape, (size_t)k);
            if (strcmp(have->name, c->name) == 0 && same_type(have, c) &&
                kf_pg_bin_of_oid(t->shape_oid[k]) != bin)
                binary = false;
        }
        if (t->ev_col[p] >= 0 &&
            !kf_pg_bin_accepts(bin, kf_table_column(t->ev, (size_t)t->ev_col[p])))
            binary = false;
    }
    t->binary = binary;
    kf_log(KF_LOG_DEBUG, "COPY format of the table", "table", t->name, "format",
           binary ? "binary" : "text", (char *)NULL);
}

static int col_list(sink *s, kf_buf *b, sink_table *t, const char *prefix, size_t from,
                    kf_error *err)
{
    int rc;
    for (size_t p = from; p < t->ncols; p++) {
        const kf_column *c = kf_table_column(t->target, (size_t)t->stage_col[p]);
        if ((p > from && (rc = kf_pg_buf_puts(b, ", ")) < 0) ||
            (prefix && (rc = kf_pg_buf_puts(b, prefix)) < 0))
            return SQL_GROW_ERR(rc, err);
        if ((rc = kf_pg_ident_append(s->conn, b, c->name, err)) < 0)
            return rc;
    }
    return KF_OK;
}

/* WHERE/AND t.k = s.k for every key column. */
static int key_match(sink *s, kf_buf *b, sink_table *t, kf_error *err)
{
    int rc;
    for (size_t p = 0; p < t->npk; p++) {
        const kf_column *c = kf_table_column(t->target, (size_t)t->stage_col[p]);
        if ((rc = kf_pg_buf_puts(b, " AND t.")) < 0)
            return SQL_GROW_ERR(rc, err);
        if ((rc = kf_pg_ident_append(s->conn, b, c->name, err)) < 0)
            return rc;
        if ((rc = kf_pg_buf_puts(b, " = s.")) < 0)
            return SQL_GROW_ERR(rc, err);
        if ((rc = kf_pg_ident_append(s->conn, b, c->name, err)) < 0)
            return rc;
    }
    return KF_OK;
}

static int build_sql(sink *s, sink_table *t, kf_error *err)
{
    char stage[32], type[64];
    snprintf(stage, sizeof(stage), "kf_stage_%zu", t->index);
    bool soft = s->cfg->deletion == SINK_DELETE_SOFT;
    int rc;
    kf_buf *b;

    b = &t->sql_stage;
    b->len = 0;
    if ((rc = kf_pg_buf_printf(b, "DROP TABLE IF EXISTS pg_temp.%s; CREATE TEMP TABLE %s (", stage,
                               stage)) < 0)
        return SQL_GROW_ERR(rc, err);
    for (size_t p = 0; p < t->ncols; p++) {
        const kf_column *c = kf_table_column(t->target, (size_t)t->stage_col[p]);
        if ((rc = kf_pg_ident_append(s->conn, b, c->name, err)) < 0)
            return rc;
        if ((rc = kf_pg_buf_printf(b, " %s, ", kf_pg_type_name(c, type, sizeof(type)))) < 0)
            return SQL_GROW_ERR(rc, err);
    }
    if ((rc = kf_pg_buf_printf(b, "_kf_del boolean) ON COMMIT DELETE ROWS;")) < 0)
        return SQL_GROW_ERR(rc, err);

    b = &t->sql_upsert;
    b->len = 0;
    if ((rc = kf_pg_buf_puts(b, "INSERT INTO ")) < 0)
        return SQL_GROW_ERR(rc, err);
    if ((rc = kf_pg_qualified_append(s->conn, b, s->schema, t->name, err)) < 0 ||
        (rc = kf_pg_buf_puts(b, " AS t (")) < 0 || (rc = col_list(s, b, t, NULL, 0, err)) < 0)
        return rc < 0 && err->code ? rc : SQL_GROW_ERR(rc, err);
    if (soft) {
        if ((rc = kf_pg_buf_puts(b, ", ")) < 0 ||
            (rc = kf_pg_ident_append(s->conn, b, s->cfg->soft_column, err)) < 0)
            return rc;
    }
    if ((rc = kf_pg_buf_puts(b, ") SELECT ")) < 0 || (rc = col_list(s, b, t, NULL, 0, err)) < 0)
        return rc;
    /* soft: deletes are upserts of the before image with the flag set */
    if ((rc = kf_pg_buf_printf(b, "%s FROM %s%s ON CONFLICT (", soft ? ", _kf_del" : "", stage,
                               soft ? "" : " WHERE NOT _kf_del")) < 0)
        return SQL_GROW_ERR(rc, err);
    for (size_t p = 0; p < t->npk; p++) {
        const kf_column *c = kf_table_column(t->target, (size_t)t->stage_col[p]);
        if ((p > 0 && (rc = kf_pg_buf_puts(b, ", ")) < 0) ||
            (rc = kf_pg_ident_append(s->conn, b, c->name, err)) < 0)
            return rc;
    }
    if (t->ncols == t->npk && !soft) {
        rc = kf_pg_buf_puts(b, ") DO NOTHING");
    } else {
        rc = kf_pg_buf_puts(b, ") DO UPDATE SET ");
        for (size_t p = t->npk; rc == 0 && p < t->ncols; p++) {
            const kf_column *c = kf_table_column(t->target, (size_t)t->stage_col[p]);
            if ((p > t->npk && (rc = kf_pg_buf_puts(b, ", ")) < 0) ||
                (rc = kf_pg_ident_append(s->conn, b, c->name, err)) < 0 ||
                (rc = kf_pg_buf_puts(b, " = EXCLUDED.")) < 0 ||
                (rc = kf_pg_ident_append(s->conn, b, c->name, err)) < 0)
                return rc;
        }
        if (rc == 0 && soft) {
            if ((t->ncols > t->npk && (rc = kf_pg_buf_puts(b, ", ")) < 0) ||
                (rc = kf_pg_ident_append(s->conn, b, s->cfg->soft_column, err)) < 0 ||
                (rc = kf_pg_buf_puts(b, " = EXCLUDED.")) < 0 ||
                (rc = kf_pg_ident_append(s->conn, b, s->cfg->soft_column, err)) < 0)
                return rc;
        }
    }
    if (rc < 0 || (rc = kf_pg_buf_puts(b, ";")) < 0)
        return SQL_GROW_ERR(rc, err);

    b = &t->sql_delete;
    b->len = 0;
    if ((rc = kf_pg_buf_puts(b, "")) < 0)
        return SQL_GROW_ERR(rc, err);
    if (!soft) {
        if ((rc = kf_pg_buf_puts(b, "DELETE FROM ")) < 0 ||
            (rc = kf_pg_qualified_append(s->conn, b, s->schema, t->name, err)) < 0)
            return rc;
        if ((rc = kf_pg_buf_printf(b, " AS t USING %s AS s WHERE s._kf_del", stage)) < 0)
            return SQL_GROW_ERR(rc, err);
        if ((rc = key_match(s, b, t, err)) < 0 || (rc = kf_pg_buf_puts(b, ";")) < 0)
            return rc;
    }

    b = &t->sql_copy;
    b->len = 0;
    if ((rc = kf_pg_buf_puts(b, "SAVEPOINT kf_fast; COPY ")) < 0 ||
        (rc = kf_pg_qualified_append(s->conn, b, s->schema, t->name, err)) < 0 ||
        (rc = kf_pg_buf_puts(b, " (")) < 0 || (rc = col_list(s, b, t, NULL, 0, err)) < 0 ||
        (rc = kf_pg_buf_puts(b, t->binary ? ") FROM STDIN (FORMAT binary)" : ") FROM STDIN")) < 0)
        return rc < 0 && err->code ? rc : SQL_GROW_ERR(rc, err);

    b = &t->sql_truncate;
    b->len = 0;
    if ((rc = kf_pg_buf_puts(b, soft ? "UPDATE " : "TRUNCATE ")) < 0 ||
        (rc = kf_pg_qualified_append(s->conn, b, s->schema, t->name, err)) < 0)
        return rc;
    if (soft && ((rc = kf_pg_buf_puts(b, " SET ")) < 0 ||
                 (rc = kf_pg_ident_append(s->conn, b, s->cfg->soft_column, err)) < 0 ||
                 (rc = kf_pg_buf_puts(b, " = true")) < 0))
        return rc;
    if ((rc = kf_pg_buf_puts(b, ";")) < 0)
        return SQL_GROW_ERR(rc, err);
    return KF_OK;
}

/* One schema_history row for the DDL just appended to t->sql_ddl. */
static int history_row(sink *s, sink_table *t, int32_t schema_id, const char *change,
                       size_t ddl_start, kf_error *err)
{
    kf_buf *b = &s->sql;
    b->len = 0;
    int rc;
    if ((rc = kf_pg_buf_printf(b,
                               "INSERT INTO kfleet_meta.schema_history (worker, table_schema, "
                               "table_name, schema_id, change, ddl) VALUES ('%s', ",
                               SINK_PROGRAM)) < 0)
        return SQL_GROW_ERR(rc, err);
    if ((rc = sink_sql_literal(s, b, s->schema, strlen(s->schema), err)) < 0 ||
        (rc = kf_pg_buf_puts(b, ", ")) < 0 ||
        (rc = sink_sql_literal(s, b, t->name, strlen(t->name), err)) < 0 ||
        (rc = kf_pg_buf_printf(b, ", %d, ", (int)schema_id)) < 0 ||
        (rc = sink_sql_literal(s, b, change, strlen(change), err)) < 0 ||
        (rc = kf_pg_buf_puts(b, ", ")) < 0 ||
        (rc = sink_sql_literal(s, b, (const char *)t->sql_ddl.data + ddl_start,
                               t->sql_ddl.len - ddl_start, err)) < 0 ||
        (rc = kf_pg_buf_puts(b, ");")) < 0)
        return rc < 0 && err->code ? rc : SQL_GROW_ERR(rc, err);
    if ((rc = kf_pg_buf_append(&t->sql_ddl, (const char *)b->data, b->len)) < 0)
        return SQL_GROW_ERR(rc, err);
    return KF_OK;
}

/* Describes the plan's steps for schema_history.change and logs its warnings. */
static void describe_plan(sink_table *t, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < kf_plan_nsteps(t->plan); i++) {
        const kf_plan_step *st = kf_plan_step_at(t->plan, i);
        char from[64] = "", to[64];
        if (st->from)
            kf_coltype_format(st->from, from, sizeof(from));
        kf_coltype_format(st->to, to, sizeof(to));
        if (st->warning)
            kf_log(KF_LOG_WARN, "schema change kept wide or widened to text", "table", t->name,
                   "column", st->column, "action", kf_plan_action_name(st->action), "from", from,
                   "to", to, (char *)NULL);
        int w = snprintf(out + n, cap - n, "%s%s %s %s->%s", n ? "; " : "",
                         kf_plan_action_name(st->action), st->column, from, to);
        if (w < 0 || (size_t)w >= cap - n)
            break;
        n += (size_t)w;
    }
}

int sink_table_join(sink_table *t, int32_t schema_id, const kf_table *ev, kf_error *err)
{
    if (t->bound_id < 0 || !t->target || !t->pk_ok || t->bound_version != t->shape_version)
        return 0;
    kf_plan *p = kf_plan_compute(t->target, ev, err);
    if (!p)
        return err->code == KF_ERR_NOMEM ? err->code : 0;
    bool same = !kf_plan_changes_destination(p) && !kf_plan_pk_changed(p);
    kf_plan_destroy(p);
    if (!same)
        return 0;
    int *ev_col = calloc(t->ncols + 1, sizeof(int));
    if (!ev_col)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate a column map");
    for (size_t k = 0; k < t->ncols; k++) {
        const kf_column *c = kf_table_column(t->target, (size_t)t->stage_col[k]);
        int e = kf_table_find(ev, c->name);
        if (e >= 0 && strcmp(kf_table_column(ev, (size_t)e)->name, c->name) != 0)
            e = -1;
        /* every key column, and values the batch's COPY format can carry */
        if ((k < t->npk && e < 0) ||
            (t->binary && e >= 0 &&
             !kf_pg_bin_accepts(t->bin[k], kf_table_column(ev, (size_t)e)))) {
            free(ev_col);
            return 0;
        }
        ev_col[k] = e;
    }
    free(t->ev_col);
    t->ev_col = ev_col;
    t->ev = ev;
    t->bound_id = schema_id;
    return 1;
}

int sink_table_bind(sink *s, sink_table *t, int32_t schema_id, const kf_table *ev, kf_error *err)
{
    if (t->bound_id == schema_id && t->bound_version == t->shape_version && t->ev == ev)
        return KF_OK;
    sink_apply_wait(s); /* the batch in flight uses the binding's statements */
    sink_table_unbind(t);
    int rc = sink_pg_ensure(s, err); /* quoting uses the connection's encoding */
    if (rc < 0)
        return rc;
    if (t->shape_version < 0 && (rc = sink_table_refresh(s, t, err)) < 0)
        return rc;
    if (!t->shape && !s->cfg->auto_create)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "table \"%s\" does not exist and sink.auto_create is off", t->name);
    if (!t->shape && kf_table_npk(ev) == 0)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "cannot create table \"%s\": the events carry no primary key", t->name);
    t->plan = kf_plan_compute(t->shape, ev, err);
    if (!t->plan)
        return err->code;
    t->ev = ev;
    t->target = kf_plan_result(t->plan);
    t->creates = t->shape == NULL;
    if (kf_plan_pk_changed(t->plan))
        kf_log(KF_LOG_WARN,
               "primary key of the events differs from the table's; keeping the table's", "table",
               t->name, (char *)NULL);
    if ((rc = build_order(t, err)) < 0)
        goto out_unbind;
    choose_format(s, t);
    if ((rc = build_sql(s, t, err)) < 0)
        goto out_unbind;
    t->sql_ddl.len = 0;
    if ((rc = kf_pg_buf_puts(&t->sql_ddl, "")) < 0) {
        rc = SQL_GROW_ERR(rc, err);
        goto out_unbind;
    }
    if (t->creates || kf_plan_changes_destination(t->plan)) {
        char lock[64];
        snprintf(lock, sizeof(lock), "SELECT pg_advisory_xact_lock(hashtext(");
        if ((rc = kf_pg_buf_puts(&t->sql_ddl, lock)) < 0 ||
            (rc = sink_sql_literal(s, &t->sql_ddl, t->name, strlen(t->name), err)) < 0 ||
            (rc = kf_pg_buf_puts(&t->sql_ddl, "));")) < 0)
            goto out_unbind;
        size_t start = t->sql_ddl.len;
        char change[1024];
        if (t->creates) {
            rc = kf_pg_create_table_sql(
                s->conn, &t->sql_ddl, s->schema, t->name, t->target,
                s->cfg->deletion == SINK_DELETE_SOFT ? s->cfg->soft_column : NULL, err);
            snprintf(change, sizeof(change), "create");
        } else {
            rc = kf_pg_plan_sql(s->conn, &t->sql_ddl, s->schema, t->name, t->plan, err);
            describe_plan(t, change, sizeof(change));
        }
        if (rc < 0 || (rc = history_row(s, t, schema_id, change, start, err)) < 0)
            goto out_unbind;
        /* what the audit events say once the batch committed */
        t->ddl_schema_id = schema_id;
        if (s->audit && (rc = t->creates ? note_create(s, t, err) : note_steps(s, t, err)) < 0)
            goto out_unbind;
    } else {
        char change[1024];
        describe_plan(t, change, sizeof(change));
    }
    t->bound_id = schema_id;
    t->bound_version = t->shape_version;
    return KF_OK;

out_unbind:
    sink_table_unbind(t);
    return rc;
}
