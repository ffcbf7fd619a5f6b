/* The GPT-2 layer kernels (see gpt2_layers.h). Loops are parallel over rows
 * (or over (batch, head) pairs, or over column blocks for sums down the
 * rows) so that no two threads write the same element and these loops'
 * results do not depend on the thread count. (OpenBLAS's sgemm can change
 * in the last bits with its thread count; at a fixed count a run repeats
 * bit for bit.) */
#include "model/gpt2_layers.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leantrain/dtype.h"
#include "model/gemm_bf16.h"
#include "util/sysmem.h"

/* The loops that compute the most, compiled for AVX-512 and AVX2 too (chosen when the program loads); the
 * arithmetic is the same operations in the same order (no contraction into FMAs: -ffp-contract=off), so every
 * variant gives the same bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define NN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NN_CLONES
#endif

/* Column sums run over blocks this wide: each thread owns a block of
 * columns and keeps one double accumulator per column on its stack. */
#define COL_BLOCK 64

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
/* f32 -> f16 -> f32 with the F16C instructions: IEEE round to nearest even, overflow to inf, subnormals kept,
 * the same values as lt_f32_to_f16 (a NaN stays a NaN) at a few cycles per 8 floats. */
__attribute__((target("avx,f16c"))) static void round_f16_f16c(float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    }
    for (; i < n; i++) x[i] = lt_f16_to_f32(lt_f32_to_f16(x[i]));
}
static int have_f16c(void) {
    static int have = -1; /* every thread that finds it unset computes the same value */
    int h = __atomic_load_n(&have, __ATOMIC_RELAXED);
    if (h < 0) {
        /* CPUID's F16C, AVX and OSXSAVE bits, and the OS saving the AVX registers (XCR0 bits 1-2), which is what
         * gcc's __builtin_cpu_supports("f16c") looks at; clang 14 does not know that name */
        unsigned a, b, c, d, lo, hi;
        h = 0;
        if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) && (c & bit_AVX) && (c & bit_OSXSAVE)) {
            __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            h = (lo & 6) == 6;
        }
        __atomic_store_n(&have, h, __ATOMIC_RELAXED);
    }
    return h;
}
#endif

/* One thread's rounding of x[0..n). */
static inline __attribute__((always_inline)) void round_span(float *x, size_t n, lt_nn_round r) {
    if (r == LT_NN_ROUND_BF16) {
        for (size_t i = 0; i < n; i++) x[i] = lt_bf16_to_f32(lt_f32_to_bf16(x[i]));
    } else if (r == LT_NN_ROUND_F16) {
#if defined(__x86_64__) && defined(__GNUC__)
        if (have_f16c()) {
            round_f16_f16c(x, n);
            return;
        }
#endif
        for (size_t i = 0; i < n; i++) x[i] = lt_f16_to_f32(lt_f32_to_f16(x[i]));
    }
}

/* Elementwise passes go over chunks this long, each thread's chunk hot in its cache from one step of a fused
 * pass to the next. */
#define EW_CHUNK ((size_t)1 << 14)
#define EW_CHUNKS(n) (((n) + EW_CHUNK - 1) / EW_CHUNK)
#define EW_LEN(k, nch, n) ((k) + 1 < (nch) ? EW_CHUNK : (n) - (k) * EW_CHUNK)

NN_CLONES void lt_nn_round_inplace(float *x, size_t n, lt_nn_round r) {
    if (!r) return;
    const size_t nch = EW_CHUNKS(n);
#pragma omp parallel for schedule(static) if (nch > 1)
    for (size_t k = 0; k < nch; k++) round_span(x + k * EW_CHUNK, EW_LEN(k, nch, n), r);
}

NN_CLONES void lt_nn_round_copy(float *dst, const float *src, size_t n, lt_nn_round r) {
    const size_t nch = EW_CHUNKS(n);
#pragma omp parallel for schedule(static) if (nch > 1)
    for (size_t k = 0; k < nch; k++) {
        const size_t len = EW_LEN(k, nch, n);
        memcpy(dst + k * EW_CHUNK, src + k * EW_CHUNK, len * sizeof(float));
        round_span(dst + k * EW_CHUNK, len, r);
    }
}

NN_CLONES void lt_nn_round_add(float *x, const float *b, size_t n, lt_nn_round r) {
    const size_t nch = EW_CHUNKS(n);
#pragma omp parallel for schedule(static) if (nch > 1)
    for (size_t k = 0; k < nch; k++) {
        float *xk = x + k * EW_CHUNK;
        const float *bk = b + k * EW_CHUNK;
        const size_t len = EW_LEN(k, nch, n);
        round_span(xk, len, r);
        for (size_t i = 0; i < len; i++) xk[i] = xk[i] + bk[i];
    }
}

/* ---- dropout ---- */

/* Elements a dropout loop draws at once: the words go to a stack array first, so that each Philox round runs over
 * DROP_SPAN / 4 independent counters in a row (a loop the compiler vectorizes: 32 x 32 -> 64-bit products),
 * not one ten-round chain per group of four. */
#define DROP_SPAN 256
#define DROP_GROUPS (DROP_SPAN / 4 + 1)

/* The Philox words of elements i0 .. i0 + n - 1 of site d (n <= DROP_SPAN), in order, into w[4 DROP_GROUPS]
 * (lt_philox4x32_10's rounds, each taken over all the groups before the next); returns the offset in w of element
 * i0's. */
static inline __attribute__((always_inline)) size_t drop_words(uint32_t *w, uint64_t i0, size_t n,
                                                               const lt_dropout *d) {
    uint32_t c0[DROP_GROUPS], c1[DROP_GROUPS], c2[DROP_GROUPS], c3[DROP_GROUPS];
    const uint64_t g0 = i0 >> 2;
    const size_t off = (size_t)(i0 & 3), ng = (off + n + 3) / 4;
    for (size_t j = 0; j < ng; j++) {
        c0[j] = (uint32_t)(g0 + j);
        c1[j] = (uint32_t)((g0 + j) >> 32);
        c2[j] = d->site;
        c3[j] = d->stream;
    }
    uint32_t k0 = d->k0, k1 = d->k1;
    for (int r = 0; r < 10; r++) {
        for (size_t j = 0; j < ng; j++) lt_philox_round(&c0[j], &c1[j], &c2[j], &c3[j], k0, k1);
        k0 += LT_PHILOX_W0;
        k1 += LT_PHILOX_W1;
    }
    for (size_t j = 0; j < ng; j++) w[4 * j] = c0[j], w[4 * j + 1] = c1[j], w[4 * j + 2] = c2[j], w[4 * j + 3] = c3[j];
    return off;
}

