/* The kfleet-validate worker loop: consumes change events, checks them against the contracts
 * and writes valid records to <p>.valid.<db>.<table> and failing or undecodable ones to the
 * dead-letter topic, one Kafka transaction per batch (exactly-once) unless kfleet.eos is off. */
#ifndef KFLEET_VALIDATE_LOOP_H
#define KFLEET_VALIDATE_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alert.h"
#include "contract.h"
#include "kfleet/error.h"
#include "kfleet/metrics.h"
#include "kfleet/registry.h"

typedef struct kf_vloop_config {
    const char *prefix;            /* topic prefix */
    const char *worker;            /* program name for kfleet.worker and logs */
    kf_contract *const *contracts; /* borrowed */
    size_t ncontracts;
    const char *const *topics; /* subscription (names or ^patterns); NULL/0: from contracts */
    size_t ntopics;
    const char *const *kafka_kv; /* librdkafka pairs for every client (borrowed) */
    size_t kafka_npairs;
    const char *group;            /* consumer group (unless kafka_kv sets group.id) */
    const char *transactional_id; /* EOS: this instance's transactional.id */
    bool eos;
    size_t batch_size;      /* most records per batch (one transaction) */
    int commit_interval_ms; /* most time from a batch's first record to its commit; 0: 100 */
    int poll_timeout_ms;    /* how long a poll waits for the first record of a batch */
    int64_t max_records;    /* stop after this many input records (0: run until a signal) */
    kf_registry *registry;  /* borrowed */
    kf_metrics *metrics;    /* borrowed, may be NULL */
    kf_alert *alert;        /* borrowed, may be NULL */
    void (*on_ready)(void *ctx, bool ready); /* may be NULL */
    void *ready_ctx;
} kf_vloop_config;

/* Summary of a run, for the exit log line and the benchmark. */
typedef struct kf_vloop_stats {
    uint64_t records_in, valid, quarantined, undecodable, unchecked, batches, aborts;
    uint64_t fetch_nudges; /* see kf_consumer_fetch_nudges */
    /* Monotonic clock; 0 when it did not happen: the first partition assignment, the first
     * record polled, the last commit. */
    int64_t assigned_ms, first_record_ms, last_commit_ms;
} kf_vloop_stats;

/* Derives the valid topic for an input topic: <p>.<rest> or <p>.evolved.<rest> becomes
 * <p>.valid.<rest>; any other topic T becomes <p>.valid.T. KF_ERR_INVALID when it does not fit. */
int kf_vloop_valid_topic(const char *prefix, const char *topic, char *buf, size_t len);

/* Builds the subscription patterns of the contracts (tables and topic patterns) into *out (an
 * owned array of owned strings; free with kf_vloop_topics_free). */
int kf_vloop_contract_topics(const char *prefix, kf_contract *const *contracts, size_t n,
                             char ***out, size_t *nout, kf_error *err);
void kf_vloop_topics_free(char **topics, size_t n);

/* Runs until a stop signal or max_records, then commits, leaves the group and flushes.
 * Returns 0, KF_ERR_CONFIG for bad settings, or a runtime error with err filled. */
int kf_vloop_run(const kf_vloop_config *cfg, kf_vloop_stats *stats, kf_error *err);

#endif
