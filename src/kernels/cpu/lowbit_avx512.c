/* AVX-512 kernels of the low-bit optimizers (see lowbit_simd.h): the same
 * arithmetic as lowbit_cpu.c, operation for operation (no fused multiply-add,
 * the same order, true divisions and square roots), on 16 lanes, with the map
 * reads and the nearest-code search done by gathers from small tables and by
 * permutes. Compiled for AVX-512 by function attributes only (no build flags);
 * lt_lowbit_simd() says whether this CPU may run them. */
#include "kernels/cpu/lowbit_simd.h"

#include <float.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define LB_MAX_BLOCK 4096

/* Offsets in lt_lbtab.lv of the pivots of search step L (1-based), each table
 * starting on a 64-byte boundary; step L has 2^(L-1) pivots. */
static const int lv_off[8] = {0, 16, 32, 48, 64, 80, 112, 176};

/* ---- the bucket table of the gather search (see lowbit_simd.h) ---- */

/* One entry per value of a float's top 16 bits (sign, exponent, 7 mantissa
 * bits), stored at (int16_t)top + GHALF so that an arithmetic shift of the bits
 * indexes it: every float has its entry, no clamping, no special case. */
enum { GHALF = 32768, GTAB_N = 65536, GCACHE = 8 };

/* Fills tab from t (a `fast` table). The scalar code of x is near[b] +
 * (key(x) >= thk[near[b]]) (b: x's top 16 bits, key: lt_f32_key); within the
 * bucket the key's top half is fixed, so the compare is decided by the low
 * halves, or not at all when the threshold lies outside the bucket. The entry
 * is c * 65536 + (65536 - the threshold's low half), so that (entry + (key(x)
 * & 0xffff)) >> 16 is the code: the sum carries into bit 16 exactly when the
 * key reaches the threshold. Always above: (c + 1) * 65536; always below: c * 65536. */
static void gtab_build(int32_t *tab, const lt_qtable *t) {
    for (unsigned bh = 0; bh < 65536; bh++) {
        /* the key's top half: for negative floats the low 31 bits are flipped */
        const int kh = bh < 0x8000u ? (int)bh : (int)(int16_t)(uint16_t)(bh ^ 0x7fffu);
        const int c = t->near[bh];
        const int32_t tk = t->thk[c], th = tk >> 16;
        int32_t e;
        if (th == kh) e = (int32_t)((uint32_t)c * 65536u + 65536u - ((uint32_t)tk & 0xffffu));
        else if (th < kh) e = (int32_t)((uint32_t)(c + 1) * 65536u);
        else e = (int32_t)((uint32_t)c * 65536u);
        tab[(int)(int16_t)(uint16_t)bh + GHALF] = e;
    }
}

/* One table per distinct threshold set, built on first use and kept for the
 * life of the process (a few maps in practice; past GCACHE, the permute search). */
static struct {
    float th[256];
    int n;
    int32_t *tab;
} gcache[GCACHE];
static int gcache_len;
static pthread_mutex_t gcache_lock = PTHREAD_MUTEX_INITIALIZER;

static const int32_t *gtab_get(const lt_qtable *t) {
    const int32_t *r = NULL;
    pthread_mutex_lock(&gcache_lock);
    for (int i = 0; i < gcache_len && !r; i++)
        if (gcache[i].n == t->n && !memcmp(gcache[i].th, t->th, sizeof gcache[i].th)) r = gcache[i].tab;
    if (!r && gcache_len < GCACHE) {
        int32_t *tab = malloc(GTAB_N * sizeof *tab);
        if (tab) {
            gtab_build(tab, t);
            memcpy(gcache[gcache_len].th, t->th, sizeof gcache[gcache_len].th);
            gcache[gcache_len].n = t->n;
            gcache[gcache_len].tab = tab;
            gcache_len++;
            r = tab;
        }
    }
    pthread_mutex_unlock(&gcache_lock);
    return r;
}

