/* Unit tests for the evolution planner: every rule of DESIGN.md (add nullable, keep dropped,
 * widen, narrowing kept wide, incompatible to text, nested JSON) and the resulting shape. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfleet/plan.h"

/* Builds a table from "name type [pk] [notnull]" items separated by ';'. */
static kf_table *mk(const char *spec)
{
    kf_error err;
    kf_table *t = kf_table_new("kfleet", "shop", NULL, "orders", &err);
    assert_non_null(t);
    char *copy = strdup(spec);
    assert_non_null(copy);
    char *save = NULL;
    int pk = 0;
    for (char *item = strtok_r(copy, ";", &save); item; item = strtok_r(NULL, ";", &save)) {
        char name[64], type[64], f1[16] = "", f2[16] = "";
        assert_true(sscanf(item, " %63s %63s %15s %15s", name, type, f1, f2) >= 2);
        kf_column c;
        memset(&c, 0, sizeof(c));
        c.name = name;
        assert_int_equal(kf_coltype_parse(type, &c, &err), KF_OK);
        c.nullable = true;
        if (strcmp(f1, "pk") == 0 || strcmp(f2, "pk") == 0) {
            c.pk_order = ++pk;
            c.nullable = false;
        }
        if (strcmp(f1, "notnull") == 0 || strcmp(f2, "notnull") == 0)
            c.nullable = false;
        assert_int_equal(kf_table_add_column(t, &c, &err), KF_OK);
    }
    free(copy);
    return t;
}

static kf_plan *plan_of(const char *old_spec, const char *new_spec)
{
    kf_table *o = mk(old_spec), *n = mk(new_spec);
    kf_error err;
    kf_plan *p = kf_plan_compute(o, n, &err);
    assert_non_null(p);
    kf_table_destroy(o);
    kf_table_destroy(n);
    return p;
}

static const kf_plan_step *step_for(const kf_plan *p, const char *column)
{
    for (size_t i = 0; i < kf_plan_nsteps(p); i++)
        if (strcmp(kf_plan_step_at(p, i)->column, column) == 0)
            return kf_plan_step_at(p, i);
    return NULL;
}

static const char *type_of(const kf_column *c, char *buf)
{
    return kf_coltype_format(c, buf, 64);
}

static void identical_shapes_need_nothing(void **state)
{
    (void)state;
    kf_plan *p = plan_of("id bigint pk; name text", "id bigint pk; name text");
    assert_int_equal(kf_plan_nsteps(p), 0);
    assert_false(kf_plan_changes_destination(p));
    assert_false(kf_plan_pk_changed(p));
    assert_int_equal(kf_table_ncolumns(kf_plan_result(p)), 2);
    kf_plan_destroy(p);
}

static void new_column_is_added_nullable(void **state)
{
    (void)state;
    kf_plan *p = plan_of("id bigint pk", "id bigint pk; email varchar(80) notnull");
    const kf_plan_step *s = step_for(p, "email");
    assert_non_null(s);
    assert_int_equal(s->action, KF_PLAN_ADD);
    assert_null(s->from);
    assert_true(s->to->nullable);
    assert_int_equal(s->to->type, KF_COL_VARCHAR);
    assert_int_equal(s->to->length, 80);
    assert_true(kf_plan_changes_destination(p));
    const kf_table *r = kf_plan_result(p);
    assert_int_equal(kf_table_ncolumns(r), 2);
    assert_string_equal(kf_table_column(r, 1)->name, "email");
    assert_int_equal(kf_table_column(r, 1)->pk_order, 0);
    kf_plan_destroy(p);
}

static void dropped_column_is_kept_and_relaxed(void **state)
{
    (void)state;
    kf_plan *p = plan_of("id bigint pk; legacy int notnull; note text", "id bigint pk");
    const kf_plan_step *s = step_for(p, "legacy");
    assert_non_null(s);
    assert_int_equal(s->action, KF_PLAN_KEEP_DROPPED);
    assert_false(s->from->nullable);
    assert_true(s->to->nullable);
    assert_true(kf_plan_step_changes_destination(s));
    const kf_plan_step *n = step_for(p, "note");
    assert_int_equal(n->action, KF_PLAN_KEEP_DROPPED);
    assert_false(kf_plan_step_changes_destination(n));
    assert_int_equal(kf_table_ncolumns(kf_plan_result(p)), 3);
    kf_plan_destroy(p);
}

