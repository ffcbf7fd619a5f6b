/* Causal self-attention on the tensor cores, for bf16 and fp16 storage and
 * head sizes up to 64, or up to 128 when asked, and for fp32 storage with
 * head sizes up to 64 (attention.cuh: attn_tc_serves; DH 128 takes its
 * backward's shared memory, past 48 KB, from the launch and runs one CTA per
 * SM; so do fp32's dq and dk / dv kernels); the same results as
 * attention.cu (out, lse, D, dq, dk, dv) through the warp matrix functions
 * (nvcuda::wmma: m16n16k16 16-bit products, or for fp32 m16n16k8 tf32
 * products three to a product, 3xTF32, see mma(); fp32 sums), flash-style: no
 * T x T matrix in device memory, and no atomics (two runs give the same bits).
 * fp32 stages its tiles and keeps P and dS as fp32 (twice the shared memory).
 *
 * Work layout: a CTA of 4 warps owns 64 rows (query rows in the forward and
 * the dq pass, key rows in the dk / dv pass), 16 per warp, of one (b, h); the
 * other operand streams through shared memory in tiles of 32 rows, staged as
 * the storage's values (zero past T and past hs; the head padded to
 * DH = 32 or 64 dims); the forward's and the dq pass's key / value tiles by
 * cp.async into two buffers, the next tile landing while this one is used
 * (16-byte rows only; over_kv_tiles). Each warp keeps its own 16 rows as
 * matrix_a fragments and its sums (o, dq, dk, dv) as accumulator fragments. A
 * score tile (16 x 32 per warp) goes through shared memory in fp32, where the
 * warp's lanes (two per row, 16 columns each) apply the mask, the scale and
 * the softmax, and write the operand of the next product (P, or dS; 16-bit,
 * or fp32) over it.
 *
 * The fragments' layout across lanes is unspecified, so nothing here touches
 * their elements by position (fp32's split treats every element alike):
 * every per-row operation happens in shared memory. The forward makes one
 * pass over the keys with an online softmax (a running max and sum per row);
 * when a tile raises a row's max, the running o is rescaled through shared
 * memory (each accumulator stored as a 16 x 16 tile, its rows scaled, loaded
 * back), and divided by the sum at the end. (Until 2026-11-29 it made two
 * passes, the row max and sum first, then o with the final max: the scores'
 * product and the key tiles' staging twice; measured at GPT-2's shape on an
 * H200, 0.180 ms bf16; the one-pass form is unmeasured.)
 *
 * Backward, as attention.cu: the dq pass (per query tile: D = dout . out
 * by the tensor cores, as dP,
 * then over key tiles P = exp(s - lse), dP = dout . v, dS = P (dP - D) /
 * sqrt(hs), dq += dS k), then the dk / dv pass (per key tile, over query tiles
 * from the diagonal: dv += P^T dout, dk += dS^T q). Dropout as in attention.cu (kernels instantiated with DROP,
 * the others unchanged): each lane draws its row's 16 columns' keep bits in the forward and the dq pass; the dk /
 * dv pass draws the tile's into shared memory, 16 keys of one query per thread. */
#include <cuda_runtime.h>
#include <math.h>
#include <mma.h>
#ifndef LT_CUDA_EMU
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

#include "kernels/cuda/cu_internal.cuh"
#include "model/cuda/attention.cuh"
#include "model/cuda/cu_nn.cuh"

