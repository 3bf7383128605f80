/* Parses simulator table specs (YAML, libyaml's document API) into immutable tables whose
 * memory lives in one arena per spec. Every rejection names the file and line of the node. */
#include "spec.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "mem.h"

typedef struct column_set {
    const char *name;
    const char *file;
    int line;
    size_t ncolumns;
    const kf_sim_column *columns;
} column_set;

struct kf_sim_spec {
    kf_sim_arena *arena; /* every name, column, value and table body */
    column_set *sets;
    size_t nsets, capsets;
    kf_sim_table_spec *tables;
    size_t ntables, captables;
};

typedef struct pctx {
    kf_sim_spec *spec;
    const char *file;
    yaml_document_t *doc;
    kf_error *err;
} pctx;

#define WHY_LEN 384

static const char *const gen_names[] = {
    [KF_SIM_GEN_SEQUENCE] = "sequence",
    [KF_SIM_GEN_UNIFORM] = "uniform",
    [KF_SIM_GEN_NORMAL] = "normal",
    [KF_SIM_GEN_CHOICE] = "choice",
    [KF_SIM_GEN_BOOL] = "bool",
    [KF_SIM_GEN_NOW] = "now",
    [KF_SIM_GEN_TIME_RANGE] = "time_range",
    [KF_SIM_GEN_UUID] = "uuid",
    [KF_SIM_GEN_FIRST_NAME] = "first_name",
    [KF_SIM_GEN_LAST_NAME] = "last_name",
    [KF_SIM_GEN_NAME] = "name",
    [KF_SIM_GEN_EMAIL] = "email",
    [KF_SIM_GEN_CITY] = "city",
    [KF_SIM_GEN_COUNTRY] = "country",
    [KF_SIM_GEN_PRODUCT] = "product",
    [KF_SIM_GEN_COMPANY] = "company",
    [KF_SIM_GEN_WORD] = "word",
    [KF_SIM_GEN_SENTENCE] = "sentence",
    [KF_SIM_GEN_PATTERN] = "pattern",
    [KF_SIM_GEN_JSON] = "json",
};
#define GEN_KIND_COUNT (sizeof(gen_names) / sizeof(gen_names[0]))

/* The parameter keys each generator accepts (NULL-terminated). */
static const char *const *gen_params(kf_sim_gen_kind k)
{
    static const char *const none[] = {NULL};
    static const char *const sequence[] = {"kind", "start", "step", NULL};
    static const char *const range[] = {"kind", "min", "max", NULL};
    static const char *const normal[] = {"kind", "mean", "stddev", NULL};
    static const char *const choice[] = {"kind", "values", "weights", NULL};
    static const char *const boolean[] = {"kind", "ratio", NULL};
    static const char *const time_range[] = {"kind", "from", "to", NULL};
    static const char *const sentence[] = {"kind", "min_words", "max_words", NULL};
    static const char *const pattern[] = {"kind", "pattern", NULL};
    static const char *const json[] = {"kind", "fields", NULL};
    static const char *const kind_only[] = {"kind", NULL};
    switch (k) {
    case KF_SIM_GEN_SEQUENCE:
        return sequence;
    case KF_SIM_GEN_UNIFORM:
        return range;
    case KF_SIM_GEN_NORMAL:
        return normal;
    case KF_SIM_GEN_CHOICE:
        return choice;
    case KF_SIM_GEN_BOOL:
        return boolean;
    case KF_SIM_GEN_TIME_RANGE:
        return time_range;
    case KF_SIM_GEN_SENTENCE:
        return sentence;
    case KF_SIM_GEN_PATTERN:
        return pattern;
    case KF_SIM_GEN_JSON:
        return json;
    default:
        return kind_only;
    }
    return none;
}

static const char *const check_names[] = {
    [KF_SIM_CHECK_NOT_NULL] = "not_null",      [KF_SIM_CHECK_RANGE] = "range",
    [KF_SIM_CHECK_ALLOWED] = "allowed_values", [KF_SIM_CHECK_EMAIL] = "email",
    [KF_SIM_CHECK_LENGTH] = "length",
};

static const char *const action_names[] = {
    [KF_SIM_EVOLVE_PROMOTE] = "promote",
    [KF_SIM_EVOLVE_DROP] = "drop",
    [KF_SIM_EVOLVE_WIDEN] = "widen",
    [KF_SIM_EVOLVE_READD] = "readd",
};

const char *kf_sim_gen_kind_name(kf_sim_gen_kind k)
{
    return (unsigned)k < GEN_KIND_COUNT ? gen_names[k] : "unknown";
}

const char *kf_sim_check_name(kf_sim_check c)
{
    return (unsigned)c < KF_SIM_CHECK_COUNT_ ? check_names[c] : "unknown";
}

const char *kf_sim_evolve_action_name(kf_sim_evolve_action a)
{
    return (unsigned)a < KF_SIM_EVOLVE_COUNT_ ? action_names[a] : "unknown";
}

kf_sim_spec *kf_sim_spec_new(void)
{
    kf_sim_spec *spec = calloc(1, sizeof(*spec));
    if (!spec)
        return NULL;
    spec->arena = kf_sim_arena_new(64 * 1024);
    if (!spec->arena) {
        free(spec);
        return NULL;
    }
    return spec;
}

void kf_sim_spec_destroy(kf_sim_spec *spec)
{
    if (!spec)
        return;
    kf_sim_arena_destroy(spec->arena);
    free(spec->sets);
    free(spec->tables);
    free(spec);
}

size_t kf_sim_spec_table_count(const kf_sim_spec *spec)
{
    return spec->ntables;
}

const kf_sim_table_spec *kf_sim_spec_table(const kf_sim_spec *spec, size_t i)
{
    return i < spec->ntables ? &spec->tables[i] : NULL;
}

long kf_sim_table_spec_column(const kf_sim_table_spec *t, const char *name)
{
    for (size_t i = 0; i < t->ncolumns; i++)
        if (strcmp(t->columns[i].name, name) == 0)
            return (long)i;
    return -1;
}

/* ---- parsing helpers ---- */

static int line_of(const yaml_node_t *n)
{
    return (int)n->start_mark.line + 1;
}

