/* Strategy plugins on the engine's side: dlopen and the entry point, the ABI check, the
 * table views plugins read, and the rule checks every choice passes before it is obeyed. */
#include "strategy_host.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cells.h"
#include "kfleet/log.h"

/* Refusals logged in full per table; later ones are only counted. */
#define REFUSALS_LOGGED 5

struct kf_sim_strategy {
    void *handle;
    const kf_sim_strategy_def *def;
    void *ctx;
    bool started;
    char *path;
    char *args;
    const char *name;
};

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

kf_sim_strategy *kf_sim_strategy_load(const char *path, const char *args, kf_error *err)
{
    if (!path || !*path) {
        kf_error_set(err, KF_ERR_CONFIG, false, "could not load a strategy: no path given");
        return NULL;
    }
    struct stat st;
    if (strchr(path, '/') && stat(path, &st) != 0) {
        kf_error_set(err, KF_ERR_CONFIG, false, "could not load strategy \"%s\": %s", path,
                     strerror(errno));
        return NULL;
    }
    kf_sim_strategy *s = calloc(1, sizeof(*s));
    if (!s)
        goto out_nomem;
    s->path = dup_str(path);
    s->args = dup_str(args ? args : "");
    if (!s->path || !s->args)
        goto out_destroy_nomem;
    dlerror();
    s->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!s->handle) {
        const char *why = dlerror();
        kf_error_set(err, KF_ERR_CONFIG, false, "could not load strategy \"%s\": %s", path,
                     why ? why : "unknown dynamic-linker error");
        goto out_destroy;
    }
    dlerror();
    void *sym = dlsym(s->handle, KF_SIM_STRATEGY_ENTRY_SYMBOL);
    if (!sym) {
        kf_error_set(err, KF_ERR_CONFIG, false,
                     "cannot use strategy \"%s\": it does not export " KF_SIM_STRATEGY_ENTRY_SYMBOL
                     "()",
                     path);
        goto out_destroy;
    }
    /* POSIX guarantees a data pointer from dlsym converts to the function it names. */
    kf_sim_strategy_entry_fn entry;
    memcpy(&entry, &sym, sizeof(entry));
    s->def = entry();
    if (!s->def) {
        kf_error_set(err, KF_ERR_CONFIG, false,
                     "cannot use strategy \"%s\": " KF_SIM_STRATEGY_ENTRY_SYMBOL
                     "() returned no definition",
                     path);
        goto out_destroy;
    }
    if (s->def->abi_version != KF_SIM_STRATEGY_ABI_VERSION) {
        kf_error_set(err, KF_ERR_CONFIG, false,
                     "cannot use strategy \"%s\": it was built for strategy ABI version %" PRIu32
                     ", this kfleet-sim needs version %d",
                     path, s->def->abi_version, KF_SIM_STRATEGY_ABI_VERSION);
        goto out_destroy;
    }
    if (!s->def->init || !s->def->destroy) {
        kf_error_set(err, KF_ERR_CONFIG, false,
                     "cannot use strategy \"%s\": its definition lacks init or destroy", path);
        goto out_destroy;
    }
    if (!s->def->choose_mutation && !s->def->choose_evolution) {
        kf_error_set(err, KF_ERR_CONFIG, false,
                     "cannot use strategy \"%s\": it defines neither choose_mutation nor "
                     "choose_evolution",
                     path);
        goto out_destroy;
    }
    if (s->def->name && *s->def->name) {
        s->name = s->def->name;
    } else {
        const char *slash = strrchr(s->path, '/');
        s->name = slash ? slash + 1 : s->path;
    }
    return s;
out_destroy_nomem:
    kf_sim_strategy_destroy(s);
out_nomem:
    kf_error_set(err, KF_ERR_NOMEM, false, "could not load strategy \"%s\": out of memory", path);
    return NULL;
out_destroy:
    kf_sim_strategy_destroy(s);
    return NULL;
}

int kf_sim_strategy_start(kf_sim_strategy *s, uint64_t seed, kf_error *err)
{
    if (s->started)
        return kf_error_set(err, KF_ERR_STATE, false, "strategy \"%s\" was already started",
                            s->name);
    char why[256] = "";
    int rc = s->def->init(&s->ctx, s->args, seed, why, sizeof(why));
    if (rc != 0) {
        why[sizeof(why) - 1] = '\0';
        s->ctx = NULL;
        if (!*why)
            snprintf(why, sizeof(why), "init returned %d", rc);
        return kf_error_set(err, KF_ERR_CONFIG, false,
                            "could not start strategy \"%s\" with arguments \"%s\": %s", s->name,
                            s->args, why);
    }
    s->started = true;
    return KF_OK;
}

