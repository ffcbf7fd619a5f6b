/* The GPT-2 layer kernels on the GPU (gpt2_layers_cuda.h): the CPU kernels of
 * model/gpt2_layers.c one for one, templated on the storage type S of the
 * activations (float, uint16_t holding bf16 bits, or ltnn::f16s holding fp16
 * bits: cu_nn.cuh's ld / st); arithmetic is fp32.
 *
 * Shapes of the work:
 *   - elementwise kernels (encoder forward, gelu, residual, bias fill): one
 *     thread per element, or (gelu, residual, bias fill, where sizes and
 *     alignment allow: vec8_ok) per 8 elements in 16-byte accesses;
 *   - row kernels (layernorm): one warp per row, lanes striding over the
 *     row 8 values at a time in 16-byte accesses where C and alignment allow
 *     (else one), warp sums by xor shuffles (every lane ends with the same
 *     bits: each step adds the same two values, and float addition commutes);
 *   - attention: attention.cu (flash-style tiles, no T x T matrix);
 *   - the classifier: one CTA per row of logits, 8 at a time in 16-byte
 *     accesses where the row stride and alignment allow;
 *   - sums down the rows (layernorm dw / db, bias gradients): a deterministic
 *     two-pass column sum (partial sums of groups of CS_ROWS rows into
 *     scratch, then the groups added in order), never atomics;
 *   - the encoder's token gradient: one thread per (token, column) over a
 *     host-built bucket list, in increasing row order as on the CPU.
 * The column kernels load 2 or 4 bytes at a time. Launches and
 * shared memory go through cu_internal.cuh's macros so that tests/emu runs the
 * same source on the CPU. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <new>
#include <type_traits>

#include "kernels/cuda/cu_internal.cuh"
#include "kernels/optim_kernels_cuda.h"
#include "model/cuda/cu_gemm.cuh"
#include "model/cuda/cu_nn.cuh"
#include "model/cuda/gpt2_layers_cuda.h"

namespace {

using namespace ltnn;

constexpr int EW_THREADS = 256;  /* elementwise kernels */
constexpr int ROW_WARPS = 4;     /* row kernels: rows (warps) per CTA */
constexpr int CS_ROWS = 64;      /* rows per partial sum of the column sums */
constexpr int CS_THREADS = 256;  /* columns per CTA of the column sums */
constexpr int CE_THREADS = 256;  /* classifier: threads per row */
constexpr int SUM_THREADS = 256; /* the loss sum */

/* ---- encoder ---- */

template <typename S>
__global__ void encoder_forward_kernel(S *out, const int32_t *inp, const S *wte, const S *wpe, size_t N, int T, int C,
                                       lt_noise nz) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N * (size_t)C) return;
    size_t n = i / (size_t)C, c = i % (size_t)C;
    float x = ld(wte, (size_t)inp[n] * (size_t)C + c);
    if (nz.mag != 0.0f) x = x + lt_noise_at(&nz, i); /* NEFTune: before the position joins (the CPU's order) */
    st(out, i, x + ld(wpe, (n % (size_t)T) * (size_t)C + c));
}

/* One thread per (group, column): the group's rows in increasing order. */
template <typename S>
__global__ void encoder_backward_wte_kernel(float *dwte, const S *dout, const int32_t *plan, size_t N, int C,
                                            int cblocks) {
    int group = (int)(blockIdx.x / (unsigned)cblocks);
    size_t c = (size_t)(blockIdx.x % (unsigned)cblocks) * blockDim.x + threadIdx.x;
    if (c >= (size_t)C) return;
    const int32_t *rows = plan, *start = plan + N, *token = plan + 2 * N + 1;
    float *d = dwte + (size_t)token[group] * (size_t)C + c;
    float acc = *d;
    for (int j = start[group]; j < start[group + 1]; j++) acc += ld(dout, (size_t)rows[j] * (size_t)C + c);
    *d = acc;
}

/* One thread per (position, column): the batch rows in order. */
template <typename S>
__global__ void encoder_backward_wpe_kernel(float *dwpe, const S *dout, int B, int T, int C) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)T * (size_t)C) return;
    float acc = dwpe[i];
    for (int b = 0; b < B; b++) acc += ld(dout, (size_t)b * (size_t)T * (size_t)C + i);
    dwpe[i] = acc;
}

/* ---- layernorm ---- */

/* The row kernels' arrays are __restrict__ (no call passes overlapping ones, gpt2_layers_cuda.h): without it the
 * loads of a row's next elements may not pass the store of the previous one, and each unrolled group of the last
 * loop waits out a full memory latency (seen in the PTX: ld ld ld ld st, ld ld ld ld st, ...).
 * V: values a lane takes at a time, 1 or 8 (8: C % 8 == 0 and every array 16-byte aligned, ln_v8 below; one
 * 16-byte access per 8 values of 16-bit storage instead of 2-byte ones). Lane l takes the values from V l on, then
 * every 32 V further; it sums its values in that order, and the warp's lanes are joined by warp_sum: a fixed order
 * for each V, so the results do not depend on anything but the inputs and V. */
template <typename S, int V>
__global__ void layernorm_forward_kernel(S *__restrict__ out, float *__restrict__ mean, float *__restrict__ rstd,
                                         const S *__restrict__ inp, const S *__restrict__ w,
                                         const S *__restrict__ b, size_t N, int C, float eps) {
    const int lane = threadIdx.x % 32;
    const size_t row = (size_t)blockIdx.x * ROW_WARPS + threadIdx.x / 32;
    if (row >= N) return; /* a whole warp */
    const S *x = inp + row * (size_t)C;
    S *o = out + row * (size_t)C;
    /* two passes (mean, then squared deviations): the variance of rows with a
     * large mean keeps its digits, as in the CPU's */
    float s = 0.0f;
    for (int c = lane * V; c < C; c += 32 * V) {
        float xv[V];
        ldv(x, c, xv);
#pragma unroll
        for (int k = 0; k < V; k++) s += xv[k];
    }
    const float mu = warp_sum(s) / (float)C;
    float v = 0.0f;
    for (int c = lane * V; c < C; c += 32 * V) {
        float xv[V];
        ldv(x, c, xv);
#pragma unroll
        for (int k = 0; k < V; k++) {
            float d = xv[k] - mu;
            v += d * d;
        }
    }
    const float rs = 1.0f / sqrtf(warp_sum(v) / (float)C + eps);
    for (int c = lane * V; c < C; c += 32 * V) {
        float xv[V], wv[V], bv[V];
        ldv(x, c, xv), ldv(w, c, wv), ldv(b, c, bv);
#pragma unroll
        for (int k = 0; k < V; k++) xv[k] = (xv[k] - mu) * rs * wv[k] + bv[k];
        stv(o, c, xv);
    }
    if (lane == 0) mean[row] = mu, rstd[row] = rs;
}

