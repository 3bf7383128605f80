/* Unit tests for the evolution controller: protected, key and update columns are never
 * dropped, tombstoned columns come back only with allow_readd, widening only widens, every
 * change bumps the version once, and the engine reports changes in order with the rows. */
#include "sim_test.h"

#include <jansson.h>
#include <stdlib.h>

#include "engine.h"
#include "evolve.h"

static const char *const evo_spec =
    "tables:\n"
    "  - name: e\n"
    "    update_column: changed_at\n"
    "    columns:\n"
    "      - {name: keep, type: int, protected: true}\n"
    "      - {name: s, type: smallint}\n"
    "      - {name: i, type: int}\n"
    "      - {name: f, type: float}\n"
    "      - {name: v, type: varchar(10)}\n"
    "      - {name: d, type: 'decimal(36,2)'}\n"
    "      - {name: t, type: text}\n"
    "      - {name: later, type: bool, reserved: true}\n"
    "      - {name: later2, type: varchar(5), reserved: true}\n"
    "      - {name: strict, type: int, nullable: false}\n"
    "      - {name: changed_at, type: timestamptz}\n"
    "    evolution: {every: 1, weights: {promote: 1, drop: 1, widen: 3, readd: 1}%s}\n";

static kf_sim_spec *load_evo(bool allow_readd)
{
    char yaml[2048];
    snprintf(yaml, sizeof(yaml), evo_spec, allow_readd ? ", allow_readd: true" : "");
    return sim_spec_from(yaml);
}

/* Checks one widening against the rules, independently of the implementation. */
static void assert_widens(const kf_sim_coltype *from, const kf_sim_coltype *to)
{
    switch (from->type) {
    case KF_SIM_SMALLINT:
        assert_int_equal(to->type, KF_SIM_INT);
        break;
    case KF_SIM_INT:
        assert_int_equal(to->type, KF_SIM_BIGINT);
        break;
    case KF_SIM_FLOAT:
        assert_int_equal(to->type, KF_SIM_DOUBLE);
        break;
    case KF_SIM_VARCHAR:
        assert_int_equal(to->type, KF_SIM_VARCHAR);
        assert_true(to->length > from->length);
        break;
    case KF_SIM_DECIMAL:
        assert_int_equal(to->type, KF_SIM_DECIMAL);
        assert_true(to->precision > from->precision && to->precision <= 38);
        assert_int_equal(to->scale, from->scale);
        break;
    default:
        fail_msg("widened a %s", kf_sim_type_name(from->type));
    }
}

