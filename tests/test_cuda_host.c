/* The CUDA backend, checked on the host (no GPU needed):
 *  - the device's per-element math (kernels/cuda/cu_math.h, compiled here by
 *    the C compiler) gives the CPU kernels' bits for every elementwise
 *    optimizer and option, f32 and bf16 parameters, non-finite gradients;
 *  - the low-bit block step, emulated block by block with the device's
 *    functions and search table, gives the CPU kernels' parameters, codes and
 *    scales (bitsandbytes 8-bit AdamW and Lion, torchao 8-bit and 4-bit),
 *    partial and all-zero blocks and overflow included;
 *  - the square roots and divisions of the 8-bit AdamW kernel's voted step:
 *    the operands each takes and refuses, the fast sequences behind them, and
 *    the element step with them against its twin;
 *  - the device's nearest-code search equals lt_q_nearest for every shipped
 *    map and rule (sampled over all floats, every threshold and its
 *    neighbours, inf and NaN), and the dtype conversions equal dtype.h's;
 *  - the work lists: every unit maps to its tensor and the chunks cover each
 *    tensor once; Adafactor's device algorithm (row groups, column partial
 *    sums, the norm from the row pass, the final scalars), emulated in its
 *    order, matches the CPU optimizer to float rounding;
 *  - stochastic rounding on the CPU: each bf16 result is one of the two
 *    neighbours of the f32 result, reproducible, unbiased;
 *  - without a GPU (or CUDA support) a device parameter is refused with a
 *    message (checked where lt_cuda_device_count is 0). */
#include <float.h>
#include <math.h>
#include <stdint.h>

#include "kernels/cuda/cu_plan.h"
#include "kernels/cuda/cu_tune.h"
#include "kernels/quant.h"
#include "leantrain/optim.h"
#include "testutil.h"

static uint64_t rng = 1;
static uint32_t rnd32(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng >> 32);
}
static float uni(void) { return (float)(rnd32() >> 8) / 16777216.0f; } /* [0, 1) */
static float sym(float a) { return a * (2.0f * uni() - 1.0f); }
static uint32_t bits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}
static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- dtype conversions ---- */
static void test_conversions(void) {
    long bad = 0;
    for (uint32_t h = 0; h < 65536; h++) bad += bits(lt_cu_f16_to_f32((uint16_t)h)) != bits(lt_f16_to_f32((uint16_t)h));
    CHECK(bad == 0, "f16 -> f32: %ld of 65536 differ", bad);
    bad = 0;
    for (long i = 0; i < 4000000; i++) {
        uint32_t u = i < 65536 ? (uint32_t)i << 16 | (uint32_t)(i * 7919) : rnd32();
        if (i % 5 == 0) u = (u & 0x807fffffu) | ((100u + (u >> 24) % 60u) << 23); /* around f16's range */
        float f = from_bits(u);
        uint32_t r = rnd32() & 0xffffu;
        bad += lt_cu_f32_to_bf16(f) != lt_f32_to_bf16(f);
        bad += lt_cu_f32_to_bf16_sr(f, r) != lt_f32_to_bf16_sr(f, r);
        bad += lt_cu_f32_to_f16(f) != lt_f32_to_f16(f);
    }
    CHECK(bad == 0, "f32 -> bf16 / bf16 (stochastic) / f16: %ld differ", bad);
}

/* ---- elementwise: the device functions element by element against the CPU kernels ---- */
enum { N = 3000 };

typedef struct {
    lt_dtype pdt, sdt[4];
    int ns;      /* states used */
    int present; /* bitmask of states that exist */
} layout;

/* random parameter, gradient (with a few non-finite and zero values) and states (valid ranges) */
static void fill(float *p, float *g, float (*s)[N], int nonfinite) {
    for (int i = 0; i < N; i++) {
        p[i] = sym(1.0f);
        g[i] = sym(0.1f) * (i % 17 == 0 ? 100.0f : 1.0f);
        if (i % 101 == 0) g[i] = 0.0f;
        for (int k = 0; k < 4; k++) s[k][i] = k == 1 || k == 2 ? 0.01f * uni() : sym(0.05f); /* v, vmax >= 0 */
    }
    if (nonfinite) g[5] = NAN, g[6] = INFINITY, g[7] = -INFINITY, g[8] = 3e38f;
}

/* stores float arrays as dtype dt (nearest even) into raw buffers */
static void to_dtype(const float *x, lt_dtype dt, void *out) {
    for (int i = 0; i < N; i++) {
        if (dt == LT_DTYPE_F32) ((float *)out)[i] = x[i];
        else if (dt == LT_DTYPE_BF16) ((uint16_t *)out)[i] = lt_f32_to_bf16(x[i]);
        else ((uint16_t *)out)[i] = lt_f32_to_f16(x[i]);
    }
}
static float ld1(const void *b, lt_dtype dt, int i) {
    if (dt == LT_DTYPE_F32) return ((const float *)b)[i];
    if (dt == LT_DTYPE_BF16) return lt_cu_bf16_to_f32(((const uint16_t *)b)[i]);
    return lt_cu_f16_to_f32(((const uint16_t *)b)[i]);
}
static void st1(void *b, lt_dtype dt, int i, float x, uint32_t sr) {
    if (dt == LT_DTYPE_F32) ((float *)b)[i] = x;
    else if (dt == LT_DTYPE_BF16)
        ((uint16_t *)b)[i] = sr ? lt_cu_f32_to_bf16_sr(x, lt_sr_bits(sr, (uint64_t)i)) : lt_cu_f32_to_bf16(x);
    else ((uint16_t *)b)[i] = lt_cu_f32_to_f16(x);
}

/* the device kernel's per-element path (elementwise.cu step_elems) on raw buffers */
static void device_ew(int kind, const lt_ktensor *t, const void *h) {
    for (int i = 0; i < (int)t->n; i++) {
        float p = ld1(t->p.ptr, t->p.dt, i), g = ld1(t->g.ptr, t->g.dt, i), s[4] = {0, 0, 0, 0};
        for (int k = 0; k < 4; k++)
            if (t->s[k].ptr) s[k] = ld1(t->s[k].ptr, t->s[k].dt, i);
        float *s2 = t->s[2].ptr ? &s[2] : NULL, *s1 = t->s[1].ptr ? &s[1] : NULL, *s0 = t->s[0].ptr ? &s[0] : NULL;
        switch (kind) {
        case LT_CU_ADAM: lt_em_adam(h, t->gscale, &p, g, &s[0], &s[1], ((const lt_kadam *)h)->amsgrad ? s2 : NULL); break;
        case LT_CU_ANYPREC:
            lt_em_anyprec(h, t->gscale, t->p.dt, t->s[0].dt, t->s[1].dt, t->s[2].dt, &p, g, &s[0], &s[1], s2);
            break;
        case LT_CU_SGD: lt_em_sgd(h, t->gscale, &p, g, s0); break;
        case LT_CU_ADAGRAD: lt_em_adagrad(h, t->gscale, &p, g, &s[0]); break;
        case LT_CU_RMSPROP: lt_em_rmsprop(h, t->gscale, &p, g, &s[0], s1, s2); break;
        case LT_CU_LION: lt_em_lion(h, t->gscale, &p, g, &s[0]); break;
        case LT_CU_BNB32_ADAM: lt_em_bnb32_adam(h, t->gscale, &p, g, &s[0], &s[1]); break;
        case LT_CU_BNB32_LION: lt_em_bnb32_lion(h, t->gscale, &p, g, &s[0]); break;
        case LT_CU_AO_PLAIN: lt_em_ao_plain(h, t->gscale, t->s[0].dt, &p, g, &s[0], &s[1]); break;
        }
        st1(t->p.ptr, t->p.dt, i, p, t->p.dt == LT_DTYPE_BF16 ? t->p.sr : 0);
        for (int k = 0; k < 4; k++)
            if (t->s[k].ptr) st1(t->s[k].ptr, t->s[k].dt, i, s[k], 0);
    }
}

