/* The engine loop: one PRNG, one simulated clock and one batch arena drive every table, so a
 * seed and a spec replay the same stream of changes. */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

#include "kfleet/error.h"

struct kf_sim_engine {
    kf_sim_engine_config cfg;
    kf_sim_rng rng;
    kf_sim_arena *arena; /* strings of rows being built; reset per batch */
    kf_sim_buf scratch;
    kf_sim_tstate *tables;
    kf_sim_strategy_view *views; /* per table, with a strategy; else NULL */
    size_t ntables;
    uint64_t events;
    uint64_t batches;
    int64_t clock_us;
    bool done;
    kf_error *err; /* the caller's, during a batch */
};

kf_sim_engine *kf_sim_engine_new(const kf_sim_spec *spec, const kf_sim_engine_config *cfg,
                                 kf_error *err)
{
    if (!cfg->on_change) {
        kf_error_set(err, KF_ERR_INVALID, false, "cannot create the simulator: no change callback");
        return NULL;
    }
    kf_sim_engine *e = calloc(1, sizeof(*e));
    if (!e)
        goto out_nomem;
    e->cfg = *cfg;
    if (e->cfg.tick_us <= 0)
        e->cfg.tick_us = 1000;
    if (e->cfg.batch_size == 0)
        e->cfg.batch_size = 100;
    kf_sim_rng_seed(&e->rng, cfg->seed);
    e->clock_us = cfg->start_us;
    e->arena = kf_sim_arena_new(256 * 1024);
    e->ntables = kf_sim_spec_table_count(spec);
    e->tables = calloc(e->ntables ? e->ntables : 1, sizeof(*e->tables));
    if (!e->arena || !e->tables)
        goto out_destroy_engine;
    for (size_t i = 0; i < e->ntables; i++)
        if (kf_sim_tstate_init(&e->tables[i], kf_sim_spec_table(spec, i)) != KF_OK)
            goto out_destroy_engine;
    if (cfg->strategy) {
        e->views = calloc(e->ntables ? e->ntables : 1, sizeof(*e->views));
        if (!e->views)
            goto out_destroy_engine;
        for (size_t i = 0; i < e->ntables; i++)
            if (kf_sim_strategy_view_init(&e->views[i], &e->tables[i], i) != KF_OK)
                goto out_destroy_engine;
    }
    return e;
out_destroy_engine:
    kf_sim_engine_destroy(e);
out_nomem:
    kf_error_set(err, KF_ERR_NOMEM, false, "could not create the simulator: out of memory");
    return NULL;
}

void kf_sim_engine_destroy(kf_sim_engine *e)
{
    if (!e)
        return;
    for (size_t i = 0; e->views && i < e->ntables; i++)
        kf_sim_strategy_view_fini(&e->views[i]);
    free(e->views);
    for (size_t i = 0; e->tables && i < e->ntables; i++)
        kf_sim_tstate_fini(&e->tables[i]);
    free(e->tables);
    kf_sim_arena_destroy(e->arena);
    kf_sim_buf_free(&e->scratch);
    free(e);
}

static int engine_emit(kf_sim_mctx *m, kf_sim_tstate *ts, kf_sim_op op, const kf_sim_row *key,
                       const kf_sim_row *before, const kf_sim_row *after)
{
    kf_sim_engine *e = m->emit_ctx;
    kf_sim_change ch = {.op = op,
                        .seq = e->events + 1,
                        .ts_us = m->gen.now_us,
                        .key = key,
                        .before = before,
                        .after = after};
    int rc = e->cfg.on_change(e->cfg.ctx, &ts->table, &ch);
    if (rc < 0) {
        if (e->err && e->err->code == KF_OK)
            kf_error_set(e->err, rc, false, "the change output of table \"%s\" failed: %s",
                         ts->table.spec->name, kf_err_name(rc));
        return rc;
    }
    e->events++;
    if (e->cfg.max_events && e->events >= e->cfg.max_events) {
        e->done = true;
        m->stop = true;
    }
    return KF_OK;
}

