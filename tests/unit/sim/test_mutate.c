/* Unit tests for mutation bookkeeping: creates use new keys, updates and deletes touch only
 * live keys with the right before-image, deleted keys are never touched again, updates
 * change only allowed columns and refresh the update column, counts match the stats. */
#include "sim_test.h"

#include <stdlib.h>

#include "engine.h"

#define MAX_IDS 100000

static const char *const seq_spec =
    "tables:\n"
    "  - name: t\n"
    "    update_column: touched\n"
    "    columns:\n"
    "      - {name: a, type: int}\n"
    "      - {name: b, type: text, generator: word}\n"
    "      - {name: c, type: bool}\n"
    "      - {name: fixed, type: int, generator: {kind: uniform, min: 1, max: 9}}\n"
    "      - {name: email, type: varchar(80), generator: email, unique: true}\n"
    "      - {name: touched, type: timestamp}\n"
    "    workload: {inserts: 10, update_probability: 0.5, delete_probability: 0.3,\n"
    "               update_columns: [a, b, c, email], max_columns_per_update: 2,\n"
    "               max_live_rows: 50}\n";

typedef struct recorder {
    uint8_t state[MAX_IDS]; /* 0 never seen, 1 live, 2 deleted */
    uint64_t fingerprint[MAX_IDS];
    uint64_t creates, updates, deletes, live, max_live;
    long col_a, col_b, col_c, col_fixed, col_email, col_touched;
} recorder;

static uint64_t fingerprint(const kf_sim_table *t, const kf_sim_row *row)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < t->ncolumns; i++)
        if (kf_sim_table_active(t, i))
            h = (h ^ kf_sim_cell_hash(&row->cells[i])) * 1099511628211ULL;
    return h;
}

static int record_seq(void *ctx, const kf_sim_table *t, const kf_sim_change *ch)
{
    recorder *r = ctx;
    assert_int_equal(ch->key->ncells, 1);
    int64_t id = ch->key->cells[0].i;
    assert_true(id >= 1 && id < MAX_IDS);
    switch (ch->op) {
    case KF_SIM_OP_CREATE:
        assert_null(ch->before);
        assert_int_equal(r->state[id], 0); /* a sequence key is never reused */
        assert_int_equal(ch->after->cells[r->col_touched].i, ch->ts_us);
        r->state[id] = 1;
        r->fingerprint[id] = fingerprint(t, ch->after);
        r->creates++;
        r->live++;
        break;
    case KF_SIM_OP_UPDATE: {
        assert_int_equal(r->state[id], 1);
        assert_true(r->fingerprint[id] == fingerprint(t, ch->before));
        const kf_sim_cell *b = ch->before->cells, *a = ch->after->cells;
        int changed = 0;
        for (size_t i = 0; i < t->ncolumns; i++) {
            if (kf_sim_cell_equal(&a[i], &b[i]))
                continue;
            if ((long)i == r->col_touched)
                continue;
            if ((long)i != r->col_a && (long)i != r->col_b && (long)i != r->col_c &&
                (long)i != r->col_email)
                fail_msg("update changed column %s", t->spec->columns[i].name);
            changed++;
        }
        assert_true(changed <= 2);
        assert_int_equal(a[r->col_touched].i, ch->ts_us);
        assert_true(a[r->col_touched].i > b[r->col_touched].i);
        r->fingerprint[id] = fingerprint(t, ch->after);
        r->updates++;
        break;
    }
    case KF_SIM_OP_DELETE:
        assert_null(ch->after);
        assert_int_equal(r->state[id], 1);
        assert_true(r->fingerprint[id] == fingerprint(t, ch->before));
        r->state[id] = 2;
        r->deletes++;
        r->live--;
        break;
    }
    if (r->live > r->max_live)
        r->max_live = r->live;
    return 0;
}

static void updates_and_deletes_touch_only_live_keys(void **state)
{
    kf_sim_spec *spec = sim_spec_from(seq_spec);
    const kf_sim_table_spec *ts = kf_sim_spec_table(spec, 0);
    recorder *r = calloc(1, sizeof(*r));
    r->col_a = kf_sim_table_spec_column(ts, "a");
    r->col_b = kf_sim_table_spec_column(ts, "b");
    r->col_c = kf_sim_table_spec_column(ts, "c");
    r->col_fixed = kf_sim_table_spec_column(ts, "fixed");
    r->col_email = kf_sim_table_spec_column(ts, "email");
    r->col_touched = kf_sim_table_spec_column(ts, "touched");
    kf_sim_engine_config cfg = {.seed = 7, .start_us = 0, .on_change = record_seq, .ctx = r};
    kf_error err;
    kf_sim_engine *e = kf_sim_engine_new(spec, &cfg, &err);
    assert_non_null(e);
    for (int b = 0; b < 2000; b++)
        assert_int_equal(kf_sim_engine_run_batch(e, &err), KF_OK);

    const kf_sim_table_stats *st = kf_sim_engine_stats(e, 0);
    assert_int_equal(st->inserts, r->creates);
    assert_int_equal(st->updates, r->updates);
    assert_int_equal(st->deletes, r->deletes);
    assert_int_equal(st->live_rows, r->live);
    assert_int_equal(kf_sim_engine_events(e), r->creates + r->updates + r->deletes);
    assert_int_equal(r->creates, 20000);
    assert_true(r->updates > 5000 && r->deletes > 5000);
    assert_true(r->max_live <= 50); /* max_live_rows: inserts at the cap delete first */
    /* The engine's live rows are exactly the recorder's live keys, emails unique. */
    kf_sim_hset emails = {0};
    size_t live = 0;
    for (size_t i = 0; i < st->live_rows; i++) {
        const kf_sim_cell *row = kf_sim_engine_live_row(e, 0, i);
        assert_int_equal(r->state[row[0].i], 1);
        assert_int_equal(kf_sim_hset_add(&emails, kf_sim_cell_hash(&row[r->col_email])), 1);
        live++;
    }
    assert_int_equal(live, r->live);
    assert_null(kf_sim_engine_live_row(e, 0, st->live_rows));
    kf_sim_hset_free(&emails);
    kf_sim_engine_destroy(e);
    kf_sim_spec_destroy(spec);
    free(r);
}

