/* Integration test of kfleet-replay against the real broker and Postgres: dead-letter records
 * written in a transaction (so each partition ends with a commit marker) are listed with
 * --dry-run and the --offsets, --since/--until and --rule filters; the run stops at the ends
 * the partitions had at start; the loop guard parks records replayed too often, with their
 * error headers intact; a second run resumes and replays nothing; --follow picks up records
 * written later; --materialize writes every record once in batches, and again nothing new. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <libpq-fe.h>

#include "kf_test_env.h"
#include "kfleet/dlq.h"
#include "vt.h"

#define NRECORDS 40
#define BASE_TS  1700000000000LL /* 2023-11-14T22:13:20Z */

typedef struct fx {
    const char *bootstrap, *replay_bin;
    char prefix[96], origin[160], dlq[300], out[256], log[256];
    char set_boot[200];
    kf_admin *admin;
} fx;

/* What record i of the DLQ looks like: partition i % 2 at offset i / 2, rule r.a for every
 * fourth, replayed three times already for every fifth. */
static int32_t rec_partition(int i)
{
    return i % 2;
}
static const char *rec_rule(int i)
{
    return i % 4 == 0 ? "r.a" : "r.b";
}
static int rec_replays(int i)
{
    return i % 5 == 0 ? 3 : 0;
}

/* Writes DLQ records first..last-1 in one transaction. */
static void produce_dlq(fx *f, int first, int last)
{
    kf_error err;
    char txn[160];
    snprintf(txn, sizeof(txn), "%s-writer-%d", f->prefix, first);
    const char *kv[] = {"bootstrap.servers", f->bootstrap, "transactional.id", txn};
    kf_producer *p = kf_producer_new(kv, 2, NULL, &err);
    assert_non_null(p);
    kf_txn *t = kf_txn_new(p, NULL, 30000, &err);
    assert_non_null(t);
    assert_int_equal(kf_txn_begin(t, &err), KF_OK);
    for (int i = first; i < last; i++) {
        char key[16], value[16], trace[16], opart[8], ooff[16], replays[8];
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(value, sizeof(value), "v%d", i);
        snprintf(trace, sizeof(trace), "t%d", i);
        snprintf(opart, sizeof(opart), "%d", (int)rec_partition(i));
        snprintf(ooff, sizeof(ooff), "%d", 1000 + i);
        snprintf(replays, sizeof(replays), "%d", rec_replays(i));
        kf_header h[] = {
            {"trace", trace, strlen(trace)},
            {KF_DLQ_H_TOPIC, f->origin, strlen(f->origin)},
            {KF_DLQ_H_PARTITION, opart, strlen(opart)},
            {KF_DLQ_H_OFFSET, ooff, strlen(ooff)},
            {KF_DLQ_H_STAGE, "validate", 8},
            {KF_DLQ_H_MESSAGE, "column \"qty\" is out of range",
             strlen("column \"qty\" is out of range")},
            {KF_DLQ_H_RULE_ID, rec_rule(i), strlen(rec_rule(i))},
            {KF_DLQ_H_REASON, "range", 5},
            {KF_DLQ_H_WORKER, "kfleet-validate", 15},
            {KF_DLQ_H_REPLAY, replays, strlen(replays)},
        };
        kf_produce_msg msg = {.topic = f->dlq,
                              .partition = rec_partition(i),
                              .key = key,
                              .key_len = strlen(key),
                              .value = value,
                              .value_len = strlen(value),
                              .header_list = h,
                              .header_count = rec_replays(i) ? 10 : 9,
                              .timestamp_ms = BASE_TS + (int64_t)i * 1000};
        assert_int_equal(kf_producer_produce(p, &msg, NULL, &err), KF_OK);
    }
    assert_int_equal(kf_txn_commit(t, &err), KF_OK);
    kf_txn_destroy(t);
    kf_producer_destroy(p);
}

