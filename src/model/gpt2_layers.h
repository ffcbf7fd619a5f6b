/* leantrain (internal, model layer): the GPT-2 layer kernels, llm.c style:
 * outputs first, every tensor's shape in the comment, row-major, N = B * T
 * rows. Matrix multiplies go to OpenBLAS (cblas_sgemm); the rest are fused
 * OpenMP loops. Reductions that decide accuracy (layernorm statistics, the
 * log-sum-exp, bias and layernorm-weight gradients summed over N rows) use
 * double accumulators; everything stored is float. None of them allocates.
 *
 * Gradient conventions: a `d<weight>` argument is accumulated into (+=); a
 * `dinp` argument is overwritten, except layernorm_backward's, which adds
 * (the residual stream's gradient is the sum of both branches). */
#ifndef LEANTRAIN_MODEL_GPT2_LAYERS_H
#define LEANTRAIN_MODEL_GPT2_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/philox.h"

/* The kernel set OpenBLAS runs the matrix multiplies on ("SkylakeX",
 * "Haswell", "Prescott", ...: its own name, chosen when it was loaded). */
const char *lt_nn_blas_core(void);

/* Address space of one OpenBLAS buffer (BUFFER_SIZE of its x86-64 builds: 128 MiB, measured on Debian's 0.3.21).
 * With T threads it keeps 2T - 1: T - 1 for the workers of a product it splits, and one for each product running
 * at once (the attention runs one per thread). */
#define LT_NN_BLAS_BUFFER_BYTES ((size_t)128 << 20)

/* Makes OpenBLAS map now the buffers it keeps for the rest of the process, by a product split over every thread
 * of omp_get_max_threads (the workers' buffers), then its allocator (blas_memory_alloc, weak-linked) holding one
 * buffer per thread at once (without it: a product per thread at once), so that no later product allocates. OpenBLAS
 * retries a buffer it cannot allocate forever, so a product run after the model's allocations had used up an
 * address-space limit (`ulimit -v`) would hang; call this before allocating. Under such a limit, fails (-1,
 * err: the limit, what is left, what OpenBLAS needs, what to do) when less than 2T - 1 buffers are left:
 * OpenBLAS would hang here instead. Without a limit it only runs the products (a few milliseconds). */
int lt_nn_blas_reserve(char *err, size_t errlen);

/* out[B,T,C] = wte[inp[b,t], :] + wpe[t, :]. Token ids must be in range. With
 * noise nz (NULL or magnitude 0: none; NEFTune's, lt_noise_at of element
 * (b T + t) C + c) out = (wte[...] + noise) + wpe[...]. */
void lt_nn_encoder_forward(float *out, const int32_t *inp, const float *wte, const float *wpe, int B, int T, int C,
                           const lt_noise *nz);

/* dwte[V,C] += dout rows at their tokens; dwpe[P,C] += dout rows at their
 * positions. dout [B,T,C]. Deterministic: no atomics, fixed order. */
void lt_nn_encoder_backward(float *dwte, float *dwpe, const float *dout, const int32_t *inp, int B, int T, int C);

/* out[N,C] = (inp - mean) * rstd * w + b per row, with mean[N] and
 * rstd[N] = 1 / sqrt(var + eps) (biased variance) stored for backward. */
void lt_nn_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                             size_t N, int C, double eps);

/* dinp[N,C] += d loss / d inp; dw[C] += sum over rows of dout * xhat;
 * db[C] += sum of dout. dout [N,C], inp [N,C] the forward input. */
void lt_nn_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                              const float *mean, const float *rstd, size_t N, int C);

/* out[N,OC] = inp[N,C] @ w[C,OC] + bias[OC] (Hugging Face Conv1D layout). */
void lt_nn_matmul_forward(float *out, const float *inp, const float *w, const float *bias, size_t N, int C, int OC);

/* dinp[N,C] = dout[N,OC] @ w^T (overwritten); dw[C,OC] += inp^T @ dout;
 * dbias[OC] += column sums of dout. */
void lt_nn_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                           size_t N, int C, int OC);

/* Reduced-precision compute (mixed precision, emulated): values rounded to
 * bf16 or f16 and kept in floats, so the fp32 kernels then compute exactly
 * on 16-bit inputs with fp32 accumulation. */
