/* What the GPT-2 layer kernels on the GPU share (gpt2_layers.cu and the files
 * beside it): the context, the storage types of activations and weights, the
 * warp helpers, and the host-side error and dtype dispatch. Internal to
 * src/model/cuda; every name is in the namespace ltnn. */
#ifndef LT_MODEL_CUDA_CU_NN_CUH
#define LT_MODEL_CUDA_CU_NN_CUH

#include <cuda_runtime.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <type_traits>

#include "kernels/cuda/cu_internal.cuh"
#include "model/cuda/cu_gemm.cuh"

struct lt_cunn {
    cudaStream_t stream;
    lt_cugemm *gemm;
    int attn_simt;  /* 1: attention on the CUDA cores for every dtype (lt_cunn_attention_simt) */
    int attn_tc128; /* 1: the tensor-core kernels also for head sizes 65 to 128 (lt_cunn_attention_tc128) */
    int attn_tf32;  /* 1: fp32 attention on the tensor cores by 3xTF32 (lt_cunn_attention_tf32) */
    int ln_v8;      /* 1: the layernorm kernels 8 values a lane where they can (lt_cunn_layernorm_v8) */
    char err[512];
};

namespace ltnn {

/* ---- storage types: S is float, uint16_t (bf16 bits) or f16s (fp16 bits); arithmetic is fp32 ---- */

/* fp16 storage: its own type so that overloads tell it from bf16 */
struct f16s {
    uint16_t bits;
};

__device__ __forceinline__ float ld(const float *p, size_t i) { return p[i]; }
__device__ __forceinline__ float ld(const uint16_t *p, size_t i) { return lt_cu_bf16_to_f32(p[i]); }
__device__ __forceinline__ float ld(const f16s *p, size_t i) { return lt_cu_f16_to_f32(p[i].bits); }
__device__ __forceinline__ void st(float *p, size_t i, float x) { p[i] = x; }
__device__ __forceinline__ void st(uint16_t *p, size_t i, float x) { p[i] = lt_cu_f32_to_bf16(x); }
__device__ __forceinline__ void st(f16s *p, size_t i, float x) { p[i].bits = lt_cu_f32_to_f16(x); }

/* ---- 8 consecutive values at once: one 16-byte access for 16-bit storage, two for fp32 ----
 * p + i must be 16-byte aligned (vec8_ok: every pointer of a kernel, and its element counts a multiple of 8). */
__device__ __forceinline__ void ld8(const float *p, size_t i, float (&x)[8]) {
    LT_ALIGNED(p + i, 16);
    const float4 a = reinterpret_cast<const float4 *>(p + i)[0], b = reinterpret_cast<const float4 *>(p + i)[1];
    x[0] = a.x, x[1] = a.y, x[2] = a.z, x[3] = a.w, x[4] = b.x, x[5] = b.y, x[6] = b.z, x[7] = b.w;
}
__device__ __forceinline__ void st8(float *p, size_t i, const float (&x)[8]) {
    LT_ALIGNED(p + i, 16);
    reinterpret_cast<float4 *>(p + i)[0] = make_float4(x[0], x[1], x[2], x[3]);
    reinterpret_cast<float4 *>(p + i)[1] = make_float4(x[4], x[5], x[6], x[7]);
}
/* the 8 16-bit values of v, in memory order (little-endian: the low half of each word first) */
template <typename S> __device__ __forceinline__ void unpack8(const uint4 &v, float (&x)[8]) {
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int k = 0; k < 4; k++) {
        S lo, hi;
        memcpy(&lo, reinterpret_cast<const uint16_t *>(&w[k]), 2);
        memcpy(&hi, reinterpret_cast<const uint16_t *>(&w[k]) + 1, 2);
        x[2 * k] = ld(&lo, 0), x[2 * k + 1] = ld(&hi, 0);
    }
}
template <typename S> __device__ __forceinline__ uint4 pack8(const float (&x)[8]) {
    uint32_t w[4];
#pragma unroll
    for (int k = 0; k < 4; k++) {
        S lo, hi;
        st(&lo, 0, x[2 * k]);
        st(&hi, 0, x[2 * k + 1]);
        uint16_t a, b;
        memcpy(&a, &lo, 2);
        memcpy(&b, &hi, 2);
        w[k] = (uint32_t)a | (uint32_t)b << 16;
    }
    return make_uint4(w[0], w[1], w[2], w[3]);
}
template <typename S> __device__ __forceinline__ void ld8(const S *p, size_t i, float (&x)[8]) {
    LT_ALIGNED(p + i, 16);
    unpack8<S>(*reinterpret_cast<const uint4 *>(p + i), x);
}
template <typename S> __device__ __forceinline__ void st8(S *p, size_t i, const float (&x)[8]) {
    LT_ALIGNED(p + i, 16);
    *reinterpret_cast<uint4 *>(p + i) = pack8<S>(x);
}

