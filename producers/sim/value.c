/* Column types and cells: parsing type names and literals, hashing, comparing, and writing
 * cells as JSON. Dates and timestamps use proleptic Gregorian arithmetic in UTC, so results
 * never depend on the local time zone. */
#include "value.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfleet/error.h"

static const char *const type_names[] = {
    [KF_SIM_SMALLINT] = "smallint",   [KF_SIM_INT] = "int",
    [KF_SIM_BIGINT] = "bigint",       [KF_SIM_FLOAT] = "float",
    [KF_SIM_DOUBLE] = "double",       [KF_SIM_DECIMAL] = "decimal",
    [KF_SIM_BOOL] = "bool",           [KF_SIM_TEXT] = "text",
    [KF_SIM_VARCHAR] = "varchar",     [KF_SIM_DATE] = "date",
    [KF_SIM_TIMESTAMP] = "timestamp", [KF_SIM_TIMESTAMPTZ] = "timestamptz",
    [KF_SIM_UUID] = "uuid",           [KF_SIM_JSON] = "json",
};

/* Accepted spellings beyond the canonical names. */
static const struct {
    const char *name;
    kf_sim_type type;
} type_aliases[] = {
    {"integer", KF_SIM_INT},   {"int4", KF_SIM_INT},        {"int2", KF_SIM_SMALLINT},
    {"int8", KF_SIM_BIGINT},   {"real", KF_SIM_FLOAT},      {"float4", KF_SIM_FLOAT},
    {"float8", KF_SIM_DOUBLE}, {"numeric", KF_SIM_DECIMAL}, {"boolean", KF_SIM_BOOL},
    {"jsonb", KF_SIM_JSON},
};

#define KF_SIM_DECIMAL_MAX_PRECISION 38
#define KF_SIM_VARCHAR_MAX_LENGTH    10485760

const char *kf_sim_type_name(kf_sim_type t)
{
    if ((unsigned)t < sizeof(type_names) / sizeof(type_names[0]) && type_names[t])
        return type_names[t];
    return "unknown";
}

static bool lookup_type(const char *name, size_t len, kf_sim_type *out)
{
    for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++) {
        if (strlen(type_names[i]) == len && strncmp(type_names[i], name, len) == 0) {
            *out = (kf_sim_type)i;
            return true;
        }
    }
    for (size_t i = 0; i < sizeof(type_aliases) / sizeof(type_aliases[0]); i++) {
        if (strlen(type_aliases[i].name) == len && strncmp(type_aliases[i].name, name, len) == 0) {
            *out = type_aliases[i].type;
            return true;
        }
    }
    return false;
}

/* Parses "n" or "n,m" (spaces allowed) between the parentheses of a type. */
static int parse_type_args(const char *p, long *a, long *b, int *nargs)
{
    char *end;
    *nargs = 0;
    errno = 0;
    *a = strtol(p, &end, 10);
    if (end == p || errno)
        return -1;
    *nargs = 1;
    while (*end == ' ')
        end++;
    if (*end == ',') {
        p = end + 1;
        while (*p == ' ')
            p++;
        *b = strtol(p, &end, 10);
        if (end == p || errno)
            return -1;
        *nargs = 2;
        while (*end == ' ')
            end++;
    }
    if (*end != ')' || end[1] != '\0')
        return -1;
    return 0;
}

