/* Integration test of kfleet-sink-pg's audit events against the real Kafka, registry and
 * Postgres: a table created and evolved twice (columns widened, added, kept wide) through the
 * sink leaves exactly a start event, one schema_change event per applied change and a stop
 * event on <prefix>.audit, decoded through the registry and checked field by field against the
 * schema versions and kfleet_meta.schema_history. The transaction of the first evolution runs
 * its DDL, then waits on a lock and is rolled back (the sink's connection terminated): nothing
 * is announced for it, and its retry is announced once. A run with audit.enabled=false, evolving
 * a second copy of the table, writes no event at all. */
#include "kf_test_env.h"
#include "kf_test_pg.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "kfleet/audit.h"
#include "kfleet/event.h"
#include "kfleet/kafka.h"
#include "kfleet/registry.h"
#include "kfleet/serde.h"
#include "kfleet/table.h"
#include "validate/vt.h"

#define WAIT_MS 90000

typedef struct col_spec {
    const char *name;
    const char *type;
    bool nullable;
    int pk;
} col_spec;

typedef struct fx {
    char name[80];        /* unique: the topic prefix, the table and the topic's last part */
    char topic[200];      /* <name>.shop.<name> */
    char audit[120];      /* <name>.audit, the default audit topic of topic.prefix=<name> */
    char group[100];      /* consumer group (and application_name) of the audited run */
    char off_schema[100]; /* target schema of the run without audit */
    kf_registry *reg;
    kf_serde *serde;
    kf_producer *prod;
    kf_table *t;
    kf_event_writer *w;
    int32_t vid[3]; /* value schema id of each version */
    int nversions;
    kf_buf key, val;
    PGconn *locker; /* a transaction holding a lock the sink waits for, while one is open */
} fx;

static pid_t child;

/* ---- fixture ---- */

/* Registers the next version of the table (value schema id in f->vid) and writes with it. */
static void fx_version(fx *f, const col_spec *cols, size_t n)
{
    kf_error err;
    kf_event_writer_destroy(f->w);
    kf_table_destroy(f->t);
    assert_non_null(f->t = kf_table_new("kfleet", "shop", NULL, f->name, &err));
    for (size_t i = 0; i < n; i++) {
        kf_column c = {.name = cols[i].name, .nullable = cols[i].nullable, .pk_order = cols[i].pk};
        if (kf_coltype_parse(cols[i].type, &c, &err) != KF_OK ||
            kf_table_add_column(f->t, &c, &err) != KF_OK)
            fail_msg("%s", err.message);
    }
    char subject[256], *ks = kf_table_key_schema(f->t, &err),
                       *vs = kf_table_envelope_schema(f->t, &err);
    int32_t kid;
    assert_non_null(ks);
    assert_non_null(vs);
    snprintf(subject, sizeof(subject), "%s-key", f->topic);
    if (kf_serde_register(f->serde, subject, ks, &kid, &err) != KF_OK)
        fail_msg("%s", err.message);
    snprintf(subject, sizeof(subject), "%s-value", f->topic);
    int32_t *vid = &f->vid[f->nversions++];
    if (kf_serde_register(f->serde, subject, vs, vid, &err) != KF_OK)
        fail_msg("%s", err.message);
    free(ks);
    free(vs);
    if (!(f->w = kf_event_writer_new(f->serde, f->t, kid, *vid, &err)))
        fail_msg("%s", err.message);
    kf_source src = {.version = "0.1.0",
                     .connector = "kfleet-sim",
                     .name = "kfleet",
                     .db = "shop",
                     .table = f->name};
    assert_int_equal(kf_event_writer_set_source(f->w, &src, &err), KF_OK);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    kf_test_unique_name(f->name, sizeof(f->name), "sau");
    snprintf(f->topic, sizeof(f->topic), "%s.shop.%s", f->name, f->name);
    snprintf(f->audit, sizeof(f->audit), "%s.audit", f->name);
    snprintf(f->group, sizeof(f->group), "g_%s", f->name);
    snprintf(f->off_schema, sizeof(f->off_schema), "%s_off", f->name);
    kf_error err;
    kf_registry_config rc = {.url = kf_test_env("KFLEET_REGISTRY_URL"), .timeout_ms = 10000};
    assert_non_null(f->reg = kf_registry_new(&rc, &err));
    assert_non_null(f->serde = kf_serde_new(f->reg, &err));
    const char *bootstrap = kf_test_env("KFLEET_BOOTSTRAP");
    if (!vt_create_topic(bootstrap, f->topic, 1, -1, &err))
        fail_msg("%s", err.message);
    const char *kv[] = {"bootstrap.servers", bootstrap};
    assert_non_null(f->prod = kf_producer_new(kv, 1, NULL, &err));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        child = 0;
    }
    PQfinish(f->locker);
    PGconn *c = PQconnectdb(kf_test_env("KFLEET_PG_DSN"));
    if (PQstatus(c) == CONNECTION_OK) {
        char sql[512];
        snprintf(sql, sizeof(sql),
                 "SET client_min_messages = warning; SET lock_timeout = '30s'; "
                 "DROP TABLE IF EXISTS public.\"%s\"; "
                 "DROP SCHEMA IF EXISTS \"%s\" CASCADE",
                 f->name, f->off_schema);
        kf_test_pg_exec(c, sql);
    }
    PQfinish(c);
    const char *names[] = {f->topic, f->audit};
    vt_delete_topics(kf_test_env("KFLEET_BOOTSTRAP"), names, 2);
    kf_event_writer_destroy(f->w);
    kf_table_destroy(f->t);
    kf_producer_destroy(f->prod);
    kf_serde_destroy(f->serde);
    kf_registry_destroy(f->reg);
    kf_buf_free(&f->key);
    kf_buf_free(&f->val);
    free(f);
    return 0;
}

