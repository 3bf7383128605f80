/* Expected final state of the simulated tables: live rows sorted by primary key, one JSON
 * object per row over the active columns, and an FNV-1a checksum of those row texts. */
#include "expect.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

typedef struct sort_ctx {
    const kf_sim_engine *e;
    size_t table;
} sort_ctx;

/* qsort has no context argument; the comparison reads the table being sorted from here. The
 * writer is single-threaded. */
static sort_ctx sorting;

static int compare_rows(const void *a, const void *b)
{
    const kf_sim_table *t = kf_sim_engine_table(sorting.e, sorting.table);
    const kf_sim_cell *ra = kf_sim_engine_live_row(sorting.e, sorting.table, *(const size_t *)a);
    const kf_sim_cell *rb = kf_sim_engine_live_row(sorting.e, sorting.table, *(const size_t *)b);
    for (size_t k = 0; k < t->spec->nkey; k++) {
        int c = kf_sim_cell_compare(&ra[t->spec->key[k]], &rb[t->spec->key[k]]);
        if (c)
            return c;
    }
    return 0;
}

static const char *state_name(kf_sim_col_state s)
{
    return s == KF_SIM_COL_ACTIVE ? "active" : s == KF_SIM_COL_RESERVED ? "reserved" : "dropped";
}

static int put_row(kf_sim_buf *b, const kf_sim_table *t, const kf_sim_cell *cells)
{
    int rc = kf_sim_buf_putc(b, '{');
    bool first = true;
    for (size_t c = 0; c < t->ncolumns && rc == KF_OK; c++) {
        if (!kf_sim_table_active(t, c))
            continue;
        if (!first)
            rc = kf_sim_buf_putc(b, ',');
        first = false;
        const char *name = t->spec->columns[c].name;
        if (rc == KF_OK)
            rc = kf_sim_json_string(b, name, strlen(name));
        if (rc == KF_OK)
            rc = kf_sim_buf_putc(b, ':');
        if (rc == KF_OK)
            rc = kf_sim_cell_write_json(b, &t->type[c], &cells[c]);
    }
    if (rc == KF_OK)
        rc = kf_sim_buf_putc(b, '}');
    return rc;
}

static int put_header(kf_sim_buf *b, const kf_sim_table *t, uint64_t nrows)
{
    const kf_sim_table_spec *s = t->spec;
    int rc = kf_sim_buf_puts(b, "{\"database\":");
    if (rc == KF_OK)
        rc = kf_sim_json_string(b, s->database, strlen(s->database));
    if (rc == KF_OK)
        rc = kf_sim_buf_puts(b, ",\"table\":");
    if (rc == KF_OK)
        rc = kf_sim_json_string(b, s->name, strlen(s->name));
    if (rc == KF_OK)
        rc = kf_sim_buf_printf(b, ",\"schema_version\":%u,\"key\":[", t->schema_version);
    for (size_t k = 0; k < s->nkey && rc == KF_OK; k++) {
        const char *name = s->columns[s->key[k]].name;
        if (k)
            rc = kf_sim_buf_putc(b, ',');
        if (rc == KF_OK)
            rc = kf_sim_json_string(b, name, strlen(name));
    }
    if (rc == KF_OK)
        rc = kf_sim_buf_puts(b, "],\"columns\":[");
    for (size_t c = 0; c < t->ncolumns && rc == KF_OK; c++) {
        char type[48];
        kf_sim_coltype_format(&t->type[c], type, sizeof(type));
        rc = kf_sim_buf_puts(b, c ? ",{\"name\":" : "{\"name\":");
        if (rc == KF_OK)
            rc = kf_sim_json_string(b, s->columns[c].name, strlen(s->columns[c].name));
        if (rc == KF_OK)
            rc = kf_sim_buf_printf(b, ",\"type\":\"%s\",\"state\":\"%s\"}", type,
                                   state_name(t->state[c]));
    }
    if (rc == KF_OK)
        rc = kf_sim_buf_printf(b, "],\"row_count\":%" PRIu64 ",", nrows);
    return rc;
}

