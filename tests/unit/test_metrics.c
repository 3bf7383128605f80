/* Unit tests for the metric registry: exact exposition output, name validation, lock-free
 * recording from several threads, process metrics, and promtool acceptance of the output. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kfleet/metrics.h"

#define LABELS(...) ((const char *const[]){__VA_ARGS__})

static char *render(kf_metrics *m)
{
    char *out = NULL;
    size_t len = 0;
    kf_error err;
    assert_int_equal(kf_metrics_render(m, &out, &len, &err), KF_OK);
    assert_non_null(out);
    assert_int_equal(strlen(out), len);
    return out;
}

typedef struct lag_source {
    double lag;
    bool assigned;
} lag_source;

static bool lag_value(void *ctx, double *out)
{
    const lag_source *s = ctx;
    if (!s->assigned)
        return false;
    *out = s->lag;
    return true;
}

/* ---- golden output --------------------------------------------------------------------- */

static void golden_exposition(void **state)
{
    kf_error err;
    kf_metrics *m = kf_metrics_new(&err);
    assert_non_null(m);

    kf_counter *in = kf_metrics_counter(m, "kfleet_records_in_total", "Records consumed.", 2,
                                        LABELS("topic", "worker"), &err);
    assert_non_null(in);
    kf_counter_series *orders = kf_counter_child(in, 2, LABELS("orders", "validate"), &err);
    kf_counter_series *weird =
        kf_counter_child(in, 2, LABELS("we\"ird\\path\nx", "validate"), &err);
    assert_non_null(orders);
    assert_non_null(weird);
    /* The same values resolve to the same handle. */
    assert_ptr_equal(kf_counter_child(in, 2, LABELS("orders", "validate"), &err), orders);
    kf_counter_inc(orders, 5);
    kf_counter_inc(orders, 2);
    kf_counter_inc(weird, 1);
    assert_int_equal(kf_counter_value(orders), 7);

    kf_gauge *lag = kf_metrics_gauge(m, "kfleet_consumer_lag",
                                     "Messages behind the high watermark.\nPer \\ partition.", 2,
                                     LABELS("topic", "partition"), &err);
    assert_non_null(lag);
    kf_gauge_series *p0 = kf_gauge_child(lag, 2, LABELS("orders", "0"), &err);
    assert_non_null(p0);
    kf_gauge_set(p0, 12.5);
    lag_source p1 = {.lag = 42, .assigned = true};
    lag_source p2 = {.lag = 7, .assigned = false};
    assert_int_equal(kf_gauge_child_func(lag, 2, LABELS("orders", "1"), lag_value, &p1, &err),
                     KF_OK);
    assert_int_equal(kf_gauge_child_func(lag, 2, LABELS("orders", "2"), lag_value, &p2, &err),
                     KF_OK);

    const double bounds[] = {0.1, 0.5, 1};
    kf_histogram *dur =
        kf_metrics_histogram(m, "kfleet_batch_duration_seconds", "Time to process one batch.", 1,
                             LABELS("stage"), bounds, 3, &err);
    assert_non_null(dur);
    kf_histogram_series *commit = kf_histogram_child(dur, 1, LABELS("commit"), &err);
    assert_non_null(commit);
    kf_histogram_observe(commit, 0.0625);
    kf_histogram_observe(commit, 0.25);
    kf_histogram_observe(commit, 0.5); /* on a bound: counts in le="0.5" */
    kf_histogram_observe(commit, 3);
    assert_int_equal(kf_histogram_count(commit), 4);
    assert_true(kf_histogram_sum(commit) == 3.8125);

    kf_gauge *up =
        kf_metrics_gauge(m, "kfleet_ready", "Whether the worker is ready.", 0, NULL, &err);
    assert_non_null(up);
    kf_gauge_series *up1 = kf_gauge_child(up, 0, NULL, &err);
    assert_non_null(up1);
    kf_gauge_set(up1, 1);
    kf_gauge_add(up1, -0.75);

    /* A label-less counter shows 0 before any increment; a labelled family with no series
     * shows nothing at all. */
    assert_non_null(kf_metrics_counter(m, "kfleet_restarts_total", "Restarts.", 0, NULL, &err));
    assert_non_null(kf_metrics_counter(m, "kfleet_dlq_records_total", "Records sent to a DLQ.", 1,
                                       LABELS("rule"), &err));

    const char *want =
        "# HELP kfleet_records_in_total Records consumed.\n"
        "# TYPE kfleet_records_in_total counter\n"
        "kfleet_records_in_total{topic=\"orders\",worker=\"validate\"} 7\n"
        "kfleet_records_in_total{topic=\"we\\\"ird\\\\path\\nx\",worker=\"validate\"} 1\n"
        "# HELP kfleet_consumer_lag Messages behind the high watermark.\\nPer \\\\ partition.\n"
        "# TYPE kfleet_consumer_lag gauge\n"
        "kfleet_consumer_lag{topic=\"orders\",partition=\"0\"} 12.5\n"
        "kfleet_consumer_lag{topic=\"orders\",partition=\"1\"} 42\n"
        "# HELP kfleet_batch_duration_seconds Time to process one batch.\n"
        "# TYPE kfleet_batch_duration_seconds histogram\n"
        "kfleet_batch_duration_seconds_bucket{stage=\"commit\",le=\"0.1\"} 1\n"
        "kfleet_batch_duration_seconds_bucket{stage=\"commit\",le=\"0.5\"} 3\n"
        "kfleet_batch_duration_seconds_bucket{stage=\"commit\",le=\"1\"} 3\n"
        "kfleet_batch_duration_seconds_bucket{stage=\"commit\",le=\"+Inf\"} 4\n"
        "kfleet_batch_duration_seconds_sum{stage=\"commit\"} 3.8125\n"
        "kfleet_batch_duration_seconds_count{stage=\"commit\"} 4\n"
        "# HELP kfleet_ready Whether the worker is ready.\n"
        "# TYPE kfleet_ready gauge\n"
        "kfleet_ready 0.25\n"
        "# HELP kfleet_restarts_total Restarts.\n"
        "# TYPE kfleet_restarts_total counter\n"
        "kfleet_restarts_total 0\n";
    char *got = render(m);
    assert_string_equal(got, want);
    free(got);

    /* The callback is read at each scrape: a newly assigned partition appears. */
    p2.assigned = true;
    p1.lag = 40;
    got = render(m);
    assert_non_null(strstr(got, "kfleet_consumer_lag{topic=\"orders\",partition=\"1\"} 40\n"
                                "kfleet_consumer_lag{topic=\"orders\",partition=\"2\"} 7\n"));
    free(got);
    kf_metrics_destroy(m);
    kf_metrics_destroy(NULL);
}

