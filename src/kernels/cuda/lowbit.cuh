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

/* What a thread keeps in registers of its unit (one quantization block):
 * the descriptor, and where its block's codes and scales are not staged in
 * shared memory, the codes of its 8 elements (two runs of 4; zero where a run
 * is not one aligned vector of 4; 4-bit codes: both runs in w1[0] and w2[0])
 * and the block's two scales. it is null past the last unit. */
struct QPre {
    const lt_cu_item *it;
    uint32_t w1[2], w2[2];
    float sc1, sc2;
};

/* One thread's slots of the pipelined kernel's two stages in dynamic shared
 * memory: per stage, 4 float4 (p run 0, p run 1, g run 0, g run 1; a 16-bit
 * dtype fills half of each) and 6 words (8-bit codes of m run 0, run 1, of v
 * run 0, run 1, then the scales of m and v). Slot j of stage s is
 * f[(4 s + j) CTA] and u[(6 s + j) CTA], so that a warp's accesses to one slot
 * are consecutive: no bank conflicts. */
struct QSlots {
    float4 *f;
    uint32_t *u;
};
template <int TPB> struct QStage {
    static constexpr int CTA = QCfg<TPB>::CTA;
    static constexpr size_t bytes = 2 * (size_t)CTA * (4 * sizeof(float4) + 6 * sizeof(uint32_t));
    static __device__ __forceinline__ QSlots at(void *dyn, int s) {
        float4 *f = static_cast<float4 *>(dyn);
        uint32_t *u = reinterpret_cast<uint32_t *>(f + 8 * CTA);
        return QSlots{f + 4 * s * CTA + threadIdx.x, u + 6 * s * CTA + threadIdx.x};
    }
};

/* the elements of run h of this thread in its block, and whether they are one aligned vector of 4 */
template <int TPB> __device__ __forceinline__ int q_count(uint64_t len, int lane, int h) {
    const uint64_t e = (uint64_t)h * 4 * TPB + (uint64_t)lane * 4;
    return e >= len ? 0 : (len - e >= 4 ? 4 : (int)(len - e));
}

template <bool AO> __device__ __forceinline__ uint64_t q_block(const lt_cu_item *it) {
    if constexpr (AO) return it->h.ao.block;
    else return it->h.bnb.block;
}

/* Fills pre for unit. With st (the pipelined kernel), queues the copies of
 * the unit's p and g runs, 8-bit codes and scales into the slots st instead
 * of loading codes and scales into pre (4-bit codes, 2 bytes a run, stay in
 * pre: cp.async moves 4 bytes or more). */
template <int KIND, int TPB>
__device__ __forceinline__ void q_prepare(const lt_cu_item *items, int count, uint64_t nunits, uint64_t unit, int lane,
                                          const QSlots *st, QPre &pre) {
    constexpr bool TWO = KIND != LT_CU_BNB8_LION, AO = KIND == LT_CU_AO8 || KIND == LT_CU_AO4;
    constexpr int BITS = KIND == LT_CU_AO4 ? 4 : 8, CTA = QCfg<TPB>::CTA;
    pre.it = nullptr;
    pre.w1[0] = pre.w1[1] = pre.w2[0] = pre.w2[1] = 0;
    pre.sc1 = pre.sc2 = 0.0f;
    if (unit >= nunits) return;
    const lt_cu_item *it = items + lt_cu_find_start(lt_cu_starts(items, count), count, unit);
    const uint64_t B = q_block<AO>(it), blk = unit - it->unit0, off = blk * B, n = it->n;
    const uint64_t len = n - off < B ? n - off : B;
    const uint8_t *c1p = static_cast<const uint8_t *>(it->q[0]), *c2p = static_cast<const uint8_t *>(it->q[2]);
    const float *s1p = static_cast<const float *>(it->q[1]), *s2p = static_cast<const float *>(it->q[3]);
    const int vec = it->vec;
    pre.it = it;
    if (st) {
        lt_cp_async<4>(&st->u[4 * CTA], s1p + blk);
        if (TWO) lt_cp_async<4>(&st->u[5 * CTA], s2p + blk);
    } else {
        pre.sc1 = s1p[blk];
        if (TWO) pre.sc2 = s2p[blk];
    }
#pragma unroll
    for (int h = 0; h < 2; h++) {
        if (!(q_count<TPB>(len, lane, h) == 4 && vec)) continue;
        const uint64_t i = off + (uint64_t)h * 4 * TPB + (uint64_t)lane * 4;
        if (BITS == 8) {
            LT_ALIGNED(c1p + i, 4);
            if (st) {
                lt_cp_async<4>(&st->u[h * CTA], c1p + i);
                if (TWO) lt_cp_async<4>(&st->u[(2 + h) * CTA], c2p + i);
            } else {
                pre.w1[h] = *reinterpret_cast<const uint32_t *>(c1p + i);
                if (TWO) pre.w2[h] = *reinterpret_cast<const uint32_t *>(c2p + i);
            }
        } else {
            LT_ALIGNED(c1p + i / 2, 2); /* both runs' 16 bits in one word: run h at bit 16 h */
            pre.w1[0] |= (uint32_t)*reinterpret_cast<const uint16_t *>(c1p + i / 2) << (16 * h);
            pre.w2[0] |= (uint32_t)*reinterpret_cast<const uint16_t *>(c2p + i / 2) << (16 * h);
        }
        if (st) {
            const char *P = static_cast<const char *>(it->p), *G = static_cast<const char *>(it->g);
            if (it->pdt == LT_DTYPE_F32) lt_cp_async<16>(&st->f[h * CTA], P + i * 4);
            else lt_cp_async<8>(&st->f[h * CTA], P + i * 2);
            if (it->gdt == LT_DTYPE_F32) lt_cp_async<16>(&st->f[(2 + h) * CTA], G + i * 4);
            else lt_cp_async<8>(&st->f[(2 + h) * CTA], G + i * 2);
        }
    }
}

