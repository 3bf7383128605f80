/* The runtime every kfleet program shares: logging, signals, metrics and health server,
 * registry client, audit emitter, and librdkafka properties from the configuration. */
#include "kfleet/app.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfleet/signals.h"

int kf_app_kv_add(kf_app_kv *kv, const char *key, const char *value, kf_error *err)
{
    const char **grown = realloc(kv->kv, (kv->npairs + 1) * 2 * sizeof(*grown));
    if (!grown)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not grow the kafka property list");
    kv->kv = grown;
    kv->kv[kv->npairs * 2] = key;
    kv->kv[kv->npairs * 2 + 1] = value;
    kv->npairs++;
    return KF_OK;
}

const char *kf_app_kv_get(const kf_app_kv *kv, const char *key)
{
    for (size_t i = kv->npairs; i > 0; i--)
        if (strcmp(kv->kv[(i - 1) * 2], key) == 0)
            return kv->kv[(i - 1) * 2 + 1];
    return NULL;
}

void kf_app_kv_free(kf_app_kv *kv)
{
    if (!kv)
        return;
    free(kv->kv);
    kv->kv = NULL;
    kv->npairs = 0;
}

typedef struct kv_walk {
    kf_app_kv *kv;
    kf_error *err;
} kv_walk;

static int add_passthrough(const char *key, const char *value, const char *source, void *ctx)
{
    kv_walk *w = ctx;
    return kf_app_kv_add(w->kv, key, value, w->err);
}

int kf_app_kafka_kv(const kf_config *cfg, const char *const *defaults, size_t npairs_defaults,
                    kf_app_kv *out, kf_error *err)
{
    out->kv = NULL;
    out->npairs = 0;
    for (size_t i = 0; i < npairs_defaults; i++) {
        int rc = kf_app_kv_add(out, defaults[2 * i], defaults[2 * i + 1], err);
        if (rc != KF_OK)
            goto out_free;
    }
    kv_walk w = {.kv = out, .err = err};
    int rc = kf_config_passthrough(cfg, "kafka.", add_passthrough, &w);
    if (rc != KF_OK)
        goto out_free;
    return KF_OK;

out_free:
    kf_app_kv_free(out);
    return err ? err->code : KF_ERR_NOMEM;
}

typedef struct registry_walk {
    kf_registry_config *rc;
    char *userinfo_buf;
    size_t userinfo_len;
    kf_error *err;
} registry_walk;

static int parse_long_ms(const char *key, const char *value, const char *source, long *out,
                         kf_error *err)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end || v < 0)
        return kf_error_set(err, KF_ERR_CONFIG, false,
                            "%s: registry.%s: \"%s\" is not a non-negative integer", source, key,
                            value);
    *out = v;
    return KF_OK;
}

static int registry_pair(const char *key, const char *value, const char *source, void *ctx)
{
    registry_walk *w = ctx;
    long v = 0;
    int rc;
    if (strcmp(key, "basic.auth.user.info") == 0) {
        const char *colon = strchr(value, ':');
        size_t n = strlen(value);
        if (!colon || n + 1 > w->userinfo_len)
            return kf_error_set(w->err, KF_ERR_CONFIG, false,
                                "%s: registry.basic.auth.user.info: expected \"user:password\"",
                                source);
        memcpy(w->userinfo_buf, value, n + 1);
        w->userinfo_buf[colon - value] = '\0';
        w->rc->username = w->userinfo_buf;
        w->rc->password = w->userinfo_buf + (colon - value) + 1;
        return KF_OK;
    }
    if (strcmp(key, "timeout.ms") == 0) {
        if ((rc = parse_long_ms(key, value, source, &v, w->err)) == KF_OK)
            w->rc->timeout_ms = v;
        return rc;
    }
    if (strcmp(key, "max.retries") == 0) {
        if ((rc = parse_long_ms(key, value, source, &v, w->err)) == KF_OK)
            w->rc->max_retries = v == 0 ? -1 : (int)v;
        return rc;
    }
    if (strcmp(key, "backoff.ms") == 0) {
        if ((rc = parse_long_ms(key, value, source, &v, w->err)) == KF_OK)
            w->rc->backoff_initial_ms = v;
        return rc;
    }
    if (strcmp(key, "backoff.max.ms") == 0) {
        if ((rc = parse_long_ms(key, value, source, &v, w->err)) == KF_OK)
            w->rc->backoff_max_ms = v;
        return rc;
    }
    return kf_error_set(w->err, KF_ERR_CONFIG, false,
                        "%s: unknown key \"registry.%s\" (known: registry.url, "
                        "registry.basic.auth.user.info, registry.timeout.ms, registry.max.retries, "
                        "registry.backoff.ms, registry.backoff.max.ms)",
                        source, key);
}

