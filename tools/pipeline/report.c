/* The pipeline report: what the simulator produced, what validate quarantined per rule
 * against what was injected, whether every Postgres table holds exactly the rows it should,
 * the lag of each stage, throughput and latency; the same as JSON for tests and benchmarks. */
#include "report.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "contract.h"

/* The simulator's name for what a rule kind checks. */
static const char *constraint_of(kf_rule_kind k)
{
    switch (k) {
    case KF_RULE_NOT_NULL:
        return "not_null";
    case KF_RULE_RANGE:
        return "range";
    case KF_RULE_ALLOWED_VALUES:
        return "allowed_values";
    case KF_RULE_REGEX:
        return "email";
    case KF_RULE_LENGTH:
        return "length";
    default:
        return kf_rule_kind_name(k);
    }
}

static int add_rules(pl_run *run, char *const *paths, size_t n, kf_error *err)
{
    for (size_t c = 0; c < n; c++) {
        kf_contract *ct = NULL;
        int rc = kf_contract_load(paths[c], &ct, err);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < run->ntables; i++) {
            pl_table *t = &run->tables[i];
            if (!kf_contract_matches(ct, run->prefix, t->topic))
                continue;
            for (size_t r = 0; r < ct->nrules; r++) {
                const kf_rule *rule = &ct->rules[r];
                if (!rule->column || rule->severity != KF_SEVERITY_QUARANTINE)
                    continue;
                pl_rule *grown = realloc(t->rules, (t->nrules + 1) * sizeof(*grown));
                if (!grown) {
                    kf_contract_destroy(ct);
                    return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate rules");
                }
                t->rules = grown;
                pl_rule *pr = &t->rules[t->nrules++];
                memset(pr, 0, sizeof(*pr));
                pr->id = strdup(rule->id);
                pr->column = strdup(rule->column);
                snprintf(pr->constraint, sizeof(pr->constraint), "%s", constraint_of(rule->kind));
                if (!pr->id || !pr->column) {
                    kf_contract_destroy(ct);
                    return kf_error_set(err, KF_ERR_NOMEM, false, "could not copy a rule");
                }
            }
        }
        kf_contract_destroy(ct);
    }
    /* Each injected constraint is caught by the first rule of its kind on its column, the
     * one validate reports (rules run in file order and one fault is injected per record). */
    for (size_t i = 0; i < run->ntables; i++) {
        pl_table *t = &run->tables[i];
        for (size_t j = 0; j < t->ninj; j++) {
            pl_injected *in = &t->inj[j];
            for (size_t r = 0; r < t->nrules && !in->rule_id; r++)
                if (strcmp(t->rules[r].column, in->column) == 0 &&
                    strcmp(t->rules[r].constraint, in->constraint) == 0) {
                    t->rules[r].expected += in->count;
                    in->rule_id = t->rules[r].id;
                }
        }
    }
    return KF_OK;
}

static char **topic_names(const pl_run *run, const char *infix)
{
    char **names = calloc(run->ntables + 1, sizeof(*names));
    for (size_t i = 0; names && i < run->ntables; i++) {
        char buf[700];
        snprintf(buf, sizeof(buf), "%s.%s%s.%s", run->prefix, infix, run->tables[i].db,
                 run->tables[i].name);
        if (!(names[i] = strdup(buf))) {
            for (size_t j = 0; j < i; j++)
                free(names[j]);
            free(names);
            return NULL;
        }
    }
    return names;
}

static void names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

static bool table_dlq_ok(const pl_table *t)
{
    if (t->dlq_other || t->dlq_duplicates)
        return false;
    for (size_t j = 0; j < t->ninj; j++)
        if (!t->inj[j].rule_id)
            return false;
    for (size_t r = 0; r < t->nrules; r++)
        if (t->rules[r].found != t->rules[r].expected)
            return false;
    return true;
}

static bool table_pg_ok(const pl_table *t)
{
    return t->pg.done && !t->pg.differ && !t->pg.extra && !t->pg.missing && !t->self_mismatch;
}

