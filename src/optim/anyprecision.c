/* adamw_anyprecision: torchdistx AnyPrecisionAdamW. m and v stored in f32 or
 * bf16; optional Kahan summation through a compensation buffer (bf16 by
 * default) that keeps the part of each update that rounding p would drop. */
#include <math.h>

#include "optim/validate.h"

static void anyprec_defaults(lt_group_hp *hp) {
    hp->beta1 = 0.9;
    hp->beta2 = 0.999;
    hp->eps = 1e-8;
    hp->momentum_dtype = LT_DTYPE_F32;
    hp->variance_dtype = LT_DTYPE_F32;
    hp->compensation_dtype = LT_DTYPE_BF16;
}

static lt_status anyprec_validate(lt_optim *o, const lt_group_hp *hp) {
    if (lt_check_lr(o, hp->lr) || lt_check_range(o, "beta1", hp->beta1, 0, 1, 0) ||
        lt_check_range(o, "beta2", hp->beta2, 0, 1, 0) || lt_check_nonneg(o, "eps", hp->eps) ||
        lt_check_nonneg(o, "weight_decay", hp->weight_decay))
        return LT_ERR_ARG;
    return LT_OK;
}

static lt_status anyprec_declare(lt_optim *o, lt_param *p, const lt_group_hp *hp) {
    if (lt_param_declare(o, p, "exp_avg", hp->momentum_dtype, p->ndim, p->shape) ||
        lt_param_declare(o, p, "exp_avg_sq", hp->variance_dtype, p->ndim, p->shape))
        return LT_ERR_NOMEM;
    if (hp->kahan && lt_param_declare(o, p, "compensation", hp->compensation_dtype, p->ndim, p->shape))
        return LT_ERR_NOMEM;
    return LT_OK;
}

static lt_status anyprec_step(lt_optim *o, lt_param *p, const lt_group_hp *hp, float gscale) {
    lt_ktensor t = lt_param_ktensor(p, gscale);
    t.s[0] = lt_param_karr(p, "exp_avg");
    t.s[1] = lt_param_karr(p, "exp_avg_sq");
    t.s[2] = lt_param_karr(p, "compensation");
    if (hp->kahan && !t.s[2].ptr)
        return lt_optim_fail(o, LT_ERR_STATE, "'%s': use_kahan_summation was turned on after registration", p->name);
    if (!hp->kahan) t.s[2].ptr = NULL;
    double tt = (double)p->step;
    lt_kanyprec k = {(float)(1.0 - hp->lr * hp->weight_decay),
                     (float)hp->beta1,
                     (float)(1.0 - hp->beta1),
                     (float)hp->beta2,
                     (float)(1.0 - hp->beta2),
                     (float)(hp->lr / (1.0 - pow(hp->beta1, tt))),
                     (float)sqrt(1.0 - pow(hp->beta2, tt)),
                     (float)hp->eps};
    if (p->device) return lt_cuda_status(o, lt_kernel_anyprecision_cuda(o->cuda, &t, &k));
    lt_kernel_anyprecision(&t, &k);
    return LT_OK;
}

const lt_family lt_family_anyprecision = {
    .family = "adamw_anyprecision",
    .keys = K_LR | K_BETA1 | K_BETA2 | K_EPS | K_WD | K_KAHAN | K_MOM_DTYPE | K_VAR_DTYPE | K_COMP_DTYPE | K_SR,
    .base_keys = K_BETA1 | K_BETA2 | K_EPS,
    .defaults = anyprec_defaults,
    .validate = anyprec_validate,
    .declare_state = anyprec_declare,
    .step = anyprec_step,
    .moment_names = {"exp_avg", "exp_avg_sq"}};
