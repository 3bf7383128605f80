/* Structured logging: one logfmt or JSON line per event on stderr, written under a lock with
 * one write(2) so lines from several threads never interleave. */
#include "kfleet/log.h"
#include "kfleet/error.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONTEXT    16
#define LINE_MAX_BYTES 8192
#define LINE_RESERVE   48 /* room kept for closing a cut value, the truncated mark and "}\n" */

const char *const kf_log_level_names[] = {"debug", "info", "warn", "error", NULL};
const char *const kf_log_format_names[] = {"logfmt", "json", NULL};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_program[64] = "kfleet";
static atomic_int log_min = KF_LOG_INFO;
static atomic_int log_format = KF_LOG_LOGFMT;
static struct {
    char *key;
    char *value;
} log_context[MAX_CONTEXT];
static size_t log_ncontext;

void kf_log_init(const char *program, kf_log_level min_level, kf_log_format format)
{
    pthread_mutex_lock(&log_lock);
    if (program)
        snprintf(log_program, sizeof(log_program), "%s", program);
    pthread_mutex_unlock(&log_lock);
    atomic_store(&log_min, (int)min_level);
    atomic_store(&log_format, (int)format);
}

int kf_log_level_parse(const char *s, kf_log_level *out)
{
    for (int i = 0; kf_log_level_names[i]; i++) {
        if (s && strcmp(s, kf_log_level_names[i]) == 0) {
            *out = (kf_log_level)i;
            return KF_OK;
        }
    }
    if (s && strcmp(s, "warning") == 0) {
        *out = KF_LOG_WARN;
        return KF_OK;
    }
    return KF_ERR_INVALID;
}

int kf_log_format_parse(const char *s, kf_log_format *out)
{
    if (s && strcmp(s, "logfmt") == 0)
        *out = KF_LOG_LOGFMT;
    else if (s && strcmp(s, "json") == 0)
        *out = KF_LOG_JSON;
    else
        return KF_ERR_INVALID;
    return KF_OK;
}

bool kf_log_enabled(kf_log_level level)
{
    return (int)level >= atomic_load(&log_min);
}

int kf_log_context_set(const char *key, const char *value)
{
    if (!key || !*key)
        return KF_ERR_INVALID;
    int rc = KF_OK;
    pthread_mutex_lock(&log_lock);
    size_t i = 0;
    while (i < log_ncontext && strcmp(log_context[i].key, key) != 0)
        i++;
    if (!value) {
        if (i < log_ncontext) {
            free(log_context[i].key);
            free(log_context[i].value);
            memmove(&log_context[i], &log_context[i + 1],
                    (log_ncontext - i - 1) * sizeof(log_context[0]));
            log_ncontext--;
        }
        goto out_unlock;
    }
    char *v = strdup(value);
    if (!v) {
        rc = KF_ERR_NOMEM;
        goto out_unlock;
    }
    if (i < log_ncontext) {
        free(log_context[i].value);
        log_context[i].value = v;
        goto out_unlock;
    }
    if (log_ncontext == MAX_CONTEXT) {
        free(v);
        rc = KF_ERR_INVALID;
        goto out_unlock;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        rc = KF_ERR_NOMEM;
        goto out_unlock;
    }
    log_context[log_ncontext].key = k;
    log_context[log_ncontext].value = v;
    log_ncontext++;
out_unlock:
    pthread_mutex_unlock(&log_lock);
    return rc;
}

void kf_log_context_clear(void)
{
    pthread_mutex_lock(&log_lock);
    for (size_t i = 0; i < log_ncontext; i++) {
        free(log_context[i].key);
        free(log_context[i].value);
    }
    log_ncontext = 0;
    pthread_mutex_unlock(&log_lock);
}

/* A fixed line buffer. Once something does not fit the line is "cut": later writes are
 * dropped, and only the closing bytes (from the reserve) are added. */
typedef struct line {
    char buf[LINE_MAX_BYTES];
    size_t len;
    bool cut;
    bool json;
} line;

