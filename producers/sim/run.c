/* The simulator's run loop: engine callbacks into the output, replay for --resume, pacing,
 * progress file, progress line, metrics and the closing summary. */
#include "run.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "expect.h"
#include "kfleet/log.h"
#include "kfleet/signals.h"

/* Changes between two looks at the clock when pacing. */
#define PACE_EVERY 8

typedef struct run_metrics {
    kf_counter_series **events; /* per table: c, u, d */
    kf_gauge_series **version;  /* per table */
    kf_gauge_series *durable;
} run_metrics;

typedef struct run_ctx {
    const kf_sim_run_config *cfg;
    kf_sim_output *out;
    kf_sim_engine *engine;
    kf_error *err;
    run_metrics m;
    kf_sim_buf line;
    uint64_t emitted;
    uint64_t replayed;
    int64_t started_ms;
    int64_t paced_from_ms; /* pacing counts from the first change output */
} run_ctx;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t table_index(const run_ctx *r, const kf_sim_table *t)
{
    size_t n = kf_sim_engine_table_count(r->engine);
    for (size_t i = 0; i < n; i++)
        if (kf_sim_engine_table(r->engine, i) == t)
            return i;
    return 0;
}

static size_t op_index(kf_sim_op op)
{
    return op == KF_SIM_OP_CREATE ? 0 : op == KF_SIM_OP_UPDATE ? 1 : 2;
}

/* Waits until the stream is back on the configured rate, serving the output meanwhile. */
static void pace(run_ctx *r)
{
    double due_ms = (double)r->emitted * 1000.0 / r->cfg->rate;
    for (;;) {
        int64_t ahead = (int64_t)due_ms - (now_ms() - r->paced_from_ms);
        if (ahead <= 0 || kf_signals_stop_requested())
            return;
        r->out->ops->poll(r->out->self, ahead > 100 ? 100 : (int)ahead);
    }
}

static int on_change(void *ctx, const kf_sim_table *t, const kf_sim_change *ch)
{
    run_ctx *r = ctx;
    if (ch->seq <= r->cfg->resume_seq) {
        r->replayed++;
        return KF_OK;
    }
    if (r->emitted == 0)
        r->paced_from_ms = now_ms();
    size_t ti = table_index(r, t);
    int rc = r->out->ops->change(r->out->self, ti, t, ch, r->err);
    if (rc != KF_OK)
        return rc;
    r->emitted++;
    if (r->m.events)
        kf_counter_inc(r->m.events[ti * 3 + op_index(ch->op)], 1);
    if (r->cfg->rate > 0 && r->emitted % PACE_EVERY == 0)
        pace(r);
    return KF_OK;
}

static int on_evolve(void *ctx, const kf_sim_table *t, const kf_sim_evolution *ev)
{
    run_ctx *r = ctx;
    size_t ti = table_index(r, t);
    /* A schema change after change P reached the destination for sure when a later change
     * was recorded durable; at exactly the resume point it may or may not have, so it is
     * applied again (outputs make that idempotent). */
    bool replay = kf_sim_engine_events(r->engine) < r->cfg->resume_seq;
    int rc = r->out->ops->evolve(r->out->self, ti, t, ev, replay, r->err);
    if (rc != KF_OK)
        return rc;
    if (r->m.version)
        kf_gauge_set(r->m.version[ti], t->schema_version);
    if (r->cfg->history && kf_sim_engine_events(r->engine) >= r->cfg->resume_seq) {
        kf_sim_buf_clear(&r->line);
        rc = kf_sim_evolution_write_json(&r->line, t, ev);
        if (rc != KF_OK)
            return rc;
        if (fwrite(r->line.data, 1, r->line.len, r->cfg->history) != r->line.len ||
            fputc('\n', r->cfg->history) == EOF || fflush(r->cfg->history) != 0)
            return kf_error_set(r->err, KF_ERR_IO, false, "could not write the history file");
    }
    kf_logf(KF_LOG_INFO, "schema change: table \"%s\" %s column \"%s\", version %u", t->spec->name,
            kf_sim_evolve_action_name(ev->action), t->spec->columns[ev->column].name,
            t->schema_version);
    return KF_OK;
}

static void metrics_free(run_metrics *m)
{
    free(m->events);
    free(m->version);
    memset(m, 0, sizeof(*m));
}

