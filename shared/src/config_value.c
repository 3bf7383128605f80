/* Typed configuration values: parsing text into ints, durations, enums, lists..., range
 * checks, and moving parsed values into the program's config struct. */
#include "config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FIELD(store, k, type) ((type *)(void *)((char *)(store) + (k)->offset))

static const struct {
    const char *unit;
    int64_t ms;
} duration_units[] = {
    /* longest unit names first so "ms" is not read as "m" */
    {"ms", 1}, {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000},
};

int kf_config_parse_duration(const char *s, int64_t *out_ms)
{
    if (!s || !*s)
        return KF_ERR_INVALID;
    const char *p = s;
    while (*p && isdigit((unsigned char)*p))
        p++;
    if (!*p) { /* a bare integer: milliseconds */
        errno = 0;
        char *end;
        long long v = strtoll(s, &end, 10);
        if (errno || *end)
            return KF_ERR_INVALID;
        *out_ms = v;
        return KF_OK;
    }
    int64_t total = 0;
    p = s;
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return KF_ERR_INVALID;
        int64_t whole = 0;
        while (isdigit((unsigned char)*p)) {
            if (__builtin_mul_overflow(whole, 10, &whole) ||
                __builtin_add_overflow(whole, *p - '0', &whole))
                return KF_ERR_INVALID;
            p++;
        }
        int64_t frac = 0, scale = 1;
        if (*p == '.') {
            p++;
            if (!isdigit((unsigned char)*p))
                return KF_ERR_INVALID;
            while (isdigit((unsigned char)*p)) {
                if (scale >= 1000000000)
                    return KF_ERR_INVALID; /* more precision than milliseconds can hold */
                frac = frac * 10 + (*p - '0');
                scale *= 10;
                p++;
            }
        }
        int64_t unit = 0;
        for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++) {
            size_t n = strlen(duration_units[i].unit);
            if (strncmp(p, duration_units[i].unit, n) == 0) {
                unit = duration_units[i].ms;
                p += n;
                break;
            }
        }
        if (!unit)
            return KF_ERR_INVALID;
        if ((frac * unit) % scale != 0)
            return KF_ERR_INVALID; /* not a whole number of milliseconds */
        int64_t part;
        if (__builtin_mul_overflow(whole, unit, &part) ||
            __builtin_add_overflow(part, frac * unit / scale, &part) ||
            __builtin_add_overflow(total, part, &total))
            return KF_ERR_INVALID;
    }
    *out_ms = total;
    return KF_OK;
}

void kfc_format_duration(int64_t ms, char *buf, size_t size)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } parts[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    if (ms <= 0) {
        snprintf(buf, size, "%lldms", (long long)ms);
        return;
    }
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && len < size; i++) {
        if (ms >= parts[i].ms) {
            int n = snprintf(buf + len, size - len, "%lld%s", (long long)(ms / parts[i].ms),
                             parts[i].unit);
            if (n < 0)
                return;
            len += (size_t)n;
            ms %= parts[i].ms;
        }
    }
}

const char *kfc_type_name(kf_config_type t)
{
    switch (t) {
    case KF_CONFIG_STRING:
        return "string";
    case KF_CONFIG_INT:
        return "int";
    case KF_CONFIG_INT64:
        return "int64";
    case KF_CONFIG_DOUBLE:
        return "double";
    case KF_CONFIG_BOOL:
        return "bool";
    case KF_CONFIG_DURATION_MS:
        return "duration";
    case KF_CONFIG_ENUM:
        return "enum";
    case KF_CONFIG_LIST:
        return "list";
    }
    return "unknown";
}

const char *kfc_type_metavar(kf_config_type t)
{
    switch (t) {
    case KF_CONFIG_STRING:
        return "STRING";
    case KF_CONFIG_INT:
    case KF_CONFIG_INT64:
        return "INT";
    case KF_CONFIG_DOUBLE:
        return "NUMBER";
    case KF_CONFIG_BOOL:
        return "BOOL";
    case KF_CONFIG_DURATION_MS:
        return "DURATION";
    case KF_CONFIG_ENUM:
        return "VALUE";
    case KF_CONFIG_LIST:
        return "LIST";
    }
    return "VALUE";
}

static bool has_range(const kf_config_key *k)
{
    return k->min != k->max && (k->type == KF_CONFIG_INT || k->type == KF_CONFIG_INT64 ||
                                k->type == KF_CONFIG_DOUBLE || k->type == KF_CONFIG_DURATION_MS);
}