/* The kernel: a persistent grid; each group of TPB threads steps one
 * quantization block per iteration. PIPE: the p, g, 8-bit codes and scales of
 * the group's next block travel into shared memory (cp.async, QStage) while
 * this one computes, so that every warp keeps a block's loads in flight
 * through its arithmetic; without PIPE each block's loads are issued when it
 * starts. The same operations on the same values either way: the results are
 * identical bits. */
template <int KIND, int TPB, bool PIPE>
__global__ void __launch_bounds__(QCfg<TPB>::CTA, 2048 / QCfg<TPB>::CTA * 3 / 8)
    q_kernel(const lt_cu_item *__restrict__ items, int count, uint64_t nunits, const lt_cu_qtab *__restrict__ t0,
             const lt_cu_qtab *__restrict__ t1, const int *flag) {
    constexpr bool TWO = KIND != LT_CU_BNB8_LION;
    constexpr bool AO = KIND == LT_CU_AO8 || KIND == LT_CU_AO4;
    constexpr int BITS = KIND == LT_CU_AO4 ? 4 : 8;
    constexpr int G = QCfg<TPB>::G, NW = QCfg<TPB>::NW, CTA = QCfg<TPB>::CTA;
    __shared__ lt_cu_qtab T[TWO ? 2 : 1];
    __shared__ uint32_t red[2][NW];
    if (lt_cu_flag_set(flag)) return;
    copy_table(&T[0], t0);
    if (TWO) copy_table(&T[TWO ? 1 : 0], t1);
    __syncthreads();
    const lt_cu_qtab *T1 = &T[TWO ? 1 : 0];
    const int gid = threadIdx.x / TPB, lane = threadIdx.x % TPB;
    const uint64_t stride = (uint64_t)gridDim.x * G;
    void *dyn = nullptr;
    QPre cur;
    if constexpr (PIPE) {
        LT_DYN_SMEM(float4, dyn4);
        dyn = dyn4;
        const QSlots first = QStage<TPB>::at(dyn, 0);
        q_prepare<KIND, TPB>(items, count, nunits, (uint64_t)blockIdx.x * G + gid, lane, &first, cur);
        lt_cp_commit();
    }
    int stg = 0; /* the stage that holds this iteration's block */
    for (uint64_t base = (uint64_t)blockIdx.x * G; base < nunits; base += stride, stg ^= 1) {
        QPre nxt; /* PIPE: the next iteration's block */
        QSlots st{nullptr, nullptr};
        if constexpr (PIPE) {
            const QSlots next = QStage<TPB>::at(dyn, stg ^ 1);
            q_prepare<KIND, TPB>(items, count, nunits, base + stride + gid, lane, &next, nxt);
            lt_cp_commit();
            lt_cp_wait<1>(); /* this block's copies have landed, the next block's are in flight */
            st = QStage<TPB>::at(dyn, stg);
        } else {
            q_prepare<KIND, TPB>(items, count, nunits, base + gid, lane, nullptr, cur);
        }
        const lt_cu_item *it = cur.it;
        float p[8], m[8], v[8];
        int cnt[2] = {0, 0};
        uint32_t a1 = 0, a2 = 0;
        uint64_t off = 0, blk = 0;
        /* the descriptor's fields, read once (stores through p could alias it otherwise) */
        void *P = nullptr;
        uint8_t *c1p = nullptr, *c2p = nullptr;
        float *s1p = nullptr, *s2p = nullptr;
        int pdt = 0, vec = 0;
        uint32_t sr = 0;
        if (it) {
            P = it->p;
            const void *Gp = it->g;
            pdt = it->pdt;
            const int gdt = it->gdt;
            vec = it->vec;
            sr = it->sr;
            c1p = static_cast<uint8_t *>(it->q[0]);
            s1p = static_cast<float *>(it->q[1]);
            c2p = static_cast<uint8_t *>(it->q[2]);
            s2p = static_cast<float *>(it->q[3]);
            lt_kbnb hb;
            lt_kao ha;
            if constexpr (AO) ha = it->h.ao;
            else hb = it->h.bnb;
            const uint64_t B = q_block<AO>(it), n = it->n;
            blk = base + gid - it->unit0;
            off = blk * B;
            const uint64_t len = n - off < B ? n - off : B;
            const float gs = it->gscale;
            float sc1 = cur.sc1, sc2 = cur.sc2;
            if constexpr (PIPE) {
                sc1 = lt_cu_u2f(st.u[4 * CTA]);
                if (TWO) sc2 = lt_cu_u2f(st.u[5 * CTA]);
            }
#pragma unroll
            for (int h = 0; h < 2; h++) {
                cnt[h] = q_count<TPB>(len, lane, h);
                const uint64_t i = off + (uint64_t)h * 4 * TPB + (uint64_t)lane * 4;
                float pv[4] = {0, 0, 0, 0}, gv[4] = {0, 0, 0, 0};
                int c1[4] = {0, 0, 0, 0}, c2[4] = {0, 0, 0, 0};
                if (cnt[h] == 4 && vec) {
                    if constexpr (PIPE) {
                        lt_ld<4>(&st.f[h * CTA], pdt, 0, pv);
                        lt_ld<4>(&st.f[(2 + h) * CTA], gdt, 0, gv);
                    } else {
                        lt_ld<4>(P, pdt, i, pv);
                        lt_ld<4>(Gp, gdt, i, gv);
                    }
                    uint32_t w1 = cur.w1[h], w2 = cur.w2[h];
                    if (BITS == 4) {
                        w1 = cur.w1[0] >> (16 * h), w2 = cur.w2[0] >> (16 * h);
                    } else if (PIPE) {
                        w1 = st.u[h * CTA];
                        if (TWO) w2 = st.u[(2 + h) * CTA];
                    }
                    if (BITS == 8) {
#pragma unroll
                        for (int k = 0; k < 4; k++) c1[k] = (w1 >> (8 * k)) & 0xff, c2[k] = (w2 >> (8 * k)) & 0xff;
                    } else { /* element 2j in the high nibble */
                        c1[0] = (w1 >> 4) & 0xf, c1[1] = w1 & 0xf, c1[2] = (w1 >> 12) & 0xf, c1[3] = (w1 >> 8) & 0xf;
                        c2[0] = (w2 >> 4) & 0xf, c2[1] = w2 & 0xf, c2[2] = (w2 >> 12) & 0xf, c2[3] = (w2 >> 8) & 0xf;
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
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    float mk = T[0].map[c1[k]] * sc1, vk = TWO ? T1->map[c2[k]] * sc2 : 0.0f, pk = pv[k];
                    if (k < cnt[h]) {
                        if constexpr (KIND == LT_CU_BNB8_ADAM) lt_em_bnb8_adam(&hb, gs, &pk, gv[k], &mk, &vk);
                        else if constexpr (KIND == LT_CU_BNB8_LION) lt_em_bnb8_lion(&hb, gs, &pk, gv[k], &mk);
                        else lt_em_ao_adam(&ha, gs, &pk, gv[k], &mk, &vk);
                        a1 = max(a1, lt_cu_absbits(mk));
                        a2 = max(a2, lt_cu_absbits(vk));
                    }
                    p[4 * h + k] = pk, m[4 * h + k] = mk, v[4 * h + k] = vk;
                }
            }
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
            float am1 = lt_cu_u2f(a1), am2 = lt_cu_u2f(a2);
            if (AO) am1 = fmaxf(am1, 1e-12f), am2 = fmaxf(am2, 1e-12f);
            /* one reciprocal per block: the quotients are x / amax's bits without a division per element */
            const lt_cu_qdiv d1 = lt_cu_qdiv_make(&T[0], am1), d2 = lt_cu_qdiv_make(T1, TWO ? am2 : am1);
            if (lane == 0) {
                s1p[blk] = am1;
                if (TWO) s2p[blk] = am2;
            }
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const uint64_t i = off + (uint64_t)h * 4 * TPB + (uint64_t)lane * 4;
                int c1[4], c2[4];
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    c1[k] = lt_cu_quantize_d(&T[0], &d1, m[4 * h + k], !AO);
                    c2[k] = TWO ? lt_cu_quantize_d(T1, &d2, v[4 * h + k], 0) : 0;
                }
                float pv[4] = {p[4 * h], p[4 * h + 1], p[4 * h + 2], p[4 * h + 3]};
                if (cnt[h] == 4 && vec) {
                    lt_st<4>(P, pdt, i, pv, sr);
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
                        float x[1] = {pv[k]};
                        lt_st<1>(P, pdt, i + k, x, sr);
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
        }
        if constexpr (PIPE) cur = nxt;
        else (void)nxt;
    }
}

template <int KIND, int TPB, bool PIPE>
cudaError_t launch_t(const lt_cu_item *items, int count, uint64_t nunits, const lt_cu_qtab *t0, const lt_cu_qtab *t1,
                     const int *flag, int sm_count, cudaStream_t s) {
    typedef QCfg<TPB> C;
    auto kernel = q_kernel<KIND, TPB, PIPE>;
    const size_t dyn = PIPE ? QStage<TPB>::bytes : 0;
    cudaError_t e = cudaSuccess;
    if (PIPE) { /* 45 KB for CTAs of 256, 90 KB for 512 (4096-element blocks): past 48 KB it must be asked for */
        e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)dyn);
        if (e != cudaSuccess) return e;
    }
    int per_sm = 0;
    e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, C::CTA, dyn);
    if (e != cudaSuccess) return e;
    if (per_sm < 1) per_sm = 1;
    uint64_t want = (nunits + C::G - 1) / C::G, cap = (uint64_t)per_sm * (uint64_t)(sm_count > 0 ? sm_count : 1);
    unsigned grid = (unsigned)(want < cap ? want : cap);
    LT_LAUNCH(kernel, grid, C::CTA, dyn, s)(items, count, nunits, t0, t1, flag);
    return cudaGetLastError();
}