static int metrics_init(run_ctx *r, kf_error *err)
{
    kf_metrics *mx = r->cfg->metrics;
    size_t n = kf_sim_engine_table_count(r->engine);
    static const char *const ev_labels[] = {"table", "op"};
    static const char *const t_labels[] = {"table"};
    static const char *const ops[] = {"c", "u", "d"};
    kf_counter *events = kf_metrics_counter(mx, "kfleet_sim_events_total",
                                            "Changes output by the simulator.", 2, ev_labels, err);
    kf_gauge *version =
        kf_metrics_gauge(mx, "kfleet_sim_schema_version",
                         "Current schema version of each simulated table.", 1, t_labels, err);
    kf_gauge *durable = kf_metrics_gauge(
        mx, "kfleet_sim_durable_seq",
        "Last change sequence the destination holds durably (Kafka acknowledged or committed).", 0,
        NULL, err);
    if (!events || !version || !durable)
        return err->code;
    r->m.events = calloc(n * 3 + 1, sizeof(*r->m.events));
    r->m.version = calloc(n + 1, sizeof(*r->m.version));
    if (!r->m.events || !r->m.version) {
        metrics_free(&r->m);
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not create metrics: out of memory");
    }
    const char *const empty[1] = {NULL};
    r->m.durable = kf_gauge_child(durable, 0, empty, err);
    if (!r->m.durable)
        goto out_fail;
    for (size_t i = 0; i < n; i++) {
        const kf_sim_table *t = kf_sim_engine_table(r->engine, i);
        char name[512];
        snprintf(name, sizeof(name), "%s.%s", t->spec->database, t->spec->name);
        for (size_t o = 0; o < 3; o++) {
            const char *values[] = {name, ops[o]};
            if (!(r->m.events[i * 3 + o] = kf_counter_child(events, 2, values, err)))
                goto out_fail;
        }
        const char *tv[] = {name};
        if (!(r->m.version[i] = kf_gauge_child(version, 1, tv, err)))
            goto out_fail;
        kf_gauge_set(r->m.version[i], t->schema_version);
    }
    return KF_OK;
out_fail:
    metrics_free(&r->m);
    return err->code;
}