int lt_lbtab_prepare(lt_lbtab *s, const lt_qtable *t) {
    if (!t->fast || t->n < 2 || t->n > 256) return 0;
    s->gtab = t->n > 16 ? gtab_get(t) : NULL;
    memcpy(s->map, t->map, sizeof s->map);
    for (int c = 0; c < 256; c++) {
        uint32_t u;
        memcpy(&u, &t->map[c], 4);
        for (int k = 0; k < 4; k++) s->planes[k][c] = (uint8_t)(u >> (8 * k));
    }
    s->n = t->n;
    s->nneg = t->nneg;
    const int steps = t->n <= 16 ? 4 : 8;
    memset(s->lv, 0, sizeof s->lv);
    /* the pivot of step L for a lane whose count so far is c (a multiple of
     * 2 * half, half = 2^(steps-L)) is th[c + half - 1]; it sits at index
     * j = c / (2 * half) of the step's table */
    for (int L = 1; L <= steps; L++) {
        int half = 1 << (steps - L);
        for (int j = 0; j < 1 << (L - 1); j++) s->lv[lv_off[L - 1] + j] = t->th[(2 * j + 1) * half - 1];
    }
    return 1;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define LB __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi")))
#define LB_INLINE static inline __attribute__((always_inline)) LB

static atomic_int simd_mode = -1; /* lt_lowbit_simd_force's mode; -1 default */
static atomic_int simd_env = -1;  /* 1: the CPU has it and LT_LOWBIT_SCALAR does not forbid it */

static int simd_env_check(void) {
    int v = atomic_load_explicit(&simd_env, memory_order_relaxed);
    if (v < 0) {
        __builtin_cpu_init();
        const char *e = getenv("LT_LOWBIT_SCALAR");
        int forbid = e != NULL && e[0] != '\0' && strcmp(e, "0") != 0;
        v = !forbid && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
            __builtin_cpu_supports("avx512vbmi");
        atomic_store_explicit(&simd_env, v, memory_order_relaxed);
    }
    return v;
}

int lt_lowbit_simd(void) {
    return atomic_load_explicit(&simd_mode, memory_order_relaxed) != 0 && simd_env_check();
}

int lt_lowbit_simd_force(int mode) { return atomic_exchange(&simd_mode, mode); }

static inline __mmask16 tail_mask(size_t left) {
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
}

/* ---- dequantization ---- */

/* The 256-entry map in registers: 8 two-register permutes on the low 5 bits of
 * the code, then blends on bits 5, 6, 7. */
typedef struct {
    __m512 r[16];
} map256;

LB_INLINE void map256_load(map256 *m, const float *map) {
    for (int i = 0; i < 16; i++) m->r[i] = _mm512_load_ps(map + 16 * i);
}

LB_INLINE __m512 map256_get(const map256 *m, __m512i c) {
    const __mmask16 b5 = _mm512_test_epi32_mask(c, _mm512_set1_epi32(32));
    const __mmask16 b6 = _mm512_test_epi32_mask(c, _mm512_set1_epi32(64));
    const __mmask16 b7 = _mm512_test_epi32_mask(c, _mm512_set1_epi32(128));
    __m512 a0 = _mm512_permutex2var_ps(m->r[0], c, m->r[1]), a1 = _mm512_permutex2var_ps(m->r[2], c, m->r[3]);
    __m512 a2 = _mm512_permutex2var_ps(m->r[4], c, m->r[5]), a3 = _mm512_permutex2var_ps(m->r[6], c, m->r[7]);
    __m512 a4 = _mm512_permutex2var_ps(m->r[8], c, m->r[9]), a5 = _mm512_permutex2var_ps(m->r[10], c, m->r[11]);
    __m512 a6 = _mm512_permutex2var_ps(m->r[12], c, m->r[13]), a7 = _mm512_permutex2var_ps(m->r[14], c, m->r[15]);
    a0 = _mm512_mask_blend_ps(b5, a0, a1);
    a2 = _mm512_mask_blend_ps(b5, a2, a3);
    a4 = _mm512_mask_blend_ps(b5, a4, a5);
    a6 = _mm512_mask_blend_ps(b5, a6, a7);
    a0 = _mm512_mask_blend_ps(b6, a0, a2);
    a4 = _mm512_mask_blend_ps(b6, a4, a6);
    return _mm512_mask_blend_ps(b7, a0, a4);
}

/* 64 values of a 256-entry map, by byte planes: byte k of entry c is
 * planes[k][c]; two 128-byte permutes and a blend on the code's top bit fetch
 * one plane for 64 codes. Byte and word interleaves then join the planes into
 * dwords, within 128-bit lanes: output register m, dword 4L + j (lane L) comes
 * from byte position 16L + 4m + j, so the codes are first permuted to put
 * element 16m + 4L + j there, and the four registers come out in order. */
typedef struct {
    __m512i t[4][4];
    __m512i order;
} planes256;

LB_INLINE void planes_load(planes256 *P, const lt_lbtab *t) {
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 4; i++) P->t[k][i] = _mm512_load_si512((const void *)(t->planes[k] + 64 * i));
    _Alignas(64) uint8_t ord[64];
    for (int L = 0; L < 4; L++)
        for (int m = 0; m < 4; m++)
            for (int j = 0; j < 4; j++) ord[16 * L + 4 * m + j] = (uint8_t)(16 * m + 4 * L + j);
    P->order = _mm512_load_si512((const void *)ord);
}

