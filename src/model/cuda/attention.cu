/* Causal multi-head self-attention on the GPU (gpt2_layers_cuda.h:
 * lt_cunn_attention_forward / _backward), flash-style: the T x T matrix of
 * probabilities is never stored. The forward keeps one float per query row
 * (its log-sum-exp); the backward recomputes the probabilities tile by tile
 * from q, k and that log-sum-exp.
 *
 * Arithmetic is fp32 FMA on the CUDA cores with shared-memory tiling. These
 * kernels serve fp32 storage with head sizes above 64 (or any, after
 * lt_cunn_attention_tf32(nn, 0)), 16-bit head sizes above 64 when
 * lt_cunn_attention_tc128 turned the tensor cores off there, and everything
 * when lt_cunn_attention_simt asks; the rest goes to the tensor-core kernels
 * of attention_tc.cu (the entry points below choose).
 * Head sizes hs <= 128 are served by three instantiations of the
 * kernels, DH = 32, 64 or 128 dims (the head zero-padded to DH in shared
 * memory and registers; zeros add nothing to the dot products and the padded
 * output dims are not written).
 *
 * Work layout, the same in the three kernels:
 *   - a CTA owns 64 rows (query rows in the forward and the dq pass, key rows
 *     in the dk / dv pass) of one (batch, head); each row is held by
 *     SPLIT = DH / 32 consecutive threads of a warp, each thread owning 32 of
 *     the row's dims in registers: dims 4 (p + SPLIT c) .. +3 for its part p
 *     and c = 0..7 (interleaved 16-byte chunks, so that the SPLIT threads of
 *     a row read different shared-memory banks); the row's dot products are
 *     the parts' partial sums added by xor shuffles (every part ends with the
 *     same bits: each step adds the same two values);
 *   - the other operand streams through shared memory in tiles of 32 rows,
 *     staged as fp32 by all threads with coalesced loads; every thread reads a
 *     staged row at the same dims as the other rows' threads (a broadcast),
 *     16 bytes at a time;
 *   - 64 x SPLIT threads: 64 (hs <= 32), 128 (hs <= 64), 256 (hs <= 128);
 *     static shared memory 2 x 32 x DH floats (8, 16 or 32 KB) plus, in the
 *     dk / dv pass, 2 x 32 floats.
 *
 * Forward: per key tile up to the CTA's last row, the 32 scores s = q.k /
 * sqrt(hs) of each row (masked to -inf above the diagonal and past T), the
 * online softmax (running max m and sum l; the output accumulator and l
 * rescaled by exp(m_old - m_new)), then o += p v. At the end out = o / l and
 * lse = m + log(l).
 *
 * Backward, without atomics and in a fixed order (run twice, same bits):
 *   1. (in the dq pass, per query row i) D_i = dout_i . out_i, the softmax
 *      correction sum_j P_ij dP_ij, stored for pass 2;
 *   2. dq pass, per (b, h, query tile), key tiles up to the diagonal in
 *      increasing order: P_ij = exp(s_ij - lse_i), dP_ij = dout_i . v_j,
 *      dS_ij = P_ij (dP_ij - D_i) / sqrt(hs), dq_i = sum_j dS_ij k_j;
 *   3. dk / dv pass, per (b, h, key tile), query tiles from the diagonal on
 *      in increasing order: dv_j = sum_i P_ij dout_i, dk_j = sum_i dS_ij q_i.
 * Kernel launches on one stream run in order, so pass 3 sees pass 1's D.
 *
 * Dropout (the kernels instantiated with DROP; the others are unchanged): the forward's l sums the probabilities
 * before dropout and o takes them after (p z, z = 0 or 1 / (1 - p) from the Philox bits of attention.cuh's
 * drop_bits16, a row's 32 keys per tile by each of its threads); the dq pass uses dP z for dP; the dk / dv pass
 * dv += P z dout and dk with dP z, its CTA drawing the tile's bits once into shared memory (a query's keys are
 * consecutive elements of the site, the CTA's keys are not); D = dout . out holds as it is (out is after dropout).
 *
 * CTAs are numbered heaviest first (the query tiles near T in the forward and
 * the dq pass, the key tiles near 0 in the dk / dv pass), so that the long
 * causal rows start early and the short ones fill the tail of the grid. */
