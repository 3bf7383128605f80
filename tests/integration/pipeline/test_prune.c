/* Integration test of `kfleet-pipeline prune` against the real Kafka, registry and Postgres:
 * three runs leave topics, subjects, a schema and kfleet_meta rows; pruning with --keep-runs 1
 * deletes exactly the oldest run's objects, leaves the middle one while its consumer group has
 * a member, and names that only look like a run's stay; without Postgres the topics still go and
 * the exit status is 1. The runs' prefix is unique to the test, so nobody else's runs are
 * touched. */
#include "kf_test_env.h"
#include "kf_test_kafka.h"

#include <fcntl.h>
#include <sys/wait.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "kfleet/kafka.h"
#include "kfleet/pg.h"
#include "kfleet/registry.h"

#define TIMEOUT_MS 30000
#define NRUNS      3

static char uniq[96];         /* every name the test makes starts with this */
static char prefix[128];      /* the runs' prefix: <uniq>_run_ */
static char runs[NRUNS][160]; /* oldest first */
static char spare[160];       /* a run for the failure case */
static char log_path[256];

/* snprintf that fails the test rather than cut a name short. */
__attribute__((format(printf, 3, 4))) static void fmt(char *out, size_t cap, const char *format,
                                                      ...)
{
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(out, cap, format, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap)
        fail_msg("a name does not fit in %zu bytes", cap);
}

/* ---- services ---- */

static kf_admin *admin(void)
{
    const char *kv[] = {"bootstrap.servers", kf_test_env("KFLEET_BOOTSTRAP")};
    kf_error err;
    kf_admin *a = kf_admin_new(kv, 1, &err);
    if (!a)
        fail_msg("%s", err.message);
    return a;
}

static kf_registry *registry(void)
{
    kf_registry_config rc = {.url = kf_test_env("KFLEET_REGISTRY_URL"), .timeout_ms = 10000};
    kf_error err;
    kf_registry *r = kf_registry_new(&rc, &err);
    if (!r)
        fail_msg("%s", err.message);
    return r;
}

static PGconn *pg(void)
{
    PGconn *c = PQconnectdb(kf_test_env("KFLEET_PG_DSN"));
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("could not connect: %s", PQerrorMessage(c));
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    return c;
}