static void widening_promotes(void **state)
{
    (void)state;
    static const struct {
        const char *from, *to, *expect;
    } cases[] = {
        {"int", "bigint", "bigint"},
        {"smallint", "int", "int"},
        {"real", "double precision", "double"},
        {"int", "double precision", "double"},
        {"smallint", "real", "double"},
        {"varchar(10)", "varchar(20)", "varchar(20)"},
        {"varchar(10)", "text", "text"},
        {"decimal(10,2)", "decimal(12,2)", "decimal(12,2)"},
        {"decimal(10,2)", "decimal(10,4)", "decimal(12,4)"},
        {"int", "decimal(5,2)", "decimal(12,2)"},
        {"uuid", "text", "text"},
        {"date", "timestamp", "timestamp"},
    };
    char buf[64];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char o[128], n[128];
        snprintf(o, sizeof(o), "id bigint pk; v %s", cases[i].from);
        snprintf(n, sizeof(n), "id bigint pk; v %s", cases[i].to);
        kf_plan *p = plan_of(o, n);
        const kf_plan_step *s = step_for(p, "v");
        assert_non_null(s);
        if (s->action != KF_PLAN_WIDEN)
            fail_msg("%s -> %s: expected widen, got %s", cases[i].from, cases[i].to,
                     kf_plan_action_name(s->action));
        assert_string_equal(type_of(s->to, buf), cases[i].expect);
        assert_false(s->warning);
        assert_true(kf_plan_changes_destination(p));
        kf_plan_destroy(p);
    }
}

static void narrowing_keeps_the_wider_type(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"bigint", "int"},      {"double precision", "real"},       {"varchar(20)", "varchar(5)"},
        {"text", "varchar(5)"}, {"decimal(12,4)", "decimal(10,2)"}, {"timestamp", "date"},
    };
    char a[64], b[64];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char o[128], n[128];
        snprintf(o, sizeof(o), "id bigint pk; v %s", cases[i][0]);
        snprintf(n, sizeof(n), "id bigint pk; v %s", cases[i][1]);
        kf_plan *p = plan_of(o, n);
        const kf_plan_step *s = step_for(p, "v");
        assert_non_null(s);
        if (s->action != KF_PLAN_KEEP_WIDE)
            fail_msg("%s -> %s: expected keep_wide, got %s", cases[i][0], cases[i][1],
                     kf_plan_action_name(s->action));
        assert_true(s->warning);
        assert_string_equal(type_of(s->to, a), type_of(s->from, b));
        assert_false(kf_plan_changes_destination(p));
        kf_plan_destroy(p);
    }
}

static void incompatible_becomes_text(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"int", "text"},     {"boolean", "int"}, {"bigint", "double precision"},
        {"jsonb", "int"},    {"int", "jsonb"},   {"uuid", "timestamptz"},
        {"bytea", "bigint"}, {"date", "bigint"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char o[128], n[128];
        snprintf(o, sizeof(o), "id bigint pk; v %s", cases[i][0]);
        snprintf(n, sizeof(n), "id bigint pk; v %s", cases[i][1]);
        kf_plan *p = plan_of(o, n);
        const kf_plan_step *s = step_for(p, "v");
        assert_non_null(s);
        if (s->action != KF_PLAN_TO_TEXT)
            fail_msg("%s -> %s: expected to_text, got %s", cases[i][0], cases[i][1],
                     kf_plan_action_name(s->action));
        assert_int_equal(s->to->type, KF_COL_TEXT);
        assert_true(s->warning);
        assert_true(kf_plan_changes_destination(p));
        kf_plan_destroy(p);
    }
}

