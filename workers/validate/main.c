/* kfleet-validate: checks change events against declarative contracts and routes them to the
 * valid topic or the dead-letter topic; `kfleet-validate check` validates once for CI. */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "alert.h"
#include "check.h"
#include "contract.h"
#include "kfleet/app.h"
#include "kfleet/audit.h"
#include "kfleet/config.h"
#include "kfleet/log.h"
#include "loop.h"
#include "txnid.h"

#define PROGRAM "kfleet-validate"

typedef struct validate_cfg {
    kf_app_config app;
    kf_audit_config audit;
    kf_strlist contracts;
    kf_strlist topics;
    char *group;
    char *txn_id;
    bool eos;
    int batch_size;
    int64_t commit_interval_ms;
    int64_t poll_ms;
    int64_t max_records;
    bool no_actions;
    char *webhook;
    int64_t alert_interval_ms;
    int alert_retries;
} validate_cfg;

static const kf_config_key WORKER_KEYS[] = {
    KF_APP_CONFIG_KEYS(validate_cfg, app),
    KF_AUDIT_CONFIG_KEYS(validate_cfg, audit),
    {.name = "validate.contracts",
     .type = KF_CONFIG_LIST,
     .offset = offsetof(validate_cfg, contracts),
     .flag = "contract",
     .flags = KF_CONFIG_REQUIRED,
     .description = "Contract files (YAML); each covers the tables or topics of its match "
                    "section. Repeatable."},
    {.name = "validate.topics",
     .type = KF_CONFIG_LIST,
     .offset = offsetof(validate_cfg, topics),
     .flag = "topic",
     .description = "Topics to read (names, or patterns starting with ^); default: the tables "
                    "and topics the contracts match."},
    {.name = "validate.group",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(validate_cfg, group),
     .default_value = "kfleet-validate",
     .flag = "group",
     .description = "Consumer group of the worker (kafka.group.id overrides it)."},
    {.name = "validate.transactional.id",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(validate_cfg, txn_id),
     .flag = "transactional-id",
     .description = "Transactional id of this instance: unique among running instances, and "
                    "best the same after a restart, so the new instance aborts its "
                    "predecessor's open transaction at once. Default: <group>-<group.instance.id> "
                    "when kafka.group.instance.id is set; else <group>-<hostname>-<slot>, slot "
                    "being the lowest free one of the lock files "
                    "$XDG_RUNTIME_DIR (or /tmp)/kfleet-validate.<group>.<n>.lock, so replicas on "
                    "one host differ and a restarted one takes back its slot; else "
                    "<group>-<hostname>-pid<pid>. Zombies are fenced by the consumer group "
                    "generation (KIP-447) whatever the id."},
    {.name = "kfleet.eos",
     .type = KF_CONFIG_BOOL,
     .offset = offsetof(validate_cfg, eos),
     .default_value = "true",
     .flag = "eos",
     .description = "Exactly-once: outputs and input offsets in one Kafka transaction per "
                    "batch; false = at-least-once."},
    {.name = "validate.batch.size",
     .type = KF_CONFIG_INT,
     .offset = offsetof(validate_cfg, batch_size),
     .default_value = "2000",
     .min = 1,
     .max = 100000,
     .flag = "batch-size",
     .description = "Most records per batch (one transaction)."},
    {.name = "validate.commit.interval",
     .type = KF_CONFIG_DURATION_MS,
     .offset = offsetof(validate_cfg, commit_interval_ms),
     .default_value = "100ms",
     .min = 1,
     .max = 60000,
     .flag = "commit-interval",
     .description = "Most time from a batch's first record to its commit: bounds the latency "
                    "this stage adds when input is slower than validate.batch.size per "
                    "interval."},
    {.name = "validate.poll.timeout",
     .type = KF_CONFIG_DURATION_MS,
     .offset = offsetof(validate_cfg, poll_ms),
     .default_value = "500ms",
     .min = 1,
     .max = 60000,
     .description = "How long one poll waits for the first record of a batch."},
    {.name = "validate.max.records",
     .type = KF_CONFIG_INT64,
     .offset = offsetof(validate_cfg, max_records),
     .default_value = "0",
     .min = 0,
     .max = 9e18,
     .flag = "max-records",
     .description = "Stop cleanly after this many input records (0: run until a signal)."},
    {.name = "validate.no.actions",
     .type = KF_CONFIG_BOOL,
     .offset = offsetof(validate_cfg, no_actions),
     .default_value = "false",
     .flag = "no-actions",
     .description = "Turn alert actions (the webhook) off; alerts are still logged and counted."},
    {.name = "validate.alert.webhook.url",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(validate_cfg, webhook),
     .flag = "alert-webhook",
     .flags = KF_CONFIG_SECRET,
     .description = "Slack-compatible incoming webhook for alerts; empty: none."},
    {.name = "validate.alert.interval",
     .type = KF_CONFIG_DURATION_MS,
     .offset = offsetof(validate_cfg, alert_interval_ms),
     .default_value = "60s",
     .min = 100,
     .max = 86400000,
     .description = "At most one webhook call per interval; alerts in between are merged."},
    {.name = "validate.alert.retries",
     .type = KF_CONFIG_INT,
     .offset = offsetof(validate_cfg, alert_retries),
     .default_value = "5",
     .min = 0,
     .max = 100,
     .description = "Retries of a failed webhook call, with exponential backoff."},
    {0},
};

