/* Internals shared by the optimizer families, the registry, the argument
 * parser and state save/load. Not a public header. */
#ifndef LT_OPTIM_INTERNAL_H
#define LT_OPTIM_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#include "kernels/optim_kernels.h"
#include "kernels/optim_kernels_cuda.h"
#include "leantrain/optim.h"

#define LT_MAX_STATES 8

/* Every hyperparameter any family reads; a group owns one copy. Which keys a
 * family accepts is listed in its lt_family.keys. */
typedef struct lt_group_hp {
    double lr, beta1, beta2, eps, weight_decay;
    double momentum, dampening;               /* sgd, rmsprop (momentum) */
    double alpha;                             /* rmsprop */
    double lr_decay, initial_accumulator_value; /* adagrad */
    double eps1, eps2, clip_threshold, decay_rate, af_beta1; /* adafactor; af_beta1 NaN = None */
    bool nesterov, centered, amsgrad;
    bool scale_parameter, relative_step, warmup_init;
    bool kahan;                               /* anyprecision use_kahan_summation */
    lt_dtype momentum_dtype, variance_dtype, compensation_dtype;
    double block_size;                        /* low-bit: elements per quantization block */
    double min_8bit_size;                     /* bitsandbytes: smaller tensors keep f32 state */
    bool sr;                                  /* bf16_stochastic_round: bf16 parameters round stochastically */
} lt_group_hp;

typedef struct lt_state {
    char name[32];
    lt_dtype dtype;
    int ndim;
    int64_t shape[LT_MAX_DIMS];
    size_t numel;
    void *data;
} lt_state;

typedef struct lt_param {
    char *name;
    void *data;
    const void *grad;
    lt_dtype dtype, grad_dtype;
    int ndim;
    int64_t shape[LT_MAX_DIMS];
    size_t numel;
    int group;
    int64_t step;
    int nstate;
    lt_state st[LT_MAX_STATES];
    int quant;      /* low-bit families: 1 when this tensor's state is quantized */
    size_t block;   /* low-bit families: its block size */
    int qtab[2];    /* low-bit families: indexes into lt_optim.qtabs for its two maps */
    int device;     /* 1: data, grad and state are CUDA device memory (optim/device.c) */
    uint32_t sr_seed; /* this step's stochastic-rounding seed (0: round to nearest even) */
    int64_t pend;   /* device: the found-inf record of its last step not yet read back (0: none; -1: queued) */
    int viewed;     /* device: the state pointers are host copies (lt_device_view) */
} lt_param;

typedef struct lt_family lt_family;

struct lt_optim {
    const lt_family *fam;
    char name[48];
    char *optim_args;
    lt_group_hp *groups;
    int ngroups;
    lt_param *params;
    int nparams, cap;
    double *work;       /* adafactor: column accumulators */
    size_t work_len;
    float *small;       /* adafactor: row/col factors, sized for the largest parameter */
    size_t small_len;
    struct lt_qtable **qtabs; /* low-bit families: search tables of the maps in use */
    int nqtabs;
    lt_cuda *cuda;      /* device parameters: the CUDA context (stream, queue, workspace) */
    int ndevice;        /* how many parameters are on the device */
    int *found_inf;     /* the device found-inf flag, or NULL */
    int64_t rec_seq;    /* found-inf records: the next sequence number, and the live one per ring slot */
    int64_t rec_live[LT_CUDA_RECORDS];
    char err[512];
};

/* Keys of optim_args / group overrides; a family accepts a subset. */
enum {
    K_LR = 1u << 0, K_BETA1 = 1u << 1, K_BETA2 = 1u << 2, K_EPS = 1u << 3, K_WD = 1u << 4,
    K_MOMENTUM = 1u << 5, K_DAMPENING = 1u << 6, K_NESTEROV = 1u << 7, K_ALPHA = 1u << 8,
    K_CENTERED = 1u << 9, K_LR_DECAY = 1u << 10, K_INIT_ACC = 1u << 11, K_AMSGRAD = 1u << 12,
    K_EPS1 = 1u << 13, K_EPS2 = 1u << 14, K_CLIP = 1u << 15, K_DECAY_RATE = 1u << 16,
    K_AF_BETA1 = 1u << 17, K_SCALE_PARAM = 1u << 18, K_RELATIVE = 1u << 19, K_WARMUP_INIT = 1u << 20,
    K_KAHAN = 1u << 21, K_MOM_DTYPE = 1u << 22, K_VAR_DTYPE = 1u << 23, K_COMP_DTYPE = 1u << 24,
    K_BLOCK = 1u << 25, K_MIN8 = 1u << 26, K_SR = 1u << 27,
};

struct lt_family {
    const char *family;
    unsigned keys;      /* accepted optim_args keys */
    unsigned base_keys; /* which of beta1, beta2, eps the base hyperparameters set (lr, wd always) */
    /* sets the class defaults that differ from the zeroed/base values */
    void (*defaults)(lt_group_hp *hp);
    /* checks a group's hyperparameters; message via lt_optim_fail */
    lt_status (*validate)(lt_optim *o, const lt_group_hp *hp);
    /* declares the state tensors of a new parameter (names, dtypes, shapes) */
    lt_status (*declare_state)(lt_optim *o, lt_param *p, const lt_group_hp *hp);
    /* optional: fills freshly zeroed state (e.g. Adagrad's initial accumulator) */
    lt_status (*init_state)(lt_optim *o, lt_param *p, const lt_group_hp *hp);
    /* one step of one parameter; p->step is already incremented */
    lt_status (*step)(lt_optim *o, lt_param *p, const lt_group_hp *hp, float gscale);
    /* the names of the first and second moment states (NULL: none); read back
     * dequantized by lt_optim_read_moment */
    const char *moment_names[2];
    /* optional: the dequantized moment `which` (0, 1) of p into out (numel values) */
    lt_status (*moment)(lt_optim *o, lt_param *p, int which, float *out);
    /* optional: checks a state tensor read from a file before it is loaded */
    lt_status (*check_state)(lt_optim *o, const lt_param *p, const char *state, const void *data, size_t numel,
                             const char *path);
    /* optional: called after state was loaded (e.g. to adopt the file's maps) */
    lt_status (*after_load)(lt_optim *o, lt_param *p);
    /* save a "<param>.step" I64 tensor besides the metadata (bitsandbytes' state names) */
    int step_tensor;
};

