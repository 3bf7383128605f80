/* Integration tests of kfleet-sink-pg against real Kafka, registry and Postgres: changes
 * converge to the state computed from what the test produced; soft delete; exactly-once across
 * repeated kill -9, terminated connections, a real server restart and two workers sharing a
 * group; schema evolution; a record Postgres refuses goes to the DLQ while the rest is applied;
 * values that do not convert become null and land in error_log; a Debezium-shaped topic;
 * names crafted to inject SQL; a backlog applied in few large transactions and a trickle at
 * once; connections terminated while batches are in flight on the writer thread; a missing
 * target schema created; batches refused for a non-data reason retried; COPY straight into the
 * table falling back to the upsert when it meets existing keys; conversions alike in binary
 * and text COPY. */
#include "kf_test_env.h"
#include "kf_test_pg.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <avro.h>
#include <inttypes.h>
#include <limits.h>
#include <libpq-fe.h>

#include "kfleet/event.h"
#include "kfleet/kafka.h"
#include "kfleet/registry.h"
#include "kfleet/serde.h"
#include "kfleet/table.h"

#define PARTITIONS 3
#define WAIT_MS    90000

/* ---- fixture: a topic with a registered table and a producer ---- */

typedef struct col_spec {
    const char *name;
    const char *type;
    bool nullable;
    int pk;
} col_spec;

typedef struct fx {
    char topic[200];
    char table[120];
    char group[sizeof("g_") + 120]; /* "g_" and the table (or target) name */
    kf_registry *reg;
    kf_serde *serde;
    kf_producer *prod;
    kf_table *t;
    kf_event_writer *w;
    kf_buf key, val;
} fx;

static kf_table *table_of(const char *name, const col_spec *cols, size_t n)
{
    kf_error err;
    kf_table *t = kf_table_new("kfleet", "sinkit", NULL, name, &err);
    assert_non_null(t);
    for (size_t i = 0; i < n; i++) {
        kf_column c;
        memset(&c, 0, sizeof(c));
        c.name = cols[i].name;
        assert_int_equal(kf_coltype_parse(cols[i].type, &c, &err), KF_OK);
        c.nullable = cols[i].nullable;
        c.pk_order = cols[i].pk;
        if (kf_table_add_column(t, &c, &err) != KF_OK)
            fail_msg("%s", err.message);
    }
    return t;
}

/* Registers the table's schemas for the topic and makes a writer for them. */
static void fx_schema(fx *f, const col_spec *cols, size_t n)
{
    kf_error err;
    kf_event_writer_destroy(f->w);
    kf_table_destroy(f->t);
    f->t = table_of(f->table, cols, n);
    char subject[256];
    int32_t kid, vid;
    char *ks = kf_table_key_schema(f->t, &err), *vs = kf_table_envelope_schema(f->t, &err);
    assert_non_null(ks);
    assert_non_null(vs);
    snprintf(subject, sizeof(subject), "%s-key", f->topic);
    if (kf_serde_register(f->serde, subject, ks, &kid, &err) != KF_OK)
        fail_msg("%s", err.message);
    snprintf(subject, sizeof(subject), "%s-value", f->topic);
    if (kf_serde_register(f->serde, subject, vs, &vid, &err) != KF_OK)
        fail_msg("%s", err.message);
    free(ks);
    free(vs);
    f->w = kf_event_writer_new(f->serde, f->t, kid, vid, &err);
    if (!f->w)
        fail_msg("%s", err.message);
    kf_source src = {.version = "0.1.0",
                     .connector = "kfleet-sim",
                     .name = "kfleet",
                     .db = "sinkit",
                     .table = f->table};
    assert_int_equal(kf_event_writer_set_source(f->w, &src, &err), KF_OK);
}

/* Topics the running test made, deleted by its teardown (after a failure too). */
#define MAX_CREATED 8
static char created_topics[MAX_CREATED][256];

/* Notes topic and the dead-letter topic the sink may make for it. */
static void note_created(const char *topic)
{
    for (int i = 0; i + 1 < MAX_CREATED; i += 2) {
        if (created_topics[i][0])
            continue;
        snprintf(created_topics[i], sizeof(created_topics[i]), "%s", topic);
        snprintf(created_topics[i + 1], sizeof(created_topics[i + 1]), "kfleet.dlq.%s", topic);
        return;
    }
    fail_msg("more than %d topics in one test", MAX_CREATED / 2);
}

static void fx_init(fx *f, const char *name, const col_spec *cols, size_t n)
{
    memset(f, 0, sizeof(*f));
    kf_test_unique_name(f->table, sizeof(f->table), name);
    snprintf(f->topic, sizeof(f->topic), "kfleet.sinkit.%s", f->table);
    snprintf(f->group, sizeof(f->group), "g_%s", f->table);
    kf_error err;
    kf_registry_config rc = {.url = kf_test_env("KFLEET_REGISTRY_URL"), .timeout_ms = 10000};
    f->reg = kf_registry_new(&rc, &err);
    assert_non_null(f->reg);
    f->serde = kf_serde_new(f->reg, &err);
    assert_non_null(f->serde);
    const char *kv[] = {"bootstrap.servers", kf_test_env("KFLEET_BOOTSTRAP")};
    kf_admin *a = kf_admin_new(kv, 1, &err);
    assert_non_null(a);
    kf_topic_spec spec = {.name = f->topic, .partitions = PARTITIONS, .replication_factor = 1};
    note_created(f->topic);
    if (kf_admin_create_topics(a, &spec, 1, true, 30000, &err) != KF_OK)
        fail_msg("%s", err.message);
    kf_admin_destroy(a);
    f->prod = kf_producer_new(kv, 1, NULL, &err);
    assert_non_null(f->prod);
    fx_schema(f, cols, n);
}

static void fx_flush(fx *f)
{
    kf_error err;
    assert_int_equal(kf_producer_flush(f->prod, 60000, &err), KF_OK);
    assert_false(kf_producer_failed(f->prod, &err));
}

static void fx_free(fx *f)
{
    fx_flush(f);
    kf_event_writer_destroy(f->w);
    kf_table_destroy(f->t);
    kf_producer_destroy(f->prod);
    kf_serde_destroy(f->serde);
    kf_registry_destroy(f->reg);
    kf_buf_free(&f->key);
    kf_buf_free(&f->val);
}

static void send_msg(fx *f, bool with_value)
{
    kf_error err;
    kf_produce_msg m = {.topic = f->topic,
                        .partition = RD_KAFKA_PARTITION_UA,
                        .key = f->key.data,
                        .key_len = f->key.len,
                        .value = with_value ? f->val.data : NULL,
                        .value_len = with_value ? f->val.len : 0};
    if (kf_producer_produce(f->prod, &m, NULL, &err) != KF_OK)
        fail_msg("%s", err.message);
}

/* Emits a create/update (after image = vals) or a delete (+ tombstone) for id. vals are
 * strings per non-key column (NULL = null), set with the column's kind. */
static void emit(fx *f, kf_op op, int64_t id, const char *const *vals)
{
    kf_error err;
    assert_int_equal(kf_event_writer_begin(f->w, op, 1700000000000, &err), KF_OK);
    kf_side side = op == KF_OP_DELETE ? KF_BEFORE : KF_AFTER;
    assert_int_equal(kf_event_set_int(f->w, side, 0, id, &err), KF_OK);
    for (size_t c = 1; c < kf_table_ncolumns(f->t); c++) {
        const kf_column *col = kf_table_column(f->t, c);
        const char *v = vals ? vals[c - 1] : NULL;
        int rc;
        if (!v)
            rc = kf_event_set_null(f->w, side, c, &err);
        else if (kf_coltype_rep(col->type) == KF_REP_INT ||
                 kf_coltype_rep(col->type) == KF_REP_LONG)
            rc = kf_event_set_int(f->w, side, c, strtoll(v, NULL, 10), &err);
        else if (col->type == KF_COL_BOOL)
            rc = kf_event_set_bool(f->w, side, c, strcmp(v, "t") == 0, &err);
        else
            rc = kf_event_set_string(f->w, side, c, v, strlen(v), &err);
        if (rc != KF_OK)
            fail_msg("column %s: %s", col->name, err.message);
    }
    if (kf_event_writer_encode(f->w, &f->key, &f->val, &err) != KF_OK)
        fail_msg("%s", err.message);
    send_msg(f, true);
    if (op == KF_OP_DELETE) {
        assert_int_equal(kf_event_writer_tombstone(f->w, &f->key, &err), KF_OK);
        send_msg(f, false);
    }
}

/* ---- the worker as a child process ---- */

/* The running workers, killed by the teardown when a test fails midway. */
#define MAX_CHILDREN 4
static pid_t running_children[MAX_CHILDREN];

static pid_t sink_start(const fx *f, const char *const *extra)
{
    const char *dir = kf_test_env("KFLEET_BINARY_DIR");
    char bin[512];
    snprintf(bin, sizeof(bin), "%s/workers/sink-postgres/kfleet-sink-pg", dir);
    static char a[16][600];
    const char *args[40];
    size_t n = 0;
    args[n++] = bin;
    snprintf(a[0], sizeof(a[0]), "sink.topics=%s", f->topic);
    snprintf(a[1], sizeof(a[1]), "pg.dsn=%s", kf_test_env("KFLEET_PG_DSN"));
    snprintf(a[2], sizeof(a[2]), "kafka.bootstrap.servers=%s", kf_test_env("KFLEET_BOOTSTRAP"));
    snprintf(a[3], sizeof(a[3]), "registry.url=%s", kf_test_env("KFLEET_REGISTRY_URL"));
    snprintf(a[4], sizeof(a[4]), "kafka.group.id=%s", f->group);
    snprintf(a[5], sizeof(a[5]), "pg.application_name=%s", f->group);
    snprintf(a[6], sizeof(a[6]), "sink.flush.interval=100ms");
    snprintf(a[7], sizeof(a[7]), "log.level=warn");
    for (int i = 0; i < 8; i++) {
        args[n++] = "--set";
        args[n++] = a[i];
    }
    for (size_t i = 0; extra && extra[i]; i++) {
        args[n++] = "--set";
        args[n++] = extra[i];
    }
    args[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execv(bin, (char *const *)args);
        fprintf(stderr, "could not run %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (running_children[i] == 0) {
            running_children[i] = pid;
            break;
        }
    }
    return pid;
}