int kf_sim_coltype_parse(const char *text, kf_sim_coltype *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    const char *paren = strchr(text, '(');
    size_t namelen = paren ? (size_t)(paren - text) : strlen(text);
    while (namelen > 0 && text[namelen - 1] == ' ')
        namelen--;
    if (!lookup_type(text, namelen, &out->type)) {
        snprintf(why, whylen,
                 "unknown type \"%s\" (expected smallint, int, bigint, float, double, "
                 "decimal(p,s), bool, text, varchar(n), date, timestamp, timestamptz, uuid or "
                 "json)",
                 text);
        return KF_ERR_INVALID;
    }
    long a = 0, b = 0;
    int nargs = 0;
    if (paren && parse_type_args(paren + 1, &a, &b, &nargs) != 0) {
        snprintf(why, whylen, "malformed type parameters in \"%s\"", text);
        return KF_ERR_INVALID;
    }
    switch (out->type) {
    case KF_SIM_VARCHAR:
        if (nargs != 1 || a < 1 || a > KF_SIM_VARCHAR_MAX_LENGTH) {
            snprintf(why, whylen, "type \"%s\" needs a length between 1 and %d, as in varchar(40)",
                     text, KF_SIM_VARCHAR_MAX_LENGTH);
            return KF_ERR_INVALID;
        }
        out->length = (int)a;
        return KF_OK;
    case KF_SIM_DECIMAL:
        if (nargs == 0 || a < 1 || a > KF_SIM_DECIMAL_MAX_PRECISION || b < 0 || b > a || b > 18) {
            snprintf(why, whylen,
                     "type \"%s\" needs a precision between 1 and %d and a scale between 0 and "
                     "the precision (at most 18), as in decimal(10,2)",
                     text, KF_SIM_DECIMAL_MAX_PRECISION);
            return KF_ERR_INVALID;
        }
        out->precision = (int)a;
        out->scale = (int)b;
        return KF_OK;
    default:
        if (nargs != 0) {
            snprintf(why, whylen, "type \"%.*s\" takes no parameters", (int)namelen, text);
            return KF_ERR_INVALID;
        }
        return KF_OK;
    }
}

void kf_sim_coltype_format(const kf_sim_coltype *t, char *buf, size_t len)
{
    if (t->type == KF_SIM_VARCHAR)
        snprintf(buf, len, "varchar(%d)", t->length);
    else if (t->type == KF_SIM_DECIMAL)
        snprintf(buf, len, "decimal(%d,%d)", t->precision, t->scale);
    else
        snprintf(buf, len, "%s", kf_sim_type_name(t->type));
}

kf_sim_cell_kind kf_sim_type_cell_kind(kf_sim_type t)
{
    switch (t) {
    case KF_SIM_FLOAT:
    case KF_SIM_DOUBLE:
        return KF_SIM_CELL_DOUBLE;
    case KF_SIM_BOOL:
        return KF_SIM_CELL_BOOL;
    case KF_SIM_TEXT:
    case KF_SIM_VARCHAR:
    case KF_SIM_UUID:
    case KF_SIM_JSON:
        return KF_SIM_CELL_STRING;
    default:
        return KF_SIM_CELL_INT;
    }
}

bool kf_sim_type_is_integer(kf_sim_type t)
{
    return t == KF_SIM_SMALLINT || t == KF_SIM_INT || t == KF_SIM_BIGINT;
}

bool kf_sim_type_is_numeric(kf_sim_type t)
{
    return kf_sim_type_is_integer(t) || t == KF_SIM_FLOAT || t == KF_SIM_DOUBLE ||
           t == KF_SIM_DECIMAL;
}

bool kf_sim_type_is_temporal(kf_sim_type t)
{
    return t == KF_SIM_DATE || t == KF_SIM_TIMESTAMP || t == KF_SIM_TIMESTAMPTZ;
}

bool kf_sim_type_is_string(kf_sim_type t)
{
    return t == KF_SIM_TEXT || t == KF_SIM_VARCHAR;
}

void kf_sim_type_int_bounds(const kf_sim_coltype *t, int64_t *lo, int64_t *hi)
{
    switch (t->type) {
    case KF_SIM_SMALLINT:
        *lo = INT16_MIN;
        *hi = INT16_MAX;
        return;
    case KF_SIM_INT:
        *lo = INT32_MIN;
        *hi = INT32_MAX;
        return;
    case KF_SIM_DECIMAL: {
        /* An int64 cell holds at most 18 digits, whatever the declared precision. */
        int digits = t->precision < 18 ? t->precision : 18;
        int64_t m = 1;
        for (int i = 0; i < digits; i++)
            m *= 10;
        *lo = -(m - 1);
        *hi = m - 1;
        return;
    }
    default:
        *lo = INT64_MIN;
        *hi = INT64_MAX;
        return;
    }
}

