/* Unit tests for the schema registry client against an in-process fake registry. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kf_fake_registry.c"
#include "kfleet/registry.h"

static const char SCHEMA_V1[] =
    "{\"type\":\"record\",\"name\":\"Value\",\"namespace\":\"shop.orders\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"long\"}]}";
static const char SCHEMA_V2[] =
    "{\"type\":\"record\",\"name\":\"Value\",\"namespace\":\"shop.orders\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"long\"},"
    "{\"name\":\"note\",\"type\":[\"null\",\"string\"],\"default\":null}]}";
static const char SCHEMA_BAD[] =
    "{\"type\":\"record\",\"name\":\"Value\",\"namespace\":\"shop.orders\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"string\",\"doc\":\"BREAKS\"}]}";

typedef struct fixture {
    kf_fake_registry *fake;
    kf_registry *reg;
} fixture;

static kf_registry_config fast_config(const char *url)
{
    return (kf_registry_config){
        .url = url,
        .timeout_ms = 2000,
        .max_retries = 3,
        .backoff_initial_ms = 5,
        .backoff_max_ms = 20,
    };
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    if (!fx)
        return -1;
    kf_registry_config cfg = fast_config(NULL);
    if (!(fx->reg = kf_fake_registry_client_new(&cfg, &fx->fake))) {
        free(fx);
        return -1;
    }
    kf_fake_registry_set_incompatible_marker(fx->fake, "BREAKS");
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    kf_fake_registry_client_destroy(fx->reg, fx->fake);
    free(fx);
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void register_get_lookup_round_trip(void **state)
{
    fixture *fx = *state;
    kf_error err;
    kf_error_clear(&err);
    int32_t id = -1;
    assert_int_equal(kf_registry_register(fx->reg, "orders-value", SCHEMA_V1, &id, &err), KF_OK);
    assert_int_equal(id, 1);

    kf_fake_request last;
    assert_true(kf_fake_registry_last(fx->fake, &last));
    assert_string_equal(last.method, "POST");
    assert_string_equal(last.raw_path, "/subjects/orders-value/versions");
    assert_string_equal(last.content_type, "application/vnd.schemaregistry.v1+json");
    assert_string_equal(last.authorization, "");
    json_t *body = json_loads(last.body, 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "schema")), SCHEMA_V1);
    assert_string_equal(json_string_value(json_object_get(body, "schemaType")), "AVRO");
    json_decref(body);

    const char *text = NULL;
    assert_int_equal(kf_registry_get_by_id(fx->reg, id, &text, &err), KF_OK);
    assert_string_equal(text, SCHEMA_V1);
    assert_true(kf_fake_registry_last(fx->fake, &last));
    assert_string_equal(last.method, "GET");
    assert_string_equal(last.raw_path, "/schemas/ids/1");

    int32_t found = -1;
    int version = -1;
    assert_int_equal(kf_registry_lookup(fx->reg, "orders-value", SCHEMA_V1, &found, &version, &err),
                     KF_OK);
    assert_int_equal(found, id);
    assert_int_equal(version, 1);
    assert_true(kf_fake_registry_last(fx->fake, &last));
    assert_string_equal(last.raw_path, "/subjects/orders-value");

    /* a second subject with the same schema shares the id, as on a real registry */
    int32_t other = -1;
    assert_int_equal(kf_registry_register(fx->reg, "orders-key", SCHEMA_V1, &other, &err), KF_OK);
    assert_int_equal(other, id);
}

