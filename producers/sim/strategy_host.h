/* The engine's side of strategy plugins: loading a shared object (dlopen, entry point, ABI
 * check, init), the per-table view plugins see, and asking for choices that are checked
 * against the rules before the engine obeys them. */
#ifndef KF_SIM_STRATEGY_HOST_H
#define KF_SIM_STRATEGY_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evolve.h"
#include "kfleet/error.h"
#include "mutate.h"
#include "rng.h"
#include "strategy.h"

/* A loaded plugin and, once started, its state. Opaque. One started instance drives one
 * engine (kf_sim_engine_config.strategy), which borrows it. */
typedef struct kf_sim_strategy kf_sim_strategy;

/* Opens the shared object at path (a path with a "/" is opened as is, a bare name is looked
 * up by the dynamic linker), resolves KF_SIM_STRATEGY_ENTRY_SYMBOL and checks the ABI
 * version and the definition. Copies path and args (NULL = ""). Does not call init yet (the
 * seed may not be known). Returns NULL with KF_ERR_CONFIG in err (a missing file, no entry
 * point, another ABI version, no init or destroy, no choose function) or KF_ERR_NOMEM. */
kf_sim_strategy *kf_sim_strategy_load(const char *path, const char *args, kf_error *err);

/* Calls the plugin's init with the arguments and seed; once per strategy. Returns 0, or
 * KF_ERR_CONFIG with the plugin's message in err, or KF_ERR_STATE when already started. */
int kf_sim_strategy_start(kf_sim_strategy *s, uint64_t seed, kf_error *err);

/* Calls the plugin's destroy (when it was started) and unloads it. NULL is a no-op. */
void kf_sim_strategy_destroy(kf_sim_strategy *s);

/* The path it was loaded from; borrowed. */
const char *kf_sim_strategy_path(const kf_sim_strategy *s);

/* The plugin's name (its definition's, else the file name); borrowed. */
const char *kf_sim_strategy_name(const kf_sim_strategy *s);

bool kf_sim_strategy_has_mutation(const kf_sim_strategy *s);
bool kf_sim_strategy_has_evolution(const kf_sim_strategy *s);

/* What a plugin sees of one table, kept by the engine per table. Fields are private to
 * strategy.c. */
typedef struct kf_sim_strategy_view {
    kf_sim_strategy_table pub;
    kf_sim_tstate *ts; /* borrowed; refused choices are counted in its stats */
    kf_sim_strategy_column *columns;
    char (*types)[48];
    uint32_t built_version; /* schema version the columns describe */
    kf_sim_strategy_candidate *candidates;
    kf_sim_buf scratch;
    uint64_t logged; /* refusals logged so far */
} kf_sim_strategy_view;

/* Sets v up over table ts (borrowed: it must outlive v), table number index. Returns 0 or
 * KF_ERR_NOMEM. */
int kf_sim_strategy_view_init(kf_sim_strategy_view *v, kf_sim_tstate *ts, size_t index);

/* Frees what init allocated; a zeroed view is fine. */
void kf_sim_strategy_view_fini(kf_sim_strategy_view *v);

/* Asks the plugin's choose_mutation what to do instead of proposed on v's table in batch
 * (counted from 1). forced: only the row may change (the delete before an insert at the
 * live-row cap). Fills *op (KF_SIM_STRATEGY_OP_*) and *row (a live row, or
 * KF_SIM_STRATEGY_ANY_ROW for a uniform draw). A choice the rules forbid is refused: counted
 * in the table's stats, logged, and *op and *row are the proposed operation and any row.
 * Returns 0, or the plugin's negative code with err filled. */
int kf_sim_strategy_choose_mutation(kf_sim_strategy *s, kf_sim_strategy_view *v, kf_sim_rng *rng,
                                    uint64_t batch, kf_sim_op proposed, bool forced, int *op,
                                    uint64_t *row, kf_error *err);

/* What kf_sim_strategy_choose_evolution decided. */
typedef enum kf_sim_strategy_verdict {
    KF_SIM_STRATEGY_BUILTIN = 0, /* the built-in controller chooses (also after a refusal) */
    KF_SIM_STRATEGY_CHOSEN,      /* *action on *column, allowed by the rules now */
    KF_SIM_STRATEGY_NO_CHANGE,   /* no schema change this time */
} kf_sim_strategy_verdict;

/* Asks the plugin's choose_evolution for a schema change of v's table after batch. Lists the
 * changes kf_sim_evolve_allowed permits; with none, returns NO_CHANGE without asking. A
 * forbidden choice is refused (counted, logged) and gives BUILTIN. Returns a verdict (>= 0)
 * or the plugin's negative code with err filled. */
int kf_sim_strategy_choose_evolution(kf_sim_strategy *s, kf_sim_strategy_view *v, kf_sim_rng *rng,
                                     uint64_t batch, kf_sim_evolve_action *action, size_t *column,
                                     kf_error *err);

#endif
