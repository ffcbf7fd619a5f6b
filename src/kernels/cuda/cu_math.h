/* The per-element arithmetic of the CUDA kernels, written once in C that both
 * nvcc (device code) and the C compiler (tests/test_cuda_host.c) compile.
 *
 * Every function repeats its CPU twin's formula form exactly (the same fmaf
 * placements, the same division forms, torch's lerp), so that with IEEE
 * division and square root and no contraction (nvcc -fmad=false, gcc
 * -ffp-contract=off) a device step gives the CPU step's bits. The CPU twins:
 * kernels/cpu/elementwise_optim.c, lowbit_cpu.c, adafactor_cpu.c; the dtype
 * conversions of leantrain/dtype.h and util/dtype.c; the code search of
 * kernels/quant.h. tests/test_cuda_host.c checks each against its twin. */
#ifndef LT_KERNELS_CUDA_CU_MATH_H
#define LT_KERNELS_CUDA_CU_MATH_H

#include <stdint.h>
#include <string.h>

#include "kernels/optim_kernels.h"

#ifndef __CUDACC__
#include <math.h>
#endif

#define LT_CU_FLT_MAX 3.40282347e+38f

LT_KHD static inline uint32_t lt_cu_f2u(float f) {
#ifdef __CUDA_ARCH__
    return __float_as_uint(f);
#else
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
#endif
}

LT_KHD static inline float lt_cu_u2f(uint32_t u) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, 4);
    return f;
#endif
}

/* ---- dtype conversions (bit for bit those of leantrain/dtype.h and util/dtype.c) ---- */

LT_KHD static inline float lt_cu_bf16_to_f32(uint16_t h) { return lt_cu_u2f((uint32_t)h << 16); }

LT_KHD static inline uint16_t lt_cu_f32_to_bf16(float f) {
    uint32_t u = lt_cu_f2u(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

LT_KHD static inline uint16_t lt_cu_f32_to_bf16_sr(float f, uint32_t rnd16) {
    uint32_t u = lt_cu_f2u(f);
    if ((u & 0x7fffffffu) >= 0x7f800000u) return lt_cu_f32_to_bf16(f);
    u += rnd16 & 0xffffu;
    return (uint16_t)(u >> 16);
}

LT_KHD static inline float lt_cu_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else {
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400u));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13) | (man ? 0x400000u : 0);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    return lt_cu_u2f(u);
}

LT_KHD static inline uint16_t lt_cu_f32_to_f16(float f) {
    uint32_t u = lt_cu_f2u(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
    if (a < 0x38800000u) {
        if (a < 0x33000000u) return sign;
        uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e;
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (q & 1u))) q++;
        return (uint16_t)(sign | (uint16_t)q);
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1u);
    return (uint16_t)(sign | (uint16_t)((r - 0x38000000u) >> 13));
}

/* lt_round_to of kernels/cpu/foreach.h */
LT_KHD static inline float lt_cu_round_to(float x, int dt) {
    if (dt == LT_DTYPE_BF16) return lt_cu_bf16_to_f32(lt_cu_f32_to_bf16(x));
    if (dt == LT_DTYPE_F16) return lt_cu_f16_to_f32(lt_cu_f32_to_f16(x));
    return x;
}

/* torch's lerp, as in lowbit_cpu.c */
LT_KHD static inline float lt_cu_lerp(float a, float b, float w) {
    return w < 0.5f ? a + w * (b - a) : b - (b - a) * (1.0f - w);
}

/* ---- elementwise optimizers: one element, g is the stored gradient (scaled here) ---- */

