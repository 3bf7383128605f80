/* PostgreSQL and MariaDB outputs: CREATE/ALTER TABLE from the live table shape, and each
 * batch's changes in one transaction, set-based: per table one COPY (PostgreSQL) or
 * multi-row INSERT (MariaDB) for the inserts, one UPDATE ... FROM (VALUES ...) per set of
 * changed columns (PostgreSQL; MariaDB updates row by row) and one DELETE ... IN (...) for
 * the deletes. A change to a key that already has a pending change first sends what is
 * pending, so the statements of one flush touch distinct keys and their order is free.
 * Identifiers are always quoted (PQescapeIdentifier, or backticks with doubling); values
 * travel as libpq parameters, COPY text, or literals escaped by mysql_real_escape_string. */
#include "sql_out.h"

#include <ctype.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cells.h"
#include "kfleet/log.h"
#include "mem.h"

typedef struct mysql_dsn {
    char *user, *password, *host, *db;
    unsigned port;
} mysql_dsn;

/* A table's pending changes are sent once a statement holds this many parameters or bytes:
 * well below PostgreSQL's limit of 65535 parameters per statement (a row adds at most one
 * per column) and MariaDB's default max_allowed_packet of 16 MiB. */
#define FLUSH_PARAMS 30000
#define FLUSH_BYTES  ((size_t)4 * 1024 * 1024)

/* One statement being accumulated: its text and, for PostgreSQL, its parameters (or the
 * data of a COPY). */
typedef struct stmt {
    kf_sim_buf sql;
    kf_sim_buf vals; /* PostgreSQL parameters, each NUL-terminated; or COPY text rows */
    size_t *off;     /* per parameter: offset into vals, or SIZE_MAX for NULL */
    size_t nparams, cap;
    size_t rows; /* changes in it */
} stmt;

typedef struct stable {
    char *qname;  /* quoted, schema-qualified table name */
    char **qcols; /* per spec column: the quoted column name */
    size_t ncols;
    /* the pending changes of the open transaction */
    kf_sim_hset keys; /* hashes of their keys (a collision only sends them early) */
    stmt ins, del;
    stmt upd;                /* PostgreSQL: the set-based UPDATE */
    unsigned char *upd_cols; /* per column: set by upd (the active non-key columns) */
    size_t pending;
    uint64_t first_seq, last_seq;
} stable;

typedef struct sout {
    kf_sim_sql_dialect d;
    char *dsn;
    char *schema;
    bool replace;
    PGconn *pg;
    MYSQL *my;
    const kf_sim_engine *e;
    stable *tables;
    size_t ntables;
    stmt one;            /* DDL, and MariaDB's single-row updates */
    kf_sim_buf text;     /* one value as text */
    unsigned char *mask; /* scratch: the changed columns of an update */
    size_t mask_len;
    const char **params; /* PQexecParams' values, rebuilt for each statement */
    size_t cap_params;
    bool in_txn;
    bool failed;            /* a statement of the open transaction failed: roll it back */
    uint64_t pending_seq;   /* the last change inside the open transaction */
    uint64_t committed_seq; /* the last change committed */
} sout;

static const kf_sim_output_ops sql_ops;

/* ---- connections and statements ---- */

static int pg_fail(sout *o, PGresult *res, const char *what, kf_error *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(o->pg);
    char reason[512];
    snprintf(reason, sizeof(reason), "%s", msg && *msg ? msg : "unknown error");
    reason[strcspn(reason, "\n")] = '\0';
    /* SQLSTATE class 08 (connection), 40001, 40P01 and 57P01 may pass on a retry. */
    bool retriable = !state || strncmp(state, "08", 2) == 0 || strcmp(state, "40001") == 0 ||
                     strcmp(state, "40P01") == 0 || strcmp(state, "57P01") == 0;
    int rc = kf_error_set(err, KF_ERR_IO, retriable, "could not %s: %s%s%s%s", what, reason,
                          state ? " (SQLSTATE " : "", state ? state : "", state ? ")" : "");
    PQclear(res);
    return rc;
}

static int my_fail(sout *o, const char *what, kf_error *err)
{
    unsigned code = mysql_errno(o->my);
    /* 2002-2013: client connection errors; 1205 lock wait timeout; 1213 deadlock. */
    bool retriable = (code >= 2002 && code <= 2013) || code == 1205 || code == 1213;
    return kf_error_set(err, KF_ERR_IO, retriable, "could not %s: %s (error %u)", what,
                        mysql_error(o->my), code);
}

/* Runs a statement without parameters. */
static int exec_sql(sout *o, const char *sql, const char *what, kf_error *err)
{
    if (o->d == KF_SIM_SQL_POSTGRES) {
        PGresult *res = PQexec(o->pg, sql);
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
            return pg_fail(o, res, what, err);
        PQclear(res);
        return KF_OK;
    }
    if (mysql_real_query(o->my, sql, (unsigned long)strlen(sql)) != 0)
        return my_fail(o, what, err);
    MYSQL_RES *res = mysql_store_result(o->my);
    mysql_free_result(res);
    return KF_OK;
}

