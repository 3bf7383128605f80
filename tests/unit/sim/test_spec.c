/* Unit tests for simulator spec parsing: the shipped example, shared column sets, keys, the
 * update column, and every rejection with its file:line. */
#include "sim_test.h"

#include <stdio.h>
#include <stdlib.h>

/* Loads yaml and expects a rejection whose message starts with "t.yaml:<line>:" and contains
 * what. */
static void expect_error(const char *yaml, int line, const char *what)
{
    kf_sim_spec *spec = kf_sim_spec_new();
    assert_non_null(spec);
    kf_error err;
    kf_error_clear(&err);
    int rc = kf_sim_spec_load_string(spec, "t.yaml", yaml, strlen(yaml), &err);
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "t.yaml:%d: ", line);
    if (rc != KF_ERR_CONFIG || strncmp(err.message, prefix, strlen(prefix)) != 0 ||
        !strstr(err.message, what))
        fail_msg("expected \"%s...%s\", got rc %d \"%s\"", prefix, what, rc, err.message);
    assert_int_equal(kf_sim_spec_table_count(spec), 0);
    kf_sim_spec_destroy(spec);
}

static void shop_example_loads(void **state)
{
    const char *src = getenv("KFLEET_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/schemas/sim/shop.yaml", src ? src : KFLEET_SOURCE_DIR);
    kf_sim_spec *spec = kf_sim_spec_new();
    kf_error err;
    kf_error_clear(&err);
    if (kf_sim_spec_load_file(spec, path, &err) != KF_OK)
        fail_msg("%s", err.message);
    assert_int_equal(kf_sim_spec_table_count(spec), 3);

    const kf_sim_table_spec *customers = kf_sim_spec_table(spec, 0);
    assert_string_equal(customers->database, "shop");
    assert_string_equal(customers->name, "customers");
    assert_int_equal(customers->pk_kind, KF_SIM_PK_SEQUENCE);
    assert_int_equal(customers->nkey, 1);
    const kf_sim_column *id = &customers->columns[customers->key[0]];
    assert_string_equal(id->name, "id");
    assert_int_equal(id->type.type, KF_SIM_BIGINT);
    assert_int_equal(id->gen.kind, KF_SIM_GEN_SEQUENCE);
    assert_true(id->is_key && id->is_protected && !id->nullable);
    /* The shared audit set is included; its updated_at is the protected update column. */
    assert_true(customers->update_column >= 0);
    const kf_sim_column *upd = &customers->columns[customers->update_column];
    assert_string_equal(upd->name, "updated_at");
    assert_true(upd->is_update_column && upd->is_protected);
    assert_int_equal(upd->gen.kind, KF_SIM_GEN_NOW);
    assert_true(sim_column(spec, 0, "created_at")->is_protected);
    assert_true(sim_column(spec, 0, "phone")->reserved);
    const kf_sim_column *email = sim_column(spec, 0, "email");
    assert_int_equal(email->type.type, KF_SIM_VARCHAR);
    assert_int_equal(email->type.length, 120);
    assert_true(email->unique && !email->nullable);
    assert_int_equal(email->gen.kind, KF_SIM_GEN_EMAIL);
    const kf_sim_column *prefs = sim_column(spec, 0, "preferences");
    assert_int_equal(prefs->gen.kind, KF_SIM_GEN_JSON);
    assert_int_equal(prefs->gen.nfields, 3);
    assert_int_equal(prefs->gen.fields[2].gen.kind, KF_SIM_GEN_JSON);
    assert_int_equal(customers->max_columns_per_update, 2);
    assert_int_equal(customers->evolve_every, 25);
    assert_true(
        customers->error_kinds ==
        ((1u << KF_SIM_CHECK_NOT_NULL) | (1u << KF_SIM_CHECK_EMAIL) | (1u << KF_SIM_CHECK_RANGE)));

    const kf_sim_table_spec *products = kf_sim_spec_table(spec, 1);
    assert_int_equal(products->pk_kind, KF_SIM_PK_UUID);
    assert_int_equal(products->columns[products->key[0]].type.type, KF_SIM_UUID);
    const kf_sim_column *price = sim_column(spec, 1, "price");
    assert_int_equal(price->type.type, KF_SIM_DECIMAL);
    assert_int_equal(price->type.precision, 10);
    assert_int_equal(price->type.scale, 2);
    assert_int_equal(price->gen.lo.i, 199);
    assert_int_equal(price->gen.hi.i, 99999);
    /* A column with allowed values and no generator draws among them. */
    const kf_sim_column *category = sim_column(spec, 1, "category");
    assert_int_equal(category->nallowed, 6);
    assert_int_equal(category->gen.kind, KF_SIM_GEN_CHOICE);

    const kf_sim_table_spec *orders = kf_sim_spec_table(spec, 2);
    assert_true(orders->allow_readd);
    assert_true(orders->evolve_probability > 0.0);
    kf_sim_spec_destroy(spec);
}

