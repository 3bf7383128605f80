/* The fake schema registry behind kf_fake_registry.h: libmicrohttpd on loopback, state in
 * memory. Included by the test that uses it (tests/common is only an include directory). */
#include "kf_fake_registry.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FAKE_MAX_SCHEMAS  64
#define FAKE_MAX_VERSIONS 128
#define FAKE_MAX_CONFIGS  16
#define FAKE_MAX_BODY     (1024 * 1024)

typedef struct fake_schema {
    int32_t id;
    char *text;
    char *type;
} fake_schema;

typedef struct fake_version {
    char *subject;
    int version;
    int32_t id;
} fake_version;

typedef struct fake_config {
    char *subject;
    char level[32];
} fake_config;

struct kf_fake_registry {
    struct MHD_Daemon *daemon;
    char url[64];
    pthread_mutex_t lock;
    unsigned requests;
    int fail_count;
    int fail_status;
    long delay_ms;
    char *incompatible_marker;
    int32_t next_id;
    fake_schema schemas[FAKE_MAX_SCHEMAS];
    size_t n_schemas;
    fake_version versions[FAKE_MAX_VERSIONS];
    size_t n_versions;
    fake_config configs[FAKE_MAX_CONFIGS];
    size_t n_configs;
    bool have_last;
    kf_fake_request last;
};

/* Per-request state, created by the URI log callback with the raw (still encoded) URI. */
typedef struct fake_request_ctx {
    char *raw_uri;
    char *body;
    size_t body_len;
    bool started;
    bool too_big;
} fake_request_ctx;

static void *fake_on_uri(void *cls, const char *uri, struct MHD_Connection *con)
{
    fake_request_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return NULL;
    ctx->raw_uri = strdup(uri);
    if (!ctx->raw_uri) {
        free(ctx);
        return NULL;
    }
    return ctx;
}

static void fake_on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    fake_request_ctx *ctx = *con_cls;
    if (!ctx)
        return;
    free(ctx->raw_uri);
    free(ctx->body);
    free(ctx);
    *con_cls = NULL;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, s+n) into out (size out_size); false when malformed or too long. */
static bool fake_decode(const char *s, size_t n, char *out, size_t out_size)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (o + 1 >= out_size)
            return false;
        if (s[i] == '%') {
            if (i + 2 >= n)
                return false;
            int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return true;
}

