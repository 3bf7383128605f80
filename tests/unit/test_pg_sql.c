/* Unit tests for the Postgres SQL helpers: SQLSTATE classification, identifier quoting (with
 * and without a libpq connection object), the type mapping both ways, and DDL from table
 * descriptions and evolution plans. No server needed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "kfleet/pg.h"

static void sqlstates_are_classified(void **state)
{
    (void)state;
    assert_int_equal(kf_pg_classify("08006"), KF_PG_RETRY);
    assert_int_equal(kf_pg_classify("08000"), KF_PG_RETRY);
    assert_int_equal(kf_pg_classify("40001"), KF_PG_RETRY);
    assert_int_equal(kf_pg_classify("40P01"), KF_PG_RETRY);
    assert_int_equal(kf_pg_classify("57P01"), KF_PG_RETRY);
    assert_int_equal(kf_pg_classify(""), KF_PG_RETRY);
    assert_int_equal(kf_pg_classify("23505"), KF_PG_DATA);
    assert_int_equal(kf_pg_classify("23502"), KF_PG_DATA);
    assert_int_equal(kf_pg_classify("22P02"), KF_PG_DATA);
    assert_int_equal(kf_pg_classify("42P01"), KF_PG_FAIL);
    assert_int_equal(kf_pg_classify("40002"), KF_PG_FAIL);
    assert_true(kf_pg_sqlstate_retriable("40P01"));
    assert_false(kf_pg_sqlstate_retriable("42501"));
}

static void quote(PGconn *conn, const char *name, const char *expect)
{
    kf_buf b;
    kf_buf_init(&b);
    kf_error err;
    assert_int_equal(kf_pg_ident_append(conn, &b, name, &err), KF_OK);
    assert_string_equal((const char *)b.data, expect);
    kf_buf_free(&b);
}

static void identifiers_are_quoted(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"orders", "\"orders\""},
        {"Order Items", "\"Order Items\""},
        {"x\"; DROP TABLE t; --", "\"x\"\"; DROP TABLE t; --\""},
        {"prix (\xe2\x82\xac)", "\"prix (\xe2\x82\xac)\""},
    };
    /* a connection object that never connected still carries the client encoding */
    PGconn *conn = PQconnectStart("host=/nonexistent-dir port=1 connect_timeout=1");
    assert_non_null(conn);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        quote(NULL, cases[i][0], cases[i][1]);
        quote(conn, cases[i][0], cases[i][1]);
    }
    PQfinish(conn);
}

static void bad_identifiers_are_rejected(void **state)
{
    (void)state;
    kf_buf b;
    kf_buf_init(&b);
    kf_error err;
    assert_int_equal(kf_pg_ident_append(NULL, &b, "", &err), KF_ERR_INVALID);
    assert_int_equal(kf_pg_ident_append(NULL, &b, "bad\xff", &err), KF_ERR_INVALID);
    char longname[80];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(kf_pg_ident_append(NULL, &b, longname, &err), KF_ERR_INVALID);
    assert_int_equal(b.len, 0);
    kf_buf_free(&b);
}

static void types_map_both_ways(void **state)
{
    (void)state;
    static const struct {
        const char *spec;   /* kf_coltype_parse */
        const char *pg;     /* kf_pg_type_name */
        const char *format; /* format_type() spelling */
    } cases[] = {
        {"smallint", "smallint", "smallint"},
        {"int", "integer", "integer"},
        {"bigint", "bigint", "bigint"},
        {"real", "real", "real"},
        {"double precision", "double precision", "double precision"},
        {"decimal(10,2)", "numeric(10,2)", "numeric(10,2)"},
        {"boolean", "boolean", "boolean"},
        {"text", "text", "text"},
        {"varchar(64)", "varchar(64)", "character varying(64)"},
        {"bytea", "bytea", "bytea"},
        {"date", "date", "date"},
        {"timestamp", "timestamp", "timestamp without time zone"},
        {"timestamptz", "timestamptz", "timestamp with time zone"},
        {"uuid", "uuid", "uuid"},
        {"jsonb", "jsonb", "jsonb"},
    };
    kf_error err;
    char buf[64];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kf_column c, back;
        memset(&c, 0, sizeof(c));
        memset(&back, 0, sizeof(back));
        assert_int_equal(kf_coltype_parse(cases[i].spec, &c, &err), KF_OK);
        assert_string_equal(kf_pg_type_name(&c, buf, sizeof(buf)), cases[i].pg);
        assert_int_equal(kf_pg_type_parse(cases[i].format, &back), KF_OK);
        assert_int_equal(back.type, c.type);
        assert_int_equal(back.length, c.length);
        assert_int_equal(back.precision, c.precision);
        assert_int_equal(back.scale, c.scale);
    }
    kf_column x;
    assert_int_equal(kf_pg_type_parse("tsvector", &x), KF_ERR_NOT_FOUND);
}

static kf_table *orders(bool with_note)
{
    kf_error err;
    kf_table *t = kf_table_new("kfleet", "shop", NULL, "orders", &err);
    assert_non_null(t);
    kf_column c;
    memset(&c, 0, sizeof(c));
    c.name = "id";
    c.type = KF_COL_INT;
    c.pk_order = 1;
    assert_int_equal(kf_table_add_column(t, &c, &err), KF_OK);
    memset(&c, 0, sizeof(c));
    c.name = "x\"y";
    c.type = KF_COL_VARCHAR;
    c.length = 10;
    assert_int_equal(kf_table_add_column(t, &c, &err), KF_OK);
    if (with_note) {
        memset(&c, 0, sizeof(c));
        c.name = "note";
        c.type = KF_COL_TEXT;
        c.nullable = true;
        assert_int_equal(kf_table_add_column(t, &c, &err), KF_OK);
    }
    return t;
}

