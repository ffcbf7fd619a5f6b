/* adafactor: transformers.optimization.Adafactor. Tensors of 2 or more dims
 * keep factored second moments over their last two dims (leading dims are a
 * batch); vectors keep a full one. Passes over a factored tensor:
 *   [p: sum of squares, only with scale_parameter]
 *   1. g: row and column sums of g^2 + eps1, and the squared norm of the
 *      unclipped update, which the clipping needs before anything is written
 *      (see lt_kernel_adafactor_rowcol for how it avoids another pass)
 *   2. g, p (, m): apply the clipped, scaled update
 * A vector has the same two passes (its second moment is elementwise). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optim/validate.h"

static void af_defaults(lt_group_hp *hp) {
    /* the Trainer's construction: Adafactor(lr=..., scale_parameter=False, relative_step=False) */
    hp->eps1 = 1e-30;
    hp->eps2 = 1e-3;
    hp->clip_threshold = 1.0;
    hp->decay_rate = -0.8;
    hp->af_beta1 = NAN;
    hp->scale_parameter = false;
    hp->relative_step = false;
    hp->warmup_init = false;
}

static lt_status af_validate(lt_optim *o, const lt_group_hp *hp) {
    if (hp->relative_step && !isnan(hp->lr))
        return lt_optim_fail(o, LT_ERR_ARG,
                             "cannot combine a manual lr (%g) with relative_step=True: pass lr=None or relative_step=False",
                             hp->lr);
    if (!hp->relative_step && lt_check_lr(o, hp->lr)) return LT_ERR_ARG;
    if (hp->warmup_init && !hp->relative_step)
        return lt_optim_fail(o, LT_ERR_ARG, "warmup_init=True requires relative_step=True");
    if (!isnan(hp->af_beta1) && lt_check_range(o, "beta1", hp->af_beta1, 0, 1, 1)) return LT_ERR_ARG;
    if (lt_check_nonneg(o, "eps1", hp->eps1) || lt_check_nonneg(o, "eps2", hp->eps2) ||
        lt_check_nonneg(o, "weight_decay", hp->weight_decay))
        return LT_ERR_ARG;
    if (!(hp->clip_threshold > 0))
        return lt_optim_fail(o, LT_ERR_ARG, "invalid clip_threshold %g: must be > 0", hp->clip_threshold);
    if (!(hp->decay_rate < 0))
        return lt_optim_fail(o, LT_ERR_ARG, "invalid decay_rate %g: must be < 0", hp->decay_rate);
    return LT_OK;
}

/* The [batch, rows, cols] view of a parameter of 2 or more dims. */
static void af_view(const lt_param *p, size_t *batch, size_t *rows, size_t *cols) {
    *cols = (size_t)p->shape[p->ndim - 1];
    *rows = (size_t)p->shape[p->ndim - 2];
    *batch = p->numel / (*rows * *cols);
}

/* Grows the step's workspace to the per-thread sums of a parameter `cols` wide for the threads allowed now
 * (sized when a parameter is added, and again at a step if more threads are allowed by then). */
static lt_status af_reserve_work(lt_optim *o, const lt_param *p, size_t cols) {
    size_t need = lt_kernel_adafactor_work(cols) + cols;
    if (need <= o->work_len) return LT_OK;
    double *w = realloc(o->work, need * sizeof *w);
    if (!w)
        return lt_optim_fail(o, LT_ERR_NOMEM, "'%s': out of memory for Adafactor's workspace (%zu bytes)", p->name,
                             need * sizeof *w);
    o->work = w;
    o->work_len = need;
    return LT_OK;
}

static lt_status af_declare(lt_optim *o, lt_param *p, const lt_group_hp *hp) {
    if (!isnan(hp->af_beta1) && lt_param_declare(o, p, "exp_avg", LT_DTYPE_F32, p->ndim, p->shape))
        return LT_ERR_NOMEM;
    if (p->ndim < 2) return lt_param_declare(o, p, "exp_avg_sq", LT_DTYPE_F32, p->ndim, p->shape);
    int64_t shp[LT_MAX_DIMS];
    for (int d = 0; d < p->ndim; d++) shp[d] = p->shape[d];
    if (lt_param_declare(o, p, "exp_avg_sq_row", LT_DTYPE_F32, p->ndim - 1, shp)) return LT_ERR_NOMEM;
    shp[p->ndim - 2] = p->shape[p->ndim - 1];
    if (lt_param_declare(o, p, "exp_avg_sq_col", LT_DTYPE_F32, p->ndim - 1, shp)) return LT_ERR_NOMEM;

    if (p->device) return LT_OK; /* the device step keeps its workspace in the CUDA context */
    /* workspace for the step, sized for the largest factored parameter */
    size_t batch, rows, cols;
    af_view(p, &batch, &rows, &cols);
    size_t need_small = batch * (rows + cols);
    lt_status st = af_reserve_work(o, p, cols);
    if (st != LT_OK) return st;
    if (need_small > o->small_len) {
        float *s = realloc(o->small, need_small * sizeof *s);
        if (!s) return lt_optim_fail(o, LT_ERR_NOMEM, "out of memory for Adafactor's workspace");
        o->small = s;
        o->small_len = need_small;
    }
    return LT_OK;
}

/* The device step: the same passes, with the scale, the row mean and the
 * clipping divisor computed on the device (kernels/cuda/adafactor.cu). */
