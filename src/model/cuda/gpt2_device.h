/* leantrain (internal, model layer): the GPT-2 model of model/gpt2.h on one
 * CUDA device, seen from C.
 *
 * An lt_gpt2_dev mirrors a host lt_gpt2 (same config, same parameter table
 * and the same padded parameter layout, so one copy moves every weight) and
 * runs the host model's forward / backward sequence with the lt_cunn layer
 * kernels (gpt2_layers_cuda.h) on a stream:
 *
 *     lt_gpt2_dev *d;
 *     lt_gpt2_dev_create(host, NULL, &d, err, sizeof err);   // uploads the host weights
 *     lt_gpt2_dev_set_precision(d, LT_GPT2_BF16, 0, err, sizeof err);
 *     lt_gpt2_dev_set_batch(d, B, T, err, sizeof err);
 *     // the optimizer: .data = lt_gpt2_dev_param_at(d, i)->data, .grad = ...->grad, .device = 1
 *     for (...) {
 *         lt_gpt2_dev_zero_grad(d, err, sizeof err);
 *         lt_gpt2_dev_forward(d, inputs, targets, B, T, &loss, err, sizeof err);  // host token arrays
 *         lt_gpt2_dev_backward(d, err, sizeof err);
 *         lt_optim_step(o, 1.0f);
 *         lt_gpt2_dev_refresh_bf16(d, err, sizeof err);  // the 16-bit compute copy from the new fp32 weights
 *     }
 *     lt_gpt2_dev_download(d, host, err, sizeof err);    // weights back, e.g. to save them
 *     lt_gpt2_dev_free(d);
 *
 * Device memory (every byte cudaMalloc'd by the model is counted, see
 * lt_gpt2_dev_allocated_bytes, and predicted by lt_gpt2_dev_memory_plan):
 *   - fp32 master weights, one buffer in the host layout (NULL when pure bf16);
 *   - in bf16 or fp16 compute a 16-bit copy of them in the same layout (the
 *     weights the forward and backward read), or, pure bf16, the parameters
 *     themselves;
 *   - fp32 gradients in the same layout, or per-block (the blocks share one
 *     block-sized buffer, as lt_gpt2_set_grad_per_block);
 *   - one buffer made by lt_gpt2_dev_set_batch: the activations in the
 *     storage type (fp32, or bf16 / fp16 in 16-bit compute: the two have the
 *     same sizes; layernorm statistics, the
 *     log-sum-exp and losses in fp32), logits [B*T, ldv] with ldv = V padded
 *     to a multiple of 64 (or one chunk of rows of them: set_head_rows), the
 *     backward's activation gradients (storage type) and the column-sum
 *     scratch of the lt_cunn kernels, the token ids, the encoder's bucket
 *     list, the loss sum and the gradient norm's partial sums.
 * Nothing is allocated by forward or backward.
 *
 * Precision. fp32 (LT_GPT2_F32): every activation and weight read in fp32;
 * the same arithmetic as the CPU model in another summation order. bf16
 * (LT_GPT2_BF16): llm.c's mixed precision, not the CPU's autocast emulation:
 * every stored activation (the residual stream included) and every
 * activation gradient is bf16, the forward and backward read the weights'
 * bf16 copy (layernorm weights and embeddings included), matrix multiplies
 * accumulate in fp32 (cuBLAS), everything else computes in fp32, and the
 * parameter gradients are fp32. fp16 (LT_GPT2_F16): the same scheme with
 * IEEE half storage (11 significant bits, largest finite value 65504) and
 * fp32 master weights (pure 16-bit parameters are bf16 only): every
 * activation, activation gradient and the weights' compute copy is fp16, the
 * parameter gradients fp32, except that each matrix multiply's weight and
 * bias gradient is rounded to fp16 before it is added into its fp32 gradient
 * (a 16-bit op's gradient under torch.autocast, and in the CPU model; the
 * rounded products pass through activation-gradient buffers free at the time,
 * no extra memory), so that the overflow that comes first as the loss scale
 * grows, in those sums over all B*T rows, happens here as it does there. Use
 * it with a loss scale (lt_gpt2_dev_set_loss_scale,
 * torch.amp.GradScaler's rule in the trainer): unscaled, activation gradients
 * of order 1/(B T V) fall below fp16's normal range; too large a scale makes
 * them overflow to inf, and since no backward kernel masks inf or NaN, the
 * overflow reaches the fp32 gradients and lt_gpt2_dev_grad_norm returns a
 * non-finite norm, which is how a trainer detects it (and skips the step).
 * Unlike the CPU's fp16 mode (torch.autocast's emulation: residual stream,
 * layernorm parameters and embeddings in fp32) the residual stream is fp16
 * here, so a forward activation above 65504 becomes inf (a non-finite loss).
 *
 * Streams. Every operation is queued on the model's stream (given at create;
 * NULL: the legacy default stream). Functions that return a value computed
 * on the device (forward's loss, download) wait for the stream. Register the
 * optimizer on the same stream (lt_optim_set_stream(o, lt_gpt2_dev_stream(d)))
 * so that its steps read the gradients in order.
 *
 * Functions that can fail return an lt_status and write a message into
 * err[errlen] (which may be NULL); CUDA and lt_cunn failures are
 * LT_ERR_DEVICE. In a build without CUDA every function that needs a device
 * returns LT_ERR_DEVICE with a message that says so; lt_gpt2_dev_memory_plan
 * works in every build. */
