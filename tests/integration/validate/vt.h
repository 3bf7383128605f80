/* Helpers for the validate integration tests and benchmark: a small orders table whose change
 * events are produced with the event writer, reading a topic back with read_committed, and
 * running a program as a child process. */
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

/* Starts argv[0] with argv; stderr goes to log_path (appended) when given. */
static inline pid_t vt_spawn(char *const argv[], const char *log_path)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (log_path && !freopen(log_path, "a", stderr))
            _exit(127);
        if (!freopen("/dev/null", "w", stdout))
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
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

#endif
