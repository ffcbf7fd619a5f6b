/* Multi-tensor elementwise optimizer kernels and the found-inf check.
 *
 * One CTA per unit of LT_CU_CHUNK elements of one tensor (the grid is the sum
 * of every listed tensor's units, so one launch steps all of them); a thread
 * handles 4 consecutive elements per iteration with one 16-byte load per f32
 * operand (8 bytes for bf16/f16) when the tensor's operands are aligned, and
 * a scalar tail. The per-element math is cu_math.h (the CPU's formulas). */
#include "kernels/cuda/cu_internal.cuh"

namespace {

/* The operands of one tensor, read once from the descriptor into registers. */
struct Ops {
    void *p;
    const void *g;
    void *s[4];
    int pdt, gdt, sdt[4];
    float gs;
    uint32_t sr;
};

__device__ __forceinline__ Ops load_ops(const lt_cu_item *it) {
    Ops o;
    o.p = it->p;
    o.g = it->g;
    o.pdt = it->pdt;
    o.gdt = it->gdt;
    o.gs = it->gscale;
    o.sr = it->sr;
#pragma unroll
    for (int k = 0; k < 4; k++) o.s[k] = it->s[k], o.sdt[k] = it->sdt[k];
    return o;
}

/* The scalars of each kind. */
template <int KIND> struct Scal;
template <> struct Scal<LT_CU_ADAM> { typedef lt_kadam T; __device__ static T get(const lt_cu_item *it) { return it->h.adam; } };
template <> struct Scal<LT_CU_ANYPREC> { typedef lt_kanyprec T; __device__ static T get(const lt_cu_item *it) { return it->h.anyprec; } };
template <> struct Scal<LT_CU_SGD> { typedef lt_ksgd T; __device__ static T get(const lt_cu_item *it) { return it->h.sgd; } };
template <> struct Scal<LT_CU_ADAGRAD> { typedef lt_kadagrad T; __device__ static T get(const lt_cu_item *it) { return it->h.adagrad; } };
template <> struct Scal<LT_CU_RMSPROP> { typedef lt_krmsprop T; __device__ static T get(const lt_cu_item *it) { return it->h.rmsprop; } };
template <> struct Scal<LT_CU_LION> { typedef lt_klion T; __device__ static T get(const lt_cu_item *it) { return it->h.lion; } };
template <> struct Scal<LT_CU_BNB32_ADAM> { typedef lt_kbnb T; __device__ static T get(const lt_cu_item *it) { return it->h.bnb; } };
template <> struct Scal<LT_CU_BNB32_LION> { typedef lt_kbnb T; __device__ static T get(const lt_cu_item *it) { return it->h.bnb; } };
template <> struct Scal<LT_CU_AO_PLAIN> { typedef lt_kao T; __device__ static T get(const lt_cu_item *it) { return it->h.ao; } };

/* W elements starting at i: load, step, store. */
template <int KIND, int W>
__device__ __forceinline__ void step_elems(const Ops &o, const typename Scal<KIND>::T &h, uint64_t i) {
    float p[W], g[W], s0[W], s1[W], s2[W];
#pragma unroll
    for (int j = 0; j < W; j++) s0[j] = s1[j] = s2[j] = 0.0f;
    lt_ld<W>(o.p, o.pdt, i, p);
    lt_ld<W>(o.g, o.gdt, i, g);
    if (o.s[0]) lt_ld<W>(o.s[0], o.sdt[0], i, s0);
    if (o.s[1]) lt_ld<W>(o.s[1], o.sdt[1], i, s1);
    if (o.s[2]) lt_ld<W>(o.s[2], o.sdt[2], i, s2);
    /* the optional states are picked by branches outside the element calls: a
     * pointer chosen at run time would move the arrays to local memory */
#pragma unroll
    for (int j = 0; j < W; j++) {
        if constexpr (KIND == LT_CU_ADAM) {
            if (o.s[2]) lt_em_adam(&h, o.gs, &p[j], g[j], &s0[j], &s1[j], &s2[j]);
            else lt_em_adam(&h, o.gs, &p[j], g[j], &s0[j], &s1[j], nullptr);
        } else if constexpr (KIND == LT_CU_ANYPREC) {
            if (o.s[2])
                lt_em_anyprec(&h, o.gs, o.pdt, o.sdt[0], o.sdt[1], o.sdt[2], &p[j], g[j], &s0[j], &s1[j], &s2[j]);
            else lt_em_anyprec(&h, o.gs, o.pdt, o.sdt[0], o.sdt[1], o.sdt[2], &p[j], g[j], &s0[j], &s1[j], nullptr);
        } else if constexpr (KIND == LT_CU_SGD) {
            if (o.s[0]) lt_em_sgd(&h, o.gs, &p[j], g[j], &s0[j]);
            else lt_em_sgd(&h, o.gs, &p[j], g[j], nullptr);
        } else if constexpr (KIND == LT_CU_ADAGRAD) {
            lt_em_adagrad(&h, o.gs, &p[j], g[j], &s0[j]);
        } else if constexpr (KIND == LT_CU_RMSPROP) {
            if (o.s[1] && o.s[2]) lt_em_rmsprop(&h, o.gs, &p[j], g[j], &s0[j], &s1[j], &s2[j]);
            else if (o.s[1]) lt_em_rmsprop(&h, o.gs, &p[j], g[j], &s0[j], &s1[j], nullptr);
            else if (o.s[2]) lt_em_rmsprop(&h, o.gs, &p[j], g[j], &s0[j], nullptr, &s2[j]);
            else lt_em_rmsprop(&h, o.gs, &p[j], g[j], &s0[j], nullptr, nullptr);
        } else if constexpr (KIND == LT_CU_LION) {
            lt_em_lion(&h, o.gs, &p[j], g[j], &s0[j]);
        } else if constexpr (KIND == LT_CU_BNB32_ADAM) {
            lt_em_bnb32_adam(&h, o.gs, &p[j], g[j], &s0[j], &s1[j]);
        } else if constexpr (KIND == LT_CU_BNB32_LION) {
            lt_em_bnb32_lion(&h, o.gs, &p[j], g[j], &s0[j]);
        } else {
            lt_em_ao_plain(&h, o.gs, o.sdt[0], &p[j], g[j], &s0[j], &s1[j]);
        }
    }
    lt_st<W>(o.p, o.pdt, i, p, o.sr);
    if (o.s[0]) lt_st<W>(o.s[0], o.sdt[0], i, s0, 0);
    if (o.s[1]) lt_st<W>(o.s[1], o.sdt[1], i, s1, 0);
    if (o.s[2]) lt_st<W>(o.s[2], o.sdt[2], i, s2, 0);
}

template <int KIND>
__global__ void __launch_bounds__(LT_CU_THREADS) ew_kernel(const lt_cu_item *__restrict__ items, int count,
                                                           const int *flag) {
    if (lt_cu_flag_set(flag)) return;
    const uint64_t unit = blockIdx.x;
    const lt_cu_item *it = items + lt_cu_find_start(lt_cu_starts(items, count), count, unit);
    uint64_t lo, hi;
    lt_cu_chunk_range(it->n, unit - it->unit0, &lo, &hi);
    const Ops o = load_ops(it);
    const typename Scal<KIND>::T h = Scal<KIND>::get(it);
    uint64_t vhi = lo;
    if (it->vec) {
        vhi = lo + ((hi - lo) & ~(uint64_t)3);
        for (uint64_t i = lo + 4 * (uint64_t)threadIdx.x; i < vhi; i += 4 * LT_CU_THREADS) step_elems<KIND, 4>(o, h, i);
    }
    for (uint64_t i = vhi + threadIdx.x; i < hi; i += LT_CU_THREADS) step_elems<KIND, 1>(o, h, i);
}

/* ORs into *flag whether any g * gscale of the listed tensors is inf or NaN. */
__global__ void __launch_bounds__(LT_CU_THREADS) check_kernel(const lt_cu_item *__restrict__ items, int count,
                                                              int *flag) {
    /* Already set: the step is skipped anyway. Other CTAs of this launch may set the flag while this one reads it,
     * so its threads could see different values: they vote, and all return or none (the barrier below needs
     * every thread of the CTA). */
    if (__syncthreads_or(lt_cu_flag_set(flag))) return;
    const uint64_t unit = blockIdx.x;
    const lt_cu_item *it = items + lt_cu_find_start(lt_cu_starts(items, count), count, unit);
    uint64_t lo, hi;
    lt_cu_chunk_range(it->n, unit - it->unit0, &lo, &hi);
    const void *g = it->g;
    const int gdt = it->gdt;
    const float gs = it->gscale;
    int bad = 0;
    uint64_t vhi = lo;
    if (it->vec) {
        vhi = lo + ((hi - lo) & ~(uint64_t)3);
        for (uint64_t i = lo + 4 * (uint64_t)threadIdx.x; i < vhi; i += 4 * LT_CU_THREADS) {
            float x[4];
            lt_ld<4>(g, gdt, i, x);
#pragma unroll
            for (int j = 0; j < 4; j++) bad |= !(fabsf(x[j] * gs) <= LT_CU_FLT_MAX);
        }
    }
    for (uint64_t i = vhi + threadIdx.x; i < hi; i += LT_CU_THREADS) {
        float x[1];
        lt_ld<1>(g, gdt, i, x);
        bad |= !(fabsf(x[0] * gs) <= LT_CU_FLT_MAX);
    }
    if (__syncthreads_or(bad) && threadIdx.x == 0) atomicOr(flag, 1);
}

template <int KIND>
cudaError_t launch(const lt_cu_item *items, int count, uint64_t nunits, const int *flag, cudaStream_t s) {
    auto kernel = ew_kernel<KIND>;
    LT_LAUNCH(kernel, (unsigned)nunits, LT_CU_THREADS, 0, s)(items, count, flag);
    return cudaGetLastError();
}

} // namespace

