/* The GPT-2 layer kernels on the GPU (src/model/cuda, lt_cunn_*) against the
 * CPU kernels (src/model/gpt2_layers.c, lt_nn_*), every kernel, forward and
 * backward, in fp32, bf16 and fp16 storage, on random inputs of three shapes:
 *   B 2, T 21, C 96,  NH 3 (hs 32), V 300,  ldv 304, tokens from 40 ids (many repeats)
 *   B 3, T 40, C 128, NH 2 (hs 64), V 1031, ldv 1040, tokens from all ids
 *   B 1, T 5,  C 33,  NH 3 (hs 11), V 77,   ldv 79,   tokens from all ids
 * (T not a multiple of the warps per CTA nor of 32, C below and above 32
 * lanes, V above the classifier's 256 threads, padded logits rows; V not a
 * multiple of 64, so the lm head's GEMMs split; the odd third shape takes
 * the elementwise, layernorm and classifier kernels' one-value forms, the
 * others their 8-value forms, with V % 8 = 4, 7, 3 left to the classifier's
 * one-value tail).
 *
 * In bf16 storage every input is rounded to bf16 first and the CPU kernel gets
 * the same (rounded) values as float, so the two compute from identical
 * numbers; the GPU's bf16 outputs are then compared with the CPU's float ones.
 * Backward kernels get the same forward tensors on both sides (the CPU's
 * mean / rstd, rounded when stored in bf16), except attention's: the GPU
 * keeps no T x T matrix, so its backward takes the GPU forward's own out (as
 * stored in dt) and log-sum-exp, the CPU's backward the CPU's fp32 att.
 * Layernorm also runs at widths of its own (check_layernorm: C 520, 200 and 8
 * in its 8-values-a-lane form, lanes with several groups of 8, some idle;
 * C 776 with arrays off 16-byte alignment in its one-value form, as C 33,
 * and C 520 again with the 8-value form switched off).
 * Attention runs over shapes of its own (run_attention: T from 1 to 130,
 * hs 32, 48, 64 and 128), checking out, lse (against a double-precision
 * log-sum-exp), the backward's D = dout . out scratch and dq / dk / dv; in
 * fp32 with the CUDA-core kernels and, up to hs 64, the tensor cores' 3xTF32
 * ones, both under TOL_F32; in
 * bf16 and fp16 both with the tensor-core kernels (every hs: the test turns
 * on lt_cunn_attention_tc128, which hs 128 needs) and with the
 * CUDA-core ones (lt_cunn_attention_simt), under the same tolerances (the
 * tensor-core path also rounds P and dS to 16 bits; measured in the CUDA
 * emulation: up to 5.2e-3 in bf16, 6.7e-4 in fp16).
 *
 * The error of an output is max |gpu - cpu| / max |cpu| over the tensor (an
 * error relative to the tensor's scale, so that values near zero after
 * cancellation do not dominate); NaN fails. Tolerances:
 *   exact (0): the encoder (forward in fp32: one addition; backward in both
 *     dtypes: fp32 sums in the CPU's row order, by design) and the residual in
 *     fp32 (one addition);
 *   TOL_F32 = 2e-5 for fp32 outputs: the same fp32 formulas summed in another
 *     order (warp trees, cuBLAS's blocking, row groups) or with the device's
 *     expf / tanhf (a few ulp from glibc's): over the sums here (at most a few
 *     hundred terms) that is up to ~1e-6 of the scale; 2e-5 leaves a margin and
 *     still catches any indexing or formula error (those are O(1));
 *   TOL_BF16 = 2^-7 for bf16 outputs: each is rounded once to nearest, which
 *     is off by at most half a bf16 ulp, 2^-8 of the value (bf16 keeps 8
 *     significant bits), so at most 2^-8 of the scale; doubled (one whole ulp)
 *     because a value the two sides compute a few fp32 ulps apart can round
 *     to neighbouring bf16 values. Measured: up to 0.97 * 2^-8.
 *   TOL_F16 = 2^-10 for fp16 outputs, by the same argument with fp16's 11
 *     significant bits (half an ulp: 2^-11 of the value); the inputs here are
 *     of order 1, far above fp16's subnormals (6.1e-5), whose absolute error
 *     (2^-25) is negligible against the tensor's scale. Measured: up to
 *     0.87 * 2^-11.
 * Parameter gradients and statistics (float in both dtypes) use TOL_F32. The
 * loss sum is relative to itself (1e-5). Also checked: the fused classifier
 * gives the separate forward's losses and lse and the separate backward's
 * dlogits bit for bit and leaves the padding columns alone; the gradient
 * kernels repeat their bits when run twice (no atomics); the encoder's
 * bucket list refuses an out-of-range id; a guard zone after every device
 * buffer stays intact.
 *
 * Needs a GPU (or `make cuda-emu`); built only with CUDA.
 * usage: gpu_gpt2_layers [--quick] [--race] [--seed S] [--bench] [--only PART]   (--quick: the first shape only;
 * --race: --quick without fp16 and with dropout in bf16 only, for compute-sanitizer's racecheck, which runs each
 * kernel many times slower: fp16 instantiates the same kernel templates as bf16, the same 2-byte tiles in shared
 * memory, so it adds no access pattern; --bench: attention's and layernorm's speed at GPT-2 124M's training shape
 * instead, see bench_attention and bench_layernorm) */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "kernels/optim_kernels_cuda.h"
#include "leantrain/dtype.h"
#include "model/cuda/gpt2_layers_cuda.h"
#include "model/gpt2_layers.h"
#include "testutil.h"

#define TOL_F32 2e-5
#define TOL_BF16 (1.0 / 128.0)
#define TOL_F16 (1.0 / 1024.0)

typedef struct {
    int B, T, C, NH, V, ldv, ids;
} shape;

static const shape SHAPES[] = {
    {2, 21, 96, 3, 300, 304, 40},
    {3, 40, 128, 2, 1031, 1040, 1031},
    {1, 5, 33, 3, 77, 79, 77}, /* odd sizes: the elementwise kernels', layernorm's and the classifier's
                                * one-value-per-thread forms (vec8_ok fails) */
    {40, 16, 64, 2, 67, 72, 67}, /* 640 rows: 10 groups of 64 in the column sums (a batch of 8 loads and the rest) */
};

/* ---- random numbers ---- */
static uint64_t rng;
static float uni(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)(rng >> 40) / 16777216.0f;
}
static float sym(float a) { return a * (2.0f * uni() - 1.0f); }

/* ---- device buffers with a guard zone after each ---- */
enum { GUARD = 256, MAXBUF = 64 };
static struct {
    void *p;
    size_t bytes;
} bufs[MAXBUF];
static int nbufs;
static const unsigned char GUARD_BYTE = 0x5c;

static void *dalloc(size_t bytes) {
    char err[512];
    void *p = NULL;
    if (nbufs == MAXBUF || lt_cuda_malloc_raw(&p, bytes + GUARD, err, sizeof err)) {
        fprintf(stderr, "gpu_gpt2_layers: device allocation of %zu bytes failed: %s\n", bytes,
                nbufs == MAXBUF ? "too many buffers" : err);
        exit(2);
    }
    unsigned char g[GUARD];
    memset(g, GUARD_BYTE, sizeof g);
    if (lt_cuda_memcpy_raw((char *)p + bytes, g, GUARD, 0, err, sizeof err)) {
        fprintf(stderr, "gpu_gpt2_layers: %s\n", err);
        exit(2);
    }
    bufs[nbufs].p = p;
    bufs[nbufs].bytes = bytes;
    nbufs++;
    return p;
}

static void free_all(void) {
    char err[512];
    for (int i = 0; i < nbufs; i++) {
        unsigned char g[GUARD];
        int rc = lt_cuda_memcpy_raw(g, (char *)bufs[i].p + bufs[i].bytes, GUARD, 1, err, sizeof err);
        CHECK(rc == 0, "%s", err);
        int ok = 1;
        for (int j = 0; j < GUARD; j++) ok &= g[j] == GUARD_BYTE;
        CHECK(ok, "the guard zone after device buffer %d (%zu bytes) was overwritten", i, bufs[i].bytes);
        lt_cuda_free_raw(bufs[i].p);
    }
    nbufs = 0;
}

static void upload(void *d, const void *h, size_t bytes) {
    char err[512];
    if (lt_cuda_memcpy_raw(d, h, bytes, 0, err, sizeof err)) {
        fprintf(stderr, "gpu_gpt2_layers: %s\n", err);
        exit(2);
    }
}

static void download(void *h, const void *d, size_t bytes) {
    char err[512];
    if (lt_cuda_memcpy_raw(h, d, bytes, 1, err, sizeof err)) {
        fprintf(stderr, "gpu_gpt2_layers: %s\n", err);
        exit(2);
    }
}

/* ---- host arrays ---- */
static float *fbuf(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "gpu_gpt2_layers: out of memory\n");
        exit(2);
    }
    return p;
}
static float *rand_arr(size_t n, float scale, float offset) {
    float *p = fbuf(n);
    for (size_t i = 0; i < n; i++) p[i] = offset + sym(scale);
    return p;
}
static float *copy_arr(const float *x, size_t n) {
    float *p = fbuf(n);
    memcpy(p, x, n * sizeof *p);
    return p;
}
/* one float as a 16-bit dt stores it, and back */
static uint16_t to16(float x, lt_dtype dt) { return dt == LT_DTYPE_BF16 ? lt_f32_to_bf16(x) : lt_f32_to_f16(x); }
static float from16(uint16_t h, lt_dtype dt) { return dt == LT_DTYPE_BF16 ? lt_bf16_to_f32(h) : lt_f16_to_f32(h); }

