/* Benchmark: kfleet-validate with a 10-rule contract (consume, check, produce to the valid
 * topic, exactly-once transactions) against kafka-consumer-perf-test consuming the same topic
 * (consume only), alternating in the same run; median of the per-pair ratios (BENCH.md). */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../integration/validate/vt.h"
#include "kfleet/kafka.h"
#include "kfleet/log.h"

#define PARTITIONS 3

static const char CONTRACT[] =
    "contract: bench\ncolumns:\n"
    "  id: [not_null, {unique: true, window: 100000}]\n"
    "  email: [not_null, {regex: '^[a-z0-9.]+@[a-z0-9.]+\\.[a-z]+$'}]\n"
    "  status: [{allowed_values: [pending, paid, shipped, delivered, cancelled]}]\n"
    "  qty: [{range: {min: 0, max: 1000}}]\n"
    "  price: [{range: {min: 0, max: 100000}}]\n"
    "  created_at: [{dtype: timestamp}]\n"
    "  note: [{length: {max: 200}}]\n"
    "  country: [{length: {min: 2, max: 40}}]\n";

__attribute__((noreturn)) static void die(const char *what)
{
    fprintf(stderr, "kfleet-bench-validate: %s\n", what);
    exit(1);
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "kfleet-bench-validate: %s is not set: run eval \"$(tools/stack env)\"\n",
                name);
        exit(1);
    }
    return v;
}

/* Produces n valid change events (~250 bytes) of shop.orders into topic. */
static size_t produce_events(const char *bootstrap, const char *registry_url, const char *prefix,
                             const char *topic, long n)
{
    kf_error err;
    kf_registry_config rc = {.url = registry_url};
    kf_registry *reg = kf_registry_new(&rc, &err);
    kf_serde *serde = reg ? kf_serde_new(reg, &err) : NULL;
    kf_table *t = kf_table_new(prefix, "shop", NULL, "orders", &err);
    if (!serde || !t)
        die(err.message);
    static const struct {
        const char *name, *type;
        int pk;
    } cols[] = {{"id", "bigint", 1},           {"email", "varchar(120)", 0},
                {"status", "varchar(16)", 0},  {"qty", "int", 0},
                {"price", "decimal(10,2)", 0}, {"created_at", "timestamptz", 0},
                {"note", "text", 0},           {"country", "varchar(40)", 0}};
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
        kf_column c = {.name = cols[i].name, .pk_order = cols[i].pk, .nullable = !cols[i].pk};
        if (kf_coltype_parse(cols[i].type, &c, &err) || kf_table_add_column(t, &c, &err))
            die(err.message);
    }
    char *ks = kf_table_key_schema(t, &err), *es = kf_table_envelope_schema(t, &err);
    char subject[300];
    int32_t kid, vid;
    snprintf(subject, sizeof(subject), "%s-key", topic);
    if (!ks || !es || kf_serde_register(serde, subject, ks, &kid, &err))
        die(err.message);
    snprintf(subject, sizeof(subject), "%s-value", topic);
    if (kf_serde_register(serde, subject, es, &vid, &err))
        die(err.message);
    free(ks);
    free(es);
    kf_event_writer *w = kf_event_writer_new(serde, t, kid, vid, &err);
    kf_source src = {.version = "0.1.0",
                     .connector = "sim",
                     .name = prefix,
                     .db = "shop",
                     .table = "orders",
                     .snapshot = "false",
                     .has_seq = true};
    if (!w || kf_event_writer_set_source(w, &src, &err))
        die(err.message);
    /* batches as the Java producer (and so Debezium) writes them: 16 KiB, linger 5 ms */
    const char *kv[] = {"bootstrap.servers", bootstrap, "linger.ms", "5", "batch.size", "16384"};
    kf_producer *p = kf_producer_new(kv, 3, NULL, &err);
    if (!p)
        die(err.message);
    static const char *const statuses[] = {"pending", "paid", "shipped", "delivered", "cancelled"};
    kf_buf key = {0}, value = {0};
    for (long i = 1; i <= n; i++) {
        char email[64], price[32], note[96];
        snprintf(email, sizeof(email), "customer%ld@example.com", i);
        snprintf(price, sizeof(price), "%ld.%02ld", i % 900 + 10, i % 100);
        snprintf(note, sizeof(note), "order number %ld placed through the web shop checkout", i);
        const char *ts = "2024-03-04T05:06:07.123456Z";
        if (kf_event_writer_begin(w, KF_OP_CREATE, 1700000000000 + i, &err) ||
            kf_event_set_int(w, KF_AFTER, 0, i, &err) ||
            kf_event_set_string(w, KF_AFTER, 1, email, strlen(email), &err) ||
            kf_event_set_string(w, KF_AFTER, 2, statuses[i % 5], strlen(statuses[i % 5]), &err) ||
            kf_event_set_int(w, KF_AFTER, 3, i % 1000, &err) ||
            kf_event_set_string(w, KF_AFTER, 4, price, strlen(price), &err) ||
            kf_event_set_string(w, KF_AFTER, 5, ts, strlen(ts), &err) ||
            kf_event_set_string(w, KF_AFTER, 6, note, strlen(note), &err) ||
            kf_event_set_string(w, KF_AFTER, 7, "Portugal", 8, &err) ||
            kf_event_writer_encode(w, &key, &value, &err))
            die(err.message);
        kf_produce_msg m = {.topic = topic,
                            .partition = RD_KAFKA_PARTITION_UA,
                            .key = key.data,
                            .key_len = key.len,
                            .value = value.data,
                            .value_len = value.len};
        if (kf_producer_produce(p, &m, NULL, &err))
            die(err.message);
    }
    if (kf_producer_flush(p, 120000, &err) || kf_producer_failed(p, &err))
        die(err.message);
    fprintf(stderr, "produced %ld events of %zu bytes to %s\n", n, value.len, topic);
    size_t size = value.len;
    kf_buf_free(&key);
    kf_buf_free(&value);
    kf_producer_destroy(p);
    kf_event_writer_destroy(w);
    kf_table_destroy(t);
    kf_serde_destroy(serde);
    kf_registry_destroy(reg);
    return size;
}

