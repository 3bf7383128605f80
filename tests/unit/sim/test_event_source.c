/* Unit tests for the event writer's per-event source update (kf_event_writer_update_source),
 * which the simulator's Kafka output uses so that only the clock and the sequence change per
 * event: the same bytes as a full set_source, the strings kept, and a refused update leaving
 * the source as it was. */
#include "sim_test.h"

#include <stdlib.h>

#include "kfleet/event.h"

#define KEY_ID   21
#define VALUE_ID 22

typedef struct fixture {
    kf_table *t;
    kf_serde *serde;
    kf_event_reader *r;
    kf_buf key, value, key2, value2;
} fixture;

static kf_table *orders_table(void)
{
    kf_error err;
    kf_table *t = kf_table_new("kfleet", "shop", NULL, "orders", &err);
    assert_non_null(t);
    kf_column id = {.name = "id", .type = KF_COL_BIGINT, .pk_order = 1};
    kf_column note = {.name = "note", .type = KF_COL_TEXT, .nullable = true};
    assert_int_equal(kf_table_add_column(t, &id, &err), KF_OK);
    assert_int_equal(kf_table_add_column(t, &note, &err), KF_OK);
    return t;
}

/* Registers the table's key schema and its envelope, with lsn made required when
 * lsn_required (a schema where a missing number is an error). */
static void add_schemas(fixture *fx, bool lsn_required)
{
    kf_error err;
    char *k = kf_table_key_schema(fx->t, &err);
    char *e = kf_table_envelope_schema(fx->t, &err);
    assert_non_null(k);
    assert_non_null(e);
    if (lsn_required) {
        const char *from = "{\"name\":\"lsn\",\"type\":[\"null\",\"long\"],\"default\":null}";
        const char *to = "{\"name\":\"lsn\",\"type\":\"long\"}";
        char *at = strstr(e, from);
        assert_non_null(at);
        memmove(at + strlen(to), at + strlen(from), strlen(at + strlen(from)) + 1);
        memcpy(at, to, strlen(to));
    }
    assert_int_equal(kf_serde_add_schema(fx->serde, KEY_ID, k, &err), KF_OK);
    assert_int_equal(kf_serde_add_schema(fx->serde, VALUE_ID, e, &err), KF_OK);
    free(k);
    free(e);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    kf_error err;
    if (!fx)
        return -1;
    fx->t = orders_table();
    fx->serde = kf_serde_new(NULL, &err);
    fx->r = fx->serde ? kf_event_reader_new(fx->serde, &err) : NULL;
    if (!fx->r)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    kf_event_reader_destroy(fx->r);
    kf_serde_destroy(fx->serde);
    kf_table_destroy(fx->t);
    kf_buf_free(&fx->key);
    kf_buf_free(&fx->value);
    kf_buf_free(&fx->key2);
    kf_buf_free(&fx->value2);
    free(fx);
    return 0;
}

static const kf_source SIM_SOURCE = {
    .version = "0.1.0",
    .connector = "kfleet-sim",
    .name = "kfleet",
    .snapshot = "false",
    .db = "shop",
    .table = "orders",
    .has_seq = true,
};

/* Encodes an insert of id with note into key/value. */
static void encode_insert(kf_event_writer *w, int64_t id, int64_t ts_ms, kf_buf *key, kf_buf *value)
{
    kf_error err;
    assert_int_equal(kf_event_writer_begin(w, KF_OP_CREATE, ts_ms, &err), KF_OK);
    assert_int_equal(kf_event_set_int(w, KF_AFTER, 0, id, &err), KF_OK);
    assert_int_equal(kf_event_set_string(w, KF_AFTER, 1, "n", 1, &err), KF_OK);
    if (kf_event_writer_encode(w, key, value, &err) != KF_OK)
        fail_msg("%s", err.message);
}

