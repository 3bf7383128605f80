/* Helpers for the validate integration tests and benchmark: a small orders table whose change
 * events are produced with the event writer, reading a topic back with read_committed, waiting
 * for a condition, and running kfleet-validate and kfleet-replay as child processes. Free of
 * cmocka (the benchmark uses it too): helpers return false and fill a kf_error, and the tests'
 * assertions live in vt_fixture.h. */
#ifndef KFLEET_TESTS_VT_H
#define KFLEET_TESTS_VT_H

#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include <avro.h>

#include "kfleet/event.h"
#include "kfleet/kafka.h"
#include "kfleet/registry.h"
#include "kfleet/serde.h"
#include "kfleet/table.h"

/* What a produced record should become. */
typedef enum vt_fate { VT_VALID = 0, VT_RULE, VT_POISON } vt_fate;

typedef struct vt_record {
    int32_t partition;
    int64_t offset;
    void *key;
    size_t key_len;
    void *value; /* NULL: tombstone */
    size_t value_len;
    char header[64]; /* value of header "trace" ("" when absent) */
    char rule[128];  /* header kfleet.rule.id or the expected rule */
    char reason[64]; /* header kfleet.error.reason */
    char origin[256];
    int64_t origin_offset;
    int64_t replay_count;
    vt_fate fate;
} vt_record;

typedef struct vt_list {
    vt_record *r;
    size_t n, cap;
} vt_list;

static inline void vt_list_free(vt_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->r[i].key);
        free(l->r[i].value);
    }
    free(l->r);
    memset(l, 0, sizeof(*l));
}

static inline vt_record *vt_list_push(vt_list *l)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->r = realloc(l->r, l->cap * sizeof(*l->r));
        if (!l->r)
            abort();
    }
    vt_record *r = &l->r[l->n++];
    memset(r, 0, sizeof(*r));
    return r;
}

static inline void *vt_dup(const void *p, size_t n)
{
    if (!p)
        return NULL;
    void *d = malloc(n ? n : 1);
    if (!d)
        abort();
    memcpy(d, p, n);
    return d;
}