/* Runs s with its parameters (PostgreSQL) or as it is (MariaDB). */
static int exec_stmt(sout *o, stmt *s, const char *what, kf_error *err)
{
    if (o->d == KF_SIM_SQL_MYSQL) {
        if (mysql_real_query(o->my, s->sql.data, (unsigned long)s->sql.len) != 0)
            return my_fail(o, what, err);
        return KF_OK;
    }
    if (s->nparams > o->cap_params) {
        const char **ps = realloc(o->params, s->nparams * sizeof(*ps));
        if (!ps)
            return kf_error_set(err, KF_ERR_NOMEM, false, "could not %s: out of memory", what);
        o->params = ps;
        o->cap_params = s->nparams;
    }
    for (size_t i = 0; i < s->nparams; i++)
        o->params[i] = s->off[i] == SIZE_MAX ? NULL : s->vals.data + s->off[i];
    PGresult *res =
        PQexecParams(o->pg, s->sql.data, (int)s->nparams, NULL, o->params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return pg_fail(o, res, what, err);
    PQclear(res);
    return KF_OK;
}

/* Runs the COPY ... FROM STDIN in s->sql with s->vals as its data. */
static int exec_copy(sout *o, stmt *s, const char *what, kf_error *err)
{
    PGresult *res = PQexec(o->pg, s->sql.data);
    if (PQresultStatus(res) != PGRES_COPY_IN)
        return pg_fail(o, res, what, err);
    PQclear(res);
    int ok =
        PQputCopyData(o->pg, s->vals.data, (int)s->vals.len) == 1 && PQputCopyEnd(o->pg, NULL) == 1;
    int rc = KF_OK;
    /* Read every result, so the connection is ready for the next statement either way. */
    while ((res = PQgetResult(o->pg))) {
        if (rc == KF_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
            rc = pg_fail(o, res, what, err);
            continue;
        }
        PQclear(res);
    }
    if (rc == KF_OK && !ok)
        rc = pg_fail(o, NULL, what, err);
    return rc;
}

static int begin_txn(sout *o, kf_error *err)
{
    if (o->in_txn)
        return KF_OK;
    int rc = exec_sql(o, o->d == KF_SIM_SQL_POSTGRES ? "BEGIN" : "START TRANSACTION",
                      "begin a transaction", err);
    if (rc == KF_OK)
        o->in_txn = true;
    return rc;
}

static int flush_all(sout *o, kf_error *err);

/* Sends the pending changes and commits. */
static int commit_txn(sout *o, kf_error *err)
{
    if (!o->in_txn)
        return KF_OK;
    int rc = flush_all(o, err);
    if (rc != KF_OK)
        return rc;
    o->in_txn = false;
    rc = exec_sql(o, "COMMIT", "commit the batch", err);
    if (rc == KF_OK)
        o->committed_seq = o->pending_seq;
    return rc;
}

/* ---- names ---- */

static char *quote_ident(sout *o, const char *name)
{
    if (o->d == KF_SIM_SQL_POSTGRES) {
        char *q = PQescapeIdentifier(o->pg, name, strlen(name));
        char *copy = q ? strdup(q) : NULL;
        PQfreemem(q);
        return copy;
    }
    size_t n = strlen(name);
    char *q = malloc(2 * n + 3);
    if (!q)
        return NULL;
    char *p = q;
    *p++ = '`';
    for (size_t i = 0; i < n; i++) {
        if (name[i] == '`')
            *p++ = '`';
        *p++ = name[i];
    }
    *p++ = '`';
    *p = '\0';
    return q;
}

void kf_sim_sql_type(kf_sim_sql_dialect d, const kf_sim_coltype *t, bool key, char *buf, size_t len)
{
    bool pg = d == KF_SIM_SQL_POSTGRES;
    switch (t->type) {
    case KF_SIM_SMALLINT:
        snprintf(buf, len, "smallint");
        break;
    case KF_SIM_INT:
        snprintf(buf, len, pg ? "integer" : "int");
        break;
    case KF_SIM_BIGINT:
        snprintf(buf, len, "bigint");
        break;
    case KF_SIM_FLOAT:
        snprintf(buf, len, pg ? "real" : "float");
        break;
    case KF_SIM_DOUBLE:
        snprintf(buf, len, pg ? "double precision" : "double");
        break;
    case KF_SIM_DECIMAL:
        snprintf(buf, len, "%s(%d,%d)", pg ? "numeric" : "decimal", t->precision, t->scale);
        break;
    case KF_SIM_BOOL:
        snprintf(buf, len, "boolean");
        break;
    case KF_SIM_TEXT:
        snprintf(buf, len, pg || !key ? "text" : "varchar(255)");
        break;
    case KF_SIM_VARCHAR:
        snprintf(buf, len, "varchar(%d)", t->length);
        break;
    case KF_SIM_DATE:
        snprintf(buf, len, "date");
        break;
    case KF_SIM_TIMESTAMP:
        snprintf(buf, len, pg ? "timestamp(6)" : "datetime(6)");
        break;
    case KF_SIM_TIMESTAMPTZ:
        /* MariaDB has no zoned type: UTC in a datetime (the session runs at +00:00). */
        snprintf(buf, len, pg ? "timestamptz(6)" : "datetime(6)");
        break;
    case KF_SIM_UUID:
        snprintf(buf, len, pg ? "uuid" : "char(36)");
        break;
    case KF_SIM_JSON:
        snprintf(buf, len, pg ? "jsonb" : "json");
        break;
    }
}

/* ---- values ---- */

static void stmt_clear(stmt *s)
{
    kf_sim_buf_clear(&s->sql);
    kf_sim_buf_clear(&s->vals);
    s->nparams = 0;
    s->rows = 0;
}

static void stmt_free(stmt *s)
{
    kf_sim_buf_free(&s->sql);
    kf_sim_buf_free(&s->vals);
    free(s->off);
    memset(s, 0, sizeof(*s));
}

static int add_param(stmt *s, size_t off)
{
    if (s->nparams == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        size_t *offs = realloc(s->off, cap * sizeof(*offs));
        if (!offs)
            return KF_ERR_NOMEM;
        s->off = offs;
        s->cap = cap;
    }
    s->off[s->nparams++] = off;
    return KF_OK;
}

/* The PostgreSQL type a parameter is cast to: the column's type without its length or
 * precision, so that the assignment to the column still refuses a value that does not fit
 * (an explicit cast to varchar(n) would cut it silently). */
static const char *pg_param_type(const kf_sim_coltype *t)
{
    switch (t->type) {
    case KF_SIM_SMALLINT:
        return "smallint";
    case KF_SIM_INT:
        return "integer";
    case KF_SIM_BIGINT:
        return "bigint";
    case KF_SIM_FLOAT:
        return "real";
    case KF_SIM_DOUBLE:
        return "double precision";
    case KF_SIM_DECIMAL:
        return "numeric";
    case KF_SIM_BOOL:
        return "boolean";
    case KF_SIM_DATE:
        return "date";
    case KF_SIM_TIMESTAMP:
        return "timestamp";
    case KF_SIM_TIMESTAMPTZ:
        return "timestamptz";
    case KF_SIM_UUID:
        return "uuid";
    case KF_SIM_JSON:
        return "jsonb";
    case KF_SIM_TEXT:
    case KF_SIM_VARCHAR:
    default:
        return "text";
    }
}

/* Appends the value of cell c (column type t) to s: "$n" with a parameter (cast to the
 * column's type when cast), or an escaped literal. */
static int put_value(sout *o, stmt *s, const kf_sim_coltype *t, const kf_sim_cell *c, bool cast)
{
    if (o->d == KF_SIM_SQL_POSTGRES) {
        size_t off = SIZE_MAX;
        int rc = KF_OK;
        if (c->kind != KF_SIM_CELL_NULL) {
            off = s->vals.len;
            rc = kf_sim_cell_text(&s->vals, t, c, KF_SIM_BOOL_WORDS, true);
            if (rc == KF_OK)
                rc = kf_sim_buf_putc(&s->vals, '\0');
        }
        if (rc == KF_OK)
            rc = add_param(s, off);
        if (rc == KF_OK)
            rc = kf_sim_buf_putc(&s->sql, '$');
        if (rc == KF_OK)
            rc = kf_sim_buf_putu(&s->sql, s->nparams);
        if (rc == KF_OK && cast) {
            rc = kf_sim_buf_puts(&s->sql, "::");
            if (rc == KF_OK)
                rc = kf_sim_buf_puts(&s->sql, pg_param_type(t));
        }
        return rc;
    }
    if (c->kind == KF_SIM_CELL_NULL)
        return kf_sim_buf_puts(&s->sql, "NULL");
    kf_sim_buf_clear(&o->text);
    int rc = kf_sim_cell_text(&o->text, t, c, KF_SIM_BOOL_DIGITS, false);
    if (rc == KF_OK)
        rc = kf_sim_buf_reserve(&s->sql, 2 * o->text.len + 3);
    if (rc != KF_OK)
        return rc;
    s->sql.data[s->sql.len++] = '\'';
    s->sql.len += mysql_real_escape_string(o->my, s->sql.data + s->sql.len, o->text.data,
                                           (unsigned long)o->text.len);
    s->sql.data[s->sql.len++] = '\'';
    s->sql.data[s->sql.len] = '\0';
    return KF_OK;
}

/* Appends the non-null cell c to COPY text data: backslash, tab, newline and carriage return
 * escaped. */
static int put_copy_value(sout *o, kf_sim_buf *b, const kf_sim_coltype *t, const kf_sim_cell *c)
{
    if (c->kind == KF_SIM_CELL_NULL)
        return kf_sim_buf_puts(b, "\\N");
    kf_sim_buf_clear(&o->text);
    int rc = kf_sim_cell_text(&o->text, t, c, KF_SIM_BOOL_WORDS, true);
    if (rc == KF_OK)
        rc = kf_sim_buf_reserve(b, 2 * o->text.len);
    if (rc != KF_OK)
        return rc;
    for (size_t i = 0; i < o->text.len; i++) {
        char ch = o->text.data[i];
        char esc = ch == '\\' ? '\\' : ch == '\t' ? 't' : ch == '\n' ? 'n' : ch == '\r' ? 'r' : 0;
        if (esc) {
            b->data[b->len++] = '\\';
            ch = esc;
        }
        b->data[b->len++] = ch;
    }
    b->data[b->len] = '\0';
    return KF_OK;
}

/* "(c1, c2, ...)" of the active columns of t. */
static int put_active_columns(kf_sim_buf *b, const stable *st, const kf_sim_table *t)
{
    int rc = kf_sim_buf_putc(b, '(');
    bool first = true;
    for (size_t c = 0; c < t->ncolumns && rc == KF_OK; c++) {
        if (!kf_sim_table_active(t, c))
            continue;
        if (!first)
            rc = kf_sim_buf_puts(b, ", ");
        first = false;
        if (rc == KF_OK)
            rc = kf_sim_buf_puts(b, st->qcols[c]);
    }
    return rc == KF_OK ? kf_sim_buf_putc(b, ')') : rc;
}

/* An insert: a COPY text row (PostgreSQL) or a row of the multi-row INSERT (MariaDB). */
static int add_insert(sout *o, stable *st, const kf_sim_table *t, const kf_sim_row *after)
{
    stmt *s = &st->ins;
    bool pg = o->d == KF_SIM_SQL_POSTGRES;
    int rc = KF_OK;
    if (s->rows == 0) {
        rc = kf_sim_buf_puts(&s->sql, pg ? "COPY " : "INSERT INTO ");
        if (rc == KF_OK)
            rc = kf_sim_buf_puts(&s->sql, st->qname);
        if (rc == KF_OK)
            rc = kf_sim_buf_putc(&s->sql, ' ');
        if (rc == KF_OK)
            rc = put_active_columns(&s->sql, st, t);
        if (rc == KF_OK)
            rc = kf_sim_buf_puts(&s->sql, pg ? " FROM STDIN" : " VALUES ");
    } else if (!pg) {
        rc = kf_sim_buf_puts(&s->sql, ", ");
    }
    if (rc == KF_OK && !pg)
        rc = kf_sim_buf_putc(&s->sql, '(');
    bool first = true;
    for (size_t c = 0; c < t->ncolumns && rc == KF_OK; c++) {
        if (!kf_sim_table_active(t, c))
            continue;
        if (!first)
            rc = pg ? kf_sim_buf_putc(&s->vals, '\t') : kf_sim_buf_puts(&s->sql, ", ");
        first = false;
        if (rc == KF_OK)
            rc = pg ? put_copy_value(o, &s->vals, &t->type[c], &after->cells[c])
                    : put_value(o, s, &t->type[c], &after->cells[c], false);
    }
    if (rc == KF_OK)
        rc = pg ? kf_sim_buf_putc(&s->vals, '\n') : kf_sim_buf_putc(&s->sql, ')');
    if (rc == KF_OK)
        s->rows++;
    return rc;
}

/* A delete: its key joins "DELETE FROM t WHERE k IN (...)", or "(k1, k2) IN ((..), ..)"
 * for a composite key. */
static int add_delete(sout *o, stable *st, const kf_sim_table *t, const kf_sim_row *key)
{
    stmt *s = &st->del;
    size_t nkey = t->spec->nkey;
    int rc = KF_OK;
    if (s->rows == 0) {
        rc = kf_sim_buf_puts(&s->sql, "DELETE FROM ");
        if (rc == KF_OK)
            rc = kf_sim_buf_puts(&s->sql, st->qname);
        if (rc == KF_OK)
            rc = kf_sim_buf_puts(&s->sql, nkey > 1 ? " WHERE (" : " WHERE ");
        for (size_t k = 0; k < nkey && rc == KF_OK; k++) {
            if (k)
                rc = kf_sim_buf_puts(&s->sql, ", ");
            if (rc == KF_OK)
                rc = kf_sim_buf_puts(&s->sql, st->qcols[t->spec->key[k]]);
        }
        if (rc == KF_OK)
            rc = kf_sim_buf_puts(&s->sql, nkey > 1 ? ") IN (" : " IN (");
    } else {
        rc = kf_sim_buf_puts(&s->sql, ", ");
    }
    if (rc == KF_OK && nkey > 1)
        rc = kf_sim_buf_putc(&s->sql, '(');
    for (size_t k = 0; k < nkey && rc == KF_OK; k++) {
        if (k)
            rc = kf_sim_buf_puts(&s->sql, ", ");
        if (rc == KF_OK)
            rc = put_value(o, s, &t->type[t->spec->key[k]], &key->cells[k], false);
    }
    if (rc == KF_OK && nkey > 1)
        rc = kf_sim_buf_putc(&s->sql, ')');
    if (rc == KF_OK)
        s->rows++;
    return rc;
}

/* Marks in o->mask the columns an update changes; false when it changes none. */
static bool changed_columns(sout *o, const kf_sim_table *t, const kf_sim_change *ch)
{
    bool any = false;
    for (size_t c = 0; c < t->ncolumns; c++) {
        o->mask[c] = kf_sim_table_active(t, c) && !t->spec->columns[c].is_key &&
                     !kf_sim_cell_equal(&ch->before->cells[c], &ch->after->cells[c]);
        any = any || o->mask[c];
    }
    return any;
}

/* An update setting the columns marked in cols: one statement with the changed columns
 * (MariaDB), or a row of the table's PostgreSQL UPDATE, which sets every active non-key
 * column (the unchanged ones to the values they hold), so that one statement serves updates
 * of any columns:
 *   UPDATE t AS t SET c = v.c, ... FROM (VALUES ($1::k, $2::c), ...) AS v(k, c)
 *   WHERE t.k = v.k
 * (the tail after VALUES is added when the statement is sent). */
static int add_update(sout *o, stmt *s, const stable *st, const kf_sim_table *t,
                      const kf_sim_change *ch, const unsigned char *cols)
{
    bool pg = o->d == KF_SIM_SQL_POSTGRES;
    int rc = KF_OK;
    if (s->rows == 0 || !pg) {
        rc = kf_sim_buf_puts(&s->sql, "UPDATE ");
        if (rc == KF_OK)
            rc = kf_sim_buf_puts(&s->sql, st->qname);
        if (rc == KF_OK)
            rc = kf_sim_buf_puts(&s->sql, pg ? " AS t SET " : " SET ");
        bool first = true;
        for (size_t c = 0; c < t->ncolumns && rc == KF_OK; c++) {
            if (!cols[c])
                continue;
            if (!first)
                rc = kf_sim_buf_puts(&s->sql, ", ");
            first = false;
            if (rc == KF_OK)
                rc = kf_sim_buf_puts(&s->sql, st->qcols[c]);
            if (rc == KF_OK)
                rc = kf_sim_buf_puts(&s->sql, pg ? " = v." : " = ");
            if (rc == KF_OK)
                rc = pg ? kf_sim_buf_puts(&s->sql, st->qcols[c])
                        : put_value(o, s, &t->type[c], &ch->after->cells[c], false);
        }
        if (rc == KF_OK && pg)
            rc = kf_sim_buf_puts(&s->sql, " FROM (VALUES ");
    } else {
        rc = kf_sim_buf_puts(&s->sql, ", ");
    }
    if (!pg) {
        rc = rc == KF_OK ? kf_sim_buf_puts(&s->sql, " WHERE ") : rc;
        for (size_t k = 0; k < t->spec->nkey && rc == KF_OK; k++) {
            size_t col = t->spec->key[k];
            if (k)
                rc = kf_sim_buf_puts(&s->sql, " AND ");
            if (rc == KF_OK)
                rc = kf_sim_buf_puts(&s->sql, st->qcols[col]);
            if (rc == KF_OK)
                rc = kf_sim_buf_puts(&s->sql, " = ");
            if (rc == KF_OK)
                rc = put_value(o, s, &t->type[col], &ch->key->cells[k], false);
        }
        if (rc == KF_OK)
            s->rows++;
        return rc;
    }
    rc = rc == KF_OK ? kf_sim_buf_putc(&s->sql, '(') : rc;
    for (size_t k = 0; k < t->spec->nkey && rc == KF_OK; k++) {
        size_t col = t->spec->key[k];
        if (k)
            rc = kf_sim_buf_puts(&s->sql, ", ");
        if (rc == KF_OK)
            rc = put_value(o, s, &t->type[col], &ch->key->cells[k], true);
    }
    for (size_t c = 0; c < t->ncolumns && rc == KF_OK; c++) {
        if (!cols[c])
            continue;
        rc = kf_sim_buf_puts(&s->sql, ", ");
        if (rc == KF_OK)
            rc = put_value(o, s, &t->type[c], &ch->after->cells[c], true);
    }
    if (rc == KF_OK)
        rc = kf_sim_buf_putc(&s->sql, ')');
    if (rc == KF_OK)
        s->rows++;
    return rc;
}

/* Closes a PostgreSQL update group: ") AS v(k, c, ...) WHERE t.k = v.k AND ...". */
static int finish_update(stmt *s, const stable *st, const kf_sim_table *t,
                         const unsigned char *mask)
{
    int rc = kf_sim_buf_puts(&s->sql, ") AS v(");
    for (size_t k = 0; k < t->spec->nkey && rc == KF_OK; k++) {
        if (k)
            rc = kf_sim_buf_puts(&s->sql, ", ");
        if (rc == KF_OK)
            rc = kf_sim_buf_puts(&s->sql, st->qcols[t->spec->key[k]]);
    }
    for (size_t c = 0; c < t->ncolumns && rc == KF_OK; c++) {
        if (!mask[c])
            continue;
        rc = kf_sim_buf_puts(&s->sql, ", ");
        if (rc == KF_OK)
            rc = kf_sim_buf_puts(&s->sql, st->qcols[c]);
    }
    rc = rc == KF_OK ? kf_sim_buf_puts(&s->sql, ") WHERE ") : rc;
    for (size_t k = 0; k < t->spec->nkey && rc == KF_OK; k++) {
        const char *q = st->qcols[t->spec->key[k]];
        if (k)
            rc = kf_sim_buf_puts(&s->sql, " AND ");
        if (rc == KF_OK)
            rc = kf_sim_buf_puts(&s->sql, "t.");
        if (rc == KF_OK)
            rc = kf_sim_buf_puts(&s->sql, q);
        if (rc == KF_OK)
            rc = kf_sim_buf_puts(&s->sql, " = v.");
        if (rc == KF_OK)
            rc = kf_sim_buf_puts(&s->sql, q);
    }
    return rc;
}

/* A hash of the key cells; equal keys hash equal. */
static uint64_t key_hash(const kf_sim_row *key)
{
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (size_t k = 0; k < key->ncells; k++) {
        h ^= kf_sim_cell_hash(&key->cells[k]) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    }
    return h;
}

/* What a statement of a flush does, for its error message. */
static void step_what(char *buf, size_t len, const stable *st, const kf_sim_table *t,
                      const char *verb)
{
    snprintf(buf, len, "apply %zu changes (%" PRIu64 "..%" PRIu64 ") to table \"%s\" (%s)",
             st->pending, st->first_seq, st->last_seq, t->spec->name, verb);
}

/* Sends the pending changes of table ti: inserts, then updates, then deletes (they touch
 * distinct keys, so any order gives the same rows). */
static int flush_table(sout *o, size_t ti, kf_error *err)
{
    stable *st = &o->tables[ti];
    if (st->pending == 0)
        return KF_OK;
    const kf_sim_table *t = kf_sim_engine_table(o->e, ti);
    bool pg = o->d == KF_SIM_SQL_POSTGRES;
    int rc = KF_OK;
    char step[300];
    if (st->ins.rows > 0) {
        step_what(step, sizeof(step), st, t, pg ? "COPY" : "INSERT");
        rc = pg ? exec_copy(o, &st->ins, step, err) : exec_stmt(o, &st->ins, step, err);
    }
    if (rc == KF_OK && st->upd.rows > 0) {
        step_what(step, sizeof(step), st, t, "UPDATE");
        rc = finish_update(&st->upd, st, t, st->upd_cols);
        if (rc != KF_OK)
            rc = kf_error_set(err, rc, false, "could not build the UPDATE: out of memory");
        else
            rc = exec_stmt(o, &st->upd, step, err);
    }
    if (rc == KF_OK && st->del.rows > 0) {
        step_what(step, sizeof(step), st, t, "DELETE");
        rc = kf_sim_buf_putc(&st->del.sql, ')');
        if (rc != KF_OK)
            rc = kf_error_set(err, rc, false, "could not build the DELETE: out of memory");
        else
            rc = exec_stmt(o, &st->del, step, err);
    }
    if (rc != KF_OK) {
        o->failed = true;
        return rc;
    }
    stmt_clear(&st->ins);
    stmt_clear(&st->del);
    stmt_clear(&st->upd);
    st->pending = 0;
    kf_sim_hset_clear(&st->keys);
    return KF_OK;
}

static int flush_all(sout *o, kf_error *err)
{
    for (size_t i = 0; i < o->ntables; i++) {
        int rc = flush_table(o, i, err);
        if (rc != KF_OK)
            return rc;
    }
    return KF_OK;
}

/* Whether a statement of st has grown enough to be sent. */
static bool table_full(const stable *st)
{
    if (st->ins.vals.len + st->ins.sql.len >= FLUSH_BYTES || st->ins.nparams >= FLUSH_PARAMS ||
        st->del.sql.len >= FLUSH_BYTES || st->del.nparams >= FLUSH_PARAMS)
        return true;
    if (st->upd.sql.len + st->upd.vals.len >= FLUSH_BYTES || st->upd.nparams >= FLUSH_PARAMS)
        return true;
    return false;
}

/* ---- the output ---- */

static void sout_destroy(void *self)
{
    sout *o = self;
    if (!o)
        return;
    for (size_t i = 0; o->tables && i < o->ntables; i++) {
        stable *st = &o->tables[i];
        for (size_t c = 0; st->qcols && c < st->ncols; c++)
            free(st->qcols[c]);
        free(st->qcols);
        free(st->qname);
        kf_sim_hset_free(&st->keys);
        stmt_free(&st->ins);
        stmt_free(&st->del);
        stmt_free(&st->upd);
        free(st->upd_cols);
    }
    free(o->tables);
    if (o->pg)
        PQfinish(o->pg);
    if (o->my)
        mysql_close(o->my);
    stmt_free(&o->one);
    free(o->mask);
    kf_sim_buf_free(&o->text);
    free(o->params);
    free(o->dsn);
    free(o->schema);
    free(o);
}

int kf_sim_sql_output_new(const kf_sim_sql_config *cfg, kf_sim_output *out, kf_error *err)
{
    sout *o = calloc(1, sizeof(*o));
    if (!o || !(o->dsn = strdup(cfg->dsn)) || (cfg->schema && !(o->schema = strdup(cfg->schema)))) {
        sout_destroy(o);
        return kf_error_set(err, KF_ERR_NOMEM, false,
                            "could not create the database output: out of memory");
    }
    o->d = cfg->dialect;
    o->replace = cfg->replace;
    out->name = o->d == KF_SIM_SQL_POSTGRES ? "postgres" : "mysql";
    out->ops = &sql_ops;
    out->self = o;
    return KF_OK;
}

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* A copy of s[0..len) with %XX sequences decoded. */
static char *pct_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1), *p = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = hexval((unsigned char)s[i + 1])) >= 0 &&
            (lo = hexval((unsigned char)s[i + 2])) >= 0) {
            *p++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *p++ = s[i];
        }
    }
    *p = '\0';
    return out;
}

