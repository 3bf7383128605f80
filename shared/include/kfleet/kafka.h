/* Kafka clients for every kfleet program: a producer with bounded in-flight messages and
 * contiguous delivery accounting, a group consumer with rebalance hooks, transactions for
 * read-process-write, header helpers and topic administration, all over librdkafka. */
#ifndef KFLEET_KAFKA_H
#define KFLEET_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "kfleet/error.h"

/*
 * Configuration
 * -------------
 * Every constructor takes the librdkafka configuration as an ordered list of key/value pairs:
 * kv[0] = key, kv[1] = value, kv[2] = key, ... with npairs pairs (2 * npairs strings). Keys
 * are librdkafka property names ("bootstrap.servers", "group.id", ...), exactly as the
 * configuration file has them under "kafka.". Later pairs override earlier ones and kfleet's
 * defaults. The strings are borrowed for the duration of the call only.
 *
 * Every client routes librdkafka's log lines into kf_log (syslog levels 0-3 -> error,
 * 4 -> warn, 5-6 -> info, 7 -> debug; fields "facility" and "client") and logs client errors.
 * A fatal client error (idempotence or transaction state lost, fenced producer) is logged and
 * kept; the next call that acts returns KF_ERR_FATAL and the program must exit and restart.
 */

/* Fills err from a librdkafka error object (borrowed, not destroyed): code KF_ERR_FATAL when
 * the error is fatal, else KF_ERR_KAFKA; err->retriable from rd_kafka_error_is_retriable.
 * what says what failed ("could not commit transaction"). Returns the code. */
int kf_kafka_error_set(kf_error *err, const rd_kafka_error_t *error, const char *what);

/* Same for a bare response code; retriable for transient broker and transport errors. */
int kf_kafka_error_set_code(kf_error *err, rd_kafka_resp_err_t code, const char *what);

/* True when librdkafka's own property table (the C/P column of its CONFIGURATION.md, for the
 * loaded version) says only the other type of client reads key: a consumer property for a
 * producer, or the reverse. Programs hand every "kafka." key to all their clients; each
 * client leaves out the keys it would only warn about. Unknown keys are not ignored. */
bool kf_kafka_property_ignored(rd_kafka_type_t type, const char *key);

/*
 * Producer
 * --------
 * Defaults: enable.idempotence=true (so acks=all, ordered retries), partitioner=murmur2_random
 * (the Java client's partitioner: the same key lands in the same partition as with Debezium).
 *
 * Delivery accounting: every message carries a sequence number, either the caller's (strictly
 * increasing; gaps are allowed, e.g. log positions) or one the producer assigns (1, 2, 3, ...).
 * kf_producer_acked_upto returns the highest N such that every message with sequence <= N has
 * been acknowledged by Kafka, which is what a source may acknowledge upstream. A failed
 * delivery freezes acked_upto below the failed message for good: the program must then exit
 * non-zero (kf_producer_failed) and restart from its last acknowledged position.
 *
 * Threads: produce, poll and flush are called from one thread (delivery reports run inside
 * them); acked_upto, stats and failed may be read from any thread.
 */
typedef struct kf_producer kf_producer;

typedef struct kf_producer_options {
    /* Maximum messages in the delivery window: from the oldest message not yet reported
     * delivered or failed up to the newest one (reported messages behind a slow one still
     * count, as acked_upto cannot pass it). The accounting ring is allocated once with this
     * many slots. 0 = 100000. */
    size_t max_in_flight;
    /* How long kf_producer_produce waits, serving delivery reports, when the delivery window
     * or librdkafka's queue is full, before it returns KF_ERR_FULL. 0 = 30000; negative =
     * return KF_ERR_FULL at once. */
    int full_wait_ms;
} kf_producer_options;

/* One header for kf_producer_produce: name is a string, value any bytes (NULL = null value). */
typedef struct kf_header {
    const char *name;
    const void *value;
    size_t len;
} kf_header;

typedef struct kf_produce_msg {
    const char *topic;
    int32_t partition; /* RD_KAFKA_PARTITION_UA (-1): choose by key */
    const void *key;   /* NULL: no key */
    size_t key_len;
    const void *value; /* NULL: tombstone */
    size_t value_len;
    /* Headers built with kf_headers_*; kf_producer_produce takes ownership of them in every
     * case, success or failure. NULL: none. */
    rd_kafka_headers_t *headers;
    /* More headers, copied and appended after the above. */
    const kf_header *header_list;
    size_t header_count;
    int64_t timestamp_ms; /* 0: now */
    /* 0: the producer assigns last + 1; else must be greater than every earlier sequence. */
    uint64_t seq;
} kf_produce_msg;

