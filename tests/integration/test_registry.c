/* Integration test of the registry client against the real registry from the local stack
 * (KFLEET_REGISTRY_URL): register, fetch, lookup, compatibility rules, evolution and subject
 * deletion. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kfleet/registry.h"

static const char *registry_url;
static char subject[128];

/* Each run uses a fresh subject and record name, so runs never see each other's versions. */
static char schema_v1[512], schema_v2[512], schema_bad[512];

static void make_schemas(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char tag[64];
    snprintf(tag, sizeof(tag), "t%ld_%ld_%d", (long)ts.tv_sec, ts.tv_nsec, (int)getpid());
    snprintf(subject, sizeof(subject), "kfleet.it.%s.orders-value", tag);
    snprintf(schema_v1, sizeof(schema_v1),
             "{\"type\":\"record\",\"name\":\"Value\",\"namespace\":\"kfleet.it.%s\","
             "\"fields\":[{\"name\":\"id\",\"type\":\"long\"},"
             "{\"name\":\"qty\",\"type\":\"int\"}]}",
             tag);
    /* compatible: a new nullable field with default null */
    snprintf(schema_v2, sizeof(schema_v2),
             "{\"type\":\"record\",\"name\":\"Value\",\"namespace\":\"kfleet.it.%s\","
             "\"fields\":[{\"name\":\"id\",\"type\":\"long\"},"
             "{\"name\":\"qty\",\"type\":\"int\"},"
             "{\"name\":\"note\",\"type\":[\"null\",\"string\"],\"default\":null}]}",
             tag);
    /* incompatible under BACKWARD: qty int -> string, no default */
    snprintf(schema_bad, sizeof(schema_bad),
             "{\"type\":\"record\",\"name\":\"Value\",\"namespace\":\"kfleet.it.%s\","
             "\"fields\":[{\"name\":\"id\",\"type\":\"long\"},"
             "{\"name\":\"qty\",\"type\":\"string\"}]}",
             tag);
}

static kf_registry *client(void)
{
    kf_registry_config cfg = {.url = registry_url, .timeout_ms = 10000, .max_retries = 3};
    kf_error err;
    kf_registry *r = kf_registry_new(&cfg, &err);
    if (!r)
        fail_msg("could not create registry client: %s", err.message);
    return r;
}

static void assert_same_json(const char *a, const char *b)
{
    json_error_t je;
    json_t *ja = json_loads(a, 0, &je);
    assert_non_null(ja);
    json_t *jb = json_loads(b, 0, &je);
    assert_non_null(jb);
    if (!json_equal(ja, jb))
        fail_msg("schemas differ:\n  %s\n  %s", a, b);
    json_decref(ja);
    json_decref(jb);
}

