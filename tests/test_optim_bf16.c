/* bf16 parameter storage and invariants of the step:
 *  - one rounding: a step on bf16 params equals the f32 step on the same
 *    values, rounded once to bf16 (every optimizer, every option set);
 *  - the gradient scale is folded exactly: grad_scale 0.25 on g equals
 *    grad_scale 1 on g*0.25;
 *  - Kahan summation (adamw_anyprecision) keeps pure-bf16 weights measurably
 *    closer to an f32 run than plain bf16 over 1,000 steps of a quadratic;
 *  - Adafactor on tensors big enough to be split over threads (odd widths, a
 *    3-D tensor, a row of zero gradients, clipping on and off) against the
 *    formulas in double, for 1, 2 and 3 threads; repeated runs give the same
 *    bits; bf16 gradients give the bits of their values as f32. */
#include <math.h>
#include <omp.h>
#include <stdint.h>

#include "kernels/cpu/foreach.h"
#include "leantrain/optim.h"
#include "optim_cases.h"
#include "testutil.h"

enum { N = 6144 }; /* 64x96: quantized by the low-bit optimizers */

static lt_optim *make(const optim_case *c, void *p, lt_dtype dt, float *g, const int64_t *shape, int ndim) {
    char err[1024];
    lt_hparams hp = lt_hparams_default();
    hp.lr = c->lr < 0 ? NAN : c->lr;
    hp.weight_decay = 0.05;
    lt_optim *o = lt_optim_create(c->name, c->args, &hp, err, sizeof err);
    CHECK(o != NULL, "%s: %s", c->name, err);
    if (!o) return NULL;
    lt_param_desc d = {.name = "w", .data = p, .grad = g, .dtype = dt, .ndim = ndim};
    for (int k = 0; k < ndim; k++) d.shape[k] = shape[k];
    CHECK(lt_optim_add_param(o, &d) == 0, "%s: %s", c->name, lt_optim_error(o));
    return o;
}

static void test_one_rounding_and_scale(void) {
    static float pf[N], gf[N], g4[N], pg[N];
    static uint16_t pb[N];
    const int64_t shape[2] = {64, 96};
    for (int ci = 0; ci < N_OPTIM_CASES; ci++) {
        const optim_case *c = &OPTIM_CASES[ci];
        for (int i = 0; i < N; i++) {
            pb[i] = lt_f32_to_bf16(0.3f * sinf(0.37f * (float)i));
            pf[i] = lt_bf16_to_f32(pb[i]);
            gf[i] = 0.02f * cosf(0.11f * (float)i * (float)i);
            g4[i] = gf[i] * 0.25f; /* exact: a power of two */
            pg[i] = pf[i];
        }
        /* Kahan with bf16 params is a different algorithm from the f32 one: skip that pair only */
        int kahan = strstr(c->args, "kahan") != NULL;
        lt_optim *of = make(c, pf, LT_DTYPE_F32, gf, shape, 2);
        lt_optim *ob = kahan ? NULL : make(c, pb, LT_DTYPE_BF16, gf, shape, 2);
        lt_optim *os = make(c, pg, LT_DTYPE_F32, g4, shape, 2);
        if (!of || !os || (!kahan && !ob)) goto next;
        CHECK(lt_optim_step(of, 0.25f) == LT_OK, "%s", lt_optim_error(of));
        CHECK(lt_optim_step(os, 1.0f) == LT_OK, "%s", lt_optim_error(os));
        CHECK(memcmp(pf, pg, sizeof pf) == 0, "%s [%s]: grad_scale 0.25 differs from pre-scaled gradients", c->name,
              c->args);
        if (!kahan) {
            CHECK(lt_optim_step(ob, 0.25f) == LT_OK, "%s", lt_optim_error(ob));
            int bad = 0;
            for (int i = 0; i < N; i++) bad += pb[i] != lt_f32_to_bf16(pf[i]);
            CHECK(bad == 0, "%s [%s]: %d of %d bf16 results are not the f32 result rounded once", c->name, c->args,
                  bad, N);
        }
    next:
        lt_optim_free(of), lt_optim_free(ob), lt_optim_free(os);
    }
}

