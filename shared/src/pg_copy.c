/* COPY text encoding of change-event cells (dates, timestamps, decimals, bytes, escaping) and
 * sending a COPY IN payload. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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

/* A timestamp of the column's precision (ms, us or ns since the epoch) in microseconds, the
 * unit of both COPY forms; values before Postgres' beginning of time are refused. */
static int timestamp_us(const kf_column *col, int64_t v, int64_t *us, kf_error *err)
{
    switch (col->time_precision) {
    case 3:
        if (v > INT64_MAX / 1000 || v < INT64_MIN / 1000)
            return kf_error_set(err, KF_ERR_INVALID, false, "timestamp %" PRId64 " out of range",
                                v);
        *us = v * 1000;
        break;
    case 9:
        *us = v / 1000 - (v % 1000 < 0);
        break;
    default:
        *us = v;
    }
    if (*us < PG_TS_MIN_US)
        return kf_error_set(err, KF_ERR_INVALID, false, "timestamp out of range: %" PRId64, v);
    return KF_OK;
}

static int copy_timestamp(kf_buf *b, const kf_column *col, int64_t v, kf_error *err)
{
    int64_t us;
    int rc = timestamp_us(col, v, &us, err);
    if (rc != KF_OK)
        return rc;
    int64_t days = us / US_PER_DAY, rem = us % US_PER_DAY;
    if (rem < 0)
        rem += US_PER_DAY, days--;
    char buf[64];
    bool bc;
    int n = fmt_date(buf, sizeof(buf), days, &bc);
    int64_t secs = rem / 1000000;
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, " %02d:%02d:%02d.%06d%s", (int)(secs / 3600),
                  (int)(secs / 60 % 60), (int)(secs % 60), (int)(rem % 1000000), bc ? " BC" : "");
    rc = grow(b, (size_t)n, err);
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

/* ---- COPY binary format ---- */

/* Days and microseconds from 1970-01-01 to Postgres' epoch, 2000-01-01. */
#define PG_EPOCH_DAYS INT64_C(10957)
#define PG_EPOCH_US   (PG_EPOCH_DAYS * US_PER_DAY)

/* Numeric's external sign words and the most digits a decimal string may carry here. */
#define NUMERIC_POS     0x0000
#define NUMERIC_NEG     0x4000
#define NUMERIC_NAN     0xC000
#define NUMERIC_PINF    0xD000
#define NUMERIC_NINF    0xF000
#define NUMERIC_DIGITS  4000
#define NUMERIC_MAX_EXP 100000

const char kf_pg_copy_bin_header[KF_PG_COPY_BIN_HEADER_LEN] = {
    'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n', '\0', 0, 0, 0, 0, 0, 0, 0, 0};

kf_pg_bin kf_pg_bin_of_oid(unsigned int oid)
{
    switch (oid) {
    case 21:
        return KF_PG_BIN_INT2;
    case 23:
        return KF_PG_BIN_INT4;
    case 20:
        return KF_PG_BIN_INT8;
    case 700:
        return KF_PG_BIN_FLOAT4;
    case 701:
        return KF_PG_BIN_FLOAT8;
    case 1700:
        return KF_PG_BIN_NUMERIC;
    case 16:
        return KF_PG_BIN_BOOL;
    case 25:   /* text */
    case 1043: /* varchar */
    case 1042: /* bpchar */
    case 114:  /* json: its binary form is its text */
        return KF_PG_BIN_TEXT;
    case 17:
        return KF_PG_BIN_BYTEA;
    case 1082:
        return KF_PG_BIN_DATE;
    case 1114:
        return KF_PG_BIN_TIMESTAMP;
    case 2950:
        return KF_PG_BIN_UUID;
    case 3802:
        return KF_PG_BIN_JSONB;
    default:
        return KF_PG_BIN_NONE;
    }
}