static int fail(pctx *p, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(pctx *p, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[WHY_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return kf_error_set(p->err, KF_ERR_CONFIG, false, "%s:%d: %s", p->file, line_of(n), msg);
}

static int nomem(pctx *p)
{
    return kf_error_set(p->err, KF_ERR_NOMEM, false, "%s: could not parse: out of memory", p->file);
}

static yaml_node_t *node_at(pctx *p, int id)
{
    return yaml_document_get_node(p->doc, id);
}

static const char *scalar_of(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Checks that n is a mapping whose keys are scalars from allowed, each at most once. */
static int check_map(pctx *p, yaml_node_t *n, const char *what, const char *const *allowed)
{
    if (n->type != YAML_MAPPING_NODE)
        return fail(p, n, "expected a mapping for %s", what);
    for (yaml_node_pair_t *a = n->data.mapping.pairs.start; a < n->data.mapping.pairs.top; a++) {
        yaml_node_t *k = node_at(p, a->key);
        const char *key = scalar_of(k);
        if (!key)
            return fail(p, k, "expected a plain key in %s", what);
        bool known = false;
        for (size_t i = 0; allowed[i]; i++)
            known |= strcmp(allowed[i], key) == 0;
        if (!known) {
            char list[256] = "";
            size_t used = 0;
            for (size_t i = 0; allowed[i] && used < sizeof(list); i++)
                used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
                                         allowed[i]);
            return fail(p, k, "unknown key \"%s\" in %s (expected one of: %s)", key, what, list);
        }
        for (yaml_node_pair_t *b = n->data.mapping.pairs.start; b < a; b++) {
            const char *prev = scalar_of(node_at(p, b->key));
            if (prev && strcmp(prev, key) == 0)
                return fail(p, k, "duplicate key \"%s\" in %s", key, what);
        }
    }
    return KF_OK;
}

static yaml_node_t *map_get(pctx *p, yaml_node_t *n, const char *key)
{
    for (yaml_node_pair_t *a = n->data.mapping.pairs.start; a < n->data.mapping.pairs.top; a++) {
        const char *k = scalar_of(node_at(p, a->key));
        if (k && strcmp(k, key) == 0)
            return node_at(p, a->value);
    }
    return NULL;
}

static size_t seq_len(const yaml_node_t *n)
{
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static yaml_node_t *seq_at(pctx *p, yaml_node_t *n, size_t i)
{
    return node_at(p, n->data.sequence.items.start[i]);
}

/* Sets *out to the scalar text of n (borrowed from the document), or to NULL and fails when n is
 * not a scalar. *out is written on every path, so no caller can read it unset. */
static int get_scalar(pctx *p, yaml_node_t *n, const char *what, const char **out)
{
    const char *s = scalar_of(n);
    *out = s;
    if (!s)
        return fail(p, n, "expected a scalar for %s", what);
    return KF_OK;
}

static int get_string(pctx *p, yaml_node_t *n, const char *what, const char **out)
{
    const char *s;
    int rc = get_scalar(p, n, what, &s);
    if (rc != KF_OK)
        return rc;
    if (!*s)
        return fail(p, n, "%s must not be empty", what);
    char *copy = kf_sim_arena_strndup(p->spec->arena, s, strlen(s));
    if (!copy)
        return nomem(p);
    *out = copy;
    return KF_OK;
}

static int get_ident(pctx *p, yaml_node_t *n, const char *what, const char **out)
{
    int rc = get_string(p, n, what, out);
    if (rc != KF_OK)
        return rc;
    const char *s = *out;
    bool ok = isalpha((unsigned char)s[0]) || s[0] == '_';
    for (size_t i = 1; s[i] && ok; i++)
        ok = isalnum((unsigned char)s[i]) || s[i] == '_';
    if (!ok || strlen(s) > 63)
        return fail(p, n, "%s \"%s\" is not an identifier (letters, digits, _; at most 63)", what,
                    s);
    return KF_OK;
}

static int get_double(pctx *p, yaml_node_t *n, const char *what, double lo, double hi, double *out)
{
    const char *s;
    int rc = get_scalar(p, n, what, &s);
    if (rc != KF_OK)
        return rc;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno)
        return fail(p, n, "expected a number for %s, found \"%s\"", what, s);
    if (v < lo || v > hi)
        return fail(p, n, "%s must be between %g and %g, found %s", what, lo, hi, s);
    *out = v;
    return KF_OK;
}

static int get_int(pctx *p, yaml_node_t *n, const char *what, long long lo, long long hi,
                   long long *out)
{
    const char *s;
    int rc = get_scalar(p, n, what, &s);
    if (rc != KF_OK)
        return rc;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno)
        return fail(p, n, "expected an integer for %s, found \"%s\"", what, s);
    if (v < lo || v > hi)
        return fail(p, n, "%s must be between %lld and %lld, found %s", what, lo, hi, s);
    *out = v;
    return KF_OK;
}

static int get_bool(pctx *p, yaml_node_t *n, const char *what, bool *out)
{
    const char *s;
    int rc = get_scalar(p, n, what, &s);
    if (rc != KF_OK)
        return rc;
    if (strcmp(s, "true") == 0)
        *out = true;
    else if (strcmp(s, "false") == 0)
        *out = false;
    else
        return fail(p, n, "expected true or false for %s, found \"%s\"", what, s);
    return KF_OK;
}

/* A literal of the column's type; strings are copied into the spec arena. */
static int get_literal(pctx *p, yaml_node_t *n, const kf_sim_column *c, const char *what,
                       kf_sim_cell *out)
{
    const char *s;
    int rc = get_scalar(p, n, what, &s);
    if (rc != KF_OK)
        return rc;
    char why[WHY_LEN];
    if (kf_sim_value_parse(&c->type, s, out, why, sizeof(why)) != KF_OK)
        return fail(p, n, "bad %s of column \"%s\": %s", what, c->name, why);
    if (out->kind == KF_SIM_CELL_STRING) {
        char *copy = kf_sim_arena_strndup(p->spec->arena, out->s, out->len);
        if (!copy)
            return nomem(p);
        out->s = copy;
    }
    return KF_OK;
}

static int get_literals(pctx *p, yaml_node_t *n, const kf_sim_column *c, const char *what,
                        const kf_sim_cell **out, size_t *count)
{
    if (n->type != YAML_SEQUENCE_NODE || seq_len(n) == 0)
        return fail(p, n, "expected a non-empty list for %s of column \"%s\"", what, c->name);
    size_t len = seq_len(n);
    kf_sim_cell *cells = kf_sim_arena_alloc(p->spec->arena, len * sizeof(*cells));
    if (!cells)
        return nomem(p);
    for (size_t i = 0; i < len; i++) {
        int rc = get_literal(p, seq_at(p, n, i), c, what, &cells[i]);
        if (rc != KF_OK)
            return rc;
    }
    *out = cells;
    *count = len;
    return KF_OK;
}

/* ---- generators ---- */

static bool gen_fits_type(kf_sim_gen_kind k, const kf_sim_coltype *t)
{
    switch (k) {
    case KF_SIM_GEN_SEQUENCE:
        return kf_sim_type_is_integer(t->type);
    case KF_SIM_GEN_UNIFORM:
    case KF_SIM_GEN_NORMAL:
        return kf_sim_type_is_numeric(t->type);
    case KF_SIM_GEN_CHOICE:
        return true;
    case KF_SIM_GEN_BOOL:
        return t->type == KF_SIM_BOOL;
    case KF_SIM_GEN_NOW:
    case KF_SIM_GEN_TIME_RANGE:
        return kf_sim_type_is_temporal(t->type);
    case KF_SIM_GEN_UUID:
        return t->type == KF_SIM_UUID || t->type == KF_SIM_TEXT ||
               (t->type == KF_SIM_VARCHAR && t->length >= 36);
    case KF_SIM_GEN_JSON:
        return t->type == KF_SIM_JSON;
    default:
        return kf_sim_type_is_string(t->type);
    }
}

static int parse_column(pctx *p, yaml_node_t *n, bool json_field, kf_sim_column *c);

static int parse_choice(pctx *p, yaml_node_t *n, kf_sim_column *c)
{
    kf_sim_gen *g = &c->gen;
    yaml_node_t *values = map_get(p, n, "values");
    if (!values)
        return fail(p, n, "choice generator of column \"%s\" needs values", c->name);
    int rc = get_literals(p, values, c, "choice values", &g->values, &g->nvalues);
    if (rc != KF_OK)
        return rc;
    double *cum = kf_sim_arena_alloc(p->spec->arena, g->nvalues * sizeof(*cum));
    if (!cum)
        return nomem(p);
    yaml_node_t *weights = map_get(p, n, "weights");
    double total = 0;
    if (weights) {
        if (weights->type != YAML_SEQUENCE_NODE || seq_len(weights) != g->nvalues)
            return fail(p, weights,
                        "weights of column \"%s\" must be a list of %zu numbers, one per value",
                        c->name, g->nvalues);
        for (size_t i = 0; i < g->nvalues; i++) {
            double w;
            rc = get_double(p, seq_at(p, weights, i), "a weight", 0, 1e12, &w);
            if (rc != KF_OK)
                return rc;
            total += w;
            cum[i] = total;
        }
        if (total <= 0)
            return fail(p, weights, "weights of column \"%s\" must not all be zero", c->name);
    } else {
        for (size_t i = 0; i < g->nvalues; i++)
            cum[i] = total += 1;
    }
    for (size_t i = 0; i < g->nvalues; i++)
        cum[i] /= total;
    cum[g->nvalues - 1] = 1.0;
    g->cumulative = cum;
    return KF_OK;
}

/* Parses the generator node of column c (a kind name, or a mapping with kind and params). */
static int parse_gen(pctx *p, yaml_node_t *n, bool json_field, kf_sim_column *c)
{
    kf_sim_gen *g = &c->gen;
    yaml_node_t *kind_node = n;
    if (n->type == YAML_MAPPING_NODE) {
        kind_node = map_get(p, n, "kind");
        if (!kind_node)
            return fail(p, n, "generator of column \"%s\" needs a kind", c->name);
    }
    const char *kind;
    int rc = get_scalar(p, kind_node, "a generator kind", &kind);
    if (rc != KF_OK)
        return rc;
    size_t k = 0;
    while (k < GEN_KIND_COUNT && strcmp(gen_names[k], kind) != 0)
        k++;
    if (k == GEN_KIND_COUNT)
        return fail(p, kind_node, "unknown generator \"%s\" for column \"%s\"", kind, c->name);
    g->kind = (kf_sim_gen_kind)k;
    char what[96];
    snprintf(what, sizeof(what), "generator \"%s\"", kind);
    yaml_node_t *params = n->type == YAML_MAPPING_NODE ? n : NULL;
    if (params && (rc = check_map(p, params, what, gen_params(g->kind))) != KF_OK)
        return rc;
    char tname[48];
    kf_sim_coltype_format(&c->type, tname, sizeof(tname));
    if (!gen_fits_type(g->kind, &c->type))
        return fail(p, kind_node, "generator \"%s\" cannot fill column \"%s\" of type %s", kind,
                    c->name, tname);
    if (json_field && g->kind == KF_SIM_GEN_SEQUENCE)
        return fail(p, kind_node, "generator \"sequence\" cannot be used inside a json object");
    yaml_node_t *v;
    switch (g->kind) {
    case KF_SIM_GEN_SEQUENCE: {
        long long start = 1, step = 1;
        if (params && (v = map_get(p, params, "start")) &&
            (rc = get_int(p, v, "start", INT64_MIN, INT64_MAX, &start)) != KF_OK)
            return rc;
        if (params && (v = map_get(p, params, "step")) &&
            (rc = get_int(p, v, "step", 1, INT32_MAX, &step)) != KF_OK)
            return rc;
        g->start = start;
        g->step = step;
        return KF_OK;
    }
    case KF_SIM_GEN_UNIFORM:
    case KF_SIM_GEN_TIME_RANGE: {
        bool uniform = g->kind == KF_SIM_GEN_UNIFORM;
        const char *lo_key = uniform ? "min" : "from", *hi_key = uniform ? "max" : "to";
        yaml_node_t *lo = params ? map_get(p, params, lo_key) : NULL;
        yaml_node_t *hi = params ? map_get(p, params, hi_key) : NULL;
        if (lo && (rc = get_literal(p, lo, c, lo_key, &g->lo)) != KF_OK)
            return rc;
        if (hi && (rc = get_literal(p, hi, c, hi_key, &g->hi)) != KF_OK)
            return rc;
        /* Bounds default to the column's min/max constraints. */
        if (!lo && c->has_min)
            g->lo = c->min;
        if (!hi && c->has_max)
            g->hi = c->max;
        if ((!lo && !c->has_min) || (!hi && !c->has_max))
            return fail(p, n, "generator \"%s\" of column \"%s\" needs %s and %s", kind, c->name,
                        lo_key, hi_key);
        if (kf_sim_cell_compare(&g->lo, &g->hi) > 0)
            return fail(p, n, "generator \"%s\" of column \"%s\": %s is greater than %s", kind,
                        c->name, lo_key, hi_key);
        if ((c->has_min && kf_sim_cell_compare(&g->lo, &c->min) < 0) ||
            (c->has_max && kf_sim_cell_compare(&g->hi, &c->max) > 0))
            return fail(p, n,
                        "generator \"%s\" of column \"%s\" draws outside the column's min/max",
                        kind, c->name);
        return KF_OK;
    }
    case KF_SIM_GEN_NORMAL: {
        yaml_node_t *mean = params ? map_get(p, params, "mean") : NULL;
        yaml_node_t *sd = params ? map_get(p, params, "stddev") : NULL;
        if (!mean || !sd)
            return fail(p, n, "generator \"normal\" of column \"%s\" needs mean and stddev",
                        c->name);
        if ((rc = get_double(p, mean, "mean", -1e300, 1e300, &g->mean)) != KF_OK)
            return rc;
        return get_double(p, sd, "stddev", 0, 1e300, &g->stddev);
    }
    case KF_SIM_GEN_CHOICE:
        if (!params)
            return fail(p, n, "choice generator of column \"%s\" needs values", c->name);
        return parse_choice(p, params, c);
    case KF_SIM_GEN_BOOL:
        g->ratio = 0.5;
        if (params && (v = map_get(p, params, "ratio")))
            return get_double(p, v, "ratio", 0, 1, &g->ratio);
        return KF_OK;
    case KF_SIM_GEN_SENTENCE: {
        long long lo = 3, hi = 10;
        if (params && (v = map_get(p, params, "min_words")) &&
            (rc = get_int(p, v, "min_words", 1, 200, &lo)) != KF_OK)
            return rc;
        if (params && (v = map_get(p, params, "max_words")) &&
            (rc = get_int(p, v, "max_words", 1, 200, &hi)) != KF_OK)
            return rc;
        if (lo > hi)
            return fail(p, n, "generator \"sentence\" of column \"%s\": min_words > max_words",
                        c->name);
        g->min_words = (int)lo;
        g->max_words = (int)hi;
        return KF_OK;
    }
    case KF_SIM_GEN_PATTERN: {
        v = params ? map_get(p, params, "pattern") : NULL;
        if (!v)
            return fail(p, n, "generator \"pattern\" of column \"%s\" needs a pattern", c->name);
        if ((rc = get_string(p, v, "pattern", &g->pattern)) != KF_OK)
            return rc;
        size_t len = strlen(g->pattern);
        size_t bs = 0;
        while (bs < len && g->pattern[len - 1 - bs] == '\\')
            bs++;
        if (bs % 2)
            return fail(p, v, "pattern of column \"%s\" ends with a lone backslash", c->name);
        return KF_OK;
    }
    case KF_SIM_GEN_JSON: {
        v = params ? map_get(p, params, "fields") : NULL;
        if (!v || v->type != YAML_SEQUENCE_NODE || seq_len(v) == 0)
            return fail(p, v ? v : n, "generator \"json\" of column \"%s\" needs a list of fields",
                        c->name);
        size_t nf = seq_len(v);
        kf_sim_column *fields = kf_sim_arena_alloc(p->spec->arena, nf * sizeof(*fields));
        if (!fields)
            return nomem(p);
        for (size_t i = 0; i < nf; i++) {
            yaml_node_t *fn = seq_at(p, v, i);
            if ((rc = parse_column(p, fn, true, &fields[i])) != KF_OK)
                return rc;
            for (size_t j = 0; j < i; j++)
                if (strcmp(fields[j].name, fields[i].name) == 0)
                    return fail(p, fn, "duplicate field \"%s\" in json column \"%s\"",
                                fields[i].name, c->name);
        }
        g->fields = fields;
        g->nfields = nf;
        return KF_OK;
    }
    default:
        return KF_OK;
    }
}

/* The generator a column gets when the spec names none. */
static int default_gen(pctx *p, yaml_node_t *n, kf_sim_column *c)
{
    kf_sim_gen *g = &c->gen;
    if (c->nallowed) {
        g->kind = KF_SIM_GEN_CHOICE;
        g->values = c->allowed;
        g->nvalues = c->nallowed;
        double *cum = kf_sim_arena_alloc(p->spec->arena, c->nallowed * sizeof(*cum));
        if (!cum)
            return nomem(p);
        for (size_t i = 0; i < c->nallowed; i++)
            cum[i] = (double)(i + 1) / (double)c->nallowed;
        cum[c->nallowed - 1] = 1.0;
        g->cumulative = cum;
        return KF_OK;
    }
    switch (c->type.type) {
    case KF_SIM_BOOL:
        g->kind = KF_SIM_GEN_BOOL;
        g->ratio = 0.5;
        return KF_OK;
    case KF_SIM_DATE:
    case KF_SIM_TIMESTAMP:
    case KF_SIM_TIMESTAMPTZ:
        g->kind = KF_SIM_GEN_NOW;
        return KF_OK;
    case KF_SIM_UUID:
        g->kind = KF_SIM_GEN_UUID;
        return KF_OK;
    case KF_SIM_TEXT:
    case KF_SIM_VARCHAR:
        g->kind = KF_SIM_GEN_SENTENCE;
        g->min_words = 3;
        g->max_words = 10;
        return KF_OK;
    case KF_SIM_JSON:
        return fail(p, n, "json column \"%s\" needs a generator (json with fields, or choice)",
                    c->name);
    default: {
        /* Numbers: uniform over the constraints, or over 0..1000 in the column's units. */
        char why[WHY_LEN];
        g->kind = KF_SIM_GEN_UNIFORM;
        if (kf_sim_value_parse(&c->type, "0", &g->lo, why, sizeof(why)) != KF_OK ||
            kf_sim_value_parse(&c->type, "1000", &g->hi, why, sizeof(why)) != KF_OK)
            return fail(p, n, "column \"%s\" needs a generator: %s", c->name, why);
        if (c->has_min)
            g->lo = c->min;
        if (c->has_max)
            g->hi = c->max;
        if (kf_sim_cell_compare(&g->lo, &g->hi) > 0) {
            if (c->has_min && !c->has_max)
                g->hi = g->lo;
            else
                g->lo = g->hi;
        }
        return KF_OK;
    }
    }
}

/* ---- columns ---- */

static int parse_column(pctx *p, yaml_node_t *n, bool json_field, kf_sim_column *c)
{
    static const char *const column_keys[] = {
        "name",   "type",   "generator",  "nullable",   "null_ratio", "min",       "max",
        "unique", "values", "min_length", "max_length", "reserved",   "protected", NULL};
    static const char *const field_keys[] = {"name",       "type",       "generator", "nullable",
                                             "null_ratio", "min",        "max",       "values",
                                             "min_length", "max_length", NULL};
    memset(c, 0, sizeof(*c));
    c->file = p->file;
    c->line = line_of(n);
    c->nullable = true;
    int rc = check_map(p, n, json_field ? "a json field" : "a column",
                       json_field ? field_keys : column_keys);
    if (rc != KF_OK)
        return rc;
    yaml_node_t *v = map_get(p, n, "name");
    if (!v)
        return fail(p, n, "%s needs a name", json_field ? "json field" : "column");
    if ((rc = get_ident(p, v, json_field ? "field name" : "column name", &c->name)) != KF_OK)
        return rc;
    v = map_get(p, n, "type");
    if (!v)
        return fail(p, n, "column \"%s\" needs a type", c->name);
    const char *type_text;
    if ((rc = get_scalar(p, v, "a type", &type_text)) != KF_OK)
        return rc;
    char why[WHY_LEN];
    if (kf_sim_coltype_parse(type_text, &c->type, why, sizeof(why)) != KF_OK)
        return fail(p, v, "column \"%s\": %s", c->name, why);
    kf_sim_type t = c->type.type;

    if ((v = map_get(p, n, "nullable")) && (rc = get_bool(p, v, "nullable", &c->nullable)))
        return rc;
    if ((v = map_get(p, n, "null_ratio"))) {
        if ((rc = get_double(p, v, "null_ratio", 0, 1, &c->null_ratio)) != KF_OK)
            return rc;
        if (c->null_ratio > 0 && !c->nullable)
            return fail(p, v, "column \"%s\" is not nullable but has a null_ratio", c->name);
    }
    yaml_node_t *min = map_get(p, n, "min"), *max = map_get(p, n, "max");
    if ((min || max) && !kf_sim_type_is_numeric(t) && !kf_sim_type_is_temporal(t))
        return fail(p, min ? min : max, "min/max apply to numbers, dates and timestamps, not %s",
                    kf_sim_type_name(t));
    if (min && (rc = get_literal(p, min, c, "min", &c->min)) != KF_OK)
        return rc;
    if (max && (rc = get_literal(p, max, c, "max", &c->max)) != KF_OK)
        return rc;
    c->has_min = min != NULL;
    c->has_max = max != NULL;
    if (min && max && kf_sim_cell_compare(&c->min, &c->max) > 0)
        return fail(p, max, "column \"%s\": min is greater than max", c->name);
    if ((v = map_get(p, n, "unique"))) {
        if ((rc = get_bool(p, v, "unique", &c->unique)) != KF_OK)
            return rc;
        if (c->unique && (t == KF_SIM_BOOL || t == KF_SIM_JSON))
            return fail(p, v, "column \"%s\" of type %s cannot be unique", c->name,
                        kf_sim_type_name(t));
    }
    if ((v = map_get(p, n, "values")) &&
        (rc = get_literals(p, v, c, "values", &c->allowed, &c->nallowed)) != KF_OK)
        return rc;
    yaml_node_t *minl = map_get(p, n, "min_length"), *maxl = map_get(p, n, "max_length");
    if ((minl || maxl) && !kf_sim_type_is_string(t))
        return fail(p, minl ? minl : maxl, "min_length/max_length apply to text and varchar");
    long long limit = t == KF_SIM_VARCHAR ? c->type.length : 1 << 30, lv;
    if (minl) {
        if ((rc = get_int(p, minl, "min_length", 0, limit, &lv)) != KF_OK)
            return rc;
        c->min_length = (int)lv;
    }
    if (maxl) {
        if ((rc = get_int(p, maxl, "max_length", 1, limit, &lv)) != KF_OK)
            return rc;
        c->max_length = (int)lv;
        if (c->min_length > c->max_length)
            return fail(p, maxl, "column \"%s\": min_length is greater than max_length", c->name);
    }
    if ((v = map_get(p, n, "reserved")) && (rc = get_bool(p, v, "reserved", &c->reserved)))
        return rc;
    if ((v = map_get(p, n, "protected")) && (rc = get_bool(p, v, "protected", &c->is_protected)))
        return rc;
    if (c->reserved && !c->nullable)
        return fail(p, map_get(p, n, "reserved"),
                    "reserved column \"%s\" must be nullable: rows that exist when it is "
                    "promoted hold null",
                    c->name);

    if ((v = map_get(p, n, "generator"))) {
        c->generator_declared = true;
        if ((rc = parse_gen(p, v, json_field, c)) != KF_OK)
            return rc;
    } else if ((rc = default_gen(p, n, c)) != KF_OK) {
        return rc;
    }
    if (c->nallowed && c->gen.kind != KF_SIM_GEN_CHOICE)
        return fail(p, map_get(p, n, "values"),
                    "column \"%s\" lists allowed values, so its generator must be a choice "
                    "among them (or omitted)",
                    c->name);
    for (size_t i = 0; c->nallowed && i < c->gen.nvalues; i++) {
        bool found = false;
        for (size_t j = 0; j < c->nallowed && !found; j++)
            found = kf_sim_cell_equal(&c->gen.values[i], &c->allowed[j]);
        if (!found)
            return fail(p, map_get(p, n, "generator"),
                        "choice values of column \"%s\" must be among its allowed values", c->name);
    }
    return KF_OK;
}

/* ---- tables ---- */

static const column_set *find_set(const kf_sim_spec *spec, const char *name)
{
    for (size_t i = 0; i < spec->nsets; i++)
        if (strcmp(spec->sets[i].name, name) == 0)
            return &spec->sets[i];
    return NULL;
}

static int parse_columns_list(pctx *p, yaml_node_t *n, const char *owner, kf_sim_column **out,
                              size_t *count)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(p, n, "expected a list of columns for %s", owner);
    size_t len = seq_len(n);
    kf_sim_column *cols = kf_sim_arena_alloc(p->spec->arena, (len ? len : 1) * sizeof(*cols));
    if (!cols)
        return nomem(p);
    for (size_t i = 0; i < len; i++) {
        int rc = parse_column(p, seq_at(p, n, i), false, &cols[i]);
        if (rc != KF_OK)
            return rc;
    }
    *out = cols;
    *count = len;
    return KF_OK;
}

