/* adamw_torch (and its fused/apex/paged-32bit names) and adam: torch.optim.AdamW
 * with decoupled decay, torch.optim.Adam with decay as L2, both with AMSGrad. */
#include <math.h>

#include "optim/validate.h"

static void adam_defaults(lt_group_hp *hp) {
    hp->beta1 = 0.9;
    hp->beta2 = 0.999;
    hp->eps = 1e-8;
}

static lt_status adam_validate(lt_optim *o, const lt_group_hp *hp) {
    if (lt_check_lr(o, hp->lr) || lt_check_range(o, "beta1", hp->beta1, 0, 1, 0) ||
        lt_check_range(o, "beta2", hp->beta2, 0, 1, 0) || lt_check_nonneg(o, "eps", hp->eps) ||
        lt_check_nonneg(o, "weight_decay", hp->weight_decay))
        return LT_ERR_ARG;
    return LT_OK;
}

static lt_status adam_declare(lt_optim *o, lt_param *p, const lt_group_hp *hp) {
    if (lt_param_declare(o, p, "exp_avg", LT_DTYPE_F32, p->ndim, p->shape) ||
        lt_param_declare(o, p, "exp_avg_sq", LT_DTYPE_F32, p->ndim, p->shape))
        return LT_ERR_NOMEM;
    if (hp->amsgrad && lt_param_declare(o, p, "max_exp_avg_sq", LT_DTYPE_F32, p->ndim, p->shape))
        return LT_ERR_NOMEM;
    return LT_OK;
}

static lt_status adam_step_common(lt_optim *o, lt_param *p, const lt_group_hp *hp, float gscale, int decoupled) {
    lt_ktensor t = lt_param_ktensor(p, gscale);
    t.s[0] = lt_param_karr(p, "exp_avg");
    t.s[1] = lt_param_karr(p, "exp_avg_sq");
    t.s[2] = lt_param_karr(p, "max_exp_avg_sq");
    if (hp->amsgrad && !t.s[2].ptr)
        return lt_optim_fail(o, LT_ERR_STATE, "'%s': amsgrad was turned on after the parameter was registered",
                             p->name);
    double tt = (double)p->step;
    lt_kadam k;
    k.decay = decoupled ? (float)(1.0 - hp->lr * hp->weight_decay) : 1.0f;
    k.l2 = decoupled ? 0.0f : (float)hp->weight_decay;
    k.b1 = (float)hp->beta1;
    k.omb1 = (float)(1.0 - hp->beta1);
    k.b2 = (float)hp->beta2;
    k.omb2 = (float)(1.0 - hp->beta2);
    k.step_size = (float)(hp->lr / (1.0 - pow(hp->beta1, tt)));
    k.bc2_sqrt = (float)sqrt(1.0 - pow(hp->beta2, tt));
    k.eps = (float)hp->eps;
    k.amsgrad = hp->amsgrad && t.s[2].ptr;
    if (p->device) return lt_cuda_status(o, lt_kernel_adam_cuda(o->cuda, &t, &k));
    lt_kernel_adam(&t, &k);
    return LT_OK;
}

static lt_status adamw_step(lt_optim *o, lt_param *p, const lt_group_hp *hp, float gscale) {
    return adam_step_common(o, p, hp, gscale, 1);
}

static lt_status adam_step(lt_optim *o, lt_param *p, const lt_group_hp *hp, float gscale) {
    return adam_step_common(o, p, hp, gscale, 0);
}

#define ADAM_KEYS (K_LR | K_BETA1 | K_BETA2 | K_EPS | K_WD | K_AMSGRAD | K_SR)

const lt_family lt_family_adamw = {.family = "adamw",
                                   .keys = ADAM_KEYS,
                                   .base_keys = K_BETA1 | K_BETA2 | K_EPS,
                                   .defaults = adam_defaults,
                                   .validate = adam_validate,
                                   .declare_state = adam_declare,
                                   .step = adamw_step,
                                   .moment_names = {"exp_avg", "exp_avg_sq"}};
const lt_family lt_family_adam = {.family = "adam",
                                  .keys = ADAM_KEYS,
                                  .base_keys = K_BETA1 | K_BETA2 | K_EPS,
                                  .defaults = adam_defaults,
                                  .validate = adam_validate,
                                  .declare_state = adam_declare,
                                  .step = adam_step,
                                  .moment_names = {"exp_avg", "exp_avg_sq"}};