/* elementwise_optim.c adam_chunk; vmax NULL without AMSGrad */
LT_KHD static inline void lt_em_adam(const lt_kadam *h, float gs, float *p, float g, float *m, float *v, float *vmax) {
    float pi = *p, gi = g * gs;
    gi = fmaf(h->l2, pi, gi);
    pi = pi * h->decay;
    float mi = fmaf(h->omb1, gi, *m * h->b1);
    float vi = fmaf(h->omb2 * gi, gi, *v * h->b2);
    float den;
    if (vmax) {
        float vm = *vmax > vi ? *vmax : vi;
        den = sqrtf(vm) / h->bc2_sqrt + h->eps;
        *vmax = vm;
    } else {
        den = sqrtf(vi) / h->bc2_sqrt + h->eps;
    }
    *p = pi + (-h->step_size * mi) / den;
    *m = mi;
    *v = vi;
}

/* elementwise_optim.c anyprec_body; comp NULL without Kahan */
LT_KHD static inline void lt_em_anyprec(const lt_kanyprec *h, float gs, int pdt, int mdt, int vdt, int cdt, float *p,
                                        float g, float *m, float *v, float *comp) {
    float gi = g * gs;
    float pi = *p * h->decay;
    float mi = lt_cu_round_to(fmaf(h->omb1, gi, lt_cu_round_to(*m * h->b1, mdt)), mdt);
    float vi = lt_cu_round_to(fmaf(h->omb2 * gi, gi, lt_cu_round_to(*v * h->b2, vdt)), vdt);
    float den = sqrtf(vi) / h->bc2_sqrt + h->eps;
    float upd = (-h->step_size * mi) / den;
    if (comp) {
        float ci = lt_cu_round_to(*comp + upd, cdt);
        float pn = lt_cu_round_to(pi + ci, pdt);
        float back = pi - pn;
        *comp = lt_cu_round_to(ci + back, cdt);
        pi = pn;
    } else {
        pi = pi + upd;
    }
    *p = pi;
    *m = mi;
    *v = vi;
}

/* elementwise_optim.c sgd_chunk; buf NULL without momentum */
LT_KHD static inline void lt_em_sgd(const lt_ksgd *h, float gs, float *p, float g, float *buf) {
    const float nlr = -h->lr;
    float gi = fmaf(h->wd, *p, g * gs);
    if (!buf) {
        *p = fmaf(nlr, gi, *p);
        return;
    }
    float b = h->first ? gi : fmaf(h->omdamp, gi, *buf * h->momentum);
    float d = h->nesterov ? fmaf(h->momentum, b, gi) : b;
    *buf = b;
    *p = fmaf(nlr, d, *p);
}

/* elementwise_optim.c adagrad_chunk */
LT_KHD static inline void lt_em_adagrad(const lt_kadagrad *h, float gs, float *p, float g, float *sum) {
    float gi = fmaf(h->wd, *p, g * gs);
    float s = fmaf(gi, gi, *sum);
    *sum = s;
    *p = *p + (-h->clr * gi) / (sqrtf(s) + h->eps);
}

/* elementwise_optim.c rmsprop_body; buf NULL without momentum, ga NULL unless centered */
LT_KHD static inline void lt_em_rmsprop(const lt_krmsprop *h, float gs, float *p, float g, float *sq, float *buf,
                                        float *ga) {
    const float nlr = -h->lr;
    float gi = fmaf(h->wd, *p, g * gs);
    float s = fmaf(h->omalpha * gi, gi, *sq * h->alpha);
    *sq = s;
    float avg;
    if (ga) {
        float gai = fmaf(h->omalpha, gi, *ga * h->alpha);
        *ga = gai;
        avg = sqrtf(fmaf(-gai, gai, s)) + h->eps;
    } else {
        avg = sqrtf(s) + h->eps;
    }
    if (buf) {
        float b = *buf * h->momentum + gi / avg;
        *buf = b;
        *p = fmaf(nlr, b, *p);
    } else {
        *p = *p + (nlr * gi) / avg;
    }
}

/* elementwise_optim.c lion_chunk */
LT_KHD static inline void lt_em_lion(const lt_klion *h, float gs, float *p, float g, float *m) {
    float gi = g * gs, mi = *m;
    float c = fmaf(h->omb1, gi, mi * h->b1);
    float sg = (float)(c > 0.0f) - (float)(c < 0.0f);
    *p = *p * h->decay + -h->lr * sg;
    *m = fmaf(h->omb2, gi, mi * h->b2);
}

