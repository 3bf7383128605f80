/* kfleet-sim: the CDC workload simulator. Loads the configuration and the table specs, picks
 * the output (Kafka, PostgreSQL, MariaDB or JSON lines on stdout), runs the loop and maps the
 * result to an exit code. */
#include <errno.h>
#include <glob.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jsonl.h"
#include "kafka_out.h"
#include "kfleet/app.h"
#include "kfleet/config.h"
#include "kfleet/error.h"
#include "kfleet/log.h"
#include "run.h"
#include "spec.h"
#include "sql_out.h"
#include "state.h"
#include "strategy_host.h"

/* The clock a seeded run starts from unless sim.start.time says otherwise, so the same seed
 * and spec give byte-identical output on any day. */
#define DEFAULT_SEEDED_START "2024-01-01T00:00:00Z"

enum { TO_KAFKA = 0, TO_POSTGRES, TO_MYSQL, TO_STDOUT };
static const char *const to_names[] = {"kafka", "postgres", "mysql", "stdout", NULL};

typedef struct sim_cfg {
    kf_app_config app;
    kf_strlist specs;
    char *seed;
    char *start_time;
    int64_t tick_us;
    int64_t events;
    int64_t batches;
    int64_t duration_ms;
    double rate;
    int batch_size;
    int to;
    char *dsn;
    char *db_schema;
    bool replace;
    char *expect;
    char *history;
    bool resume;
    char *state_dir;
    bool tombstones;
    int partitions;
    int replication;
    int max_in_flight;
    int64_t flush_timeout_ms;
    char *strategy;
    char *strategy_args;
} sim_cfg;

