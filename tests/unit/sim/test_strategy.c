/* Unit tests for strategy plugins: loading errors (missing file, no entry point, another ABI
 * version, refused arguments), the hot-keys example concentrating updates on its hot rows,
 * the promote-only example, determinism with a plugin, and the engine refusing forbidden
 * choices (protected drops, tombstoned re-adds, rows that are not live). */
#include "sim_test.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine.h"
#include "jsonl.h"
#include "strategy_host.h"

static const char *plugin_path(const char *var)
{
    const char *p = getenv(var);
    if (!p || !*p)
        fail_msg("%s is not set: run this test through ctest", var);
    return p;
}

static kf_sim_strategy *load_started(const char *var, const char *args, uint64_t seed)
{
    kf_error err;
    kf_error_clear(&err);
    kf_sim_strategy *s = kf_sim_strategy_load(plugin_path(var), args, &err);
    if (!s)
        fail_msg("%s", err.message);
    if (kf_sim_strategy_start(s, seed, &err) != KF_OK)
        fail_msg("%s", err.message);
    return s;
}

/* ---- loading ---- */

static void assert_load_fails(const char *path, const char *args, const char *needle)
{
    kf_error err;
    kf_error_clear(&err);
    kf_sim_strategy *s = kf_sim_strategy_load(path, args, &err);
    if (s) {
        int rc = kf_sim_strategy_start(s, 1, &err);
        kf_sim_strategy_destroy(s);
        if (rc == KF_OK)
            fail_msg("\"%s\" with \"%s\" was accepted", path, args ? args : "");
    }
    assert_int_equal(err.code, KF_ERR_CONFIG);
    if (!strstr(err.message, needle))
        fail_msg("message \"%s\" lacks \"%s\"", err.message, needle);
}

static void load_errors_are_config_errors(void **state)
{
    (void)state;
    assert_load_fails("/nonexistent/strategy.so", NULL, "No such file");
    assert_load_fails(plugin_path("KFLEET_SIM_NO_ENTRY"), NULL,
                      "does not export kf_sim_strategy_entry()");
    assert_load_fails(plugin_path("KFLEET_SIM_WRONG_ABI"), NULL, "ABI version 2");
    /* A file that is no shared object. */
    char path[1024];
    snprintf(path, sizeof(path), "%s/schemas/sim/shop.yaml", getenv("KFLEET_SOURCE_DIR"));
    assert_load_fails(path, NULL, "could not load strategy");
    /* init refuses its arguments: the plugin's own message comes through. */
    assert_load_fails(plugin_path("KFLEET_SIM_HOT_KEYS"), "hot=0", "hot needs a positive integer");
    assert_load_fails(plugin_path("KFLEET_SIM_HOT_KEYS"), "temperature=5", "unknown argument");
    assert_load_fails(plugin_path("KFLEET_SIM_PROMOTE_ONLY"), "order=alphabetical",
                      "unknown arguments");
    kf_sim_strategy_destroy(NULL);
}

static void load_reports_the_definition(void **state)
{
    (void)state;
    kf_sim_strategy *hot = load_started("KFLEET_SIM_HOT_KEYS", "hot=3", 1);
    assert_string_equal(kf_sim_strategy_name(hot), "hot_keys");
    assert_true(kf_sim_strategy_has_mutation(hot));
    assert_false(kf_sim_strategy_has_evolution(hot));
    kf_error err;
    assert_int_equal(kf_sim_strategy_start(hot, 1, &err), KF_ERR_STATE);
    kf_sim_strategy_destroy(hot);
    kf_sim_strategy *po = load_started("KFLEET_SIM_PROMOTE_ONLY", NULL, 1);
    assert_string_equal(kf_sim_strategy_name(po), "promote_only");
    assert_false(kf_sim_strategy_has_mutation(po));
    assert_true(kf_sim_strategy_has_evolution(po));
    kf_sim_strategy_destroy(po);
}

/* ---- runs ---- */

typedef struct counts {
    uint64_t updates_by_key[4096]; /* sequence keys 1..4095 */
    uint64_t updates, deletes, creates;
    uint64_t deleted_below[64]; /* deletes of keys 1..63 */
    uint64_t evolutions[KF_SIM_EVOLVE_COUNT_];
    bool dropped_protected;
    char last_update_key[64];
    bool all_updates_same_key;
} counts;