/* minimise 0.5 * sum a_i (p_i - t_i)^2 with adamw_anyprecision; returns the final params as f32 */
static void quad_run(lt_dtype dt, const char *args, float *out) {
    enum { M = 512, STEPS = 1000 };
    static float pf[M], g[M], a[M], t[M];
    static uint16_t pb[M];
    for (int i = 0; i < M; i++) {
        a[i] = 0.5f + (float)(i % 13) / 13.0f;
        t[i] = 1.0f + 0.5f * sinf((float)i);
        pf[i] = 1.0f + 0.25f * cosf((float)i * 1.3f);
        pb[i] = lt_f32_to_bf16(pf[i]);
        pf[i] = lt_bf16_to_f32(pb[i]); /* both runs start from the same bf16-valued weights */
    }
    lt_hparams hp = lt_hparams_default();
    hp.lr = 1e-4;
    char err[512];
    lt_optim *o = lt_optim_create("adamw_anyprecision", args, &hp, err, sizeof err);
    CHECK(o != NULL, "%s", err);
    if (!o) return;
    lt_param_desc d = {.name = "p", .data = dt == LT_DTYPE_F32 ? (void *)pf : (void *)pb, .grad = g, .dtype = dt,
                       .ndim = 1, .shape = {M}};
    lt_optim_add_param(o, &d);
    for (int s = 0; s < STEPS; s++) {
        for (int i = 0; i < M; i++) {
            float p = dt == LT_DTYPE_F32 ? pf[i] : lt_bf16_to_f32(pb[i]);
            g[i] = a[i] * (p - t[i]);
        }
        lt_optim_step(o, 1.0f);
    }
    for (int i = 0; i < M; i++) out[i] = dt == LT_DTYPE_F32 ? pf[i] : lt_bf16_to_f32(pb[i]);
    lt_optim_free(o);
}

static void test_kahan(void) {
    enum { M = 512 };
    static float ref[M], plain[M], kahan[M];
    quad_run(LT_DTYPE_F32, "", ref);
    quad_run(LT_DTYPE_BF16, "", plain);
    quad_run(LT_DTYPE_BF16, "use_kahan_summation=True", kahan);
    double dp = 0, dk = 0, moved = 0;
    for (int i = 0; i < M; i++) {
        dp += fabs((double)plain[i] - ref[i]);
        dk += fabs((double)kahan[i] - ref[i]);
        moved += fabs((double)ref[i] - (1.0 + 0.25 * cos((double)i * 1.3)));
    }
    printf("kahan test: mean |f32 - bf16| plain %.3e, kahan %.3e; f32 run moved %.3e\n", dp / M, dk / M, moved / M);
    CHECK(moved / M > 0.05, "the f32 run barely moved (%.3e): the problem does not exercise small updates", moved / M);
    CHECK(dk < 0.25 * dp, "Kahan summation is not measurably closer: plain %.3e vs kahan %.3e", dp / M, dk / M);
}

/* ---- Adafactor, threaded CPU path ---- */
enum { AF_NP = 4, AF_STEPS = 4 };
static const int AF_NDIM[AF_NP] = {2, 3, 2, 1};
static const int64_t AF_SHAPE[AF_NP][3] = {{300, 1001}, {3, 70, 1030}, {1700, 40}, {70001}};
#define AF_LR 1e-2
#define AF_WD 0.05
#define AF_B1 0.9

static size_t af_numel(int k) {
    size_t n = 1;
    for (int d = 0; d < AF_NDIM[k]; d++) n *= (size_t)AF_SHAPE[k][d];
    return n;
}

/* [batch, rows, cols] of parameter k (a vector: 1, 1, n) */
static void af_dims(int k, size_t *b, size_t *r, size_t *c) {
    int nd = AF_NDIM[k];
    *c = (size_t)AF_SHAPE[k][nd - 1];
    *r = nd >= 2 ? (size_t)AF_SHAPE[k][nd - 2] : 1;
    *b = af_numel(k) / (*r * *c);
}

