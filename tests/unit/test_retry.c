/* Unit tests for the backoff sequences and every circuit breaker transition. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "kfleet/retry.h"

/* ---- backoff --------------------------------------------------------------------------- */

static void init_rejects_bad_parameters(void **state)
{
    kf_backoff b;
    kf_error err;
    kf_error_clear(&err);
    assert_int_equal(kf_backoff_init(&b, 0, 100, 2.0, KF_JITTER_FULL, 1, &err), KF_ERR_INVALID);
    assert_string_equal(err.message, "backoff initial delay must be > 0");
    assert_int_equal(kf_backoff_init(&b, 200, 100, 2.0, KF_JITTER_FULL, 1, &err), KF_ERR_INVALID);
    assert_string_equal(err.message, "backoff maximum 100 ms is below the initial delay 200 ms");
    assert_int_equal(kf_backoff_init(&b, 10, 100, 0.5, KF_JITTER_FULL, 1, &err), KF_ERR_INVALID);
    assert_int_equal(kf_backoff_init(&b, 10, 100, NAN, KF_JITTER_FULL, 1, &err), KF_ERR_INVALID);
    assert_int_equal(kf_backoff_init(&b, 10, 100, INFINITY, KF_JITTER_FULL, 1, &err),
                     KF_ERR_INVALID);
    assert_int_equal(kf_backoff_init(&b, 10, 100, 2.0, (kf_jitter)7, 1, &err), KF_ERR_INVALID);
    assert_int_equal(kf_backoff_init(&b, 10, 10, 1.0, KF_JITTER_NONE, 1, NULL), KF_OK);
}

