/* The live shape of a simulated table: which declared columns are active, reserved or
 * dropped, each column's current type, and the schema version. Evolution changes it;
 * outputs read it to describe rows. */
#ifndef KF_SIM_TABLE_H
#define KF_SIM_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spec.h"
#include "value.h"

typedef enum kf_sim_col_state {
    KF_SIM_COL_ACTIVE = 0,
    KF_SIM_COL_RESERVED, /* declared, not yet part of the table */
    KF_SIM_COL_DROPPED,  /* tombstoned: gone from the table, remembered */
} kf_sim_col_state;

/* Row cells are indexed like spec->columns; only active columns belong to the table now. */
typedef struct kf_sim_table {
    const kf_sim_table_spec *spec; /* borrowed; outlives the table */
    size_t ncolumns;
    kf_sim_col_state *state;
    kf_sim_coltype *type;    /* current types (the declared ones, widened since) */
    uint32_t schema_version; /* 1 at start, +1 per change */
} kf_sim_table;

/* Sets t up from spec: reserved columns reserved, the others active, declared types,
 * version 1. Returns 0 or KF_ERR_NOMEM. */
int kf_sim_table_init(kf_sim_table *t, const kf_sim_table_spec *spec);

/* Frees what init allocated; a zeroed table is fine. */
void kf_sim_table_fini(kf_sim_table *t);

static inline bool kf_sim_table_active(const kf_sim_table *t, size_t i)
{
    return t->state[i] == KF_SIM_COL_ACTIVE;
}

#endif
