/* The audit emitter: a bounded queue of copied events and a thread that sets up the audit
 * topic and schema, encodes the events and writes them with a small producer of its own. */
#include "kfleet/audit.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "kfleet/kafka.h"
#include "kfleet/log.h"
#include "kfleet/retry.h"
#include "kfleet/thread.h"

/* Generated from the .avsc files in schemas/ (shared/embed.cmake). */
const char *kf_embedded_schema(const char *name);

#define DEFAULT_MAX_PENDING  1000
#define DEFAULT_FLUSH_MS     10000
#define ADMIN_TIMEOUT_MS     10000
#define SETUP_BACKOFF_MS     1000
#define SETUP_BACKOFF_MAX_MS 60000
#define POLL_MS              50
#define IDLE_WAIT_MS         1000
#define PURGE_WAIT_MS        2000
#define QUEUE_FULL_RETRIES   50
#define MAX_STRING           4096
#define MAX_DETAILS          65536
#define MAX_ACTION           40
#define MAX_ACTIONS          32
#define FULL_LOG_INTERVAL_MS 10000
#define TOPIC_MAX            249

enum reason {
    R_QUEUE_FULL = 0,
    R_INVALID,
    R_NOMEM,
    R_ENCODE,
    R_PRODUCE,
    R_DELIVERY,
    R_SHUTDOWN,
    R_COUNT
};
static const char *const REASONS[R_COUNT] = {"queue_full", "invalid",  "nomem",   "encode",
                                             "produce",    "delivery", "shutdown"};
static const char *const LEVELS[] = {"info", "warn", "error"};

/* One queued event: owned copies of the caller's strings. */
typedef struct pending {
    struct pending *next;
    char action_name[MAX_ACTION + 1];
    int action; /* index into the action table (its metric series) */
    kf_audit_level level;
    char id[37];
    int64_t ts_ms;
    char *message, *topic, *db, *table, *rule_id, *details;
    bool has_partition, has_offset, has_schema_id, has_count;
    int32_t partition, schema_id;
    int64_t offset, count;
} pending;

/* What a delivery report needs: the message opaque. */
typedef struct flight {
    int action;
    char id[37];
} flight;

typedef struct action_slot {
    char name[MAX_ACTION + 1];
    kf_counter_series *sent;
    kf_counter_series *fail[R_COUNT];
} action_slot;

struct kf_audit {
    char *program, *instance, *topic, *subject;
    kf_registry *registry;
    size_t max_pending;
    int flush_timeout_ms;
    rd_kafka_t *rk;

    /* owned by the thread */
    kf_serde *serde;
    kf_buf buf;
    bool topic_ready;

    pthread_t thread;
    bool started;
    pthread_mutex_t lock;    /* guards everything below */
    pthread_cond_t wake;     /* the thread: an event or a stop */
    pthread_cond_t progress; /* kf_audit_flush: an event left the queue or its flight */
    bool stop, ready;
    pending *head, *tail;
    size_t queued, in_flight;
    kf_audit_stats stats;
    action_slot actions[MAX_ACTIONS];
    size_t nactions;
    kf_counter *m_sent, *m_fail;
    int64_t full_logged_ms;
    uint64_t full_unlogged;
};

/* ---- small helpers ---- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *kf_audit_schema(void)
{
    return kf_embedded_schema("kfleet_audit");
}

void kf_audit_uuid(char out[37])
{
    uint8_t b[16];
    size_t got = 0;
    while (got < sizeof(b)) {
        ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < sizeof(b)) {
        /* no kernel randomness (very old kernel, seccomp): splitmix64 from a per-call seed */
        uint64_t x = kf_retry_seed();
        for (size_t i = 0; i < sizeof(b); i++) {
            x += 0x9e3779b97f4a7c15ULL;
            uint64_t z = x;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            b[i] = (uint8_t)(z ^ (z >> 31));
        }
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < sizeof(b); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

