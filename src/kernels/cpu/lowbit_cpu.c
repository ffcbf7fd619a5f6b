/* CPU kernels of the low-bit optimizers. Blocks are independent (each owns its
 * scale and whole bytes of codes), so threads split the tensor by blocks; a
 * block's fresh f32 states live in a small buffer between the pass that
 * computes them (and their absmax) and the pass that writes p and the codes. */
#include <math.h>

#include "kernels/cpu/foreach.h"
#include "kernels/quant.h"

#define LT_MAX_BLOCK 4096
#define LOWBIT_PAR_MIN 65536

static inline float code_value(const lt_kqstate *s, int bits, size_t i) {
    int c = bits == 4 ? lt_q4_get(s->codes, i) : s->codes[i];
    return s->tab->map[c];
}

/* ---- bitsandbytes 8-bit blockwise ---- */

/* the code a block of absmax 0 stores: the map's value nearest 0 (exactly 0 in the shipped maps) */
static inline int zero_code(const lt_qtable *t) { return lt_q_nearest_even(t, 0.0f); }

static inline int quant_m_bnb(const lt_qtable *t, float m, float amax) {
    if (!(amax > 0.0f)) return zero_code(t);
    int c = lt_q_nearest_even(t, m / amax);
    /* the sign fix: a non-zero first moment keeps its sign bit through quantization */
    if (m != 0.0f && signbit(t->map[c]) != signbit(m)) c += m > 0.0f ? 1 : -1;
    return c;
}

static inline int quant_v_bnb(const lt_qtable *t, float v, float amax) {
    if (!(amax > 0.0f)) return zero_code(t);
    return lt_q_nearest_even(t, v / amax);
}

LT_KERNEL void lt_kernel_bnb8_adam(lt_karr p, lt_karr g, float gs, size_t n, lt_kqstate m, lt_kqstate v,
                                   const lt_kbnb *h) {
    const size_t B = h->block, nblk = (n + B - 1) / B;
#pragma omp parallel for schedule(static) if (n >= LOWBIT_PAR_MIN)
    for (size_t blk = 0; blk < nblk; blk++) {
        size_t off = blk * B, len = n - off < B ? n - off : B;
        float pb[LT_MAX_BLOCK], gb[LT_MAX_BLOCK], mb[LT_MAX_BLOCK], vb[LT_MAX_BLOCK];
        lt_cpu_load_f32(p, off, pb, len);
        lt_cpu_load_f32(g, off, gb, len);
        const float A1 = m.scale[blk], A2 = v.scale[blk];
        float a1 = 0.0f, a2 = 0.0f;
        for (size_t j = 0; j < len; j++) {
            float gi = gb[j] * gs, mi = 0.0f, vi = 0.0f;
            if (isfinite(gi)) {
                vi = v.tab->map[v.codes[off + j]] * A2;
                vi = vi * h->b2 + (h->omb2 * gi) * gi;
                mi = m.tab->map[m.codes[off + j]] * A1;
                mi = mi * h->b1 + h->omb1 * gi;
            }
            gb[j] = gi;
            mb[j] = mi;
            vb[j] = vi;
            a1 = fmaxf(a1, fabsf(mi));
            a2 = fmaxf(a2, fabsf(vi));
        }
        m.scale[blk] = a1;
        v.scale[blk] = a2;
        for (size_t j = 0; j < len; j++) {
            if (isfinite(gb[j])) {
                float pi = pb[j] + h->step * (mb[j] / (sqrtf(vb[j]) + h->c2eps));
                if (h->has_decay) pi = pi * h->decay;
                pb[j] = pi;
            }
            m.codes[off + j] = (uint8_t)quant_m_bnb(m.tab, mb[j], a1);
            v.codes[off + j] = (uint8_t)quant_v_bnb(v.tab, vb[j], a2);
        }
        lt_cpu_store_f32(p, off, pb, len);
    }
}

LT_KERNEL void lt_kernel_bnb8_lion(lt_karr p, lt_karr g, float gs, size_t n, lt_kqstate m, const lt_kbnb *h) {
    const size_t B = h->block, nblk = (n + B - 1) / B;
#pragma omp parallel for schedule(static) if (n >= LOWBIT_PAR_MIN)
    for (size_t blk = 0; blk < nblk; blk++) {
        size_t off = blk * B, len = n - off < B ? n - off : B;
        float pb[LT_MAX_BLOCK], gb[LT_MAX_BLOCK], mb[LT_MAX_BLOCK];
        lt_cpu_load_f32(p, off, pb, len);
        lt_cpu_load_f32(g, off, gb, len);
        const float A1 = m.scale[blk];
        float a1 = 0.0f;
        for (size_t j = 0; j < len; j++) {
            float gi = gb[j] * gs, mi = 0.0f;
            if (isfinite(gi)) {
                float mo = m.tab->map[m.codes[off + j]] * A1;
                float c = mo * h->b1 + h->omb1 * gi;
                float sg = (float)(c > 0.0f) - (float)(c < 0.0f);
                pb[j] = pb[j] * h->decay - h->lr * sg;
                mi = mo * h->b2 + h->omb2 * gi;
            }
            mb[j] = mi;
            a1 = fmaxf(a1, fabsf(mi));
        }
        m.scale[blk] = a1;
        for (size_t j = 0; j < len; j++) m.codes[off + j] = (uint8_t)quant_m_bnb(m.tab, mb[j], a1);
        lt_cpu_store_f32(p, off, pb, len);
    }
}

