/* Mutation bookkeeping of one simulated table: the live rows (with their current values, for
 * before-images), unique and key sets, sequence counters, and the insert/update/delete
 * operations that keep them consistent and report each change. */
#ifndef KF_SIM_MUTATE_H
#define KF_SIM_MUTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gen.h"
#include "kfleet/error.h"
#include "mem.h"
#include "table.h"

typedef enum kf_sim_op {
    KF_SIM_OP_CREATE = 'c',
    KF_SIM_OP_UPDATE = 'u',
    KF_SIM_OP_DELETE = 'd',
} kf_sim_op;

/* Counters of one table. errors[column * KF_SIM_CHECK_COUNT_ + check] counts the injected
 * records that break that constraint of that column. */
typedef struct kf_sim_table_stats {
    uint64_t inserts, updates, deletes;
    uint64_t live_rows;
    uint64_t evolutions[KF_SIM_EVOLVE_COUNT_];
    uint64_t errors_total;
    uint64_t *errors;
    uint64_t strategy_refused; /* choices of a strategy plugin the rules refused */
} kf_sim_table_stats;

/* A stored live row: its cells followed by the bytes of its strings, in one block. */
typedef struct kf_sim_live_row {
    void *mem;
    size_t cap;
} kf_sim_live_row;

/* Everything the simulator keeps per table. Fields are private to mutate.c and engine.c. */
typedef struct kf_sim_tstate {
    kf_sim_table table;
    kf_sim_table_stats stats;
    uint64_t *seq;         /* per column: values drawn from its sequence */
    kf_sim_hset keys;      /* key hashes of live rows (unless the key is a sequence) */
    kf_sim_hset *unique;   /* per column; used for unique columns */
    kf_sim_live_row *rows; /* live rows, in no particular but deterministic order */
    size_t nrows, caprows;
    kf_sim_slab *slab;     /* the blocks of rows; those of deleted/replaced rows are reused */
    kf_sim_cell *after;    /* per column: the row being built */
    kf_sim_cell *keycells; /* per key column */
    bool *mark;            /* per column: regenerate in this update */
    size_t *pick;          /* per column: scratch for choosing columns */
    uint32_t *breakable;   /* per column and check: scratch for error injection */
} kf_sim_tstate;

struct kf_sim_mctx;

/* Called once per change, after the row was built and before the bookkeeping commits it.
 * before is NULL for creates, after NULL for deletes. A non-zero return aborts the operation
 * and is returned by it. */
typedef int (*kf_sim_emit_fn)(struct kf_sim_mctx *m, kf_sim_tstate *ts, kf_sim_op op,
                              const kf_sim_row *key, const kf_sim_row *before,
                              const kf_sim_row *after);

/* What operations draw from and report to. Borrowed by the operations. */
typedef struct kf_sim_mctx {
    kf_sim_genctx gen; /* gen.now_us advances by tick_us before each change */
    int64_t tick_us;
    kf_sim_emit_fn emit;
    void *emit_ctx;
    bool stop;     /* set by emit to end the batch early (event limit reached) */
    kf_error *err; /* filled on failure */
} kf_sim_mctx;

/* Sets up ts for spec. Returns 0 or KF_ERR_NOMEM. */
int kf_sim_tstate_init(kf_sim_tstate *ts, const kf_sim_table_spec *spec);
/* Frees everything; a zeroed state is fine. */
void kf_sim_tstate_fini(kf_sim_tstate *ts);

/* Inserts one generated row (first deleting a random live row when at max_live_rows).
 * Returns 0 or a negative error with err filled. */
int kf_sim_mutate_insert(kf_sim_tstate *ts, kf_sim_mctx *m);

/* Updates a random live row: regenerates 1..max_columns_per_update of the active update
 * columns, refreshes the update column and repairs values an earlier error injection broke.
 * No live row (or nothing to change) is not an error: no change is reported. */
int kf_sim_mutate_update(kf_sim_tstate *ts, kf_sim_mctx *m);

/* Deletes a random live row; none is not an error. */
int kf_sim_mutate_delete(kf_sim_tstate *ts, kf_sim_mctx *m);

/* kf_sim_mutate_update and kf_sim_mutate_delete of live row idx instead of a random one
 * (a strategy's choice). KF_ERR_INVALID with err filled when idx is not a live row. */
int kf_sim_mutate_update_row(kf_sim_tstate *ts, kf_sim_mctx *m, size_t idx);
int kf_sim_mutate_delete_row(kf_sim_tstate *ts, kf_sim_mctx *m, size_t idx);

/* The current cells of live row i (i < ts->nrows), valid until the next operation. */
const kf_sim_cell *kf_sim_tstate_row(const kf_sim_tstate *ts, size_t i);

/* After column i was promoted, re-added or dropped: every live row holds null there and its
 * unique set is empty. */
void kf_sim_tstate_null_column(kf_sim_tstate *ts, size_t i);

/* true when cell v of column c (type t) breaks one of the column's declared constraints of
 * the kinds in kinds (bits 1u << kf_sim_check); which one goes to *which when not NULL. */
bool kf_sim_cell_violates(const kf_sim_column *c, const kf_sim_coltype *t, const kf_sim_cell *v,
                          unsigned kinds, kf_sim_check *which);

#endif
