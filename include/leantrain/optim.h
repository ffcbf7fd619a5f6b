/* leantrain optimizer library: the Hugging Face Trainer's `optim=` names in C.
 *
 * Lifecycle:
 *     lt_hparams hp = lt_hparams_default();         // the Trainer's defaults
 *     hp.lr = 3e-4; hp.weight_decay = 0.1;
 *     char err[512];
 *     lt_optim *o = lt_optim_create("adamw_torch", "amsgrad=True", &hp, err, sizeof err);
 *     int nodecay = lt_optim_add_group(o, "weight_decay=0.0");
 *     lt_optim_add_param(o, &(lt_param_desc){ .name = "w", .data = w, .grad = dw,
 *                                              .ndim = 2, .shape = {768, 3072} });
 *     for (...) { lt_optim_set_lr(o, -1, lr_at(step)); lt_optim_step(o, 1.0f / accum); }
 *     lt_optim_save(o, "optimizer.safetensors");
 *     lt_optim_free(o);
 *
 * Every function that can fail returns an lt_status (or -1 for index-returning
 * functions) and leaves a message in lt_optim_error(o). Nothing calls exit() or
 * abort(). There is no global state: two optimizers are independent and may be
 * used from different threads (one thread per optimizer at a time). A step uses
 * OpenMP threads internally.
 *
 * Parameters and gradients are caller-owned memory; the optimizer keeps
 * pointers to them and owns only its state.
 *
 * CUDA: a parameter registered with .device = 1 lives in device memory (data
 * and grad are device pointers of the current CUDA device); its state is
 * allocated on that device and its steps run as fused multi-tensor kernels on
 * the optimizer's stream (lt_optim_set_stream), asynchronously: a step returns
 * once its kernels are queued, and reads the gradients in stream order. The
 * math is the CPU's, operation for operation (the elementwise and low-bit
 * optimizers give the CPU's bits; Adafactor's sums are taken in another
 * order). lt_optim_read_state, read_moment, save and load copy device state
 * through the host (and wait for the stream). A build without CUDA, or a
 * machine without a GPU, refuses device parameters with a message; host
 * parameters never touch CUDA. */
#ifndef LEANTRAIN_OPTIM_H
#define LEANTRAIN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "leantrain/dtype.h"
#include "leantrain/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LT_MAX_DIMS 8

typedef struct lt_optim lt_optim;

/* Base hyperparameters, as the Trainer passes them (learning_rate, adam_beta1,
 * adam_beta2, adam_epsilon, weight_decay). A field set to NaN means "the
 * optimizer class's own default". beta1/beta2/eps apply to the Adam family,
 * Lion (betas only) and the low-bit Adams; sgd, adagrad and rmsprop take their
 * eps and other options from optim_args; adafactor takes its own eps1/eps2 and
 * beta1 from optim_args. lr NaN is allowed only for adafactor with
 * relative_step=True. */
typedef struct lt_hparams {
    double lr;
    double beta1;
    double beta2;
    double eps;
    double weight_decay;
} lt_hparams;

/* The Trainer's defaults: lr 5e-5, betas (0.9, 0.999), eps 1e-8, weight_decay 0. */
lt_hparams lt_hparams_default(void);

/* Describes one parameter tensor for lt_optim_add_param. */
typedef struct lt_param_desc {
    const char *name;       /* unique; names the state tensors "<name>.<state>" on save */
    void *data;             /* the parameter, numel elements of `dtype`, updated in place */
    const void *grad;       /* its gradient, numel elements of `grad_dtype`; may be set later */
    lt_dtype dtype;         /* LT_DTYPE_F32 (default), LT_DTYPE_BF16 or LT_DTYPE_F16 */
    lt_dtype grad_dtype;    /* LT_DTYPE_F32 (default), LT_DTYPE_BF16 or LT_DTYPE_F16 */
    int ndim;               /* 1..LT_MAX_DIMS (0 is taken as a scalar of one element) */
    int64_t shape[LT_MAX_DIMS];
    int group;              /* parameter group index; 0 is the default group */
    int device;             /* 0: host memory, CPU kernels. 1: data and grad are CUDA device memory of the
                               current device; state lives there too (managed memory, prefetched before each
                               step, for the paged_* names) and steps run on the GPU */
} lt_param_desc;

