/* The configuration object: binds a program's key table to its struct, applies values from the
 * environment and flags, keeps pass-through pairs, and runs the start-up sequence for main(). */
#include "config_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

const char *const kf_config_default_passthrough[] = {"kafka.", "registry.", "pg.", NULL};

/* Flags every program has; tables may not reuse them. */
static const char *const reserved_flags[] = {
    "config", "set", "help", "version", "print-config", "config-reference", NULL};
static const char reserved_short[] = "chV";

static const char *const *prefixes_of(const kf_config_spec *spec)
{
    return spec->passthrough ? spec->passthrough : kf_config_default_passthrough;
}

const kf_config_key *kfc_find(const kf_config_spec *spec, const char *name, size_t *index)
{
    for (size_t i = 0; spec->keys[i].name; i++) {
        if (strcmp(spec->keys[i].name, name) == 0) {
            if (index)
                *index = i;
            return &spec->keys[i];
        }
    }
    return NULL;
}

const char *kfc_passthrough_prefix(const kf_config_spec *spec, const char *name)
{
    for (const char *const *p = prefixes_of(spec); *p; p++)
        if (strncmp(name, *p, strlen(*p)) == 0)
            return *p;
    return NULL;
}

int kf_config_env_name(const char *key, char *buf, size_t size)
{
    size_t n = strlen(key);
    if (size < n + sizeof("KFLEET_"))
        return KF_ERR_INVALID;
    memcpy(buf, "KFLEET_", 7);
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        buf[7 + i] = (c == '.' || c == '-') ? '_' : (char)toupper((unsigned char)c);
    }
    buf[7 + n] = '\0';
    return KF_OK;
}

static bool valid_key_name(const char *name)
{
    if (!*name || name[0] == '.' || name[strlen(name) - 1] == '.' || strstr(name, ".."))
        return false;
    for (const char *p = name; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '.' || *p == '_' ||
              *p == '-'))
            return false;
    return true;
}

static bool flag_taken(const kf_config_spec *spec, size_t upto, const char *flag, char short_flag)
{
    for (size_t j = 0; j < upto; j++) {
        const kf_config_key *o = &spec->keys[j];
        if (flag && o->flag && strcmp(flag, o->flag) == 0)
            return true;
        if (short_flag && o->short_flag == short_flag)
            return true;
    }
    if (flag)
        for (const char *const *r = reserved_flags; *r; r++)
            if (strcmp(flag, *r) == 0)
                return true;
    return short_flag && strchr(reserved_short, short_flag) != NULL;
}

/* Checks one table entry against the ones before it; a failure is a bug in the program. */
static int check_key(const kf_config_spec *spec, size_t i, kf_error *err)
{
    const kf_config_key *k = &spec->keys[i];
    char env[256], other[256];
    if (!valid_key_name(k->name) || kf_config_env_name(k->name, env, sizeof(env)) != KF_OK)
        return kf_error_set(err, KF_ERR_INVALID, false, "invalid configuration key name \"%s\"",
                            k->name);
    for (size_t j = 0; j < i; j++) {
        kf_config_env_name(spec->keys[j].name, other, sizeof(other));
        if (strcmp(env, other) == 0)
            return kf_error_set(err, KF_ERR_INVALID, false,
                                "configuration keys \"%s\" and \"%s\" share the environment "
                                "variable %s",
                                spec->keys[j].name, k->name, env);
    }
    if (k->type == KF_CONFIG_ENUM && (!k->enum_values || !k->enum_values[0]))
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "enum configuration key \"%s\" has no values", k->name);
    if (k->flag && (!*k->flag || k->flag[0] == '-' || strchr(k->flag, '=')))
        return kf_error_set(err, KF_ERR_INVALID, false, "invalid flag \"%s\" for key \"%s\"",
                            k->flag, k->name);
    if (flag_taken(spec, i, k->flag, k->short_flag))
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "flag of configuration key \"%s\" is already taken", k->name);
    return KF_OK;
}

void kf_config_destroy(kf_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->nkeys; i++) {
        kfc_field_clear(cfg->store, &cfg->spec->keys[i]);
        free(cfg->sources[i]);
    }
    free(cfg->sources);
    for (size_t i = 0; i < cfg->npairs; i++) {
        free(cfg->pairs[i].key);
        free(cfg->pairs[i].value);
        free(cfg->pairs[i].source);
    }
    free(cfg->pairs);
    free(cfg->args);
    free(cfg);
}

