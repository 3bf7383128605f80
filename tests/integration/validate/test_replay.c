/* Integration test of kfleet-replay against the real broker, registry and Postgres: dead-letter
 * records written in a transaction (so each partition ends with a commit marker) are listed
 * with --dry-run and the --offsets, --since/--until and --rule filters; the run stops at the
 * ends the partitions had at start; the loop guard parks records replayed too often, with
 * their error headers intact; a second run resumes and replays nothing; --follow picks up
 * records written later; --materialize writes every record once in batches, and again nothing
 * new. Records kfleet-validate could not decode carry the reserved rule id kfleet.decode and
 * are selected by it and by --reason, and nothing else is. Every run but a dry run leaves one
 * replay summary in <p>.audit, checked field by field. */
#include <fcntl.h>
#include <libpq-fe.h>

#include "kfleet/audit.h"
#include "kfleet/dlq.h"
#include "vt_fixture.h"

#define NRECORDS 40
#define BASE_TS  1700000000000LL /* 2023-11-14T22:13:20Z */

typedef struct fx {
    vt_env env; /* first; env.topic is the origin of the dead-letter records in env.dlq */
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
    snprintf(txn, sizeof(txn), "%s-writer-%d", f->env.prefix, first);
    const char *kv[] = {"bootstrap.servers", f->env.bootstrap, "transactional.id", txn};
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
            {KF_DLQ_H_TOPIC, f->env.topic, strlen(f->env.topic)},
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
        kf_produce_msg msg = {.topic = f->env.dlq,
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
    fx *f = vt_fixture_new(sizeof(*f), "rp");
    kf_error err;
    const char *kv[] = {"bootstrap.servers", f->env.bootstrap};
    f->admin = kf_admin_new(kv, 1, &err);
    assert_non_null(f->admin);
    kf_topic_spec specs[] = {{.name = f->env.topic, .partitions = 2, .replication_factor = -1},
                             {.name = f->env.dlq, .partitions = 2, .replication_factor = -1}};
    assert_int_equal(kf_admin_create_topics(f->admin, specs, 2, true, 30000, &err), KF_OK);
    produce_dlq(f, 0, NRECORDS);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char parked[320];
    snprintf(parked, sizeof(parked), "%s.parked", f->env.dlq);
    kf_admin_destroy(f->admin);
    vt_fixture_free(&f->env, (const char *[]){parked}, 1);
    return 0;
}

/* Runs kfleet-replay with args (NULL-terminated) plus the bootstrap and the DLQ topic; stdout
 * into f->env.out. Returns the exit code; *elapsed_ms the run time. */
static int run_replay(fx *f, const char *const *args, int64_t *elapsed_ms)
{
    int64_t t0 = vt_now_ms();
    int rc = vt_wait(vt_spawn_replay(&f->env, args, f->env.out), 120000);
    if (elapsed_ms)
        *elapsed_ms = vt_now_ms() - t0;
    return rc;
}

/* The dry-run lines of the last run, as "P@OFFSET park|replay" joined by spaces, and the
 * summary line. */
static void dry_lines(fx *f, char *lines, size_t cap, char *summary, size_t scap)
{
    FILE *fp = fopen(f->env.out, "r");
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

/* The dry-run lines of the last run whole (without the summary), each ending in '\n'. */
static size_t dry_full(fx *f, char *out, size_t cap)
{
    FILE *fp = fopen(f->env.out, "r");
    assert_non_null(fp);
    char line[1024];
    size_t len = 0, n = 0;
    out[0] = '\0';
    while (fgets(line, sizeof(line), fp)) {
        if (strncmp(line, "dry run:", 8) == 0)
            continue;
        len += (size_t)snprintf(out + len, cap - len, "%s", line);
        n++;
    }
    fclose(fp);
    return n;
}

/* The replay summaries in <p>.audit so far (other programs' events skipped); 0 when the
 * topic does not exist. */
static int replay_events(fx *f, vt_audit *out, size_t max)
{
    static vt_audit all[64];
    int n = vt_audit_read(f->env.bootstrap, f->env.serde, f->env.audit, all, 64, 30000);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(all[i].program, "kfleet-replay") == 0 && (size_t)k < max) {
            out[k++] = all[i];
            continue;
        }
        vt_audit_free(&all[i], 1);
    }
    return k;
}

