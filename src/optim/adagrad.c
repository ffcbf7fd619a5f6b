/* adagrad: torch.optim.Adagrad (lr_decay, initial_accumulator_value, L2 decay). */
#include "optim/validate.h"

static void adagrad_defaults(lt_group_hp *hp) { hp->eps = 1e-10; }

static lt_status adagrad_validate(lt_optim *o, const lt_group_hp *hp) {
    if (lt_check_lr(o, hp->lr) || lt_check_nonneg(o, "lr_decay", hp->lr_decay) ||
        lt_check_nonneg(o, "initial_accumulator_value", hp->initial_accumulator_value) ||
        lt_check_nonneg(o, "eps", hp->eps) || lt_check_nonneg(o, "weight_decay", hp->weight_decay))
        return LT_ERR_ARG;
    return LT_OK;
}

static lt_status adagrad_declare(lt_optim *o, lt_param *p, const lt_group_hp *hp) {
    (void)hp;
    return lt_param_declare(o, p, "sum", LT_DTYPE_F32, p->ndim, p->shape);
}

static lt_status adagrad_init(lt_optim *o, lt_param *p, const lt_group_hp *hp) {
    (void)o;
    float *sum = p->st[0].data;
    for (size_t i = 0; i < p->numel; i++) sum[i] = (float)hp->initial_accumulator_value;
    return LT_OK;
}

static lt_status adagrad_step(lt_optim *o, lt_param *p, const lt_group_hp *hp, float gscale) {
    lt_ktensor t = lt_param_ktensor(p, gscale);
    t.s[0] = lt_param_karr(p, "sum");
    lt_kadagrad k = {(float)(hp->lr / (1.0 + (double)(p->step - 1) * hp->lr_decay)), (float)hp->weight_decay,
                     (float)hp->eps};
    if (p->device) return lt_cuda_status(o, lt_kernel_adagrad_cuda(o->cuda, &t, &k));
    lt_kernel_adagrad(&t, &k);
    return LT_OK;
}

const lt_family lt_family_adagrad = {.family = "adagrad",
                                     .keys = K_LR | K_WD | K_EPS | K_LR_DECAY | K_INIT_ACC | K_SR,
                                     .defaults = adagrad_defaults,
                                     .validate = adagrad_validate,
                                     .declare_state = adagrad_declare,
                                     .init_state = adagrad_init,
                                     .step = adagrad_step};
