/* Postgres connections, SQLSTATE classification, SQL text building and identifier quoting. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfleet/pg.h"

#define PG_MAX_IDENT 63

static bool keyword_known(const PQconninfoOption *defs, const char *kw)
{
    for (const PQconninfoOption *o = defs; o && o->keyword; o++)
        if (strcmp(o->keyword, kw) == 0)
            return true;
    return false;
}

/* libpq messages end with a newline; keep the first line only. */
static void first_line(char *dst, size_t cap, const char *src)
{
    size_t n = strcspn(src ? src : "", "\n");
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

PGconn *kf_pg_connect(const char *dsn, const char *const *kv, size_t npairs, kf_error *err)
{
    PQconninfoOption *defs = PQconndefaults();
    if (!defs) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not read libpq's connection defaults");
        return NULL;
    }
    for (size_t i = 0; i < npairs; i++) {
        if (!keyword_known(defs, kv[2 * i])) {
            kf_error_set(err, KF_ERR_CONFIG, false,
                         "unknown libpq connection keyword \"%s\" (from pg.%s)", kv[2 * i],
                         kv[2 * i]);
            PQconninfoFree(defs);
            return NULL;
        }
    }
    PQconninfoFree(defs);
    const char **keys = calloc(npairs + 2, sizeof(*keys));
    const char **vals = calloc(npairs + 2, sizeof(*vals));
    PGconn *conn = NULL;
    if (!keys || !vals) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate connection parameters");
        goto out_free_params;
    }
    size_t n = 0;
    keys[n] = "dbname";
    vals[n++] = dsn ? dsn : "";
    for (size_t i = 0; i < npairs; i++) {
        keys[n] = kv[2 * i];
        vals[n++] = kv[2 * i + 1];
    }
    conn = PQconnectdbParams(keys, vals, 1);
    if (!conn) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate a Postgres connection");
        goto out_free_params;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        char msg[400];
        first_line(msg, sizeof(msg), PQerrorMessage(conn));
        kf_error_set(err, KF_ERR_PG, true, "could not connect to Postgres: %s", msg);
        PQfinish(conn);
        conn = NULL;
    }

out_free_params:
    free(keys);
    free(vals);
    return conn;
}

bool kf_pg_sqlstate_retriable(const char *s)
{
    if (!s || !s[0])
        return true;
    if (strncmp(s, "08", 2) == 0)
        return true;
    return strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0 || strcmp(s, "57P01") == 0 ||
           strcmp(s, "57P02") == 0 || strcmp(s, "57P03") == 0;
}

kf_pg_class kf_pg_classify(const char *s)
{
    if (kf_pg_sqlstate_retriable(s))
        return KF_PG_RETRY;
    if (strncmp(s, "22", 2) == 0 || strncmp(s, "23", 2) == 0)
        return KF_PG_DATA;
    return KF_PG_FAIL;
}

const char *kf_pg_sqlstate(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

int kf_pg_result_error(kf_error *err, PGconn *conn, const PGresult *res, const char *what)
{
    const char *state = kf_pg_sqlstate(res);
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char msg[400];
    first_line(msg, sizeof(msg), primary ? primary : conn ? PQerrorMessage(conn) : "no result");
    bool retriable = kf_pg_sqlstate_retriable(state) || !conn || PQstatus(conn) != CONNECTION_OK;
    if (state[0])
        return kf_error_set(err, KF_ERR_PG, retriable, "%s: %s (SQLSTATE %s)", what, msg, state);
    return kf_error_set(err, KF_ERR_PG, retriable, "%s: %s", what, msg);
}

int kf_pg_buf_append(kf_buf *b, const char *s, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        int rc = kf_buf_reserve(b, b->len + len + 1);
        if (rc < 0)
            return rc;
    }
    memcpy(b->data + b->len, s, len);
    b->len += len;
    b->data[b->len] = '\0';
    return KF_OK;
}

int kf_pg_buf_puts(kf_buf *b, const char *s)
{
    return kf_pg_buf_append(b, s, strlen(s));
}

int kf_pg_buf_printf(kf_buf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = b->cap > b->len ? b->cap - b->len : 0;
        va_start(ap, fmt);
        int n = vsnprintf(room ? (char *)b->data + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return KF_ERR_INVALID;
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return KF_OK;
        }
        int rc = kf_buf_reserve(b, b->len + (size_t)n + 1);
        if (rc < 0)
            return rc;
    }
}

/* Checks that s is well-formed UTF-8 (no overlongs, no surrogates). */
static bool utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, cp = c & 0x07;
        } else {
            return false;
        }
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= len || (s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

int kf_pg_ident_append(PGconn *conn, kf_buf *b, const char *name, kf_error *err)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0)
        return kf_error_set(err, KF_ERR_INVALID, false, "cannot use an empty identifier");
    if (len > PG_MAX_IDENT)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "identifier \"%.63s...\" is longer than %d bytes", name, PG_MAX_IDENT);
    if (!utf8_valid((const unsigned char *)name, len))
        return kf_error_set(err, KF_ERR_INVALID, false, "identifier is not valid UTF-8");
    int rc;
    if (conn) {
        char *q = PQescapeIdentifier(conn, name, len);
        if (!q) {
            char msg[300];
            first_line(msg, sizeof(msg), PQerrorMessage(conn));
            return kf_error_set(err, KF_ERR_INVALID, false, "could not quote identifier: %s", msg);
        }
        rc = kf_pg_buf_puts(b, q);
        PQfreemem(q);
    } else {
        rc = kf_pg_buf_append(b, "\"", 1);
        for (size_t i = 0; rc == 0 && i < len; i++)
            rc = kf_pg_buf_append(b, name[i] == '"' ? "\"\"" : &name[i], name[i] == '"' ? 2 : 1);
        if (rc == 0)
            rc = kf_pg_buf_append(b, "\"", 1);
    }
    if (rc < 0)
        return kf_error_set(err, rc, false, "could not grow an SQL buffer");
    return KF_OK;
}

int kf_pg_qualified_append(PGconn *conn, kf_buf *b, const char *schema, const char *name,
                           kf_error *err)
{
    int rc;
    if (schema) {
        if ((rc = kf_pg_ident_append(conn, b, schema, err)) < 0)
            return rc;
        if ((rc = kf_pg_buf_append(b, ".", 1)) < 0)
            return kf_error_set(err, rc, false, "could not grow an SQL buffer");
    }
    return kf_pg_ident_append(conn, b, name, err);
}
