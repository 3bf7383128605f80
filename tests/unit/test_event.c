/* Unit tests for change events: insert/update/delete/truncate round trips through the wire
 * format for every column type, tombstones, Debezium-shaped envelopes, decimals, and errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "kf_test_table.h"
#include "kfleet/event.h"

enum {
    C_TENANT,
    C_ID,
    C_QTY,
    C_RATIO,
    C_SCORE,
    C_PRICE,
    C_ACTIVE,
    C_NOTE,
    C_SKU,
    C_BLOB,
    C_BORN,
    C_SEEN,
    C_AT,
    C_UID,
    C_DOC,
    C_UNIT,
    NCOLS
};

#define KEY_ID   11
#define VALUE_ID 12

typedef struct fixture {
    kf_table *t;
    kf_serde *serde;
    kf_event_writer *w;
    kf_event_reader *r;
    kf_buf key, value;
} fixture;

static kf_table *all_types_table(void)
{
    static const kf_test_column spec[NCOLS] = {
        {"tenant", "smallint", false, 2}, {"id", "bigint", false, 1},
        {"qty", "int", true, 0},          {"ratio", "real", true, 0},
        {"score", "double", true, 0},     {"price", "numeric(12,3)", true, 0},
        {"active", "boolean", false, 0},  {"note", "text", true, 0},
        {"sku", "varchar(32)", false, 0}, {"blob", "bytea", true, 0},
        {"born", "date", true, 0},        {"seen", "timestamp", true, 0},
        {"at", "timestamptz", true, 0},   {"uid", "uuid", true, 0},
        {"doc", "jsonb", true, 0},        {"Unit Price", "decimal(5,2)", true, 0},
    };
    kf_error err;
    kf_table *t = kf_test_table_new("kfleet", "shop", "public", "orders", spec, NCOLS, &err);
    if (!t)
        fail_msg("%s", err.message);
    return t;
}

static const kf_source SOURCE = {
    .version = "0.1.0",
    .connector = "postgresql",
    .name = "kfleet",
    .ts_ms = 1700000000123,
    .snapshot = "false",
    .db = "shop",
    .schema = "public",
    .table = "orders",
    .has_lsn = true,
    .lsn = 987654321,
    .has_txid = true,
    .txid = 4242,
};

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    kf_error err;
    if (!fx)
        return -1;
    fx->t = all_types_table();
    fx->serde = kf_serde_new(NULL, &err);
    if (!fx->serde || kf_test_serde_add_table(fx->serde, fx->t, KEY_ID, VALUE_ID, &err) != KF_OK)
        return -1;
    fx->w = kf_event_writer_new(fx->serde, fx->t, KEY_ID, VALUE_ID, &err);
    fx->r = kf_event_reader_new(fx->serde, &err);
    if (!fx->w || !fx->r)
        return -1;
    if (kf_event_writer_set_source(fx->w, &SOURCE, &err) != KF_OK)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    kf_event_writer_destroy(fx->w);
    kf_event_reader_destroy(fx->r);
    kf_serde_destroy(fx->serde);
    kf_table_destroy(fx->t);
    kf_buf_free(&fx->key);
    kf_buf_free(&fx->value);
    free(fx);
    return 0;
}

/* Sets every column of one image; variant changes the values, nulls sets nullables to null. */
static void fill_row(kf_event_writer *w, kf_side side, int variant, bool nulls)
{
    kf_error err;
    OK(kf_event_set_int(w, side, C_TENANT, -7, &err_));
    OK(kf_event_set_int(w, side, C_ID, 9000000000LL, &err_));
    OK(kf_event_set_bool(w, side, C_ACTIVE, variant % 2 == 0, &err_));
    OK(kf_event_set_string(w, side, C_SKU, "SKU-1", 5, &err_));
    if (nulls) {
        size_t nullable[] = {C_QTY,  C_RATIO, C_SCORE, C_PRICE, C_NOTE, C_BLOB,
                             C_BORN, C_SEEN,  C_AT,    C_UID,   C_DOC,  C_UNIT};
        for (size_t i = 0; i < sizeof(nullable) / sizeof(nullable[0]); i++)
            assert_int_equal(kf_event_set_null(w, side, nullable[i], &err), KF_OK);
        return;
    }
    OK(kf_event_set_int(w, side, C_QTY, 2147483647, &err_));
    OK(kf_event_set_double(w, side, C_RATIO, 0.5, &err_));
    OK(kf_event_set_double(w, side, C_SCORE, -1.0e-300 * variant, &err_));
    OK(kf_event_set_string(w, side, C_PRICE, variant ? "-123456789.125" : "0.5", variant ? 14 : 3,
                           &err_));
    OK(kf_event_set_string(w, side, C_NOTE, kf_test_unicode, strlen(kf_test_unicode), &err_));
    OK(kf_event_set_bytes(w, side, C_BLOB, "\x00\xff\x00", 3, &err_));
    OK(kf_event_set_int(w, side, C_BORN, -3653, &err_)); /* 1960-01-01 */
    OK(kf_event_set_int(w, side, C_SEEN, 1700000000123456LL, &err_));
    OK(kf_event_set_string(w, side, C_AT, "2023-11-14T22:13:20.123456+01:00", 32, &err_));
    OK(kf_event_set_string(w, side, C_UID, "6f1c1a52-8d4b-4c3e-9a57-2f1e0b1d9c11", 36, &err_));
    OK(kf_event_set_string(w, side, C_DOC, "{\"a\":[1,2]}", 11, &err_));
    OK(kf_event_set_string(w, side, C_UNIT, "999.99", 6, &err_));
}

