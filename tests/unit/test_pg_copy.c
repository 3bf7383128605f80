/* Unit tests for the COPY text encoding of cells: escaping, dates, timestamps, numbers,
 * decimals, bytes, and values Postgres could not store. No server needed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "kfleet/pg.h"

static kf_column col_of(kf_coltype type)
{
    kf_column c;
    memset(&c, 0, sizeof(c));
    c.name = "c";
    c.type = type;
    c.nullable = true;
    if (type == KF_COL_TIMESTAMP)
        c.time_precision = 6;
    return c;
}

/* Encodes one cell into a fresh buffer and compares with expect. */
static void expect_cell(const kf_column *col, const kf_cell *cell, const char *expect)
{
    kf_buf b;
    kf_buf_init(&b);
    kf_error err;
    assert_int_equal(kf_pg_copy_cell(&b, col, cell, &err), KF_OK);
    assert_non_null(b.data);
    assert_int_equal(b.len, strlen(expect));
    assert_string_equal((const char *)b.data, expect);
    kf_buf_free(&b);
}

static kf_cell int_cell(int64_t v)
{
    kf_cell c = {.kind = KF_CELL_INT};
    c.v.i = v;
    return c;
}

static void escapes_control_characters(void **state)
{
    (void)state;
    kf_column c = col_of(KF_COL_TEXT);
    const char s[] = "a\tb\nc\\d\re";
    kf_cell cell = {.kind = KF_CELL_STRING};
    cell.v.s.ptr = s;
    cell.v.s.len = sizeof(s) - 1;
    expect_cell(&c, &cell, "a\\tb\\nc\\\\d\\re");
    kf_cell null = {.kind = KF_CELL_NULL};
    expect_cell(&c, &null, "\\N");
}

static void nul_bytes_are_refused(void **state)
{
    (void)state;
    kf_column c = col_of(KF_COL_TEXT);
    kf_cell cell = {.kind = KF_CELL_STRING};
    cell.v.s.ptr = "a\0b";
    cell.v.s.len = 3;
    kf_buf b;
    kf_buf_init(&b);
    kf_error err;
    assert_int_equal(kf_pg_copy_cell(&b, &c, &cell, &err), KF_ERR_INVALID);
    assert_int_equal(b.len, 0);
    kf_buf_free(&b);
}

static void integers_and_booleans(void **state)
{
    (void)state;
    kf_column c = col_of(KF_COL_BIGINT);
    kf_cell v = int_cell(INT64_MIN);
    expect_cell(&c, &v, "-9223372036854775808");
    v = int_cell(0);
    expect_cell(&c, &v, "0");
    v = int_cell(1234567);
    expect_cell(&c, &v, "1234567");
    kf_column b = col_of(KF_COL_BOOL);
    kf_cell t = {.kind = KF_CELL_BOOL};
    t.v.b = true;
    expect_cell(&b, &t, "t");
    t.v.b = false;
    expect_cell(&b, &t, "f");
}

static void dates_are_iso(void **state)
{
    (void)state;
    kf_column c = col_of(KF_COL_DATE);
    kf_cell v = int_cell(0);
    expect_cell(&c, &v, "1970-01-01");
    v = int_cell(19723); /* 2024-01-01 */
    expect_cell(&c, &v, "2024-01-01");
    v = int_cell(-1);
    expect_cell(&c, &v, "1969-12-31");
    v = int_cell(11016); /* 2000-02-29 */
    expect_cell(&c, &v, "2000-02-29");
    v = int_cell(-719163); /* 0000-12-31 = 1 BC */
    expect_cell(&c, &v, "0001-12-31 BC");
}

