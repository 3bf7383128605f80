/* Unit tests for the direct Avro codec: byte-for-byte agreement with avro-c's writer over every
 * column type, decoding avro-c's bytes, Debezium extras, every decode error, and allocation-free
 * mixed-op event streams. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kf_test_alloc.h"
#include "kf_test_table.h"
#include "kfleet/codec.h"
#include "kfleet/wire.h"

/* Every column type, NOT NULL and nullable. */
static const char *const types[] = {
    "smallint",      "int",       "bigint",      "real",        "double precision",
    "numeric(38,4)", "boolean",   "text",        "varchar(64)", "bytea",
    "date",          "timestamp", "timestamptz", "uuid",        "jsonb",
};
#define NTYPES (sizeof(types) / sizeof(types[0]))
#define NCOLS  (2 * NTYPES)

static kf_table *all_types_table(void)
{
    kf_error err;
    kf_table *t = kf_table_new("kfleet", "shop", "public", "every_type", &err);
    assert_non_null(t);
    for (size_t i = 0; i < NCOLS; i++) {
        char name[32];
        kf_column c;
        memset(&c, 0, sizeof(c));
        snprintf(name, sizeof(name), "c%zu%s", i % NTYPES, i >= NTYPES ? "_null" : "");
        c.name = name;
        OK(kf_coltype_parse(types[i % NTYPES], &c, &err_));
        c.nullable = i >= NTYPES;
        c.pk_order = i == 2 ? 1 : i == 0 ? 2 : 0;
        OK(kf_table_add_column(t, &c, &err_));
    }
    return t;
}

/* Interesting values per column type; variant v picks one (cycling). */
static const int64_t smallints[] = {-32768, 32767, 0, -1, 63, -64, 64, -65};
static const int64_t ints[] = {INT32_MIN, INT32_MAX, 0, -1, 8191, -8192, 1 << 20, 300};
static const int64_t longs[] = {INT64_MIN, INT64_MAX, 0, -1, 1LL << 35, -(1LL << 56), 127, 128};
static const double floats[] = {0.5, -0.0, 3.0e38, 1.0e-45, INFINITY, -1.25, 0, 16777216.0};
static const double doubles[] = {-1.0e-300, DBL_MAX, -0.0, -INFINITY, 0.1, 2, -3, 5e-324};
static const struct {
    const char *p;
    size_t n;
} decimals[] = {
    {"\x00", 1}, {"\xff", 1}, {"\x30\x39", 2}, {"\x80\x00\x00\x00\x00\x00\x00\x00\x01", 9},
    {"", 0},     {"\x7f", 1}, {"\xff\x7f", 2}, {"\x01\x00\x00", 3},
};

static char long_text[301];

static const char *text_value(int v, size_t *len)
{
    static const char *const texts[] = {"",
                                        "a",
                                        kf_test_unicode,
                                        NULL,
                                        "{\"a\":[1,2]}",
                                        " ",
                                        "\xc3\xa9",
                                        "6f1c1a52-8d4b-4c3e-9a57-2f1e0b1d9c11"};
    const char *s = texts[v % 8];
    if (!s)
        s = long_text;
    *len = strlen(s);
    return s;
}

static void bytes_value(int v, const char **p, size_t *n)
{
    static const struct {
        const char *p;
        size_t n;
    } raw[] = {{"", 0}, {"\x00\xff\x00", 3}, {"\x00", 1}, {NULL, 200}};
    *p = raw[v % 4].p ? raw[v % 4].p : long_text;
    *n = raw[v % 4].n;
}

/* The cell of column col in value variant v (nullable columns are null when nulls is set). */
static kf_cell make_cell(const kf_table *t, size_t col, int v, bool nulls)
{
    const kf_column *c = kf_table_column(t, col);
    kf_cell cell = {.kind = KF_CELL_NULL};
    if (c->nullable && nulls)
        return cell;
    int k = (v + (int)col) % 8;
    switch (c->type) {
    case KF_COL_SMALLINT:
        cell.kind = KF_CELL_INT;
        cell.v.i = smallints[k];
        break;
    case KF_COL_INT:
    case KF_COL_DATE:
        cell.kind = KF_CELL_INT;
        cell.v.i = ints[k];
        break;
    case KF_COL_BIGINT:
    case KF_COL_TIMESTAMP:
        cell.kind = KF_CELL_INT;
        cell.v.i = longs[k];
        break;
    case KF_COL_FLOAT:
        cell.kind = KF_CELL_DOUBLE;
        cell.v.d = floats[k];
        break;
    case KF_COL_DOUBLE:
        cell.kind = KF_CELL_DOUBLE;
        cell.v.d = doubles[k];
        break;
    case KF_COL_DECIMAL:
        cell.kind = KF_CELL_BYTES;
        cell.v.s.ptr = decimals[k].p;
        cell.v.s.len = decimals[k].n;
        break;
    case KF_COL_BOOL:
        cell.kind = KF_CELL_BOOL;
        cell.v.b = k % 2 == 0;
        break;
    case KF_COL_BYTES:
        cell.kind = KF_CELL_BYTES;
        bytes_value(k, &cell.v.s.ptr, &cell.v.s.len);
        break;
    default:
        cell.kind = KF_CELL_STRING;
        cell.v.s.ptr = text_value(k, &cell.v.s.len);
        break;
    }
    return cell;
}

/* ---- filling avro-c generic values from the same cells ---- */

static avro_schema_t deref(avro_schema_t s)
{
    while (is_avro_link(s))
        s = avro_schema_link_target(s);
    return s;
}

/* Selects the null branch (cell NULL) or the value branch of a union field; false for null. */
static bool select_branch(avro_value_t *f, bool is_null, avro_value_t *out)
{
    if (avro_value_get_type(f) != AVRO_UNION) {
        *out = *f;
        return !is_null;
    }
    avro_schema_t us = avro_value_get_schema(f);
    int null_idx = -1, val_idx = -1;
    for (size_t i = 0; i < avro_schema_union_size(us); i++) {
        if (is_avro_null(deref(avro_schema_union_branch(us, (int)i))))
            null_idx = (int)i;
        else if (val_idx < 0)
            val_idx = (int)i;
    }
    assert_int_equal(avro_value_set_branch(f, is_null ? null_idx : val_idx, out), 0);
    return !is_null;
}

