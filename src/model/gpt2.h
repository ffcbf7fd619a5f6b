/* leantrain (internal, model layer): GPT-2 in C, with the Hugging Face GPT-2
 * math and weight names (GPT2LMHeadModel: tied lm head, gelu_new, Conv1D
 * weights stored [in, out]).
 *
 * Memory, llm.c style: one float allocation holds every parameter, one every
 * gradient (each tensor is a pointer into it, listed in `params`); one holds
 * the activations for up to (B, T) tokens and one the backward scratch, both
 * made by lt_gpt2_set_batch. lt_gpt2_forward and lt_gpt2_backward allocate
 * nothing; they use OpenBLAS for every matrix multiply and OpenMP loops for
 * the rest.
 *
 *     lt_gpt2_config cfg;  lt_gpt2_config_preset("gpt2", &cfg, err, sizeof err);
 *     lt_gpt2 *m;          lt_gpt2_create(&cfg, &m, err, sizeof err);
 *     lt_gpt2_load(m, "model.safetensors", err, sizeof err);
 *     lt_gpt2_set_batch(m, B, T, err, sizeof err);
 *     for (...) {
 *         lt_gpt2_zero_grad(m);
 *         lt_gpt2_forward(m, inputs, targets, B, T, err, sizeof err);   // m->loss
 *         lt_gpt2_backward(m, err, sizeof err);                         // m->params[i].grad
 *         lt_optim_step(o, 1.0f);
 *     }
 *     lt_gpt2_free(m);
 *
 * Functions that can fail return an lt_status and write a message into
 * err[errlen] (which may be NULL); nothing exits. No global state: two models
 * are independent (one thread at a time per model). */
#ifndef LEANTRAIN_MODEL_GPT2_H
#define LEANTRAIN_MODEL_GPT2_H

#include <stddef.h>
#include <stdint.h>

#include "leantrain/safetensors.h"
#include "leantrain/status.h"

/* The shape of a GPT-2 model. The lm head is always tied to wte and the
 * activation is always gelu_new (the tanh approximation); configs asking for
 * anything else are rejected when parsed. */
typedef struct lt_gpt2_config {
    int vocab_size;            /* V: tokens */
    int n_positions;           /* P: longest sequence (rows of wpe) */
    int n_embd;                /* C: channels */
    int n_layer;               /* L: transformer blocks */
    int n_head;                /* NH: attention heads; C % NH == 0 */
    double layer_norm_epsilon; /* added to the variance in every layernorm */
    /* dropout probabilities in training (Hugging Face's names; [0, 1)): of the embeddings' sum, of each block's
       attention output and mlp output before they join the residual stream, of the attention probabilities */
    double embd_pdrop, resid_pdrop, attn_pdrop;
} lt_gpt2_config;

/* The tensors of one block, in the order they sit in the parameter buffer;
 * lt_gpt2.params[LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK * l + k] is tensor k
 * of block l. */
typedef enum lt_gpt2_block_tensor {
    LT_GPT2_LN1_W,      /* h.<l>.ln_1.weight        [C]     */
    LT_GPT2_LN1_B,      /* h.<l>.ln_1.bias          [C]     */
    LT_GPT2_QKV_W,      /* h.<l>.attn.c_attn.weight [C, 3C] */
    LT_GPT2_QKV_B,      /* h.<l>.attn.c_attn.bias   [3C]    */
    LT_GPT2_ATTPROJ_W,  /* h.<l>.attn.c_proj.weight [C, C]  */
    LT_GPT2_ATTPROJ_B,  /* h.<l>.attn.c_proj.bias   [C]     */
    LT_GPT2_LN2_W,      /* h.<l>.ln_2.weight        [C]     */
    LT_GPT2_LN2_B,      /* h.<l>.ln_2.bias          [C]     */
    LT_GPT2_FC_W,       /* h.<l>.mlp.c_fc.weight    [C, 4C] */
    LT_GPT2_FC_B,       /* h.<l>.mlp.c_fc.bias      [4C]    */
    LT_GPT2_FCPROJ_W,   /* h.<l>.mlp.c_proj.weight  [4C, C] */
    LT_GPT2_FCPROJ_B,   /* h.<l>.mlp.c_proj.bias    [C]     */
    LT_GPT2_PER_BLOCK
} lt_gpt2_block_tensor;

