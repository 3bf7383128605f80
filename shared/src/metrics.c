/* Metric registry and Prometheus text exposition (format 0.0.4): families with fixed label
 * names, child series recorded with C11 atomics, callback series evaluated at scrape time. */
#include "kfleet/metrics.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Series are recorded from many threads: give each its own cache line(s), so two hot series
 * never share one. */
#define SERIES_ALIGN 64

typedef enum family_kind {
    FAMILY_COUNTER,
    FAMILY_GAUGE,
    FAMILY_HISTOGRAM,
} family_kind;

/* What every series starts with; the kind-specific struct embeds it first. */
typedef struct series_head {
    struct series_head *next;
    const struct family *fam; /* histogram series read its bucket bounds here */
    char **values;            /* the family's nlabels label values, copied */
    char *labels;             /* pre-rendered `a="x",b="y"` including const labels; "" if none */
    kf_metrics_value_fn fn;   /* non-NULL: value computed at scrape time */
    void *ctx;
} series_head;

struct kf_counter_series {
    series_head head;
    _Atomic uint64_t value;
};

struct kf_gauge_series {
    series_head head;
    _Atomic uint64_t bits; /* the double's bit pattern */
};

struct kf_histogram_series {
    series_head head;
    _Atomic uint64_t sum_bits;
    _Atomic uint64_t buckets[]; /* nbounds + 1 per-bucket (not cumulative) counts; last +Inf */
};

typedef struct family {
    struct family *next;
    kf_metrics *registry;
    family_kind kind;
    char *name;
    char *help;
    size_t nlabels;
    char **label_names;
    double *bounds; /* histogram upper bounds, without +Inf */
    size_t nbounds;
    series_head *first;
    series_head **tail;
} family;

/* Public family handles are the generic family; the wrappers keep the handle types distinct. */
struct kf_counter {
    family fam;
};
struct kf_gauge {
    family fam;
};
struct kf_histogram {
    family fam;
};

struct kf_metrics {
    pthread_mutex_t lock;
    family *first;
    family **tail;
    size_t nconst;
    char **const_names;
    char **const_values;
    double process_start; /* process_start_time_seconds, read once at registration */
};

static const double default_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

/* ---- small helpers --------------------------------------------------------------------- */

static uint64_t dbl_bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    return u;
}

static double bits_dbl(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof(v));
    return v;
}

static void free_strv(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Copies n strings; NULL on allocation failure (nothing leaked). */
static char **dup_strv(const char *const *src, size_t n)
{
    char **v = calloc(n ? n : 1, sizeof(*v));
    if (!v)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        v[i] = strdup(src[i]);
        if (!v[i]) {
            free_strv(v, i);
            return NULL;
        }
    }
    return v;
}

static bool valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        size_t extra;
        uint32_t cp;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            extra = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            extra = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (size_t i = 1; i <= extra; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        /* Reject overlong forms, surrogates and code points past U+10FFFF. */
        if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
            (extra == 3 && cp < 0x10000) || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return false;
        p += extra + 1;
    }
    return true;
}

/* Metric and label names: [a-z_][a-z0-9_]*, the snake_case subset of the Prometheus grammar
 * that promtool's lint also accepts (no camelCase, no colons: those are for recording rules). */
