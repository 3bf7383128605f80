/* Unit tests for the expected-state file (--expect): its exact text for a small run, and for a
 * run with updates, deletes and dropped columns: live rows only, sorted by key, active
 * columns only, column states, and the checksum over the row texts; the atomic file write. */
#include "sim_test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine.h"
#include "expect.h"

static int ignore_change(void *ctx, const kf_sim_table *t, const kf_sim_change *ch)
{
    (void)ctx;
    (void)t;
    (void)ch;
    return KF_OK;
}

/* An engine over spec run for events changes, with the clock at 2024-01-01T00:00:00Z. */
static kf_sim_engine *run_engine(const kf_sim_spec *spec, uint64_t seed, uint64_t events)
{
    int64_t start;
    assert_int_equal(kf_sim_time_parse("2024-01-01T00:00:00Z", &start), KF_OK);
    kf_sim_engine_config cfg = {
        .seed = seed, .start_us = start, .max_events = events, .on_change = ignore_change};
    kf_error err;
    kf_sim_engine *e = kf_sim_engine_new(spec, &cfg, &err);
    if (!e)
        fail_msg("%s", err.message);
    while (!kf_sim_engine_done(e))
        if (kf_sim_engine_run_batch(e, &err) != KF_OK)
            fail_msg("%s", err.message);
    return e;
}

/* The expected-state document of e as text (caller frees). */
static char *expect_text(const kf_sim_engine *e)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    kf_error err;
    kf_error_clear(&err);
    assert_int_equal(kf_sim_expect_write(e, out, &err), KF_OK);
    assert_int_equal(fclose(out), 0);
    return text;
}

static const char *const SMALL_SPEC =
    "database: shop\n"
    "tables:\n"
    "  - name: items\n"
    "    primary_key: {kind: sequence, column: id}\n"
    "    columns:\n"
    "      - {name: label, type: varchar(8), generator: {kind: choice, values: ['say \"hi\"']},"
    " nullable: false}\n"
    "      - {name: price, type: 'decimal(6,2)', generator: {kind: choice, values: ['-1.50']},"
    " nullable: false}\n"
    "      - {name: ok, type: bool, generator: {kind: bool, ratio: 1}, nullable: false}\n"
    "      - {name: at, type: timestamptz, generator: now, nullable: false}\n"
    "      - {name: later, type: int, reserved: true}\n"
    "    workload: {inserts: 2, update_probability: 0, delete_probability: 0}\n";

static void exact_text_of_a_small_run(void **state)
{
    (void)state;
    kf_sim_spec *spec = sim_spec_from(SMALL_SPEC);
    kf_sim_engine *e = run_engine(spec, 7, 2);
    char *text = expect_text(e);
    /* The two rows are hashed as they are written, each followed by a newline. */
    const char *row1 = "{\"id\":1,\"label\":\"say \\\"hi\\\"\",\"price\":\"-1.50\",\"ok\":true,"
                       "\"at\":\"2024-01-01T00:00:00.001000Z\"}";
    const char *row2 = "{\"id\":2,\"label\":\"say \\\"hi\\\"\",\"price\":\"-1.50\",\"ok\":true,"
                       "\"at\":\"2024-01-01T00:00:00.002000Z\"}";
    uint64_t sum = 0xcbf29ce484222325ULL;
    for (int r = 0; r < 2; r++) {
        for (const char *p = r ? row2 : row1; *p; p++)
            sum = (sum ^ (unsigned char)*p) * 0x100000001b3ULL;
        sum = (sum ^ '\n') * 0x100000001b3ULL;
    }
    char want[2048];
    snprintf(want, sizeof(want),
             "{\"seed\":\"7\",\"events\":2,\"tables\":[\n"
             "{\"database\":\"shop\",\"table\":\"items\",\"schema_version\":1,\"key\":[\"id\"],"
             "\"columns\":[{\"name\":\"id\",\"type\":\"bigint\",\"state\":\"active\"},"
             "{\"name\":\"label\",\"type\":\"varchar(8)\",\"state\":\"active\"},"
             "{\"name\":\"price\",\"type\":\"decimal(6,2)\",\"state\":\"active\"},"
             "{\"name\":\"ok\",\"type\":\"bool\",\"state\":\"active\"},"
             "{\"name\":\"at\",\"type\":\"timestamptz\",\"state\":\"active\"},"
             "{\"name\":\"later\",\"type\":\"int\",\"state\":\"reserved\"}],"
             "\"row_count\":2,\"checksum\":\"fnv1a64:%016llx\",\"rows\":[\n%s,\n%s]}\n]}\n",
             (unsigned long long)sum, row1, row2);
    assert_string_equal(text, want);
    free(text);
    kf_sim_engine_destroy(e);
    kf_sim_spec_destroy(spec);
}

