/* For every optimizer: k steps, save, load into a fresh optimizer over a copy
 * of the parameters, continue; the result must equal an uninterrupted run bit
 * for bit (parameters, states and step counts), for f32 and bf16 parameters.
 * Also: the allocated state bytes equal what the state tensors add up to. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>

#include "leantrain/optim.h"
#include "leantrain/safetensors.h"
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

/* State files written by an earlier build still load: fuzz/corpus-optim holds one per optimizer kind (written by
 * fuzz_optim_state, committed in e2563a1; after their first byte, the state after one step over parameters h.0.w
 * [16, 256] and h.0.b [37]). Each loads into the optimizer its metadata names (optim, optim_args) and saves back
 * the same tensors, bytes and step counts. A change of the format that breaks old checkpoints fails here. */
static void old_state_files(const char *tmp_path) {
    const char *dir = getenv("LT_FUZZ_OPTIM_CORPUS") ? getenv("LT_FUZZ_OPTIM_CORPUS") : "fuzz/corpus-optim";
    DIR *d = opendir(dir);
    CHECK(d != NULL, "opendir %s", dir);
    if (!d) return;
    int n = 0;
    static float w[16 * 256], g[16 * 256], bias[37], gb[37];
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[1024], err[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len = 0;
        char *raw = lt_test_read_file(path, &len);
        CHECK(raw != NULL && len > 1, "read %s", path);
        if (!raw || len < 2) {
            free(raw);
            continue;
        }
        /* the state file: all but the fuzzer's first byte, which chooses the kind */
        const unsigned char *b = (const unsigned char *)raw + 1;
        const size_t got = len - 1;
        lt_st_file *want = NULL, *back = NULL;
        CHECK(lt_st_parse(b, got, path, &want, err, sizeof err) == LT_OK, "%s: %s", path, err);
        if (!want) {
            free(raw);
            continue;
        }
        const char *name = lt_st_meta(want, "optim"), *args = lt_st_meta(want, "optim_args");
        lt_optim *o = name ? lt_optim_create(name, args ? args : "", NULL, err, sizeof err) : NULL;
        CHECK(o != NULL, "%s: optimizer %s [%s]: %s", path, name ? name : "(none)", args ? args : "", err);
        lt_param_desc dw = {.name = "h.0.w", .data = w, .grad = g, .ndim = 2, .shape = {16, 256}};
        lt_param_desc db = {.name = "h.0.b", .data = bias, .grad = gb, .ndim = 1, .shape = {37}};
        if (o) CHECK(lt_optim_add_param(o, &dw) == 0 && lt_optim_add_param(o, &db) == 1, "%s: %s", path, lt_optim_error(o));
        /* the file without its first byte, as the optimizer reads it */
        FILE *f = fopen(tmp_path, "wb");
        CHECK(f && fwrite(b, 1, got, f) == got && fclose(f) == 0, "write %s", tmp_path);
        if (o && lt_optim_param_count(o) == 2) {
            CHECK(lt_optim_load(o, tmp_path) == LT_OK, "%s: no longer loads: %s", path, lt_optim_error(o));
            CHECK(lt_optim_save(o, tmp_path) == LT_OK, "%s: save: %s", path, lt_optim_error(o));
            CHECK(lt_st_open(tmp_path, &back, err, sizeof err) == LT_OK, "%s", err);
        }
        if (back) {
            int same = lt_st_count(back) == lt_st_count(want);
            for (size_t i = 0; same && i < lt_st_count(want); i++) {
                const lt_st_tensor *x = lt_st_at(want, i), *y = lt_st_find(back, x->name);
                same = y && y->nbytes == x->nbytes && !strcmp(y->dtype, x->dtype) && !memcmp(y->data, x->data, x->nbytes);
            }
            const char *s1 = lt_st_meta(want, "steps"), *s2 = lt_st_meta(back, "steps");
            CHECK(same && s1 && s2 && !strcmp(s1, s2), "%s (%s): saved back differently", path, name);
            n++;
        }
        lt_st_close(back), lt_st_close(want);
        lt_optim_free(o);
        free(raw);
    }
    closedir(d);
    CHECK(n >= 11, "only %d state files of %s loaded and saved back", n, dir);
    printf("state files of an earlier build: %d load and save back the same\n", n);
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
    old_state_files(path);
    return lt_test_done("test_optim_resume");
}