/* params[0] is wte.weight [V, C], params[1] wpe.weight [P, C], then the
 * blocks, then ln_f.weight and ln_f.bias. */
enum { LT_GPT2_WTE = 0, LT_GPT2_WPE = 1, LT_GPT2_BLOCK_FIRST = 2 };

/* The precision of the compute (lt_gpt2_set_precision). */
typedef enum lt_gpt2_precision {
    LT_GPT2_F32 = 0,  /* everything in fp32 */
    LT_GPT2_BF16 = 1, /* mixed precision: matrix-multiply operands and stored activations in bf16 */
    LT_GPT2_F16 = 2   /* the same in IEEE half (use a loss scale: lt_gpt2.loss_scale) */
} lt_gpt2_precision;

/* One parameter tensor: what a trainer registers with the optimizer library. */
typedef struct lt_gpt2_param {
    char name[48];        /* Hugging Face name without the "transformer." prefix, e.g. "h.0.ln_1.weight" */
    float *data;          /* into lt_gpt2.param_memory; NULL when the parameters are pure bf16 */
    uint16_t *data16;     /* pure bf16 parameters: into lt_gpt2.param16_memory (else NULL) */
    float *grad;          /* into lt_gpt2.grad_memory, same offset */
    int ndim;             /* 1 or 2 */
    int64_t shape[2];     /* row-major; Conv1D weights are [in, out] */
    size_t numel;
    int weight_decay;     /* 1 for matrices and embeddings; 0 for biases and ln_* weights (the Trainer's rule) */
} lt_gpt2_param;

/* Forward activations, pointers into one allocation sized for up to
 * (max_B, max_T); a forward with B x T tokens uses the first B*T rows of
 * each. Per-block buffers are arrays of L such slices. Shapes below use
 * BT = max_B * max_T, the slice stride. */
typedef struct lt_gpt2_acts {
    float *encoded;   /* [BT, C]      wte[token] + wpe[position] */
    float *ln1;       /* [L, BT, C]   ln_1 output */
    float *ln1_mean;  /* [L, BT] */
    float *ln1_rstd;  /* [L, BT]      1 / sqrt(var + eps) */
    float *qkv;       /* [L, BT, 3C]  c_attn output: q | k | v, heads interleaved as in HF */
    float *att_stats; /* [L, B, NH, T, 2] attention rows' max score and 1 / sum (backward recomputes the probabilities) */
    float *atty;      /* [L, BT, C]   attention output before c_proj */
    float *residual2; /* [L, BT, C]   block input + attention branch */
    float *ln2;       /* [L, BT, C] */
    float *ln2_mean;  /* [L, BT] */
    float *ln2_rstd;  /* [L, BT] */
    float *fch;       /* [L, BT, 4C]  c_fc output (before gelu) */
    float *fch_gelu;  /* [L, BT, 4C] */
    float *residual3; /* [L, BT, C]   block output */
    float *lnf;       /* [BT, C] */
    float *lnf_mean;  /* [BT] */
    float *lnf_rstd;  /* [BT] */
    float *logits;    /* [BT, V]      after lt_gpt2_backward: d loss / d logits (overwritten in place);
                         [head_chunk, V] in chunked mode (lt_gpt2_set_head_rows): the last chunk's */
    float *lse;       /* [BT]         log-sum-exp of each logits row */
    float *losses;    /* [BT]         cross-entropy of each position */
} lt_gpt2_acts;

/* Backward scratch (one allocation): gradients of activations, reused by
 * every block because the residual gradient flows through one buffer. */
