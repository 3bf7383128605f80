/* Table-driven program configuration: a YAML file, then KFLEET_* environment variables, then
 * command-line flags (later wins), typed into the program's own struct, plus pass-through lists. */
#ifndef KFLEET_CONFIG_H
#define KFLEET_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kfleet/error.h"

/*
 * How it works
 * ------------
 * A program describes its keys in a NULL-terminated table of kf_config_key. Each entry names
 * a dotted key, its type, where the typed value is stored (offsetof into the program's config
 * struct), a textual default, an optional range or enum values, an optional long/short flag,
 * a description and flags (secret, required). kf_config_new() binds the table to one struct
 * and writes the defaults into it; every later source overwrites the fields it names.
 *
 * Storage per type (the field at `offset` must have exactly this C type):
 *   KF_CONFIG_STRING       char *          (owned by the kf_config; NULL when unset)
 *   KF_CONFIG_INT          int
 *   KF_CONFIG_INT64        int64_t
 *   KF_CONFIG_DOUBLE       double
 *   KF_CONFIG_BOOL         bool
 *   KF_CONFIG_DURATION_MS  int64_t         (milliseconds)
 *   KF_CONFIG_ENUM         int             (index into enum_values)
 *   KF_CONFIG_LIST         kf_strlist      (items owned by the kf_config)
 * Strings and lists stay valid until the next load that sets the key or kf_config_destroy().
 *
 * Sources, in order of precedence (later wins):
 *   1. the table's defaults;
 *   2. the YAML file given with -c/--config. Nested mappings flatten to dotted keys, so
 *      `sink: {batch: {size: 10}}` and `sink.batch.size: 10` are the same key; setting one key
 *      twice in a file is an error. A YAML sequence sets a list; for a pass-through key it is
 *      joined with commas. YAML null sets a string key to unset and a list to empty;
 *   3. the environment. A table key maps to KFLEET_ followed by the key upper-cased with '.'
 *      and '-' turned into '_' (sink.batch.size <-> KFLEET_SINK_BATCH_SIZE). Pass-through keys
 *      use a double underscore after the prefix, and then in the rest of the name a single '_'
 *      stands for '.', a double '__' for '_' and a triple '___' for '-', lower-cased:
 *        KFLEET_KAFKA__BOOTSTRAP_SERVERS  -> kafka.bootstrap.servers
 *        KFLEET_PG__CONNECT__TIMEOUT      -> pg.connect_timeout
 *      Other KFLEET_* variables are ignored, because one environment is often shared by several
 *      programs (and test harnesses) that each know only their own keys;
 *   4. flags: --set KEY=VALUE (repeatable, any key, pass-through included) and the program's
 *      own flags (--topic VALUE, --topic=VALUE, -t VALUE; a bool flag alone means true). A list
 *      flag given several times appends; everything else replaces.
 *
 * Pass-through keys: a key starting with one of the spec's pass-through prefixes (by default
 * "kafka.", "registry.", "pg.") that is not in the table is not validated; it is kept with its
 * value, in the order first seen (a later source replaces the value in place), for the program
 * to hand to librdkafka, the registry client or the libpq conninfo (kf_config_passthrough()).
 * Table keys take precedence over pass-through prefixes.
 *
 * Values: int/int64 are decimal; double is any strtod number; bool is true/false, yes/no,
 * on/off or 1/0; a duration is a sequence of number+unit (ms, s, m, h, d), e.g. "500ms", "1s",
 * "2m", "1m30s", "1.5s", or a bare integer meaning milliseconds; a list from a string is
 * comma-separated with blanks around items trimmed ("" is the empty list).
 *
 * Errors (KF_ERR_CONFIG) start with the source: "app.yaml:12: ...", "env KFLEET_X: ...",
 * "flag --topic: ..." and name the key, so a user can find what to fix.
 *
 * A program's main():
 *   struct sink_cfg { int batch; int log_level; kf_strlist topics; };
 *   static const kf_config_key keys[] = {
 *       {.name = "sink.batch.size", .type = KF_CONFIG_INT,
 *        .offset = offsetof(struct sink_cfg, batch), .default_value = "500", .min = 1,
 *        .max = 100000, .flag = "batch-size", .description = "Rows per transaction."},
 *       {.name = "log.level", .type = KF_CONFIG_ENUM,
 *        .offset = offsetof(struct sink_cfg, log_level), .default_value = "info",
 *        .enum_values = kf_log_level_names, .description = "Lowest level logged."},
 *       {.name = "kfleet.topics", .type = KF_CONFIG_LIST, .flag = "topic", .short_flag = 't',
 *        .offset = offsetof(struct sink_cfg, topics), .flags = KF_CONFIG_REQUIRED,
 *        .description = "Topics to read."},
 *       {0},
 *   };
 *   static const kf_config_spec spec = {.program = "kfleet-sink-pg", .keys = keys,
 *                                       .summary = "Writes change events into PostgreSQL."};
 *   ...
 *   if (kf_config_new(&spec, &c, &cfg, &err) != KF_OK) { report err.message; return 1; }
 *   kf_config_action a = kf_config_main(cfg, argc, argv, NULL, stdout, stderr);
 *   if (a != KF_CONFIG_RUN) { kf_config_destroy(cfg); return a == KF_CONFIG_EXIT_OK ? 0 : 2; }
 *   kf_config_passthrough(cfg, "kafka.", set_rdkafka_property, rd_conf);
 */