static void column_sets_span_files_and_composite_keys(void **state)
{
    const char *sets = "column_sets:\n"
                       "  stamps:\n"
                       "    - {name: changed, type: timestamp}\n";
    const char *tables = "database: inv\n"
                         "tables:\n"
                         "  - name: stock\n"
                         "    primary_key: {kind: composite, columns: [warehouse, item]}\n"
                         "    update_column: changed\n"
                         "    include: stamps\n"
                         "    columns:\n"
                         "      - {name: warehouse, type: smallint, generator: {kind: uniform, "
                         "min: 1, max: 9}}\n"
                         "      - {name: item, type: varchar(12), generator: {kind: pattern, "
                         "pattern: 'IT-####'}}\n"
                         "      - {name: qty, type: int}\n";
    kf_sim_spec *spec = kf_sim_spec_new();
    kf_error err;
    assert_int_equal(kf_sim_spec_load_string(spec, "dir/common.yaml", sets, strlen(sets), &err),
                     KF_OK);
    assert_int_equal(kf_sim_spec_table_count(spec), 0);
    if (kf_sim_spec_load_string(spec, "dir/inv.yaml", tables, strlen(tables), &err) != KF_OK)
        fail_msg("%s", err.message);
    const kf_sim_table_spec *t = kf_sim_spec_table(spec, 0);
    assert_string_equal(t->database, "inv");
    assert_int_equal(t->pk_kind, KF_SIM_PK_COMPOSITE);
    assert_int_equal(t->nkey, 2);
    assert_string_equal(t->columns[t->key[0]].name, "warehouse");
    assert_string_equal(t->columns[t->key[1]].name, "item");
    assert_true(t->columns[t->key[1]].is_key);
    assert_int_equal(t->ncolumns, 4); /* warehouse, item, qty, changed: no automatic id */
    assert_string_equal(t->columns[t->update_column].name, "changed");
    /* Default generator of an int column: uniform 0..1000; default update columns: qty. */
    assert_int_equal(sim_column(spec, 0, "qty")->gen.kind, KF_SIM_GEN_UNIFORM);
    assert_int_equal(t->nupdate_columns, 1);
    assert_string_equal(t->columns[t->update_columns[0]].name, "qty");
    /* The database defaults to the file's stem. */
    const char *nodb = "tables:\n  - name: a\n    columns: [{name: v, type: bool}]\n";
    assert_int_equal(kf_sim_spec_load_string(spec, "x/my-db.yaml", nodb, strlen(nodb), &err),
                     KF_OK);
    assert_string_equal(kf_sim_spec_table(spec, 1)->database, "my_db");
    kf_sim_spec_destroy(spec);
}

static void unknown_keys_are_rejected(void **state)
{
    expect_error("tables:\n"
                 "  - name: a\n"
                 "    columns:\n"
                 "      - name: x\n"
                 "        type: int\n"
                 "        colour: red\n",
                 6, "unknown key \"colour\" in a column");
    expect_error("database: a\nversion: 2\n", 2, "unknown key \"version\" in a spec file");
    expect_error("tables:\n  - name: a\n    workload: {inserts: 5, updates: 3}\n", 3,
                 "unknown key \"updates\" in workload");
    expect_error("tables:\n  - name: a\n    columns: [{name: x, type: int, generator: "
                 "{kind: uniform, min: 1, max: 5, mean: 3}}]\n",
                 3, "unknown key \"mean\" in generator \"uniform\"");
    expect_error("tables:\n  - name: a\n    name: b\n", 3, "duplicate key \"name\"");
}