static float round1(float x, lt_nn_round r);

/* One thread's dropout of n elements from element i0 (lt_nn_dropout's arithmetic); inlined into its callers, which
 * are compiled for AVX2 and AVX-512 too. */
static inline __attribute__((always_inline)) void drop_span(float *dst, const float *src, size_t n, uint64_t i0,
                                                            const lt_dropout *d, lt_nn_round r) {
    uint32_t words[4 * DROP_GROUPS];
    const float scale = d->scale;
    const uint32_t th = d->threshold;
    for (size_t k = 0; k < n; k += DROP_SPAN) {
        const size_t m = n - k < DROP_SPAN ? n - k : DROP_SPAN;
        const uint32_t *w = words + drop_words(words, i0 + k, m, d);
        if (r)
            for (size_t j = 0; j < m; j++) dst[k + j] = w[j] >= th ? round1(src[k + j], r) * scale : 0.0f;
        else
            for (size_t j = 0; j < m; j++) dst[k + j] = w[j] >= th ? src[k + j] * scale : 0.0f;
        round_span(dst + k, m, r);
    }
}

NN_CLONES void lt_nn_dropout(float *dst, const float *src, size_t n, uint64_t i0, const lt_dropout *d,
                             lt_nn_round r) {
    if (!d || !d->threshold) return;
    const size_t nch = EW_CHUNKS(n);
#pragma omp parallel for schedule(static) if (nch > 1)
    for (size_t k = 0; k < nch; k++)
        drop_span(dst + k * EW_CHUNK, src + k * EW_CHUNK, EW_LEN(k, nch, n), i0 + k * EW_CHUNK, d, r);
}

/* Row n of the embeddings with NEFTune's noise: (token embedding + noise) + position embedding, the order of
   GPT2Model adding wpe to the hooked wte output; fp32 rows e, p or bf16 rows e16, p16. */
static void encode_noisy(float *o, size_t n, int C, const lt_noise *nz, const float *e, const uint16_t *e16,
                         const float *p, const uint16_t *p16) {
    for (int c = 0; c < C; c++) {
        const float x = e ? e[c] : lt_bf16_to_f32(e16[c]), y = p ? p[c] : lt_bf16_to_f32(p16[c]);
        o[c] = (x + lt_noise_at(nz, n * (size_t)C + (size_t)c)) + y;
    }
}

void lt_nn_encoder_forward(float *out, const int32_t *inp, const float *wte, const float *wpe, int B, int T, int C,
                           const lt_noise *nz) {
    size_t N = (size_t)B * (size_t)T;
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *e = wte + (size_t)inp[n] * (size_t)C, *p = wpe + (n % (size_t)T) * (size_t)C;
        float *o = out + n * (size_t)C;
        if (nz && nz->mag != 0.0f) encode_noisy(o, n, C, nz, e, NULL, p, NULL);
        else
            for (int c = 0; c < C; c++) o[c] = e[c] + p[c];
    }
}

void lt_nn_encoder_backward(float *dwte, float *dwpe, const float *dout, const int32_t *inp, int B, int T, int C) {
    /* positions: one thread per position, so its row of dwpe has one writer */
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        float *d = dwpe + (size_t)t * (size_t)C;
        for (int b = 0; b < B; b++) {
            const float *g = dout + ((size_t)b * (size_t)T + (size_t)t) * (size_t)C;
            for (int c = 0; c < C; c++) d[c] += g[c];
        }
    }
    /* tokens repeat within a batch, so rows are not disjoint: split columns instead */
    size_t N = (size_t)B * (size_t)T;
    int nblk = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblk; blk++) {
        int c0 = blk * COL_BLOCK, c1 = c0 + COL_BLOCK < C ? c0 + COL_BLOCK : C;
        for (size_t n = 0; n < N; n++) {
            float *d = dwte + (size_t)inp[n] * (size_t)C;
            const float *g = dout + n * (size_t)C;
            for (int c = c0; c < c1; c++) d[c] += g[c];
        }
    }
}

/* Sums in 16 double lanes (element i into lane i % 16; they vectorize, where one running sum waits for each
 * add), joined by this function in a fixed order: the same result for every vector width. The layernorms'
 * statistics, the softmaxes' sums and the attention's correction use it. */
#define LN_LANES 16
static inline double join16(double *l) {
    for (int w = LN_LANES / 2; w >= 1; w /= 2)
        for (int k = 0; k < w; k++) l[k] += l[k + w];
    return l[0];
}

void lt_nn_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                             size_t N, int C, double eps) {
    lt_nn_layernorm_forward_r(out, mean, rstd, inp, w, b, N, C, eps, LT_NN_ROUND_NONE);
}

NN_CLONES void lt_nn_layernorm_forward_r(float *out, float *mean, float *rstd, const float *inp, const float *w,
                                         const float *b, size_t N, int C, double eps, lt_nn_round r) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * (size_t)C;
        float *o = out + n * (size_t)C;
        /* double statistics: the variance of float rows with a large mean
         * would otherwise lose the digits the trace tolerances need */
        double l[LN_LANES] = {0};
        int c = 0;
        for (; c + LN_LANES <= C; c += LN_LANES)
            for (int k = 0; k < LN_LANES; k++) l[k] += x[c + k];
        for (int k = 0; c + k < C; k++) l[k] += x[c + k];
        const double mu = join16(l) / C;
        for (int k = 0; k < LN_LANES; k++) l[k] = 0.0;
        for (c = 0; c + LN_LANES <= C; c += LN_LANES)
            for (int k = 0; k < LN_LANES; k++) {
                double d = x[c + k] - mu;
                l[k] += d * d;
            }
        for (int k = 0; c + k < C; k++) {
            double d = x[c + k] - mu;
            l[k] += d * d;
        }
        double rs = 1.0 / sqrt(join16(l) / C + eps);
        for (c = 0; c < C; c++) o[c] = (float)((x[c] - mu) * rs) * w[c] + b[c];
        if (r) round_span(o, (size_t)C, r);
        mean[n] = (float)mu;
        rstd[n] = (float)rs;
    }
}