static float af_grad(int k, size_t i, int step, size_t cols) {
    size_t r = i / cols, c = i % cols;
    if (k == 0 && r == 7) return 0.0f; /* a row of zero gradients: u = eps1 */
    double v = 0.01 * sin(0.37 * (double)i + 1.3 * step) * (1.0 + (double)(r % 5)) * (1.0 + 0.5 * cos((double)c));
    return (float)v;
}

typedef struct {
    float *p[AF_NP];
    void *g[AF_NP];
    lt_optim *o;
} af_run;

static void af_run_free(af_run *a) {
    for (int k = 0; k < AF_NP; k++) free(a->p[k]), free(a->g[k]);
    lt_optim_free(a->o);
    memset(a, 0, sizeof *a);
}

/* Builds the optimizer with `threads` OpenMP threads (0: leave the default). */
static int af_run_init(af_run *a, const char *args, lt_dtype gdt, int threads) {
    memset(a, 0, sizeof *a);
    if (threads > 0) omp_set_num_threads(threads);
    lt_hparams hp = lt_hparams_default();
    hp.lr = AF_LR;
    hp.weight_decay = AF_WD;
    char err[512];
    a->o = lt_optim_create("adafactor", args, &hp, err, sizeof err);
    CHECK(a->o != NULL, "adafactor [%s]: %s", args, err);
    if (!a->o) return -1;
    for (int k = 0; k < AF_NP; k++) {
        size_t n = af_numel(k);
        a->p[k] = malloc(n * sizeof(float));
        a->g[k] = malloc(n * (gdt == LT_DTYPE_F32 ? 4 : 2));
        if (!a->p[k] || !a->g[k]) return -1;
        for (size_t i = 0; i < n; i++) a->p[k][i] = 0.3f * sinf(0.011f * (float)i + (float)k);
        char name[8] = {'w', (char)('0' + k), 0};
        lt_param_desc d = {.name = name, .data = a->p[k], .grad = a->g[k], .grad_dtype = gdt, .ndim = AF_NDIM[k]};
        for (int j = 0; j < AF_NDIM[k]; j++) d.shape[j] = AF_SHAPE[k][j];
        CHECK(lt_optim_add_param(a->o, &d) >= 0, "adafactor: %s", lt_optim_error(a->o));
    }
    return 0;
}

static void af_set_grads(af_run *a, int step, lt_dtype gdt) {
    for (int k = 0; k < AF_NP; k++) {
        size_t b, r, c, n = af_numel(k);
        af_dims(k, &b, &r, &c);
        for (size_t i = 0; i < n; i++) {
            float v = af_grad(k, i, step, c);
            if (gdt == LT_DTYPE_F32) ((float *)a->g[k])[i] = v;
            else ((uint16_t *)a->g[k])[i] = lt_f32_to_bf16(v);
        }
    }
}

/* The transformers formulas in double for one parameter, one step (t from 1). */
typedef struct {
    double *p, *m, *R, *C;
} af_ref;