static void repeated_register_and_lookup_use_cache(void **state)
{
    fixture *fx = *state;
    kf_error err;
    int32_t id1, id2, id3;
    int version = 0;
    assert_int_equal(kf_registry_register(fx->reg, "c-value", SCHEMA_V1, &id1, &err), KF_OK);
    unsigned after_first = kf_fake_registry_requests(fx->fake);
    assert_int_equal(after_first, 1);
    assert_int_equal(kf_registry_register(fx->reg, "c-value", SCHEMA_V1, &id2, &err), KF_OK);
    assert_int_equal(id2, id1);
    assert_int_equal(kf_fake_registry_requests(fx->fake), 1);

    /* the version is unknown from a registration, so the first lookup asks once */
    assert_int_equal(kf_registry_lookup(fx->reg, "c-value", SCHEMA_V1, &id3, &version, &err),
                     KF_OK);
    assert_int_equal(kf_fake_registry_requests(fx->fake), 2);
    assert_int_equal(kf_registry_lookup(fx->reg, "c-value", SCHEMA_V1, &id3, NULL, &err), KF_OK);
    assert_int_equal(id3, id1);
    assert_int_equal(kf_fake_registry_requests(fx->fake), 2);

    /* a different subject is a different key */
    assert_int_equal(kf_registry_register(fx->reg, "d-value", SCHEMA_V1, &id3, &err), KF_OK);
    assert_int_equal(kf_fake_registry_requests(fx->fake), 3);

    kf_registry_stats st;
    kf_registry_get_stats(fx->reg, &st);
    assert_int_equal(st.http_requests, 3);
    assert_int_equal(st.cache_hits, 2);
    assert_int_equal(st.retries, 0);
}

static void subject_cache_is_bounded(void **state)
{
    fixture *fx = *state;
    kf_registry_config cfg = fast_config(kf_fake_registry_url(fx->fake));
    cfg.subject_cache_max = 2;
    kf_error err;
    kf_registry *reg = kf_registry_new(&cfg, &err);
    assert_non_null(reg);
    int32_t id;
    assert_int_equal(kf_registry_register(reg, "b1-value", SCHEMA_V1, &id, &err), KF_OK);
    assert_int_equal(kf_registry_register(reg, "b2-value", SCHEMA_V1, &id, &err), KF_OK);
    assert_int_equal(kf_registry_register(reg, "b1-value", SCHEMA_V1, &id, &err), KF_OK);
    assert_int_equal(kf_fake_registry_requests(fx->fake), 2); /* both cached */
    /* a third pair flushes the full cache, so b1 costs a request again */
    assert_int_equal(kf_registry_register(reg, "b3-value", SCHEMA_V1, &id, &err), KF_OK);
    assert_int_equal(kf_registry_register(reg, "b1-value", SCHEMA_V1, &id, &err), KF_OK);
    assert_int_equal(kf_fake_registry_requests(fx->fake), 4);
    assert_int_equal(id, 1);
    kf_registry_destroy(reg);
}

static void id_cache_avoids_second_request(void **state)
{
    fixture *fx = *state;
    assert_true(kf_fake_registry_add_schema(fx->fake, 42, SCHEMA_V2, "AVRO"));
    kf_error err;
    const char *first = NULL, *second = NULL;
    assert_int_equal(kf_registry_get_by_id(fx->reg, 42, &first, &err), KF_OK);
    assert_string_equal(first, SCHEMA_V2);
    assert_int_equal(kf_fake_registry_requests(fx->fake), 1);
    assert_int_equal(kf_registry_get_by_id(fx->reg, 42, &second, &err), KF_OK);
    assert_ptr_equal(second, first);
    assert_int_equal(kf_fake_registry_requests(fx->fake), 1);
    kf_registry_stats st;
    kf_registry_get_stats(fx->reg, &st);
    assert_int_equal(st.cache_hits, 1);
}

static void id_cache_holds_many_ids(void **state)
{
    fixture *fx = *state;
    char text[40][64];
    for (int i = 0; i < 40; i++) {
        snprintf(text[i], sizeof(text[i]), "{\"type\":\"fixed\",\"name\":\"F%d\",\"size\":%d}", i,
                 i + 1);
        assert_true(kf_fake_registry_add_schema(fx->fake, 1000 + i * 7, text[i], NULL));
    }
    kf_error err;
    const char *got[40];
    for (int i = 0; i < 40; i++) {
        assert_int_equal(kf_registry_get_by_id(fx->reg, 1000 + i * 7, &got[i], &err), KF_OK);
        assert_string_equal(got[i], text[i]);
    }
    /* pointers handed out earlier survive the table growing */
    for (int i = 0; i < 40; i++) {
        const char *again;
        assert_int_equal(kf_registry_get_by_id(fx->reg, 1000 + i * 7, &again, &err), KF_OK);
        assert_ptr_equal(again, got[i]);
        assert_string_equal(got[i], text[i]);
    }
    assert_int_equal(kf_fake_registry_requests(fx->fake), 40);
}

