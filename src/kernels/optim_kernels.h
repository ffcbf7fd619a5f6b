/* The hot loops of every optimizer, one interface for every backend.
 *
 * optim/ computes each step's scalars in double (bias corrections, step sizes)
 * and passes them here as floats; a kernel makes one fused pass over a tensor
 * (Adafactor: the fewest its reductions allow). Arrays may be stored as f32,
 * bf16 or f16; the math is f32 and every stored value is rounded once. */
#ifndef LT_KERNELS_OPTIM_KERNELS_H
#define LT_KERNELS_OPTIM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "leantrain/dtype.h"

/* Functions that the CUDA kernels share with the CPU ones are compiled for both. */
#ifdef __CUDACC__
#define LT_KHD __host__ __device__
#else
#define LT_KHD
#endif

/* One array operand: storage pointer and dtype. ptr may be NULL when unused.
 * sr: for a bf16 parameter, non-zero asks for stochastic rounding on write-back
 * with this seed (lt_sr_bits); 0 rounds to nearest even. */
typedef struct lt_karr {
    void *ptr;
    lt_dtype dt;
    uint32_t sr;
} lt_karr;

/* The 16 random bits that stochastic rounding adds below element i's bf16
 * mantissa: a hash of (seed, i), so that the CPU and CUDA kernels round every
 * element the same way (splitmix64's finalizer). */
LT_KHD static inline uint32_t lt_sr_bits(uint32_t seed, uint64_t i) {
    uint64_t z = (((uint64_t)seed << 32) ^ i) + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (uint32_t)(z >> 16) & 0xffffu;
}

/* The seed of parameter `index` at step `step` (never 0). */
static inline uint32_t lt_sr_seed(uint32_t index, int64_t step) {
    uint64_t z = ((uint64_t)step << 20) ^ (uint64_t)index;
    z = (z ^ (z >> 33)) * 0xff51afd7ed558ccdull;
    z = (z ^ (z >> 33)) * 0xc4ceb9fe1a85ec53ull;
    z ^= z >> 33;
    return (uint32_t)z | 1u;
}

/* The operands of an elementwise step: parameter, gradient (read as g*gscale)
 * and up to four state arrays, all of n elements. */
typedef struct lt_ktensor {
    lt_karr p;
    lt_karr g;
    lt_karr s[4];
    size_t n;
    float gscale;
} lt_ktensor;

/* AdamW / Adam (L2) / AMSGrad: s[0] exp_avg, s[1] exp_avg_sq, s[2] max_exp_avg_sq (amsgrad). */
typedef struct lt_kadam {
    float decay;       /* 1 - lr*wd (AdamW), 1 otherwise */
    float l2;          /* wd for Adam's L2 (g += wd*p), 0 otherwise */
    float b1, omb1;    /* beta1, 1 - beta1 */
    float b2, omb2;    /* beta2, 1 - beta2 */
    float step_size;   /* lr / (1 - beta1^t) */
    float bc2_sqrt;    /* sqrt(1 - beta2^t) */
    float eps;
    int amsgrad;
} lt_kadam;
void lt_kernel_adam(const lt_ktensor *t, const lt_kadam *h);

/* AnyPrecisionAdamW: s[0] m, s[1] v (f32 or bf16), s[2] Kahan compensation (or NULL). */
typedef struct lt_kanyprec {
    float decay, b1, omb1, b2, omb2, step_size, bc2_sqrt, eps;
} lt_kanyprec;
void lt_kernel_anyprecision(const lt_ktensor *t, const lt_kanyprec *h);

/* SGD: s[0] momentum_buffer (NULL when momentum = 0). first: buf = g this step. */
typedef struct lt_ksgd {
    float lr, wd, momentum, omdamp; /* omdamp = 1 - dampening */
    int nesterov, first;
} lt_ksgd;
void lt_kernel_sgd(const lt_ktensor *t, const lt_ksgd *h);

/* Adagrad: s[0] sum. */
typedef struct lt_kadagrad {
    float clr, wd, eps;
} lt_kadagrad;
void lt_kernel_adagrad(const lt_ktensor *t, const lt_kadagrad *h);

/* RMSprop: s[0] square_avg, s[1] momentum_buffer (or NULL), s[2] grad_avg (centered, or NULL). */
typedef struct lt_krmsprop {
    float lr, wd, alpha, omalpha, eps, momentum;
} lt_krmsprop;
void lt_kernel_rmsprop(const lt_ktensor *t, const lt_krmsprop *h);

/* Lion: s[0] exp_avg. */
typedef struct lt_klion {
    float decay, lr, b1, omb1, b2, omb2;
} lt_klion;
void lt_kernel_lion(const lt_ktensor *t, const lt_klion *h);

/* Adafactor, in passes (see optim/adafactor.c for the order):
 * sum of squares of an array (f32 or bf16/f16), in double. */
double lt_kernel_sumsq(lt_karr x, size_t n);

