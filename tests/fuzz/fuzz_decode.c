/* libFuzzer target: wire-format + Avro decoding of arbitrary bytes against pre-seeded schemas
 * (a change-event envelope with every column type, its key, a record using every other Avro
 * type, a Debezium-style envelope with extra fields of every type), through the event view,
 * the generic decoder and the direct codec, which must agree with the generic decoder and
 * round-trip what it accepts. Must never crash, hang or leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* tests/common is not on the fuzz targets' include path: reach it from this file's folder */
#include "kf_test_table.h"
#include "kfleet/codec.h"
#include "kfleet/event.h"
#include "kfleet/wire.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Schema ids the seed corpus uses. */
#define ID_KEY      1
#define ID_ENVELOPE 2
#define ID_OTHER    3
#define ID_EXTRAS   4

static const char OTHER[] =
    "{\"type\":\"record\",\"name\":\"Other\",\"fields\":["
    "{\"name\":\"f\",\"type\":\"float\"},"
    "{\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"Four\",\"size\":4}},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"Color\",\"symbols\":[\"RED\","
    "\"GREEN\",\"BLUE\"]}},"
    "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":[\"null\",\"string\"]}},"
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"bytes\"}},"
    "{\"name\":\"next\",\"type\":[\"null\",\"Other\"]}]}";

/* An envelope whose extra fields take every skip path of the codec: a general union, enum,
 * fixed, array, map, a recursive record and defaults. */
static const char EXTRAS[] =
    "{\"type\":\"record\",\"name\":\"Envelope\",\"namespace\":\"db.inv.t\",\"fields\":["
    "{\"name\":\"before\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"Value\","
    "\"fields\":[{\"name\":\"id\",\"type\":\"int\"},{\"name\":\"v\",\"type\":[\"null\","
    "\"double\"]}]}]},"
    "{\"name\":\"after\",\"type\":[\"null\",\"Value\"]},"
    "{\"name\":\"source\",\"type\":{\"type\":\"record\",\"name\":\"Source\",\"fields\":["
    "{\"name\":\"version\",\"type\":\"string\"},{\"name\":\"row\",\"type\":\"int\"},"
    "{\"name\":\"sequence\",\"type\":[\"null\",\"string\"]}]}},"
    "{\"name\":\"op\",\"type\":\"string\"},"
    "{\"name\":\"multi\",\"type\":[\"string\",\"long\",\"null\",\"boolean\"],"
    "\"default\":\"m\"},"
    "{\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":\"K\",\"symbols\":[\"A\","
    "\"B\"]}},"
    "{\"name\":\"tag\",\"type\":{\"type\":\"fixed\",\"name\":\"T\",\"size\":2}},"
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":[\"null\",\"bytes\"]}},"
    "{\"name\":\"attrs\",\"type\":{\"type\":\"map\",\"values\":\"float\"}},"
    "{\"name\":\"tree\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"Node\","
    "\"fields\":[{\"name\":\"next\",\"type\":[\"null\",\"Node\"]}]}]}]}";

static const kf_test_column columns[] = {
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

/* The codec programs under test, by schema id, with their registers. */
static const int32_t codec_ids[] = {ID_ENVELOPE, ID_KEY, ID_EXTRAS};
#define NCODECS (sizeof(codec_ids) / sizeof(codec_ids[0]))
static const kf_codec *codecs[NCODECS];
static kf_cell *regs[NCODECS], *regs2[NCODECS];
static kf_buf copy, reencoded, framed;

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
    for (size_t i = 0; i < NCODECS; i++) {
        free(regs[i]);
        free(regs2[i]);
    }
    kf_buf_free(&copy);
    kf_buf_free(&reencoded);
    kf_buf_free(&framed);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    kf_error err;
    table = kf_test_table_new("kfleet", "fuzz", NULL, "t", columns,
                              sizeof(columns) / sizeof(columns[0]), &err);
    if (!table)
        fail("table", &err);
    serde = kf_serde_new(NULL, &err);
    if (!serde || kf_test_serde_add_table(serde, table, ID_KEY, ID_ENVELOPE, &err) != KF_OK ||
        kf_serde_add_schema(serde, ID_OTHER, OTHER, &err) != KF_OK ||
        kf_serde_add_schema(serde, ID_EXTRAS, EXTRAS, &err) != KF_OK)
        fail("schemas", &err);
    for (size_t i = 0; i < NCODECS; i++) {
        if (kf_serde_codec(serde, codec_ids[i], &codecs[i], &err) != KF_OK)
            fail("codec", &err);
        regs[i] = calloc(kf_codec_nregs(codecs[i]), sizeof(kf_cell));
        regs2[i] = calloc(kf_codec_nregs(codecs[i]), sizeof(kf_cell));
        if (!regs[i] || !regs2[i])
            abort();
    }
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

static bool cell_equal(const kf_cell *a, const kf_cell *b)
{
    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case KF_CELL_INT:
        return a->v.i == b->v.i;
    case KF_CELL_DOUBLE:
        return memcmp(&a->v.d, &b->v.d, sizeof(double)) == 0;
    case KF_CELL_BOOL:
        return a->v.b == b->v.b;
    case KF_CELL_STRING:
    case KF_CELL_BYTES:
        return a->v.s.len == b->v.s.len && memcmp(a->v.s.ptr, b->v.s.ptr, a->v.s.len) == 0;
    default:
        return true;
    }
}

/* Decodes data as the payload of codec k: zero-copy reads must stay inside data, copies must
 * be terminated; what the generic decoder rejects the codec rejects and the other way round
 * (for the envelope and the key, which have no recursion to limit differently); and whatever
 * is accepted encodes back to bytes that decode to the same registers. */
static unsigned codec_round(size_t k, const uint8_t *data, size_t size)
{
    kf_error err;
    const kf_codec *c = codecs[k];
    size_t n = kf_codec_nregs(c);
    unsigned sum = 0;
    int rc = kf_codec_decode(c, data, size, 0, regs[k], NULL, &err);
    if (rc != KF_OK && rc != KF_ERR_DECODE) {
        fprintf(stderr, "fuzz_decode: codec: unexpected error %d: %s\n", rc, err.message);
        abort();
    }
    if (k < 2) {
        framed.len = 0;
        if (kf_buf_reserve(&framed, size + KF_WIRE_HEADER_SIZE) != KF_OK)
            abort();
        kf_wire_write_header(framed.data, codec_ids[k]);
        if (size)
            memcpy(framed.data + KF_WIRE_HEADER_SIZE, data, size);
        avro_value_t *v;
        int grc = kf_serde_decode(serde, framed.data, size + KF_WIRE_HEADER_SIZE, NULL, &v, &err);
        if ((grc == KF_OK) != (rc == KF_OK)) {
            fprintf(stderr, "fuzz_decode: codec (%d) and generic decoder (%d) disagree\n", rc, grc);
            abort();
        }
    }
    if (rc != KF_OK)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (regs[k][i].kind == KF_CELL_STRING || regs[k][i].kind == KF_CELL_BYTES)
            sum += regs[k][i].v.s.len ? (unsigned char)regs[k][i].v.s.ptr[0] : 0;
    reencoded.len = 0;
    if (kf_codec_encode(c, regs[k], &reencoded, &err) != KF_OK) {
        fprintf(stderr, "fuzz_decode: re-encoding failed: %s\n", err.message);
        abort();
    }
    if (kf_codec_decode(c, reencoded.data, reencoded.len, 0, regs2[k], &copy, &err) != KF_OK) {
        fprintf(stderr, "fuzz_decode: re-encoded record does not decode: %s\n", err.message);
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        kf_codec_reg info;
        kf_codec_reg_info(c, i, &info);
        if (info.bound && !cell_equal(&regs[k][i], &regs2[k][i])) {
            fprintf(stderr, "fuzz_decode: field \"%s\" changed in a round trip\n", info.path);
            abort();
        }
        if (regs2[k][i].kind == KF_CELL_STRING && regs2[k][i].v.s.ptr[regs2[k][i].v.s.len] != '\0')
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
    /* the direct codec, on the bytes as a payload and on the payload of a framed message */
    const uint8_t *payload = data;
    size_t plen = size;
    if (size >= KF_WIRE_HEADER_SIZE && data[0] == KF_WIRE_MAGIC) {
        payload = data + KF_WIRE_HEADER_SIZE;
        plen = size - KF_WIRE_HEADER_SIZE;
    }
    for (size_t k = 0; k < NCODECS; k++)
        sink += codec_round(k, payload, plen);
    (void)sink;
    return 0;
}
