/* The default transactional.id of a kfleet-validate instance: unique among the instances
 * running at once, and the same after a restart where that can be arranged (see txnid.c). */
#ifndef KFLEET_VALIDATE_TXNID_H
#define KFLEET_VALIDATE_TXNID_H

#include <stddef.h>

#include "kfleet/error.h"

typedef struct kf_txnid kf_txnid;

/* Derives the transactional.id of this instance (group, instance_id and lock_dir borrowed):
 *   - instance_id (the consumer's group.instance.id) set: "<group>-<instance_id>";
 *   - else "<group>-<host>-<slot>", slot being the lowest n in 0..63 whose lock file
 *     <lock_dir>/kfleet-validate.<group>.<n>.lock this process could lock; the lock is held
 *     until kf_txnid_destroy or the process ends (also on kill -9);
 *   - else (no slot could be locked) "<group>-<host>-pid<pid>", with a warning logged.
 * Returns NULL and fills err only when out of memory. */
kf_txnid *kf_txnid_new(const char *group, const char *instance_id, const char *lock_dir,
                       kf_error *err);

/* Releases the slot lock, if any. NULL is a no-op. */
void kf_txnid_destroy(kf_txnid *t);

/* The derived id, borrowed from t. */
const char *kf_txnid_id(const kf_txnid *t);

/* The slot index, or -1 when the id does not come from a slot. */
int kf_txnid_slot(const kf_txnid *t);

#endif