static void nested_json_stays_json(void **state)
{
    (void)state;
    kf_plan *p = plan_of("id bigint pk; doc jsonb", "id bigint pk; doc jsonb; tags jsonb");
    assert_null(step_for(p, "doc"));
    const kf_plan_step *s = step_for(p, "tags");
    assert_int_equal(s->action, KF_PLAN_ADD);
    assert_int_equal(s->to->type, KF_COL_JSON);
    kf_plan_destroy(p);
}

static void nullability_is_relaxed_never_tightened(void **state)
{
    (void)state;
    kf_plan *p =
        plan_of("id bigint pk; a int notnull; b int", "id bigint pk; a int; b int notnull");
    const kf_plan_step *a = step_for(p, "a");
    assert_non_null(a);
    assert_int_equal(a->action, KF_PLAN_RELAX_NULL);
    assert_true(a->to->nullable);
    assert_null(step_for(p, "b"));
    assert_true(kf_table_column(kf_plan_result(p), 2)->nullable);
    kf_plan_destroy(p);
}

static void text_destination_takes_anything(void **state)
{
    (void)state;
    kf_plan *p = plan_of("id bigint pk; v text", "id bigint pk; v boolean");
    const kf_plan_step *s = step_for(p, "v");
    assert_int_equal(s->action, KF_PLAN_KEEP_WIDE);
    assert_int_equal(s->to->type, KF_COL_TEXT);
    assert_false(kf_plan_changes_destination(p));
    kf_plan_destroy(p);
}

static void primary_key_change_is_reported_and_kept(void **state)
{
    (void)state;
    kf_plan *p = plan_of("id bigint pk; v int", "id bigint; v int pk");
    assert_true(kf_plan_pk_changed(p));
    const kf_table *r = kf_plan_result(p);
    assert_int_equal(kf_table_npk(r), 1);
    assert_string_equal(kf_table_column(r, kf_table_pk_column(r, 0))->name, "id");
    kf_plan_destroy(p);
}

static void missing_old_table_gives_the_new_shape(void **state)
{
    (void)state;
    kf_table *n = mk("id bigint pk; v int notnull");
    kf_error err;
    kf_plan *p = kf_plan_compute(NULL, n, &err);
    assert_non_null(p);
    assert_int_equal(kf_plan_nsteps(p), 0);
    const kf_table *r = kf_plan_result(p);
    assert_int_equal(kf_table_ncolumns(r), 2);
    assert_false(kf_table_column(r, 1)->nullable);
    assert_int_equal(kf_table_npk(r), 1);
    kf_plan_destroy(p);
    kf_table_destroy(n);
    kf_plan_destroy(NULL);
}

static void steps_follow_destination_order(void **state)
{
    (void)state;
    kf_plan *p = plan_of("id bigint pk; a int; b text", "z int; id bigint pk; a bigint");
    assert_int_equal(kf_plan_nsteps(p), 3);
    assert_string_equal(kf_plan_step_at(p, 0)->column, "a");
    assert_string_equal(kf_plan_step_at(p, 1)->column, "b");
    assert_string_equal(kf_plan_step_at(p, 2)->column, "z");
    assert_null(kf_plan_step_at(p, 3));
    assert_string_equal(kf_plan_action_name(kf_plan_step_at(p, 2)->action), "add");
    const kf_table *r = kf_plan_result(p);
    assert_string_equal(kf_table_column(r, 3)->name, "z");
    kf_plan_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(identical_shapes_need_nothing),
        cmocka_unit_test(new_column_is_added_nullable),
        cmocka_unit_test(dropped_column_is_kept_and_relaxed),
        cmocka_unit_test(widening_promotes),
        cmocka_unit_test(narrowing_keeps_the_wider_type),
        cmocka_unit_test(incompatible_becomes_text),
        cmocka_unit_test(nested_json_stays_json),
        cmocka_unit_test(nullability_is_relaxed_never_tightened),
        cmocka_unit_test(text_destination_takes_anything),
        cmocka_unit_test(primary_key_change_is_reported_and_kept),
        cmocka_unit_test(missing_old_table_gives_the_new_shape),
        cmocka_unit_test(steps_follow_destination_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
