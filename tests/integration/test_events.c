/* Integration test of libkfleet's core path against the real broker and registry: Avro change
 * events (inserts, updates, deletes with tombstones, and a schema that gains a column) are
 * written with the event writer, registered in the registry, produced to Kafka, consumed back
 * and decoded by a fresh client that learns every schema from the registry by id. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kf_test_env.h"
#include "kfleet/event.h"
#include "kfleet/kafka.h"
#include "kfleet/log.h"
#include "kfleet/registry.h"
#include "kfleet/serde.h"

#define ROWS       60
#define TIMEOUT_MS 30000

/* What the test produced, message by message, to compare with what it reads back. */
typedef struct sent {
    kf_op op; /* KF_OP_TOMBSTONE for a tombstone */
    int64_t id;
    int version; /* 1: schema without "note", 2: with it */
    char name[32];
} sent;

static sent log_[ROWS * 4];
static size_t nsent;

static kf_table *make_table(const char *db, const char *name, bool with_note)
{
    kf_error err;
    kf_table *t = kf_table_new("kfleet", db, "public", name, &err);
    assert_non_null(t);
    kf_column id = {.name = "id", .type = KF_COL_BIGINT, .pk_order = 1};
    kf_column nm = {.name = "name", .type = KF_COL_TEXT, .nullable = true};
    kf_column amount = {.name = "amount", .nullable = true};
    assert_int_equal(kf_coltype_parse("decimal(10,2)", &amount, &err), KF_OK);
    kf_column active = {.name = "active", .type = KF_COL_BOOL, .nullable = false};
    assert_int_equal(kf_table_add_column(t, &id, &err), KF_OK);
    assert_int_equal(kf_table_add_column(t, &nm, &err), KF_OK);
    assert_int_equal(kf_table_add_column(t, &amount, &err), KF_OK);
    assert_int_equal(kf_table_add_column(t, &active, &err), KF_OK);
    if (with_note) {
        kf_column note = {.name = "note", .type = KF_COL_TEXT, .nullable = true};
        assert_int_equal(kf_table_add_column(t, &note, &err), KF_OK);
    }
    return t;
}

static void register_schemas(kf_serde *serde, const kf_table *t, const char *topic, int32_t *key_id,
                             int32_t *value_id)
{
    kf_error err;
    char subject[256];
    char *key = kf_table_key_schema(t, &err);
    char *env = kf_table_envelope_schema(t, &err);
    assert_non_null(key);
    assert_non_null(env);
    snprintf(subject, sizeof(subject), "%s-key", topic);
    assert_int_equal(kf_serde_register(serde, subject, key, key_id, &err), KF_OK);
    snprintf(subject, sizeof(subject), "%s-value", topic);
    if (kf_serde_register(serde, subject, env, value_id, &err) != KF_OK)
        fail_msg("could not register %s: %s", subject, err.message);
    free(key);
    free(env);
}

static void produce(kf_producer *p, const char *topic, const kf_buf *key, const kf_buf *value)
{
    kf_error err;
    kf_produce_msg m = {.topic = topic,
                        .partition = RD_KAFKA_PARTITION_UA,
                        .key = key->data,
                        .key_len = key->len,
                        .value = value ? value->data : NULL,
                        .value_len = value ? value->len : 0};
    if (kf_producer_produce(p, &m, NULL, &err) != KF_OK)
        fail_msg("could not produce: %s", err.message);
}

