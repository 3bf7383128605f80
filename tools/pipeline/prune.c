/* What earlier pipeline runs left behind: each run <prefix><MMDD_HHMMSS>_<pid> has Kafka topics
 * "<id>.*", their registry subjects, a Postgres schema "<id>" and kfleet_meta rows; all but the
 * newest runs are deleted, so debris never piles up on a machine that runs the pipeline often. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "kfleet/kafka.h"
#include "kfleet/log.h"
#include "kfleet/pg.h"
#include "kfleet/serde.h"
#include "pipeline.h"

#define PRUNE_TIMEOUT_MS 30000
#define FUTURE_DAYS      7 /* an id dated further after today is taken as last year's */
#define MAX_PID_DIGITS   10

/* The value of the n decimal digits at s; -1 when one of them is not a digit (the NUL at the
 * end of a shorter string is not, so nothing past it is read). */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int month_days(int month)
{
    static const int days[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return days[month - 1];
}

bool pl_run_id_parse(const char *s, const char *prefix, char end, const struct tm *today,
                     pl_run_key *out)
{
    size_t plen = strlen(prefix);
    if (strncmp(s, prefix, plen) != 0)
        return false;
    const char *p = s + plen;
    int mmdd = digits(p, 4);
    if (mmdd < 0 || p[4] != '_')
        return false;
    int hms = digits(p + 5, 6);
    if (hms < 0 || p[11] != '_')
        return false;
    int month = mmdd / 100, day = mmdd % 100;
    int hour = hms / 10000, min = hms / 100 % 100, sec = hms % 100;
    if (month < 1 || month > 12 || day < 1 || day > month_days(month) || hour > 23 || min > 59 ||
        sec > 59)
        return false;
    const char *q = p + 12;
    if (*q < '1' || *q > '9') /* a pid has no leading zero */
        return false;
    long pid = 0;
    size_t nd = 0;
    for (; q[nd] >= '0' && q[nd] <= '9'; nd++) {
        if (nd == MAX_PID_DIGITS)
            return false;
        pid = pid * 10 + (q[nd] - '0');
    }
    if (q[nd] != end)
        return false;
    /* ids carry no year: one dated well after today comes from the year before */
    int year = today->tm_year + 1900;
    if ((month - 1) * 31 + day - 1 > today->tm_mon * 31 + today->tm_mday - 1 + FUTURE_DAYS)
        year--;
    out->len = (size_t)(q + nd - s);
    out->when =
        (((int64_t)year * 12 + month - 1) * 31 + day - 1) * 86400 + hour * 3600 + min * 60 + sec;
    out->pid = pid;
    return true;
}

int pl_run_key_cmp(const pl_run_key *a, const pl_run_key *b)
{
    if (a->when != b->when)
        return a->when > b->when ? -1 : 1;
    if (a->pid != b->pid)
        return a->pid > b->pid ? -1 : 1;
    return 0;
}

/* One run found, with what it left. */
typedef struct prune_run {
    char *id;
    pl_run_key key;
    char **topics;
    size_t ntopics, topics_cap;
    bool schema; /* a Postgres schema of the run's name exists */
    bool live;   /* a consumer group of the run has members: it is still running */
} prune_run;

typedef struct run_set {
    prune_run *runs;
    size_t n, cap;
} run_set;

/* The run whose id is the first len bytes of name, or NULL. */
static prune_run *run_find(run_set *set, const char *name, size_t len)
{
    for (size_t i = 0; i < set->n; i++)
        if (strlen(set->runs[i].id) == len && strncmp(set->runs[i].id, name, len) == 0)
            return &set->runs[i];
    return NULL;
}

/* The run whose id is the first key->len bytes of name, added when new; NULL when out of
 * memory. */
static prune_run *run_get(run_set *set, const char *name, const pl_run_key *key)
{
    prune_run *found = run_find(set, name, key->len);
    if (found)
        return found;
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 16;
        prune_run *grown = realloc(set->runs, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        set->runs = grown;
        set->cap = cap;
    }
    prune_run *r = &set->runs[set->n];
    memset(r, 0, sizeof(*r));
    if (!(r->id = strndup(name, key->len)))
        return NULL;
    r->key = *key;
    set->n++;
    return r;
}

static int topic_add(prune_run *r, const char *topic)
{
    if (r->ntopics == r->topics_cap) {
        size_t cap = r->topics_cap ? r->topics_cap * 2 : 8;
        char **grown = realloc(r->topics, cap * sizeof(*grown));
        if (!grown)
            return KF_ERR_NOMEM;
        r->topics = grown;
        r->topics_cap = cap;
    }
    if (!(r->topics[r->ntopics] = strdup(topic)))
        return KF_ERR_NOMEM;
    r->ntopics++;
    return KF_OK;
}

static void run_set_free(run_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        for (size_t t = 0; t < set->runs[i].ntopics; t++)
            free(set->runs[i].topics[t]);
        free(set->runs[i].topics);
        free(set->runs[i].id);
    }
    free(set->runs);
}