namespace {

using namespace ltnn;
namespace wm = nvcuda::wmma;

constexpr int NW = 4;       /* warps per CTA */
constexpr int QR = 16 * NW; /* rows a CTA owns */
constexpr int KT = 32;      /* rows of a streamed tile */
constexpr int SLD = KT + 4; /* floats per row of a warp's score tile */

/* What the products of a storage type S take: the wmma element type W, the type M the fragments load from, the
 * staged element E (the storage's own bits), and the fragments' depth K (m16n16k16 for 16-bit, m16n16k8 tf32). */
template <typename S> struct opnd;
template <> struct opnd<uint16_t> {
    typedef __nv_bfloat16 W;
    typedef __nv_bfloat16 M;
    typedef uint16_t E;
    static constexpr int K = 16;
};
template <> struct opnd<f16s> {
    typedef __half W;
    typedef __half M;
    typedef uint16_t E;
    static constexpr int K = 16;
};
template <> struct opnd<float> {
    typedef wm::precision::tf32 W;
    typedef float M;
    typedef float E;
    static constexpr int K = 8;
};

__device__ __forceinline__ uint16_t bits_of(uint16_t x) { return x; }
__device__ __forceinline__ uint16_t bits_of(f16s x) { return x.bits; }
__device__ __forceinline__ float bits_of(float x) { return x; }
/* the staged operand of a P or dS value: rounded to the 16-bit storage type, or kept in fp32 (split at the product) */
__device__ __forceinline__ uint16_t to_opnd(uint16_t *, float x) { return lt_cu_f32_to_bf16(x); }
__device__ __forceinline__ uint16_t to_opnd(f16s *, float x) { return lt_cu_f32_to_f16(x); }
__device__ __forceinline__ float to_opnd(float *, float x) { return x; }

template <typename S, int DH> struct Tc {
    typedef typename opnd<S>::W W;
    typedef typename opnd<S>::M M;
    typedef typename opnd<S>::E E;
    static constexpr int K = opnd<S>::K;
    static constexpr int LD = DH + 16 / (int)sizeof(E); /* values per staged row (16 bytes of padding spread the banks) */
    static constexpr int OLD = DH + 4; /* floats per row of a warp's output tile */
    static constexpr int NK = DH / K;  /* matrix_a fragments across a head's dims */
    static constexpr int ND = DH / 16; /* accumulators across a head's dims */
    /* values per row of the P / dS tile written over a score tile: 16-bit, or fp32 in place of each score */
    static constexpr int PLD = sizeof(E) == 2 ? KT + 8 : SLD;
    typedef wm::fragment<wm::matrix_a, 16, 16, K, W, wm::row_major> A;
    typedef wm::fragment<wm::matrix_b, 16, 16, K, W, wm::row_major> Brow;
    typedef wm::fragment<wm::matrix_b, 16, 16, K, W, wm::col_major> Bcol;
    typedef wm::fragment<wm::accumulator, 16, 16, K, float> Acc;
};

/* x rounded to tf32 (cvt.rna: nearest, ties away from zero). On the GPU a volatile asm, so that the compiler
 * splits a fragment where it is used instead of hoisting the split parts of the resident fragments out of the
 * loops over tiles (which doubles their registers: the fp32 dq / dk / dv kernels then spill). */
__device__ __forceinline__ float tf32_rna(float x) {
#ifdef LT_CUDA_EMU
    return wm::__float_to_tf32(x);
#else
    uint32_t r;
    asm volatile("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return __uint_as_float(r);
#endif
}

/* f = big + small, each rounded to tf32 (big carries x's first 11 significant bits, small the next 11) */
template <typename F> __device__ __forceinline__ void split_tf32(const F &f, F &big, F &small) {
#pragma unroll
    for (int i = 0; i < f.num_elements; i++) {
        const float x = f.x[i], b = tf32_rna(x);
        big.x[i] = b;
        small.x[i] = tf32_rna(x - b);
    }
}

/* d += a b: one product of 16-bit operands, or for fp32 three tf32 products (3xTF32: a_small b_big + a_big b_small
 * + a_big b_big, the small terms first; the a_small b_small term, 2^-22 of the product, is dropped), which keeps
 * fp32's accuracy to within a few units in its last place */
template <typename S, typename Acc, typename A, typename B>
__device__ __forceinline__ void mma(Acc &d, const A &a, const B &b) {
    if constexpr (std::is_same<S, float>::value) {
        A ab, as;
        B bb, bs;
        split_tf32(a, ab, as);
        split_tf32(b, bb, bs);
        wm::mma_sync(d, as, bb, d);
        wm::mma_sync(d, ab, bs, d);
        wm::mma_sync(d, ab, bb, d);
    } else {
        wm::mma_sync(d, a, b, d);
    }
}

/* dst rows 0..rows-1 (Tc::LD apart) = src rows (stride elements apart), the storage's values as they are; zero
 * for rows >= valid and dims >= hs. vec: hs and stride multiples of 8 and src 16-byte aligned, 16 bytes per load. */
template <typename S, int DH>
__device__ __forceinline__ void stage(typename Tc<S, DH>::E *dst, const S *src, size_t stride, int rows, int valid,
                                      int hs, bool vec) {
    typedef typename Tc<S, DH>::E E;
    constexpr int LD = Tc<S, DH>::LD;
    const int tid = threadIdx.x, nt = 32 * NW;
    if (vec) {
        constexpr int VPC = 16 / (int)sizeof(S), CPR = DH / VPC; /* values per chunk, chunks per row */
        for (int i = tid; i < rows * CPR; i += nt) {
            const int r = i / CPR, d = VPC * (i % CPR);
            int4 v = {0, 0, 0, 0};
            if (r < valid && d < hs) {
                const S *p = src + (size_t)r * stride + (size_t)d;
                LT_ALIGNED(p, 16);
                v = *reinterpret_cast<const int4 *>(p);
            }
            LT_ALIGNED(dst + r * LD + d, 16);
            *reinterpret_cast<int4 *>(dst + r * LD + d) = v;
        }
    } else {
        for (int i = tid; i < rows * DH; i += nt) {
            const int r = i / DH, d = i % DH;
            dst[r * LD + d] = r < valid && d < hs ? bits_of(src[(size_t)r * stride + (size_t)d]) : (E)0;
        }
    }
}

/* stage's 16-byte form by cp.async (src 16-byte aligned, hs and stride multiples of 8): the copies are queued in
 * this thread's current group (the caller commits it and waits before a barrier; zeros past valid rows and hs
 * are stored at once) */
template <typename S, int DH>
__device__ __forceinline__ void stage_async(typename Tc<S, DH>::E *dst, const S *src, size_t stride, int rows,
                                            int valid, int hs) {
    constexpr int LD = Tc<S, DH>::LD;
    constexpr int VPC = 16 / (int)sizeof(S), CPR = DH / VPC; /* values per chunk, chunks per row */
    for (int i = (int)threadIdx.x; i < rows * CPR; i += 32 * NW) {
        const int r = i / CPR, d = VPC * (i % CPR);
        if (r < valid && d < hs) {
            lt_cp_async<16>(dst + r * LD + d, src + (size_t)r * stride + (size_t)d);
        } else {
            LT_ALIGNED(dst + r * LD + d, 16);
            *reinterpret_cast<int4 *>(dst + r * LD + d) = int4{0, 0, 0, 0};
        }
    }
}

/* a streamed tile of KT keys and their values, as staged */
template <typename S, int DH> struct KvTile {
    typename Tc<S, DH>::E k[KT * Tc<S, DH>::LD], v[KT * Tc<S, DH>::LD];
};

/* Streams the key / value tiles of keys [0, kend) (rows of qkv from base, C3 apart) through buf and calls
 * use(k0, k tile, v tile) for each, every thread of the CTA at once between barriers. With vec (16-byte rows) a
 * tile comes by cp.async one tile ahead, into the buffer the previous tile's use has left (tile i in buf[i % 2]);
 * otherwise each is staged one value at a time when its turn comes. The first copies are issued at the call:
 * every warp must be done with what buf overlays (the callers' barrier). Nothing is in flight at the return. */
template <typename S, int DH, typename F>
__device__ __forceinline__ void over_kv_tiles(KvTile<S, DH> (&buf)[2], const S *base, size_t C3, int C, int T,
                                              int kend, int hs, bool vec, F use) {
    const int ntiles = (kend + KT - 1) / KT;
    auto issue = [&](int it) {
        const int k = it * KT;
        stage_async<S, DH>(buf[it % 2].k, base + (size_t)k * C3 + C, C3, KT, T - k, hs);
        stage_async<S, DH>(buf[it % 2].v, base + (size_t)k * C3 + 2 * (size_t)C, C3, KT, T - k, hs);
    };
    if (vec) {
        issue(0);
        lt_cp_commit();
    }
    for (int it = 0; it < ntiles; it++) {
        const int k0 = it * KT;
        KvTile<S, DH> &tile = buf[it % 2];
        if (it > 0) __syncthreads(); /* every warp is done with the previous tile, whose buffer is refilled next */
        if (vec) {
            if (it + 1 < ntiles) issue(it + 1);
            lt_cp_commit();
            lt_cp_wait<1>(); /* this thread's copies of tile it have landed */
        } else {
            stage<S, DH>(tile.k, base + (size_t)k0 * C3 + C, C3, KT, T - k0, hs, false);
            stage<S, DH>(tile.v, base + (size_t)k0 * C3 + 2 * (size_t)C, C3, KT, T - k0, hs, false);
        }
        __syncthreads(); /* and every thread's */
        use(k0, static_cast<const typename Tc<S, DH>::E *>(tile.k), static_cast<const typename Tc<S, DH>::E *>(tile.v));
    }
    lt_cp_wait<0>(); /* the last group was empty: nothing is left in flight */
}

/* the warp's 16 rows (at `rows`, Tc::LD apart) as matrix_a fragments, one per K dims */
template <typename S, int DH>
__device__ __forceinline__ void load_rows(typename Tc<S, DH>::A (&a)[Tc<S, DH>::NK], const typename Tc<S, DH>::E *rows) {
    typedef Tc<S, DH> X;
#pragma unroll
    for (int d = 0; d < X::NK; d++)
        wm::load_matrix_sync(a[d], reinterpret_cast<const typename X::M *>(rows + X::K * d), X::LD);
}

/* sw (16 x KT floats, SLD apart) = a . tile^T: the warp's rows against the KT staged rows of tile */
template <typename S, int DH>
__device__ __forceinline__ void scores(float *sw, const typename Tc<S, DH>::A (&a)[Tc<S, DH>::NK],
                                       const typename Tc<S, DH>::E *tile) {
    typedef Tc<S, DH> X;
#pragma unroll
    for (int nb = 0; nb < KT / 16; nb++) {
        typename X::Acc acc;
        wm::fill_fragment(acc, 0.0f);
#pragma unroll
        for (int d = 0; d < X::NK; d++) {
            typename X::Bcol bt;
            wm::load_matrix_sync(bt, reinterpret_cast<const typename X::M *>(tile + 16 * nb * X::LD + X::K * d),
                                 X::LD);
            mma<S>(acc, a[d], bt);
        }
        wm::store_matrix_sync(sw + 16 * nb, acc, SLD, wm::mem_row_major);
    }
}

/* acc[d] += p (16 x KT operands, Tc::PLD apart) . tile (KT staged rows) */
template <typename S, int DH>
__device__ __forceinline__ void accumulate(typename Tc<S, DH>::Acc (&acc)[Tc<S, DH>::ND],
                                           const typename Tc<S, DH>::E *p, const typename Tc<S, DH>::E *tile) {
    typedef Tc<S, DH> X;
#pragma unroll
    for (int kk = 0; kk < KT / X::K; kk++) {
        typename X::A pa;
        wm::load_matrix_sync(pa, reinterpret_cast<const typename X::M *>(p + X::K * kk), X::PLD);
#pragma unroll
        for (int d = 0; d < X::ND; d++) {
            typename X::Brow vb;
            wm::load_matrix_sync(vb, reinterpret_cast<const typename X::M *>(tile + X::K * kk * X::LD + 16 * d),
                                 X::LD);
            mma<S>(acc[d], pa, vb);
        }
    }
}

/* Writes the warp's 16 rows of acc, divided by div (each lane's own row's), to dst + r * ld for row r, dims < hs,
 * through ow (16 x OLD floats of shared memory); lanes: two per row, half of the dims each; valid: this lane's
 * row exists (is before T). */
template <typename S, int DH>
__device__ __forceinline__ void write_rows(S *dst, size_t ld, float *ow, typename Tc<S, DH>::Acc (&acc)[Tc<S, DH>::ND],
                                           float div, bool valid, int hs) {
    typedef Tc<S, DH> X;
    const int lane = threadIdx.x % 32, lr = lane >> 1, half = lane & 1;
#pragma unroll
    for (int d = 0; d < X::ND; d++) wm::store_matrix_sync(ow + 16 * d, acc[d], X::OLD, wm::mem_row_major);
    warp_sync();
    if (valid) {
        S *row = dst + (size_t)lr * ld;
        for (int d = half * (DH / 2); d < (half + 1) * (DH / 2) && d < hs; d++) st(row, (size_t)d, ow[lr * X::OLD + d] / div);
    }
    warp_sync();
}

/* Where this thread works: its CTA's head_tile (64 rows), its warp's first row within the CTA's (r0), its lane's
 * row within the warp's (lr) and half of that row's columns */
struct place : head_tile {
    int warp, r0, lr, half;
};
__device__ __forceinline__ place place_of(int B, int T, int C, int NH, bool reverse) {
    const int lane = (int)threadIdx.x % 32, warp = (int)threadIdx.x / 32;
    return place{head_tile_of(B, T, C, NH, QR, reverse), warp, 16 * warp, lane >> 1, lane & 1};
}

/* The kernel's shared memory M: a static variable while it fits the 48 KB a kernel may declare (DH 32 and 64),
 * else, or when DYN (the forward and the dq pass, whose tiles come by cp.async: the CUDA emulation takes those
 * copies into dynamic shared memory only), the launch's dynamic shared memory (dyn_bytes<M, DYN, kernel> gives
 * the launch sizeof(M)). */
struct alignas(128) dyn_unit {
    unsigned char b[128];
};
template <typename M, bool DYN = false> __device__ __forceinline__ M &smem_of() {
    if constexpr (!DYN && sizeof(M) <= 48 * 1024) {
        __shared__ M sm;
        return sm;
    } else {
        LT_DYN_SMEM(dyn_unit, raw);
        return *reinterpret_cast<M *>(raw);
    }
}

/* registers: 3 CTAs per SM (at most 168 registers) for 16-bit operands up to DH 64, without spills there; 2 for
 * fp32 (DH 32 and 64), whose resident fragments take twice the registers and whose 3xTF32 products split them
 * into two more; 1 at DH 128, whose resident fragments need up to 255 */
template <typename S> constexpr int min_ctas(int dh) { return dh > 64 ? 1 : std::is_same<S, float>::value ? 2 : 3; }

/* ---- forward ---- */

template <typename S, int DH> struct FwdSmem {
    typedef Tc<S, DH> X;
    union alignas(32) U {
        typename X::E q[QR * X::LD];
        KvTile<S, DH> kv[2]; /* over_kv_tiles' buffers */
        float o[NW * 16 * X::OLD];
    } u;
    alignas(32) float s[NW][16 * SLD];
};

template <typename S, int DH, bool DROP>
__global__ void __launch_bounds__(32 * NW) attn_tc_fwd(S *out, float *lse, const S *qkv, int B, int T, int C, int NH,
                                                        float inv, int vec, lt_dropout dr) {
    typedef Tc<S, DH> X;
    FwdSmem<S, DH> &sm = smem_of<FwdSmem<S, DH>, true>();
    const place P = place_of(B, T, C, NH, true);
    const size_t b = P.b, C3 = P.C3;
    const int hs = P.hs, h = P.h, warp = P.warp, lr = P.lr, half = P.half, q0 = P.row0, r0 = P.r0, t = q0 + r0 + lr;
    const S *base = qkv + b * (size_t)T * C3 + (size_t)h * hs;
    const score_scale sc{sqrtf((float)hs), inv};
    const int warp_last = q0 + r0 + 15;
    float *sw = sm.s[warp];
    typename X::E *pw = reinterpret_cast<typename X::E *>(sw);
    const int kend = T < q0 + QR ? T : q0 + QR;

    stage<S, DH>(sm.u.q, base + (size_t)q0 * C3, C3, QR, T - q0, hs, vec);
    __syncthreads();
    typename X::A qa[X::NK];
    load_rows<S, DH>(qa, sm.u.q + r0 * X::LD);
    /* one pass over the key tiles, online softmax: each row's running max m and sum l of exp(s - m), and o the
     * sum of exp(s - m) v, rescaled by exp(m_old - m_new) when a tile raises the max (in shared memory, a
     * fragment at a time: an accumulator's layout is unspecified, but one stored as a row-major 16 x 16 tile is
     * not); o / l at the end */
    float m = -INFINITY, l = 0.0f;
    typename X::Acc oacc[X::ND];
#pragma unroll
    for (int d = 0; d < X::ND; d++) wm::fill_fragment(oacc[d], 0.0f);
    __syncthreads(); /* every warp has its q fragments: the tiles overlay q */
    over_kv_tiles<S, DH>(sm.u.kv, base, C3, C, T, kend, hs, vec != 0, [&](int k0, const typename X::E *kt,
                                                                          const typename X::E *vt) {
        if (k0 > warp_last) return;
        scores<S, DH>(sw, qa, kt);
        warp_sync();
        float s[16], mt = -INFINITY;
#pragma unroll
        for (int c = 0; c < 16; c++) {
            const int key = k0 + 16 * half + c;
            s[c] = key <= t && key < T ? sc.div(sw[lr * SLD + 16 * half + c]) : -INFINITY;
            mt = fmaxf(mt, s[c]);
        }
        mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 1));
        const float mn = fmaxf(m, mt); /* finite: key 0 is in the first tile */
        const float alpha = expf(m - mn); /* 0 on the first tile (m = -inf), where o is still 0 */
        float sum = 0.0f;
#pragma unroll
        for (int c = 0; c < 16; c++) {
            s[c] = expf(s[c] - mn); /* masked: exp(-inf) = 0 */
            sum += s[c];
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        l = l * alpha + sum;
        m = mn;
        warp_sync(); /* every lane has read its scores: sw is free */
        if (k0 != 0 && !__all_sync(0xffffffffu, alpha == 1.0f)) {
            /* o *= alpha per row, through sw: each lane scales 8 of its row's 16 columns of a fragment */
#pragma unroll
            for (int d = 0; d < X::ND; d++) {
                wm::store_matrix_sync(sw, oacc[d], SLD, wm::mem_row_major);
                warp_sync();
#pragma unroll
                for (int c = 0; c < 8; c++) sw[lr * SLD + 8 * half + c] *= alpha;
                warp_sync();
                wm::load_matrix_sync(oacc[d], sw, SLD, wm::mem_row_major);
                warp_sync(); /* loaded before the next fragment (or P) overwrites sw */
            }
        }
        if constexpr (DROP) { /* the sum l is before dropout; P . v after it */
            const uint32_t keep = drop_bits16(
                dr, ((uint64_t)P.bh * (uint64_t)T + (uint64_t)t) * (uint64_t)T + (uint64_t)(k0 + 16 * half));
#pragma unroll
            for (int c = 0; c < 16; c++) s[c] *= drop_factor(keep, c, dr.scale);
        }
#pragma unroll
        for (int c = 0; c < 16; c++) pw[lr * X::PLD + 16 * half + c] = to_opnd((S *)nullptr, s[c]);
        warp_sync();
        accumulate<S, DH>(oacc, pw, vt);
        warp_sync(); /* the P tile has been read before the next scores */
    });
    __syncthreads(); /* the tiles are done with: the output staging overlays them */
    write_rows<S, DH>(out + (b * (size_t)T + (size_t)(q0 + r0)) * (size_t)C + (size_t)h * hs, (size_t)C,
                      sm.u.o + warp * 16 * X::OLD, oacc, l, t < T, hs);
    if (t < T && half == 0) lse[P.bh * (size_t)T + (size_t)t] = m + logf(l);
}

/* ---- backward, passes 1 and 2: D and dq per query tile ---- */

template <typename S, int DH> struct DqSmem {
    typedef Tc<S, DH> X;
    union alignas(32) U {
        struct {
            typename X::E q[QR * X::LD], g[QR * X::LD], o[QR * X::LD];
        } qg;
        KvTile<S, DH> kv[2]; /* over_kv_tiles' buffers */
        float o[NW * 16 * X::OLD];
    } u;
    alignas(32) float s[NW][16 * SLD];
    alignas(32) float dp[NW][16 * SLD];
};

template <typename S, int DH, bool DROP>
__global__ void __launch_bounds__(32 * NW, min_ctas<S>(DH))
    attn_tc_dq(S *dqkv, float *Dsum, const S *dout, const S *qkv, const S *out, const float *lse, int B, int T, int C,
               int NH, float inv, int vec, lt_dropout dr) {
    typedef Tc<S, DH> X;
    DqSmem<S, DH> &sm = smem_of<DqSmem<S, DH>, true>();
    const place P = place_of(B, T, C, NH, true);
    const size_t b = P.b, C3 = P.C3;
    const int hs = P.hs, h = P.h, warp = P.warp, lr = P.lr, half = P.half, q0 = P.row0, r0 = P.r0, t = q0 + r0 + lr;
    const S *base = qkv + b * (size_t)T * C3 + (size_t)h * hs;
    const size_t orow = (b * (size_t)T + (size_t)q0) * (size_t)C + (size_t)h * hs; /* dout / out of row q0 */
    const score_scale sc{sqrtf((float)hs), inv};
    const int warp_last = q0 + r0 + 15;
    float *sw = sm.s[warp], *dpw = sm.dp[warp];
    typename X::E *dsw = reinterpret_cast<typename X::E *>(sw);
    const int kend = T < q0 + QR ? T : q0 + QR;

    stage<S, DH>(sm.u.qg.q, base + (size_t)q0 * C3, C3, QR, T - q0, hs, vec);
    stage<S, DH>(sm.u.qg.g, dout + orow, (size_t)C, QR, T - q0, hs, vec);
    stage<S, DH>(sm.u.qg.o, out + orow, (size_t)C, QR, T - q0, hs, vec);
    __syncthreads();
    typename X::A qa[X::NK], ga[X::NK];
    load_rows<S, DH>(qa, sm.u.qg.q + r0 * X::LD);
    load_rows<S, DH>(ga, sm.u.qg.g + r0 * X::LD);
    /* D = dout . out per row: the diagonal of the warp's dout . out^T, by the same products and in the same order
     * as dP = dout . v^T below (so that a row whose only key is itself, where out = v, gets dP - D = 0 exactly in
     * 16-bit; in fp32, 3xTF32's 1 * v is v only to within its rounding, so that row's dS is tiny, not zero) */
    {
        typename X::Acc dd;
        wm::fill_fragment(dd, 0.0f);
#pragma unroll
        for (int d = 0; d < X::NK; d++) {
            typename X::Bcol ot;
            wm::load_matrix_sync(ot, reinterpret_cast<const typename X::M *>(sm.u.qg.o + r0 * X::LD + X::K * d),
                                 X::LD);
            mma<S>(dd, ga[d], ot);
        }
        wm::store_matrix_sync(sw, dd, SLD, wm::mem_row_major);
        warp_sync();
    }
    const float Di = t < T ? sw[lr * SLD + lr] : 0.0f;
    warp_sync();
    const float li = t < T ? lse[P.bh * (size_t)T + (size_t)t] : 0.0f;
    if (t < T && half == 0) Dsum[P.bh * (size_t)T + (size_t)t] = Di;

    typename X::Acc dq[X::ND];
#pragma unroll
    for (int d = 0; d < X::ND; d++) wm::fill_fragment(dq[d], 0.0f);
    __syncthreads(); /* q, dout and out have been read: the tiles overlay them */
    over_kv_tiles<S, DH>(sm.u.kv, base, C3, C, T, kend, hs, vec != 0, [&](int k0, const typename X::E *kt,
                                                                          const typename X::E *vt) {
        if (k0 > warp_last) return;
        scores<S, DH>(sw, qa, kt);
        scores<S, DH>(dpw, ga, vt);
        warp_sync();
        float ds[16];
        uint32_t keep = 0;
        if constexpr (DROP)
            keep = drop_bits16(dr, ((uint64_t)P.bh * (uint64_t)T + (uint64_t)t) * (uint64_t)T +
                                       (uint64_t)(k0 + 16 * half));
#pragma unroll
        for (int c = 0; c < 16; c++) {
            const int key = k0 + 16 * half + c, at = lr * SLD + 16 * half + c;
            const float p = key <= t && key < T ? expf(sc.div(sw[at]) - li) : 0.0f;
            const float dp = DROP ? dpw[at] * drop_factor(keep, c, dr.scale) : dpw[at]; /* d P through dropout */
            ds[c] = sc.div(p * (dp - Di));
        }
        warp_sync();
#pragma unroll
        for (int c = 0; c < 16; c++) dsw[lr * X::PLD + 16 * half + c] = to_opnd((S *)nullptr, ds[c]);
        warp_sync();
        accumulate<S, DH>(dq, dsw, kt);
        warp_sync();
    });
    __syncthreads();
    write_rows<S, DH>(dqkv + (b * (size_t)T + (size_t)(q0 + r0)) * C3 + (size_t)h * hs, C3,
                      sm.u.o + warp * 16 * X::OLD, dq, 1.0f, t < T, hs);
}

/* ---- backward, pass 3: dk and dv per key tile ---- */

template <typename S, int DH> struct DkvSmem {
    typedef Tc<S, DH> X;
    union alignas(32) U {
        struct {
            typename X::E k[QR * X::LD], v[QR * X::LD];
        } kv;
        struct {
            typename X::E q[KT * X::LD], g[KT * X::LD];
        } qg;
        float o[NW * 16 * X::OLD];
    } u;
    alignas(32) float s[NW][16 * SLD];
    alignas(32) float dp[NW][16 * SLD];
    float ls[KT], ds[KT]; /* lse and D of the tile's queries */
};

/* with dropout: keep bits of (query i0 + i, keys j0 + 16 w ..) in keep16[4 i + w], the CTA's 64 keys of each of
 * the tile's queries (consecutive elements of the site, drawn 16 to a thread; w is the warp whose keys they are) */
template <typename S, int DH> struct DkvSmemDrop : DkvSmem<S, DH> {
    uint16_t keep16[4 * KT];
};
template <typename S, int DH, bool DROP>
using DkvSmemOf = typename std::conditional<DROP, DkvSmemDrop<S, DH>, DkvSmem<S, DH>>::type;

template <typename S, int DH, bool DROP>
__global__ void __launch_bounds__(32 * NW, min_ctas<S>(DH))
    attn_tc_dkv(S *dqkv, const float *Dsum, const S *dout, const S *qkv, const float *lse, int B, int T, int C, int NH,
                float inv, int vec, lt_dropout dr) {
    typedef Tc<S, DH> X;
    DkvSmemOf<S, DH, DROP> &sm = smem_of<DkvSmemOf<S, DH, DROP>>();
    const place P = place_of(B, T, C, NH, false); /* key tile 0 has the most queries */
    const size_t b = P.b, C3 = P.C3;
    const int tid = threadIdx.x, hs = P.hs, h = P.h, warp = P.warp, lr = P.lr, half = P.half, j0 = P.row0, r0 = P.r0,
              j = j0 + r0 + lr;
    const S *base = qkv + b * (size_t)T * C3 + (size_t)h * hs;
    const S *gbase = dout + b * (size_t)T * (size_t)C + (size_t)h * hs;
    const score_scale sc{sqrtf((float)hs), inv};
    const int warp_first = j0 + r0; /* the warp's first key */
    float *sw = sm.s[warp], *dpw = sm.dp[warp];
    typename X::E *pw = reinterpret_cast<typename X::E *>(sw), *dsw = reinterpret_cast<typename X::E *>(dpw);

    stage<S, DH>(sm.u.kv.k, base + (size_t)j0 * C3 + C, C3, QR, T - j0, hs, vec);
    stage<S, DH>(sm.u.kv.v, base + (size_t)j0 * C3 + 2 * (size_t)C, C3, QR, T - j0, hs, vec);
    __syncthreads();
    typename X::A ka[X::NK], va[X::NK];
    load_rows<S, DH>(ka, sm.u.kv.k + r0 * X::LD);
    load_rows<S, DH>(va, sm.u.kv.v + r0 * X::LD);
    typename X::Acc dk[X::ND], dv[X::ND];
#pragma unroll
    for (int d = 0; d < X::ND; d++) wm::fill_fragment(dk[d], 0.0f), wm::fill_fragment(dv[d], 0.0f);

    for (int i0 = j0 / KT * KT; i0 < T; i0 += KT) {
        __syncthreads(); /* the previous tile (or k and v) has been read */
        stage<S, DH>(sm.u.qg.q, base + (size_t)i0 * C3, C3, KT, T - i0, hs, vec);
        stage<S, DH>(sm.u.qg.g, gbase + (size_t)i0 * (size_t)C, (size_t)C, KT, T - i0, hs, vec);
        if (tid < KT) {
            const bool in = i0 + tid < T;
            sm.ls[tid] = in ? lse[P.bh * (size_t)T + (size_t)(i0 + tid)] : 0.0f;
            sm.ds[tid] = in ? Dsum[P.bh * (size_t)T + (size_t)(i0 + tid)] : 0.0f;
        }
        if constexpr (DROP) /* 4 KT = 128 rows of 16 keys, one per thread */
            sm.keep16[tid] = (uint16_t)drop_bits16(
                dr, ((uint64_t)P.bh * (uint64_t)T + (uint64_t)(i0 + tid / 4)) * (uint64_t)T + (uint64_t)j0 +
                        16u * (uint64_t)(tid % 4));
        __syncthreads();
        if (i0 + KT - 1 < warp_first) continue; /* every query of the tile is before this warp's keys */
        scores<S, DH>(sw, ka, sm.u.qg.q);  /* s^T: keys x queries */
        scores<S, DH>(dpw, va, sm.u.qg.g); /* dP^T */
        warp_sync();
        float p[16], ds[16];
#pragma unroll
        for (int c = 0; c < 16; c++) {
            const int qc = 16 * half + c, qi = i0 + qc, at = lr * SLD + qc;
            p[c] = qi >= j && qi < T ? expf(sc.div(sw[at]) - sm.ls[qc]) : 0.0f;
            float dp = dpw[at];
            if constexpr (DROP) { /* this lane's key is j0 + 16 warp + lr */
                const float z = drop_factor(sm.keep16[4 * qc + warp], lr, dr.scale);
                dp *= z;
                ds[c] = sc.div(p[c] * (dp - sm.ds[qc]));
                p[c] *= z; /* dv takes the dropped probabilities */
            } else {
                ds[c] = sc.div(p[c] * (dp - sm.ds[qc]));
            }
        }
        warp_sync();
#pragma unroll
        for (int c = 0; c < 16; c++) {
            pw[lr * X::PLD + 16 * half + c] = to_opnd((S *)nullptr, p[c]);
            dsw[lr * X::PLD + 16 * half + c] = to_opnd((S *)nullptr, ds[c]);
        }
        warp_sync();
        accumulate<S, DH>(dv, pw, sm.u.qg.g);
        accumulate<S, DH>(dk, dsw, sm.u.qg.q);
        warp_sync();
    }
    __syncthreads();
    S *row = dqkv + (b * (size_t)T + (size_t)(j0 + r0)) * C3 + (size_t)h * hs;
    float *ow = sm.u.o + warp * 16 * X::OLD;
    write_rows<S, DH>(row + C, C3, ow, dk, 1.0f, j < T, hs);
    write_rows<S, DH>(row + 2 * (size_t)C, C3, ow, dv, 1.0f, j < T, hs);
}

/* 16-byte staging: every row start and head offset a multiple of 8 values, the base 16-byte aligned */
int vec_ok(const void *p, int C, int hs, const void *p2 = nullptr, const void *p3 = nullptr) {
    const uintptr_t a = (uintptr_t)p | (uintptr_t)p2 | (uintptr_t)p3;
    return C % 8 == 0 && hs % 8 == 0 && a % 16 == 0;
}

/* the dynamic shared memory KERNEL, whose shared memory is M, launches with (0: M is static), after allowing it past
 * 48 KB (once per kernel: the static is KERNEL's own, since kernels of one signature and one M, with and without
 * dropout, share everything else; an error here surfaces at the launch) */
template <typename M, bool DYN, auto KERNEL> size_t dyn_bytes() {
    if (sizeof(M) <= 48 * 1024) return DYN ? sizeof(M) : 0;
    static const cudaError_t allowed =
        cudaFuncSetAttribute(KERNEL, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sizeof(M));
    (void)allowed;
    return sizeof(M);
}

template <typename S, int DH, bool DROP>
void tc_forward_as(lt_cunn *nn, S *out, float *lse, const S *qkv, int B, int T, int C, int NH, lt_dropout dr) {
    const unsigned grid = (unsigned)((size_t)B * NH * (size_t)((T + QR - 1) / QR));
    const int hs = C / NH;
    auto k = attn_tc_fwd<S, DH, DROP>;
    const size_t dyn = dyn_bytes<FwdSmem<S, DH>, true, attn_tc_fwd<S, DH, DROP>>();
    LT_LAUNCH(k, grid, 32 * NW, dyn, nn->stream)(out, lse, qkv, B, T, C, NH, exact_inv_scale(hs), vec_ok(qkv, C, hs),
                                                 dr);
}

/* drop: NULL (the kernels without dropout) or a site with a non-zero threshold */
template <typename S, int DH>
void tc_forward(lt_cunn *nn, S *out, float *lse, const S *qkv, int B, int T, int C, int NH, const lt_dropout *drop) {
    if (drop) tc_forward_as<S, DH, true>(nn, out, lse, qkv, B, T, C, NH, *drop);
    else tc_forward_as<S, DH, false>(nn, out, lse, qkv, B, T, C, NH, lt_dropout{});
}

template <typename S, int DH, bool DROP>
void tc_backward_as(lt_cunn *nn, S *dqkv, float *Dsum, const S *dout, const S *qkv, const S *out, const float *lse,
                    int B, int T, int C, int NH, lt_dropout dr) {
    const unsigned grid = (unsigned)((size_t)B * NH * (size_t)((T + QR - 1) / QR));
    const int hs = C / NH, vec = vec_ok(qkv, C, hs, dout, out);
    const float inv = exact_inv_scale(hs);
    auto kq = attn_tc_dq<S, DH, DROP>;
    auto kkv = attn_tc_dkv<S, DH, DROP>;
    /* the dq pass writes D, which the dk / dv pass reads: the stream orders them */
    const size_t dq_dyn = dyn_bytes<DqSmem<S, DH>, true, attn_tc_dq<S, DH, DROP>>(),
                 dkv_dyn = dyn_bytes<DkvSmemOf<S, DH, DROP>, false, attn_tc_dkv<S, DH, DROP>>();
    LT_LAUNCH(kq, grid, 32 * NW, dq_dyn, nn->stream)(dqkv, Dsum, dout, qkv, out, lse, B, T, C, NH, inv, vec, dr);
    LT_LAUNCH(kkv, grid, 32 * NW, dkv_dyn, nn->stream)(dqkv, Dsum, dout, qkv, lse, B, T, C, NH, inv, vec, dr);
}

template <typename S, int DH>
void tc_backward(lt_cunn *nn, S *dqkv, float *Dsum, const S *dout, const S *qkv, const S *out, const float *lse,
                 int B, int T, int C, int NH, const lt_dropout *drop) {
    if (drop) tc_backward_as<S, DH, true>(nn, dqkv, Dsum, dout, qkv, out, lse, B, T, C, NH, *drop);
    else tc_backward_as<S, DH, false>(nn, dqkv, Dsum, dout, qkv, out, lse, B, T, C, NH, lt_dropout{});
}

} // namespace