static bool is_uuid(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        char c = s[i];
        if (dash ? c != '-'
                 : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes available), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    unsigned cp = c & (0xff >> (len + 1));
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* A copy of s, at most MAX_STRING bytes cut at a character boundary, with every invalid UTF-8
 * byte replaced by U+FFFD. NULL in, NULL out; *nomem set on allocation failure. */
static char *clean_copy(const char *s, bool *nomem)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *out = malloc((n < MAX_STRING ? n : MAX_STRING) * 3 + 1);
    if (!out) {
        *nomem = true;
        return NULL;
    }
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_seq(p + i, n - i);
        size_t add = len ? len : 3;
        if (o + add > MAX_STRING)
            break;
        if (len) {
            memcpy(out + o, p + i, len);
            i += len;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            i++;
        }
        o += add;
    }
    out[o] = '\0';
    return out;
}

static bool valid_action(const char *a)
{
    size_t n = a ? strlen(a) : 0;
    if (n == 0 || n > MAX_ACTION)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((a[i] >= 'a' && a[i] <= 'z') || (a[i] >= '0' && a[i] <= '9') || a[i] == '_'))
            return false;
    return true;
}

/* Why ev cannot be queued, or NULL. */
static const char *invalid_reason(const kf_audit_event *ev)
{
    if (!ev)
        return "no event";
    if (!valid_action(ev->action))
        return "the action must be 1 to 40 characters of a-z, 0-9 and _";
    if (!ev->message || !ev->message[0])
        return "the message is empty";
    if ((int)ev->level < KF_AUDIT_INFO || (int)ev->level > KF_AUDIT_ERROR)
        return "unknown level";
    if (ev->id && !is_uuid(ev->id))
        return "the id is not a UUID";
    if (ev->details) {
        if (strlen(ev->details) > MAX_DETAILS)
            return "the details are longer than 64 KiB";
        json_t *j = json_loads(ev->details, JSON_REJECT_DUPLICATES, NULL);
        bool object = j && json_is_object(j);
        json_decref(j);
        if (!object)
            return "the details are not a JSON object";
    }
    return NULL;
}

static void pending_free(pending *p)
{
    if (!p)
        return;
    free(p->message);
    free(p->topic);
    free(p->db);
    free(p->table);
    free(p->rule_id);
    free(p->details);
    free(p);
}

/* ---- metrics and counters (lock held) ---- */

/* The action table slot of name, added on first use; the last slot collects the rest. */
static int action_index(kf_audit *a, const char *name)
{
    if (!valid_action(name))
        name = "unknown";
    for (size_t i = 0; i < a->nactions; i++)
        if (strcmp(a->actions[i].name, name) == 0)
            return (int)i;
    if (a->nactions == MAX_ACTIONS - 1) {
        name = "other";
        for (size_t i = 0; i < a->nactions; i++)
            if (strcmp(a->actions[i].name, name) == 0)
                return (int)i;
    }
    action_slot *s = &a->actions[a->nactions];
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "%s", name);
    if (a->m_sent)
        s->sent = kf_counter_child(a->m_sent, 1, (const char *[]){s->name}, NULL);
    return (int)a->nactions++;
}

static void count_sent(kf_audit *a, int action)
{
    a->stats.sent++;
    if (a->actions[action].sent)
        kf_counter_inc(a->actions[action].sent, 1);
}

/* Counts a lost (accepted) or refused event. */
static void count_failure(kf_audit *a, int action, enum reason r, bool refused)
{
    if (refused)
        a->stats.refused++;
    else
        a->stats.failed++;
    action_slot *s = &a->actions[action];
    if (a->m_fail && !s->fail[r])
        s->fail[r] = kf_counter_child(a->m_fail, 2, (const char *[]){s->name, REASONS[r]}, NULL);
    if (s->fail[r])
        kf_counter_inc(s->fail[r], 1);
}

/* ---- encoding ---- */

static int set_string(avro_value_t *rec, const char *name, const char *s)
{
    avro_value_t f;
    return avro_value_get_by_name(rec, name, &f, NULL) || avro_value_set_string(&f, s);
}

/* Sets a ["null", T] field: branch 0 for NULL (has false), else branch 1 via setter. */
static int set_branch(avro_value_t *rec, const char *name, bool has, avro_value_t *branch)
{
    avro_value_t u;
    if (avro_value_get_by_name(rec, name, &u, NULL) != 0)
        return -1;
    if (!has) {
        avro_value_t nb;
        return avro_value_set_branch(&u, 0, &nb) || avro_value_set_null(&nb);
    }
    return avro_value_set_branch(&u, 1, branch);
}

