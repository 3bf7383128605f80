/* kfleet-sink-pg internals: configuration, destination tables, batches, partitions and the
 * modules that act on them (meta, ddl, apply, loop). */
#ifndef KFLEET_SINK_PG_H
#define KFLEET_SINK_PG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "kfleet/app.h"
#include "kfleet/audit.h"
#include "kfleet/config.h"
#include "kfleet/dlq.h"
#include "kfleet/event.h"
#include "kfleet/kafka.h"
#include "kfleet/metrics.h"
#include "kfleet/pg.h"
#include "kfleet/plan.h"
#include "kfleet/retry.h"
#include "kfleet/serde.h"

#define SINK_PROGRAM "kfleet-sink-pg"
#define SINK_META    "kfleet_meta"

enum { SINK_DELETE_HARD = 0, SINK_DELETE_SOFT = 1 };
enum { SINK_COPY_BINARY = 0, SINK_COPY_TEXT = 1 };

typedef struct sink_cfg {
    kf_app_config app;
    kf_audit_config audit;
    kf_strlist topics;
    char *pg_dsn;
    char *table_format;
    char *target_schema;
    int batch_size;
    int batch_max_rows;
    int64_t batch_max_bytes;
    int64_t flush_ms;
    kf_strlist overrides;
    int deletion;
    char *soft_column;
    bool auto_create;
    int copy_format;
    int64_t backoff_initial_ms;
    int64_t backoff_max_ms;
} sink_cfg;

extern const kf_config_spec sink_config_spec;

typedef struct sink_table sink_table;

/* One assigned (or once assigned) partition. Never freed before the metrics registry, since
 * the lag gauge reads it at scrape time. */
typedef struct sink_part {
    char *topic;
    int32_t partition;
    _Atomic int64_t marker; /* next offset committed in sync_markers; -1 unknown */
    int64_t seen;           /* offset after the last record taken into a batch (0: none) */
    atomic_bool assigned;
    sink_table *table;
    rd_kafka_t *rk; /* for the watermark read by the lag gauge */
} sink_part;

/* One record of a batch. */
typedef struct sink_rec {
    rd_kafka_message_t *msg;
    sink_part *part;
    size_t off, len; /* COPY line in the batch's row buffer; len 0: no row */
    size_t keylen;   /* the key prefix of the line (primary-key fields) */
    bool live;       /* false when superseded by a later change of the key, or quarantined */
} sink_rec;

/* Per-partition progress inside a batch. */
typedef struct sink_batch_part {
    sink_part *part;
    int64_t next; /* last offset + 1 */
} sink_batch_part;

/* One change a batch's DDL applies to its destination (the table created, or one step of the
 * evolution plan as schema_history records it), announced as a schema_change audit event once
 * the batch committed. */
typedef struct sink_change {
    kf_audit_level level;
    char *message;
    char *details; /* JSON object */
} sink_change;

typedef struct sink_metrics {
    kf_counter_series *upserted;
    kf_counter_series *deleted;
    kf_counter_series *ddl;
    kf_counter_series *dlq;
    kf_counter_series *conv_errors;
    kf_histogram_series *duration;
} sink_metrics;

struct sink_table {
    char *name;              /* destination table name */
    size_t index;            /* staging table kf_stage_<index> */
    kf_table *shape;         /* committed destination shape; NULL when the table does not exist */
    unsigned int *shape_oid; /* the catalog's type OID of each shape column */
    int shape_version;       /* bumped when shape changes */
    int batch_size;          /* rows committed at once when no backlog waits */
    int batch_max;           /* rows a batch may grow to while catching up */
    int64_t flush_ms;        /* interval */
    sink_metrics m;

    /* binding of the batch's schema to the destination */
    int32_t bound_id;          /* value schema id the batch holds (-1: none) */
    int bound_version;         /* shape_version the binding was made for */
    const kf_table *ev;        /* event columns of bound_id (borrowed from the reader) */
    kf_plan *plan;             /* plan from shape to ev (owns the pending shape) */
    const kf_table *target;    /* shape after the plan (borrowed from plan) */
    bool creates;              /* the batch creates the table */
    bool pk_ok;                /* every destination key column exists in the events */
    size_t ncols;              /* staging columns (excluding _kf_del) */
    size_t npk;                /* leading key columns of the staging order */
    int *stage_col;            /* staging position -> target column index */
    int *ev_col;               /* staging position -> event column index, -1 none */
    kf_pg_bin *bin;            /* staging position -> binary form of its type */
    bool binary;               /* rows are binary COPY tuples (without their field count) */
    bool bin_off;              /* Postgres refused this table's binary data: text from now on */
    kf_buf sql_ddl;            /* CREATE/ALTER + schema_history rows, or empty */
    sink_change *changes;      /* what sql_ddl applies (audit.enabled), announced after commit */
    size_t nchanges;           /* entries of changes */
    int32_t ddl_schema_id;     /* value schema id sql_ddl was planned for */
    kf_buf sql_stage;          /* DROP + CREATE TEMP TABLE */
    kf_buf sql_upsert;         /* INSERT ... ON CONFLICT */
    kf_buf sql_delete;         /* DELETE ... USING / soft UPDATE */
    kf_buf sql_truncate;       /* TRUNCATE / soft UPDATE of all rows */
    kf_buf sql_copy;           /* COPY straight into the destination (batches without deletes) */
    int fast_skip;             /* batches to go the staging way before trying COPY straight again */
    int sync_skip;             /* batches applied here, not in flight, after a flight failed */
    int stage_gen;             /* connection generation the staging table exists in (-1 none) */
    kf_table *keyed;           /* event columns with the key schema's primary key (Debezium) */
    const kf_table *keyed_src; /* the reader's table keyed was made from */