static void incompatible_register_is_distinct(void **state)
{
    fixture *fx = *state;
    kf_error err;
    int32_t id;
    assert_int_equal(kf_registry_register(fx->reg, "inv-value", SCHEMA_V1, &id, &err), KF_OK);

    bool compatible = true;
    assert_int_equal(
        kf_registry_test_compatibility(fx->reg, "inv-value", SCHEMA_BAD, &compatible, &err), KF_OK);
    assert_false(compatible);
    kf_fake_request last;
    assert_true(kf_fake_registry_last(fx->fake, &last));
    assert_string_equal(last.raw_path, "/compatibility/subjects/inv-value/versions/latest");
    assert_int_equal(
        kf_registry_test_compatibility(fx->reg, "inv-value", SCHEMA_V2, &compatible, &err), KF_OK);
    assert_true(compatible);

    unsigned before = kf_fake_registry_requests(fx->fake);
    kf_error_clear(&err);
    assert_int_equal(kf_registry_register(fx->reg, "inv-value", SCHEMA_BAD, &id, &err),
                     KF_ERR_INCOMPATIBLE);
    assert_int_equal(err.code, KF_ERR_INCOMPATIBLE);
    assert_false(err.retriable);
    assert_non_null(strstr(err.message, "subject \"inv-value\""));
    assert_non_null(strstr(err.message, "POST /subjects/inv-value/versions"));
    assert_non_null(strstr(err.message, "HTTP 409"));
    assert_non_null(strstr(err.message, "incompatible with an earlier schema"));
    assert_int_equal(kf_fake_registry_requests(fx->fake), before + 1); /* no retry */

    /* a failed registration is not cached */
    assert_int_equal(kf_registry_register(fx->reg, "inv-value", SCHEMA_BAD, &id, &err),
                     KF_ERR_INCOMPATIBLE);
    assert_int_equal(kf_fake_registry_requests(fx->fake), before + 2);
}

static void unknown_id_and_schema_are_not_found(void **state)
{
    fixture *fx = *state;
    kf_error err;
    kf_error_clear(&err);
    const char *text = NULL;
    assert_int_equal(kf_registry_get_by_id(fx->reg, 999, &text, &err), KF_ERR_NOT_FOUND);
    assert_null(text);
    assert_false(err.retriable);
    assert_non_null(strstr(err.message, "id 999"));
    assert_non_null(strstr(err.message, "GET /schemas/ids/999"));
    assert_non_null(strstr(err.message, "40403"));
    assert_int_equal(kf_fake_registry_requests(fx->fake), 1);

    int32_t id;
    assert_int_equal(kf_registry_lookup(fx->reg, "nobody-value", SCHEMA_V1, &id, NULL, &err),
                     KF_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "40401"));
    assert_non_null(strstr(err.message, "subject \"nobody-value\""));
    assert_int_equal(kf_registry_register(fx->reg, "some-value", SCHEMA_V1, &id, &err), KF_OK);
    assert_int_equal(kf_registry_lookup(fx->reg, "some-value", SCHEMA_V2, &id, NULL, &err),
                     KF_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "40403"));
}

static void server_errors_are_retried_then_succeed(void **state)
{
    fixture *fx = *state;
    kf_fake_registry_fail_next(fx->fake, 2, 503);
    kf_error err;
    int32_t id = -1;
    assert_int_equal(kf_registry_register(fx->reg, "r-value", SCHEMA_V1, &id, &err), KF_OK);
    assert_int_equal(id, 1);
    assert_int_equal(kf_fake_registry_requests(fx->fake), 3);
    kf_registry_stats st;
    kf_registry_get_stats(fx->reg, &st);
    assert_int_equal(st.http_requests, 3);
    assert_int_equal(st.retries, 2);
}

