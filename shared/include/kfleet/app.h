/* The runtime every kfleet program shares: common configuration keys (logging, metrics
 * address, topic prefix), start-up of logging, signals, metrics/health server, the schema
 * registry client and the audit emitter, and the librdkafka property list from the "kafka."
 * keys. */
#ifndef KFLEET_APP_H
#define KFLEET_APP_H

#include <stddef.h>

#include "kfleet/audit.h"
#include "kfleet/config.h"
#include "kfleet/error.h"
#include "kfleet/http.h"
#include "kfleet/log.h"
#include "kfleet/metrics.h"
#include "kfleet/registry.h"

/* Common keys, embedded in each program's config struct as a member named by the program. */
typedef struct kf_app_config {
    int log_level;        /* enum index into kf_log_level_names */
    int log_format;       /* enum index into kf_log_format_names */
    char *metrics_listen; /* "host:port" of /metrics, /healthz, /readyz; NULL or "" = off */
    char *topic_prefix;   /* <p> in topic names; default "kfleet" */
    char *registry_url;   /* schema registry base URL (Confluent API) */
} kf_app_config;

/* Table entries for the common keys, to put into a program's kf_config_key table:
 *   static const kf_config_key keys[] = {
 *       KF_APP_CONFIG_KEYS(struct sim_cfg, app),
 *       {.name = "sim.events", ...},
 *       {0},
 *   };
 * `member` is the kf_app_config field of `cfg_type`. Keys: log.level, log.format, metrics.listen,
 * topic.prefix, registry.url. Kafka brokers come from kafka.bootstrap.servers (pass-through),
 * registry credentials from registry.basic.auth.user.info and the client's tuning from
 * registry.timeout.ms, registry.max.retries (validated by kf_app_registry_config). */
#define KF_APP_CONFIG_KEYS(cfg_type, member)                                                       \
    {.name = "log.level",                                                                          \
     .type = KF_CONFIG_ENUM,                                                                       \
     .offset = offsetof(cfg_type, member.log_level),                                               \
     .default_value = "info",                                                                      \
     .enum_values = kf_log_level_names,                                                            \
     .flag = "log-level",                                                                          \
     .description = "Lowest level of log lines written to stderr."},                               \
        {.name = "log.format",                                                                     \
         .type = KF_CONFIG_ENUM,                                                                   \
         .offset = offsetof(cfg_type, member.log_format),                                          \
         .default_value = "logfmt",                                                                \
         .enum_values = kf_log_format_names,                                                       \
         .flag = "log-format",                                                                     \
         .description = "Log line format: logfmt or json."},                                       \
        {.name = "metrics.listen",                                                                 \
         .type = KF_CONFIG_STRING,                                                                 \
         .offset = offsetof(cfg_type, member.metrics_listen),                                      \
         .flag = "metrics-listen",                                                                 \
         .description = "Address (host:port) serving /metrics, /healthz and /readyz; "             \
                        "empty turns the server off."},                                            \
        {.name = "topic.prefix",                                                                   \
         .type = KF_CONFIG_STRING,                                                                 \
         .offset = offsetof(cfg_type, member.topic_prefix),                                        \
         .default_value = "kfleet",                                                                \
         .flag = "topic-prefix",                                                                   \
         .description = "Prefix of every topic kfleet names (<prefix>.<db>.<table>)."},            \
    {                                                                                              \
        .name = "registry.url", .type = KF_CONFIG_STRING,                                          \
        .offset = offsetof(cfg_type, member.registry_url), .flag = "registry-url",                 \
        .description = "Schema registry base URL (Confluent REST API), e.g. "                      \
                       "http://127.0.0.1:18081/apis/ccompat/v7."                                   \
    }

/* librdkafka properties gathered from the "kafka." pass-through keys, in order, as the kv
 * pairs the kafka module takes (kv[2i] = key, kv[2i+1] = value). */
typedef struct kf_app_kv {
    const char **kv; /* borrowed strings from the config; the array is owned */
    size_t npairs;
} kf_app_kv;

/* Appends every "kafka." pass-through pair of cfg (prefix removed) after the pairs in
 * `defaults` (npairs_defaults pairs, borrowed; may be NULL), so the user's settings win.
 * Returns 0 or KF_ERR_NOMEM. Free with kf_app_kv_free. */
int kf_app_kafka_kv(const kf_config *cfg, const char *const *defaults, size_t npairs_defaults,
                    kf_app_kv *out, kf_error *err);

/* Adds one pair (borrowed strings) at the end; later pairs override earlier ones. */
int kf_app_kv_add(kf_app_kv *kv, const char *key, const char *value, kf_error *err);

/* The value of the last pair named key, or NULL. */
const char *kf_app_kv_get(const kf_app_kv *kv, const char *key);

void kf_app_kv_free(kf_app_kv *kv);

/* Builds the registry client configuration from registry.url and the "registry." pass-through
 * keys: basic.auth.user.info ("user:password"), timeout.ms, max.retries, backoff.ms,
 * backoff.max.ms. Any other registry.* key is KF_ERR_CONFIG naming it and where it was set.
 * Strings in *out are borrowed from cfg (user and password from `userinfo_buf`, which must
 * outlive *out). */
int kf_app_registry_config(const kf_config *cfg, const kf_app_config *ac, kf_registry_config *out,
                           char *userinfo_buf, size_t userinfo_len, kf_error *err);

/* A running program's shared services. */
typedef struct kf_app {
    const char *program;
    kf_metrics *metrics;   /* always present */
    kf_http *http;         /* NULL when metrics.listen is empty */
    kf_registry *registry; /* NULL when registry.url is unset and not required */
} kf_app;

enum {
    KF_APP_NEED_REGISTRY = 1 << 0, /* registry.url must be set: KF_ERR_CONFIG otherwise */
};

/* Starts logging (level, format, program name), installs the signal handlers, creates the
 * metrics registry (with process metrics and a constant label worker=<program>) and, when
 * configured, the HTTP server and the registry client. On failure everything started is
 * stopped again and err says what failed: KF_ERR_CONFIG for bad settings (exit 2), others
 * for runtime failures (exit 1). `app` is caller storage. */
int kf_app_start(kf_app *app, const char *program, const kf_config *cfg, const kf_app_config *ac,
                 unsigned flags, kf_error *err);

/* Sets /readyz (see kf_http_set_ready); a no-op without an HTTP server. */
void kf_app_set_ready(kf_app *app, bool ready, const char *reason);

/* Stops the HTTP server, frees the registry client and metrics, and restores signal
 * dispositions. Safe on a zeroed or partly started kf_app. */
void kf_app_stop(kf_app *app);

/* Starts the program's audit emitter (kf_audit_new) from its audit.* keys (audit), the topic
 * prefix of ac, the librdkafka pairs kv (borrowed for the call) and the app's registry and
 * metrics, which must outlive the emitter; instance NULL or "": <hostname>:<pid>. *out is NULL
 * when audit.enabled is false: a NULL emitter is a no-op for every kf_audit_* call. Errors as
 * kf_audit_new (no registry is KF_ERR_CONFIG). Destroy it before kf_app_stop. */
int kf_app_audit_new(const kf_app *app, const kf_app_config *ac, const kf_audit_config *audit,
                     const kf_app_kv *kv, const char *instance, kf_audit **out, kf_error *err);

/* Maps an error code to the exit code of DESIGN.md: 0 ok, 2 configuration/usage, 1 else. */
int kf_app_exit_code(int rc);

#endif
