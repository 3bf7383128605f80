/* kfleet-pipeline: the pipeline run's helper. `report` (the default) says what a run did and
 * checks it; `prepare` creates a run's topics and Postgres schema; `watch` samples the sink's
 * commit markers for the latency figures; `drain` waits until every stage has caught up;
 * `prune` deletes what earlier runs left behind. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kfleet/app.h"
#include "kfleet/config.h"
#include "kfleet/log.h"
#include "pipeline.h"
#include "report.h"

typedef struct report_cfg {
    kf_app_config app;
    char *expect;
    char *changes;
    char *sim_log;
    kf_strlist contracts;
    char *pg_dsn;
    char *schema;
    char *vgroup;
    char *sgroup;
    char *samples;
    char *produced;
    char *validated;
    int64_t interval_ms;
    int64_t warmup_ms;
    char *json;
    char *series;
} report_cfg;

#define GROUP_KEYS(cfg_t)                                                                          \
    {.name = "pipeline.validate.group",                                                            \
     .type = KF_CONFIG_STRING,                                                                     \
     .offset = offsetof(cfg_t, vgroup),                                                            \
     .flag = "validate-group",                                                                     \
     .flags = KF_CONFIG_REQUIRED,                                                                  \
     .description = "Consumer group of the validate workers."},                                    \
    {                                                                                              \
        .name = "pipeline.sink.group", .type = KF_CONFIG_STRING,                                   \
        .offset = offsetof(cfg_t, sgroup), .flag = "sink-group", .flags = KF_CONFIG_REQUIRED,      \
        .description = "Consumer group of the Postgres sink workers (the group_id of their "       \
                       "kfleet_meta.sync_markers rows)."                                           \
    }

#define PG_KEY(cfg_t)                                                                              \
    {                                                                                              \
        .name = "pg.dsn", .type = KF_CONFIG_STRING, .offset = offsetof(cfg_t, pg_dsn),             \
        .flag = "pg-dsn", .flags = KF_CONFIG_SECRET | KF_CONFIG_REQUIRED,                          \
        .description = "The sink's database (postgresql:// URI or key=value conninfo)."            \
    }

static const kf_config_key REPORT_KEYS[] = {
    KF_APP_CONFIG_KEYS(report_cfg, app),
    {.name = "pipeline.expect",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(report_cfg, expect),
     .flag = "expect",
     .flags = KF_CONFIG_REQUIRED,
     .description = "The simulator's expected final state (kfleet-sim --expect)."},
    {.name = "pipeline.changes",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(report_cfg, changes),
     .flag = "changes",
     .flags = KF_CONFIG_REQUIRED,
     .description = "The simulator's JSON-lines change stream with the same seed, specs and "
                    "event count (kfleet-sim --to stdout)."},
    {.name = "pipeline.sim.log",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(report_cfg, sim_log),
     .flag = "sim-log",
     .flags = KF_CONFIG_REQUIRED,
     .description = "The JSON log (--log-format json) of the simulator's Kafka run."},
    {.name = "pipeline.contracts",
     .type = KF_CONFIG_LIST,
     .offset = offsetof(report_cfg, contracts),
     .flag = "contract",
     .flags = KF_CONFIG_REQUIRED,
     .description = "The contracts the validate workers ran with. Repeatable."},
    PG_KEY(report_cfg),
    {.name = "pipeline.target.schema",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(report_cfg, schema),
     .default_value = "public",
     .flag = "target-schema",
     .description = "Postgres schema of the sink's tables."},
    GROUP_KEYS(report_cfg),
    {.name = "pipeline.samples",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(report_cfg, samples),
     .flag = "samples",
     .description = "Marker samples written by kfleet-pipeline watch; gives throughput and "
                    "latency."},
    {.name = "pipeline.sample.interval",
     .type = KF_CONFIG_DURATION_MS,
     .offset = offsetof(report_cfg, interval_ms),
     .default_value = "20ms",
     .min = 1,
     .max = 10000,
     .flag = "sample-interval",
     .description = "The interval the samples were taken at (stated with the latency)."},
    {.name = "pipeline.produced.samples",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(report_cfg, produced),
     .flag = "produced-samples",
     .description = "The input topics' end offsets sampled by kfleet-pipeline watch; with "
                    "--validated-samples gives the latency per stage."},
    {.name = "pipeline.validated.samples",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(report_cfg, validated),
     .flag = "validated-samples",
     .description = "The validate group's committed offsets sampled by kfleet-pipeline watch."},
    {.name = "pipeline.warmup",
     .type = KF_CONFIG_DURATION_MS,
     .offset = offsetof(report_cfg, warmup_ms),
     .default_value = "0",
     .min = 0,
     .max = 3600000,
     .flag = "warmup",
     .description = "Events of the run's first span this long are left out of the latency "
                    "percentiles (which are also given over every event)."},
    {.name = "pipeline.json",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(report_cfg, json),
     .flag = "json",
     .description = "Also write the report as JSON to this file."},
    {.name = "pipeline.series",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(report_cfg, series),
     .flag = "series",
     .description = "Write events/s, p50 and p99 latency per second (tab-separated) here."},
    {0},
};

static const kf_config_spec REPORT_SPEC = {
    .program = PL_PROGRAM,
    .summary = "Reports what a pipeline run did (events, schema changes, quarantined records per "
               "rule against the injected ones, Postgres tables against the simulator's "
               "expected state, lag, throughput, latency) and exits 1 when a check fails. "
               "Subcommands: prepare, watch, drain, prune.",
    .keys = REPORT_KEYS,
};

typedef struct prepare_cfg {
    kf_app_config app;
    kf_strlist tables;
    int partitions;
    char *pg_dsn;
    char *schema;
} prepare_cfg;

#define TABLE_KEY(cfg_t)                                                                           \
    {                                                                                              \
        .name = "pipeline.tables", .type = KF_CONFIG_LIST, .offset = offsetof(cfg_t, tables),      \
        .flag = "table", .flags = KF_CONFIG_REQUIRED,                                              \
        .description = "Tables of the run as db.table. Repeatable."                                \
    }

static const kf_config_key PREPARE_KEYS[] = {
    KF_APP_CONFIG_KEYS(prepare_cfg, app),
    TABLE_KEY(prepare_cfg),
    PG_KEY(prepare_cfg),
    {.name = "pipeline.target.schema",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(prepare_cfg, schema),
     .default_value = "public",
     .flag = "target-schema",
     .description = "Postgres schema of the sink's tables, created when missing."},
    {.name = "pipeline.partitions",
     .type = KF_CONFIG_INT,
     .offset = offsetof(prepare_cfg, partitions),
     .default_value = "3",
     .min = 1,
     .max = 1000,
     .flag = "partitions",
     .description = "Partitions of every topic."},
    {0},
};

static const kf_config_spec PREPARE_SPEC = {
    .program = PL_PROGRAM " prepare",
    .summary = "Creates the input, valid and dead-letter topics of the tables and the sink's "
               "Postgres schema (existing ones are kept).",
    .keys = PREPARE_KEYS,
};

typedef struct watch_cfg {
    kf_app_config app;
    char *pg_dsn;
    char *sgroup;
    int64_t interval_ms;
    char *out;
    kf_strlist tables;
    char *vgroup;
    char *produced_out;
    char *validated_out;
} watch_cfg;

static const kf_config_key WATCH_KEYS[] = {
    KF_APP_CONFIG_KEYS(watch_cfg, app),
    PG_KEY(watch_cfg),
    {.name = "pipeline.sink.group",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(watch_cfg, sgroup),
     .flag = "sink-group",
     .flags = KF_CONFIG_REQUIRED,
     .description = "Consumer group of the sink workers."},
    {.name = "pipeline.sample.interval",
     .type = KF_CONFIG_DURATION_MS,
     .offset = offsetof(watch_cfg, interval_ms),
     .default_value = "20ms",
     .min = 1,
     .max = 10000,
     .flag = "interval",
     .description = "How often the markers are read."},
    {.name = "pipeline.samples",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(watch_cfg, out),
     .flag = "out",
     .flags = KF_CONFIG_REQUIRED,
     .description = "File the samples are appended to."},
    {.name = "pipeline.tables",
     .type = KF_CONFIG_LIST,
     .offset = offsetof(watch_cfg, tables),
     .flag = "table",
     .description = "Tables of the run as db.table (repeatable): with them, the input topics' "
                    "end offsets and the validate group's committed offsets are sampled too "
                    "(needs --validate-group, --produced-out and --validated-out)."},
    {.name = "pipeline.validate.group",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(watch_cfg, vgroup),
     .flag = "validate-group",
     .description = "Consumer group of the validate workers."},
    {.name = "pipeline.produced.samples",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(watch_cfg, produced_out),
     .flag = "produced-out",
     .description = "File the input topics' end offsets are appended to."},
    {.name = "pipeline.validated.samples",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(watch_cfg, validated_out),
     .flag = "validated-out",
     .description = "File the validate group's committed offsets are appended to."},
    {0},
};

static const kf_config_spec WATCH_SPEC = {
    .program = PL_PROGRAM " watch",
    .summary = "Samples the sink's kfleet_meta.sync_markers until SIGTERM/SIGINT, writing a line "
               "\"ms topic partition next_offset\" whenever a marker moved; with --table, also "
               "the input topics' end offsets and the validate group's commits (per-stage "
               "latency).",
    .keys = WATCH_KEYS,
};

typedef struct drain_cfg {
    kf_app_config app;
    kf_strlist tables;
    char *pg_dsn;
    char *vgroup;
    char *sgroup;
    int64_t timeout_ms;
} drain_cfg;

static const kf_config_key DRAIN_KEYS[] = {
    KF_APP_CONFIG_KEYS(drain_cfg, app),
    TABLE_KEY(drain_cfg),
    PG_KEY(drain_cfg),
    GROUP_KEYS(drain_cfg),
    {.name = "pipeline.drain.timeout",
     .type = KF_CONFIG_DURATION_MS,
     .offset = offsetof(drain_cfg, timeout_ms),
     .default_value = "120s",
     .min = 1000,
     .max = 86400000,
     .flag = "timeout",
     .description = "Give up (exit 1) when the stages have not caught up by then."},
    {0},
};

static const kf_config_spec DRAIN_SPEC = {
    .program = PL_PROGRAM " drain",
    .summary = "Waits until validate has committed the end of the input topics and the sink has "
               "stored the end of the valid topics in kfleet_meta.sync_markers.",
    .keys = DRAIN_KEYS,
};

typedef struct prune_cfg {
    kf_app_config app;
    char *pg_dsn;
    int keep;
    char *prefix;
} prune_cfg;

static const kf_config_key PRUNE_KEYS[] = {
    KF_APP_CONFIG_KEYS(prune_cfg, app),
    PG_KEY(prune_cfg),
    {.name = "pipeline.prune.keep",
     .type = KF_CONFIG_INT,
     .offset = offsetof(prune_cfg, keep),
     .default_value = "3",
     .min = 0,
     .max = 100000,
     .flag = "keep-runs",
     .description = "The newest runs left alone; every earlier one is deleted (0: none is kept)."},
    {.name = "pipeline.prune.prefix",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(prune_cfg, prefix),
     .default_value = "run_",
     .flag = "run-prefix",
     .description = "What run ids start with: a run is <prefix><MMDD_HHMMSS>_<pid>, the way "
                    "pipeline.sh names them."},
    {0},
};

static const kf_config_spec PRUNE_SPEC = {
    .program = PL_PROGRAM " prune",
    .summary = "Deletes what earlier pipeline runs left behind, except the newest --keep-runs "
               "runs (ordered by the time stamp in their id): the topics <id>.*, their registry "
               "subjects <topic>-key and <topic>-value, the Postgres schema <id> and the "
               "kfleet_meta rows of the groups <id>-* (and of the schema). Names that do not "
               "match the run id pattern exactly are never touched, nor is a run still running "
               "(one of its consumer groups <id>-* has members). Exits 1 when a step failed "
               "(the rest is still done).",
    .keys = PRUNE_KEYS,
};

/* Parses the configuration of one subcommand: 1 = run, 0 = done (help...), 2 = usage error. */
static int parse(const kf_config_spec *spec, void *store, kf_config **cfg, int argc, char **argv)
{
    kf_error err;
    if (kf_config_new(spec, store, cfg, &err) != KF_OK) {
        fprintf(stderr, "%s: %s\n", spec->program, err.message);
        return 2;
    }
    kf_config_action a = kf_config_main(*cfg, argc, argv, NULL, stdout, stderr);
    if (a == KF_CONFIG_RUN)
        return 1;
    kf_config_destroy(*cfg);
    *cfg = NULL;
    return a == KF_CONFIG_EXIT_OK ? 0 : 2;
}

