/* kfleet-pipeline internals: what one pipeline run produced (simulator summary and expected
 * state, dead-letter records, Postgres tables, lag, latency) and the modules that gather it. */
#ifndef KFLEET_PIPELINE_H
#define KFLEET_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "kfleet/error.h"
#include "kfleet/registry.h"

#define PL_PROGRAM "kfleet-pipeline"

/* librdkafka settings (kv[2i] = key, kv[2i+1] = value), borrowed. */
typedef struct pl_kafka {
    const char *const *kv;
    size_t npairs;
} pl_kafka;

/* One injected-constraint count of the simulator, and what the contract makes of it. */
typedef struct pl_injected {
    char column[128];
    char constraint[32]; /* not_null, range, allowed_values, email, length */
    uint64_t count;
    const char *rule_id; /* the quarantine rule that catches it (borrowed); NULL: none */
} pl_injected;

/* One quarantine rule of a contract and what reached the dead-letter topic under it. */
typedef struct pl_rule {
    char *id;
    char *column;
    char constraint[32]; /* the simulator's name for what the rule checks */
    uint64_t expected;   /* injected records the rule should catch */
    uint64_t found;      /* dead-letter records carrying the rule id */
} pl_rule;

/* Comparison of one Postgres table with an expected row set. */
typedef struct pl_cmp {
    bool done;        /* the table could be read */
    char error[512];  /* why not, when !done */
    uint64_t rows;    /* rows in Postgres */
    uint64_t equal;   /* rows equal to the expected row of their key */
    uint64_t differ;  /* rows whose key is expected with other values */
    uint64_t extra;   /* rows whose key is not expected */
    uint64_t missing; /* expected keys absent from Postgres */
    char example[512];
} pl_cmp;

typedef struct pl_table {
    char db[64];
    char name[128];
    char topic[512]; /* <p>.<db>.<table> */
    /* simulator summary */
    bool summarized;
    uint64_t inserts, updates, deletes, schema_changes, injected;
    unsigned schema_version;
    pl_injected *inj;
    size_t ninj;
    /* contract rules covering the table (quarantine severity only) */
    pl_rule *rules;
    size_t nrules;
    uint64_t dlq_records;    /* every record of the dead-letter topic */
    uint64_t dlq_other;      /* records without a rule id of the contract (decode failures...) */
    uint64_t dlq_duplicates; /* the same change quarantined twice */
    json_t *expect;          /* the simulator's expected table (borrowed from pl_run.expect) */
    char **key;              /* key column names */
    size_t nkey;
    json_t *columns;          /* [{name,type,state}] (borrowed) */
    json_t *want;             /* key -> row: every change except the quarantined ones */
    json_t *all;              /* key -> row: every change */
    uint64_t expect_rows;     /* rows of the simulator's expected state */
    uint64_t want_rows;       /* rows Postgres should hold */
    uint64_t held_back;       /* expected keys whose last change was quarantined */
    uint64_t self_mismatch;   /* rows where the change stream disagrees with the expect file */
    pl_cmp pg;                /* Postgres against want */
    uint64_t pg_equal_expect; /* Postgres rows equal to the simulator's expected row */
    int64_t ddl;              /* kfleet_meta.schema_history rows of the table (-1: unknown) */
} pl_table;

/* Lag of one consumer group over some topics. */
typedef struct pl_lag {
    bool known;
    char error[sizeof(((kf_error *)0)->message)]; /* holds any kf_error message whole */
    int64_t offsets; /* end offsets minus committed offsets, summed over partitions */
    int64_t records; /* committed-visible records after the committed offsets */
} pl_lag;

/* Latency from the events' Kafka timestamps to one stage boundary, after the warm-up. */
typedef struct pl_stage_latency {
    bool known;
    char error[sizeof(((kf_error *)0)->message)];
    uint64_t events;
    double p50_ms, p99_ms;
} pl_stage_latency;

/* Latency of events from their Kafka timestamp to the sink's commit. */
typedef struct pl_latency {
    bool known;
    char error[sizeof(((kf_error *)0)->message)]; /* holds any kf_error message whole */
    uint64_t events;                              /* committed events sampled */
    uint64_t events_steady;                       /* of which after the warm-up */
    int64_t warmup_ms;     /* events in the first warmup_ms of the run are left out of p50/p99 */
    double p50_ms, p99_ms; /* after the warm-up */
    double all_p50_ms, all_p99_ms, max_ms; /* every event */
    int64_t first_ts_ms, last_commit_ms;
    double events_per_s;
    json_t *series;             /* [{t, events, p50_ms, p99_ms}] per second of commit time */
    pl_stage_latency produced;  /* to the input topic's end offset (appended) */
    pl_stage_latency validated; /* to validate's commit of the input offset */
    /* to the sink's commit, events from the warm-up after the simulator's last schema change
     * on: the simulator's schema evolution comes in a burst at the start of a run */
    pl_stage_latency settled;
    int64_t settled_from_ms; /* since the first event */
} pl_latency;