/* Produces a create or update of row id with the current version: vals are the non-key columns
 * as text (NULL: null), in order; booleans are "t" or "f". Waits for the acknowledgement. */
static void emit(fx *f, kf_op op, int64_t id, const char *const *vals)
{
    kf_error err;
    assert_int_equal(kf_event_writer_begin(f->w, op, 1700000000000, &err), KF_OK);
    assert_int_equal(kf_event_set_int(f->w, KF_AFTER, 0, id, &err), KF_OK);
    for (size_t c = 1; c < kf_table_ncolumns(f->t); c++) {
        const kf_column *col = kf_table_column(f->t, c);
        const char *v = vals[c - 1];
        int rc;
        if (!v)
            rc = kf_event_set_null(f->w, KF_AFTER, c, &err);
        else if (kf_coltype_rep(col->type) == KF_REP_INT ||
                 kf_coltype_rep(col->type) == KF_REP_LONG)
            rc = kf_event_set_int(f->w, KF_AFTER, c, strtoll(v, NULL, 10), &err);
        else if (col->type == KF_COL_BOOL)
            rc = kf_event_set_bool(f->w, KF_AFTER, c, strcmp(v, "t") == 0, &err);
        else
            rc = kf_event_set_string(f->w, KF_AFTER, c, v, strlen(v), &err);
        if (rc != KF_OK)
            fail_msg("column %s: %s", col->name, err.message);
    }
    assert_int_equal(kf_event_writer_encode(f->w, &f->key, &f->val, &err), KF_OK);
    kf_produce_msg m = {.topic = f->topic,
                        .partition = 0,
                        .key = f->key.data,
                        .key_len = f->key.len,
                        .value = f->val.data,
                        .value_len = f->val.len};
    assert_int_equal(kf_producer_produce(f->prod, &m, NULL, &err), KF_OK);
    assert_int_equal(kf_producer_flush(f->prod, 30000, &err), KF_OK);
    assert_false(kf_producer_failed(f->prod, &err));
}

/* Starts the sink on the topic with topic.prefix=<name>, group and target schema, then extra
 * --set values (NULL-terminated; NULL: none). */