void ltnn::attn_tc_forward(lt_cunn *nn, lt_dtype dt, void *out, float *lse, const void *qkv, int B, int T, int C,
                           int NH, const lt_dropout *drop) {
    const int dh = head_dims(C / NH);
    if (dt == LT_DTYPE_F32) { /* head sizes up to 64 (attn_tc_serves) */
        auto o = static_cast<float *>(out);
        auto x = static_cast<const float *>(qkv);
        if (dh == 32) tc_forward<float, 32>(nn, o, lse, x, B, T, C, NH, drop);
        else tc_forward<float, 64>(nn, o, lse, x, B, T, C, NH, drop);
    } else if (dt == LT_DTYPE_BF16) {
        auto o = static_cast<uint16_t *>(out);
        auto x = static_cast<const uint16_t *>(qkv);
        if (dh == 32) tc_forward<uint16_t, 32>(nn, o, lse, x, B, T, C, NH, drop);
        else if (dh == 64) tc_forward<uint16_t, 64>(nn, o, lse, x, B, T, C, NH, drop);
        else tc_forward<uint16_t, 128>(nn, o, lse, x, B, T, C, NH, drop);
    } else {
        auto o = static_cast<f16s *>(out);
        auto x = static_cast<const f16s *>(qkv);
        if (dh == 32) tc_forward<f16s, 32>(nn, o, lse, x, B, T, C, NH, drop);
        else if (dh == 64) tc_forward<f16s, 64>(nn, o, lse, x, B, T, C, NH, drop);
        else tc_forward<f16s, 128>(nn, o, lse, x, B, T, C, NH, drop);
    }
}