/* the values a dt tensor can hold: x rounded to bf16 for BF16, to fp16 for F16 */
static void round_dt(float *x, size_t n, lt_dtype dt) {
    if (dt != LT_DTYPE_F32)
        for (size_t i = 0; i < n; i++) x[i] = from16(to16(x[i], dt), dt);
}

/* overwrite the device tensor d with x */
static void dev_set(void *d, const float *x, size_t n, lt_dtype dt) {
    if (dt == LT_DTYPE_F32) {
        upload(d, x, n * sizeof(float));
    } else {
        uint16_t *h = malloc((n ? n : 1) * sizeof *h);
        for (size_t i = 0; i < n; i++) h[i] = to16(x[i], dt);
        upload(d, h, n * sizeof *h);
        free(h);
    }
}
/* a new device tensor of dtype dt holding x (already representable in dt) */
static void *dev_put(const float *x, size_t n, lt_dtype dt) {
    void *d = dalloc(n * lt_dtype_size(dt));
    dev_set(d, x, n, dt);
    return d;
}
/* a new host float copy of the device tensor d */
static float *dev_get(const void *d, size_t n, lt_dtype dt) {
    float *x = fbuf(n);
    if (dt == LT_DTYPE_F32) {
        download(x, d, n * sizeof(float));
    } else {
        uint16_t *h = malloc((n ? n : 1) * sizeof *h);
        download(h, d, n * sizeof *h);
        for (size_t i = 0; i < n; i++) x[i] = from16(h[i], dt);
        free(h);
    }
    return x;
}

/* ---- comparisons ---- */
static const char *dtn(lt_dtype dt) { return dt == LT_DTYPE_F32 ? "f32" : dt == LT_DTYPE_BF16 ? "bf16" : "f16"; }

/* max |g - c| / max(max |c|, floor) over rows x cols (row strides ldg, ldc); NaN or inf: INFINITY */
static double err_rows_floor(const float *g, const float *c, size_t rows, size_t cols, size_t ldg, size_t ldc,
                             double floor) {
    double num = 0.0, den = floor;
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < cols; j++) {
            double a = g[r * ldg + j], b = c[r * ldc + j];
            if (!isfinite(a) || !isfinite(b)) return INFINITY;
            if (fabs(a - b) > num) num = fabs(a - b);
            if (fabs(b) > den) den = fabs(b);
        }
    return num == 0.0 ? 0.0 : num / (den > 0.0 ? den : 1e-30);
}
static double err_rows(const float *g, const float *c, size_t rows, size_t cols, size_t ldg, size_t ldc) {
    return err_rows_floor(g, c, rows, cols, ldg, ldc, 0.0);
}

static void expect_rows(const char *what, lt_dtype dt, const float *g, const float *c, size_t rows, size_t cols,
                        size_t ldg, size_t ldc, double tol) {
    double e = err_rows(g, c, rows, cols, ldg, ldc);
    printf("  %-4s %-40s err %.2e  (tol %.1e)\n", dtn(dt), what, e, tol);
    CHECK(e <= tol, "%s %s: error %.3e above %.1e", dtn(dt), what, e, tol);
}
static void expect(const char *what, lt_dtype dt, const float *g, const float *c, size_t n, double tol) {
    expect_rows(what, dt, g, c, 1, n, n, n, tol);
}
static void expect_same(const char *what, lt_dtype dt, const float *a, const float *b, size_t n) {
    int same = memcmp(a, b, n * sizeof *a) == 0;
    printf("  %-4s %-40s %s\n", dtn(dt), what, same ? "bit-identical" : "DIFFERENT");
    CHECK(same, "%s %s: not bit-identical", dtn(dt), what);
}

/* one kernel call: report its error */
static lt_cunn *nn;
static void ok(int rc, const char *what) {
    if (rc == 0) rc = lt_cunn_sync(nn);
    CHECK(rc == 0, "%s: %s", what, lt_cunn_error(nn));
    if (rc) {
        fprintf(stderr, "gpu_gpt2_layers: stopping after a failed kernel\n");
        exit(1);
    }
}

/* a new device tensor of dtype dt holding x, starting off elements into its buffer (off 1: not 16-byte aligned) */
static void *dev_put_off(const float *x, size_t n, lt_dtype dt, size_t off) {
    void *d = (char *)dalloc((n + off) * lt_dtype_size(dt)) + off * lt_dtype_size(dt);
    dev_set(d, x, n, dt);
    return d;
}

/* ---- layernorm, forward and backward, N rows of C ----
 * off: the row kernels' arrays start off elements into their buffers; off 1 with C % 8 == 0 checks the
 * one-value-at-a-time form on a C the 8-value form would take when aligned. The caller frees the buffers. */
static void check_layernorm(size_t N, int C, lt_dtype dt, size_t off) {
    const size_t NC = N * (size_t)C;
    const double tol = dt == LT_DTYPE_F32 ? TOL_F32 : dt == LT_DTYPE_BF16 ? TOL_BF16 : TOL_F16;
    printf("layernorm N %zu C %d%s, %s storage\n", N, C, off ? " (arrays off 16-byte alignment)" : "", dtn(dt));
    float *x = rand_arr(NC, 1.0f, 2.0f); /* a mean far from 0 */
    float *lw = rand_arr((size_t)C, 0.2f, 1.0f), *lb = rand_arr((size_t)C, 0.2f, 0.0f);
    round_dt(x, NC, dt), round_dt(lw, (size_t)C, dt), round_dt(lb, (size_t)C, dt);
    float *mean = fbuf(N), *rstd = fbuf(N), *ref = fbuf(NC);
    lt_nn_layernorm_forward(ref, mean, rstd, x, lw, lb, N, C, 1e-5);
    void *d_x = dev_put_off(x, NC, dt, off), *d_w = dev_put_off(lw, (size_t)C, dt, off);
    void *d_b = dev_put_off(lb, (size_t)C, dt, off), *d_out = dev_put_off(ref, NC, dt, off); /* overwritten */
    float *d_mean = dalloc(N * sizeof(float)), *d_rstd = dalloc(N * sizeof(float));
    ok(lt_cunn_layernorm_forward(nn, dt, d_out, d_mean, d_rstd, d_x, d_w, d_b, N, C, 1e-5), "layernorm_forward");
    float *got = dev_get(d_out, NC, dt);
    float *gm = dev_get(d_mean, N, LT_DTYPE_F32), *gr = dev_get(d_rstd, N, LT_DTYPE_F32);
    expect("layernorm_forward out", dt, got, ref, NC, tol);
    expect("layernorm_forward mean", dt, gm, mean, N, TOL_F32);
    expect("layernorm_forward rstd", dt, gr, rstd, N, TOL_F32);
    free(got), free(gm), free(gr), free(ref);

    /* backward, from the CPU's statistics on both sides */
    upload(d_mean, mean, N * sizeof(float));
    upload(d_rstd, rstd, N * sizeof(float));
    float *dout = rand_arr(NC, 1.0f, 0.0f), *dinp0 = rand_arr(NC, 1.0f, 0.0f);
    round_dt(dout, NC, dt), round_dt(dinp0, NC, dt);
    float *dw0 = rand_arr((size_t)C, 1.0f, 0.0f), *db0 = rand_arr((size_t)C, 1.0f, 0.0f);
    float *dinp = copy_arr(dinp0, NC), *dw = copy_arr(dw0, (size_t)C), *db = copy_arr(db0, (size_t)C);
    lt_nn_layernorm_backward(dinp, dw, db, dout, x, lw, mean, rstd, N, C);
    void *d_dout = dev_put_off(dout, NC, dt, off), *d_dinp = dev_put_off(dinp0, NC, dt, off);
    float *d_dw = dev_put(dw0, (size_t)C, LT_DTYPE_F32), *d_db = dev_put(db0, (size_t)C, LT_DTYPE_F32);
    float *scratch = dalloc(lt_cunn_colsum_scratch_floats(N, C) * sizeof(float));
    float *g[3] = {0}, *h[3] = {0};
    for (int rep = 0; rep < 2; rep++) {
        dev_set(d_dinp, dinp0, NC, dt);
        upload(d_dw, dw0, (size_t)C * sizeof(float));
        upload(d_db, db0, (size_t)C * sizeof(float));
        ok(lt_cunn_layernorm_backward(nn, dt, d_dinp, d_dw, d_db, d_dout, d_x, d_w, d_mean, d_rstd, N, C, scratch),
           "layernorm_backward");
        float **o = rep ? h : g;
        o[0] = dev_get(d_dinp, NC, dt), o[1] = dev_get(d_dw, (size_t)C, LT_DTYPE_F32);
        o[2] = dev_get(d_db, (size_t)C, LT_DTYPE_F32);
    }
    expect("layernorm_backward dinp (+=)", dt, g[0], dinp, NC, tol);
    expect("layernorm_backward dw", dt, g[1], dw, (size_t)C, TOL_F32);
    expect("layernorm_backward db", dt, g[2], db, (size_t)C, TOL_F32);
    expect_same("layernorm_backward run twice: dinp", dt, g[0], h[0], NC);
    expect_same("layernorm_backward run twice: dw", dt, g[1], h[1], (size_t)C);
    expect_same("layernorm_backward run twice: db", dt, g[2], h[2], (size_t)C);
    for (int i = 0; i < 3; i++) free(g[i]), free(h[i]);
    free(dout), free(dinp0), free(dw0), free(db0), free(dinp), free(dw), free(db);
    free(x), free(lw), free(lb), free(mean), free(rstd);
}