typedef struct kf_producer_stats {
    uint64_t produced;  /* accepted by kf_producer_produce */
    uint64_t acked;     /* delivery confirmed */
    uint64_t failed;    /* delivery failed (kf_producer_first_error has the first reason) */
    uint64_t purged;    /* dropped by a transaction abort (transactional producers only) */
    uint64_t in_flight; /* produced and not yet reported */
    uint64_t window;    /* messages in the delivery window (<= max_in_flight) */
    uint64_t acked_upto;
} kf_producer_stats;

/* Creates a producer. A "transactional.id" in kv makes it transactional (see kf_txn_new).
 * opts may be NULL for the defaults. Returns NULL and fills err (KF_ERR_CONFIG for a bad
 * property) on failure. */
kf_producer *kf_producer_new(const char *const *kv, size_t npairs, const kf_producer_options *opts,
                             kf_error *err);

/* Destroys the producer without flushing (call kf_producer_flush first); NULL is a no-op. */
void kf_producer_destroy(kf_producer *p);

/* Queues one message. The key, value and header_list are copied; msg->headers is taken.
 * Sets *seq_out (may be NULL) to the message's sequence. When the delivery window or
 * librdkafka's queue is full it serves delivery reports for up to full_wait_ms and then
 * returns KF_ERR_FULL (retriable): memory never grows past the limit.
 * Errors: KF_ERR_INVALID (bad sequence, unknown partition, message too large), KF_ERR_FULL,
 * KF_ERR_FATAL (the producer is unusable), KF_ERR_KAFKA. */
int kf_producer_produce(kf_producer *p, const kf_produce_msg *msg, uint64_t *seq_out,
                        kf_error *err);

/* Serves delivery reports and client events for up to timeout_ms; returns how many events
 * were served. Call it regularly from the producing thread. */
int kf_producer_poll(kf_producer *p, int timeout_ms);

/* Waits up to timeout_ms until every queued message was reported. KF_ERR_TIMEOUT when some
 * remain; KF_ERR_FATAL on a fatal client error. Delivery failures are not flush errors: check
 * kf_producer_failed afterwards. */
int kf_producer_flush(kf_producer *p, int timeout_ms, kf_error *err);

/* The highest N such that every message with sequence <= N was acknowledged (0 at start). */
uint64_t kf_producer_acked_upto(const kf_producer *p);

/* True when any delivery failed or the client hit a fatal error: the program must exit
 * non-zero. Fills err (may be NULL) with the first failure's reason. */
bool kf_producer_failed(const kf_producer *p, kf_error *err);

/* Copies the counters into *out. */
void kf_producer_stats_get(const kf_producer *p, kf_producer_stats *out);

/* The librdkafka handle, borrowed, for calls this module does not wrap. */
rd_kafka_t *kf_producer_handle(kf_producer *p);

/*
 * Consumer
 * --------
 * Defaults: partition.assignment.strategy=cooperative-sticky, auto.offset.reset=earliest.
 * enable.auto.offset.store is always false: an offset is stored only when the program calls
 * kf_consumer_store_offset after it processed the message, so enable.auto.commit (librdkafka's
 * default true, configurable) and kf_consumer_commit commit processed messages only.
 * group.instance.id may be set for static membership. Both rebalance protocols are handled:
 * COOPERATIVE (incremental assign/unassign) and EAGER (whole assignment replaced).
 */
typedef struct kf_consumer kf_consumer;

typedef struct kf_consumer_hooks {
    /* Called inside a poll when partitions are added, before they are assigned. The list is
     * borrowed for the call; each element's offset is RD_KAFKA_OFFSET_INVALID (start at the
     * committed offset) and the hook may set it to the offset to start from, e.g. the next
     * offset kept in a sink's database. A negative return is logged and the partitions are
     * still assigned with the offsets set so far. */
    int (*on_assign)(void *ctx, kf_consumer *c, rd_kafka_topic_partition_list_t *parts);
    /* Called inside a poll before partitions are taken away, while they are still assigned,
     * so the program can finish its batch, write and commit. lost is true when the
     * partitions were already lost (session timeout, fenced): committing them is then futile. */
    void (*on_revoke)(void *ctx, kf_consumer *c, const rd_kafka_topic_partition_list_t *parts,
                      bool lost);
    void *ctx;
} kf_consumer_hooks;

