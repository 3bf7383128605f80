/* Integration test of the COPY binary encoding kfleet-sink-pg sends, against the real server:
 * the same cells copied as text (kf_pg_copy_cell) into one table and as binary
 * (kf_pg_copy_bin_cell, in the form of each column's catalog type) into its twin leave the
 * same rows, edge values included (integer limits, numeric scales and exponents, NaN and
 * infinities, dates and timestamps far from 1970, text with control characters, every byte,
 * uuid spellings, jsonb, char padding); values Postgres refuses are refused in both formats
 * with the same SQLSTATE. */
#include "kf_test_env.h"

#include <inttypes.h>
#include <math.h>

#include <libpq-fe.h>

#include "kfleet/event.h"
#include "kfleet/pg.h"
#include "kfleet/table.h"

/* One column: its Postgres type and the event column type its values come from. */
typedef struct tcol {
    const char *name;
    const char *pg_type;
    const char *event_type; /* kf_coltype_parse spec */
    int time_precision;     /* for timestamp events */
} tcol;

static const tcol COLS[] = {
    {"i2", "smallint", "smallint", 0},
    {"i4", "integer", "int", 0},
    {"i8", "bigint", "bigint", 0},
    {"iw", "bigint", "int", 0}, /* an int event column kept wide */
    {"n", "numeric(12,3)", "decimal(12,3)", 0},
    {"ns", "numeric", "decimal(38,10)", 0}, /* string cells */
    {"ni", "numeric(22,2)", "bigint", 0},
    {"r", "real", "float", 0},
    {"d", "double precision", "double", 0},
    {"df", "double precision", "float", 0},
    {"b", "boolean", "boolean", 0},
    {"t", "text", "text", 0},
    {"v", "varchar(20)", "varchar(20)", 0},
    {"c", "char(5)", "text", 0},
    {"by", "bytea", "bytes", 0},
    {"dt", "date", "date", 0},
    {"ts", "timestamp", "timestamp", 6},
    {"tms", "timestamp(3)", "timestamp", 9},
    {"tm", "timestamp", "timestamp", 3},
    {"u", "uuid", "uuid", 0},
    {"us", "uuid", "text", 0},
    {"j", "jsonb", "json", 0},
    {"js", "json", "json", 0},
};
#define NCOLS (sizeof(COLS) / sizeof(COLS[0]))
#define NROWS 6