static void assert_str_cell(const kf_cell *c, const char *want)
{
    assert_int_equal(c->kind, KF_CELL_STRING);
    assert_int_equal(c->v.s.len, strlen(want));
    assert_memory_equal(c->v.s.ptr, want, c->v.s.len);
    assert_int_equal(c->v.s.ptr[c->v.s.len], '\0');
}

static void assert_decimal_cell(const kf_cell *c, int scale, const char *want)
{
    char text[64];
    kf_error err;
    assert_int_equal(c->kind, KF_CELL_BYTES);
    assert_int_equal(
        kf_decimal_format((const uint8_t *)c->v.s.ptr, c->v.s.len, scale, text, sizeof(text), &err),
        KF_OK);
    assert_string_equal(text, want);
}

static void assert_row(const kf_cell *row, int variant, bool nulls)
{
    assert_non_null(row);
    assert_int_equal(row[C_TENANT].kind, KF_CELL_INT);
    assert_int_equal(row[C_TENANT].v.i, -7);
    assert_int_equal(row[C_ID].v.i, 9000000000LL);
    assert_int_equal(row[C_ACTIVE].kind, KF_CELL_BOOL);
    assert_int_equal(row[C_ACTIVE].v.b, variant % 2 == 0);
    assert_str_cell(&row[C_SKU], "SKU-1");
    if (nulls) {
        for (size_t c = 0; c < NCOLS; c++)
            if (c != C_TENANT && c != C_ID && c != C_ACTIVE && c != C_SKU)
                assert_int_equal(row[c].kind, KF_CELL_NULL);
        return;
    }
    assert_int_equal(row[C_QTY].v.i, 2147483647);
    assert_int_equal(row[C_RATIO].kind, KF_CELL_DOUBLE);
    assert_true(row[C_RATIO].v.d == 0.5);
    assert_true(row[C_SCORE].v.d == -1.0e-300 * variant);
    assert_decimal_cell(&row[C_PRICE], 3, variant ? "-123456789.125" : "0.500");
    assert_str_cell(&row[C_NOTE], kf_test_unicode);
    assert_int_equal(row[C_BLOB].kind, KF_CELL_BYTES);
    assert_int_equal(row[C_BLOB].v.s.len, 3);
    assert_memory_equal(row[C_BLOB].v.s.ptr, "\x00\xff\x00", 3);
    assert_int_equal(row[C_BORN].v.i, -3653);
    assert_int_equal(row[C_SEEN].v.i, 1700000000123456LL);
    assert_str_cell(&row[C_AT], "2023-11-14T22:13:20.123456+01:00");
    assert_str_cell(&row[C_UID], "6f1c1a52-8d4b-4c3e-9a57-2f1e0b1d9c11");
    assert_str_cell(&row[C_DOC], "{\"a\":[1,2]}");
    assert_decimal_cell(&row[C_UNIT], 2, "999.99");
}