/* Runs sql with up to three text parameters. */
static void pg_exec(PGconn *c, const char *sql, int n, const char *p1, const char *p2,
                    const char *p3)
{
    const char *params[3] = {p1, p2, p3};
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

static long pg_count(PGconn *c, const char *sql, const char *p1)
{
    const char *params[1] = {p1};
    PGresult *r = PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    long n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return n;
}

/* The kfleet_meta tables as the sink creates them (kf_pg_meta_ddl), for a stack
 * where no sink ran yet. */
static void ensure_meta(PGconn *c)
{
    PGresult *r = PQexec(c, kf_pg_meta_ddl);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("could not create kfleet_meta: %s", PQerrorMessage(c));
    PQclear(r);
}

/* ---- what a run leaves ---- */

/* The topics of run id (4) into t. */
static void run_topics(const char *id, char t[4][400])
{
    fmt(t[0], sizeof(t[0]), "%s.shop.orders", id);
    fmt(t[1], sizeof(t[1]), "%s.valid.shop.orders", id);
    fmt(t[2], sizeof(t[2]), "%s.dlq.%s.shop.orders", id, id);
    fmt(t[3], sizeof(t[3]), "%s.audit", id);
}

static void create_topics(kf_admin *a, char names[][400], size_t n)
{
    kf_topic_spec specs[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++)
        specs[i] = (kf_topic_spec){.name = names[i], .partitions = 1, .replication_factor = 1};
    kf_error err;
    if (kf_admin_create_topics(a, specs, n, false, TIMEOUT_MS, &err) != KF_OK)
        fail_msg("%s", err.message);
}

static void register_subject(kf_registry *reg, const char *subject)
{
    int32_t id;
    kf_error err;
    if (kf_registry_register(reg, subject, "{\"type\":\"string\"}", &id, &err) != KF_OK)
        fail_msg("%s", err.message);
}

/* A run's schema with a table, its sink group's marker and run, its DDL and error rows. */
static void fill_pg(PGconn *c, const char *schema, const char *group)
{
    char *q = PQescapeIdentifier(c, schema, strlen(schema));
    assert_non_null(q);
    char sql[512];
    snprintf(sql, sizeof(sql), "CREATE SCHEMA %s; CREATE TABLE %s.orders (id bigint)", q, q);
    PQfreemem(q);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    pg_exec(c,
            "INSERT INTO kfleet_meta.sync_markers (group_id, topic, partition, next_offset) "
            "VALUES ($1, $2, 0, 10)",
            2, group, schema, NULL);
    pg_exec(c,
            "INSERT INTO kfleet_meta.sync_runs (worker, group_id, status) "
            "VALUES ('kfleet-sink-pg', $1, 'stopped')",
            1, group, NULL, NULL);
    pg_exec(c,
            "INSERT INTO kfleet_meta.schema_history (worker, table_schema, table_name, change, "
            "ddl) VALUES ('kfleet-sink-pg', $1, 'orders', 'create', 'CREATE TABLE')",
            1, schema, NULL, NULL);
    pg_exec(c,
            "INSERT INTO kfleet_meta.error_log (worker, table_schema, table_name, error) "
            "VALUES ('kfleet-sink-pg', $1, 'orders', 'test')",
            1, schema, NULL, NULL);
}

/* Rows of kfleet_meta naming the group (sync_markers, sync_runs) or schema (schema_history,
 * error_log). */
static long meta_rows(PGconn *c, const char *group, const char *schema)
{
    return pg_count(c,
                    "SELECT (SELECT count(*) FROM kfleet_meta.sync_markers WHERE group_id = $1)"
                    " + (SELECT count(*) FROM kfleet_meta.sync_runs WHERE group_id = $1)",
                    group) +
           pg_count(c,
                    "SELECT (SELECT count(*) FROM kfleet_meta.schema_history WHERE "
                    "table_schema = $1) + (SELECT count(*) FROM kfleet_meta.error_log WHERE "
                    "table_schema = $1)",
                    schema);
}

static bool schema_exists(PGconn *c, const char *schema)
{
    return pg_count(c, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema) == 1;
}

static bool subject_exists(const char *subject)
{
    kf_registry *reg = registry(); /* a fresh client: nothing cached */
    int32_t id;
    kf_error err;
    int rc = kf_registry_lookup(reg, subject, "{\"type\":\"string\"}", &id, NULL, &err);
    kf_registry_destroy(reg);
    if (rc != KF_OK && rc != KF_ERR_NOT_FOUND)
        fail_msg("%s", err.message);
    return rc == KF_OK;
}

/* Whether the topic is listed; a deleted topic may linger in metadata for a moment, so
 * `want` is waited for. */
static bool topic_listed(kf_admin *a, const char *topic, bool want)
{
    int64_t deadline = kf_test_now_ms() + TIMEOUT_MS;
    for (;;) {
        char **names = NULL;
        size_t n = 0;
        kf_error err;
        if (kf_admin_list_topics(a, &names, &n, TIMEOUT_MS, &err) != KF_OK)
            fail_msg("%s", err.message);
        bool found = false;
        for (size_t i = 0; i < n && !found; i++)
            found = strcmp(names[i], topic) == 0;
        kf_admin_names_free(names, n);
        if (found == want || kf_test_now_ms() > deadline)
            return found;
        usleep(200 * 1000);
    }
}

/* A consumer of the group that has joined it, so that the group has a member; the teardown
 * closes it after a failure. */
static rd_kafka_t *member;

static void join_group(const char *group, const char *topic)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *kv[][2] = {{"bootstrap.servers", kf_test_env("KFLEET_BOOTSTRAP")},
                           {"group.id", group},
                           {"log_level", "3"}};
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        assert_int_equal(rd_kafka_conf_set(conf, kv[i][0], kv[i][1], errstr, sizeof(errstr)),
                         RD_KAFKA_CONF_OK);
    member = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!member)
        fail_msg("could not create a consumer: %s", errstr);
    rd_kafka_poll_set_consumer(member);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
    assert_int_equal(rd_kafka_subscribe(member, l), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
    int64_t deadline = kf_test_now_ms() + TIMEOUT_MS;
    for (;;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(member, 100);
        if (m)
            rd_kafka_message_destroy(m);
        rd_kafka_topic_partition_list_t *a = NULL;
        assert_int_equal(rd_kafka_assignment(member, &a), RD_KAFKA_RESP_ERR_NO_ERROR);
        int assigned = a->cnt;
        rd_kafka_topic_partition_list_destroy(a);
        if (assigned > 0)
            return;
        if (kf_test_now_ms() > deadline)
            fail_msg("the consumer did not join group \"%s\"", group);
    }
}

