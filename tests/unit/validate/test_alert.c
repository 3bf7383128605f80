/* Unit tests for the validation alerts against an in-process fake webhook: the JSON body names
 * the rule ids, counts and DLQ topics; one call per interval with the rest merged; retries
 * with backoff on 5xx and on a refused connection; a bounded shutdown; no call with
 * no_actions; dataset breaches; the alert metrics. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alert.h"
#include "fake_webhook.h"
#include "kfleet/log.h"

#define DLQ "kfleet.dlq.kfleet.shop.orders"

static int setup(void **state)
{
    fake_webhook *w = fake_webhook_start(0);
    if (!w)
        return -1;
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    fake_webhook_stop(*state);
    return 0;
}

static kf_alert *alerter(const char *url, bool no_actions, int64_t interval_ms, int retries,
                         int64_t backoff_ms, kf_metrics *m)
{
    kf_alert_config cfg = {.worker = "kfleet-validate",
                           .webhook_url = url,
                           .no_actions = no_actions,
                           .interval_ms = interval_ms,
                           .max_retries = retries,
                           .timeout_ms = 2000,
                           .backoff_initial_ms = backoff_ms};
    kf_error err;
    kf_alert *a = kf_alert_new(&cfg, m, &err);
    if (!a)
        fail_msg("%s", err.message);
    return a;
}

/* The "text" field of request i's JSON body, copied into out. */
static void request_text(fake_webhook *w, size_t i, char *out, size_t cap)
{
    fake_webhook_request r;
    assert_true(fake_webhook_request_get(w, i, &r));
    assert_string_equal(r.method, "POST");
    assert_string_equal(r.content_type, "application/json");
    json_error_t jerr;
    json_t *o = json_loads(r.body, 0, &jerr);
    if (!o)
        fail_msg("webhook body is not JSON (%s): %s", jerr.text, r.body);
    const char *text = json_string_value(json_object_get(o, "text"));
    assert_non_null(text);
    snprintf(out, cap, "%s", text);
    json_decref(o);
}

static void stats(kf_alert *a, kf_alert_stats *s)
{
    kf_alert_stats_get(a, s);
}

static void test_body_names_rules_counts_and_topic(void **state)
{
    fake_webhook *w = *state;
    kf_alert *a = alerter(w->url, false, 60000, 0, 100, NULL);
    /* the first alert goes out at once; wait for it so the rest share the next call */
    kf_alert_quarantined(a, "orders.email.not_null", DLQ, 3);
    assert_true(fake_webhook_wait(w, 1, 5000));
    kf_alert_quarantined(a, "orders.email.not_null", DLQ, 2);
    kf_alert_quarantined(a, "orders.qty.range", DLQ, 1);
    kf_alert_quarantined(a, "kfleet.decode", DLQ, 4);
    kf_alert_destroy(a);
    assert_int_equal(fake_webhook_count(w), 2);
    char text[4096];
    request_text(w, 0, text, sizeof(text));
    assert_string_equal(text, "kfleet-validate: 3 records quarantined\n"
                              "- rule orders.email.not_null: 3 to " DLQ);
    request_text(w, 1, text, sizeof(text));
    assert_string_equal(text, "kfleet-validate: 7 records quarantined\n"
                              "- rule orders.email.not_null: 2 to " DLQ "\n"
                              "- rule orders.qty.range: 1 to " DLQ "\n"
                              "- rule kfleet.decode: 4 to " DLQ);
}

static void test_rate_limit_merges(void **state)
{
    fake_webhook *w = *state;
    kf_alert *a = alerter(w->url, false, 60000, 0, 100, NULL);
    kf_alert_quarantined(a, "r.first", DLQ, 1);
    assert_true(fake_webhook_wait(w, 1, 5000));
    for (int i = 0; i < 9; i++)
        kf_alert_quarantined(a, i % 2 ? "r.odd" : "r.even", DLQ, 10);
    /* within the interval nothing more is sent */
    usleep(400000);
    assert_int_equal(fake_webhook_count(w), 1);
    kf_alert_stats s;
    stats(a, &s);
    assert_int_equal(s.raised, 10);
    assert_int_equal(s.sent, 1);
    kf_alert_destroy(a); /* the merged rest goes out in one final call */
    assert_int_equal(fake_webhook_count(w), 2);
    char text[4096];
    request_text(w, 1, text, sizeof(text));
    assert_string_equal(text, "kfleet-validate: 90 records quarantined\n"
                              "- rule r.even: 50 to " DLQ "\n"
                              "- rule r.odd: 40 to " DLQ);
}