static void assert_source(const kf_source *s)
{
    assert_string_equal(s->version, "0.1.0");
    assert_string_equal(s->connector, "postgresql");
    assert_string_equal(s->name, "kfleet");
    assert_int_equal(s->ts_ms, 1700000000123);
    assert_string_equal(s->snapshot, "false");
    assert_string_equal(s->db, "shop");
    assert_string_equal(s->schema, "public");
    assert_string_equal(s->table, "orders");
    assert_true(s->has_lsn);
    assert_int_equal(s->lsn, 987654321);
    assert_true(s->has_txid);
    assert_int_equal(s->txid, 4242);
    assert_false(s->has_pos);
    assert_false(s->has_seq);
    assert_null(s->file);
    assert_null(s->gtid);
    assert_null(s->resume_token);
}

static void assert_key(fixture *fx)
{
    const kf_table *kt;
    const kf_cell *cells;
    OK(kf_event_reader_decode_key(fx->r, fx->key.data, fx->key.len, &kt, &cells, &err_));
    assert_int_equal(kf_table_ncolumns(kt), 2);
    assert_string_equal(kf_table_column(kt, 0)->name, "id");
    assert_string_equal(kf_table_column(kt, 1)->name, "tenant");
    assert_int_equal(cells[0].v.i, 9000000000LL);
    assert_int_equal(cells[1].v.i, -7);
}

static void insert_round_trip(void **state)
{
    fixture *fx = *state;
    kf_event ev;
    OK(kf_event_writer_begin(fx->w, KF_OP_CREATE, 1700000000999, &err_));
    fill_row(fx->w, KF_AFTER, 1, false);
    OK(kf_event_writer_encode(fx->w, &fx->key, &fx->value, &err_));
    assert_int_equal(fx->value.data[0], 0);
    assert_memory_equal(fx->value.data + 1, "\x00\x00\x00\x0c", 4);
    assert_memory_equal(fx->key.data + 1, "\x00\x00\x00\x0b", 4);
    OK(kf_event_reader_decode(fx->r, fx->value.data, fx->value.len, &ev, &err_));
    assert_int_equal(ev.op, KF_OP_CREATE);
    assert_int_equal(ev.schema_id, VALUE_ID);
    assert_true(ev.has_ts_ms);
    assert_int_equal(ev.ts_ms, 1700000000999);
    assert_null(ev.before);
    assert_int_equal(ev.ncols, NCOLS);
    assert_row(ev.after, 1, false);
    assert_source(&ev.source);
    assert_non_null(ev.value);
    assert_string_equal(kf_table_column(ev.table, C_UNIT)->name, "Unit Price");
    assert_int_equal(kf_table_column(ev.table, C_PRICE)->scale, 3);
    assert_key(fx);
}

static void update_round_trip_with_nulls(void **state)
{
    fixture *fx = *state;
    kf_event ev;
    /* same writer, several events: values from earlier events never leak into later ones */
    for (int round = 0; round < 3; round++) {
        OK(kf_event_writer_begin(fx->w, KF_OP_UPDATE, -1, &err_));
        fill_row(fx->w, KF_BEFORE, round, true);
        fill_row(fx->w, KF_AFTER, round, false);
        OK(kf_event_writer_encode(fx->w, &fx->key, &fx->value, &err_));
        OK(kf_event_reader_decode(fx->r, fx->value.data, fx->value.len, &ev, &err_));
        assert_int_equal(ev.op, KF_OP_UPDATE);
        assert_false(ev.has_ts_ms);
        assert_row(ev.before, round, true);
        assert_row(ev.after, round, false);
    }
    /* nullable columns left unset are null */
    kf_error err;
    OK(kf_event_writer_begin(fx->w, KF_OP_READ, 5, &err_));
    assert_int_equal(kf_event_set_int(fx->w, KF_AFTER, C_TENANT, -7, &err), KF_OK);
    assert_int_equal(kf_event_set_int(fx->w, KF_AFTER, C_ID, 9000000000LL, &err), KF_OK);
    assert_int_equal(kf_event_set_bool(fx->w, KF_AFTER, C_ACTIVE, true, &err), KF_OK);
    assert_int_equal(kf_event_set_string(fx->w, KF_AFTER, C_SKU, "SKU-1", 5, &err), KF_OK);
    OK(kf_event_writer_encode(fx->w, &fx->key, &fx->value, &err_));
    OK(kf_event_reader_decode(fx->r, fx->value.data, fx->value.len, &ev, &err_));
    assert_int_equal(ev.op, KF_OP_READ);
    assert_null(ev.before);
    assert_row(ev.after, 0, true);
}