static void server_errors_exhaust_retries(void **state)
{
    fixture *fx = *state;
    kf_fake_registry_fail_next(fx->fake, 100, 500);
    kf_error err;
    kf_error_clear(&err);
    const char *text;
    assert_int_equal(kf_registry_get_by_id(fx->reg, 5, &text, &err), KF_ERR_REGISTRY);
    assert_true(err.retriable);
    assert_non_null(strstr(err.message, "HTTP 500"));
    assert_non_null(strstr(err.message, "injected failure"));
    assert_non_null(strstr(err.message, "after 4 attempts"));
    assert_non_null(strstr(err.message, "GET /schemas/ids/5"));
    assert_int_equal(kf_fake_registry_requests(fx->fake), 4); /* 1 + max_retries 3 */
}

static void client_errors_are_not_retried(void **state)
{
    fixture *fx = *state;
    kf_error err;
    int32_t id;
    kf_fake_registry_fail_next(fx->fake, 1, 422);
    kf_error_clear(&err);
    assert_int_equal(kf_registry_register(fx->reg, "x-value", SCHEMA_V1, &id, &err),
                     KF_ERR_REGISTRY);
    assert_false(err.retriable);
    assert_non_null(strstr(err.message, "HTTP 422"));
    assert_int_equal(kf_fake_registry_requests(fx->fake), 1);

    kf_fake_registry_fail_next(fx->fake, 1, 401);
    assert_int_equal(kf_registry_register(fx->reg, "x-value", SCHEMA_V1, &id, &err),
                     KF_ERR_REGISTRY);
    assert_false(err.retriable);
    assert_non_null(strstr(err.message, "HTTP 401"));
    assert_int_equal(kf_fake_registry_requests(fx->fake), 2);

    /* a 404 without a schema-registry error code (wrong base URL) is not "not found" */
    kf_registry_config cfg = fast_config(kf_fake_registry_url(fx->fake));
    char url[128];
    snprintf(url, sizeof(url), "%s/wrong/prefix", kf_fake_registry_url(fx->fake));
    cfg.url = url;
    kf_registry *bad = kf_registry_new(&cfg, &err);
    assert_non_null(bad);
    assert_int_equal(kf_registry_register(bad, "x-value", SCHEMA_V1, &id, &err), KF_ERR_REGISTRY);
    assert_non_null(strstr(err.message, "HTTP 404"));
    kf_registry_destroy(bad);
}

/* A loopback port nothing listens on: bound, then closed. */
static int closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

static void connection_refused_is_retriable_and_bounded(void **state)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/apis/ccompat/v7", closed_port());
    kf_registry_config cfg = {
        .url = url, .max_retries = 3, .backoff_initial_ms = 40, .backoff_max_ms = 80};
    kf_error err;
    kf_registry *reg = kf_registry_new(&cfg, &err);
    assert_non_null(reg);
    int32_t id;
    kf_error_clear(&err);
    double t0 = now_s();
    assert_int_equal(kf_registry_register(reg, "down-value", SCHEMA_V1, &id, &err),
                     KF_ERR_REGISTRY);
    double elapsed = now_s() - t0;
    assert_true(err.retriable);
    assert_non_null(strstr(err.message, "subject \"down-value\""));
    assert_non_null(strstr(err.message, "POST /subjects/down-value/versions"));
    assert_non_null(strstr(err.message, "after 4 attempts"));
    kf_registry_stats st;
    kf_registry_get_stats(reg, &st);
    assert_int_equal(st.http_requests, 4);
    assert_int_equal(st.retries, 3);
    /* three delays, each in [initial 40, cap 80] ms: at least 120 ms, at most 240 ms + slack */
    assert_true(elapsed >= 0.115);
    assert_true(elapsed < 2.0);
    kf_registry_destroy(reg);

    cfg.max_retries = -1; /* no retries at all */
    reg = kf_registry_new(&cfg, &err);
    assert_non_null(reg);
    assert_int_equal(kf_registry_register(reg, "down-value", SCHEMA_V1, &id, &err),
                     KF_ERR_REGISTRY);
    assert_true(err.retriable);
    assert_non_null(strstr(err.message, "after 1 attempt)"));
    kf_registry_get_stats(reg, &st);
    assert_int_equal(st.http_requests, 1);
    kf_registry_destroy(reg);
}