LB_INLINE void planes_get64(const planes256 *P, __m512i codes, __m512i out[4]) {
    const __m512i c = _mm512_permutexvar_epi8(P->order, codes);
    const __mmask64 hi = _mm512_movepi8_mask(c);
    __m512i b[4];
    for (int k = 0; k < 4; k++)
        b[k] = _mm512_mask_blend_epi8(hi, _mm512_permutex2var_epi8(P->t[k][0], c, P->t[k][1]),
                                      _mm512_permutex2var_epi8(P->t[k][2], c, P->t[k][3]));
    const __m512i w01l = _mm512_unpacklo_epi8(b[0], b[1]), w01h = _mm512_unpackhi_epi8(b[0], b[1]);
    const __m512i w23l = _mm512_unpacklo_epi8(b[2], b[3]), w23h = _mm512_unpackhi_epi8(b[2], b[3]);
    out[0] = _mm512_unpacklo_epi16(w01l, w23l);
    out[1] = _mm512_unpackhi_epi16(w01l, w23l);
    out[2] = _mm512_unpacklo_epi16(w01h, w23h);
    out[3] = _mm512_unpackhi_epi16(w01h, w23h);
}

/* out[0..len) = map[codes[i]] * scale for 8-bit codes, 64 at a time */
LB_INLINE void dequant8_run(const planes256 *P, const uint8_t *codes, size_t len, __m512 scale, float *out) {
    for (size_t j = 0; j < len; j += 64) {
        const size_t left = len - j;
        const __mmask64 k = left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1);
        __m512i v[4];
        planes_get64(P, _mm512_maskz_loadu_epi8(k, codes + j), v);
        for (int m = 0; m < 4; m++) {
            const size_t at = j + 16 * (size_t)m;
            if (at >= len) break;
            _mm512_mask_storeu_ps(out + at, tail_mask(len - at), _mm512_mul_ps(_mm512_castsi512_ps(v[m]), scale));
        }
    }
}

/* The same by a gather from the map in memory: faster in the bitsandbytes
 * kernels, slower in torchao's (whose divisions keep the permute ports idle). */
LB_INLINE __m512 map_gather(const float *map, __m512i c) { return _mm512_i32gather_ps(c, map, 4); }

/* 16 codes (as dwords) of 8-bit states from codes[j..j+16), the tail masked */
LB_INLINE __m512i codes8_load(const uint8_t *codes, __mmask16 k) {
    return _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, codes));
}

/* 16 codes of 4-bit states: elements j..j+16 are the nibbles of bytes j/2..j/2+8,
 * the even element in the high nibble; `left` elements remain from j (even). */
LB_INLINE __m512i codes4_load(const uint8_t *codes, size_t left) {
    const unsigned nb = left >= 16 ? 8u : (unsigned)(left + 1) / 2u;
    __m128i b = _mm_maskz_loadu_epi8((__mmask16)((1u << nb) - 1u), codes);
    b = _mm_shuffle_epi8(b, _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7));
    const __m512i d = _mm512_srlv_epi32(_mm512_cvtepu8_epi32(b),
                                        _mm512_setr_epi32(4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0));
    return _mm512_and_si512(d, _mm512_set1_epi32(15));
}

/* ---- nearest-code search (see lowbit_simd.h) ---- */

typedef struct {
    __m512 p1, p2, p3, p4, p5, p6a, p6b, p7[4], p8[8];
    __m512i nneg;
    const int32_t *gtab;
    int steps; /* 4 or 8; 0: the gather search */
} search_tab;

LB_INLINE void search_load(search_tab *s, const lt_lbtab *t) {
    const float *lv = t->lv;
    s->steps = t->n <= 16 ? 4 : 8;
    s->p1 = _mm512_set1_ps(lv[0]);
    s->p2 = _mm512_load_ps(lv + 16);
    s->p3 = _mm512_load_ps(lv + 32);
    s->p4 = _mm512_load_ps(lv + 48);
    s->p5 = _mm512_load_ps(lv + 64);
    s->p6a = _mm512_load_ps(lv + 80);
    s->p6b = _mm512_load_ps(lv + 96);
    for (int i = 0; i < 4; i++) s->p7[i] = _mm512_load_ps(lv + 112 + 16 * i);
    for (int i = 0; i < 8; i++) s->p8[i] = _mm512_load_ps(lv + 176 + 16 * i);
    s->nneg = _mm512_set1_epi32(t->nneg);
    s->gtab = t->gtab;
    if (t->gtab) s->steps = 0;
}

/* One search step: where x >= the lane's pivot, add `bit` to c. */
#define STEP(pivot, bitval)                                                                                  \
    c = _mm512_mask_or_epi32(c, _mm512_cmp_ps_mask(x, (pivot), _CMP_GE_OQ), c, _mm512_set1_epi32(bitval))