static const kf_config_key keys[] = {
    KF_APP_CONFIG_KEYS(sim_cfg, app),
    {.name = "sim.spec",
     .type = KF_CONFIG_LIST,
     .offset = offsetof(sim_cfg, specs),
     .flag = "spec",
     .description = "Table spec files (YAML); repeatable. Default: every *.yaml of "
                    "$KFLEET_SIM_SPEC_DIR, ./schemas/sim or the source tree's schemas/sim."},
    {.name = "sim.seed",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(sim_cfg, seed),
     .flag = "seed",
     .description = "Seed of every random draw (0..2^64-1): the same seed and specs give "
                    "byte-identical streams. Default: a random seed, logged."},
    {.name = "sim.start.time",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(sim_cfg, start_time),
     .flag = "start-time",
     .description = "Simulated clock at start (YYYY-MM-DDTHH:MM:SS[Z], or now). Default: "
                    "" DEFAULT_SEEDED_START " with a seed, else now."},
    {.name = "sim.tick.us",
     .type = KF_CONFIG_INT64,
     .offset = offsetof(sim_cfg, tick_us),
     .default_value = "1000",
     .min = 1,
     .max = 86400000000.0,
     .flag = "tick-us",
     .description = "Simulated microseconds between two changes."},
    {.name = "sim.events",
     .type = KF_CONFIG_INT64,
     .offset = offsetof(sim_cfg, events),
     .default_value = "0",
     .min = 0,
     .max = 9e18,
     .flag = "events",
     .description = "Stop after this many changes in all (a resumed run counts the earlier "
                    "ones); 0 = no limit."},
    {.name = "sim.batches",
     .type = KF_CONFIG_INT64,
     .offset = offsetof(sim_cfg, batches),
     .default_value = "0",
     .min = 0,
     .max = 9e18,
     .flag = "batches",
     .description = "Stop after this many batches; 0 = no limit."},
    {.name = "sim.duration",
     .type = KF_CONFIG_DURATION_MS,
     .offset = offsetof(sim_cfg, duration_ms),
     .default_value = "0",
     .min = 0,
     .max = 9e15,
     .flag = "duration",
     .description = "Stop generating after this long (e.g. 30s, 5m); 0 = no limit."},
    {.name = "sim.rate",
     .type = KF_CONFIG_DOUBLE,
     .offset = offsetof(sim_cfg, rate),
     .default_value = "0",
     .min = 0,
     .max = 1e9,
     .flag = "rate",
     .description = "Changes per second; 0 = as fast as the output takes them."},
    {.name = "sim.batch.size",
     .type = KF_CONFIG_INT,
     .offset = offsetof(sim_cfg, batch_size),
     .default_value = "100",
     .min = 1,
     .max = 1000000,
     .flag = "batch-size",
     .description = "Rows inserted per table and batch unless a spec sets workload.inserts. "
                    "A batch is one transaction for the database outputs."},
    {.name = "sim.to",
     .type = KF_CONFIG_ENUM,
     .offset = offsetof(sim_cfg, to),
     .default_value = "kafka",
     .enum_values = to_names,
     .flag = "to",
     .description = "Output: kafka (Avro change events), postgres or mysql (DDL and DML on the "
                    "database of sim.dsn), stdout (JSON lines)."},
    {.name = "sim.dsn",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(sim_cfg, dsn),
     .flag = "dsn",
     .flags = KF_CONFIG_SECRET,
     .description = "Database of --to postgres (a libpq conninfo or postgresql:// URL) or "
                    "--to mysql (mysql://user:password@host:port/database)."},
    {.name = "sim.db.schema",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(sim_cfg, db_schema),
     .flag = "db-schema",
     .description = "Schema (PostgreSQL) or database (MariaDB) the tables go into, created if "
                    "missing. Default: the connection's own."},
    {.name = "sim.replace",
     .type = KF_CONFIG_BOOL,
     .offset = offsetof(sim_cfg, replace),
     .default_value = "false",
     .flag = "replace",
     .description = "Database outputs: drop the simulated tables first when they exist "
                    "(without it a fresh run refuses existing tables)."},
    {.name = "sim.expect",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(sim_cfg, expect),
     .flag = "expect",
     .description = "Write the expected final state of every table (JSON) to this file."},
    {.name = "sim.history",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(sim_cfg, history),
     .flag = "history",
     .description = "Append every schema change to this file (JSON lines)."},
    {.name = "sim.resume",
     .type = KF_CONFIG_BOOL,
     .offset = offsetof(sim_cfg, resume),
     .default_value = "false",
     .flag = "resume",
     .description = "Continue the run recorded in sim.state.dir: regenerate it silently up to "
                    "the last change the destination acknowledged, then output the rest."},
    {.name = "sim.state.dir",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(sim_cfg, state_dir),
     .default_value = ".",
     .flag = "state-dir",
     .description = "Directory of the progress file " KF_SIM_STATE_FILE
                    " (kafka, postgres and mysql outputs); empty = no progress file."},
    {.name = "sim.tombstones",
     .type = KF_CONFIG_BOOL,
     .offset = offsetof(sim_cfg, tombstones),
     .default_value = "true",
     .flag = "tombstones",
     .description = "Kafka: a tombstone (key, null value) after each delete."},
    {.name = "sim.topic.partitions",
     .type = KF_CONFIG_INT,
     .offset = offsetof(sim_cfg, partitions),
     .default_value = "3",
     .min = 1,
     .max = 10000,
     .flag = "partitions",
     .description = "Kafka: partitions of each topic the simulator creates."},
    {.name = "sim.topic.replication",
     .type = KF_CONFIG_INT,
     .offset = offsetof(sim_cfg, replication),
     .default_value = "-1",
     .min = -1,
     .max = 100,
     .flag = "replication",
     .description = "Kafka: replication factor of created topics; -1 = the broker's default."},
    {.name = "sim.max.in.flight",
     .type = KF_CONFIG_INT,
     .offset = offsetof(sim_cfg, max_in_flight),
     .default_value = "100000",
     .min = 1,
     .max = 10000000,
     .flag = "max-in-flight",
     .description = "Kafka: messages produced and not yet acknowledged before producing waits."},
    {.name = "sim.flush.timeout",
     .type = KF_CONFIG_DURATION_MS,
     .offset = offsetof(sim_cfg, flush_timeout_ms),
     .default_value = "60s",
     .min = 1,
     .max = 86400000,
     .flag = "flush-timeout",
     .description = "How long the final flush or commit may take at the end of a run."},
    {.name = "sim.strategy",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(sim_cfg, strategy),
     .flag = "strategy",
     .description = "Shared object of a custom mutation and/or evolution policy (the C "
                    "interface of producers/sim/strategy.h); the engine still enforces the "
                    "rules and refuses forbidden choices. Default: the built-in policies."},
    {.name = "sim.strategy.args",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(sim_cfg, strategy_args),
     .flag = "strategy-args",
     .description = "Argument text handed to the strategy's init (its own syntax, e.g. "
                    "hot=10,share=0.9); needs sim.strategy."},
    {0},
};

