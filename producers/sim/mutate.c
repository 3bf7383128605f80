/* Insert, update and delete of simulated rows with their bookkeeping: live rows stored in
 * reusable blocks, key and unique sets, sequence counters, error injection and its counts. */
#include "mutate.h"

#include <stdlib.h>
#include <string.h>

#include "kfleet/error.h"

#define UNIQUE_ATTEMPTS 100

int kf_sim_tstate_init(kf_sim_tstate *ts, const kf_sim_table_spec *spec)
{
    memset(ts, 0, sizeof(*ts));
    size_t n = spec->ncolumns;
    if (kf_sim_table_init(&ts->table, spec) != KF_OK)
        return KF_ERR_NOMEM;
    ts->stats.errors = calloc(n * KF_SIM_CHECK_COUNT_, sizeof(*ts->stats.errors));
    ts->seq = calloc(n, sizeof(*ts->seq));
    ts->unique = calloc(n, sizeof(*ts->unique));
    ts->after = calloc(n, sizeof(*ts->after));
    ts->keycells = calloc(spec->nkey ? spec->nkey : 1, sizeof(*ts->keycells));
    ts->mark = calloc(n, sizeof(*ts->mark));
    ts->pick = calloc(n, sizeof(*ts->pick));
    ts->breakable = calloc(n * KF_SIM_CHECK_COUNT_, sizeof(*ts->breakable));
    ts->slab = kf_sim_slab_new();
    if (!ts->stats.errors || !ts->seq || !ts->unique || !ts->after || !ts->keycells || !ts->mark ||
        !ts->pick || !ts->breakable || !ts->slab) {
        kf_sim_tstate_fini(ts);
        return KF_ERR_NOMEM;
    }
    return KF_OK;
}

void kf_sim_tstate_fini(kf_sim_tstate *ts)
{
    kf_sim_slab_destroy(ts->slab); /* every row block at once */
    free(ts->rows);
    if (ts->unique)
        for (size_t i = 0; i < ts->table.ncolumns; i++)
            kf_sim_hset_free(&ts->unique[i]);
    kf_sim_hset_free(&ts->keys);
    free(ts->unique);
    free(ts->stats.errors);
    free(ts->seq);
    free(ts->after);
    free(ts->keycells);
    free(ts->mark);
    free(ts->pick);
    free(ts->breakable);
    kf_sim_table_fini(&ts->table);
    memset(ts, 0, sizeof(*ts));
}

const kf_sim_cell *kf_sim_tstate_row(const kf_sim_tstate *ts, size_t i)
{
    return (const kf_sim_cell *)ts->rows[i].mem;
}

/* ---- stored rows ---- */

/* Copies cells and their strings into one block of the table's slab. */
static int pack_row(kf_sim_tstate *ts, const kf_sim_cell *cells, kf_sim_live_row *out)
{
    size_t n = ts->table.ncolumns;
    size_t need = n * sizeof(kf_sim_cell);
    for (size_t i = 0; i < n; i++)
        if (cells[i].kind == KF_SIM_CELL_STRING)
            need += (size_t)cells[i].len + 1;
    kf_sim_live_row r;
    r.mem = kf_sim_slab_alloc(ts->slab, need, &r.cap);
    if (!r.mem)
        return KF_ERR_NOMEM;
    kf_sim_cell *dst = r.mem;
    char *p = (char *)r.mem + n * sizeof(kf_sim_cell);
    memcpy(dst, cells, n * sizeof(kf_sim_cell));
    for (size_t i = 0; i < n; i++) {
        if (dst[i].kind != KF_SIM_CELL_STRING)
            continue;
        memcpy(p, cells[i].s, cells[i].len);
        p[cells[i].len] = '\0';
        dst[i].s = p;
        p += cells[i].len + 1;
    }
    *out = r;
    return KF_OK;
}

/* Returns a row's block to the slab; it cannot fail, so the bookkeeping after a reported
 * change never stops halfway. */
static void release_row(kf_sim_tstate *ts, kf_sim_live_row r)
{
    kf_sim_slab_free(ts->slab, r.mem, r.cap);
}

/* Room for one more row, made before a change is reported so the bookkeeping after it cannot
 * fail halfway. */
static int reserve_rows(kf_sim_tstate *ts)
{
    if (ts->nrows == ts->caprows) {
        size_t cap = ts->caprows ? ts->caprows * 2 : 256;
        kf_sim_live_row *rows = realloc(ts->rows, cap * sizeof(*rows));
        if (!rows)
            return KF_ERR_NOMEM;
        ts->rows = rows;
        ts->caprows = cap;
    }
    return KF_OK;
}

