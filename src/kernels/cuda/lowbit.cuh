/* The multi-tensor low-bit kernel template (lowbit.cu explains the layout);
 * each lowbit_<kind>.cu instantiates one kind, so that they compile in parallel. */
#ifndef LT_KERNELS_CUDA_LOWBIT_CUH
#define LT_KERNELS_CUDA_LOWBIT_CUH

#include "kernels/cuda/cu_internal.cuh"

namespace lt_lowbit {


template <int TPB> struct QCfg {
    static constexpr int CTA = TPB > 256 ? TPB : 256;
    static constexpr int G = CTA / TPB; /* blocks per CTA per pass */
    static constexpr int NW = CTA / 32;
};

static __device__ __forceinline__ void copy_table(lt_cu_qtab *dst, const lt_cu_qtab *src) {
    const int4 *s = reinterpret_cast<const int4 *>(src);
    int4 *d = reinterpret_cast<int4 *>(dst);
    for (int i = threadIdx.x; i < (int)(sizeof(lt_cu_qtab) / 16); i += blockDim.x) d[i] = s[i];
}

/* the elements of run h of this thread in its block, and whether they are one aligned vector of 4 */
template <int TPB> __device__ __forceinline__ int q_count(uint64_t len, int lane, int h) {
    const uint64_t e = (uint64_t)h * 4 * TPB + (uint64_t)lane * 4;
    return e >= len ? 0 : (len - e >= 4 ? 4 : (int)(len - e));
}

template <bool AO> __device__ __forceinline__ uint64_t q_block(const lt_cu_item *it) {
    if constexpr (AO) return it->h.ao.block;
    else return it->h.bnb.block;
}

/* Keeps the compiler from reusing values it loaded before this point for loads after it */
__device__ __forceinline__ void lt_compiler_fence() { asm volatile("" ::: "memory"); }

/* The codes of a thread's 4 elements from their words (8 bits: one byte each; 4 bits: element 2j in the
 * high nibble of byte j) */
template <int BITS> __device__ __forceinline__ void q_codes(uint32_t w1, uint32_t w2, int (&c1)[4], int (&c2)[4]) {
    if constexpr (BITS == 8) {
#pragma unroll
        for (int k = 0; k < 4; k++) c1[k] = (w1 >> (8 * k)) & 0xff, c2[k] = (w2 >> (8 * k)) & 0xff;
    } else {
        c1[0] = (w1 >> 4) & 0xf, c1[1] = w1 & 0xf, c1[2] = (w1 >> 12) & 0xf, c1[3] = (w1 >> 8) & 0xf;
        c2[0] = (w2 >> 4) & 0xf, c2[1] = w2 & 0xf, c2[2] = (w2 >> 12) & 0xf, c2[3] = (w2 >> 8) & 0xf;
    }
}

/* LT_SASS_MARK(n): an instruction that names a place in the machine code
 * (a NANOSLEEP of n), for bench/sass_count.sh: a static count of the kernels'
 * common path; nothing unless LT_SASS_MARKS is defined (never in the library). */
#if defined(LT_SASS_MARKS) && !defined(LT_CUDA_EMU)
#define LT_SASS_MARK(n) asm volatile("nanosleep.u32 %0;" ::"n"(n) : "memory")
#else
#define LT_SASS_MARK(n) ((void)0)
#endif

/* The index of the item that owns unit: the previous one's (hint) when it
 * still does, as it mostly does for a persistent CTA walking a tensor's
 * blocks, else the binary search over the items' first units. */
__device__ __forceinline__ int q_find(const lt_cu_item *items, int count, uint64_t unit, int hint) {
    const uint64_t *start = lt_cu_starts(items, count);
    if (start[hint] <= unit && (hint + 1 == count || start[hint + 1] > unit)) {
        LT_SASS_MARK(10);
        return hint;
    }
    return lt_cu_find_start(start, count, unit);
}

/* One quantization block (unit) of item it, stepped by this group of TPB
 * threads. HOT: the common cases, decided for the whole warp (q_kernel): a
 * whole block with every operand aligned for vectors, and parameter and
 * gradient both fp32 (1) or both bf16 (2, pure bf16 training; stochastic
 * rounding or not); those facts are then constants, and the step is
 * straight-line code. 3 (bnb 8-bit Adam): as 1, with the square roots and
 * divisions in their fast sequences (cu_math.h lt_cu_sqrt_nb) and one vote
 * for the block before its parameters are stored: false when it fails, the
 * block untouched, for the caller to step it with 1. 0: anything else.
 * Returns true otherwise. Each thread keeps its new states (not
 * the parameter, stored as soon as it is computed) in registers across the
 * block's absmax. */
template <int KIND, int TPB, int HOT>
__device__ __forceinline__ bool q_step(const lt_cu_item *it, uint64_t unit, int lane, int gid, const lt_cu_qtab *T0,
                                       const lt_cu_qtab *T1, const lt_cu_qfast &f1, const lt_cu_qfast &f2,
                                       uint32_t (*red)[QCfg<TPB>::NW]) {
    constexpr bool TWO = KIND != LT_CU_BNB8_LION;
    constexpr bool AO = KIND == LT_CU_AO8 || KIND == LT_CU_AO4;
    constexpr int BITS = KIND == LT_CU_AO4 ? 4 : 8;
    float m[8], v[8], pn[8]; /* pn: HOT 3's new parameters */
    int cnt[2] = {0, 0}, ok = 1;
    uint32_t a1 = 0, a2 = 0;
    uint64_t off = 0, blk = 0;
    /* the descriptor's fields, read once (stores through p could alias it otherwise) */
    void *P = nullptr;
    uint8_t *c1p = nullptr, *c2p = nullptr;
    float *s1p = nullptr, *s2p = nullptr;
    int pdt = 0, vec = 0;
    uint32_t sr = 0;
    if (it) {
        LT_SASS_MARK(1 + 10 * HOT);
        P = it->p;
        const void *Gp = it->g;
        pdt = HOT == 1 || HOT == 3 ? (int)LT_DTYPE_F32 : HOT == 2 ? (int)LT_DTYPE_BF16 : (int)it->pdt;
        const int gdt = HOT == 1 || HOT == 3 ? (int)LT_DTYPE_F32 : HOT == 2 ? (int)LT_DTYPE_BF16 : (int)it->gdt;
        vec = HOT ? 1 : it->vec;
        sr = HOT == 1 || HOT == 3 ? 0u : it->sr;
        c1p = static_cast<uint8_t *>(it->q[0]);
        s1p = static_cast<float *>(it->q[1]);
        c2p = static_cast<uint8_t *>(it->q[2]);
        s2p = static_cast<float *>(it->q[3]);
        lt_kbnb hb;
        lt_kao ha;
        if constexpr (AO) ha = it->h.ao;
        else hb = it->h.bnb;
        const uint64_t B = q_block<AO>(it), n = it->n;
        blk = unit - it->unit0;
        off = blk * B;
        const uint64_t len = HOT ? B : (n - off < B ? n - off : B);
        const float gs = it->gscale;
        const float sc1 = s1p[blk], sc2 = TWO ? s2p[blk] : 0.0f;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            cnt[h] = HOT ? 4 : q_count<TPB>(len, lane, h);
            const uint64_t i = off + (uint64_t)h * 4 * TPB + (uint64_t)lane * 4;
            float pv[4] = {0, 0, 0, 0}, gv[4] = {0, 0, 0, 0};
            int c1[4] = {0, 0, 0, 0}, c2[4] = {0, 0, 0, 0};
            if (HOT || (cnt[h] == 4 && vec)) {
                lt_ld<4>(P, pdt, i, pv);
                lt_ld<4>(Gp, gdt, i, gv);
                if (BITS == 8) {
                    LT_ALIGNED(c1p + i, 4);
                    q_codes<8>(*reinterpret_cast<const uint32_t *>(c1p + i),
                               TWO ? *reinterpret_cast<const uint32_t *>(c2p + i) : 0u, c1, c2);
                } else {
                    LT_ALIGNED(c1p + i / 2, 2);
                    q_codes<4>(*reinterpret_cast<const uint16_t *>(c1p + i / 2),
                               *reinterpret_cast<const uint16_t *>(c2p + i / 2), c1, c2);
                }
            } else {
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    if (k >= cnt[h]) break;
                    float x[1];
                    lt_ld<1>(P, pdt, i + k, x);
                    pv[k] = x[0];
                    lt_ld<1>(Gp, gdt, i + k, x);
                    gv[k] = x[0];
                    if (BITS == 8) {
                        c1[k] = c1p[i + k];
                        if (TWO) c2[k] = c2p[i + k];
                    } else {
                        uint8_t b1 = c1p[(i + k) / 2], b2 = c2p[(i + k) / 2];
                        c1[k] = ((i + k) & 1) ? (b1 & 0xf) : (b1 >> 4);
                        c2[k] = ((i + k) & 1) ? (b2 & 0xf) : (b2 >> 4);
                    }
                }
            }
            if constexpr (HOT == 3) {
                /* the Adam step with its square roots and divisions in their fast sequences; the block's
                 * parameters are stored after one vote (below) */
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    float pk = pv[k], mk = T0->map[c1[k]] * sc1, vk = T1->map[c2[k]] * sc2;
                    lt_em_bnb8_adam_nb(&hb, gs, &pk, gv[k], &mk, &vk, &ok);
                    a1 = max(a1, lt_cu_absbits(mk));
                    a2 = max(a2, lt_cu_absbits(vk));
                    pn[4 * h + k] = pk, m[4 * h + k] = mk, v[4 * h + k] = vk;
                }
            } else {
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    float mk = T0->map[c1[k]] * sc1, vk = TWO ? T1->map[c2[k]] * sc2 : 0.0f, pk = pv[k];
                    if (k < cnt[h]) {
                        if constexpr (KIND == LT_CU_BNB8_ADAM) lt_em_bnb8_adam(&hb, gs, &pk, gv[k], &mk, &vk);
                        else if constexpr (KIND == LT_CU_BNB8_LION) lt_em_bnb8_lion(&hb, gs, &pk, gv[k], &mk);
                        else lt_em_ao_adam(&ha, gs, &pk, gv[k], &mk, &vk);
                        a1 = max(a1, lt_cu_absbits(mk));
                        a2 = max(a2, lt_cu_absbits(vk));
                    }
                    pv[k] = pk, m[4 * h + k] = mk, v[4 * h + k] = vk;
                }
            }
            /* the parameter does not wait for the absmax (HOT 3's waits for the vote, below) */
            if constexpr (HOT != 3) {
                if (HOT || (cnt[h] == 4 && vec)) {
                    lt_st<4>(P, pdt, i, pv, sr);
                } else {
#pragma unroll
                    for (int k = 0; k < 4; k++) {
                        if (k >= cnt[h]) break;
                        float x[1] = {pv[k]};
                        lt_st<1>(P, pdt, i + k, x, sr);
                    }
                }
            }
        }
        if constexpr (HOT == 3) {
            /* a warp with an operand outside the fast sequences' ranges, or a gradient not finite, has stored
             * nothing: its caller steps these blocks again with the exact operations */
            if (!__all_sync(0xffffffffu, ok)) return false;
#pragma unroll
            for (int h = 0; h < 2; h++) {
                float x[4] = {pn[4 * h], pn[4 * h + 1], pn[4 * h + 2], pn[4 * h + 3]};
                lt_st<4>(P, pdt, off + (uint64_t)h * 4 * TPB + (uint64_t)lane * 4, x, sr);
            }
        }
        LT_SASS_MARK(2 + 10 * HOT);
    }
    /* the block's absmax: its TPB threads are aligned lanes of one warp, or whole warps */