int kf_config_new(const kf_config_spec *spec, void *store, kf_config **out, kf_error *err)
{
    *out = NULL;
    if (!spec || !spec->program || !spec->keys || !store)
        return kf_error_set(err, KF_ERR_INVALID, false, "configuration spec is incomplete");
    kf_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return kf_error_set(err, KF_ERR_NOMEM, false, "out of memory");
    cfg->spec = spec;
    cfg->store = store;
    while (spec->keys[cfg->nkeys].name)
        cfg->nkeys++;
    cfg->sources = calloc(cfg->nkeys + 1, sizeof(char *));
    if (!cfg->sources) {
        free(cfg);
        return kf_error_set(err, KF_ERR_NOMEM, false, "out of memory");
    }
    /* Zero the string and list fields first so destroy is safe whatever fails below. */
    for (size_t i = 0; i < cfg->nkeys; i++) {
        const kf_config_key *k = &spec->keys[i];
        if (k->type == KF_CONFIG_STRING)
            *(char **)(void *)((char *)store + k->offset) = NULL;
        else if (k->type == KF_CONFIG_LIST)
            memset((char *)store + k->offset, 0, sizeof(kf_strlist));
    }
    int rc = KF_OK;
    for (size_t i = 0; i < cfg->nkeys; i++) {
        const kf_config_key *k = &spec->keys[i];
        rc = check_key(spec, i, err);
        if (rc != KF_OK)
            goto out_destroy;
        kfc_value v;
        char why[256] = "";
        rc = kfc_parse(k, k->default_value, &v, why, sizeof(why));
        if (rc == KF_ERR_INVALID && !k->default_value) {
            /* no default: numbers start at zero, enums at their first value */
            memset(&v, 0, sizeof(v));
            rc = KF_OK;
        }
        if (rc != KF_OK) {
            rc = kf_error_set(
                err, rc, false, "invalid default \"%s\" for configuration key \"%s\": %s",
                k->default_value, k->name, rc == KF_ERR_NOMEM ? "out of memory" : why);
            goto out_destroy;
        }
        kfc_value_store(store, k, &v);
    }
    *out = cfg;
    return KF_OK;

out_destroy:
    kf_config_destroy(cfg);
    return rc;
}

static int set_source(char **slot, const char *source)
{
    char *copy = strdup(source ? source : "");
    if (!copy)
        return KF_ERR_NOMEM;
    free(*slot);
    *slot = copy;
    return KF_OK;
}

static bool valid_passthrough_name(const char *rest)
{
    if (!*rest)
        return false;
    for (const char *p = rest; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '_' || *p == '-'))
            return false;
    return true;
}

static int set_pair(kf_config *cfg, const char *key, const char *value, const char *source,
                    kf_error *err)
{
    for (size_t i = 0; i < cfg->npairs; i++) {
        kfc_pair *p = &cfg->pairs[i];
        if (strcmp(p->key, key) == 0) {
            char *v = strdup(value);
            if (!v || set_source(&p->source, source) != KF_OK) {
                free(v);
                return kf_error_set(err, KF_ERR_NOMEM, false, "out of memory");
            }
            free(p->value);
            p->value = v;
            return KF_OK;
        }
    }
    if (cfg->npairs == cfg->cap_pairs) {
        size_t cap = cfg->cap_pairs ? cfg->cap_pairs * 2 : 16;
        kfc_pair *grown = realloc(cfg->pairs, cap * sizeof(*grown));
        if (!grown)
            return kf_error_set(err, KF_ERR_NOMEM, false, "out of memory");
        cfg->pairs = grown;
        cfg->cap_pairs = cap;
    }
    kfc_pair p = {strdup(key), strdup(value), strdup(source ? source : "")};
    if (!p.key || !p.value || !p.source) {
        free(p.key);
        free(p.value);
        free(p.source);
        return kf_error_set(err, KF_ERR_NOMEM, false, "out of memory");
    }
    cfg->pairs[cfg->npairs++] = p;
    return KF_OK;
}

static int unknown_key(const kf_config *cfg, const char *key, const char *source, kf_error *err)
{
    const char *hint = kfc_suggest(cfg->spec, key);
    if (hint)
        return kf_error_set(err, KF_ERR_CONFIG, false,
                            "%s: unknown configuration key \"%s\" (did you mean \"%s\"?)", source,
                            key, hint);
    return kf_error_set(err, KF_ERR_CONFIG, false, "%s: unknown configuration key \"%s\"", source,
                        key);
}

