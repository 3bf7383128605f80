/* Unit tests for cells as plain text (the SQL outputs' parameters and literals, the Kafka
 * output's timestamptz strings), the timestamp formatter behind them, and which destination
 * columns must accept null. */
#include "sim_test.h"

#include <math.h>
#include <stdio.h>

#include "cells.h"
#include "table.h"

/* The text of cell c of type t; "<invalid>" when refused. Points into a static buffer. */
static const char *text_of(kf_sim_coltype t, kf_sim_cell c, kf_sim_bool_style bools, bool zulu)
{
    static char out[128];
    kf_sim_buf b = {0};
    int rc = kf_sim_cell_text(&b, &t, &c, bools, zulu);
    snprintf(out, sizeof(out), "%s", rc == KF_OK ? (b.data ? b.data : "") : "<invalid>");
    kf_sim_buf_free(&b);
    return out;
}

static kf_sim_cell int_cell(int64_t v)
{
    return (kf_sim_cell){.kind = KF_SIM_CELL_INT, .i = v};
}

static kf_sim_cell dbl_cell(double v)
{
    return (kf_sim_cell){.kind = KF_SIM_CELL_DOUBLE, .d = v};
}

static void integers_and_decimals(void **state)
{
    (void)state;
    kf_sim_coltype big = {.type = KF_SIM_BIGINT};
    assert_string_equal(text_of(big, int_cell(-9223372036854775807LL - 1), 0, false),
                        "-9223372036854775808");
    assert_string_equal(text_of(big, int_cell(42), 0, false), "42");
    kf_sim_coltype dec = {.type = KF_SIM_DECIMAL, .precision = 10, .scale = 2};
    assert_string_equal(text_of(dec, int_cell(1250), 0, false), "12.50");
    assert_string_equal(text_of(dec, int_cell(-1250), 0, false), "-12.50");
    assert_string_equal(text_of(dec, int_cell(5), 0, false), "0.05");
    assert_string_equal(text_of(dec, int_cell(-5), 0, false), "-0.05");
    assert_string_equal(text_of(dec, int_cell(0), 0, false), "0.00");
    kf_sim_coltype whole = {.type = KF_SIM_DECIMAL, .precision = 6, .scale = 0};
    assert_string_equal(text_of(whole, int_cell(-700), 0, false), "-700");
}

static void floats_and_bools(void **state)
{
    (void)state;
    kf_sim_coltype f = {.type = KF_SIM_FLOAT}, d = {.type = KF_SIM_DOUBLE};
    assert_string_equal(text_of(f, dbl_cell((double)0.1f), 0, false), "0.100000001");
    assert_string_equal(text_of(d, dbl_cell(0.1), 0, false), "0.10000000000000001");
    assert_string_equal(text_of(d, dbl_cell(-2.5), 0, false), "-2.5");
    /* no SQL spelling for these: refused, not written as "nan" */
    assert_string_equal(text_of(d, dbl_cell(NAN), 0, false), "<invalid>");
    assert_string_equal(text_of(d, dbl_cell(INFINITY), 0, false), "<invalid>");
    kf_sim_coltype b = {.type = KF_SIM_BOOL};
    kf_sim_cell yes = {.kind = KF_SIM_CELL_BOOL, .b = true}, no = {.kind = KF_SIM_CELL_BOOL};
    assert_string_equal(text_of(b, yes, KF_SIM_BOOL_WORDS, false), "true");
    assert_string_equal(text_of(b, no, KF_SIM_BOOL_WORDS, false), "false");
    assert_string_equal(text_of(b, yes, KF_SIM_BOOL_DIGITS, false), "1");
    assert_string_equal(text_of(b, no, KF_SIM_BOOL_DIGITS, false), "0");
}

static void dates_and_timestamps(void **state)
{
    (void)state;
    kf_sim_coltype date = {.type = KF_SIM_DATE};
    assert_string_equal(text_of(date, int_cell(0), 0, false), "1970-01-01");
    assert_string_equal(text_of(date, int_cell(19723), 0, false), "2024-01-01");
    assert_string_equal(text_of(date, int_cell(-1), 0, false), "1969-12-31");
    kf_sim_coltype ts = {.type = KF_SIM_TIMESTAMP}, tz = {.type = KF_SIM_TIMESTAMPTZ};
    int64_t us = 1704067200000000LL + 31000; /* 2024-01-01T00:00:00.031Z */
    assert_string_equal(text_of(ts, int_cell(us), 0, true), "2024-01-01 00:00:00.031000");
    assert_string_equal(text_of(tz, int_cell(us), 0, true), "2024-01-01 00:00:00.031000Z");
    /* MariaDB has no zone: the same instant without the Z */
    assert_string_equal(text_of(tz, int_cell(us), 0, false), "2024-01-01 00:00:00.031000");
    /* before the epoch the fraction still counts up from the second */
    assert_string_equal(text_of(ts, int_cell(-1), 0, false), "1969-12-31 23:59:59.999999");
}