/* Checks what every replay summary of this fixture has: a fresh id, the program, the DLQ
 * topic, no row coordinates. */
static void check_summary(fx *f, const vt_audit *a, const char *level)
{
    assert_true(vt_is_uuid_v4(a->id));
    assert_string_equal(a->program, "kfleet-replay");
    assert_string_equal(a->action, "replay");
    assert_string_equal(a->level, level);
    assert_string_equal(a->key, a->instance);
    assert_non_null(a->topic);
    assert_string_equal(a->topic, f->env.dlq);
    assert_true(a->has_count);
    assert_null(a->db);
    assert_null(a->table);
    assert_null(a->rule_id);
    assert_false(a->has_partition || a->has_offset || a->has_schema_id);
    json_t *d = vt_details(a);
    json_t *dlqs = json_object_get(d, "dlq_topics");
    assert_int_equal(json_array_size(dlqs), 1);
    assert_string_equal(json_string_value(json_array_get(dlqs, 0)), f->env.dlq);
    assert_int_equal(vt_jint(d, "exit_code"), 0);
    json_decref(d);
}

/* The {topic, records[, parking]} entry of array for topic; fails when absent. */
static json_t *topic_entry(json_t *array, const char *topic)
{
    size_t i;
    json_t *e;
    json_array_foreach(array, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "topic")), topic) == 0)
            return e;
    }
    fail_msg("topic %s is not in the summary", topic);
    return NULL;
}

static void test_dry_run_filters(void **state)
{
    fx *f = *state;
    char lines[4096], summary[256], group[160];
    int64_t elapsed;
    /* offsets of partition 0: records 4, 6, 8, 10 (10 was replayed three times: parked) */
    snprintf(group, sizeof(group), "%s-dry1", f->env.prefix);
    const char *a1[] = {"--dry-run", "--offsets", "0:2-5", "--group", group, NULL};
    assert_int_equal(run_replay(f, a1, &elapsed), 0);
    dry_lines(f, lines, sizeof(lines), summary, sizeof(summary));
    assert_string_equal(lines, "0@2 replay 0@3 replay 0@4 replay 0@5 park");
    assert_string_equal(summary, "dry run: read 40, replayed 3, parked 1, skipped 36 (filters)");
    /* it stops at the ends the partitions had at start (behind a commit marker), without
     * waiting for silence */
    assert_true(elapsed < 20000);

    /* times: records 10 .. 19 (ISO-8601 and epoch milliseconds), partition-wide offsets */
    snprintf(group, sizeof(group), "%s-dry2", f->env.prefix);
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
    snprintf(group, sizeof(group), "%s-dry3", f->env.prefix);
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
    const char *bad_reason[] = {"--dry-run", "--reason", "range,,x", NULL};
    assert_int_equal(run_replay(f, bad_reason, NULL), 2);
    /* dry runs leave no audit trail: the audit topic was never even created */
    kf_topic_info info;
    kf_error err;
    assert_int_equal(kf_admin_describe_topic(f->admin, f->env.audit, &info, 30000, &err),
                     KF_ERR_NOT_FOUND);
}