static void leave_group(void)
{
    if (!member)
        return;
    rd_kafka_consumer_close(member);
    rd_kafka_destroy(member);
    member = NULL;
}

/* ---- the program ---- */

/* Runs kfleet-pipeline prune with --keep-runs keep; returns its exit status and the counts of
 * its summary line (the JSON log line "pruned earlier pipeline runs", new). */
static int run_prune_dsn(int keep, const char *dsn, json_t **summary)
{
    const char *bin = kf_test_env("KFLEET_PIPELINE_BIN");
    char keep_s[16], bootstrap[300];
    fmt(keep_s, sizeof(keep_s), "%d", keep);
    fmt(bootstrap, sizeof(bootstrap), "kafka.bootstrap.servers=%s",
        kf_test_env("KFLEET_BOOTSTRAP"));
    const char *args[] = {bin,
                          "prune",
                          "--keep-runs",
                          keep_s,
                          "--run-prefix",
                          prefix,
                          "--pg-dsn",
                          dsn,
                          "--registry-url",
                          kf_test_env("KFLEET_REGISTRY_URL"),
                          "--set",
                          bootstrap,
                          "--log-format",
                          "json",
                          NULL};
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        execv(bin, (char *const *)args);
        _exit(127);
    }
    close(fd);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    *summary = NULL;
    FILE *f = fopen(log_path, "r");
    assert_non_null(f);
    char line[8192];
    while (fgets(line, sizeof(line), f)) {
        fputs(line, stderr);
        json_t *j = json_loads(line, 0, NULL);
        const char *msg = json_string_value(json_object_get(j, "msg"));
        if (msg && strcmp(msg, "pruned earlier pipeline runs") == 0 && !*summary)
            *summary = json_incref(j);
        json_decref(j);
    }
    fclose(f);
    if (!*summary)
        fail_msg("kfleet-pipeline prune logged no summary line");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int run_prune(int keep, json_t **summary)
{
    return run_prune_dsn(keep, kf_test_env("KFLEET_PG_DSN"), summary);
}

static void assert_count(json_t *summary, const char *key, const char *want)
{
    const char *got = json_string_value(json_object_get(summary, key));
    if (!got || strcmp(got, want) != 0)
        fail_msg("summary \"%s\" is %s, expected %s", key, got ? got : "missing", want);
}

/* ---- the test ---- */