typedef struct lt_gpt2_dacts {
    float *dres;  /* [BT, C]   d loss / d residual stream at the current point */
    float *dln;   /* [BT, C]   d loss / d layernorm output */
    float *dbig;  /* [BT, 4C]  d loss / d fch_gelu, then d fch in place; the attention's scratch when free */
    float *dqkv;  /* [BT, 3C] */
    float *datty; /* [BT, C] */
    float *dtmp;  /* [BT, C]   16-bit compute: dres rounded for a matrix multiply (fp32: empty) */
    float *dwte;  /* [V, C]    16-bit compute in chunked mode: the lm head's weight gradient summed over the chunks
                     in fp32, rounded once when complete, as one multiply's would be (else empty) */
} lt_gpt2_dacts;

typedef struct lt_gpt2 {
    lt_gpt2_config cfg;
    int num_tensors;        /* 12 * L + 4 */
    lt_gpt2_param *params;  /* num_tensors entries */
    size_t num_params;      /* total parameters (sum of numel) */
    float *param_memory;    /* every parameter (tensors 64-byte aligned, zero padding between) */
    float *grad_memory;     /* every gradient, same layout (per-block mode: see lt_gpt2_set_grad_per_block) */
    size_t memory_floats;   /* floats in param_memory, padding included */
    size_t grad_floats;     /* floats in grad_memory: memory_floats, or fewer in per-block mode */
    int grad_per_block;     /* the blocks share one gradient buffer (stepping inside backward) */

    int max_B, max_T;       /* capacity of the activation buffers (0 before lt_gpt2_set_batch) */
    float *act_memory;
    size_t act_floats;
    lt_gpt2_acts acts;
    float *dact_memory;
    size_t dact_floats;
    lt_gpt2_dacts dacts;
    int32_t *tokens;        /* [2, max_B*max_T]: the last forward's inputs, then its targets */

    int checkpointing;      /* keep only each block's output; recompute its internals in backward */
    int head_rows;          /* > 0: the lm head and loss run in chunks of this many rows (lt_gpt2_set_head_rows) */
    int head_chunk;         /* the rows per chunk at this capacity (set_batch): head_rows, or all rows where that
                               would not save memory (16-bit compute); 0 in whole mode */

    /* mixed precision (lt_gpt2_set_precision) */
    int precision;          /* lt_gpt2_precision of the compute */
    int pure_bf16;          /* parameters held only in bf16, param16_memory (param_memory NULL) */
    uint16_t *param16_memory;
    float loss_scale;       /* backward starts from d loss = loss_scale instead of 1 (fp16 loss scaling) */
    float *wscratch;        /* 16-bit compute: one block's weights as used (rounded), or an lm-head chunk, + ln_f */
    float *gscratch;        /* 16-bit compute: one weight gradient before it is rounded and accumulated */
    size_t scratch_floats;  /* of wscratch and gscratch together */
    uint16_t *store;        /* 16-bit compute without checkpointing: every block's internals in 16 bits */
    size_t store_elems;
    int B, T;               /* of the last forward (0 before) */
    int have_targets;       /* the last forward computed a loss, so backward may run */
    int head_done;          /* chunked mode: that forward also did the head's backward (dacts.dln holds d lnf) */
    int dropout_on;         /* lt_gpt2_set_dropout: training forwards apply the config's dropout */
    uint64_t dropout_seed;
    uint32_t dropout_stream;
    int drop_active;        /* the last forward applied dropout, with drop_stream's masks (its backward too) */
    uint32_t drop_stream;
    float label_smoothing;  /* lt_gpt2_set_label_smoothing (0: none) */
    float neftune_alpha;    /* lt_gpt2_set_neftune (0: none) */
    float loss;             /* mean cross-entropy of the last forward (NaN without targets) */
} lt_gpt2;

/* ---- configuration (gpt2_config.c) ---- */

/* Fills `cfg` with a Hugging Face preset: "gpt2" (124M: C 768, L 12, NH 12),
 * "gpt2-medium" (1024, 24, 16), "gpt2-large" (1280, 36, 20), "gpt2-xl" (1600,
 * 48, 25); all V 50257, P 1024, eps 1e-5, and no dropout (every pdrop 0:
 * pretraining from scratch the way llm.c and nanoGPT do; config.json's
 * values, 0.1 by GPT2Config's default, are honoured when a model is loaded).
 * LT_ERR_ARG for another name. */
