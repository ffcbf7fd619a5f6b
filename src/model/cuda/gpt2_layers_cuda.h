/* leantrain (internal, model layer): the GPT-2 layer kernels on a CUDA
 * device, seen from C. One function per CPU kernel of model/gpt2_layers.h,
 * with the same name after the prefix (lt_nn_X -> lt_cunn_X), the same
 * arguments in the same order (outputs first), the same shapes and the same
 * gradient conventions (a d<weight> is accumulated into, a dinp is
 * overwritten except layernorm_backward's, which adds), plus:
 *
 *   - a context `nn` first: the stream every kernel is queued on, the GEMM
 *     handle, the last error message;
 *   - `dt`, the storage type of the activations, of their gradients and of
 *     the weights as the forward reads them: LT_DTYPE_F32, LT_DTYPE_BF16 or
 *     LT_DTYPE_F16 (16-bit values are stored as their 16 bits, uint16_t).
 *     Arithmetic is fp32 whatever dt is, and each stored 16-bit value is
 *     rounded once, to nearest even (the roundings of leantrain/dtype.h; an
 *     fp16 value above 65504 becomes inf; no backward kernel masks an inf or
 *     NaN (no max, clamp or select on gradients), so that an overflow reaches
 *     the parameter gradients, where fp16 loss scaling looks for it).
 *     Parameter gradients (dwte,
 *     dwpe, dw, dbias, layernorm dw / db) and the statistics (mean, rstd, lse,
 *     losses, attention's D) are always float;
 *   - device pointers for every array, except where a comment says host;
 *   - scratch arguments where the GPU needs room the CPU kernel did not (the
 *     deterministic column sums), sized by the functions below, so that no
 *     kernel allocates.
 *
 * Every function queues its work and returns 0, or -1 with the message in
 * lt_cunn_error(nn) (a bad dtype, a size out of range, a launch error, a
 * cuBLAS error). Errors of the kernels themselves surface at the next
 * lt_cunn_sync. N = B * T rows everywhere; sizes are bounded by what cuBLAS's
 * int dimensions take (N, C, OC, V and ldv below 2^31).
 *
 * Determinism: no kernel uses floating-point atomics; every sum is taken in a
 * fixed order, so two runs on the same device give the same bits. The
 * encoder's token gradient, the one scatter of the model, uses a bucket list
 * built on the host (lt_cunn_encoder_plan). Matrix multiplies go to cuBLAS
 * (fp32 accumulation; bf16 and fp16 inputs on the tensor cores), which is
 * deterministic for a given GPU model and library version.
 *
 * In the emulation build (`make cuda-emu`, LT_CUDA_EMU) the kernels run on
 * the CPU and the matrix multiplies are OpenBLAS sgemm on float copies. */
#ifndef LEANTRAIN_MODEL_CUDA_GPT2_LAYERS_CUDA_H
#define LEANTRAIN_MODEL_CUDA_GPT2_LAYERS_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/philox.h"
#include "leantrain/dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lt_cunn lt_cunn;

/* A context on the current CUDA device whose kernels go to `stream` (a
 * cudaStream_t; NULL: the legacy default stream). Loads cuBLAS (libcublas,
 * opened at run time so that a CUDA build needs it only when this is called)
 * and creates its handle. NULL with the message in err on failure. */
lt_cunn *lt_cunn_create(void *stream, char *err, size_t errlen);

/* Waits for the stream, then frees the context. NULL is a no-op. */
void lt_cunn_destroy(lt_cunn *nn);

/* The message of the last failure ("" when none). */
const char *lt_cunn_error(const lt_cunn *nn);

/* Waits for everything queued; reports an error of the kernels (-1). */
int lt_cunn_sync(lt_cunn *nn);

/* ---- encoder ---- */

/* out[B,T,C] = wte[inp[b,t], :] + wpe[t, :]. inp [B,T] int32 on the device,
 * every id in [0, V). With noise nz (NULL or magnitude 0: none) the CPU's
 * lt_nn_encoder_forward: (wte[...] + lt_noise_at(element)) + wpe[...]. */
int lt_cunn_encoder_forward(lt_cunn *nn, lt_dtype dt, void *out, const int32_t *inp, const void *wte,
                            const void *wpe, int B, int T, int C, const lt_noise *nz);