typedef enum kf_config_type {
    KF_CONFIG_STRING = 0,
    KF_CONFIG_INT,
    KF_CONFIG_INT64,
    KF_CONFIG_DOUBLE,
    KF_CONFIG_BOOL,
    KF_CONFIG_DURATION_MS,
    KF_CONFIG_ENUM,
    KF_CONFIG_LIST,
} kf_config_type;

/* Key flags. */
enum {
    KF_CONFIG_SECRET = 1 << 0,   /* redacted by --print-config */
    KF_CONFIG_REQUIRED = 1 << 1, /* loading fails unless a file, env or flag sets it */
};

/* A list-of-strings value. */
typedef struct kf_strlist {
    char **items;
    size_t count;
} kf_strlist;

/* One configuration key. Tables end with an entry whose name is NULL. */
typedef struct kf_config_key {
    const char *name;               /* dotted, lower-case: [a-z0-9._-] */
    kf_config_type type;            /* how the value is parsed and stored */
    size_t offset;                  /* offsetof(program struct, field) */
    const char *default_value;      /* textual, parsed like any source; NULL: unset/0/empty */
    double min, max;                /* inclusive range for numbers/durations; ignored if equal */
    const char *const *enum_values; /* NULL-terminated; required for KF_CONFIG_ENUM */
    const char *flag;               /* long flag without "--" ("topic"), or NULL */
    char short_flag;                /* short flag letter ('t'), or 0 */
    unsigned flags;                 /* KF_CONFIG_SECRET | KF_CONFIG_REQUIRED */
    const char *description;        /* one or more sentences for --help and the reference */
} kf_config_key;

/* The default pass-through prefixes: "kafka.", "registry.", "pg.", NULL. */
extern const char *const kf_config_default_passthrough[];

/* Everything a program declares about its configuration. Borrowed for the config's lifetime. */
typedef struct kf_config_spec {
    const char *program;            /* "kfleet-sink-pg": usage line, --version, errors */
    const char *version;            /* NULL: the kfleet version */
    const char *summary;            /* one line saying what the program does */
    const char *args_usage;         /* positional arguments in the usage line, or NULL */
    size_t max_args;                /* positional arguments accepted (0: none) */
    const kf_config_key *keys;      /* NULL-terminated table */
    const char *const *passthrough; /* NULL-terminated prefixes; NULL: the default set */
} kf_config_spec;

typedef struct kf_config kf_config;

/* Validates the spec (unique names, env names and flags, parseable defaults, enum values),
 * binds it to `store` and writes every default into it. spec and store are borrowed and must
 * outlive the config. Returns 0 and sets *out, or KF_ERR_INVALID (a bug in the table) or
 * KF_ERR_NOMEM with err filled. */
int kf_config_new(const kf_config_spec *spec, void *store, kf_config **out, kf_error *err);

/* Frees the strings and lists it wrote into the store (setting them to NULL/empty), the
 * pass-through lists and the config. NULL is a no-op. */
void kf_config_destroy(kf_config *cfg);

/* Loads a YAML file (path is copied into source locations). KF_ERR_CONFIG if the file cannot
 * be read, is not YAML, is not a mapping, or sets an unknown key or a bad value. On error some
 * keys before the failing one may already be applied. */
int kf_config_load_file(kf_config *cfg, const char *path, kf_error *err);

/* Like kf_config_load_file for YAML text already in memory; `name` stands for the file name in
 * source locations. */
int kf_config_load_yaml(kf_config *cfg, const char *name, const char *text, size_t len,
                        kf_error *err);

/* Applies KFLEET_* variables from envp (NULL-terminated "NAME=value" strings, borrowed; NULL
 * means the process environment), as described above. */
int kf_config_load_env(kf_config *cfg, char *const envp[], kf_error *err);

/* Sets one key from text. `source` (copied) says where the value came from, for errors and
 * --print-config, e.g. "flag --set". A list given with `append` adds to the current items. */
