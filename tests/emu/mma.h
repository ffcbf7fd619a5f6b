/* A CPU emulation of the warp matrix functions (nvcuda::wmma: m16n16k16 with
 * bf16 / fp16 inputs, m16n16k8 with tf32 inputs, fp32 accumulators) for
 * `make cuda-emu`; found as <mma.h> through -Itests/emu, beside cuda_runtime.h.
 *
 * Every lane holds the whole tile (the hardware spreads it over the warp in
 * an unspecified layout), so a kernel is checked only for what the
 * layout-free API promises: loads, stores, mma_sync, fill_fragment and
 * elementwise work over x[0 .. num_elements). The collective calls check
 * what the hardware requires and cannot check itself: all 32 lanes take part
 * with the same pointer and leading dimension, the pointer is 256-bit
 * aligned, the leading dimension a multiple of 16 bytes; and a tf32 operand
 * must have been rounded to tf32 (the hardware would drop its low bits).
 * Products are exact (16-bit or tf32 inputs), sums in fp32 in k order. */
#ifndef LT_TESTS_EMU_MMA_H
#define LT_TESTS_EMU_MMA_H

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "cuda_runtime.h"

/* the 16-bit types of cuda_bf16.h / cuda_fp16.h, as bits */
struct __nv_bfloat16 {
    uint16_t x;
};
struct __half {
    uint16_t x;
};
typedef __half half;

inline float lt_emu_to_f32(__nv_bfloat16 h) {
    uint32_t u = (uint32_t)h.x << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
inline float lt_emu_to_f32(__half h) {
    const int e = (h.x >> 10) & 31, m = h.x & 1023;
    const float s = (h.x & 0x8000) ? -1.0f : 1.0f;
    if (e == 31) return m ? NAN : s * INFINITY;
    if (e == 0) return s * std::ldexp((float)m, -24);
    return s * std::ldexp((float)(1024 + m), e - 25);
}
inline float lt_emu_to_f32(float f) { return f; }

/* aborts unless every lane of the calling warp passed the same v */
inline void lt_emu_warp_uniform(uint64_t v, const char *what) {
    lt_emu_block *b = lt_emu_cur;
    const int tid = (int)threadIdx.x, warp = tid / 32;
    const int n = std::min(32, b->nthreads - 32 * warp);
    if (n != 32) {
        fprintf(stderr, "cuda emu: %s in a warp of %d threads (block %u)\n", what, n, blockIdx.x);
        abort();
    }
    lt_emu_warp_barrier(b);
    b->shfl[tid] = v;
    lt_emu_warp_barrier(b);
    for (int i = 0; i < 32; i++)
        if (b->shfl[warp * 32 + i] != v) {
            fprintf(stderr, "cuda emu: %s: lanes of warp %d disagree (block %u)\n", what, warp, blockIdx.x);
            abort();
        }
    lt_emu_warp_barrier(b);
}

inline void lt_emu_wmma_check(const void *p, unsigned ldm, size_t esize, const char *what) {
    if ((uintptr_t)p % 32) {
        fprintf(stderr, "cuda emu: %s: pointer %p is not 256-bit aligned (block %u thread %u)\n", what, p, blockIdx.x,
                threadIdx.x);
        abort();
    }
    if ((ldm * esize) % 16) {
        fprintf(stderr, "cuda emu: %s: ldm %u is not a multiple of 16 bytes\n", what, ldm);
        abort();
    }
    lt_emu_warp_uniform((uint64_t)(uintptr_t)p, what);
    lt_emu_warp_uniform(ldm, what);
}

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
namespace precision {
struct tf32 {}; /* fp32 storage whose products use 10 mantissa bits: every operand must have been rounded to it */
} // namespace precision

/* cvt.rna.tf32.f32: x rounded to 10 mantissa bits, ties away from zero (kept in a float, the 13 low bits zero) */
inline float __float_to_tf32(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & ~0x1fffu; /* inf and NaN as they are */
    memcpy(&x, &u, 4);
    return x;
}

/* the memory type a fragment of element type T loads from */
template <class T> struct mem_type {
    typedef T type;
};
template <> struct mem_type<precision::tf32> {
    typedef float type;
};

/* The tile of a fragment: matrix_a is M x K, matrix_b K x N, the accumulator M x N; x[r * cols + c] is row r,
 * column c, and num_elements covers the whole tile (each emulated lane holds all of it, so an elementwise loop
 * over x treats every element once, as the hardware's lanes together do). */
template <class Use, int M, int N, int K> struct tile_shape {
    static constexpr int rows = std::is_same<Use, matrix_b>::value ? K : M;
    static constexpr int cols = std::is_same<Use, matrix_a>::value ? K : N;
};
template <class Use, int M, int N, int K, class T, class Layout = void> struct fragment {
    static_assert(M == 16 && N == 16 && (K == 16 || (K == 8 && std::is_same<T, precision::tf32>::value) ||
                                         std::is_same<Use, accumulator>::value),
                  "the emulation has m16n16k16 (16-bit) and m16n16k8 (tf32) only");
    static constexpr int rows = tile_shape<Use, M, N, K>::rows, cols = tile_shape<Use, M, N, K>::cols;
    static constexpr int num_elements = rows * cols;
    float x[rows * cols];
};

template <class Use, int K, class T, class L>
inline void load_matrix_sync(fragment<Use, 16, 16, K, T, L> &f, const typename mem_type<T>::type *p, unsigned ldm) {
    typedef fragment<Use, 16, 16, K, T, L> F;
    lt_emu_wmma_check(p, ldm, sizeof *p, "load_matrix_sync");
    constexpr bool rowm = std::is_same<L, row_major>::value;
    for (int r = 0; r < F::rows; r++)
        for (int c = 0; c < F::cols; c++) f.x[r * F::cols + c] = lt_emu_to_f32(rowm ? p[r * ldm + c] : p[c * ldm + r]);
    lt_emu_warp_uniform(0, "load_matrix_sync (end)");
}

template <int K>
inline void load_matrix_sync(fragment<accumulator, 16, 16, K, float> &f, const float *p, unsigned ldm, layout_t l) {
    lt_emu_wmma_check(p, ldm, sizeof(float), "load_matrix_sync (accumulator)");
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) f.x[r * 16 + c] = l == mem_row_major ? p[r * ldm + c] : p[c * ldm + r];
    lt_emu_warp_uniform(0, "load_matrix_sync (end)");
}

