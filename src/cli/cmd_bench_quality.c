/* `leantrain bench quality`: what the memory-light optimizers cost in training
 * quality. One small problem (a 3-layer tanh MLP classifying the outputs of a
 * fixed random teacher network), the same data order and initial weights for
 * every optimizer; prints the final training loss, the held-out loss and
 * accuracy, and the optimizer state bytes side by side. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "leantrain/optim.h"

enum { IN = 32, H = 256, OUT = 10, NTRAIN = 8192, NTEST = 2048, BATCH = 128 };

typedef struct {
    float *w1, *b1, *w2, *b2, *w3, *b3; /* [H,IN] [H] [H,H] [H] [OUT,H] [OUT] */
} mlp_t;

static const size_t SIZES[6] = {(size_t)H * IN, H, (size_t)H * H, H, (size_t)OUT * H, OUT};

static uint64_t rng_state;
static float urand(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) / 16777216.0);
}

static int mlp_alloc(mlp_t *m) {
    float **f = &m->w1;
    for (int k = 0; k < 6; k++)
        if (!(f[k] = calloc(SIZES[k], sizeof(float)))) return 0;
    return 1;
}
static void mlp_free(mlp_t *m) {
    float **f = &m->w1;
    for (int k = 0; k < 6; k++) free(f[k]);
}
static void mlp_init(mlp_t *m, float scale) {
    float **f = &m->w1;
    for (int k = 0; k < 6; k += 2) {
        float fan_in = (float)(k == 0 ? IN : H);
        for (size_t i = 0; i < SIZES[k]; i++) f[k][i] = (urand() * 2 - 1) * scale * sqrtf(3.0f / fan_in);
    }
}

/* Forward for n rows of x; returns the mean cross-entropy against labels y and, if
 * g is given, accumulates its gradient there. acc counts correct argmaxes. */
static double mlp_run(const mlp_t *m, const float *x, const int *y, int n, mlp_t *g, int *acc) {
    double loss = 0;
    int correct = 0;
    if (g) {
        float **gf = &g->w1;
        for (int k = 0; k < 6; k++) memset(gf[k], 0, SIZES[k] * sizeof(float));
    }
#pragma omp parallel reduction(+ : loss, correct)
    {
        float h1[H], h2[H], o[OUT], d2[H], d1[H], dout[OUT];
        mlp_t gl = {0};
        int ok = g ? mlp_alloc(&gl) : 1;
#pragma omp for schedule(static)
        for (int r = 0; r < n; r++) {
            if (!ok) continue;
            const float *xr = x + (size_t)r * IN;
            for (int j = 0; j < H; j++) {
                float a = m->b1[j];
                for (int i = 0; i < IN; i++) a += m->w1[j * IN + i] * xr[i];
                h1[j] = tanhf(a);
            }
            for (int j = 0; j < H; j++) {
                float a = m->b2[j];
                for (int i = 0; i < H; i++) a += m->w2[j * H + i] * h1[i];
                h2[j] = tanhf(a);
            }
            float mx = -1e30f;
            for (int k = 0; k < OUT; k++) {
                float a = m->b3[k];
                for (int i = 0; i < H; i++) a += m->w3[k * H + i] * h2[i];
                o[k] = a;
                if (a > mx) mx = a;
            }
            double se = 0;
            int best = 0;
            for (int k = 0; k < OUT; k++) {
                se += exp((double)(o[k] - mx));
                if (o[k] > o[best]) best = k;
            }
            loss += log(se) + mx - o[y[r]];
            correct += best == y[r];
            if (!g) continue;
            for (int k = 0; k < OUT; k++) dout[k] = (float)(exp((double)(o[k] - mx)) / se) - (k == y[r]);
            for (int i = 0; i < H; i++) {
                float a = 0;
                for (int k = 0; k < OUT; k++) a += m->w3[k * H + i] * dout[k];
                d2[i] = a * (1 - h2[i] * h2[i]);
            }
            for (int k = 0; k < OUT; k++) {
                gl.b3[k] += dout[k];
                for (int i = 0; i < H; i++) gl.w3[k * H + i] += dout[k] * h2[i];
            }
            for (int i = 0; i < H; i++) {
                float a = 0;
                for (int j = 0; j < H; j++) a += m->w2[j * H + i] * d2[j];
                d1[i] = a * (1 - h1[i] * h1[i]);
            }
            for (int j = 0; j < H; j++) {
                gl.b2[j] += d2[j];
                for (int i = 0; i < H; i++) gl.w2[j * H + i] += d2[j] * h1[i];
                gl.b1[j] += d1[j];
                for (int i = 0; i < IN; i++) gl.w1[j * IN + i] += d1[j] * xr[i];
            }
        }
        if (g && ok) {
#pragma omp critical
            {
                float **gf = &g->w1, **lf = &gl.w1;
                for (int k = 0; k < 6; k++)
                    for (size_t i = 0; i < SIZES[k]; i++) gf[k][i] += lf[k][i] / (float)n;
            }
        }
        if (g) mlp_free(&gl);
    }
    if (acc) *acc = correct;
    return loss / n;
}