void kf_sim_strategy_destroy(kf_sim_strategy *s)
{
    if (!s)
        return;
    if (s->started)
        s->def->destroy(s->ctx);
    if (s->handle)
        dlclose(s->handle);
    free(s->path);
    free(s->args);
    free(s);
}

const char *kf_sim_strategy_name(const kf_sim_strategy *s)
{
    return s->name;
}

const char *kf_sim_strategy_path(const kf_sim_strategy *s)
{
    return s->path;
}

bool kf_sim_strategy_has_mutation(const kf_sim_strategy *s)
{
    return s->def->choose_mutation != NULL;
}

bool kf_sim_strategy_has_evolution(const kf_sim_strategy *s)
{
    return s->def->choose_evolution != NULL;
}

/* ---- the view ---- */

static int view_row_key(const kf_sim_strategy_table *t, uint64_t row, char *buf, size_t size)
{
    kf_sim_strategy_view *v = t->host;
    const kf_sim_tstate *ts = v->ts;
    if (row >= ts->nrows)
        return -1;
    const kf_sim_table_spec *spec = ts->table.spec;
    const kf_sim_cell *cells = kf_sim_tstate_row(ts, (size_t)row);
    kf_sim_buf_clear(&v->scratch);
    for (size_t k = 0; k < spec->nkey; k++) {
        size_t col = spec->key[k];
        if ((k > 0 && kf_sim_buf_putc(&v->scratch, ',') != KF_OK) ||
            kf_sim_cell_text(&v->scratch, &ts->table.type[col], &cells[col], KF_SIM_BOOL_WORDS,
                             true) != KF_OK)
            return -1;
    }
    if (size > 0) {
        size_t n = v->scratch.len < size - 1 ? v->scratch.len : size - 1;
        if (n)
            memcpy(buf, v->scratch.data, n);
        buf[n] = '\0';
    }
    return v->scratch.len > INT32_MAX ? INT32_MAX : (int)v->scratch.len;
}

int kf_sim_strategy_view_init(kf_sim_strategy_view *v, kf_sim_tstate *ts, size_t index)
{
    memset(v, 0, sizeof(*v));
    const kf_sim_table_spec *spec = ts->table.spec;
    size_t n = ts->table.ncolumns;
    v->ts = ts;
    v->columns = calloc(n ? n : 1, sizeof(*v->columns));
    v->types = calloc(n ? n : 1, sizeof(*v->types));
    v->candidates = calloc(n ? n * KF_SIM_EVOLVE_COUNT_ : 1, sizeof(*v->candidates));
    if (!v->columns || !v->types || !v->candidates) {
        kf_sim_strategy_view_fini(v);
        return KF_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const kf_sim_column *c = &spec->columns[i];
        v->columns[i].name = c->name;
        v->columns[i].type = v->types[i];
        v->columns[i].flags =
            (c->is_key ? KF_SIM_STRATEGY_COL_KEY : 0) |
            (c->is_protected || c->is_key || c->is_update_column ? KF_SIM_STRATEGY_COL_PROTECTED
                                                                 : 0) |
            (c->is_update_column ? KF_SIM_STRATEGY_COL_UPDATE_COLUMN : 0) |
            (c->nullable ? KF_SIM_STRATEGY_COL_NULLABLE : 0);
    }
    v->pub.database = spec->database;
    v->pub.name = spec->name;
    v->pub.index = index;
    v->pub.ncolumns = n;
    v->pub.columns = v->columns;
    v->pub.max_live_rows = spec->max_live_rows;
    v->pub.row_key = view_row_key;
    v->pub.host = v;
    return KF_OK;
}

void kf_sim_strategy_view_fini(kf_sim_strategy_view *v)
{
    free(v->columns);
    free(v->types);
    free(v->candidates);
    kf_sim_buf_free(&v->scratch);
    memset(v, 0, sizeof(*v));
}

static int col_state(kf_sim_col_state s)
{
    switch (s) {
    case KF_SIM_COL_RESERVED:
        return KF_SIM_STRATEGY_COL_RESERVED;
    case KF_SIM_COL_DROPPED:
        return KF_SIM_STRATEGY_COL_DROPPED;
    default:
        return KF_SIM_STRATEGY_COL_ACTIVE;
    }
}

