/* The simulator engine: runs batches of inserts, updates and deletes over the tables of a
 * spec, evolves their schemas on a cadence, and hands every change to callbacks, so outputs
 * (stdout, Kafka, databases) plug in without the engine knowing them. */
#ifndef KF_SIM_ENGINE_H
#define KF_SIM_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evolve.h"
#include "kfleet/error.h"
#include "mutate.h"
#include "spec.h"
#include "strategy_host.h"
#include "table.h"

/* One change. key holds the key columns in key order; before is NULL for creates, after NULL
 * for deletes; rows have one cell per declared column and outputs use the active ones. All
 * borrowed for the duration of the callback. */
typedef struct kf_sim_change {
    kf_sim_op op;
    uint64_t seq;  /* 1, 2, ...: the position in the stream, the simulator's source offset */
    int64_t ts_us; /* simulated clock */
    const kf_sim_row *key;
    const kf_sim_row *before;
    const kf_sim_row *after;
} kf_sim_change;

/* Called for every change, in order. A negative return stops the engine, which returns that
 * code from kf_sim_engine_run_batch (the callback fills its own error through ctx). */
typedef int (*kf_sim_change_fn)(void *ctx, const kf_sim_table *table, const kf_sim_change *ch);

/* Called after every schema change, before any change of the new shape is reported. */
typedef int (*kf_sim_evolve_fn)(void *ctx, const kf_sim_table *table, const kf_sim_evolution *ev);

typedef struct kf_sim_engine_config {
    uint64_t seed;              /* every random draw derives from it */
    int64_t start_us;           /* the simulated clock at start, microseconds since the epoch */
    int64_t tick_us;            /* the clock advances this much per change; 0 = 1000 */
    uint32_t batch_size;        /* inserts per table and batch unless the spec says; 0 = 100 */
    uint64_t max_events;        /* stop after this many changes; 0 = no limit */
    kf_sim_change_fn on_change; /* required */
    kf_sim_evolve_fn on_evolve; /* may be NULL */
    void *ctx;                  /* passed to both callbacks */
    /* A started strategy plugin choosing mutations and/or schema changes, or NULL for the
     * built-in workload and controller. Borrowed: it must outlive the engine. */
    kf_sim_strategy *strategy;
} kf_sim_engine_config;

typedef struct kf_sim_engine kf_sim_engine;

/* Creates an engine over every table of spec (borrowed: it must outlive the engine); copies
 * cfg. Returns NULL with err filled on failure. */
kf_sim_engine *kf_sim_engine_new(const kf_sim_spec *spec, const kf_sim_engine_config *cfg,
                                 kf_error *err);
void kf_sim_engine_destroy(kf_sim_engine *e); /* NULL is a no-op */

/* Runs one batch: for each table in order, its inserts, each followed with the table's
 * probabilities by an update and a delete of random live rows; then the evolution controller
 * of each table that is due. A strategy may replace each of those steps and the controller's
 * choice, within the rules (see strategy.h). Returns 0, a callback's negative code, or a negative
 * error with err filled. After max_events changes the batch ends early and the engine is done. */
int kf_sim_engine_run_batch(kf_sim_engine *e, kf_error *err);

/* Runs one evolution step on table i now, whatever its cadence. Returns 1 when a change was
 * applied (and reported), 0 when none was possible, or a negative error. */
int kf_sim_engine_evolve(kf_sim_engine *e, size_t i, kf_error *err);

bool kf_sim_engine_done(const kf_sim_engine *e);
uint64_t kf_sim_engine_events(const kf_sim_engine *e);
uint64_t kf_sim_engine_batches(const kf_sim_engine *e);
int64_t kf_sim_engine_clock(const kf_sim_engine *e);
uint64_t kf_sim_engine_seed(const kf_sim_engine *e);

/* The tables, in spec order; borrowed, valid until the engine is destroyed. */
size_t kf_sim_engine_table_count(const kf_sim_engine *e);
const kf_sim_table *kf_sim_engine_table(const kf_sim_engine *e, size_t i);
const kf_sim_table_stats *kf_sim_engine_stats(const kf_sim_engine *e, size_t i);

/* The cells of live row r of table i (r < stats->live_rows), valid until the next batch. */
const kf_sim_cell *kf_sim_engine_live_row(const kf_sim_engine *e, size_t i, size_t r);

#endif
