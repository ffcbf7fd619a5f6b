/* The GPT-2 model on the device (src/model/cuda/gpt2_device.h) against the
 * CPU model (src/model/gpt2.c), whole passes, on random models of two shapes:
 *   L 2, C 96,  NH 3, V 300,  B 2, T 21
 *   L 3, C 128, NH 4, V 1031, B 3, T 19
 * (B and T not multiples of 32 nor of the row kernels' 4 warps, V odd and not
 * a multiple of the 64-column logits padding). The weights are GPT-2's
 * initialisation with the layernorm weights and all biases perturbed, so
 * that every parameter's gradient path is exercised.
 *
 * The error of a tensor is max |dev - ref| / max |ref| (relative to the
 * tensor's scale, as in gpu_gpt2_layers); NaN fails. Checked:
 *   fp32: loss within 1e-5 relative; every gradient within 2e-5 (the same
 *     fp32 formulas summed in another order: warp trees, cuBLAS / sgemm
 *     blocking, row groups);
 *   bf16: the device's bf16 mode keeps every activation and activation
 *     gradient in bf16 (llm.c's mixed precision) where the CPU's bf16 mode
 *     emulates torch.autocast (residual stream, layernorm parameters and
 *     embeddings in fp32), so neither is the other's reference: both are
 *     compared with the fp32 CPU pass, the quantity both approximate, and the
 *     device must be within TOL_BF16_LOSS / TOL_BF16_GRAD of it. Also
 *     printed: the CPU bf16 mode's own error against fp32 (the scale of
 *     bf16's noise) and the device bf16 against the CPU bf16. bf16 keeps 8
 *     significant bits (a rounding moves a value by up to 2^-9 of it) and a
 *     gradient here passes through a few dozen rounded tensors; measured
 *     (emulation, both shapes): loss 3.8e-5 (the CPU autocast emulation: 3.7e-5),
 *     gradients 1.14e-2 of the tensor's scale (CPU autocast: 9.5e-3). The
 *     tolerances: 1e-3 for the loss (half a bf16 ulp of it) and 3e-2 for the
 *     gradients (about 8 bf16 ulps of the scale, 2.6x the worst measured);
 *   fp16: the device's fp16 mode is the bf16 scheme in IEEE half (every
 *     activation and activation gradient fp16; fp32 masters and gradients),
 *     the CPU's fp16 the autocast emulation, so again both are compared with
 *     the CPU fp32 pass. Both run at the trainer's first loss scale, 65536
 *     (unscaled, the activation gradients, of order 1 / (N V), would sit among
 *     fp16's subnormals), and the gradients are divided by it on the host (a
 *     power of two: exact). fp16 keeps 11 significant bits, 3 more than
 *     bf16, so each rounding is 8x smaller and the bf16 tolerances divided by
 *     8 keep the same margin: TOL_F16_LOSS = 1.25e-4, TOL_F16_GRAD = 3.75e-3.
 *     Measured (emulation): loss 1.7e-7 / 3.2e-6 (shape 1 / 2), gradients
 *     1.25e-3 / 1.40e-3 of the tensor's scale (the CPU autocast emulation:
 *     9.5e-4 / 1.07e-3), about 8x below bf16's, so the tolerance is 2.7x the
 *     worst measured as bf16's is 2.6x;
 *   fp16 overflow: at loss scale 2^22 the targets' logit gradients (about
 *     -scale / N) exceed 65504 and become -inf; lt_gpt2_dev_grad_norm must be
 *     inf or NaN (the trainer's skip test), as the CPU fp16 model's norm is,
 *     the loss unchanged; halving the scale from 2^21 (logit gradients below
 *     65504, the overflow then in the weight gradients' sums over the N rows,
 *     rounded to fp16 on both sides as torch.autocast's fp16 op gradients
 *     are), the device's norm must be non-finite exactly where the CPU's is,
 *     down to the first clean scale; the next pass at 65536 must give the
 *     first pass's norm again; AdamW x3 in fp16 at loss scale 65536 (steps scaled
 *     by 1 / 65536) against the CPU's fp16: losses within TOL_F16_LOSS, the
 *     fp16 copy equal to the masters rounded after each refresh;
 *   checkpointing (fp32, bf16 and fp16): loss and every gradient bit-identical to
 *     the device's run without it;
 *   pure bf16 parameters: bit-identical to bf16 compute with fp32 masters at
 *     the same (rounded) weights; download gives the rounded values;
 *   per-block gradients with lt_gpt2_dev_backward_cb: the callback's groups
 *     in the CPU model's order (lt_gpt2_backward_cb), and each group's
 *     gradients, read inside the callback, bit-identical to the device's
 *     full-gradient run;
 *   stepping inside backward: per-block gradients with checkpointing and
 *     lt_optim_step_param on each group in the callback give, over 2 AdamW
 *     steps, the weights of full gradients + lt_optim_step bit for bit;
 *   3 AdamW steps (adamw_torch, lr 1e-3, weight decay 0.1 on matrices) with
 *     the optimizer library's device parameters (.device = 1) against the same
 *     3 steps on the CPU: every step's loss within 1e-5 relative, the final
 *     weights within TOL_ADAM_W = 0.05 lr absolute (Adam divides by
 *     sqrt(v) + eps, so where a gradient is near zero its fp32 summation noise
 *     moves the update by up to about lr * noise / eps; measured 1.4e-5 =
 *     0.014 lr, while the steps move weights by 3e-3); in bf16 (device bf16 vs CPU
 *     bf16, weights refreshed with lt_gpt2_dev_refresh_bf16 after each step)
 *     the losses within TOL_BF16_LOSS and the bf16 copy equal to the rounded
 *     masters;
 *   lt_gpt2_dev_grad_norm: within 1e-12 of the same norm taken in double
 *     on the host from the downloaded gradients, and within 1e-5 of the
 *     CPU gradients' norm;
 *   the memory plan (lt_gpt2_dev_memory_plan) equal to the bytes the model
 *     allocated (lt_gpt2_dev_allocated_bytes) after every set_batch, and for a
 *     model created pure bf16 with per-block gradients (lt_gpt2_dev_create_as,
 *     as the trainer makes it) equal to its peak as well;
 *   errors: a bad token id, backward without forward, pure fp16 parameters;
 *   the lm head in chunks (lt_gpt2_dev_set_head_rows, as the trainer runs
 *     it) on a shape of its own: see check_head_chunks.
 *
 * Needs a GPU (or `make cuda-emu`); built only with CUDA.
 * usage: gpu_gpt2_model [--quick] [--seed S]   (--quick: the first shape only) */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/optim_kernels_cuda.h"
#include "leantrain/dtype.h"
#include "leantrain/optim.h"
#include "model/cuda/gpt2_device.h"
#include "model/gpt2.h"
#include "model/gpt2_layers.h"
#include "testutil.h"

#define TOL_LOSS 1e-5
#define TOL_GRAD 2e-5
#define TOL_BF16_LOSS 1e-3
#define TOL_BF16_GRAD 3e-2
#define TOL_F16_LOSS (TOL_BF16_LOSS / 8)
#define TOL_F16_GRAD (TOL_BF16_GRAD / 8)
#define F16_SCALE 65536.0f           /* the trainer's first loss scale (GradScaler's init_scale) */
#define F16_OVERFLOW_SCALE 4194304.0f /* 2^22: a target logit's gradient, about -scale / N, exceeds 65504 */
#define ADAM_LR 1e-3
#define TOL_ADAM_W (0.05 * ADAM_LR)

typedef struct {
    int L, C, NH, V, P, B, T;
} shape;

static const shape SHAPES[] = {
    {2, 96, 3, 300, 32, 2, 21},
    {3, 128, 4, 1031, 24, 3, 19},
};

static char err[1024];

/* an lt_status call that must succeed: the test cannot go on without it */
#define MUST(call)                                                                                                    \
    do {                                                                                                              \
        lt_status st_ = (call);                                                                                       \
        if (st_ != LT_OK) {                                                                                           \
            fprintf(stderr, "gpu_gpt2_model: %s:%d: %s: %s\n", __FILE__, __LINE__, #call, err);                       \
            exit(2);                                                                                                  \
        }                                                                                                             \
    } while (0)

/* ---- random numbers ---- */
static uint64_t rng;
static uint32_t next32(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng >> 32);
}
static float sym(float a) { return a * (2.0f * (float)(next32() >> 8) / 16777216.0f - 1.0f); }

/* ---- host models ---- */
static lt_gpt2 *new_model(const lt_gpt2_config *cfg) {
    lt_gpt2 *m;
    MUST(lt_gpt2_create(cfg, &m, err, sizeof err));
    return m;
}

static lt_gpt2 *random_model(const lt_gpt2_config *cfg, uint64_t seed) {
    lt_gpt2 *m = new_model(cfg);
    lt_gpt2_init_random(m, seed);
    for (int i = 0; i < m->num_tensors; i++) {
        lt_gpt2_param *p = &m->params[i];
        int bias = strstr(p->name, ".bias") != NULL, ln = strstr(p->name, "ln_") != NULL;
        if (!bias && !ln) continue;
        for (size_t j = 0; j < p->numel; j++) p->data[j] += sym(ln && !bias ? 0.2f : 0.05f);
    }
    return m;
}

static lt_gpt2 *clone(const lt_gpt2 *src) {
    lt_gpt2 *m = new_model(&src->cfg);
    memcpy(m->param_memory, src->param_memory, src->memory_floats * sizeof(float));
    return m;
}