static void cpu_ew(int kind, const lt_ktensor *t, const void *h) {
    switch (kind) {
    case LT_CU_ADAM: lt_kernel_adam(t, h); break;
    case LT_CU_ANYPREC: lt_kernel_anyprecision(t, h); break;
    case LT_CU_SGD: lt_kernel_sgd(t, h); break;
    case LT_CU_ADAGRAD: lt_kernel_adagrad(t, h); break;
    case LT_CU_RMSPROP: lt_kernel_rmsprop(t, h); break;
    case LT_CU_LION: lt_kernel_lion(t, h); break;
    case LT_CU_BNB32_ADAM: lt_kernel_bnb32_adam(t, h); break;
    case LT_CU_BNB32_LION: lt_kernel_bnb32_lion(t, h); break;
    case LT_CU_AO_PLAIN: lt_kernel_ao_adam_plain(t, h); break;
    }
}

/* runs one kind both ways from the same random start and compares every byte */
static void ew_case(const char *what, int kind, const void *h, lt_dtype pdt, const lt_dtype *sdt, int present,
                    float gscale, uint32_t sr) {
    static float p[N], g[N], s[4][N];
    static uint64_t buf[2][6][N]; /* raw storage, 8 bytes per element is enough for any dtype */
    fill(p, g, s, kind == LT_CU_BNB32_ADAM || kind == LT_CU_BNB32_LION);
    lt_ktensor t[2];
    for (int w = 0; w < 2; w++) {
        memset(&t[w], 0, sizeof t[w]);
        to_dtype(p, pdt, buf[w][0]);
        to_dtype(g, LT_DTYPE_F32, buf[w][1]);
        t[w].p = (lt_karr){buf[w][0], pdt, sr};
        t[w].g = (lt_karr){buf[w][1], LT_DTYPE_F32, 0};
        for (int k = 0; k < 4; k++) {
            t[w].s[k].dt = sdt[k];
            if (present >> k & 1) {
                to_dtype(s[k], sdt[k], buf[w][2 + k]);
                t[w].s[k].ptr = buf[w][2 + k];
            }
        }
        t[w].n = N;
        t[w].gscale = gscale;
    }
    cpu_ew(kind, &t[0], h);
    device_ew(kind, &t[1], h);
    int bad = memcmp(buf[0][0], buf[1][0], N * lt_dtype_size(pdt)) != 0;
    for (int k = 0; k < 4; k++)
        if (present >> k & 1) bad |= (memcmp(buf[0][2 + k], buf[1][2 + k], N * lt_dtype_size(sdt[k])) != 0) << (k + 1);
    CHECK(bad == 0, "%s: the device math differs from the CPU kernel (mask %d: 1 = p, 2.. = states)", what, bad);
}

static void test_elementwise(void) {
    const lt_dtype F = LT_DTYPE_F32, B = LT_DTYPE_BF16;
    const lt_dtype f4[4] = {F, F, F, F};
    for (int pb = 0; pb < 2; pb++) {
        lt_dtype pdt = pb ? B : F;
        char what[128];
        lt_kadam ka = {1.0f - 1e-3f * 0.1f, 0.0f, 0.9f, 0.1f, 0.999f, 0.001f, 1e-3f / 0.271f, 0.0871f, 1e-8f, 0};
        snprintf(what, sizeof what, "adamw (p %s)", lt_dtype_name(pdt));
        ew_case(what, LT_CU_ADAM, &ka, pdt, f4, 3, 0.5f, 0);
        ka.amsgrad = 1;
        snprintf(what, sizeof what, "adamw amsgrad (p %s)", lt_dtype_name(pdt));
        ew_case(what, LT_CU_ADAM, &ka, pdt, f4, 7, 1.0f, 0);
        ka.amsgrad = 0, ka.decay = 1.0f, ka.l2 = 0.05f;
        snprintf(what, sizeof what, "adam L2 (p %s)", lt_dtype_name(pdt));
        ew_case(what, LT_CU_ADAM, &ka, pdt, f4, 3, 1.0f, 0);
        lt_kanyprec kp = {1.0f - 1e-4f, 0.9f, 0.1f, 0.999f, 0.001f, 1e-3f / 0.19f, 0.0632f, 1e-8f};
        const lt_dtype abf[4] = {B, B, B, F};
        snprintf(what, sizeof what, "anyprecision f32 states (p %s)", lt_dtype_name(pdt));
        ew_case(what, LT_CU_ANYPREC, &kp, pdt, f4, 3, 1.0f, 0);
        snprintf(what, sizeof what, "anyprecision bf16 states + Kahan (p %s)", lt_dtype_name(pdt));
        ew_case(what, LT_CU_ANYPREC, &kp, pdt, abf, 7, 1.0f, 0);
        lt_ksgd ks = {1e-2f, 0.01f, 0.9f, 1.0f, 0, 1};
        snprintf(what, sizeof what, "sgd momentum first step (p %s)", lt_dtype_name(pdt));
        ew_case(what, LT_CU_SGD, &ks, pdt, f4, 1, 1.0f, 0);
        ks.first = 0, ks.nesterov = 1;
        snprintf(what, sizeof what, "sgd nesterov (p %s)", lt_dtype_name(pdt));
        ew_case(what, LT_CU_SGD, &ks, pdt, f4, 1, 1.0f, 0);
        ks.nesterov = 0, ks.omdamp = 0.9f;
        snprintf(what, sizeof what, "sgd dampening (p %s)", lt_dtype_name(pdt));
        ew_case(what, LT_CU_SGD, &ks, pdt, f4, 1, 1.0f, 0);
        snprintf(what, sizeof what, "sgd plain (p %s)", lt_dtype_name(pdt));
        ew_case(what, LT_CU_SGD, &ks, pdt, f4, 0, 1.0f, 0);
        lt_kadagrad kg = {1e-2f / 1.02f, 0.01f, 1e-10f};
        snprintf(what, sizeof what, "adagrad (p %s)", lt_dtype_name(pdt));
        ew_case(what, LT_CU_ADAGRAD, &kg, pdt, f4, 1, 1.0f, 0);
        lt_krmsprop kr = {1e-3f, 0.01f, 0.99f, 0.01f, 1e-8f, 0.9f};
        for (int m = 0; m < 4; m++) {
            snprintf(what, sizeof what, "rmsprop momentum %d centered %d (p %s)", m & 1, m >> 1, lt_dtype_name(pdt));
            ew_case(what, LT_CU_RMSPROP, &kr, pdt, f4, 1 | (m & 1) << 1 | (m >> 1) << 2, 1.0f, 0);
        }
        lt_klion kl = {1.0f - 1e-5f, 1e-4f, 0.9f, 0.1f, 0.99f, 0.01f};
        snprintf(what, sizeof what, "lion (p %s)", lt_dtype_name(pdt));
        ew_case(what, LT_CU_LION, &kl, pdt, f4, 1, 1.0f, 0);
        lt_kbnb kb = {0.9f, 0.1f, 0.999f, 0.001f, -1e-3f * 0.0447f / 0.1f, 0.0447f * 1e-8f, 1.0f - 1e-5f, 1e-4f, 1, 256};
        snprintf(what, sizeof what, "bnb 32-bit adam, non-finite g (p %s)", lt_dtype_name(pdt));
        ew_case(what, LT_CU_BNB32_ADAM, &kb, pdt, f4, 3, 1.0f, 0);
        snprintf(what, sizeof what, "bnb 32-bit lion, non-finite g (p %s)", lt_dtype_name(pdt));
        ew_case(what, LT_CU_BNB32_LION, &kb, pdt, f4, 1, 1.0f, 0);
        lt_kao ko = {1e-5f, 0.1f, 0.001f, 1e-3f, 0.271f, 0.0871f, 1e-8f, 256, 8};
        const lt_dtype aos[4] = {pdt, pdt, F, F};
        snprintf(what, sizeof what, "torchao unquantized (p and states %s)", lt_dtype_name(pdt));
        ew_case(what, LT_CU_AO_PLAIN, &ko, pdt, aos, 3, 1.0f, 0);
    }
    /* stochastic rounding on write-back: the CPU store and the device store agree bit for bit */
    lt_kadam ka = {1.0f - 1e-4f, 0.0f, 0.9f, 0.1f, 0.999f, 0.001f, 1e-2f, 0.0871f, 1e-8f, 0};
    ew_case("adamw bf16 p, stochastic rounding", LT_CU_ADAM, &ka, LT_DTYPE_BF16, f4, 3, 1.0f, 0x9e3779b9u);
}