static int sink_stop(pid_t pid, int sig)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (running_children[i] == pid)
            running_children[i] = 0;
    kill(pid, sig);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

/* ---- Postgres checks ---- */

/* ---- expected state ---- */

#define MAX_IDS 400

typedef struct model {
    bool present[MAX_IDS];
    char name[MAX_IDS][32];
    long qty[MAX_IDS];
} model;

/* A deterministic mix of inserts, updates and deletes over ids 1..nids. */
static void produce_mix(fx *f, model *m, int nids, int nevents, unsigned seed)
{
    for (int i = 0; i < nevents; i++) {
        seed = seed * 1103515245u + 12345u;
        int id = 1 + (int)((seed >> 8) % (unsigned)nids);
        unsigned dice = (seed >> 20) % 10;
        if (m->present[id] && dice < 2) {
            const char *vals[2] = {m->name[id], NULL};
            emit(f, KF_OP_DELETE, id, vals);
            m->present[id] = false;
            continue;
        }
        kf_op op = m->present[id] ? KF_OP_UPDATE : KF_OP_CREATE;
        snprintf(m->name[id], sizeof(m->name[id]), "n%d\t%d\\x", id, i);
        m->qty[id] = i;
        char q[24];
        snprintf(q, sizeof(q), "%ld", m->qty[id]);
        const char *vals[2] = {m->name[id], q};
        emit(f, op, id, vals);
        m->present[id] = true;
    }
}

/* "count|sum(qty)|md5 of names" of the model, to compare with the table in one query. */
static void model_digest(const model *m, char *out, size_t cap)
{
    long count = 0, sum = 0;
    for (int i = 0; i < MAX_IDS; i++)
        if (m->present[i])
            count++, sum += m->qty[i];
    snprintf(out, cap, "%ld|%ld", count, sum);
}

static void digest_sql(const char *table, const char *where, char *out, size_t cap)
{
    snprintf(out, cap, "SELECT count(*) || '|' || coalesce(sum(qty), 0) FROM \"%s\" %s", table,
             where);
}

/* names must match exactly, tabs and backslashes included */
static void check_names(PGconn *c, const fx *f, const model *m, const char *where)
{
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT id, name FROM \"%s\" %s ORDER BY id", f->table, where);
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    for (int i = 0; i < PQntuples(r); i++) {
        int id = atoi(PQgetvalue(r, i, 0));
        assert_true(id > 0 && id < MAX_IDS && m->present[id]);
        assert_string_equal(PQgetvalue(r, i, 1), m->name[id]);
    }
    PQclear(r);
}

static const col_spec ORDERS[] = {
    {"id", "bigint", false, 1},
    {"name", "text", true, 0},
    {"qty", "bigint", true, 0},
};

/* ---- tests ---- */

static void changes_converge(void **state)
{
    (void)state;
    fx f;
    fx_init(&f, "conv", ORDERS, 3);
    static model m;
    memset(&m, 0, sizeof(m));
    produce_mix(&f, &m, 150, 3000, 7);
    fx_flush(&f);
    pid_t pid = sink_start(&f, NULL);
    PGconn *c = kf_test_pg_connect("KFLEET_PG_DSN");
    char expect[64], sql[512];
    model_digest(&m, expect, sizeof(expect));
    digest_sql(f.table, "", sql, sizeof(sql));
    kf_test_pg_wait_for(c, sql, expect, WAIT_MS);
    check_names(c, &f, &m, "");
    /* more changes on the running worker, then a clean stop */
    produce_mix(&f, &m, 150, 1000, 99);
    fx_flush(&f);
    model_digest(&m, expect, sizeof(expect));
    kf_test_pg_wait_for(c, sql, expect, WAIT_MS);
    check_names(c, &f, &m, "");
    assert_int_equal(sink_stop(pid, SIGTERM), 0);
    snprintf(sql, sizeof(sql),
             "SELECT sum(next_offset) FROM kfleet_meta.sync_markers WHERE group_id = '%s'",
             f.group);
    /* every produced message (events and tombstones) is covered by the markers */
    char total[32];
    kf_test_pg_value(c, sql, total, sizeof(total));
    assert_true(atol(total) > 4000);
    snprintf(sql, sizeof(sql),
             "SELECT status FROM kfleet_meta.sync_runs WHERE group_id = '%s' ORDER BY id DESC",
             f.group);
    kf_test_pg_wait_for(c, sql, "stopped", WAIT_MS);
    PQfinish(c);
    fx_free(&f);
}

static void soft_delete_marks_rows(void **state)
{
    (void)state;
    fx f;
    fx_init(&f, "soft", ORDERS, 3);
    static model m;
    memset(&m, 0, sizeof(m));
    produce_mix(&f, &m, 60, 800, 3);
    fx_flush(&f);
    const char *extra[] = {"sink.deletion_strategy=soft", NULL};
    pid_t pid = sink_start(&f, extra);
    PGconn *c = kf_test_pg_connect("KFLEET_PG_DSN");
    char expect[64], sql[512];
    model_digest(&m, expect, sizeof(expect));
    digest_sql(f.table, "WHERE NOT is_deleted", sql, sizeof(sql));
    kf_test_pg_wait_for(c, sql, expect, WAIT_MS);
    check_names(c, &f, &m, "WHERE NOT is_deleted");
    /* deleted rows are still there, flagged */
    int ever = 0, present = 0;
    for (int i = 1; i <= 60; i++)
        present += m.present[i];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\" WHERE is_deleted", f.table);
    char got[32];
    kf_test_pg_value(c, sql, got, sizeof(got));
    ever = atoi(got);
    assert_true(ever > 0);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\"", f.table);
    kf_test_pg_value(c, sql, got, sizeof(got));
    assert_int_equal(atoi(got), present + ever);
    assert_int_equal(sink_stop(pid, SIGTERM), 0);
    PQfinish(c);
    fx_free(&f);
}

/* Creates the ORDERS table with a trigger counting updates in "<table>_updates": with an
 * insert-only stream, a change applied twice shows up as an update. */
static void create_counted_table(PGconn *c, const char *table)
{
    char sql[2048]; /* seven names of up to 119 bytes and the statements around them */
    snprintf(
        sql, sizeof(sql),
        "CREATE TABLE \"%s\" (id bigint PRIMARY KEY, name text, qty bigint);"
        "CREATE TABLE \"%s_updates\" (n bigint NOT NULL);"
        "INSERT INTO \"%s_updates\" VALUES (0);"
        "CREATE FUNCTION \"%s_count\"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "UPDATE \"%s_updates\" SET n = n + 1; RETURN NEW; END $$;"
        "CREATE TRIGGER t BEFORE UPDATE ON \"%s\" FOR EACH ROW EXECUTE FUNCTION \"%s_count\"()",
        table, table, table, table, table, table, table);
    kf_test_pg_exec(c, sql);
}

/* Inserts ids from..to with qty = id. */
static void emit_inserts(fx *f, int from, int to)
{
    for (int id = from; id <= to; id++) {
        char q[24];
        snprintf(q, sizeof(q), "%d", id);
        const char *vals[2] = {"row", q};
        emit(f, KF_OP_CREATE, id, vals);
    }
}

/* Insert-only stream of n rows into a table whose trigger counts updates: a change applied
 * twice would be an ON CONFLICT update (a COPY straight into the table meeting its own rows
 * falls back to the upsert). Kill -9 the worker repeatedly while it loads. */
static void kill9_rounds(const char *name, int n, const char *const *more)
{
    /* a killed worker stays in the group until its session times out: keep that short */
    const char *extra[8] = {"kafka.session.timeout.ms=6000", "kafka.heartbeat.interval.ms=1000"};
    for (size_t i = 0; more && more[i] && i < 5; i++)
        extra[2 + i] = more[i];
    fx f;
    fx_init(&f, name, ORDERS, 3);
    PGconn *c = kf_test_pg_connect("KFLEET_PG_DSN");
    char sql[1024];
    create_counted_table(c, f.table);
    emit_inserts(&f, 1, n);
    fx_flush(&f);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\"", f.table);
    char got[32];
    /* A kill lands mid-stream unless the rows left fitted in the batch being committed (large
     * batches take up to 50000 rows at once): then the rounds end there, and at least three
     * kills must have hit the worker while it loaded. */
    int mid_stream = 0;
    for (int round = 0; round < 5; round++) {
        kf_test_pg_value(c, sql, got, sizeof(got));
        pid_t pid = sink_start(&f, extra);
        /* kill in the middle of the stream: once this round made progress */
        long target = atol(got) + n / 8;
        for (int waited = 0; waited < WAIT_MS; waited += 5) {
            kf_test_pg_value(c, sql, got, sizeof(got));
            if (atol(got) >= target)
                break;
            usleep(5000);
        }
        assert_int_equal(sink_stop(pid, SIGKILL), 128 + SIGKILL);
        kf_test_pg_value(c, sql, got, sizeof(got));
        fprintf(stderr, "round %d: %s rows after kill -9\n", round, got);
        if (atol(got) >= n)
            break;
        mid_stream++;
    }
    assert_true(mid_stream >= 3);
    char runs[1024], before[32], expect[32];
    snprintf(runs, sizeof(runs), "SELECT count(*) FROM kfleet_meta.sync_runs WHERE group_id = '%s'",
             f.group);
    kf_test_pg_value(c, runs, before, sizeof(before));
    pid_t pid = sink_start(&f, extra);
    snprintf(expect, sizeof(expect), "%d", n);
    kf_test_pg_wait_for(c, sql, expect, WAIT_MS);
    /* the run has started (its sync_runs row exists) before it is asked to stop */
    snprintf(expect, sizeof(expect), "%ld", atol(before) + 1);
    kf_test_pg_wait_for(c, runs, expect, WAIT_MS);
    snprintf(sql, sizeof(sql), "SELECT n FROM \"%s_updates\"", f.table);
    kf_test_pg_value(c, sql, got, sizeof(got));
    assert_string_equal(got, "0");
    snprintf(sql, sizeof(sql), "SELECT sum(qty) FROM \"%s\"", f.table);
    kf_test_pg_value(c, sql, got, sizeof(got));
    assert_int_equal(atoll(got), (long long)n * (n + 1) / 2);
    snprintf(sql, sizeof(sql),
             "SELECT sum(next_offset) FROM kfleet_meta.sync_markers WHERE group_id = '%s'",
             f.group);
    snprintf(expect, sizeof(expect), "%d", n);
    kf_test_pg_wait_for(c, sql, expect, WAIT_MS);
    assert_int_equal(sink_stop(pid, SIGTERM), 0);
    PQfinish(c);
    fx_free(&f);
}

