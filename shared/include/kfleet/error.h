/* Error codes and the error object every libkfleet function that can fail fills in. */
#ifndef KFLEET_ERROR_H
#define KFLEET_ERROR_H

#include <stdbool.h>

/* Return codes: 0 is success, every error is negative. */
typedef enum kf_err_code {
    KF_OK = 0,
    KF_ERR_INVALID = -1,      /* bad argument or malformed input */
    KF_ERR_NOMEM = -2,        /* allocation failed */
    KF_ERR_IO = -3,           /* file or socket I/O */
    KF_ERR_CONFIG = -4,       /* configuration error: programs exit 2 */
    KF_ERR_NOT_FOUND = -5,    /* unknown schema id, subject, key, ... */
    KF_ERR_INCOMPATIBLE = -6, /* schema registry said 409: incompatible schema */
    KF_ERR_TIMEOUT = -7,      /* gave up waiting */
    KF_ERR_KAFKA = -8,        /* librdkafka error; see retriable/fatal */
    KF_ERR_REGISTRY = -9,     /* schema registry error other than the above */
    KF_ERR_PG = -10,          /* PostgreSQL error; see retriable */
    KF_ERR_DECODE = -11,      /* undecodable record (wire format, Avro) */
    KF_ERR_FATAL = -12,       /* unrecoverable state: the program must stop */
    KF_ERR_STATE = -13,       /* operation not valid in the current state */
    KF_ERR_FULL = -14,        /* a bounded queue or buffer is full: back off */
} kf_err_code;

/* An error with its code, a message that says what failed and why, and whether a retry may
 * succeed. Callers own the struct (usually on the stack); functions fill it only on error. */
typedef struct kf_error {
    int code;
    bool retriable;
    bool fatal;
    char message[512];
} kf_error;

/* Fills err (may be NULL) and returns code, so callers can write `return kf_error_set(...)`. */
int kf_error_set(kf_error *err, int code, bool retriable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Clears err to KF_OK with an empty message; NULL is a no-op. */
void kf_error_clear(kf_error *err);

/* A short name for a code ("invalid", "not found", ...). Never NULL. */
const char *kf_err_name(int code);

#endif