NN_CLONES void lt_nn_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                                        const float *w, const float *mean, const float *rstd, size_t N, int C) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * (size_t)C, *g = dout + n * (size_t)C;
        float *d = dinp + n * (size_t)C;
        float mu = mean[n], rs = rstd[n];
        double l1[LN_LANES] = {0}, l2[LN_LANES] = {0}; /* sums of dxhat and of dxhat * xhat */
        int c = 0;
        for (; c + LN_LANES <= C; c += LN_LANES)
            for (int k = 0; k < LN_LANES; k++) {
                float xhat = (x[c + k] - mu) * rs, dxhat = g[c + k] * w[c + k];
                l1[k] += dxhat;
                l2[k] += (double)dxhat * xhat;
            }
        for (int k = 0; c + k < C; k++) {
            float xhat = (x[c + k] - mu) * rs, dxhat = g[c + k] * w[c + k];
            l1[k] += dxhat;
            l2[k] += (double)dxhat * xhat;
        }
        float a = (float)(join16(l1) / C), bb = (float)(join16(l2) / C);
        for (c = 0; c < C; c++) {
            float xhat = (x[c] - mu) * rs, dxhat = g[c] * w[c];
            d[c] += (dxhat - a - xhat * bb) * rs;
        }
    }
    int nblk = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblk; blk++) {
        int c0 = blk * COL_BLOCK, c1 = c0 + COL_BLOCK < C ? c0 + COL_BLOCK : C;
        double sw[COL_BLOCK] = {0}, sb[COL_BLOCK] = {0};
        for (size_t n = 0; n < N; n++) {
            const float *x = inp + n * (size_t)C, *g = dout + n * (size_t)C;
            float mu = mean[n], rs = rstd[n];
            for (int c = c0; c < c1; c++) {
                sw[c - c0] += (double)g[c] * ((x[c] - mu) * rs);
                sb[c - c0] += g[c];
            }
        }
        for (int c = c0; c < c1; c++) {
            dw[c] += (float)sw[c - c0];
            db[c] += (float)sb[c - c0];
        }
    }
}

const char *lt_nn_blas_core(void) {
    const char *c = openblas_get_corename();
    return c ? c : "unknown";
}

/* OpenBLAS's buffer allocator (driver/others/memory.c; exported, not in cblas.h): a buffer from its table, mapped
 * at its first use, and its return to the table. Weak: NULL with a BLAS that has none. */
extern void *blas_memory_alloc(int procpos) __attribute__((weak));
extern void blas_memory_free(void *buffer) __attribute__((weak));

int lt_nn_blas_reserve(char *err, size_t errlen) {
    const int threads = omp_get_max_threads(), nbuf = 2 * threads - 1;
    const size_t need = (size_t)nbuf * LT_NN_BLAS_BUFFER_BYTES, left = lt_address_space_left();
    if (left != (size_t)-1 && left < need) {
        snprintf(err, errlen,
                 "the address-space limit (ulimit -v) leaves %.0f MiB, and OpenBLAS maps %d buffers of %.0f MiB with "
                 "%d threads (%.0f MiB: one per thread for a product it splits, one per thread for the products the "
                 "threads run at once; it would wait forever for one it cannot map): raise `ulimit -v` by %.0f MiB "
                 "or more, or run with fewer --threads",
                 left / 1048576.0, nbuf, LT_NN_BLAS_BUFFER_BYTES / 1048576.0, threads, need / 1048576.0,
                 (need - left) / 1048576.0);
        return -1;
    }
    /* a: 512 x 512 operands (the threaded product: OpenBLAS splits one over all its threads from 4 x 65536
     * multiply-adds per thread up), then per thread a 256 x 256 result */
    enum { N = 512, S = 256 };
    float *a = calloc((size_t)3 * N * N + (size_t)threads * S * S, sizeof(float));
    if (!a) {
        snprintf(err, errlen, "out of memory for OpenBLAS's warm-up products");
        return -1;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, a, N, a + N * N, N, 0.0f, a + 2 * N * N, N);
    /* one buffer per product the threads may run at once (the attention runs one per thread): a product takes a
     * buffer from OpenBLAS's table and gives it back, so products that do not overlap share one, and whether the
     * threads' products overlap is up to the scheduler. OpenBLAS's own allocator, taking T buffers before giving
     * them back, fills the table for certain; a build without it gets a product per thread at once instead */
    if (blas_memory_alloc && blas_memory_free) {
        /* at most 64: Debian's build has MAX_THREADS=64 and a table of 2 x 64 buffers, the workers' 63 included
         * (more threads than that would overflow OpenBLAS's table with or without this) */
        void *held[64];
        int n = 0;
        while (n < threads && n < 64 && (held[n] = blas_memory_alloc(0)) != NULL) n++;
        while (n > 0) blas_memory_free(held[--n]);
    } else {
        float *c = a + (size_t)3 * N * N;
#pragma omp parallel
        {
            float *ct = c + (size_t)omp_get_thread_num() * S * S;
#pragma omp barrier
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, S, S, S, 1.0f, a, N, a + N * N, N, 0.0f, ct, S);
        }
    }
    free(a);
    return 0;
}

/* C[M,N] = op(A) @ op(B) + beta * C (row-major; op transposes when ta / tb): on the CPU's bf16 instructions
 * (lt_gemm_bf16) when r is bf16 and that path is on, the operands being bf16 values; else OpenBLAS's sgemm */
static void gemm_r(lt_nn_round r, int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                   int ldb, float beta, float *C, int ldc) {
    if (r == LT_NN_ROUND_BF16 && !lt_gemm_bf16(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc)) return;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, lda,
                B, ldb, beta, C, ldc);
}

/* C[M,N] = op(A) @ op(w) + beta * C for a weight w [rows, ldw] (op(w) = w^T when tb; lt_nn_weight): as bf16 on the
 * CPU's bf16 path where w came without floats (w.b16 in place, or w.f32 rounded into w.buf) and that product is
 * taken; else its floats (w.f, or fetched into w.buf) for gemm_r */
static void gemm_w(lt_nn_round r, int tb, int M, int N, int K, const float *A, int lda, lt_nn_weight w, size_t rows,
                   int ldw, float beta, float *C, int ldc) {
    const float *wf = w.f;
    if (!wf) {
        const size_t n = rows * (size_t)ldw;
        const uint16_t *w16 = w.b16;
        if (!w16 && r == LT_NN_ROUND_BF16 && lt_gemm_bf16_enabled()) { /* the values the fetch gives, as bf16 */
            lt_nn_pack16((uint16_t *)(void *)w.buf, w.f32, n, r);
            w16 = (const uint16_t *)(const void *)w.buf;
        }
        if (w16 && !lt_gemm_bf16_b16(0, tb, M, N, K, A, lda, w16, ldw, beta, C, ldc)) return;
        lt_nn_fetch16(w.buf, w.f32, w.b16, n, r);
        wf = w.buf;
    }
    gemm_r(r, 0, tb, M, N, K, A, lda, wf, ldw, beta, C, ldc);
}

