/* bitsandbytes 8-bit blockwise AdamW (adamw_bnb_8bit, adamw_8bit,
 * paged_adamw_8bit) and Lion (lion_8bit, paged_lion_8bit), with
 * bitsandbytes' state names: state1/state2 (u8 codes, or f32 for tensors under
 * min_8bit_size elements), absmax1/absmax2 (f32 per block), qmap1/qmap2 (the
 * maps, f32[256]) and step. */
#include <math.h>

#include "optim/lowbit_common.h"

static void bnb_defaults(lt_group_hp *hp) {
    hp->beta1 = 0.9;
    hp->beta2 = 0.999;
    hp->eps = 1e-8;
    hp->block_size = 256;
    hp->min_8bit_size = 4096;
}

static void bnb_lion_defaults(lt_group_hp *hp) {
    bnb_defaults(hp);
    hp->beta2 = 0.99;
}

static lt_status bnb_validate(lt_optim *o, const lt_group_hp *hp) {
    if (lt_check_lr(o, hp->lr) || lt_check_range(o, "beta1", hp->beta1, 0, 1, 1) ||
        lt_check_range(o, "beta2", hp->beta2, 0, 1, 1) || lt_check_nonneg(o, "eps", hp->eps) ||
        lt_check_nonneg(o, "weight_decay", hp->weight_decay) || lt_check_block(o, hp->block_size) ||
        lt_check_nonneg(o, "min_8bit_size", hp->min_8bit_size))
        return LT_ERR_ARG;
    return LT_OK;
}

static lt_status bnb_declare_n(lt_optim *o, lt_param *p, const lt_group_hp *hp, int nstates) {
    p->quant = (double)p->numel >= hp->min_8bit_size;
    p->block = (size_t)hp->block_size;
    static const char *codes[2] = {"state1", "state2"}, *absmax[2] = {"absmax1", "absmax2"},
                      *qmap[2] = {"qmap1", "qmap2"};
    int64_t nblk = (int64_t)((p->numel + p->block - 1) / p->block), nmap = 256;
    for (int k = 0; k < nstates; k++)
        if (lt_param_declare(o, p, codes[k], p->quant ? LT_DTYPE_U8 : LT_DTYPE_F32, p->ndim, p->shape))
            return LT_ERR_NOMEM;
    if (!p->quant) return LT_OK;
    for (int k = 0; k < nstates; k++)
        if (lt_param_declare(o, p, absmax[k], LT_DTYPE_F32, 1, &nblk) ||
            lt_param_declare(o, p, qmap[k], LT_DTYPE_F32, 1, &nmap))
            return LT_ERR_NOMEM;
    return LT_OK;
}

static lt_status bnb_adam_declare(lt_optim *o, lt_param *p, const lt_group_hp *hp) { return bnb_declare_n(o, p, hp, 2); }
static lt_status bnb_lion_declare(lt_optim *o, lt_param *p, const lt_group_hp *hp) { return bnb_declare_n(o, p, hp, 1); }

/* New codes start at the map's zero, so the first step dequantizes zeros (as a zeroed state would). */
static lt_status bnb_init(lt_optim *o, lt_param *p, const lt_group_hp *hp) {
    (void)hp;
    if (!p->quant) return LT_OK;
    if (lt_lowbit_init_map(o, p, "qmap1", lt_qmap_signed8, 256, 0, LT_Q_EVEN)) return LT_ERR_NOMEM;
    memset(lt_param_state(p, "state1")->data, lt_q_nearest(o->qtabs[p->qtab[0]], 0.0f), p->numel);
    lt_state *s2 = lt_param_state(p, "state2");
    if (s2) {
        if (lt_lowbit_init_map(o, p, "qmap2", lt_qmap_unsigned8, 256, 1, LT_Q_EVEN)) return LT_ERR_NOMEM;
        memset(s2->data, lt_q_nearest(o->qtabs[p->qtab[1]], 0.0f), p->numel);
    }
    return LT_OK;
}

static lt_kqstate qstate(lt_optim *o, lt_param *p, const char *codes, const char *absmax, int slot) {
    lt_kqstate q = {lt_param_state(p, codes)->data, lt_param_state(p, absmax)->data, o->qtabs[p->qtab[slot]]};
    return q;
}

static lt_kbnb bnb_scalars(const lt_param *p, const lt_group_hp *hp) {
    double t = (double)p->step, c2 = sqrt(1.0 - pow(hp->beta2, t));
    lt_kbnb k = {(float)hp->beta1, (float)(1.0 - hp->beta1), (float)hp->beta2, (float)(1.0 - hp->beta2),
                 (float)(-hp->lr * c2 / (1.0 - pow(hp->beta1, t))), (float)(c2 * hp->eps),
                 (float)(1.0 - hp->lr * hp->weight_decay), (float)hp->lr, hp->weight_decay > 0, p->block};
    return k;
}

