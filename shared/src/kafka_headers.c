/* Message header helpers: carry an input message's headers over to an output (dead-letter
 * records keep them byte for byte) and add kfleet's own string headers. */
#include "kafka_internal.h"

#include <string.h>

rd_kafka_headers_t *kf_headers_copy(const rd_kafka_message_t *msg)
{
    rd_kafka_headers_t *in = NULL;
    if (rd_kafka_message_headers(msg, &in) != RD_KAFKA_RESP_ERR_NO_ERROR || !in)
        return rd_kafka_headers_new(4);
    return rd_kafka_headers_copy(in);
}

int kf_headers_add_str(rd_kafka_headers_t *hdrs, const char *name, const char *value, kf_error *err)
{
    if (!hdrs || !name)
        return kf_error_set(err, KF_ERR_INVALID, false, "could not add header: no %s given",
                            hdrs ? "name" : "header list");
    rd_kafka_resp_err_t code = rd_kafka_header_add(hdrs, name, -1, value, value ? -1 : 0);
    if (code)
        return kf_kafka_error_set_code(err, code, "could not add header");
    return KF_OK;
}

int kf_headers_set_str(rd_kafka_headers_t *hdrs, const char *name, const char *value, kf_error *err)
{
    if (!hdrs || !name)
        return kf_error_set(err, KF_ERR_INVALID, false, "could not set header: no %s given",
                            hdrs ? "name" : "header list");
    /* NOENT just means there was nothing to replace. */
    rd_kafka_resp_err_t code = rd_kafka_header_remove(hdrs, name);
    if (code && code != RD_KAFKA_RESP_ERR__NOENT)
        return kf_kafka_error_set_code(err, code, "could not replace header");
    return kf_headers_add_str(hdrs, name, value, err);
}

bool kf_headers_get(const rd_kafka_message_t *msg, const char *name, const void **value,
                    size_t *len)
{
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || !hdrs)
        return false;
    const void *v = NULL;
    size_t n = 0;
    if (rd_kafka_header_get_last(hdrs, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    if (value)
        *value = v;
    if (len)
        *len = n;
    return true;
}
