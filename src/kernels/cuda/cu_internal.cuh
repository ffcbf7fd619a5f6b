/* Shared by the .cu files of the CUDA backend: typed loads and stores of
 * f32/bf16/f16 operands (4-wide vector or scalar), the launchers each kernel
 * file provides to context.cu, and small reductions. */
#ifndef LT_KERNELS_CUDA_CU_INTERNAL_CUH
#define LT_KERNELS_CUDA_CU_INTERNAL_CUH

#include <cuda_runtime.h>
#include <stdint.h>

#include "kernels/cuda/cu_plan.h"

static_assert(sizeof(lt_cu_qtab) % 16 == 0, "the table is copied to shared memory in 16-byte pieces");

/* Launches and dynamic shared memory go through these two macros so that
 * tests/emu (a CPU emulation of the CUDA runtime and thread model, LT_CUDA_EMU)
 * can run the same kernel sources on the host. */
#ifdef LT_CUDA_EMU
#define LT_LAUNCH(kernel, grid, block, smem, stream) lt_emu_launch(kernel, (grid), (block), (smem), (stream))
#define LT_DYN_SMEM(type, name) type *name = static_cast<type *>(lt_emu_dyn_smem())
#define LT_ALIGNED(ptr, bytes) lt_emu_check_aligned((const void *)(ptr), (bytes))
#else
#define LT_LAUNCH(kernel, grid, block, smem, stream) kernel<<<(grid), (block), (smem), (stream)>>>
#define LT_DYN_SMEM(type, name) extern __shared__ type name[]
#define LT_ALIGNED(ptr, bytes) ((void)0)
#endif

/* Asynchronous copies from global into shared memory (cp.async, sm_80 and
 * later): lt_cp_async<N> queues N bytes (4, 8 or 16; both addresses aligned
 * to N), lt_cp_commit closes the thread's current group of copies, and
 * lt_cp_wait<K> returns when at most K of the thread's committed groups are
 * still in flight: only then may the thread read what they wrote (another
 * thread needs a barrier after that as well). The PTX is written here, with
 * "memory" clobbers on all three, so that the compiler keeps every shared
 * memory access on its side of a wait. tests/emu runs the copies at the wait. */
#ifdef LT_CUDA_EMU
template <int N> inline void lt_cp_async(void *dst, const void *src) { lt_emu_cp_async(dst, src, N); }
inline void lt_cp_commit() { lt_emu_cp_commit(); }
template <int K> inline void lt_cp_wait() { lt_emu_cp_wait(K); }
#else
template <int N> __device__ __forceinline__ void lt_cp_async(void *dst, const void *src) {
    static_assert(N == 4 || N == 8 || N == 16, "cp.async copies 4, 8 or 16 bytes");
    const unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    if constexpr (N == 16) asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(d), "l"(src) : "memory");
    else asm volatile("cp.async.ca.shared.global [%0], [%1], %2;" ::"r"(d), "l"(src), "n"(N) : "memory");
}
__device__ __forceinline__ void lt_cp_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int K> __device__ __forceinline__ void lt_cp_wait() {
    asm volatile("cp.async.wait_group %0;" ::"n"(K) : "memory");
}
#endif

/* The found-inf flag, read past the caches (an earlier kernel wrote it). */
__device__ __forceinline__ int lt_cu_flag_set(const int *flag) {
    return flag != nullptr && *(const volatile int *)flag != 0;
}

/* W consecutive elements of a float array of dtype dt starting at element i
 * (W = 4 needs 4-element alignment). */
template <int W>
__device__ __forceinline__ void lt_ld(const void *base, int dt, uint64_t i, float (&o)[W]) {
    if constexpr (W == 4) {
        LT_ALIGNED(static_cast<const char *>(base) + i * (dt == LT_DTYPE_F32 ? 4 : 2), dt == LT_DTYPE_F32 ? 16 : 8);
        if (dt == LT_DTYPE_F32) {
            float4 x = *reinterpret_cast<const float4 *>(static_cast<const float *>(base) + i);
            o[0] = x.x, o[1] = x.y, o[2] = x.z, o[3] = x.w;
        } else {
            uint2 x = *reinterpret_cast<const uint2 *>(static_cast<const uint16_t *>(base) + i);
            uint16_t h[4] = {(uint16_t)(x.x & 0xffffu), (uint16_t)(x.x >> 16), (uint16_t)(x.y & 0xffffu),
                             (uint16_t)(x.y >> 16)};
#pragma unroll
            for (int j = 0; j < W; j++) o[j] = dt == LT_DTYPE_BF16 ? lt_cu_bf16_to_f32(h[j]) : lt_cu_f16_to_f32(h[j]);
        }
    } else {
#pragma unroll
        for (int j = 0; j < W; j++) {
            if (dt == LT_DTYPE_F32) o[j] = static_cast<const float *>(base)[i + j];
            else if (dt == LT_DTYPE_BF16) o[j] = lt_cu_bf16_to_f32(static_cast<const uint16_t *>(base)[i + j]);
            else o[j] = lt_cu_f16_to_f32(static_cast<const uint16_t *>(base)[i + j]);
        }
    }
}

/* Rounds once to dt: nearest even, or stochastically (bf16 with sr != 0) with the bits of element i. */
__device__ __forceinline__ uint16_t lt_cu_to16(float x, int dt, uint32_t sr, uint64_t i) {
    if (dt == LT_DTYPE_BF16) return sr ? lt_cu_f32_to_bf16_sr(x, lt_sr_bits(sr, i)) : lt_cu_f32_to_bf16(x);
    return lt_cu_f32_to_f16(x);
}

