/* kfleet-sim --to kafka against the real broker and registry: the events decode back with the
 * serde, ops/keys/counts match the simulator's own summary, each schema change is a new
 * registered version, tombstones follow deletes, and --resume after SIGKILL completes the
 * stream without a gap. Each test deletes its topics. */
#include <librdkafka/rdkafka.h>

#include "kfleet/event.h"
#include "kfleet/kafka.h"
#include "kfleet/registry.h"
#include "kfleet/serde.h"
#include "sim_itest.h"

static const char *const tables[] = {"customers", "products", "orders"};
#define NTABLES 3

typedef struct stream {
    uint64_t n;
    uint32_t *seen; /* per seq 1..n: how many events carried it */
    uint64_t ops[NTABLES][3];
    uint64_t tombstones[NTABLES];
    uint64_t tombstone_orphans; /* tombstones not right after their delete */
    uint64_t foreign;           /* events with a seq beyond n or another connector */
    int32_t ids[NTABLES][64];
    size_t nids[NTABLES];
} stream;

typedef struct last_msg {
    char op;
    size_t key_len;
    unsigned char key[256];
} last_msg;

static void note_id(stream *s, size_t t, int32_t id)
{
    for (size_t i = 0; i < s->nids[t]; i++)
        if (s->ids[t][i] == id)
            return;
    assert_true(s->nids[t] < 64);
    s->ids[t][s->nids[t]++] = id;
}

/* Reads every partition of topic from the beginning to its end. */
static void consume_topic(const char *topic, size_t t, kf_event_reader *reader, stream *s)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", kf_test_env("KFLEET_BOOTSTRAP"),
                                       errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(
        rd_kafka_conf_set(conf, "group.id", "kfleet-sim-itest", errstr, sizeof(errstr)),
        RD_KAFKA_CONF_OK);
    assert_int_equal(
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof(errstr)),
        RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    const rd_kafka_metadata_t *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    assert_int_equal(rd_kafka_metadata(rk, 0, rkt, &md, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(md->topic_cnt, 1);
    int parts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    assert_true(parts == 3);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++)
        rd_kafka_topic_partition_list_add(list, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, list), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(list);

    last_msg last[8];
    memset(last, 0, sizeof(last));
    int eofs = 0;
    time_t deadline = time(NULL) + 120;
    while (eofs < parts) {
        assert_true(time(NULL) < deadline);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
            rd_kafka_message_destroy(m);
            continue;
        }
        assert_int_equal(m->err, RD_KAFKA_RESP_ERR_NO_ERROR);
        assert_true(m->partition >= 0 && m->partition < 8);
        last_msg *lm = &last[m->partition];
        assert_non_null(m->key);
        assert_true(m->key_len <= sizeof(lm->key));
        kf_error err;
        kf_error_clear(&err);
        const kf_table *kt;
        const kf_cell *kcells;
        if (kf_event_reader_decode_key(reader, m->key, m->key_len, &kt, &kcells, &err) != KF_OK)
            fail_msg("key of %s does not decode: %s", topic, err.message);
        if (!m->payload) {
            s->tombstones[t]++;
            if (lm->op != 'd' || lm->key_len != m->key_len ||
                memcmp(lm->key, m->key, m->key_len) != 0)
                s->tombstone_orphans++;
            lm->op = '-';
        } else {
            kf_event ev;
            if (kf_event_reader_decode(reader, m->payload, m->len, &ev, &err) != KF_OK)
                fail_msg("event of %s does not decode: %s", topic, err.message);
            note_id(s, t, ev.schema_id);
            int op = ev.op == KF_OP_CREATE ? 0 : ev.op == KF_OP_UPDATE ? 1 : 2;
            assert_true(ev.op == KF_OP_CREATE || ev.op == KF_OP_UPDATE || ev.op == KF_OP_DELETE);
            assert_true(ev.source.has_seq);
            assert_string_equal(ev.source.connector, "kfleet-sim");
            assert_string_equal(ev.source.table, tables[t]);
            assert_true((ev.op == KF_OP_DELETE) == (ev.after == NULL));
            assert_true((ev.op == KF_OP_CREATE) == (ev.before == NULL));
            s->ops[t][op]++;
            uint64_t seq = (uint64_t)ev.source.seq;
            if (seq >= 1 && seq <= s->n)
                s->seen[seq]++;
            else
                s->foreign++;
            lm->op = (char)ev.op;
        }
        lm->key_len = m->key_len;
        memcpy(lm->key, m->key, m->key_len);
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

static void consume_all(const char *prefix, stream *s, kf_serde *serde)
{
    kf_error err;
    kf_error_clear(&err);
    kf_event_reader *reader = kf_event_reader_new(serde, &err);
    assert_non_null(reader);
    for (size_t t = 0; t < NTABLES; t++) {
        char topic[256];
        snprintf(topic, sizeof(topic), "%s.shop.%s", prefix, tables[t]);
        consume_topic(topic, t, reader, s);
    }
    kf_event_reader_destroy(reader);
}

static kf_registry *registry(void)
{
    kf_registry_config rc = {.url = kf_test_env("KFLEET_REGISTRY_URL")};
    kf_error err;
    kf_error_clear(&err);
    kf_registry *r = kf_registry_new(&rc, &err);
    assert_non_null(r);
    return r;
}

/* The counts of the same run written as JSON lines (the stream is deterministic). */
static json_t *reference_summary(const char *seed, const char *events, const char *dir)
{
    char spec[1024], out[1024];
    sim_spec_path(spec, sizeof(spec));
    snprintf(out, sizeof(out), "%s/reference.jsonl", dir);
    char *argv[] = {"kfleet-sim", "--to",     "stdout",       "--spec",      spec,   "--seed",
                    (char *)seed, "--events", (char *)events, "--log-level", "warn", NULL};
    assert_int_equal(sim_run(argv, out), 0);
    FILE *f = fopen(out, "r");
    assert_non_null(f);
    char *line = NULL, *lastline = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        free(lastline);
        lastline = strdup(line);
    }
    free(line);
    fclose(f);
    json_error_t jerr;
    json_t *summary = lastline ? json_loads(lastline, 0, &jerr) : NULL;
    free(lastline);
    assert_non_null(summary);
    assert_string_equal(json_string_value(json_object_get(summary, "type")), "summary");
    return summary;
}