static void test_replay_loop_guard_and_resume(void **state)
{
    fx *f = *state;
    char group[160], lines[4096], summary[256];
    snprintf(group, sizeof(group), "%s-replay", f->env.prefix);
    const char *args[] = {"--rule", "r.b", "--max-replays", "3", "--group", group, NULL};
    assert_int_equal(run_replay(f, args, NULL), 0);
    dry_lines(f, lines, sizeof(lines), summary, sizeof(summary));
    int nreplay = 0, npark = 0;
    for (int i = 0; i < NRECORDS; i++)
        if (strcmp(rec_rule(i), "r.b") == 0)
            rec_replays(i) >= 3 ? npark++ : nreplay++;
    char want[512];
    snprintf(want, sizeof(want), "done: read 40, replayed %d, parked %d, skipped %d (filters)",
             nreplay, npark, NRECORDS - nreplay - npark);
    assert_string_equal(summary, want);
    /* a second run of the same group resumes at its committed offsets: nothing more */
    assert_int_equal(run_replay(f, args, NULL), 0);
    dry_lines(f, lines, sizeof(lines), summary, sizeof(summary));
    assert_string_equal(summary, "done: read 0, replayed 0, parked 0, skipped 0 (filters)");

    vt_list in = {0}, parked = {0};
    assert_true(vt_read_topic(f->env.bootstrap, f->env.topic, &in, 60000));
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
    snprintf(parking, sizeof(parking), "%s.parked", f->env.dlq);
    assert_true(vt_read_topic(f->env.bootstrap, parking, &parked, 60000));
    assert_int_equal(parked.n, npark);
    for (size_t j = 0; j < parked.n; j++) {
        vt_record *r = &parked.r[j];
        int i = atoi(r->header + 1);
        assert_true(rec_replays(i) >= 3);
        assert_int_equal(r->replay_count, 3); /* parked as it was, headers and all */
        assert_string_equal(r->rule, "r.b");
        assert_string_equal(r->origin, f->env.topic);
        assert_int_equal(r->origin_offset, 1000 + i);
    }
    vt_list_free(&in);
    vt_list_free(&parked);

    /* one summary per run: the first replayed and parked, the second found nothing */
    vt_audit ev[4];
    assert_int_equal(replay_events(f, ev, 4), 2);
    for (int i = 0; i < 2; i++)
        check_summary(f, &ev[i], "info");
    assert_string_not_equal(ev[0].id, ev[1].id);
    snprintf(want, sizeof(want),
             "kfleet-replay replayed %d, parked %d, skipped %d of 40 records read from %s", nreplay,
             npark, NRECORDS - nreplay - npark, f->env.dlq);
    assert_string_equal(ev[0].message, want);
    assert_int_equal(ev[0].count, nreplay + npark);
    json_t *d = vt_details(&ev[0]);
    assert_string_equal(json_string_value(json_object_get(d, "mode")), "replay");
    assert_string_equal(json_string_value(json_object_get(d, "group")), group);
    assert_int_equal(vt_jint(d, "read"), NRECORDS);
    assert_int_equal(vt_jint(d, "replayed"), nreplay);
    assert_int_equal(vt_jint(d, "parked"), npark);
    assert_int_equal(vt_jint(d, "skipped"), NRECORDS - nreplay - npark);
    assert_int_equal(vt_jint(d, "max_replays"), 3);
    json_t *targets = json_object_get(d, "targets");
    assert_int_equal(json_array_size(targets), 2);
    json_t *t = topic_entry(targets, f->env.topic);
    assert_int_equal(json_integer_value(json_object_get(t, "records")), nreplay);
    assert_true(json_is_false(json_object_get(t, "parking")));
    t = topic_entry(targets, parking);
    assert_int_equal(json_integer_value(json_object_get(t, "records")), npark);
    assert_true(json_is_true(json_object_get(t, "parking")));
    json_t *origins = json_object_get(d, "origins");
    assert_int_equal(json_array_size(origins), 1);
    t = topic_entry(origins, f->env.topic);
    assert_int_equal(json_integer_value(json_object_get(t, "records")), nreplay + npark);
    json_t *rules = json_object_get(json_object_get(d, "filters"), "rules");
    assert_int_equal(json_array_size(rules), 1);
    assert_string_equal(json_string_value(json_array_get(rules, 0)), "r.b");
    json_decref(d);
    snprintf(want, sizeof(want),
             "kfleet-replay replayed 0, parked 0, skipped 0 of 0 records read from %s", f->env.dlq);
    assert_string_equal(ev[1].message, want);
    assert_int_equal(ev[1].count, 0);
    d = vt_details(&ev[1]);
    assert_int_equal(json_array_size(json_object_get(d, "targets")), 0);
    json_decref(d);
    vt_audit_free(ev, 2);
}

