/* Column and dataset rule evaluation. Unique windows are a ring of value hashes with two
 * counting hash maps (value, and value+row), sized once, so memory is bounded and a
 * transaction abort can be undone exactly. */
#include "rules.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfleet/log.h"

#define MAX_PENDING_BREACHES 1024
#define MAX_BINDINGS         64
#define SHOWN_VALUE_MAX      64

/* ---- counting hash map (open addressing, linear probing, backward-shift deletion) ---- */

typedef struct cmap {
    uint64_t *keys; /* 0 = empty */
    uint32_t *counts;
    size_t mask;
} cmap;

static int cmap_init(cmap *m, size_t entries)
{
    size_t cap = 16;
    while (cap < entries * 2)
        cap <<= 1;
    m->keys = calloc(cap, sizeof(*m->keys));
    m->counts = calloc(cap, sizeof(*m->counts));
    m->mask = cap - 1;
    return m->keys && m->counts ? KF_OK : KF_ERR_NOMEM;
}

static void cmap_free(cmap *m)
{
    free(m->keys);
    free(m->counts);
}

static size_t cmap_home(const cmap *m, uint64_t k)
{
    return (size_t)(k * 0x9E3779B97F4A7C15ull >> 7) & m->mask;
}

static size_t cmap_slot(const cmap *m, uint64_t k)
{
    size_t i = cmap_home(m, k);
    while (m->keys[i] && m->keys[i] != k)
        i = (i + 1) & m->mask;
    return i;
}

static uint32_t cmap_get(const cmap *m, uint64_t k)
{
    if (!k)
        return 0;
    size_t i = cmap_slot(m, k);
    return m->keys[i] ? m->counts[i] : 0;
}

/* The map is sized for twice the entries the ring can hold: it never fills. */
static void cmap_inc(cmap *m, uint64_t k)
{
    if (!k)
        return;
    size_t i = cmap_slot(m, k);
    m->keys[i] = k;
    m->counts[i]++;
}

static void cmap_dec(cmap *m, uint64_t k)
{
    if (!k)
        return;
    size_t i = cmap_slot(m, k);
    if (!m->keys[i])
        return;
    if (--m->counts[i])
        return;
    m->keys[i] = 0;
    for (size_t j = (i + 1) & m->mask; m->keys[j]; j = (j + 1) & m->mask) {
        size_t h = cmap_home(m, m->keys[j]);
        /* move j back into the hole unless its home lies cyclically in (i, j] */
        bool stays = i <= j ? (h > i && h <= j) : (h > i || h <= j);
        if (stays)
            continue;
        m->keys[i] = m->keys[j];
        m->counts[i] = m->counts[j];
        m->keys[j] = 0;
        m->counts[j] = 0;
        i = j;
    }
}

/* ---- unique window ---- */

typedef struct uwin {
    uint64_t *vh; /* value hash per ring entry */
    uint64_t *ph; /* value+row hash per ring entry (0: no row identity) */
    int64_t *ts;
    size_t cap;     /* physical entries: logical + max_batch */
    size_t logical; /* entries in the window at most */
    int64_t window_ms;
    uint64_t head, tail; /* monotonic indexes: entries [tail, head) are in the window */
    uint64_t mark_head, mark_tail;
    bool marked;
    cmap values, pairs;
} uwin;

static int uwin_init(uwin *u, const kf_rule *rule, size_t max_batch)
{
    u->logical = (size_t)(rule->window_count ? rule->window_count : rule->max_keys);
    u->window_ms = rule->window_count ? 0 : rule->window_ms;
    u->cap = u->logical + max_batch;
    u->vh = calloc(u->cap, sizeof(*u->vh));
    u->ph = calloc(u->cap, sizeof(*u->ph));
    u->ts = calloc(u->cap, sizeof(*u->ts));
    if (!u->vh || !u->ph || !u->ts)
        return KF_ERR_NOMEM;
    if (cmap_init(&u->values, u->logical) != KF_OK || cmap_init(&u->pairs, u->logical) != KF_OK)
        return KF_ERR_NOMEM;
    return KF_OK;
}

static void uwin_free(uwin *u)
{
    free(u->vh);
    free(u->ph);
    free(u->ts);
    cmap_free(&u->values);
    cmap_free(&u->pairs);
}