void kfc_format_range(const kf_config_key *k, char *buf, size_t size)
{
    buf[0] = '\0';
    if (!has_range(k))
        return;
    if (k->type == KF_CONFIG_DURATION_MS) {
        char lo[32], hi[32];
        kfc_format_duration((int64_t)k->min, lo, sizeof(lo));
        kfc_format_duration((int64_t)k->max, hi, sizeof(hi));
        snprintf(buf, size, "%s..%s", lo, hi);
    } else {
        snprintf(buf, size, "%.15g..%.15g", k->min, k->max);
    }
}

static int out_of_range(const kf_config_key *k, long double v, char *why, size_t whylen)
{
    if (!has_range(k) || (v >= (long double)k->min && v <= (long double)k->max))
        return KF_OK;
    char range[80];
    kfc_format_range(k, range, sizeof(range));
    snprintf(why, whylen, "out of range %s", range);
    return KF_ERR_INVALID;
}

static int parse_int64(const char *text, int64_t *out)
{
    if (!*text || isspace((unsigned char)*text))
        return KF_ERR_INVALID;
    errno = 0;
    char *end;
    long long v = strtoll(text, &end, 10);
    if (errno || *end)
        return KF_ERR_INVALID;
    *out = v;
    return KF_OK;
}

static int parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return KF_OK;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return KF_OK;
        }
    }
    return KF_ERR_INVALID;
}

static void list_free(kf_strlist *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

/* Splits "a, b,c" into a list; "" (or blanks) is the empty list, an empty item is an error. */
static int split_list(const char *text, kf_strlist *out, char *why, size_t whylen)
{
    out->items = NULL;
    out->count = 0;
    const char *p = text;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p)
        return KF_OK;
    size_t n = 1;
    for (const char *q = text; *q; q++)
        n += (*q == ',');
    out->items = calloc(n, sizeof(char *));
    if (!out->items)
        return KF_ERR_NOMEM;
    p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *stop = end;
        while (stop > p && (stop[-1] == ' ' || stop[-1] == '\t'))
            stop--;
        if (stop == p) {
            snprintf(why, whylen, "empty item in comma-separated list");
            list_free(out);
            return KF_ERR_INVALID;
        }
        out->items[out->count] = strndup(p, (size_t)(stop - p));
        if (!out->items[out->count]) {
            list_free(out);
            return KF_ERR_NOMEM;
        }
        out->count++;
        if (!comma)
            break;
        p = comma + 1;
    }
    return KF_OK;
}

static void expected(const kf_config_key *k, char *why, size_t whylen)
{
    switch (k->type) {
    case KF_CONFIG_INT:
    case KF_CONFIG_INT64:
        snprintf(why, whylen, "expected an integer");
        break;
    case KF_CONFIG_DOUBLE:
        snprintf(why, whylen, "expected a number");
        break;
    case KF_CONFIG_BOOL:
        snprintf(why, whylen, "expected true or false");
        break;
    case KF_CONFIG_DURATION_MS:
        snprintf(why, whylen, "expected a duration such as 500ms, 1s, 2m or 1h30m");
        break;
    case KF_CONFIG_ENUM: {
        size_t len = (size_t)snprintf(why, whylen, "expected one of");
        for (size_t i = 0; k->enum_values && k->enum_values[i] && len < whylen; i++)
            len +=
                (size_t)snprintf(why + len, whylen - len, "%s %s", i ? "," : "", k->enum_values[i]);
        break;
    }
    case KF_CONFIG_STRING:
    case KF_CONFIG_LIST:
        snprintf(why, whylen, "expected a %s", kfc_type_name(k->type));
        break;
    }
}