static char *make_dir(void)
{
    char tmpl[] = "/tmp/kfleet-sim-itest-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void remove_dir(char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(dir);
}

/* Compares the consumed stream with the reference summary and the registry. */
static void check_against_summary(stream *s, json_t *summary, kf_registry *reg, kf_serde *serde,
                                  const char *prefix, bool exact)
{
    json_t *jt = json_object_get(summary, "tables");
    for (size_t t = 0; t < NTABLES; t++) {
        json_t *tab = json_array_get(jt, t);
        assert_string_equal(json_string_value(json_object_get(tab, "table")), tables[t]);
        uint64_t ins = (uint64_t)json_integer_value(json_object_get(tab, "inserts"));
        uint64_t upd = (uint64_t)json_integer_value(json_object_get(tab, "updates"));
        uint64_t del = (uint64_t)json_integer_value(json_object_get(tab, "deletes"));
        int versions = (int)json_integer_value(json_object_get(tab, "schema_version"));
        if (exact) {
            assert_int_equal(s->ops[t][0], ins);
            assert_int_equal(s->ops[t][1], upd);
            assert_int_equal(s->ops[t][2], del);
        } else {
            assert_true(s->ops[t][0] >= ins && s->ops[t][1] >= upd && s->ops[t][2] >= del);
        }
        /* One tombstone right after each delete, with the delete's key. */
        assert_int_equal(s->tombstones[t], s->ops[t][2]);
        /* Every schema version was registered under <topic>-value; the events carry the ids
         * of the versions in use (each version had events after it unless it came last). */
        char subject[256];
        snprintf(subject, sizeof(subject), "%s.shop.%s-value", prefix, tables[t]);
        int max_version = 0;
        for (size_t i = 0; i < s->nids[t]; i++) {
            const char *text;
            kf_error err;
            kf_error_clear(&err);
            assert_int_equal(kf_serde_schema(serde, s->ids[t][i], NULL, &text, &err), KF_OK);
            int32_t id;
            int version;
            assert_int_equal(kf_registry_lookup(reg, subject, text, &id, &version, &err), KF_OK);
            assert_int_equal(id, s->ids[t][i]);
            if (version > max_version)
                max_version = version;
        }
        assert_true((int)s->nids[t] >= versions - 1 && (int)s->nids[t] <= versions);
        assert_true(max_version >= versions - 1 && max_version <= versions);
    }
    assert_int_equal(s->tombstone_orphans, 0);
    assert_int_equal(s->foreign, 0);
}

