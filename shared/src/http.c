/* /metrics, /healthz and /readyz over libmicrohttpd, served from the daemon's own polling
 * thread so a busy or stuck main loop never delays a scrape or a probe. */
#include "kfleet/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kfleet/log.h"

#define REASON_MAX 256

struct kf_http {
    struct MHD_Daemon *daemon;
    kf_metrics *metrics;
    kf_http_ready_fn ready_fn;
    void *ready_ctx;
    pthread_mutex_t lock; /* guards ready and reason */
    bool ready;
    char reason[REASON_MAX];
    uint16_t port;
};

static const char text_plain[] = "text/plain; charset=utf-8";

/* ---- address parsing ------------------------------------------------------------------- */

/* Splits "host:port" / "[v6]:port" / ":port" into host (empty = any) and port text. */
static int split_listen(const char *listen, char *host, size_t hostlen, char *port, size_t portlen,
                        kf_error *err)
{
    if (!listen || !*listen)
        return kf_error_set(err, KF_ERR_CONFIG, false, "listen address is empty");
    const char *host_start = listen, *host_end, *port_start;
    if (listen[0] == '[') {
        host_start = listen + 1;
        host_end = strchr(host_start, ']');
        if (!host_end || host_end[1] != ':')
            return kf_error_set(err, KF_ERR_CONFIG, false,
                                "invalid listen address \"%s\": expected [host]:port", listen);
        port_start = host_end + 2;
    } else {
        host_end = strrchr(listen, ':');
        if (!host_end)
            return kf_error_set(err, KF_ERR_CONFIG, false,
                                "invalid listen address \"%s\": expected host:port", listen);
        if (memchr(listen, ':', (size_t)(host_end - listen)))
            return kf_error_set(err, KF_ERR_CONFIG, false,
                                "invalid listen address \"%s\": write IPv6 hosts as [host]:port",
                                listen);
        port_start = host_end + 1;
    }
    size_t n = (size_t)(host_end - host_start);
    if (n >= hostlen)
        return kf_error_set(err, KF_ERR_CONFIG, false,
                            "invalid listen address \"%s\": host is too long", listen);
    memcpy(host, host_start, n);
    host[n] = '\0';

    char *end;
    errno = 0;
    unsigned long p = strtoul(port_start, &end, 10);
    if (!*port_start || *end || errno || p > 65535 || port_start[0] == '-' || port_start[0] == '+')
        return kf_error_set(err, KF_ERR_CONFIG, false,
                            "invalid listen address \"%s\": port must be 0..65535", listen);
    snprintf(port, portlen, "%lu", p);
    return KF_OK;
}

/* "ip:port" or "[ip]:port"; port 0 means the one in sa. */
static void describe_addr(const struct sockaddr *sa, uint16_t port, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        snprintf(out, outlen, "[%s]:%u", ip, port ? port : ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        snprintf(out, outlen, "%s:%u", ip, port ? port : ntohs(s4->sin_port));
    }
}

/* After the daemon refused to start, bind the address ourselves to learn why (the daemon
 * reports only through its logger). */
static int bind_errno(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return errno;
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    int e = 0;
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1) != 0)
        e = errno;
    close(fd);
    return e;
}

/* ---- request handling ------------------------------------------------------------------ */

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    kf_log(KF_LOG_WARN, "http server problem", "detail", msg, (char *)NULL);
}

static enum MHD_Result queue(struct MHD_Connection *conn, unsigned int status,
                             struct MHD_Response *resp, const char *content_type)
{
    if (!resp)
        return MHD_NO;
    enum MHD_Result rc = MHD_YES;
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES ||
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES)
        rc = MHD_NO;
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != MHD_YES)
        rc = MHD_NO;
    if (rc == MHD_YES)
        rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result queue_static(struct MHD_Connection *conn, unsigned int status,
                                    const char *body)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    return queue(conn, status, resp, text_plain);
}

static enum MHD_Result queue_copy(struct MHD_Connection *conn, unsigned int status,
                                  const char *body)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    return queue(conn, status, resp, text_plain);
}

static enum MHD_Result serve_metrics(kf_http *h, struct MHD_Connection *conn)
{
    char *body = NULL;
    size_t len = 0;
    if (h->metrics) {
        kf_error err;
        if (kf_metrics_render(h->metrics, &body, &len, &err) != KF_OK) {
            kf_log(KF_LOG_ERROR, "could not render metrics", "error", err.message, (char *)NULL);
            return queue_static(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "could not render metrics\n");
        }
    } else {
        body = calloc(1, 1);
        if (!body)
            return MHD_NO;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, body, free);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    return queue(conn, MHD_HTTP_OK, resp, KF_METRICS_CONTENT_TYPE);
}

