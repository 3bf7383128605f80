/* Structured logging to stderr: one line per event, logfmt (default) or JSON. */
#ifndef KFLEET_LOG_H
#define KFLEET_LOG_H

#include <stdbool.h>

#include "kfleet/error.h"

typedef enum kf_log_level {
    KF_LOG_DEBUG = 0,
    KF_LOG_INFO = 1,
    KF_LOG_WARN = 2,
    KF_LOG_ERROR = 3,
} kf_log_level;

typedef enum kf_log_format {
    KF_LOG_LOGFMT = 0,
    KF_LOG_JSON = 1,
} kf_log_format;

/* Sets the program name, the lowest level written and the format. Before it is called the
 * defaults are program "kfleet", level info, logfmt. Thread-safe to log from any thread. */
void kf_log_init(const char *program, kf_log_level min_level, kf_log_format format);

/* The names of the levels and formats in enum order, NULL-terminated: usable directly as the
 * enum_values of a configuration key whose stored index is then the enum value. */
extern const char *const kf_log_level_names[];
extern const char *const kf_log_format_names[];

/* Parses "debug|info|warn|error" and "logfmt|json"; return 0 or KF_ERR_INVALID. */
int kf_log_level_parse(const char *s, kf_log_level *out);
int kf_log_format_parse(const char *s, kf_log_format *out);

bool kf_log_enabled(kf_log_level level);

/* Writes one event: msg, then key/value string pairs, terminated by a NULL key, e.g.
 *   kf_log(KF_LOG_INFO, "partition assigned", "topic", t, "partition", "3", (char *)NULL);
 * Each line is ts, level, program, the context fields, msg, then the pairs. Values are quoted
 * and escaped as the format needs (invalid UTF-8 becomes U+FFFD); a NULL value is written as
 * empty. A line longer than 8 KiB is cut at a character boundary, stays well-formed and ends
 * with truncated=true. */
void kf_log(kf_log_level level, const char *msg, ...);

/* Adds a context field written on every later line after "program" (e.g. "worker", "group"),
 * or replaces its value; a NULL value removes it. Both strings are copied. Keys are written as
 * given in JSON; in logfmt characters other than letters, digits, '_', '.' and '-' become '_'.
 * Returns 0, KF_ERR_INVALID (empty key, or more than 16 fields) or KF_ERR_NOMEM. */
int kf_log_context_set(const char *key, const char *value);

/* Removes every context field (frees their copies). */
void kf_log_context_clear(void);

/* Writes one event whose message is printf-formatted, with no extra fields. */
void kf_logf(kf_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