/* lane 0 writes (every lane holds the same tile); the others wait for it */
template <int K>
inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, K, float> &f, unsigned ldm, layout_t l) {
    lt_emu_wmma_check(p, ldm, sizeof(float), "store_matrix_sync");
    if (threadIdx.x % 32 == 0)
        for (int r = 0; r < 16; r++)
            for (int c = 0; c < 16; c++) (l == mem_row_major ? p[r * ldm + c] : p[c * ldm + r]) = f.x[r * 16 + c];
    lt_emu_warp_uniform(0, "store_matrix_sync (end)");
}

template <class Use, int K, class T, class L> inline void fill_fragment(fragment<Use, 16, 16, K, T, L> &f, float v) {
    for (float &e : f.x) e = v;
}

/* a tf32 operand that was not rounded (__float_to_tf32) would lose its low bits silently on the hardware */
inline void lt_emu_tf32_check(const float *x, int n, const char *which) {
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        if ((u & 0x7f800000u) != 0x7f800000u && (u & 0x1fffu)) {
            fprintf(stderr, "cuda emu: mma_sync: tf32 operand %s holds %.9g, not rounded to tf32 (block %u)\n",
                    which, (double)x[i], blockIdx.x);
            abort();
        }
    }
}

/* d = a b + c: exact products (16-bit or tf32 inputs), summed into c's value in fp32 in k order */
template <int K, class T, class LA, class LB>
inline void mma_sync(fragment<accumulator, 16, 16, K, float> &d, const fragment<matrix_a, 16, 16, K, T, LA> &a,
                     const fragment<matrix_b, 16, 16, K, T, LB> &b, const fragment<accumulator, 16, 16, K, float> &c) {
    lt_emu_warp_uniform(0, "mma_sync");
    if (std::is_same<T, precision::tf32>::value) {
        lt_emu_tf32_check(a.x, a.num_elements, "a");
        lt_emu_tf32_check(b.x, b.num_elements, "b");
    }
    float r[256];
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            float s = c.x[i * 16 + j];
            for (int k = 0; k < K; k++) s = std::fma(a.x[i * K + k], b.x[k * 16 + j], s);
            r[i * 16 + j] = s;
        }
    memcpy(d.x, r, sizeof r);
}

} // namespace wmma
} // namespace nvcuda

#endif
