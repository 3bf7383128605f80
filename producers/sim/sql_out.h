/* The database outputs of the simulator: the same changes as DDL and DML on PostgreSQL
 * (libpq: COPY, parameterised set-based UPDATE and DELETE) or MariaDB/MySQL (libmariadb,
 * escaped literals: multi-row INSERT, batched DELETE), one transaction per batch, ALTER TABLE
 * for each schema change. */
#ifndef KF_SIM_SQL_OUT_H
#define KF_SIM_SQL_OUT_H

#include <stdbool.h>

#include "kfleet/error.h"
#include "output.h"

typedef enum kf_sim_sql_dialect {
    KF_SIM_SQL_POSTGRES = 0,
    KF_SIM_SQL_MYSQL,
} kf_sim_sql_dialect;

typedef struct kf_sim_sql_config {
    kf_sim_sql_dialect dialect;
    /* PostgreSQL: a libpq conninfo or URL. MariaDB: mysql://user:password@host[:port]/db
     * (user and password percent-decoded; the port defaults to 3306). Copied. */
    const char *dsn;
    /* Schema (PostgreSQL) or database (MariaDB) of the tables, created if missing; NULL =
     * the connection's default. Copied. */
    const char *schema;
    /* A fresh run drops existing tables of the same names first; without it they are an
     * error. A resumed run keeps them. */
    bool replace;
} kf_sim_sql_config;

/* Creates the output into *out (caller storage; destroy with out->ops->destroy(out->self)).
 * It connects in open. Returns 0, KF_ERR_CONFIG for a malformed DSN, or KF_ERR_NOMEM. */
int kf_sim_sql_output_new(const kf_sim_sql_config *cfg, kf_sim_output *out, kf_error *err);

/* The column type of t in the dialect's DDL ("numeric(10,2)", "DATETIME(6)", ...) into buf.
 * key says the column is part of the primary key (MariaDB keys cannot be TEXT). */
void kf_sim_sql_type(kf_sim_sql_dialect d, const kf_sim_coltype *t, bool key, char *buf,
                     size_t len);

#endif
