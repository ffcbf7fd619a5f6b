/* The GEMM yardstick of the GPU training benchmark (scripts/gpu-check's
 * `gemm` step): how fast cuBLAS multiplies at GPT-2 124M's training shapes,
 * measured through the very calls the trainer makes (lt_cunn_matmul_forward /
 * _backward and lt_cunn_lmhead_forward / _backward of
 * src/model/cuda/gpt2_layers_cuda.h, i.e. lt_cugemm_run: cublasGemmEx with
 * fp32 accumulation, bf16 operands on the tensor cores), so that the trainer's
 * achieved FLOP/s can be read as a fraction of what its own GEMMs reach.
 *
 * Shapes, N = B * T rows (default 4096 = 4 x 1024), C = 768:
 *   qkv      C x 3C   (12 per step)      proj  C x C   (12 per step)
 *   fc       C x 4C   (12 per step)      fcproj 4C x C (12 per step)
 *   lm head  V = 50257 columns in rows of ldv = 50304 (the trainer's padding), once per step
 * each timed forward (one GEMM, 2 N C OC flops; the linear layers without
 * bias, whose add is not a GEMM) and backward (dinp and the fp32 weight
 * gradient accumulated, 4 N C OC flops). Then:
 *   gemm-mix     one training step's GEMMs at these counts: their flops over
 *                the sum of their timed medians (attention's products are not
 *                cuBLAS calls in this trainer and are not in it);
 *   gemm-square  an S x S x S forward GEMM (default 8192): the card's
 *                large-GEMM rate through the same path.
 * Each figure is the median over `trials` runs of `reps` calls queued back to
 * back between two CUDA events, after two warm-up calls. Operands hold
 * uniform random values in [-1, 1) (bf16: rounded), as power draw, and so the
 * clock, depends on the data.
 *
 * Output: comment lines starting '#', one line per shape and dtype
 *   gemm dtype=bf16 shape=qkv m=4096 k=768 n=2304 ldc=2304 fwd_ms=... fwd_tflops=... bwd_ms=... bwd_tflops=...
 * and per dtype
 *   gemm-mix dtype=bf16 rows=4096 gflop=... ms=... tflops=...
 *   gemm-square dtype=bf16 size=8192 ms=... tflops=...
 * (TFLOP/s = 1e12 floating-point operations per second, a multiply-add
 * counted as 2). Timings in the emulation (`make cuda-emu`) are meaningless;
 * there it only checks the program runs (use --quick).
 *
 * Needs a GPU (or the emulation); built only with CUDA.
 * usage: gpu_gemm_peak [--rows N] [--square S] [--reps R] [--trials K] [--dtype bf16|f32|both] [--quick]
 *   --quick: N 32, S 128, 1 trial of 1 call (a smoke test) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/optim_kernels_cuda.h"
#include "leantrain/dtype.h"
#include "model/cuda/gpt2_device.h"
#include "model/cuda/gpt2_layers_cuda.h"

enum { C124 = 768, V124 = 50257, BLOCKS124 = 12 };

typedef struct {
    const char *name;
    int C, OC, count; /* in features, out features, GEMMs of this shape per training step */
    int lmhead;       /* the tied lm head: OC = V columns in rows of ldv */
} shape;

static const shape SHAPES[] = {
    {"qkv", C124, 3 * C124, BLOCKS124, 0},    {"proj", C124, C124, BLOCKS124, 0},
    {"fc", C124, 4 * C124, BLOCKS124, 0},     {"fcproj", 4 * C124, C124, BLOCKS124, 0},
    {"lmhead", C124, V124, 1, 1},
};
#define NSHAPES (int)(sizeof SHAPES / sizeof SHAPES[0])

static int reps = 10, trials = 5;
static lt_cunn *nn;
static lt_cuda_timer *timer;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static void die(const char *what, const char *msg) {
    fprintf(stderr, "gpu_gemm_peak: %s: %s\n", what, msg);
    exit(1);
}

