/* CPU kernels of the low-bit optimizers. Blocks are independent (each owns its
 * scale and whole bytes of codes), so threads split the tensor by blocks. A
 * block goes through short loops over small buffers: dequantize and update
 * the states (and their absmax), update p, then quantize each state. Each loop
 * is branch-free so it vectorizes (map and table reads become gathers); the
 * tables of quant.h make the nearest-code search one lookup and one compare.
 * On CPUs with AVX-512 each kernel hands its blocks to lowbit_avx512.c instead
 * (same bits, see lowbit_simd.h); LT_LOWBIT_SCALAR=1 keeps this code. */
#include <float.h>
#include <math.h>

#include "kernels/cpu/foreach.h"
#include "kernels/cpu/lowbit_simd.h"
#include "kernels/quant.h"

#define LT_MAX_BLOCK 4096

/* Per-block helpers are compiled (and cloned) as functions of their own: inlined
 * into the OpenMP region, GCC leaves their loops scalar. */
#define LT_BLOCK LT_KERNEL __attribute__((noinline))
#define LOWBIT_PAR_MIN 65536

/* Quantizes x[0..len) / amax to one code per element. A block whose absmax is 0
 * (every value 0) takes the code of 0. signfix: bitsandbytes' first-moment fix,
 * a non-zero value whose code has the other sign bit moves one code toward it.
 * The divisions and the sign fix are vector loops; the table lookups are a
 * scalar loop (gathers are slow on many x86 CPUs). q is scratch of len floats. */
LT_BLOCK static void quantize_block(const lt_qtable *restrict t, const float *restrict x, size_t len, float amax,
                                    int signfix, float *restrict q, int32_t *restrict out) {
    const float ok = amax > 0.0f ? 1.0f : 0.0f, a = amax > 0.0f ? amax : 1.0f;
    for (size_t j = 0; j < len; j++) q[j] = (x[j] / a) * ok;
    if (!t->fast) {
        for (size_t j = 0; j < len; j++) out[j] = lt_q_nearest(t, q[j]);
    } else {
        const uint8_t *restrict near = t->near;
        const int32_t *restrict thk = t->thk;
        for (size_t j = 0; j < len; j++) {
            int32_t k = lt_f32_key(q[j]);
            int32_t c = near[lt_f32_bits(q[j]) >> 16];
            out[j] = c + (k >= thk[c]);
        }
    }
    if (signfix) {
        const int32_t nneg = t->nneg;
        const uint32_t *restrict xb = (const uint32_t *)x; /* integer ops only, so the loop vectorizes */
        for (size_t j = 0; j < len; j++) {
            int32_t x_neg = (int32_t)(xb[j] >> 31), nonzero = (xb[j] & 0x7fffffffu) != 0;
            int32_t differ = ((out[j] < nneg) ^ x_neg) & nonzero;
            out[j] += differ * (1 - 2 * x_neg);
        }
    }
}

/* max |x| over x[0..n): for non-NaN floats, |x|'s bit pattern orders like its value,
 * so an integer max (which vectorizes) gives it; a NaN makes the result NaN. */
LT_BLOCK static float absmax(const float *restrict x, size_t n) {
    uint32_t m = 0;
    for (size_t j = 0; j < n; j++) {
        uint32_t b;
        memcpy(&b, &x[j], 4);
        b &= 0x7fffffffu;
        m = b > m ? b : m;
    }
    float r;
    memcpy(&r, &m, 4);
    return r;
}

LT_BLOCK static void dequant_u8(const lt_qtable *restrict t, const uint8_t *restrict codes, size_t len, float scale,
                              float *restrict out) {
    const float *restrict map = t->map;
    for (size_t j = 0; j < len; j++) out[j] = map[codes[j]] * scale;
}

LT_BLOCK static void store_u8(const int32_t *restrict c, size_t len, uint8_t *restrict codes) {
    for (size_t j = 0; j < len; j++) codes[j] = (uint8_t)c[j];
}

/* f32 parameters and gradients are used in place; other dtypes go through buf. */
static inline float *p_view(lt_karr p, size_t off, size_t len, float *buf) {
    if (p.dt == LT_DTYPE_F32) return (float *)p.ptr + off;
    lt_cpu_load_f32(p, off, buf, len);
    return buf;
}
static inline void p_done(lt_karr p, size_t off, size_t len, const float *buf) {
    if (p.dt != LT_DTYPE_F32) lt_cpu_store_f32(p, off, buf, len);
}

/* ---- bitsandbytes 8-bit blockwise ---- */

