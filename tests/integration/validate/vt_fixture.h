/* The cmocka side of the validate integration tests: the set-up every test shares (a unique
 * prefix, the names of its topics, the --set values, a registry client) and assertions over
 * what the tests read back. vt.h, without cmocka, is shared with the benchmark. */
#ifndef KFLEET_TESTS_VT_FIXTURE_H
#define KFLEET_TESTS_VT_FIXTURE_H

#include "kf_test_env.h"

#include <jansson.h>

#include "vt.h"

/* Fails the running test with err's message unless ok. */
static inline void vt_ok(bool ok, const kf_error *err)
{
    if (!ok)
        fail_msg("%s", err->message);
}

/* Allocates a zeroed fixture of size bytes whose first member is a vt_env and sets that up:
 * the services and programs from the environment (read first, so that a missing variable
 * fails the test before anything is allocated), names after a unique prefix starting with tag,
 * and a registry client with a serde. No topic is created. */
static inline void *vt_fixture_new(size_t size, const char *tag)
{
    const char *bootstrap = kf_test_env("KFLEET_BOOTSTRAP");
    const char *registry_url = kf_test_env("KFLEET_REGISTRY_URL");
    const char *validate_bin = kf_test_env("KFLEET_VALIDATE_BIN");
    const char *replay_bin = kf_test_env("KFLEET_REPLAY_BIN");
    vt_env *e = calloc(1, size);
    assert_non_null(e);
    e->bootstrap = bootstrap;
    e->registry_url = registry_url;
    e->validate_bin = validate_bin;
    e->replay_bin = replay_bin;
    char name[80];
    kf_test_unique_name(name, sizeof(name), tag);
    snprintf(e->prefix, sizeof(e->prefix), "%s", name);
    snprintf(e->topic, sizeof(e->topic), "%s.shop.orders", e->prefix);
    snprintf(e->valid, sizeof(e->valid), "%s.valid.shop.orders", e->prefix);
    snprintf(e->dlq, sizeof(e->dlq), "%s.dlq.%s", e->prefix, e->topic);
    snprintf(e->audit, sizeof(e->audit), "%s.audit", e->prefix);
    snprintf(e->log, sizeof(e->log), "/tmp/%s.log", e->prefix);
    snprintf(e->contract, sizeof(e->contract), "/tmp/%s-contract.yaml", e->prefix);
    snprintf(e->out, sizeof(e->out), "/tmp/%s.out", e->prefix);
    vt_sets_init(&e->set, e->prefix, bootstrap, registry_url);
    kf_error err;
    kf_registry_config rc = {.url = registry_url};
    vt_ok((e->reg = kf_registry_new(&rc, &err)) != NULL, &err);
    vt_ok((e->serde = kf_serde_new(e->reg, &err)) != NULL, &err);
    return e;
}

/* Deletes the topics the programs under test may have made (the orders topic, its valid and
 * DLQ topics, the audit topic) and the n more in extra, frees the clients, removes the files
 * and frees the fixture (whose first member e is). */
static inline void vt_fixture_free(vt_env *e, const char *const *extra, size_t n)
{
    const char *names[8] = {e->topic, e->valid, e->dlq, e->audit};
    size_t count = 4;
    for (size_t i = 0; i < n && count < 8; i++)
        names[count++] = extra[i];
    vt_delete_topics(e->bootstrap, names, count);
    kf_serde_destroy(e->serde);
    kf_registry_destroy(e->reg);
    remove(e->log);
    remove(e->contract);
    remove(e->out);
    free(e);
}

/* Creates the orders topic of e with one partition and produces the rows first..last of a
 * table of ncols columns into it (vt_orders_produce). */
static inline void vt_produce_orders(vt_env *e, size_t ncols, int64_t first, int64_t last,
                                     int64_t base_ts, int64_t step_ms)
{
    kf_error err;
    vt_orders o;
    vt_ok(vt_create_topic(e->bootstrap, e->topic, 1, -1, &err), &err);
    vt_ok(vt_orders_new(&o, e->serde, e->prefix, e->topic, ncols, &err), &err);
    vt_ok(vt_orders_produce(&o, e->bootstrap, e->topic, first, last, base_ts, step_ms, &err), &err);
    vt_orders_free(&o);
}

/* The details of audit event a as a JSON object (the caller decrefs); fails the test when they
 * are absent or not an object. */
static inline json_t *vt_details(const vt_audit *a)
{
    if (!a->details)
        fail_msg("the %s event has no details", a->action);
    json_t *d = json_loads(a->details, 0, NULL);
    if (!d || !json_is_object(d))
        fail_msg("details of the %s event are not a JSON object: %s", a->action, a->details);
    return d;
}

static inline long long vt_jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("the details have no integer \"%s\"", key);
    return json_integer_value(v);
}

static inline const char *vt_jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        fail_msg("the details have no string \"%s\"", key);
    return json_string_value(v);
}

#endif
