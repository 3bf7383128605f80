/* The live shape of a simulated table: column states, current types, schema version. */
#include "table.h"

#include <stdlib.h>
#include <string.h>

#include "kfleet/error.h"

int kf_sim_table_init(kf_sim_table *t, const kf_sim_table_spec *spec)
{
    memset(t, 0, sizeof(*t));
    t->spec = spec;
    t->ncolumns = spec->ncolumns;
    t->state = calloc(spec->ncolumns, sizeof(*t->state));
    t->type = calloc(spec->ncolumns, sizeof(*t->type));
    if (!t->state || !t->type) {
        kf_sim_table_fini(t);
        return KF_ERR_NOMEM;
    }
    for (size_t i = 0; i < spec->ncolumns; i++) {
        t->state[i] = spec->columns[i].reserved ? KF_SIM_COL_RESERVED : KF_SIM_COL_ACTIVE;
        t->type[i] = spec->columns[i].type;
    }
    t->schema_version = 1;
    return KF_OK;
}

void kf_sim_table_fini(kf_sim_table *t)
{
    free(t->state);
    free(t->type);
    t->state = NULL;
    t->type = NULL;
}
