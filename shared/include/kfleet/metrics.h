/* Prometheus metrics: counters, gauges and histograms with labels in a registry that renders
 * the text exposition format 0.0.4. Recording is lock-free on pre-resolved child series. */
#ifndef KFLEET_METRICS_H
#define KFLEET_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kfleet/error.h"

/* Usage: register a family once at start-up with its label NAMES, resolve each child series
 * once with its label VALUES, then record on the child from any thread:
 *
 *   kf_counter *in = kf_metrics_counter(m, "kfleet_records_in_total", "records consumed",
 *                                       2, (const char *[]){"topic", "worker"}, &err);
 *   kf_counter_series *c = kf_counter_child(in, 2, (const char *[]){"orders", "validate"}, &err);
 *   ...
 *   kf_counter_inc(c, batch_len);     // one atomic add: no lock, no allocation, no lookup
 *
 * Families and children live until the registry is destroyed; handles stay valid that long.
 * Registration and child creation lock the registry; recording never does. */

typedef struct kf_metrics kf_metrics;
typedef struct kf_counter kf_counter;
typedef struct kf_counter_series kf_counter_series;
typedef struct kf_gauge kf_gauge;
typedef struct kf_gauge_series kf_gauge_series;
typedef struct kf_histogram kf_histogram;
typedef struct kf_histogram_series kf_histogram_series;

/* Computes a value at scrape time (e.g. consumer lag). Runs on the scraping thread with the
 * registry locked: it must not call kf_metrics_* registration or child functions, and must be
 * safe against the threads that update what it reads. Return false to omit the sample from
 * this scrape (e.g. the partition is no longer assigned). */
typedef bool (*kf_metrics_value_fn)(void *ctx, double *out);

/* ---- registry -------------------------------------------------------------------------- */

/* An empty registry. Thread-safe: register, resolve and render from any thread. Returns NULL
 * and fills err when out of memory. */
kf_metrics *kf_metrics_new(kf_error *err);
void kf_metrics_destroy(kf_metrics *m); /* NULL is a no-op; frees every family and child */

/* Adds a label carried by every series of this registry (e.g. worker="validate"); copies name
 * and value. Only before the first family is registered (KF_ERR_STATE after). */
int kf_metrics_const_label(kf_metrics *m, const char *name, const char *value, kf_error *err);

/* Registers the standard process metrics (without the kfleet_ prefix, as every Prometheus
 * client names them), read from /proc at scrape time:
 * process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_start_time_seconds, process_open_fds, process_max_fds. Once per registry: a second
 * call is KF_ERR_INVALID (the names are taken). */
int kf_metrics_register_process(kf_metrics *m, kf_error *err);

/* Renders every family with at least one series in the text exposition format 0.0.4, in
 * registration order, children in creation order. On success *out is a NUL-terminated
 * buffer the caller frees with free(), *len its length (without the NUL). */
int kf_metrics_render(kf_metrics *m, char **out, size_t *len, kf_error *err);

/* The Content-Type of kf_metrics_render's output. */
#define KF_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- registration ---------------------------------------------------------------------- */

/* Common rules for the three kinds. name must match [a-z_][a-z0-9_]* (the snake_case subset
 * of the Prometheus grammar that promtool's lint accepts) and start with "kfleet_"; counter
 * names end with "_total" and no other kind's do. help is required (non-empty UTF-8).
 * label_names (nlabels entries, may be NULL when 0) must match [a-z_][a-z0-9_]*, not start
 * with "__", not repeat, and not repeat a const label; histograms may not use "le". A name
 * that clashes with a registered one (including a histogram's _bucket/_sum/_count series) is
 * refused. Units are the caller's care: use base units (seconds, bytes) spelled out.
 * All strings are copied. Errors are KF_ERR_INVALID with the reason in err.
 * A family without labels has its single child created at once (pass nlabels = 0). */

kf_counter *kf_metrics_counter(kf_metrics *m, const char *name, const char *help, size_t nlabels,
                               const char *const *label_names, kf_error *err);

kf_gauge *kf_metrics_gauge(kf_metrics *m, const char *name, const char *help, size_t nlabels,
                           const char *const *label_names, kf_error *err);

/* bounds: nbounds strictly increasing finite upper bounds (the +Inf bucket is implicit);
 * bounds NULL with nbounds 0 uses the Prometheus defaults, 0.005 to 10 (seconds). */
kf_histogram *kf_metrics_histogram(kf_metrics *m, const char *name, const char *help,
                                   size_t nlabels, const char *const *label_names,
                                   const double *bounds, size_t nbounds, kf_error *err);

/* Fills out[0..count) with start, start*factor, start*factor^2, ...: a bucket layout for
 * kf_metrics_histogram. start > 0, factor > 1, count >= 1, else KF_ERR_INVALID. */
int kf_metrics_buckets_exponential(double start, double factor, size_t count, double *out,
                                   kf_error *err);

/* ---- children -------------------------------------------------------------------------- */

/* Returns the child series for these label values (nvalues must equal the family's label
 * count; values are copied; any valid UTF-8), creating it on first use; the same values
 * return the same handle. Call once and keep the handle: this locks and searches. NULL + err on
 * failure (wrong count, NULL value, out of memory). */
kf_counter_series *kf_counter_child(kf_counter *c, size_t nvalues, const char *const *values,
                                    kf_error *err);
kf_gauge_series *kf_gauge_child(kf_gauge *g, size_t nvalues, const char *const *values,
                                kf_error *err);
kf_histogram_series *kf_histogram_child(kf_histogram *h, size_t nvalues, const char *const *values,
                                        kf_error *err);

/* Creates a series whose value fn computes at each scrape. fn and ctx are borrowed; series
 * are never removed, so ctx must stay valid until kf_metrics_destroy (fn returns false to hide
 * a series that no longer applies). Values that already name a series are KF_ERR_INVALID.
 * Such series have no handle: nothing records on them. */
int kf_gauge_child_func(kf_gauge *g, size_t nvalues, const char *const *values,
                        kf_metrics_value_fn fn, void *ctx, kf_error *err);
int kf_counter_child_func(kf_counter *c, size_t nvalues, const char *const *values,
                          kf_metrics_value_fn fn, void *ctx, kf_error *err);

/* ---- recording (hot path: lock-free, allocation-free, any thread) ---------------------- */

/* Each call is one relaxed atomic operation (observe: one add on the bucket plus a
 * compare-and-swap loop on the sum); the handle must come from the *_child functions and is
 * never NULL here. The *_value/_count/_sum readers are for tests and in-process use. A scrape
 * racing with recording sees each series at some recent moment; a histogram's _count always
 * equals its +Inf bucket, but _sum may include an observation the buckets do not yet show. */

void kf_counter_inc(kf_counter_series *c, uint64_t n);
uint64_t kf_counter_value(const kf_counter_series *c);

void kf_gauge_set(kf_gauge_series *g, double v);
void kf_gauge_add(kf_gauge_series *g, double delta); /* negative delta subtracts */
double kf_gauge_value(const kf_gauge_series *g);

void kf_histogram_observe(kf_histogram_series *h, double v);
uint64_t kf_histogram_count(const kf_histogram_series *h);
double kf_histogram_sum(const kf_histogram_series *h);

#endif