static void set_scalar(avro_value_t *v, const kf_cell *c)
{
    char tmp[1024];
    switch (avro_value_get_type(v)) {
    case AVRO_INT32:
        assert_int_equal(avro_value_set_int(v, (int32_t)c->v.i), 0);
        break;
    case AVRO_INT64:
        assert_int_equal(avro_value_set_long(v, c->v.i), 0);
        break;
    case AVRO_FLOAT:
        assert_int_equal(avro_value_set_float(v, (float)c->v.d), 0);
        break;
    case AVRO_DOUBLE:
        assert_int_equal(avro_value_set_double(v, c->v.d), 0);
        break;
    case AVRO_BOOLEAN:
        assert_int_equal(avro_value_set_boolean(v, c->v.b), 0);
        break;
    case AVRO_STRING:
        assert_true(c->v.s.len < sizeof(tmp));
        memcpy(tmp, c->v.s.ptr, c->v.s.len);
        tmp[c->v.s.len] = '\0';
        assert_int_equal(avro_value_set_string_len(v, tmp, c->v.s.len + 1), 0);
        break;
    case AVRO_BYTES:
        assert_int_equal(avro_value_set_bytes(v, (void *)c->v.s.ptr, c->v.s.len), 0);
        break;
    default:
        fail_msg("unexpected Avro type %d", (int)avro_value_get_type(v));
    }
}

static void fill_record(avro_value_t *rec, const kf_cell *cells, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        avro_value_t f, v;
        assert_int_equal(avro_value_get_by_index(rec, i, &f, NULL), 0);
        if (select_branch(&f, cells[i].kind == KF_CELL_NULL, &v))
            set_scalar(&v, &cells[i]);
    }
}

/* Fills an envelope value from codec registers; fields the codec does not bind are null. */
static void fill_envelope(avro_value_t *env, const kf_codec *c, const kf_cell *regs)
{
    size_t n = 0;
    assert_int_equal(avro_value_get_size(env, &n), 0);
    for (size_t i = 0; i < n; i++) {
        avro_value_t f, v;
        const char *name;
        assert_int_equal(avro_value_get_by_index(env, i, &f, &name), 0);
        if (strcmp(name, "before") == 0 || strcmp(name, "after") == 0) {
            int side = name[0] == 'a';
            int reg = side ? KF_CODEC_REG_AFTER : KF_CODEC_REG_BEFORE;
            if (select_branch(&f, regs[reg].kind == KF_CELL_NULL, &v))
                fill_record(&v, &regs[kf_codec_row_reg(c, side, 0)], kf_codec_nfields(c));
        } else if (strcmp(name, "op") == 0 || strcmp(name, "ts_ms") == 0) {
            const kf_cell *cell = &regs[name[0] == 'o' ? KF_CODEC_REG_OP : KF_CODEC_REG_TS_MS];
            if (select_branch(&f, cell->kind == KF_CELL_NULL, &v))
                set_scalar(&v, cell);
        } else if (strcmp(name, "source") == 0) {
            size_t ns = 0;
            assert_int_equal(avro_value_get_size(&f, &ns), 0);
            for (size_t k = 0; k < ns; k++) {
                avro_value_t sf, sv;
                const char *sname;
                assert_int_equal(avro_value_get_by_index(&f, k, &sf, &sname), 0);
                const kf_cell *cell = NULL;
                for (int s = 0; s < KF_SRC_COUNT; s++)
                    if (strcmp(kf_codec_source_field((kf_src_field)s), sname) == 0)
                        cell = &regs[KF_CODEC_REG_SOURCE + s];
                if (select_branch(&sf, !cell || cell->kind == KF_CELL_NULL, &sv))
                    set_scalar(&sv, cell);
            }
        } else {
            select_branch(&f, true, &v);
        }
    }
}

/* avro_value_write of v into out; returns the length. */
static size_t write_generic(avro_value_t *v, uint8_t *out, size_t cap)
{
    avro_writer_t w = avro_writer_memory((char *)out, (int64_t)cap);
    assert_non_null(w);
    if (avro_value_write(w, v) != 0)
        fail_msg("avro_value_write: %s", avro_strerror());
    size_t n = (size_t)avro_writer_tell(w);
    avro_writer_free(w);
    return n;
}

static void assert_cell_equal(const kf_cell *got, const kf_cell *want, bool is_float)
{
    assert_int_equal(got->kind, want->kind);
    switch (want->kind) {
    case KF_CELL_NULL:
        break;
    case KF_CELL_INT:
        assert_true(got->v.i == want->v.i);
        break;
    case KF_CELL_DOUBLE: {
        double w = is_float ? (double)(float)want->v.d : want->v.d;
        assert_memory_equal(&got->v.d, &w, sizeof(double));
        break;
    }
    case KF_CELL_BOOL:
        assert_int_equal(got->v.b, want->v.b);
        break;
    case KF_CELL_STRING:
    case KF_CELL_BYTES:
        assert_int_equal(got->v.s.len, want->v.s.len);
        assert_memory_equal(got->v.s.ptr, want->v.s.ptr, want->v.s.len);
        break;
    }
}

/* ---- tests ---- */

static avro_schema_t parse(const char *json)
{
    avro_schema_t s;
    if (avro_schema_from_json_length(json, strlen(json), &s) != 0)
        fail_msg("schema: %s", avro_strerror());
    return s;
}

/* A plain Value record of every column type: the codec's bytes are avro-c's bytes, and the
 * codec reads avro-c's bytes back to the same cells, both zero-copy and copying. */