void lt_nn_matmul_forward(float *out, const float *inp, const float *w, const float *bias, size_t N, int C, int OC) {
    lt_nn_matmul_forward_r(out, inp, (lt_nn_weight){.f = w}, bias, N, C, OC, LT_NN_ROUND_NONE);
}

void lt_nn_matmul_forward_r(float *out, const float *inp, lt_nn_weight w, const float *bias, size_t N, int C, int OC,
                            lt_nn_round r) {
    /* the bias goes in first and the product is added onto it (beta = 1),
     * which is torch.addmm's order and saves a second pass over out */
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) memcpy(out + n * (size_t)OC, bias, (size_t)OC * sizeof(float));
    gemm_w(r, 0, (int)N, OC, C, inp, C, w, (size_t)C, OC, 1.0f, out, OC);
}

void lt_nn_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                           size_t N, int C, int OC) {
    lt_nn_matmul_backward_r(dinp, dw, dbias, dout, inp, (lt_nn_weight){.f = w}, N, C, OC, LT_NN_ROUND_NONE, NULL);
}

/* dst[n] += src[n] */
NN_CLONES static void add_into(float *dst, const float *src, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

/* one float rounded with r */
static float round1(float x, lt_nn_round r) {
    return r == LT_NN_ROUND_BF16 ? lt_bf16_to_f32(lt_f32_to_bf16(x))
           : r == LT_NN_ROUND_F16 ? lt_f16_to_f32(lt_f32_to_f16(x))
                                  : x;
}

NN_CLONES void lt_nn_matmul_backward_r(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                                       lt_nn_weight w, size_t N, int C, int OC, lt_nn_round r, float *scratch) {
    gemm_w(r, 1, (int)N, C, OC, dout, OC, w, (size_t)C, OC, 0.0f, dinp, C);
    if (r) {
        lt_nn_round_inplace(dinp, N * (size_t)C, r);
        gemm_r(r, 1, 0, C, OC, (int)N, inp, C, dout, OC, 0.0f, scratch, OC);
        lt_nn_round_inplace(scratch, (size_t)C * (size_t)OC, r);
        add_into(dw, scratch, (size_t)C * (size_t)OC);
    } else {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, OC, (int)N, 1.0f, inp, C, dout, OC, 1.0f, dw, OC);
    }
    int nblk = (OC + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblk; blk++) {
        int o0 = blk * COL_BLOCK, o1 = o0 + COL_BLOCK < OC ? o0 + COL_BLOCK : OC;
        double s[COL_BLOCK] = {0};
        for (size_t n = 0; n < N; n++) {
            const float *g = dout + n * (size_t)OC;
            for (int o = o0; o < o1; o++) s[o - o0] += g[o];
        }
        for (int o = o0; o < o1; o++) dbias[o] += round1((float)s[o - o0], r);
    }
}

/* e^y in straight-line float arithmetic that the compiler vectorizes (libm's expf and tanhf are a call per
 * element): e^y = 2^n e^r with n the nearest integer to y / ln 2, r = y - n ln 2 in two parts (Cody and
 * Waite) and Cephes's degree-6 polynomial for e^r on [-ln2/2, ln2/2]; relative error under 1.2e-7 (tested).
 * y is clamped to [-87, 88] (so e^y is a normal float: below, 1.6e-38 instead of a subnormal or 0); a NaN
 * stays one. The same bits in every variant of the loops it is compiled into: the same operations in the
 * same order, no contraction. */
static inline float exp_vec(float y) {
    /* the clamp as one max and one min (x86's: a NaN becomes the bound, so no NaN reaches the integer
     * conversion), the NaN put back at the end (with nested selects the vectorizer evaluated the polynomial
     * twice) */
    float c = y > -87.0f ? y : -87.0f;
    c = c < 88.0f ? c : 88.0f;
    const float n = __builtin_floorf(c * 1.44269504088896341f + 0.5f);
    float r = c - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    union {
        int32_t i;
        float f;
    } sc = {.i = ((int32_t)n + 127) * (1 << 23)}; /* 2^n, n in [-126, 127] */
    return y == y ? p * sc.f : y;
}

/* max of x[0..n) (NaNs skipped, as a running `x > max` does) in 16 lanes (element i into lane i % 16), the
 * lanes joined in a fixed order: the same value whatever the vector width */
static inline float max16(const float *x, int n) {
    float m[16];
    for (int k = 0; k < 16; k++) m[k] = -INFINITY;
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) m[k] = x[i + k] > m[k] ? x[i + k] : m[k];
    for (int k = 0; i + k < n; k++) m[k] = x[i + k] > m[k] ? x[i + k] : m[k];
    float mx = m[0];
    for (int k = 1; k < 16; k++) mx = m[k] > mx ? m[k] : mx;
    return mx;
}

/* Query rows the attention takes at once (fewer when the scratch is short): rows r0..r1 see keys 0..r1-1
 * only, so the products skip the masked half of the square but for the blocks' own triangles. The forward
 * and the backward of one model get the same scratch size, hence the same blocks, hence the same scores. */
#define ATT_ROWS 64

int lt_nn_attention_rows(int T, size_t scratch_floats) {
    size_t r = scratch_floats / (2 * (size_t)T);
    if (r > ATT_ROWS) r = ATT_ROWS;
    if (r > (size_t)T) r = (size_t)T;
    return (int)r;
}

/* Threads that get a 2 x R x T share of the scratch: at most the team's size, at least one. */
static int att_threads(size_t scratch_floats, size_t per, size_t units) {
    size_t nt = scratch_floats / (2 * per), maxt = (size_t)omp_get_max_threads();
    if (nt > maxt) nt = maxt;
    if (nt > units) nt = units;
    return nt < 1 ? 1 : (int)nt;
}

/* The probabilities of query rows r0..r0+rn-1 of one (batch, head) into p[rn][n] (n = r0 + rn; zero where
 * masked). The forward (st_out): the softmax, writing each row t's max and 1 / sum to st_out[2t], [2t+1];
 * the backward (st_out NULL): the same values again from st_in (the same sgemm on the same operands, the same
 * operations in the same order). q points at the head's columns of position 0 (k at + C, rows 3C apart). */
