/* The schema evolution planner: old shape + new shape -> per-column steps and the resulting
 * destination shape, following the rules of DESIGN.md (see plan.h). */
#include <stdlib.h>
#include <string.h>

#include "kfleet/plan.h"

#define MAX_DECIMAL_PRECISION 1000

struct kf_plan {
    kf_table *old_copy; /* NULL when the table did not exist */
    kf_table *result;
    kf_plan_step *steps;
    size_t nsteps;
    bool pk_changed;
};

static bool is_int(kf_coltype t)
{
    return t == KF_COL_SMALLINT || t == KF_COL_INT || t == KF_COL_BIGINT;
}

static int int_rank(kf_coltype t)
{
    return t == KF_COL_SMALLINT ? 1 : t == KF_COL_INT ? 2 : 3;
}

/* Decimal digits every value of an integer type needs. */
static int int_digits(kf_coltype t)
{
    return t == KF_COL_SMALLINT ? 5 : t == KF_COL_INT ? 10 : 19;
}

static bool is_float(kf_coltype t)
{
    return t == KF_COL_FLOAT || t == KF_COL_DOUBLE;
}

static bool is_textual(kf_coltype t)
{
    return t == KF_COL_TEXT || t == KF_COL_VARCHAR;
}

/* Strings that widen to text: a uuid or a zoned timestamp is valid text. */
static bool is_stringish(kf_coltype t)
{
    return is_textual(t) || t == KF_COL_UUID || t == KF_COL_TIMESTAMPTZ;
}

static void col_type_only(kf_column *out, kf_coltype type)
{
    memset(out, 0, sizeof(*out));
    out->type = type;
}

static bool join_decimal(int int_digits_a, int scale_a, int int_digits_b, int scale_b,
                         kf_column *out)
{
    int intd = int_digits_a > int_digits_b ? int_digits_a : int_digits_b;
    int scale = scale_a > scale_b ? scale_a : scale_b;
    if (intd + scale > MAX_DECIMAL_PRECISION || intd + scale < 1)
        return false;
    col_type_only(out, KF_COL_DECIMAL);
    out->precision = intd + scale;
    out->scale = scale;
    return true;
}

static bool join_same(const kf_column *a, const kf_column *b, kf_column *out)
{
    col_type_only(out, a->type);
    switch (a->type) {
    case KF_COL_VARCHAR:
        out->length = (a->length == 0 || b->length == 0) ? 0
                      : a->length > b->length            ? a->length
                                                         : b->length;
        return true;
    case KF_COL_DECIMAL:
        return join_decimal(a->precision - a->scale, a->scale, b->precision - b->scale, b->scale,
                            out);
    case KF_COL_TIMESTAMP:
        out->time_precision =
            a->time_precision > b->time_precision ? a->time_precision : b->time_precision;
        return true;
    default:
        return true;
    }
}

/* The join for a pair of different types, ordered so that the first argument is the one
 * checked against each rule. */
static bool join_diff(const kf_column *a, const kf_column *b, kf_column *out)
{
    kf_coltype ta = a->type, tb = b->type;
    if (is_int(ta) && is_int(tb)) {
        col_type_only(out, int_rank(ta) > int_rank(tb) ? ta : tb);
        return true;
    }
    if (is_float(ta) && is_float(tb)) {
        col_type_only(out, KF_COL_DOUBLE);
        return true;
    }
    if ((ta == KF_COL_SMALLINT || ta == KF_COL_INT) && is_float(tb)) {
        col_type_only(out, KF_COL_DOUBLE);
        return true;
    }
    if (is_int(ta) && tb == KF_COL_DECIMAL)
        return join_decimal(int_digits(ta), 0, b->precision - b->scale, b->scale, out);
    if (is_stringish(ta) && is_stringish(tb) && (is_textual(ta) || is_textual(tb))) {
        col_type_only(out, KF_COL_TEXT);
        return true;
    }
    if (ta == KF_COL_DATE && tb == KF_COL_TIMESTAMP) {
        col_type_only(out, KF_COL_TIMESTAMP);
        out->time_precision = b->time_precision;
        return true;
    }
    return false;
}