static int set_opt_string(avro_value_t *rec, const char *name, const char *s)
{
    avro_value_t b;
    if (set_branch(rec, name, s != NULL, &b))
        return -1;
    return s ? avro_value_set_string(&b, s) : 0;
}

static int set_opt_int(avro_value_t *rec, const char *name, bool has, int32_t v)
{
    avro_value_t b;
    if (set_branch(rec, name, has, &b))
        return -1;
    return has ? avro_value_set_int(&b, v) : 0;
}

static int set_opt_long(avro_value_t *rec, const char *name, bool has, int64_t v)
{
    avro_value_t b;
    if (set_branch(rec, name, has, &b))
        return -1;
    return has ? avro_value_set_long(&b, v) : 0;
}

int kf_audit_encode(kf_serde *s, int32_t schema_id, const char *id, int64_t ts_ms,
                    const char *program, const char *instance, const kf_audit_event *ev,
                    kf_buf *out, kf_error *err)
{
    if (!id || !program || !instance || !ev || !ev->action || !ev->message ||
        (int)ev->level < KF_AUDIT_INFO || (int)ev->level > KF_AUDIT_ERROR)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "an audit event needs an id, program, instance, action, message and "
                            "a known level");
    avro_value_t *v;
    int rc = kf_serde_value(s, schema_id, &v, err);
    if (rc != KF_OK)
        return rc;
    avro_value_t ts;
    if (set_string(v, "id", id) || avro_value_get_by_name(v, "ts_ms", &ts, NULL) ||
        avro_value_set_long(&ts, ts_ms) || set_string(v, "program", program) ||
        set_string(v, "instance", instance) || set_string(v, "action", ev->action) ||
        set_string(v, "level", LEVELS[ev->level]) || set_string(v, "message", ev->message) ||
        set_opt_string(v, "topic", ev->topic) ||
        set_opt_int(v, "partition", ev->has_partition, ev->partition) ||
        set_opt_long(v, "offset", ev->has_offset, ev->offset) || set_opt_string(v, "db", ev->db) ||
        set_opt_string(v, "table", ev->table) ||
        set_opt_int(v, "schema_id", ev->has_schema_id, ev->schema_id) ||
        set_opt_string(v, "rule_id", ev->rule_id) ||
        set_opt_long(v, "count", ev->has_count, ev->count) ||
        set_opt_string(v, "details", ev->details))
        return kf_error_set(err, KF_ERR_INVALID, false, "schema id %d is not an AuditEvent: %s",
                            (int)schema_id, avro_strerror());
    return kf_serde_encode(s, schema_id, v, out, err);
}

/* ---- the producer ---- */

static void log_cb(const rd_kafka_t *rk, int level, const char *facility, const char *buf)
{
    kf_log_level lvl = level <= 3   ? KF_LOG_ERROR
                       : level == 4 ? KF_LOG_WARN
                       : level <= 6 ? KF_LOG_INFO
                                    : KF_LOG_DEBUG;
    if (kf_log_enabled(lvl))
        kf_log(lvl, buf, "facility", facility, "client", rd_kafka_name(rk), (char *)NULL);
}

/* Client errors are transient for a non-transactional producer (librdkafka reconnects and
 * retries); a fatal idempotence error fails the deliveries, which count. */
static void error_cb(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    (void)opaque;
    kf_log(KF_LOG_WARN, "audit producer error", "client", rd_kafka_name(rk), "error",
           rd_kafka_err2name((rd_kafka_resp_err_t)code), "reason", reason, (char *)NULL);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    kf_audit *a = opaque;
    flight *f = m->_private;
    pthread_mutex_lock(&a->lock);
    bool purged =
        m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        count_sent(a, f->action);
    else
        count_failure(a, f->action, purged ? R_SHUTDOWN : R_DELIVERY, false);
    char action[MAX_ACTION + 1];
    snprintf(action, sizeof(action), "%s", a->actions[f->action].name);
    a->in_flight--;
    pthread_cond_broadcast(&a->progress);
    pthread_mutex_unlock(&a->lock);
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        kf_log(KF_LOG_ERROR, "could not deliver an audit event", "topic", a->topic, "action",
               action, "id", f->id, "error", rd_kafka_err2str(m->err), (char *)NULL);
    free(f);
}