static void cpu_pass(lt_gpt2 *m, const int32_t *in, const int32_t *tg, int B, int T, float *loss) {
    lt_gpt2_zero_grad(m);
    MUST(lt_gpt2_forward(m, in, tg, B, T, err, sizeof err));
    MUST(lt_gpt2_backward(m, err, sizeof err));
    *loss = m->loss;
}

static void dev_pass(lt_gpt2_dev *d, const int32_t *in, const int32_t *tg, int B, int T, float *loss) {
    MUST(lt_gpt2_dev_zero_grad(d, err, sizeof err));
    MUST(lt_gpt2_dev_forward(d, in, tg, B, T, loss, err, sizeof err));
    MUST(lt_gpt2_dev_backward(d, err, sizeof err));
}

/* ---- comparisons ---- */

/* max |a - ref| / max |ref| (max |a| when ref is all zero); INFINITY for NaN */
static double rel_err(const float *a, const float *ref, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)ref[i]);
        if (e != e) return INFINITY;
        if (e > num) num = e;
        if (fabs((double)ref[i]) > den) den = fabs((double)ref[i]);
    }
    return den > 0 ? num / den : num;
}

static double rel(double a, double ref) { return a == a ? fabs(a - ref) / fabs(ref) : INFINITY; }

/* Every gradient of `got` against `ref`; checks each against tol (tol < 0: only reports) and prints the worst. */
static double compare_grads(const char *what, const lt_gpt2 *got, const lt_gpt2 *ref, double tol) {
    double worst = 0.0;
    int at = 0;
    for (int i = 0; i < ref->num_tensors; i++) {
        double e = rel_err(got->params[i].grad, ref->params[i].grad, ref->params[i].numel);
        if (tol >= 0) CHECK(e <= tol, "%s: gradient of %s: error %.3g > %.3g", what, ref->params[i].name, e, tol);
        if (!(e <= worst)) worst = e, at = i;
    }
    printf("  %-44s worst gradient err %.2e (%s)%s\n", what, worst, ref->params[at].name, tol >= 0 ? "" : "  [info]");
    return worst;
}

static int grads_identical(const lt_gpt2 *a, const lt_gpt2 *b) {
    for (int i = 0; i < a->num_tensors; i++)
        if (memcmp(a->params[i].grad, b->params[i].grad, a->params[i].numel * sizeof(float))) return 0;
    return 1;
}

/* every gradient times s (a power of two: exact) */
static void scale_grads(lt_gpt2 *m, float s) {
    for (int i = 0; i < m->num_tensors; i++)
        for (size_t j = 0; j < m->params[i].numel; j++) m->params[i].grad[j] *= s;
}

/* the L2 norm of the host gradients, in double (non-finite when any gradient is) */
static double host_norm(const lt_gpt2 *m) {
    double s = 0.0;
    for (int i = 0; i < m->num_tensors; i++)
        for (size_t j = 0; j < m->params[i].numel; j++) s += (double)m->params[i].grad[j] * m->params[i].grad[j];
    return sqrt(s);
}

static void check_plan(const lt_gpt2_dev *d, const lt_gpt2_config *cfg, int B, int T, int ckpt, int per_block,
                       lt_gpt2_precision p, int pure, int head_rows, const char *what) {
    lt_gpt2_dev_memory plan;
    MUST(lt_gpt2_dev_memory_plan(cfg, B, T, ckpt, per_block, p, pure, head_rows, &plan, err, sizeof err));
    size_t got = lt_gpt2_dev_allocated_bytes(d);
    CHECK(plan.total_bytes == got, "%s: memory plan %zu bytes, allocated %zu", what, plan.total_bytes, got);
    CHECK(plan.weight_bytes + plan.weight16_bytes + plan.grad_bytes + plan.activation_bytes + plan.backward_bytes +
                  plan.token_bytes == plan.total_bytes,
          "%s: the plan's parts do not add up", what);
    CHECK(lt_gpt2_dev_peak_bytes(d) >= got, "%s: peak below the current allocation", what);
    printf("  %-44s plan %9zu B = allocated %9zu B%s\n", what, plan.total_bytes, got,
           plan.total_bytes == got ? "" : "  MISMATCH");
}

/* A 16-bit device pass (name "bf16" or "fp16") against the CPU: its loss (checked against tol_loss) and gradients
 * (tol_grad) against the CPU's fp32 pass; the CPU's own 16-bit autocast pass against fp32, and the device against
 * it, reported for scale. */
static void report16(const char *name, float ldev, float lc32, float lc16, double tol_loss, const lt_gpt2 *rdev,
                     const lt_gpt2 *m32, const lt_gpt2 *m16, double tol_grad) {
    char what[3][64];
    snprintf(what[0], sizeof what[0], "%s device vs CPU fp32", name);
    snprintf(what[1], sizeof what[1], "CPU %s (autocast) vs CPU fp32", name);
    snprintf(what[2], sizeof what[2], "%s device vs CPU %s", name, name);
    const double le = rel(ldev, lc32);
    CHECK(le <= tol_loss, "%s loss: device %.7f, CPU fp32 %.7f (rel %.2e > %.2e)", name, ldev, lc32, le, tol_loss);
    printf("  %-44s loss %.6f vs %.6f, err %.2e (tol %.1e)\n", what[0], ldev, lc32, le, tol_loss);
    printf("  %-44s loss %.6f vs %.6f, err %.2e  [info]\n", what[1], lc16, lc32, rel(lc16, lc32));
    printf("  %-44s loss %.6f vs %.6f, err %.2e  [info]\n", what[2], ldev, lc16, rel(ldev, lc16));
    compare_grads(what[0], rdev, m32, tol_grad);
    compare_grads(what[1], m16, m32, -1);
    compare_grads(what[2], rdev, m16, -1);
}

/* Checkpointing on: the plan matches, and a pass gives the loss and gradients of the run without it bit for bit
 * (the gradients downloaded into r, times unscale first: 1, or fp16's 1 / loss scale, a power of two). Leaves
 * checkpointing on. */
static void check_ckpt_identical(lt_gpt2_dev *d, const lt_gpt2_config *cfg, const int32_t *in, const int32_t *tg,
                                 int B, int T, lt_gpt2_precision p, const char *what, float ref_loss,
                                 const lt_gpt2 *ref, lt_gpt2 *r, float unscale) {
    float loss;
    lt_gpt2_dev_set_checkpointing(d, 1);
    MUST(lt_gpt2_dev_set_batch(d, B, T, err, sizeof err));
    check_plan(d, cfg, B, T, 1, 0, p, 0, 0, what);
    dev_pass(d, in, tg, B, T, &loss);
    MUST(lt_gpt2_dev_download_grads(d, r, err, sizeof err));
    if (unscale != 1.0f) scale_grads(r, unscale);
    CHECK(memcmp(&loss, &ref_loss, sizeof loss) == 0, "%s: loss %.9g differs from %.9g", what, loss, ref_loss);
    const int same = grads_identical(r, ref);
    CHECK(same, "%s: gradients differ from the run without it", what);
    printf("  %-44s %s\n", what, same ? "bit-identical to the run without" : "DIFFERENT");
}

/* ---- the callback of per-block backward ---- */

typedef struct {
    int n, first[64], count[64];
    const lt_gpt2_dev *d; /* NULL on the CPU */
    const lt_gpt2 *ref;   /* the device's full-gradient run */
    int mismatches;
    float *tmp;
} cb_log;

static lt_status record(void *ctx, int first, int count) {
    cb_log *g = ctx;
    if (g->n < 64) g->first[g->n] = first, g->count[g->n] = count;
    g->n++;
    if (!g->d) return LT_OK;
    /* the group's gradients are queued, not done: wait, then read them as an optimizer would */
    MUST(lt_gpt2_dev_sync((lt_gpt2_dev *)g->d, err, sizeof err));
    for (int i = first; i < first + count; i++) {
        const lt_gpt2_dev_param *p = lt_gpt2_dev_param_at(g->d, i);
        if (lt_cuda_memcpy_raw(g->tmp, p->grad, p->numel * sizeof(float), 1, err, sizeof err)) {
            fprintf(stderr, "gpu_gpt2_model: %s\n", err);
            exit(2);
        }
        if (memcmp(g->tmp, g->ref->params[i].grad, p->numel * sizeof(float))) {
            g->mismatches++;
            fprintf(stderr, "  per-block gradient of %s differs from the full run\n", g->ref->params[i].name);
        }
    }
    return LT_OK;
}

/* ---- AdamW ---- */

static lt_optim *adamw(const lt_gpt2 *m, const lt_gpt2_dev *d, lt_dtype pdt) {
    lt_hparams hp = lt_hparams_default();
    hp.lr = ADAM_LR;
    hp.weight_decay = 0.1;
    lt_optim *o = lt_optim_create("adamw_torch", "", &hp, err, sizeof err);
    if (!o) {
        fprintf(stderr, "gpu_gpt2_model: %s\n", err);
        exit(2);
    }
    int no_decay = lt_optim_add_group(o, "weight_decay=0.0");
    for (int i = 0; i < m->num_tensors; i++) {
        const lt_gpt2_param *p = &m->params[i];
        lt_param_desc desc = {.name = p->name, .ndim = p->ndim, .group = p->weight_decay ? 0 : no_decay};
        desc.shape[0] = p->shape[0], desc.shape[1] = p->shape[1];
        if (d) {
            const lt_gpt2_dev_param *q = lt_gpt2_dev_param_at(d, i);
            desc.data = pdt == LT_DTYPE_BF16 ? (void *)q->data16 : (void *)q->data;
            desc.dtype = pdt;
            desc.grad = q->grad;
            desc.device = 1;
        } else {
            desc.data = p->data, desc.grad = p->grad;
        }
        if (lt_optim_add_param(o, &desc) < 0) {
            fprintf(stderr, "gpu_gpt2_model: add_param %s: %s\n", p->name, lt_optim_error(o));
            exit(2);
        }
    }
    if (d) MUST(lt_optim_set_stream(o, lt_gpt2_dev_stream(d)));
    return o;
}