/* Brings the view up to the table: counts always, columns after a schema change. */
static void view_refresh(kf_sim_strategy_view *v, uint64_t batch)
{
    const kf_sim_tstate *ts = v->ts;
    const kf_sim_table *t = &ts->table;
    if (v->built_version != t->schema_version) {
        for (size_t i = 0; i < t->ncolumns; i++) {
            kf_sim_coltype_format(&t->type[i], v->types[i], sizeof(v->types[i]));
            v->columns[i].state = col_state(t->state[i]);
        }
        v->built_version = t->schema_version;
    }
    v->pub.schema_version = t->schema_version;
    v->pub.batch = batch;
    v->pub.live_rows = ts->nrows;
    v->pub.inserts = ts->stats.inserts;
    v->pub.updates = ts->stats.updates;
    v->pub.deletes = ts->stats.deletes;
}

static uint64_t rng_next(void *self)
{
    return kf_sim_rng_next(self);
}

static uint64_t rng_below(void *self, uint64_t n)
{
    return kf_sim_rng_below(self, n);
}

static double rng_uniform(void *self)
{
    return kf_sim_rng_double(self);
}

static void rng_wrap(kf_sim_rng *rng, kf_sim_strategy_rng *out)
{
    out->self = rng;
    out->next = rng_next;
    out->below = rng_below;
    out->uniform = rng_uniform;
}