void kf_sim_tstate_null_column(kf_sim_tstate *ts, size_t col)
{
    for (size_t i = 0; i < ts->nrows; i++) {
        kf_sim_cell *cells = ts->rows[i].mem;
        memset(&cells[col], 0, sizeof(cells[col]));
        cells[col].kind = KF_SIM_CELL_NULL;
    }
    kf_sim_hset_clear(&ts->unique[col]);
}

/* ---- constraints ---- */

static bool email_ok(const char *s, size_t len)
{
    const char *at = memchr(s, '@', len);
    if (!at || at == s)
        return false;
    size_t dlen = len - (size_t)(at - s) - 1;
    const char *dom = at + 1;
    if (dlen < 3 || memchr(dom, '@', dlen) || dom[0] == '.' || dom[dlen - 1] == '.')
        return false;
    return memchr(dom, '.', dlen) != NULL;
}

bool kf_sim_cell_violates(const kf_sim_column *c, const kf_sim_coltype *t, const kf_sim_cell *v,
                          unsigned kinds, kf_sim_check *which)
{
    kf_sim_check found = KF_SIM_CHECK_COUNT_;
    if (v->kind == KF_SIM_CELL_NULL) {
        if (!c->nullable)
            found = KF_SIM_CHECK_NOT_NULL;
    } else if ((c->has_min && kf_sim_cell_compare(v, &c->min) < 0) ||
               (c->has_max && kf_sim_cell_compare(v, &c->max) > 0)) {
        found = KF_SIM_CHECK_RANGE;
    } else if (c->nallowed) {
        bool ok = false;
        for (size_t i = 0; i < c->nallowed && !ok; i++)
            ok = kf_sim_cell_equal(&c->allowed[i], v);
        if (!ok)
            found = KF_SIM_CHECK_ALLOWED;
    }
    if (found == KF_SIM_CHECK_COUNT_ && v->kind == KF_SIM_CELL_STRING) {
        if (c->gen.kind == KF_SIM_GEN_EMAIL && !email_ok(v->s, v->len))
            found = KF_SIM_CHECK_EMAIL;
        else if (c->max_length > 0 && v->len > (uint32_t)c->max_length)
            found = KF_SIM_CHECK_LENGTH;
    }
    (void)t;
    if (found == KF_SIM_CHECK_COUNT_ || !(kinds & (1u << found)))
        return false;
    if (which)
        *which = found;
    return true;
}

/* ---- generation with uniqueness ---- */

static int fail_op(kf_sim_tstate *ts, kf_sim_mctx *m, int rc, size_t col)
{
    const kf_sim_table_spec *s = ts->table.spec;
    const char *name = s->columns[col].name;
    if (rc == KF_ERR_NOMEM)
        return kf_error_set(m->err, rc, false,
                            "could not generate a row of table \"%s\": out of "
                            "memory",
                            s->name);
    if (rc == KF_ERR_FULL && s->columns[col].gen.kind == KF_SIM_GEN_SEQUENCE)
        return kf_error_set(m->err, rc, false,
                            "could not generate column \"%s\" of table \"%s\": its sequence ran "
                            "past the range of its type",
                            name, s->name);
    return kf_error_set(m->err, rc, false,
                        "could not generate a unique value for column \"%s\" of table \"%s\" "
                        "after %d attempts: widen the generator's range",
                        name, s->name, UNIQUE_ATTEMPTS);
}

/* Generates column col; for a unique column redraws until the value is not held by another
 * live row (own is the row's current value, which may be kept). */
static int gen_column(kf_sim_tstate *ts, kf_sim_mctx *m, size_t col, const kf_sim_cell *own,
                      kf_sim_cell *out)
{
    const kf_sim_column *c = &ts->table.spec->columns[col];
    const kf_sim_coltype *t = &ts->table.type[col];
    for (int attempt = 0; attempt < UNIQUE_ATTEMPTS; attempt++) {
        int rc = kf_sim_gen_cell(c, t, &ts->seq[col], &m->gen, out);
        if (rc != KF_OK)
            return fail_op(ts, m, rc, col);
        if (!c->unique || out->kind == KF_SIM_CELL_NULL)
            return KF_OK;
        uint64_t h = kf_sim_cell_hash(out);
        if (!kf_sim_hset_contains(&ts->unique[col], h))
            return KF_OK;
        if (own && own->kind != KF_SIM_CELL_NULL && kf_sim_cell_hash(own) == h)
            return KF_OK;
    }
    return fail_op(ts, m, KF_ERR_FULL, col);
}