static inline int64_t vt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void vt_header_str(const rd_kafka_message_t *m, const char *name, char *out,
                                 size_t cap)
{
    const void *v;
    size_t n;
    out[0] = '\0';
    if (!kf_headers_get(m, name, &v, &n) || !v)
        return;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

/* Reads every committed record of topic (all partitions, from the beginning to the end at
 * the time of the call). Returns false when the topic cannot be read within timeout_ms. */
static inline bool vt_read_topic(const char *bootstrap, const char *topic, vt_list *out,
                                 int timeout_ms)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", "vt-reader", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "isolation.level", "read_committed", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk)
        return false;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    bool ok = rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
              md->topic_cnt == 1 && !md->topics[0].err;
    rd_kafka_topic_destroy(rkt);
    int np = ok ? md->topics[0].partition_cnt : 0;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(np ? np : 1);
    int open = 0;
    for (int i = 0; ok && i < np; i++) {
        int64_t lo, hi;
        int32_t id = md->topics[0].partitions[i].id;
        if (rd_kafka_query_watermark_offsets(rk, topic, id, &lo, &hi, 10000)) {
            ok = false;
            break;
        }
        if (hi > lo) {
            rd_kafka_topic_partition_list_add(parts, topic, id)->offset = RD_KAFKA_OFFSET_BEGINNING;
            open++;
        }
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    if (ok && open)
        ok = rd_kafka_assign(rk, parts) == RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_topic_partition_list_destroy(parts);
    int64_t deadline = vt_now_ms() + timeout_ms;
    while (ok && open > 0) {
        if (vt_now_ms() > deadline) {
            ok = false;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            open--;
        } else if (!m->err) {
            vt_record *r = vt_list_push(out);
            r->partition = m->partition;
            r->offset = m->offset;
            r->key = vt_dup(m->key, m->key_len);
            r->key_len = m->key_len;
            r->value = vt_dup(m->payload, m->len);
            r->value_len = m->len;
            vt_header_str(m, "trace", r->header, sizeof(r->header));
            vt_header_str(m, "kfleet.rule.id", r->rule, sizeof(r->rule));
            vt_header_str(m, "kfleet.error.reason", r->reason, sizeof(r->reason));
            vt_header_str(m, "__connect.errors.topic", r->origin, sizeof(r->origin));
            char num[32];
            vt_header_str(m, "__connect.errors.offset", num, sizeof(num));
            r->origin_offset = num[0] ? strtoll(num, NULL, 10) : -1;
            vt_header_str(m, "kfleet.replay.count", num, sizeof(num));
            r->replay_count = num[0] ? strtoll(num, NULL, 10) : 0;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return ok;
}

/* One audit event read back from <p>.audit, decoded through the registry (the schema id in
 * the record): every field, optional ones with has_* (strings: NULL when absent). */
typedef struct vt_audit {
    int32_t schema_id;
    char key[256];
    char id[64];
    int64_t ts_ms;
    char program[64], instance[256], action[64], level[16], message[1024];
    char *topic, *db, *table, *rule_id, *details; /* owned; NULL: Avro null */
    bool has_partition, has_offset, has_schema_id, has_count;
    int32_t partition, schema;
    int64_t offset, count;
} vt_audit;

static inline void vt_audit_free(vt_audit *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(a[i].topic);
        free(a[i].db);
        free(a[i].table);
        free(a[i].rule_id);
        free(a[i].details);
    }
}

static inline bool vt_avro_str(avro_value_t *rec, const char *name, char *out, size_t cap)
{
    avro_value_t f;
    const char *s = NULL;
    size_t n = 0;
    if (avro_value_get_by_name(rec, name, &f, NULL) || avro_value_get_string(&f, &s, &n) || !s)
        return false;
    snprintf(out, cap, "%s", s);
    return true;
}

/* The value branch of the ["null", T] field name, or false when it holds null. */
static inline bool vt_avro_opt(avro_value_t *rec, const char *name, avro_value_t *branch)
{
    avro_value_t u;
    int disc = 0;
    if (avro_value_get_by_name(rec, name, &u, NULL) || avro_value_get_discriminant(&u, &disc) ||
        disc == 0)
        return false;
    return avro_value_get_current_branch(&u, branch) == 0;
}

static inline char *vt_avro_opt_str(avro_value_t *rec, const char *name)
{
    avro_value_t b;
    const char *s = NULL;
    size_t n = 0;
    if (!vt_avro_opt(rec, name, &b) || avro_value_get_string(&b, &s, &n) || !s)
        return NULL;
    return vt_dup(s, strlen(s) + 1);
}

/* Reads every committed record of the audit topic (read_committed) and decodes it with serde
 * (which fetches the schema by the record's id). Returns the count (at most max), or -1 when
 * the topic cannot be read or a record does not decode. */
static inline int vt_audit_read(const char *bootstrap, kf_serde *serde, const char *topic,
                                vt_audit *out, size_t max, int timeout_ms)
{
    vt_list l = {0};
    if (!vt_read_topic(bootstrap, topic, &l, timeout_ms)) {
        vt_list_free(&l);
        return -1;
    }
    int n = 0;
    for (size_t i = 0; i < l.n && (size_t)n < max; i++) {
        vt_audit *a = &out[n];
        memset(a, 0, sizeof(*a));
        avro_value_t *v;
        kf_error err;
        if (!l.r[i].value ||
            kf_serde_decode(serde, l.r[i].value, l.r[i].value_len, &a->schema_id, &v, &err)) {
            vt_list_free(&l);
            return -1;
        }
        snprintf(a->key, sizeof(a->key), "%.*s", (int)l.r[i].key_len,
                 l.r[i].key ? (const char *)l.r[i].key : "");
        avro_value_t f, b;
        if (!vt_avro_str(v, "id", a->id, sizeof(a->id)) ||
            avro_value_get_by_name(v, "ts_ms", &f, NULL) || avro_value_get_long(&f, &a->ts_ms) ||
            !vt_avro_str(v, "program", a->program, sizeof(a->program)) ||
            !vt_avro_str(v, "instance", a->instance, sizeof(a->instance)) ||
            !vt_avro_str(v, "action", a->action, sizeof(a->action)) ||
            !vt_avro_str(v, "level", a->level, sizeof(a->level)) ||
            !vt_avro_str(v, "message", a->message, sizeof(a->message))) {
            vt_list_free(&l);
            return -1;
        }
        a->topic = vt_avro_opt_str(v, "topic");
        a->db = vt_avro_opt_str(v, "db");
        a->table = vt_avro_opt_str(v, "table");
        a->rule_id = vt_avro_opt_str(v, "rule_id");
        a->details = vt_avro_opt_str(v, "details");
        if ((a->has_partition = vt_avro_opt(v, "partition", &b)))
            avro_value_get_int(&b, &a->partition);
        if ((a->has_offset = vt_avro_opt(v, "offset", &b)))
            avro_value_get_long(&b, &a->offset);
        if ((a->has_schema_id = vt_avro_opt(v, "schema_id", &b)))
            avro_value_get_int(&b, &a->schema);
        if ((a->has_count = vt_avro_opt(v, "count", &b)))
            avro_value_get_long(&b, &a->count);
        n++;
    }
    vt_list_free(&l);
    return n;
}

/* True when s is a canonical version 4 UUID in lower case. */
static inline bool vt_is_uuid_v4(const char *s)
{
    if (strlen(s) != 36 || s[14] != '4' || !strchr("89ab", s[19]))
        return false;
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i]))
            return false;
    }
    return true;
}

