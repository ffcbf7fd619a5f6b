/* Mixed precision in the GPT-2 model (lt_gpt2_set_precision):
 *  - the 16-bit matrix-multiply backward against a float64 recomputation from the rounded operands;
 *  - bf16 loss and gradients within bf16 tolerances of fp32;
 *  - gradient checkpointing in bf16 gives the bf16 gradients bit for bit;
 *  - pure bf16 parameters compute exactly what mixed precision computes from the same (bf16-valued) weights,
 *    and survive a save/load round trip bit for bit;
 *  - fp16 loss scaling keeps small gradients that plain fp16 flushes (the reason for loss scaling);
 *  - the 16-bit activations of GPT-2 small take well under the fp32 ones. */
#include <math.h>

#include "leantrain/dtype.h"
#include "model/gemm_bf16.h"
#include "model/gpt2.h"
#include "model/gpt2_layers.h"
#include "testutil.h"

enum { B = 4, T = 24 };

static uint64_t next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
/* uniform in [-1, 1) */
static double uni(uint64_t *s) { return (double)(next(s) >> 11) * 0x1p-52 - 1.0; }

static float bf(float x) { return lt_bf16_to_f32(lt_f32_to_bf16(x)); }

/* relative L2 distance |a - b| / |b| over n floats, in double */
static double rel_l2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

/* forward + backward of one batch; returns the loss, gradients left in m */
static float grads(lt_gpt2 *m, const int32_t *in, const int32_t *tg) {
    char err[512];
    lt_gpt2_zero_grad(m);
    CHECK(lt_gpt2_forward(m, in, tg, B, T, err, sizeof err) == LT_OK, "%s", err);
    CHECK(lt_gpt2_backward(m, err, sizeof err) == LT_OK, "%s", err);
    return m->loss;
}

static void test_matmul_backward(const char *path) {
    printf("matmul backward in bf16: %s\n", path);
    /* dinp = round(dout @ w^T), dw += round(inp^T @ dout), dbias += round(colsum(dout)) with bf16 operands: every
     * product of two bf16 values is exact in double, so the float64 sums are the exact results; fp32 accumulation
     * over K terms may differ by K * 2^-24 of the sum of magnitudes, which can move a result across a bf16
     * rounding boundary: allow one bf16 ulp of the exact value plus that accumulation bound. */
    enum { N = 37, C = 29, OC = 53 };
    float dout[N * OC], inp[N * C], w[C * OC], dinp[N * C], dw[C * OC], db[OC], scratch[C * OC];
    uint64_t s = 11;
    for (int i = 0; i < N * OC; i++) dout[i] = bf((float)(uni(&s) * 0.01));
    for (int i = 0; i < N * C; i++) inp[i] = bf((float)uni(&s));
    for (int i = 0; i < C * OC; i++) w[i] = bf((float)(uni(&s) * 0.02)), dw[i] = 0.5f;
    for (int i = 0; i < OC; i++) db[i] = 0.25f;
    lt_nn_matmul_backward_r(dinp, dw, db, dout, inp, (lt_nn_weight){.f = w}, N, C, OC, LT_NN_ROUND_BF16,
                            scratch);
    int bad = 0;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            double e = 0, mag = 0;
            for (int o = 0; o < OC; o++) e += (double)dout[n * OC + o] * w[c * OC + o], mag += fabs((double)dout[n * OC + o] * w[c * OC + o]);
            double got = dinp[n * C + c], tol = fabs(e) * 0x1p-8 + OC * 0x1p-24 * mag;
            if (got != bf((float)got) || fabs(got - e) > tol) bad++;
        }
    CHECK(bad == 0, "bf16 dinp (%s): %d of %d elements off the float64 result or not bf16", path, bad, N * C);
    bad = 0;
    for (int c = 0; c < C; c++)
        for (int o = 0; o < OC; o++) {
            double e = 0, mag = 0;
            for (int n = 0; n < N; n++) e += (double)inp[n * C + c] * dout[n * OC + o], mag += fabs((double)inp[n * C + c] * dout[n * OC + o]);
            double contrib = dw[c * OC + o] - 0.5; /* exact: 0.5 + a bf16 value well below 0.5 in magnitude */
            double tol = fabs(e) * 0x1p-8 + N * 0x1p-24 * mag + 0x1p-24;
            if (fabs(contrib - e) > tol) bad++;
        }
    CHECK(bad == 0, "bf16 dw (%s): %d of %d elements off the float64 result", path, bad, C * OC);
    bad = 0;
    for (int o = 0; o < OC; o++) {
        double e = 0;
        for (int n = 0; n < N; n++) e += dout[n * OC + o];
        if (fabs((db[o] - 0.25) - e) > fabs(e) * 0x1p-8 + 0x1p-24) bad++;
    }
    CHECK(bad == 0, "bf16 dbias (%s): %d of %d elements off the float64 result", path, bad, OC);

    /* the weight as bf16 in place (pure bf16's matrices): the same products on the same values, so the same bits,
     * forward and backward; where the bf16 path is off the product declines it and the values are expanded into
     * buf for sgemm (buf then holds w exactly) */
    static float dinp2[N * C], dw2[C * OC], db2[OC], buf[C * OC], out[N * OC], out2[N * OC];
    uint16_t w16[C * OC];
    for (int i = 0; i < C * OC; i++) w16[i] = lt_f32_to_bf16(w[i]), dw2[i] = 0.5f, buf[i] = -1.0f;
    for (int i = 0; i < OC; i++) db2[i] = 0.25f;
    const lt_nn_weight in_place = {.b16 = w16, .buf = buf};
    lt_nn_matmul_backward_r(dinp2, dw2, db2, dout, inp, in_place, N, C, OC, LT_NN_ROUND_BF16, scratch);
    CHECK(!memcmp(dinp, dinp2, sizeof dinp) && !memcmp(dw, dw2, sizeof dw) && !memcmp(db, db2, sizeof db),
          "bf16 matmul backward (%s): the weight as bf16 in place gave other bits than as floats", path);
    lt_nn_matmul_forward_r(out, inp, (lt_nn_weight){.f = w}, db, N, C, OC, LT_NN_ROUND_BF16);
    lt_nn_matmul_forward_r(out2, inp, in_place, db, N, C, OC, LT_NN_ROUND_BF16);
    CHECK(!memcmp(out, out2, sizeof out),
          "bf16 matmul forward (%s): the weight as bf16 in place gave other bits than as floats", path);
    const int expanded = !memcmp(buf, w, sizeof buf);
    CHECK(expanded == !lt_gemm_bf16_enabled(), "bf16 matmul (%s): the in-place weight was %s", path,
          expanded ? "expanded though the bf16 path is on" : "not expanded for sgemm with the bf16 path off");
}

