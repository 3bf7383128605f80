/* Unit tests for the shared program runtime: common keys, kafka properties, registry settings,
 * start-up of the metrics server and exit codes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "kfleet/app.h"

typedef struct prog_cfg {
    kf_app_config app;
    int batch;
} prog_cfg;

static const kf_config_key keys[] = {
    KF_APP_CONFIG_KEYS(prog_cfg, app),
    {.name = "prog.batch",
     .type = KF_CONFIG_INT,
     .offset = offsetof(prog_cfg, batch),
     .default_value = "10",
     .description = "Batch."},
    {0},
};

static const kf_config_spec spec = {.program = "kfleet-test", .summary = "test", .keys = keys};

static kf_config *load(prog_cfg *store, const char *yaml)
{
    kf_error err;
    kf_config *cfg = NULL;
    memset(store, 0, sizeof(*store));
    assert_int_equal(kf_config_new(&spec, store, &cfg, &err), KF_OK);
    if (yaml)
        assert_int_equal(kf_config_load_yaml(cfg, "t.yaml", yaml, strlen(yaml), &err), KF_OK);
    return cfg;
}

static void common_keys_have_defaults(void **state)
{
    prog_cfg c;
    kf_config *cfg = load(&c, NULL);
    assert_string_equal(c.app.topic_prefix, "kfleet");
    assert_int_equal(c.app.log_level, KF_LOG_INFO);
    assert_int_equal(c.app.log_format, KF_LOG_LOGFMT);
    assert_null(c.app.registry_url);
    kf_config_destroy(cfg);
}

static void kafka_kv_keeps_defaults_then_user_order(void **state)
{
    prog_cfg c;
    kf_config *cfg = load(&c, "kafka:\n  bootstrap.servers: b:1\n  linger.ms: 5\n"
                              "  enable.idempotence: false\n");
    static const char *const defaults[] = {"enable.idempotence", "true", "acks", "all"};
    kf_app_kv kv;
    kf_error err;
    assert_int_equal(kf_app_kafka_kv(cfg, defaults, 2, &kv, &err), KF_OK);
    assert_int_equal(kv.npairs, 5);
    assert_string_equal(kv.kv[0], "enable.idempotence");
    assert_string_equal(kv.kv[4], "bootstrap.servers");
    assert_string_equal(kv.kv[5], "b:1");
    /* the user's later setting wins over the default */
    assert_string_equal(kf_app_kv_get(&kv, "enable.idempotence"), "false");
    assert_string_equal(kf_app_kv_get(&kv, "acks"), "all");
    assert_null(kf_app_kv_get(&kv, "nope"));
    kf_app_kv_free(&kv);
    kf_config_destroy(cfg);
}

static void registry_settings_parse_and_reject_unknown(void **state)
{
    prog_cfg c;
    kf_config *cfg = load(&c, "registry:\n  url: http://r:1/x\n  timeout.ms: 250\n"
                              "  basic.auth.user.info: alice:s3cret\n");
    kf_registry_config rc;
    char ui[64];
    kf_error err;
    assert_int_equal(kf_app_registry_config(cfg, &c.app, &rc, ui, sizeof(ui), &err), KF_OK);
    assert_string_equal(rc.url, "http://r:1/x");
    assert_int_equal(rc.timeout_ms, 250);
    assert_string_equal(rc.username, "alice");
    assert_string_equal(rc.password, "s3cret");
    kf_config_destroy(cfg);

    cfg = load(&c, "registry:\n  url: http://r:1/x\n  tiemout.ms: 250\n");
    assert_int_equal(kf_app_registry_config(cfg, &c.app, &rc, ui, sizeof(ui), &err), KF_ERR_CONFIG);
    assert_non_null(strstr(err.message, "t.yaml:3"));
    assert_non_null(strstr(err.message, "registry.tiemout.ms"));
    kf_config_destroy(cfg);

    cfg = load(&c, "registry:\n  basic.auth.user.info: nocolon\n");
    assert_int_equal(kf_app_registry_config(cfg, &c.app, &rc, ui, sizeof(ui), &err), KF_ERR_CONFIG);
    assert_non_null(strstr(err.message, "user:password"));
    kf_config_destroy(cfg);
}

static size_t collect(char *ptr, size_t size, size_t n, void *ud)
{
    char *buf = ud;
    size_t have = strlen(buf), add = size * n;
    if (have + add >= 65536)
        add = 65535 - have;
    memcpy(buf + have, ptr, add);
    buf[have + add] = '\0';
    return size * n;
}