static inline __attribute__((always_inline)) void att_probs(float *p, const float *st_in, float *st_out,
                                                            const float *q, int r0, int rn, int C, int hs,
                                                            float scale, lt_nn_round r) {
    const int C3 = 3 * C, n = r0 + rn;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rn, n, hs, 1.0f, q + (size_t)r0 * C3, C3, q + C, C3, 0.0f,
                p, n);
    for (int i = 0; i < rn; i++) {
        float *row = p + (size_t)i * n;
        const int cnt = r0 + i + 1;
        int t2;
        for (t2 = 0; t2 < cnt; t2++) row[t2] /= scale;
        float mx, inv;
        if (st_out) {
            /* max, then the sum of e^(s - max), in 16 lanes joined in a fixed order (the same bits for
             * every vector width and thread count) */
            mx = max16(row, cnt);
            double sl[16];
            for (int k = 0; k < 16; k++) sl[k] = 0.0;
            for (t2 = 0; t2 < cnt; t2++) row[t2] = exp_vec(row[t2] - mx);
            for (t2 = 0; t2 + 16 <= cnt; t2 += 16)
                for (int k = 0; k < 16; k++) sl[k] += (double)row[t2 + k];
            for (int k = 0; t2 + k < cnt; k++) sl[k] += (double)row[t2 + k];
            inv = (float)(1.0 / join16(sl));
            st_out[2 * (size_t)(r0 + i)] = mx;
            st_out[2 * (size_t)(r0 + i) + 1] = inv;
        } else {
            mx = st_in[2 * (size_t)(r0 + i)];
            inv = st_in[2 * (size_t)(r0 + i) + 1];
            for (t2 = 0; t2 < cnt; t2++) row[t2] = exp_vec(row[t2] - mx);
        }
        for (t2 = 0; t2 < cnt; t2++) row[t2] *= inv;
        if (r) round_span(row, (size_t)cnt, r);
        for (t2 = cnt; t2 < n; t2++) row[t2] = 0.0f;
    }
}

void lt_nn_attention_forward(float *out, float *stats, float *scratch, size_t scratch_floats, const float *qkv, int B,
                             int T, int C, int NH) {
    lt_nn_attention_forward_r(out, stats, scratch, scratch_floats, qkv, B, T, C, NH, LT_NN_ROUND_NONE, NULL);
}

NN_CLONES void lt_nn_attention_forward_r(float *out, float *stats, float *scratch, size_t scratch_floats,
                                          const float *qkv, int B, int T, int C, int NH, lt_nn_round r,
                                          const lt_dropout *drop) {
    if (drop && !drop->threshold) drop = NULL;
    const int hs = C / NH, C3 = 3 * C, R = lt_nn_attention_rows(T, scratch_floats);
    /* HF divides the scores by sqrt(hs) (not a multiply by its inverse) */
    const float scale = sqrtf((float)hs);
    const size_t nblk = (size_t)(T + R - 1) / (size_t)R, units = (size_t)B * (size_t)NH * nblk;
    const size_t per = (size_t)R * (size_t)T;
    /* a unit is one block of rows of one (batch, head): no two units write the same element, and each one's
     * sgemms run on its thread alone (OpenBLAS's OpenMP build inside a parallel region), so the bits do not
     * depend on the thread count or on which thread takes a unit; the later blocks cost more, hence dynamic */
#pragma omp parallel num_threads(att_threads(scratch_floats, per, units))
    {
        float *p = scratch + (size_t)omp_get_thread_num() * 2 * per;
#pragma omp for schedule(dynamic, 1)
        for (size_t u = 0; u < units; u++) {
            const size_t bh = u / nblk, b = bh / (size_t)NH, h = bh % (size_t)NH;
            const int r0 = (int)(u % nblk) * R, rn = T - r0 < R ? T - r0 : R;
            const float *q = qkv + b * (size_t)T * (size_t)C3 + h * (size_t)hs; /* k at + C, v at + 2C */
            att_probs(p, NULL, stats + bh * 2 * (size_t)T, q, r0, rn, C, hs, scale, r);
            if (drop) /* row t's probabilities are elements (bh T + t) T .. + t of the site */
                for (int i = 0; i < rn; i++)
                    drop_span(p + (size_t)i * (size_t)(r0 + rn), p + (size_t)i * (size_t)(r0 + rn),
                              (size_t)(r0 + i + 1), (bh * (size_t)T + (size_t)(r0 + i)) * (size_t)T, drop, r);
            /* out_t = sum over t2 <= t of p[t, t2] v_t2, the block's zeros included */
            float *ob = out + (b * (size_t)T + (size_t)r0) * (size_t)C + h * (size_t)hs;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rn, hs, r0 + rn, 1.0f, p, r0 + rn, q + 2 * C, C3,
                        0.0f, ob, C);
            if (r)
                for (int i = 0; i < rn; i++) round_span(ob + (size_t)i * C, (size_t)hs, r);
        }
    }
}

/* The softmax's backward of one block of rows r0 .. r0 + rn - 1 (rows of r0 + rn floats): s holds d p on entry
 * and d scores / sqrt(hs) on return, 0 where masked. */
static inline __attribute__((always_inline)) void att_bwd_softmax(const float *p, float *s, int r0, int rn,
                                                                  float scale) {
    const int n = r0 + rn;
    for (int i = 0; i < rn; i++) {
        const int cnt = r0 + i + 1; /* keys this query attends */
        const float *pr = p + (size_t)i * n;
        float *sr = s + (size_t)i * n;
        /* the softmax's correction in 16 double lanes joined in a fixed order */
        double dl[16];
        for (int w = 0; w < 16; w++) dl[w] = 0.0;
        int j = 0;
        for (; j + 16 <= cnt; j += 16)
            for (int w = 0; w < 16; w++) dl[w] += (double)pr[j + w] * (double)sr[j + w];
        for (int w = 0; j + w < cnt; w++) dl[w] += (double)pr[j + w] * (double)sr[j + w];
        const float dot = (float)join16(dl);
        for (j = 0; j < cnt; j++) sr[j] = pr[j] * (sr[j] - dot) / scale;
        for (; j < n; j++) sr[j] = 0.0f;
    }
}

/* The softmax's backward of one block of rows under attention dropout, before its dv product. On entry p holds
 * the recomputed probabilities (before dropout); on return s holds d scores / sqrt(hs) as without dropout, but
 * from d p = (dout v^T) x mask x keep-scale, and p holds the dropped probabilities the forward multiplied into v
 * (its bits: the same rounding of the same values). The mask is drawn once: a dropped probability is marked by
 * its sign bit (a probability is never negative) between the two passes over the row. `base` is the site index
 * of the block's first row, key 0. */