typedef enum lt_nn_round { LT_NN_ROUND_NONE = 0, LT_NN_ROUND_BF16 = 1, LT_NN_ROUND_F16 = 2 } lt_nn_round;

/* Vocabulary rows of the head's weight gradient per sgemm. dwte = dlogits^T @ inp as one call over all V rows
 * made OpenBLAS 0.3.21 (SkylakeX kernels) pack a panel of dlogits as wide as V: 87 MiB of extra resident memory
 * for GPT-2's head at 1024 positions, 146 MiB for 256 positions of a 150,000-token vocabulary (about a chunk of
 * logits), none of it in the memory plan; in pieces of 4096 rows the panel is a few MiB. Each element is still
 * one sum over the N positions. */
#define LT_NN_LM_WGRAD_ROWS 4096

/* A linear layer's weight w[C, OC] (or an lm-head chunk's rows) as the 16-bit products read it: f, floats holding
 * the values the compute uses; or (f NULL) the weight itself, each product taking it as bf16 on the CPU's bf16 path:
 * b16, bf16 values used in place (pure bf16), or f32, an fp32 master rounded into buf as bf16 (mixed bf16, one
 * pass); buf has room for the weight as floats, into which a product that path does not take fetches them for
 * sgemm (lt_nn_fetch16: b16 expanded, or f32 rounded with the product's r). */
typedef struct lt_nn_weight {
    const float *f;
    const uint16_t *b16;
    float *buf;
    const float *f32;
} lt_nn_weight;

/* lt_nn_matmul_forward in the compute's precision: with r bf16 (inp, w and bias bf16 values) the product runs on
 * the CPU's bf16 instructions where lt_gemm_bf16 can (model/gemm_bf16.h; w.b16 in place through
 * lt_gemm_bf16_b16), else as sgemm; out is not rounded here. The 16-bit products below (matmul backward, lm head)
 * take the same path with bf16. */
void lt_nn_matmul_forward_r(float *out, const float *inp, lt_nn_weight w, const float *bias, size_t N, int C, int OC,
                            lt_nn_round r);

/* x[n] = the nearest bf16 / f16 value (round to nearest even; f16 overflows
 * to inf, as a cast does); a no-op for LT_NN_ROUND_NONE. */
void lt_nn_round_inplace(float *x, size_t n, lt_nn_round r);

/* dst[n] = src[n] rounded with r (one pass; a copy for LT_NN_ROUND_NONE). */
void lt_nn_round_copy(float *dst, const float *src, size_t n, lt_nn_round r);

/* x[n] = round(x[n]) + b[n] (a product's output rounded, then the residual added in fp32), one pass. */
void lt_nn_round_add(float *x, const float *b, size_t n, lt_nn_round r);

/* lt_nn_layernorm_forward with each output rounded with r as it is written. */
void lt_nn_layernorm_forward_r(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                               size_t N, int C, double eps, lt_nn_round r);

/* lt_nn_matmul_backward for 16-bit compute: dinp is rounded with r, and the
 * weight and bias gradients of this product are rounded with r before they
 * are added to dw / dbias (scratch holds C * OC floats). r = NONE is
 * lt_nn_matmul_backward exactly. */
void lt_nn_matmul_backward_r(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, lt_nn_weight w,
                             size_t N, int C, int OC, lt_nn_round r, float *scratch);

/* dst[n] = a weight as the 16-bit compute reads it: src (f32) copied and rounded with r, or, when src is NULL,
 * src16 (bf16) expanded exactly. */
void lt_nn_fetch16(float *dst, const float *src, const uint16_t *src16, size_t n, lt_nn_round r);

/* dst[n] = src[n] as 16-bit values: f16 when r is LT_NN_ROUND_F16, else bf16 (round to nearest even; exact for
 * values already rounded with r). */
void lt_nn_pack16(uint16_t *dst, const float *src, size_t n, lt_nn_round r);

/* dst[n] = src[n] expanded exactly: f16 values when r is LT_NN_ROUND_F16, else bf16. */
void lt_nn_unpack16(float *dst, const uint16_t *src, size_t n, lt_nn_round r);

