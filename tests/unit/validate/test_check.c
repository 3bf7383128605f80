/* Unit tests for `kfleet-validate check` on files: JSON lines (flat rows and change-event
 * lines) and CSV give the right verdicts and exit results, the JSON report is deterministic,
 * and bad input files are errors naming the line. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "contract.h"

static const char CONTRACT[] = "contract: t\ncolumns:\n"
                               "  email: [not_null, {regex: '^[^@]+@[^@]+$'}]\n"
                               "  qty: [{range: {min: 0}}, {dtype: int}]\n"
                               "  note: [{length: {max: 5}, severity: warn}]\n"
                               "dataset:\n  - max_rows: 10\n";

/* Writes text to a per-process file with the suffix, so a repeated run reads the same path. */
static char *write_tmp(const char *suffix, const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "/tmp/kfleet-check-%ld%s", (long)getpid(), suffix);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return strdup(path);
}

/* Runs the check on text written to a file; returns the result and the report in *report. */
static int run(const kf_contract *c, const char *suffix, const char *text, bool json, char **report,
               kf_error *err)
{
    char *path = write_tmp(suffix, text);
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    kf_check_options o = {.contract = c, .file = path, .json = json};
    int rc = kf_check_run(&o, out, err);
    fclose(out);
    remove(path);
    free(path);
    *report = buf;
    return rc;
}

static kf_contract *contract(void)
{
    kf_contract *c;
    kf_error err;
    assert_int_equal(kf_contract_parse("t.yaml", CONTRACT, strlen(CONTRACT), &c, &err), KF_OK);
    return c;
}

static void test_jsonl_pass_and_fail(void **state)
{
    (void)state;
    kf_contract *c = contract();
    kf_error err;
    char *rep;
    /* warn-only violations pass */
    assert_int_equal(run(c, ".jsonl",
                         "{\"email\":\"a@b\",\"qty\":1,\"note\":\"too long\"}\n\n"
                         "{\"type\":\"change\",\"op\":\"c\",\"after\":{\"email\":\"c@d\","
                         "\"qty\":\"7\"}}\n"
                         "{\"type\":\"schema\"}\n{\"op\":\"d\",\"before\":{\"email\":null}}\n",
                         false, &rep, &err),
                     0);
    assert_non_null(
        strstr(rep, "records checked: 2, skipped (deletes, tombstones, other lines): 2"));
    assert_non_null(strstr(rep, "result: PASS"));
    free(rep);
    assert_int_equal(run(c, ".jsonl",
                         "{\"email\":\"a@b\",\"qty\":1}\n{\"email\":null,\"qty\":2.5}\n"
                         "{\"email\":\"x\",\"qty\":-1}\n",
                         true, &rep, &err),
                     1);
    assert_non_null(strstr(rep, "\"result\": \"fail\""));
    assert_non_null(strstr(rep, "\"location\": \"line 2\""));
    assert_non_null(strstr(rep, "column \\\"qty\\\" value \\\"2.5\\\" is not of type int"));
    assert_non_null(strstr(rep, "\"records\": 3"));
    /* the same input gives byte-identical JSON */
    char *again;
    assert_int_equal(run(c, ".jsonl",
                         "{\"email\":\"a@b\",\"qty\":1}\n{\"email\":null,\"qty\":2.5}\n"
                         "{\"email\":\"x\",\"qty\":-1}\n",
                         true, &again, &err),
                     1);
    assert_string_equal(rep, again);
    free(rep);
    free(again);
    kf_contract_destroy(c);
}

