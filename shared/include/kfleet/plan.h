/* The schema evolution planner of DESIGN.md: compares an old and a new table shape and says,
 * column by column, what the destination must do. Pure: no I/O, no logging. */
#ifndef KFLEET_PLAN_H
#define KFLEET_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "kfleet/error.h"
#include "kfleet/table.h"

/*
 * Rules (the same for the evolve worker, the sinks and kfleet-schema):
 *   new column                     ADD          added nullable, default null
 *   dropped column                 KEEP_DROPPED kept; later values are null (NOT NULL relaxed)
 *   nullable now, NOT NULL before  RELAX_NULL   the destination drops NOT NULL
 *   widening                       WIDEN        the destination type is promoted
 *   narrowing                      KEEP_WIDE    the wider type stays; values that fit pass
 *   incompatible                   TO_TEXT      the destination becomes text
 * Widening is the smallest type holding both: smallint < int < bigint; float < double;
 * smallint/int -> double; integers -> decimal with enough integer digits; decimals to the
 * larger integer digits and scale; varchar(n) -> longer varchar -> text; uuid, timestamptz,
 * varchar -> text; date -> timestamp; timestamp to the finer precision. A pair with no such
 * type (int <-> text, bool <-> int, json <-> scalar, bigint <-> double, ...) is incompatible.
 * Nested objects and arrays arrive as JSON columns (jsonb in Postgres) and follow the same
 * rules: json -> json is unchanged, json <-> anything else is incompatible.
 * A column that gained NOT NULL keeps the destination nullable (no step).
 */
typedef enum kf_plan_action {
    KF_PLAN_ADD = 0,
    KF_PLAN_KEEP_DROPPED,
    KF_PLAN_RELAX_NULL,
    KF_PLAN_WIDEN,
    KF_PLAN_KEEP_WIDE,
    KF_PLAN_TO_TEXT,
} kf_plan_action;

/* One step. `from` is the old column (NULL for ADD), `to` the column the destination holds
 * afterwards (for KEEP_DROPPED and KEEP_WIDE the old column, nullable for KEEP_DROPPED).
 * Strings borrow from the plan. */
typedef struct kf_plan_step {
    kf_plan_action action;
    const char *column; /* the column name */
    const kf_column *from;
    const kf_column *to;
    bool warning; /* KEEP_WIDE and TO_TEXT: the caller should log a warning */
} kf_plan_step;

typedef struct kf_plan kf_plan;

/* Compares old_t and new_t (both borrowed for the call only; columns match by source name)
 * and returns a plan that owns copies of everything it refers to. old_t NULL means the table
 * does not exist yet: the plan is empty and kf_plan_result is new_t's shape with every column
 * as in new_t. NULL and err filled (KF_ERR_NOMEM, KF_ERR_INVALID) on failure. */
kf_plan *kf_plan_compute(const kf_table *old_t, const kf_table *new_t, kf_error *err);
void kf_plan_destroy(kf_plan *p); /* NULL is a no-op */

/* Steps in destination column order (old columns first, in their order, then added ones). */
size_t kf_plan_nsteps(const kf_plan *p);
const kf_plan_step *kf_plan_step_at(const kf_plan *p, size_t i); /* NULL when out of range */

/* True when some step changes the destination (ADD, KEEP_DROPPED of a NOT NULL column,
 * RELAX_NULL, WIDEN, TO_TEXT); KEEP_WIDE and KEEP_DROPPED of a nullable column change nothing. */
bool kf_plan_changes_destination(const kf_plan *p);
bool kf_plan_step_changes_destination(const kf_plan_step *s);

/* True when the primary key columns (names, in key order) differ: destinations cannot follow
 * that automatically and keep their key. */
bool kf_plan_pk_changed(const kf_plan *p);

/* The destination shape after the plan: every old column (changed as the steps say) followed
 * by the added ones; the primary key is the old one (the new one when old_t was NULL).
 * Borrowed from the plan. */
const kf_table *kf_plan_result(const kf_plan *p);

/* "add", "keep_dropped", "relax_null", "widen", "keep_wide", "to_text"; never NULL. */
const char *kf_plan_action_name(kf_plan_action a);

/* The smallest column type holding every value of a and b, written into *out (name and field
 * left NULL; nullable is a || b; pk_order 0). Returns true, or false when the types are
 * incompatible. */
bool kf_plan_join_types(const kf_column *a, const kf_column *b, kf_column *out);

#endif