static const kf_config_spec config_spec = {
    .program = "kfleet-sim",
    .summary = "Simulates row changes and schema evolution over declared tables and publishes "
               "them as Debezium-compatible Avro change events to Kafka, applies them to "
               "PostgreSQL or MariaDB, or writes them as JSON lines.",
    .keys = keys,
};

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Loads the spec files (the configured ones, or every *.yaml of the default directory in
 * sorted order) and digests their bytes for the progress file. */
static int load_specs(const sim_cfg *c, kf_sim_spec *spec, uint64_t *digest, kf_error *err)
{
    *digest = KF_SIM_DIGEST_INIT;
    int rc = KF_OK;
    for (size_t i = 0; i < c->specs.count && rc == KF_OK; i++) {
        rc = kf_sim_spec_load_file(spec, c->specs.items[i], err);
        if (rc == KF_OK)
            rc = kf_sim_state_digest_file(c->specs.items[i], digest, err);
    }
    if (c->specs.count > 0)
        return rc;
    const char *dir = getenv("KFLEET_SIM_SPEC_DIR");
    if (!dir || !*dir)
        dir = is_dir("schemas/sim") ? "schemas/sim" : KFLEET_SOURCE_DIR "/schemas/sim";
    char pattern[4096];
    snprintf(pattern, sizeof(pattern), "%s/*.yaml", dir);
    glob_t g;
    int grc = glob(pattern, 0, NULL, &g);
    if (grc == GLOB_NOMATCH)
        return kf_error_set(err, KF_ERR_CONFIG, false,
                            "no spec files match \"%s\": give --spec FILE", pattern);
    if (grc != 0)
        return kf_error_set(err, KF_ERR_IO, false, "could not list \"%s\"", pattern);
    for (size_t i = 0; i < g.gl_pathc && rc == KF_OK; i++) {
        rc = kf_sim_spec_load_file(spec, g.gl_pathv[i], err);
        if (rc == KF_OK)
            rc = kf_sim_state_digest_file(g.gl_pathv[i], digest, err);
    }
    globfree(&g);
    return rc;
}

/* Loads the configured strategy (not started yet) and folds it into the digest: the bytes of
 * its file (or its name, when the dynamic linker looks it up) and its arguments, so --resume
 * refuses a run recorded with another policy. *out stays NULL without sim.strategy. */
