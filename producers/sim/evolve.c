/* Evolution rules and the controller that applies them to a table's live shape. */
#include "evolve.h"

#include <stdlib.h>
#include <string.h>

#define VARCHAR_MAX_LENGTH    10485760
#define DECIMAL_MAX_PRECISION 38

bool kf_sim_evolve_due(const kf_sim_table_spec *spec, uint64_t batch, kf_sim_rng *rng)
{
    bool due = spec->evolve_every > 0 && batch % spec->evolve_every == 0;
    if (spec->evolve_probability > 0 && kf_sim_rng_chance(rng, spec->evolve_probability))
        due = true;
    return due;
}

bool kf_sim_evolve_widen_type(const kf_sim_coltype *from, int varchar_growth, kf_sim_coltype *to)
{
    *to = *from;
    switch (from->type) {
    case KF_SIM_SMALLINT:
        to->type = KF_SIM_INT;
        return true;
    case KF_SIM_INT:
        to->type = KF_SIM_BIGINT;
        return true;
    case KF_SIM_FLOAT:
        to->type = KF_SIM_DOUBLE;
        return true;
    case KF_SIM_VARCHAR: {
        if (from->length >= VARCHAR_MAX_LENGTH)
            return false;
        long grow = (long)from->length * (varchar_growth > 0 ? varchar_growth : 100) / 100;
        long len = (long)from->length + (grow < 1 ? 1 : grow);
        to->length = (int)(len > VARCHAR_MAX_LENGTH ? VARCHAR_MAX_LENGTH : len);
        return true;
    }
    case KF_SIM_DECIMAL:
        if (from->precision >= DECIMAL_MAX_PRECISION)
            return false;
        to->precision = from->precision + 2 > DECIMAL_MAX_PRECISION ? DECIMAL_MAX_PRECISION
                                                                    : from->precision + 2;
        return true;
    default:
        return false;
    }
}

bool kf_sim_evolve_allowed(const kf_sim_table *t, kf_sim_evolve_action a, size_t i)
{
    if (i >= t->ncolumns)
        return false;
    const kf_sim_column *c = &t->spec->columns[i];
    kf_sim_coltype wider;
    switch (a) {
    case KF_SIM_EVOLVE_PROMOTE:
        return t->state[i] == KF_SIM_COL_RESERVED;
    case KF_SIM_EVOLVE_DROP:
        return t->state[i] == KF_SIM_COL_ACTIVE && !c->is_protected && !c->is_key &&
               !c->is_update_column;
    case KF_SIM_EVOLVE_WIDEN:
        return t->state[i] == KF_SIM_COL_ACTIVE && !c->is_key &&
               kf_sim_evolve_widen_type(&t->type[i], t->spec->varchar_growth, &wider);
    case KF_SIM_EVOLVE_READD:
        return t->state[i] == KF_SIM_COL_DROPPED && t->spec->allow_readd && c->nullable;
    default:
        return false;
    }
}

int kf_sim_evolve_apply(kf_sim_table *t, kf_sim_evolve_action a, size_t i, kf_sim_evolution *out,
                        kf_error *err)
{
    if (!kf_sim_evolve_allowed(t, a, i)) {
        const char *name = i < t->ncolumns ? t->spec->columns[i].name : "?";
        return kf_error_set(err, KF_ERR_STATE, false,
                            "cannot %s column \"%s\" of table \"%s\": the evolution rules forbid "
                            "it in its current state",
                            kf_sim_evolve_action_name(a), name, t->spec->name);
    }
    memset(out, 0, sizeof(*out));
    out->action = a;
    out->column = i;
    out->from = t->type[i];
    out->to = t->type[i];
    switch (a) {
    case KF_SIM_EVOLVE_PROMOTE:
    case KF_SIM_EVOLVE_READD:
        t->state[i] = KF_SIM_COL_ACTIVE;
        break;
    case KF_SIM_EVOLVE_DROP:
        t->state[i] = KF_SIM_COL_DROPPED;
        break;
    case KF_SIM_EVOLVE_WIDEN:
        kf_sim_evolve_widen_type(&t->type[i], t->spec->varchar_growth, &out->to);
        t->type[i] = out->to;
        break;
    default:
        break;
    }
    out->schema_version = ++t->schema_version;
    return KF_OK;
}

int kf_sim_evolve_step(kf_sim_table *t, kf_sim_rng *rng, kf_sim_evolution *out)
{
    size_t candidates[KF_SIM_EVOLVE_COUNT_] = {0};
    double total = 0;
    for (int a = 0; a < KF_SIM_EVOLVE_COUNT_; a++) {
        for (size_t i = 0; i < t->ncolumns; i++)
            candidates[a] += kf_sim_evolve_allowed(t, (kf_sim_evolve_action)a, i);
        if (candidates[a])
            total += t->spec->evolve_weights[a];
    }
    if (total <= 0)
        return 0;
    double u = kf_sim_rng_double(rng) * total;
    int action = -1;
    for (int a = 0; a < KF_SIM_EVOLVE_COUNT_; a++) {
        if (!candidates[a] || t->spec->evolve_weights[a] <= 0)
            continue;
        action = a;
        if (u < t->spec->evolve_weights[a])
            break;
        u -= t->spec->evolve_weights[a];
    }
    size_t pick = (size_t)kf_sim_rng_below(rng, candidates[action]);
    for (size_t i = 0; i < t->ncolumns; i++) {
        if (!kf_sim_evolve_allowed(t, (kf_sim_evolve_action)action, i))
            continue;
        if (pick-- == 0)
            return kf_sim_evolve_apply(t, (kf_sim_evolve_action)action, i, out, NULL) == KF_OK;
    }
    return 0;
}

int kf_sim_evolution_write_json(kf_sim_buf *b, const kf_sim_table *t, const kf_sim_evolution *ev)
{
    char ts[48], from[48], to[48];
    kf_sim_time_format(ev->ts_us, true, ts, sizeof(ts));
    kf_sim_coltype_format(&ev->from, from, sizeof(from));
    kf_sim_coltype_format(&ev->to, to, sizeof(to));
    const char *col = t->spec->columns[ev->column].name;
    int rc = kf_sim_buf_printf(
        b, "{\"type\":\"schema_change\",\"ts\":\"%s\",\"batch\":%llu,\"database\":", ts,
        (unsigned long long)ev->batch);
    if (rc == KF_OK)
        rc = kf_sim_json_string(b, t->spec->database, strlen(t->spec->database));
    if (rc == KF_OK)
        rc = kf_sim_buf_puts(b, ",\"table\":");
    if (rc == KF_OK)
        rc = kf_sim_json_string(b, t->spec->name, strlen(t->spec->name));
    if (rc == KF_OK)
        rc = kf_sim_buf_printf(b, ",\"schema_version\":%u,\"action\":\"%s\",\"column\":",
                               ev->schema_version, kf_sim_evolve_action_name(ev->action));
    if (rc == KF_OK)
        rc = kf_sim_json_string(b, col, strlen(col));
    if (rc == KF_OK)
        rc = kf_sim_buf_printf(b, ",\"from\":\"%s\",\"to\":\"%s\"}", from, to);
    return rc;
}
