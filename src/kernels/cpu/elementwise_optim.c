/* CPU kernels of the elementwise optimizers: one fused pass per tensor.
 * Each chunk function follows the reference's operation order (torch's
 * single-tensor path) so that f32 results match it up to its own rounding. */
#include <math.h>

#include "kernels/cpu/foreach.h"

/* ---- AdamW / Adam / AMSGrad ----
 * torch's vectorized CPU kernels give these forms, which the reference
 * traces match bit for bit:
 *   a.add_(b, alpha=s)          fmaf(s, b, a)
 *   a.addcmul_(b, c, value=s)   fmaf(s*b, c, a)
 *   a.addcdiv_(b, c, value=s)   a + (s*b)/c        (no fusion)
 * so m = fmaf(1-b1, g, m*b1), v = fmaf((1-b2)*g, g, v*b2), p = p + (-ss*m)/den. */
LT_KERNEL static void adam_chunk(float *const *a, size_t n, float gs, const void *hv) {
    const lt_kadam *h = hv;
    float *restrict p = a[0], *restrict m = a[2], *restrict v = a[3], *restrict vmax = a[4];
    const float *restrict g = a[1];
    const float decay = h->decay, l2 = h->l2, b1 = h->b1, omb1 = h->omb1, b2 = h->b2, omb2 = h->omb2;
    const float nss = -h->step_size, bc2 = h->bc2_sqrt, eps = h->eps;
    if (h->amsgrad) {
        for (size_t i = 0; i < n; i++) {
            float pi = p[i], gi = g[i] * gs;
            gi = fmaf(l2, pi, gi);
            pi = pi * decay;
            float mi = fmaf(omb1, gi, m[i] * b1);
            float vi = fmaf(omb2 * gi, gi, v[i] * b2);
            float vm = vmax[i] > vi ? vmax[i] : vi;
            float den = sqrtf(vm) / bc2 + eps;
            p[i] = pi + (nss * mi) / den;
            m[i] = mi;
            v[i] = vi;
            vmax[i] = vm;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            float pi = p[i], gi = g[i] * gs;
            gi = fmaf(l2, pi, gi);
            pi = pi * decay;
            float mi = fmaf(omb1, gi, m[i] * b1);
            float vi = fmaf(omb2 * gi, gi, v[i] * b2);
            float den = sqrtf(vi) / bc2 + eps;
            p[i] = pi + (nss * mi) / den;
            m[i] = mi;
            v[i] = vi;
        }
    }
}

void lt_kernel_adam(const lt_ktensor *t, const lt_kadam *h) { lt_cpu_foreach(t, adam_chunk, h); }

/* ---- AnyPrecisionAdamW ----
 * m, v and the compensation are rounded to their storage dtypes where
 * torchdistx stores them. The parameter follows the one-rounding rule of every
 * optimizer here: the decayed p stays f32 and is rounded once with the
 * update, so with Kahan the decay's rounding error also lands in the
 * compensation (torchdistx rounds the decayed bf16 p first; with weight
 * decay 0, and for f32 p, the two agree exactly). The body is specialised per
 * dtype combination so each loop vectorizes. */
typedef struct {
    lt_kanyprec h;
    lt_dtype pdt, mdt, vdt, cdt;
    int kahan;
} anyprec_ctx;