/* Factored pass 1 over one [rows, cols] matrix of g starting at element `off`
 * (with u = (g*gs)^2 + eps1):
 *   R[r] = fmaf(omb2t, rowsum(u)[r]/cols, R[r]*b2t)       the row second moment, updated in place
 *   colsum[c] = sum_r u[r,c]                              for the caller's column update
 *   w[c] = sum_r (g*gs)[r,c]^2 / R[r]  (double)           so that the squared norm of the
 *          unclipped update is mean(R) * sum_c w[c] / C[c], with no second pass over g.
 * Each row is read once from memory and once more from L1. work: at least
 * lt_kernel_adafactor_work(cols) doubles; with less it uses fewer threads. */
void lt_kernel_adafactor_rowcol(lt_karr g, size_t off, float gscale, size_t rows, size_t cols, float eps1, float *R,
                                float b2t, float omb2t, float *colsum, double *w, double *work, size_t work_len);
/* Doubles of workspace lt_kernel_adafactor_rowcol wants for `cols` columns. */
size_t lt_kernel_adafactor_work(size_t cols);

/* Unfactored (1-D) second moment: V = fmaf(1-b2t, g^2*gs^2 + eps1, V*b2t); returns the
 * sum over elements of (g*gs/sqrt(V))^2, the squared norm of the update before clipping. */
double lt_kernel_adafactor_vec_v(lt_karr g, float gscale, float *V, size_t n, float b2t, float eps1);

/* Pass 3: upd = g*gs*rf[b,r]*cf[b,c] (vector: rf = NULL, cf = V, upd = g*gs/sqrt(V), with
 * batch = rows = 1, cols = n); upd = upd / clipdiv * lr_t; with m: m = b1*m + (1-b1)*upd,
 * upd = m; p = p - wd_lr*p; p = p - upd. m.ptr may be NULL. */
void lt_kernel_adafactor_apply(lt_karr p, lt_karr g, float *m, float gscale, size_t batch, size_t rows,
                               size_t cols, const float *rf, const float *cf, float clipdiv, float lr_t,
                               float b1, float wd_lr);

/* ---- low-bit states (see kernels/quant.h for maps, rounding and packing) ---- */
struct lt_qtable;

/* One blockwise-quantized state: codes (one byte each, or 4-bit packed), one
 * f32 scale per block, and the search table of its map. */
typedef struct lt_kqstate {
    uint8_t *codes;
    float *scale;
    const struct lt_qtable *tab;
} lt_kqstate;

/* bitsandbytes 8-bit blockwise Adam and Lion, and their 32-bit path for small tensors. */
typedef struct lt_kbnb {
    float b1, omb1, b2, omb2;
    float step;        /* Adam: -lr * sqrt(1-b2^t) / (1-b1^t) */
    float c2eps;       /* Adam: sqrt(1-b2^t) * eps */
    float decay;       /* 1 - lr*wd: Adam applies it after the step (when wd > 0), Lion before */
    float lr;          /* Lion */
    int has_decay;
    size_t block;
} lt_kbnb;
void lt_kernel_bnb8_adam(lt_karr p, lt_karr g, float gscale, size_t n, lt_kqstate m, lt_kqstate v, const lt_kbnb *h);
void lt_kernel_bnb8_lion(lt_karr p, lt_karr g, float gscale, size_t n, lt_kqstate m, const lt_kbnb *h);
/* s[0] state1, s[1] state2 (Adam) in f32; a non-finite gradient leaves its element untouched */
void lt_kernel_bnb32_adam(const lt_ktensor *t, const lt_kbnb *h);
void lt_kernel_bnb32_lion(const lt_ktensor *t, const lt_kbnb *h);

/* torchao low-bit AdamW (8-bit maps, or 4-bit packed with bits = 4). */
typedef struct lt_kao {
    float lrwd;       /* lr * wd */
    float omb1, omb2; /* lerp weights 1-b1, 1-b2 */
    float lr, bc1, bc2_sqrt, eps;
    size_t block;
    int bits;
} lt_kao;
void lt_kernel_ao_adam(lt_karr p, lt_karr g, float gscale, size_t n, lt_kqstate m, lt_kqstate v, const lt_kao *h);
/* the same step with unquantized states s[0], s[1] stored in the parameter's dtype */
void lt_kernel_ao_adam_plain(const lt_ktensor *t, const lt_kao *h);

/* Dequantizes n values of a state: out[i] = map[code_i] * scale[i / block]. */
void lt_kernel_dequant(lt_kqstate s, size_t n, size_t block, int bits, float *out);

/* The bandwidth yardsticks of the benchmarks: a copy of n floats (each thread
 * memcpy's its share), and an in-place read-modify-write (x = -x), the access
 * pattern of an optimizer's state. Both move 8 bytes per element. */
void lt_kernel_copy(float *dst, const float *src, size_t n);
void lt_kernel_negate(float *x, size_t n);

#endif