template <typename S, int V>
__global__ void layernorm_backward_kernel(S *__restrict__ dinp, const S *__restrict__ dout, const S *__restrict__ inp,
                                          const S *__restrict__ w, const float *__restrict__ mean,
                                          const float *__restrict__ rstd, size_t N, int C) {
    const int lane = threadIdx.x % 32;
    const size_t row = (size_t)blockIdx.x * ROW_WARPS + threadIdx.x / 32;
    if (row >= N) return;
    const S *x = inp + row * (size_t)C, *g = dout + row * (size_t)C;
    S *d = dinp + row * (size_t)C;
    const float mu = mean[row], rs = rstd[row];
    float m1 = 0.0f, m2 = 0.0f; /* sums of dxhat and of dxhat * xhat */
    for (int c = lane * V; c < C; c += 32 * V) {
        float xv[V], gv[V], wv[V];
        ldv(x, c, xv), ldv(g, c, gv), ldv(w, c, wv);
#pragma unroll
        for (int k = 0; k < V; k++) {
            float xhat = (xv[k] - mu) * rs, dxhat = gv[k] * wv[k];
            m1 += dxhat;
            m2 += dxhat * xhat;
        }
    }
    const float a = warp_sum(m1) / (float)C, bb = warp_sum(m2) / (float)C;
    for (int c = lane * V; c < C; c += 32 * V) {
        float xv[V], gv[V], wv[V], dv[V];
        ldv(x, c, xv), ldv(g, c, gv), ldv(w, c, wv), ldv(d, c, dv);
#pragma unroll
        for (int k = 0; k < V; k++) {
            float xhat = (xv[k] - mu) * rs, dxhat = gv[k] * wv[k];
            dv[k] = dv[k] + (dxhat - a - xhat * bb) * rs;
        }
        stv(d, c, dv);
    }
}

/* whether the row kernels may take 8 values at a time: C a multiple of 8 and every array 16-byte aligned (then
 * each row starts 16-byte aligned too) */
inline bool ln_v8(int C, const void *a, const void *b, const void *c, const void *d) {
    return vec8_ok((size_t)C, a, b, c) && vec8_ok(8, d);
}

/* Column sums, pass 1: part[0][group][c] = sum of dout over the group's rows;
 * with LN also part[1][group][c] = sum of dout * xhat. One thread per column,
 * consecutive threads on consecutive columns (coalesced rows). */
template <typename S, bool LN>
__global__ void colsum_partial_kernel(float *part, const S *dout, const S *inp, const float *mean, const float *rstd,
                                      size_t N, int C, int cblocks, int groups) {
    const int group = (int)(blockIdx.x / (unsigned)cblocks);
    const size_t c = (size_t)(blockIdx.x % (unsigned)cblocks) * blockDim.x + threadIdx.x;
    if (c >= (size_t)C) return;
    const size_t r0 = (size_t)group * CS_ROWS, r1 = r0 + CS_ROWS < N ? r0 + CS_ROWS : N;
    float sb = 0.0f, sw = 0.0f;
    /* the group's rows in order, 8 rows' loads ahead of their adds: the grid is small (C / 256 CTAs per group),
     * so each thread's chain of loads is the time, and nvcc on its own let about 2 rows run ahead */
    struct row_vals {
        float g, x, m, r;
    };
    lt_cu_loads_ahead(
        r0, r1, 1,
        [&](uint64_t r) {
            row_vals v{ld(dout, r * (size_t)C + c), 0.0f, 0.0f, 0.0f};
            if constexpr (LN) v.x = ld(inp, r * (size_t)C + c), v.m = mean[r], v.r = rstd[r];
            return v;
        },
        [&](uint64_t, const row_vals &v) {
            sb += v.g;
            if constexpr (LN) sw += v.g * ((v.x - v.m) * v.r);
        });
    part[(size_t)group * (size_t)C + c] = sb;
    if constexpr (LN) part[((size_t)groups + (size_t)group) * (size_t)C + c] = sw;
}

/* Column sums, pass 2: db[c] += the groups' sums in group order, rounded to
 * the dtype rdb first (LT_DTYPE_F32: not rounded); dw likewise from the
 * second half of part, when given, never rounded. */
__global__ void colsum_final_kernel(float *db, float *dw, const float *part, int groups, int C, int rdb) {
    const size_t c = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= (size_t)C) return;
    const uint64_t end = (uint64_t)groups * (uint64_t)C; /* the groups in order, 8 loads ahead of their adds */
    db[c] += lt_cu_round_to(lt_cu_ordered_sum<float>(part + c, 0, end, (uint64_t)C), rdb);
    if (dw) dw[c] += lt_cu_ordered_sum<float>(part + end + c, 0, end, (uint64_t)C);
}

/* ---- matmul helpers ---- */

/* dst[i] += src[i]: a 16-bit weight-gradient product widened (exactly) into the fp32 gradient */
template <typename S>
__global__ void add_into_f32_kernel(float *dst, const S *src, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    dst[i] += ld(src, i);
}

/* dst[i] += src[i] rounded to S (to nearest even) and widened back: an fp32 sum of weight-gradient products
 * added the way one 16-bit product would be */
template <typename S>
__global__ void add_rounded_kernel(float *dst, const float *src, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    S r;
    st(&r, 0, src[i]);
    dst[i] += ld(&r, 0);
}

/* dst[i] = src[i] in dst's storage: rounded to nearest even when D is narrower, exact when wider; V values at a
 * time (8: vec8_ok for the pointers, n a multiple of 8), striding over what the grid does not cover */
template <typename D, typename S, int V>
__global__ void convert_kernel(D *__restrict__ dst, const S *__restrict__ src, size_t n) {
    const size_t stride = (size_t)gridDim.x * blockDim.x * V;
    for (size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * V; i < n; i += stride) {
        if constexpr (V == 8) {
            float x[8];
            ld8(src, i, x);
            st8(dst, i, x);
        } else {
            st(dst, i, ld(src, i));
        }
    }
}

/* the conversions' grids: capped (each thread strides on); the emulation runs CTAs one by one, so fewer there */
#ifdef LT_CUDA_EMU
constexpr size_t CONV_MAX_BLOCKS = 16;
#else
constexpr size_t CONV_MAX_BLOCKS = 4096;
#endif
inline unsigned conv_grid(size_t items) {
    const size_t b = (items + EW_THREADS - 1) / EW_THREADS;
    return (unsigned)(b == 0 ? 1 : b > CONV_MAX_BLOCKS ? CONV_MAX_BLOCKS : b);
}

/* queues dst[0..n) = src[0..n) converted: 16 bytes at a time over the whole multiples of 8 when both pointers
 * are 16-byte aligned, one value at a time over the rest */