typedef struct pl_run {
    const char *prefix;
    pl_table *tables;
    size_t ntables;
    json_t *expect; /* the parsed expected-state document */
    uint64_t sim_events;
    int64_t sim_output_ms;
    int64_t last_schema_change_ms; /* wall clock of the simulator's last schema change (0: none) */
    uint64_t changes_seen;         /* change lines of the stream */
    uint64_t quarantined_skipped;
} pl_run;

/* ---- simulator files (sim.c) ---- */

/* Adds the tables and summaries of the simulator's JSON log (table summary and simulation
 * finished lines). KF_ERR_IO / KF_ERR_INVALID with err filled. */
int pl_sim_log_load(pl_run *run, const char *path, kf_error *err);

/* Loads the expected-state document (--expect of the simulator); tables are added as needed. */
int pl_expect_load(pl_run *run, const char *path, kf_error *err);

/* Folds the JSON-lines change stream into each table's `all` and `want` maps; changes whose
 * seq is in `skip` (a JSON object keyed by "<table>:<seq>") are left out of `want`. Then
 * compares `all` with the expected state (self_mismatch) and counts held_back rows. */
int pl_changes_fold(pl_run *run, const char *path, json_t *skip, kf_error *err);

pl_table *pl_run_table(pl_run *run, const char *db, const char *name, bool create);
void pl_run_free(pl_run *run);

/* ---- values (values.c) ---- */

/* Canonical text of a JSON value of a column of simulator type `type`, so that equal values
 * give equal text whatever side they come from. Returns false for null. */
bool pl_canon_json(const char *type, const json_t *v, char *buf, size_t cap);

/* The same for the text Postgres returns for pl_pg_expr(type) (NULL for SQL null). */
bool pl_canon_pg(const char *type, const char *text, char *buf, size_t cap);

/* Appends to b the SQL expression that reads column ident (already quoted) of `type`. */
int pl_pg_expr(const char *type, const char *ident, char *buf, size_t cap);

/* Key of a row (or key object): the canonical key columns joined by 0x1f. */
bool pl_row_key(const pl_table *t, const json_t *row, char *buf, size_t cap);

/* True when two rows have the same values in every active column (absent = null). */
bool pl_rows_equal(const pl_table *t, const json_t *a, const json_t *b);

/* ---- Kafka (kread.c) ---- */

typedef int (*pl_msg_fn)(void *ctx, const rd_kafka_message_t *m, kf_error *err);

/* Reads every committed record of topic from the beginning up to the end at the time of the
 * call, calling fn for each. With `from`, only partitions p < nfrom with from[p] >= 0 are
 * read, from that offset. KF_ERR_NOT_FOUND when the topic
 * does not exist. */
int pl_topic_read(const pl_kafka *k, const char *topic, const int64_t *from, size_t nfrom,
                  pl_msg_fn fn, void *ctx, int timeout_ms, kf_error *err);

/* Lag of group over topics: committed offsets (Kafka) against the end offsets, and the
 * records a read_committed consumer would still get. */
void pl_group_lag(const pl_kafka *k, const char *group, char *const *topics, size_t ntopics,
                  pl_lag *out);

/* The same with the next offsets the sink stored in Postgres (kfleet_meta.sync_markers). */
void pl_marker_lag(const pl_kafka *k, PGconn *conn, const char *group, char *const *topics,
                   size_t ntopics, pl_lag *out);

/* Samples the first two stages of a run: the end offsets of the input topics (when the
 * simulator's records were appended) and the offsets the validate group committed (when
 * validate's transaction over them committed). */
typedef struct pl_stage_sampler pl_stage_sampler;

/* A sampler of the partitions of the input topics `in` (which must exist) and the validate
 * group vgroup; the settings of k are copied. NULL with err filled on failure. */
pl_stage_sampler *pl_stage_sampler_new(const pl_kafka *k, const char *vgroup, char *const *in,
                                       size_t nin, kf_error *err);

/* Appends "t_ms topic partition offset" to `produced` for every end offset that moved since the
 * previous call, and the same to `validated` for every committed offset of the validate group,
 * t_ms being the wall-clock time after the answer came. KF_ERR_KAFKA (retriable) when one of
 * the two reads failed; the other's lines are written. */
int pl_stage_sampler_sample(pl_stage_sampler *s, FILE *produced, FILE *validated, kf_error *err);

void pl_stage_sampler_destroy(pl_stage_sampler *s);

/* Creates the topics (exists is fine). */
int pl_topics_create(const pl_kafka *k, char *const *names, size_t n, int partitions,
                     kf_error *err);