static void value_record_matches_avro_c(void **state)
{
    (void)state;
    kf_error err;
    kf_table *t = all_types_table();
    char *json = kf_table_value_schema(t, &err);
    assert_non_null(json);
    avro_schema_t schema = parse(json);
    kf_codec *c = kf_codec_new(schema, json, &err);
    if (!c)
        fail_msg("%s", err.message);
    assert_false(kf_codec_is_envelope(c));
    assert_int_equal(kf_codec_nregs(c), NCOLS);
    assert_int_equal(kf_codec_nfields(c), NCOLS);
    kf_codec_reg info;
    OK(kf_codec_reg_info(c, NTYPES + 7, &info));
    assert_true(info.bound);
    assert_true(info.nullable);
    assert_int_equal(info.kind, KF_CELL_STRING);
    assert_string_equal(info.path, "c7_null");
    assert_int_equal(kf_codec_reg_info(c, NCOLS, &info), KF_ERR_INVALID);

    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t gv;
    assert_int_equal(avro_generic_value_new(iface, &gv), 0);
    kf_cell cells[NCOLS], back[NCOLS];
    kf_buf out = {0}, copy = {0};
    uint8_t ref[8192];
    for (int v = 0; v < 16; v++) {
        for (size_t i = 0; i < NCOLS; i++)
            cells[i] = make_cell(t, i, v, v == 15);
        fill_record(&gv, cells, NCOLS);
        size_t n = write_generic(&gv, ref, sizeof(ref));
        out.len = 0;
        OK(kf_codec_encode(c, cells, &out, &err_));
        assert_int_equal(out.len, n);
        assert_memory_equal(out.data, ref, n);

        memset(back, 0xa5, sizeof(back));
        OK(kf_codec_decode(c, ref, n, 0, back, NULL, &err_));
        for (size_t i = 0; i < NCOLS; i++) {
            assert_cell_equal(&back[i], &cells[i], kf_table_column(t, i)->type == KF_COL_FLOAT);
            if (back[i].kind == KF_CELL_STRING && back[i].v.s.len > 0) /* zero copy */
                assert_true((const uint8_t *)back[i].v.s.ptr >= ref &&
                            (const uint8_t *)back[i].v.s.ptr < ref + n);
        }
        OK(kf_codec_decode(c, ref, n, 0, back, &copy, &err_));
        for (size_t i = 0; i < NCOLS; i++) {
            assert_cell_equal(&back[i], &cells[i], kf_table_column(t, i)->type == KF_COL_FLOAT);
            if (back[i].kind == KF_CELL_STRING)
                assert_int_equal(back[i].v.s.ptr[back[i].v.s.len], '\0');
        }
    }
    /* appending: the record lands after what the buffer already holds */
    out.len = 3;
    OK(kf_codec_encode(c, cells, &out, &err_));
    assert_int_equal(out.len, 3 + write_generic(&gv, ref, sizeof(ref)));
    assert_memory_equal(out.data + 3, ref, out.len - 3);

    kf_buf_free(&out);
    kf_buf_free(&copy);
    avro_value_decref(&gv);
    avro_value_iface_decref(iface);
    kf_codec_destroy(c);
    kf_codec_destroy(NULL);
    avro_schema_decref(schema);
    free(json);
    kf_table_destroy(t);
}

