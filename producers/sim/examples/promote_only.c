/* Example kfleet-sim strategy: an evolution policy that only promotes reserved columns (the
 * schema grows, nothing is dropped or widened), in declared or random order. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strategy.h"

/* Arguments: "order=declared" (default) or "order=random". */
typedef struct promote_only {
    bool at_random; /* pick among the reserved columns at random, else the first declared */
} promote_only;

static int po_init(void **ctx_out, const char *args, uint64_t seed, char *errbuf, size_t errsize)
{
    (void)seed; /* every draw comes from the engine's generator */
    bool at_random;
    if (*args == '\0' || strcmp(args, "order=declared") == 0) {
        at_random = false;
    } else if (strcmp(args, "order=random") == 0) {
        at_random = true;
    } else {
        snprintf(errbuf, errsize, "unknown arguments \"%s\" (order=declared or order=random)",
                 args);
        return -1;
    }
    promote_only *po = malloc(sizeof(*po));
    if (!po) {
        snprintf(errbuf, errsize, "out of memory");
        return -1;
    }
    po->at_random = at_random;
    *ctx_out = po;
    return 0;
}

static void po_destroy(void *ctx)
{
    free(ctx);
}

static int po_choose_evolution(void *ctx, const kf_sim_strategy_table *t,
                               const kf_sim_strategy_rng *rng,
                               const kf_sim_strategy_candidate *candidates, size_t ncandidates,
                               kf_sim_strategy_evolution *choice)
{
    (void)t;
    const promote_only *po = ctx;
    size_t promotable = 0;
    for (size_t i = 0; i < ncandidates; i++)
        promotable += candidates[i].action == KF_SIM_STRATEGY_EVOLVE_PROMOTE;
    if (promotable == 0) {
        choice->action = KF_SIM_STRATEGY_EVOLVE_NONE;
        return 0;
    }
    /* Candidates come in column order, so the first one is the first declared. */
    size_t pick = po->at_random ? (size_t)rng->below(rng->self, promotable) : 0;
    for (size_t i = 0; i < ncandidates; i++) {
        if (candidates[i].action != KF_SIM_STRATEGY_EVOLVE_PROMOTE)
            continue;
        if (pick-- == 0) {
            choice->action = KF_SIM_STRATEGY_EVOLVE_PROMOTE;
            choice->column = candidates[i].column;
            break;
        }
    }
    return 0;
}

static const kf_sim_strategy_def definition = {
    .abi_version = KF_SIM_STRATEGY_ABI_VERSION,
    .name = "promote_only",
    .init = po_init,
    .destroy = po_destroy,
    .choose_evolution = po_choose_evolution,
};

__attribute__((visibility("default"))) const kf_sim_strategy_def *kf_sim_strategy_entry(void)
{
    return &definition;
}
