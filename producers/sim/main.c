/* kfleet-sim: the CDC workload simulator. Parses flags, loads the table specs, runs the engine
 * until the event limit or a signal, and writes changes as JSON lines (--to stdout). */
#include <errno.h>
#include <getopt.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "jsonl.h"
#include "kfleet/error.h"
#include "kfleet/log.h"
#include "spec.h"

/* The clock a seeded run starts from unless --start-time says otherwise, so the same seed
 * and spec give byte-identical output on any day. */
#define DEFAULT_SEEDED_START "2024-01-01T00:00:00Z"
#define MAX_SPECS            256

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    if (stop_requested)
        _exit(130);
    stop_requested = 1;
}

typedef struct options {
    const char *specs[MAX_SPECS];
    int nspecs;
    bool have_seed;
    uint64_t seed;
    uint64_t events;
    uint64_t batches;
    uint32_t batch_size;
    int64_t tick_us;
    const char *start_time;
    const char *history;
    kf_log_level log_level;
    kf_log_format log_format;
} options;

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: kfleet-sim [options]\n"
        "\n"
        "Simulates row changes (inserts, updates, deletes) and schema evolution over the\n"
        "tables of YAML specs, and writes them as JSON lines.\n"
        "\n"
        "  --spec FILE         a table spec; repeatable. Default: every schemas/sim/*.yaml\n"
        "                      under $KFLEET_SIM_SPEC_DIR, ./schemas/sim or the source tree\n"
        "  --to OUTPUT         where changes go: stdout (JSON lines; the default)\n"
        "  --seed N            seed of every random draw; the same seed and specs give\n"
        "                      byte-identical output. Default: a random seed, logged\n"
        "  --start-time TIME   simulated clock at start (YYYY-MM-DDTHH:MM:SS[Z], or now).\n"
        "                      Default: " DEFAULT_SEEDED_START " with --seed, else now\n"
        "  --tick-us N         simulated microseconds between changes (default 1000)\n"
        "  --events N          stop after N changes (default: run until SIGINT/SIGTERM)\n"
        "  --batches N         stop after N batches\n"
        "  --batch-size N      rows inserted per table and batch unless a spec sets\n"
        "                      workload.inserts (default 100)\n"
        "  --history FILE      also append every schema change to FILE (JSON lines)\n"
        "  --log-level LEVEL   debug, info, warn or error (default info)\n"
        "  --log-format FMT    logfmt or json (default logfmt)\n"
        "  --help              this text\n"
        "  --version           the version\n"
        "\n"
        "Output lines: {\"type\":\"change\",...} per change, {\"type\":\"schema_change\",...} per\n"
        "evolution step, and a final {\"type\":\"summary\",...}. Exit status: 0 done, 1 runtime\n"
        "failure, 2 bad flags or spec.\n");
}

static int parse_u64(const char *flag, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s == '-' || *s == '\0')
        goto bad;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno || v < min || v > max)
        goto bad;
    *out = v;
    return 0;
bad:
    fprintf(stderr, "kfleet-sim: %s needs an integer between %llu and %llu, not \"%s\"\n", flag,
            (unsigned long long)min, (unsigned long long)max, s);
    return -1;
}