/* ---- the layers, one shape and dtype ---- */
static void run(const shape *s, lt_dtype dt) {
    const int B = s->B, T = s->T, C = s->C, NH = s->NH, V = s->V, ldv = s->ldv;
    const size_t N = (size_t)B * T, NC = N * C, C3 = 3 * (size_t)C, C4 = 4 * (size_t)C;
    const double tol = dt == LT_DTYPE_F32 ? TOL_F32 : dt == LT_DTYPE_BF16 ? TOL_BF16 : TOL_F16;
    const double tol_add = dt == LT_DTYPE_F32 ? 0.0 : tol; /* one addition, then (16-bit) one rounding */
    printf("B %d T %d C %d NH %d V %d (ldv %d), %s storage\n", B, T, C, NH, V, ldv, dtn(dt));
    float *scratch = dalloc(lt_cunn_colsum_scratch_floats(N, (int)C4) * sizeof(float));

    /* ---- encoder ---- */
    int32_t *inp = malloc(N * sizeof *inp), *targets = malloc(N * sizeof *targets);
    for (size_t n = 0; n < N; n++) inp[n] = (int32_t)(uni() * (float)s->ids) % s->ids;
    for (size_t n = 0; n < N; n++) targets[n] = (int32_t)(uni() * (float)V) % V;
    int32_t *d_inp = dalloc(N * sizeof *inp), *d_targets = dalloc(N * sizeof *targets);
    upload(d_inp, inp, N * sizeof *inp);
    upload(d_targets, targets, N * sizeof *targets);
    float *wte = rand_arr((size_t)V * C, 1.0f, 0.0f), *wpe = rand_arr((size_t)T * C, 1.0f, 0.0f);
    round_dt(wte, (size_t)V * C, dt);
    round_dt(wpe, (size_t)T * C, dt);
    void *d_wte = dev_put(wte, (size_t)V * C, dt), *d_wpe = dev_put(wpe, (size_t)T * C, dt);
    void *d_x = dalloc(NC * lt_dtype_size(dt));
    float *ref = fbuf(NC);
    lt_nn_encoder_forward(ref, inp, wte, wpe, B, T, C, NULL);
    ok(lt_cunn_encoder_forward(nn, dt, d_x, d_inp, d_wte, d_wpe, B, T, C, NULL), "encoder_forward");
    float *got = dev_get(d_x, NC, dt);
    expect("encoder_forward out", dt, got, ref, NC, tol_add);
    free(got);
    /* with NEFTune's noise (magnitude 0.05: alpha 5 at T C 10^4): the CPU's values, added in its order */
    const lt_noise nz = lt_noise_make(0.05f, 77, 0xFFFFFFFFu, 3);
    lt_nn_encoder_forward(ref, inp, wte, wpe, B, T, C, &nz);
    ok(lt_cunn_encoder_forward(nn, dt, d_x, d_inp, d_wte, d_wpe, B, T, C, &nz), "encoder_forward with noise");
    got = dev_get(d_x, NC, dt);
    if (dt == LT_DTYPE_F32) expect_same("encoder_forward with NEFTune noise", dt, got, ref, NC);
    else expect("encoder_forward with NEFTune noise", dt, got, ref, NC, tol_add);
    free(got);
    free(ref);

    {
        float *dout = rand_arr(NC, 1.0f, 0.0f);
        round_dt(dout, NC, dt);
        float *dwte0 = rand_arr((size_t)V * C, 1.0f, 0.0f), *dwpe0 = rand_arr((size_t)T * C, 1.0f, 0.0f);
        float *dwte = copy_arr(dwte0, (size_t)V * C), *dwpe = copy_arr(dwpe0, (size_t)T * C);
        lt_nn_encoder_backward(dwte, dwpe, dout, inp, B, T, C);
        int32_t *plan = malloc(lt_cunn_encoder_plan_ints(N) * sizeof *plan), *count = malloc((size_t)V * sizeof *count);
        int groups = lt_cunn_encoder_plan(plan, count, inp, N, V);
        CHECK(groups > 0 && groups <= s->ids, "encoder_plan: %d groups", groups);
        int32_t *d_plan = dalloc(lt_cunn_encoder_plan_ints(N) * sizeof *plan);
        upload(d_plan, plan, lt_cunn_encoder_plan_ints(N) * sizeof *plan);
        void *d_dout = dev_put(dout, NC, dt);
        float *d_dwte = dev_put(dwte0, (size_t)V * C, LT_DTYPE_F32), *d_dwpe = dev_put(dwpe0, (size_t)T * C, LT_DTYPE_F32);
        ok(lt_cunn_encoder_backward(nn, dt, d_dwte, d_dwpe, d_dout, d_plan, groups, B, T, C), "encoder_backward");
        float *g1 = dev_get(d_dwte, (size_t)V * C, LT_DTYPE_F32), *p1 = dev_get(d_dwpe, (size_t)T * C, LT_DTYPE_F32);
        expect("encoder_backward dwte (exact)", dt, g1, dwte, (size_t)V * C, 0.0);
        expect("encoder_backward dwpe (exact)", dt, p1, dwpe, (size_t)T * C, 0.0);
        /* an id out of range is refused */
        int32_t keep = inp[N / 2];
        inp[N / 2] = V;
        CHECK(lt_cunn_encoder_plan(plan, count, inp, N, V) == -1, "encoder_plan took an id of V");
        inp[N / 2] = keep;
        free(g1), free(p1), free(dwte0), free(dwpe0), free(dwte), free(dwpe), free(dout), free(plan), free(count);
    }

    /* ---- layernorm ---- */
    check_layernorm(N, C, dt, 0);
    float *x = rand_arr(NC, 1.0f, 2.0f); /* the matmuls' and the lm head's input */
    round_dt(x, NC, dt);
    dev_set(d_x, x, NC, dt);

    /* ---- matmul (c_attn shape: C -> 3C) ---- */
    {
        float *w = rand_arr((size_t)C * C3, 0.2f, 0.0f), *bias = rand_arr(C3, 1.0f, 0.0f), *zero = fbuf(C3);
        round_dt(w, (size_t)C * C3, dt), round_dt(bias, C3, dt);
        memset(zero, 0, C3 * sizeof *zero);
        void *d_w = dev_put(w, (size_t)C * C3, dt), *d_bias = dev_put(bias, C3, dt), *d_out = dalloc(N * C3 * lt_dtype_size(dt));
        ref = fbuf(N * C3);
        lt_nn_matmul_forward(ref, x, w, bias, N, C, (int)C3);
        ok(lt_cunn_matmul_forward(nn, dt, d_out, d_x, d_w, d_bias, N, C, (int)C3), "matmul_forward");
        got = dev_get(d_out, N * C3, dt);
        expect("matmul_forward out", dt, got, ref, N * C3, tol);
        free(got);
        lt_nn_matmul_forward(ref, x, w, zero, N, C, (int)C3);
        ok(lt_cunn_matmul_forward(nn, dt, d_out, d_x, d_w, NULL, N, C, (int)C3), "matmul_forward (no bias)");
        got = dev_get(d_out, N * C3, dt);
        expect("matmul_forward out, no bias", dt, got, ref, N * C3, tol);
        free(got), free(ref);

        float *dout = rand_arr(N * C3, 1.0f, 0.0f);
        round_dt(dout, N * C3, dt);
        float *dw0 = rand_arr((size_t)C * C3, 1.0f, 0.0f), *db0 = rand_arr(C3, 1.0f, 0.0f);
        float *dinp = fbuf(NC), *dw = copy_arr(dw0, (size_t)C * C3), *db = copy_arr(db0, C3);
        lt_nn_matmul_backward(dinp, dw, db, dout, x, w, N, C, (int)C3);
        void *d_dout = dev_put(dout, N * C3, dt), *d_dinp = dalloc(NC * lt_dtype_size(dt));
        float *d_dw = dalloc((size_t)C * C3 * sizeof(float)), *d_db = dalloc(C3 * sizeof(float));
        float *g[3] = {0}, *h[3] = {0};
        for (int rep = 0; rep < 2; rep++) {
            upload(d_dw, dw0, (size_t)C * C3 * sizeof(float));
            upload(d_db, db0, C3 * sizeof(float));
            ok(lt_cunn_matmul_backward(nn, dt, d_dinp, d_dw, d_db, d_dout, d_x, d_w, N, C, (int)C3, scratch),
               "matmul_backward");
            float **o = rep ? h : g;
            o[0] = dev_get(d_dinp, NC, dt), o[1] = dev_get(d_dw, (size_t)C * C3, LT_DTYPE_F32);
            o[2] = dev_get(d_db, C3, LT_DTYPE_F32);
        }
        expect("matmul_backward dinp", dt, g[0], dinp, NC, tol);
        expect("matmul_backward dw (+=)", dt, g[1], dw, (size_t)C * C3, TOL_F32);
        expect("matmul_backward dbias (+=)", dt, g[2], db, C3, TOL_F32);
        expect_same("matmul_backward run twice: dinp", dt, g[0], h[0], NC);
        expect_same("matmul_backward run twice: dw", dt, g[1], h[1], (size_t)C * C3);
        expect_same("matmul_backward run twice: dbias", dt, g[2], h[2], C3);
        for (int i = 0; i < 3; i++) free(g[i]), free(h[i]);
        free(dout), free(dw0), free(db0), free(dinp), free(dw), free(db), free(w), free(bias), free(zero);
    }

    /* attention: run_attention, over its own shapes */

    /* ---- gelu, residual ---- */
    {
        const size_t n4 = N * C4;
        float *h = rand_arr(n4, 4.0f, 0.0f), *dh = rand_arr(n4, 1.0f, 0.0f);
        round_dt(h, n4, dt), round_dt(dh, n4, dt);
        void *d_h = dev_put(h, n4, dt), *d_o = dalloc(n4 * lt_dtype_size(dt)), *d_dh = dev_put(dh, n4, dt);
        ref = fbuf(n4);
        lt_nn_gelu_forward(ref, h, n4);
        ok(lt_cunn_gelu_forward(nn, dt, d_o, d_h, n4), "gelu_forward");
        got = dev_get(d_o, n4, dt);
        expect("gelu_forward out", dt, got, ref, n4, tol);
        free(got);
        memcpy(ref, dh, n4 * sizeof *ref);
        lt_nn_gelu_backward(ref, h, n4);
        ok(lt_cunn_gelu_backward(nn, dt, d_dh, d_h, n4), "gelu_backward");
        got = dev_get(d_dh, n4, dt);
        expect("gelu_backward dinout (in place)", dt, got, ref, n4, tol);
        free(got);

        float *a = rand_arr(NC, 1.0f, 0.0f);
        round_dt(a, NC, dt);
        void *d_a = dev_put(a, NC, dt);
        lt_nn_residual_forward(ref, a, x, NC);
        ok(lt_cunn_residual_forward(nn, dt, d_a, d_a, d_x, NC), "residual_forward"); /* out aliases a */
        got = dev_get(d_a, NC, dt);
        expect("residual_forward out (aliasing a)", dt, got, ref, NC, tol_add);
        free(got), free(ref), free(h), free(dh), free(a);
    }

    /* ---- lm head ---- */
    {
        const size_t nl = N * (size_t)ldv;
        void *d_logits = dalloc(nl * lt_dtype_size(dt));
        ref = fbuf(N * (size_t)V);
        lt_nn_lmhead_forward(ref, x, wte, N, C, V);
        ok(lt_cunn_lmhead_forward(nn, dt, d_logits, d_x, d_wte, N, C, V, ldv), "lmhead_forward");
        got = dev_get(d_logits, nl, dt);
        expect_rows("lmhead_forward logits", dt, got, ref, N, (size_t)V, (size_t)ldv, (size_t)V, tol);
        free(got), free(ref);

        float *dl = rand_arr(nl, 0.1f, 0.0f);
        round_dt(dl, nl, dt);
        float *dl_c = fbuf(N * (size_t)V);
        for (size_t r = 0; r < N; r++) memcpy(dl_c + r * V, dl + r * ldv, (size_t)V * sizeof *dl);
        float *dwte0 = rand_arr((size_t)V * C, 1.0f, 0.0f), *dwte = copy_arr(dwte0, (size_t)V * C), *dinp = fbuf(NC);
        lt_nn_lmhead_backward(dinp, dwte, dl_c, x, wte, N, C, V);
        dev_set(d_logits, dl, nl, dt);
        float *d_dwte = dev_put(dwte0, (size_t)V * C, LT_DTYPE_F32);
        void *d_dinp = dalloc(NC * lt_dtype_size(dt));
        ok(lt_cunn_lmhead_backward(nn, dt, d_dinp, d_dwte, d_logits, d_x, d_wte, N, C, V, ldv), "lmhead_backward");
        float *g1 = dev_get(d_dinp, NC, dt), *g2 = dev_get(d_dwte, (size_t)V * C, LT_DTYPE_F32);
        expect("lmhead_backward dinp", dt, g1, dinp, NC, tol);
        expect("lmhead_backward dwte (+=)", dt, g2, dwte, (size_t)V * C, TOL_F32);
        /* with fp32 scratch, as the model calls it: 16-bit dinp summed in two GEMMs (V is not a multiple of 64 in
         * any shape), rounded once; dwte again from dwte0 */
        float *d_fs = dalloc(NC * sizeof(float));
        dev_set(d_dwte, dwte0, (size_t)V * C, LT_DTYPE_F32);
        ok(lt_cunn_lmhead_backward_r(nn, dt, d_dinp, d_dwte, d_logits, d_x, d_wte, N, C, V, ldv, NULL, 0, d_fs, NC),
           "lmhead_backward_r");
        float *g3 = dev_get(d_dinp, NC, dt), *g4 = dev_get(d_dwte, (size_t)V * C, LT_DTYPE_F32);
        expect("lmhead_backward dinp (split by scratch)", dt, g3, dinp, NC, tol);
        expect("lmhead_backward dwte (+=, again)", dt, g4, dwte, (size_t)V * C, TOL_F32);
        free(g1), free(g2), free(g3), free(g4), free(dl), free(dl_c), free(dwte0), free(dwte), free(dinp);
    }

    /* ---- classifier, without label smoothing and with it ---- */
    for (int ls = 0; ls < 2; ls++) {
        const float eps = ls ? 0.1f : 0.0f;
        if (ls) printf("  %-4s label smoothing %.1f:\n", dtn(dt), eps);
        const size_t nl = N * (size_t)ldv;
        const float scale = 1.0f / (float)N, PAD = 7.0f;
        float *lg = rand_arr(nl, 4.0f, 0.0f);
        round_dt(lg, nl, dt);
        for (size_t r = 0; r < N; r++)
            for (int j = V; j < ldv; j++) lg[r * ldv + j] = PAD;
        float *lg_c = fbuf(N * (size_t)V), *losses = fbuf(N), *lse = fbuf(N), *dl = fbuf(N * (size_t)V);
        for (size_t r = 0; r < N; r++) memcpy(lg_c + r * V, lg + r * ldv, (size_t)V * sizeof *lg);
        double total = lt_nn_crossentropy_forward(losses, lse, lg_c, targets, N, V, eps);
        lt_nn_crossentropy_backward(dl, lg_c, lse, targets, N, V, scale, eps);

        void *d_lg = dev_put(lg, nl, dt), *d_dl = dev_put(lg, nl, dt), *d_lg2 = dev_put(lg, nl, dt);
        float *d_losses = dalloc(N * sizeof(float)), *d_lse = dalloc(N * sizeof(float));
        float *d_losses2 = dalloc(N * sizeof(float)), *d_lse2 = dalloc(N * sizeof(float));
        double *d_sum = dalloc(2 * sizeof(double)), sums[2];
        ok(lt_cunn_crossentropy_forward(nn, dt, d_losses, d_lse, d_lg, d_targets, N, V, ldv, eps, d_sum),
           "crossentropy_forward");
        ok(lt_cunn_crossentropy_backward(nn, dt, d_dl, d_lg, d_lse, d_targets, N, V, ldv, scale, eps),
           "crossentropy_backward");
        ok(lt_cunn_classifier(nn, dt, d_lg2, d_losses2, d_lse2, d_targets, N, V, ldv, scale, eps, d_sum + 1),
           "classifier");
        float *gl = dev_get(d_losses, N, LT_DTYPE_F32), *gz = dev_get(d_lse, N, LT_DTYPE_F32);
        float *gl2 = dev_get(d_losses2, N, LT_DTYPE_F32), *gz2 = dev_get(d_lse2, N, LT_DTYPE_F32);
        float *gd = dev_get(d_dl, nl, dt), *gd2 = dev_get(d_lg2, nl, dt);
        download(sums, d_sum, sizeof sums);
        expect("crossentropy_forward losses", dt, gl, losses, N, TOL_F32);
        expect("crossentropy_forward lse", dt, gz, lse, N, TOL_F32);
        double se = fabs(sums[0] - total) / fabs(total);
        printf("  %-4s %-40s err %.2e  (tol %.1e)\n", dtn(dt), "crossentropy_forward loss sum", se, 1e-5);
        CHECK(se <= 1e-5 && sums[1] == sums[0], "loss sums %.9g %.9g, CPU %.9g", sums[0], sums[1], total);
        expect_rows("crossentropy_backward dlogits", dt, gd, dl, N, (size_t)V, (size_t)ldv, (size_t)V, tol);
        expect_same("classifier losses = forward's", dt, gl2, gl, N);
        expect_same("classifier lse = forward's", dt, gz2, gz, N);
        expect_same("classifier dlogits = backward's", dt, gd2, gd, nl); /* padding included */
        int pad_ok = 1;
        for (size_t r = 0; r < N; r++)
            for (int j = V; j < ldv; j++) pad_ok &= gd2[r * ldv + j] == PAD;
        CHECK(pad_ok, "the classifier wrote into the padding columns");
        free(gl), free(gz), free(gl2), free(gz2), free(gd), free(gd2);
        free(lg), free(lg_c), free(losses), free(lse), free(dl);
    }

    /* ---- top-1 predictions: the count of rows whose first largest logit is the target, the CPU's, with
     * coarse values (ties: a target at a later tied maximum misses), a NaN in some rows, padding columns larger
     * than every logit (never read) ---- */
    {
        const size_t nl = N * (size_t)ldv;
        float *lg = rand_arr(nl, 4.0f, 0.0f);
        for (size_t i = 0; i < nl; i++) lg[i] = roundf(lg[i]); /* integers: exact in every dtype, many ties */
        for (size_t r = 0; r < N; r++)
            for (int j = V; j < ldv; j++) lg[r * ldv + j] = 1e4f;
        for (size_t r = 3; r < N; r += 7) lg[r * ldv + (r * 5) % (size_t)V] = NAN;
        float *lg_c = fbuf(N * (size_t)V);
        int32_t *tg = malloc(N * sizeof *tg);
        for (size_t r = 0; r < N; r++) {
            const float *l = lg + r * ldv;
            int best = 0, last = 0;
            for (int v = 1; v < V; v++)
                if (l[v] > l[best]) best = v;
            for (int v = 0; v < V; v++)
                if (l[v] == l[best]) last = v;
            tg[r] = r % 3 == 0 ? best : r % 3 == 1 ? last : (int32_t)((r * 11) % (size_t)V);
            memcpy(lg_c + r * V, l, (size_t)V * sizeof *l);
        }
        const unsigned long long want = lt_nn_top1_hits(lg_c, tg, N, V), zero = 0;
        void *d_lg = dev_put(lg, nl, dt);
        int32_t *d_tg = dalloc(N * sizeof *tg);
        unsigned long long *d_hits = dalloc(sizeof zero), got = ~0ull;
        upload(d_tg, tg, N * sizeof *tg);
        upload(d_hits, &zero, sizeof zero);
        ok(lt_cunn_top1_hits(nn, dt, d_hits, d_lg, d_tg, N, V, ldv), "top1_hits");
        download(&got, d_hits, sizeof got);
        printf("  %-4s %-40s %llu of %zu rows, CPU %llu\n", dtn(dt), "top1_hits", got, N, want);
        CHECK(got == want && want > 0, "%s top1_hits: %llu rows, the CPU's count %llu", dtn(dt), got, want);
        free(lg), free(lg_c), free(tg);
    }

    free(x), free(wte), free(wpe), free(inp), free(targets);
    free_all();
}

