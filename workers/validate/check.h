/* `kfleet-validate check`: validates a topic range or a JSON-lines / CSV file against one
 * contract once and reports per rule, as a table or as deterministic JSON, for CI gates. */
#ifndef KFLEET_VALIDATE_CHECK_H
#define KFLEET_VALIDATE_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "contract.h"
#include "kfleet/error.h"
#include "kfleet/registry.h"

typedef struct kf_check_options {
    const kf_contract *contract; /* borrowed */
    const char *file;            /* .jsonl/.json/.ndjson or .csv; or NULL for a topic */
    const char *topic;
    const char *from; /* topic start: an offset (every partition) or an ISO-8601 time; NULL =
                         the beginning */
    const char *to;   /* topic end, exclusive, in the same forms; NULL = the end at start-up */
    const char *const *kafka_kv; /* librdkafka pairs (borrowed) */
    size_t kafka_npairs;
    kf_registry *registry; /* borrowed; needed for a topic */
    int64_t timeout_ms;    /* reading a topic range must finish within this; 0 = 60000 */
    bool json;             /* deterministic JSON instead of the table */
} kf_check_options;

/* Runs the check and writes the report to out. Returns 0 when nothing failed, 1 when a
 * quarantine rule was violated, a record could not be decoded or a dataset rule was breached,
 * or a negative error (KF_ERR_CONFIG for bad options or input files, others for system
 * failures) with err filled and no report. */
int kf_check_run(const kf_check_options *o, FILE *out, kf_error *err);

/* Parses an ISO-8601 time ("2024-01-02", "2024-01-02T03:04:05.678Z", "...+02:00") into
 * milliseconds since the epoch. Returns 0 or KF_ERR_INVALID. */
int kf_check_parse_time(const char *s, int64_t *ms);

#endif
