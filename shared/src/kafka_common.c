/* What every kfleet Kafka client shares: configuration from key/value pairs, librdkafka's
 * log and error callbacks routed into kf_log, fatal error tracking and error classification. */
#include "kafka_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfleet/log.h"

void kf_kafka_client_init(kf_kafka_client *cl)
{
    atomic_init(&cl->fatal, false);
    pthread_mutex_init(&cl->lock, NULL);
    cl->fatal_reason[0] = '\0';
}

void kf_kafka_client_fini(kf_kafka_client *cl)
{
    pthread_mutex_destroy(&cl->lock);
}

/* librdkafka levels are syslog levels. */
static kf_log_level level_from_syslog(int level)
{
    if (level <= 3)
        return KF_LOG_ERROR;
    if (level == 4)
        return KF_LOG_WARN;
    if (level <= 6)
        return KF_LOG_INFO;
    return KF_LOG_DEBUG;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *facility, const char *buf)
{
    kf_log_level lvl = level_from_syslog(level);
    if (!kf_log_enabled(lvl))
        return;
    kf_log(lvl, buf, "facility", facility, "client", rd_kafka_name(rk), (char *)NULL);
}

void kf_kafka_fatal_record(kf_kafka_client *cl, const char *client, const char *reason)
{
    pthread_mutex_lock(&cl->lock);
    bool first = !atomic_load(&cl->fatal);
    if (first) {
        /* cut to the buffer: the whole reason goes to the log below */
        size_t n = strnlen(reason, sizeof(cl->fatal_reason) - 1);
        memcpy(cl->fatal_reason, reason, n);
        cl->fatal_reason[n] = '\0';
        atomic_store(&cl->fatal, true);
    }
    pthread_mutex_unlock(&cl->lock);
    if (first)
        kf_log(KF_LOG_ERROR, "kafka client hit a fatal error", "client", client, "reason", reason,
               (char *)NULL);
}

static void error_cb(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    kf_kafka_client *cl = opaque;
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof(buf));
        char full[700];
        snprintf(full, sizeof(full), "%s: %s", rd_kafka_err2name(orig), buf);
        if (cl)
            kf_kafka_fatal_record(cl, rd_kafka_name(rk), full);
        return;
    }
    /* Other client errors are informational: librdkafka recovers by itself, but an operator
     * wants to see brokers going away. */
    kf_log_level lvl = (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ||
                        code == RD_KAFKA_RESP_ERR__AUTHENTICATION || code == RD_KAFKA_RESP_ERR__SSL)
                           ? KF_LOG_ERROR
                           : KF_LOG_WARN;
    kf_log(lvl, "kafka client error", "client", rd_kafka_name(rk), "error",
           rd_kafka_err2name((rd_kafka_resp_err_t)code), "reason", reason, (char *)NULL);
}

bool kf_kafka_kv_find(const char *const *kv, size_t npairs, const char *key, const char **value_out)
{
    bool found = false;
    for (size_t i = 0; i < npairs; i++) {
        if (kv[2 * i] && strcmp(kv[2 * i], key) == 0) {
            found = true;
            if (value_out)
                *value_out = kv[2 * i + 1];
        }
    }
    return found;
}

/* ---- which client reads a property ---- */

/* Workers hand every "kafka." key to each of their clients, a consumer and a producer alike,
 * and librdkafka warns about each key the other kind of client reads ("... is a consumer
 * property and will be ignored by this producer instance"). Its own property table (the one
 * behind CONFIGURATION.md, column C/P) says which client reads which key, for the version
 * that is loaded: a key only the other kind reads is left out of the configuration. */
typedef struct scoped_prop {
    char *name;
    char scope; /* 'C' consumer only, 'P' producer only */
} scoped_prop;

static pthread_once_t scope_once = PTHREAD_ONCE_INIT;
static scoped_prop *scope_props;
static size_t scope_nprops;

/* Trims spaces around [b, e) in place; returns the start, NUL-terminated. */
static char *trim(char *b, char *e)
{
    while (b < e && *b == ' ')
        b++;
    while (e > b && e[-1] == ' ')
        e--;
    *e = '\0';
    return b;
}