static void golden_const_labels_and_unlabelled_histogram(void **state)
{
    kf_error err;
    kf_metrics *m = kf_metrics_new(&err);
    assert_non_null(m);
    assert_int_equal(kf_metrics_const_label(m, "worker", "sink-pg", &err), KF_OK);
    assert_int_equal(kf_metrics_const_label(m, "worker", "x", &err), KF_ERR_INVALID);
    assert_string_equal(err.message, "duplicate const label \"worker\"");

    double bounds[3];
    assert_int_equal(kf_metrics_buckets_exponential(0.001, 10, 3, bounds, &err), KF_OK);
    kf_histogram *h = kf_metrics_histogram(m, "kfleet_commit_latency_seconds",
                                           "Source to commit latency.", 0, NULL, bounds, 3, &err);
    assert_non_null(h);
    kf_histogram_series *s = kf_histogram_child(h, 0, NULL, &err);
    kf_histogram_observe(s, 0.5);
    kf_histogram_observe(s, INFINITY);
    kf_counter *c =
        kf_metrics_counter(m, "kfleet_rows_total", "Rows written.", 1, LABELS("table"), &err);
    kf_counter_inc(kf_counter_child(c, 1, LABELS("public.orders"), &err), 3);

    /* Const labels are refused once a family exists, and may not be reused as label names. */
    assert_int_equal(kf_metrics_const_label(m, "zone", "a", &err), KF_ERR_STATE);
    assert_null(kf_metrics_gauge(m, "kfleet_g", "g.", 1, LABELS("worker"), &err));
    assert_string_equal(err.message, "metric \"kfleet_g\": label \"worker\" is already a const "
                                     "label");

    const char *want = "# HELP kfleet_commit_latency_seconds Source to commit latency.\n"
                       "# TYPE kfleet_commit_latency_seconds histogram\n"
                       "kfleet_commit_latency_seconds_bucket{worker=\"sink-pg\",le=\"0.001\"} 0\n"
                       "kfleet_commit_latency_seconds_bucket{worker=\"sink-pg\",le=\"0.01\"} 0\n"
                       "kfleet_commit_latency_seconds_bucket{worker=\"sink-pg\",le=\"0.1\"} 0\n"
                       "kfleet_commit_latency_seconds_bucket{worker=\"sink-pg\",le=\"+Inf\"} 2\n"
                       "kfleet_commit_latency_seconds_sum{worker=\"sink-pg\"} +Inf\n"
                       "kfleet_commit_latency_seconds_count{worker=\"sink-pg\"} 2\n"
                       "# HELP kfleet_rows_total Rows written.\n"
                       "# TYPE kfleet_rows_total counter\n"
                       "kfleet_rows_total{worker=\"sink-pg\",table=\"public.orders\"} 3\n";
    char *got = render(m);
    assert_string_equal(got, want);
    free(got);
    kf_metrics_destroy(m);
}

