/* Contract parsing: loads the YAML document, walks it with line numbers at hand and builds the
 * rule list, so every mistake is reported as "file:line: what is wrong". */
#include "contract.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "kfleet/config.h"

static const char *const KIND_NAMES[] = {
    "not_null", "unique", "allowed_values", "dtype",    "regex",
    "range",    "length", "min_rows",       "max_rows",
};
#define NKINDS (sizeof(KIND_NAMES) / sizeof(KIND_NAMES[0]))

static const char *const DTYPE_NAMES[] = {"int", "float", "string", "bool", "date", "timestamp"};
#define NDTYPES (sizeof(DTYPE_NAMES) / sizeof(DTYPE_NAMES[0]))

const char *kf_rule_kind_name(kf_rule_kind k)
{
    return (size_t)k < NKINDS ? KIND_NAMES[k] : "unknown";
}

const char *kf_dtype_name(kf_dtype t)
{
    return (size_t)t < NDTYPES ? DTYPE_NAMES[t] : "unknown";
}

/* Parser state: the document, the file name for messages, the contract being built. */
typedef struct parser {
    const char *name;
    yaml_document_t doc;
    kf_contract *c;
    kf_error *err;
} parser;

static int fail(parser *p, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(parser *p, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return kf_error_set(p->err, KF_ERR_CONFIG, false, "%s:%zu: %s", p->name,
                        n ? n->start_mark.line + 1 : 1, msg);
}

static int nomem(parser *p)
{
    return kf_error_set(p->err, KF_ERR_NOMEM, false, "%s: could not allocate contract", p->name);
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *node(parser *p, int id)
{
    return yaml_document_get_node(&p->doc, id);
}

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "empty";
    }
}

/* Rejects a key given twice in one mapping (libyaml keeps both). */
static int check_unique_keys(parser *p, yaml_node_t *map)
{
    for (yaml_node_pair_t *a = map->data.mapping.pairs.start; a < map->data.mapping.pairs.top;
         a++) {
        yaml_node_t *ka = node(p, a->key);
        if (!scalar(ka))
            return fail(p, ka, "mapping keys must be scalars");
        for (yaml_node_pair_t *b = a + 1; b < map->data.mapping.pairs.top; b++) {
            const char *kb = scalar(node(p, b->key));
            if (kb && strcmp(kb, scalar(ka)) == 0)
                return fail(p, node(p, b->key), "key \"%s\" is given twice", kb);
        }
    }
    return KF_OK;
}

/* Sets *out to the finite number n holds, or to 0 and fails; *out is written on every path. */
static int parse_double(parser *p, yaml_node_t *n, const char *what, double *out)
{
    *out = 0;
    const char *s = scalar(n);
    if (!s)
        return fail(p, n, "%s must be a number, not %s", what, node_kind(n));
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v))
        return fail(p, n, "%s must be a number, not \"%s\"", what, s);
    *out = v;
    return KF_OK;
}

static int parse_count(parser *p, yaml_node_t *n, const char *what, int64_t min, int64_t max,
                       int64_t *out)
{
    const char *s = scalar(n);
    if (!s)
        return fail(p, n, "%s must be an integer, not %s", what, node_kind(n));
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno)
        return fail(p, n, "%s must be an integer, not \"%s\"", what, s);
    if (v < min || v > max)
        return fail(p, n, "%s %lld is out of range (%lld to %lld)", what, v, (long long)min,
                    (long long)max);
    *out = v;
    return KF_OK;
}

static bool is_integer_text(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static int add_string(parser *p, char ***list, size_t *n, const char *s)
{
    char **grown = realloc(*list, (*n + 1) * sizeof(**list));
    if (!grown)
        return nomem(p);
    *list = grown;
    if (!(grown[*n] = strdup(s)))
        return nomem(p);
    (*n)++;
    return KF_OK;
}

static int parse_string_list(parser *p, yaml_node_t *n, const char *what, char ***list, size_t *cnt)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(p, n, "%s must be a list, not %s", what, node_kind(n));
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *item = node(p, *it);
        if (!scalar(item))
            return fail(p, item, "items of %s must be scalars, not %s", what, node_kind(item));
        int rc = add_string(p, list, cnt, scalar(item));
        if (rc != KF_OK)
            return rc;
    }
    return KF_OK;
}

