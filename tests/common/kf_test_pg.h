/* Postgres checks for integration tests: connect from a stack environment variable, run a
 * statement, read one value, wait for a query to return what is expected. Every failure fails
 * the running test with the statement and the server's message. */
#ifndef KF_TEST_PG_H
#define KF_TEST_PG_H

#include <libpq-fe.h>

#include "kf_test_env.h"

/* Connects to the DSN in environment variable env (e.g. KFLEET_PG_DSN). */
static inline PGconn *kf_test_pg_connect(const char *env)
{
    PGconn *c = PQconnectdb(kf_test_env(env));
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("could not connect: %s", PQerrorMessage(c));
    return c;
}

static inline void kf_test_pg_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

/* The first column of the first row of a query, as text ("" for no row or null). */
static inline void kf_test_pg_value(PGconn *c, const char *sql, char *out, size_t cap)
{
    PGresult *r = PQexec(c, sql);
    out[0] = '\0';
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
        snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
}

/* Waits up to wait_ms until sql returns expect; fails with the last value otherwise. */
static inline void kf_test_pg_wait_for(PGconn *c, const char *sql, const char *expect, int wait_ms)
{
    char got[4096] = "";
    for (int waited = 0; waited < wait_ms; waited += 200) {
        kf_test_pg_value(c, sql, got, sizeof(got));
        if (strcmp(got, expect) == 0)
            return;
        usleep(200000);
    }
    fail_msg("%s\n  expected: %s\n  got:      %s", sql, expect, got);
}

#endif