static void test_coalesced_count(void **state)
{
    fake_webhook *w = *state;
    kf_alert *a = alerter(w->url, false, 300, 0, 100, NULL);
    kf_alert_quarantined(a, "r", DLQ, 1);
    assert_true(fake_webhook_wait(w, 1, 5000));
    kf_alert_quarantined(a, "r", DLQ, 1);
    kf_alert_breach(a, "t.max_rows", "max_rows", 9, 5, 0, 0);
    kf_alert_quarantined(a, "s", DLQ, 1);
    assert_true(fake_webhook_wait(w, 2, 5000)); /* one call for the three, after the interval */
    kf_alert_stats s = {0};
    int64_t deadline = fake_webhook_now_ms() + 5000;
    do {
        usleep(10000);
        stats(a, &s);
    } while (s.sent < 2 && fake_webhook_now_ms() < deadline);
    assert_int_equal(s.raised, 4);
    assert_int_equal(s.sent, 2);
    assert_int_equal(s.coalesced, 2);
    fake_webhook_request r[2];
    memset(r, 0, sizeof(r));
    assert_true(fake_webhook_request_get(w, 0, &r[0]));
    assert_true(fake_webhook_request_get(w, 1, &r[1]));
    assert_true(r[1].at_ms - r[0].at_ms >= 290);
    kf_alert_destroy(a);
    assert_int_equal(fake_webhook_count(w), 2);
}

static void test_rate_limit_interval(void **state)
{
    fake_webhook *w = *state;
    /* alerts every 20 ms for 1.1 s with a 400 ms interval: at most 1 + 1100/400 calls */
    kf_alert *a = alerter(w->url, false, 400, 0, 100, NULL);
    int64_t start = fake_webhook_now_ms();
    int raised = 0;
    while (fake_webhook_now_ms() - start < 1100) {
        kf_alert_quarantined(a, "r", DLQ, 1);
        raised++;
        usleep(20000);
    }
    size_t during = fake_webhook_count(w);
    assert_in_range(during, 2, 4);
    kf_alert_stats s;
    stats(a, &s);
    assert_int_equal(s.raised, (uint64_t)raised);
    kf_alert_destroy(a);
    size_t calls = fake_webhook_count(w);
    assert_in_range(calls, during, during + 1);
    /* every alert was delivered, merged: the counts add up */
    long total = 0;
    for (size_t i = 0; i < calls; i++) {
        char text[1024];
        request_text(w, i, text, sizeof(text));
        total += strtol(text + strlen("kfleet-validate: "), NULL, 10);
    }
    assert_int_equal(total, raised);
}

static void test_retry_on_5xx(void **state)
{
    fake_webhook *w = *state;
    const unsigned script[] = {503, 500};
    fake_webhook_script(w, script, 2);
    kf_alert *a = alerter(w->url, false, 60000, 3, 150, NULL);
    kf_alert_quarantined(a, "orders.qty.range", DLQ, 1);
    assert_true(fake_webhook_wait(w, 3, 10000));
    usleep(100000);
    kf_alert_stats s;
    stats(a, &s);
    assert_int_equal(s.sent, 1);
    assert_int_equal(s.failed, 0);
    assert_int_equal(s.attempts, 3);
    kf_alert_destroy(a);
    assert_int_equal(fake_webhook_count(w), 3);
    fake_webhook_request r[3];
    for (size_t i = 0; i < 3; i++)
        assert_true(fake_webhook_request_get(w, i, &r[i]));
    assert_int_equal(r[0].status, 503);
    assert_int_equal(r[1].status, 500);
    assert_int_equal(r[2].status, 200);
    /* backoff: each retry waits at least the initial delay; the same body every time */
    assert_true(r[1].at_ms - r[0].at_ms >= 140);
    assert_true(r[2].at_ms - r[1].at_ms >= 140);
    assert_string_equal(r[0].body, r[2].body);
}

static void test_retry_connection_refused(void **state)
{
    fake_webhook *w = *state;
    uint16_t port = w->port;
    char url[64];
    snprintf(url, sizeof(url), "%s", w->url);
    fake_webhook_stop(w);
    *state = NULL;
    kf_alert *a = alerter(url, false, 60000, 20, 300, NULL);
    kf_alert_quarantined(a, "orders.qty.range", DLQ, 5);
    kf_alert_stats s = {0};
    int64_t deadline = fake_webhook_now_ms() + 5000;
    while (s.attempts == 0 && fake_webhook_now_ms() < deadline) {
        usleep(10000);
        stats(a, &s);
    }
    assert_true(s.attempts >= 1);
    assert_int_equal(s.sent, 0);
    /* the webhook comes back on the same port during the backoff */
    w = fake_webhook_start(port);
    assert_non_null(w);
    *state = w;
    assert_true(fake_webhook_wait(w, 1, 15000));
    deadline = fake_webhook_now_ms() + 5000;
    do {
        usleep(10000);
        stats(a, &s);
    } while (s.sent == 0 && fake_webhook_now_ms() < deadline);
    assert_int_equal(s.sent, 1);
    assert_int_equal(s.failed, 0);
    assert_true(s.attempts >= 2);
    kf_alert_destroy(a);
    assert_int_equal(fake_webhook_count(w), 1);
    char text[1024];
    request_text(w, 0, text, sizeof(text));
    assert_non_null(strstr(text, "rule orders.qty.range: 5 to " DLQ));
}