/* Adds a value; *dup says whether another row had it within the window. */
static int uwin_add(uwin *u, uint64_t vh, uint64_t ph, int64_t ts, bool *dup)
{
    while (u->head > u->tail) {
        size_t t = (size_t)(u->tail % u->cap);
        bool full = u->head - u->tail >= u->logical;
        bool expired = u->window_ms > 0 && ts - u->ts[t] >= u->window_ms;
        if (!full && !expired)
            break;
        cmap_dec(&u->values, u->vh[t]);
        cmap_dec(&u->pairs, u->ph[t]);
        u->tail++;
    }
    if (u->marked && u->head + 1 - u->mark_tail > u->cap)
        return KF_ERR_STATE;
    *dup = cmap_get(&u->values, vh) > cmap_get(&u->pairs, ph);
    size_t h = (size_t)(u->head % u->cap);
    u->vh[h] = vh;
    u->ph[h] = ph;
    u->ts[h] = ts;
    cmap_inc(&u->values, vh);
    cmap_inc(&u->pairs, ph);
    u->head++;
    return KF_OK;
}

static void uwin_mark(uwin *u)
{
    u->mark_head = u->head;
    u->mark_tail = u->tail;
    u->marked = true;
}

static void uwin_rollback(uwin *u)
{
    if (!u->marked)
        return;
    /* added in the batch and still in the window: remove */
    for (uint64_t i = u->head; i > (u->tail > u->mark_head ? u->tail : u->mark_head); i--) {
        size_t s = (size_t)((i - 1) % u->cap);
        cmap_dec(&u->values, u->vh[s]);
        cmap_dec(&u->pairs, u->ph[s]);
    }
    /* in the window before the batch and evicted by it: put back */
    uint64_t end = u->tail < u->mark_head ? u->tail : u->mark_head;
    for (uint64_t i = u->mark_tail; i < end; i++) {
        size_t s = (size_t)(i % u->cap);
        cmap_inc(&u->values, u->vh[s]);
        cmap_inc(&u->pairs, u->ph[s]);
    }
    u->head = u->mark_head;
    u->tail = u->mark_tail;
}

/* ---- dataset windows ---- */

typedef struct dwin {
    bool open;
    int64_t start, count;
    int64_t batch_count;
    /* saved at begin */
    bool s_open;
    int64_t s_start, s_count;
} dwin;

typedef struct breach {
    const kf_rule *rule;
    int64_t rows, start, end;
} breach;

/* Column positions of a table, in contract column order (-1: absent). */
typedef struct binding {
    const kf_table *table;
    int *idx;
} binding;

struct kf_rules {
    const kf_contract *c;
    size_t max_batch;
    uwin *uniq;  /* per rule (only unique rules initialised) */
    dwin *dsets; /* per rule (only dataset rules used) */
    uint64_t *committed, *pending;
    uint64_t checked, pending_checked;
    breach *breaches;
    size_t nbreaches;
    uint64_t breaches_dropped;
    binding bindings[MAX_BINDINGS];
    size_t nbindings;
    const kf_cell **cells; /* scratch rows for events */
    const kf_column **cols;
    kf_violation_fn on_violation;
    void *on_violation_ctx;
    char text[1100]; /* a rendered value */
};

kf_rules *kf_rules_new(const kf_contract *c, size_t max_batch, kf_error *err)
{
    kf_rules *r = calloc(1, sizeof(*r));
    if (!r)
        goto out_nomem;
    r->c = c;
    r->max_batch = max_batch ? max_batch : 1;
    size_t n = c->nrules ? c->nrules : 1, nc = c->ncolumns ? c->ncolumns : 1;
    r->uniq = calloc(n, sizeof(*r->uniq));
    r->dsets = calloc(n, sizeof(*r->dsets));
    r->committed = calloc(n, sizeof(*r->committed));
    r->pending = calloc(n, sizeof(*r->pending));
    r->breaches = calloc(MAX_PENDING_BREACHES, sizeof(*r->breaches));
    r->cells = calloc(nc, sizeof(*r->cells));
    r->cols = calloc(nc, sizeof(*r->cols));
    if (!r->uniq || !r->dsets || !r->committed || !r->pending || !r->breaches || !r->cells ||
        !r->cols)
        goto out_free_rules;
    for (size_t i = 0; i < c->nrules; i++)
        if (c->rules[i].kind == KF_RULE_UNIQUE &&
            uwin_init(&r->uniq[i], &c->rules[i], r->max_batch) != KF_OK)
            goto out_free_rules;
    return r;

out_free_rules:
    kf_rules_destroy(r);
out_nomem:
    kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate rule state");
    return NULL;
}

