/* Loading the configuration file: YAML (libyaml) flattened to dotted keys, every value applied
 * with its file:line as the source. */
#include "config_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_FILE_BYTES (4u << 20) /* a configuration file, not a data set */
#define MAX_DEPTH      32
#define MAX_KEYS       10000  /* keys set by one file */
#define MAX_PAIRS      100000 /* mapping entries walked: bounds alias expansion ("billion laughs") */

typedef struct walk_ctx {
    kf_config *cfg;
    yaml_document_t *doc;
    const char *name;
    char **seen; /* flattened keys set so far, to reject duplicates */
    size_t nseen;
    size_t npairs;
    kf_error *err;
} walk_ctx;

static bool is_null(const yaml_node_t *n)
{
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

/* Records key as set by this file; fails if it was set before. */
static int mark_seen(walk_ctx *c, const char *key, const char *source)
{
    for (size_t i = 0; i < c->nseen; i++)
        if (strcmp(c->seen[i], key) == 0)
            return kf_error_set(c->err, KF_ERR_CONFIG, false,
                                "%s: configuration key \"%s\" is set twice in this file", source,
                                key);
    if (c->nseen >= MAX_KEYS)
        return kf_error_set(c->err, KF_ERR_CONFIG, false, "%s: more than %d keys in this file",
                            source, MAX_KEYS);
    if ((c->nseen & (c->nseen - 1)) == 0) { /* grow at powers of two */
        char **grown = realloc(c->seen, (c->nseen ? c->nseen * 2 : 16) * sizeof(char *));
        if (!grown)
            return kf_error_set(c->err, KF_ERR_NOMEM, false, "out of memory");
        c->seen = grown;
    }
    c->seen[c->nseen] = strdup(key);
    if (!c->seen[c->nseen])
        return kf_error_set(c->err, KF_ERR_NOMEM, false, "out of memory");
    c->nseen++;
    return KF_OK;
}

static int apply_sequence(walk_ctx *c, const char *key, yaml_node_t *seq, const char *source)
{
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    const char **items = calloc(n ? n : 1, sizeof(char *));
    if (!items)
        return kf_error_set(c->err, KF_ERR_NOMEM, false, "out of memory");
    int rc = KF_OK;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = yaml_document_get_node(c->doc, seq->data.sequence.items.start[i]);
        if (!item || item->type != YAML_SCALAR_NODE || is_null(item)) {
            rc = kf_error_set(c->err, KF_ERR_CONFIG, false,
                              "%s:%zu: items of \"%s\" must be non-null scalars", c->name,
                              (item ? item->start_mark.line : seq->start_mark.line) + 1, key);
            goto out_free_items;
        }
        items[i] = (const char *)item->data.scalar.value;
    }
    rc = kfc_set_items(c->cfg, key, items, n, source, c->err);
out_free_items:
    free(items);
    return rc;
}

static int walk(walk_ctx *c, yaml_node_t *map, const char *prefix, int depth)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(c->doc, p->value);
        if (!kn || !vn)
            return kf_error_set(c->err, KF_ERR_CONFIG, false, "%s: malformed YAML document",
                                c->name);
        char source[1100];
        snprintf(source, sizeof(source), "%.1024s:%zu", c->name, kn->start_mark.line + 1);
        if (++c->npairs > MAX_PAIRS)
            return kf_error_set(c->err, KF_ERR_CONFIG, false,
                                "%s: more than %d mapping entries after expanding aliases", source,
                                MAX_PAIRS);
        if (kn->type != YAML_SCALAR_NODE || !*kn->data.scalar.value ||
            strlen((const char *)kn->data.scalar.value) != kn->data.scalar.length)
            return kf_error_set(c->err, KF_ERR_CONFIG, false,
                                "%s: configuration keys must be non-empty scalars", source);
        const char *name = (const char *)kn->data.scalar.value;
        size_t len = (prefix ? strlen(prefix) + 1 : 0) + strlen(name) + 1;
        char *key = malloc(len);
        if (!key)
            return kf_error_set(c->err, KF_ERR_NOMEM, false, "out of memory");
        snprintf(key, len, "%s%s%s", prefix ? prefix : "", prefix ? "." : "", name);

        int rc;
        const kf_config_key *k = kfc_find(c->cfg->spec, key, NULL);
        if (vn->type == YAML_MAPPING_NODE) {
            if (k)
                rc = kf_error_set(c->err, KF_ERR_CONFIG, false,
                                  "%s: invalid value for \"%s\": expected a %s, got a mapping",
                                  source, key, kfc_type_name(k->type));
            else if (depth >= MAX_DEPTH)
                rc = kf_error_set(c->err, KF_ERR_CONFIG, false,
                                  "%s: mappings nested deeper than %d levels", source, MAX_DEPTH);
            else
                rc = walk(c, vn, key, depth + 1);
        } else {
            rc = mark_seen(c, key, source);
            if (rc == KF_OK && vn->type == YAML_SEQUENCE_NODE)
                rc = apply_sequence(c, key, vn, source);
            else if (rc == KF_OK)
                rc = kf_config_set(c->cfg, key,
                                   is_null(vn) ? NULL : (const char *)vn->data.scalar.value, source,
                                   false, c->err);
        }
        free(key);
        if (rc != KF_OK)
            return rc;
    }
    return KF_OK;
}

