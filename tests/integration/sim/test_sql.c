/* kfleet-sim --to postgres and --to mysql against the real servers: after a run with schema
 * evolution the database holds exactly the --expect state, row by row, and the evolution DDL
 * was applied (dropped columns gone, promoted ones present, widened types). */
#include <libpq-fe.h>
#include <math.h>
#include <mysql.h>

#include "sim_itest.h"

typedef enum { PG, MY } dialect;

/* The SELECT expression that renders column name (quoted q) of type like the expect file. */
static void column_expr(dialect d, const char *q, const char *type, char *buf, size_t len)
{
    bool tz = strcmp(type, "timestamptz") == 0;
    if (tz || strcmp(type, "timestamp") == 0) {
        if (d == PG)
            snprintf(buf, len, "to_char(%s, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')%s", q,
                     tz ? " || 'Z'" : "");
        else
            snprintf(buf, len, "concat(date_format(%s, '%%Y-%%m-%%dT%%H:%%i:%%s.%%f')%s)", q,
                     tz ? ", 'Z'" : "");
    } else {
        snprintf(buf, len, d == PG ? "%s::text" : "%s", q);
    }
}

/* Compares one expected JSON value with the database's text (NULL for SQL NULL). */
static void check_value(const char *table, const char *col, const char *type, json_t *want,
                        const char *got)
{
    if (json_is_null(want)) {
        if (got)
            fail_msg("%s.%s: expected null, found \"%s\"", table, col, got);
        return;
    }
    if (!got)
        fail_msg("%s.%s: expected a value, found null", table, col);
    if (json_is_integer(want)) {
        assert_int_equal(strtoll(got, NULL, 10), json_integer_value(want));
    } else if (json_is_real(want)) {
        double w = json_real_value(want), g = strtod(got, NULL);
        double tol = strcmp(type, "float") == 0 ? 1e-5 : 1e-12;
        if (fabs(w - g) > tol * fmax(1.0, fabs(w)))
            fail_msg("%s.%s: expected %.17g, found %s", table, col, w, got);
    } else if (json_is_boolean(want)) {
        bool g = strcmp(got, "t") == 0 || strcmp(got, "1") == 0 || strcmp(got, "true") == 0;
        assert_int_equal(g, json_is_true(want));
    } else if (strcmp(type, "json") == 0) {
        json_error_t jerr;
        json_t *g = json_loads(got, 0, &jerr);
        if (!g || !json_equal(g, want))
            fail_msg("%s.%s: JSON differs: %s", table, col, got);
        json_decref(g);
    } else if (json_is_object(want) || json_is_array(want)) {
        json_error_t jerr;
        json_t *g = json_loads(got, 0, &jerr);
        if (!g || !json_equal(g, want))
            fail_msg("%s.%s: JSON differs: %s", table, col, got);
        json_decref(g);
    } else {
        const char *w = json_string_value(want);
        assert_non_null(w);
        if (strcasecmp(w, got) != 0)
            fail_msg("%s.%s: expected \"%s\", found \"%s\"", table, col, w, got);
    }
}

/* Key text of an expected row, the same as the database renders it. */
static void key_text(json_t *row, json_t *keys, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < json_array_size(keys); k++) {
        json_t *v = json_object_get(row, json_string_value(json_array_get(keys, k)));
        int n = json_is_integer(v)
                    ? snprintf(buf + used, len - used, "%lld|", (long long)json_integer_value(v))
                    : snprintf(buf + used, len - used, "%s|", json_string_value(v));
        used += (size_t)n;
    }
}

typedef struct db {
    dialect d;
    PGconn *pg;
    MYSQL *my;
} db;

/* Runs sql; returns rows as a JSON array of arrays of strings/null. */
static json_t *query(db *c, const char *sql)
{
    json_t *rows = json_array();
    if (c->d == PG) {
        PGresult *res = PQexec(c->pg, sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            fail_msg("query failed: %s: %s", sql, PQerrorMessage(c->pg));
        for (int r = 0; r < PQntuples(res); r++) {
            json_t *row = json_array();
            for (int f = 0; f < PQnfields(res); f++)
                json_array_append_new(
                    row, PQgetisnull(res, r, f) ? json_null() : json_string(PQgetvalue(res, r, f)));
            json_array_append_new(rows, row);
        }
        PQclear(res);
        return rows;
    }
    if (mysql_query(c->my, sql) != 0)
        fail_msg("query failed: %s: %s", sql, mysql_error(c->my));
    MYSQL_RES *res = mysql_store_result(c->my);
    assert_non_null(res);
    unsigned nf = mysql_num_fields(res);
    MYSQL_ROW mr;
    while ((mr = mysql_fetch_row(res))) {
        json_t *row = json_array();
        for (unsigned f = 0; f < nf; f++)
            json_array_append_new(row, mr[f] ? json_string(mr[f]) : json_null());
        json_array_append_new(rows, row);
    }
    mysql_free_result(res);
    return rows;
}

/* Quoted identifier: "x" or `x` (test names never contain quotes). */
static void quote(dialect d, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, d == PG ? "\"%s\"" : "`%s`", name);
}