/* lowbit_cpu.c bnb32_adam_chunk: a non-finite gradient leaves the element */
LT_KHD static inline void lt_em_bnb32_adam(const lt_kbnb *h, float gs, float *p, float g, float *m, float *v) {
    const float decay = h->has_decay ? h->decay : 1.0f;
    float gi = g * gs;
    int fin = fabsf(gi) <= LT_CU_FLT_MAX;
    float gz = fin ? gi : 0.0f;
    float mi = *m * h->b1 + h->omb1 * gz;
    float vi = *v * h->b2 + (h->omb2 * gz) * gz;
    float pi = (*p + h->step * (mi / (sqrtf(vi) + h->c2eps))) * decay;
    if (fin) {
        *p = pi;
        *m = mi;
        *v = vi;
    }
}

/* lowbit_cpu.c bnb32_lion_chunk */
LT_KHD static inline void lt_em_bnb32_lion(const lt_kbnb *h, float gs, float *p, float g, float *m) {
    float gi = g * gs;
    int fin = fabsf(gi) <= LT_CU_FLT_MAX;
    float gz = fin ? gi : 0.0f, mo = *m;
    float c = mo * h->b1 + h->omb1 * gz;
    float sg = (float)(c > 0.0f) - (float)(c < 0.0f);
    float pn = *p * h->decay - h->lr * sg;
    if (fin) {
        *p = pn;
        *m = mo * h->b2 + h->omb2 * gz;
    }
}

/* lowbit_cpu.c ao_plain_chunk: states stored in dtype sdt */
LT_KHD static inline void lt_em_ao_plain(const lt_kao *h, float gs, int sdt, float *p, float g, float *m, float *v) {
    float gi = g * gs, pi = *p;
    pi = pi - h->lrwd * pi;
    float mi = lt_cu_lerp(*m, gi, h->omb1), vi = lt_cu_lerp(*v, gi * gi, h->omb2);
    *m = lt_cu_round_to(mi, sdt);
    *v = lt_cu_round_to(vi, sdt);
    *p = pi - (h->lr * (mi / h->bc1)) / (sqrtf(vi) / h->bc2_sqrt + h->eps);
}

/* ---- IEEE square root and division without a branch per element ----
 * nvcc compiles sqrtf and `/` (-prec-sqrt, -prec-div) to a short fast sequence
 * (an approximate MUFU.RSQ / MUFU.RCP refined by FMAs) guarded by a range test
 * that branches to a slow routine for other operands: a convergence barrier
 * and two branches per operation (BSSY, BRA, BSYNC). lt_cu_sqrt_nb and
 * lt_cu_div_nb give the fast sequence's result unconditionally and clear *ok
 * where the operand lies outside a range in which that sequence is the
 * correctly rounded result; the caller then recomputes with sqrtf and `/`
 * (for a whole warp: one vote instead of a branch per element). On the device
 * they are the instructions nvcc emits for its fast paths (lt_cu_sqrt_seq,
 * lt_cu_div_seq: as nvcc 13 compiles sqrtf and `/` for sm_90, read in the
 * SASS), so where *ok stays set they give sqrtf's and `/`'s bits; on the host
 * (tests, the emulated device) they are sqrtf and `/` themselves. */

/* nvcc's fast sequence for sqrtf(x), x a positive normal, from r ~ 1/sqrt(x) (MUFU.RSQ's result): its two
 * products are FTZ ones there, which changes nothing for such x */
LT_KHD static inline float lt_cu_sqrt_seq(float x, float r) {
    const float s = x * r, h = r * 0.5f;
    return fmaf(fmaf(-s, s, x), h, s);
}

/* nvcc's fast sequence for a / b from y0 ~ 1/b (MUFU.RCP's result): one Newton step on the reciprocal, the
 * quotient, one correction by its remainder */