/* ---- low-bit blocks: the device kernel's block algorithm with its table, against the CPU ---- */
typedef struct {
    lt_qtable *t[2];
    lt_cu_qtab *d[2];
} tabs;

static void device_q(int kind, float *p, const float *g, float gs, size_t n, uint8_t *c1, float *s1, uint8_t *c2,
                     float *s2, const tabs *T, const void *h) {
    const int ao = kind == LT_CU_AO8 || kind == LT_CU_AO4, two = kind != LT_CU_BNB8_LION, four = kind == LT_CU_AO4;
    const size_t B = ao ? ((const lt_kao *)h)->block : ((const lt_kbnb *)h)->block;
    size_t nblk = ao ? n / B : (n + B - 1) / B;
    static float m[4096], v[4096];
    for (size_t blk = 0; blk < nblk; blk++) {
        size_t off = blk * B, len = n - off < B ? n - off : B;
        uint32_t a1 = 0, a2 = 0;
        for (size_t j = 0; j < len; j++) {
            size_t i = off + j;
            int k1 = four ? ((i & 1) ? c1[i / 2] & 0xf : c1[i / 2] >> 4) : c1[i];
            int k2 = !two ? 0 : four ? ((i & 1) ? c2[i / 2] & 0xf : c2[i / 2] >> 4) : c2[i];
            m[j] = T->d[0]->map[k1] * s1[blk];
            v[j] = two ? T->d[1]->map[k2] * s2[blk] : 0.0f;
            if (kind == LT_CU_BNB8_ADAM) lt_em_bnb8_adam(h, gs, &p[i], g[i], &m[j], &v[j]);
            else if (kind == LT_CU_BNB8_LION) lt_em_bnb8_lion(h, gs, &p[i], g[i], &m[j]);
            else lt_em_ao_adam(h, gs, &p[i], g[i], &m[j], &v[j]);
            a1 = lt_cu_absbits(m[j]) > a1 ? lt_cu_absbits(m[j]) : a1;
            a2 = lt_cu_absbits(v[j]) > a2 ? lt_cu_absbits(v[j]) : a2;
        }
        float am1 = from_bits(a1), am2 = from_bits(a2);
        if (ao) am1 = fmaxf(am1, 1e-12f), am2 = fmaxf(am2, 1e-12f);
        s1[blk] = am1;
        if (two) s2[blk] = am2;
        for (size_t j = 0; j < len; j++) {
            size_t i = off + j;
            /* as the kernel does: one reciprocal per block (lt_cu_qdiv), the branch-free search for a block of
             * finite values with a maximum in range (lt_cu_qfast) */
            const lt_cu_qdiv d1 = lt_cu_qdiv_make(T->d[0], am1), d2 = lt_cu_qdiv_make(T->d[1], two ? am2 : am1);
            const lt_cu_qfast f1 = lt_cu_qfast_make(T->d[0]), f2 = lt_cu_qfast_make(T->d[1]);
            const int fast = lt_cu_qfast_ok(&d1, a1) && (ao || f1.sfok) && (!two || lt_cu_qfast_ok(&d2, a2));
            int k1 = fast ? lt_cu_quantize_f(T->d[0], &f1, &d1, m[j], !ao) : lt_cu_quantize_d(T->d[0], &d1, m[j], !ao);
            int k2 = !two ? 0 : fast ? lt_cu_quantize_f(T->d[1], &f2, &d2, v[j], 0) : lt_cu_quantize_d(T->d[1], &d2, v[j], 0);
            if (four) {
                c1[i / 2] = (i & 1) ? (uint8_t)((c1[i / 2] & 0xf0) | k1) : (uint8_t)((c1[i / 2] & 0x0f) | k1 << 4);
                c2[i / 2] = (i & 1) ? (uint8_t)((c2[i / 2] & 0xf0) | k2) : (uint8_t)((c2[i / 2] & 0x0f) | k2 << 4);
            } else {
                c1[i] = (uint8_t)k1;
                if (two) c2[i] = (uint8_t)k2;
            }
        }
    }
}

static void lowbit_case(const char *what, int kind, size_t n, const void *h, const tabs *T) {
    const int ao = kind == LT_CU_AO8 || kind == LT_CU_AO4, four = kind == LT_CU_AO4;
    const size_t B = ao ? ((const lt_kao *)h)->block : ((const lt_kbnb *)h)->block, nblk = (n + B - 1) / B;
    const size_t ncodes = four ? n / 2 : n;
    float *p[2], *g = malloc(n * 4), *s1[2], *s2[2];
    uint8_t *c1[2], *c2[2];
    for (int w = 0; w < 2; w++) {
        p[w] = malloc(n * 4), s1[w] = malloc(nblk * 4), s2[w] = malloc(nblk * 4);
        c1[w] = malloc(ncodes), c2[w] = malloc(ncodes);
    }
    for (size_t i = 0; i < n; i++) p[0][i] = sym(0.5f);
    for (int step = 0; step < 4; step++) {
        for (size_t i = 0; i < n; i++) g[i] = i < B ? 0.0f : sym(0.01f) * (i % 31 == 0 ? 50.0f : 1.0f); /* block 0: zero */
        if (step == 2) g[B + 3] = NAN, g[B + 4] = INFINITY, g[2 * B + 1] = 3e38f; /* overflow: inf state, NaN codes */
        if (step == 0) { /* both start from the same state: fresh codes of 0, or random ones */
            for (size_t i = 0; i < ncodes; i++) c1[0][i] = (uint8_t)rnd32(), c2[0][i] = (uint8_t)rnd32();
            for (size_t b = 0; b < nblk; b++) s1[0][b] = 0.01f * uni(), s2[0][b] = 1e-4f * uni();
            if (four)
                for (size_t i = 0; i < ncodes; i++) c1[0][i] &= 0xff, c2[0][i] &= 0xff;
            else if (!ao)
                for (size_t i = 0; i < B; i++) c1[0][i] = 127, c2[0][i] = 0;
            memcpy(p[1], p[0], n * 4), memcpy(c1[1], c1[0], ncodes), memcpy(c2[1], c2[0], ncodes);
            memcpy(s1[1], s1[0], nblk * 4), memcpy(s2[1], s2[0], nblk * 4);
            if (!ao) s1[0][0] = s1[1][0] = s2[0][0] = s2[1][0] = 0.0f;
        }
        lt_kqstate m = {c1[0], s1[0], T->t[0]}, v = {c2[0], s2[0], T->t[1]};
        lt_karr pa = {p[0], LT_DTYPE_F32, 0}, ga = {g, LT_DTYPE_F32, 0};
        if (kind == LT_CU_BNB8_ADAM) lt_kernel_bnb8_adam(pa, ga, g ? 0.5f : 1.0f, n, m, v, h);
        else if (kind == LT_CU_BNB8_LION) lt_kernel_bnb8_lion(pa, ga, 0.5f, n, m, h);
        else lt_kernel_ao_adam(pa, ga, 0.5f, n, m, v, h);
        device_q(kind, p[1], g, 0.5f, n, c1[1], s1[1], c2[1], s2[1], T, h);
        int bad = (memcmp(p[0], p[1], n * 4) != 0) | (memcmp(c1[0], c1[1], ncodes) != 0) << 1 |
                  (memcmp(s1[0], s1[1], (ao ? n / B : nblk) * 4) != 0) << 2;
        if (kind != LT_CU_BNB8_LION)
            bad |= (memcmp(c2[0], c2[1], ncodes) != 0) << 3 | (memcmp(s2[0], s2[1], (ao ? n / B : nblk) * 4) != 0) << 4;
        CHECK(bad == 0, "%s, step %d: the device block step differs from the CPU (mask %d: p, codes1, scale1, codes2, "
              "scale2)", what, step, bad);
    }
    for (int w = 0; w < 2; w++) free(p[w]), free(s1[w]), free(s2[w]), free(c1[w]), free(c2[w]);
    free(g);
}