/* Runs the peer and returns its fetch.nMsg.sec (consumption rate excluding the group join). */
static double run_peer(const char *kafka_home, const char *bootstrap, const char *topic, long n,
                       int round)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "%s/bin/kafka-consumer-perf-test --bootstrap-server %s --topic %s --messages %ld "
             "--group bench-peer-%d-%ld --timeout 120000 2>/dev/null",
             kafka_home, bootstrap, topic, n, round, (long)getpid());
    FILE *f = popen(cmd, "r");
    if (!f)
        die("could not run kafka-consumer-perf-test");
    char line[1024];
    double rate = -1;
    while (fgets(line, sizeof(line), f)) {
        /* start.time, end.time, MB, MB.sec, nMsg, nMsg.sec, rebalance.ms, fetch.ms,
         * fetch.MB.sec, fetch.nMsg.sec */
        if (strncmp(line, "start.time", 10) != 0)
            fprintf(stderr, "  peer: %s", line);
        char *fields[12];
        int nf = 0;
        for (char *tok = strtok(line, ","); tok && nf < 12; tok = strtok(NULL, ","))
            fields[nf++] = tok;
        if (nf >= 10 && strtod(fields[4], NULL) >= (double)n)
            rate = strtod(fields[9], NULL);
    }
    if (pclose(f) != 0 || rate <= 0)
        die("kafka-consumer-perf-test did not report a rate");
    return rate;
}

/* Runs kfleet-validate over the topic and returns records/s from its partition assignment to
 * its last commit (since_assign_ms of the worker's exit line). That is the span the peer's
 * fetch.nMsg.sec covers: kafka-consumer-perf-test divides by its run time minus its group join
 * (measured up to onPartitionsAssigned), so both exclude the join and include the first
 * fetch, their warm-up and the whole input (n records each). */
