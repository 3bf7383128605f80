/* A deliberately misbehaving strategy for the simulator's tests: by its arguments it asks for
 * forbidden schema changes, rows that are not live, unknown operations, or a row it pins, so
 * the tests can check the engine refuses (or obeys) each. */
#include <stdio.h>
#include <string.h>

#include "strategy.h"

typedef enum mode {
    MODE_DROP_PROTECTED, /* drop a protected, key or update column every time */
    MODE_READD,          /* re-add the first dropped column (tombstones must hold) */
    MODE_BAD_ROWS,       /* rows past the live ones, unknown operations, changed forced ops */
    MODE_PIN,            /* every update on row 0, no deletes; records row 0's key */
    MODE_FAIL,           /* choose_mutation fails */
} mode;

static mode current;
static char pinned_key[256];
static unsigned long pinned_calls;

/* For the tests (they reach it with dlsym on the same, already loaded object). */
__attribute__((visibility("default"))) const char *kf_sim_test_pinned_key(unsigned long *calls);

const char *kf_sim_test_pinned_key(unsigned long *calls)
{
    *calls = pinned_calls;
    return pinned_key;
}

static int mb_init(void **ctx_out, const char *args, uint64_t seed, char *errbuf, size_t errsize)
{
    (void)seed;
    static const char *const names[] = {"drop_protected", "readd", "bad_rows", "pin", "fail"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(args, names[i]) == 0) {
            current = (mode)i;
            pinned_key[0] = '\0';
            pinned_calls = 0;
            *ctx_out = NULL;
            return 0;
        }
    }
    snprintf(errbuf, errsize, "unknown mode \"%s\"", args);
    return -1;
}

static void mb_destroy(void *ctx)
{
    (void)ctx;
}

static int mb_choose_mutation(void *ctx, const kf_sim_strategy_table *t,
                              const kf_sim_strategy_rng *rng, kf_sim_strategy_mutation *m)
{
    (void)ctx;
    switch (current) {
    case MODE_BAD_ROWS:
        if (m->forced)
            m->op = KF_SIM_STRATEGY_OP_NONE;
        else if (m->op == KF_SIM_STRATEGY_OP_INSERT)
            m->op = 42;
        else
            m->row = t->live_rows + rng->below(rng->self, 3);
        return 0;
    case MODE_PIN:
        if (m->op == KF_SIM_STRATEGY_OP_UPDATE && t->live_rows > 0) {
            m->row = 0;
            pinned_calls++;
            if (t->row_key(t, 0, pinned_key, sizeof(pinned_key)) < 0)
                return -1;
        } else if (m->op == KF_SIM_STRATEGY_OP_DELETE && !m->forced) {
            m->op = KF_SIM_STRATEGY_OP_NONE;
        }
        return 0;
    case MODE_FAIL:
        return -7;
    default:
        return 0;
    }
}

static int mb_choose_evolution(void *ctx, const kf_sim_strategy_table *t,
                               const kf_sim_strategy_rng *rng,
                               const kf_sim_strategy_candidate *candidates, size_t ncandidates,
                               kf_sim_strategy_evolution *choice)
{
    (void)ctx;
    (void)candidates;
    (void)ncandidates;
    if (current == MODE_DROP_PROTECTED) {
        size_t n = 0;
        for (size_t i = 0; i < t->ncolumns; i++)
            n += (t->columns[i].flags & KF_SIM_STRATEGY_COL_PROTECTED) != 0;
        size_t pick = (size_t)rng->below(rng->self, n);
        for (size_t i = 0; i < t->ncolumns; i++) {
            if ((t->columns[i].flags & KF_SIM_STRATEGY_COL_PROTECTED) && pick-- == 0) {
                choice->action = KF_SIM_STRATEGY_EVOLVE_DROP;
                choice->column = i;
            }
        }
    } else if (current == MODE_READD) {
        for (size_t i = 0; i < t->ncolumns; i++) {
            if (t->columns[i].state == KF_SIM_STRATEGY_COL_DROPPED) {
                choice->action = KF_SIM_STRATEGY_EVOLVE_READD;
                choice->column = i;
                return 0;
            }
        }
    } else if (current == MODE_BAD_ROWS) {
        choice->action = 99;
    }
    return 0;
}

static const kf_sim_strategy_def definition = {
    .abi_version = KF_SIM_STRATEGY_ABI_VERSION,
    .name = "misbehave",
    .init = mb_init,
    .destroy = mb_destroy,
    .choose_mutation = mb_choose_mutation,
    .choose_evolution = mb_choose_evolution,
};

__attribute__((visibility("default"))) const kf_sim_strategy_def *kf_sim_strategy_entry(void)
{
    return &definition;
}
