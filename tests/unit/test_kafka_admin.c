/* Unit tests for topic administration on librdkafka's mock cluster. The mock broker of
 * librdkafka 2.0 answers metadata but not CreateTopics/DeleteTopics, so creation is checked
 * for its validation and its error path here and for real in the integration test. */
#include "kf_test_kafka.h"
#include "kfleet/kafka.h"
#include "kfleet/log.h"

typedef struct fixture {
    kf_test_mock mock;
    kf_admin *admin;
} fixture;

static int setup(void **state)
{
    static fixture f;
    if (kf_test_mock_start(&f.mock, 3) < 0)
        return -1;
    const char *kv[] = {"bootstrap.servers", f.mock.bootstraps};
    kf_error err;
    f.admin = kf_admin_new(kv, 1, &err);
    if (!f.admin)
        return -1;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kf_admin_destroy(f->admin);
    kf_test_mock_stop(&f->mock);
    return 0;
}

static void describe_reports_partitions_and_replicas(void **state)
{
    fixture *f = *state;
    assert_int_equal(rd_kafka_mock_topic_create(f->mock.mc, "described", 3, 3), 0);
    kf_topic_info info;
    kf_error err;
    assert_int_equal(kf_admin_describe_topic(f->admin, "described", &info, 5000, &err), KF_OK);
    assert_string_equal(info.name, "described");
    assert_int_equal(info.partitions, 3);
    assert_int_equal(info.replication_factor, 3);
}

static void describe_missing_topic_is_not_found_and_does_not_create_it(void **state)
{
    fixture *f = *state;
    kf_topic_info info;
    kf_error err;
    assert_int_equal(kf_admin_describe_topic(f->admin, "missing", &info, 5000, &err),
                     KF_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "\"missing\""));
    assert_int_equal(kf_admin_describe_topic(f->admin, "missing", &info, 5000, &err),
                     KF_ERR_NOT_FOUND);
}

static void list_is_sorted_without_internal_topics(void **state)
{
    fixture *f = *state;
    assert_int_equal(rd_kafka_mock_topic_create(f->mock.mc, "zeta", 1, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(f->mock.mc, "alpha", 1, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(f->mock.mc, "__internal", 1, 1), 0);
    char **names = NULL;
    size_t n = 0;
    kf_error err;
    assert_int_equal(kf_admin_list_topics(f->admin, &names, &n, 5000, &err), KF_OK);
    bool alpha = false, zeta = false;
    for (size_t i = 0; i < n; i++) {
        assert_true(strncmp(names[i], "__", 2) != 0);
        if (i > 0)
            assert_true(strcmp(names[i - 1], names[i]) < 0);
        alpha |= strcmp(names[i], "alpha") == 0;
        zeta |= strcmp(names[i], "zeta") == 0;
    }
    assert_true(alpha && zeta);
    kf_admin_names_free(names, n);
    kf_admin_names_free(NULL, 0);
}

static void create_validates_specs(void **state)
{
    fixture *f = *state;
    kf_error err;
    kf_topic_spec zero = {.name = "bad", .partitions = 0, .replication_factor = 1};
    assert_int_equal(kf_admin_create_topics(f->admin, &zero, 1, true, 1000, &err), KF_ERR_INVALID);
    const char *cfg[] = {"cleanup.policy", NULL};
    kf_topic_spec badcfg = {
        .name = "bad", .partitions = 1, .replication_factor = 1, .config = cfg, .config_npairs = 1};
    assert_int_equal(kf_admin_create_topics(f->admin, &badcfg, 1, true, 1000, &err),
                     KF_ERR_INVALID);
    assert_int_equal(kf_admin_create_topics(f->admin, NULL, 0, true, 1000, &err), KF_OK);
}

/* A broker that does not answer CreateTopics yields a clear, retriable error, not success. */
static void create_failure_is_reported(void **state)
{
    fixture *f = *state;
    kf_error err;
    const char *cfg[] = {"cleanup.policy", "compact"};
    kf_topic_spec spec = {.name = "created",
                          .partitions = 3,
                          .replication_factor = 1,
                          .config = cfg,
                          .config_npairs = 1};
    int rc = kf_admin_create_topics(f->admin, &spec, 1, true, 1000, &err);
    assert_true(rc < 0);
    assert_true(err.retriable);
    assert_non_null(strstr(err.message, "could not create topics"));
    rc = kf_admin_delete_topics(f->admin, (const char *const[]){"created"}, 1, true, 1000, &err);
    assert_true(rc < 0);
    assert_non_null(strstr(err.message, "could not delete topics"));
}

int main(void)
{
    kf_log_init("test_kafka_admin", KF_LOG_ERROR, KF_LOG_LOGFMT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(describe_reports_partitions_and_replicas),
        cmocka_unit_test(describe_missing_topic_is_not_found_and_does_not_create_it),
        cmocka_unit_test(list_is_sorted_without_internal_topics),
        cmocka_unit_test(create_validates_specs),
        cmocka_unit_test(create_failure_is_reported),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