/* Small batches: many commits for a kill to fall between. */
static void kill9_is_exactly_once(void **state)
{
    (void)state;
    const char *extra[] = {"sink.batch.size=50", "sink.batch.max.rows=50", NULL};
    kill9_rounds("kill", 30000, extra);
}

/* The default batches: large binary COPYs straight into the table, applied by the writer
 * thread while the next batch is decoded, killed mid-stream. */
static void kill9_large_batches_is_exactly_once(void **state)
{
    (void)state;
    kill9_rounds("killbig", 150000, NULL);
}

/* Sum of qty over ids from..to, qty = id + add. */
static long long qty_sum(long from, long to, long add)
{
    return (long long)(from + to) * (to - from + 1) / 2 + (long long)add * (to - from + 1);
}

/* COPY straight into the table (insert-only batches) meets keys the table holds already: in
 * the first batch of a backlog (rows inserted beforehand; the writer thread applies it), in a
 * later run (keys created again; the loop applies the batch itself), and a key created twice
 * in one batch (the last change wins, no conflict). Each time the batch goes the staging way
 * in the same transaction: every row is there once with its last values, every conflicting
 * key updated exactly once (the trigger counts updates), nothing in the DLQ. */
static void insert_fast_path_falls_back(void **state)
{
    (void)state;
    fx f;
    fx_init(&f, "fast", ORDERS, 3);
    PGconn *c = kf_test_pg_connect("KFLEET_PG_DSN");
    char sql[1024], expect[64], got[32];
    create_counted_table(c, f.table);
    snprintf(sql, sizeof(sql),
             "INSERT INTO \"%s\" SELECT g, 'pre', 0 FROM generate_series(1, 200) g", f.table);
    kf_test_pg_exec(c, sql);
    const int n = 6000;
    emit_inserts(&f, 1, n);
    fx_flush(&f);
    const char *extra[] = {"sink.batch.size=500", "sink.batch.max.rows=2000", NULL};
    pid_t pid = sink_start(&f, extra);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) || '|' || sum(qty) || '|' || count(*) FILTER (WHERE name = 'pre') "
             "FROM \"%s\"",
             f.table);
    snprintf(expect, sizeof(expect), "%d|%lld|0", n, qty_sum(1, n, 0));
    kf_test_pg_wait_for(c, sql, expect, WAIT_MS);
    snprintf(sql, sizeof(sql), "SELECT n FROM \"%s_updates\"", f.table);
    kf_test_pg_value(c, sql, got, sizeof(got));
    assert_string_equal(got, "200");
    assert_int_equal(sink_stop(pid, SIGTERM), 0);

    /* a second run: ids 5901..6100 created (again, for the first hundred) and 7000 twice */
    for (int id = 5901; id <= 6100; id++) {
        char q[24];
        snprintf(q, sizeof(q), "%d", id + 1000000);
        const char *vals[2] = {"again", q};
        emit(&f, KF_OP_CREATE, id, vals);
    }
    const char *first[2] = {"first", "1"}, *last[2] = {"last", "2"};
    emit(&f, KF_OP_CREATE, 7000, first);
    emit(&f, KF_OP_CREATE, 7000, last);
    fx_flush(&f);
    pid = sink_start(&f, extra);
    snprintf(sql, sizeof(sql), "SELECT count(*) || '|' || sum(qty) FROM \"%s\"", f.table);
    snprintf(expect, sizeof(expect), "%d|%lld", 6101,
             qty_sum(1, 5900, 0) + qty_sum(5901, 6100, 1000000) + 2);
    kf_test_pg_wait_for(c, sql, expect, WAIT_MS);
    snprintf(sql, sizeof(sql), "SELECT name FROM \"%s\" WHERE id = 7000", f.table);
    kf_test_pg_value(c, sql, got, sizeof(got));
    assert_string_equal(got, "last");
    snprintf(sql, sizeof(sql), "SELECT n FROM \"%s_updates\"", f.table);
    kf_test_pg_value(c, sql, got, sizeof(got));
    assert_string_equal(got, "300");
    /* every message is covered by the markers, and nothing was quarantined */
    snprintf(sql, sizeof(sql),
             "SELECT sum(next_offset) FROM kfleet_meta.sync_markers WHERE group_id = '%s'",
             f.group);
    snprintf(expect, sizeof(expect), "%d", n + 202);
    kf_test_pg_wait_for(c, sql, expect, WAIT_MS);
    assert_int_equal(sink_stop(pid, SIGTERM), 0);
    snprintf(sql, sizeof(sql),
             "SELECT sum(dlq_records) || '|' || count(*) FROM kfleet_meta.sync_runs WHERE "
             "group_id = '%s' AND status = 'stopped'",
             f.group);
    kf_test_pg_wait_for(c, sql, "0|2", WAIT_MS);
    PQfinish(c);
    fx_free(&f);
}

/* The worker's connections are terminated (SQLSTATE 57P01) again and again while it loads. */
static void postgres_disconnects_lose_nothing(void **state)
{
    (void)state;
    fx f;
    fx_init(&f, "term", ORDERS, 3);
    static model m;
    memset(&m, 0, sizeof(m));
    produce_mix(&f, &m, 300, 6000, 11);
    fx_flush(&f);
    const char *extra[] = {"sink.batch.size=100", "sink.batch.max.rows=100", NULL};
    pid_t pid = sink_start(&f, extra);
    PGconn *admin = kf_test_pg_connect("KFLEET_PG_ADMIN_DSN");
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
             "application_name = '%s'",
             f.group);
    for (int i = 0; i < 8; i++) {
        usleep(300000);
        kf_test_pg_exec(admin, sql);
    }
    PGconn *c = kf_test_pg_connect("KFLEET_PG_DSN");
    char expect[64];
    model_digest(&m, expect, sizeof(expect));
    digest_sql(f.table, "", sql, sizeof(sql));
    kf_test_pg_wait_for(c, sql, expect, WAIT_MS);
    check_names(c, &f, &m, "");
    assert_int_equal(sink_stop(pid, SIGTERM), 0);
    PQfinish(admin);
    PQfinish(c);
    fx_free(&f);
}

/* An insert-only backlog goes in by batches the writer thread applies while the next one is
 * decoded; the worker's connections are terminated again and again meanwhile. Every row lands
 * once: none is missing and none was applied twice (the trigger counts updates). */
static void terminations_during_batches_in_flight(void **state)
{
    (void)state;
    fx f;
    fx_init(&f, "flight", ORDERS, 3);
    PGconn *c = kf_test_pg_connect("KFLEET_PG_DSN");
    create_counted_table(c, f.table);
    const int n = 30000;
    emit_inserts(&f, 1, n);
    fx_flush(&f);
    const char *extra[] = {"sink.batch.size=500", "sink.batch.max.rows=1500", NULL};
    pid_t pid = sink_start(&f, extra);
    PGconn *admin = kf_test_pg_connect("KFLEET_PG_ADMIN_DSN");
    char sql[512], got[32], expect[32];
    snprintf(sql, sizeof(sql),
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
             "application_name = '%s'",
             f.group);
    for (int i = 0; i < 8; i++) {
        usleep(250000);
        kf_test_pg_exec(admin, sql);
    }
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\"", f.table);
    snprintf(expect, sizeof(expect), "%d", n);
    kf_test_pg_wait_for(c, sql, expect, WAIT_MS);
    snprintf(sql, sizeof(sql), "SELECT n FROM \"%s_updates\"", f.table);
    kf_test_pg_value(c, sql, got, sizeof(got));
    assert_string_equal(got, "0");
    snprintf(sql, sizeof(sql), "SELECT sum(qty) FROM \"%s\"", f.table);
    kf_test_pg_value(c, sql, got, sizeof(got));
    assert_int_equal(atoll(got), (long long)n * (n + 1) / 2);
    assert_int_equal(sink_stop(pid, SIGTERM), 0);
    PQfinish(admin);
    PQfinish(c);
    fx_free(&f);
}

