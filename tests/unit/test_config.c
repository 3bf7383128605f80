/* Unit tests for the config module: precedence, every error path with its source, pass-through
 * lists, redaction, --help and the Markdown reference, durations and lists. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfleet/config.h"

typedef struct test_cfg {
    char *name;
    int batch;
    int64_t max_bytes;
    double ratio;
    bool eos;
    int64_t timeout_ms;
    int level;
    kf_strlist topics;
    char *auth;
    char *dsn;
} test_cfg;

static const char *const levels[] = {"debug", "info", "warn", "error", NULL};

static const kf_config_key test_keys[] = {
    {.name = "kfleet.name",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(test_cfg, name),
     .default_value = "sim",
     .description = "Instance name."},
    {.name = "sink.batch.size",
     .type = KF_CONFIG_INT,
     .offset = offsetof(test_cfg, batch),
     .default_value = "500",
     .min = 1,
     .max = 10000,
     .flag = "batch-size",
     .short_flag = 'b',
     .description = "Rows per batch."},
    {.name = "sink.max-bytes",
     .type = KF_CONFIG_INT64,
     .offset = offsetof(test_cfg, max_bytes),
     .default_value = "1048576",
     .description = "Bytes per batch."},
    {.name = "sink.ratio",
     .type = KF_CONFIG_DOUBLE,
     .offset = offsetof(test_cfg, ratio),
     .default_value = "0.5",
     .min = 0,
     .max = 1,
     .description = "Share | of rows."},
    {.name = "kfleet.eos",
     .type = KF_CONFIG_BOOL,
     .offset = offsetof(test_cfg, eos),
     .default_value = "true",
     .flag = "eos",
     .description = "Exactly-once."},
    {.name = "sink.flush.timeout",
     .type = KF_CONFIG_DURATION_MS,
     .offset = offsetof(test_cfg, timeout_ms),
     .default_value = "1s",
     .min = 1,
     .max = 3600000,
     .flag = "timeout",
     .description = "Flush timeout."},
    {.name = "log.level",
     .type = KF_CONFIG_ENUM,
     .offset = offsetof(test_cfg, level),
     .default_value = "info",
     .enum_values = levels,
     .flag = "log-level",
     .description = "Lowest level logged."},
    {.name = "kfleet.topics",
     .type = KF_CONFIG_LIST,
     .offset = offsetof(test_cfg, topics),
     .default_value = "a,b",
     .flag = "topic",
     .short_flag = 't',
     .description = "Topics to read."},
    {.name = "sink.auth",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(test_cfg, auth),
     .flags = KF_CONFIG_SECRET,
     .description = "Auth blob."},
    {.name = "source.dsn",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(test_cfg, dsn),
     .description = "Source database URL."},
    {0},
};

static const kf_config_spec test_spec = {
    .program = "kfleet-test",
    .summary = "Exercises the configuration module.",
    .args_usage = "[TABLE...]",
    .max_args = 2,
    .keys = test_keys,
};

typedef struct fixture {
    test_cfg values;
    kf_config *cfg;
    char *out, *err;
    size_t outlen, errlen;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    kf_error err;
    assert_int_equal(kf_config_new(&test_spec, &f->values, &f->cfg, &err), KF_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kf_config_destroy(f->cfg);
    free(f->out);
    free(f->err);
    free(f);
    return 0;
}

static char *data_path(const char *file)
{
    const char *dir = getenv("KFLEET_SOURCE_DIR");
    static char path[4096];
    snprintf(path, sizeof(path), "%s/tests/unit/data/config/%s", dir ? dir : KFLEET_SOURCE_DIR,
             file);
    return path;
}

/* Runs kf_config_main with a NULL-terminated argv (argv[0] added) and envp. */
static kf_config_action run(fixture *f, const char *const *args, const char *const *envp)
{
    char *argv[32] = {"kfleet-test"};
    int argc = 1;
    for (; args && args[argc - 1]; argc++)
        argv[argc] = (char *)args[argc - 1];
    static char *empty_env[] = {NULL};
    free(f->out);
    free(f->err);
    FILE *out = open_memstream(&f->out, &f->outlen);
    FILE *errout = open_memstream(&f->err, &f->errlen);
    assert_non_null(out);
    assert_non_null(errout);
    kf_config_action a =
        kf_config_main(f->cfg, argc, argv, envp ? (char *const *)envp : empty_env, out, errout);
    fclose(out);
    fclose(errout);
    return a;
}

