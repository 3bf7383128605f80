/* Unit tests for the simulator's progress file: atomic save and load round trip, a missing,
 * damaged or foreign file refused with a clear error, the resume compatibility check and the
 * spec digest. */
#include "sim_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state.h"

typedef struct fixture {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/kfleet-sim-state-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->path, sizeof(fx->path), "%s/%s", fx->dir, KF_SIM_STATE_FILE);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.tmp", fx->path);
    unlink(tmp);
    unlink(fx->path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static kf_sim_state sample(void)
{
    kf_sim_state st = {
        .seed = UINT64_MAX - 7, /* above 2^53: must survive as text */
        .start_us = 1704067200000000,
        .tick_us = 1000,
        .batch_size = 250,
        .spec_digest = 0x0123456789abcdefULL,
        .acked_seq = 123456789,
    };
    snprintf(st.output, sizeof(st.output), "postgres");
    return st;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void round_trip(void **state)
{
    fixture *fx = *state;
    kf_sim_state st = sample(), back;
    kf_error err;
    kf_error_clear(&err);
    assert_int_equal(kf_sim_state_save(fx->path, &st, &err), KF_OK);
    memset(&back, 0xa5, sizeof(back));
    assert_int_equal(kf_sim_state_load(fx->path, &back, &err), KF_OK);
    assert_true(back.seed == st.seed);
    assert_true(back.start_us == st.start_us);
    assert_true(back.tick_us == st.tick_us);
    assert_int_equal(back.batch_size, st.batch_size);
    assert_true(back.spec_digest == st.spec_digest);
    assert_true(back.acked_seq == st.acked_seq);
    assert_string_equal(back.output, "postgres");
    /* the temporary file of the atomic write is gone */
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.tmp", fx->path);
    assert_int_equal(access(tmp, F_OK), -1);
}

static void save_replaces_atomically(void **state)
{
    fixture *fx = *state;
    kf_sim_state st = sample(), back;
    kf_error err;
    assert_int_equal(kf_sim_state_save(fx->path, &st, &err), KF_OK);
    st.acked_seq = 999;
    assert_int_equal(kf_sim_state_save(fx->path, &st, &err), KF_OK);
    assert_int_equal(kf_sim_state_load(fx->path, &back, &err), KF_OK);
    assert_true(back.acked_seq == 999);
    /* a stale temporary file from a crash does not get in the way */
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.tmp", fx->path);
    write_text(tmp, "{\"half\":");
    st.acked_seq = 1000;
    assert_int_equal(kf_sim_state_save(fx->path, &st, &err), KF_OK);
    assert_int_equal(kf_sim_state_load(fx->path, &back, &err), KF_OK);
    assert_true(back.acked_seq == 1000);
}

static void save_into_missing_directory_fails(void **state)
{
    fixture *fx = *state;
    kf_sim_state st = sample();
    kf_error err;
    kf_error_clear(&err);
    char path[200];
    snprintf(path, sizeof(path), "%s/no/such/dir/state.json", fx->dir);
    assert_int_equal(kf_sim_state_save(path, &st, &err), KF_ERR_IO);
    assert_non_null(strstr(err.message, "could not write progress file"));
    assert_non_null(strstr(err.message, "No such file or directory"));
}

static void missing_file_is_not_found(void **state)
{
    fixture *fx = *state;
    kf_sim_state back;
    kf_error err;
    kf_error_clear(&err);
    assert_int_equal(kf_sim_state_load(fx->path, &back, &err), KF_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "nothing to resume"));
    assert_non_null(strstr(err.message, fx->path));
}

static void corrupt_files_are_refused(void **state)
{
    fixture *fx = *state;
    static const char *const bad[] = {
        "",                              /* empty */
        "{\"format\":1,\"seed\":\"1\",", /* truncated */
        "not json at all",               /* garbage */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_text(fx->path, bad[i]);
        kf_sim_state back;
        kf_error err;
        kf_error_clear(&err);
        assert_int_equal(kf_sim_state_load(fx->path, &back, &err), KF_ERR_CONFIG);
        assert_non_null(strstr(err.message, "not a progress file"));
    }
}

static void damaged_or_foreign_files_are_refused(void **state)
{
    fixture *fx = *state;
    static const char *const bad[] = {
        /* another format version */
        "{\"format\":2,\"seed\":\"1\",\"start_us\":\"0\",\"tick_us\":\"1000\",\"batch_size\":"
        "\"100\",\"spec_digest\":\"5\",\"output\":\"kafka\",\"acked_seq\":\"3\"}",
        /* a field missing */
        "{\"format\":1,\"seed\":\"1\",\"start_us\":\"0\",\"tick_us\":\"1000\",\"batch_size\":"
        "\"100\",\"output\":\"kafka\",\"acked_seq\":\"3\"}",
        /* a number that is not one */
        "{\"format\":1,\"seed\":\"x1\",\"start_us\":\"0\",\"tick_us\":\"1000\",\"batch_size\":"
        "\"100\",\"spec_digest\":\"5\",\"output\":\"kafka\",\"acked_seq\":\"3\"}",
        /* a batch size of zero */
        "{\"format\":1,\"seed\":\"1\",\"start_us\":\"0\",\"tick_us\":\"1000\",\"batch_size\":"
        "\"0\",\"spec_digest\":\"5\",\"output\":\"kafka\",\"acked_seq\":\"3\"}",
        /* an output name too long to be one */
        "{\"format\":1,\"seed\":\"1\",\"start_us\":\"0\",\"tick_us\":\"1000\",\"batch_size\":"
        "\"100\",\"spec_digest\":\"5\",\"output\":\"a-very-long-output-name\",\"acked_seq\":"
        "\"3\"}",
        /* some other JSON document */
        "[1, 2, 3]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_text(fx->path, bad[i]);
        kf_sim_state back;
        kf_error err;
        kf_error_clear(&err);
        assert_int_equal(kf_sim_state_load(fx->path, &back, &err), KF_ERR_CONFIG);
        assert_non_null(strstr(err.message, "damaged or of another format"));
        assert_non_null(strstr(err.message, "remove it to start afresh"));
    }
}

static void unreadable_file_is_an_io_error(void **state)
{
    fixture *fx = *state;
    if (geteuid() == 0)
        skip(); /* root reads files whatever their mode */
    kf_sim_state st = sample(), back;
    kf_error err;
    assert_int_equal(kf_sim_state_save(fx->path, &st, &err), KF_OK);
    assert_int_equal(chmod(fx->path, 0), 0);
    kf_error_clear(&err);
    assert_int_equal(kf_sim_state_load(fx->path, &back, &err), KF_ERR_IO);
    assert_non_null(strstr(err.message, "could not open progress file"));
}

static void resume_check_names_the_difference(void **state)
{
    fixture *fx = *state;
    kf_sim_state prev = sample(), want = sample();
    kf_error err;
    kf_error_clear(&err);
    assert_int_equal(kf_sim_state_check_resume(&prev, &want, true, fx->path, &err), KF_OK);

    want.seed = 5;
    assert_int_equal(kf_sim_state_check_resume(&prev, &want, true, fx->path, &err), KF_ERR_CONFIG);
    assert_non_null(strstr(err.message, "is of seed 18446744073709551608, not 5"));
    /* without --seed the recorded seed is taken, so another one is no conflict */
    assert_int_equal(kf_sim_state_check_resume(&prev, &want, false, fx->path, &err), KF_OK);
    want = sample();

    snprintf(want.output, sizeof(want.output), "kafka");
    assert_int_equal(kf_sim_state_check_resume(&prev, &want, false, fx->path, &err), KF_ERR_CONFIG);
    assert_non_null(strstr(err.message, "is of output postgres, not kafka"));
    want = sample();

    want.spec_digest ^= 1;
    assert_int_equal(kf_sim_state_check_resume(&prev, &want, false, fx->path, &err), KF_ERR_CONFIG);
    assert_non_null(strstr(err.message, "other specs"));
    want = sample();

    want.tick_us = 500;
    assert_int_equal(kf_sim_state_check_resume(&prev, &want, false, fx->path, &err), KF_ERR_CONFIG);
    assert_non_null(strstr(err.message, "sim.tick.us 1000, not 500"));
    want = sample();

    want.batch_size = 10;
    assert_int_equal(kf_sim_state_check_resume(&prev, &want, false, fx->path, &err), KF_ERR_CONFIG);
    assert_non_null(strstr(err.message, "sim.batch.size 250, not 10"));
    assert_non_null(strstr(err.message, fx->path));
}

static void digest_covers_files_in_order(void **state)
{
    fixture *fx = *state;
    char a[160], b[160], ab[160];
    snprintf(a, sizeof(a), "%s/a.yaml", fx->dir);
    snprintf(b, sizeof(b), "%s/b.yaml", fx->dir);
    snprintf(ab, sizeof(ab), "%s/ab.yaml", fx->dir);
    write_text(a, "tables: []\n");
    write_text(b, "database: x\n");
    write_text(ab, "tables: []\ndatabase: x\n");
    kf_error err;
    uint64_t d1 = KF_SIM_DIGEST_INIT, d2 = KF_SIM_DIGEST_INIT, d3 = KF_SIM_DIGEST_INIT;
    assert_int_equal(kf_sim_state_digest_file(a, &d1, &err), KF_OK);
    assert_int_equal(kf_sim_state_digest_file(b, &d1, &err), KF_OK);
    assert_int_equal(kf_sim_state_digest_file(ab, &d2, &err), KF_OK);
    assert_true(d1 == d2); /* the digest runs over the bytes, continued file to file */
    assert_int_equal(kf_sim_state_digest_file(b, &d3, &err), KF_OK);
    assert_int_equal(kf_sim_state_digest_file(a, &d3, &err), KF_OK);
    assert_true(d3 != d1); /* another order is another digest */
    /* FNV-1a 64 of "a" is af63dc4c8601ec8c */
    write_text(a, "a");
    uint64_t d4 = KF_SIM_DIGEST_INIT;
    assert_int_equal(kf_sim_state_digest_file(a, &d4, &err), KF_OK);
    assert_true(d4 == 0xaf63dc4c8601ec8cULL);
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/missing.yaml", fx->dir);
    kf_error_clear(&err);
    assert_int_equal(kf_sim_state_digest_file(missing, &d4, &err), KF_ERR_IO);
    assert_non_null(strstr(err.message, "could not read spec file"));
    assert_true(d4 == 0xaf63dc4c8601ec8cULL); /* unchanged on failure */
    unlink(a);
    unlink(b);
    unlink(ab);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(save_replaces_atomically, setup, teardown),
        cmocka_unit_test_setup_teardown(save_into_missing_directory_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_file_is_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(corrupt_files_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(damaged_or_foreign_files_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(unreadable_file_is_an_io_error, setup, teardown),
        cmocka_unit_test_setup_teardown(resume_check_names_the_difference, setup, teardown),
        cmocka_unit_test_setup_teardown(digest_covers_files_in_order, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