static void mysql_dsn_free(mysql_dsn *m)
{
    free(m->user);
    free(m->password);
    free(m->host);
    free(m->db);
}

/* mysql://user[:password]@host[:port]/database[?...] */
static int mysql_dsn_parse(const char *dsn, mysql_dsn *m, kf_error *err)
{
    memset(m, 0, sizeof(*m));
    m->port = 3306;
    const char *p = NULL;
    if (strncmp(dsn, "mysql://", 8) == 0)
        p = dsn + 8;
    else if (strncmp(dsn, "mariadb://", 10) == 0)
        p = dsn + 10;
    if (!p)
        return kf_error_set(err, KF_ERR_CONFIG, false,
                            "sim.dsn for --to mysql must look like "
                            "mysql://user:password@host:port/database");
    const char *at = strchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        m->user = pct_decode(p, (size_t)((colon ? colon : at) - p));
        if (colon)
            m->password = pct_decode(colon + 1, (size_t)(at - colon - 1));
        p = at + 1;
    }
    size_t hostlen = strcspn(p, ":/?");
    m->host = pct_decode(p, hostlen);
    p += hostlen;
    if (*p == ':') {
        char *end;
        unsigned long port = strtoul(p + 1, &end, 10);
        if (end == p + 1 || port == 0 || port > 65535 || (*end && *end != '/' && *end != '?')) {
            mysql_dsn_free(m);
            return kf_error_set(err, KF_ERR_CONFIG, false, "sim.dsn: bad port");
        }
        m->port = (unsigned)port;
        p = end;
    }
    if (*p == '/') {
        p++;
        m->db = pct_decode(p, strcspn(p, "?"));
    }
    if (!m->host || !*m->host || !m->db || !*m->db) {
        mysql_dsn_free(m);
        return kf_error_set(err, KF_ERR_CONFIG, false,
                            "sim.dsn for --to mysql needs a host and a database: "
                            "mysql://user:password@host:port/database");
    }
    return KF_OK;
}

