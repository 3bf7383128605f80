/* Value generators: turn a column's generator spec into cells, drawing only from the
 * simulator's seeded PRNG and clock; and produce values that break a declared constraint
 * for error injection. */
#ifndef KF_SIM_GEN_H
#define KF_SIM_GEN_H

#include <stdbool.h>
#include <stdint.h>

#include "mem.h"
#include "rng.h"
#include "spec.h"
#include "value.h"

/* What a generator draws from. All borrowed; strings of generated cells go into arena and
 * live until its next reset. */
typedef struct kf_sim_genctx {
    kf_sim_rng *rng;
    kf_sim_arena *arena;
    kf_sim_buf *scratch; /* composing space, reused */
    int64_t now_us;      /* the simulated clock, microseconds since the epoch */
} kf_sim_genctx;

/* Generates a value for column c as of type t (its current type, which widening may have
 * changed from the declared one), drawing null with the column's null ratio first. seq counts
 * the values the column's sequence produced (the next is start + seq * step; advanced by
 * sequence generators; may be NULL for others).
 * Returns 0, KF_ERR_NOMEM, or KF_ERR_FULL when a sequence ran past its type's range. */
int kf_sim_gen_cell(const kf_sim_column *c, const kf_sim_coltype *t, uint64_t *seq,
                    kf_sim_genctx *g, kf_sim_cell *out);

/* The same without the null draw: always a non-null value. */
int kf_sim_gen_value(const kf_sim_column *c, const kf_sim_coltype *t, uint64_t *seq,
                     kf_sim_genctx *g, kf_sim_cell *out);

/* true when a value of column c (type t) can be made to break check: not_null needs a
 * not-null column, range a min or max with room beyond it in the type, allowed_values a
 * value list, email the email generator, length a max_length below the type's own limit.
 * Key and unique columns are never offered except unique columns for not_null. */
bool kf_sim_gen_can_break(const kf_sim_column *c, const kf_sim_coltype *t, kf_sim_check check);

/* Produces a value of column c that breaks check (kf_sim_gen_can_break must be true).
 * Returns 0 or KF_ERR_NOMEM. */
int kf_sim_gen_invalid(const kf_sim_column *c, const kf_sim_coltype *t, kf_sim_check check,
                       kf_sim_genctx *g, kf_sim_cell *out);

#endif