lt_status lt_gpt2_config_preset(const char *name, lt_gpt2_config *cfg, char *err, size_t errlen);

/* Parses a GPT-2 config from JSON text: a Hugging Face config.json or the
 * `config` metadata of a gpt2-trace-1 file (same keys). Keys missing from the
 * JSON take GPT2Config's defaults, as transformers does (save_pretrained
 * leaves out values equal to the defaults). Rejected: a model_type other than
 * "gpt2", activation_function other than gelu_new / gelu_pytorch_tanh,
 * tie_word_embeddings false, n_inner other than null or 4 * n_embd,
 * scale_attn_weights false, scale_attn_by_inverse_layer_idx or
 * add_cross_attention true, a size that is not a positive integer,
 * n_embd not divisible by n_head, and a pdrop outside [0, 1) (absent: 0.1,
 * GPT2Config's default). `label` names the source in messages
 * ("<label>: ..."). */
lt_status lt_gpt2_config_from_json(const char *json, const char *label, lt_gpt2_config *cfg, char *err,
                                   size_t errlen);

/* Reads and parses a Hugging Face config.json at `path` (as
 * lt_gpt2_config_from_json, messages prefixed by the path). */
lt_status lt_gpt2_config_load(const char *path, lt_gpt2_config *cfg, char *err, size_t errlen);

/* Checks sizes: all positive, C % NH == 0, eps >= 0 and finite, every pdrop
 * in [0, 1), and sizes small enough that every tensor size fits. Called by the functions above and by
 * lt_gpt2_create. */
lt_status lt_gpt2_config_check(const lt_gpt2_config *cfg, char *err, size_t errlen);

/* The number of parameters of a model of this shape (tied head counted
 * once): V*C + P*C + L*(12*C^2 + 13*C) + 2*C; 124439808 for "gpt2". */
size_t lt_gpt2_config_num_params(const lt_gpt2_config *cfg);

/* ---- the model (gpt2.c) ---- */

/* Allocates a model with zeroed parameters and gradients (two buffers of
 * about num_params floats each) and fills its parameter table. *out is NULL
 * on failure. */
lt_status lt_gpt2_create(const lt_gpt2_config *cfg, lt_gpt2 **out, char *err, size_t errlen);

/* Frees the model and all its buffers (a bf16 model also the bf16 products' buffers: model/gemm_bf16.h). NULL is
 * a no-op. */
void lt_gpt2_free(lt_gpt2 *m);

/* Hugging Face's GPT-2 initialisation from `seed` (deterministic, any thread
 * count): weights N(0, 0.02), c_proj weights N(0, 0.02 / sqrt(2 L)), biases 0,
 * layernorm weights 1. */
void lt_gpt2_init_random(lt_gpt2 *m, uint64_t seed);

/* Allocates the activation and backward buffers for batches of up to B
 * sequences of up to T tokens (T <= n_positions), replacing earlier ones.
 * Call it once before a training loop, not per step. */
lt_status lt_gpt2_set_batch(lt_gpt2 *m, int B, int T, char *err, size_t errlen);

/* What a model of config c needs in memory, computed without allocating it
 * (the same arithmetic as lt_gpt2_create / lt_gpt2_set_batch). */
typedef struct lt_gpt2_memory {
    size_t num_params;
    size_t weight_bytes;     /* the parameters: f32, or bf16 when pure */
    size_t scratch_bytes;    /* 16-bit compute: one block's rounded weights and one weight gradient */
    size_t grad_bytes;       /* f32 gradients (per-block mode: embeddings, ln_f and one block) */
    size_t activation_bytes; /* forward activations + backward scratch for B x T */
    size_t token_bytes;      /* the inputs and targets kept for backward */
    size_t gemm16_bytes;     /* bf16 compute on the CPU's bf16 instructions: packed operands + oneDNN's scratchpad */
} lt_gpt2_memory;

/* The parameter table of config c (names, shapes, weight_decay flags; data
 * and grad NULL) in a malloc'd array of *n entries, without the weights. */
