/* The start-up sequence for a program's main(): parse the command line, then load the file,
 * the environment and the flags in order of precedence, and answer --help and friends. */
#include "config_internal.h"

#include <stdlib.h>
#include <string.h>

/* A value given on the command line, applied after the file and the environment. */
typedef struct flag_op {
    const char *key; /* table key, or NULL for --set (key inside text) */
    const char *text;
    char source[80];
} flag_op;

typedef struct cmdline {
    const char *config_file;
    bool help, version, print_config, reference;
    flag_op *ops;
    size_t nops;
    const char **args;
    size_t nargs;
} cmdline;

static const kf_config_key *key_by_flag(const kf_config_spec *spec, const char *flag, size_t len,
                                        char short_flag)
{
    for (const kf_config_key *k = spec->keys; k->name; k++) {
        if (short_flag && k->short_flag == short_flag)
            return k;
        if (!short_flag && k->flag && strlen(k->flag) == len && strncmp(k->flag, flag, len) == 0)
            return k;
    }
    return NULL;
}

static bool is_long(const char *name, size_t len, const char *flag)
{
    return strlen(flag) == len && strncmp(name, flag, len) == 0;
}

/* Takes the value of an option from "--x=value", "-xvalue" or the next argument (borrowed from
 * argv). *value is written on every path, NULL when the value is missing. */
static int take_value(int argc, char *const argv[], int *i, const char *attached, const char *shown,
                      const char **value, kf_error *err)
{
    *value = NULL;
    if (attached) {
        *value = attached;
        return KF_OK;
    }
    if (*i + 1 >= argc)
        return kf_error_set(err, KF_ERR_CONFIG, false, "flag %s: missing value", shown);
    *value = argv[++*i];
    return KF_OK;
}

static int add_op(cmdline *cl, const kf_config_key *k, const char *text, const char *shown)
{
    flag_op *op = &cl->ops[cl->nops++];
    op->key = k ? k->name : NULL;
    op->text = text;
    snprintf(op->source, sizeof(op->source), "flag %s", shown);
    return KF_OK;
}

static int parse_long(const kf_config_spec *spec, cmdline *cl, int argc, char *const argv[], int *i,
                      kf_error *err)
{
    const char *name = argv[*i] + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const char *attached = eq ? eq + 1 : NULL;
    char shown[72];
    snprintf(shown, sizeof(shown), "--%.*s", (int)(len > 64 ? 64 : len), name);

    bool *toggle = is_long(name, len, "help")               ? &cl->help
                   : is_long(name, len, "version")          ? &cl->version
                   : is_long(name, len, "print-config")     ? &cl->print_config
                   : is_long(name, len, "config-reference") ? &cl->reference
                                                            : NULL;
    if (toggle) {
        if (attached)
            return kf_error_set(err, KF_ERR_CONFIG, false, "flag %s: takes no value", shown);
        *toggle = true;
        return KF_OK;
    }
    const char *value;
    if (is_long(name, len, "config")) {
        int rc = take_value(argc, argv, i, attached, shown, &value, err);
        if (rc == KF_OK)
            cl->config_file = value;
        return rc;
    }
    if (is_long(name, len, "set")) {
        int rc = take_value(argc, argv, i, attached, shown, &value, err);
        if (rc != KF_OK)
            return rc;
        const char *sep = strchr(value, '=');
        if (!sep || sep == value)
            return kf_error_set(err, KF_ERR_CONFIG, false,
                                "flag --set: expected KEY=VALUE, got \"%.80s\"", value);
        return add_op(cl, NULL, value, "--set");
    }
    const kf_config_key *k = key_by_flag(spec, name, len, 0);
    if (!k)
        return kf_error_set(err, KF_ERR_CONFIG, false, "unknown flag %s", shown);
    if (k->type == KF_CONFIG_BOOL && !attached)
        return add_op(cl, k, "true", shown);
    int rc = take_value(argc, argv, i, attached, shown, &value, err);
    return rc == KF_OK ? add_op(cl, k, value, shown) : rc;
}

static int parse_short(const kf_config_spec *spec, cmdline *cl, int argc, char *const argv[],
                       int *i, kf_error *err)
{
    char letter = argv[*i][1];
    const char *attached = argv[*i][2] ? argv[*i] + 2 : NULL;
    char shown[4] = {'-', letter, '\0', '\0'};
    if (letter == 'h' || letter == 'V') {
        if (attached)
            return kf_error_set(err, KF_ERR_CONFIG, false, "flag %s: takes no value", shown);
        *(letter == 'h' ? &cl->help : &cl->version) = true;
        return KF_OK;
    }
    const char *value;
    if (letter == 'c') {
        int rc = take_value(argc, argv, i, attached, shown, &value, err);
        if (rc == KF_OK)
            cl->config_file = value;
        return rc;
    }
    const kf_config_key *k = key_by_flag(spec, NULL, 0, letter);
    if (!k)
        return kf_error_set(err, KF_ERR_CONFIG, false, "unknown flag %s", argv[*i]);
    if (k->type == KF_CONFIG_BOOL) {
        if (attached)
            return kf_error_set(err, KF_ERR_CONFIG, false, "flag %s: takes no value", shown);
        return add_op(cl, k, "true", shown);
    }
    int rc = take_value(argc, argv, i, attached, shown, &value, err);
    return rc == KF_OK ? add_op(cl, k, value, shown) : rc;
}

