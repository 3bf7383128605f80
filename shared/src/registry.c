/* Schema registry client over libcurl (Confluent REST API): register, fetch by id, lookup,
 * compatibility, subject deletion, with id and (subject, schema) caches and retries on
 * transient failures. */
#include "kfleet/registry.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kfleet/log.h"
#include "kfleet/retry.h"

#define CONTENT_TYPE        "application/vnd.schemaregistry.v1+json"
#define RESPONSE_LIMIT      (16u * 1024u * 1024u) /* bigger answers are refused */
#define BODY_SNIPPET        160                   /* bytes of a non-JSON error body quoted */
#define DEFAULT_TIMEOUT_MS  10000L
#define DEFAULT_RETRIES     5
#define DEFAULT_BACKOFF_MS  100L
#define DEFAULT_BACKOFF_MAX 5000L
#define DEFAULT_SUBJECT_MAX 4096

/* id -> schema text; open addressing, the text pointers never move once stored. */
typedef struct id_slot {
    bool used;
    int32_t id;
    char *schema;
} id_slot;

/* (subject, schema text) -> id and version (0 when only known from a registration). */
typedef struct subject_slot {
    bool used;
    uint64_t hash;
    char *subject;
    char *schema;
    int32_t id;
    int version;
} subject_slot;

struct kf_registry {
    char *base_url; /* without a trailing slash */
    long timeout_ms;
    int max_retries;
    long backoff_initial_ms;
    long backoff_max_ms;
    size_t subject_cache_max;

    /* The easy handle, its headers and the response buffer serve one request at a time;
     * caches have their own lock so hits never wait on the network. */
    pthread_mutex_t http_lock;
    CURL *curl;
    struct curl_slist *headers;
    char curl_errbuf[CURL_ERROR_SIZE];
    char *resp;
    size_t resp_len;
    size_t resp_cap;
    bool resp_overflow;
    bool resp_nomem;

    pthread_mutex_t cache_lock;
    id_slot *ids;
    size_t ids_cap; /* power of two */
    size_t ids_count;
    subject_slot *subjects;
    size_t subjects_cap; /* power of two */
    size_t subjects_count;

    atomic_uint_fast64_t http_requests;
    atomic_uint_fast64_t retries;
    atomic_uint_fast64_t cache_hits;
};

/* The outcome of one HTTP exchange that reached the registry. */
typedef struct http_reply {
    long status;
    json_t *json; /* NULL when the body is not JSON */
    char snippet[BODY_SNIPPET + 1];
} http_reply;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_global_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static uint64_t hash_bytes(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t subject_hash(const char *subject, const char *schema)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = hash_bytes(h, subject, strlen(subject) + 1); /* the NUL separates the two keys */
    return hash_bytes(h, schema, strlen(schema));
}

static size_t id_index(int32_t id, size_t mask)
{
    uint64_t x = (uint64_t)(uint32_t)id * 0x9e3779b97f4a7c15ULL;
    return (size_t)(x >> 32) & mask;
}

/* Caller holds cache_lock. */
static const char *id_cache_find(const kf_registry *r, int32_t id)
{
    size_t mask = r->ids_cap - 1;
    for (size_t i = id_index(id, mask);; i = (i + 1) & mask) {
        if (!r->ids[i].used)
            return NULL;
        if (r->ids[i].id == id)
            return r->ids[i].schema;
    }
}

/* Caller holds cache_lock. Takes ownership of schema on success. */
static int id_cache_insert(kf_registry *r, int32_t id, char *schema)
{
    if ((r->ids_count + 1) * 2 > r->ids_cap) {
        size_t cap = r->ids_cap * 2;
        id_slot *grown = calloc(cap, sizeof(*grown));
        if (!grown)
            return KF_ERR_NOMEM;
        for (size_t i = 0; i < r->ids_cap; i++) {
            if (!r->ids[i].used)
                continue;
            size_t j = id_index(r->ids[i].id, cap - 1);
            while (grown[j].used)
                j = (j + 1) & (cap - 1);
            grown[j] = r->ids[i];
        }
        free(r->ids);
        r->ids = grown;
        r->ids_cap = cap;
    }
    size_t mask = r->ids_cap - 1;
    size_t i = id_index(id, mask);
    while (r->ids[i].used)
        i = (i + 1) & mask;
    r->ids[i] = (id_slot){.used = true, .id = id, .schema = schema};
    r->ids_count++;
    return KF_OK;
}

