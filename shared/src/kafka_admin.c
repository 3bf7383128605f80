/* Topic administration: create (optionally tolerating existing topics), delete, describe and
 * list topics, for the topics tool, program start-up and tests. */
#include "kafka_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kf_admin {
    kf_kafka_client cl; /* first: librdkafka's opaque points here */
    rd_kafka_t *rk;
};

kf_admin *kf_admin_new(const char *const *kv, size_t npairs, kf_error *err)
{
    /* Describing a topic must never create it. */
    static const char *const defaults[] = {"allow.auto.create.topics", "false"};
    kf_admin *a = calloc(1, sizeof(*a));
    if (!a) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate admin client");
        return NULL;
    }
    kf_kafka_client_init(&a->cl);
    rd_kafka_conf_t *conf = kf_kafka_conf_build(RD_KAFKA_PRODUCER, defaults, 1, kv, npairs, a, err);
    if (!conf)
        goto out_free_admin;
    a->rk = kf_kafka_handle_new(RD_KAFKA_PRODUCER, conf, err);
    if (!a->rk)
        goto out_free_admin;
    return a;

out_free_admin:
    kf_kafka_client_fini(&a->cl);
    free(a);
    return NULL;
}

void kf_admin_destroy(kf_admin *a)
{
    if (!a)
        return;
    rd_kafka_destroy(a->rk);
    kf_kafka_client_fini(&a->cl);
    free(a);
}

/* Options with both timeouts set; NULL + err when out of memory. */
static rd_kafka_AdminOptions_t *admin_options(kf_admin *a, rd_kafka_admin_op_t op, int timeout_ms,
                                              kf_error *err)
{
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(a->rk, op);
    if (!opts) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate admin options");
        return NULL;
    }
    char errstr[256];
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, errstr, sizeof(errstr));
    rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, errstr, sizeof(errstr));
    return opts;
}

/* Waits for the admin result event; NULL + err on timeout or request failure. */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, int timeout_ms, const char *what,
                                    kf_error *err)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
    if (!ev) {
        kf_error_set(err, KF_ERR_TIMEOUT, true, "%s: no answer within %d ms", what, timeout_ms);
        return NULL;
    }
    rd_kafka_resp_err_t code = rd_kafka_event_error(ev);
    if (code) {
        char full[512];
        snprintf(full, sizeof(full), "%s: %s", what, rd_kafka_event_error_string(ev));
        kf_kafka_error_set_code(err, code, full);
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

/* Checks per-topic results; tolerated is an error code counted as success (or 0). */
static int check_topic_results(const rd_kafka_topic_result_t **res, size_t n,
                               rd_kafka_resp_err_t tolerated, const char *verb, kf_error *err)
{
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t code = rd_kafka_topic_result_error(res[i]);
        if (code == RD_KAFKA_RESP_ERR_NO_ERROR || (tolerated && code == tolerated))
            continue;
        const char *msg = rd_kafka_topic_result_error_string(res[i]);
        char what[512];
        snprintf(what, sizeof(what), "could not %s topic \"%s\": %s", verb,
                 rd_kafka_topic_result_name(res[i]), msg ? msg : rd_kafka_err2str(code));
        int rc = kf_kafka_error_set_code(err, code, what);
        if (code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS && err)
            err->retriable = false;
        return rc;
    }
    return KF_OK;
}