static lt_qtable *qt(const float *map, int n, lt_qrule rule) {
    lt_qtable *t = malloc(sizeof *t);
    CHECK(lt_qtable_build(t, map, n, rule) == 0, "table build");
    return t;
}
static lt_cu_qtab *dqt(const lt_qtable *t) {
    lt_cu_qtab *d = malloc(sizeof *d);
    CHECK(lt_cu_qtab_build(d, t) == 0, "device table build");
    return d;
}

static void test_qcode(void) {
    const float *maps[4] = {lt_qmap_signed8, lt_qmap_unsigned8, lt_qmap_signed4, lt_qmap_linear4};
    const int sizes[4] = {256, 256, 16, 16};
    for (int mi = 0; mi < 4; mi++)
        for (int rule = 0; rule < 2; rule++) {
            lt_qtable *t = qt(maps[mi], sizes[mi], (lt_qrule)rule);
            lt_cu_qtab *d = dqt(t);
            CHECK(d->fast, "map %d rule %d: the shipped map should get the device's bucket table", mi, rule);
            long bad = 0, n = 0;
            for (uint64_t u = 0; u < (1ull << 32); u += 997) { /* every 997th float */
                float x = from_bits((uint32_t)u);
                bad += lt_cu_qcode(d, x) != lt_q_nearest(t, x);
                n++;
            }
            for (int c = 0; c + 1 < t->n; c++) /* every threshold and its neighbours */
                for (int dlt = -3; dlt <= 3; dlt++) {
                    float x = from_bits((uint32_t)((int32_t)bits(t->th[c]) + dlt));
                    bad += lt_cu_qcode(d, x) != lt_q_nearest(t, x);
                    bad += lt_cu_qcode(d, -x) != lt_q_nearest(t, -x);
                    n += 2;
                }
            for (int i = 0; i < t->n; i++) bad += lt_cu_qcode(d, t->map[i]) != i, n++;
            CHECK(bad == 0, "map %d rule %d: the device search differs from lt_q_nearest at %ld of %ld floats", mi,
                  rule, bad, n);
            free(t), free(d);
        }
    /* a map with values too small for the bucket table: the binary search must agree too */
    float tiny[16];
    for (int i = 0; i < 16; i++) tiny[i] = (float)(i - 8) * 1e-12f;
    lt_qtable *t = qt(tiny, 16, LT_Q_EVEN);
    lt_cu_qtab *d = dqt(t);
    CHECK(!d->fast, "a map of tiny values should fall back to the binary search");
    long bad = 0;
    for (uint64_t u = 0; u < (1ull << 32); u += 4099) bad += lt_cu_qcode(d, from_bits((uint32_t)u)) != lt_q_nearest(t, from_bits((uint32_t)u));
    CHECK(bad == 0, "binary search: %ld differ", bad);
    free(t), free(d);
}

/* lt_cu_qdiv (one reciprocal per block) against the plain division it replaces: the quotient's bits wherever
 * the fast form claims them (|x| >= amax 2^-40), and the code of every shipped map everywhere, with and without
 * the sign fix, over block maxima from 2^-80 to 2^80, zero, subnormal, inf and NaN, and x across the block's
 * range (its maximum, tiny and subnormal values, zero of both signs, inf, NaN); and lt_cu_quantize_f's codes
 * wherever the kernels use it (lt_cu_qfast_ok, |x| <= the maximum) */
static void test_qdiv(void) {
    const float *maps[4] = {lt_qmap_signed8, lt_qmap_unsigned8, lt_qmap_signed4, lt_qmap_linear4};
    const int sizes[4] = {256, 256, 16, 16};
    lt_cu_qtab *d[4];
    for (int mi = 0; mi < 4; mi++) {
        lt_qtable *t = qt(maps[mi], sizes[mi], LT_Q_EVEN);
        d[mi] = dqt(t);
        free(t);
    }
    /* the signed maps take the sign fix as a clamp (lt_cu_qtab_build); for the others it is never asked */
    CHECK(d[0]->sfclamp && d[2]->sfclamp && !d[1]->sfclamp && !d[3]->sfclamp, "sfclamp %d %d %d %d", d[0]->sfclamp,
          d[1]->sfclamp, d[2]->sfclamp, d[3]->sfclamp);
    long bad_q = 0, bad_c = 0, bad_f = 0, n = 0, nf = 0, fast = 0, used = 0;
    for (int trial = 0; trial < 40000; trial++) {
        float a;
        switch (trial % 50) {
        case 0: a = 0.0f; break;
        case 1: a = 1e-42f; break; /* subnormal */
        case 2: a = INFINITY; break;
        case 3: a = NAN; break;
        case 4: a = 0x1p-60f; break;
        case 5: a = 0x1p60f; break;
        default: a = ldexpf(0.5f + 0.5f * uni(), (int)(rnd32() % 161) - 80);
        }
        for (int mi = 0; mi < 4; mi++) {
            const lt_cu_qdiv q = lt_cu_qdiv_make(d[mi], a);
            const float ok = a > 0.0f ? 1.0f : 0.0f, aa = a > 0.0f ? a : 1.0f;
            for (int j = 0; j < 24; j++) {
                float x;
                switch (j) {
                case 0: x = a; break;
                case 1: x = -a; break;
                case 2: x = 0.0f; break;
                case 3: x = -0.0f; break;
                case 4: x = NAN; break;
                case 5: x = -INFINITY; break;
                case 6: x = 1e-45f; break;
                case 7: x = a * 0x1p-40f; break;
                case 8: x = a * 0x1p-41f * (1.0f + uni()); break;
                case 9: case 10: case 11: case 12: /* a threshold times the maximum, give or take an ulp */
                    x = from_bits(bits(d[mi]->th[rnd32() % (uint32_t)(d[mi]->n - 1)] * a) + (uint32_t)(j - 10));
                    if (!(fabsf(x) <= a)) x = a;
                    break;
                default: x = sym(a) * ldexpf(1.0f, -(int)(rnd32() % (j < 18 ? 4 : 50)));
                }
                const float want = (x / aa) * ok, got = lt_cu_qdiv_apply(&q, x) * q.ok;
                if (q.fast && fabsf(x) >= q.lo) fast++;
                if (fabsf(x) >= q.lo || !q.fast) bad_q += bits(want) != bits(got) && !(isnan(want) && isnan(got));
                for (int sf = 0; sf < 2; sf++) {
                    const int want_c = lt_cu_quantize(d[mi], x, a, sf);
                    bad_c += lt_cu_quantize_d(d[mi], &q, x, sf) != want_c;
                    /* the branch-free form, for the blocks it is used for: finite values within the maximum */
                    /* (with the sign fix only where the kernels ask for it: the signed maps) */
                    const lt_cu_qfast f = lt_cu_qfast_make(d[mi]);
                    used += !sf || f.sfok;
                    if (lt_cu_qfast_ok(&q, bits(a) & 0x7fffffffu) && (!sf || f.sfok) && fabsf(x) <= a) {
                        bad_f += lt_cu_quantize_f(d[mi], &f, &q, x, sf) != want_c;
                        nf++;
                    }
                }
                n++;
            }
        }
    }
    CHECK(fast > n / 2, "the fast quotient should cover most cases (%ld of %ld)", fast, n);
    CHECK(bad_q == 0, "lt_cu_qdiv: %ld of %ld quotients differ from x / amax", bad_q, n);
    CHECK(bad_c == 0, "lt_cu_quantize_d: %ld of %ld codes differ from lt_cu_quantize's", bad_c, 2 * n);
    CHECK(nf > used / 2, "the branch-free search should be tried on most cases (%ld of %ld)", nf, used);
    CHECK(bad_f == 0, "lt_cu_quantize_f: %ld of %ld codes differ from lt_cu_quantize's", bad_f, nf);
    for (int mi = 0; mi < 4; mi++) free(d[mi]);
}

