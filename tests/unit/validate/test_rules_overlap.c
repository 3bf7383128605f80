/* Unit tests for two open batches in the rules engine (the next batch checked while the
 * previous one's transaction commits): a commit makes only the oldest batch final, with its
 * own counters and breaches; a rollback restores the state from before the oldest batch;
 * a third batch, or more records than the windows keep for a rollback, is refused; windows do
 * not close on the clock while a batch is open. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules_fixture.h"

/* Checks a one-column record at time ts; returns the failed rule id or NULL. */
static const char *check1(kf_rules *r, const char *value, int64_t ts)
{
    kf_cell cell = S(value);
    const kf_cell *cells[1] = {&cell};
    kf_row row = {.cells = cells, .ts_ms = ts};
    kf_verdict v;
    assert_int_equal(kf_rules_check(r, &row, &v), KF_OK);
    return v.failed ? v.failed->id : NULL;
}

typedef struct breaches {
    int n;
    char ids[8][64];
    int64_t rows[8];
} breaches;

static void on_breach(void *ctx, const kf_rule *rule, int64_t rows, int64_t start, int64_t end)
{
    (void)start;
    (void)end;
    breaches *b = ctx;
    assert_true(b->n < 8);
    snprintf(b->ids[b->n], sizeof(b->ids[0]), "%s", rule->id);
    b->rows[b->n++] = rows;
}

static const char UNIQUE_AND_ROWS[] =
    "contract: t\ncolumns:\n  u:\n    - unique: true\n"
    "      window: 100\n    - allowed_values: [a, b, c, d, e, f]\n"
    "dataset:\n  - max_rows: 2\n";

