/*
 * Wakes a consumer's parked fetcher (librdkafka before 2.2).
 *
 * librdkafka before 2.2 stops fetching a partition once the consumer queue holds
 * queued.min.messages (or queued.max.messages.kbytes) and decides again only when its broker
 * thread wakes up: on traffic of that connection, or after up to one second. A consumer that
 * drains the queue in less than a second then starves for the rest of it (librdkafka issue
 * 2879, fixed in 2.2 by fetch.queue.backoff.ms).
 *
 * Whenever the poller waits for records it asks the waker thread for a nudge: a ListOffsets
 * request ("latest") for the assigned partitions. Its answer wakes the leaders' broker threads,
 * which decide again and fetch at once if the queue is now below the threshold. The request is
 * answered from the broker's memory; behind a long-polling fetch it waits for that fetch (up
 * to fetch.wait.max.ms), which is why it runs on this thread and never on the poller's.
 *
 * Its answer also tells whether records lie beyond what is queued. While they do, nudges may
 * follow each other every MIN_INTERVAL_MS; while the consumer is caught up (the fetcher is then
 * long-polling, not parked) the interval doubles up to MAX_INTERVAL_MS, so an idle consumer
 * sends a few small requests a second. Local watermarks cannot decide this: a parked fetcher
 * receives no fetch responses, so they stop where the queue ends.
 */
#include "kafka_internal.h"

#include <stdlib.h>
#include "kfleet/retry.h"
#include "kfleet/thread.h"

#define MIN_INTERVAL_MS 10
#define MAX_INTERVAL_MS 250
#define TIMEOUT_MS      1000 /* above fetch.wait.max.ms (500 ms by default) */

struct kf_fetch_waker {
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue; /* the consumer queue: records fetched, not yet polled */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool wanted;
    bool stop;
    atomic_uint_fast64_t nudges;
};

/* Sends one nudge. True when the partitions hold records beyond the application's positions
 * that are not in the queue, i.e. the fetcher has work. */
static bool nudge(kf_fetch_waker *w)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(w->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    bool beyond_queue = false;
    rd_kafka_topic_partition_list_t *latest = NULL;
    if (parts->cnt == 0 || rd_kafka_position(w->rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
        goto out;
    latest = rd_kafka_topic_partition_list_copy(parts);
    for (int i = 0; i < latest->cnt; i++)
        latest->elems[i].offset = RD_KAFKA_OFFSET_END; /* ListOffsets "latest" */
    atomic_fetch_add(&w->nudges, 1);
    if (rd_kafka_offsets_for_times(w->rk, latest, TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
        goto out;
    int64_t beyond = 0;
    for (int i = 0; i < parts->cnt; i++) {
        int64_t at = parts->elems[i].offset, end = latest->elems[i].offset;
        if (at >= 0 && end > at && !latest->elems[i].err)
            beyond += end - at;
    }
    beyond_queue = beyond > (int64_t)rd_kafka_queue_length(w->queue);
out:
    if (latest)
        rd_kafka_topic_partition_list_destroy(latest);
    rd_kafka_topic_partition_list_destroy(parts);
    return beyond_queue;
}

static void *waker_main(void *arg)
{
    kf_fetch_waker *w = arg;
    int64_t interval = MIN_INTERVAL_MS, next = 0;
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        if (!w->wanted) {
            pthread_cond_wait(&w->cond, &w->lock);
            continue;
        }
        int64_t now = kf_retry_now_ms();
        if (now < next) {
            kf_thread_wait_ms(&w->cond, &w->lock, next - now);
            continue;
        }
        w->wanted = false;
        pthread_mutex_unlock(&w->lock);
        bool busy = nudge(w);
        interval = busy ? MIN_INTERVAL_MS
                        : (interval * 2 > MAX_INTERVAL_MS ? MAX_INTERVAL_MS : interval * 2);
        next = kf_retry_now_ms() + interval;
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

kf_fetch_waker *kf_fetch_waker_new(rd_kafka_t *rk, rd_kafka_queue_t *queue, kf_error *err)
{
    kf_fetch_waker *w = calloc(1, sizeof(*w));
    if (!w) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate the fetch waker");
        return NULL;
    }
    w->rk = rk;
    w->queue = queue;
    atomic_init(&w->nudges, 0);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    if (pthread_create(&w->thread, NULL, waker_main, w) != 0) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
        kf_error_set(err, KF_ERR_STATE, false, "could not start the fetch waker thread");
        return NULL;
    }
    return w;
}

void kf_fetch_waker_want(kf_fetch_waker *w)
{
    pthread_mutex_lock(&w->lock);
    if (!w->wanted) {
        w->wanted = true;
        pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
}

uint64_t kf_fetch_waker_nudges(const kf_fetch_waker *w)
{
    return w ? (uint64_t)atomic_load(&w->nudges) : 0;
}

void kf_fetch_waker_destroy(kf_fetch_waker *w)
{
    if (!w)
        return;
    kf_thread_stop(w->thread, &w->lock, &w->cond, &w->stop);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