static uint64_t key_hash(const kf_sim_tstate *ts, const kf_sim_cell *cells)
{
    uint64_t h = 0x84222325cbf29ce4ULL;
    for (size_t k = 0; k < ts->table.spec->nkey; k++) {
        h ^= kf_sim_cell_hash(&cells[ts->table.spec->key[k]]);
        h = (h << 27 | h >> 37) * 0x9e3779b97f4a7c15ULL;
    }
    return h;
}

static bool tracks_keys(const kf_sim_tstate *ts)
{
    return ts->table.spec->pk_kind != KF_SIM_PK_SEQUENCE;
}

static void fill_key(kf_sim_tstate *ts, const kf_sim_cell *cells, kf_sim_row *key)
{
    for (size_t k = 0; k < ts->table.spec->nkey; k++)
        ts->keycells[k] = cells[ts->table.spec->key[k]];
    key->ncells = ts->table.spec->nkey;
    key->cells = ts->keycells;
}

/* With the table's error ratio, breaks one constraint of one active column of after and
 * counts it. */
static int maybe_inject(kf_sim_tstate *ts, kf_sim_mctx *m, kf_sim_cell *after)
{
    const kf_sim_table_spec *s = ts->table.spec;
    if (s->error_ratio <= 0 || !kf_sim_rng_chance(m->gen.rng, s->error_ratio))
        return KF_OK;
    size_t n = 0;
    for (size_t i = 0; i < ts->table.ncolumns; i++) {
        if (!kf_sim_table_active(&ts->table, i))
            continue;
        for (int k = 0; k < KF_SIM_CHECK_COUNT_; k++)
            if ((s->error_kinds & (1u << k)) &&
                kf_sim_gen_can_break(&s->columns[i], &ts->table.type[i], (kf_sim_check)k))
                ts->breakable[n++] = (uint32_t)(i * KF_SIM_CHECK_COUNT_ + (size_t)k);
    }
    if (n == 0)
        return KF_OK;
    uint32_t slot = ts->breakable[kf_sim_rng_below(m->gen.rng, n)];
    size_t col = slot / KF_SIM_CHECK_COUNT_;
    kf_sim_check check = (kf_sim_check)(slot % KF_SIM_CHECK_COUNT_);
    int rc =
        kf_sim_gen_invalid(&s->columns[col], &ts->table.type[col], check, &m->gen, &after[col]);
    if (rc != KF_OK)
        return fail_op(ts, m, rc, col);
    ts->stats.errors[slot]++;
    ts->stats.errors_total++;
    return KF_OK;
}

static void unique_add(kf_sim_tstate *ts, const kf_sim_cell *cells)
{
    const kf_sim_table_spec *s = ts->table.spec;
    for (size_t i = 0; i < ts->table.ncolumns; i++)
        if (s->columns[i].unique && kf_sim_table_active(&ts->table, i) &&
            cells[i].kind != KF_SIM_CELL_NULL)
            kf_sim_hset_add(&ts->unique[i], kf_sim_cell_hash(&cells[i]));
}

static void unique_remove(kf_sim_tstate *ts, const kf_sim_cell *cells)
{
    const kf_sim_table_spec *s = ts->table.spec;
    for (size_t i = 0; i < ts->table.ncolumns; i++)
        if (s->columns[i].unique && kf_sim_table_active(&ts->table, i) &&
            cells[i].kind != KF_SIM_CELL_NULL)
            kf_sim_hset_remove(&ts->unique[i], kf_sim_cell_hash(&cells[i]));
}

/* Hash sets grow before a change is reported, so adding after it cannot fail. */
static int reserve_sets(kf_sim_tstate *ts, kf_sim_mctx *m)
{
    const kf_sim_table_spec *s = ts->table.spec;
    int rc = KF_OK;
    if (tracks_keys(ts))
        rc = kf_sim_hset_reserve(&ts->keys, 1);
    for (size_t i = 0; rc == KF_OK && i < ts->table.ncolumns; i++)
        if (s->columns[i].unique)
            rc = kf_sim_hset_reserve(&ts->unique[i], 1);
    if (rc != KF_OK)
        return kf_error_set(m->err, KF_ERR_NOMEM, false,
                            "could not track the rows of table \"%s\": out of memory", s->name);
    return KF_OK;
}

/* ---- operations ---- */

