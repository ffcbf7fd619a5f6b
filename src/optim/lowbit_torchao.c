/* torchao low-bit AdamW: adamw_torch_8bit (AdamW8bit) and adamw_torch_4bit
 * (AdamW4bit). A tensor is quantized when it has >= 4096 elements that split
 * into whole blocks; its states are <state>_codes (u8, or two 4-bit codes per
 * byte), <state>_scale (f32 per block) and <state>_qmap, for exp_avg and
 * exp_avg_sq. Other tensors keep exp_avg, exp_avg_sq in the parameter's dtype. */
#include <math.h>

#include "optim/lowbit_common.h"

static void ao_defaults(lt_group_hp *hp) {
    hp->beta1 = 0.9;
    hp->beta2 = 0.999;
    hp->eps = 1e-8;
    hp->block_size = 256; /* as the Trainer builds them (torchao's own 4-bit default is 128) */
}

static lt_status ao_validate(lt_optim *o, const lt_group_hp *hp) {
    if (lt_check_lr(o, hp->lr) || lt_check_range(o, "beta1", hp->beta1, 0, 1, 0) ||
        lt_check_range(o, "beta2", hp->beta2, 0, 1, 0) || lt_check_nonneg(o, "eps", hp->eps) ||
        lt_check_nonneg(o, "weight_decay", hp->weight_decay) || lt_check_block(o, hp->block_size))
        return LT_ERR_ARG;
    return LT_OK;
}

static int ao_bits(const lt_optim *o);

static lt_status ao_declare(lt_optim *o, lt_param *p, const lt_group_hp *hp) {
    p->block = (size_t)hp->block_size;
    p->quant = p->numel >= 4096 && p->numel % p->block == 0;
    if (!p->quant) {
        if (lt_param_declare(o, p, "exp_avg", p->dtype, p->ndim, p->shape) ||
            lt_param_declare(o, p, "exp_avg_sq", p->dtype, p->ndim, p->shape))
            return LT_ERR_NOMEM;
        return LT_OK;
    }
    int bits = ao_bits(o);
    int64_t ncodes = (int64_t)(bits == 4 ? p->numel / 2 : p->numel), nblk = (int64_t)(p->numel / p->block);
    int64_t nmap = bits == 4 ? 16 : 256;
    if (lt_param_declare(o, p, "exp_avg_codes", LT_DTYPE_U8, 1, &ncodes) ||
        lt_param_declare(o, p, "exp_avg_scale", LT_DTYPE_F32, 1, &nblk) ||
        lt_param_declare(o, p, "exp_avg_qmap", LT_DTYPE_F32, 1, &nmap) ||
        lt_param_declare(o, p, "exp_avg_sq_codes", LT_DTYPE_U8, 1, &ncodes) ||
        lt_param_declare(o, p, "exp_avg_sq_scale", LT_DTYPE_F32, 1, &nblk) ||
        lt_param_declare(o, p, "exp_avg_sq_qmap", LT_DTYPE_F32, 1, &nmap))
        return LT_ERR_NOMEM;
    return LT_OK;
}

/* Zeroed codes with zero scales dequantize to 0, as torchao's fresh state does. */
static lt_status ao_init(lt_optim *o, lt_param *p, const lt_group_hp *hp) {
    (void)hp;
    if (!p->quant) return LT_OK;
    int four = ao_bits(o) == 4;
    if (lt_lowbit_init_map(o, p, "exp_avg_qmap", four ? lt_qmap_signed4 : lt_qmap_signed8, four ? 16 : 256, 0, LT_Q_UP) ||
        lt_lowbit_init_map(o, p, "exp_avg_sq_qmap", four ? lt_qmap_linear4 : lt_qmap_unsigned8, four ? 16 : 256, 1, LT_Q_UP))
        return LT_ERR_NOMEM;
    return LT_OK;
}