int64_t kf_sim_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void kf_sim_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool read_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int kf_sim_time_parse(const char *text, int64_t *us_out)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = text;
    int y, mo, d, h = 0, mi = 0, s = 0;
    int64_t frac = 0;
    if (!read_digits(&p, 4, &y) || *p++ != '-' || !read_digits(&p, 2, &mo) || *p++ != '-' ||
        !read_digits(&p, 2, &d))
        return KF_ERR_INVALID;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && is_leap(y)))
        return KF_ERR_INVALID;
    int64_t offset_s = 0;
    if (*p == 'T' || *p == ' ') {
        p++;
        if (!read_digits(&p, 2, &h) || *p++ != ':' || !read_digits(&p, 2, &mi))
            return KF_ERR_INVALID;
        if (*p == ':') {
            p++;
            if (!read_digits(&p, 2, &s))
                return KF_ERR_INVALID;
            if (*p == '.') {
                p++;
                int n = 0;
                while (isdigit((unsigned char)*p)) {
                    if (n < 6) {
                        frac = frac * 10 + (*p - '0');
                        n++;
                    }
                    p++;
                }
                if (n == 0)
                    return KF_ERR_INVALID;
                while (n++ < 6)
                    frac *= 10;
            }
        }
        if (h > 23 || mi > 59 || s > 59)
            return KF_ERR_INVALID;
        if (*p == 'Z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1;
            int oh, om = 0;
            p++;
            if (!read_digits(&p, 2, &oh))
                return KF_ERR_INVALID;
            if (*p == ':')
                p++;
            if (*p && !read_digits(&p, 2, &om))
                return KF_ERR_INVALID;
            if (oh > 23 || om > 59)
                return KF_ERR_INVALID;
            offset_s = sign * (oh * 3600 + om * 60);
        }
    }
    if (*p != '\0')
        return KF_ERR_INVALID;
    int64_t days = kf_sim_days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + s - offset_s;
    *us_out = secs * 1000000 + frac;
    return KF_OK;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

/* Writes v as exactly n decimal digits at p. */
static void put_digits(char *p, int64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

void kf_sim_time_format(int64_t us, bool zulu, char *buf, size_t len)
{
    int64_t secs = floor_div(us, 1000000);
    int64_t frac = us - secs * 1000000;
    int64_t days = floor_div(secs, 86400);
    int64_t rem = secs - days * 86400;
    int64_t y;
    unsigned m, d;
    kf_sim_civil_from_days(days, &y, &m, &d);
    /* Four-digit years are composed by hand: the Kafka output formats every timestamptz
     * cell of every event. */
    if (y >= 0 && y <= 9999 && len >= 28) {
        char *p = buf;
        put_digits(p, y, 4);
        p[4] = '-';
        put_digits(p + 5, m, 2);
        p[7] = '-';
        put_digits(p + 8, d, 2);
        p[10] = 'T';
        put_digits(p + 11, rem / 3600, 2);
        p[13] = ':';
        put_digits(p + 14, rem / 60 % 60, 2);
        p[16] = ':';
        put_digits(p + 17, rem % 60, 2);
        p[19] = '.';
        put_digits(p + 20, frac, 6);
        p += 26;
        if (zulu)
            *p++ = 'Z';
        *p = '\0';
        return;
    }
    snprintf(buf, len, "%04" PRId64 "-%02u-%02uT%02d:%02d:%02d.%06d%s", y, m, d, (int)(rem / 3600),
             (int)(rem / 60 % 60), (int)(rem % 60), (int)frac, zulu ? "Z" : "");
}

/* Parses a decimal literal into an unscaled integer with the given scale; more fractional
 * digits than the scale are an error rather than a silent rounding. */
static int parse_decimal(const char *text, int scale, int64_t *out)
{
    const char *p = text;
    bool neg = false;
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (!isdigit((unsigned char)*p) && !(*p == '.' && isdigit((unsigned char)p[1])))
        return KF_ERR_INVALID;
    __int128 v = 0;
    while (isdigit((unsigned char)*p)) {
        v = v * 10 + (*p++ - '0');
        if (v > INT64_MAX)
            return KF_ERR_INVALID;
    }
    int fdigits = 0;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            if (fdigits >= scale)
                return KF_ERR_INVALID;
            v = v * 10 + (*p++ - '0');
            fdigits++;
        }
    }
    if (*p != '\0')
        return KF_ERR_INVALID;
    for (; fdigits < scale; fdigits++)
        v *= 10;
    if (v > INT64_MAX)
        return KF_ERR_INVALID;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return KF_OK;
}