static int delete_at(kf_sim_tstate *ts, kf_sim_mctx *m, size_t idx)
{
    if (reserve_rows(ts) != KF_OK)
        return kf_error_set(m->err, KF_ERR_NOMEM, false,
                            "could not delete from table \"%s\": out of memory",
                            ts->table.spec->name);
    m->gen.now_us += m->tick_us;
    const kf_sim_cell *before_cells = ts->rows[idx].mem;
    kf_sim_row before = {ts->table.ncolumns, before_cells}, key;
    fill_key(ts, before_cells, &key);
    int rc = m->emit(m, ts, KF_SIM_OP_DELETE, &key, &before, NULL);
    if (rc != KF_OK)
        return rc;
    if (tracks_keys(ts))
        kf_sim_hset_remove(&ts->keys, key_hash(ts, before_cells));
    unique_remove(ts, before_cells);
    release_row(ts, ts->rows[idx]);
    ts->rows[idx] = ts->rows[--ts->nrows];
    ts->stats.deletes++;
    ts->stats.live_rows = ts->nrows;
    return KF_OK;
}

int kf_sim_mutate_delete(kf_sim_tstate *ts, kf_sim_mctx *m)
{
    if (ts->nrows == 0)
        return KF_OK;
    return delete_at(ts, m, (size_t)kf_sim_rng_below(m->gen.rng, ts->nrows));
}

static int bad_row(kf_sim_tstate *ts, kf_sim_mctx *m, size_t idx)
{
    return kf_error_set(m->err, KF_ERR_INVALID, false,
                        "cannot change row %zu of table \"%s\": it has %zu live rows", idx,
                        ts->table.spec->name, ts->nrows);
}

int kf_sim_mutate_delete_row(kf_sim_tstate *ts, kf_sim_mctx *m, size_t idx)
{
    if (idx >= ts->nrows)
        return bad_row(ts, m, idx);
    return delete_at(ts, m, idx);
}

int kf_sim_mutate_insert(kf_sim_tstate *ts, kf_sim_mctx *m)
{
    const kf_sim_table_spec *s = ts->table.spec;
    int rc;
    if (s->max_live_rows && ts->nrows >= s->max_live_rows) {
        if ((rc = kf_sim_mutate_delete(ts, m)) != KF_OK)
            return rc;
        if (m->stop)
            return KF_OK;
    }
    if ((rc = reserve_rows(ts)) != KF_OK || (rc = reserve_sets(ts, m)) != KF_OK)
        return kf_error_set(m->err, KF_ERR_NOMEM, false,
                            "could not insert into table \"%s\": out of memory", s->name);
    m->gen.now_us += m->tick_us;
    kf_sim_cell *after = ts->after;
    for (size_t i = 0; i < ts->table.ncolumns; i++) {
        if (!kf_sim_table_active(&ts->table, i)) {
            memset(&after[i], 0, sizeof(after[i]));
            continue;
        }
        if ((rc = gen_column(ts, m, i, NULL, &after[i])) != KF_OK)
            return rc;
    }
    uint64_t kh = 0;
    if (tracks_keys(ts)) {
        int attempt = 0;
        while (kf_sim_hset_contains(&ts->keys, kh = key_hash(ts, after))) {
            if (++attempt == UNIQUE_ATTEMPTS)
                return kf_error_set(m->err, KF_ERR_FULL, false,
                                    "could not generate a unique key for table \"%s\" after %d "
                                    "attempts: widen the key columns' generators",
                                    s->name, UNIQUE_ATTEMPTS);
            for (size_t k = 0; k < s->nkey; k++)
                if ((rc = gen_column(ts, m, s->key[k], NULL, &after[s->key[k]])) != KF_OK)
                    return rc;
        }
    }
    if ((rc = maybe_inject(ts, m, after)) != KF_OK)
        return rc;
    kf_sim_live_row stored;
    if (pack_row(ts, after, &stored) != KF_OK)
        return kf_error_set(m->err, KF_ERR_NOMEM, false,
                            "could not insert into table \"%s\": out of memory", s->name);
    /* Report the stored copy: same values, and it outlives the batch arena. */
    const kf_sim_cell *cells = stored.mem;
    kf_sim_row row = {ts->table.ncolumns, cells}, key;
    fill_key(ts, cells, &key);
    rc = m->emit(m, ts, KF_SIM_OP_CREATE, &key, NULL, &row);
    if (rc != KF_OK) {
        release_row(ts, stored);
        return rc;
    }
    if (tracks_keys(ts))
        kf_sim_hset_add(&ts->keys, kh);
    unique_add(ts, cells);
    ts->rows[ts->nrows++] = stored;
    ts->stats.inserts++;
    ts->stats.live_rows = ts->nrows;
    return KF_OK;
}