#ifndef LEANTRAIN_MODEL_CUDA_GPT2_DEVICE_H
#define LEANTRAIN_MODEL_CUDA_GPT2_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* inside the C linkage block: model/gpt2.h has no guard of its own */
#include "leantrain/status.h"
#include "model/gpt2.h"

typedef struct lt_gpt2_dev lt_gpt2_dev;

/* One parameter tensor on the device (names and shapes: the host model's
 * params[i] with the same index). */
typedef struct lt_gpt2_dev_param {
    float *data;      /* device: fp32 values (the master weights); NULL when the parameters are pure bf16 */
    uint16_t *data16; /* device: 16-bit values: the compute copy (bf16 bits in bf16 compute, fp16 bits in fp16
                         compute), the bf16 parameter itself (pure bf16), NULL in fp32 compute */
    float *grad;      /* device: the fp32 gradient; per-block mode: tensor k of every block shares block 0's */
    size_t numel;
} lt_gpt2_dev_param;

/* Creates the device model of `host` on the current CUDA device: its config
 * and parameter layout, fp32 weights uploaded from host (which must not be
 * pure bf16 unless this model is made pure with set_precision first: see
 * lt_gpt2_dev_upload), fp32 compute, one gradient per parameter (zeroed), no
 * activations yet. The host model's precision, checkpointing and per-block
 * settings are NOT copied: set them on the device model. `stream` is a
 * cudaStream_t (NULL: the legacy default stream) the model queues all its
 * work on. *out is NULL on failure (LT_ERR_DEVICE without a device, cuBLAS or
 * CUDA support; LT_ERR_NOMEM when device memory runs out). */
lt_status lt_gpt2_dev_create(const lt_gpt2 *host, void *stream, lt_gpt2_dev **out, char *err, size_t errlen);

/* lt_gpt2_dev_create for compute precision p, pure_bf16 and per-block
 * gradients (arguments as lt_gpt2_dev_set_precision and
 * lt_gpt2_dev_set_grad_per_block) from the start: the model is what create
 * followed by those two calls leaves, but it never holds the buffers they
 * replace (the fp32 weights of a pure-bf16 model, a whole-model gradient in
 * per-block mode), so its peak device memory is the steady state the planner
 * counts. A pure-bf16 host uploads without a round trip through fp32.
 * LT_ERR_ARG for a precision set_precision refuses. */
lt_status lt_gpt2_dev_create_as(const lt_gpt2 *host, void *stream, lt_gpt2_precision p, int pure_bf16,
                                int grad_per_block, lt_gpt2_dev **out, char *err, size_t errlen);

/* Waits for the stream and frees the model and all its device memory. NULL
 * is a no-op. */
void lt_gpt2_dev_free(lt_gpt2_dev *d);

/* Copies every parameter of `host` (same config) to the device: into the
 * fp32 master weights (from host fp32 values, or from bf16 ones expanded
 * exactly when the host model is pure bf16), or, when the device model is
 * pure bf16, into its bf16 parameters (host fp32 values rounded to nearest
 * even, host bf16 values copied). Refreshes the bf16 compute copy. Waits for
 * the copies. LT_ERR_ARG when the configs differ. */