/* a device buffer of n elements of dt, uniform in [-1, 1) (or zero) */
static void *dbuf(size_t n, lt_dtype dt, int zero) {
    size_t es = dt == LT_DTYPE_F32 ? 4 : 2, bytes = n * es;
    char err[512];
    void *d = NULL;
    unsigned char *h = malloc(bytes ? bytes : 1);
    if (!h) die("host buffer", "out of memory");
    for (size_t i = 0; i < n; i++) {
        float v = 0.0f;
        if (!zero) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            v = (float)(rng >> 40) / 8388608.0f - 1.0f;
        }
        if (dt == LT_DTYPE_F32) memcpy(h + 4 * i, &v, 4);
        else {
            uint16_t b = lt_f32_to_bf16(v);
            memcpy(h + 2 * i, &b, 2);
        }
    }
    if (lt_cuda_malloc_raw(&d, bytes, err, sizeof err) || lt_cuda_memcpy_raw(d, h, bytes, 0, err, sizeof err)) {
        char what[96];
        snprintf(what, sizeof what, "%zu bytes of device memory", bytes);
        die(what, err);
    }
    free(h);
    return d;
}

typedef struct {
    int lmhead, backward;
    lt_dtype dt;
    size_t N;
    int C, OC, ldv;
    void *inp, *w, *out, *dinp;
    float *dw, *fs; /* fs: the lm head's fp32 scratch for its split dinp product (N * C floats), as the model gives */
} call;