template <typename D, typename S> void convert_launch(lt_cunn *nn, D *dst, const S *src, size_t n) {
    const size_t n8 = vec8_ok(8, dst, src) ? n & ~(size_t)7 : 0;
    if (n8) LT_LAUNCH((convert_kernel<D, S, 8>), conv_grid(n8 / 8), EW_THREADS, 0, nn->stream)(dst, src, n8);
    if (n > n8)
        LT_LAUNCH((convert_kernel<D, S, 1>), conv_grid(n - n8), EW_THREADS, 0, nn->stream)(dst + n8, src + n8, n - n8);
}

/* out[n, :] = bias, the addend the GEMM then adds the product onto; V: values per thread (8 needs OC and the
 * pointers as vec8_ok asks, so that a thread's 8 values lie in one row) */
template <typename S, int V>
__global__ void bias_fill_kernel(S *out, const S *bias, size_t N, int OC) {
    const size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * V;
    if (i >= N * (size_t)OC) return;
    /* a copy: no rounding; the 32-bit remainder where it fits (a 64-bit one cost more than the memory traffic) */
    const size_t c = N * (size_t)OC <= 0xffffffffu ? (size_t)((uint32_t)i % (uint32_t)OC) : i % (size_t)OC;
    if constexpr (V == 8) {
        LT_ALIGNED(out + i, 16);
        LT_ALIGNED(bias + c, 16);
        if constexpr (sizeof(S) == 4) {
            reinterpret_cast<float4 *>(out + i)[0] = reinterpret_cast<const float4 *>(bias + c)[0];
            reinterpret_cast<float4 *>(out + i)[1] = reinterpret_cast<const float4 *>(bias + c)[1];
        } else {
            *reinterpret_cast<uint4 *>(out + i) = *reinterpret_cast<const uint4 *>(bias + c);
        }
    } else {
        out[i] = bias[c];
    }
}

/* ---- elementwise ---- */

#define GELU_K 0.7978845608028654f /* sqrt(2 / pi) */
#define GELU_A 0.044715f

/* The elementwise kernels take V = 1 or 8 values per thread (8: vec8_ok, one 16-byte access per 8 values of
 * 16-bit storage: the scalar form moved 2 bytes per lane per request and ran at the same time per element as
 * fp32's 4-byte one, 1.4 TB/s for bf16 gelu on an H200). The per-value arithmetic is the same either way. */
__device__ __forceinline__ float gelu_f(float x) { return 0.5f * x * (1.0f + tanhf(GELU_K * (x + GELU_A * x * x * x))); }

/* d gelu / dx times g */
__device__ __forceinline__ float gelu_b(float x, float g) {
    float th = tanhf(GELU_K * (x + GELU_A * x * x * x));
    float du = GELU_K * (1.0f + 3.0f * GELU_A * x * x);
    return g * (0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du);
}

template <typename S, int V>
__global__ void gelu_forward_kernel(S *out, const S *inp, size_t n) {
    const size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * V;
    if (i >= n) return;
    if constexpr (V == 8) {
        float x[8];
        ld8(inp, i, x);
#pragma unroll
        for (int k = 0; k < 8; k++) x[k] = gelu_f(x[k]);
        st8(out, i, x);
    } else {
        st(out, i, gelu_f(ld(inp, i)));
    }
}

template <typename S, int V>
__global__ void gelu_backward_kernel(S *dinout, const S *inp, size_t n) {
    const size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * V;
    if (i >= n) return;
    if constexpr (V == 8) {
        float x[8], g[8];
        ld8(inp, i, x);
        ld8(dinout, i, g);
#pragma unroll
        for (int k = 0; k < 8; k++) g[k] = gelu_b(x[k], g[k]);
        st8(dinout, i, g);
    } else {
        st(dinout, i, gelu_b(ld(inp, i), ld(dinout, i)));
    }
}

template <typename S, int V>
__global__ void residual_forward_kernel(S *out, const S *a, const S *b, size_t n) {
    const size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * V;
    if (i >= n) return;
    if constexpr (V == 8) {
        float x[8], y[8];
        ld8(a, i, x);
        ld8(b, i, y);
#pragma unroll
        for (int k = 0; k < 8; k++) x[k] += y[k];
        st8(out, i, x);
        return;
    }
    st(out, i, ld(a, i) + ld(b, i));
}

/* dropout: a thread takes one group of 4 elements (one Philox call) */
template <typename S>
__global__ void dropout_kernel(S *dst, const S *src, size_t n, lt_dropout d) {
    const size_t g = (size_t)blockIdx.x * blockDim.x + threadIdx.x, i = 4 * g;
    if (i >= n) return;
    uint32_t w[4];
    lt_dropout_group(&d, g, w);
#pragma unroll
    for (int e = 0; e < 4; e++)
        if (i + e < n) st(dst, i + e, w[e] >= d.threshold ? ld(src, i + e) * d.scale : 0.0f);
}

/* ---- classifier ---- */

/* (max, sum of exp(x - max)) pairs: the online softmax's merge. An empty
 * side (max -inf) adds nothing. Symmetric in its two arguments, so a xor
 * butterfly leaves the same bits in every lane. */
__device__ __forceinline__ void lse_merge(float &m, float &s, float m2, float s2) {
    float M = fmaxf(m, m2);
    float a = m == -INFINITY ? 0.0f : s * expf(m - M), b = m2 == -INFINITY ? 0.0f : s2 * expf(m2 - M);
    m = M;
    s = a + b;
}

/* Label smoothing's share of every logit's gradient, eps x scale / V, and the target's, (1 - eps) x scale (scale
 * itself when eps is 0): the CPU's expressions (lt_nn_crossentropy_backward_r), so the same floats; with eps 0
 * subtracting `all` (+0) leaves the plain gradient's bits. */
__device__ __forceinline__ float ce_all(float scale, float eps, int V) {
    return (float)((double)eps * (double)scale / (double)V);
}
__device__ __forceinline__ float ce_target(float scale, float eps) {
    return eps == 0.0f ? scale : (float)((1.0 - (double)eps) * (double)scale);
}

/* One CTA per row: the log-sum-exp by an online max and sum (one read of the
 * row), the loss; with D, the row overwritten by its gradient (a second read).
 * W: values a thread takes at a time, 1 or 8 (8: ldv a multiple of 8 and the
 * rows 16-byte aligned, classifier_w; 16-byte accesses, the scalar form's
 * 2-byte requests held bf16 to fp32's time a row). With W 8 a thread takes the
 * columns from 8 tid on, 8 at a time, every 8 x CE_THREADS; the last V % 8 one
 * at a time. Each W sums its row in a fixed order, the forward and the fused
 * form alike (so their lse agree bit for bit for the same W). */