cudaError_t lt_cu_launch_ew(int kind, const lt_cu_item *items, int count, uint64_t nunits, const int *flag,
                            cudaStream_t s) {
    if (nunits == 0) return cudaSuccess;
    if (nunits > 0x7fffffffull) return cudaErrorInvalidConfiguration;
    switch (kind) {
    case LT_CU_ADAM: return launch<LT_CU_ADAM>(items, count, nunits, flag, s);
    case LT_CU_ANYPREC: return launch<LT_CU_ANYPREC>(items, count, nunits, flag, s);
    case LT_CU_SGD: return launch<LT_CU_SGD>(items, count, nunits, flag, s);
    case LT_CU_ADAGRAD: return launch<LT_CU_ADAGRAD>(items, count, nunits, flag, s);
    case LT_CU_RMSPROP: return launch<LT_CU_RMSPROP>(items, count, nunits, flag, s);
    case LT_CU_LION: return launch<LT_CU_LION>(items, count, nunits, flag, s);
    case LT_CU_BNB32_ADAM: return launch<LT_CU_BNB32_ADAM>(items, count, nunits, flag, s);
    case LT_CU_BNB32_LION: return launch<LT_CU_BNB32_LION>(items, count, nunits, flag, s);
    case LT_CU_AO_PLAIN: return launch<LT_CU_AO_PLAIN>(items, count, nunits, flag, s);
    default: return cudaErrorInvalidValue;
    }
}

cudaError_t lt_cu_launch_check(const lt_cu_item *items, int count, uint64_t nunits, int *flag, cudaStream_t s) {
    if (nunits == 0) return cudaSuccess;
    if (nunits > 0x7fffffffull) return cudaErrorInvalidConfiguration;
    LT_LAUNCH(check_kernel, (unsigned)nunits, LT_CU_THREADS, 0, s)(items, count, flag);
    return cudaGetLastError();
}
