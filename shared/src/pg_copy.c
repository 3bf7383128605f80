/* COPY text encoding of change-event cells (dates, timestamps, decimals, bytes, escaping) and
 * sending a COPY IN payload. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kfleet/pg.h"

#define US_PER_DAY INT64_C(86400000000)

/* Postgres' date and timestamp ranges, from 1970-01-01: dates from 4714-11-24 BC (Julian day 0)
 * up to but excluding 5874898-01-01; timestamps from 4714-11-24 00:00 BC (their upper bound,
 * 294277-01-01, lies beyond what int64 microseconds since 1970 can say). */
#define PG_DATE_MIN_DAYS INT64_C(-2440588)
#define PG_DATE_END_DAYS INT64_C(2145042906)
#define PG_TS_MIN_US     INT64_C(-210866803200000000)

static int grow(kf_buf *b, size_t extra, kf_error *err)
{
    if (b->len + extra + 1 <= b->cap)
        return KF_OK;
    int rc = kf_buf_reserve(b, b->len + extra + 1);
    if (rc < 0)
        return kf_error_set(err, rc, false, "could not grow a COPY buffer");
    return KF_OK;
}

int kf_pg_copy_escape(kf_buf *b, const char *s, size_t len, kf_error *err)
{
    if (memchr(s, '\0', len))
        return kf_error_set(err, KF_ERR_INVALID, false, "text contains a NUL byte");
    /* worst case every byte doubles */
    int rc = grow(b, 2 * len, err);
    if (rc < 0)
        return rc;
    char *out = (char *)b->data + b->len;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        switch (c) {
        case '\\':
            *out++ = '\\', *out++ = '\\';
            break;
        case '\t':
            *out++ = '\\', *out++ = 't';
            break;
        case '\n':
            *out++ = '\\', *out++ = 'n';
            break;
        case '\r':
            *out++ = '\\', *out++ = 'r';
            break;
        default:
            *out++ = c;
        }
    }
    b->len = (size_t)(out - (char *)b->data);
    b->data[b->len] = '\0';
    return KF_OK;
}

/* Writes a signed integer in decimal; returns its length. buf holds at least 21 bytes. */
static size_t fmt_int(char *buf, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t k = 0;
    if (v < 0)
        buf[k++] = '-';
    while (n)
        buf[k++] = tmp[--n];
    return k;
}

/* Civil date from days since 1970-01-01 (proleptic Gregorian), after H. Hinnant's algorithm. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

/* "YYYY-MM-DD" (with " BC" appended by the caller when bc is set). */
static int fmt_date(char *buf, size_t cap, int64_t days, bool *bc)
{
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    *bc = y <= 0;
    if (*bc)
        y = 1 - y;
    return snprintf(buf, cap, "%04" PRId64 "-%02u-%02u", y, m, d);
}

static int copy_timestamp(kf_buf *b, const kf_column *col, int64_t v, kf_error *err)
{
    int64_t us;
    switch (col->time_precision) {
    case 3:
        if (v > INT64_MAX / 1000 || v < INT64_MIN / 1000)
            return kf_error_set(err, KF_ERR_INVALID, false, "timestamp %" PRId64 " out of range",
                                v);
        us = v * 1000;
        break;
    case 9:
        us = v / 1000 - (v % 1000 < 0);
        break;
    default:
        us = v;
    }
    if (us < PG_TS_MIN_US)
        return kf_error_set(err, KF_ERR_INVALID, false, "timestamp out of range: %" PRId64, v);
    int64_t days = us / US_PER_DAY, rem = us % US_PER_DAY;
    if (rem < 0)
        rem += US_PER_DAY, days--;
    char buf[64];
    bool bc;
    int n = fmt_date(buf, sizeof(buf), days, &bc);
    int64_t secs = rem / 1000000;
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, " %02d:%02d:%02d.%06d%s", (int)(secs / 3600),
                  (int)(secs / 60 % 60), (int)(secs % 60), (int)(rem % 1000000), bc ? " BC" : "");
    int rc = grow(b, (size_t)n, err);
    if (rc < 0)
        return rc;
    memcpy(b->data + b->len, buf, (size_t)n + 1);
    b->len += (size_t)n;
    return KF_OK;
}