/* Applies a parsed value (v is consumed) to key index i. */
static int apply(kf_config *cfg, size_t i, kfc_value *v, const char *source, bool append,
                 kf_error *err)
{
    const kf_config_key *k = &cfg->spec->keys[i];
    int rc = set_source(&cfg->sources[i], source);
    if (rc == KF_OK && append && k->type == KF_CONFIG_LIST)
        rc = kfc_list_append(cfg->store, k, v);
    else if (rc == KF_OK)
        kfc_value_store(cfg->store, k, v);
    kfc_value_free(k, v);
    if (rc != KF_OK)
        return kf_error_set(err, KF_ERR_NOMEM, false, "out of memory");
    return KF_OK;
}

static int invalid_value(const kf_config_key *k, const char *value, const char *source,
                         const char *why, kf_error *err)
{
    if (!value || (k->flags & KF_CONFIG_SECRET) || kf_config_key_is_secret(k->name))
        return kf_error_set(err, KF_ERR_CONFIG, false, "%s: invalid value for \"%s\": %s", source,
                            k->name, why);
    return kf_error_set(err, KF_ERR_CONFIG, false, "%s: invalid value \"%.80s\" for \"%s\": %s",
                        source, value, k->name, why);
}

int kf_config_set(kf_config *cfg, const char *key, const char *value, const char *source,
                  bool append, kf_error *err)
{
    size_t i;
    const kf_config_key *k = kfc_find(cfg->spec, key, &i);
    if (!k) {
        const char *prefix = kfc_passthrough_prefix(cfg->spec, key);
        if (!prefix)
            return unknown_key(cfg, key, source, err);
        if (!valid_passthrough_name(key + strlen(prefix)))
            return kf_error_set(err, KF_ERR_CONFIG, false, "%s: invalid pass-through key \"%s\"",
                                source, key);
        if (!value)
            return kf_error_set(err, KF_ERR_CONFIG, false,
                                "%s: pass-through key \"%s\" needs a value, got null", source, key);
        return set_pair(cfg, key, value, source, err);
    }
    kfc_value v;
    char why[256] = "";
    int rc = kfc_parse(k, value, &v, why, sizeof(why));
    if (rc == KF_ERR_NOMEM)
        return kf_error_set(err, rc, false, "out of memory");
    if (rc != KF_OK)
        return invalid_value(k, value, source, why, err);
    return apply(cfg, i, &v, source, append, err);
}

int kfc_set_items(kf_config *cfg, const char *key, const char *const *items, size_t n,
                  const char *source, kf_error *err)
{
    size_t i;
    const kf_config_key *k = kfc_find(cfg->spec, key, &i);
    if (!k) {
        if (!kfc_passthrough_prefix(cfg->spec, key))
            return unknown_key(cfg, key, source, err);
        size_t len = 1;
        for (size_t j = 0; j < n; j++)
            len += strlen(items[j]) + 1;
        char *joined = malloc(len);
        if (!joined)
            return kf_error_set(err, KF_ERR_NOMEM, false, "out of memory");
        joined[0] = '\0';
        for (size_t j = 0; j < n; j++) {
            if (j)
                strcat(joined, ",");
            strcat(joined, items[j]);
        }
        int rc = kf_config_set(cfg, key, joined, source, false, err);
        free(joined);
        return rc;
    }
    kfc_value v;
    char why[256] = "";
    int rc = kfc_parse_items(k, items, n, &v, why, sizeof(why));
    if (rc == KF_ERR_NOMEM)
        return kf_error_set(err, rc, false, "out of memory");
    if (rc != KF_OK)
        return kf_error_set(err, KF_ERR_CONFIG, false, "%s: invalid value for \"%s\": %s", source,
                            key, why);
    return apply(cfg, i, &v, source, false, err);
}

/* Decodes the part of a pass-through variable after "__": '_' -> '.', "__" -> '_',
 * "___" -> '-', lower-cased. */
static int decode_env_rest(const char *rest, size_t len, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        if (o + 1 >= size)
            return KF_ERR_INVALID;
        if (rest[i] == '_') {
            size_t run = 0;
            while (i < len && rest[i] == '_') {
                run++;
                i++;
            }
            if (run > 3 || o == 0 || i == len)
                return KF_ERR_INVALID;
            out[o++] = run == 1 ? '.' : run == 2 ? '_' : '-';
        } else if (isalnum((unsigned char)rest[i])) {
            out[o++] = (char)tolower((unsigned char)rest[i++]);
        } else {
            return KF_ERR_INVALID;
        }
    }
    if (o == 0)
        return KF_ERR_INVALID;
    out[o] = '\0';
    return KF_OK;
}