static void pg_notice(void *arg, const char *message)
{
    (void)arg;
    kf_logf(KF_LOG_DEBUG, "postgres: %.*s", (int)strcspn(message, "\n"), message);
}

static int connect_db(sout *o, kf_error *err)
{
    if (o->d == KF_SIM_SQL_POSTGRES) {
        o->pg = PQconnectdb(o->dsn);
        if (!o->pg)
            return kf_error_set(err, KF_ERR_NOMEM, false, "could not connect: out of memory");
        if (PQstatus(o->pg) != CONNECTION_OK) {
            char reason[512];
            snprintf(reason, sizeof(reason), "%s", PQerrorMessage(o->pg));
            reason[strcspn(reason, "\n")] = '\0';
            return kf_error_set(err, KF_ERR_IO, true, "could not connect to PostgreSQL: %s",
                                reason);
        }
        PQsetNoticeProcessor(o->pg, pg_notice, NULL);
        return exec_sql(o, "SET TIME ZONE 'UTC'", "set the session time zone", err);
    }
    mysql_dsn m;
    int rc = mysql_dsn_parse(o->dsn, &m, err);
    if (rc != KF_OK)
        return rc;
    o->my = mysql_init(NULL);
    if (!o->my) {
        mysql_dsn_free(&m);
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not connect: out of memory");
    }
    bool ok = mysql_real_connect(o->my, m.host, m.user, m.password, m.db, m.port, NULL, 0) != NULL;
    mysql_dsn_free(&m);
    if (!ok)
        return my_fail(o, "connect to MariaDB", err);
    if (mysql_set_character_set(o->my, "utf8mb4") != 0)
        return my_fail(o, "set the connection character set", err);
    if ((rc = exec_sql(o, "SET time_zone = '+00:00'", "set the session time zone", err)) != KF_OK)
        return rc;
    if (mysql_autocommit(o->my, 0) != 0)
        return my_fail(o, "turn autocommit off", err);
    return KF_OK;
}