/* Regenerates columns of live row idx (see kf_sim_mutate_update). */
static int update_at(kf_sim_tstate *ts, kf_sim_mctx *m, size_t idx)
{
    const kf_sim_table_spec *s = ts->table.spec;
    const kf_sim_cell *before_cells = ts->rows[idx].mem;
    size_t n = ts->table.ncolumns;

    /* Choose 1..max of the active update columns (partial Fisher-Yates). */
    size_t eligible = 0;
    for (size_t j = 0; j < s->nupdate_columns; j++)
        if (kf_sim_table_active(&ts->table, s->update_columns[j]))
            ts->pick[eligible++] = s->update_columns[j];
    memset(ts->mark, 0, n * sizeof(*ts->mark));
    bool any = false;
    if (eligible > 0) {
        size_t max = s->max_columns_per_update < eligible ? s->max_columns_per_update : eligible;
        size_t k = (size_t)kf_sim_rng_range(m->gen.rng, 1, (int64_t)(max ? max : 1));
        for (size_t j = 0; j < k; j++) {
            size_t r = j + (size_t)kf_sim_rng_below(m->gen.rng, eligible - j);
            size_t tmp = ts->pick[j];
            ts->pick[j] = ts->pick[r];
            ts->pick[r] = tmp;
            ts->mark[ts->pick[j]] = true;
        }
        any = true;
    }
    /* Values an earlier injection broke are repaired, so each injected record is counted
     * once and no later record carries its fault forward uncounted. */
    if (s->error_ratio > 0) {
        for (size_t i = 0; i < n; i++) {
            if (kf_sim_table_active(&ts->table, i) && !s->columns[i].is_key &&
                !s->columns[i].is_update_column &&
                kf_sim_cell_violates(&s->columns[i], &ts->table.type[i], &before_cells[i], ~0u,
                                     NULL)) {
                ts->mark[i] = true;
                any = true;
            }
        }
    }
    if (!any && s->update_column < 0)
        return KF_OK;

    int rc;
    if ((rc = reserve_rows(ts)) != KF_OK || (rc = reserve_sets(ts, m)) != KF_OK)
        return kf_error_set(m->err, KF_ERR_NOMEM, false,
                            "could not update table \"%s\": out of memory", s->name);
    m->gen.now_us += m->tick_us;
    kf_sim_cell *after = ts->after;
    memcpy(after, before_cells, n * sizeof(*after));
    for (size_t i = 0; i < n; i++) {
        if (!ts->mark[i])
            continue;
        /* Not-null columns have no null ratio, so a repair never draws null again. */
        if ((rc = gen_column(ts, m, i, &before_cells[i], &after[i])) != KF_OK)
            return rc;
    }
    if (s->update_column >= 0) {
        size_t uc = (size_t)s->update_column;
        rc = kf_sim_gen_value(&s->columns[uc], &ts->table.type[uc], NULL, &m->gen, &after[uc]);
        if (rc != KF_OK)
            return fail_op(ts, m, rc, uc);
    }
    if ((rc = maybe_inject(ts, m, after)) != KF_OK)
        return rc;
    kf_sim_live_row stored;
    if (pack_row(ts, after, &stored) != KF_OK)
        return kf_error_set(m->err, KF_ERR_NOMEM, false,
                            "could not update table \"%s\": out of memory", s->name);
    const kf_sim_cell *cells = stored.mem;
    kf_sim_row before = {n, before_cells}, row = {n, cells}, key;
    fill_key(ts, cells, &key);
    rc = m->emit(m, ts, KF_SIM_OP_UPDATE, &key, &before, &row);
    if (rc != KF_OK) {
        release_row(ts, stored);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if (!s->columns[i].unique || !kf_sim_table_active(&ts->table, i) ||
            kf_sim_cell_equal(&before_cells[i], &cells[i]))
            continue;
        if (before_cells[i].kind != KF_SIM_CELL_NULL)
            kf_sim_hset_remove(&ts->unique[i], kf_sim_cell_hash(&before_cells[i]));
        if (cells[i].kind != KF_SIM_CELL_NULL)
            kf_sim_hset_add(&ts->unique[i], kf_sim_cell_hash(&cells[i]));
    }
    release_row(ts, ts->rows[idx]);
    ts->rows[idx] = stored;
    ts->stats.updates++;
    return KF_OK;
}

int kf_sim_mutate_update(kf_sim_tstate *ts, kf_sim_mctx *m)
{
    if (ts->nrows == 0)
        return KF_OK;
    return update_at(ts, m, (size_t)kf_sim_rng_below(m->gen.rng, ts->nrows));
}

int kf_sim_mutate_update_row(kf_sim_tstate *ts, kf_sim_mctx *m, size_t idx)
{
    if (idx >= ts->nrows)
        return bad_row(ts, m, idx);
    return update_at(ts, m, idx);
}