static json_t *lag_json(const pl_lag *l)
{
    return l->known ? json_pack("{s:I,s:I}", "offsets", (json_int_t)l->offsets, "records",
                                (json_int_t)l->records)
                    : json_pack("{s:s}", "error", l->error);
}

static void print_lag(FILE *out, const char *what, const char *group, const pl_lag *l)
{
    if (l->known)
        fprintf(out, "  %-28s %-34s %" PRId64 " records (%" PRId64 " offsets incl. markers)\n",
                what, group, l->records, l->offsets);
    else
        fprintf(out, "  %-28s %-34s unknown: %s\n", what, group, l->error);
}

/* One stage's latency as JSON (null when it was not sampled). */
static json_t *stage_json(const pl_stage_latency *st)
{
    if (!st->known)
        return json_null();
    return json_pack("{s:I,s:f,s:f}", "events", (json_int_t)st->events, "p50_ms", st->p50_ms,
                     "p99_ms", st->p99_ms);
}

static int write_series(const char *path, const pl_latency *lat, kf_error *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return kf_error_set(err, KF_ERR_IO, false, "could not write \"%s\"", path);
    fprintf(f, "# second\tevents_per_s\tp50_ms\tp99_ms\n");
    size_t i;
    json_t *p;
    json_array_foreach(lat->series, i, p)
        fprintf(f, "%" JSON_INTEGER_FORMAT "\t%" JSON_INTEGER_FORMAT "\t%.1f\t%.1f\n",
                json_integer_value(json_object_get(p, "t")),
                json_integer_value(json_object_get(p, "events")),
                json_real_value(json_object_get(p, "p50_ms")),
                json_real_value(json_object_get(p, "p99_ms")));
    return fclose(f) == 0 ? KF_OK
                          : kf_error_set(err, KF_ERR_IO, false, "could not write \"%s\"", path);
}