/* lt_nn_encoder_forward from bf16 tables (pure bf16 weights). */
void lt_nn_encoder_forward16(float *out, const int32_t *inp, const uint16_t *wte, const uint16_t *wpe, int B, int T,
                             int C, const lt_noise *nz);

/* The lm head with a 16-bit weight: wte is read `rows` vocabulary rows at a
 * time into wscratch[rows * C], from f32 (rounded with r) or, when wte is
 * NULL, from bf16 wte16. logits = inp @ round(wte)^T, then rounded with r. */
void lt_nn_lmhead_forward_r(float *logits, const float *inp, const float *wte, const uint16_t *wte16, size_t N, int C,
                            int V, lt_nn_round r, float *wscratch, int rows);

/* Its backward: dinp = dlogits @ round(wte), rounded with r (overwritten);
 * dwte += round(dlogits^T @ inp) chunk by chunk through gscratch[rows * C]. */
void lt_nn_lmhead_backward_r(float *dinp, float *dwte, const float *dlogits, const float *inp, const float *wte,
                             const uint16_t *wte16, size_t N, int C, int V, lt_nn_round r, float *wscratch,
                             float *gscratch, int rows);

/* The same for one chunk of rows when the head runs in chunks: dinp =
 * round(dlogits @ round(wte)) (overwritten), and wte's gradient summed in
 * fp32, not rounded: sum[V,C] = dlogits^T @ inp, added to sum unless first. */
void lt_nn_lmhead_backward_sum_r(float *dinp, float *sum, int first, const float *dlogits, const float *inp,
                                 const float *wte, const uint16_t *wte16, size_t N, int C, int V, lt_nn_round r,
                                 float *wscratch, int rows);

/* dwte[n] += round(sum[n]) with r (sum rounded in place): the chunks' weight gradient, rounded once as one
 * multiply's would be. */
void lt_nn_lmhead_sum_finish_r(float *dwte, float *sum, size_t n, lt_nn_round r);

/* Causal multi-head self-attention. qkv [B,T,3C] holds q | k | v, each C wide
 * with head h at columns h*hs .. h*hs+hs-1 (hs = C / NH). Writes
 * out[B,T,C] = softmax over t2 <= t of q.k / sqrt(hs), times v, heads side by
 * side, and stats [B,NH,T,2]: each row's max score and 1 / sum, from which the
 * backward recomputes the probabilities (no T x T matrix is kept). The scores
 * go through scratch[scratch_floats] (at least 2T floats; each thread takes
 * 2 x lt_nn_attention_rows(T, scratch_floats) x T of it, and fewer threads run
 * when it is short). The results do not depend on the thread count. */
void lt_nn_attention_forward(float *out, float *stats, float *scratch, size_t scratch_floats, const float *qkv, int B,
                             int T, int C, int NH);

/* lt_nn_attention_forward that rounds each probability with `r` before it is
 * multiplied into v (autocast's bf16 attention weights), and out with `r`.
 * With `drop` (NULL or a zero threshold: none) the probabilities go through
 * dropout before they meet v, as GPT-2's attn_dropout does: probability
 * (b, h, t, t2) is element ((b NH + h) T + t) T + t2 of the site, kept ones
 * become round(p x scale), the others 0. The statistics are the softmax's,
 * before dropout. */
void lt_nn_attention_forward_r(float *out, float *stats, float *scratch, size_t scratch_floats, const float *qkv,
                               int B, int T, int C, int NH, lt_nn_round r, const lt_dropout *drop);

/* dqkv[B,T,3C] = d loss / d qkv (overwritten, then rounded with r: the
 * gradient entering the qkv product) from dout [B,T,C], the forward's qkv and
 * stats, and its `r` and `drop` (the mask is drawn again); the probabilities
 * are recomputed with the forward's bits when scratch_floats is the forward's
 * too. */
void lt_nn_attention_backward(float *dqkv, float *scratch, size_t scratch_floats, const float *dout,
                              const float *qkv, const float *stats, int B, int T, int C, int NH, lt_nn_round r,
                              const lt_dropout *drop);