/* A record that violates a constraint goes to the DLQ; the rest of its batch is applied. */
static void refused_record_goes_to_dlq(void **state)
{
    (void)state;
    fx f;
    fx_init(&f, "dlq", ORDERS, 3);
    PGconn *c = kf_test_pg_connect("KFLEET_PG_DSN");
    char sql[512];
    snprintf(sql, sizeof(sql),
             "CREATE TABLE \"%s\" (id bigint PRIMARY KEY, name text, qty bigint CHECK (qty >= 0))",
             f.table);
    kf_test_pg_exec(c, sql);
    for (int id = 1; id <= 50; id++) {
        char q[24];
        snprintf(q, sizeof(q), "%d", id == 17 ? -1 : id);
        const char *vals[2] = {"ok", q};
        emit(&f, KF_OP_CREATE, id, vals);
    }
    fx_flush(&f);
    pid_t pid = sink_start(&f, NULL);
    snprintf(sql, sizeof(sql), "SELECT count(*) || '|' || sum(qty) FROM \"%s\"", f.table);
    kf_test_pg_wait_for(c, sql, "49|1258", WAIT_MS);
    assert_int_equal(sink_stop(pid, SIGTERM), 0);
    /* the DLQ topic holds the record with the reason */
    kf_error err;
    char dgroup[160];
    snprintf(dgroup, sizeof(dgroup), "%s_dlq", f.group);
    const char *kv[] = {"bootstrap.servers", kf_test_env("KFLEET_BOOTSTRAP"),
                        "group.id",          dgroup,
                        "auto.offset.reset", "earliest"};
    char dlq[256];
    snprintf(dlq, sizeof(dlq), "kfleet.dlq.%s", f.topic);
    kf_consumer *cons = kf_consumer_new(kv, 3, NULL, &err);
    assert_non_null(cons);
    const char *topics[1] = {dlq};
    assert_int_equal(kf_consumer_subscribe(cons, topics, 1, &err), KF_OK);
    rd_kafka_message_t *msgs[4];
    int got = 0;
    for (int i = 0; i < 60 && got == 0; i++)
        got = kf_consumer_poll_batch(cons, msgs, 4, 1000, &err);
    assert_int_equal(got, 1);
    const void *v;
    size_t len;
    assert_true(kf_headers_get(msgs[0], "kfleet.error.reason", &v, &len));
    assert_memory_equal(v, "rejected_by_postgres", len);
    assert_true(kf_headers_get(msgs[0], "__connect.errors.exception.message", &v, &len));
    rd_kafka_message_destroy(msgs[0]);
    kf_consumer_destroy(cons);
    PQfinish(c);
    fx_free(&f);
}

/* Every evolution rule, applied in the transaction of the first batch of the new schema. */
static void schema_evolves(void **state)
{
    (void)state;
    static const col_spec v1[] = {
        {"id", "bigint", false, 1}, {"a", "int", true, 0}, {"b", "varchar(10)", true, 0},
        {"c", "bigint", true, 0},   {"g", "int", true, 0}, {"f", "text", false, 0},
        {"doc", "jsonb", true, 0},
    };
    static const col_spec v2[] = {
        {"id", "bigint", false, 1},      {"a", "bigint", true, 0}, {"b", "varchar(40)", true, 0},
        {"c", "int", true, 0},           {"g", "text", true, 0},   {"doc", "jsonb", true, 0},
        {"e", "decimal(8,2)", false, 0},
    };
    fx f;
    fx_init(&f, "evo", v1, 7);
    const char *r1[] = {"1", "short", "5000000000", "7", "keep", "{\"k\": [1, 2]}"};
    emit(&f, KF_OP_CREATE, 1, r1);
    fx_flush(&f);
    pid_t pid = sink_start(&f, NULL);
    PGconn *c = kf_test_pg_connect("KFLEET_PG_DSN");
    char sql[1024];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\"", f.table);
    kf_test_pg_wait_for(c, sql, "1", WAIT_MS);
    fx_schema(&f, v2, 7);
    const char *r2[] = {"9000000000", "a much longer value here", "3", "text now", "{}", "12.50"};
    emit(&f, KF_OP_CREATE, 2, r2);
    const char *r1b[] = {"2", "upd", "4", "x", NULL, "1.00"};
    emit(&f, KF_OP_UPDATE, 1, r1b);
    fx_flush(&f);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\" WHERE e IS NOT NULL", f.table);
    kf_test_pg_wait_for(c, sql, "2", WAIT_MS);
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(column_name || ':' || data_type || ':' || is_nullable, ',' "
             "ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = '%s'",
             f.table);
    kf_test_pg_wait_for(c, sql,
                        "id:bigint:NO,a:bigint:YES,b:character varying:YES,c:bigint:YES,g:text:YES,"
                        "f:text:YES,doc:jsonb:YES,e:numeric:YES",
                        WAIT_MS);
    snprintf(sql, sizeof(sql),
             "SELECT a || '|' || b || '|' || c || '|' || g || '|' || coalesce(f, 'null') || '|' "
             "|| e FROM \"%s\" WHERE id = 2",
             f.table);
    kf_test_pg_wait_for(c, sql, "9000000000|a much longer value here|3|text now|null|12.50",
                        WAIT_MS);
    snprintf(sql, sizeof(sql),
             "SELECT coalesce(f, 'null') || '|' || (doc IS NULL) FROM \"%s\" WHERE id = 1",
             f.table);
    kf_test_pg_wait_for(c, sql, "null|true", WAIT_MS);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM kfleet_meta.schema_history WHERE table_name = '%s'", f.table);
    kf_test_pg_wait_for(c, sql, "2", WAIT_MS);
    snprintf(sql, sizeof(sql),
             "SELECT change FROM kfleet_meta.schema_history WHERE table_name = '%s' ORDER BY id "
             "DESC",
             f.table);
    char change[1024];
    kf_test_pg_value(c, sql, change, sizeof(change));
    assert_non_null(strstr(change, "widen a int->bigint"));
    assert_non_null(strstr(change, "keep_wide c bigint->bigint"));
    assert_non_null(strstr(change, "to_text g int->text"));
    assert_non_null(strstr(change, "keep_dropped f"));
    assert_non_null(strstr(change, "add e"));
    assert_int_equal(sink_stop(pid, SIGTERM), 0);
    PQfinish(c);
    fx_free(&f);
}

/* Names crafted to break out of quoting are created literally. */
static void injection_is_harmless(void **state)
{
    (void)state;
    static const col_spec evil[] = {
        {"id", "bigint", false, 1},
        {"x\"; DROP TABLE kfleet_meta.sync_runs; --", "text", true, 0},
    };
    fx f;
    fx_init(&f, "inj", evil, 2);
    const char *vals[] = {"'); DROP TABLE kfleet_meta.error_log; --"};
    emit(&f, KF_OP_CREATE, 1, vals);
    fx_flush(&f);
    const char *extra[] = {"sink.table.name.format=\";DROP TABLE y;--${table}", NULL};
    pid_t pid = sink_start(&f, extra);
    PGconn *c = kf_test_pg_connect("KFLEET_PG_DSN");
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "SELECT \"x\"\"; DROP TABLE kfleet_meta.sync_runs; --\" FROM "
             "\"\"\";DROP TABLE y;--%s\"",
             f.table);
    kf_test_pg_wait_for(c, sql, "'); DROP TABLE kfleet_meta.error_log; --", WAIT_MS);
    kf_test_pg_wait_for(
        c,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'kfleet_meta' AND tablename IN "
        "('sync_markers', 'sync_runs', 'error_log', 'schema_history')",
        "4", WAIT_MS);
    assert_int_equal(sink_stop(pid, SIGTERM), 0);
    PQfinish(c);
    fx_free(&f);
}

/* Values that do not convert become null, each logged in kfleet_meta.error_log, and the
 * record is applied: those the sink recognizes itself (a malformed uuid, a date Postgres
 * cannot hold) and those only Postgres' input functions refuse (json, timestamptz text). */
static void unconvertible_values_become_null(void **state)
{
    (void)state;
    static const col_spec cols[] = {
        {"id", "bigint", false, 1}, {"u", "uuid", true, 0},         {"d", "date", true, 0},
        {"doc", "jsonb", true, 0},  {"ts", "timestamptz", true, 0}, {"n", "text", true, 0},
    };
    fx f;
    fx_init(&f, "conv_err", cols, 6);
    const char *good_u = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", *good_ts = "2024-01-02T03:04:05Z";
    const char *rows[][5] = {
        {good_u, "19000", "{\"a\": 1}", good_ts, "ok"},
        {"not-a-uuid", "19000", "{\"a\": 2}", good_ts, "ok"},
        {good_u, "2147000000", "{\"a\": 3}", good_ts, "ok"},
        {good_u, "19000", "{broken", good_ts, "ok"},
        {good_u, "19000", "{\"a\": 5}", "not a time at all", "ok"},
        {"{zz}", "19000", "[1, 2", good_ts, "ok"},
        {good_u, "19000", "{\"a\": 7}", good_ts, "ok"},
    };
    for (int i = 0; i < 7; i++)
        emit(&f, KF_OP_CREATE, i + 1, rows[i]);
    fx_flush(&f);
    pid_t pid = sink_start(&f, NULL);
    PGconn *c = kf_test_pg_connect("KFLEET_PG_DSN");
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(id || ':' || (u IS NULL)::int || (d IS NULL)::int || "
             "(doc IS NULL)::int || (ts IS NULL)::int || n, ',' ORDER BY id) FROM \"%s\"",
             f.table);
    kf_test_pg_wait_for(c, sql, "1:0000ok,2:1000ok,3:0100ok,4:0010ok,5:0001ok,6:1010ok,7:0000ok",
                        WAIT_MS);
    /* six values in five records; which partition a record went to does not matter */
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM "
             "kfleet_meta.error_log WHERE table_name = '%s'",
             f.table);
    kf_test_pg_wait_for(c, sql, "d,doc,doc,ts,u,u", WAIT_MS);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM kfleet_meta.error_log WHERE table_name = '%s' AND ("
             "(column_name = 'u' AND error LIKE '%%invalid input syntax for type uuid%%') OR "
             "(column_name = 'd' AND error LIKE '%%date out of range%%') OR "
             "(column_name = 'doc' AND error LIKE '%%json%%') OR "
             "(column_name = 'ts' AND error LIKE '%%timestamp%%'))",
             f.table);
    kf_test_pg_wait_for(c, sql, "6", WAIT_MS);
    /* nothing went to the dead-letter queue */
    assert_int_equal(sink_stop(pid, SIGTERM), 0);
    snprintf(sql, sizeof(sql),
             "SELECT dlq_records FROM kfleet_meta.sync_runs WHERE group_id = '%s' ORDER BY id "
             "DESC",
             f.group);
    kf_test_pg_wait_for(c, sql, "0", WAIT_MS);
    PQfinish(c);
    fx_free(&f);
}