/* The cells of row r, column k (strings stay valid: literals or static buffers). */
static kf_cell cell_at(size_t r, size_t k, const kf_column *col)
{
    static uint8_t dec[NROWS][NCOLS][32];
    static uint8_t all_bytes[256];
    kf_cell c = {.kind = KF_CELL_NULL};
    if (r == NROWS - 1)
        return c; /* a row of nulls (but the key) */
    const char *name = COLS[k].name;
    static const int64_t i2[] = {INT16_MIN, INT16_MAX, 0, -1, 7};
    static const int64_t i4[] = {INT32_MIN, INT32_MAX, 0, -1, 12345};
    static const int64_t i8[] = {INT64_MIN + 1, INT64_MAX, 0, -1, 1234567890123};
    static const char *const n[] = {"123456789.123", "-0.001", "0", "1.234", "-99.5"};
    static const char *const ns[] = {"1.5e3", "-0.000123", "NaN", "12345678901234567890.1234567890",
                                     "-Infinity"};
    static const double r4[] = {1.5, -0.0, 3.4028234663852886e38, 1e-45, NAN};
    static const double d8[] = {0.1, -1e308, 5e-324, INFINITY, -INFINITY};
    static const char *const t[] = {"plain", "tab\there\nnew line\\back", "",
                                    "\xc3\xa9t\xc3\xa9 \xe2\x82\xac", "'quoted' \"double\""};
    static const char *const v[] = {"short", "exactly twenty chars", "", "x", "a b"};
    static const int64_t dt[] = {0, 10957, -2440588, 2145042905, -1};
    static const int64_t ts[] = {0, INT64_C(946684800000000), INT64_C(-62135596800000000),
                                 INT64_C(253402300799999999), INT64_C(-1)};
    static const int64_t tms[] = {INT64_C(1709528767123456789), 0, INT64_C(-1500),
                                  INT64_C(946684800000999999), INT64_C(1999)};
    static const int64_t tm[] = {INT64_C(1709528767123), 0, -1, INT64_C(-30610224000000), 999};
    static const char *const u[] = {
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12}",
        "a0eebc999c0b4ef8bb6d6bb9bd380a13", "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a14",
        "00000000-0000-0000-0000-000000000000"};
    static const char *const j[] = {"{\"k\": [1, 2.50, null, true]}", "\"\\u00e9\\t\"", "[]",
                                    "{\"b\": 1, \"a\": {\"c\": \"x\"}}", "12.0"};
    if (strcmp(name, "i2") == 0 || strcmp(name, "i4") == 0 || strcmp(name, "i8") == 0 ||
        strcmp(name, "iw") == 0 || strcmp(name, "ni") == 0 || strcmp(name, "dt") == 0 ||
        strcmp(name, "ts") == 0 || strcmp(name, "tms") == 0 || strcmp(name, "tm") == 0) {
        c.kind = KF_CELL_INT;
        c.v.i = name[0] == 'd'             ? dt[r]
                : strcmp(name, "ts") == 0  ? ts[r]
                : strcmp(name, "tms") == 0 ? tms[r]
                : strcmp(name, "tm") == 0  ? tm[r]
                : strcmp(name, "i2") == 0  ? i2[r]
                : strcmp(name, "i8") == 0  ? i8[r]
                : strcmp(name, "ni") == 0  ? i8[r] / 1000
                                           : i4[r];
    } else if (strcmp(name, "r") == 0 || strcmp(name, "df") == 0) {
        c.kind = KF_CELL_DOUBLE;
        c.v.d = (double)(float)r4[r];
    } else if (strcmp(name, "d") == 0) {
        c.kind = KF_CELL_DOUBLE;
        c.v.d = d8[r];
    } else if (strcmp(name, "b") == 0) {
        c.kind = KF_CELL_BOOL;
        c.v.b = r % 2 == 0;
    } else if (strcmp(name, "n") == 0) {
        size_t len;
        kf_error err;
        if (kf_decimal_parse(n[r], strlen(n[r]), col->precision, col->scale, dec[r][k],
                             sizeof(dec[r][k]), &len, &err) != KF_OK)
            fail_msg("%s: %s", n[r], err.message);
        c.kind = KF_CELL_BYTES;
        c.v.s.ptr = (const char *)dec[r][k];
        c.v.s.len = len;
    } else if (strcmp(name, "by") == 0) {
        for (int i = 0; i < 256; i++)
            all_bytes[i] = (uint8_t)i;
        c.kind = KF_CELL_BYTES;
        c.v.s.ptr = (const char *)all_bytes;
        c.v.s.len = r == 0 ? 256 : r;
    } else {
        const char *s = strcmp(name, "ns") == 0  ? ns[r]
                        : strcmp(name, "t") == 0 ? t[r]
                        : strcmp(name, "v") == 0 ? v[r]
                        : strcmp(name, "c") == 0 ? v[r] + (r == 1 ? 15 : 0)
                        : name[0] == 'u'         ? u[r]
                                                 : j[r];
        c.kind = KF_CELL_STRING;
        c.v.s.ptr = s;
        c.v.s.len = strlen(s);
    }
    return c;
}

static PGconn *connect_pg(void)
{
    PGconn *c = PQconnectdb(kf_test_env("KFLEET_PG_DSN"));
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("could not connect: %s", PQerrorMessage(c));
    return c;
}

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

static void create_twin(PGconn *c, const char *table)
{
    char sql[2048];
    int n = snprintf(sql, sizeof(sql), "CREATE TABLE \"%s\" (k integer PRIMARY KEY", table);
    for (size_t i = 0; i < NCOLS; i++)
        n += snprintf(sql + n, sizeof(sql) - (size_t)n, ", %s %s", COLS[i].name, COLS[i].pg_type);
    snprintf(sql + n, sizeof(sql) - (size_t)n, ")");
    exec_ok(c, sql);
}

/* The binary form of each column's catalog type. */
static void catalog_forms(PGconn *c, const char *table, kf_pg_bin *bin)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = '\"%s\"'::regclass "
             "AND a.attnum > 1 AND NOT a.attisdropped ORDER BY a.attnum",
             table);
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), NCOLS);
    for (size_t i = 0; i < NCOLS; i++) {
        bin[i] = kf_pg_bin_of_oid((unsigned)strtoul(PQgetvalue(r, (int)i, 0), NULL, 10));
        if (bin[i] == KF_PG_BIN_NONE)
            fail_msg("no binary form for column %s", COLS[i].name);
    }
    PQclear(r);
}

static void event_columns(kf_column *cols)
{
    for (size_t i = 0; i < NCOLS; i++) {
        kf_error err;
        memset(&cols[i], 0, sizeof(cols[i]));
        cols[i].name = COLS[i].name;
        if (kf_coltype_parse(COLS[i].event_type, &cols[i], &err) != KF_OK)
            fail_msg("%s", err.message);
        if (COLS[i].time_precision)
            cols[i].time_precision = COLS[i].time_precision;
        cols[i].nullable = true;
    }
}