static int parse_column_sets(pctx *p, yaml_node_t *n)
{
    if (n->type != YAML_MAPPING_NODE)
        return fail(p, n, "expected a mapping of column set names to column lists");
    for (yaml_node_pair_t *a = n->data.mapping.pairs.start; a < n->data.mapping.pairs.top; a++) {
        yaml_node_t *k = node_at(p, a->key);
        const char *name;
        int rc = get_ident(p, k, "column set name", &name);
        if (rc != KF_OK)
            return rc;
        const column_set *prev = find_set(p->spec, name);
        if (prev)
            return fail(p, k, "column set \"%s\" is already declared at %s:%d", name, prev->file,
                        prev->line);
        kf_sim_column *cols;
        size_t ncols;
        char owner[96];
        snprintf(owner, sizeof(owner), "column set \"%s\"", name);
        if ((rc = parse_columns_list(p, node_at(p, a->value), owner, &cols, &ncols)) != KF_OK)
            return rc;
        for (size_t i = 0; i < ncols; i++)
            for (size_t j = 0; j < i; j++)
                if (strcmp(cols[i].name, cols[j].name) == 0)
                    return fail(p, node_at(p, a->value), "column \"%s\" appears twice in %s",
                                cols[i].name, owner);
        kf_sim_spec *spec = p->spec;
        if (spec->nsets == spec->capsets) {
            size_t cap = spec->capsets ? spec->capsets * 2 : 8;
            column_set *sets = realloc(spec->sets, cap * sizeof(*sets));
            if (!sets)
                return nomem(p);
            spec->sets = sets;
            spec->capsets = cap;
        }
        spec->sets[spec->nsets++] = (column_set){
            .name = name, .file = p->file, .line = line_of(k), .ncolumns = ncols, .columns = cols};
    }
    return KF_OK;
}