static void test_follow(void **state)
{
    fx *f = *state;
    char group[160], target[200];
    snprintf(group, sizeof(group), "%s-follow", f->env.prefix);
    snprintf(target, sizeof(target), "%s.followed", f->env.prefix);
    kf_error err;
    kf_topic_spec spec = {.name = target, .partitions = 1, .replication_factor = -1};
    assert_int_equal(kf_admin_create_topics(f->admin, &spec, 1, true, 30000, &err), KF_OK);
    const char *args[] = {"--follow", "--to",    target, "--max-replays",
                          "1000",     "--group", group,  NULL};
    pid_t pid = vt_spawn_replay(&f->env, args, NULL);
    /* everything there is, then what comes later */
    const char *targets[] = {target};
    assert_true(vt_wait_records(f->env.bootstrap, targets, 1, NRECORDS, 200, 60000));
    usleep(1500000); /* well past any end: a follower keeps running */
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);
    produce_dlq(f, NRECORDS, NRECORDS + 5);
    assert_true(vt_wait_records(f->env.bootstrap, targets, 1, NRECORDS + 5, 200, 60000));
    kill(pid, SIGTERM);
    assert_int_equal(vt_wait(pid, 30000), 0);
    vt_list l = {0};
    assert_true(vt_read_topic(f->env.bootstrap, target, &l, 30000));
    assert_int_equal(l.n, NRECORDS + 5);
    vt_list_free(&l);
    /* a follower's summary comes when it is stopped */
    vt_audit ev[2];
    assert_int_equal(replay_events(f, ev, 2), 1);
    check_summary(f, &ev[0], "info");
    assert_int_equal(ev[0].count, NRECORDS + 5);
    json_t *d = vt_details(&ev[0]);
    assert_string_equal(json_string_value(json_object_get(d, "to")), target);
    json_t *t = topic_entry(json_object_get(d, "targets"), target);
    assert_int_equal(json_integer_value(json_object_get(t, "records")), NRECORDS + 5);
    json_decref(d);
    vt_audit_free(ev, 1);
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
    snprintf(group, sizeof(group), "%s-mat", f->env.prefix);
    const char *args[] = {"--materialize", "--pg-dsn", dsn, "--group", group, NULL};
    assert_int_equal(run_replay(f, args, NULL), 0);
    dry_lines(f, lines, sizeof(lines), summary, sizeof(summary));
    assert_string_equal(summary,
                        "done: read 40, materialized 40 (40 new rows), skipped 0 (filters)");
    /* a fresh group reads everything again: rows are keyed by DLQ coordinates */
    snprintf(group, sizeof(group), "%s-mat2", f->env.prefix);
    const char *again[] = {"--materialize", "--pg-dsn", dsn, "--group", group, NULL};
    assert_int_equal(run_replay(f, again, NULL), 0);
    dry_lines(f, lines, sizeof(lines), summary, sizeof(summary));
    assert_string_equal(summary,
                        "done: read 40, materialized 40 (0 new rows), skipped 0 (filters)");
    PGconn *pg = PQconnectdb(dsn);
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    assert_int_equal(pg_count(pg,
                              "SELECT count(*) FROM kfleet_meta.quarantine WHERE dlq_topic = $1",
                              f->env.dlq),
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
                 f->env.dlq),
        NRECORDS);
    PGresult *res = PQexecParams(pg, "DELETE FROM kfleet_meta.quarantine WHERE dlq_topic = $1", 1,
                                 NULL, (const char *[]){f->env.dlq}, NULL, NULL, 0);
    PQclear(res);
    PQfinish(pg);
    /* a summary per run: materialized rows, new rows */
    vt_audit ev[4];
    assert_int_equal(replay_events(f, ev, 4), 2);
    for (int i = 0; i < 2; i++) {
        check_summary(f, &ev[i], "info");
        assert_int_equal(ev[i].count, NRECORDS);
        json_t *d = vt_details(&ev[i]);
        assert_string_equal(json_string_value(json_object_get(d, "mode")), "materialize");
        assert_int_equal(vt_jint(d, "materialized"), NRECORDS);
        assert_int_equal(vt_jint(d, "inserted"), i == 0 ? NRECORDS : 0);
        json_decref(d);
    }
    vt_audit_free(ev, 2);
}

/* Writes records to the origin topic that kfleet-validate cannot decode or that break a rule,
 * and runs the worker over them, so their dead-letter records get validate's own headers. */
