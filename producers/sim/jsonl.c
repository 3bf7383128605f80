/* JSON-lines writer for changes, schema changes and the run summary. Lines are built in one
 * reused buffer and written with one fwrite each. */
#include "jsonl.h"

#include <errno.h>
#include <inttypes.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "kfleet/error.h"

struct kf_sim_jsonl {
    FILE *out;
    FILE *history;
    kf_sim_buf line;
    bool failed;
    const kf_sim_engine *engine; /* set when used as an output, for the summary */
    uint64_t written;            /* the last change sequence written */
};

kf_sim_jsonl *kf_sim_jsonl_new(FILE *out, FILE *history)
{
    kf_sim_jsonl *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->out = out;
    j->history = history;
    return j;
}

void kf_sim_jsonl_destroy(kf_sim_jsonl *j)
{
    if (!j)
        return;
    kf_sim_buf_free(&j->line);
    free(j);
}

static int write_line(kf_sim_jsonl *j, FILE *f)
{
    if (fwrite(j->line.data, 1, j->line.len, f) != j->line.len || fputc('\n', f) == EOF) {
        j->failed = true;
        return KF_ERR_IO;
    }
    return KF_OK;
}

static int put_name(kf_sim_buf *b, const char *s)
{
    return kf_sim_json_string(b, s, strlen(s));
}

/* {"col":value,...} over the active columns of row (or only the key columns for keys). */
static int put_row(kf_sim_buf *b, const kf_sim_table *t, const kf_sim_row *row, bool key)
{
    if (!row)
        return kf_sim_buf_puts(b, "null");
    int rc = kf_sim_buf_putc(b, '{');
    bool first = true;
    size_t n = key ? t->spec->nkey : t->ncolumns;
    for (size_t k = 0; k < n && rc == KF_OK; k++) {
        size_t col = key ? t->spec->key[k] : k;
        if (!kf_sim_table_active(t, col))
            continue;
        if (!first)
            rc = kf_sim_buf_putc(b, ',');
        first = false;
        if (rc == KF_OK)
            rc = put_name(b, t->spec->columns[col].name);
        if (rc == KF_OK)
            rc = kf_sim_buf_putc(b, ':');
        if (rc == KF_OK)
            rc = kf_sim_cell_write_json(b, &t->type[col], &row->cells[k]);
    }
    if (rc == KF_OK)
        rc = kf_sim_buf_putc(b, '}');
    return rc;
}

int kf_sim_jsonl_change(void *ctx, const kf_sim_table *t, const kf_sim_change *ch)
{
    kf_sim_jsonl *j = ctx;
    kf_sim_buf *b = &j->line;
    char ts[48];
    kf_sim_time_format(ch->ts_us, true, ts, sizeof(ts));
    kf_sim_buf_clear(b);
    int rc = kf_sim_buf_printf(
        b, "{\"type\":\"change\",\"seq\":%" PRIu64 ",\"ts\":\"%s\",\"database\":", ch->seq, ts);
    if (rc == KF_OK)
        rc = put_name(b, t->spec->database);
    if (rc == KF_OK)
        rc = kf_sim_buf_puts(b, ",\"table\":");
    if (rc == KF_OK)
        rc = put_name(b, t->spec->name);
    if (rc == KF_OK)
        rc = kf_sim_buf_printf(b, ",\"op\":\"%c\",\"schema_version\":%u,\"key\":", (char)ch->op,
                               t->schema_version);
    if (rc == KF_OK)
        rc = put_row(b, t, ch->key, true);
    if (rc == KF_OK)
        rc = kf_sim_buf_puts(b, ",\"before\":");
    if (rc == KF_OK)
        rc = put_row(b, t, ch->before, false);
    if (rc == KF_OK)
        rc = kf_sim_buf_puts(b, ",\"after\":");
    if (rc == KF_OK)
        rc = put_row(b, t, ch->after, false);
    if (rc == KF_OK)
        rc = kf_sim_buf_putc(b, '}');
    if (rc != KF_OK)
        return rc;
    return write_line(j, j->out);
}

