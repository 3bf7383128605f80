/* Dead-letter queues shared by every worker: a record that cannot be processed goes to
 * <prefix>.dlq.<source-topic> with its key, value, timestamp and headers byte-identical to the
 * input, plus headers saying why (Kafka Connect's __connect.errors.* and kfleet.*). */
#ifndef KFLEET_DLQ_H
#define KFLEET_DLQ_H

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

#endif