lt_status lt_gpt2_dev_upload(lt_gpt2_dev *d, const lt_gpt2 *host, char *err, size_t errlen);

/* Copies every device parameter back into `host` (same config): fp32 master
 * weights into host fp32 values (rounded to nearest even into a pure-bf16
 * host), bf16 parameters of a pure-bf16 device model into host bf16 values
 * (expanded exactly into an fp32 host). Waits for the stream. */
lt_status lt_gpt2_dev_download(const lt_gpt2_dev *d, lt_gpt2 *host, char *err, size_t errlen);

/* Copies the device gradient of every parameter into host->params[i].grad
 * (fp32, numel values each). In per-block mode (either model) the blocks
 * share a buffer and only the last written block's values survive: use it
 * with one gradient per parameter. Waits for the stream. */
lt_status lt_gpt2_dev_download_grads(const lt_gpt2_dev *d, lt_gpt2 *host, char *err, size_t errlen);

/* Allocates the activation buffer for batches of up to B sequences of up to
 * T tokens (T <= n_positions), replacing an earlier one. Call it after the
 * precision and checkpointing settings, once before a training loop.
 * LT_ERR_ARG for sizes out of range. */
lt_status lt_gpt2_dev_set_batch(lt_gpt2_dev *d, int B, int T, char *err, size_t errlen);

/* Gradient checkpointing as lt_gpt2_set_checkpointing: forward keeps each
 * block's output only; backward recomputes a block's internals (the same
 * kernels on the same inputs) just before its backward, so the gradients are
 * bit-identical to the run without it. Frees the activation buffer: call
 * lt_gpt2_dev_set_batch after it. */
void lt_gpt2_dev_set_checkpointing(lt_gpt2_dev *d, int on);

/* Label smoothing of the loss, as lt_gpt2_set_label_smoothing (0, the
 * default: none): every forward with targets, evaluation included, and the
 * classifier's gradient. */
void lt_gpt2_dev_set_label_smoothing(lt_gpt2_dev *d, float eps);

/* NEFTune's noise on the token embeddings of training forwards, as
 * lt_gpt2_set_neftune: the same values (0, the default: none). */
void lt_gpt2_dev_set_neftune(lt_gpt2_dev *d, float alpha);

/* The compute precision: LT_GPT2_F32, LT_GPT2_BF16 or LT_GPT2_F16 (see the
 * top of this file). bf16 or fp16 with fp32 masters allocates the 16-bit
 * compute copy (one buffer, kept when switching between the two) and fills
 * it from the masters; pure_bf16 (p must be LT_GPT2_BF16: LT_ERR_ARG with
 * LT_GPT2_F16, whose loss-scaled updates need fp32 masters) keeps the
 * parameters only in bf16 (the current fp32 values rounded to nearest even,
 * the fp32 buffer freed; leaving pure bf16 expands them back exactly). Frees
 * the activation buffer: call lt_gpt2_dev_set_batch after it. */
lt_status lt_gpt2_dev_set_precision(lt_gpt2_dev *d, lt_gpt2_precision p, int pure_bf16, char *err, size_t errlen);

/* Per-block gradients as lt_gpt2_set_grad_per_block: every block's tensors
 * share one block-sized gradient buffer (their grad pointers point into
 * it), zeroed before each block's backward; wte, wpe and ln_f keep their own,
 * which backward adds into like any gradient (lt_gpt2_dev_zero_grad before
 * each step's forward).
 * Use it with lt_gpt2_dev_backward_cb, whose callback consumes each block's
 * gradients. Reallocates the gradient buffer (zeroed); grad pointers change. */
lt_status lt_gpt2_dev_set_grad_per_block(lt_gpt2_dev *d, int on, char *err, size_t errlen);

/* TF32 matrix multiplies (on != 0) or plain fp32 ones (0, the default) for
 * fp32 compute: lt_cunn_gemm_tf32, from the next call on (the forward,
 * backward and recomputed GEMMs; bf16 / fp16 compute and attention are
 * unaffected). LT_ERR_DEVICE, the setting unchanged, when on and the GPU's
 * compute capability is below 8.0 (TF32 came with Ampere). */
lt_status lt_gpt2_dev_set_tf32(lt_gpt2_dev *d, int on, char *err, size_t errlen);

