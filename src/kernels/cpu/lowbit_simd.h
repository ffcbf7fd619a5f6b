/* The AVX-512 path of the low-bit optimizer kernels (lowbit_avx512.c), chosen at
 * run time by lowbit_cpu.c. Every function here gives the same bits as the
 * scalar code of lowbit_cpu.c: the same codes, scales and parameters.
 *
 * Nearest-code search. With a table whose one-compare search is exact
 * (lt_qtable.fast), the scalar rule is: for finite x, the code is the number of
 * thresholds th[0..n-2] that are <= x (float compare; -0 >= +0); +inf and every
 * NaN with the sign bit clear give code 1, -inf and every NaN with the sign bit
 * set give code 0 (how the bucket table treats the buckets that hold them).
 *
 * 256-entry maps: one gather per 16 values from a table indexed by the
 * float's top 16 bits (65536 int32 entries, 256 KiB, built once per distinct
 * map and kept; the hot part is a few KiB). The scalar code is the bucket's
 * first code, plus 1 when the ordered key (lt_f32_key) reaches the threshold
 * inside the bucket, if any; the entry stores the code times 65536 plus 65536
 * minus the threshold's low 16 bits, so the code is (entry + (key & 0xffff))
 * >> 16, with no compare. The entries are the scalar rule's own answers,
 * special values included. Without such a table (more distinct maps than the
 * cache keeps): a branch-free binary search whose 8 steps fetch each lane's
 * pivot with permutes and add its bit on a compare. 16-entry maps always use
 * that search, in 4 steps (+inf and positive NaNs then set to code 1).
 *
 * Dequantization: 16-entry maps by one permute; 256-entry maps by a gather in
 * the bitsandbytes kernels, and in torchao's (where gathers measured slower)
 * 64 codes at a time by byte permutes on the four byte planes of the map (two
 * 128-byte tables each) and byte/word interleaves that join the four bytes.
 *
 * The block kernels make three short passes over a block: dequantize, update
 * and absmax (one pass), then quantize each state from an L1 buffer; the
 * quantizing passes prefetch the next block's parameters, gradients and codes.
 *
 * Selection: the vector path runs when the CPU has AVX-512 F/BW/VL/DQ/VBMI, the
 * environment variable LT_LOWBIT_SCALAR is unset or "0" (read once), and
 * lt_lowbit_simd_force has not turned it off; a map whose table is not `fast`
 * always takes the scalar path. */
#ifndef LT_KERNELS_CPU_LOWBIT_SIMD_H
#define LT_KERNELS_CPU_LOWBIT_SIMD_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/optim_kernels.h"
#include "kernels/quant.h"

/* A map prepared for the vector kernels. */
typedef struct lt_lbtab {
    _Alignas(64) float map[256]; /* the map; entries past n repeat the last one */
    _Alignas(64) float lv[320];  /* the thresholds by search step (see lowbit_avx512.c) */
    _Alignas(64) uint8_t planes[4][256]; /* byte k of every map entry's bits, for byte-wise dequantization */
    const int32_t *gtab;         /* the bucket table of the gather search, or NULL */
    int n;                       /* map entries: 16 or fewer use 4 steps, more use 8 */
    int nneg;                    /* codes below nneg have the sign bit set */
} lt_lbtab;

/* 1 when the kernels take the AVX-512 path now. */
int lt_lowbit_simd(void);
/* Tests and benchmarks: mode 0 forces the scalar path, 1 allows the vector
 * path (when the CPU has it and LT_LOWBIT_SCALAR is not set), -1 restores the
 * default (the same as 1). Returns the previous mode. Not for use while a
 * kernel runs. */
int lt_lowbit_simd_force(int mode);

/* Prepares t for the vector kernels; returns 0 (and the caller keeps to the
 * scalar path) when t's table is not `fast`. */
int lt_lbtab_prepare(lt_lbtab *s, const struct lt_qtable *t);

/* One block of each optimizer on f32 buffers (len elements starting at a block
 * boundary; p and g as lowbit_cpu.c's p_view gives them). Codes, 8-bit one per
 * byte or 4-bit packed, start at the block's first byte; *ms / *vs are the
 * block's scales, read and then replaced. */
void lt_lb512_bnb_adam(float *p, const float *g, float gs, size_t len, const lt_kbnb *h, const lt_lbtab *tm,
                       uint8_t *mc, float *ms, const lt_lbtab *tv, uint8_t *vc, float *vs);
void lt_lb512_bnb_lion(float *p, const float *g, float gs, size_t len, const lt_kbnb *h, const lt_lbtab *tm,
                       uint8_t *mc, float *ms);
void lt_lb512_ao_adam(float *p, const float *g, float gs, size_t len, const lt_kao *h, const lt_lbtab *tm,
                      uint8_t *mc, float *ms, const lt_lbtab *tv, uint8_t *vc, float *vs);

/* The pieces, for the tests: out[i] = map[code_i] * scale (bits 8 or 4; 4-bit
 * codes packed, len even); and the codes of x[0..len) / amax as lowbit_cpu.c's
 * quantize_block computes them (amax <= 0 or NaN: x * 0), with bitsandbytes'
 * first-moment sign fix when signfix, written as bytes or packed nibbles. */
void lt_lb512_dequant(const lt_lbtab *t, const uint8_t *codes, size_t len, int bits, float scale, float *out);
void lt_lb512_quantize(const lt_lbtab *t, const float *x, size_t len, float amax, int signfix, int bits,
                       uint8_t *codes);

#endif