int kfc_parse(const kf_config_key *k, const char *text, kfc_value *v, char *why, size_t whylen)
{
    memset(v, 0, sizeof(*v));
    if (!text) {
        if (k->type == KF_CONFIG_STRING || k->type == KF_CONFIG_LIST)
            return KF_OK; /* null: unset string, empty list */
        expected(k, why, whylen);
        size_t len = strlen(why);
        snprintf(why + len, whylen - len, ", got null");
        return KF_ERR_INVALID;
    }
    int64_t i64;
    switch (k->type) {
    case KF_CONFIG_STRING:
        v->s = strdup(text);
        return v->s ? KF_OK : KF_ERR_NOMEM;
    case KF_CONFIG_INT:
        if (parse_int64(text, &i64) != KF_OK || i64 < INT32_MIN || i64 > INT32_MAX)
            break;
        v->i = (int)i64;
        return out_of_range(k, (long double)i64, why, whylen);
    case KF_CONFIG_INT64:
        if (parse_int64(text, &i64) != KF_OK)
            break;
        v->i64 = i64;
        return out_of_range(k, (long double)i64, why, whylen);
    case KF_CONFIG_DURATION_MS:
        if (kf_config_parse_duration(text, &i64) != KF_OK)
            break;
        v->i64 = i64;
        return out_of_range(k, (long double)i64, why, whylen);
    case KF_CONFIG_DOUBLE: {
        if (!*text || isspace((unsigned char)*text))
            break;
        errno = 0;
        char *end;
        double d = strtod(text, &end);
        if (errno || *end || !isfinite(d))
            break;
        v->d = d;
        return out_of_range(k, d, why, whylen);
    }
    case KF_CONFIG_BOOL:
        if (parse_bool(text, &v->b) != KF_OK)
            break;
        return KF_OK;
    case KF_CONFIG_ENUM:
        for (int i = 0; k->enum_values && k->enum_values[i]; i++) {
            if (strcmp(text, k->enum_values[i]) == 0) {
                v->i = i;
                return KF_OK;
            }
        }
        break;
    case KF_CONFIG_LIST:
        return split_list(text, &v->list, why, whylen);
    }
    expected(k, why, whylen);
    return KF_ERR_INVALID;
}

int kfc_parse_items(const kf_config_key *k, const char *const *items, size_t n, kfc_value *v,
                    char *why, size_t whylen)
{
    memset(v, 0, sizeof(*v));
    if (k->type != KF_CONFIG_LIST) {
        expected(k, why, whylen);
        size_t len = strlen(why);
        snprintf(why + len, whylen - len, ", got a sequence");
        return KF_ERR_INVALID;
    }
    if (n == 0)
        return KF_OK;
    v->list.items = calloc(n, sizeof(char *));
    if (!v->list.items)
        return KF_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        v->list.items[i] = strdup(items[i]);
        if (!v->list.items[i]) {
            list_free(&v->list);
            return KF_ERR_NOMEM;
        }
        v->list.count++;
    }
    return KF_OK;
}

void kfc_value_free(const kf_config_key *k, kfc_value *v)
{
    if (k->type == KF_CONFIG_STRING) {
        free(v->s);
        v->s = NULL;
    } else if (k->type == KF_CONFIG_LIST) {
        list_free(&v->list);
    }
}

void kfc_field_clear(void *store, const kf_config_key *k)
{
    if (k->type == KF_CONFIG_STRING) {
        char **s = FIELD(store, k, char *);
        free(*s);
        *s = NULL;
    } else if (k->type == KF_CONFIG_LIST) {
        list_free(FIELD(store, k, kf_strlist));
    }
}

void kfc_value_store(void *store, const kf_config_key *k, kfc_value *v)
{
    kfc_field_clear(store, k);
    switch (k->type) {
    case KF_CONFIG_STRING:
        *FIELD(store, k, char *) = v->s;
        v->s = NULL;
        break;
    case KF_CONFIG_INT:
    case KF_CONFIG_ENUM:
        *FIELD(store, k, int) = v->i;
        break;
    case KF_CONFIG_INT64:
    case KF_CONFIG_DURATION_MS:
        *FIELD(store, k, int64_t) = v->i64;
        break;
    case KF_CONFIG_DOUBLE:
        *FIELD(store, k, double) = v->d;
        break;
    case KF_CONFIG_BOOL:
        *FIELD(store, k, bool) = v->b;
        break;
    case KF_CONFIG_LIST:
        *FIELD(store, k, kf_strlist) = v->list;
        v->list.items = NULL;
        v->list.count = 0;
        break;
    }
}

int kfc_list_append(void *store, const kf_config_key *k, kfc_value *v)
{
    kf_strlist *l = FIELD(store, k, kf_strlist);
    if (v->list.count == 0)
        return KF_OK;
    char **grown = realloc(l->items, (l->count + v->list.count) * sizeof(char *));
    if (!grown)
        return KF_ERR_NOMEM;
    l->items = grown;
    memcpy(l->items + l->count, v->list.items, v->list.count * sizeof(char *));
    l->count += v->list.count;
    free(v->list.items);
    v->list.items = NULL;
    v->list.count = 0;
    return KF_OK;
}

void kfc_yaml_quote(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(out, "\\x%02x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

/* Levenshtein distance, capped: names longer than 64 are never suggested. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *kfc_suggest(const kf_config_spec *spec, const char *name)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (const kf_config_key *k = spec->keys; k->name; k++) {
        size_t d = edit_distance(name, k->name);
        if (d < best_d) {
            best_d = d;
            best = k->name;
        }
    }
    size_t limit = strlen(name) / 4 + 1; /* about one typo per four characters */
    return best_d <= limit ? best : NULL;
}
