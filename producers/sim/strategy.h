/* The public interface of kfleet-sim strategy plugins: a shared object that chooses the
 * simulator's mutations and/or schema changes while the engine keeps enforcing the rules.
 * Self-contained (C99, no kfleet headers), so a plugin builds against this file alone. */
#ifndef KF_SIM_STRATEGY_H
#define KF_SIM_STRATEGY_H

#include <stddef.h>
#include <stdint.h>

/*
 * A plugin is a shared object (cc -shared -fPIC) that exports one function,
 *
 *     const kf_sim_strategy_def *kf_sim_strategy_entry(void);
 *
 * returning a static definition whose abi_version is KF_SIM_STRATEGY_ABI_VERSION of the
 * header it was built with. kfleet-sim loads it with --strategy PATH (sim.strategy), passes
 * --strategy-args TEXT (sim.strategy.args) to init, and refuses (exit 2) a file it cannot
 * open, a file without the entry point, or another ABI version.
 *
 * Rules the engine keeps whatever the plugin says: a choice the rules forbid (dropping a
 * protected, key or update column, re-adding a tombstoned column without allow_readd,
 * promoting a column that is not reserved, a row index that is not a live row, an unknown
 * operation) is refused: not obeyed, counted in the table's statistics, logged, and the
 * engine makes its own choice for that step instead.
 *
 * Determinism: all randomness must come from the kf_sim_strategy_rng handed to each call
 * (the engine's seeded generator), never from rand(), time or addresses, and a plugin's
 * state must depend only on what it was told; then the same --seed, specs, plugin and
 * arguments give byte-identical streams, and --resume regenerates the same run.
 *
 * Threads: the engine calls a plugin from one thread, one call at a time. Everything the
 * engine passes is borrowed for the duration of the call.
 */

/* Bumped on any incompatible change of the structures or callbacks below. */
#define KF_SIM_STRATEGY_ABI_VERSION 1

/* The name of the function every plugin exports. */
#define KF_SIM_STRATEGY_ENTRY_SYMBOL "kf_sim_strategy_entry"

/* Operations (kf_sim_strategy_mutation.op). */
enum {
    KF_SIM_STRATEGY_OP_NONE = 0, /* make no change in this step */
    KF_SIM_STRATEGY_OP_INSERT = 1,
    KF_SIM_STRATEGY_OP_UPDATE = 2,
    KF_SIM_STRATEGY_OP_DELETE = 3,
};

/* kf_sim_strategy_mutation.row: the engine draws a live row uniformly, as without a plugin. */
#define KF_SIM_STRATEGY_ANY_ROW UINT64_MAX

/* Schema changes (kf_sim_strategy_candidate.action, kf_sim_strategy_evolution.action). */
enum {
    KF_SIM_STRATEGY_EVOLVE_DEFAULT = -1, /* the built-in controller chooses (spec weights) */
    KF_SIM_STRATEGY_EVOLVE_NONE = 0,     /* no schema change this time */
    KF_SIM_STRATEGY_EVOLVE_PROMOTE = 1,  /* a reserved column becomes active */
    KF_SIM_STRATEGY_EVOLVE_DROP = 2,     /* an active column is dropped (tombstoned) */
    KF_SIM_STRATEGY_EVOLVE_WIDEN = 3,    /* an active column gets the next wider type */
    KF_SIM_STRATEGY_EVOLVE_READD = 4,    /* a dropped column comes back (allow_readd only) */
};

/* Column states (kf_sim_strategy_column.state). */
enum {
    KF_SIM_STRATEGY_COL_ACTIVE = 0,
    KF_SIM_STRATEGY_COL_RESERVED = 1, /* declared, not yet part of the table */
    KF_SIM_STRATEGY_COL_DROPPED = 2,  /* tombstoned */
};

/* Column flags (kf_sim_strategy_column.flags). */
#define KF_SIM_STRATEGY_COL_KEY           (1u << 0) /* part of the primary key */
#define KF_SIM_STRATEGY_COL_PROTECTED     (1u << 1) /* never dropped (keys, update column too) */
#define KF_SIM_STRATEGY_COL_UPDATE_COLUMN (1u << 2) /* the table's update timestamp */
#define KF_SIM_STRATEGY_COL_NULLABLE      (1u << 3) /* declared nullable */

/* One declared column, in spec order (the index is the column number of candidates). */
typedef struct kf_sim_strategy_column {
    const char *name;
    const char *type; /* current type as a spec writes it: "int", "varchar(40)", "decimal(12,2)" */
    int state;        /* KF_SIM_STRATEGY_COL_* */
    unsigned flags;   /* KF_SIM_STRATEGY_COL_* bits */
} kf_sim_strategy_column;

/* What a plugin sees of one table. Live rows are numbered 0..live_rows-1; an insert appends
 * a row at the end, an update keeps a row's number, and deleting row i moves the last row
 * to number i (rows below the deleted one keep their numbers). */
