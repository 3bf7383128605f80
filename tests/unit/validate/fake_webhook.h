/* An in-process fake of a Slack-compatible incoming webhook on a loopback port, for the alert
 * tests: records every request body and when it arrived, and answers scripted statuses. */
#ifndef KF_FAKE_WEBHOOK_H
#define KF_FAKE_WEBHOOK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>

#define FAKE_WEBHOOK_MAX_REQUESTS 64
#define FAKE_WEBHOOK_MAX_BODY     8192
#define FAKE_WEBHOOK_MAX_SCRIPT   32

typedef struct fake_webhook_request {
    char body[FAKE_WEBHOOK_MAX_BODY];
    char content_type[128];
    char method[16];
    unsigned status; /* what the fake answered */
    int64_t at_ms;   /* CLOCK_MONOTONIC */
} fake_webhook_request;

typedef struct fake_webhook {
    struct MHD_Daemon *daemon;
    pthread_mutex_t lock;
    uint16_t port;
    char url[64];
    unsigned script[FAKE_WEBHOOK_MAX_SCRIPT]; /* statuses for the next requests, then 200 */
    size_t nscript, script_pos;
    fake_webhook_request *requests; /* FAKE_WEBHOOK_MAX_REQUESTS */
    size_t nrequests;
} fake_webhook;

typedef struct fake_webhook_conn {
    char *body;
    size_t len;
    bool too_big;
} fake_webhook_conn;

static inline int64_t fake_webhook_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void fake_webhook_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                                          enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)con;
    (void)toe;
    fake_webhook_conn *c = *con_cls;
    if (!c)
        return;
    free(c->body);
    free(c);
    *con_cls = NULL;
}

static inline enum MHD_Result fake_webhook_handle(void *cls, struct MHD_Connection *con,
                                                  const char *url, const char *method,
                                                  const char *version, const char *upload_data,
                                                  size_t *upload_data_size, void **con_cls)
{
    (void)url;
    (void)version;
    fake_webhook *w = cls;
    fake_webhook_conn *c = *con_cls;
    if (!c) {
        if (!(c = calloc(1, sizeof(*c))))
            return MHD_NO;
        *con_cls = c;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (c->len + *upload_data_size >= FAKE_WEBHOOK_MAX_BODY) {
            c->too_big = true;
        } else {
            char *grown = realloc(c->body, c->len + *upload_data_size + 1);
            if (!grown)
                return MHD_NO;
            c->body = grown;
            memcpy(c->body + c->len, upload_data, *upload_data_size);
            c->len += *upload_data_size;
            c->body[c->len] = '\0';
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&w->lock);
    unsigned status = w->script_pos < w->nscript ? w->script[w->script_pos++] : 200;
    if (c->too_big)
        status = 413;
    if (w->nrequests < FAKE_WEBHOOK_MAX_REQUESTS) {
        fake_webhook_request *r = &w->requests[w->nrequests++];
        snprintf(r->body, sizeof(r->body), "%s", c->body ? c->body : "");
        const char *ct = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Type");
        snprintf(r->content_type, sizeof(r->content_type), "%s", ct ? ct : "");
        snprintf(r->method, sizeof(r->method), "%s", method);
        r->status = status;
        r->at_ms = fake_webhook_now_ms();
    }
    pthread_mutex_unlock(&w->lock);
    static const char ok[] = "ok";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof(ok) - 1, (void *)ok, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    enum MHD_Result rc = MHD_queue_response(con, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* Stops the server and frees it; NULL is a no-op. */
static inline void fake_webhook_stop(fake_webhook *w)
{
    if (!w)
        return;
    if (w->daemon)
        MHD_stop_daemon(w->daemon);
    pthread_mutex_destroy(&w->lock);
    free(w->requests);
    free(w);
}

/* Starts on 127.0.0.1:port (0: a kernel-chosen port); NULL when the port cannot be bound. */
static inline fake_webhook *fake_webhook_start(uint16_t port)
{
    fake_webhook *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    pthread_mutex_init(&w->lock, NULL);
    if (!(w->requests = calloc(FAKE_WEBHOOK_MAX_REQUESTS, sizeof(*w->requests)))) {
        fake_webhook_stop(w);
        return NULL;
    }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    w->daemon =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, fake_webhook_handle, w,
                         MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U,
                         MHD_OPTION_NOTIFY_COMPLETED, fake_webhook_completed, w, MHD_OPTION_END);
    if (!w->daemon) {
        fake_webhook_stop(w);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(w->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (!info || !info->port) {
        fake_webhook_stop(w);
        return NULL;
    }
    w->port = info->port;
    snprintf(w->url, sizeof(w->url), "http://127.0.0.1:%u/hooks/alerts", (unsigned)w->port);
    return w;
}

/* The next n requests are answered with statuses[0..n-1] (copied); later ones with 200. */
static inline void fake_webhook_script(fake_webhook *w, const unsigned *statuses, size_t n)
{
    pthread_mutex_lock(&w->lock);
    w->nscript = n < FAKE_WEBHOOK_MAX_SCRIPT ? n : FAKE_WEBHOOK_MAX_SCRIPT;
    memcpy(w->script, statuses, w->nscript * sizeof(*statuses));
    w->script_pos = 0;
    pthread_mutex_unlock(&w->lock);
}

static inline size_t fake_webhook_count(fake_webhook *w)
{
    pthread_mutex_lock(&w->lock);
    size_t n = w->nrequests;
    pthread_mutex_unlock(&w->lock);
    return n;
}

/* Copies request i into *out; false when there is no such request. */
static inline bool fake_webhook_request_get(fake_webhook *w, size_t i, fake_webhook_request *out)
{
    pthread_mutex_lock(&w->lock);
    bool ok = i < w->nrequests;
    if (ok)
        *out = w->requests[i];
    pthread_mutex_unlock(&w->lock);
    return ok;
}

/* Waits until at least n requests arrived; false after timeout_ms. */
static inline bool fake_webhook_wait(fake_webhook *w, size_t n, int timeout_ms)
{
    int64_t deadline = fake_webhook_now_ms() + timeout_ms;
    while (fake_webhook_count(w) < n) {
        if (fake_webhook_now_ms() > deadline)
            return false;
        usleep(10000);
    }
    return true;
}

#endif