static long find_column(const kf_sim_column *cols, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(cols[i].name, name) == 0)
            return (long)i;
    return -1;
}

/* Marks column i as part of the key: never null, never dropped, never updated. */
static int make_key(pctx *p, yaml_node_t *at, kf_sim_table_spec *t, kf_sim_column *cols, size_t i)
{
    kf_sim_column *c = &cols[i];
    if (c->reserved)
        return fail(p, at, "key column \"%s\" of table \"%s\" cannot be reserved", c->name,
                    t->name);
    if (c->null_ratio > 0)
        return fail(p, at, "key column \"%s\" of table \"%s\" cannot have a null_ratio", c->name,
                    t->name);
    if (c->type.type == KF_SIM_JSON || kf_sim_type_is_temporal(c->type.type) ||
        c->type.type == KF_SIM_FLOAT || c->type.type == KF_SIM_DOUBLE)
        return fail(p, at, "key column \"%s\" of table \"%s\" cannot be of type %s", c->name,
                    t->name, kf_sim_type_name(c->type.type));
    for (size_t k = 0; k < t->nkey; k++)
        if (t->key[k] == i)
            return fail(p, at, "column \"%s\" appears twice in the key of table \"%s\"", c->name,
                        t->name);
    if (t->nkey == KF_SIM_MAX_KEY)
        return fail(p, at, "the key of table \"%s\" has more than %d columns", t->name,
                    KF_SIM_MAX_KEY);
    c->is_key = true;
    c->is_protected = true;
    c->nullable = false;
    t->key[t->nkey++] = i;
    return KF_OK;
}