/* The number of thresholds <= x, for 256-entry maps (8 steps). */
LB_INLINE __m512i search8(const search_tab *s, __m512 x) {
    __m512i c = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(x, s->p1, _CMP_GE_OQ), _mm512_set1_epi32(128));
    STEP(_mm512_permutexvar_ps(_mm512_srli_epi32(c, 7), s->p2), 64);
    STEP(_mm512_permutexvar_ps(_mm512_srli_epi32(c, 6), s->p3), 32);
    STEP(_mm512_permutexvar_ps(_mm512_srli_epi32(c, 5), s->p4), 16);
    STEP(_mm512_permutexvar_ps(_mm512_srli_epi32(c, 4), s->p5), 8);
    STEP(_mm512_permutex2var_ps(s->p6a, _mm512_srli_epi32(c, 3), s->p6b), 4);
    {
        const __m512i j = _mm512_srli_epi32(c, 2);
        const __mmask16 hi = _mm512_test_epi32_mask(c, _mm512_set1_epi32(128));
        STEP(_mm512_mask_blend_ps(hi, _mm512_permutex2var_ps(s->p7[0], j, s->p7[1]),
                                  _mm512_permutex2var_ps(s->p7[2], j, s->p7[3])),
             2);
    }
    {
        const __m512i j = _mm512_srli_epi32(c, 1);
        const __mmask16 b6 = _mm512_test_epi32_mask(c, _mm512_set1_epi32(64));
        const __mmask16 b7 = _mm512_test_epi32_mask(c, _mm512_set1_epi32(128));
        __m512 lo = _mm512_mask_blend_ps(b6, _mm512_permutex2var_ps(s->p8[0], j, s->p8[1]),
                                         _mm512_permutex2var_ps(s->p8[2], j, s->p8[3]));
        __m512 hi = _mm512_mask_blend_ps(b6, _mm512_permutex2var_ps(s->p8[4], j, s->p8[5]),
                                         _mm512_permutex2var_ps(s->p8[6], j, s->p8[7]));
        STEP(_mm512_mask_blend_ps(b7, lo, hi), 1);
    }
    return c;
}

/* The scalar code of every x (NaN and infinities included) by one gather from the bucket table. */
LB_INLINE __m512i search_gather(const search_tab *s, __m512 x) {
    const __m512i b = _mm512_castps_si512(x);
    /* the key's low half: the bits' low half, inverted for negative x; (b ^ sign) & 0xffff */
    const __m512i klo = _mm512_ternarylogic_epi32(b, _mm512_srai_epi32(b, 31), _mm512_set1_epi32(0xffff), 0x28);
    const __m512i e = _mm512_i32gather_epi32(_mm512_srai_epi32(b, 16), (const void *)(s->gtab + GHALF), 4);
    return _mm512_srli_epi32(_mm512_add_epi32(e, klo), 16);
}

/* The same for maps of at most 16 entries (4 steps). */
LB_INLINE __m512i search4(const search_tab *s, __m512 x) {
    __m512i c = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(x, s->p1, _CMP_GE_OQ), _mm512_set1_epi32(8));
    STEP(_mm512_permutexvar_ps(_mm512_srli_epi32(c, 3), s->p2), 4);
    STEP(_mm512_permutexvar_ps(_mm512_srli_epi32(c, 2), s->p3), 2);
    STEP(_mm512_permutexvar_ps(_mm512_srli_epi32(c, 1), s->p4), 1);
    return c;
}
#undef STEP

/* The codes of q = x / a * ok (16 lanes), with the scalar table's treatment of
 * +inf and NaN, and the sign fix (which looks at the unscaled x). */
LB_INLINE __m512i quantize16(const search_tab *s, __m512 x, __m512 a, __m512 ok, int steps, int signfix) {
    const __m512 q = _mm512_mul_ps(_mm512_div_ps(x, a), ok);
    __m512i c;
    if (steps == 0) {
        c = search_gather(s, q);
    } else {
        c = steps == 8 ? search8(s, q) : search4(s, q);
        /* sign bit clear and exponent all ones: +inf or a NaN, code 1 */
        const __mmask16 posinf = _mm512_cmpgt_epi32_mask(_mm512_castps_si512(q), _mm512_set1_epi32(0x7f7fffff));
        c = _mm512_mask_mov_epi32(c, posinf, _mm512_set1_epi32(1));
    }
    if (signfix) {
        const __m512i xb = _mm512_castps_si512(x);
        const __mmask16 neg = _mm512_movepi32_mask(xb);
        const __mmask16 nonzero = _mm512_test_epi32_mask(xb, _mm512_set1_epi32(0x7fffffff));
        const __mmask16 code_neg = _mm512_cmplt_epi32_mask(c, s->nneg);
        const __mmask16 differ = (__mmask16)((code_neg ^ neg) & nonzero);
        /* +1 toward a positive value, -1 toward a negative one */
        const __m512i step = _mm512_or_si512(_mm512_srai_epi32(xb, 31), _mm512_set1_epi32(1));
        c = _mm512_mask_add_epi32(c, differ, c, step);
    }
    return c;
}

/* Where to prefetch the next block from while quantizing this one (NULL: nowhere). */
typedef struct {
    uintptr_t f, f2, c; /* f, f2: the next block's floats (f2 may be 0); c: its codes */
} pf_t;

