/* libFuzzer target: wire-format + Avro decoding of arbitrary bytes against pre-seeded schemas
 * (a change-event envelope with every column type, its key, and a record using every other
 * Avro type), then the event view over the result. Must never crash, hang or leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfleet/event.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Schema ids the seed corpus uses. */
#define ID_KEY      1
#define ID_ENVELOPE 2
#define ID_OTHER    3

static const char OTHER[] =
    "{\"type\":\"record\",\"name\":\"Other\",\"fields\":["
    "{\"name\":\"f\",\"type\":\"float\"},"
    "{\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"Four\",\"size\":4}},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"Color\",\"symbols\":[\"RED\","
    "\"GREEN\",\"BLUE\"]}},"
    "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":[\"null\",\"string\"]}},"
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"bytes\"}},"
    "{\"name\":\"next\",\"type\":[\"null\",\"Other\"]}]}";

static const struct {
    const char *name;
    const char *type;
    bool nullable;
    int pk;
} columns[] = {
    {"id", "bigint", false, 1},     {"small", "smallint", true, 2},
    {"qty", "int", true, 0},        {"ratio", "real", true, 0},
    {"score", "double", true, 0},   {"price", "decimal(12,3)", true, 0},
    {"ok", "boolean", true, 0},     {"note", "text", true, 0},
    {"sku", "varchar(8)", true, 0}, {"raw", "bytea", true, 0},
    {"born", "date", true, 0},      {"seen", "timestamp", true, 0},
    {"at", "timestamptz", true, 0}, {"uid", "uuid", true, 0},
    {"doc", "json", true, 0},
};

static kf_serde *serde;
static kf_event_reader *reader;
static kf_table *table;

static void fail(const char *what, const kf_error *err)
{
    fprintf(stderr, "fuzz_decode: %s: %s\n", what, err->message);
    abort();
}

/* Frees the state at exit. Besides keeping the exit clean, this matters for LeakSanitizer:
 * avro-c's generic union stores its branch 4 bytes into the union, so the pointer to a branch
 * reached through a named reference (the envelope's after image, recursive records) is not
 * 8-byte aligned and LSan cannot see it while the state is alive. */
static void teardown(void)
{
    kf_event_reader_destroy(reader);
    kf_serde_destroy(serde);
    kf_table_destroy(table);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    kf_error err;
    table = kf_table_new("kfleet", "fuzz", NULL, "t", &err);
    if (!table)
        fail("table", &err);
    for (size_t i = 0; i < sizeof(columns) / sizeof(columns[0]); i++) {
        kf_column c;
        memset(&c, 0, sizeof(c));
        c.name = columns[i].name;
        if (kf_coltype_parse(columns[i].type, &c, &err) != KF_OK)
            fail("type", &err);
        c.nullable = columns[i].nullable;
        c.pk_order = columns[i].pk;
        if (kf_table_add_column(table, &c, &err) != KF_OK)
            fail("column", &err);
    }
    char *key = kf_table_key_schema(table, &err);
    char *env = kf_table_envelope_schema(table, &err);
    serde = kf_serde_new(NULL, &err);
    if (!key || !env || !serde || kf_serde_add_schema(serde, ID_KEY, key, &err) != KF_OK ||
        kf_serde_add_schema(serde, ID_ENVELOPE, env, &err) != KF_OK ||
        kf_serde_add_schema(serde, ID_OTHER, OTHER, &err) != KF_OK)
        fail("schemas", &err);
    free(key);
    free(env);
    reader = kf_event_reader_new(serde, &err);
    if (!reader)
        fail("reader", &err);
    atexit(teardown);
    return 0;
}

/* Reads every byte a decoded view points at, so the sanitizers check the bounds. */
static unsigned touch(const kf_cell *cells, size_t n)
{
    unsigned sum = 0;
    for (size_t i = 0; cells && i < n; i++) {
        if (cells[i].kind == KF_CELL_STRING || cells[i].kind == KF_CELL_BYTES) {
            for (size_t k = 0; k < cells[i].v.s.len; k++)
                sum += (unsigned char)cells[i].v.s.ptr[k];
        }
        if (cells[i].kind == KF_CELL_STRING && cells[i].v.s.ptr[cells[i].v.s.len] != '\0')
            abort();
    }
    return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kf_error err;
    kf_event ev;
    volatile unsigned sink = 0;
    int rc = kf_event_reader_decode(reader, data, size, &ev, &err);
    if (rc == KF_OK) {
        sink += touch(ev.before, ev.ncols) + touch(ev.after, ev.ncols);
        const char *strs[] = {ev.source.version, ev.source.connector, ev.source.db,
                              ev.source.table,   ev.source.file,      ev.source.resume_token};
        for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
            sink += strs[i] ? (unsigned)strlen(strs[i]) : 0;
        char text[2600];
        const kf_column *price = kf_table_column(ev.table, 5);
        if (ev.after && price && ev.after[5].kind == KF_CELL_BYTES)
            kf_decimal_format((const uint8_t *)ev.after[5].v.s.ptr, ev.after[5].v.s.len,
                              price->scale, text, sizeof(text), &err);
    } else if (rc != KF_ERR_DECODE && rc != KF_ERR_NOT_FOUND) {
        fprintf(stderr, "fuzz_decode: unexpected error %d: %s\n", rc, err.message);
        abort();
    }
    const kf_table *kt;
    const kf_cell *cells;
    if (kf_event_reader_decode_key(reader, data, size, &kt, &cells, &err) == KF_OK)
        sink += touch(cells, kf_table_ncolumns(kt));
    /* and the generic decoder for whatever id the message names */
    avro_value_t *v;
    rc = kf_serde_decode(serde, data, size, NULL, &v, &err);
    if (rc != KF_OK && rc != KF_ERR_DECODE && rc != KF_ERR_NOT_FOUND) {
        fprintf(stderr, "fuzz_decode: unexpected error %d: %s\n", rc, err.message);
        abort();
    }
    (void)sink;
    return 0;
}
