/* The host side of the device GPT-2 (model/cuda/gpt2_device.h), plain C and
 * built in every configuration: the activation buffer's layout and the
 * memory plan (so `leantrain plan` can predict device memory in a CPU-only
 * build), and, in a build without CUDA, the device functions as stubs that
 * fail with a message saying so (the way kernels/cuda_none.c does for the
 * optimizer backend). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/cuda/gpt2_device.h"
#include "util/errmsg.h"

/* Floats of the lt_cunn column-sum scratch for N rows of C columns: partial
 * sums of groups of 64 rows, two rows of them for layernorm (db and dw). The
 * formula of lt_cunn_colsum_scratch_floats, which is CUDA code; the device
 * model's set_batch checks that the two agree before using the layout. */
static size_t colsum_floats(size_t N, size_t C) { return 2 * ((N + 63) / 64) * C; }

static size_t align_up(size_t n) { return (n + LT_GPT2_DEV_ALIGN - 1) / LT_GPT2_DEV_ALIGN * LT_GPT2_DEV_ALIGN; }

/* a * b * c into *out; 0 when it overflows */
static int mul3(size_t a, size_t b, size_t c, size_t *out) {
    size_t t;
    return !__builtin_mul_overflow(a, b, &t) && !__builtin_mul_overflow(t, c, out);
}

lt_status lt_gpt2_dev_check_precision(lt_gpt2_precision p, int pure_bf16, char *err, size_t errlen) {
    if (p != LT_GPT2_F32 && p != LT_GPT2_BF16 && p != LT_GPT2_F16) {
        lt_errmsg(err, errlen, "device GPT-2: precision %d: the device computes in fp32, bf16 or fp16", (int)p);
        return LT_ERR_ARG;
    }
    if (pure_bf16 && p != LT_GPT2_BF16) {
        lt_errmsg(err, errlen, "device GPT-2: pure bf16 parameters need bf16 compute%s",
                  p == LT_GPT2_F16 ? " (fp16 keeps fp32 master weights: its loss-scaled updates need them; there are "
                                     "no pure fp16 parameters)"
                                   : "");
        return LT_ERR_ARG;
    }
    return LT_OK;
}

static size_t logits_ld(const lt_gpt2_config *c) {
    const size_t V = (size_t)c->vocab_size;
    return (V + LT_GPT2_DEV_LOGITS_PAD - 1) / LT_GPT2_DEV_LOGITS_PAD * LT_GPT2_DEV_LOGITS_PAD;
}

size_t lt_gpt2_dev_logit_rows(const lt_gpt2_config *c, size_t BT, lt_gpt2_precision p, int head_rows,
                              size_t *headsum_bytes) {
    if (headsum_bytes) *headsum_bytes = 0;
    const size_t chunk = lt_gpt2_head_chunk(BT, head_rows);
    if (chunk == BT || p != LT_GPT2_F16) return chunk;
    /* fp16: the [V, C] fp32 sum against the (BT - chunk) rows of 2-byte logits it saves (sizes far below
       SIZE_MAX here: BT <= 2^30 and V, C are ints, checked by the caller's layout) */
    const size_t sum = (size_t)c->vocab_size * (size_t)c->n_embd * sizeof(float);
    if ((BT - chunk) * logits_ld(c) * 2 <= sum) return BT;
    if (headsum_bytes) *headsum_bytes = sum;
    return chunk;
}