/* Appends row r (key r + 1) in the format asked for. */
static void append_row(kf_buf *b, size_t r, const kf_column *cols, const kf_pg_bin *bin,
                       bool binary)
{
    kf_error err;
    kf_cell key = {.kind = KF_CELL_INT};
    key.v.i = (int64_t)r + 1;
    kf_column keycol;
    memset(&keycol, 0, sizeof(keycol));
    keycol.name = "k";
    keycol.type = KF_COL_INT;
    if (binary) {
        uint8_t count[2] = {0, (uint8_t)(NCOLS + 1)};
        assert_int_equal(kf_pg_buf_append(b, (const char *)count, 2), KF_OK);
        assert_int_equal(kf_pg_copy_bin_cell(b, KF_PG_BIN_INT4, &keycol, &key, &err), KF_OK);
    } else {
        assert_int_equal(kf_pg_copy_cell(b, &keycol, &key, &err), KF_OK);
    }
    for (size_t k = 0; k < NCOLS; k++) {
        kf_cell cell = cell_at(r, k, &cols[k]);
        int rc;
        if (binary) {
            assert_true(kf_pg_bin_accepts(bin[k], &cols[k]));
            rc = kf_pg_copy_bin_cell(b, bin[k], &cols[k], &cell, &err);
        } else {
            assert_int_equal(kf_pg_buf_append(b, "\t", 1), KF_OK);
            rc = kf_pg_copy_cell(b, &cols[k], &cell, &err);
        }
        if (rc != KF_OK)
            fail_msg("row %zu column %s: %s", r, COLS[k].name, err.message);
    }
    if (!binary)
        assert_int_equal(kf_pg_buf_append(b, "\n", 1), KF_OK);
}

/* COPYs data into table; returns the SQLSTATE of a failure ("" when it went in). */
static void copy_in(PGconn *c, const char *table, bool binary, const kf_buf *data, char *state)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "COPY \"%s\" FROM STDIN%s", table, binary ? " (FORMAT binary)" : "");
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COPY_IN);
    PQclear(r);
    kf_buf all;
    kf_buf_init(&all);
    if (binary)
        assert_int_equal(kf_pg_buf_append(&all, kf_pg_copy_bin_header, KF_PG_COPY_BIN_HEADER_LEN),
                         KF_OK);
    assert_int_equal(kf_pg_buf_append(&all, (const char *)data->data, data->len), KF_OK);
    if (binary)
        assert_int_equal(kf_pg_buf_append(&all, KF_PG_COPY_BIN_TRAILER, 2), KF_OK);
    kf_error err;
    PGresult *res = NULL;
    int rc = kf_pg_copy_send(c, all.data, all.len, &res, &err);
    snprintf(state, 6, "%s", rc == KF_OK ? "" : kf_pg_sqlstate(res));
    PQclear(res);
    kf_buf_free(&all);
}