/* "col type [NOT] NULL" of column c of t. */
static int put_column_def(sout *o, const stable *st, const kf_sim_table *t, size_t c)
{
    char type[64];
    kf_sim_sql_type(o->d, &t->type[c], t->spec->columns[c].is_key, type, sizeof(type));
    return kf_sim_buf_printf(&o->one.sql, "%s %s %s", st->qcols[c], type,
                             kf_sim_column_nullable(t, c) ? "NULL" : "NOT NULL");
}

static int create_table(sout *o, const stable *st, const kf_sim_table *t, bool resume,
                        kf_error *err)
{
    int rc = KF_OK;
    if (!resume && o->replace) {
        stmt_clear(&o->one);
        if ((rc = kf_sim_buf_printf(&o->one.sql, "DROP TABLE IF EXISTS %s", st->qname)) != KF_OK ||
            (rc = exec_sql(o, o->one.sql.data, "drop the existing table", err)) != KF_OK)
            return rc;
    }
    stmt_clear(&o->one);
    rc = kf_sim_buf_printf(&o->one.sql, "CREATE TABLE %s%s (", resume ? "IF NOT EXISTS " : "",
                           st->qname);
    bool first = true;
    for (size_t c = 0; c < t->ncolumns && rc == KF_OK; c++) {
        if (!kf_sim_table_active(t, c))
            continue;
        if (!first)
            rc = kf_sim_buf_puts(&o->one.sql, ", ");
        first = false;
        if (rc == KF_OK)
            rc = put_column_def(o, st, t, c);
    }
    if (rc == KF_OK)
        rc = kf_sim_buf_puts(&o->one.sql, ", PRIMARY KEY (");
    for (size_t k = 0; k < t->spec->nkey && rc == KF_OK; k++)
        rc = kf_sim_buf_printf(&o->one.sql, "%s%s", k ? ", " : "", st->qcols[t->spec->key[k]]);
    if (rc == KF_OK)
        rc = kf_sim_buf_puts(&o->one.sql, "))");
    if (rc != KF_OK)
        return kf_error_set(err, rc, false, "could not build CREATE TABLE: out of memory");
    char what[600];
    snprintf(what, sizeof(what), "create table %s%s", st->qname,
             resume ? "" : " (an existing table needs --replace)");
    return exec_sql(o, o->one.sql.data, what, err);
}