static void step(lt_optim *o, float grad_scale) {
    if (lt_optim_step(o, grad_scale) != LT_OK) {
        fprintf(stderr, "gpu_gpt2_model: step: %s\n", lt_optim_error(o));
        exit(2);
    }
}

/* 3 AdamW steps on both sides (each on its own batch), then a last forward; device precision p. */
static void adam_steps(const lt_gpt2 *m0, int B, int T, lt_gpt2_precision p, int32_t *const in[4],
                       int32_t *const tg[4]) {
    const char *pn = p == LT_GPT2_BF16 ? "bf16" : p == LT_GPT2_F16 ? "fp16" : "fp32";
    lt_gpt2 *mc = clone(m0), *back = clone(m0);
    lt_gpt2_dev *d;
    MUST(lt_gpt2_dev_create(m0, NULL, &d, err, sizeof err));
    MUST(lt_gpt2_dev_set_precision(d, p, 0, err, sizeof err));
    MUST(lt_gpt2_dev_set_batch(d, B, T, err, sizeof err));
    MUST(lt_gpt2_set_precision(mc, p, 0, err, sizeof err));
    MUST(lt_gpt2_set_batch(mc, B, T, err, sizeof err));
    lt_optim *oc = adamw(mc, NULL, LT_DTYPE_F32), *od = adamw(mc, d, LT_DTYPE_F32);
    /* fp16: loss-scaled on both sides as the trainer does, the step unscaling (1 / scale: exact) */
    const float ls = p == LT_GPT2_F16 ? F16_SCALE : 1.0f;
    lt_gpt2_dev_set_loss_scale(d, ls);
    mc->loss_scale = ls;
    double tol = p == LT_GPT2_BF16 ? TOL_BF16_LOSS : p == LT_GPT2_F16 ? TOL_F16_LOSS : TOL_LOSS, worst = 0.0;
    for (int s = 0; s < 4; s++) {
        float lc, ld;
        if (s < 3) {
            cpu_pass(mc, in[s], tg[s], B, T, &lc);
            dev_pass(d, in[s], tg[s], B, T, &ld);
            step(oc, 1.0f / ls);
            step(od, 1.0f / ls);
            MUST(lt_gpt2_dev_refresh_bf16(d, err, sizeof err));
        } else {
            MUST(lt_gpt2_forward(mc, in[s], tg[s], B, T, err, sizeof err));
            lc = mc->loss;
            MUST(lt_gpt2_dev_forward(d, in[s], tg[s], B, T, &ld, err, sizeof err));
        }
        double e = rel(ld, lc);
        CHECK(e <= tol, "AdamW %s: loss before step %d: device %.7f, CPU %.7f (rel %.2e > %.1e)", pn, s + 1, ld, lc, e,
              tol);
        if (!(e <= worst)) worst = e;
    }
    printf("  %-44s worst loss err %.2e (tol %.1e)\n",
           p == LT_GPT2_BF16   ? "AdamW x3 bf16, losses vs CPU bf16"
           : p == LT_GPT2_F16 ? "AdamW x3 fp16 (scaled), losses vs CPU fp16"
                              : "AdamW x3 fp32, losses vs CPU",
           worst, tol);
    MUST(lt_optim_sync(od));
    MUST(lt_gpt2_dev_download(d, back, err, sizeof err));
    double wmax = 0.0, moved = 0.0;
    for (size_t i = 0; i < m0->memory_floats; i++) {
        double e = fabs((double)back->param_memory[i] - (double)mc->param_memory[i]);
        if (!(e <= wmax)) wmax = e;
        double mv = fabs((double)mc->param_memory[i] - (double)m0->param_memory[i]);
        if (mv > moved) moved = mv;
    }
    if (p == LT_GPT2_F32) {
        CHECK(wmax <= TOL_ADAM_W, "AdamW fp32: weights differ by %.3g after 3 steps (tol %.3g)", wmax, TOL_ADAM_W);
        printf("  %-44s max |w_dev - w_cpu| %.2e (tol %.0e; the steps moved them up to %.2e)\n",
               "AdamW x3 fp32, weights", wmax, TOL_ADAM_W, moved);
    } else {
        /* the 16-bit copy the compute reads must be the masters rounded, after the refresh */
        int bad = 0;
        for (int i = 0; i < m0->num_tensors; i++) {
            const lt_gpt2_dev_param *q = lt_gpt2_dev_param_at(d, i);
            uint16_t *h = malloc(q->numel * sizeof *h);
            if (!h || lt_cuda_memcpy_raw(h, q->data16, q->numel * sizeof *h, 1, err, sizeof err)) exit(2);
            for (size_t j = 0; j < q->numel; j++)
                bad += h[j] != (p == LT_GPT2_F16 ? lt_f32_to_f16(back->params[i].data[j])
                                                 : lt_f32_to_bf16(back->params[i].data[j]));
            free(h);
        }
        CHECK(bad == 0, "AdamW %s: %d %s weights are not the rounded masters after refresh", pn, bad, pn);
        char label[48];
        snprintf(label, sizeof label, "AdamW x3 %s, weights", pn);
        printf("  %-44s %s copy = rounded masters: %s; max |w_dev - w_cpu| %.2e [info]\n", label, pn,
               bad ? "NO" : "yes", wmax);
    }
    lt_optim_free(oc);
    lt_optim_free(od);
    lt_gpt2_dev_free(d);
    lt_gpt2_free(mc);
    lt_gpt2_free(back);
}

/* Stepping inside backward: per-block gradients (with checkpointing) and lt_optim_step_param on each group as the
 * callback hands it over, against full gradients and lt_optim_step, 2 steps each: the same gradient bits reach the
 * same kernels, so the weights must come out bit-identical. */
typedef struct {
    lt_optim *o;
    int steps;
} in_backward;

static lt_status step_group(void *ctx, int first, int count) {
    in_backward *ib = ctx;
    for (int i = first; i < first + count; i++) {
        lt_status st = lt_optim_step_param(ib->o, i, 1.0f);
        if (st) return st;
        ib->steps++;
    }
    return LT_OK;
}

static void step_in_backward(const lt_gpt2 *m0, int B, int T, int32_t *const in[4], int32_t *const tg[4]) {
    lt_gpt2_dev *d1, *d2;
    MUST(lt_gpt2_dev_create(m0, NULL, &d1, err, sizeof err));
    MUST(lt_gpt2_dev_create(m0, NULL, &d2, err, sizeof err));
    MUST(lt_gpt2_dev_set_batch(d1, B, T, err, sizeof err));
    lt_gpt2_dev_set_checkpointing(d2, 1);
    MUST(lt_gpt2_dev_set_grad_per_block(d2, 1, err, sizeof err));
    MUST(lt_gpt2_dev_set_batch(d2, B, T, err, sizeof err));
    lt_optim *o1 = adamw(m0, d1, LT_DTYPE_F32), *o2 = adamw(m0, d2, LT_DTYPE_F32);
    in_backward ib = {.o = o2};
    for (int s = 0; s < 2; s++) {
        float l1, l2;
        dev_pass(d1, in[s], tg[s], B, T, &l1);
        step(o1, 1.0f);
        MUST(lt_gpt2_dev_zero_grad(d2, err, sizeof err)); /* wte, wpe and ln_f keep their own buffers */
        MUST(lt_gpt2_dev_forward(d2, in[s], tg[s], B, T, &l2, err, sizeof err));
        MUST(lt_gpt2_dev_backward_cb(d2, step_group, &ib, err, sizeof err));
        CHECK(memcmp(&l1, &l2, sizeof l1) == 0, "step inside backward: loss %d differs", s);
    }
    CHECK(ib.steps == 2 * m0->num_tensors, "step inside backward: %d parameter steps, expected %d", ib.steps,
          2 * m0->num_tensors);
    MUST(lt_optim_sync(o1));
    MUST(lt_optim_sync(o2));
    lt_gpt2 *w1 = clone(m0), *w2 = clone(m0);
    MUST(lt_gpt2_dev_download(d1, w1, err, sizeof err));
    MUST(lt_gpt2_dev_download(d2, w2, err, sizeof err));
    int same = memcmp(w1->param_memory, w2->param_memory, m0->memory_floats * sizeof(float)) == 0;
    CHECK(same, "step inside backward: weights differ from full gradients + lt_optim_step");
    printf("  %-44s %s\n", "AdamW x2 inside backward (per-block) vs after", same ? "bit-identical" : "DIFFERENT");
    lt_optim_free(o1), lt_optim_free(o2);
    lt_gpt2_dev_free(d1), lt_gpt2_dev_free(d2);
    lt_gpt2_free(w1), lt_gpt2_free(w2);
}

