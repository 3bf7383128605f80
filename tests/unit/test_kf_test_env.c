/* Unit tests for the integration-test environment helpers (DSN parsing, unique names). */
#include "kf_test_env.h"

/* Parses text as a DSN of scheme and asserts every part of the result against want. */
static void assert_parses_to(const char *text, const char *scheme, unsigned default_port,
                             const kf_test_dsn *want)
{
    kf_test_dsn dsn;
    assert_true(kf_test_dsn_parse(text, scheme, default_port, &dsn));
    assert_string_equal(dsn.user, want->user);
    assert_string_equal(dsn.password, want->password);
    assert_string_equal(dsn.host, want->host);
    assert_int_equal(dsn.port, want->port);
    assert_string_equal(dsn.db, want->db);
}

static void parses_a_full_mysql_dsn(void **state)
{
    assert_parses_to("mysql://kfleet:secret@127.0.0.1:13306/kfleet", "mysql", 3306,
                     &(kf_test_dsn){"kfleet", "secret", "127.0.0.1", 13306, "kfleet"});
}

static void defaults_port_and_allows_missing_password_and_db(void **state)
{
    assert_parses_to("postgresql://app@db.example", "postgresql", 5432,
                     &(kf_test_dsn){"app", "", "db.example", 5432, ""});
}

static void decodes_percent_escapes_in_credentials(void **state)
{
    assert_parses_to("mysql://us%40er:p%3Aa%2fss@h:1/d%20b", "mysql", 3306,
                     &(kf_test_dsn){"us@er", "p:a/ss", "h", 1, "d b"});
}

static void rejects_malformed_dsns(void **state)
{
    kf_test_dsn dsn;
    /* another scheme */
    assert_false(kf_test_dsn_parse("postgresql://u:p@h:1/db", "mysql", 3306, &dsn));
    static const char *const bad[] = {
        "mysql:/u:p@h:1/db",      "mysql://h:1/db",        "mysql://:p@h:1/db",
        "mysql://u:p@:1/db",      "mysql://u:p@h:/db",     "mysql://u:p@h:0/db",
        "mysql://u:p@h:70000/db", "mysql://u:p@h:12x/db",  "mysql://u:p@h:1/db?ssl=1",
        "mysql://u:p%4@h:1/db",   "mysql://u:p%zz@h:1/db",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (kf_test_dsn_parse(bad[i], "mysql", 3306, &dsn))
            fail_msg("\"%s\" parsed as a mysql DSN", bad[i]);
    }
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
