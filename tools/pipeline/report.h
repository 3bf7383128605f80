/* The pipeline report: gathers what one run did from the simulator's files, the dead-letter
 * topics, Postgres, the consumer groups and the marker samples, prints it and checks it. */
#ifndef KFLEET_PIPELINE_REPORT_H
#define KFLEET_PIPELINE_REPORT_H

#include <stdio.h>

#include "pipeline.h"

typedef struct pl_report_opts {
    const char *prefix;     /* topic prefix of the run */
    const char *expect;     /* the simulator's --expect file */
    const char *changes;    /* the simulator's JSON-lines stream of the same seed */
    const char *sim_log;    /* the simulator's JSON log of the Kafka run */
    char *const *contracts; /* contract files the validate workers ran with */
    size_t ncontracts;
    const char *pg_dsn;
    const char *schema;         /* the sink's target schema */
    const char *validate_group; /* consumer groups of the stages */
    const char *sink_group;
    const char *samples;           /* marker samples (kfleet-pipeline watch); NULL: no latency */
    const char *produced_samples;  /* stage samples of watch; NULL: no per-stage latency */
    const char *validated_samples; /* (both or neither) */
    int sample_interval_ms;
    int64_t warmup_ms;      /* events of the first warmup_ms are left out of p50/p99 */
    const char *json_out;   /* the report as JSON; NULL: none */
    const char *series_out; /* per-second throughput and latency, tab-separated; NULL: none */
    pl_kafka kafka;
    kf_registry *registry;
} pl_report_opts;

/* Builds the report, prints it to out and writes the optional files. Returns 0 when every
 * check passed, 1 when one failed (printed), or a negative code with err filled when the
 * report could not be made. */
int pl_report(const pl_report_opts *o, FILE *out, kf_error *err);

#endif