static void no_jitter_is_exact_exponential_with_cap(void **state)
{
    kf_backoff b;
    assert_int_equal(kf_backoff_init(&b, 100, 1000, 2.0, KF_JITTER_NONE, 0, NULL), KF_OK);
    const uint64_t want[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(kf_backoff_next_ms(&b), want[i]);
    assert_int_equal(kf_backoff_attempts(&b), 7);
    kf_backoff_reset(&b);
    assert_int_equal(kf_backoff_attempts(&b), 0);
    assert_int_equal(kf_backoff_next_ms(&b), 100);
    assert_int_equal(kf_backoff_next_ms(&b), 200);
}

static void small_multiplier_still_grows(void **state)
{
    /* 1 * 1.5^n truncated must not stick at 1. */
    kf_backoff b;
    assert_int_equal(kf_backoff_init(&b, 1, 50, 1.5, KF_JITTER_NONE, 0, NULL), KF_OK);
    uint64_t last = 0;
    for (int i = 0; i < 20; i++)
        last = kf_backoff_next_ms(&b);
    assert_int_equal(last, 50);
}

static void huge_attempt_counts_stay_at_cap(void **state)
{
    kf_backoff b;
    assert_int_equal(kf_backoff_init(&b, 1, 60000, 10.0, KF_JITTER_FULL, 3, NULL), KF_OK);
    for (int i = 0; i < 5000; i++)
        assert_true(kf_backoff_next_ms(&b) <= 60000);
    assert_int_equal(b.ceiling, 60000);
}

static void full_jitter_within_bounds_and_envelope_grows(void **state)
{
    /* Every delay lies in [0, min(cap, 50 * 2^n)], and across many seeds the mean delay of
     * attempt n grows until the cap. */
    enum { SEEDS = 2000, STEPS = 10 };
    double mean[STEPS] = {0};
    for (uint64_t seed = 0; seed < SEEDS; seed++) {
        kf_backoff b;
        assert_int_equal(kf_backoff_init(&b, 50, 3000, 2.0, KF_JITTER_FULL, seed, NULL), KF_OK);
        double ceiling = 50;
        for (int n = 0; n < STEPS; n++) {
            uint64_t d = kf_backoff_next_ms(&b);
            assert_true(d <= (uint64_t)fmin(ceiling, 3000));
            assert_true(d <= 3000);
            mean[n] += (double)d / SEEDS;
            ceiling *= 2;
        }
    }
    /* Uncapped steps: 25, 50, 100, 200, 400, 800, 1600; capped from step 6 (3200 > 3000). */
    for (int n = 1; n < 7; n++)
        assert_true(mean[n] > mean[n - 1] * 1.6);
    for (int n = 0; n < 6; n++) {
        double expected = 50.0 * pow(2, n) / 2.0;
        assert_true(fabs(mean[n] - expected) < expected * 0.1 + 1.0);
    }
    for (int n = 7; n < STEPS; n++)
        assert_true(fabs(mean[n] - 1500.0) < 100.0);
}

static void full_jitter_reaches_both_ends(void **state)
{
    kf_backoff b;
    assert_int_equal(kf_backoff_init(&b, 4, 4, 1.0, KF_JITTER_FULL, 99, NULL), KF_OK);
    int seen[5] = {0};
    for (int i = 0; i < 1000; i++) {
        uint64_t d = kf_backoff_next_ms(&b);
        assert_true(d <= 4);
        seen[d]++;
    }
    for (int v = 0; v <= 4; v++)
        assert_true(seen[v] > 100); /* roughly 200 each: uniform, 0 and cap included */
}

static void decorrelated_jitter_within_initial_and_cap(void **state)
{
    enum { SEEDS = 500, STEPS = 40 };
    double first = 0, late = 0;
    for (uint64_t seed = 0; seed < SEEDS; seed++) {
        kf_backoff b;
        assert_int_equal(kf_backoff_init(&b, 100, 10000, 3.0, KF_JITTER_DECORRELATED, seed, NULL),
                         KF_OK);
        uint64_t prev = 100;
        for (int n = 0; n < STEPS; n++) {
            uint64_t d = kf_backoff_next_ms(&b);
            assert_true(d >= 100);
            assert_true(d <= 10000);
            uint64_t hi = prev * 3 > 10000 ? 10000 : prev * 3;
            assert_true(d <= hi);
            prev = d;
            if (n == 0)
                first += (double)d / SEEDS;
            if (n == STEPS - 1)
                late += (double)d / SEEDS;
        }
    }
    /* First delay is uniform in [100, 300]; later ones wander up towards the cap. */
    assert_true(first > 180 && first < 220);
    assert_true(late > 2000);
}

static void same_seed_same_sequence_and_reset_repeats_it(void **state)
{
    kf_backoff a, b;
    assert_int_equal(kf_backoff_init(&a, 10, 5000, 2.0, KF_JITTER_FULL, 42, NULL), KF_OK);
    assert_int_equal(kf_backoff_init(&b, 10, 5000, 2.0, KF_JITTER_FULL, 42, NULL), KF_OK);
    uint64_t seq[12];
    for (int i = 0; i < 12; i++) {
        seq[i] = kf_backoff_next_ms(&a);
        assert_int_equal(seq[i], kf_backoff_next_ms(&b));
    }
    kf_backoff_reset(&a);
    for (int i = 0; i < 12; i++)
        assert_int_equal(kf_backoff_next_ms(&a), seq[i]);

    kf_backoff c;
    assert_int_equal(kf_backoff_init(&c, 10, 5000, 2.0, KF_JITTER_FULL, 43, NULL), KF_OK);
    int differ = 0;
    for (int i = 0; i < 12; i++)
        differ += kf_backoff_next_ms(&c) != seq[i];
    assert_true(differ > 0);
}

static void seed_and_clock_helpers(void **state)
{
    uint64_t s1 = kf_retry_seed(), s2 = kf_retry_seed();
    assert_true(s1 != s2);
    int64_t t1 = kf_retry_now_ms();
    int64_t t2 = kf_retry_now_ms();
    assert_true(t1 > 0);
    assert_true(t2 >= t1);
}

/* ---- circuit breaker ------------------------------------------------------------------- */

typedef struct transitions {
    int count;
    kf_circuit from[16];
    kf_circuit to[16];
    int64_t at[16];
} transitions;

static void record_change(void *ctx, kf_circuit from, kf_circuit to, int64_t now_ms)
{
    transitions *t = ctx;
    if (t->count < 16) {
        t->from[t->count] = from;
        t->to[t->count] = to;
        t->at[t->count] = now_ms;
    }
    t->count++;
}

/* Asserts that t saw count transitions, the last one from -> to at at_ms. */
static void assert_last_transition(const transitions *t, int count, kf_circuit from, kf_circuit to,
                                   int64_t at_ms)
{
    assert_int_equal(t->count, count);
    assert_int_equal(t->from[count - 1], from);
    assert_int_equal(t->to[count - 1], to);
    assert_int_equal(t->at[count - 1], at_ms);
}

static kf_breaker *breaker(uint32_t failures, int64_t open_ms, uint32_t successes, transitions *t)
{
    kf_breaker_config cfg = {
        .failure_threshold = failures,
        .open_ms = open_ms,
        .success_threshold = successes,
        .on_change = t ? record_change : NULL,
        .on_change_ctx = t,
    };
    kf_error err;
    kf_breaker *b = kf_breaker_new(&cfg, &err);
    assert_non_null(b);
    return b;
}

static void closed_opens_after_consecutive_failures(void **state)
{
    transitions t = {0};
    kf_breaker *b = breaker(3, 1000, 1, &t);
    assert_int_equal(kf_breaker_state(b), KF_CIRCUIT_CLOSED);
    assert_true(kf_breaker_allow(b, 0));
    kf_breaker_record_failure(b, 10);
    kf_breaker_record_failure(b, 20);
    /* A success in between resets the streak: closed -> closed. */
    kf_breaker_record_success(b, 30);
    kf_breaker_record_failure(b, 40);
    kf_breaker_record_failure(b, 50);
    assert_int_equal(kf_breaker_state(b), KF_CIRCUIT_CLOSED);
    assert_true(kf_breaker_allow(b, 55));
    assert_int_equal(t.count, 0);
    kf_breaker_record_failure(b, 60);
    assert_int_equal(kf_breaker_state(b), KF_CIRCUIT_OPEN);
    assert_last_transition(&t, 1, KF_CIRCUIT_CLOSED, KF_CIRCUIT_OPEN, 60);
    kf_breaker_destroy(b);
}

static void open_rejects_until_cool_down_then_half_open(void **state)
{
    transitions t = {0};
    kf_breaker *b = breaker(1, 1000, 1, &t);
    kf_breaker_record_failure(b, 5000);
    assert_int_equal(kf_breaker_state(b), KF_CIRCUIT_OPEN);
    assert_false(kf_breaker_allow(b, 5000));
    assert_false(kf_breaker_allow(b, 5999));
    assert_int_equal(kf_breaker_remaining_ms(b, 5400), 600);
    /* Late results while open change nothing, and do not extend the cool-down. */
    kf_breaker_record_failure(b, 5500);
    kf_breaker_record_success(b, 5600);
    assert_int_equal(kf_breaker_state(b), KF_CIRCUIT_OPEN);
    assert_int_equal(kf_breaker_remaining_ms(b, 5500), 500);
    /* The state getter does not advance the clock-driven edge; allow does. */
    assert_int_equal(kf_breaker_remaining_ms(b, 7000), 0);
    assert_int_equal(kf_breaker_state(b), KF_CIRCUIT_OPEN);
    assert_true(kf_breaker_allow(b, 6000));
    assert_int_equal(kf_breaker_state(b), KF_CIRCUIT_HALF_OPEN);
    assert_int_equal(kf_breaker_remaining_ms(b, 6000), 0);
    assert_last_transition(&t, 2, KF_CIRCUIT_OPEN, KF_CIRCUIT_HALF_OPEN, 6000);
    kf_breaker_destroy(b);
}

static void half_open_closes_after_successes_and_limits_trials(void **state)
{
    transitions t = {0};
    kf_breaker *b = breaker(2, 100, 3, &t);
    kf_breaker_record_failure(b, 0);
    kf_breaker_record_failure(b, 0);
    assert_int_equal(kf_breaker_state(b), KF_CIRCUIT_OPEN);
    /* Three trial calls admitted, a fourth is refused while they are outstanding. */
    assert_true(kf_breaker_allow(b, 100));
    assert_true(kf_breaker_allow(b, 101));
    assert_true(kf_breaker_allow(b, 102));
    assert_false(kf_breaker_allow(b, 103));
    kf_breaker_record_success(b, 110);
    assert_int_equal(kf_breaker_state(b), KF_CIRCUIT_HALF_OPEN);
    /* One success is in: still only the two outstanding trials may run. */
    assert_false(kf_breaker_allow(b, 111));
    kf_breaker_record_success(b, 120);
    assert_int_equal(kf_breaker_state(b), KF_CIRCUIT_HALF_OPEN);
    kf_breaker_record_success(b, 130);
    assert_int_equal(kf_breaker_state(b), KF_CIRCUIT_CLOSED);
    assert_last_transition(&t, 3, KF_CIRCUIT_HALF_OPEN, KF_CIRCUIT_CLOSED, 130);
    /* Closed again with a fresh failure streak: one failure does not reopen it. */
    assert_true(kf_breaker_allow(b, 140));
    kf_breaker_record_failure(b, 140);
    assert_int_equal(kf_breaker_state(b), KF_CIRCUIT_CLOSED);
    kf_breaker_record_failure(b, 150);
    assert_int_equal(kf_breaker_state(b), KF_CIRCUIT_OPEN);
    kf_breaker_destroy(b);
}

static void half_open_failure_reopens_with_new_cool_down(void **state)
{
    transitions t = {0};
    kf_breaker *b = breaker(1, 1000, 2, &t);
    kf_breaker_record_failure(b, 0);
    assert_true(kf_breaker_allow(b, 1000));
    kf_breaker_record_success(b, 1010);
    assert_int_equal(kf_breaker_state(b), KF_CIRCUIT_HALF_OPEN);
    assert_true(kf_breaker_allow(b, 1020));
    kf_breaker_record_failure(b, 1500);
    assert_int_equal(kf_breaker_state(b), KF_CIRCUIT_OPEN);
    assert_last_transition(&t, 3, KF_CIRCUIT_HALF_OPEN, KF_CIRCUIT_OPEN, 1500);
    /* The cool-down counts from the half-open failure, not the first opening. */
    assert_false(kf_breaker_allow(b, 2000));
    assert_int_equal(kf_breaker_remaining_ms(b, 2000), 500);
    assert_true(kf_breaker_allow(b, 2500));
    /* The earlier half-open success does not carry over: two fresh ones are needed. */
    kf_breaker_record_success(b, 2510);
    assert_int_equal(kf_breaker_state(b), KF_CIRCUIT_HALF_OPEN);
    assert_true(kf_breaker_allow(b, 2520));
    kf_breaker_record_success(b, 2530);
    assert_int_equal(kf_breaker_state(b), KF_CIRCUIT_CLOSED);
    kf_breaker_destroy(b);
}

static void defaults_and_invalid_config(void **state)
{
    kf_error err;
    kf_breaker *b = kf_breaker_new(NULL, &err);
    assert_non_null(b);
    /* Defaults: 5 failures, 30 s cool-down, 1 success. */
    for (int i = 0; i < 4; i++)
        kf_breaker_record_failure(b, 0);
    assert_int_equal(kf_breaker_state(b), KF_CIRCUIT_CLOSED);
    kf_breaker_record_failure(b, 0);
    assert_int_equal(kf_breaker_state(b), KF_CIRCUIT_OPEN);
    assert_false(kf_breaker_allow(b, 29999));
    assert_true(kf_breaker_allow(b, 30000));
    kf_breaker_record_success(b, 30001);
    assert_int_equal(kf_breaker_state(b), KF_CIRCUIT_CLOSED);
    kf_breaker_destroy(b);
    kf_breaker_destroy(NULL);

    kf_breaker_config bad = {.open_ms = -1};
    assert_null(kf_breaker_new(&bad, &err));
    assert_int_equal(err.code, KF_ERR_INVALID);
    assert_string_equal(err.message, "circuit breaker cool-down must be >= 0 ms");
}

static void state_names(void **state)
{
    assert_string_equal(kf_circuit_name(KF_CIRCUIT_CLOSED), "closed");
    assert_string_equal(kf_circuit_name(KF_CIRCUIT_OPEN), "open");
    assert_string_equal(kf_circuit_name(KF_CIRCUIT_HALF_OPEN), "half_open");
    assert_string_equal(kf_circuit_name((kf_circuit)9), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(init_rejects_bad_parameters),
        cmocka_unit_test(no_jitter_is_exact_exponential_with_cap),
        cmocka_unit_test(small_multiplier_still_grows),
        cmocka_unit_test(huge_attempt_counts_stay_at_cap),
        cmocka_unit_test(full_jitter_within_bounds_and_envelope_grows),
        cmocka_unit_test(full_jitter_reaches_both_ends),
        cmocka_unit_test(decorrelated_jitter_within_initial_and_cap),
        cmocka_unit_test(same_seed_same_sequence_and_reset_repeats_it),
        cmocka_unit_test(seed_and_clock_helpers),
        cmocka_unit_test(closed_opens_after_consecutive_failures),
        cmocka_unit_test(open_rejects_until_cool_down_then_half_open),
        cmocka_unit_test(half_open_closes_after_successes_and_limits_trials),
        cmocka_unit_test(half_open_failure_reopens_with_new_cool_down),
        cmocka_unit_test(defaults_and_invalid_config),
        cmocka_unit_test(state_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
