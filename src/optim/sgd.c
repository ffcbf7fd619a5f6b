/* sgd: torch.optim.SGD with momentum, dampening, nesterov and L2 weight decay. */
#include "optim/validate.h"

static void sgd_defaults(lt_group_hp *hp) { (void)hp; /* momentum, dampening 0; nesterov off */ }

static lt_status sgd_validate(lt_optim *o, const lt_group_hp *hp) {
    if (lt_check_lr(o, hp->lr) || lt_check_nonneg(o, "momentum", hp->momentum) ||
        lt_check_range(o, "dampening", hp->dampening, 0, 1, 1) || lt_check_nonneg(o, "weight_decay", hp->weight_decay))
        return LT_ERR_ARG;
    if (hp->nesterov && (hp->momentum <= 0 || hp->dampening != 0))
        return lt_optim_fail(o, LT_ERR_ARG, "nesterov=True requires momentum > 0 and dampening = 0");
    return LT_OK;
}

static lt_status sgd_declare(lt_optim *o, lt_param *p, const lt_group_hp *hp) {
    if (hp->momentum > 0 && lt_param_declare(o, p, "momentum_buffer", LT_DTYPE_F32, p->ndim, p->shape))
        return LT_ERR_NOMEM;
    return LT_OK;
}

static lt_status sgd_step(lt_optim *o, lt_param *p, const lt_group_hp *hp, float gscale) {
    lt_ktensor t = lt_param_ktensor(p, gscale);
    t.s[0] = lt_param_karr(p, "momentum_buffer");
    if (hp->momentum > 0 && !t.s[0].ptr)
        return lt_optim_fail(o, LT_ERR_STATE, "'%s': momentum was turned on after the parameter was registered",
                             p->name);
    lt_ksgd k = {(float)hp->lr, (float)hp->weight_decay, (float)hp->momentum, (float)(1.0 - hp->dampening),
                 hp->nesterov, p->step == 1};
    if (hp->momentum <= 0) t.s[0].ptr = NULL;
    if (p->device) return lt_cuda_status(o, lt_kernel_sgd_cuda(o->cuda, &t, &k));
    lt_kernel_sgd(&t, &k);
    return LT_OK;
}

const lt_family lt_family_sgd = {.family = "sgd",
                                 .keys = K_LR | K_WD | K_MOMENTUM | K_DAMPENING | K_NESTEROV | K_SR,
                                 .defaults = sgd_defaults,
                                 .validate = sgd_validate,
                                 .declare_state = sgd_declare,
                                 .step = sgd_step};
