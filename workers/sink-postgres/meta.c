/* The sink's Postgres connection and its kfleet_meta schema: sync_markers (the exactly-once
 * positions), schema_history, sync_runs and error_log. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfleet/log.h"
#include "kfleet/pg.h"
#include "sink.h"

static int exec_simple(sink *s, const char *sql, const char *what, kf_error *err)
{
    if (!PQsendQuery(s->conn, sql))
        return kf_pg_result_error(err, s->conn, NULL, what);
    int rc = KF_OK;
    PGresult *res;
    while ((res = PQgetResult(s->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (rc == KF_OK && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
            rc = kf_pg_result_error(err, s->conn, res, what);
        PQclear(res);
    }
    if (rc < 0 && PQstatus(s->conn) == CONNECTION_OK)
        PQclear(PQexec(s->conn, "ROLLBACK"));
    return rc;
}

int sink_pg_ensure(sink *s, kf_error *err)
{
    sink_apply_wait(s); /* the writer owns the connection while a batch is in flight */
    if (s->conn && PQstatus(s->conn) == CONNECTION_OK)
        return KF_OK;
    if (s->conn) {
        PQfinish(s->conn);
        s->conn = NULL;
    }
    s->conn = kf_pg_connect(s->cfg->pg_dsn, s->pg_kv, s->pg_npairs, err);
    if (!s->conn)
        return err->code;
    s->conn_gen++;
    int rc = exec_simple(s, "SET synchronous_commit = on; SET client_min_messages = warning",
                         "could not set up the session", err);
    if (rc < 0)
        return rc;
    kf_log(KF_LOG_INFO, "connected to Postgres", "server", PQhost(s->conn), (char *)NULL);
    return KF_OK;
}

int sink_sql_literal(sink *s, kf_buf *b, const char *text, size_t len, kf_error *err)
{
    char *lit = PQescapeLiteral(s->conn, text, len);
    if (!lit)
        return kf_pg_result_error(err, s->conn, NULL, "could not quote a literal");
    int rc = kf_pg_buf_puts(b, lit);
    PQfreemem(lit);
    if (rc < 0)
        return kf_error_set(err, rc, false, "could not grow an SQL buffer");
    return KF_OK;
}

/* Creates the target schema when it is missing. An existing schema is left alone without
 * asking for the CREATE privilege on the database, which a locked-down role may lack. */
static int ensure_target_schema(sink *s, kf_error *err)
{
    const char *params[1] = {s->schema};
    PGresult *res = PQexecParams(s->conn, "SELECT 1 FROM pg_namespace WHERE nspname = $1", 1, NULL,
                                 params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        int rc = kf_pg_result_error(err, s->conn, res, "could not look up the target schema");
        PQclear(res);
        return rc;
    }
    bool exists = PQntuples(res) == 1;
    PQclear(res);
    if (exists)
        return KF_OK;
    if (!s->cfg->auto_create)
        return kf_error_set(err, KF_ERR_CONFIG, false,
                            "target schema \"%s\" does not exist and sink.auto_create is off",
                            s->schema);
    kf_buf q = {0};
    int rc;
    if ((rc = kf_pg_buf_puts(&q, "BEGIN; SELECT pg_advisory_xact_lock(hashtext('kfleet_meta')); "
                                 "CREATE SCHEMA IF NOT EXISTS ")) < 0 ||
        (rc = kf_pg_ident_append(s->conn, &q, s->schema, err)) < 0 ||
        (rc = kf_pg_buf_puts(&q, "; COMMIT;")) < 0) {
        if (rc != KF_ERR_INVALID)
            kf_error_set(err, rc, false, "could not grow an SQL buffer");
        goto out_free_sql;
    }
    if ((rc = exec_simple(s, (const char *)q.data, "could not create the target schema", err)) ==
        KF_OK)
        kf_log(KF_LOG_INFO, "target schema created", "schema", s->schema, (char *)NULL);

out_free_sql:
    kf_buf_free(&q);
    return rc;
}

int sink_meta_init(sink *s, kf_error *err)
{
    int rc = exec_simple(s, kf_pg_meta_ddl, "could not create kfleet_meta", err);
    if (rc < 0 || (rc = ensure_target_schema(s, err)) < 0)
        return rc;
    const char *params[2] = {SINK_PROGRAM, s->group};
    PGresult *res = PQexecParams(s->conn,
                                 "INSERT INTO kfleet_meta.sync_runs (worker, group_id, status) "
                                 "VALUES ($1, $2, 'running') RETURNING id",
                                 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = kf_pg_result_error(err, s->conn, res, "could not record the run in sync_runs");
        PQclear(res);
        return rc;
    }
    s->run_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return KF_OK;
}

void sink_meta_finish(sink *s, const char *status, const char *message)
{
    if (s->run_id <= 0)
        return;
    kf_error err;
    if (sink_pg_ensure(s, &err) < 0) {
        kf_log(KF_LOG_WARN, "could not close the run in sync_runs", "error", err.message,
               (char *)NULL);
        return;
    }
    char id[24], up[24], del[24], dlq[24], ddl[24], batches[24];
    snprintf(id, sizeof(id), "%" PRId64, s->run_id);
    snprintf(up, sizeof(up), "%" PRIu64, s->n_upserted);
    snprintf(del, sizeof(del), "%" PRIu64, s->n_deleted);
    snprintf(dlq, sizeof(dlq), "%" PRIu64, s->n_dlq);
    snprintf(ddl, sizeof(ddl), "%" PRIu64, s->n_ddl);
    snprintf(batches, sizeof(batches), "%" PRIu64, s->n_batches);
    const char *params[8] = {id, status, up, del, dlq, ddl, message, batches};
    PGresult *res = PQexecParams(
        s->conn,
        "UPDATE kfleet_meta.sync_runs SET stopped_at = now(), status = $2, rows_upserted = $3, "
        "rows_deleted = $4, dlq_records = $5, ddl_count = $6, message = $7, batches = $8 "
        "WHERE id = $1",
        8, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        kf_pg_result_error(&err, s->conn, res, "could not close the run in sync_runs");
        kf_log(KF_LOG_WARN, err.message, (char *)NULL);
    }
    PQclear(res);
}

int sink_meta_load_markers(sink *s, rd_kafka_topic_partition_list_t *parts, kf_error *err)
{
    int rc = sink_pg_ensure(s, err);
    if (rc < 0)
        return rc;
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        char part[16];
        snprintf(part, sizeof(part), "%d", (int)tp->partition);
        const char *params[3] = {s->group, tp->topic, part};
        PGresult *res = PQexecParams(s->conn,
                                     "SELECT next_offset FROM kfleet_meta.sync_markers "
                                     "WHERE group_id = $1 AND topic = $2 AND partition = $3",
                                     3, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            rc = kf_pg_result_error(err, s->conn, res, "could not read sync markers");
            PQclear(res);
            return rc;
        }
        /* Postgres is the truth: no marker means nothing of this partition was applied yet */
        tp->offset = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
                                         : RD_KAFKA_OFFSET_BEGINNING;
        PQclear(res);
    }
    return KF_OK;
}