int kf_app_registry_config(const kf_config *cfg, const kf_app_config *ac, kf_registry_config *out,
                           char *userinfo_buf, size_t userinfo_len, kf_error *err)
{
    memset(out, 0, sizeof(*out));
    out->url = ac->registry_url;
    registry_walk w = {
        .rc = out, .userinfo_buf = userinfo_buf, .userinfo_len = userinfo_len, .err = err};
    int rc = kf_config_passthrough(cfg, "registry.", registry_pair, &w);
    return rc == KF_OK ? KF_OK : (err ? err->code : KF_ERR_CONFIG);
}

int kf_app_start(kf_app *app, const char *program, const kf_config *cfg, const kf_app_config *ac,
                 unsigned flags, kf_error *err)
{
    memset(app, 0, sizeof(*app));
    app->program = program;
    kf_log_init(program, (kf_log_level)ac->log_level, (kf_log_format)ac->log_format);

    int rc = kf_signals_install(err);
    if (rc != KF_OK)
        return rc;

    app->metrics = kf_metrics_new(err);
    if (!app->metrics)
        goto out_stop;
    if ((rc = kf_metrics_const_label(app->metrics, "worker", program, err)) != KF_OK ||
        (rc = kf_metrics_register_process(app->metrics, err)) != KF_OK)
        goto out_stop;

    bool has_registry = ac->registry_url && ac->registry_url[0];
    if (!has_registry && (flags & KF_APP_NEED_REGISTRY)) {
        kf_error_set(err, KF_ERR_CONFIG, false,
                     "registry.url is not set: give --registry-url, KFLEET_REGISTRY_URL or "
                     "registry.url in the config file");
        goto out_stop;
    }
    if (has_registry) {
        kf_registry_config rcfg;
        char userinfo[512];
        if (kf_app_registry_config(cfg, ac, &rcfg, userinfo, sizeof(userinfo), err) != KF_OK)
            goto out_stop;
        app->registry = kf_registry_new(&rcfg, err);
        if (!app->registry)
            goto out_stop;
    }

    if (ac->metrics_listen && ac->metrics_listen[0]) {
        kf_http_config hcfg = {.listen = ac->metrics_listen, .metrics = app->metrics};
        app->http = kf_http_new(&hcfg, err);
        if (!app->http)
            goto out_stop;
        char port[8];
        snprintf(port, sizeof(port), "%u", (unsigned)kf_http_port(app->http));
        kf_log(KF_LOG_INFO, "serving metrics and health", "listen", ac->metrics_listen, "port",
               port, (char *)NULL);
    }
    return KF_OK;

out_stop:
    kf_app_stop(app);
    return err ? err->code : KF_ERR_FATAL;
}

void kf_app_set_ready(kf_app *app, bool ready, const char *reason)
{
    if (app->http)
        kf_http_set_ready(app->http, ready, reason);
}

void kf_app_stop(kf_app *app)
{
    if (!app)
        return;
    kf_http_destroy(app->http);
    app->http = NULL;
    kf_registry_destroy(app->registry);
    app->registry = NULL;
    kf_metrics_destroy(app->metrics);
    app->metrics = NULL;
    kf_signals_uninstall();
}

int kf_app_audit_new(const kf_app *app, const kf_app_config *ac, const kf_audit_config *audit,
                     const kf_app_kv *kv, const char *instance, kf_audit **out, kf_error *err)
{
    *out = NULL;
    if (!audit->enabled)
        return KF_OK;
    kf_audit_options o = {.program = app->program,
                          .instance = instance,
                          .topic = audit->topic,
                          .prefix = ac->topic_prefix,
                          .kafka_kv = kv->kv,
                          .kafka_npairs = kv->npairs,
                          .registry = app->registry,
                          .metrics = app->metrics};
    *out = kf_audit_new(&o, err);
    return *out ? KF_OK : err->code;
}

int kf_app_exit_code(int rc)
{
    if (rc == KF_OK)
        return 0;
    return rc == KF_ERR_CONFIG ? 2 : 1;
}
