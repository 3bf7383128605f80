/* Materializing dead-letter records into Postgres (kfleet_meta.quarantine) for review in SQL:
 * original columns as JSON, the error reason and rule id, and the origin coordinates. */
#ifndef KFLEET_REPLAY_MATERIALIZE_H
#define KFLEET_REPLAY_MATERIALIZE_H

#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "kfleet/error.h"
#include "kfleet/registry.h"

typedef struct kf_quarantine kf_quarantine;

/* Connects with the libpq keywords/values (NULL-terminated, borrowed; "dbname" may be a URI),
 * creates the schema and table when missing and prepares the insert. registry (borrowed, may
 * be NULL) decodes values into the JSON column. NULL + err on failure. */
kf_quarantine *kf_quarantine_open(const char *const *keys, const char *const *values,
                                  kf_registry *registry, kf_error *err);
void kf_quarantine_close(kf_quarantine *q); /* NULL is a no-op */

/* One database transaction per batch: begin starts an empty batch; add copies one DLQ record
 * (borrowed) into it; commit writes the whole batch in one transaction (COPY into a staging
 * table, then one INSERT ... ON CONFLICT DO NOTHING), so a record already stored (same DLQ
 * topic, partition, offset) is left as it is and a repeated batch is harmless. On a commit
 * error nothing of the batch is stored; rollback drops the batch. */
int kf_quarantine_begin(kf_quarantine *q, kf_error *err);
int kf_quarantine_add(kf_quarantine *q, const rd_kafka_message_t *m, kf_error *err);
int kf_quarantine_commit(kf_quarantine *q, kf_error *err);
void kf_quarantine_rollback(kf_quarantine *q);

/* Rows newly inserted by the committed batches (records stored before are not counted). */
uint64_t kf_quarantine_inserted(const kf_quarantine *q);

#endif
