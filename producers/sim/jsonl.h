/* JSON-lines output of the simulator: one line per change, one per schema change, and a
 * closing summary; the debugging output of kfleet-sim (--to stdout) and the evolution
 * history file. */
#ifndef KF_SIM_JSONL_H
#define KF_SIM_JSONL_H

#include <stdio.h>

#include "engine.h"
#include "output.h"

typedef struct kf_sim_jsonl kf_sim_jsonl;

/* Writes changes and schema changes to out, and schema changes also to history (may be
 * NULL). Borrows both streams: the caller closes them after destroying the writer. */
kf_sim_jsonl *kf_sim_jsonl_new(FILE *out, FILE *history);
void kf_sim_jsonl_destroy(kf_sim_jsonl *j); /* NULL is a no-op */

/* kf_sim_change_fn with ctx = a kf_sim_jsonl: writes
 * {"type":"change","seq":..,"ts":..,"database":..,"table":..,"op":"c|u|d","schema_version":..,
 *  "key":{..},"before":{..}|null,"after":{..}|null} with the active columns. Returns 0,
 * KF_ERR_NOMEM or KF_ERR_IO. */
int kf_sim_jsonl_change(void *ctx, const kf_sim_table *table, const kf_sim_change *ch);

/* kf_sim_evolve_fn with ctx = a kf_sim_jsonl: writes the schema change line. */
int kf_sim_jsonl_evolution(void *ctx, const kf_sim_table *table, const kf_sim_evolution *ev);

/* Writes {"type":"summary",...}: seed, events, batches, and per table its counts, schema
 * version, columns with state and type, evolutions by action and injected errors by column
 * and constraint. Returns 0, KF_ERR_NOMEM or KF_ERR_IO. */
int kf_sim_jsonl_summary(kf_sim_jsonl *j, const kf_sim_engine *e);

/* Flushes the streams; KF_ERR_IO if any write failed since creation. */
int kf_sim_jsonl_flush(kf_sim_jsonl *j);

/* Fills *out (caller storage) with the --to stdout output over j (borrowed; the caller
 * destroys it, the output's destroy does nothing): every change and schema change as a line,
 * and the summary line when the output is closed after a complete run. */
void kf_sim_jsonl_output(kf_sim_jsonl *j, kf_sim_output *out);

#endif
