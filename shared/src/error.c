/* The error object: a code, a retriable/fatal classification and a formatted reason. */
#include "kfleet/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int kf_error_set(kf_error *err, int code, bool retriable, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    err->retriable = retriable;
    err->fatal = (code == KF_ERR_FATAL);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return code;
}

void kf_error_clear(kf_error *err)
{
    if (!err)
        return;
    memset(err, 0, sizeof(*err));
}

const char *kf_err_name(int code)
{
    switch (code) {
    case KF_OK:
        return "ok";
    case KF_ERR_INVALID:
        return "invalid";
    case KF_ERR_NOMEM:
        return "out of memory";
    case KF_ERR_IO:
        return "i/o";
    case KF_ERR_CONFIG:
        return "configuration";
    case KF_ERR_NOT_FOUND:
        return "not found";
    case KF_ERR_INCOMPATIBLE:
        return "incompatible";
    case KF_ERR_TIMEOUT:
        return "timeout";
    case KF_ERR_KAFKA:
        return "kafka";
    case KF_ERR_REGISTRY:
        return "registry";
    case KF_ERR_PG:
        return "postgres";
    case KF_ERR_DECODE:
        return "decode";
    case KF_ERR_FATAL:
        return "fatal";
    case KF_ERR_STATE:
        return "state";
    case KF_ERR_FULL:
        return "full";
    default:
        return "unknown";
    }
}