static pid_t sink_start(const fx *f, const char *group, const char *target,
                        const char *const *extra)
{
    char bin[512];
    snprintf(bin, sizeof(bin), "%s/workers/sink-postgres/kfleet-sink-pg",
             kf_test_env("KFLEET_BINARY_DIR"));
    static char a[10][600];
    snprintf(a[0], sizeof(a[0]), "sink.topics=%s", f->topic);
    snprintf(a[1], sizeof(a[1]), "pg.dsn=%s", kf_test_env("KFLEET_PG_DSN"));
    snprintf(a[2], sizeof(a[2]), "kafka.bootstrap.servers=%s", kf_test_env("KFLEET_BOOTSTRAP"));
    snprintf(a[3], sizeof(a[3]), "registry.url=%s", kf_test_env("KFLEET_REGISTRY_URL"));
    snprintf(a[4], sizeof(a[4]), "kafka.group.id=%s", group);
    snprintf(a[5], sizeof(a[5]), "pg.application_name=%s", group);
    snprintf(a[6], sizeof(a[6]), "sink.flush.interval=100ms");
    snprintf(a[7], sizeof(a[7]), "log.level=warn");
    snprintf(a[8], sizeof(a[8]), "topic.prefix=%s", f->name);
    snprintf(a[9], sizeof(a[9]), "sink.target.schema=%s", target);
    const char *args[40];
    size_t n = 0;
    args[n++] = bin;
    for (int i = 0; i < 10; i++) {
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
    child = pid;
    return pid;
}

/* SIGTERM, then the exit code. */
static int sink_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    child = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The columns of schema.table as "name:type,..." in order. */
static void columns_sql(const char *schema, const char *table, char *out, size_t cap)
{
    snprintf(out, cap,
             "SELECT string_agg(column_name || ':' || data_type, ',' ORDER BY ordinal_position) "
             "FROM information_schema.columns WHERE table_schema = '%s' AND table_name = '%s'",
             schema, table);
}

/* Waits until a backend of the audited sink other than the one with pid `except` (text; "" none)
 * waits on a lock in a transaction whose DDL has run (it holds the AccessExclusiveLock of the
 * table an ALTER TABLE takes), and writes its pid into out. */
static void ddl_waiting(PGconn *c, const fx *f, const char *except, char *out, size_t cap)
{
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "SELECT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid WHERE "
             "a.application_name = '%s' AND a.wait_event_type = 'Lock' AND a.pid::text <> '%s' "
             "AND l.granted AND l.mode = 'AccessExclusiveLock' AND "
             "l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND "
             "l.relation = 'public.\"%s\"'::regclass",
             f->group, except, f->name);
    for (int waited = 0; waited < WAIT_MS; waited += 200) {
        kf_test_pg_value(c, sql, out, cap);
        if (out[0])
            return;
        usleep(200000);
    }
    fail_msg("the sink's DDL never waited on the lock: %s", sql);
}

/* ---- audit events ---- */

#define MAX_EVENTS 32

static int read_audit(fx *f, vt_audit *out)
{
    int n =
        vt_audit_read(kf_test_env("KFLEET_BOOTSTRAP"), f->serde, f->audit, out, MAX_EVENTS, 30000);
    if (n < 0)
        fail_msg("could not read the audit topic %s", f->audit);
    return n;
}

/* Waits until the audit topic holds n events. */
static void wait_events(fx *f, int n)
{
    static vt_audit ev[MAX_EVENTS];
    int got = 0;
    for (int waited = 0; waited < WAIT_MS; waited += 500) {
        /* the topic is created with the first event: until then it cannot be read */
        got = vt_audit_read(kf_test_env("KFLEET_BOOTSTRAP"), f->serde, f->audit, ev, MAX_EVENTS,
                            30000);
        if (got > 0)
            vt_audit_free(ev, (size_t)got);
        if (got >= n)
            return;
        usleep(500000);
    }
    fail_msg("the audit topic holds %d events, expected %d", got, n);
}

static json_t *details(const vt_audit *a)
{
    if (!a->details)
        fail_msg("the %s event has no details", a->action);
    json_t *d = json_loads(a->details, 0, NULL);
    if (!d || !json_is_object(d))
        fail_msg("details of the %s event are not a JSON object: %s", a->action, a->details);
    return d;
}

static const char *jstr(json_t *d, const char *key)
{
    json_t *v = json_object_get(d, key);
    if (!json_is_string(v))
        fail_msg("the details have no string \"%s\"", key);
    return json_string_value(v);
}

static long long jint(json_t *d, const char *key)
{
    json_t *v = json_object_get(d, key);
    if (!json_is_integer(v))
        fail_msg("the details have no integer \"%s\"", key);
    return json_integer_value(v);
}

/* One expected schema_change of a step. */
typedef struct step_want {
    int version; /* index into f->vid */
    const char *level, *change, *column, *from, *to;
    bool nullable;
} step_want;