static int compile_regex(parser *p, yaml_node_t *n, const char *pattern, pcre2_code **out)
{
    int code;
    PCRE2_SIZE at;
    *out = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code, &at, NULL);
    if (!*out) {
        PCRE2_UCHAR buf[160];
        pcre2_get_error_message(code, buf, sizeof(buf));
        return fail(p, n, "invalid regular expression \"%s\" at offset %zu: %s", pattern,
                    (size_t)at, (const char *)buf);
    }
    return KF_OK;
}

static int parse_match(parser *p, yaml_node_t *n)
{
    if (n->type != YAML_MAPPING_NODE)
        return fail(p, n, "\"match\" must be a mapping with tables and/or topics, not %s",
                    node_kind(n));
    int rc = check_unique_keys(p, n);
    if (rc != KF_OK)
        return rc;
    kf_contract *c = p->c;
    for (yaml_node_pair_t *kv = n->data.mapping.pairs.start; kv < n->data.mapping.pairs.top; kv++) {
        yaml_node_t *k = node(p, kv->key), *v = node(p, kv->value);
        if (strcmp(scalar(k), "tables") == 0) {
            if ((rc = parse_string_list(p, v, "\"match.tables\"", &c->tables, &c->ntables)))
                return rc;
            for (size_t i = 0; i < c->ntables; i++) {
                const char *dot = strchr(c->tables[i], '.');
                if (!dot || dot == c->tables[i] || !dot[1] || strchr(dot + 1, '.'))
                    return fail(p, v, "table \"%s\" must be written as database.table",
                                c->tables[i]);
            }
        } else if (strcmp(scalar(k), "topics") == 0) {
            if ((rc = parse_string_list(p, v, "\"match.topics\"", &c->topics, &c->ntopics)))
                return rc;
            c->topic_res = calloc(c->ntopics ? c->ntopics : 1, sizeof(*c->topic_res));
            if (!c->topic_res)
                return nomem(p);
            for (size_t i = 0; i < c->ntopics; i++)
                if ((rc = compile_regex(p, v, c->topics[i], &c->topic_res[i])))
                    return rc;
        } else {
            return fail(p, k, "unknown key \"match.%s\" (expected tables or topics)", scalar(k));
        }
    }
    return KF_OK;
}

static int find_kind(const char *name, bool dataset)
{
    for (size_t i = 0; i < NKINDS; i++) {
        bool is_dataset = i >= KF_RULE_MIN_ROWS;
        if (is_dataset == dataset && strcmp(KIND_NAMES[i], name) == 0)
            return (int)i;
    }
    return -1;
}

static int parse_bounds(parser *p, kf_rule *r, yaml_node_t *v)
{
    const char *what = r->kind == KF_RULE_RANGE ? "range" : "length";
    if (v->type != YAML_MAPPING_NODE)
        return fail(p, v, "\"%s\" takes a mapping with min and/or max, not %s", what, node_kind(v));
    int rc = check_unique_keys(p, v);
    if (rc != KF_OK)
        return rc;
    for (yaml_node_pair_t *kv = v->data.mapping.pairs.start; kv < v->data.mapping.pairs.top; kv++) {
        yaml_node_t *k = node(p, kv->key), *val = node(p, kv->value);
        bool is_min = strcmp(scalar(k), "min") == 0;
        if (!is_min && strcmp(scalar(k), "max") != 0)
            return fail(p, k, "unknown key \"%s\" in %s (expected min or max)", scalar(k), what);
        double d;
        if ((rc = parse_double(p, val, is_min ? "min" : "max", &d)))
            return rc;
        if (r->kind == KF_RULE_LENGTH && (d < 0 || d != floor(d)))
            return fail(p, val, "length %s must be a whole number of at least 0", scalar(k));
        if (is_min) {
            r->has_min = true;
            r->min = d;
        } else {
            r->has_max = true;
            r->max = d;
        }
    }
    if (!r->has_min && !r->has_max)
        return fail(p, v, "\"%s\" needs min or max", what);
    if (r->has_min && r->has_max && r->min > r->max)
        return fail(p, v, "%s min %g is greater than max %g", what, r->min, r->max);
    return KF_OK;
}