static inline __attribute__((always_inline)) void anyprec_body(float *const *a, size_t n, float gs,
                                                               const lt_kanyprec *h, const lt_dtype pdt,
                                                               const lt_dtype mdt, const lt_dtype vdt,
                                                               const lt_dtype cdt, const int kahan) {
    float *restrict p = a[0], *restrict m = a[2], *restrict v = a[3], *restrict comp = a[4];
    const float *restrict g = a[1];
    /* the hyperparameters in locals: read through h inside the loop, the compiler must assume the stores to
     * p, m, v may change them, and the Kahan loops did not vectorize */
    const float decay = h->decay, b1 = h->b1, omb1 = h->omb1, b2 = h->b2, omb2 = h->omb2;
    const float nss = -h->step_size, bc2 = h->bc2_sqrt, eps = h->eps;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * gs;
        float pi = p[i] * decay;
        float mi = lt_round_to(fmaf(omb1, gi, lt_round_to(m[i] * b1, mdt)), mdt);
        float vi = lt_round_to(fmaf(omb2 * gi, gi, lt_round_to(v[i] * b2, vdt)), vdt);
        float den = sqrtf(vi) / bc2 + eps;
        float upd = (nss * mi) / den;
        if (kahan) {
            float ci = lt_round_to(comp[i] + upd, cdt);
            float pn = lt_round_to(pi + ci, pdt);
            float back = pi - pn;
            comp[i] = lt_round_to(ci + back, cdt);
            pi = pn;
        } else {
            pi = pi + upd;
        }
        p[i] = pi;
        m[i] = mi;
        v[i] = vi;
    }
}

#define F32 LT_DTYPE_F32
#define BF16 LT_DTYPE_BF16
LT_KERNEL static void anyprec_chunk(float *const *a, size_t n, float gs, const void *cv) {
    const anyprec_ctx *c = cv;
    const lt_kanyprec *h = &c->h;
    /* every combination of f32 and bf16 parameter and states (a bf16 compensation) compiled on its own, so that
     * each loop vectorizes; f16 anywhere takes the general body */
    int key = (c->pdt == BF16) << 3 | (c->mdt == BF16) << 2 | (c->vdt == BF16) << 1 | c->kahan;
    int special = (c->pdt == F32 || c->pdt == BF16) && (c->mdt == F32 || c->mdt == BF16) &&
                  (c->vdt == F32 || c->vdt == BF16) && c->cdt == BF16;
#define AP_CASE(k) \
    case k: \
        anyprec_body(a, n, gs, h, (k) & 8 ? BF16 : F32, (k) & 4 ? BF16 : F32, (k) & 2 ? BF16 : F32, BF16, (k) & 1); \
        return;
    if (special) switch (key) {
            AP_CASE(0) AP_CASE(1) AP_CASE(2) AP_CASE(3) AP_CASE(4) AP_CASE(5) AP_CASE(6) AP_CASE(7)
            AP_CASE(8) AP_CASE(9) AP_CASE(10) AP_CASE(11) AP_CASE(12) AP_CASE(13) AP_CASE(14) AP_CASE(15)
        default: break;
        }
#undef AP_CASE
    anyprec_body(a, n, gs, h, c->pdt, c->mdt, c->vdt, c->cdt, c->kahan);
}
#undef F32
#undef BF16

void lt_kernel_anyprecision(const lt_ktensor *t, const lt_kanyprec *h) {
    anyprec_ctx c = {*h, t->p.dt, t->s[0].dt, t->s[1].dt, t->s[2].ptr ? t->s[2].dt : LT_DTYPE_BF16,
                     t->s[2].ptr != NULL};
    lt_cpu_foreach(t, anyprec_chunk, &c);
}