lt_status lt_gpt2_param_table(const lt_gpt2_config *c, lt_gpt2_param **out, int *n, char *err, size_t errlen);

lt_status lt_gpt2_memory_plan(const lt_gpt2_config *c, int B, int T, int checkpointing, int grad_per_block,
                              lt_gpt2_precision precision, int pure_bf16, int head_rows, lt_gpt2_memory *out,
                              char *err, size_t errlen);

/* Mixed precision, emulated exactly on the CPU the way torch.autocast runs
 * GPT-2: every matrix multiply takes its operands rounded to `p` (weights,
 * biases and inputs; fp32 accumulation: OpenBLAS sgemm on the rounded
 * values, since Debian's OpenBLAS does not export its bf16 GEMM), its output
 * and the attention probabilities, gelu output and logits are rounded to
 * `p`; layernorms, softmax, cross-entropy and the residual stream stay fp32.
 * Backward rounds the gradients flowing into each multiply and each weight
 * gradient (as the bf16 op's gradient is) before adding it to the fp32
 * gradient. The stored activations that are 16-bit values are kept in 16
 * bits (about 45% less activation memory); one block's internals in fp32
 * are recomputed from them in backward. fp32 master weights stay in
 * param_memory; pure_bf16 (p must be LT_GPT2_BF16) instead keeps the
 * parameters only in bf16 (param16_memory, data16; data NULL): the current
 * values are rounded to nearest and the f32 buffer freed. Takes effect at the
 * next lt_gpt2_set_batch (which must follow). LT_ERR_ARG for pure_bf16 with
 * another precision. */
lt_status lt_gpt2_set_precision(lt_gpt2 *m, lt_gpt2_precision p, int pure_bf16, char *err, size_t errlen);

/* Gradient checkpointing: forward keeps only each block's output (the next
 * block's input) and backward recomputes a block's internals just before its
 * backward, so the activation memory of the blocks' internals is one block's
 * instead of L blocks'. Gradients are bit-identical to the run without it.
 * Takes effect at the next lt_gpt2_set_batch (which must follow). */
void lt_gpt2_set_checkpointing(lt_gpt2 *m, int on);

/* The lm head in chunks (training's mode; rows 0, the default, keeps the
 * logits whole): a forward with targets computes the logits of `rows`
 * positions at most at a time (chunks of equal size), their losses, and at
 * once their gradient (times loss_scale, which must be set before the
 * forward) and the head's backward: d lnf into dacts.dln and the tied wte's
 * gradient, accumulated. The logits buffer then holds one chunk instead of
 * B x T rows (GPT-2 at batch 4 x 1024, chunks of 1024: 823 MB -> 206 MB; in
 * 16-bit compute plus wte's fp32 gradient sum, V x C, and only where that
 * still saves memory), and lt_gpt2_backward goes on from ln_f. The loss is the
 * same as in whole mode bit for bit when the multiplies are (the losses are
 * summed over all positions in order); the gradients differ only in the
 * order of the sums over positions (in 16-bit compute wte's gradient is
 * still rounded once). A forward without targets is LT_ERR_STATE in this
 * mode (lt_gpt2_eval_loss gives a loss without gradients). Takes effect at
 * the next lt_gpt2_set_batch (which must follow). */
void lt_gpt2_set_head_rows(lt_gpt2 *m, int rows);

/* Label smoothing of the loss (the Trainer's label_smoothing_factor, its
 * LabelSmoother: each position's loss is (1 - eps) x its cross-entropy + eps x
 * the mean over the vocabulary of -log p; in [0, 1), 0 the default: the plain
 * loss, bit for bit), for every forward with targets, evaluation included, and
 * the gradient of that loss. */
void lt_gpt2_set_label_smoothing(lt_gpt2 *m, float eps);