#include <cuda_runtime.h>
#include <math.h>

#include "kernels/cuda/cu_internal.cuh"
#include "model/cuda/attention.cuh"
#include "model/cuda/cu_nn.cuh"
#include "model/cuda/gpt2_layers_cuda.h"

namespace {

using namespace ltnn;

constexpr int ROWS = 64;  /* rows a CTA owns */
constexpr int TILE = 32;  /* rows of a streamed tile */
constexpr int DT = 32;    /* dims per thread */
constexpr int CH = DT / 4; /* 16-byte chunks per thread */
constexpr int MAX_HS = 128;

/* The offset of chunk c of part p in a row of DH floats. */
template <int SPLIT>
__device__ __forceinline__ int chunk_at(int p, int c) {
    return 4 * (p + SPLIT * c);
}

__device__ __forceinline__ float4 lds4(const float *p) { return *reinterpret_cast<const float4 *>(p); }

/* dst[r][d] (rows x DH floats) = src row r, dim d as fp32 for r < valid and d < hs, else 0. Consecutive threads
 * take consecutive dims (coalesced). src points at dim 0 of row 0; rows are `stride` elements apart. */
template <typename S, int DH>
__device__ __forceinline__ void stage(float *dst, const S *src, size_t stride, int rows, int valid, int hs, int tid,
                                      int nt) {
    for (int i = tid; i < rows * DH; i += nt) {
        const int r = i / DH, d = i % DH;
        dst[i] = r < valid && d < hs ? ld(src, (size_t)r * stride + (size_t)d) : 0.0f;
    }
}

/* This thread's 32 dims of staged row r. */
template <int DH>
__device__ __forceinline__ void take(float (&x)[DT], const float *tile, int r, int part) {
    constexpr int SPLIT = DH / DT;
#pragma unroll
    for (int c = 0; c < CH; c++) {
        const float4 v = lds4(tile + r * DH + chunk_at<SPLIT>(part, c));
        x[4 * c] = v.x, x[4 * c + 1] = v.y, x[4 * c + 2] = v.z, x[4 * c + 3] = v.w;
    }
}

/* This thread's part of x . (staged row r): four independent FMA chains (one per lane of the 16-byte chunks, for
 * instruction-level parallelism), added pairwise at the end. */
template <int DH>
__device__ __forceinline__ float dot_part(const float (&x)[DT], const float *tile, int r, int part) {
    constexpr int SPLIT = DH / DT;
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma unroll
    for (int c = 0; c < CH; c++) {
        const float4 v = lds4(tile + r * DH + chunk_at<SPLIT>(part, c));
        s0 = fmaf(x[4 * c], v.x, s0);
        s1 = fmaf(x[4 * c + 1], v.y, s1);
        s2 = fmaf(x[4 * c + 2], v.z, s2);
        s3 = fmaf(x[4 * c + 3], v.w, s3);
    }
    return (s0 + s1) + (s2 + s3);
}

/* acc += a * (staged row r), this thread's dims */
template <int DH>
__device__ __forceinline__ void axpy_part(float (&acc)[DT], float a, const float *tile, int r, int part) {
    constexpr int SPLIT = DH / DT;
#pragma unroll
    for (int c = 0; c < CH; c++) {
        const float4 v = lds4(tile + r * DH + chunk_at<SPLIT>(part, c));
        acc[4 * c] = fmaf(a, v.x, acc[4 * c]);
        acc[4 * c + 1] = fmaf(a, v.y, acc[4 * c + 1]);
        acc[4 * c + 2] = fmaf(a, v.z, acc[4 * c + 2]);
        acc[4 * c + 3] = fmaf(a, v.w, acc[4 * c + 3]);
    }
}

/* The sum of the row's SPLIT partial sums, in every part (same bits in each). */
template <int SPLIT>
__device__ __forceinline__ float row_sum(float v) {
    if constexpr (SPLIT >= 2) v += __shfl_xor_sync(0xffffffffu, v, 1);
    if constexpr (SPLIT >= 4) v += __shfl_xor_sync(0xffffffffu, v, 2);
    return v;
}

/* Writes this thread's dims of x / div (only those < hs) to row dst. */
template <typename S, int DH>
__device__ __forceinline__ void store_part(S *dst, const float (&x)[DT], float div, int hs, int part) {
    constexpr int SPLIT = DH / DT;
#pragma unroll
    for (int c = 0; c < CH; c++) {
        const int d0 = chunk_at<SPLIT>(part, c);
#pragma unroll
        for (int e = 0; e < 4; e++)
            if (d0 + e < hs) st(dst, (size_t)(d0 + e), x[4 * c + e] / div);
    }
}

/* ---- forward ---- */

template <typename S, int DH, bool DROP>
__global__ void __launch_bounds__(ROWS *(DH / DT)) attn_fwd_kernel(S *out, float *lse, const S *qkv, int B, int T,
                                                                   int C, int NH, float inv, lt_dropout dr) {
    constexpr int SPLIT = DH / DT, NT = ROWS * SPLIT;
    /* the K tile, then the V tile (the Q tile at the start); float4 for the 16-byte alignment of lds4 */
    __shared__ float4 kv4[2 * TILE * DH / 4];
    float *kv = reinterpret_cast<float *>(kv4), *ks = kv, *vs = kv + TILE * DH;
    const int tid = threadIdx.x, part = tid % SPLIT, rl = tid / SPLIT;
    const head_tile w = head_tile_of(B, T, C, NH, ROWS, true);
    const size_t b = w.b, C3 = w.C3;
    const int hs = w.hs, h = w.h, q0 = w.row0, t = q0 + rl;
    const S *base = qkv + b * (size_t)T * C3 + (size_t)h * hs; /* q of position 0 of this (b, h) */
    const score_scale sc{sqrtf((float)hs), inv};
    /* the last row of this thread's warp: key tiles past it are skipped by the whole warp (the shuffles need all
     * 32 lanes) */
    const int warp_last = q0 + ((tid / 32) * 32 + 31) / SPLIT;

    float q[DT], o[DT];
    stage<S, DH>(kv, base + (size_t)q0 * C3, C3, ROWS, T - q0, hs, tid, NT); /* 64 rows: both halves */
    __syncthreads();
    take<DH>(q, kv, rl, part);
#pragma unroll
    for (int i = 0; i < DT; i++) o[i] = 0.0f;
    float m = -INFINITY, l = 0.0f;

    const int kend = T < q0 + ROWS ? T : q0 + ROWS; /* keys 0 .. kend-1 */
    for (int k0 = 0; k0 < kend; k0 += TILE) {
        __syncthreads(); /* the previous tile (or q) has been read */
        stage<S, DH>(ks, base + (size_t)k0 * C3 + C, C3, TILE, T - k0, hs, tid, NT);
        stage<S, DH>(vs, base + (size_t)k0 * C3 + 2 * (size_t)C, C3, TILE, T - k0, hs, tid, NT);
        __syncthreads();
        if (k0 > warp_last) continue;
        float s[TILE];
#pragma unroll
        for (int j = 0; j < TILE; j++) s[j] = dot_part<DH>(q, ks, j, part);
        float mt = -INFINITY;
#pragma unroll
        for (int j = 0; j < TILE; j++) {
            const int key = k0 + j;
            s[j] = row_sum<SPLIT>(s[j]);
            s[j] = key <= t && key < T ? sc.div(s[j]) : -INFINITY;
            mt = fmaxf(mt, s[j]);
        }
        /* key 0 is in the first tile and every row sees it, so mn is finite from the first tile on */
        const float mn = fmaxf(m, mt), alpha = expf(m - mn);
        l *= alpha;
#pragma unroll
        for (int i = 0; i < DT; i++) o[i] *= alpha;
        uint32_t keep = 0; /* dropout: the row's keys k0 .. k0 + 31 */
        if constexpr (DROP) {
            const uint64_t at = ((uint64_t)w.bh * (uint64_t)T + (uint64_t)t) * (uint64_t)T + (uint64_t)k0;
            keep = drop_bits16(dr, at) | drop_bits16(dr, at + 16) << 16;
        }
#pragma unroll
        for (int j = 0; j < TILE; j++) {
            const float p = expf(s[j] - mn); /* 0 where masked */
            l += p;                          /* the softmax's sum is before dropout */
            axpy_part<DH>(o, DROP ? p * drop_factor(keep, j, dr.scale) : p, vs, j, part);
        }
        m = mn;
    }
    if (t < T) {
        store_part<S, DH>(out + (b * (size_t)T + (size_t)t) * (size_t)C + (size_t)h * hs, o, l, hs, part);
        if (part == 0) lse[w.bh * (size_t)T + (size_t)t] = m + logf(l);
    }
}

/* ---- backward, passes 1 and 2: D and dq per query tile ---- */

template <typename S, int DH, bool DROP>
__global__ void __launch_bounds__(ROWS *(DH / DT))
    attn_bwd_dq_kernel(S *dqkv, float *Dsum, const S *dout, const S *qkv, const S *out, const float *lse, int B,
                       int T, int C, int NH, float inv, lt_dropout dr) {
    constexpr int SPLIT = DH / DT, NT = ROWS * SPLIT;
    __shared__ float4 kv4[2 * TILE * DH / 4]; /* the K and V tiles (q, dout and out at the start) */
    float *kv = reinterpret_cast<float *>(kv4), *ks = kv, *vs = kv + TILE * DH;
    const int tid = threadIdx.x, part = tid % SPLIT, rl = tid / SPLIT;
    const head_tile w = head_tile_of(B, T, C, NH, ROWS, true);
    const size_t b = w.b, C3 = w.C3;
    const int hs = w.hs, h = w.h, q0 = w.row0, t = q0 + rl;
    const S *base = qkv + b * (size_t)T * C3 + (size_t)h * hs;
    const size_t orow = (b * (size_t)T + (size_t)q0) * (size_t)C + (size_t)h * hs; /* dout / out of row q0 */
    const score_scale sc{sqrtf((float)hs), inv};
    const int warp_last = q0 + ((tid / 32) * 32 + 31) / SPLIT;

    /* q and dout of this row into registers, D = dout . out */
    float q[DT], g[DT], dq[DT];
    stage<S, DH>(kv, base + (size_t)q0 * C3, C3, ROWS, T - q0, hs, tid, NT);
    __syncthreads();
    take<DH>(q, kv, rl, part);
    __syncthreads();
    stage<S, DH>(kv, dout + orow, (size_t)C, ROWS, T - q0, hs, tid, NT);
    __syncthreads();
    take<DH>(g, kv, rl, part);
    __syncthreads();
    stage<S, DH>(kv, out + orow, (size_t)C, ROWS, T - q0, hs, tid, NT);
    __syncthreads();
    const float Di = row_sum<SPLIT>(dot_part<DH>(g, kv, rl, part));
    const float li = t < T ? lse[w.bh * (size_t)T + (size_t)t] : 0.0f;
    if (t < T && part == 0) Dsum[w.bh * (size_t)T + (size_t)t] = Di;
#pragma unroll
    for (int i = 0; i < DT; i++) dq[i] = 0.0f;

    const int kend = T < q0 + ROWS ? T : q0 + ROWS;
    for (int k0 = 0; k0 < kend; k0 += TILE) {
        __syncthreads();
        stage<S, DH>(ks, base + (size_t)k0 * C3 + C, C3, TILE, T - k0, hs, tid, NT);
        stage<S, DH>(vs, base + (size_t)k0 * C3 + 2 * (size_t)C, C3, TILE, T - k0, hs, tid, NT);
        __syncthreads();
        if (k0 > warp_last) continue;
        uint32_t keep = 0;
        if constexpr (DROP) {
            const uint64_t at = ((uint64_t)w.bh * (uint64_t)T + (uint64_t)t) * (uint64_t)T + (uint64_t)k0;
            keep = drop_bits16(dr, at) | drop_bits16(dr, at + 16) << 16;
        }
#pragma unroll 2
        for (int j = 0; j < TILE; j++) {
            const float s = row_sum<SPLIT>(dot_part<DH>(q, ks, j, part));
            float dp = row_sum<SPLIT>(dot_part<DH>(g, vs, j, part));
            if constexpr (DROP) dp *= drop_factor(keep, j, dr.scale); /* d P through the dropout */
            const int key = k0 + j;
            const float p = key <= t && key < T ? expf(sc.div(s) - li) : 0.0f;
            axpy_part<DH>(dq, sc.div(p * (dp - Di)), ks, j, part);
        }
    }
    if (t < T) store_part<S, DH>(dqkv + (b * (size_t)T + (size_t)t) * C3 + (size_t)h * hs, dq, 1.0f, hs, part);
}

/* ---- backward, pass 3: dk and dv per key tile ---- */

template <typename S, int DH, bool DROP>
__global__ void __launch_bounds__(ROWS *(DH / DT))
    attn_bwd_dkv_kernel(S *dqkv, const float *Dsum, const S *dout, const S *qkv, const float *lse, int B, int T,
                        int C, int NH, float inv, lt_dropout dr) {
    constexpr int SPLIT = DH / DT, NT = ROWS * SPLIT;
    __shared__ float4 qg4[2 * TILE * DH / 4]; /* the Q tile, then the dout tile (k and v at the start) */
    __shared__ float ls[TILE], ds[TILE];      /* lse and D of the tile's queries */
    /* dropout: keep bits of (query i0 + i, keys j0 + 16 q ..) in keep16[4 i + q]: a query's keys are consecutive
       elements of the site, so the CTA draws them together, a row of 16 per thread */
    __shared__ uint16_t keep16[DROP ? 4 * TILE : 1];
    float *qg = reinterpret_cast<float *>(qg4), *qs = qg, *gs = qg + TILE * DH;
    const int tid = threadIdx.x, part = tid % SPLIT, rl = tid / SPLIT;
    const head_tile w = head_tile_of(B, T, C, NH, ROWS, false); /* key tile 0 has the most queries */
    const size_t b = w.b, C3 = w.C3;
    const int hs = w.hs, h = w.h, j0 = w.row0, j = j0 + rl;
    const S *base = qkv + b * (size_t)T * C3 + (size_t)h * hs;
    const S *gbase = dout + b * (size_t)T * (size_t)C + (size_t)h * hs;
    const score_scale sc{sqrtf((float)hs), inv};
    const int warp_first = j0 + ((tid / 32) * 32) / SPLIT; /* the first key of this thread's warp */

    float k[DT], v[DT], dk[DT], dv[DT];
    stage<S, DH>(qg, base + (size_t)j0 * C3 + C, C3, ROWS, T - j0, hs, tid, NT);
    __syncthreads();
    take<DH>(k, qg, rl, part);
    __syncthreads();
    stage<S, DH>(qg, base + (size_t)j0 * C3 + 2 * (size_t)C, C3, ROWS, T - j0, hs, tid, NT);
    __syncthreads();
    take<DH>(v, qg, rl, part);
#pragma unroll
    for (int i = 0; i < DT; i++) dk[i] = 0.0f, dv[i] = 0.0f;

    for (int i0 = j0 / TILE * TILE; i0 < T; i0 += TILE) {
        __syncthreads();
        stage<S, DH>(qs, base + (size_t)i0 * C3, C3, TILE, T - i0, hs, tid, NT);
        stage<S, DH>(gs, gbase + (size_t)i0 * (size_t)C, (size_t)C, TILE, T - i0, hs, tid, NT);
        if (tid < TILE) {
            const bool in = i0 + tid < T;
            ls[tid] = in ? lse[w.bh * (size_t)T + (size_t)(i0 + tid)] : 0.0f;
            ds[tid] = in ? Dsum[w.bh * (size_t)T + (size_t)(i0 + tid)] : 0.0f;
        }
        if constexpr (DROP)
            for (int u = tid; u < 4 * TILE; u += NT)
                keep16[u] = (uint16_t)drop_bits16(
                    dr, ((uint64_t)w.bh * (uint64_t)T + (uint64_t)(i0 + u / 4)) * (uint64_t)T + (uint64_t)j0 +
                            16u * (uint64_t)(u % 4));
        __syncthreads();
        if (i0 + TILE - 1 < warp_first) continue; /* every query of the tile is before this warp's keys */
#pragma unroll 2
        for (int i = 0; i < TILE; i++) {
            const float s = row_sum<SPLIT>(dot_part<DH>(k, qs, i, part));
            float dp = row_sum<SPLIT>(dot_part<DH>(v, gs, i, part));
            const int qi = i0 + i;
            float p = qi >= j && qi < T ? expf(sc.div(s) - ls[i]) : 0.0f, pz = p;
            if constexpr (DROP) {
                const float z = drop_factor(keep16[4 * i + rl / 16], rl % 16, dr.scale);
                dp *= z;
                pz = p * z;
            }
            axpy_part<DH>(dv, pz, gs, i, part);
            axpy_part<DH>(dk, sc.div(p * (dp - ds[i])), qs, i, part);
        }
    }
    if (j < T) {
        S *row = dqkv + (b * (size_t)T + (size_t)j) * C3 + (size_t)h * hs;
        store_part<S, DH>(row + C, dk, 1.0f, hs, part);
        store_part<S, DH>(row + 2 * (size_t)C, dv, 1.0f, hs, part);
    }
}

/* ---- host side ---- */

/* Common checks; 1 when there is nothing to do, -1 on a bad shape. */
int check_shape(lt_cunn *nn, const char *what, int B, int T, int C, int NH) {
    if (B < 0 || T < 0 || C < 0) return fail(nn, "%s: negative size (B %d, T %d, C %d)", what, B, T, C);
    if (NH <= 0 || C % NH) return fail(nn, "%s: C = %d is not a multiple of NH = %d", what, C, NH);
    const int hs = C / NH;
    if (hs > MAX_HS)
        return fail(nn, "%s: head size %d (C %d / NH %d) exceeds the attention kernels' %d", what, hs, C, NH,
                    MAX_HS);
    const size_t ctas = (size_t)B * (size_t)NH * (size_t)((T + ROWS - 1) / ROWS);
    if (ctas > 0x7fffffffu) return fail(nn, "%s: B %d x NH %d x T %d is too large", what, B, NH, T);
    return B == 0 || T == 0 || C == 0 ? 1 : 0;
}

/* drop: NULL (the kernels without dropout) or a site with a non-zero threshold */
template <typename S, int DH>
void launch_forward(lt_cunn *nn, S *out, float *lse, const S *qkv, int B, int T, int C, int NH,
                    const lt_dropout *drop) {
    const unsigned grid = (unsigned)((size_t)B * NH * (size_t)((T + ROWS - 1) / ROWS));
    auto k = drop ? attn_fwd_kernel<S, DH, true> : attn_fwd_kernel<S, DH, false>;
    const lt_dropout dr = drop ? *drop : lt_dropout{};
    LT_LAUNCH(k, grid, ROWS * (DH / DT), 0, nn->stream)(out, lse, qkv, B, T, C, NH, exact_inv_scale(C / NH), dr);
}

template <typename S, int DH>
void launch_backward(lt_cunn *nn, S *dqkv, float *Dsum, const S *dout, const S *qkv, const S *out, const float *lse,
                     int B, int T, int C, int NH, const lt_dropout *drop) {
    const unsigned grid = (unsigned)((size_t)B * NH * (size_t)((T + ROWS - 1) / ROWS));
    auto kq = drop ? attn_bwd_dq_kernel<S, DH, true> : attn_bwd_dq_kernel<S, DH, false>;
    auto kkv = drop ? attn_bwd_dkv_kernel<S, DH, true> : attn_bwd_dkv_kernel<S, DH, false>;
    const lt_dropout dr = drop ? *drop : lt_dropout{};
    /* the dq pass writes D, which the dk / dv pass reads: the stream orders them */
    const float inv = exact_inv_scale(C / NH);
    LT_LAUNCH(kq, grid, ROWS * (DH / DT), 0, nn->stream)(dqkv, Dsum, dout, qkv, out, lse, B, T, C, NH, inv, dr);
    LT_LAUNCH(kkv, grid, ROWS * (DH / DT), 0, nn->stream)(dqkv, Dsum, dout, qkv, lse, B, T, C, NH, inv, dr);
}

} // namespace

