/* Value generators of the simulator. Text is composed in a reused scratch buffer and copied
 * once into the batch arena, so generating a row allocates nothing in steady state. */
#include "gen.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

#include "kfleet/error.h"
#include "words.h"

static const char *pick_word(kf_sim_genctx *g, kf_sim_wordlist list, size_t *len)
{
    size_t i = (size_t)kf_sim_rng_below(g->rng, kf_sim_words_count(list));
    return kf_sim_words_get_len(list, i, len);
}

/* Appends a random word of list to the scratch buffer. */
static int put_word(kf_sim_genctx *g, kf_sim_wordlist list)
{
    size_t len;
    const char *w = pick_word(g, list, &len);
    return kf_sim_buf_append(g->scratch, w, len);
}

/* Copies the scratch buffer into the arena as a STRING cell. */
static int scratch_to_cell(kf_sim_genctx *g, kf_sim_cell *out)
{
    char *s =
        kf_sim_arena_strndup(g->arena, g->scratch->data ? g->scratch->data : "", g->scratch->len);
    if (!s)
        return KF_ERR_NOMEM;
    out->kind = KF_SIM_CELL_STRING;
    out->s = s;
    out->len = (uint32_t)g->scratch->len;
    return KF_OK;
}

/* Pads short text with words up to min_length and cuts it to the column's length limits. */
static int fit_length(const kf_sim_column *c, const kf_sim_coltype *t, kf_sim_genctx *g)
{
    kf_sim_buf *b = g->scratch;
    size_t limit = SIZE_MAX;
    if (t->type == KF_SIM_VARCHAR)
        limit = (size_t)t->length;
    if (c->max_length > 0 && (size_t)c->max_length < limit)
        limit = (size_t)c->max_length;
    int rc = KF_OK;
    while (rc == KF_OK && b->len < (size_t)c->min_length) {
        if (b->len > 0)
            rc = kf_sim_buf_putc(b, ' ');
        if (rc == KF_OK)
            rc = put_word(g, KF_SIM_WORDS_COMMON);
    }
    if (rc == KF_OK && b->len > limit) {
        b->len = limit;
        b->data[limit] = '\0';
    }
    return rc;
}

/* Appends the letters and digits of a word of list, lowercased. */
static int put_lower_word(kf_sim_genctx *g, kf_sim_wordlist list)
{
    size_t len;
    const char *w = pick_word(g, list, &len);
    kf_sim_buf *b = g->scratch;
    if (kf_sim_buf_reserve(b, len) != KF_OK)
        return KF_ERR_NOMEM;
    for (size_t i = 0; i < len; i++)
        if (isalnum((unsigned char)w[i]))
            b->data[b->len++] = (char)tolower((unsigned char)w[i]);
    b->data[b->len] = '\0';
    return KF_OK;
}

static int compose_email(kf_sim_genctx *g)
{
    kf_sim_buf *b = g->scratch;
    int rc = put_lower_word(g, KF_SIM_WORDS_FIRST_NAME);
    if (rc == KF_OK)
        rc = kf_sim_buf_putc(b, '.');
    if (rc == KF_OK)
        rc = put_lower_word(g, KF_SIM_WORDS_LAST_NAME);
    if (rc == KF_OK && kf_sim_rng_chance(g->rng, 0.6))
        rc = kf_sim_buf_putu(b, (uint64_t)kf_sim_rng_range(g->rng, 1, 9999));
    if (rc == KF_OK)
        rc = kf_sim_buf_putc(b, '@');
    if (rc == KF_OK)
        rc = put_word(g, KF_SIM_WORDS_EMAIL_DOMAIN);
    return rc;
}

/* A word of list a, a space and a word of list b, drawn in that order. */
static int two_words(kf_sim_genctx *g, kf_sim_wordlist a, kf_sim_wordlist b)
{
    int rc = put_word(g, a);
    if (rc == KF_OK)
        rc = kf_sim_buf_putc(g->scratch, ' ');
    if (rc == KF_OK)
        rc = put_word(g, b);
    return rc;
}