static void timestamps_in_every_unit(void **state)
{
    (void)state;
    kf_column c = col_of(KF_COL_TIMESTAMP);
    kf_cell v = int_cell(1704067200123456); /* 2024-01-01 00:00:00.123456 */
    expect_cell(&c, &v, "2024-01-01 00:00:00.123456");
    v = int_cell(-1);
    expect_cell(&c, &v, "1969-12-31 23:59:59.999999");
    c.time_precision = 3;
    v = int_cell(1704070861001); /* 01:01:01.001 */
    expect_cell(&c, &v, "2024-01-01 01:01:01.001000");
    c.time_precision = 9;
    v = int_cell(1704067200123456789);
    expect_cell(&c, &v, "2024-01-01 00:00:00.123456");
    c.time_precision = 3;
    v = int_cell(INT64_MAX);
    kf_buf b;
    kf_buf_init(&b);
    kf_error err;
    assert_int_equal(kf_pg_copy_cell(&b, &c, &v, &err), KF_ERR_INVALID);
    kf_buf_free(&b);
}

static void doubles_round_trip(void **state)
{
    (void)state;
    kf_column c = col_of(KF_COL_DOUBLE);
    kf_cell v = {.kind = KF_CELL_DOUBLE};
    v.v.d = 0.1;
    expect_cell(&c, &v, "0.10000000000000001");
    v.v.d = NAN;
    expect_cell(&c, &v, "NaN");
    v.v.d = -INFINITY;
    expect_cell(&c, &v, "-Infinity");
    kf_column f = col_of(KF_COL_FLOAT);
    v.v.d = 1.5;
    expect_cell(&f, &v, "1.5");
}

static void decimals_and_bytes(void **state)
{
    (void)state;
    kf_column d = col_of(KF_COL_DECIMAL);
    d.precision = 10;
    d.scale = 2;
    static const uint8_t minus_12345[] = {0xcf, 0xc7}; /* -12345 -> -123.45 */
    kf_cell v = {.kind = KF_CELL_BYTES};
    v.v.s.ptr = (const char *)minus_12345;
    v.v.s.len = sizeof(minus_12345);
    expect_cell(&d, &v, "-123.45");
    kf_column b = col_of(KF_COL_BYTES);
    static const uint8_t raw[] = {0x00, 0xff, 0x10};
    v.v.s.ptr = (const char *)raw;
    v.v.s.len = sizeof(raw);
    expect_cell(&b, &v, "\\\\x00ff10");
}

static void wrong_kind_is_refused(void **state)
{
    (void)state;
    kf_column c = col_of(KF_COL_BOOL);
    kf_cell v = int_cell(1);
    kf_buf b;
    kf_buf_init(&b);
    kf_error err;
    assert_int_equal(kf_pg_copy_cell(&b, &c, &v, &err), KF_ERR_INVALID);
    kf_buf_free(&b);
}

static void cells_append_to_a_row(void **state)
{
    (void)state;
    kf_buf b;
    kf_buf_init(&b);
    kf_error err;
    kf_column i = col_of(KF_COL_INT), t = col_of(KF_COL_TEXT);
    kf_cell one = int_cell(1);
    kf_cell s = {.kind = KF_CELL_STRING};
    s.v.s.ptr = "x y";
    s.v.s.len = 3;
    assert_int_equal(kf_pg_copy_cell(&b, &i, &one, &err), KF_OK);
    assert_int_equal(kf_pg_buf_append(&b, "\t", 1), KF_OK);
    assert_int_equal(kf_pg_copy_cell(&b, &t, &s, &err), KF_OK);
    assert_int_equal(kf_pg_buf_append(&b, "\n", 1), KF_OK);
    assert_string_equal((const char *)b.data, "1\tx y\n");
    kf_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(escapes_control_characters), cmocka_unit_test(nul_bytes_are_refused),
        cmocka_unit_test(integers_and_booleans),      cmocka_unit_test(dates_are_iso),
        cmocka_unit_test(timestamps_in_every_unit),   cmocka_unit_test(doubles_round_trip),
        cmocka_unit_test(decimals_and_bytes),         cmocka_unit_test(wrong_kind_is_refused),
        cmocka_unit_test(cells_append_to_a_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
