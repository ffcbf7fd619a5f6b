/* `leantrain bench train`: end-to-end training speed of GPT-2 on the CPU
 * (forward, backward, AdamW step) in tokens/s and achieved FLOP/s, against
 * the sgemm FLOP/s of the same BLAS measured in the same run. FLOPs per token:
 * 6 x parameters (matrix multiplies, forward 2 + backward 4, the tied lm head
 * included) + 12 x layers x T x C (attention scores and weighted sums, forward
 * and backward), the usual accounting. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "cli/commands.h"
#include "leantrain/optim.h"
#include "model/gemm_bf16.h"
#include "model/gpt2.h"
#include "model/gpt2_layers.h"
#include "train/data.h"


/* best-of-3 sgemm rate at n x n x n, in FLOP/s */
static double sgemm_rate(int n) {
    float *a = malloc((size_t)n * n * 4), *b = malloc((size_t)n * n * 4), *c = malloc((size_t)n * n * 4);
    if (!a || !b || !c) return NAN;
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
    double best = 1e30;
    for (int r = 0; r < 6; r++) {
        double t0 = lt_now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = lt_now_s() - t0;
        if (r > 0 && dt < best) best = dt;
    }
    free(a), free(b), free(c);
    return 2.0 * n * (double)n * n / best;
}

static int bench_one(const char *label, lt_gpt2_config cfg, int B, int T, int steps, lt_gpt2_precision prec) {
    char err[1024];
    lt_gpt2 *m = NULL;
    if (lt_gpt2_create(&cfg, &m, err, sizeof err) || lt_gpt2_set_precision(m, prec, 0, err, sizeof err) ||
        (lt_gpt2_set_head_rows(m, lt_gpt2_head_rows_default(&cfg)), 0) || /* the lm head as the trainer runs it */
        lt_gpt2_set_batch(m, B, T, err, sizeof err)) {
        fprintf(stderr, "leantrain bench train: %s\n", err);
        lt_gpt2_free(m);
        return 1;
    }
    lt_gpt2_init_random(m, 1);
    lt_hparams hp = lt_hparams_default();
    hp.lr = 1e-4;
    lt_optim *o = lt_optim_create("adamw_torch_fused", "", &hp, err, sizeof err);
    for (int i = 0; o && i < m->num_tensors; i++) {
        lt_gpt2_param *p = &m->params[i];
        lt_param_desc d = {.name = p->name, .data = p->data, .grad = p->grad, .ndim = p->ndim};
        d.shape[0] = p->shape[0], d.shape[1] = p->shape[1];
        lt_optim_add_param(o, &d);
    }
    int32_t *in = malloc((size_t)B * T * sizeof *in), *tg = malloc((size_t)B * T * sizeof *tg);
    uint64_t st = 3;
    for (int i = 0; in && tg && i < B * T; i++)
        in[i] = (int32_t)(lt_splitmix64(&st) % (uint64_t)cfg.vocab_size), tg[i] = (int32_t)(lt_splitmix64(&st) % (uint64_t)cfg.vocab_size);
    double best = 1e30, g_before = sgemm_rate(1024);
    int rc = 0;
    for (int s = 0; s <= steps && o && in && tg; s++) {
        double t0 = lt_now_s();
        lt_gpt2_zero_grad(m);
        if (lt_gpt2_forward(m, in, tg, B, T, err, sizeof err) || lt_gpt2_backward(m, err, sizeof err)) {
            fprintf(stderr, "leantrain bench train: %s\n", err);
            rc = 1;
            break;
        }
        lt_optim_step(o, 1.0f);
        double dt = lt_now_s() - t0;
        if (s > 0 && dt < best) best = dt; /* step 0 warms up caches and pages */
    }
    if (!rc && o && in && tg) {
        double flops_tok = 6.0 * (double)m->num_params + 12.0 * cfg.n_layer * (double)T * cfg.n_embd;
        double tps = (double)B * T / best, fl = tps * flops_tok;
        double g = sgemm_rate(1024);
        if (g_before > g) g = g_before; /* a shared machine's rate drifts: the better of before and after */
        printf("%-10s %9.1fM %3d %5d %10.0f %12.2f %14.2f %10.3f\n", label, (double)m->num_params / 1e6, B, T, tps,
               fl / 1e9, g / 1e9, fl / g);
    }
    lt_optim_free(o);
    lt_gpt2_free(m);
    free(in), free(tg);
    return rc;
}

int lt_cmd_bench_train(int argc, char **argv) {
    int steps = 3, with_gpt2 = 1;
    lt_gpt2_precision prec = LT_GPT2_F32;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--small_only")) with_gpt2 = 0;
        else if (!strcmp(argv[i], "--bf16")) prec = LT_GPT2_BF16;
        else if (!strcmp(argv[i], "--fp16")) prec = LT_GPT2_F16;
        else {
            fprintf(stderr, "usage: leantrain bench train [--steps N (3)] [--small_only] [--bf16 | --fp16]\n");
            return 2;
        }
    }
    if (steps < 1) steps = 1;
    printf("# leantrain bench train: best of %d steps (forward + backward + AdamW), %d threads, %s compute; sgemm "
           "(OpenBLAS %s) at 1024^3, the best of before and after each row\n",
           steps, omp_get_max_threads(), prec == LT_GPT2_BF16 ? "bf16" : prec == LT_GPT2_F16 ? "fp16" : "fp32",
           lt_nn_blas_core());
    if (prec == LT_GPT2_BF16) printf("# bf16 products: %s\n", lt_gemm_bf16_describe());
    printf("%-10s %10s %3s %5s %10s %12s %14s %10s\n", "model", "params", "B", "T", "tokens_s", "gflop_per_s",
           "sgemm_gflop_s", "ratio");
    lt_gpt2_config small = {50257, 1024, 256, 4, 4, 1e-5, 0, 0, 0}; /* ~ 16M parameters, 13M of them the embedding */
    lt_gpt2_config tiny = {256, 256, 384, 6, 6, 1e-5, 0, 0, 0};   /* ~ 10.7M parameters, byte vocabulary */
    int rc = bench_one("byte-10M", tiny, 4, 256, steps, prec);
    rc |= bench_one("bpe-16M", small, 2, 256, steps, prec);
    if (with_gpt2) {
        lt_gpt2_config g;
        char err[256];
        lt_gpt2_config_preset("gpt2", &g, err, sizeof err);
        rc |= bench_one("gpt2", g, 1, 256, steps, prec);
    }
    return rc;
}
