/* The progress file of a simulator run: what regenerates the stream (seed, clock, batch size,
 * a digest of the specs) and the last change the destination durably holds, so --resume
 * replays the run silently up to there and continues. */
#ifndef KF_SIM_STATE_H
#define KF_SIM_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kfleet/error.h"

#define KF_SIM_STATE_FILE "kfleet-sim.state.json"

typedef struct kf_sim_state {
    uint64_t seed;
    int64_t start_us;
    int64_t tick_us;
    uint32_t batch_size;
    uint64_t spec_digest; /* FNV-1a 64 of the spec files' bytes, in load order */
    char output[16];      /* "kafka", "postgres", "mysql" */
    uint64_t acked_seq;   /* every change up to this sequence reached the destination */
} kf_sim_state;

/* Reads path into *out. KF_ERR_NOT_FOUND when the file does not exist, KF_ERR_CONFIG when it
 * is not a state file (with the reason), KF_ERR_IO when it cannot be read. */
int kf_sim_state_load(const char *path, kf_sim_state *out, kf_error *err);

/* Writes st to path atomically: a temporary file in the same directory, fsync, rename.
 * Returns 0 or KF_ERR_IO with err filled. */
int kf_sim_state_save(const char *path, const kf_sim_state *st, kf_error *err);

/* Whether a run planned as want may continue the run recorded in prev (loaded from path):
 * the same specs (digest), sim.tick.us, sim.batch.size and output, and the same seed when
 * seed_given (without --seed the recorded one is used). KF_ERR_CONFIG naming the first
 * setting that differs, with both values, else 0. */
int kf_sim_state_check_resume(const kf_sim_state *prev, const kf_sim_state *want, bool seed_given,
                              const char *path, kf_error *err);

/* FNV-1a 64 over the bytes of the files, in order (continuing from *digest; start with
 * KF_SIM_DIGEST_INIT). Returns 0 or KF_ERR_IO. */
#define KF_SIM_DIGEST_INIT 0xcbf29ce484222325ULL
int kf_sim_state_digest_file(const char *path, uint64_t *digest, kf_error *err);

#endif