void kf_rules_destroy(kf_rules *r)
{
    if (!r)
        return;
    if (r->uniq)
        for (size_t i = 0; i < r->c->nrules; i++)
            uwin_free(&r->uniq[i]);
    free(r->uniq);
    free(r->dsets);
    free(r->committed);
    free(r->pending);
    free(r->breaches);
    for (size_t i = 0; i < r->nbindings; i++)
        free(r->bindings[i].idx);
    free(r->cells);
    free(r->cols);
    free(r);
}

void kf_rules_set_violation_fn(kf_rules *r, kf_violation_fn fn, void *ctx)
{
    r->on_violation = fn;
    r->on_violation_ctx = ctx;
}

/* ---- value parsing ---- */

bool kf_parse_is_int(const char *s, size_t len)
{
    size_t i = len > 0 && (s[0] == '-' || s[0] == '+') ? 1 : 0;
    size_t nd = len - i;
    if (nd == 0 || nd > 19)
        return false;
    for (size_t j = i; j < len; j++)
        if (s[j] < '0' || s[j] > '9')
            return false;
    /* 19 digits may pass the int64 limits: compare by text */
    if (nd == 19)
        return memcmp(s + i, s[0] == '-' ? "9223372036854775808" : "9223372036854775807", 19) <= 0;
    return true;
}

bool kf_parse_is_float(const char *s, size_t len)
{
    char buf[128];
    if (len == 0 || len >= sizeof(buf) || isspace((unsigned char)s[0]))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    double d = strtod(buf, &end);
    return *end == '\0' && isfinite(d) && errno != ERANGE;
}

bool kf_parse_is_bool(const char *s, size_t len)
{
    static const char *const words[] = {"true", "false", "t", "f", "yes", "no", "1", "0"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strlen(words[i]) == len && strncasecmp(s, words[i], len) == 0)
            return true;
    return false;
}

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static bool valid_ymd(int y, int m, int d)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= mdays[m - 1] + (m == 2 && leap);
}

bool kf_parse_is_date(const char *s, size_t len)
{
    int y, m, d;
    return len == 10 && s[4] == '-' && s[7] == '-' && digits(s, 4, &y) && digits(s + 5, 2, &m) &&
           digits(s + 8, 2, &d) && valid_ymd(y, m, d);
}

/* YYYY-MM-DD[T ]HH:MM[:SS[.fraction]][Z|+HH[:MM]|-HH[:MM]] */
bool kf_parse_is_timestamp(const char *s, size_t len)
{
    int hh, mm, ss;
    if (len < 16 || !kf_parse_is_date(s, 10) || (s[10] != 'T' && s[10] != ' ') ||
        !digits(s + 11, 2, &hh) || s[13] != ':' || !digits(s + 14, 2, &mm) || hh > 23 || mm > 59)
        return false;
    size_t i = 16;
    if (i < len && s[i] == ':') {
        if (i + 3 > len || !digits(s + i + 1, 2, &ss) || ss > 60)
            return false;
        i += 3;
        if (i < len && s[i] == '.') {
            size_t start = ++i;
            while (i < len && s[i] >= '0' && s[i] <= '9')
                i++;
            if (i == start || i - start > 9)
                return false;
        }
    }
    if (i == len)
        return true;
    if (s[i] == 'Z' || s[i] == 'z')
        return i + 1 == len;
    if (s[i] != '+' && s[i] != '-')
        return false;
    int oh, om;
    if (i + 3 > len || !digits(s + i + 1, 2, &oh) || oh > 18)
        return false;
    i += 3;
    if (i == len)
        return true;
    if (s[i] == ':')
        i++;
    return i + 2 == len && digits(s + i, 2, &om) && om <= 59;
}

/* ---- rendering values ---- */

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
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
    *y = (int)(yy + (*m <= 2));
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The text of a non-null cell: strings as they are, numbers in their shortest exact form,
 * dates and timestamps in ISO-8601, decimals in their decimal form. Borrowed until the next
 * call. */