static enum MHD_Result fake_reply(struct MHD_Connection *con, unsigned status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        return MHD_NO;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/vnd.schemaregistry.v1+json");
    enum MHD_Result rc = MHD_queue_response(con, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result fake_error(struct MHD_Connection *con, unsigned status, int code,
                                  const char *message)
{
    return fake_reply(con, status, json_pack("{s:i, s:s}", "error_code", code, "message", message));
}

/* Caller holds f->lock for all the lookups below. */
static fake_schema *fake_schema_by_id(kf_fake_registry *f, int32_t id)
{
    for (size_t i = 0; i < f->n_schemas; i++)
        if (f->schemas[i].id == id)
            return &f->schemas[i];
    return NULL;
}

static fake_schema *fake_schema_by_text(kf_fake_registry *f, const char *text)
{
    for (size_t i = 0; i < f->n_schemas; i++)
        if (strcmp(f->schemas[i].text, text) == 0)
            return &f->schemas[i];
    return NULL;
}

static int fake_subject_versions(kf_fake_registry *f, const char *subject)
{
    int n = 0;
    for (size_t i = 0; i < f->n_versions; i++)
        if (strcmp(f->versions[i].subject, subject) == 0)
            n++;
    return n;
}

static fake_version *fake_version_of(kf_fake_registry *f, const char *subject, int32_t id)
{
    for (size_t i = 0; i < f->n_versions; i++)
        if (strcmp(f->versions[i].subject, subject) == 0 && f->versions[i].id == id)
            return &f->versions[i];
    return NULL;
}

static fake_schema *fake_schema_add(kf_fake_registry *f, int32_t id, const char *text,
                                    const char *type)
{
    if (f->n_schemas == FAKE_MAX_SCHEMAS)
        return NULL;
    fake_schema *s = &f->schemas[f->n_schemas];
    s->text = strdup(text);
    s->type = type ? strdup(type) : NULL;
    if (!s->text || (type && !s->type)) {
        free(s->text);
        free(s->type);
        return NULL;
    }
    s->id = id;
    f->n_schemas++;
    if (id >= f->next_id)
        f->next_id = id + 1;
    return s;
}

static bool fake_incompatible(kf_fake_registry *f, const char *schema)
{
    return f->incompatible_marker && strstr(schema, f->incompatible_marker);
}

static enum MHD_Result fake_register(kf_fake_registry *f, struct MHD_Connection *con,
                                     const char *subject, const char *schema)
{
    fake_schema *s = fake_schema_by_text(f, schema);
    if (s && fake_version_of(f, subject, s->id))
        return fake_reply(con, 200, json_pack("{s:i}", "id", s->id));
    if (fake_subject_versions(f, subject) > 0 && fake_incompatible(f, schema)) {
        char msg[512];
        snprintf(msg, sizeof(msg),
                 "Schema being registered is incompatible with an earlier schema for subject "
                 "\"%s\"",
                 subject);
        return fake_error(con, 409, 409, msg);
    }
    if (!s)
        s = fake_schema_add(f, f->next_id, schema, NULL);
    if (!s || f->n_versions == FAKE_MAX_VERSIONS)
        return fake_error(con, 507, 50001, "fake registry is full");
    fake_version *v = &f->versions[f->n_versions];
    v->subject = strdup(subject);
    if (!v->subject)
        return fake_error(con, 500, 50001, "out of memory");
    v->version = fake_subject_versions(f, subject) + 1;
    v->id = s->id;
    f->n_versions++;
    return fake_reply(con, 200, json_pack("{s:i}", "id", s->id));
}

static enum MHD_Result fake_lookup(kf_fake_registry *f, struct MHD_Connection *con,
                                   const char *subject, const char *schema)
{
    if (fake_subject_versions(f, subject) == 0)
        return fake_error(con, 404, 40401, "Subject not found.");
    fake_schema *s = fake_schema_by_text(f, schema);
    fake_version *v = s ? fake_version_of(f, subject, s->id) : NULL;
    if (!v)
        return fake_error(con, 404, 40403, "Schema not found");
    return fake_reply(con, 200,
                      json_pack("{s:s, s:i, s:i, s:s}", "subject", subject, "version", v->version,
                                "id", v->id, "schema", s->text));
}

static enum MHD_Result fake_set_config(kf_fake_registry *f, struct MHD_Connection *con,
                                       const char *subject, json_t *req)
{
    const char *level = json_string_value(json_object_get(req, "compatibility"));
    if (!level || strlen(level) >= sizeof(f->configs[0].level))
        return fake_error(con, 422, 42203, "Invalid compatibility level");
    fake_config *c = NULL;
    for (size_t i = 0; i < f->n_configs; i++)
        if (strcmp(f->configs[i].subject, subject) == 0)
            c = &f->configs[i];
    if (!c) {
        if (f->n_configs == FAKE_MAX_CONFIGS)
            return fake_error(con, 507, 50001, "fake registry is full");
        c = &f->configs[f->n_configs];
        c->subject = strdup(subject);
        if (!c->subject)
            return fake_error(con, 500, 50001, "out of memory");
        f->n_configs++;
    }
    snprintf(c->level, sizeof(c->level), "%s", level);
    return fake_reply(con, 200, json_pack("{s:s}", "compatibility", level));
}

/* Routes a complete request. Caller holds f->lock. */
static enum MHD_Result fake_route(kf_fake_registry *f, struct MHD_Connection *con,
                                  const char *method, const char *path, json_t *req)
{
    char subject[256];
    const char *schema = json_string_value(json_object_get(req, "schema"));
    size_t n = strlen(path);
    long id;
    int used = 0;

    if (strcmp(method, "GET") == 0 && sscanf(path, "/schemas/ids/%ld%n", &id, &used) == 1 &&
        (size_t)used == n) {
        fake_schema *s = fake_schema_by_id(f, (int32_t)id);
        if (!s) {
            char msg[64];
            snprintf(msg, sizeof(msg), "Schema %ld not found", id);
            return fake_error(con, 404, 40403, msg);
        }
        json_t *o = json_pack("{s:s}", "schema", s->text);
        if (o && s->type)
            json_object_set_new(o, "schemaType", json_string(s->type));
        return fake_reply(con, 200, o);
    }

    const char *seg = NULL, *end = NULL;
    enum { NONE, REGISTER, LOOKUP, COMPAT, CONFIG } op = NONE;
    static const char versions_suffix[] = "/versions";
    static const char latest_suffix[] = "/versions/latest";
    if (strncmp(path, "/subjects/", 10) == 0) {
        seg = path + 10;
        end = strchr(seg, '/');
        if (!end) {
            end = path + n;
            op = LOOKUP;
        } else if (strcmp(end, versions_suffix) == 0) {
            op = REGISTER;
        }
    } else if (strncmp(path, "/compatibility/subjects/", 24) == 0) {
        seg = path + 24;
        end = strchr(seg, '/');
        if (end && strcmp(end, latest_suffix) == 0)
            op = COMPAT;
    } else if (strncmp(path, "/config/", 8) == 0) {
        seg = path + 8;
        end = strchr(seg, '/');
        if (!end) {
            end = path + n;
            op = CONFIG;
        }
    }
    if (op == NONE || !fake_decode(seg, (size_t)(end - seg), subject, sizeof(subject)))
        return fake_error(con, 404, 404, "HTTP 404 Not Found");

    bool post = strcmp(method, "POST") == 0;
    if (op == CONFIG && strcmp(method, "PUT") == 0)
        return fake_set_config(f, con, subject, req);
    if (!post)
        return fake_error(con, 405, 405, "HTTP 405 Method Not Allowed");
    if (!schema)
        return fake_error(con, 422, 42201,
                          "Either the input schema or one its references is "
                          "invalid");
    if (op == REGISTER)
        return fake_register(f, con, subject, schema);
    if (op == LOOKUP)
        return fake_lookup(f, con, subject, schema);
    if (fake_subject_versions(f, subject) == 0)
        return fake_error(con, 404, 40401, "Subject not found.");
    return fake_reply(con, 200, json_pack("{s:b}", "is_compatible", !fake_incompatible(f, schema)));
}

static void fake_copy(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

static enum MHD_Result fake_handle(void *cls, struct MHD_Connection *con, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
    kf_fake_registry *f = cls;
    fake_request_ctx *ctx = *con_cls;
    if (!ctx)
        return MHD_NO;
    if (!ctx->started) {
        ctx->started = true;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (ctx->body_len + *upload_data_size > FAKE_MAX_BODY) {
            ctx->too_big = true;
        } else {
            char *grown = realloc(ctx->body, ctx->body_len + *upload_data_size + 1);
            if (!grown)
                return MHD_NO;
            memcpy(grown + ctx->body_len, upload_data, *upload_data_size);
            ctx->body = grown;
            ctx->body_len += *upload_data_size;
            ctx->body[ctx->body_len] = '\0';
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    pthread_mutex_lock(&f->lock);
    long delay = f->delay_ms;
    pthread_mutex_unlock(&f->lock);
    if (delay > 0) {
        struct timespec ts = {.tv_sec = delay / 1000, .tv_nsec = (delay % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }

    char *q = strchr(ctx->raw_uri, '?');
    if (q)
        *q = '\0';
    json_t *req = ctx->body_len ? json_loadb(ctx->body, ctx->body_len, 0, NULL) : NULL;

    pthread_mutex_lock(&f->lock);
    f->requests++;
    f->have_last = true;
    fake_copy(f->last.method, sizeof(f->last.method), method);
    fake_copy(f->last.raw_path, sizeof(f->last.raw_path), ctx->raw_uri);
    fake_copy(f->last.authorization, sizeof(f->last.authorization),
              MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Authorization"));
    fake_copy(f->last.content_type, sizeof(f->last.content_type),
              MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Type"));
    fake_copy(f->last.body, sizeof(f->last.body), ctx->body);
    enum MHD_Result rc;
    if (f->fail_count > 0) {
        f->fail_count--;
        rc =
            fake_error(con, (unsigned)f->fail_status, f->fail_status * 100 + 1, "injected failure");
    } else if (ctx->too_big) {
        rc = fake_error(con, 413, 413, "request body too large");
    } else if (ctx->body_len && !req) {
        rc = fake_error(con, 400, 400, "body is not JSON");
    } else {
        rc = fake_route(f, con, method, ctx->raw_uri, req);
    }
    pthread_mutex_unlock(&f->lock);
    json_decref(req);
    return rc;
}

kf_fake_registry *kf_fake_registry_start(void)
{
    kf_fake_registry *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    if (pthread_mutex_init(&f->lock, NULL) != 0)
        goto out_free;
    f->next_id = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                                 NULL, NULL, fake_handle, f, MHD_OPTION_SOCK_ADDR, &addr,
                                 MHD_OPTION_URI_LOG_CALLBACK, fake_on_uri, f,
                                 MHD_OPTION_NOTIFY_COMPLETED, fake_on_completed, f, MHD_OPTION_END);
    if (!f->daemon)
        goto out_destroy_lock;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(f->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (!info || !info->port)
        goto out_stop_daemon;
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u", (unsigned)info->port);
    return f;

out_stop_daemon:
    MHD_stop_daemon(f->daemon);
out_destroy_lock:
    pthread_mutex_destroy(&f->lock);
out_free:
    free(f);
    return NULL;
}

void kf_fake_registry_stop(kf_fake_registry *f)
{
    if (!f)
        return;
    MHD_stop_daemon(f->daemon);
    for (size_t i = 0; i < f->n_schemas; i++) {
        free(f->schemas[i].text);
        free(f->schemas[i].type);
    }
    for (size_t i = 0; i < f->n_versions; i++)
        free(f->versions[i].subject);
    for (size_t i = 0; i < f->n_configs; i++)
        free(f->configs[i].subject);
    free(f->incompatible_marker);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

kf_registry *kf_fake_registry_client_new(const kf_registry_config *cfg, kf_fake_registry **fake)
{
    *fake = kf_fake_registry_start();
    if (!*fake)
        return NULL;
    kf_registry_config rc = cfg ? *cfg : (kf_registry_config){0};
    rc.url = kf_fake_registry_url(*fake);
    kf_error err;
    kf_registry *reg = kf_registry_new(&rc, &err);
    if (!reg) {
        fprintf(stderr, "could not create a registry client on the fake: %s\n", err.message);
        kf_fake_registry_stop(*fake);
        *fake = NULL;
    }
    return reg;
}

void kf_fake_registry_client_destroy(kf_registry *reg, kf_fake_registry *fake)
{
    kf_registry_destroy(reg);
    kf_fake_registry_stop(fake);
}

const char *kf_fake_registry_url(const kf_fake_registry *f)
{
    return f->url;
}

void kf_fake_registry_fail_next(kf_fake_registry *f, int count, int status)
{
    pthread_mutex_lock(&f->lock);
    f->fail_count = count;
    f->fail_status = status;
    pthread_mutex_unlock(&f->lock);
}

void kf_fake_registry_set_delay_ms(kf_fake_registry *f, long ms)
{
    pthread_mutex_lock(&f->lock);
    f->delay_ms = ms;
    pthread_mutex_unlock(&f->lock);
}

void kf_fake_registry_set_incompatible_marker(kf_fake_registry *f, const char *marker)
{
    pthread_mutex_lock(&f->lock);
    free(f->incompatible_marker);
    f->incompatible_marker = marker ? strdup(marker) : NULL;
    pthread_mutex_unlock(&f->lock);
}

bool kf_fake_registry_add_schema(kf_fake_registry *f, int32_t id, const char *schema,
                                 const char *type)
{
    pthread_mutex_lock(&f->lock);
    bool ok = fake_schema_add(f, id, schema, type) != NULL;
    pthread_mutex_unlock(&f->lock);
    return ok;
}

unsigned kf_fake_registry_requests(kf_fake_registry *f)
{
    pthread_mutex_lock(&f->lock);
    unsigned n = f->requests;
    pthread_mutex_unlock(&f->lock);
    return n;
}

bool kf_fake_registry_last(kf_fake_registry *f, kf_fake_request *out)
{
    pthread_mutex_lock(&f->lock);
    bool have = f->have_last;
    if (have)
        *out = f->last;
    pthread_mutex_unlock(&f->lock);
    return have;
}

void kf_fake_registry_compatibility(kf_fake_registry *f, const char *subject, char *out,
                                    size_t out_size)
{
    pthread_mutex_lock(&f->lock);
    fake_copy(out, out_size, "");
    for (size_t i = 0; i < f->n_configs; i++)
        if (strcmp(f->configs[i].subject, subject) == 0)
            fake_copy(out, out_size, f->configs[i].level);
    pthread_mutex_unlock(&f->lock);
}