/* Wall clock in ms since the epoch. */
static inline int64_t vt_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Finds the record whose value equals (value, len); NULL when none. */
static inline vt_record *vt_find_value(vt_list *l, const void *value, size_t len)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->r[i].value && l->r[i].value_len == len && memcmp(l->r[i].value, value, len) == 0)
            return &l->r[i];
    return NULL;
}

/* Starts argv[0] with argv; stderr goes to log_path (appended) when given, stdout to out_path
 * (replaced), or nowhere when that is NULL. */
static inline pid_t vt_spawn_to(char *const argv[], const char *log_path, const char *out_path)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (log_path && !freopen(log_path, "a", stderr))
            _exit(127);
        if (!freopen(out_path ? out_path : "/dev/null", "w", stdout))
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Starts argv[0] with argv; stderr goes to log_path (appended) when given. */
static inline pid_t vt_spawn(char *const argv[], const char *log_path)
{
    return vt_spawn_to(argv, log_path, NULL);
}

/* Waits for pid up to timeout_ms; returns its exit code, 128+signal, or -1 on timeout (the
 * child is then killed). */
static inline int vt_wait(pid_t pid, int timeout_ms)
{
    int64_t deadline = vt_now_ms() + timeout_ms;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (vt_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        usleep(20000);
    }
}

/* Writes text to path (replacing it); false when it cannot. */
static inline bool vt_write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    if (!fp)
        return false;
    bool ok = fputs(text, fp) >= 0;
    return fclose(fp) == 0 && ok;
}

/* Calls done(ctx) every poll_ms until it returns true or timeout_ms passed; returns its last
 * answer. */
static inline bool vt_poll(bool (*done)(void *ctx), void *ctx, int poll_ms, int timeout_ms)
{
    int64_t deadline = vt_now_ms() + timeout_ms;
    for (;;) {
        if (done(ctx))
            return true;
        if (vt_now_ms() > deadline)
            return false;
        usleep((useconds_t)poll_ms * 1000);
    }
}

typedef struct vt_count {
    const char *bootstrap;
    const char *const *topics;
    size_t ntopics, min;
    bool failed;
} vt_count;