/* The topic prefix of the running test: its teardown deletes the simulator's topics. */
static char created_prefix[128];

static int delete_topics(void **state)
{
    (void)state;
    if (!created_prefix[0])
        return 0;
    char topics[NTABLES][256];
    const char *names[NTABLES];
    for (size_t t = 0; t < NTABLES; t++) {
        snprintf(topics[t], sizeof(topics[t]), "%s.shop.%s", created_prefix, tables[t]);
        names[t] = topics[t];
    }
    kf_error err;
    const char *kv[] = {"bootstrap.servers", getenv("KFLEET_BOOTSTRAP")};
    kf_admin *a = kv[1] ? kf_admin_new(kv, 1, &err) : NULL;
    if (a && kf_admin_delete_topics(a, names, NTABLES, true, 30000, &err) != KF_OK)
        fprintf(stderr, "could not delete the test's topics: %s\n", err.message);
    kf_admin_destroy(a);
    created_prefix[0] = '\0';
    return 0;
}

static void test_stream_decodes_back(void **state)
{
    (void)state;
    const char *seed = "4242", *events = "9000";
    char prefix[128], spec[1024], bootstrap[512];
    sim_unique(prefix, sizeof(prefix), "simit");
    snprintf(created_prefix, sizeof(created_prefix), "%s", prefix);
    sim_spec_path(spec, sizeof(spec));
    snprintf(bootstrap, sizeof(bootstrap), "kafka.bootstrap.servers=%s",
             kf_test_env("KFLEET_BOOTSTRAP"));
    char *dir = make_dir();
    char *argv[] = {"kfleet-sim",
                    "--spec",
                    spec,
                    "--seed",
                    (char *)seed,
                    "--events",
                    (char *)events,
                    "--topic-prefix",
                    prefix,
                    "--set",
                    bootstrap,
                    "--registry-url",
                    (char *)kf_test_env("KFLEET_REGISTRY_URL"),
                    "--state-dir",
                    dir,
                    "--log-level",
                    "warn",
                    NULL};
    assert_int_equal(sim_run(argv, NULL), 0);

    json_t *summary = reference_summary(seed, events, dir);
    kf_registry *reg = registry();
    kf_error err;
    kf_error_clear(&err);
    kf_serde *serde = kf_serde_new(reg, &err);
    assert_non_null(serde);
    stream s = {.n = 9000};
    s.seen = calloc(s.n + 1, sizeof(*s.seen));
    assert_non_null(s.seen);
    consume_all(prefix, &s, serde);
    for (uint64_t q = 1; q <= s.n; q++)
        if (s.seen[q] != 1)
            fail_msg("change %llu arrived %u times", (unsigned long long)q, s.seen[q]);
    check_against_summary(&s, summary, reg, serde, prefix, true);
    /* The run evolved schemas, so the check above covered several versions. */
    assert_true(s.nids[0] >= 2);

    char statefile[1200];
    snprintf(statefile, sizeof(statefile), "%s/kfleet-sim.state.json", dir);
    json_t *st = sim_load_json(statefile);
    assert_string_equal(json_string_value(json_object_get(st, "acked_seq")), events);
    json_decref(st);
    free(s.seen);
    kf_serde_destroy(serde);
    kf_registry_destroy(reg);
    json_decref(summary);
    remove_dir(dir);
}