static int by_newest(const void *a, const void *b)
{
    const prune_run *x = a, *y = b;
    int c = pl_run_key_cmp(&x->key, &y->key);
    return c ? c : strcmp(x->id, y->id);
}

/* Logs a step that failed and keeps the first failure for the caller. */
static void failed(pl_prune_stats *st, kf_error *first, const kf_error *err, const char *msg,
                   const char *run)
{
    if (run)
        kf_log(KF_LOG_WARN, msg, "run", run, "error", err->message, (char *)NULL);
    else
        kf_log(KF_LOG_WARN, msg, "error", err->message, (char *)NULL);
    if (st->failures++ == 0)
        *first = *err;
}

/* ---- finding the runs ---- */

static int find_topics(kf_admin *a, run_set *set, const char *prefix, const struct tm *today,
                       kf_error *err)
{
    char **names = NULL;
    size_t n = 0;
    int rc = kf_admin_list_topics(a, &names, &n, PRUNE_TIMEOUT_MS, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n && rc == KF_OK; i++) {
        pl_run_key key;
        if (!pl_run_id_parse(names[i], prefix, '.', today, &key))
            continue;
        prune_run *r = run_get(set, names[i], &key);
        if (!r || topic_add(r, names[i]) < 0)
            rc = kf_error_set(err, KF_ERR_NOMEM, false,
                              "could not list the runs' topics: out of memory");
    }
    kf_admin_names_free(names, n);
    return rc;
}

/* Marks the runs that are still running, whoever started them: one of their consumer groups
 * (<id>-validate, <id>-sink) has members. */
static int find_live(const pl_kafka *k, run_set *set, const char *prefix, const struct tm *today,
                     kf_error *err)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (size_t i = 0; i < k->npairs; i++)
        if (rd_kafka_conf_set(conf, k->kv[2 * i], k->kv[2 * i + 1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            return kf_error_set(err, KF_ERR_CONFIG, false, "could not set kafka.%s: %s",
                                k->kv[2 * i], errstr);
        }
    if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return kf_error_set(err, KF_ERR_KAFKA, false, "could not set log_level: %s", errstr);
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return kf_error_set(err, KF_ERR_KAFKA, false, "could not create a Kafka client: %s",
                            errstr);
    }
    int rc = KF_OK;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts =
        rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS);
    rd_kafka_AdminOptions_set_request_timeout(opts, PRUNE_TIMEOUT_MS, errstr, sizeof(errstr));
    rd_kafka_ListConsumerGroups(rk, opts, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, PRUNE_TIMEOUT_MS + 5000);
    if (!ev) {
        rc = kf_error_set(err, KF_ERR_TIMEOUT, true,
                          "could not list the consumer groups: no "
                          "answer within %d ms",
                          PRUNE_TIMEOUT_MS + 5000);
        goto out_destroy;
    }
    if (rd_kafka_event_error(ev)) {
        rc = kf_error_set(err, KF_ERR_KAFKA, true, "could not list the consumer groups: %s",
                          rd_kafka_event_error_string(ev));
        goto out_destroy_event;
    }
    const rd_kafka_ListConsumerGroups_result_t *res = rd_kafka_event_ListConsumerGroups_result(ev);
    size_t nerr = 0;
    const rd_kafka_error_t **errors = rd_kafka_ListConsumerGroups_result_errors(res, &nerr);
    if (nerr > 0) { /* some broker did not answer: a live run could be missed */
        rc = kf_error_set(err, KF_ERR_KAFKA, true, "could not list every consumer group: %s",
                          rd_kafka_error_string(errors[0]));
        goto out_destroy_event;
    }
    size_t n = 0;
    const rd_kafka_ConsumerGroupListing_t **groups =
        rd_kafka_ListConsumerGroups_result_valid(res, &n);
    for (size_t i = 0; i < n; i++) {
        rd_kafka_consumer_group_state_t st = rd_kafka_ConsumerGroupListing_state(groups[i]);
        if (st == RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY || st == RD_KAFKA_CONSUMER_GROUP_STATE_DEAD)
            continue;
        const char *group = rd_kafka_ConsumerGroupListing_group_id(groups[i]);
        pl_run_key key;
        if (!pl_run_id_parse(group, prefix, '-', today, &key))
            continue;
        prune_run *r = run_find(set, group, key.len);
        if (r)
            r->live = true;
    }