/* Reads every dead-letter topic of the run: counts per rule and the quarantined changes
 * (keys "<table>:<seq>" in *skip, a new object). */
int pl_dlq_read(pl_run *run, const pl_kafka *k, kf_registry *reg, json_t **skip, kf_error *err);

/* ---- Postgres (pg.c) ---- */

/* Compares each table of the run in schema with its `want` rows (and the expected state). */
void pl_pg_compare(PGconn *conn, const char *schema, pl_run *run);

/* Where pl_watch writes; stages, produced and validated are NULL or all set (borrowed). */
typedef struct pl_watch_out {
    FILE *markers; /* "t_ms topic partition next_offset" whenever a sink marker moved */
    pl_stage_sampler *stages;
    FILE *produced, *validated; /* see pl_stage_sampler_sample */
} pl_watch_out;

/* Samples the sink group's markers (and the stages, when given) every interval_ms until a stop
 * signal. A failed sample is logged and the next one tried. */
int pl_watch(PGconn *conn, const char *group, int interval_ms, const pl_watch_out *out,
             kf_error *err);

/* Waits until the validate group has committed the end of the input topics and the sink has
 * stored the end of the valid topics in sync_markers, or timeout_ms passed (KF_ERR_TIMEOUT). */
int pl_drain(const pl_kafka *k, PGconn *conn, const char *vgroup, char *const *in, size_t nin,
             const char *sgroup, char *const *valid, size_t nvalid, int64_t timeout_ms,
             kf_error *err);

/* ---- latency (latency.c) ---- */

typedef struct pl_latency_opts {
    const pl_kafka *kafka;
    char *const *valid; /* the valid topics, joined with the sink's marker samples */
    size_t nvalid;
    const char *samples;
    char *const *in; /* the input topics, joined with the stage samples (NULL: none) */
    size_t nin;
    const char *produced, *validated;
    int64_t warmup_ms;
    int64_t last_schema_change_ms; /* wall clock; 0: no schema change */
} pl_latency_opts;

/* Joins the record timestamps with the samples (everything borrowed); out->series is new. */
void pl_latency_compute(const pl_latency_opts *o, pl_latency *out);

/* ---- earlier runs (prune.c) ---- */

/* Where a run id sorts: larger `when` is newer. */
typedef struct pl_run_key {
    size_t len;   /* bytes of the id at the start of the name */
    int64_t when; /* seconds of its time stamp, counted from year 0 */
    long pid;
} pl_run_key;

/* True when s starts with a run id, <prefix><MMDD>_<HHMMSS>_<pid> (a real month, day and time
 * of day, a pid of 1 to 10 digits without a leading zero), followed by `end` ('\0': s is
 * the id). Ids carry no year: one dated more than a week after `today` (local time) counts as
 * last year's. Fills *out. */
bool pl_run_id_parse(const char *s, const char *prefix, char end, const struct tm *today,
                     pl_run_key *out);

/* Negative when a is newer than b (later time stamp, then larger pid), 0 when alike. */
int pl_run_key_cmp(const pl_run_key *a, const pl_run_key *b);

typedef struct pl_prune_opts {
    const pl_kafka *kafka;
    kf_registry *registry; /* NULL: subjects are left alone */
    const char *pg_dsn;
    const char *prefix; /* of the run ids, e.g. "run_" */
    int keep;           /* newest runs left alone */
    time_t now;         /* dates the ids (which carry no year) */
} pl_prune_opts;

typedef struct pl_prune_stats {
    size_t runs;        /* runs found (any of topics, schema or kfleet_meta rows) */
    size_t kept;        /* the newest o->keep of them */
    size_t live;        /* older ones left alone because they are still running */
    size_t pruned;      /* older ones deleted */
    size_t topics;      /* topics deleted */
    size_t subjects;    /* registry subjects deleted */
    size_t schemas;     /* Postgres schemas dropped */
    uint64_t meta_rows; /* kfleet_meta rows deleted */
    size_t failures;    /* steps that failed (each logged as a warning) */
} pl_prune_stats;

/* Finds every run of the prefix in Kafka (topics "<id>.*") and Postgres (schema "<id>",
 * kfleet_meta rows of groups "<id>-*" or of schema "<id>") and deletes, for all but the newest
 * o->keep runs, their topics, the subjects "<topic>-key" and "<topic>-value" (permanently, once
 * the topic is gone), the schema (CASCADE) and the rows. A run still running (a consumer group
 * "<id>-*" has members, e.g. another user's) is left alone; when that cannot be known, no run
 * is deleted. A step that fails is logged and the rest goes on; a run is deleted only when
 * o->keep newer ones were seen, so a listing that failed can only keep more. Logs one line with
 * the counts. KF_OK when nothing failed, else the first failure (err filled). */
int pl_prune(const pl_prune_opts *o, pl_prune_stats *stats, kf_error *err);

#endif