static void bad_types_are_rejected(void **state)
{
    expect_error("tables:\n  - name: a\n    columns:\n      - name: x\n        type: integr\n", 5,
                 "unknown type \"integr\"");
    expect_error("tables:\n  - name: a\n    columns:\n      - {name: x, type: varchar}\n", 4,
                 "needs a length");
    expect_error("tables:\n  - name: a\n    columns:\n      - {name: x, type: 'decimal(4,6)'}\n", 4,
                 "precision");
    expect_error("tables:\n  - name: a\n    columns:\n      - {name: x, type: int(3)}\n", 4,
                 "takes no parameters");
    expect_error("tables:\n  - name: a\n    columns:\n      - {name: x, type: smallint, "
                 "min: 0, max: 70000}\n",
                 4, "does not fit type smallint");
}

static void update_column_must_be_a_declared_timestamp(void **state)
{
    expect_error("tables:\n"
                 "  - name: orders\n"
                 "    update_column: updated_at\n"
                 "    columns: [{name: x, type: int}]\n",
                 3, "update column \"updated_at\" of table \"orders\" is not declared");
    expect_error("tables:\n"
                 "  - name: orders\n"
                 "    columns: [{name: touched, type: date}]\n"
                 "    update_column: touched\n",
                 4, "must be a timestamp or timestamptz, not date");
    expect_error("tables:\n"
                 "  - name: orders\n"
                 "    columns:\n"
                 "      - {name: ts, type: timestamp, generator: {kind: time_range, "
                 "from: '2020-01-01', to: '2021-01-01'}}\n"
                 "    update_column: ts\n",
                 5, "generator must be \"now\"");
    expect_error("tables:\n"
                 "  - name: orders\n"
                 "    columns: [{name: ts, type: timestamp, reserved: true}]\n"
                 "    update_column: ts\n",
                 4, "cannot be reserved");
}

static void unknown_column_set_is_rejected(void **state)
{
    expect_error("column_sets:\n"
                 "  audit:\n"
                 "    - {name: created_at, type: timestamptz}\n"
                 "tables:\n"
                 "  - name: a\n"
                 "    include: [audit, audti]\n",
                 6, "unknown column set \"audti\"");
    expect_error("column_sets:\n"
                 "  audit:\n"
                 "    - {name: x, type: int}\n"
                 "tables:\n"
                 "  - name: a\n"
                 "    include: audit\n"
                 "    columns: [{name: x, type: int}]\n",
                 6, "column \"x\" of column set \"audit\" is already a column of table \"a\"");
    expect_error("column_sets:\n"
                 "  audit: [{name: x, type: int}]\n"
                 "  audit: [{name: y, type: int}]\n",
                 3, "column set \"audit\" is already declared at t.yaml:2");
}

static void bad_generator_params_are_rejected(void **state)
{
    expect_error("tables:\n  - name: a\n    columns:\n"
                 "      - {name: x, type: int, generator: {kind: uniform, min: 9, max: 2}}\n",
                 4, "min is greater than max");
    expect_error("tables:\n  - name: a\n    columns:\n"
                 "      - {name: x, type: int, generator: {kind: normal, mean: 3}}\n",
                 4, "needs mean and stddev");
    expect_error("tables:\n  - name: a\n    columns:\n"
                 "      - {name: x, type: int, generator: email}\n",
                 4, "generator \"email\" cannot fill column \"x\" of type int");
    expect_error("tables:\n  - name: a\n    columns:\n"
                 "      - {name: x, type: bool, generator: {kind: bool, ratio: 1.5}}\n",
                 4, "ratio must be between 0 and 1");
    expect_error("tables:\n  - name: a\n    columns:\n"
                 "      - name: x\n"
                 "        type: text\n"
                 "        generator: {kind: choice, values: [a, b], weights: [1]}\n",
                 6, "must be a list of 2 numbers");
    expect_error("tables:\n  - name: a\n    columns:\n"
                 "      - {name: x, type: text, generator: {kind: zipf}}\n",
                 4, "unknown generator \"zipf\"");
    expect_error("tables:\n  - name: a\n    columns:\n"
                 "      - {name: x, type: text, generator: {kind: pattern, pattern: 'AB\\'}}\n",
                 4, "lone backslash");
    expect_error("tables:\n  - name: a\n    columns:\n"
                 "      - {name: x, type: int, min: 0, max: 10, generator: {kind: uniform, "
                 "min: 0, max: 20}}\n",
                 4, "draws outside the column's min/max");
    expect_error("tables:\n  - name: a\n    columns:\n"
                 "      - name: j\n"
                 "        type: json\n"
                 "        generator:\n"
                 "          kind: json\n"
                 "          fields:\n"
                 "            - {name: n, type: int, generator: sequence}\n",
                 9, "cannot be used inside a json object");
    expect_error("tables:\n  - name: a\n    columns:\n"
                 "      - {name: j, type: json}\n",
                 4, "json column \"j\" needs a generator");
}

