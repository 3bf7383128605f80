/* A shared object without the strategy entry point, for the loader's tests: kfleet-sim must
 * refuse it with a message naming the missing symbol. */
#include "strategy.h"

__attribute__((visibility("default"))) const kf_sim_strategy_def *kf_sim_strategy_entry_v0(void);

/* A near miss of the entry point's name, as an outdated or misspelt plugin would export. */
const kf_sim_strategy_def *kf_sim_strategy_entry_v0(void)
{
    return NULL;
}
