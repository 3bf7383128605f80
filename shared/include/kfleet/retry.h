/* Retry policy building blocks: exponential backoff with jitter and a circuit breaker, both
 * driven by a time value the caller passes in, so tests never sleep. */
#ifndef KFLEET_RETRY_H
#define KFLEET_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "kfleet/error.h"

/* ---- exponential backoff --------------------------------------------------------------- */

typedef enum kf_jitter {
    /* Delay n (0-based) is min(max, initial * multiplier^n): predictable, for tests and tools. */
    KF_JITTER_NONE = 0,
    /* Delay n is uniform in [0, min(max, initial * multiplier^n)]: spreads a thundering herd
     * best; a delay may be 0. */
    KF_JITTER_FULL = 1,
    /* Delay n is uniform in [initial, min(max, previous * multiplier)] with previous = initial
     * before the first delay: never shorter than initial, grows with the previous delay. */
    KF_JITTER_DECORRELATED = 2,
} kf_jitter;

/* A backoff sequence. It is a small value type meant to be embedded in the caller's state
 * (one per retry loop, not shared between threads without a lock). Set it up with
 * kf_backoff_init; the fields are read-only for callers. */
typedef struct kf_backoff {
    uint64_t initial_ms; /* first delay ceiling, > 0 */
    uint64_t max_ms;     /* cap on every delay, >= initial_ms */
    double multiplier;   /* growth factor per attempt, >= 1.0 */
    kf_jitter jitter;
    uint64_t seed;     /* the seed given to init; reset restarts the random sequence from it */
    uint64_t rng;      /* PRNG state (splitmix64) */
    uint64_t ceiling;  /* current upper bound before jitter */
    uint64_t previous; /* last delay returned (decorrelated jitter) */
    uint32_t attempts; /* delays returned since init/reset */
} kf_backoff;

/* Sets up b. Same seed, same sequence: tests pass a constant; programs pass something like
 * kf_retry_seed(). Returns 0, or KF_ERR_INVALID (and fills err) when initial_ms is 0,
 * max_ms < initial_ms, multiplier < 1 or not finite, or jitter is unknown. */
int kf_backoff_init(kf_backoff *b, uint64_t initial_ms, uint64_t max_ms, double multiplier,
                    kf_jitter jitter, uint64_t seed, kf_error *err);

/* Returns the next delay in milliseconds and advances the sequence. Every value lies in
 * [0, max_ms] (full jitter) or [initial_ms, max_ms] (no jitter, decorrelated jitter). */
uint64_t kf_backoff_next_ms(kf_backoff *b);

/* Starts the sequence again from the first delay (call after a success). The random
 * sequence restarts from the seed, so a reset backoff repeats its first delays exactly. */
void kf_backoff_reset(kf_backoff *b);

/* Number of delays returned since init or the last reset. */
uint32_t kf_backoff_attempts(const kf_backoff *b);

/* A seed that differs between processes and calls (time, pid, address entropy), for
 * programs that want decorrelated retries across a fleet. */
uint64_t kf_retry_seed(void);

/* Milliseconds on CLOCK_MONOTONIC: the clock to pass as now_ms in production. */
int64_t kf_retry_now_ms(void);

/* ---- circuit breaker ------------------------------------------------------------------- */

/* The breaker counts CONSECUTIVE failures (not a ratio over a window): failure_threshold
 * failures in a row with no success between them open it. This is deterministic, needs no
 * window bookkeeping and suits kfleet's callers, which retry one dependency (a registry, a
 * database) serially.
 *
 *   closed    --failure_threshold consecutive failures-->  open
 *   open      --first allow() at or after open_ms-->       half_open
 *   half_open --success_threshold successes-->             closed
 *   half_open --any failure-->                             open (cool-down starts again)
 *
 * In half_open at most success_threshold trial calls are admitted at a time: allow() returns
 * false while that many admitted calls have not reported their result. Every call that
 * allow() admitted must report exactly one record_success or record_failure. Results
 * reported while open are ignored (late answers to calls admitted before it opened) and do
 * not extend the cool-down. */
typedef enum kf_circuit {
    KF_CIRCUIT_CLOSED = 0,
    KF_CIRCUIT_OPEN = 1,
    KF_CIRCUIT_HALF_OPEN = 2,
} kf_circuit;

/* Called after each state change, outside the breaker's lock (it may call kf_breaker_state);
 * from whichever thread caused the change. */
typedef void (*kf_breaker_change_fn)(void *ctx, kf_circuit from, kf_circuit to, int64_t now_ms);

typedef struct kf_breaker_config {
    uint32_t failure_threshold;     /* consecutive failures that open the breaker; 0 = 5 */
    int64_t open_ms;                /* cool-down before a trial call; 0 = 30000, negative invalid */
    uint32_t success_threshold;     /* half-open successes that close it again; 0 = 1 */
    kf_breaker_change_fn on_change; /* optional, e.g. to log or update a gauge */
    void *on_change_ctx;            /* passed to on_change, borrowed */
} kf_breaker_config;

typedef struct kf_breaker kf_breaker;

/* Copies cfg (NULL = all defaults). Starts closed. Thread-safe: one breaker may guard a
 * dependency shared by several threads. Returns NULL and fills err on failure. */
kf_breaker *kf_breaker_new(const kf_breaker_config *cfg, kf_error *err);
void kf_breaker_destroy(kf_breaker *b); /* NULL is a no-op */

/* Whether a call may proceed now. In open state, the first call at or after the cool-down
 * moves the breaker to half_open and is admitted as a trial. */
bool kf_breaker_allow(kf_breaker *b, int64_t now_ms);

/* Report the outcome of an admitted call. */
void kf_breaker_record_success(kf_breaker *b, int64_t now_ms);
void kf_breaker_record_failure(kf_breaker *b, int64_t now_ms);

/* The current state (it does not advance open -> half_open; only allow() does). */
kf_circuit kf_breaker_state(kf_breaker *b);

/* Milliseconds until an open breaker admits a trial call: 0 when closed, half-open or the
 * cool-down has passed. Useful as a sleep bound. */
int64_t kf_breaker_remaining_ms(kf_breaker *b, int64_t now_ms);

/* "closed", "open", "half_open"; never NULL. */
const char *kf_circuit_name(kf_circuit s);

#endif