static void cell_text(kf_rules *r, const kf_cell *cell, const kf_column *col, const char **out,
                      size_t *len)
{
    char *buf = r->text;
    size_t cap = sizeof(r->text);
    int n = 0;
    switch (cell->kind) {
    case KF_CELL_STRING:
        *out = cell->v.s.ptr;
        *len = cell->v.s.len;
        return;
    case KF_CELL_BYTES:
        if (col && col->type == KF_COL_DECIMAL &&
            kf_decimal_format((const uint8_t *)cell->v.s.ptr, cell->v.s.len, col->scale, buf, cap,
                              NULL) == KF_OK) {
            *out = buf;
            *len = strlen(buf);
            return;
        }
        *out = cell->v.s.ptr;
        *len = cell->v.s.len;
        return;
    case KF_CELL_INT:
        if (col && col->type == KF_COL_DATE) {
            int y;
            unsigned m, d;
            civil_from_days(cell->v.i, &y, &m, &d);
            n = snprintf(buf, cap, "%04d-%02u-%02u", y, m, d);
        } else if (col && col->type == KF_COL_TIMESTAMP) {
            int64_t unit = col->time_precision == 3   ? 1000
                           : col->time_precision == 9 ? 1000000000
                                                      : 1000000;
            int64_t secs = floor_div(cell->v.i, unit), frac = cell->v.i - secs * unit;
            int64_t days = floor_div(secs, 86400), sod = secs - days * 86400;
            int y;
            unsigned m, d;
            civil_from_days(days, &y, &m, &d);
            n = snprintf(buf, cap, "%04d-%02u-%02uT%02d:%02d:%02d.%0*" PRId64, y, m, d,
                         (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60),
                         col->time_precision == 3   ? 3
                         : col->time_precision == 9 ? 9
                                                    : 6,
                         frac);
        } else {
            n = snprintf(buf, cap, "%" PRId64, cell->v.i);
        }
        break;
    case KF_CELL_DOUBLE:
        n = snprintf(buf, cap, "%.15g", cell->v.d);
        if (strtod(buf, NULL) != cell->v.d)
            n = snprintf(buf, cap, "%.17g", cell->v.d);
        break;
    case KF_CELL_BOOL:
        n = snprintf(buf, cap, "%s", cell->v.b ? "true" : "false");
        break;
    case KF_CELL_NULL:
        n = 0;
        buf[0] = '\0';
        break;
    }
    *out = buf;
    *len = n > 0 ? (size_t)n : 0;
}

static uint64_t hash_bytes(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h ? h : 1;
}

static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            c++;
    return c;
}

/* A value for a message: at most SHOWN_VALUE_MAX bytes, cut at a character boundary. */
static int shown(const char *s, size_t n)
{
    if (n <= SHOWN_VALUE_MAX)
        return (int)n;
    n = SHOWN_VALUE_MAX;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return (int)n;
}

static bool cell_number(const kf_cell *cell, const char *text, size_t len, double *out)
{
    switch (cell->kind) {
    case KF_CELL_INT:
        *out = (double)cell->v.i;
        return true;
    case KF_CELL_DOUBLE:
        *out = cell->v.d;
        return true;
    case KF_CELL_STRING:
    case KF_CELL_BYTES: {
        if (!kf_parse_is_float(text, len))
            return false;
        char buf[128];
        memcpy(buf, text, len);
        buf[len] = '\0';
        *out = strtod(buf, NULL);
        return true;
    }
    default:
        return false;
    }
}

static bool dtype_ok(const kf_rule *rule, const kf_cell *cell, const kf_column *col,
                     const char *text, size_t len)
{
    if (cell->kind == KF_CELL_STRING) {
        switch (rule->dtype) {
        case KF_DTYPE_INT:
            return kf_parse_is_int(text, len);
        case KF_DTYPE_FLOAT:
            return kf_parse_is_float(text, len);
        case KF_DTYPE_STRING:
            return true;
        case KF_DTYPE_BOOL:
            return kf_parse_is_bool(text, len);
        case KF_DTYPE_DATE:
            return kf_parse_is_date(text, len);
        case KF_DTYPE_TIMESTAMP:
            return kf_parse_is_timestamp(text, len);
        }
        return false;
    }
    switch (rule->dtype) {
    case KF_DTYPE_INT:
        return (cell->kind == KF_CELL_INT &&
                !(col && (col->type == KF_COL_DATE || col->type == KF_COL_TIMESTAMP))) ||
               (cell->kind == KF_CELL_DOUBLE && cell->v.d == floor(cell->v.d) &&
                fabs(cell->v.d) < 9.2e18) ||
               (cell->kind == KF_CELL_BYTES && col && col->type == KF_COL_DECIMAL &&
                col->scale == 0);
    case KF_DTYPE_FLOAT:
        return (cell->kind == KF_CELL_INT &&
                !(col && (col->type == KF_COL_DATE || col->type == KF_COL_TIMESTAMP))) ||
               cell->kind == KF_CELL_DOUBLE ||
               (cell->kind == KF_CELL_BYTES && col && col->type == KF_COL_DECIMAL);
    case KF_DTYPE_STRING:
        return false;
    case KF_DTYPE_BOOL:
        return cell->kind == KF_CELL_BOOL;
    case KF_DTYPE_DATE:
        return cell->kind == KF_CELL_INT && col && col->type == KF_COL_DATE;
    case KF_DTYPE_TIMESTAMP:
        return cell->kind == KF_CELL_INT && col && col->type == KF_COL_TIMESTAMP;
    }
    return false;
}