static int count_change(void *ctx, const kf_sim_table *t, const kf_sim_change *ch)
{
    counts *c = ctx;
    (void)t;
    int64_t k = ch->key->cells[0].i;
    if (ch->op == KF_SIM_OP_UPDATE) {
        c->updates++;
        if (k > 0 && k < 4096)
            c->updates_by_key[k]++;
        char text[64];
        snprintf(text, sizeof(text), "%lld", (long long)k);
        if (c->updates == 1)
            c->all_updates_same_key = true;
        else if (strcmp(text, c->last_update_key) != 0)
            c->all_updates_same_key = false;
        memcpy(c->last_update_key, text, sizeof(text));
    } else if (ch->op == KF_SIM_OP_DELETE) {
        c->deletes++;
        if (k > 0 && k < 64)
            c->deleted_below[k]++;
    } else {
        c->creates++;
    }
    return KF_OK;
}

static int count_evolution(void *ctx, const kf_sim_table *t, const kf_sim_evolution *ev)
{
    counts *c = ctx;
    c->evolutions[ev->action]++;
    const kf_sim_column *col = &t->spec->columns[ev->column];
    if (ev->action == KF_SIM_EVOLVE_DROP &&
        (col->is_protected || col->is_key || col->is_update_column))
        c->dropped_protected = true;
    return KF_OK;
}

/* Runs spec for events changes with strategy (NULL for none) and fills *c; returns the
 * refused choices of table 0. */
static uint64_t run_counting(const kf_sim_spec *spec, kf_sim_strategy *strategy, uint64_t events,
                             counts *c)
{
    memset(c, 0, sizeof(*c));
    kf_sim_engine_config cfg = {.seed = 7,
                                .start_us = 1704067200000000LL,
                                .max_events = events,
                                .on_change = count_change,
                                .on_evolve = count_evolution,
                                .ctx = c,
                                .strategy = strategy};
    kf_error err;
    kf_sim_engine *e = kf_sim_engine_new(spec, &cfg, &err);
    assert_non_null(e);
    while (!kf_sim_engine_done(e))
        if (kf_sim_engine_run_batch(e, &err) != KF_OK)
            fail_msg("%s", err.message);
    uint64_t refused = kf_sim_engine_stats(e, 0)->strategy_refused;
    kf_sim_engine_destroy(e);
    return refused;
}

static const char *const hot_spec =
    "tables:\n"
    "  - name: h\n"
    "    update_column: changed_at\n"
    "    columns:\n"
    "      - {name: n, type: int}\n"
    "      - {name: label, type: varchar(20)}\n"
    "      - {name: changed_at, type: timestamptz}\n"
    "    workload: {inserts: 20, update_probability: 1.0, delete_probability: 0.3}\n";

/* Share of updates that hit the k most updated keys. */
static double top_share(const counts *c, size_t k)
{
    uint64_t top[64] = {0};
    for (size_t key = 1; key < 4096; key++) {
        uint64_t v = c->updates_by_key[key];
        for (size_t i = 0; i < k; i++) {
            if (v > top[i]) {
                uint64_t tmp = top[i];
                top[i] = v;
                v = tmp;
            }
        }
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < k; i++)
        sum += top[i];
    return c->updates ? (double)sum / (double)c->updates : 0;
}

static void hot_keys_concentrate_updates(void **state)
{
    (void)state;
    kf_sim_spec *spec = sim_spec_from(hot_spec);
    static counts base, hot;
    assert_int_equal(run_counting(spec, NULL, 6000, &base), 0);
    kf_sim_strategy *s = load_started("KFLEET_SIM_HOT_KEYS", "hot=10,share=0.9", 7);
    assert_int_equal(run_counting(spec, s, 6000, &hot), 0);
    kf_sim_strategy_destroy(s);

    /* Without the plugin updates spread over every live key. */
    assert_true(base.updates > 2000);
    assert_true(top_share(&base, 10) < 0.2);
    /* With it about 90% hit the hot set (the first ten rows inserted, keys 1..10)... */
    assert_true(hot.updates > 2000);
    uint64_t hot_updates = 0;
    for (int k = 1; k <= 10; k++) {
        hot_updates += hot.updates_by_key[k];
        assert_true(hot.updates_by_key[k] > 0);
    }
    double share = (double)hot_updates / (double)hot.updates;
    print_message("hot set share of updates: %.3f (10 hottest keys without plugin: %.3f)\n", share,
                  top_share(&base, 10));
    assert_true(share > 0.86 && share < 0.94);
    assert_true(top_share(&hot, 10) == share);
    /* ...which deletes never touch, while other rows are still deleted. */
    for (int k = 1; k <= 10; k++)
        assert_int_equal(hot.deleted_below[k], 0);
    assert_true(hot.deletes > 500);
    kf_sim_spec_destroy(spec);
}