static const kf_config_spec WORKER_SPEC = {
    .program = PROGRAM,
    .summary = "Validates change events against contracts: valid records to <p>.valid.<db>."
               "<table>, failing ones to <p>.dlq.<topic>. Batch mode: kfleet-validate check.",
    .keys = WORKER_KEYS,
};

typedef struct check_cfg {
    kf_app_config app;
    char *contract;
    char *topic;
    char *from;
    char *to;
    char *file;
    int format;
    int64_t timeout_ms;
} check_cfg;

static const char *const FORMATS[] = {"table", "json", NULL};

static const kf_config_key CHECK_KEYS[] = {
    KF_APP_CONFIG_KEYS(check_cfg, app),
    {.name = "check.contract",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(check_cfg, contract),
     .flag = "contract",
     .flags = KF_CONFIG_REQUIRED,
     .description = "The contract file to check against."},
    {.name = "check.topic",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(check_cfg, topic),
     .flag = "topic",
     .description = "Topic to check (records decoded with the schema registry)."},
    {.name = "check.from",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(check_cfg, from),
     .flag = "from",
     .description = "Start of the topic range: an offset (every partition) or an ISO-8601 time; "
                    "default the beginning."},
    {.name = "check.to",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(check_cfg, to),
     .flag = "to",
     .description = "End of the topic range, exclusive, in the same forms; default the end at "
                    "start-up."},
    {.name = "check.file",
     .type = KF_CONFIG_STRING,
     .offset = offsetof(check_cfg, file),
     .flag = "file",
     .description = "A JSON-lines (.jsonl, .ndjson, .json) or CSV (.csv, with a header row) file "
                    "to check instead of a topic."},
    {.name = "check.output.format",
     .type = KF_CONFIG_ENUM,
     .offset = offsetof(check_cfg, format),
     .default_value = "table",
     .enum_values = FORMATS,
     .flag = "output-format",
     .description = "Report format: a human table or deterministic JSON."},
    {.name = "check.timeout",
     .type = KF_CONFIG_DURATION_MS,
     .offset = offsetof(check_cfg, timeout_ms),
     .default_value = "60s",
     .min = 1000,
     .max = 86400000,
     .description = "Reading the topic range must finish within this time."},
    {0},
};

static const kf_config_spec CHECK_SPEC = {
    .program = PROGRAM " check",
    .summary = "Validates a topic range or a file against a contract once. Exit 0 pass, 1 "
               "violations, 2 usage or system error.",
    .keys = CHECK_KEYS,
};

static void set_ready(void *ctx, bool ready)
{
    kf_app_set_ready(ctx, ready, ready ? NULL : "stopping");
}

static int run_check(int argc, char **argv)
{
    check_cfg cc;
    kf_config *cfg = NULL;
    kf_error err;
    int early = kf_config_start(&CHECK_SPEC, &cc, argc, argv, &cfg);
    if (early >= 0)
        return early;
    int exit_code = 2;
    kf_app app;
    kf_app_kv kv = {0};
    kf_contract *contract = NULL;
    if (kf_app_start(&app, PROGRAM, cfg, &cc.app, 0, &err) != KF_OK) {
        fprintf(stderr, "%s check: %s\n", PROGRAM, err.message);
        goto out_destroy_config;
    }
    if (kf_contract_load(cc.contract, &contract, &err) != KF_OK ||
        kf_app_kafka_kv(cfg, NULL, 0, &kv, &err) != KF_OK) {
        fprintf(stderr, "%s check: %s\n", PROGRAM, err.message);
        goto out_stop;
    }
    kf_check_options o = {.contract = contract,
                          .file = cc.file,
                          .topic = cc.topic,
                          .from = cc.from,
                          .to = cc.to,
                          .kafka_kv = kv.kv,
                          .kafka_npairs = kv.npairs,
                          .registry = app.registry,
                          .timeout_ms = cc.timeout_ms,
                          .json = cc.format == 1};
    int rc = kf_check_run(&o, stdout, &err);
    if (rc < 0)
        fprintf(stderr, "%s check: %s\n", PROGRAM, err.message);
    exit_code = rc < 0 ? 2 : rc;

out_stop:
    kf_contract_destroy(contract);
    kf_app_kv_free(&kv);
    kf_app_stop(&app);
out_destroy_config:
    kf_config_destroy(cfg);
    return exit_code;
}