static void mctx_init(kf_sim_engine *e, kf_sim_mctx *m, kf_error *err)
{
    memset(m, 0, sizeof(*m));
    m->gen.rng = &e->rng;
    m->gen.arena = e->arena;
    m->gen.scratch = &e->scratch;
    m->gen.now_us = e->clock_us;
    m->tick_us = e->cfg.tick_us;
    m->emit = engine_emit;
    m->emit_ctx = e;
    m->err = err;
}

/* The schema change of table t: the strategy's choice when it makes one, else the built-in
 * controller's. Returns 1 with *ev filled, 0 for none, or a negative error. */
static int choose_evolution(kf_sim_engine *e, size_t t, kf_sim_evolution *ev, kf_error *err)
{
    kf_sim_tstate *ts = &e->tables[t];
    if (!e->views || !kf_sim_strategy_has_evolution(e->cfg.strategy))
        return kf_sim_evolve_step(&ts->table, &e->rng, ev);
    kf_sim_evolve_action action;
    size_t column;
    int v = kf_sim_strategy_choose_evolution(e->cfg.strategy, &e->views[t], &e->rng, e->batches,
                                             &action, &column, err);
    if (v < 0)
        return v;
    if (v == KF_SIM_STRATEGY_NO_CHANGE)
        return 0;
    if (v == KF_SIM_STRATEGY_BUILTIN)
        return kf_sim_evolve_step(&ts->table, &e->rng, ev);
    /* Checked against the rules already; apply checks once more and never bends them. */
    int rc = kf_sim_evolve_apply(&ts->table, action, column, ev, err);
    return rc == KF_OK ? 1 : rc;
}

static int evolve_table(kf_sim_engine *e, size_t t, kf_error *err)
{
    kf_sim_tstate *ts = &e->tables[t];
    kf_sim_evolution ev;
    int chosen = choose_evolution(e, t, &ev, err);
    if (chosen <= 0)
        return chosen;
    ev.ts_us = e->clock_us;
    ev.batch = e->batches;
    /* A column that joins or leaves the table holds null in every live row, as after an
     * ALTER TABLE ADD/DROP COLUMN; inactive cells are thus always null. */
    if (ev.action != KF_SIM_EVOLVE_WIDEN)
        kf_sim_tstate_null_column(ts, ev.column);
    ts->stats.evolutions[ev.action]++;
    if (e->cfg.on_evolve) {
        int rc = e->cfg.on_evolve(e->cfg.ctx, &ts->table, &ev);
        if (rc < 0) {
            if (err && err->code == KF_OK)
                kf_error_set(err, rc, false, "the schema-change output of table \"%s\" failed: %s",
                             ts->table.spec->name, kf_err_name(rc));
            return rc;
        }
    }
    return 1;
}

/* Deletes live row row of ts, or a random one for KF_SIM_STRATEGY_ANY_ROW. */
static int delete_row(kf_sim_tstate *ts, kf_sim_mctx *m, uint64_t row)
{
    return row == KF_SIM_STRATEGY_ANY_ROW ? kf_sim_mutate_delete(ts, m)
                                          : kf_sim_mutate_delete_row(ts, m, (size_t)row);
}

/* One step of table t's workload: the proposed operation, or what the strategy chose instead
 * (checked against the rules by kf_sim_strategy_choose_mutation). */
static int mutate_step(kf_sim_engine *e, size_t t, kf_sim_mctx *m, kf_sim_op proposed)
{
    kf_sim_tstate *ts = &e->tables[t];
    if (!e->views || !kf_sim_strategy_has_mutation(e->cfg.strategy)) {
        switch (proposed) {
        case KF_SIM_OP_CREATE:
            return kf_sim_mutate_insert(ts, m);
        case KF_SIM_OP_UPDATE:
            return kf_sim_mutate_update(ts, m);
        default:
            return kf_sim_mutate_delete(ts, m);
        }
    }
    int op;
    uint64_t row;
    int rc = kf_sim_strategy_choose_mutation(e->cfg.strategy, &e->views[t], &e->rng, e->batches + 1,
                                             proposed, false, &op, &row, m->err);
    if (rc != KF_OK)
        return rc;
    switch (op) {
    case KF_SIM_STRATEGY_OP_INSERT: {
        /* The strategy picks which row makes room at the cap; the insert then finds room. */
        uint64_t cap = ts->table.spec->max_live_rows;
        if (cap && ts->nrows >= cap) {
            rc = kf_sim_strategy_choose_mutation(e->cfg.strategy, &e->views[t], &e->rng,
                                                 e->batches + 1, KF_SIM_OP_DELETE, true, &op, &row,
                                                 m->err);
            if (rc == KF_OK)
                rc = delete_row(ts, m, row);
            if (rc != KF_OK || m->stop)
                return rc;
        }
        return kf_sim_mutate_insert(ts, m);
    }
    case KF_SIM_STRATEGY_OP_UPDATE:
        return row == KF_SIM_STRATEGY_ANY_ROW ? kf_sim_mutate_update(ts, m)
                                              : kf_sim_mutate_update_row(ts, m, (size_t)row);
    case KF_SIM_STRATEGY_OP_DELETE:
        return delete_row(ts, m, row);
    default:
        return KF_OK;
    }
}