/* Ints of the bucket list of N tokens: 3 * N + 1. */
size_t lt_cunn_encoder_plan_ints(size_t N);

/* HOST function: fills plan[3N+1] (host memory) with the bucket list of the
 * tokens inp[N] (host memory, ids in [0, V)) that encoder_backward needs:
 * the rows grouped by token id, each group in increasing row order (a
 * counting sort, stable), then each group's start, then each group's token.
 * count[V] is host scratch. Returns the number of groups (distinct tokens), or
 * -1 when an id is out of range. The caller copies plan to the device (it is
 * small: 12 bytes a token) with the batch's tokens. */
int lt_cunn_encoder_plan(int32_t *plan, int32_t *count, const int32_t *inp, size_t N, int V);

/* dwte[V,C] += dout rows at their tokens; dwpe[P,C] += dout rows at their
 * positions. dout [B,T,C]; plan: lt_cunn_encoder_plan's list for this
 * batch's tokens (device copy), ngroups its return value. Every element of
 * dwte and dwpe is summed by one thread in increasing row order, the CPU's
 * order: the results equal the CPU kernel's bit for bit. */
int lt_cunn_encoder_backward(lt_cunn *nn, lt_dtype dt, float *dwte, float *dwpe, const void *dout,
                             const int32_t *plan, int ngroups, int B, int T, int C);

/* ---- layernorm ----
 * Neither function works in place: its output arrays (out, mean, rstd; dinp)
 * must not overlap any of its inputs (the kernels' pointers are restrict). */

/* out[N,C] = (inp - mean) * rstd * w + b per row; mean[N], rstd[N] =
 * 1 / sqrt(var + eps) (biased variance, two passes over the row) kept for
 * backward. */
int lt_cunn_layernorm_forward(lt_cunn *nn, lt_dtype dt, void *out, float *mean, float *rstd, const void *inp,
                              const void *w, const void *b, size_t N, int C, double eps);

/* on != 0: the layernorm kernels take 8 values a lane in 16-byte accesses
 * where C is a multiple of 8 and every array 16-byte aligned (other sizes one
 * at a time); 0: one value at a time always (the two forms sum a row in
 * different orders, so their bits differ within fp32 rounding). Returns the
 * previous setting. A context starts with on = 1 unless the environment has
 * LT_LAYERNORM_V8=0. */
int lt_cunn_layernorm_v8(lt_cunn *nn, int on);

/* Floats of the scratch that layernorm_backward and matmul_backward need for
 * N rows of C (or OC) columns: per-column partial sums of row groups, which a
 * second pass adds in a fixed order (a deterministic column sum without
 * atomics). */
size_t lt_cunn_colsum_scratch_floats(size_t N, int C);

/* dinp[N,C] += d loss / d inp; dw[C] += sum over rows of dout * xhat; db[C] +=
 * sum of dout. dout [N,C], inp [N,C] the forward input, mean / rstd the
 * forward's. scratch: lt_cunn_colsum_scratch_floats(N, C) floats. */
int lt_cunn_layernorm_backward(lt_cunn *nn, lt_dtype dt, void *dinp, float *dw, float *db, const void *dout,
                               const void *inp, const void *w, const float *mean, const float *rstd, size_t N, int C,
                               float *scratch);

/* ---- matrix multiplies (cuBLAS, fp32 accumulation) ---- */

/* on != 0: the matrix multiplies of fp32 storage take their inputs rounded to
 * TF32 on the tensor cores, summed in fp32 (lt_cugemm_set_tf32: the trainer's
 * --tf32; about 2^-11 relative error per input instead of 2^-24); 16-bit
 * storage and the attention kernels are unaffected. Off when created. Returns
 * the previous setting. The caller checks that the GPU has TF32 (compute
 * capability 8.0 or later): on an older one cuBLAS falls back to fp32. */
int lt_cunn_gemm_tf32(lt_cunn *nn, int on);

/* out[N,OC] = inp[N,C] @ w[C,OC] + bias[OC] (Hugging Face Conv1D layout).
 * The bias is written first and the product added onto it (the CPU's and
 * torch.addmm's order; with bf16 the sum is rounded once). bias NULL: none. */