static int load_strategy(const sim_cfg *c, kf_sim_strategy **out, uint64_t *digest, kf_error *err)
{
    *out = NULL;
    bool have_args = c->strategy_args && *c->strategy_args;
    if (!c->strategy || !*c->strategy)
        return have_args ? kf_error_set(err, KF_ERR_CONFIG, false,
                                        "sim.strategy.args needs sim.strategy (--strategy PATH)")
                         : KF_OK;
    kf_sim_strategy *s = kf_sim_strategy_load(c->strategy, c->strategy_args, err);
    if (!s)
        return err->code;
    uint64_t h = *digest;
    int rc = KF_OK;
    if (strchr(c->strategy, '/'))
        rc = kf_sim_state_digest_file(c->strategy, &h, err);
    else
        for (const char *p = c->strategy; *p; p++)
            h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
    h = (h ^ 0xffu) * 0x100000001b3ULL; /* keeps "lib" + "args" apart from "liba" + "rgs" */
    for (const char *p = have_args ? c->strategy_args : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
    if (rc != KF_OK) {
        kf_sim_strategy_destroy(s);
        return rc;
    }
    *digest = h;
    *out = s;
    return KF_OK;
}

static int64_t wall_clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Seed, clock start and the resume point, from the configuration or the progress file. */
static int plan_run(const sim_cfg *c, const char *state_path, uint64_t digest,
                    kf_sim_run_config *rc_out, kf_error *err)
{
    kf_sim_state *st = &rc_out->state;
    memset(st, 0, sizeof(*st));
    st->spec_digest = digest;
    st->tick_us = c->tick_us;
    st->batch_size = (uint32_t)c->batch_size;
    snprintf(st->output, sizeof(st->output), "%s", to_names[c->to]);
    bool have_seed = c->seed && *c->seed;
    if (have_seed) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(c->seed, &end, 10);
        if (*c->seed == '-' || *end || errno)
            return kf_error_set(err, KF_ERR_CONFIG, false,
                                "sim.seed needs an integer between 0 and 2^64-1, not \"%s\"",
                                c->seed);
        st->seed = v;
    } else if (getrandom(&st->seed, sizeof(st->seed), 0) != (ssize_t)sizeof(st->seed)) {
        st->seed = (uint64_t)wall_clock_us() ^ ((uint64_t)getpid() << 32);
    }
    const char *start = c->start_time && *c->start_time ? c->start_time
                        : have_seed                     ? DEFAULT_SEEDED_START
                                                        : "now";
    if (strcmp(start, "now") == 0) {
        st->start_us = wall_clock_us();
    } else {
        char why[160];
        kf_sim_coltype ts_type = {.type = KF_SIM_TIMESTAMPTZ};
        kf_sim_cell cell;
        if (kf_sim_value_parse(&ts_type, start, &cell, why, sizeof(why)) != KF_OK)
            return kf_error_set(err, KF_ERR_CONFIG, false, "sim.start.time: %s", why);
        st->start_us = cell.i;
    }
    if (!c->resume)
        return KF_OK;
    if (!state_path)
        return kf_error_set(err, KF_ERR_CONFIG, false,
                            "sim.resume needs a progress file: set sim.state.dir");
    kf_sim_state prev;
    int rc = kf_sim_state_load(state_path, &prev, err);
    if (rc != KF_OK)
        return rc == KF_ERR_NOT_FOUND ? KF_ERR_CONFIG : rc;
    if ((rc = kf_sim_state_check_resume(&prev, st, have_seed, state_path, err)) != KF_OK)
        return rc;
    st->seed = prev.seed;
    st->start_us = prev.start_us;
    rc_out->resume_seq = prev.acked_seq;
    return KF_OK;
}

static int registry_new(const kf_config *cfg, const sim_cfg *c, kf_registry **out, kf_error *err)
{
    if (!c->app.registry_url || !*c->app.registry_url)
        return kf_error_set(err, KF_ERR_CONFIG, false,
                            "--to kafka needs registry.url (--registry-url, KFLEET_REGISTRY_URL)");
    kf_registry_config rcfg;
    char userinfo[512];
    int rc = kf_app_registry_config(cfg, &c->app, &rcfg, userinfo, sizeof(userinfo), err);
    if (rc != KF_OK)
        return rc;
    *out = kf_registry_new(&rcfg, err);
    return *out ? KF_OK : err->code;
}

/* Producer defaults: acks=all with idempotence (kafka.h), a short linger so batches fill. */
static const char *const kafka_defaults[] = {"linger.ms", "5", "compression.type", "none"};