int pl_report(const pl_report_opts *o, FILE *out, kf_error *err)
{
    pl_run run = {.prefix = o->prefix};
    json_t *skip = NULL, *root = NULL;
    char **in = NULL, **valid = NULL;
    PGconn *conn = NULL;
    pl_lag vlag = {0}, smark = {0}, skafka = {0};
    pl_latency lat = {0};
    int rc;

    if ((rc = pl_sim_log_load(&run, o->sim_log, err)) < 0 ||
        (rc = pl_expect_load(&run, o->expect, err)) < 0 ||
        (rc = add_rules(&run, o->contracts, o->ncontracts, err)) < 0 ||
        (rc = pl_dlq_read(&run, &o->kafka, o->registry, &skip, err)) < 0 ||
        (rc = pl_changes_fold(&run, o->changes, skip, err)) < 0)
        goto out_free;
    if (!(in = topic_names(&run, "")) || !(valid = topic_names(&run, "valid."))) {
        rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate topic names");
        goto out_free;
    }
    conn = PQconnectdb(o->pg_dsn);
    if (PQstatus(conn) != CONNECTION_OK) {
        rc = kf_error_set(err, KF_ERR_PG, true, "could not connect to Postgres: %s",
                          PQerrorMessage(conn));
        goto out_free;
    }
    pl_pg_compare(conn, o->schema, &run);
    pl_group_lag(&o->kafka, o->validate_group, in, run.ntables, &vlag);
    pl_marker_lag(&o->kafka, conn, o->sink_group, valid, run.ntables, &smark);
    pl_group_lag(&o->kafka, o->sink_group, valid, run.ntables, &skafka);
    if (o->samples) {
        pl_latency_opts lo = {.kafka = &o->kafka,
                              .valid = valid,
                              .nvalid = run.ntables,
                              .samples = o->samples,
                              .in = in,
                              .nin = run.ntables,
                              .produced = o->produced_samples,
                              .validated = o->validated_samples,
                              .warmup_ms = o->warmup_ms,
                              .last_schema_change_ms = run.last_schema_change_ms};
        pl_latency_compute(&lo, &lat);
    }

    /* ---- checks ---- */
    bool pass = run.sim_events == run.changes_seen && vlag.known && vlag.records == 0 &&
                smark.known && smark.records == 0;
    uint64_t injected = 0, quarantined = 0, schema_changes = 0;
    for (size_t i = 0; i < run.ntables; i++) {
        pl_table *t = &run.tables[i];
        pass = pass && t->summarized && t->expect && table_dlq_ok(t) && table_pg_ok(t);
        injected += t->injected;
        quarantined += t->dlq_records;
        schema_changes += t->schema_changes;
    }

    /* ---- human report ---- */
    fprintf(out, "\npipeline run %s (Postgres schema %s)\n", o->prefix, o->schema);
    fprintf(out, "  events produced   %" PRIu64 " (simulator output took %.2f s)\n", run.sim_events,
            (double)run.sim_output_ms / 1000.0);
    fprintf(out, "  schema changes    %" PRIu64 " by the simulator\n", schema_changes);
    fprintf(out, "  injected errors   %" PRIu64 ", records in dead-letter topics %" PRIu64 "\n\n",
            injected, quarantined);
    fprintf(out, "  %-18s %8s %8s %8s %7s %5s %9s %9s %9s %9s %9s  %s\n", "table", "inserts",
            "updates", "deletes", "schema", "DDL", "injected", "in DLQ", "expected", "held back",
            "in pg", "match");
    for (size_t i = 0; i < run.ntables; i++) {
        pl_table *t = &run.tables[i];
        char name[200], ddl[24];
        snprintf(name, sizeof(name), "%s.%s", t->db, t->name);
        snprintf(ddl, sizeof(ddl), t->ddl >= 0 ? "%" PRId64 : "?", t->ddl);
        fprintf(out,
                "  %-18s %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %7" PRIu64 " %5s %9" PRIu64
                " %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %9" PRIu64 "  %s\n",
                name, t->inserts, t->updates, t->deletes, t->schema_changes, ddl, t->injected,
                t->dlq_records, t->expect_rows, t->held_back, t->pg.rows,
                table_pg_ok(t) ? "yes" : "NO");
        if (!t->pg.done)
            fprintf(out, "      %s\n", t->pg.error);
        else if (!table_pg_ok(t))
            fprintf(out,
                    "      %" PRIu64 " rows differ, %" PRIu64 " unexpected, %" PRIu64
                    " missing, %" PRIu64 " stream/expect mismatches; first: %s\n",
                    t->pg.differ, t->pg.extra, t->pg.missing, t->self_mismatch, t->pg.example);
    }
    fprintf(out, "  (expected: rows of the simulator's --expect state; held back: rows whose "
                 "last change was quarantined,\n   so Postgres keeps the row's last valid "
                 "version; match: every row equals the simulator's stream\n   without the "
                 "quarantined changes, and nothing else is there)\n\n");
    fprintf(out, "  quarantined per rule                 injected  in DLQ  ok\n");
    for (size_t i = 0; i < run.ntables; i++) {
        pl_table *t = &run.tables[i];
        for (size_t r = 0; r < t->nrules; r++) {
            pl_rule *pr = &t->rules[r];
            if (!pr->expected && !pr->found)
                continue;
            fprintf(out, "  %-36s %8" PRIu64 " %7" PRIu64 "  %s\n", pr->id, pr->expected, pr->found,
                    pr->expected == pr->found ? "yes" : "NO");
        }
        for (size_t j = 0; j < t->ninj; j++)
            if (!t->inj[j].rule_id)
                fprintf(out, "  %s.%s/%s: %" PRIu64 " injected, but no quarantine rule checks it\n",
                        t->name, t->inj[j].column, t->inj[j].constraint, t->inj[j].count);
        if (t->dlq_other)
            fprintf(out, "  %s: %" PRIu64 " dead-letter records without a rule of the contract\n",
                    t->name, t->dlq_other);
        if (t->dlq_duplicates)
            fprintf(out, "  %s: %" PRIu64 " changes quarantined more than once\n", t->name,
                    t->dlq_duplicates);
    }
    fprintf(out, "\n  lag\n");
    print_lag(out, "validate (Kafka commits)", o->validate_group, &vlag);
    print_lag(out, "sink (Postgres sync_markers)", o->sink_group, &smark);
    print_lag(out, "sink (Kafka commits)", o->sink_group, &skafka);
    if (o->samples && lat.known) {
        fprintf(out,
                "\n  throughput        %.0f events/s end to end (%" PRIu64
                " events from the first produce to the last Postgres commit)\n",
                lat.events_per_s, lat.events);
        if (lat.events_steady == 0)
            fprintf(out,
                    "  latency           no event after the %.1f s warm-up; every event: p50 %.0f "
                    "ms, p99 %.0f ms, max %.0f ms\n",
                    (double)lat.warmup_ms / 1000.0, lat.all_p50_ms, lat.all_p99_ms, lat.max_ms);
        else if (lat.warmup_ms > 0)
            fprintf(out,
                    "  latency           p50 %.0f ms, p99 %.0f ms after a %.1f s warm-up (%" PRIu64
                    " events); every event: p50 %.0f ms, p99 %.0f ms, max %.0f ms\n",
                    lat.p50_ms, lat.p99_ms, (double)lat.warmup_ms / 1000.0, lat.events_steady,
                    lat.all_p50_ms, lat.all_p99_ms, lat.max_ms);
        else
            fprintf(out, "  latency           p50 %.0f ms, p99 %.0f ms, max %.0f ms\n", lat.p50_ms,
                    lat.p99_ms, lat.max_ms);
        fprintf(out,
                "                    (Kafka timestamp to the sink's commit, sampled every %d ms)\n",
                o->sample_interval_ms);
        const pl_stage_latency *st[2] = {&lat.produced, &lat.validated};
        const char *what[2] = {"appended to the input topic", "committed by validate"};
        for (int i = 0; i < 2 && o->produced_samples; i++) {
            if (st[i]->known)
                fprintf(out, "    up to %-28s p50 %.0f ms, p99 %.0f ms\n", what[i], st[i]->p50_ms,
                        st[i]->p99_ms);
            else
                fprintf(out, "    up to %-28s unknown: %s\n", what[i], st[i]->error);
        }
        if (o->produced_samples && lat.events_steady > 0)
            fprintf(out, "    up to %-28s p50 %.0f ms, p99 %.0f ms\n", "committed by the sink",
                    lat.p50_ms, lat.p99_ms);
        if (run.last_schema_change_ms > 0 && !lat.settled.known)
            fprintf(out, "  after evolution   unknown: %s\n", lat.settled.error);
        else if (run.last_schema_change_ms > 0)
            fprintf(
                out,
                "  after evolution   p50 %.0f ms, p99 %.0f ms (%" PRIu64
                " events from %.1f s on: the warm-up after the simulator's last schema change)\n",
                lat.settled.p50_ms, lat.settled.p99_ms, lat.settled.events,
                (double)lat.settled_from_ms / 1000.0);
    } else if (o->samples)
        fprintf(out, "\n  latency           unknown: %s\n", lat.error);
    if (run.sim_events != run.changes_seen)
        fprintf(out,
                "\n  the change stream has %" PRIu64 " changes, the simulator produced %" PRIu64
                "\n",
                run.changes_seen, run.sim_events);
    fprintf(out, "\n  result            %s\n", pass ? "PASS" : "FAIL");

    /* ---- JSON ---- */
    if (o->json_out || o->series_out) {
        root = json_object();
        json_t *tables = json_array();
        for (size_t i = 0; root && tables && i < run.ntables; i++) {
            pl_table *t = &run.tables[i];
            json_t *rules = json_array();
            for (size_t r = 0; rules && r < t->nrules; r++)
                json_array_append_new(rules, json_pack("{s:s,s:s,s:s,s:I,s:I}", "id",
                                                       t->rules[r].id, "column", t->rules[r].column,
                                                       "constraint", t->rules[r].constraint,
                                                       "injected", (json_int_t)t->rules[r].expected,
                                                       "dlq", (json_int_t)t->rules[r].found));
            json_array_append_new(
                tables,
                json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:"
                          "I,s:b,s:b,s:o}",
                          "database", t->db, "table", t->name, "inserts", (json_int_t)t->inserts,
                          "updates", (json_int_t)t->updates, "deletes", (json_int_t)t->deletes,
                          "schema_changes", (json_int_t)t->schema_changes, "ddl",
                          (json_int_t)t->ddl, "injected", (json_int_t)t->injected, "dlq",
                          (json_int_t)t->dlq_records, "expected_rows", (json_int_t)t->expect_rows,
                          "held_back", (json_int_t)t->held_back, "pg_rows", (json_int_t)t->pg.rows,
                          "pg_equal", (json_int_t)t->pg.equal, "pg_differ",
                          (json_int_t)t->pg.differ, "pg_extra", (json_int_t)t->pg.extra,
                          "pg_missing", (json_int_t)t->pg.missing, "pg_equal_expect",
                          (json_int_t)t->pg_equal_expect, "match", table_pg_ok(t), "dlq_match",
                          table_dlq_ok(t), "rules", rules ? rules : json_array()));
        }
        if (!root || !tables) {
            json_decref(tables);
            rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not build the JSON report");
            goto out_free;
        }
        json_object_set_new(root, "prefix", json_string(o->prefix));
        json_object_set_new(root, "schema", json_string(o->schema));
        json_object_set_new(root, "events", json_integer((json_int_t)run.sim_events));
        json_object_set_new(root, "sim_output_ms", json_integer(run.sim_output_ms));
        json_object_set_new(root, "tables", tables);
        json_object_set_new(root, "lag",
                            json_pack("{s:o,s:o,s:o}", "validate", lag_json(&vlag), "sink_markers",
                                      lag_json(&smark), "sink_kafka", lag_json(&skafka)));
        if (lat.known)
            json_object_set_new(
                root, "latency",
                json_pack("{s:I,s:I,s:f,s:I,s:f,s:f,s:f,s:f,s:f,s:I,s:o,s:o,s:O}", "events",
                          (json_int_t)lat.events, "events_steady", (json_int_t)lat.events_steady,
                          "events_per_s", lat.events_per_s, "warmup_ms", (json_int_t)lat.warmup_ms,
                          "p50_ms", lat.p50_ms, "p99_ms", lat.p99_ms, "all_p50_ms", lat.all_p50_ms,
                          "all_p99_ms", lat.all_p99_ms, "max_ms", lat.max_ms, "sample_interval_ms",
                          (json_int_t)o->sample_interval_ms, "appended", stage_json(&lat.produced),
                          "validated", stage_json(&lat.validated), "series",
                          lat.series ? lat.series : json_null()));
        if (lat.known && lat.events_steady == 0) { /* no percentile of nothing */
            json_object_set_new(json_object_get(root, "latency"), "p50_ms", json_null());
            json_object_set_new(json_object_get(root, "latency"), "p99_ms", json_null());
        }
        if (lat.known && run.last_schema_change_ms > 0) {
            json_t *settled = stage_json(&lat.settled);
            json_object_set_new(settled, "from_s", json_real((double)lat.settled_from_ms / 1000.0));
            json_object_set_new(json_object_get(root, "latency"), "after_evolution", settled);
        }
        json_object_set_new(root, "pass", json_boolean(pass));
        if (o->json_out && json_dump_file(root, o->json_out, JSON_INDENT(2)) != 0) {
            rc = kf_error_set(err, KF_ERR_IO, false, "could not write \"%s\"", o->json_out);
            goto out_free;
        }
        if (o->series_out && lat.known && (rc = write_series(o->series_out, &lat, err)) < 0)
            goto out_free;
    }
    rc = pass ? 0 : 1;

out_free:
    json_decref(root);
    json_decref(lat.series);
    if (conn)
        PQfinish(conn);
    names_free(in, run.ntables);
    names_free(valid, run.ntables);
    json_decref(skip);
    pl_run_free(&run);
    return rc;
}