static void create_table_quotes_everything(void **state)
{
    (void)state;
    kf_table *t = orders(false);
    kf_buf b;
    kf_buf_init(&b);
    kf_error err;
    assert_int_equal(kf_pg_create_table_sql(NULL, &b, "public", "ord\"ers", t, "is_deleted", &err),
                     KF_OK);
    assert_string_equal((const char *)b.data,
                        "CREATE TABLE IF NOT EXISTS \"public\".\"ord\"\"ers\" (\"id\" integer NOT "
                        "NULL, \"x\"\"y\" varchar(10) NOT NULL, \"is_deleted\" boolean NOT NULL "
                        "DEFAULT false, PRIMARY KEY (\"id\"));");
    kf_buf_free(&b);
    kf_table_destroy(t);
}

static void plan_becomes_one_alter_table(void **state)
{
    (void)state;
    kf_table *old_t = orders(false), *new_t = orders(true);
    kf_error err;
    /* widen x"y to varchar(40), relax it, and add note */
    kf_table *wide = kf_table_new("kfleet", "shop", NULL, "orders", &err);
    for (size_t i = 0; i < kf_table_ncolumns(new_t); i++) {
        kf_column c = *kf_table_column(new_t, i);
        if (strcmp(c.name, "x\"y") == 0) {
            c.length = 40;
            c.nullable = true;
        }
        assert_int_equal(kf_table_add_column(wide, &c, &err), KF_OK);
    }
    kf_plan *p = kf_plan_compute(old_t, wide, &err);
    assert_non_null(p);
    kf_buf b;
    kf_buf_init(&b);
    assert_int_equal(kf_pg_plan_sql(NULL, &b, "s", "orders", p, &err), KF_OK);
    assert_string_equal((const char *)b.data,
                        "ALTER TABLE \"s\".\"orders\" ALTER COLUMN \"x\"\"y\" TYPE varchar(40), "
                        "ALTER COLUMN \"x\"\"y\" DROP NOT NULL, ADD COLUMN IF NOT EXISTS \"note\" "
                        "text;");
    kf_plan_destroy(p);
    /* a widening Postgres must rewrite the table for goes through text; one it can record in
     * the catalog alone has no USING, which would force the rewrite */
    kf_table *wider = kf_table_new("kfleet", "shop", NULL, "orders", &err);
    for (size_t i = 0; i < kf_table_ncolumns(wide); i++) {
        kf_column c = *kf_table_column(wide, i);
        if (strcmp(c.name, "id") == 0)
            c.type = KF_COL_BIGINT;
        if (strcmp(c.name, "x\"y") == 0)
            c.type = KF_COL_TEXT;
        assert_int_equal(kf_table_add_column(wider, &c, &err), KF_OK);
    }
    p = kf_plan_compute(wide, wider, &err);
    assert_non_null(p);
    b.len = 0;
    assert_int_equal(kf_pg_plan_sql(NULL, &b, "s", "orders", p, &err), KF_OK);
    assert_string_equal((const char *)b.data,
                        "ALTER TABLE \"s\".\"orders\" ALTER COLUMN \"id\" TYPE bigint USING "
                        "\"id\"::text::bigint, ALTER COLUMN \"x\"\"y\" TYPE text;");
    kf_plan_destroy(p);
    kf_table_destroy(wider);
    /* nothing to do: nothing appended */
    p = kf_plan_compute(wide, wide, &err);
    b.len = 0;
    assert_int_equal(kf_pg_plan_sql(NULL, &b, "s", "orders", p, &err), KF_OK);
    assert_int_equal(b.len, 0);
    kf_plan_destroy(p);
    kf_buf_free(&b);
    kf_table_destroy(wide);
    kf_table_destroy(old_t);
    kf_table_destroy(new_t);
}

static void printf_grows_the_buffer(void **state)
{
    (void)state;
    kf_buf b;
    kf_buf_init(&b);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(kf_pg_buf_printf(&b, "%d,", i % 10), KF_OK);
    assert_int_equal(b.len, 2000);
    assert_int_equal(b.data[b.len], '\0');
    kf_buf_free(&b);
}

static void connect_rejects_unknown_keywords(void **state)
{
    (void)state;
    const char *kv[] = {"connect_timeout", "1", "no_such_keyword", "x"};
    kf_error err;
    PGconn *c = kf_pg_connect("host=/nonexistent-dir", kv, 2, &err);
    assert_null(c);
    assert_int_equal(err.code, KF_ERR_CONFIG);
    assert_non_null(strstr(err.message, "no_such_keyword"));
    c = kf_pg_connect("host=/nonexistent-dir port=1", kv, 1, &err);
    assert_null(c);
    assert_int_equal(err.code, KF_ERR_PG);
    assert_true(err.retriable);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sqlstates_are_classified),
        cmocka_unit_test(identifiers_are_quoted),
        cmocka_unit_test(bad_identifiers_are_rejected),
        cmocka_unit_test(types_map_both_ways),
        cmocka_unit_test(create_table_quotes_everything),
        cmocka_unit_test(plan_becomes_one_alter_table),
        cmocka_unit_test(printf_grows_the_buffer),
        cmocka_unit_test(connect_rejects_unknown_keywords),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
