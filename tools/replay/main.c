/* kfleet-replay: sends dead-letter records back to their origin topic (or --to), filtered by
 * rule, error reason, time or offsets, with a dry run and a loop guard; --materialize writes
 * them into kfleet_meta.quarantine in PostgreSQL instead. Each run ends with an audit event. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kfleet/app.h"
#include "kfleet/audit.h"
#include "kfleet/config.h"
#include "kfleet/dlq.h"
#include "kfleet/log.h"
#include "replay.h"

#define PROGRAM        "kfleet-replay"
#define MAX_ARGS       64
#define AUDIT_FLUSH_MS 30000

typedef struct replay_cfg {
    kf_app_config app;
    kf_audit_config audit;
    char *to;
    kf_strlist rules;
    kf_strlist reasons;
    char *since;
    char *until;
    kf_strlist offsets;
    bool dry_run;
    int max_replays;
    char *parking;
    char *group;
    char *txn_id;
    bool follow;
    bool materialize;
    char *pg_dsn;
} replay_cfg;

static const kf_config_key KEYS[] = {
    KF_APP_CONFIG_KEYS(replay_cfg, app),
    KF_AUDIT_CONFIG_KEYS(replay_cfg, audit),
    {.name = "replay.to",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(replay_cfg, to),
     .flag = "to",
     .description = "Topic to replay into instead of each record's origin topic (header "
                    "__connect.errors.topic)."},
    {.name = "replay.rules",
     .type = KF_CONFIG_LIST,
     .offset = offsetof(replay_cfg, rules),
     .flag = "rule",
     .description =
         "Only records quarantined by these rule ids (kfleet.rule.id). Records that "
         "could not be decoded carry the reserved id " KF_DLQ_RULE_DECODE ". Repeatable."},
    {.name = "replay.reasons",
     .type = KF_CONFIG_LIST,
     .offset = offsetof(replay_cfg, reasons),
     .flag = "reason",
     .description = "Only records whose error reason (kfleet.error.reason) contains this text, "
                    "e.g. unknown_schema_id, bad_magic_byte, undecodable_avro or a rule kind "
                    "such as not_null. Repeatable: any of them."},
    {.name = "replay.since",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(replay_cfg, since),
     .flag = "since",
     .description = "Only records with a timestamp at or after this time (ISO-8601 or epoch "
                    "milliseconds)."},
    {.name = "replay.until",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(replay_cfg, until),
     .flag = "until",
     .description = "Only records with a timestamp before this time."},
    {.name = "replay.offsets",
     .type = KF_CONFIG_LIST,
     .offset = offsetof(replay_cfg, offsets),
     .flag = "offsets",
     .description = "Only these DLQ offsets: PARTITION:FIRST-LAST, FIRST-LAST (every partition), "
                    "FIRST- (open end) or one OFFSET. Repeatable."},
    {.name = "replay.dry.run",
     .type = KF_CONFIG_BOOL,
     .offset = offsetof(replay_cfg, dry_run),
     .default_value = "false",
     .flag = "dry-run",
     .description = "List what would be replayed (or parked) without producing or committing."},
    {.name = "replay.max.replays",
     .type = KF_CONFIG_INT,
     .offset = offsetof(replay_cfg, max_replays),
     .default_value = "3",
     .min = 1,
     .max = 1000,
     .flag = "max-replays",
     .description = "Loop guard: a record whose kfleet.replay.count reached this goes to the "
                    "parking topic instead."},
    {.name = "replay.parking.topic",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(replay_cfg, parking),
     .flag = "parking-topic",
     .description = "Where records over the loop guard go (created with the partitions of the "
                    "DLQ topic when missing); default <dlq topic>.parked."},
    {.name = "replay.group",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(replay_cfg, group),
     .default_value = "kfleet-replay",
     .flag = "group",
     .description = "Consumer group; a later run resumes after what it already replayed."},
    {.name = "replay.transactional.id",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(replay_cfg, txn_id),
     .flag = "transactional-id",
     .description = "Transactional id; default <group>-<hostname>."},
    {.name = "replay.follow",
     .type = KF_CONFIG_BOOL,
     .offset = offsetof(replay_cfg, follow),
     .default_value = "false",
     .flag = "follow",
     .description = "Keep replaying new dead-letter records as they arrive, until a stop "
                    "signal; by default the run stops at the end each partition had when it "
                    "started."},
    {.name = "replay.materialize",
     .type = KF_CONFIG_BOOL,
     .offset = offsetof(replay_cfg, materialize),
     .default_value = "false",
     .flag = "materialize",
     .description = "Write the selected records into kfleet_meta.quarantine in PostgreSQL "
                    "instead of replaying them."},
    {.name = "replay.pg.dsn",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(replay_cfg, pg_dsn),
     .flag = "pg-dsn",
     .flags = KF_CONFIG_SECRET,
     .description = "PostgreSQL connection string or URI for --materialize; pg.* keys add or "
                    "override libpq parameters."},
    {0},
};

static const kf_config_spec SPEC = {
    .program = PROGRAM,
    .summary = "Replays dead-letter records to their origin topic, or materializes them into "
               "kfleet_meta.quarantine.",
    .args_usage = "DLQ_TOPIC...",
    .max_args = MAX_ARGS,
    .keys = KEYS,
};

typedef struct pg_params {
    const char *keys[64];
    const char *values[64];
    size_t n;
} pg_params;

static int add_pg(const char *key, const char *value, const char *source, void *ctx)
{
    pg_params *p = ctx;
    if (p->n + 1 >= 64)
        return 1;
    p->keys[p->n] = key;
    p->values[p->n++] = value;
    return 0;
}

int main(int argc, char **argv)
{
    replay_cfg rc_;
    kf_config *cfg = NULL;
    kf_error err;
    int early = kf_config_start(&SPEC, &rc_, argc, argv, &cfg);
    if (early >= 0)
        return early;
    int rc = KF_OK;
    kf_app app;
    kf_app_kv kv = {0};
    size_t ntopics = kf_config_arg_count(cfg);
    const char *topics[MAX_ARGS];
    kf_replay_range ranges[64];
    pg_params pg = {0};
    kf_replay_options o = {0};
    kf_audit *audit = NULL;
    if ((rc = kf_app_start(&app, PROGRAM, cfg, &rc_.app, 0, &err)) != KF_OK) {
        fprintf(stderr, "%s: %s\n", PROGRAM, err.message);
        kf_config_destroy(cfg);
        return kf_app_exit_code(rc);
    }
    if (ntopics == 0) {
        rc = kf_error_set(&err, KF_ERR_CONFIG, false, "no dead-letter topic given");
        goto out_stop;
    }
    for (size_t i = 0; i < ntopics; i++)
        topics[i] = kf_config_arg(cfg, i);
    if (rc_.offsets.count > 64) {
        rc = kf_error_set(&err, KF_ERR_CONFIG, false, "at most 64 --offsets ranges");
        goto out_stop;
    }
    for (size_t i = 0; i < rc_.offsets.count; i++) {
        if (kf_replay_parse_range(rc_.offsets.items[i], &ranges[i]) != KF_OK) {
            rc = kf_error_set(&err, KF_ERR_CONFIG, false,
                              "--offsets \"%s\" is not PARTITION:FIRST-LAST, FIRST-LAST, FIRST- "
                              "or OFFSET",
                              rc_.offsets.items[i]);
            goto out_stop;
        }
    }
    for (size_t i = 0; i < rc_.reasons.count; i++) {
        if (!rc_.reasons.items[i][0]) {
            rc = kf_error_set(&err, KF_ERR_CONFIG, false, "--reason takes a non-empty text");
            goto out_stop;
        }
    }
    o.has_since = rc_.since != NULL;
    o.has_until = rc_.until != NULL;
    if ((rc_.since && kf_replay_parse_time(rc_.since, &o.since_ms) != KF_OK) ||
        (rc_.until && kf_replay_parse_time(rc_.until, &o.until_ms) != KF_OK)) {
        rc = kf_error_set(&err, KF_ERR_CONFIG, false,
                          "--since and --until take an ISO-8601 time or epoch milliseconds");
        goto out_stop;
    }
    if ((rc = kf_app_kafka_kv(cfg, NULL, 0, &kv, &err)) != KF_OK)
        goto out_stop;
    if (rc_.materialize) {
        if (rc_.pg_dsn) {
            pg.keys[pg.n] = "dbname";
            pg.values[pg.n++] = rc_.pg_dsn;
        }
        if (kf_config_passthrough(cfg, "pg.", add_pg, &pg) != 0) {
            rc = kf_error_set(&err, KF_ERR_CONFIG, false, "too many pg.* settings");
            goto out_stop;
        }
        if (pg.n == 0) {
            rc = kf_error_set(&err, KF_ERR_CONFIG, false,
                              "--materialize needs --pg-dsn or pg.* connection settings");
            goto out_stop;
        }
    } else if (rc_.pg_dsn) {
        rc = kf_error_set(&err, KF_ERR_CONFIG, false, "--pg-dsn applies to --materialize only");
        goto out_stop;
    }
    char host[128] = "localhost", txn_id[512];
    gethostname(host, sizeof(host) - 1);
    snprintf(txn_id, sizeof(txn_id), "%s-%s", rc_.group, host);
    o.topics = topics;
    o.ntopics = ntopics;
    o.to = rc_.to;
    o.rules = (const char *const *)rc_.rules.items;
    o.nrules = rc_.rules.count;
    o.reasons = (const char *const *)rc_.reasons.items;
    o.nreasons = rc_.reasons.count;
    o.ranges = ranges;
    o.nranges = rc_.offsets.count;
    o.dry_run = rc_.dry_run;
    o.max_replays = rc_.max_replays;
    o.parking_topic = rc_.parking;
    o.group = rc_.group;
    o.transactional_id = rc_.txn_id ? rc_.txn_id : txn_id;
    o.follow = rc_.follow;
    o.kafka_kv = kv.kv;
    o.kafka_npairs = kv.npairs;
    o.materialize = rc_.materialize;
    o.pg_keys = pg.keys;
    o.pg_values = pg.values;
    o.registry = app.registry;
    /* a dry run changes nothing, so it leaves no audit trail */
    if (!rc_.dry_run &&
        (rc = kf_app_audit_new(&app, &rc_.app, &rc_.audit, &kv, NULL, &audit, &err)) != KF_OK)
        goto out_stop;
    kf_replay_stats st;
    rc = kf_replay_run(&o, stdout, &st, &err);
    kf_replay_audit(audit, &o, &st, rc, &err);
    if (kf_audit_flush(audit, AUDIT_FLUSH_MS) != KF_OK)
        kf_log(KF_LOG_ERROR, "could not write the replay summary to the audit topic", "topic",
               kf_audit_topic(audit), (char *)NULL);

out_stop:
    if (rc != KF_OK)
        kf_log(KF_LOG_ERROR, err.message, (char *)NULL);
    kf_audit_destroy(audit);
    kf_app_kv_free(&kv);
    kf_app_stop(&app);
    kf_config_destroy(cfg);
    return kf_app_exit_code(rc);
}