#pragma unroll
    for (int o = (TPB < 32 ? TPB : 32) / 2; o > 0; o >>= 1) {
        a1 = max(a1, __shfl_xor_sync(0xffffffffu, a1, o));
        a2 = max(a2, __shfl_xor_sync(0xffffffffu, a2, o));
    }
    if constexpr (TPB > 32) {
        const int warp = threadIdx.x >> 5;
        if ((threadIdx.x & 31) == 0) red[0][warp] = a1, red[1][warp] = a2;
        __syncthreads();
        a1 = a2 = 0;
        for (int w = gid * (TPB / 32); w < (gid + 1) * (TPB / 32); w++) a1 = max(a1, red[0][w]), a2 = max(a2, red[1][w]);
        __syncthreads();
    }
    if (it) {
        LT_SASS_MARK(3 + 10 * HOT);
        float am1 = lt_cu_u2f(a1), am2 = lt_cu_u2f(a2);
        if (AO) am1 = fmaxf(am1, 1e-12f), am2 = fmaxf(am2, 1e-12f);
        if (lane == 0) {
            s1p[blk] = am1;
            if (TWO) s2p[blk] = am2;
        }
        /* one reciprocal per block: the quotients are x / amax's bits without a division per element; a
         * block of finite values with a maximum in range (every block of a healthy run) takes the
         * branch-free search, the same for all of the block's threads */
        const lt_cu_qdiv d1 = lt_cu_qdiv_make(T0, am1), d2 = lt_cu_qdiv_make(T1, TWO ? am2 : am1);
        const bool fast = lt_cu_qfast_ok(&d1, a1) && (AO || f1.sfok) && (!TWO || lt_cu_qfast_ok(&d2, a2));
        LT_SASS_MARK(4 + 10 * HOT);
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const uint64_t i = off + (uint64_t)h * 4 * TPB + (uint64_t)lane * 4;
            int c1[4], c2[4];
            if (fast) {
                LT_SASS_MARK(6 + 10 * HOT);
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    c1[k] = lt_cu_quantize_f(T0, &f1, &d1, m[4 * h + k], !AO);
                    c2[k] = TWO ? lt_cu_quantize_f(T1, &f2, &d2, v[4 * h + k], 0) : 0;
                }
                LT_SASS_MARK(7 + 10 * HOT);
            } else {
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    c1[k] = lt_cu_quantize_d(T0, &d1, m[4 * h + k], !AO);
                    c2[k] = TWO ? lt_cu_quantize_d(T1, &d2, v[4 * h + k], 0) : 0;
                }
            }
            if (HOT || (cnt[h] == 4 && vec)) {
                if (BITS == 8) {
                    *reinterpret_cast<uint32_t *>(c1p + i) =
                        (uint32_t)c1[0] | (uint32_t)c1[1] << 8 | (uint32_t)c1[2] << 16 | (uint32_t)c1[3] << 24;
                    if (TWO)
                        *reinterpret_cast<uint32_t *>(c2p + i) =
                            (uint32_t)c2[0] | (uint32_t)c2[1] << 8 | (uint32_t)c2[2] << 16 | (uint32_t)c2[3] << 24;
                } else {
                    *reinterpret_cast<uint16_t *>(c1p + i / 2) =
                        (uint16_t)(((c1[0] << 4) | c1[1]) | (((c1[2] << 4) | c1[3]) << 8));
                    *reinterpret_cast<uint16_t *>(c2p + i / 2) =
                        (uint16_t)(((c2[0] << 4) | c2[1]) | (((c2[2] << 4) | c2[3]) << 8));
                }
            } else {
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    if (k >= cnt[h]) break;
                    if (BITS == 8) {
                        c1p[i + k] = (uint8_t)c1[k];
                        if (TWO) c2p[i + k] = (uint8_t)c2[k];
                    } else { /* whole blocks of even size: both nibbles of a byte belong to this thread */
                        if (((i + k) & 1) == 0) {
                            int lo1 = k + 1 < cnt[h] ? c1[k + 1] : 0, lo2 = k + 1 < cnt[h] ? c2[k + 1] : 0;
                            c1p[(i + k) / 2] = (uint8_t)((c1[k] << 4) | lo1);
                            c2p[(i + k) / 2] = (uint8_t)((c2[k] << 4) | lo2);
                        }
                    }
                }
            }
        }
        LT_SASS_MARK(5 + 10 * HOT);
    }
    return true;
}