typedef struct kf_consumer_options {
    kf_consumer_hooks hooks;
} kf_consumer_options;

/* Creates a consumer; kv must contain group.id. opts may be NULL. NULL + err on failure. */
kf_consumer *kf_consumer_new(const char *const *kv, size_t npairs, const kf_consumer_options *opts,
                             kf_error *err);

/* Destroys the consumer; closes it first (leaving the group) if kf_consumer_close was not
 * called. Messages obtained from it must have been destroyed. NULL is a no-op. */
void kf_consumer_destroy(kf_consumer *c);

/* Subscribes to topics; a name starting with '^' is a regular expression. Copies the names. */
int kf_consumer_subscribe(kf_consumer *c, const char *const *topics, size_t n, kf_error *err);

/* Waits up to timeout_ms for the first message, then takes whatever else is ready without
 * waiting, up to max. Rebalance hooks run inside this call. Returns the number of messages
 * stored in msgs (0 on timeout); the caller owns them and frees each with
 * rd_kafka_message_destroy. Consumer errors are logged and skipped; a fatal one returns
 * KF_ERR_FATAL. With librdkafka before 2.2, whenever it waits for records it asks the
 * consumer's waker thread to wake a fetcher parked on a full prefetch queue (a ListOffsets
 * round trip, never on the calling thread; see kf_consumer_fetch_nudges). */
int kf_consumer_poll_batch(kf_consumer *c, rd_kafka_message_t **msgs, size_t max, int timeout_ms,
                           kf_error *err);

/* Marks msg (borrowed) processed: its offset + 1 is stored for the next commit. */
int kf_consumer_store_offset(kf_consumer *c, const rd_kafka_message_t *msg, kf_error *err);

/* Commits the stored offsets, waiting for the broker when async is false. Nothing stored is
 * not an error. */
int kf_consumer_commit(kf_consumer *c, bool async, kf_error *err);

/* Pauses or resumes fetching on every assigned partition (backpressure); partitions assigned
 * while paused start paused. Keep polling while paused so the group membership stays alive. */
int kf_consumer_pause(kf_consumer *c, kf_error *err);
int kf_consumer_resume(kf_consumer *c, kf_error *err);
bool kf_consumer_paused(const kf_consumer *c);

/* Copies the current assignment into *out (destroy it with
 * rd_kafka_topic_partition_list_destroy). */
int kf_consumer_assignment(kf_consumer *c, rd_kafka_topic_partition_list_t **out, kf_error *err);

/* Seeks every assigned partition back to its committed offset (or to the reset position
 * when the group has none). Messages fetched before and not yet returned are discarded. */
int kf_consumer_rewind(kf_consumer *c, int timeout_ms, kf_error *err);

/* Leaves the group: revoke hooks run, a final commit of stored offsets happens when
 * enable.auto.commit is on. Idempotent. */
int kf_consumer_close(kf_consumer *c, kf_error *err);

/* How many nudges the waker thread sent to fetchers that librdkafka (before 2.2) may have
 * parked on a full prefetch queue: each wakes one up to a second early. Readable from any
 * thread; for tests and logs. */
uint64_t kf_consumer_fetch_nudges(const kf_consumer *c);

/* The librdkafka handle, borrowed. */
rd_kafka_t *kf_consumer_handle(kf_consumer *c);

/*
 * Transactions (read-process-write)
 * ---------------------------------
 * One batch is one transaction:
 *
 *   kf_txn_begin(t)                       produce the outputs with kf_producer_produce
 *   kf_txn_send_offsets(t)                the consumer's positions join the transaction
 *   kf_txn_commit(t)                      outputs and input offsets become visible together
 *
 * Error classes, the same for every kf_txn_* call:
 *   - retriable (e.g. a timeout): the call retries by itself until its timeout, then returns
 *     KF_ERR_TIMEOUT (retriable); calling it again is safe.
 *   - abortable: the transaction is aborted and the consumer REWOUND (see below); the call
 *     returns KF_ERR_KAFKA with err->retriable = true. Nothing of the batch is visible.
 *   - fatal (fenced by a newer instance with the same transactional.id, state lost): returns
 *     KF_ERR_FATAL. The program must exit and restart.
 *
 * The rewind contract: after an abort, every assigned partition of the consumer is seeked to
 * its last committed offset (the offsets of the last committed transaction, or the reset
 * position when the group has none). Messages the program still holds from the aborted batch
 * must be destroyed without processing, and any state derived from them dropped: the next
 * kf_consumer_poll_batch returns them again, starting at the first uncommitted offset, and
 * the program processes them in a new transaction. The offsets stored with
 * kf_consumer_store_offset are not used by transactions (enable.auto.commit should be false).
 * Consumers downstream must use isolation.level=read_committed (librdkafka's default) to skip
 * aborted outputs.
 */