int kf_sim_value_parse(const kf_sim_coltype *t, const char *text, kf_sim_cell *out, char *why,
                       size_t whylen)
{
    memset(out, 0, sizeof(*out));
    out->kind = kf_sim_type_cell_kind(t->type);
    char *end;
    switch (t->type) {
    case KF_SIM_SMALLINT:
    case KF_SIM_INT:
    case KF_SIM_BIGINT: {
        errno = 0;
        long long v = strtoll(text, &end, 10);
        int64_t lo, hi;
        kf_sim_type_int_bounds(t, &lo, &hi);
        if (end == text || *end != '\0' || errno) {
            snprintf(why, whylen, "expected an integer, found \"%s\"", text);
            return KF_ERR_INVALID;
        }
        if (v < lo || v > hi) {
            snprintf(why, whylen, "value %s does not fit type %s", text, kf_sim_type_name(t->type));
            return KF_ERR_INVALID;
        }
        out->i = v;
        return KF_OK;
    }
    case KF_SIM_FLOAT:
    case KF_SIM_DOUBLE:
        errno = 0;
        out->d = strtod(text, &end);
        if (end == text || *end != '\0' || errno || !isfinite(out->d)) {
            snprintf(why, whylen, "expected a number, found \"%s\"", text);
            return KF_ERR_INVALID;
        }
        return KF_OK;
    case KF_SIM_DECIMAL: {
        int64_t lo, hi;
        kf_sim_type_int_bounds(t, &lo, &hi);
        if (parse_decimal(text, t->scale, &out->i) != KF_OK || out->i < lo || out->i > hi) {
            snprintf(why, whylen, "expected a decimal fitting decimal(%d,%d), found \"%s\"",
                     t->precision, t->scale, text);
            return KF_ERR_INVALID;
        }
        return KF_OK;
    }
    case KF_SIM_BOOL:
        if (strcmp(text, "true") == 0)
            out->b = true;
        else if (strcmp(text, "false") == 0)
            out->b = false;
        else {
            snprintf(why, whylen, "expected true or false, found \"%s\"", text);
            return KF_ERR_INVALID;
        }
        return KF_OK;
    case KF_SIM_DATE:
    case KF_SIM_TIMESTAMP:
    case KF_SIM_TIMESTAMPTZ: {
        int64_t us;
        if (kf_sim_time_parse(text, &us) != KF_OK) {
            snprintf(why, whylen,
                     "expected a date \"YYYY-MM-DD\" or a timestamp \"YYYY-MM-DDTHH:MM:SS\", "
                     "found \"%s\"",
                     text);
            return KF_ERR_INVALID;
        }
        out->i = t->type == KF_SIM_DATE ? floor_div(us, 86400LL * 1000000) : us;
        return KF_OK;
    }
    case KF_SIM_JSON: {
        json_error_t jerr;
        json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
        if (!j) {
            snprintf(why, whylen, "expected JSON text, found \"%s\": %s", text, jerr.text);
            return KF_ERR_INVALID;
        }
        json_decref(j);
        break;
    }
    case KF_SIM_VARCHAR:
        if (strlen(text) > (size_t)t->length) {
            snprintf(why, whylen, "value \"%s\" is longer than varchar(%d)", text, t->length);
            return KF_ERR_INVALID;
        }
        break;
    default:
        break;
    }
    out->s = text;
    out->len = (uint32_t)strlen(text);
    return KF_OK;
}

int kf_sim_cell_compare(const kf_sim_cell *a, const kf_sim_cell *b)
{
    switch (a->kind) {
    case KF_SIM_CELL_INT:
        return (a->i > b->i) - (a->i < b->i);
    case KF_SIM_CELL_DOUBLE:
        return (a->d > b->d) - (a->d < b->d);
    case KF_SIM_CELL_BOOL:
        return (int)a->b - (int)b->b;
    case KF_SIM_CELL_STRING: {
        size_t n = a->len < b->len ? a->len : b->len;
        int c = memcmp(a->s, b->s, n);
        if (c)
            return c;
        return (a->len > b->len) - (a->len < b->len);
    }
    default:
        return 0;
    }
}

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t kf_sim_cell_hash(const kf_sim_cell *c)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)c->kind;
    switch (c->kind) {
    case KF_SIM_CELL_INT:
        return mix64(h ^ (uint64_t)c->i);
    case KF_SIM_CELL_DOUBLE: {
        double d = c->d == 0.0 ? 0.0 : c->d; /* -0.0 equals 0.0 */
        uint64_t bits;
        memcpy(&bits, &d, sizeof(bits));
        return mix64(h ^ bits);
    }
    case KF_SIM_CELL_BOOL:
        return mix64(h ^ (uint64_t)c->b);
    case KF_SIM_CELL_STRING:
        for (uint32_t i = 0; i < c->len; i++) {
            h ^= (unsigned char)c->s[i];
            h *= 0x100000001b3ULL;
        }
        return mix64(h ^ c->len);
    default:
        return mix64(h);
    }
}

