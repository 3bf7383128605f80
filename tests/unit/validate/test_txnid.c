/* Unit tests for the default transactional.id: group.instance.id wins; otherwise instances on
 * one host get distinct slots from lock files, and a freed slot is taken back; without a
 * usable lock directory the id falls back to the process id. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "txnid.h"

static void test_instance_id(void **state)
{
    (void)state;
    kf_error err;
    kf_txnid *t = kf_txnid_new("grp", "replica-a", "/nonexistent-dir", &err);
    assert_non_null(t);
    assert_string_equal(kf_txnid_id(t), "grp-replica-a");
    assert_int_equal(kf_txnid_slot(t), -1);
    kf_txnid_destroy(t);
    kf_txnid_destroy(NULL);
}

static void test_slots(void **state)
{
    (void)state;
    char dir[] = "/tmp/kfleet-txnid-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    char want[600];
    kf_error err;

    /* Two instances at once: different slots, so different ids. */
    kf_txnid *a = kf_txnid_new("g/x", NULL, dir, &err);
    kf_txnid *b = kf_txnid_new("g/x", "", dir, &err);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(kf_txnid_slot(a), 0);
    assert_int_equal(kf_txnid_slot(b), 1);
    snprintf(want, sizeof(want), "g/x-%s-0", host);
    assert_string_equal(kf_txnid_id(a), want);
    snprintf(want, sizeof(want), "g/x-%s-1", host);
    assert_string_equal(kf_txnid_id(b), want);
    assert_string_not_equal(kf_txnid_id(a), kf_txnid_id(b));

    /* The first one goes away (as a killed process would): its successor takes slot 0, the
     * id whose open transaction it then aborts. */
    kf_txnid_destroy(a);
    kf_txnid *c = kf_txnid_new("g/x", NULL, dir, &err);
    assert_non_null(c);
    assert_int_equal(kf_txnid_slot(c), 0);

    /* Another group has its own slots. */
    kf_txnid *d = kf_txnid_new("other", NULL, dir, &err);
    assert_non_null(d);
    assert_int_equal(kf_txnid_slot(d), 0);

    kf_txnid_destroy(b);
    kf_txnid_destroy(c);
    kf_txnid_destroy(d);
    char path[700];
    const char *files[] = {"g_x.0", "g_x.1", "other.0"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/kfleet-validate.%s.lock", dir, files[i]);
        assert_int_equal(unlink(path), 0);
    }
    assert_int_equal(rmdir(dir), 0);
}

static void test_pid_fallback(void **state)
{
    (void)state;
    kf_error err;
    kf_txnid *t = kf_txnid_new("grp", NULL, "/nonexistent-dir/below", &err);
    assert_non_null(t);
    assert_int_equal(kf_txnid_slot(t), -1);
    char suffix[32];
    snprintf(suffix, sizeof(suffix), "-pid%ld", (long)getpid());
    const char *id = kf_txnid_id(t);
    assert_true(strncmp(id, "grp-", 4) == 0);
    assert_string_equal(id + strlen(id) - strlen(suffix), suffix);
    kf_txnid_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_instance_id),
        cmocka_unit_test(test_slots),
        cmocka_unit_test(test_pid_fallback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
