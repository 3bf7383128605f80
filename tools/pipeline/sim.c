/* The simulator's side of a pipeline run: its JSON log (per-table summary), its expected-state
 * document and its JSON-lines change stream folded into the rows each table should hold. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pipeline.h"

pl_table *pl_run_table(pl_run *run, const char *db, const char *name, bool create)
{
    for (size_t i = 0; i < run->ntables; i++)
        if (strcmp(run->tables[i].db, db) == 0 && strcmp(run->tables[i].name, name) == 0)
            return &run->tables[i];
    if (!create)
        return NULL;
    pl_table *grown = realloc(run->tables, (run->ntables + 1) * sizeof(*grown));
    if (!grown)
        return NULL;
    run->tables = grown;
    pl_table *t = &run->tables[run->ntables];
    memset(t, 0, sizeof(*t));
    snprintf(t->db, sizeof(t->db), "%s", db);
    snprintf(t->name, sizeof(t->name), "%s", name);
    snprintf(t->topic, sizeof(t->topic), "%s.%s.%s", run->prefix, db, name);
    t->ddl = -1;
    if (!(t->want = json_object()) || !(t->all = json_object())) {
        json_decref(t->want);
        json_decref(t->all);
        return NULL;
    }
    run->ntables++;
    return t;
}

void pl_run_free(pl_run *run)
{
    for (size_t i = 0; i < run->ntables; i++) {
        pl_table *t = &run->tables[i];
        free(t->inj);
        for (size_t r = 0; r < t->nrules; r++) {
            free(t->rules[r].id);
            free(t->rules[r].column);
        }
        free(t->rules);
        for (size_t k = 0; k < t->nkey; k++)
            free(t->key[k]);
        free(t->key);
        json_decref(t->want);
        json_decref(t->all);
    }
    free(run->tables);
    json_decref(run->expect);
    memset(run, 0, sizeof(*run));
}

static uint64_t field_u64(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);
    if (json_is_integer(v))
        return (uint64_t)json_integer_value(v);
    if (json_is_string(v))
        return strtoull(json_string_value(v), NULL, 10);
    return 0;
}

/* "email/not_null=5,full_name/not_null=2" */
static int parse_breakdown(pl_table *t, const char *s)
{
    while (s && *s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        char item[256];
        if (len >= sizeof(item))
            return KF_ERR_INVALID;
        memcpy(item, s, len);
        item[len] = '\0';
        char *slash = strchr(item, '/'), *eq = strrchr(item, '=');
        if (!slash || !eq || eq < slash)
            return KF_ERR_INVALID;
        /* a column or constraint name longer than the report keeps is not the simulator's */
        size_t clen = (size_t)(slash - item), klen = (size_t)(eq - slash - 1);
        if (clen >= sizeof(t->inj->column) || klen >= sizeof(t->inj->constraint))
            return KF_ERR_INVALID;
        pl_injected *grown = realloc(t->inj, (t->ninj + 1) * sizeof(*grown));
        if (!grown)
            return KF_ERR_NOMEM;
        t->inj = grown;
        pl_injected *in = &t->inj[t->ninj++];
        memset(in, 0, sizeof(*in));
        memcpy(in->column, item, clen);
        memcpy(in->constraint, slash + 1, klen);
        in->count = strtoull(eq + 1, NULL, 10);
        s = end ? end + 1 : NULL;
    }
    return KF_OK;
}

/* Milliseconds since the epoch of a log line's "2026-01-02T03:04:05.678Z" (UTC); 0 when the
 * text is not such a time. */