static void scope_load(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return;
    rd_kafka_conf_properties_show(f);
    if (fclose(f) != 0 || !text) {
        free(text);
        return;
    }
    size_t cap = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *bar1 = strchr(line, '|');
        char *bar2 = bar1 ? strchr(bar1 + 1, '|') : NULL;
        if (!bar2)
            continue;
        char *name = trim(line, bar1);
        char *scope = trim(bar1 + 1, bar2);
        if ((strcmp(scope, "C") != 0 && strcmp(scope, "P") != 0) || !*name)
            continue;
        if (scope_nprops == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            scoped_prop *np = realloc(scope_props, ncap * sizeof(*np));
            if (!np)
                break;
            scope_props = np;
            cap = ncap;
        }
        char *copy = strdup(name);
        if (!copy)
            break;
        scope_props[scope_nprops++] = (scoped_prop){.name = copy, .scope = scope[0]};
    }
    free(text);
}

bool kf_kafka_property_ignored(rd_kafka_type_t type, const char *key)
{
    pthread_once(&scope_once, scope_load);
    char other = type == RD_KAFKA_PRODUCER ? 'C' : 'P';
    for (size_t i = 0; i < scope_nprops; i++)
        if (strcmp(scope_props[i].name, key) == 0)
            return scope_props[i].scope == other;
    return false;
}

static int conf_apply(rd_kafka_conf_t *conf, rd_kafka_type_t type, const char *const *kv,
                      size_t npairs, kf_error *err)
{
    char errstr[512];
    for (size_t i = 0; i < npairs; i++) {
        const char *key = kv[2 * i];
        const char *value = kv[2 * i + 1];
        if (!key || !value)
            return kf_error_set(err, KF_ERR_CONFIG, false,
                                "kafka configuration pair %zu has a null key or value", i);
        if (kf_kafka_property_ignored(type, key))
            continue;
        errstr[0] = '\0';
        if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
            return kf_error_set(err, KF_ERR_CONFIG, false,
                                "invalid kafka configuration \"kafka.%s\": %s", key, errstr);
    }
    return KF_OK;
}

rd_kafka_conf_t *kf_kafka_conf_build(rd_kafka_type_t type, const char *const *defaults,
                                     size_t ndefaults, const char *const *kv, size_t npairs,
                                     void *opaque, kf_error *err)
{
    if (npairs && !kv) {
        kf_error_set(err, KF_ERR_INVALID, false, "kafka configuration pairs missing");
        return NULL;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate kafka configuration");
        return NULL;
    }
    if (conf_apply(conf, type, defaults, ndefaults, err) < 0 ||
        conf_apply(conf, type, kv, npairs, err) < 0)
        goto out_destroy_conf;
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, opaque);
    return conf;

out_destroy_conf:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

rd_kafka_t *kf_kafka_handle_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, kf_error *err)
{
    char errstr[512] = "";
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        kf_error_set(err, KF_ERR_CONFIG, false, "could not create kafka %s: %s",
                     type == RD_KAFKA_PRODUCER ? "producer" : "consumer", errstr);
        return NULL;
    }
    return rk;
}

int kf_kafka_fatal_check(kf_kafka_client *cl, rd_kafka_t *rk, kf_error *err)
{
    if (!atomic_load(&cl->fatal)) {
        char buf[512];
        rd_kafka_resp_err_t code = rd_kafka_fatal_error(rk, buf, sizeof(buf));
        if (code == RD_KAFKA_RESP_ERR_NO_ERROR)
            return KF_OK;
        char full[700];
        snprintf(full, sizeof(full), "%s: %s", rd_kafka_err2name(code), buf);
        kf_kafka_fatal_record(cl, rd_kafka_name(rk), full);
    }
    pthread_mutex_lock(&cl->lock);
    kf_error_set(err, KF_ERR_FATAL, false, "kafka client is unusable after a fatal error: %s",
                 cl->fatal_reason);
    pthread_mutex_unlock(&cl->lock);
    return KF_ERR_FATAL;
}

static bool code_retriable(rd_kafka_resp_err_t code)
{
    switch (code) {
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR__RETRY:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS:
    case RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED:
        return true;
    default:
        return false;
    }
}

int kf_kafka_error_set_code(kf_error *err, rd_kafka_resp_err_t code, const char *what)
{
    int kc = code == RD_KAFKA_RESP_ERR__FATAL ? KF_ERR_FATAL : KF_ERR_KAFKA;
    kf_error_set(err, kc, code_retriable(code), "%s: %s (%s)", what, rd_kafka_err2str(code),
                 rd_kafka_err2name(code));
    return kc;
}

int kf_kafka_error_set(kf_error *err, const rd_kafka_error_t *error, const char *what)
{
    int kc = rd_kafka_error_is_fatal(error) ? KF_ERR_FATAL : KF_ERR_KAFKA;
    kf_error_set(err, kc, rd_kafka_error_is_retriable(error), "%s: %s (%s)", what,
                 rd_kafka_error_string(error), rd_kafka_error_name(error));
    return kc;
}