static void test_gives_up_and_counts(void **state)
{
    fake_webhook *w = *state;
    const unsigned script[] = {502, 502, 502};
    fake_webhook_script(w, script, 3);
    kf_metrics *m = kf_metrics_new(NULL);
    assert_non_null(m);
    kf_alert *a = alerter(w->url, false, 60000, 2, 50, m);
    kf_alert_quarantined(a, "r", DLQ, 1);
    assert_true(fake_webhook_wait(w, 3, 10000));
    kf_alert_stats s = {0};
    int64_t deadline = fake_webhook_now_ms() + 5000;
    do {
        usleep(10000);
        stats(a, &s);
    } while (s.failed == 0 && fake_webhook_now_ms() < deadline);
    assert_int_equal(s.failed, 1);
    assert_int_equal(s.sent, 0);
    assert_int_equal(s.attempts, 3);
    kf_alert_destroy(a);
    assert_int_equal(fake_webhook_count(w), 3);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(kf_metrics_render(m, &text, &len, NULL), KF_OK);
    assert_non_null(strstr(text, "kfleet_validate_alerts_total{kind=\"quarantine\"} 1"));
    assert_non_null(strstr(text, "kfleet_validate_webhook_calls_total{result=\"failed\"} 1"));
    assert_non_null(strstr(text, "kfleet_validate_webhook_calls_total{result=\"ok\"} 0"));
    free(text);
    kf_metrics_destroy(m);
}

static void test_shutdown_cuts_backoff(void **state)
{
    fake_webhook *w = *state;
    const unsigned script[] = {503, 503, 503, 503, 503, 503};
    fake_webhook_script(w, script, 6);
    kf_alert *a = alerter(w->url, false, 60000, 5, 5000, NULL);
    kf_alert_quarantined(a, "r", DLQ, 1);
    assert_true(fake_webhook_wait(w, 1, 5000));
    usleep(50000);
    int64_t t0 = fake_webhook_now_ms();
    kf_alert_destroy(a); /* one more attempt at once, then it gives up */
    assert_true(fake_webhook_now_ms() - t0 < 2000);
    assert_int_equal(fake_webhook_count(w), 2);
}

static void test_no_actions_sends_nothing(void **state)
{
    fake_webhook *w = *state;
    kf_metrics *m = kf_metrics_new(NULL);
    assert_non_null(m);
    kf_alert *a = alerter(w->url, true, 100, 3, 50, m);
    kf_alert_quarantined(a, "r", DLQ, 7);
    kf_alert_breach(a, "t.min_rows", "min_rows", 0, 10, 1000, 2000);
    usleep(300000);
    kf_alert_stats s;
    stats(a, &s);
    assert_int_equal(s.raised, 2);
    assert_int_equal(s.attempts, 0);
    kf_alert_destroy(a);
    assert_int_equal(fake_webhook_count(w), 0);
    /* still counted as alerts */
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(kf_metrics_render(m, &text, &len, NULL), KF_OK);
    assert_non_null(strstr(text, "kfleet_validate_alerts_total{kind=\"quarantine\"} 1"));
    assert_non_null(strstr(text, "kfleet_validate_alerts_total{kind=\"dataset\"} 1"));
    free(text);
    kf_metrics_destroy(m);
}

static void test_dataset_breach(void **state)
{
    fake_webhook *w = *state;
    kf_alert *a = alerter(w->url, false, 60000, 0, 100, NULL);
    kf_alert_breach(a, "orders.min_rows", "min_rows", 3, 10, 1700000000000, 1700000060000);
    assert_true(fake_webhook_wait(w, 1, 5000));
    kf_alert_breach(a, "orders.max_rows", "max_rows", 12, 5, 0, 0);
    kf_alert_quarantined(a, "orders.qty.range", DLQ, 2);
    kf_alert_destroy(a);
    assert_int_equal(fake_webhook_count(w), 2);
    char text[4096];
    request_text(w, 0, text, sizeof(text));
    assert_string_equal(text, "kfleet-validate: 1 dataset rule breach\n"
                              "- dataset: rule orders.min_rows (min_rows 10): 3 rows in "
                              "[1700000000000, 1700000060000) ms");
    request_text(w, 1, text, sizeof(text));
    assert_string_equal(text, "kfleet-validate: 2 records quarantined; 1 dataset rule breach\n"
                              "- rule orders.qty.range: 2 to " DLQ "\n"
                              "- dataset: rule orders.max_rows (max_rows 5): 12 rows in a batch");
}

static void test_no_webhook_logs_only(void **state)
{
    fake_webhook *w = *state;
    kf_alert *a = alerter(NULL, false, 100, 3, 50, NULL);
    kf_alert_quarantined(a, "r", DLQ, 1);
    kf_alert_quarantined(a, "r", DLQ, 0); /* nothing to say: not an alert */
    kf_alert_stats s;
    stats(a, &s);
    assert_int_equal(s.raised, 1);
    kf_alert_destroy(a);
    kf_alert_destroy(NULL);
    assert_int_equal(fake_webhook_count(w), 0);
}

int main(void)
{
    kf_log_init("test_alert", KF_LOG_ERROR, KF_LOG_LOGFMT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_body_names_rules_counts_and_topic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit_merges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coalesced_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_on_5xx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_connection_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gives_up_and_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_cuts_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_actions_sends_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dataset_breach, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_webhook_logs_only, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