template <typename S, bool D, int W>
__global__ void __launch_bounds__(CE_THREADS) classifier_kernel(S *dlogits, float *losses, float *lse,
                                                                 const S *logits, const int32_t *targets, int V,
                                                                 int ldv, float scale, float eps) {
    __shared__ float red_m[CE_THREADS / 32], red_s[CE_THREADS / 32], red_x[CE_THREADS / 32];
    const size_t n = blockIdx.x;
    const S *l = logits + n * (size_t)ldv;
    const int Vw = V - V % W; /* the columns taken W at a time */
    float m = -INFINITY, s = 0.0f, sx = 0.0f; /* sx: the row's sum, for label smoothing (eps > 0) */
    auto see = [&](float x) {
        sx += x;
        if (x > m) {
            s = (m == -INFINITY ? 0.0f : s * expf(m - x)) + 1.0f;
            m = x;
        } else if (x != -INFINITY) {
            s += expf(x - m);
        }
    };
    for (int v = (int)threadIdx.x * W; v < Vw; v += CE_THREADS * W) {
        float x[W];
        ltnn::ldv(l, (size_t)v, x); /* (the parameter ldv hides the function) */
#pragma unroll
        for (int k = 0; k < W; k++) see(x[k]);
    }
    for (int v = Vw + (int)threadIdx.x; v < V; v += CE_THREADS) see(ld(l, v)); /* W 8: the last V % 8 */
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
        lse_merge(m, s, m2, s2);
        sx += __shfl_xor_sync(0xffffffffu, sx, o);
    }
    if (threadIdx.x % 32 == 0) red_m[threadIdx.x / 32] = m, red_s[threadIdx.x / 32] = s, red_x[threadIdx.x / 32] = sx;
    __syncthreads();
    m = red_m[0], s = red_s[0];
    for (int w = 1; w < CE_THREADS / 32; w++) lse_merge(m, s, red_m[w], red_s[w]);
    const float z = m + logf(s);
    const int tgt = targets[n];
    if (threadIdx.x == 0) {
        lse[n] = z;
        if (eps == 0.0f) {
            losses[n] = z - ld(l, tgt);
        } else { /* label smoothing: (1 - eps) x the cross-entropy + eps x (lse less the mean logit) */
            double sum = 0.0;
            for (int w = 0; w < CE_THREADS / 32; w++) sum += (double)red_x[w];
            losses[n] = (float)((1.0 - eps) * ((double)z - ld(l, tgt)) + eps * ((double)z - sum / V));
        }
    }
    if constexpr (D) {
        __syncthreads(); /* the target's logit is read above before any thread overwrites it */
        S *d = dlogits + n * (size_t)ldv;
        const float all = ce_all(scale, eps, V), ts = ce_target(scale, eps);
        for (int v = (int)threadIdx.x * W; v < Vw; v += CE_THREADS * W) {
            float x[W];
            ltnn::ldv(l, (size_t)v, x);
#pragma unroll
            for (int k = 0; k < W; k++) {
                x[k] = expf(x[k] - z) * scale - all;
                if (v + k == tgt) x[k] -= ts;
            }
            stv(d, (size_t)v, x);
        }
        for (int v = Vw + (int)threadIdx.x; v < V; v += CE_THREADS) {
            float g = expf(ld(l, v) - z) * scale - all;
            if (v == tgt) g -= ts;
            st(d, v, g);
        }
    }
}

template <typename S>
__global__ void crossentropy_backward_kernel(S *dlogits, const S *logits, const float *lse, const int32_t *targets,
                                             int V, int ldv, float scale, float eps) {
    const size_t n = blockIdx.x;
    const S *l = logits + n * (size_t)ldv;
    S *d = dlogits + n * (size_t)ldv;
    const float z = lse[n];
    const int tgt = targets[n];
    const float all = ce_all(scale, eps, V), ts = ce_target(scale, eps);
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        float g = expf(ld(l, v) - z) * scale - all;
        if (v == tgt) g -= ts;
        st(d, v, g);
    }
}

/* One CTA per row: whether the row's top-1 prediction, torch.argmax's (the first largest value, or the first NaN
 * of a row that has one), is its target: for a number x at the target, every value before it below x and every
 * value after it at most x (a NaN is neither); for a NaN there, no NaN before it. *hits grows by one for each row
 * where it is (an integer sum: the same count in any order). W as classifier_kernel's. */
template <typename S, int W>
__global__ void __launch_bounds__(CE_THREADS) top1_kernel(unsigned long long *hits, const S *logits,
                                                           const int32_t *targets, int V, int ldv) {
    const size_t n = blockIdx.x;
    const S *l = logits + n * (size_t)ldv;
    const int tgt = targets[n], Vw = V - V % W;
    const float x = ld(l, tgt);
    const bool xnan = x != x;
    int bad = 0;
    auto see = [&](int v, float y) { bad |= xnan ? v < tgt && y != y : v < tgt ? !(y < x) : v > tgt && !(y <= x); };
    for (int v = (int)threadIdx.x * W; v < Vw; v += CE_THREADS * W) {
        float y[W];
        ltnn::ldv(l, (size_t)v, y);
#pragma unroll
        for (int k = 0; k < W; k++) see(v + k, y[k]);
    }
    for (int v = Vw + (int)threadIdx.x; v < V; v += CE_THREADS) see(v, ld(l, v));
    if (!__syncthreads_or(bad) && threadIdx.x == 0) atomicAdd(hits, 1ull);
}

/* *out = sum of x[N] in double, one CTA, a fixed order */
__global__ void __launch_bounds__(SUM_THREADS) sum_kernel(double *out, const float *x, size_t N) {
    __shared__ double red[32];
    double s = 0.0;
    for (size_t i = threadIdx.x; i < N; i += SUM_THREADS) s += x[i];
    s = lt_cu_block_sum(s, red);
    if (threadIdx.x == 0) *out = s;
}

/* ---- host side ---- */

/* the arguments of a GEMM must fit cuBLAS's int */
bool fits_int(size_t v) { return v <= 0x7fffffffu; }

int gemm(lt_cunn *nn, const char *what, bool ta, bool tb, size_t m, size_t n, size_t k, const void *A, size_t lda,
         const void *B, size_t ldb, lt_dtype ab, void *C, size_t ldc, lt_dtype cdt, float beta) {
    if (!fits_int(m) || !fits_int(n) || !fits_int(k) || !fits_int(lda) || !fits_int(ldb) || !fits_int(ldc))
        return fail(nn, "%s: a dimension of the matrix multiply exceeds 2^31-1", what);
    char err[400];
    if (lt_cugemm_run(nn->gemm, ta, tb, (int)m, (int)n, (int)k, A, (int)lda, B, (int)ldb, ab, C, (int)ldc, cdt, beta,
                      err, sizeof err))
        return fail(nn, "%s: %s", what, err);
    return 0;
}

/* the colsum passes over dout [N, C] into db (and dw with LN); rdb: the rounding of db's sums (LT_DTYPE_F32: none) */
template <typename S, bool LN>
void colsum(lt_cunn *nn, float *db, float *dw, float *scratch, const S *dout, const S *inp, const float *mean,
            const float *rstd, size_t N, int C, lt_dtype rdb = LT_DTYPE_F32) {
    const int cblocks = (int)blocks_for((size_t)C, CS_THREADS), groups = (int)blocks_for(N, CS_ROWS);
    auto partial = colsum_partial_kernel<S, LN>; /* (a comma would split the macro's argument) */
    LT_LAUNCH(partial, (unsigned)(groups * cblocks), CS_THREADS, 0, nn->stream)(
        scratch, dout, inp, mean, rstd, N, C, cblocks, groups);
    LT_LAUNCH(colsum_final_kernel, (unsigned)cblocks, CS_THREADS, 0, nn->stream)(db, LN ? dw : nullptr, scratch,
                                                                                 groups, C, (int)rdb);
}