static void af_ref_step(af_ref *s, int k, int t, const float *g, double clip) {
    size_t B, Rn, Cn, n = af_numel(k);
    af_dims(k, &B, &Rn, &Cn);
    const double eps1 = 1e-30, eps2 = 1e-3, b2t = 1.0 - pow((double)t, -0.8);
    double pss = 0.0;
    for (size_t i = 0; i < n; i++) pss += s->p[i] * s->p[i];
    const double lr_t = AF_LR * fmax(eps2, sqrt(pss / (double)n));
    double *upd = malloc(n * sizeof *upd), uss = 0.0;
    if (!upd) return;
    if (AF_NDIM[k] == 1) {
        for (size_t i = 0; i < n; i++) {
            s->C[i] = b2t * s->C[i] + (1 - b2t) * ((double)g[i] * g[i] + eps1);
            upd[i] = g[i] / sqrt(s->C[i]);
        }
    } else {
        for (size_t b = 0; b < B; b++) {
            double *R = s->R + b * Rn, *C = s->C + b * Cn, rmean = 0.0;
            const float *gb = g + b * Rn * Cn;
            for (size_t r = 0; r < Rn; r++) {
                double u = 0.0;
                for (size_t c = 0; c < Cn; c++) u += (double)gb[r * Cn + c] * gb[r * Cn + c] + eps1;
                R[r] = b2t * R[r] + (1 - b2t) * u / (double)Cn;
                rmean += R[r] / (double)Rn;
            }
            for (size_t c = 0; c < Cn; c++) {
                double u = 0.0;
                for (size_t r = 0; r < Rn; r++) u += (double)gb[r * Cn + c] * gb[r * Cn + c] + eps1;
                C[c] = b2t * C[c] + (1 - b2t) * u / (double)Rn;
            }
            for (size_t r = 0; r < Rn; r++)
                for (size_t c = 0; c < Cn; c++)
                    upd[b * Rn * Cn + r * Cn + c] = gb[r * Cn + c] / sqrt(R[r] / rmean) / sqrt(C[c]);
        }
    }
    for (size_t i = 0; i < n; i++) uss += upd[i] * upd[i];
    const double div = fmax(1.0, sqrt(uss / (double)n) / clip);
    for (size_t i = 0; i < n; i++) {
        s->m[i] = AF_B1 * s->m[i] + (1 - AF_B1) * (upd[i] / div * lr_t);
        s->p[i] = s->p[i] - AF_WD * lr_t * s->p[i] - s->m[i];
    }
    free(upd);
}

/* Worst error of a float array against a double one, relative to floor + |ref|. */
static double af_err(const float *x, const double *ref, size_t n, double floor) {
    double w = 0.0;
    for (size_t i = 0; i < n; i++) w = fmax(w, fabs((double)x[i] - ref[i]) / (floor + fabs(ref[i])));
    return w;
}

/* Every state and parameter of two runs, compared bit for bit. */
static int af_same_bits(const af_run *a, const af_run *b) {
    static const char *st[4] = {"exp_avg_sq_row", "exp_avg_sq_col", "exp_avg", "exp_avg_sq"};
    for (int k = 0; k < AF_NP; k++) {
        size_t n = af_numel(k);
        if (memcmp(a->p[k], b->p[k], n * sizeof(float))) return 0;
        for (int j = 0; j < 4; j++) {
            size_t sn = lt_optim_state_numel(a->o, k, st[j]);
            if (!sn) continue;
            float *x = malloc(sn * sizeof *x), *y = malloc(sn * sizeof *y);
            int same = x && y && lt_optim_read_state(a->o, k, st[j], x, sn) == LT_OK &&
                       lt_optim_read_state(b->o, k, st[j], y, sn) == LT_OK && !memcmp(x, y, sn * sizeof *x);
            free(x), free(y);
            if (!same) return 0;
        }
    }
    return 1;
}

/* Against the formulas in double, with `threads` threads; a second run with the
 * same thread count must give the same bits. */