static int sout_open(void *self, const kf_sim_engine *e, bool resume, kf_error *err)
{
    sout *o = self;
    o->e = e;
    int rc = connect_db(o, err);
    if (rc != KF_OK)
        return rc;
    char *qschema = NULL;
    if (o->schema) {
        if (!(qschema = quote_ident(o, o->schema)))
            return kf_error_set(err, KF_ERR_NOMEM, false, "could not quote a name: out of memory");
        stmt_clear(&o->one);
        rc = kf_sim_buf_printf(&o->one.sql, "CREATE %s IF NOT EXISTS %s",
                               o->d == KF_SIM_SQL_POSTGRES ? "SCHEMA" : "DATABASE", qschema);
        if (rc == KF_OK)
            rc = exec_sql(o, o->one.sql.data, "create the schema", err);
        if (rc != KF_OK) {
            free(qschema);
            return rc;
        }
    }
    size_t n = kf_sim_engine_table_count(e);
    o->tables = calloc(n ? n : 1, sizeof(*o->tables));
    if (!o->tables) {
        free(qschema);
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not open the output: out of memory");
    }
    o->ntables = n;
    for (size_t i = 0; i < n && rc == KF_OK; i++) {
        const kf_sim_table *t = kf_sim_engine_table(e, i);
        stable *st = &o->tables[i];
        char *qt = quote_ident(o, t->spec->name);
        st->qcols = calloc(t->ncolumns, sizeof(*st->qcols));
        if (qt && st->qcols) {
            size_t len = strlen(qt) + (qschema ? strlen(qschema) + 1 : 0) + 1;
            if ((st->qname = malloc(len)))
                snprintf(st->qname, len, "%s%s%s", qschema ? qschema : "", qschema ? "." : "", qt);
        }
        free(qt);
        st->ncols = st->qcols ? t->ncolumns : 0;
        for (size_t c = 0; c < st->ncols && st->qname; c++)
            if (!(st->qcols[c] = quote_ident(o, t->spec->columns[c].name)))
                st->ncols = c;
        if (!st->qname || st->ncols != t->ncolumns) {
            rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not quote a name: out of memory");
            break;
        }
        if (!(st->upd_cols = calloc(t->ncolumns ? t->ncolumns : 1, 1))) {
            rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not open the output: out of memory");
            break;
        }
        if (t->ncolumns > o->mask_len) {
            unsigned char *m = realloc(o->mask, t->ncolumns);
            if (!m) {
                rc = kf_error_set(err, KF_ERR_NOMEM, false,
                                  "could not open the output: out of memory");
                break;
            }
            o->mask = m;
            o->mask_len = t->ncolumns;
        }
        rc = create_table(o, st, t, resume, err);
    }
    free(qschema);
    if (rc == KF_OK && o->d == KF_SIM_SQL_MYSQL)
        rc = exec_sql(o, "COMMIT", "commit the tables", err);
    return rc;
}