/* kfleet's own envelope and key: same bytes as avro-c for every op shape. */
static void envelope_matches_avro_c(void **state)
{
    (void)state;
    kf_error err;
    kf_table *t = all_types_table();
    char *json = kf_table_envelope_schema(t, &err);
    char *kjson = kf_table_key_schema(t, &err);
    assert_non_null(json);
    assert_non_null(kjson);
    avro_schema_t schema = parse(json), kschema = parse(kjson);
    kf_codec *c = kf_codec_new(schema, json, &err);
    kf_codec *kc = kf_codec_new(kschema, kjson, &err);
    assert_non_null(c);
    assert_non_null(kc);
    assert_true(kf_codec_is_envelope(c));
    assert_int_equal(kf_codec_nfields(c), NCOLS);
    assert_int_equal(kf_codec_nregs(c), KF_CODEC_REG_ROWS + 2 * NCOLS);
    assert_int_equal(kf_codec_row_reg(c, 1, 3), KF_CODEC_REG_ROWS + NCOLS + 3);
    kf_codec_reg info;
    OK(kf_codec_reg_info(c, KF_CODEC_REG_SOURCE + KF_SRC_LSN, &info));
    assert_true(info.bound && info.nullable);
    assert_string_equal(info.path, "source.lsn");
    OK(kf_codec_reg_info(c, KF_CODEC_REG_SOURCE + KF_SRC_VERSION, &info));
    assert_true(info.bound && !info.nullable);
    OK(kf_codec_reg_info(c, kf_codec_row_reg(c, 1, NTYPES), &info));
    assert_string_equal(info.path, "after.c0_null");

    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t gv;
    assert_int_equal(avro_generic_value_new(iface, &gv), 0);
    size_t nregs = kf_codec_nregs(c);
    kf_cell *regs = calloc(nregs, sizeof(*regs));
    kf_cell *back = calloc(nregs, sizeof(*back));
    assert_non_null(regs);
    assert_non_null(back);
    static const char *const ops[] = {"c", "u", "d", "r", "t"};
    kf_buf out = {0}, copy = {0};
    uint8_t ref[16384];
    for (int v = 0; v < 10; v++) {
        const char *op = ops[v % 5];
        for (size_t i = 0; i < nregs; i++)
            regs[i].kind = KF_CELL_NULL;
        bool has_before = op[0] == 'u' || op[0] == 'd';
        bool has_after = op[0] == 'c' || op[0] == 'u' || op[0] == 'r';
        regs[KF_CODEC_REG_BEFORE] =
            (kf_cell){.kind = has_before ? KF_CELL_BOOL : KF_CELL_NULL, .v.b = true};
        regs[KF_CODEC_REG_AFTER] =
            (kf_cell){.kind = has_after ? KF_CELL_BOOL : KF_CELL_NULL, .v.b = true};
        regs[KF_CODEC_REG_OP] = (kf_cell){.kind = KF_CELL_STRING, .v.s = {op, 1}};
        if (v % 3)
            regs[KF_CODEC_REG_TS_MS] = (kf_cell){.kind = KF_CELL_INT, .v.i = 1700000000000 + v};
        kf_cell *src = &regs[KF_CODEC_REG_SOURCE];
        src[KF_SRC_VERSION] = (kf_cell){.kind = KF_CELL_STRING, .v.s = {"0.1.0", 5}};
        src[KF_SRC_CONNECTOR] = (kf_cell){.kind = KF_CELL_STRING, .v.s = {"postgresql", 10}};
        src[KF_SRC_NAME] = (kf_cell){.kind = KF_CELL_STRING, .v.s = {"", 0}};
        src[KF_SRC_TS_MS] = (kf_cell){.kind = KF_CELL_INT, .v.i = -v};
        src[KF_SRC_DB] =
            (kf_cell){.kind = KF_CELL_STRING, .v.s = {kf_test_unicode, strlen(kf_test_unicode)}};
        if (v % 2)
            src[KF_SRC_SNAPSHOT] = (kf_cell){.kind = KF_CELL_STRING, .v.s = {"last", 4}};
        if (v % 4 == 1)
            src[KF_SRC_LSN] = (kf_cell){.kind = KF_CELL_INT, .v.i = INT64_MAX - v};
        for (size_t i = 0; i < NCOLS; i++) {
            regs[kf_codec_row_reg(c, 0, i)] = make_cell(t, i, v + 3, v % 2 == 0);
            regs[kf_codec_row_reg(c, 1, i)] = make_cell(t, i, v, false);
        }
        fill_envelope(&gv, c, regs);
        size_t n = write_generic(&gv, ref, sizeof(ref));
        out.len = 0;
        OK(kf_codec_encode(c, regs, &out, &err_));
        assert_int_equal(out.len, n);
        assert_memory_equal(out.data, ref, n);
        OK(kf_codec_decode(c, ref, n, 0, back, &copy, &err_));
        for (size_t i = 0; i < KF_CODEC_REG_ROWS; i++)
            assert_cell_equal(&back[i], &regs[i], false);
        for (int side = 0; side < 2; side++) {
            bool present = regs[side ? KF_CODEC_REG_AFTER : KF_CODEC_REG_BEFORE].kind != 0;
            for (size_t i = 0; i < NCOLS; i++) {
                kf_cell want = regs[kf_codec_row_reg(c, side, i)];
                if (!present)
                    want.kind = KF_CELL_NULL; /* the columns of a null image read as null */
                assert_cell_equal(&back[kf_codec_row_reg(c, side, i)], &want,
                                  kf_table_column(t, i)->type == KF_COL_FLOAT);
            }
        }
        /* the key: the primary-key columns in key order */
        kf_cell key[2] = {regs[kf_codec_row_reg(c, 1, 2)], regs[kf_codec_row_reg(c, 1, 0)]};
        avro_value_iface_t *kiface = avro_generic_class_from_schema(kschema);
        avro_value_t kv;
        assert_int_equal(avro_generic_value_new(kiface, &kv), 0);
        fill_record(&kv, key, 2);
        n = write_generic(&kv, ref, sizeof(ref));
        out.len = 0;
        OK(kf_codec_encode(kc, key, &out, &err_));
        assert_int_equal(out.len, n);
        assert_memory_equal(out.data, ref, n);
        avro_value_decref(&kv);
        avro_value_iface_decref(kiface);
    }
    /* encode errors name the field */
    regs[KF_CODEC_REG_AFTER].kind = KF_CELL_BOOL;
    regs[kf_codec_row_reg(c, 1, 0)].kind = KF_CELL_NULL;
    out.len = 7;
    assert_int_equal(kf_codec_encode(c, regs, &out, &err), KF_ERR_INVALID);
    assert_non_null(strstr(err.message, "\"after.c0\""));
    assert_non_null(strstr(err.message, "null is not allowed"));
    assert_int_equal(out.len, 7);
    regs[kf_codec_row_reg(c, 1, 0)] = (kf_cell){.kind = KF_CELL_STRING, .v.s = {"x", 1}};
    assert_int_equal(kf_codec_encode(c, regs, &out, &err), KF_ERR_INVALID);
    assert_non_null(strstr(err.message, "expected an integer, got a string"));
    regs[kf_codec_row_reg(c, 1, 0)] = (kf_cell){.kind = KF_CELL_INT, .v.i = 1};
    regs[kf_codec_row_reg(c, 1, 1)] = (kf_cell){.kind = KF_CELL_INT, .v.i = 1LL << 31};
    assert_int_equal(kf_codec_encode(c, regs, &out, &err), KF_ERR_INVALID);
    assert_non_null(strstr(err.message, "\"after.c1\""));
    assert_non_null(strstr(err.message, "out of range"));
    regs[kf_codec_row_reg(c, 1, 1)].v.i = 1;
    regs[KF_CODEC_REG_SOURCE + KF_SRC_VERSION].kind = KF_CELL_NULL;
    assert_int_equal(kf_codec_encode(c, regs, &out, &err), KF_ERR_INVALID);
    assert_non_null(strstr(err.message, "\"source.version\""));

    free(regs);
    free(back);
    kf_buf_free(&out);
    kf_buf_free(&copy);
    avro_value_decref(&gv);
    avro_value_iface_decref(iface);
    kf_codec_destroy(c);
    kf_codec_destroy(kc);
    avro_schema_decref(schema);
    avro_schema_decref(kschema);
    free(json);
    free(kjson);
    kf_table_destroy(t);
}

/* A Debezium-style envelope with extra fields of every Avro type: they are skipped when
 * decoding avro-c's bytes (whatever they hold) and written with their defaults. */
