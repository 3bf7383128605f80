/* Unit tests for the background-thread helpers: a bounded wait times out or ends on a signal,
 * and a stop sets the flag the thread waits for and joins it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <sched.h>

#include "kfleet/retry.h"
#include "kfleet/thread.h"

typedef struct sleeper {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    bool waiting; /* the thread is inside its wait loop */
    int wakeups;  /* waits that ended before their time ran out */
} sleeper;

static void sleeper_init(sleeper *s)
{
    assert_int_equal(pthread_mutex_init(&s->lock, NULL), 0);
    assert_int_equal(pthread_cond_init(&s->cond, NULL), 0);
    s->stop = s->waiting = false;
    s->wakeups = 0;
}

static void sleeper_free(sleeper *s)
{
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
}

static void wait_times_out(void **state)
{
    (void)state;
    sleeper s;
    sleeper_init(&s);
    pthread_mutex_lock(&s.lock);
    int64_t t0 = kf_retry_now_ms();
    assert_int_equal(kf_thread_wait_ms(&s.cond, &s.lock, 150), ETIMEDOUT);
    int64_t waited = kf_retry_now_ms() - t0;
    assert_true(waited >= 140 && waited < 2000);
    /* over a second: the seconds and the nanoseconds of the deadline both move */
    t0 = kf_retry_now_ms();
    assert_int_equal(kf_thread_wait_ms(&s.cond, &s.lock, 1250), ETIMEDOUT);
    waited = kf_retry_now_ms() - t0;
    assert_true(waited >= 1240 && waited < 4000);
    /* nothing to wait for: at once */
    t0 = kf_retry_now_ms();
    assert_int_equal(kf_thread_wait_ms(&s.cond, &s.lock, -5), ETIMEDOUT);
    assert_true(kf_retry_now_ms() - t0 < 1000);
    pthread_mutex_unlock(&s.lock);
    sleeper_free(&s);
}

/* Waits in slices of 10 s until stopped, counting the waits a signal ended. */
static void *sleep_until_stopped(void *arg)
{
    sleeper *s = arg;
    pthread_mutex_lock(&s->lock);
    s->waiting = true;
    while (!s->stop) {
        if (kf_thread_wait_ms(&s->cond, &s->lock, 10000) == 0)
            s->wakeups++;
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static void stop_wakes_and_joins(void **state)
{
    (void)state;
    sleeper s;
    sleeper_init(&s);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, sleep_until_stopped, &s), 0);
    for (;;) {
        pthread_mutex_lock(&s.lock);
        bool in = s.waiting;
        pthread_mutex_unlock(&s.lock);
        if (in)
            break;
        sched_yield();
    }
    int64_t t0 = kf_retry_now_ms();
    kf_thread_stop(t, &s.lock, &s.cond, &s.stop);
    /* the signal ended the 10 s wait long before its time, and the thread has returned */
    assert_true(kf_retry_now_ms() - t0 < 5000);
    assert_true(s.stop);
    assert_true(s.wakeups >= 1);
    sleeper_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wait_times_out),
        cmocka_unit_test(stop_wakes_and_joins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