static int parse_cmdline(const kf_config_spec *spec, cmdline *cl, int argc, char *const argv[],
                         kf_error *err)
{
    size_t n = argc > 0 ? (size_t)argc : 1;
    cl->ops = calloc(n, sizeof(flag_op));
    cl->args = calloc(n, sizeof(char *));
    if (!cl->ops || !cl->args)
        return kf_error_set(err, KF_ERR_NOMEM, false, "out of memory");
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = KF_OK;
        if (options_done || a[0] != '-' || a[1] == '\0')
            cl->args[cl->nargs++] = a;
        else if (strcmp(a, "--") == 0)
            options_done = true;
        else if (a[1] == '-')
            rc = parse_long(spec, cl, argc, argv, &i, err);
        else
            rc = parse_short(spec, cl, argc, argv, &i, err);
        if (rc != KF_OK)
            return rc;
    }
    if (cl->nargs > spec->max_args)
        return kf_error_set(err, KF_ERR_CONFIG, false, "unexpected argument \"%.80s\"",
                            cl->args[spec->max_args]);
    return KF_OK;
}

/* Applies the flag values in order. A list key set by an earlier flag is appended to. */
static int apply_flags(kf_config *cfg, const cmdline *cl, kf_error *err)
{
    bool *seen = calloc(cfg->nkeys + 1, sizeof(bool));
    if (!seen)
        return kf_error_set(err, KF_ERR_NOMEM, false, "out of memory");
    int rc = KF_OK;
    char keybuf[256];
    for (size_t j = 0; j < cl->nops && rc == KF_OK; j++) {
        const flag_op *op = &cl->ops[j];
        const char *key = op->key, *value = op->text;
        if (!key) { /* --set KEY=VALUE */
            const char *sep = strchr(op->text, '=');
            size_t klen = (size_t)(sep - op->text);
            if (klen >= sizeof(keybuf)) {
                rc = kf_error_set(err, KF_ERR_CONFIG, false, "%s: key is too long", op->source);
                break;
            }
            memcpy(keybuf, op->text, klen);
            keybuf[klen] = '\0';
            key = keybuf;
            value = sep + 1;
        }
        size_t idx;
        bool append = false;
        if (kfc_find(cfg->spec, key, &idx)) {
            append = seen[idx];
            seen[idx] = true;
        }
        rc = kf_config_set(cfg, key, value, op->source, append, err);
    }
    free(seen);
    return rc;
}

static kf_config_action fail(const kf_config *cfg, FILE *errout, const kf_error *err)
{
    fprintf(errout, "%s: %s\n", cfg->spec->program, err->message);
    if (err->code == KF_ERR_CONFIG)
        fprintf(errout, "Try '%s --help' for more information.\n", cfg->spec->program);
    return KF_CONFIG_EXIT_USAGE;
}

kf_config_action kf_config_main(kf_config *cfg, int argc, char *const argv[], char *const envp[],
                                FILE *out, FILE *errout)
{
    cmdline cl = {0};
    kf_error err;
    kf_error_clear(&err);
    kf_config_action action = KF_CONFIG_EXIT_USAGE;
    const kf_config_spec *spec = cfg->spec;

    if (parse_cmdline(spec, &cl, argc, argv, &err) != KF_OK) {
        action = fail(cfg, errout, &err);
        goto out_free_cmdline;
    }
    if (cl.help || cl.version || cl.reference) {
        int rc = cl.help      ? kf_config_write_help(spec, out)
                 : cl.version ? (fprintf(out, "%s %s\n", spec->program,
                                         spec->version ? spec->version : KFLEET_VERSION) < 0
                                     ? KF_ERR_IO
                                     : KF_OK)
                              : kf_config_write_reference(spec, out);
        action = rc == KF_OK && fflush(out) == 0 ? KF_CONFIG_EXIT_OK : KF_CONFIG_EXIT_USAGE;
        goto out_free_cmdline;
    }
    if ((cl.config_file && kf_config_load_file(cfg, cl.config_file, &err) != KF_OK) ||
        kf_config_load_env(cfg, envp, &err) != KF_OK || apply_flags(cfg, &cl, &err) != KF_OK ||
        kf_config_check(cfg, &err) != KF_OK) {
        action = fail(cfg, errout, &err);
        goto out_free_cmdline;
    }
    if (cl.print_config) {
        action = kf_config_print(cfg, out) == KF_OK && fflush(out) == 0 ? KF_CONFIG_EXIT_OK
                                                                        : KF_CONFIG_EXIT_USAGE;
        goto out_free_cmdline;
    }
    free(cfg->args);
    cfg->args = cl.args;
    cfg->nargs = cl.nargs;
    cl.args = NULL;
    action = KF_CONFIG_RUN;

out_free_cmdline:
    free(cl.ops);
    free(cl.args);
    return action;
}

int kf_config_start(const kf_config_spec *spec, void *store, int argc, char *const argv[],
                    kf_config **out)
{
    kf_error err;
    *out = NULL;
    kf_config *cfg = NULL;
    if (kf_config_new(spec, store, &cfg, &err) != KF_OK) {
        fprintf(stderr, "%s: %s\n", spec->program, err.message);
        return 1;
    }
    kf_config_action a = kf_config_main(cfg, argc, argv, NULL, stdout, stderr);
    if (a != KF_CONFIG_RUN) {
        kf_config_destroy(cfg);
        return a == KF_CONFIG_EXIT_OK ? 0 : 2;
    }
    *out = cfg;
    return -1;
}
