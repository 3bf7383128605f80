/* xoshiro256** generator with splitmix64 seeding, plus the derived distributions the
 * simulator draws from. Only integer arithmetic and libm basics, so a seed replays exactly. */
#include "rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void kf_sim_rng_seed(kf_sim_rng *rng, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&x);
    if ((rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) == 0)
        rng->s[0] = 1;
}

uint64_t kf_sim_rng_next(kf_sim_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double kf_sim_rng_double(kf_sim_rng *rng)
{
    return (double)(kf_sim_rng_next(rng) >> 11) * 0x1.0p-53;
}

uint64_t kf_sim_rng_below(kf_sim_rng *rng, uint64_t n)
{
    if (n == 0)
        return 0;
    /* Rejection on the top of the range keeps every residue equally likely. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
    uint64_t x;
    do {
        x = kf_sim_rng_next(rng);
    } while (x >= limit);
    return x % n;
}

int64_t kf_sim_rng_range(kf_sim_rng *rng, int64_t lo, int64_t hi)
{
    if (lo >= hi)
        return lo;
    uint64_t span = (uint64_t)hi - (uint64_t)lo;
    uint64_t off = span == UINT64_MAX ? kf_sim_rng_next(rng) : kf_sim_rng_below(rng, span + 1);
    return (int64_t)((uint64_t)lo + off);
}

double kf_sim_rng_normal(kf_sim_rng *rng, double mean, double stddev)
{
    double u1;
    do {
        u1 = kf_sim_rng_double(rng);
    } while (u1 <= 0.0);
    double u2 = kf_sim_rng_double(rng);
    double z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
    return mean + stddev * z;
}

bool kf_sim_rng_chance(kf_sim_rng *rng, double p)
{
    if (p <= 0.0)
        return false;
    if (p >= 1.0)
        return true;
    return kf_sim_rng_double(rng) < p;
}