static lt_kqstate qstate(lt_optim *o, lt_param *p, int which) {
    lt_kqstate q = {lt_param_state(p, which ? "exp_avg_sq_codes" : "exp_avg_codes")->data,
                    lt_param_state(p, which ? "exp_avg_sq_scale" : "exp_avg_scale")->data, o->qtabs[p->qtab[which]]};
    return q;
}

static lt_status ao_step(lt_optim *o, lt_param *p, const lt_group_hp *hp, float gs) {
    double t = (double)p->step;
    lt_kao k = {(float)(hp->lr * hp->weight_decay), (float)(1.0 - hp->beta1), (float)(1.0 - hp->beta2),
                (float)hp->lr, (float)(1.0 - pow(hp->beta1, t)), (float)sqrt(1.0 - pow(hp->beta2, t)),
                (float)hp->eps, p->block, ao_bits(o)};
    if (p->quant) {
        lt_karr par = lt_param_parr(p), grad = lt_param_garr(p);
        if (p->device)
            return lt_cuda_status(o, lt_kernel_ao_adam_cuda(o->cuda, par, grad, gs, p->numel, qstate(o, p, 0),
                                                            qstate(o, p, 1), &k));
        lt_kernel_ao_adam(par, grad, gs, p->numel, qstate(o, p, 0), qstate(o, p, 1), &k);
    } else {
        lt_ktensor kt = lt_param_ktensor(p, gs);
        kt.s[0] = lt_param_karr(p, "exp_avg");
        kt.s[1] = lt_param_karr(p, "exp_avg_sq");
        if (p->device) return lt_cuda_status(o, lt_kernel_ao_adam_plain_cuda(o->cuda, &kt, &k));
        lt_kernel_ao_adam_plain(&kt, &k);
    }
    return LT_OK;
}

static lt_status ao_moment(lt_optim *o, lt_param *p, int which, float *out) {
    if (p->quant) {
        lt_kernel_dequant(qstate(o, p, which), p->numel, p->block, ao_bits(o), out);
        return LT_OK;
    }
    return lt_state_read_f32(o, p, lt_param_state(p, which ? "exp_avg_sq" : "exp_avg"), out, p->numel);
}

static lt_status ao_check(lt_optim *o, const lt_param *p, const char *state, const void *data, size_t n,
                          const char *path) {
    size_t len = strlen(state);
    int is_map = len > 5 && !strcmp(state + len - 5, "_qmap"), is_scale = len > 6 && !strcmp(state + len - 6, "_scale");
    return lt_lowbit_check(o, p, state, data, n, path, is_map, is_scale);
}

static lt_status ao_after_load(lt_optim *o, lt_param *p) {
    if (!p->quant) return LT_OK;
    if (lt_lowbit_adopt_map(o, p, "exp_avg_qmap", 0, LT_Q_UP) ||
        lt_lowbit_adopt_map(o, p, "exp_avg_sq_qmap", 1, LT_Q_UP))
        return LT_ERR_FORMAT;
    return LT_OK;
}

#define AO_FAMILY(var, fam_name)                                                                                     \
    const lt_family var = {.family = fam_name,                                                                       \
                           .keys = K_LR | K_BETA1 | K_BETA2 | K_EPS | K_WD | K_BLOCK | K_SR,                                \
                           .base_keys = K_BETA1 | K_BETA2 | K_EPS,                                                   \
                           .defaults = ao_defaults,                                                                  \
                           .validate = ao_validate,                                                                  \
                           .declare_state = ao_declare,                                                              \
                           .init_state = ao_init,                                                                    \
                           .step = ao_step,                                                                          \
                           .moment_names = {"exp_avg", "exp_avg_sq"},                                               \
                           .moment = ao_moment,                                                                      \
                           .check_state = ao_check,                                                                  \
                           .after_load = ao_after_load}
AO_FAMILY(lt_family_ao_adam8, "torchao_adamw8bit");
AO_FAMILY(lt_family_ao_adam4, "torchao_adamw4bit");

static int ao_bits(const lt_optim *o) { return o->fam == &lt_family_ao_adam4 ? 4 : 8; }
