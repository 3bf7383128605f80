/* Unit tests for the error object. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "kfleet/error.h"

static void set_fills_code_message_and_flags(void **state)
{
    kf_error err;
    kf_error_clear(&err);
    int rc = kf_error_set(&err, KF_ERR_KAFKA, true, "could not produce to \"%s\"", "t1");
    assert_int_equal(rc, KF_ERR_KAFKA);
    assert_int_equal(err.code, KF_ERR_KAFKA);
    assert_true(err.retriable);
    assert_false(err.fatal);
    assert_string_equal(err.message, "could not produce to \"t1\"");
    assert_int_equal(kf_error_set(&err, KF_ERR_FATAL, false, "x"), KF_ERR_FATAL);
    assert_true(err.fatal);
}

static void set_with_null_error_returns_code(void **state)
{
    assert_int_equal(kf_error_set(NULL, KF_ERR_NOMEM, false, "x"), KF_ERR_NOMEM);
    kf_error_clear(NULL);
}

static void names_cover_codes(void **state)
{
    assert_string_equal(kf_err_name(KF_ERR_NOT_FOUND), "not found");
    assert_string_equal(kf_err_name(12345), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(set_fills_code_message_and_flags),
        cmocka_unit_test(set_with_null_error_returns_code),
        cmocka_unit_test(names_cover_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