static bool valid_name(const char *s)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || c == '_' || (p != s && c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* ---- growable output buffer ------------------------------------------------------------ */

typedef struct sbuf {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
} sbuf;

static bool sbuf_reserve(sbuf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    b->data[b->len] = '\0';
    return true;
}

static void sbuf_put(sbuf *b, const char *s, size_t n)
{
    if (!sbuf_reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void sbuf_puts(sbuf *b, const char *s)
{
    sbuf_put(b, s, strlen(s));
}

static void sbuf_putc(sbuf *b, char c)
{
    sbuf_put(b, &c, 1);
}

/* Escapes for a label value (escape_quote) or a HELP text: backslash and newline always,
 * the double quote only inside label values, as the format requires. */
static void sbuf_escaped(sbuf *b, const char *s, bool escape_quote)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\\')
            sbuf_put(b, "\\\\", 2);
        else if (*p == '\n')
            sbuf_put(b, "\\n", 2);
        else if (*p == '"' && escape_quote)
            sbuf_put(b, "\\\"", 2);
        else
            sbuf_putc(b, *p);
    }
}

/* Shortest decimal that reads back as the same double, or NaN / +Inf / -Inf. Plain notation
 * between 1e-5 and 1e21 (so counts and sizes read as integers), exponent notation outside. */
static void format_double(double v, char out[40])
{
    if (isnan(v)) {
        strcpy(out, "NaN");
        return;
    }
    if (isinf(v)) {
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    int digits = 17;
    for (int p = 1; p <= 17; p++) {
        snprintf(out, 40, "%.*e", p - 1, v);
        if (strtod(out, NULL) == v) {
            digits = p;
            break;
        }
    }
    snprintf(out, 40, "%.*e", digits - 1, v);
    int exp = atoi(strchr(out, 'e') + 1);
    if (exp > -5 && exp < 21) {
        int decimals = digits - 1 - exp;
        snprintf(out, 40, "%.*f", decimals > 0 ? decimals : 0, v);
    }
}

/* ---- registry -------------------------------------------------------------------------- */

kf_metrics *kf_metrics_new(kf_error *err)
{
    kf_metrics *m = calloc(1, sizeof(*m));
    if (!m) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate metrics registry");
        return NULL;
    }
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not initialize metrics registry lock");
        goto out_free_registry;
    }
    m->tail = &m->first;
    return m;

out_free_registry:
    free(m);
    return NULL;
}

static void series_free(series_head *s, size_t nvalues)
{
    free_strv(s->values, nvalues);
    free(s->labels);
    free(s);
}

static void family_free(family *f)
{
    series_head *s = f->first;
    while (s) {
        series_head *next = s->next;
        series_free(s, f->nlabels);
        s = next;
    }
    free(f->name);
    free(f->help);
    free_strv(f->label_names, f->nlabels);
    free(f->bounds);
    free(f); /* f is the first member of its kind's wrapper: the same allocation */
}

void kf_metrics_destroy(kf_metrics *m)
{
    if (!m)
        return;
    family *f = m->first;
    while (f) {
        family *next = f->next;
        family_free(f);
        f = next;
    }
    free_strv(m->const_names, m->nconst);
    free_strv(m->const_values, m->nconst);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

int kf_metrics_const_label(kf_metrics *m, const char *name, const char *value, kf_error *err)
{
    if (!valid_name(name) || strncmp(name, "__", 2) == 0 || strcmp(name, "le") == 0)
        return kf_error_set(err, KF_ERR_INVALID, false, "invalid const label name \"%s\"",
                            name ? name : "(null)");
    if (!value || !valid_utf8(value))
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "invalid value for label \"%s\": not UTF-8 text", name);
    int rc = KF_OK;
    pthread_mutex_lock(&m->lock);
    if (m->first) {
        rc = kf_error_set(err, KF_ERR_STATE, false,
                          "cannot add const label \"%s\" after metrics are registered", name);
        goto out_unlock;
    }
    for (size_t i = 0; i < m->nconst; i++) {
        if (strcmp(m->const_names[i], name) == 0) {
            rc = kf_error_set(err, KF_ERR_INVALID, false, "duplicate const label \"%s\"", name);
            goto out_unlock;
        }
    }
    char **names = realloc(m->const_names, (m->nconst + 1) * sizeof(*names));
    if (!names)
        goto out_nomem;
    m->const_names = names;
    char **values = realloc(m->const_values, (m->nconst + 1) * sizeof(*values));
    if (!values)
        goto out_nomem;
    m->const_values = values;
    char *n = strdup(name);
    char *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        goto out_nomem;
    }
    m->const_names[m->nconst] = n;
    m->const_values[m->nconst] = v;
    m->nconst++;
    goto out_unlock;

out_nomem:
    rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate const label \"%s\"", name);
out_unlock:
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* The series names a family renders (histograms add _bucket, _sum, _count). */
static bool family_emits(const family *f, const char *name)
{
    if (strcmp(f->name, name) == 0)
        return true;
    if (f->kind != FAMILY_HISTOGRAM)
        return false;
    size_t n = strlen(f->name);
    if (strncmp(f->name, name, n) != 0)
        return false;
    const char *rest = name + n;
    return strcmp(rest, "_bucket") == 0 || strcmp(rest, "_sum") == 0 || strcmp(rest, "_count") == 0;
}

