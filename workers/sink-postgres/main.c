/* kfleet-sink-pg: applies change-event topics to PostgreSQL tables exactly once. Parses the
 * configuration, starts the shared services, runs the loop and maps the result to an exit code. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kfleet/app.h"
#include "kfleet/audit.h"
#include "kfleet/config.h"
#include "kfleet/log.h"
#include "sink.h"

static const char *const deletion_names[] = {"hard", "soft", NULL};
static const char *const copy_format_names[] = {"binary", "text", NULL};

static const kf_config_key sink_keys[] = {
    KF_APP_CONFIG_KEYS(sink_cfg, app),
    KF_AUDIT_CONFIG_KEYS(sink_cfg, audit),
    {.name = "sink.topics",
     .type = KF_CONFIG_LIST,
     .offset = offsetof(sink_cfg, topics),
     .flag = "topic",
     .short_flag = 't',
     .flags = KF_CONFIG_REQUIRED,
     .description = "Topics to read; an entry starting with ^ is a regular expression."},
    {.name = "pg.dsn",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(sink_cfg, pg_dsn),
     .flag = "pg-dsn",
     .flags = KF_CONFIG_SECRET | KF_CONFIG_REQUIRED,
     .description = "Destination database (postgresql:// URI or key=value conninfo); other pg.* "
                    "keys are libpq connection keywords that override it."},
    {.name = "sink.table.name.format",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(sink_cfg, table_format),
     .default_value = "${table}",
     .flag = "table-name-format",
     .description = "Destination table of a topic: ${table} is the topic's last dot-separated "
                    "part (the source table of kfleet and Debezium topics), ${db} the part "
                    "before it, ${topic} the whole topic name."},
    {.name = "sink.target.schema",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(sink_cfg, target_schema),
     .default_value = "public",
     .flag = "target-schema",
     .description = "Postgres schema the destination tables live in."},
    {.name = "sink.batch.size",
     .type = KF_CONFIG_INT,
     .offset = offsetof(sink_cfg, batch_size),
     .default_value = "500",
     .min = 1,
     .max = 1000000,
     .flag = "batch-size",
     .description = "Changes per table applied in one transaction while the input keeps up: "
                    "a batch this full is committed unless more records are already waiting "
                    "(then it grows, up to sink.batch.max.rows and sink.batch.max.bytes)."},
    {.name = "sink.batch.max.rows",
     .type = KF_CONFIG_INT,
     .offset = offsetof(sink_cfg, batch_max_rows),
     .default_value = "50000",
     .min = 1,
     .max = 1000000,
     .flag = "batch-max-rows",
     .description = "Most changes per table in one transaction while catching up on a backlog "
                    "(records already fetched or waiting in the partition); fewer commits make "
                    "a catch-up faster. Never below the table's batch size."},
    {.name = "sink.batch.max.bytes",
     .type = KF_CONFIG_INT64,
     .offset = offsetof(sink_cfg, batch_max_bytes),
     .default_value = "4194304",
     .min = 65536,
     .max = 1073741824,
     .flag = "batch-max-bytes",
     .description = "Most bytes a table's batch holds while catching up (Kafka keys and values "
                    "plus their encoded rows), bounding memory; a batch at this size is "
                    "committed."},
    {.name = "sink.flush.interval",
     .type = KF_CONFIG_DURATION_MS,
     .offset = offsetof(sink_cfg, flush_ms),
     .default_value = "1s",
     .min = 1,
     .max = 3600000,
     .flag = "flush-interval",
     .description = "Longest time a change waits in a table's batch, also while catching up; "
                    "a batch is applied sooner once the input goes quiet."},
    {.name = "sink.batch.overrides",
     .type = KF_CONFIG_LIST,
     .offset = offsetof(sink_cfg, overrides),
     .description = "Per-table batch settings as TABLE=ROWS or TABLE=ROWS/INTERVAL, "
                    "e.g. orders=2000/200ms."},
    {.name = "sink.deletion_strategy",
     .type = KF_CONFIG_ENUM,
     .offset = offsetof(sink_cfg, deletion),
     .default_value = "hard",
     .enum_values = deletion_names,
     .flag = "deletion-strategy",
     .description = "hard deletes rows; soft sets the soft-delete column to true."},
    {.name = "sink.soft_delete.column",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(sink_cfg, soft_column),
     .default_value = "is_deleted",
     .description = "Boolean column marking soft-deleted rows."},
    {.name = "sink.auto_create",
     .type = KF_CONFIG_BOOL,
     .offset = offsetof(sink_cfg, auto_create),
     .default_value = "true",
     .description = "Create missing tables from the first schema seen; when off, their records "
                    "go to the dead-letter queue."},
    {.name = "sink.copy.format",
     .type = KF_CONFIG_ENUM,
     .offset = offsetof(sink_cfg, copy_format),
     .default_value = "binary",
     .enum_values = copy_format_names,
     .flag = "copy-format",
     .description = "Format of the rows sent by COPY: binary (Postgres reads the values without "
                    "parsing text; used for a table when the sink knows the binary form of all "
                    "its column types, else text) or text."},
    {.name = "sink.retry.backoff.initial",
     .type = KF_CONFIG_DURATION_MS,
     .offset = offsetof(sink_cfg, backoff_initial_ms),
     .default_value = "200ms",
     .min = 1,
     .max = 600000,
     .description = "First delay before retrying when Postgres is unavailable."},
    {.name = "sink.retry.backoff.max",
     .type = KF_CONFIG_DURATION_MS,
     .offset = offsetof(sink_cfg, backoff_max_ms),
     .default_value = "10s",
     .min = 1,
     .max = 3600000,
     .description = "Longest delay between retries."},
    {0},
};

const kf_config_spec sink_config_spec = {
    .program = SINK_PROGRAM,
    .summary = "Applies change-event topics to PostgreSQL tables exactly once, evolving them.",
    .keys = sink_keys,
};

/* The audit event of the worker's start: its group, topics and destination. */
static void audit_start(kf_audit *audit, const sink_cfg *c, const char *group)
{
    if (!audit)
        return;
    json_t *topics = json_array();
    for (size_t i = 0; topics && i < c->topics.count; i++)
        json_array_append_new(topics, json_string(c->topics.items[i]));
    json_t *d =
        json_pack("{s:s, s:s, s:o*, s:s, s:s, s:i, s:s, s:s}", "version", KFLEET_VERSION, "group",
                  group, "topics", topics, "target_schema", c->target_schema, "table_name_format",
                  c->table_format, "batch_size", c->batch_size, "deletion",
                  deletion_names[c->deletion], "copy_format", copy_format_names[c->copy_format]);
    char *details = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(d);
    kf_audit_event ev = {.action = "start", .message = SINK_PROGRAM " started", .details = details};
    kf_audit_emit(audit, &ev);
    free(details);
}