/* Stores 16 codes: one byte each, or two per byte (even element high). */
LB_INLINE void codes_store(uint8_t *codes, __m512i c, size_t left, int bits) {
    if (bits == 8) {
        _mm512_mask_cvtepi32_storeu_epi8(codes, tail_mask(left), c);
    } else {
        /* as 8 qwords: low dword the even element, high dword the odd one */
        const __m512i pair = _mm512_or_si512(_mm512_slli_epi64(c, 4), _mm512_srli_epi64(c, 32));
        const unsigned nb = left >= 16 ? 8u : (unsigned)(left + 1) / 2u;
        _mm512_mask_cvtepi64_storeu_epi8(codes, (__mmask8)((1u << nb) - 1u), pair);
    }
}

/* Quantizes x[0..len) to codes with the block's absmax amax, as quantize_block;
 * the whole 16-element groups first, then the tail under a mask. */
LB_INLINE void quantize_body(const search_tab *s, const float *x, size_t len, float amax, int steps, int signfix,
                             int bits, uint8_t *codes, const pf_t *pf) {
    const __m512 ok = _mm512_set1_ps(amax > 0.0f ? 1.0f : 0.0f), a = _mm512_set1_ps(amax > 0.0f ? amax : 1.0f);
    const size_t per = bits == 8 ? 16 : 8; /* code bytes per 16 elements */
    size_t j = 0;
    for (; j + 16 <= len; j += 16) {
        if (pf->f) { /* the next block's parameters and codes, while this one computes */
            /* addresses as integers: past the last block they point beyond the arrays (a prefetch never faults) */
            _mm_prefetch((const char *)(pf->f + 4 * j), _MM_HINT_T0);
            if (pf->f2) _mm_prefetch((const char *)(pf->f2 + 4 * j), _MM_HINT_T0);
            _mm_prefetch((const char *)(pf->c + j), _MM_HINT_T0);
        }
        const __m512i c = quantize16(s, _mm512_loadu_ps(x + j), a, ok, steps, signfix);
        if (bits == 8) _mm_storeu_si128((__m128i *)(codes + j), _mm512_cvtepi32_epi8(c));
        else codes_store(codes + j / 2, c, 16, 4);
    }
    if (j < len) {
        const __m512 xv = _mm512_maskz_loadu_ps(tail_mask(len - j), x + j);
        codes_store(codes + j / 16 * per, quantize16(s, xv, a, ok, steps, signfix), len - j, bits);
    }
}

/* The common cases compiled with their constants; anything else in one generic loop. */
LB __attribute__((noinline)) static void quantize_8_8_fix(const search_tab *s, const float *x, size_t len,
                                                          float amax, uint8_t *codes, const pf_t *pf) {
    quantize_body(s, x, len, amax, 8, 1, 8, codes, pf);
}
LB __attribute__((noinline)) static void quantize_8_8(const search_tab *s, const float *x, size_t len, float amax,
                                                      uint8_t *codes, const pf_t *pf) {
    quantize_body(s, x, len, amax, 8, 0, 8, codes, pf);
}
LB __attribute__((noinline)) static void quantize_4_4(const search_tab *s, const float *x, size_t len, float amax,
                                                      uint8_t *codes, const pf_t *pf) {
    quantize_body(s, x, len, amax, 4, 0, 4, codes, pf);
}
LB __attribute__((noinline)) static void quantize_g_8_fix(const search_tab *s, const float *x, size_t len,
                                                          float amax, uint8_t *codes, const pf_t *pf) {
    quantize_body(s, x, len, amax, 0, 1, 8, codes, pf);
}
LB __attribute__((noinline)) static void quantize_g_8(const search_tab *s, const float *x, size_t len, float amax,
                                                      uint8_t *codes, const pf_t *pf) {
    quantize_body(s, x, len, amax, 0, 0, 8, codes, pf);
}
LB __attribute__((noinline)) static void quantize_g_4(const search_tab *s, const float *x, size_t len, float amax,
                                                      uint8_t *codes, const pf_t *pf) {
    quantize_body(s, x, len, amax, 0, 0, 4, codes, pf);
}
LB __attribute__((noinline)) static void quantize_any(const search_tab *s, const float *x, size_t len, float amax,
                                                      int signfix, int bits, uint8_t *codes, const pf_t *pf) {
    if (s->steps == 0) quantize_body(s, x, len, amax, 0, signfix, bits, codes, pf);
    else if (s->steps == 8) quantize_body(s, x, len, amax, 8, signfix, bits, codes, pf);
    else quantize_body(s, x, len, amax, 4, signfix, bits, codes, pf);
}

LB static void quantize_run(const search_tab *s, const float *x, size_t len, float amax, int signfix, int bits,
                            uint8_t *codes, const pf_t *pf) {
    if (s->steps == 0 && bits == 8 && signfix) quantize_g_8_fix(s, x, len, amax, codes, pf);
    else if (s->steps == 0 && bits == 8) quantize_g_8(s, x, len, amax, codes, pf);
    else if (s->steps == 0 && bits == 4 && !signfix) quantize_g_4(s, x, len, amax, codes, pf);
    else if (s->steps == 8 && bits == 8 && signfix) quantize_8_8_fix(s, x, len, amax, codes, pf);
    else if (s->steps == 8 && bits == 8) quantize_8_8(s, x, len, amax, codes, pf);
    else if (s->steps == 4 && bits == 4 && !signfix) quantize_4_4(s, x, len, amax, codes, pf);
    else quantize_any(s, x, len, amax, signfix, bits, codes, pf);
}