/* The kernel: a persistent grid, each CTA over its own run of blocks; each group of TPB threads steps one
 * quantization block per iteration (its p and g loads issued when it starts:
 * a variant that staged the next block through shared memory with cp.async
 * measured slower on an H200, 2026-11-28, bench/RESULTS.md). A warp whose
 * blocks are all common ones (q_step's HOT, fp32 or bf16) takes a
 * straight-line step; with VOTE (bnb 8-bit Adam) the fp32 one is HOT 3 where
 * the tensor's hyperparameters allow it (LT_CU_ITEM_NB). */
template <int KIND, int TPB, int MINB, int VOTE>
__global__ void __launch_bounds__(QCfg<TPB>::CTA, MINB)
    q_kernel(const lt_cu_item *__restrict__ items, int count, uint64_t nunits, const lt_cu_qtab *__restrict__ t0,
             const lt_cu_qtab *__restrict__ t1, const int *flag, int hot_ok) {
    constexpr bool TWO = KIND != LT_CU_BNB8_LION;
    constexpr bool AO = KIND == LT_CU_AO8 || KIND == LT_CU_AO4;
    constexpr int G = QCfg<TPB>::G, NW = QCfg<TPB>::NW;
    __shared__ lt_cu_qtab T[TWO ? 2 : 1];
    __shared__ uint32_t red[2][NW];
    if (lt_cu_flag_set(flag)) return;
    copy_table(&T[0], t0);
    if (TWO) copy_table(&T[TWO ? 1 : 0], t1);
    __syncthreads();
    const lt_cu_qtab *T1 = &T[TWO ? 1 : 0];
    const lt_cu_qfast f1 = lt_cu_qfast_make(&T[0]), f2 = lt_cu_qfast_make(T1);
    const int gid = threadIdx.x / TPB, lane = threadIdx.x % TPB;
    /* each CTA walks one run of consecutive blocks (a multiple of G), G at a time: the previous block's tensor
     * then owns the next block but once per tensor boundary, so q_find's binary search (a chain of dependent
     * loads) is rare; with the CTAs striding over the blocks it ran whenever the stride crossed a tensor */
    const uint64_t groups = (nunits + G - 1) / G, per = (groups + gridDim.x - 1) / gridDim.x * G;
    const uint64_t first = (uint64_t)blockIdx.x * per, last = first + per < nunits ? first + per : nunits;
    int hint = 0;
    for (uint64_t base = first; base < last; base += G) {
        LT_SASS_MARK(8);
        const uint64_t unit = base + gid;
        const lt_cu_item *it = nullptr;
        if (unit < nunits) {
            hint = q_find(items, count, unit, hint);
            it = items + hint;
        }
        if constexpr (TPB <= 32) {
            int whole = 0, pdt = -1, gdt = -2, nb = 0;
            if (it) { /* one test of each (none has a side effect) */
                whole = (it->vec != 0) & (it->n - (unit - it->unit0) * q_block<AO>(it) >= q_block<AO>(it));
                pdt = it->pdt, gdt = it->gdt;
                nb = it->flags & LT_CU_ITEM_NB;
            }
            if constexpr (VOTE) {
                if (__all_sync(0xffffffffu, whole & nb & (pdt == LT_DTYPE_F32) & (gdt == LT_DTYPE_F32)) && hot_ok) {
                    LT_SASS_MARK(29);
                    if (q_step<KIND, TPB, 3>(it, unit, lane, gid, &T[0], T1, f1, f2, red)) continue;
                    /* rare: the block again (nothing of it was stored), its operands loaded anew, not kept */
                    LT_SASS_MARK(30);
                    lt_compiler_fence();
                    q_step<KIND, TPB, 1>(it, unit, lane, gid, &T[0], T1, f1, f2, red);
                    continue;
                }
            }
            if (__all_sync(0xffffffffu, whole & (pdt == LT_DTYPE_F32) & (gdt == LT_DTYPE_F32)) && hot_ok) {
                LT_SASS_MARK(9);
                q_step<KIND, TPB, 1>(it, unit, lane, gid, &T[0], T1, f1, f2, red);
                continue;
            }
            if (__all_sync(0xffffffffu, whole & (pdt == LT_DTYPE_BF16) & (gdt == LT_DTYPE_BF16)) && hot_ok) {
                LT_SASS_MARK(19);
                q_step<KIND, TPB, 2>(it, unit, lane, gid, &T[0], T1, f1, f2, red);
                continue;
            }
        }
        q_step<KIND, TPB, 0>(it, unit, lane, gid, &T[0], T1, f1, f2, red);
    }
}