/* Whether the new family's rendered names would collide with a registered family's. */
static const family *find_clash(const kf_metrics *m, const char *name, family_kind kind)
{
    static const char *const hist_suffixes[] = {"", "_bucket", "_sum", "_count"};
    size_t nsuffix = kind == FAMILY_HISTOGRAM ? 4 : 1;
    char probe[512];
    for (const family *f = m->first; f; f = f->next) {
        for (size_t i = 0; i < nsuffix; i++) {
            snprintf(probe, sizeof(probe), "%s%s", name, hist_suffixes[i]);
            if (family_emits(f, probe))
                return f;
        }
    }
    return NULL;
}

static int check_names(const kf_metrics *m, const char *name, const char *help, family_kind kind,
                       size_t nlabels, const char *const *label_names, bool internal, kf_error *err)
{
    if (!valid_name(name))
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "invalid metric name \"%s\": "
                            "use lowercase letters, digits and underscores",
                            name ? name : "(null)");
    if (strlen(name) > 200)
        return kf_error_set(err, KF_ERR_INVALID, false, "metric name \"%.40s...\" is too long",
                            name);
    if (!internal && strncmp(name, "kfleet_", 7) != 0)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "invalid metric name \"%s\": must start with \"kfleet_\"", name);
    if (kind == FAMILY_COUNTER && !has_suffix(name, "_total"))
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "invalid counter name \"%s\": must end with \"_total\"", name);
    if (kind != FAMILY_COUNTER && has_suffix(name, "_total"))
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "invalid %s name \"%s\": only counters end with \"_total\"",
                            kind == FAMILY_GAUGE ? "gauge" : "histogram", name);
    if (!help || !*help || !valid_utf8(help))
        return kf_error_set(err, KF_ERR_INVALID, false, "metric \"%s\" needs a help text in UTF-8",
                            name);
    if (nlabels > 0 && !label_names)
        return kf_error_set(err, KF_ERR_INVALID, false, "metric \"%s\": label names are NULL",
                            name);
    for (size_t i = 0; i < nlabels; i++) {
        const char *l = label_names[i];
        if (!valid_name(l) || strncmp(l, "__", 2) == 0)
            return kf_error_set(err, KF_ERR_INVALID, false,
                                "metric \"%s\": invalid label name \"%s\": use lowercase letters, "
                                "digits and underscores and do not start with \"__\"",
                                name, l ? l : "(null)");
        if (kind == FAMILY_HISTOGRAM && strcmp(l, "le") == 0)
            return kf_error_set(err, KF_ERR_INVALID, false,
                                "histogram \"%s\" cannot use the reserved label \"le\"", name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(label_names[j], l) == 0)
                return kf_error_set(err, KF_ERR_INVALID, false,
                                    "metric \"%s\": duplicate label name \"%s\"", name, l);
        for (size_t j = 0; j < m->nconst; j++)
            if (strcmp(m->const_names[j], l) == 0)
                return kf_error_set(err, KF_ERR_INVALID, false,
                                    "metric \"%s\": label \"%s\" is already a const label", name,
                                    l);
    }
    const family *clash = find_clash(m, name, kind);
    if (clash)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "metric \"%s\" clashes with registered metric \"%s\"", name,
                            clash->name);
    return KF_OK;
}

static int check_bounds(const char *name, const double *bounds, size_t nbounds, kf_error *err)
{
    if (nbounds > 0 && !bounds)
        return kf_error_set(err, KF_ERR_INVALID, false, "histogram \"%s\": bounds are NULL", name);
    for (size_t i = 0; i < nbounds; i++) {
        if (!isfinite(bounds[i]))
            return kf_error_set(err, KF_ERR_INVALID, false,
                                "histogram \"%s\": bucket bound %zu is not finite", name, i);
        if (i > 0 && !(bounds[i] > bounds[i - 1]))
            return kf_error_set(err, KF_ERR_INVALID, false,
                                "histogram \"%s\": bucket bounds must increase strictly", name);
    }
    return KF_OK;
}

static series_head *series_create(family *f, const char *const *values, kf_error *err);