static int setup(void **state)
{
    /* the environment first: a missing variable fails the test before anything is allocated */
    const char *bootstrap = kf_test_env("KFLEET_BOOTSTRAP");
    const char *replay_bin = kf_test_env("KFLEET_REPLAY_BIN");
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    kf_error err;
    f->bootstrap = bootstrap;
    f->replay_bin = replay_bin;
    char name[80];
    kf_test_unique_name(name, sizeof(name), "rp");
    snprintf(f->prefix, sizeof(f->prefix), "%s", name);
    snprintf(f->origin, sizeof(f->origin), "%s.shop.orders", name);
    snprintf(f->dlq, sizeof(f->dlq), "%s.dlq.%s", name, f->origin);
    snprintf(f->out, sizeof(f->out), "/tmp/%s.out", name);
    snprintf(f->log, sizeof(f->log), "/tmp/%s.log", name);
    snprintf(f->set_boot, sizeof(f->set_boot), "kafka.bootstrap.servers=%s", f->bootstrap);
    const char *kv[] = {"bootstrap.servers", f->bootstrap};
    f->admin = kf_admin_new(kv, 1, &err);
    assert_non_null(f->admin);
    kf_topic_spec specs[] = {{.name = f->origin, .partitions = 2, .replication_factor = -1},
                             {.name = f->dlq, .partitions = 2, .replication_factor = -1}};
    assert_int_equal(kf_admin_create_topics(f->admin, specs, 2, true, 30000, &err), KF_OK);
    produce_dlq(f, 0, NRECORDS);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char parked[320];
    snprintf(parked, sizeof(parked), "%s.parked", f->dlq);
    const char *names[] = {f->origin, f->dlq, parked};
    kf_error err;
    kf_admin_delete_topics(f->admin, names, 3, true, 30000, &err);
    kf_admin_destroy(f->admin);
    unlink(f->out);
    free(f);
    return 0;
}

/* Runs kfleet-replay with args (NULL-terminated) plus the bootstrap and the DLQ topic; stdout
 * into f->out. Returns the exit code; *elapsed_ms the run time. */
static int run_replay(fx *f, const char *const *args, int64_t *elapsed_ms)
{
    char *argv[40];
    size_t n = 0;
    argv[n++] = (char *)f->replay_bin;
    for (size_t i = 0; args[i]; i++)
        argv[n++] = (char *)args[i];
    argv[n++] = "--set";
    argv[n++] = f->set_boot;
    argv[n++] = "--log-level";
    argv[n++] = "warn";
    argv[n++] = f->dlq;
    argv[n] = NULL;
    int64_t t0 = vt_now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(f->log, "a", stderr) || !freopen(f->out, "w", stdout))
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    int rc = vt_wait(pid, 120000);
    if (elapsed_ms)
        *elapsed_ms = vt_now_ms() - t0;
    return rc;
}

/* The dry-run lines of the last run, as "P@OFFSET park|replay" joined by spaces, and the
 * summary line. */
static void dry_lines(fx *f, char *lines, size_t cap, char *summary, size_t scap)
{
    FILE *fp = fopen(f->out, "r");
    assert_non_null(fp);
    char line[1024];
    size_t len = 0;
    lines[0] = summary[0] = '\0';
    while (fgets(line, sizeof(line), fp)) {
        int part;
        long long off;
        char action[16];
        if (strncmp(line, "dry run:", 8) == 0 || strncmp(line, "done:", 5) == 0) {
            line[strcspn(line, "\n")] = '\0';
            int n = snprintf(summary, scap, "%s", line);
            assert_true(n >= 0 && (size_t)n < scap);
            continue;
        }
        const char *p = strchr(line, '[');
        assert_non_null(p);
        assert_int_equal(sscanf(p, "[%d] @%lld", &part, &off), 2);
        const char *arrow = strstr(line, "-> ");
        assert_non_null(arrow);
        assert_int_equal(sscanf(arrow + 3, "%15s", action), 1);
        len += (size_t)snprintf(lines + len, cap - len, "%s%d@%lld %s", len ? " " : "", part, off,
                                action);
    }
    fclose(fp);
}

static void test_dry_run_filters(void **state)
{
    fx *f = *state;
    char lines[4096], summary[256], group[160];
    int64_t elapsed;
    /* offsets of partition 0: records 4, 6, 8, 10 (10 was replayed three times: parked) */
    snprintf(group, sizeof(group), "%s-dry1", f->prefix);
    const char *a1[] = {"--dry-run", "--offsets", "0:2-5", "--group", group, NULL};
    assert_int_equal(run_replay(f, a1, &elapsed), 0);
    dry_lines(f, lines, sizeof(lines), summary, sizeof(summary));
    assert_string_equal(lines, "0@2 replay 0@3 replay 0@4 replay 0@5 park");
    assert_string_equal(summary, "dry run: read 40, replayed 3, parked 1, skipped 36 (filters)");
    /* it stops at the ends the partitions had at start (behind a commit marker), without
     * waiting for silence */
    assert_true(elapsed < 20000);

    /* times: records 10 .. 19 (ISO-8601 and epoch milliseconds), partition-wide offsets */
    snprintf(group, sizeof(group), "%s-dry2", f->prefix);
    const char *a2[] = {
        "--dry-run", "--since", "2023-11-14T22:13:30Z", "--until", "1700000020000", "--group",
        group,       NULL};
    assert_int_equal(run_replay(f, a2, NULL), 0);
    dry_lines(f, lines, sizeof(lines), summary, sizeof(summary));
    /* partition 0 lists before partition 1 or after; compare as a set by counting */
    assert_string_equal(summary, "dry run: read 40, replayed 8, parked 2, skipped 30 (filters)");
    for (int i = 10; i < 20; i++) {
        char want[32];
        snprintf(want, sizeof(want), "%d@%d %s", (int)rec_partition(i), i / 2,
                 rec_replays(i) >= 3 ? "park" : "replay");
        assert_non_null(strstr(lines, want));
    }
    /* an offset range on every partition combined with a time bound and a rule */
    snprintf(group, sizeof(group), "%s-dry3", f->prefix);
    const char *a3[] = {"--dry-run", "--offsets", "15-",     "--since", "2023-11-14T22:13:50+00:00",
                        "--rule",    "r.a",       "--group", group,     NULL};
    assert_int_equal(run_replay(f, a3, NULL), 0);
    dry_lines(f, lines, sizeof(lines), summary, sizeof(summary));
    /* records >= 30 with offset >= 15 and rule r.a: 32 (0@16), 36 (0@18) */
    assert_string_equal(lines, "0@16 replay 0@18 replay");
    /* bad arguments are usage errors */
    const char *bad[] = {"--dry-run", "--offsets", "0:9-3", NULL};
    assert_int_equal(run_replay(f, bad, NULL), 2);
    const char *bad_time[] = {"--dry-run", "--since", "yesterday", NULL};
    assert_int_equal(run_replay(f, bad_time, NULL), 2);
}