static double run_validate(kf_admin *a, const char *bin, const char *bootstrap,
                           const char *registry_url, const char *contract, const char *topic,
                           long n, int round)
{
    char log[256], prefix[64], set_prefix[96], set_boot[256], set_reg[512], max[32], group[96];
    snprintf(log, sizeof(log), "/tmp/kfleet-bench-validate-%ld-%d.log", (long)getpid(), round);
    snprintf(prefix, sizeof(prefix), "benchout%ld_%d", (long)getpid(), round);
    snprintf(set_prefix, sizeof(set_prefix), "topic.prefix=%s", prefix);
    snprintf(set_boot, sizeof(set_boot), "kafka.bootstrap.servers=%s", bootstrap);
    snprintf(set_reg, sizeof(set_reg), "registry.url=%s", registry_url);
    snprintf(max, sizeof(max), "%ld", n);
    snprintf(group, sizeof(group), "bench-validate-%ld-%d", (long)getpid(), round);
    remove(log);
    char *argv[] = {(char *)bin, "--contract", (char *)contract, "--topic", (char *)topic, "--set",
                    set_prefix, "--set", set_boot, "--set", set_reg, "--group", group,
                    /* explicit, so the per-round groups leave no instance lock files behind */
                    "--transactional-id", group, "--max-records", max, "--batch-size", "5000",
                    "--log-level", "info", NULL};
    int rc = vt_wait(vt_spawn(argv, log), 600000);
    if (rc != 0)
        die("kfleet-validate failed; see its log in /tmp/kfleet-bench-validate-*.log");
    FILE *f = fopen(log, "r");
    if (!f)
        die("could not read the kfleet-validate log");
    char line[4096];
    double rate = -1;
    while (fgets(line, sizeof(line), f)) {
        char *in = strstr(line, "records_in="), *el = strstr(line, "since_assign_ms=");
        if (strstr(line, "msg=stopped") && in && el) {
            double recs = strtod(in + 11, NULL), ms = strtod(el + 16, NULL);
            if (recs >= (double)n && ms > 0)
                rate = recs * 1000.0 / ms;
        }
    }
    fclose(f);
    remove(log);
    if (rate <= 0)
        die("kfleet-validate did not report its run");
    /* the outputs of this round are not needed any more */
    char valid[256], dlq[256], audit[256];
    snprintf(valid, sizeof(valid), "%s.valid.%s", prefix, topic);
    snprintf(dlq, sizeof(dlq), "%s.dlq.%s", prefix, topic);
    snprintf(audit, sizeof(audit), "%s.audit", prefix);
    const char *names[] = {valid, dlq, audit};
    kf_error err;
    kf_admin_delete_topics(a, names, 3, true, 30000, &err);
    return rate;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
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
    long n = 300000;
    int pairs = 3;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--short") == 0)
            n = 20000;
        else if (strcmp(argv[i], "--events") == 0 && i + 1 < argc)
            n = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--pairs") == 0 && i + 1 < argc)
            pairs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out = argv[++i];
        else {
            fprintf(stderr, "usage: kfleet-bench-validate [--short] [--events N] [--pairs N] "
                            "[--out FILE]\n"
                            "  --short     20,000 events instead of 300,000\n"
                            "  --pairs N   alternating peer/kfleet pairs (default 3, at least 3)\n"
                            "  --out FILE  also write the results as JSON\n");
            return 2;
        }
    }
    if (n <= 0 || pairs < 3)
        die("--events must be positive and --pairs at least 3");
    kf_log_init("kfleet-bench-validate", KF_LOG_WARN, KF_LOG_LOGFMT);
    const char *bootstrap = env("KFLEET_BOOTSTRAP");
    const char *registry_url = env("KFLEET_REGISTRY_URL");
    const char *kafka_home = env("KFLEET_KAFKA_HOME");
    char bin[PATH_MAX], self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len <= 0)
        die("could not find the build directory");
    if ((size_t)len >= sizeof(self) - 1)
        die("could not find the build directory: its path is too long");
    self[len] = '\0';
    *strrchr(self, '/') = '\0'; /* <build>/tests */
    *strrchr(self, '/') = '\0'; /* <build> */
    int blen = snprintf(bin, sizeof(bin), "%s/workers/validate/kfleet-validate", self);
    if (blen < 0 || (size_t)blen >= sizeof(bin))
        die("could not locate kfleet-validate: the build directory path is too long");
    if (access(bin, X_OK) != 0)
        die("kfleet-validate is not built next to the benchmark");

    char prefix[64], topic[128], contract[128];
    snprintf(prefix, sizeof(prefix), "bench%ld", (long)getpid());
    snprintf(topic, sizeof(topic), "%s.shop.orders", prefix);
    snprintf(contract, sizeof(contract), "/tmp/kfleet-bench-validate-%ld.yaml", (long)getpid());
    FILE *cf = fopen(contract, "w");
    if (!cf || fputs(CONTRACT, cf) < 0 || fclose(cf) != 0)
        die("could not write the contract");
    kf_error err;
    const char *akv[] = {"bootstrap.servers", bootstrap};
    kf_admin *a = kf_admin_new(akv, 1, &err);
    kf_topic_spec spec = {.name = topic, .partitions = PARTITIONS, .replication_factor = 1};
    if (!a || kf_admin_create_topics(a, &spec, 1, false, 30000, &err))
        die(err.message);
    size_t vsize = produce_events(bootstrap, registry_url, prefix, topic, n);

    double *peer = calloc((size_t)pairs, sizeof(double));
    double *kfl = calloc((size_t)pairs, sizeof(double));
    double *ratio = calloc((size_t)pairs, sizeof(double));
    if (!peer || !kfl || !ratio)
        die("out of memory");
    for (int i = 0; i < pairs; i++) {
        /* alternate which one goes first, so neither always meets a warm page cache */
        if (i % 2 == 0) {
            peer[i] = run_peer(kafka_home, bootstrap, topic, n, i);
            kfl[i] = run_validate(a, bin, bootstrap, registry_url, contract, topic, n, i);
        } else {
            kfl[i] = run_validate(a, bin, bootstrap, registry_url, contract, topic, n, i);
            peer[i] = run_peer(kafka_home, bootstrap, topic, n, i);
        }
        ratio[i] = kfl[i] / peer[i];
        fprintf(stderr,
                "pair %d: kfleet-validate %.0f msg/s, kafka-consumer-perf-test %.0f msg/s, "
                "ratio %.3f\n",
                i + 1, kfl[i], peer[i], ratio[i]);
    }
    double mk = median(kfl, pairs), mp = median(peer, pairs), mr = median(ratio, pairs);
    printf("%-28s %14s %s\n", "what", "msgs/s", "settings");
    printf("%-28s %14.0f 10 rules, EOS transactions, batch 5000, produce to valid topic; "
           "partition assignment to last commit\n",
           "kfleet-validate", mk);
    printf("%-28s %14.0f consume only, default settings; fetch.nMsg.sec (after group join)\n",
           "kafka-consumer-perf-test", mp);
    printf("%-28s %14.3f median of %d alternating pairs (goal >= 0.5)\n", "ratio", mr, pairs);
    printf("events %ld, %zu B values, %d partitions, input written by an idempotent producer "
           "with batch.size 16384, linger.ms 5\n",
           n, vsize, PARTITIONS);
    if (out) {
        mkdirs(out);
        FILE *f = fopen(out, "w");
        if (!f)
            die("could not write --out");
        fprintf(f,
                "{\"benchmark\":\"validate\",\"events\":%ld,\"value_bytes\":%zu,"
                "\"partitions\":%d,\"rules\":10,\"producer\":\"batch.size=16384 linger.ms=5\","
                "\"peer_rate\":\"fetch.nMsg.sec (after the group join)\",\"kfleet_rate\":"
                "\"partition assignment to last commit\",\"pairs\":[",
                n, vsize, PARTITIONS);
        for (int i = 0; i < pairs; i++)
            fprintf(f, "%s{\"kfleet_msgs_per_s\":%.1f,\"peer_msgs_per_s\":%.1f,\"ratio\":%.4f}",
                    i ? "," : "", kfl[i], peer[i], ratio[i]);
        fprintf(f,
                "],\"kfleet_msgs_per_s\":%.1f,\"peer_msgs_per_s\":%.1f,\"ratio\":%.4f,"
                "\"goal\":0.5,\"kfleet\":\"kfleet-validate, EOS, batch 5000\","
                "\"peer\":\"kafka-consumer-perf-test\"}\n",
                mk, mp, mr);
        fclose(f);
    }
    const char *names[] = {topic};
    kf_admin_delete_topics(a, names, 1, true, 30000, &err);
    kf_admin_destroy(a);
    remove(contract);
    free(peer);
    free(kfl);
    free(ratio);
    return 0;
}