bool kf_sim_cell_equal(const kf_sim_cell *a, const kf_sim_cell *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == KF_SIM_CELL_NULL)
        return true;
    if (a->kind == KF_SIM_CELL_STRING && a->len != b->len)
        return false;
    return kf_sim_cell_compare(a, b) == 0;
}

int kf_sim_json_string(kf_sim_buf *b, const char *s, size_t len)
{
    if (kf_sim_buf_reserve(b, len + 2) != KF_OK)
        return KF_ERR_NOMEM;
    int rc = kf_sim_buf_putc(b, '"');
    size_t start = 0;
    for (size_t i = 0; i < len && rc == KF_OK; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        rc = kf_sim_buf_append(b, s + start, i - start);
        if (rc != KF_OK)
            break;
        start = i + 1;
        switch (ch) {
        case '"':
            rc = kf_sim_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            rc = kf_sim_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            rc = kf_sim_buf_append(b, "\\n", 2);
            break;
        case '\t':
            rc = kf_sim_buf_append(b, "\\t", 2);
            break;
        case '\r':
            rc = kf_sim_buf_append(b, "\\r", 2);
            break;
        default:
            rc = kf_sim_buf_printf(b, "\\u%04x", ch);
            break;
        }
    }
    if (rc == KF_OK)
        rc = kf_sim_buf_append(b, s + start, len - start);
    if (rc == KF_OK)
        rc = kf_sim_buf_putc(b, '"');
    return rc;
}

static int write_decimal(kf_sim_buf *b, int64_t unscaled, int scale)
{
    char digits[32];
    uint64_t mag = unscaled < 0 ? (uint64_t)0 - (uint64_t)unscaled : (uint64_t)unscaled;
    int n = snprintf(digits, sizeof(digits), "%0*" PRIu64, scale + 1, mag);
    if (scale == 0)
        return kf_sim_buf_printf(b, "\"%s%s\"", unscaled < 0 ? "-" : "", digits);
    return kf_sim_buf_printf(b, "\"%s%.*s.%s\"", unscaled < 0 ? "-" : "", n - scale, digits,
                             digits + n - scale);
}

int kf_sim_cell_write_json(kf_sim_buf *b, const kf_sim_coltype *t, const kf_sim_cell *c)
{
    char tmp[48];
    switch (c->kind) {
    case KF_SIM_CELL_NULL:
        return kf_sim_buf_append(b, "null", 4);
    case KF_SIM_CELL_BOOL:
        return kf_sim_buf_puts(b, c->b ? "true" : "false");
    case KF_SIM_CELL_DOUBLE:
        if (!isfinite(c->d))
            return kf_sim_buf_append(b, "null", 4);
        return kf_sim_buf_printf(b, t->type == KF_SIM_FLOAT ? "%.9g" : "%.17g", c->d);
    case KF_SIM_CELL_STRING:
        if (t->type == KF_SIM_JSON)
            return kf_sim_buf_append(b, c->s, c->len);
        return kf_sim_json_string(b, c->s, c->len);
    case KF_SIM_CELL_INT:
        break;
    }
    switch (t->type) {
    case KF_SIM_DECIMAL:
        return write_decimal(b, c->i, t->scale);
    case KF_SIM_DATE: {
        int64_t y;
        unsigned m, d;
        kf_sim_civil_from_days(c->i, &y, &m, &d);
        return kf_sim_buf_printf(b, "\"%04" PRId64 "-%02u-%02u\"", y, m, d);
    }
    case KF_SIM_TIMESTAMP:
    case KF_SIM_TIMESTAMPTZ:
        kf_sim_time_format(c->i, t->type == KF_SIM_TIMESTAMPTZ, tmp, sizeof(tmp));
        return kf_sim_buf_printf(b, "\"%s\"", tmp);
    default:
        return kf_sim_buf_printf(b, "%" PRId64, c->i);
    }
}