int kf_config_set(kf_config *cfg, const char *key, const char *value, const char *source,
                  bool append, kf_error *err);

/* Checks that every KF_CONFIG_REQUIRED key was set. KF_ERR_CONFIG naming the first missing key
 * and how to set it. */
int kf_config_check(const kf_config *cfg, kf_error *err);

/* Called for each pass-through pair in order; key has the prefix removed ("bootstrap.servers"),
 * source is where it was set. All borrowed for the call. Non-zero stops the walk. */
typedef int (*kf_config_pair_fn)(const char *key, const char *value, const char *source, void *ctx);

/* Walks the pass-through pairs whose key starts with prefix ("kafka."). Returns 0 or the
 * first non-zero value fn returned. */
int kf_config_passthrough(const kf_config *cfg, const char *prefix, kf_config_pair_fn fn,
                          void *ctx);

/* Where the current value of a table or pass-through key came from: "default", "app.yaml:3",
 * "env KFLEET_X", "flag --x". NULL for an unknown key. Borrowed until the key is set again. */
const char *kf_config_source(const kf_config *cfg, const char *key);

/* True if a file, env or flag set the key (not just its default). */
bool kf_config_is_set(const kf_config *cfg, const char *key);

/* Positional arguments left after flags, in order (borrowed from argv via kf_config_main). */
size_t kf_config_arg_count(const kf_config *cfg);
const char *kf_config_arg(const kf_config *cfg, size_t i);

/* Writes the effective configuration as YAML: every table key with its value and, as a
 * comment, its source; then the pass-through keys. Secrets are written as "[redacted]": keys
 * flagged KF_CONFIG_SECRET and keys matching kf_config_key_is_secret(); URL values also lose
 * the password of their user info. Returns 0 or KF_ERR_IO. */
int kf_config_print(const kf_config *cfg, FILE *out);

/* True if a key name looks secret: it contains "password", "passwd", "secret", "token",
 * "credential", "user.info", "userinfo" or "private", or has a "sasl." or "ssl.key."
 * component (kafka.sasl.username, kafka.ssl.key.pem). */
bool kf_config_key_is_secret(const char *key);

/* Writes --help: usage, summary, the generic options, every key with type, default, range or
 * values, environment name and flag, and the pass-through rules. Returns 0 or KF_ERR_IO. */
int kf_config_write_help(const kf_config_spec *spec, FILE *out);

/* Writes a Markdown reference of the program's configuration (the same facts as --help, as
 * a table). Returns 0 or KF_ERR_IO. */
int kf_config_write_reference(const kf_config_spec *spec, FILE *out);

/* The environment variable for a table key ("sink.batch.size" -> "KFLEET_SINK_BATCH_SIZE"),
 * written into buf. Returns 0, or KF_ERR_INVALID if it does not fit. */
int kf_config_env_name(const char *key, char *buf, size_t size);

/* Parses a duration ("500ms", "1s", "2m", "1h30m", "1.5s", "250") into milliseconds.
 * Returns 0 or KF_ERR_INVALID. */
int kf_config_parse_duration(const char *s, int64_t *out_ms);

/* What main() should do after kf_config_main(). */
typedef enum kf_config_action {
    KF_CONFIG_RUN = 0,        /* configuration loaded: run the program */
    KF_CONFIG_EXIT_OK = 1,    /* --help, --version, --print-config, --config-reference: exit 0 */
    KF_CONFIG_EXIT_USAGE = 2, /* a usage or configuration error was printed: exit 2 */
} kf_config_action;

/* The whole start-up sequence for a main(): parses argv (-c/--config FILE, --set KEY=VALUE,
 * the table's flags, --help/-h, --version/-V, --print-config, --config-reference, "--" ends
 * options), then loads the file, the environment (envp; NULL = the process environment) and
 * the flags in that order, and checks required keys. --help, --version and --config-reference
 * print to `out` without loading anything; --print-config prints after loading. Errors go to
 * `errout` as "<program>: <message>" followed by a hint to try --help. argv is borrowed for the
 * config's lifetime (positional arguments point into it). Never exits. */
kf_config_action kf_config_main(kf_config *cfg, int argc, char *const argv[], char *const envp[],
                                FILE *out, FILE *errout);

/* The start of every program's main(): kf_config_new() bound to store, then kf_config_main()
 * with the process environment, stdout and stderr. Returns -1 with *out set to the loaded
 * configuration when the program is to run; otherwise the exit code to return now, with *out
 * NULL: 0 after --help/--version/--print-config/--config-reference, 2 for a usage or
 * configuration error (already printed), 1 when the key table itself is broken. */
int kf_config_start(const kf_config_spec *spec, void *store, int argc, char *const argv[],
                    kf_config **out);

#endif