static void hot_keys_respects_the_live_row_cap(void **state)
{
    (void)state;
    kf_sim_spec *spec = sim_spec_from("tables:\n"
                                      "  - name: h\n"
                                      "    columns:\n"
                                      "      - {name: n, type: int}\n"
                                      "    workload: {inserts: 20, update_probability: 0.5,\n"
                                      "               delete_probability: 0, max_live_rows: 30}\n");
    static counts c;
    kf_sim_strategy *s = load_started("KFLEET_SIM_HOT_KEYS", "hot=5", 7);
    assert_int_equal(run_counting(spec, s, 3000, &c), 0);
    kf_sim_strategy_destroy(s);
    /* The cap made room by deleting, never a hot row (the run may end between the delete
     * that makes room and its insert). */
    assert_in_range(c.creates - c.deletes, 29, 30);
    for (int k = 1; k <= 5; k++)
        assert_int_equal(c.deleted_below[k], 0);
    assert_true(c.deleted_below[6] + c.deleted_below[7] > 0);
    kf_sim_spec_destroy(spec);
}

static const char *const evo_spec =
    "tables:\n"
    "  - name: e\n"
    "    update_column: changed_at\n"
    "    columns:\n"
    "      - {name: keep, type: int, protected: true}\n"
    "      - {name: i, type: int}\n"
    "      - {name: v, type: varchar(10)}\n"
    "      - {name: r1, type: bool, reserved: true}\n"
    "      - {name: r2, type: int, reserved: true}\n"
    "      - {name: r3, type: text, reserved: true}\n"
    "      - {name: changed_at, type: timestamptz}\n"
    "    workload: {inserts: 10}\n"
    "    evolution: {every: 1, weights: {promote: 1, drop: 5, widen: 5, readd: 5}%s}\n";

static void promote_only_only_promotes(void **state)
{
    (void)state;
    char yaml[2048];
    snprintf(yaml, sizeof(yaml), evo_spec, "");
    kf_sim_spec *spec = sim_spec_from(yaml);
    static counts c;
    kf_sim_strategy *s = load_started("KFLEET_SIM_PROMOTE_ONLY", "order=random", 7);
    assert_int_equal(run_counting(spec, s, 2000, &c), 0);
    kf_sim_strategy_destroy(s);
    /* Three reserved columns, three promotions over 200 batches, nothing else. */
    assert_int_equal(c.evolutions[KF_SIM_EVOLVE_PROMOTE], 3);
    assert_int_equal(c.evolutions[KF_SIM_EVOLVE_DROP], 0);
    assert_int_equal(c.evolutions[KF_SIM_EVOLVE_WIDEN], 0);
    assert_int_equal(c.evolutions[KF_SIM_EVOLVE_READD], 0);
    /* The built-in controller with these weights would have dropped and widened. */
    assert_int_equal(run_counting(spec, NULL, 2000, &c), 0);
    assert_true(c.evolutions[KF_SIM_EVOLVE_DROP] + c.evolutions[KF_SIM_EVOLVE_WIDEN] > 0);
    kf_sim_spec_destroy(spec);
}

static void protected_drops_are_refused(void **state)
{
    (void)state;
    char yaml[2048];
    snprintf(yaml, sizeof(yaml), evo_spec, "");
    kf_sim_spec *spec = sim_spec_from(yaml);
    static counts c;
    kf_sim_strategy *s = load_started("KFLEET_SIM_MISBEHAVE", "drop_protected", 7);
    uint64_t refused = run_counting(spec, s, 3000, &c);
    kf_sim_strategy_destroy(s);
    /* Every due evolution asked for a forbidden drop: each was refused and the built-in
     * controller chose instead (a varchar can always widen, so it always changed something),
     * never dropping a protected column. */
    assert_false(c.dropped_protected);
    uint64_t changes = 0;
    for (int a = 0; a < KF_SIM_EVOLVE_COUNT_; a++)
        changes += c.evolutions[a];
    assert_true(changes >= 5);
    assert_int_equal(refused, changes);
    kf_sim_spec_destroy(spec);
}

