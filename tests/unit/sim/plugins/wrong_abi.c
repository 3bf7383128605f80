/* A strategy built for another ABI version, for the loader's tests: kfleet-sim must refuse it
 * before calling anything but the entry point. */
#include <stddef.h>

#include "strategy.h"

static int wa_init(void **ctx_out, const char *args, uint64_t seed, char *errbuf, size_t errsize)
{
    (void)args;
    (void)seed;
    (void)errbuf;
    (void)errsize;
    *ctx_out = NULL;
    return 0;
}

static void wa_destroy(void *ctx)
{
    (void)ctx;
}

static int wa_choose_mutation(void *ctx, const kf_sim_strategy_table *t,
                              const kf_sim_strategy_rng *rng, kf_sim_strategy_mutation *m)
{
    (void)ctx;
    (void)t;
    (void)rng;
    (void)m;
    return 0;
}

static const kf_sim_strategy_def definition = {
    .abi_version = KF_SIM_STRATEGY_ABI_VERSION + 1,
    .name = "wrong_abi",
    .init = wa_init,
    .destroy = wa_destroy,
    .choose_mutation = wa_choose_mutation,
};

__attribute__((visibility("default"))) const kf_sim_strategy_def *kf_sim_strategy_entry(void)
{
    return &definition;
}