static void compare_table(db *c, const char *schema, json_t *tab)
{
    const char *name = json_string_value(json_object_get(tab, "table"));
    json_t *cols = json_object_get(tab, "columns");
    json_t *keys = json_object_get(tab, "key");
    json_t *rows = json_object_get(tab, "rows");
    char qs[128], qt[128], sql[8192], expr[512], q[160];
    quote(c->d, schema, qs, sizeof(qs));
    quote(c->d, name, qt, sizeof(qt));

    /* The DDL: the database's columns are exactly the active ones. */
    snprintf(sql, sizeof(sql),
             "SELECT column_name FROM information_schema.columns WHERE table_schema = '%s' "
             "AND table_name = '%s' ORDER BY column_name",
             schema, name);
    json_t *dbcols = query(c, sql);
    size_t active = 0;
    for (size_t i = 0; i < json_array_size(cols); i++) {
        json_t *col = json_array_get(cols, i);
        const char *cname = json_string_value(json_object_get(col, "name"));
        bool is_active = strcmp(json_string_value(json_object_get(col, "state")), "active") == 0;
        bool present = false;
        for (size_t j = 0; j < json_array_size(dbcols); j++)
            present =
                present ||
                strcmp(json_string_value(json_array_get(json_array_get(dbcols, j), 0)), cname) == 0;
        if (present != is_active)
            fail_msg("%s.%s: column is %s in the database but %s in the expected state", name,
                     cname, present ? "present" : "absent",
                     json_string_value(json_object_get(col, "state")));
        active += is_active;
    }
    assert_int_equal(json_array_size(dbcols), active);
    json_decref(dbcols);

    /* The rows: key text first ("k1|k2|"), then every active column. */
    size_t used = (size_t)snprintf(sql, sizeof(sql), "SELECT %s", c->d == PG ? "" : "concat(");
    for (size_t k = 0; k < json_array_size(keys); k++) {
        quote(c->d, json_string_value(json_array_get(keys, k)), q, sizeof(q));
        used += (size_t)snprintf(sql + used, sizeof(sql) - used,
                                 c->d == PG ? "%s || '|' || " : "%s, '|', ", q);
    }
    used += (size_t)snprintf(sql + used, sizeof(sql) - used, c->d == PG ? "''" : "'')");
    for (size_t i = 0; i < json_array_size(cols); i++) {
        json_t *col = json_array_get(cols, i);
        if (strcmp(json_string_value(json_object_get(col, "state")), "active") != 0)
            continue;
        quote(c->d, json_string_value(json_object_get(col, "name")), q, sizeof(q));
        column_expr(c->d, q, json_string_value(json_object_get(col, "type")), expr, sizeof(expr));
        used += (size_t)snprintf(sql + used, sizeof(sql) - used, ", %s", expr);
    }
    snprintf(sql + used, sizeof(sql) - used, " FROM %s.%s", qs, qt);
    json_t *got = query(c, sql);
    assert_int_equal(json_array_size(got),
                     (size_t)json_integer_value(json_object_get(tab, "row_count")));
    assert_int_equal(json_array_size(got), json_array_size(rows));
    json_t *by_key = json_object();
    for (size_t r = 0; r < json_array_size(got); r++) {
        json_t *row = json_array_get(got, r);
        json_object_set(by_key, json_string_value(json_array_get(row, 0)), row);
    }
    for (size_t r = 0; r < json_array_size(rows); r++) {
        json_t *want = json_array_get(rows, r);
        char kt[512];
        key_text(want, keys, kt, sizeof(kt));
        json_t *row = json_object_get(by_key, kt);
        if (!row)
            fail_msg("%s: row with key %s is missing from the database", name, kt);
        size_t f = 1;
        for (size_t i = 0; i < json_array_size(cols); i++) {
            json_t *col = json_array_get(cols, i);
            if (strcmp(json_string_value(json_object_get(col, "state")), "active") != 0)
                continue;
            const char *cname = json_string_value(json_object_get(col, "name"));
            json_t *g = json_array_get(row, f++);
            check_value(name, cname, json_string_value(json_object_get(col, "type")),
                        json_object_get(want, cname),
                        json_is_null(g) ? NULL : json_string_value(g));
        }
    }
    json_decref(by_key);
    json_decref(got);
}