static void delete_then_tombstone(void **state)
{
    fixture *fx = *state;
    kf_event ev;
    kf_buf tomb = {0};
    OK(kf_event_writer_begin(fx->w, KF_OP_DELETE, 77, &err_));
    fill_row(fx->w, KF_BEFORE, 2, false);
    OK(kf_event_writer_encode(fx->w, &fx->key, &fx->value, &err_));
    OK(kf_event_writer_tombstone(fx->w, &tomb, &err_));
    assert_int_equal(tomb.len, fx->key.len);
    assert_memory_equal(tomb.data, fx->key.data, tomb.len);
    OK(kf_event_reader_decode(fx->r, fx->value.data, fx->value.len, &ev, &err_));
    assert_int_equal(ev.op, KF_OP_DELETE);
    assert_row(ev.before, 2, false);
    assert_null(ev.after);
    assert_key(fx);
    /* the tombstone itself: a NULL Kafka value */
    OK(kf_event_reader_decode(fx->r, NULL, 0, &ev, &err_));
    assert_int_equal(ev.op, KF_OP_TOMBSTONE);
    assert_null(ev.table);
    assert_null(ev.before);
    assert_null(ev.after);
    kf_buf_free(&tomb);
}

static void truncate_has_no_rows_and_no_key(void **state)
{
    fixture *fx = *state;
    kf_event ev;
    kf_error err;
    OK(kf_event_writer_begin(fx->w, KF_OP_TRUNCATE, 1, &err_));
    OK(kf_event_writer_encode(fx->w, &fx->key, &fx->value, &err_));
    assert_int_equal(fx->key.len, 0);
    OK(kf_event_reader_decode(fx->r, fx->value.data, fx->value.len, &ev, &err_));
    assert_int_equal(ev.op, KF_OP_TRUNCATE);
    assert_null(ev.before);
    assert_null(ev.after);
    assert_int_equal(kf_event_writer_tombstone(fx->w, &fx->key, &err), KF_ERR_STATE);
}