/* The rule's parameter: the value under its kind key. */
static int parse_param(parser *p, kf_rule *r, yaml_node_t *v)
{
    const char *s = v ? scalar(v) : NULL;
    switch (r->kind) {
    case KF_RULE_NOT_NULL:
    case KF_RULE_UNIQUE:
        if (v && !(s && (!*s || strcmp(s, "true") == 0 || strcmp(s, "~") == 0 ||
                         strcmp(s, "null") == 0)))
            return fail(p, v, "\"%s\" takes no value (write it alone, or \"%s: true\")",
                        kf_rule_kind_name(r->kind), kf_rule_kind_name(r->kind));
        return KF_OK;
    case KF_RULE_ALLOWED_VALUES: {
        int rc = parse_string_list(p, v, "\"allowed_values\"", &r->values, &r->nvalues);
        if (rc == KF_OK && r->nvalues == 0)
            return fail(p, v, "\"allowed_values\" needs at least one value");
        return rc;
    }
    case KF_RULE_DTYPE:
        for (size_t i = 0; s && i < NDTYPES; i++) {
            if (strcmp(s, DTYPE_NAMES[i]) == 0) {
                r->dtype = (kf_dtype)i;
                return KF_OK;
            }
        }
        return fail(p, v,
                    "unknown dtype \"%s\" (expected int, float, string, bool, date or "
                    "timestamp)",
                    s ? s : node_kind(v));
    case KF_RULE_REGEX:
        if (!s || !*s)
            return fail(p, v, "\"regex\" takes a non-empty pattern");
        if (!(r->pattern = strdup(s)))
            return nomem(p);
        {
            int rc = compile_regex(p, v, s, &r->re);
            if (rc != KF_OK)
                return rc;
        }
        if (!(r->match = pcre2_match_data_create_from_pattern(r->re, NULL)))
            return nomem(p);
        return KF_OK;
    case KF_RULE_RANGE:
    case KF_RULE_LENGTH:
        return parse_bounds(p, r, v);
    case KF_RULE_MIN_ROWS:
    case KF_RULE_MAX_ROWS:
        return parse_count(p, v, kf_rule_kind_name(r->kind), 0, INT64_MAX, &r->rows);
    }
    return fail(p, v, "unknown rule");
}

static int parse_window(parser *p, kf_rule *r, yaml_node_t *v)
{
    const char *s = scalar(v);
    if (!s)
        return fail(p, v, "\"window\" must be a record count or a time span, not %s", node_kind(v));
    if (r->kind == KF_RULE_UNIQUE && is_integer_text(s)) {
        r->window_ms = 0;
        return parse_count(p, v, "window", 1, KF_UNIQUE_MAX_KEYS, &r->window_count);
    }
    if (r->kind != KF_RULE_UNIQUE && strcmp(s, "batch") == 0) {
        r->window_ms = 0;
        return KF_OK;
    }
    int64_t ms;
    if (kf_config_parse_duration(s, &ms) != KF_OK || ms <= 0 || is_integer_text(s))
        return fail(p, v,
                    r->kind == KF_RULE_UNIQUE
                        ? "window \"%s\" must be a record count or a time span such as 5m"
                        : "window \"%s\" must be \"batch\" or a time span such as 1m",
                    s);
    r->window_ms = ms;
    r->window_count = 0;
    return KF_OK;
}