int lt_cunn_matmul_forward(lt_cunn *nn, lt_dtype dt, void *out, const void *inp, const void *w, const void *bias,
                           size_t N, int C, int OC);

/* dinp[N,C] = dout[N,OC] @ w^T (overwritten; NULL: skipped); dw[C,OC] +=
 * inp^T @ dout (fp32, from dt inputs); dbias[OC] += column sums of dout
 * (NULL: skipped). scratch: lt_cunn_colsum_scratch_floats(N, OC) floats
 * (NULL when dbias is NULL). */
int lt_cunn_matmul_backward(lt_cunn *nn, lt_dtype dt, void *dinp, float *dw, float *dbias, const void *dout,
                            const void *inp, const void *w, size_t N, int C, int OC, float *scratch);

/* lt_cunn_matmul_backward whose weight and bias gradients, with a 16-bit dt
 * and wscratch given, are rounded to dt before being added into dw and dbias,
 * as a 16-bit op's gradients are under torch.autocast (and in the CPU model's
 * 16-bit modes): dw += round(inp^T @ dout), dbias += round(column sums). An
 * fp16 product above 65504 thus becomes inf in dw, the overflow that fp16
 * loss scaling must see first (it sums over all N rows). wscratch: device
 * room for wscratch_elems values of dt (at least C, the GEMM is split into
 * column blocks that fit), not overlapping any argument. wscratch NULL or dt
 * LT_DTYPE_F32: lt_cunn_matmul_backward. */
int lt_cunn_matmul_backward_r(lt_cunn *nn, lt_dtype dt, void *dinp, float *dw, float *dbias, const void *dout,
                              const void *inp, const void *w, size_t N, int C, int OC, float *scratch, void *wscratch,
                              size_t wscratch_elems);

/* logits[N, ldv] = inp[N,C] @ wte[V,C]^T in the first V columns of each row
 * (the lm head tied to the embedding); columns V..ldv-1 are not written.
 * ldv >= V is the row stride: a multiple of 8 keeps bf16 rows 16-byte aligned,
 * which cuBLAS's fast kernels want (V = 50257 is odd). */
int lt_cunn_lmhead_forward(lt_cunn *nn, lt_dtype dt, void *logits, const void *inp, const void *wte, size_t N,
                           int C, int V, int ldv);

/* dinp[N,C] = dlogits @ wte (overwritten); dwte[V,C] += dlogits^T @ inp
 * (fp32). dlogits [N, ldv], first V columns used. */
int lt_cunn_lmhead_backward(lt_cunn *nn, lt_dtype dt, void *dinp, float *dwte, const void *dlogits,
                            const void *inp, const void *wte, size_t N, int C, int V, int ldv);

/* lt_cunn_lmhead_backward with dwte += round(dlogits^T @ inp) in a 16-bit dt
 * when wscratch is given (as lt_cunn_matmul_backward_r: room for
 * wscratch_elems values of dt, at least C). When V is not a multiple of 64,
 * dinp's product is two GEMMs (the vocabulary rows up to the last multiple of
 * 64, so that the large one runs on cuBLAS's aligned kernels, then the rest,
 * added in fp32): into dinp itself for fp32; for 16-bit dt into fscratch
 * (device floats, may be NULL), when it holds N*C floats, then rounded once
 * into dinp; otherwise one GEMM. fscratch may be wscratch's memory: it is done
 * with before the weight gradient starts. The forward splits its rows the same
 * way (each logit still one dot product of one GEMM). */
int lt_cunn_lmhead_backward_r(lt_cunn *nn, lt_dtype dt, void *dinp, float *dwte, const void *dlogits,
                              const void *inp, const void *wte, size_t N, int C, int V, int ldv, void *wscratch,
                              size_t wscratch_elems, float *fscratch, size_t fscratch_floats);