static void default_buckets_and_float_formatting(void **state)
{
    kf_error err;
    kf_metrics *m = kf_metrics_new(&err);
    kf_histogram *h =
        kf_metrics_histogram(m, "kfleet_poll_seconds", "Poll time.", 0, NULL, NULL, 0, &err);
    assert_non_null(h);
    kf_gauge *g = kf_metrics_gauge(m, "kfleet_value", "Value.", 1, LABELS("k"), &err);
    kf_gauge_set(kf_gauge_child(g, 1, LABELS("third"), &err), 1.0 / 3.0);
    kf_gauge_set(kf_gauge_child(g, 1, LABELS("big"), &err), 1e300);
    kf_gauge_set(kf_gauge_child(g, 1, LABELS("neg"), &err), -2.5e-7);
    kf_gauge_set(kf_gauge_child(g, 1, LABELS("nan"), &err), NAN);
    kf_gauge_set(kf_gauge_child(g, 1, LABELS("ninf"), &err), -INFINITY);
    kf_gauge_set(kf_gauge_child(g, 1, LABELS("int"), &err), 1234567890123.0);
    char *got = render(m);
    const char *buckets[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                             "0.5",   "1",    "2.5",   "5",    "10",  "+Inf"};
    for (size_t i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++) {
        char line[128];
        snprintf(line, sizeof(line), "kfleet_poll_seconds_bucket{le=\"%s\"} 0\n", buckets[i]);
        assert_non_null(strstr(got, line));
    }
    assert_non_null(strstr(got, "kfleet_value{k=\"third\"} 0.3333333333333333\n"));
    assert_non_null(strstr(got, "kfleet_value{k=\"big\"} 1e+300\n"));
    assert_non_null(strstr(got, "kfleet_value{k=\"neg\"} -2.5e-07\n"));
    assert_non_null(strstr(got, "kfleet_value{k=\"nan\"} NaN\n"));
    assert_non_null(strstr(got, "kfleet_value{k=\"ninf\"} -Inf\n"));
    assert_non_null(strstr(got, "kfleet_value{k=\"int\"} 1234567890123\n"));
    free(got);
    kf_metrics_destroy(m);
}