static int parse_options(int argc, char **argv, options *o)
{
    enum {
        OPT_SPEC = 256,
        OPT_TO,
        OPT_SEED,
        OPT_START,
        OPT_TICK,
        OPT_EVENTS,
        OPT_BATCHES,
        OPT_BATCH_SIZE,
        OPT_HISTORY,
        OPT_LOG_LEVEL,
        OPT_LOG_FORMAT,
        OPT_HELP,
        OPT_VERSION,
    };
    static const struct option longopts[] = {
        {"spec", required_argument, NULL, OPT_SPEC},
        {"to", required_argument, NULL, OPT_TO},
        {"seed", required_argument, NULL, OPT_SEED},
        {"start-time", required_argument, NULL, OPT_START},
        {"tick-us", required_argument, NULL, OPT_TICK},
        {"events", required_argument, NULL, OPT_EVENTS},
        {"batches", required_argument, NULL, OPT_BATCHES},
        {"batch-size", required_argument, NULL, OPT_BATCH_SIZE},
        {"history", required_argument, NULL, OPT_HISTORY},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    o->batch_size = 100;
    o->tick_us = 1000;
    o->log_level = KF_LOG_INFO;
    o->log_format = KF_LOG_LOGFMT;
    opterr = 0;
    int c;
    uint64_t v;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_SPEC:
            if (o->nspecs == MAX_SPECS) {
                fprintf(stderr, "kfleet-sim: at most %d --spec files\n", MAX_SPECS);
                return 2;
            }
            o->specs[o->nspecs++] = optarg;
            break;
        case OPT_TO:
            if (strcmp(optarg, "stdout") != 0) {
                fprintf(stderr, "kfleet-sim: unknown output \"%s\" for --to (expected stdout)\n",
                        optarg);
                return 2;
            }
            break;
        case OPT_SEED:
            if (parse_u64("--seed", optarg, 0, UINT64_MAX, &o->seed) != 0)
                return 2;
            o->have_seed = true;
            break;
        case OPT_START:
            o->start_time = optarg;
            break;
        case OPT_TICK:
            if (parse_u64("--tick-us", optarg, 1, 86400000000ULL, &v) != 0)
                return 2;
            o->tick_us = (int64_t)v;
            break;
        case OPT_EVENTS:
            if (parse_u64("--events", optarg, 1, UINT64_MAX, &o->events) != 0)
                return 2;
            break;
        case OPT_BATCHES:
            if (parse_u64("--batches", optarg, 1, UINT64_MAX, &o->batches) != 0)
                return 2;
            break;
        case OPT_BATCH_SIZE:
            if (parse_u64("--batch-size", optarg, 1, 1000000, &v) != 0)
                return 2;
            o->batch_size = (uint32_t)v;
            break;
        case OPT_HISTORY:
            o->history = optarg;
            break;
        case OPT_LOG_LEVEL:
            if (kf_log_level_parse(optarg, &o->log_level) != KF_OK) {
                fprintf(stderr, "kfleet-sim: unknown log level \"%s\"\n", optarg);
                return 2;
            }
            break;
        case OPT_LOG_FORMAT:
            if (kf_log_format_parse(optarg, &o->log_format) != KF_OK) {
                fprintf(stderr, "kfleet-sim: unknown log format \"%s\"\n", optarg);
                return 2;
            }
            break;
        case OPT_HELP:
            usage(stdout);
            return 0;
        case OPT_VERSION:
            printf("kfleet-sim %s\n", KFLEET_VERSION);
            return 0;
        default:
            if (optopt)
                fprintf(stderr, "kfleet-sim: option needs a value or is unknown: %s\n",
                        argv[optind - 1]);
            else
                fprintf(stderr, "kfleet-sim: unknown option \"%s\"\n", argv[optind - 1]);
            fprintf(stderr, "try kfleet-sim --help\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "kfleet-sim: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    return -1;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Loads --spec files, or every *.yaml of the default spec directory, in sorted order. */
static int load_specs(const options *o, kf_sim_spec *spec, kf_error *err)
{
    for (int i = 0; i < o->nspecs; i++) {
        int rc = kf_sim_spec_load_file(spec, o->specs[i], err);
        if (rc != KF_OK)
            return rc;
    }
    if (o->nspecs > 0)
        return KF_OK;
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
    int rc = KF_OK;
    for (size_t i = 0; i < g.gl_pathc && rc == KF_OK; i++)
        rc = kf_sim_spec_load_file(spec, g.gl_pathv[i], err);
    globfree(&g);
    return rc;
}

static int64_t wall_clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
    options o;
    int prc = parse_options(argc, argv, &o);
    if (prc >= 0)
        return prc;
    kf_log_init("kfleet-sim", o.log_level, o.log_format);

    int64_t start_us;
    const char *start = o.start_time ? o.start_time : o.have_seed ? DEFAULT_SEEDED_START : "now";
    if (strcmp(start, "now") == 0) {
        start_us = wall_clock_us();
    } else {
        char why[160];
        kf_sim_coltype ts_type = {.type = KF_SIM_TIMESTAMPTZ};
        kf_sim_cell cell;
        if (kf_sim_value_parse(&ts_type, start, &cell, why, sizeof(why)) != KF_OK) {
            fprintf(stderr, "kfleet-sim: bad --start-time: %s\n", why);
            return 2;
        }
        start_us = cell.i;
    }
    if (!o.have_seed && getrandom(&o.seed, sizeof(o.seed), 0) != (ssize_t)sizeof(o.seed))
        o.seed = (uint64_t)wall_clock_us() ^ ((uint64_t)getpid() << 32);

    int exit_code = 1;
    kf_error err;
    kf_error_clear(&err);
    kf_sim_spec *spec = kf_sim_spec_new();
    if (!spec) {
        kf_log(KF_LOG_ERROR, "could not start: out of memory", (char *)NULL);
        return 1;
    }
    int rc = load_specs(&o, spec, &err);
    if (rc != KF_OK) {
        fprintf(stderr, "kfleet-sim: %s\n", err.message);
        exit_code = rc == KF_ERR_NOMEM ? 1 : 2;
        goto out_destroy_spec;
    }
    if (kf_sim_spec_table_count(spec) == 0) {
        fprintf(stderr, "kfleet-sim: the specs declare no tables\n");
        exit_code = 2;
        goto out_destroy_spec;
    }
    FILE *history = NULL;
    if (o.history && !(history = fopen(o.history, "a"))) {
        fprintf(stderr, "kfleet-sim: could not open history file \"%s\": %s\n", o.history,
                strerror(errno));
        exit_code = 2;
        goto out_destroy_spec;
    }
    kf_sim_jsonl *out = kf_sim_jsonl_new(stdout, history);
    if (!out) {
        kf_log(KF_LOG_ERROR, "could not start: out of memory", (char *)NULL);
        goto out_close_history;
    }
    kf_sim_engine_config cfg = {
        .seed = o.seed,
        .start_us = start_us,
        .tick_us = o.tick_us,
        .batch_size = o.batch_size,
        .max_events = o.events,
        .on_change = kf_sim_jsonl_change,
        .on_evolve = kf_sim_jsonl_evolution,
        .ctx = out,
    };
    kf_sim_engine *engine = kf_sim_engine_new(spec, &cfg, &err);
    if (!engine) {
        kf_log(KF_LOG_ERROR, err.message, (char *)NULL);
        goto out_destroy_output;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    char seed_text[32], tables_text[32];
    snprintf(seed_text, sizeof(seed_text), "%llu", (unsigned long long)o.seed);
    snprintf(tables_text, sizeof(tables_text), "%zu", kf_sim_spec_table_count(spec));
    kf_log(KF_LOG_INFO, "simulation started", "seed", seed_text, "tables", tables_text,
           (char *)NULL);

    rc = KF_OK;
    while (!stop_requested && !kf_sim_engine_done(engine) &&
           (o.batches == 0 || kf_sim_engine_batches(engine) < o.batches)) {
        rc = kf_sim_engine_run_batch(engine, &err);
        if (rc != KF_OK)
            break;
    }
    if (rc != KF_OK) {
        kf_log(KF_LOG_ERROR, "simulation failed", "reason", err.message, (char *)NULL);
    } else if (kf_sim_jsonl_summary(out, engine) == KF_OK && kf_sim_jsonl_flush(out) == KF_OK) {
        char events_text[32];
        snprintf(events_text, sizeof(events_text), "%llu",
                 (unsigned long long)kf_sim_engine_events(engine));
        kf_log(KF_LOG_INFO, "simulation finished", "events", events_text, "seed", seed_text,
               (char *)NULL);
        exit_code = 0;
    }
    if (kf_sim_jsonl_flush(out) != KF_OK) {
        kf_log(KF_LOG_ERROR, "could not write the output", "reason", strerror(errno), (char *)NULL);
        exit_code = 1;
    }
    kf_sim_engine_destroy(engine);
out_destroy_output:
    kf_sim_jsonl_destroy(out);
out_close_history:
    if (history)
        fclose(history);
out_destroy_spec:
    kf_sim_spec_destroy(spec);
    return exit_code;
}