static int put(kf_buf *b, const char *s, size_t n, kf_error *err)
{
    int rc = grow(b, n, err);
    if (rc < 0)
        return rc;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return KF_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool kf_pg_uuid_valid(const char *s, size_t len)
{
    /* 32 hex digits, a hyphen allowed after any group of four but the last, optionally in
     * braces: what Postgres' uuid input accepts */
    size_t i = 0, digits = 0;
    bool braces = len > 0 && s[0] == '{';
    if (braces) {
        if (len < 2 || s[len - 1] != '}')
            return false;
        i = 1;
        len--;
    }
    while (i < len && digits < 32) {
        if (hexval(s[i]) < 0)
            return false;
        digits++;
        i++;
        if (i < len && s[i] == '-' && digits % 4 == 0 && digits < 32)
            i++;
    }
    return digits == 32 && i == len;
}

static int kind_mismatch(const kf_column *col, const kf_cell *cell, kf_error *err)
{
    return kf_error_set(err, KF_ERR_INVALID, false,
                        "value of kind %d does not fit column \"%s\" of type %d", (int)cell->kind,
                        col->name ? col->name : "", (int)col->type);
}

int kf_pg_copy_cell(kf_buf *b, const kf_column *col, const kf_cell *cell, kf_error *err)
{
    char buf[2600];
    switch (cell->kind) {
    case KF_CELL_NULL:
        return put(b, "\\N", 2, err);
    case KF_CELL_INT:
        if (col->type == KF_COL_DATE) {
            if (cell->v.i < PG_DATE_MIN_DAYS || cell->v.i >= PG_DATE_END_DAYS)
                return kf_error_set(err, KF_ERR_INVALID, false, "date out of range: %" PRId64,
                                    cell->v.i);
            bool bc;
            int n = fmt_date(buf, sizeof(buf), cell->v.i, &bc);
            if (bc)
                n += snprintf(buf + n, sizeof(buf) - (size_t)n, " BC");
            return put(b, buf, (size_t)n, err);
        }
        if (col->type == KF_COL_TIMESTAMP)
            return copy_timestamp(b, col, cell->v.i, err);
        if (col->type != KF_COL_SMALLINT && col->type != KF_COL_INT && col->type != KF_COL_BIGINT)
            return kind_mismatch(col, cell, err);
        return put(b, buf, fmt_int(buf, cell->v.i), err);
    case KF_CELL_DOUBLE: {
        double d = cell->v.d;
        if (col->type != KF_COL_FLOAT && col->type != KF_COL_DOUBLE)
            return kind_mismatch(col, cell, err);
        if (isnan(d))
            return put(b, "NaN", 3, err);
        if (isinf(d))
            return d > 0 ? put(b, "Infinity", 8, err) : put(b, "-Infinity", 9, err);
        int n = snprintf(buf, sizeof(buf), col->type == KF_COL_FLOAT ? "%.9g" : "%.17g", d);
        return put(b, buf, (size_t)n, err);
    }
    case KF_CELL_BOOL:
        if (col->type != KF_COL_BOOL)
            return kind_mismatch(col, cell, err);
        return put(b, cell->v.b ? "t" : "f", 1, err);
    case KF_CELL_STRING:
        if (kf_coltype_rep(col->type) != KF_REP_STRING && col->type != KF_COL_DECIMAL)
            return kind_mismatch(col, cell, err);
        if (col->type == KF_COL_UUID && !kf_pg_uuid_valid(cell->v.s.ptr, cell->v.s.len))
            return kf_error_set(err, KF_ERR_INVALID, false,
                                "invalid input syntax for type uuid: \"%.*s\"",
                                cell->v.s.len > 64 ? 64 : (int)cell->v.s.len, cell->v.s.ptr);
        return kf_pg_copy_escape(b, cell->v.s.ptr, cell->v.s.len, err);
    case KF_CELL_BYTES:
        if (col->type == KF_COL_DECIMAL) {
            int rc = kf_decimal_format((const uint8_t *)cell->v.s.ptr, cell->v.s.len, col->scale,
                                       buf, sizeof(buf), err);
            if (rc < 0)
                return rc;
            return put(b, buf, strlen(buf), err);
        }
        if (col->type != KF_COL_BYTES)
            return kind_mismatch(col, cell, err);
        {
            static const char hex[] = "0123456789abcdef";
            size_t n = cell->v.s.len;
            int rc = grow(b, 3 + 2 * n, err);
            if (rc < 0)
                return rc;
            char *out = (char *)b->data + b->len;
            *out++ = '\\', *out++ = '\\', *out++ = 'x';
            const unsigned char *p = (const unsigned char *)cell->v.s.ptr;
            for (size_t i = 0; i < n; i++) {
                *out++ = hex[p[i] >> 4];
                *out++ = hex[p[i] & 15];
            }
            b->len = (size_t)(out - (char *)b->data);
            b->data[b->len] = '\0';
            return KF_OK;
        }
    }
    return kind_mismatch(col, cell, err);
}

int kf_pg_copy_send(PGconn *conn, const void *data, size_t len, PGresult **res_out, kf_error *err)
{
    if (res_out)
        *res_out = NULL;
    const char *p = data;
    while (len > 0) {
        int chunk = len > (1u << 20) ? (1 << 20) : (int)len;
        if (PQputCopyData(conn, p, chunk) != 1) {
            kf_pg_result_error(err, conn, NULL, "could not send COPY data");
            err->retriable = true;
            PQclear(PQgetResult(conn));
            return KF_ERR_PG;
        }
        p += chunk;
        len -= (size_t)chunk;
    }
    if (PQputCopyEnd(conn, NULL) != 1) {
        kf_pg_result_error(err, conn, NULL, "could not end COPY");
        err->retriable = true;
        return KF_ERR_PG;
    }
    PGresult *res = PQgetResult(conn);
    int rc = KF_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = kf_pg_result_error(err, conn, res, "could not copy rows");
        if (res_out) {
            *res_out = res;
            res = NULL;
        }
    }
    PQclear(res);
    /* drain: a COPY result is followed by NULL */
    PGresult *extra;
    while ((extra = PQgetResult(conn)) != NULL)
        PQclear(extra);
    return rc;
}