static void defaults_are_applied(void **state)
{
    fixture *f = *state;
    assert_string_equal(f->values.name, "sim");
    assert_int_equal(f->values.batch, 500);
    assert_int_equal(f->values.max_bytes, 1048576);
    assert_true(f->values.ratio == 0.5);
    assert_true(f->values.eos);
    assert_int_equal(f->values.timeout_ms, 1000);
    assert_int_equal(f->values.level, 1);
    assert_int_equal(f->values.topics.count, 2);
    assert_string_equal(f->values.topics.items[1], "b");
    assert_null(f->values.auth);
    assert_string_equal(kf_config_source(f->cfg, "sink.batch.size"), "default");
    assert_false(kf_config_is_set(f->cfg, "sink.batch.size"));
    assert_null(kf_config_source(f->cfg, "no.such.key"));
}

static void file_then_env_then_flags(void **state)
{
    fixture *f = *state;
    const char *args[] = {"-c", data_path("precedence.yaml"), "--batch-size", "30", NULL};
    const char *env[] = {"KFLEET_SINK_BATCH_SIZE=20", "KFLEET_KFLEET_NAME=from-env",
                         "KFLEET_BOOTSTRAP=ignored:9092", NULL};
    assert_int_equal(run(f, args, env), KF_CONFIG_RUN);
    assert_string_equal(f->err, "");
    /* flag beats env beats file */
    assert_int_equal(f->values.batch, 30);
    assert_string_equal(kf_config_source(f->cfg, "sink.batch.size"), "flag --batch-size");
    /* env beats file */
    assert_string_equal(f->values.name, "from-env");
    assert_string_equal(kf_config_source(f->cfg, "kfleet.name"), "env KFLEET_KFLEET_NAME");
    /* file beats default, with file:line */
    assert_int_equal(f->values.timeout_ms, 120000);
    char expect[4200];
    snprintf(expect, sizeof(expect), "%s:5", data_path("precedence.yaml"));
    assert_string_equal(kf_config_source(f->cfg, "sink.flush.timeout"), expect);
    assert_false(f->values.eos);
    assert_int_equal(f->values.topics.count, 2);
    assert_string_equal(f->values.topics.items[0], "orders");
    assert_string_equal(f->values.topics.items[1], "customers");
    /* untouched keys keep their default */
    assert_int_equal(f->values.max_bytes, 1048576);
    assert_string_equal(kf_config_source(f->cfg, "sink.max-bytes"), "default");
}

static void set_flag_wins_over_env_and_file(void **state)
{
    fixture *f = *state;
    const char *args[] = {"--config=" KFLEET_SOURCE_DIR "/tests/unit/data/config/precedence.yaml",
                          "--set", "kfleet.name=flagged", "--set=sink.flush.timeout=1m30s", NULL};
    const char *env[] = {"KFLEET_KFLEET_NAME=from-env", NULL};
    assert_int_equal(run(f, args, env), KF_CONFIG_RUN);
    assert_string_equal(f->values.name, "flagged");
    assert_string_equal(kf_config_source(f->cfg, "kfleet.name"), "flag --set");
    assert_int_equal(f->values.timeout_ms, 90000);
}

typedef struct pairs {
    char text[1024];
} pairs;

static int collect(const char *key, const char *value, const char *source, void *ctx)
{
    pairs *p = ctx;
    size_t len = strlen(p->text);
    snprintf(p->text + len, sizeof(p->text) - len, "%s=%s;", key, value);
    return 0;
}

static int stop_at_second(const char *key, const char *value, const char *source, void *ctx)
{
    int *n = ctx;
    return ++*n == 2 ? 42 : 0;
}

static void passthrough_kept_in_order(void **state)
{
    fixture *f = *state;
    const char *args[] = {"-c", data_path("passthrough.yaml"), "--set",
                          "kafka.compression.type=zstd", NULL};
    const char *env[] = {"KFLEET_KAFKA__ACKS=1", "KFLEET_PG__CONNECT__TIMEOUT=7",
                         "KFLEET_KAFKA__CLIENT_ID=kf-1", "KFLEET_OTHER__THING=ignored", NULL};
    assert_int_equal(run(f, args, env), KF_CONFIG_RUN);
    assert_string_equal(f->err, "");
    pairs p = {""};
    assert_int_equal(kf_config_passthrough(f->cfg, "kafka.", collect, &p), 0);
    assert_string_equal(p.text, "bootstrap.servers=broker1:9092;acks=1;linger.ms=5;"
                                "bootstrap.extra=a,b;client.id=kf-1;compression.type=zstd;");
    memset(&p, 0, sizeof(p));
    kf_config_passthrough(f->cfg, "pg.", collect, &p);
    assert_string_equal(p.text, "host=db;connect_timeout=7;password=hunter2;");
    memset(&p, 0, sizeof(p));
    kf_config_passthrough(f->cfg, "registry.", collect, &p);
    assert_string_equal(p.text, "url=http://registry:8081;");
    assert_string_equal(kf_config_source(f->cfg, "kafka.acks"), "env KFLEET_KAFKA__ACKS");
    assert_string_equal(kf_config_source(f->cfg, "kafka.compression.type"), "flag --set");
    int n = 0;
    assert_int_equal(kf_config_passthrough(f->cfg, "kafka.", stop_at_second, &n), 42);
    assert_int_equal(n, 2);
}