static bool is_txn_key(const char *k)
{
    return strcmp(k, "transactional.id") == 0 || strcmp(k, "transaction.timeout.ms") == 0;
}

/* The producer, from the program's librdkafka pairs (borrowed for the call). It also does the
 * topic's set-up (metadata, CreateTopics): a separate admin client would cost about 1 MB of
 * peak memory for a moment's work. */
static rd_kafka_t *producer_new(kf_audit *a, const char *const *kv, size_t npairs, kf_error *err)
{
    char errstr[512], max[24];
    snprintf(max, sizeof(max), "%zu", a->max_pending);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate the audit producer settings");
        return NULL;
    }
    /* No idempotence: an idempotent producer can enter a fatal state (an unresolvable
     * sequence gap) that would end audit events for the rest of the run. acks=all with one
     * request in flight keeps the order; a retry after a lost acknowledgement may write an
     * event twice, with the same id. */
    const char *defaults[] = {"enable.idempotence",
                              "false",
                              "acks",
                              "all",
                              "max.in.flight.requests.per.connection",
                              "1",
                              "client.id",
                              "kfleet-audit"};
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i += 2)
        rd_kafka_conf_set(conf, defaults[i], defaults[i + 1], errstr, sizeof(errstr));
    for (size_t i = 0; i < npairs; i++) {
        if (is_txn_key(kv[2 * i]) || kf_kafka_property_ignored(RD_KAFKA_PRODUCER, kv[2 * i]))
            continue;
        if (rd_kafka_conf_set(conf, kv[2 * i], kv[2 * i + 1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            kf_error_set(err, KF_ERR_CONFIG, false, "kafka.%s: %s", kv[2 * i], errstr);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    rd_kafka_conf_set(conf, "queue.buffering.max.messages", max, errstr, sizeof(errstr));
    /* a missing topic is created with its settings below, not by the broker's defaults */
    rd_kafka_conf_set(conf, "allow.auto.create.topics", "false", errstr, sizeof(errstr));
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, a);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk)
        kf_error_set(err, KF_ERR_CONFIG, false, "could not create the audit producer: %s", errstr);
    return rk;
}

/* ---- the thread ---- */

/* Asks the brokers about the audit topic alone: 0 with *exists, or an error. */
static int topic_exists(kf_audit *a, bool *exists, kf_error *err)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(a->rk, a->topic, NULL);
    if (!rkt)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not create a topic handle");
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(a->rk, 0, rkt, &md, ADMIN_TIMEOUT_MS);
    if (!e)
        e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    *exists = e == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        return KF_OK;
    return kf_kafka_error_set_code(err, e, "could not read the audit topic's metadata");
}

/* Creates the audit topic with one partition (the broker's replication factor); a topic
 * created meanwhile by another instance is fine. */