static const char EXTRAS[] =
    "{\"type\":\"record\",\"name\":\"Envelope\",\"namespace\":\"dbserver1.inv.customers\","
    "\"fields\":["
    "{\"name\":\"before\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"Value\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"int\"},{\"name\":\"email\",\"type\":[\"null\",\"string\"]}]}],"
    "\"default\":null},"
    "{\"name\":\"after\",\"type\":[\"null\",\"Value\"],\"default\":null},"
    "{\"name\":\"source\",\"type\":{\"type\":\"record\",\"name\":\"Source\",\"fields\":["
    "{\"name\":\"version\",\"type\":\"string\"},"
    "{\"name\":\"sequence\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"server_id\",\"type\":\"long\"},"
    "{\"name\":\"row\",\"type\":\"int\",\"default\":-3},"
    "{\"name\":\"db\",\"type\":\"string\"},"
    "{\"name\":\"lsn\",\"type\":\"string\"},"
    "{\"name\":\"snapshot\",\"type\":[{\"type\":\"string\"},\"null\"],\"default\":\"false\"}]}},"
    "{\"name\":\"op\",\"type\":\"string\"},"
    "{\"name\":\"ts_ms\",\"type\":[\"null\",\"long\"],\"default\":null},"
    "{\"name\":\"transaction\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"block\","
    "\"fields\":[{\"name\":\"id\",\"type\":\"string\"},"
    "{\"name\":\"total_order\",\"type\":\"long\"}]}],\"default\":null},"
    "{\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":\"Kind\",\"symbols\":[\"A\",\"B\","
    "\"C\"]},\"default\":\"B\"},"
    "{\"name\":\"tag\",\"type\":{\"type\":\"fixed\",\"name\":\"Tag\",\"size\":3},"
    "\"default\":\"a\\u00ffc\"},"
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"},\"default\":[\"x\","
    "\"yz\"]},"
    "{\"name\":\"attrs\",\"type\":{\"type\":\"map\",\"values\":[\"null\",\"double\"]},"
    "\"default\":{}},"
    "{\"name\":\"multi\",\"type\":[\"string\",\"long\",\"null\"],\"default\":\"m\"},"
    "{\"name\":\"weight\",\"type\":\"float\",\"default\":1.5},"
    "{\"name\":\"raw\",\"type\":\"bytes\",\"default\":\"\\u0001\\u0002\"},"
    "{\"name\":\"ok\",\"type\":\"boolean\"},"
    "{\"name\":\"tree\",\"type\":{\"type\":\"record\",\"name\":\"Node\",\"fields\":["
    "{\"name\":\"label\",\"type\":\"string\",\"default\":\"root\"},"
    "{\"name\":\"next\",\"type\":[\"null\",\"Node\"],\"default\":null}]}},"
    "{\"name\":\"ts_us\",\"type\":[\"null\",\"long\"],\"default\":null}]}";

static void set_by_name(avro_value_t *rec, const char *name, avro_value_t *out)
{
    if (avro_value_get_by_name(rec, name, out, NULL) != 0)
        fail_msg("no field %s", name);
}

static void debezium_extras_are_skipped_and_defaulted(void **state)
{
    (void)state;
    kf_error err;
    avro_schema_t schema = parse(EXTRAS);
    kf_codec *c = kf_codec_new(schema, EXTRAS, &err);
    if (!c)
        fail_msg("%s", err.message);
    assert_true(kf_codec_is_envelope(c));
    assert_int_equal(kf_codec_nfields(c), 2);
    kf_codec_reg info;
    OK(kf_codec_reg_info(c, KF_CODEC_REG_SOURCE + KF_SRC_LSN, &info));
    assert_false(info.bound); /* a string lsn is not the expected type: skipped */
    OK(kf_codec_reg_info(c, KF_CODEC_REG_SOURCE + KF_SRC_TABLE, &info));
    assert_false(info.bound);

    size_t nregs = kf_codec_nregs(c);
    kf_cell *regs = calloc(nregs, sizeof(*regs));
    kf_cell *back = calloc(nregs, sizeof(*back));
    assert_non_null(regs);
    assert_non_null(back);
    regs[KF_CODEC_REG_BEFORE].kind = KF_CELL_NULL;
    regs[KF_CODEC_REG_AFTER] = (kf_cell){.kind = KF_CELL_BOOL, .v.b = true};
    regs[KF_CODEC_REG_OP] = (kf_cell){.kind = KF_CELL_STRING, .v.s = {"c", 1}};
    regs[KF_CODEC_REG_TS_MS] = (kf_cell){.kind = KF_CELL_INT, .v.i = 42};
    regs[KF_CODEC_REG_SOURCE + KF_SRC_VERSION] =
        (kf_cell){.kind = KF_CELL_STRING, .v.s = {"2.7", 3}};
    regs[KF_CODEC_REG_SOURCE + KF_SRC_DB] = (kf_cell){.kind = KF_CELL_STRING, .v.s = {"inv", 3}};
    regs[KF_CODEC_REG_SOURCE + KF_SRC_SNAPSHOT] =
        (kf_cell){.kind = KF_CELL_STRING, .v.s = {"true", 4}};
    regs[kf_codec_row_reg(c, 1, 0)] = (kf_cell){.kind = KF_CELL_INT, .v.i = 1001};
    regs[kf_codec_row_reg(c, 1, 1)] = (kf_cell){.kind = KF_CELL_STRING, .v.s = {"s@x.org", 7}};

    /* the same event through avro-c, the extras set to their defaults by hand */
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t gv, f, b, item;
    assert_int_equal(avro_generic_value_new(iface, &gv), 0);
    fill_envelope(&gv, c, regs);
    set_by_name(&gv, "source", &f);
    set_by_name(&f, "row", &b);
    avro_value_set_int(&b, -3);
    set_by_name(&gv, "kind", &f);
    avro_value_set_enum(&f, 1);
    set_by_name(&gv, "tag", &f);
    avro_value_set_fixed(&f,
                         "a\xff"
                         "c",
                         3);
    set_by_name(&gv, "tags", &f);
    avro_value_append(&f, &item, NULL);
    avro_value_set_string(&item, "x");
    avro_value_append(&f, &item, NULL);
    avro_value_set_string(&item, "yz");
    set_by_name(&gv, "multi", &f);
    avro_value_set_branch(&f, 0, &b);
    avro_value_set_string(&b, "m");
    set_by_name(&gv, "weight", &f);
    avro_value_set_float(&f, 1.5f);
    set_by_name(&gv, "raw", &f);
    avro_value_set_bytes(&f, "\x01\x02", 2);
    set_by_name(&gv, "tree", &f);
    set_by_name(&f, "label", &b);
    avro_value_set_string(&b, "root");
    set_by_name(&f, "next", &b);
    avro_value_set_branch(&b, 0, NULL);
    uint8_t ref[4096];
    size_t n = write_generic(&gv, ref, sizeof(ref));
    kf_buf out = {0};
    OK(kf_codec_encode(c, regs, &out, &err_));
    assert_int_equal(out.len, n);
    assert_memory_equal(out.data, ref, n);

    /* now the extras hold other values: the codec skips them and reads the rest */
    set_by_name(&gv, "transaction", &f);
    avro_value_set_branch(&f, 1, &b);
    set_by_name(&b, "id", &item);
    avro_value_set_string(&item, "tx-77");
    set_by_name(&gv, "source", &f);
    set_by_name(&f, "sequence", &b);
    avro_value_set_branch(&b, 1, &item);
    avro_value_set_string(&item, "[\"1\",\"2\"]");
    set_by_name(&f, "lsn", &b);
    avro_value_set_string(&b, "0/16B3748");
    set_by_name(&gv, "kind", &f);
    avro_value_set_enum(&f, 2);
    set_by_name(&gv, "tags", &f);
    for (int i = 0; i < 50; i++) {
        avro_value_append(&f, &item, NULL);
        avro_value_set_string(&item, "tag");
    }
    set_by_name(&gv, "attrs", &f);
    avro_value_add(&f, "k1", &b, NULL, NULL);
    avro_value_set_branch(&b, 1, &item);
    avro_value_set_double(&item, 2.5);
    avro_value_add(&f, "k2", &b, NULL, NULL);
    avro_value_set_branch(&b, 0, NULL);
    set_by_name(&gv, "multi", &f);
    avro_value_set_branch(&f, 1, &b);
    avro_value_set_long(&b, -9);
    set_by_name(&gv, "tree", &f);
    set_by_name(&f, "next", &b);
    avro_value_set_branch(&b, 1, &item);
    set_by_name(&item, "next", &b);
    avro_value_set_branch(&b, 1, &f);
    set_by_name(&f, "label", &b);
    avro_value_set_string(&b, "leaf");
    set_by_name(&f, "next", &b);
    avro_value_set_branch(&b, 0, NULL);
    n = write_generic(&gv, ref, sizeof(ref));
    OK(kf_codec_decode(c, ref, n, 5, back, NULL, &err_));
    assert_int_equal(back[KF_CODEC_REG_BEFORE].kind, KF_CELL_NULL);
    assert_int_equal(back[KF_CODEC_REG_AFTER].kind, KF_CELL_BOOL);
    assert_int_equal(back[KF_CODEC_REG_TS_MS].v.i, 42);
    assert_int_equal(back[KF_CODEC_REG_SOURCE + KF_SRC_LSN].kind, KF_CELL_NULL);
    assert_int_equal(back[KF_CODEC_REG_SOURCE + KF_SRC_SEQ].kind, KF_CELL_NULL);
    assert_int_equal(back[KF_CODEC_REG_SOURCE + KF_SRC_SNAPSHOT].v.s.len, 4);
    assert_int_equal(back[kf_codec_row_reg(c, 1, 0)].v.i, 1001);
    assert_memory_equal(back[kf_codec_row_reg(c, 1, 1)].v.s.ptr, "s@x.org", 7);
    /* a bad index in the general union of an extra field is reported with its path */
    size_t at = 0;
    while (at + 1 < n && !(ref[at] == 2 && ref[at + 1] == 0x11)) /* multi: branch 1, -9 */
        at++;
    assert_true(at + 1 < n);
    ref[at] = 6;
    assert_int_equal(kf_codec_decode(c, ref, n, 5, back, NULL, &err), KF_ERR_DECODE);
    assert_non_null(strstr(err.message, "\"multi\""));
    assert_non_null(strstr(err.message, "union index 3 out of range"));
    char where[32];
    snprintf(where, sizeof(where), "at byte %zu", at + 5);
    assert_non_null(strstr(err.message, where));

    kf_buf_free(&out);
    free(regs);
    free(back);
    avro_value_decref(&gv);
    avro_value_iface_decref(iface);
    kf_codec_destroy(c);
    avro_schema_decref(schema);
}