/* ---- validation ------------------------------------------------------------------------ */

static void expect_refused(kf_metrics *m, const char *name, const char *help, size_t n,
                           const char *const *labels, const char *message)
{
    kf_error err;
    kf_error_clear(&err);
    assert_null(kf_metrics_gauge(m, name, help, n, labels, &err));
    assert_int_equal(err.code, KF_ERR_INVALID);
    assert_string_equal(err.message, message);
}

static void names_are_validated(void **state)
{
    kf_error err;
    kf_metrics *m = kf_metrics_new(&err);
    expect_refused(m, "records", "h", 0, NULL,
                   "invalid metric name \"records\": must start with \"kfleet_\"");
    expect_refused(m, "kfleet_Bad", "h", 0, NULL,
                   "invalid metric name \"kfleet_Bad\": use lowercase letters, digits and "
                   "underscores");
    expect_refused(m, "kfleet_a:b", "h", 0, NULL,
                   "invalid metric name \"kfleet_a:b\": use lowercase letters, digits and "
                   "underscores");
    expect_refused(m, "9kfleet", "h", 0, NULL,
                   "invalid metric name \"9kfleet\": use lowercase letters, digits and "
                   "underscores");
    expect_refused(m, "", "h", 0, NULL,
                   "invalid metric name \"\": use lowercase letters, digits and underscores");
    expect_refused(m, NULL, "h", 0, NULL,
                   "invalid metric name \"(null)\": use lowercase letters, digits and "
                   "underscores");
    expect_refused(m, "kfleet_x", "", 0, NULL, "metric \"kfleet_x\" needs a help text in UTF-8");
    expect_refused(m, "kfleet_x", "\xff", 0, NULL,
                   "metric \"kfleet_x\" needs a help text in UTF-8");
    expect_refused(m, "kfleet_x_total", "h", 0, NULL,
                   "invalid gauge name \"kfleet_x_total\": only counters end with \"_total\"");
    expect_refused(m, "kfleet_x", "h", 1, LABELS("Topic"),
                   "metric \"kfleet_x\": invalid label name \"Topic\": use lowercase letters, "
                   "digits and underscores and do not start with \"__\"");
    expect_refused(m, "kfleet_x", "h", 1, LABELS("__name"),
                   "metric \"kfleet_x\": invalid label name \"__name\": use lowercase letters, "
                   "digits and underscores and do not start with \"__\"");
    expect_refused(m, "kfleet_x", "h", 2, LABELS("topic", "topic"),
                   "metric \"kfleet_x\": duplicate label name \"topic\"");
    expect_refused(m, "kfleet_x", "h", 1, NULL, "metric \"kfleet_x\": label names are NULL");

    assert_null(kf_metrics_counter(m, "kfleet_records", "h", 0, NULL, &err));
    assert_string_equal(err.message, "invalid counter name \"kfleet_records\": must end with "
                                     "\"_total\"");
    assert_null(kf_metrics_histogram(m, "kfleet_h", "h", 1, LABELS("le"), NULL, 0, &err));
    assert_string_equal(err.message, "histogram \"kfleet_h\" cannot use the reserved label \"le\"");
    assert_null(kf_metrics_histogram(m, "kfleet_h", "h", 0, NULL, (const double[]){1, 1}, 2, &err));
    assert_string_equal(err.message,
                        "histogram \"kfleet_h\": bucket bounds must increase strictly");
    assert_null(
        kf_metrics_histogram(m, "kfleet_h", "h", 0, NULL, (const double[]){1, INFINITY}, 2, &err));
    assert_string_equal(err.message, "histogram \"kfleet_h\": bucket bound 1 is not finite");
    double out[4];
    assert_int_equal(kf_metrics_buckets_exponential(0, 2, 4, out, &err), KF_ERR_INVALID);
    assert_int_equal(kf_metrics_buckets_exponential(1, 1, 4, out, &err), KF_ERR_INVALID);

    /* Clashes: exact duplicates and a histogram's derived series names, both ways round. */
    assert_non_null(kf_metrics_histogram(m, "kfleet_lat_seconds", "h", 0, NULL, NULL, 0, &err));
    expect_refused(m, "kfleet_lat_seconds", "h", 0, NULL,
                   "metric \"kfleet_lat_seconds\" clashes with registered metric "
                   "\"kfleet_lat_seconds\"");
    expect_refused(m, "kfleet_lat_seconds_count", "h", 0, NULL,
                   "metric \"kfleet_lat_seconds_count\" clashes with registered metric "
                   "\"kfleet_lat_seconds\"");
    assert_non_null(kf_metrics_gauge(m, "kfleet_size_sum", "h", 0, NULL, &err));
    assert_null(kf_metrics_histogram(m, "kfleet_size", "h", 0, NULL, NULL, 0, &err));
    assert_string_equal(err.message, "metric \"kfleet_size\" clashes with registered metric "
                                     "\"kfleet_size_sum\"");

    /* Child label values: count, NULL and UTF-8 are checked. */
    kf_counter *c =
        kf_metrics_counter(m, "kfleet_ok_total", "h", 2, LABELS("topic", "table"), &err);
    assert_non_null(c);
    assert_null(kf_counter_child(c, 1, LABELS("a"), &err));
    assert_string_equal(err.message, "metric \"kfleet_ok_total\" has 2 labels, got 1 values");
    assert_null(kf_counter_child(c, 2, LABELS("a", NULL), &err));
    assert_string_equal(err.message,
                        "metric \"kfleet_ok_total\": value of label \"table\" is NULL");
    assert_null(kf_counter_child(c, 2, LABELS("a", "\xc3\x28"), &err));
    assert_string_equal(err.message,
                        "metric \"kfleet_ok_total\": value of label \"table\" is not valid UTF-8");
    assert_non_null(kf_counter_child(c, 2, LABELS("a", "caf\xc3\xa9 \xf0\x9f\x98\x80"), &err));

    /* Callback series: no duplicates with recorded ones, no callbacks on unlabelled families. */
    assert_int_equal(kf_counter_child_func(c, 2, LABELS("a", "caf\xc3\xa9 \xf0\x9f\x98\x80"),
                                           lag_value, NULL, &err),
                     KF_ERR_INVALID);
    lag_source src = {.lag = 1, .assigned = true};
    assert_int_equal(kf_counter_child_func(c, 2, LABELS("b", "t"), lag_value, &src, &err), KF_OK);
    assert_null(kf_counter_child(c, 2, LABELS("b", "t"), &err));
    assert_string_equal(err.message,
                        "metric \"kfleet_ok_total\": these label values name a callback series");
    kf_counter *plain = kf_metrics_counter(m, "kfleet_plain_total", "h", 0, NULL, &err);
    assert_int_equal(kf_counter_child_func(plain, 0, NULL, lag_value, &src, &err), KF_ERR_INVALID);
    assert_int_equal(kf_counter_child_func(c, 2, LABELS("c", "t"), NULL, NULL, &err),
                     KF_ERR_INVALID);

    assert_int_equal(kf_metrics_const_label(m, "le", "x", &err), KF_ERR_INVALID);
    kf_metrics_destroy(m);
}