static void slow_registry_times_out(void **state)
{
    fixture *fx = *state;
    kf_fake_registry_set_delay_ms(fx->fake, 1500);
    kf_registry_config cfg = fast_config(kf_fake_registry_url(fx->fake));
    cfg.timeout_ms = 100;
    cfg.max_retries = 1;
    kf_error err;
    kf_registry *reg = kf_registry_new(&cfg, &err);
    assert_non_null(reg);
    const char *text;
    kf_error_clear(&err);
    double t0 = now_s();
    assert_int_equal(kf_registry_get_by_id(reg, 1, &text, &err), KF_ERR_REGISTRY);
    double elapsed = now_s() - t0;
    assert_true(err.retriable);
    assert_non_null(strstr(err.message, "timed out"));
    assert_true(elapsed < 1.0); /* two 100 ms timeouts, not two 1.5 s answers */
    kf_registry_destroy(reg);
    kf_fake_registry_set_delay_ms(fx->fake, 0);
}

static void subject_is_url_encoded(void **state)
{
    fixture *fx = *state;
    const char *subject = "db/orders value?#%+é";
    kf_error err;
    int32_t id, found;
    assert_int_equal(kf_registry_register(fx->reg, subject, SCHEMA_V1, &id, &err), KF_OK);
    kf_fake_request last;
    assert_true(kf_fake_registry_last(fx->fake, &last));
    assert_string_equal(last.raw_path, "/subjects/db%2Forders%20value%3F%23%25%2B%C3%A9/versions");
    /* the fake decoded it back to the same subject, so lookup under it finds the schema */
    assert_int_equal(kf_registry_lookup(fx->reg, subject, SCHEMA_V1, &found, NULL, &err), KF_OK);
    assert_int_equal(found, id);
    assert_true(kf_fake_registry_last(fx->fake, &last));
    assert_string_equal(last.raw_path, "/subjects/db%2Forders%20value%3F%23%25%2B%C3%A9");

    assert_int_equal(kf_registry_set_compatibility(fx->reg, subject, "BACKWARD", &err), KF_OK);
    assert_true(kf_fake_registry_last(fx->fake, &last));
    assert_string_equal(last.method, "PUT");
    assert_string_equal(last.raw_path, "/config/db%2Forders%20value%3F%23%25%2B%C3%A9");
    char level[32];
    kf_fake_registry_compatibility(fx->fake, subject, level, sizeof(level));
    assert_string_equal(level, "BACKWARD");
}

static void basic_auth_header_is_sent(void **state)
{
    fixture *fx = *state;
    kf_registry_config cfg = fast_config(kf_fake_registry_url(fx->fake));
    cfg.username = "alice";
    cfg.password = "s3cret";
    kf_error err;
    kf_registry *reg = kf_registry_new(&cfg, &err);
    assert_non_null(reg);
    int32_t id;
    assert_int_equal(kf_registry_register(reg, "auth-value", SCHEMA_V1, &id, &err), KF_OK);
    kf_fake_request last;
    assert_true(kf_fake_registry_last(fx->fake, &last));
    assert_string_equal(last.authorization, "Basic YWxpY2U6czNjcmV0"); /* alice:s3cret */
    const char *text;
    assert_int_equal(kf_registry_get_by_id(reg, id, &text, &err), KF_OK);
    assert_true(kf_fake_registry_last(fx->fake, &last));
    assert_string_equal(last.authorization, "Basic YWxpY2U6czNjcmV0");
    kf_registry_destroy(reg);
}