/* ---- attention (flash-style on the GPU: out and lse, no T x T matrix) ----
 * Shapes: T = 1, 7, 33, 64, 65, 130 (partial and whole 64-row / 32-row
 * tiles), hs = 32, 48 (padded to 64 dims), 64 and 128 (the three
 * instantiations of the kernels), NH 1 to 3. */
typedef struct {
    int B, T, C, NH;
} attn_shape;

static const attn_shape ATTN_SHAPES[] = {
    {2, 1, 64, 2},   /* hs 32, one row */
    {1, 7, 128, 2},  /* hs 64 */
    {2, 33, 96, 3},  /* hs 32, a 32-key tile and one more */
    {1, 64, 64, 1},  /* hs 64, exactly one tile */
    {2, 65, 128, 2}, /* hs 64, one row past the tile */
    {1, 33, 96, 2},  /* hs 48: zero-padded to 64 dims */
    {1, 130, 128, 1}, /* hs 128 */
    {1, 65, 256, 2}, /* hs 128, two heads */
    {2, 40, 60, 3},  /* hs 20: rows of 60 values, not whole 16-byte chunks: the tiles staged one value at a time */
};

/* lse[b, h, t] = log sum over t2 <= t of exp(q.k / sqrt(hs)), in double */
static void ref_lse(float *lse, const float *qkv, int B, int T, int C, int NH) {
    const int hs = C / NH;
    const size_t C3 = 3 * (size_t)C;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const float *q = qkv + ((size_t)b * T + t) * C3 + (size_t)h * hs;
                double m = -INFINITY, *s = malloc(((size_t)t + 1) * sizeof *s), sum = 0.0;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *k = qkv + ((size_t)b * T + t2) * C3 + C + (size_t)h * hs;
                    double d = 0.0;
                    for (int i = 0; i < hs; i++) d += (double)q[i] * k[i];
                    s[t2] = d / sqrt((double)hs);
                    if (s[t2] > m) m = s[t2];
                }
                for (int t2 = 0; t2 <= t; t2++) sum += exp(s[t2] - m);
                lse[((size_t)b * NH + h) * T + t] = (float)(m + log(sum));
                free(s);
            }
}

