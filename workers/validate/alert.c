/* The alert sender: aggregates quarantine counts and dataset breaches under a lock, and a
 * thread turns them into at most one Slack-compatible webhook call per interval. */
#include "alert.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "kfleet/log.h"
#include "kfleet/retry.h"
#include "kfleet/thread.h"

#define MAX_ENTRIES  128
#define MAX_BREACHES 32

typedef struct entry {
    char rule[256];
    char topic[256];
    uint64_t count;
} entry;

typedef struct pending {
    entry entries[MAX_ENTRIES];
    size_t nentries;
    uint64_t overflow; /* records of rules beyond MAX_ENTRIES */
    char breaches[MAX_BREACHES][256];
    size_t nbreaches;
    uint64_t breaches_overflow;
    uint64_t nalerts; /* alerts merged into this message */
} pending;

struct kf_alert {
    char *worker;
    char *url;
    bool no_actions;
    int64_t interval_ms;
    int max_retries;
    int64_t timeout_ms;
    int64_t backoff_ms;
    kf_audit *audit;

    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    pending *cur; /* guarded by lock */
    pending *spare;
    int64_t last_sent_ms;
    kf_alert_stats stats; /* guarded by lock */

    kf_counter_series *m_raised_rule, *m_raised_dataset, *m_sent, *m_failed;
};

static int64_t mono_ms(void)
{
    return kf_retry_now_ms();
}

static bool pending_empty(const pending *p)
{
    return p->nentries == 0 && p->nbreaches == 0 && !p->overflow && !p->breaches_overflow;
}

static size_t discard(char *ptr, size_t size, size_t n, void *ctx)
{
    (void)ptr;
    (void)ctx;
    return size * n;
}

/* One POST; true on a 2xx answer. */
static bool post_once(kf_alert *a, const char *body, char *why, size_t cap)
{
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(why, cap, "could not create an HTTP handle");
        return false;
    }
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, a->url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)a->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK) {
        snprintf(why, cap, "%s", curl_easy_strerror(rc));
        return false;
    }
    if (status < 200 || status > 299) {
        snprintf(why, cap, "HTTP status %ld", status);
        return false;
    }
    return true;
}