LB void lt_lb512_quantize(const lt_lbtab *t, const float *x, size_t len, float amax, int signfix, int bits,
                          uint8_t *codes) {
    search_tab s;
    search_load(&s, t);
    const pf_t none = {0, 0, 0};
    quantize_run(&s, x, len, amax, signfix, bits, codes, &none);
}

/* 16 dequantized values */
LB_INLINE __m512 dequant16(const map256 *m, const uint8_t *codes, size_t j, size_t len, int bits, __m512 scale) {
    if (bits == 8) return _mm512_mul_ps(map256_get(m, codes8_load(codes + j, tail_mask(len - j))), scale);
    return _mm512_mul_ps(_mm512_permutexvar_ps(codes4_load(codes + j / 2, len - j), m->r[0]), scale);
}

LB void lt_lb512_dequant(const lt_lbtab *t, const uint8_t *codes, size_t len, int bits, float scale, float *out) {
    if (bits == 8) {
        planes256 P;
        planes_load(&P, t);
        dequant8_run(&P, codes, len, _mm512_set1_ps(scale), out);
        return;
    }
    map256 m;
    map256_load(&m, t->map);
    const __m512 sv = _mm512_set1_ps(scale);
    for (size_t j = 0; j < len; j += 16) {
        const __mmask16 k = tail_mask(len - j);
        _mm512_mask_storeu_ps(out + j, k, dequant16(&m, codes, j, len, bits, sv));
    }
}

/* max |x| by bit patterns (NaN propagates), as lowbit_cpu.c's absmax */
LB_INLINE __m512i absbits(__m512 x) {
    return _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff));
}
LB_INLINE float bits_to_float(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- bitsandbytes 8-bit Adam ---- */

LB void lt_lb512_bnb_adam(float *p, const float *g, float gs, size_t len, const lt_kbnb *h, const lt_lbtab *tm,
                          uint8_t *mc, float *ms, const lt_lbtab *tv, uint8_t *vc, float *vs) {
    _Alignas(64) float mb[LB_MAX_BLOCK], vb[LB_MAX_BLOCK];
    const __m512 b1 = _mm512_set1_ps(h->b1), omb1 = _mm512_set1_ps(h->omb1), b2 = _mm512_set1_ps(h->b2),
                 omb2 = _mm512_set1_ps(h->omb2), step = _mm512_set1_ps(h->step), c2eps = _mm512_set1_ps(h->c2eps),
                 decay = _mm512_set1_ps(h->has_decay ? h->decay : 1.0f), gsv = _mm512_set1_ps(gs),
                 fmax = _mm512_set1_ps(FLT_MAX), one = _mm512_set1_ps(1.0f);
    const __m512 msc = _mm512_set1_ps(*ms), vsc = _mm512_set1_ps(*vs);
    __m512i am1 = _mm512_setzero_si512(), am2 = _mm512_setzero_si512();
    {
        for (size_t j = 0; j < len; j += 16) {
            const __mmask16 k = tail_mask(len - j);
            const __m512 gi = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, g + j), gsv);
            const __mmask16 fin = _mm512_cmp_ps_mask(_mm512_abs_ps(gi), fmax, _CMP_LE_OQ);
            const __m512 finf = _mm512_maskz_mov_ps(fin, one), gz = _mm512_maskz_mov_ps(fin, gi);
            const __m512 v0 = _mm512_mul_ps(map_gather(tv->map, codes8_load(vc + j, k)), vsc);
            const __m512 m0 = _mm512_mul_ps(map_gather(tm->map, codes8_load(mc + j, k)), msc);
            const __m512 vi =
                _mm512_mul_ps(_mm512_add_ps(_mm512_mul_ps(v0, b2), _mm512_mul_ps(_mm512_mul_ps(omb2, gz), gz)), finf);
            const __m512 mi = _mm512_mul_ps(_mm512_add_ps(_mm512_mul_ps(m0, b1), _mm512_mul_ps(omb1, gz)), finf);
            const __m512 pj = _mm512_maskz_loadu_ps(k, p + j);
            const __m512 pi = _mm512_mul_ps(
                _mm512_add_ps(pj, _mm512_mul_ps(step, _mm512_div_ps(mi, _mm512_add_ps(_mm512_sqrt_ps(vi), c2eps)))),
                decay);
            _mm512_mask_storeu_ps(p + j, (__mmask16)(k & fin), pi);
            _mm512_store_ps(mb + j, mi);
            _mm512_store_ps(vb + j, vi);
            am1 = _mm512_mask_max_epu32(am1, k, am1, absbits(mi));
            am2 = _mm512_mask_max_epu32(am2, k, am2, absbits(vi));
        }
    }
    const float a1 = bits_to_float(_mm512_reduce_max_epu32(am1)), a2 = bits_to_float(_mm512_reduce_max_epu32(am2));
    *ms = a1;
    *vs = a2;
    search_tab s;
    search_load(&s, tm);
    const pf_t pf1 = {(uintptr_t)p + 4 * len, 0, (uintptr_t)mc + len};
    const pf_t pf2 = {(uintptr_t)g + 4 * len, 0, (uintptr_t)vc + len};
    quantize_run(&s, mb, len, a1, 1, 8, mc, &pf1);
    search_load(&s, tv);
    quantize_run(&s, vb, len, a2, 0, 8, vc, &pf2);
}

