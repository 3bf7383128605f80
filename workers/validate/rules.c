/* Column and dataset rule evaluation. Everything a rule needs per record is prepared once
 * (JIT-compiled patterns, hashed value sets), values are checked in their decoded form and
 * rendered as text only when a rule compares text or a message names them. Unique windows are
 * a ring of value hashes with two counting hash maps (value, and value+row), sized once, so
 * memory is bounded and a transaction abort can be undone exactly. */
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
#define FLOAT_TEXT_MAX       128 /* longer texts are no numbers (dtype float, range) */

/* ---- hashing ---- */

static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

/* A 64-bit hash of n bytes, eight at a time; never 0 (0 marks empty slots). */
static uint64_t hash_bytes(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *s = p;
    uint64_t h = seed ^ (n * 0x9E3779B97F4A7C15ull);
    for (; n >= 8; s += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h ^= w * 0x87c37b91114253d5ull;
        h = ((h << 31) | (h >> 33)) * 0x4cf5ad432745937full;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, s, n);
        h ^= w * 0x87c37b91114253d5ull;
        h = ((h << 31) | (h >> 33)) * 0x4cf5ad432745937full;
    }
    h = mix64(h);
    return h ? h : 1;
}

/* ---- counting hash map (open addressing, linear probing, backward-shift deletion) ---- */

/* Key and count side by side: one cache line per lookup in maps far larger than the cache. */
typedef struct __attribute__((packed)) cslot {
    uint64_t key; /* 0 = empty */
    uint32_t count;
} cslot;

typedef struct cmap {
    cslot *s;
    size_t cap;
} cmap;

/* Room for `entries` distinct keys at a load factor of at most 3/4 (linear probing stays
 * short) without rounding up to a power of two, which would cost up to twice the memory: the
 * home slot comes from a multiply-shift range reduction instead of a mask. */
static int cmap_init(cmap *m, size_t entries)
{
    m->cap = entries + entries / 3 + 16;
    m->s = calloc(m->cap, sizeof(*m->s));
    return m->s ? KF_OK : KF_ERR_NOMEM;
}

static void cmap_free(cmap *m)
{
    free(m->s);
}

static size_t cmap_home(const cmap *m, uint64_t k)
{
    return (size_t)(((unsigned __int128)(k * 0x9E3779B97F4A7C15ull) * m->cap) >> 64);
}

static size_t cmap_next(const cmap *m, size_t i)
{
    return i + 1 == m->cap ? 0 : i + 1;
}

static size_t cmap_slot(const cmap *m, uint64_t k)
{
    size_t i = cmap_home(m, k);
    while (m->s[i].key && m->s[i].key != k)
        i = cmap_next(m, i);
    return i;
}

/* Counts k once more and returns its count before. The map has room for every entry the ring
 * can hold: it never fills. */
static uint32_t cmap_add(cmap *m, uint64_t k)
{
    if (!k)
        return 0;
    cslot *e = &m->s[cmap_slot(m, k)];
    e->key = k;
    return e->count++;
}

static void cmap_dec(cmap *m, uint64_t k)
{
    if (!k)
        return;
    size_t i = cmap_slot(m, k);
    if (!m->s[i].key)
        return;
    if (--m->s[i].count)
        return;
    m->s[i].key = 0;
    for (size_t j = cmap_next(m, i); m->s[j].key; j = cmap_next(m, j)) {
        size_t h = cmap_home(m, m->s[j].key);
        /* move j back into the hole unless its home lies cyclically in (i, j] */
        bool stays = i <= j ? (h > i && h <= j) : (h > i || h <= j);
        if (stays)
            continue;
        m->s[i] = m->s[j];
        m->s[j].key = 0;
        m->s[j].count = 0;
        i = j;
    }
}

/* ---- unique window ---- */

typedef struct uwin {
    uint64_t *vh;   /* value hash per ring entry */
    uint64_t *ph;   /* value+row hash per ring entry (0: no row identity) */
    int64_t *ts;    /* time per ring entry; NULL for a count window */
    size_t cap;     /* physical entries: logical + max_batch */
    size_t logical; /* entries in the window at most */
    int64_t window_ms;
    uint64_t head, tail; /* monotonic indexes: entries [tail, head) are in the window */
    /* the window at the begin of each open batch, oldest first */
    uint64_t mark_head[KF_RULES_MAX_OPEN], mark_tail[KF_RULES_MAX_OPEN];
    size_t nmarks;
    cmap values, pairs;
} uwin;

