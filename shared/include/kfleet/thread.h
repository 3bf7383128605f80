/* The background-thread pattern of the audit emitter and the alert sender: a thread that
 * sleeps on a condition variable between pieces of work (backoff delays, idle spells) and is
 * stopped by a flag set under the same lock. */
#ifndef KFLEET_THREAD_H
#define KFLEET_THREAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Called with lock held: waits on cond for at most ms milliseconds (a negative ms as 0). It
 * is one wait: a signal or a spurious wake-up ends it early, so the caller checks its
 * condition again. Returns 0 when woken, ETIMEDOUT when the time ran out. */
int kf_thread_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t ms);

/* Called without the lock: sets *stop under lock, signals cond and joins thread, which is
 * expected to see the flag and return. */
void kf_thread_stop(pthread_t thread, pthread_mutex_t *lock, pthread_cond_t *cond, bool *stop);

#endif