/* ---- bitsandbytes 8-bit Lion ---- */

LB void lt_lb512_bnb_lion(float *p, const float *g, float gs, size_t len, const lt_kbnb *h, const lt_lbtab *tm,
                          uint8_t *mc, float *ms) {
    _Alignas(64) float mb[LB_MAX_BLOCK];
    const __m512 b1 = _mm512_set1_ps(h->b1), omb1 = _mm512_set1_ps(h->omb1), b2 = _mm512_set1_ps(h->b2),
                 omb2 = _mm512_set1_ps(h->omb2), decay = _mm512_set1_ps(h->decay), lr = _mm512_set1_ps(h->lr),
                 gsv = _mm512_set1_ps(gs), fmax = _mm512_set1_ps(FLT_MAX), one = _mm512_set1_ps(1.0f),
                 zero = _mm512_setzero_ps();
    const __m512 msc = _mm512_set1_ps(*ms);
    __m512i am1 = _mm512_setzero_si512();
    {
        for (size_t j = 0; j < len; j += 16) {
            const __mmask16 k = tail_mask(len - j);
            const __m512 gi = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, g + j), gsv);
            const __mmask16 fin = _mm512_cmp_ps_mask(_mm512_abs_ps(gi), fmax, _CMP_LE_OQ);
            const __m512 gz = _mm512_maskz_mov_ps(fin, gi);
            const __m512 mo = _mm512_mul_ps(map_gather(tm->map, codes8_load(mc + j, k)), msc);
            const __m512 c = _mm512_add_ps(_mm512_mul_ps(mo, b1), _mm512_mul_ps(omb1, gz));
            const __m512 sg = _mm512_sub_ps(_mm512_maskz_mov_ps(_mm512_cmp_ps_mask(c, zero, _CMP_GT_OQ), one),
                                            _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(c, zero, _CMP_LT_OQ), one));
            const __m512 pj = _mm512_maskz_loadu_ps(k, p + j);
            const __m512 pn = _mm512_sub_ps(_mm512_mul_ps(pj, decay), _mm512_mul_ps(lr, sg));
            _mm512_mask_storeu_ps(p + j, (__mmask16)(k & fin), pn);
            const __m512 mi =
                _mm512_maskz_mov_ps(fin, _mm512_add_ps(_mm512_mul_ps(mo, b2), _mm512_mul_ps(omb2, gz)));
            _mm512_store_ps(mb + j, mi);
            am1 = _mm512_mask_max_epu32(am1, k, am1, absbits(mi));
        }
    }
    const float a1 = bits_to_float(_mm512_reduce_max_epu32(am1));
    *ms = a1;
    search_tab s;
    search_load(&s, tm);
    const pf_t pf = {(uintptr_t)p + 4 * len, (uintptr_t)g + 4 * len, (uintptr_t)mc + len};
    quantize_run(&s, mb, len, a1, 1, 8, mc, &pf);
}

/* ---- torchao 8-bit / 4-bit AdamW ---- */

/* torch's lerp with a weight fixed for the whole call: a + w*(b-a) below 0.5,
 * b - (b-a)*(1-w) from 0.5 on */
LB_INLINE __m512 lerp16(__m512 a, __m512 b, __m512 w, __m512 omw, int low) {
    const __m512 d = _mm512_sub_ps(b, a);
    return low ? _mm512_add_ps(a, _mm512_mul_ps(w, d)) : _mm512_sub_ps(b, _mm512_mul_ps(d, omw));
}