static int create_topic(kf_audit *a, kf_error *err)
{
    char errstr[256];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(a->topic, 1, -1, errstr, sizeof(errstr));
    rd_kafka_AdminOptions_t *opts =
        rd_kafka_AdminOptions_new(a->rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_queue_t *q = rd_kafka_queue_new(a->rk);
    int rc = KF_OK;
    if (!nt || !opts || !q) {
        rc = kf_error_set(err, nt ? KF_ERR_NOMEM : KF_ERR_CONFIG, false,
                          "could not prepare the audit topic's creation: %s",
                          nt ? "out of memory" : errstr);
        goto out_free;
    }
    rd_kafka_AdminOptions_set_request_timeout(opts, ADMIN_TIMEOUT_MS, errstr, sizeof(errstr));
    rd_kafka_AdminOptions_set_operation_timeout(opts, ADMIN_TIMEOUT_MS, errstr, sizeof(errstr));
    rd_kafka_CreateTopics(a->rk, &nt, 1, opts, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, ADMIN_TIMEOUT_MS + 5000);
    if (!ev) {
        rc = kf_error_set(err, KF_ERR_TIMEOUT, true,
                          "could not create the audit topic: no answer within %d ms",
                          ADMIN_TIMEOUT_MS);
        goto out_free;
    }
    rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
    if (!e && n == 1)
        e = rd_kafka_topic_result_error(tr[0]);
    if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        rc = kf_kafka_error_set_code(err, e, "could not create the audit topic");
    else if (!e)
        kf_log(KF_LOG_INFO, "created the audit topic", "topic", a->topic, (char *)NULL);
    rd_kafka_event_destroy(ev);

out_free:
    if (q)
        rd_kafka_queue_destroy(q);
    if (opts)
        rd_kafka_AdminOptions_destroy(opts);
    if (nt)
        rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* Creates the topic when missing and registers the schema. Runs without the lock. */
static int setup(kf_audit *a, kf_error *err)
{
    if (!a->topic_ready) {
        bool exists = false;
        int rc = topic_exists(a, &exists, err);
        if (rc == KF_OK && !exists)
            rc = create_topic(a, err);
        if (rc != KF_OK)
            return rc;
        a->topic_ready = true;
    }
    int32_t id;
    int rc = kf_serde_register(a->serde, a->subject, kf_audit_schema(), &id, err);
    if (rc != KF_OK)
        return rc;
    pthread_mutex_lock(&a->lock);
    a->stats.schema_id = id;
    pthread_mutex_unlock(&a->lock);
    return KF_OK;
}

/* Encodes and produces p (taken from the queue and counted in flight); frees it. Runs without
 * the lock. */
static void produce_one(kf_audit *a, pending *p)
{
    kf_audit_event ev = {.action = p->action_name,
                         .level = p->level,
                         .message = p->message,
                         .topic = p->topic,
                         .has_partition = p->has_partition,
                         .partition = p->partition,
                         .has_offset = p->has_offset,
                         .offset = p->offset,
                         .db = p->db,
                         .table = p->table,
                         .has_schema_id = p->has_schema_id,
                         .schema_id = p->schema_id,
                         .rule_id = p->rule_id,
                         .has_count = p->has_count,
                         .count = p->count,
                         .details = p->details};
    kf_error err;
    enum reason failure = R_COUNT;
    flight *f = NULL;
    int rc = kf_audit_encode(a->serde, a->stats.schema_id, p->id, p->ts_ms, a->program, a->instance,
                             &ev, &a->buf, &err);
    if (rc != KF_OK) {
        failure = R_ENCODE;
        kf_log(KF_LOG_ERROR, "could not encode an audit event", "action", ev.action, "id", p->id,
               "reason", err.message, (char *)NULL);
        goto out_done;
    }
    if (!(f = malloc(sizeof(*f)))) {
        failure = R_NOMEM;
        goto out_done;
    }
    f->action = p->action;
    memcpy(f->id, p->id, sizeof(f->id));
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int attempt = 0; attempt <= QUEUE_FULL_RETRIES; attempt++) {
        e = rd_kafka_producev(
            a->rk, RD_KAFKA_V_TOPIC(a->topic), RD_KAFKA_V_KEY(a->instance, strlen(a->instance)),
            RD_KAFKA_V_VALUE(a->buf.data, a->buf.len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_TIMESTAMP(p->ts_ms), RD_KAFKA_V_OPAQUE(f), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(a->rk, 100);
    }
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        failure = R_PRODUCE;
        kf_log(KF_LOG_ERROR, "could not produce an audit event", "topic", a->topic, "action",
               ev.action, "id", p->id, "error", rd_kafka_err2str(e), (char *)NULL);
        free(f);
    }

out_done:
    if (failure != R_COUNT) {
        pthread_mutex_lock(&a->lock);
        count_failure(a, p->action, failure, false);
        a->in_flight--;
        pthread_cond_broadcast(&a->progress);
        pthread_mutex_unlock(&a->lock);
    }
    pending_free(p);
}

/* After the stop: what was never produced is lost; deliveries get flush_timeout_ms. */
static void drain(kf_audit *a)
{
    pthread_mutex_lock(&a->lock);
    uint64_t lost = 0;
    while (a->head) {
        pending *p = a->head;
        a->head = p->next;
        a->queued--;
        count_failure(a, p->action, R_SHUTDOWN, false);
        pending_free(p);
        lost++;
    }
    a->tail = NULL;
    pthread_cond_broadcast(&a->progress);
    pthread_mutex_unlock(&a->lock);
    if (lost) {
        char n[24];
        snprintf(n, sizeof(n), "%" PRIu64, lost);
        kf_log(KF_LOG_ERROR,
               "could not write audit events: the audit topic or schema could not be set up",
               "topic", a->topic, "events", n, (char *)NULL);
    }
    rd_kafka_flush(a->rk, a->flush_timeout_ms);
    pthread_mutex_lock(&a->lock);
    size_t open = a->in_flight;
    pthread_mutex_unlock(&a->lock);
    if (open) {
        char n[24];
        snprintf(n, sizeof(n), "%zu", open);
        kf_log(KF_LOG_ERROR, "audit events not acknowledged before the flush timeout; giving up",
               "topic", a->topic, "events", n, (char *)NULL);
        rd_kafka_purge(a->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        int64_t deadline = kf_retry_now_ms() + PURGE_WAIT_MS;
        for (;;) {
            rd_kafka_poll(a->rk, 50);
            pthread_mutex_lock(&a->lock);
            open = a->in_flight;
            pthread_mutex_unlock(&a->lock);
            if (!open || kf_retry_now_ms() >= deadline)
                break;
        }
    }
}

static void *run(void *arg)
{
    kf_audit *a = arg;
    kf_backoff bo;
    kf_backoff_init(&bo, SETUP_BACKOFF_MS, SETUP_BACKOFF_MAX_MS, 2.0, KF_JITTER_DECORRELATED,
                    kf_retry_seed(), NULL);
    int64_t next_setup = 0;
    pthread_mutex_lock(&a->lock);
    for (;;) {
        if (!a->ready && !a->stop && kf_retry_now_ms() >= next_setup) {
            pthread_mutex_unlock(&a->lock);
            kf_error err;
            int rc = setup(a, &err);
            if (rc == KF_OK) {
                char id[16];
                snprintf(id, sizeof(id), "%d", (int)a->stats.schema_id);
                kf_log(KF_LOG_INFO, "writing audit events", "topic", a->topic, "schema_id", id,
                       (char *)NULL);
            } else {
                uint64_t delay = kf_backoff_next_ms(&bo);
                char d[24];
                snprintf(d, sizeof(d), "%" PRIu64, delay);
                kf_log(KF_LOG_WARN, "could not set up audit events; retrying", "topic", a->topic,
                       "reason", err.message, "delay_ms", d, (char *)NULL);
                next_setup = kf_retry_now_ms() + (int64_t)delay;
            }
            pthread_mutex_lock(&a->lock);
            a->ready = rc == KF_OK;
        }
        while (a->ready && a->head) {
            pending *p = a->head;
            a->head = p->next;
            if (!a->head)
                a->tail = NULL;
            a->queued--;
            a->in_flight++;
            pthread_mutex_unlock(&a->lock);
            produce_one(a, p);
            pthread_mutex_lock(&a->lock);
        }
        if (a->stop)
            break;
        pthread_mutex_unlock(&a->lock);
        rd_kafka_poll(a->rk, 0); /* client errors */
        pthread_mutex_lock(&a->lock);
        if (a->in_flight > 0) {
            pthread_mutex_unlock(&a->lock);
            rd_kafka_poll(a->rk, POLL_MS);
            pthread_mutex_lock(&a->lock);
            continue;
        }
        if (a->head && a->ready)
            continue;
        int64_t wait = IDLE_WAIT_MS;
        if (!a->ready) {
            int64_t until = next_setup - kf_retry_now_ms();
            wait = until < 1 ? 1 : until < wait ? until : wait;
        }
        if (!a->stop)
            kf_thread_wait_ms(&a->wake, &a->lock, wait);
    }
    pthread_mutex_unlock(&a->lock);
    drain(a);
    return NULL;
}

/* ---- public ---- */

kf_audit *kf_audit_new(const kf_audit_options *o, kf_error *err)
{
    if (!o || !o->program || !o->program[0]) {
        kf_error_set(err, KF_ERR_INVALID, false, "the audit emitter needs a program name");
        return NULL;
    }
    if (!o->registry) {
        kf_error_set(err, KF_ERR_CONFIG, false,
                     "audit events need the schema registry: set registry.url (--registry-url "
                     "or KFLEET_REGISTRY_URL), or turn them off with audit.enabled=false");
        return NULL;
    }
    kf_audit *a = calloc(1, sizeof(*a));
    if (!a) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate the audit emitter");
        return NULL;
    }
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->wake, NULL);
    pthread_cond_init(&a->progress, NULL);
    a->registry = o->registry;
    a->max_pending = o->max_pending ? o->max_pending : DEFAULT_MAX_PENDING;
    a->flush_timeout_ms = o->flush_timeout_ms > 0 ? o->flush_timeout_ms : DEFAULT_FLUSH_MS;
    a->stats.schema_id = -1;
    char buf[512];
    if (o->instance && o->instance[0]) {
        snprintf(buf, sizeof(buf), "%s", o->instance);
    } else {
        char host[256] = "localhost";
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        snprintf(buf, sizeof(buf), "%s:%ld", host, (long)getpid());
    }
    bool nomem = false;
    a->instance = clean_copy(buf, &nomem);
    a->program = clean_copy(o->program, &nomem);
    if (o->topic && o->topic[0])
        snprintf(buf, sizeof(buf), "%s", o->topic);
    else
        snprintf(buf, sizeof(buf), "%s.audit", o->prefix && o->prefix[0] ? o->prefix : "kfleet");
    if (strlen(buf) > TOPIC_MAX ||
        strspn(buf, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789._-") != strlen(buf)) {
        kf_error_set(err, KF_ERR_CONFIG, false,
                     "audit topic \"%s\" is not a Kafka topic name: at most %d characters of "
                     "a-z, A-Z, 0-9, '.', '_' and '-'",
                     buf, TOPIC_MAX);
        goto out_destroy;
    }
    a->topic = strdup(buf);
    snprintf(buf, sizeof(buf), "%s-value", a->topic ? a->topic : "");
    a->subject = strdup(buf);
    if (nomem || !a->topic || !a->subject)
        goto out_nomem;
    if (o->metrics) {
        a->m_sent = kf_metrics_counter(o->metrics, "kfleet_audit_events_total",
                                       "Audit events acknowledged by Kafka, by action.", 1,
                                       (const char *[]){"action"}, err);
        a->m_fail = kf_metrics_counter(o->metrics, "kfleet_audit_failures_total",
                                       "Audit events refused or lost, by action and reason "
                                       "(queue_full, invalid, nomem, encode, produce, delivery, "
                                       "shutdown).",
                                       2, (const char *[]){"action", "reason"}, err);
        if (!a->m_sent || !a->m_fail)
            goto out_destroy;
    }
    if (!(a->serde = kf_serde_new(a->registry, err)) ||
        !(a->rk = producer_new(a, o->kafka_kv, o->kafka_npairs, err)))
        goto out_destroy;
    if (pthread_create(&a->thread, NULL, run, a) != 0) {
        kf_error_set(err, KF_ERR_FATAL, false, "could not start the audit thread");
        goto out_destroy;
    }
    a->started = true;
    return a;

out_nomem:
    kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate the audit emitter");
out_destroy:
    kf_audit_destroy(a);
    return NULL;
}

void kf_audit_destroy(kf_audit *a)
{
    if (!a)
        return;
    if (a->started)
        kf_thread_stop(a->thread, &a->lock, &a->wake, &a->stop);
    while (a->head) {
        pending *p = a->head;
        a->head = p->next;
        pending_free(p);
    }
    if (a->rk)
        rd_kafka_destroy(a->rk);
    kf_serde_destroy(a->serde);
    kf_buf_free(&a->buf);
    free(a->program);
    free(a->instance);
    free(a->topic);
    free(a->subject);
    pthread_cond_destroy(&a->progress);
    pthread_cond_destroy(&a->wake);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

/* Logs a refused event: every invalid one, queue-full ones at most every 10 s. */
static void log_refused(kf_audit *a, const char *action, enum reason r, const char *why)
{
    if (r != R_QUEUE_FULL) {
        kf_log(KF_LOG_ERROR, "audit event refused", "action", action ? action : "", "reason",
               REASONS[r], "detail", why, (char *)NULL);
        return;
    }
    int64_t now = kf_retry_now_ms();
    pthread_mutex_lock(&a->lock);
    a->full_unlogged++;
    uint64_t n = a->full_unlogged;
    bool log = a->full_logged_ms == 0 || now - a->full_logged_ms >= FULL_LOG_INTERVAL_MS;
    if (log) {
        a->full_logged_ms = now;
        a->full_unlogged = 0;
    }
    pthread_mutex_unlock(&a->lock);
    if (log) {
        char c[24], m[24];
        snprintf(c, sizeof(c), "%" PRIu64, n);
        snprintf(m, sizeof(m), "%zu", a->max_pending);
        kf_log(KF_LOG_WARN, "audit events refused: the queue is full", "topic", a->topic, "action",
               action, "refused", c, "max_pending", m, (char *)NULL);
    }
}

int kf_audit_emit(kf_audit *a, const kf_audit_event *ev)
{
    if (!a)
        return KF_OK;
    const char *why = invalid_reason(ev);
    if (why) {
        pthread_mutex_lock(&a->lock);
        count_failure(a, action_index(a, ev ? ev->action : NULL), R_INVALID, true);
        pthread_mutex_unlock(&a->lock);
        log_refused(a, ev ? ev->action : NULL, R_INVALID, why);
        return KF_ERR_INVALID;
    }
    bool nomem = false;
    pending *p = calloc(1, sizeof(*p));
    if (!p) {
        nomem = true;
    } else {
        snprintf(p->action_name, sizeof(p->action_name), "%s", ev->action);
        p->level = ev->level;
        p->ts_ms = ev->ts_ms ? ev->ts_ms : wall_ms();
        if (ev->id)
            snprintf(p->id, sizeof(p->id), "%s", ev->id);
        else
            kf_audit_uuid(p->id);
        p->message = clean_copy(ev->message, &nomem);
        p->topic = clean_copy(ev->topic, &nomem);
        p->db = clean_copy(ev->db, &nomem);
        p->table = clean_copy(ev->table, &nomem);
        p->rule_id = clean_copy(ev->rule_id, &nomem);
        if (ev->details && !(p->details = strdup(ev->details)))
            nomem = true;
        p->has_partition = ev->has_partition;
        p->partition = ev->partition;
        p->has_offset = ev->has_offset;
        p->offset = ev->offset;
        p->has_schema_id = ev->has_schema_id;
        p->schema_id = ev->schema_id;
        p->has_count = ev->has_count;
        p->count = ev->count;
    }
    pthread_mutex_lock(&a->lock);
    int action = action_index(a, ev->action);
    enum reason refused = nomem                                        ? R_NOMEM
                          : a->queued + a->in_flight >= a->max_pending ? R_QUEUE_FULL
                                                                       : R_COUNT;
    if (refused == R_COUNT) {
        p->action = action;
        if (a->tail)
            a->tail->next = p;
        else
            a->head = p;
        a->tail = p;
        a->queued++;
        a->stats.emitted++;
        pthread_cond_signal(&a->wake);
    } else {
        count_failure(a, action, refused, true);
    }
    pthread_mutex_unlock(&a->lock);
    if (refused == R_COUNT)
        return KF_OK;
    pending_free(p);
    log_refused(a, ev->action, refused, refused == R_NOMEM ? "out of memory" : NULL);
    return refused == R_NOMEM ? KF_ERR_NOMEM : KF_ERR_FULL;
}

int kf_audit_flush(kf_audit *a, int timeout_ms)
{
    if (!a)
        return KF_OK;
    int64_t deadline = kf_retry_now_ms() + timeout_ms;
    pthread_mutex_lock(&a->lock);
    for (;;) {
        if (a->queued + a->in_flight == 0)
            break;
        int64_t left = deadline - kf_retry_now_ms();
        if (left <= 0)
            break;
        kf_thread_wait_ms(&a->progress, &a->lock, left < 100 ? left : 100);
    }
    bool done = a->queued + a->in_flight == 0;
    pthread_mutex_unlock(&a->lock);
    return done ? KF_OK : KF_ERR_TIMEOUT;
}

void kf_audit_stats_get(kf_audit *a, kf_audit_stats *out)
{
    pthread_mutex_lock(&a->lock);
    *out = a->stats;
    out->pending = a->queued + a->in_flight;
    pthread_mutex_unlock(&a->lock);
}

const char *kf_audit_topic(const kf_audit *a)
{
    return a->topic;
}