static void other_rejections(void **state)
{
    expect_error("tables:\n  - name: a\n    columns:\n"
                 "      - {name: x, type: int, nullable: false, null_ratio: 0.2}\n",
                 4, "not nullable but has a null_ratio");
    expect_error("tables:\n  - name: a\n    columns:\n"
                 "      - {name: x, type: int, nullable: false, reserved: true}\n",
                 4, "must be nullable");
    expect_error("tables:\n  - name: a\n    columns: [{name: x, type: int}]\n"
                 "    errors: {ratio: 0.1, kinds: [not_null, typo]}\n",
                 4, "unknown error kind \"typo\"");
    expect_error("tables:\n  - name: a\n    primary_key: {kind: composite, columns: [x, y]}\n"
                 "    columns: [{name: x, type: int}]\n",
                 3, "key column \"y\" is not declared");
    expect_error("tables:\n  - name: a\n    primary_key: {kind: serial}\n", 3,
                 "unknown primary key kind \"serial\"");
    expect_error("tables:\n  - name: a\n    columns: [{name: x, type: int}]\n"
                 "    workload: {update_columns: [id]}\n",
                 4, "part of the key");
    expect_error("tables:\n  - name: a\n    columns: [{name: x, type: int}]\n"
                 "  - name: a\n    columns: [{name: y, type: int}]\n",
                 4, "table \"t.a\" is already declared at t.yaml:2");
    expect_error("tables:\n  - name: a\n    columns: [{name: x, type: int}\n", 4,
                 "could not parse YAML");
    expect_error("tables:\n  - name: 9lives\n", 2, "not an identifier");
    expect_error("tables:\n  - name: a\n    columns:\n"
                 "      - {name: s, type: varchar(5), values: [ok, toolong]}\n",
                 4, "longer than varchar(5)");
}

static void failed_file_leaves_the_spec_unchanged(void **state)
{
    kf_sim_spec *spec = sim_spec_from("column_sets:\n  s: [{name: v, type: int}]\n"
                                      "tables:\n  - {name: a, include: s}\n");
    const char *bad = "column_sets:\n  s2: [{name: w, type: int}]\n"
                      "tables:\n  - {name: b, include: s2}\n  - {name: c, include: nope}\n";
    kf_error err;
    assert_int_equal(kf_sim_spec_load_string(spec, "bad.yaml", bad, strlen(bad), &err),
                     KF_ERR_CONFIG);
    assert_int_equal(kf_sim_spec_table_count(spec), 1);
    /* The failed file's column set is gone too. */
    const char *uses = "tables:\n  - {name: d, include: s2}\n";
    assert_int_equal(kf_sim_spec_load_string(spec, "u.yaml", uses, strlen(uses), &err),
                     KF_ERR_CONFIG);
    assert_non_null(strstr(err.message, "unknown column set \"s2\""));
    assert_int_equal(kf_sim_spec_load_file(spec, "/nonexistent/spec.yaml", &err), KF_ERR_IO);
    assert_non_null(strstr(err.message, "could not open spec \"/nonexistent/spec.yaml\""));
    kf_sim_spec_destroy(spec);
    kf_sim_spec_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shop_example_loads),
        cmocka_unit_test(column_sets_span_files_and_composite_keys),
        cmocka_unit_test(unknown_keys_are_rejected),
        cmocka_unit_test(bad_types_are_rejected),
        cmocka_unit_test(update_column_must_be_a_declared_timestamp),
        cmocka_unit_test(unknown_column_set_is_rejected),
        cmocka_unit_test(bad_generator_params_are_rejected),
        cmocka_unit_test(other_rejections),
        cmocka_unit_test(failed_file_leaves_the_spec_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