LT_KERNEL static void bnb32_adam_chunk(float *const *a, size_t n, float gs, const void *hv) {
    const lt_kbnb *h = hv;
    float *restrict p = a[0], *restrict m = a[2], *restrict v = a[3];
    const float *restrict g = a[1];
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * gs;
        if (!isfinite(gi)) continue;
        float mi = m[i] * h->b1 + h->omb1 * gi;
        float vi = v[i] * h->b2 + (h->omb2 * gi) * gi;
        float pi = p[i] + h->step * (mi / (sqrtf(vi) + h->c2eps));
        p[i] = h->has_decay ? pi * h->decay : pi;
        m[i] = mi;
        v[i] = vi;
    }
}

void lt_kernel_bnb32_adam(const lt_ktensor *t, const lt_kbnb *h) { lt_cpu_foreach(t, bnb32_adam_chunk, h); }

LT_KERNEL static void bnb32_lion_chunk(float *const *a, size_t n, float gs, const void *hv) {
    const lt_kbnb *h = hv;
    float *restrict p = a[0], *restrict m = a[2];
    const float *restrict g = a[1];
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * gs;
        if (!isfinite(gi)) continue;
        float mo = m[i];
        float c = mo * h->b1 + h->omb1 * gi;
        float sg = (float)(c > 0.0f) - (float)(c < 0.0f);
        p[i] = p[i] * h->decay - h->lr * sg;
        m[i] = mo * h->b2 + h->omb2 * gi;
    }
}

void lt_kernel_bnb32_lion(const lt_ktensor *t, const lt_kbnb *h) { lt_cpu_foreach(t, bnb32_lion_chunk, h); }

/* ---- torchao low-bit AdamW ---- */

/* torch's lerp: the form depends on the weight so that both ends are exact */
static inline float lerp_torch(float a, float b, float w) {
    return w < 0.5f ? a + w * (b - a) : b - (b - a) * (1.0f - w);
}

static inline void set_code(lt_kqstate *s, int bits, size_t i, int c) {
    if (bits == 4) lt_q4_set(s->codes, i, c);
    else s->codes[i] = (uint8_t)c;
}

LT_KERNEL void lt_kernel_ao_adam(lt_karr p, lt_karr g, float gs, size_t n, lt_kqstate m, lt_kqstate v,
                                 const lt_kao *h) {
    const size_t B = h->block, nblk = n / B; /* torchao quantizes only tensors that split into whole blocks */
#pragma omp parallel for schedule(static) if (n >= LOWBIT_PAR_MIN)
    for (size_t blk = 0; blk < nblk; blk++) {
        size_t off = blk * B;
        float pb[LT_MAX_BLOCK], gb[LT_MAX_BLOCK], mb[LT_MAX_BLOCK], vb[LT_MAX_BLOCK];
        lt_cpu_load_f32(p, off, pb, B);
        lt_cpu_load_f32(g, off, gb, B);
        const float sm = m.scale[blk], sv = v.scale[blk];
        float am = 0.0f, av = 0.0f;
        for (size_t j = 0; j < B; j++) {
            float gi = gb[j] * gs;
            float mi = lerp_torch(code_value(&m, h->bits, off + j) * sm, gi, h->omb1);
            float vi = lerp_torch(code_value(&v, h->bits, off + j) * sv, gi * gi, h->omb2);
            mb[j] = mi;
            vb[j] = vi;
            am = fmaxf(am, fabsf(mi));
            av = fmaxf(av, fabsf(vi));
        }
        am = fmaxf(am, 1e-12f);
        av = fmaxf(av, 1e-12f);
        m.scale[blk] = am;
        v.scale[blk] = av;
        for (size_t j = 0; j < B; j++) {
            float pi = pb[j];
            pi = pi - h->lrwd * pi;
            float den = sqrtf(vb[j]) / h->bc2_sqrt + h->eps;
            pb[j] = pi - (h->lr * (mb[j] / h->bc1)) / den;
            set_code(&m, h->bits, off + j, lt_q_nearest_up(m.tab, mb[j] / am));
            set_code(&v, h->bits, off + j, lt_q_nearest_up(v.tab, vb[j] / av));
        }
        lt_cpu_store_f32(p, off, pb, B);
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
        float den = sqrtf(vi) / h->bc2_sqrt + h->eps;
        p[i] = pi - (h->lr * (mi / h->bc1)) / den;
    }
}

void lt_kernel_ao_adam_plain(const lt_ktensor *t, const lt_kao *h) {
    ao_plain_ctx c = {*h, t->s[0].dt};
    lt_cpu_foreach(t, ao_plain_chunk, &c);
}

void lt_kernel_dequant(lt_kqstate s, size_t n, size_t block, int bits, float *out) {
#pragma omp parallel for schedule(static) if (n >= LOWBIT_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = code_value(&s, bits, i) * s.scale[i / block];
}