/* Dropout of n consecutive elements, the first being element i0 of site d:
 * dst[k] = round(round(src[k]) x scale) with r where element i0 + k is kept,
 * 0 where not (round: none for LT_NN_ROUND_NONE). dst may be src. The same
 * function is the backward: the gradient of a dropped tensor passes through
 * the same mask and scale. Nothing happens when d is NULL or its threshold
 * 0 (dst must then be src). */
void lt_nn_dropout(float *dst, const float *src, size_t n, uint64_t i0, const lt_dropout *d, lt_nn_round r);

/* The query rows the attention takes at once for this T and scratch (at most 64; at least 1 when
 * scratch_floats >= 2T): a thread's share of the scratch is twice this many rows of T floats. */
int lt_nn_attention_rows(int T, size_t scratch_floats);

/* The tanh the GELU kernels use (vectorizable; absolute error under 2.5e-7), exposed for its test. */
float lt_nn_tanh_gelu(float u);

/* The e^y the cross-entropy kernels use (vectorizable; relative error under 1.2e-7; y clamped to
 * [-87, 88]), exposed for its test. */
float lt_nn_exp(float y);

/* out[n] = gelu_new(inp[n]) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
void lt_nn_gelu_forward(float *out, const float *inp, size_t n);

/* dinout[n] *= gelu_new'(inp[n]), in place (dinout holds d loss / d out on
 * entry and d loss / d inp on return). */
void lt_nn_gelu_backward(float *dinout, const float *inp, size_t n);

/* 16-bit compute in one pass: inp rounded with r in place, then out = round(gelu_new(inp)). */
void lt_nn_gelu_forward_r(float *out, float *inp, size_t n, lt_nn_round r);

/* 16-bit compute in one pass: dinout = round(dinout * gelu_new'(inp)). */
void lt_nn_gelu_backward_r(float *dinout, const float *inp, size_t n, lt_nn_round r);

/* out[n] = a[n] + b[n]; out may alias a or b. */
void lt_nn_residual_forward(float *out, const float *a, const float *b, size_t n);

/* logits[N,V] = inp[N,C] @ wte[V,C]^T (the lm head tied to the embedding). */
void lt_nn_lmhead_forward(float *logits, const float *inp, const float *wte, size_t N, int C, int V);

/* dinp[N,C] = dlogits @ wte (overwritten); dwte[V,C] += dlogits^T @ inp. */
void lt_nn_lmhead_backward(float *dinp, float *dwte, const float *dlogits, const float *inp, const float *wte,
                           size_t N, int C, int V);

/* Per row of logits [N,V]: lse[n] = log sum exp, losses[n] = lse - logit at
 * targets[n] (targets in range); with label smoothing eps (the Trainer's
 * label_smoothing_factor, LabelSmoother's loss: 0 is none) losses[n] =
 * (1 - eps) (lse - logit at target) + eps (lse - mean of the row's logits).
 * Returns the sum of the losses, in double and in a fixed order
 * (deterministic for any thread count). */
double lt_nn_crossentropy_forward(float *losses, float *lse, const float *logits, const int32_t *targets, size_t N,
                                  int V, float eps);

/* How many of the N rows of logits [N,V] have their top-1 prediction at
 * targets[n]: the first index of the row's largest value, or of its first
 * NaN if it has one (torch.argmax's answer, which run_clm's accuracy takes).
 * An integer count: the same for any thread count. */
size_t lt_nn_top1_hits(const float *logits, const int32_t *targets, size_t N, int V);

/* dlogits[N,V] = (softmax(logits) - (1 - eps) onehot(targets) - eps / V) *
 * scale, from the forward's lse (eps 0: exactly (softmax - onehot) * scale);
 * dlogits may be logits itself (in place). scale is 1/N for a mean loss. */
void lt_nn_crossentropy_backward(float *dlogits, const float *logits, const float *lse, const int32_t *targets,
                                 size_t N, int V, float scale, float eps);

/* lt_nn_crossentropy_backward with each row of dlogits rounded with r once it is written (the gradient entering
 * the lm head's multiply in 16-bit compute). */
void lt_nn_crossentropy_backward_r(float *dlogits, const float *logits, const float *lse, const int32_t *targets,
                                   size_t N, int V, float scale, float eps, lt_nn_round r);

#endif
