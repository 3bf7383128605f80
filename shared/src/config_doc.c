/* Writing configuration for people: --help, the Markdown reference and --print-config (with
 * secrets redacted), all generated from the program's key table. */
#include "config_internal.h"

#include <stdlib.h>
#include <string.h>

#define REDACTED "[redacted]"

const char *kfc_passthrough_target(const char *prefix)
{
    if (strcmp(prefix, "kafka.") == 0)
        return "librdkafka (consumer/producer properties)";
    if (strcmp(prefix, "registry.") == 0)
        return "the schema registry client";
    if (strcmp(prefix, "pg.") == 0)
        return "the libpq connection string (keywords such as host, dbname, sslmode)";
    return "the program's client library";
}

bool kf_config_key_is_secret(const char *key)
{
    static const char *const words[] = {"password",   "passwd",    "secret",   "token",
                                        "credential", "user.info", "userinfo", "private"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strstr(key, words[i]))
            return true;
    /* a "sasl." or "ssl.key." component anywhere: kafka.sasl.username, kafka.ssl.key.pem */
    static const char *const parts[] = {"sasl.", "ssl.key."};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        const char *hit = strstr(key, parts[i]);
        while (hit) {
            if (hit == key || hit[-1] == '.')
                return true;
            hit = strstr(hit + 1, parts[i]);
        }
    }
    return false;
}

static const kf_config_key *const_keys(const kf_config_spec *spec)
{
    return spec->keys;
}

static const char *const *spec_prefixes(const kf_config_spec *spec)
{
    return spec->passthrough ? spec->passthrough : kf_config_default_passthrough;
}

/* Writes text wrapped at `width` columns, every line indented by `indent` spaces. */
static void write_wrapped(FILE *out, const char *text, int indent, int width)
{
    const char *p = text;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        int room = width - indent;
        const char *line_end = p;
        const char *last_space = NULL;
        while (*line_end && *line_end != '\n' && line_end - p < room) {
            if (*line_end == ' ')
                last_space = line_end;
            line_end++;
        }
        if (*line_end && *line_end != '\n' && *line_end != ' ' && last_space)
            line_end = last_space;
        fprintf(out, "%*s%.*s\n", indent, "", (int)(line_end - p), p);
        p = *line_end == '\n' ? line_end + 1 : line_end;
    }
}

static void enum_values(FILE *out, const kf_config_key *k, const char *sep)
{
    for (size_t i = 0; k->enum_values && k->enum_values[i]; i++)
        fprintf(out, "%s%s", i ? sep : "", k->enum_values[i]);
}

int kf_config_write_help(const kf_config_spec *spec, FILE *out)
{
    fprintf(out, "Usage: %s [OPTIONS]%s%s\n", spec->program, spec->args_usage ? " " : "",
            spec->args_usage ? spec->args_usage : "");
    if (spec->summary)
        write_wrapped(out, spec->summary, 0, 100);
    fputs("\nOptions:\n"
          "  -c, --config FILE       read configuration from the YAML file FILE\n"
          "      --set KEY=VALUE     set any configuration key (repeatable)\n"
          "      --print-config      print the effective configuration (secrets redacted) and "
          "exit\n"
          "      --config-reference  print the configuration reference in Markdown and exit\n"
          "  -h, --help              print this help and exit\n"
          "  -V, --version           print the version and exit\n",
          out);
    fputs("\nConfiguration keys (the file, then KFLEET_* environment variables, then flags; "
          "later wins):\n",
          out);
    for (const kf_config_key *k = const_keys(spec); k->name; k++) {
        fprintf(out, "  %s (%s", k->name, kfc_type_name(k->type));
        if (k->default_value && *k->default_value)
            fprintf(out, ", default %s", k->default_value);
        char range[96];
        kfc_format_range(k, range, sizeof(range));
        if (*range)
            fprintf(out, ", %s", range);
        if (k->type == KF_CONFIG_ENUM) {
            fputs(", one of ", out);
            enum_values(out, k, "|");
        }
        if (k->flags & KF_CONFIG_REQUIRED)
            fputs(", required", out);
        if (k->flags & KF_CONFIG_SECRET)
            fputs(", secret", out);
        fputs(")\n", out);
        if (k->description)
            write_wrapped(out, k->description, 6, 100);
        char env[256];
        kf_config_env_name(k->name, env, sizeof(env));
        fprintf(out, "      env %s", env);
        if (k->flag)
            fprintf(out, ", flag --%s %s", k->flag,
                    k->type == KF_CONFIG_BOOL ? "[=BOOL]" : kfc_type_metavar(k->type));
        if (k->short_flag)
            fprintf(out, " or -%c", k->short_flag);
        fputc('\n', out);
    }
    fputs("\nPass-through keys (not checked, handed on unchanged, in order):\n", out);
    for (const char *const *p = spec_prefixes(spec); *p; p++) {
        char env[64];
        kf_config_env_name(*p, env, sizeof(env));
        env[strlen(env) - 1] = '\0'; /* drop the '_' of the trailing '.' */
        fprintf(out, "  %s*  to %s; env %s__NAME\n", *p, kfc_passthrough_target(*p), env);
    }
    fputs("  In NAME, '_' stands for '.', '__' for '_' and '___' for '-', e.g.\n"
          "  KFLEET_KAFKA__BOOTSTRAP_SERVERS sets kafka.bootstrap.servers.\n"
          "\nDurations: 500ms, 1s, 2m, 1h30m, 1.5s (a bare number is milliseconds). Lists: "
          "a YAML sequence,\nor comma-separated in the environment and flags. Bools: "
          "true/false, yes/no, on/off, 1/0.\n",
          out);
    return ferror(out) ? KF_ERR_IO : KF_OK;
}