static void test_csv(void **state)
{
    (void)state;
    kf_contract *c = contract();
    kf_error err;
    char *rep;
    assert_int_equal(run(c, ".csv", "email,qty,note\r\na@b,1,ok\r\n\"x@y\",\"2\",\"a,\"\"b\"\r\n",
                         false, &rep, &err),
                     0);
    assert_non_null(strstr(rep, "records checked: 2"));
    free(rep);
    /* an empty unquoted field is null; a quoted empty one is the empty string */
    assert_int_equal(run(c, ".csv", "email,qty\n,1\n\"\",2\n", true, &rep, &err), 1);
    assert_non_null(strstr(rep, "\"location\": \"line 2\""));
    assert_non_null(strstr(rep, "\"message\": \"column \\\"email\\\" is null\""));
    assert_non_null(strstr(rep, "\"message\": \"column \\\"email\\\" value \\\"\\\" does not "
                                "match /^[^@]+@[^@]+$/\""));
    free(rep);
    /* a multi-line quoted field keeps later line numbers right */
    assert_int_equal(run(c, ".csv", "email,note\n\"a@b\",\"x\ny\"\nbad,z\n", true, &rep, &err), 1);
    assert_non_null(strstr(rep, "\"location\": \"line 4\""));
    free(rep);
    kf_contract_destroy(c);
}

static void test_dataset_breach_fails(void **state)
{
    (void)state;
    kf_contract *c = contract();
    kf_error err;
    char *rep;
    char text[2048] = "";
    for (int i = 0; i < 11; i++)
        strcat(text, "{\"email\":\"a@b\",\"qty\":1}\n");
    assert_int_equal(run(c, ".jsonl", text, false, &rep, &err), 1);
    assert_non_null(strstr(rep, "dataset rule t.max_rows breached: 11 rows (max_rows 10)"));
    free(rep);
    kf_contract_destroy(c);
}

static void test_input_errors(void **state)
{
    (void)state;
    kf_contract *c = contract();
    kf_error err;
    char *rep;
    assert_int_equal(run(c, ".jsonl", "{\"email\":\"a@b\"}\n{oops\n", false, &rep, &err),
                     KF_ERR_CONFIG);
    assert_non_null(strstr(err.message, ".jsonl:2: "));
    free(rep);
    assert_int_equal(run(c, ".jsonl", "[1,2]\n", false, &rep, &err), KF_ERR_CONFIG);
    assert_non_null(strstr(err.message, ":1: a line must hold a JSON object"));
    free(rep);
    assert_int_equal(run(c, ".csv", "email,qty\na@b\n", false, &rep, &err), KF_ERR_CONFIG);
    assert_non_null(strstr(err.message, ":2: record has 1 fields, the header has 2"));
    free(rep);
    assert_int_equal(run(c, ".csv", "", false, &rep, &err), KF_ERR_CONFIG);
    free(rep);
    assert_int_equal(run(c, ".txt", "x", false, &rep, &err), KF_ERR_CONFIG);
    assert_non_null(strstr(err.message, "cannot tell the format"));
    free(rep);
    kf_check_options o = {.contract = c, .file = "/nonexistent.csv"};
    assert_int_equal(kf_check_run(&o, stdout, &err), KF_ERR_CONFIG);
    kf_check_options both = {.contract = c, .file = "a.csv", .topic = "t"};
    assert_int_equal(kf_check_run(&both, stdout, &err), KF_ERR_CONFIG);
    kf_check_options range = {.contract = c, .file = "a.csv", .from = "0"};
    assert_int_equal(kf_check_run(&range, stdout, &err), KF_ERR_CONFIG);
    kf_check_options noreg = {.contract = c, .topic = "t"};
    assert_int_equal(kf_check_run(&noreg, stdout, &err), KF_ERR_CONFIG);
    kf_contract_destroy(c);
}

static void test_parse_time(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(kf_check_parse_time("1970-01-02", &ms), KF_OK);
    assert_int_equal(ms, 86400000);
    assert_int_equal(kf_check_parse_time("2024-01-01T00:00:01.5Z", &ms), KF_OK);
    assert_int_equal(ms, 1704067201500);
    assert_int_equal(kf_check_parse_time("2024-01-01T02:00:00+02:00", &ms), KF_OK);
    assert_int_equal(ms, 1704067200000);
    assert_int_equal(kf_check_parse_time("soon", &ms), KF_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsonl_pass_and_fail),  cmocka_unit_test(test_csv),
        cmocka_unit_test(test_dataset_breach_fails), cmocka_unit_test(test_input_errors),
        cmocka_unit_test(test_parse_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