static lt_status bnb_adam_step(lt_optim *o, lt_param *p, const lt_group_hp *hp, float gs) {
    lt_kbnb k = bnb_scalars(p, hp);
    lt_karr par = lt_param_parr(p), grad = lt_param_garr(p);
    if (p->quant) {
        lt_kqstate m = qstate(o, p, "state1", "absmax1", 0), v = qstate(o, p, "state2", "absmax2", 1);
        if (p->device) return lt_cuda_status(o, lt_kernel_bnb8_adam_cuda(o->cuda, par, grad, gs, p->numel, m, v, &k));
        lt_kernel_bnb8_adam(par, grad, gs, p->numel, m, v, &k);
    } else {
        lt_ktensor t = lt_param_ktensor(p, gs);
        t.s[0] = lt_param_karr(p, "state1");
        t.s[1] = lt_param_karr(p, "state2");
        if (p->device) return lt_cuda_status(o, lt_kernel_bnb32_adam_cuda(o->cuda, &t, &k));
        lt_kernel_bnb32_adam(&t, &k);
    }
    return LT_OK;
}

static lt_status bnb_lion_step(lt_optim *o, lt_param *p, const lt_group_hp *hp, float gs) {
    lt_kbnb k = bnb_scalars(p, hp);
    lt_karr par = lt_param_parr(p), grad = lt_param_garr(p);
    if (p->quant) {
        lt_kqstate m = qstate(o, p, "state1", "absmax1", 0);
        if (p->device) return lt_cuda_status(o, lt_kernel_bnb8_lion_cuda(o->cuda, par, grad, gs, p->numel, m, &k));
        lt_kernel_bnb8_lion(par, grad, gs, p->numel, m, &k);
    } else {
        lt_ktensor t = lt_param_ktensor(p, gs);
        t.s[0] = lt_param_karr(p, "state1");
        if (p->device) return lt_cuda_status(o, lt_kernel_bnb32_lion_cuda(o->cuda, &t, &k));
        lt_kernel_bnb32_lion(&t, &k);
    }
    return LT_OK;
}

static lt_status bnb_moment(lt_optim *o, lt_param *p, int which, float *out) {
    const char *codes = which ? "state2" : "state1", *absmax = which ? "absmax2" : "absmax1";
    if (!p->quant) {
        memcpy(out, lt_param_state(p, codes)->data, p->numel * sizeof *out);
        return LT_OK;
    }
    lt_kernel_dequant(qstate(o, p, codes, absmax, which), p->numel, p->block, 8, out);
    return LT_OK;
}

static lt_status bnb_check(lt_optim *o, const lt_param *p, const char *state, const void *data, size_t n,
                           const char *path) {
    return lt_lowbit_check(o, p, state, data, n, path, !strncmp(state, "qmap", 4), !strncmp(state, "absmax", 6));
}

static lt_status bnb_after_load(lt_optim *o, lt_param *p) {
    if (!p->quant) return LT_OK;
    if (lt_lowbit_adopt_map(o, p, "qmap1", 0, LT_Q_EVEN)) return LT_ERR_FORMAT;
    if (lt_param_state(p, "qmap2") && lt_lowbit_adopt_map(o, p, "qmap2", 1, LT_Q_EVEN)) return LT_ERR_FORMAT;
    return LT_OK;
}

#define BNB_KEYS (K_LR | K_BETA1 | K_BETA2 | K_EPS | K_WD | K_BLOCK | K_MIN8 | K_SR)

const lt_family lt_family_bnb_adam8 = {.family = "bnb_adam8bit",
                                       .keys = BNB_KEYS,
                                       .base_keys = K_BETA1 | K_BETA2 | K_EPS,
                                       .defaults = bnb_defaults,
                                       .validate = bnb_validate,
                                       .declare_state = bnb_adam_declare,
                                       .init_state = bnb_init,
                                       .step = bnb_adam_step,
                                       .moment_names = {"state1", "state2"},
                                       .moment = bnb_moment,
                                       .check_state = bnb_check,
                                       .after_load = bnb_after_load,
                                       .step_tensor = 1};

const lt_family lt_family_bnb_lion8 = {.family = "bnb_lion8bit",
                                       .keys = BNB_KEYS & ~K_EPS,
                                       .base_keys = K_BETA1 | K_BETA2,
                                       .defaults = bnb_lion_defaults,
                                       .validate = bnb_validate,
                                       .declare_state = bnb_lion_declare,
                                       .init_state = bnb_init,
                                       .step = bnb_lion_step,
                                       .moment_names = {"state1", NULL},
                                       .moment = bnb_moment,
                                       .check_state = bnb_check,
                                       .after_load = bnb_after_load,
                                       .step_tensor = 1};