static inline bool vt_count_reached(void *arg)
{
    vt_count *c = arg;
    size_t n = 0;
    for (size_t i = 0; i < c->ntopics; i++) {
        vt_list l = {0};
        if (!vt_read_topic(c->bootstrap, c->topics[i], &l, 30000))
            c->failed = true;
        n += l.n;
        vt_list_free(&l);
    }
    return c->failed || n >= c->min;
}

/* Reads the ntopics topics every poll_ms until they hold at least min committed records
 * together. False when timeout_ms passed first or a topic could not be read (in 30 s). */
static inline bool vt_wait_records(const char *bootstrap, const char *const *topics, size_t ntopics,
                                   size_t min, int poll_ms, int timeout_ms)
{
    vt_count c = {.bootstrap = bootstrap, .topics = topics, .ntopics = ntopics, .min = min};
    return vt_poll(vt_count_reached, &c, poll_ms, timeout_ms) && !c.failed;
}

/* Creates topic with partitions and replication factor rf (-1: the broker's default) through
 * an admin client of its own; a topic that exists already is an error. */
static inline bool vt_create_topic(const char *bootstrap, const char *topic, int partitions, int rf,
                                   kf_error *err)
{
    const char *kv[] = {"bootstrap.servers", bootstrap};
    kf_admin *a = kf_admin_new(kv, 1, err);
    if (!a)
        return false;
    kf_topic_spec spec = {.name = topic, .partitions = partitions, .replication_factor = rf};
    bool ok = kf_admin_create_topics(a, &spec, 1, false, 30000, err) == KF_OK;
    kf_admin_destroy(a);
    return ok;
}

/* Deletes the n topics, missing ones included, as far as it can: for a teardown. */
static inline void vt_delete_topics(const char *bootstrap, const char *const *names, size_t n)
{
    kf_error err;
    kf_admin *a = kf_admin_new((const char *[]){"bootstrap.servers", bootstrap}, 1, &err);
    if (a)
        kf_admin_delete_topics(a, names, n, true, 30000, &err);
    kf_admin_destroy(a);
}

/* Produces the n messages through a producer of its own and waits until every one of them
 * was acknowledged. */
static inline bool vt_produce(const char *bootstrap, const kf_produce_msg *msgs, size_t n,
                              kf_error *err)
{
    const char *kv[] = {"bootstrap.servers", bootstrap};
    kf_producer *p = kf_producer_new(kv, 1, NULL, err);
    if (!p)
        return false;
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++)
        ok = kf_producer_produce(p, &msgs[i], NULL, err) == KF_OK;
    ok = ok && kf_producer_flush(p, 30000, err) == KF_OK && !kf_producer_failed(p, err);
    kf_producer_destroy(p);
    return ok;
}

/* The tests' shop.orders table: id (bigint, the key), then as many of email (text) and qty
 * (int), both nullable, as asked; its schemas registered under <topic>-key and <topic>-value,
 * and an event writer with a simulator source. */
typedef struct vt_orders {
    kf_table *table;
    kf_event_writer *w;
    int32_t key_id, value_id;
    size_t ncols;
} vt_orders;

static inline void vt_orders_free(vt_orders *o)
{
    kf_event_writer_destroy(o->w);
    kf_table_destroy(o->table);
    memset(o, 0, sizeof(*o));
}

/* Sets up o with ncols (1 to 3) columns for topic, the table named after prefix. False and err
 * on failure, with o freed. */