static void test_replay_loop_guard_and_resume(void **state)
{
    fx *f = *state;
    char group[160], lines[4096], summary[256];
    snprintf(group, sizeof(group), "%s-replay", f->prefix);
    const char *args[] = {"--rule", "r.b", "--max-replays", "3", "--group", group, NULL};
    assert_int_equal(run_replay(f, args, NULL), 0);
    dry_lines(f, lines, sizeof(lines), summary, sizeof(summary));
    int nreplay = 0, npark = 0;
    for (int i = 0; i < NRECORDS; i++)
        if (strcmp(rec_rule(i), "r.b") == 0)
            rec_replays(i) >= 3 ? npark++ : nreplay++;
    char want[160];
    snprintf(want, sizeof(want), "done: read 40, replayed %d, parked %d, skipped %d (filters)",
             nreplay, npark, NRECORDS - nreplay - npark);
    assert_string_equal(summary, want);
    /* a second run of the same group resumes at its committed offsets: nothing more */
    assert_int_equal(run_replay(f, args, NULL), 0);
    dry_lines(f, lines, sizeof(lines), summary, sizeof(summary));
    assert_string_equal(summary, "done: read 0, replayed 0, parked 0, skipped 0 (filters)");

    vt_list in = {0}, parked = {0};
    assert_true(vt_read_topic(f->bootstrap, f->origin, &in, 60000));
    assert_int_equal(in.n, nreplay);
    for (size_t j = 0; j < in.n; j++) {
        vt_record *r = &in.r[j];
        int i = atoi(r->header + 1);
        assert_int_equal(r->value_len, strlen("v") + (i >= 10 ? 2 : 1));
        assert_string_equal(rec_rule(i), "r.b");
        assert_true(rec_replays(i) < 3);
        assert_int_equal(r->replay_count, 1);
        assert_string_equal(r->rule, ""); /* the error headers are gone */
        assert_string_equal(r->origin, "");
        assert_int_equal(r->partition, rec_partition(i)); /* back to its origin partition */
    }
    char parking[320];
    snprintf(parking, sizeof(parking), "%s.parked", f->dlq);
    assert_true(vt_read_topic(f->bootstrap, parking, &parked, 60000));
    assert_int_equal(parked.n, npark);
    for (size_t j = 0; j < parked.n; j++) {
        vt_record *r = &parked.r[j];
        int i = atoi(r->header + 1);
        assert_true(rec_replays(i) >= 3);
        assert_int_equal(r->replay_count, 3); /* parked as it was, headers and all */
        assert_string_equal(r->rule, "r.b");
        assert_string_equal(r->origin, f->origin);
        assert_int_equal(r->origin_offset, 1000 + i);
    }
    vt_list_free(&in);
    vt_list_free(&parked);
}

