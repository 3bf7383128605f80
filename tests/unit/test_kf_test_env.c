/* Unit tests for the integration-test environment helpers (DSN parsing, unique names). */
#include "kf_test_env.h"

static void parses_a_full_mysql_dsn(void **state)
{
    kf_test_dsn dsn;
    assert_true(
        kf_test_dsn_parse("mysql://kfleet:secret@127.0.0.1:13306/kfleet", "mysql", 3306, &dsn));
    assert_string_equal(dsn.user, "kfleet");
    assert_string_equal(dsn.password, "secret");
    assert_string_equal(dsn.host, "127.0.0.1");
    assert_int_equal(dsn.port, 13306);
    assert_string_equal(dsn.db, "kfleet");
}

static void defaults_port_and_allows_missing_password_and_db(void **state)
{
    kf_test_dsn dsn;
    assert_true(kf_test_dsn_parse("postgresql://app@db.example", "postgresql", 5432, &dsn));
    assert_string_equal(dsn.user, "app");
    assert_string_equal(dsn.password, "");
    assert_string_equal(dsn.host, "db.example");
    assert_int_equal(dsn.port, 5432);
    assert_string_equal(dsn.db, "");
}

static void decodes_percent_escapes_in_credentials(void **state)
{
    kf_test_dsn dsn;
    assert_true(kf_test_dsn_parse("mysql://us%40er:p%3Aa%2fss@h:1/d%20b", "mysql", 3306, &dsn));
    assert_string_equal(dsn.user, "us@er");
    assert_string_equal(dsn.password, "p:a/ss");
    assert_string_equal(dsn.db, "d b");
}

static void rejects_malformed_dsns(void **state)
{
    kf_test_dsn dsn;
    assert_false(kf_test_dsn_parse("postgresql://u:p@h:1/db", "mysql", 3306, &dsn));
    assert_false(kf_test_dsn_parse("mysql:/u:p@h:1/db", "mysql", 3306, &dsn));
    assert_false(kf_test_dsn_parse("mysql://h:1/db", "mysql", 3306, &dsn));
    assert_false(kf_test_dsn_parse("mysql://:p@h:1/db", "mysql", 3306, &dsn));
    assert_false(kf_test_dsn_parse("mysql://u:p@:1/db", "mysql", 3306, &dsn));
    assert_false(kf_test_dsn_parse("mysql://u:p@h:/db", "mysql", 3306, &dsn));
    assert_false(kf_test_dsn_parse("mysql://u:p@h:0/db", "mysql", 3306, &dsn));
    assert_false(kf_test_dsn_parse("mysql://u:p@h:70000/db", "mysql", 3306, &dsn));
    assert_false(kf_test_dsn_parse("mysql://u:p@h:12x/db", "mysql", 3306, &dsn));
    assert_false(kf_test_dsn_parse("mysql://u:p@h:1/db?ssl=1", "mysql", 3306, &dsn));
    assert_false(kf_test_dsn_parse("mysql://u:p%4@h:1/db", "mysql", 3306, &dsn));
    assert_false(kf_test_dsn_parse("mysql://u:p%zz@h:1/db", "mysql", 3306, &dsn));
}

static void rejects_parts_that_do_not_fit(void **state)
{
    char long_dsn[600];
    char user[300];
    memset(user, 'u', sizeof(user) - 1);
    user[sizeof(user) - 1] = '\0';
    snprintf(long_dsn, sizeof(long_dsn), "mysql://%s:p@h:1/db", user);
    kf_test_dsn dsn;
    assert_false(kf_test_dsn_parse(long_dsn, "mysql", 3306, &dsn));
}

static void env_returns_the_value_when_set(void **state)
{
    assert_int_equal(setenv("KFLEET_TEST_ENV_PROBE", "value", 1), 0);
    assert_string_equal(kf_test_env("KFLEET_TEST_ENV_PROBE"), "value");
    assert_int_equal(unsetenv("KFLEET_TEST_ENV_PROBE"), 0);
}

static void unique_names_differ_and_keep_the_prefix(void **state)
{
    char a[64];
    char b[64];
    kf_test_unique_name(a, sizeof(a), "kfleet_t");
    kf_test_unique_name(b, sizeof(b), "kfleet_t");
    assert_string_not_equal(a, b);
    assert_memory_equal(a, "kfleet_t_", 9);
    assert_memory_equal(b, "kfleet_t_", 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_a_full_mysql_dsn),
        cmocka_unit_test(defaults_port_and_allows_missing_password_and_db),
        cmocka_unit_test(decodes_percent_escapes_in_credentials),
        cmocka_unit_test(rejects_malformed_dsns),
        cmocka_unit_test(rejects_parts_that_do_not_fit),
        cmocka_unit_test(env_returns_the_value_when_set),
        cmocka_unit_test(unique_names_differ_and_keep_the_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
