/* Example kfleet-sim strategy: concentrates updates on a small hot set of rows (the first rows
 * each table inserts) and keeps deletes away from them, like a workload with popular keys. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strategy.h"

/* Arguments: "hot=N,share=F" (both optional). */
typedef struct hot_keys {
    uint64_t hot; /* rows in the hot set, per table */
    double share; /* share of updates that hit the hot set */
} hot_keys;

static int parse_args(hot_keys *hk, const char *args, char *errbuf, size_t errsize)
{
    char text[256];
    if (strlen(args) >= sizeof(text)) {
        snprintf(errbuf, errsize, "arguments longer than %zu characters", sizeof(text) - 1);
        return -1;
    }
    strcpy(text, args);
    char *save = NULL;
    for (char *item = strtok_r(text, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq) {
            snprintf(errbuf, errsize, "argument \"%s\" is not name=value", item);
            return -1;
        }
        *eq = '\0';
        const char *value = eq + 1;
        char *end;
        errno = 0;
        if (strcmp(item, "hot") == 0) {
            unsigned long long v = strtoull(value, &end, 10);
            if (*value == '-' || *end || end == value || errno || v == 0) {
                snprintf(errbuf, errsize, "hot needs a positive integer, not \"%s\"", value);
                return -1;
            }
            hk->hot = v;
        } else if (strcmp(item, "share") == 0) {
            double v = strtod(value, &end);
            if (*end || end == value || errno || !(v >= 0 && v <= 1)) {
                snprintf(errbuf, errsize, "share needs a number between 0 and 1, not \"%s\"",
                         value);
                return -1;
            }
            hk->share = v;
        } else {
            snprintf(errbuf, errsize, "unknown argument \"%s\" (hot, share)", item);
            return -1;
        }
    }
    return 0;
}

static int hk_init(void **ctx_out, const char *args, uint64_t seed, char *errbuf, size_t errsize)
{
    (void)seed; /* every draw comes from the engine's generator */
    hot_keys *hk = malloc(sizeof(*hk));
    if (!hk) {
        snprintf(errbuf, errsize, "out of memory");
        return -1;
    }
    hk->hot = 10;
    hk->share = 0.9;
    if (parse_args(hk, args, errbuf, errsize) != 0) {
        free(hk);
        return -1;
    }
    *ctx_out = hk;
    return 0;
}

static void hk_destroy(void *ctx)
{
    free(ctx);
}

/* Rows 0..hot-1 are the hot set. Inserts append and deletes here never touch those rows, so
 * they keep their numbers and stay the same keys for the whole run. */
static int hk_choose_mutation(void *ctx, const kf_sim_strategy_table *t,
                              const kf_sim_strategy_rng *rng, kf_sim_strategy_mutation *m)
{
    const hot_keys *hk = ctx;
    uint64_t n = t->live_rows;
    if (n == 0)
        return 0;
    if (m->op == KF_SIM_STRATEGY_OP_UPDATE) {
        if (n <= hk->hot || rng->uniform(rng->self) < hk->share)
            m->row = rng->below(rng->self, n < hk->hot ? n : hk->hot);
        else
            m->row = hk->hot + rng->below(rng->self, n - hk->hot);
    } else if (m->op == KF_SIM_STRATEGY_OP_DELETE) {
        if (n > hk->hot)
            m->row = hk->hot + rng->below(rng->self, n - hk->hot);
        else if (!m->forced)
            m->op = KF_SIM_STRATEGY_OP_NONE; /* only hot rows live: keep them */
    }
    return 0;
}

static const kf_sim_strategy_def definition = {
    .abi_version = KF_SIM_STRATEGY_ABI_VERSION,
    .name = "hot_keys",
    .init = hk_init,
    .destroy = hk_destroy,
    .choose_mutation = hk_choose_mutation,
};

__attribute__((visibility("default"))) const kf_sim_strategy_def *kf_sim_strategy_entry(void)
{
    return &definition;
}
