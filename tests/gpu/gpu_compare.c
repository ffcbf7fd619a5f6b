/* GPU against CPU for every optimizer configuration of tests/optim_cases.h
 * (every registered name, with the options that change the state), f32 and
 * bf16 parameters, on fresh random data: the same parameters, gradients,
 * groups and schedule on a host optimizer and a device one, several steps,
 * then every parameter after every step and every state and moment at the
 * end. The elementwise and low-bit optimizers must agree bit for bit (the
 * device kernels repeat the CPU's formulas); Adafactor (sums in another
 * order) within 1e-4 of max |gpu - cpu| / (1e-3 + |cpu|) (bf16 parameters: 1e-2, a bf16 rounding step). Tensors cover the
 * vector path, the scalar path (odd sizes, a misaligned tensor), several
 * chunks, several Adafactor row groups, 1-D, 3-D and one-element tensors, and
 * a bf16 gradient; guard zones around every device buffer must stay intact.
 * Then: the found-inf flag (a skipped step changes nothing and is not
 * counted), the check alone, the 8-bit AdamW kernel's voted step on zero,
 * tiny, huge and non-finite gradients, a user stream, stepping one parameter, stochastic
 * rounding (the CPU's bits), save on one device and load on the other, a
 * host pointer refused as device memory, and the forms chosen by timing
 * (kernels/cuda/cu_tune.h) against the default forms, bit for bit.
 *
 * Needs a GPU; built only with CUDA (tests/gpu is not part of `make test`).
 * usage: gpu_compare [--quick] [--no-tuning] [--seed S] [--only SUBSTRING]   exit 0 when every check passes.
 * --quick: f32 only, 2 steps, no API checks, two of the tuning cases; --no-tuning: none of them (gpu-check's
 * memcheck run, whose time they would double); --only: the names containing SUBSTRING (no tuning cases). */
#include <math.h>
#include <stdint.h>
#include <time.h>

#include "kernels/cuda/cu_tune.h"
#include "kernels/optim_kernels_cuda.h"
#include "leantrain/optim.h"
#include "optim_cases.h"
#include "testutil.h"

enum { GUARD = 64, NT = 16, STEPS = 4 };
static const float SENTINEL = -12345.678f;

typedef struct {
    int ndim;
    int64_t shape[3];
    int misalign;   /* device copy at a 1-element offset: the scalar path */
    int bf16_grad;
} tshape;

static const tshape SHAPES[NT] = {
    {2, {64, 96}, 0, 0},    /* 6144: quantized by every low-bit name */
    {2, {33, 129}, 0, 0},   /* odd: scalar path; bitsandbytes' partial block; torchao unquantized */
    {1, {768}, 0, 1},       /* a bias, bf16 gradient */
    {3, {3, 5, 7}, 0, 0},   /* Adafactor over a batch of matrices */
    {1, {4099}, 0, 0},      /* odd vector, quantized by bitsandbytes */
    {1, {1}, 0, 0},         /* one element */
    {2, {256, 1024}, 0, 0}, /* many chunks; four Adafactor row groups */
    {2, {130, 20}, 0, 0},   /* three row groups of a narrow matrix */
    {2, {40, 64}, 1, 0},    /* misaligned device pointers */
    {2, {9, 1500}, 0, 0},   /* Adafactor: a row pass of two column chunks (1024 + 476) and a short row group */
    {2, {12, 1100}, 0, 1},  /* the same with a bf16 gradient: 8-byte staged copies; quantized by bitsandbytes */
    {2, {16, 512}, 0, 1},   /* bf16 gradient, whole blocks quantized by every low-bit name: in bf16 runs the
                               low-bit kernels' pure-bf16 hot step */
    {2, {2100, 3}, 0, 0},   /* Adafactor: 33 row groups and 2100 rows, past the final pass's batches of loads
                               (8 groups, 8 x 256 rows) with remainders */
    {3, {3, 40, 12}, 0, 0}, /* Adafactor over a batch of matrices, vectorized: the apply pass steps each thread
                               1024 elements (85 rows and 4 columns) on, across matrices */
    {2, {6, 6400}, 0, 0},   /* Adafactor: GPT-2 XL's MLP width, column sums in shared memory where the device
                               allows 51 KB of them (LT_EMU_SMEM_OPTIN=101376, a 99 KB card: in the workspace) */
    {2, {5, 12300}, 0, 0},  /* Adafactor: past LT_CU_AF_SMCOLS, column sums in the workspace on every device */
};