/* lt_gemm_bf16 (the CPU's bf16 instructions through oneDNN) against float64 sums of the same bf16 products: every
 * product of two bf16 values is exact, so the exact result is the float64 sum (to 2^-53); fp32 accumulation of K
 * terms in any order is within K x 2^-24 of the sum of their magnitudes, plus one rounding of the result (and of
 * the addition to C for beta 1). Shapes with odd sizes and both transposes, beta 0 and 1, C with a row stride
 * wider than N; the same call twice gives the same bits. Where the path is off it must decline and leave C as it
 * was. */
/* elements of C (M x N, row stride ldc) off the float64 sums of op(A) op(B) (+ C0 when acc) by more than fp32
 * accumulation's bound, or changed past column N */
static int gemm_off_f64(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *Bm, int ldb, int acc,
                        const float *C0, const float *Cm, int ldc) {
    int bad = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++) {
            if (j >= N) { /* past the row's N columns: untouched */
                bad += Cm[i * ldc + j] != C0[i * ldc + j];
                continue;
            }
            double e = acc ? C0[i * ldc + j] : 0.0, mag = 0;
            for (int q = 0; q < K; q++) {
                const double p =
                    (double)(ta ? A[q * lda + i] : A[i * lda + q]) * (tb ? Bm[j * ldb + q] : Bm[q * ldb + j]);
                e += p, mag += fabs(p);
            }
            const double tol = K * 0x1p-24 * mag + 2 * 0x1p-24 * (fabs(e) + (acc ? fabs(C0[i * ldc + j]) : 0));
            bad += !(fabs(Cm[i * ldc + j] - e) <= tol);
        }
    return bad;
}