out_destroy_event:
    rd_kafka_event_destroy(ev);
out_destroy:
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

/* The kfleet_meta tables holding rows of a run: the sink groups' rows name the group
 * (<id>-sink), the DDL and error rows the run's schema. */
typedef struct meta_table {
    const char *table, *column;
    char end; /* what follows the id in column: '-' for a group, '\0' for a schema name */
} meta_table;

static const meta_table META[] = {
    {"sync_markers", "group_id", '-'},
    {"sync_runs", "group_id", '-'},
    {"schema_history", "table_schema", '\0'},
    {"error_log", "table_schema", '\0'},
};
#define NMETA (sizeof(META) / sizeof(META[0]))

/* Adds the runs of every value of `sql` (one text column, parameter $1 = prefix) that is a run id
 * followed by `end`; marks them as having a schema when `schema`. */
static int find_in_pg(PGconn *conn, const char *sql, const char *what, char end, bool schema,
                      run_set *set, const char *prefix, const struct tm *today, kf_error *err)
{
    const char *params[1] = {prefix};
    PGresult *res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
    int rc = KF_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = kf_pg_result_error(err, conn, res, what);
        goto out_clear;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        const char *name = PQgetvalue(res, i, 0);
        pl_run_key key;
        if (!pl_run_id_parse(name, prefix, end, today, &key))
            continue;
        prune_run *r = run_get(set, name, &key);
        if (!r) {
            rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not %s: out of memory", what);
            goto out_clear;
        }
        r->schema = r->schema || schema;
    }
out_clear:
    PQclear(res);
    return rc;
}

