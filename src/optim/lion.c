/* lion_32bit / paged_lion_32bit: Lion with decoupled decay and the sign of the
 * interpolated momentum (bitsandbytes / lion-pytorch). */
#include "optim/validate.h"

static void lion_defaults(lt_group_hp *hp) {
    hp->beta1 = 0.9;
    hp->beta2 = 0.99;
}

static lt_status lion_validate(lt_optim *o, const lt_group_hp *hp) {
    if (lt_check_lr(o, hp->lr) || lt_check_range(o, "beta1", hp->beta1, 0, 1, 1) ||
        lt_check_range(o, "beta2", hp->beta2, 0, 1, 1) || lt_check_nonneg(o, "weight_decay", hp->weight_decay))
        return LT_ERR_ARG;
    return LT_OK;
}

static lt_status lion_declare(lt_optim *o, lt_param *p, const lt_group_hp *hp) {
    (void)hp;
    return lt_param_declare(o, p, "exp_avg", LT_DTYPE_F32, p->ndim, p->shape);
}

static lt_status lion_step(lt_optim *o, lt_param *p, const lt_group_hp *hp, float gscale) {
    lt_ktensor t = lt_param_ktensor(p, gscale);
    t.s[0] = lt_param_karr(p, "exp_avg");
    lt_klion k = {(float)(1.0 - hp->lr * hp->weight_decay), (float)hp->lr, (float)hp->beta1,
                  (float)(1.0 - hp->beta1), (float)hp->beta2, (float)(1.0 - hp->beta2)};
    if (p->device) return lt_cuda_status(o, lt_kernel_lion_cuda(o->cuda, &t, &k));
    lt_kernel_lion(&t, &k);
    return LT_OK;
}

const lt_family lt_family_lion = {.family = "lion",
                                  .keys = K_LR | K_BETA1 | K_BETA2 | K_WD | K_SR,
                                  .base_keys = K_BETA1 | K_BETA2,
                                  .defaults = lion_defaults,
                                  .validate = lion_validate,
                                  .declare_state = lion_declare,
                                  .step = lion_step,
                                  .moment_names = {"exp_avg", NULL}};