static void writer_errors(void **state)
{
    fixture *fx = *state;
    kf_error err;
    kf_event_writer *fresh = kf_event_writer_new(fx->serde, fx->t, KEY_ID, VALUE_ID, &err);
    assert_non_null(fresh);
    assert_int_equal(kf_event_writer_encode(fresh, &fx->key, &fx->value, &err), KF_ERR_STATE);
    assert_int_equal(kf_event_set_int(fresh, KF_AFTER, C_ID, 1, &err), KF_ERR_STATE);
    OK(kf_event_writer_begin(fresh, KF_OP_CREATE, 1, &err_));
    fill_row(fresh, KF_AFTER, 0, false);
    assert_int_equal(kf_event_writer_encode(fresh, &fx->key, &fx->value, &err), KF_ERR_STATE);
    assert_non_null(strstr(err.message, "source"));
    kf_event_writer_destroy(fresh);
    kf_event_writer_destroy(NULL);

    assert_int_equal(kf_event_writer_begin(fx->w, (kf_op)'x', 1, &err), KF_ERR_INVALID);
    OK(kf_event_writer_begin(fx->w, KF_OP_CREATE, 1, &err_));
    assert_int_equal(kf_event_writer_encode(fx->w, &fx->key, &fx->value, &err), KF_ERR_INVALID);
    assert_non_null(strstr(err.message, "after image"));
    assert_int_equal(kf_event_set_int(fx->w, KF_AFTER, C_NOTE, 1, &err), KF_ERR_INVALID);
    assert_non_null(strstr(err.message, "\"note\""));
    assert_int_equal(kf_event_set_string(fx->w, KF_AFTER, C_ID, "1", 1, &err), KF_ERR_INVALID);
    assert_int_equal(kf_event_set_double(fx->w, KF_AFTER, C_QTY, 1, &err), KF_ERR_INVALID);
    assert_int_equal(kf_event_set_bool(fx->w, KF_AFTER, C_QTY, 1, &err), KF_ERR_INVALID);
    assert_int_equal(kf_event_set_bytes(fx->w, KF_AFTER, C_NOTE, "x", 1, &err), KF_ERR_INVALID);
    assert_int_equal(kf_event_set_int(fx->w, KF_AFTER, C_TENANT, 40000, &err), KF_ERR_INVALID);
    assert_non_null(strstr(err.message, "out of range"));
    assert_int_equal(kf_event_set_int(fx->w, KF_AFTER, C_QTY, 1LL << 31, &err), KF_ERR_INVALID);
    assert_int_equal(kf_event_set_null(fx->w, KF_AFTER, C_ID, &err), KF_ERR_INVALID);
    assert_non_null(strstr(err.message, "NOT NULL"));
    assert_int_equal(kf_event_set_int(fx->w, KF_AFTER, NCOLS, 1, &err), KF_ERR_INVALID);
    assert_int_equal(kf_event_set_string(fx->w, KF_AFTER, C_PRICE, "1.2345", 6, &err),
                     KF_ERR_INVALID);
    assert_int_equal(kf_event_set_string(fx->w, KF_AFTER, C_UNIT, "1000.00", 7, &err),
                     KF_ERR_INVALID);
    /* a NOT NULL column left unset */
    OK(kf_event_set_int(fx->w, KF_AFTER, C_TENANT, 1, &err_));
    OK(kf_event_set_int(fx->w, KF_AFTER, C_ID, 1, &err_));
    OK(kf_event_set_bool(fx->w, KF_AFTER, C_ACTIVE, false, &err_));
    assert_int_equal(kf_event_writer_encode(fx->w, &fx->key, &fx->value, &err), KF_ERR_INVALID);
    assert_non_null(strstr(err.message, "\"sku\""));
    assert_int_equal(kf_event_writer_tombstone(fx->w, &fx->key, &err), KF_ERR_STATE);
    OK(kf_event_writer_begin(fx->w, KF_OP_DELETE, 1, &err_));
    assert_int_equal(kf_event_writer_encode(fx->w, &fx->key, &fx->value, &err), KF_ERR_INVALID);
    assert_non_null(strstr(err.message, "before image"));

    /* a writer bound to a schema of another table is refused */
    kf_table *other = kf_table_new("kfleet", "shop", NULL, "other", &err);
    kf_column c = {.name = "x", .type = KF_COL_INT, .pk_order = 1};
    assert_int_equal(kf_table_add_column(other, &c, &err), KF_OK);
    assert_null(kf_event_writer_new(fx->serde, other, KEY_ID, VALUE_ID, &err));
    assert_int_equal(err.code, KF_ERR_INVALID);
    assert_null(kf_event_writer_new(fx->serde, fx->t, KEY_ID, 999, &err));
    assert_int_equal(err.code, KF_ERR_NOT_FOUND);
    /* without a key schema the key stays empty (a NULL Kafka key) */
    kf_event_writer *nokey = kf_event_writer_new(fx->serde, fx->t, -1, VALUE_ID, &err);
    assert_non_null(nokey);
    OK(kf_event_writer_set_source(nokey, &SOURCE, &err_));
    OK(kf_event_writer_begin(nokey, KF_OP_CREATE, 1, &err_));
    fill_row(nokey, KF_AFTER, 0, true);
    OK(kf_event_writer_encode(nokey, &fx->key, &fx->value, &err_));
    assert_int_equal(fx->key.len, 0);
    kf_event_writer_destroy(nokey);
    kf_table_destroy(other);
}

static void reader_errors(void **state)
{
    fixture *fx = *state;
    kf_error err;
    kf_event ev;
    const kf_table *kt;
    const kf_cell *cells;
    /* a value with the key schema is not an envelope */
    OK(kf_event_writer_begin(fx->w, KF_OP_CREATE, 1, &err_));
    fill_row(fx->w, KF_AFTER, 0, true);
    OK(kf_event_writer_encode(fx->w, &fx->key, &fx->value, &err_));
    assert_int_equal(kf_event_reader_decode(fx->r, fx->key.data, fx->key.len, &ev, &err),
                     KF_ERR_DECODE);
    assert_non_null(strstr(err.message, "schema id 11"));
    /* truncated value, unknown schema id, no key */
    assert_int_equal(kf_event_reader_decode(fx->r, fx->value.data, fx->value.len - 1, &ev, &err),
                     KF_ERR_DECODE);
    fx->value.data[4] = 99;
    assert_int_equal(kf_event_reader_decode(fx->r, fx->value.data, fx->value.len, &ev, &err),
                     KF_ERR_NOT_FOUND);
    assert_int_equal(kf_event_reader_decode_key(fx->r, NULL, 0, &kt, &cells, &err), KF_ERR_DECODE);
    /* an envelope whose op is not a Debezium op */
    avro_value_t *env, op;
    kf_error e2;
    assert_int_equal(kf_serde_decode(fx->serde, fx->key.data, fx->key.len, NULL, &env, &e2), KF_OK);
    OK(kf_event_writer_begin(fx->w, KF_OP_CREATE, 1, &err_));
    fill_row(fx->w, KF_AFTER, 0, true);
    OK(kf_event_writer_encode(fx->w, NULL, &fx->value, &err_));
    assert_int_equal(kf_serde_value(fx->serde, VALUE_ID, &env, &e2), KF_OK);
    assert_int_equal(avro_value_get_by_name(env, "op", &op, NULL), 0);
    avro_value_set_string(&op, "cu");
    assert_int_equal(kf_serde_encode(fx->serde, VALUE_ID, env, &fx->value, &e2), KF_OK);
    assert_int_equal(kf_event_reader_decode(fx->r, fx->value.data, fx->value.len, &ev, &err),
                     KF_ERR_DECODE);
    assert_non_null(strstr(err.message, "invalid op"));
}