/* Caller holds cache_lock. */
static subject_slot *subject_cache_find(kf_registry *r, uint64_t hash, const char *subject,
                                        const char *schema)
{
    size_t mask = r->subjects_cap - 1;
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        subject_slot *s = &r->subjects[i];
        if (!s->used)
            return NULL;
        if (s->hash == hash && strcmp(s->subject, subject) == 0 && strcmp(s->schema, schema) == 0)
            return s;
    }
}

/* Records id (and version when known) for the pair; copies subject and schema. */
static int subject_cache_store(kf_registry *r, const char *subject, const char *schema, int32_t id,
                               int version)
{
    uint64_t hash = subject_hash(subject, schema);
    int rc = KF_OK;
    pthread_mutex_lock(&r->cache_lock);
    subject_slot *found = subject_cache_find(r, hash, subject, schema);
    if (found) {
        found->id = id;
        if (version > 0)
            found->version = version;
        goto out_unlock;
    }
    if (r->subjects_count >= r->subject_cache_max) {
        /* nothing borrows these entries, so dropping them only costs a request each */
        for (size_t i = 0; i < r->subjects_cap; i++) {
            free(r->subjects[i].subject);
            free(r->subjects[i].schema);
        }
        memset(r->subjects, 0, r->subjects_cap * sizeof(*r->subjects));
        r->subjects_count = 0;
    }
    if ((r->subjects_count + 1) * 2 > r->subjects_cap) {
        size_t cap = r->subjects_cap * 2;
        subject_slot *grown = calloc(cap, sizeof(*grown));
        if (!grown) {
            rc = KF_ERR_NOMEM;
            goto out_unlock;
        }
        for (size_t i = 0; i < r->subjects_cap; i++) {
            if (!r->subjects[i].used)
                continue;
            size_t j = (size_t)r->subjects[i].hash & (cap - 1);
            while (grown[j].used)
                j = (j + 1) & (cap - 1);
            grown[j] = r->subjects[i];
        }
        free(r->subjects);
        r->subjects = grown;
        r->subjects_cap = cap;
    }
    char *subject_copy = strdup(subject);
    char *schema_copy = strdup(schema);
    if (!subject_copy || !schema_copy) {
        free(subject_copy);
        free(schema_copy);
        rc = KF_ERR_NOMEM;
        goto out_unlock;
    }
    size_t mask = r->subjects_cap - 1;
    size_t i = (size_t)hash & mask;
    while (r->subjects[i].used)
        i = (i + 1) & mask;
    r->subjects[i] = (subject_slot){.used = true,
                                    .hash = hash,
                                    .subject = subject_copy,
                                    .schema = schema_copy,
                                    .id = id,
                                    .version = version};
    r->subjects_count++;
out_unlock:
    pthread_mutex_unlock(&r->cache_lock);
    return rc;
}

/* Drops every cached pair of subject. The table is rebuilt without them (open addressing
 * cannot simply clear a slot); when that cannot be allocated the whole cache is dropped, which
 * only costs a request per pair. */
static void subject_cache_forget(kf_registry *r, const char *subject)
{
    pthread_mutex_lock(&r->cache_lock);
    size_t matched = 0;
    for (size_t i = 0; i < r->subjects_cap; i++)
        if (r->subjects[i].used && strcmp(r->subjects[i].subject, subject) == 0)
            matched++;
    if (matched == 0)
        goto out_unlock;
    subject_slot *kept = calloc(r->subjects_cap, sizeof(*kept));
    size_t mask = r->subjects_cap - 1;
    for (size_t i = 0; i < r->subjects_cap; i++) {
        subject_slot *s = &r->subjects[i];
        if (!s->used)
            continue;
        if (!kept || strcmp(s->subject, subject) == 0) {
            free(s->subject);
            free(s->schema);
            continue;
        }
        size_t j = (size_t)s->hash & mask;
        while (kept[j].used)
            j = (j + 1) & mask;
        kept[j] = *s;
    }
    if (kept) {
        free(r->subjects);
        r->subjects = kept;
        r->subjects_count -= matched;
    } else {
        memset(r->subjects, 0, r->subjects_cap * sizeof(*r->subjects));
        r->subjects_count = 0;
    }
out_unlock:
    pthread_mutex_unlock(&r->cache_lock);
}

