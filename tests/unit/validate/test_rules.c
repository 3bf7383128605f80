/* Unit tests for the rules engine: each column rule on passing and failing values, nulls and
 * missing columns, severities, unique windows (count, time, row identity, rollback after an
 * aborted batch), dataset windows (closed by record time and, for a quiet stream, by the
 * clock), the dtype parsers and checks on decoded change events. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules_fixture.h"

static const kf_cell NUL = {.kind = KF_CELL_NULL};

/* Checks a one-column record; returns the failed rule id or NULL, and the message. */
static const char *check1(kf_rules *r, const kf_cell *cell, const kf_column *col, uint64_t key,
                          int64_t ts, char *msg)
{
    const kf_cell *cells[1] = {cell};
    const kf_column *cols[1] = {col};
    kf_row row = {.cells = cells, .cols = cols, .row_key = key, .ts_ms = ts};
    kf_verdict v;
    assert_int_equal(kf_rules_check(r, &row, &v), KF_OK);
    if (msg)
        snprintf(msg, 512, "%s", v.message);
    return v.failed ? v.failed->id : NULL;
}

static void test_not_null(void **state)
{
    (void)state;
    kf_contract *c = parse("contract: t\ncolumns:\n  a: [not_null]\n");
    kf_rules *r = kf_rules_new(c, 10, NULL);
    char msg[512];
    kf_cell v = S("x");
    assert_null(check1(r, &v, NULL, 0, 0, msg));
    assert_string_equal(check1(r, &NUL, NULL, 0, 0, msg), "t.a.not_null");
    assert_string_equal(msg, "column \"a\" is null");
    assert_string_equal(check1(r, NULL, NULL, 0, 0, msg), "t.a.not_null");
    assert_string_equal(msg, "column \"a\" is missing");
    kf_rules_commit(r, NULL, NULL);
    assert_int_equal(kf_rules_checked(r), 3);
    assert_int_equal(kf_rules_violations(r, 0), 2);
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

static void test_allowed_values_and_nulls_pass(void **state)
{
    (void)state;
    kf_contract *c = parse("contract: t\ncolumns:\n  s:\n    - allowed_values: [new, paid, 7, "
                           "true]\n");
    kf_rules *r = kf_rules_new(c, 10, NULL);
    char msg[512];
    kf_cell ok = S("paid"), bad = S("lost"), n7 = I(7), t = B(true), f = B(false);
    assert_null(check1(r, &ok, NULL, 0, 0, msg));
    assert_null(check1(r, &n7, NULL, 0, 0, msg));
    assert_null(check1(r, &t, NULL, 0, 0, msg));
    assert_null(check1(r, &NUL, NULL, 0, 0, msg)); /* only not_null rejects nulls */
    assert_string_equal(check1(r, &bad, NULL, 0, 0, msg), "t.s.allowed_values");
    assert_string_equal(msg, "column \"s\" value \"lost\" is not one of the allowed values");
    assert_non_null(check1(r, &f, NULL, 0, 0, msg));
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

static void test_regex(void **state)
{
    (void)state;
    kf_contract *c = parse("contract: t\ncolumns:\n  e:\n    - regex: '^[^@]+@[^@]+$'\n");
    kf_rules *r = kf_rules_new(c, 10, NULL);
    char msg[512];
    kf_cell ok = S("a@b.c"), bad = S("nobody"), num = I(5);
    assert_null(check1(r, &ok, NULL, 0, 0, msg));
    assert_string_equal(check1(r, &bad, NULL, 0, 0, msg), "t.e.regex");
    assert_string_equal(msg, "column \"e\" value \"nobody\" does not match /^[^@]+@[^@]+$/");
    assert_non_null(check1(r, &num, NULL, 0, 0, msg));
    /* long values are cut in messages */
    char big[300];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    kf_cell b = S(big);
    assert_non_null(check1(r, &b, NULL, 0, 0, msg));
    assert_true(strlen(msg) < 150);
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

static void test_range(void **state)
{
    (void)state;
    kf_contract *c = parse("contract: t\ncolumns:\n  q:\n    - range: {min: 0, max: 10.5}\n");
    kf_rules *r = kf_rules_new(c, 10, NULL);
    char msg[512];
    kf_cell lo = I(0), hi = D(10.5), below = I(-1), above = D(10.6), txt = S("3.25"),
            nan_txt = S("abc"), flag = B(true);
    assert_null(check1(r, &lo, NULL, 0, 0, msg));
    assert_null(check1(r, &hi, NULL, 0, 0, msg));
    assert_null(check1(r, &txt, NULL, 0, 0, msg));
    assert_string_equal(check1(r, &below, NULL, 0, 0, msg), "t.q.range");
    assert_string_equal(msg, "column \"q\" value -1 is below the minimum 0");
    assert_non_null(check1(r, &above, NULL, 0, 0, msg));
    assert_string_equal(msg, "column \"q\" value 10.6 is above the maximum 10.5");
    assert_non_null(check1(r, &nan_txt, NULL, 0, 0, msg));
    assert_string_equal(msg, "column \"q\" value \"abc\" is not a number");
    assert_non_null(check1(r, &flag, NULL, 0, 0, msg));
    /* decimals compare by their decimal value: 12.34 as unscaled 1234, scale 2 */
    kf_column dec = {.name = "q", .type = KF_COL_DECIMAL, .precision = 10, .scale = 2};
    kf_cell small = {.kind = KF_CELL_BYTES, .v.s = {"\x04\x1a", 2}}; /* 1050 -> 10.50 */
    kf_cell large = {.kind = KF_CELL_BYTES, .v.s = {"\x04\x1b", 2}}; /* 1051 -> 10.51 */
    assert_null(check1(r, &small, &dec, 0, 0, msg));
    assert_non_null(check1(r, &large, &dec, 0, 0, msg));
    assert_string_equal(msg, "column \"q\" value 10.51 is above the maximum 10.5");
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

static void test_length(void **state)
{
    (void)state;
    kf_contract *c = parse("contract: t\ncolumns:\n  n:\n    - length: {min: 2, max: 4}\n");
    kf_rules *r = kf_rules_new(c, 10, NULL);
    char msg[512];
    kf_cell ok = S("\xc3\xa9t\xc3\xa9"), /* "été": 3 characters, 5 bytes */
        shortv = S("a"), longv = S("abcde"), num = I(12345);
    assert_null(check1(r, &ok, NULL, 0, 0, msg));
    assert_string_equal(check1(r, &shortv, NULL, 0, 0, msg), "t.n.length");
    assert_string_equal(msg, "column \"n\" length 1 is below the minimum 2");
    assert_non_null(check1(r, &longv, NULL, 0, 0, msg));
    assert_string_equal(msg, "column \"n\" length 5 is above the maximum 4");
    assert_non_null(check1(r, &num, NULL, 0, 0, msg));
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

static void test_dtype(void **state)
{
    (void)state;
    kf_contract *c = parse("contract: t\ncolumns:\n"
                           "  i: [{dtype: int}]\n  f: [{dtype: float}]\n  b: [{dtype: bool}]\n"
                           "  d: [{dtype: date}]\n  ts: [{dtype: timestamp}]\n"
                           "  s: [{dtype: string}]\n");
    kf_rules *r = kf_rules_new(c, 10, NULL);
    struct {
        size_t col;
        kf_cell cell;
        const kf_column *type;
        bool ok;
    } cases[] = {
        {0, S("-42"), NULL, true},
        {0, S("4.2"), NULL, false},
        {0, S("9223372036854775808"), NULL, false},
        {0, I(7), NULL, true},
        {0, D(3.0), NULL, true},
        {0, D(3.5), NULL, false},
        {1, S("1e3"), NULL, true},
        {1, S("nan"), NULL, false},
        {1, S("1.5x"), NULL, false},
        {1, I(3), NULL, true},
        {2, S("TRUE"), NULL, true},
        {2, S("maybe"), NULL, false},
        {2, B(false), NULL, true},
        {2, I(1), NULL, false},
        {3, S("2024-02-29"), NULL, true},
        {3, S("2023-02-29"), NULL, false},
        {3, S("2024-13-01"), NULL, false},
        {4, S("2024-01-01T12:30:00Z"), NULL, true},
        {4, S("2024-01-01 12:30:00.123456+02:00"), NULL, true},
        {4, S("2024-01-01T25:00:00Z"), NULL, false},
        {4, S("yesterday"), NULL, false},
        {5, S("anything"), NULL, true},
        {5, I(1), NULL, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const kf_cell *cells[6] = {NULL};
        cells[cases[i].col] = &cases[i].cell;
        kf_row row = {.cells = cells};
        kf_verdict v;
        assert_int_equal(kf_rules_check(r, &row, &v), KF_OK);
        if ((v.failed == NULL) != cases[i].ok)
            fail_msg("case %zu: expected %s, got \"%s\"", i, cases[i].ok ? "pass" : "fail",
                     v.message);
    }
    /* native date and timestamp columns satisfy their dtype; an int column does not */
    kf_column date = {.name = "d", .type = KF_COL_DATE};
    kf_column ts = {.name = "ts", .type = KF_COL_TIMESTAMP, .time_precision = 6};
    kf_cell dv = I(19723), tv = I(1700000000000000);
    const kf_cell *cells[6] = {NULL, NULL, NULL, &dv, &tv, NULL};
    const kf_column *cols[6] = {NULL, NULL, NULL, &date, &ts, NULL};
    kf_row row = {.cells = cells, .cols = cols};
    kf_verdict v;
    assert_int_equal(kf_rules_check(r, &row, &v), KF_OK);
    assert_null(v.failed);
    cols[3] = NULL;
    assert_int_equal(kf_rules_check(r, &row, &v), KF_OK);
    assert_non_null(v.failed);
    assert_string_equal(v.message, "column \"d\" value \"19723\" is not of type date");
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

static void test_unique_count_window(void **state)
{
    (void)state;
    kf_contract *c = parse("contract: t\ncolumns:\n  u:\n    - unique: true\n      window: 3\n");
    kf_rules *r = kf_rules_new(c, 4, NULL);
    char msg[512];
    kf_cell a = S("a"), b = S("b"), x = S("x"), y = S("y");
    assert_null(check1(r, &a, NULL, 0, 0, msg));
    assert_string_equal(check1(r, &a, NULL, 0, 0, msg), "t.u.unique");
    assert_string_equal(msg, "column \"u\" value \"a\" is a duplicate within the last 3 records");
    assert_null(check1(r, &b, NULL, 0, 0, msg));
    assert_null(check1(r, &x, NULL, 0, 0, msg));
    assert_null(check1(r, &y, NULL, 0, 0, msg));
    /* the window holds the last 3 values (b, x, y): a is no longer in it */
    assert_null(check1(r, &a, NULL, 0, 0, msg));
    assert_null(check1(r, &NUL, NULL, 0, 0, msg));
    assert_null(check1(r, &NUL, NULL, 0, 0, msg)); /* nulls are never duplicates */
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

static void test_unique_row_identity(void **state)
{
    (void)state;
    kf_contract *c = parse("contract: t\ncolumns:\n  email:\n    - unique\n");
    kf_rules *r = kf_rules_new(c, 10, NULL);
    kf_cell e = S("a@b.c");
    /* an update of row 1 repeats its own value: no duplicate; row 2 taking it is one */
    assert_null(check1(r, &e, NULL, 1, 0, NULL));
    assert_null(check1(r, &e, NULL, 1, 0, NULL));
    assert_string_equal(check1(r, &e, NULL, 2, 0, NULL), "t.email.unique");
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

static void test_unique_time_window(void **state)
{
    (void)state;
    kf_contract *c =
        parse("contract: t\ncolumns:\n  u:\n    - unique: true\n      window: 10s\n      "
              "max_keys: 100\n");
    kf_rules *r = kf_rules_new(c, 10, NULL);
    char msg[512];
    kf_cell a = S("a");
    assert_null(check1(r, &a, NULL, 0, 1000, msg));
    assert_non_null(check1(r, &a, NULL, 0, 10999, msg));
    assert_string_equal(msg, "column \"u\" value \"a\" is a duplicate within 10000 ms");
    /* both earlier entries are older than 10 s at t=21000 */
    assert_null(check1(r, &a, NULL, 0, 21000, msg));
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

static void test_unique_rollback(void **state)
{
    (void)state;
    kf_contract *c = parse("contract: t\ncolumns:\n  u:\n    - unique: true\n      window: 2\n");
    kf_rules *r = kf_rules_new(c, 3, NULL);
    kf_cell a = S("a"), b = S("b"), x = S("x"), y = S("y"), z = S("z");
    kf_rules_begin(r);
    assert_null(check1(r, &a, NULL, 0, 0, NULL));
    assert_null(check1(r, &b, NULL, 0, 0, NULL));
    kf_rules_commit(r, NULL, NULL);
    /* a batch that evicts a and b, then aborts */
    kf_rules_begin(r);
    assert_null(check1(r, &x, NULL, 0, 0, NULL));
    assert_null(check1(r, &y, NULL, 0, 0, NULL));
    assert_null(check1(r, &z, NULL, 0, 0, NULL));
    kf_rules_rollback(r);
    /* the replayed batch sees the window as before it: b is still there, x is not */
    kf_rules_begin(r);
    assert_string_equal(check1(r, &b, NULL, 0, 0, NULL), "t.u.unique");
    kf_rules_rollback(r);
    kf_rules_begin(r);
    assert_null(check1(r, &x, NULL, 0, 0, NULL));
    assert_null(check1(r, &y, NULL, 0, 0, NULL));
    assert_null(check1(r, &z, NULL, 0, 0, NULL));
    /* more records than max_batch in one batch cannot be undone */
    const kf_cell *cells[1] = {&a};
    kf_row row = {.cells = cells};
    kf_verdict v;
    assert_int_equal(kf_rules_check(r, &row, &v), KF_ERR_STATE);
    kf_rules_rollback(r);
    kf_rules_commit(r, NULL, NULL);
    assert_int_equal(kf_rules_checked(r), 2);
    assert_int_equal(kf_rules_violations(r, 0), 0);
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

typedef struct breaches {
    int n;
    char ids[8][64];
    int64_t rows[8], start[8], end[8];
} breaches;

static void on_breach(void *ctx, const kf_rule *rule, int64_t rows, int64_t start, int64_t end)
{
    breaches *b = ctx;
    assert_true(b->n < 8);
    snprintf(b->ids[b->n], sizeof(b->ids[0]), "%s", rule->id);
    b->rows[b->n] = rows;
    b->start[b->n] = start;
    b->end[b->n++] = end;
}

static void test_dataset_batch_window(void **state)
{
    (void)state;
    kf_contract *c = parse("contract: t\ncolumns:\n  a: [not_null]\ndataset:\n"
                           "  - min_rows: 2\n  - max_rows: 3\n");
    kf_rules *r = kf_rules_new(c, 10, NULL);
    kf_cell v = I(1);
    breaches b = {0};
    kf_rules_begin(r);
    check1(r, &v, NULL, 0, 0, NULL);
    kf_rules_end_batch(r);
    kf_rules_commit(r, on_breach, &b);
    assert_int_equal(b.n, 1);
    assert_string_equal(b.ids[0], "t.min_rows");
    assert_int_equal(b.rows[0], 1);
    kf_rules_begin(r);
    for (int i = 0; i < 4; i++)
        check1(r, &v, NULL, 0, 0, NULL);
    kf_rules_end_batch(r);
    /* an aborted batch reports nothing */
    kf_rules_rollback(r);
    kf_rules_commit(r, on_breach, &b);
    assert_int_equal(b.n, 1);
    kf_rules_begin(r);
    for (int i = 0; i < 4; i++)
        check1(r, &v, NULL, 0, 0, NULL);
    kf_rules_end_batch(r);
    kf_rules_commit(r, on_breach, &b);
    assert_int_equal(b.n, 2);
    assert_string_equal(b.ids[1], "t.max_rows");
    assert_int_equal(b.rows[1], 4);
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

static void test_dataset_time_window(void **state)
{
    (void)state;
    kf_contract *c = parse("contract: t\ncolumns:\n  a: [not_null]\ndataset:\n"
                           "  - min_rows: 2\n    window: 1s\n  - max_rows: 2\n    window: 1s\n");
    kf_rules *r = kf_rules_new(c, 10, NULL);
    kf_cell v = I(1);
    breaches b = {0};
    check1(r, &v, NULL, 0, 100, NULL);
    check1(r, &v, NULL, 0, 900, NULL);  /* window [0,1000): 2 rows, fine */
    check1(r, &v, NULL, 0, 1500, NULL); /* window [1000,2000): 1 row */
    check1(r, &v, NULL, 0, 4200, NULL); /* closes [1000,2000) and the empty [2000,4000) */
    check1(r, &v, NULL, 0, 4300, NULL);
    check1(r, &v, NULL, 0, 4400, NULL); /* [4000,5000): 3 rows, over the maximum */
    kf_rules_close_windows(r);
    kf_rules_commit(r, on_breach, &b);
    assert_int_equal(b.n, 3);
    assert_string_equal(b.ids[0], "t.min_rows");
    assert_int_equal(b.rows[0], 1);
    assert_int_equal(b.start[0], 1000);
    assert_int_equal(b.end[0], 2000);
    assert_string_equal(b.ids[1], "t.min_rows");
    assert_int_equal(b.rows[1], 0);
    assert_int_equal(b.start[1], 2000);
    assert_int_equal(b.end[1], 4000);
    assert_string_equal(b.ids[2], "t.max_rows");
    assert_int_equal(b.rows[2], 3);
    assert_int_equal(b.start[2], 4000);
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

/* A quiet stream: the open window closes on the clock, then each empty window does. */
static void test_dataset_window_closes_on_timer(void **state)
{
    (void)state;
    kf_contract *c = parse("contract: t\ncolumns:\n  a: [not_null]\ndataset:\n"
                           "  - min_rows: 2\n    window: 1s\n  - max_rows: 2\n    window: 1s\n");
    kf_rules *r = kf_rules_new(c, 10, NULL);
    kf_cell v = I(1);
    breaches b = {0};
    /* no record yet: no window to close, whatever the clock says */
    kf_rules_tick(r, 1000, on_breach, &b);
    kf_rules_tick(r, 90000, on_breach, &b);
    assert_int_equal(b.n, 0);
    kf_rules_begin(r);
    check1(r, &v, NULL, 0, 10100, NULL);
    check1(r, &v, NULL, 0, 10200, NULL);
    check1(r, &v, NULL, 0, 10300, NULL); /* [10000,11000): 3 rows */
    kf_rules_end_batch(r);
    kf_rules_commit(r, on_breach, &b);
    assert_int_equal(b.n, 0);
    kf_rules_tick(r, 5000, on_breach, &b); /* new rows: record time 10300 at clock 5000 */
    kf_rules_tick(r, 5500, on_breach, &b); /* record time 10800: still open */
    assert_int_equal(b.n, 0);
    kf_rules_tick(r, 5800, on_breach, &b); /* 11100: the window ends, over the maximum */
    assert_int_equal(b.n, 1);
    assert_string_equal(b.ids[0], "t.max_rows");
    assert_int_equal(b.rows[0], 3);
    assert_int_equal(b.start[0], 10000);
    assert_int_equal(b.end[0], 11000);
    kf_rules_tick(r, 7000, on_breach, &b); /* 12300: [11000,12000) had no row */
    assert_int_equal(b.n, 2);
    assert_string_equal(b.ids[1], "t.min_rows");
    assert_int_equal(b.rows[1], 0);
    assert_int_equal(b.start[1], 11000);
    assert_int_equal(b.end[1], 12000);
    kf_rules_tick(r, 7100, on_breach, &b); /* nothing new ended */
    assert_int_equal(b.n, 2);
    kf_rules_tick(r, 9800, on_breach, &b); /* 15100: [12000,13000) and the gap to 15000 */
    assert_int_equal(b.n, 4);
    assert_int_equal(b.rows[2], 0);
    assert_int_equal(b.start[2], 12000);
    assert_int_equal(b.end[2], 13000);
    assert_int_equal(b.rows[3], 0);
    assert_int_equal(b.start[3], 13000);
    assert_int_equal(b.end[3], 15000);
    /* records again: the current window counts them and closes on record time */
    kf_rules_begin(r);
    check1(r, &v, NULL, 0, 15500, NULL);
    kf_rules_end_batch(r);
    kf_rules_commit(r, on_breach, &b);
    kf_rules_tick(r, 9900, on_breach, &b);
    kf_rules_tick(r, 10000, on_breach, &b); /* armed again at 15500: 15600 */
    assert_int_equal(b.n, 4);
    kf_rules_begin(r);
    check1(r, &v, NULL, 0, 16100, NULL);
    kf_rules_end_batch(r);
    kf_rules_commit(r, on_breach, &b);
    assert_int_equal(b.n, 5);
    assert_string_equal(b.ids[4], "t.min_rows");
    assert_int_equal(b.rows[4], 1);
    assert_int_equal(b.start[4], 15000);
    assert_int_equal(b.end[4], 16000);
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

/* While records keep coming the clock closes nothing, even when their times lag behind. */
static void test_dataset_window_timer_waits_for_quiet(void **state)
{
    (void)state;
    kf_contract *c = parse("contract: t\ncolumns:\n  a: [not_null]\ndataset:\n"
                           "  - min_rows: 5\n    window: 1s\n");
    kf_rules *r = kf_rules_new(c, 10, NULL);
    kf_cell v = I(1);
    breaches b = {0};
    for (int i = 0; i < 20; i++) {
        kf_rules_begin(r);
        check1(r, &v, NULL, 0, 100 + i, NULL); /* a backfill of old records */
        kf_rules_end_batch(r);
        kf_rules_commit(r, on_breach, &b);
        kf_rules_tick(r, 1000000 + i * 5000, on_breach, &b);
    }
    assert_int_equal(b.n, 0);
    /* quiet from the last record (time 119): the window [0,1000) ends at clock +881 */
    kf_rules_tick(r, 1000000 + 19 * 5000 + 880, on_breach, &b);
    kf_rules_tick(r, 1000000 + 19 * 5000 + 881, on_breach, &b); /* 20 rows: no breach */
    kf_rules_tick(r, 1000000 + 19 * 5000 + 1880, on_breach, &b);
    assert_int_equal(b.n, 0);
    kf_rules_tick(r, 1000000 + 19 * 5000 + 1881, on_breach, &b);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.rows[0], 0);
    assert_int_equal(b.start[0], 1000);
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

typedef struct seen {
    int n;
    char last[512];
} seen;

static void on_violation(void *ctx, const kf_rule *rule, const char *message)
{
    seen *s = ctx;
    s->n++;
    snprintf(s->last, sizeof(s->last), "%s: %s", rule->id, message);
}

static void test_severity_and_first_failure(void **state)
{
    (void)state;
    kf_contract *c = parse("contract: t\ncolumns:\n  a:\n"
                           "    - {length: {max: 1}, severity: warn}\n"
                           "    - {regex: '^[0-9]+$'}\n"
                           "    - {allowed_values: ['1', '12']}\n");
    kf_rules *r = kf_rules_new(c, 10, NULL);
    seen s = {0};
    kf_rules_set_violation_fn(r, on_violation, &s);
    kf_cell v = S("ab");
    const kf_cell *cells[1] = {&v};
    kf_row row = {.cells = cells};
    kf_verdict vd;
    assert_int_equal(kf_rules_check(r, &row, &vd), KF_OK);
    assert_string_equal(vd.failed->id, "t.a.regex");
    assert_int_equal(vd.nwarn, 1);
    assert_int_equal(vd.nquarantine, 2);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.last, "t.a.allowed_values: column \"a\" value \"ab\" is not one of the "
                                "allowed values");
    kf_cell w = S("12");
    cells[0] = &w;
    assert_int_equal(kf_rules_check(r, &row, &vd), KF_OK);
    /* only the warn rule fails: the record is valid */
    assert_null(vd.failed);
    assert_int_equal(vd.nwarn, 1);
    assert_int_equal(vd.nquarantine, 0);
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

static void test_events(void **state)
{
    (void)state;
    kf_error err;
    kf_table *t = kf_table_new("kfleet", "shop", NULL, "orders", &err);
    kf_column id = {.name = "id", .pk_order = 1}, email = {.name = "email", .nullable = true},
              born = {.name = "born", .nullable = true};
    assert_int_equal(kf_coltype_parse("bigint", &id, &err), KF_OK);
    assert_int_equal(kf_coltype_parse("text", &email, &err), KF_OK);
    assert_int_equal(kf_coltype_parse("date", &born, &err), KF_OK);
    assert_int_equal(kf_table_add_column(t, &id, &err), KF_OK);
    assert_int_equal(kf_table_add_column(t, &email, &err), KF_OK);
    assert_int_equal(kf_table_add_column(t, &born, &err), KF_OK);
    kf_contract *c = parse("contract: t\ncolumns:\n  email: [not_null]\n"
                           "  born: [{allowed_values: ['2024-01-02']}]\n  ghost: [not_null]\n"
                           "  id: [{range: {min: 1}}]\n");
    kf_rules *r = kf_rules_new(c, 10, NULL);
    kf_cell after[3] = {I(5), S("a@b"), I(19724)}; /* 2024-01-02 */
    kf_event ev = {.op = KF_OP_CREATE, .table = t, .ncols = 3, .after = after};
    kf_verdict v;
    assert_int_equal(kf_rules_check_event(r, &ev, "k", 1, 0, &v), KF_OK);
    /* the contract column "ghost" is not in the table: it is missing */
    assert_non_null(v.failed);
    assert_string_equal(v.failed->id, "t.ghost.not_null");
    assert_int_equal(v.nquarantine, 1);
    after[1] = NUL;
    after[2] = I(19725);
    ev.op = KF_OP_UPDATE;
    assert_int_equal(kf_rules_check_event(r, &ev, "k", 1, 0, &v), KF_OK);
    assert_string_equal(v.failed->id, "t.email.not_null");
    assert_int_equal(v.nquarantine, 3);
    /* deletes and tombstones pass */
    ev.op = KF_OP_DELETE;
    ev.before = after;
    ev.after = NULL;
    assert_int_equal(kf_rules_check_event(r, &ev, "k", 1, 0, &v), KF_OK);
    assert_null(v.failed);
    kf_event tomb = {.op = KF_OP_TOMBSTONE};
    assert_int_equal(kf_rules_check_event(r, &tomb, "k", 1, 0, &v), KF_OK);
    assert_null(v.failed);
    kf_rules_commit(r, NULL, NULL);
    assert_int_equal(kf_rules_checked(r), 2);
    kf_rules_destroy(r);
    kf_contract_destroy(c);
    kf_table_destroy(t);
}

static void test_parsers(void **state)
{
    (void)state;
    assert_true(kf_parse_is_int("9223372036854775807", 19));
    assert_true(kf_parse_is_int("-9223372036854775808", 20));
    assert_false(kf_parse_is_int("-9223372036854775809", 20));
    assert_false(kf_parse_is_int("", 0));
    assert_false(kf_parse_is_int("-", 1));
    assert_false(kf_parse_is_int(" 1", 2));
    assert_true(kf_parse_is_float("-0.5e-3", 7));
    assert_false(kf_parse_is_float("inf", 3));
    assert_false(kf_parse_is_float(" 1", 2));
    assert_true(kf_parse_is_bool("No", 2));
    assert_false(kf_parse_is_bool("nope", 4));
    assert_true(kf_parse_is_date("2000-02-29", 10));
    assert_false(kf_parse_is_date("1900-02-29", 10));
    assert_false(kf_parse_is_date("2000-2-29", 9));
    assert_true(kf_parse_is_timestamp("2024-05-06T07:08", 16));
    assert_true(kf_parse_is_timestamp("2024-05-06T07:08:09.123456789Z", 30));
    assert_true(kf_parse_is_timestamp("2024-05-06T07:08:09-0530", 24));
    assert_false(kf_parse_is_timestamp("2024-05-06T07:08:09.Z", 21));
    assert_false(kf_parse_is_timestamp("2024-05-06T07:08:09+05:3", 24));
    assert_false(kf_parse_is_timestamp("2024-05-06", 10));
}

/* ---- the fast paths against the text they stand for ---- */

/* What kf_parse_is_float accepts by definition: strtod over the whole text (C locale), a
 * finite result and no range error, for texts shorter than 128 bytes not starting with a
 * space. */
static bool ref_float(const char *s, size_t len, double *out)
{
    char buf[128];
    if (len == 0 || len >= sizeof(buf) || isspace((unsigned char)s[0]))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    double d = strtod(buf, &end);
    *out = d;
    return *end == '\0' && isfinite(d) && errno != ERANGE;
}

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* A random text that is mostly almost a number. */
static size_t random_number_text(uint64_t *x, char *buf, size_t cap)
{
    static const char *const pieces[] = {"0",     "1", "9", "00",  "5",   ".",    "e",
                                         "E",     "+", "-", "e-3", "e+",  "400",  "e308",
                                         "e-330", "x", " ", "inf", "nan", "0x1p", "99999999999"};
    size_t n = 0, parts = 1 + rng_next(x) % 8;
    for (size_t i = 0; i < parts; i++) {
        const char *p = pieces[rng_next(x) % (sizeof(pieces) / sizeof(pieces[0]))];
        size_t pl = strlen(p);
        if (n + pl >= cap)
            break;
        memcpy(buf + n, p, pl);
        n += pl;
    }
    return n;
}

static void test_float_parser_matches_strtod(void **state)
{
    (void)state;
    static const char *const fixed[] = {"0",
                                        "-0",
                                        "+.5",
                                        "5.",
                                        ".",
                                        "-",
                                        "e5",
                                        "1e",
                                        "1e+",
                                        "1e-",
                                        "1e5",
                                        "1E-5",
                                        "1.5e3x",
                                        "1.2.3",
                                        "--1",
                                        "0x1p3",
                                        "0x",
                                        "inf",
                                        "-infinity",
                                        "nan",
                                        "nan(1)",
                                        "1e-400",
                                        "1e400",
                                        "1e308",
                                        "2e308",
                                        "1e-307",
                                        "4e-320",
                                        "0e-9999",
                                        "0e99999",
                                        "0.0e5000",
                                        "1e00000",
                                        "1e-00005",
                                        " 1",
                                        "1 ",
                                        "\t1",
                                        "12345678901234567890123",
                                        "0.000000000000000000000000000001",
                                        "9007199254740993",
                                        "9007199254740992e-22",
                                        "123456789012345678e3",
                                        "1.7976931348623157e308",
                                        "1.7976931348623159e308",
                                        "2.2250738585072014e-308",
                                        "00000000000000000001.5"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        double d;
        if (kf_parse_is_float(fixed[i], strlen(fixed[i])) !=
            ref_float(fixed[i], strlen(fixed[i]), &d))
            fail_msg("\"%s\": parser and strtod disagree", fixed[i]);
    }
    char nul[] = {'1', '2', '\0', 'x'}; /* strtod stops at the NUL: a number */
    double d;
    assert_true(kf_parse_is_float(nul, sizeof(nul)) == ref_float(nul, sizeof(nul), &d));
    char big[200];
    memset(big, '1', sizeof(big));
    assert_false(kf_parse_is_float(big, 127) != ref_float(big, 127, &d));
    assert_false(kf_parse_is_float(big, 128)); /* longer texts are no numbers */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 200000; i++) {
        char buf[100];
        size_t n = random_number_text(&x, buf, sizeof(buf));
        if (kf_parse_is_float(buf, n) != ref_float(buf, n, &d))
            fail_msg("\"%.*s\": parser and strtod disagree", (int)n, buf);
    }
}

/* Range on text: the same verdict as strtod's number would give, at the bounds too. */
static void test_range_text_matches_strtod(void **state)
{
    (void)state;
    kf_contract *c = parse("contract: t\ncolumns:\n  q:\n    - range: {min: 0.3, max: 12.5}\n");
    kf_rules *r = kf_rules_new(c, 10, NULL);
    static const char *const fixed[] = {"0.3",
                                        "0.29999999999999998",
                                        "0.2999999999999999",
                                        "12.5",
                                        "12.500000000000001",
                                        "12.50000000000001",
                                        "3e-1",
                                        "125e-1",
                                        "0.0000000000003e12",
                                        "-0",
                                        "13",
                                        "1e1",
                                        "0x1p3",
                                        "abc",
                                        "12.5000000000000000000001"};
    char msg[512];
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        double d;
        bool ok = ref_float(fixed[i], strlen(fixed[i]), &d) && d >= 0.3 && d <= 12.5;
        kf_cell v = S(fixed[i]);
        if ((check1(r, &v, NULL, 0, 0, msg) == NULL) != ok)
            fail_msg("\"%s\": expected %s, got \"%s\"", fixed[i], ok ? "pass" : "fail", msg);
    }
    uint64_t x = 12345;
    for (int i = 0; i < 50000; i++) {
        char buf[64];
        /* digits around the bounds: 0.3 and 12.5 with random tails and exponents */
        int n = snprintf(buf, sizeof(buf), "%s%s%0*llu%s", rng_next(&x) % 2 ? "0.29999" : "12.5",
                         rng_next(&x) % 2 ? "9" : "0", (int)(rng_next(&x) % 14),
                         (unsigned long long)(rng_next(&x) % 100000),
                         rng_next(&x) % 4 ? "" : (rng_next(&x) % 2 ? "e0" : "0e-0"));
        double d;
        bool ok = ref_float(buf, (size_t)n, &d) && d >= 0.3 && d <= 12.5;
        kf_cell v = S(buf);
        if ((check1(r, &v, NULL, 0, 0, msg) == NULL) != ok)
            fail_msg("\"%s\": expected %s, got \"%s\"", buf, ok ? "pass" : "fail", msg);
    }
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

/* Decimals: the unscaled bytes give the number the decimal text gives strtod. */
static void test_range_decimals(void **state)
{
    (void)state;
    kf_contract *c = parse("contract: t\ncolumns:\n  q:\n    - range: {min: -5.05, max: 0.1}\n");
    kf_rules *r = kf_rules_new(c, 10, NULL);
    uint64_t x = 777;
    char msg[512], text[128];
    for (int i = 0; i < 50000; i++) {
        kf_column dec = {.name = "q", .type = KF_COL_DECIMAL, .precision = 38};
        dec.scale = (int)(rng_next(&x) % 26);
        int64_t u;
        switch (rng_next(&x) % 4) {
        case 0: /* the bounds at this scale, give or take one */
            u = (rng_next(&x) % 2 ? -505 : 10) * (dec.scale >= 2 ? 1 : 0);
            for (int k = 2; k < dec.scale && k < 18; k++)
                u *= 10;
            u += (int64_t)(rng_next(&x) % 3) - 1;
            break;
        case 1:
            u = (int64_t)rng_next(&x); /* 64 bits: beyond 2^53 */
            break;
        default:
            u = (int64_t)(rng_next(&x) % 20000000) - 10000000;
        }
        /* minimal two's complement, big-endian */
        unsigned char be[8];
        size_t len = 8;
        for (int k = 7; k >= 0; k--)
            be[k] = (unsigned char)((uint64_t)u >> (8 * (7 - k)));
        size_t off = 0;
        while (len - off > 1 && ((be[off] == 0 && !(be[off + 1] & 0x80)) ||
                                 (be[off] == 0xff && (be[off + 1] & 0x80))))
            off++;
        kf_cell v = {.kind = KF_CELL_BYTES, .v.s = {(const char *)be + off, len - off}};
        assert_int_equal(
            kf_decimal_format(be + off, len - off, dec.scale, text, sizeof(text), NULL), KF_OK);
        double d;
        bool ok = ref_float(text, strlen(text), &d) && d >= -5.05 && d <= 0.1;
        if ((check1(r, &v, &dec, 0, 0, msg) == NULL) != ok)
            fail_msg("%s (scale %d): expected %s, got \"%s\"", text, dec.scale,
                     ok ? "pass" : "fail", msg);
    }
    /* more than 8 bytes and a large scale take the rendered text */
    kf_column wide = {.name = "q", .type = KF_COL_DECIMAL, .precision = 30, .scale = 24};
    kf_cell nine = {.kind = KF_CELL_BYTES, .v.s = {"\x00\x01\x00\x00\x00\x00\x00\x00\x00", 9}};
    assert_null(check1(r, &nine, &wide, 0, 0, msg));         /* 2^64 / 10^24: tiny */
    kf_cell empty = {.kind = KF_CELL_BYTES, .v.s = {"", 0}}; /* zero */
    assert_null(check1(r, &empty, &wide, 0, 0, msg));
    kf_column two = {.name = "q", .type = KF_COL_DECIMAL, .precision = 10, .scale = 2};
    kf_cell neg = {.kind = KF_CELL_BYTES, .v.s = {"\xfe\x0b", 2}}; /* -501 -> -5.01 */
    assert_null(check1(r, &neg, &two, 0, 0, msg));
    kf_cell below = {.kind = KF_CELL_BYTES, .v.s = {"\xfe\x01", 2}}; /* -511 -> -5.11 */
    assert_non_null(check1(r, &below, &two, 0, 0, msg));
    assert_string_equal(msg, "column \"q\" value -5.11 is below the minimum -5.05");
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

/* Unique and allowed_values compare the text of a value: an int and its digits are one value. */
static void test_values_compare_as_text(void **state)
{
    (void)state;
    kf_contract *c =
        parse("contract: t\ncolumns:\n  u:\n    - unique: true\n      window: 1000\n"
              "  a:\n    - allowed_values: [a, b, c, d, e, f, g, h, i, j, k, l, m, '7', "
              "'-9223372036854775808', 'false', '2024-01-02']\n");
    kf_rules *r = kf_rules_new(c, 1000, NULL);
    static const int64_t ints[] = {0, 7, -7, 10, 123456789, INT64_MAX, INT64_MIN, -1000000};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        char text[32];
        snprintf(text, sizeof(text), "%" PRId64, ints[i]);
        kf_cell iv = I(ints[i]), sv = S(text);
        const kf_cell *cells[2] = {&iv, NULL};
        kf_row row = {.cells = cells};
        kf_verdict v;
        assert_int_equal(kf_rules_check(r, &row, &v), KF_OK);
        assert_null(v.failed);
        cells[0] = &sv;
        assert_int_equal(kf_rules_check(r, &row, &v), KF_OK);
        if (!v.failed)
            fail_msg("%s: the string is no duplicate of the int", text);
        assert_string_equal(v.failed->id, "t.u.unique");
    }
    kf_column date = {.name = "a", .type = KF_COL_DATE};
    struct {
        kf_cell cell;
        const kf_column *col;
        bool ok;
    } cases[] = {
        {S("m"), NULL, true},       {S("n"), NULL, false},   {S("mm"), NULL, false},
        {S(""), NULL, false},       {I(7), NULL, true},      {I(70), NULL, false},
        {I(INT64_MIN), NULL, true}, {B(false), NULL, true},  {B(true), NULL, false},
        {I(19724), &date, true},    {I(19724), NULL, false}, {D(7.0), NULL, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const kf_cell *cells[2] = {NULL, &cases[i].cell};
        const kf_column *cols[2] = {NULL, cases[i].col};
        kf_row row = {.cells = cells, .cols = cols};
        kf_verdict v;
        assert_int_equal(kf_rules_check(r, &row, &v), KF_OK);
        if ((v.failed == NULL) != cases[i].ok)
            fail_msg("case %zu: expected %s, got \"%s\"", i, cases[i].ok ? "pass" : "fail",
                     v.message);
    }
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

/* Patterns run JIT-compiled; UTF subjects outside ASCII and invalid UTF-8 keep their results. */
static void test_regex_subjects(void **state)
{
    (void)state;
    kf_contract *c = parse("contract: t\ncolumns:\n  e:\n    - regex: '^.{3} .$'\n");
    kf_rules *r = kf_rules_new(c, 10, NULL);
    char msg[512];
    kf_cell ascii = S("abc d"), utf = S("\xc3\xa9t\xc3\xa9 \xc3\xa9"), bad = S("abc \xc3"),
            nomatch = S("abc  d"), num = I(42);
    assert_null(check1(r, &ascii, NULL, 0, 0, msg));
    assert_null(check1(r, &utf, NULL, 0, 0, msg)); /* characters, not bytes */
    assert_non_null(check1(r, &bad, NULL, 0, 0, msg));
    assert_non_null(strstr(msg, "could not be matched against /^.{3} .$/ (error -"));
    assert_non_null(check1(r, &nomatch, NULL, 0, 0, msg));
    assert_string_equal(msg, "column \"e\" value \"abc  d\" does not match /^.{3} .$/");
    assert_non_null(check1(r, &num, NULL, 0, 0, msg)); /* "42": no space */
    kf_cell raw = {.kind = KF_CELL_BYTES, .v.s = {"xyz w", 5}};
    assert_null(check1(r, &raw, NULL, 0, 0, msg));
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

/* Length counts characters; bytes decide only when they can. */
static void test_length_characters(void **state)
{
    (void)state;
    kf_contract *c = parse("contract: t\ncolumns:\n  n:\n    - length: {min: 3, max: 4}\n"
                           "  m:\n    - length: {max: 2}\n");
    kf_rules *r = kf_rules_new(c, 10, NULL);
    struct {
        size_t col;
        kf_cell cell;
        bool ok;
        const char *msg;
    } cases[] = {
        {0, S("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"), true, NULL}, /* 8 bytes, 4 characters */
        {0, S("\xc3\xa9\xc3\xa9"), false, "column \"n\" length 2 is below the minimum 3"},
        {0, S("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"), false,
         "column \"n\" length 5 is above the maximum 4"},
        {0, S("abcdefghijklmnopq\xc3\xa9"), false, "column \"n\" length 18 is above the maximum 4"},
        {1, S("\xf0\x9f\x98\x80\xf0\x9f\x98\x80"), true, NULL}, /* two emoji, 8 bytes */
        {1, S("ab"), true, NULL},
        {1, I(-5), true, NULL},
        {1, I(100), false, "column \"m\" length 3 is above the maximum 2"},
        {1,
         {.kind = KF_CELL_BYTES, .v.s = {"\xc3\xa9\xc3", 3}},
         false,
         "column \"m\" length 3 is above the maximum 2"}, /* bytes count as bytes */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const kf_cell *cells[2] = {NULL};
        cells[cases[i].col] = &cases[i].cell;
        kf_row row = {.cells = cells};
        kf_verdict v;
        assert_int_equal(kf_rules_check(r, &row, &v), KF_OK);
        if ((v.failed == NULL) != cases[i].ok)
            fail_msg("case %zu: expected %s, got \"%s\"", i, cases[i].ok ? "pass" : "fail",
                     v.message);
        if (cases[i].msg)
            assert_string_equal(v.message, cases[i].msg);
    }
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_null),
        cmocka_unit_test(test_allowed_values_and_nulls_pass),
        cmocka_unit_test(test_regex),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_length),
        cmocka_unit_test(test_dtype),
        cmocka_unit_test(test_unique_count_window),
        cmocka_unit_test(test_unique_row_identity),
        cmocka_unit_test(test_unique_time_window),
        cmocka_unit_test(test_unique_rollback),
        cmocka_unit_test(test_dataset_batch_window),
        cmocka_unit_test(test_dataset_time_window),
        cmocka_unit_test(test_dataset_window_closes_on_timer),
        cmocka_unit_test(test_dataset_window_timer_waits_for_quiet),
        cmocka_unit_test(test_severity_and_first_failure),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_parsers),
        cmocka_unit_test(test_float_parser_matches_strtod),
        cmocka_unit_test(test_range_text_matches_strtod),
        cmocka_unit_test(test_range_decimals),
        cmocka_unit_test(test_values_compare_as_text),
        cmocka_unit_test(test_regex_subjects),
        cmocka_unit_test(test_length_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