/* The older batch commits and the newer one rolls back: what stays is the older one. */
static void test_commit_older_rollback_newer(void **state)
{
    (void)state;
    kf_contract *c = parse(UNIQUE_AND_ROWS);
    kf_rules *r = kf_rules_new(c, 20, NULL);
    breaches b = {0};
    assert_int_equal(kf_rules_begin(r), KF_OK);
    assert_null(check1(r, "a", 0));
    assert_null(check1(r, "b", 0));
    assert_string_equal(check1(r, "x", 0), "t.u.allowed_values");
    kf_rules_end_batch(r); /* 3 rows: over max_rows */
    assert_int_equal(kf_rules_begin(r), KF_OK);
    assert_int_equal(kf_rules_open(r), 2);
    assert_string_equal(check1(r, "a", 0), "t.u.unique");
    assert_null(check1(r, "c", 0));
    assert_string_equal(check1(r, "y", 0), "t.u.allowed_values");
    kf_rules_end_batch(r);
    /* the older batch: its rows, its violations, its breach only */
    kf_rules_commit(r, on_breach, &b);
    assert_int_equal(kf_rules_open(r), 1);
    assert_int_equal(kf_rules_checked(r), 3);
    assert_int_equal(kf_rules_violations(r, 0), 0);
    assert_int_equal(kf_rules_violations(r, 1), 1);
    assert_int_equal(b.n, 1);
    assert_string_equal(b.ids[0], "t.max_rows");
    assert_int_equal(b.rows[0], 3);
    /* the newer batch aborts: "c" was never seen, "a" still was */
    kf_rules_rollback(r);
    assert_int_equal(kf_rules_open(r), 0);
    kf_rules_commit(r, on_breach, &b);
    assert_int_equal(b.n, 1);
    assert_int_equal(kf_rules_checked(r), 3);
    assert_int_equal(kf_rules_violations(r, 0), 0);
    assert_int_equal(kf_rules_begin(r), KF_OK);
    assert_null(check1(r, "c", 0));
    assert_string_equal(check1(r, "a", 0), "t.u.unique");
    kf_rules_end_batch(r);
    kf_rules_commit(r, on_breach, &b);
    assert_int_equal(kf_rules_checked(r), 5);
    assert_int_equal(kf_rules_violations(r, 0), 1);
    assert_int_equal(b.n, 1);
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

/* Both commit, one after the other: each reports its own breaches and counts. */
static void test_commit_both(void **state)
{
    (void)state;
    kf_contract *c = parse(UNIQUE_AND_ROWS);
    kf_rules *r = kf_rules_new(c, 20, NULL);
    breaches b = {0};
    kf_rules_begin(r);
    assert_null(check1(r, "a", 0));
    kf_rules_end_batch(r);
    kf_rules_begin(r);
    assert_null(check1(r, "b", 0));
    assert_null(check1(r, "c", 0));
    assert_string_equal(check1(r, "b", 0), "t.u.unique");
    kf_rules_end_batch(r);
    kf_rules_commit(r, on_breach, &b);
    assert_int_equal(kf_rules_checked(r), 1);
    assert_int_equal(kf_rules_violations(r, 0), 0);
    assert_int_equal(b.n, 0);
    kf_rules_commit(r, on_breach, &b);
    assert_int_equal(kf_rules_checked(r), 4);
    assert_int_equal(kf_rules_violations(r, 0), 1);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.rows[0], 3);
    assert_int_equal(kf_rules_open(r), 0);
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

/* The older batch aborts while the newer one is open: both are undone, also what they
 * evicted from a count window. */
static void test_rollback_both(void **state)
{
    (void)state;
    kf_contract *c = parse("contract: t\ncolumns:\n  u:\n    - unique: true\n      window: 2\n");
    kf_rules *r = kf_rules_new(c, 6, NULL);
    assert_null(check1(r, "a", 0));
    assert_null(check1(r, "b", 0));
    kf_rules_commit(r, NULL, NULL);
    kf_rules_begin(r);
    assert_null(check1(r, "x", 0)); /* evicts a */
    assert_null(check1(r, "y", 0)); /* evicts b */
    kf_rules_end_batch(r);
    kf_rules_begin(r);
    assert_null(check1(r, "z", 0));
    assert_null(check1(r, "a", 0));
    kf_rules_end_batch(r);
    kf_rules_rollback(r);
    assert_int_equal(kf_rules_open(r), 0);
    assert_int_equal(kf_rules_checked(r), 2);
    /* the window is a, b again */
    kf_rules_begin(r);
    assert_string_equal(check1(r, "b", 0), "t.u.unique");
    kf_rules_rollback(r);
    kf_rules_begin(r);
    assert_null(check1(r, "x", 0));
    kf_rules_commit(r, NULL, NULL);
    assert_int_equal(kf_rules_checked(r), 3);
    assert_int_equal(kf_rules_violations(r, 0), 0);
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

/* No third batch; no more records over both open batches than the windows keep for a
 * rollback. */
static void test_limits(void **state)
{
    (void)state;
    kf_contract *c = parse("contract: t\ncolumns:\n  u:\n    - unique: true\n      window: 2\n");
    kf_rules *r = kf_rules_new(c, 4, NULL);
    assert_null(check1(r, "w", 0));
    assert_null(check1(r, "x", 0));
    kf_rules_commit(r, NULL, NULL);
    assert_int_equal(kf_rules_begin(r), KF_OK);
    assert_null(check1(r, "a", 0));
    assert_null(check1(r, "b", 0));
    kf_rules_end_batch(r);
    assert_int_equal(kf_rules_begin(r), KF_OK);
    assert_int_equal(kf_rules_begin(r), KF_ERR_STATE);
    assert_null(check1(r, "c", 0));
    assert_null(check1(r, "d", 0));
    /* a fifth record over the two batches could not be undone */
    kf_cell e = S("e");
    const kf_cell *cells[1] = {&e};
    kf_row row = {.cells = cells};
    kf_verdict v;
    assert_int_equal(kf_rules_check(r, &row, &v), KF_ERR_STATE);
    /* once the older batch is final its records no longer count */
    kf_rules_commit(r, NULL, NULL);
    assert_null(check1(r, "e", 0));
    kf_rules_commit(r, NULL, NULL);
    assert_int_equal(kf_rules_checked(r), 7);
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

/* A tick while a batch is open changes nothing: a rollback must not bring closed windows
 * back. Once the batches are final it closes them. */
static void test_tick_waits_for_open_batches(void **state)
{
    (void)state;
    kf_contract *c = parse("contract: t\ncolumns:\n  a: [not_null]\ndataset:\n"
                           "  - min_rows: 2\n    window: 1s\n");
    kf_rules *r = kf_rules_new(c, 10, NULL);
    breaches b = {0};
    kf_rules_begin(r);
    assert_null(check1(r, "x", 100));
    kf_rules_end_batch(r);
    kf_rules_tick(r, 1000, on_breach, &b);
    kf_rules_tick(r, 90000, on_breach, &b);
    assert_int_equal(b.n, 0);
    kf_rules_commit(r, on_breach, &b);
    assert_int_equal(b.n, 0);
    kf_rules_tick(r, 100000, on_breach, &b); /* arms: the last change is now */
    kf_rules_tick(r, 102000, on_breach, &b);
    assert_true(b.n >= 1);
    assert_string_equal(b.ids[0], "t.min_rows");
    assert_int_equal(b.rows[0], 1);
    kf_rules_destroy(r);
    kf_contract_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_older_rollback_newer),
        cmocka_unit_test(test_commit_both),
        cmocka_unit_test(test_rollback_both),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_tick_waits_for_open_batches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