/* Debezium's PostgreSQL envelope (with its own source block and transaction field), written
 * through a writer bound to it and read back: kfleet reads and writes Debezium topics. */
static const char debezium_envelope[] = KF_TEST_DEBEZIUM_ENVELOPE(
    "{\"name\":\"id\",\"type\":\"int\"},"
    "{\"name\":\"email\",\"type\":\"string\"},"
    "{\"name\":\"balance\",\"type\":[\"null\",{\"type\":\"bytes\",\"scale\":2,\"precision\":10,"
    "\"connect.version\":1,\"connect.parameters\":{\"scale\":\"2\","
    "\"connect.decimal.precision\":\"10\"},\"connect.name\":\"org.apache.kafka.connect.data."
    "Decimal\",\"logicalType\":\"decimal\"}],\"default\":null}");

static const char debezium_key[] = KF_TEST_DEBEZIUM_KEY;

static void debezium_envelope_round_trip(void **state)
{
    kf_error err;
    kf_serde *serde = kf_serde_new(NULL, &err);
    assert_non_null(serde);
    OK(kf_serde_add_schema(serde, 101, debezium_key, &err_));
    OK(kf_serde_add_schema(serde, 102, debezium_envelope, &err_));
    kf_table *t = kf_table_from_schema_json(debezium_envelope, debezium_key, &err);
    assert_non_null(t);
    kf_event_writer *w = kf_event_writer_new(serde, t, 101, 102, &err);
    if (!w)
        fail_msg("%s", err.message);
    kf_source src = SOURCE;
    src.db = "inventory";
    src.table = "customers";
    OK(kf_event_writer_set_source(w, &src, &err_));
    OK(kf_event_writer_begin(w, KF_OP_UPDATE, 1700000000500, &err_));
    OK(kf_event_set_int(w, KF_BEFORE, 0, 1001, &err_));
    OK(kf_event_set_string(w, KF_BEFORE, 1, "sally@example.com", 17, &err_));
    OK(kf_event_set_null(w, KF_BEFORE, 2, &err_));
    OK(kf_event_set_int(w, KF_AFTER, 0, 1001, &err_));
    OK(kf_event_set_string(w, KF_AFTER, 1, "sally.t@example.com", 19, &err_));
    OK(kf_event_set_string(w, KF_AFTER, 2, "-12.30", 6, &err_));
    kf_buf key = {0}, value = {0};
    OK(kf_event_writer_encode(w, &key, &value, &err_));

    kf_event_reader *r = kf_event_reader_new(serde, &err);
    kf_event ev;
    OK(kf_event_reader_decode(r, value.data, value.len, &ev, &err_));
    assert_int_equal(ev.op, KF_OP_UPDATE);
    assert_int_equal(ev.ts_ms, 1700000000500);
    assert_string_equal(ev.source.db, "inventory");
    assert_string_equal(ev.source.schema, "public");
    assert_string_equal(ev.source.table, "customers");
    assert_int_equal(ev.source.txid, 4242);
    assert_int_equal(ev.source.lsn, 987654321);
    assert_string_equal(kf_table_name(ev.table), "customers");
    assert_int_equal(ev.ncols, 3);
    assert_int_equal(ev.before[0].v.i, 1001);
    assert_str_cell(&ev.before[1], "sally@example.com");
    assert_int_equal(ev.before[2].kind, KF_CELL_NULL);
    assert_str_cell(&ev.after[1], "sally.t@example.com");
    assert_decimal_cell(&ev.after[2], 2, "-12.30");
    const kf_table *kt;
    const kf_cell *cells;
    OK(kf_event_reader_decode_key(r, key.data, key.len, &kt, &cells, &err_));
    assert_int_equal(cells[0].v.i, 1001);

    kf_event_reader_destroy(r);
    kf_event_reader_destroy(NULL);
    kf_event_writer_destroy(w);
    kf_buf_free(&key);
    kf_buf_free(&value);
    kf_table_destroy(t);
    kf_serde_destroy(serde);
}

