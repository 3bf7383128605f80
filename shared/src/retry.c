/* Exponential backoff with seedable jitter and a consecutive-failure circuit breaker; time is
 * always a parameter so both are deterministic under test. */
#include "kfleet/retry.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* ---- PRNG ------------------------------------------------------------------------------ */

/* splitmix64: tiny, fast, passes BigCrush, and any 64-bit seed (including 0) is fine. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi] without modulo bias (rejects the short last partial range). */
static uint64_t rng_between(uint64_t *state, uint64_t lo, uint64_t hi)
{
    if (hi <= lo)
        return lo;
    uint64_t span = hi - lo + 1;
    if (span == 0) /* [0, UINT64_MAX]: every value is fair */
        return rng_next(state);
    uint64_t threshold = (0 - span) % span;
    uint64_t r;
    do {
        r = rng_next(state);
    } while (r < threshold);
    return lo + r % span;
}

/* ---- backoff --------------------------------------------------------------------------- */

static uint64_t clamp_ms(double v, uint64_t max_ms)
{
    if (!(v < (double)max_ms)) /* also catches inf */
        return max_ms;
    if (v < 0)
        return 0;
    return (uint64_t)v;
}

int kf_backoff_init(kf_backoff *b, uint64_t initial_ms, uint64_t max_ms, double multiplier,
                    kf_jitter jitter, uint64_t seed, kf_error *err)
{
    if (!b)
        return kf_error_set(err, KF_ERR_INVALID, false, "backoff is NULL");
    if (initial_ms == 0)
        return kf_error_set(err, KF_ERR_INVALID, false, "backoff initial delay must be > 0");
    if (max_ms < initial_ms)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "backoff maximum %llu ms is below the initial delay %llu ms",
                            (unsigned long long)max_ms, (unsigned long long)initial_ms);
    if (!isfinite(multiplier) || multiplier < 1.0)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "backoff multiplier must be a finite number >= 1, got %g", multiplier);
    if (jitter != KF_JITTER_NONE && jitter != KF_JITTER_FULL && jitter != KF_JITTER_DECORRELATED)
        return kf_error_set(err, KF_ERR_INVALID, false, "unknown backoff jitter %d", (int)jitter);
    b->initial_ms = initial_ms;
    b->max_ms = max_ms;
    b->multiplier = multiplier;
    b->jitter = jitter;
    b->seed = seed;
    kf_backoff_reset(b);
    return KF_OK;
}

void kf_backoff_reset(kf_backoff *b)
{
    b->rng = b->seed;
    b->ceiling = b->initial_ms;
    b->previous = b->initial_ms;
    b->attempts = 0;
}

uint64_t kf_backoff_next_ms(kf_backoff *b)
{
    uint64_t delay;
    switch (b->jitter) {
    case KF_JITTER_DECORRELATED: {
        uint64_t hi = clamp_ms((double)b->previous * b->multiplier, b->max_ms);
        if (hi < b->initial_ms)
            hi = b->initial_ms;
        delay = rng_between(&b->rng, b->initial_ms, hi);
        b->previous = delay;
        b->ceiling = hi;
        break;
    }
    case KF_JITTER_FULL:
        delay = rng_between(&b->rng, 0, b->ceiling);
        break;
    case KF_JITTER_NONE:
    default:
        delay = b->ceiling;
        break;
    }
    if (b->jitter != KF_JITTER_DECORRELATED && b->ceiling < b->max_ms) {
        /* Grow from the exact exponential value, so a small multiplier on a small initial
         * delay still grows instead of being truncated back to the same integer forever. */
        double exact = (double)b->initial_ms * pow(b->multiplier, (double)b->attempts + 1.0);
        b->ceiling = clamp_ms(exact, b->max_ms);
    }
    if (b->attempts < UINT32_MAX)
        b->attempts++;
    return delay;
}

uint32_t kf_backoff_attempts(const kf_backoff *b)
{
    return b->attempts;
}

uint64_t kf_retry_seed(void)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
        return seed;
    /* No entropy yet (very early boot): mix what differs between processes and calls. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t mix = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 48) ^
                   (uint64_t)(uintptr_t)&seed;
    return rng_next(&mix);
}

int64_t kf_retry_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- circuit breaker ------------------------------------------------------------------- */

struct kf_breaker {
    pthread_mutex_t lock;
    kf_breaker_config cfg;
    kf_circuit state;
    uint32_t failures;  /* consecutive failures while closed */
    uint32_t successes; /* successes while half-open */
    uint32_t inflight;  /* admitted, unreported trial calls while half-open */
    int64_t opened_at;  /* when the breaker last opened */
};