static int sout_change(void *self, size_t ti, const kf_sim_table *t, const kf_sim_change *ch,
                       kf_error *err)
{
    sout *o = self;
    stable *st = &o->tables[ti];
    int rc = begin_txn(o, err);
    if (rc != KF_OK)
        return rc;
    if (ch->op == KF_SIM_OP_UPDATE && !changed_columns(o, t, ch)) {
        o->pending_seq = ch->seq; /* nothing changed: no statement */
        return KF_OK;
    }
    /* A key with a pending change, or a statement grown to its limit: send what is pending
     * first. */
    uint64_t h = key_hash(ch->key);
    if (kf_sim_hset_contains(&st->keys, h) || table_full(st)) {
        if ((rc = flush_table(o, ti, err)) != KF_OK)
            return rc;
    }
    if ((rc = kf_sim_hset_add(&st->keys, h)) < 0)
        return kf_error_set(err, rc, false, "could not track pending keys: out of memory");
    if (st->pending == 0)
        st->first_seq = ch->seq;
    switch (ch->op) {
    case KF_SIM_OP_CREATE:
        rc = add_insert(o, st, t, ch->after);
        break;
    case KF_SIM_OP_DELETE:
        rc = add_delete(o, st, t, ch->key);
        break;
    case KF_SIM_OP_UPDATE:
    default:
        if (o->d == KF_SIM_SQL_MYSQL) {
            stmt_clear(&o->one);
            rc = add_update(o, &o->one, st, t, ch, o->mask);
            break;
        }
        if (st->upd.rows == 0)
            for (size_t c = 0; c < t->ncolumns; c++)
                st->upd_cols[c] = kf_sim_table_active(t, c) && !t->spec->columns[c].is_key;
        rc = add_update(o, &st->upd, st, t, ch, st->upd_cols);
        break;
    }
    if (rc != KF_OK) {
        o->failed = true; /* a half-built statement must not be committed */
        return kf_error_set(err, rc, false, "could not build the statement of change %" PRIu64,
                            ch->seq);
    }
    if (ch->op == KF_SIM_OP_UPDATE && o->d == KF_SIM_SQL_MYSQL) {
        char what[120];
        snprintf(what, sizeof(what), "apply change %" PRIu64 " (u) to table \"%s\"", ch->seq,
                 t->spec->name);
        if ((rc = exec_stmt(o, &o->one, what, err)) != KF_OK) {
            o->failed = true;
            return rc;
        }
    }
    st->pending++;
    st->last_seq = ch->seq;
    o->pending_seq = ch->seq;
    return KF_OK;
}