static void test_gemm_bf16(void) {
    const int on = lt_gemm_bf16_enabled();
    printf("bf16 products: %s\n", lt_gemm_bf16_describe());
    static const int shapes[][3] = {{37, 53, 29}, {1, 1, 1}, {64, 96, 1152}, {130, 3, 770}, {5, 300, 17}};
    uint64_t s = 21;
    int checked = 0;
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++)
        for (int t = 0; t < 8; t++) {
            const int M = shapes[k][0], N = shapes[k][1], K = shapes[k][2], ta = t & 1, tb = (t >> 1) & 1,
                      acc = (t >> 2) & 1;
            const int lda = (ta ? M : K) + (int)(k % 3), ldb = (tb ? K : N) + 1, ldc = N + 2;
            float *A = malloc(sizeof(float) * (size_t)(ta ? K : M) * lda),
                  *Bm = malloc(sizeof(float) * (size_t)(tb ? N : K) * ldb),
                  *Cm = malloc(sizeof(float) * (size_t)M * ldc),
                  *C0 = malloc(sizeof(float) * (size_t)M * ldc), *C2 = malloc(sizeof(float) * (size_t)M * ldc);
            for (int i = 0; i < (ta ? K : M) * lda; i++) A[i] = bf((float)uni(&s));
            for (int i = 0; i < (tb ? N : K) * ldb; i++) Bm[i] = bf((float)(uni(&s) * 0.5));
            for (int i = 0; i < M * ldc; i++) C0[i] = (float)uni(&s);
            memcpy(Cm, C0, sizeof(float) * (size_t)M * ldc);
            memcpy(C2, C0, sizeof(float) * (size_t)M * ldc);
            const int rc = lt_gemm_bf16(ta, tb, M, N, K, A, lda, Bm, ldb, acc ? 1.0f : 0.0f, Cm, ldc);
            if (!on) {
                uint16_t b16[1] = {0};
                CHECK(lt_gemm_bf16_b16(ta, tb, 1, 1, 1, A, lda, b16, ldb, 0.0f, C2, ldc) == -1 &&
                          !memcmp(C2, C0, sizeof(float) * (size_t)M * ldc),
                      "lt_gemm_bf16_b16 with the path off was taken");
                CHECK(rc == -1 && !memcmp(Cm, C0, sizeof(float) * (size_t)M * ldc),
                      "lt_gemm_bf16 with the path off: rc %d, C %s", rc,
                      memcmp(Cm, C0, sizeof(float) * (size_t)M * ldc) ? "changed" : "kept");
            } else {
                CHECK(rc == 0, "lt_gemm_bf16 %dx%dx%d ta %d tb %d beta %d declined", M, N, K, ta, tb, acc);
                int bad = gemm_off_f64(ta, tb, M, N, K, A, lda, Bm, ldb, acc, C0, Cm, ldc);
                CHECK(bad == 0, "lt_gemm_bf16 %dx%dx%d ta %d tb %d beta %d: %d elements off the float64 sums", M, N,
                      K, ta, tb, acc, bad);
                /* B given as bf16 itself (lt_gemm_bf16_b16, used in place with its row stride) */
                const size_t nb = (size_t)(tb ? N : K) * ldb;
                uint16_t *B16 = malloc(nb * sizeof *B16);
                for (size_t i = 0; i < nb; i++) B16[i] = lt_f32_to_bf16(Bm[i]);
                memcpy(C2, C0, sizeof(float) * (size_t)M * ldc);
                CHECK(lt_gemm_bf16_b16(ta, tb, M, N, K, A, lda, B16, ldb, acc ? 1.0f : 0.0f, C2, ldc) == 0,
                      "lt_gemm_bf16_b16 %dx%dx%d ta %d tb %d declined", M, N, K, ta, tb);
                bad = gemm_off_f64(ta, tb, M, N, K, A, lda, Bm, ldb, acc, C0, C2, ldc);
                CHECK(bad == 0, "lt_gemm_bf16_b16 %dx%dx%d ta %d tb %d beta %d: %d elements off the float64 sums", M,
                      N, K, ta, tb, acc, bad);
                free(B16);
                memcpy(C2, C0, sizeof(float) * (size_t)M * ldc);
                CHECK(lt_gemm_bf16(ta, tb, M, N, K, A, lda, Bm, ldb, acc ? 1.0f : 0.0f, C2, ldc) == 0 &&
                          !memcmp(C2, Cm, sizeof(float) * (size_t)M * ldc),
                      "lt_gemm_bf16 %dx%dx%d ta %d tb %d: a second call gave other bits", M, N, K, ta, tb);
                checked++;
            }
            free(A), free(Bm), free(Cm), free(C0), free(C2);
        }
    /* what it declines, with C untouched: beta other than 0 and 1, a row stride below the row */
    float a[4] = {1, 2, 3, 4}, b[4] = {1, 1, 1, 1}, c[4] = {7, 7, 7, 7};
    CHECK(lt_gemm_bf16(0, 0, 2, 2, 2, a, 2, b, 2, 0.5f, c, 2) == -1 && c[0] == 7, "beta 0.5 was taken");
    CHECK(lt_gemm_bf16(0, 0, 2, 2, 2, a, 1, b, 2, 0.0f, c, 2) == -1 && c[0] == 7, "lda 1 < K 2 was taken");
    if (on) {
        size_t pack, scratch;
        lt_gemm_bf16_need(0, 0, 64, 96, 1152, 96, 0.0f, 0, &pack, &scratch);
        CHECK(pack == (64 * 1152 + 1152 * 96) * 2, "lt_gemm_bf16_need: pack %zu bytes", pack);
        CHECK(lt_gemm_bf16_held_bytes() >= pack, "held %zu bytes, below one product's pack %zu",
              lt_gemm_bf16_held_bytes(), pack);
        printf("lt_gemm_bf16 and lt_gemm_bf16_b16: %d products each within the fp32 accumulation bound of float64\n",
               checked);
    }
    lt_gemm_bf16_release();
    CHECK(lt_gemm_bf16_held_bytes() == 0, "lt_gemm_bf16_release left %zu bytes", lt_gemm_bf16_held_bytes());
}