/* Checks one rule; on a violation writes the reason into msg and returns true. */
static bool violates(kf_rules *r, size_t ri, const kf_row *row, char *msg, size_t cap, int *rc)
{
    const kf_rule *rule = &r->c->rules[ri];
    const kf_cell *cell = row->cells[rule->col];
    const kf_column *col = row->cols ? row->cols[rule->col] : NULL;
    const char *cn = rule->column;
    if (!cell || cell->kind == KF_CELL_NULL) {
        if (rule->kind != KF_RULE_NOT_NULL)
            return false;
        snprintf(msg, cap, "column \"%s\" is %s", cn, cell ? "null" : "missing");
        return true;
    }
    const char *t;
    size_t n;
    cell_text(r, cell, col, &t, &n);
    switch (rule->kind) {
    case KF_RULE_NOT_NULL:
    case KF_RULE_MIN_ROWS:
    case KF_RULE_MAX_ROWS:
        return false;
    case KF_RULE_UNIQUE: {
        bool dup = false;
        uint64_t vh = hash_bytes(t, n, 0);
        uint64_t ph = row->row_key ? hash_bytes(t, n, row->row_key) : 0;
        *rc = uwin_add(&r->uniq[ri], vh, ph, row->ts_ms, &dup);
        if (!dup)
            return false;
        if (rule->window_count)
            snprintf(msg, cap,
                     "column \"%s\" value \"%.*s\" is a duplicate within the last %" PRId64
                     " records",
                     cn, shown(t, n), t, rule->window_count);
        else
            snprintf(msg, cap, "column \"%s\" value \"%.*s\" is a duplicate within %" PRId64 " ms",
                     cn, shown(t, n), t, rule->window_ms);
        return true;
    }
    case KF_RULE_ALLOWED_VALUES:
        for (size_t i = 0; i < rule->nvalues; i++)
            if (strlen(rule->values[i]) == n && memcmp(rule->values[i], t, n) == 0)
                return false;
        snprintf(msg, cap, "column \"%s\" value \"%.*s\" is not one of the allowed values", cn,
                 shown(t, n), t);
        return true;
    case KF_RULE_DTYPE:
        if (dtype_ok(rule, cell, col, t, n))
            return false;
        snprintf(msg, cap, "column \"%s\" value \"%.*s\" is not of type %s", cn, shown(t, n), t,
                 kf_dtype_name(rule->dtype));
        return true;
    case KF_RULE_REGEX: {
        int m = pcre2_match(rule->re, (PCRE2_SPTR)t, n, 0, 0, rule->match, NULL);
        if (m >= 0)
            return false;
        if (m == PCRE2_ERROR_NOMATCH)
            snprintf(msg, cap, "column \"%s\" value \"%.*s\" does not match /%s/", cn, shown(t, n),
                     t, rule->pattern);
        else
            snprintf(msg, cap, "column \"%s\" value could not be matched against /%s/ (error %d)",
                     cn, rule->pattern, m);
        return true;
    }
    case KF_RULE_RANGE: {
        double d;
        if (!cell_number(cell, t, n, &d)) {
            snprintf(msg, cap, "column \"%s\" value \"%.*s\" is not a number", cn, shown(t, n), t);
            return true;
        }
        if (rule->has_min && d < rule->min) {
            snprintf(msg, cap, "column \"%s\" value %.*s is below the minimum %g", cn, shown(t, n),
                     t, rule->min);
            return true;
        }
        if (rule->has_max && d > rule->max) {
            snprintf(msg, cap, "column \"%s\" value %.*s is above the maximum %g", cn, shown(t, n),
                     t, rule->max);
            return true;
        }
        return false;
    }
    case KF_RULE_LENGTH: {
        bool raw = cell->kind == KF_CELL_BYTES && !(col && col->type == KF_COL_DECIMAL);
        size_t len = raw ? n : utf8_chars(t, n);
        if (rule->has_min && (double)len < rule->min) {
            snprintf(msg, cap, "column \"%s\" length %zu is below the minimum %g", cn, len,
                     rule->min);
            return true;
        }
        if (rule->has_max && (double)len > rule->max) {
            snprintf(msg, cap, "column \"%s\" length %zu is above the maximum %g", cn, len,
                     rule->max);
            return true;
        }
        return false;
    }
    }
    return false;
}