/* NEFTune (the Trainer's neftune_noise_alpha, its neftune_post_forward_hook;
 * Jain et al. 2023): every forward that applies dropout (lt_gpt2_set_dropout
 * on: the trainer's training steps; never lt_gpt2_eval_loss) adds uniform
 * noise on [-mag, mag), mag = alpha / sqrt(T x n_embd), to each token
 * embedding before the position embedding joins it. The noise is Philox bits
 * of (seed, stream, LT_GPT2_NOISE_NEFTUNE, element) (lt_noise_at), so the GPU
 * adds the same values; it is a constant to the backward (the gradients'
 * formulas are unchanged). alpha 0, the default: none. */
void lt_gpt2_set_neftune(lt_gpt2 *m, float alpha);

/* NEFTune's magnitude alpha / sqrt(T C) in float, as the hook computes it (0 for alpha 0). */
float lt_gpt2_neftune_magnitude(float alpha, int T, int C);

/* The rows the trainer gives lt_gpt2_set_head_rows: chunks of at most 256 MiB
 * of fp32 logits (at least 64 rows; 1335 for GPT-2's vocabulary, hence chunks
 * of 1024 at 2048 or 4096 positions: OpenBLAS runs those as fast as the whole,
 * 667-row ones 8% and 512-row ones 22% slower); for a small vocabulary more
 * rows than a batch holds, i.e. one chunk. */
int lt_gpt2_head_rows_default(const lt_gpt2_config *c);

/* The rows of each chunk when n rows go through the lm head in chunks of at
 * most `most` rows, all of about the same size (a small last chunk costs as
 * much time as a large one): ceil(n / ceil(n / most)); n when most <= 0 or
 * most >= n. The CPU and the device model chunk by it. */
size_t lt_gpt2_head_chunk(size_t n, int most);

/* Dropout as GPT-2 applies it in training, with the config's embd_pdrop,
 * resid_pdrop and attn_pdrop (on = 0, the default, turns it off): every
 * lt_gpt2_forward (with or without targets; never lt_gpt2_eval_loss) zeroes
 * each element of a site with its probability and scales the others by
 * 1 / (1 - p). The masks are Philox bits of (seed,
 * stream, site, element) (kernels/philox.h): nothing is stored, the backward
 * and a checkpointed block's recomputation draw them again, and the same
 * (seed, stream) gives the same masks on the CPU and the GPU. The trainer
 * gives each micro-batch its own stream. In 16-bit compute a dropped product
 * output is rounded again after the scaling (autocast's bf16 dropout). */
void lt_gpt2_set_dropout(lt_gpt2 *m, int on, uint64_t seed, uint32_t stream);

/* The dropout site numbers of GPT-2 (lt_dropout.site): 0 for the embeddings, then per block l the attention
 * probabilities, the attention output and the mlp output. */
#define LT_GPT2_DROP_EMBD 0u
#define LT_GPT2_DROP_ATTN(l) (1u + 3u * (uint32_t)(l))
#define LT_GPT2_DROP_ATTN_OUT(l) (2u + 3u * (uint32_t)(l))
#define LT_GPT2_DROP_MLP_OUT(l) (3u + 3u * (uint32_t)(l))
/* the Philox site of NEFTune's noise on the token embeddings (no layer's dropout site reaches it) */
#define LT_GPT2_NOISE_NEFTUNE 0xFFFFFFFFu

/* Per-block gradients, for stepping the optimizer inside backward: every
 * block's parameters share ONE block-sized gradient buffer (their .grad
 * pointers all point into it); wte, wpe and ln_f keep their own. A gradient
 * then lives only until lt_gpt2_backward_cb hands it to its callback, and the
 * gradient memory is that of the embeddings, ln_f and one block instead of the
 * whole model. on = 0 restores one gradient per parameter. Reallocates the
 * gradient buffer (zeroed). */
lt_status lt_gpt2_set_grad_per_block(lt_gpt2 *m, int on, char *err, size_t errlen);

/* Called by lt_gpt2_backward_cb when the gradients of parameters
 * first .. first+count-1 are final: ln_f's after its layernorm, block l's after
 * block l, then wte's and wpe's at the very end. */
typedef lt_status (*lt_gpt2_grad_ready)(void *ctx, int first, int count);