static int uwin_init(uwin *u, const kf_rule *rule, size_t max_batch)
{
    u->logical = (size_t)(rule->window_count ? rule->window_count : rule->max_keys);
    u->window_ms = rule->window_count ? 0 : rule->window_ms;
    u->cap = u->logical + max_batch;
    u->vh = calloc(u->cap, sizeof(*u->vh));
    u->ph = calloc(u->cap, sizeof(*u->ph));
    u->ts = u->window_ms > 0 ? calloc(u->cap, sizeof(*u->ts)) : NULL;
    if (!u->vh || !u->ph || (u->window_ms > 0 && !u->ts))
        return KF_ERR_NOMEM;
    /* during a batch the ring holds up to cap entries before the oldest are evicted */
    if (cmap_init(&u->values, u->cap) != KF_OK || cmap_init(&u->pairs, u->cap) != KF_OK)
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
    /* every entry evicted since the oldest open batch began must stay in the ring */
    if (u->nmarks && u->head + 1 - u->mark_tail[0] > u->cap)
        return KF_ERR_STATE;
    /* another row has it when the value counts more than the value for this row */
    uint32_t seen = cmap_add(&u->values, vh);
    *dup = seen > cmap_add(&u->pairs, ph);
    size_t h = (size_t)(u->head % u->cap);
    u->vh[h] = vh;
    u->ph[h] = ph;
    if (u->ts)
        u->ts[h] = ts;
    u->head++;
    return KF_OK;
}

static void uwin_mark(uwin *u)
{
    u->mark_head[u->nmarks] = u->head;
    u->mark_tail[u->nmarks] = u->tail;
    u->nmarks++;
}

/* The oldest open batch is final: its mark goes. */
static void uwin_unmark(uwin *u)
{
    if (!u->nmarks)
        return;
    for (size_t k = 1; k < u->nmarks; k++) {
        u->mark_head[k - 1] = u->mark_head[k];
        u->mark_tail[k - 1] = u->mark_tail[k];
    }
    u->nmarks--;
}

/* Back to the window at the begin of the oldest open batch. */
static void uwin_rollback(uwin *u)
{
    if (!u->nmarks)
        return;
    uint64_t mark_head = u->mark_head[0], mark_tail = u->mark_tail[0];
    /* added in the batches and still in the window: remove */
    for (uint64_t i = u->head; i > (u->tail > mark_head ? u->tail : mark_head); i--) {
        size_t s = (size_t)((i - 1) % u->cap);
        cmap_dec(&u->values, u->vh[s]);
        cmap_dec(&u->pairs, u->ph[s]);
    }
    /* in the window before the batches and evicted by them: put back */
    uint64_t end = u->tail < mark_head ? u->tail : mark_head;
    for (uint64_t i = mark_tail; i < end; i++) {
        size_t s = (size_t)(i % u->cap);
        cmap_add(&u->values, u->vh[s]);
        cmap_add(&u->pairs, u->ph[s]);
    }
    u->head = mark_head;
    u->tail = mark_tail;
    u->nmarks = 0;
}

/* ---- dataset windows ---- */

typedef struct dwin {
    bool open;
    int64_t start, count;
    int64_t batch_count;
    /* saved at the begin of each open batch, oldest first */
    bool s_open[KF_RULES_MAX_OPEN];
    int64_t s_start[KF_RULES_MAX_OPEN], s_count[KF_RULES_MAX_OPEN];
} dwin;

typedef struct breach {
    const kf_rule *rule;
    int64_t rows, start, end;
} breach;

/* What one rule needs per record, prepared by kf_rules_new. */
typedef struct rstate {
    /* regex: the engine's own copy of the pattern (JIT-compiled when the platform allows) and
     * its match data */
    pcre2_code *re;
    pcre2_match_data *md;
    bool jit; /* pcre2_jit_match may be used */
    bool utf; /* the pattern is in UTF mode: subjects must be checked */
    /* allowed_values: open-addressing set of value indexes + 1 (0 = empty), by text hash */
    uint32_t *set;
    size_t set_mask;
    uint64_t *vhash; /* per value */
    size_t *vlen;    /* per value */
} rstate;