static void binary_rows_equal_text_rows(void **state)
{
    (void)state;
    PGconn *c = connect_pg();
    char ttext[80], tbin[84], sql[512];
    kf_test_unique_name(ttext, sizeof(ttext), "bin_text");
    snprintf(tbin, sizeof(tbin), "%s_b", ttext);
    create_twin(c, ttext);
    create_twin(c, tbin);
    kf_pg_bin bin[NCOLS];
    catalog_forms(c, tbin, bin);
    kf_column cols[NCOLS];
    event_columns(cols);
    kf_buf text, binary;
    kf_buf_init(&text);
    kf_buf_init(&binary);
    for (size_t r = 0; r < NROWS; r++) {
        append_row(&text, r, cols, bin, false);
        append_row(&binary, r, cols, bin, true);
    }
    char st[8];
    copy_in(c, ttext, false, &text, st);
    assert_string_equal(st, "");
    copy_in(c, tbin, true, &binary, st);
    assert_string_equal(st, "");
    /* the rows' text forms (json has no equality operator) compared both ways */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM ((SELECT x::text FROM \"%s\" x EXCEPT ALL SELECT y::text FROM "
             "\"%s\" y) UNION ALL (SELECT y::text FROM \"%s\" y EXCEPT ALL SELECT x::text FROM "
             "\"%s\" x)) d",
             ttext, tbin, tbin, ttext);
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    if (strcmp(PQgetvalue(r, 0, 0), "0") != 0) {
        PQclear(r);
        snprintf(sql, sizeof(sql),
                 "SELECT x::text, y::text FROM \"%s\" x JOIN \"%s\" y USING (k) WHERE x::text "
                 "<> y::text",
                 ttext, tbin);
        r = PQexec(c, sql);
        for (int i = 0; i < PQntuples(r); i++)
            fprintf(stderr, "text:   %s\nbinary: %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
        fail_msg("binary COPY left other rows than text COPY");
    }
    PQclear(r);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\"", tbin);
    r = PQexec(c, sql);
    assert_string_equal(PQgetvalue(r, 0, 0), "6");
    PQclear(r);
    snprintf(sql, sizeof(sql), "DROP TABLE \"%s\", \"%s\"", ttext, tbin);
    exec_ok(c, sql);
    kf_buf_free(&text);
    kf_buf_free(&binary);
    PQfinish(c);
}

/* A one-column table of type pg_type; copies value (as event column event_type) in both
 * formats and expects both refused with want (or both in when want is ""). */
static void refused_alike(PGconn *c, const char *pg_type, const char *event_type, kf_cell cell,
                          const char *want)
{
    char table[80], sql[512];
    kf_test_unique_name(table, sizeof(table), "bin_ref");
    snprintf(sql, sizeof(sql), "CREATE TABLE \"%s\" (x %s)", table, pg_type);
    exec_ok(c, sql);
    snprintf(sql, sizeof(sql),
             "SELECT atttypid FROM pg_attribute WHERE attrelid = '\"%s\"'::regclass AND attnum = 1",
             table);
    PGresult *r = PQexec(c, sql);
    kf_pg_bin bin = kf_pg_bin_of_oid((unsigned)strtoul(PQgetvalue(r, 0, 0), NULL, 10));
    PQclear(r);
    kf_column col;
    memset(&col, 0, sizeof(col));
    col.name = "x";
    kf_error err;
    assert_int_equal(kf_coltype_parse(event_type, &col, &err), KF_OK);
    kf_buf text, binary;
    kf_buf_init(&text);
    kf_buf_init(&binary);
    assert_int_equal(kf_pg_copy_cell(&text, &col, &cell, &err), KF_OK);
    assert_int_equal(kf_pg_buf_append(&text, "\n", 1), KF_OK);
    const uint8_t count[2] = {0, 1};
    assert_int_equal(kf_pg_buf_append(&binary, (const char *)count, 2), KF_OK);
    assert_int_equal(kf_pg_copy_bin_cell(&binary, bin, &col, &cell, &err), KF_OK);
    char st_text[8], st_bin[8];
    copy_in(c, table, false, &text, st_text);
    copy_in(c, table, true, &binary, st_bin);
    assert_string_equal(st_text, want);
    assert_string_equal(st_bin, want);
    snprintf(sql, sizeof(sql), "DROP TABLE \"%s\"", table);
    exec_ok(c, sql);
    kf_buf_free(&text);
    kf_buf_free(&binary);
}

static void refusals_match_text(void **state)
{
    (void)state;
    PGconn *c = connect_pg();
    kf_cell s = {.kind = KF_CELL_STRING};
    s.v.s.ptr = "twenty-one characters";
    s.v.s.len = strlen(s.v.s.ptr);
    refused_alike(c, "varchar(20)", "varchar(40)", s, "22001");
    s.v.s.ptr = "{broken";
    s.v.s.len = strlen(s.v.s.ptr);
    refused_alike(c, "jsonb", "json", s, "22P02");
    s.v.s.ptr = "123456789012.5";
    s.v.s.len = strlen(s.v.s.ptr);
    refused_alike(c, "numeric(12,3)", "decimal(20,3)", s, "22003");
    s.v.s.ptr = "Infinity";
    s.v.s.len = strlen(s.v.s.ptr);
    refused_alike(c, "numeric(12,3)", "decimal(20,3)", s, "22003");
    s.v.s.ptr = "\xff\xfe";
    s.v.s.len = 2;
    refused_alike(c, "text", "text", s, "22021");
    /* rounding to the column's scale is Postgres' in both */
    s.v.s.ptr = "1.23456";
    s.v.s.len = strlen(s.v.s.ptr);
    refused_alike(c, "numeric(12,3)", "decimal(20,5)", s, "");
    kf_cell t = {.kind = KF_CELL_INT};
    t.v.i = INT64_C(-210866803200000000); /* the first microsecond Postgres holds */
    refused_alike(c, "timestamp", "timestamp", t, "");
    PQfinish(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(binary_rows_equal_text_rows),
        cmocka_unit_test(refusals_match_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
