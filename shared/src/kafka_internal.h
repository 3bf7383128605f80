/* Internal to the kafka module: the state every kfleet Kafka client shares (log identity,
 * fatal error) and the configuration builder. Not installed; include only from kafka_*.c. */
#ifndef KFLEET_KAFKA_INTERNAL_H
#define KFLEET_KAFKA_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "kfleet/error.h"
#include "kfleet/kafka.h"

/* First member of kf_producer, kf_consumer and kf_admin: librdkafka's opaque points at the
 * enclosing object, so callbacks reach this part through a cast. */
typedef struct kf_kafka_client {
    atomic_bool fatal;
    pthread_mutex_t lock; /* guards fatal_reason */
    char fatal_reason[512];
} kf_kafka_client;

void kf_kafka_client_init(kf_kafka_client *cl);
void kf_kafka_client_fini(kf_kafka_client *cl);

/* Builds a configuration for a client of this type: defaults pairs first, then the caller's
 * pairs (keys only the other type of client reads are left out, see
 * kf_kafka_property_ignored), then log and error callbacks with opaque as the librdkafka
 * opaque (its first member must be a kf_kafka_client). Returns NULL and fills err with
 * KF_ERR_CONFIG naming the bad property. */
rd_kafka_conf_t *kf_kafka_conf_build(rd_kafka_type_t type, const char *const *defaults,
                                     size_t ndefaults, const char *const *kv, size_t npairs,
                                     void *opaque, kf_error *err);

/* Creates the handle, taking conf in every case. NULL + err on failure. */
rd_kafka_t *kf_kafka_handle_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, kf_error *err);

/* True when kv (caller pairs) sets key; *value_out gets the last value. */
bool kf_kafka_kv_find(const char *const *kv, size_t npairs, const char *key,
                      const char **value_out);

/* KF_ERR_FATAL with the recorded reason when the client hit a fatal error, else 0. Also
 * checks rd_kafka_fatal_error, so a fatal error not yet served by a poll counts. */
int kf_kafka_fatal_check(kf_kafka_client *cl, rd_kafka_t *rk, kf_error *err);

/* Records a fatal error reason (first one wins) and logs it. */
void kf_kafka_fatal_record(kf_kafka_client *cl, const char *client, const char *reason);

/* Internal hook from transactions into the producer's accounting. */
void kf_producer_txn_reset(kf_producer *p);
kf_kafka_client *kf_producer_client(kf_producer *p);
kf_kafka_client *kf_consumer_client(kf_consumer *c);

/* A thread that wakes a consumer's parked fetcher (librdkafka before 2.2; see
 * kafka_fetch_waker.c). queue is the consumer queue. want() asks for a nudge soon and never
 * blocks; destroy() before the consumer closes. */
typedef struct kf_fetch_waker kf_fetch_waker;
kf_fetch_waker *kf_fetch_waker_new(rd_kafka_t *rk, rd_kafka_queue_t *queue, kf_error *err);
void kf_fetch_waker_want(kf_fetch_waker *w);
uint64_t kf_fetch_waker_nudges(const kf_fetch_waker *w); /* 0 for NULL */
void kf_fetch_waker_destroy(kf_fetch_waker *w);          /* NULL is fine */

#endif