/* Runs main and checks it failed with "kfleet-test: <expect>" (the whole line, or only its
 * start when prefix_only). */
static void check_error(fixture *f, const char *const *args, const char *const *env,
                        const char *expect, bool prefix_only)
{
    assert_int_equal(run(f, args, env), KF_CONFIG_EXIT_USAGE);
    char full[4600];
    snprintf(full, sizeof(full), "kfleet-test: %s%s", expect, prefix_only ? "" : "\n");
    if (strncmp(f->err, full, strlen(full)) != 0)
        fail_msg("expected error\n  %s\ngot\n  %s", full, f->err);
}

static void assert_error(fixture *f, const char *const *args, const char *const *env,
                         const char *expect)
{
    check_error(f, args, env, expect, false);
}

static void unknown_key_names_file_and_line(void **state)
{
    fixture *f = *state;
    const char *args[] = {"-c", data_path("unknown_key.yaml"), NULL};
    char expect[4400];
    snprintf(expect, sizeof(expect),
             "%s:3: unknown configuration key \"sink.batch.sise\" (did you mean "
             "\"sink.batch.size\"?)",
             data_path("unknown_key.yaml"));
    assert_error(f, args, NULL, expect);
    assert_non_null(strstr(f->err, "Try 'kfleet-test --help' for more information.\n"));
}

static void wrong_type_names_key_and_line(void **state)
{
    fixture *f = *state;
    const char *args[] = {"-c", data_path("wrong_type.yaml"), NULL};
    char expect[4400];
    snprintf(expect, sizeof(expect),
             "%s:3: invalid value \"lots\" for \"sink.batch.size\": expected an integer",
             data_path("wrong_type.yaml"));
    assert_error(f, args, NULL, expect);
}

static void malformed_yaml_names_line(void **state)
{
    fixture *f = *state;
    const char *args[] = {"-c", data_path("malformed.yaml"), NULL};
    char expect[4400];
    snprintf(expect, sizeof(expect), "%s:3: could not parse YAML: ", data_path("malformed.yaml"));
    check_error(f, args, NULL, expect, true);
}

static void missing_file_is_an_error(void **state)
{
    fixture *f = *state;
    const char *args[] = {"--config", "/nonexistent/kfleet.yaml", NULL};
    assert_error(f, args, NULL,
                 "could not open configuration file \"/nonexistent/kfleet.yaml\": No such file "
                 "or directory");
}