void ltnn::attn_tc_backward(lt_cunn *nn, lt_dtype dt, void *dqkv, float *Dsum, const void *dout, const void *qkv,
                            const void *out, const float *lse, int B, int T, int C, int NH, const lt_dropout *drop) {
    const int dh = head_dims(C / NH);
    if (dt == LT_DTYPE_F32) {
        auto d = static_cast<float *>(dqkv);
        auto g = static_cast<const float *>(dout), x = static_cast<const float *>(qkv),
             o = static_cast<const float *>(out);
        if (dh == 32) tc_backward<float, 32>(nn, d, Dsum, g, x, o, lse, B, T, C, NH, drop);
        else tc_backward<float, 64>(nn, d, Dsum, g, x, o, lse, B, T, C, NH, drop);
    } else if (dt == LT_DTYPE_BF16) {
        auto d = static_cast<uint16_t *>(dqkv);
        auto g = static_cast<const uint16_t *>(dout), x = static_cast<const uint16_t *>(qkv),
             o = static_cast<const uint16_t *>(out);
        if (dh == 32) tc_backward<uint16_t, 32>(nn, d, Dsum, g, x, o, lse, B, T, C, NH, drop);
        else if (dh == 64) tc_backward<uint16_t, 64>(nn, d, Dsum, g, x, o, lse, B, T, C, NH, drop);
        else tc_backward<uint16_t, 128>(nn, d, Dsum, g, x, o, lse, B, T, C, NH, drop);
    } else {
        auto d = static_cast<f16s *>(dqkv);
        auto g = static_cast<const f16s *>(dout), x = static_cast<const f16s *>(qkv),
             o = static_cast<const f16s *>(out);
        if (dh == 32) tc_backward<f16s, 32>(nn, d, Dsum, g, x, o, lse, B, T, C, NH, drop);
        else if (dh == 64) tc_backward<f16s, 64>(nn, d, Dsum, g, x, o, lse, B, T, C, NH, drop);
        else tc_backward<f16s, 128>(nn, d, Dsum, g, x, o, lse, B, T, C, NH, drop);
    }
}
