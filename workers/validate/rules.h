/* The rules engine: checks records against a contract's column rules (with the bounded state
 * that unique needs), counts rows for the dataset rules, and can roll a batch back when its
 * Kafka transaction aborts, so outputs stay deterministic. */
#ifndef KFLEET_VALIDATE_RULES_H
#define KFLEET_VALIDATE_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contract.h"
#include "kfleet/error.h"
#include "kfleet/event.h"

typedef struct kf_rules kf_rules;

/* One record's column values in the contract's column order (kf_contract.columns). */
typedef struct kf_row {
    const kf_cell *const *cells;  /* ncolumns entries; NULL = the record has no such column */
    const kf_column *const *cols; /* ncolumns entries or NULL: column types, when known */
    uint64_t row_key;             /* identity of the row (e.g. a hash of the Kafka key): a unique
                                     value seen again for the same row is no duplicate; 0 = every
                                     record is its own row */
    int64_t ts_ms;                /* record time, for time windows */
} kf_row;

/* The outcome of checking one record. */
typedef struct kf_verdict {
    const kf_rule *failed; /* the first violated quarantine rule (borrowed), or NULL: valid */
    char message[512];     /* why it failed, naming the column and value */
    size_t nquarantine;    /* quarantine rules violated */
    size_t nwarn;          /* warn rules violated */
} kf_verdict;

/* Called for every violation (both severities) with the rule and a message, both borrowed. */
typedef void (*kf_violation_fn)(void *ctx, const kf_rule *rule, const char *message);

/* A dataset rule breached in a window [start_ms, end_ms) (0, 0 for a batch window). */
typedef void (*kf_breach_fn)(void *ctx, const kf_rule *rule, int64_t rows, int64_t start_ms,
                             int64_t end_ms);

/* Batches open at once at most (see kf_rules_begin). */
#define KF_RULES_MAX_OPEN 2

/* State for contract c (borrowed; must outlive the engine). max_batch is the most records
 * checked from the kf_rules_begin of the oldest open batch to its commit or rollback (with
 * two open batches, both of theirs): unique windows keep that many extra entries so a
 * rollback is exact. NULL + err on failure. */
kf_rules *kf_rules_new(const kf_contract *c, size_t max_batch, kf_error *err);
void kf_rules_destroy(kf_rules *r); /* NULL is a no-op */

/* Reports every violation to fn (NULL: none). fn and ctx are borrowed. */
void kf_rules_set_violation_fn(kf_rules *r, kf_violation_fn fn, void *ctx);

/* Checks one record and fills *v. Counts it for the dataset rules. Returns 0, or
 * KF_ERR_STATE when more than max_batch records were checked in one batch. */
int kf_rules_check(kf_rules *r, const kf_row *row, kf_verdict *v);

/* Checks the after image of a decoded event: creates, reads and updates are checked; deletes,
 * truncates and tombstones pass (and are not counted as rows). key/key_len is the Kafka key
 * (row identity for unique; may be NULL). */
int kf_rules_check_event(kf_rules *r, const kf_event *ev, const void *key, size_t key_len,
                         int64_t ts_ms, kf_verdict *v);

/* Batch boundaries for read-process-write: begin remembers the state and opens a batch;
 * end_batch evaluates the per-batch dataset rules of the newest open batch; commit makes the
 * oldest open batch's counters final and reports the breaches found in it (or, with no batch
 * open, since the last commit) to fn (may be NULL); rollback restores the state from before
 * the oldest open batch and closes every open batch (their records will be checked again).
 * Up to KF_RULES_MAX_OPEN batches may be open, so the next batch can be checked while the
 * previous one's transaction commits: a second begin after the first batch's end_batch. begin
 * returns KF_ERR_STATE when that many are open already. Without begin, everything
 * accumulates until commit. */
int kf_rules_begin(kf_rules *r);
void kf_rules_rollback(kf_rules *r);
void kf_rules_end_batch(kf_rules *r);
void kf_rules_commit(kf_rules *r, kf_breach_fn fn, void *ctx);

/* How many batches are open. */
size_t kf_rules_open(const kf_rules *r);

/* End of input (batch mode): the open time windows are evaluated for max_rows (a partial
 * window cannot prove a min_rows breach). Call before the last commit. */
void kf_rules_close_windows(kf_rules *r);

/* Closes the time windows of the dataset rules that a quiet stream left open. Windows close
 * on record time: a record of a later window ends the open one. When no record was counted
 * since the previous tick, record time is taken to move on with the clock (now_ms, a
 * monotonic clock in ms) from the newest record time seen; every open window whose end that
 * passes is evaluated (min_rows and max_rows) and its breach reported to fn (may be NULL) at
 * once, as are the empty windows up to the current one, which stays open with no rows. Call
 * it between batches, regularly, also when no record arrives; while a batch is open it does
 * nothing (a rollback would bring the closed windows back). */
void kf_rules_tick(kf_rules *r, int64_t now_ms, kf_breach_fn fn, void *ctx);

/* Committed counters: records checked, and violations of rule i (contract order). */
uint64_t kf_rules_checked(const kf_rules *r);
uint64_t kf_rules_violations(const kf_rules *r, size_t i);

/* Parsers behind dtype, exposed for tests: true when s (length len) is a valid value. */
bool kf_parse_is_int(const char *s, size_t len);
bool kf_parse_is_float(const char *s, size_t len);
bool kf_parse_is_bool(const char *s, size_t len);
bool kf_parse_is_date(const char *s, size_t len);
bool kf_parse_is_timestamp(const char *s, size_t len);

#endif
