/* The observability HTTP server every long-running program runs: GET /metrics (Prometheus
 * text format), /healthz (liveness) and /readyz (readiness), on its own thread. */
#ifndef KFLEET_HTTP_H
#define KFLEET_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kfleet/error.h"
#include "kfleet/metrics.h"

/* Routes (GET and HEAD; any other method is 405 with "Allow: GET, HEAD"):
 *   /metrics  200, Content-Type KF_METRICS_CONTENT_TYPE, the registry rendered at request time
 *   /healthz  200 "ok" while the server runs (the process is alive and its HTTP thread works)
 *   /readyz   200 "ready", or 503 "not ready: <reason>"
 *   other     404
 * Bodies other than /metrics are text/plain; charset=utf-8 and end with a newline. */

typedef struct kf_http kf_http;

/* Decides readiness at request time, on the server thread. Returns true when ready; when not,
 * it may write a short reason (NUL-terminated, at most reason_len bytes) into reason. Must be
 * thread-safe against the program's other threads. */
typedef bool (*kf_http_ready_fn)(void *ctx, char *reason, size_t reason_len);

typedef struct kf_http_config {
    /* "host:port" to listen on: "127.0.0.1:9464", "[::1]:9464", "localhost:0", or ":9464"
     * (all IPv4 interfaces). Port 0 picks a free port; read it back with kf_http_port. */
    const char *listen;
    kf_metrics *metrics; /* borrowed, must outlive the server; NULL serves an empty /metrics */
    /* Optional readiness callback (borrowed). When NULL, readiness is the flag set with
     * kf_http_set_ready, which starts as not ready with the reason "starting". */
    kf_http_ready_fn ready_fn;
    void *ready_ctx;
} kf_http_config;

/* Resolves and binds cfg->listen and starts serving on an internal thread. Copies what it
 * needs from cfg. Returns NULL and fills err: KF_ERR_CONFIG for a malformed or unresolvable
 * address, KF_ERR_IO when the address cannot be bound (e.g. the port is taken). */
kf_http *kf_http_new(const kf_http_config *cfg, kf_error *err);

/* Stops accepting, finishes or closes open connections, joins the server thread and frees
 * the server. NULL is a no-op. */
void kf_http_destroy(kf_http *h);

/* The port actually bound (the chosen one when the address asked for port 0). */
uint16_t kf_http_port(const kf_http *h);

/* Sets the readiness flag and, when not ready, the reason shown by /readyz (copied,
 * truncated to 255 bytes; NULL means no reason). Thread-safe; ignored while a ready_fn is
 * configured. */
void kf_http_set_ready(kf_http *h, bool ready, const char *reason);

#endif