/* Answers from the cache; a lookup (need_version) needs an entry with a known version. */
static bool subject_cache_get(kf_registry *r, const char *subject, const char *schema,
                              bool need_version, int32_t *id_out, int *version_out)
{
    uint64_t hash = subject_hash(subject, schema);
    bool hit = false;
    pthread_mutex_lock(&r->cache_lock);
    const subject_slot *s = subject_cache_find(r, hash, subject, schema);
    if (s && (!need_version || s->version > 0)) {
        *id_out = s->id;
        if (version_out)
            *version_out = s->version;
        hit = true;
    }
    pthread_mutex_unlock(&r->cache_lock);
    if (hit)
        atomic_fetch_add(&r->cache_hits, 1);
    return hit;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    kf_registry *r = ctx;
    size_t n = size * nmemb;
    if (r->resp_len + n + 1 > RESPONSE_LIMIT) {
        r->resp_overflow = true;
        return 0;
    }
    if (r->resp_len + n + 1 > r->resp_cap) {
        size_t cap = r->resp_cap ? r->resp_cap : 4096;
        while (cap < r->resp_len + n + 1)
            cap *= 2;
        char *grown = realloc(r->resp, cap);
        if (!grown) {
            r->resp_nomem = true;
            return 0;
        }
        r->resp = grown;
        r->resp_cap = cap;
    }
    memcpy(r->resp + r->resp_len, data, n);
    r->resp_len += n;
    r->resp[r->resp_len] = '\0';
    return n;
}

/* Transport failures a later attempt may get past. */
static bool curl_code_retriable(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Copies the start of a non-JSON body, printable characters only, for error messages. */
static void fill_snippet(char *out, const char *body, size_t len)
{
    size_t n = len < BODY_SNIPPET ? len : BODY_SNIPPET;
    for (size_t i = 0; i < n; i++)
        out[i] = (body[i] >= 0x20 && body[i] < 0x7f) ? body[i] : ' ';
    out[n] = '\0';
}

/* One attempt. Caller holds http_lock. Returns the curl code; fills reply when it is OK. */
static CURLcode http_attempt(kf_registry *r, const char *method, const char *url, const char *body,
                             http_reply *reply)
{
    CURL *c = r->curl;
    r->resp_len = 0;
    r->resp_overflow = false;
    r->resp_nomem = false;
    r->curl_errbuf[0] = '\0';
    if (r->resp)
        r->resp[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, strcmp(method, "POST") == 0 ? NULL : method);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, strcmp(method, "GET") == 0 ? NULL : method);
    }
    atomic_fetch_add(&r->http_requests, 1);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK)
        return rc;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply->status);
    reply->json = r->resp_len ? json_loadb(r->resp, r->resp_len, 0, NULL) : NULL;
    fill_snippet(reply->snippet, r->resp ? r->resp : "", r->resp_len);
    return CURLE_OK;
}

/* The registry's "message" (or the start of a non-JSON body) for error texts. */
static const char *reply_message(const http_reply *reply)
{
    const char *m = json_string_value(json_object_get(reply->json, "message"));
    if (m)
        return m;
    return reply->snippet[0] ? reply->snippet : "(empty body)";
}

static int reply_error_code(const http_reply *reply)
{
    return (int)json_integer_value(json_object_get(reply->json, "error_code"));
}

/* Sends one request, retrying transport errors and 5xx with backoff. On KF_OK, reply holds
 * a status below 500 and the caller must json_decref(reply->json). `what` names the
 * operation for messages ("register schema under subject \"x\""). */
