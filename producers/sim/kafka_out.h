/* The Kafka output of the simulator: Debezium-shaped Avro change events on
 * <prefix>.<db>.<table>, keyed by primary key, tombstones after deletes, a new value schema
 * version per schema change, asynchronous produce with delivery accounting. */
#ifndef KF_SIM_KAFKA_OUT_H
#define KF_SIM_KAFKA_OUT_H

#include <stdbool.h>
#include <stddef.h>

#include "kfleet/error.h"
#include "kfleet/registry.h"
#include "output.h"

typedef struct kf_sim_kafka_config {
    const char *prefix;     /* topic prefix ("kfleet"); copied */
    int partitions;         /* of each topic created; >= 1 */
    int replication_factor; /* -1 = the broker's default */
    bool tombstones;        /* a tombstone after each delete */
    const char *const *kv;  /* librdkafka properties (see kafka.h), borrowed for the call */
    size_t npairs;
    size_t max_in_flight;  /* the producer's delivery window; 0 = its default */
    int admin_timeout_ms;  /* topic creation; 0 = 30000 */
    kf_registry *registry; /* borrowed; must outlive the output */
} kf_sim_kafka_config;

/* Creates the output into *out (caller storage; destroy with out->ops->destroy(out->self)).
 * Topics and schemas are made by open. Returns 0, KF_ERR_CONFIG for bad producer properties,
 * or another negative error with err filled. */
int kf_sim_kafka_output_new(const kf_sim_kafka_config *cfg, kf_sim_output *out, kf_error *err);

/* The message sequences the output gives the producer for change seq: 2*seq-1 for the change
 * and 2*seq for its tombstone, so acked_upto/2 is the last change whose messages were all
 * acknowledged. */
static inline uint64_t kf_sim_kafka_msg_seq(uint64_t seq, bool tombstone)
{
    return tombstone ? 2 * seq : 2 * seq - 1;
}

#endif