static void run_shape(const shape *s, uint64_t seed) {
    lt_gpt2_config cfg = {.vocab_size = s->V, .n_positions = s->P, .n_embd = s->C, .n_layer = s->L,
                          .n_head = s->NH, .layer_norm_epsilon = 1e-5};
    const int B = s->B, T = s->T;
    const size_t N = (size_t)B * (size_t)T;
    printf("L %d C %d NH %d V %d, B %d T %d\n", s->L, s->C, s->NH, s->V, B, T);
    rng = seed;
    lt_gpt2 *m = random_model(&cfg, seed);
    int32_t *in[4], *tg[4];
    for (int k = 0; k < 4; k++) {
        in[k] = malloc(N * sizeof(int32_t));
        tg[k] = malloc(N * sizeof(int32_t));
        if (!in[k] || !tg[k]) exit(2);
        for (size_t i = 0; i < N; i++) in[k][i] = (int32_t)(next32() % (uint32_t)s->V);
        for (size_t i = 0; i < N; i++) tg[k][i] = (int32_t)(next32() % (uint32_t)s->V);
    }

    /* CPU fp32 and CPU bf16 (the autocast emulation) */
    float lc32, lc16;
    MUST(lt_gpt2_set_batch(m, B, T, err, sizeof err));
    cpu_pass(m, in[0], tg[0], B, T, &lc32);
    lt_gpt2 *m16 = clone(m);
    MUST(lt_gpt2_set_precision(m16, LT_GPT2_BF16, 0, err, sizeof err));
    MUST(lt_gpt2_set_batch(m16, B, T, err, sizeof err));
    cpu_pass(m16, in[0], tg[0], B, T, &lc16);

    lt_gpt2 *r32 = new_model(&cfg), *r = new_model(&cfg), *r16 = new_model(&cfg), *rf16 = new_model(&cfg);
    lt_gpt2_dev *d;
    MUST(lt_gpt2_dev_create(m, NULL, &d, err, sizeof err));
    CHECK(lt_gpt2_dev_num_tensors(d) == m->num_tensors, "tensor count");

    /* errors */
    float loss;
    CHECK(lt_gpt2_dev_forward(d, in[0], tg[0], B, T, &loss, err, sizeof err) == LT_ERR_STATE,
          "forward before set_batch must be refused");
    CHECK(lt_gpt2_dev_set_precision(d, LT_GPT2_F16, 1, err, sizeof err) == LT_ERR_ARG && strstr(err, "fp16"),
          "pure fp16 parameters must be refused, naming fp16: '%s'", err);
    double dn, hn = 0.0, cn = 0.0;
    CHECK(lt_gpt2_dev_grad_norm(d, &dn, err, sizeof err) == LT_ERR_STATE, "grad_norm before set_batch");
    MUST(lt_gpt2_dev_set_batch(d, B, T, err, sizeof err));
    CHECK(lt_gpt2_dev_backward(d, err, sizeof err) == LT_ERR_STATE, "backward without forward must be refused");
    in[0][N - 1] += s->V;
    CHECK(lt_gpt2_dev_forward(d, in[0], tg[0], B, T, &loss, err, sizeof err) == LT_ERR_ARG,
          "a bad token id must be refused");
    in[0][N - 1] -= s->V;

    /* fp32 */
    check_plan(d, &cfg, B, T, 0, 0, LT_GPT2_F32, 0, 0, "fp32");
    float ld32;
    dev_pass(d, in[0], tg[0], B, T, &ld32);
    MUST(lt_gpt2_dev_download_grads(d, r32, err, sizeof err));
    double le = rel(ld32, lc32);
    CHECK(le <= TOL_LOSS, "fp32 loss: device %.7f, CPU %.7f (rel %.2e)", ld32, lc32, le);
    printf("  %-44s loss %.6f vs %.6f, err %.2e (tol %.0e)\n", "fp32 device vs CPU", ld32, lc32, le, TOL_LOSS);
    compare_grads("fp32 device vs CPU", r32, m, TOL_GRAD);

    /* the clipping norm: the device's sum of squares against the same in double on the host */
    MUST(lt_gpt2_dev_grad_norm(d, &dn, err, sizeof err));
    for (int i = 0; i < m->num_tensors; i++)
        for (size_t j = 0; j < m->params[i].numel; j++) {
            hn += (double)r32->params[i].grad[j] * r32->params[i].grad[j];
            cn += (double)m->params[i].grad[j] * m->params[i].grad[j];
        }
    hn = sqrt(hn), cn = sqrt(cn);
    CHECK(rel(dn, hn) <= 1e-12, "grad_norm %.17g, the downloaded gradients' %.17g", dn, hn);
    CHECK(rel(dn, cn) <= TOL_LOSS, "grad_norm %.9g, the CPU gradients' %.9g", dn, cn);
    printf("  %-44s %.9g; of its gradients in double: err %.1e; CPU's: err %.1e\n", "fp32 grad_norm", dn,
           rel(dn, hn), rel(dn, cn));

    /* checkpointing: bit for bit */
    check_ckpt_identical(d, &cfg, in[0], tg[0], B, T, LT_GPT2_F32, "fp32 checkpointing", ld32, r32, r, 1.0f);

    /* per-block gradients and the callback, with checkpointing (how stepping inside backward runs) */
    MUST(lt_gpt2_dev_set_grad_per_block(d, 1, err, sizeof err));
    check_plan(d, &cfg, B, T, 1, 1, LT_GPT2_F32, 0, 0, "fp32 checkpointing + per-block gradients");
    cb_log dl = {.d = d, .ref = r32}, cl = {0};
    dl.tmp = malloc(m->params[LT_GPT2_WTE].numel * sizeof(float) + 4 * (size_t)s->C * (size_t)s->C * sizeof(float));
    if (!dl.tmp) exit(2);
    MUST(lt_gpt2_dev_zero_grad(d, err, sizeof err));
    MUST(lt_gpt2_dev_forward(d, in[0], tg[0], B, T, &loss, err, sizeof err));
    MUST(lt_gpt2_dev_backward_cb(d, record, &dl, err, sizeof err));
    lt_gpt2 *mo = clone(m);
    MUST(lt_gpt2_set_batch(mo, B, T, err, sizeof err));
    MUST(lt_gpt2_forward(mo, in[0], tg[0], B, T, err, sizeof err));
    MUST(lt_gpt2_backward_cb(mo, record, &cl, err, sizeof err));
    int same_order = dl.n == cl.n && dl.n <= 64;
    for (int i = 0; same_order && i < dl.n; i++)
        same_order = dl.first[i] == cl.first[i] && dl.count[i] == cl.count[i];
    CHECK(same_order, "per-block callback: %d groups on the device, %d on the CPU, or another order", dl.n, cl.n);
    CHECK(dl.n == s->L + 2, "per-block callback: %d groups, expected %d", dl.n, s->L + 2);
    CHECK(dl.mismatches == 0, "per-block callback: %d tensors differ from the full-gradient run", dl.mismatches);
    printf("  %-44s %d groups in the CPU's order: %s; gradients %s\n", "per-block backward_cb", dl.n,
           same_order ? "yes" : "NO", dl.mismatches ? "DIFFERENT" : "bit-identical");
    free(dl.tmp);
    lt_gpt2_free(mo);
    MUST(lt_gpt2_dev_set_grad_per_block(d, 0, err, sizeof err));
    lt_gpt2_dev_set_checkpointing(d, 0);

    /* bf16 */
    MUST(lt_gpt2_dev_set_precision(d, LT_GPT2_BF16, 0, err, sizeof err));
    MUST(lt_gpt2_dev_set_batch(d, B, T, err, sizeof err));
    check_plan(d, &cfg, B, T, 0, 0, LT_GPT2_BF16, 0, 0, "bf16");
    float ld16;
    dev_pass(d, in[0], tg[0], B, T, &ld16);
    MUST(lt_gpt2_dev_download_grads(d, r16, err, sizeof err));
    report16("bf16", ld16, lc32, lc16, TOL_BF16_LOSS, r16, m, m16, TOL_BF16_GRAD);

    check_ckpt_identical(d, &cfg, in[0], tg[0], B, T, LT_GPT2_BF16, "bf16 checkpointing", ld16, r16, r, 1.0f);
    lt_gpt2_dev_set_checkpointing(d, 0);

    /* fp16 (from bf16: the 16-bit copy is refilled in fp16), loss-scaled by the trainer's first scale; the
     * gradients unscaled on the host (a power of two: exact) */
    MUST(lt_gpt2_dev_set_precision(d, LT_GPT2_F16, 0, err, sizeof err));
    MUST(lt_gpt2_dev_set_batch(d, B, T, err, sizeof err));
    check_plan(d, &cfg, B, T, 0, 0, LT_GPT2_F16, 0, 0, "fp16");
    float lf16, lcf16;
    lt_gpt2_dev_set_loss_scale(d, F16_SCALE);
    dev_pass(d, in[0], tg[0], B, T, &lf16);
    MUST(lt_gpt2_dev_download_grads(d, rf16, err, sizeof err));
    double nf16;
    MUST(lt_gpt2_dev_grad_norm(d, &nf16, err, sizeof err));
    CHECK(isfinite(nf16), "fp16 at loss scale %g: gradient norm %g, expected finite", (double)F16_SCALE, nf16);
    scale_grads(rf16, 1.0f / F16_SCALE);
    lt_gpt2 *mf16 = clone(m);
    MUST(lt_gpt2_set_precision(mf16, LT_GPT2_F16, 0, err, sizeof err));
    MUST(lt_gpt2_set_batch(mf16, B, T, err, sizeof err));
    mf16->loss_scale = F16_SCALE;
    cpu_pass(mf16, in[0], tg[0], B, T, &lcf16);
    scale_grads(mf16, 1.0f / F16_SCALE);
    report16("fp16", lf16, lc32, lcf16, TOL_F16_LOSS, rf16, m, mf16, TOL_F16_GRAD);

    check_ckpt_identical(d, &cfg, in[0], tg[0], B, T, LT_GPT2_F16, "fp16 checkpointing", lf16, rf16, r,
                         1.0f / F16_SCALE);
    lt_gpt2_dev_set_checkpointing(d, 0);
    MUST(lt_gpt2_dev_set_batch(d, B, T, err, sizeof err));

    /* overflow: at 2^22 the target logits' gradients (about -scale / N) exceed fp16's 65504 and become -inf, a
     * few entries of dlogits only; the norm must come out non-finite (what the trainer's skip tests), on the
     * device as on the CPU, while the loss (forward only) is unchanged */
    lt_gpt2_dev_set_loss_scale(d, F16_OVERFLOW_SCALE);
    dev_pass(d, in[0], tg[0], B, T, &loss);
    MUST(lt_gpt2_dev_grad_norm(d, &dn, err, sizeof err));
    mf16->loss_scale = F16_OVERFLOW_SCALE;
    float lo;
    cpu_pass(mf16, in[0], tg[0], B, T, &lo);
    double cno = host_norm(mf16);
    CHECK(!isfinite(dn), "fp16 at loss scale %g: device gradient norm %g, expected inf or NaN",
          (double)F16_OVERFLOW_SCALE, dn);
    CHECK(!isfinite(cno), "fp16 at loss scale %g: CPU gradient norm %g, expected inf or NaN",
          (double)F16_OVERFLOW_SCALE, cno);
    CHECK(memcmp(&loss, &lf16, sizeof loss) == 0, "fp16: the loss scale changed the loss (%.9g vs %.9g)", loss,
          lf16);
    printf("  %-44s device norm %g, CPU norm %g; loss unchanged: %s\n", "fp16 overflow at loss scale 2^22", dn, cno,
           memcmp(&loss, &lf16, sizeof loss) == 0 ? "yes" : "NO");
    /* below 2^22 the logit gradients fit in fp16 and the first overflow comes in the weight gradients' sums over
     * the N rows, rounded to fp16 on both sides (torch.autocast's fp16 op gradient): halving the scale from 2^21,
     * the device must overflow exactly where the CPU does, down to the first clean scale (the trainer's skips) */
    int probes = 0, agree = 1;
    float clean = 0.0f;
    for (float sc = F16_OVERFLOW_SCALE / 2; sc >= 1.0f && probes < 12; sc /= 2, probes++) {
        double dv, cv;
        lt_gpt2_dev_set_loss_scale(d, sc);
        dev_pass(d, in[0], tg[0], B, T, &loss);
        MUST(lt_gpt2_dev_grad_norm(d, &dv, err, sizeof err));
        mf16->loss_scale = sc;
        cpu_pass(mf16, in[0], tg[0], B, T, &lo);
        cv = host_norm(mf16);
        CHECK(!isfinite(dv) == !isfinite(cv), "fp16 at loss scale %g: device norm %g, CPU norm %g", (double)sc, dv,
              cv);
        agree &= !isfinite(dv) == !isfinite(cv);
        if (isfinite(dv) && isfinite(cv)) {
            clean = sc;
            break;
        }
    }
    CHECK(clean > 0.0f, "fp16: no clean loss scale found below 2^21");
    printf("  %-44s first clean scale halving from 2^21: %g, device and CPU %s\n", "fp16 overflow threshold",
           (double)clean, agree ? "agree at every scale" : "DISAGREE");
    /* and the next pass at a good scale is clean again (nothing sticky on the device) */
    lt_gpt2_dev_set_loss_scale(d, F16_SCALE);
    dev_pass(d, in[0], tg[0], B, T, &loss);
    MUST(lt_gpt2_dev_grad_norm(d, &dn, err, sizeof err));
    CHECK(dn == nf16, "fp16 after an overflow: norm %.17g, before it %.17g", dn, nf16);
    lt_gpt2_dev_set_loss_scale(d, 1.0f);
    lt_gpt2_free(mf16);

    /* pure bf16: the same weights as the bf16 copy, so the same bits */
    MUST(lt_gpt2_dev_set_precision(d, LT_GPT2_BF16, 1, err, sizeof err));
    MUST(lt_gpt2_dev_set_batch(d, B, T, err, sizeof err));
    check_plan(d, &cfg, B, T, 0, 0, LT_GPT2_BF16, 1, 0, "pure bf16");
    CHECK(lt_gpt2_dev_param_at(d, 0)->data == NULL && lt_gpt2_dev_param_at(d, 0)->data16 != NULL,
          "pure bf16: fp32 pointers must be gone");
    dev_pass(d, in[0], tg[0], B, T, &loss);
    MUST(lt_gpt2_dev_download_grads(d, r, err, sizeof err));
    CHECK(memcmp(&loss, &ld16, sizeof loss) == 0 && grads_identical(r, r16),
          "pure bf16: loss or gradients differ from bf16 compute with fp32 masters");
    MUST(lt_gpt2_dev_download(d, r, err, sizeof err));
    int bad = 0;
    for (size_t i = 0; i < m->memory_floats; i++)
        bad += r->param_memory[i] != lt_bf16_to_f32(lt_f32_to_bf16(m->param_memory[i]));
    CHECK(bad == 0, "pure bf16: %d downloaded weights are not the rounded originals", bad);
    printf("  %-44s %s; download = rounded weights: %s\n", "pure bf16 vs bf16 with fp32 masters",
           memcmp(&loss, &ld16, sizeof loss) == 0 && grads_identical(r, r16) ? "bit-identical" : "DIFFERENT",
           bad ? "NO" : "yes");
    /* back to fp32 and the original weights (leaving pure bf16 expands the rounded ones) */
    MUST(lt_gpt2_dev_set_precision(d, LT_GPT2_F32, 0, err, sizeof err));
    MUST(lt_gpt2_dev_upload(d, m, err, sizeof err));
    MUST(lt_gpt2_dev_download(d, r, err, sizeof err));
    CHECK(memcmp(r->param_memory, m->param_memory, m->memory_floats * sizeof(float)) == 0,
          "upload then download must give the weights back");
    lt_gpt2_dev_free(d);

    /* made pure bf16 with per-block gradients from the start (the trainer's way): its peak is the planned steady
     * state (no fp32 weights or whole-model gradient on the way), and its loss that of pure bf16 above */
    MUST(lt_gpt2_dev_create_as(m, NULL, LT_GPT2_BF16, 1, 1, &d, err, sizeof err));
    MUST(lt_gpt2_dev_set_batch(d, B, T, err, sizeof err));
    check_plan(d, &cfg, B, T, 0, 1, LT_GPT2_BF16, 1, 0, "pure bf16 + per-block, created so");
    const size_t peak = lt_gpt2_dev_peak_bytes(d), now = lt_gpt2_dev_allocated_bytes(d);
    CHECK(peak == now, "created pure bf16 + per-block: peak %zu bytes above the steady %zu", peak, now);
    MUST(lt_gpt2_dev_forward(d, in[0], tg[0], B, T, &loss, err, sizeof err));
    CHECK(memcmp(&loss, &ld16, sizeof loss) == 0, "created pure bf16: loss %.9g, pure bf16 by set_precision %.9g",
          (double)loss, (double)ld16);
    printf("  %-44s peak %9zu B = allocated %9zu B; loss %s\n", "pure bf16 + per-block, created so", peak, now,
           memcmp(&loss, &ld16, sizeof loss) == 0 ? "bit-identical" : "DIFFERENT");
    lt_gpt2_dev_free(d);

    /* optimizer steps with device parameters */
    adam_steps(m, B, T, LT_GPT2_F32, in, tg);
    adam_steps(m, B, T, LT_GPT2_BF16, in, tg);
    adam_steps(m, B, T, LT_GPT2_F16, in, tg);
    step_in_backward(m, B, T, in, tg);

    for (int k = 0; k < 4; k++) free(in[k]), free(tg[k]);
    lt_gpt2_free(m), lt_gpt2_free(m16), lt_gpt2_free(r32), lt_gpt2_free(r), lt_gpt2_free(r16), lt_gpt2_free(rf16);
}