/* Creates an optimizer.
 *   name:       an `optim=` name (see lt_optim_info_at), e.g. "adamw_torch", "adafactor".
 *   optim_args: "k=v,k=v" options of that optimizer (e.g. "momentum=0.9,nesterov=True"),
 *               or NULL/"" for none. Unknown keys and malformed values are errors. Every
 *               family also takes bf16_stochastic_round=True: bf16 parameters are written
 *               back with stochastic rounding (16 random bits added below the bf16 mantissa,
 *               from a hash of the parameter, step and element, identical on CPU and GPU)
 *               instead of round-to-nearest-even.
 *   hp:         base hyperparameters, or NULL for lt_hparams_default().
 *   err:        receives the message on failure (may be NULL).
 * Returns NULL on failure. */
lt_optim *lt_optim_create(const char *name, const char *optim_args, const lt_hparams *hp, char *err,
                          size_t errlen);

/* Frees the optimizer and its state (not the caller's parameters). NULL is a no-op. */
void lt_optim_free(lt_optim *o);

/* The message of the last failed call on `o` ("" if none). */
const char *lt_optim_error(const lt_optim *o);

/* The canonical name this optimizer was created with. */
const char *lt_optim_name(const lt_optim *o);

/* Adds a parameter group that starts as a copy of group 0's hyperparameters
 * with `overrides` ("k=v,k=v": any base hyperparameter lr, beta1, beta2, eps,
 * weight_decay, or any optim_args key) applied. Returns the new group index,
 * or -1 on error. */
int lt_optim_add_group(lt_optim *o, const char *overrides);

/* Sets hyperparameter `key` of `group` (-1: every group) from its text form, as
 * in optim_args. */
lt_status lt_optim_set_hparam(lt_optim *o, int group, const char *key, const char *value);

/* Sets the learning rate of `group` (-1: every group) for the next steps; a
 * scheduler calls it before every step. */
lt_status lt_optim_set_lr(lt_optim *o, int group, double lr);

/* The learning rate of `group` (NaN for a bad index). */
double lt_optim_get_lr(const lt_optim *o, int group);

/* Number of groups (>= 1). */
int lt_optim_group_count(const lt_optim *o);

/* Registers a parameter and allocates its state (zeroed as the reference
 * initialises it). Returns the parameter index (0, 1, ...) or -1 on error. */
int lt_optim_add_param(lt_optim *o, const lt_param_desc *desc);

/* Changes where parameter `index` reads its gradient (e.g. a new buffer; a
 * device pointer for a device parameter). */
lt_status lt_optim_set_grad(lt_optim *o, int index, const void *grad, lt_dtype grad_dtype);

/* Number of registered parameters. */
int lt_optim_param_count(const lt_optim *o);

/* Index of the parameter called `name`, or -1. */
int lt_optim_find_param(const lt_optim *o, const char *name);

/* One optimizer step over every parameter. Each gradient element is read as
 * g * grad_scale, which folds 1/accumulation_steps, the clipping factor and
 * 1/loss_scale into the read. */
lt_status lt_optim_step(lt_optim *o, float grad_scale);

/* One step of parameter `index` only (for stepping inside backward). Each
 * parameter keeps its own step count, as torch does. */
lt_status lt_optim_step_param(lt_optim *o, int index, float grad_scale);

/* The step count of parameter `index` (0 before its first step; -1 on a bad index). */
int64_t lt_optim_param_step(const lt_optim *o, int index);

/* Exact bytes of optimizer state allocated for the registered parameters. */
size_t lt_optim_state_bytes(const lt_optim *o);

/* The state bytes lt_optim_add_param would allocate for `desc`, without
 * allocating or registering anything (data and grad may be NULL): for
 * planning memory before training. Returns (size_t)-1 on a bad desc (message
 * in lt_optim_error). */
size_t lt_optim_plan_param(lt_optim *o, const lt_param_desc *desc);

/* Names of the state tensors of parameter `index` (e.g. "exp_avg",
 * "exp_avg_sq"); returns the count and writes up to `cap` names. */
int lt_optim_state_names(const lt_optim *o, int index, const char **names, int cap);

/* Copies state `state` of parameter `index` as n float32 values (converted
 * from its storage dtype). n must equal the state tensor's element count,
 * which lt_optim_state_numel returns (0 if there is no such state). */
lt_status lt_optim_read_state(const lt_optim *o, int index, const char *state, float *out, size_t n);
size_t lt_optim_state_numel(const lt_optim *o, int index, const char *state);