static int64_t log_ts_ms(const char *ts)
{
    struct tm tm = {0};
    int ms = 0;
    if (!ts || sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                      &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    return t < 0 ? 0 : (int64_t)t * 1000 + ms;
}

int pl_sim_log_load(pl_run *run, const char *path, kf_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return kf_error_set(err, KF_ERR_IO, false, "could not open \"%s\": %s", path,
                            strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = KF_OK;
    bool finished = false;
    while (rc == KF_OK && (n = getline(&line, &cap, f)) > 0) {
        json_t *o = json_loadb(line, (size_t)n, 0, NULL);
        const char *msg = json_string_value(json_object_get(o, "msg"));
        if (msg && strcmp(msg, "table summary") == 0) {
            const char *full = json_string_value(json_object_get(o, "table"));
            const char *dot = full ? strchr(full, '.') : NULL;
            char db[64];
            if (!dot || (size_t)(dot - full) >= sizeof(db)) {
                rc = kf_error_set(err, KF_ERR_INVALID, false,
                                  "\"%s\": a table summary without a db.table name", path);
            } else {
                memcpy(db, full, (size_t)(dot - full));
                db[dot - full] = '\0';
                pl_table *t = pl_run_table(run, db, dot + 1, true);
                if (!t) {
                    rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate a table");
                } else {
                    t->summarized = true;
                    t->inserts = field_u64(o, "inserts");
                    t->updates = field_u64(o, "updates");
                    t->deletes = field_u64(o, "deletes");
                    t->schema_changes = field_u64(o, "schema_changes");
                    t->schema_version = (unsigned)field_u64(o, "schema_version");
                    t->injected = field_u64(o, "injected_errors");
                    t->ninj = 0;
                    if (parse_breakdown(
                            t, json_string_value(json_object_get(o, "errors_by_constraint"))) < 0)
                        rc = kf_error_set(err, KF_ERR_INVALID, false,
                                          "\"%s\": could not read errors_by_constraint of %s", path,
                                          full);
                }
            }
        } else if (msg && strncmp(msg, "schema change:", 14) == 0) {
            int64_t ms = log_ts_ms(json_string_value(json_object_get(o, "ts")));
            if (ms > run->last_schema_change_ms)
                run->last_schema_change_ms = ms;
        } else if (msg && (strcmp(msg, "simulation finished") == 0 ||
                           strcmp(msg, "simulation stopped") == 0)) {
            /* stopped: by a signal, after `changes` changes */
            finished = true;
            run->sim_events = field_u64(o, "changes");
            run->sim_output_ms = (int64_t)field_u64(o, "output_ms");
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    if (rc == KF_OK && !finished)
        rc = kf_error_set(err, KF_ERR_INVALID, false,
                          "\"%s\" has no \"simulation finished\" (or stopped) line: did the "
                          "simulator fail?",
                          path);
    return rc;
}

int pl_expect_load(pl_run *run, const char *path, kf_error *err)
{
    json_error_t jerr;
    run->expect = json_load_file(path, 0, &jerr);
    if (!run->expect)
        return kf_error_set(err, KF_ERR_INVALID, false, "could not read \"%s\": %s (line %d)", path,
                            jerr.text, jerr.line);
    json_t *tables = json_object_get(run->expect, "tables");
    size_t i;
    json_t *jt;
    json_array_foreach(tables, i, jt)
    {
        const char *db = json_string_value(json_object_get(jt, "database"));
        const char *name = json_string_value(json_object_get(jt, "table"));
        json_t *key = json_object_get(jt, "key");
        if (!db || !name || !json_is_array(key) || json_array_size(key) == 0)
            return kf_error_set(err, KF_ERR_INVALID, false,
                                "\"%s\": table %zu has no database, table or key", path, i);
        pl_table *t = pl_run_table(run, db, name, true);
        if (!t || !(t->key = calloc(json_array_size(key), sizeof(*t->key))))
            return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate a table");
        t->expect = jt;
        t->columns = json_object_get(jt, "columns");
        t->expect_rows = json_array_size(json_object_get(jt, "rows"));
        size_t k;
        json_t *kc;
        json_array_foreach(key, k, kc)
        {
            if (!json_is_string(kc) || !(t->key[k] = strdup(json_string_value(kc))))
                return kf_error_set(err, KF_ERR_NOMEM, false, "could not copy a key column");
            t->nkey = k + 1;
        }
    }
    return KF_OK;
}

/* Applies one change to a key -> row map. */
static int apply(json_t *map, const char *key, const char *op, json_t *after)
{
    if (strcmp(op, "d") == 0 || strcmp(op, "t") == 0) {
        json_object_del(map, key);
        return KF_OK;
    }
    if (!json_is_object(after))
        return KF_ERR_INVALID;
    return json_object_set(map, key, after) == 0 ? KF_OK : KF_ERR_NOMEM;
}

static int fold_line(pl_run *run, json_t *o, json_t *skip, kf_error *err)
{
    const char *type = json_string_value(json_object_get(o, "type"));
    if (!type || strcmp(type, "change") != 0)
        return KF_OK;
    const char *db = json_string_value(json_object_get(o, "database"));
    const char *name = json_string_value(json_object_get(o, "table"));
    const char *op = json_string_value(json_object_get(o, "op"));
    json_t *seq = json_object_get(o, "seq");
    pl_table *t = db && name ? pl_run_table(run, db, name, false) : NULL;
    if (!t || !op || !json_is_integer(seq) || !t->nkey)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "change %" JSON_INTEGER_FORMAT " names a table without an expected "
                            "state (%s.%s)",
                            json_integer_value(seq), db ? db : "?", name ? name : "?");
    char key[2048], id[300];
    if (!pl_row_key(t, json_object_get(o, "key"), key, sizeof(key)))
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "change %" JSON_INTEGER_FORMAT " of %s has no usable key",
                            json_integer_value(seq), t->name);
    json_t *after = json_object_get(o, "after");
    run->changes_seen++;
    if (apply(t->all, key, op, after) != KF_OK)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "change %" JSON_INTEGER_FORMAT " of %s has no after image",
                            json_integer_value(seq), t->name);
    snprintf(id, sizeof(id), "%s:%" JSON_INTEGER_FORMAT, t->name, json_integer_value(seq));
    if (json_object_get(skip, id)) {
        run->quarantined_skipped++;
        return KF_OK;
    }
    return apply(t->want, key, op, after) == KF_OK
               ? KF_OK
               : kf_error_set(err, KF_ERR_NOMEM, false, "could not fold a change");
}

int pl_changes_fold(pl_run *run, const char *path, json_t *skip, kf_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return kf_error_set(err, KF_ERR_IO, false, "could not open \"%s\": %s", path,
                            strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = KF_OK;
    size_t lineno = 0;
    while (rc == KF_OK && (n = getline(&line, &cap, f)) > 0) {
        lineno++;
        json_error_t jerr;
        json_t *o = json_loadb(line, (size_t)n, 0, &jerr);
        if (!o)
            rc = kf_error_set(err, KF_ERR_INVALID, false, "%s:%zu: %s", path, lineno, jerr.text);
        else
            rc = fold_line(run, o, skip, err);
        json_decref(o);
    }
    free(line);
    fclose(f);
    if (rc < 0)
        return rc;

    /* The stream must rebuild the expected state exactly; keys whose last change was
     * quarantined are the rows Postgres holds differently (an older version, or none). */
    for (size_t i = 0; i < run->ntables; i++) {
        pl_table *t = &run->tables[i];
        json_t *rows = json_object_get(t->expect, "rows"), *row;
        size_t r;
        t->self_mismatch = 0;
        t->held_back = 0;
        json_array_foreach(rows, r, row)
        {
            char key[2048];
            if (!pl_row_key(t, row, key, sizeof(key))) {
                t->self_mismatch++;
                continue;
            }
            json_t *a = json_object_get(t->all, key), *w = json_object_get(t->want, key);
            if (!a || !pl_rows_equal(t, a, row))
                t->self_mismatch++;
            if (!w || !pl_rows_equal(t, w, row))
                t->held_back++;
        }
        if (json_object_size(t->all) != t->expect_rows)
            t->self_mismatch += json_object_size(t->all) > t->expect_rows
                                    ? json_object_size(t->all) - t->expect_rows
                                    : 0;
        t->want_rows = json_object_size(t->want);
    }
    return KF_OK;
}
