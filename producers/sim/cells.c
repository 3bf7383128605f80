/* Cells as plain text and destination nullability, shared by the Kafka and SQL outputs. */
#include "cells.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "kfleet/error.h"

static int put_decimal(kf_sim_buf *b, int64_t unscaled, int scale)
{
    char digits[32];
    uint64_t mag = unscaled < 0 ? (uint64_t)0 - (uint64_t)unscaled : (uint64_t)unscaled;
    int n = snprintf(digits, sizeof(digits), "%0*" PRIu64, scale + 1, mag);
    if (scale <= 0)
        return kf_sim_buf_printf(b, "%s%s", unscaled < 0 ? "-" : "", digits);
    return kf_sim_buf_printf(b, "%s%.*s.%s", unscaled < 0 ? "-" : "", n - scale, digits,
                             digits + n - scale);
}

int kf_sim_cell_text(kf_sim_buf *b, const kf_sim_coltype *t, const kf_sim_cell *c,
                     kf_sim_bool_style bools, bool zulu)
{
    char tmp[48];
    switch (c->kind) {
    case KF_SIM_CELL_NULL:
        return KF_ERR_INVALID;
    case KF_SIM_CELL_BOOL:
        if (bools == KF_SIM_BOOL_DIGITS)
            return kf_sim_buf_putc(b, c->b ? '1' : '0');
        return kf_sim_buf_puts(b, c->b ? "true" : "false");
    case KF_SIM_CELL_DOUBLE:
        if (!isfinite(c->d))
            return KF_ERR_INVALID;
        return kf_sim_buf_printf(b, t->type == KF_SIM_FLOAT ? "%.9g" : "%.17g", c->d);
    case KF_SIM_CELL_STRING:
        return kf_sim_buf_append(b, c->s, c->len);
    case KF_SIM_CELL_INT:
        break;
    }
    switch (t->type) {
    case KF_SIM_DECIMAL:
        return put_decimal(b, c->i, t->scale);
    case KF_SIM_DATE: {
        int64_t y;
        unsigned m, d;
        kf_sim_civil_from_days(c->i, &y, &m, &d);
        return kf_sim_buf_printf(b, "%04" PRId64 "-%02u-%02u", y, m, d);
    }
    case KF_SIM_TIMESTAMP:
    case KF_SIM_TIMESTAMPTZ:
        kf_sim_time_format(c->i, zulu && t->type == KF_SIM_TIMESTAMPTZ, tmp, sizeof(tmp));
        tmp[10] = ' ';
        return kf_sim_buf_puts(b, tmp);
    default:
        return kf_sim_buf_printf(b, "%" PRId64, c->i);
    }
}

bool kf_sim_column_nullable(const kf_sim_table *t, size_t col)
{
    const kf_sim_table_spec *s = t->spec;
    const kf_sim_column *c = &s->columns[col];
    if (c->is_key)
        return false;
    if (c->nullable || t->state[col] == KF_SIM_COL_DROPPED)
        return true;
    return s->error_ratio > 0 && (s->error_kinds & (1u << KF_SIM_CHECK_NOT_NULL));
}