/* "<p>.<db>.<t>", "<p>.valid.<db>.<t>" and "<p>.dlq.<p>.<db>.<t>" per table (or only the
 * first two); NULL on a malformed table name or out of memory. */
static char **run_topics(const char *prefix, const kf_strlist *tables, bool dlq, size_t *n)
{
    size_t per = dlq ? 3 : 2;
    char **names = calloc(tables->count * per + 1, sizeof(*names));
    *n = 0;
    for (size_t i = 0; names && i < tables->count; i++) {
        const char *t = tables->items[i];
        if (!strchr(t, '.')) {
            fprintf(stderr, "%s: table \"%s\" is not written as db.table\n", PL_PROGRAM, t);
            goto out_free;
        }
        char buf[3][700];
        snprintf(buf[0], sizeof(buf[0]), "%s.%s", prefix, t);
        snprintf(buf[1], sizeof(buf[1]), "%s.valid.%s", prefix, t);
        snprintf(buf[2], sizeof(buf[2]), "%s.dlq.%s.%s", prefix, prefix, t);
        for (size_t k = 0; k < per; k++)
            if (!(names[(*n)++] = strdup(buf[k])))
                goto out_free;
    }
    if (names)
        return names;
out_free:
    for (size_t i = 0; names && i < *n; i++)
        free(names[i]);
    free(names);
    return NULL;
}