/* lt_nn_round_inplace against the scalar conversions of dtype.h, element by element, over edge values and a
 * sweep of magnitudes (the f16 path may use the F16C instructions) */
static void test_rounding(void) {
    enum { N = 4099 };
    static float x[N], y[N];
    const float edge[] = {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, -65520.0f, 1e30f, 6.1035156e-05f, 6.0e-8f,
                          2.9e-8f, 3.0e-8f, 1e-10f, 1.0f + 0x1p-11f, 1.0f + 0x1p-11f + 0x1p-23f, INFINITY, -INFINITY,
                          NAN, 0x1.fffffep127f, 1.00390625f, 1.005859375f};
    uint64_t s = 5;
    for (int i = 0; i < N; i++)
        x[i] = i < (int)(sizeof edge / sizeof *edge) ? edge[i] : (float)(uni(&s) * pow(2.0, (double)(i % 64) - 40));
    for (int r = LT_NN_ROUND_BF16; r <= LT_NN_ROUND_F16; r++) {
        memcpy(y, x, sizeof x);
        lt_nn_round_inplace(y, N, (lt_nn_round)r);
        int bad = 0;
        for (int i = 0; i < N; i++) {
            float want = r == LT_NN_ROUND_BF16 ? lt_bf16_to_f32(lt_f32_to_bf16(x[i])) : lt_f16_to_f32(lt_f32_to_f16(x[i]));
            bad += isnan(want) ? !isnan(y[i]) : memcmp(&want, &y[i], 4) != 0;
        }
        CHECK(bad == 0, "%s rounding: %d of %d values differ from the scalar conversion", r == 1 ? "bf16" : "f16", bad, N);
    }
}

/* The fused 16-bit passes (lt_nn_round_copy, _round_add, _layernorm_forward_r, _gelu_forward_r, _gelu_backward_r)
 * against the unfused kernels they replace, bit for bit, over a length that spans several of their chunks */
