/* The default transactional.id of a kfleet-validate instance.
 *
 * With KIP-447 (Kafka 2.5+, used by librdkafka 2.0 when send_offsets_to_transaction gets the
 * consumer's group metadata) a zombie that lost its partitions is fenced by the group
 * coordinator through the group generation, whatever its transactional.id. The id therefore
 * no longer has to follow the input partitions; what it must be is unique among running
 * instances: two live producers with one id fence each other at every init_transactions, so
 * the old default <group>-<hostname> broke two replicas on one machine. Reusing an id after a
 * restart is still worth having: init_transactions then aborts the predecessor's open
 * transaction at once (instead of after transaction.timeout.ms, during which read_committed
 * consumers downstream are stuck behind it) and fences its producer. Hence, in order:
 *   - group.instance.id, stable per instance by definition and unique (the broker fences a
 *     duplicate static member);
 *   - hostname + the lowest free slot among lock files on the machine, so the replicas on one
 *     host get 0, 1, ... and a restarted replica takes back the slot its dead predecessor
 *     held (flock is released when a process dies, kill -9 included);
 *   - hostname + pid when no lock file can be used: unique, but a restart cannot fence. */
#include "txnid.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "kfleet/log.h"

#define MAX_SLOTS 64

struct kf_txnid {
    char *id;
    int fd; /* the locked slot file, or -1 */
    int slot;
};

/* Group names may hold characters a file name cannot. */
static void file_safe(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (; *in && o + 1 < cap; in++)
        out[o++] = *in == '/' ? '_' : *in;
    out[o] = '\0';
}

static int lock_slot(const char *dir, const char *group, int *slot_out)
{
    char safe[200], path[4096];
    file_safe(group, safe, sizeof(safe));
    for (int slot = 0; slot < MAX_SLOTS; slot++) {
        snprintf(path, sizeof(path), "%s/kfleet-validate.%s.%d.lock", dir, safe, slot);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            *slot_out = slot;
            return fd;
        }
        close(fd);
    }
    return -1;
}

kf_txnid *kf_txnid_new(const char *group, const char *instance_id, const char *lock_dir,
                       kf_error *err)
{
    kf_txnid *t = calloc(1, sizeof(*t));
    if (!t) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate transactional id");
        return NULL;
    }
    t->fd = -1;
    t->slot = -1;
    char host[256] = "localhost", buf[1024];
    if (gethostname(host, sizeof(host) - 1) != 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    if (instance_id && *instance_id) {
        snprintf(buf, sizeof(buf), "%s-%s", group, instance_id);
    } else {
        t->fd = lock_slot(lock_dir && *lock_dir ? lock_dir : "/tmp", group, &t->slot);
        if (t->fd >= 0) {
            snprintf(buf, sizeof(buf), "%s-%s-%d", group, host, t->slot);
        } else {
            snprintf(buf, sizeof(buf), "%s-%s-pid%ld", group, host, (long)getpid());
            kf_log(KF_LOG_WARN,
                   "could not lock an instance slot file; the transactional id is per "
                   "process, so a restart cannot fence its predecessor's open transaction",
                   "dir", lock_dir && *lock_dir ? lock_dir : "/tmp", "reason", strerror(errno),
                   (char *)NULL);
        }
    }
    if (!(t->id = strdup(buf))) {
        kf_txnid_destroy(t);
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate transactional id");
        return NULL;
    }
    return t;
}

void kf_txnid_destroy(kf_txnid *t)
{
    if (!t)
        return;
    if (t->fd >= 0)
        close(t->fd); /* releases the flock */
    free(t->id);
    free(t);
}

const char *kf_txnid_id(const kf_txnid *t)
{
    return t->id;
}

int kf_txnid_slot(const kf_txnid *t)
{
    return t->slot;
}
