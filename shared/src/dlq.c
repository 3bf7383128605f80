/* Dead-letter queue writer and reader helpers: quarantines a consumed record byte for byte with
 * headers saying why, and reads those headers back for replay and review. */
#include "kfleet/dlq.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfleet/log.h"

/* Kafka's limit on topic names. */
#define TOPIC_MAX 249

struct kf_dlq {
    kf_producer *producer; /* borrowed */
    char *prefix;
    char *worker;
    uint64_t count;
};

kf_dlq *kf_dlq_new(kf_producer *p, const char *prefix, const char *worker, kf_error *err)
{
    if (!p || !prefix || !*prefix || !worker || !*worker) {
        kf_error_set(err, KF_ERR_INVALID, false,
                     "could not create dead-letter writer: producer, prefix and worker are "
                     "required");
        return NULL;
    }
    kf_dlq *d = calloc(1, sizeof(*d));
    if (!d)
        goto out_nomem;
    d->producer = p;
    d->prefix = strdup(prefix);
    d->worker = strdup(worker);
    if (!d->prefix || !d->worker)
        goto out_free_dlq;
    return d;

out_free_dlq:
    kf_dlq_destroy(d);
out_nomem:
    kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate dead-letter writer");
    return NULL;
}

void kf_dlq_destroy(kf_dlq *d)
{
    if (!d)
        return;
    free(d->prefix);
    free(d->worker);
    free(d);
}

int kf_dlq_topic_name(const kf_dlq *d, const char *source_topic, char *buf, size_t len)
{
    if (!d || !source_topic || !buf || len == 0)
        return KF_ERR_INVALID;
    size_t plen = strlen(d->prefix);
    /* A record failing again downstream of a DLQ stays in that DLQ. */
    if (strncmp(source_topic, d->prefix, plen) == 0 &&
        strncmp(source_topic + plen, ".dlq.", 5) == 0) {
        if (strlen(source_topic) >= len)
            return KF_ERR_INVALID;
        memcpy(buf, source_topic, strlen(source_topic) + 1);
        return KF_OK;
    }
    int n = snprintf(buf, len, "%s.dlq.%s", d->prefix, source_topic);
    if (n < 0 || (size_t)n >= len || n > TOPIC_MAX)
        return KF_ERR_INVALID;
    return KF_OK;
}

bool kf_dlq_is_error_header(const char *name)
{
    return name &&
           (strncmp(name, "__connect.errors.", 17) == 0 || strcmp(name, KF_DLQ_H_RULE_ID) == 0 ||
            strcmp(name, KF_DLQ_H_REASON) == 0 || strcmp(name, KF_DLQ_H_WORKER) == 0);
}

int kf_dlq_send(kf_dlq *d, const rd_kafka_message_t *msg, const kf_dlq_reason *why, kf_error *err)
{
    if (!d || !msg || !msg->rkt || !why)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "could not quarantine record: message and reason are required");
    const char *source = rd_kafka_topic_name(msg->rkt);
    char topic[TOPIC_MAX + 1];
    if (kf_dlq_topic_name(d, source, topic, sizeof(topic)) != KF_OK)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "could not quarantine record of \"%s\": dead-letter topic name is "
                            "longer than %d characters",
                            source, TOPIC_MAX);

    rd_kafka_headers_t *hdrs = kf_headers_copy(msg);
    if (!hdrs)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not copy headers of a record");
    char partition[16], offset[24];
    snprintf(partition, sizeof(partition), "%" PRId32, msg->partition);
    snprintf(offset, sizeof(offset), "%" PRId64, msg->offset);
    const char *pairs[][2] = {
        {KF_DLQ_H_TOPIC, source},
        {KF_DLQ_H_PARTITION, partition},
        {KF_DLQ_H_OFFSET, offset},
        {KF_DLQ_H_STAGE, why->stage ? why->stage : "unknown"},
        {KF_DLQ_H_CLASS, why->error_class ? why->error_class : "Error"},
        {KF_DLQ_H_MESSAGE, why->message ? why->message : ""},
        {KF_DLQ_H_RULE_ID, why->rule_id},
        {KF_DLQ_H_REASON, why->reason ? why->reason : ""},
        {KF_DLQ_H_WORKER, d->worker},
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        if (!pairs[i][1]) {
            /* no rule: drop a stale rule id a replayed record may still carry */
            rd_kafka_resp_err_t code = rd_kafka_header_remove(hdrs, pairs[i][0]);
            if (code && code != RD_KAFKA_RESP_ERR__NOENT) {
                rd_kafka_headers_destroy(hdrs);
                return kf_kafka_error_set_code(err, code, "could not remove header");
            }
            continue;
        }
        int rc = kf_headers_set_str(hdrs, pairs[i][0], pairs[i][1], err);
        if (rc != KF_OK) {
            rd_kafka_headers_destroy(hdrs);
            return rc;
        }
    }

    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(msg, &tstype);
    kf_produce_msg out = {
        .topic = topic,
        .partition = RD_KAFKA_PARTITION_UA,
        .key = msg->key,
        .key_len = msg->key_len,
        .value = msg->payload,
        .value_len = msg->len,
        .headers = hdrs,
        .timestamp_ms = ts > 0 ? ts : 0,
    };
    int rc = kf_producer_produce(d->producer, &out, NULL, err);
    if (rc != KF_OK)
        return rc;
    d->count++;
    return KF_OK;
}