/* One list entry: a bare kind name, or a mapping of one kind key plus options. */
static int parse_rule(parser *p, yaml_node_t *n, const char *column, size_t col, kf_rule *r)
{
    bool dataset = column == NULL;
    yaml_node_t *kind_node = NULL, *param = NULL, *id = NULL, *sev = NULL, *window = NULL,
                *max_keys = NULL;
    memset(r, 0, sizeof(*r));
    r->line = (int)n->start_mark.line + 1;
    r->col = col;
    if (n->type == YAML_SCALAR_NODE) {
        kind_node = n;
    } else if (n->type == YAML_MAPPING_NODE) {
        int rc = check_unique_keys(p, n);
        if (rc != KF_OK)
            return rc;
        for (yaml_node_pair_t *kv = n->data.mapping.pairs.start; kv < n->data.mapping.pairs.top;
             kv++) {
            yaml_node_t *k = node(p, kv->key), *v = node(p, kv->value);
            const char *ks = scalar(k);
            if (strcmp(ks, "id") == 0) {
                id = v;
            } else if (strcmp(ks, "severity") == 0) {
                sev = v;
            } else if (strcmp(ks, "window") == 0) {
                window = v;
            } else if (strcmp(ks, "max_keys") == 0) {
                max_keys = v;
            } else if (find_kind(ks, dataset) >= 0) {
                if (kind_node)
                    return fail(p, k, "one rule per list entry: \"%s\" and \"%s\" are both given",
                                scalar(kind_node), ks);
                kind_node = k;
                param = v;
            } else {
                return fail(p, k,
                            dataset ? "unknown dataset rule or option \"%s\" (expected min_rows, "
                                      "max_rows, id, severity, window)"
                                    : "unknown rule or option \"%s\" (expected not_null, unique, "
                                      "allowed_values, dtype, regex, range, length, id, severity, "
                                      "window, max_keys)",
                            ks);
            }
        }
        if (!kind_node)
            return fail(p, n, "rule entry names no rule");
    } else {
        return fail(p, n, "a rule must be a name or a mapping, not %s", node_kind(n));
    }
    int kind = find_kind(scalar(kind_node), dataset);
    if (kind < 0)
        return fail(p, kind_node,
                    dataset ? "unknown dataset rule \"%s\" (expected min_rows or max_rows)"
                            : "unknown rule \"%s\" (expected not_null, unique, allowed_values, "
                              "dtype, regex, range or length)",
                    scalar(kind_node));
    r->kind = (kf_rule_kind)kind;
    if (n->type == YAML_SCALAR_NODE && kind != KF_RULE_NOT_NULL && kind != KF_RULE_UNIQUE)
        return fail(p, n, "rule \"%s\" needs a value (\"%s: ...\")", scalar(n), scalar(n));
    int rc = parse_param(p, r, param);
    if (rc != KF_OK)
        return rc;
    if (column && !(r->column = strdup(column)))
        return nomem(p);
    if (r->kind == KF_RULE_UNIQUE) {
        r->window_count = KF_UNIQUE_DEFAULT_WINDOW;
        r->max_keys = KF_UNIQUE_DEFAULT_MAX_KEYS;
    }
    if (window) {
        if (r->kind != KF_RULE_UNIQUE && !dataset)
            return fail(p, window, "\"window\" applies to unique and dataset rules only");
        if ((rc = parse_window(p, r, window)))
            return rc;
    }
    if (max_keys) {
        if (r->kind != KF_RULE_UNIQUE)
            return fail(p, max_keys, "\"max_keys\" applies to unique rules only");
        if ((rc = parse_count(p, max_keys, "max_keys", 1, KF_UNIQUE_MAX_KEYS, &r->max_keys)))
            return rc;
    }
    if (sev) {
        const char *s = scalar(sev);
        if (s && strcmp(s, "quarantine") == 0)
            r->severity = KF_SEVERITY_QUARANTINE;
        else if (s && strcmp(s, "warn") == 0)
            r->severity = KF_SEVERITY_WARN;
        else
            return fail(p, sev, "severity must be quarantine or warn, not \"%s\"",
                        s ? s : node_kind(sev));
    }
    char derived[512];
    if (id) {
        const char *s = scalar(id);
        if (!s || !*s)
            return fail(p, id, "rule id must be a non-empty string");
        snprintf(derived, sizeof(derived), "%s", s);
    } else if (column) {
        snprintf(derived, sizeof(derived), "%s.%s.%s", p->c->name, column,
                 kf_rule_kind_name(r->kind));
    } else {
        snprintf(derived, sizeof(derived), "%s.%s", p->c->name, kf_rule_kind_name(r->kind));
    }
    /* kfleet.decode marks undecodable records in the DLQ; the prefix stays kfleet's */
    if (strncmp(derived, "kfleet.", 7) == 0)
        return fail(p, id ? id : n,
                    "rule id \"%s\" is reserved: ids starting with \"kfleet.\" "
                    "belong to kfleet%s",
                    derived, id ? "" : "; rename the contract or give this rule an explicit id");
    for (size_t i = 0; i < p->c->nrules; i++)
        if (strcmp(p->c->rules[i].id, derived) == 0)
            return fail(p, id ? id : n, "rule id \"%s\" is already used at line %d%s", derived,
                        p->c->rules[i].line, id ? "" : "; give this rule an explicit id");
    if (!(r->id = strdup(derived)))
        return nomem(p);
    return KF_OK;
}