/* Runs spec_file (under the source tree) for events changes with seed into a fresh schema
 * and compares every table with --expect; ntables tables, at least min_changes schema
 * changes among them. */
static void run_and_compare(dialect d, const char *dsn_var, const char *spec_file, const char *seed,
                            const char *events, size_t ntables, int min_changes)
{
    const char *dsn = kf_test_env(dsn_var);
    char spec[1024], schema[128], expect[1200];
    snprintf(spec, sizeof(spec), "%s/%s", kf_test_env("KFLEET_SOURCE_DIR"), spec_file);
    sim_unique(schema, sizeof(schema), "simsql");
    char *dir = mkdtemp(strdup("/tmp/kfleet-sim-sql-XXXXXX"));
    assert_non_null(dir);
    snprintf(expect, sizeof(expect), "%s/expect.json", dir);
    db c = {.d = d};
    if (d == PG) {
        c.pg = PQconnectdb(dsn);
        assert_int_equal(PQstatus(c.pg), CONNECTION_OK);
    } else {
        kf_test_dsn p;
        assert_true(kf_test_dsn_parse(dsn, "mysql", 3306, &p));
        c.my = mysql_init(NULL);
        assert_non_null(
            mysql_real_connect(c.my, p.host, p.user, p.password, p.db, p.port, NULL, 0));
        /* The simulator creates the test's own database; MariaDB needs the right to. */
        snprintf(schema, sizeof(schema), "%s", p.db);
    }
    char *argv[] = {"kfleet-sim",  "--to",         d == PG ? "postgres" : "mysql",
                    "--dsn",       (char *)dsn,    "--db-schema",
                    schema,        "--replace",    "--spec",
                    spec,          "--seed",       (char *)seed,
                    "--events",    (char *)events, "--state-dir",
                    dir,           "--expect",     expect,
                    "--log-level", "warn",         NULL};
    assert_int_equal(sim_run(argv, NULL), 0);
    json_t *root = sim_load_json(expect);
    json_t *tables = json_object_get(root, "tables");
    assert_int_equal(json_array_size(tables), ntables);
    int changes = 0;
    for (size_t i = 0; i < json_array_size(tables); i++) {
        json_t *tab = json_array_get(tables, i);
        changes += (int)json_integer_value(json_object_get(tab, "schema_version")) - 1;
        compare_table(&c, schema, tab);
    }
    assert_true(changes >= min_changes); /* the run exercised evolution DDL */
    json_decref(root);
    if (d == PG) {
        char sql[256];
        snprintf(sql, sizeof(sql), "DROP SCHEMA \"%s\" CASCADE", schema);
        PQclear(PQexec(c.pg, sql));
        PQfinish(c.pg);
    } else {
        mysql_close(c.my);
    }
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(dir);
}

static void test_postgres_matches_expect(void **state)
{
    (void)state;
    run_and_compare(PG, "KFLEET_PG_DSN", "schemas/sim/shop.yaml", "99", "12000", 3, 3);
}

static void test_mysql_matches_expect(void **state)
{
    (void)state;
    run_and_compare(MY, "KFLEET_MYSQL_DSN", "schemas/sim/shop.yaml", "99", "12000", 3, 3);
}

/* Batches that change the same keys again and again (so pending statements are sent before a
 * repeated key), composite and uuid keys, and text that COPY and literals must escape. */
static void test_postgres_churn_matches_expect(void **state)
{
    (void)state;
    run_and_compare(PG, "KFLEET_PG_DSN", "tests/integration/sim/churn.yaml", "5", "6000", 2, 2);
}

static void test_mysql_churn_matches_expect(void **state)
{
    (void)state;
    run_and_compare(MY, "KFLEET_MYSQL_DSN", "tests/integration/sim/churn.yaml", "5", "6000", 2, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_postgres_matches_expect),
        cmocka_unit_test(test_mysql_matches_expect),
        cmocka_unit_test(test_postgres_churn_matches_expect),
        cmocka_unit_test(test_mysql_churn_matches_expect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