static void evolution_under_backward_compatibility(void **state)
{
    kf_registry *reg = client();
    kf_error err;
    kf_error_clear(&err);

    int32_t id1 = -1;
    if (kf_registry_register(reg, subject, schema_v1, &id1, &err) != KF_OK)
        fail_msg("register v1: %s", err.message);
    assert_true(id1 >= 0);

    /* a fresh client has an empty cache, so this reaches the registry */
    kf_registry *reg2 = client();
    const char *text = NULL;
    if (kf_registry_get_by_id(reg2, id1, &text, &err) != KF_OK)
        fail_msg("get by id %d: %s", id1, err.message);
    assert_same_json(text, schema_v1);

    int32_t found = -1;
    int version = -1;
    if (kf_registry_lookup(reg2, subject, schema_v1, &found, &version, &err) != KF_OK)
        fail_msg("lookup v1: %s", err.message);
    assert_int_equal(found, id1);
    assert_int_equal(version, 1);

    int32_t again = -1;
    if (kf_registry_register(reg2, subject, schema_v1, &again, &err) != KF_OK)
        fail_msg("register v1 again: %s", err.message);
    assert_int_equal(again, id1);
    kf_registry_stats st;
    kf_registry_get_stats(reg2, &st);
    assert_int_equal(st.cache_hits, 1); /* known from the lookup */
    kf_registry *reg3 = client();
    assert_int_equal(kf_registry_register(reg3, subject, schema_v1, &again, &err), KF_OK);
    assert_int_equal(again, id1); /* and the registry itself says the same */
    kf_registry_destroy(reg3);

    if (kf_registry_set_compatibility(reg, subject, "BACKWARD", &err) != KF_OK)
        fail_msg("set compatibility: %s", err.message);

    bool compatible = false;
    if (kf_registry_test_compatibility(reg, subject, schema_v2, &compatible, &err) != KF_OK)
        fail_msg("test compatibility v2: %s", err.message);
    assert_true(compatible);
    compatible = true;
    if (kf_registry_test_compatibility(reg, subject, schema_bad, &compatible, &err) != KF_OK)
        fail_msg("test compatibility bad: %s", err.message);
    assert_false(compatible);

    int32_t id2 = -1;
    if (kf_registry_register(reg, subject, schema_v2, &id2, &err) != KF_OK)
        fail_msg("register v2: %s", err.message);
    assert_true(id2 >= 0);
    assert_int_not_equal(id2, id1);
    if (kf_registry_lookup(reg2, subject, schema_v2, &found, &version, &err) != KF_OK)
        fail_msg("lookup v2: %s", err.message);
    assert_int_equal(found, id2);
    assert_int_equal(version, 2);

    kf_error_clear(&err);
    int32_t id_bad = -1;
    assert_int_equal(kf_registry_register(reg, subject, schema_bad, &id_bad, &err),
                     KF_ERR_INCOMPATIBLE);
    assert_int_equal(id_bad, -1);
    assert_false(err.retriable);
    assert_non_null(strstr(err.message, subject));
    assert_non_null(strstr(err.message, "/versions"));
    fprintf(stderr, "incompatible registration reported as: %s\n", err.message);

    /* the rejected schema was not added as a version */
    kf_error_clear(&err);
    assert_int_equal(kf_registry_lookup(reg2, subject, schema_bad, &found, NULL, &err),
                     KF_ERR_NOT_FOUND);

    /* v1 is still fetchable; the v2 text round-trips too */
    if (kf_registry_get_by_id(reg2, id2, &text, &err) != KF_OK)
        fail_msg("get by id %d: %s", id2, err.message);
    assert_same_json(text, schema_v2);

    kf_registry_destroy(reg2);
    kf_registry_destroy(reg);
}

static void unknown_things_are_not_found(void **state)
{
    kf_registry *reg = client();
    kf_error err;
    kf_error_clear(&err);
    const char *text = NULL;
    assert_int_equal(kf_registry_get_by_id(reg, INT32_MAX - 7, &text, &err), KF_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "/schemas/ids/2147483640"));
    assert_false(err.retriable);

    char ghost[160];
    snprintf(ghost, sizeof(ghost), "%s.ghost", subject);
    int32_t id;
    kf_error_clear(&err);
    assert_int_equal(kf_registry_lookup(reg, ghost, schema_v1, &id, NULL, &err), KF_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, ghost));
    kf_registry_destroy(reg);
}

static void subject_with_reserved_characters(void **state)
{
    kf_registry *reg = client();
    kf_error err;
    char odd[200];
    snprintf(odd, sizeof(odd), "%s/with space?and#hash", subject);
    int32_t id = -1, found = -1;
    if (kf_registry_register(reg, odd, schema_v1, &id, &err) != KF_OK)
        fail_msg("register under \"%s\": %s", odd, err.message);
    kf_registry *reg2 = client();
    if (kf_registry_lookup(reg2, odd, schema_v1, &found, NULL, &err) != KF_OK)
        fail_msg("lookup under \"%s\": %s", odd, err.message);
    assert_int_equal(found, id);
    kf_registry_destroy(reg2);
    kf_registry_destroy(reg);
}

/* A deleted subject is gone for a fresh client, and the client that deleted it registers
 * again through the registry instead of answering from its cache; a permanent delete goes
 * past an earlier soft delete; deleting what is not there is KF_ERR_NOT_FOUND. */