static void check_step(const fx *f, const vt_audit *a, const step_want *w)
{
    assert_string_equal(a->action, "schema_change");
    assert_string_equal(a->level, w->level);
    char msg[512];
    snprintf(msg, sizeof(msg), "schema change of public.%s: %s %s %s->%s", f->name, w->change,
             w->column, w->from ? w->from : "", w->to);
    assert_string_equal(a->message, msg);
    assert_true(a->has_schema_id);
    assert_int_equal(a->schema, f->vid[w->version]);
    json_t *d = details(a);
    assert_string_equal(jstr(d, "change"), w->change);
    assert_string_equal(jstr(d, "column"), w->column);
    if (w->from)
        assert_string_equal(jstr(d, "from"), w->from);
    else
        assert_true(json_is_null(json_object_get(d, "from")));
    assert_string_equal(jstr(d, "to"), w->to);
    assert_true(json_is_boolean(json_object_get(d, "nullable")));
    assert_int_equal(json_is_true(json_object_get(d, "nullable")), w->nullable);
    assert_int_equal(json_object_size(d), 5);
    json_decref(d);
}

/* ---- the test ---- */

static const col_spec V1[] = {
    {"id", "bigint", false, 1}, {"a", "int", true, 0}, {"b", "varchar(10)", true, 0}};
/* a widened, b widened, c added */
static const col_spec V2[] = {{"id", "bigint", false, 1},
                              {"a", "bigint", true, 0},
                              {"b", "varchar(40)", true, 0},
                              {"c", "text", true, 0}};
/* a narrowed again (kept wide), d added */
static const col_spec V3[] = {{"id", "bigint", false, 1},
                              {"a", "int", true, 0},
                              {"b", "varchar(40)", true, 0},
                              {"c", "text", true, 0},
                              {"d", "boolean", true, 0}};