static void bad_flags_are_errors(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *args[4]; /* NULL-terminated */
        const char *expect;
    } cases[] = {
        {{"--set", "kfleet.name"}, "flag --set: expected KEY=VALUE, got \"kfleet.name\""},
        {{"--set", "=x"}, "flag --set: expected KEY=VALUE, got \"=x\""},
        {{"--set"}, "flag --set: missing value"},
        {{"--bogus"}, "unknown flag --bogus"},
        {{"-z"}, "unknown flag -z"},
        {{"--topic"}, "flag --topic: missing value"},
        {{"--batch-size=0"},
         "flag --batch-size: invalid value \"0\" for \"sink.batch.size\": out of range 1..10000"},
        {{"-b20000"},
         "flag -b: invalid value \"20000\" for \"sink.batch.size\": out of range 1..10000"},
        {{"--log-level", "loud"},
         "flag --log-level: invalid value \"loud\" for \"log.level\": expected one of debug, "
         "info, warn, error"},
        {{"--help=yes"}, "flag --help: takes no value"},
        {{"--set", "sink.batch.sixe=4"},
         "flag --set: unknown configuration key \"sink.batch.sixe\" (did you mean "
         "\"sink.batch.size\"?)"},
        {{"--set", "completely.different=4"},
         "flag --set: unknown configuration key \"completely.different\""},
        {{"t1", "t2", "t3"}, "unexpected argument \"t3\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_error(f, cases[i].args, NULL, cases[i].expect);
}

static void bad_env_is_an_error(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *var;
        const char *expect;
    } cases[] = {
        {"KFLEET_SINK_BATCH_SIZE=lots",
         "env KFLEET_SINK_BATCH_SIZE: invalid value \"lots\" for \"sink.batch.size\": expected "
         "an integer"},
        {"KFLEET_SINK_FLUSH_TIMEOUT=5 minutes",
         "env KFLEET_SINK_FLUSH_TIMEOUT: invalid value \"5 minutes\" for \"sink.flush.timeout\": "
         "expected a duration such as 500ms, 1s, 2m or 1h30m"},
        {"KFLEET_SINK_RATIO=1.5",
         "env KFLEET_SINK_RATIO: invalid value \"1.5\" for \"sink.ratio\": out of range 0..1"},
        {"KFLEET_KFLEET_EOS=maybe",
         "env KFLEET_KFLEET_EOS: invalid value \"maybe\" for \"kfleet.eos\": expected true or "
         "false"},
        {"KFLEET_KAFKA__BAD____NAME=1",
         "env KFLEET_KAFKA__BAD____NAME: cannot map the variable name to a pass-through key (use "
         "'_' for '.', '__' for '_', '___' for '-')"},
        {"KFLEET_KFLEET_TOPICS=a,,b",
         "env KFLEET_KFLEET_TOPICS: invalid value \"a,,b\" for \"kfleet.topics\": empty item in "
         "comma-separated list"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *env[] = {cases[i].var, NULL};
        assert_error(f, NULL, env, cases[i].expect);
    }
}

static int load_text(fixture *f, const char *text, kf_error *err)
{
    return kf_config_load_yaml(f->cfg, "inline.yaml", text, strlen(text), err);
}

static void yaml_structure_errors(void **state)
{
    fixture *f = *state;
    kf_error err;
    static const struct {
        const char *text;
        const char *message;
    } cases[] = {
        {"sink:\n  batch.size: 3\nsink.batch.size: 4\n",
         "inline.yaml:3: configuration key \"sink.batch.size\" is set twice in this file"},
        {"sink.batch.size: [1, 2]\n",
         "inline.yaml:1: invalid value for \"sink.batch.size\": expected an integer, got a "
         "sequence"},
        {"kfleet:\n  eos:\n    x: 1\n",
         "inline.yaml:2: invalid value for \"kfleet.eos\": expected a bool, got a mapping"},
        {"- a\n- b\n", "inline.yaml:1: expected a mapping of configuration keys"},
        {"kfleet.name: a\n---\nkfleet.name: b\n",
         "inline.yaml:3: more than one YAML document in a configuration file"},
        {"sink.batch.size:\n",
         "inline.yaml:1: invalid value for \"sink.batch.size\": expected an integer, got null"},
        {"kfleet.topics: [a, [b]]\n",
         "inline.yaml:1: items of \"kfleet.topics\" must be non-null scalars"},
        {"kafka.bad key: 1\n", "inline.yaml:1: invalid pass-through key \"kafka.bad key\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(load_text(f, cases[i].text, &err), KF_ERR_CONFIG);
        assert_string_equal(err.message, cases[i].message);
    }
    assert_int_equal(load_text(f, "s: \"unterminated\n", &err), KF_ERR_CONFIG);
    assert_non_null(strstr(err.message, "inline.yaml:"));
    assert_non_null(strstr(err.message, "could not parse YAML: found unexpected end of stream"));
    /* aliases cannot expand into an unbounded walk */
    char bomb[2048] = "a0: &a0 {}\n";
    for (int i = 1; i < 30; i++) {
        size_t len = strlen(bomb);
        snprintf(bomb + len, sizeof(bomb) - len, "a%d: &a%d {x: *a%d, y: *a%d}\n", i, i, i - 1,
                 i - 1);
    }
    assert_int_equal(load_text(f, bomb, &err), KF_ERR_CONFIG);
    assert_non_null(
        strstr(err.message, "more than 100000 mapping entries after expanding aliases"));
    /* empty documents and comments set nothing */
    int batch = f->values.batch;
    const char *source = kf_config_source(f->cfg, "sink.batch.size");
    assert_int_equal(load_text(f, "", &err), KF_OK);
    assert_int_equal(load_text(f, "# nothing\n", &err), KF_OK);
    assert_int_equal(f->values.batch, batch);
    assert_ptr_equal(kf_config_source(f->cfg, "sink.batch.size"), source);
}

static void yaml_values(void **state)
{
    fixture *f = *state;
    kf_error err;
    const char *text = "kfleet: {name: ~, topics: []}\n"
                       "sink: {ratio: 0.25, max-bytes: 9000000000, flush.timeout: 1.5s}\n"
                       "kfleet.eos: off\n";
    assert_int_equal(load_text(f, text, &err), KF_OK);
    assert_null(f->values.name);
    assert_int_equal(f->values.topics.count, 0);
    assert_true(f->values.ratio == 0.25);
    assert_int_equal(f->values.max_bytes, 9000000000LL);
    assert_int_equal(f->values.timeout_ms, 1500);
    assert_false(f->values.eos);
    assert_true(kf_config_is_set(f->cfg, "kfleet.name"));
    assert_string_equal(kf_config_source(f->cfg, "sink.ratio"), "inline.yaml:2");
    /* a quoted empty string is a value, not null */
    assert_int_equal(load_text(f, "kfleet.name: \"\"\n", &err), KF_OK);
    assert_string_equal(f->values.name, "");
}

static void required_keys_must_be_set(void **state)
{
    static const kf_config_key keys[] = {
        {.name = "source.dsn",
         .type = KF_CONFIG_STRING,
         .offset = 0,
         .flag = "dsn",
         .flags = KF_CONFIG_REQUIRED | KF_CONFIG_SECRET,
         .description = "Where to read from."},
        {0},
    };
    static const kf_config_spec spec = {.program = "kfleet-req", .keys = keys};
    char *dsn = NULL;
    kf_config *cfg;
    kf_error err;
    assert_int_equal(kf_config_new(&spec, &dsn, &cfg, &err), KF_OK);
    assert_int_equal(kf_config_check(cfg, &err), KF_ERR_CONFIG);
    assert_string_equal(err.message,
                        "required configuration key \"source.dsn\" is not set (set it in the "
                        "configuration file, as KFLEET_SOURCE_DSN, with --set source.dsn=... or "
                        "with --dsn)");
    char *env[] = {"KFLEET_SOURCE_DSN=postgres://x", NULL};
    assert_int_equal(kf_config_load_env(cfg, env, &err), KF_OK);
    assert_int_equal(kf_config_check(cfg, &err), KF_OK);
    assert_string_equal(dsn, "postgres://x");
    kf_config_destroy(cfg);
    assert_null(dsn); /* destroy frees and clears the strings it owns */
}

static void broken_tables_are_rejected(void **state)
{
    int store[4];
    kf_config *cfg;
    kf_error err;
    static const kf_config_key bad_default[] = {
        {.name = "a.b", .type = KF_CONFIG_INT, .default_value = "ten", .max = 1}, {0}};
    static const kf_config_spec s1 = {.program = "p", .keys = bad_default};
    assert_int_equal(kf_config_new(&s1, store, &cfg, &err), KF_ERR_INVALID);
    assert_null(cfg);
    assert_string_equal(err.message,
                        "invalid default \"ten\" for configuration key \"a.b\": expected an "
                        "integer");
    static const kf_config_key same_env[] = {
        {.name = "a.b-c", .type = KF_CONFIG_INT}, {.name = "a.b.c", .type = KF_CONFIG_INT}, {0}};
    static const kf_config_spec s2 = {.program = "p", .keys = same_env};
    assert_int_equal(kf_config_new(&s2, store, &cfg, &err), KF_ERR_INVALID);
    assert_string_equal(err.message, "configuration keys \"a.b-c\" and \"a.b.c\" share the "
                                     "environment variable KFLEET_A_B_C");
    static const kf_config_key reserved[] = {{.name = "x", .type = KF_CONFIG_BOOL, .flag = "help"},
                                             {0}};
    static const kf_config_spec s3 = {.program = "p", .keys = reserved};
    assert_int_equal(kf_config_new(&s3, store, &cfg, &err), KF_ERR_INVALID);
    static const kf_config_key upper[] = {{.name = "Sink.Size", .type = KF_CONFIG_INT}, {0}};
    static const kf_config_spec s4 = {.program = "p", .keys = upper};
    assert_int_equal(kf_config_new(&s4, store, &cfg, &err), KF_ERR_INVALID);
    static const kf_config_key no_values[] = {{.name = "e", .type = KF_CONFIG_ENUM}, {0}};
    static const kf_config_spec s5 = {.program = "p", .keys = no_values};
    assert_int_equal(kf_config_new(&s5, store, &cfg, &err), KF_ERR_INVALID);
}

static void print_config_redacts_secrets(void **state)
{
    fixture *f = *state;
    const char *args[] = {"--print-config", "-c", data_path("passthrough.yaml"), NULL};
    const char *env[] = {"KFLEET_SINK_AUTH=s3cr3t",
                         "KFLEET_SOURCE_DSN=postgres://app:pw123@db:5432/shop",
                         "KFLEET_KAFKA__SASL_USERNAME=alice",
                         "KFLEET_KAFKA__SSL_KEY_LOCATION=/k.pem",
                         "KFLEET_REGISTRY__BASIC_AUTH_USER_INFO=u:p",
                         "KFLEET_KAFKA__OAUTH_TOKEN=tok",
                         NULL};
    assert_int_equal(run(f, args, env), KF_CONFIG_EXIT_OK);
    assert_string_equal(f->err, "");
    const char *expect_lines[] = {
        "# effective configuration of kfleet-test; secrets are redacted\n",
        "kfleet.name: \"sim\"  # default\n",
        "sink.batch.size: 500  # default\n",
        "sink.flush.timeout: 1s  # default\n",
        "sink.ratio: 0.5  # default\n",
        "log.level: \"info\"  # default\n",
        "kfleet.topics: [\"a\", \"b\"]  # default\n",
        "sink.auth: \"[redacted]\"  # env KFLEET_SINK_AUTH\n",
        "source.dsn: \"postgres://app:[redacted]@db:5432/shop\"  # env KFLEET_SOURCE_DSN\n",
        "kafka.bootstrap.servers: \"broker1:9092\"  # ",
        "pg.password: \"[redacted]\"  # ",
        "kafka.sasl.username: \"[redacted]\"  # env KFLEET_KAFKA__SASL_USERNAME\n",
        "kafka.ssl.key.location: \"[redacted]\"  # env KFLEET_KAFKA__SSL_KEY_LOCATION\n",
        ("registry.basic.auth.user.info: \"[redacted]\"  # env "
         "KFLEET_REGISTRY__BASIC_AUTH_USER_INFO\n"),
        "kafka.oauth.token: \"[redacted]\"  # env KFLEET_KAFKA__OAUTH_TOKEN\n",
    };
    for (size_t i = 0; i < sizeof(expect_lines) / sizeof(expect_lines[0]); i++)
        if (!strstr(f->out, expect_lines[i]))
            fail_msg("missing line %s in:\n%s", expect_lines[i], f->out);
    const char *leaks[] = {"s3cr3t", "pw123", "hunter2", "alice", "/k.pem", "u:p", "tok\""};
    for (size_t i = 0; i < sizeof(leaks) / sizeof(leaks[0]); i++)
        if (strstr(f->out, leaks[i]))
            fail_msg("secret %s leaked in:\n%s", leaks[i], f->out);
}

static void print_config_is_loadable_yaml(void **state)
{
    fixture *f = *state;
    const char *args[] = {"--print-config",
                          "--set",
                          "kfleet.name=a \"quoted\"\tname",
                          "--timeout",
                          "90s",
                          "-t",
                          "x,y",
                          "--set",
                          "kafka.acks=all",
                          NULL};
    assert_int_equal(run(f, args, NULL), KF_CONFIG_EXIT_OK);
    assert_non_null(strstr(f->out, "kfleet.name: \"a \\\"quoted\\\"\\tname\"  # flag --set\n"));
    assert_non_null(strstr(f->out, "sink.flush.timeout: 1m30s  # flag --timeout\n"));
    assert_non_null(strstr(f->out, "sink.auth: null  # default\n"));
    /* what --print-config writes reads back to the same values */
    test_cfg again;
    kf_config *cfg;
    kf_error err;
    assert_int_equal(kf_config_new(&test_spec, &again, &cfg, &err), KF_OK);
    assert_int_equal(kf_config_load_yaml(cfg, "printed", f->out, f->outlen, &err), KF_OK);
    assert_string_equal(again.name, "a \"quoted\"\tname");
    assert_int_equal(again.timeout_ms, 90000);
    assert_int_equal(again.topics.count, 2);
    assert_string_equal(again.topics.items[1], "y");
    assert_string_equal(kf_config_source(cfg, "kafka.acks"), "printed:12");
    kf_config_destroy(cfg);
}

static void help_is_generated_from_the_table(void **state)
{
    fixture *f = *state;
    const char *args[] = {"--help", NULL};
    assert_int_equal(run(f, args, NULL), KF_CONFIG_EXIT_OK);
    const char *expect[] = {
        "Usage: kfleet-test [OPTIONS] [TABLE...]\nExercises the configuration module.\n",
        "  -c, --config FILE ",
        "      --set KEY=VALUE ",
        "      --print-config ",
        "  -V, --version ",
        "  sink.batch.size (int, default 500, 1..10000)\n      Rows per batch.\n"
        "      env KFLEET_SINK_BATCH_SIZE, flag --batch-size INT or -b\n",
        "  sink.flush.timeout (duration, default 1s, 1ms..1h)\n",
        "  log.level (enum, default info, one of debug|info|warn|error)\n",
        "  kfleet.eos (bool, default true)\n      Exactly-once.\n"
        "      env KFLEET_KFLEET_EOS, flag --eos [=BOOL]\n",
        "  sink.auth (string, secret)\n",
        "  kafka.*  to librdkafka",
        "env KFLEET_KAFKA__NAME\n",
        "KFLEET_KAFKA__BOOTSTRAP_SERVERS sets kafka.bootstrap.servers",
    };
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
        if (!strstr(f->out, expect[i]))
            fail_msg("help lacks \"%s\":\n%s", expect[i], f->out);
    /* --help wins over a bad environment: nothing is loaded */
    const char *env[] = {"KFLEET_SINK_BATCH_SIZE=lots", NULL};
    assert_int_equal(run(f, args, env), KF_CONFIG_EXIT_OK);

    const char *version[] = {"-V", NULL};
    assert_int_equal(run(f, version, NULL), KF_CONFIG_EXIT_OK);
    assert_string_equal(f->out, "kfleet-test " KFLEET_VERSION "\n");
}

static void reference_is_markdown(void **state)
{
    fixture *f = *state;
    const char *args[] = {"--config-reference", NULL};
    assert_int_equal(run(f, args, NULL), KF_CONFIG_EXIT_OK);
    const char *expect[] = {
        "# kfleet-test configuration\n\nExercises the configuration module.\n",
        "| Key | Type | Default | Allowed | Environment | Flag | Description |\n|---|",
        "| `sink.batch.size` | int | `500` | 1..10000 | `KFLEET_SINK_BATCH_SIZE` | "
        "`--batch-size`, `-b` | Rows per batch. |\n",
        "| `sink.ratio` | double | `0.5` | 0..1 | `KFLEET_SINK_RATIO` |  | Share \\| of rows. |\n",
        "| `log.level` | enum | `info` | debug, info, warn, error |",
        "| `sink.auth` | string |  |  | `KFLEET_SINK_AUTH` |  | **Secret** (redacted by "
        "`--print-config`). Auth blob. |\n",
        "## Pass-through keys\n",
        "- `pg.*` to the libpq connection string",
    };
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
        if (!strstr(f->out, expect[i]))
            fail_msg("reference lacks \"%s\":\n%s", expect[i], f->out);
    /* the same text straight from the table, without a config object */
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    assert_int_equal(kf_config_write_reference(&test_spec, mem), KF_OK);
    fclose(mem);
    assert_string_equal(buf, f->out);
    free(buf);
}

static void durations_parse(void **state)
{
    static const struct {
        const char *text;
        int64_t ms;
    } ok[] = {{"500ms", 500}, {"1s", 1000},         {"2m", 120000}, {"1h30m", 5400000},
              {"1.5s", 1500}, {"250", 250},         {"0", 0},       {"1d", 86400000},
              {"0.25s", 250}, {"1m30s500ms", 90500}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t ms = -1;
        assert_int_equal(kf_config_parse_duration(ok[i].text, &ms), KF_OK);
        assert_int_equal(ms, ok[i].ms);
    }
    static const char *const bad[] = {
        "", "1x", "-1s", "1.0001s", "s", "1.s", "5 s", "1sm", "99999999999999999999", "1e3ms"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms;
        if (kf_config_parse_duration(bad[i], &ms) != KF_ERR_INVALID)
            fail_msg("\"%s\" parsed as a duration", bad[i]);
    }
}

static void lists_from_every_source(void **state)
{
    fixture *f = *state;
    const char *env[] = {"KFLEET_KFLEET_TOPICS= e1 , e2,e3 ", NULL};
    assert_int_equal(run(f, NULL, env), KF_CONFIG_RUN);
    assert_int_equal(f->values.topics.count, 3);
    assert_string_equal(f->values.topics.items[0], "e1");
    assert_string_equal(f->values.topics.items[2], "e3");

    /* flags replace the env list, then append to each other */
    const char *args[] = {"--topic", "f1", "-t", "f2,f3", "--set", "kfleet.topics=f4", NULL};
    assert_int_equal(run(f, args, env), KF_CONFIG_RUN);
    assert_int_equal(f->values.topics.count, 4);
    assert_string_equal(f->values.topics.items[0], "f1");
    assert_string_equal(f->values.topics.items[1], "f2");
    assert_string_equal(f->values.topics.items[3], "f4");

    const char *empty[] = {"KFLEET_KFLEET_TOPICS=", NULL};
    assert_int_equal(run(f, NULL, empty), KF_CONFIG_RUN);
    assert_int_equal(f->values.topics.count, 0);
}

static void bool_flags_and_positionals(void **state)
{
    fixture *f = *state;
    const char *env[] = {"KFLEET_KFLEET_EOS=no", NULL};
    const char *args[] = {"orders", "--eos", "--", "--not-a-flag", NULL};
    assert_int_equal(run(f, args, env), KF_CONFIG_RUN);
    assert_true(f->values.eos);
    assert_int_equal(kf_config_arg_count(f->cfg), 2);
    assert_string_equal(kf_config_arg(f->cfg, 0), "orders");
    assert_string_equal(kf_config_arg(f->cfg, 1), "--not-a-flag");
    assert_null(kf_config_arg(f->cfg, 2));
    const char *off[] = {"--eos=off", NULL};
    assert_int_equal(run(f, off, NULL), KF_CONFIG_RUN);
    assert_false(f->values.eos);
    assert_int_equal(kf_config_arg_count(f->cfg), 0);
}

static void env_names_and_secret_patterns(void **state)
{
    char buf[64];
    assert_int_equal(kf_config_env_name("sink.batch-size.x_y", buf, sizeof(buf)), KF_OK);
    assert_string_equal(buf, "KFLEET_SINK_BATCH_SIZE_X_Y");
    assert_int_equal(kf_config_env_name("a.very.long.key", buf, 10), KF_ERR_INVALID);
    assert_true(kf_config_key_is_secret("pg.password"));
    assert_true(kf_config_key_is_secret("kafka.sasl.mechanisms"));
    assert_true(kf_config_key_is_secret("kafka.ssl.key.pem"));
    assert_true(kf_config_key_is_secret("registry.bearer.auth.token"));
    assert_true(kf_config_key_is_secret("api.client_secret"));
    assert_false(kf_config_key_is_secret("kafka.ssl.ca.location"));
    assert_false(kf_config_key_is_secret("kafka.bootstrap.servers"));
    assert_false(kf_config_key_is_secret("kafka.notsasl.x"));
}

/* kf_config_start: the whole start of a main(), mapped to exit codes. */
static void start_maps_actions_to_exit_codes(void **state)
{
    test_cfg c;
    kf_config *cfg = (kf_config *)1;
    char *version[] = {"kfleet-test", "--version", NULL};
    assert_int_equal(kf_config_start(&test_spec, &c, 2, version, &cfg), 0);
    assert_null(cfg);
    char *bad[] = {"kfleet-test", "--no-such-flag", NULL};
    assert_int_equal(kf_config_start(&test_spec, &c, 2, bad, &cfg), 2);
    assert_null(cfg);
    char *run[] = {"kfleet-test", "t1", NULL};
    assert_int_equal(kf_config_start(&test_spec, &c, 2, run, &cfg), -1);
    assert_non_null(cfg);
    assert_int_equal(kf_config_arg_count(cfg), 1);
    assert_string_equal(kf_config_arg(cfg, 0), "t1");
    kf_config_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(defaults_are_applied, setup, teardown),
        cmocka_unit_test_setup_teardown(file_then_env_then_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(set_flag_wins_over_env_and_file, setup, teardown),
        cmocka_unit_test_setup_teardown(passthrough_kept_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_key_names_file_and_line, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_type_names_key_and_line, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_yaml_names_line, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_file_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_flags_are_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_env_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(yaml_structure_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(yaml_values, setup, teardown),
        cmocka_unit_test(required_keys_must_be_set),
        cmocka_unit_test(broken_tables_are_rejected),
        cmocka_unit_test_setup_teardown(print_config_redacts_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(print_config_is_loadable_yaml, setup, teardown),
        cmocka_unit_test_setup_teardown(help_is_generated_from_the_table, setup, teardown),
        cmocka_unit_test_setup_teardown(reference_is_markdown, setup, teardown),
        cmocka_unit_test(durations_parse),
        cmocka_unit_test(start_maps_actions_to_exit_codes),
        cmocka_unit_test_setup_teardown(lists_from_every_source, setup, teardown),
        cmocka_unit_test_setup_teardown(bool_flags_and_positionals, setup, teardown),
        cmocka_unit_test(env_names_and_secret_patterns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