/* Values that do not convert, in a table the sink writes by binary COPY (no timestamptz) and
 * in one it is told to write as text: the same rows and the same error_log entries, whether
 * the sink refused the value itself (a malformed uuid, a date out of range) or Postgres did
 * (broken json, a varchar too long), in which case the refused field is made null in the
 * binary row and the COPY repeated. */
static void conversions_alike_in_binary_and_text(void **state)
{
    (void)state;
    static const col_spec cols[] = {
        {"id", "bigint", false, 1}, {"u", "uuid", true, 0},       {"d", "date", true, 0},
        {"doc", "jsonb", true, 0},  {"v", "varchar(5)", true, 0}, {"n", "text", true, 0},
    };
    const char *good_u = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
    const char *rows[][5] = {
        {good_u, "19000", "{\"a\": 1}", "five5", "ok"},
        {"not-a-uuid", "19000", "{\"a\": 2}", "v", "ok"},
        {good_u, "2147000000", "{\"a\": 3}", "v", "ok"},
        {good_u, "19000", "{broken", "v", "ok"},
        {good_u, "19000", "{\"a\": 5}", "sixsix", "ok"},
        {"{zz}", "19000", "[1, 2", "v", "ok"},
        {good_u, "19000", "{\"a\": 7}", "v", "ok"},
    };
    const char *formats[] = {"sink.copy.format=binary", "sink.copy.format=text"};
    PGconn *c = kf_test_pg_connect("KFLEET_PG_DSN");
    for (int k = 0; k < 2; k++) {
        fx f;
        fx_init(&f, k == 0 ? "conv_bin" : "conv_txt", cols, 6);
        for (int i = 0; i < 7; i++)
            emit(&f, KF_OP_CREATE, i + 1, rows[i]);
        fx_flush(&f);
        const char *extra[] = {formats[k], NULL};
        pid_t pid = sink_start(&f, extra);
        char sql[1024];
        snprintf(sql, sizeof(sql),
                 "SELECT string_agg(id || ':' || (u IS NULL)::int || (d IS NULL)::int || "
                 "(doc IS NULL)::int || (v IS NULL)::int || n, ',' ORDER BY id) FROM \"%s\"",
                 f.table);
        kf_test_pg_wait_for(
            c, sql, "1:0000ok,2:1000ok,3:0100ok,4:0010ok,5:0001ok,6:1010ok,7:0000ok", WAIT_MS);
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM \"%s\" WHERE id = 1 AND u = '%s' AND d = '2022-01-08' AND "
                 "doc = '{\"a\": 1}' AND v = 'five5'",
                 f.table, good_u);
        kf_test_pg_wait_for(c, sql, "1", WAIT_MS);
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM kfleet_meta.error_log WHERE table_name = '%s' AND ("
                 "(column_name = 'u' AND error LIKE '%%invalid input syntax for type uuid%%') OR "
                 "(column_name = 'd' AND error LIKE '%%date out of range%%') OR "
                 "(column_name = 'doc' AND error LIKE '%%json%%') OR "
                 "(column_name = 'v' AND error LIKE '%%too long%%'))",
                 f.table);
        kf_test_pg_wait_for(c, sql, "6", WAIT_MS);
        assert_int_equal(sink_stop(pid, SIGTERM), 0);
        snprintf(sql, sizeof(sql),
                 "SELECT dlq_records FROM kfleet_meta.sync_runs WHERE group_id = '%s' ORDER BY "
                 "id DESC",
                 f.group);
        kf_test_pg_wait_for(c, sql, "0", WAIT_MS);
        fx_free(&f);
    }
    PQfinish(c);
}

/* Restarts the stack's Postgres (pg_ctl restart -m fast, as the data directory's owner) and
 * keeps the stack's pid file pointing at the new server. */
static void restart_postgres(void)
{
    PGconn *admin = kf_test_pg_connect("KFLEET_PG_ADMIN_DSN");
    char dir[1024], path[1200], line[64], exe[1024];
    kf_test_pg_value(admin, "SHOW data_directory", dir, sizeof(dir));
    PQfinish(admin);
    assert_true(dir[0] != '\0');
    snprintf(path, sizeof(path), "%s/postmaster.pid", dir);
    FILE *pf = fopen(path, "r");
    assert_non_null(pf);
    assert_non_null(fgets(line, sizeof(line), pf));
    fclose(pf);
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/%ld/exe", atol(line));
    ssize_t n = readlink(proc, exe, sizeof(exe) - 1);
    if (n <= 0)
        fail_msg("could not find the server's binary from %s", proc);
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    char as_owner[128] = "";
    if (geteuid() == 0 && st.st_uid != 0) {
        struct passwd *pw = getpwuid(st.st_uid);
        assert_non_null(pw);
        snprintf(as_owner, sizeof(as_owner), "runuser -u %s -- ", pw->pw_name);
    }
    const char *state_dir = getenv("KFLEET_STATE");
    char log[1024] = "/dev/null";
    if (state_dir && *state_dir)
        snprintf(log, sizeof(log), "%s/log/postgres.log", state_dir);
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "cd / && %s'%s/pg_ctl' restart -D '%s' -m fast -w -t 60 -s >>'%s' 2>&1", as_owner, exe,
             dir, log);
    if (system(cmd) != 0)
        fail_msg("could not restart Postgres: %s", cmd);
    pf = fopen(path, "r");
    assert_non_null(pf);
    assert_non_null(fgets(line, sizeof(line), pf));
    fclose(pf);
    if (state_dir && *state_dir) {
        snprintf(path, sizeof(path), "%s/run/postgres.pid", state_dir);
        if (access(path, F_OK) == 0) {
            FILE *sp = fopen(path, "w");
            assert_non_null(sp);
            fprintf(sp, "%ld\n", atol(line));
            fclose(sp);
        }
    }
}

/* A real server restart (fast shutdown) in the middle of the stream loses nothing. */
static void postgres_restart_loses_nothing(void **state)
{
    (void)state;
    fx f;
    fx_init(&f, "restart", ORDERS, 3);
    static model m;
    memset(&m, 0, sizeof(m));
    produce_mix(&f, &m, 300, 8000, 21);
    fx_flush(&f);
    const char *extra[] = {"sink.batch.size=100", "sink.batch.max.rows=100",
                           "sink.retry.backoff.max=1s", NULL};
    pid_t pid = sink_start(&f, extra);
    PGconn *c = kf_test_pg_connect("KFLEET_PG_DSN");
    char sql[512], got[64];
    snprintf(sql, sizeof(sql),
             "SELECT coalesce(sum(next_offset), 0) FROM kfleet_meta.sync_markers WHERE group_id "
             "= '%s'",
             f.group);
    for (int waited = 0; waited < WAIT_MS; waited += 20) {
        kf_test_pg_value(c, sql, got, sizeof(got));
        if (atol(got) > 0)
            break;
        usleep(20000);
    }
    PQfinish(c);
    restart_postgres();
    c = kf_test_pg_connect("KFLEET_PG_DSN");
    kf_test_pg_value(c, sql, got, sizeof(got));
    fprintf(stderr, "restarted Postgres after %s of 9600 messages\n", got);
    produce_mix(&f, &m, 300, 1000, 22);
    fx_flush(&f);
    char expect[64];
    model_digest(&m, expect, sizeof(expect));
    digest_sql(f.table, "", sql, sizeof(sql));
    kf_test_pg_wait_for(c, sql, expect, WAIT_MS);
    check_names(c, &f, &m, "");
    assert_int_equal(sink_stop(pid, SIGTERM), 0);
    PQfinish(c);
    fx_free(&f);
}

/* Two workers in one group: the second joins mid-stream, the first leaves mid-stream; every
 * change is applied exactly once (the trigger counts updates) and both did part of it. */
static void two_workers_share_a_group(void **state)
{
    (void)state;
    fx f;
    fx_init(&f, "pair", ORDERS, 3);
    PGconn *c = kf_test_pg_connect("KFLEET_PG_DSN");
    create_counted_table(c, f.table);
    const int n = 12000, more = 2000;
    emit_inserts(&f, 1, n);
    fx_flush(&f);
    const char *extra[] = {"sink.batch.size=50", "sink.batch.max.rows=50", NULL};
    char sql[512], got[64] = "0";
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\"", f.table);
    pid_t a = sink_start(&f, extra);
    for (int waited = 0; waited < WAIT_MS && atol(got) < n / 4; waited += 10) {
        kf_test_pg_value(c, sql, got, sizeof(got));
        usleep(10000);
    }
    pid_t b = sink_start(&f, extra);
    for (int waited = 0; waited < WAIT_MS && atol(got) < n / 2; waited += 10) {
        kf_test_pg_value(c, sql, got, sizeof(got));
        usleep(10000);
    }
    assert_int_equal(sink_stop(a, SIGTERM), 0);
    kf_test_pg_value(c, sql, got, sizeof(got));
    fprintf(stderr, "first worker left after %s of %d rows\n", got, n);
    emit_inserts(&f, n + 1, n + more);
    fx_flush(&f);
    char expect[64];
    snprintf(expect, sizeof(expect), "%d", n + more);
    kf_test_pg_wait_for(c, sql, expect, WAIT_MS);
    snprintf(sql, sizeof(sql), "SELECT n FROM \"%s_updates\"", f.table);
    kf_test_pg_value(c, sql, got, sizeof(got));
    assert_string_equal(got, "0");
    snprintf(sql, sizeof(sql), "SELECT sum(qty) FROM \"%s\"", f.table);
    kf_test_pg_value(c, sql, got, sizeof(got));
    assert_int_equal(atoll(got), (long long)(n + more) * (n + more + 1) / 2);
    assert_int_equal(sink_stop(b, SIGTERM), 0);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) || '|' || sum(rows_upserted) FROM kfleet_meta.sync_runs WHERE "
             "group_id = '%s' AND status = 'stopped' AND rows_upserted > 0",
             f.group);
    snprintf(expect, sizeof(expect), "2|%d", n + more);
    kf_test_pg_wait_for(c, sql, expect, WAIT_MS);
    PQfinish(c);
    fx_free(&f);
}