static const char *const BUSY_SPEC =
    "database: d\n"
    "tables:\n"
    "  - name: busy\n"
    "    primary_key: {kind: uuid, column: id}\n"
    "    columns:\n"
    "      - {name: n, type: int, generator: {kind: uniform, min: 0, max: 99}}\n"
    "      - {name: amount, type: 'decimal(8,3)', generator: {kind: uniform, min: -5, max: 5}}\n"
    "      - {name: day, type: date, generator: {kind: time_range, from: '2020-01-01',"
    " to: '2020-12-31'}}\n"
    "      - {name: note, type: text, generator: {kind: sentence, min_words: 1, max_words: 3}}\n"
    "      - {name: extra, type: int, reserved: true}\n"
    "    workload: {inserts: 20, update_probability: 0.6, delete_probability: 0.4}\n"
    "    evolution: {every: 2, weights: {drop: 1, promote: 1}}\n"
    "  - name: empty\n"
    "    primary_key: {kind: sequence, column: id}\n"
    "    columns:\n"
    "      - {name: v, type: int}\n"
    "    workload: {inserts: 1, update_probability: 0, delete_probability: 1}\n";

/* The checksum of the n row texts after "rows":[ of the table starting at p, hashed like
 * expect.c: each row is on its own line, followed by "," or, for the last, by "]}". */
static uint64_t checksum_of_rows(const char *p, size_t n)
{
    const char *line = strstr(p, "\"rows\":[");
    assert_non_null(line);
    line += strlen("\"rows\":[");
    uint64_t sum = 0xcbf29ce484222325ULL;
    for (size_t r = 0; r < n; r++) {
        assert_int_equal(*line, '\n');
        line++;
        const char *end = strchr(line, '\n');
        assert_non_null(end);
        size_t len = (size_t)(end - line);
        if (r + 1 < n) {
            assert_int_equal(line[len - 1], ',');
            len -= 1;
        } else {
            if (line[len - 1] == ',') /* another table follows */
                len -= 1;
            assert_true(len > 2 && strncmp(line + len - 2, "]}", 2) == 0);
            len -= 2;
        }
        assert_int_equal(line[0], '{');
        assert_int_equal(line[len - 1], '}');
        for (size_t i = 0; i < len; i++)
            sum = (sum ^ (unsigned char)line[i]) * 0x100000001b3ULL;
        sum = (sum ^ '\n') * 0x100000001b3ULL;
        line = end;
    }
    return sum;
}