static int parse_primary_key(pctx *p, yaml_node_t *n, kf_sim_table_spec *t, const char **key_name)
{
    static const char *const keys[] = {"kind", "column", "columns", NULL};
    int rc = check_map(p, n, "primary_key", keys);
    if (rc != KF_OK)
        return rc;
    yaml_node_t *kind = map_get(p, n, "kind");
    const char *k = "sequence";
    if (kind && (rc = get_scalar(p, kind, "primary key kind", &k)) != KF_OK)
        return rc;
    yaml_node_t *column = map_get(p, n, "column"), *columns = map_get(p, n, "columns");
    if (strcmp(k, "sequence") == 0 || strcmp(k, "uuid") == 0) {
        t->pk_kind = k[0] == 's' ? KF_SIM_PK_SEQUENCE : KF_SIM_PK_UUID;
        if (columns)
            return fail(p, columns, "a %s key has one column: use column, not columns", k);
        *key_name = "id";
        if (column)
            return get_ident(p, column, "key column", key_name);
        return KF_OK;
    }
    if (strcmp(k, "composite") == 0) {
        t->pk_kind = KF_SIM_PK_COMPOSITE;
        if (column)
            return fail(p, column, "a composite key lists its columns: use columns");
        if (!columns || columns->type != YAML_SEQUENCE_NODE || seq_len(columns) < 2)
            return fail(p, columns ? columns : n,
                        "a composite key needs a list of at least two columns");
        return KF_OK;
    }
    return fail(p, kind, "unknown primary key kind \"%s\" (expected sequence, uuid or composite)",
                k);
}