/* The weight gradient of a matrix multiply: column-major C[m, n] (f32, ldc = m) += A[m, k] B^T (A of ld lda, B
 * [n, k] of ld ldb, both of dtype dt). Without wscratch the product is added in fp32 (one GEMM, beta 1). With it
 * (dt 16-bit) the product is rounded to dt before the addition, as a 16-bit op's weight gradient is (torch.autocast,
 * the CPU model): GEMMs of as many columns as wscratch (wscratch_elems values of dt) holds write the rounded
 * product there, and a kernel adds it into C. */
int gemm_wgrad(lt_cunn *nn, const char *what, size_t m, size_t n, size_t k, const void *A, size_t lda, const void *B,
               size_t ldb, lt_dtype dt, float *C, void *wscratch, size_t wscratch_elems) {
    if (!wscratch || dt == LT_DTYPE_F32)
        return gemm(nn, what, false, true, m, n, k, A, lda, B, ldb, dt, C, m, LT_DTYPE_F32, 1.0f);
    const size_t chunk = wscratch_elems / m;
    if (!chunk) return fail(nn, "%s: the weight-gradient scratch (%zu values) holds no column of %zu", what,
                            wscratch_elems, m);
    for (size_t c0 = 0; c0 < n; c0 += chunk) {
        const size_t nc = n - c0 < chunk ? n - c0 : chunk;
        /* column c0 of B^T is row c0 of B: c0 elements (2 bytes each) on */
        if (gemm(nn, what, false, true, m, nc, k, A, lda, static_cast<const uint16_t *>(B) + c0, ldb, dt, wscratch, m,
                 dt, 0.0f))
            return -1;
        int rc = with_dtype(nn, what, dt, [&](auto z) {
            typedef decltype(z) S;
            LT_LAUNCH(add_into_f32_kernel<S>, blocks_for(m * nc, EW_THREADS), EW_THREADS, 0, nn->stream)(
                C + c0 * m, static_cast<const S *>(wscratch), m * nc);
        });
        if (rc) return rc;
    }
    return 0;
}

} // namespace

/* ---- the C interface ---- */

/* an environment switch: set to anything but "" or "0" */
/* whether the classifier takes 8 values at a time (classifier_kernel's W): ldv a multiple of 8 and the logits
 * 16-byte aligned (the fused form overwrites them in place), so that every row is */
static bool classifier_w(int ldv, const void *logits) { return vec8_ok((size_t)ldv, logits); }

static bool env_flag(const char *name) {
    const char *v = getenv(name);
    return v && v[0] && strcmp(v, "0") != 0;
}

/* a default-on switch: on unless the environment sets name to "0" */
static bool env_not_0(const char *name) {
    const char *v = getenv(name);
    return !(v && strcmp(v, "0") == 0);
}