static void update_matches_full_set(void **state)
{
    fixture *fx = *state;
    add_schemas(fx, false);
    kf_error err;
    kf_event_writer *fast = kf_event_writer_new(fx->serde, fx->t, KEY_ID, VALUE_ID, &err);
    kf_event_writer *full = kf_event_writer_new(fx->serde, fx->t, KEY_ID, VALUE_ID, &err);
    assert_non_null(fast);
    assert_non_null(full);
    kf_source src = SIM_SOURCE;
    assert_int_equal(kf_event_writer_set_source(fast, &src, &err), KF_OK);
    for (int64_t seq = 1; seq <= 50; seq++) {
        int64_t ts = 1704067200000 + seq;
        kf_source pos = {.ts_ms = ts, .has_seq = true, .seq = seq};
        assert_int_equal(kf_event_writer_update_source(fast, &pos, &err), KF_OK);
        encode_insert(fast, seq, ts, &fx->key, &fx->value);
        src.ts_ms = ts;
        src.seq = seq;
        assert_int_equal(kf_event_writer_set_source(full, &src, &err), KF_OK);
        encode_insert(full, seq, ts, &fx->key2, &fx->value2);
        assert_int_equal(fx->value.len, fx->value2.len);
        assert_memory_equal(fx->value.data, fx->value2.data, fx->value.len);
        assert_int_equal(fx->key.len, fx->key2.len);
        assert_memory_equal(fx->key.data, fx->key2.data, fx->key.len);
    }
    /* what a consumer reads: the strings of set_source, the numbers of the last update */
    kf_event ev;
    assert_int_equal(kf_event_reader_decode(fx->r, fx->value.data, fx->value.len, &ev, &err),
                     KF_OK);
    assert_string_equal(ev.source.connector, "kfleet-sim");
    assert_string_equal(ev.source.db, "shop");
    assert_string_equal(ev.source.table, "orders");
    assert_true(ev.source.has_seq);
    assert_int_equal(ev.source.seq, 50);
    assert_int_equal(ev.source.ts_ms, 1704067200050);
    /* the strings passed to update_source are ignored */
    kf_source other = {.connector = "other", .db = "elsewhere", .ts_ms = 5};
    assert_int_equal(kf_event_writer_update_source(fast, &other, &err), KF_OK);
    encode_insert(fast, 1, 5, &fx->key, &fx->value);
    assert_int_equal(kf_event_reader_decode(fx->r, fx->value.data, fx->value.len, &ev, &err),
                     KF_OK);
    assert_string_equal(ev.source.connector, "kfleet-sim");
    assert_string_equal(ev.source.db, "shop");
    assert_false(ev.source.has_seq); /* has_seq unset: null */
    assert_int_equal(ev.source.ts_ms, 5);
    kf_event_writer_destroy(fast);
    kf_event_writer_destroy(full);
}

static void update_needs_a_source(void **state)
{
    fixture *fx = *state;
    add_schemas(fx, false);
    kf_error err;
    kf_error_clear(&err);
    kf_event_writer *w = kf_event_writer_new(fx->serde, fx->t, KEY_ID, VALUE_ID, &err);
    assert_non_null(w);
    kf_source pos = {.ts_ms = 1, .has_seq = true, .seq = 1};
    assert_int_equal(kf_event_writer_update_source(w, &pos, &err), KF_ERR_STATE);
    assert_non_null(strstr(err.message, "source is not set"));
    kf_event_writer_destroy(w);
}

static void refused_update_changes_nothing(void **state)
{
    fixture *fx = *state;
    add_schemas(fx, true);
    kf_error err;
    kf_error_clear(&err);
    kf_event_writer *w = kf_event_writer_new(fx->serde, fx->t, KEY_ID, VALUE_ID, &err);
    assert_non_null(w);
    kf_source src = SIM_SOURCE;
    src.ts_ms = 100;
    src.seq = 7;
    src.has_lsn = true;
    src.lsn = 4242;
    assert_int_equal(kf_event_writer_set_source(w, &src, &err), KF_OK);
    /* lsn is required by this schema: an update without it is refused as a whole */
    kf_source pos = {.ts_ms = 200, .has_seq = true, .seq = 8};
    assert_int_equal(kf_event_writer_update_source(w, &pos, &err), KF_ERR_INVALID);
    assert_non_null(strstr(err.message, "\"lsn\" is required"));
    encode_insert(w, 1, 100, &fx->key, &fx->value);
    kf_event ev;
    assert_int_equal(kf_event_reader_decode(fx->r, fx->value.data, fx->value.len, &ev, &err),
                     KF_OK);
    assert_int_equal(ev.source.ts_ms, 100);
    assert_int_equal(ev.source.seq, 7);
    assert_int_equal(ev.source.lsn, 4242);
    /* with it, the update applies */
    pos.has_lsn = true;
    pos.lsn = 4343;
    assert_int_equal(kf_event_writer_update_source(w, &pos, &err), KF_OK);
    encode_insert(w, 2, 200, &fx->key, &fx->value);
    assert_int_equal(kf_event_reader_decode(fx->r, fx->value.data, fx->value.len, &ev, &err),
                     KF_OK);
    assert_int_equal(ev.source.ts_ms, 200);
    assert_int_equal(ev.source.seq, 8);
    assert_int_equal(ev.source.lsn, 4343);
    assert_string_equal(ev.source.name, "kfleet");
    kf_event_writer_destroy(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(update_matches_full_set, setup, teardown),
        cmocka_unit_test_setup_teardown(update_needs_a_source, setup, teardown),
        cmocka_unit_test_setup_teardown(refused_update_changes_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