/* V consecutive values, V 1 or 8: ld / st one at a time, or ld8 / st8 (whose alignment rule then holds) */
template <int V, typename S> __device__ __forceinline__ void ldv(const S *p, size_t i, float (&x)[V]) {
    if constexpr (V == 8) ld8(p, i, x);
    else x[0] = ld(p, i);
}
template <int V, typename S> __device__ __forceinline__ void stv(S *p, size_t i, const float (&x)[V]) {
    if constexpr (V == 8) st8(p, i, x);
    else st(p, i, x[0]);
}

/* whether n values at each of the pointers can go 8 at a time (ld8 / st8) */
inline bool vec8_ok(size_t n, const void *a, const void *b = nullptr, const void *c = nullptr) {
    return n % 8 == 0 && ((uintptr_t)a | (uintptr_t)b | (uintptr_t)c) % 16 == 0;
}

/* ---- warp-level helpers ---- */

/* Orders the shared-memory writes of a warp's lanes before other lanes read them. */
#ifdef LT_CUDA_EMU
inline void warp_sync() { lt_emu_warp_barrier(lt_emu_cur); }
#else
__device__ __forceinline__ void warp_sync() { __syncwarp(); }
#endif

/* Sums / maxima over a warp by xor shuffles: every lane ends with the same
 * bits (each step adds the same two values, and float addition commutes). */
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* ---- host side ---- */

/* Sets nn's message; returns -1. */
inline int fail(lt_cunn *nn, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(nn->err, sizeof nn->err, fmt, ap);
    va_end(ap);
    return -1;
}

/* the launch error of the kernels just queued, if any */
inline int launched(lt_cunn *nn, const char *what) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return fail(nn, "%s: kernel launch: %s", what, cudaGetErrorString(e));
    return 0;
}

/* the storage dtypes the layers accept */
inline bool dtype_ok(lt_dtype dt) { return dt == LT_DTYPE_F32 || dt == LT_DTYPE_BF16 || dt == LT_DTYPE_F16; }

inline int bad_dtype(lt_cunn *nn, const char *what, lt_dtype dt) {
    return fail(nn, "%s: storage dtype %s is not supported (F32, BF16 or F16)", what, lt_dtype_name(dt));
}

inline unsigned blocks_for(size_t n, int per) { return (unsigned)((n + (size_t)per - 1) / (size_t)per); }

template <typename F, typename S>
int call_with(F &f, S z) {
    if constexpr (std::is_void_v<decltype(f(z))>) {
        f(z);
        return 0;
    } else {
        return f(z);
    }
}

/* Runs f with the storage type of dt, f(float()), f(uint16_t()) or f(f16s()),
 * then checks the launches; f may return an int (non-zero: failed, message
 * set). A dtype that dtype_ok refuses fails with bad_dtype's message. */
template <typename F>
int with_dtype(lt_cunn *nn, const char *what, lt_dtype dt, F f) {
    int rc;
    if (!dtype_ok(dt)) return bad_dtype(nn, what, dt);
    if (dt == LT_DTYPE_F32) rc = call_with(f, float());
    else if (dt == LT_DTYPE_BF16) rc = call_with(f, uint16_t());
    else rc = call_with(f, f16s());
    return rc ? rc : launched(nn, what);
}

} // namespace ltnn

#endif