/* Writes one event of table version `version` and records it. */
static void write_event(kf_event_writer *w, kf_producer *p, const char *topic, kf_op op, int64_t id,
                        int version, kf_buf *key, kf_buf *value)
{
    kf_error err;
    sent *s = &log_[nsent++];
    s->op = op;
    s->id = id;
    s->version = version;
    snprintf(s->name, sizeof(s->name), "naïve-%lld-%c", (long long)id, (char)op);
    kf_source src = {.version = "0.1.0",
                     .connector = "kfleet-test",
                     .name = "kfleet",
                     .ts_ms = 1700000000000 + id,
                     .db = "db",
                     .schema = "public",
                     .table = "accounts",
                     .has_seq = true,
                     .seq = (int64_t)nsent};
    assert_int_equal(kf_event_writer_set_source(w, &src, &err), KF_OK);
    assert_int_equal(kf_event_writer_begin(w, op, 1700000000000 + id, &err), KF_OK);
    kf_side side = op == KF_OP_DELETE ? KF_BEFORE : KF_AFTER;
    assert_int_equal(kf_event_set_int(w, side, 0, id, &err), KF_OK);
    assert_int_equal(kf_event_set_string(w, side, 1, s->name, strlen(s->name), &err), KF_OK);
    assert_int_equal(kf_event_set_string(w, side, 2, "1234.50", 7, &err), KF_OK);
    assert_int_equal(kf_event_set_bool(w, side, 3, id % 2 == 0, &err), KF_OK);
    if (version == 2)
        assert_int_equal(kf_event_set_string(w, side, 4, "added later", 11, &err), KF_OK);
    if (kf_event_writer_encode(w, key, value, &err) != KF_OK)
        fail_msg("could not encode: %s", err.message);
    produce(p, topic, key, value);
    if (op == KF_OP_DELETE) {
        sent *t = &log_[nsent++];
        *t = *s;
        t->op = KF_OP_TOMBSTONE;
        assert_int_equal(kf_event_writer_tombstone(w, key, &err), KF_OK);
        produce(p, topic, key, NULL);
    }
}