static void push_breach(kf_rules *r, const kf_rule *rule, int64_t rows, int64_t start, int64_t end)
{
    if (r->nbreaches == MAX_PENDING_BREACHES) {
        r->breaches_dropped++;
        return;
    }
    r->breaches[r->nbreaches++] = (breach){rule, rows, start, end};
}

static bool breached(const kf_rule *rule, int64_t rows)
{
    return rule->kind == KF_RULE_MIN_ROWS ? rows < rule->rows : rows > rule->rows;
}

static void count_row(kf_rules *r, int64_t ts)
{
    for (size_t i = 0; i < r->c->nrules; i++) {
        const kf_rule *rule = &r->c->rules[i];
        if (rule->kind != KF_RULE_MIN_ROWS && rule->kind != KF_RULE_MAX_ROWS)
            continue;
        dwin *w = &r->dsets[i];
        w->batch_count++;
        if (!rule->window_ms)
            continue;
        int64_t start = floor_div(ts, rule->window_ms) * rule->window_ms;
        if (w->open && start > w->start) {
            if (breached(rule, w->count))
                push_breach(r, rule, w->count, w->start, w->start + rule->window_ms);
            /* the empty windows in between hold zero rows */
            if (start > w->start + rule->window_ms && breached(rule, 0))
                push_breach(r, rule, 0, w->start + rule->window_ms, start);
        }
        if (!w->open || start > w->start) {
            w->open = true;
            w->start = start;
            w->count = 0;
        }
        w->count++;
    }
}

int kf_rules_check(kf_rules *r, const kf_row *row, kf_verdict *v)
{
    memset(v, 0, sizeof(*v));
    int rc = KF_OK;
    char msg[sizeof(v->message)];
    for (size_t i = 0; i < r->c->nrules; i++) {
        const kf_rule *rule = &r->c->rules[i];
        if (!rule->column)
            continue;
        if (!violates(r, i, row, msg, sizeof(msg), &rc)) {
            if (rc != KF_OK)
                return rc;
            continue;
        }
        if (rc != KF_OK)
            return rc;
        r->pending[i]++;
        if (rule->severity == KF_SEVERITY_QUARANTINE) {
            if (!v->failed) {
                v->failed = rule;
                memcpy(v->message, msg, sizeof(msg));
            }
            v->nquarantine++;
        } else {
            v->nwarn++;
        }
        if (r->on_violation)
            r->on_violation(r->on_violation_ctx, rule, msg);
    }
    r->pending_checked++;
    count_row(r, row->ts_ms);
    return KF_OK;
}

/* Column positions of table in contract order, cached per table. */
static const int *bind(kf_rules *r, const kf_table *t)
{
    for (size_t i = 0; i < r->nbindings; i++)
        if (r->bindings[i].table == t)
            return r->bindings[i].idx;
    if (r->nbindings == MAX_BINDINGS) {
        for (size_t i = 0; i < r->nbindings; i++)
            free(r->bindings[i].idx);
        r->nbindings = 0;
    }
    int *idx = calloc(r->c->ncolumns ? r->c->ncolumns : 1, sizeof(*idx));
    if (!idx)
        return NULL;
    for (size_t i = 0; i < r->c->ncolumns; i++) {
        idx[i] = kf_table_find(t, r->c->columns[i]);
        if (idx[i] < 0)
            kf_log(KF_LOG_WARN, "contract column is not in the table; its value counts as missing",
                   "contract", r->c->name, "column", r->c->columns[i], "table", kf_table_name(t),
                   (char *)NULL);
    }
    r->bindings[r->nbindings++] = (binding){t, idx};
    return idx;
}