/* The lm head in chunks, as lt_gpt2_set_head_rows (the trainer's mode; rows
 * 0, the default, keeps the logits whole): a training forward
 * (lt_gpt2_dev_forward with targets) runs the lm head, the fused classifier
 * and at once the head's backward (d ln_f into the backward's dln buffer,
 * the tied wte's gradient accumulated) on at most `rows` positions at a time
 * (chunks of equal size, lt_gpt2_head_chunk), so the logits buffer holds one
 * chunk of rows instead of B x T (GPT-2 at batch 4 x 1024 in bf16, chunks of
 * 1024: 393 MiB -> 98 MiB), and lt_gpt2_dev_backward goes on from ln_f.
 * bf16 and fp32 compute add each chunk's wte gradient into the fp32 gradient
 * (llm.c's rule, as in whole mode); fp16 compute, whose head gradient is
 * rounded to fp16 once over all rows, sums the chunks in an fp32 [V, C]
 * buffer first and so chunks only where that still saves memory
 * (lt_gpt2_dev_logit_rows). The loss and the per-row losses are the same as
 * in whole mode when the multiplies are; the gradients differ in the order
 * of the sums over positions. A forward without targets is LT_ERR_STATE when
 * its rows do not fit one chunk; lt_gpt2_dev_eval_loss gives a loss without
 * touching the gradients. Frees the activation buffer: call
 * lt_gpt2_dev_set_batch after it. */
void lt_gpt2_dev_set_head_rows(lt_gpt2_dev *d, int rows);

/* Dropout in training as lt_gpt2_set_dropout (the config's pdrops, the same
 * masks for the same seed and stream as the CPU model): every forward from
 * the next one on, with or without targets, until set off (on = 0, the
 * default). An evaluation forward needs it off. */
void lt_gpt2_dev_set_dropout(lt_gpt2_dev *d, int on, uint64_t seed, uint32_t stream);

/* Scales the gradient backward starts from: d loss / d logits is multiplied
 * by `scale` (fp16-style loss scaling; 1 by default). Takes effect at the
 * next forward with targets (the classifier writes the logits' gradient
 * there). */
void lt_gpt2_dev_set_loss_scale(lt_gpt2_dev *d, float scale);

/* bf16 or fp16 compute with fp32 masters: rounds the fp32 master weights to
 * nearest even into the 16-bit compute copy, in the compute's format (one
 * kernel over the whole buffer; fp16: a master above 65504 becomes inf).
 * Call it after every optimizer step that changed the masters (and after
 * writing them any other way); a no-op in fp32 compute and for pure bf16.
 * (The name predates fp16 on the device.) */
lt_status lt_gpt2_dev_refresh_bf16(lt_gpt2_dev *d, char *err, size_t errlen);

/* Sets every gradient to zero (backward accumulates into them); queued. */
lt_status lt_gpt2_dev_zero_grad(lt_gpt2_dev *d, char *err, size_t errlen);

/* Forward pass on inputs[B*T] (HOST token ids, row-major [B, T]); B and T
 * must fit the capacity set by lt_gpt2_dev_set_batch. The ids are checked on
 * the host (out of [0, V): LT_ERR_ARG, nothing queued) and copied to the
 * device. Without targets the logits stay in the logits buffer
 * (lt_gpt2_dev_logits; queued, not waited for: lt_gpt2_dev_sync before
 * reading them elsewhere) and *loss (may be NULL) is NaN; in chunked mode
 * (set_head_rows) only when the B*T rows fit one chunk, LT_ERR_STATE
 * otherwise. With targets[B*T] (HOST ids) the fused classifier computes the
 * mean cross-entropy, which is read back into *loss (waiting for the
 * stream), and overwrites the logits with d loss / d logits (times the loss
 * scale), enabling backward; in chunked mode the head's backward follows at
 * once, chunk by chunk (its gradients are then already added). */
lt_status lt_gpt2_dev_forward(lt_gpt2_dev *d, const int32_t *inputs, const int32_t *targets, int B, int T,
                              float *loss, char *err, size_t errlen);