/* ---- square roots and divisions without a slow-path branch (cu_math.h lt_cu_sqrt_nb, lt_cu_div_nb) ----
 * The operands each takes and the ones it must refuse (clearing ok, so that the kernel steps them with sqrtf and
 * `/`); nvcc's fast sequences behind them, fed here a correctly rounded approximation, equal to sqrtf and `/` on
 * sampled operands of those ranges (the device feeds them MUFU.RSQ / MUFU.RCP, which only a GPU runs:
 * gpu_compare's tuning and vote checks hold that path to the CPU's bits); and the 8-bit AdamW element with them
 * (lt_em_bnb8_adam_nb) giving its twin's bits wherever ok stays set, a gradient that is not finite clearing it. */
static void test_nb(void) {
    const struct {
        float x;
        int ok;
    } sq[] = {{0.0f, 1},  {-0.0f, 0},    {0x1p-101f, 1}, {0x1.fffffep-102f, 0}, {1e-40f, 0}, {FLT_MAX, 1},
              {1.0f, 1}, {INFINITY, 0}, {NAN, 0},        {-1.0f, 0},            {-0x1p-101f, 0}};
    for (size_t i = 0; i < sizeof sq / sizeof sq[0]; i++) {
        int ok = 1;
        const float r = lt_cu_sqrt_nb(sq[i].x, &ok);
        CHECK(ok == sq[i].ok, "lt_cu_sqrt_nb(%a): ok %d, expected %d", sq[i].x, ok, sq[i].ok);
        CHECK(!ok || bits(r) == bits(sqrtf(sq[i].x)), "lt_cu_sqrt_nb(%a) = %a", sq[i].x, r);
    }
    const struct {
        float a;
        int ok;
    } dv[] = {{0.0f, 1},       {-0.0f, 1},    {0x1p-60f, 1},  {-0x1p-60f, 1}, {0x1.fffffep-61f, 0},
              {0x1p60f, 1},    {-0x1p60f, 1}, {0x1.000002p60f, 0}, {1e-30f, 0}, {1e-44f, 0},
              {INFINITY, 0},   {-NAN, 0},     {1.0f, 1}};
    for (size_t i = 0; i < sizeof dv / sizeof dv[0]; i++) {
        int ok = 1;
        const float q = lt_cu_div_nb(dv[i].a, 3.0f, &ok);
        CHECK(ok == dv[i].ok, "lt_cu_div_nb(%a, 3): ok %d, expected %d", dv[i].a, ok, dv[i].ok);
        CHECK(!ok || bits(q) == bits(dv[i].a / 3.0f), "lt_cu_div_nb(%a, 3) = %a", dv[i].a, q);
    }
    int ok = 1;
    lt_cu_sqrt_nb(4.0f, &ok), lt_cu_div_nb(NAN, 3.0f, &ok), lt_cu_sqrt_nb(4.0f, &ok), lt_cu_div_nb(1.0f, 3.0f, &ok);
    CHECK(ok == 0, "a refused operand's ok was set again by later ones");

    /* the sequences over their ranges: x in [2^-101, FLT_MAX], a in [2^-60, 2^60] of either sign, b in
     * [2^-60, 2^64]; half of the significands near all ones or near a power of two */
    long bad_s = 0, bad_d = 0;
    const long n = 1000000;
    for (long i = 0; i < n; i++) {
        uint32_t m = rnd32() & 0x7fffffu;
        if (i % 4 == 1) m = 0x7fffffu - (m & 63u);
        if (i % 4 == 2) m &= 63u;
        const float x = from_bits((26u + rnd32() % 229u) << 23 | m);
        bad_s += bits(lt_cu_sqrt_seq(x, (float)(1.0 / sqrt((double)x)))) != bits(sqrtf(x));
        const float a = from_bits((67u + rnd32() % 121u) << 23 | (rnd32() & 0x7fffffu) | (rnd32() & 0x80000000u));
        const float b = from_bits((67u + rnd32() % 125u) << 23 | m);
        bad_d += bits(lt_cu_div_seq(a, b, 1.0f / b)) != bits(a / b);
    }
    CHECK(bad_s == 0, "the square-root sequence differs from sqrtf for %ld of %ld operands", bad_s, n);
    CHECK(bad_d == 0, "the division sequence differs from / for %ld of %ld operands", bad_d, n);

    /* the element step against its twin */
    const lt_kbnb kb = {0.9f, 0.1f, 0.999f, 0.001f, -1e-3f * 0.0447f / 0.1f, 0.0447f * 1e-8f, 1.0f - 1e-5f, 1e-4f, 1, 256};
    CHECK(lt_cu_bnb8_nb_usable(&kb), "the usual hyperparameters refused");
    lt_kbnb k0 = kb;
    k0.c2eps = 0.0f;
    CHECK(!lt_cu_bnb8_nb_usable(&k0), "eps 0 accepted (the divisor could be 0)");
    long taken = 0, bad = 0, nonfinite_taken = 0;
    const long trials = 400000;
    for (long i = 0; i < trials; i++) {
        float g = sym(0.05f), p = sym(1.0f), m = sym(0.01f), v = 1e-4f * uni(), gs = i % 3 ? 1.0f : 0.25f;
        switch (i % 16) {
        case 0: g = 0.0f, m = 0.0f, v = 0.0f; break; /* a row that never had a gradient */
        case 1: g = -0.0f, m = 0.0f; break;
        case 2: g = 1e-30f; break;
        case 3: g = 1e30f; break;
        case 4: g = INFINITY; break;
        case 5: g = NAN; break;
        case 6: g = 3e38f, gs = 4.0f; break; /* finite, overflowing when scaled */
        case 7: m = 1e-25f, g = 0.0f; break;  /* tiny moment */
        case 8: p = -0.0f, g = 0.0f, m = 0.0f; break;
        }
        float p1 = p, m1 = m, v1 = v, p2 = p, m2 = m, v2 = v;
        int k = 1;
        lt_em_bnb8_adam(&kb, gs, &p1, g, &m1, &v1);
        lt_em_bnb8_adam_nb(&kb, gs, &p2, g, &m2, &v2, &k);
        if (!k) continue;
        taken++;
        nonfinite_taken += !(fabsf(g * gs) <= FLT_MAX);
        bad += bits(p1) != bits(p2) || bits(m1) != bits(m2) || bits(v1) != bits(v2);
    }
    printf("voted 8-bit AdamW step: %ld of %ld elements take the fast sequences\n", taken, trials);
    CHECK(bad == 0, "lt_em_bnb8_adam_nb differs from lt_em_bnb8_adam on %ld of %ld elements it takes", bad, taken);
    CHECK(nonfinite_taken == 0, "%ld elements with a gradient that is not finite were taken", nonfinite_taken);
    CHECK(taken > trials / 2, "too few elements take the fast sequences: %ld of %ld", taken, trials);
}

static void test_lowbit(void) {
    tabs bnb = {{qt(lt_qmap_signed8, 256, LT_Q_EVEN), qt(lt_qmap_unsigned8, 256, LT_Q_EVEN)}, {0}};
    tabs ao8 = {{qt(lt_qmap_signed8, 256, LT_Q_UP), qt(lt_qmap_unsigned8, 256, LT_Q_UP)}, {0}};
    tabs ao4 = {{qt(lt_qmap_signed4, 16, LT_Q_UP), qt(lt_qmap_linear4, 16, LT_Q_UP)}, {0}};
    tabs *all[3] = {&bnb, &ao8, &ao4};
    for (int k = 0; k < 3; k++) all[k]->d[0] = dqt(all[k]->t[0]), all[k]->d[1] = dqt(all[k]->t[1]);
    lt_kbnb kb = {0.9f, 0.1f, 0.999f, 0.001f, -1e-3f * 0.0447f / 0.1f, 0.0447f * 1e-8f, 1.0f - 1e-5f, 1e-4f, 1, 256};
    lowbit_case("bnb 8-bit adam, block 256, partial last block", LT_CU_BNB8_ADAM, 256 * 9 + 77, &kb, &bnb);
    kb.block = 64;
    kb.has_decay = 0;
    lowbit_case("bnb 8-bit adam, block 64", LT_CU_BNB8_ADAM, 64 * 20 + 5, &kb, &bnb);
    kb.block = 2048;
    lowbit_case("bnb 8-bit lion, block 2048", LT_CU_BNB8_LION, 2048 * 3 + 1000, &kb, &bnb);
    lt_kao ko = {1e-5f, 0.1f, 0.001f, 1e-3f, 0.271f, 0.0871f, 1e-8f, 256, 8};
    lowbit_case("torchao 8-bit, block 256", LT_CU_AO8, 256 * 12, &ko, &ao8);
    ko.bits = 4;
    ko.block = 128;
    lowbit_case("torchao 4-bit, block 128", LT_CU_AO4, 128 * 33, &ko, &ao4);
    for (int k = 0; k < 3; k++) free(all[k]->t[0]), free(all[k]->t[1]), free(all[k]->d[0]), free(all[k]->d[1]);
}