/* ---- a topic written the way Debezium's Postgres connector writes it ---- */

static const char DBZ_KEY[] =
    "{\"type\":\"record\",\"name\":\"Key\",\"namespace\":\"dbserver1.inventory.customers\","
    "\"fields\":[{\"name\":\"id\",\"type\":\"int\"}],"
    "\"connect.name\":\"dbserver1.inventory.customers.Key\"}";

static const char DBZ_ENVELOPE[] =
    "{\"type\":\"record\",\"name\":\"Envelope\",\"namespace\":\"dbserver1.inventory.customers\","
    "\"fields\":["
    "{\"name\":\"before\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"Value\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"int\"},"
    "{\"name\":\"first_name\",\"type\":\"string\"},"
    "{\"name\":\"last_name\",\"type\":\"string\"},"
    "{\"name\":\"email\",\"type\":\"string\"},"
    "{\"name\":\"balance\",\"type\":[\"null\",{\"type\":\"bytes\",\"scale\":2,\"precision\":10,"
    "\"connect.version\":1,\"connect.parameters\":{\"scale\":\"2\","
    "\"connect.decimal.precision\":\"10\"},\"connect.name\":"
    "\"org.apache.kafka.connect.data.Decimal\",\"logicalType\":\"decimal\"}],\"default\":null},"
    "{\"name\":\"created_at\",\"type\":[\"null\",{\"type\":\"long\",\"connect.version\":1,"
    "\"connect.name\":\"io.debezium.time.MicroTimestamp\"}],\"default\":null},"
    "{\"name\":\"active\",\"type\":[\"null\",\"boolean\"],\"default\":null}],"
    "\"connect.name\":\"dbserver1.inventory.customers.Value\"}],\"default\":null},"
    "{\"name\":\"after\",\"type\":[\"null\",\"Value\"],\"default\":null},"
    "{\"name\":\"source\",\"type\":{\"type\":\"record\",\"name\":\"Source\",\"namespace\":"
    "\"io.debezium.connector.postgresql\",\"fields\":["
    "{\"name\":\"version\",\"type\":\"string\"},"
    "{\"name\":\"connector\",\"type\":\"string\"},"
    "{\"name\":\"name\",\"type\":\"string\"},"
    "{\"name\":\"ts_ms\",\"type\":\"long\"},"
    "{\"name\":\"snapshot\",\"type\":[{\"type\":\"string\",\"connect.version\":1,"
    "\"connect.parameters\":{\"allowed\":\"true,first,first_in_data_collection,"
    "last_in_data_collection,last,false,incremental\"},\"connect.default\":\"false\","
    "\"connect.name\":\"io.debezium.data.Enum\"},\"null\"],\"default\":\"false\"},"
    "{\"name\":\"db\",\"type\":\"string\"},"
    "{\"name\":\"sequence\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"ts_us\",\"type\":[\"null\",\"long\"],\"default\":null},"
    "{\"name\":\"ts_ns\",\"type\":[\"null\",\"long\"],\"default\":null},"
    "{\"name\":\"schema\",\"type\":\"string\"},"
    "{\"name\":\"table\",\"type\":\"string\"},"
    "{\"name\":\"txId\",\"type\":[\"null\",\"long\"],\"default\":null},"
    "{\"name\":\"lsn\",\"type\":[\"null\",\"long\"],\"default\":null},"
    "{\"name\":\"xmin\",\"type\":[\"null\",\"long\"],\"default\":null}],"
    "\"connect.name\":\"io.debezium.connector.postgresql.Source\"}},"
    "{\"name\":\"transaction\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"block\","
    "\"namespace\":\"event\",\"fields\":[{\"name\":\"id\",\"type\":\"string\"},"
    "{\"name\":\"total_order\",\"type\":\"long\"},"
    "{\"name\":\"data_collection_order\",\"type\":\"long\"}],\"connect.version\":1,"
    "\"connect.name\":\"event.block\"}],\"default\":null},"
    "{\"name\":\"op\",\"type\":\"string\"},"
    "{\"name\":\"ts_ms\",\"type\":[\"null\",\"long\"],\"default\":null},"
    "{\"name\":\"ts_us\",\"type\":[\"null\",\"long\"],\"default\":null},"
    "{\"name\":\"ts_ns\",\"type\":[\"null\",\"long\"],\"default\":null}],"
    "\"connect.version\":2,\"connect.name\":\"dbserver1.inventory.customers.Envelope\"}";

#define DBZ_NULL LONG_MIN

typedef struct dbz_row {
    int id;
    const char *first, *last, *email;
    long balance_cents; /* DBZ_NULL: null */
    int64_t created_us;
    bool active;
} dbz_row;

static avro_value_t avro_field(avro_value_t *rec, const char *name)
{
    avro_value_t f = {NULL, NULL};
    if (avro_value_get_by_name(rec, name, &f, NULL) != 0)
        fail_msg("no field %s: %s", name, avro_strerror());
    return f;
}

/* Sets a ["null", T] union field to its T branch and returns it. */
static avro_value_t avro_some(avro_value_t *rec, const char *name)
{
    avro_value_t f = avro_field(rec, name), b = {NULL, NULL};
    assert_int_equal(avro_value_set_branch(&f, 1, &b), 0);
    return b;
}

static void avro_none(avro_value_t *rec, const char *name)
{
    avro_value_t f = avro_field(rec, name), b = {NULL, NULL};
    assert_int_equal(avro_value_set_branch(&f, 0, &b), 0);
    assert_int_equal(avro_value_set_null(&b), 0);
}

static void avro_str(avro_value_t *rec, const char *name, const char *v)
{
    avro_value_t f = avro_field(rec, name);
    assert_int_equal(avro_value_set_string(&f, v), 0);
}

static void avro_long(avro_value_t *rec, const char *name, int64_t v)
{
    avro_value_t f = avro_field(rec, name);
    assert_int_equal(avro_value_set_long(&f, v), 0);
}

static void dbz_row_set(avro_value_t *env, const char *side, const dbz_row *r)
{
    if (!r) {
        avro_none(env, side);
        return;
    }
    avro_value_t v = avro_some(env, side), f = {NULL, NULL};
    f = avro_field(&v, "id");
    assert_int_equal(avro_value_set_int(&f, r->id), 0);
    avro_str(&v, "first_name", r->first);
    avro_str(&v, "last_name", r->last);
    avro_str(&v, "email", r->email);
    if (r->balance_cents == DBZ_NULL) {
        avro_none(&v, "balance");
    } else {
        /* big-endian two's complement of the unscaled value */
        uint8_t be[8];
        for (int i = 0; i < 8; i++)
            be[i] = (uint8_t)((uint64_t)r->balance_cents >> (56 - 8 * i));
        size_t skip = 0;
        while (skip < 7 && be[skip] == 0 && !(be[skip + 1] & 0x80))
            skip++;
        f = avro_some(&v, "balance");
        assert_int_equal(avro_value_set_bytes(&f, be + skip, 8 - skip), 0);
    }
    f = avro_some(&v, "created_at");
    assert_int_equal(avro_value_set_long(&f, r->created_us), 0);
    f = avro_some(&v, "active");
    assert_int_equal(avro_value_set_boolean(&f, r->active), 0);
}

/* Writes value in the Confluent wire format (magic 0, schema id) into out. */
static void wire_encode(avro_value_t *value, int32_t id, kf_buf *out)
{
    size_t size;
    assert_int_equal(avro_value_sizeof(value, &size), 0);
    out->len = 0;
    assert_int_equal(kf_buf_reserve(out, size + 5), KF_OK);
    out->data[0] = 0;
    out->data[1] = (uint8_t)((uint32_t)id >> 24);
    out->data[2] = (uint8_t)((uint32_t)id >> 16);
    out->data[3] = (uint8_t)((uint32_t)id >> 8);
    out->data[4] = (uint8_t)id;
    avro_writer_t w = avro_writer_memory((char *)out->data + 5, (int64_t)size);
    assert_int_equal(avro_value_write(w, value), 0);
    avro_writer_free(w);
    out->len = size + 5;
}

typedef struct dbz {
    avro_schema_t ks, vs;
    avro_value_iface_t *ki, *vi;
    avro_value_t key, env;
    int32_t kid, vid;
    int64_t lsn;
} dbz;