lt_status lt_gpt2_dev_layout_of(const lt_gpt2_config *c, int B, int T, int checkpointing, lt_gpt2_precision p,
                                int head_rows, lt_gpt2_dev_layout *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    lt_status st = lt_gpt2_config_check(c, err, errlen);
    if (st || (st = lt_gpt2_dev_check_precision(p, 0, err, errlen))) return st;
    const size_t elem_bytes = p == LT_GPT2_F32 ? 4 : 2;
    if (B < 1 || T < 1 || T > c->n_positions) {
        lt_errmsg(err, errlen, "device GPT-2: B %d, T %d: need B >= 1 and 1 <= T <= n_positions (%d)", B, T,
            c->n_positions);
        return LT_ERR_ARG;
    }
    size_t L = (size_t)c->n_layer, C = (size_t)c->n_embd, NH = (size_t)c->n_head, BT = (size_t)B * (size_t)T;
    size_t ldv = logits_ld(c), hsum = 0;
    size_t LI = checkpointing ? 1 : L, LS = checkpointing ? 1 : L, S = elem_bytes, F = sizeof(float);
    /* every GEMM dimension and leading dimension is an int; the largest row count is BT, the widest row ldv */
    if (BT > (size_t)1 << 30 || ldv > (size_t)1 << 30) goto too_large;
    {
        const size_t R = lt_gpt2_dev_logit_rows(c, BT, p, head_rows, &hsum);
        struct {
            size_t a, b, c; /* bytes = a * b * c (each factor small enough that the checks below hold) */
        } f[LT_GPT2_DEV_NBUF] = {
            [LT_GPT2_DEV_ENCODED] = {BT, C, S},       [LT_GPT2_DEV_LN1] = {LI * BT, C, S},
            [LT_GPT2_DEV_LN1_MEAN] = {LS, BT, F},     [LT_GPT2_DEV_LN1_RSTD] = {LS, BT, F},
            [LT_GPT2_DEV_QKV] = {LI * BT, 3 * C, S},  [LT_GPT2_DEV_ATT] = {LI * BT, NH, F},
            [LT_GPT2_DEV_ATTY] = {LI * BT, C, S},     [LT_GPT2_DEV_RES2] = {LS * BT, C, S},
            [LT_GPT2_DEV_LN2] = {LI * BT, C, S},      [LT_GPT2_DEV_LN2_MEAN] = {LS, BT, F},
            [LT_GPT2_DEV_LN2_RSTD] = {LS, BT, F},     [LT_GPT2_DEV_FCH] = {LI * BT, 4 * C, S},
            [LT_GPT2_DEV_FCHG] = {LI * BT, 4 * C, S}, [LT_GPT2_DEV_RES3] = {L * BT, C, S},
            [LT_GPT2_DEV_LNF] = {BT, C, S},           [LT_GPT2_DEV_LNF_MEAN] = {1, BT, F},
            [LT_GPT2_DEV_LNF_RSTD] = {1, BT, F},      [LT_GPT2_DEV_LOGITS] = {R, ldv, S},
            [LT_GPT2_DEV_LSE] = {1, BT, F},           [LT_GPT2_DEV_LOSSES] = {1, BT, F},
            [LT_GPT2_DEV_DRES] = {BT, C, S},          [LT_GPT2_DEV_DLN] = {BT, C, S},
            [LT_GPT2_DEV_DBIG] = {BT, 4 * C, S},      [LT_GPT2_DEV_DQKV] = {BT, 3 * C, S},
            [LT_GPT2_DEV_DATTY] = {BT, C, S},         [LT_GPT2_DEV_DROW] = {(size_t)B * NH, (size_t)T, F},
            [LT_GPT2_DEV_COLSUM] = {1, colsum_floats(BT, 4 * C), F},
            [LT_GPT2_DEV_HEADSUM] = {1, hsum, 1},
            [LT_GPT2_DEV_INPUTS] = {1, BT, sizeof(int32_t)},
            [LT_GPT2_DEV_TARGETS] = {1, BT, sizeof(int32_t)},
            [LT_GPT2_DEV_PLAN] = {1, 3 * BT + 1, sizeof(int32_t)},
            [LT_GPT2_DEV_LOSS_SUM] = {1, 2, sizeof(double)},
            [LT_GPT2_DEV_NORM] = {1, LT_GPT2_DEV_NORM_PARTS + 1, sizeof(double)},
        };
        size_t at = 0;
        for (int i = 0; i < LT_GPT2_DEV_NBUF; i++) {
            size_t n;
            /* L * BT and LI * BT stay far below SIZE_MAX (L and BT are ints, BT <= 2^30) */
            if (!mul3(f[i].a, f[i].b, f[i].c, &n) || n > SIZE_MAX / 2 || at > SIZE_MAX / 2 - n - LT_GPT2_DEV_ALIGN)
                goto too_large;
            out->offset[i] = at;
            out->bytes[i] = n;
            at += align_up(n);
            if (i == LT_GPT2_DEV_NACT - 1) out->activation_bytes = at;
            if (i == LT_GPT2_DEV_NBACK - 1) out->backward_bytes = at - out->activation_bytes;
        }
        out->total_bytes = at;
        out->token_bytes = at - out->activation_bytes - out->backward_bytes;
        out->ldv = (int)ldv;
        out->head_chunk = R;
    }
    return LT_OK;
too_large:
    lt_errmsg(err, errlen, "device GPT-2: B %d x T %d is too large for this model", B, T);
    return LT_ERR_ARG;
}