/* Copies the first (which = 0) or second (which = 1) moment of parameter
 * `index` as numel float32 values, dequantized for the low-bit optimizers
 * (Adam's exp_avg / exp_avg_sq, bitsandbytes' state1 / state2, Lion's single
 * moment as 0). LT_ERR_ARG when the optimizer keeps no such moment. */
lt_status lt_optim_read_moment(const lt_optim *o, int index, int which, float *out, size_t n);

/* Saves every state tensor as "<param>.<state>" (the reference's state names)
 * to a safetensors file written atomically, with metadata: format
 * "leantrain-optim-1", optim, optim_args, groups (JSON hyperparameters per
 * group), params (JSON list), steps (JSON map param -> step count). */
lt_status lt_optim_save(lt_optim *o, const char *path);

/* Loads state saved by lt_optim_save into an optimizer built the same way
 * (same name, same parameters with the same shapes). Every parameter's state
 * must be present with the exact dtype and shape; the group hyperparameters
 * and learning rates saved in the file are restored. On error nothing is
 * changed. */
lt_status lt_optim_load(lt_optim *o, const char *path);

/* ---- CUDA (device parameters) ---- */

/* Number of CUDA devices leantrain's kernels run on (compute capability 8.0,
 * Ampere, or later): 0 (not an error) in a build without CUDA, without a
 * driver or without such a GPU. Calls into CUDA only in a CUDA build. */
int lt_cuda_device_count(void);

/* The CUDA stream (a cudaStream_t) the device steps, state copies and checks
 * are queued on; NULL (the default) is the legacy default stream. Work queued
 * on the previous stream is waited for first. LT_ERR_DEVICE without CUDA. */
lt_status lt_optim_set_stream(lt_optim *o, void *cuda_stream);

/* A found-inf flag for mixed-precision training: `device_flag` is an int in
 * device memory (NULL turns it off). While set, every kernel of a step first
 * reads *device_flag and, when it is non-zero, returns without writing, so the
 * whole step is skipped without a host round-trip; a skipped step does not
 * count in the step counts (read back lazily: before the next step of the
 * same parameter, or lt_optim_param_step, save, load). With check = 1, each
 * step first ORs into the flag whether any gradient element * grad_scale of
 * the stepped parameters is inf or NaN; with check = 0 only the caller sets it
 * (e.g. with lt_optim_check_finite). The library never clears the flag: zero
 * it (cudaMemsetAsync on the stream) before each step. Only for optimizers
 * whose parameters are all on the device. */
lt_status lt_optim_set_found_inf(lt_optim *o, int *device_flag, int check);

/* Runs the found-inf check alone: ORs into the flag whether any gradient
 * element * grad_scale of the device parameters is inf or NaN (queued on the
 * stream; nothing else is done). */
lt_status lt_optim_check_finite(lt_optim *o, float grad_scale);

/* Waits for the optimizer's queued device work and reports an error of it
 * (a no-op without device parameters). */
lt_status lt_optim_sync(lt_optim *o);

/* Some device kernels come in forms that give the same bits at different
 * speeds (the low-bit optimizers' and Adafactor's): a step's launch of such a
 * kernel takes each form in turn for its first launches, timed with CUDA
 * events, then keeps the fastest, per launch shape (LT_TUNE=0 in the
 * environment keeps the default forms; a found-inf flag does too). Writes
 * one line per launch shape into buf (truncated to len - 1): each form's
 * best time in ms and the choice, or "choosing". Reads back only the timings
 * already done (no wait). Returns the number of lines: 0 without device
 * parameters or such kernels. */
int lt_optim_device_tuning(lt_optim *o, char *buf, size_t len);

/* ---- the registry of names ---- */

typedef struct lt_optim_info {
    const char *name;            /* the optim= name */
    const char *reference;       /* the implementation whose numbers it reproduces */
    double state_bytes_per_param; /* for a large matrix of fp32 params with default options */
    const char *state;           /* the state kept, in words */
} lt_optim_info;

/* The i-th supported name (0 <= i), or NULL past the end. */
const lt_optim_info *lt_optim_info_at(int i);

/* The entry for `name` (aliases included), or NULL. */
const lt_optim_info *lt_optim_info_find(const char *name);

#ifdef __cplusplus
}
#endif
#endif