LB void lt_lb512_ao_adam(float *p, const float *g, float gs, size_t len, const lt_kao *h, const lt_lbtab *tm,
                         uint8_t *mc, float *ms, const lt_lbtab *tv, uint8_t *vc, float *vs) {
    _Alignas(64) float mb[LB_MAX_BLOCK], vb[LB_MAX_BLOCK];
    const int bits = h->bits;
    const __m512 w1 = _mm512_set1_ps(h->omb1), omw1 = _mm512_set1_ps(1.0f - h->omb1), w2 = _mm512_set1_ps(h->omb2),
                 omw2 = _mm512_set1_ps(1.0f - h->omb2), lrwd = _mm512_set1_ps(h->lrwd), lr = _mm512_set1_ps(h->lr),
                 bc1 = _mm512_set1_ps(h->bc1), bc2s = _mm512_set1_ps(h->bc2_sqrt), eps = _mm512_set1_ps(h->eps),
                 gsv = _mm512_set1_ps(gs);
    const int low1 = h->omb1 < 0.5f, low2 = h->omb2 < 0.5f;
    const __m512 msc = _mm512_set1_ps(*ms), vsc = _mm512_set1_ps(*vs);
    __m512i am1 = _mm512_setzero_si512(), am2 = _mm512_setzero_si512();
    if (bits == 8) { /* the old states into the buffers first, 64 codes at a time */
        planes256 P;
        planes_load(&P, tm);
        dequant8_run(&P, mc, len, msc, mb);
        planes_load(&P, tv);
        dequant8_run(&P, vc, len, vsc, vb);
    }
    {
        map256 mm, mv;
        map256_load(&mm, tm->map);
        map256_load(&mv, tv->map);
        for (size_t j = 0; j < len; j += 16) {
            const __mmask16 k = tail_mask(len - j);
            const __m512 gi = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, g + j), gsv);
            const __m512 m0 = bits == 8 ? _mm512_load_ps(mb + j) : dequant16(&mm, mc, j, len, bits, msc);
            const __m512 v0 = bits == 8 ? _mm512_load_ps(vb + j) : dequant16(&mv, vc, j, len, bits, vsc);
            const __m512 mi = lerp16(m0, gi, w1, omw1, low1);
            const __m512 vi = lerp16(v0, _mm512_mul_ps(gi, gi), w2, omw2, low2);
            _mm512_store_ps(mb + j, mi);
            _mm512_store_ps(vb + j, vi);
            am1 = _mm512_mask_max_epu32(am1, k, am1, absbits(mi));
            am2 = _mm512_mask_max_epu32(am2, k, am2, absbits(vi));
            __m512 pi = _mm512_maskz_loadu_ps(k, p + j);
            pi = _mm512_sub_ps(pi, _mm512_mul_ps(lrwd, pi));
            pi = _mm512_sub_ps(pi, _mm512_div_ps(_mm512_mul_ps(lr, _mm512_div_ps(mi, bc1)),
                                                 _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), bc2s), eps)));
            _mm512_mask_storeu_ps(p + j, k, pi);
        }
    }
    const float a1 = bits_to_float(_mm512_reduce_max_epu32(am1)), a2 = bits_to_float(_mm512_reduce_max_epu32(am2));
    *ms = __builtin_fmaxf(a1, 1e-12f);
    *vs = __builtin_fmaxf(a2, 1e-12f);
    search_tab s;
    search_load(&s, tm);
    const size_t nb = bits == 8 ? len : len / 2; /* code bytes of a block */
    const pf_t pf1 = {(uintptr_t)p + 4 * len, 0, (uintptr_t)mc + nb};
    const pf_t pf2 = {(uintptr_t)g + 4 * len, 0, (uintptr_t)vc + nb};
    quantize_run(&s, mb, len, *ms, 0, bits, mc, &pf1);
    search_load(&s, tv);
    quantize_run(&s, vb, len, *vs, 0, bits, vc, &pf2);
}

#else /* no x86-64: the scalar path only */

int lt_lowbit_simd(void) { return 0; }
int lt_lowbit_simd_force(int mode) {
    (void)mode;
    return -1;
}
void lt_lb512_bnb_adam(float *p, const float *g, float gs, size_t len, const lt_kbnb *h, const lt_lbtab *tm,
                       uint8_t *mc, float *ms, const lt_lbtab *tv, uint8_t *vc, float *vs) {
    (void)p, (void)g, (void)gs, (void)len, (void)h, (void)tm, (void)mc, (void)ms, (void)tv, (void)vc, (void)vs;
    abort();
}
void lt_lb512_bnb_lion(float *p, const float *g, float gs, size_t len, const lt_kbnb *h, const lt_lbtab *tm,
                       uint8_t *mc, float *ms) {
    (void)p, (void)g, (void)gs, (void)len, (void)h, (void)tm, (void)mc, (void)ms;
    abort();
}
void lt_lb512_ao_adam(float *p, const float *g, float gs, size_t len, const lt_kao *h, const lt_lbtab *tm,
                      uint8_t *mc, float *ms, const lt_lbtab *tv, uint8_t *vc, float *vs) {
    (void)p, (void)g, (void)gs, (void)len, (void)h, (void)tm, (void)mc, (void)ms, (void)tv, (void)vc, (void)vs;
    abort();
}
void lt_lb512_dequant(const lt_lbtab *t, const uint8_t *codes, size_t len, int bits, float scale, float *out) {
    (void)t, (void)codes, (void)len, (void)bits, (void)scale, (void)out;
    abort();
}
void lt_lb512_quantize(const lt_lbtab *t, const float *x, size_t len, float amax, int signfix, int bits,
                       uint8_t *codes) {
    (void)t, (void)x, (void)len, (void)amax, (void)signfix, (void)bits, (void)codes;
    abort();
}
#endif