/* ---- attention (flash-style, the T x T probabilities are never stored) ----
 * Two implementations: attention.cu, fp32 FMA on the CUDA cores, for every
 * storage dtype and head size; attention_tc.cu, tensor cores (bf16 / fp16
 * products, or for fp32 storage 3xTF32 products; fp32 sums), chosen for bf16
 * and fp16 storage with head sizes up to 128 (64 after
 * lt_cunn_attention_tc128(nn, 0)) and for fp32 storage with head sizes up to
 * 64 (unless lt_cunn_attention_tf32(nn, 0)), unless lt_cunn_attention_simt
 * turned them off. The 16-bit tensor-core path rounds the probabilities
 * (forward, dv) and dS = P (dP - D) / sqrt(hs) (dq, dk) to the storage type
 * before their products, as FlashAttention does in 16-bit; the fp32 paths
 * keep them in fp32 (3xTF32 splits each fp32 operand into two tf32 parts and
 * sums three of the four products: relative error a few 2^-24). */

/* Causal multi-head self-attention. qkv [B,T,3C] holds q | k | v, each C wide
 * with head h at columns h*hs .. h*hs+hs-1 (hs = C / NH, at most 128; larger
 * heads are refused with a message). Writes out[B,T,C] = softmax over
 * t2 <= t of q.k / sqrt(hs), times v (fp32 sums, out rounded once to dt; see
 * above for the tensor-core path), and lse[B,NH,T] (float, device) = the
 * log-sum-exp of each query row's scores, all that backward needs besides qkv
 * and out. Any T >= 1; shared memory does not depend on T. With drop (NULL or
 * a zero threshold: none), lt_nn_attention_forward_r's dropout of the
 * probabilities (the same elements kept; the softmax's sum and lse are taken
 * before it), in both functions: kernels compiled for dropout, the others
 * unchanged. */
int lt_cunn_attention_forward(lt_cunn *nn, lt_dtype dt, void *out, float *lse, const void *qkv, int B, int T, int C,
                              int NH, const lt_dropout *drop);

/* dqkv[B,T,3C] = d loss / d qkv (overwritten) from dout [B,T,C] and the
 * forward's qkv, out and lse; the probabilities are recomputed from q, k and
 * lse. scratch [B,NH,T] (float, device) receives each query row's softmax
 * correction D = dout . out (= sum over t2 of att * d att), which the dq pass
 * computes and the dk / dv pass reads. Deterministic: no atomics, every sum in
 * a fixed order, so two runs give the same bits. */
int lt_cunn_attention_backward(lt_cunn *nn, lt_dtype dt, void *dqkv, float *scratch, const void *dout,
                               const void *qkv, const void *out, const float *lse, int B, int T, int C, int NH,
                               const lt_dropout *drop);

/* on != 0: attention runs on the CUDA cores for every dtype (the tensor-core
 * kernels off); 0: the default choice above. Returns the previous setting.
 * A context starts with on = 1 when the environment has LT_ATTENTION_SIMT set
 * (to anything but "" or "0"), else 0. */
int lt_cunn_attention_simt(lt_cunn *nn, int on);

/* on != 0: bf16 / fp16 attention with head sizes 65 to 128 (the 7B model's
 * 128) runs on the tensor cores too (one CTA per SM for its backward kernels,
 * dynamic shared memory past 48 KB; at the 7B shape 3.8x the CUDA-core kernel
 * forward and 5.1x backward on an H200); 0: the CUDA cores for those. Returns
 * the previous setting. A context starts with on = 1 unless the environment
 * has LT_ATTENTION_TC128=0. */
int lt_cunn_attention_tc128(lt_cunn *nn, int on);

/* on != 0: fp32 attention with head sizes up to 64 runs on the tensor cores
 * by 3xTF32 products; 0: on the CUDA cores. Returns the previous setting. A
 * context starts with on = 1 unless the environment has LT_ATTENTION_TF32=0. */
int lt_cunn_attention_tf32(lt_cunn *nn, int on);

/* ---- elementwise ---- */

/* dst[0..n) = src[0..n) converted: fp32 src into a bf16 or fp16 dst (to = LT_DTYPE_BF16 or LT_DTYPE_F16,
 * from = LT_DTYPE_F32: each value rounded to nearest even, as lt_cu_f32_to_bf16 / _f16), or a bf16 or fp16 src
 * into an fp32 dst (to = LT_DTYPE_F32: exact). Any other pair fails. The arrays must not overlap. */
int lt_cunn_convert(lt_cunn *nn, lt_dtype to, void *dst, lt_dtype from, const void *src, size_t n);