static int output_new(const kf_config *cfg, const sim_cfg *c, kf_registry **reg,
                      kf_sim_jsonl **jsonl, kf_sim_output *out, kf_error *err)
{
    if (c->to == TO_STDOUT) {
        if (!(*jsonl = kf_sim_jsonl_new(stdout, NULL)))
            return kf_error_set(err, KF_ERR_NOMEM, false, "could not start: out of memory");
        kf_sim_jsonl_output(*jsonl, out);
        return KF_OK;
    }
    if (c->to == TO_POSTGRES || c->to == TO_MYSQL) {
        if (!c->dsn || !*c->dsn)
            return kf_error_set(err, KF_ERR_CONFIG, false,
                                "--to %s needs the database: --dsn DSN (sim.dsn)", to_names[c->to]);
        kf_sim_sql_config scfg = {
            .dialect = c->to == TO_POSTGRES ? KF_SIM_SQL_POSTGRES : KF_SIM_SQL_MYSQL,
            .dsn = c->dsn,
            .schema = c->db_schema && *c->db_schema ? c->db_schema : NULL,
            .replace = c->replace,
        };
        return kf_sim_sql_output_new(&scfg, out, err);
    }
    int rc = registry_new(cfg, c, reg, err);
    if (rc != KF_OK)
        return rc;
    kf_app_kv kv;
    if ((rc = kf_app_kafka_kv(cfg, kafka_defaults, 2, &kv, err)) != KF_OK)
        return rc;
    if (!kf_app_kv_get(&kv, "bootstrap.servers")) {
        kf_app_kv_free(&kv);
        return kf_error_set(err, KF_ERR_CONFIG, false,
                            "--to kafka needs kafka.bootstrap.servers (--set "
                            "kafka.bootstrap.servers=HOST:PORT or "
                            "KFLEET_KAFKA__BOOTSTRAP_SERVERS)");
    }
    kf_sim_kafka_config kcfg = {
        .prefix = c->app.topic_prefix ? c->app.topic_prefix : "kfleet",
        .partitions = c->partitions,
        .replication_factor = c->replication,
        .tombstones = c->tombstones,
        .kv = kv.kv,
        .npairs = kv.npairs,
        .max_in_flight = (size_t)c->max_in_flight,
        .registry = *reg,
    };
    rc = kf_sim_kafka_output_new(&kcfg, out, err);
    kf_app_kv_free(&kv);
    return rc;
}

/* The closing log line; output_rate is the output's throughput without start-up (what the
 * produce benchmark compares). */
static void log_result(const kf_sim_run_result *res, uint64_t seed)
{
    char f[6][32];
    snprintf(f[0], sizeof(f[0]), "%llu", (unsigned long long)res->events);
    snprintf(f[1], sizeof(f[1]), "%llu", (unsigned long long)res->replayed);
    snprintf(f[2], sizeof(f[2]), "%llu", (unsigned long long)res->durable);
    snprintf(f[3], sizeof(f[3]), "%llu", (unsigned long long)seed);
    snprintf(f[4], sizeof(f[4]), "%lld", (long long)res->output_ms);
    snprintf(f[5], sizeof(f[5]), "%.0f",
             res->output_ms > 0 ? (double)res->emitted * 1000.0 / (double)res->output_ms : 0.0);
    kf_log(KF_LOG_INFO, res->stopped ? "simulation stopped" : "simulation finished", "changes",
           f[0], "replayed", f[1], "durable", f[2], "seed", f[3], "output_ms", f[4], "output_rate",
           f[5], (char *)NULL);
}

