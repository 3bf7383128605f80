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

/* Values only Postgres' input functions would refuse are refused here, so the sink can store
 * null for them (and log it) instead of losing the whole record. */
static void expect_refused(const kf_column *col, const kf_cell *cell, const char *fragment)
{
    kf_buf b;
    kf_buf_init(&b);
    kf_error err;
    assert_int_equal(kf_pg_copy_cell(&b, col, cell, &err), KF_ERR_INVALID);
    assert_int_equal(b.len, 0);
    assert_non_null(strstr(err.message, fragment));
    kf_buf_free(&b);
}

static kf_cell str_cell(const char *s)
{
    kf_cell c = {.kind = KF_CELL_STRING};
    c.v.s.ptr = s;
    c.v.s.len = strlen(s);
    return c;
}

static void uuids_are_checked(void **state)
{
    (void)state;
    static const char *const good[] = {
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",    "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
        "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",  "a0eebc999c0b4ef8bb6d6bb9bd380a11",
        "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11", "{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}"};
    static const char *const bad[] = {"",
                                      "not-a-uuid",
                                      "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
                                      "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",
                                      "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g",
                                      "a0eeb-c99-9c0b-4ef8-bb6d-6bb9bd380a11",
                                      "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11",
                                      "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",
                                      "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                                      "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
                                      " a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"};
    kf_column c = col_of(KF_COL_UUID);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_true(kf_pg_uuid_valid(good[i], strlen(good[i])));
        kf_cell cell = str_cell(good[i]);
        expect_cell(&c, &cell, good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(kf_pg_uuid_valid(bad[i], strlen(bad[i])));
        kf_cell cell = str_cell(bad[i]);
        expect_refused(&c, &cell, "invalid input syntax for type uuid");
    }
    /* a text column takes anything */
    kf_column t = col_of(KF_COL_TEXT);
    kf_cell cell = str_cell("not-a-uuid");
    expect_cell(&t, &cell, "not-a-uuid");
}

static void dates_and_timestamps_outside_postgres_range(void **state)
{
    (void)state;
    kf_column d = col_of(KF_COL_DATE);
    kf_cell first = int_cell(-2440588), last = int_cell(2145042905);
    expect_cell(&d, &first, "4714-11-24 BC");
    expect_cell(&d, &last, "5874897-12-31");
    kf_cell before = int_cell(-2440589), after = int_cell(2145042906);
    expect_refused(&d, &before, "date out of range");
    expect_refused(&d, &after, "date out of range");
    kf_cell huge = int_cell(INT64_MAX);
    expect_refused(&d, &huge, "date out of range");
    kf_column ts = col_of(KF_COL_TIMESTAMP);
    kf_cell ts_first = int_cell(INT64_C(-210866803200000000));
    expect_cell(&ts, &ts_first, "4714-11-24 00:00:00.000000 BC");
    kf_cell ts_before = int_cell(INT64_C(-210866803200000001));
    expect_refused(&ts, &ts_before, "timestamp out of range");
    kf_cell ts_max = int_cell(INT64_MAX);
    expect_cell(&ts, &ts_max, "294247-01-10 04:00:54.775807");
    ts.time_precision = 3;
    kf_cell ms_before = int_cell(INT64_C(-210866803200001));
    expect_refused(&ts, &ms_before, "timestamp out of range");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(escapes_control_characters),
        cmocka_unit_test(nul_bytes_are_refused),
        cmocka_unit_test(integers_and_booleans),
        cmocka_unit_test(dates_are_iso),
        cmocka_unit_test(timestamps_in_every_unit),
        cmocka_unit_test(doubles_round_trip),
        cmocka_unit_test(decimals_and_bytes),
        cmocka_unit_test(wrong_kind_is_refused),
        cmocka_unit_test(cells_append_to_a_row),
        cmocka_unit_test(uuids_are_checked),
        cmocka_unit_test(dates_and_timestamps_outside_postgres_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