static int sout_evolve(void *self, size_t ti, const kf_sim_table *t, const kf_sim_evolution *ev,
                       bool replay, kf_error *err)
{
    sout *o = self;
    /* DDL commits implicitly on MariaDB: the batch's changes are committed first. */
    int rc = commit_txn(o, err);
    if (rc != KF_OK || replay)
        return rc;
    const stable *st = &o->tables[ti];
    const char *qc = st->qcols[ev->column];
    bool pg = o->d == KF_SIM_SQL_POSTGRES;
    stmt_clear(&o->one);
    rc = kf_sim_buf_printf(&o->one.sql, "ALTER TABLE %s ", st->qname);
    if (rc == KF_OK) {
        switch (ev->action) {
        case KF_SIM_EVOLVE_PROMOTE:
        case KF_SIM_EVOLVE_READD:
            rc = kf_sim_buf_puts(&o->one.sql, "ADD COLUMN IF NOT EXISTS ");
            if (rc == KF_OK)
                rc = put_column_def(o, st, t, ev->column);
            break;
        case KF_SIM_EVOLVE_DROP:
            rc = kf_sim_buf_printf(&o->one.sql, "DROP COLUMN IF EXISTS %s", qc);
            break;
        case KF_SIM_EVOLVE_WIDEN:
        default: {
            char type[64];
            kf_sim_sql_type(o->d, &ev->to, false, type, sizeof(type));
            if (pg)
                rc = kf_sim_buf_printf(&o->one.sql, "ALTER COLUMN %s TYPE %s", qc, type);
            else
                rc = kf_sim_buf_printf(&o->one.sql, "MODIFY COLUMN %s %s %s", qc, type,
                                       kf_sim_column_nullable(t, ev->column) ? "NULL" : "NOT NULL");
            break;
        }
        }
    }
    if (rc != KF_OK)
        return kf_error_set(err, rc, false, "could not build ALTER TABLE: out of memory");
    char what[600];
    snprintf(what, sizeof(what), "%s column %s of %s", kf_sim_evolve_action_name(ev->action), qc,
             st->qname);
    if ((rc = exec_sql(o, o->one.sql.data, what, err)) != KF_OK)
        return rc;
    /* PostgreSQL runs DDL in autocommit here; MariaDB committed it implicitly. */
    return KF_OK;
}

static int sout_batch_end(void *self, kf_error *err)
{
    return commit_txn(self, err);
}

static void sout_poll(void *self, int timeout_ms)
{
    (void)self;
    struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t sout_durable(void *self)
{
    sout *o = self;
    return o->committed_seq;
}

static int sout_close(void *self, int timeout_ms, kf_error *err)
{
    sout *o = self;
    (void)timeout_ms;
    if (!o->pg && !o->my)
        return KF_OK;
    if (o->failed && o->in_txn) {
        /* The changes after the last commit are not in the database; --resume redoes them. */
        o->in_txn = false;
        kf_error rerr;
        kf_error_clear(&rerr);
        exec_sql(o, "ROLLBACK", "roll back the failed batch", &rerr);
        return KF_OK;
    }
    return commit_txn(o, err);
}

static const kf_sim_output_ops sql_ops = {
    .open = sout_open,
    .change = sout_change,
    .evolve = sout_evolve,
    .batch_end = sout_batch_end,
    .poll = sout_poll,
    .durable = sout_durable,
    .close = sout_close,
    .destroy = sout_destroy,
};
