/* Unit tests for the observability HTTP server: each route over a real loopback socket on an
 * ephemeral port, fetched with libcurl. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kfleet/http.h"
#include "kfleet/metrics.h"

typedef struct reply {
    long status;
    char content_type[128];
    char allow[64];
    char body[65536];
    size_t len;
} reply;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    reply *r = ctx;
    size_t n = size * nmemb;
    size_t room = sizeof(r->body) - 1 - r->len;
    size_t take = n < room ? n : room;
    memcpy(r->body + r->len, data, take);
    r->len += take;
    r->body[r->len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ctx)
{
    reply *r = ctx;
    size_t n = size * nmemb;
    if (n > 7 && strncasecmp(data, "Allow: ", 7) == 0) {
        size_t len = n - 7;
        while (len > 0 && (data[7 + len - 1] == '\r' || data[7 + len - 1] == '\n'))
            len--;
        if (len >= sizeof(r->allow))
            len = sizeof(r->allow) - 1;
        memcpy(r->allow, data + 7, len);
        r->allow[len] = '\0';
    }
    return n;
}

/* Performs one request; method NULL means GET. */
static void fetch(uint16_t port, const char *method, const char *path, reply *r)
{
    memset(r, 0, sizeof(*r));
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (method && strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x=1");
    } else if (method && strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (method) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK)
        fail_msg("could not fetch %s: %s", url, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    if (ct)
        snprintf(r->content_type, sizeof(r->content_type), "%s", ct);
    curl_easy_cleanup(c);
}

static kf_http *start(const char *listen, kf_metrics *m, kf_http_ready_fn fn, void *ctx)
{
    kf_http_config cfg = {.listen = listen, .metrics = m, .ready_fn = fn, .ready_ctx = ctx};
    kf_error err;
    kf_error_clear(&err);
    kf_http *h = kf_http_new(&cfg, &err);
    if (!h)
        fail_msg("could not start http server: %s", err.message);
    assert_true(kf_http_port(h) > 0);
    return h;
}

static void routes_status_type_and_body(void **state)
{
    kf_error err;
    kf_metrics *m = kf_metrics_new(&err);
    kf_counter *c = kf_metrics_counter(m, "kfleet_records_in_total", "Records consumed.", 1,
                                       (const char *const[]){"topic"}, &err);
    kf_counter_series *s = kf_counter_child(c, 1, (const char *const[]){"orders"}, &err);
    kf_counter_inc(s, 3);

    kf_http *h = start("127.0.0.1:0", m, NULL, NULL);
    uint16_t port = kf_http_port(h);
    reply r;

    fetch(port, NULL, "/metrics", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert_string_equal(r.body, "# HELP kfleet_records_in_total Records consumed.\n"
                                "# TYPE kfleet_records_in_total counter\n"
                                "kfleet_records_in_total{topic=\"orders\"} 3\n");
    /* Rendered per request: a later increment shows on the next scrape. */
    kf_counter_inc(s, 1);
    fetch(port, NULL, "/metrics", &r);
    assert_non_null(strstr(r.body, "kfleet_records_in_total{topic=\"orders\"} 4\n"));

    fetch(port, NULL, "/healthz", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/plain; charset=utf-8");
    assert_string_equal(r.body, "ok\n");

    fetch(port, NULL, "/nope", &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "not found\n");
    fetch(port, NULL, "/metrics/extra", &r);
    assert_int_equal(r.status, 404);

    fetch(port, "POST", "/metrics", &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.allow, "GET, HEAD");
    fetch(port, "DELETE", "/healthz", &r);
    assert_int_equal(r.status, 405);
    fetch(port, "PUT", "/nope", &r);
    assert_int_equal(r.status, 405);

    fetch(port, "HEAD", "/healthz", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);

    kf_http_destroy(h);
    kf_metrics_destroy(m);
}

static void readiness_flag_toggles(void **state)
{
    kf_http *h = start("127.0.0.1:0", NULL, NULL, NULL);
    uint16_t port = kf_http_port(h);
    reply r;

    /* Not ready until the program says so. */
    fetch(port, NULL, "/readyz", &r);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.content_type, "text/plain; charset=utf-8");
    assert_string_equal(r.body, "not ready: starting\n");

    kf_http_set_ready(h, true, NULL);
    fetch(port, NULL, "/readyz", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ready\n");

    kf_http_set_ready(h, false, "kafka unreachable");
    fetch(port, NULL, "/readyz", &r);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "not ready: kafka unreachable\n");

    kf_http_set_ready(h, false, NULL);
    fetch(port, NULL, "/readyz", &r);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "not ready\n");

    /* Liveness does not depend on readiness; no registry serves an empty page. */
    fetch(port, NULL, "/healthz", &r);
    assert_int_equal(r.status, 200);
    fetch(port, NULL, "/metrics", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    kf_http_destroy(h);
}

typedef struct readiness {
    atomic_bool ready;
    atomic_int calls;
} readiness;

static bool ready_cb(void *ctx, char *reason, size_t reason_len)
{
    readiness *rd = ctx;
    atomic_fetch_add(&rd->calls, 1);
    if (atomic_load(&rd->ready))
        return true;
    snprintf(reason, reason_len, "partitions not assigned");
    return false;
}

static void readiness_callback_decides(void **state)
{
    readiness rd;
    atomic_init(&rd.ready, false);
    atomic_init(&rd.calls, 0);
    kf_http *h = start("127.0.0.1:0", NULL, ready_cb, &rd);
    uint16_t port = kf_http_port(h);
    reply r;
    fetch(port, NULL, "/readyz", &r);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "not ready: partitions not assigned\n");
    atomic_store(&rd.ready, true);
    /* The flag is ignored while a callback is configured. */
    kf_http_set_ready(h, false, "ignored");
    fetch(port, NULL, "/readyz", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(atomic_load(&rd.calls), 2);
    kf_http_destroy(h);
}

static void bad_addresses_and_busy_port(void **state)
{
    const char *bad[] = {
        "",       "9464",    "127.0.0.1:", "127.0.0.1:70000", "127.0.0.1:-1", "127.0.0.1:12x",
        "::1:80", "[::1]80", "[::1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        kf_http_config cfg = {.listen = bad[i]};
        kf_error err;
        kf_error_clear(&err);
        assert_null(kf_http_new(&cfg, &err));
        assert_int_equal(err.code, KF_ERR_CONFIG);
        assert_non_null(strstr(err.message, "listen address"));
    }
    kf_http_config none = {.listen = NULL};
    kf_error err;
    assert_null(kf_http_new(&none, &err));
    assert_string_equal(err.message, "listen address is empty");
    assert_null(kf_http_new(NULL, &err));

    kf_http_config unresolvable = {.listen = "no-such-host.invalid:0"};
    assert_null(kf_http_new(&unresolvable, &err));
    assert_int_equal(err.code, KF_ERR_CONFIG);
    assert_non_null(strstr(err.message, "could not resolve listen address"));

    /* A second server on a taken port fails with the reason. */
    kf_http *h = start("127.0.0.1:0", NULL, NULL, NULL);
    char taken[64];
    snprintf(taken, sizeof(taken), "127.0.0.1:%u", kf_http_port(h));
    kf_http_config busy = {.listen = taken};
    kf_error_clear(&err);
    assert_null(kf_http_new(&busy, &err));
    assert_int_equal(err.code, KF_ERR_IO);
    char want[256];
    snprintf(want, sizeof(want), "could not listen on %s (\"%s\"): Address already in use", taken,
             taken);
    assert_string_equal(err.message, want);
    kf_http_destroy(h);
    kf_http_destroy(NULL);
}

static void ipv6_and_any_address(void **state)
{
    /* ":0" listens on every IPv4 interface, so loopback reaches it. */
    kf_http *any = start(":0", NULL, NULL, NULL);
    reply r;
    fetch(kf_http_port(any), NULL, "/healthz", &r);
    assert_int_equal(r.status, 200);
    kf_http_destroy(any);

    kf_http_config cfg = {.listen = "[::1]:0"};
    kf_error err;
    kf_http *h = kf_http_new(&cfg, &err);
    if (!h) {
        /* Hosts without IPv6 loopback cannot bind it; that must be a bind error, not a crash. */
        assert_int_equal(err.code, KF_ERR_IO);
        return;
    }
    char url[64];
    snprintf(url, sizeof(url), "http://[::1]:%u/healthz", kf_http_port(h));
    CURL *c = curl_easy_init();
    reply rr;
    memset(&rr, 0, sizeof(rr));
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &rr);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    assert_int_equal(status, 200);
    assert_string_equal(rr.body, "ok\n");
    kf_http_destroy(h);
}

static void stop_closes_the_port(void **state)
{
    kf_http *h = start("127.0.0.1:0", NULL, NULL, NULL);
    uint16_t port = kf_http_port(h);
    kf_http_destroy(h);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/healthz", port);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
    assert_int_equal(curl_easy_perform(c), CURLE_COULDNT_CONNECT);
    curl_easy_cleanup(c);
    /* The same port can be bound again right away. */
    char again[64];
    snprintf(again, sizeof(again), "127.0.0.1:%u", port);
    kf_http *h2 = start(again, NULL, NULL, NULL);
    assert_int_equal(kf_http_port(h2), port);
    kf_http_destroy(h2);
}

static int setup(void **state)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int teardown(void **state)
{
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(routes_status_type_and_body),
        cmocka_unit_test(readiness_flag_toggles),
        cmocka_unit_test(readiness_callback_decides),
        cmocka_unit_test(bad_addresses_and_busy_port),
        cmocka_unit_test(ipv6_and_any_address),
        cmocka_unit_test(stop_closes_the_port),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