/* Dropout (every site on): the device against the CPU with the same seed and stream (the same masks) in fp32
 * (the fp32 tolerances) and bf16 (bf16's), checkpointing bit for bit, the masks really applied (the loss moves),
 * and a forward without dropout again after it is turned off. */
static void check_dropout(const shape *s, uint64_t seed) {
    lt_gpt2_config cfg = {.vocab_size = s->V, .n_positions = s->P, .n_embd = s->C, .n_layer = s->L,
                          .n_head = s->NH, .layer_norm_epsilon = 1e-5, .embd_pdrop = 0.1, .resid_pdrop = 0.2,
                          .attn_pdrop = 0.3};
    const int B = s->B, T = s->T;
    const size_t N = (size_t)B * (size_t)T;
    printf("dropout (embd 0.1, resid 0.2, attn 0.3): L %d C %d NH %d V %d, B %d T %d\n", s->L, s->C, s->NH, s->V, B,
           T);
    rng = seed + 77;
    lt_gpt2 *m = random_model(&cfg, seed + 77);
    int32_t *in = malloc(N * sizeof(int32_t)), *tg = malloc(N * sizeof(int32_t));
    if (!in || !tg) exit(2);
    for (size_t i = 0; i < N; i++) in[i] = (int32_t)(next32() % (uint32_t)s->V), tg[i] = (int32_t)(next32() % (uint32_t)s->V);
    lt_gpt2 *m16 = clone(m), *r = new_model(&cfg), *r2 = new_model(&cfg);
    float lc32, lc16, lnone, ld, ld16, l;
    MUST(lt_gpt2_set_batch(m, B, T, err, sizeof err));
    cpu_pass(m, in, tg, B, T, &lnone);
    for (int i = 0; i < m->num_tensors; i++) /* the gradients without dropout, kept in r2 */
        memcpy(r2->params[i].grad, m->params[i].grad, m->params[i].numel * sizeof(float));
    lt_gpt2_set_dropout(m, 1, 4242, 9);
    cpu_pass(m, in, tg, B, T, &lc32);
    MUST(lt_gpt2_set_precision(m16, LT_GPT2_BF16, 0, err, sizeof err));
    MUST(lt_gpt2_set_batch(m16, B, T, err, sizeof err));
    lt_gpt2_set_dropout(m16, 1, 4242, 9);
    cpu_pass(m16, in, tg, B, T, &lc16);
    /* The masks really applied: every gradient moves, by more than 1e-3 of its largest value (unapplied masks
     * move none, rounding about 1e-6; seed 1234 moves every one by 1.7e-2 or more, ln_f.bias the least). The loss
     * alone says little: a random model's outputs are near uniform, so its loss can move by 6e-5 of itself (L 3,
     * V 1031: 6.92440 against 6.92482). */
    double moved = INFINITY;
    int least = 0;
    for (int i = 0; i < m->num_tensors; i++) {
        const double e = rel_err(m->params[i].grad, r2->params[i].grad, m->params[i].numel);
        if (e < moved) moved = e, least = i;
    }
    CHECK(lc32 != lnone && moved > 1e-3, "dropout left the CPU pass unchanged: loss %.7f vs %.7f, %s's gradient moved "
          "by %.2e of its largest value", lc32, lnone, m->params[least].name, moved);
    printf("  %-44s loss %.6f vs %.6f; every gradient moved, the least %.2e (%s)\n", "CPU dropout vs none", lc32,
           lnone, moved, m->params[least].name);

    lt_gpt2_dev *d;
    MUST(lt_gpt2_dev_create(m, NULL, &d, err, sizeof err));
    MUST(lt_gpt2_dev_set_batch(d, B, T, err, sizeof err));
    lt_gpt2_dev_set_dropout(d, 1, 4242, 9);
    dev_pass(d, in, tg, B, T, &ld);
    MUST(lt_gpt2_dev_download_grads(d, r, err, sizeof err));
    const double le = rel(ld, lc32);
    CHECK(le <= TOL_LOSS, "fp32 dropout loss: device %.7f, CPU %.7f (rel %.2e)", ld, lc32, le);
    printf("  %-44s loss %.6f vs %.6f, err %.2e (tol %.0e); without dropout %.6f\n", "fp32 dropout device vs CPU", ld,
           lc32, le, TOL_LOSS, lnone);
    compare_grads("fp32 dropout device vs CPU", r, m, TOL_GRAD);
    check_ckpt_identical(d, &cfg, in, tg, B, T, LT_GPT2_F32, "fp32 dropout checkpointing", ld, r, r2, 1.0f);
    lt_gpt2_dev_set_dropout(d, 0, 4242, 9);
    dev_pass(d, in, tg, B, T, &l);
    CHECK(rel(l, lnone) <= TOL_LOSS, "dropout off: device loss %.7f, CPU without dropout %.7f", l, lnone);
    printf("  %-44s loss %.6f vs %.6f\n", "dropout off again: device vs CPU", l, lnone);

    lt_gpt2_dev_set_checkpointing(d, 0);
    MUST(lt_gpt2_dev_set_precision(d, LT_GPT2_BF16, 0, err, sizeof err));
    MUST(lt_gpt2_dev_set_batch(d, B, T, err, sizeof err));
    lt_gpt2_dev_set_dropout(d, 1, 4242, 9);
    dev_pass(d, in, tg, B, T, &ld16);
    MUST(lt_gpt2_dev_download_grads(d, r, err, sizeof err));
    report16("bf16 dropout", ld16, lc32, lc16, TOL_BF16_LOSS, r, m, m16, TOL_BF16_GRAD);
    check_ckpt_identical(d, &cfg, in, tg, B, T, LT_GPT2_BF16, "bf16 dropout checkpointing", ld16, r, r2, 1.0f);
    lt_gpt2_dev_free(d);
    free(in), free(tg);
    lt_gpt2_free(m), lt_gpt2_free(m16), lt_gpt2_free(r), lt_gpt2_free(r2);
}

