/* Benchmark: kfleet-sink-pg loading N change events from Kafka into a Postgres table against
 * psql loading the same N rows from a CSV file (\copy; and \copy into a temp table plus one
 * INSERT ... ON CONFLICT for 50 % updates), alternating in the same run; median ratios, and
 * the sink's peak resident set. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "kfleet/event.h"
#include "kfleet/kafka.h"
#include "kfleet/log.h"
#include "kfleet/registry.h"
#include "kfleet/serde.h"
#include "kfleet/table.h"

#define PROGRAM    "kfleet-bench-sink_pg"
#define PARTITIONS 3
#define WAIT_MS    600000

enum { INSERTS = 0, UPSERTS = 1, NKINDS = 2 };
static const char *const kind_name[NKINDS] = {"inserts", "upserts"};

__attribute__((noreturn)) static void die(const char *what)
{
    fprintf(stderr, PROGRAM ": %s\n", what);
    exit(1);
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, PROGRAM ": %s is not set: run eval \"$(tools/stack env)\"\n", name);
        exit(1);
    }
    return v;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the rows: one function gives the values for both the events and the CSV ---- */

static const struct {
    const char *name, *type;
    int pk;
} COLS[] = {{"id", "bigint", 1}, {"email", "varchar(120)", 0},  {"status", "varchar(16)", 0},
            {"qty", "int", 0},   {"price", "decimal(10,2)", 0}, {"created_at", "timestamp", 0},
            {"note", "text", 0}, {"country", "varchar(40)", 0}};
#define NCOLS (sizeof(COLS) / sizeof(COLS[0]))

typedef struct row {
    long id;
    char email[64], price[32], note[96];
    const char *status;
    long qty;
    int64_t created_us;
} row;

static void row_make(row *r, long id, int version)
{
    static const char *const statuses[] = {"pending", "paid", "shipped", "delivered", "cancelled"};
    r->id = id;
    snprintf(r->email, sizeof(r->email), "customer%ld.v%d@example.com", id, version);
    r->status = statuses[(id + version) % 5];
    r->qty = (id * 7 + version) % 1000;
    snprintf(r->price, sizeof(r->price), "%ld.%02ld", (id + version) % 900 + 10, id % 100);
    r->created_us = INT64_C(1709528767123456) + (int64_t)id * 1000000 + version;
    snprintf(r->note, sizeof(r->note), "order number %ld placed through the web shop checkout v%d",
             id, version);
}