/* Column positions of a table, in contract column order (-1: absent). */
typedef struct binding {
    const kf_table *table;
    int *idx;
} binding;

struct kf_rules {
    const kf_contract *c;
    size_t max_batch;
    uwin *uniq;                    /* per rule (only unique rules initialised) */
    dwin *dsets;                   /* per rule (only dataset rules used) */
    uint64_t *committed, *pending; /* per rule: violations final, and not yet */
    uint64_t checked, pending_checked;
    breach *breaches; /* found and not yet reported, oldest first */
    size_t nbreaches;
    uint64_t breaches_dropped;
    /* Open batches (kf_rules_begin without commit or rollback yet), oldest first. Where the
     * newer one began: its violations, rows and breaches follow the older one's. */
    size_t nopen;
    uint64_t *pending_at; /* per rule: pending when the newer batch began */
    uint64_t checked_at;
    size_t breaches_at;
    uint64_t dropped_at;
    binding bindings[MAX_BINDINGS];
    size_t nbindings;
    const kf_cell **cells; /* scratch rows for events */
    const kf_column **cols;
    kf_violation_fn on_violation;
    void *on_violation_ctx;
    rstate *rs;       /* per rule */
    bool has_dataset; /* some rule counts rows */
    uint64_t seq;     /* records checked so far, for the rendered value below */
    /* the value last rendered: cell text_cell of record text_seq, text_len bytes */
    uint64_t text_seq;
    const kf_cell *text_cell;
    const char *text_ptr;
    size_t text_len;
    char text[1100];
    /* kf_rules_tick: the newest record time, and the rows, record time and clock of the
     * tick that last saw the row count change */
    bool seen_ts, tick_armed;
    int64_t max_ts, tick_ts, tick_clock;
    uint64_t tick_rows;
};

static int rstate_init(rstate *s, const kf_rule *rule)
{
    if (rule->kind == KF_RULE_REGEX) {
        /* a copy: the contract stays untouched and may serve other engines */
        if (!(s->re = pcre2_code_copy(rule->re)))
            return KF_ERR_NOMEM;
        s->jit = pcre2_jit_compile(s->re, PCRE2_JIT_COMPLETE) == 0;
        uint32_t opts = 0;
        pcre2_pattern_info(s->re, PCRE2_INFO_ALLOPTIONS, &opts);
        s->utf = (opts & PCRE2_UTF) != 0;
        if (!(s->md = pcre2_match_data_create_from_pattern(s->re, NULL)))
            return KF_ERR_NOMEM;
    } else if (rule->kind == KF_RULE_ALLOWED_VALUES) {
        size_t cap = 4;
        while (cap < rule->nvalues * 2)
            cap <<= 1;
        s->set = calloc(cap, sizeof(*s->set));
        s->vhash = calloc(rule->nvalues ? rule->nvalues : 1, sizeof(*s->vhash));
        s->vlen = calloc(rule->nvalues ? rule->nvalues : 1, sizeof(*s->vlen));
        if (!s->set || !s->vhash || !s->vlen)
            return KF_ERR_NOMEM;
        s->set_mask = cap - 1;
        for (size_t i = 0; i < rule->nvalues; i++) {
            s->vlen[i] = strlen(rule->values[i]);
            s->vhash[i] = hash_bytes(rule->values[i], s->vlen[i], 0);
            size_t slot = (size_t)s->vhash[i] & s->set_mask;
            while (s->set[slot])
                slot = (slot + 1) & s->set_mask;
            s->set[slot] = (uint32_t)i + 1;
        }
    }
    return KF_OK;
}