lt_status lt_gpt2_dev_memory_plan(const lt_gpt2_config *c, int B, int T, int checkpointing, int grad_per_block,
                                  lt_gpt2_precision p, int pure_bf16, int head_rows, lt_gpt2_dev_memory *out,
                                  char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    lt_gpt2_dev_layout lay;
    lt_status st = lt_gpt2_dev_check_precision(p, pure_bf16, err, errlen);
    if (st || (st = lt_gpt2_dev_layout_of(c, B, T, checkpointing, p, head_rows, &lay, err, errlen))) return st;
    lt_gpt2_param *params;
    int n;
    if ((st = lt_gpt2_param_table(c, &params, &n, err, errlen))) return st;
    /* the host model's layout: every tensor padded to 16 elements (64 bytes of fp32) */
    size_t w = 0, g = 0, np = 0;
    int block1 = LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK, after = LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK * c->n_layer;
    for (int i = 0; i < n; i++) {
        size_t padded = (params[i].numel + 15) / 16 * 16;
        w += padded;
        np += params[i].numel;
        if (!(grad_per_block && i >= block1 && i < after)) g += padded;
    }
    free(params);
    out->num_params = np;
    out->weight_bytes = w * (pure_bf16 ? sizeof(uint16_t) : sizeof(float));
    out->weight16_bytes = p != LT_GPT2_F32 && !pure_bf16 ? w * sizeof(uint16_t) : 0;
    out->grad_bytes = g * sizeof(float);
    out->activation_bytes = lay.activation_bytes;
    out->backward_bytes = lay.backward_bytes;
    out->token_bytes = lay.token_bytes;
    out->total_bytes = out->weight_bytes + out->weight16_bytes + out->grad_bytes + lay.total_bytes;
    out->cublas_bytes = (size_t)32 << 20;
    return LT_OK;
}

#ifndef LT_HAVE_CUDA

#define LT_NO_CUDA "this build of leantrain has no CUDA support (rebuild with nvcc on PATH and LT_CUDA unset)"

static lt_status no_cuda(char *err, size_t errlen) {
    lt_errmsg(err, errlen, "device GPT-2: %s", LT_NO_CUDA);
    return LT_ERR_DEVICE;
}