static void tombstones_hold_against_a_plugin(void **state)
{
    (void)state;
    char yaml[2048];
    snprintf(yaml, sizeof(yaml), evo_spec, "");
    kf_sim_spec *spec = sim_spec_from(yaml); /* allow_readd is off */
    static counts c;
    kf_sim_strategy *s = load_started("KFLEET_SIM_MISBEHAVE", "readd", 7);
    uint64_t refused = run_counting(spec, s, 3000, &c);
    kf_sim_strategy_destroy(s);
    assert_int_equal(c.evolutions[KF_SIM_EVOLVE_READD], 0);
    assert_true(c.evolutions[KF_SIM_EVOLVE_DROP] > 0); /* there were tombstones to re-add */
    assert_true(refused > 0);
    /* With allow_readd the same request is obeyed. */
    snprintf(yaml, sizeof(yaml), evo_spec, ", allow_readd: true");
    kf_sim_spec *readd = sim_spec_from(yaml);
    s = load_started("KFLEET_SIM_MISBEHAVE", "readd", 7);
    run_counting(readd, s, 3000, &c);
    kf_sim_strategy_destroy(s);
    assert_true(c.evolutions[KF_SIM_EVOLVE_READD] > 0);
    kf_sim_spec_destroy(readd);
    kf_sim_spec_destroy(spec);
}

static void bad_rows_are_refused(void **state)
{
    (void)state;
    kf_sim_spec *spec = sim_spec_from("tables:\n"
                                      "  - name: h\n"
                                      "    columns:\n"
                                      "      - {name: n, type: int, protected: true}\n"
                                      "    workload: {inserts: 20, update_probability: 0.5,\n"
                                      "               delete_probability: 0.2, "
                                      "max_live_rows: 50}\n"
                                      "    evolution: {every: 5}\n");
    static counts with, without;
    kf_sim_strategy *s = load_started("KFLEET_SIM_MISBEHAVE", "bad_rows", 7);
    uint64_t refused = run_counting(spec, s, 4000, &with);
    kf_sim_strategy_destroy(s);
    run_counting(spec, NULL, 4000, &without);
    /* Every mutation choice was refused, so the workload is the built-in one in shape: every
     * insert happened, updates and deletes of live rows only, the cap kept. */
    assert_true(refused >= with.creates + with.updates);
    assert_true(with.updates > 0 && with.deletes > 0);
    assert_true(with.creates - with.deletes <= 50);
    assert_true(without.creates - without.deletes <= 50);
    /* The unknown schema changes it asked for were refused too; the built-in controller
     * widened the one widenable column instead. */
    assert_int_equal(with.evolutions[KF_SIM_EVOLVE_WIDEN], 1);
    kf_sim_spec_destroy(spec);
}

static void chosen_rows_are_obeyed_and_keyed(void **state)
{
    (void)state;
    kf_sim_spec *spec = sim_spec_from(hot_spec);
    static counts c;
    kf_sim_strategy *s = load_started("KFLEET_SIM_MISBEHAVE", "pin", 7);
    assert_int_equal(run_counting(spec, s, 2000, &c), 0);
    /* The plugin pinned row 0 and read its key with row_key: every update hit that key. */
    void *h = dlopen(plugin_path("KFLEET_SIM_MISBEHAVE"), RTLD_NOW | RTLD_NOLOAD);
    assert_non_null(h);
    const char *(*pinned)(unsigned long *);
    void *sym = dlsym(h, "kf_sim_test_pinned_key");
    assert_non_null(sym);
    memcpy(&pinned, &sym, sizeof(pinned));
    unsigned long calls;
    const char *key = pinned(&calls);
    assert_true(c.updates > 500);
    assert_int_equal(calls, c.updates);
    assert_true(c.all_updates_same_key);
    assert_string_equal(key, c.last_update_key);
    assert_int_equal(c.deletes, 0);
    dlclose(h);
    kf_sim_strategy_destroy(s);
    kf_sim_spec_destroy(spec);
}