static void progress_line(run_ctx *r, uint64_t durable, bool final)
{
    int64_t elapsed = now_ms() - r->started_ms;
    double rate = elapsed > 0 ? (double)r->emitted * 1000.0 / (double)elapsed : 0;
    char versions[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < kf_sim_engine_table_count(r->engine) && used < sizeof(versions); i++) {
        const kf_sim_table *t = kf_sim_engine_table(r->engine, i);
        int n = snprintf(versions + used, sizeof(versions) - used, "%s%s=v%u", i ? " " : "",
                         t->spec->name, t->schema_version);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    fprintf(stderr, "\r\033[Kevents %" PRIu64 "  %.0f/s  durable %" PRIu64 "  schemas %s%s",
            r->emitted, rate, durable, versions, final ? "\n" : "");
    fflush(stderr);
}

static uint64_t durable_seq(const run_ctx *r)
{
    uint64_t d = r->out->ops->durable(r->out->self);
    return d > r->cfg->resume_seq ? d : r->cfg->resume_seq;
}

static int save_state(run_ctx *r, uint64_t durable, kf_error *err)
{
    if (r->m.durable)
        kf_gauge_set(r->m.durable, (double)durable);
    if (!r->cfg->state_path)
        return KF_OK;
    kf_sim_state st = r->cfg->state;
    st.acked_seq = durable;
    return kf_sim_state_save(r->cfg->state_path, &st, err);
}

static void log_summary(const kf_sim_engine *e)
{
    for (size_t i = 0; i < kf_sim_engine_table_count(e); i++) {
        const kf_sim_table *t = kf_sim_engine_table(e, i);
        const kf_sim_table_stats *st = kf_sim_engine_stats(e, i);
        char name[512], nums[6][24], errors[1024] = "";
        size_t used = 0;
        uint64_t changes = 0;
        for (int a = 0; a < KF_SIM_EVOLVE_COUNT_; a++)
            changes += st->evolutions[a];
        for (size_t c = 0; c < t->ncolumns; c++) {
            for (int k = 0; k < KF_SIM_CHECK_COUNT_; k++) {
                uint64_t n = st->errors[c * KF_SIM_CHECK_COUNT_ + (size_t)k];
                if (!n || used >= sizeof(errors))
                    continue;
                int w = snprintf(errors + used, sizeof(errors) - used, "%s%s/%s=%" PRIu64,
                                 used ? "," : "", t->spec->columns[c].name,
                                 kf_sim_check_name((kf_sim_check)k), n);
                if (w > 0)
                    used += (size_t)w;
            }
        }
        snprintf(name, sizeof(name), "%s.%s", t->spec->database, t->spec->name);
        snprintf(nums[0], sizeof(nums[0]), "%" PRIu64, st->inserts);
        snprintf(nums[1], sizeof(nums[1]), "%" PRIu64, st->updates);
        snprintf(nums[2], sizeof(nums[2]), "%" PRIu64, st->deletes);
        snprintf(nums[3], sizeof(nums[3]), "%" PRIu64, changes);
        snprintf(nums[4], sizeof(nums[4]), "%u", t->schema_version);
        snprintf(nums[5], sizeof(nums[5]), "%" PRIu64, st->errors_total);
        kf_log(KF_LOG_INFO, "table summary", "table", name, "inserts", nums[0], "updates", nums[1],
               "deletes", nums[2], "schema_changes", nums[3], "schema_version", nums[4],
               "injected_errors", nums[5], "errors_by_constraint", errors, (char *)NULL);
        if (st->strategy_refused) {
            snprintf(nums[0], sizeof(nums[0]), "%" PRIu64, st->strategy_refused);
            kf_log(KF_LOG_WARN, "strategy choices refused", "table", name, "refused", nums[0],
                   (char *)NULL);
        }
    }
}

static bool limits_reached(const run_ctx *r)
{
    const kf_sim_run_config *c = r->cfg;
    if (kf_sim_engine_done(r->engine))
        return true;
    if (c->max_batches && kf_sim_engine_batches(r->engine) >= c->max_batches)
        return true;
    return c->duration_ms > 0 && now_ms() - r->started_ms >= c->duration_ms;
}

int kf_sim_run(const kf_sim_spec *spec, const kf_sim_run_config *cfg, kf_sim_output *out,
               kf_sim_run_result *res, kf_error *err)
{
    memset(res, 0, sizeof(*res));
    run_ctx r = {.cfg = cfg, .out = out, .err = err, .started_ms = now_ms()};
    kf_sim_engine_config ecfg = cfg->engine;
    ecfg.on_change = on_change;
    ecfg.on_evolve = on_evolve;
    ecfg.ctx = &r;
    int rc = KF_OK;
    r.engine = kf_sim_engine_new(spec, &ecfg, err);
    if (!r.engine)
        return err->code;
    if (cfg->metrics && (rc = metrics_init(&r, err)) != KF_OK)
        goto out_destroy_engine;
    if ((rc = out->ops->open(out->self, r.engine, cfg->resume_seq > 0, err)) != KF_OK)
        goto out_free_metrics;

    int64_t interval = cfg->state_interval_ms > 0 ? cfg->state_interval_ms : 1000;
    int64_t last_save = now_ms(), last_progress = now_ms();
    uint64_t saved = cfg->resume_seq;
    while (!limits_reached(&r)) {
        if (kf_signals_stop_requested()) {
            res->stopped = true;
            break;
        }
        if ((rc = kf_sim_engine_run_batch(r.engine, err)) != KF_OK)
            break;
        if ((rc = out->ops->batch_end(out->self, err)) != KF_OK)
            break;
        int64_t now = now_ms();
        uint64_t d = durable_seq(&r);
        if (d > saved && now - last_save >= interval) {
            if ((rc = save_state(&r, d, err)) != KF_OK)
                break;
            saved = d;
            last_save = now;
        }
        if (cfg->progress && now - last_progress >= 1000) {
            progress_line(&r, d, false);
            last_progress = now;
        }
    }
    /* Whatever stopped the loop, what was output is flushed and recorded, so --resume
     * continues after the last change the destination holds. */
    kf_error cerr;
    kf_error_clear(&cerr);
    int crc = out->ops->close(out->self, cfg->close_timeout_ms > 0 ? cfg->close_timeout_ms : 60000,
                              &cerr);
    res->durable = durable_seq(&r);
    res->emitted = r.emitted;
    res->output_ms = r.emitted ? now_ms() - r.paced_from_ms : 0;
    kf_error serr;
    kf_error_clear(&serr);
    int src = save_state(&r, res->durable, &serr);
    if (rc == KF_OK && crc != KF_OK) {
        *err = cerr;
        rc = crc;
    }
    if (rc == KF_OK && src != KF_OK) {
        *err = serr;
        rc = src;
    }
    if (cfg->progress)
        progress_line(&r, res->durable, true);
    res->events = kf_sim_engine_events(r.engine);
    res->replayed = r.replayed;
    if (rc == KF_OK) {
        log_summary(r.engine);
        if (cfg->expect_path)
            rc = kf_sim_expect_write_file(r.engine, cfg->expect_path, err);
    }
out_free_metrics:
    metrics_free(&r.m);
out_destroy_engine:
    kf_sim_buf_free(&r.line);
    kf_sim_engine_destroy(r.engine);
    return rc;
}