static lt_status af_step_device(lt_optim *o, lt_param *p, const lt_group_hp *hp, float gs, double rho, float b2t,
                                float omb2t) {
    lt_kaf_args a;
    memset(&a, 0, sizeof a);
    a.p = lt_param_parr(p);
    a.g = lt_param_garr(p);
    a.gscale = gs;
    a.factored = p->ndim >= 2;
    if (a.factored) {
        af_view(p, &a.batch, &a.rows, &a.cols);
        a.R = lt_param_state(p, "exp_avg_sq_row")->data;
        a.C = lt_param_state(p, "exp_avg_sq_col")->data;
    } else {
        a.batch = a.rows = 1;
        a.cols = p->numel;
        a.C = lt_param_state(p, "exp_avg_sq")->data;
    }
    lt_state *m = lt_param_state(p, "exp_avg");
    if (!isnan(hp->af_beta1) && !m)
        return lt_optim_fail(o, LT_ERR_STATE, "'%s': beta1 was set after the parameter was registered", p->name);
    a.m = isnan(hp->af_beta1) ? NULL : m->data;
    a.b1 = isnan(hp->af_beta1) ? 0.0f : (float)hp->af_beta1;
    a.rho = rho;
    a.scale_parameter = hp->scale_parameter;
    a.eps2 = hp->eps2;
    a.clip_threshold = hp->clip_threshold;
    a.weight_decay = hp->weight_decay;
    a.eps1 = (float)hp->eps1;
    a.b2t = b2t;
    a.omb2t = omb2t;
    return lt_cuda_status(o, lt_kernel_adafactor_cuda(o->cuda, &a));
}

static lt_status af_step(lt_optim *o, lt_param *p, const lt_group_hp *hp, float gs) {
    const double t = (double)p->step;
    lt_karr par = lt_param_parr(p), grad = lt_param_garr(p);
    double rho = hp->lr;
    if (hp->relative_step) {
        double min_step = hp->warmup_init ? 1e-6 * t : 1e-2;
        rho = fmin(min_step, 1.0 / sqrt(t));
    }
    const double b2t_d = 1.0 - pow(t, hp->decay_rate);
    const float b2t = (float)b2t_d, omb2t = (float)(1.0 - b2t_d);
    if (p->device) return af_step_device(o, p, hp, gs, rho, b2t, omb2t);
    double scale = 1.0;
    if (hp->scale_parameter) scale = fmax(hp->eps2, sqrt(lt_kernel_sumsq(par, p->numel) / (double)p->numel));
    const float lr_t = (float)(rho * scale);
    double sumsq;
    float *rf = NULL, *cf;
    size_t batch = 1, rows = 1, cols = p->numel;
    if (p->ndim >= 2) {
        af_view(p, &batch, &rows, &cols);
        if (o->small_len < batch * (rows + cols))
            return lt_optim_fail(o, LT_ERR_STATE, "'%s': Adafactor workspace too small", p->name);
        /* more threads may be allowed than when the parameter was added (else the statistics pass would run
         * on fewer threads than the rest of the step) */
        lt_status st = af_reserve_work(o, p, cols);
        if (st != LT_OK) return st;
        float *R = lt_param_state(p, "exp_avg_sq_row")->data, *C = lt_param_state(p, "exp_avg_sq_col")->data;
        double *w = o->work, *kwork = o->work + cols;
        rf = o->small;
        cf = o->small + batch * rows;
        sumsq = 0.0;
        for (size_t b = 0; b < batch; b++) {
            float *Rb = R + b * rows, *Cb = C + b * cols, *rfb = rf + b * rows, *cfb = cf + b * cols;
            lt_kernel_adafactor_rowcol(grad, b * rows * cols, gs, rows, cols, (float)hp->eps1, Rb, b2t, omb2t, cfb, w,
                                       kwork, o->work_len - cols);
            double rsum = 0.0;
            for (size_t r = 0; r < rows; r++) rsum += Rb[r];
            const float rmean = (float)(rsum / (double)rows);
            for (size_t r = 0; r < rows; r++) rfb[r] = 1.0f / sqrtf(Rb[r] / rmean);
            /* |upd|^2 = sum_rc g^2 * rmean/R[r] / C[c] = rmean * sum_c w[c] / C[c] */
            double wsum = 0.0;
            for (size_t c = 0; c < cols; c++) {
                Cb[c] = fmaf(omb2t, cfb[c] / (float)rows, Cb[c] * b2t);
                cfb[c] = 1.0f / sqrtf(Cb[c]);
                wsum += w[c] / (double)Cb[c];
            }
            sumsq += (double)rmean * wsum;
        }
    } else {
        cf = lt_param_state(p, "exp_avg_sq")->data;
        sumsq = lt_kernel_adafactor_vec_v(grad, gs, cf, p->numel, b2t, (float)hp->eps1);
    }
    const double rms_u = sqrt(sumsq / (double)p->numel);
    const float clipdiv = (float)fmax(1.0, rms_u / hp->clip_threshold);
    lt_state *m = lt_param_state(p, "exp_avg");
    if (!isnan(hp->af_beta1) && !m)
        return lt_optim_fail(o, LT_ERR_STATE, "'%s': beta1 was set after the parameter was registered", p->name);
    lt_kernel_adafactor_apply(par, grad, isnan(hp->af_beta1) ? NULL : m->data, gs, batch, rows, cols, rf, cf,
                              clipdiv, lr_t, isnan(hp->af_beta1) ? 0.0f : (float)hp->af_beta1,
                              (float)(hp->weight_decay * (double)lr_t));
    return LT_OK;
}

const lt_family lt_family_adafactor = {
    .family = "adafactor",
    .keys = K_LR | K_WD | K_EPS1 | K_EPS2 | K_CLIP | K_DECAY_RATE | K_AF_BETA1 | K_SCALE_PARAM | K_RELATIVE |
            K_WARMUP_INIT | K_SR,
    .defaults = af_defaults,
    .validate = af_validate,
    .declare_state = af_declare,
    .step = af_step};