/* ---- SGD ---- */
LT_KERNEL static void sgd_chunk(float *const *a, size_t n, float gs, const void *hv) {
    const lt_ksgd *h = hv;
    float *restrict p = a[0], *restrict buf = a[2];
    const float *restrict g = a[1];
    const float nlr = -h->lr, wd = h->wd, mu = h->momentum, omd = h->omdamp;
    if (!buf) {
        for (size_t i = 0; i < n; i++) {
            float gi = fmaf(wd, p[i], g[i] * gs);
            p[i] = fmaf(nlr, gi, p[i]);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        float gi = fmaf(wd, p[i], g[i] * gs);
        float b = h->first ? gi : fmaf(omd, gi, buf[i] * mu);
        float d = h->nesterov ? fmaf(mu, b, gi) : b;
        buf[i] = b;
        p[i] = fmaf(nlr, d, p[i]);
    }
}

void lt_kernel_sgd(const lt_ktensor *t, const lt_ksgd *h) { lt_cpu_foreach(t, sgd_chunk, h); }

/* ---- Adagrad ---- */
LT_KERNEL static void adagrad_chunk(float *const *a, size_t n, float gs, const void *hv) {
    const lt_kadagrad *h = hv;
    float *restrict p = a[0], *restrict sum = a[2];
    const float *restrict g = a[1];
    const float nclr = -h->clr, wd = h->wd, eps = h->eps;
    for (size_t i = 0; i < n; i++) {
        float gi = fmaf(wd, p[i], g[i] * gs);
        float s = fmaf(gi, gi, sum[i]);
        sum[i] = s;
        p[i] = p[i] + (nclr * gi) / (sqrtf(s) + eps);
    }
}

void lt_kernel_adagrad(const lt_ktensor *t, const lt_kadagrad *h) { lt_cpu_foreach(t, adagrad_chunk, h); }

/* ---- RMSprop ---- (specialised on centered and momentum so each loop vectorizes) */
static inline __attribute__((always_inline)) void rmsprop_body(float *const *a, size_t n, float gs,
                                                               const lt_krmsprop *h, const int centered,
                                                               const int mom) {
    float *restrict p = a[0], *restrict sq = a[2], *restrict buf = a[3], *restrict ga = a[4];
    const float *restrict g = a[1];
    const float nlr = -h->lr, wd = h->wd, al = h->alpha, omal = h->omalpha, eps = h->eps, mu = h->momentum;
    for (size_t i = 0; i < n; i++) {
        float gi = fmaf(wd, p[i], g[i] * gs);
        float s = fmaf(omal * gi, gi, sq[i] * al);
        sq[i] = s;
        float avg;
        if (centered) {
            float gai = fmaf(omal, gi, ga[i] * al);
            ga[i] = gai;
            avg = sqrtf(fmaf(-gai, gai, s)) + eps;
        } else {
            avg = sqrtf(s) + eps;
        }
        if (mom) {
            float b = buf[i] * mu + gi / avg;
            buf[i] = b;
            p[i] = fmaf(nlr, b, p[i]);
        } else {
            p[i] = p[i] + (nlr * gi) / avg;
        }
    }
}

LT_KERNEL static void rmsprop_chunk(float *const *a, size_t n, float gs, const void *hv) {
    const lt_krmsprop *h = hv;
    if (a[4] && a[3]) rmsprop_body(a, n, gs, h, 1, 1);
    else if (a[4]) rmsprop_body(a, n, gs, h, 1, 0);
    else if (a[3]) rmsprop_body(a, n, gs, h, 0, 1);
    else rmsprop_body(a, n, gs, h, 0, 0);
}

void lt_kernel_rmsprop(const lt_ktensor *t, const lt_krmsprop *h) { lt_cpu_foreach(t, rmsprop_chunk, h); }

/* ---- Lion ---- */
LT_KERNEL static void lion_chunk(float *const *a, size_t n, float gs, const void *hv) {
    const lt_klion *h = hv;
    float *restrict p = a[0], *restrict m = a[2];
    const float *restrict g = a[1];
    const float decay = h->decay, nlr = -h->lr, b1 = h->b1, omb1 = h->omb1, b2 = h->b2, omb2 = h->omb2;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * gs, mi = m[i];
        float c = fmaf(omb1, gi, mi * b1);
        float sg = (float)(c > 0.0f) - (float)(c < 0.0f);
        p[i] = p[i] * decay + nlr * sg;
        m[i] = fmaf(omb2, gi, mi * b2);
    }
}

void lt_kernel_lion(const lt_ktensor *t, const lt_klion *h) { lt_cpu_foreach(t, lion_chunk, h); }