static int http_call(kf_registry *r, const char *method, const char *path, const char *body,
                     const char *what, http_reply *reply, kf_error *err)
{
    size_t url_len = strlen(r->base_url) + strlen(path) + 1;
    char *url = malloc(url_len);
    if (!url)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not %s: out of memory", what);
    snprintf(url, url_len, "%s%s", r->base_url, path);
    /* Decorrelated jitter: the ceiling grows exponentially up to the cap, and no delay is
     * shorter than the initial one, so a fleet never retries a struggling registry at once. */
    kf_backoff backoff;
    if (kf_backoff_init(&backoff, (uint64_t)r->backoff_initial_ms, (uint64_t)r->backoff_max_ms, 2.0,
                        KF_JITTER_DECORRELATED, kf_retry_seed(), err) != KF_OK) {
        free(url);
        return KF_ERR_INVALID;
    }

    int rc = KF_OK;
    int attempts = r->max_retries + 1;
    for (int attempt = 0; attempt < attempts; attempt++) {
        if (attempt > 0)
            atomic_fetch_add(&r->retries, 1);
        memset(reply, 0, sizeof(*reply));
        pthread_mutex_lock(&r->http_lock);
        CURLcode cc = http_attempt(r, method, url, body, reply);
        bool overflow = r->resp_overflow;
        bool nomem = r->resp_nomem || cc == CURLE_OUT_OF_MEMORY;
        char reason[CURL_ERROR_SIZE + 64];
        if (cc != CURLE_OK)
            snprintf(reason, sizeof(reason), "%s",
                     r->curl_errbuf[0] ? r->curl_errbuf : curl_easy_strerror(cc));
        pthread_mutex_unlock(&r->http_lock);

        bool retry;
        if (cc != CURLE_OK) {
            retry = curl_code_retriable(cc);
            if (overflow) {
                rc = kf_error_set(err, KF_ERR_REGISTRY, false,
                                  "could not %s (%s %s): response larger than %u bytes", what,
                                  method, path, RESPONSE_LIMIT);
                break;
            }
            if (!retry || attempt + 1 == attempts) {
                rc = kf_error_set(err, nomem ? KF_ERR_NOMEM : KF_ERR_REGISTRY, retry,
                                  "could not %s (%s %s): %s (after %d attempt%s)", what, method,
                                  path, reason, attempt + 1, attempt ? "s" : "");
                break;
            }
        } else if (reply->status >= 500) {
            if (attempt + 1 == attempts) {
                rc = kf_error_set(err, KF_ERR_REGISTRY, true,
                                  "could not %s (%s %s): HTTP %ld: %s (after %d attempt%s)", what,
                                  method, path, reply->status, reply_message(reply), attempt + 1,
                                  attempt ? "s" : "");
                json_decref(reply->json);
                reply->json = NULL;
                break;
            }
            snprintf(reason, sizeof(reason), "HTTP %ld", reply->status);
            json_decref(reply->json);
            reply->json = NULL;
        } else {
            rc = KF_OK;
            break;
        }
        long delay = (long)kf_backoff_next_ms(&backoff);
        char attempt_s[16], delay_s[24];
        snprintf(attempt_s, sizeof(attempt_s), "%d", attempt + 1);
        snprintf(delay_s, sizeof(delay_s), "%ld", delay);
        kf_log(KF_LOG_WARN, "schema registry request failed, retrying", "method", method, "path",
               path, "attempt", attempt_s, "delay_ms", delay_s, "reason", reason, (char *)NULL);
        sleep_ms(delay);
    }
    free(url);
    return rc;
}

/* Maps a 4xx reply (or an unexpected status) to an error; reply->json is left to the caller. */
static int reply_error(const http_reply *reply, const char *method, const char *path,
                       const char *what, kf_error *err)
{
    int ec = reply_error_code(reply);
    int code = KF_ERR_REGISTRY;
    bool retriable = false;
    if (reply->status == 409)
        code = KF_ERR_INCOMPATIBLE;
    else if (reply->status == 404 && (ec == 40401 || ec == 40402 || ec == 40403))
        code = KF_ERR_NOT_FOUND;
    else if (reply->status == 408 || reply->status == 429)
        retriable = true;
    if (ec)
        return kf_error_set(err, code, retriable,
                            "could not %s (%s %s): HTTP %ld, error code %d: %s", what, method, path,
                            reply->status, ec, reply_message(reply));
    return kf_error_set(err, code, retriable, "could not %s (%s %s): HTTP %ld: %s", what, method,
                        path, reply->status, reply_message(reply));
}

/* Percent-encodes everything but RFC 3986 unreserved characters. Returns malloc'd text. */
static char *url_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(n * 3 + 1);
    if (!out)
        return NULL;
    char *p = out;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '.' || *c == '_' || *c == '~') {
            *p++ = (char)*c;
        } else {
            *p++ = '%';
            *p++ = hex[*c >> 4];
            *p++ = hex[*c & 0xf];
        }
    }
    *p = '\0';
    return out;
}