static void af_check_reference(double clip, int threads) {
    char args[96];
    snprintf(args, sizeof args, "beta1=%g,scale_parameter=True,clip_threshold=%g", AF_B1, clip);
    af_run a = {0}, b = {0};
    af_ref ref[AF_NP] = {{0}};
    if (af_run_init(&a, args, LT_DTYPE_F32, threads) || af_run_init(&b, args, LT_DTYPE_F32, threads)) goto out;
    for (int k = 0; k < AF_NP; k++) {
        size_t n = af_numel(k), B, R, C;
        af_dims(k, &B, &R, &C);
        ref[k].p = malloc(n * sizeof(double));
        ref[k].m = calloc(n, sizeof(double));
        ref[k].R = calloc(B * R, sizeof(double));
        ref[k].C = calloc(AF_NDIM[k] == 1 ? n : B * C, sizeof(double));
        CHECK(ref[k].p && ref[k].m && ref[k].R && ref[k].C, "out of memory");
        if (!ref[k].p || !ref[k].m || !ref[k].R || !ref[k].C) goto out;
        for (size_t i = 0; i < n; i++) ref[k].p[i] = a.p[k][i];
    }
    double worst_p = 0.0, worst_s = 0.0, worst_u = 0.0;
    int same = 1;
    for (int t = 1; t <= AF_STEPS; t++) {
        af_set_grads(&a, t, LT_DTYPE_F32);
        af_set_grads(&b, t, LT_DTYPE_F32);
        CHECK(lt_optim_step(a.o, 1.0f) == LT_OK, "%s", lt_optim_error(a.o));
        CHECK(lt_optim_step(b.o, 1.0f) == LT_OK, "%s", lt_optim_error(b.o));
        same = same && af_same_bits(&a, &b);
        for (int k = 0; k < AF_NP; k++) {
            size_t n = af_numel(k), B, R, C;
            af_dims(k, &B, &R, &C);
            af_ref_step(&ref[k], k, t, (const float *)a.g[k], clip);
            worst_p = fmax(worst_p, af_err(a.p[k], ref[k].p, n, 1e-3));
            /* the step's change against the reference's, relative to its largest */
            double umax = 0.0;
            for (size_t i = 0; i < n; i++) umax = fmax(umax, fabs(ref[k].m[i]));
            float *st = malloc(n * sizeof *st);
            if (!st) continue;
            if (lt_optim_read_state(a.o, k, "exp_avg", st, n) == LT_OK)
                worst_u = fmax(worst_u, af_err(st, ref[k].m, n, umax));
            if (AF_NDIM[k] == 1) {
                if (lt_optim_read_state(a.o, k, "exp_avg_sq", st, n) == LT_OK)
                    worst_s = fmax(worst_s, af_err(st, ref[k].C, n, 0.0));
            } else {
                if (lt_optim_read_state(a.o, k, "exp_avg_sq_row", st, B * R) == LT_OK)
                    worst_s = fmax(worst_s, af_err(st, ref[k].R, B * R, 0.0));
                if (lt_optim_read_state(a.o, k, "exp_avg_sq_col", st, B * C) == LT_OK)
                    worst_s = fmax(worst_s, af_err(st, ref[k].C, B * C, 0.0));
            }
            free(st);
        }
    }
    printf("adafactor threads %d, clip_threshold %g: vs double after %d steps: params %.2e, momentum %.2e, "
           "second moments %.2e\n",
           threads, clip, AF_STEPS, worst_p, worst_u, worst_s);
    CHECK(worst_s < 5e-6, "adafactor (%d threads): row/column second moments off by %.3e", threads, worst_s);
    CHECK(worst_u < 2e-5, "adafactor (%d threads, clip %g): update off by %.3e", threads, clip, worst_u);
    CHECK(worst_p < 5e-6, "adafactor (%d threads): params off by %.3e", threads, worst_p);
    CHECK(same, "adafactor (%d threads): two runs with the same thread count differ", threads);
out:
    for (int k = 0; k < AF_NP; k++) free(ref[k].p), free(ref[k].m), free(ref[k].R), free(ref[k].C);
    af_run_free(&a), af_run_free(&b);
}

/* bf16 gradients (converted in the kernels' segment buffers) against the same
 * run on f32 gradients holding the bf16 values: the same bits. */
static void af_check_bf16_grads(void) {
    const char *args = "beta1=0.9,clip_threshold=0.5";
    af_run f = {0}, b = {0};
    if (af_run_init(&f, args, LT_DTYPE_F32, 2) || af_run_init(&b, args, LT_DTYPE_BF16, 2)) goto out;
    for (int t = 1; t <= AF_STEPS; t++) {
        af_set_grads(&f, t, LT_DTYPE_F32);
        af_set_grads(&b, t, LT_DTYPE_BF16);
        for (int k = 0; k < AF_NP; k++)
            for (size_t i = 0; i < af_numel(k); i++) {
                float *g = (float *)f.g[k];
                g[i] = lt_bf16_to_f32(lt_f32_to_bf16(g[i]));
            }
        CHECK(lt_optim_step(f.o, 1.0f) == LT_OK, "%s", lt_optim_error(f.o));
        CHECK(lt_optim_step(b.o, 1.0f) == LT_OK, "%s", lt_optim_error(b.o));
    }
    CHECK(af_same_bits(&f, &b), "adafactor: bf16 gradients differ from f32 gradients of the same values");
out:
    af_run_free(&f), af_run_free(&b);
}

