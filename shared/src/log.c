/* Structured logging: one logfmt or JSON line per event on stderr, written with one write(2)
 * so lines from several threads never interleave. */
#include "kfleet/log.h"
#include "kfleet/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char log_program[64] = "kfleet";
static kf_log_level log_min = KF_LOG_INFO;
static kf_log_format log_format = KF_LOG_LOGFMT;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void kf_log_init(const char *program, kf_log_level min_level, kf_log_format format)
{
    if (program)
        snprintf(log_program, sizeof(log_program), "%s", program);
    log_min = min_level;
    log_format = format;
}

int kf_log_level_parse(const char *s, kf_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (s && strcmp(s, level_names[i]) == 0) {
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
    return level >= log_min;
}

/* A fixed line buffer: long values are cut, never reallocated. */
typedef struct line {
    char buf[4096];
    size_t len;
} line;

static void put(line *l, const char *s, size_t n)
{
    size_t room = sizeof(l->buf) - 2 - l->len; /* keep space for "\n\0" */
    if (n > room)
        n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(line *l, const char *s)
{
    put(l, s, strlen(s));
}

static bool logfmt_needs_quotes(const char *v)
{
    if (!*v)
        return true;
    for (const char *p = v; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\')
            return true;
    return false;
}

static void put_escaped(line *l, const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
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
            if (*p < 0x20) {
                snprintf(esc, sizeof(esc), "\\u%04x", *p);
                puts_(l, esc);
            } else {
                put(l, (const char *)p, 1);
            }
        }
    }
}

static void put_field(line *l, const char *key, const char *value, bool first)
{
    if (!value)
        value = "";
    if (log_format == KF_LOG_JSON) {
        puts_(l, first ? "{\"" : ",\"");
        put_escaped(l, key);
        puts_(l, "\":\"");
        put_escaped(l, value);
        puts_(l, "\"");
    } else {
        if (!first)
            puts_(l, " ");
        puts_(l, key);
        puts_(l, "=");
        if (logfmt_needs_quotes(value)) {
            puts_(l, "\"");
            put_escaped(l, value);
            puts_(l, "\"");
        } else {
            puts_(l, value);
        }
    }
}

static void write_event(kf_log_level level, const char *msg, va_list *kv)
{
    line l;
    l.len = 0;
    char ts[40];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);

    put_field(&l, "ts", ts, true);
    put_field(&l, "level", level_names[level], false);
    put_field(&l, "program", log_program, false);
    put_field(&l, "msg", msg, false);
    if (kv) {
        const char *key;
        while ((key = va_arg(*kv, const char *)) != NULL) {
            const char *value = va_arg(*kv, const char *);
            put_field(&l, key, value, false);
        }
    }
    if (log_format == KF_LOG_JSON)
        puts_(&l, "}");
    l.buf[l.len++] = '\n';
    ssize_t w = write(STDERR_FILENO, l.buf, l.len);
    (void)w;
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