int kf_admin_create_topics(kf_admin *a, const kf_topic_spec *specs, size_t n, bool exists_ok,
                           int timeout_ms, kf_error *err)
{
    if (n == 0)
        return KF_OK;
    int rc = KF_OK;
    size_t built = 0;
    rd_kafka_NewTopic_t **nts = calloc(n, sizeof(*nts));
    if (!nts)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate topic list");
    char errstr[512];
    for (; built < n; built++) {
        const kf_topic_spec *s = &specs[built];
        if (!s->name || s->partitions < 1) {
            rc = kf_error_set(err, KF_ERR_INVALID, false,
                              "cannot create topic \"%s\": partitions must be at least 1",
                              s->name ? s->name : "");
            goto out_free_topics;
        }
        nts[built] = rd_kafka_NewTopic_new(s->name, s->partitions, s->replication_factor, errstr,
                                           sizeof(errstr));
        if (!nts[built]) {
            rc = kf_error_set(err, KF_ERR_INVALID, false, "cannot create topic \"%s\": %s", s->name,
                              errstr);
            goto out_free_topics;
        }
        for (size_t j = 0; j < s->config_npairs; j++) {
            if (!s->config[2 * j] || !s->config[2 * j + 1]) {
                built++;
                rc = kf_error_set(err, KF_ERR_INVALID, false,
                                  "cannot create topic \"%s\": config pair %zu has a null key or "
                                  "value",
                                  s->name, j);
                goto out_free_topics;
            }
            rd_kafka_resp_err_t code =
                rd_kafka_NewTopic_set_config(nts[built], s->config[2 * j], s->config[2 * j + 1]);
            if (code) {
                built++;
                rc = kf_error_set(err, KF_ERR_INVALID, false,
                                  "cannot create topic \"%s\": bad config \"%s\": %s", s->name,
                                  s->config[2 * j] ? s->config[2 * j] : "", rd_kafka_err2str(code));
                goto out_free_topics;
            }
        }
    }

    rd_kafka_AdminOptions_t *opts =
        admin_options(a, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout_ms, err);
    if (!opts) {
        rc = KF_ERR_NOMEM;
        goto out_free_topics;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(a->rk);
    rd_kafka_CreateTopics(a->rk, nts, n, opts, q);
    rd_kafka_event_t *ev = admin_wait(q, timeout_ms, "could not create topics", err);
    if (!ev) {
        rc = err ? err->code : KF_ERR_KAFKA;
        goto out_destroy_queue;
    }
    size_t cnt = 0;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
    rc = check_topic_results(res, cnt, exists_ok ? RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS : 0,
                             "create", err);
    rd_kafka_event_destroy(ev);

out_destroy_queue:
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(opts);
out_free_topics:
    for (size_t i = 0; i < built; i++)
        rd_kafka_NewTopic_destroy(nts[i]);
    free(nts);
    return rc;
}

int kf_admin_delete_topics(kf_admin *a, const char *const *names, size_t n, bool missing_ok,
                           int timeout_ms, kf_error *err)
{
    if (n == 0)
        return KF_OK;
    int rc = KF_OK;
    size_t built = 0;
    rd_kafka_DeleteTopic_t **dts = calloc(n, sizeof(*dts));
    if (!dts)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate topic list");
    for (; built < n; built++) {
        dts[built] = rd_kafka_DeleteTopic_new(names[built]);
        if (!dts[built]) {
            rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate topic deletion");
            goto out_free_topics;
        }
    }
    rd_kafka_AdminOptions_t *opts =
        admin_options(a, RD_KAFKA_ADMIN_OP_DELETETOPICS, timeout_ms, err);
    if (!opts) {
        rc = KF_ERR_NOMEM;
        goto out_free_topics;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(a->rk);
    rd_kafka_DeleteTopics(a->rk, dts, n, opts, q);
    rd_kafka_event_t *ev = admin_wait(q, timeout_ms, "could not delete topics", err);
    if (!ev) {
        rc = err ? err->code : KF_ERR_KAFKA;
        goto out_destroy_queue;
    }
    size_t cnt = 0;
    const rd_kafka_topic_result_t **res =
        rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &cnt);
    rc = check_topic_results(res, cnt, missing_ok ? RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART : 0,
                             "delete", err);
    rd_kafka_event_destroy(ev);

out_destroy_queue:
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(opts);
out_free_topics:
    for (size_t i = 0; i < built; i++)
        rd_kafka_DeleteTopic_destroy(dts[i]);
    free(dts);
    return rc;
}

/* All-topics metadata: asking for one topic by name could auto-create it on some brokers. */
static int all_metadata(kf_admin *a, const struct rd_kafka_metadata **md, int timeout_ms,
                        kf_error *err)
{
    rd_kafka_resp_err_t code = rd_kafka_metadata(a->rk, 1, NULL, md, timeout_ms);
    if (code)
        return kf_kafka_error_set_code(err, code, "could not fetch cluster metadata");
    return KF_OK;
}

int kf_admin_describe_topic(kf_admin *a, const char *name, kf_topic_info *out, int timeout_ms,
                            kf_error *err)
{
    const struct rd_kafka_metadata *md = NULL;
    int rc = all_metadata(a, &md, timeout_ms, err);
    if (rc < 0)
        return rc;
    rc = kf_error_set(err, KF_ERR_NOT_FOUND, false, "topic \"%s\" does not exist", name);
    for (int i = 0; i < md->topic_cnt; i++) {
        const rd_kafka_metadata_topic_t *t = &md->topics[i];
        if (strcmp(t->topic, name) != 0)
            continue;
        if (t->err) {
            rc = kf_kafka_error_set_code(err, t->err, "could not describe topic");
            break;
        }
        memset(out, 0, sizeof(*out));
        snprintf(out->name, sizeof(out->name), "%s", t->topic);
        out->partitions = t->partition_cnt;
        out->replication_factor = t->partition_cnt > 0 ? t->partitions[0].replica_cnt : 0;
        rc = KF_OK;
        kf_error_clear(err);
        break;
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

static int cmp_names(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

int kf_admin_list_topics(kf_admin *a, char ***names_out, size_t *n_out, int timeout_ms,
                         kf_error *err)
{
    const struct rd_kafka_metadata *md = NULL;
    int rc = all_metadata(a, &md, timeout_ms, err);
    if (rc < 0)
        return rc;
    size_t n = 0;
    char **names = calloc((size_t)md->topic_cnt + 1, sizeof(*names));
    if (!names) {
        rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate topic names");
        goto out_destroy_metadata;
    }
    for (int i = 0; i < md->topic_cnt; i++) {
        const char *t = md->topics[i].topic;
        if (strncmp(t, "__", 2) == 0 || md->topics[i].err)
            continue;
        names[n] = strdup(t);
        if (!names[n]) {
            kf_admin_names_free(names, n);
            rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate topic names");
            goto out_destroy_metadata;
        }
        n++;
    }
    qsort(names, n, sizeof(*names), cmp_names);
    *names_out = names;
    *n_out = n;

out_destroy_metadata:
    rd_kafka_metadata_destroy(md);
    return rc;
}

void kf_admin_names_free(char **names, size_t n)
{
    if (!names)
        return;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}