/* Handles KFLEET_<PREFIX>__<NAME>=value if var is of that form for one of the spec's prefixes.
 * Returns 1 if it was not a pass-through variable of this program. */
static int env_passthrough(kf_config *cfg, const char *var, const char *eq, kf_error *err)
{
    const char *name = var + 7;
    const char *sep = strstr(name, "__");
    if (!sep || sep > eq)
        return 1;
    for (const char *const *p = prefixes_of(cfg->spec); *p; p++) {
        size_t plen = strlen(*p);
        if (plen < 2 || (*p)[plen - 1] != '.' || (size_t)(sep - name) != plen - 1 ||
            strncasecmp(name, *p, plen - 1) != 0)
            continue;
        char source[256], key[512];
        snprintf(source, sizeof(source), "env %.*s", (int)(eq - var), var);
        memcpy(key, *p, plen);
        if (decode_env_rest(sep + 2, (size_t)(eq - sep - 2), key + plen, sizeof(key) - plen) !=
            KF_OK)
            return kf_error_set(err, KF_ERR_CONFIG, false,
                                "%s: cannot map the variable name to a pass-through key "
                                "(use '_' for '.', '__' for '_', '___' for '-')",
                                source);
        return kf_config_set(cfg, key, eq + 1, source, false, err);
    }
    return 1;
}

int kf_config_load_env(kf_config *cfg, char *const envp[], kf_error *err)
{
    char *const *env = envp ? envp : environ;
    if (!env)
        return KF_OK;
    /* table keys first, in table order, so a shared variable name cannot be ambiguous */
    for (size_t i = 0; i < cfg->nkeys; i++) {
        char name[256];
        kf_config_env_name(cfg->spec->keys[i].name, name, sizeof(name));
        size_t n = strlen(name);
        for (char *const *e = env; *e; e++) {
            if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') {
                char source[300];
                snprintf(source, sizeof(source), "env %s", name);
                int rc =
                    kf_config_set(cfg, cfg->spec->keys[i].name, *e + n + 1, source, false, err);
                if (rc != KF_OK)
                    return rc;
            }
        }
    }
    for (char *const *e = env; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq || strncmp(*e, "KFLEET_", 7) != 0)
            continue;
        int rc = env_passthrough(cfg, *e, eq, err);
        if (rc < 0)
            return rc;
    }
    return KF_OK;
}

int kf_config_check(const kf_config *cfg, kf_error *err)
{
    for (size_t i = 0; i < cfg->nkeys; i++) {
        const kf_config_key *k = &cfg->spec->keys[i];
        if (!(k->flags & KF_CONFIG_REQUIRED) || cfg->sources[i])
            continue;
        char env[256];
        kf_config_env_name(k->name, env, sizeof(env));
        return kf_error_set(err, KF_ERR_CONFIG, false,
                            "required configuration key \"%s\" is not set (set it in the "
                            "configuration file, as %s, with --set %s=...%s%s)",
                            k->name, env, k->name, k->flag ? " or with --" : "",
                            k->flag ? k->flag : "");
    }
    return KF_OK;
}

int kf_config_passthrough(const kf_config *cfg, const char *prefix, kf_config_pair_fn fn, void *ctx)
{
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < cfg->npairs; i++) {
        const kfc_pair *p = &cfg->pairs[i];
        if (strncmp(p->key, prefix, plen) != 0)
            continue;
        int rc = fn(p->key + plen, p->value, p->source, ctx);
        if (rc != 0)
            return rc;
    }
    return 0;
}

const char *kf_config_source(const kf_config *cfg, const char *key)
{
    size_t i;
    if (kfc_find(cfg->spec, key, &i))
        return cfg->sources[i] ? cfg->sources[i] : "default";
    for (size_t j = 0; j < cfg->npairs; j++)
        if (strcmp(cfg->pairs[j].key, key) == 0)
            return cfg->pairs[j].source;
    return NULL;
}

bool kf_config_is_set(const kf_config *cfg, const char *key)
{
    size_t i;
    if (kfc_find(cfg->spec, key, &i))
        return cfg->sources[i] != NULL;
    for (size_t j = 0; j < cfg->npairs; j++)
        if (strcmp(cfg->pairs[j].key, key) == 0)
            return true;
    return false;
}

size_t kf_config_arg_count(const kf_config *cfg)
{
    return cfg->nargs;
}

const char *kf_config_arg(const kf_config *cfg, size_t i)
{
    return i < cfg->nargs ? cfg->args[i] : NULL;
}