static void live_rows_sorted_with_active_columns(void **state)
{
    (void)state;
    kf_sim_spec *spec = sim_spec_from(BUSY_SPEC);
    kf_sim_engine *e = run_engine(spec, 11, 400);
    char *text = expect_text(e);
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    if (!root)
        fail_msg("not JSON: %s", jerr.text);
    assert_string_equal(json_string_value(json_object_get(root, "seed")), "11");
    assert_int_equal(json_integer_value(json_object_get(root, "events")), 400);
    json_t *tables = json_object_get(root, "tables");
    assert_int_equal(json_array_size(tables), 2);

    const kf_sim_table *t = kf_sim_engine_table(e, 0);
    json_t *busy = json_array_get(tables, 0);
    assert_string_equal(json_string_value(json_object_get(busy, "database")), "d");
    assert_string_equal(json_string_value(json_object_get(busy, "table")), "busy");
    assert_int_equal(json_integer_value(json_object_get(busy, "schema_version")),
                     t->schema_version);
    assert_true(t->schema_version > 1); /* the run evolved the table */
    json_t *cols = json_object_get(busy, "columns");
    assert_int_equal(json_array_size(cols), t->ncolumns);
    size_t active = 0, dropped = 0;
    static const char *const names[] = {"active", "reserved", "dropped"};
    for (size_t c = 0; c < t->ncolumns; c++) {
        json_t *col = json_array_get(cols, c);
        assert_string_equal(json_string_value(json_object_get(col, "name")),
                            t->spec->columns[c].name);
        assert_string_equal(json_string_value(json_object_get(col, "state")), names[t->state[c]]);
        active += t->state[c] == KF_SIM_COL_ACTIVE;
        dropped += t->state[c] == KF_SIM_COL_DROPPED;
    }
    assert_true(dropped > 0);

    /* every live row once, sorted by key, with exactly the active columns */
    json_t *rows = json_object_get(busy, "rows");
    const kf_sim_table_stats *st = kf_sim_engine_stats(e, 0);
    assert_true(st->deletes > 0 && st->updates > 0);
    assert_int_equal(json_array_size(rows), st->live_rows);
    assert_int_equal(json_integer_value(json_object_get(busy, "row_count")), st->live_rows);
    const char *prev = "";
    for (size_t r = 0; r < json_array_size(rows); r++) {
        json_t *row = json_array_get(rows, r);
        assert_int_equal(json_object_size(row), active);
        for (size_t c = 0; c < t->ncolumns; c++)
            assert_int_equal(json_object_get(row, t->spec->columns[c].name) != NULL,
                             t->state[c] == KF_SIM_COL_ACTIVE);
        const char *id = json_string_value(json_object_get(row, "id"));
        assert_non_null(id);
        assert_true(strcmp(prev, id) < 0);
        prev = id;
        json_t *amount = json_object_get(row, "amount");
        if (amount && !json_is_null(amount)) {
            const char *a = json_string_value(amount); /* decimals travel as strings */
            assert_non_null(a);
            const char *dot = strchr(a, '.');
            assert_non_null(dot);
            assert_int_equal(strlen(dot + 1), 3);
        }
        json_t *day = json_object_get(row, "day");
        if (day && !json_is_null(day)) {
            const char *d = json_string_value(day);
            assert_non_null(d);
            assert_int_equal(strlen(d), 10);
            assert_true(strncmp(d, "2020-", 5) == 0);
        }
    }
    /* each live row of the engine is in the document */
    for (size_t r = 0; r < st->live_rows; r++) {
        const kf_sim_cell *cells = kf_sim_engine_live_row(e, 0, r);
        size_t key = t->spec->key[0];
        bool found = false;
        for (size_t i = 0; i < json_array_size(rows) && !found; i++)
            found = strcmp(json_string_value(json_object_get(json_array_get(rows, i), "id")),
                           cells[key].s) == 0;
        assert_true(found);
    }

    /* the checksum covers the row texts exactly as written */
    uint64_t sum = checksum_of_rows(strstr(text, "\"table\":\"busy\""), st->live_rows);
    char want[40];
    snprintf(want, sizeof(want), "fnv1a64:%016llx", (unsigned long long)sum);
    assert_string_equal(json_string_value(json_object_get(busy, "checksum")), want);

    /* a table whose rows were all deleted: no rows, the checksum of nothing */
    json_t *empty = json_array_get(tables, 1);
    assert_int_equal(json_integer_value(json_object_get(empty, "row_count")),
                     kf_sim_engine_stats(e, 1)->live_rows);
    if (kf_sim_engine_stats(e, 1)->live_rows == 0) {
        assert_int_equal(json_array_size(json_object_get(empty, "rows")), 0);
        assert_string_equal(json_string_value(json_object_get(empty, "checksum")),
                            "fnv1a64:cbf29ce484222325");
    }
    json_decref(root);
    free(text);
    kf_sim_engine_destroy(e);
    kf_sim_spec_destroy(spec);
}

static void file_written_atomically(void **state)
{
    (void)state;
    kf_sim_spec *spec = sim_spec_from(SMALL_SPEC);
    kf_sim_engine *e = run_engine(spec, 7, 2);
    char dir[] = "/tmp/kfleet-sim-expect-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], tmp[140];
    snprintf(path, sizeof(path), "%s/expect.json", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    kf_error err;
    kf_error_clear(&err);
    FILE *old = fopen(path, "w");
    assert_non_null(old);
    fputs("an older file", old);
    fclose(old);
    assert_int_equal(kf_sim_expect_write_file(e, path, &err), KF_OK);
    assert_int_equal(access(tmp, F_OK), -1);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char got[4096];
    size_t n = fread(got, 1, sizeof(got) - 1, f);
    got[n] = '\0';
    fclose(f);
    char *text = expect_text(e);
    assert_string_equal(got, text);
    free(text);

    char bad[160];
    snprintf(bad, sizeof(bad), "%s/missing/expect.json", dir);
    assert_int_equal(kf_sim_expect_write_file(e, bad, &err), KF_ERR_IO);
    assert_non_null(strstr(err.message, "could not write expected state"));
    unlink(path);
    rmdir(dir);
    kf_sim_engine_destroy(e);
    kf_sim_spec_destroy(spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exact_text_of_a_small_run),
        cmocka_unit_test(live_rows_sorted_with_active_columns),
        cmocka_unit_test(file_written_atomically),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