static int compose_sentence(kf_sim_genctx *g, int min_words, int max_words)
{
    kf_sim_buf *b = g->scratch;
    int n = (int)kf_sim_rng_range(g->rng, min_words, max_words);
    int rc = KF_OK;
    for (int i = 0; i < n && rc == KF_OK; i++) {
        size_t len;
        const char *w = pick_word(g, KF_SIM_WORDS_COMMON, &len);
        if (i > 0)
            rc = kf_sim_buf_putc(b, ' ');
        if (rc == KF_OK && i == 0 && len > 0) {
            rc = kf_sim_buf_putc(b, (char)toupper((unsigned char)w[0]));
            w++;
            len--;
        }
        if (rc == KF_OK)
            rc = kf_sim_buf_append(b, w, len);
    }
    if (rc == KF_OK)
        rc = kf_sim_buf_putc(b, '.');
    return rc;
}

static int compose_pattern(kf_sim_genctx *g, const char *pattern)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    kf_sim_buf *b = g->scratch;
    for (const char *p = pattern; *p; p++) {
        char ch;
        switch (*p) {
        case '#':
            ch = (char)('0' + kf_sim_rng_below(g->rng, 10));
            break;
        case '?':
            ch = (char)('A' + kf_sim_rng_below(g->rng, 26));
            break;
        case '@':
            ch = (char)('a' + kf_sim_rng_below(g->rng, 26));
            break;
        case '*':
            ch = alnum[kf_sim_rng_below(g->rng, sizeof(alnum) - 1)];
            break;
        case '\\':
            ch = *++p; /* the spec parser rejects a trailing lone backslash */
            break;
        default:
            ch = *p;
            break;
        }
        if (kf_sim_buf_putc(b, ch) != KF_OK)
            return KF_ERR_NOMEM;
    }
    return KF_OK;
}

