/* Internals shared by the config module's files: the config object, typed values and the
 * parsing and formatting helpers. Not a public header. */
#ifndef KFLEET_CONFIG_INTERNAL_H
#define KFLEET_CONFIG_INTERNAL_H

#include "kfleet/config.h"

/* One pass-through pair; all strings owned. */
typedef struct kfc_pair {
    char *key; /* full key, prefix included */
    char *value;
    char *source;
} kfc_pair;

struct kf_config {
    const kf_config_spec *spec;
    void *store;
    size_t nkeys;
    char **sources; /* per key; NULL while the default holds */
    kfc_pair *pairs;
    size_t npairs, cap_pairs;
    const char **args; /* positional arguments, borrowed from argv */
    size_t nargs;
};

/* A parsed value before it is moved into the store. */
typedef struct kfc_value {
    union {
        char *s;
        int i;
        int64_t i64;
        double d;
        bool b;
        kf_strlist list;
    };
} kfc_value;

/* Parses text (NULL: YAML null) for key k into v. On failure returns KF_ERR_INVALID with the
 * reason in why, or KF_ERR_NOMEM. v owns what it allocated; free with kfc_value_free. */
int kfc_parse(const kf_config_key *k, const char *text, kfc_value *v, char *why, size_t whylen);

/* Parses a YAML sequence of scalars into a list value for key k (a KF_CONFIG_LIST key). */
int kfc_parse_items(const kf_config_key *k, const char *const *items, size_t n, kfc_value *v,
                    char *why, size_t whylen);

void kfc_value_free(const kf_config_key *k, kfc_value *v);

/* Moves v into the store field of k, freeing what was there. */
void kfc_value_store(void *store, const kf_config_key *k, kfc_value *v);

/* Appends the items of v to the stored list of k (v's items move, v is emptied). */
int kfc_list_append(void *store, const kf_config_key *k, kfc_value *v);

/* Frees a stored string or list field and resets it. */
void kfc_field_clear(void *store, const kf_config_key *k);

/* Sets a list key from YAML sequence items, or a pass-through key from their comma join. */
int kfc_set_items(kf_config *cfg, const char *key, const char *const *items, size_t n,
                  const char *source, kf_error *err);

/* The table entry named `name`, or NULL. */
const kf_config_key *kfc_find(const kf_config_spec *spec, const char *name, size_t *index);

/* The pass-through prefix `name` falls under, or NULL. */
const char *kfc_passthrough_prefix(const kf_config_spec *spec, const char *name);

/* "int", "duration", ... and the flag metavariable "INT", "DURATION", ... */
const char *kfc_type_name(kf_config_type t);
const char *kfc_type_metavar(kf_config_type t);

/* Writes a duration as "1h30m", "1500ms", "0ms". */
void kfc_format_duration(int64_t ms, char *buf, size_t size);

/* Writes the range of k ("1..100" or "100ms..1h") into buf; "" when it has none. */
void kfc_format_range(const kf_config_key *k, char *buf, size_t size);

/* Writes a YAML double-quoted scalar. */
void kfc_yaml_quote(FILE *out, const char *s);

/* Name of the library a pass-through prefix feeds, for help and the reference. */
const char *kfc_passthrough_target(const char *prefix);

/* The key closest to name by edit distance, if close enough to be a likely typo; or NULL. */
const char *kfc_suggest(const kf_config_spec *spec, const char *name);

#endif