static void change_events_round_trip_through_kafka(void **state)
{
    const char *bootstrap = kf_test_env("KFLEET_BOOTSTRAP");
    const char *registry_url = kf_test_env("KFLEET_REGISTRY_URL");
    kf_error err;
    char topic[160], name[96];
    kf_test_unique_name(name, sizeof(name), "accounts");
    snprintf(topic, sizeof(topic), "kfleet.test.%s", name);

    const char *kv[] = {"bootstrap.servers", bootstrap};
    kf_admin *admin = kf_admin_new(kv, 1, &err);
    assert_non_null(admin);
    kf_topic_spec spec = {.name = topic, .partitions = 1, .replication_factor = 1};
    assert_int_equal(kf_admin_create_topics(admin, &spec, 1, false, TIMEOUT_MS, &err), KF_OK);

    /* Writer side: its own registry client and serde. */
    kf_registry_config rc = {.url = registry_url};
    kf_registry *wreg = kf_registry_new(&rc, &err);
    assert_non_null(wreg);
    kf_serde *wserde = kf_serde_new(wreg, &err);
    assert_non_null(wserde);
    kf_table *v1 = make_table("db", name, false);
    kf_table *v2 = make_table("db", name, true);
    int32_t key1, val1, key2, val2;
    register_schemas(wserde, v1, topic, &key1, &val1);
    register_schemas(wserde, v2, topic, &key2, &val2);
    assert_int_not_equal(val1, val2);
    assert_int_equal(key1, key2); /* the key did not change, so neither did its id */

    kf_event_writer *w1 = kf_event_writer_new(wserde, v1, key1, val1, &err);
    kf_event_writer *w2 = kf_event_writer_new(wserde, v2, key2, val2, &err);
    assert_non_null(w1);
    assert_non_null(w2);
    kf_producer *p = kf_producer_new(kv, 1, NULL, &err);
    assert_non_null(p);
    kf_buf key, value;
    kf_buf_init(&key);
    kf_buf_init(&value);
    nsent = 0;
    for (int64_t id = 1; id <= ROWS; id++) /* inserts under version 1 */
        write_event(w1, p, topic, KF_OP_CREATE, id, 1, &key, &value);
    for (int64_t id = 1; id <= ROWS; id += 3) /* updates under version 2 */
        write_event(w2, p, topic, KF_OP_UPDATE, id, 2, &key, &value);
    for (int64_t id = 2; id <= ROWS; id += 5) /* deletes, each followed by a tombstone */
        write_event(w2, p, topic, KF_OP_DELETE, id, 2, &key, &value);
    assert_int_equal(kf_producer_flush(p, TIMEOUT_MS, &err), KF_OK);
    assert_false(kf_producer_failed(p, &err));
    assert_int_equal(kf_producer_acked_upto(p), nsent);

    /* Reader side: a fresh registry client, so every schema is fetched by id. */
    kf_registry *rreg = kf_registry_new(&rc, &err);
    kf_serde *rserde = kf_serde_new(rreg, &err);
    kf_event_reader *r = kf_event_reader_new(rserde, &err);
    assert_non_null(r);
    char group[sizeof(topic) + sizeof(".group") - 1]; /* room for the longest topic */
    snprintf(group, sizeof(group), "%s.group", topic);
    const char *ckv[] = {"bootstrap.servers",  bootstrap, "group.id", group,
                         "enable.auto.commit", "false"};
    kf_consumer *c = kf_consumer_new(ckv, 3, NULL, &err);
    assert_non_null(c);
    const char *topics[] = {topic};
    assert_int_equal(kf_consumer_subscribe(c, topics, 1, &err), KF_OK);

    size_t got = 0;
    rd_kafka_message_t *msgs[64];
    for (int polls = 0; got < nsent && polls < 200; polls++) {
        int n = kf_consumer_poll_batch(c, msgs, 64, 500, &err);
        assert_true(n >= 0);
        for (int i = 0; i < n; i++) {
            rd_kafka_message_t *m = msgs[i];
            assert_true(got < nsent);
            const sent *s = &log_[got++];
            const kf_table *kt;
            const kf_cell *kc;
            if (kf_event_reader_decode_key(r, m->key, m->key_len, &kt, &kc, &err) != KF_OK)
                fail_msg("could not decode key %zu: %s", got, err.message);
            assert_int_equal(kc[0].kind, KF_CELL_INT);
            assert_int_equal(kc[0].v.i, s->id);
            kf_event ev;
            if (kf_event_reader_decode(r, m->payload, m->len, &ev, &err) != KF_OK)
                fail_msg("could not decode event %zu: %s", got, err.message);
            if (s->op == KF_OP_TOMBSTONE) {
                assert_null(m->payload);
                assert_int_equal(ev.op, KF_OP_TOMBSTONE);
                rd_kafka_message_destroy(m);
                continue;
            }
            assert_int_equal(ev.op, s->op);
            assert_int_equal(ev.schema_id, s->version == 1 ? val1 : val2);
            assert_int_equal(ev.ncols, s->version == 1 ? 4 : 5);
            assert_string_equal(ev.source.connector, "kfleet-test");
            assert_true(ev.source.has_seq);
            const kf_cell *row = s->op == KF_OP_DELETE ? ev.before : ev.after;
            assert_non_null(row);
            assert_int_equal(row[0].v.i, s->id);
            assert_int_equal(row[1].kind, KF_CELL_STRING);
            assert_int_equal(row[1].v.s.len, strlen(s->name));
            assert_memory_equal(row[1].v.s.ptr, s->name, row[1].v.s.len);
            assert_int_equal(row[3].kind, KF_CELL_BOOL);
            assert_int_equal(row[3].v.b, s->id % 2 == 0);
            if (s->version == 2) {
                assert_int_equal(row[4].kind, KF_CELL_STRING);
                assert_memory_equal(row[4].v.s.ptr, "added later", 11);
            }
            if (s->op == KF_OP_DELETE)
                assert_null(ev.after);
            rd_kafka_message_destroy(m);
        }
    }
    assert_int_equal(got, nsent);

    kf_consumer_destroy(c);
    kf_event_reader_destroy(r);
    kf_serde_destroy(rserde);
    kf_registry_destroy(rreg);
    kf_producer_destroy(p);
    kf_buf_free(&key);
    kf_buf_free(&value);
    kf_event_writer_destroy(w1);
    kf_event_writer_destroy(w2);
    kf_table_destroy(v1);
    kf_table_destroy(v2);
    kf_serde_destroy(wserde);
    kf_registry_destroy(wreg);
    const char *names[] = {topic};
    assert_int_equal(kf_admin_delete_topics(admin, names, 1, true, TIMEOUT_MS, &err), KF_OK);
    kf_admin_destroy(admin);
}

int main(void)
{
    kf_log_init("test-events", KF_LOG_WARN, KF_LOG_LOGFMT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(change_events_round_trip_through_kafka),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