/* whether attention of dtype dt and head size hs runs on the tensor cores (the defaults, and tc128 on): 16-bit up to
 * hs 128, fp32 (3xTF32) up to 64, unless simt */
static int attn_on_tc(lt_dtype dt, int hs, int simt) { return !simt && hs <= (dt == LT_DTYPE_F32 ? 64 : 128); }

/* The GPU attention against the CPU's (lt_nn_attention_*), without dropout (pdrop 0) or with it: the same
 * probabilities dropped (the kernels' keep bits against the CPU's), the statistics before it. */
static void run_attention(const attn_shape *s, lt_dtype dt, int simt, double pdrop) {
    const int B = s->B, T = s->T, C = s->C, NH = s->NH;
    const size_t N = (size_t)B * T, NC = N * C, C3 = 3 * (size_t)C, NR = (size_t)B * NH * T;
    const double tol = dt == LT_DTYPE_F32 ? TOL_F32 : dt == LT_DTYPE_BF16 ? TOL_BF16 : TOL_F16;
    const int tc = attn_on_tc(dt, C / NH, simt);
    const lt_dropout drop = lt_dropout_make(pdrop, 1000u + (uint64_t)T, 7, (uint32_t)B);
    const lt_dropout *dr = pdrop > 0 ? &drop : NULL;
    lt_cunn_attention_simt(nn, simt);
    printf("attention B %d T %d C %d NH %d (hs %d), %s storage, %s%s\n", B, T, C, NH, C / NH, dtn(dt),
           tc ? "tensor cores" : "CUDA cores", dr ? ", dropout 0.3" : "");
    float *qkv = rand_arr(N * C3, 1.5f, 0.0f), *dout = rand_arr(NC, 1.0f, 0.0f);
    round_dt(qkv, N * C3, dt), round_dt(dout, NC, dt);

    /* the CPU: its row statistics feed its backward */
    float *att = fbuf(2 * NR), *out = fbuf(NC), *lse = fbuf(NR);
    float *dqkv = fbuf(N * C3), *drow = fbuf(4 * NC); /* the CPU attention's scratch, as the model gives it */
    lt_nn_attention_forward_r(out, att, drow, 4 * NC, qkv, B, T, C, NH, LT_NN_ROUND_NONE, dr);
    lt_nn_attention_backward(dqkv, drow, 4 * NC, dout, qkv, att, B, T, C, NH, LT_NN_ROUND_NONE, dr);
    ref_lse(lse, qkv, B, T, C, NH);
    float *D = fbuf(NR); /* dout . out per (b, h, t), in double from the CPU's fp32 out */
    for (size_t r = 0; r < NR; r++) {
        const size_t b = r / ((size_t)NH * T), h = r / (size_t)T % (size_t)NH, t = r % (size_t)T;
        const size_t at = (b * T + t) * (size_t)C + h * (size_t)(C / NH);
        double d = 0.0;
        for (int i = 0; i < C / NH; i++) d += (double)dout[at + i] * out[at + i];
        D[r] = (float)d;
    }

    /* the GPU: forward, then backward from the forward's own out and lse */
    void *d_qkv = dev_put(qkv, N * C3, dt), *d_out = dalloc(NC * lt_dtype_size(dt));
    void *d_dout = dev_put(dout, NC, dt), *d_dqkv = dalloc(N * C3 * lt_dtype_size(dt));
    float *d_lse = dalloc(NR * sizeof(float)), *d_D = dalloc(NR * sizeof(float));
    ok(lt_cunn_attention_forward(nn, dt, d_out, d_lse, d_qkv, B, T, C, NH, dr), "attention_forward");
    float *g_out = dev_get(d_out, NC, dt), *g_lse = dev_get(d_lse, NR, LT_DTYPE_F32);
    expect("attention_forward out", dt, g_out, out, NC, tol);
    expect("attention_forward lse", dt, g_lse, lse, NR, TOL_F32);

    ok(lt_cunn_attention_backward(nn, dt, d_dqkv, d_D, d_dout, d_qkv, d_out, d_lse, B, T, C, NH, dr),
       "attention_backward");
    float *g1 = dev_get(d_dqkv, N * C3, dt), *gD = dev_get(d_D, NR, LT_DTYPE_F32);
    ok(lt_cunn_attention_backward(nn, dt, d_dqkv, d_D, d_dout, d_qkv, d_out, d_lse, B, T, C, NH, dr),
       "attention_backward");
    float *g2 = dev_get(d_dqkv, N * C3, dt);
    /* D = dout . out: the GPU's from out as stored in dt (16-bit: rounded once) */
    expect("attention_backward D (scratch)", dt, gD, D, NR, tol);
    if (dr && T == 1) {
        /* one key per row (T 1): d scores is 0 in exact arithmetic, and with dropout d P z and D = dout . out are
           no longer the same products, so both sides hold rounding residue: dq and dk are held to the size of
           the gradient that does flow, dv's */
        double dvmax = 0.0;
        for (size_t t = 0; t < N; t++)
            for (int i = 0; i < C; i++) dvmax = fmax(dvmax, fabs(dqkv[t * C3 + 2 * (size_t)C + (size_t)i]));
        const double eq = err_rows_floor(g1, dqkv, N, (size_t)C, C3, C3, dvmax),
                     ek = err_rows_floor(g1 + C, dqkv + C, N, (size_t)C, C3, C3, dvmax);
        printf("  %-4s %-40s err %.2e / %.2e  (tol %.1e)\n", dtn(dt), "attention_backward dq / dk (dv's scale)", eq,
               ek, tol);
        CHECK(eq <= tol && ek <= tol, "%s attention_backward with dropout: dq error %.3e, dk %.3e above %.1e", dtn(dt),
              eq, ek, tol);
    } else {
        expect_rows("attention_backward dq", dt, g1, dqkv, N, (size_t)C, C3, C3, tol);
        expect_rows("attention_backward dk", dt, g1 + C, dqkv + C, N, (size_t)C, C3, C3, tol);
    }
    expect_rows("attention_backward dv", dt, g1 + 2 * C, dqkv + 2 * C, N, (size_t)C, C3, C3, tol);
    expect_same("attention_backward run twice: dqkv", dt, g1, g2, N * C3);
    free(qkv), free(dout), free(att), free(out), free(lse), free(dqkv), free(drow), free(D);
    free(g_out), free(g_lse), free(g1), free(g2), free(gD);
    free_all();
}