/* The mean cross-entropy of inputs[B*T] against targets[B*T] (HOST ids)
 * into *loss, as lt_gpt2_eval_loss: the forward without dropout (whatever
 * set_dropout says) and without any gradient (none is touched, in chunked
 * mode either), so no backward may follow it. The logits buffer is used as
 * scratch. Waits for the stream. LT_ERR_ARG without targets. */
lt_status lt_gpt2_dev_eval_loss(lt_gpt2_dev *d, const int32_t *inputs, const int32_t *targets, int B, int T,
                                float *loss, char *err, size_t errlen);

/* lt_gpt2_dev_eval_loss, and *correct (may be NULL) = how many of the B*T
 * positions have their top-1 prediction at the target, as lt_gpt2_eval
 * counts them (torch.argmax's choice over the logits in the compute dtype). */
lt_status lt_gpt2_dev_eval(lt_gpt2_dev *d, const int32_t *inputs, const int32_t *targets, int B, int T, float *loss,
                           long *correct, char *err, size_t errlen);

/* Backward pass of the last forward (which must have had targets): adds
 * d loss / d parameter into every gradient, queued on the stream.
 * LT_ERR_STATE when no forward with targets preceded it. */
lt_status lt_gpt2_dev_backward(lt_gpt2_dev *d, char *err, size_t errlen);

/* lt_gpt2_dev_backward that calls `ready(ctx, first, count)` as each group of
 * gradients becomes final, in lt_gpt2_backward_cb's order: ln_f's two after
 * its layernorm, block l's twelve after block l (l = L-1 down to 0), then
 * wte's and wpe's at the end. At the call the kernels that produce the
 * group's gradients are queued on the model's stream, not necessarily done:
 * work the callback queues on the same stream (an optimizer step of device
 * parameters) reads them in order; reading them on the host or another
 * stream needs a wait (lt_gpt2_dev_sync). In per-block mode the block buffer
 * is zeroed before each block. A callback error stops the backward and is
 * returned. */
lt_status lt_gpt2_dev_backward_cb(lt_gpt2_dev *d, lt_gpt2_grad_ready ready, void *ctx, char *err, size_t errlen);

/* The global L2 norm of the gradients (what the trainer clips by): the sum
 * of the squares of every element of the gradient buffer (the padding
 * between tensors is zero) taken in double in a fixed order, so the same
 * gradients give the same bits, read back into *norm (waits for the stream).
 * An inf or NaN gradient makes the norm inf or NaN (fp16 loss scaling's
 * overflow test), never an error.
 * In per-block mode the block buffer holds only the last block consumed.
 * Uses scratch in the activation buffer: LT_ERR_STATE before set_batch. */
lt_status lt_gpt2_dev_grad_norm(lt_gpt2_dev *d, double *norm, char *err, size_t errlen);

/* Waits for everything queued on the model's stream; LT_ERR_DEVICE reports
 * an error of a kernel. */
lt_status lt_gpt2_dev_sync(lt_gpt2_dev *d, char *err, size_t errlen);

/* Number of parameter tensors (12 L + 4, the host model's num_tensors). */
int lt_gpt2_dev_num_tensors(const lt_gpt2_dev *d);

/* Parameter tensor i (0 <= i < num_tensors; NULL otherwise): its device
 * pointers. They stay valid until the next set_precision or
 * set_grad_per_block. */
const lt_gpt2_dev_param *lt_gpt2_dev_param_at(const lt_gpt2_dev *d, int i);

/* The stream the model queues on (a cudaStream_t; NULL: the legacy default stream). */
void *lt_gpt2_dev_stream(const lt_gpt2_dev *d);

/* The logits buffer (device, [rows, *ldv] of the storage type
 * *dtype: LT_DTYPE_F32, LT_DTYPE_BF16 or LT_DTYPE_F16, first V columns used; the first
 * B*T rows belong to the last forward): logits after a forward without
 * targets, their gradient after one with targets. NULL before set_batch.
 * ldv and dtype may be NULL. */
const void *lt_gpt2_dev_logits(const lt_gpt2_dev *d, int *ldv, lt_dtype *dtype);

/* Bytes of device memory the model holds now (the sum of its cudaMalloc
 * sizes) and the most it held at once since create. */
size_t lt_gpt2_dev_allocated_bytes(const lt_gpt2_dev *d);
size_t lt_gpt2_dev_peak_bytes(const lt_gpt2_dev *d);

/* ---- the memory plan (plain C: every build) ---- */