int kf_sim_expect_write(const kf_sim_engine *e, FILE *out, kf_error *err)
{
    kf_sim_buf head = {0}, rows = {0};
    size_t *order = NULL;
    int rc = KF_OK;
    fprintf(out, "{\"seed\":\"%" PRIu64 "\",\"events\":%" PRIu64 ",\"tables\":[\n",
            kf_sim_engine_seed(e), kf_sim_engine_events(e));
    for (size_t ti = 0; ti < kf_sim_engine_table_count(e) && rc == KF_OK; ti++) {
        const kf_sim_table *t = kf_sim_engine_table(e, ti);
        size_t n = (size_t)kf_sim_engine_stats(e, ti)->live_rows;
        size_t *grown = realloc(order, (n ? n : 1) * sizeof(*order));
        if (!grown) {
            rc = KF_ERR_NOMEM;
            break;
        }
        order = grown;
        for (size_t r = 0; r < n; r++)
            order[r] = r;
        sorting = (sort_ctx){e, ti};
        qsort(order, n, sizeof(*order), compare_rows);
        /* The checksum covers each row's JSON text followed by a newline, in key order. */
        uint64_t sum = 0xcbf29ce484222325ULL;
        kf_sim_buf_clear(&rows);
        for (size_t r = 0; r < n && rc == KF_OK; r++) {
            rc = kf_sim_buf_puts(&rows, r ? ",\n" : "\n");
            size_t from = rows.len;
            if (rc == KF_OK)
                rc = put_row(&rows, t, kf_sim_engine_live_row(e, ti, order[r]));
            for (size_t i = from; rc == KF_OK && i < rows.len; i++)
                sum = (sum ^ (unsigned char)rows.data[i]) * 0x100000001b3ULL;
            sum = (sum ^ '\n') * 0x100000001b3ULL;
        }
        kf_sim_buf_clear(&head);
        if (rc == KF_OK)
            rc = put_header(&head, t, n);
        if (rc == KF_OK)
            rc =
                kf_sim_buf_printf(&head, "\"checksum\":\"fnv1a64:%016" PRIx64 "\",\"rows\":[", sum);
        if (rc == KF_OK) {
            fputs(ti ? ",\n" : "", out);
            fwrite(head.data, 1, head.len, out);
            if (rows.len)
                fwrite(rows.data, 1, rows.len, out);
            fputs("]}", out);
        }
    }
    fputs("\n]}\n", out);
    free(order);
    kf_sim_buf_free(&head);
    kf_sim_buf_free(&rows);
    if (rc == KF_ERR_NOMEM)
        return kf_error_set(err, rc, false, "could not write the expected state: out of memory");
    if (fflush(out) != 0 || ferror(out))
        return kf_error_set(err, KF_ERR_IO, false, "could not write the expected state: %s",
                            strerror(errno));
    return KF_OK;
}

int kf_sim_expect_write_file(const kf_sim_engine *e, const char *path, kf_error *err)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return kf_error_set(err, KF_ERR_IO, false,
                            "could not write expected state \"%s\": path too long", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return kf_error_set(err, KF_ERR_IO, false, "could not write expected state \"%s\": %s", tmp,
                            strerror(errno));
    int rc = kf_sim_expect_write(e, f, err);
    if (fclose(f) != 0 && rc == KF_OK)
        rc = kf_error_set(err, KF_ERR_IO, false, "could not write expected state \"%s\": %s", tmp,
                          strerror(errno));
    if (rc == KF_OK && rename(tmp, path) != 0)
        rc = kf_error_set(err, KF_ERR_IO, false, "could not write expected state \"%s\": %s", path,
                          strerror(errno));
    if (rc != KF_OK)
        remove(tmp);
    return rc;
}