/* dst[0..n) += src[0..n) rounded to dt (to nearest even; fp32: unrounded)
 * and widened back exactly: an fp32 sum of weight-gradient products added
 * the way one dt product would be (lt_cunn_matmul_backward_r's rounding).
 * The arrays must not overlap. */
int lt_cunn_add_rounded(lt_cunn *nn, lt_dtype dt, float *dst, const float *src, size_t n);

/* out[n] = gelu_new(inp[n]) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
int lt_cunn_gelu_forward(lt_cunn *nn, lt_dtype dt, void *out, const void *inp, size_t n);

/* dinout[n] *= gelu_new'(inp[n]), in place. */
int lt_cunn_gelu_backward(lt_cunn *nn, lt_dtype dt, void *dinout, const void *inp, size_t n);

/* out[n] = a[n] + b[n]; out may alias a or b. */
int lt_cunn_residual_forward(lt_cunn *nn, lt_dtype dt, void *out, const void *a, const void *b, size_t n);

/* lt_nn_dropout from element 0 of site d: dst[i] = src[i] x scale (rounded to dt) where element i is kept, 0
 * where not; dst may be src. The CPU's bits (a 16-bit src is already rounded). Nothing when d is NULL or its
 * threshold 0 (dst must then be src). */
int lt_cunn_dropout(lt_cunn *nn, lt_dtype dt, void *dst, const void *src, size_t n, const lt_dropout *d);

/* ---- classifier: log-softmax + cross-entropy ---- */

/* Per row of logits [N, ldv] (first V columns): lse[n] = log sum exp,
 * losses[n] = lse - logit at targets[n] (targets [N] on the device, in
 * [0, V)); with label smoothing eps > 0, (1 - eps) times that + eps x (lse -
 * the row's mean logit), as lt_nn_crossentropy_forward. loss_sum (device, may
 * be NULL) gets the sum of the losses in double, added in a fixed order. */
int lt_cunn_crossentropy_forward(lt_cunn *nn, lt_dtype dt, float *losses, float *lse, const void *logits,
                                 const int32_t *targets, size_t N, int V, int ldv, float eps, double *loss_sum);

/* dlogits[N, ldv] = (softmax(logits) - (1 - eps) onehot(targets) - eps / V)
 * * scale from the forward's lse, first V columns (eps 0: the plain gradient,
 * bit for bit); dlogits may be logits (in place). */
int lt_cunn_crossentropy_backward(lt_cunn *nn, lt_dtype dt, void *dlogits, const void *logits, const float *lse,
                                  const int32_t *targets, size_t N, int V, int ldv, float scale, float eps);

/* *sum (device) = the sum of losses[N] in double, added in the fixed order
 * of crossentropy_forward's loss_sum (so chunks of rows classified apart and
 * summed once give the bits of one call over all rows). */
int lt_cunn_loss_sum(lt_cunn *nn, double *sum, const float *losses, size_t N);

/* *hits (device) += how many of the N rows of logits [N, ldv] (first V
 * columns) have their top-1 prediction at targets[n]: the first index of the
 * row's largest value, or of its first NaN if it has one (torch.argmax's
 * answer; lt_nn_top1_hits on the CPU). */
int lt_cunn_top1_hits(lt_cunn *nn, lt_dtype dt, unsigned long long *hits, const void *logits,
                      const int32_t *targets, size_t N, int V, int ldv);

/* The fused classifier: crossentropy_forward and crossentropy_backward in one
 * kernel, one pass to find each row's log-sum-exp (an online max and sum) and
 * one to overwrite the row with its gradient. logits [N, ldv] holds the
 * logits on entry and d loss / d logits on return, so the logits exist only in
 * dt (bf16: 2 bytes a logit) and never as a separate fp32 copy. losses, lse
 * and loss_sum as crossentropy_forward (lse bit-identical to it); dlogits bit-
 * identical to crossentropy_backward's from that lse. */
int lt_cunn_classifier(lt_cunn *nn, lt_dtype dt, void *logits, float *losses, float *lse, const int32_t *targets,
                       size_t N, int V, int ldv, float scale, float eps, double *loss_sum);

#ifdef __cplusplus
}
#endif
#endif