static void prune_keeps_the_newest_runs(void **state)
{
    (void)state;
    kf_admin *a = admin();
    kf_registry *reg = registry();
    PGconn *c = pg();
    ensure_meta(c);

    char topics[NRUNS][4][400], groups[NRUNS][200];
    for (int i = 0; i < NRUNS; i++) {
        run_topics(runs[i], topics[i]);
        create_topics(a, topics[i], 4);
        char subject[420];
        fmt(subject, sizeof(subject), "%s-key", topics[i][0]);
        register_subject(reg, subject);
        fmt(subject, sizeof(subject), "%s-value", topics[i][0]);
        register_subject(reg, subject);
        fmt(groups[i], sizeof(groups[i]), "%s-sink", runs[i]);
        fill_pg(c, runs[i], groups[i]);
    }
    /* names that start like a run's but are not one, and one that has nothing of a run */
    char other[3][400], other_subject[420], other_schema[200], other_group[200], near_group[200];
    fmt(other[0], sizeof(other[0]), "%s_unrelated", uniq);
    fmt(other[1], sizeof(other[1]), "%s1121_010203.shop.orders", prefix); /* no pid */
    fmt(other[2], sizeof(other[2]), "%sx.shop.orders", runs[0]);          /* more than a pid */
    create_topics(a, other, 3);
    fmt(other_subject, sizeof(other_subject), "%s-value", other[0]);
    register_subject(reg, other_subject);
    fmt(other_schema, sizeof(other_schema), "%s1121_010203", prefix);
    fmt(other_group, sizeof(other_group), "%snotarun-sink", prefix);
    fill_pg(c, other_schema, other_group);
    fmt(near_group, sizeof(near_group), "%sx-sink", runs[0]);
    pg_exec(c,
            "INSERT INTO kfleet_meta.sync_runs (worker, group_id, status) "
            "VALUES ('kfleet-sink-pg', $1, 'stopped')",
            1, near_group, NULL, NULL);

    /* the middle run is still running: its validate group has a member */
    char live_group[200];
    fmt(live_group, sizeof(live_group), "%s-validate", runs[1]);
    join_group(live_group, topics[1][0]);

    json_t *summary = NULL;
    assert_int_equal(run_prune(1, &summary), 0);
    assert_count(summary, "runs", "3");
    assert_count(summary, "kept", "1");
    assert_count(summary, "running", "1");
    assert_count(summary, "pruned", "1");
    assert_count(summary, "topics", "4");
    assert_count(summary, "subjects", "2");
    assert_count(summary, "schemas", "1");
    assert_count(summary, "meta_rows", "4");
    assert_count(summary, "failures", "0");
    json_decref(summary);

    for (int i = 0; i < NRUNS; i++) {
        bool kept = i > 0;
        for (int t = 0; t < 4; t++)
            if (topic_listed(a, topics[i][t], kept) != kept)
                fail_msg("topic \"%s\" %s", topics[i][t], kept ? "is gone" : "is left");
        char subject[420];
        fmt(subject, sizeof(subject), "%s-value", topics[i][0]);
        assert_int_equal(subject_exists(subject), kept);
        fmt(subject, sizeof(subject), "%s-key", topics[i][0]);
        assert_int_equal(subject_exists(subject), kept);
        assert_int_equal(schema_exists(c, runs[i]), kept);
        assert_int_equal(meta_rows(c, groups[i], runs[i]), kept ? 4 : 0);
    }
    for (int t = 0; t < 3; t++)
        if (!topic_listed(a, other[t], true))
            fail_msg("unrelated topic \"%s\" was deleted", other[t]);
    assert_true(subject_exists(other_subject));
    assert_true(schema_exists(c, other_schema));
    assert_int_equal(meta_rows(c, other_group, other_schema), 4);
    assert_int_equal(meta_rows(c, near_group, near_group), 1);

    /* once it stopped, keeping none removes it and the newest run too; then nothing is left */
    leave_group();
    assert_int_equal(run_prune(0, &summary), 0);
    assert_count(summary, "runs", "2");
    assert_count(summary, "kept", "0");
    assert_count(summary, "running", "0");
    assert_count(summary, "pruned", "2");
    assert_count(summary, "topics", "8");
    assert_count(summary, "subjects", "4");
    assert_count(summary, "schemas", "2");
    assert_count(summary, "meta_rows", "8");
    json_decref(summary);
    for (int i = 1; i < NRUNS; i++) {
        assert_false(topic_listed(a, topics[i][0], false));
        assert_false(schema_exists(c, runs[i]));
        assert_int_equal(meta_rows(c, groups[i], runs[i]), 0);
    }
    assert_int_equal(run_prune(0, &summary), 0);
    assert_count(summary, "runs", "0");
    assert_count(summary, "topics", "0");
    json_decref(summary);
    assert_true(topic_listed(a, other[0], true));
    assert_true(schema_exists(c, other_schema));

    /* without Postgres the topics still go, and the run fails with a warning */
    char spare_topics[4][400], spare_group[200];
    run_topics(spare, spare_topics);
    create_topics(a, spare_topics, 4);
    fmt(spare_group, sizeof(spare_group), "%s-sink", spare);
    fill_pg(c, spare, spare_group);
    assert_int_equal(run_prune_dsn(0, "postgresql://kfleet@127.0.0.1:1/kfleet", &summary), 1);
    assert_count(summary, "runs", "1");
    assert_count(summary, "topics", "4");
    assert_count(summary, "schemas", "0");
    assert_count(summary, "failures", "1");
    json_decref(summary);
    assert_false(topic_listed(a, spare_topics[0], false));
    assert_true(schema_exists(c, spare));
    assert_int_equal(run_prune(0, &summary), 0);
    assert_count(summary, "topics", "0");
    assert_count(summary, "schemas", "1");
    assert_count(summary, "meta_rows", "4");
    json_decref(summary);
    assert_false(schema_exists(c, spare));

    PQfinish(c);
    kf_registry_destroy(reg);
    kf_admin_destroy(a);
}