static void test_follow(void **state)
{
    fx *f = *state;
    char group[160], target[200];
    snprintf(group, sizeof(group), "%s-follow", f->prefix);
    snprintf(target, sizeof(target), "%s.followed", f->prefix);
    kf_error err;
    kf_topic_spec spec = {.name = target, .partitions = 1, .replication_factor = -1};
    assert_int_equal(kf_admin_create_topics(f->admin, &spec, 1, true, 30000, &err), KF_OK);
    char *argv[] = {(char *)f->replay_bin,
                    "--follow",
                    "--to",
                    target,
                    "--max-replays",
                    "1000",
                    "--group",
                    group,
                    "--set",
                    f->set_boot,
                    "--log-level",
                    "warn",
                    f->dlq,
                    NULL};
    pid_t pid = vt_spawn(argv, f->log);
    /* everything there is, then what comes later */
    int64_t deadline = vt_now_ms() + 60000;
    size_t n = 0;
    while (n < NRECORDS) {
        assert_true(vt_now_ms() < deadline);
        usleep(200000);
        vt_list l = {0};
        assert_true(vt_read_topic(f->bootstrap, target, &l, 30000));
        n = l.n;
        vt_list_free(&l);
    }
    usleep(1500000); /* well past any end: a follower keeps running */
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);
    produce_dlq(f, NRECORDS, NRECORDS + 5);
    deadline = vt_now_ms() + 60000;
    while (n < NRECORDS + 5) {
        assert_true(vt_now_ms() < deadline);
        usleep(200000);
        vt_list l = {0};
        assert_true(vt_read_topic(f->bootstrap, target, &l, 30000));
        n = l.n;
        vt_list_free(&l);
    }
    kill(pid, SIGTERM);
    assert_int_equal(vt_wait(pid, 30000), 0);
    vt_list l = {0};
    assert_true(vt_read_topic(f->bootstrap, target, &l, 30000));
    assert_int_equal(l.n, NRECORDS + 5);
    vt_list_free(&l);
    const char *names[] = {target};
    kf_admin_delete_topics(f->admin, names, 1, true, 30000, &err);
}

static long long pg_count(PGconn *pg, const char *sql, const char *dlq)
{
    const char *params[] = {dlq};
    PGresult *res = PQexecParams(pg, sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s", PQresultErrorMessage(res));
    long long n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return n;
}

static void test_materialize_batches(void **state)
{
    fx *f = *state;
    const char *dsn = kf_test_env("KFLEET_PG_DSN");
    char group[160], lines[4096], summary[256];
    snprintf(group, sizeof(group), "%s-mat", f->prefix);
    const char *args[] = {"--materialize", "--pg-dsn", dsn, "--group", group, NULL};
    assert_int_equal(run_replay(f, args, NULL), 0);
    dry_lines(f, lines, sizeof(lines), summary, sizeof(summary));
    assert_string_equal(summary,
                        "done: read 40, materialized 40 (40 new rows), skipped 0 (filters)");
    /* a fresh group reads everything again: rows are keyed by DLQ coordinates */
    snprintf(group, sizeof(group), "%s-mat2", f->prefix);
    const char *again[] = {"--materialize", "--pg-dsn", dsn, "--group", group, NULL};
    assert_int_equal(run_replay(f, again, NULL), 0);
    dry_lines(f, lines, sizeof(lines), summary, sizeof(summary));
    assert_string_equal(summary,
                        "done: read 40, materialized 40 (0 new rows), skipped 0 (filters)");
    PGconn *pg = PQconnectdb(dsn);
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    assert_int_equal(
        pg_count(pg, "SELECT count(*) FROM kfleet_meta.quarantine WHERE dlq_topic = $1", f->dlq),
        NRECORDS);
    /* every column from the headers, the raw key and value, the record time */
    assert_int_equal(
        pg_count(pg,
                 "SELECT count(*) FROM kfleet_meta.quarantine WHERE dlq_topic = $1"
                 " AND origin_offset = 1000 + dlq_offset * 2 + dlq_partition"
                 " AND origin_partition = dlq_partition AND origin_topic IS NOT NULL"
                 " AND record_key = convert_to('k' || (dlq_offset * 2 + dlq_partition), 'UTF8')"
                 " AND record_value = convert_to('v' || (dlq_offset * 2 + dlq_partition), 'UTF8')"
                 " AND record_ts = to_timestamp((1700000000000 + (dlq_offset * 2 + dlq_partition)"
                 "   * 1000) / 1000.0)"
                 " AND record IS NULL AND error_stage = 'validate' AND error_code = 'range'"
                 " AND _error_reason = 'column \"qty\" is out of range'"
                 " AND worker = 'kfleet-validate'"
                 " AND _violated_rule_id = CASE WHEN (dlq_offset * 2 + dlq_partition) % 4 = 0"
                 "   THEN 'r.a' ELSE 'r.b' END"
                 " AND replay_count = CASE WHEN (dlq_offset * 2 + dlq_partition) % 5 = 0"
                 "   THEN 3 ELSE 0 END",
                 f->dlq),
        NRECORDS);
    PGresult *res = PQexecParams(pg, "DELETE FROM kfleet_meta.quarantine WHERE dlq_topic = $1", 1,
                                 NULL, (const char *[]){f->dlq}, NULL, NULL, 0);
    PQclear(res);
    PQfinish(pg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dry_run_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_loop_guard_and_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_materialize_batches, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