static void strings_and_nulls(void **state)
{
    (void)state;
    kf_sim_coltype txt = {.type = KF_SIM_TEXT};
    kf_sim_cell s = {.kind = KF_SIM_CELL_STRING, .s = "it's a \"tab\"\there", .len = 18};
    /* as it is: quoting and escaping are the output's business */
    assert_string_equal(text_of(txt, s, 0, false), "it's a \"tab\"\there");
    kf_sim_cell null = {.kind = KF_SIM_CELL_NULL};
    assert_string_equal(text_of(txt, null, 0, false), "<invalid>");
    /* appends to what the buffer holds */
    kf_sim_buf b = {0};
    assert_int_equal(kf_sim_buf_puts(&b, "x="), KF_OK);
    kf_sim_coltype i = {.type = KF_SIM_INT};
    kf_sim_cell seven = int_cell(7);
    assert_int_equal(kf_sim_cell_text(&b, &i, &seven, KF_SIM_BOOL_WORDS, false), KF_OK);
    assert_string_equal(b.data, "x=7");
    kf_sim_buf_free(&b);
}

static void time_format_whole_range(void **state)
{
    (void)state;
    char buf[48];
    kf_sim_time_format(0, true, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00.000000Z");
    kf_sim_time_format(253402300799999999LL, false, buf, sizeof(buf)); /* the last of 9999 */
    assert_string_equal(buf, "9999-12-31T23:59:59.999999");
    kf_sim_time_format(951782400123456LL, true, buf, sizeof(buf)); /* a leap day */
    assert_string_equal(buf, "2000-02-29T00:00:00.123456Z");
    /* years without four digits still come out whole */
    kf_sim_time_format(253402300800000000LL, true, buf, sizeof(buf));
    assert_string_equal(buf, "10000-01-01T00:00:00.000000Z");
    kf_sim_time_format(-62167219200000001LL, false, buf, sizeof(buf)); /* before year 0 */
    assert_string_equal(buf, "-001-12-31T23:59:59.999999");
}

static const char *const NULLABILITY_SPEC =
    "tables:\n"
    "  - name: t\n"
    "    primary_key: {kind: sequence, column: id}\n"
    "    columns:\n"
    "      - {name: required, type: int, nullable: false}\n"
    "      - {name: optional, type: int}\n"
    "      - {name: later, type: int, reserved: true}\n"
    "  - name: faulty\n"
    "    primary_key: {kind: sequence, column: id}\n"
    "    columns:\n"
    "      - {name: required, type: int, nullable: false}\n"
    "    errors: {ratio: 0.1, kinds: [not_null]}\n"
    "  - name: ranged\n"
    "    primary_key: {kind: sequence, column: id}\n"
    "    columns:\n"
    "      - {name: required, type: int, nullable: false, min: 0, max: 9}\n"
    "    errors: {ratio: 0.1, kinds: [range]}\n";

static void destination_nullability(void **state)
{
    (void)state;
    kf_sim_spec *spec = sim_spec_from(NULLABILITY_SPEC);
    const kf_sim_table_spec *ts = kf_sim_spec_table(spec, 0);
    kf_sim_table t;
    assert_int_equal(kf_sim_table_init(&t, ts), KF_OK);
    size_t id = (size_t)kf_sim_table_spec_column(ts, "id");
    size_t req = (size_t)kf_sim_table_spec_column(ts, "required");
    size_t opt = (size_t)kf_sim_table_spec_column(ts, "optional");
    size_t later = (size_t)kf_sim_table_spec_column(ts, "later");
    assert_false(kf_sim_column_nullable(&t, id));
    assert_false(kf_sim_column_nullable(&t, req));
    assert_true(kf_sim_column_nullable(&t, opt));
    assert_true(kf_sim_column_nullable(&t, later));
    /* a dropped column holds null from then on, declared NOT NULL or not */
    t.state[req] = KF_SIM_COL_DROPPED;
    assert_true(kf_sim_column_nullable(&t, req));
    kf_sim_table_fini(&t);

    /* injected nulls need a nullable destination; other injected faults do not */
    const kf_sim_table_spec *fs = kf_sim_spec_table(spec, 1);
    assert_int_equal(kf_sim_table_init(&t, fs), KF_OK);
    assert_true(kf_sim_column_nullable(&t, (size_t)kf_sim_table_spec_column(fs, "required")));
    assert_false(kf_sim_column_nullable(&t, (size_t)kf_sim_table_spec_column(fs, "id")));
    kf_sim_table_fini(&t);
    const kf_sim_table_spec *rs = kf_sim_spec_table(spec, 2);
    assert_int_equal(kf_sim_table_init(&t, rs), KF_OK);
    assert_false(kf_sim_column_nullable(&t, (size_t)kf_sim_table_spec_column(rs, "required")));
    kf_sim_table_fini(&t);
    kf_sim_spec_destroy(spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(integers_and_decimals),   cmocka_unit_test(floats_and_bools),
        cmocka_unit_test(dates_and_timestamps),    cmocka_unit_test(strings_and_nulls),
        cmocka_unit_test(time_format_whole_range), cmocka_unit_test(destination_nullability),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