uint64_t kf_dlq_count(const kf_dlq *d)
{
    return d ? d->count : 0;
}

/* Copies the last header called name into buf as a string; false when absent. */
static bool header_str(rd_kafka_headers_t *hdrs, const char *name, char *buf, size_t cap)
{
    const void *v = NULL;
    size_t n = 0;
    if (rd_kafka_header_get_last(hdrs, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    if (!v)
        n = 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(buf, v, n);
    buf[n] = '\0';
    return true;
}

static bool parse_i64(const char *s, int64_t *out)
{
    if (!*s)
        return false;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

void kf_dlq_info_get(const rd_kafka_message_t *msg, kf_dlq_info *out)
{
    memset(out, 0, sizeof(*out));
    out->partition = -1;
    out->offset = -1;
    rd_kafka_headers_t *hdrs = NULL;
    if (!msg || rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || !hdrs)
        return;
    char num[32];
    int64_t v;
    header_str(hdrs, KF_DLQ_H_TOPIC, out->topic, sizeof(out->topic));
    if (header_str(hdrs, KF_DLQ_H_PARTITION, num, sizeof(num)) && parse_i64(num, &v) && v >= 0 &&
        v <= INT32_MAX)
        out->partition = (int32_t)v;
    if (header_str(hdrs, KF_DLQ_H_OFFSET, num, sizeof(num)) && parse_i64(num, &v) && v >= 0)
        out->offset = v;
    header_str(hdrs, KF_DLQ_H_STAGE, out->stage, sizeof(out->stage));
    header_str(hdrs, KF_DLQ_H_CLASS, out->error_class, sizeof(out->error_class));
    header_str(hdrs, KF_DLQ_H_MESSAGE, out->message, sizeof(out->message));
    header_str(hdrs, KF_DLQ_H_RULE_ID, out->rule_id, sizeof(out->rule_id));
    header_str(hdrs, KF_DLQ_H_REASON, out->reason, sizeof(out->reason));
    header_str(hdrs, KF_DLQ_H_WORKER, out->worker, sizeof(out->worker));
    if (header_str(hdrs, KF_DLQ_H_REPLAY, num, sizeof(num)) && parse_i64(num, &v) && v >= 0)
        out->replay_count = v;
}

rd_kafka_headers_t *kf_dlq_replay_headers(const rd_kafka_message_t *msg, int64_t replay_count)
{
    rd_kafka_headers_t *in = NULL;
    if (rd_kafka_message_headers(msg, &in) != RD_KAFKA_RESP_ERR_NO_ERROR)
        in = NULL;
    rd_kafka_headers_t *out = rd_kafka_headers_new(in ? rd_kafka_header_cnt(in) + 1 : 1);
    if (!out)
        return NULL;
    const char *name;
    const void *value;
    size_t size;
    for (size_t i = 0;
         in && rd_kafka_header_get_all(in, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         i++) {
        if (kf_dlq_is_error_header(name) || strcmp(name, KF_DLQ_H_REPLAY) == 0)
            continue;
        if (rd_kafka_header_add(out, name, -1, value, value ? (ssize_t)size : 0))
            goto out_free_headers;
    }
    char count[24];
    snprintf(count, sizeof(count), "%" PRId64, replay_count);
    if (rd_kafka_header_add(out, KF_DLQ_H_REPLAY, -1, count, -1))
        goto out_free_headers;
    return out;

out_free_headers:
    rd_kafka_headers_destroy(out);
    return NULL;
}