static int parse_workload(pctx *p, yaml_node_t *n, kf_sim_table_spec *t, kf_sim_column *cols)
{
    static const char *const keys[] = {"inserts",
                                       "update_probability",
                                       "delete_probability",
                                       "update_columns",
                                       "max_columns_per_update",
                                       "max_live_rows",
                                       NULL};
    int rc = check_map(p, n, "workload", keys);
    if (rc != KF_OK)
        return rc;
    yaml_node_t *v;
    long long iv;
    if ((v = map_get(p, n, "inserts"))) {
        if ((rc = get_int(p, v, "inserts", 0, 1000000, &iv)) != KF_OK)
            return rc;
        t->inserts = (uint32_t)iv;
    }
    if ((v = map_get(p, n, "update_probability")) &&
        (rc = get_double(p, v, "update_probability", 0, 1, &t->update_probability)) != KF_OK)
        return rc;
    if ((v = map_get(p, n, "delete_probability")) &&
        (rc = get_double(p, v, "delete_probability", 0, 1, &t->delete_probability)) != KF_OK)
        return rc;
    if ((v = map_get(p, n, "max_columns_per_update"))) {
        if ((rc = get_int(p, v, "max_columns_per_update", 1, 10000, &iv)) != KF_OK)
            return rc;
        t->max_columns_per_update = (uint32_t)iv;
    }
    if ((v = map_get(p, n, "max_live_rows"))) {
        if ((rc = get_int(p, v, "max_live_rows", 1, INT64_MAX, &iv)) != KF_OK)
            return rc;
        t->max_live_rows = (uint64_t)iv;
    }
    if ((v = map_get(p, n, "update_columns"))) {
        if (v->type != YAML_SEQUENCE_NODE || seq_len(v) == 0)
            return fail(p, v, "update_columns must be a non-empty list of column names");
        size_t len = seq_len(v);
        size_t *idx = kf_sim_arena_alloc(p->spec->arena, len * sizeof(*idx));
        if (!idx)
            return nomem(p);
        for (size_t i = 0; i < len; i++) {
            yaml_node_t *e = seq_at(p, v, i);
            const char *name;
            if ((rc = get_scalar(p, e, "a column name", &name)) != KF_OK)
                return rc;
            long ci = find_column(cols, t->ncolumns, name);
            if (ci < 0)
                return fail(p, e, "update column \"%s\" is not a column of table \"%s\"", name,
                            t->name);
            if (cols[ci].is_key)
                return fail(p, e,
                            "column \"%s\" is part of the key of table \"%s\" and cannot "
                            "be updated",
                            name, t->name);
            if (cols[ci].is_update_column)
                return fail(p, e,
                            "column \"%s\" is the update column; it is refreshed on every "
                            "update already",
                            name);
            for (size_t j = 0; j < i; j++)
                if (idx[j] == (size_t)ci)
                    return fail(p, e, "column \"%s\" appears twice in update_columns", name);
            idx[i] = (size_t)ci;
        }
        t->update_columns = idx;
        t->nupdate_columns = len;
    }
    return KF_OK;
}

static int parse_evolution(pctx *p, yaml_node_t *n, kf_sim_table_spec *t)
{
    static const char *const keys[] = {"every",       "probability",    "weights",
                                       "allow_readd", "varchar_growth", NULL};
    static const char *const weight_keys[] = {"promote", "drop", "widen", "readd", NULL};
    int rc = check_map(p, n, "evolution", keys);
    if (rc != KF_OK)
        return rc;
    yaml_node_t *v;
    long long iv;
    if ((v = map_get(p, n, "every"))) {
        if ((rc = get_int(p, v, "every", 0, UINT32_MAX, &iv)) != KF_OK)
            return rc;
        t->evolve_every = (uint32_t)iv;
    }
    if ((v = map_get(p, n, "probability")) &&
        (rc = get_double(p, v, "probability", 0, 1, &t->evolve_probability)) != KF_OK)
        return rc;
    if ((v = map_get(p, n, "allow_readd")) &&
        (rc = get_bool(p, v, "allow_readd", &t->allow_readd)) != KF_OK)
        return rc;
    if ((v = map_get(p, n, "varchar_growth"))) {
        if ((rc = get_int(p, v, "varchar_growth", 1, 1000, &iv)) != KF_OK)
            return rc;
        t->varchar_growth = (int)iv;
    }
    if ((v = map_get(p, n, "weights"))) {
        if ((rc = check_map(p, v, "evolution weights", weight_keys)) != KF_OK)
            return rc;
        double total = 0;
        for (int a = 0; a < KF_SIM_EVOLVE_COUNT_; a++) {
            yaml_node_t *w = map_get(p, v, action_names[a]);
            if (w && (rc = get_double(p, w, "an evolution weight", 0, 1e9,
                                      &t->evolve_weights[a])) != KF_OK)
                return rc;
            total += t->evolve_weights[a];
        }
        if (total <= 0)
            return fail(p, v, "evolution weights must not all be zero");
    }
    return KF_OK;
}

static int parse_errors(pctx *p, yaml_node_t *n, kf_sim_table_spec *t)
{
    static const char *const keys[] = {"ratio", "kinds", NULL};
    int rc = check_map(p, n, "errors", keys);
    if (rc != KF_OK)
        return rc;
    yaml_node_t *v;
    if ((v = map_get(p, n, "ratio")) &&
        (rc = get_double(p, v, "error ratio", 0, 1, &t->error_ratio)) != KF_OK)
        return rc;
    if ((v = map_get(p, n, "kinds"))) {
        if (v->type != YAML_SEQUENCE_NODE || seq_len(v) == 0)
            return fail(p, v, "error kinds must be a non-empty list");
        t->error_kinds = 0;
        for (size_t i = 0; i < seq_len(v); i++) {
            yaml_node_t *e = seq_at(p, v, i);
            const char *name;
            if ((rc = get_scalar(p, e, "an error kind", &name)) != KF_OK)
                return rc;
            int k = 0;
            while (k < KF_SIM_CHECK_COUNT_ && strcmp(check_names[k], name) != 0)
                k++;
            if (k == KF_SIM_CHECK_COUNT_)
                return fail(p, e,
                            "unknown error kind \"%s\" (expected not_null, range, "
                            "allowed_values, email or length)",
                            name);
            t->error_kinds |= 1u << k;
        }
    }
    return KF_OK;
}

