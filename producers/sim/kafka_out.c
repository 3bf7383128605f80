/* Kafka output: per table a kf_table built from the live shape, schemas registered under
 * TopicNameStrategy subjects, events encoded by an event writer and produced asynchronously. */
#include "kafka_out.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cells.h"
#include "kfleet/event.h"
#include "kfleet/kafka.h"
#include "kfleet/log.h"
#include "kfleet/serde.h"
#include "kfleet/table.h"

#define CONNECTOR "kfleet-sim"

typedef struct ktable {
    char *topic;
    char *key_subject;
    char *value_subject;
    size_t *cols; /* Avro column j -> spec column; promoted columns join at the end */
    size_t ncols;
    kf_table *desc;
    kf_event_writer *writer;
    rd_kafka_topic_t *rkt; /* held so the producer keeps the topic's metadata */
    int32_t key_id;
    int32_t value_id;
} ktable;

typedef struct kout {
    char *prefix;
    int partitions;
    int replication_factor;
    bool tombstones;
    int admin_timeout_ms;
    kf_registry *registry;
    kf_serde *serde;
    kf_producer *producer;
    kf_admin *admin;
    ktable *tables;
    size_t ntables;
    kf_buf key;
    kf_buf value;
    uint64_t last_change;  /* the last change produced */
    uint64_t last_msg_seq; /* its last message (the change or its tombstone) */
} kout;

static const kf_sim_output_ops kafka_ops;

static void ktable_fini(ktable *k)
{
    if (k->rkt)
        rd_kafka_topic_destroy(k->rkt);
    kf_event_writer_destroy(k->writer);
    kf_table_destroy(k->desc);
    free(k->cols);
    free(k->topic);
    free(k->key_subject);
    free(k->value_subject);
    memset(k, 0, sizeof(*k));
}

static void kout_destroy(void *self)
{
    kout *o = self;
    if (!o)
        return;
    for (size_t i = 0; o->tables && i < o->ntables; i++)
        ktable_fini(&o->tables[i]);
    free(o->tables);
    kf_producer_destroy(o->producer);
    kf_admin_destroy(o->admin);
    kf_serde_destroy(o->serde);
    kf_buf_free(&o->key);
    kf_buf_free(&o->value);
    free(o->prefix);
    free(o);
}

int kf_sim_kafka_output_new(const kf_sim_kafka_config *cfg, kf_sim_output *out, kf_error *err)
{
    kout *o = calloc(1, sizeof(*o));
    if (!o || !(o->prefix = strdup(cfg->prefix))) {
        free(o);
        return kf_error_set(err, KF_ERR_NOMEM, false,
                            "could not create the kafka output: out of memory");
    }
    o->partitions = cfg->partitions;
    o->replication_factor = cfg->replication_factor;
    o->tombstones = cfg->tombstones;
    o->admin_timeout_ms = cfg->admin_timeout_ms > 0 ? cfg->admin_timeout_ms : 30000;
    o->registry = cfg->registry;
    kf_producer_options popts = {.max_in_flight = cfg->max_in_flight};
    if (!(o->serde = kf_serde_new(cfg->registry, err)) ||
        !(o->producer = kf_producer_new(cfg->kv, cfg->npairs, &popts, err)) ||
        !(o->admin = kf_admin_new(cfg->kv, cfg->npairs, err))) {
        int rc = err->code;
        kout_destroy(o);
        return rc;
    }
    out->name = "kafka";
    out->ops = &kafka_ops;
    out->self = o;
    return KF_OK;
}