template <int W>
__device__ __forceinline__ void lt_st(void *base, int dt, uint64_t i, const float (&x)[W], uint32_t sr) {
    if constexpr (W == 4) {
        LT_ALIGNED(static_cast<const char *>(base) + i * (dt == LT_DTYPE_F32 ? 4 : 2), dt == LT_DTYPE_F32 ? 16 : 8);
        if (dt == LT_DTYPE_F32) {
            *reinterpret_cast<float4 *>(static_cast<float *>(base) + i) = make_float4(x[0], x[1], x[2], x[3]);
        } else {
            uint2 y;
            y.x = (uint32_t)lt_cu_to16(x[0], dt, sr, i) | ((uint32_t)lt_cu_to16(x[1], dt, sr, i + 1) << 16);
            y.y = (uint32_t)lt_cu_to16(x[2], dt, sr, i + 2) | ((uint32_t)lt_cu_to16(x[3], dt, sr, i + 3) << 16);
            *reinterpret_cast<uint2 *>(static_cast<uint16_t *>(base) + i) = y;
        }
    } else {
#pragma unroll
        for (int j = 0; j < W; j++) {
            if (dt == LT_DTYPE_F32) static_cast<float *>(base)[i + j] = x[j];
            else static_cast<uint16_t *>(base)[i + j] = lt_cu_to16(x[j], dt, sr, i + j);
        }
    }
}

/* use(j, load(j)) for j = i, i + step, ... below end, in that order, with the loads going N at a time ahead of
 * their uses: a thread whose uses form a chain (a running sum) waits out one memory latency per N values instead
 * of one per value (Adafactor's final pass, the GPT-2 layers' column sums). load is called once per j, in
 * increasing j, so it may keep state that follows j (Adafactor's apply pass advances a row and column). */
template <int N = 8, typename L, typename U>
__device__ __forceinline__ void lt_cu_loads_ahead(uint64_t i, uint64_t end, uint64_t step, L load, U use) {
    for (; i + (N - 1) * step < end; i += N * step) {
        decltype(load(i)) v[N];
#pragma unroll
        for (int k = 0; k < N; k++) v[k] = load(i + k * step);
#pragma unroll
        for (int k = 0; k < N; k++) use(i + k * step, v[k]);
    }
    for (; i < end; i += step) use(i, load(i));
}

/* x[i] + x[i + step] + ... below end, added in that order into an A (float or double), the loads 8 ahead */
template <typename A, typename T>
__device__ __forceinline__ A lt_cu_ordered_sum(const T *x, uint64_t i, uint64_t end, uint64_t step) {
    A s = 0;
    lt_cu_loads_ahead(i, end, step, [&](uint64_t j) { return x[j]; }, [&](uint64_t, T v) { s += v; });
    return s;
}

/* The sum of a double over the CTA (every thread gets it); red holds 32 doubles. */
__device__ __forceinline__ double lt_cu_block_sum(double v, double *red) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    __syncthreads(); /* red may still be read from the previous call */
    if ((threadIdx.x & 31) == 0) red[warp] = v;
    __syncthreads();
    double s = 0.0;
    for (int w = 0; w < nw; w++) s += red[w];
    return s;
}

/* ---- launchers (each returns the launch's error, cudaSuccess when fine) ---- */
cudaError_t lt_cu_launch_ew(int kind, const lt_cu_item *items, int count, uint64_t nunits, const int *flag,
                            cudaStream_t s);
cudaError_t lt_cu_launch_check(const lt_cu_item *items, int count, uint64_t nunits, int *flag, cudaStream_t s);
/* block: the quantization block size; variant (lowbit.cuh, launch_t): bit 0 no hot step, bit 1 the 64-register
 * instantiation (the same results) */
cudaError_t lt_cu_launch_q(int kind, int block, const lt_cu_item *items, int count, uint64_t nunits,
                           const lt_cu_qtab *t0, const lt_cu_qtab *t1, const int *flag, int variant, int sm_count,
                           cudaStream_t s);
/* variant for LT_CU_AF_ROWS: bit 0 vectorized, bit 1 column sums in shared memory (maxcols columns), bit 2
 * the vectorized pass's tiles of g staged through shared memory (cp.async; ignored without bit 0), three tiles
 * ahead, or one with bit 3; for LT_CU_AF_APPLY: bit 4 two groups of 4 elements loaded ahead per thread */
cudaError_t lt_cu_launch_af(int kind, int variant, const lt_cu_item *items, int count, uint64_t nunits,
                            uint64_t maxcols, const int *flag, cudaStream_t s);
/* Adafactor keeps the column partial sums of a row group in shared memory up to this many columns, where the
 * device allows a block enough of it (lt_cu_af_smcols). */
#define LT_CU_AF_SMCOLS 12288
/* The widest matrix whose row pass keeps its column sums in shared memory on a device that allows a block
 * optin_bytes of it (cudaDevAttrMaxSharedMemoryPerBlockOptin): LT_CU_AF_SMCOLS on an A100 or an H100 (163 and
 * 227 KB), fewer on the 99 KB of sm_86 / sm_89 / sm_120 cards, whose wider matrices take the pass that sums in
 * the workspace (a launch past the device's limit would fail). */
uint64_t lt_cu_af_smcols(int optin_bytes);

#endif