/* One block of bitsandbytes' 8-bit Adam on f32 buffers (g becomes the finite mask). */
LT_BLOCK static void bnb_adam_block(float *restrict pb, const float *restrict gb, float *restrict mb, float *restrict vb,
                                  size_t len, float gs, const lt_kbnb *h) {
    const float b1 = h->b1, omb1 = h->omb1, b2 = h->b2, omb2 = h->omb2, step = h->step, c2eps = h->c2eps;
    const float decay = h->has_decay ? h->decay : 1.0f;
    for (size_t j = 0; j < len; j++) {
        float gi = gb[j] * gs;
        float fin = fabsf(gi) <= FLT_MAX ? 1.0f : 0.0f, gz = fabsf(gi) <= FLT_MAX ? gi : 0.0f;
        /* a non-finite gradient resets both states and leaves p as it is */
        float vi = (vb[j] * b2 + (omb2 * gz) * gz) * fin;
        float mi = (mb[j] * b1 + omb1 * gz) * fin;
        float pi = (pb[j] + step * (mi / (sqrtf(vi) + c2eps))) * decay;
        pb[j] = fin != 0.0f ? pi : pb[j];
        mb[j] = mi;
        vb[j] = vi;
    }
}

LT_KERNEL void lt_kernel_bnb8_adam(lt_karr p, lt_karr g, float gs, size_t n, lt_kqstate m, lt_kqstate v,
                                   const lt_kbnb *h) {
    const size_t B = h->block, nblk = (n + B - 1) / B;
    lt_lbtab tm, tv;
    const int simd = lt_lowbit_simd() && lt_lbtab_prepare(&tm, m.tab) && lt_lbtab_prepare(&tv, v.tab);
#pragma omp parallel for schedule(static) if (n >= LOWBIT_PAR_MIN)
    for (size_t blk = 0; blk < nblk; blk++) {
        size_t off = blk * B, len = n - off < B ? n - off : B;
        float pb[LT_MAX_BLOCK], gb[LT_MAX_BLOCK], mb[LT_MAX_BLOCK], vb[LT_MAX_BLOCK];
        int32_t cb[LT_MAX_BLOCK];
        float qb[LT_MAX_BLOCK];
        float *pv = p_view(p, off, len, pb);
        const float *gv = p_view(g, off, len, gb);
        if (simd) {
            lt_lb512_bnb_adam(pv, gv, gs, len, h, &tm, m.codes + off, &m.scale[blk], &tv, v.codes + off,
                              &v.scale[blk]);
            p_done(p, off, len, pv);
            continue;
        }
        dequant_u8(m.tab, m.codes + off, len, m.scale[blk], mb);
        dequant_u8(v.tab, v.codes + off, len, v.scale[blk], vb);
        bnb_adam_block(pv, gv, mb, vb, len, gs, h);
        float a1 = absmax(mb, len), a2 = absmax(vb, len);
        m.scale[blk] = a1;
        v.scale[blk] = a2;
        p_done(p, off, len, pv);
        quantize_block(m.tab, mb, len, a1, 1, qb, cb);
        store_u8(cb, len, m.codes + off);
        quantize_block(v.tab, vb, len, a2, 0, qb, cb);
        store_u8(cb, len, v.codes + off);
    }
}

/* One block of 8-bit Lion on f32 buffers. */
LT_BLOCK static void bnb_lion_block(float *restrict pb, const float *restrict gb, float *restrict mb, size_t len,
                                  float gs, const lt_kbnb *h) {
    const float b1 = h->b1, omb1 = h->omb1, b2 = h->b2, omb2 = h->omb2, decay = h->decay, lr = h->lr;
    for (size_t j = 0; j < len; j++) {
        float gi = gb[j] * gs, mo = mb[j];
        int fin = fabsf(gi) <= FLT_MAX;
        float gz = fin ? gi : 0.0f;
        float c = mo * b1 + omb1 * gz;
        float sg = (float)(c > 0.0f) - (float)(c < 0.0f);
        float pn = pb[j] * decay - lr * sg;
        pb[j] = fin ? pn : pb[j];
        mb[j] = fin ? mo * b2 + omb2 * gz : 0.0f;
    }
}

