/* Integration-test environment: the service addresses `tools/stack env` exports, DSN parsing and
 * unique names, so tests fail loudly (never pass silently) when the stack is not configured. */
#ifndef KF_TEST_ENV_H
#define KF_TEST_ENV_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Returns the value of the environment variable name (borrowed from the environment). When it
 * is unset or empty, fails the running test with a message saying how to set it. */
static inline const char *kf_test_env(const char *name)
{
    const char *value = getenv(name);
    if (value == NULL || value[0] == '\0') {
        fail_msg("%s is not set: run eval \"$(tools/stack env)\"", name);
    }
    return value;
}

/* A parsed DSN of the form scheme://user[:password]@host[:port][/db]; user and password are
 * percent-decoded. All strings are NUL-terminated copies inside the struct. */
typedef struct kf_test_dsn {
    char user[128];
    char password[128];
    char host[256];
    unsigned port;
    char db[128];
} kf_test_dsn;

/* The value of hex digit c, or -1. */
static inline int kf_test_hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Copies [src, src + len) into dst (capacity cap), decoding %XX escapes when decode is true.
 * Returns false when the result does not fit or an escape is malformed. */
static inline bool kf_test_dsn_copy(char *dst, size_t cap, const char *src, size_t len, bool decode)
{
    size_t out = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (decode && c == '%') {
            int hi = i + 2 < len ? kf_test_hex_digit(src[i + 1]) : -1;
            int lo = i + 2 < len ? kf_test_hex_digit(src[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                return false;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (out + 1 >= cap) {
            return false;
        }
        dst[out++] = c;
    }
    dst[out] = '\0';
    return true;
}

/* Parses dsn (borrowed) with the given scheme ("mysql", "postgresql") into out. A missing port
 * becomes default_port and a missing database the empty string. Query strings are rejected,
 * because no caller would honour them. Returns false on any malformed part. */
static inline bool kf_test_dsn_parse(const char *dsn, const char *scheme, unsigned default_port,
                                     kf_test_dsn *out)
{
    memset(out, 0, sizeof(*out));
    size_t slen = strlen(scheme);
    if (strncmp(dsn, scheme, slen) != 0 || strncmp(dsn + slen, "://", 3) != 0) {
        return false;
    }
    const char *p = dsn + slen + 3;
    if (strchr(p, '?') != NULL || strchr(p, '#') != NULL) {
        return false;
    }
    const char *at = strrchr(p, '@');
    if (at == NULL) {
        return false;
    }
    const char *colon = memchr(p, ':', (size_t)(at - p));
    const char *user_end = colon != NULL ? colon : at;
    if (user_end == p ||
        !kf_test_dsn_copy(out->user, sizeof(out->user), p, (size_t)(user_end - p), true)) {
        return false;
    }
    if (colon != NULL && !kf_test_dsn_copy(out->password, sizeof(out->password), colon + 1,
                                           (size_t)(at - colon - 1), true)) {
        return false;
    }
    const char *host = at + 1;
    const char *slash = strchr(host, '/');
    const char *host_end = slash != NULL ? slash : host + strlen(host);
    const char *port = memchr(host, ':', (size_t)(host_end - host));
    const char *name_end = port != NULL ? port : host_end;
    if (name_end == host ||
        !kf_test_dsn_copy(out->host, sizeof(out->host), host, (size_t)(name_end - host), false)) {
        return false;
    }
    out->port = default_port;
    if (port != NULL) {
        char *end = NULL;
        unsigned long v = strtoul(port + 1, &end, 10);
        if (end != host_end || end == port + 1 || v == 0 || v > 65535) {
            return false;
        }
        out->port = (unsigned)v;
    }
    if (slash != NULL &&
        !kf_test_dsn_copy(out->db, sizeof(out->db), slash + 1, strlen(slash + 1), true)) {
        return false;
    }
    return true;
}

/* Reads the environment variable name and parses it as a DSN of scheme into out; fails the
 * running test when the variable is unset or malformed. */
static inline void kf_test_env_dsn(const char *name, const char *scheme, unsigned default_port,
                                   kf_test_dsn *out)
{
    const char *dsn = kf_test_env(name);
    if (!kf_test_dsn_parse(dsn, scheme, default_port, out)) {
        fail_msg("%s is not a %s://user:password@host:port/db DSN", name, scheme);
    }
}

/* Writes "<prefix>_<pid>_<nanoseconds>_<counter>" into buf (capacity cap): a name no other run
 * or test uses, for topics, subjects and tables. Fails the test when it does not fit. */
static inline const char *kf_test_unique_name(char *buf, size_t cap, const char *prefix)
{
    static unsigned counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int n = snprintf(buf, cap, "%s_%ld_%ld%09ld_%u", prefix, (long)getpid(), (long)ts.tv_sec,
                     ts.tv_nsec, counter++);
    if (n < 0 || (size_t)n >= cap) {
        fail_msg("unique name for \"%s\" does not fit in %zu bytes", prefix, cap);
    }
    return buf;
}

#endif