static kf_coltype map_type(kf_sim_type t)
{
    switch (t) {
    case KF_SIM_SMALLINT:
        return KF_COL_SMALLINT;
    case KF_SIM_INT:
        return KF_COL_INT;
    case KF_SIM_BIGINT:
        return KF_COL_BIGINT;
    case KF_SIM_FLOAT:
        return KF_COL_FLOAT;
    case KF_SIM_DOUBLE:
        return KF_COL_DOUBLE;
    case KF_SIM_DECIMAL:
        return KF_COL_DECIMAL;
    case KF_SIM_BOOL:
        return KF_COL_BOOL;
    case KF_SIM_TEXT:
        return KF_COL_TEXT;
    case KF_SIM_VARCHAR:
        return KF_COL_VARCHAR;
    case KF_SIM_DATE:
        return KF_COL_DATE;
    case KF_SIM_TIMESTAMP:
        return KF_COL_TIMESTAMP;
    case KF_SIM_TIMESTAMPTZ:
        return KF_COL_TIMESTAMPTZ;
    case KF_SIM_UUID:
        return KF_COL_UUID;
    case KF_SIM_JSON:
    default:
        return KF_COL_JSON;
    }
}

/* The table description of the Avro columns of k in t's current shape. */
static kf_table *describe(const kout *o, const ktable *k, const kf_sim_table *t, kf_error *err)
{
    const kf_sim_table_spec *s = t->spec;
    kf_table *desc = kf_table_new(o->prefix, s->database, NULL, s->name, err);
    if (!desc)
        return NULL;
    for (size_t j = 0; j < k->ncols; j++) {
        size_t col = k->cols[j];
        const kf_sim_coltype *ct = &t->type[col];
        kf_column c = {
            .name = s->columns[col].name,
            .type = map_type(ct->type),
            .precision = ct->precision,
            .scale = ct->scale,
            .length = ct->type == KF_SIM_VARCHAR ? ct->length : 0,
            .time_precision = 6,
            .nullable = kf_sim_column_nullable(t, col),
        };
        for (size_t p = 0; p < s->nkey; p++)
            if (s->key[p] == col)
                c.pk_order = (int)p + 1;
        if (kf_table_add_column(desc, &c, err) != KF_OK) {
            kf_table_destroy(desc);
            return NULL;
        }
    }
    return desc;
}

/* The Envelope schema of desc with the table's schema version as the record's
 * connect.version (Kafka Connect's schema version property), so every schema change of the
 * table is a distinct registered version even when the Avro shape is unchanged (a dropped
 * nullable column stays in the schema; a re-added one was never removed). */
static char *envelope_schema(const kf_table *desc, uint32_t version, kf_error *err)
{
    char *text = kf_table_envelope_schema(desc, err);
    if (!text)
        return NULL;
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    free(text);
    text = NULL;
    if (root && json_object_set_new(root, "connect.version", json_integer(version)) == 0)
        text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text)
        kf_error_set(err, KF_ERR_NOMEM, false,
                     "could not build the envelope schema of table \"%s\": out of memory",
                     kf_table_name(desc));
    return text;
}

/* Describes t, registers the value schema (and the key schema the first time) and replaces
 * the writer. */
static int reschema(kout *o, ktable *k, const kf_sim_table *t, kf_error *err)
{
    kf_table *desc = describe(o, k, t, err);
    if (!desc)
        return err->code;
    int rc = KF_OK;
    char *key_text = NULL, *value_text = NULL;
    if (k->key_id < 0) {
        if (!(key_text = kf_table_key_schema(desc, err)) ||
            (rc = kf_serde_register(o->serde, k->key_subject, key_text, &k->key_id, err)) != KF_OK)
            goto out_free;
    }
    int32_t value_id;
    bool first = k->value_id < 0;
    if (!(value_text = envelope_schema(desc, t->schema_version, err)) ||
        (rc = kf_serde_register(o->serde, k->value_subject, value_text, &value_id, err)) != KF_OK)
        goto out_free;
    /* BACKWARD: a consumer with the newest schema reads every older event (DESIGN.md). Set
     * after the first version, since some registries only know subjects that have one. */
    if (first && (rc = kf_registry_set_compatibility(o->registry, k->value_subject, "BACKWARD",
                                                     err)) != KF_OK)
        goto out_free;
    kf_event_writer *w = kf_event_writer_new(o->serde, desc, k->key_id, value_id, err);
    if (!w)
        goto out_free;
    /* The source strings are the same for every event of the table: copied once here, and
     * only the clock and the sequence change per event (kf_event_writer_update_source). */
    kf_source src = {
        .version = KFLEET_VERSION,
        .connector = CONNECTOR,
        .name = o->prefix,
        .snapshot = "false",
        .db = t->spec->database,
        .table = t->spec->name,
        .has_seq = true,
    };
    if ((rc = kf_event_writer_set_source(w, &src, err)) != KF_OK) {
        kf_event_writer_destroy(w);
        goto out_free;
    }
    kf_event_writer_destroy(k->writer);
    kf_table_destroy(k->desc);
    k->writer = w;
    k->desc = desc;
    k->value_id = value_id;
    desc = NULL;
    kf_logf(KF_LOG_DEBUG, "registered schema version %u of \"%s\" as id %d", t->schema_version,
            k->value_subject, (int)value_id);
out_free:
    free(key_text);
    free(value_text);
    kf_table_destroy(desc);
    if (rc == KF_OK && err->code != KF_OK)
        rc = err->code;
    return rc;
}