/* Composite keys over a small domain: never two live rows with one key. */
typedef struct key_recorder {
    uint8_t live[32][32];
    uint64_t events;
} key_recorder;

static int record_composite(void *ctx, const kf_sim_table *t, const kf_sim_change *ch)
{
    key_recorder *r = ctx;
    assert_int_equal(ch->key->ncells, 2);
    int64_t w = ch->key->cells[0].i, s = ch->key->cells[1].i;
    assert_true(w >= 1 && w <= 20 && s >= 1 && s <= 20);
    if (ch->op == KF_SIM_OP_CREATE) {
        assert_int_equal(r->live[w][s], 0);
        r->live[w][s] = 1;
    } else {
        assert_int_equal(r->live[w][s], 1);
        if (ch->op == KF_SIM_OP_DELETE)
            r->live[w][s] = 0;
    }
    r->events++;
    return 0;
}

static void composite_keys_stay_unique(void **state)
{
    kf_sim_spec *spec = sim_spec_from(
        "tables:\n"
        "  - name: stock\n"
        "    primary_key: {kind: composite, columns: [w, s]}\n"
        "    columns:\n"
        "      - {name: w, type: int, generator: {kind: uniform, min: 1, max: 20}}\n"
        "      - {name: s, type: smallint, generator: {kind: uniform, min: 1, max: 20}}\n"
        "      - {name: qty, type: int}\n"
        "    workload: {inserts: 20, update_probability: 0.5, delete_probability: 0.5,\n"
        "               max_live_rows: 150}\n");
    key_recorder *r = calloc(1, sizeof(*r));
    kf_sim_engine_config cfg = {.seed = 3, .on_change = record_composite, .ctx = r};
    kf_error err;
    kf_sim_engine *e = kf_sim_engine_new(spec, &cfg, &err);
    for (int b = 0; b < 500; b++)
        assert_int_equal(kf_sim_engine_run_batch(e, &err), KF_OK);
    int live = 0;
    for (int w = 0; w < 32; w++)
        for (int s = 0; s < 32; s++)
            live += r->live[w][s];
    assert_int_equal(live, kf_sim_engine_stats(e, 0)->live_rows);
    assert_true(live <= 150);
    kf_sim_engine_destroy(e);
    kf_sim_spec_destroy(spec);
    free(r);
}

static int count_only(void *ctx, const kf_sim_table *t, const kf_sim_change *ch)
{
    uint64_t *n = ctx;
    (*n)++;
    assert_int_equal(ch->seq, *n);
    return 0;
}

static void event_limit_is_exact(void **state)
{
    kf_sim_spec *spec = sim_spec_from(seq_spec);
    uint64_t n = 0;
    kf_sim_engine_config cfg = {.seed = 1, .max_events = 1234, .on_change = count_only, .ctx = &n};
    kf_error err;
    kf_sim_engine *e = kf_sim_engine_new(spec, &cfg, &err);
    while (!kf_sim_engine_done(e))
        assert_int_equal(kf_sim_engine_run_batch(e, &err), KF_OK);
    assert_int_equal(n, 1234);
    assert_int_equal(kf_sim_engine_events(e), 1234);
    assert_int_equal(kf_sim_engine_run_batch(e, &err), KF_OK);
    assert_int_equal(n, 1234);
    kf_sim_engine_destroy(e);
    kf_sim_spec_destroy(spec);
}

static int fail_after_ten(void *ctx, const kf_sim_table *t, const kf_sim_change *ch)
{
    uint64_t *n = ctx;
    return ++*n > 10 ? KF_ERR_IO : 0;
}

static void output_failure_stops_the_engine(void **state)
{
    kf_sim_spec *spec = sim_spec_from(seq_spec);
    uint64_t n = 0;
    kf_sim_engine_config cfg = {.seed = 1, .on_change = fail_after_ten, .ctx = &n};
    kf_error err;
    kf_sim_engine *e = kf_sim_engine_new(spec, &cfg, &err);
    int rc = KF_OK;
    for (int b = 0; b < 5 && rc == KF_OK; b++)
        rc = kf_sim_engine_run_batch(e, &err);
    assert_int_equal(rc, KF_ERR_IO);
    assert_non_null(strstr(err.message, "the change output of table \"t\" failed"));
    assert_true(kf_sim_engine_done(e));
    assert_int_equal(kf_sim_engine_events(e), 10);
    /* The failed change was not committed: the stats count only reported changes. */
    const kf_sim_table_stats *st = kf_sim_engine_stats(e, 0);
    assert_int_equal(st->inserts + st->updates + st->deletes, 10);
    kf_sim_engine_destroy(e);
    kf_sim_spec_destroy(spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(updates_and_deletes_touch_only_live_keys),
        cmocka_unit_test(composite_keys_stay_unique),
        cmocka_unit_test(event_limit_is_exact),
        cmocka_unit_test(output_failure_stops_the_engine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