static void row_csv(FILE *f, const row *r)
{
    time_t secs = (time_t)(r->created_us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char ts[64];
    strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(f, "%ld,%s,%s,%ld,%s,%s.%06d,%s,Portugal\n", r->id, r->email, r->status, r->qty,
            r->price, ts, (int)(r->created_us % 1000000), r->note);
}

/* The id and version of the k-th event (1-based) of a stream. Upserts alternate an update of
 * an existing key (1..n/2, preloaded) and an insert of a new one (n/2+1..n). */
static long stream_id(int kind, long k, long n, kf_op *op)
{
    if (kind == INSERTS || k % 2 == 1) {
        *op = KF_OP_CREATE;
        return kind == INSERTS ? k : n / 2 + (k + 1) / 2;
    }
    *op = KF_OP_UPDATE;
    return k / 2;
}

/* ---- Kafka input and CSV files ---- */

typedef struct input {
    char topic[NKINDS][160];
    char csv[NKINDS][200];
    char preload[200];
    size_t value_bytes;
    size_t csv_bytes;
} input;

static kf_table *table_shape(const char *name)
{
    kf_error err;
    kf_table *t = kf_table_new("bench", "shop", NULL, name, &err);
    if (!t)
        die(err.message);
    for (size_t i = 0; i < NCOLS; i++) {
        kf_column c = {.name = COLS[i].name, .pk_order = COLS[i].pk, .nullable = !COLS[i].pk};
        if (kf_coltype_parse(COLS[i].type, &c, &err) || kf_table_add_column(t, &c, &err))
            die(err.message);
    }
    return t;
}

static void produce(kf_admin *a, const char *bootstrap, const char *registry_url, const char *table,
                    input *in, long n)
{
    kf_error err;
    kf_registry_config rc = {.url = registry_url};
    kf_registry *reg = kf_registry_new(&rc, &err);
    kf_serde *serde = reg ? kf_serde_new(reg, &err) : NULL;
    if (!serde)
        die(err.message);
    kf_table *t = table_shape(table);
    const char *kv[] = {"bootstrap.servers", bootstrap, "linger.ms", "5", "batch.size", "16384"};
    kf_producer *p = kf_producer_new(kv, 3, NULL, &err);
    if (!p)
        die(err.message);
    kf_buf key = {0}, value = {0};
    for (int kind = 0; kind < NKINDS; kind++) {
        kf_topic_spec spec = {
            .name = in->topic[kind], .partitions = PARTITIONS, .replication_factor = 1};
        if (kf_admin_create_topics(a, &spec, 1, false, 30000, &err))
            die(err.message);
        char *ks = kf_table_key_schema(t, &err), *es = kf_table_envelope_schema(t, &err);
        char subject[300];
        int32_t kid, vid;
        snprintf(subject, sizeof(subject), "%s-key", in->topic[kind]);
        if (!ks || !es || kf_serde_register(serde, subject, ks, &kid, &err))
            die(err.message);
        snprintf(subject, sizeof(subject), "%s-value", in->topic[kind]);
        if (kf_serde_register(serde, subject, es, &vid, &err))
            die(err.message);
        free(ks);
        free(es);
        kf_event_writer *w = kf_event_writer_new(serde, t, kid, vid, &err);
        kf_source src = {.version = "0.1.0",
                         .connector = "sim",
                         .name = "bench",
                         .db = "shop",
                         .table = table,
                         .snapshot = "false",
                         .has_seq = true};
        if (!w || kf_event_writer_set_source(w, &src, &err))
            die(err.message);
        FILE *csv = fopen(in->csv[kind], "w");
        if (!csv)
            die("could not write a CSV file");
        for (long k = 1; k <= n; k++) {
            kf_op op;
            row r;
            row_make(&r, stream_id(kind, k, n, &op), 1);
            row_csv(csv, &r);
            if (kf_event_writer_begin(w, op, 1700000000000 + k, &err) ||
                kf_event_set_int(w, KF_AFTER, 0, r.id, &err) ||
                kf_event_set_string(w, KF_AFTER, 1, r.email, strlen(r.email), &err) ||
                kf_event_set_string(w, KF_AFTER, 2, r.status, strlen(r.status), &err) ||
                kf_event_set_int(w, KF_AFTER, 3, r.qty, &err) ||
                kf_event_set_string(w, KF_AFTER, 4, r.price, strlen(r.price), &err) ||
                kf_event_set_int(w, KF_AFTER, 5, r.created_us, &err) ||
                kf_event_set_string(w, KF_AFTER, 6, r.note, strlen(r.note), &err) ||
                kf_event_set_string(w, KF_AFTER, 7, "Portugal", 8, &err) ||
                kf_event_writer_encode(w, &key, &value, &err))
                die(err.message);
            kf_produce_msg m = {.topic = in->topic[kind],
                                .partition = RD_KAFKA_PARTITION_UA,
                                .key = key.data,
                                .key_len = key.len,
                                .value = value.data,
                                .value_len = value.len};
            if (kf_producer_produce(p, &m, NULL, &err))
                die(err.message);
        }
        in->value_bytes = value.len;
        in->csv_bytes = (size_t)ftell(csv) / (size_t)n;
        if (fclose(csv) != 0)
            die("could not write a CSV file");
        kf_event_writer_destroy(w);
    }
    if (kf_producer_flush(p, 120000, &err) || kf_producer_failed(p, &err))
        die(err.message);
    FILE *pre = fopen(in->preload, "w");
    if (!pre)
        die("could not write the preload CSV file");
    for (long id = 1; id <= n / 2; id++) {
        row r;
        row_make(&r, id, 0);
        row_csv(pre, &r);
    }
    if (fclose(pre) != 0)
        die("could not write the preload CSV file");
    kf_buf_free(&key);
    kf_buf_free(&value);
    kf_producer_destroy(p);
    kf_table_destroy(t);
    kf_serde_destroy(serde);
    kf_registry_destroy(reg);
}

/* ---- Postgres ---- */

static void pg_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fprintf(stderr, PROGRAM ": %s: %s", sql, PQerrorMessage(c));
        exit(1);
    }
    PQclear(r);
}