/* The audit event of the worker's start: its group, transactional id and contracts. */
static void audit_start(kf_audit *audit, const validate_cfg *vc, const char *group,
                        const char *txn_id, kf_contract *const *contracts, size_t nc)
{
    if (!audit)
        return;
    json_t *names = json_array(), *topics = json_array();
    for (size_t i = 0; names && i < nc; i++)
        json_array_append_new(names, json_string(contracts[i]->name));
    for (size_t i = 0; topics && i < vc->topics.count; i++)
        json_array_append_new(topics, json_string(vc->topics.items[i]));
    json_t *d = json_pack("{s:s, s:s, s:b, s:o*, s:o*, s:i}", "version", KFLEET_VERSION, "group",
                          group, "eos", vc->eos, "contracts", names, "topics", topics, "batch_size",
                          vc->batch_size);
    if (d && txn_id)
        json_object_set_new(d, "transactional_id", json_string(txn_id));
    char *details = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(d);
    kf_audit_event ev = {.action = "start", .message = PROGRAM " started", .details = details};
    kf_audit_emit(audit, &ev);
    free(details);
}

/* The audit event of the worker's stop: what it did, and why it stopped if it failed. */
static void audit_stop(kf_audit *audit, int rc, const kf_error *err, const kf_vloop_stats *st)
{
    if (!audit)
        return;
    json_t *d =
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i}", "records_in",
                  (json_int_t)st->records_in, "valid", (json_int_t)st->valid, "quarantined",
                  (json_int_t)st->quarantined, "undecodable", (json_int_t)st->undecodable,
                  "unchecked", (json_int_t)st->unchecked, "batches", (json_int_t)st->batches,
                  "aborted_batches", (json_int_t)st->aborts, "exit_code", kf_app_exit_code(rc));
    char *details = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(d);
    char message[600];
    if (rc == KF_OK)
        snprintf(message, sizeof(message), "%s stopped", PROGRAM);
    else
        snprintf(message, sizeof(message), "%s stopped: %s", PROGRAM, err->message);
    kf_audit_event ev = {.action = "stop",
                         .level = rc == KF_OK ? KF_AUDIT_INFO : KF_AUDIT_ERROR,
                         .message = message,
                         .has_count = true,
                         .count = (int64_t)st->records_in,
                         .details = details};
    kf_audit_emit(audit, &ev);
    free(details);
}