static void rstate_free(rstate *s)
{
    pcre2_match_data_free(s->md);
    pcre2_code_free(s->re);
    free(s->set);
    free(s->vhash);
    free(s->vlen);
}

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
    r->pending_at = calloc(n, sizeof(*r->pending_at));
    r->breaches = calloc(MAX_PENDING_BREACHES, sizeof(*r->breaches));
    r->cells = calloc(nc, sizeof(*r->cells));
    r->cols = calloc(nc, sizeof(*r->cols));
    r->rs = calloc(n, sizeof(*r->rs));
    if (!r->uniq || !r->dsets || !r->committed || !r->pending || !r->pending_at || !r->breaches ||
        !r->cells || !r->cols || !r->rs)
        goto out_free_rules;
    for (size_t i = 0; i < c->nrules; i++) {
        const kf_rule *rule = &c->rules[i];
        if (rule->kind == KF_RULE_UNIQUE && uwin_init(&r->uniq[i], rule, r->max_batch) != KF_OK)
            goto out_free_rules;
        if (rstate_init(&r->rs[i], rule) != KF_OK)
            goto out_free_rules;
        if (rule->kind == KF_RULE_MIN_ROWS || rule->kind == KF_RULE_MAX_ROWS)
            r->has_dataset = true;
    }
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
    free(r->pending_at);
    free(r->breaches);
    for (size_t i = 0; i < r->nbindings; i++)
        free(r->bindings[i].idx);
    free(r->cells);
    free(r->cols);
    if (r->rs)
        for (size_t i = 0; i < r->c->nrules; i++)
            rstate_free(&r->rs[i]);
    free(r->rs);
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

/* What strtod (C locale) makes of a text, as far as scan_number can tell without it. */
typedef enum scan_result {
    SCAN_NUMBER,       /* all of it is a finite number in the normal range (no ERANGE) */
    SCAN_NOT_A_NUMBER, /* strtod finds no number, or stops before the end */
    SCAN_ASK_STRTOD,   /* hexadecimal, inf, nan, other characters, extreme magnitudes */
} scan_result;

/* Doubles hold every power of ten up to 1e22 exactly. */
static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Scans the plain decimal forms: [sign] digits [. digits] [e [sign] digits], with digits on
 * at least one side of the point. For SCAN_NUMBER, *exact says whether *value is strtod's
 * result: with at most 19 significant digits below 2^53 and a power of ten up to 22, one
 * IEEE multiplication or division rounds correctly. len < FLOAT_TEXT_MAX. */
static scan_result scan_number(const char *s, size_t len, bool *exact, double *value)
{
    size_t i = 0;
    bool neg = false;
    if (s[0] == '+' || s[0] == '-')
        neg = s[i++] == '-';
    uint64_t m = 0;
    int nsig = 0, nint = 0, nfrac = 0, first = -1; /* first: digit index of the first nonzero */
    bool lost = false;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, nint++) {
        if (first < 0 && s[i] == '0')
            continue;
        if (first < 0)
            first = nint;
        if (nsig < 19) {
            m = m * 10 + (uint64_t)(s[i] - '0');
            nsig++;
        } else {
            lost = true;
        }
    }
    int mag = first >= 0 ? nint - first - 1 : 0; /* decimal magnitude of the first nonzero */
    if (i < len && s[i] == '.') {
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, nfrac++) {
            if (first < 0 && s[i] == '0')
                continue;
            if (first < 0) {
                first = nint + nfrac;
                mag = -(nfrac + 1);
            }
            if (nsig < 19) {
                m = m * 10 + (uint64_t)(s[i] - '0');
                nsig++;
            } else {
                lost = true;
            }
        }
    }
    int exp = 0;
    if (nint + nfrac > 0 && i < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        bool eneg = false;
        if (j < len && (s[j] == '+' || s[j] == '-'))
            eneg = s[j++] == '-';
        size_t start = j;
        for (; j < len && s[j] >= '0' && s[j] <= '9'; j++)
            if (j - start < 4)
                exp = exp * 10 + (s[j] - '0');
        if (j - start > 4)
            return SCAN_ASK_STRTOD;
        if (j > start) { /* else strtod ends the number before the e */
            exp = eneg ? -exp : exp;
            i = j;
        }
    }
    if (i < len)
        return s[i] && strchr("0123456789.eE+-", s[i]) ? SCAN_NOT_A_NUMBER : SCAN_ASK_STRTOD;
    if (nint + nfrac == 0)
        return SCAN_NOT_A_NUMBER;
    *exact = false;
    if (first < 0) { /* zero, whatever the exponent */
        *exact = true;
        *value = neg ? -0.0 : 0.0;
        return SCAN_NUMBER;
    }
    if (mag + exp < -300 || mag + exp > 300)
        return SCAN_ASK_STRTOD;
    int e10 = exp - nfrac;
    if (!lost && m <= (1ull << 53) && e10 >= -22 && e10 <= 22) {
        double d = (double)m;
        d = e10 >= 0 ? d * POW10[e10] : d / POW10[-e10];
        *exact = true;
        *value = neg ? -d : d;
    }
    return SCAN_NUMBER;
}