int kf_rules_check_event(kf_rules *r, const kf_event *ev, const void *key, size_t key_len,
                         int64_t ts_ms, kf_verdict *v)
{
    memset(v, 0, sizeof(*v));
    if (ev->op == KF_OP_DELETE || ev->op == KF_OP_TOMBSTONE || ev->op == KF_OP_TRUNCATE ||
        !ev->after || !ev->table)
        return KF_OK;
    const int *idx = bind(r, ev->table);
    if (!idx)
        return KF_ERR_NOMEM;
    for (size_t i = 0; i < r->c->ncolumns; i++) {
        r->cells[i] = idx[i] >= 0 ? &ev->after[idx[i]] : NULL;
        r->cols[i] = idx[i] >= 0 ? kf_table_column(ev->table, (size_t)idx[i]) : NULL;
    }
    kf_row row = {.cells = r->cells,
                  .cols = r->cols,
                  .row_key = key && key_len ? hash_bytes(key, key_len, 0x6b6579) : 0,
                  .ts_ms = ts_ms};
    return kf_rules_check(r, &row, v);
}

void kf_rules_begin(kf_rules *r)
{
    for (size_t i = 0; i < r->c->nrules; i++) {
        if (r->c->rules[i].kind == KF_RULE_UNIQUE)
            uwin_mark(&r->uniq[i]);
        dwin *w = &r->dsets[i];
        w->s_open = w->open;
        w->s_start = w->start;
        w->s_count = w->count;
        w->batch_count = 0;
    }
}

void kf_rules_rollback(kf_rules *r)
{
    for (size_t i = 0; i < r->c->nrules; i++) {
        if (r->c->rules[i].kind == KF_RULE_UNIQUE)
            uwin_rollback(&r->uniq[i]);
        dwin *w = &r->dsets[i];
        w->open = w->s_open;
        w->start = w->s_start;
        w->count = w->s_count;
        w->batch_count = 0;
        r->pending[i] = 0;
    }
    r->pending_checked = 0;
    r->nbreaches = 0;
    r->breaches_dropped = 0;
}

void kf_rules_end_batch(kf_rules *r)
{
    for (size_t i = 0; i < r->c->nrules; i++) {
        const kf_rule *rule = &r->c->rules[i];
        dwin *w = &r->dsets[i];
        if ((rule->kind == KF_RULE_MIN_ROWS || rule->kind == KF_RULE_MAX_ROWS) &&
            !rule->window_ms && w->batch_count > 0 && breached(rule, w->batch_count))
            push_breach(r, rule, w->batch_count, 0, 0);
        w->batch_count = 0;
    }
}

void kf_rules_close_windows(kf_rules *r)
{
    for (size_t i = 0; i < r->c->nrules; i++) {
        const kf_rule *rule = &r->c->rules[i];
        dwin *w = &r->dsets[i];
        if (rule->kind == KF_RULE_MAX_ROWS && rule->window_ms && w->open &&
            breached(rule, w->count))
            push_breach(r, rule, w->count, w->start, w->start + rule->window_ms);
        w->open = false;
    }
}

void kf_rules_commit(kf_rules *r, kf_breach_fn fn, void *ctx)
{
    for (size_t i = 0; i < r->c->nrules; i++) {
        r->committed[i] += r->pending[i];
        r->pending[i] = 0;
        if (r->c->rules[i].kind == KF_RULE_UNIQUE)
            r->uniq[i].marked = false;
    }
    r->checked += r->pending_checked;
    r->pending_checked = 0;
    for (size_t i = 0; fn && i < r->nbreaches; i++)
        fn(ctx, r->breaches[i].rule, r->breaches[i].rows, r->breaches[i].start, r->breaches[i].end);
    if (r->breaches_dropped)
        kf_logf(KF_LOG_WARN, "%" PRIu64 " dataset rule breaches of contract \"%s\" not reported",
                r->breaches_dropped, r->c->name);
    r->nbreaches = 0;
    r->breaches_dropped = 0;
}

uint64_t kf_rules_checked(const kf_rules *r)
{
    return r->checked;
}

uint64_t kf_rules_violations(const kf_rules *r, size_t i)
{
    return i < r->c->nrules ? r->committed[i] : 0;
}