static void run_rules(bool allow_readd)
{
    kf_sim_spec *spec = load_evo(allow_readd);
    const kf_sim_table_spec *ts = kf_sim_spec_table(spec, 0);
    kf_sim_table t;
    assert_int_equal(kf_sim_table_init(&t, ts), KF_OK);
    assert_int_equal(t.schema_version, 1);
    assert_int_equal(t.state[kf_sim_table_spec_column(ts, "later")], KF_SIM_COL_RESERVED);
    kf_sim_rng rng;
    kf_sim_rng_seed(&rng, allow_readd ? 11 : 10);
    bool ever_dropped[32] = {false};
    int counts[KF_SIM_EVOLVE_COUNT_] = {0};
    for (int step = 0; step < 400; step++) {
        kf_sim_col_state before[32];
        kf_sim_coltype types[32];
        memcpy(before, t.state, t.ncolumns * sizeof(*before));
        memcpy(types, t.type, t.ncolumns * sizeof(*types));
        uint32_t version = t.schema_version;
        kf_sim_evolution ev;
        if (kf_sim_evolve_step(&t, &rng, &ev) == 0) {
            assert_int_equal(t.schema_version, version);
            continue;
        }
        const kf_sim_column *c = &ts->columns[ev.column];
        counts[ev.action]++;
        assert_int_equal(ev.schema_version, version + 1);
        assert_int_equal(t.schema_version, version + 1);
        switch (ev.action) {
        case KF_SIM_EVOLVE_DROP:
            assert_false(c->is_protected || c->is_key || c->is_update_column);
            assert_int_equal(before[ev.column], KF_SIM_COL_ACTIVE);
            assert_int_equal(t.state[ev.column], KF_SIM_COL_DROPPED);
            ever_dropped[ev.column] = true;
            break;
        case KF_SIM_EVOLVE_PROMOTE:
            assert_int_equal(before[ev.column], KF_SIM_COL_RESERVED);
            assert_true(c->reserved);
            break;
        case KF_SIM_EVOLVE_READD:
            assert_true(allow_readd);
            assert_true(ever_dropped[ev.column]);
            assert_true(c->nullable);
            assert_int_equal(t.state[ev.column], KF_SIM_COL_ACTIVE);
            break;
        case KF_SIM_EVOLVE_WIDEN:
            assert_int_equal(before[ev.column], KF_SIM_COL_ACTIVE);
            assert_memory_equal(&ev.from, &types[ev.column], sizeof(ev.from));
            assert_widens(&ev.from, &ev.to);
            assert_memory_equal(&t.type[ev.column], &ev.to, sizeof(ev.to));
            break;
        default:
            fail_msg("unknown action");
        }
        /* Only the named column changed. */
        for (size_t i = 0; i < t.ncolumns; i++)
            if (i != ev.column) {
                assert_int_equal(t.state[i], before[i]);
                assert_memory_equal(&t.type[i], &types[i], sizeof(types[i]));
            }
        /* A tombstoned column stays gone unless re-adding is allowed. */
        for (size_t i = 0; i < t.ncolumns && !allow_readd; i++)
            if (ever_dropped[i])
                assert_int_equal(t.state[i], KF_SIM_COL_DROPPED);
    }
    /* Protected, key and update columns are still there; the not-null column never returns. */
    assert_int_equal(t.state[kf_sim_table_spec_column(ts, "keep")], KF_SIM_COL_ACTIVE);
    assert_int_equal(t.state[kf_sim_table_spec_column(ts, "id")], KF_SIM_COL_ACTIVE);
    assert_int_equal(t.state[kf_sim_table_spec_column(ts, "changed_at")], KF_SIM_COL_ACTIVE);
    assert_true(counts[KF_SIM_EVOLVE_DROP] > 0 && counts[KF_SIM_EVOLVE_WIDEN] > 0 &&
                counts[KF_SIM_EVOLVE_PROMOTE] == 2);
    if (allow_readd)
        assert_true(counts[KF_SIM_EVOLVE_READD] > 0);
    else
        assert_int_equal(counts[KF_SIM_EVOLVE_READD], 0);
    kf_sim_table_fini(&t);
    kf_sim_spec_destroy(spec);
}

static void controller_follows_the_rules(void **state)
{
    run_rules(false);
}

static void controller_readds_only_when_allowed(void **state)
{
    run_rules(true);
}