static int parse_table(pctx *p, yaml_node_t *n, const char *database, kf_sim_table_spec *t)
{
    static const char *const keys[] = {"name",      "primary_key",   "include",
                                       "columns",   "update_column", "workload",
                                       "evolution", "errors",        NULL};
    int rc = check_map(p, n, "a table", keys);
    if (rc != KF_OK)
        return rc;
    memset(t, 0, sizeof(*t));
    t->database = database;
    t->file = p->file;
    t->line = line_of(n);
    t->update_column = -1;
    t->update_probability = 0.2;
    t->delete_probability = 0.05;
    t->max_live_rows = 1000000;
    t->varchar_growth = 100;
    for (int a = 0; a < KF_SIM_EVOLVE_COUNT_; a++)
        t->evolve_weights[a] = 1;
    t->error_kinds = (1u << KF_SIM_CHECK_COUNT_) - 1;

    yaml_node_t *v = map_get(p, n, "name");
    if (!v)
        return fail(p, n, "table needs a name");
    if ((rc = get_ident(p, v, "table name", &t->name)) != KF_OK)
        return rc;
    for (size_t i = 0; i < p->spec->ntables; i++) {
        const kf_sim_table_spec *o = &p->spec->tables[i];
        if (strcmp(o->database, database) == 0 && strcmp(o->name, t->name) == 0)
            return fail(p, v, "table \"%s.%s\" is already declared at %s:%d", database, t->name,
                        o->file, o->line);
    }

    const char *key_name = "id";
    yaml_node_t *pk = map_get(p, n, "primary_key");
    if (pk && (rc = parse_primary_key(p, pk, t, &key_name)) != KF_OK)
        return rc;

    /* Gather the own columns and the included column sets. */
    kf_sim_column *own = NULL;
    size_t nown = 0;
    yaml_node_t *columns = map_get(p, n, "columns");
    if (columns && (rc = parse_columns_list(p, columns, "a table", &own, &nown)) != KF_OK)
        return rc;
    yaml_node_t *include = map_get(p, n, "include");
    const column_set *sets[64];
    yaml_node_t *set_nodes[64];
    size_t nsets = 0, nincluded = 0;
    if (include) {
        if (include->type == YAML_SCALAR_NODE) {
            set_nodes[nsets++] = include;
        } else if (include->type == YAML_SEQUENCE_NODE && seq_len(include) <= 64) {
            for (size_t i = 0; i < seq_len(include); i++)
                set_nodes[nsets++] = seq_at(p, include, i);
        } else {
            return fail(p, include, "include must be a column set name or a list of at most 64");
        }
        for (size_t i = 0; i < nsets; i++) {
            const char *name;
            if ((rc = get_scalar(p, set_nodes[i], "a column set name", &name)) != KF_OK)
                return rc;
            sets[i] = find_set(p->spec, name);
            if (!sets[i])
                return fail(p, set_nodes[i],
                            "unknown column set \"%s\" (column sets must be declared before "
                            "the tables that include them)",
                            name);
            nincluded += sets[i]->ncolumns;
        }
    }
    bool auto_key = t->pk_kind != KF_SIM_PK_COMPOSITE && find_column(own, nown, key_name) < 0;
    for (size_t i = 0; auto_key && i < nsets; i++)
        if (find_column(sets[i]->columns, sets[i]->ncolumns, key_name) >= 0)
            auto_key = false;
    size_t ncols = (auto_key ? 1 : 0) + nown + nincluded;
    if (ncols == 0)
        return fail(p, n, "table \"%s\" has no columns", t->name);
    kf_sim_column *cols = kf_sim_arena_alloc(p->spec->arena, ncols * sizeof(*cols));
    if (!cols)
        return nomem(p);
    size_t nc = 0;
    if (auto_key) {
        kf_sim_column *c = &cols[nc++];
        memset(c, 0, sizeof(*c));
        c->name = key_name;
        c->file = p->file;
        c->line = line_of(pk ? pk : n);
        if (t->pk_kind == KF_SIM_PK_SEQUENCE) {
            c->type.type = KF_SIM_BIGINT;
            c->gen.kind = KF_SIM_GEN_SEQUENCE;
            c->gen.start = 1;
            c->gen.step = 1;
        } else {
            c->type.type = KF_SIM_UUID;
            c->gen.kind = KF_SIM_GEN_UUID;
        }
    }
    for (size_t i = 0; i < nown; i++) {
        if (find_column(cols, nc, own[i].name) >= 0)
            return fail(p, columns, "column \"%s\" appears twice in table \"%s\"", own[i].name,
                        t->name);
        cols[nc++] = own[i];
    }
    for (size_t s = 0; s < nsets; s++) {
        for (size_t i = 0; i < sets[s]->ncolumns; i++) {
            if (find_column(cols, nc, sets[s]->columns[i].name) >= 0)
                return fail(p, set_nodes[s],
                            "column \"%s\" of column set \"%s\" is already a column of table "
                            "\"%s\"",
                            sets[s]->columns[i].name, sets[s]->name, t->name);
            cols[nc++] = sets[s]->columns[i];
        }
    }
    t->columns = cols;
    t->ncolumns = nc;

    /* Resolve the key. */
    if (t->pk_kind == KF_SIM_PK_COMPOSITE) {
        yaml_node_t *list = map_get(p, pk, "columns");
        for (size_t i = 0; i < seq_len(list); i++) {
            yaml_node_t *e = seq_at(p, list, i);
            const char *name;
            if ((rc = get_scalar(p, e, "a key column", &name)) != KF_OK)
                return rc;
            long ci = find_column(cols, nc, name);
            if (ci < 0)
                return fail(p, e, "key column \"%s\" is not declared in table \"%s\"", name,
                            t->name);
            if ((rc = make_key(p, e, t, cols, (size_t)ci)) != KF_OK)
                return rc;
        }
    } else {
        long ci = find_column(cols, nc, key_name);
        kf_sim_column *c = &cols[ci];
        yaml_node_t *at = pk ? pk : n;
        if (t->pk_kind == KF_SIM_PK_SEQUENCE) {
            if (!kf_sim_type_is_integer(c->type.type))
                return fail(p, at, "sequence key column \"%s\" of table \"%s\" must be an integer",
                            c->name, t->name);
            if (c->generator_declared && c->gen.kind != KF_SIM_GEN_SEQUENCE)
                return fail(p, at, "sequence key column \"%s\" cannot use generator \"%s\"",
                            c->name, kf_sim_gen_kind_name(c->gen.kind));
            if (!c->generator_declared) {
                memset(&c->gen, 0, sizeof(c->gen));
                c->gen.kind = KF_SIM_GEN_SEQUENCE;
                c->gen.start = 1;
                c->gen.step = 1;
            }
        } else {
            if (!(c->type.type == KF_SIM_UUID || c->type.type == KF_SIM_TEXT ||
                  (c->type.type == KF_SIM_VARCHAR && c->type.length >= 36)))
                return fail(p, at, "uuid key column \"%s\" of table \"%s\" must be a uuid", c->name,
                            t->name);
            if (c->generator_declared && c->gen.kind != KF_SIM_GEN_UUID)
                return fail(p, at, "uuid key column \"%s\" cannot use generator \"%s\"", c->name,
                            kf_sim_gen_kind_name(c->gen.kind));
            memset(&c->gen, 0, sizeof(c->gen));
            c->gen.kind = KF_SIM_GEN_UUID;
        }
        if ((rc = make_key(p, at, t, cols, (size_t)ci)) != KF_OK)
            return rc;
    }

    /* The update column: declared, a timestamp, active, refreshed with the clock. */
    if ((v = map_get(p, n, "update_column"))) {
        const char *name;
        if ((rc = get_scalar(p, v, "update_column", &name)) != KF_OK)
            return rc;
        long ci = find_column(cols, nc, name);
        if (ci < 0)
            return fail(p, v, "update column \"%s\" of table \"%s\" is not declared", name,
                        t->name);
        kf_sim_column *c = &cols[ci];
        if (c->type.type != KF_SIM_TIMESTAMP && c->type.type != KF_SIM_TIMESTAMPTZ)
            return fail(p, v,
                        "update column \"%s\" of table \"%s\" must be a timestamp or "
                        "timestamptz, not %s",
                        name, t->name, kf_sim_type_name(c->type.type));
        if (c->is_key || c->reserved)
            return fail(p, v, "update column \"%s\" of table \"%s\" cannot be %s", name, t->name,
                        c->is_key ? "part of the key" : "reserved");
        if (c->generator_declared && c->gen.kind != KF_SIM_GEN_NOW)
            return fail(p, v,
                        "update column \"%s\" is always set to the clock; its generator "
                        "must be \"now\" or omitted",
                        name);
        c->gen.kind = KF_SIM_GEN_NOW;
        c->is_update_column = true;
        c->is_protected = true;
        c->null_ratio = 0;
        t->update_column = ci;
    }

    if ((v = map_get(p, n, "workload")) && (rc = parse_workload(p, v, t, cols)) != KF_OK)
        return rc;
    if ((v = map_get(p, n, "evolution")) && (rc = parse_evolution(p, v, t)) != KF_OK)
        return rc;
    if ((v = map_get(p, n, "errors")) && (rc = parse_errors(p, v, t)) != KF_OK)
        return rc;
    if (!t->update_columns) {
        size_t *idx = kf_sim_arena_alloc(p->spec->arena, nc * sizeof(*idx));
        if (!idx)
            return nomem(p);
        size_t k = 0;
        for (size_t i = 0; i < nc; i++)
            if (!cols[i].is_key && !cols[i].is_update_column && cols[i].gen.kind != KF_SIM_GEN_NOW)
                idx[k++] = i;
        t->update_columns = idx;
        t->nupdate_columns = k;
    }
    if (t->max_columns_per_update == 0 || t->max_columns_per_update > t->nupdate_columns)
        t->max_columns_per_update = (uint32_t)t->nupdate_columns;
    return KF_OK;
}

