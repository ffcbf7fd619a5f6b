/* The optim= names: which family runs each, and what `leantrain optimizers` prints. */
#include <string.h>

#include "optim/optim_internal.h"

static const lt_name_entry NAMES[] = {
    {{"adamw_torch", "torch.optim.AdamW (amsgrad via optim_args)", 8, "exp_avg, exp_avg_sq f32"}, &lt_family_adamw, NULL},
    {{"adamw_torch_fused", "torch.optim.AdamW(fused=True): same math, one fused pass", 8, "exp_avg, exp_avg_sq f32"}, &lt_family_adamw, NULL},
    {{"adamw_apex_fused", "apex FusedAdam (adam_w_mode): same math as adamw_torch", 8, "exp_avg, exp_avg_sq f32"}, &lt_family_adamw, NULL},
    {{"paged_adamw_32bit", "bitsandbytes PagedAdamW 32-bit (on CPU the same as unpaged)", 8, "exp_avg, exp_avg_sq f32"}, &lt_family_adamw, NULL},
    {{"adam", "torch.optim.Adam (weight decay as L2)", 8, "exp_avg, exp_avg_sq f32"}, &lt_family_adam, NULL},
    {{"adamw_anyprecision", "torchdistx AnyPrecisionAdamW", 8, "exp_avg, exp_avg_sq f32|bf16 (+ bf16 compensation with Kahan)"}, &lt_family_anyprecision, NULL},
    {{"sgd", "torch.optim.SGD", 0, "momentum_buffer f32 when momentum > 0 (then 4 B)"}, &lt_family_sgd, NULL},
    {{"adagrad", "torch.optim.Adagrad", 4, "sum f32"}, &lt_family_adagrad, NULL},
    {{"rmsprop", "torch.optim.RMSprop", 4, "square_avg f32 (+ momentum_buffer, + grad_avg if centered)"}, &lt_family_rmsprop, NULL},
    {{"lion_32bit", "bitsandbytes Lion 32-bit (lion-pytorch math)", 4, "exp_avg f32"}, &lt_family_lion, NULL},
    {{"paged_lion_32bit", "bitsandbytes PagedLion 32-bit (on CPU the same as unpaged)", 4, "exp_avg f32"}, &lt_family_lion, NULL},
    /* 4096x4096 matrix: (4096 + 4096) f32 factors over 4096*4096 elements */
    {{"adafactor", "transformers.optimization.Adafactor (Trainer: scale_parameter=False, relative_step=False)", (4096.0 + 4096.0) * 4 / (4096.0 * 4096.0), "exp_avg_sq_row, exp_avg_sq_col f32 (1-D: exp_avg_sq; + exp_avg with beta1)"}, &lt_family_adafactor, NULL},
    {{"adamw_bnb_8bit", "bitsandbytes AdamW8bit (blockwise, block 256)", 2 + 8.0 / 256, "state1, state2 u8 codes + absmax1, absmax2 f32 per block (f32 state under min_8bit_size)"}, &lt_family_bnb_adam8, NULL},
    {{"adamw_8bit", "bitsandbytes AdamW8bit (the Trainer's alias)", 2 + 8.0 / 256, "state1, state2 u8 codes + absmax1, absmax2 f32 per block"}, &lt_family_bnb_adam8, NULL},
    {{"paged_adamw_8bit", "bitsandbytes PagedAdamW8bit (on CPU the same as unpaged)", 2 + 8.0 / 256, "state1, state2 u8 codes + absmax1, absmax2 f32 per block"}, &lt_family_bnb_adam8, NULL},
    {{"lion_8bit", "bitsandbytes Lion8bit (blockwise, block 256)", 1 + 4.0 / 256, "state1 u8 codes + absmax1 f32 per block"}, &lt_family_bnb_lion8, NULL},
    {{"paged_lion_8bit", "bitsandbytes PagedLion8bit (on CPU the same as unpaged)", 1 + 4.0 / 256, "state1 u8 codes + absmax1 f32 per block"}, &lt_family_bnb_lion8, NULL},
    {{"adamw_torch_8bit", "torchao AdamW8bit (block 256)", 2 + 8.0 / 256, "exp_avg, exp_avg_sq u8 codes + f32 scale per block"}, &lt_family_ao_adam8, NULL},
    {{"adamw_torch_4bit", "torchao AdamW4bit (block 256 as under the Trainer)", 1 + 8.0 / 256, "exp_avg, exp_avg_sq 4-bit codes, two per byte + f32 scale per block"}, &lt_family_ao_adam4, NULL},
};
#define NNAMES ((int)(sizeof NAMES / sizeof NAMES[0]))

/* Names that traces and other tools use for the same optimizer. */
static const struct {
    const char *alias, *name;
} ALIASES[] = {
    {"lion", "lion_32bit"},
    {"adamw", "adamw_torch"},
};

const lt_name_entry *lt_registry_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof ALIASES / sizeof ALIASES[0]; i++)
        if (!strcmp(name, ALIASES[i].alias)) name = ALIASES[i].name;
    for (int i = 0; i < NNAMES; i++)
        if (!strcmp(NAMES[i].info.name, name)) return &NAMES[i];
    return NULL;
}

const lt_optim_info *lt_optim_info_at(int i) { return i >= 0 && i < NNAMES ? &NAMES[i].info : NULL; }

const lt_optim_info *lt_optim_info_find(const char *name) {
    const lt_name_entry *e = lt_registry_find(name);
    return e ? &e->info : NULL;
}