/* a, b and c joined by dots, then suffix; NULL when out of memory. */
static char *dotted(const char *a, const char *b, const char *c, const char *suffix)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + strlen(suffix) + 3;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s.%s.%s%s", a, b, c, suffix);
    return s;
}

/* Whether md shows topic with every partition led by a broker. */
static bool topic_ready(const struct rd_kafka_metadata *md)
{
    if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR ||
        md->topics[0].partition_cnt <= 0)
        return false;
    for (int p = 0; p < md->topics[0].partition_cnt; p++)
        if (md->topics[0].partitions[p].err != RD_KAFKA_RESP_ERR_NO_ERROR ||
            md->topics[0].partitions[p].leader < 0)
            return false;
    return true;
}

/* Fetches the metadata of k's topic into the producer before the first message, waiting
 * until every partition has a leader (a topic created a moment ago may not have them yet).
 * Without it librdkafka learns about a topic it has not seen only at its next periodic
 * metadata scan, up to a second after the first produce, with every message held meanwhile. */
static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int await_topic(kout *o, ktable *k, kf_error *err)
{
    rd_kafka_t *rk = kf_producer_handle(o->producer);
    char what[600];
    snprintf(what, sizeof(what), "could not get the partition leaders of topic \"%s\"", k->topic);
    if (!k->rkt && !(k->rkt = rd_kafka_topic_new(rk, k->topic, NULL)))
        return kf_kafka_error_set_code(err, rd_kafka_last_error(), what);
    int64_t deadline = monotonic_ms() + o->admin_timeout_ms;
    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        int64_t left = deadline - monotonic_ms();
        rd_kafka_resp_err_t code = rd_kafka_metadata(rk, 0, k->rkt, &md, left > 0 ? (int)left : 1);
        bool ready = code == RD_KAFKA_RESP_ERR_NO_ERROR && topic_ready(md);
        if (md)
            rd_kafka_metadata_destroy(md);
        if (ready)
            return KF_OK;
        if (monotonic_ms() >= deadline) {
            if (code != RD_KAFKA_RESP_ERR_NO_ERROR)
                return kf_kafka_error_set_code(err, code, what);
            return kf_error_set(err, KF_ERR_TIMEOUT, true, "%s within %d ms", what,
                                o->admin_timeout_ms);
        }
        kf_producer_poll(o->producer, 50);
    }
}