/* Counts a refused choice and logs the first few of each table with the reason. */
static void refuse(const kf_sim_strategy *s, kf_sim_strategy_view *v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void refuse(const kf_sim_strategy *s, kf_sim_strategy_view *v, const char *fmt, ...)
{
    v->ts->stats.strategy_refused++;
    if (v->logged >= REFUSALS_LOGGED)
        return;
    char why[256], table[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(table, sizeof(table), "%s.%s", v->pub.database, v->pub.name);
    kf_log(KF_LOG_WARN, "strategy choice refused", "strategy", s->name, "table", table, "reason",
           why, (char *)NULL);
    if (++v->logged == REFUSALS_LOGGED)
        kf_logf(KF_LOG_WARN,
                "further refused choices of strategy \"%s\" on table \"%s\" are counted, not "
                "logged",
                s->name, table);
}

static int op_to_abi(kf_sim_op op)
{
    switch (op) {
    case KF_SIM_OP_CREATE:
        return KF_SIM_STRATEGY_OP_INSERT;
    case KF_SIM_OP_UPDATE:
        return KF_SIM_STRATEGY_OP_UPDATE;
    default:
        return KF_SIM_STRATEGY_OP_DELETE;
    }
}

static const char *op_name(int op)
{
    switch (op) {
    case KF_SIM_STRATEGY_OP_NONE:
        return "none";
    case KF_SIM_STRATEGY_OP_INSERT:
        return "insert";
    case KF_SIM_STRATEGY_OP_UPDATE:
        return "update";
    default:
        return "delete";
    }
}

int kf_sim_strategy_choose_mutation(kf_sim_strategy *s, kf_sim_strategy_view *v, kf_sim_rng *rng,
                                    uint64_t batch, kf_sim_op proposed, bool forced, int *op,
                                    uint64_t *row, kf_error *err)
{
    int want = op_to_abi(proposed);
    *op = want;
    *row = KF_SIM_STRATEGY_ANY_ROW;
    view_refresh(v, batch);
    kf_sim_strategy_rng r;
    rng_wrap(rng, &r);
    kf_sim_strategy_mutation m = {.op = want, .row = KF_SIM_STRATEGY_ANY_ROW, .forced = forced};
    int rc = s->def->choose_mutation(s->ctx, &v->pub, &r, &m);
    if (rc < 0)
        return kf_error_set(err, KF_ERR_FATAL, false,
                            "strategy \"%s\" failed choosing a mutation of table \"%s\" (code %d)",
                            s->name, v->pub.name, rc);
    bool rowed = m.op == KF_SIM_STRATEGY_OP_UPDATE || m.op == KF_SIM_STRATEGY_OP_DELETE;
    if (m.op < KF_SIM_STRATEGY_OP_NONE || m.op > KF_SIM_STRATEGY_OP_DELETE) {
        refuse(s, v, "unknown operation %d", m.op);
    } else if (forced && m.op != want) {
        refuse(s, v, "%s instead of the delete that makes room at max_live_rows", op_name(m.op));
    } else if (rowed && m.row != KF_SIM_STRATEGY_ANY_ROW && m.row >= v->ts->nrows) {
        refuse(s, v, "%s of row %" PRIu64 ", which is not live (%zu live rows)", op_name(m.op),
               m.row, v->ts->nrows);
    } else {
        *op = m.op;
        *row = rowed ? m.row : KF_SIM_STRATEGY_ANY_ROW;
    }
    return KF_OK;
}

/* Why the rules forbid action a on column i of t now (kf_sim_evolve_allowed said no). */
static const char *forbidden_why(const kf_sim_table *t, kf_sim_evolve_action a, size_t i)
{
    const kf_sim_column *c = &t->spec->columns[i];
    kf_sim_col_state st = t->state[i];
    switch (a) {
    case KF_SIM_EVOLVE_PROMOTE:
        return "the column is not reserved";
    case KF_SIM_EVOLVE_DROP:
        if (c->is_key)
            return "key columns are never dropped";
        if (c->is_update_column)
            return "the update column is never dropped";
        if (c->is_protected)
            return "the column is protected";
        return st == KF_SIM_COL_DROPPED ? "the column is already dropped"
                                        : "the column is reserved, not active";
    case KF_SIM_EVOLVE_WIDEN:
        if (st != KF_SIM_COL_ACTIVE)
            return "the column is not active";
        if (c->is_key)
            return "key columns are never widened";
        return "its type has no wider type";
    default:
        if (st != KF_SIM_COL_DROPPED)
            return "the column is not dropped";
        if (!t->spec->allow_readd)
            return "the column is tombstoned and the table does not set allow_readd";
        return "the column is not nullable";
    }
}

int kf_sim_strategy_choose_evolution(kf_sim_strategy *s, kf_sim_strategy_view *v, kf_sim_rng *rng,
                                     uint64_t batch, kf_sim_evolve_action *action, size_t *column,
                                     kf_error *err)
{
    const kf_sim_table *t = &v->ts->table;
    size_t n = 0;
    for (size_t i = 0; i < t->ncolumns; i++)
        for (int a = 0; a < KF_SIM_EVOLVE_COUNT_; a++)
            if (kf_sim_evolve_allowed(t, (kf_sim_evolve_action)a, i))
                v->candidates[n++] = (kf_sim_strategy_candidate){
                    .action = a + 1, .column = i, .weight = t->spec->evolve_weights[a]};
    if (n == 0)
        return KF_SIM_STRATEGY_NO_CHANGE;
    view_refresh(v, batch);
    kf_sim_strategy_rng r;
    rng_wrap(rng, &r);
    kf_sim_strategy_evolution choice = {.action = KF_SIM_STRATEGY_EVOLVE_DEFAULT, .column = 0};
    int rc = s->def->choose_evolution(s->ctx, &v->pub, &r, v->candidates, n, &choice);
    if (rc < 0)
        return kf_error_set(err, KF_ERR_FATAL, false,
                            "strategy \"%s\" failed choosing a schema change of table \"%s\" "
                            "(code %d)",
                            s->name, v->pub.name, rc);
    if (choice.action == KF_SIM_STRATEGY_EVOLVE_DEFAULT)
        return KF_SIM_STRATEGY_BUILTIN;
    if (choice.action == KF_SIM_STRATEGY_EVOLVE_NONE)
        return KF_SIM_STRATEGY_NO_CHANGE;
    if (choice.action < KF_SIM_STRATEGY_EVOLVE_PROMOTE ||
        choice.action > KF_SIM_STRATEGY_EVOLVE_READD) {
        refuse(s, v, "unknown schema change %d", choice.action);
        return KF_SIM_STRATEGY_BUILTIN;
    }
    kf_sim_evolve_action a = (kf_sim_evolve_action)(choice.action - 1);
    if (choice.column >= t->ncolumns) {
        refuse(s, v, "%s of column %zu, which does not exist (%zu columns)",
               kf_sim_evolve_action_name(a), choice.column, t->ncolumns);
        return KF_SIM_STRATEGY_BUILTIN;
    }
    if (!kf_sim_evolve_allowed(t, a, choice.column)) {
        refuse(s, v, "%s of column \"%s\": %s", kf_sim_evolve_action_name(a),
               t->spec->columns[choice.column].name, forbidden_why(t, a, choice.column));
        return KF_SIM_STRATEGY_BUILTIN;
    }
    *action = a;
    *column = choice.column;
    return KF_SIM_STRATEGY_CHOSEN;
}