static inline __attribute__((always_inline)) void att_bwd_dropout(float *p, float *s, const float *gb, const float *v,
                                                                  int r0, int rn, int C, int hs, float scale,
                                                                  lt_nn_round r, const lt_dropout *drop,
                                                                  uint64_t base, int T) {
    const int n = r0 + rn;
    uint32_t words[4 * DROP_GROUPS];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rn, n, hs, 1.0f, gb, C, v, 3 * C, 0.0f, s, n);
    for (int i = 0; i < rn; i++) {
        const int cnt = r0 + i + 1;
        float *pr = p + (size_t)i * n, *sr = s + (size_t)i * n;
        const uint64_t i0 = base + (uint64_t)i * (uint64_t)T;
        for (int k = 0; k < cnt; k += DROP_SPAN) {
            const int m = cnt - k < DROP_SPAN ? cnt - k : DROP_SPAN;
            const uint32_t *w = words + drop_words(words, i0 + (uint64_t)k, (size_t)m, drop);
            for (int j = 0; j < m; j++) {
                const int keep = w[j] >= drop->threshold;
                sr[k + j] = keep ? sr[k + j] * drop->scale : 0.0f;
                pr[k + j] = keep ? pr[k + j] : -pr[k + j];
            }
        }
        double dl[16];
        for (int q = 0; q < 16; q++) dl[q] = 0.0;
        int j = 0;
        for (; j + 16 <= cnt; j += 16)
            for (int q = 0; q < 16; q++) dl[q] += (double)fabsf(pr[j + q]) * (double)sr[j + q];
        for (int q = 0; j + q < cnt; q++) dl[q] += (double)fabsf(pr[j + q]) * (double)sr[j + q];
        const float dot = (float)join16(dl);
        for (j = 0; j < cnt; j++) {
            const float pj = fabsf(pr[j]);
            sr[j] = pj * (sr[j] - dot) / scale;
            pr[j] = signbit(pr[j]) ? 0.0f : round1(pj * drop->scale, r);
        }
        for (; j < n; j++) sr[j] = 0.0f;
    }
}

/* One (batch, head)'s gradient, R query rows at a time, the probabilities p recomputed from the forward's
 * row statistics. For rows r0..r1 only keys 0..r1-1 can be attended:
 *   dv[0:r1] += p_blk^T dout_blk          d p_blk = dout_blk v[0:r1]^T (into s)
 *   s = p * (d p - sum over the row of p * d p) / sqrt(hs)      (the softmax's backward; 0 where masked)
 *   dq_blk = s k[0:r1]                    dk[0:r1] += s^T q_blk
 * q, k, v, dq, dk, dv point at the head's columns of position 0 (rows 3C apart), dout at C apart. */
static inline __attribute__((always_inline)) void att_bwd_head(float *dq, const float *q, const float *dout,
                                                               const float *st, float *p, float *s, int T, int C, int hs,
                                                               int R, float scale, lt_nn_round r,
                                                               const lt_dropout *drop, uint64_t base) {
    const int C3 = 3 * C;
    float *dk = dq + C, *dv = dq + 2 * C;
    const float *k = q + C, *v = q + 2 * C;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < hs; i++) dk[(size_t)t * C3 + i] = dv[(size_t)t * C3 + i] = 0.0f;
    for (int r0 = 0; r0 < T; r0 += R) {
        const int rn = T - r0 < R ? T - r0 : R, n = r0 + rn;
        const float *gb = dout + (size_t)r0 * C, *qb = q + (size_t)r0 * C3;
        att_probs(p, st, NULL, q, r0, rn, C, hs, scale, r);
        if (drop) { /* the dropped probabilities exist only after the softmax's backward has read p */
            att_bwd_dropout(p, s, gb, v, r0, rn, C, hs, scale, r, drop, base + (uint64_t)r0 * (uint64_t)T, T);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, hs, rn, 1.0f, p, n, gb, C, 1.0f, dv, C3);
        } else {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, hs, rn, 1.0f, p, n, gb, C, 1.0f, dv, C3);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rn, n, hs, 1.0f, gb, C, v, C3, 0.0f, s, n);
            att_bwd_softmax(p, s, r0, rn, scale);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rn, hs, n, 1.0f, s, n, k, C3, 0.0f,
                    dq + (size_t)r0 * C3, C3);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, hs, rn, 1.0f, s, n, qb, C3, 1.0f, dk, C3);
    }
}

NN_CLONES void lt_nn_attention_backward(float *dqkv, float *scratch, size_t scratch_floats, const float *dout,
                                        const float *qkv, const float *stats, int B, int T, int C, int NH,
                                        lt_nn_round r, const lt_dropout *drop) {
    if (drop && !drop->threshold) drop = NULL;
    const int hs = C / NH, R = lt_nn_attention_rows(T, scratch_floats);
    const size_t C3 = 3 * (size_t)C, pairs = (size_t)B * (size_t)NH, per = (size_t)R * (size_t)T;
    const float scale = sqrtf((float)hs);
    /* dk and dv of a position collect from every later query of the same head, so one thread takes a whole
     * (b, h) pair (its slices of dqkv have no other writer) with its own 2 x R x T of the scratch */
#pragma omp parallel num_threads(att_threads(scratch_floats, per, pairs))
    {
        float *p = scratch + (size_t)omp_get_thread_num() * 2 * per, *s = p + per;
#pragma omp for schedule(static)
        for (size_t bh = 0; bh < pairs; bh++) {
            const size_t b = bh / (size_t)NH, h = bh % (size_t)NH;
            const size_t at = b * (size_t)T * C3 + h * (size_t)hs;
            att_bwd_head(dqkv + at, qkv + at, dout + b * (size_t)T * (size_t)C + h * (size_t)hs,
                         stats + bh * 2 * (size_t)T, p, s, T, C, hs, R, scale, r, drop,
                         (uint64_t)bh * (uint64_t)T * (uint64_t)T);
            if (r)
                for (int t = 0; t < T; t++)
                    for (int part = 0; part < 3; part++)
                        round_span(dqkv + at + (size_t)t * C3 + (size_t)part * C, (size_t)hs, r);
        }
    }
}

#define GELU_K 0.7978845608028654f /* sqrt(2 / pi) */
#define GELU_A 0.044715f

/* tanh(u) = 1 - 2 / (1 + e^(2u)) for GELU, u clamped to [-10, 10] (beyond, tanh rounds to +-1 in float).
 * What GELU needs is the absolute error of tanh (it is added to 1): under 2.5e-7 everywhere, against about
 * 1e-7 for libm's tanhf (tests/test_gpt2.c: lt_nn_tanh_gelu against tanh in double). */
static inline float tanh_gelu(float u) {
    float c = u > -10.0f ? u : -10.0f;
    c = c < 10.0f ? c : 10.0f;
    const float t = 1.0f - 2.0f / (1.0f + exp_vec(2.0f * c));
    return u == u ? t : u; /* a NaN stays one */
}

float lt_nn_tanh_gelu(float u) { return tanh_gelu(u); }
float lt_nn_exp(float y) { return exp_vec(y); }