/* ---- the lm head in chunks (lt_gpt2_dev_set_head_rows, the trainer's mode) ---- */

/* L 1, C 32, NH 2, V 300, B 3, T 29: 87 rows in chunks of at most 16 (6 chunks of 15, the last 12), and enough rows
 * that fp16 chunks too (72 rows of 320 two-byte logits saved outweigh the 300 x 32 fp32 head sum); V 300 is split
 * into 256 + 44 rows by the head's GEMMs */
static const shape CHUNK_SHAPE = {1, 32, 2, 300, 32, 3, 29};
#define CHUNK_ROWS 16

typedef struct {
    const lt_gpt2_dev *d;
    float *wte; /* wte's gradient, read when its group is handed over */
    int groups;
} wte_grab;

static lt_status grab_wte(void *ctx, int first, int count) {
    wte_grab *g = ctx;
    g->groups++;
    if (first != LT_GPT2_WTE) return LT_OK;
    (void)count;
    MUST(lt_gpt2_dev_sync((lt_gpt2_dev *)g->d, err, sizeof err));
    const lt_gpt2_dev_param *p = lt_gpt2_dev_param_at(g->d, LT_GPT2_WTE);
    if (lt_cuda_memcpy_raw(g->wte, p->grad, p->numel * sizeof(float), 1, err, sizeof err)) {
        fprintf(stderr, "gpu_gpt2_model: %s\n", err);
        exit(2);
    }
    return LT_OK;
}

/* A device model of m's weights in precision p with the head in chunks (rows > 0) or whole (0), sized B x T. */
static lt_gpt2_dev *head_model(const lt_gpt2 *m, lt_gpt2_precision p, int rows, int ckpt, int per_block, int B,
                               int T) {
    lt_gpt2_dev *d;
    MUST(lt_gpt2_dev_create_as(m, NULL, p, 0, per_block, &d, err, sizeof err));
    lt_gpt2_dev_set_checkpointing(d, ckpt);
    lt_gpt2_dev_set_head_rows(d, rows);
    MUST(lt_gpt2_dev_set_batch(d, B, T, err, sizeof err));
    return d;
}

/* The device model with the head in chunks against the same model with it whole and against the CPU fp32 pass,
 * in fp32, bf16 and fp16 (loss-scaled): the plan equal to the allocation (the logits buffer one chunk, fp16 with
 * its fp32 head sum); the loss within the precision's loss tolerance of whole mode's and of the CPU's; every
 * gradient within the precision's tolerance of the CPU's (as whole mode is held, above), and wte's of whole
 * mode's. The chunks' GEMMs have fewer rows than the whole one, and on a GPU cuBLAS may then sum in another order
 * (a kernel per shape, split-K for thin ones); in 16-bit a logit or a d ln_f value can round one step apart, and
 * that moves gradients by up to the precision's noise, so 16-bit compares at its tolerances (fp32 at TOL_GRAD).
 * fp16 rounds wte's head product once (the chunks' fp32 sum; the whole product): in the wte rows of tokens absent
 * from the inputs (the head's share alone, no embedding gradient) at most 0.5% of the elements may be more than
 * one fp16 step from whole mode's (none in the emulation, whose GEMMs sum in one order; rounding each chunk's
 * product instead, tried as a mutation, puts 2.1% of them further: 151 of 7072). eval_loss gives the training loss bit for bit
 * and leaves every gradient as it was; two accumulated micro-batches as in whole mode; the trainer's set c layout
 * (per-block gradients, checkpointing, backward_cb) hands over wte's full gradient last; and a forward without
 * targets is refused when its rows exceed a chunk, accepted when they fit one. */