static void pg_text(PGconn *c, const char *sql, char *out, size_t cap)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        fprintf(stderr, PROGRAM ": %s: %s", sql, PQerrorMessage(c));
        exit(1);
    }
    snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
}

/* Empties the table, preloads the upsert case's existing keys and vacuums, untimed. */
static void reset_table(PGconn *c, PGconn *admin, const char *table, int kind, const char *preload)
{
    char sql[512];
    snprintf(sql, sizeof(sql), "TRUNCATE \"%s\"", table);
    pg_exec(c, sql);
    if (kind == UPSERTS) {
        snprintf(sql, sizeof(sql), "COPY \"%s\" FROM STDIN WITH (FORMAT csv)", table);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_COPY_IN)
            die(PQerrorMessage(c));
        PQclear(r);
        FILE *f = fopen(preload, "r");
        if (!f)
            die("could not read the preload CSV file");
        char buf[65536];
        size_t got;
        while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
            if (PQputCopyData(c, buf, (int)got) != 1)
                die(PQerrorMessage(c));
        fclose(f);
        if (PQputCopyEnd(c, NULL) != 1)
            die(PQerrorMessage(c));
        while ((r = PQgetResult(c)) != NULL) {
            if (PQresultStatus(r) != PGRES_COMMAND_OK)
                die(PQerrorMessage(c));
            PQclear(r);
        }
    }
    snprintf(sql, sizeof(sql), "VACUUM ANALYZE \"%s\"", table);
    pg_exec(c, sql);
    /* with the superuser at hand, no run pays for the previous one's dirty pages */
    if (admin)
        pg_exec(admin, "CHECKPOINT");
}

/* A digest of the table, to check that both loads produced the same rows. */
static void digest(PGconn *c, const char *table, char *out, size_t cap)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) || '|' || sum(qty) || '|' || sum(price) || '|' || "
             "sum(hashtext(email || status || note || country || created_at::text)) FROM \"%s\"",
             table);
    pg_text(c, sql, out, cap);
}

/* ---- the peer: psql ---- */

/* Runs psql over a script and returns rows/s from the sum of its statements' \timing (the
 * connection set-up is not counted, as the sink's is not). */
static double run_psql(const char *dsn, const char *table, int kind, const char *csv, long n)
{
    char script[256];
    snprintf(script, sizeof(script), "/tmp/kfleet-bench-sink-pg-%ld.sql", (long)getpid());
    FILE *f = fopen(script, "w");
    if (!f)
        die("could not write the psql script");
    fprintf(f, "\\timing on\n");
    if (kind == INSERTS) {
        fprintf(f, "\\copy \"%s\" FROM '%s' WITH (FORMAT csv)\n", table, csv);
    } else {
        fprintf(f,
                "BEGIN;\n"
                "CREATE TEMP TABLE s (LIKE \"%s\") ON COMMIT DROP;\n"
                "\\copy s FROM '%s' WITH (FORMAT csv)\n"
                "INSERT INTO \"%s\" AS t SELECT * FROM s ON CONFLICT (id) DO UPDATE SET ",
                table, csv, table);
        for (size_t i = 1; i < NCOLS; i++)
            fprintf(f, "%s%s = EXCLUDED.%s", i > 1 ? ", " : "", COLS[i].name, COLS[i].name);
        fprintf(f, ";\nCOMMIT;\n");
    }
    if (fclose(f) != 0)
        die("could not write the psql script");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "psql -X -q -v ON_ERROR_STOP=1 -d '%s' -f %s", dsn, script);
    FILE *p = popen(cmd, "r");
    if (!p)
        die("could not run psql");
    char line[512];
    double ms = 0;
    int timings = 0;
    while (fgets(line, sizeof(line), p)) {
        if (strncmp(line, "Time: ", 6) == 0) {
            ms += strtod(line + 6, NULL);
            timings++;
        }
    }
    if (pclose(p) != 0 || timings == 0 || ms <= 0)
        die("psql failed");
    remove(script);
    return (double)n * 1000.0 / ms;
}