static void forbidden_changes_are_refused(void **state)
{
    kf_sim_spec *spec = load_evo(false);
    const kf_sim_table_spec *ts = kf_sim_spec_table(spec, 0);
    kf_sim_table t;
    assert_int_equal(kf_sim_table_init(&t, ts), KF_OK);
    kf_sim_evolution ev;
    kf_error err;
    size_t keep = (size_t)kf_sim_table_spec_column(ts, "keep");
    size_t id = (size_t)kf_sim_table_spec_column(ts, "id");
    size_t upd = (size_t)kf_sim_table_spec_column(ts, "changed_at");
    size_t text = (size_t)kf_sim_table_spec_column(ts, "t");
    size_t i = (size_t)kf_sim_table_spec_column(ts, "i");
    assert_int_equal(kf_sim_evolve_apply(&t, KF_SIM_EVOLVE_DROP, keep, &ev, &err), KF_ERR_STATE);
    assert_non_null(strstr(err.message, "cannot drop column \"keep\""));
    assert_int_equal(kf_sim_evolve_apply(&t, KF_SIM_EVOLVE_DROP, id, &ev, &err), KF_ERR_STATE);
    assert_int_equal(kf_sim_evolve_apply(&t, KF_SIM_EVOLVE_DROP, upd, &ev, &err), KF_ERR_STATE);
    assert_int_equal(kf_sim_evolve_apply(&t, KF_SIM_EVOLVE_WIDEN, text, &ev, &err), KF_ERR_STATE);
    assert_int_equal(kf_sim_evolve_apply(&t, KF_SIM_EVOLVE_PROMOTE, i, &ev, &err), KF_ERR_STATE);
    assert_int_equal(t.schema_version, 1);
    assert_int_equal(kf_sim_evolve_apply(&t, KF_SIM_EVOLVE_DROP, i, &ev, &err), KF_OK);
    assert_int_equal(kf_sim_evolve_apply(&t, KF_SIM_EVOLVE_READD, i, &ev, &err), KF_ERR_STATE);
    assert_int_equal(kf_sim_evolve_apply(&t, KF_SIM_EVOLVE_WIDEN, i, &ev, &err), KF_ERR_STATE);
    assert_int_equal(t.schema_version, 2);
    /* int -> bigint -> nothing wider. */
    kf_sim_coltype wider, big = {.type = KF_SIM_BIGINT};
    assert_false(kf_sim_evolve_widen_type(&big, 100, &wider));
    kf_sim_coltype v = {.type = KF_SIM_VARCHAR, .length = 1};
    assert_true(kf_sim_evolve_widen_type(&v, 10, &wider));
    assert_int_equal(wider.length, 2); /* at least one character */
    kf_sim_coltype d = {.type = KF_SIM_DECIMAL, .precision = 38, .scale = 2};
    assert_false(kf_sim_evolve_widen_type(&d, 100, &wider));
    kf_sim_table_fini(&t);
    kf_sim_spec_destroy(spec);
}

static void cadence(void **state)
{
    kf_sim_table_spec s = {.evolve_every = 5};
    kf_sim_rng rng;
    kf_sim_rng_seed(&rng, 1);
    for (uint64_t b = 1; b <= 20; b++)
        assert_int_equal(kf_sim_evolve_due(&s, b, &rng), b % 5 == 0);
    kf_sim_table_spec p = {.evolve_probability = 0.1};
    int due = 0;
    for (uint64_t b = 1; b <= 100000; b++)
        due += kf_sim_evolve_due(&p, b, &rng);
    assert_true(due > 9500 && due < 10500);
    kf_sim_table_spec off = {0};
    assert_false(kf_sim_evolve_due(&off, 10, &rng));
}

/* Engine level: schema changes are reported in order, and the rows follow the shape. */
typedef struct watcher {
    const kf_sim_table *table;
    uint32_t version;
    size_t promoted; /* column just promoted, or SIZE_MAX */
    int checked_null_before;
    int evolutions;
} watcher;

static int watch_change(void *ctx, const kf_sim_table *t, const kf_sim_change *ch)
{
    watcher *w = ctx;
    assert_int_equal(t->schema_version, w->version);
    /* Rows that existed before a promotion hold null in the new column. */
    if (w->promoted != SIZE_MAX && ch->before &&
        ch->before->cells[w->promoted].kind == KF_SIM_CELL_NULL)
        w->checked_null_before++;
    for (size_t i = 0; i < t->ncolumns; i++) {
        if (kf_sim_table_active(t, i))
            continue;
        if (ch->after)
            assert_int_equal(ch->after->cells[i].kind, KF_SIM_CELL_NULL);
        if (ch->before)
            assert_int_equal(ch->before->cells[i].kind, KF_SIM_CELL_NULL);
    }
    return 0;
}