static int parse_error(yaml_parser_t *parser, const char *name, kf_error *err)
{
    if (parser->error == YAML_MEMORY_ERROR)
        return kf_error_set(err, KF_ERR_NOMEM, false, "out of memory");
    const yaml_mark_t *mark = parser->problem_mark.line || !parser->context ? &parser->problem_mark
                                                                            : &parser->context_mark;
    if (parser->context)
        return kf_error_set(err, KF_ERR_CONFIG, false, "%s:%zu: could not parse YAML: %s %s", name,
                            mark->line + 1, parser->problem ? parser->problem : "error",
                            parser->context);
    return kf_error_set(err, KF_ERR_CONFIG, false, "%s:%zu: could not parse YAML: %s", name,
                        mark->line + 1, parser->problem ? parser->problem : "error");
}

int kf_config_load_yaml(kf_config *cfg, const char *name, const char *text, size_t len,
                        kf_error *err)
{
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    int rc = KF_OK;
    if (!yaml_parser_initialize(&parser))
        return kf_error_set(err, KF_ERR_NOMEM, false, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = parse_error(&parser, name, err);
        goto out_delete_parser;
    }
    /* A second document would be silently ignored: refuse it. */
    if (!yaml_parser_load(&parser, &extra)) {
        rc = parse_error(&parser, name, err);
        goto out_delete_doc;
    }
    yaml_node_t *extra_root = yaml_document_get_root_node(&extra);
    size_t extra_line = extra_root ? extra_root->start_mark.line + 1 : 0;
    yaml_document_delete(&extra);
    if (extra_root) {
        rc = kf_error_set(err, KF_ERR_CONFIG, false,
                          "%s:%zu: more than one YAML document in a configuration file", name,
                          extra_line);
        goto out_delete_doc;
    }

    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || (root->type == YAML_SCALAR_NODE && is_null(root)))
        goto out_delete_doc; /* an empty file sets nothing */
    if (root->type != YAML_MAPPING_NODE) {
        rc = kf_error_set(err, KF_ERR_CONFIG, false,
                          "%s:%zu: expected a mapping of configuration keys", name,
                          root->start_mark.line + 1);
        goto out_delete_doc;
    }
    walk_ctx c = {cfg, &doc, name, NULL, 0, 0, err};
    rc = walk(&c, root, NULL, 0);
    for (size_t i = 0; i < c.nseen; i++)
        free(c.seen[i]);
    free(c.seen);
out_delete_doc:
    yaml_document_delete(&doc);
out_delete_parser:
    yaml_parser_delete(&parser);
    return rc;
}

int kf_config_load_file(kf_config *cfg, const char *path, kf_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return kf_error_set(err, KF_ERR_CONFIG, false,
                            "could not open configuration file \"%s\": %s", path, strerror(errno));
    int rc = KF_OK;
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        rc = kf_error_set(err, KF_ERR_NOMEM, false, "out of memory");
        goto out_close;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_FILE_BYTES) {
                rc = kf_error_set(err, KF_ERR_CONFIG, false,
                                  "configuration file \"%s\" is larger than %u bytes", path,
                                  MAX_FILE_BYTES);
                goto out_free_buf;
            }
            char *grown = realloc(buf, cap * 2);
            if (!grown) {
                rc = kf_error_set(err, KF_ERR_NOMEM, false, "out of memory");
                goto out_free_buf;
            }
            buf = grown;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        rc = kf_error_set(err, KF_ERR_CONFIG, false, "could not read configuration file \"%s\": %s",
                          path, strerror(errno));
        goto out_free_buf;
    }
    rc = kf_config_load_yaml(cfg, path, buf, len, err);
out_free_buf:
    free(buf);
out_close:
    fclose(f);
    return rc;
}
