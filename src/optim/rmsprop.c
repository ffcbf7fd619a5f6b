/* rmsprop: torch.optim.RMSprop (alpha, momentum, centered, L2 decay). */
#include "optim/validate.h"

static void rmsprop_defaults(lt_group_hp *hp) {
    hp->alpha = 0.99;
    hp->eps = 1e-8;
}

static lt_status rmsprop_validate(lt_optim *o, const lt_group_hp *hp) {
    if (lt_check_lr(o, hp->lr) || lt_check_nonneg(o, "alpha", hp->alpha) || lt_check_nonneg(o, "eps", hp->eps) ||
        lt_check_nonneg(o, "momentum", hp->momentum) || lt_check_nonneg(o, "weight_decay", hp->weight_decay))
        return LT_ERR_ARG;
    return LT_OK;
}

static lt_status rmsprop_declare(lt_optim *o, lt_param *p, const lt_group_hp *hp) {
    if (lt_param_declare(o, p, "square_avg", LT_DTYPE_F32, p->ndim, p->shape)) return LT_ERR_NOMEM;
    if (hp->momentum > 0 && lt_param_declare(o, p, "momentum_buffer", LT_DTYPE_F32, p->ndim, p->shape))
        return LT_ERR_NOMEM;
    if (hp->centered && lt_param_declare(o, p, "grad_avg", LT_DTYPE_F32, p->ndim, p->shape)) return LT_ERR_NOMEM;
    return LT_OK;
}

static lt_status rmsprop_step(lt_optim *o, lt_param *p, const lt_group_hp *hp, float gscale) {
    lt_ktensor t = lt_param_ktensor(p, gscale);
    t.s[0] = lt_param_karr(p, "square_avg");
    t.s[1] = lt_param_karr(p, "momentum_buffer");
    t.s[2] = lt_param_karr(p, "grad_avg");
    if ((hp->momentum > 0 && !t.s[1].ptr) || (hp->centered && !t.s[2].ptr))
        return lt_optim_fail(o, LT_ERR_STATE, "'%s': momentum or centered was turned on after registration", p->name);
    if (hp->momentum <= 0) t.s[1].ptr = NULL;
    if (!hp->centered) t.s[2].ptr = NULL;
    lt_krmsprop k = {(float)hp->lr,        (float)hp->weight_decay, (float)hp->alpha,
                     (float)(1.0 - hp->alpha), (float)hp->eps,      (float)hp->momentum};
    if (p->device) return lt_cuda_status(o, lt_kernel_rmsprop_cuda(o->cuda, &t, &k));
    lt_kernel_rmsprop(&t, &k);
    return LT_OK;
}

const lt_family lt_family_rmsprop = {.family = "rmsprop",
                                     .keys = K_LR | K_WD | K_EPS | K_ALPHA | K_MOMENTUM | K_CENTERED | K_SR,
                                     .defaults = rmsprop_defaults,
                                     .validate = rmsprop_validate,
                                     .declare_state = rmsprop_declare,
                                     .step = rmsprop_step};
