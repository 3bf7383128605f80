/* kfleet-replay's work: reads dead-letter topics in its own consumer group and either sends
 * the selected records back to their origin topic (exactly once, with a loop guard that parks
 * records replayed too often) or materializes them into kfleet_meta.quarantine in Postgres. */
#ifndef KFLEET_REPLAY_H
#define KFLEET_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kfleet/audit.h"
#include "kfleet/error.h"
#include "kfleet/registry.h"

/* One --offsets range of DLQ offsets: partition (-1 = every partition), first and last
 * (inclusive; last -1 = open). */
typedef struct kf_replay_range {
    int32_t partition;
    int64_t first, last;
} kf_replay_range;

typedef struct kf_replay_options {
    const char *const *topics; /* DLQ topics to read */
    size_t ntopics;
    const char *to;           /* target topic instead of the origin header; NULL = origin */
    const char *const *rules; /* only these kfleet.rule.id values; none = all */
    size_t nrules;
    const char *const *reasons; /* only records whose kfleet.error.reason contains one of these
                                   (non-empty) strings; none = all */
    size_t nreasons;
    bool has_since, has_until; /* record timestamp bounds in ms: since inclusive, until exclusive */
    int64_t since_ms, until_ms;
    const kf_replay_range *ranges; /* none = all offsets */
    size_t nranges;
    bool dry_run;
    int64_t max_replays;       /* park records whose kfleet.replay.count reached this */
    const char *parking_topic; /* NULL = "<dlq topic>.parked" */
    const char *group;
    const char *transactional_id;
    bool follow; /* run until a stop signal; else stop at the ends the partitions had when
                    they were first assigned */
    const char *const *kafka_kv;
    size_t kafka_npairs;
    /* --materialize: write into kfleet_meta.quarantine instead of producing */
    bool materialize;
    const char *const *pg_keys; /* libpq keywords and values (NULL-terminated arrays) */
    const char *const *pg_values;
    kf_registry *registry; /* decodes record values for the JSON column; may be NULL */
} kf_replay_options;

/* Where records went (or came from), with how many: the first KF_REPLAY_MAX_TOPICS topics
 * each, the records of any further ones summed in `other`. */
#define KF_REPLAY_MAX_TOPICS 16
typedef struct kf_replay_topic {
    char name[264];
    bool parking; /* a parking topic (targets only) */
    uint64_t records;
} kf_replay_topic;
typedef struct kf_replay_topics {
    kf_replay_topic t[KF_REPLAY_MAX_TOPICS];
    size_t n;
    uint64_t other;
} kf_replay_topics;

typedef struct kf_replay_stats {
    uint64_t read, replayed, parked, skipped, materialized, no_origin;
    uint64_t inserted;        /* materialized rows that were not stored before */
    kf_replay_topics targets; /* topics written (committed records), parking topics included */
    kf_replay_topics origins; /* origin topics (__connect.errors.topic) of those records */
} kf_replay_stats;

/* Parses "P:FIRST-LAST", "FIRST-LAST", "P:FIRST-" or "FIRST" into *out. KF_ERR_INVALID. */
int kf_replay_parse_range(const char *s, kf_replay_range *out);

/* Parses an ISO-8601 time or a number of milliseconds since the epoch. KF_ERR_INVALID. */
int kf_replay_parse_time(const char *s, int64_t *ms);

/* Runs until every assigned partition was read up to the end it had when first assigned (its
 * last stable offset then: records written later wait for the next run), or with follow until
 * a stop signal. Dry-run lines and the summary go to out. Returns 0 or an error with err
 * filled (KF_ERR_TIMEOUT when no partition was assigned within a minute). */
int kf_replay_run(const kf_replay_options *o, FILE *out, kf_replay_stats *stats, kf_error *err);

/* Emits the run's summary audit event (action "replay"; level error when rc is not 0, with
 * err's message): count = records replayed and parked (or materialized), topic = the DLQ topic
 * when there was one, details = the counts, the DLQ topics, the origin and target topics with
 * their records, the filters, and the exit code. audit NULL: no-op. */
void kf_replay_audit(kf_audit *audit, const kf_replay_options *o, const kf_replay_stats *stats,
                     int rc, const kf_error *err);

#endif
