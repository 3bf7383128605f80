/* Dead-letter queues shared by every worker: a record that cannot be processed goes to
 * <prefix>.dlq.<source-topic> with its key, value, timestamp and headers byte-identical to the
 * input, plus headers saying why (Kafka Connect's __connect.errors.* and kfleet.*). */
#ifndef KFLEET_DLQ_H
#define KFLEET_DLQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "kfleet/error.h"
#include "kfleet/kafka.h"

/* Header names (DESIGN.md). */
#define KF_DLQ_H_TOPIC     "__connect.errors.topic"
#define KF_DLQ_H_PARTITION "__connect.errors.partition"
#define KF_DLQ_H_OFFSET    "__connect.errors.offset"
#define KF_DLQ_H_STAGE     "__connect.errors.stage"
#define KF_DLQ_H_CLASS     "__connect.errors.exception.class.name"
#define KF_DLQ_H_MESSAGE   "__connect.errors.exception.message"
#define KF_DLQ_H_RULE_ID   "kfleet.rule.id"
#define KF_DLQ_H_REASON    "kfleet.error.reason"
#define KF_DLQ_H_WORKER    "kfleet.worker"
#define KF_DLQ_H_REPLAY    "kfleet.replay.count"

/* The kfleet.rule.id of a record that could not be decoded (wrong magic byte, unknown schema
 * id, truncated or corrupt Avro). Such a record broke no contract rule, so it gets this
 * reserved id, which kfleet-replay --rule selects; kfleet.error.reason says which failure it
 * was. Rule ids starting with "kfleet." are reserved for kfleet itself. */
#define KF_DLQ_RULE_DECODE "kfleet.decode"

/* Why a record is quarantined. Strings are borrowed for the call. */
typedef struct kf_dlq_reason {
    const char *stage;       /* "decode", "validate", "transform", "sink", ... */
    const char *error_class; /* short class of failure: "DecodeError", "RuleViolation", ... */
    const char *message;     /* human-readable reason, e.g. "column \"email\" does not match ..." */
    const char *rule_id;     /* the violated rule's id, or NULL */
    const char *reason;      /* machine-friendly reason code ("not_null", "unknown_schema_id") */
} kf_dlq_reason;

typedef struct kf_dlq kf_dlq;

/* Creates a DLQ writer producing through p (borrowed; may be transactional, so the DLQ record
 * joins the worker's transaction). prefix is the topic prefix ("kfleet"), worker the program
 * name written in kfleet.worker. Both copied. */
kf_dlq *kf_dlq_new(kf_producer *p, const char *prefix, const char *worker, kf_error *err);
void kf_dlq_destroy(kf_dlq *d); /* NULL is a no-op */

/* Writes the DLQ topic name for a source topic into buf: "<prefix>.dlq.<source>". A source
 * topic that already is a DLQ topic keeps its name. Returns 0 or KF_ERR_INVALID (too long). */
int kf_dlq_topic_name(const kf_dlq *d, const char *source_topic, char *buf, size_t len);

/* Quarantines one consumed message: same key, value, timestamp and original headers (in
 * order), plus the error headers (an existing error header of the same name is replaced;
 * kfleet.replay.count is carried over unchanged). Produced with kf_producer_produce, so it
 * is accounted like any output. Returns 0 or the producer's error. */
int kf_dlq_send(kf_dlq *d, const rd_kafka_message_t *msg, const kf_dlq_reason *why, kf_error *err);

/* Records sent so far. */
uint64_t kf_dlq_count(const kf_dlq *d);

/* True when name is one of the error headers a DLQ writer adds (every __connect.errors.*
 * header, kfleet.rule.id, kfleet.error.reason, kfleet.worker); kfleet.replay.count is not. */
bool kf_dlq_is_error_header(const char *name);

/* What the headers of a DLQ record (borrowed) say. Strings are NUL-terminated copies, cut to
 * the field size; absent headers leave them empty and the numbers at -1 (replay_count 0). */
typedef struct kf_dlq_info {
    char topic[256]; /* __connect.errors.topic: the origin topic */
    int32_t partition;
    int64_t offset;
    char stage[64];
    char error_class[128];
    char message[512];
    char rule_id[256];
    char reason[128];
    char worker[128];
    int64_t replay_count; /* kfleet.replay.count; 0 when absent or not a number */
} kf_dlq_info;

/* Fills *out from msg's headers (the last header of each name wins). */
void kf_dlq_info_get(const rd_kafka_message_t *msg, kf_dlq_info *out);

/* The headers to re-produce a DLQ record to its origin: the record's headers in order
 * without the error headers, and kfleet.replay.count set to replay_count (one header, at
 * the end). The caller owns the list (or hands it to kf_producer_produce). NULL only when
 * out of memory. */
rd_kafka_headers_t *kf_dlq_replay_headers(const rd_kafka_message_t *msg, int64_t replay_count);

#endif
