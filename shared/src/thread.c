/* Waiting and stopping for the background threads of the audit emitter and the alert sender. */
#include "kfleet/thread.h"

#include <time.h>

int kf_thread_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t ms)
{
    /* pthread_cond_timedwait takes an absolute CLOCK_REALTIME time */
    struct timespec until;
    if (ms < 0)
        ms = 0;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    return pthread_cond_timedwait(cond, lock, &until);
}

void kf_thread_stop(pthread_t thread, pthread_mutex_t *lock, pthread_cond_t *cond, bool *stop)
{
    pthread_mutex_lock(lock);
    *stop = true;
    pthread_cond_signal(cond);
    pthread_mutex_unlock(lock);
    pthread_join(thread, NULL);
}
