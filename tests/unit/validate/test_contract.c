/* Unit tests for validation contracts: a full contract parses into the expected rules with
 * derived and explicit ids, topic matching, and every kind of mistake is an error naming the
 * file and line. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract.h"

static const char FULL[] = "contract: orders\n"
                           "match:\n"
                           "  tables: [shop.orders]\n"
                           "  topics: ['^dbserver1\\.shop\\.orders$']\n"
                           "columns:\n"
                           "  id:\n"
                           "    - not_null\n"
                           "    - unique: true\n"
                           "      window: 5m\n"
                           "      max_keys: 500\n"
                           "  email:\n"
                           "    - regex: '^[^@\\s]+@[^@\\s]+$'\n"
                           "      id: email_format\n"
                           "      severity: warn\n"
                           "  status:\n"
                           "    - allowed_values: [new, paid, shipped]\n"
                           "  qty:\n"
                           "    - range: {min: 0, max: 1000}\n"
                           "  note:\n"
                           "    - length: {max: 20}\n"
                           "  created_at:\n"
                           "    - dtype: timestamp\n"
                           "  code:\n"
                           "    - unique\n"
                           "dataset:\n"
                           "  - min_rows: 1\n"
                           "    window: 1m\n"
                           "  - max_rows: 100\n";

static void test_full_contract(void **state)
{
    (void)state;
    kf_contract *c;
    kf_error err;
    assert_int_equal(kf_contract_parse("orders.yaml", FULL, strlen(FULL), &c, &err), KF_OK);
    assert_string_equal(c->name, "orders");
    assert_int_equal(c->ncolumns, 7);
    assert_int_equal(c->nrules, 10);
    const char *ids[] = {"orders.id.not_null",
                         "orders.id.unique",
                         "email_format",
                         "orders.status.allowed_values",
                         "orders.qty.range",
                         "orders.note.length",
                         "orders.created_at.dtype",
                         "orders.code.unique",
                         "orders.min_rows",
                         "orders.max_rows"};
    for (size_t i = 0; i < 10; i++)
        assert_string_equal(c->rules[i].id, ids[i]);
    assert_int_equal(c->rules[0].line, 7);
    assert_int_equal(c->rules[1].window_ms, 300000);
    assert_int_equal(c->rules[1].window_count, 0);
    assert_int_equal(c->rules[1].max_keys, 500);
    assert_int_equal(c->rules[2].severity, KF_SEVERITY_WARN);
    assert_int_equal(c->rules[3].nvalues, 3);
    assert_string_equal(c->rules[3].values[2], "shipped");
    assert_true(c->rules[4].has_min && c->rules[4].has_max);
    assert_true(c->rules[4].max == 1000.0);
    assert_false(c->rules[5].has_min);
    assert_int_equal(c->rules[6].dtype, KF_DTYPE_TIMESTAMP);
    assert_int_equal(c->rules[7].window_count, KF_UNIQUE_DEFAULT_WINDOW);
    assert_null(c->rules[8].column);
    assert_int_equal(c->rules[8].rows, 1);
    assert_int_equal(c->rules[8].window_ms, 60000);
    assert_int_equal(c->rules[9].window_ms, 0);
    assert_string_equal(c->columns[c->rules[6].col], "created_at");

    assert_true(kf_contract_matches(c, "kfleet", "kfleet.shop.orders"));
    assert_true(kf_contract_matches(c, "kfleet", "kfleet.evolved.shop.orders"));
    assert_true(kf_contract_matches(c, "kfleet", "dbserver1.shop.orders"));
    assert_false(kf_contract_matches(c, "kfleet", "kfleet.shop.orders_archive"));
    assert_false(kf_contract_matches(c, "kfleet", "kfleet.valid.shop.orders"));
    assert_false(kf_contract_matches(c, "other", "kfleet.shop.orders"));
    kf_contract_destroy(c);
    kf_contract_destroy(NULL);
}

static void test_no_match_covers_everything(void **state)
{
    (void)state;
    const char y[] = "contract: any\ncolumns:\n  id: [not_null]\n";
    kf_contract *c;
    kf_error err;
    assert_int_equal(kf_contract_parse("any.yaml", y, strlen(y), &c, &err), KF_OK);
    assert_true(kf_contract_matches(c, "kfleet", "whatever.topic"));
    kf_contract_destroy(c);
}

/* Each invalid contract and the start of the message it must give. */
static const struct {
    const char *yaml;
    const char *expect;
} BAD[] = {
    {"", "c.yaml:1: contract is empty"},
    {"- a\n- b\n", "c.yaml:1: a contract must be a mapping, not a list"},
    {"contract: x\ncolumns: {id: [not_null]\n", "c.yaml:3: invalid YAML"},
    {"columns:\n  id: [not_null]\n", "c.yaml:1: missing key \"contract\""},
    {"contract: x\ncolumns:\n  id: [not_null]\nextra: 1\n", "c.yaml:4: unknown key \"extra\""},
    {"contract: x\ncontract: y\ncolumns:\n  id: [not_null]\n",
     "c.yaml:2: key \"contract\" is given twice"},
    {"contract: 'a b'\ncolumns:\n  id: [not_null]\n", "c.yaml:1: contract name must be"},
    {"contract: x\n", "c.yaml:1: contract \"x\" has no rules"},
    {"contract: x\ncolumns: [id]\n", "c.yaml:2: \"columns\" must map column names"},
    {"contract: x\ncolumns:\n  id: not_null\n", "c.yaml:3: rules of column \"id\" must be a list"},
    {"contract: x\ncolumns:\n  id: []\n", "c.yaml:3: column \"id\" has no rules"},
    {"contract: x\ncolumns:\n  id:\n    - not_nul\n", "c.yaml:4: unknown rule \"not_nul\""},
    {"contract: x\ncolumns:\n  id:\n    - frobnicate: 1\n",
     "c.yaml:4: unknown rule or option \"frobnicate\""},
    {"contract: x\ncolumns:\n  id:\n    - {not_null: true, unique: true}\n",
     "c.yaml:4: one rule per list entry"},
    {"contract: x\ncolumns:\n  id:\n    - {id: a}\n", "c.yaml:4: rule entry names no rule"},
    {"contract: x\ncolumns:\n  id:\n    - [a]\n", "c.yaml:4: a rule must be a name or a mapping"},
    {"contract: x\ncolumns:\n  id:\n    - regex\n", "c.yaml:4: rule \"regex\" needs a value"},
    {"contract: x\ncolumns:\n  id:\n    - not_null: 5\n", "c.yaml:4: \"not_null\" takes no value"},
    {"contract: x\ncolumns:\n  s:\n    - allowed_values: new\n",
     "c.yaml:4: \"allowed_values\" must be a list"},
    {"contract: x\ncolumns:\n  s:\n    - allowed_values: []\n",
     "c.yaml:4: \"allowed_values\" needs at least one value"},
    {"contract: x\ncolumns:\n  s:\n    - allowed_values: [[a]]\n",
     "c.yaml:4: items of \"allowed_values\" must be scalars"},
    {"contract: x\ncolumns:\n  s:\n    - dtype: money\n", "c.yaml:4: unknown dtype \"money\""},
    {"contract: x\ncolumns:\n  s:\n    - regex: '(unclosed'\n",
     "c.yaml:4: invalid regular expression \"(unclosed\" at offset 9"},
    {"contract: x\ncolumns:\n  s:\n    - regex: ''\n", "c.yaml:4: \"regex\" takes a non-empty"},
    {"contract: x\ncolumns:\n  q:\n    - range: 5\n", "c.yaml:4: \"range\" takes a mapping"},
    {"contract: x\ncolumns:\n  q:\n    - range: {min: a}\n", "c.yaml:4: min must be a number"},
    {"contract: x\ncolumns:\n  q:\n    - range: {min: 5, max: 1}\n",
     "c.yaml:4: range min 5 is greater than max 1"},
    {"contract: x\ncolumns:\n  q:\n    - range: {}\n", "c.yaml:4: \"range\" needs min or max"},
    {"contract: x\ncolumns:\n  q:\n    - range: {min: 1, step: 2}\n",
     "c.yaml:4: unknown key \"step\" in range"},
    {"contract: x\ncolumns:\n  q:\n    - length: {max: -1}\n",
     "c.yaml:4: length max must be a whole number"},
    {"contract: x\ncolumns:\n  q:\n    - length: {max: 2.5}\n",
     "c.yaml:4: length max must be a whole number"},
    {"contract: x\ncolumns:\n  q:\n    - unique: true\n      window: 0\n",
     "c.yaml:5: window 0 is out of range"},
    {"contract: x\ncolumns:\n  q:\n    - unique: true\n      window: soon\n",
     "c.yaml:5: window \"soon\" must be a record count or a time span"},
    {"contract: x\ncolumns:\n  q:\n    - unique: true\n      max_keys: 0\n",
     "c.yaml:5: max_keys 0 is out of range"},
    {"contract: x\ncolumns:\n  q:\n    - not_null: true\n      window: 5\n",
     "c.yaml:5: \"window\" applies to unique and dataset rules only"},
    {"contract: x\ncolumns:\n  q:\n    - not_null: true\n      max_keys: 5\n",
     "c.yaml:5: \"max_keys\" applies to unique rules only"},
    {"contract: x\ncolumns:\n  q:\n    - not_null: true\n      severity: fatal\n",
     "c.yaml:5: severity must be quarantine or warn"},
    {"contract: x\ncolumns:\n  q:\n    - not_null: true\n      id: ''\n",
     "c.yaml:5: rule id must be a non-empty string"},
    {"contract: x\ncolumns:\n  q:\n    - regex: a\n    - regex: b\n",
     "c.yaml:5: rule id \"x.q.regex\" is already used at line 4; give this rule an explicit id"},
    {"contract: x\ncolumns:\n  q:\n    - {not_null: true, id: a}\n  r:\n    - {not_null: true, "
     "id: a}\n",
     "c.yaml:6: rule id \"a\" is already used at line 4"},
    {"contract: x\ncolumns:\n  q:\n    - {not_null: true, id: kfleet.decode}\n",
     "c.yaml:4: rule id \"kfleet.decode\" is reserved: ids starting with \"kfleet.\" belong to "
     "kfleet"},
    {"contract: kfleet\ndataset:\n  - min_rows: 1\n",
     "c.yaml:3: rule id \"kfleet.min_rows\" is reserved: ids starting with \"kfleet.\" belong "
     "to kfleet; rename the contract or give this rule an explicit id"},
    {"contract: x\ndataset:\n  - not_null\n", "c.yaml:3: unknown dataset rule \"not_null\""},
    {"contract: x\ndataset:\n  - min_rows: -1\n", "c.yaml:3: min_rows -1 is out of range"},
    {"contract: x\ndataset:\n  - max_rows: many\n", "c.yaml:3: max_rows must be an integer"},
    {"contract: x\ndataset:\n  - max_rows: 5\n    window: 30\n",
     "c.yaml:4: window \"30\" must be \"batch\" or a time span"},
    {"contract: x\ndataset: {min_rows: 1}\n", "c.yaml:2: \"dataset\" must be a list"},
    {"contract: x\nmatch: [a]\ncolumns:\n  q: [not_null]\n",
     "c.yaml:2: \"match\" must be a mapping"},
    {"contract: x\nmatch:\n  tables: [orders]\ncolumns:\n  q: [not_null]\n",
     "c.yaml:3: table \"orders\" must be written as database.table"},
    {"contract: x\nmatch:\n  topics: ['(']\ncolumns:\n  q: [not_null]\n",
     "c.yaml:3: invalid regular expression \"(\""},
    {"contract: x\nmatch:\n  views: [a.b]\ncolumns:\n  q: [not_null]\n",
     "c.yaml:3: unknown key \"match.views\""},
};