/* One Debezium change event (and, for a delete, its tombstone) for id. */
static void dbz_emit(fx *f, dbz *d, const char *op, int id, const dbz_row *before,
                     const dbz_row *after, const char *snapshot, int64_t txid)
{
    avro_value_reset(&d->key);
    avro_value_t k = avro_field(&d->key, "id");
    assert_int_equal(avro_value_set_int(&k, id), 0);
    wire_encode(&d->key, d->kid, &f->key);

    avro_value_reset(&d->env);
    dbz_row_set(&d->env, "before", before);
    dbz_row_set(&d->env, "after", after);
    int64_t ts_ms = 1709528767000 + d->lsn;
    avro_value_t src = avro_field(&d->env, "source"), b = {NULL, NULL};
    avro_str(&src, "version", "2.7.3.Final");
    avro_str(&src, "connector", "postgresql");
    avro_str(&src, "name", "dbserver1");
    avro_long(&src, "ts_ms", ts_ms);
    avro_value_t snap = avro_field(&src, "snapshot");
    assert_int_equal(avro_value_set_branch(&snap, 0, &b), 0);
    assert_int_equal(avro_value_set_string(&b, snapshot), 0);
    avro_str(&src, "db", "postgres");
    char seq[64];
    snprintf(seq, sizeof(seq), "[\"%" PRId64 "\",\"%" PRId64 "\"]", 33000000 + d->lsn - 8,
             33000000 + d->lsn);
    b = avro_some(&src, "sequence");
    assert_int_equal(avro_value_set_string(&b, seq), 0);
    b = avro_some(&src, "ts_us");
    assert_int_equal(avro_value_set_long(&b, ts_ms * 1000), 0);
    b = avro_some(&src, "ts_ns");
    assert_int_equal(avro_value_set_long(&b, ts_ms * 1000000), 0);
    avro_str(&src, "schema", "inventory");
    avro_str(&src, "table", "customers");
    b = avro_some(&src, "txId");
    assert_int_equal(avro_value_set_long(&b, txid), 0);
    b = avro_some(&src, "lsn");
    assert_int_equal(avro_value_set_long(&b, 33000000 + d->lsn), 0);
    avro_none(&src, "xmin");
    if (strcmp(op, "r") == 0) {
        avro_none(&d->env, "transaction");
    } else {
        avro_value_t tx = avro_some(&d->env, "transaction");
        char txt[64];
        snprintf(txt, sizeof(txt), "%" PRId64 ":%" PRId64, txid, 33000000 + d->lsn);
        avro_str(&tx, "id", txt);
        avro_long(&tx, "total_order", 1);
        avro_long(&tx, "data_collection_order", 1);
    }
    avro_str(&d->env, "op", op);
    b = avro_some(&d->env, "ts_ms");
    assert_int_equal(avro_value_set_long(&b, ts_ms + 5), 0);
    b = avro_some(&d->env, "ts_us");
    assert_int_equal(avro_value_set_long(&b, (ts_ms + 5) * 1000), 0);
    b = avro_some(&d->env, "ts_ns");
    assert_int_equal(avro_value_set_long(&b, (ts_ms + 5) * 1000000), 0);
    wire_encode(&d->env, d->vid, &f->val);
    d->lsn += 64;
    send_msg(f, true);
    if (strcmp(op, "d") == 0)
        send_msg(f, false);
}

/* Creates the ORDERS table with a statement trigger recording the id of every transaction
 * that writes to it in "<table>_tx": the sink's commits, counted from the outside. */
static void create_tx_counted_table(PGconn *c, const char *table)
{
    char sql[2048]; /* six names of up to 119 bytes and the statements around them */
    snprintf(sql, sizeof(sql),
             "CREATE TABLE \"%s\" (id bigint PRIMARY KEY, name text, qty bigint);"
             "CREATE TABLE \"%s_tx\" (xid bigint PRIMARY KEY);"
             "CREATE FUNCTION \"%s_txf\"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
             "INSERT INTO \"%s_tx\" VALUES (txid_current()) ON CONFLICT DO NOTHING; "
             "RETURN NULL; END $$;"
             "CREATE TRIGGER tx AFTER INSERT OR UPDATE OR DELETE ON \"%s\" FOR EACH STATEMENT "
             "EXECUTE FUNCTION \"%s_txf\"()",
             table, table, table, table, table, table);
    kf_test_pg_exec(c, sql);
}

static long tx_count(PGconn *c, const char *table)
{
    char sql[256], got[32];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s_tx\"", table);
    kf_test_pg_value(c, sql, got, sizeof(got));
    return atol(got);
}

/* A backlog waiting when the worker starts is applied in a few large transactions (not one
 * per sink.batch.size records); once it is caught up, each record of a trickle is applied on
 * its own, well within the flush interval. */
static void backlog_in_large_transactions(void **state)
{
    (void)state;
    fx f;
    fx_init(&f, "backlog", ORDERS, 3);
    PGconn *c = kf_test_pg_connect("KFLEET_PG_DSN");
    create_tx_counted_table(c, f.table);
    const int n = 20000, batch = 500, trickle = 5;
    emit_inserts(&f, 1, n);
    fx_flush(&f);
    const char *extra[] = {"sink.batch.size=500", "sink.flush.interval=1s", NULL};
    pid_t pid = sink_start(&f, extra);
    char sql[512], expect[32], got[32];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\"", f.table);
    snprintf(expect, sizeof(expect), "%d", n);
    kf_test_pg_wait_for(c, sql, expect, WAIT_MS);
    long backlog_tx = tx_count(c, f.table);
    fprintf(stderr, "backlog of %d records applied in %ld transactions\n", n, backlog_tx);
    /* one per batch.size would be 40; growing batches need a handful */
    assert_true(backlog_tx >= 1 && backlog_tx <= n / batch / 4);

    for (int i = 1; i <= trickle; i++) {
        emit_inserts(&f, n + i, n + i);
        fx_flush(&f);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        snprintf(expect, sizeof(expect), "%d", n + i);
        long waited_ms = 0;
        for (;;) {
            kf_test_pg_value(c, sql, got, sizeof(got));
            clock_gettime(CLOCK_MONOTONIC, &t1);
            waited_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
            if (strcmp(got, expect) == 0 || waited_ms > 5000)
                break;
            usleep(10000);
        }
        fprintf(stderr, "trickle record %d applied after %ld ms\n", i, waited_ms);
        assert_string_equal(got, expect);
        /* the flush interval (1 s) plus delivery through Kafka */
        assert_true(waited_ms < 1500);
        usleep(300000);
    }
    /* caught up: the batches shrank back to what was waiting, one record each */
    assert_int_equal(tx_count(c, f.table), backlog_tx + trickle);
    assert_int_equal(sink_stop(pid, SIGTERM), 0);
    snprintf(sql, sizeof(sql),
             "SELECT batches FROM kfleet_meta.sync_runs WHERE group_id = '%s' ORDER BY id DESC",
             f.group);
    kf_test_pg_value(c, sql, got, sizeof(got));
    assert_int_equal(atol(got), backlog_tx + trickle);
    PQfinish(c);
    fx_free(&f);
}

/* Appends name to out as a double-quoted identifier (embedded quotes doubled). */
static void quote_ident(char *out, size_t cap, const char *name)
{
    size_t n = 0;
    out[n++] = '"';
    for (const char *p = name; *p && n + 3 < cap; p++) {
        if (*p == '"')
            out[n++] = '"';
        out[n++] = *p;
    }
    assert_true(n + 2 <= cap);
    out[n++] = '"';
    out[n] = '\0';
}

/* sink.target.schema names a schema that does not exist (with a quote in its name): the worker
 * creates it when it starts. The first batch then fails for a reason that is not the data's
 * (a trigger refusing with SQLSTATE 55000 while a gate is closed), in the transaction that
 * also created its staging table: once the gate opens the batch is applied, so the retries
 * did not go on against a staging table that died with the failed transaction. */
static void missing_schema_and_failed_batches(void **state)
{
    (void)state;
    fx f;
    fx_init(&f, "schema", ORDERS, 3);
    char schema[160], qschema[340], qtable[260], set_schema[200], uniq[120];
    kf_test_unique_name(uniq, sizeof(uniq), "tgt");
    snprintf(schema, sizeof(schema), "Tgt \"%s\"", uniq);
    quote_ident(qschema, sizeof(qschema), schema);
    quote_ident(qtable, sizeof(qtable), f.table);
    snprintf(set_schema, sizeof(set_schema), "sink.target.schema=%s", schema);
    PGconn *c = kf_test_pg_connect("KFLEET_PG_DSN");
    char sql[4096], got[64]; /* seven quoted schemas, two quoted tables and the statements */
    const char *params[1] = {schema};

    const char *extra[] = {set_schema, "sink.retry.backoff.max=300ms", NULL};
    pid_t pid = sink_start(&f, extra);
    for (int waited = 0;; waited += 100) {
        PGresult *r = PQexecParams(c, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", 1,
                                   NULL, params, NULL, NULL, 0);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        bool made = strcmp(PQgetvalue(r, 0, 0), "1") == 0;
        PQclear(r);
        if (made)
            break;
        if (waited > WAIT_MS)
            fail_msg("the worker did not create schema %s", qschema);
        usleep(100000);
    }

    snprintf(sql, sizeof(sql),
             "CREATE TABLE %s.%s (id bigint PRIMARY KEY, name text, qty bigint);"
             "CREATE TABLE %s.gate (closed boolean NOT NULL);"
             "INSERT INTO %s.gate VALUES (true);"
             "CREATE FUNCTION %s.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
             "IF (SELECT closed FROM %s.gate) THEN RAISE EXCEPTION 'gate closed' USING "
             "ERRCODE = '55000'; END IF; IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; "
             "RETURN NEW; END $$;"
             "CREATE TRIGGER refuse BEFORE INSERT OR UPDATE OR DELETE ON %s.%s FOR EACH ROW "
             "EXECUTE FUNCTION %s.refuse()",
             qschema, qtable, qschema, qschema, qschema, qschema, qschema, qtable, qschema);
    kf_test_pg_exec(c, sql);
    /* with a delete the batch goes the staging way */
    emit_inserts(&f, 1, 10);
    const char *vals[2] = {"row", "3"};
    emit(&f, KF_OP_DELETE, 3, vals);
    fx_flush(&f);
    usleep(2500000); /* a few refused attempts */
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.%s", qschema, qtable);
    kf_test_pg_value(c, sql, got, sizeof(got));
    assert_string_equal(got, "0");
    snprintf(sql, sizeof(sql), "UPDATE %s.gate SET closed = false", qschema);
    kf_test_pg_exec(c, sql);
    snprintf(sql, sizeof(sql), "SELECT count(*) || '|' || sum(qty) FROM %s.%s", qschema, qtable);
    kf_test_pg_wait_for(c, sql, "9|52", WAIT_MS);
    assert_int_equal(sink_stop(pid, SIGTERM), 0);
    snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", qschema);
    kf_test_pg_exec(c, sql);
    PQfinish(c);
    fx_free(&f);
}

