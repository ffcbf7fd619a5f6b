/* Counter-based random bits for dropout: Philox4x32-10 (Salmon, Moraes, Dror,
 * Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011), the generator
 * cuRAND and PyTorch's CUDA dropout use. Four 32-bit outputs are a pure
 * function of a 128-bit counter and a 64-bit key, so any element's bits are
 * computed where they are needed: the CPU and CUDA kernels draw the same mask
 * for the same element, a backward (or a checkpointed block's recomputation)
 * draws the forward's mask again instead of storing it, and a resumed run
 * draws what the uninterrupted one did. Compiled by the C compiler and nvcc. */
#ifndef LT_KERNELS_PHILOX_H
#define LT_KERNELS_PHILOX_H

#include <stdint.h>

#include "kernels/optim_kernels.h" /* LT_KHD */

#define LT_PHILOX_M0 0xD2511F53u
#define LT_PHILOX_M1 0xCD9E8D57u
#define LT_PHILOX_W0 0x9E3779B9u /* key schedule: golden ratio */
#define LT_PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */

/* One Philox4x32 round on the counter words c0..c3 with the round's key k0, k1 (callers that run many counters
 * a round at a time, to vectorize, call it on each). */
LT_KHD static inline void lt_philox_round(uint32_t *c0, uint32_t *c1, uint32_t *c2, uint32_t *c3, uint32_t k0,
                                          uint32_t k1) {
    const uint64_t p0 = (uint64_t)LT_PHILOX_M0 * *c0, p1 = (uint64_t)LT_PHILOX_M1 * *c2;
    const uint32_t n0 = (uint32_t)(p1 >> 32) ^ *c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ *c3 ^ k1;
    *c1 = (uint32_t)p1;
    *c3 = (uint32_t)p0;
    *c0 = n0;
    *c2 = n2;
}

/* c[4] = Philox4x32-10(c, key k0, k1) in place. Random123's known answers:
 * counter 0, key 0 -> 6627e8d5 e169c58d bc57ac4c 9b00dbd8 (tests/test_gpt2.c). */
LT_KHD static inline void lt_philox4x32_10(uint32_t c[4], uint32_t k0, uint32_t k1) {
    for (int r = 0; r < 10; r++) {
        lt_philox_round(&c[0], &c[1], &c[2], &c[3], k0, k1);
        k0 += LT_PHILOX_W0;
        k1 += LT_PHILOX_W1;
    }
}

/* One dropout site of one forward: which elements it zeroes.
 * Element i (row-major index within the site's tensor) draws word i % 4 of
 * Philox(counter = {i / 4 low 32 bits, i / 4 high 32 bits, site, stream},
 * key = {k0, k1}) and is kept when that word is >= threshold, i.e. with
 * probability 1 - threshold / 2^32 = 1 - p (p rounded down to a multiple of
 * 2^-32); a kept value is multiplied by scale = 1 / (1 - p). */
typedef struct lt_dropout {
    uint32_t threshold; /* floor(p * 2^32); 0: the site is off */
    float scale;        /* 1 / (1 - p) in float */
    uint32_t k0, k1;    /* the run's key (from its seed) */
    uint32_t site;      /* which tensor: GPT-2 numbers them 0 (embeddings), 1 + 3 l, 2 + 3 l, 3 + 3 l (block l's
                           attention probabilities, attention output, mlp output) */
    uint32_t stream;    /* which forward: the trainer's micro-batch count, so that every micro-batch of every
                           step draws new masks */
} lt_dropout;

/* The site of a forward for dropout probability p in [0, 1): threshold floor(p 2^32) (0, the site off, for p
 * under 2^-32), scale 1 / (1 - p), the key from the run's seed (splitmix64 of it, so that nearby seeds give
 * unrelated keys). */
static inline lt_dropout lt_dropout_make(double p, uint64_t seed, uint32_t site, uint32_t stream) {
    uint64_t z = seed + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    lt_dropout d;
    d.threshold = p > 0.0 && p < 1.0 ? (uint32_t)(p * 4294967296.0) : 0;
    d.scale = (float)(1.0 / (1.0 - p));
    d.k0 = (uint32_t)z;
    d.k1 = (uint32_t)(z >> 32);
    d.site = site;
    d.stream = stream;
    return d;
}

/* The four words of element group g (elements 4 g .. 4 g + 3) of site d into w[4]. */
LT_KHD static inline void lt_dropout_group(const lt_dropout *d, uint64_t g, uint32_t w[4]) {
    w[0] = (uint32_t)g;
    w[1] = (uint32_t)(g >> 32);
    w[2] = d->site;
    w[3] = d->stream;
    lt_philox4x32_10(w, d->k0, d->k1);
}

/* Whether element i of site d is kept (one Philox call; a loop over many elements takes lt_dropout_group once per
 * group of four). */
LT_KHD static inline int lt_dropout_keep(const lt_dropout *d, uint64_t i) {
    uint32_t w[4];
    lt_dropout_group(d, i >> 2, w);
    return w[i & 3] >= d->threshold;
}

/* Uniform noise (NEFTune's, the Trainer's neftune_noise_alpha) on a tensor of one forward: element i draws word
 * i % 4 of the counter a dropout site of the same key, site and stream draws (lt_dropout_group) and adds
 * mag x (2 u - 1), u = (word >> 8) / 2^24: uniform on [-mag, mag) in steps of mag 2^-23. */
typedef struct lt_noise {
    lt_dropout d; /* the key, site and stream (threshold, scale unused) */
    float mag;    /* 0: no noise */
} lt_noise;

/* The noise of magnitude mag of site `site` in forward `stream` of the run with `seed`. */
static inline lt_noise lt_noise_make(float mag, uint64_t seed, uint32_t site, uint32_t stream) {
    lt_noise z;
    z.d = lt_dropout_make(0.0, seed, site, stream);
    z.mag = mag;
    return z;
}

/* The value of a word: 2 u - 1 is exact in float (a multiple of 2^-23 in [-1, 1)), so the product with mag is
 * the one rounding, kept apart from any add that follows (no fused multiply-add on the device). */
LT_KHD static inline float lt_noise_value(uint32_t word, float mag) {
    const float u = (float)(word >> 8) * 0x1p-24f;
#ifdef __CUDA_ARCH__
    return __fmul_rn(2.0f * u - 1.0f, mag);
#else
    return (2.0f * u - 1.0f) * mag;
#endif
}

/* Element i's noise (one Philox call). */
LT_KHD static inline float lt_noise_at(const lt_noise *z, uint64_t i) {
    uint32_t w[4];
    lt_dropout_group(&z->d, i >> 2, w);
    return lt_noise_value(w[i & 3], z->mag);
}

#endif