bool kf_plan_join_types(const kf_column *a, const kf_column *b, kf_column *out)
{
    bool ok;
    if (a->type == b->type)
        ok = join_same(a, b, out);
    else
        ok = join_diff(a, b, out) || join_diff(b, a, out);
    if (ok)
        out->nullable = a->nullable || b->nullable;
    return ok;
}

static bool same_type(const kf_column *a, const kf_column *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case KF_COL_VARCHAR:
        return a->length == b->length;
    case KF_COL_DECIMAL:
        return a->precision == b->precision && a->scale == b->scale;
    case KF_COL_TIMESTAMP:
        return a->time_precision == b->time_precision;
    default:
        return true;
    }
}

const char *kf_plan_action_name(kf_plan_action a)
{
    switch (a) {
    case KF_PLAN_ADD:
        return "add";
    case KF_PLAN_KEEP_DROPPED:
        return "keep_dropped";
    case KF_PLAN_RELAX_NULL:
        return "relax_null";
    case KF_PLAN_WIDEN:
        return "widen";
    case KF_PLAN_KEEP_WIDE:
        return "keep_wide";
    case KF_PLAN_TO_TEXT:
        return "to_text";
    }
    return "unknown";
}

static kf_table *table_like(const kf_table *t, kf_error *err)
{
    return kf_table_new(kf_table_prefix(t), kf_table_db(t), kf_table_schema(t), kf_table_name(t),
                        err);
}

static kf_table *table_copy(const kf_table *t, kf_error *err)
{
    kf_table *c = table_like(t, err);
    if (!c)
        return NULL;
    for (size_t i = 0; i < kf_table_ncolumns(t); i++) {
        if (kf_table_add_column(c, kf_table_column(t, i), err) < 0) {
            kf_table_destroy(c);
            return NULL;
        }
    }
    return c;
}

/* A step under construction: which result column it describes, and the action. */
typedef struct pending_step {
    kf_plan_action action;
    int old_index; /* -1 for ADD */
    size_t result_index;
} pending_step;

/* Decides the destination column for an old column that the new shape still has. Returns
 * false when nothing changes; *action and *to are set otherwise. */
static bool decide_kept(const kf_column *o, const kf_column *n, kf_plan_action *action,
                        kf_column *to)
{
    bool nullable = o->pk_order > 0 ? o->nullable : (o->nullable || n->nullable);
    kf_column j;
    *to = *o;
    to->nullable = nullable;
    if (same_type(o, n)) {
        *action = KF_PLAN_RELAX_NULL;
        return nullable != o->nullable;
    }
    if (kf_plan_join_types(o, n, &j)) {
        if (same_type(&j, o)) {
            *action = KF_PLAN_KEEP_WIDE;
            return true;
        }
        to->type = j.type;
        to->precision = j.precision;
        to->scale = j.scale;
        to->length = j.length;
        to->time_precision = j.time_precision;
        *action = KF_PLAN_WIDEN;
        return true;
    }
    if (o->type == KF_COL_TEXT) {
        /* text already holds any value's text form */
        *action = KF_PLAN_KEEP_WIDE;
        return true;
    }
    to->type = KF_COL_TEXT;
    to->precision = to->scale = to->length = to->time_precision = 0;
    *action = KF_PLAN_TO_TEXT;
    return true;
}

static bool pk_differs(const kf_table *a, const kf_table *b)
{
    size_t n = kf_table_npk(a);
    if (n != kf_table_npk(b))
        return true;
    for (size_t k = 0; k < n; k++) {
        const kf_column *ca = kf_table_column(a, kf_table_pk_column(a, k));
        const kf_column *cb = kf_table_column(b, kf_table_pk_column(b, k));
        if (strcmp(ca->name, cb->name) != 0)
            return true;
    }
    return false;
}