/* ---- work lists ---- */
static void test_plan(void) {
    enum { NI = 40 };
    static lt_cu_item it[NI];
    for (int trial = 0; trial < 50; trial++) {
        int count = 1 + (int)(rnd32() % NI);
        for (int i = 0; i < count; i++) {
            memset(&it[i], 0, sizeof it[i]);
            uint32_t r = rnd32() % 4;
            it[i].n = r == 0 ? 1 + rnd32() % 10 : r == 1 ? LT_CU_CHUNK * (1 + rnd32() % 3) : 1 + rnd32() % 100000;
            it[i].h.bnb.block = 64u << (rnd32() % 7);
        }
        for (int kind = 0; kind < 2; kind++) {
            int k = kind ? LT_CU_BNB8_ADAM : LT_CU_ADAM;
            uint64_t total = lt_cu_assign_units(k, it, count), want = 0;
            for (int i = 0; i < count; i++) want += kind ? (it[i].n + it[i].h.bnb.block - 1) / it[i].h.bnb.block : lt_cu_chunks(it[i].n);
            CHECK(total == want, "trial %d: %llu units, expected %llu", trial, (unsigned long long)total,
                  (unsigned long long)want);
            /* every unit finds its item; elementwise chunks tile each item exactly */
            uint64_t covered[NI] = {0};
            int bad = 0;
            uint64_t starts[NI];
            for (int i = 0; i < count; i++) starts[i] = it[i].unit0;
            for (uint64_t u = 0; u < total; u++) {
                int i = lt_cu_find(it, count, u);
                if (lt_cu_find_start(starts, count, u) != i) bad++;
                if (!(it[i].unit0 <= u && u < it[i].unit0 + lt_cu_units(k, &it[i]))) bad++;
                if (!kind) {
                    uint64_t lo, hi;
                    lt_cu_chunk_range(it[i].n, u - it[i].unit0, &lo, &hi);
                    if (lo != covered[i] || hi <= lo || hi > it[i].n) bad++;
                    covered[i] = hi;
                }
            }
            for (int i = 0; !kind && i < count; i++) bad += covered[i] != it[i].n;
            CHECK(bad == 0, "trial %d kind %d: %d bad unit mappings", trial, k, bad);
        }
    }
    /* an item with no units (e.g. an unquantized tensor) is skipped by the search */
    memset(it, 0, 3 * sizeof it[0]);
    it[0].n = 100, it[1].n = 3, it[2].n = 600;
    it[0].h.ao.block = it[1].h.ao.block = it[2].h.ao.block = 100;
    CHECK(lt_cu_assign_units(LT_CU_AO8, it, 3) == 7, "torchao whole blocks");
    CHECK(lt_cu_find(it, 3, 1) == 2, "a zero-unit item must be skipped");
    /* the uploaded list: each launch's items, then their starts, every piece 16-byte aligned */
    for (int count = 1; count < 9; count++)
        CHECK(lt_cu_list_bytes(count) % 16 == 0 && lt_cu_list_bytes(count) >= count * (sizeof(lt_cu_item) + 8) &&
                  (uintptr_t)lt_cu_starts((const lt_cu_item *)(uintptr_t)4096, count) % 16 == 0,
              "list layout for %d items", count);
    /* vector access needs every operand aligned */
    static float buf[64];
    memset(it, 0, sizeof it[0]);
    it[0].p = buf, it[0].g = buf + 4, it[0].s[0] = buf + 8;
    CHECK(lt_cu_vec_ok(&it[0], LT_CU_ADAM) == ((uintptr_t)buf % 16 == 0), "aligned operands");
    it[0].s[1] = buf + 9;
    CHECK(!lt_cu_vec_ok(&it[0], LT_CU_ADAM), "a misaligned state must force the scalar path");
}

/* ---- Adafactor: the device algorithm, in its order, against the CPU optimizer ---- */
static void af_device_emulation(const lt_kaf_dev *a, float *p, const float *g, float gs, size_t n) {
    const size_t rows = a->rows, cols = a->cols, ng = (rows + LT_CU_ROWS - 1) / LT_CU_ROWS;
    double psum = 0;
    if (a->scale_parameter)
        for (size_t i = 0; i < n; i++) psum += (double)(p[i] * p[i]);
    double scale = a->scale_parameter ? fmax(a->eps2, sqrt(psum / (double)n)) : 1.0;
    const float lr_t = (float)(a->rho * scale);
    double sumsq = 0;
    float *rf = calloc(a->batch * rows + 1, 4), *cf = calloc(a->batch * cols + 1, 4);
    float *colpart = calloc(ng * 2 * cols + 1, 4);
    if (a->factored) {
        for (size_t b = 0; b < a->batch; b++) {
            float *R = a->R + b * rows, *C = a->C + b * cols;
            memset(colpart, 0, ng * 2 * cols * 4);
            for (size_t rg = 0; rg < ng; rg++) { /* af_rows: one unit */
                float *colp = colpart + rg * 2 * cols, *wp = colp + cols;
                for (size_t r = rg * LT_CU_ROWS; r < rows && r < (rg + 1) * LT_CU_ROWS; r++) {
                    double rs = 0;
                    for (size_t c = 0; c < cols; c++) {
                        float gi = g[(b * rows + r) * cols + c] * gs, uu = gi * gi + a->eps1;
                        rs += uu;
                        colp[c] += uu;
                    }
                    float rn = fmaf(a->omb2t, (float)rs / (float)cols, R[r] * a->b2t), inv = 1.0f / rn;
                    R[r] = rn;
                    for (size_t c = 0; c < cols; c++) {
                        float gi = g[(b * rows + r) * cols + c] * gs;
                        wp[c] += (gi * gi) * inv;
                    }
                }
            }
            double rsum = 0; /* af_final */
            for (size_t r = 0; r < rows; r++) rsum += R[r];
            const float rmean = (float)(rsum / (double)rows);
            for (size_t r = 0; r < rows; r++) rf[b * rows + r] = 1.0f / sqrtf(R[r] / rmean);
            double wsum = 0;
            for (size_t c = 0; c < cols; c++) {
                double cs = 0, ws = 0;
                for (size_t rg = 0; rg < ng; rg++) cs += colpart[rg * 2 * cols + c], ws += colpart[rg * 2 * cols + cols + c];
                float cn = fmaf(a->omb2t, (float)cs / (float)rows, C[c] * a->b2t);
                C[c] = cn;
                cf[b * cols + c] = 1.0f / sqrtf(cn);
                wsum += ws / (double)cn;
            }
            sumsq += (double)rmean * wsum;
        }
    } else {
        for (size_t i = 0; i < n; i++) sumsq += lt_em_af_vec(g[i], gs, &a->C[i], a->b2t, 1.0f - a->b2t, a->eps1);
    }
    const float clipdiv = (float)fmax(1.0, sqrt(sumsq / (double)n) / a->clip), nwd = -(float)(a->wd * (double)lr_t);
    for (size_t i = 0; i < n; i++) { /* af_apply */
        size_t br = i / cols, c = i % cols;
        float cv = a->factored ? cf[(br / rows) * cols + c] : a->C[i];
        lt_em_af_apply(a->factored, a->factored ? rf[br] : 1.0f, cv, gs, clipdiv, lr_t, a->b1, 1.0f - a->b1, nwd, &p[i],
                       g[i], a->m ? &a->m[i] : NULL);
    }
    free(rf), free(cf), free(colpart);
}