/* ---- kfleet-sink-pg ---- */

typedef struct sink_opts {
    const char *bin;
    const char *bootstrap;
    const char *registry_url;
    const char *dsn;
    int batch;
} sink_opts;

/* VmHWM of a running process: the peak resident set since its exec, in kB. */
static long peak_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        die("could not read the sink's peak resident set");
    long kb = -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    if (kb < 0)
        die("could not read the sink's peak resident set");
    return kb;
}

/* Runs the sink until its sync markers cover the whole topic, stops it with SIGTERM and
 * returns records/s from its closing "run summary" line (first record batched to last
 * commit); *batches gets the transactions it committed, *rss_kb its peak resident set while
 * loading. */
static double run_sink(PGconn *c, const sink_opts *o, const char *topic, long n, int kind,
                       int round, long *batches, long *rss_kb)
{
    char log[256], group[128], a[7][640];
    snprintf(log, sizeof(log), "/tmp/kfleet-bench-sink-pg-%ld-%d-%d.log", (long)getpid(), kind,
             round);
    snprintf(group, sizeof(group), "bench-sinkpg-%ld-%d-%d", (long)getpid(), kind, round);
    snprintf(a[0], sizeof(a[0]), "sink.topics=%s", topic);
    snprintf(a[1], sizeof(a[1]), "pg.dsn=%s", o->dsn);
    snprintf(a[2], sizeof(a[2]), "kafka.bootstrap.servers=%s", o->bootstrap);
    snprintf(a[3], sizeof(a[3]), "registry.url=%s", o->registry_url);
    snprintf(a[4], sizeof(a[4]), "kafka.group.id=%s", group);
    snprintf(a[5], sizeof(a[5]), "sink.batch.size=%d", o->batch);
    snprintf(a[6], sizeof(a[6]), "log.level=info");
    const char *argv[2 + 2 * 7];
    size_t k = 0;
    argv[k++] = o->bin;
    for (int i = 0; i < 7; i++) {
        argv[k++] = "--set";
        argv[k++] = a[i];
    }
    argv[k] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        die("could not fork");
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
            _exit(127);
        execv(o->bin, (char *const *)argv);
        _exit(127);
    }
    char sql[512], got[64];
    snprintf(sql, sizeof(sql),
             "SELECT coalesce(sum(next_offset), 0) FROM kfleet_meta.sync_markers WHERE "
             "group_id = '%s'",
             group);
    int64_t start = now_ms();
    for (;;) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            die("kfleet-sink-pg exited before loading everything; see /tmp/kfleet-bench-sink-pg-*");
        if (now_ms() - start > WAIT_MS) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            die("kfleet-sink-pg did not load everything in time");
        }
        /* the meta tables exist once the sink has started */
        PGresult *r = PQexec(c, sql);
        bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        snprintf(got, sizeof(got), "%s", ok ? PQgetvalue(r, 0, 0) : "0");
        PQclear(r);
        if (atol(got) >= n)
            break;
        usleep(100000);
    }
    /* the peak of the sink's own address space (wait4's ru_maxrss would count this process's
     * memory too: the child had it until its exec) */
    *rss_kb = peak_rss_kb(pid);
    kill(pid, SIGTERM);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("kfleet-sink-pg did not stop cleanly");
    FILE *f = fopen(log, "r");
    if (!f)
        die("could not read the kfleet-sink-pg log");
    char line[4096];
    double rate = -1;
    *batches = 0;
    while (fgets(line, sizeof(line), f)) {
        char *recs = strstr(line, "records="), *ms = strstr(line, "active_ms=");
        char *nb = strstr(line, "batches=");
        if (strstr(line, "run summary") && recs && ms && nb) {
            double nrec = strtod(recs + 8, NULL), span = strtod(ms + 10, NULL);
            if (nrec >= (double)n && span > 0)
                rate = nrec * 1000.0 / span;
            *batches = strtol(nb + 8, NULL, 10);
        }
    }
    fclose(f);
    if (rate <= 0)
        die("kfleet-sink-pg did not report its run");
    remove(log);
    snprintf(sql, sizeof(sql), "DELETE FROM kfleet_meta.sync_markers WHERE group_id = '%s'", group);
    pg_exec(c, sql);
    return rate;
}