const char *kf_pg_type_name(const kf_column *col, char *buf, size_t cap)
{
    const char *s = "text";
    switch (col->type) {
    case KF_COL_SMALLINT:
        s = "smallint";
        break;
    case KF_COL_INT:
        s = "integer";
        break;
    case KF_COL_BIGINT:
        s = "bigint";
        break;
    case KF_COL_FLOAT:
        s = "real";
        break;
    case KF_COL_DOUBLE:
        s = "double precision";
        break;
    case KF_COL_DECIMAL:
        snprintf(buf, cap, "numeric(%d,%d)", col->precision, col->scale);
        return buf;
    case KF_COL_BOOL:
        s = "boolean";
        break;
    case KF_COL_TEXT:
        s = "text";
        break;
    case KF_COL_VARCHAR:
        if (col->length > 0) {
            snprintf(buf, cap, "varchar(%d)", col->length);
            return buf;
        }
        s = "text";
        break;
    case KF_COL_BYTES:
        s = "bytea";
        break;
    case KF_COL_DATE:
        s = "date";
        break;
    case KF_COL_TIMESTAMP:
        s = "timestamp";
        break;
    case KF_COL_TIMESTAMPTZ:
        s = "timestamptz";
        break;
    case KF_COL_UUID:
        s = "uuid";
        break;
    case KF_COL_JSON:
        s = "jsonb";
        break;
    }
    snprintf(buf, cap, "%s", s);
    return buf;
}

int kf_pg_type_parse(const char *t, kf_column *col)
{
    static const struct {
        const char *name;
        kf_coltype type;
    } plain[] = {
        {"smallint", KF_COL_SMALLINT},
        {"integer", KF_COL_INT},
        {"bigint", KF_COL_BIGINT},
        {"real", KF_COL_FLOAT},
        {"double precision", KF_COL_DOUBLE},
        {"boolean", KF_COL_BOOL},
        {"text", KF_COL_TEXT},
        {"character varying", KF_COL_VARCHAR},
        {"bytea", KF_COL_BYTES},
        {"date", KF_COL_DATE},
        {"timestamp without time zone", KF_COL_TIMESTAMP},
        {"timestamp with time zone", KF_COL_TIMESTAMPTZ},
        {"uuid", KF_COL_UUID},
        {"jsonb", KF_COL_JSON},
        {"json", KF_COL_JSON},
    };
    col->precision = col->scale = col->length = 0;
    col->time_precision = 0;
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        if (strcmp(t, plain[i].name) == 0) {
            col->type = plain[i].type;
            if (col->type == KF_COL_TIMESTAMP)
                col->time_precision = 6;
            return KF_OK;
        }
    }
    int a = 0, b = 0;
    if (sscanf(t, "character varying(%d)", &a) == 1 && a > 0) {
        col->type = KF_COL_VARCHAR;
        col->length = a;
        return KF_OK;
    }
    if (sscanf(t, "numeric(%d,%d)", &a, &b) == 2 && a > 0 && b >= 0 && b <= a) {
        col->type = KF_COL_DECIMAL;
        col->precision = a;
        col->scale = b;
        return KF_OK;
    }
    if (sscanf(t, "timestamp(%d) without time zone", &a) == 1) {
        col->type = KF_COL_TIMESTAMP;
        col->time_precision = 6;
        return KF_OK;
    }
    if (sscanf(t, "timestamp(%d) with time zone", &a) == 1) {
        col->type = KF_COL_TIMESTAMPTZ;
        return KF_OK;
    }
    return KF_ERR_NOT_FOUND;
}