lt_status lt_gpt2_dev_create(const lt_gpt2 *host, void *stream, lt_gpt2_dev **out, char *err, size_t errlen) {
    (void)host, (void)stream;
    *out = NULL;
    return no_cuda(err, errlen);
}
lt_status lt_gpt2_dev_create_as(const lt_gpt2 *host, void *stream, lt_gpt2_precision p, int pure_bf16,
                                int grad_per_block, lt_gpt2_dev **out, char *err, size_t errlen) {
    (void)host, (void)stream, (void)p, (void)pure_bf16, (void)grad_per_block;
    *out = NULL;
    return no_cuda(err, errlen);
}
/* Without create no model exists: the functions below are never reached with one. */
void lt_gpt2_dev_free(lt_gpt2_dev *d) { (void)d; }
lt_status lt_gpt2_dev_upload(lt_gpt2_dev *d, const lt_gpt2 *host, char *err, size_t errlen) {
    (void)d, (void)host;
    return no_cuda(err, errlen);
}
lt_status lt_gpt2_dev_download(const lt_gpt2_dev *d, lt_gpt2 *host, char *err, size_t errlen) {
    (void)d, (void)host;
    return no_cuda(err, errlen);
}
lt_status lt_gpt2_dev_download_grads(const lt_gpt2_dev *d, lt_gpt2 *host, char *err, size_t errlen) {
    (void)d, (void)host;
    return no_cuda(err, errlen);
}
lt_status lt_gpt2_dev_set_batch(lt_gpt2_dev *d, int B, int T, char *err, size_t errlen) {
    (void)d, (void)B, (void)T;
    return no_cuda(err, errlen);
}
void lt_gpt2_dev_set_checkpointing(lt_gpt2_dev *d, int on) { (void)d, (void)on; }
void lt_gpt2_dev_set_label_smoothing(lt_gpt2_dev *d, float eps) { (void)d, (void)eps; }
void lt_gpt2_dev_set_neftune(lt_gpt2_dev *d, float alpha) { (void)d, (void)alpha; }
lt_status lt_gpt2_dev_set_precision(lt_gpt2_dev *d, lt_gpt2_precision p, int pure_bf16, char *err, size_t errlen) {
    (void)d, (void)p, (void)pure_bf16;
    return no_cuda(err, errlen);
}
lt_status lt_gpt2_dev_set_grad_per_block(lt_gpt2_dev *d, int on, char *err, size_t errlen) {
    (void)d, (void)on;
    return no_cuda(err, errlen);
}
lt_status lt_gpt2_dev_set_tf32(lt_gpt2_dev *d, int on, char *err, size_t errlen) {
    (void)d, (void)on;
    return no_cuda(err, errlen);
}
void lt_gpt2_dev_set_loss_scale(lt_gpt2_dev *d, float scale) { (void)d, (void)scale; }
void lt_gpt2_dev_set_head_rows(lt_gpt2_dev *d, int rows) { (void)d, (void)rows; }
void lt_gpt2_dev_set_dropout(lt_gpt2_dev *d, int on, uint64_t seed, uint32_t stream) {
    (void)d, (void)on, (void)seed, (void)stream;
}
lt_status lt_gpt2_dev_refresh_bf16(lt_gpt2_dev *d, char *err, size_t errlen) {
    (void)d;
    return no_cuda(err, errlen);
}
lt_status lt_gpt2_dev_zero_grad(lt_gpt2_dev *d, char *err, size_t errlen) {
    (void)d;
    return no_cuda(err, errlen);
}
lt_status lt_gpt2_dev_forward(lt_gpt2_dev *d, const int32_t *inputs, const int32_t *targets, int B, int T,
                              float *loss, char *err, size_t errlen) {
    (void)d, (void)inputs, (void)targets, (void)B, (void)T;
    if (loss) *loss = NAN;
    return no_cuda(err, errlen);
}
lt_status lt_gpt2_dev_eval_loss(lt_gpt2_dev *d, const int32_t *inputs, const int32_t *targets, int B, int T,
                                float *loss, char *err, size_t errlen) {
    (void)d, (void)inputs, (void)targets, (void)B, (void)T;
    if (loss) *loss = NAN;
    return no_cuda(err, errlen);
}
lt_status lt_gpt2_dev_eval(lt_gpt2_dev *d, const int32_t *inputs, const int32_t *targets, int B, int T, float *loss,
                           long *correct, char *err, size_t errlen) {
    (void)d, (void)inputs, (void)targets, (void)B, (void)T;
    if (loss) *loss = NAN;
    if (correct) *correct = 0;
    return no_cuda(err, errlen);
}
lt_status lt_gpt2_dev_backward(lt_gpt2_dev *d, char *err, size_t errlen) {
    (void)d;
    return no_cuda(err, errlen);
}
lt_status lt_gpt2_dev_backward_cb(lt_gpt2_dev *d, lt_gpt2_grad_ready ready, void *ctx, char *err, size_t errlen) {
    (void)d, (void)ready, (void)ctx;
    return no_cuda(err, errlen);
}
lt_status lt_gpt2_dev_grad_norm(lt_gpt2_dev *d, double *norm, char *err, size_t errlen) {
    (void)d;
    *norm = NAN;
    return no_cuda(err, errlen);
}
lt_status lt_gpt2_dev_sync(lt_gpt2_dev *d, char *err, size_t errlen) {
    (void)d;
    return no_cuda(err, errlen);
}
int lt_gpt2_dev_num_tensors(const lt_gpt2_dev *d) {
    (void)d;
    return 0;
}
const lt_gpt2_dev_param *lt_gpt2_dev_param_at(const lt_gpt2_dev *d, int i) {
    (void)d, (void)i;
    return NULL;
}
void *lt_gpt2_dev_stream(const lt_gpt2_dev *d) {
    (void)d;
    return NULL;
}
const void *lt_gpt2_dev_logits(const lt_gpt2_dev *d, int *ldv, lt_dtype *dtype) {
    (void)d;
    if (ldv) *ldv = 0;
    if (dtype) *dtype = LT_DTYPE_F32;
    return NULL;
}
size_t lt_gpt2_dev_allocated_bytes(const lt_gpt2_dev *d) {
    (void)d;
    return 0;
}
size_t lt_gpt2_dev_peak_bytes(const lt_gpt2_dev *d) {
    (void)d;
    return 0;
}
#endif