int lt_cmd_bench_quality(int argc, char **argv) {
    int steps = 300;
    double lr = 1e-3;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--learning_rate") && i + 1 < argc) lr = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: leantrain bench quality [--steps N (300)] [--learning_rate LR (1e-3)]\n");
            return 2;
        }
    }
    if (steps < 1 || !(lr > 0)) {
        fprintf(stderr, "leantrain bench quality: --steps must be >= 1 and --learning_rate > 0\n");
        return 2;
    }
    mlp_t teacher, init, m, g;
    float *x = malloc((size_t)(NTRAIN + NTEST) * IN * sizeof(float));
    int *y = malloc((size_t)(NTRAIN + NTEST) * sizeof(int));
    if (!x || !y || !mlp_alloc(&teacher) || !mlp_alloc(&init) || !mlp_alloc(&m) || !mlp_alloc(&g)) {
        fprintf(stderr, "leantrain bench quality: out of memory\n");
        return 1;
    }
    rng_state = 2024;
    mlp_init(&teacher, 3.0f);
    for (size_t i = 0; i < (size_t)(NTRAIN + NTEST) * IN; i++) x[i] = urand() * 2 - 1;
    for (int r = 0; r < NTRAIN + NTEST; r++) { /* labels: the teacher's argmax */
        float h1[H], h2[H];
        const float *xr = x + (size_t)r * IN;
        for (int j = 0; j < H; j++) {
            float a = 0;
            for (int i = 0; i < IN; i++) a += teacher.w1[j * IN + i] * xr[i];
            h1[j] = tanhf(a);
        }
        for (int j = 0; j < H; j++) {
            float a = 0;
            for (int i = 0; i < H; i++) a += teacher.w2[j * H + i] * h1[i];
            h2[j] = tanhf(a);
        }
        int best = 0;
        float bv = -1e30f;
        for (int k = 0; k < OUT; k++) {
            float a = 0;
            for (int i = 0; i < H; i++) a += teacher.w3[k * H + i] * h2[i];
            if (a > bv) bv = a, best = k;
        }
        y[r] = best;
    }
    mlp_init(&init, 1.0f);
    const char *names[] = {"adamw_torch", "adafactor", "adamw_bnb_8bit", "adamw_8bit", "paged_adamw_8bit",
                           "adamw_torch_8bit", "adamw_torch_4bit", "lion_32bit", "lion_8bit", "paged_lion_8bit"};
    printf("# leantrain bench quality: MLP %d-%d-%d-%d (%zu params), %d train / %d held-out rows, batch %d, %d steps, "
           "lr %g (Lion: lr/10), weight decay 0.01\n",
           IN, H, H, OUT, SIZES[0] + SIZES[1] + SIZES[2] + SIZES[3] + SIZES[4] + SIZES[5], NTRAIN, NTEST, BATCH, steps,
           lr);
    printf("%-18s %12s %12s %10s %12s %16s\n", "optim", "train_loss", "test_loss", "test_acc", "state_bytes",
           "state_bytes/param");
    int rc = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        float **mf = &m.w1, **inf = &init.w1, **gf = &g.w1;
        for (int t = 0; t < 6; t++) memcpy(mf[t], inf[t], SIZES[t] * sizeof(float));
        lt_hparams hp = lt_hparams_default();
        hp.lr = strstr(names[k], "lion") ? lr / 10 : lr;
        hp.weight_decay = 0.01;
        char err[512];
        lt_optim *o = lt_optim_create(names[k], "", &hp, err, sizeof err);
        if (!o) {
            fprintf(stderr, "leantrain bench quality: %s\n", err);
            rc = 1;
            continue;
        }
        static const char *pn[6] = {"w1", "b1", "w2", "b2", "w3", "b3"};
        for (int t = 0; t < 6; t++) {
            lt_param_desc d = {.name = pn[t], .data = mf[t], .grad = gf[t], .ndim = t % 2 ? 1 : 2};
            d.shape[0] = t % 2 ? (int64_t)SIZES[t] : (t == 4 ? OUT : H);
            d.shape[1] = t == 0 ? IN : H;
            lt_optim_add_param(o, &d);
        }
        double train = 0;
        for (int s = 0; s < steps; s++) {
            int start = (s * BATCH) % NTRAIN;
            train = mlp_run(&m, x + (size_t)start * IN, y + start, BATCH, &g, NULL);
            lt_optim_step(o, 1.0f);
        }
        int acc = 0;
        double full = mlp_run(&m, x, y, NTRAIN, NULL, NULL);
        double test = mlp_run(&m, x + (size_t)NTRAIN * IN, y + NTRAIN, NTEST, NULL, &acc);
        (void)train;
        size_t sb = lt_optim_state_bytes(o);
        printf("%-18s %12.6f %12.6f %10.4f %12zu %16.3f\n", names[k], full, test, (double)acc / NTEST, sb,
               (double)sb / (double)(SIZES[0] + SIZES[1] + SIZES[2] + SIZES[3] + SIZES[4] + SIZES[5]));
        fflush(stdout);
        lt_optim_free(o);
    }
    mlp_free(&teacher), mlp_free(&init), mlp_free(&m), mlp_free(&g);
    free(x), free(y);
    return rc;
}