LT_KERNEL void lt_kernel_bnb8_lion(lt_karr p, lt_karr g, float gs, size_t n, lt_kqstate m, const lt_kbnb *h) {
    const size_t B = h->block, nblk = (n + B - 1) / B;
    lt_lbtab tm;
    const int simd = lt_lowbit_simd() && lt_lbtab_prepare(&tm, m.tab);
#pragma omp parallel for schedule(static) if (n >= LOWBIT_PAR_MIN)
    for (size_t blk = 0; blk < nblk; blk++) {
        size_t off = blk * B, len = n - off < B ? n - off : B;
        float pb[LT_MAX_BLOCK], gb[LT_MAX_BLOCK], mb[LT_MAX_BLOCK];
        int32_t cb[LT_MAX_BLOCK];
        float qb[LT_MAX_BLOCK];
        float *pv = p_view(p, off, len, pb);
        const float *gv = p_view(g, off, len, gb);
        if (simd) {
            lt_lb512_bnb_lion(pv, gv, gs, len, h, &tm, m.codes + off, &m.scale[blk]);
            p_done(p, off, len, pv);
            continue;
        }
        dequant_u8(m.tab, m.codes + off, len, m.scale[blk], mb);
        bnb_lion_block(pv, gv, mb, len, gs, h);
        float a1 = absmax(mb, len);
        m.scale[blk] = a1;
        p_done(p, off, len, pv);
        quantize_block(m.tab, mb, len, a1, 1, qb, cb);
        store_u8(cb, len, m.codes + off);
    }
}

LT_KERNEL static void bnb32_adam_chunk(float *const *a, size_t n, float gs, const void *hv) {
    const lt_kbnb *h = hv;
    float *restrict p = a[0], *restrict m = a[2], *restrict v = a[3];
    const float *restrict g = a[1];
    const float decay = h->has_decay ? h->decay : 1.0f;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * gs;
        int fin = isfinite(gi); /* bitsandbytes' 32-bit kernel skips such elements */
        float gz = fin ? gi : 0.0f;
        float mi = m[i] * h->b1 + h->omb1 * gz;
        float vi = v[i] * h->b2 + (h->omb2 * gz) * gz;
        float pi = (p[i] + h->step * (mi / (sqrtf(vi) + h->c2eps))) * decay;
        p[i] = fin ? pi : p[i];
        m[i] = fin ? mi : m[i];
        v[i] = fin ? vi : v[i];
    }
}

void lt_kernel_bnb32_adam(const lt_ktensor *t, const lt_kbnb *h) { lt_cpu_foreach(t, bnb32_adam_chunk, h); }

LT_KERNEL static void bnb32_lion_chunk(float *const *a, size_t n, float gs, const void *hv) {
    const lt_kbnb *h = hv;
    float *restrict p = a[0], *restrict m = a[2];
    const float *restrict g = a[1];
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * gs;
        int fin = isfinite(gi);
        float gz = fin ? gi : 0.0f, mo = m[i];
        float c = mo * h->b1 + h->omb1 * gz;
        float sg = (float)(c > 0.0f) - (float)(c < 0.0f);
        float pn = p[i] * h->decay - h->lr * sg;
        p[i] = fin ? pn : p[i];
        m[i] = fin ? mo * h->b2 + h->omb2 * gz : mo;
    }
}

void lt_kernel_bnb32_lion(const lt_ktensor *t, const lt_kbnb *h) { lt_cpu_foreach(t, bnb32_lion_chunk, h); }

/* ---- torchao low-bit AdamW ---- */

/* torch's lerp: the form depends on the weight so that both ends are exact */
static inline float lerp_torch(float a, float b, float w) {
    return w < 0.5f ? a + w * (b - a) : b - (b - a) * (1.0f - w);
}

LT_BLOCK static void dequant_codes(const lt_qtable *restrict t, const uint8_t *restrict codes, size_t off, size_t len,
                                 int bits, float scale, float *restrict out) {
    if (bits == 8) {
        dequant_u8(t, codes + off, len, scale, out);
        return;
    }
    const float *restrict map = t->map;
    const uint8_t *restrict c = codes + off / 2; /* blocks are even-sized: whole bytes */
    for (size_t j = 0; j < len / 2; j++) {
        out[2 * j] = map[c[j] >> 4] * scale;
        out[2 * j + 1] = map[c[j] & 0x0f] * scale;
    }
}

LT_BLOCK static void store_codes(const int32_t *restrict cb, size_t off, size_t len, int bits, uint8_t *restrict codes) {
    if (bits == 8) {
        store_u8(cb, len, codes + off);
        return;
    }
    uint8_t *restrict c = codes + off / 2;
    for (size_t j = 0; j < len / 2; j++) c[j] = (uint8_t)((cb[2 * j] << 4) | cb[2 * j + 1]);
}

/* One block of torchao's AdamW on f32 buffers. */
LT_BLOCK static void ao_adam_block(float *restrict pb, const float *restrict gb, float *restrict mb, float *restrict vb,
                                 size_t len, float gs, const lt_kao *h) {
    const float omb1 = h->omb1, omb2 = h->omb2, lrwd = h->lrwd, lr = h->lr, bc1 = h->bc1, bc2s = h->bc2_sqrt;
    const float eps = h->eps;
    for (size_t j = 0; j < len; j++) {
        float gi = gb[j] * gs;
        float mi = lerp_torch(mb[j], gi, omb1), vi = lerp_torch(vb[j], gi * gi, omb2);
        mb[j] = mi;
        vb[j] = vi;
        float pi = pb[j];
        pi = pi - lrwd * pi;
        pb[j] = pi - (lr * (mi / bc1)) / (sqrtf(vi) / bc2s + eps);
    }
}