static void a_failing_plugin_stops_the_run(void **state)
{
    (void)state;
    kf_sim_spec *spec = sim_spec_from(hot_spec);
    kf_sim_strategy *s = load_started("KFLEET_SIM_MISBEHAVE", "fail", 7);
    counts c;
    memset(&c, 0, sizeof(c));
    kf_sim_engine_config cfg = {
        .seed = 7, .max_events = 100, .on_change = count_change, .ctx = &c, .strategy = s};
    kf_error err;
    kf_sim_engine *e = kf_sim_engine_new(spec, &cfg, &err);
    assert_non_null(e);
    assert_int_equal(kf_sim_engine_run_batch(e, &err), KF_ERR_FATAL);
    assert_non_null(strstr(err.message, "strategy \"misbehave\" failed choosing a mutation"));
    assert_true(kf_sim_engine_done(e));
    assert_int_equal(kf_sim_engine_events(e), 0);
    kf_sim_engine_destroy(e);
    kf_sim_strategy_destroy(s);
    kf_sim_spec_destroy(spec);
}

/* ---- determinism ---- */

static kf_sim_spec *load_shop(void)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/schemas/sim/shop.yaml", getenv("KFLEET_SOURCE_DIR"));
    kf_sim_spec *spec = kf_sim_spec_new();
    kf_error err;
    if (kf_sim_spec_load_file(spec, path, &err) != KF_OK)
        fail_msg("%s", err.message);
    return spec;
}

/* The JSON-lines stream of the shop spec with the given strategies (both may be NULL), each
 * loaded and started afresh. Caller frees. */
static char *stream(const kf_sim_spec *spec, const char *var, const char *args, size_t *len)
{
    char *text = NULL;
    FILE *out = open_memstream(&text, len);
    assert_non_null(out);
    kf_sim_jsonl *j = kf_sim_jsonl_new(out, NULL);
    assert_non_null(j);
    kf_sim_strategy *s = var ? load_started(var, args, 42) : NULL;
    kf_sim_engine_config cfg = {.seed = 42,
                                .start_us = 1704067200000000LL,
                                .max_events = 20000,
                                .on_change = kf_sim_jsonl_change,
                                .on_evolve = kf_sim_jsonl_evolution,
                                .ctx = j,
                                .strategy = s};
    kf_error err;
    kf_sim_engine *e = kf_sim_engine_new(spec, &cfg, &err);
    assert_non_null(e);
    while (!kf_sim_engine_done(e))
        if (kf_sim_engine_run_batch(e, &err) != KF_OK)
            fail_msg("%s", err.message);
    assert_int_equal(kf_sim_jsonl_summary(j, e), KF_OK);
    assert_int_equal(kf_sim_jsonl_flush(j), KF_OK);
    kf_sim_engine_destroy(e);
    kf_sim_strategy_destroy(s);
    kf_sim_jsonl_destroy(j);
    fclose(out);
    return text;
}

static void plugins_keep_streams_deterministic(void **state)
{
    (void)state;
    kf_sim_spec *spec = load_shop();
    size_t l0, la, lb, lc, ld;
    char *plain = stream(spec, NULL, NULL, &l0);
    char *a = stream(spec, "KFLEET_SIM_HOT_KEYS", "hot=5", &la);
    char *b = stream(spec, "KFLEET_SIM_HOT_KEYS", "hot=5", &lb);
    char *c = stream(spec, "KFLEET_SIM_PROMOTE_ONLY", "order=random", &lc);
    char *d = stream(spec, "KFLEET_SIM_PROMOTE_ONLY", "order=random", &ld);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    assert_int_equal(lc, ld);
    assert_memory_equal(c, d, lc);
    /* ...and the plugins did change the stream. */
    assert_false(l0 == la && memcmp(plain, a, l0) == 0);
    assert_false(l0 == lc && memcmp(plain, c, l0) == 0);
    assert_null(strstr(c, "\"action\":\"drop\""));
    free(plain);
    free(a);
    free(b);
    free(c);
    free(d);
    kf_sim_spec_destroy(spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(load_errors_are_config_errors),
        cmocka_unit_test(load_reports_the_definition),
        cmocka_unit_test(hot_keys_concentrate_updates),
        cmocka_unit_test(hot_keys_respects_the_live_row_cap),
        cmocka_unit_test(promote_only_only_promotes),
        cmocka_unit_test(protected_drops_are_refused),
        cmocka_unit_test(tombstones_hold_against_a_plugin),
        cmocka_unit_test(bad_rows_are_refused),
        cmocka_unit_test(chosen_rows_are_obeyed_and_keyed),
        cmocka_unit_test(a_failing_plugin_stops_the_run),
        cmocka_unit_test(plugins_keep_streams_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
