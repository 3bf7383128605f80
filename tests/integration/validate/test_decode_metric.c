/* Integration test of the DLQ metric of records kfleet-validate cannot decode, against the real
 * broker and registry: the worker loop runs in this process on a topic holding good events and
 * three kinds of poison (a wrong magic byte, a schema id no registry knows, an event cut short);
 * kfleet_dlq_records_total counts all three under the reserved rule id kfleet.decode, the id
 * their DLQ headers carry, while each header keeps its own reason. */
#include "kfleet/dlq.h"
#include "loop.h"
#include "vt_fixture.h"

#define NGOOD 4

typedef struct fx {
    vt_env env; /* first */
    kf_contract *contract;
    kf_metrics *metrics;
} fx;

static int setup(void **state)
{
    fx *f = vt_fixture_new(sizeof(*f), "vdm");
    kf_error err;
    assert_true(vt_write_file(f->env.contract, "contract: orders\nmatch:\n  tables: [shop.orders]\n"
                                               "columns:\n  id: [not_null]\n"));
    vt_ok(kf_contract_load(f->env.contract, &f->contract, &err) == KF_OK, &err);
    vt_ok((f->metrics = kf_metrics_new(&err)) != NULL, &err);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    kf_contract_destroy(f->contract);
    kf_metrics_destroy(f->metrics);
    vt_fixture_free(&f->env, NULL, 0);
    return 0;
}

/* Produces good events (ids 1..NGOOD) to partition 0 of the orders topic with the three poison
 * records in their middle, whose reasons are, in order, reasons[0..2]. */
static void produce_input(fx *f)
{
    kf_error err;
    vt_orders o;
    vt_ok(vt_create_topic(f->env.bootstrap, f->env.topic, 1, -1, &err), &err);
    vt_ok(vt_orders_new(&o, f->env.serde, f->env.prefix, f->env.topic, 1, &err), &err);
    vt_ok(vt_orders_produce(&o, f->env.bootstrap, f->env.topic, 1, NGOOD / 2, 1700000000000, 10,
                            &err),
          &err);
    kf_buf key = {0}, value = {0};
    vt_ok(vt_orders_encode(&o, 999, 1700000000000, &key, &value, &err), &err);
    kf_produce_msg msgs[3] = {
        {.topic = f->env.topic,
         .partition = 0,
         .key = "k1",
         .key_len = 2,
         .value = "\x01garbage",
         .value_len = 8},
        {.topic = f->env.topic,
         .partition = 0,
         .key = "k2",
         .key_len = 2,
         .value = "\x00\x7f\xff\xff\xf0\x02\x04",
         .value_len = 7},
        {.topic = f->env.topic,
         .partition = 0,
         .key = key.data,
         .key_len = key.len,
         .value = value.data,
         .value_len = value.len - 12},
    };
    vt_ok(vt_produce(f->env.bootstrap, msgs, 3, &err), &err);
    vt_ok(vt_orders_produce(&o, f->env.bootstrap, f->env.topic, NGOOD / 2 + 1, NGOOD, 1700000000000,
                            10, &err),
          &err);
    kf_buf_free(&key);
    kf_buf_free(&value);
    vt_orders_free(&o);
}

static const char *const reasons[] = {"bad_magic_byte", "unknown_schema_id", "undecodable_avro",
                                      "truncated_header"};

static void test_decode_failures_count_as_kfleet_decode(void **state)
{
    fx *f = *state;
    kf_error err;
    produce_input(f);

    char group[160], txn[170];
    snprintf(group, sizeof(group), "%s-g", f->env.prefix);
    snprintf(txn, sizeof(txn), "%s-txn", f->env.prefix);
    const char *kv[] = {"bootstrap.servers", f->env.bootstrap};
    kf_contract *contracts[] = {f->contract};
    kf_vloop_config lc = {.prefix = f->env.prefix,
                          .worker = "kfleet-validate",
                          .contracts = contracts,
                          .ncontracts = 1,
                          .kafka_kv = kv,
                          .kafka_npairs = 1,
                          .group = group,
                          .transactional_id = txn,
                          .eos = true,
                          .batch_size = 100,
                          .poll_timeout_ms = 200,
                          .max_records = NGOOD + 3,
                          .registry = f->env.reg,
                          .metrics = f->metrics};
    kf_vloop_stats st;
    vt_ok(kf_vloop_run(&lc, &st, &err) == KF_OK, &err);
    assert_int_equal(st.records_in, NGOOD + 3);
    assert_int_equal(st.valid, NGOOD);
    assert_int_equal(st.undecodable, 3);

    /* the metric: one series for the three, named like the DLQ header */
    char *text = NULL;
    size_t len = 0;
    vt_ok(kf_metrics_render(f->metrics, &text, &len, &err) == KF_OK, &err);
    char want[512];
    snprintf(want, sizeof(want), "kfleet_dlq_records_total{topic=\"%s\",rule=\"%s\"} 3\n",
             f->env.topic, KF_DLQ_RULE_DECODE);
    if (!strstr(text, want))
        fail_msg("no line %s in\n%s", want, text);
    for (size_t i = 0; i < 4; i++) {
        char label[64];
        snprintf(label, sizeof(label), "rule=\"%s\"", reasons[i]);
        assert_null(strstr(text, label));
    }
    free(text);

    /* the DLQ records: the same rule id, each with its own reason */
    vt_list dlq = {0};
    assert_true(vt_read_topic(f->env.bootstrap, f->env.dlq, &dlq, 60000));
    assert_int_equal(dlq.n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(dlq.r[i].rule, KF_DLQ_RULE_DECODE);
        assert_string_equal(dlq.r[i].reason, reasons[i]);
    }
    vt_list_free(&dlq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_decode_failures_count_as_kfleet_decode, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