/* ---- concurrency ----------------------------------------------------------------------- */

enum { THREADS = 4, ROUNDS = 200000 };

typedef struct shared_series {
    kf_counter_series *counter;
    kf_gauge_series *gauge;
    kf_histogram_series *histogram;
} shared_series;

static void *hammer(void *arg)
{
    shared_series *s = arg;
    for (int i = 0; i < ROUNDS; i++) {
        kf_counter_inc(s->counter, 1);
        kf_gauge_add(s->gauge, 1.0);
        kf_histogram_observe(s->histogram, (i % 2) ? 0.5 : 2.0);
    }
    return NULL;
}

typedef struct creator_arg {
    kf_counter *family;
    kf_counter_series *got;
} creator_arg;

static void *create_child(void *arg)
{
    creator_arg *a = arg;
    kf_error err;
    a->got = kf_counter_child(a->family, 1, LABELS("same"), &err);
    kf_counter_inc(a->got, 1);
    return NULL;
}

static void concurrent_recording_is_exact(void **state)
{
    kf_error err;
    kf_metrics *m = kf_metrics_new(&err);
    kf_counter *c = kf_metrics_counter(m, "kfleet_hits_total", "h", 1, LABELS("k"), &err);
    kf_gauge *g = kf_metrics_gauge(m, "kfleet_level", "h", 1, LABELS("k"), &err);
    kf_histogram *h = kf_metrics_histogram(m, "kfleet_size_bytes", "h", 1, LABELS("k"),
                                           (const double[]){1}, 1, &err);
    shared_series s = {
        .counter = kf_counter_child(c, 1, LABELS("x"), &err),
        .gauge = kf_gauge_child(g, 1, LABELS("x"), &err),
        .histogram = kf_histogram_child(h, 1, LABELS("x"), &err),
    };
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &s), 0);
    /* Scraping while recording must be safe and see monotonic counters. */
    uint64_t last = 0;
    for (int i = 0; i < 20; i++) {
        char *out = render(m);
        const char *p = strstr(out, "kfleet_hits_total{k=\"x\"} ");
        assert_non_null(p);
        uint64_t now = strtoull(p + strlen("kfleet_hits_total{k=\"x\"} "), NULL, 10);
        assert_true(now >= last);
        last = now;
        free(out);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(kf_counter_value(s.counter), (uint64_t)THREADS * ROUNDS);
    assert_true(kf_gauge_value(s.gauge) == (double)THREADS * ROUNDS);
    assert_int_equal(kf_histogram_count(s.histogram), (uint64_t)THREADS * ROUNDS);
    assert_true(kf_histogram_sum(s.histogram) == (double)THREADS * ROUNDS / 2 * 2.5);
    char *out = render(m);
    char line[128];
    snprintf(line, sizeof(line), "kfleet_size_bytes_bucket{k=\"x\",le=\"1\"} %d\n",
             THREADS * ROUNDS / 2);
    assert_non_null(strstr(out, line));
    free(out);

    /* Several threads resolving the same new child get one series. */
    creator_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i].family = c;
        assert_int_equal(pthread_create(&t[i], NULL, create_child, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    for (int i = 1; i < THREADS; i++)
        assert_ptr_equal(args[i].got, args[0].got);
    assert_int_equal(kf_counter_value(args[0].got), THREADS);
    kf_metrics_destroy(m);
}

/* ---- process collector ----------------------------------------------------------------- */

static double sample_value(const char *text, const char *name)
{
    char needle[128];
    snprintf(needle, sizeof(needle), "\n%s ", name);
    const char *p = strstr(text, needle);
    assert_non_null(p);
    return strtod(p + strlen(needle), NULL);
}

static void process_metrics_are_plausible(void **state)
{
    kf_error err;
    kf_metrics *m = kf_metrics_new(&err);
    assert_int_equal(kf_metrics_register_process(m, &err), KF_OK);
    assert_int_equal(kf_metrics_register_process(m, &err), KF_ERR_INVALID);
    char *out = render(m);
    assert_non_null(strstr(out, "# TYPE process_cpu_seconds_total counter\n"));
    assert_non_null(strstr(out, "# TYPE process_resident_memory_bytes gauge\n"));
    double rss = sample_value(out, "process_resident_memory_bytes");
    double vsz = sample_value(out, "process_virtual_memory_bytes");
    double start = sample_value(out, "process_start_time_seconds");
    double cpu = sample_value(out, "process_cpu_seconds_total");
    double fds = sample_value(out, "process_open_fds");
    double max_fds = sample_value(out, "process_max_fds");
    assert_true(rss > 1024 * 1024);
    assert_true(vsz >= rss);
    double now = (double)time(NULL);
    assert_true(start > now - 3600 && start <= now + 1);
    assert_true(cpu >= 0);
    assert_true(fds >= 3 && fds <= max_fds);
    free(out);
    kf_metrics_destroy(m);
}

/* ---- promtool -------------------------------------------------------------------------- */

static bool find_in_path(const char *prog, char *out, size_t outlen)
{
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t n = colon ? (size_t)(colon - path) : strlen(path);
        snprintf(out, outlen, "%.*s/%s", (int)n, path, prog);
        if (n > 0 && access(out, X_OK) == 0)
            return true;
        path += n;
        if (*path == ':')
            path++;
    }
    return false;
}

