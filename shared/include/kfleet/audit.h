/* Audit events: what a kfleet program did that an operator may need to trace (start, stop,
 * alerts, replays, schema changes), written as io.kfleet.audit.AuditEvent Avro records in the
 * Confluent wire format to <prefix>.audit, off the program's hot path. */
#ifndef KFLEET_AUDIT_H
#define KFLEET_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kfleet/config.h"
#include "kfleet/error.h"
#include "kfleet/metrics.h"
#include "kfleet/registry.h"
#include "kfleet/serde.h"

/*
 * How events travel
 * -----------------
 * kf_audit_emit validates and copies the event into a bounded in-memory queue and returns at
 * once; it never waits for the network, so it may be called from a worker's hot path and from
 * any thread. A background thread owned by the emitter does everything slow: it creates the
 * audit topic when missing (one partition), registers schemas/kfleet_audit.avsc under
 * "<audit topic>-value", encodes each event and produces it. Until the topic and the schema
 * are set up (the registry or the brokers may be down at start) events wait in the queue and
 * the set-up is retried with capped backoff (1 s to 60 s). Every failure is logged and counted
 * in kfleet_audit_failures_total{action,reason}, never returned to the worker as fatal:
 *   queue_full   kf_audit_emit found max_pending events queued or in flight (the event is
 *                refused; kf_audit_emit returns KF_ERR_FULL)
 *   invalid      the event broke a rule below (KF_ERR_INVALID)
 *   encode       the record could not be encoded
 *   produce      librdkafka refused the record
 *   delivery     the brokers did not acknowledge it (after librdkafka's own retries)
 *   shutdown     kf_audit_destroy gave up on it: the set-up never succeeded, or its delivery
 *                was still open when the flush timeout ran out
 * Delivered events count in kfleet_audit_events_total{action}.
 *
 * The producer: the emitter has its own small non-transactional producer rather than
 * borrowing the program's. An idle librdkafka producer costs about 0.1 MB of resident
 * memory once the library is loaded. Borrowing would tie audit events to the program's
 * transactions: a transactional producer can only write inside an open transaction, but the
 * events are about things that happen outside one (start and stop lie outside the producer's
 * lifetime; kfleet-validate reports a dataset breach after the batch that closed the window
 * has committed, or from a timer between batches when a quiet stream closes it), and holding
 * them for the next batch's transaction would delay them without bound on a quiet stream,
 * which is exactly when min_rows breaches happen. So audit records are never part of a worker's
 * transaction: each event describes something that is already durable (a committed batch, a
 * finished replay), is written at least once, and keeps the id it got when it was emitted;
 * read_committed consumers see it as soon as it is acknowledged. The producer runs with
 * acks=all, one request in flight (order kept) and without idempotence, whose fatal states
 * would end audit events for the rest of the run; the program's kafka.* settings apply on top,
 * except transactional.id and transaction.timeout.ms.
 *
 * Event ids: a random UUID (version 4) drawn when the event is emitted, so every copy of one
 * event carries the same id (a producer retry after a lost acknowledgement, a consumer reading
 * again after its own restart), and the consumer keeps one row by the id, the primary key of
 * kfleet_meta.audit_log. A deterministic id would merge distinct facts: two replicas
 * reporting the same rule and window each saw a different share of the partitions, and two
 * replays of a DLQ are two operations. A caller whose event does have a natural identity (a
 * schema change applied again after a crash) passes its own id in kf_audit_event.id.
 *
 * Keys: every record's key is the instance string (UTF-8 bytes), so one instance's events
 * keep their order on a topic with several partitions.
 */

/* The audit.* keys of a program's configuration; put KF_AUDIT_CONFIG_KEYS into its table. */
typedef struct kf_audit_config {
    bool enabled;
    char *topic; /* NULL: <topic.prefix>.audit */
} kf_audit_config;

#define KF_AUDIT_CONFIG_KEYS(cfg_type, member)                                                     \
    {.name = "audit.enabled",                                                                      \
     .type = KF_CONFIG_BOOL,                                                                       \
     .offset = offsetof(cfg_type, member.enabled),                                                 \
     .default_value = "true",                                                                      \
     .description = "Write audit events (schemas/kfleet_audit.avsc) to audit.topic; they need "    \
                    "registry.url. false: none are written."},                                     \
    {                                                                                              \
        .name = "audit.topic", .type = KF_CONFIG_STRING,                                           \
        .offset = offsetof(cfg_type, member.topic),                                                \
        .description = "Topic of the audit events (created with one partition when missing); "     \
                       "default <topic.prefix>.audit."                                             \
    }

typedef enum kf_audit_level {
    KF_AUDIT_INFO = 0,
    KF_AUDIT_WARN,
    KF_AUDIT_ERROR,
} kf_audit_level;

/* One event. Strings are borrowed for the call (kf_audit_emit copies them). Optional fields
 * are NULL / has_* false when absent and then written as Avro null. */