    /* the batch */
    sink_rec *recs;
    size_t nrecs;
    size_t cap_recs;
    kf_buf rows;
    int32_t *hash; /* open addressing over recs by key prefix; -1 empty */
    size_t hash_cap;
    sink_batch_part *parts;
    size_t nparts;
    size_t cap_parts;
    bool truncate; /* a truncate precedes the rows */
    bool has_del;  /* a delete line was appended */
    kf_buf errors; /* VALUES tuples for kfleet_meta.error_log */
    size_t nerrors;
    size_t msg_bytes; /* key and value bytes of the held messages */
    int64_t first_ms; /* when the first record entered the batch */
};

/* A batch the writer thread applies (COPY straight into the table, or COPY into staging with
 * the upsert and delete; the sync markers; COMMIT) while the loop decodes the next one: the
 * owner of the connection until it is collected. Its arrays are swapped with the table's, so
 * both are reused. A failure is not isolated there: the batch is read again and applied by the
 * loop itself. */
typedef struct sink_flight {
    sink_table *t; /* NULL: nothing in flight */
    sink_rec *recs;
    size_t nrecs, cap_recs;
    kf_buf rows;
    sink_batch_part *parts;
    size_t nparts, cap_parts;
    int64_t first_ms;  /* when its first record entered the batch */
    int64_t t0;        /* when it was handed over */
    int64_t commit_ms; /* when the writer finished */
    kf_buf sql;        /* the writer's own statement buffer */
    kf_buf chunk;      /* COPY data gathered for one CopyData message */
    bool binary;       /* the rows are binary tuples */
    size_t ncols;      /* fields of a row besides the flag */
    bool bin_refused;  /* Postgres refused them as binary data (SQLSTATE 22P03) */
    pthread_t thread;
    atomic_bool done;
    int rc;
    bool staged;     /* through the staging table (set by the writer when COPY straight failed) */
    bool need_stage; /* the staging table is to be created before it is used */
    bool has_del;    /* a delete line is among the rows */
    bool dup;        /* the table held a key of the batch already */
    long ups, dels;
    kf_error err;
} sink_flight;

typedef struct sink {
    const sink_cfg *cfg;
    kf_app *app;
    kf_audit *audit; /* NULL: audit.enabled=false */
    const char *group;
    char *schema; /* target schema */
    /* Postgres */
    const char **pg_kv; /* libpq keyword/value pairs from the pg.* pass-through keys */
    size_t pg_npairs;
    kf_app_kv kafka;
    PGconn *conn;
    int conn_gen;
    int64_t run_id;
    /* Kafka */
    kf_consumer *consumer;
    kf_producer *producer;
    kf_dlq *dlq;
    uint64_t dlq_settled; /* DLQ records known to be in Kafka (kf_dlq_count then) */
    kf_serde *serde;
    kf_event_reader *reader;
    /* state */
    sink_table **tables;
    size_t ntables;
    sink_part **parts;
    size_t nparts;
    rd_kafka_message_t **polled;
    size_t poll_max;
    rd_kafka_message_t **inbox;
    size_t inbox_len;
    size_t inbox_cap;
    bool need_reseek;
    bool idle_flush;      /* the input went quiet: apply every pending batch */
    bool poll_full;       /* the last poll filled its room: more records are waiting */
    size_t inbox_waiting; /* inbox records after the one being applied */
    kf_backoff backoff;
    bool retrying;
    int64_t retry_at_ms;
    int fail_streak;
    kf_buf sql;   /* scratch */
    kf_buf chunk; /* COPY data gathered for one CopyData message */
    sink_flight flight;
    /* counters for sync_runs and the closing log line */
    uint64_t n_upserted, n_deleted, n_dlq, n_ddl;
    uint64_t n_records;     /* messages covered by committed batches */
    uint64_t n_batches;     /* committed batch transactions */
    int64_t first_batch_ms; /* when the first committed record entered its batch (0: none) */
    int64_t last_commit_ms; /* when the last batch committed */
    /* metrics */
    kf_counter *c_upserted, *c_deleted, *c_ddl, *c_dlq, *c_conv;
    kf_histogram *h_duration;
    kf_gauge_series *g_status;
    kf_gauge *g_lag;
    kf_counter_series *c_retries;
} sink;

