/* Unit tests of the pipeline's run ids (tools/pipeline/prune.c): which names are a run's, and
 * which run is newer, across the turn of the year too. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "pipeline.h"

static struct tm day(int year, int month, int mday)
{
    struct tm t;
    memset(&t, 0, sizeof(t));
    t.tm_year = year - 1900;
    t.tm_mon = month - 1;
    t.tm_mday = mday;
    return t;
}

static bool parses(const char *s, const char *prefix, char end, size_t *len)
{
    struct tm today = day(2026, 11, 21);
    pl_run_key k;
    memset(&k, 0, sizeof(k));
    bool ok = pl_run_id_parse(s, prefix, end, &today, &k);
    if (len)
        *len = ok ? k.len : 0;
    return ok;
}

static void ids_of_topics_schemas_and_groups(void **state)
{
    (void)state;
    size_t len = 0;
    assert_true(parses("run_1121_042835_29684.shop.orders", "run_", '.', &len));
    assert_int_equal(len, strlen("run_1121_042835_29684"));
    assert_true(
        parses("run_1121_042835_29684.dlq.run_1121_042835_29684.shop.orders", "run_", '.', &len));
    assert_int_equal(len, strlen("run_1121_042835_29684"));
    assert_true(parses("run_1121_042835_29684.audit", "run_", '.', NULL));
    assert_true(parses("run_1121_042835_29684", "run_", '\0', &len));
    assert_int_equal(len, strlen("run_1121_042835_29684"));
    assert_true(parses("run_1121_042835_29684-sink", "run_", '-', NULL));
    assert_true(parses("run_0229_000000_1.x", "run_", '.', NULL));
    assert_true(parses("run_1231_235959_4294967295.x", "run_", '.', NULL)); /* 10 digits */
    assert_true(parses("prune_7_1_run_0101_000000_7.x", "prune_7_1_run_", '.', NULL));
}

static void other_names_are_not_runs(void **state)
{
    (void)state;
    static const char *const names[] = {
        "run_1121_042835_29684",         /* no '.' after the id */
        "run_1121_042835_29684x.shop",   /* more than a pid */
        "run_1121_042835_29684_2.shop",  /* more than a pid */
        "run_1121_042835_.shop",         /* no pid */
        "run_1121_042835_0123.shop",     /* leading zero */
        "run_1121_042835_12345678901.x", /* 11 digits */
        "run_1321_042835_1.x",           /* month 13 */
        "run_0021_042835_1.x",           /* month 0 */
        "run_1100_042835_1.x",           /* day 0 */
        "run_0230_042835_1.x",           /* 30 February */
        "run_1131_042835_1.x",           /* 31 November */
        "run_1121_240000_1.x",           /* hour 24 */
        "run_1121_236000_1.x",           /* minute 60 */
        "run_1121_235960_1.x",           /* second 60 */
        "run_121_042835_1.x",            /* three digits of date */
        "run_11211_042835_1.x",          /* five */
        "run_1121_04283_1.x",            /* five digits of time */
        "run_1121-042835-1.x",           /* other separators */
        "run_1121_042835",               /* cut short */
        "run_11",
        "run_",
        "run",
        "",
        "xrun_1121_042835_1.x", /* another prefix */
        "RUN_1121_042835_1.x",
        "run-1121_042835_1.x",
        "kfleet.sinkit.run_1121_042835_1.x",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (parses(names[i], "run_", '.', NULL))
            fail_msg("\"%s\" taken for a run's topic", names[i]);
    assert_false(parses("run_1121_042835_29684.x", "run_", '-', NULL));
    assert_false(parses("run_1121_042835_29684-sink", "run_", '\0', NULL));
    assert_false(parses("run_1121_042835_29684", "prune_run_", '\0', NULL));
}

/* -1 when a is newer than b */
static int order(const char *a, const char *b, struct tm today)
{
    pl_run_key ka, kb;
    assert_true(pl_run_id_parse(a, "run_", '\0', &today, &ka));
    assert_true(pl_run_id_parse(b, "run_", '\0', &today, &kb));
    return pl_run_key_cmp(&ka, &kb);
}

static void newer_runs_sort_first(void **state)
{
    (void)state;
    struct tm nov21 = day(2026, 11, 21);
    assert_int_equal(order("run_1121_042835_5", "run_1120_235959_9", nov21), -1);
    assert_int_equal(order("run_1120_235959_9", "run_1121_042835_5", nov21), 1);
    assert_int_equal(order("run_1121_000001_5", "run_1121_000000_9", nov21), -1);
    assert_int_equal(order("run_1121_000000_9", "run_1121_000000_10", nov21), 1);
    assert_int_equal(order("run_1121_000000_9", "run_1121_000000_9", nov21), 0);
    assert_int_equal(order("run_0301_000000_1", "run_0228_235959_1", nov21), -1);
    /* within a week ahead (a clock or zone apart) it is this year's */
    assert_int_equal(order("run_1128_000000_1", "run_1121_000000_1", nov21), -1);
    /* further ahead it is last year's, older than anything of this year */
    assert_int_equal(order("run_1129_000000_1", "run_0101_000000_1", nov21), 1);
    /* at the turn of the year December's runs are older than January's */
    struct tm jan2 = day(2027, 1, 2);
    assert_int_equal(order("run_1231_235959_1", "run_0101_000000_1", jan2), 1);
    assert_int_equal(order("run_0102_000000_1", "run_1230_000000_1", jan2), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ids_of_topics_schemas_and_groups),
        cmocka_unit_test(other_names_are_not_runs),
        cmocka_unit_test(newer_runs_sort_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