/* Writes text for a Markdown table cell: '|' escaped, newlines as spaces. */
static void md_cell(FILE *out, const char *text)
{
    for (const char *p = text ? text : ""; *p; p++) {
        if (*p == '|')
            fputs("\\|", out);
        else if (*p == '\n')
            fputc(' ', out);
        else
            fputc(*p, out);
    }
}

int kf_config_write_reference(const kf_config_spec *spec, FILE *out)
{
    fprintf(out, "# %s configuration\n\n", spec->program);
    if (spec->summary)
        fprintf(out, "%s\n\n", spec->summary);
    fprintf(out,
            "Values come from the YAML file given with `-c FILE`, then from `KFLEET_*` "
            "environment variables, then from flags (`--set KEY=VALUE` or the flags below); "
            "a later source wins. Nested YAML mappings are the same as dotted keys. Unknown "
            "keys are errors. `%s --print-config` shows the effective values and where each "
            "came from.\n\n",
            spec->program);
    fputs("| Key | Type | Default | Allowed | Environment | Flag | Description |\n"
          "|---|---|---|---|---|---|---|\n",
          out);
    for (const kf_config_key *k = const_keys(spec); k->name; k++) {
        char env[256], range[96];
        kf_config_env_name(k->name, env, sizeof(env));
        kfc_format_range(k, range, sizeof(range));
        fprintf(out, "| `%s` | %s | ", k->name, kfc_type_name(k->type));
        if (k->default_value && *k->default_value) {
            fputc('`', out);
            md_cell(out, k->default_value);
            fputc('`', out);
        }
        fputs(" | ", out);
        if (k->type == KF_CONFIG_ENUM)
            enum_values(out, k, ", ");
        else
            fputs(range, out);
        fprintf(out, " | `%s` | ", env);
        if (k->flag)
            fprintf(out, "`--%s`", k->flag);
        if (k->short_flag)
            fprintf(out, "%s`-%c`", k->flag ? ", " : "", k->short_flag);
        fputs(" | ", out);
        if (k->flags & KF_CONFIG_REQUIRED)
            fputs("**Required.** ", out);
        if (k->flags & KF_CONFIG_SECRET)
            fputs("**Secret** (redacted by `--print-config`). ", out);
        md_cell(out, k->description);
        fputs(" |\n", out);
    }
    fputs("\n## Pass-through keys\n\n"
          "Keys under these prefixes are not checked by kfleet; they are handed on unchanged, "
          "in the order given, with the prefix removed:\n\n",
          out);
    for (const char *const *p = spec_prefixes(spec); *p; p++) {
        char env[64];
        kf_config_env_name(*p, env, sizeof(env));
        env[strlen(env) - 1] = '\0';
        fprintf(out, "- `%s*` to %s; environment `%s__NAME`\n", *p, kfc_passthrough_target(*p),
                env);
    }
    fputs("\nIn the environment, after the double underscore `_` stands for `.`, `__` for `_` "
          "and `___` for `-`: `KFLEET_KAFKA__BOOTSTRAP_SERVERS` sets `kafka.bootstrap.servers`, "
          "`KFLEET_PG__CONNECT__TIMEOUT` sets `pg.connect_timeout`.\n\n"
          "## Value syntax\n\n"
          "- duration: `500ms`, `1s`, `2m`, `1h30m`, `1.5s`; a bare number is milliseconds\n"
          "- list: a YAML sequence, or comma-separated in the environment and flags; a list "
          "flag given twice appends\n"
          "- bool: `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`\n"
          "- environment name of a key: `KFLEET_` + the key upper-cased, `.` and `-` as `_`\n",
          out);
    return ferror(out) ? KF_ERR_IO : KF_OK;
}