static void af_case(const char *args, int ndim, const int64_t *shape) {
    size_t n = 1;
    for (int d = 0; d < ndim; d++) n *= (size_t)shape[d];
    size_t cols = (size_t)shape[ndim - 1], rows = ndim >= 2 ? (size_t)shape[ndim - 2] : 1, batch = n / (rows * cols);
    float *p = malloc(n * 4), *pe = malloc(n * 4), *g = malloc(n * 4);
    float *R = calloc(batch * rows + 1, 4), *C = calloc(batch * cols + (ndim < 2 ? n : 0) + 1, 4), *m = calloc(n, 4);
    for (size_t i = 0; i < n; i++) p[i] = pe[i] = sym(0.5f);
    char err[512];
    lt_hparams hp = lt_hparams_default();
    hp.lr = strstr(args, "relative_step=True") ? NAN : 1e-2;
    hp.weight_decay = 0.01;
    lt_optim *o = lt_optim_create("adafactor", args, &hp, err, sizeof err);
    CHECK(o != NULL, "%s", err);
    if (!o) return;
    lt_param_desc d = {.name = "w", .data = p, .grad = g, .ndim = ndim};
    for (int k = 0; k < ndim; k++) d.shape[k] = shape[k];
    CHECK(lt_optim_add_param(o, &d) == 0, "%s", lt_optim_error(o));
    double worst = 0;
    const int beta1 = strstr(args, "beta1") != NULL, sp = strstr(args, "scale_parameter=True") != NULL,
              rel = strstr(args, "relative_step=True") != NULL;
    for (int t = 1; t <= 4; t++) {
        for (size_t i = 0; i < n; i++) g[i] = sym(0.1f) * (float)(1 + i % 5);
        CHECK(lt_optim_step(o, 0.5f) == LT_OK, "%s", lt_optim_error(o));
        lt_kaf_dev a;
        memset(&a, 0, sizeof a);
        double rho = rel ? fmin(1e-6 * t, 1.0 / sqrt((double)t)) : 1e-2;
        double b2t = 1.0 - pow((double)t, -0.8);
        a.rho = rho, a.eps2 = 1e-3, a.clip = 1.0, a.wd = 0.01, a.eps1 = 1e-30f, a.b2t = (float)b2t;
        a.omb2t = (float)(1.0 - b2t), a.b1 = beta1 ? 0.9f : 0.0f, a.batch = batch, a.rows = rows, a.cols = cols;
        a.R = R, a.C = C, a.m = beta1 ? m : NULL, a.factored = ndim >= 2, a.scale_parameter = sp;
        af_device_emulation(&a, pe, g, 0.5f, n);
        for (size_t i = 0; i < n; i++) {
            double e = fabs((double)p[i] - pe[i]) / (1e-3 + fabs((double)p[i]));
            if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
        }
    }
    printf("adafactor [%s] %zu x %zu x %zu: device algorithm vs CPU, worst %.2e\n", args, batch, rows, cols, worst);
    CHECK(worst < 1e-5, "adafactor [%s]: the device algorithm drifts from the CPU (%.3e)", args, worst);
    lt_optim_free(o);
    free(p), free(pe), free(g), free(R), free(C), free(m);
}

static void test_adafactor(void) {
    const int64_t s2[2] = {200, 96}, s3[3] = {3, 70, 33}, s1[1] = {1000};
    af_case("", 2, s2);
    af_case("beta1=0.9,scale_parameter=True", 3, s3);
    af_case("relative_step=True,warmup_init=True,scale_parameter=True", 1, s1);
}

/* ---- stochastic rounding on the CPU ---- */
static void test_stochastic_rounding(void) {
    enum { M = 4096 };
    static float pf[M], g[M];
    static uint16_t pb[M], pb2[M];
    for (int i = 0; i < M; i++) {
        pb[i] = pb2[i] = lt_f32_to_bf16(1.0f + 0.001f * (float)(i % 7));
        pf[i] = lt_bf16_to_f32(pb[i]);
        g[i] = 0.01f;
    }
    char err[512];
    lt_hparams hp = lt_hparams_default();
    hp.lr = 1e-4; /* updates far below a bf16 ulp of 1: nearest-even rounding would never move p */
    lt_optim *of = lt_optim_create("sgd", "", &hp, err, sizeof err);
    lt_optim *ob = lt_optim_create("sgd", "bf16_stochastic_round=True", &hp, err, sizeof err);
    lt_optim *ob2 = lt_optim_create("sgd", "bf16_stochastic_round=True", &hp, err, sizeof err);
    CHECK(of && ob && ob2, "%s", err);
    if (!of || !ob || !ob2) return;
    lt_param_desc d = {.name = "w", .data = pf, .grad = g, .ndim = 1, .shape = {M}};
    lt_optim_add_param(of, &d);
    d.data = pb, d.dtype = LT_DTYPE_BF16;
    lt_optim_add_param(ob, &d);
    d.data = pb2;
    lt_optim_add_param(ob2, &d);
    int neighbours = 1;
    for (int s = 0; s < 100; s++) {
        for (int i = 0; i < M; i++) pf[i] = lt_bf16_to_f32(pb[i]); /* the f32 step from the same bf16 values */
        lt_optim_step(of, 1.0f), lt_optim_step(ob, 1.0f), lt_optim_step(ob2, 1.0f);
        for (int i = 0; i < M; i++) {
            uint16_t lo = (uint16_t)(bits(pf[i]) >> 16), hi = (uint16_t)(lo + 1);
            if (pb[i] != lo && pb[i] != hi) neighbours = 0;
        }
    }
    CHECK(neighbours, "a stochastically rounded value is not a neighbour of the f32 result");
    CHECK(memcmp(pb, pb2, sizeof pb) == 0, "stochastic rounding is not reproducible");
    double mean = 0, want = 0;
    for (int i = 0; i < M; i++) {
        mean += lt_bf16_to_f32(pb[i]);
        want += lt_bf16_to_f32(lt_f32_to_bf16(1.0f + 0.001f * (float)(i % 7))) - 100 * 1e-4 * 0.01;
    }
    printf("stochastic rounding: mean %.7f after 100 steps, exact %.7f\n", mean / M, want / M);
    CHECK(fabs(mean - want) / M < 2e-5, "stochastic rounding is biased: mean %.7f, exact %.7f", mean / M, want / M);
    lt_optim_free(of), lt_optim_free(ob), lt_optim_free(ob2);
}

/* ---- no GPU here: device parameters are refused with a message ---- */
/* The choice among a kernel's same-bit forms (cu_tune.h): which forms each launch kind has, the order they are
 * timed in, and the rule that keeps the default unless another is more than the margin faster. */
