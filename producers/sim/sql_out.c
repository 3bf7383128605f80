/* PostgreSQL and MariaDB outputs: CREATE/ALTER TABLE from the live table shape, and each
 * change as one INSERT, UPDATE or DELETE inside the batch's transaction. Identifiers are
 * always quoted (PQescapeIdentifier, or backticks with doubling); values travel as libpq
 * parameters or as literals escaped by mysql_real_escape_string. */
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

typedef struct stable {
    char *qname;  /* quoted, schema-qualified table name */
    char **qcols; /* per spec column: the quoted column name */
    size_t ncols;
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
    kf_sim_buf sql;
    kf_sim_buf vals;   /* PostgreSQL parameter values, NUL-separated */
    kf_sim_buf text;   /* one value as text */
    size_t *param_off; /* offset into vals, or SIZE_MAX for NULL */
    const char **params;
    size_t nparams, cap_params;
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

/* Runs o->sql with the collected parameters (PostgreSQL) or as it is (MariaDB). */
static int exec_built(sout *o, const char *what, kf_error *err)
{
    if (o->d == KF_SIM_SQL_MYSQL) {
        if (mysql_real_query(o->my, o->sql.data, (unsigned long)o->sql.len) != 0)
            return my_fail(o, what, err);
        return KF_OK;
    }
    for (size_t i = 0; i < o->nparams; i++)
        o->params[i] = o->param_off[i] == SIZE_MAX ? NULL : o->vals.data + o->param_off[i];
    PGresult *res =
        PQexecParams(o->pg, o->sql.data, (int)o->nparams, NULL, o->params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return pg_fail(o, res, what, err);
    PQclear(res);
    return KF_OK;
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

static int commit_txn(sout *o, kf_error *err)
{
    if (!o->in_txn)
        return KF_OK;
    o->in_txn = false;
    int rc = exec_sql(o, "COMMIT", "commit the batch", err);
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

static int add_param(sout *o, size_t off)
{
    if (o->nparams == o->cap_params) {
        size_t cap = o->cap_params ? o->cap_params * 2 : 64;
        size_t *offs = realloc(o->param_off, cap * sizeof(*offs));
        if (!offs)
            return KF_ERR_NOMEM;
        o->param_off = offs;
        const char **ps = realloc(o->params, cap * sizeof(*ps));
        if (!ps)
            return KF_ERR_NOMEM;
        o->params = ps;
        o->cap_params = cap;
    }
    o->param_off[o->nparams++] = off;
    return KF_OK;
}

/* Appends the value of cell c (column type t) to the statement: "$n" with a parameter, or
 * an escaped literal. */
static int put_value(sout *o, const kf_sim_coltype *t, const kf_sim_cell *c)
{
    bool pg = o->d == KF_SIM_SQL_POSTGRES;
    if (c->kind == KF_SIM_CELL_NULL) {
        if (!pg)
            return kf_sim_buf_puts(&o->sql, "NULL");
        int rc = add_param(o, SIZE_MAX);
        return rc == KF_OK ? kf_sim_buf_printf(&o->sql, "$%zu", o->nparams) : rc;
    }
    if (pg) {
        size_t off = o->vals.len;
        int rc = kf_sim_cell_text(&o->vals, t, c, KF_SIM_BOOL_WORDS, true);
        if (rc == KF_OK)
            rc = kf_sim_buf_putc(&o->vals, '\0');
        if (rc == KF_OK)
            rc = add_param(o, off);
        return rc == KF_OK ? kf_sim_buf_printf(&o->sql, "$%zu", o->nparams) : rc;
    }
    kf_sim_buf_clear(&o->text);
    int rc = kf_sim_cell_text(&o->text, t, c, KF_SIM_BOOL_DIGITS, false);
    if (rc == KF_OK)
        rc = kf_sim_buf_reserve(&o->sql, 2 * o->text.len + 3);
    if (rc != KF_OK)
        return rc;
    o->sql.data[o->sql.len++] = '\'';
    o->sql.len += mysql_real_escape_string(o->my, o->sql.data + o->sql.len, o->text.data,
                                           (unsigned long)o->text.len);
    o->sql.data[o->sql.len++] = '\'';
    o->sql.data[o->sql.len] = '\0';
    return KF_OK;
}

static void reset_stmt(sout *o)
{
    kf_sim_buf_clear(&o->sql);
    kf_sim_buf_clear(&o->vals);
    o->nparams = 0;
}

/* " WHERE k1 = v1 AND k2 = v2" over the key cells. */
static int put_where(sout *o, const stable *st, const kf_sim_table *t, const kf_sim_row *key)
{
    int rc = kf_sim_buf_puts(&o->sql, " WHERE ");
    for (size_t k = 0; k < t->spec->nkey && rc == KF_OK; k++) {
        size_t col = t->spec->key[k];
        rc = kf_sim_buf_printf(&o->sql, "%s%s = ", k ? " AND " : "", st->qcols[col]);
        if (rc == KF_OK)
            rc = put_value(o, &t->type[col], &key->cells[k]);
    }
    return rc;
}

static int build_change(sout *o, const stable *st, const kf_sim_table *t, const kf_sim_change *ch)
{
    int rc;
    reset_stmt(o);
    if (ch->op == KF_SIM_OP_CREATE) {
        rc = kf_sim_buf_printf(&o->sql, "INSERT INTO %s (", st->qname);
        bool first = true;
        for (size_t c = 0; c < t->ncolumns && rc == KF_OK; c++) {
            if (!kf_sim_table_active(t, c))
                continue;
            rc = kf_sim_buf_printf(&o->sql, "%s%s", first ? "" : ", ", st->qcols[c]);
            first = false;
        }
        if (rc == KF_OK)
            rc = kf_sim_buf_puts(&o->sql, ") VALUES (");
        first = true;
        for (size_t c = 0; c < t->ncolumns && rc == KF_OK; c++) {
            if (!kf_sim_table_active(t, c))
                continue;
            if (!first)
                rc = kf_sim_buf_puts(&o->sql, ", ");
            first = false;
            if (rc == KF_OK)
                rc = put_value(o, &t->type[c], &ch->after->cells[c]);
        }
        return rc == KF_OK ? kf_sim_buf_putc(&o->sql, ')') : rc;
    }
    if (ch->op == KF_SIM_OP_DELETE) {
        rc = kf_sim_buf_printf(&o->sql, "DELETE FROM %s", st->qname);
        return rc == KF_OK ? put_where(o, st, t, ch->key) : rc;
    }
    rc = kf_sim_buf_printf(&o->sql, "UPDATE %s SET ", st->qname);
    bool first = true;
    for (size_t c = 0; c < t->ncolumns && rc == KF_OK; c++) {
        if (!kf_sim_table_active(t, c) || t->spec->columns[c].is_key ||
            kf_sim_cell_equal(&ch->before->cells[c], &ch->after->cells[c]))
            continue;
        rc = kf_sim_buf_printf(&o->sql, "%s%s = ", first ? "" : ", ", st->qcols[c]);
        first = false;
        if (rc == KF_OK)
            rc = put_value(o, &t->type[c], &ch->after->cells[c]);
    }
    if (first)
        return 1; /* nothing changed: no statement */
    return rc == KF_OK ? put_where(o, st, t, ch->key) : rc;
}

/* ---- the output ---- */

static void sout_destroy(void *self)
{
    sout *o = self;
    if (!o)
        return;
    for (size_t i = 0; o->tables && i < o->ntables; i++) {
        for (size_t c = 0; o->tables[i].qcols && c < o->tables[i].ncols; c++)
            free(o->tables[i].qcols[c]);
        free(o->tables[i].qcols);
        free(o->tables[i].qname);
    }
    free(o->tables);
    if (o->pg)
        PQfinish(o->pg);
    if (o->my)
        mysql_close(o->my);
    kf_sim_buf_free(&o->sql);
    kf_sim_buf_free(&o->vals);
    kf_sim_buf_free(&o->text);
    free(o->param_off);
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
    return kf_sim_buf_printf(&o->sql, "%s %s %s", st->qcols[c], type,
                             kf_sim_column_nullable(t, c) ? "NULL" : "NOT NULL");
}

static int create_table(sout *o, const stable *st, const kf_sim_table *t, bool resume,
                        kf_error *err)
{
    int rc = KF_OK;
    if (!resume && o->replace) {
        reset_stmt(o);
        if ((rc = kf_sim_buf_printf(&o->sql, "DROP TABLE IF EXISTS %s", st->qname)) != KF_OK ||
            (rc = exec_sql(o, o->sql.data, "drop the existing table", err)) != KF_OK)
            return rc;
    }
    reset_stmt(o);
    rc = kf_sim_buf_printf(&o->sql, "CREATE TABLE %s%s (", resume ? "IF NOT EXISTS " : "",
                           st->qname);
    bool first = true;
    for (size_t c = 0; c < t->ncolumns && rc == KF_OK; c++) {
        if (!kf_sim_table_active(t, c))
            continue;
        if (!first)
            rc = kf_sim_buf_puts(&o->sql, ", ");
        first = false;
        if (rc == KF_OK)
            rc = put_column_def(o, st, t, c);
    }
    if (rc == KF_OK)
        rc = kf_sim_buf_puts(&o->sql, ", PRIMARY KEY (");
    for (size_t k = 0; k < t->spec->nkey && rc == KF_OK; k++)
        rc = kf_sim_buf_printf(&o->sql, "%s%s", k ? ", " : "", st->qcols[t->spec->key[k]]);
    if (rc == KF_OK)
        rc = kf_sim_buf_puts(&o->sql, "))");
    if (rc != KF_OK)
        return kf_error_set(err, rc, false, "could not build CREATE TABLE: out of memory");
    char what[600];
    snprintf(what, sizeof(what), "create table %s%s", st->qname,
             resume ? "" : " (an existing table needs --replace)");
    return exec_sql(o, o->sql.data, what, err);
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
        reset_stmt(o);
        rc = kf_sim_buf_printf(&o->sql, "CREATE %s IF NOT EXISTS %s",
                               o->d == KF_SIM_SQL_POSTGRES ? "SCHEMA" : "DATABASE", qschema);
        if (rc == KF_OK)
            rc = exec_sql(o, o->sql.data, "create the schema", err);
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
    int rc = begin_txn(o, err);
    if (rc != KF_OK)
        return rc;
    rc = build_change(o, &o->tables[ti], t, ch);
    if (rc < 0)
        return kf_error_set(err, rc, false, "could not build the statement of change %" PRIu64,
                            ch->seq);
    if (rc == KF_OK) {
        char what[96];
        snprintf(what, sizeof(what), "apply change %" PRIu64 " (%c) to table \"%s\"", ch->seq,
                 (char)ch->op, t->spec->name);
        if ((rc = exec_built(o, what, err)) != KF_OK) {
            o->failed = true;
            return rc;
        }
    }
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
    reset_stmt(o);
    rc = kf_sim_buf_printf(&o->sql, "ALTER TABLE %s ", st->qname);
    if (rc == KF_OK) {
        switch (ev->action) {
        case KF_SIM_EVOLVE_PROMOTE:
        case KF_SIM_EVOLVE_READD:
            rc = kf_sim_buf_puts(&o->sql, "ADD COLUMN IF NOT EXISTS ");
            if (rc == KF_OK)
                rc = put_column_def(o, st, t, ev->column);
            break;
        case KF_SIM_EVOLVE_DROP:
            rc = kf_sim_buf_printf(&o->sql, "DROP COLUMN IF EXISTS %s", qc);
            break;
        case KF_SIM_EVOLVE_WIDEN:
        default: {
            char type[64];
            kf_sim_sql_type(o->d, &ev->to, false, type, sizeof(type));
            if (pg)
                rc = kf_sim_buf_printf(&o->sql, "ALTER COLUMN %s TYPE %s", qc, type);
            else
                rc = kf_sim_buf_printf(&o->sql, "MODIFY COLUMN %s %s %s", qc, type,
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
    if ((rc = exec_sql(o, o->sql.data, what, err)) != KF_OK)
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