kf_plan *kf_plan_compute(const kf_table *old_t, const kf_table *new_t, kf_error *err)
{
    kf_plan *p = calloc(1, sizeof(*p));
    pending_step *pend = NULL;
    if (!p) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate an evolution plan");
        return NULL;
    }
    if (!old_t) {
        p->result = table_copy(new_t, err);
        if (!p->result)
            goto out_destroy_plan;
        return p;
    }
    p->old_copy = table_copy(old_t, err);
    p->result = table_like(old_t, err);
    if (!p->old_copy || !p->result)
        goto out_destroy_plan;
    size_t nold = kf_table_ncolumns(old_t), nnew = kf_table_ncolumns(new_t);
    pend = calloc(nold + nnew + 1, sizeof(*pend));
    if (!pend) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate an evolution plan");
        goto out_destroy_plan;
    }
    size_t np = 0;
    for (size_t i = 0; i < nold; i++) {
        const kf_column *o = kf_table_column(old_t, i);
        int ni = kf_table_find(new_t, o->name);
        const kf_column *n = ni >= 0 ? kf_table_column(new_t, (size_t)ni) : NULL;
        if (n && strcmp(n->name, o->name) != 0)
            n = NULL; /* matched by Avro field name only: a different column */
        kf_column to = *o;
        kf_plan_action action;
        bool step;
        if (!n) {
            action = KF_PLAN_KEEP_DROPPED;
            if (o->pk_order == 0)
                to.nullable = true;
            step = true;
        } else {
            step = decide_kept(o, n, &action, &to);
        }
        if (kf_table_add_column(p->result, &to, err) < 0)
            goto out_free_pending;
        if (step)
            pend[np++] = (pending_step){action, (int)i, i};
    }
    for (size_t i = 0; i < nnew; i++) {
        const kf_column *n = kf_table_column(new_t, i);
        int oi = kf_table_find(old_t, n->name);
        if (oi >= 0 && strcmp(kf_table_column(old_t, (size_t)oi)->name, n->name) == 0)
            continue;
        kf_column to = *n;
        to.nullable = true;
        to.pk_order = 0;
        if (kf_table_add_column(p->result, &to, err) < 0)
            goto out_free_pending;
        pend[np++] = (pending_step){KF_PLAN_ADD, -1, kf_table_ncolumns(p->result) - 1};
    }
    p->pk_changed = pk_differs(old_t, new_t);
    if (np > 0) {
        p->steps = calloc(np, sizeof(*p->steps));
        if (!p->steps) {
            kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate an evolution plan");
            goto out_free_pending;
        }
    }
    for (size_t k = 0; k < np; k++) {
        kf_plan_step *s = &p->steps[k];
        s->action = pend[k].action;
        s->to = kf_table_column(p->result, pend[k].result_index);
        s->from =
            pend[k].old_index >= 0 ? kf_table_column(p->old_copy, (size_t)pend[k].old_index) : NULL;
        s->column = s->to->name;
        s->warning = s->action == KF_PLAN_KEEP_WIDE || s->action == KF_PLAN_TO_TEXT;
    }
    p->nsteps = np;
    free(pend);
    return p;

out_free_pending:
    free(pend);
out_destroy_plan:
    kf_plan_destroy(p);
    return NULL;
}

void kf_plan_destroy(kf_plan *p)
{
    if (!p)
        return;
    kf_table_destroy(p->old_copy);
    kf_table_destroy(p->result);
    free(p->steps);
    free(p);
}

size_t kf_plan_nsteps(const kf_plan *p)
{
    return p->nsteps;
}

const kf_plan_step *kf_plan_step_at(const kf_plan *p, size_t i)
{
    return i < p->nsteps ? &p->steps[i] : NULL;
}

bool kf_plan_step_changes_destination(const kf_plan_step *s)
{
    switch (s->action) {
    case KF_PLAN_ADD:
    case KF_PLAN_RELAX_NULL:
    case KF_PLAN_WIDEN:
    case KF_PLAN_TO_TEXT:
        return true;
    case KF_PLAN_KEEP_DROPPED:
    case KF_PLAN_KEEP_WIDE:
        return s->from && s->from->nullable != s->to->nullable;
    }
    return false;
}

bool kf_plan_changes_destination(const kf_plan *p)
{
    for (size_t i = 0; i < p->nsteps; i++)
        if (kf_plan_step_changes_destination(&p->steps[i]))
            return true;
    return false;
}

bool kf_plan_pk_changed(const kf_plan *p)
{
    return p->pk_changed;
}

const kf_table *kf_plan_result(const kf_plan *p)
{
    return p->result;
}