/* variant bit 0: every warp takes the general step (LT_LOWBIT_HOT=0, for timing the hot steps against it);
 * bit 1: the instantiation held to 64 registers, 4 CTAs of 256 threads per SM instead of 3 at up to 80
 * (blocks of 128 and 256 only; the default, LT_LOWBIT_REGS=80 clears it): more warps to hide the loads'
 * latency against spills, 8% faster on an H200 (2026-11-30); bit 2 with bit 1 (bnb 8-bit Adam, the same blocks):
 * that instantiation with the voted fp32 step (q_step's HOT 3, LT_LOWBIT_VOTE=1; unmeasured on a GPU so far).
 * The same results either way. */
template <int KIND, int TPB, int MINB, int VOTE>
cudaError_t launch_m(const lt_cu_item *items, int count, uint64_t nunits, const lt_cu_qtab *t0, const lt_cu_qtab *t1,
                     const int *flag, int variant, int sm_count, cudaStream_t s) {
    typedef QCfg<TPB> C;
    auto kernel = q_kernel<KIND, TPB, MINB, VOTE>;
    int per_sm = 0;
    cudaError_t e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, C::CTA, 0);
    if (e != cudaSuccess) return e;
    if (per_sm < 1) per_sm = 1;
    uint64_t want = (nunits + C::G - 1) / C::G, cap = (uint64_t)per_sm * (uint64_t)(sm_count > 0 ? sm_count : 1);
    unsigned grid = (unsigned)(want < cap ? want : cap);
    LT_LAUNCH(kernel, grid, C::CTA, 0, s)(items, count, nunits, t0, t1, flag, (variant & 1) ? 0 : 1);
    return cudaGetLastError();
}