extern "C" {

lt_cunn *lt_cunn_create(void *stream, char *err, size_t errlen) {
    /* no device, or one older than this build's kernels: say so before cuBLAS's vaguer "not initialized" or a
     * launch's "no kernel image" */
    char why[512];
    if (lt_cuda_check_device(why, sizeof why)) {
        if (err && errlen) snprintf(err, errlen, "GPT-2 layers: %s", why);
        return nullptr;
    }
    lt_cunn *nn = new (std::nothrow) lt_cunn;
    if (!nn) {
        if (err && errlen) snprintf(err, errlen, "out of memory creating the GPT-2 layer context");
        return nullptr;
    }
    nn->stream = (cudaStream_t)stream;
    nn->err[0] = '\0';
    /* LT_ATTENTION_SIMT=1 keeps attention on the CUDA cores for every dtype (to compare, or to get around a
     * tensor-core problem on some GPU without a rebuild); lt_cunn_attention_simt overrides it */
    nn->attn_simt = env_flag("LT_ATTENTION_SIMT");
    /* head sizes 65 to 128 on the tensor cores too (at the 7B shape 3.8x the CUDA cores forward, 5.1x backward,
     * H200, 2026-11-28); LT_ATTENTION_TC128=0 keeps them on the CUDA cores */
    nn->attn_tc128 = env_not_0("LT_ATTENTION_TC128");
    /* fp32 attention (head sizes up to 64) on the tensor cores by 3xTF32 products, fp32's accuracy within a few
     * units in the last place (the CUDA-core kernels' backward reached 11 TFLOP/s at GPT-2's shape on an H200,
     * 2026-11-28, a quarter of the bf16 tensor-core kernels'); LT_ATTENTION_TF32=0 keeps fp32 on the CUDA cores */
    nn->attn_tf32 = env_not_0("LT_ATTENTION_TF32");
    /* the layernorm kernels 8 values a lane where C and alignment allow; LT_LAYERNORM_V8=0: one at a time */
    nn->ln_v8 = env_not_0("LT_LAYERNORM_V8");
    nn->gemm = lt_cugemm_create(nn->stream, err, errlen);
    if (!nn->gemm) {
        delete nn;
        return nullptr;
    }
    return nn;
}

void lt_cunn_destroy(lt_cunn *nn) {
    if (!nn) return;
    cudaStreamSynchronize(nn->stream);
    cudaGetLastError();
    lt_cugemm_destroy(nn->gemm);
    delete nn;
}

const char *lt_cunn_error(const lt_cunn *nn) { return nn ? nn->err : "no context"; }

int lt_cunn_sync(lt_cunn *nn) {
    cudaError_t e = cudaStreamSynchronize(nn->stream);
    if (e == cudaSuccess) e = cudaGetLastError();
    if (e != cudaSuccess) return fail(nn, "a GPT-2 layer kernel failed: %s", cudaGetErrorString(e));
    return 0;
}

int lt_cunn_encoder_forward(lt_cunn *nn, lt_dtype dt, void *out, const int32_t *inp, const void *wte,
                            const void *wpe, int B, int T, int C, const lt_noise *nz) {
    const size_t N = (size_t)B * (size_t)T, total = N * (size_t)C;
    if (!total) return 0;
    lt_noise none;
    memset(&none, 0, sizeof none);
    const lt_noise noise = nz ? *nz : none;
    return with_dtype(nn, "encoder_forward", dt, [&](auto z) {
        typedef decltype(z) S;
        LT_LAUNCH(encoder_forward_kernel<S>, blocks_for(total, EW_THREADS), EW_THREADS, 0, nn->stream)(
            static_cast<S *>(out), inp, static_cast<const S *>(wte), static_cast<const S *>(wpe), N, T, C, noise);
    });
}

size_t lt_cunn_encoder_plan_ints(size_t N) { return 3 * N + 1; }

int lt_cunn_encoder_plan(int32_t *plan, int32_t *count, const int32_t *inp, size_t N, int V) {
    int32_t *rows = plan, *start = plan + N, *token = plan + 2 * N + 1;
    memset(count, 0, (size_t)V * sizeof *count);
    for (size_t n = 0; n < N; n++) {
        if (inp[n] < 0 || inp[n] >= V) return -1;
        count[inp[n]]++;
    }
    /* count[v] becomes the first slot of token v's group; groups in token order */
    int groups = 0;
    int32_t at = 0;
    for (int v = 0; v < V; v++) {
        int32_t c = count[v];
        if (c) {
            start[groups] = at;
            token[groups] = v;
            groups++;
        }
        count[v] = at;
        at += c;
    }
    start[groups] = at;
    for (size_t n = 0; n < N; n++) rows[count[inp[n]]++] = (int32_t)n; /* increasing n within a group */
    return groups;
}

int lt_cunn_encoder_backward(lt_cunn *nn, lt_dtype dt, float *dwte, float *dwpe, const void *dout,
                             const int32_t *plan, int ngroups, int B, int T, int C) {
    const size_t N = (size_t)B * (size_t)T;
    if (!N || C <= 0) return 0;
    const int cblocks = (int)blocks_for((size_t)C, EW_THREADS);
    return with_dtype(nn, "encoder_backward", dt, [&](auto z) {
        typedef decltype(z) S;
        const S *g = static_cast<const S *>(dout);
        LT_LAUNCH(encoder_backward_wpe_kernel<S>, blocks_for((size_t)T * (size_t)C, EW_THREADS), EW_THREADS, 0,
                  nn->stream)(dwpe, g, B, T, C);
        if (ngroups > 0)
            LT_LAUNCH(encoder_backward_wte_kernel<S>, (unsigned)((size_t)ngroups * (size_t)cblocks), EW_THREADS, 0,
                      nn->stream)(dwte, g, plan, N, C, cblocks);
    });
}

int lt_cunn_layernorm_forward(lt_cunn *nn, lt_dtype dt, void *out, float *mean, float *rstd, const void *inp,
                              const void *w, const void *b, size_t N, int C, double eps) {
    if (!N) return 0;
    return with_dtype(nn, "layernorm_forward", dt, [&](auto z) {
        typedef decltype(z) S;
        auto k = nn->ln_v8 && ln_v8(C, out, inp, w, b) ? layernorm_forward_kernel<S, 8> : layernorm_forward_kernel<S, 1>;
        LT_LAUNCH(k, blocks_for(N, ROW_WARPS), 32 * ROW_WARPS, 0, nn->stream)(
            static_cast<S *>(out), mean, rstd, static_cast<const S *>(inp), static_cast<const S *>(w),
            static_cast<const S *>(b), N, C, (float)eps);
    });
}

int lt_cunn_layernorm_v8(lt_cunn *nn, int on) {
    const int was = nn->ln_v8;
    nn->ln_v8 = on != 0;
    return was;
}

int lt_cunn_gemm_tf32(lt_cunn *nn, int on) { return lt_cugemm_set_tf32(nn->gemm, on != 0) ? 1 : 0; }

size_t lt_cunn_colsum_scratch_floats(size_t N, int C) { return 2 * (size_t)blocks_for(N, CS_ROWS) * (size_t)C; }

int lt_cunn_layernorm_backward(lt_cunn *nn, lt_dtype dt, void *dinp, float *dw, float *db, const void *dout,
                               const void *inp, const void *w, const float *mean, const float *rstd, size_t N, int C,
                               float *scratch) {
    if (!N) return 0;
    return with_dtype(nn, "layernorm_backward", dt, [&](auto z) {
        typedef decltype(z) S;
        const S *g = static_cast<const S *>(dout), *x = static_cast<const S *>(inp);
        auto k = nn->ln_v8 && ln_v8(C, dinp, g, x, w) ? layernorm_backward_kernel<S, 8> : layernorm_backward_kernel<S, 1>;
        LT_LAUNCH(k, blocks_for(N, ROW_WARPS), 32 * ROW_WARPS, 0, nn->stream)(
            static_cast<S *>(dinp), g, x, static_cast<const S *>(w), mean, rstd, N, C);
        colsum<S, true>(nn, db, dw, scratch, g, x, mean, rstd, N, C);
    });
}

int lt_cunn_convert(lt_cunn *nn, lt_dtype to, void *dst, lt_dtype from, const void *src, size_t n) {
    if ((to == LT_DTYPE_F32) == (from == LT_DTYPE_F32) || !dtype_ok(to) || !dtype_ok(from))
        return fail(nn, "convert: from %s to %s: one side must be F32, the other BF16 or F16", lt_dtype_name(from),
                    lt_dtype_name(to));
    if (!n) return 0;
    if (from == LT_DTYPE_F32)
        return with_dtype(nn, "convert", to, [&](auto z) {
            typedef decltype(z) D;
            convert_launch(nn, static_cast<D *>(dst), static_cast<const float *>(src), n);
        });
    return with_dtype(nn, "convert", from, [&](auto z) {
        typedef decltype(z) S;
        convert_launch(nn, static_cast<float *>(dst), static_cast<const S *>(src), n);
    });
}

int lt_cunn_add_rounded(lt_cunn *nn, lt_dtype dt, float *dst, const float *src, size_t n) {
    if (!n) return 0;
    return with_dtype(nn, "add_rounded", dt, [&](auto z) {
        typedef decltype(z) S;
        LT_LAUNCH(add_rounded_kernel<S>, blocks_for(n, EW_THREADS), EW_THREADS, 0, nn->stream)(dst, src, n);
    });
}

int lt_cunn_loss_sum(lt_cunn *nn, double *sum, const float *losses, size_t N) {
    LT_LAUNCH(sum_kernel, 1, SUM_THREADS, 0, nn->stream)(sum, losses, N);
    return launched(nn, "loss_sum");
}

/* Row-major X[r, c] is column-major X^T, so out = inp @ w is out^T = w^T inp^T:
 * a column-major GEMM of the same buffers with m and n swapped. */
int lt_cunn_matmul_forward(lt_cunn *nn, lt_dtype dt, void *out, const void *inp, const void *w, const void *bias,
                           size_t N, int C, int OC) {
    if (!dtype_ok(dt)) return bad_dtype(nn, "matmul_forward", dt);
    if (!N) return 0;
    if (bias) {
        int rc = with_dtype(nn, "matmul_forward", dt, [&](auto z) {
            typedef decltype(z) S;
            const size_t n = N * (size_t)OC;
            const bool v8 = vec8_ok((size_t)OC, out, bias);
            auto k = v8 ? bias_fill_kernel<S, 8> : bias_fill_kernel<S, 1>;
            LT_LAUNCH(k, blocks_for(v8 ? n / 8 : n, EW_THREADS), EW_THREADS, 0, nn->stream)(
                static_cast<S *>(out), static_cast<const S *>(bias), N, OC);
        });
        if (rc) return rc;
    }
    return gemm(nn, "matmul_forward", false, false, (size_t)OC, N, (size_t)C, w, (size_t)OC, inp, (size_t)C, dt, out,
                (size_t)OC, dt, bias ? 1.0f : 0.0f);
}

int lt_cunn_matmul_backward(lt_cunn *nn, lt_dtype dt, void *dinp, float *dw, float *dbias, const void *dout,
                            const void *inp, const void *w, size_t N, int C, int OC, float *scratch) {
    return lt_cunn_matmul_backward_r(nn, dt, dinp, dw, dbias, dout, inp, w, N, C, OC, scratch, nullptr, 0);
}

int lt_cunn_matmul_backward_r(lt_cunn *nn, lt_dtype dt, void *dinp, float *dw, float *dbias, const void *dout,
                              const void *inp, const void *w, size_t N, int C, int OC, float *scratch, void *wscratch,
                              size_t wscratch_elems) {
    if (!dtype_ok(dt)) return bad_dtype(nn, "matmul_backward", dt);
    if (!N) return 0;
    const bool round16 = wscratch && dt != LT_DTYPE_F32;
    /* dinp^T [C, N] = w [C, OC] (column-major: w^T, transposed back) @ dout^T [OC, N] */
    if (dinp && gemm(nn, "matmul_backward (dinp)", true, false, (size_t)C, N, (size_t)OC, w, (size_t)OC, dout,
                     (size_t)OC, dt, dinp, (size_t)C, dt, 0.0f))
        return -1;
    /* dw^T [OC, C] += dout^T [OC, N] @ inp [N, C] (column-major: inp^T, transposed) */
    if (gemm_wgrad(nn, "matmul_backward (dw)", (size_t)OC, (size_t)C, N, dout, (size_t)OC, inp, (size_t)C, dt, dw,
                   wscratch, wscratch_elems))
        return -1;
    if (!dbias) return 0;
    return with_dtype(nn, "matmul_backward (dbias)", dt, [&](auto z) {
        typedef decltype(z) S;
        colsum<S, false>(nn, dbias, nullptr, scratch, static_cast<const S *>(dout), nullptr, nullptr, nullptr, N, OC,
                         round16 ? dt : LT_DTYPE_F32);
    });
}

/* Where the lm head's GEMMs split the vocabulary: the rows up to the last multiple of 64, then the rest (V when
 * there is nothing to split). A GEMM dimension along a contiguous axis that is not a multiple of the vector width
 * (V = 50257 is odd) sends cuBLAS to its align1 kernels: on an H200 (bench/gpu-logs/2026-11-28-h200-profile-
 * ce969f5/train_b.txt) the bf16 lm head forward and its dinp product took 3.3 ms each that way, about 96 TFLOP/s,
 * while the step's other GEMMs ran on the aligned sm90 kernels. fp32 is split the same way (its lm head kernels
 * could not be told apart in that profile; the split costs one small GEMM either way). */
static size_t vocab_head(int V) {
    const size_t head = (size_t)V / 64 * 64;
    return head == 0 ? (size_t)V : head;
}

/* p advanced by n values of dt */
static const void *at(const void *p, size_t n, lt_dtype dt) {
    return static_cast<const char *>(p) + n * lt_dtype_size(dt);
}
static void *at_mut(void *p, size_t n, lt_dtype dt) { return static_cast<char *>(p) + n * lt_dtype_size(dt); }

int lt_cunn_lmhead_forward(lt_cunn *nn, lt_dtype dt, void *logits, const void *inp, const void *wte, size_t N,
                           int C, int V, int ldv) {
    if (!dtype_ok(dt)) return bad_dtype(nn, "lmhead_forward", dt);
    if (ldv < V) return fail(nn, "lmhead_forward: row stride %d is less than V = %d", ldv, V);
    /* logits^T [V, N] = wte [V, C] (column-major: wte^T, transposed back) @ inp^T [C, N]; each logit is one dot
     * product of one GEMM, so splitting the rows changes no sum */
    const size_t head = vocab_head(V), tail = (size_t)V - head;
    if (gemm(nn, "lmhead_forward", true, false, head, N, (size_t)C, wte, (size_t)C, inp, (size_t)C, dt, logits,
             (size_t)ldv, dt, 0.0f))
        return -1;
    if (!tail) return 0;
    return gemm(nn, "lmhead_forward (the last rows)", true, false, tail, N, (size_t)C, at(wte, head * (size_t)C, dt),
                (size_t)C, inp, (size_t)C, dt, at_mut(logits, head, dt), (size_t)ldv, dt, 0.0f);
}

int lt_cunn_lmhead_backward(lt_cunn *nn, lt_dtype dt, void *dinp, float *dwte, const void *dlogits,
                            const void *inp, const void *wte, size_t N, int C, int V, int ldv) {
    return lt_cunn_lmhead_backward_r(nn, dt, dinp, dwte, dlogits, inp, wte, N, C, V, ldv, nullptr, 0, nullptr, 0);
}

int lt_cunn_lmhead_backward_r(lt_cunn *nn, lt_dtype dt, void *dinp, float *dwte, const void *dlogits,
                              const void *inp, const void *wte, size_t N, int C, int V, int ldv, void *wscratch,
                              size_t wscratch_elems, float *fscratch, size_t fscratch_floats) {
    if (!dtype_ok(dt)) return bad_dtype(nn, "lmhead_backward", dt);
    if (ldv < V) return fail(nn, "lmhead_backward: row stride %d is less than V = %d", ldv, V);
    /* dinp^T [C, N] = wte^T [C, V] @ dlogits^T [V, N]: V is the sum's length, so a split adds the tail's product
     * onto the head's (beta 1) in fp32: in dinp itself for fp32, else in fp32 scratch, from which dinp is rounded
     * once (without scratch, one GEMM) */
    const size_t head = vocab_head(V), tail = (size_t)V - head, NC = N * (size_t)C;
    float *sum = dt == LT_DTYPE_F32 ? static_cast<float *>(dinp) : fscratch_floats >= NC ? fscratch : nullptr;
    if (tail && sum) {
        if (gemm(nn, "lmhead_backward (dinp)", false, false, (size_t)C, N, head, wte, (size_t)C, dlogits, (size_t)ldv,
                 dt, sum, (size_t)C, LT_DTYPE_F32, 0.0f) ||
            gemm(nn, "lmhead_backward (dinp, the last rows)", false, false, (size_t)C, N, tail,
                 at(wte, head * (size_t)C, dt), (size_t)C, at(dlogits, head, dt), (size_t)ldv, dt, sum, (size_t)C,
                 LT_DTYPE_F32, 1.0f))
            return -1;
        if (dt != LT_DTYPE_F32) {
            int rc = lt_cunn_convert(nn, dt, dinp, LT_DTYPE_F32, sum, NC);
            if (rc) return rc;
        }
    } else if (gemm(nn, "lmhead_backward (dinp)", false, false, (size_t)C, N, (size_t)V, wte, (size_t)C, dlogits,
                    (size_t)ldv, dt, dinp, (size_t)C, dt, 0.0f)) {
        return -1;
    }
    /* dwte^T [C, V] += inp^T [C, N] @ dlogits [N, V] (column-major: dlogits^T, transposed) */
    return gemm_wgrad(nn, "lmhead_backward (dwte)", (size_t)C, (size_t)V, N, inp, (size_t)C, dlogits, (size_t)ldv, dt,
                      dwte, wscratch, wscratch_elems);
}

int lt_cunn_gelu_forward(lt_cunn *nn, lt_dtype dt, void *out, const void *inp, size_t n) {
    if (!n) return 0;
    return with_dtype(nn, "gelu_forward", dt, [&](auto z) {
        typedef decltype(z) S;
        const bool v8 = vec8_ok(n, out, inp);
        auto k = v8 ? gelu_forward_kernel<S, 8> : gelu_forward_kernel<S, 1>;
        LT_LAUNCH(k, blocks_for(v8 ? n / 8 : n, EW_THREADS), EW_THREADS, 0, nn->stream)(
            static_cast<S *>(out), static_cast<const S *>(inp), n);
    });
}

int lt_cunn_gelu_backward(lt_cunn *nn, lt_dtype dt, void *dinout, const void *inp, size_t n) {
    if (!n) return 0;
    return with_dtype(nn, "gelu_backward", dt, [&](auto z) {
        typedef decltype(z) S;
        const bool v8 = vec8_ok(n, dinout, inp);
        auto k = v8 ? gelu_backward_kernel<S, 8> : gelu_backward_kernel<S, 1>;
        LT_LAUNCH(k, blocks_for(v8 ? n / 8 : n, EW_THREADS), EW_THREADS, 0, nn->stream)(
            static_cast<S *>(dinout), static_cast<const S *>(inp), n);
    });
}

int lt_cunn_residual_forward(lt_cunn *nn, lt_dtype dt, void *out, const void *a, const void *b, size_t n) {
    if (!n) return 0;
    return with_dtype(nn, "residual_forward", dt, [&](auto z) {
        typedef decltype(z) S;
        const bool v8 = vec8_ok(n, out, a, b);
        auto k = v8 ? residual_forward_kernel<S, 8> : residual_forward_kernel<S, 1>;
        LT_LAUNCH(k, blocks_for(v8 ? n / 8 : n, EW_THREADS), EW_THREADS, 0, nn->stream)(
            static_cast<S *>(out), static_cast<const S *>(a), static_cast<const S *>(b), n);
    });
}

int lt_cunn_dropout(lt_cunn *nn, lt_dtype dt, void *dst, const void *src, size_t n, const lt_dropout *d) {
    if (!n || !d || !d->threshold) return 0;
    return with_dtype(nn, "dropout", dt, [&](auto z) {
        typedef decltype(z) S;
        LT_LAUNCH(dropout_kernel<S>, blocks_for((n + 3) / 4, EW_THREADS), EW_THREADS, 0, nn->stream)(
            static_cast<S *>(dst), static_cast<const S *>(src), n, *d);
    });
}

int lt_cunn_crossentropy_forward(lt_cunn *nn, lt_dtype dt, float *losses, float *lse, const void *logits,
                                 const int32_t *targets, size_t N, int V, int ldv, float eps, double *loss_sum) {
    if (ldv < V) return fail(nn, "crossentropy_forward: row stride %d is less than V = %d", ldv, V);
    if (!N) return 0;
    return with_dtype(nn, "crossentropy_forward", dt, [&](auto z) {
        typedef decltype(z) S;
        auto k = classifier_w(ldv, logits) ? classifier_kernel<S, false, 8> : classifier_kernel<S, false, 1>;
        LT_LAUNCH(k, (unsigned)N, CE_THREADS, 0, nn->stream)(
            nullptr, losses, lse, static_cast<const S *>(logits), targets, V, ldv, 0.0f, eps);
        if (loss_sum) LT_LAUNCH(sum_kernel, 1, SUM_THREADS, 0, nn->stream)(loss_sum, losses, N);
    });
}

int lt_cunn_crossentropy_backward(lt_cunn *nn, lt_dtype dt, void *dlogits, const void *logits, const float *lse,
                                  const int32_t *targets, size_t N, int V, int ldv, float scale, float eps) {
    if (ldv < V) return fail(nn, "crossentropy_backward: row stride %d is less than V = %d", ldv, V);
    if (!N) return 0;
    return with_dtype(nn, "crossentropy_backward", dt, [&](auto z) {
        typedef decltype(z) S;
        LT_LAUNCH(crossentropy_backward_kernel<S>, (unsigned)N, CE_THREADS, 0, nn->stream)(
            static_cast<S *>(dlogits), static_cast<const S *>(logits), lse, targets, V, ldv, scale, eps);
    });
}

int lt_cunn_top1_hits(lt_cunn *nn, lt_dtype dt, unsigned long long *hits, const void *logits,
                      const int32_t *targets, size_t N, int V, int ldv) {
    if (ldv < V) return fail(nn, "top1_hits: row stride %d is less than V = %d", ldv, V);
    if (!N) return 0;
    return with_dtype(nn, "top1_hits", dt, [&](auto z) {
        typedef decltype(z) S;
        auto k = classifier_w(ldv, logits) ? top1_kernel<S, 8> : top1_kernel<S, 1>;
        LT_LAUNCH(k, (unsigned)N, CE_THREADS, 0, nn->stream)(hits, static_cast<const S *>(logits), targets, V, ldv);
    });
}

int lt_cunn_classifier(lt_cunn *nn, lt_dtype dt, void *logits, float *losses, float *lse, const int32_t *targets,
                       size_t N, int V, int ldv, float scale, float eps, double *loss_sum) {
    if (ldv < V) return fail(nn, "classifier: row stride %d is less than V = %d", ldv, V);
    if (!N) return 0;
    return with_dtype(nn, "classifier", dt, [&](auto z) {
        typedef decltype(z) S;
        auto k = classifier_w(ldv, logits) ? classifier_kernel<S, true, 8> : classifier_kernel<S, true, 1>;
        LT_LAUNCH(k, (unsigned)N, CE_THREADS, 0, nn->stream)(
            static_cast<S *>(logits), losses, lse, static_cast<const S *>(logits), targets, V, ldv, scale, eps);
        if (loss_sum) LT_LAUNCH(sum_kernel, 1, SUM_THREADS, 0, nn->stream)(loss_sum, losses, N);
    });
}

} /* extern "C" */