/* An optimizer whose parameters were added while one thread was allowed, stepped
 * with three: the statistics pass must use the three threads like the rest of
 * the step (its per-thread sums are sized at step time), giving the bits of an
 * optimizer built with three threads. With one thread the bits differ (the
 * column sums are split differently), so the comparison can fail. */
static void af_check_threads_raised(void) {
    const char *args = "clip_threshold=0.5";
    af_run a = {0}, b = {0}, c = {0};
    if (af_run_init(&a, args, LT_DTYPE_F32, 3) || af_run_init(&b, args, LT_DTYPE_F32, 1) ||
        af_run_init(&c, args, LT_DTYPE_F32, 1))
        goto out;
    for (int t = 1; t <= AF_STEPS; t++) {
        af_set_grads(&a, t, LT_DTYPE_F32);
        af_set_grads(&b, t, LT_DTYPE_F32);
        af_set_grads(&c, t, LT_DTYPE_F32);
        omp_set_num_threads(1);
        CHECK(lt_optim_step(c.o, 1.0f) == LT_OK, "%s", lt_optim_error(c.o));
        omp_set_num_threads(3);
        CHECK(lt_optim_step(a.o, 1.0f) == LT_OK, "%s", lt_optim_error(a.o));
        CHECK(lt_optim_step(b.o, 1.0f) == LT_OK, "%s", lt_optim_error(b.o));
    }
    CHECK(!af_same_bits(&a, &c), "adafactor: 1 and 3 threads gave the same bits (this check cannot tell them apart)");
    CHECK(af_same_bits(&a, &b), "adafactor: built with 1 thread and stepped with 3, the bits differ from a build "
                                "with 3 (the statistics pass did not use every thread)");
out:
    af_run_free(&a), af_run_free(&b), af_run_free(&c);
}

static void test_adafactor_threads(void) {
    int nt0 = omp_get_max_threads();
    for (int threads = 1; threads <= 3; threads++) {
        af_check_reference(0.5, threads);  /* clipping on every step */
        af_check_reference(100.0, threads); /* never clipped */
    }
    af_check_bf16_grads();
    af_check_threads_raised();
    omp_set_num_threads(nt0);
}

/* The kernels' branch-free bf16 rounding against the two conversions it stands for: every 7919th bit pattern
 * (all exponents, both signs) and the edges (NaNs quiet and signalling, infinities, the largest finite values
 * that round up to infinity, subnormals, ties to even). */
static void test_round_bf16(void) {
    static const uint32_t edge[] = {0x7fc00000u, 0xffc00001u, 0x7f800001u, 0xff800100u, 0x7f800000u, 0xff800000u,
                                    0x7f7fffffu, 0x7f7f8000u, 0x00000001u, 0x807fffffu, 0x00008000u, 0x00018000u,
                                    0x3f808000u, 0x3f818000u, 0x00000000u, 0x80000000u};
    size_t bad = 0, n = 0;
    for (uint64_t u = 0; u <= 0xffffffffu; u += 7919) {
        uint32_t b = (uint32_t)u;
        float x, y, z;
        memcpy(&x, &b, 4);
        z = lt_round_bf16(x);
        y = lt_bf16_to_f32(lt_f32_to_bf16(x));
        bad += memcmp(&y, &z, 4) != 0;
        n++;
    }
    for (size_t i = 0; i < sizeof edge / sizeof *edge; i++) {
        float x, y, z;
        memcpy(&x, &edge[i], 4);
        z = lt_round_bf16(x);
        y = lt_bf16_to_f32(lt_f32_to_bf16(x));
        bad += memcmp(&y, &z, 4) != 0;
        n++;
    }
    CHECK(bad == 0, "lt_round_bf16 differs from the bf16 conversions on %zu of %zu bit patterns", bad, n);
}

int main(void) {
    test_round_bf16();
    test_one_rounding_and_scale();
    test_kahan();
    test_adafactor_threads();
    return lt_test_done("test_optim_bf16");
}