static int gen_uuid(kf_sim_genctx *g, kf_sim_cell *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char bytes[16];
    uint64_t a = kf_sim_rng_next(g->rng), b = kf_sim_rng_next(g->rng);
    for (int i = 0; i < 8; i++) {
        bytes[i] = (unsigned char)(a >> (8 * i));
        bytes[8 + i] = (unsigned char)(b >> (8 * i));
    }
    bytes[6] = (unsigned char)((bytes[6] & 0x0f) | 0x40); /* version 4 */
    bytes[8] = (unsigned char)((bytes[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char *s = kf_sim_arena_alloc(g->arena, 37);
    if (!s)
        return KF_ERR_NOMEM;
    size_t k = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            s[k++] = '-';
        s[k++] = hex[bytes[i] >> 4];
        s[k++] = hex[bytes[i] & 15];
    }
    s[k] = '\0';
    out->kind = KF_SIM_CELL_STRING;
    out->s = s;
    out->len = 36;
    return KF_OK;
}

static double pow10i(int n)
{
    double v = 1;
    while (n-- > 0)
        v *= 10;
    return v;
}

/* Keeps an integer cell value inside the column's constraints and type. */
static int64_t clamp_int(const kf_sim_column *c, const kf_sim_coltype *t, int64_t v)
{
    int64_t lo, hi;
    kf_sim_type_int_bounds(t, &lo, &hi);
    if (c->has_min && c->min.kind == KF_SIM_CELL_INT && c->min.i > lo)
        lo = c->min.i;
    if (c->has_max && c->max.kind == KF_SIM_CELL_INT && c->max.i < hi)
        hi = c->max.i;
    return v < lo ? lo : v > hi ? hi : v;
}

static int gen_normal(const kf_sim_column *c, const kf_sim_coltype *t, kf_sim_genctx *g,
                      kf_sim_cell *out)
{
    const kf_sim_gen *gen = &c->gen;
    double scale = t->type == KF_SIM_DECIMAL ? pow10i(t->scale) : 1.0;
    double x = 0;
    /* Redraw a few times when outside min/max, so bounds do not pile values onto the edge. */
    for (int attempt = 0; attempt < 16; attempt++) {
        x = kf_sim_rng_normal(g->rng, gen->mean, gen->stddev);
        bool below, above;
        if (kf_sim_type_cell_kind(t->type) == KF_SIM_CELL_DOUBLE) {
            below = c->has_min && x < c->min.d;
            above = c->has_max && x > c->max.d;
        } else {
            double xi = nearbyint(x * scale);
            below = c->has_min && xi < (double)c->min.i;
            above = c->has_max && xi > (double)c->max.i;
        }
        if (!below && !above)
            break;
    }
    if (kf_sim_type_cell_kind(t->type) == KF_SIM_CELL_DOUBLE) {
        if (c->has_min && x < c->min.d)
            x = c->min.d;
        if (c->has_max && x > c->max.d)
            x = c->max.d;
        out->kind = KF_SIM_CELL_DOUBLE;
        out->d = t->type == KF_SIM_FLOAT ? (double)(float)x : x;
        return KF_OK;
    }
    double xi = nearbyint(x * scale);
    int64_t v = xi >= 9.2e18 ? INT64_MAX : xi <= -9.2e18 ? INT64_MIN : (int64_t)xi;
    out->kind = KF_SIM_CELL_INT;
    out->i = clamp_int(c, t, v);
    return KF_OK;
}

static int gen_json(const kf_sim_column *c, kf_sim_genctx *g, kf_sim_cell *out)
{
    const kf_sim_gen *gen = &c->gen;
    kf_sim_cell *cells = kf_sim_arena_alloc(g->arena, gen->nfields * sizeof(*cells));
    if (!cells)
        return KF_ERR_NOMEM;
    /* Every field first (nested objects use the scratch buffer and finish), then compose. */
    for (size_t i = 0; i < gen->nfields; i++) {
        int rc = kf_sim_gen_cell(&gen->fields[i], &gen->fields[i].type, NULL, g, &cells[i]);
        if (rc != KF_OK)
            return rc;
    }
    kf_sim_buf *b = g->scratch;
    kf_sim_buf_clear(b);
    int rc = kf_sim_buf_putc(b, '{');
    for (size_t i = 0; i < gen->nfields && rc == KF_OK; i++) {
        if (i > 0)
            rc = kf_sim_buf_putc(b, ',');
        if (rc == KF_OK)
            rc = kf_sim_json_string(b, gen->fields[i].name, strlen(gen->fields[i].name));
        if (rc == KF_OK)
            rc = kf_sim_buf_putc(b, ':');
        if (rc == KF_OK)
            rc = kf_sim_cell_write_json(b, &gen->fields[i].type, &cells[i]);
    }
    if (rc == KF_OK)
        rc = kf_sim_buf_putc(b, '}');
    if (rc == KF_OK)
        rc = scratch_to_cell(g, out);
    return rc;
}

static int gen_text(const kf_sim_column *c, const kf_sim_coltype *t, kf_sim_genctx *g,
                    kf_sim_cell *out)
{
    kf_sim_buf *b = g->scratch;
    kf_sim_buf_clear(b);
    int rc = KF_OK;
    switch (c->gen.kind) {
    case KF_SIM_GEN_FIRST_NAME:
        rc = put_word(g, KF_SIM_WORDS_FIRST_NAME);
        break;
    case KF_SIM_GEN_LAST_NAME:
        rc = put_word(g, KF_SIM_WORDS_LAST_NAME);
        break;
    case KF_SIM_GEN_NAME:
        rc = two_words(g, KF_SIM_WORDS_FIRST_NAME, KF_SIM_WORDS_LAST_NAME);
        break;
    case KF_SIM_GEN_EMAIL:
        rc = compose_email(g);
        break;
    case KF_SIM_GEN_CITY:
        rc = put_word(g, KF_SIM_WORDS_CITY);
        break;
    case KF_SIM_GEN_COUNTRY:
        rc = put_word(g, KF_SIM_WORDS_COUNTRY);
        break;
    case KF_SIM_GEN_PRODUCT:
        rc = two_words(g, KF_SIM_WORDS_PRODUCT_ADJECTIVE, KF_SIM_WORDS_PRODUCT_NOUN);
        break;
    case KF_SIM_GEN_COMPANY:
        rc = put_word(g, KF_SIM_WORDS_COMPANY);
        break;
    case KF_SIM_GEN_WORD:
        rc = put_word(g, KF_SIM_WORDS_COMMON);
        break;
    case KF_SIM_GEN_SENTENCE:
        rc = compose_sentence(g, c->gen.min_words, c->gen.max_words);
        break;
    case KF_SIM_GEN_PATTERN:
        rc = compose_pattern(g, c->gen.pattern);
        break;
    default:
        return KF_ERR_INVALID;
    }
    if (rc == KF_OK && kf_sim_type_is_string(t->type))
        rc = fit_length(c, t, g);
    if (rc == KF_OK)
        rc = scratch_to_cell(g, out);
    return rc;
}

int kf_sim_gen_value(const kf_sim_column *c, const kf_sim_coltype *t, uint64_t *seq,
                     kf_sim_genctx *g, kf_sim_cell *out)
{
    const kf_sim_gen *gen = &c->gen;
    memset(out, 0, sizeof(*out));
    switch (gen->kind) {
    case KF_SIM_GEN_SEQUENCE: {
        int64_t lo, hi, v;
        kf_sim_type_int_bounds(t, &lo, &hi);
        if (!seq || *seq > (uint64_t)INT64_MAX ||
            __builtin_mul_overflow((int64_t)*seq, gen->step, &v) ||
            __builtin_add_overflow(v, gen->start, &v) || v < lo || v > hi)
            return KF_ERR_FULL;
        out->kind = KF_SIM_CELL_INT;
        out->i = v;
        (*seq)++;
        return KF_OK;
    }
    case KF_SIM_GEN_UNIFORM:
        if (gen->lo.kind == KF_SIM_CELL_DOUBLE) {
            double x = gen->lo.d + kf_sim_rng_double(g->rng) * (gen->hi.d - gen->lo.d);
            out->kind = KF_SIM_CELL_DOUBLE;
            out->d = t->type == KF_SIM_FLOAT ? (double)(float)x : x;
            return KF_OK;
        }
        out->kind = KF_SIM_CELL_INT;
        out->i = kf_sim_rng_range(g->rng, gen->lo.i, gen->hi.i);
        return KF_OK;
    case KF_SIM_GEN_TIME_RANGE:
        out->kind = KF_SIM_CELL_INT;
        out->i = kf_sim_rng_range(g->rng, gen->lo.i, gen->hi.i);
        return KF_OK;
    case KF_SIM_GEN_NORMAL:
        return gen_normal(c, t, g, out);
    case KF_SIM_GEN_CHOICE: {
        double u = kf_sim_rng_double(g->rng);
        size_t lo = 0, hi = gen->nvalues - 1;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (gen->cumulative[mid] > u)
                hi = mid;
            else
                lo = mid + 1;
        }
        *out = gen->values[lo];
        return KF_OK;
    }
    case KF_SIM_GEN_BOOL:
        out->kind = KF_SIM_CELL_BOOL;
        out->b = kf_sim_rng_chance(g->rng, gen->ratio);
        return KF_OK;
    case KF_SIM_GEN_NOW: {
        out->kind = KF_SIM_CELL_INT;
        int64_t day_us = 86400LL * 1000000;
        out->i = t->type == KF_SIM_DATE
                     ? (g->now_us >= 0 ? g->now_us / day_us : -((-g->now_us + day_us - 1) / day_us))
                     : g->now_us;
        return KF_OK;
    }
    case KF_SIM_GEN_UUID:
        return gen_uuid(g, out);
    case KF_SIM_GEN_JSON:
        return gen_json(c, g, out);
    default:
        return gen_text(c, t, g, out);
    }
}

int kf_sim_gen_cell(const kf_sim_column *c, const kf_sim_coltype *t, uint64_t *seq,
                    kf_sim_genctx *g, kf_sim_cell *out)
{
    if (c->null_ratio > 0 && kf_sim_rng_chance(g->rng, c->null_ratio)) {
        memset(out, 0, sizeof(*out));
        out->kind = KF_SIM_CELL_NULL;
        return KF_OK;
    }
    return kf_sim_gen_value(c, t, seq, g, out);
}

/* ---- error injection ---- */

static bool int_room(const kf_sim_column *c, const kf_sim_coltype *t, bool *below, bool *above)
{
    int64_t lo, hi;
    kf_sim_type_int_bounds(t, &lo, &hi);
    *below = c->has_min && c->min.i > lo;
    *above = c->has_max && c->max.i < hi;
    return *below || *above;
}

bool kf_sim_gen_can_break(const kf_sim_column *c, const kf_sim_coltype *t, kf_sim_check check)
{
    if (c->is_key || c->is_update_column)
        return false;
    if (c->unique && check != KF_SIM_CHECK_NOT_NULL)
        return false;
    bool below, above;
    switch (check) {
    case KF_SIM_CHECK_NOT_NULL:
        return !c->nullable;
    case KF_SIM_CHECK_RANGE:
        if (!c->has_min && !c->has_max)
            return false;
        if (kf_sim_type_cell_kind(t->type) == KF_SIM_CELL_DOUBLE)
            return true;
        return int_room(c, t, &below, &above);
    case KF_SIM_CHECK_ALLOWED:
        if (c->nallowed == 0 || t->type == KF_SIM_JSON)
            return false;
        if (t->type == KF_SIM_BOOL) {
            bool has_true = false, has_false = false;
            for (size_t i = 0; i < c->nallowed; i++) {
                has_true |= c->allowed[i].b;
                has_false |= !c->allowed[i].b;
            }
            return !(has_true && has_false);
        }
        return true;
    case KF_SIM_CHECK_EMAIL:
        return c->gen.kind == KF_SIM_GEN_EMAIL;
    case KF_SIM_CHECK_LENGTH:
        if (c->max_length <= 0)
            return false;
        return t->type == KF_SIM_TEXT || c->max_length < t->length;
    default:
        return false;
    }
}

static bool in_allowed(const kf_sim_column *c, const kf_sim_cell *v)
{
    for (size_t i = 0; i < c->nallowed; i++)
        if (kf_sim_cell_equal(&c->allowed[i], v))
            return true;
    return false;
}

static int invalid_range(const kf_sim_column *c, const kf_sim_coltype *t, kf_sim_genctx *g,
                         kf_sim_cell *out)
{
    if (kf_sim_type_cell_kind(t->type) == KF_SIM_CELL_DOUBLE) {
        bool up = c->has_max && (!c->has_min || kf_sim_rng_chance(g->rng, 0.5));
        double margin = 1.0 + kf_sim_rng_double(g->rng) * 100.0;
        double edge = up ? c->max.d : c->min.d;
        double x = up ? edge + margin + fabs(edge) * 0.01 : edge - margin - fabs(edge) * 0.01;
        out->kind = KF_SIM_CELL_DOUBLE;
        out->d = t->type == KF_SIM_FLOAT ? (double)(float)x : x;
        return KF_OK;
    }
    bool below, above;
    int_room(c, t, &below, &above);
    bool up = above && (!below || kf_sim_rng_chance(g->rng, 0.5));
    int64_t lo, hi;
    kf_sim_type_int_bounds(t, &lo, &hi);
    int64_t step = 1 + (int64_t)kf_sim_rng_below(g->rng, 100);
    out->kind = KF_SIM_CELL_INT;
    /* The distance to the type's edge may exceed int64 once widened to bigint: unsigned. */
    if (up)
        out->i = (uint64_t)hi - (uint64_t)c->max.i < (uint64_t)step ? hi : c->max.i + step;
    else
        out->i = (uint64_t)c->min.i - (uint64_t)lo < (uint64_t)step ? lo : c->min.i - step;
    return KF_OK;
}

static int invalid_allowed(const kf_sim_column *c, const kf_sim_coltype *t, kf_sim_genctx *g,
                           kf_sim_cell *out)
{
    switch (kf_sim_type_cell_kind(t->type)) {
    case KF_SIM_CELL_BOOL:
        out->kind = KF_SIM_CELL_BOOL;
        out->b = !c->allowed[0].b;
        return KF_OK;
    case KF_SIM_CELL_DOUBLE: {
        double m = c->allowed[0].d;
        for (size_t i = 1; i < c->nallowed; i++)
            m = c->allowed[i].d > m ? c->allowed[i].d : m;
        out->kind = KF_SIM_CELL_DOUBLE;
        out->d = m + 1.0 + fabs(m);
        return KF_OK;
    }
    case KF_SIM_CELL_INT: {
        int64_t lo, hi, mx = c->allowed[0].i, mn = c->allowed[0].i;
        kf_sim_type_int_bounds(t, &lo, &hi);
        for (size_t i = 1; i < c->nallowed; i++) {
            mx = c->allowed[i].i > mx ? c->allowed[i].i : mx;
            mn = c->allowed[i].i < mn ? c->allowed[i].i : mn;
        }
        out->kind = KF_SIM_CELL_INT;
        out->i = mx < hi ? mx + 1 : mn - 1;
        return KF_OK;
    }
    default: {
        /* A random lowercase token; redraw in the unlikely case it is an allowed value. */
        kf_sim_buf *b = g->scratch;
        do {
            kf_sim_buf_clear(b);
            for (int i = 0; i < 10; i++)
                if (kf_sim_buf_putc(b, (char)('a' + kf_sim_rng_below(g->rng, 26))) != KF_OK)
                    return KF_ERR_NOMEM;
            size_t limit = t->type == KF_SIM_VARCHAR ? (size_t)t->length : b->len;
            if (b->len > limit) {
                b->len = limit;
                b->data[limit] = '\0';
            }
            int rc = scratch_to_cell(g, out);
            if (rc != KF_OK)
                return rc;
        } while (in_allowed(c, out));
        return KF_OK;
    }
    }
}

static int invalid_email(kf_sim_genctx *g, kf_sim_cell *out)
{
    kf_sim_buf *b = g->scratch;
    kf_sim_buf_clear(b);
    if (compose_email(g) != KF_OK)
        return KF_ERR_NOMEM;
    char *at = strchr(b->data, '@');
    switch (kf_sim_rng_below(g->rng, 3)) {
    case 0: /* no @ at all */
        *at = '.';
        break;
    case 1: /* nothing after the @ */
        b->len = (size_t)(at - b->data) + 1;
        b->data[b->len] = '\0';
        break;
    default: { /* two @ signs */
        size_t pos = (size_t)(at - b->data);
        if (kf_sim_buf_putc(b, '@') != KF_OK)
            return KF_ERR_NOMEM;
        memmove(b->data + pos + 1, b->data + pos, b->len - pos - 1);
        b->data[pos] = '@';
        break;
    }
    }
    return scratch_to_cell(g, out);
}

static int invalid_length(const kf_sim_column *c, const kf_sim_coltype *t, kf_sim_genctx *g,
                          kf_sim_cell *out)
{
    size_t want = (size_t)c->max_length + 1 + (size_t)kf_sim_rng_below(g->rng, 8);
    if (t->type == KF_SIM_VARCHAR && want > (size_t)t->length)
        want = (size_t)t->length;
    kf_sim_buf *b = g->scratch;
    kf_sim_buf_clear(b);
    while (b->len < want) {
        if (b->len > 0 && kf_sim_buf_putc(b, ' ') != KF_OK)
            return KF_ERR_NOMEM;
        if (put_word(g, KF_SIM_WORDS_COMMON) != KF_OK)
            return KF_ERR_NOMEM;
    }
    b->len = want;
    b->data[want] = '\0';
    return scratch_to_cell(g, out);
}

int kf_sim_gen_invalid(const kf_sim_column *c, const kf_sim_coltype *t, kf_sim_check check,
                       kf_sim_genctx *g, kf_sim_cell *out)
{
    memset(out, 0, sizeof(*out));
    switch (check) {
    case KF_SIM_CHECK_NOT_NULL:
        out->kind = KF_SIM_CELL_NULL;
        return KF_OK;
    case KF_SIM_CHECK_RANGE:
        return invalid_range(c, t, g, out);
    case KF_SIM_CHECK_ALLOWED:
        return invalid_allowed(c, t, g, out);
    case KF_SIM_CHECK_EMAIL:
        return invalid_email(g, out);
    case KF_SIM_CHECK_LENGTH:
        return invalid_length(c, t, g, out);
    default:
        return KF_ERR_INVALID;
    }
}