typedef struct kf_sim_strategy_table kf_sim_strategy_table;
struct kf_sim_strategy_table {
    const char *database;
    const char *name;
    size_t index;            /* the table's position among the run's tables, from 0 */
    uint32_t schema_version; /* 1 at start, +1 per schema change */
    uint64_t batch;          /* mutations: the batch being run; evolution: the one just run
                              * (both counted from 1; 0 before the first batch) */
    uint64_t live_rows;
    uint64_t max_live_rows;             /* 0 = no cap; at the cap an insert first deletes a row */
    uint64_t inserts, updates, deletes; /* changes made so far */
    size_t ncolumns;
    const kf_sim_strategy_column *columns;
    /* Writes the primary key of live row row as text into buf (NUL-terminated, cut to size
     * like snprintf): the key values in key order joined by ",", unquoted (for display and
     * for telling rows apart, not for parsing). Returns the length the full text needs, or
     * -1 when row is not a live row. */
    int (*row_key)(const kf_sim_strategy_table *t, uint64_t row, char *buf, size_t size);
    void *host; /* the engine's own; leave it alone */
};

/* Draws from the engine's seeded generator. Every draw advances the run's stream. */
typedef struct kf_sim_strategy_rng {
    void *self;
    uint64_t (*next)(void *self);              /* 64 random bits */
    uint64_t (*below)(void *self, uint64_t n); /* uniform in [0, n), unbiased; 0 when n == 0 */
    double (*uniform)(void *self);             /* uniform in [0, 1) */
} kf_sim_strategy_rng;

/* One mutation step. In each batch the engine runs, per table and per row to insert, an
 * insert, then an update with the table's update_probability, then a delete with its
 * delete_probability; choose_mutation is asked before each such step. */
typedef struct kf_sim_strategy_mutation {
    int op;       /* in: the operation the engine is about to make; out: the one to make
                   * (KF_SIM_STRATEGY_OP_*; NONE makes no change) */
    uint64_t row; /* in: KF_SIM_STRATEGY_ANY_ROW; out for update and delete: the live row,
                   * or KF_SIM_STRATEGY_ANY_ROW for a uniform draw */
    int forced;   /* in: 1 when only the row may be chosen: the delete that makes room for
                   * an insert at max_live_rows (changing op is refused) */
} kf_sim_strategy_mutation;

/* A schema change the evolution rules allow now, and the spec's weight for its action
 * (the weights configure the built-in controller; a plugin may follow or ignore them). */
typedef struct kf_sim_strategy_candidate {
    int action; /* KF_SIM_STRATEGY_EVOLVE_PROMOTE .. READD */
    size_t column;
    double weight;
} kf_sim_strategy_candidate;

/* The answer of choose_evolution. */
typedef struct kf_sim_strategy_evolution {
    int action;    /* in: KF_SIM_STRATEGY_EVOLVE_DEFAULT; out: DEFAULT, NONE or an action */
    size_t column; /* out for an action: the column number */
} kf_sim_strategy_evolution;

typedef struct kf_sim_strategy_def {
    uint32_t abi_version; /* KF_SIM_STRATEGY_ABI_VERSION */
    const char *name;     /* short name for logs, e.g. "hot_keys" */

    /* Required. Creates the plugin's state into *ctx_out (may stay NULL). args is the
     * --strategy-args text ("" when unset), seed the run's seed. Returns 0, or non-zero with
     * a lowercase message in errbuf (errsize bytes), which stops kfleet-sim with exit 2. */
    int (*init)(void **ctx_out, const char *args, uint64_t seed, char *errbuf, size_t errsize);

    /* Required. Frees what init created; called once after a successful init, also when
     * the run failed. */
    void (*destroy)(void *ctx);

    /* Optional (NULL: the built-in behaviour). Chooses the mutation step described above by
     * filling *m. Returns 0, or negative to stop the run as failed (exit 1). */
    int (*choose_mutation)(void *ctx, const kf_sim_strategy_table *t,
                           const kf_sim_strategy_rng *rng, kf_sim_strategy_mutation *m);

    /* Optional (NULL: the built-in controller). Called when the table's evolution cadence is
     * due and at least one change is allowed; candidates lists every allowed change (column
     * order, then action). Fills *choice. Returns 0, or negative to stop the run (exit 1). */
    int (*choose_evolution)(void *ctx, const kf_sim_strategy_table *t,
                            const kf_sim_strategy_rng *rng,
                            const kf_sim_strategy_candidate *candidates, size_t ncandidates,
                            kf_sim_strategy_evolution *choice);
} kf_sim_strategy_def;

/* Every plugin defines this function (exported with default visibility). */
const kf_sim_strategy_def *kf_sim_strategy_entry(void);

typedef const kf_sim_strategy_def *(*kf_sim_strategy_entry_fn)(void);

#endif
