/* Unit tests for the COPY binary encoding of cells: each type's wire form (integers, floats,
 * numeric digits and scales, dates and timestamps from Postgres' epoch, uuid, jsonb), nulls,
 * values refused before they are sent, and which forms a column and an event column take.
 * No server needed (integration_sink_pg_binary compares with Postgres itself). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
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
    if (type == KF_COL_DECIMAL) {
        c.precision = 10;
        c.scale = 2;
    }
    return c;
}

static kf_cell int_cell(int64_t v)
{
    kf_cell c = {.kind = KF_CELL_INT};
    c.v.i = v;
    return c;
}

static kf_cell str_cell(const char *s)
{
    kf_cell c = {.kind = KF_CELL_STRING};
    c.v.s.ptr = s;
    c.v.s.len = strlen(s);
    return c;
}

/* Encodes one cell and compares the field (length word and value) with expect. */
static void expect_field(kf_pg_bin bin, const kf_column *col, const kf_cell *cell,
                         const uint8_t *expect, size_t len)
{
    kf_buf b;
    kf_buf_init(&b);
    kf_error err;
    if (kf_pg_copy_bin_cell(&b, bin, col, cell, &err) != KF_OK)
        fail_msg("%s", err.message);
    assert_int_equal(b.len, len);
    assert_memory_equal(b.data, expect, len);
    kf_buf_free(&b);
}

static void expect_refused(kf_pg_bin bin, const kf_column *col, const kf_cell *cell,
                           const char *fragment)
{
    kf_buf b;
    kf_buf_init(&b);
    kf_error err;
    assert_int_equal(kf_pg_copy_bin_cell(&b, bin, col, cell, &err), KF_ERR_INVALID);
    assert_int_equal(b.len, 0);
    if (!strstr(err.message, fragment))
        fail_msg("\"%s\" does not mention \"%s\"", err.message, fragment);
    kf_buf_free(&b);
}

/* A numeric field: ndigits, weight, sign, dscale, then the base-10000 digits. */
static void expect_numeric(const kf_column *col, const kf_cell *cell, uint16_t weight,
                           uint16_t sign, uint16_t dscale, const uint16_t *digits, size_t n)
{
    uint8_t want[64];
    size_t len = 8 + 2 * n;
    want[0] = 0;
    want[1] = 0;
    want[2] = 0;
    want[3] = (uint8_t)len;
    const uint16_t words[4] = {(uint16_t)n, weight, sign, dscale};
    for (size_t i = 0; i < 4; i++) {
        want[4 + 2 * i] = (uint8_t)(words[i] >> 8);
        want[5 + 2 * i] = (uint8_t)words[i];
    }
    for (size_t i = 0; i < n; i++) {
        want[12 + 2 * i] = (uint8_t)(digits[i] >> 8);
        want[13 + 2 * i] = (uint8_t)digits[i];
    }
    expect_field(KF_PG_BIN_NUMERIC, col, cell, want, 4 + len);
}