int kf_sim_jsonl_evolution(void *ctx, const kf_sim_table *t, const kf_sim_evolution *ev)
{
    kf_sim_jsonl *j = ctx;
    kf_sim_buf_clear(&j->line);
    int rc = kf_sim_evolution_write_json(&j->line, t, ev);
    if (rc != KF_OK)
        return rc;
    if ((rc = write_line(j, j->out)) != KF_OK)
        return rc;
    if (j->history && (rc = write_line(j, j->history)) == KF_OK && fflush(j->history) != 0) {
        j->failed = true;
        rc = KF_ERR_IO;
    }
    return rc;
}

static const char *state_name(kf_sim_col_state s)
{
    switch (s) {
    case KF_SIM_COL_ACTIVE:
        return "active";
    case KF_SIM_COL_RESERVED:
        return "reserved";
    default:
        return "dropped";
    }
}

static int put_table_summary(kf_sim_buf *b, const kf_sim_table *t, const kf_sim_table_stats *st)
{
    int rc = kf_sim_buf_puts(b, "{\"database\":");
    if (rc == KF_OK)
        rc = put_name(b, t->spec->database);
    if (rc == KF_OK)
        rc = kf_sim_buf_puts(b, ",\"table\":");
    if (rc == KF_OK)
        rc = put_name(b, t->spec->name);
    if (rc == KF_OK)
        rc = kf_sim_buf_printf(b,
                               ",\"schema_version\":%u,\"inserts\":%" PRIu64 ",\"updates\":%" PRIu64
                               ",\"deletes\":%" PRIu64 ",\"live_rows\":%" PRIu64 ",\"columns\":[",
                               t->schema_version, st->inserts, st->updates, st->deletes,
                               st->live_rows);
    for (size_t i = 0; i < t->ncolumns && rc == KF_OK; i++) {
        char type[48];
        kf_sim_coltype_format(&t->type[i], type, sizeof(type));
        rc = kf_sim_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        if (rc == KF_OK)
            rc = put_name(b, t->spec->columns[i].name);
        if (rc == KF_OK)
            rc = kf_sim_buf_printf(b, ",\"type\":\"%s\",\"state\":\"%s\"}", type,
                                   state_name(t->state[i]));
    }
    if (rc == KF_OK)
        rc = kf_sim_buf_puts(b, "],\"evolutions\":{");
    for (int a = 0; a < KF_SIM_EVOLVE_COUNT_ && rc == KF_OK; a++)
        rc = kf_sim_buf_printf(b, "%s\"%s\":%" PRIu64, a ? "," : "",
                               kf_sim_evolve_action_name((kf_sim_evolve_action)a),
                               st->evolutions[a]);
    if (rc == KF_OK)
        rc = kf_sim_buf_printf(b, "},\"errors_total\":%" PRIu64 ",\"errors\":[", st->errors_total);
    bool first = true;
    for (size_t i = 0; i < t->ncolumns && rc == KF_OK; i++) {
        for (int k = 0; k < KF_SIM_CHECK_COUNT_ && rc == KF_OK; k++) {
            uint64_t count = st->errors[i * KF_SIM_CHECK_COUNT_ + (size_t)k];
            if (!count)
                continue;
            rc = kf_sim_buf_puts(b, first ? "{\"column\":" : ",{\"column\":");
            first = false;
            if (rc == KF_OK)
                rc = put_name(b, t->spec->columns[i].name);
            if (rc == KF_OK)
                rc = kf_sim_buf_printf(b, ",\"constraint\":\"%s\",\"count\":%" PRIu64 "}",
                                       kf_sim_check_name((kf_sim_check)k), count);
        }
    }
    if (rc == KF_OK)
        rc = kf_sim_buf_puts(b, "]}");
    return rc;
}