/* ---- dropout (lt_cunn_dropout) ---- */

/* lt_cunn_dropout against lt_nn_dropout, bit for bit, in every dtype (the 16-bit inputs rounded as stored), in
 * place and not, with lengths around the groups of four; a zero threshold leaves the values alone. */
static void check_dropout(void) {
    static const size_t LENS[] = {1, 5, 4099, 70001};
    const lt_dtype dts[3] = {LT_DTYPE_F32, LT_DTYPE_BF16, LT_DTYPE_F16};
    for (size_t li = 0; li < sizeof LENS / sizeof LENS[0]; li++)
        for (int k = 0; k < 3; k++) {
            const size_t n = LENS[li];
            const lt_dtype dt = dts[k];
            const lt_dropout d = lt_dropout_make(0.25, 99 + li, 5, 3);
            float *x = rand_arr(n, 2.0f, 0.0f), *want = fbuf(n);
            round_dt(x, n, dt);
            lt_nn_dropout(want, x, n, 0, &d, dt == LT_DTYPE_F32 ? LT_NN_ROUND_NONE
                                              : dt == LT_DTYPE_BF16 ? LT_NN_ROUND_BF16 : LT_NN_ROUND_F16);
            void *dx = dev_put(x, n, dt), *dy = dalloc(n * lt_dtype_size(dt));
            ok(lt_cunn_dropout(nn, dt, dy, dx, n, &d), "dropout");
            ok(lt_cunn_dropout(nn, dt, dx, dx, n, &d), "dropout in place");
            float *g = dev_get(dy, n, dt), *g2 = dev_get(dx, n, dt);
            expect_same("dropout", dt, g, want, n);
            expect_same("dropout in place", dt, g2, want, n);
            const lt_dropout off = lt_dropout_make(0.0, 1, 0, 0);
            ok(lt_cunn_dropout(nn, dt, dy, dy, n, &off), "dropout p 0");
            float *g3 = dev_get(dy, n, dt);
            expect_same("dropout p 0", dt, g3, want, n);
            free(x), free(want), free(g), free(g2), free(g3);
            free_all();
        }
    printf("dropout: lt_cunn_dropout gives lt_nn_dropout's bits (f32, bf16, f16; 4 lengths)\n");
}

/* ---- dtype conversion (lt_cunn_convert) ---- */

static uint32_t bits32(void) {
    uni();
    return (uint32_t)(rng >> 32);
}

/* lt_cunn_convert against the host's conversions, bit for bit: both 16-bit dtypes each way, lengths around the
 * 8-value groups and past what one capped grid covers (the threads' strides), the device arrays 16-byte aligned
 * and one element off (the one-value path), on random bit patterns (NaNs, infinities, subnormals, rounding ties
 * among them; a few ties placed); nothing outside the n values is written (poisoned around, guard zones after) */
static void run_convert(void) {
    static const size_t LENS[] = {1, 7, 8, 9, 4099, 70001};
    static const uint32_t TIES[] = {0x3f808000u, 0x3f818000u, 0xbf808000u, 0x7f7f8000u, 0x00008000u, 0x33801000u};
    const lt_dtype narrow[2] = {LT_DTYPE_BF16, LT_DTYPE_F16};
    for (int k = 0; k < 2; k++)
        for (int widen = 0; widen < 2; widen++)
            for (size_t li = 0; li < sizeof LENS / sizeof LENS[0]; li++)
                for (size_t off = 0; off < 2; off++) {
                    const lt_dtype dt = narrow[k], from = widen ? dt : LT_DTYPE_F32, to = widen ? LT_DTYPE_F32 : dt;
                    const size_t n = LENS[li], total = n + off + 1, fs = lt_dtype_size(from), ts = lt_dtype_size(to);
                    unsigned char *src = malloc(total * fs), *want = malloc(total * ts), *got = malloc(total * ts);
                    CHECK(src && want && got, "out of memory");
                    for (size_t i = 0; i < total; i++) {
                        uint32_t b = bits32();
                        if (!widen && i >= off && i - off < sizeof TIES / sizeof TIES[0]) b = TIES[i - off];
                        memcpy(src + i * fs, &b, fs); /* little-endian: the low half for 16-bit values */
                    }
                    memset(want, 0xa5, total * ts);
                    for (size_t i = off; i < off + n; i++) {
                        if (widen) {
                            uint16_t h;
                            memcpy(&h, src + i * fs, 2);
                            const float f = from16(h, dt);
                            memcpy(want + i * ts, &f, 4);
                        } else {
                            float f;
                            memcpy(&f, src + i * fs, 4);
                            const uint16_t h = to16(f, dt);
                            memcpy(want + i * ts, &h, 2);
                        }
                    }
                    unsigned char *ds = dalloc(total * fs), *dd = dalloc(total * ts);
                    upload(ds, src, total * fs);
                    memset(got, 0xa5, total * ts);
                    upload(dd, got, total * ts);
                    ok(lt_cunn_convert(nn, to, dd + off * ts, from, ds + off * fs, n), "convert"); /* synced */
                    download(got, dd, total * ts);
                    size_t bad = total;
                    for (size_t i = 0; i < total && bad == total; i++)
                        if (memcmp(got + i * ts, want + i * ts, ts)) bad = i;
                    CHECK(bad == total, "convert %s -> %s, n %zu, offset %zu: value %zu differs from the host's%s",
                          dtn(from), dtn(to), n, off, bad, bad < off || bad >= off + n ? " (outside the range)" : "");
                    free(src), free(want), free(got);
                    free_all();
                }
    CHECK(lt_cunn_convert(nn, LT_DTYPE_F32, NULL, LT_DTYPE_F32, NULL, 4) == -1 &&
              strstr(lt_cunn_error(nn), "from F32 to F32: one side must be F32"),
          "an fp32 -> fp32 conversion was not refused: '%s'", lt_cunn_error(nn));
}

/* ---- TF32 matrix multiplies (lt_cunn_gemm_tf32, the trainer's --tf32) ----
 * out = x @ w for fp32 storage with TF32 on, against the product in double of the unrounded inputs: every
 * element within 2^-9 of sum_k |x_k w_k| (each input rounded to 10 bits of mantissa, to nearest or by
 * truncation: at most 2^-10 relative per input, so 2^-9 per product, a bound random errors come nowhere near;
 * fp32 sums add about 1e-5 at worst). The TF32 results must differ from the fp32 ones by far more than fp32's
 * own error (the rounding is applied at all), the fp32
 * ones stay within TOL_F32, switching back restores fp32's bits, and bf16 storage gives the same bits with TF32
 * on or off (16-bit products are untouched). */