/* LT_OK when p (LT_GPT2_F32, LT_GPT2_BF16 or LT_GPT2_F16) and pure_bf16
 * (with LT_GPT2_BF16 only) are a precision the device model has; else
 * LT_ERR_ARG with a message saying why (fp16 keeps fp32 masters). */
lt_status lt_gpt2_dev_check_precision(lt_gpt2_precision p, int pure_bf16, char *err, size_t errlen);

/* What a device model of config c holds after lt_gpt2_dev_set_batch(B, T)
 * with these settings, computed without a device. total_bytes equals
 * lt_gpt2_dev_allocated_bytes of such a model exactly. */
typedef struct lt_gpt2_dev_memory {
    size_t num_params;
    size_t weight_bytes;     /* the parameters: fp32 masters, or bf16 when pure */
    size_t weight16_bytes;   /* the 16-bit compute copy of fp32 masters (bf16 or fp16 compute, not pure); else 0 */
    size_t grad_bytes;       /* fp32 gradients (per-block: embeddings, ln_f and one block) */
    size_t activation_bytes; /* forward activations, statistics and logits for B x T */
    size_t backward_bytes;   /* activation gradients, the attention's row sums D, column-sum scratch */
    size_t token_bytes;      /* inputs, targets, the encoder's bucket list, the loss sum, grad_norm's partials */
    size_t total_bytes;      /* the sum of the above: what the model cudaMallocs */
    size_t cublas_bytes;     /* NOT in total_bytes: cuBLAS's own workspace for the model's handle, allocated by
                                the library (its documented size: 32 MiB on Hopper, 4 MiB on earlier GPUs; this
                                field gives the Hopper size). The CUDA context (several hundred MiB, outside
                                cudaMalloc) is not counted either. */
} lt_gpt2_dev_memory;

/* The plan of a device model of config c for batches of B x T with
 * checkpointing, per-block gradients, precision p (LT_GPT2_F32, LT_GPT2_BF16
 * or LT_GPT2_F16), pure_bf16 and head_rows as the setters take them.
 * LT_ERR_ARG for a bad config, precision (pure_bf16 with anything but
 * LT_GPT2_BF16) or size. */
lt_status lt_gpt2_dev_memory_plan(const lt_gpt2_config *c, int B, int T, int checkpointing, int grad_per_block,
                                  lt_gpt2_precision p, int pure_bf16, int head_rows, lt_gpt2_dev_memory *out,
                                  char *err, size_t errlen);

/* ---- the activation buffer's layout (shared by the plan and the implementation) ---- */

/* The sub-buffers of lt_gpt2_dev_set_batch's allocation, in order. S: the
 * storage type; per-block buffers hold LI slices (L, or 1 with
 * checkpointing) of max_B * max_T rows, statistics and residual2 LS slices
 * (L, or 1 with checkpointing), residual3 always L. */