/* ---- results ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    double *c = malloc((size_t)n * sizeof(*c));
    if (!c)
        die("out of memory");
    memcpy(c, v, (size_t)n * sizeof(*c));
    qsort(c, (size_t)n, sizeof(*c), cmp_double);
    double m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
    free(c);
    return m;
}

static void mkdirs(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    }
}

int main(int argc, char **argv)
{
    long n = 200000;
    int pairs = 3, batch = 500;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--short") == 0)
            n = 20000;
        else if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc)
            n = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--pairs") == 0 && i + 1 < argc)
            pairs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--batch-size") == 0 && i + 1 < argc)
            batch = atoi(argv[++i]);
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out = argv[++i];
        else {
            fprintf(stderr,
                    "usage: " PROGRAM " [--short] [--rows N] [--pairs N] [--batch-size N] "
                    "[--out FILE]\n"
                    "  --short         20,000 rows instead of 200,000\n"
                    "  --pairs N       alternating psql/kfleet pairs per case (default 3, >= 3)\n"
                    "  --batch-size N  the sink's sink.batch.size (default 500, its default)\n"
                    "  --out FILE      also write the results as JSON\n");
            return 2;
        }
    }
    if (n < 2 || pairs < 3 || batch < 1)
        die("--rows must be at least 2, --pairs at least 3, --batch-size positive");
    kf_log_init(PROGRAM, KF_LOG_WARN, KF_LOG_LOGFMT);
    const char *bootstrap = env("KFLEET_BOOTSTRAP");
    const char *registry_url = env("KFLEET_REGISTRY_URL");
    const char *dsn = env("KFLEET_PG_DSN");
    /* bin holds self (at most PATH_MAX - 1 bytes) and the program's relative path */
    char bin[PATH_MAX + 64], self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len <= 0)
        die("could not find the build directory");
    self[len] = '\0';
    *strrchr(self, '/') = '\0'; /* <build>/tests */
    *strrchr(self, '/') = '\0'; /* <build> */
    snprintf(bin, sizeof(bin), "%s/workers/sink-postgres/kfleet-sink-pg", self);
    if (access(bin, X_OK) != 0)
        die("kfleet-sink-pg is not built next to the benchmark");

    long id = (long)getpid();
    char table[64];
    snprintf(table, sizeof(table), "bench_sink_%ld", id);
    input in;
    memset(&in, 0, sizeof(in));
    for (int kind = 0; kind < NKINDS; kind++) {
        snprintf(in.topic[kind], sizeof(in.topic[kind]), "bench%ld_%s.shop.%s", id, kind_name[kind],
                 table);
        snprintf(in.csv[kind], sizeof(in.csv[kind]), "/tmp/kfleet-bench-sink-pg-%ld-%s.csv", id,
                 kind_name[kind]);
    }
    snprintf(in.preload, sizeof(in.preload), "/tmp/kfleet-bench-sink-pg-%ld-preload.csv", id);

    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK)
        die(PQerrorMessage(c));
    PGconn *admin = NULL;
    if (getenv("KFLEET_PG_ADMIN_DSN") && *getenv("KFLEET_PG_ADMIN_DSN")) {
        admin = PQconnectdb(getenv("KFLEET_PG_ADMIN_DSN"));
        if (PQstatus(admin) != CONNECTION_OK)
            die(PQerrorMessage(admin));
    }
    char sql[1024];
    /* the table the sink would create from the events' schema */
    snprintf(sql, sizeof(sql),
             "CREATE TABLE \"%s\" (id bigint PRIMARY KEY, email varchar(120), status "
             "varchar(16), qty integer, price numeric(10,2), created_at timestamp, note text, "
             "country varchar(40))",
             table);
    pg_exec(c, sql);

    kf_error err;
    const char *akv[] = {"bootstrap.servers", bootstrap};
    kf_admin *a = kf_admin_new(akv, 1, &err);
    if (!a)
        die(err.message);
    produce(a, bootstrap, registry_url, table, &in, n);
    fprintf(stderr, "produced %ld events of %zu B per case; CSV rows of %zu B\n", n, in.value_bytes,
            in.csv_bytes);

    sink_opts so = {.bin = bin,
                    .bootstrap = bootstrap,
                    .registry_url = registry_url,
                    .dsn = dsn,
                    .batch = batch};
    double *peer = calloc((size_t)(NKINDS * pairs), sizeof(double));
    double *kfl = calloc((size_t)(NKINDS * pairs), sizeof(double));
    double *ratio = calloc((size_t)(NKINDS * pairs), sizeof(double));
    double *nbatch = calloc((size_t)(NKINDS * pairs), sizeof(double));
    long rss[NKINDS] = {0};
    if (!peer || !kfl || !ratio || !nbatch)
        die("out of memory");
    for (int kind = 0; kind < NKINDS; kind++) {
        for (int i = 0; i < pairs; i++) {
            int at = kind * pairs + i;
            char dp[256], dk[256];
            /* alternate which one goes first */
            for (int turn = 0; turn < 2; turn++) {
                bool psql_now = (turn == 0) == (i % 2 == 0);
                reset_table(c, admin, table, kind, in.preload);
                if (psql_now) {
                    peer[at] = run_psql(dsn, table, kind, in.csv[kind], n);
                    digest(c, table, dp, sizeof(dp));
                } else {
                    long nb, kb;
                    kfl[at] = run_sink(c, &so, in.topic[kind], n, kind, i, &nb, &kb);
                    nbatch[at] = (double)nb;
                    if (kb > rss[kind])
                        rss[kind] = kb;
                    fprintf(stderr, "%s pair %d: kfleet-sink-pg peak RSS %.1f MB\n",
                            kind_name[kind], i + 1, (double)kb / 1024.0);
                    digest(c, table, dk, sizeof(dk));
                }
            }
            if (strcmp(dp, dk) != 0) {
                fprintf(stderr, "psql: %s\nkfleet-sink-pg: %s\n", dp, dk);
                die("the two loads left different tables");
            }
            ratio[at] = kfl[at] / peer[at];
            fprintf(stderr,
                    "%s pair %d: kfleet-sink-pg %.0f rows/s in %.0f transactions, psql %.0f "
                    "rows/s, ratio %.3f\n",
                    kind_name[kind], i + 1, kfl[at], nbatch[at], peer[at], ratio[at]);
        }
    }
    double mk[NKINDS], mp[NKINDS], mr[NKINDS], mb[NKINDS];
    for (int kind = 0; kind < NKINDS; kind++) {
        mb[kind] = median(nbatch + kind * pairs, pairs);
        mk[kind] = median(kfl + kind * pairs, pairs);
        mp[kind] = median(peer + kind * pairs, pairs);
        mr[kind] = median(ratio + kind * pairs, pairs);
    }
    printf("%-10s %-16s %12s %12s %8s %10s  %s\n", "case", "kfleet commits", "kfleet rows/s",
           "psql rows/s", "ratio", "kfleet MB", "psql does");
    for (int kind = 0; kind < NKINDS; kind++)
        printf("%-10s %-16.0f %12.0f %12.0f %8.3f %10.1f  %s\n", kind_name[kind], mb[kind],
               mk[kind], mp[kind], mr[kind], (double)rss[kind] / 1024.0,
               kind == INSERTS ? "\\copy into the table"
                               : "\\copy into a temp table + INSERT ... ON CONFLICT");
    printf("rows %ld (upserts: %ld updates of preloaded keys, %ld inserts), %zu B Avro values, "
           "%zu B CSV rows, %d partitions, sink.batch.size %d, sink.batch.max.rows and "
           ".max.bytes, sink.flush.interval and sink.copy.format at their defaults (50000, 4 MiB, "
           "1s, binary); median of %d alternating pairs (goal >= 0.8)\n"
           "kfleet-sink-pg: first record batched to last commit (its run summary), peak RSS "
           "of its runs (goal <= 50 MB); psql: sum of \\timing of its statements\n",
           n, n / 2, n - n / 2, in.value_bytes, in.csv_bytes, PARTITIONS, batch, pairs);
    if (out) {
        mkdirs(out);
        FILE *f = fopen(out, "w");
        if (!f)
            die("could not write --out");
        fprintf(f,
                "{\"benchmark\":\"sink_pg\",\"rows\":%ld,\"value_bytes\":%zu,\"csv_row_bytes\":"
                "%zu,\"partitions\":%d,\"batch_size\":%d,\"batch_max_rows\":50000,"
                "\"batch_max_bytes\":4194304,\"flush_interval_ms\":1000,"
                "\"copy_format\":\"binary\","
                "\"kfleet_rate\":\"first record batched to last commit\","
                "\"peer_rate\":\"sum of psql \\\\timing of its statements\",\"goal\":0.8,"
                "\"cases\":{",
                n, in.value_bytes, in.csv_bytes, PARTITIONS, batch);
        for (int kind = 0; kind < NKINDS; kind++) {
            fprintf(f, "%s\"%s\":{\"pairs\":[", kind ? "," : "", kind_name[kind]);
            for (int i = 0; i < pairs; i++) {
                int at = kind * pairs + i;
                fprintf(f,
                        "%s{\"kfleet_rows_per_s\":%.1f,\"kfleet_transactions\":%.0f,"
                        "\"peer_rows_per_s\":%.1f,\"ratio\":%.4f}",
                        i ? "," : "", kfl[at], nbatch[at], peer[at], ratio[at]);
            }
            fprintf(f,
                    "],\"kfleet_rows_per_s\":%.1f,\"kfleet_transactions\":%.0f,"
                    "\"kfleet_peak_rss_kb\":%ld,\"peer_rows_per_s\":%.1f,\"ratio\":%.4f,"
                    "\"peer\":\"%s\"}",
                    mk[kind], mb[kind], rss[kind], mp[kind], mr[kind],
                    kind == INSERTS ? "psql \\\\copy into the table"
                                    : "psql \\\\copy into a temp table + INSERT ON CONFLICT");
        }
        fprintf(f, "}}\n");
        fclose(f);
    }
    snprintf(sql, sizeof(sql), "DROP TABLE \"%s\"", table);
    pg_exec(c, sql);
    PQfinish(c);
    if (admin)
        PQfinish(admin);
    const char *names[NKINDS] = {in.topic[INSERTS], in.topic[UPSERTS]};
    kf_admin_delete_topics(a, names, NKINDS, true, 30000, &err);
    kf_admin_destroy(a);
    for (int kind = 0; kind < NKINDS; kind++)
        remove(in.csv[kind]);
    remove(in.preload);
    free(peer);
    free(kfl);
    free(ratio);
    free(nbatch);
    return 0;
}