static void validate_poison(fx *f)
{
    kf_error err;
    vt_orders o;
    vt_ok(vt_orders_new(&o, f->env.serde, f->env.prefix, f->env.topic, 2, &err), &err);
    kf_buf key = {0}, good = {0}, nulled = {0}, cut = {0};
    assert_int_equal(kf_event_writer_begin(o.w, KF_OP_CREATE, BASE_TS, &err), KF_OK);
    assert_int_equal(kf_event_set_int(o.w, KF_AFTER, 0, 1, &err), KF_OK);
    assert_int_equal(kf_event_set_string(o.w, KF_AFTER, 1, "a@b", 3, &err), KF_OK);
    assert_int_equal(kf_event_writer_encode(o.w, &key, &good, &err), KF_OK);
    assert_int_equal(kf_buf_reserve(&cut, good.len), KF_OK);
    memcpy(cut.data, good.data, good.len);
    cut.len = good.len - 12; /* a real event cut short */
    assert_int_equal(kf_event_writer_begin(o.w, KF_OP_CREATE, BASE_TS, &err), KF_OK);
    assert_int_equal(kf_event_set_int(o.w, KF_AFTER, 0, 2, &err), KF_OK);
    assert_int_equal(kf_event_set_null(o.w, KF_AFTER, 1, &err), KF_OK);
    assert_int_equal(kf_event_writer_encode(o.w, &key, &nulled, &err), KF_OK);
    /* keys p1 .. p5: bad magic byte, unknown schema id, cut short, a null email, good */
    const struct {
        int32_t partition;
        const void *value;
        size_t len;
    } rows[] = {
        {0, "\x01garbage", 8},    {0, "\x00\x7f\xff\xff\xf0\x02\x04", 7},
        {1, cut.data, cut.len},   {1, nulled.data, nulled.len},
        {1, good.data, good.len},
    };
    kf_produce_msg msgs[5];
    char keys[5][4];
    for (size_t i = 0; i < 5; i++) {
        snprintf(keys[i], sizeof(keys[i]), "p%zu", i + 1);
        msgs[i] = (kf_produce_msg){.topic = f->env.topic,
                                   .partition = rows[i].partition,
                                   .key = keys[i],
                                   .key_len = 2,
                                   .value = rows[i].value,
                                   .value_len = rows[i].len};
    }
    vt_ok(vt_produce(f->env.bootstrap, msgs, 5, &err), &err);
    kf_buf_free(&key);
    kf_buf_free(&good);
    kf_buf_free(&nulled);
    kf_buf_free(&cut);
    vt_orders_free(&o);

    char group[160];
    snprintf(group, sizeof(group), "%s-validate", f->env.prefix);
    assert_true(vt_write_file(f->env.contract, "contract: orders\nmatch:\n  tables: [shop.orders]\n"
                                               "columns:\n  email: [not_null]\n"));
    const char *max[] = {"--max-records", "5", NULL};
    assert_int_equal(vt_wait(vt_spawn_validate(&f->env, f->env.contract, group, max), 120000), 0);
}

/* Dry-run lines of a run with args must be exactly `want` lines, each naming one of the
 * "rule=X reason=Y" pairs in `pairs` (every pair once). */
static void expect_selected(fx *f, const char *const *args, const char *const *pairs, size_t want,
                            const char *summary)
{
    assert_int_equal(run_replay(f, args, NULL), 0);
    char text[8192], lines[4096], sum[256];
    size_t n = dry_full(f, text, sizeof(text));
    if (n != want)
        fail_msg("%zu records selected, expected %zu:\n%s", n, want, text);
    for (size_t i = 0; i < want; i++)
        if (!strstr(text, pairs[i]))
            fail_msg("no record with \"%s\" selected:\n%s", pairs[i], text);
    dry_lines(f, lines, sizeof(lines), sum, sizeof(sum));
    assert_string_equal(sum, summary);
}

