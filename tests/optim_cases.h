/* The optimizer configurations the tests sweep: every registered name, plus
 * the options that change which state exists. */
#ifndef LT_TEST_OPTIM_CASES_H
#define LT_TEST_OPTIM_CASES_H
typedef struct {
    const char *name, *args;
    double lr;
} optim_case;

static const optim_case OPTIM_CASES[] = {
    {"adamw_torch", "", 1e-3},
    {"adamw_torch", "amsgrad=True", 1e-3},
    {"adamw_torch_fused", "", 1e-3},
    {"adamw_apex_fused", "", 1e-3},
    {"paged_adamw_32bit", "", 1e-3},
    {"adam", "amsgrad=True", 1e-3},
    {"adamw_anyprecision", "", 1e-3},
    {"adamw_anyprecision", "use_kahan_summation=True,momentum_dtype=bfloat16,variance_dtype=bfloat16", 1e-3},
    {"sgd", "", 1e-2},
    {"sgd", "momentum=0.9,nesterov=True", 1e-2},
    {"sgd", "momentum=0.9,dampening=0.1", 1e-2},
    {"adagrad", "lr_decay=0.01,initial_accumulator_value=0.1", 1e-2},
    {"rmsprop", "", 1e-3},
    {"rmsprop", "momentum=0.9,centered=True", 1e-3},
    {"lion_32bit", "", 1e-4},
    {"paged_lion_32bit", "", 1e-4},
    {"adafactor", "", 1e-3},
    {"adafactor", "beta1=0.9,scale_parameter=True", 1e-3},
    {"adafactor", "relative_step=True,warmup_init=True,scale_parameter=True", -1},
    {"adamw_bnb_8bit", "", 1e-3},
    {"adamw_8bit", "block_size=128", 1e-3},
    {"paged_adamw_8bit", "min_8bit_size=100", 1e-3},
    {"lion_8bit", "", 1e-4},
    {"paged_lion_8bit", "block_size=2048", 1e-4},
    {"adamw_torch_8bit", "", 1e-3},
    {"adamw_torch_4bit", "", 1e-3},
    {"adamw_torch_4bit", "block_size=128", 1e-3},
};
#define N_OPTIM_CASES ((int)(sizeof OPTIM_CASES / sizeof OPTIM_CASES[0]))
#endif