LT_KHD static inline float lt_cu_div_seq(float a, float b, float y0) {
    const float y1 = fmaf(y0, fmaf(-b, y0, 1.0f), y0), q0 = fmaf(a, y1, 0.0f);
    return fmaf(y1, fmaf(-b, q0, a), q0);
}

/* sqrtf(x); *ok cleared unless x is +0 or in [2^-101, FLT_MAX] (bits 0x0d000000 to 0x7f7fffff: nvcc's own
 * fast-path test) */
LT_KHD static inline float lt_cu_sqrt_nb(float x, int *ok) {
    const uint32_t u = lt_cu_f2u(x);
    *ok &= (u - 0x0d000000u <= 0x727fffffu) | (u == 0u);
#ifdef __CUDA_ARCH__
    float r;
    asm("rsqrt.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
    return u == 0u ? x : lt_cu_sqrt_seq(x, r);
#else
    return sqrtf(x);
#endif
}

/* a / b for b in [2^-60, 2^64] (the caller's to ensure); *ok cleared unless a is zero or |a| is in
 * [2^-60, 2^60]: every operand, intermediate and quotient is then a normal number far from overflow and
 * underflow, well inside the range nvcc's FCHK test sends down the fast path. A zero a gives a (the
 * sequence's +0 takes a's sign; b is positive). */
LT_KHD static inline float lt_cu_div_nb(float a, float b, int *ok) {
    const uint32_t ua = lt_cu_f2u(a) & 0x7fffffffu;
    *ok &= (ua - 0x21800000u <= 0x5d800000u - 0x21800000u) | (ua == 0u);
#ifdef __CUDA_ARCH__
    float y0;
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(y0) : "f"(b));
    return lt_cu_u2f(lt_cu_f2u(lt_cu_div_seq(a, b, y0)) | (lt_cu_f2u(a) & 0x80000000u));
#else
    return a / b;
#endif
}

/* ---- low-bit blocks (lowbit_cpu.c): one element of the block update ---- */

/* bnb_adam_block: *fin is 0 for a non-finite gradient (the states reset, p stays) */
LT_KHD static inline void lt_em_bnb8_adam(const lt_kbnb *h, float gs, float *p, float g, float *m, float *v) {
    const float decay = h->has_decay ? h->decay : 1.0f;
    float gi = g * gs;
    float fin = fabsf(gi) <= LT_CU_FLT_MAX ? 1.0f : 0.0f, gz = fabsf(gi) <= LT_CU_FLT_MAX ? gi : 0.0f;
    float vi = (*v * h->b2 + (h->omb2 * gz) * gz) * fin;
    float mi = (*m * h->b1 + h->omb1 * gz) * fin;
    float pi = (*p + h->step * (mi / (sqrtf(vi) + h->c2eps))) * decay;
    *p = fin != 0.0f ? pi : *p;
    *m = mi;
    *v = vi;
}

/* lt_em_bnb8_adam with lt_cu_sqrt_nb and lt_cu_div_nb (the 8-bit kernel's
 * voted step, lowbit.cuh): where *ok stays set it gives its twin's bits; where
 * it is cleared the caller steps the element with the twin. Only for the
 * hyperparameters lt_cu_bnb8_nb_usable accepts (the divisor's range follows
 * from them). A gradient that is not finite clears *ok by itself: v's update
 * is then inf or NaN, outside lt_cu_sqrt_nb's range; so wherever *ok stays
 * set the twin's finite-gradient mask is 1 and its products by it change
 * nothing (the new v and m are finite there: a product by 1 returns them). */
LT_KHD static inline int lt_cu_bnb8_nb_usable(const lt_kbnb *h) {
    return h->c2eps >= 0x1p-60f && h->c2eps <= 1.0f && h->omb2 >= 0.0f;
}

