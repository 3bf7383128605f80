/* The run loop of kfleet-sim: drives the engine into an output, regenerates a resumed run
 * silently up to its recorded point, paces the stream, records progress once the destination
 * holds it, and reports progress, metrics and a per-table summary. */
#ifndef KF_SIM_RUN_H
#define KF_SIM_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "engine.h"
#include "kfleet/error.h"
#include "kfleet/metrics.h"
#include "output.h"
#include "spec.h"
#include "state.h"

typedef struct kf_sim_run_config {
    /* seed, start_us, tick_us, batch_size and max_events of the engine; its callbacks are
     * the run loop's own */
    kf_sim_engine_config engine;
    uint64_t max_batches;      /* 0 = no limit */
    int64_t duration_ms;       /* stop generating after this long; 0 = no limit */
    double rate;               /* changes per second; 0 = as fast as the output takes them */
    uint64_t resume_seq;       /* changes 1..resume_seq are regenerated but not output; 0 = fresh */
    const char *state_path;    /* progress file, or NULL for none; borrowed */
    kf_sim_state state;        /* what the progress file records (acked_seq is filled in) */
    int64_t state_interval_ms; /* shortest time between two progress writes; 0 = 1000 */
    const char *expect_path;   /* expected final state, or NULL; borrowed */
    FILE *history;             /* schema changes as JSON lines, or NULL; borrowed */
    bool progress;             /* a progress line on stderr, refreshed every second */
    kf_metrics *metrics;       /* kfleet_sim_* metrics, or NULL; borrowed */
    int close_timeout_ms;      /* for the output's final flush; 0 = 60000 */
} kf_sim_run_config;

typedef struct kf_sim_run_result {
    uint64_t events;   /* changes generated, replayed ones included */
    uint64_t replayed; /* changes regenerated silently for --resume */
    uint64_t durable;  /* the last change the destination holds (recorded in the state) */
    bool stopped;      /* a stop signal ended the run early */
    uint64_t emitted;  /* changes handed to the output (events - replayed) */
    /* From just before the first change was handed to the output until the output was closed
     * (everything flushed and acknowledged, or committed): the output's own throughput, with
     * start-up (specs, topics, schemas, tables) and the final summary left out. 0 when
     * nothing was output. */
    int64_t output_ms;
} kf_sim_run_result;

/* Runs the engine over spec (borrowed) into out until the event, batch or time limit, the
 * engine's end, or a stop signal; then closes the output, records the final progress and
 * writes the expected state. The output is opened here and closed, not destroyed. Returns 0,
 * or a negative error with err filled; *res is filled in either case. */
int kf_sim_run(const kf_sim_spec *spec, const kf_sim_run_config *cfg, kf_sim_output *out,
               kf_sim_run_result *res, kf_error *err);

#endif