/* prefix + escaped subject + suffix, malloc'd; NULL when out of memory. */
static char *subject_path(const char *prefix, const char *subject, const char *suffix)
{
    char *esc = url_escape(subject);
    if (!esc)
        return NULL;
    size_t n = strlen(prefix) + strlen(esc) + strlen(suffix) + 1;
    char *path = malloc(n);
    if (path)
        snprintf(path, n, "%s%s%s", prefix, esc, suffix);
    free(esc);
    return path;
}

/* {"schema": ..., "schemaType": "AVRO"} as compact JSON, malloc'd; NULL if not UTF-8 or OOM. */
static char *schema_body(const char *schema_json)
{
    json_t *o = json_pack("{s:s, s:s}", "schema", schema_json, "schemaType", "AVRO");
    if (!o)
        return NULL;
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

static bool json_int32(json_t *v, int32_t *out)
{
    if (!json_is_integer(v))
        return false;
    json_int_t x = json_integer_value(v);
    if (x < 0 || x > INT32_MAX)
        return false;
    *out = (int32_t)x;
    return true;
}

kf_registry *kf_registry_new(const kf_registry_config *cfg, kf_error *err)
{
    if (!cfg || !cfg->url || !cfg->url[0]) {
        kf_error_set(err, KF_ERR_CONFIG, false, "registry url is not set");
        return NULL;
    }
    if (strncmp(cfg->url, "http://", 7) != 0 && strncmp(cfg->url, "https://", 8) != 0) {
        kf_error_set(err, KF_ERR_CONFIG, false,
                     "invalid registry url \"%s\": must start with http:// or https://", cfg->url);
        return NULL;
    }
    if (cfg->timeout_ms < 0 || cfg->backoff_initial_ms < 0 || cfg->backoff_max_ms < 0 ||
        cfg->subject_cache_max < 0) {
        kf_error_set(err, KF_ERR_CONFIG, false,
                     "invalid registry config: timeout, backoff and cache size must not be "
                     "negative");
        return NULL;
    }
    if (cfg->password && !cfg->username) {
        kf_error_set(err, KF_ERR_CONFIG, false,
                     "invalid registry config: password given without a username");
        return NULL;
    }
    pthread_once(&curl_once, curl_global_once);
    if (curl_init_rc != CURLE_OK) {
        kf_error_set(err, KF_ERR_FATAL, false, "could not initialize libcurl: %s",
                     curl_easy_strerror(curl_init_rc));
        return NULL;
    }

    kf_registry *r = calloc(1, sizeof(*r));
    if (!r)
        goto out_nomem;
    r->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    r->max_retries = cfg->max_retries == 0  ? DEFAULT_RETRIES
                     : cfg->max_retries < 0 ? 0
                                            : cfg->max_retries;
    r->backoff_initial_ms = cfg->backoff_initial_ms ? cfg->backoff_initial_ms : DEFAULT_BACKOFF_MS;
    r->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : DEFAULT_BACKOFF_MAX;
    r->subject_cache_max =
        cfg->subject_cache_max > 0 ? (size_t)cfg->subject_cache_max : DEFAULT_SUBJECT_MAX;
    if (r->backoff_max_ms < r->backoff_initial_ms)
        r->backoff_max_ms = r->backoff_initial_ms;

    r->base_url = strdup(cfg->url);
    if (!r->base_url)
        goto out_free_registry;
    size_t n = strlen(r->base_url);
    while (n > 0 && r->base_url[n - 1] == '/')
        r->base_url[--n] = '\0';

    r->ids_cap = 64;
    r->ids = calloc(r->ids_cap, sizeof(*r->ids));
    r->subjects_cap = 64;
    r->subjects = calloc(r->subjects_cap, sizeof(*r->subjects));
    if (!r->ids || !r->subjects)
        goto out_free_tables;

    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: " CONTENT_TYPE);
    if (h)
        h = curl_slist_append(h, "Accept: " CONTENT_TYPE ", application/vnd.schemaregistry+json; "
                                 "qs=0.9, application/json; qs=0.5");
    if (h)
        h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip for large schemas */
    if (!h)
        goto out_free_tables;
    r->headers = h;

    r->curl = curl_easy_init();
    if (!r->curl)
        goto out_free_headers;
    CURL *c = r->curl;
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->curl_errbuf);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "kfleet/" KFLEET_VERSION);
    if (cfg->username) {
        if (curl_easy_setopt(c, CURLOPT_USERNAME, cfg->username) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_PASSWORD, cfg->password ? cfg->password : "") != CURLE_OK)
            goto out_cleanup_curl;
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    }

    if (pthread_mutex_init(&r->http_lock, NULL) != 0)
        goto out_cleanup_curl;
    if (pthread_mutex_init(&r->cache_lock, NULL) != 0)
        goto out_destroy_http_lock;
    return r;