static void check_head_chunks(uint64_t seed) {
    const shape *s = &CHUNK_SHAPE;
    lt_gpt2_config cfg = {.vocab_size = s->V, .n_positions = s->P, .n_embd = s->C, .n_layer = s->L,
                          .n_head = s->NH, .layer_norm_epsilon = 1e-5};
    const int B = s->B, T = s->T;
    const size_t N = (size_t)B * (size_t)T;
    printf("the lm head in chunks of at most %d rows: L %d C %d NH %d V %d, B %d T %d\n", CHUNK_ROWS, s->L, s->C,
           s->NH, s->V, B, T);
    rng = seed + 99;
    lt_gpt2 *m = random_model(&cfg, seed + 99);
    int32_t *in[2], *tg[2];
    for (int k = 0; k < 2; k++) {
        in[k] = malloc(N * sizeof(int32_t)), tg[k] = malloc(N * sizeof(int32_t));
        if (!in[k] || !tg[k]) exit(2);
        for (size_t i = 0; i < N; i++)
            in[k][i] = (int32_t)(next32() % (uint32_t)s->V), tg[k][i] = (int32_t)(next32() % (uint32_t)s->V);
    }
    float lc32;
    MUST(lt_gpt2_set_batch(m, B, T, err, sizeof err));
    cpu_pass(m, in[0], tg[0], B, T, &lc32);
    lt_gpt2 *rw = new_model(&cfg), *rc = new_model(&cfg), *re = new_model(&cfg);
    const size_t nw = m->params[LT_GPT2_WTE].numel;

    const lt_gpt2_precision precs[3] = {LT_GPT2_F32, LT_GPT2_BF16, LT_GPT2_F16};
    const char *names[3] = {"fp32", "bf16", "fp16"};
    const double tol_loss[3] = {TOL_LOSS, TOL_BF16_LOSS, TOL_F16_LOSS},
                 tol_grad[3] = {TOL_GRAD, TOL_BF16_GRAD, TOL_F16_GRAD},
                 tol_wte[3] = {TOL_GRAD, TOL_BF16_GRAD, TOL_F16_GRAD};
    /* the wte rows whose tokens the inputs do not hold: their gradient is the head's share only */
    char *absent = malloc((size_t)s->V);
    if (!absent) exit(2);
    memset(absent, 1, (size_t)s->V);
    for (size_t i = 0; i < N; i++) absent[in[0][i]] = 0;
    size_t head_only = 0, ulp_off = 0;
    for (int k = 0; k < 3; k++) {
        const lt_gpt2_precision p = precs[k];
        const float ls = p == LT_GPT2_F16 ? F16_SCALE : 1.0f;
        char what[96];
        lt_gpt2_dev *dw = head_model(m, p, 0, 0, 0, B, T), *dc = head_model(m, p, CHUNK_ROWS, 0, 0, B, T);
        snprintf(what, sizeof what, "%s, head in chunks", names[k]);
        check_plan(dc, &cfg, B, T, 0, 0, p, 0, CHUNK_ROWS, what);
        lt_gpt2_dev_layout lay;
        MUST(lt_gpt2_dev_layout_of(&cfg, B, T, 0, p, CHUNK_ROWS, &lay, err, sizeof err));
        CHECK(lay.head_chunk == 15 && (p != LT_GPT2_F16 || lay.bytes[LT_GPT2_DEV_HEADSUM] > 0),
              "%s: the layout's chunk is %zu rows, head sum %zu bytes", names[k], lay.head_chunk,
              lay.bytes[LT_GPT2_DEV_HEADSUM]);
        lt_gpt2_dev_set_loss_scale(dw, ls), lt_gpt2_dev_set_loss_scale(dc, ls);
        float lw, lch, lev;
        dev_pass(dw, in[0], tg[0], B, T, &lw);
        dev_pass(dc, in[0], tg[0], B, T, &lch);
        MUST(lt_gpt2_dev_download_grads(dw, rw, err, sizeof err));
        MUST(lt_gpt2_dev_download_grads(dc, rc, err, sizeof err));
        const double le = rel(lch, lw), lc = rel(lch, lc32);
        CHECK(le <= tol_loss[k], "%s: loss in chunks %.9g, whole %.9g (rel %.2e)", names[k], lch, lw, le);
        CHECK(lc <= tol_loss[k], "%s: loss in chunks %.7f, CPU fp32 %.7f (rel %.2e)", names[k], lch, lc32, lc);
        printf("  %-44s loss vs whole: err %.2e%s; vs CPU fp32: err %.2e (tol %.1e)\n", what, le,
               memcmp(&lch, &lw, sizeof lch) ? "" : " (bit-identical)", lc, tol_loss[k]);
        if (ls != 1.0f) scale_grads(rc, 1.0f / ls), scale_grads(rw, 1.0f / ls);
        snprintf(what, sizeof what, "%s, head in chunks vs CPU fp32", names[k]);
        compare_grads(what, rc, m, tol_grad[k]);
        const double ew = rel_err(rc->params[LT_GPT2_WTE].grad, rw->params[LT_GPT2_WTE].grad, nw);
        CHECK(ew <= tol_wte[k], "%s: wte's gradient in chunks vs whole: err %.3g > %.3g", names[k], ew, tol_wte[k]);
        if (p == LT_GPT2_F16) {
            const float *gc = rc->params[LT_GPT2_WTE].grad, *gw = rw->params[LT_GPT2_WTE].grad;
            double scale = 0.0;
            for (size_t i = 0; i < nw; i++) scale = fmax(scale, fabs((double)gw[i]));
            for (size_t i = 0; i < nw; i++) {
                if (!absent[i / (size_t)s->C]) continue;
                head_only++;
                const double v = fmax(fabs((double)gc[i]), fabs((double)gw[i])) * ls; /* the scaled value */
                int ex;
                frexp(v, &ex); /* v in [2^(ex-1), 2^ex) */
                const double ulp = v >= 0x1p-14 ? ldexp(1.0, ex - 1 - 10) : 0x1p-24;
                ulp_off += fabs((double)gc[i] - (double)gw[i]) * ls > ulp + 1e-6 * scale * ls;
            }
            CHECK(head_only > 0 && ulp_off * 200 <= head_only,
                  "fp16: %zu of %zu elements of wte's head-only gradient more than one fp16 step from whole mode's",
                  ulp_off, head_only);
        }
        snprintf(what, sizeof what, "%s, head in chunks vs whole", names[k]);
        if (p == LT_GPT2_F16)
            printf("  %-44s wte gradient err %.2e (tol %.2e); over one fp16 step: %zu of %zu head-only\n", what, ew,
                   tol_wte[k], ulp_off, head_only);
        else
            printf("  %-44s wte gradient err %.2e (tol %.2e)\n", what, ew, tol_wte[k]);

        /* evaluation: the same loss, no gradient touched (the accumulated ones are still there) */
        MUST(lt_gpt2_dev_eval_loss(dc, in[0], tg[0], B, T, &lev, err, sizeof err));
        MUST(lt_gpt2_dev_download_grads(dc, re, err, sizeof err));
        if (ls != 1.0f) scale_grads(re, 1.0f / ls);
        CHECK(memcmp(&lev, &lch, sizeof lev) == 0, "%s: eval_loss %.9g, training forward %.9g", names[k], lev, lch);
        CHECK(grads_identical(re, rc), "%s: eval_loss changed the gradients", names[k]);
        CHECK(lt_gpt2_dev_backward(dc, err, sizeof err) == LT_ERR_STATE, "%s: a backward after eval_loss", names[k]);
        lt_gpt2_dev_free(dw), lt_gpt2_dev_free(dc);
    }

    /* fp32: two micro-batches accumulated, in chunks and whole */
    {
        lt_gpt2_dev *dw = head_model(m, LT_GPT2_F32, 0, 0, 0, B, T), *dc = head_model(m, LT_GPT2_F32, CHUNK_ROWS, 0, 0,
                                                                                      B, T);
        float l;
        for (int k = 0; k < 2; k++) {
            lt_gpt2_dev *d = k ? dc : dw;
            MUST(lt_gpt2_dev_zero_grad(d, err, sizeof err));
            for (int j = 0; j < 2; j++) {
                MUST(lt_gpt2_dev_forward(d, in[j], tg[j], B, T, &l, err, sizeof err));
                MUST(lt_gpt2_dev_backward(d, err, sizeof err));
            }
            MUST(lt_gpt2_dev_download_grads(d, k ? rc : rw, err, sizeof err));
        }
        compare_grads("fp32, 2 micro-batches: chunks vs whole", rc, rw, TOL_GRAD);
        lt_gpt2_dev_free(dw), lt_gpt2_dev_free(dc);
    }

    /* the trainer's set c layout: per-block gradients, checkpointing, the callback; wte's group comes last, with
     * the head's share (added in the forward) and the embedding's */
    {
        lt_gpt2_dev *dc = head_model(m, LT_GPT2_F32, CHUNK_ROWS, 1, 1, B, T);
        check_plan(dc, &cfg, B, T, 1, 1, LT_GPT2_F32, 0, CHUNK_ROWS, "fp32, chunks + checkpointing + per-block");
        wte_grab g = {.d = dc, .wte = malloc(nw * sizeof(float))};
        if (!g.wte) exit(2);
        float l;
        MUST(lt_gpt2_dev_zero_grad(dc, err, sizeof err));
        MUST(lt_gpt2_dev_forward(dc, in[0], tg[0], B, T, &l, err, sizeof err));
        MUST(lt_gpt2_dev_backward_cb(dc, grab_wte, &g, err, sizeof err));
        const double e = rel_err(g.wte, m->params[LT_GPT2_WTE].grad, nw);
        CHECK(g.groups == s->L + 2 && e <= TOL_GRAD, "chunks + per-block: %d groups, wte's gradient err %.3g",
              g.groups, e);
        printf("  %-44s %d groups; wte's gradient vs CPU: err %.2e\n", "fp32, chunks + checkpointing + per-block",
               g.groups, e);
        free(g.wte);

        /* without targets: refused beyond a chunk, the logits of a batch that fits one */
        float l1;
        CHECK(lt_gpt2_dev_forward(dc, in[0], NULL, B, T, &l1, err, sizeof err) == LT_ERR_STATE &&
                  strstr(err, "chunks") != NULL,
              "a forward without targets beyond one chunk: '%s'", err);
        MUST(lt_gpt2_dev_forward(dc, in[0], NULL, 1, 15, &l1, err, sizeof err));
        MUST(lt_gpt2_dev_sync(dc, err, sizeof err));
        lt_gpt2_dev_free(dc);
    }
    /* label smoothing 0.1 (the Trainer's LabelSmoother): the device model, head in chunks and whole, against the
     * CPU model with it (its loss and gradient held to transformers' by test_gpt2); the loss apart from the plain
     * one, and the evaluation loss the training forward's */
    {
        float lcs, lds, lws, les;
        lt_gpt2_set_label_smoothing(m, 0.1f);
        cpu_pass(m, in[0], tg[0], B, T, &lcs);
        lt_gpt2_dev *dc = head_model(m, LT_GPT2_F32, CHUNK_ROWS, 0, 0, B, T), *dw = head_model(m, LT_GPT2_F32, 0, 0, 0,
                                                                                               B, T);
        lt_gpt2_dev_set_label_smoothing(dc, 0.1f), lt_gpt2_dev_set_label_smoothing(dw, 0.1f);
        dev_pass(dc, in[0], tg[0], B, T, &lds);
        dev_pass(dw, in[0], tg[0], B, T, &lws);
        MUST(lt_gpt2_dev_download_grads(dc, rc, err, sizeof err));
        MUST(lt_gpt2_dev_download_grads(dw, rw, err, sizeof err));
        MUST(lt_gpt2_dev_eval_loss(dc, in[0], tg[0], B, T, &les, err, sizeof err));
        const double e = rel(lds, lcs), ew = rel(lws, lcs);
        CHECK(e <= TOL_LOSS && ew <= TOL_LOSS && fabs(lcs - lc32) > 1e-4 && memcmp(&les, &lds, sizeof les) == 0,
              "label smoothing 0.1: device loss %.9g (whole %.9g, eval %.9g), CPU %.9g, CPU plain %.9g", lds, lws, les,
              lcs, lc32);
        printf("  %-44s loss %.7f (plain %.7f) vs CPU: err %.2e in chunks, %.2e whole\n", "fp32, label smoothing 0.1",
               lds, lc32, e, ew);
        compare_grads("fp32, label smoothing 0.1, chunks vs CPU", rc, m, TOL_GRAD);
        compare_grads("fp32, label smoothing 0.1, whole vs CPU", rw, m, TOL_GRAD);
        lt_gpt2_dev_free(dc), lt_gpt2_dev_free(dw);
        lt_gpt2_set_label_smoothing(m, 0.0f);
    }
    /* NEFTune's noise (alpha 5) on a training forward (dropout on; this config's pdrops are 0): the device adds
     * the CPU's values, so the loss and gradients are the CPU model's; the evaluation loss has none */
    {
        float lcn, ldn, len, lce;
        lt_gpt2_set_neftune(m, 5.0f);
        lt_gpt2_set_dropout(m, 1, 4242, 7);
        cpu_pass(m, in[0], tg[0], B, T, &lcn);
        lt_gpt2_dev *dc = head_model(m, LT_GPT2_F32, CHUNK_ROWS, 0, 0, B, T);
        lt_gpt2_dev_set_neftune(dc, 5.0f);
        lt_gpt2_dev_set_dropout(dc, 1, 4242, 7);
        dev_pass(dc, in[0], tg[0], B, T, &ldn);
        MUST(lt_gpt2_dev_download_grads(dc, rc, err, sizeof err));
        MUST(lt_gpt2_dev_eval_loss(dc, in[0], tg[0], B, T, &len, err, sizeof err));
        MUST(lt_gpt2_eval_loss(m, in[0], tg[0], B, T, err, sizeof err));
        lce = m->loss;
        const double e = rel(ldn, lcn);
        CHECK(e <= TOL_LOSS && fabs(lcn - lc32) > 1e-4 && rel(len, lce) <= TOL_LOSS,
              "NEFTune: device loss %.9g, CPU %.9g (plain %.9g); evaluation %.9g, CPU %.9g", ldn, lcn, lc32, len, lce);
        printf("  %-44s loss %.7f (plain %.7f) vs CPU: err %.2e; evaluation without noise: err %.2e\n",
               "fp32, NEFTune alpha 5", ldn, lc32, e, rel(len, lce));
        compare_grads("fp32, NEFTune alpha 5, chunks vs CPU", rc, m, TOL_GRAD);
        lt_gpt2_dev_free(dc);
        lt_gpt2_set_neftune(m, 0.0f);
        lt_gpt2_set_dropout(m, 0, 0, 0);
    }
    for (int k = 0; k < 2; k++) free(in[k]), free(tg[k]);
    free(absent);
    lt_gpt2_free(m), lt_gpt2_free(rw), lt_gpt2_free(rc), lt_gpt2_free(re);
}