static void decode_errors_are_precise(void **state)
{
    (void)state;
    kf_error err;
    kf_table *t = all_types_table();
    char *json = kf_table_envelope_schema(t, &err);
    avro_schema_t schema = parse(json);
    kf_codec *c = kf_codec_new(schema, json, &err);
    assert_non_null(c);
    size_t nregs = kf_codec_nregs(c);
    kf_cell *regs = calloc(nregs, sizeof(*regs));
    assert_non_null(regs);
    regs[KF_CODEC_REG_BEFORE] = (kf_cell){.kind = KF_CELL_BOOL, .v.b = true};
    regs[KF_CODEC_REG_AFTER] = (kf_cell){.kind = KF_CELL_BOOL, .v.b = true};
    regs[KF_CODEC_REG_OP] = (kf_cell){.kind = KF_CELL_STRING, .v.s = {"u", 1}};
    kf_cell *src = &regs[KF_CODEC_REG_SOURCE];
    for (int s = 0; s < KF_SRC_COUNT; s++)
        src[s].kind = KF_CELL_NULL;
    src[KF_SRC_VERSION] = src[KF_SRC_CONNECTOR] = src[KF_SRC_NAME] = src[KF_SRC_DB] =
        (kf_cell){.kind = KF_CELL_STRING, .v.s = {"v", 1}};
    src[KF_SRC_TS_MS] = (kf_cell){.kind = KF_CELL_INT, .v.i = 1};
    for (size_t i = 0; i < NCOLS; i++) {
        regs[kf_codec_row_reg(c, 0, i)] = make_cell(t, i, 1, false);
        regs[kf_codec_row_reg(c, 1, i)] = make_cell(t, i, 2, false);
    }
    kf_buf msg = {0}, copy = {0};
    OK(kf_codec_encode(c, regs, &msg, &err_));
    kf_cell *back = calloc(nregs, sizeof(*back));
    assert_non_null(back);
    OK(kf_codec_decode(c, msg.data, msg.len, 0, back, &copy, &err_));

    /* every proper prefix is truncated, and says where */
    for (size_t n = 0; n < msg.len; n++) {
        int rc = kf_codec_decode(c, msg.data, n, 5, back, n % 2 ? &copy : NULL, &err);
        if (rc != KF_ERR_DECODE)
            fail_msg("prefix of %zu bytes: %d", n, rc);
        assert_non_null(strstr(err.message, "at byte"));
        assert_non_null(strstr(err.message, "could not decode"));
    }
    assert_int_equal(kf_codec_decode(c, NULL, 0, 0, back, NULL, &err), KF_ERR_DECODE);

    /* trailing bytes */
    kf_buf_reserve(&msg, msg.len + 1);
    msg.data[msg.len] = 0;
    assert_int_equal(kf_codec_decode(c, msg.data, msg.len + 1, 5, back, NULL, &err), KF_ERR_DECODE);
    assert_non_null(strstr(err.message, "1 trailing bytes"));

    /* a bad union index on the before image, the first byte */
    uint8_t saved = msg.data[0];
    msg.data[0] = 4; /* index 2 */
    assert_int_equal(kf_codec_decode(c, msg.data, msg.len, 5, back, NULL, &err), KF_ERR_DECODE);
    assert_non_null(strstr(err.message, "\"before\" at byte 5"));
    assert_non_null(strstr(err.message, "union index 2 out of range"));
    msg.data[0] = 3; /* index -2 */
    assert_int_equal(kf_codec_decode(c, msg.data, msg.len, 0, back, NULL, &err), KF_ERR_DECODE);
    assert_non_null(strstr(err.message, "union index -2"));
    msg.data[0] = saved;

    /* a plain record to place bad values where wanted: an int, a string, a boolean */
    static const char REC[] = "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                              "{\"name\":\"n\",\"type\":\"int\"},"
                              "{\"name\":\"s\",\"type\":[\"null\",\"string\"]},"
                              "{\"name\":\"b\",\"type\":\"boolean\"}]}";
    avro_schema_t rs = parse(REC);
    kf_codec *rc = kf_codec_new(rs, REC, &err);
    assert_non_null(rc);
    kf_cell cells[3];
    static const struct {
        const char *bytes;
        size_t len;
        const char *want;
    } bad[] = {
        {"\x02\x02\x08", 3, "string length 4 exceeds the 0 remaining bytes"},
        {"\x02\x02\xfe\xff\xff\xff\x0f"
         "ab\x00",
         10, "\"s\" at byte 2: string length 2147483647 exceeds the 3 remaining"},
        {"\x02\x02\x01", 3, "negative string length -1"},
        {"\x02\x04\x00\x00", 4, "union index 2 out of range"},
        {"\x02\x00\x02", 3, "\"b\" at byte 2: invalid boolean byte 2"},
        {"\x81\x80\x80\x80\x10\x00\x00", 7, "int -2147483649 out of range"},
        {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f\x00\x00", 12, "varint too long"},
        {"\x80\x80", 2, "truncated varint"},
        {"\x02\x00", 2, "truncated boolean"},
        {"\x02\x00\x01\x00", 4, "1 trailing bytes at byte 3"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int got =
            kf_codec_decode(rc, (const uint8_t *)bad[i].bytes, bad[i].len, 0, cells, NULL, &err);
        if (got != KF_ERR_DECODE || !strstr(err.message, bad[i].want))
            fail_msg("case %zu: rc %d, message \"%s\", want \"%s\"", i, got, err.message,
                     bad[i].want);
    }
    /* and a good one, with a redundant (non-canonical) varint that avro-c also accepts */
    OK(kf_codec_decode(rc, (const uint8_t *)"\x82\x00\x02\x02z\x01", 6, 0, cells, NULL, &err_));
    assert_int_equal(cells[0].v.i, 1);
    assert_int_equal(cells[1].v.s.len, 1);
    assert_true(cells[2].v.b);

    kf_codec_destroy(rc);
    avro_schema_decref(rs);
    free(regs);
    free(back);
    kf_buf_free(&msg);
    kf_buf_free(&copy);
    kf_codec_destroy(c);
    avro_schema_decref(schema);
    free(json);
    kf_table_destroy(t);
}

static void compile_errors(void **state)
{
    (void)state;
    kf_error err;
    static const struct {
        const char *json;
        const char *want;
    } cases[] = {
        {"\"string\"", "not an Avro record"},
        {"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":{\"type\":"
         "\"array\",\"items\":\"int\"}}]}",
         "\"a\""},
        {"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"u\",\"type\":[\"int\","
         "\"string\"]}]}",
         "\"u\""},
        {"{\"type\":\"record\",\"name\":\"E\",\"fields\":[{\"name\":\"before\",\"type\":[\"null\","
         "{\"type\":\"record\",\"name\":\"V\",\"fields\":[{\"name\":\"x\",\"type\":\"int\"}]}]},"
         "{\"name\":\"after\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"W\",\"fields\":"
         "[{\"name\":\"x\",\"type\":\"long\"}]}]},{\"name\":\"op\",\"type\":\"string\"}]}",
         "before and after"},
        {"{\"type\":\"record\",\"name\":\"E\",\"fields\":[{\"name\":\"before\",\"type\":\"int\"},"
         "{\"name\":\"after\",\"type\":\"int\"},{\"name\":\"op\",\"type\":\"string\"}]}",
         "before and after"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        avro_schema_t s = parse(cases[i].json);
        kf_error_clear(&err);
        assert_null(kf_codec_new(s, cases[i].json, &err));
        assert_int_equal(err.code, KF_ERR_INVALID);
        if (!strstr(err.message, cases[i].want))
            fail_msg("case %zu: \"%s\"", i, err.message);
        avro_schema_decref(s);
    }
}

/* The serde compiles once per id and remembers a failure. */
static void serde_caches_programs(void **state)
{
    (void)state;
    kf_error err;
    kf_serde *s = kf_serde_new(NULL, &err);
    assert_non_null(s);
    OK(kf_serde_add_schema(s, 5, EXTRAS, &err_));
    OK(kf_serde_add_schema(
        s, 6,
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"m\",\"type\":{\"type\":"
        "\"map\",\"values\":\"int\"}}]}",
        &err_));
    const kf_codec *a, *b;
    OK(kf_serde_codec(s, 5, &a, &err_));
    OK(kf_serde_codec(s, 5, &b, &err_));
    assert_ptr_equal(a, b);
    assert_int_equal(kf_serde_codec(s, 6, &a, &err), KF_ERR_INVALID);
    assert_non_null(strstr(err.message, "schema id 6"));
    kf_error_clear(&err);
    assert_int_equal(kf_serde_codec(s, 6, &a, &err), KF_ERR_INVALID);
    assert_non_null(strstr(err.message, "\"m\""));
    assert_int_equal(kf_serde_codec(s, 7, &a, &err), KF_ERR_NOT_FOUND);
    kf_serde_destroy(s);
}

/* Writer and reader over a c/u/u/d stream: after the first rounds, not one allocation. The
 * decoded events equal what was written, and the generic value still works on demand. */
static void mixed_ops_allocate_nothing(void **state)
{
    (void)state;
    kf_error err;
    kf_table *t = all_types_table();
    kf_serde *serde = kf_serde_new(NULL, &err);
    assert_non_null(serde);
    OK(kf_test_serde_add_table(serde, t, 1, 2, &err_));
    kf_event_writer *w = kf_event_writer_new(serde, t, 1, 2, &err);
    kf_event_reader *r = kf_event_reader_new(serde, &err);
    assert_non_null(w);
    assert_non_null(r);
    kf_buf key = {0}, value = {0};
    static const kf_op ops[] = {KF_OP_CREATE, KF_OP_UPDATE, KF_OP_UPDATE, KF_OP_DELETE};
    unsigned long long allocs = 0, warm = 0;
    for (int i = 0; i < 400; i++) {
        kf_op op = ops[i % 4];
        kf_source src = {.version = "0.1.0",
                         .connector = "sim",
                         .name = "kfleet",
                         .ts_ms = 1700000000000 + i,
                         .snapshot = i % 3 ? "false" : NULL,
                         .db = "shop",
                         .has_seq = true,
                         .seq = i};
        unsigned long long a0 = kf_test_allocs;
        OK(kf_event_writer_set_source(w, &src, &err_));
        OK(kf_event_writer_begin(w, op, i % 5 ? 1700000000000 + i : -1, &err_));
        for (int side = 0; side < 2; side++) {
            if ((side == KF_BEFORE && op == KF_OP_CREATE) ||
                (side == KF_AFTER && op == KF_OP_DELETE))
                continue;
            for (size_t c = 0; c < NCOLS; c++) {
                kf_cell cell = make_cell(t, c, i + side, (i + side) % 3 == 0);
                OK(kf_event_set_cell(w, (kf_side)side, c, &cell, &err_));
            }
        }
        OK(kf_event_writer_encode(w, &key, &value, &err_));
        kf_event ev;
        OK(kf_event_reader_decode(r, value.data, value.len, &ev, &err_));
        const kf_table *kt;
        const kf_cell *kcells;
        OK(kf_event_reader_decode_key(r, key.data, key.len, &kt, &kcells, &err_));
        if (i >= 200)
            allocs += kf_test_allocs - a0;
        else
            warm += kf_test_allocs - a0;
        assert_int_equal(ev.op, op);
        assert_int_equal(ev.source.seq, i);
        assert_int_equal(ev.has_ts_ms, i % 5 != 0);
        const kf_cell *row = op == KF_OP_DELETE ? ev.before : ev.after;
        int variant = op == KF_OP_DELETE ? i : i + 1;
        assert_non_null(row);
        assert_true(op == KF_OP_UPDATE ? ev.before != NULL : true);
        for (size_t c = 0; c < NCOLS; c++) {
            kf_cell want = make_cell(t, c, variant, variant % 3 == 0);
            assert_cell_equal(&row[c], &want, kf_table_column(t, c)->type == KF_COL_FLOAT);
        }
        assert_int_equal(kcells[0].v.i, row[2].v.i);
        assert_int_equal(kcells[1].v.i, row[0].v.i);
        if (i == 399) {
            /* the generic value is decoded on first use */
            avro_value_t f, b;
            const char *opstr;
            size_t sz;
            assert_int_equal(avro_value_get_type(ev.value), AVRO_RECORD);
            assert_int_equal(avro_value_get_by_name(ev.value, "op", &f, NULL), 0);
            assert_int_equal(avro_value_get_string(&f, &opstr, &sz), 0);
            assert_string_equal(opstr, "d");
            assert_int_equal(avro_value_get_by_name(ev.value, "after", &f, NULL), 0);
            assert_int_equal(avro_value_get_current_branch(&f, &b), 0);
            assert_int_equal(avro_value_get_type(&b), AVRO_NULL);
            size_t n = 0;
            assert_int_equal(avro_value_get_size(ev.value, &n), 0);
            assert_int_equal(n, 5);
        }
    }
    assert_true(warm > 0); /* the counter sees the buffers grow at first */
    assert_int_equal(allocs, 0);
    kf_buf_free(&key);
    kf_buf_free(&value);
    kf_event_writer_destroy(w);
    kf_event_reader_destroy(r);
    kf_serde_destroy(serde);
    kf_table_destroy(t);
}

/* The change-event reader reports codec errors with the field, the byte offset in the framed
 * message and the schema id. */
static void reader_reports_where(void **state)
{
    (void)state;
    kf_error err;
    kf_serde *serde = kf_serde_new(NULL, &err);
    OK(kf_serde_add_schema(serde, 9, EXTRAS, &err_));
    kf_event_reader *r = kf_event_reader_new(serde, &err);
    assert_non_null(r);
    /* before null, after present, id 1, email: union index 1, length 100 but nothing follows */
    static const uint8_t msg[] = {0, 0, 0, 0, 9, 0x00, 0x02, 0x02, 0x02, 0xc8, 0x01};
    kf_event ev;
    assert_int_equal(kf_event_reader_decode(r, msg, sizeof(msg), &ev, &err), KF_ERR_DECODE);
    assert_non_null(strstr(err.message, "\"after.email\" at byte 9"));
    assert_non_null(strstr(err.message, "string length 100 exceeds the 0 remaining bytes"));
    assert_non_null(strstr(err.message, "schema id 9"));
    kf_event_reader_destroy(r);
    kf_serde_destroy(serde);
}

int main(void)
{
    memset(long_text, 'x', sizeof(long_text) - 1);
    for (size_t i = 0; i < sizeof(long_text) - 1; i += 7)
        long_text[i] = (char)('a' + i % 26);
    kf_test_alloc_start();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(value_record_matches_avro_c),
        cmocka_unit_test(envelope_matches_avro_c),
        cmocka_unit_test(debezium_extras_are_skipped_and_defaulted),
        cmocka_unit_test(decode_errors_are_precise),
        cmocka_unit_test(compile_errors),
        cmocka_unit_test(serde_caches_programs),
        cmocka_unit_test(mixed_ops_allocate_nothing),
        cmocka_unit_test(reader_reports_where),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