int main(int argc, char **argv)
{
    sim_cfg c;
    kf_config *cfg = NULL;
    kf_error err;
    kf_error_clear(&err);
    memset(&c, 0, sizeof(c));
    int early = kf_config_start(&config_spec, &c, argc, argv, &cfg);
    if (early >= 0)
        return early;

    int exit_code = 1;
    kf_app app;
    memset(&app, 0, sizeof(app));
    kf_sim_spec *spec = kf_sim_spec_new();
    kf_registry *reg = NULL;
    kf_sim_jsonl *jsonl = NULL;
    FILE *history = NULL;
    kf_sim_output out = {0};
    kf_sim_strategy *strategy = NULL;
    char state_path[4096];
    uint64_t digest;
    kf_sim_run_config rcfg;
    memset(&rcfg, 0, sizeof(rcfg));
    int rc;
    if (!spec) {
        fprintf(stderr, "kfleet-sim: could not start: out of memory\n");
        goto out_destroy_config;
    }
    if ((rc = kf_app_start(&app, "kfleet-sim", cfg, &c.app, 0, &err)) != KF_OK)
        goto out_report;
    if ((rc = load_specs(&c, spec, &digest, &err)) != KF_OK)
        goto out_report;
    if (kf_sim_spec_table_count(spec) == 0) {
        rc = kf_error_set(&err, KF_ERR_CONFIG, false, "the specs declare no tables");
        goto out_report;
    }
    if ((rc = load_strategy(&c, &strategy, &digest, &err)) != KF_OK)
        goto out_report;
    bool with_state = c.to != TO_STDOUT && c.state_dir && *c.state_dir;
    if (with_state && (size_t)snprintf(state_path, sizeof(state_path), "%s/%s", c.state_dir,
                                       KF_SIM_STATE_FILE) >= sizeof(state_path)) {
        rc = kf_error_set(&err, KF_ERR_CONFIG, false, "sim.state.dir is too long");
        goto out_report;
    }
    if (c.resume && c.to == TO_STDOUT) {
        rc = kf_error_set(&err, KF_ERR_CONFIG, false,
                          "sim.resume needs an output that acknowledges (kafka, postgres, mysql)");
        goto out_report;
    }
    if ((rc = plan_run(&c, with_state ? state_path : NULL, digest, &rcfg, &err)) != KF_OK)
        goto out_report;
    if (strategy && (rc = kf_sim_strategy_start(strategy, rcfg.state.seed, &err)) != KF_OK)
        goto out_report;
    if (c.history && *c.history && !(history = fopen(c.history, "a"))) {
        rc = kf_error_set(&err, KF_ERR_CONFIG, false, "could not open history file \"%s\": %s",
                          c.history, strerror(errno));
        goto out_report;
    }
    if ((rc = output_new(cfg, &c, &reg, &jsonl, &out, &err)) != KF_OK)
        goto out_report;

    rcfg.engine = (kf_sim_engine_config){
        .seed = rcfg.state.seed,
        .start_us = rcfg.state.start_us,
        .tick_us = c.tick_us,
        .batch_size = (uint32_t)c.batch_size,
        .max_events = (uint64_t)c.events,
        .strategy = strategy,
    };
    rcfg.max_batches = (uint64_t)c.batches;
    rcfg.duration_ms = c.duration_ms;
    rcfg.rate = c.rate;
    rcfg.state_path = with_state ? state_path : NULL;
    rcfg.expect_path = c.expect && *c.expect ? c.expect : NULL;
    rcfg.history = history;
    rcfg.progress = isatty(STDERR_FILENO) && c.to != TO_STDOUT;
    rcfg.metrics = app.metrics;
    rcfg.close_timeout_ms = (int)c.flush_timeout_ms;
    kf_logf(KF_LOG_INFO, "simulation started: seed %llu, %zu tables, output %s%s",
            (unsigned long long)rcfg.state.seed, kf_sim_spec_table_count(spec), out.name,
            rcfg.resume_seq ? ", resuming" : "");
    if (strategy)
        kf_logf(KF_LOG_INFO, "strategy \"%s\" loaded from \"%s\" (arguments \"%s\")%s%s",
                kf_sim_strategy_name(strategy), kf_sim_strategy_path(strategy),
                c.strategy_args ? c.strategy_args : "",
                kf_sim_strategy_has_mutation(strategy) ? ", choosing mutations" : "",
                kf_sim_strategy_has_evolution(strategy) ? ", choosing schema changes" : "");
    if (rcfg.resume_seq)
        kf_logf(KF_LOG_INFO, "replaying changes 1..%llu silently",
                (unsigned long long)rcfg.resume_seq);
    kf_app_set_ready(&app, true, NULL);
    kf_sim_run_result res;
    rc = kf_sim_run(spec, &rcfg, &out, &res, &err);
    out.ops->destroy(out.self);
    if (rc == KF_OK) {
        log_result(&res, rcfg.state.seed);
        exit_code = 0;
        goto out_close;
    }
    kf_logf(KF_LOG_ERROR, "simulation failed after change %llu (durable up to %llu): %s",
            (unsigned long long)res.events, (unsigned long long)res.durable, err.message);
    exit_code = kf_app_exit_code(rc);
    goto out_close;
out_report:
    if (out.ops)
        out.ops->destroy(out.self);
    fprintf(stderr, "kfleet-sim: %s\n", err.message);
    exit_code = kf_app_exit_code(rc);
out_close:
    if (history)
        fclose(history);
    kf_sim_jsonl_destroy(jsonl);
    kf_sim_strategy_destroy(strategy); /* after the engine, which kf_sim_run destroyed */
    kf_registry_destroy(reg);
    kf_sim_spec_destroy(spec);
    kf_app_stop(&app);
out_destroy_config:
    kf_config_destroy(cfg);
    return exit_code;
}