static void schema_changes_are_audited(void **state)
{
    fx *f = *state;
    char sql[1024], cols[1024], got[256];
    PGconn *c = kf_test_pg_connect("KFLEET_PG_DSN");

    /* v1: the sink creates the table */
    fx_version(f, V1, 3);
    for (int id = 1; id <= 3; id++)
        emit(f, KF_OP_CREATE, id, (const char *[]){"7", "short"});
    int64_t t0 = vt_wall_ms();
    pid_t pid = sink_start(f, f->group, "public", NULL);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM public.\"%s\"", f->name);
    kf_test_pg_wait_for(c, sql, "3", WAIT_MS);
    wait_events(f, 2); /* start, create */

    /* v2, whose transaction runs its DDL, then waits for the sync marker row locked here and
     * is rolled back with the sink's connection: nothing may be announced for it */
    f->locker = kf_test_pg_connect("KFLEET_PG_DSN");
    snprintf(sql, sizeof(sql),
             "BEGIN; SELECT 1 FROM kfleet_meta.sync_markers WHERE group_id = '%s' FOR UPDATE",
             f->group);
    kf_test_pg_exec(f->locker, sql);
    fx_version(f, V2, 4);
    emit(f, KF_OP_CREATE, 4, (const char *[]){"9000000000", "a longer value", "c4"});
    emit(f, KF_OP_CREATE, 5, (const char *[]){"5", "five", NULL});
    emit(f, KF_OP_UPDATE, 1, (const char *[]){"8", "updated", "c1"});
    PGconn *admin = kf_test_pg_connect("KFLEET_PG_ADMIN_DSN");
    char pid1[32], pid2[32];
    ddl_waiting(c, f, "", pid1, sizeof(pid1));
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%s)", pid1);
    kf_test_pg_value(admin, sql, got, sizeof(got));
    assert_string_equal(got, "t");
    /* the sink reconnects and its retry, DDL again included, waits on the lock again */
    ddl_waiting(c, f, pid1, pid2, sizeof(pid2));
    static vt_audit ev[MAX_EVENTS];
    int n = read_audit(f, ev);
    if (n != 2)
        fail_msg("expected start and create while the evolution waits, got %d events", n);
    vt_audit_free(ev, (size_t)n);
    kf_test_pg_exec(f->locker, "ROLLBACK");
    PQfinish(f->locker);
    f->locker = NULL;
    columns_sql("public", f->name, cols, sizeof(cols));
    kf_test_pg_wait_for(c, cols, "id:bigint,a:bigint,b:character varying,c:text", WAIT_MS);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) || '|' || sum(a) FROM public.\"%s\" WHERE c IS NOT NULL", f->name);
    kf_test_pg_wait_for(c, sql, "2|9000000008", WAIT_MS);

    /* v3: a kept wide, d added */
    fx_version(f, V3, 5);
    emit(f, KF_OP_CREATE, 6, (const char *[]){"6", "six", "c6", "t"});
    kf_test_pg_wait_for(c, cols, "id:bigint,a:bigint,b:character varying,c:text,d:boolean",
                        WAIT_MS);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM public.\"%s\" WHERE d", f->name);
    kf_test_pg_wait_for(c, sql, "1", WAIT_MS);
    assert_int_equal(sink_stop(pid), 0);
    int64_t t1 = vt_wall_ms();

    /* exactly start, create, the three steps of v2, the two of v3 and stop */
    n = read_audit(f, ev);
    if (n != 8) {
        for (int i = 0; i < n; i++)
            fprintf(stderr, "event %d: %s %s\n", i, ev[i].action, ev[i].message);
        fail_msg("expected 8 audit events, got %d", n);
    }
    char host[256] = "", instance[300], subject[200];
    gethostname(host, sizeof(host) - 1);
    snprintf(instance, sizeof(instance), "%s:%ld", host, (long)pid);
    snprintf(subject, sizeof(subject), "%s-value", f->audit);
    int32_t audit_id = -1;
    kf_error err;
    assert_int_equal(kf_registry_lookup(f->reg, subject, kf_audit_schema(), &audit_id, NULL, &err),
                     KF_OK);
    for (int i = 0; i < n; i++) {
        const vt_audit *a = &ev[i];
        assert_int_equal(a->schema_id, audit_id);
        assert_true(vt_is_uuid_v4(a->id));
        for (int j = 0; j < i; j++)
            assert_string_not_equal(a->id, ev[j].id);
        assert_string_equal(a->program, "kfleet-sink-pg");
        assert_string_equal(a->instance, instance);
        assert_string_equal(a->key, instance);
        if (a->ts_ms < t0 || a->ts_ms > t1 || (i > 0 && a->ts_ms < ev[i - 1].ts_ms))
            fail_msg("event %d (%s) at %lld is out of order or outside [%lld, %lld]", i, a->action,
                     (long long)a->ts_ms, (long long)t0, (long long)t1);
        assert_false(a->has_partition);
        assert_false(a->has_offset);
        assert_null(a->rule_id);
        bool change = i > 0 && i < n - 1;
        if (change) {
            /* about the destination table, fed by the topic */
            assert_false(a->has_count);
            assert_non_null(a->topic);
            assert_string_equal(a->topic, f->topic);
            assert_non_null(a->db);
            assert_string_equal(a->db, "public");
            assert_non_null(a->table);
            assert_string_equal(a->table, f->name);
        } else {
            assert_null(a->topic);
            assert_null(a->db);
            assert_null(a->table);
            assert_false(a->has_schema_id);
        }
    }

    /* start */
    assert_string_equal(ev[0].action, "start");
    assert_string_equal(ev[0].level, "info");
    assert_string_equal(ev[0].message, "kfleet-sink-pg started");
    assert_false(ev[0].has_count);
    json_t *d = details(&ev[0]);
    assert_true(jstr(d, "version")[0] != '\0');
    assert_string_equal(jstr(d, "group"), f->group);
    json_t *topics = json_object_get(d, "topics");
    assert_int_equal(json_array_size(topics), 1);
    assert_string_equal(json_string_value(json_array_get(topics, 0)), f->topic);
    assert_string_equal(jstr(d, "target_schema"), "public");
    assert_string_equal(jstr(d, "table_name_format"), "${table}");
    assert_int_equal(jint(d, "batch_size"), 500);
    assert_string_equal(jstr(d, "deletion"), "hard");
    assert_string_equal(jstr(d, "copy_format"), "binary");
    assert_int_equal(json_object_size(d), 8);
    json_decref(d);

    /* create: the columns as created */
    const vt_audit *cr = &ev[1];
    assert_string_equal(cr->action, "schema_change");
    assert_string_equal(cr->level, "info");
    snprintf(sql, sizeof(sql), "schema change of public.%s: create (3 columns)", f->name);
    assert_string_equal(cr->message, sql);
    assert_true(cr->has_schema_id);
    assert_int_equal(cr->schema, f->vid[0]);
    d = details(cr);
    assert_string_equal(jstr(d, "change"), "create");
    assert_int_equal(json_object_size(d), 2);
    char *created = json_dumps(json_object_get(d, "columns"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(created,
                        "[{\"name\":\"id\",\"nullable\":false,\"pk\":1,\"type\":\"bigint\"},"
                        "{\"name\":\"a\",\"nullable\":true,\"pk\":0,\"type\":\"int\"},"
                        "{\"name\":\"b\",\"nullable\":true,\"pk\":0,\"type\":\"varchar(10)\"}]");
    free(created);
    json_decref(d);

    /* the evolutions, in the destination's column order */
    static const step_want steps[] = {
        {1, "info", "widen", "a", "int", "bigint", true},
        {1, "info", "widen", "b", "varchar(10)", "varchar(40)", true},
        {1, "info", "add", "c", NULL, "text", true},
        {2, "warn", "keep_wide", "a", "bigint", "bigint", true},
        {2, "info", "add", "d", NULL, "bool", true},
    };
    for (size_t i = 0; i < 5; i++)
        check_step(f, &ev[2 + i], &steps[i]);

    /* the same changes, one schema_history row per DDL transaction */
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(schema_id || '=' || change, ' | ' ORDER BY id) FROM "
             "kfleet_meta.schema_history WHERE table_schema = 'public' AND table_name = '%s'",
             f->name);
    char history[1024], want[1024];
    kf_test_pg_value(c, sql, history, sizeof(history));
    snprintf(want, sizeof(want),
             "%d=create | %d=widen a int->bigint; widen b varchar(10)->varchar(40); add c ->text"
             " | %d=keep_wide a bigint->bigint; add d ->bool",
             (int)f->vid[0], (int)f->vid[1], (int)f->vid[2]);
    assert_string_equal(history, want);

    /* stop: what the run applied */
    const vt_audit *st = &ev[7];
    assert_string_equal(st->action, "stop");
    assert_string_equal(st->level, "info");
    assert_string_equal(st->message, "kfleet-sink-pg stopped");
    assert_true(st->has_count);
    assert_int_equal(st->count, 7);
    d = details(st);
    assert_int_equal(jint(d, "records"), 7);
    assert_true(jint(d, "batches") >= 3);
    assert_int_equal(jint(d, "rows_upserted"), 7);
    assert_int_equal(jint(d, "rows_deleted"), 0);
    assert_int_equal(jint(d, "dlq_records"), 0);
    assert_int_equal(jint(d, "schema_changes"), 3);
    assert_int_equal(jint(d, "exit_code"), 0);
    snprintf(sql, sizeof(sql), "SELECT max(id) FROM kfleet_meta.sync_runs WHERE group_id = '%s'",
             f->group);
    kf_test_pg_value(c, sql, got, sizeof(got));
    assert_int_equal(jint(d, "run_id"), atoll(got));
    assert_int_equal(json_object_size(d), 8);
    json_decref(d);
    vt_audit_free(ev, (size_t)n);

    /* audit.enabled=false: another group creates and evolves a copy of the table in a schema of
     * its own from the same records, and writes nothing to the audit topic */
    char group2[120];
    snprintf(group2, sizeof(group2), "g_%s_off", f->name);
    const char *off[] = {"audit.enabled=false", NULL};
    pid = sink_start(f, group2, f->off_schema, off);
    columns_sql(f->off_schema, f->name, cols, sizeof(cols));
    kf_test_pg_wait_for(c, cols, "id:bigint,a:bigint,b:character varying,c:text,d:boolean",
                        WAIT_MS);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\".\"%s\"", f->off_schema, f->name);
    kf_test_pg_wait_for(c, sql, "6", WAIT_MS);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM kfleet_meta.schema_history WHERE table_schema = '%s' AND "
             "table_name = '%s'",
             f->off_schema, f->name);
    kf_test_pg_wait_for(c, sql, "3", WAIT_MS);
    assert_int_equal(sink_stop(pid), 0);
    n = read_audit(f, ev);
    assert_int_equal(n, 8);
    vt_audit_free(ev, (size_t)n);
    PQfinish(admin);
    PQfinish(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(schema_changes_are_audited, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