static void header_and_nulls(void **state)
{
    (void)state;
    assert_memory_equal(kf_pg_copy_bin_header, "PGCOPY\n\377\r\n\0", 11);
    for (size_t i = 11; i < KF_PG_COPY_BIN_HEADER_LEN; i++)
        assert_int_equal(kf_pg_copy_bin_header[i], 0);
    kf_column c = col_of(KF_COL_TEXT);
    kf_cell null = {.kind = KF_CELL_NULL};
    static const uint8_t minus_one[] = {0xff, 0xff, 0xff, 0xff};
    expect_field(KF_PG_BIN_TEXT, &c, &null, minus_one, 4);
    /* two fields append one after the other */
    kf_buf b;
    kf_buf_init(&b);
    kf_error err;
    kf_cell s = str_cell("ab");
    assert_int_equal(kf_pg_copy_bin_cell(&b, KF_PG_BIN_TEXT, &c, &s, &err), KF_OK);
    assert_int_equal(kf_pg_copy_bin_cell(&b, KF_PG_BIN_TEXT, &c, &null, &err), KF_OK);
    static const uint8_t both[] = {0, 0, 0, 2, 'a', 'b', 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(b.len, sizeof(both));
    assert_memory_equal(b.data, both, sizeof(both));
    kf_buf_free(&b);
}

static void integers_by_destination_width(void **state)
{
    (void)state;
    kf_column c = col_of(KF_COL_INT);
    kf_cell v = int_cell(42);
    static const uint8_t i2[] = {0, 0, 0, 2, 0, 42};
    static const uint8_t i4[] = {0, 0, 0, 4, 0, 0, 0, 42};
    static const uint8_t i8[] = {0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 42};
    expect_field(KF_PG_BIN_INT2, &c, &v, i2, sizeof(i2));
    expect_field(KF_PG_BIN_INT4, &c, &v, i4, sizeof(i4));
    expect_field(KF_PG_BIN_INT8, &c, &v, i8, sizeof(i8));
    v = int_cell(-2);
    static const uint8_t m2[] = {0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe};
    expect_field(KF_PG_BIN_INT8, &c, &v, m2, sizeof(m2));
    v = int_cell(40000);
    expect_refused(KF_PG_BIN_INT2, &c, &v, "out of range for type smallint");
    v = int_cell(INT64_C(3000000000));
    expect_refused(KF_PG_BIN_INT4, &c, &v, "out of range for type integer");
    v = int_cell(INT16_MIN);
    static const uint8_t min2[] = {0, 0, 0, 2, 0x80, 0};
    expect_field(KF_PG_BIN_INT2, &c, &v, min2, sizeof(min2));
}

static void floats_and_booleans(void **state)
{
    (void)state;
    kf_column d = col_of(KF_COL_DOUBLE), f = col_of(KF_COL_FLOAT), b = col_of(KF_COL_BOOL);
    kf_cell v = {.kind = KF_CELL_DOUBLE};
    v.v.d = 1.5;
    static const uint8_t f8[] = {0, 0, 0, 8, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0};
    static const uint8_t f4[] = {0, 0, 0, 4, 0x3f, 0xc0, 0, 0};
    expect_field(KF_PG_BIN_FLOAT8, &d, &v, f8, sizeof(f8));
    expect_field(KF_PG_BIN_FLOAT4, &f, &v, f4, sizeof(f4));
    expect_field(KF_PG_BIN_FLOAT8, &f, &v, f8, sizeof(f8));
    v.v.d = 1e300;
    expect_refused(KF_PG_BIN_FLOAT4, &f, &v, "out of range for type real");
    /* a double is not narrowed to real */
    v.v.d = 1.5;
    expect_refused(KF_PG_BIN_FLOAT4, &d, &v, "does not fit");
    kf_cell t = {.kind = KF_CELL_BOOL};
    t.v.b = true;
    static const uint8_t one[] = {0, 0, 0, 1, 1};
    expect_field(KF_PG_BIN_BOOL, &b, &t, one, sizeof(one));
}

static void numerics_from_text_bytes_and_integers(void **state)
{
    (void)state;
    kf_column c = col_of(KF_COL_DECIMAL);
    kf_cell v = str_cell("123.45");
    expect_numeric(&c, &v, 0, 0, 2, (const uint16_t[]){123, 4500}, 2);
    v = str_cell("-0.05");
    expect_numeric(&c, &v, 0xffff, 0x4000, 2, (const uint16_t[]){500}, 1);
    v = str_cell("-12345678.9");
    expect_numeric(&c, &v, 1, 0x4000, 1, (const uint16_t[]){1234, 5678, 9000}, 3);
    v = str_cell("1e5");
    expect_numeric(&c, &v, 1, 0, 0, (const uint16_t[]){10}, 1);
    v = str_cell("1.5E-3");
    expect_numeric(&c, &v, 0xffff, 0, 4, (const uint16_t[]){15}, 1);
    v = str_cell(" 0.00 ");
    expect_numeric(&c, &v, 0, 0, 2, NULL, 0);
    v = str_cell("NaN");
    expect_numeric(&c, &v, 0, 0xc000, 0, NULL, 0);
    v = str_cell("-Infinity");
    expect_numeric(&c, &v, 0, 0xf000, 0, NULL, 0);
    v = str_cell("12.3.4");
    expect_refused(KF_PG_BIN_NUMERIC, &c, &v, "invalid input syntax for type numeric");
    v = str_cell("-NaN");
    expect_refused(KF_PG_BIN_NUMERIC, &c, &v, "invalid input syntax for type numeric");
    v = str_cell("1e999999");
    expect_refused(KF_PG_BIN_NUMERIC, &c, &v, "overflows");
    /* Avro decimal bytes: 12345 unscaled at scale 2 */
    static const uint8_t unscaled[] = {0x30, 0x39};
    kf_cell bytes = {.kind = KF_CELL_BYTES};
    bytes.v.s.ptr = (const char *)unscaled;
    bytes.v.s.len = sizeof(unscaled);
    expect_numeric(&c, &bytes, 0, 0, 2, (const uint16_t[]){123, 4500}, 2);
    /* an integer column's value into a numeric destination */
    kf_column i = col_of(KF_COL_BIGINT);
    kf_cell n = int_cell(-1234567);
    expect_numeric(&i, &n, 1, 0x4000, 0, (const uint16_t[]){123, 4567}, 2);
}

static void dates_and_timestamps_from_2000(void **state)
{
    (void)state;
    kf_column d = col_of(KF_COL_DATE), ts = col_of(KF_COL_TIMESTAMP);
    kf_cell v = int_cell(10957); /* 2000-01-01 */
    static const uint8_t zero4[] = {0, 0, 0, 4, 0, 0, 0, 0};
    expect_field(KF_PG_BIN_DATE, &d, &v, zero4, sizeof(zero4));
    v = int_cell(0); /* 1970-01-01 is -10957 days */
    static const uint8_t epoch[] = {0, 0, 0, 4, 0xff, 0xff, 0xd5, 0x33};
    expect_field(KF_PG_BIN_DATE, &d, &v, epoch, sizeof(epoch));
    v = int_cell(INT64_C(2147000000));
    expect_refused(KF_PG_BIN_DATE, &d, &v, "date out of range");
    v = int_cell(INT64_C(946684800000001)); /* 2000-01-01 00:00:00.000001 */
    static const uint8_t one_us[] = {0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1};
    expect_field(KF_PG_BIN_TIMESTAMP, &ts, &v, one_us, sizeof(one_us));
    ts.time_precision = 3;
    v = int_cell(INT64_C(946684800001)); /* a millisecond after */
    static const uint8_t one_ms[] = {0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x03, 0xe8};
    expect_field(KF_PG_BIN_TIMESTAMP, &ts, &v, one_ms, sizeof(one_ms));
    ts.time_precision = 9;
    v = int_cell(INT64_C(946684800000001999)); /* nanoseconds, truncated */
    expect_field(KF_PG_BIN_TIMESTAMP, &ts, &v, one_us, sizeof(one_us));
    ts.time_precision = 6;
    v = int_cell(INT64_MIN);
    expect_refused(KF_PG_BIN_TIMESTAMP, &ts, &v, "timestamp out of range");
}

static void strings_uuid_jsonb_and_bytes(void **state)
{
    (void)state;
    kf_column t = col_of(KF_COL_TEXT), u = col_of(KF_COL_UUID), j = col_of(KF_COL_JSON);
    kf_cell v = str_cell("a\tb\\");
    static const uint8_t raw[] = {0, 0, 0, 4, 'a', '\t', 'b', '\\'};
    expect_field(KF_PG_BIN_TEXT, &t, &v, raw, sizeof(raw));
    kf_cell nul = {.kind = KF_CELL_STRING};
    nul.v.s.ptr = "a\0b";
    nul.v.s.len = 3;
    expect_refused(KF_PG_BIN_TEXT, &t, &nul, "NUL");
    v = str_cell("{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}");
    static const uint8_t id[] = {0,    0,    0,    16,   0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b,
                                 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11};
    expect_field(KF_PG_BIN_UUID, &u, &v, id, sizeof(id));
    expect_field(KF_PG_BIN_UUID, &t, &v, id, sizeof(id));
    v = str_cell("not-a-uuid");
    expect_refused(KF_PG_BIN_UUID, &t, &v, "invalid input syntax for type uuid");
    /* a uuid column's text into a text destination is still checked, as with text COPY */
    expect_refused(KF_PG_BIN_TEXT, &u, &v, "invalid input syntax for type uuid");
    v = str_cell("{}");
    static const uint8_t doc[] = {0, 0, 0, 3, 1, '{', '}'};
    expect_field(KF_PG_BIN_JSONB, &j, &v, doc, sizeof(doc));
    kf_column by = col_of(KF_COL_BYTES);
    kf_cell b = {.kind = KF_CELL_BYTES};
    b.v.s.ptr = "\x00\xff";
    b.v.s.len = 2;
    static const uint8_t bytea[] = {0, 0, 0, 2, 0x00, 0xff};
    expect_field(KF_PG_BIN_BYTEA, &by, &b, bytea, sizeof(bytea));
    /* kinds that do not fit */
    kf_cell i = int_cell(1);
    expect_refused(KF_PG_BIN_TEXT, &t, &i, "does not fit");
    expect_refused(KF_PG_BIN_INT8, &t, &v, "does not fit");
}

static void forms_of_types_and_columns(void **state)
{
    (void)state;
    assert_int_equal(kf_pg_bin_of_oid(20), KF_PG_BIN_INT8);
    assert_int_equal(kf_pg_bin_of_oid(1043), KF_PG_BIN_TEXT);
    assert_int_equal(kf_pg_bin_of_oid(114), KF_PG_BIN_TEXT); /* json is its text */
    assert_int_equal(kf_pg_bin_of_oid(3802), KF_PG_BIN_JSONB);
    assert_int_equal(kf_pg_bin_of_oid(1184), KF_PG_BIN_NONE); /* timestamptz */
    assert_int_equal(kf_pg_bin_of_oid(869), KF_PG_BIN_NONE);  /* inet */
    kf_column c = col_of(KF_COL_VARCHAR);
    assert_int_equal(kf_pg_bin_of_column(&c), KF_PG_BIN_TEXT);
    c = col_of(KF_COL_TIMESTAMPTZ);
    assert_int_equal(kf_pg_bin_of_column(&c), KF_PG_BIN_NONE);
    c = col_of(KF_COL_JSON);
    assert_int_equal(kf_pg_bin_of_column(&c), KF_PG_BIN_JSONB);
    /* each type's own form takes its events; widening is accepted, narrowing is not */
    for (kf_coltype t = KF_COL_SMALLINT; t <= KF_COL_JSON; t++) {
        c = col_of(t);
        kf_pg_bin own = kf_pg_bin_of_column(&c);
        if (own != KF_PG_BIN_NONE)
            assert_true(kf_pg_bin_accepts(own, &c));
    }
    kf_column i = col_of(KF_COL_INT), d = col_of(KF_COL_DOUBLE), s = col_of(KF_COL_TEXT);
    kf_column tz = col_of(KF_COL_TIMESTAMPTZ);
    assert_true(kf_pg_bin_accepts(KF_PG_BIN_INT8, &i));
    assert_true(kf_pg_bin_accepts(KF_PG_BIN_NUMERIC, &i));
    assert_false(kf_pg_bin_accepts(KF_PG_BIN_FLOAT4, &d));
    assert_false(kf_pg_bin_accepts(KF_PG_BIN_INT8, &s));
    assert_false(kf_pg_bin_accepts(KF_PG_BIN_TEXT, &i));
    assert_true(kf_pg_bin_accepts(KF_PG_BIN_TEXT, &tz));
    assert_true(kf_pg_bin_accepts(KF_PG_BIN_UUID, &s));
    assert_false(kf_pg_bin_accepts(KF_PG_BIN_NONE, &s));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(header_and_nulls),
        cmocka_unit_test(integers_by_destination_width),
        cmocka_unit_test(floats_and_booleans),
        cmocka_unit_test(numerics_from_text_bytes_and_integers),
        cmocka_unit_test(dates_and_timestamps_from_2000),
        cmocka_unit_test(strings_uuid_jsonb_and_bytes),
        cmocka_unit_test(forms_of_types_and_columns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