typedef struct kf_audit_event {
    const char *action;   /* required: start, stop, alert, replay, schema_change, dlq, ... */
    kf_audit_level level; /* info (default), warn, error */
    const char *message;  /* required: one human-readable line */
    const char *topic;
    bool has_partition;
    int32_t partition;
    bool has_offset;
    int64_t offset;
    const char *db;
    const char *table;
    bool has_schema_id;
    int32_t schema_id;
    const char *rule_id;
    bool has_count;
    int64_t count;
    const char *details; /* a JSON object as text, or NULL */
    const char *id;      /* canonical UUID text (8-4-4-4-12 hex digits); NULL: a new random one */
    int64_t ts_ms;       /* ms since the epoch; 0: now */
} kf_audit_event;

typedef struct kf_audit_options {
    const char *program;         /* required: "kfleet-validate" */
    const char *instance;        /* NULL or "": "<hostname>:<pid>" */
    const char *topic;           /* NULL or "": "<prefix>.audit" */
    const char *prefix;          /* topic prefix; NULL: "kfleet" */
    const char *const *kafka_kv; /* librdkafka pairs of the program (borrowed for the call) */
    size_t kafka_npairs;
    kf_registry *registry; /* required; borrowed, must outlive the emitter (it is thread-safe) */
    kf_metrics *metrics;   /* may be NULL; borrowed, must outlive the emitter */
    size_t max_pending;    /* events queued or in flight at most; 0 = 1000 */
    int flush_timeout_ms;  /* how long kf_audit_destroy waits for deliveries; 0 = 10000 */
} kf_audit_options;

typedef struct kf_audit kf_audit;

/* Creates the emitter and starts its thread, which sets up the topic and the schema at once.
 * No registry is KF_ERR_CONFIG (audit events need one; audit.enabled=false turns them off); a
 * bad kafka property is KF_ERR_CONFIG naming it. NULL + err on failure. */
kf_audit *kf_audit_new(const kf_audit_options *o, kf_error *err);

/* Writes what is queued (once the set-up succeeded), waits up to flush_timeout_ms for the
 * deliveries, logs and counts what is lost, stops the thread and frees everything. NULL is a
 * no-op, so a program with audit.enabled=false keeps a NULL emitter and calls everything the
 * same. */
void kf_audit_destroy(kf_audit *a);

/* Queues one event (copied: the caller's strings may go at once). Never blocks on the network;
 * thread-safe. Returns 0, KF_ERR_INVALID (no action or message, an action that is not
 * [a-z0-9_] of at most 40 characters, details that are not a JSON object or longer than
 * 64 KiB, a malformed id) or KF_ERR_FULL (max_pending reached); both are logged and counted,
 * and callers may ignore them. Strings are cut to 4 KiB at a character boundary and invalid
 * UTF-8 becomes U+FFFD. a NULL: no-op, 0. */
int kf_audit_emit(kf_audit *a, const kf_audit_event *ev);

/* Waits up to timeout_ms until every queued event was delivered or failed. KF_ERR_TIMEOUT when
 * some remain (e.g. the registry is still down); 0 otherwise. a NULL: 0. */
int kf_audit_flush(kf_audit *a, int timeout_ms);

/* Counters since kf_audit_new, for tests and exit summaries. */
typedef struct kf_audit_stats {
    uint64_t emitted;  /* accepted by kf_audit_emit */
    uint64_t refused;  /* refused by kf_audit_emit (queue_full, invalid) */
    uint64_t sent;     /* acknowledged by Kafka */
    uint64_t failed;   /* accepted, then lost (encode, produce, delivery, shutdown) */
    uint64_t pending;  /* queued or in flight now */
    int32_t schema_id; /* registry id of the audit schema; -1 until registered */
} kf_audit_stats;
void kf_audit_stats_get(kf_audit *a, kf_audit_stats *out);

/* The topic the emitter writes to (borrowed until kf_audit_destroy). */
const char *kf_audit_topic(const kf_audit *a);

/* The AuditEvent schema as compiled in from schemas/kfleet_audit.avsc. Static storage. */
const char *kf_audit_schema(void);

/* Encodes one event in the wire format of schema_id into out (overwritten), the AuditEvent
 * schema being known to s under that id (registered, fetched or added). id, program and
 * instance are the record's fields (ev->id and ev->ts_ms are ignored here; ts_ms is given).
 * Strings must be valid UTF-8 (kf_audit_emit makes them so). Errors as kf_serde_encode;
 * KF_ERR_INVALID when a field is missing or the schema is not an AuditEvent. */
int kf_audit_encode(kf_serde *s, int32_t schema_id, const char *id, int64_t ts_ms,
                    const char *program, const char *instance, const kf_audit_event *ev,
                    kf_buf *out, kf_error *err);

/* Writes a random (version 4) UUID as 36 characters and a NUL into out. */
void kf_audit_uuid(char out[37]);

#endif