kf_pg_bin kf_pg_bin_of_column(const kf_column *col)
{
    switch (col->type) {
    case KF_COL_SMALLINT:
        return KF_PG_BIN_INT2;
    case KF_COL_INT:
        return KF_PG_BIN_INT4;
    case KF_COL_BIGINT:
        return KF_PG_BIN_INT8;
    case KF_COL_FLOAT:
        return KF_PG_BIN_FLOAT4;
    case KF_COL_DOUBLE:
        return KF_PG_BIN_FLOAT8;
    case KF_COL_DECIMAL:
        return KF_PG_BIN_NUMERIC;
    case KF_COL_BOOL:
        return KF_PG_BIN_BOOL;
    case KF_COL_TEXT:
    case KF_COL_VARCHAR:
        return KF_PG_BIN_TEXT;
    case KF_COL_BYTES:
        return KF_PG_BIN_BYTEA;
    case KF_COL_DATE:
        return KF_PG_BIN_DATE;
    case KF_COL_TIMESTAMP:
        return KF_PG_BIN_TIMESTAMP;
    case KF_COL_UUID:
        return KF_PG_BIN_UUID;
    case KF_COL_JSON:
        return KF_PG_BIN_JSONB;
    case KF_COL_TIMESTAMPTZ:
        break;
    }
    return KF_PG_BIN_NONE;
}

bool kf_pg_bin_accepts(kf_pg_bin bin, const kf_column *from)
{
    kf_coltype t = from->type;
    bool integer = t == KF_COL_SMALLINT || t == KF_COL_INT || t == KF_COL_BIGINT;
    switch (bin) {
    case KF_PG_BIN_INT2:
    case KF_PG_BIN_INT4:
    case KF_PG_BIN_INT8:
        return integer;
    case KF_PG_BIN_FLOAT4:
        return t == KF_COL_FLOAT;
    case KF_PG_BIN_FLOAT8:
        return t == KF_COL_FLOAT || t == KF_COL_DOUBLE;
    case KF_PG_BIN_NUMERIC:
        return t == KF_COL_DECIMAL || integer;
    case KF_PG_BIN_BOOL:
        return t == KF_COL_BOOL;
    case KF_PG_BIN_TEXT:
        return kf_coltype_rep(t) == KF_REP_STRING;
    case KF_PG_BIN_BYTEA:
        return t == KF_COL_BYTES;
    case KF_PG_BIN_DATE:
        return t == KF_COL_DATE;
    case KF_PG_BIN_TIMESTAMP:
        return t == KF_COL_TIMESTAMP;
    case KF_PG_BIN_UUID:
        return t == KF_COL_UUID || t == KF_COL_TEXT || t == KF_COL_VARCHAR;
    case KF_PG_BIN_JSONB:
        return t == KF_COL_JSON || t == KF_COL_TEXT || t == KF_COL_VARCHAR;
    case KF_PG_BIN_NONE:
        break;
    }
    return false;
}

static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

/* Appends a field of n bytes (length word and value), value from src (NULL: left for the
 * caller to fill, at the returned pointer). */
static uint8_t *bin_field(kf_buf *b, const void *src, size_t n, kf_error *err)
{
    if (n > INT32_MAX) {
        kf_error_set(err, KF_ERR_INVALID, false, "value of %zu bytes is too large", n);
        return NULL;
    }
    if (grow(b, 4 + n, err) < 0)
        return NULL;
    uint8_t *p = b->data + b->len;
    put_be32(p, (uint32_t)n);
    if (src && n > 0)
        memcpy(p + 4, src, n);
    b->len += 4 + n;
    b->data[b->len] = '\0';
    return p + 4;
}

static int bin_int(kf_buf *b, kf_pg_bin bin, int64_t v, kf_error *err)
{
    uint8_t *p;
    if (bin == KF_PG_BIN_INT2) {
        if (v < INT16_MIN || v > INT16_MAX)
            return kf_error_set(err, KF_ERR_INVALID, false,
                                "value \"%" PRId64 "\" is out of range for type smallint", v);
        if (!(p = bin_field(b, NULL, 2, err)))
            return err->code;
        put_be16(p, (uint16_t)(int16_t)v);
    } else if (bin == KF_PG_BIN_INT4) {
        if (v < INT32_MIN || v > INT32_MAX)
            return kf_error_set(err, KF_ERR_INVALID, false,
                                "value \"%" PRId64 "\" is out of range for type integer", v);
        if (!(p = bin_field(b, NULL, 4, err)))
            return err->code;
        put_be32(p, (uint32_t)(int32_t)v);
    } else {
        if (!(p = bin_field(b, NULL, 8, err)))
            return err->code;
        put_be64(p, (uint64_t)v);
    }
    return KF_OK;
}