static int kout_open(void *self, const kf_sim_engine *e, bool resume, kf_error *err)
{
    kout *o = self;
    (void)resume;
    size_t n = kf_sim_engine_table_count(e);
    o->tables = calloc(n ? n : 1, sizeof(*o->tables));
    kf_topic_spec *specs = calloc(n ? n : 1, sizeof(*specs));
    int rc = KF_OK;
    if (!o->tables || !specs) {
        rc = kf_error_set(err, KF_ERR_NOMEM, false,
                          "could not open the kafka output: out of memory");
        goto out_free_specs;
    }
    o->ntables = n;
    for (size_t i = 0; i < n; i++) {
        const kf_sim_table *t = kf_sim_engine_table(e, i);
        ktable *k = &o->tables[i];
        k->key_id = -1;
        k->value_id = -1;
        k->topic = dotted(o->prefix, t->spec->database, t->spec->name, "");
        k->key_subject = dotted(o->prefix, t->spec->database, t->spec->name, "-key");
        k->value_subject = dotted(o->prefix, t->spec->database, t->spec->name, "-value");
        k->cols = calloc(t->ncolumns, sizeof(*k->cols));
        if (!k->topic || !k->key_subject || !k->value_subject || !k->cols) {
            rc = kf_error_set(err, KF_ERR_NOMEM, false,
                              "could not open the kafka output: out of memory");
            goto out_free_specs;
        }
        for (size_t c = 0; c < t->ncolumns; c++)
            if (kf_sim_table_active(t, c))
                k->cols[k->ncols++] = c;
        specs[i] = (kf_topic_spec){.name = k->topic,
                                   .partitions = o->partitions,
                                   .replication_factor = o->replication_factor};
    }
    if ((rc = kf_admin_create_topics(o->admin, specs, n, true, o->admin_timeout_ms, err)) != KF_OK)
        goto out_free_specs;
    for (size_t i = 0; i < n && rc == KF_OK; i++)
        rc = reschema(o, &o->tables[i], kf_sim_engine_table(e, i), err);
    for (size_t i = 0; i < n && rc == KF_OK; i++)
        rc = await_topic(o, &o->tables[i], err);
out_free_specs:
    free(specs);
    return rc;
}

/* Unscaled value as big-endian two's complement in the fewest bytes. */
static size_t decimal_bytes(int64_t v, uint8_t out[8])
{
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)(u & 0xff);
        u >>= 8;
    }
    size_t skip = 0;
    while (skip < 7 && ((out[skip] == 0x00 && !(out[skip + 1] & 0x80)) ||
                        (out[skip] == 0xff && (out[skip + 1] & 0x80))))
        skip++;
    memmove(out, out + skip, 8 - skip);
    return 8 - skip;
}

static int set_row(kout *o, ktable *k, const kf_sim_table *t, kf_side side, const kf_sim_row *row,
                   kf_error *err)
{
    int rc = KF_OK;
    for (size_t j = 0; j < k->ncols && rc == KF_OK; j++) {
        size_t col = k->cols[j];
        const kf_sim_cell *c = &row->cells[col];
        const kf_sim_coltype *ct = &t->type[col];
        switch (c->kind) {
        case KF_SIM_CELL_NULL:
            rc = kf_event_set_null(k->writer, side, j, err);
            break;
        case KF_SIM_CELL_DOUBLE:
            rc = kf_event_set_double(k->writer, side, j, c->d, err);
            break;
        case KF_SIM_CELL_BOOL:
            rc = kf_event_set_bool(k->writer, side, j, c->b, err);
            break;
        case KF_SIM_CELL_STRING:
            rc = kf_event_set_string(k->writer, side, j, c->s, c->len, err);
            break;
        case KF_SIM_CELL_INT:
            if (ct->type == KF_SIM_DECIMAL) {
                uint8_t be[8];
                size_t len = decimal_bytes(c->i, be);
                rc = kf_event_set_bytes(k->writer, side, j, be, len, err);
            } else if (ct->type == KF_SIM_TIMESTAMPTZ) {
                char ts[48];
                kf_sim_time_format(c->i, true, ts, sizeof(ts));
                rc = kf_event_set_string(k->writer, side, j, ts, strlen(ts), err);
            } else {
                rc = kf_event_set_int(k->writer, side, j, c->i, err);
            }
            break;
        }
    }
    return rc;
}