static void test_fused_rounding(void) {
    enum { N = 3 * 16384 + 1001, C = 77 };
    float *x = malloc(N * 4), *b = malloc(N * 4), *g = malloc(N * 4), *u1 = malloc(N * 4), *u2 = malloc(N * 4),
          *f1 = malloc(N * 4), *f2 = malloc(N * 4), *w = malloc(C * 4), *bb = malloc(C * 4), *m1 = malloc(N / C * 4),
          *m2 = malloc(N / C * 4), *s1 = malloc(N / C * 4), *s2 = malloc(N / C * 4);
    if (!x || !b || !g || !u1 || !u2 || !f1 || !f2 || !w || !bb || !m1 || !m2 || !s1 || !s2) {
        CHECK(0, "out of memory");
        return;
    }
    uint64_t s = 11;
    for (int i = 0; i < N; i++) x[i] = (float)(6.0 * uni(&s)), b[i] = (float)uni(&s), g[i] = (float)uni(&s);
    for (int c = 0; c < C; c++) w[c] = (float)(1.0 + 0.5 * uni(&s)), bb[c] = (float)(0.1 * uni(&s));
    const size_t n = N, rows = N / C;
    for (int r = LT_NN_ROUND_NONE; r <= LT_NN_ROUND_F16; r++) {
        const lt_nn_round rr = (lt_nn_round)r;
        const char *name = r == 0 ? "fp32" : r == 1 ? "bf16" : "f16";
        lt_nn_round_copy(f1, x, n, rr);
        memcpy(u1, x, n * 4), lt_nn_round_inplace(u1, n, rr);
        CHECK(!memcmp(f1, u1, n * 4), "%s round_copy differs from a copy and round_inplace", name);
        memcpy(f1, x, n * 4), lt_nn_round_add(f1, b, n, rr);
        memcpy(u1, x, n * 4), lt_nn_round_inplace(u1, n, rr), lt_nn_residual_forward(u1, u1, b, n);
        CHECK(!memcmp(f1, u1, n * 4), "%s round_add differs from round_inplace and residual_forward", name);
        lt_nn_layernorm_forward_r(f1, m1, s1, x, w, bb, rows, C, 1e-5, rr);
        lt_nn_layernorm_forward(u1, m2, s2, x, w, bb, rows, C, 1e-5), lt_nn_round_inplace(u1, rows * C, rr);
        CHECK(!memcmp(f1, u1, rows * C * 4) && !memcmp(m1, m2, rows * 4) && !memcmp(s1, s2, rows * 4),
              "%s layernorm_forward_r differs from layernorm_forward and round_inplace", name);
        memcpy(f2, x, n * 4), lt_nn_gelu_forward_r(f1, f2, n, rr);
        memcpy(u2, x, n * 4), lt_nn_round_inplace(u2, n, rr), lt_nn_gelu_forward(u1, u2, n),
            lt_nn_round_inplace(u1, n, rr);
        CHECK(!memcmp(f1, u1, n * 4) && !memcmp(f2, u2, n * 4), "%s gelu_forward_r differs from the unfused passes",
              name);
        memcpy(f1, g, n * 4), lt_nn_gelu_backward_r(f1, x, n, rr);
        memcpy(u1, g, n * 4), lt_nn_gelu_backward(u1, x, n), lt_nn_round_inplace(u1, n, rr);
        CHECK(!memcmp(f1, u1, n * 4), "%s gelu_backward_r differs from gelu_backward and round_inplace", name);
        if (rr == LT_NN_ROUND_NONE) continue;
        /* the 16-bit store's packing: the scalar conversions' values, element by element (the input spans
         * NaN, infinities, f16's overflow and subnormals of both formats), and unpacked exactly */
        uint16_t *h = malloc(N * sizeof *h);
        if (!h) {
            CHECK(0, "out of memory");
            break;
        }
        static const float special[] = {NAN, -NAN, INFINITY, -INFINITY, 70000.0f, -65520.0f, 1e-6f, -3e-8f,
                                        1e-40f, -2e-39f, 0.0f, -0.0f};
        memcpy(f2, x, n * 4);
        for (size_t i = 0; i < sizeof special / sizeof *special; i++) f2[i * 4099] = special[i];
        lt_nn_pack16(h, f2, n, rr);
        int pack_ok = 1, unpack_ok = 1;
        for (size_t i = 0; i < n; i++)
            pack_ok &= h[i] == (rr == LT_NN_ROUND_F16 ? lt_f32_to_f16(f2[i]) : lt_f32_to_bf16(f2[i]));
        lt_nn_unpack16(f1, h, n, rr);
        for (size_t i = 0; i < n; i++) {
            float e = rr == LT_NN_ROUND_F16 ? lt_f16_to_f32(h[i]) : lt_bf16_to_f32(h[i]);
            unpack_ok &= !memcmp(&f1[i], &e, 4);
        }
        CHECK(pack_ok, "%s pack16 differs from the scalar conversion", name);
        CHECK(unpack_ok, "%s unpack16 differs from the scalar conversion", name);
        free(h);
    }
    free(x), free(b), free(g), free(u1), free(u2), free(f1), free(f2), free(w), free(bb), free(m1), free(m2), free(s1),
        free(s2);
}