static void promtool_accepts_output(void **state)
{
    char promtool[4096];
    if (!find_in_path("promtool", promtool, sizeof(promtool)))
        fail_msg("promtool not found in PATH: install the Debian package \"prometheus\" "
                 "(apt-get install -y prometheus) to check the exposition format");

    kf_error err;
    kf_metrics *m = kf_metrics_new(&err);
    assert_int_equal(kf_metrics_const_label(m, "worker", "validate", &err), KF_OK);
    assert_int_equal(kf_metrics_register_process(m, &err), KF_OK);
    kf_counter *in = kf_metrics_counter(m, "kfleet_records_in_total", "Records consumed.", 1,
                                        LABELS("topic"), &err);
    kf_counter_inc(kf_counter_child(in, 1, LABELS("orders"), &err), 10);
    kf_counter_inc(kf_counter_child(in, 1, LABELS("quo\"te\\back\nline \xc3\xa9"), &err), 1);
    kf_gauge *lag = kf_metrics_gauge(m, "kfleet_consumer_lag", "Lag.\nWith \\ escapes.", 2,
                                     LABELS("topic", "partition"), &err);
    kf_gauge_set(kf_gauge_child(lag, 2, LABELS("orders", "0"), &err), 3);
    lag_source src = {.lag = 1e21, .assigned = true};
    kf_gauge_child_func(lag, 2, LABELS("orders", "1"), lag_value, &src, &err);
    kf_gauge_set(kf_gauge_child(lag, 2, LABELS("orders", "2"), &err), NAN);
    kf_histogram *h = kf_metrics_histogram(m, "kfleet_batch_duration_seconds", "Batch time.", 1,
                                           LABELS("stage"), NULL, 0, &err);
    kf_histogram_series *hs = kf_histogram_child(h, 1, LABELS("commit"), &err);
    for (int i = 0; i < 100; i++)
        kf_histogram_observe(hs, i * 0.07);
    kf_histogram *plain = kf_metrics_histogram(m, "kfleet_payload_bytes", "Payload size.", 0, NULL,
                                               (const double[]){64, 1024, 65536}, 3, &err);
    kf_histogram_observe(kf_histogram_child(plain, 0, NULL, &err), 700);

    char *out = render(m);
    char path[] = "/tmp/kfleet-metrics-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(out);
    assert_int_equal(write(fd, out, len), (ssize_t)len);
    close(fd);
    free(out);
    kf_metrics_destroy(m);

    char cmd[8400];
    snprintf(cmd, sizeof(cmd), "'%s' check metrics < '%s'", promtool, path);
    int status = system(cmd);
    unlink(path);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("promtool check metrics exited %d on the rendered registry", WEXITSTATUS(status));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_exposition),
        cmocka_unit_test(golden_const_labels_and_unlabelled_histogram),
        cmocka_unit_test(default_buckets_and_float_formatting),
        cmocka_unit_test(names_are_validated),
        cmocka_unit_test(concurrent_recording_is_exact),
        cmocka_unit_test(process_metrics_are_plausible),
        cmocka_unit_test(promtool_accepts_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