static void test_errors_name_file_and_line(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
        kf_contract *c = NULL;
        kf_error err;
        int rc = kf_contract_parse("c.yaml", BAD[i].yaml, strlen(BAD[i].yaml), &c, &err);
        if (rc != KF_ERR_CONFIG || strncmp(err.message, BAD[i].expect, strlen(BAD[i].expect)) != 0)
            fail_msg("case %zu: rc %d, message \"%s\", expected \"%s\"", i, rc, err.message,
                     BAD[i].expect);
        assert_null(c);
    }
}

static void test_load_file(void **state)
{
    (void)state;
    kf_contract *c;
    kf_error err;
    assert_int_equal(kf_contract_load("/nonexistent/c.yaml", &c, &err), KF_ERR_IO);
    assert_non_null(strstr(err.message, "could not open contract \"/nonexistent/c.yaml\""));
    char path[] = "/tmp/kfleet-contract-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("contract: x\ncolumns:\n  q:\n    - bogus\n", f);
    fclose(f);
    assert_int_equal(kf_contract_load(path, &c, &err), KF_ERR_CONFIG);
    char expect[128];
    snprintf(expect, sizeof(expect), "%s:4: unknown rule \"bogus\"", path);
    assert_non_null(strstr(err.message, expect));
    remove(path);

    /* every example contract in the repository is valid */
    const char *src = getenv("KFLEET_SOURCE_DIR");
    assert_non_null(src);
    const char *examples[] = {"orders.yaml", "customers.yaml"};
    for (size_t i = 0; i < 2; i++) {
        char p[1024];
        snprintf(p, sizeof(p), "%s/schemas/contracts/%s", src, examples[i]);
        if (kf_contract_load(p, &c, &err) != KF_OK)
            fail_msg("%s", err.message);
        kf_contract_destroy(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_contract),
        cmocka_unit_test(test_no_match_covers_everything),
        cmocka_unit_test(test_errors_name_file_and_line),
        cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