float ltnn::exact_inv_scale(int hs) {
    const float sc = sqrtf((float)hs);
    int e;
    return frexpf(sc, &e) == 0.5f ? 1.0f / sc : 0.0f;
}

extern "C" {

int lt_cunn_attention_forward(lt_cunn *nn, lt_dtype dt, void *out, float *lse, const void *qkv, int B, int T, int C,
                              int NH, const lt_dropout *drop) {
    int rc = check_shape(nn, "attention_forward", B, T, C, NH);
    if (rc) return rc < 0 ? rc : 0;
    if (drop && !drop->threshold) drop = nullptr;
    if (attn_tc_serves(nn, dt, C / NH)) {
        attn_tc_forward(nn, dt, out, lse, qkv, B, T, C, NH, drop);
        return launched(nn, "attention_forward");
    }
    const int dh = head_dims(C / NH);
    return with_dtype(nn, "attention_forward", dt, [&](auto z) {
        typedef decltype(z) S;
        S *o = static_cast<S *>(out);
        const S *x = static_cast<const S *>(qkv);
        if (dh == 32) launch_forward<S, 32>(nn, o, lse, x, B, T, C, NH, drop);
        else if (dh == 64) launch_forward<S, 64>(nn, o, lse, x, B, T, C, NH, drop);
        else launch_forward<S, 128>(nn, o, lse, x, B, T, C, NH, drop);
    });
}

int lt_cunn_attention_backward(lt_cunn *nn, lt_dtype dt, void *dqkv, float *scratch, const void *dout,
                               const void *qkv, const void *out, const float *lse, int B, int T, int C, int NH,
                               const lt_dropout *drop) {
    int rc = check_shape(nn, "attention_backward", B, T, C, NH);
    if (rc) return rc < 0 ? rc : 0;
    if (drop && !drop->threshold) drop = nullptr;
    if (attn_tc_serves(nn, dt, C / NH)) {
        attn_tc_backward(nn, dt, dqkv, scratch, dout, qkv, out, lse, B, T, C, NH, drop);
        return launched(nn, "attention_backward");
    }
    const int dh = head_dims(C / NH);
    return with_dtype(nn, "attention_backward", dt, [&](auto z) {
        typedef decltype(z) S;
        S *d = static_cast<S *>(dqkv);
        const S *g = static_cast<const S *>(dout), *x = static_cast<const S *>(qkv), *o = static_cast<const S *>(out);
        if (dh == 32) launch_backward<S, 32>(nn, d, scratch, g, x, o, lse, B, T, C, NH, drop);
        else if (dh == 64) launch_backward<S, 64>(nn, d, scratch, g, x, o, lse, B, T, C, NH, drop);
        else launch_backward<S, 128>(nn, d, scratch, g, x, o, lse, B, T, C, NH, drop);
    });
}

int lt_cunn_attention_simt(lt_cunn *nn, int on) {
    const int was = nn->attn_simt;
    nn->attn_simt = on != 0;
    return was;
}

int lt_cunn_attention_tc128(lt_cunn *nn, int on) {
    const int was = nn->attn_tc128;
    nn->attn_tc128 = on != 0;
    return was;
}

int lt_cunn_attention_tf32(lt_cunn *nn, int on) {
    const int was = nn->attn_tf32;
    nn->attn_tf32 = on != 0;
    return was;
}

} /* extern "C" */