/* Validates and appends a family; for a family without labels also creates its one series. */
static family *family_register(kf_metrics *m, family_kind kind, const char *name, const char *help,
                               size_t nlabels, const char *const *label_names, const double *bounds,
                               size_t nbounds, bool internal, kf_metrics_value_fn fn, void *ctx,
                               kf_error *err)
{
    if (!m) {
        kf_error_set(err, KF_ERR_INVALID, false, "metrics registry is NULL");
        return NULL;
    }
    if (kind == FAMILY_HISTOGRAM) {
        if (!bounds && nbounds == 0) {
            bounds = default_bounds;
            nbounds = sizeof(default_bounds) / sizeof(default_bounds[0]);
        }
        if (check_bounds(name ? name : "(null)", bounds, nbounds, err) != KF_OK)
            return NULL;
    }

    pthread_mutex_lock(&m->lock);
    family *f = NULL;
    if (check_names(m, name, help, kind, nlabels, label_names, internal, err) != KF_OK)
        goto out_unlock;

    /* Every wrapper is exactly one family; allocate through the right type. */
    switch (kind) {
    case FAMILY_COUNTER: {
        struct kf_counter *w = calloc(1, sizeof(*w));
        f = w ? &w->fam : NULL;
        break;
    }
    case FAMILY_GAUGE: {
        struct kf_gauge *w = calloc(1, sizeof(*w));
        f = w ? &w->fam : NULL;
        break;
    }
    case FAMILY_HISTOGRAM: {
        struct kf_histogram *w = calloc(1, sizeof(*w));
        f = w ? &w->fam : NULL;
        break;
    }
    }
    if (!f)
        goto out_nomem;
    f->registry = m;
    f->kind = kind;
    f->nlabels = nlabels;
    f->tail = &f->first;
    f->name = strdup(name);
    f->help = strdup(help);
    f->label_names = dup_strv(label_names, nlabels);
    if (!f->name || !f->help || !f->label_names)
        goto out_free_family;
    if (kind == FAMILY_HISTOGRAM) {
        f->bounds = malloc(nbounds * sizeof(*f->bounds));
        if (!f->bounds)
            goto out_free_family;
        memcpy(f->bounds, bounds, nbounds * sizeof(*f->bounds));
        f->nbounds = nbounds;
    }
    if (nlabels == 0) {
        series_head *only = series_create(f, NULL, err);
        if (!only)
            goto out_free_family_quiet;
        only->fn = fn;
        only->ctx = ctx;
    }

    *m->tail = f;
    m->tail = &f->next;
    pthread_mutex_unlock(&m->lock);
    return f;

out_free_family:
    kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate metric \"%s\"", name);
out_free_family_quiet:
    family_free(f);
    f = NULL;
    goto out_unlock;
out_nomem:
    kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate metric \"%s\"", name);
out_unlock:
    pthread_mutex_unlock(&m->lock);
    return f;
}

kf_counter *kf_metrics_counter(kf_metrics *m, const char *name, const char *help, size_t nlabels,
                               const char *const *label_names, kf_error *err)
{
    family *f = family_register(m, FAMILY_COUNTER, name, help, nlabels, label_names, NULL, 0, false,
                                NULL, NULL, err);
    return f ? (kf_counter *)f : NULL;
}

kf_gauge *kf_metrics_gauge(kf_metrics *m, const char *name, const char *help, size_t nlabels,
                           const char *const *label_names, kf_error *err)
{
    family *f = family_register(m, FAMILY_GAUGE, name, help, nlabels, label_names, NULL, 0, false,
                                NULL, NULL, err);
    return f ? (kf_gauge *)f : NULL;
}

kf_histogram *kf_metrics_histogram(kf_metrics *m, const char *name, const char *help,
                                   size_t nlabels, const char *const *label_names,
                                   const double *bounds, size_t nbounds, kf_error *err)
{
    family *f = family_register(m, FAMILY_HISTOGRAM, name, help, nlabels, label_names, bounds,
                                nbounds, false, NULL, NULL, err);
    return f ? (kf_histogram *)f : NULL;
}

int kf_metrics_buckets_exponential(double start, double factor, size_t count, double *out,
                                   kf_error *err)
{
    if (!(start > 0) || !isfinite(start) || !(factor > 1) || !isfinite(factor) || count == 0 ||
        !out)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "exponential buckets need start > 0, factor > 1 and count >= 1");
    double v = start;
    for (size_t i = 0; i < count; i++) {
        if (!isfinite(v))
            return kf_error_set(err, KF_ERR_INVALID, false,
                                "exponential bucket %zu overflows a double", i);
        out[i] = v;
        v *= factor;
    }
    return KF_OK;
}

/* ---- series ---------------------------------------------------------------------------- */