/* The default database name: the file name without directory and extension. */
static const char *stem_of(pctx *p, const char *name)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    const char *dot = strrchr(base, '.');
    size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    char *out = kf_sim_arena_strndup(p->spec->arena, base, len);
    for (size_t i = 0; out && out[i]; i++)
        if (!isalnum((unsigned char)out[i]))
            out[i] = '_';
    return out;
}

static int parse_root(pctx *p, yaml_node_t *root)
{
    static const char *const keys[] = {"database", "column_sets", "tables", NULL};
    int rc = check_map(p, root, "a spec file", keys);
    if (rc != KF_OK)
        return rc;
    const char *database;
    yaml_node_t *v = map_get(p, root, "database");
    if (v) {
        if ((rc = get_ident(p, v, "database name", &database)) != KF_OK)
            return rc;
    } else if (!(database = stem_of(p, p->file))) {
        return nomem(p);
    }
    if ((v = map_get(p, root, "column_sets")) && (rc = parse_column_sets(p, v)) != KF_OK)
        return rc;
    v = map_get(p, root, "tables");
    if (!v)
        return KF_OK;
    if (v->type != YAML_SEQUENCE_NODE)
        return fail(p, v, "expected a list of tables");
    kf_sim_spec *spec = p->spec;
    for (size_t i = 0; i < seq_len(v); i++) {
        if (spec->ntables == spec->captables) {
            size_t cap = spec->captables ? spec->captables * 2 : 8;
            kf_sim_table_spec *tables = realloc(spec->tables, cap * sizeof(*tables));
            if (!tables)
                return nomem(p);
            spec->tables = tables;
            spec->captables = cap;
        }
        kf_sim_table_spec *t = &spec->tables[spec->ntables];
        if ((rc = parse_table(p, seq_at(p, v, i), database, t)) != KF_OK)
            return rc;
        spec->ntables++;
    }
    return KF_OK;
}

int kf_sim_spec_load_string(kf_sim_spec *spec, const char *name, const char *text, size_t len,
                            kf_error *err)
{
    pctx p = {.spec = spec, .err = err};
    p.file = kf_sim_arena_strndup(spec->arena, name, strlen(name));
    if (!p.file)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not load \"%s\": out of memory", name);
    size_t saved_tables = spec->ntables, saved_sets = spec->nsets;
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not create a YAML parser");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int rc;
    if (!yaml_parser_load(&parser, &doc)) {
        rc = kf_error_set(err, KF_ERR_CONFIG, false, "%s:%d: could not parse YAML: %s%s%s", p.file,
                          (int)parser.problem_mark.line + 1,
                          parser.problem ? parser.problem : "malformed document",
                          parser.context ? " " : "", parser.context ? parser.context : "");
        goto out_delete_parser;
    }
    p.doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        rc = kf_error_set(err, KF_ERR_CONFIG, false, "%s:1: the spec is empty", p.file);
        goto out_delete_doc;
    }
    rc = parse_root(&p, root);
    if (rc == KF_OK) {
        yaml_document_t extra;
        if (!yaml_parser_load(&parser, &extra)) {
            rc = kf_error_set(err, KF_ERR_CONFIG, false, "%s:%d: could not parse YAML: %s", p.file,
                              (int)parser.problem_mark.line + 1,
                              parser.problem ? parser.problem : "malformed document");
        } else {
            if (yaml_document_get_root_node(&extra))
                rc = kf_error_set(err, KF_ERR_CONFIG, false,
                                  "%s:%d: a spec file holds one YAML document", p.file,
                                  (int)extra.start_mark.line + 1);
            yaml_document_delete(&extra);
        }
    }
out_delete_doc:
    yaml_document_delete(&doc);
out_delete_parser:
    yaml_parser_delete(&parser);
    if (rc != KF_OK) {
        spec->ntables = saved_tables;
        spec->nsets = saved_sets;
    }
    return rc;
}

int kf_sim_spec_load_file(kf_sim_spec *spec, const char *path, kf_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return kf_error_set(err, KF_ERR_IO, false, "could not open spec \"%s\": %s", path,
                            strerror(errno));
    kf_sim_buf text = {0};
    char chunk[8192];
    size_t n;
    int rc = KF_OK;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (kf_sim_buf_append(&text, chunk, n) != KF_OK) {
            rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not read spec \"%s\": out of memory",
                              path);
            goto out_free_text;
        }
    }
    if (ferror(f)) {
        rc = kf_error_set(err, KF_ERR_IO, false, "could not read spec \"%s\": %s", path,
                          strerror(errno));
        goto out_free_text;
    }
    rc = kf_sim_spec_load_string(spec, path, text.data ? text.data : "", text.len, err);
out_free_text:
    kf_sim_buf_free(&text);
    fclose(f);
    return rc;
}