static void test_decode_failures_selected(void **state)
{
    fx *f = *state;
    validate_poison(f);
    /* the DLQ: 40 hand-written rule records (r.a, r.b; reason range), then what validate
     * quarantined: three undecodable records and one not_null violation */
    char group[160];
    snprintf(group, sizeof(group), "%s-decode", f->env.prefix);
    const char *by_rule[] = {"--dry-run", "--rule", KF_DLQ_RULE_DECODE, "--group", group, NULL};
    const char *decode3[] = {"rule=kfleet.decode reason=bad_magic_byte",
                             "rule=kfleet.decode reason=unknown_schema_id",
                             "rule=kfleet.decode reason=undecodable_avro"};
    expect_selected(f, by_rule, decode3, 3,
                    "dry run: read 44, replayed 3, parked 0, skipped 41 (filters)");
    const char *by_reason[] = {"--dry-run", "--reason", "schema", "--group", group, NULL};
    expect_selected(f, by_reason, decode3 + 1, 1,
                    "dry run: read 44, replayed 1, parked 0, skipped 43 (filters)");
    const char *two_reasons[] = {"--dry-run", "--reason", "magic", "--reason",
                                 "avro",      "--group",  group,   NULL};
    const char *magic_avro[] = {decode3[0], decode3[2]};
    expect_selected(f, two_reasons, magic_avro, 2,
                    "dry run: read 44, replayed 2, parked 0, skipped 42 (filters)");
    const char *both[] = {"--dry-run", "--rule", KF_DLQ_RULE_DECODE, "--reason", "magic", "--group",
                          group,       NULL};
    expect_selected(f, both, decode3, 1,
                    "dry run: read 44, replayed 1, parked 0, skipped 43 (filters)");
    const char *rule_kind[] = {"--dry-run", "--reason", "not_null", "--group", group, NULL};
    const char *not_null[] = {"rule=orders.email.not_null reason=not_null"};
    expect_selected(f, rule_kind, not_null, 1,
                    "dry run: read 44, replayed 1, parked 0, skipped 43 (filters)");
    const char *none[] = {"--dry-run", "--reason", "no such reason", "--group", group, NULL};
    expect_selected(f, none, NULL, 0,
                    "dry run: read 44, replayed 0, parked 0, skipped 44 (filters)");

    /* the real thing: the undecodable records to a side topic, byte for byte */
    char target[200];
    snprintf(target, sizeof(target), "%s.poison", f->env.prefix);
    kf_error err;
    kf_topic_spec spec = {.name = target, .partitions = 1, .replication_factor = -1};
    assert_int_equal(kf_admin_create_topics(f->admin, &spec, 1, true, 30000, &err), KF_OK);
    const char *send[] = {"--rule", KF_DLQ_RULE_DECODE, "--to", target, "--group", group, NULL};
    assert_int_equal(run_replay(f, send, NULL), 0);
    vt_list l = {0};
    assert_true(vt_read_topic(f->env.bootstrap, target, &l, 30000));
    assert_int_equal(l.n, 3);
    for (size_t i = 0; i < l.n; i++) {
        assert_string_equal(l.r[i].rule, ""); /* error headers gone */
        assert_int_equal(l.r[i].replay_count, 1);
        assert_true(l.r[i].key_len == 2 && memcmp(l.r[i].key, "p", 1) == 0 &&
                    strchr("123", ((const char *)l.r[i].key)[1]));
    }
    vt_list_free(&l);
    vt_audit ev[2];
    assert_int_equal(replay_events(f, ev, 2), 1);
    check_summary(f, &ev[0], "info");
    assert_int_equal(ev[0].count, 3);
    json_t *d = vt_details(&ev[0]);
    json_t *rules = json_object_get(json_object_get(d, "filters"), "rules");
    assert_string_equal(json_string_value(json_array_get(rules, 0)), KF_DLQ_RULE_DECODE);
    assert_int_equal(vt_jint(topic_entry(json_object_get(d, "targets"), target), "records"), 3);
    assert_int_equal(vt_jint(topic_entry(json_object_get(d, "origins"), f->env.topic), "records"),
                     3);
    json_decref(d);
    vt_audit_free(ev, 1);
    const char *names[] = {target};
    kf_admin_delete_topics(f->admin, names, 1, true, 30000, &err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dry_run_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_loop_guard_and_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_materialize_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_failures_selected, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