static void subjects_are_deleted(void **state)
{
    kf_registry *reg = client();
    kf_error err;
    char gone[200];
    snprintf(gone, sizeof(gone), "%s.deleted", subject);
    int32_t id = -1, found = -1, kept = -1;
    if (kf_registry_register(reg, gone, schema_v1, &id, &err) != KF_OK)
        fail_msg("register under \"%s\": %s", gone, err.message);
    if (kf_registry_register(reg, subject, schema_v1, &kept, &err) != KF_OK)
        fail_msg("register under \"%s\": %s", subject, err.message);

    if (kf_registry_delete_subject(reg, gone, false, &err) != KF_OK)
        fail_msg("soft delete \"%s\": %s", gone, err.message);
    /* other subjects' cached pairs stay */
    kf_registry_stats st0, st1;
    kf_registry_get_stats(reg, &st0);
    int32_t kept_again = -1;
    assert_int_equal(kf_registry_register(reg, subject, schema_v1, &kept_again, &err), KF_OK);
    kf_registry_get_stats(reg, &st1);
    assert_int_equal(kept_again, kept);
    assert_int_equal(st1.http_requests, st0.http_requests);
    assert_int_equal(st1.cache_hits, st0.cache_hits + 1);
    kf_registry *fresh = client();
    kf_error_clear(&err);
    assert_int_equal(kf_registry_lookup(fresh, gone, schema_v1, &found, NULL, &err),
                     KF_ERR_NOT_FOUND);
    kf_registry_destroy(fresh);
    kf_error_clear(&err);
    assert_int_equal(kf_registry_delete_subject(reg, gone, false, &err), KF_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, gone));
    /* the soft-deleted subject is removed for good */
    if (kf_registry_delete_subject(reg, gone, true, &err) != KF_OK)
        fail_msg("permanently delete soft-deleted \"%s\": %s", gone, err.message);

    /* registered again: the pair cached by the first registration must not answer */
    kf_registry_stats before, after;
    kf_registry_get_stats(reg, &before);
    int32_t again = -1;
    if (kf_registry_register(reg, gone, schema_v1, &again, &err) != KF_OK)
        fail_msg("register again under \"%s\": %s", gone, err.message);
    kf_registry_get_stats(reg, &after);
    assert_int_equal(after.cache_hits, before.cache_hits);
    assert_true(after.http_requests > before.http_requests);
    fresh = client();
    int version = -1;
    if (kf_registry_lookup(fresh, gone, schema_v1, &found, &version, &err) != KF_OK)
        fail_msg("lookup after registering again: %s", err.message);
    assert_int_equal(found, again);
    kf_registry_destroy(fresh);

    /* permanent in one call, then nothing is left under the name */
    if (kf_registry_delete_subject(reg, gone, true, &err) != KF_OK)
        fail_msg("permanently delete \"%s\": %s", gone, err.message);
    fresh = client();
    kf_error_clear(&err);
    assert_int_equal(kf_registry_lookup(fresh, gone, schema_v1, &found, NULL, &err),
                     KF_ERR_NOT_FOUND);
    kf_registry_destroy(fresh);
    kf_error_clear(&err);
    assert_int_equal(kf_registry_delete_subject(reg, gone, true, &err), KF_ERR_NOT_FOUND);
    assert_false(err.retriable);
    assert_non_null(strstr(err.message, "DELETE"));
    kf_error_clear(&err);
    assert_int_equal(kf_registry_delete_subject(reg, "", true, &err), KF_ERR_INVALID);
    kf_registry_destroy(reg);
}

/* Removes the subjects the tests registered (last, so a failure above still cleans up). */
static void created_subjects_are_removed(void **state)
{
    kf_registry *reg = client();
    kf_error err;
    char odd[200];
    snprintf(odd, sizeof(odd), "%s/with space?and#hash", subject);
    const char *subjects[] = {subject, odd};
    for (size_t i = 0; i < 2; i++) {
        int rc = kf_registry_delete_subject(reg, subjects[i], true, &err);
        if (rc != KF_OK && rc != KF_ERR_NOT_FOUND)
            fail_msg("delete \"%s\": %s", subjects[i], err.message);
    }
    kf_registry_destroy(reg);
}

int main(void)
{
    registry_url = getenv("KFLEET_REGISTRY_URL");
    if (!registry_url || !registry_url[0]) {
        fprintf(stderr, "KFLEET_REGISTRY_URL is not set: start the stack and run "
                        "eval \"$(tools/stack env)\" first\n");
        return 1;
    }
    make_schemas();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(evolution_under_backward_compatibility),
        cmocka_unit_test(unknown_things_are_not_found),
        cmocka_unit_test(subject_with_reserved_characters),
        cmocka_unit_test(subjects_are_deleted),
        cmocka_unit_test(created_subjects_are_removed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