template <int KIND, bool PIPE>
cudaError_t launch_p(int block, const lt_cu_item *items, int count, uint64_t nunits, const lt_cu_qtab *t0,
                     const lt_cu_qtab *t1, const int *flag, int sm_count, cudaStream_t s) {
    switch (block) {
    case 64: return launch_t<KIND, 8, PIPE>(items, count, nunits, t0, t1, flag, sm_count, s);
    case 128: return launch_t<KIND, 16, PIPE>(items, count, nunits, t0, t1, flag, sm_count, s);
    case 256: return launch_t<KIND, 32, PIPE>(items, count, nunits, t0, t1, flag, sm_count, s);
    case 512: return launch_t<KIND, 64, PIPE>(items, count, nunits, t0, t1, flag, sm_count, s);
    case 1024: return launch_t<KIND, 128, PIPE>(items, count, nunits, t0, t1, flag, sm_count, s);
    case 2048: return launch_t<KIND, 256, PIPE>(items, count, nunits, t0, t1, flag, sm_count, s);
    case 4096: return launch_t<KIND, 512, PIPE>(items, count, nunits, t0, t1, flag, sm_count, s);
    default: return cudaErrorInvalidValue;
    }
}

template <int KIND>
cudaError_t launch_k(int block, int pipe, const lt_cu_item *items, int count, uint64_t nunits, const lt_cu_qtab *t0,
                     const lt_cu_qtab *t1, const int *flag, int sm_count, cudaStream_t s) {
    return pipe ? launch_p<KIND, true>(block, items, count, nunits, t0, t1, flag, sm_count, s)
                : launch_p<KIND, false>(block, items, count, nunits, t0, t1, flag, sm_count, s);
}

} // namespace lt_lowbit

#endif