static uint64_t rng;
static float uni(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)(rng >> 40) / 16777216.0f;
}
static float sym(float a) { return a * (2.0f * uni() - 1.0f); }

static size_t numel(const tshape *s) {
    size_t n = 1;
    for (int d = 0; d < s->ndim; d++) n *= (size_t)s->shape[d];
    return n;
}

typedef struct {
    lt_optim *cpu, *gpu;
    void *hp[NT], *hg[NT];     /* host parameter and gradient of the CPU optimizer */
    void *dbuf[NT], *dgbuf[NT]; /* device allocations with guard zones */
    void *dp[NT], *dg[NT];     /* device parameter and gradient (inside the guards) */
    void *tmp;
    lt_dtype pdt;
} pair;

static size_t esz(lt_dtype dt) { return lt_dtype_size(dt); }

static int dev_upload(void *d, const void *h, size_t bytes) {
    char err[512];
    int rc = lt_cuda_memcpy_raw(d, h, bytes, 0, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    return rc;
}
static int dev_download(void *h, const void *d, size_t bytes) {
    char err[512];
    int rc = lt_cuda_memcpy_raw(h, d, bytes, 1, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    return rc;
}

/* a device buffer of `bytes` with GUARD floats of sentinel before and after (and a 1-float shift when misaligned) */
static void *dev_guarded(size_t bytes, int misalign, void **inner) {
    char err[512];
    size_t tot = bytes + (2 * GUARD + 1) * sizeof(float);
    void *b = NULL;
    if (lt_cuda_malloc_raw(&b, tot, err, sizeof err)) {
        CHECK(0, "%s", err);
        return NULL;
    }
    float *h = malloc(tot);
    for (size_t i = 0; i < tot / 4; i++) h[i] = SENTINEL;
    dev_upload(b, h, tot);
    free(h);
    *inner = (float *)b + GUARD + (misalign ? 1 : 0);
    return b;
}

static int guards_intact(void *b, size_t bytes, int misalign) {
    size_t tot = bytes + (2 * GUARD + 1) * sizeof(float);
    float *h = malloc(tot);
    dev_download(h, b, tot);
    int ok = 1;
    for (int i = 0; i < GUARD + (misalign ? 1 : 0); i++) ok &= h[i] == SENTINEL;
    size_t after = (GUARD * 4 + (misalign ? 4 : 0) + bytes + 3) / 4;
    for (size_t i = after; i < tot / 4; i++) ok &= h[i] == SENTINEL;
    free(h);
    return ok;
}

static lt_optim *make(const optim_case *c, char *err, size_t errlen) {
    lt_hparams hp = lt_hparams_default();
    hp.lr = c->lr < 0 ? NAN : c->lr;
    hp.weight_decay = 0.05;
    return lt_optim_create(c->name, c->args, &hp, err, errlen);
}

static int pair_make(pair *P, const optim_case *c, lt_dtype pdt) {
    char err[1024];
    memset(P, 0, sizeof *P);
    P->pdt = pdt;
    P->cpu = make(c, err, sizeof err);
    CHECK(P->cpu != NULL, "%s [%s]: %s", c->name, c->args, err);
    P->gpu = make(c, err, sizeof err);
    if (!P->cpu || !P->gpu) return -1;
    /* a second group: no decay, as the Trainer's biases and norms */
    CHECK(lt_optim_add_group(P->cpu, "weight_decay=0.0") == 1 && lt_optim_add_group(P->gpu, "weight_decay=0.0") == 1,
          "add_group: %s", lt_optim_error(P->cpu));
    size_t maxn = 0;
    for (int t = 0; t < NT; t++) {
        const tshape *s = &SHAPES[t];
        size_t n = numel(s), pb = n * esz(pdt);
        lt_dtype gdt = s->bf16_grad ? LT_DTYPE_BF16 : LT_DTYPE_F32;
        if (n > maxn) maxn = n;
        P->hp[t] = malloc(pb);
        P->hg[t] = malloc(n * esz(gdt));
        for (size_t i = 0; i < n; i++) {
            float v = sym(0.5f);
            if (pdt == LT_DTYPE_F32) ((float *)P->hp[t])[i] = v;
            else ((uint16_t *)P->hp[t])[i] = lt_f32_to_bf16(v);
        }
        P->dbuf[t] = dev_guarded(pb, s->misalign, &P->dp[t]);
        P->dgbuf[t] = dev_guarded(n * esz(gdt), s->misalign, &P->dg[t]);
        if (!P->dbuf[t] || !P->dgbuf[t]) return -1;
        dev_upload(P->dp[t], P->hp[t], pb);
        char name[32];
        snprintf(name, sizeof name, "t%d", t);
        lt_param_desc d = {.name = name, .data = P->hp[t], .grad = P->hg[t], .dtype = pdt, .grad_dtype = gdt,
                           .ndim = s->ndim, .group = s->ndim == 1 ? 1 : 0};
        for (int k = 0; k < s->ndim; k++) d.shape[k] = s->shape[k];
        CHECK(lt_optim_add_param(P->cpu, &d) == t, "cpu add_param: %s", lt_optim_error(P->cpu));
        d.data = P->dp[t], d.grad = P->dg[t], d.device = 1;
        if (lt_optim_add_param(P->gpu, &d) != t) {
            CHECK(0, "gpu add_param: %s", lt_optim_error(P->gpu));
            return -1;
        }
    }
    P->tmp = malloc(maxn * 8);
    return 0;
}

static void pair_free(pair *P) {
    lt_optim_free(P->cpu), lt_optim_free(P->gpu);
    for (int t = 0; t < NT; t++) {
        free(P->hp[t]), free(P->hg[t]);
        lt_cuda_free_raw(P->dbuf[t]), lt_cuda_free_raw(P->dgbuf[t]);
    }
    free(P->tmp);
}

/* test_vote's gradients: besides the random ones, zeros (single elements and a whole tensor), tiny and huge
 * values, inf and NaN (each in a few blocks) */
static int edge_grads;
static float edge_grad(int t, size_t i, float v) {
    if (!edge_grads) return v;
    if (t == 4 || i % 97 == 0) return i % 2 ? -0.0f : 0.0f;
    if (i % 389 == 5) return 1e-30f;
    if (i % 1021 == 9) return -1e18f;
    if (i % 3001 == 11) return i % 2 ? NAN : -INFINITY;
    return v;
}

static void new_grads(pair *P) {
    for (int t = 0; t < NT; t++) {
        const tshape *s = &SHAPES[t];
        size_t n = numel(s);
        for (size_t i = 0; i < n; i++) {
            float v = edge_grad(t, i, sym(0.02f) * (i % 13 == 0 ? 10.0f : 1.0f));
            if (s->bf16_grad) ((uint16_t *)P->hg[t])[i] = lt_f32_to_bf16(v);
            else ((float *)P->hg[t])[i] = v;
        }
        dev_upload(P->dg[t], P->hg[t], n * esz(s->bf16_grad ? LT_DTYPE_BF16 : LT_DTYPE_F32));
    }
}

typedef struct {
    long mismatches, count;
    double worst;
} cmp_t;

static void compare(cmp_t *c, const float *gpu, const float *cpu, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t a, b;
        memcpy(&a, &gpu[i], 4), memcpy(&b, &cpu[i], 4);
        c->mismatches += a != b;
        double e = fabs((double)gpu[i] - cpu[i]) / (1e-3 + fabs((double)cpu[i]));
        if (!(e <= c->worst)) c->worst = isnan(e) ? INFINITY : e;
    }
    c->count += (long)n;
}

static void to_f32(const void *x, lt_dtype dt, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = dt == LT_DTYPE_F32 ? ((const float *)x)[i] : lt_bf16_to_f32(((const uint16_t *)x)[i]);
}

/* p after each step, then states and moments; returns 1 when the case passes */
static int run_case(const optim_case *c, lt_dtype pdt, int steps) {
    pair P;
    int ok = 0;
    if (pair_make(&P, c, pdt)) {
        pair_free(&P);
        return 0;
    }
    const int exact = strcmp(c->name, "adafactor") != 0;
    cmp_t cp = {0, 0, 0}, cs = {0, 0, 0};
    float *a = malloc(262144 * 4 + 64), *b = malloc(262144 * 4 + 64);
    int stepped = 1;
    for (int s = 1; s <= steps && stepped; s++) {
        new_grads(&P);
        if (c->lr > 0) {
            lt_optim_set_lr(P.cpu, -1, c->lr * (1.0 - 0.1 * s));
            lt_optim_set_lr(P.gpu, -1, c->lr * (1.0 - 0.1 * s));
        }
        float gs = s == 2 ? 0.25f : 1.0f;
        stepped = lt_optim_step(P.cpu, gs) == LT_OK;
        CHECK(stepped, "cpu step: %s", lt_optim_error(P.cpu));
        if (lt_optim_step(P.gpu, gs) != LT_OK || lt_optim_sync(P.gpu) != LT_OK) {
            CHECK(0, "%s [%s]: gpu step %d: %s", c->name, c->args, s, lt_optim_error(P.gpu));
            stepped = 0;
        }
        for (int t = 0; t < NT && stepped; t++) {
            size_t n = numel(&SHAPES[t]);
            dev_download(P.tmp, P.dp[t], n * esz(pdt));
            to_f32(P.tmp, pdt, a, n);
            to_f32(P.hp[t], pdt, b, n);
            compare(&cp, a, b, n);
        }
    }
    if (stepped) {
        for (int t = 0; t < NT; t++) {
            const char *names[8];
            int ns = lt_optim_state_names(P.cpu, t, names, 8);
            for (int k = 0; k < ns && k < 8; k++) {
                size_t n = lt_optim_state_numel(P.cpu, t, names[k]);
                if (n > 262144) continue;
                CHECK(lt_optim_state_numel(P.gpu, t, names[k]) == n, "state %s sizes differ", names[k]);
                CHECK(lt_optim_read_state(P.gpu, t, names[k], a, n) == LT_OK, "%s", lt_optim_error(P.gpu));
                lt_optim_read_state(P.cpu, t, names[k], b, n);
                compare(&cs, a, b, n);
            }
            for (int w = 0; w < 2; w++) {
                size_t n = numel(&SHAPES[t]);
                if (lt_optim_read_moment(P.cpu, t, w, b, n) != LT_OK) continue;
                CHECK(lt_optim_read_moment(P.gpu, t, w, a, n) == LT_OK, "%s", lt_optim_error(P.gpu));
                compare(&cs, a, b, n);
            }
            CHECK(lt_optim_param_step(P.gpu, t) == lt_optim_param_step(P.cpu, t), "step counts differ");
        }
        int guards = 1;
        for (int t = 0; t < NT; t++) {
            size_t n = numel(&SHAPES[t]);
            guards &= guards_intact(P.dbuf[t], n * esz(pdt), SHAPES[t].misalign);
            guards &= guards_intact(P.dgbuf[t], n * esz(SHAPES[t].bf16_grad ? LT_DTYPE_BF16 : LT_DTYPE_F32), SHAPES[t].misalign);
        }
        CHECK(guards, "%s [%s]: a device kernel wrote outside a tensor", c->name, c->args);
        /* Adafactor: sums in another order move an update by an ulp or two, which can round a bf16
         * parameter to its neighbour (2^-8 relative); its f32 states stay within 1e-4 */
        const double ptol = pdt == LT_DTYPE_BF16 ? 1e-2 : 1e-4;
        if (exact) ok = cp.mismatches == 0 && cs.mismatches == 0;
        else ok = cp.worst < ptol && cs.worst < 1e-4;
        ok &= guards;
        printf("%s  %-20s %-4s %-62s params: %ld of %ld differ (max rel %.2e)  states: %ld of %ld differ (max rel "
               "%.2e)%s\n",
               ok ? "PASS" : "FAIL", c->name, pdt == LT_DTYPE_F32 ? "f32" : "bf16", c->args[0] ? c->args : "-",
               cp.mismatches, cp.count, cp.worst, cs.mismatches, cs.count, cs.worst,
               exact ? "  (bit-identical expected)" : pdt == LT_DTYPE_BF16 ? "  (params within 1e-2, states 1e-4)"
                                                           : "  (within 1e-4 expected)");
        CHECK(ok, "%s [%s] %s: GPU and CPU disagree", c->name, c->args, pdt == LT_DTYPE_F32 ? "f32" : "bf16");
    }
    free(a), free(b);
    pair_free(&P);
    return ok;
}

/* ---- the found-inf flag ---- */
static void test_found_inf(void) {
    optim_case c = {"adamw_torch", "", 1e-3};
    pair P;
    char err[512];
    if (pair_make(&P, &c, LT_DTYPE_F32)) {
        pair_free(&P);
        return;
    }
    int *flag = NULL, zero = 0, one = 0;
    CHECK(lt_cuda_malloc_raw((void **)&flag, sizeof(int), err, sizeof err) == 0, "%s", err);
    dev_upload(flag, &zero, sizeof zero);
    CHECK(lt_optim_set_found_inf(P.gpu, flag, 1) == LT_OK, "%s", lt_optim_error(P.gpu));
    /* a NaN in one gradient: the whole step is skipped, nothing written, not counted */
    new_grads(&P);
    size_t n0 = numel(&SHAPES[0]);
    float *before = malloc(n0 * 4), *after = malloc(n0 * 4), nan = NAN;
    dev_download(before, P.dp[0], n0 * 4);
    dev_upload((float *)P.dg[6] + 1000, &nan, 4);
    CHECK(lt_optim_step(P.gpu, 1.0f) == LT_OK, "%s", lt_optim_error(P.gpu));
    /* asked before anything else waits for the device: the count must come from the step's own flag record */
    CHECK(lt_optim_param_step(P.gpu, 0) == 0, "a skipped step was counted (step %lld, asked at once)",
          (long long)lt_optim_param_step(P.gpu, 0));
    dev_download(&one, flag, sizeof one);
    CHECK(one == 1, "the check did not set the flag for a NaN gradient");
    dev_download(after, P.dp[0], n0 * 4);
    CHECK(!memcmp(before, after, n0 * 4), "a skipped step changed a parameter");
    float m[16];
    lt_optim_read_state(P.gpu, 0, "exp_avg", P.tmp, n0);
    memcpy(m, P.tmp, sizeof m);
    CHECK(m[0] == 0.0f && m[5] == 0.0f, "a skipped step changed the state");
    CHECK(lt_optim_param_step(P.gpu, 0) == 0, "a skipped step was counted (step %lld)",
          (long long)lt_optim_param_step(P.gpu, 0));
    /* clean gradients, flag cleared: the step runs and equals the CPU's first step */
    dev_upload(P.dg[6], P.hg[6], numel(&SHAPES[6]) * 4);
    dev_upload(flag, &zero, sizeof zero);
    CHECK(lt_optim_step(P.gpu, 1.0f) == LT_OK, "%s", lt_optim_error(P.gpu));
    CHECK(lt_optim_param_step(P.gpu, 0) == 1, "step count %lld after one real step, asked at once",
          (long long)lt_optim_param_step(P.gpu, 0));
    lt_optim_step(P.cpu, 1.0f);
    dev_download(after, P.dp[0], n0 * 4);
    CHECK(!memcmp(after, P.hp[0], n0 * 4), "the step after a skipped one differs from the CPU's first step");
    CHECK(lt_optim_param_step(P.gpu, 0) == 1, "step count %lld after one real step",
          (long long)lt_optim_param_step(P.gpu, 0));
    /* check=0: only the caller's check sets the flag; lt_optim_check_finite runs it alone */
    CHECK(lt_optim_set_found_inf(P.gpu, flag, 0) == LT_OK, "%s", lt_optim_error(P.gpu));
    uint16_t binf = 0x7f80; /* an inf in the bf16 gradient */
    dev_upload(P.dg[2], &binf, 2);
    CHECK(lt_optim_check_finite(P.gpu, 1.0f) == LT_OK, "%s", lt_optim_error(P.gpu));
    lt_optim_sync(P.gpu);
    dev_download(&one, flag, sizeof one);
    CHECK(one == 1, "check_finite missed an inf in a bf16 gradient");
    dev_download(before, P.dp[0], n0 * 4);
    CHECK(lt_optim_step(P.gpu, 1.0f) == LT_OK, "%s", lt_optim_error(P.gpu));
    dev_download(after, P.dp[0], n0 * 4);
    CHECK(!memcmp(before, after, n0 * 4), "a step with the flag set changed a parameter");
    CHECK(lt_optim_param_step(P.gpu, 0) == 1, "a skipped step was counted");
    /* a grad_scale that overflows a finite gradient also counts as non-finite */
    dev_upload(P.dg[2], P.hg[2], numel(&SHAPES[2]) * 2);
    uint16_t four = 0x4080; /* 4.0 in bf16: 4 * 3e38 overflows */
    dev_upload((uint16_t *)P.dg[2] + 7, &four, 2);
    dev_upload(flag, &zero, sizeof zero);
    CHECK(lt_optim_check_finite(P.gpu, 3e38f) == LT_OK, "%s", lt_optim_error(P.gpu));
    dev_download(&one, flag, sizeof one);
    CHECK(one == 1, "g * grad_scale overflowing to inf was not flagged");
    /* a check that finds the flag set leaves at once (every thread of a CTA alike) and never clears it */
    dev_upload(P.dg[2], P.hg[2], numel(&SHAPES[2]) * 2);
    CHECK(lt_optim_check_finite(P.gpu, 1.0f) == LT_OK, "%s", lt_optim_error(P.gpu));
    lt_optim_sync(P.gpu);
    one = 0;
    dev_download(&one, flag, sizeof one);
    CHECK(one == 1, "a check of finite gradients cleared a set flag");
    printf("found-inf: skipped steps change nothing and are not counted; the check alone sets the flag\n");
    CHECK(lt_optim_set_found_inf(P.gpu, NULL, 0) == LT_OK, "%s", lt_optim_error(P.gpu));
    lt_cuda_free_raw(flag);
    free(before), free(after);
    pair_free(&P);
}

/* ---- the choice of a kernel's form by its times (kernels/cuda/cu_tune.h) ----
 * The same optimizer twice on the same data, one choosing its kernels' forms by timing them (each form runs in
 * turn in the first steps), one keeping the defaults (LT_TUNE=0): every parameter and state must agree bit for
 * bit, for every name whose kernels have forms, so that no choice can change a result; and after enough steps
 * every launch shape has timed each of its forms and chosen one. */
static void tune_case(const char *name, const char *args, lt_dtype pdt) {
    optim_case c = {name, args, 1e-3};
    pair P, Q;
    const uint64_t seed = rng;
    int okp = pair_make(&P, &c, pdt) == 0;
    rng = seed;
    int okq = pair_make(&Q, &c, pdt) == 0;
    const int steps = LT_CU_TUNE_MAXC * LT_CU_TUNE_SAMPLES + 1; /* every form of every shape timed, then the choice used */
    for (int s = 1; s <= steps && okp && okq; s++) {
        const uint64_t at = rng;
        new_grads(&P);
        rng = at;
        new_grads(&Q);
        setenv("LT_TUNE", "0", 1);
        okq = lt_optim_step(Q.gpu, 1.0f) == LT_OK && lt_optim_sync(Q.gpu) == LT_OK;
        unsetenv("LT_TUNE");
        okp = lt_optim_step(P.gpu, 1.0f) == LT_OK && lt_optim_sync(P.gpu) == LT_OK;
        CHECK(okp && okq, "%s [%s]: step %d: %s / %s", name, args, s, lt_optim_error(P.gpu), lt_optim_error(Q.gpu));
    }
    long differ = 0, count = 0;
    for (int t = 0; t < NT && okp && okq; t++) {
        size_t n = numel(&SHAPES[t]), b = n * esz(pdt);
        char *x = malloc(b), *y = malloc(b);
        dev_download(x, P.dp[t], b);
        dev_download(y, Q.dp[t], b);
        differ += memcmp(x, y, b) != 0;
        count++;
        free(x), free(y);
        const char *names[8];
        int ns = lt_optim_state_names(P.gpu, t, names, 8);
        for (int k = 0; k < ns && k < 8; k++) {
            size_t m = lt_optim_state_numel(P.gpu, t, names[k]);
            float *u = malloc(m * 4 + 4), *v = malloc(m * 4 + 4);
            CHECK(lt_optim_read_state(P.gpu, t, names[k], u, m) == LT_OK &&
                      lt_optim_read_state(Q.gpu, t, names[k], v, m) == LT_OK,
                  "%s", lt_optim_error(P.gpu));
            differ += memcmp(u, v, m * 4) != 0;
            count++;
            free(u), free(v);
        }
    }
    char rep[4096], none[64];
    int lines = okp ? lt_optim_device_tuning(P.gpu, rep, sizeof rep) : 0;
    int qlines = okq ? lt_optim_device_tuning(Q.gpu, none, sizeof none) : -1;
    printf("%s  tuning %-16s %-4s %-26s %ld of %ld tensors differ from the default forms; %d launch shapes:\n%s",
           differ == 0 && lines > 0 ? "PASS" : "FAIL", name, pdt == LT_DTYPE_F32 ? "f32" : "bf16",
           args[0] ? args : "-", differ, count, lines, rep);
    CHECK(okp && okq && differ == 0, "%s [%s]: the forms chosen by timing changed %ld tensors", name, args, differ);
    CHECK(lines > 0 && !strstr(rep, "choosing") && !strstr(rep, "untimed"),
          "%s [%s]: after %d steps not every form was timed and chosen:\n%s", name, args, steps, rep);
    CHECK(qlines == 0, "%s: LT_TUNE=0 still tuned (%d lines)", name, qlines);
    pair_free(&P);
    pair_free(&Q);
}

/* ---- the voted 8-bit AdamW step (LT_LOWBIT_VOTE=1, kernels/cuda/lowbit.cuh) ----
 * That form against the CPU, bit for bit, on gradients with zeros, tiny and huge values, inf and NaN: the blocks
 * holding the last ones fail the vote and are stepped again with the exact square roots and divisions, the zeros
 * (whole rows of states at zero too) take the voted path. */
static void test_vote(int quick) {
    setenv("LT_LOWBIT_VOTE", "1", 1);
    edge_grads = 1;
    optim_case plain = {"adamw_bnb_8bit", "", 1e-3}, wd = {"adamw_bnb_8bit", "weight_decay=0.1", 1e-3};
    int ok = run_case(&plain, LT_DTYPE_F32, quick ? 2 : STEPS);
    ok &= run_case(&wd, LT_DTYPE_F32, quick ? 2 : STEPS);
    edge_grads = 0;
    unsetenv("LT_LOWBIT_VOTE");
    printf("%s  voted 8-bit AdamW step (LT_LOWBIT_VOTE=1) with zero, tiny, huge and non-finite gradients\n",
           ok ? "PASS" : "FAIL");
}

static void test_tuning(int quick) {
    tune_case("adamw_bnb_8bit", "", LT_DTYPE_F32);
    tune_case("adafactor", "", LT_DTYPE_F32);
    if (quick) return;
    tune_case("adamw_bnb_8bit", "", LT_DTYPE_BF16);
    tune_case("lion_8bit", "", LT_DTYPE_F32);
    tune_case("adamw_torch_8bit", "", LT_DTYPE_F32);
    tune_case("adamw_torch_4bit", "block_size=128", LT_DTYPE_F32);
    tune_case("adafactor", "beta1=0.9,scale_parameter=True", LT_DTYPE_BF16);
}

/* a user stream, one parameter at a time, save/load across devices, a host pointer refused */
static void test_api(void) {
    optim_case c = {"adamw_bnb_8bit", "", 1e-3};
    pair P;
    char err[512], path[512];
    if (pair_make(&P, &c, LT_DTYPE_F32)) {
        pair_free(&P);
        return;
    }
    void *stream = NULL;
    CHECK(lt_cuda_stream_create(&stream, err, sizeof err) == 0, "%s", err);
    CHECK(lt_optim_set_stream(P.gpu, stream) == LT_OK, "%s", lt_optim_error(P.gpu));
    new_grads(&P);
    for (int t = 0; t < NT; t++) {
        CHECK(lt_optim_step_param(P.gpu, t, 1.0f) == LT_OK, "%s", lt_optim_error(P.gpu));
        lt_optim_step_param(P.cpu, t, 1.0f);
    }
    /* no lt_optim_sync here or after the step: lt_cuda_memcpy_raw (new_grads' uploads, the downloads below) waits
     * for the work queued on the user stream before it copies */
    new_grads(&P);
    CHECK(lt_optim_step(P.gpu, 1.0f) == LT_OK, "%s", lt_optim_error(P.gpu));
    lt_optim_step(P.cpu, 1.0f);
    int same = 1;
    for (int t = 0; t < NT; t++) {
        size_t n = numel(&SHAPES[t]);
        dev_download(P.tmp, P.dp[t], n * 4);
        same &= !memcmp(P.tmp, P.hp[t], n * 4);
    }
    CHECK(same, "steps on a user stream / one parameter at a time differ from the CPU");
    /* the GPU's state saved, loaded into a fresh CPU optimizer: the next steps agree */
    snprintf(path, sizeof path, "%s/gpu_state.safetensors", lt_test_tmp_dir());
    CHECK(lt_optim_save(P.gpu, path) == LT_OK, "%s", lt_optim_error(P.gpu));
    lt_optim *cpu2 = make(&c, err, sizeof err);
    lt_optim_add_group(cpu2, "weight_decay=0.0");
    for (int t = 0; t < NT; t++) {
        char name[32];
        snprintf(name, sizeof name, "t%d", t);
        lt_param_desc d = {.name = name, .data = P.hp[t], .grad = P.hg[t], .ndim = SHAPES[t].ndim,
                           .grad_dtype = SHAPES[t].bf16_grad ? LT_DTYPE_BF16 : LT_DTYPE_F32,
                           .group = SHAPES[t].ndim == 1 ? 1 : 0};
        for (int k = 0; k < SHAPES[t].ndim; k++) d.shape[k] = SHAPES[t].shape[k];
        lt_optim_add_param(cpu2, &d);
    }
    CHECK(lt_optim_load(cpu2, path) == LT_OK, "loading the GPU's state on the CPU: %s", lt_optim_error(cpu2));
    CHECK(lt_optim_load(P.gpu, path) == LT_OK, "loading the state back on the GPU: %s", lt_optim_error(P.gpu));
    lt_optim_sync(P.gpu);
    new_grads(&P);
    lt_optim_step(cpu2, 1.0f);
    CHECK(lt_optim_step(P.gpu, 1.0f) == LT_OK && lt_optim_sync(P.gpu) == LT_OK, "%s", lt_optim_error(P.gpu));
    same = 1;
    for (int t = 0; t < NT; t++) {
        size_t n = numel(&SHAPES[t]);
        dev_download(P.tmp, P.dp[t], n * 4);
        same &= !memcmp(P.tmp, P.hp[t], n * 4);
    }
    CHECK(same, "after save on the GPU and load on the CPU (and back), the steps differ");
    lt_optim_free(cpu2);
    /* a host pointer as device memory is refused, naming the parameter */
    static float hostbuf[16];
    lt_param_desc d = {.name = "host", .data = hostbuf, .grad = hostbuf, .ndim = 1, .shape = {16}, .device = 1};
    CHECK(lt_optim_add_param(P.gpu, &d) == -1, "a host pointer was accepted as device memory");
    printf("host pointer refused: %s\n", lt_optim_error(P.gpu));
    printf("api: user stream, step_param, save on GPU / load on CPU and GPU: agree with the CPU\n");
    lt_optim_set_stream(P.gpu, NULL);
    lt_cuda_stream_destroy(stream);
    pair_free(&P);
}

int main(int argc, char **argv) {
    int quick = 0, tuning = 1;
    const char *only = NULL;
    rng = (uint64_t)time(NULL);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--no-tuning")) tuning = 0;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) rng = strtoull(argv[++i], NULL, 10);
    }
    char dev[256];
    lt_cuda_describe(dev, sizeof dev);
    printf("gpu_compare: %s; seed %llu%s\n", dev, (unsigned long long)rng, quick ? "; quick" : "");
    if (lt_cuda_device_count() < 1) {
        fprintf(stderr, "gpu_compare: no CUDA device\n");
        return 1;
    }
    int passed = 0, total = 0;
    for (int ci = 0; ci < N_OPTIM_CASES; ci++)
        for (int b = 0; b < 2; b++) {
            const optim_case *c = &OPTIM_CASES[ci];
            if ((quick && b) || (only && !strstr(c->name, only))) continue;
            /* Kahan with bf16 parameters is its own algorithm on both sides; it is compared too */
            total++;
            passed += run_case(c, b ? LT_DTYPE_BF16 : LT_DTYPE_F32, quick ? 2 : STEPS);
        }
    if (!only) {
        optim_case sr = {"adamw_torch", "bf16_stochastic_round=True", 1e-3};
        total++;
        passed += run_case(&sr, LT_DTYPE_BF16, quick ? 2 : STEPS);
        optim_case sr8 = {"adamw_bnb_8bit", "bf16_stochastic_round=True", 1e-3};
        total++;
        passed += run_case(&sr8, LT_DTYPE_BF16, quick ? 2 : STEPS);
    }
    printf("gpu_compare: %d of %d configurations agree\n", passed, total);
    if (!only) test_found_inf();
    if (!only) test_vote(quick); /* not under --only: gpu-check's racecheck runs --only 8bit within a tight limit */
    if (!only && tuning) test_tuning(quick);
    if (!quick && !only) test_api();
    return lt_test_done("gpu_compare");
}