static series_head *series_find(const family *f, const char *const *values)
{
    for (series_head *s = f->first; s; s = s->next) {
        size_t i = 0;
        while (i < f->nlabels && strcmp(s->values[i], values[i]) == 0)
            i++;
        if (i == f->nlabels)
            return s;
    }
    return NULL;
}

static int check_values(const family *f, size_t nvalues, const char *const *values, kf_error *err)
{
    if (nvalues != f->nlabels)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "metric \"%s\" has %zu labels, got %zu values", f->name, f->nlabels,
                            nvalues);
    for (size_t i = 0; i < nvalues; i++) {
        if (!values || !values[i])
            return kf_error_set(err, KF_ERR_INVALID, false,
                                "metric \"%s\": value of label \"%s\" is NULL", f->name,
                                f->label_names[i]);
        if (!valid_utf8(values[i]))
            return kf_error_set(err, KF_ERR_INVALID, false,
                                "metric \"%s\": value of label \"%s\" is not valid UTF-8", f->name,
                                f->label_names[i]);
    }
    return KF_OK;
}

/* `name="escaped value",...` for const labels then the family's labels. */
static char *render_labels(const family *f, const char *const *values)
{
    const kf_metrics *m = f->registry;
    sbuf b = {0};
    sbuf_reserve(&b, 0);
    for (size_t i = 0; i < m->nconst + f->nlabels; i++) {
        bool is_const = i < m->nconst;
        const char *name = is_const ? m->const_names[i] : f->label_names[i - m->nconst];
        const char *value = is_const ? m->const_values[i] : values[i - m->nconst];
        if (i > 0)
            sbuf_putc(&b, ',');
        sbuf_puts(&b, name);
        sbuf_put(&b, "=\"", 2);
        sbuf_escaped(&b, value, true);
        sbuf_putc(&b, '"');
    }
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    char *shrunk = realloc(b.data, b.len + 1);
    return shrunk ? shrunk : b.data;
}

static size_t series_size(const family *f)
{
    size_t size;
    switch (f->kind) {
    case FAMILY_COUNTER:
        size = sizeof(struct kf_counter_series);
        break;
    case FAMILY_GAUGE:
        size = sizeof(struct kf_gauge_series);
        break;
    case FAMILY_HISTOGRAM:
    default:
        size = sizeof(struct kf_histogram_series) + (f->nbounds + 1) * sizeof(_Atomic uint64_t);
        break;
    }
    return (size + SERIES_ALIGN - 1) / SERIES_ALIGN * SERIES_ALIGN;
}

/* Allocates, initializes and appends a series; registry lock held, values checked. */
static series_head *series_create(family *f, const char *const *values, kf_error *err)
{
    size_t size = series_size(f);
    series_head *s = aligned_alloc(SERIES_ALIGN, size);
    if (!s)
        goto out_nomem;
    memset(s, 0, size);
    s->fam = f;
    s->values = dup_strv(values, f->nlabels);
    if (!s->values)
        goto out_free_series;
    s->labels = render_labels(f, values);
    if (!s->labels)
        goto out_free_values;
    switch (f->kind) {
    case FAMILY_COUNTER:
        atomic_init(&((struct kf_counter_series *)s)->value, 0);
        break;
    case FAMILY_GAUGE:
        atomic_init(&((struct kf_gauge_series *)s)->bits, dbl_bits(0.0));
        break;
    case FAMILY_HISTOGRAM: {
        struct kf_histogram_series *h = (struct kf_histogram_series *)s;
        atomic_init(&h->sum_bits, dbl_bits(0.0));
        for (size_t i = 0; i <= f->nbounds; i++)
            atomic_init(&h->buckets[i], 0);
        break;
    }
    }
    *f->tail = s;
    f->tail = &s->next;
    return s;

out_free_values:
    free_strv(s->values, f->nlabels);
out_free_series:
    free(s);
out_nomem:
    kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate a series of metric \"%s\"", f->name);
    return NULL;
}

/* Finds or creates the recorded series for values. */
static series_head *child_get(family *f, size_t nvalues, const char *const *values, kf_error *err)
{
    if (check_values(f, nvalues, values, err) != KF_OK)
        return NULL;
    kf_metrics *m = f->registry;
    pthread_mutex_lock(&m->lock);
    series_head *s = series_find(f, values);
    if (s && s->fn) {
        kf_error_set(err, KF_ERR_INVALID, false,
                     "metric \"%s\": these label values name a callback series", f->name);
        s = NULL;
    } else if (!s) {
        s = series_create(f, values, err);
    }
    pthread_mutex_unlock(&m->lock);
    return s;
}

