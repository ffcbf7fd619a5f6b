/* A CPU emulation of the warp matrix functions (nvcuda::wmma, m16n16k16 with
 * bf16 / fp16 inputs and fp32 accumulators) for `make cuda-emu`; found as
 * <mma.h> through -Itests/emu, beside cuda_runtime.h.
 *
 * Every lane holds the whole 16 x 16 tile (the hardware spreads it over the
 * warp in an unspecified layout), so a kernel is checked only for what the
 * layout-free API promises: loads, stores, mma_sync and fill_fragment. The
 * collective calls check what the hardware requires and cannot check itself:
 * all 32 lanes take part with the same pointer and leading dimension, the
 * pointer is 256-bit aligned, the leading dimension a multiple of 16 bytes.
 * Products are exact (16-bit inputs), sums in fp32 in k order. */
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
    b->warp_bar[warp]->arrive_and_wait();
    b->shfl[tid] = v;
    b->warp_bar[warp]->arrive_and_wait();
    for (int i = 0; i < 32; i++)
        if (b->shfl[warp * 32 + i] != v) {
            fprintf(stderr, "cuda emu: %s: lanes of warp %d disagree (block %u)\n", what, warp, blockIdx.x);
            abort();
        }
    b->warp_bar[warp]->arrive_and_wait();
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

/* v[r * 16 + c]: row r, column c of the tile (for matrix_b: row k, column n) */
template <class Use, int M, int N, int K, class T, class Layout = void> struct fragment {
    static_assert(M == 16 && N == 16 && K == 16, "the emulation has m16n16k16 only");
    float v[256];
};

template <class Use, class T, class L>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, T, L> &f, const T *p, unsigned ldm) {
    lt_emu_wmma_check(p, ldm, sizeof(T), "load_matrix_sync");
    constexpr bool rowm = std::is_same<L, row_major>::value;
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) f.v[r * 16 + c] = lt_emu_to_f32(rowm ? p[r * ldm + c] : p[c * ldm + r]);
    lt_emu_warp_uniform(0, "load_matrix_sync (end)");
}

inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float> &f, const float *p, unsigned ldm, layout_t l) {
    lt_emu_wmma_check(p, ldm, sizeof(float), "load_matrix_sync (accumulator)");
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) f.v[r * 16 + c] = l == mem_row_major ? p[r * ldm + c] : p[c * ldm + r];
    lt_emu_warp_uniform(0, "load_matrix_sync (end)");
}

/* lane 0 writes (every lane holds the same tile); the others wait for it */
inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f, unsigned ldm, layout_t l) {
    lt_emu_wmma_check(p, ldm, sizeof(float), "store_matrix_sync");
    if (threadIdx.x % 32 == 0)
        for (int r = 0; r < 16; r++)
            for (int c = 0; c < 16; c++) (l == mem_row_major ? p[r * ldm + c] : p[c * ldm + r]) = f.v[r * 16 + c];
    lt_emu_warp_uniform(0, "store_matrix_sync (end)");
}

template <class Use, class T, class L> inline void fill_fragment(fragment<Use, 16, 16, 16, T, L> &f, float x) {
    for (float &e : f.v) e = x;
}

template <class T, class LA, class LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float> &d, const fragment<matrix_a, 16, 16, 16, T, LA> &a,
                     const fragment<matrix_b, 16, 16, 16, T, LB> &b, const fragment<accumulator, 16, 16, 16, float> &c) {
    lt_emu_warp_uniform(0, "mma_sync");
    float r[256];
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            float s = c.v[i * 16 + j];
            for (int k = 0; k < 16; k++) s = std::fma(a.v[i * 16 + k], b.v[k * 16 + j], s);
            r[i * 16 + j] = s;
        }
    memcpy(d.v, r, sizeof r);
}

} // namespace wmma
} // namespace nvcuda

#endif