static int run_worker(int argc, char **argv)
{
    validate_cfg vc;
    kf_config *cfg = NULL;
    kf_error err;
    int early = kf_config_start(&WORKER_SPEC, &vc, argc, argv, &cfg);
    if (early >= 0)
        return early;
    int rc;
    kf_app app;
    kf_app_kv kv = {0};
    kf_alert *alert = NULL;
    kf_audit *audit = NULL;
    kf_txnid *txnid = NULL;
    size_t nc = vc.contracts.count;
    kf_contract **contracts = calloc(nc ? nc : 1, sizeof(*contracts));
    if (!contracts) {
        fprintf(stderr, "%s: could not allocate contracts\n", PROGRAM);
        kf_config_destroy(cfg);
        return 1;
    }
    if ((rc = kf_app_start(&app, PROGRAM, cfg, &vc.app, KF_APP_NEED_REGISTRY, &err)) != KF_OK) {
        fprintf(stderr, "%s: %s\n", PROGRAM, err.message);
        goto out_free_contracts;
    }
    for (size_t i = 0; i < nc; i++) {
        if ((rc = kf_contract_load(vc.contracts.items[i], &contracts[i], &err)) != KF_OK) {
            if (rc == KF_ERR_IO)
                rc = KF_ERR_CONFIG;
            kf_log(KF_LOG_ERROR, err.message, (char *)NULL);
            goto out_stop;
        }
    }
    if ((rc = kf_app_kafka_kv(cfg, NULL, 0, &kv, &err)) != KF_OK) {
        kf_log(KF_LOG_ERROR, err.message, (char *)NULL);
        goto out_stop;
    }
    const char *group = kf_app_kv_get(&kv, "group.id");
    if (!group)
        group = vc.group;
    if (vc.eos && !vc.txn_id &&
        !(txnid = kf_txnid_new(group, kf_app_kv_get(&kv, "group.instance.id"),
                               getenv("XDG_RUNTIME_DIR"), &err))) {
        rc = err.code;
        kf_log(KF_LOG_ERROR, err.message, (char *)NULL);
        goto out_stop;
    }
    const char *txn_id = !vc.eos ? NULL : vc.txn_id ? vc.txn_id : kf_txnid_id(txnid);
    if (vc.eos)
        kf_log(KF_LOG_INFO, "transactional id", "id", txn_id, "source",
               vc.txn_id ? "configured" : "derived", (char *)NULL);
    if ((rc = kf_app_audit_new(&app, &vc.app, &vc.audit, &kv,
                               kf_app_kv_get(&kv, "group.instance.id"), &audit, &err)) != KF_OK) {
        kf_log(KF_LOG_ERROR, err.message, (char *)NULL);
        goto out_stop;
    }
    kf_alert_config acfg = {.worker = PROGRAM,
                            .webhook_url = vc.webhook,
                            .no_actions = vc.no_actions,
                            .interval_ms = vc.alert_interval_ms,
                            .max_retries = vc.alert_retries,
                            .audit = audit};
    if (!(alert = kf_alert_new(&acfg, app.metrics, &err))) {
        rc = err.code;
        kf_log(KF_LOG_ERROR, err.message, (char *)NULL);
        goto out_stop;
    }
    kf_vloop_config lc = {.prefix = vc.app.topic_prefix,
                          .worker = PROGRAM,
                          .contracts = contracts,
                          .ncontracts = nc,
                          .topics = (const char *const *)vc.topics.items,
                          .ntopics = vc.topics.count,
                          .kafka_kv = kv.kv,
                          .kafka_npairs = kv.npairs,
                          .group = group,
                          .transactional_id = txn_id,
                          .eos = vc.eos,
                          .batch_size = (size_t)vc.batch_size,
                          .commit_interval_ms = (int)vc.commit_interval_ms,
                          .poll_timeout_ms = (int)vc.poll_ms,
                          .max_records = vc.max_records,
                          .registry = app.registry,
                          .metrics = app.metrics,
                          .alert = alert,
                          .on_ready = set_ready,
                          .ready_ctx = &app};
    kf_vloop_stats st;
    audit_start(audit, &vc, group, txn_id, contracts, nc);
    rc = kf_vloop_run(&lc, &st, &err);
    if (rc != KF_OK)
        kf_log(KF_LOG_ERROR, err.message, (char *)NULL);
    audit_stop(audit, rc, &err, &st);
    char f[9][32];
    int64_t elapsed = st.first_record_ms ? st.last_commit_ms - st.first_record_ms : 0;
    int64_t since_assign =
        st.assigned_ms && st.last_commit_ms ? st.last_commit_ms - st.assigned_ms : 0;
    snprintf(f[0], 32, "%" PRIu64, st.records_in);
    snprintf(f[1], 32, "%" PRIu64, st.valid);
    snprintf(f[2], 32, "%" PRIu64, st.quarantined);
    snprintf(f[3], 32, "%" PRIu64, st.undecodable);
    snprintf(f[4], 32, "%" PRIu64, st.batches);
    snprintf(f[5], 32, "%" PRIu64, st.aborts);
    snprintf(f[6], 32, "%" PRId64, elapsed);
    snprintf(f[7], 32, "%" PRId64, since_assign);
    snprintf(f[8], 32, "%" PRIu64, st.fetch_nudges);
    kf_log(KF_LOG_INFO, "stopped", "records_in", f[0], "valid", f[1], "quarantined", f[2],
           "undecodable", f[3], "batches", f[4], "aborted_batches", f[5], "elapsed_ms", f[6],
           "since_assign_ms", f[7], "fetch_nudges", f[8], (char *)NULL);

out_stop:
    kf_txnid_destroy(txnid);
    kf_alert_destroy(alert);
    kf_audit_destroy(audit);
    for (size_t i = 0; i < nc; i++)
        kf_contract_destroy(contracts[i]);
    kf_app_kv_free(&kv);
    kf_app_stop(&app);
out_free_contracts:
    free(contracts);
    kf_config_destroy(cfg);
    return kf_app_exit_code(rc);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "check") == 0)
        return run_check(argc - 1, argv + 1);
    return run_worker(argc, argv);
}
