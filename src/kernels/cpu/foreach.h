/* The CPU elementwise driver: splits a tensor into chunks, hands each chunk to a
 * kernel as plain f32 arrays (converting bf16/f16 operands through a per-thread
 * buffer), and writes converted operands back with one round-to-nearest-even.
 * f32 operands are passed in place, so the f32 path is a single pass. */
#ifndef LT_KERNELS_CPU_FOREACH_H
#define LT_KERNELS_CPU_FOREACH_H

#include "kernels/optim_kernels.h"

#define LT_CPU_CHUNK 1024

/* Hot loops are compiled twice on x86-64: for AVX2+FMA machines (wider vectors,
 * and fmaf() becomes one instruction) and for the baseline, picked at load
 * time. fmaf() is exactly rounded either way, so both give identical bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(LT_NO_CLONES)
#define LT_KERNEL __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define LT_KERNEL
#endif

/* a[0] = p, a[1] = g (read only), a[2..5] = s[0..3]; NULL where the operand is absent. */
typedef void (*lt_chunk_fn)(float *const *a, size_t n, float gscale, const void *h);

/* Runs fn over every chunk of t in parallel. The parameter and the state arrays
 * are written back; the gradient is only read. */
void lt_cpu_foreach(const lt_ktensor *t, lt_chunk_fn fn, const void *h);

/* lt_bf16_to_f32(lt_f32_to_bf16(x)) without a branch, so that loops using it vectorize: round to nearest even,
 * a NaN kept quiet with its top payload bits (the same bits as the two conversions). */
static inline float lt_round_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    const uint32_t nan = (u & 0xffff0000u) | 0x00400000u;
    const uint32_t r = (u & 0x7fffffffu) > 0x7f800000u ? nan : rounded;
    float y;
    memcpy(&y, &r, 4);
    return y;
}

/* Rounds x to what storing it as `dt` and reading it back gives. */
static inline float lt_round_to(float x, lt_dtype dt) {
    if (dt == LT_DTYPE_BF16) return lt_round_bf16(x);
    if (dt == LT_DTYPE_F16) return lt_f16_to_f32(lt_f32_to_f16(x));
    return x;
}

/* Software prefetch for the streaming kernels. On the machines measured (bench/RESULTS.md, 2026-11-28 night)
 * the hardware prefetchers keep too few lines in flight for a loop that streams its arrays from memory: asking
 * for each array's lines LT_PF_AHEAD bytes ahead of the element being computed, LT_PF_PIECE elements at a time,
 * made a stand-alone AdamW loop 15-20% faster and an in-place negate 20-25% (the library's AdamW step 4-10%,
 * Adafactor's 10-15%), where prefetching a whole chunk ahead at once made them slower. Prefetches are hints:
 * an address past the end of an array does not fault (it is formed as an integer, never as an out-of-bounds
 * pointer). Both sizes can be set at build time (-DLT_PF_PIECE=..,
 * -DLT_PF_AHEAD=..); results do not depend on them. */
#ifndef LT_PF_PIECE
#define LT_PF_PIECE 128
#endif
#ifndef LT_PF_AHEAD
#define LT_PF_AHEAD 2048
#endif

/* Prefetches the lines of [x + LT_PF_AHEAD, x + LT_PF_AHEAD + bytes) into L1, for writing when `write`. */
static inline void lt_prefetch_ahead(const void *x, size_t bytes, int write) {
    const uintptr_t a = (uintptr_t)x + LT_PF_AHEAD;
    if (write)
        for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch((const void *)(a + o), 1, 3);
    else
        for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch((const void *)(a + o), 0, 3);
}

/* Loads n elements of x (any float dtype) starting at element off into out. */
void lt_cpu_load_f32(lt_karr x, size_t off, float *out, size_t n);
/* Stores n f32 values into x (any float dtype) at element off, rounding once
 * (stochastically for bf16 when x.sr is set, with the bits of element off + i). */
void lt_cpu_store_f32(lt_karr x, size_t off, const float *in, size_t n);

#endif