out_destroy_http_lock:
    pthread_mutex_destroy(&r->http_lock);
out_cleanup_curl:
    curl_easy_cleanup(r->curl);
out_free_headers:
    curl_slist_free_all(r->headers);
out_free_tables:
    free(r->ids);
    free(r->subjects);
    free(r->base_url);
out_free_registry:
    free(r);
out_nomem:
    kf_error_set(err, KF_ERR_NOMEM, false, "could not create registry client: out of memory");
    return NULL;
}

void kf_registry_destroy(kf_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ids_cap; i++)
        free(r->ids[i].schema);
    free(r->ids);
    for (size_t i = 0; i < r->subjects_cap; i++) {
        free(r->subjects[i].subject);
        free(r->subjects[i].schema);
    }
    free(r->subjects);
    curl_easy_cleanup(r->curl);
    curl_slist_free_all(r->headers);
    free(r->resp);
    free(r->base_url);
    pthread_mutex_destroy(&r->cache_lock);
    pthread_mutex_destroy(&r->http_lock);
    free(r);
}

static int check_args(kf_registry *r, const char *subject, const char *schema_json, const void *out,
                      const char *op, kf_error *err)
{
    if (!r || !subject || !out || (op && !schema_json))
        return kf_error_set(err, KF_ERR_INVALID, false, "cannot %s: NULL argument",
                            op ? op : "call the registry");
    if (!subject[0])
        return kf_error_set(err, KF_ERR_INVALID, false, "cannot %s: empty subject",
                            op ? op : "call the registry");
    return KF_OK;
}

/* Shared by register and lookup: POST the schema to path, return the parsed reply. */
static int post_schema(kf_registry *r, const char *path, const char *schema_json, const char *what,
                       http_reply *reply, kf_error *err)
{
    char *body = schema_body(schema_json);
    if (!body)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "could not %s: schema text is not valid UTF-8 (or out of memory)",
                            what);
    int rc = http_call(r, "POST", path, body, what, reply, err);
    free(body);
    return rc;
}

int kf_registry_register(kf_registry *r, const char *subject, const char *schema_json,
                         int32_t *id_out, kf_error *err)
{
    int rc = check_args(r, subject, schema_json, id_out, "register schema", err);
    if (rc)
        return rc;
    int32_t id;
    if (subject_cache_get(r, subject, schema_json, false, &id, NULL)) {
        *id_out = id;
        return KF_OK;
    }
    char what[320];
    snprintf(what, sizeof(what), "register schema under subject \"%s\"", subject);
    char *path = subject_path("/subjects/", subject, "/versions");
    if (!path)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not %s: out of memory", what);
    http_reply reply;
    rc = post_schema(r, path, schema_json, what, &reply, err);
    if (rc)
        goto out_free_path;
    if (reply.status / 100 != 2) {
        rc = reply_error(&reply, "POST", path, what, err);
        goto out_free_reply;
    }
    if (!json_int32(json_object_get(reply.json, "id"), &id)) {
        rc = kf_error_set(err, KF_ERR_REGISTRY, false,
                          "could not %s (POST %s): reply has no valid \"id\": %s", what, path,
                          reply.snippet);
        goto out_free_reply;
    }
    rc = subject_cache_store(r, subject, schema_json, id, 0);
    if (rc) {
        kf_error_set(err, rc, false, "could not %s: out of memory caching the id", what);
        goto out_free_reply;
    }
    *id_out = id;
out_free_reply:
    json_decref(reply.json);
out_free_path:
    free(path);
    return rc;
}