static void test_tune(void) {
    int f[LT_CU_TUNE_MAXC];
    /* low-bit: the hot step held to 64 registers (the default, blocks 128 and 256 only), its 80-register
     * instantiation, (8-bit AdamW) the 64-register one's voted step, the general step */
    CHECK(lt_cu_tune_forms(LT_CU_BNB8_ADAM, 256, 0, f) == 4 && f[0] == 2 && f[1] == 0 && f[2] == 6 && f[3] == 3,
          "8-bit forms");
    CHECK(!strcmp(lt_cu_tune_form_name(LT_CU_BNB8_ADAM, f[2]), "hot/vote") &&
              !strcmp(lt_cu_tune_form_name(LT_CU_BNB8_ADAM, f[3]), "generic"),
          "8-bit form names");
    CHECK(lt_cu_tune_forms(LT_CU_BNB8_LION, 256, 0, f) == 3 && f[2] == 3, "no voted step for Lion");
    CHECK(lt_cu_tune_forms(LT_CU_AO4, 128, 0, f) == 3 && f[0] == 2 && f[1] == 0, "4-bit forms at block 128");
    CHECK(lt_cu_tune_forms(LT_CU_BNB8_LION, 64, 0, f) == 2 && f[0] == 0 && f[1] == 1, "no r64 at block 64");
    CHECK(lt_cu_tune_forms(LT_CU_AO8, 4096, 0, f) == 2, "no r64 at block 4096");
    /* Adafactor's vectorized row pass: stage1 (4|8), stage3 (4), plain (0), one and two tiles ahead with one
     * barrier a row group (4|8|32, 4|32|64), the launch's own bits kept */
    CHECK(lt_cu_tune_forms(LT_CU_AF_ROWS, 0, 3, f) == 5 && f[0] == (3 | 4 | 8) && f[1] == (3 | 4) && f[2] == 3 &&
              f[3] == (3 | 4 | 8 | 32) && f[4] == (3 | 4 | 32 | 64),
          "row pass forms");
    CHECK(!strcmp(lt_cu_tune_form_name(LT_CU_AF_ROWS, f[0]), "stage1") &&
              !strcmp(lt_cu_tune_form_name(LT_CU_AF_ROWS, f[1]), "stage3") &&
              !strcmp(lt_cu_tune_form_name(LT_CU_AF_ROWS, f[2]), "plain") &&
              !strcmp(lt_cu_tune_form_name(LT_CU_AF_ROWS, f[3]), "stage1/bar1") &&
              !strcmp(lt_cu_tune_form_name(LT_CU_AF_ROWS, f[4]), "stage2/bar1"),
          "row pass form names");
    CHECK(lt_cu_tune_forms(LT_CU_AF_ROWS, 0, 2, f) == 1 && f[0] == 2, "the scalar row pass has one form");
    CHECK(lt_cu_tune_forms(LT_CU_AF_APPLY, 0, 0, f) == 2 && f[0] == 0 && f[1] == 16, "apply forms");
    CHECK(lt_cu_tune_forms(LT_CU_ADAM, 0, 0, f) == 1 && lt_cu_tune_forms(LT_CU_AF_FINAL, 0, 0, f) == 1,
          "elementwise kinds have one form");

    /* timed in turn, LT_CU_TUNE_SAMPLES each; the best time of each form counts (a first launch that loaded its
     * module is slow) */
    lt_cu_tune t;
    lt_cu_tune_forms(LT_CU_BNB8_ADAM, 256, 0, f);
    lt_cu_tune_init(&t, LT_CU_BNB8_ADAM, 256, 0, 1000, f, 3);
    const double ms[3][LT_CU_TUNE_SAMPLES] = {{9.0, 1.00, 1.01}, {5.0, 0.90, 0.95}, {7.0, 1.50, 1.40}};
    int seen[3] = {0, 0, 0}, timed = 0;
    for (int k = 0; k < 3 * LT_CU_TUNE_SAMPLES; k++) {
        CHECK(t.chosen < 0, "chose before every form had its samples (launch %d)", k);
        int ci = lt_cu_tune_next(&t, &timed);
        CHECK(timed && ci == k % 3, "launch %d takes form %d (timed %d), expected %d", k, ci, timed, k % 3);
        lt_cu_tune_sample(&t, ci, ms[ci][seen[ci]++]);
    }
    int ci = lt_cu_tune_next(&t, &timed);
    CHECK(t.chosen == 1 && ci == 1 && !timed, "the fastest form (hot, 0.90 ms) chosen: %d", t.chosen);
    CHECK(t.best_ms[0] == 1.00 && t.best_ms[1] == 0.90 && t.best_ms[2] == 1.40, "best times");
    char line[512];
    lt_cu_tune_describe(&t, line, sizeof line);
    CHECK(strstr(line, "block 256") && strstr(line, "units: hot (") && strstr(line, "hot/r64 1.000 ms") &&
              strstr(line, "hot/vote 1.400 ms"),
          "describe: %s", line);
    char small[24];
    CHECK(lt_cu_tune_describe(&t, small, sizeof small) == 23 && strlen(small) == 23, "describe truncates");

    /* within the margin of the default: the default stays; failed timings (negative, NaN) are not samples */
    lt_cu_tune_forms(LT_CU_AF_APPLY, 0, 0, f);
    lt_cu_tune_init(&t, LT_CU_AF_APPLY, 0, 0, 77, f, 2);
    lt_cu_tune_sample(&t, 1, -1.0);
    lt_cu_tune_sample(&t, 1, NAN);
    CHECK(t.nsamples[1] == 0, "a failed timing counted");
    for (int k = 0; k < LT_CU_TUNE_SAMPLES; k++) {
        lt_cu_tune_sample(&t, 0, 1.0);
        lt_cu_tune_sample(&t, 1, 1.0 * (1.0 - 0.5 * LT_CU_TUNE_MARGIN));
    }
    CHECK(t.chosen == 0, "a form within the margin replaced the default");
    lt_cu_tune_init(&t, LT_CU_AF_APPLY, 0, 0, 77, f, 2);
    for (int k = 0; k < LT_CU_TUNE_SAMPLES; k++) {
        lt_cu_tune_sample(&t, 0, 1.0);
        lt_cu_tune_sample(&t, 1, 1.0 * (1.0 - 2.0 * LT_CU_TUNE_MARGIN));
    }
    CHECK(t.chosen == 1, "a form beyond the margin was not chosen");
    /* one form: chosen at once, never timed */
    lt_cu_tune_init(&t, LT_CU_ADAM, 0, 0, 5, f, 1);
    CHECK(t.chosen == 0 && lt_cu_tune_next(&t, &timed) == 0 && !timed, "a single form is timed");
}

static void test_no_device(void) {
    if (lt_cuda_device_count() > 0) { /* a GPU machine: tests/gpu checks the device */
        printf("a CUDA device is present: the refusal checks are skipped (tests/gpu runs on it)\n");
        return;
    }
    char err[512];
    lt_optim *o = lt_optim_create("adamw_torch", "", NULL, err, sizeof err);
    static float w[16], gw[16];
    lt_param_desc d = {.name = "w", .data = w, .grad = gw, .ndim = 1, .shape = {16}, .device = 1};
    CHECK(lt_optim_add_param(o, &d) == -1, "a device parameter was accepted without a GPU");
    printf("device parameter refused: %s\n", lt_optim_error(o));
    CHECK(strstr(lt_optim_error(o), "'w' (device=1)") != NULL &&
              (strstr(lt_optim_error(o), "no CUDA support") || strstr(lt_optim_error(o), "no CUDA device")),
          "unclear message: %s", lt_optim_error(o));
    CHECK(lt_optim_set_stream(o, NULL) == LT_ERR_DEVICE, "set_stream without CUDA succeeded");
    CHECK(lt_optim_check_finite(o, 1.0f) == LT_ERR_STATE, "check_finite without a flag succeeded");
    CHECK(lt_optim_sync(o) == LT_OK, "sync without device parameters must be a no-op");
    d.device = 0;
    CHECK(lt_optim_add_param(o, &d) == 0, "a host parameter after a refused device one: %s", lt_optim_error(o));
    CHECK(lt_optim_step(o, 1.0f) == LT_OK, "%s", lt_optim_error(o));
    char rep[64] = "x";
    CHECK(lt_optim_device_tuning(o, rep, sizeof rep) == 0 && rep[0] == 0, "a host optimizer reported tuning");
    lt_optim_free(o);
}

int main(void) {
    /* the descriptor's layout is the same for nvcc: cu_internal.cuh checks these sizes too */
    printf("lt_cu_item %zu bytes, lt_cu_qtab %zu bytes\n", sizeof(lt_cu_item), sizeof(lt_cu_qtab));
    test_conversions();
    test_elementwise();
    test_qcode();
    test_qdiv();
    test_nb();
    test_lowbit();
    test_plan();
    test_adafactor();
    test_stochastic_rounding();
    test_tune();
    test_no_device();
    return lt_test_done("test_cuda_host");
}