static void run(const call *c) {
    int rc;
    if (c->lmhead)
        rc = c->backward ? lt_cunn_lmhead_backward_r(nn, c->dt, c->dinp, c->dw, c->out, c->inp, c->w, c->N, c->C,
                                                     c->OC, c->ldv, NULL, 0, c->fs, c->N * (size_t)c->C)
                         : lt_cunn_lmhead_forward(nn, c->dt, c->out, c->inp, c->w, c->N, c->C, c->OC, c->ldv);
    else
        rc = c->backward ? lt_cunn_matmul_backward(nn, c->dt, c->dinp, c->dw, NULL, c->out, c->inp, c->w, c->N,
                                                   c->C, c->OC, NULL)
                         : lt_cunn_matmul_forward(nn, c->dt, c->out, c->inp, c->w, NULL, c->N, c->C, c->OC);
    if (rc) die(c->backward ? "backward GEMM" : "forward GEMM", lt_cunn_error(nn));
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* milliseconds per call: the median over the trials of `reps` calls between two events */
static double time_call(const call *c) {
    double ms[64];
    run(c), run(c); /* warm-up: cuBLAS's heuristics, first launches */
    if (lt_cunn_sync(nn)) die("warm-up", lt_cunn_error(nn));
    for (int t = 0; t < trials; t++) {
        if (lt_cuda_timer_start(timer)) die("timer", "cannot record the start event");
        for (int r = 0; r < reps; r++) run(c);
        if (lt_cuda_timer_stop(timer) || lt_cuda_timer_elapsed(timer, &ms[t]))
            die("timer", "cannot record or read the stop event");
        ms[t] /= reps;
    }
    if (lt_cunn_sync(nn)) die("GEMM", lt_cunn_error(nn));
    qsort(ms, (size_t)trials, sizeof ms[0], cmp_double);
    return ms[trials / 2];
}

static void bench_dtype(lt_dtype dt, size_t N, int S) {
    const char *dn = dt == LT_DTYPE_F32 ? "f32" : "bf16";
    double mix_flop = 0, mix_ms = 0;
    for (int i = 0; i < NSHAPES; i++) {
        const shape *s = &SHAPES[i];
        int ldv = s->lmhead ? (s->OC + LT_GPT2_DEV_LOGITS_PAD - 1) / LT_GPT2_DEV_LOGITS_PAD * LT_GPT2_DEV_LOGITS_PAD
                            : s->OC;
        call c = {.lmhead = s->lmhead, .dt = dt, .N = N, .C = s->C, .OC = s->OC, .ldv = ldv};
        c.inp = dbuf(N * (size_t)s->C, dt, 0);
        c.w = dbuf((size_t)s->C * (size_t)s->OC, dt, 0);
        c.out = dbuf(N * (size_t)ldv, dt, 0); /* forward's output, backward's incoming gradient */
        c.dinp = dbuf(N * (size_t)s->C, dt, 1);
        c.dw = dbuf((size_t)s->C * (size_t)s->OC, LT_DTYPE_F32, 1);
        c.fs = s->lmhead ? dbuf(N * (size_t)s->C, LT_DTYPE_F32, 1) : NULL;
        double fwd = time_call(&c);
        c.backward = 1;
        double bwd = time_call(&c);
        double f = 2.0 * (double)N * s->C * s->OC;
        printf("gemm dtype=%s shape=%s m=%zu k=%d n=%d ldc=%d fwd_ms=%.4f fwd_tflops=%.1f bwd_ms=%.4f "
               "bwd_tflops=%.1f\n",
               dn, s->name, N, s->C, s->OC, ldv, fwd, f / fwd / 1e9, bwd, 2.0 * f / bwd / 1e9);
        fflush(stdout);
        mix_flop += s->count * 3.0 * f;
        mix_ms += s->count * (fwd + bwd);
        lt_cuda_free_raw(c.inp), lt_cuda_free_raw(c.w), lt_cuda_free_raw(c.out), lt_cuda_free_raw(c.dinp);
        lt_cuda_free_raw(c.dw);
        if (c.fs) lt_cuda_free_raw(c.fs);
    }
    printf("gemm-mix dtype=%s rows=%zu gflop=%.1f ms=%.3f tflops=%.1f\n", dn, N, mix_flop / 1e9, mix_ms,
           mix_flop / mix_ms / 1e9);
    call q = {.dt = dt, .N = (size_t)S, .C = S, .OC = S};
    q.inp = dbuf((size_t)S * S, dt, 0);
    q.w = dbuf((size_t)S * S, dt, 0);
    q.out = dbuf((size_t)S * S, dt, 1);
    double ms = time_call(&q);
    printf("gemm-square dtype=%s size=%d ms=%.4f tflops=%.1f\n", dn, S, ms, 2.0 * S * (double)S * S / ms / 1e9);
    fflush(stdout);
    lt_cuda_free_raw(q.inp), lt_cuda_free_raw(q.w), lt_cuda_free_raw(q.out);
}

int main(int argc, char **argv) {
    long rows = 4096, square = 8192;
    const char *dtypes = "both";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick")) rows = 32, square = 128, reps = 1, trials = 1;
        else if (!strcmp(a, "--rows") && v) rows = strtol(v, NULL, 10), i++;
        else if (!strcmp(a, "--square") && v) square = strtol(v, NULL, 10), i++;
        else if (!strcmp(a, "--reps") && v) reps = (int)strtol(v, NULL, 10), i++;
        else if (!strcmp(a, "--trials") && v) trials = (int)strtol(v, NULL, 10), i++;
        else if (!strcmp(a, "--dtype") && v) dtypes = v, i++;
        else {
            fprintf(stderr, "usage: gpu_gemm_peak [--rows N] [--square S] [--reps R] [--trials K] "
                            "[--dtype bf16|f32|both] [--quick]\n");
            return 2;
        }
    }
    if (rows < 1 || rows > 1 << 20 || square < 1 || square > 32768 || reps < 1 || reps > 10000 || trials < 1 ||
        trials > 64 || (strcmp(dtypes, "bf16") && strcmp(dtypes, "f32") && strcmp(dtypes, "both"))) {
        fprintf(stderr, "gpu_gemm_peak: --rows 1..1048576, --square 1..32768, --reps 1..10000, --trials 1..64, "
                        "--dtype bf16, f32 or both\n");
        return 2;
    }
    if (lt_cuda_device_count() < 1) {
        fprintf(stderr, "gpu_gemm_peak: no CUDA device\n");
        return 2;
    }
    char desc[256], err[512];
    lt_cuda_describe(desc, sizeof desc);
    if (!(nn = lt_cunn_create(NULL, err, sizeof err))) die("GEMM context", err);
    if (!(timer = lt_cuda_timer_create(NULL, err, sizeof err))) die("timer", err);
    printf("# gpu_gemm_peak: %s\n", desc);
    printf("# cuBLAS through the trainer's calls (lt_cunn_matmul_* / lt_cunn_lmhead_*), fp32 accumulation; "
           "median of %d trials of %d calls; TFLOP/s counts a multiply-add as 2\n",
           trials, reps);
    if (strcmp(dtypes, "f32")) bench_dtype(LT_DTYPE_BF16, (size_t)rows, (int)square);
    if (strcmp(dtypes, "bf16")) bench_dtype(LT_DTYPE_F32, (size_t)rows, (int)square);
    lt_cuda_timer_destroy(timer);
    lt_cunn_destroy(nn);
    return 0;
}