static void set_compatibility_validates_level(void **state)
{
    fixture *fx = *state;
    kf_error err;
    assert_int_equal(kf_registry_set_compatibility(fx->reg, "lvl-value", "FULL_TRANSITIVE", &err),
                     KF_OK);
    kf_fake_request last;
    assert_true(kf_fake_registry_last(fx->fake, &last));
    json_t *body = json_loads(last.body, 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "compatibility")),
                        "FULL_TRANSITIVE");
    json_decref(body);

    kf_error_clear(&err);
    assert_int_equal(kf_registry_set_compatibility(fx->reg, "lvl-value", "backward", &err),
                     KF_ERR_INVALID);
    assert_non_null(strstr(err.message, "unknown level \"backward\""));
    assert_int_equal(kf_fake_registry_requests(fx->fake), 1);
}

static void non_avro_schema_is_rejected(void **state)
{
    fixture *fx = *state;
    assert_true(kf_fake_registry_add_schema(fx->fake, 7, "syntax = \"proto3\";", "PROTOBUF"));
    kf_error err;
    kf_error_clear(&err);
    const char *text = NULL;
    assert_int_equal(kf_registry_get_by_id(fx->reg, 7, &text, &err), KF_ERR_DECODE);
    assert_non_null(strstr(err.message, "PROTOBUF"));
    assert_null(text);
}

static void compatibility_with_unknown_subject_is_not_found(void **state)
{
    fixture *fx = *state;
    kf_error err;
    bool ok = false;
    assert_int_equal(kf_registry_test_compatibility(fx->reg, "ghost-value", SCHEMA_V1, &ok, &err),
                     KF_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "subject \"ghost-value\""));
}

static void config_and_argument_errors(void **state)
{
    kf_error err;
    kf_registry_config cfg = {0};
    assert_null(kf_registry_new(&cfg, &err));
    assert_int_equal(err.code, KF_ERR_CONFIG);
    assert_null(kf_registry_new(NULL, &err));
    cfg.url = "ftp://127.0.0.1:1";
    assert_null(kf_registry_new(&cfg, &err));
    assert_int_equal(err.code, KF_ERR_CONFIG);
    assert_non_null(strstr(err.message, "ftp://127.0.0.1:1"));
    cfg.url = "http://127.0.0.1:1";
    cfg.timeout_ms = -5;
    assert_null(kf_registry_new(&cfg, &err));
    assert_int_equal(err.code, KF_ERR_CONFIG);
    cfg.timeout_ms = 0;
    cfg.subject_cache_max = -1;
    assert_null(kf_registry_new(&cfg, &err));
    assert_int_equal(err.code, KF_ERR_CONFIG);
    cfg.subject_cache_max = 0;
    cfg.password = "x";
    assert_null(kf_registry_new(&cfg, &err));
    assert_int_equal(err.code, KF_ERR_CONFIG);
    kf_registry_destroy(NULL);

    cfg.password = NULL;
    kf_registry *reg = kf_registry_new(&cfg, &err);
    assert_non_null(reg);
    int32_t id;
    const char *text;
    assert_int_equal(kf_registry_register(reg, NULL, SCHEMA_V1, &id, &err), KF_ERR_INVALID);
    assert_int_equal(kf_registry_register(reg, "", SCHEMA_V1, &id, &err), KF_ERR_INVALID);
    assert_int_equal(kf_registry_register(reg, "s", NULL, &id, &err), KF_ERR_INVALID);
    assert_int_equal(kf_registry_register(reg, "s", SCHEMA_V1, NULL, &err), KF_ERR_INVALID);
    assert_int_equal(kf_registry_get_by_id(reg, -1, &text, &err), KF_ERR_INVALID);
    assert_int_equal(kf_registry_lookup(reg, "s", NULL, &id, NULL, &err), KF_ERR_INVALID);
    assert_int_equal(kf_registry_test_compatibility(reg, "s", SCHEMA_V1, NULL, &err),
                     KF_ERR_INVALID);
    assert_int_equal(kf_registry_set_compatibility(reg, "s", NULL, &err), KF_ERR_INVALID);
    /* invalid UTF-8 cannot be put into a JSON request */
    assert_int_equal(kf_registry_register(reg, "s", "\"\xff\xfe\"", &id, &err), KF_ERR_INVALID);
    kf_registry_stats st;
    kf_registry_get_stats(reg, &st);
    assert_int_equal(st.http_requests, 0);
    kf_registry_destroy(reg);
}