LT_KERNEL void lt_kernel_ao_adam(lt_karr p, lt_karr g, float gs, size_t n, lt_kqstate m, lt_kqstate v,
                                 const lt_kao *h) {
    const size_t B = h->block, nblk = n / B; /* torchao quantizes only tensors that split into whole blocks */
    lt_lbtab tm, tv;
    const int simd = lt_lowbit_simd() && lt_lbtab_prepare(&tm, m.tab) && lt_lbtab_prepare(&tv, v.tab);
#pragma omp parallel for schedule(static) if (n >= LOWBIT_PAR_MIN)
    for (size_t blk = 0; blk < nblk; blk++) {
        size_t off = blk * B;
        float pb[LT_MAX_BLOCK], gb[LT_MAX_BLOCK], mb[LT_MAX_BLOCK], vb[LT_MAX_BLOCK];
        int32_t cb[LT_MAX_BLOCK];
        float qb[LT_MAX_BLOCK];
        float *pv = p_view(p, off, B, pb);
        const float *gv = p_view(g, off, B, gb);
        if (simd) {
            const size_t cb0 = h->bits == 8 ? off : off / 2; /* the block's first code byte */
            lt_lb512_ao_adam(pv, gv, gs, B, h, &tm, m.codes + cb0, &m.scale[blk], &tv, v.codes + cb0, &v.scale[blk]);
            p_done(p, off, B, pv);
            continue;
        }
        dequant_codes(m.tab, m.codes, off, B, h->bits, m.scale[blk], mb);
        dequant_codes(v.tab, v.codes, off, B, h->bits, v.scale[blk], vb);
        ao_adam_block(pv, gv, mb, vb, B, gs, h);
        float am = fmaxf(absmax(mb, B), 1e-12f), av = fmaxf(absmax(vb, B), 1e-12f);
        m.scale[blk] = am;
        v.scale[blk] = av;
        p_done(p, off, B, pv);
        quantize_block(m.tab, mb, B, am, 0, qb, cb);
        store_codes(cb, off, B, h->bits, m.codes);
        quantize_block(v.tab, vb, B, av, 0, qb, cb);
        store_codes(cb, off, B, h->bits, v.codes);
    }
}

typedef struct {
    lt_kao h;
    lt_dtype sdt; /* the states' dtype: the parameter's */
} ao_plain_ctx;

LT_KERNEL static void ao_plain_chunk(float *const *a, size_t n, float gs, const void *cv) {
    const ao_plain_ctx *c = cv;
    const lt_kao *h = &c->h;
    float *restrict p = a[0], *restrict m = a[2], *restrict v = a[3];
    const float *restrict g = a[1];
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * gs, pi = p[i];
        pi = pi - h->lrwd * pi;
        float mi = lerp_torch(m[i], gi, h->omb1), vi = lerp_torch(v[i], gi * gi, h->omb2);
        m[i] = lt_round_to(mi, c->sdt); /* stored in the param dtype; the step uses the fresh f32 values */
        v[i] = lt_round_to(vi, c->sdt);
        p[i] = pi - (h->lr * (mi / h->bc1)) / (sqrtf(vi) / h->bc2_sqrt + h->eps);
    }
}

void lt_kernel_ao_adam_plain(const lt_ktensor *t, const lt_kao *h) {
    ao_plain_ctx c = {*h, t->s[0].dt};
    lt_cpu_foreach(t, ao_plain_chunk, &c);
}

void lt_kernel_dequant(lt_kqstate s, size_t n, size_t block, int bits, float *out) {
    size_t nblk = (n + block - 1) / block;
    lt_lbtab t;
    const int simd = lt_lowbit_simd() && lt_lbtab_prepare(&t, s.tab);
#pragma omp parallel for schedule(static) if (n >= LOWBIT_PAR_MIN)
    for (size_t blk = 0; blk < nblk; blk++) {
        size_t off = blk * block, len = n - off < block ? n - off : block;
        if (simd) {
            lt_lb512_dequant(&t, s.codes + (bits == 8 ? off : off / 2), len, bits, s.scale[blk], out + off);
            continue;
        }
        dequant_codes(s.tab, s.codes, off, len, bits, s.scale[blk], out + off);
    }
}