static enum MHD_Result serve_ready(kf_http *h, struct MHD_Connection *conn)
{
    char reason[REASON_MAX] = "";
    bool ready;
    if (h->ready_fn) {
        ready = h->ready_fn(h->ready_ctx, reason, sizeof(reason));
        reason[sizeof(reason) - 1] = '\0';
    } else {
        pthread_mutex_lock(&h->lock);
        ready = h->ready;
        memcpy(reason, h->reason, sizeof(reason));
        pthread_mutex_unlock(&h->lock);
    }
    if (ready)
        return queue_static(conn, MHD_HTTP_OK, "ready\n");
    char body[REASON_MAX + 16];
    if (reason[0])
        snprintf(body, sizeof(body), "not ready: %s\n", reason);
    else
        snprintf(body, sizeof(body), "not ready\n");
    return queue_copy(conn, MHD_HTTP_SERVICE_UNAVAILABLE, body);
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **req_cls)
{
    kf_http *h = cls;
    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    bool head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!get && !head) /* answered before any body is read; the daemon then closes */
        return queue_static(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    if (strcmp(url, "/metrics") == 0)
        return serve_metrics(h, conn);
    if (strcmp(url, "/healthz") == 0)
        return queue_static(conn, MHD_HTTP_OK, "ok\n");
    if (strcmp(url, "/readyz") == 0)
        return serve_ready(h, conn);
    return queue_static(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

/* ---- lifecycle ------------------------------------------------------------------------- */

static struct MHD_Daemon *start_daemon(kf_http *h, const struct addrinfo *ai)
{
    unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    return MHD_start_daemon(flags, 0, NULL, NULL, handle_request, h, MHD_OPTION_EXTERNAL_LOGGER,
                            mhd_log, NULL, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64, MHD_OPTION_END);
}

kf_http *kf_http_new(const kf_http_config *cfg, kf_error *err)
{
    if (!cfg) {
        kf_error_set(err, KF_ERR_INVALID, false, "http server configuration is NULL");
        return NULL;
    }
    char host[256], port[8];
    if (split_listen(cfg->listen, host, sizeof(host), port, sizeof(port), err) != KF_OK)
        return NULL;

    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    if (!host[0]) {
        hints.ai_family = AF_INET;
        hints.ai_flags |= AI_PASSIVE;
    }
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (gai != 0) {
        kf_error_set(err, KF_ERR_CONFIG, false, "could not resolve listen address \"%s\": %s",
                     cfg->listen, gai_strerror(gai));
        return NULL;
    }

    kf_http *h = calloc(1, sizeof(*h));
    if (!h) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate http server");
        goto out_free_addrinfo;
    }
    if (pthread_mutex_init(&h->lock, NULL) != 0) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not initialize http server lock");
        goto out_free_server;
    }
    h->metrics = cfg->metrics;
    h->ready_fn = cfg->ready_fn;
    h->ready_ctx = cfg->ready_ctx;
    h->ready = false;
    snprintf(h->reason, sizeof(h->reason), "starting");

    /* A name may resolve to several addresses (::1 and 127.0.0.1): take the first that binds. */
    const struct addrinfo *bound = NULL;
    for (const struct addrinfo *ai = res; ai && !h->daemon; ai = ai->ai_next) {
        h->daemon = start_daemon(h, ai);
        bound = ai;
    }
    if (!h->daemon) {
        char where[INET6_ADDRSTRLEN + 16];
        describe_addr(res->ai_addr, 0, where, sizeof(where));
        int e = bind_errno(res);
        kf_error_set(err, KF_ERR_IO, false, "could not listen on %s (\"%s\"): %s", where,
                     cfg->listen, e ? strerror(e) : "the http daemon did not start");
        goto out_destroy_lock;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    if (h->port == 0) {
        kf_error_set(err, KF_ERR_IO, false, "could not learn the port bound for \"%s\"",
                     cfg->listen);
        goto out_stop_daemon;
    }
    char where[INET6_ADDRSTRLEN + 16];
    describe_addr(bound->ai_addr, h->port, where, sizeof(where));
    kf_log(KF_LOG_INFO, "http server listening", "address", where, (char *)NULL);
    freeaddrinfo(res);
    return h;

out_stop_daemon:
    MHD_stop_daemon(h->daemon);
out_destroy_lock:
    pthread_mutex_destroy(&h->lock);
out_free_server:
    free(h);
out_free_addrinfo:
    freeaddrinfo(res);
    return NULL;
}

void kf_http_destroy(kf_http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->daemon);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

uint16_t kf_http_port(const kf_http *h)
{
    return h->port;
}

void kf_http_set_ready(kf_http *h, bool ready, const char *reason)
{
    pthread_mutex_lock(&h->lock);
    h->ready = ready;
    snprintf(h->reason, sizeof(h->reason), "%s", (!ready && reason) ? reason : "");
    pthread_mutex_unlock(&h->lock);
}
