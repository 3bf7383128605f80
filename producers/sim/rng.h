/* Deterministic pseudo-random numbers for the simulator: xoshiro256** seeded with splitmix64,
 * so one seed gives the same stream on every platform (never rand()). */
#ifndef KF_SIM_RNG_H
#define KF_SIM_RNG_H

#include <stdbool.h>
#include <stdint.h>

/* A value type: callers embed it and own it; no allocation. */
typedef struct kf_sim_rng {
    uint64_t s[4];
} kf_sim_rng;

/* Seeds the four state words from seed through splitmix64 (never all zero). */
void kf_sim_rng_seed(kf_sim_rng *rng, uint64_t seed);

/* The next 64 random bits. */
uint64_t kf_sim_rng_next(kf_sim_rng *rng);

/* Uniform double in [0, 1) with 53 random bits. */
double kf_sim_rng_double(kf_sim_rng *rng);

/* Uniform integer in [0, n) without modulo bias; n == 0 returns 0. */
uint64_t kf_sim_rng_below(kf_sim_rng *rng, uint64_t n);

/* Uniform integer in [lo, hi], inclusive; lo > hi returns lo. Covers the full int64 range. */
int64_t kf_sim_rng_range(kf_sim_rng *rng, int64_t lo, int64_t hi);

/* Normal deviate with the given mean and standard deviation (Box-Muller, one value per call). */
double kf_sim_rng_normal(kf_sim_rng *rng, double mean, double stddev);

/* true with probability p (p <= 0 never draws and returns false; p >= 1 returns true). */
bool kf_sim_rng_chance(kf_sim_rng *rng, double p);

#endif