static uint64_t state_acked(const char *path)
{
    json_error_t jerr;
    json_t *st = json_load_file(path, 0, &jerr);
    if (!st)
        return 0;
    uint64_t v = strtoull(json_string_value(json_object_get(st, "acked_seq")), NULL, 10);
    json_decref(st);
    return v;
}

static void test_resume_after_kill(void **state)
{
    (void)state;
    const char *seed = "77", *events = "60000";
    char prefix[128], spec[1024], bootstrap[512], statefile[1200];
    sim_unique(prefix, sizeof(prefix), "simres");
    snprintf(created_prefix, sizeof(created_prefix), "%s", prefix);
    sim_spec_path(spec, sizeof(spec));
    snprintf(bootstrap, sizeof(bootstrap), "kafka.bootstrap.servers=%s",
             kf_test_env("KFLEET_BOOTSTRAP"));
    char *dir = make_dir();
    snprintf(statefile, sizeof(statefile), "%s/kfleet-sim.state.json", dir);
    char *argv[] = {"kfleet-sim",
                    "--spec",
                    spec,
                    "--seed",
                    (char *)seed,
                    "--events",
                    (char *)events,
                    "--topic-prefix",
                    prefix,
                    "--set",
                    bootstrap,
                    "--registry-url",
                    (char *)kf_test_env("KFLEET_REGISTRY_URL"),
                    "--state-dir",
                    dir,
                    "--log-level",
                    "warn",
                    "--rate",
                    "20000",
                    NULL};
    pid_t pid = sim_start(argv, NULL, NULL);
    /* Kill it hard once some progress was recorded, mid-stream. */
    uint64_t acked = 0;
    for (int i = 0; i < 200 && acked < 5000; i++) {
        usleep(50000);
        acked = state_acked(statefile);
    }
    assert_true(acked >= 5000);
    kill(pid, SIGKILL);
    assert_int_equal(sim_wait(pid), 128 + SIGKILL);
    acked = state_acked(statefile);
    assert_true(acked < 60000);

    char *argv2[] = {"kfleet-sim",
                     "--spec",
                     spec,
                     "--seed",
                     (char *)seed,
                     "--events",
                     (char *)events,
                     "--topic-prefix",
                     prefix,
                     "--set",
                     bootstrap,
                     "--registry-url",
                     (char *)kf_test_env("KFLEET_REGISTRY_URL"),
                     "--state-dir",
                     dir,
                     "--log-level",
                     "warn",
                     "--resume",
                     NULL};
    assert_int_equal(sim_run(argv2, NULL), 0);
    assert_int_equal(state_acked(statefile), 60000);

    json_t *summary = reference_summary(seed, events, dir);
    kf_registry *reg = registry();
    kf_error err;
    kf_error_clear(&err);
    kf_serde *serde = kf_serde_new(reg, &err);
    assert_non_null(serde);
    stream s = {.n = 60000};
    s.seen = calloc(s.n + 1, sizeof(*s.seen));
    assert_non_null(s.seen);
    consume_all(prefix, &s, serde);
    uint64_t dups = 0;
    for (uint64_t q = 1; q <= s.n; q++) {
        if (s.seen[q] == 0)
            fail_msg("gap: change %llu never arrived", (unsigned long long)q);
        /* At-least-once: only changes after the recorded point may come twice. */
        if (s.seen[q] > 1) {
            assert_true(q > acked);
            dups++;
        }
    }
    print_message("killed at acked %llu; %llu changes of the unacknowledged tail came twice\n",
                  (unsigned long long)acked, (unsigned long long)dups);
    check_against_summary(&s, summary, reg, serde, prefix, dups == 0);
    free(s.seen);
    kf_serde_destroy(serde);
    kf_registry_destroy(reg);
    json_decref(summary);
    remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_stream_decodes_back, delete_topics),
        cmocka_unit_test_teardown(test_resume_after_kill, delete_topics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