int kf_sim_jsonl_summary(kf_sim_jsonl *j, const kf_sim_engine *e)
{
    kf_sim_buf *b = &j->line;
    char clock[48];
    kf_sim_time_format(kf_sim_engine_clock(e), true, clock, sizeof(clock));
    kf_sim_buf_clear(b);
    int rc = kf_sim_buf_printf(b,
                               "{\"type\":\"summary\",\"seed\":%" PRIu64 ",\"events\":%" PRIu64
                               ",\"batches\":%" PRIu64 ",\"clock\":\"%s\",\"tables\":[",
                               kf_sim_engine_seed(e), kf_sim_engine_events(e),
                               kf_sim_engine_batches(e), clock);
    for (size_t i = 0; i < kf_sim_engine_table_count(e) && rc == KF_OK; i++) {
        if (i)
            rc = kf_sim_buf_putc(b, ',');
        if (rc == KF_OK)
            rc = put_table_summary(b, kf_sim_engine_table(e, i), kf_sim_engine_stats(e, i));
    }
    if (rc == KF_OK)
        rc = kf_sim_buf_puts(b, "]}");
    if (rc != KF_OK)
        return rc;
    return write_line(j, j->out);
}

int kf_sim_jsonl_flush(kf_sim_jsonl *j)
{
    if (fflush(j->out) != 0 || (j->history && fflush(j->history) != 0))
        j->failed = true;
    return j->failed ? KF_ERR_IO : KF_OK;
}

static int out_open(void *self, const kf_sim_engine *e, bool resume, kf_error *err)
{
    kf_sim_jsonl *j = self;
    (void)resume;
    (void)err;
    j->engine = e;
    return KF_OK;
}

static int out_change(void *self, size_t ti, const kf_sim_table *t, const kf_sim_change *ch,
                      kf_error *err)
{
    kf_sim_jsonl *j = self;
    (void)ti;
    int rc = kf_sim_jsonl_change(j, t, ch);
    if (rc != KF_OK)
        return kf_error_set(err, rc, false, "could not write a change to stdout");
    j->written = ch->seq;
    return KF_OK;
}

static int out_evolve(void *self, size_t ti, const kf_sim_table *t, const kf_sim_evolution *ev,
                      bool replay, kf_error *err)
{
    (void)ti;
    (void)replay;
    int rc = kf_sim_jsonl_evolution(self, t, ev);
    if (rc != KF_OK)
        return kf_error_set(err, rc, false, "could not write a schema change to stdout");
    return KF_OK;
}

static int out_batch_end(void *self, kf_error *err)
{
    (void)self;
    (void)err;
    return KF_OK;
}

static void out_poll(void *self, int timeout_ms)
{
    kf_sim_jsonl *j = self;
    fflush(j->out);
    struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t out_durable(void *self)
{
    kf_sim_jsonl *j = self;
    return j->written;
}

static int out_close(void *self, int timeout_ms, kf_error *err)
{
    kf_sim_jsonl *j = self;
    (void)timeout_ms;
    int rc = j->engine ? kf_sim_jsonl_summary(j, j->engine) : KF_OK;
    if (kf_sim_jsonl_flush(j) != KF_OK || rc != KF_OK)
        return kf_error_set(err, KF_ERR_IO, false, "could not write to stdout: %s",
                            strerror(errno));
    return KF_OK;
}

static void out_destroy(void *self)
{
    (void)self;
}

static const kf_sim_output_ops jsonl_ops = {
    .open = out_open,
    .change = out_change,
    .evolve = out_evolve,
    .batch_end = out_batch_end,
    .poll = out_poll,
    .durable = out_durable,
    .close = out_close,
    .destroy = out_destroy,
};

void kf_sim_jsonl_output(kf_sim_jsonl *j, kf_sim_output *out)
{
    out->name = "stdout";
    out->ops = &jsonl_ops;
    out->self = j;
}