static void start_serves_metrics_with_worker_label(void **state)
{
    prog_cfg c;
    kf_config *cfg = load(&c, "metrics.listen: 127.0.0.1:0\nlog.level: warn\n");
    kf_app app;
    kf_error err;
    assert_int_equal(kf_app_start(&app, "kfleet-test", cfg, &c.app, 0, &err), KF_OK);
    assert_non_null(app.http);
    assert_null(app.registry);
    kf_counter *ctr =
        kf_metrics_counter(app.metrics, "kfleet_test_records_total", "Records.", 0, NULL, &err);
    assert_non_null(ctr);
    kf_counter_inc(kf_counter_child(ctr, 0, NULL, &err), 7);
    kf_app_set_ready(&app, true, NULL);

    char url[64];
    static char body[65536];
    body[0] = '\0';
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", (unsigned)kf_http_port(app.http));
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_cleanup(h);
    assert_non_null(strstr(body, "kfleet_test_records_total{worker=\"kfleet-test\"} 7"));
    assert_non_null(strstr(body, "process_resident_memory_bytes"));
    kf_app_stop(&app);
    kf_config_destroy(cfg);
}

static void registry_required_but_missing_is_config_error(void **state)
{
    prog_cfg c;
    kf_config *cfg = load(&c, NULL);
    kf_app app;
    kf_error err;
    assert_int_equal(kf_app_start(&app, "kfleet-test", cfg, &c.app, KF_APP_NEED_REGISTRY, &err),
                     KF_ERR_CONFIG);
    assert_non_null(strstr(err.message, "registry.url"));
    assert_int_equal(kf_app_exit_code(err.code), 2);
    assert_int_equal(kf_app_exit_code(KF_OK), 0);
    assert_int_equal(kf_app_exit_code(KF_ERR_KAFKA), 1);
    kf_config_destroy(cfg);
}

static void taken_metrics_port_fails_cleanly(void **state)
{
    prog_cfg c;
    kf_config *cfg = load(&c, "metrics.listen: 127.0.0.1:0\nlog.level: error\n");
    kf_app first, second;
    kf_error err;
    assert_int_equal(kf_app_start(&first, "kfleet-a", cfg, &c.app, 0, &err), KF_OK);
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)kf_http_port(first.http));
    kf_app_config taken = c.app;
    taken.metrics_listen = listen;
    assert_int_equal(kf_app_start(&second, "kfleet-b", cfg, &taken, 0, &err), KF_ERR_IO);
    assert_null(second.metrics);
    kf_app_stop(&first);
    kf_config_destroy(cfg);
}

static void audit_emitter_follows_the_audit_keys(void **state)
{
    prog_cfg c;
    kf_config *cfg = load(&c, "log.level: error\n");
    kf_app app;
    kf_app_kv kv = {0};
    kf_error err;
    assert_int_equal(kf_app_start(&app, "kfleet-test", cfg, &c.app, 0, &err), KF_OK);
    kf_audit *audit = (kf_audit *)&app; /* overwritten on every path */
    kf_audit_config off = {.enabled = false};
    assert_int_equal(kf_app_audit_new(&app, &c.app, &off, &kv, NULL, &audit, &err), KF_OK);
    assert_null(audit);
    /* enabled without a registry: a configuration error that says how to turn audit off */
    kf_audit_config on = {.enabled = true};
    audit = (kf_audit *)&app;
    assert_int_equal(kf_app_audit_new(&app, &c.app, &on, &kv, NULL, &audit, &err), KF_ERR_CONFIG);
    assert_null(audit);
    assert_non_null(strstr(err.message, "audit.enabled=false"));
    kf_app_stop(&app);
    /* with a registry, audit.topic reaches the emitter */
    c.app.registry_url = "http://127.0.0.1:1";
    assert_int_equal(kf_app_start(&app, "kfleet-test", cfg, &c.app, 0, &err), KF_OK);
    kf_audit_config bad = {.enabled = true, .topic = "audit events"};
    assert_int_equal(kf_app_audit_new(&app, &c.app, &bad, &kv, NULL, &audit, &err), KF_ERR_CONFIG);
    assert_null(audit);
    assert_non_null(strstr(err.message, "\"audit events\" is not a Kafka topic name"));
    kf_app_stop(&app);
    c.app.registry_url = NULL;
    kf_config_destroy(cfg);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(common_keys_have_defaults),
        cmocka_unit_test(kafka_kv_keeps_defaults_then_user_order),
        cmocka_unit_test(registry_settings_parse_and_reject_unknown),
        cmocka_unit_test(start_serves_metrics_with_worker_label),
        cmocka_unit_test(registry_required_but_missing_is_config_error),
        cmocka_unit_test(taken_metrics_port_fails_cleanly),
        cmocka_unit_test(audit_emitter_follows_the_audit_keys),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