/* Finds the runs' schemas and kfleet_meta rows; meta[i] says whether META[i] exists. */
static int find_pg(PGconn *conn, run_set *set, bool *meta, const char *prefix,
                   const struct tm *today, kf_error *err)
{
    int rc =
        find_in_pg(conn, "SELECT nspname FROM pg_namespace WHERE left(nspname, length($1)) = $1",
                   "list the runs' Postgres schemas", '\0', true, set, prefix, today, err);
    for (size_t i = 0; i < NMETA && rc == KF_OK; i++) {
        char sql[256];
        snprintf(sql, sizeof(sql), "SELECT to_regclass('kfleet_meta.%s') IS NOT NULL",
                 META[i].table);
        PGresult *res = PQexec(conn, sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
            rc = kf_pg_result_error(err, conn, res, "look for the kfleet_meta tables");
        else
            meta[i] = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        PQclear(res);
        if (rc < 0 || !meta[i])
            continue;
        snprintf(sql, sizeof(sql),
                 "SELECT DISTINCT %s FROM kfleet_meta.%s WHERE left(%s, length($1)) = $1",
                 META[i].column, META[i].table, META[i].column);
        char what[96];
        snprintf(what, sizeof(what), "list the runs' rows of kfleet_meta.%s", META[i].table);
        rc = find_in_pg(conn, sql, what, META[i].end, false, set, prefix, today, err);
    }
    return rc;
}

/* ---- deleting one run ---- */

static void prune_kafka(kf_admin *a, kf_registry *reg, const prune_run *r, pl_prune_stats *st,
                        kf_error *first)
{
    if (r->ntopics == 0)
        return;
    kf_error err;
    if (kf_admin_delete_topics(a, (const char *const *)r->topics, r->ntopics, true,
                               PRUNE_TIMEOUT_MS, &err) < 0) {
        failed(st, first, &err, "could not delete the topics of a run", r->id);
        return;
    }
    st->topics += r->ntopics;
    /* the subjects go with their topics: while a topic is left, its records need them */
    for (size_t i = 0; reg && i < r->ntopics; i++) {
        static const char *const SUFFIXES[] = {"-key", "-value"};
        for (size_t s = 0; s < 2; s++) {
            char subject[512];
            snprintf(subject, sizeof(subject), "%s%s", r->topics[i], SUFFIXES[s]);
            int rc = kf_registry_delete_subject(reg, subject, true, &err);
            if (rc == KF_OK) {
                st->subjects++;
            } else if (rc != KF_ERR_NOT_FOUND) {
                failed(st, first, &err, "could not delete the registry subjects of a run", r->id);
                return;
            }
        }
    }
}

/* Runs sql (parameter $1 = param, may be NULL for none) and adds the rows it touched. */
static int pg_run(PGconn *conn, const char *sql, const char *param, const char *what,
                  uint64_t *rows, kf_error *err)
{
    const char *params[1] = {param};
    PGresult *res = PQexecParams(conn, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);
    int rc = KF_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = kf_pg_result_error(err, conn, res, what);
    else if (rows)
        *rows += strtoull(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return rc;
}

/* Drops the run's schema and deletes its kfleet_meta rows, in one transaction. */
static void prune_pg(PGconn *conn, const bool *meta, const prune_run *r, pl_prune_stats *st,
                     kf_error *first)
{
    kf_error err;
    kf_buf sql = {0};
    uint64_t rows = 0;
    char group_prefix[256];
    snprintf(group_prefix, sizeof(group_prefix), "%s-", r->id);
    int rc = pg_run(conn, "BEGIN", NULL, "begin the run's clean-up", NULL, &err);
    if (rc == KF_OK && r->schema) {
        rc = kf_pg_buf_puts(&sql, "DROP SCHEMA IF EXISTS ");
        if (rc == KF_OK)
            rc = kf_pg_ident_append(conn, &sql, r->id, &err);
        else
            kf_error_set(&err, rc, false, "could not build the DROP SCHEMA statement");
        if (rc == KF_OK && (rc = kf_pg_buf_puts(&sql, " CASCADE")) < 0)
            kf_error_set(&err, rc, false, "could not build the DROP SCHEMA statement");
        if (rc == KF_OK)
            rc = pg_run(conn, (const char *)sql.data, NULL, "drop the run's schema", NULL, &err);
    }
    for (size_t i = 0; i < NMETA && rc == KF_OK; i++) {
        if (!meta[i])
            continue;
        char stmt[256], what[96];
        if (META[i].end == '-')
            snprintf(stmt, sizeof(stmt),
                     "DELETE FROM kfleet_meta.%s WHERE left(%s, length($1)) = $1", META[i].table,
                     META[i].column);
        else
            snprintf(stmt, sizeof(stmt), "DELETE FROM kfleet_meta.%s WHERE %s = $1", META[i].table,
                     META[i].column);
        snprintf(what, sizeof(what), "delete the run's rows of kfleet_meta.%s", META[i].table);
        rc = pg_run(conn, stmt, META[i].end == '-' ? group_prefix : r->id, what, &rows, &err);
    }
    if (rc == KF_OK)
        rc = pg_run(conn, "COMMIT", NULL, "commit the run's clean-up", NULL, &err);
    kf_buf_free(&sql);
    if (rc < 0) {
        if (PQtransactionStatus(conn) != PQTRANS_IDLE)
            PQclear(PQexec(conn, "ROLLBACK"));
        failed(st, first, &err, "could not delete the Postgres schema and rows of a run", r->id);
        return;
    }
    st->schemas += r->schema;
    st->meta_rows += rows;
}

int pl_prune(const pl_prune_opts *o, pl_prune_stats *st, kf_error *err)
{
    memset(st, 0, sizeof(*st));
    if (!o->prefix || !o->prefix[0])
        return kf_error_set(err, KF_ERR_CONFIG, false, "the runs' name prefix must not be empty");
    if (o->keep < 0)
        return kf_error_set(err, KF_ERR_CONFIG, false, "cannot keep %d runs", o->keep);
    struct tm today;
    localtime_r(&o->now, &today);
    run_set set = {0};
    bool meta[NMETA] = {false};
    kf_error e, first = {0};

    kf_admin *admin = kf_admin_new(o->kafka->kv, o->kafka->npairs, &e);
    if (!admin) {
        failed(st, &first, &e, "could not connect to Kafka to prune runs", NULL);
    } else if (find_topics(admin, &set, o->prefix, &today, &e) < 0) {
        failed(st, &first, &e, "could not list the topics of earlier runs", NULL);
        kf_admin_destroy(admin); /* what it left cannot be known: no topic is deleted */
        admin = NULL;
    }
    PGconn *conn = kf_pg_connect(o->pg_dsn, NULL, 0, &e);
    int rc = conn ? KF_OK : e.code;
    /* a run's schema may be locked by a worker that is still running: do not wait long; and
     * no notice per table a DROP SCHEMA cascades to */
    if (rc == KF_OK)
        rc = pg_run(conn, "SET lock_timeout = '10s'", NULL, "set a lock timeout", NULL, &e);
    if (rc == KF_OK)
        rc = pg_run(conn, "SET client_min_messages = warning", NULL, "quiet the notices", NULL, &e);
    if (rc == KF_OK)
        rc = find_pg(conn, &set, meta, o->prefix, &today, &e);
    if (rc < 0) {
        failed(st, &first, &e, "could not find the Postgres schemas and rows of earlier runs",
               NULL);
        if (conn)
            PQfinish(conn);
        conn = NULL;
    }

    if (set.n > 1)
        qsort(set.runs, set.n, sizeof(*set.runs), by_newest);
    st->runs = set.n;
    st->kept = set.n < (size_t)o->keep ? set.n : (size_t)o->keep;
    /* another user's run may still be going: without knowing which, none is deleted */
    bool known = set.n <= st->kept;
    if (!known && !admin)
        kf_error_set(&e, KF_ERR_KAFKA, true, "Kafka did not list the topics either");
    else if (!known)
        known = find_live(o->kafka, &set, o->prefix, &today, &e) == KF_OK;
    if (!known)
        failed(st, &first, &e, "could not tell which earlier runs are still running", NULL);
    for (size_t i = st->kept; known && i < set.n; i++) {
        if (set.runs[i].live) {
            st->live++;
            continue;
        }
        st->pruned++;
        if (admin)
            prune_kafka(admin, o->registry, &set.runs[i], st, &first);
        if (conn)
            prune_pg(conn, meta, &set.runs[i], st, &first);
    }
    char runs[24], kept[24], live[24], pruned[24], topics[24], subjects[24], schemas[24], rows[24],
        failures[24];
    snprintf(runs, sizeof(runs), "%zu", st->runs);
    snprintf(kept, sizeof(kept), "%zu", st->kept);
    snprintf(live, sizeof(live), "%zu", st->live);
    snprintf(pruned, sizeof(pruned), "%zu", st->pruned);
    snprintf(topics, sizeof(topics), "%zu", st->topics);
    snprintf(subjects, sizeof(subjects), "%zu", st->subjects);
    snprintf(schemas, sizeof(schemas), "%zu", st->schemas);
    snprintf(rows, sizeof(rows), "%" PRIu64, st->meta_rows);
    snprintf(failures, sizeof(failures), "%zu", st->failures);
    kf_log(st->failures ? KF_LOG_WARN : KF_LOG_INFO, "pruned earlier pipeline runs", "runs", runs,
           "kept", kept, "running", live, "pruned", pruned, "topics", topics, "subjects", subjects,
           "schemas", schemas, "meta_rows", rows, "failures", failures, (char *)NULL);

    if (conn)
        PQfinish(conn);
    kf_admin_destroy(admin);
    run_set_free(&set);
    if (st->failures == 0)
        return KF_OK;
    if (err)
        *err = first;
    return first.code;
}