static void check_tf32(void) {
    const size_t N = 48;
    const int C = 200, OC = 72;
    float *x = rand_arr(N * (size_t)C, 1.0f, 0.5f), *w = rand_arr((size_t)C * OC, 0.3f, 0.0f);
    float *exact = fbuf(N * (size_t)OC), *absum = fbuf(N * (size_t)OC);
    for (size_t n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = 0.0, a = 0.0;
            for (int c = 0; c < C; c++) {
                const double p = (double)x[n * (size_t)C + (size_t)c] * (double)w[(size_t)c * OC + (size_t)o];
                s += p, a += fabs(p);
            }
            exact[n * (size_t)OC + (size_t)o] = (float)s, absum[n * (size_t)OC + (size_t)o] = (float)a;
        }
    void *d_x = dev_put(x, N * (size_t)C, LT_DTYPE_F32), *d_w = dev_put(w, (size_t)C * OC, LT_DTYPE_F32);
    void *d_out = dalloc(N * (size_t)OC * sizeof(float));
    CHECK(lt_cunn_gemm_tf32(nn, 0) == 0, "a new context starts with TF32 on");
    ok(lt_cunn_matmul_forward(nn, LT_DTYPE_F32, d_out, d_x, d_w, NULL, N, C, OC), "matmul_forward (fp32)");
    float *f32 = dev_get(d_out, N * (size_t)OC, LT_DTYPE_F32);
    expect("matmul_forward, TF32 off", LT_DTYPE_F32, f32, exact, N * (size_t)OC, TOL_F32);
    CHECK(lt_cunn_gemm_tf32(nn, 1) == 0, "lt_cunn_gemm_tf32 did not return the previous setting (off)");
    ok(lt_cunn_matmul_forward(nn, LT_DTYPE_F32, d_out, d_x, d_w, NULL, N, C, OC), "matmul_forward (tf32)");
    float *t32 = dev_get(d_out, N * (size_t)OC, LT_DTYPE_F32);
    double worst = 0.0; /* |tf32 - exact| / sum |x w|, the largest */
    for (size_t i = 0; i < N * (size_t)OC; i++) {
        const double e = fabs((double)t32[i] - exact[i]) / absum[i];
        if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
    }
    const double moved = err_rows(t32, f32, 1, N * (size_t)OC, 0, 0);
    printf("  f32  matmul_forward, TF32 on               err %.2e of sum |x w|  (tol %.1e); %.2e from fp32's\n",
           worst, ldexp(1.0, -9), moved);
    CHECK(worst <= ldexp(1.0, -9), "TF32 matmul: error %.3e of sum |x w|, above 2^-9", worst);
    /* TF32's rounding moves these sums by about 1e-4 of the largest; fp32's own error is about 1e-7 */
    CHECK(moved > 1e-5, "TF32 matmul: results within %.2e of fp32's: TF32 not applied", moved);
    CHECK(lt_cunn_gemm_tf32(nn, 0) == 1, "lt_cunn_gemm_tf32 did not return the previous setting (on)");
    ok(lt_cunn_matmul_forward(nn, LT_DTYPE_F32, d_out, d_x, d_w, NULL, N, C, OC), "matmul_forward (fp32 again)");
    float *again = dev_get(d_out, N * (size_t)OC, LT_DTYPE_F32);
    expect_same("matmul_forward, TF32 off again", LT_DTYPE_F32, again, f32, N * (size_t)OC);
    /* bf16 storage: TF32 has nothing to do */
    round_dt(x, N * (size_t)C, LT_DTYPE_BF16), round_dt(w, (size_t)C * OC, LT_DTYPE_BF16);
    void *b_x = dev_put(x, N * (size_t)C, LT_DTYPE_BF16), *b_w = dev_put(w, (size_t)C * OC, LT_DTYPE_BF16);
    void *b_out = dalloc(N * (size_t)OC * 2);
    ok(lt_cunn_matmul_forward(nn, LT_DTYPE_BF16, b_out, b_x, b_w, NULL, N, C, OC), "matmul_forward (bf16)");
    float *b16 = dev_get(b_out, N * (size_t)OC, LT_DTYPE_BF16);
    lt_cunn_gemm_tf32(nn, 1);
    ok(lt_cunn_matmul_forward(nn, LT_DTYPE_BF16, b_out, b_x, b_w, NULL, N, C, OC), "matmul_forward (bf16, tf32)");
    float *b16t = dev_get(b_out, N * (size_t)OC, LT_DTYPE_BF16);
    lt_cunn_gemm_tf32(nn, 0);
    expect_same("matmul_forward bf16, TF32 on vs off", LT_DTYPE_BF16, b16t, b16, N * (size_t)OC);
    free(x), free(w), free(exact), free(absum), free(f32), free(t32), free(again), free(b16), free(b16t);
    free_all();
}

/* ---- --bench: attention's speed at a training shape ----
 * GPT-2 124M's (B 4, T 1024, C 768, NH 12), then the 7B model's (B 1, T 1024, C 4096, NH 32, hs 128, whose
 * tensor-core kernels became the default after this measured them faster): ms per forward and per backward
 * (median of 5 timings of 4 calls,
 * after a warm-up), and TFLOP/s counting the causal pairs only (B NH T (T + 1) / 2), 4 hs flops a pair forward
 * (q.k, p v) and 10 backward (s again, dP, dq, dk, dv), for the tensor-core and CUDA-core kernels in bf16,
 * fp16 and fp32 (the tensor cores' fp32 is 3xTF32, up to hs 64). Also
 * checks the tensor-core results against the CUDA-core ones at this size (each is within TOL_BF16 / TOL_F16 /
 * TOL_F32 of the exact values on the small shapes; here their difference is held to twice that). One line per
 * kernel:
 *   attn-bench dtype=bf16 kernel=tensor B=4 T=1024 C=768 NH=12 fwd_ms=... bwd_ms=... fwd_tflops=... bwd_tflops=... */
static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void bench_attention(int B, int T, int C, int NH) {
    const size_t N = (size_t)B * T, NC = N * C, C3 = 3 * (size_t)C, NR = (size_t)B * NH * T;
    const double pairs = (double)B * NH * (double)T * (T + 1) / 2.0, hs = (double)C / NH;
    float *qkv = rand_arr(N * C3, 1.5f, 0.0f), *dout = rand_arr(NC, 1.0f, 0.0f);
    /* pairs of tensor-core and CUDA-core runs (compared below); the last pair with dropout 0.1 (the kernels
       compiled for it) */
    const struct {
        lt_dtype dt;
        int simt, drop;
    } runs[] = {{LT_DTYPE_BF16, 0, 0}, {LT_DTYPE_BF16, 1, 0}, {LT_DTYPE_F16, 0, 0}, {LT_DTYPE_F16, 1, 0},
                {LT_DTYPE_F32, 0, 0},  {LT_DTYPE_F32, 1, 0},  {LT_DTYPE_BF16, 0, 1}, {LT_DTYPE_BF16, 1, 1}};
    const lt_dropout drop = lt_dropout_make(0.1, 17, 1, 0);
    enum { NRUNS = sizeof runs / sizeof runs[0] };
    float *res[NRUNS][2] = {{NULL}};
    for (int r = 0; r < NRUNS; r++) {
        const lt_dtype dt = runs[r].dt;
        const int tc = attn_on_tc(dt, C / NH, runs[r].simt);
        if (!runs[r].simt && !tc) continue;
        lt_cunn_attention_simt(nn, runs[r].simt);
        float *x = fbuf(N * C3), *g = fbuf(NC);
        memcpy(x, qkv, N * C3 * sizeof *x), memcpy(g, dout, NC * sizeof *g);
        round_dt(x, N * C3, dt), round_dt(g, NC, dt);
        void *d_qkv = dev_put(x, N * C3, dt), *d_dout = dev_put(g, NC, dt);
        void *d_out = dalloc(NC * lt_dtype_size(dt)), *d_dqkv = dalloc(N * C3 * lt_dtype_size(dt));
        float *d_lse = dalloc(NR * sizeof(float)), *d_D = dalloc(NR * sizeof(float));
        double tf[5], tb[5];
        const lt_dropout *dr = runs[r].drop ? &drop : NULL;
        ok(lt_cunn_attention_forward(nn, dt, d_out, d_lse, d_qkv, B, T, C, NH, dr), "attention_forward");
        ok(lt_cunn_attention_backward(nn, dt, d_dqkv, d_D, d_dout, d_qkv, d_out, d_lse, B, T, C, NH, dr),
           "attention_backward");
        for (int k = 0; k < 5; k++) {
            double t0 = now_s();
            for (int i = 0; i < 4; i++) lt_cunn_attention_forward(nn, dt, d_out, d_lse, d_qkv, B, T, C, NH, dr);
            ok(0, "attention_forward (timed)");
            double t1 = now_s();
            for (int i = 0; i < 4; i++)
                lt_cunn_attention_backward(nn, dt, d_dqkv, d_D, d_dout, d_qkv, d_out, d_lse, B, T, C, NH, dr);
            ok(0, "attention_backward (timed)");
            tf[k] = (t1 - t0) / 4, tb[k] = (now_s() - t1) / 4;
        }
        qsort(tf, 5, sizeof tf[0], cmp_d), qsort(tb, 5, sizeof tb[0], cmp_d);
        printf("attn-bench dtype=%s kernel=%s%s B=%d T=%d C=%d NH=%d fwd_ms=%.3f bwd_ms=%.3f fwd_tflops=%.1f "
               "bwd_tflops=%.1f\n",
               dtn(dt), tc ? "tensor" : "cuda-cores", dr ? "+dropout0.1" : "", B, T, C, NH, tf[2] * 1e3, tb[2] * 1e3,
               4 * hs * pairs / tf[2] * 1e-12, 10 * hs * pairs / tb[2] * 1e-12);
        res[r][0] = dev_get(d_out, NC, dt), res[r][1] = dev_get(d_dqkv, N * C3, dt);
        free(x), free(g);
        free_all();
    }
    for (int r = 0; r + 1 < NRUNS; r += 2) {
        if (!res[r][0] || !res[r + 1][0]) continue;
        const lt_dtype dt = runs[r].dt;
        const double tol = 2 * (dt == LT_DTYPE_BF16 ? TOL_BF16 : dt == LT_DTYPE_F16 ? TOL_F16 : TOL_F32);
        expect(runs[r].drop ? "attention out: tensor vs CUDA cores, dropout" : "attention out: tensor vs CUDA cores",
               dt, res[r][0], res[r + 1][0], NC, tol);
        expect(runs[r].drop ? "attention dqkv: tensor vs CUDA cores, dropout" : "attention dqkv: tensor vs CUDA cores",
               dt, res[r][1], res[r + 1][1], N * C3, tol);
    }
    for (int r = 0; r < NRUNS; r++) free(res[r][0]), free(res[r][1]);
    free(qkv), free(dout);
    lt_cunn_attention_simt(nn, 0);
}

/* ---- --bench: the layernorm kernels at a training shape ----
 * The profile of 2026-11-28 (H200) had layernorm_backward at 110 us a call in bf16 against 18 us in fp32 on the
 * same GPT-2 124M shape (half the bytes), both then one value a lane at a time: this times both dtypes in both
 * forms (v8: 8 values a lane in 16-byte accesses, the default; v1: one at a time, LT_LAYERNORM_V8=0), forward and
 * backward (the row kernel and the column sums together, as the model calls them), median of 5 timings of 10
 * calls, and prints GB/s of the bytes each must move (forward: read x, write out; backward: read dout, x and dinp,
 * write dinp, then the column sums read dout and x again). One line per dtype and form:
 *   ln-bench dtype=bf16 form=v8 N=4096 C=768 fwd_us=... bwd_us=... fwd_gbs=... bwd_gbs=... */
