/* DDL text for Postgres destinations: CREATE TABLE from a table description and ALTER TABLE
 * from an evolution plan, every name quoted. */
#include <string.h>

#include "kfleet/pg.h"

static int sql_err(int rc, kf_error *err)
{
    return kf_error_set(err, rc, false, "could not grow an SQL buffer");
}

int kf_pg_create_table_sql(PGconn *conn, kf_buf *b, const char *schema, const char *name,
                           const kf_table *t, const char *soft_delete_col, kf_error *err)
{
    int rc;
    char type[64];
    if ((rc = kf_pg_buf_puts(b, "CREATE TABLE IF NOT EXISTS ")) < 0)
        return sql_err(rc, err);
    if ((rc = kf_pg_qualified_append(conn, b, schema, name, err)) < 0)
        return rc;
    if ((rc = kf_pg_buf_puts(b, " (")) < 0)
        return sql_err(rc, err);
    for (size_t i = 0; i < kf_table_ncolumns(t); i++) {
        const kf_column *c = kf_table_column(t, i);
        if (i > 0 && (rc = kf_pg_buf_puts(b, ", ")) < 0)
            return sql_err(rc, err);
        if ((rc = kf_pg_ident_append(conn, b, c->name, err)) < 0)
            return rc;
        if ((rc = kf_pg_buf_printf(b, " %s%s", kf_pg_type_name(c, type, sizeof(type)),
                                   c->nullable ? "" : " NOT NULL")) < 0)
            return sql_err(rc, err);
    }
    if (soft_delete_col) {
        if ((rc = kf_pg_buf_puts(b, ", ")) < 0)
            return sql_err(rc, err);
        if ((rc = kf_pg_ident_append(conn, b, soft_delete_col, err)) < 0)
            return rc;
        if ((rc = kf_pg_buf_puts(b, " boolean NOT NULL DEFAULT false")) < 0)
            return sql_err(rc, err);
    }
    size_t npk = kf_table_npk(t);
    if (npk > 0) {
        if ((rc = kf_pg_buf_puts(b, ", PRIMARY KEY (")) < 0)
            return sql_err(rc, err);
        for (size_t k = 0; k < npk; k++) {
            if (k > 0 && (rc = kf_pg_buf_puts(b, ", ")) < 0)
                return sql_err(rc, err);
            const kf_column *c = kf_table_column(t, kf_table_pk_column(t, k));
            if ((rc = kf_pg_ident_append(conn, b, c->name, err)) < 0)
                return rc;
        }
        if ((rc = kf_pg_buf_puts(b, ")")) < 0)
            return sql_err(rc, err);
    }
    if ((rc = kf_pg_buf_puts(b, ");")) < 0)
        return sql_err(rc, err);
    return KF_OK;
}

/* Whether Postgres changes the column's type in the catalog alone, keeping the table's data
 * and indexes: a longer (or no) varchar limit, or more digits before a numeric's point. A USING
 * clause, even a cast to the same type, makes it rewrite the whole table and rebuild its
 * indexes, which grows with the table; without one it takes a millisecond. */
static bool relabel_only(const kf_column *from, const kf_column *to)
{
    if (!from || !to)
        return false;
    bool from_chars = from->type == KF_COL_VARCHAR || from->type == KF_COL_TEXT;
    if (from_chars && to->type == KF_COL_TEXT)
        return true;
    if (from->type == KF_COL_VARCHAR && to->type == KF_COL_VARCHAR)
        return to->length == 0 || (from->length > 0 && to->length >= from->length);
    if (from->type == KF_COL_DECIMAL && to->type == KF_COL_DECIMAL)
        return to->scale == from->scale && to->precision >= from->precision;
    return false;
}

/* One ALTER TABLE clause for a step, after a ", " separator when not the first. */
static int step_sql(PGconn *conn, kf_buf *b, const kf_plan_step *s, bool *first, kf_error *err)
{
    int rc;
    char type[64];
    bool type_change = s->action == KF_PLAN_WIDEN || s->action == KF_PLAN_TO_TEXT;
    bool add = s->action == KF_PLAN_ADD;
    bool relax = s->from && s->from->nullable != s->to->nullable;
    const char *what[3] = {add ? " ADD COLUMN IF NOT EXISTS " : NULL,
                           type_change ? " ALTER COLUMN " : NULL, relax ? " ALTER COLUMN " : NULL};
    for (int k = 0; k < 3; k++) {
        if (!what[k])
            continue;
        if ((rc = kf_pg_buf_puts(b, *first ? "" : ",")) < 0)
            return sql_err(rc, err);
        *first = false;
        if ((rc = kf_pg_buf_puts(b, what[k])) < 0)
            return sql_err(rc, err);
        if ((rc = kf_pg_ident_append(conn, b, s->column, err)) < 0)
            return rc;
        kf_pg_type_name(s->to, type, sizeof(type));
        if (k == 0) {
            rc = kf_pg_buf_printf(b, " %s", type);
        } else if (k == 1) {
            if ((rc = kf_pg_buf_printf(b, " TYPE %s", type)) < 0)
                return sql_err(rc, err);
            if (relabel_only(s->from, s->to))
                continue;
            if ((rc = kf_pg_buf_puts(b, " USING ")) < 0)
                return sql_err(rc, err);
            if ((rc = kf_pg_ident_append(conn, b, s->column, err)) < 0)
                return rc;
            /* jsonb and bytea have no direct cast to every type: go through text */
            rc = kf_pg_buf_printf(b, "::text::%s", type);
        } else {
            rc = kf_pg_buf_puts(b, " DROP NOT NULL");
        }
        if (rc < 0)
            return sql_err(rc, err);
    }
    return KF_OK;
}

int kf_pg_plan_sql(PGconn *conn, kf_buf *b, const char *schema, const char *name,
                   const kf_plan *plan, kf_error *err)
{
    if (!kf_plan_changes_destination(plan))
        return KF_OK;
    int rc;
    if ((rc = kf_pg_buf_puts(b, "ALTER TABLE ")) < 0)
        return sql_err(rc, err);
    if ((rc = kf_pg_qualified_append(conn, b, schema, name, err)) < 0)
        return rc;
    bool first = true;
    for (size_t i = 0; i < kf_plan_nsteps(plan); i++) {
        const kf_plan_step *s = kf_plan_step_at(plan, i);
        if (!kf_plan_step_changes_destination(s))
            continue;
        if ((rc = step_sql(conn, b, s, &first, err)) < 0)
            return rc;
    }
    if ((rc = kf_pg_buf_puts(b, ";")) < 0)
        return sql_err(rc, err);
    return KF_OK;
}