static inline bool vt_orders_new(vt_orders *o, kf_serde *serde, const char *prefix,
                                 const char *topic, size_t ncols, kf_error *err)
{
    static const char *const names[] = {"id", "email", "qty"}, *const types[] = {"bigint", "text",
                                                                                 "int"};
    memset(o, 0, sizeof(*o));
    o->ncols = ncols < 3 ? ncols : 3;
    if (!(o->table = kf_table_new(prefix, "shop", NULL, "orders", err)))
        return false;
    for (size_t i = 0; i < o->ncols; i++) {
        kf_column c = {.name = names[i], .pk_order = i == 0, .nullable = i > 0};
        if (kf_coltype_parse(types[i], &c, err) != KF_OK ||
            kf_table_add_column(o->table, &c, err) != KF_OK)
            goto out_free;
    }
    char *ks = kf_table_key_schema(o->table, err);
    char *es = ks ? kf_table_envelope_schema(o->table, err) : NULL;
    char key_subject[256], value_subject[256];
    snprintf(key_subject, sizeof(key_subject), "%s-key", topic);
    snprintf(value_subject, sizeof(value_subject), "%s-value", topic);
    bool registered = es && kf_serde_register(serde, key_subject, ks, &o->key_id, err) == KF_OK &&
                      kf_serde_register(serde, value_subject, es, &o->value_id, err) == KF_OK;
    free(ks);
    free(es);
    if (!registered || !(o->w = kf_event_writer_new(serde, o->table, o->key_id, o->value_id, err)))
        goto out_free;
    kf_source src = {.version = "0.1.0",
                     .connector = "sim",
                     .name = prefix,
                     .db = "shop",
                     .table = "orders",
                     .snapshot = "false",
                     .has_seq = true,
                     .seq = 1};
    if (kf_event_writer_set_source(o->w, &src, err) != KF_OK)
        goto out_free;
    return true;

out_free:
    vt_orders_free(o);
    return false;
}

/* Encodes the create event of row id at ts_ms into key and value (overwritten), as far as the
 * table has the columns: email user<id>@example.com, null for every 10th id; qty id % 100,
 * -5 for every 15th id. */
static inline bool vt_orders_encode(vt_orders *o, int64_t id, int64_t ts_ms, kf_buf *key,
                                    kf_buf *value, kf_error *err)
{
    char email[64];
    snprintf(email, sizeof(email), "user%" PRId64 "@example.com", id);
    return kf_event_writer_begin(o->w, KF_OP_CREATE, ts_ms, err) == KF_OK &&
           kf_event_set_int(o->w, KF_AFTER, 0, id, err) == KF_OK &&
           (o->ncols < 2 || (id % 10 == 0 ? kf_event_set_null(o->w, KF_AFTER, 1, err)
                                          : kf_event_set_string(o->w, KF_AFTER, 1, email,
                                                                strlen(email), err)) == KF_OK) &&
           (o->ncols < 3 ||
            kf_event_set_int(o->w, KF_AFTER, 2, id % 15 == 0 ? -5 : id % 100, err) == KF_OK) &&
           kf_event_writer_encode(o->w, key, value, err) == KF_OK;
}

/* Produces the create events of ids first..last (vt_orders_encode) to partition 0 of topic,
 * id at base_ts + id * step_ms, and waits until every one was acknowledged. */
static inline bool vt_orders_produce(vt_orders *o, const char *bootstrap, const char *topic,
                                     int64_t first, int64_t last, int64_t base_ts, int64_t step_ms,
                                     kf_error *err)
{
    size_t n = last >= first ? (size_t)(last - first + 1) : 0;
    kf_buf *bufs = calloc(2 * n + 1, sizeof(*bufs));
    kf_produce_msg *msgs = calloc(n + 1, sizeof(*msgs));
    if (!bufs || !msgs)
        abort();
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        int64_t id = first + (int64_t)i, ts = base_ts + id * step_ms;
        kf_buf *key = &bufs[2 * i], *value = &bufs[2 * i + 1];
        ok = vt_orders_encode(o, id, ts, key, value, err);
        msgs[i] = (kf_produce_msg){.topic = topic,
                                   .partition = 0,
                                   .key = key->data,
                                   .key_len = key->len,
                                   .value = value->data,
                                   .value_len = value->len,
                                   .timestamp_ms = ts};
    }
    ok = ok && vt_produce(bootstrap, msgs, n, err);
    for (size_t i = 0; i < 2 * n; i++)
        kf_buf_free(&bufs[i]);
    free(bufs);
    free(msgs);
    return ok;
}

/* The --set values every program under test gets: its topic prefix, brokers and registry. */
typedef struct vt_sets {
    char prefix[160], boot[200], reg[300];
} vt_sets;