static inline __attribute__((always_inline)) float gelu1(float x) {
    return 0.5f * x * (1.0f + tanh_gelu(GELU_K * (x + GELU_A * x * x * x)));
}

static inline __attribute__((always_inline)) float gelu_grad1(float x) {
    float th = tanh_gelu(GELU_K * (x + GELU_A * x * x * x));
    float du = GELU_K * (1.0f + 3.0f * GELU_A * x * x);
    return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du;
}

NN_CLONES void lt_nn_gelu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = gelu1(inp[i]);
}

NN_CLONES void lt_nn_gelu_forward_r(float *out, float *inp, size_t n, lt_nn_round r) {
    const size_t nch = EW_CHUNKS(n);
#pragma omp parallel for schedule(static) if (nch > 1)
    for (size_t k = 0; k < nch; k++) {
        float *ik = inp + k * EW_CHUNK, *ok = out + k * EW_CHUNK;
        const size_t len = EW_LEN(k, nch, n);
        round_span(ik, len, r);
        for (size_t i = 0; i < len; i++) ok[i] = gelu1(ik[i]);
        round_span(ok, len, r);
    }
}

NN_CLONES void lt_nn_gelu_backward(float *dinout, const float *inp, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dinout[i] *= gelu_grad1(inp[i]);
}

NN_CLONES void lt_nn_gelu_backward_r(float *dinout, const float *inp, size_t n, lt_nn_round r) {
    const size_t nch = EW_CHUNKS(n);
#pragma omp parallel for schedule(static) if (nch > 1)
    for (size_t k = 0; k < nch; k++) {
        float *dk = dinout + k * EW_CHUNK;
        const float *ik = inp + k * EW_CHUNK;
        const size_t len = EW_LEN(k, nch, n);
        for (size_t i = 0; i < len; i++) dk[i] *= gelu_grad1(ik[i]);
        round_span(dk, len, r);
    }
}

NN_CLONES void lt_nn_residual_forward(float *out, const float *a, const float *b, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void lt_nn_lmhead_forward(float *logits, const float *inp, const float *wte, size_t N, int C, int V) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, V, C, 1.0f, inp, C, wte, C, 0.0f, logits, V);
}

/* dwte[V,C] = dlogits[N,V]^T @ inp[N,C] + beta * dwte, LT_NN_LM_WGRAD_ROWS vocabulary rows at a time */
static void lmhead_wgrad(float *dwte, const float *dlogits, const float *inp, size_t N, int C, int V, float beta,
                         lt_nn_round r) {
    for (int v0 = 0; v0 < V; v0 += LT_NN_LM_WGRAD_ROWS) {
        const int nv = V - v0 < LT_NN_LM_WGRAD_ROWS ? V - v0 : LT_NN_LM_WGRAD_ROWS;
        gemm_r(r, 1, 0, nv, C, (int)N, dlogits + v0, V, inp, C, beta, dwte + (size_t)v0 * (size_t)C, C);
    }
}

void lt_nn_lmhead_backward(float *dinp, float *dwte, const float *dlogits, const float *inp, const float *wte,
                           size_t N, int C, int V) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, C, V, 1.0f, dlogits, V, wte, C, 0.0f, dinp, C);
    lmhead_wgrad(dwte, dlogits, inp, N, C, V, 1.0f, LT_NN_ROUND_NONE);
}

NN_CLONES double lt_nn_crossentropy_forward(float *losses, float *lse, const float *logits, const int32_t *targets,
                                            size_t N, int V, float eps) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *l = logits + n * (size_t)V;
        /* the row's max and sum of e^(l - max) in 16 lanes (element v into lane v % 16), lanes joined in a
         * fixed order: the same bits for every vector width */
        double sl[16];
        for (int k = 0; k < 16; k++) sl[k] = 0.0;
        const float mx = max16(l, V);
        int v;
        for (v = 0; v + 16 <= V; v += 16)
            for (int k = 0; k < 16; k++) sl[k] += (double)exp_vec(l[v + k] - mx);
        for (int k = 0; v + k < V; k++) sl[k] += (double)exp_vec(l[v + k] - mx);
        double s = join16(sl);
        double z = (double)mx + log(s);
        lse[n] = (float)z;
        if (eps == 0.0f) {
            losses[n] = (float)(z - l[targets[n]]);
            continue;
        }
        /* label smoothing: the mean over the vocabulary of -log p is z less the mean logit (in 16 lanes too) */
        for (int k = 0; k < 16; k++) sl[k] = 0.0;
        for (v = 0; v + 16 <= V; v += 16)
            for (int k = 0; k < 16; k++) sl[k] += (double)l[v + k];
        for (int k = 0; v + k < V; k++) sl[k] += (double)l[v + k];
        losses[n] = (float)((1.0 - eps) * (z - l[targets[n]]) + eps * (z - join16(sl) / V));
    }
    /* summed in a fixed order (an OpenMP reduction combines threads in
     * arrival order, so the loss would change in its last bits run to run) */
    double total = 0.0;
    for (size_t n = 0; n < N; n++) total += losses[n];
    return total;
}

/* Whether t is the row's argmax: for a number x at t, every value before it below x (a NaN is not) and every
 * value after it at most x (a NaN is not); for a NaN at t, no NaN before it. Branch-free loops, vectorized. */
static inline int top1_hit(const float *l, int V, int t) {
    const float x = l[t];
    int bad = 0;
    if (x != x) {
        for (int v = 0; v < t; v++) bad |= l[v] != l[v];
        return !bad;
    }
    for (int v = 0; v < t; v++) bad |= !(l[v] < x);
    for (int v = t + 1; v < V; v++) bad |= !(l[v] <= x);
    return !bad;
}

NN_CLONES size_t lt_nn_top1_hits(const float *logits, const int32_t *targets, size_t N, int V) {
    size_t hits = 0;
#pragma omp parallel for reduction(+ : hits) schedule(static)
    for (size_t n = 0; n < N; n++) hits += (size_t)top1_hit(logits + n * (size_t)V, V, targets[n]);
    return hits;
}

void lt_nn_crossentropy_backward(float *dlogits, const float *logits, const float *lse, const int32_t *targets,
                                 size_t N, int V, float scale, float eps) {
    lt_nn_crossentropy_backward_r(dlogits, logits, lse, targets, N, V, scale, eps, LT_NN_ROUND_NONE);
}