typedef enum lt_gpt2_dev_buf {
    /* forward activations */
    LT_GPT2_DEV_ENCODED,  /* S [BT, C] */
    LT_GPT2_DEV_LN1,      /* S [LI, BT, C] */
    LT_GPT2_DEV_LN1_MEAN, /* f32 [LS, BT] */
    LT_GPT2_DEV_LN1_RSTD, /* f32 [LS, BT] */
    LT_GPT2_DEV_QKV,      /* S [LI, BT, 3C] */
    LT_GPT2_DEV_ATT,      /* f32 [LI, B, NH, T] the attention's log-sum-exp per query row (no T x T matrix) */
    LT_GPT2_DEV_ATTY,     /* S [LI, BT, C] */
    LT_GPT2_DEV_RES2,     /* S [LS, BT, C] */
    LT_GPT2_DEV_LN2,      /* S [LI, BT, C] */
    LT_GPT2_DEV_LN2_MEAN, /* f32 [LS, BT] */
    LT_GPT2_DEV_LN2_RSTD, /* f32 [LS, BT] */
    LT_GPT2_DEV_FCH,      /* S [LI, BT, 4C] */
    LT_GPT2_DEV_FCHG,     /* S [LI, BT, 4C] */
    LT_GPT2_DEV_RES3,     /* S [L, BT, C] */
    LT_GPT2_DEV_LNF,      /* S [BT, C] */
    LT_GPT2_DEV_LNF_MEAN, /* f32 [BT] */
    LT_GPT2_DEV_LNF_RSTD, /* f32 [BT] */
    LT_GPT2_DEV_LOGITS,   /* S [head_chunk, ldv] (head_chunk = BT unless the head runs in chunks) */
    LT_GPT2_DEV_LSE,      /* f32 [BT] */
    LT_GPT2_DEV_LOSSES,   /* f32 [BT] */
    LT_GPT2_DEV_NACT,
    /* backward */
    LT_GPT2_DEV_DRES = LT_GPT2_DEV_NACT, /* S [BT, C] */
    LT_GPT2_DEV_DLN,                     /* S [BT, C] */
    LT_GPT2_DEV_DBIG,                    /* S [BT, 4C] */
    LT_GPT2_DEV_DQKV,                    /* S [BT, 3C] */
    LT_GPT2_DEV_DATTY,                   /* S [BT, C] */
    LT_GPT2_DEV_DROW,                    /* f32 [B, NH, T] the attention backward's D = dout . out per row */
    LT_GPT2_DEV_COLSUM,                  /* f32: lt_cunn_colsum_scratch_floats(BT, 4C) */
    LT_GPT2_DEV_HEADSUM,                 /* f32 [V, C]: fp16 compute in chunks, the head's wte gradient; else empty */
    LT_GPT2_DEV_NBACK,
    /* tokens */
    LT_GPT2_DEV_INPUTS = LT_GPT2_DEV_NBACK, /* i32 [BT] */
    LT_GPT2_DEV_TARGETS,                    /* i32 [BT] */
    LT_GPT2_DEV_PLAN,                       /* i32 [3 BT + 1] the encoder's bucket list */
    LT_GPT2_DEV_LOSS_SUM,                   /* f64 [1] the loss sum, then u64 [1] the evaluation's top-1 hits */
    LT_GPT2_DEV_NORM,                       /* f64 [LT_GPT2_DEV_NORM_PARTS + 1] grad_norm's partial sums, then the sum */
    LT_GPT2_DEV_NBUF
} lt_gpt2_dev_buf;

/* Every sub-buffer starts on a 256-byte boundary (cudaMalloc's alignment). */
#define LT_GPT2_DEV_ALIGN 256

/* CTAs of lt_gpt2_dev_grad_norm's first pass (one partial sum each). */
#define LT_GPT2_DEV_NORM_PARTS 256

/* Rows of the logits are padded to a multiple of this many columns. */
#define LT_GPT2_DEV_LOGITS_PAD 64

typedef struct lt_gpt2_dev_layout {
    size_t offset[LT_GPT2_DEV_NBUF]; /* bytes from the start of the buffer */
    size_t bytes[LT_GPT2_DEV_NBUF];  /* of each sub-buffer (before its padding to the alignment) */
    size_t activation_bytes, backward_bytes, token_bytes; /* the three groups, padding included */
    size_t total_bytes;                                   /* the allocation */
    int ldv;                                              /* the logits' row stride */
    size_t head_chunk;                                    /* rows of the logits buffer */
} lt_gpt2_dev_layout;

/* Rows of logits the device buffer holds for BT tokens in precision p with
 * set_head_rows(head_rows): a chunk of lt_gpt2_head_chunk(BT, head_rows)
 * rows, or BT when head_rows is 0 or at least BT, or, in fp16, when the
 * fp32 sum of the chunks' wte gradient ([V, C]) would take as much memory as
 * the chunking saves. *headsum_bytes (may be NULL): that sum's bytes, 0
 * unless fp16 runs in chunks. */
size_t lt_gpt2_dev_logit_rows(const lt_gpt2_config *c, size_t BT, lt_gpt2_precision p, int head_rows,
                              size_t *headsum_bytes);

/* The layout for batches of up to B x T of config c with checkpointing,
 * precision p (activations of 4 bytes in fp32, 2 in bf16 or fp16) and
 * head_rows. LT_ERR_ARG for another precision, or when a size overflows or
 * exceeds the kernels' int dimensions. */
lt_status lt_gpt2_dev_layout_of(const lt_gpt2_config *c, int B, int T, int checkpointing, lt_gpt2_precision p,
                                int head_rows, lt_gpt2_dev_layout *out, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