/* Evaluation's top-1 count (run_clm's eval_accuracy) on the device, in fp32, bf16 and fp16: with the head
 * whole, exactly the count lt_nn_top1_hits gives over the logits the same device model computes without targets
 * (every other target set to that row's argmax, so about half are hits); with the head in chunks, the same count
 * but for rows where a chunk's GEMM rounds a near-tied logit the other way (at most one in 16; none in the
 * emulation, whose GEMMs sum in one order). */
static void check_eval_top1(uint64_t seed) {
    const shape *s = &CHUNK_SHAPE;
    lt_gpt2_config cfg = {.vocab_size = s->V, .n_positions = s->P, .n_embd = s->C, .n_layer = s->L,
                          .n_head = s->NH, .layer_norm_epsilon = 1e-5};
    const int B = s->B, T = s->T, V = s->V;
    const size_t N = (size_t)B * (size_t)T;
    lt_gpt2 *m = random_model(&cfg, seed + 7);
    int32_t *in = malloc(N * sizeof *in), *tg = malloc(N * sizeof *tg);
    if (!in || !tg) exit(2);
    rng = seed + 7;
    for (size_t i = 0; i < N; i++) in[i] = (int32_t)(next32() % (uint32_t)V), tg[i] = (int32_t)(next32() % (uint32_t)V);
    const lt_gpt2_precision precs[3] = {LT_GPT2_F32, LT_GPT2_BF16, LT_GPT2_F16};
    const char *names[3] = {"fp32", "bf16", "fp16"};
    for (int k = 0; k < 3; k++) {
        lt_gpt2_dev *dw = head_model(m, precs[k], 0, 0, 0, B, T), *dc = head_model(m, precs[k], CHUNK_ROWS, 0, 0, B, T);
        MUST(lt_gpt2_dev_forward(dw, in, NULL, B, T, NULL, err, sizeof err));
        MUST(lt_gpt2_dev_sync(dw, err, sizeof err));
        int ldv;
        lt_dtype dt;
        const void *dl = lt_gpt2_dev_logits(dw, &ldv, &dt);
        const size_t es = lt_dtype_size(dt);
        unsigned char *raw = malloc(N * (size_t)ldv * es);
        float *lg = malloc(N * (size_t)V * sizeof *lg);
        if (!raw || !lg) exit(2);
        MUST(lt_cuda_memcpy_raw(raw, dl, N * (size_t)ldv * es, 1, err, sizeof err) ? LT_ERR_DEVICE : LT_OK);
        for (size_t r = 0; r < N; r++)
            for (int v = 0; v < V; v++) {
                const unsigned char *e = raw + (r * (size_t)ldv + (size_t)v) * es;
                uint16_t h;
                float f;
                if (dt == LT_DTYPE_F32) memcpy(&f, e, 4);
                else memcpy(&h, e, 2), f = dt == LT_DTYPE_BF16 ? lt_bf16_to_f32(h) : lt_f16_to_f32(h);
                lg[r * (size_t)V + v] = f;
            }
        for (size_t r = 0; r < N; r += 2) {
            const float *l = lg + r * (size_t)V;
            int best = 0;
            for (int v = 1; v < V; v++)
                if (l[v] > l[best]) best = v;
            tg[r] = best;
        }
        const long want = (long)lt_nn_top1_hits(lg, tg, N, V);
        long got_w = -1, got_c = -1;
        float lw, lc;
        MUST(lt_gpt2_dev_eval(dw, in, tg, B, T, &lw, &got_w, err, sizeof err));
        MUST(lt_gpt2_dev_eval(dc, in, tg, B, T, &lc, &got_c, err, sizeof err));
        printf("  %-44s %ld of %zu positions, with the head in chunks %ld; the logits' argmax: %ld\n",
               names[k], got_w, N, got_c, want);
        CHECK(got_w == want && want >= (long)N / 2, "%s: device top-1 count %ld, over its logits %ld", names[k], got_w,
              want);
        CHECK(labs(got_c - want) * 16 <= (long)N, "%s: top-1 count in chunks %ld, whole %ld", names[k], got_c, want);
        free(raw), free(lg);
        lt_gpt2_dev_free(dw), lt_gpt2_dev_free(dc);
    }
    free(in), free(tg);
    lt_gpt2_free(m);
}

int main(int argc, char **argv) {
    int quick = 0;
    uint64_t seed = 1234;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: gpu_gpt2_model [--quick] [--seed S]\n");
            return 2;
        }
    }
    if (lt_cuda_device_count() < 1) {
        fprintf(stderr, "gpu_gpt2_model: no CUDA device\n");
        return 2;
    }
    char desc[256];
    lt_cuda_describe(desc, sizeof desc);
    printf("gpu_gpt2_model: %s, seed %llu\n", desc, (unsigned long long)seed);
    int n = quick ? 1 : (int)(sizeof SHAPES / sizeof SHAPES[0]);
    for (int i = 0; i < n; i++) run_shape(&SHAPES[i], seed + (uint64_t)i);
    for (int i = 0; i < n; i++) check_dropout(&SHAPES[i], seed + (uint64_t)i);
    check_head_chunks(seed);
    check_eval_top1(seed);
    return lt_test_done("gpu_gpt2_model");
}