static int child_func(family *f, size_t nvalues, const char *const *values, kf_metrics_value_fn fn,
                      void *ctx, kf_error *err)
{
    if (!fn)
        return kf_error_set(err, KF_ERR_INVALID, false, "metric \"%s\": callback is NULL", f->name);
    if (f->nlabels == 0)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "metric \"%s\" has no labels: its only series is a recorded one",
                            f->name);
    int rc = check_values(f, nvalues, values, err);
    if (rc != KF_OK)
        return rc;
    kf_metrics *m = f->registry;
    pthread_mutex_lock(&m->lock);
    if (series_find(f, values)) {
        rc = kf_error_set(err, KF_ERR_INVALID, false,
                          "metric \"%s\": a series with these label values exists", f->name);
    } else {
        series_head *s = series_create(f, values, err);
        if (s) {
            s->fn = fn;
            s->ctx = ctx;
        } else {
            rc = KF_ERR_NOMEM;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

kf_counter_series *kf_counter_child(kf_counter *c, size_t nvalues, const char *const *values,
                                    kf_error *err)
{
    return (kf_counter_series *)child_get(&c->fam, nvalues, values, err);
}

kf_gauge_series *kf_gauge_child(kf_gauge *g, size_t nvalues, const char *const *values,
                                kf_error *err)
{
    return (kf_gauge_series *)child_get(&g->fam, nvalues, values, err);
}

kf_histogram_series *kf_histogram_child(kf_histogram *h, size_t nvalues, const char *const *values,
                                        kf_error *err)
{
    return (kf_histogram_series *)child_get(&h->fam, nvalues, values, err);
}

int kf_gauge_child_func(kf_gauge *g, size_t nvalues, const char *const *values,
                        kf_metrics_value_fn fn, void *ctx, kf_error *err)
{
    return child_func(&g->fam, nvalues, values, fn, ctx, err);
}

int kf_counter_child_func(kf_counter *c, size_t nvalues, const char *const *values,
                          kf_metrics_value_fn fn, void *ctx, kf_error *err)
{
    return child_func(&c->fam, nvalues, values, fn, ctx, err);
}

/* ---- recording ------------------------------------------------------------------------- */

void kf_counter_inc(kf_counter_series *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

uint64_t kf_counter_value(const kf_counter_series *c)
{
    return atomic_load_explicit(&c->value, memory_order_relaxed);
}

void kf_gauge_set(kf_gauge_series *g, double v)
{
    atomic_store_explicit(&g->bits, dbl_bits(v), memory_order_relaxed);
}

/* Lock-free add on a double kept as its bit pattern. */
static void atomic_add_double(_Atomic uint64_t *bits, double delta)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    uint64_t want;
    do {
        want = dbl_bits(bits_dbl(old) + delta);
    } while (!atomic_compare_exchange_weak_explicit(bits, &old, want, memory_order_relaxed,
                                                    memory_order_relaxed));
}

void kf_gauge_add(kf_gauge_series *g, double delta)
{
    atomic_add_double(&g->bits, delta);
}

double kf_gauge_value(const kf_gauge_series *g)
{
    return bits_dbl(atomic_load_explicit(&g->bits, memory_order_relaxed));
}

void kf_histogram_observe(kf_histogram_series *h, double v)
{
    const family *f = h->head.fam;
    size_t lo = 0, hi = f->nbounds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= f->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&h->buckets[lo], 1, memory_order_relaxed);
    atomic_add_double(&h->sum_bits, v);
}

uint64_t kf_histogram_count(const kf_histogram_series *h)
{
    const family *f = h->head.fam;
    uint64_t total = 0;
    for (size_t i = 0; i <= f->nbounds; i++)
        total += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
    return total;
}

double kf_histogram_sum(const kf_histogram_series *h)
{
    return bits_dbl(atomic_load_explicit(&h->sum_bits, memory_order_relaxed));
}

/* ---- rendering ------------------------------------------------------------------------- */

/* One sample line: name{labels[,extra]} value-text. */
static void put_sample(sbuf *b, const char *name, const char *suffix, const char *labels,
                       const char *extra, const char *value)
{
    sbuf_puts(b, name);
    sbuf_puts(b, suffix);
    bool have_labels = labels[0] != '\0';
    if (have_labels || extra) {
        sbuf_putc(b, '{');
        sbuf_puts(b, labels);
        if (extra) {
            if (have_labels)
                sbuf_putc(b, ',');
            sbuf_puts(b, extra);
        }
        sbuf_putc(b, '}');
    }
    sbuf_putc(b, ' ');
    sbuf_puts(b, value);
    sbuf_putc(b, '\n');
}

static void render_histogram(sbuf *b, const family *f, const struct kf_histogram_series *h)
{
    const char *labels = h->head.labels;
    char value[40], le[64];
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= f->nbounds; i++) {
        cumulative += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < f->nbounds) {
            char bound[40];
            format_double(f->bounds[i], bound);
            snprintf(le, sizeof(le), "le=\"%s\"", bound);
        } else {
            snprintf(le, sizeof(le), "le=\"+Inf\"");
        }
        snprintf(value, sizeof(value), "%llu", (unsigned long long)cumulative);
        put_sample(b, f->name, "_bucket", labels, le, value);
    }
    /* _count is the +Inf bucket as read above, so the two always agree within one scrape. */
    format_double(bits_dbl(atomic_load_explicit(&h->sum_bits, memory_order_relaxed)), value);
    put_sample(b, f->name, "_sum", labels, NULL, value);
    snprintf(value, sizeof(value), "%llu", (unsigned long long)cumulative);
    put_sample(b, f->name, "_count", labels, NULL, value);
}