/* Debezium's topic for inventory.customers (its namespaces, Source record, transaction block,
 * Decimal bytes and MicroTimestamp), registered in the registry, lands in Postgres. The topic
 * keeps the name Debezium gives it; every run writes the same events and loads them into a
 * schema of its own, so earlier runs' events replayed first change nothing. */
static void debezium_topic_is_applied(void **state)
{
    (void)state;
    fx f;
    memset(&f, 0, sizeof(f));
    snprintf(f.topic, sizeof(f.topic), "dbserver1.inventory.customers");
    char target[120];
    kf_test_unique_name(target, sizeof(target), "dbz");
    snprintf(f.group, sizeof(f.group), "g_%s", target);
    kf_error err;
    kf_registry_config rc = {.url = kf_test_env("KFLEET_REGISTRY_URL"), .timeout_ms = 10000};
    f.reg = kf_registry_new(&rc, &err);
    assert_non_null(f.reg);
    f.serde = kf_serde_new(f.reg, &err);
    assert_non_null(f.serde);
    const char *kv[] = {"bootstrap.servers", kf_test_env("KFLEET_BOOTSTRAP")};
    kf_admin *a = kf_admin_new(kv, 1, &err);
    assert_non_null(a);
    kf_topic_spec spec = {.name = f.topic, .partitions = 1, .replication_factor = 1};
    if (kf_admin_create_topics(a, &spec, 1, true, 30000, &err) != KF_OK)
        fail_msg("%s", err.message);
    kf_admin_destroy(a);
    f.prod = kf_producer_new(kv, 1, NULL, &err);
    assert_non_null(f.prod);

    dbz d;
    memset(&d, 0, sizeof(d));
    if (kf_serde_register(f.serde, "dbserver1.inventory.customers-key", DBZ_KEY, &d.kid, &err) !=
            KF_OK ||
        kf_serde_register(f.serde, "dbserver1.inventory.customers-value", DBZ_ENVELOPE, &d.vid,
                          &err) != KF_OK)
        fail_msg("%s", err.message);
    assert_int_equal(avro_schema_from_json_length(DBZ_KEY, sizeof(DBZ_KEY) - 1, &d.ks), 0);
    assert_int_equal(avro_schema_from_json_length(DBZ_ENVELOPE, sizeof(DBZ_ENVELOPE) - 1, &d.vs),
                     0);
    d.ki = avro_generic_class_from_schema(d.ks);
    d.vi = avro_generic_class_from_schema(d.vs);
    assert_non_null(d.ki);
    assert_non_null(d.vi);
    assert_int_equal(avro_generic_value_new(d.ki, &d.key), 0);
    assert_int_equal(avro_generic_value_new(d.vi, &d.env), 0);

    const int64_t t0 = INT64_C(1709528767123456);
    dbz_row rows[] = {
        {1001, "Sally", "Thomas", "sally.thomas@acme.com", 12345, t0, true},
        {1002, "George", "Bailey", "gbailey@foobar.com", 0, t0 + 1, true},
        {1003, "Edward", "Walker", "ed@walker.com", DBZ_NULL, t0 + 2, false},
        {1004, "Anne", "Kretchmar", "annek@noanswer.org", 9999999999, t0 + 3, true},
    };
    dbz_emit(&f, &d, "r", 1001, NULL, &rows[0], "first", 0);
    dbz_emit(&f, &d, "r", 1002, NULL, &rows[1], "true", 0);
    dbz_emit(&f, &d, "r", 1003, NULL, &rows[2], "true", 0);
    dbz_emit(&f, &d, "r", 1004, NULL, &rows[3], "last", 0);
    dbz_row george = rows[1];
    george.email = "george.bailey@example.com";
    george.balance_cents = -250; /* negative balances exist: -2.50 */
    dbz_emit(&f, &d, "u", 1002, &rows[1], &george, "false", 771);
    dbz_emit(&f, &d, "d", 1003, &rows[2], NULL, "false", 772);
    dbz_row ann = {1005, "Ann", "O'Neil", "ann@o-neil.ie", 100, t0 + 5, false};
    dbz_emit(&f, &d, "c", 1005, NULL, &ann, "false", 773);
    fx_flush(&f);

    PGconn *c = kf_test_pg_connect("KFLEET_PG_DSN");
    char sql[1024];
    snprintf(sql, sizeof(sql), "CREATE SCHEMA \"%s\"", target);
    kf_test_pg_exec(c, sql);
    char set_schema[200];
    snprintf(set_schema, sizeof(set_schema), "sink.target.schema=%s", target);
    const char *extra[] = {set_schema, NULL};
    pid_t pid = sink_start(&f, extra);
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(id || '|' || first_name || '|' || last_name || '|' || email || "
             "'|' || coalesce(balance::text, 'null') || '|' || created_at || '|' || active, ',' "
             "ORDER BY id) FROM \"%s\".customers",
             target);
    kf_test_pg_wait_for(
        c, sql,
        "1001|Sally|Thomas|sally.thomas@acme.com|123.45|2024-03-04 05:06:07.123456|true,"
        "1002|George|Bailey|george.bailey@example.com|-2.50|2024-03-04 05:06:07.123457|true,"
        "1004|Anne|Kretchmar|annek@noanswer.org|99999999.99|2024-03-04 05:06:07.123459|true,"
        "1005|Ann|O'Neil|ann@o-neil.ie|1.00|2024-03-04 05:06:07.123461|false",
        WAIT_MS);
    /* the table was created from the Debezium schema: its types and key */
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(column_name || ':' || data_type, ',' ORDER BY ordinal_position) "
             "FROM information_schema.columns WHERE table_schema = '%s' AND table_name = "
             "'customers'",
             target);
    kf_test_pg_wait_for(c, sql,
                        "id:integer,first_name:text,last_name:text,email:text,balance:numeric,"
                        "created_at:timestamp without time zone,active:boolean",
                        WAIT_MS);
    snprintf(sql, sizeof(sql),
             "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = "
             "'\"%s\".customers'::regclass AND contype = 'p'",
             target);
    kf_test_pg_wait_for(c, sql, "PRIMARY KEY (id)", WAIT_MS);
    assert_int_equal(sink_stop(pid, SIGTERM), 0);
    snprintf(sql, sizeof(sql), "SET client_min_messages = warning; DROP SCHEMA \"%s\" CASCADE",
             target);
    kf_test_pg_exec(c, sql);
    PQfinish(c);
    avro_value_decref(&d.key);
    avro_value_decref(&d.env);
    avro_value_iface_decref(d.ki);
    avro_value_iface_decref(d.vi);
    avro_schema_decref(d.ks);
    avro_schema_decref(d.vs);
    fx_free(&f);
}

/* The teardown of every test: kills the workers a failure left running and deletes the
 * test's topics. (The Debezium topic keeps its fixed name from run to run.) */
static int kill_leftover(void **state)
{
    (void)state;
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (running_children[i] > 0)
            sink_stop(running_children[i], SIGKILL);
    const char *names[MAX_CREATED];
    size_t n = 0;
    for (int i = 0; i < MAX_CREATED; i++)
        if (created_topics[i][0])
            names[n++] = created_topics[i];
    kf_error err;
    const char *kv[] = {"bootstrap.servers", getenv("KFLEET_BOOTSTRAP")};
    kf_admin *a = n && kv[1] ? kf_admin_new(kv, 1, &err) : NULL;
    if (a && kf_admin_delete_topics(a, names, n, true, 30000, &err) != KF_OK)
        fprintf(stderr, "could not delete the test's topics: %s\n", err.message);
    kf_admin_destroy(a);
    memset(created_topics, 0, sizeof(created_topics));
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(changes_converge, kill_leftover),
        cmocka_unit_test_teardown(soft_delete_marks_rows, kill_leftover),
        cmocka_unit_test_teardown(refused_record_goes_to_dlq, kill_leftover),
        cmocka_unit_test_teardown(schema_evolves, kill_leftover),
        cmocka_unit_test_teardown(injection_is_harmless, kill_leftover),
        cmocka_unit_test_teardown(postgres_disconnects_lose_nothing, kill_leftover),
        cmocka_unit_test_teardown(kill9_is_exactly_once, kill_leftover),
        cmocka_unit_test_teardown(kill9_large_batches_is_exactly_once, kill_leftover),
        cmocka_unit_test_teardown(insert_fast_path_falls_back, kill_leftover),
        cmocka_unit_test_teardown(unconvertible_values_become_null, kill_leftover),
        cmocka_unit_test_teardown(conversions_alike_in_binary_and_text, kill_leftover),
        cmocka_unit_test_teardown(postgres_restart_loses_nothing, kill_leftover),
        cmocka_unit_test_teardown(two_workers_share_a_group, kill_leftover),
        cmocka_unit_test_teardown(debezium_topic_is_applied, kill_leftover),
        cmocka_unit_test_teardown(backlog_in_large_transactions, kill_leftover),
        cmocka_unit_test_teardown(terminations_during_batches_in_flight, kill_leftover),
        cmocka_unit_test_teardown(missing_schema_and_failed_batches, kill_leftover),
    };
    /* KFLEET_TEST_FILTER=name runs one test while developing */
    if (getenv("KFLEET_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KFLEET_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