typedef struct kf_txn kf_txn;

/* Binds a transactional producer (kv had transactional.id) and the consumer whose offsets
 * join its transactions; both are borrowed and must outlive the kf_txn. c may be NULL for
 * produce-only transactions: offsets cannot be sent and an abort rewinds nothing. Calls
 * init_transactions, fencing older instances with the same transactional.id. timeout_ms
 * bounds each transactional call (0 = 60000). */
kf_txn *kf_txn_new(kf_producer *p, kf_consumer *c, int timeout_ms, kf_error *err);
void kf_txn_destroy(kf_txn *t); /* NULL is a no-op; aborts an open transaction */

int kf_txn_begin(kf_txn *t, kf_error *err);

/* Adds the consumer's current positions (the next offset of each assigned partition that has
 * consumed something) to the transaction, with the consumer's group metadata. */
int kf_txn_send_offsets(kf_txn *t, kf_error *err);

/* Like kf_txn_send_offsets with explicit offsets (borrowed; offsets are the next to read). */
int kf_txn_send_offset_list(kf_txn *t, const rd_kafka_topic_partition_list_t *offsets,
                            kf_error *err);

/* Commits: flushes the outputs, then commits. */
int kf_txn_commit(kf_txn *t, kf_error *err);

/* Aborts the open transaction (if any) and rewinds the consumer as described above. */
int kf_txn_abort(kf_txn *t, kf_error *err);

/* True between kf_txn_begin and the matching commit or abort. */
bool kf_txn_open(const kf_txn *t);

/*
 * Headers
 * -------
 */

/* A new header list holding a copy of every header of msg (borrowed), in order, byte for
 * byte; an empty list when msg has none. NULL only when out of memory. */
rd_kafka_headers_t *kf_headers_copy(const rd_kafka_message_t *msg);

/* Appends a string header (name and value copied; value NULL = null value). */
int kf_headers_add_str(rd_kafka_headers_t *hdrs, const char *name, const char *value,
                       kf_error *err);

/* Replaces every header called name with one string header (copied). */
int kf_headers_set_str(rd_kafka_headers_t *hdrs, const char *name, const char *value,
                       kf_error *err);

/* The last header called name of msg as a borrowed pointer and length; false when absent. */
bool kf_headers_get(const rd_kafka_message_t *msg, const char *name, const void **value,
                    size_t *len);

/*
 * Administration
 * --------------
 */
typedef struct kf_admin kf_admin;

typedef struct kf_topic_spec {
    const char *name;
    int partitions;            /* >= 1 */
    int replication_factor;    /* >= 1; -1 = the broker default */
    const char *const *config; /* topic config pairs, like kv above ("cleanup.policy", ...) */
    size_t config_npairs;
} kf_topic_spec;

typedef struct kf_topic_info {
    char name[250];
    int partitions;
    int replication_factor; /* of partition 0 */
} kf_topic_info;

kf_admin *kf_admin_new(const char *const *kv, size_t npairs, kf_error *err);
void kf_admin_destroy(kf_admin *a); /* NULL is a no-op */

/* Creates the topics (specs borrowed). With exists_ok an existing topic is success. Waits up
 * to timeout_ms. The first failing topic fills err. */
int kf_admin_create_topics(kf_admin *a, const kf_topic_spec *specs, size_t n, bool exists_ok,
                           int timeout_ms, kf_error *err);

/* Deletes the topics; with missing_ok an unknown topic is success. */
int kf_admin_delete_topics(kf_admin *a, const char *const *names, size_t n, bool missing_ok,
                           int timeout_ms, kf_error *err);

/* Describes one topic from the cluster metadata. KF_ERR_NOT_FOUND when it does not exist. */
int kf_admin_describe_topic(kf_admin *a, const char *name, kf_topic_info *out, int timeout_ms,
                            kf_error *err);

/* Lists the topic names (internal topics starting with "__" excluded), sorted. *names_out is
 * owned by the caller: free it with kf_admin_names_free. */
int kf_admin_list_topics(kf_admin *a, char ***names_out, size_t *n_out, int timeout_ms,
                         kf_error *err);
void kf_admin_names_free(char **names, size_t n);

#endif
