/* The evolution controller: on a cadence it promotes a reserved column, drops an unprotected
 * one, widens a type or (when allowed) re-adds a dropped one, and records each change. */
#ifndef KF_SIM_EVOLVE_H
#define KF_SIM_EVOLVE_H

#include <stdbool.h>
#include <stdint.h>

#include "kfleet/error.h"
#include "mem.h"
#include "rng.h"
#include "spec.h"
#include "table.h"

/* One applied schema change. */
typedef struct kf_sim_evolution {
    kf_sim_evolve_action action;
    size_t column;           /* index into the table's columns */
    kf_sim_coltype from, to; /* the column's type before and after (differ only for widen) */
    uint32_t schema_version; /* the table's version after the change */
    int64_t ts_us;           /* simulated clock when it happened (set by the engine) */
    uint64_t batch;          /* the batch after which it happened (set by the engine) */
} kf_sim_evolution;

/* Whether the controller runs after batch number batch (counted from 1): every
 * spec->evolve_every batches, or with spec->evolve_probability (draws from rng only then). */
bool kf_sim_evolve_due(const kf_sim_table_spec *spec, uint64_t batch, kf_sim_rng *rng);

/* true when column i of t may undergo action a now: promote needs a reserved column; drop an
 * active column that is not protected, not a key and not the update column; widen an active
 * non-key column with a wider type; readd a dropped, nullable column and allow_readd. */
bool kf_sim_evolve_allowed(const kf_sim_table *t, kf_sim_evolve_action a, size_t i);

/* The next wider type of from: smallint->int->bigint, float->double, varchar(n) by growth
 * percent (at least one character), decimal(p,s)->decimal(p+2,s) up to 38. Returns false
 * when there is none. */
bool kf_sim_evolve_widen_type(const kf_sim_coltype *from, int varchar_growth, kf_sim_coltype *to);

/* Applies action a to column i when kf_sim_evolve_allowed says so, bumps the schema version
 * and fills *out; else returns KF_ERR_STATE with the reason in err and changes nothing. */
int kf_sim_evolve_apply(kf_sim_table *t, kf_sim_evolve_action a, size_t i, kf_sim_evolution *out,
                        kf_error *err);

/* Picks an action by the spec's weights among those with at least one candidate column, and
 * a candidate uniformly, then applies it. Returns 1 with *out filled, or 0 when no change is
 * possible. */
int kf_sim_evolve_step(kf_sim_table *t, kf_sim_rng *rng, kf_sim_evolution *out);

/* Appends the change as one JSON object (no newline): type "schema_change", ts, batch,
 * database, table, schema_version, action, column, from and to types. Returns 0 or
 * KF_ERR_NOMEM. */
int kf_sim_evolution_write_json(kf_sim_buf *b, const kf_sim_table *t, const kf_sim_evolution *ev);

#endif