static int produce(kout *o, ktable *k, const void *value, size_t value_len, uint64_t seq,
                   kf_error *err)
{
    kf_produce_msg msg = {
        .topic = k->topic,
        .partition = RD_KAFKA_PARTITION_UA,
        .key = o->key.data,
        .key_len = o->key.len,
        .value = value,
        .value_len = value_len,
        .seq = seq,
    };
    return kf_producer_produce(o->producer, &msg, NULL, err);
}

static int kout_change(void *self, size_t ti, const kf_sim_table *t, const kf_sim_change *ch,
                       kf_error *err)
{
    kout *o = self;
    ktable *k = &o->tables[ti];
    int64_t ts_ms = ch->ts_us / 1000;
    kf_source pos = {.ts_ms = ts_ms, .has_seq = true, .seq = (int64_t)ch->seq};
    int rc = kf_event_writer_update_source(k->writer, &pos, err);
    if (rc == KF_OK)
        rc = kf_event_writer_begin(k->writer, (kf_op)ch->op, ts_ms, err);
    if (rc == KF_OK && ch->before)
        rc = set_row(o, k, t, KF_BEFORE, ch->before, err);
    if (rc == KF_OK && ch->after)
        rc = set_row(o, k, t, KF_AFTER, ch->after, err);
    if (rc == KF_OK)
        rc = kf_event_writer_encode(k->writer, &o->key, &o->value, err);
    if (rc == KF_OK)
        rc = produce(o, k, o->value.data, o->value.len, kf_sim_kafka_msg_seq(ch->seq, false), err);
    uint64_t last = kf_sim_kafka_msg_seq(ch->seq, false);
    if (rc == KF_OK && ch->op == KF_SIM_OP_DELETE && o->tombstones) {
        rc = kf_event_writer_tombstone(k->writer, &o->key, err);
        last = kf_sim_kafka_msg_seq(ch->seq, true);
        if (rc == KF_OK)
            rc = produce(o, k, NULL, 0, last, err);
    }
    if (rc == KF_OK) {
        o->last_change = ch->seq;
        o->last_msg_seq = last;
    }
    return rc;
}

static int kout_evolve(void *self, size_t ti, const kf_sim_table *t, const kf_sim_evolution *ev,
                       bool replay, kf_error *err)
{
    kout *o = self;
    ktable *k = &o->tables[ti];
    (void)replay; /* registering again is idempotent: the registry returns the same id */
    if (ev->action == KF_SIM_EVOLVE_PROMOTE) {
        bool known = false;
        for (size_t j = 0; j < k->ncols; j++)
            known = known || k->cols[j] == ev->column;
        if (!known)
            k->cols[k->ncols++] = ev->column;
    }
    return reschema(o, k, t, err);
}

static int kout_batch_end(void *self, kf_error *err)
{
    kout *o = self;
    (void)err;
    kf_producer_poll(o->producer, 0);
    return KF_OK;
}

static void kout_poll(void *self, int timeout_ms)
{
    kout *o = self;
    kf_producer_poll(o->producer, timeout_ms);
}

static uint64_t kout_durable(void *self)
{
    kout *o = self;
    uint64_t acked = kf_producer_acked_upto(o->producer);
    /* A change without a tombstone has no message 2*seq, so the last one counts in full
     * once its own message is acknowledged. */
    if (o->last_msg_seq && acked >= o->last_msg_seq)
        return o->last_change;
    return acked / 2;
}

static int kout_close(void *self, int timeout_ms, kf_error *err)
{
    kout *o = self;
    int rc = kf_producer_flush(o->producer, timeout_ms, err);
    if (kf_producer_failed(o->producer, err))
        return err->code != KF_OK ? err->code : KF_ERR_KAFKA;
    return rc;
}

static const kf_sim_output_ops kafka_ops = {
    .open = kout_open,
    .change = kout_change,
    .evolve = kout_evolve,
    .batch_end = kout_batch_end,
    .poll = kout_poll,
    .durable = kout_durable,
    .close = kout_close,
    .destroy = kout_destroy,
};