/* strtod over a copy of s (len < FLOAT_TEXT_MAX): true when it takes all of s and gives a
 * finite number without a range error. */
static bool strtod_text(const char *s, size_t len, double *out)
{
    char buf[FLOAT_TEXT_MAX];
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    double d = strtod(buf, &end);
    *out = d;
    return *end == '\0' && isfinite(d) && errno != ERANGE;
}

bool kf_parse_is_float(const char *s, size_t len)
{
    if (len == 0 || len >= FLOAT_TEXT_MAX || isspace((unsigned char)s[0]))
        return false;
    bool exact;
    double d;
    switch (scan_number(s, len, &exact, &d)) {
    case SCAN_NUMBER:
        return true;
    case SCAN_NOT_A_NUMBER:
        return false;
    case SCAN_ASK_STRTOD:
        break;
    }
    return strtod_text(s, len, &d);
}

/* The number a text stands for, as kf_parse_is_float and strtod see it. */
static bool text_number(const char *s, size_t len, double *out)
{
    if (len == 0 || len >= FLOAT_TEXT_MAX || isspace((unsigned char)s[0]))
        return false;
    bool exact = false;
    switch (scan_number(s, len, &exact, out)) {
    case SCAN_NUMBER:
        if (exact)
            return true;
        break;
    case SCAN_NOT_A_NUMBER:
        return false;
    case SCAN_ASK_STRTOD:
        break;
    }
    return strtod_text(s, len, out);
}

bool kf_parse_is_bool(const char *s, size_t len)
{
    static const struct {
        const char *word;
        size_t len;
    } words[] = {{"true", 4}, {"false", 5}, {"t", 1}, {"f", 1},
                 {"yes", 3},  {"no", 2},    {"1", 1}, {"0", 1}};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (words[i].len == len && strncasecmp(s, words[i].word, len) == 0)
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

/* An int as "%" PRId64 writes it, into buf (at least 21 bytes); returns the length. */
static size_t int_text(int64_t v, char *buf)
{
    char tmp[20];
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t o = 0;
    if (v < 0)
        buf[o++] = '-';
    while (n)
        buf[o++] = tmp[--n];
    return o;
}

static bool is_decimal(const kf_column *col)
{
    return col && col->type == KF_COL_DECIMAL;
}

static bool is_temporal(const kf_column *col)
{
    return col && (col->type == KF_COL_DATE || col->type == KF_COL_TIMESTAMP);
}

/* The text of a non-null cell as cell_text renders it, without rendering strings and plain
 * bytes (their text is themselves) and rendering anything else once per record. Borrowed
 * until the next record. */
static void text_of(kf_rules *r, const kf_cell *cell, const kf_column *col, const char **out,
                    size_t *len)
{
    if (cell->kind == KF_CELL_STRING || (cell->kind == KF_CELL_BYTES && !is_decimal(col))) {
        *out = cell->v.s.ptr;
        *len = cell->v.s.len;
        return;
    }
    if (r->text_seq != r->seq || r->text_cell != cell) {
        if (cell->kind == KF_CELL_INT && !is_temporal(col)) {
            r->text_len = int_text(cell->v.i, r->text);
            r->text_ptr = r->text;
        } else if (cell->kind == KF_CELL_BOOL) {
            r->text_ptr = cell->v.b ? "true" : "false";
            r->text_len = cell->v.b ? 4 : 5;
        } else {
            cell_text(r, cell, col, &r->text_ptr, &r->text_len);
        }
        r->text_seq = r->seq;
        r->text_cell = cell;
    }
    *out = r->text_ptr;
    *len = r->text_len;
}

/* The identity of a value for one row, for the unique windows' value+row counts. */
static uint64_t pair_hash(uint64_t value_hash, uint64_t row_key)
{
    uint64_t h = mix64(value_hash ^ (row_key * 0x9E3779B97F4A7C15ull));
    return h ? h : 1;
}

/* Characters of UTF-8 text: the bytes that do not continue a sequence (10xxxxxx). */
static size_t utf8_chars(const char *s, size_t n)
{
    size_t cont = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        cont += (size_t)__builtin_popcountll(w & ~(w << 1) & 0x8080808080808080ull);
    }
    for (; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) == 0x80)
            cont++;
    return n - cont;
}