/* lt_gpt2_backward that calls `ready` as each group of gradients becomes final
 * (in per-block mode the block buffer is zeroed before each block, since the
 * previous block's gradients were consumed). A callback error stops the
 * backward and is returned. */
lt_status lt_gpt2_backward_cb(lt_gpt2 *m, lt_gpt2_grad_ready ready, void *ctx, char *err, size_t errlen);

/* Sets every gradient to zero (backward accumulates into them). */
void lt_gpt2_zero_grad(lt_gpt2 *m);

/* Forward pass on inputs[B*T] (token ids, row-major [B, T]); B and T must fit
 * the capacity set by lt_gpt2_set_batch. Logits land in m->acts.logits
 * ([B, T, V] in the first B*T rows). With targets[B*T] (token ids) it also
 * computes m->loss, the mean cross-entropy over all B*T positions, and
 * enables lt_gpt2_backward; with targets NULL m->loss is NaN. Token ids out of
 * [0, V) are LT_ERR_ARG (nothing computed). Allocates nothing. */
lt_status lt_gpt2_forward(lt_gpt2 *m, const int32_t *inputs, const int32_t *targets, int B, int T, char *err,
                          size_t errlen);

/* The mean cross-entropy of inputs against targets (both [B*T] token ids)
 * into m->loss, without enabling backward and without touching a gradient:
 * evaluation. The same loss as lt_gpt2_forward's, in either head mode. */
lt_status lt_gpt2_eval_loss(lt_gpt2 *m, const int32_t *inputs, const int32_t *targets, int B, int T, char *err,
                            size_t errlen);

/* lt_gpt2_eval_loss, and *correct (may be NULL) = how many of the B*T
 * positions have their top-1 prediction at the target: the first index of
 * the largest logit (of the first NaN in a row that has one), torch.argmax's
 * choice, over the logits as computed (bf16 values in bf16 compute): run_clm's
 * eval_accuracy is *correct / (B*T). */
lt_status lt_gpt2_eval(lt_gpt2 *m, const int32_t *inputs, const int32_t *targets, int B, int T, long *correct,
                       char *err, size_t errlen);

/* Backward pass of the last forward (which must have had targets): adds
 * d loss / d parameter into every gradient (wte's gets both the lm-head and
 * the embedding contributions). Overwrites m->acts.logits with d loss /
 * d logits. LT_ERR_STATE when no forward with targets preceded it. Allocates
 * nothing. */
lt_status lt_gpt2_backward(lt_gpt2 *m, char *err, size_t errlen);

/* The index of the parameter called `name` (Hugging Face name, with or
 * without "transformer."), or -1. */
int lt_gpt2_find_param(const lt_gpt2 *m, const char *name);

/* ---- weights in Hugging Face model.safetensors form (gpt2_io.c) ---- */

/* Copies every parameter from an opened safetensors file (into bf16 with
 * round to nearest when the model is pure bf16). Names may carry a
 * "transformer." prefix; "attn.bias" / "attn.masked_bias" buffers and
 * tensors that are not GPT-2 weights (e.g. a trace's "grad.*") are ignored;
 * "lm_head.weight", when present, must have wte's shape and equal wte (the
 * head is tied). Every parameter must be present with exactly its shape, as
 * F32, BF16 or F16 (converted to f32). Errors name `label` and the tensor,
 * e.g. "<label>: tensor 'h.1.ln_2.bias' is missing"; on error the
 * parameters are partly overwritten. */
lt_status lt_gpt2_load_weights(lt_gpt2 *m, const lt_st_file *f, const char *label, char *err, size_t errlen);

/* Opens `path` and calls lt_gpt2_load_weights. */
lt_status lt_gpt2_load(lt_gpt2 *m, const char *path, char *err, size_t errlen);

/* Writes every parameter as F32 (BF16 when the model is pure bf16) under its Hugging Face name (no prefix, no
 * lm_head: transformers re-ties it) with metadata format "pt", atomically. */
lt_status lt_gpt2_save(const lt_gpt2 *m, const char *path, char *err, size_t errlen);

#endif