static void decimal_conversions(void **state)
{
    static const struct {
        const char *text;
        int scale;
        const char *bytes;
        size_t nbytes;
        const char *back;
    } cases[] = {
        {"0", 0, "\x00", 1, "0"},
        {"-0.00", 2, "\x00", 1, "0.00"},
        {"123.45", 2, "\x30\x39", 2, "123.45"},
        {"-1", 0, "\xff", 1, "-1"},
        {"127", 0, "\x7f", 1, "127"},
        {"128", 0, "\x00\x80", 2, "128"},
        {"-128", 0, "\x80", 1, "-128"},
        {"-129", 0, "\xff\x7f", 2, "-129"},
        {"+.5", 1, "\x05", 1, "0.5"},
        {"1.230", 2, "\x7b", 1, "1.23"},
        {"-0.01", 3, "\xf6", 1, "-0.010"},
        {"65536", 0, "\x01\x00\x00", 3, "65536"},
    };
    kf_error err;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t out[16];
        size_t n;
        char text[64];
        if (kf_decimal_parse(cases[i].text, strlen(cases[i].text), 0, cases[i].scale, out,
                             sizeof(out), &n, &err) != KF_OK)
            fail_msg("%s: %s", cases[i].text, err.message);
        assert_int_equal(n, cases[i].nbytes);
        assert_memory_equal(out, cases[i].bytes, n);
        assert_int_equal(kf_decimal_format(out, n, cases[i].scale, text, sizeof(text), &err),
                         KF_OK);
        assert_string_equal(text, cases[i].back);
    }
    /* 38 digits: the largest decimal(38,0) */
    const char *big = "-99999999999999999999999999999999999999";
    uint8_t out[32];
    size_t n;
    char text[64];
    assert_int_equal(kf_decimal_parse(big, strlen(big), 38, 0, out, sizeof(out), &n, &err), KF_OK);
    assert_int_equal(n, 16);
    assert_int_equal(kf_decimal_format(out, n, 0, text, sizeof(text), &err), KF_OK);
    assert_string_equal(text, big);
    assert_int_equal(kf_decimal_format((const uint8_t *)"", 0, 2, text, sizeof(text), &err), KF_OK);
    assert_string_equal(text, "0.00");
    /* malformed, too precise, too many digits, too small an output */
    const char *bad[] = {"", "-", "1.2.3", "1e5", "12a", " 1", "NaN", "."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(kf_decimal_parse(bad[i], strlen(bad[i]), 0, 2, out, sizeof(out), &n, &err),
                         KF_ERR_INVALID);
    assert_int_equal(kf_decimal_parse("1.005", 5, 0, 2, out, sizeof(out), &n, &err),
                     KF_ERR_INVALID);
    assert_int_equal(kf_decimal_parse("1234.5", 6, 5, 2, out, sizeof(out), &n, &err),
                     KF_ERR_INVALID);
    assert_int_equal(kf_decimal_parse("65536", 5, 0, 0, out, 2, &n, &err), KF_ERR_INVALID);
    assert_int_equal(kf_decimal_format((const uint8_t *)"\x30\x39", 2, 2, text, 6, &err),
                     KF_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(insert_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(update_round_trip_with_nulls, setup, teardown),
        cmocka_unit_test_setup_teardown(delete_then_tombstone, setup, teardown),
        cmocka_unit_test_setup_teardown(truncate_has_no_rows_and_no_key, setup, teardown),
        cmocka_unit_test_setup_teardown(writer_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(reader_errors, setup, teardown),
        cmocka_unit_test(debezium_envelope_round_trip),
        cmocka_unit_test(decimal_conversions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