static bool all_ascii(const char *s, size_t n)
{
    uint64_t acc = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= (unsigned char)s[i];
    return (acc & 0x8080808080808080ull) == 0;
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

/* A decimal's value as strtod reads its text, straight from the unscaled bytes when they fit
 * 53 bits and the scale is at most 22 (one correctly rounded division). False: render it. */
static bool decimal_number(const kf_cell *cell, const kf_column *col, double *out)
{
    const unsigned char *b = (const unsigned char *)cell->v.s.ptr;
    size_t len = cell->v.s.len;
    if (len > 8 || col->scale < 0 || col->scale > 22)
        return false;
    uint64_t u = len > 0 && (b[0] & 0x80) ? UINT64_MAX : 0; /* two's complement, big-endian */
    for (size_t i = 0; i < len; i++)
        u = (u << 8) | b[i];
    bool neg = (int64_t)u < 0;
    uint64_t mag = neg ? 0 - u : u;
    if (mag > (1ull << 53))
        return false;
    double d = (double)mag / POW10[col->scale];
    *out = neg ? -d : d;
    return true;
}

/* The number a range rule compares: ints and doubles as they are, text as strtod reads it
 * (decimals by their decimal text). False: not a number. */
static bool cell_number(kf_rules *r, const kf_cell *cell, const kf_column *col, double *out)
{
    switch (cell->kind) {
    case KF_CELL_INT:
        *out = (double)cell->v.i;
        return true;
    case KF_CELL_DOUBLE:
        *out = cell->v.d;
        return true;
    case KF_CELL_STRING:
        return text_number(cell->v.s.ptr, cell->v.s.len, out);
    case KF_CELL_BYTES: {
        if (is_decimal(col) && decimal_number(cell, col, out))
            return true;
        const char *t;
        size_t n;
        text_of(r, cell, col, &t, &n);
        return text_number(t, n, out);
    }
    default:
        return false;
    }
}

static bool dtype_ok(const kf_rule *rule, const kf_cell *cell, const kf_column *col)
{
    if (cell->kind == KF_CELL_STRING) {
        const char *text = cell->v.s.ptr;
        size_t len = cell->v.s.len;
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
        return (cell->kind == KF_CELL_INT && !is_temporal(col)) ||
               (cell->kind == KF_CELL_DOUBLE && cell->v.d == floor(cell->v.d) &&
                fabs(cell->v.d) < 9.2e18) ||
               (cell->kind == KF_CELL_BYTES && is_decimal(col) && col->scale == 0);
    case KF_DTYPE_FLOAT:
        return (cell->kind == KF_CELL_INT && !is_temporal(col)) || cell->kind == KF_CELL_DOUBLE ||
               (cell->kind == KF_CELL_BYTES && is_decimal(col));
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

static bool allowed(const kf_rule *rule, const rstate *s, const char *t, size_t n)
{
    uint64_t h = hash_bytes(t, n, 0);
    for (size_t slot = (size_t)h & s->set_mask; s->set[slot]; slot = (slot + 1) & s->set_mask) {
        size_t i = s->set[slot] - 1;
        if (s->vhash[i] == h && s->vlen[i] == n && memcmp(rule->values[i], t, n) == 0)
            return true;
    }
    return false;
}

/* Matches t: >= 0 a match, PCRE2_ERROR_NOMATCH, or another error as the interpreter reports
 * it. The JIT fast path skips the subject checks, so it takes only what needs none: any
 * subject for a non-UTF pattern, ASCII for a UTF one. */
static int regex_match(const rstate *s, const char *t, size_t n)
{
    int m;
    if (s->jit && (!s->utf || all_ascii(t, n)))
        m = pcre2_jit_match(s->re, (PCRE2_SPTR)t, n, 0, 0, s->md, NULL);
    else
        m = pcre2_match(s->re, (PCRE2_SPTR)t, n, 0, 0, s->md, NULL);
    if (m < 0 && m != PCRE2_ERROR_NOMATCH) /* a JIT limit, or a subject error to report */
        m = pcre2_match(s->re, (PCRE2_SPTR)t, n, 0, PCRE2_NO_JIT, s->md, NULL);
    return m;
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
    switch (rule->kind) {
    case KF_RULE_NOT_NULL:
    case KF_RULE_MIN_ROWS:
    case KF_RULE_MAX_ROWS:
        return false;
    case KF_RULE_UNIQUE: {
        text_of(r, cell, col, &t, &n);
        bool dup = false;
        uint64_t vh = hash_bytes(t, n, 0);
        uint64_t ph = row->row_key ? pair_hash(vh, row->row_key) : 0;
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
        text_of(r, cell, col, &t, &n);
        if (allowed(rule, &r->rs[ri], t, n))
            return false;
        snprintf(msg, cap, "column \"%s\" value \"%.*s\" is not one of the allowed values", cn,
                 shown(t, n), t);
        return true;
    case KF_RULE_DTYPE:
        if (dtype_ok(rule, cell, col))
            return false;
        text_of(r, cell, col, &t, &n);
        snprintf(msg, cap, "column \"%s\" value \"%.*s\" is not of type %s", cn, shown(t, n), t,
                 kf_dtype_name(rule->dtype));
        return true;
    case KF_RULE_REGEX: {
        text_of(r, cell, col, &t, &n);
        int m = regex_match(&r->rs[ri], t, n);
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
        if (!cell_number(r, cell, col, &d)) {
            text_of(r, cell, col, &t, &n);
            snprintf(msg, cap, "column \"%s\" value \"%.*s\" is not a number", cn, shown(t, n), t);
            return true;
        }
        if (rule->has_min && d < rule->min) {
            text_of(r, cell, col, &t, &n);
            snprintf(msg, cap, "column \"%s\" value %.*s is below the minimum %g", cn, shown(t, n),
                     t, rule->min);
            return true;
        }
        if (rule->has_max && d > rule->max) {
            text_of(r, cell, col, &t, &n);
            snprintf(msg, cap, "column \"%s\" value %.*s is above the maximum %g", cn, shown(t, n),
                     t, rule->max);
            return true;
        }
        return false;
    }
    case KF_RULE_LENGTH: {
        size_t len;
        if (cell->kind == KF_CELL_STRING) {
            /* characters <= bytes: count them only when the bytes do not settle it */
            len = cell->v.s.len;
            if ((rule->has_max && (double)len > rule->max) || (rule->has_min && rule->min > 0))
                len = utf8_chars(cell->v.s.ptr, len);
        } else if (cell->kind == KF_CELL_BYTES && !is_decimal(col)) {
            len = cell->v.s.len;
        } else {
            text_of(r, cell, col, &t, &n);
            len = utf8_chars(t, n);
        }
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

/* An empty verdict; the message is written only with a failure. */
static void verdict_clear(kf_verdict *v)
{
    v->failed = NULL;
    v->message[0] = '\0';
    v->nquarantine = 0;
    v->nwarn = 0;
}

int kf_rules_check(kf_rules *r, const kf_row *row, kf_verdict *v)
{
    verdict_clear(v);
    r->seq++;
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
                snprintf(v->message, sizeof(v->message), "%s", msg);
            }
            v->nquarantine++;
        } else {
            v->nwarn++;
        }
        if (r->on_violation)
            r->on_violation(r->on_violation_ctx, rule, msg);
    }
    r->pending_checked++;
    if (!r->seen_ts || row->ts_ms > r->max_ts) {
        r->max_ts = row->ts_ms;
        r->seen_ts = true;
    }
    if (r->has_dataset)
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
    verdict_clear(v);
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

int kf_rules_begin(kf_rules *r)
{
    if (r->nopen == KF_RULES_MAX_OPEN)
        return KF_ERR_STATE;
    size_t k = r->nopen;
    for (size_t i = 0; i < r->c->nrules; i++) {
        if (r->c->rules[i].kind == KF_RULE_UNIQUE)
            uwin_mark(&r->uniq[i]);
        dwin *w = &r->dsets[i];
        w->s_open[k] = w->open;
        w->s_start[k] = w->start;
        w->s_count[k] = w->count;
        w->batch_count = 0;
        if (k)
            r->pending_at[i] = r->pending[i];
    }
    if (k) {
        r->checked_at = r->pending_checked;
        r->breaches_at = r->nbreaches;
        r->dropped_at = r->breaches_dropped;
    }
    r->nopen++;
    return KF_OK;
}

size_t kf_rules_open(const kf_rules *r)
{
    return r->nopen;
}

void kf_rules_rollback(kf_rules *r)
{
    for (size_t i = 0; i < r->c->nrules; i++) {
        if (r->c->rules[i].kind == KF_RULE_UNIQUE)
            uwin_rollback(&r->uniq[i]);
        dwin *w = &r->dsets[i];
        if (r->nopen) {
            w->open = w->s_open[0];
            w->start = w->s_start[0];
            w->count = w->s_count[0];
        }
        w->batch_count = 0;
        r->pending[i] = 0;
    }
    r->pending_checked = 0;
    r->nbreaches = 0;
    r->breaches_dropped = 0;
    r->nopen = 0;
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
    /* with two open batches the older one's share is what was pending when the newer began */
    bool split = r->nopen > 1;
    for (size_t i = 0; i < r->c->nrules; i++) {
        uint64_t share = split ? r->pending_at[i] : r->pending[i];
        r->committed[i] += share;
        r->pending[i] -= share;
        if (r->c->rules[i].kind == KF_RULE_UNIQUE)
            uwin_unmark(&r->uniq[i]);
        dwin *w = &r->dsets[i];
        for (size_t k = 1; k < r->nopen; k++) {
            w->s_open[k - 1] = w->s_open[k];
            w->s_start[k - 1] = w->s_start[k];
            w->s_count[k - 1] = w->s_count[k];
        }
    }
    uint64_t checked = split ? r->checked_at : r->pending_checked;
    r->checked += checked;
    r->pending_checked -= checked;
    size_t nb = split ? r->breaches_at : r->nbreaches;
    uint64_t dropped = split ? r->dropped_at : r->breaches_dropped;
    for (size_t i = 0; fn && i < nb; i++)
        fn(ctx, r->breaches[i].rule, r->breaches[i].rows, r->breaches[i].start, r->breaches[i].end);
    if (dropped)
        kf_logf(KF_LOG_WARN, "%" PRIu64 " dataset rule breaches of contract \"%s\" not reported",
                dropped, r->c->name);
    memmove(r->breaches, r->breaches + nb, (r->nbreaches - nb) * sizeof(*r->breaches));
    r->nbreaches -= nb;
    r->breaches_dropped -= dropped;
    if (r->nopen)
        r->nopen--;
}

uint64_t kf_rules_checked(const kf_rules *r)
{
    return r->checked;
}

uint64_t kf_rules_violations(const kf_rules *r, size_t i)
{
    return i < r->c->nrules ? r->committed[i] : 0;
}

void kf_rules_tick(kf_rules *r, int64_t now_ms, kf_breach_fn fn, void *ctx)
{
    if (r->nopen)
        return; /* a rollback would bring closed windows back */
    uint64_t rows = r->checked + r->pending_checked;
    if (!r->tick_armed || rows != r->tick_rows) {
        r->tick_armed = true;
        r->tick_rows = rows;
        r->tick_ts = r->max_ts;
        r->tick_clock = now_ms;
        return;
    }
    if (!r->seen_ts)
        return;
    /* quiet since the last change: record time moves on with the clock */
    int64_t stream = r->tick_ts + (now_ms - r->tick_clock);
    for (size_t i = 0; i < r->c->nrules; i++) {
        const kf_rule *rule = &r->c->rules[i];
        dwin *w = &r->dsets[i];
        if ((rule->kind != KF_RULE_MIN_ROWS && rule->kind != KF_RULE_MAX_ROWS) ||
            !rule->window_ms || !w->open || stream < w->start + rule->window_ms)
            continue;
        int64_t end = w->start + rule->window_ms;
        int64_t current = floor_div(stream, rule->window_ms) * rule->window_ms;
        if (fn && breached(rule, w->count))
            fn(ctx, rule, w->count, w->start, end);
        if (fn && current > end && breached(rule, 0))
            fn(ctx, rule, 0, end, current);
        w->start = current;
        w->count = 0;
    }
}
