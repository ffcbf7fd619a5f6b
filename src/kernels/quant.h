/* Blockwise quantization of optimizer states: the code maps, nearest-code
 * search, and 4-bit packing, shared by every backend.
 *
 * A state tensor is cut into blocks of B consecutive elements (B a power of two,
 * 64..4096); each block keeps one f32 scale (its absmax) and one code per
 * element; a code indexes a sorted map of values in [-1, 1]. Dequantized value
 * = map[code] * scale.
 *
 * Two rounding rules, one per reference:
 *  - bitsandbytes (lt_q_nearest_even): the nearest map value, decided exactly
 *    (in double), ties to the even index.
 *  - torchao (lt_q_nearest_up): with d the largest code whose value <= x,
 *    take d+1 when (float)(x - map[d]) >= (float)(map[d+1] - map[d]) * 0.5f,
 *    in f32 arithmetic as torchao computes it (ties go up).
 *
 * Fast search: each rule is a step function of x, so it is fully described by
 * thresholds th[c] (code c+1 is chosen over c when x >= th[c]; computed from
 * the exact rule, so ties and f32 rounding are already in them). lt_qtable
 * holds, for every value of a float's top 16 bits, the code of the smallest
 * float with those bits; when no bucket contains two thresholds (checked when
 * the table is built, true for the shipped maps) one compare finishes the
 * search: c = near[bits >> 16]; c += x >= th[c]. Otherwise the table falls back
 * to the plain search. tests/test_quant.c proves the two equal.
 *
 * 4-bit packing: two codes per byte, element 2i in the high nibble and element
 * 2i+1 in the low nibble (torchao's order); an odd count leaves the last low
 * nibble 0. */
#ifndef LT_KERNELS_QUANT_H
#define LT_KERNELS_QUANT_H

#include <stddef.h>
/* lt_q_nearest_even_ref / lt_q_nearest_up_ref (declared below) are the two rules by a
 * plain scan of the map: the reference the fast search is tested against. */
#include <stdint.h>
#include <string.h>

/* The maps of ../shared/golden/dynamic-maps.txt, generated at build time. */
extern const float lt_qmap_signed8[256];   /* bitsandbytes / torchao first moment, 8-bit */
extern const float lt_qmap_unsigned8[256]; /* second moment, 8-bit */
extern const float lt_qmap_signed4[16];    /* torchao 4-bit first moment */
extern const float lt_qmap_linear4[16];    /* torchao 4-bit second moment: (i+1)/16 */

typedef enum lt_qrule { LT_Q_EVEN = 0, LT_Q_UP = 1 } lt_qrule;

typedef struct lt_qtable {
    float map[256];
    int n;                /* 16 or 256 */
    lt_qrule rule;
    int fast;             /* 1 when the one-compare search is exact for this map */
    float th[256];        /* th[c]: the smallest x that rounds to c+1 or above; +inf for the last code */
    int32_t thk[256];     /* th as ordered integer keys (lt_f32_key), for a compare without NaN handling */
    int nneg;             /* codes 0..nneg-1 have the sign bit set (the map is sorted) */
    uint8_t near[65536];  /* by the top 16 bits of a float: 64 KiB, mostly cache-resident */
} lt_qtable;

/* Fills t for a sorted map of n (2..256) finite values and a rounding rule.
 * Returns 0, or -1 when the map is not sorted ascending or not finite. */
int lt_qtable_build(lt_qtable *t, const float *map, int n, lt_qrule rule);

static inline uint32_t lt_f32_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

/* A float's bits as an integer that orders like the float (for non-NaN values;
 * -0 and +0 get different keys, and -0 < +0 in key order). */
static inline int32_t lt_f32_key(float x) {
    int32_t i;
    memcpy(&i, &x, 4);
    return i ^ ((i >> 31) & 0x7fffffff);
}

int lt_q_nearest_even_ref(const float *map, int n, float x);
int lt_q_nearest_up_ref(const float *map, int n, float x);

/* The code of x under t's rule. x must not be NaN. */
static inline int lt_q_nearest(const lt_qtable *t, float x) {
    if (t->fast) {
        int c = t->near[lt_f32_bits(x) >> 16];
        return c + (lt_f32_key(x) >= t->thk[c]);
    }
    return t->rule == LT_Q_EVEN ? lt_q_nearest_even_ref(t->map, t->n, x) : lt_q_nearest_up_ref(t->map, t->n, x);
}


/* 4-bit packed codes. */
static inline int lt_q4_get(const uint8_t *codes, size_t i) {
    uint8_t b = codes[i >> 1];
    return (i & 1) ? (b & 0x0f) : (b >> 4);
}
static inline void lt_q4_set(uint8_t *codes, size_t i, int c) {
    uint8_t *b = &codes[i >> 1];
    *b = (i & 1) ? (uint8_t)((*b & 0xf0) | (c & 0x0f)) : (uint8_t)((*b & 0x0f) | ((c & 0x0f) << 4));
}

#endif