/* Removes everything whose name starts with uniq, also after a failure midway. */
static int remove_all(void **state)
{
    (void)state;
    leave_group();
    kf_error err;
    const char *kv[] = {"bootstrap.servers", getenv("KFLEET_BOOTSTRAP")};
    kf_admin *a = kv[1] ? kf_admin_new(kv, 1, &err) : NULL;
    char **names = NULL;
    size_t n = 0;
    kf_registry_config rc = {.url = getenv("KFLEET_REGISTRY_URL"), .timeout_ms = 10000};
    kf_registry *reg = rc.url ? kf_registry_new(&rc, &err) : NULL;
    if (a && kf_admin_list_topics(a, &names, &n, TIMEOUT_MS, &err) == KF_OK) {
        for (size_t i = 0; i < n; i++) {
            if (strncmp(names[i], uniq, strlen(uniq)) != 0)
                continue;
            kf_admin_delete_topics(a, (const char *const *)&names[i], 1, true, TIMEOUT_MS, &err);
            char subject[420];
            snprintf(subject, sizeof(subject), "%s-key", names[i]);
            kf_registry_delete_subject(reg, subject, true, &err);
            snprintf(subject, sizeof(subject), "%s-value", names[i]);
            kf_registry_delete_subject(reg, subject, true, &err);
        }
        kf_admin_names_free(names, n);
    }
    kf_registry_destroy(reg);
    kf_admin_destroy(a);
    const char *dsn = getenv("KFLEET_PG_DSN");
    PGconn *c = dsn ? PQconnectdb(dsn) : NULL;
    if (c && PQstatus(c) == CONNECTION_OK) {
        PQclear(PQexec(c, "SET client_min_messages = warning"));
        const char *params[1] = {uniq};
        PGresult *r =
            PQexecParams(c, "SELECT nspname FROM pg_namespace WHERE left(nspname, length($1)) = $1",
                         1, NULL, params, NULL, NULL, 0);
        for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++) {
            char *q = PQescapeIdentifier(c, PQgetvalue(r, i, 0), strlen(PQgetvalue(r, i, 0)));
            char sql[300];
            snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", q ? q : "\"\"");
            PQfreemem(q);
            PQclear(PQexec(c, sql));
        }
        PQclear(r);
        static const char *const deletes[] = {
            "DELETE FROM kfleet_meta.sync_markers WHERE left(group_id, length($1)) = $1",
            "DELETE FROM kfleet_meta.sync_runs WHERE left(group_id, length($1)) = $1",
            "DELETE FROM kfleet_meta.schema_history WHERE left(table_schema, length($1)) = $1",
            "DELETE FROM kfleet_meta.error_log WHERE left(table_schema, length($1)) = $1",
        };
        for (size_t i = 0; i < sizeof(deletes) / sizeof(deletes[0]); i++)
            PQclear(PQexecParams(c, deletes[i], 1, NULL, params, NULL, NULL, 0));
    }
    if (c)
        PQfinish(c);
    unlink(log_path);
    return 0;
}

int main(void)
{
    /* unique and short: Postgres cuts names at 63 bytes */
    fmt(uniq, sizeof(uniq), "prunet_%ld_%ld", (long)getpid(), (long)time(NULL) % 1000000);
    fmt(prefix, sizeof(prefix), "%s_run_", uniq);
    /* dated one, two and three days ago, so that they are always in the past */
    time_t now = time(NULL);
    for (int i = 0; i < NRUNS; i++) {
        time_t t = now - (time_t)(NRUNS - i) * 86400;
        struct tm tm;
        localtime_r(&t, &tm);
        char stamp[32];
        strftime(stamp, sizeof(stamp), "%m%d_%H%M%S", &tm);
        fmt(runs[i], sizeof(runs[i]), "%s%s_%d", prefix, stamp, 100 + i);
    }
    fmt(spare, sizeof(spare), "%s0101_000000_104", prefix);
    fmt(log_path, sizeof(log_path), "/tmp/%s.log", uniq);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(prune_keeps_the_newest_runs, remove_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