int kf_sim_engine_run_batch(kf_sim_engine *e, kf_error *err)
{
    if (e->done)
        return KF_OK;
    kf_error_clear(err);
    e->err = err;
    kf_sim_arena_reset(e->arena);
    kf_sim_mctx m;
    mctx_init(e, &m, err);
    int rc = KF_OK;
    for (size_t t = 0; t < e->ntables && rc == KF_OK && !m.stop; t++) {
        kf_sim_tstate *ts = &e->tables[t];
        const kf_sim_table_spec *s = ts->table.spec;
        uint32_t inserts = s->inserts ? s->inserts : e->cfg.batch_size;
        for (uint32_t j = 0; j < inserts && rc == KF_OK && !m.stop; j++) {
            rc = mutate_step(e, t, &m, KF_SIM_OP_CREATE);
            if (rc == KF_OK && !m.stop && kf_sim_rng_chance(&e->rng, s->update_probability))
                rc = mutate_step(e, t, &m, KF_SIM_OP_UPDATE);
            if (rc == KF_OK && !m.stop && kf_sim_rng_chance(&e->rng, s->delete_probability))
                rc = mutate_step(e, t, &m, KF_SIM_OP_DELETE);
        }
    }
    e->clock_us = m.gen.now_us;
    if (rc == KF_OK)
        e->batches++;
    for (size_t t = 0; t < e->ntables && rc == KF_OK && !e->done; t++) {
        if (!kf_sim_evolve_due(e->tables[t].table.spec, e->batches, &e->rng))
            continue;
        int erc = evolve_table(e, t, err);
        if (erc < 0)
            rc = erc;
    }
    e->err = NULL;
    if (rc != KF_OK)
        e->done = true;
    return rc;
}

int kf_sim_engine_evolve(kf_sim_engine *e, size_t i, kf_error *err)
{
    if (i >= e->ntables)
        return kf_error_set(err, KF_ERR_INVALID, false, "cannot evolve table %zu: there are %zu", i,
                            e->ntables);
    kf_error_clear(err);
    return evolve_table(e, i, err);
}

bool kf_sim_engine_done(const kf_sim_engine *e)
{
    return e->done;
}

uint64_t kf_sim_engine_events(const kf_sim_engine *e)
{
    return e->events;
}

uint64_t kf_sim_engine_batches(const kf_sim_engine *e)
{
    return e->batches;
}

int64_t kf_sim_engine_clock(const kf_sim_engine *e)
{
    return e->clock_us;
}

uint64_t kf_sim_engine_seed(const kf_sim_engine *e)
{
    return e->cfg.seed;
}

size_t kf_sim_engine_table_count(const kf_sim_engine *e)
{
    return e->ntables;
}

const kf_sim_table *kf_sim_engine_table(const kf_sim_engine *e, size_t i)
{
    return i < e->ntables ? &e->tables[i].table : NULL;
}

const kf_sim_table_stats *kf_sim_engine_stats(const kf_sim_engine *e, size_t i)
{
    return i < e->ntables ? &e->tables[i].stats : NULL;
}

const kf_sim_cell *kf_sim_engine_live_row(const kf_sim_engine *e, size_t i, size_t r)
{
    if (i >= e->ntables || r >= e->tables[i].nrows)
        return NULL;
    return kf_sim_tstate_row(&e->tables[i], r);
}