static const char *kind_name(family_kind k)
{
    switch (k) {
    case FAMILY_COUNTER:
        return "counter";
    case FAMILY_GAUGE:
        return "gauge";
    case FAMILY_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

/* Writes one family; nothing at all when it has no sample to show. Registry lock held. */
static void render_family(sbuf *b, const family *f)
{
    size_t mark = b->len;
    sbuf_puts(b, "# HELP ");
    sbuf_puts(b, f->name);
    sbuf_putc(b, ' ');
    sbuf_escaped(b, f->help, false);
    sbuf_puts(b, "\n# TYPE ");
    sbuf_puts(b, f->name);
    sbuf_putc(b, ' ');
    sbuf_puts(b, kind_name(f->kind));
    sbuf_putc(b, '\n');

    bool any = false;
    for (const series_head *s = f->first; s; s = s->next) {
        char value[40];
        if (s->fn) {
            double v;
            if (!s->fn(s->ctx, &v))
                continue;
            format_double(v, value);
        } else if (f->kind == FAMILY_COUNTER) {
            const struct kf_counter_series *c = (const struct kf_counter_series *)s;
            snprintf(value, sizeof(value), "%llu",
                     (unsigned long long)atomic_load_explicit(&c->value, memory_order_relaxed));
        } else if (f->kind == FAMILY_GAUGE) {
            const struct kf_gauge_series *g = (const struct kf_gauge_series *)s;
            format_double(bits_dbl(atomic_load_explicit(&g->bits, memory_order_relaxed)), value);
        } else {
            render_histogram(b, f, (const struct kf_histogram_series *)s);
            any = true;
            continue;
        }
        put_sample(b, f->name, "", s->labels, NULL, value);
        any = true;
    }
    if (!any && !b->failed) {
        b->len = mark;
        b->data[mark] = '\0';
    }
}

int kf_metrics_render(kf_metrics *m, char **out, size_t *len, kf_error *err)
{
    if (!m || !out)
        return kf_error_set(err, KF_ERR_INVALID, false, "metrics registry or output is NULL");
    sbuf b = {0};
    sbuf_reserve(&b, 0);
    pthread_mutex_lock(&m->lock);
    for (const family *f = m->first; f; f = f->next)
        render_family(&b, f);
    pthread_mutex_unlock(&m->lock);
    if (b.failed) {
        free(b.data);
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate metrics output");
    }
    *out = b.data;
    if (len)
        *len = b.len;
    return KF_OK;
}

/* ---- process collector ----------------------------------------------------------------- */

/* Fields of /proc/self/stat after the command name, 0-based from field 3 ("state"). */
enum {
    STAT_UTIME = 11,
    STAT_STIME = 12,
    STAT_STARTTIME = 19,
    STAT_VSIZE = 20,
    STAT_RSS = 21,
    STAT_FIELDS = 22,
};

static bool read_proc_stat(unsigned long long fields[STAT_FIELDS])
{
    char buf[1024];
    FILE *fp = fopen("/proc/self/stat", "re");
    if (!fp)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    /* The command name may contain spaces and parentheses: parse after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return false;
    p++;
    for (int i = 0; i < STAT_FIELDS; i++) {
        while (*p == ' ')
            p++;
        if (i == 0) { /* state is a letter */
            if (!*p)
                return false;
            p++;
            fields[i] = 0;
            continue;
        }
        char *end;
        fields[i] = strtoull(p, &end, 10);
        if (end == p)
            return false;
        p = end;
    }
    return true;
}