kf_breaker *kf_breaker_new(const kf_breaker_config *cfg, kf_error *err)
{
    kf_breaker_config c = {0};
    if (cfg)
        c = *cfg;
    if (c.open_ms < 0) {
        kf_error_set(err, KF_ERR_INVALID, false, "circuit breaker cool-down must be >= 0 ms");
        return NULL;
    }
    if (c.failure_threshold == 0)
        c.failure_threshold = 5;
    if (c.open_ms == 0)
        c.open_ms = 30000;
    if (c.success_threshold == 0)
        c.success_threshold = 1;

    kf_breaker *b = calloc(1, sizeof(*b));
    if (!b) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate circuit breaker");
        return NULL;
    }
    if (pthread_mutex_init(&b->lock, NULL) != 0) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not initialize circuit breaker lock");
        goto out_free_breaker;
    }
    b->cfg = c;
    b->state = KF_CIRCUIT_CLOSED;
    return b;

out_free_breaker:
    free(b);
    return NULL;
}

void kf_breaker_destroy(kf_breaker *b)
{
    if (!b)
        return;
    pthread_mutex_destroy(&b->lock);
    free(b);
}

/* Applies a transition under the lock; the caller reports it after unlocking. */
static void breaker_move(kf_breaker *b, kf_circuit to, int64_t now_ms)
{
    b->state = to;
    b->failures = 0;
    b->successes = 0;
    b->inflight = 0;
    if (to == KF_CIRCUIT_OPEN)
        b->opened_at = now_ms;
}

static void breaker_notify(const kf_breaker *b, kf_circuit from, kf_circuit to, int64_t now_ms)
{
    if (from != to && b->cfg.on_change)
        b->cfg.on_change(b->cfg.on_change_ctx, from, to, now_ms);
}

bool kf_breaker_allow(kf_breaker *b, int64_t now_ms)
{
    bool allowed = false;
    pthread_mutex_lock(&b->lock);
    kf_circuit from = b->state;
    switch (b->state) {
    case KF_CIRCUIT_CLOSED:
        allowed = true;
        break;
    case KF_CIRCUIT_OPEN:
        if (now_ms - b->opened_at >= b->cfg.open_ms) {
            breaker_move(b, KF_CIRCUIT_HALF_OPEN, now_ms);
            b->inflight = 1;
            allowed = true;
        }
        break;
    case KF_CIRCUIT_HALF_OPEN:
        if (b->inflight + b->successes < b->cfg.success_threshold) {
            b->inflight++;
            allowed = true;
        }
        break;
    }
    kf_circuit to = b->state;
    pthread_mutex_unlock(&b->lock);
    breaker_notify(b, from, to, now_ms);
    return allowed;
}

void kf_breaker_record_success(kf_breaker *b, int64_t now_ms)
{
    pthread_mutex_lock(&b->lock);
    kf_circuit from = b->state;
    switch (b->state) {
    case KF_CIRCUIT_CLOSED:
        b->failures = 0;
        break;
    case KF_CIRCUIT_OPEN:
        /* A late result of a call admitted before the breaker opened: the cool-down stands. */
        break;
    case KF_CIRCUIT_HALF_OPEN:
        if (b->inflight > 0)
            b->inflight--;
        b->successes++;
        if (b->successes >= b->cfg.success_threshold)
            breaker_move(b, KF_CIRCUIT_CLOSED, now_ms);
        break;
    }
    kf_circuit to = b->state;
    pthread_mutex_unlock(&b->lock);
    breaker_notify(b, from, to, now_ms);
}

void kf_breaker_record_failure(kf_breaker *b, int64_t now_ms)
{
    pthread_mutex_lock(&b->lock);
    kf_circuit from = b->state;
    switch (b->state) {
    case KF_CIRCUIT_CLOSED:
        b->failures++;
        if (b->failures >= b->cfg.failure_threshold)
            breaker_move(b, KF_CIRCUIT_OPEN, now_ms);
        break;
    case KF_CIRCUIT_OPEN:
        break;
    case KF_CIRCUIT_HALF_OPEN:
        breaker_move(b, KF_CIRCUIT_OPEN, now_ms);
        break;
    }
    kf_circuit to = b->state;
    pthread_mutex_unlock(&b->lock);
    breaker_notify(b, from, to, now_ms);
}

kf_circuit kf_breaker_state(kf_breaker *b)
{
    pthread_mutex_lock(&b->lock);
    kf_circuit s = b->state;
    pthread_mutex_unlock(&b->lock);
    return s;
}

int64_t kf_breaker_remaining_ms(kf_breaker *b, int64_t now_ms)
{
    int64_t left = 0;
    pthread_mutex_lock(&b->lock);
    if (b->state == KF_CIRCUIT_OPEN) {
        left = b->opened_at + b->cfg.open_ms - now_ms;
        if (left < 0)
            left = 0;
    }
    pthread_mutex_unlock(&b->lock);
    return left;
}

const char *kf_circuit_name(kf_circuit s)
{
    switch (s) {
    case KF_CIRCUIT_CLOSED:
        return "closed";
    case KF_CIRCUIT_OPEN:
        return "open";
    case KF_CIRCUIT_HALF_OPEN:
        return "half_open";
    }
    return "unknown";
}
