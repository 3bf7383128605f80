/* Validation alerts: quarantine counts per rule and dataset breaches are logged, counted and
 * sent as a Slack-compatible webhook by a background thread, rate-limited and retried with
 * backoff, so a slow or failing webhook never stalls the worker; a dataset breach is also an
 * audit event (action "alert"). */
#ifndef KFLEET_VALIDATE_ALERT_H
#define KFLEET_VALIDATE_ALERT_H

#include <stdbool.h>
#include <stdint.h>

#include "kfleet/audit.h"
#include "kfleet/error.h"
#include "kfleet/metrics.h"

typedef struct kf_alert kf_alert;

typedef struct kf_alert_config {
    const char *worker;         /* program name in the message */
    const char *webhook_url;    /* NULL or "": log and count only */
    bool no_actions;            /* true: never call the webhook (alerts are still logged) */
    int64_t interval_ms;        /* at most one webhook call per interval; 0 = 60000 */
    int max_retries;            /* per webhook call; negative = 0 */
    int64_t timeout_ms;         /* per HTTP attempt; 0 = 5000 */
    int64_t backoff_initial_ms; /* first retry delay; 0 = 500 */
    kf_audit *audit;            /* borrowed, may be NULL: breaches are then not audited */
} kf_alert_config;

/* Starts the sender thread. cfg strings are copied; metrics is borrowed (may be NULL) and must
 * outlive the alerter. NULL + err on failure. */
kf_alert *kf_alert_new(const kf_alert_config *cfg, kf_metrics *metrics, kf_error *err);

/* Sends what is still pending in one more call, stops the thread and frees everything. The
 * stop cuts retry backoffs short: a call in progress and the last call each get at most one
 * more HTTP attempt, at once (each attempt bounded by timeout_ms). NULL is a no-op. */
void kf_alert_destroy(kf_alert *a);

/* Records count quarantined records of rule_id (or a decode reason) sent to dlq_topic; both
 * copied. Never blocks on the network. */
void kf_alert_quarantined(kf_alert *a, const char *rule_id, const char *dlq_topic, uint64_t count);

/* Records a dataset rule breach (rows counted in [start_ms, end_ms), or 0, 0 for a batch) of
 * a rule of kind "min_rows" or "max_rows" whose limit is threshold. Besides the log line,
 * counter and webhook, it emits an audit event (with no_actions too, which only concerns the
 * webhook): action "alert", level warn, rule_id, count = rows, and details
 * {"kind", "limit", "rows", "window": "time" with "window_start_ms", "window_end_ms" | "batch"}.
 * Never blocks on the network. */
void kf_alert_breach(kf_alert *a, const char *rule_id, const char *kind, int64_t rows,
                     int64_t threshold, int64_t start_ms, int64_t end_ms);

/* Counters for tests and the exit summary. */
typedef struct kf_alert_stats {
    uint64_t raised;    /* alerts raised (kf_alert_quarantined and kf_alert_breach calls) */
    uint64_t sent;      /* webhook calls that succeeded */
    uint64_t failed;    /* webhook calls that failed after every retry */
    uint64_t attempts;  /* HTTP attempts, retries included */
    uint64_t coalesced; /* alerts delivered inside a call that carried an earlier alert */
} kf_alert_stats;
void kf_alert_stats_get(kf_alert *a, kf_alert_stats *out);

#endif