template <int KIND, int TPB>
cudaError_t launch_t(const lt_cu_item *items, int count, uint64_t nunits, const lt_cu_qtab *t0, const lt_cu_qtab *t1,
                     const int *flag, int variant, int sm_count, cudaStream_t s) {
    constexpr int CTA = QCfg<TPB>::CTA;
    if constexpr (TPB == 16 || TPB == 32) {
        if constexpr (KIND == LT_CU_BNB8_ADAM)
            if ((variant & 6) == 6)
                return launch_m<KIND, TPB, 2048 / CTA / 2, 1>(items, count, nunits, t0, t1, flag, variant, sm_count, s);
        if (variant & 2)
            return launch_m<KIND, TPB, 2048 / CTA / 2, 0>(items, count, nunits, t0, t1, flag, variant, sm_count, s);
    }
    return launch_m<KIND, TPB, 2048 / CTA * 3 / 8, 0>(items, count, nunits, t0, t1, flag, variant, sm_count, s);
}

template <int KIND>
cudaError_t launch_k(int block, const lt_cu_item *items, int count, uint64_t nunits, const lt_cu_qtab *t0,
                     const lt_cu_qtab *t1, const int *flag, int variant, int sm_count, cudaStream_t s) {
    switch (block) {
    case 64: return launch_t<KIND, 8>(items, count, nunits, t0, t1, flag, variant, sm_count, s);
    case 128: return launch_t<KIND, 16>(items, count, nunits, t0, t1, flag, variant, sm_count, s);
    case 256: return launch_t<KIND, 32>(items, count, nunits, t0, t1, flag, variant, sm_count, s);
    case 512: return launch_t<KIND, 64>(items, count, nunits, t0, t1, flag, variant, sm_count, s);
    case 1024: return launch_t<KIND, 128>(items, count, nunits, t0, t1, flag, variant, sm_count, s);
    case 2048: return launch_t<KIND, 256>(items, count, nunits, t0, t1, flag, variant, sm_count, s);
    case 4096: return launch_t<KIND, 512>(items, count, nunits, t0, t1, flag, variant, sm_count, s);
    default: return cudaErrorInvalidValue;
    }
}

} // namespace lt_lowbit

#endif