int main(void) {
    char err[1024];
    test_rounding();
    test_fused_rounding();
    test_gemm_bf16();
    /* the 16-bit products on both paths: the CPU's bf16 instructions (where lt_gemm_bf16 runs) and sgemm */
    const int dnnl_on = lt_gemm_bf16_enabled();
    if (dnnl_on) test_matmul_backward("oneDNN");
    lt_gemm_bf16_set_enabled(0);
    test_matmul_backward("sgemm");
    lt_gemm_bf16_set_enabled(dnnl_on);

    lt_gpt2_config cfg = {256, 32, 48, 2, 4, 1e-5, 0, 0, 0};
    lt_gpt2 *m = NULL;
    CHECK(lt_gpt2_create(&cfg, &m, err, sizeof err) == LT_OK, "%s", err);
    if (!m) return lt_test_done("test_precision");
    lt_gpt2_init_random(m, 5);
    size_t nf = m->memory_floats;
    int32_t in[B * T], tg[B * T];
    uint64_t st = 9;
    for (int i = 0; i < B * T; i++) in[i] = (int32_t)(next(&st) % 256), tg[i] = (int32_t)(next(&st) % 256);
    float *g32 = malloc(nf * sizeof *g32), *g16 = malloc(nf * sizeof *g16);

    /* fp32 reference */
    CHECK(lt_gpt2_set_batch(m, B, T, err, sizeof err) == LT_OK, "%s", err);
    float l32 = grads(m, in, tg);
    memcpy(g32, m->grad_memory, nf * sizeof *g32);

    /* bf16: the loss within bf16's relative precision (2^-8) times a few for the depth; gradients within a few
     * percent in relative L2 (each multiply's operands and result carry 2^-9 relative rounding) */
    CHECK(lt_gpt2_set_precision(m, LT_GPT2_BF16, 0, err, sizeof err) == LT_OK, "%s", err);
    CHECK(lt_gpt2_set_batch(m, B, T, err, sizeof err) == LT_OK, "%s", err);
    float lb = grads(m, in, tg);
    memcpy(g16, m->grad_memory, nf * sizeof *g16);
    double eg = rel_l2(g16, g32, nf);
    printf("bf16: loss %.6f vs fp32 %.6f; gradients rel. L2 %.4f\n", lb, l32, eg);
    CHECK(fabs(lb - l32) <= 4 * 0x1p-8 * l32, "bf16 loss %.6f too far from fp32 %.6f", lb, l32);
    CHECK(eg < 0.03, "bf16 gradients %.4f from fp32 in relative L2 (bound 0.03)", eg);
    CHECK(eg > 0, "bf16 gradients equal fp32's: the rounding did not happen");

    /* the same step with the products as sgemms of the same bf16 values: the same exact products summed in another
     * order, so each fp32 result may differ in its last bits and a bf16 rounding of it by one bf16 step; the loss and
     * gradients agree far inside the bf16-against-fp32 bounds above */
    if (lt_gemm_bf16_enabled()) {
        CHECK(lt_gemm_bf16_held_bytes() > 0, "the bf16 step ran no product through lt_gemm_bf16");
        float *gs = malloc(nf * sizeof *gs);
        lt_gemm_bf16_set_enabled(0);
        float ls = grads(m, in, tg);
        memcpy(gs, m->grad_memory, nf * sizeof *gs);
        lt_gemm_bf16_set_enabled(1);
        double es = rel_l2(g16, gs, nf);
        printf("bf16 on oneDNN against sgemm: loss %.6f vs %.6f; gradients rel. L2 %.2e\n", lb, ls, es);
        CHECK(fabs(lb - ls) <= 0x1p-8 * ls, "bf16 loss with oneDNN %.6f vs sgemm %.6f", lb, ls);
        CHECK(es < 0.01, "bf16 gradients with oneDNN %.5f from sgemm's in relative L2 (bound 0.01)", es);
        free(gs);
    }

    /* checkpointing in bf16: bit-identical */
    lt_gpt2_set_checkpointing(m, 1);
    CHECK(lt_gpt2_set_batch(m, B, T, err, sizeof err) == LT_OK, "%s", err);
    float lc = grads(m, in, tg);
    CHECK(lc == lb, "bf16 checkpointed loss %.9g vs %.9g", lc, lb);
    CHECK(memcmp(m->grad_memory, g16, nf * sizeof *g16) == 0, "bf16 checkpointed gradients differ");
    lt_gpt2_set_checkpointing(m, 0);

    /* pure bf16 = mixed bf16 on weights that are already bf16 values (bit for bit) */
    for (size_t i = 0; i < nf; i++) m->param_memory[i] = bf(m->param_memory[i]);
    CHECK(lt_gpt2_set_batch(m, B, T, err, sizeof err) == LT_OK, "%s", err);
    float lm = grads(m, in, tg);
    memcpy(g16, m->grad_memory, nf * sizeof *g16);
    CHECK(lt_gpt2_set_precision(m, LT_GPT2_BF16, 1, err, sizeof err) == LT_OK, "%s", err);
    CHECK(m->param_memory == NULL && m->params[0].data == NULL && m->params[0].data16, "pure bf16 kept f32 weights");
    CHECK(lt_gpt2_set_batch(m, B, T, err, sizeof err) == LT_OK, "%s", err);
    /* where the bf16 path is on, pure bf16's block matrices go to their products as bf16 in place: their room in
     * wscratch (poisoned here) is not written; with the path off they are expanded into it for sgemm */
    for (size_t i = 0; i < m->scratch_floats; i++) m->wscratch[i] = NAN;
    float lp = grads(m, in, tg);
    size_t untouched = 0, mats = (size_t)12 * cfg.n_embd * cfg.n_embd; /* qkv 3C^2, proj C^2, fc and its proj 4C^2 */
    for (size_t i = 0; i < m->scratch_floats; i++) untouched += isnan(m->wscratch[i]);
    CHECK(lt_gemm_bf16_enabled() ? untouched >= mats : untouched < mats,
          "pure bf16: %zu wscratch floats untouched by a step (the block's matrices: %zu), bf16 path %s", untouched,
          mats, lt_gemm_bf16_enabled() ? "on: the matrices were expanded" : "off: they were not expanded");
    CHECK(lp == lm, "pure bf16 loss %.9g vs mixed %.9g", lp, lm);
    CHECK(memcmp(m->grad_memory, g16, nf * sizeof *g16) == 0, "pure bf16 gradients differ from mixed bf16");
    lt_gpt2_memory pm, mm;
    CHECK(lt_gpt2_memory_plan(&cfg, B, T, 0, 0, LT_GPT2_BF16, 1, 0, &pm, err, sizeof err) == LT_OK, "%s", err);
    CHECK(lt_gpt2_memory_plan(&cfg, B, T, 0, 0, LT_GPT2_BF16, 0, 0, &mm, err, sizeof err) == LT_OK, "%s", err);
    CHECK(2 * pm.weight_bytes == mm.weight_bytes && pm.weight_bytes == nf * 2, "pure bf16 weights %zu bytes, mixed %zu",
          pm.weight_bytes, mm.weight_bytes);

    /* pure bf16 save / load: BF16 tensors, bit for bit */
    char path[600];
    snprintf(path, sizeof path, "%s/precision-pure.safetensors", lt_test_tmp_dir());
    CHECK(lt_gpt2_save(m, path, err, sizeof err) == LT_OK, "%s", err);
    lt_gpt2 *m2 = NULL;
    CHECK(lt_gpt2_create(&cfg, &m2, err, sizeof err) == LT_OK, "%s", err);
    CHECK(lt_gpt2_set_precision(m2, LT_GPT2_BF16, 1, err, sizeof err) == LT_OK, "%s", err);
    CHECK(lt_gpt2_load(m2, path, err, sizeof err) == LT_OK, "%s", err);
    CHECK(memcmp(m2->param16_memory, m->param16_memory, nf * sizeof(uint16_t)) == 0, "pure bf16 weights changed in a save/load");
    lt_gpt2_free(m2);
    m2 = NULL;
    CHECK(lt_gpt2_create(&cfg, &m2, err, sizeof err) == LT_OK, "%s", err); /* and into an fp32 model, exactly */
    CHECK(lt_gpt2_load(m2, path, err, sizeof err) == LT_OK, "%s", err);
    int same = 1;
    for (size_t i = 0; i < nf; i++) same &= m2->param_memory[i] == lt_bf16_to_f32(m->param16_memory[i]);
    CHECK(same, "pure bf16 file loaded into an fp32 model differs");
    lt_gpt2_free(m2);

    /* fp16 with and without a loss scale: d loss / d logit is about 1 / (V N) = 1.2e-7 here (a vocabulary of
     * 16384, N = 512 positions), far below fp16's normal range (6.1e-5): unscaled it lands among fp16's subnormals
     * (spacing 6e-8) or flushes to zero, and gradients that depend on it lose precision or vanish; scaled by
     * 65536 they keep fp16's full 11 bits */
    enum { B2 = 16, T2 = 32 };
    lt_gpt2_config cfg2 = {16384, 32, 48, 2, 4, 1e-5, 0, 0, 0};
    lt_gpt2 *h = NULL;
    CHECK(lt_gpt2_create(&cfg2, &h, err, sizeof err) == LT_OK, "%s", err);
    if (!h) return lt_test_done("test_precision");
    lt_gpt2_init_random(h, 6);
    size_t nh = h->memory_floats;
    float *hg[3];
    int32_t *in2 = malloc(B2 * T2 * sizeof *in2), *tg2 = malloc(B2 * T2 * sizeof *tg2);
    for (int i = 0; i < B2 * T2; i++) in2[i] = (int32_t)(next(&st) % 16384), tg2[i] = (int32_t)(next(&st) % 16384);
    for (int k = 0; k < 3; k++) { /* fp32, fp16 unscaled, fp16 scaled by 65536 (unscaled after: exact) */
        hg[k] = malloc(nh * sizeof *hg[k]);
        if (k == 1) CHECK(lt_gpt2_set_precision(h, LT_GPT2_F16, 0, err, sizeof err) == LT_OK, "%s", err);
        CHECK(lt_gpt2_set_batch(h, B2, T2, err, sizeof err) == LT_OK, "%s", err);
        h->loss_scale = k == 2 ? 65536.0f : 1.0f;
        lt_gpt2_zero_grad(h);
        CHECK(lt_gpt2_forward(h, in2, tg2, B2, T2, err, sizeof err) == LT_OK, "%s", err);
        CHECK(lt_gpt2_backward(h, err, sizeof err) == LT_OK, "%s", err);
        for (size_t i = 0; i < nh; i++) hg[k][i] = h->grad_memory[i] / h->loss_scale;
    }
    double e1 = rel_l2(hg[1], hg[0], nh), e2 = rel_l2(hg[2], hg[0], nh);
    long z1 = 0, z2 = 0; /* gradient elements fp32 has and fp16 flushed to zero */
    for (size_t i = 0; i < nh; i++) z1 += hg[0][i] != 0 && hg[1][i] == 0, z2 += hg[0][i] != 0 && hg[2][i] == 0;
    printf("fp16: gradients rel. L2 from fp32 %.5f without loss scaling (%ld flushed to 0), %.5f with scale 65536 "
           "(%ld flushed)\n", e1, z1, e2, z2);
    CHECK(e2 < 0.01, "fp16 with loss scale: gradients %.4f from fp32 (bound 0.01: fp16 has 3 more bits than bf16)", e2);
    CHECK(e2 < e1 / 3, "loss scaling did not help fp16 gradients: %.5f scaled vs %.5f unscaled", e2, e1);
    /* scaled, (almost) nothing flushes: an element whose fp32 value lies at the rounding noise of its sum (one of
     * -2.8e-9 against a largest gradient of 0.067 here, with OpenBLAS's Cooperlake kernels) can still cancel to an
     * exact 0 in fp16, depending on the kernel's order of summation */
    CHECK(z1 > 100 && z2 * 100 <= z1, "flushed gradients: %ld unscaled, %ld scaled", z1, z2);
    for (int k = 0; k < 3; k++) free(hg[k]);
    free(in2), free(tg2);
    lt_gpt2_free(h);

    /* the activation memory of GPT-2 small (B 4, T 1024): 16-bit compute stores the blocks' internals in 16 bits
     * and keeps one block's in fp32 for the kernels; the residual stream, logits and statistics stay fp32 */
    lt_gpt2_config small;
    CHECK(lt_gpt2_config_preset("gpt2", &small, err, sizeof err) == LT_OK, "%s", err);
    lt_gpt2_memory a32, a16;
    CHECK(lt_gpt2_memory_plan(&small, 4, 1024, 0, 0, LT_GPT2_F32, 0, 0, &a32, err, sizeof err) == LT_OK, "%s", err);
    CHECK(lt_gpt2_memory_plan(&small, 4, 1024, 0, 0, LT_GPT2_BF16, 0, 0, &a16, err, sizeof err) == LT_OK, "%s", err);
    printf("gpt2 B4 T1024 activations: fp32 %.0f MiB, bf16 %.0f MiB\n", a32.activation_bytes / 1048576.0,
           a16.activation_bytes / 1048576.0);
    /* storing the 14 C floats per token of each block's internals in 16 bits saves 2 bytes each, less the one
     * block kept in fp32 (4 bytes each): (L - 2) x 14 C x BT x 2 bytes; the 16-bit path's own extra buffers
     * (one [BT, C] rounding copy) may take a little of it back, no more */
    const double want = (double)(small.n_layer - 2) * 14.0 * small.n_embd * 4096.0 * 2.0,
                 got = (double)a32.activation_bytes - (double)a16.activation_bytes;
    CHECK(got >= 0.95 * want && got <= want, "bf16 activations save %.0f bytes against fp32's, want %.0f (95-100%%)",
          got, want);

    CHECK(lt_gpt2_set_precision(m, LT_GPT2_F16, 1, err, sizeof err) == LT_ERR_ARG, "pure fp16 was accepted");
    free(g32), free(g16);
    lt_gpt2_free(m);
    return lt_test_done("test_precision");
}