static bool process_cpu_seconds(void *ctx, double *out)
{
    unsigned long long f[STAT_FIELDS];
    long ticks = sysconf(_SC_CLK_TCK);
    if (!read_proc_stat(f) || ticks <= 0)
        return false;
    *out = (double)(f[STAT_UTIME] + f[STAT_STIME]) / (double)ticks;
    return true;
}

static bool process_resident_bytes(void *ctx, double *out)
{
    unsigned long long f[STAT_FIELDS];
    long page = sysconf(_SC_PAGESIZE);
    if (!read_proc_stat(f) || page <= 0)
        return false;
    *out = (double)f[STAT_RSS] * (double)page;
    return true;
}

static bool process_virtual_bytes(void *ctx, double *out)
{
    unsigned long long f[STAT_FIELDS];
    if (!read_proc_stat(f))
        return false;
    *out = (double)f[STAT_VSIZE];
    return true;
}

static bool process_start_time(void *ctx, double *out)
{
    const kf_metrics *m = ctx;
    if (!(m->process_start > 0))
        return false;
    *out = m->process_start;
    return true;
}

static bool process_open_fds(void *ctx, double *out)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return false;
    int own = dirfd(d);
    double n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (atoi(e->d_name) == own) /* the descriptor reading the directory */
            continue;
        n++;
    }
    closedir(d);
    *out = n;
    return true;
}

static bool process_max_fds(void *ctx, double *out)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return false;
    *out = rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur;
    return true;
}

/* Boot time (btime in /proc/stat) plus the process start in clock ticks after boot. */
static double read_start_time(void)
{
    unsigned long long f[STAT_FIELDS];
    long ticks = sysconf(_SC_CLK_TCK);
    if (!read_proc_stat(f) || ticks <= 0)
        return 0;
    FILE *fp = fopen("/proc/stat", "re");
    if (!fp)
        return 0;
    char line[256];
    unsigned long long btime = 0;
    while (fgets(line, sizeof(line), fp)) {
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    }
    fclose(fp);
    if (btime == 0)
        return 0;
    return (double)btime + (double)f[STAT_STARTTIME] / (double)ticks;
}

int kf_metrics_register_process(kf_metrics *m, kf_error *err)
{
    if (!m)
        return kf_error_set(err, KF_ERR_INVALID, false, "metrics registry is NULL");
    double start = read_start_time();
    pthread_mutex_lock(&m->lock);
    m->process_start = start;
    pthread_mutex_unlock(&m->lock);
    static const struct {
        family_kind kind;
        const char *name;
        const char *help;
        kf_metrics_value_fn fn;
    } defs[] = {
        {FAMILY_COUNTER, "process_cpu_seconds_total",
         "Total user and system CPU time spent in seconds.", process_cpu_seconds},
        {FAMILY_GAUGE, "process_resident_memory_bytes", "Resident memory size in bytes.",
         process_resident_bytes},
        {FAMILY_GAUGE, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
         process_virtual_bytes},
        {FAMILY_GAUGE, "process_start_time_seconds",
         "Start time of the process since unix epoch in seconds.", process_start_time},
        {FAMILY_GAUGE, "process_open_fds", "Number of open file descriptors.", process_open_fds},
        {FAMILY_GAUGE, "process_max_fds", "Maximum number of open file descriptors.",
         process_max_fds},
    };
    for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
        kf_error local;
        kf_error *e = err ? err : &local;
        if (!family_register(m, defs[i].kind, defs[i].name, defs[i].help, 0, NULL, NULL, 0, true,
                             defs[i].fn, m, e))
            return e->code;
    }
    return KF_OK;
}