static int numeric_syntax(const char *s, size_t len, kf_error *err)
{
    return kf_error_set(err, KF_ERR_INVALID, false,
                        "invalid input syntax for type numeric: \"%.*s\"", len > 64 ? 64 : (int)len,
                        s);
}

static bool word_is(const char *s, size_t len, const char *word)
{
    size_t n = strlen(word);
    if (len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((s[i] | 0x20) != (word[i] | 0x20))
            return false;
    return true;
}

/* Appends decimal text (sign, digits, point, exponent; NaN and Infinity as numeric_in takes
 * them) as a numeric field: base-10000 digits aligned at the point, the display scale the
 * text gives. Rounding to the column's scale, and its precision, are Postgres' (as with
 * text). */
static int bin_numeric(kf_buf *b, const char *s, size_t len, kf_error *err)
{
    const char *text = s;
    size_t text_len = len;
    while (len > 0 && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
        s++, len--;
    while (len > 0 &&
           (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' || s[len - 1] == '\r'))
        len--;
    uint16_t sign = NUMERIC_POS;
    bool signed_ = len > 0 && (*s == '-' || *s == '+');
    if (signed_) {
        if (*s == '-')
            sign = NUMERIC_NEG;
        s++, len--;
    }
    uint16_t special = 0;
    if (word_is(s, len, "nan") && !signed_)
        special = NUMERIC_NAN;
    else if (word_is(s, len, "infinity") || word_is(s, len, "inf"))
        special = sign == NUMERIC_NEG ? NUMERIC_NINF : NUMERIC_PINF;
    if (special) {
        uint8_t *p = bin_field(b, NULL, 8, err);
        if (!p)
            return err->code;
        put_be16(p, 0);
        put_be16(p + 2, 0);
        put_be16(p + 4, special);
        put_be16(p + 6, 0);
        return KF_OK;
    }
    /* the significant digits, and the decimal exponent of the last one */
    char digits[NUMERIC_DIGITS];
    size_t nd = 0, i = 0;
    long frac = 0;
    bool any = false, point = false;
    for (; i < len; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            any = true;
            if (nd == 0 && c == '0') {
                if (point)
                    frac++;
                continue;
            }
            if (nd == sizeof(digits))
                return kf_error_set(err, KF_ERR_INVALID, false,
                                    "numeric value has more than %d digits", NUMERIC_DIGITS);
            digits[nd++] = c;
            if (point)
                frac++;
        } else if (c == '.' && !point) {
            point = true;
        } else {
            break;
        }
    }
    if (!any)
        return numeric_syntax(text, text_len, err);
    long exp10 = 0;
    if (i < len) {
        if ((s[i] | 0x20) != 'e' || i + 1 >= len)
            return numeric_syntax(text, text_len, err);
        i++;
        bool eneg = s[i] == '-';
        if (s[i] == '-' || s[i] == '+')
            i++;
        if (i >= len)
            return numeric_syntax(text, text_len, err);
        for (; i < len; i++) {
            if (s[i] < '0' || s[i] > '9')
                return numeric_syntax(text, text_len, err);
            exp10 = exp10 * 10 + (s[i] - '0');
            if (exp10 > NUMERIC_MAX_EXP)
                return kf_error_set(err, KF_ERR_INVALID, false, "value overflows numeric format");
        }
        if (eneg)
            exp10 = -exp10;
    }
    /* value = digits * 10^(exp10 - frac); dscale as numeric_in computes it */
    long scale = frac - exp10;
    long dscale = scale > 0 ? scale : 0;
    if (dscale > 0x3FFF)
        return kf_error_set(err, KF_ERR_INVALID, false, "value overflows numeric format");
    if (nd == 0) {
        uint8_t *p = bin_field(b, NULL, 8, err);
        if (!p)
            return err->code;
        put_be16(p, 0);
        put_be16(p + 2, 0);
        put_be16(p + 4, NUMERIC_POS);
        put_be16(p + 6, (uint16_t)dscale);
        return KF_OK;
    }
    /* position of each digit: digit k (0-based from the left) has decimal exponent
     * e_k = (nd - 1 - k) - scale; group it by floor(e_k / 4) */
    long e_first = (long)nd - 1 - scale;
    long g_first = e_first >= 0 ? e_first / 4 : -((-e_first + 3) / 4);
    long e_last = -scale;
    long g_last = e_last >= 0 ? e_last / 4 : -((-e_last + 3) / 4);
    long ngroups = g_first - g_last + 1;
    if (g_first > INT16_MAX || g_first < INT16_MIN || ngroups > 0x7FFF)
        return kf_error_set(err, KF_ERR_INVALID, false, "value overflows numeric format");
    uint8_t *p = bin_field(b, NULL, 8 + 2 * (size_t)ngroups, err);
    if (!p)
        return err->code;
    put_be16(p, (uint16_t)ngroups);
    put_be16(p + 2, (uint16_t)(int16_t)g_first);
    put_be16(p + 4, sign);
    put_be16(p + 6, (uint16_t)dscale);
    memset(p + 8, 0, 2 * (size_t)ngroups);
    static const int pow10[4] = {1, 10, 100, 1000};
    for (size_t k = 0; k < nd; k++) {
        long e = (long)(nd - 1 - k) - scale;
        long g = e >= 0 ? e / 4 : -((-e + 3) / 4);
        long at = g_first - g; /* group index from the most significant */
        int within = (int)(e - g * 4);
        uint8_t *w = p + 8 + 2 * at;
        unsigned v = (unsigned)(w[0] << 8 | w[1]) + (unsigned)(digits[k] - '0') * pow10[within];
        put_be16(w, (uint16_t)v);
    }
    return KF_OK;
}

static int bin_timestamp(kf_buf *b, const kf_column *col, int64_t v, kf_error *err)
{
    int64_t us;
    int rc = timestamp_us(col, v, &us, err);
    if (rc != KF_OK)
        return rc;
    uint8_t *p = bin_field(b, NULL, 8, err);
    if (!p)
        return err->code;
    /* us >= PG_TS_MIN_US: no overflow; the result stays below Postgres' end of time */
    put_be64(p, (uint64_t)(us - PG_EPOCH_US));
    return KF_OK;
}

static int bin_uuid(kf_buf *b, const char *s, size_t len, kf_error *err)
{
    if (!kf_pg_uuid_valid(s, len))
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "invalid input syntax for type uuid: \"%.*s\"",
                            len > 64 ? 64 : (int)len, s);
    uint8_t *p = bin_field(b, NULL, 16, err);
    if (!p)
        return err->code;
    size_t n = 0;
    for (size_t i = 0; i < len && n < 32; i++) {
        int h = hexval(s[i]);
        if (h < 0)
            continue;
        if (n % 2 == 0)
            p[n / 2] = (uint8_t)(h << 4);
        else
            p[n / 2] |= (uint8_t)h;
        n++;
    }
    return KF_OK;
}

static int bin_string(kf_buf *b, kf_pg_bin bin, const kf_column *col, const kf_cell *cell,
                      kf_error *err)
{
    const char *s = cell->v.s.ptr;
    size_t len = cell->v.s.len;
    if (memchr(s, '\0', len))
        return kf_error_set(err, KF_ERR_INVALID, false, "text contains a NUL byte");
    switch (bin) {
    case KF_PG_BIN_TEXT:
        return bin_field(b, s, len, err) ? KF_OK : err->code;
    case KF_PG_BIN_UUID:
        return bin_uuid(b, s, len, err);
    case KF_PG_BIN_JSONB: {
        uint8_t *p = bin_field(b, NULL, len + 1, err);
        if (!p)
            return err->code;
        p[0] = 1; /* jsonb's binary format version, then the text */
        memcpy(p + 1, s, len);
        return KF_OK;
    }
    case KF_PG_BIN_NUMERIC:
        if (col->type == KF_COL_DECIMAL)
            return bin_numeric(b, s, len, err);
        break;
    default:
        break;
    }
    return kind_mismatch(col, cell, err);
}

int kf_pg_copy_bin_cell(kf_buf *b, kf_pg_bin bin, const kf_column *col, const kf_cell *cell,
                        kf_error *err)
{
    char buf[2600];
    uint8_t *p;
    switch (cell->kind) {
    case KF_CELL_NULL:
        if (grow(b, 4, err) < 0)
            return err->code;
        put_be32(b->data + b->len, UINT32_MAX); /* -1: null */
        b->len += 4;
        b->data[b->len] = '\0';
        return KF_OK;
    case KF_CELL_INT:
        if (bin == KF_PG_BIN_DATE && col->type == KF_COL_DATE) {
            if (cell->v.i < PG_DATE_MIN_DAYS || cell->v.i >= PG_DATE_END_DAYS)
                return kf_error_set(err, KF_ERR_INVALID, false, "date out of range: %" PRId64,
                                    cell->v.i);
            if (!(p = bin_field(b, NULL, 4, err)))
                return err->code;
            put_be32(p, (uint32_t)(int32_t)(cell->v.i - PG_EPOCH_DAYS));
            return KF_OK;
        }
        if (bin == KF_PG_BIN_TIMESTAMP && col->type == KF_COL_TIMESTAMP)
            return bin_timestamp(b, col, cell->v.i, err);
        if (col->type != KF_COL_SMALLINT && col->type != KF_COL_INT && col->type != KF_COL_BIGINT)
            break;
        if (bin == KF_PG_BIN_INT2 || bin == KF_PG_BIN_INT4 || bin == KF_PG_BIN_INT8)
            return bin_int(b, bin, cell->v.i, err);
        if (bin == KF_PG_BIN_NUMERIC) {
            size_t n = fmt_int(buf, cell->v.i);
            return bin_numeric(b, buf, n, err);
        }
        break;
    case KF_CELL_DOUBLE: {
        if (col->type != KF_COL_FLOAT && col->type != KF_COL_DOUBLE)
            break;
        double d = cell->v.d;
        if (bin == KF_PG_BIN_FLOAT8 && col->type == KF_COL_FLOAT && isfinite(d)) {
            /* a float into a double column: the value the text form (9 digits) gives, so both
             * formats store the same double */
            snprintf(buf, sizeof(buf), "%.9g", d);
            d = strtod(buf, NULL);
        }
        if (bin == KF_PG_BIN_FLOAT8) {
            uint64_t bits;
            memcpy(&bits, &d, sizeof(bits));
            if (!(p = bin_field(b, NULL, 8, err)))
                return err->code;
            put_be64(p, bits);
            return KF_OK;
        }
        if (bin == KF_PG_BIN_FLOAT4 && col->type == KF_COL_FLOAT) {
            float f = (float)d;
            if (isinf(f) && !isinf(d))
                return kf_error_set(err, KF_ERR_INVALID, false,
                                    "\"%.17g\" is out of range for type real", d);
            uint32_t bits;
            memcpy(&bits, &f, sizeof(bits));
            if (!(p = bin_field(b, NULL, 4, err)))
                return err->code;
            put_be32(p, bits);
            return KF_OK;
        }
        break;
    }
    case KF_CELL_BOOL:
        if (col->type != KF_COL_BOOL || bin != KF_PG_BIN_BOOL)
            break;
        if (!(p = bin_field(b, NULL, 1, err)))
            return err->code;
        p[0] = cell->v.b ? 1 : 0;
        return KF_OK;
    case KF_CELL_STRING:
        if (kf_coltype_rep(col->type) != KF_REP_STRING && col->type != KF_COL_DECIMAL)
            break;
        if (col->type == KF_COL_UUID && bin == KF_PG_BIN_TEXT &&
            !kf_pg_uuid_valid(cell->v.s.ptr, cell->v.s.len))
            return kf_error_set(err, KF_ERR_INVALID, false,
                                "invalid input syntax for type uuid: \"%.*s\"",
                                cell->v.s.len > 64 ? 64 : (int)cell->v.s.len, cell->v.s.ptr);
        return bin_string(b, bin, col, cell, err);
    case KF_CELL_BYTES:
        if (col->type == KF_COL_DECIMAL && bin == KF_PG_BIN_NUMERIC) {
            int rc = kf_decimal_format((const uint8_t *)cell->v.s.ptr, cell->v.s.len, col->scale,
                                       buf, sizeof(buf), err);
            if (rc < 0)
                return rc;
            return bin_numeric(b, buf, strlen(buf), err);
        }
        if (col->type != KF_COL_BYTES || bin != KF_PG_BIN_BYTEA)
            break;
        return bin_field(b, cell->v.s.ptr, cell->v.s.len, err) ? KF_OK : err->code;
    }
    return kind_mismatch(col, cell, err);
}