LT_KHD static inline void lt_em_bnb8_adam_nb(const lt_kbnb *h, float gs, float *p, float g, float *m, float *v,
                                             int *ok) {
    const float decay = h->has_decay ? h->decay : 1.0f;
    const float gi = g * gs;
    const float vi = *v * h->b2 + (h->omb2 * gi) * gi;
    const float mi = *m * h->b1 + h->omb1 * gi;
    /* the divisor: at least c2eps, at most sqrt(FLT_MAX) + 1 rounded, 2^64 */
    const float den = lt_cu_sqrt_nb(vi, ok) + h->c2eps;
    *p = (*p + h->step * lt_cu_div_nb(mi, den, ok)) * decay;
    *m = mi;
    *v = vi;
}

/* bnb_lion_block */
LT_KHD static inline void lt_em_bnb8_lion(const lt_kbnb *h, float gs, float *p, float g, float *m) {
    float gi = g * gs, mo = *m;
    int fin = fabsf(gi) <= LT_CU_FLT_MAX;
    float gz = fin ? gi : 0.0f;
    float c = mo * h->b1 + h->omb1 * gz;
    float sg = (float)(c > 0.0f) - (float)(c < 0.0f);
    float pn = *p * h->decay - h->lr * sg;
    *p = fin ? pn : *p;
    *m = fin ? mo * h->b2 + h->omb2 * gz : 0.0f;
}

/* ao_adam_block */
LT_KHD static inline void lt_em_ao_adam(const lt_kao *h, float gs, float *p, float g, float *m, float *v) {
    float gi = g * gs;
    float mi = lt_cu_lerp(*m, gi, h->omb1), vi = lt_cu_lerp(*v, gi * gi, h->omb2);
    *m = mi;
    *v = vi;
    float pi = *p;
    pi = pi - h->lrwd * pi;
    *p = pi - (h->lr * (mi / h->bc1)) / (sqrtf(vi) / h->bc2_sqrt + h->eps);
}

/* the smaller of two ints (host and device) */
LT_KHD static inline int lt_cu_mini(int a, int b) { return a < b ? a : b; }

/* |x|'s bits, the operand of the block absmax (an integer max orders them like
 * the values; a NaN wins, as in lowbit_cpu.c absmax) */
LT_KHD static inline uint32_t lt_cu_absbits(float x) { return lt_cu_f2u(x) & 0x7fffffffu; }

/* ---- the code search on the device ----
 * The device copy of an lt_qtable. For the fast tables, `near` keeps the CPU
 * table's entries for the float buckets (top 16 bits) with exponents emin..127
 * of both signs (|x| <= 1 after normalisation lands there), below them one row
 * (exponent emin-1) that holds the code of a zero of that sign: below emin no
 * threshold lies (checked when built), so that code is right for every smaller
 * |x| as well, and th[] of it is above them. A bucket's index is its key (the
 * top 16 bits without the sign) less `base`, clamped at 0, plus `half` for a
 * negative x (lt_cu_qbucket). Inf and NaN take the codes the CPU search gives
 * them. Other tables (and |x| >= 2) binary-search the thresholds, which gives
 * the plain search's code (quant.h). lt_cu_qtab_build (kernels/cuda_plan.c)
 * fills it. */
#define LT_CU_QNEAR 8192 /* 32 rows (exponents emin-1..127) x 128 mantissa buckets x 2 signs */
typedef struct lt_cu_qtab {
    float map[256];
    float th[256];
    int32_t n, nneg, fast;
    int32_t inf_code[2], nan_code[2];
    int32_t base, half; /* (emin-1) * 128; the rows of one sign, times 128 */
    int32_t sfclamp;    /* bitsandbytes' sign fix is a clamp here (lt_cu_quantize_f) */
    int32_t pad[2];     /* sizeof a multiple of 16: copy_table (lowbit.cuh) moves it in 16-byte pieces */
    uint8_t near[LT_CU_QNEAR];
} lt_cu_qtab;