static void rule_free(kf_rule *r)
{
    free(r->id);
    free(r->column);
    for (size_t i = 0; i < r->nvalues; i++)
        free(r->values[i]);
    free(r->values);
    free(r->pattern);
    pcre2_match_data_free(r->match);
    pcre2_code_free(r->re);
}

/* Appends a parsed rule (taking its contents) to the contract. */
static int push_rule(parser *p, yaml_node_t *n, const char *column, size_t col)
{
    kf_contract *c = p->c;
    kf_rule r;
    int rc = parse_rule(p, n, column, col, &r);
    if (rc == KF_OK) {
        kf_rule *grown = realloc(c->rules, (c->nrules + 1) * sizeof(*grown));
        if (grown) {
            c->rules = grown;
            c->rules[c->nrules++] = r;
            return KF_OK;
        }
        rc = nomem(p);
    }
    rule_free(&r);
    return rc;
}

static int parse_columns(parser *p, yaml_node_t *n)
{
    if (n->type != YAML_MAPPING_NODE)
        return fail(p, n, "\"columns\" must map column names to rule lists, not %s", node_kind(n));
    int rc = check_unique_keys(p, n);
    if (rc != KF_OK)
        return rc;
    kf_contract *c = p->c;
    for (yaml_node_pair_t *kv = n->data.mapping.pairs.start; kv < n->data.mapping.pairs.top; kv++) {
        yaml_node_t *k = node(p, kv->key), *v = node(p, kv->value);
        const char *column = scalar(k);
        if (!*column)
            return fail(p, k, "column name must not be empty");
        if (v->type != YAML_SEQUENCE_NODE)
            return fail(p, v, "rules of column \"%s\" must be a list, not %s", column,
                        node_kind(v));
        if (v->data.sequence.items.start == v->data.sequence.items.top)
            return fail(p, v, "column \"%s\" has no rules", column);
        if ((rc = add_string(p, &c->columns, &c->ncolumns, column)))
            return rc;
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++)
            if ((rc = push_rule(p, node(p, *it), column, c->ncolumns - 1)))
                return rc;
    }
    return KF_OK;
}

static int parse_dataset(parser *p, yaml_node_t *n)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(p, n, "\"dataset\" must be a list of rules, not %s", node_kind(n));
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        int rc = push_rule(p, node(p, *it), NULL, 0);
        if (rc != KF_OK)
            return rc;
    }
    return KF_OK;
}

static int parse_root(parser *p)
{
    yaml_node_t *root = yaml_document_get_root_node(&p->doc);
    if (!root)
        return kf_error_set(p->err, KF_ERR_CONFIG, false, "%s:1: contract is empty", p->name);
    if (root->type != YAML_MAPPING_NODE)
        return fail(p, root, "a contract must be a mapping, not %s", node_kind(root));
    int rc = check_unique_keys(p, root);
    if (rc != KF_OK)
        return rc;
    yaml_node_t *name = NULL, *match = NULL, *columns = NULL, *dataset = NULL;
    for (yaml_node_pair_t *kv = root->data.mapping.pairs.start; kv < root->data.mapping.pairs.top;
         kv++) {
        yaml_node_t *k = node(p, kv->key), *v = node(p, kv->value);
        const char *ks = scalar(k);
        if (strcmp(ks, "contract") == 0)
            name = v;
        else if (strcmp(ks, "match") == 0)
            match = v;
        else if (strcmp(ks, "columns") == 0)
            columns = v;
        else if (strcmp(ks, "dataset") == 0)
            dataset = v;
        else
            return fail(p, k, "unknown key \"%s\" (expected contract, match, columns, dataset)",
                        ks);
    }
    if (!name)
        return fail(p, root, "missing key \"contract\" (the contract's name)");
    const char *ns = scalar(name);
    if (!ns || !*ns || strpbrk(ns, " \t,"))
        return fail(p, name, "contract name must be a non-empty word without blanks or commas");
    if (!(p->c->name = strdup(ns)))
        return nomem(p);
    if (match && (rc = parse_match(p, match)))
        return rc;
    if (columns && (rc = parse_columns(p, columns)))
        return rc;
    if (dataset && (rc = parse_dataset(p, dataset)))
        return rc;
    if (p->c->nrules == 0)
        return fail(p, root, "contract \"%s\" has no rules", ns);
    return KF_OK;
}