static void trailing_slash_in_url_is_ignored(void **state)
{
    fixture *fx = *state;
    char url[128];
    snprintf(url, sizeof(url), "%s//", kf_fake_registry_url(fx->fake));
    kf_registry_config cfg = fast_config(url);
    kf_error err;
    kf_registry *reg = kf_registry_new(&cfg, &err);
    assert_non_null(reg);
    int32_t id;
    assert_int_equal(kf_registry_register(reg, "slash-value", SCHEMA_V1, &id, &err), KF_OK);
    kf_fake_request last;
    assert_true(kf_fake_registry_last(fx->fake, &last));
    assert_string_equal(last.raw_path, "/subjects/slash-value/versions");
    kf_registry_destroy(reg);
}

typedef struct reader_arg {
    kf_registry *reg;
    int failures;
    const char *seen[8];
} reader_arg;

static void *reader(void *p)
{
    reader_arg *a = p;
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 8; i++) {
            const char *text;
            kf_error err;
            if (kf_registry_get_by_id(a->reg, 100 + i, &text, &err) != KF_OK) {
                a->failures++;
                continue;
            }
            if (round == 0)
                a->seen[i] = text;
            else if (a->seen[i] != text)
                a->failures++;
        }
    }
    return NULL;
}

static void concurrent_readers_share_the_cache(void **state)
{
    fixture *fx = *state;
    char text[8][64];
    for (int i = 0; i < 8; i++) {
        snprintf(text[i], sizeof(text[i]), "{\"type\":\"fixed\",\"name\":\"C%d\",\"size\":4}", i);
        assert_true(kf_fake_registry_add_schema(fx->fake, 100 + i, text[i], NULL));
    }
    pthread_t threads[4];
    reader_arg args[4] = {0};
    for (int t = 0; t < 4; t++) {
        args[t].reg = fx->reg;
        assert_int_equal(pthread_create(&threads[t], NULL, reader, &args[t]), 0);
    }
    for (int t = 0; t < 4; t++)
        assert_int_equal(pthread_join(threads[t], NULL), 0);
    for (int t = 0; t < 4; t++) {
        assert_int_equal(args[t].failures, 0);
        for (int i = 0; i < 8; i++) {
            assert_ptr_equal(args[t].seen[i], args[0].seen[i]);
            assert_string_equal(args[t].seen[i], text[i]);
        }
    }
    /* each id is fetched at most once per thread, usually once in all */
    unsigned n = kf_fake_registry_requests(fx->fake);
    assert_true(n >= 8 && n <= 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(register_get_lookup_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(repeated_register_and_lookup_use_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(subject_cache_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(id_cache_avoids_second_request, setup, teardown),
        cmocka_unit_test_setup_teardown(id_cache_holds_many_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(incompatible_register_is_distinct, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_id_and_schema_are_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(server_errors_are_retried_then_succeed, setup, teardown),
        cmocka_unit_test_setup_teardown(server_errors_exhaust_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(client_errors_are_not_retried, setup, teardown),
        cmocka_unit_test(connection_refused_is_retriable_and_bounded),
        cmocka_unit_test_setup_teardown(slow_registry_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(subject_is_url_encoded, setup, teardown),
        cmocka_unit_test_setup_teardown(basic_auth_header_is_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(set_compatibility_validates_level, setup, teardown),
        cmocka_unit_test_setup_teardown(non_avro_schema_is_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(compatibility_with_unknown_subject_is_not_found, setup,
                                        teardown),
        cmocka_unit_test(config_and_argument_errors),
        cmocka_unit_test_setup_teardown(trailing_slash_in_url_is_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_readers_share_the_cache, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