/* the index in near[] of the float with bits u (a fast table, |x| < 2) */
LT_KHD static inline uint32_t lt_cu_qbucket(uint32_t u, int32_t base, int32_t half) {
    int32_t r = (int32_t)((u >> 16) & 0x7fffu) - base;
    r = r > 0 ? r : 0;
    return (uint32_t)r + (u >> 31) * (uint32_t)half;
}

LT_KHD static inline int lt_cu_qcode(const lt_cu_qtab *t, float x) {
    uint32_t u = lt_cu_f2u(x), s = u >> 31, e = (u >> 23) & 0xffu;
    if (e == 255u) return (u & 0x7fffffu) ? t->nan_code[s] : t->inf_code[s];
    if (t->fast && e <= 127u) {
        int c = t->near[lt_cu_qbucket(u, t->base, t->half)];
        return c + (x >= t->th[c]);
    }
    int lo = 0, hi = t->n - 1; /* the number of thresholds <= x */
    while (lo < hi) {
        int mid = (lo + hi) >> 1;
        if (x >= t->th[mid]) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* The division of a block's values by its absmax, as quantize_block of
 * lowbit_cpu.c computes it ((x / a) * ok), with one reciprocal per block:
 * where it is exact, the quotient is Markstein's correction of x * (1/a)
 * (q = x*r, e = fma(-q, a, x), q + e*r: the correctly rounded quotient when
 * 1/a is correctly rounded and nothing underflows, the fast path of CUDA's
 * own division), so: for a in [2^-60, 2^60], |x| >= a * 2^-40 and finite.
 * Smaller |x| give quotients under 2^-40, which a fast table (thresholds >=
 * 2^-31 in magnitude, lt_cu_qtab) maps by sign alone: x * r is enough there.
 * Everything else divides. tests/test_cuda_host.c checks it against x / a. */
typedef struct lt_cu_qdiv {
    float a, r, lo, ok;
    int fast;
} lt_cu_qdiv;

LT_KHD static inline lt_cu_qdiv lt_cu_qdiv_make(const lt_cu_qtab *t, float amax) {
    lt_cu_qdiv d;
    d.ok = amax > 0.0f ? 1.0f : 0.0f;
    d.a = amax > 0.0f ? amax : 1.0f;
    d.fast = t->fast && d.a >= 0x1p-60f && d.a <= 0x1p60f;
    d.r = 1.0f / d.a;
    d.lo = d.a * 0x1p-40f;
    return d;
}

LT_KHD static inline float lt_cu_qdiv_apply(const lt_cu_qdiv *d, float x) {
    float ax = fabsf(x);
    if (!d->fast || !(ax <= LT_CU_FLT_MAX)) return x / d->a;
    if (ax < d->lo) return x * d->r;
    float q = x * d->r;
    float e = fmaf(-q, d->a, x);
    return fmaf(e, d->r, q);
}

/* bitsandbytes' sign fix: code c of a nonzero x whose sign its side of the table (c < nneg: negative) does not
 * match moves one code toward x's side */
LT_KHD static inline int lt_cu_signfix(const lt_cu_qtab *t, int c, float x) {
    uint32_t xb = lt_cu_f2u(x);
    int32_t x_neg = (int32_t)(xb >> 31), nonzero = (xb & 0x7fffffffu) != 0;
    int32_t differ = ((c < t->nneg) ^ x_neg) & nonzero;
    return c + differ * (1 - 2 * x_neg);
}

/* quantize_block of lowbit_cpu.c for one element: x / amax to the nearest code
 * (code of 0 for an all-zero block), with bitsandbytes' sign fix when signfix;
 * d from lt_cu_qdiv_make(t, amax). */
LT_KHD static inline int lt_cu_quantize_d(const lt_cu_qtab *t, const lt_cu_qdiv *d, float x, int signfix) {
    const int c = lt_cu_qcode(t, lt_cu_qdiv_apply(d, x) * d->ok);
    return signfix ? lt_cu_signfix(t, c, x) : c;
}

/* A block whose maximum is positive, finite and in [2^-60, 2^60], with a fast
 * table (lt_cu_qfast_ok): every value of the block is then finite and at most
 * the maximum in magnitude, so each quotient lies in [-1, 1], which the bucket
 * table covers. lt_cu_quantize_f is lt_cu_quantize_d's arithmetic for such a
 * block without its branches (the kernels' common case; the same codes,
 * tests/test_cuda_host.c). */
typedef struct lt_cu_qfast {
    int32_t base, half;
    int32_t sfneg; /* nneg - 1: the sign fix's bound for negative values */
    int32_t sfok;  /* the table's sfclamp: lt_cu_quantize_f may apply the sign fix */
} lt_cu_qfast;

/* amax_bits: the block's largest |x| as lt_cu_absbits gives it, before any
 * clamping of the maximum (torchao's 1e-12 floor would hide a NaN) */
LT_KHD static inline int lt_cu_qfast_ok(const lt_cu_qdiv *d, uint32_t amax_bits) {
    return d->fast && d->ok != 0.0f && amax_bits < 0x7f800000u;
}

LT_KHD static inline lt_cu_qfast lt_cu_qfast_make(const lt_cu_qtab *t) {
    lt_cu_qfast f;
    f.base = t->base;
    f.half = t->half;
    f.sfneg = t->nneg - 1;
    f.sfok = t->sfclamp;
    return f;
}

LT_KHD static inline int lt_cu_quantize_f(const lt_cu_qtab *t, const lt_cu_qfast *f, const lt_cu_qdiv *d, float x,
                                          int signfix) {
    const float q0 = x * d->r, e = fmaf(-q0, d->a, x), q1 = fmaf(e, d->r, q0);
    const float q = fabsf(x) < d->lo ? q0 : q1;
    int c = t->near[lt_cu_qbucket(lt_cu_f2u(q), f->base, f->half)];
    c += q >= t->th[c];
    /* the sign fix, for tables with f->sfok only (the caller's to check): a negative non-zero x takes at most
     * code nneg - 1, nothing else moves (lt_cu_qtab_build says why) */
    if (signfix) c = lt_cu_mini(c, lt_cu_f2u(x) > 0x80000000u ? f->sfneg : 255);
    return c;
}

/* the same with a plain division (the reference the fast form is tested against) */
LT_KHD static inline int lt_cu_quantize(const lt_cu_qtab *t, float x, float amax, int signfix) {
    const float ok = amax > 0.0f ? 1.0f : 0.0f, a = amax > 0.0f ? amax : 1.0f;
    const int c = lt_cu_qcode(t, (x / a) * ok);
    return signfix ? lt_cu_signfix(t, c, x) : c;
}

/* ---- Adafactor's passes (adafactor_cpu.c, optim/adafactor.c) ---- */

/* lt_kernel_adafactor_vec_v: the new V and the update element's square */
LT_KHD static inline float lt_em_af_vec(float g, float gs, float *V, float b2t, float omb2t, float eps1) {
    float gi = g * gs;
    float vi = fmaf(omb2t, gi * gi + eps1, *V * b2t);
    *V = vi;
    float u = 1.0f / sqrtf(vi) * gi;
    return u * u;
}

/* lt_kernel_adafactor_apply for one element. rfi: the row factor (factored) or
 * ignored; cfv: the column factor (factored) or V (vector). */
LT_KHD static inline void lt_em_af_apply(int factored, float rfi, float cfv, float gs, float clipdiv, float lr_t,
                                         float b1, float omb1, float nwd, float *p, float g, float *m) {
    float gi = g * gs;
    float u = factored ? (rfi * cfv) * gi : (1.0f / sqrtf(cfv)) * gi;
    u = u / clipdiv * lr_t;
    if (m) {
        u = fmaf(omb1, u, *m * b1);
        *m = u;
    }
    float pi = *p;
    pi = fmaf(nwd, pi, pi);
    *p = pi + -u;
}

#endif