/* The audit event of the worker's stop: what it applied, and why it stopped if it failed. */
static void audit_stop(kf_audit *audit, const sink *s, int rc, const kf_error *err)
{
    if (!audit)
        return;
    json_t *d = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i}", "records", (json_int_t)s->n_records, "batches",
        (json_int_t)s->n_batches, "rows_upserted", (json_int_t)s->n_upserted, "rows_deleted",
        (json_int_t)s->n_deleted, "dlq_records", (json_int_t)s->n_dlq, "schema_changes",
        (json_int_t)s->n_ddl, "run_id", (json_int_t)s->run_id, "exit_code", kf_app_exit_code(rc));
    char *details = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(d);
    char message[600];
    if (rc == KF_OK)
        snprintf(message, sizeof(message), "%s stopped", SINK_PROGRAM);
    else
        snprintf(message, sizeof(message), "%s stopped: %s", SINK_PROGRAM, err->message);
    kf_audit_event ev = {.action = "stop",
                         .level = rc == KF_OK ? KF_AUDIT_INFO : KF_AUDIT_ERROR,
                         .message = message,
                         .has_count = true,
                         .count = (int64_t)s->n_records,
                         .details = details};
    kf_audit_emit(audit, &ev);
    free(details);
}

int main(int argc, char **argv)
{
    sink_cfg c;
    memset(&c, 0, sizeof(c));
    kf_config *cfg = NULL;
    kf_error err;
    int early = kf_config_start(&sink_config_spec, &c, argc, argv, &cfg);
    if (early >= 0)
        return early;
    if (c.backoff_max_ms < c.backoff_initial_ms) {
        fprintf(stderr, "%s: sink.retry.backoff.max is shorter than sink.retry.backoff.initial\n",
                SINK_PROGRAM);
        kf_config_destroy(cfg);
        return 2;
    }
    kf_app app;
    memset(&app, 0, sizeof(app));
    int rc = kf_app_start(&app, SINK_PROGRAM, cfg, &c.app, KF_APP_NEED_REGISTRY, &err);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", SINK_PROGRAM, err.message);
        kf_config_destroy(cfg);
        return kf_app_exit_code(rc);
    }
    /* the emitter takes the kafka.* settings (it leaves out the consumer's keys itself) */
    kf_app_kv kv = {0};
    kf_audit *audit = NULL;
    if ((rc = kf_app_kafka_kv(cfg, NULL, 0, &kv, &err)) < 0 ||
        (rc = kf_app_audit_new(&app, &c.app, &c.audit, &kv, kf_app_kv_get(&kv, "group.instance.id"),
                               &audit, &err)) < 0) {
        kf_log(KF_LOG_ERROR, err.message, (char *)NULL);
        kf_app_kv_free(&kv);
        kf_app_stop(&app);
        kf_config_destroy(cfg);
        return kf_app_exit_code(rc);
    }
    const char *group = kf_app_kv_get(&kv, "group.id");
    audit_start(audit, &c, group ? group : SINK_PROGRAM); /* sink_open's default group */
    kf_app_kv_free(&kv);
    sink s;
    memset(&s, 0, sizeof(s));
    s.cfg = &c;
    s.app = &app;
    s.audit = audit;
    rc = sink_open(&s, cfg, &err);
    if (rc == KF_OK)
        rc = sink_run(&s, &err);
    if (rc < 0)
        kf_log(KF_LOG_ERROR, "stopping on error", "error", err.message, (char *)NULL);
    sink_log_summary(&s);
    sink_meta_finish(&s, rc < 0 ? "failed" : "stopped", rc < 0 ? err.message : NULL);
    audit_stop(audit, &s, rc, &err);
    sink_close(&s);
    kf_audit_destroy(audit);
    kf_app_stop(&app);
    sink_free_parts(&s);
    kf_config_destroy(cfg);
    return kf_app_exit_code(rc);
}