static bool put(line *l, const char *s, size_t n)
{
    if (l->cut || l->len + n > sizeof(l->buf) - LINE_RESERVE) {
        l->cut = true;
        return false;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    return true;
}

static bool puts_(line *l, const char *s)
{
    return put(l, s, strlen(s));
}

/* Closing bytes: always fit because put() keeps LINE_RESERVE free. */
static void put_tail(line *l, const char *s)
{
    size_t n = strlen(s);
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if it is not valid. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80; /* no overlong forms */
        hi = c == 0xed ? 0x9f : 0xbf; /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

/* Writes v escaped for a quoted string; each character goes in whole or not at all. */
static void put_escaped(line *l, const char *v)
{
    const unsigned char *p = (const unsigned char *)v;
    while (*p && !l->cut) {
        char esc[8];
        switch (*p) {
        case '"':
            puts_(l, "\\\"");
            break;
        case '\\':
            puts_(l, "\\\\");
            break;
        case '\n':
            puts_(l, "\\n");
            break;
        case '\r':
            puts_(l, "\\r");
            break;
        case '\t':
            puts_(l, "\\t");
            break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                snprintf(esc, sizeof(esc), "\\u%04x", *p);
                puts_(l, esc);
            } else if (*p >= 0x80) {
                size_t n = utf8_len(p);
                if (n == 0) {
                    /* U+FFFD REPLACEMENT CHARACTER for a byte that is not UTF-8 */
                    puts_(l, l->json ? "\\ufffd" : "\xef\xbf\xbd");
                    p++;
                    continue;
                }
                put(l, (const char *)p, n);
                p += n;
                continue;
            } else {
                put(l, (const char *)p, 1);
            }
        }
        p++;
    }
}

static bool logfmt_needs_quotes(const char *v)
{
    if (!*v)
        return true;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
            return true;
    return false;
}

static void put_logfmt_key(line *l, const char *key)
{
    for (const unsigned char *p = (const unsigned char *)key; *p && !l->cut; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-';
        char c = ok ? (char)*p : '_';
        put(l, &c, 1);
    }
}

static void put_field(line *l, const char *key, const char *value, bool first)
{
    if (l->cut)
        return;
    if (!value)
        value = "";
    size_t mark = l->len;
    if (l->json) {
        puts_(l, first ? "{\"" : ",\"");
        put_escaped(l, key);
        puts_(l, "\":\"");
        if (l->cut) {
            l->len = mark; /* the key did not fit: drop the whole field */
            return;
        }
        put_escaped(l, value);
        put_tail(l, "\""); /* from the reserve, so a cut value is still closed */
        return;
    }
    if (!first)
        puts_(l, " ");
    put_logfmt_key(l, key);
    puts_(l, "=");
    if (l->cut) {
        l->len = mark;
        return;
    }
    if (logfmt_needs_quotes(value)) {
        puts_(l, "\"");
        put_escaped(l, value);
        put_tail(l, "\""); /* from the reserve, so a cut value is still closed */
    } else {
        put_escaped(l, value);
    }
}

static void write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere left to report a failing stderr */
        buf += w;
        len -= (size_t)w;
    }
}

static void write_event(kf_log_level level, const char *msg, va_list *kv)
{
    static line l; /* guarded by log_lock; too big for small thread stacks */
    char ts[40];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);
    if (level < KF_LOG_DEBUG || level > KF_LOG_ERROR)
        level = KF_LOG_ERROR;

    pthread_mutex_lock(&log_lock);
    l.len = 0;
    l.cut = false;
    l.json = atomic_load(&log_format) == KF_LOG_JSON;
    put_field(&l, "ts", ts, true);
    put_field(&l, "level", kf_log_level_names[level], false);
    put_field(&l, "program", log_program, false);
    for (size_t i = 0; i < log_ncontext; i++)
        put_field(&l, log_context[i].key, log_context[i].value, false);
    put_field(&l, "msg", msg, false);
    if (kv) {
        const char *key;
        while ((key = va_arg(*kv, const char *)) != NULL) {
            const char *value = va_arg(*kv, const char *);
            put_field(&l, key, value, false);
        }
    }
    if (l.cut)
        put_tail(&l, l.json ? ",\"truncated\":\"true\"" : " truncated=true");
    if (l.json)
        put_tail(&l, "}");
    put_tail(&l, "\n");
    write_all(l.buf, l.len);
    pthread_mutex_unlock(&log_lock);
}

void kf_log(kf_log_level level, const char *msg, ...)
{
    if (!kf_log_enabled(level))
        return;
    va_list ap;
    va_start(ap, msg);
    write_event(level, msg, &ap);
    va_end(ap);
}

void kf_logf(kf_log_level level, const char *fmt, ...)
{
    if (!kf_log_enabled(level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    write_event(level, msg, NULL);
}