int kf_registry_get_by_id(kf_registry *r, int32_t id, const char **schema_json_out, kf_error *err)
{
    if (!r || !schema_json_out)
        return kf_error_set(err, KF_ERR_INVALID, false, "cannot fetch schema: NULL argument");
    if (id < 0)
        return kf_error_set(err, KF_ERR_INVALID, false, "cannot fetch schema: negative id %ld",
                            (long)id);
    pthread_mutex_lock(&r->cache_lock);
    const char *cached = id_cache_find(r, id);
    pthread_mutex_unlock(&r->cache_lock);
    if (cached) {
        atomic_fetch_add(&r->cache_hits, 1);
        *schema_json_out = cached;
        return KF_OK;
    }

    char what[64], path[48];
    snprintf(what, sizeof(what), "fetch schema with id %ld", (long)id);
    snprintf(path, sizeof(path), "/schemas/ids/%ld", (long)id);
    http_reply reply;
    int rc = http_call(r, "GET", path, NULL, what, &reply, err);
    if (rc)
        return rc;
    if (reply.status / 100 != 2) {
        rc = reply_error(&reply, "GET", path, what, err);
        goto out_free_reply;
    }
    const char *schema = json_string_value(json_object_get(reply.json, "schema"));
    if (!schema) {
        rc = kf_error_set(err, KF_ERR_REGISTRY, false,
                          "could not %s (GET %s): reply has no \"schema\" string: %s", what, path,
                          reply.snippet);
        goto out_free_reply;
    }
    const char *type = json_string_value(json_object_get(reply.json, "schemaType"));
    if (type && strcmp(type, "AVRO") != 0) {
        rc = kf_error_set(err, KF_ERR_DECODE, false,
                          "cannot use schema with id %ld (GET %s): it is a %s schema, not Avro",
                          (long)id, path, type);
        goto out_free_reply;
    }
    char *copy = strdup(schema);
    if (!copy) {
        rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not %s: out of memory", what);
        goto out_free_reply;
    }
    pthread_mutex_lock(&r->cache_lock);
    const char *raced = id_cache_find(r, id); /* another thread fetched it meanwhile */
    if (raced) {
        free(copy);
        *schema_json_out = raced;
    } else if (id_cache_insert(r, id, copy) == KF_OK) {
        *schema_json_out = copy;
    } else {
        free(copy);
        rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not %s: out of memory caching it", what);
    }
    pthread_mutex_unlock(&r->cache_lock);
out_free_reply:
    json_decref(reply.json);
    return rc;
}

int kf_registry_lookup(kf_registry *r, const char *subject, const char *schema_json,
                       int32_t *id_out, int *version_out, kf_error *err)
{
    int rc = check_args(r, subject, schema_json, id_out, "look up schema", err);
    if (rc)
        return rc;
    int32_t id;
    int version;
    if (subject_cache_get(r, subject, schema_json, true, &id, &version)) {
        *id_out = id;
        if (version_out)
            *version_out = version;
        return KF_OK;
    }
    char what[320];
    snprintf(what, sizeof(what), "look up schema under subject \"%s\"", subject);
    char *path = subject_path("/subjects/", subject, "");
    if (!path)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not %s: out of memory", what);
    http_reply reply;
    rc = post_schema(r, path, schema_json, what, &reply, err);
    if (rc)
        goto out_free_path;
    if (reply.status / 100 != 2) {
        rc = reply_error(&reply, "POST", path, what, err);
        goto out_free_reply;
    }
    json_int_t v = json_integer_value(json_object_get(reply.json, "version"));
    if (!json_int32(json_object_get(reply.json, "id"), &id) || v <= 0 || v > INT32_MAX) {
        rc = kf_error_set(err, KF_ERR_REGISTRY, false,
                          "could not %s (POST %s): reply has no valid \"id\" and \"version\": %s",
                          what, path, reply.snippet);
        goto out_free_reply;
    }
    version = (int)v;
    rc = subject_cache_store(r, subject, schema_json, id, version);
    if (rc) {
        kf_error_set(err, rc, false, "could not %s: out of memory caching the id", what);
        goto out_free_reply;
    }
    *id_out = id;
    if (version_out)
        *version_out = version;
out_free_reply:
    json_decref(reply.json);
out_free_path:
    free(path);
    return rc;
}