static int watch_evolve(void *ctx, const kf_sim_table *t, const kf_sim_evolution *ev)
{
    watcher *w = ctx;
    assert_int_equal(ev->schema_version, w->version + 1);
    w->version = ev->schema_version;
    w->evolutions++;
    if (ev->action == KF_SIM_EVOLVE_PROMOTE)
        w->promoted = ev->column;
    kf_sim_buf b = {0};
    assert_int_equal(kf_sim_evolution_write_json(&b, t, ev), KF_OK);
    json_error_t jerr;
    json_t *j = json_loads(b.data, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "schema_change");
    assert_string_equal(json_string_value(json_object_get(j, "table")), "e");
    assert_string_equal(json_string_value(json_object_get(j, "column")),
                        t->spec->columns[ev->column].name);
    assert_string_equal(json_string_value(json_object_get(j, "action")),
                        kf_sim_evolve_action_name(ev->action));
    assert_int_equal(json_integer_value(json_object_get(j, "schema_version")), ev->schema_version);
    json_decref(j);
    kf_sim_buf_free(&b);
    return 0;
}

static void engine_reports_changes_in_order(void **state)
{
    kf_sim_spec *spec = sim_spec_from(
        "tables:\n"
        "  - name: e\n"
        "    columns:\n"
        "      - {name: a, type: int}\n"
        "      - {name: b, type: varchar(8)}\n"
        "      - {name: r, type: int, reserved: true}\n"
        "    workload: {inserts: 20, update_probability: 0.9, delete_probability: 0.1}\n"
        "    evolution: {every: 10, weights: {promote: 1, drop: 0, widen: 0}}\n");
    watcher w = {.version = 1, .promoted = SIZE_MAX};
    kf_sim_engine_config cfg = {
        .seed = 5, .on_change = watch_change, .on_evolve = watch_evolve, .ctx = &w};
    kf_error err;
    kf_sim_engine *e = kf_sim_engine_new(spec, &cfg, &err);
    for (int b = 0; b < 30; b++)
        assert_int_equal(kf_sim_engine_run_batch(e, &err), KF_OK);
    assert_int_equal(w.evolutions, 1); /* one reserved column, nothing else allowed */
    assert_true(w.checked_null_before > 0);
    assert_int_equal(kf_sim_engine_stats(e, 0)->evolutions[KF_SIM_EVOLVE_PROMOTE], 1);
    assert_int_equal(kf_sim_engine_table(e, 0)->schema_version, 2);
    assert_int_equal(kf_sim_engine_evolve(e, 0, &err), 0); /* nothing left to change */
    kf_sim_engine_destroy(e);
    kf_sim_spec_destroy(spec);
}

static void dropped_columns_vanish_from_rows(void **state)
{
    kf_sim_spec *spec = sim_spec_from(
        "tables:\n"
        "  - name: e\n"
        "    columns:\n"
        "      - {name: a, type: int}\n"
        "      - {name: b, type: varchar(8), unique: true, generator: {kind: pattern, "
        "pattern: '********'}}\n"
        "      - {name: c, type: text}\n"
        "      - {name: k, type: int, protected: true}\n"
        "    workload: {inserts: 20, update_probability: 0.9, delete_probability: 0.2}\n"
        "    evolution: {every: 5, allow_readd: true, weights: {drop: 3, readd: 1, widen: 1}}\n");
    watcher w = {.version = 1, .promoted = SIZE_MAX};
    kf_sim_engine_config cfg = {
        .seed = 8, .on_change = watch_change, .on_evolve = watch_evolve, .ctx = &w};
    kf_error err;
    kf_sim_engine *e = kf_sim_engine_new(spec, &cfg, &err);
    for (int b = 0; b < 200; b++)
        assert_int_equal(kf_sim_engine_run_batch(e, &err), KF_OK);
    const kf_sim_table_stats *st = kf_sim_engine_stats(e, 0);
    assert_true(st->evolutions[KF_SIM_EVOLVE_DROP] > 1);
    assert_true(st->evolutions[KF_SIM_EVOLVE_READD] > 1);
    assert_int_equal(w.evolutions, 40);
    kf_sim_engine_destroy(e);
    kf_sim_spec_destroy(spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(controller_follows_the_rules),
        cmocka_unit_test(controller_readds_only_when_allowed),
        cmocka_unit_test(forbidden_changes_are_refused),
        cmocka_unit_test(cadence),
        cmocka_unit_test(engine_reports_changes_in_order),
        cmocka_unit_test(dropped_columns_vanish_from_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