NN_CLONES void lt_nn_crossentropy_backward_r(float *dlogits, const float *logits, const float *lse,
                                             const int32_t *targets, size_t N, int V, float scale, float eps,
                                             lt_nn_round r) {
    /* label smoothing takes eps x scale / V from every logit's gradient and (1 - eps) x scale from the target's */
    const float all = (float)((double)eps * (double)scale / (double)V);
    const float tgt = eps == 0.0f ? scale : (float)((1.0 - (double)eps) * (double)scale);
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *l = logits + n * (size_t)V;
        float *d = dlogits + n * (size_t)V;
        float z = lse[n];
        if (eps == 0.0f)
            for (int v = 0; v < V; v++) d[v] = exp_vec(l[v] - z) * scale;
        else
            for (int v = 0; v < V; v++) d[v] = exp_vec(l[v] - z) * scale - all;
        d[targets[n]] -= tgt;
        if (r) round_span(d, (size_t)V, r);
    }
}

void lt_nn_encoder_forward16(float *out, const int32_t *inp, const uint16_t *wte, const uint16_t *wpe, int B, int T,
                             int C, const lt_noise *nz) {
    size_t N = (size_t)B * (size_t)T;
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const uint16_t *e = wte + (size_t)inp[n] * (size_t)C, *p = wpe + (n % (size_t)T) * (size_t)C;
        float *o = out + n * (size_t)C;
        if (nz && nz->mag != 0.0f) encode_noisy(o, n, C, nz, NULL, e, NULL, p);
        else
            for (int c = 0; c < C; c++) o[c] = lt_bf16_to_f32(e[c]) + lt_bf16_to_f32(p[c]);
    }
}

void lt_nn_fetch16(float *dst, const float *src, const uint16_t *src16, size_t n, lt_nn_round r) {
    if (src) lt_nn_round_copy(dst, src, n, r);
    else lt_nn_unpack16(dst, src16, n, LT_NN_ROUND_BF16);
}

NN_CLONES void lt_nn_pack16(uint16_t *dst, const float *src, size_t n, lt_nn_round r) {
    const size_t nch = EW_CHUNKS(n);
#pragma omp parallel for schedule(static) if (nch > 1)
    for (size_t k = 0; k < nch; k++) {
        const float *s = src + k * EW_CHUNK;
        uint16_t *d = dst + k * EW_CHUNK;
        const size_t len = EW_LEN(k, nch, n);
        if (r == LT_NN_ROUND_F16)
            for (size_t i = 0; i < len; i++) d[i] = lt_f32_to_f16(s[i]);
        else
            for (size_t i = 0; i < len; i++) d[i] = lt_f32_to_bf16(s[i]);
    }
}

NN_CLONES void lt_nn_unpack16(float *dst, const uint16_t *src, size_t n, lt_nn_round r) {
    const size_t nch = EW_CHUNKS(n);
#pragma omp parallel for schedule(static) if (nch > 1)
    for (size_t k = 0; k < nch; k++) {
        const uint16_t *s = src + k * EW_CHUNK;
        float *d = dst + k * EW_CHUNK;
        const size_t len = EW_LEN(k, nch, n);
        if (r == LT_NN_ROUND_F16)
            for (size_t i = 0; i < len; i++) d[i] = lt_f16_to_f32(s[i]);
        else
            for (size_t i = 0; i < len; i++) d[i] = lt_bf16_to_f32(s[i]);
    }
}

/* C = op(A) @ op(W) + beta * C, W rows v0..v1 of the head's weight ([v1 - v0, C]; op(W) is W^T when tb): wte16's
 * own rows (pure bf16) or wte's (mixed precision), with wscratch as their room (gemm_w) */
static void head_product(lt_nn_round r, int tb, int M, int N, int K, const float *A, int lda, const float *wte,
                         const uint16_t *wte16, int v0, int v1, int C, float *wscratch, float beta, float *Cm,
                         int ldc) {
    const size_t off = (size_t)v0 * (size_t)C;
    const lt_nn_weight w = {.b16 = wte ? NULL : wte16 + off, .buf = wscratch, .f32 = wte ? wte + off : NULL};
    gemm_w(r, tb, M, N, K, A, lda, w, (size_t)(v1 - v0), C, beta, Cm, ldc);
}

void lt_nn_lmhead_forward_r(float *logits, const float *inp, const float *wte, const uint16_t *wte16, size_t N, int C,
                            int V, lt_nn_round r, float *wscratch, int rows) {
    for (int v0 = 0; v0 < V; v0 += rows) {
        int v1 = v0 + rows < V ? v0 + rows : V;
        head_product(r, 1, (int)N, v1 - v0, C, inp, C, wte, wte16, v0, v1, C, wscratch, 0.0f, logits + v0, V);
    }
    lt_nn_round_inplace(logits, N * (size_t)V, r);
}

void lt_nn_lmhead_backward_r(float *dinp, float *dwte, const float *dlogits, const float *inp, const float *wte,
                             const uint16_t *wte16, size_t N, int C, int V, lt_nn_round r, float *wscratch,
                             float *gscratch, int rows) {
    for (int v0 = 0; v0 < V; v0 += rows) {
        int v1 = v0 + rows < V ? v0 + rows : V, nv = v1 - v0;
        head_product(r, 0, (int)N, C, nv, dlogits + v0, V, wte, wte16, v0, v1, C, wscratch, v0 ? 1.0f : 0.0f, dinp,
                     C);
        gemm_r(r, 1, 0, nv, C, (int)N, dlogits + v0, V, inp, C, 0.0f, gscratch, C);
        lt_nn_round_inplace(gscratch, (size_t)nv * (size_t)C, r);
        add_into(dwte + (size_t)v0 * (size_t)C, gscratch, (size_t)nv * (size_t)C);
    }
    lt_nn_round_inplace(dinp, N * (size_t)C, r);
}

void lt_nn_lmhead_backward_sum_r(float *dinp, float *sum, int first, const float *dlogits, const float *inp,
                                 const float *wte, const uint16_t *wte16, size_t N, int C, int V, lt_nn_round r,
                                 float *wscratch, int rows) {
    for (int v0 = 0; v0 < V; v0 += rows) {
        int v1 = v0 + rows < V ? v0 + rows : V;
        head_product(r, 0, (int)N, C, v1 - v0, dlogits + v0, V, wte, wte16, v0, v1, C, wscratch, v0 ? 1.0f : 0.0f,
                     dinp, C);
    }
    lt_nn_round_inplace(dinp, N * (size_t)C, r);
    lmhead_wgrad(sum, dlogits, inp, N, C, V, first ? 0.0f : 1.0f, r);
}

void lt_nn_lmhead_sum_finish_r(float *dwte, float *sum, size_t n, lt_nn_round r) {
    lt_nn_round_inplace(sum, n, r);
    add_into(dwte, sum, n);
}