int kf_registry_test_compatibility(kf_registry *r, const char *subject, const char *schema_json,
                                   bool *compatible_out, kf_error *err)
{
    int rc = check_args(r, subject, schema_json, compatible_out, "test compatibility", err);
    if (rc)
        return rc;
    char what[320];
    snprintf(what, sizeof(what), "test compatibility with subject \"%s\"", subject);
    char *path = subject_path("/compatibility/subjects/", subject, "/versions/latest");
    if (!path)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not %s: out of memory", what);
    http_reply reply;
    rc = post_schema(r, path, schema_json, what, &reply, err);
    if (rc)
        goto out_free_path;
    if (reply.status / 100 != 2) {
        rc = reply_error(&reply, "POST", path, what, err);
        goto out_free_reply;
    }
    json_t *verdict = json_object_get(reply.json, "is_compatible");
    if (!json_is_boolean(verdict)) {
        rc = kf_error_set(err, KF_ERR_REGISTRY, false,
                          "could not %s (POST %s): reply has no \"is_compatible\": %s", what, path,
                          reply.snippet);
        goto out_free_reply;
    }
    *compatible_out = json_is_true(verdict);
out_free_reply:
    json_decref(reply.json);
out_free_path:
    free(path);
    return rc;
}

static bool compatibility_level_valid(const char *level)
{
    static const char *const levels[] = {
        "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE",
        "FULL",     "FULL_TRANSITIVE",     "NONE",
    };
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        if (strcmp(level, levels[i]) == 0)
            return true;
    return false;
}

int kf_registry_set_compatibility(kf_registry *r, const char *subject, const char *level,
                                  kf_error *err)
{
    int rc = check_args(r, subject, level, level, "set compatibility", err);
    if (rc)
        return rc;
    /* validated here: some registries answer an unknown level with HTTP 500, which would be
     * retried in vain */
    if (!compatibility_level_valid(level))
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "cannot set compatibility of subject \"%s\": unknown level \"%s\"",
                            subject, level);
    char what[320];
    snprintf(what, sizeof(what), "set compatibility of subject \"%s\" to %s", subject, level);
    char *path = subject_path("/config/", subject, "");
    if (!path)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not %s: out of memory", what);
    json_t *o = json_pack("{s:s}", "compatibility", level);
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!body) {
        rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not %s: out of memory", what);
        goto out_free_path;
    }
    http_reply reply;
    rc = http_call(r, "PUT", path, body, what, &reply, err);
    if (rc)
        goto out_free_body;
    if (reply.status / 100 != 2)
        rc = reply_error(&reply, "PUT", path, what, err);
    json_decref(reply.json);
out_free_body:
    free(body);
out_free_path:
    free(path);
    return rc;
}

/* One DELETE of subject (soft, or permanent). already_soft: the registry said the subject is
 * soft-deleted (error code 40404), which a permanent delete goes past. */
static int delete_subject_once(kf_registry *r, const char *subject, bool permanent,
                               bool *already_soft, kf_error *err)
{
    char what[320];
    snprintf(what, sizeof(what), "%sdelete subject \"%s\"", permanent ? "permanently " : "",
             subject);
    char *path = subject_path("/subjects/", subject, permanent ? "?permanent=true" : "");
    if (!path)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not %s: out of memory", what);
    http_reply reply;
    int rc = http_call(r, "DELETE", path, NULL, what, &reply, err);
    if (rc)
        goto out_free_path;
    *already_soft = reply.status == 404 && reply_error_code(&reply) == 40404;
    if (reply.status / 100 != 2)
        rc = reply_error(&reply, "DELETE", path, what, err);
    json_decref(reply.json);
out_free_path:
    free(path);
    return rc;
}

int kf_registry_delete_subject(kf_registry *r, const char *subject, bool permanent, kf_error *err)
{
    if (!r || !subject)
        return kf_error_set(err, KF_ERR_INVALID, false, "cannot delete subject: NULL argument");
    if (!subject[0])
        return kf_error_set(err, KF_ERR_INVALID, false, "cannot delete subject: empty subject");
    subject_cache_forget(r, subject);
    bool already_soft = false;
    int rc = delete_subject_once(r, subject, false, &already_soft, err);
    if (already_soft && !permanent) {
        rc = KF_ERR_NOT_FOUND; /* nothing left to soft-delete; err says why */
        if (err)
            err->code = rc;
    }
    if (rc == KF_OK || (already_soft && permanent)) {
        rc = permanent ? delete_subject_once(r, subject, true, &already_soft, err) : KF_OK;
        /* a registration racing with the delete may have cached the subject again */
        subject_cache_forget(r, subject);
    }
    return rc;
}

void kf_registry_get_stats(kf_registry *r, kf_registry_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof(*out));
    if (!r)
        return;
    out->http_requests = atomic_load(&r->http_requests);
    out->retries = atomic_load(&r->retries);
    out->cache_hits = atomic_load(&r->cache_hits);
}