static void bench_layernorm(size_t N, int C) {
    const lt_dtype dts[] = {LT_DTYPE_F32, LT_DTYPE_BF16};
    const size_t NC = N * (size_t)C;
    for (int k = 0; k < 4; k++) {
        const lt_dtype dt = dts[k / 2];
        const int v8 = k % 2 == 0, was = lt_cunn_layernorm_v8(nn, v8);
        const double es = (double)lt_dtype_size(dt);
        float *x = rand_arr(NC, 1.0f, 2.0f), *g = rand_arr(NC, 1.0f, 0.0f), *lw = rand_arr((size_t)C, 0.2f, 1.0f);
        round_dt(x, NC, dt), round_dt(g, NC, dt), round_dt(lw, (size_t)C, dt);
        void *d_x = dev_put(x, NC, dt), *d_g = dev_put(g, NC, dt), *d_w = dev_put(lw, (size_t)C, dt);
        void *d_b = dev_put(lw, (size_t)C, dt), *d_out = dalloc(NC * lt_dtype_size(dt)), *d_dinp = dev_put(g, NC, dt);
        float *d_mean = dalloc(N * sizeof(float)), *d_rstd = dalloc(N * sizeof(float));
        float *d_dw = dalloc((size_t)C * sizeof(float)), *d_db = dalloc((size_t)C * sizeof(float));
        float *scratch = dalloc(lt_cunn_colsum_scratch_floats(N, C) * sizeof(float));
        double tf[5], tb[5];
        ok(lt_cunn_layernorm_forward(nn, dt, d_out, d_mean, d_rstd, d_x, d_w, d_b, N, C, 1e-5), "layernorm_forward");
        ok(lt_cunn_layernorm_backward(nn, dt, d_dinp, d_dw, d_db, d_g, d_x, d_w, d_mean, d_rstd, N, C, scratch),
           "layernorm_backward");
        for (int r = 0; r < 5; r++) {
            double t0 = now_s();
            for (int i = 0; i < 10; i++)
                lt_cunn_layernorm_forward(nn, dt, d_out, d_mean, d_rstd, d_x, d_w, d_b, N, C, 1e-5);
            ok(0, "layernorm_forward (timed)");
            double t1 = now_s();
            for (int i = 0; i < 10; i++)
                lt_cunn_layernorm_backward(nn, dt, d_dinp, d_dw, d_db, d_g, d_x, d_w, d_mean, d_rstd, N, C, scratch);
            ok(0, "layernorm_backward (timed)");
            tf[r] = (t1 - t0) / 10, tb[r] = (now_s() - t1) / 10;
        }
        qsort(tf, 5, sizeof tf[0], cmp_d), qsort(tb, 5, sizeof tb[0], cmp_d);
        printf("ln-bench dtype=%s form=%s N=%zu C=%d fwd_us=%.1f bwd_us=%.1f fwd_gbs=%.0f bwd_gbs=%.0f\n", dtn(dt),
               v8 ? "v8" : "v1", N, C, tf[2] * 1e6, tb[2] * 1e6, 2.0 * (double)NC * es / tf[2] * 1e-9,
               6.0 * (double)NC * es / tb[2] * 1e-9);
        lt_cunn_layernorm_v8(nn, was);
        free(x), free(g), free(lw);
        free_all();
    }
}

/* the parts of the check (--only NAME runs one of them) */
static const char *const PARTS[] = {"convert", "tf32", "layers", "layernorm", "attention"};
static const char *only_part;
static int part_on(const char *name) { return !only_part || !strcmp(only_part, name); }

int main(int argc, char **argv) {
    int quick = 0, bench = 0, race = 0;
    uint64_t seed = 1234;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--race")) quick = race = 1;
        else if (!strcmp(argv[i], "--bench")) bench = 1;
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only_part = argv[++i];
        else {
            fprintf(stderr, "usage: gpu_gpt2_layers [--quick] [--race] [--seed S] [--bench] [--only PART]\n");
            return 2;
        }
    }
    if (only_part) {
        size_t k = 0;
        while (k < sizeof PARTS / sizeof PARTS[0] && strcmp(PARTS[k], only_part)) k++;
        if (k == sizeof PARTS / sizeof PARTS[0]) {
            fprintf(stderr, "gpu_gpt2_layers: --only %s: the parts are convert, tf32, layers, layernorm, attention\n",
                    only_part);
            return 2;
        }
    }
    char desc[256], err[512];
    lt_cuda_describe(desc, sizeof desc);
    printf("gpu_gpt2_layers: %s, seed %llu\n", desc, (unsigned long long)seed);
    nn = lt_cunn_create(NULL, err, sizeof err);
    if (!nn) {
        fprintf(stderr, "gpu_gpt2_layers: %s\n", err);
        return 1;
    }
    lt_cunn_attention_tc128(nn, 1); /* the tensor-core kernels at hs 128 too (the default; LT_ATTENTION_TC128=0) */
    lt_cunn_attention_tf32(nn, 1);  /* fp32 on the tensor cores up to hs 64 (the default; LT_ATTENTION_TF32=0) */
    /* a bad dtype is refused with a message */
    CHECK(lt_cunn_gelu_forward(nn, LT_DTYPE_U8, NULL, NULL, 1) == -1 && strstr(lt_cunn_error(nn), "U8"),
          "U8 storage was not refused: '%s'", lt_cunn_error(nn));
    rng = seed;
    if (bench) { /* attention's and layernorm's speed only; --quick: small shapes (for the CUDA emulation) */
        if (quick) {
            bench_attention(1, 70, 128, 2);
            bench_layernorm(70, 128);
        } else {
            bench_attention(4, 1024, 768, 12); /* GPT-2 124M's training shape */
            bench_attention(1, 1024, 4096, 32); /* the 7B model's (hs 128) */
            bench_layernorm(4096, 768);
        }
        lt_cunn_destroy(nn);
        return lt_test_done("gpu_gpt2_layers --bench");
    }
    if (part_on("convert")) run_convert();
    if (part_on("tf32")) check_tf32();
    int nshapes = !part_on("layers") ? 0 : quick ? 1 : (int)(sizeof SHAPES / sizeof SHAPES[0]);
    for (int i = 0; i < nshapes; i++) {
        run(&SHAPES[i], LT_DTYPE_F32);
        run(&SHAPES[i], LT_DTYPE_BF16);
        if (!race) run(&SHAPES[i], LT_DTYPE_F16);
    }
    /* layernorm at widths of its own: 65 groups of 8 values (lanes with 3 and lanes with 2), 25 (some lanes idle),
     * one; a multiple of 8 whose arrays are not 16-byte aligned (the one-value form), and one with the 8-value
     * form switched off (lt_cunn_layernorm_v8, LT_LAYERNORM_V8=0) */
    static const struct {
        size_t N;
        int C;
        size_t off;
        int v8;
    } LN_SHAPES[] = {{9, 520, 0, 1}, {6, 200, 0, 1}, {5, 8, 0, 1}, {7, 776, 1, 1}, {9, 520, 0, 0}};
    for (size_t i = 0; part_on("layernorm") && i < sizeof LN_SHAPES / sizeof LN_SHAPES[0]; i++) {
        const int was = lt_cunn_layernorm_v8(nn, LN_SHAPES[i].v8);
        if (!LN_SHAPES[i].v8) printf("(lt_cunn_layernorm_v8 off)\n");
        check_layernorm(LN_SHAPES[i].N, LN_SHAPES[i].C, LT_DTYPE_F32, LN_SHAPES[i].off);
        check_layernorm(LN_SHAPES[i].N, LN_SHAPES[i].C, LT_DTYPE_BF16, LN_SHAPES[i].off);
        if (!race) check_layernorm(LN_SHAPES[i].N, LN_SHAPES[i].C, LT_DTYPE_F16, LN_SHAPES[i].off);
        lt_cunn_layernorm_v8(nn, was);
        free_all();
    }
    for (size_t i = 0; part_on("attention") && i < sizeof ATTN_SHAPES / sizeof ATTN_SHAPES[0]; i++)
        for (int simt = 0; simt < 2; simt++)
            for (int drop = 0; drop < 2; drop++) { /* without and with dropout (0.3) */
                const int hs = ATTN_SHAPES[i].C / ATTN_SHAPES[i].NH;
                const double p = drop ? 0.3 : 0.0;
                if ((simt || attn_on_tc(LT_DTYPE_F32, hs, 0)) && !(race && drop))
                    run_attention(&ATTN_SHAPES[i], LT_DTYPE_F32, simt, p);
                run_attention(&ATTN_SHAPES[i], LT_DTYPE_BF16, simt, p);
                if (!race) run_attention(&ATTN_SHAPES[i], LT_DTYPE_F16, simt, p);
            }
    if (part_on("layers")) check_dropout();
    lt_cunn_attention_simt(nn, 0);
    /* a head above the kernels' 128 dims is refused with a message */
    CHECK(lt_cunn_attention_forward(nn, LT_DTYPE_F32, NULL, NULL, NULL, 1, 4, 160, 1, NULL) == -1 &&
              strstr(lt_cunn_error(nn), "head size 160"),
          "attention with hs 160 was not refused: '%s'", lt_cunn_error(nn));
    lt_cunn_destroy(nn);
    return lt_test_done("gpu_gpt2_layers");
}