static inline void vt_sets_init(vt_sets *s, const char *prefix, const char *bootstrap,
                                const char *registry_url)
{
    snprintf(s->prefix, sizeof(s->prefix), "topic.prefix=%s", prefix);
    snprintf(s->boot, sizeof(s->boot), "kafka.bootstrap.servers=%s", bootstrap);
    snprintf(s->reg, sizeof(s->reg), "registry.url=%s", registry_url);
}

/* A command line being put together: at most VT_MAX_ARGS words and a NULL. */
#define VT_MAX_ARGS 48
typedef struct vt_argv {
    char *v[VT_MAX_ARGS + 1];
    size_t n;
} vt_argv;

/* Appends the NULL-terminated words (borrowed; NULL: none). */
static inline void vt_argv_add(vt_argv *a, const char *const *words)
{
    for (size_t i = 0; words && words[i]; i++) {
        if (a->n == VT_MAX_ARGS)
            abort();
        a->v[a->n++] = (char *)words[i];
    }
    a->v[a->n] = NULL;
}

/* What every validate integration test works with: the services and programs, names after a
 * unique prefix, the --set values and a registry client (set up by vt_fixture_new). */
typedef struct vt_env {
    const char *bootstrap, *registry_url, *validate_bin, *replay_bin;
    char prefix[96];    /* unique to the test */
    char topic[160];    /* <prefix>.shop.orders */
    char valid[200];    /* <prefix>.valid.shop.orders */
    char dlq[300];      /* <prefix>.dlq.<topic> */
    char audit[160];    /* <prefix>.audit */
    char log[256];      /* /tmp/<prefix>.log: where the programs' stderr goes */
    char contract[256]; /* /tmp/<prefix>-contract.yaml */
    char out[256];      /* /tmp/<prefix>.out: a program's stdout, when kept */
    vt_sets set;
    kf_registry *reg;
    kf_serde *serde;
} vt_env;

/* Starts kfleet-validate on contract with the three --set values of e, consumer group group and
 * --log-level warn, then extra (NULL-terminated; NULL: none); stderr to e's log. */
static inline pid_t vt_spawn_validate(const vt_env *e, const char *contract, const char *group,
                                      const char *const *extra)
{
    vt_argv a = {.n = 0};
    vt_argv_add(&a, (const char *const[]){e->validate_bin, "--contract", contract, "--set",
                                          e->set.prefix, "--set", e->set.boot, "--set", e->set.reg,
                                          "--group", group, "--log-level", "warn", NULL});
    vt_argv_add(&a, extra);
    return vt_spawn(a.v, e->log);
}

/* Starts `kfleet-validate check` on contract and topic with the brokers and registry of e, then
 * extra; stderr to e's log, stdout to out_path (NULL: nowhere). */
static inline pid_t vt_spawn_check(const vt_env *e, const char *contract, const char *topic,
                                   const char *const *extra, const char *out_path)
{
    vt_argv a = {.n = 0};
    vt_argv_add(&a,
                (const char *const[]){e->validate_bin, "check", "--contract", contract, "--topic",
                                      topic, "--set", e->set.boot, "--set", e->set.reg, NULL});
    vt_argv_add(&a, extra);
    return vt_spawn_to(a.v, e->log, out_path);
}

/* Starts kfleet-replay with args (NULL-terminated), the three --set values of e and --log-level
 * warn on e's DLQ topic; stderr to e's log, stdout to out_path (NULL: nowhere). */
static inline pid_t vt_spawn_replay(const vt_env *e, const char *const *args, const char *out_path)
{
    vt_argv a = {.n = 0};
    vt_argv_add(&a, (const char *const[]){e->replay_bin, NULL});
    vt_argv_add(&a, args);
    vt_argv_add(&a, (const char *const[]){"--set", e->set.boot, "--set", e->set.reg, "--set",
                                          e->set.prefix, "--log-level", "warn", e->dlq, NULL});
    return vt_spawn_to(a.v, e->log, out_path);
}

#endif
