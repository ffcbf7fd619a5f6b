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
 * Fast search: lt_qtable holds, for every value of a float's top 16 bits, the
 * largest code <= every float with those bits; a short forward scan finishes
 * it (for the shipped maps a bucket never holds two code values, so the scan
 * is at most one step). tests/test_quant.c proves it equal to the plain search.
 *
 * 4-bit packing: two codes per byte, element 2i in the high nibble and element
 * 2i+1 in the low nibble (torchao's order); an odd count leaves the last low
 * nibble 0. */
#ifndef LT_KERNELS_QUANT_H
#define LT_KERNELS_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The maps of ../shared/golden/dynamic-maps.txt, generated at build time. */
extern const float lt_qmap_signed8[256];   /* bitsandbytes / torchao first moment, 8-bit */
extern const float lt_qmap_unsigned8[256]; /* second moment, 8-bit */
extern const float lt_qmap_signed4[16];    /* torchao 4-bit first moment */
extern const float lt_qmap_linear4[16];    /* torchao 4-bit second moment: (i+1)/16 */

typedef struct lt_qtable {
    float map[256];
    int n;                /* 16 or 256 */
    uint8_t floor[65536]; /* by the top 16 bits of a float */
} lt_qtable;

/* Fills t for a sorted map of n (<= 256) finite values. Returns 0, or -1 when the
 * map is not sorted ascending or not finite. */
int lt_qtable_build(lt_qtable *t, const float *map, int n);

static inline uint32_t lt_f32_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

/* Largest code whose value is <= x (0 when x is below map[0]). x must not be NaN. */
static inline int lt_q_floor(const lt_qtable *t, float x) {
    int i = t->floor[lt_f32_bits(x) >> 16];
    while (i + 1 < t->n && x >= t->map[i + 1]) i++;
    return i;
}

/* bitsandbytes' rule: nearest value, ties to the even index. */
static inline int lt_q_nearest_even(const lt_qtable *t, float x) {
    int i = lt_q_floor(t, x);
    if (i + 1 >= t->n) return i;
    double dlo = (double)x - (double)t->map[i], dhi = (double)t->map[i + 1] - (double)x;
    if (dhi < dlo || (dhi == dlo && ((i + 1) & 1) == 0)) return i + 1;
    return i;
}

/* torchao's rule (see the header comment). */
static inline int lt_q_nearest_up(const lt_qtable *t, float x) {
    int d = lt_q_floor(t, x);
    int u = d + 1 < t->n ? d + 1 : d;
    float res = x - t->map[d], half = (t->map[u] - t->map[d]) * 0.5f;
    return res >= half ? u : d;
}

/* The same two rules by a plain scan of the map: the reference for tests. */
int lt_q_nearest_even_ref(const float *map, int n, float x);
int lt_q_nearest_up_ref(const float *map, int n, float x);

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