/* ---- meta.c: Postgres connection and kfleet_meta ---- */

/* Connects (or reconnects) when the connection is missing or broken. */
int sink_pg_ensure(sink *s, kf_error *err);
/* Creates kfleet_meta and its tables, the target schema when it is missing (sink.auto_create),
 * and the sync_runs row of this run. */
int sink_meta_init(sink *s, kf_error *err);
/* Closes the run's sync_runs row with a status ("stopped", "failed"). */
void sink_meta_finish(sink *s, const char *status, const char *message);
/* Reads the stored next offsets for parts (in place: offset = stored or BEGINNING). */
int sink_meta_load_markers(sink *s, rd_kafka_topic_partition_list_t *parts, kf_error *err);
/* Appends an SQL string literal (escaped by libpq) to b. */
int sink_sql_literal(sink *s, kf_buf *b, const char *text, size_t len, kf_error *err);

/* ---- ddl.c: destination tables ---- */

/* The table a topic maps to, created on first sight (catalog read lazily). */
sink_table *sink_table_for_topic(sink *s, const char *topic, kf_error *err);
/* Reads the destination's current shape from the catalog. */
int sink_table_refresh(sink *s, sink_table *t, kf_error *err);
/* Binds the batch of t to the event columns of schema id (plan, DDL, staging, SQL). */
int sink_table_bind(sink *s, sink_table *t, int32_t schema_id, const kf_table *ev, kf_error *err);
/* Lets the batch of t, bound to another value schema, take the events of schema id without a
 * flush: when the destination the batch writes to needs no change for them (a version the
 * batch's target already covers: an older one of an evolving table, or a partition still
 * behind the others), only the column map changes. 1 joined, 0 not (flush, then bind),
 * negative on failure. */
int sink_table_join(sink_table *t, int32_t schema_id, const kf_table *ev, kf_error *err);
/* Emits one schema_change audit event per change the DDL of t's batch applied, then forgets
 * them (sink_table_unbind forgets them too). Call only once that batch committed. Never
 * blocks: the emitter queues. */
void sink_table_announce(sink *s, sink_table *t);
/* Forgets the binding (after a failure or a committed shape change). */
void sink_table_unbind(sink_table *t);
void sink_table_destroy(sink_table *t);

/* ---- apply.c: batches ---- */

/* Appends one consumed message (taking it) to its table's batch; may flush a full batch
 * first. Retriable errors leave the message with the caller (*taken false). */
int sink_apply_message(sink *s, rd_kafka_message_t *msg, bool *taken, kf_error *err);
/* Flushes batches that are due (size or age), or every non-empty one when all is true. */
int sink_apply_flush_due(sink *s, bool all, kf_error *err);
/* Drops every pending batch (messages destroyed), e.g. after partitions were lost. */
void sink_apply_drop_all(sink *s);
/* Milliseconds until the next batch is due (-1: none pending). */
int64_t sink_apply_next_due_ms(sink *s);
/* Waits for the batch in flight, if any, and takes its outcome over: committed (markers,
 * offsets, counts) or failed (everything held is read again from the sync markers). Call
 * before anything else uses the connection or a table's binding. */
void sink_apply_wait(sink *s);
/* The same without waiting: takes the outcome over only when the writer is done. */
void sink_apply_poll(sink *s);
/* Frees the flight's buffers (after sink_apply_wait). */
void sink_apply_free(sink *s);

/* ---- loop.c ---- */

/* Creates the Kafka clients, the serde and the reader, and subscribes. */
int sink_open(sink *s, const kf_config *cfg, kf_error *err);
/* Leaves the group, flushes the DLQ producer and frees everything sink_open and the run made. */
void sink_close(sink *s);
/* Frees the partitions (after the metrics registry, whose lag gauge reads them). */
void sink_free_parts(sink *s);
/* Forgets every binding and catalog view (after an unexpected failure). */
void sink_table_unbind_all(sink *s);

/* Runs until a stop signal; returns 0 or the error that ended the run. */
int sink_run(sink *s, kf_error *err);
/* Logs the run's totals: records applied, rows upserted/deleted, DLQ records, and the span
 * from the first applied record entering its batch to the last commit with its rate. */
void sink_log_summary(const sink *s);

#endif