static void names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

static int create_schema(const char *dsn, const char *schema, kf_error *err)
{
    PGconn *conn = PQconnectdb(dsn);
    int rc = KF_OK;
    if (PQstatus(conn) != CONNECTION_OK) {
        rc = kf_error_set(err, KF_ERR_PG, true, "could not connect to Postgres: %s",
                          PQerrorMessage(conn));
    } else {
        char *q = PQescapeIdentifier(conn, schema, strlen(schema));
        char sql[600];
        snprintf(sql, sizeof(sql), "CREATE SCHEMA IF NOT EXISTS %s", q ? q : "\"\"");
        PQfreemem(q);
        PGresult *res = PQexec(conn, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = kf_error_set(err, KF_ERR_PG, false, "could not create schema \"%s\": %s", schema,
                              PQresultErrorMessage(res));
        PQclear(res);
    }
    PQfinish(conn);
    return rc;
}

static int run_prepare_cmd(int argc, char **argv)
{
    prepare_cfg c;
    kf_config *cfg = NULL;
    int p = parse(&PREPARE_SPEC, &c, &cfg, argc, argv);
    if (p != 1)
        return p;
    kf_app app;
    kf_app_kv kv = {0};
    kf_error err;
    size_t n = 0;
    char **names = NULL;
    int rc = kf_app_start(&app, PL_PROGRAM, cfg, &c.app, 0, &err);
    if (rc == KF_OK && (rc = kf_app_kafka_kv(cfg, NULL, 0, &kv, &err)) == KF_OK) {
        names = run_topics(c.app.topic_prefix, &c.tables, true, &n);
        pl_kafka k = {.kv = kv.kv, .npairs = kv.npairs};
        rc = names ? pl_topics_create(&k, names, n, c.partitions, &err)
                   : kf_error_set(&err, KF_ERR_CONFIG, false, "could not name the topics");
    }
    if (rc == KF_OK)
        rc = create_schema(c.pg_dsn, c.schema, &err);
    if (rc < 0)
        fprintf(stderr, "%s prepare: %s\n", PL_PROGRAM, err.message);
    names_free(names, n);
    kf_app_kv_free(&kv);
    kf_app_stop(&app);
    kf_config_destroy(cfg);
    return kf_app_exit_code(rc);
}

static int run_watch_cmd(int argc, char **argv)
{
    watch_cfg c;
    kf_config *cfg = NULL;
    int p = parse(&WATCH_SPEC, &c, &cfg, argc, argv);
    if (p != 1)
        return p;
    kf_app app;
    kf_app_kv kv = {0};
    kf_error err;
    pl_watch_out w = {0};
    PGconn *conn = NULL;
    size_t n = 0;
    char **names = NULL, **in = NULL;
    int rc = kf_app_start(&app, PL_PROGRAM, cfg, &c.app, 0, &err);
    bool stages = c.tables.count > 0;
    if (rc == KF_OK && stages && (!c.vgroup || !c.produced_out || !c.validated_out))
        rc = kf_error_set(&err, KF_ERR_CONFIG, false,
                          "--table needs --validate-group, --produced-out and --validated-out");
    if (rc == KF_OK && !(w.markers = fopen(c.out, "a")))
        rc = kf_error_set(&err, KF_ERR_IO, false, "could not open \"%s\"", c.out);
    if (rc == KF_OK && stages) {
        if (!(w.produced = fopen(c.produced_out, "a")))
            rc = kf_error_set(&err, KF_ERR_IO, false, "could not open \"%s\"", c.produced_out);
        else if (!(w.validated = fopen(c.validated_out, "a")))
            rc = kf_error_set(&err, KF_ERR_IO, false, "could not open \"%s\"", c.validated_out);
        else if ((rc = kf_app_kafka_kv(cfg, NULL, 0, &kv, &err)) == KF_OK) {
            names = run_topics(c.app.topic_prefix, &c.tables, false, &n);
            in = calloc(c.tables.count + 1, sizeof(*in));
            if (!names || !in)
                rc = kf_error_set(&err, KF_ERR_CONFIG, false, "could not name the topics");
            for (size_t i = 0; rc == KF_OK && i < c.tables.count; i++)
                in[i] = names[2 * i];
            pl_kafka k = {.kv = kv.kv, .npairs = kv.npairs};
            if (rc == KF_OK &&
                !(w.stages = pl_stage_sampler_new(&k, c.vgroup, in, c.tables.count, &err)))
                rc = err.code;
        }
    }
    if (rc == KF_OK) {
        conn = PQconnectdb(c.pg_dsn);
        if (PQstatus(conn) != CONNECTION_OK)
            rc = kf_error_set(&err, KF_ERR_PG, true, "could not connect to Postgres: %s",
                              PQerrorMessage(conn));
    }
    if (rc == KF_OK)
        rc = pl_watch(conn, c.sgroup, (int)c.interval_ms, &w, &err);
    if (rc < 0)
        fprintf(stderr, "%s watch: %s\n", PL_PROGRAM, err.message);
    if (conn)
        PQfinish(conn);
    pl_stage_sampler_destroy(w.stages);
    if (w.validated)
        fclose(w.validated);
    if (w.produced)
        fclose(w.produced);
    if (w.markers)
        fclose(w.markers);
    free(in);
    names_free(names, n);
    kf_app_kv_free(&kv);
    kf_app_stop(&app);
    kf_config_destroy(cfg);
    return kf_app_exit_code(rc);
}

static int run_drain_cmd(int argc, char **argv)
{
    drain_cfg c;
    kf_config *cfg = NULL;
    int p = parse(&DRAIN_SPEC, &c, &cfg, argc, argv);
    if (p != 1)
        return p;
    kf_app app;
    kf_app_kv kv = {0};
    kf_error err;
    size_t n = 0;
    char **names = NULL, **in = NULL, **valid = NULL;
    PGconn *conn = NULL;
    int rc = kf_app_start(&app, PL_PROGRAM, cfg, &c.app, 0, &err);
    if (rc == KF_OK)
        rc = kf_app_kafka_kv(cfg, NULL, 0, &kv, &err);
    if (rc == KF_OK) {
        names = run_topics(c.app.topic_prefix, &c.tables, false, &n);
        in = calloc(c.tables.count + 1, sizeof(*in));
        valid = calloc(c.tables.count + 1, sizeof(*valid));
        if (!names || !in || !valid)
            rc = kf_error_set(&err, KF_ERR_CONFIG, false, "could not name the topics");
        for (size_t i = 0; rc == KF_OK && i < c.tables.count; i++) {
            in[i] = names[2 * i];
            valid[i] = names[2 * i + 1];
        }
    }
    if (rc == KF_OK) {
        conn = PQconnectdb(c.pg_dsn);
        if (PQstatus(conn) != CONNECTION_OK)
            rc = kf_error_set(&err, KF_ERR_PG, true, "could not connect to Postgres: %s",
                              PQerrorMessage(conn));
    }
    if (rc == KF_OK) {
        pl_kafka k = {.kv = kv.kv, .npairs = kv.npairs};
        rc = pl_drain(&k, conn, c.vgroup, in, c.tables.count, c.sgroup, valid, c.tables.count,
                      c.timeout_ms, &err);
    }
    if (rc < 0)
        fprintf(stderr, "%s drain: %s\n", PL_PROGRAM, err.message);
    if (conn)
        PQfinish(conn);
    free(in);
    free(valid);
    names_free(names, n);
    kf_app_kv_free(&kv);
    kf_app_stop(&app);
    kf_config_destroy(cfg);
    return rc == KF_ERR_TIMEOUT ? 1 : kf_app_exit_code(rc);
}

static int run_prune_cmd(int argc, char **argv)
{
    prune_cfg c;
    kf_config *cfg = NULL;
    int p = parse(&PRUNE_SPEC, &c, &cfg, argc, argv);
    if (p != 1)
        return p;
    kf_app app;
    kf_app_kv kv = {0};
    kf_error err;
    int rc = kf_app_start(&app, PL_PROGRAM, cfg, &c.app, KF_APP_NEED_REGISTRY, &err);
    if (rc == KF_OK)
        rc = kf_app_kafka_kv(cfg, NULL, 0, &kv, &err);
    if (rc == KF_OK) {
        pl_kafka k = {.kv = kv.kv, .npairs = kv.npairs};
        pl_prune_opts o = {.kafka = &k,
                           .registry = app.registry,
                           .pg_dsn = c.pg_dsn,
                           .prefix = c.prefix,
                           .keep = c.keep,
                           .now = time(NULL)};
        pl_prune_stats st;
        rc = pl_prune(&o, &st, &err);
    }
    if (rc < 0)
        fprintf(stderr, "%s prune: %s\n", PL_PROGRAM, err.message);
    kf_app_kv_free(&kv);
    kf_app_stop(&app);
    kf_config_destroy(cfg);
    return kf_app_exit_code(rc);
}

static int run_report_cmd(int argc, char **argv)
{
    report_cfg c;
    kf_config *cfg = NULL;
    int p = parse(&REPORT_SPEC, &c, &cfg, argc, argv);
    if (p != 1)
        return p;
    kf_app app;
    kf_app_kv kv = {0};
    kf_error err;
    int rc = kf_app_start(&app, PL_PROGRAM, cfg, &c.app, KF_APP_NEED_REGISTRY, &err);
    if (rc == KF_OK && !c.produced != !c.validated)
        rc = kf_error_set(&err, KF_ERR_CONFIG, false,
                          "--produced-samples and --validated-samples go together");
    if (rc == KF_OK)
        rc = kf_app_kafka_kv(cfg, NULL, 0, &kv, &err);
    if (rc == KF_OK) {
        pl_report_opts o = {.prefix = c.app.topic_prefix,
                            .expect = c.expect,
                            .changes = c.changes,
                            .sim_log = c.sim_log,
                            .contracts = c.contracts.items,
                            .ncontracts = c.contracts.count,
                            .pg_dsn = c.pg_dsn,
                            .schema = c.schema,
                            .validate_group = c.vgroup,
                            .sink_group = c.sgroup,
                            .samples = c.samples,
                            .produced_samples = c.produced,
                            .validated_samples = c.validated,
                            .sample_interval_ms = (int)c.interval_ms,
                            .warmup_ms = c.warmup_ms,
                            .json_out = c.json,
                            .series_out = c.series,
                            .kafka = {.kv = kv.kv, .npairs = kv.npairs},
                            .registry = app.registry};
        rc = pl_report(&o, stdout, &err);
    }
    if (rc < 0)
        fprintf(stderr, "%s: %s\n", PL_PROGRAM, err.message);
    kf_app_kv_free(&kv);
    kf_app_stop(&app);
    kf_config_destroy(cfg);
    return rc == 1 ? 1 : kf_app_exit_code(rc);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "prepare") == 0)
        return run_prepare_cmd(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "watch") == 0)
        return run_watch_cmd(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "drain") == 0)
        return run_drain_cmd(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "prune") == 0)
        return run_prune_cmd(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "report") == 0)
        return run_report_cmd(argc - 1, argv + 1);
    return run_report_cmd(argc, argv);
}