/* Appends to text (capacity cap, length *len), never past the end. */
__attribute__((format(printf, 4, 5))) static void append(char *text, size_t cap, size_t *len,
                                                         const char *fmt, ...)
{
    if (*len + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len = *len + (size_t)n < cap ? *len + (size_t)n : cap - 1;
}

/* The Slack-compatible payload: {"text": "..."} naming rules, counts and DLQ topics. */
static char *build_body(kf_alert *a, const pending *p)
{
    size_t cap = 512 + p->nentries * 600 + p->nbreaches * 300;
    char *text = malloc(cap);
    if (!text)
        return NULL;
    size_t len = 0;
    text[0] = '\0';
    uint64_t total = p->overflow;
    for (size_t i = 0; i < p->nentries; i++)
        total += p->entries[i].count;
    uint64_t nbreaches = p->nbreaches + p->breaches_overflow;
    append(text, cap, &len, "%s:", a->worker);
    if (p->nentries || p->overflow)
        append(text, cap, &len, " %" PRIu64 " record%s quarantined", total, total == 1 ? "" : "s");
    if (nbreaches)
        append(text, cap, &len, "%s %" PRIu64 " dataset rule breach%s",
               p->nentries || p->overflow ? ";" : "", nbreaches, nbreaches == 1 ? "" : "es");
    for (size_t i = 0; i < p->nentries; i++)
        append(text, cap, &len, "\n- rule %s: %" PRIu64 " to %s", p->entries[i].rule,
               p->entries[i].count, p->entries[i].topic);
    if (p->overflow)
        append(text, cap, &len, "\n- other rules: %" PRIu64, p->overflow);
    for (size_t i = 0; i < p->nbreaches; i++)
        append(text, cap, &len, "\n- dataset: %s", p->breaches[i]);
    if (p->breaches_overflow)
        append(text, cap, &len, "\n- %" PRIu64 " more dataset breaches", p->breaches_overflow);
    json_t *o = json_pack("{s:s}", "text", text);
    free(text);
    if (!o)
        return NULL;
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return body;
}

/* Called with the lock held: waits up to ms on the condition variable unless a stop is
 * requested; true when a stop is pending. */
static bool wait_unless_stopping(kf_alert *a, int64_t ms)
{
    int64_t deadline = mono_ms() + ms;
    while (!a->stop) {
        int64_t left = deadline - mono_ms();
        if (left <= 0 || kf_thread_wait_ms(&a->cond, &a->lock, left) != 0)
            break;
    }
    return a->stop;
}

/* Sends p with retries and backoff. A stop request cuts the backoff short: the call is tried
 * once more at once and not again, so shutting down waits for at most two attempts. */
static void send_pending(kf_alert *a, const pending *p)
{
    char *body = build_body(a, p);
    if (!body) {
        kf_log(KF_LOG_ERROR, "could not build alert message: out of memory", (char *)NULL);
        return;
    }
    kf_backoff bo;
    kf_backoff_init(&bo, (uint64_t)a->backoff_ms, (uint64_t)a->backoff_ms * 32, 2.0,
                    KF_JITTER_DECORRELATED, kf_retry_seed(), NULL);
    char why[256] = "";
    bool ok = false, last = false;
    for (int attempt = 0;; attempt++) {
        ok = post_once(a, body, why, sizeof(why));
        pthread_mutex_lock(&a->lock);
        a->stats.attempts++;
        pthread_mutex_unlock(&a->lock);
        if (ok || last || attempt >= a->max_retries)
            break;
        uint64_t delay = kf_backoff_next_ms(&bo);
        char d[24];
        snprintf(d, sizeof(d), "%" PRIu64, delay);
        kf_log(KF_LOG_WARN, "could not send alert webhook, retrying", "reason", why, "delay_ms", d,
               (char *)NULL);
        pthread_mutex_lock(&a->lock);
        last = wait_unless_stopping(a, (int64_t)delay);
        pthread_mutex_unlock(&a->lock);
    }
    free(body);
    pthread_mutex_lock(&a->lock);
    if (ok) {
        a->stats.sent++;
        a->stats.coalesced += p->nalerts > 1 ? p->nalerts - 1 : 0;
    } else {
        a->stats.failed++;
    }
    pthread_mutex_unlock(&a->lock);
    if (ok) {
        if (a->m_sent)
            kf_counter_inc(a->m_sent, 1);
    } else {
        if (a->m_failed)
            kf_counter_inc(a->m_failed, 1);
        char n[24];
        snprintf(n, sizeof(n), "%" PRIu64, p->nalerts);
        kf_log(KF_LOG_ERROR, "could not send alert webhook", "reason", why, "alerts", n,
               (char *)NULL);
    }
}

static void *sender(void *arg)
{
    kf_alert *a = arg;
    pthread_mutex_lock(&a->lock);
    for (;;) {
        int64_t now = mono_ms();
        bool due = !pending_empty(a->cur) &&
                   (a->last_sent_ms == 0 || now - a->last_sent_ms >= a->interval_ms);
        if (due || (a->stop && !pending_empty(a->cur))) {
            pending *p = a->cur;
            a->cur = a->spare;
            a->spare = p;
            a->last_sent_ms = now ? now : 1;
            pthread_mutex_unlock(&a->lock);
            send_pending(a, p);
            memset(p, 0, sizeof(*p));
            pthread_mutex_lock(&a->lock);
            continue;
        }
        if (a->stop)
            break;
        int64_t wait = pending_empty(a->cur) ? 1000 : a->interval_ms - (now - a->last_sent_ms);
        if (wait < 10)
            wait = 10;
        if (wait > 1000)
            wait = 1000;
        kf_thread_wait_ms(&a->cond, &a->lock, wait);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

kf_alert *kf_alert_new(const kf_alert_config *cfg, kf_metrics *metrics, kf_error *err)
{
    kf_alert *a = calloc(1, sizeof(*a));
    if (!a)
        goto out_nomem;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    a->worker = strdup(cfg->worker ? cfg->worker : "kfleet-validate");
    a->cur = calloc(1, sizeof(*a->cur));
    a->spare = calloc(1, sizeof(*a->spare));
    if (!a->worker || !a->cur || !a->spare)
        goto out_free_alert;
    if (cfg->webhook_url && cfg->webhook_url[0] && !(a->url = strdup(cfg->webhook_url)))
        goto out_free_alert;
    a->no_actions = cfg->no_actions;
    a->interval_ms = cfg->interval_ms > 0 ? cfg->interval_ms : 60000;
    a->max_retries = cfg->max_retries > 0 ? cfg->max_retries : 0;
    a->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 5000;
    a->backoff_ms = cfg->backoff_initial_ms > 0 ? cfg->backoff_initial_ms : 500;
    a->audit = cfg->audit;
    if (metrics) {
        kf_counter *raised = kf_metrics_counter(metrics, "kfleet_validate_alerts_total",
                                                "Validation alerts raised, by kind.", 1,
                                                (const char *[]){"kind"}, err);
        kf_counter *calls = kf_metrics_counter(metrics, "kfleet_validate_webhook_calls_total",
                                               "Alert webhook calls, by result.", 1,
                                               (const char *[]){"result"}, err);
        if (!raised || !calls)
            goto out_free_alert_err;
        a->m_raised_rule = kf_counter_child(raised, 1, (const char *[]){"quarantine"}, err);
        a->m_raised_dataset = kf_counter_child(raised, 1, (const char *[]){"dataset"}, err);
        a->m_sent = kf_counter_child(calls, 1, (const char *[]){"ok"}, err);
        a->m_failed = kf_counter_child(calls, 1, (const char *[]){"failed"}, err);
        if (!a->m_raised_rule || !a->m_raised_dataset || !a->m_sent || !a->m_failed)
            goto out_free_alert_err;
    }
    if (a->url && !a->no_actions) {
        if (pthread_create(&a->thread, NULL, sender, a) != 0) {
            kf_error_set(err, KF_ERR_FATAL, false, "could not start the alert thread");
            goto out_free_alert_err;
        }
        a->started = true;
    }
    return a;

out_free_alert:
    kf_alert_destroy(a);
out_nomem:
    kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate the alerter");
    return NULL;
out_free_alert_err:
    kf_alert_destroy(a);
    return NULL;
}

void kf_alert_destroy(kf_alert *a)
{
    if (!a)
        return;
    if (a->started)
        kf_thread_stop(a->thread, &a->lock, &a->cond, &a->stop);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cond);
    free(a->worker);
    free(a->url);
    free(a->cur);
    free(a->spare);
    free(a);
}

void kf_alert_quarantined(kf_alert *a, const char *rule_id, const char *dlq_topic, uint64_t count)
{
    if (!a || count == 0)
        return;
    char n[24];
    snprintf(n, sizeof(n), "%" PRIu64, count);
    kf_log(KF_LOG_WARN, "records quarantined", "rule", rule_id, "dlq", dlq_topic, "count", n,
           (char *)NULL);
    if (a->m_raised_rule)
        kf_counter_inc(a->m_raised_rule, 1);
    pthread_mutex_lock(&a->lock);
    a->stats.raised++;
    pending *p = a->cur;
    p->nalerts++;
    size_t i = 0;
    while (i < p->nentries && !(strcmp(p->entries[i].rule, rule_id) == 0 &&
                                strcmp(p->entries[i].topic, dlq_topic) == 0))
        i++;
    if (i < p->nentries) {
        p->entries[i].count += count;
    } else if (p->nentries < MAX_ENTRIES) {
        entry *e = &p->entries[p->nentries++];
        snprintf(e->rule, sizeof(e->rule), "%s", rule_id);
        snprintf(e->topic, sizeof(e->topic), "%s", dlq_topic);
        e->count = count;
    } else {
        p->overflow += count;
    }
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

/* The audit event of a breach; line is the human-readable form. */
static void audit_breach(kf_alert *a, const char *rule_id, const char *kind, int64_t rows,
                         int64_t threshold, int64_t start_ms, int64_t end_ms, const char *line)
{
    if (!a->audit)
        return;
    json_t *d = json_pack("{s:s, s:I, s:I}", "kind", kind, "limit", (json_int_t)threshold, "rows",
                          (json_int_t)rows);
    if (d && (start_ms || end_ms)) {
        json_object_set_new(d, "window", json_string("time"));
        json_object_set_new(d, "window_start_ms", json_integer(start_ms));
        json_object_set_new(d, "window_end_ms", json_integer(end_ms));
    } else if (d) {
        json_object_set_new(d, "window", json_string("batch"));
    }
    char *details = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(d);
    char message[300];
    snprintf(message, sizeof(message), "dataset rule breached: %s", line);
    kf_audit_event ev = {.action = "alert",
                         .level = KF_AUDIT_WARN,
                         .message = message,
                         .rule_id = rule_id,
                         .has_count = true,
                         .count = rows,
                         .details = details};
    kf_audit_emit(a->audit, &ev);
    free(details);
}

void kf_alert_breach(kf_alert *a, const char *rule_id, const char *kind, int64_t rows,
                     int64_t threshold, int64_t start_ms, int64_t end_ms)
{
    if (!a)
        return;
    char line[256];
    if (start_ms || end_ms)
        snprintf(line, sizeof(line),
                 "rule %s (%s %" PRId64 "): %" PRId64 " rows in [%" PRId64 ", %" PRId64 ") ms",
                 rule_id, kind, threshold, rows, start_ms, end_ms);
    else
        snprintf(line, sizeof(line), "rule %s (%s %" PRId64 "): %" PRId64 " rows in a batch",
                 rule_id, kind, threshold, rows);
    kf_log(KF_LOG_WARN, "dataset rule breached", "detail", line, (char *)NULL);
    audit_breach(a, rule_id, kind, rows, threshold, start_ms, end_ms, line);
    if (a->m_raised_dataset)
        kf_counter_inc(a->m_raised_dataset, 1);
    pthread_mutex_lock(&a->lock);
    a->stats.raised++;
    pending *p = a->cur;
    p->nalerts++;
    if (p->nbreaches < MAX_BREACHES)
        snprintf(p->breaches[p->nbreaches++], sizeof(p->breaches[0]), "%s", line);
    else
        p->breaches_overflow++;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

void kf_alert_stats_get(kf_alert *a, kf_alert_stats *out)
{
    pthread_mutex_lock(&a->lock);
    *out = a->stats;
    pthread_mutex_unlock(&a->lock);
}