int kf_contract_parse(const char *name, const char *text, size_t len, kf_contract **out,
                      kf_error *err)
{
    *out = NULL;
    parser p = {.name = name, .err = err};
    yaml_parser_t yp;
    if (!yaml_parser_initialize(&yp))
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not initialise the YAML parser");
    yaml_parser_set_input_string(&yp, (const unsigned char *)text, len);
    int rc;
    if (!yaml_parser_load(&yp, &p.doc)) {
        rc = kf_error_set(err, KF_ERR_CONFIG, false, "%s:%zu: invalid YAML: %s", name,
                          yp.problem_mark.line + 1, yp.problem ? yp.problem : "syntax error");
        yaml_parser_delete(&yp);
        return rc;
    }
    yaml_parser_delete(&yp);
    p.c = calloc(1, sizeof(*p.c));
    if (!p.c) {
        rc = nomem(&p);
        goto out_free_doc;
    }
    if (!(p.c->path = strdup(name))) {
        rc = nomem(&p);
        goto out_free_contract;
    }
    rc = parse_root(&p);
    if (rc != KF_OK)
        goto out_free_contract;
    yaml_document_delete(&p.doc);
    *out = p.c;
    return KF_OK;

out_free_contract:
    kf_contract_destroy(p.c);
out_free_doc:
    yaml_document_delete(&p.doc);
    return rc;
}

int kf_contract_load(const char *path, kf_contract **out, kf_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return kf_error_set(err, KF_ERR_IO, false, "could not open contract \"%s\": %s", path,
                            strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    int rc = KF_OK;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            if (cap > 16u * 1024 * 1024) {
                rc = kf_error_set(err, KF_ERR_CONFIG, false,
                                  "cannot read contract \"%s\": larger than 16 MiB", path);
                goto out_free_text;
            }
            char *grown = realloc(text, cap);
            if (!grown) {
                rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate contract text");
                goto out_free_text;
            }
            text = grown;
        }
        size_t n = fread(text + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        rc = kf_error_set(err, KF_ERR_IO, false, "could not read contract \"%s\": %s", path,
                          strerror(errno));
        goto out_free_text;
    }
    rc = kf_contract_parse(path, text ? text : "", len, out, err);

out_free_text:
    free(text);
    fclose(f);
    return rc;
}

void kf_contract_destroy(kf_contract *c)
{
    if (!c)
        return;
    free(c->path);
    free(c->name);
    for (size_t i = 0; i < c->ntables; i++)
        free(c->tables[i]);
    free(c->tables);
    for (size_t i = 0; i < c->ntopics; i++) {
        free(c->topics[i]);
        if (c->topic_res)
            pcre2_code_free(c->topic_res[i]);
    }
    free(c->topics);
    free(c->topic_res);
    for (size_t i = 0; i < c->nrules; i++)
        rule_free(&c->rules[i]);
    free(c->rules);
    for (size_t i = 0; i < c->ncolumns; i++)
        free(c->columns[i]);
    free(c->columns);
    free(c);
}

static bool topic_is_table(const char *prefix, const char *topic, const char *table)
{
    size_t pl = strlen(prefix);
    if (strncmp(topic, prefix, pl) != 0 || topic[pl] != '.')
        return false;
    const char *rest = topic + pl + 1;
    if (strcmp(rest, table) == 0)
        return true;
    return strncmp(rest, "evolved.", 8) == 0 && strcmp(rest + 8, table) == 0;
}

bool kf_contract_matches(const kf_contract *c, const char *prefix, const char *topic)
{
    if (c->ntables == 0 && c->ntopics == 0)
        return true;
    for (size_t i = 0; i < c->ntables; i++)
        if (topic_is_table(prefix, topic, c->tables[i]))
            return true;
    for (size_t i = 0; i < c->ntopics; i++) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(c->topic_res[i], NULL);
        if (!md)
            return false;
        int rc = pcre2_match(c->topic_res[i], (PCRE2_SPTR)topic, strlen(topic), 0, 0, md, NULL);
        pcre2_match_data_free(md);
        if (rc >= 0)
            return true;
    }
    return false;
}
