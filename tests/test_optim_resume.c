/* For every optimizer: k steps, save, load into a fresh optimizer over a copy
 * of the parameters, continue; the result must equal an uninterrupted run bit
 * for bit (parameters, states and step counts), for f32 and bf16 parameters.
 * Also: the allocated state bytes equal what the state tensors add up to. */
#include <math.h>
#include <stdint.h>

#include "leantrain/optim.h"
#include "optim_cases.h"
#include "testutil.h"

enum { NP = 4, STEPS = 7, SPLIT = 3 };
/* 64x96 is quantized by every low-bit name; 5x40x41 by bitsandbytes (partial last block) but not torchao */
static const int64_t SHAPES[NP][3] = {{64, 96, 0}, {80, 0, 0}, {5, 40, 41}, {1, 0, 0}};
static const int NDIM[NP] = {2, 1, 3, 1};

static size_t numel(int i) {
    size_t n = 1;
    for (int d = 0; d < NDIM[i]; d++) n *= (size_t)SHAPES[i][d];
    return n;
}

typedef struct {
    void *p[NP];
    float *g[NP];
    lt_optim *o;
} run_t;

static float grad_at(int i, size_t j, int step) {
    uint32_t h = (uint32_t)(i * 7919 + (int)j * 104729 + step * 1299709);
    h ^= h >> 13, h *= 0x5bd1e995u, h ^= h >> 15;
    float u = (float)(h & 0xffffff) / 16777216.0f - 0.5f;
    if (j % 17 == 0) u = 0.0f;             /* exact zeros */
    if (step == 4 && j % 101 == 0) u *= 50.0f; /* an outlier step */
    return 0.01f * u;
}

static int setup(run_t *r, const optim_case *c, lt_dtype dt, char *err, size_t errlen) {
    lt_hparams hp = lt_hparams_default();
    hp.lr = c->lr < 0 ? NAN : c->lr;
    hp.weight_decay = 0.01;
    r->o = lt_optim_create(c->name, c->args, &hp, err, errlen);
    if (!r->o) return 0;
    int g1 = lt_optim_add_group(r->o, "weight_decay=0.0");
    for (int i = 0; i < NP; i++) {
        size_t n = numel(i), es = dt == LT_DTYPE_F32 ? 4 : 2;
        r->p[i] = malloc(n * es);
        r->g[i] = malloc(n * sizeof(float));
        for (size_t j = 0; j < n; j++) {
            float v = 0.1f * sinf((float)(j * 13 + (size_t)i * 5));
            if (dt == LT_DTYPE_F32) ((float *)r->p[i])[j] = v;
            else ((uint16_t *)r->p[i])[j] = lt_f32_to_bf16(v);
        }
        char name[16];
        snprintf(name, sizeof name, "p%d", i);
        lt_param_desc d = {.name = name, .data = r->p[i], .grad = r->g[i], .dtype = dt, .ndim = NDIM[i],
                           .group = i == 1 ? g1 : 0};
        for (int k = 0; k < NDIM[i]; k++) d.shape[k] = SHAPES[i][k];
        if (lt_optim_add_param(r->o, &d) != i) {
            snprintf(err, errlen, "%s", lt_optim_error(r->o));
            return 0;
        }
    }
    return 1;
}

static void run_steps(run_t *r, int from, int to) {
    for (int s = from; s <= to; s++) {
        for (int i = 0; i < NP; i++)
            for (size_t j = 0; j < numel(i); j++) r->g[i][j] = grad_at(i, j, s);
        lt_optim_set_lr(r->o, -1, lt_optim_get_lr(r->o, 0)); /* a scheduler's call; lr unchanged */
        lt_status st = lt_optim_step(r->o, s == 2 ? 0.5f : 1.0f);
        CHECK(st == LT_OK, "step %d: %s", s, lt_optim_error(r->o));
    }
}

static void teardown(run_t *r) {
    for (int i = 0; i < NP; i++) free(r->p[i]), free(r->g[i]);
    lt_optim_free(r->o);
}

int main(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/resume_state.safetensors", lt_test_tmp_dir());
    for (int ci = 0; ci < N_OPTIM_CASES; ci++) {
        const optim_case *c = &OPTIM_CASES[ci];
        for (int dti = 0; dti < 2; dti++) {
            lt_dtype dt = dti ? LT_DTYPE_BF16 : LT_DTYPE_F32;
            char err[1024];
            run_t a, b;
            if (!setup(&a, c, dt, err, sizeof err) || !setup(&b, c, dt, err, sizeof err)) {
                CHECK(0, "%s %s: setup: %s", c->name, c->args, err);
                continue;
            }
            run_steps(&a, 1, STEPS);

            run_steps(&b, 1, SPLIT);
            CHECK(lt_optim_save(b.o, path) == LT_OK, "%s: save: %s", c->name, lt_optim_error(b.o));
            /* a fresh optimizer over the saved parameters */
            run_t b2;
            setup(&b2, c, dt, err, sizeof err);
            for (int i = 0; i < NP; i++) memcpy(b2.p[i], b.p[i], numel(i) * (dt == LT_DTYPE_F32 ? 4 : 2));
            CHECK(lt_optim_load(b2.o, path) == LT_OK, "%s: load: %s", c->name, lt_optim_error(b2.o));
            run_steps(&b2, SPLIT + 1, STEPS);

            size_t expect_bytes = 0;
            for (int i = 0; i < NP; i++) {
                CHECK(memcmp(a.p[i], b2.p[i], numel(i) * (dt == LT_DTYPE_F32 ? 4 : 2)) == 0,
                      "%s [%s] %s: param p%d differs after resume", c->name, c->args, lt_dtype_name(dt), i);
                CHECK(lt_optim_param_step(a.o, i) == STEPS && lt_optim_param_step(b2.o, i) == STEPS,
                      "%s: step counts %lld/%lld", c->name, (long long)lt_optim_param_step(a.o, i),
                      (long long)lt_optim_param_step(b2.o, i));
                const char *names[16];
                int ns = lt_optim_state_names(a.o, i, names, 16);
                for (int k = 0; k < ns; k++) {
                    size_t n = lt_optim_state_numel(a.o, i, names[k]);
                    float *x = malloc(n * 4 + 4), *y = malloc(n * 4 + 4);
                    lt_optim_read_state(a.o, i, names[k], x, n);
                    lt_optim_read_state(b2.o, i, names[k], y, n);
                    CHECK(memcmp(x, y, n * 4) == 0, "%s: state p%d.%s differs after resume", c->name, i, names[k]);
                    free(x), free(y);
                }
                /* bytes per state element from the documented dtypes: 4 (f32) or 2 (bf16) */
                for (int k = 0; k < ns; k++) {
                    size_t n = lt_optim_state_numel(a.o, i, names[k]);
                    int bf16 = (!strcmp(names[k], "compensation")) ||
                               (strstr(c->args, "momentum_dtype=bfloat16") && !strcmp(names[k], "exp_avg")) ||
                               (strstr(c->args, "variance_dtype=bfloat16") && !strcmp(names[k], "exp_avg_sq"));
                    expect_bytes += n * (bf16 ? 2 : 4);
                }
            }
            int lowbit = strstr(c->name, "8bit") || strstr(c->name, "4bit"); /* test_lowbit checks their formula */
            CHECK(lowbit || lt_optim_state_bytes(a.o) == expect_bytes, "%s: state bytes %zu, expected %zu", c->name,
                  lt_optim_state_bytes(a.o), expect_bytes);
            teardown(&a), teardown(&b), teardown(&b2);
        }
    }
    return lt_test_done("test_optim_resume");
}