/* A registered name: the family it runs and settings it forces. */
typedef struct lt_name_entry {
    lt_optim_info info;
    const lt_family *fam;
    const char *forced_args; /* applied before the user's optim_args, e.g. "l2=1" */
} lt_name_entry;

extern const lt_family lt_family_adam, lt_family_adamw, lt_family_sgd, lt_family_adagrad, lt_family_rmsprop,
    lt_family_lion, lt_family_adafactor, lt_family_anyprecision, lt_family_bnb_adam8, lt_family_bnb_lion8,
    lt_family_ao_adam8, lt_family_ao_adam4;

/* The registry entry for name (aliases included), or NULL. */
const lt_name_entry *lt_registry_find(const char *name);

/* Records a formatted message on o and returns code. */
lt_status lt_optim_fail(lt_optim *o, lt_status code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Applies "k=v,k=v" to hp for family fam; on error writes err and returns LT_ERR_ARG.
 * `what` names the string's origin in messages ("optim_args", "group 1"). */
lt_status lt_hp_apply_args(const lt_family *fam, lt_group_hp *hp, const char *args, const char *what, char *err,
                           size_t errlen);

/* Sets one key from its text value. */
lt_status lt_hp_set(const lt_family *fam, lt_group_hp *hp, const char *key, const char *value, char *err,
                    size_t errlen);

/* Writes hp as a JSON object of the keys the family accepts (for metadata). Returns a malloc'd string. */
char *lt_hp_to_json(const lt_family *fam, const lt_group_hp *hp);

/* Adds a state tensor of p with the given dtype and shape (allocated zeroed later). */
lt_status lt_param_declare(lt_optim *o, lt_param *p, const char *name, lt_dtype dt, int ndim,
                           const int64_t *shape);

/* Index into o->qtabs of the search table for `map` (n values) under rounding
 * rule `rule` (an lt_qrule), building it if no such table exists yet; -1 (with
 * a message) for a map that is not sorted and finite. */
int lt_optim_qtab(lt_optim *o, const float *map, int n, int rule);

/* The state named `name` of p, or NULL. */
lt_state *lt_param_state(lt_param *p, const char *name);


/* The kernel operands of p's parameter (with this step's rounding seed) and gradient. */
static inline lt_karr lt_param_parr(const lt_param *p) {
    lt_karr a = {p->data, p->dtype, p->sr_seed};
    return a;
}
static inline lt_karr lt_param_garr(const lt_param *p) {
    lt_karr a = {(void *)p->grad, p->grad_dtype, 0};
    return a;
}

/* The kernel view of p's parameter and gradient, with no state operands. */
static inline lt_ktensor lt_param_ktensor(const lt_param *p, float gscale) {
    lt_ktensor t;
    memset(&t, 0, sizeof t);
    t.p = lt_param_parr(p);
    t.g = lt_param_garr(p);
    t.n = p->numel;
    t.gscale = gscale;
    for (int k = 0; k < 4; k++) t.s[k].dt = LT_DTYPE_F32;
    return t;
}

/* The kernel operand of state `name` of p ({NULL} when absent). */
static inline lt_karr lt_param_karr(lt_param *p, const char *name) {
    lt_state *s = lt_param_state(p, name);
    lt_karr a = {s ? s->data : NULL, s ? s->dtype : LT_DTYPE_F32, 0};
    return a;
}

/* ---- device parameters (optim/device.c) ---- */

/* A CUDA backend result as a status, with the backend's message. */
static inline lt_status lt_cuda_status(lt_optim *o, int rc) {
    return rc ? lt_optim_fail(o, LT_ERR_DEVICE, "%s", lt_cuda_error(o->cuda)) : LT_OK;
}
/* Checks a device parameter's description (creating the CUDA context on first use). */
lt_status lt_device_check(lt_optim *o, const lt_param_desc *d);
/* Allocates p's declared states on the device (managed for paged_* names), zeroed,
 * with the family's init_state applied (through host staging). */
lt_status lt_device_alloc_states(lt_optim *o, lt_param *p, const lt_group_hp *hp);
void lt_device_free_states(lt_optim *o, lt_param *p);
/* Host view of a device parameter's states: host copies replace p's state
 * pointers (downloaded when fetch) until lt_device_unview, which uploads them
 * back when upload and restores the device pointers. */
lt_status lt_device_view(lt_optim *o, lt_param *p, void **saved, int fetch);
lt_status lt_device_unview(lt_optim *o, lt_param *p, void **saved, int upload);
/* Reads back the found-inf record of p's last step (a skipped step is not counted). */
lt_status lt_device_resolve(lt_optim *o, lt_param *p);
lt_status lt_device_resolve_all(lt_optim *o);
/* Around the family step calls of one step: prefetch paged state; flush the queued kernels. */
lt_status lt_device_step_begin(lt_optim *o);
lt_status lt_device_step_end(lt_optim *o);
/* Copies n elements of state s (host or device) into out as f32. */
lt_status lt_state_read_f32(lt_optim *o, const lt_param *p, const lt_state *s, float *out, size_t n);

#endif