/* Writes a string value, masking the password of a URL's user info
 * ("postgres://u:pw@h/db" -> "postgres://u:[redacted]@h/db"). */
static void print_string(FILE *out, const char *s)
{
    const char *scheme = strstr(s, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *slash = scheme ? strchr(scheme + 3, '/') : NULL;
    const char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
    if (at && (!slash || at < slash) && colon && colon < at) {
        size_t keep = (size_t)(colon + 1 - s);
        size_t len = keep + strlen(REDACTED) + strlen(at) + 1;
        char *masked = malloc(len);
        if (masked) {
            snprintf(masked, len, "%.*s%s%s", (int)keep, s, REDACTED, at);
            kfc_yaml_quote(out, masked);
            free(masked);
            return;
        }
        kfc_yaml_quote(out, REDACTED); /* cannot mask in place: hide it all */
        return;
    }
    kfc_yaml_quote(out, s);
}

static void print_value(FILE *out, const kf_config_key *k, const void *store)
{
    const char *field = (const char *)store + k->offset;
    char buf[64];
    switch (k->type) {
    case KF_CONFIG_STRING: {
        const char *s = *(char *const *)(const void *)field;
        if (s)
            print_string(out, s);
        else
            fputs("null", out);
        break;
    }
    case KF_CONFIG_INT:
        fprintf(out, "%d", *(const int *)(const void *)field);
        break;
    case KF_CONFIG_INT64:
        fprintf(out, "%lld", (long long)*(const int64_t *)(const void *)field);
        break;
    case KF_CONFIG_DOUBLE:
        fprintf(out, "%.17g", *(const double *)(const void *)field);
        break;
    case KF_CONFIG_BOOL:
        fputs(*(const bool *)(const void *)field ? "true" : "false", out);
        break;
    case KF_CONFIG_DURATION_MS:
        kfc_format_duration(*(const int64_t *)(const void *)field, buf, sizeof(buf));
        fputs(buf, out);
        break;
    case KF_CONFIG_ENUM: {
        int i = *(const int *)(const void *)field;
        kfc_yaml_quote(out, k->enum_values[i]);
        break;
    }
    case KF_CONFIG_LIST: {
        const kf_strlist *l = (const kf_strlist *)(const void *)field;
        fputc('[', out);
        for (size_t i = 0; i < l->count; i++) {
            if (i)
                fputs(", ", out);
            kfc_yaml_quote(out, l->items[i]);
        }
        fputc(']', out);
        break;
    }
    }
}

int kf_config_print(const kf_config *cfg, FILE *out)
{
    fprintf(out, "# effective configuration of %s; secrets are redacted\n", cfg->spec->program);
    for (size_t i = 0; i < cfg->nkeys; i++) {
        const kf_config_key *k = &cfg->spec->keys[i];
        fprintf(out, "%s: ", k->name);
        bool secret = (k->flags & KF_CONFIG_SECRET) || kf_config_key_is_secret(k->name);
        bool unset = k->type == KF_CONFIG_STRING &&
                     !*(char *const *)(const void *)((const char *)cfg->store + k->offset);
        if (secret && !unset) /* an unset secret shows as null: that reveals nothing */
            fputs("\"" REDACTED "\"", out);
        else
            print_value(out, k, cfg->store);
        fprintf(out, "  # %s\n", cfg->sources[i] ? cfg->sources[i] : "default");
    }
    for (size_t i = 0; i < cfg->npairs; i++) {
        const kfc_pair *p = &cfg->pairs[i];
        fprintf(out, "%s: ", p->key);
        if (kf_config_key_is_secret(p->key))
            fputs("\"" REDACTED "\"", out);
        else
            print_string(out, p->value);
        fprintf(out, "  # %s\n", p->source);
    }
    return ferror(out) ? KF_ERR_IO : KF_OK;
}
