/* The GPT-2 model on a CUDA device (gpt2_device.h): buffers, forward and
 * backward. The sequence of layer calls is the CPU model's (model/gpt2.c),
 * each lt_nn_* call replaced by its lt_cunn_* twin, so the two can be read side
 * by side; the only kernels of this file convert the weights between fp32 and
 * bf16 or fp16, and take the gradient norm. Every device allocation goes
 * through dev_alloc, which counts it, so that lt_gpt2_dev_allocated_bytes can
 * be checked against the plan (gpt2_device_host.c computes the same sizes
 * without a device). */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cu_internal.cuh"
#include "model/cuda/gpt2_device.h"
#include "model/cuda/gpt2_layers_cuda.h"
#include "util/errmsg.h"

struct lt_gpt2_dev {
    lt_gpt2_config cfg;
    int num_tensors;
    size_t memory_floats;      /* elements of the parameter layout, padding included (the host's memory_floats) */
    size_t *off;               /* [num_tensors] element offset of each tensor in that layout */
    size_t *span;              /* [num_tensors] elements from a tensor's offset to the next one's (padding included) */
    lt_gpt2_dev_param *params; /* [num_tensors] */

    cudaStream_t stream;
    lt_cunn *nn;

    int precision;     /* LT_GPT2_F32, LT_GPT2_BF16 or LT_GPT2_F16 */
    int pure_bf16;     /* the parameters live only in w16 */
    int checkpointing;
    int grad_per_block;
    int head_rows;     /* lt_gpt2_dev_set_head_rows: > 0, the lm head runs in chunks of at most this many rows */
    float loss_scale;
    float label_smoothing; /* lt_gpt2_dev_set_label_smoothing */
    float neftune_alpha;   /* lt_gpt2_dev_set_neftune */

    float *w32;        /* fp32 master weights (NULL when pure bf16) */
    uint16_t *w16;     /* the 16-bit compute copy (bf16 or fp16 bits, the compute's), or the bf16 parameters when
                          pure (NULL in fp32 compute) */
    float *grad;       /* gradients */
    size_t grad_floats;

    /* set_batch */
    char *arena;
    lt_gpt2_dev_layout lay;
    int max_B, max_T;
    int32_t *h_tokens; /* host: [max_B * max_T] the last inputs */
    int32_t *h_plan;   /* host: [3 max_B max_T + 1] the encoder's bucket list being built */
    int32_t *h_count;  /* host: [V] counting-sort scratch */

    int B, T;          /* of the last forward */
    int ngroups;       /* distinct tokens of the last forward's inputs */
    int have_targets;  /* the last forward ran the classifier: backward may run */
    int head_done;     /* chunked mode: that forward also did the head's backward (dln holds d ln_f) */
    int dropout_on;    /* lt_gpt2_dev_set_dropout */
    uint64_t dropout_seed;
    uint32_t dropout_stream;
    int drop_active;   /* the last forward applied dropout with drop_stream's masks (its backward takes them too) */
    uint32_t drop_stream;

    size_t allocated, peak; /* bytes cudaMalloc'd by the model now, and at most */
};

namespace {

/* The gradient norm: a grid-stride sum of squares per CTA in double, then one CTA adding the partial sums in
 * order; lt_cu_block_sum adds in a fixed tree, so the result does not depend on timing. */
constexpr int NORM_THREADS = 256;
#ifdef LT_CUDA_EMU
constexpr unsigned NORM_GRID = 16;
#else
constexpr unsigned NORM_GRID = LT_GPT2_DEV_NORM_PARTS;
#endif
static_assert(NORM_GRID <= LT_GPT2_DEV_NORM_PARTS, "one partial sum per CTA");

__device__ __forceinline__ double sumsq4(float4 v) {
    const double a = v.x, b = v.y, c = v.z, d = v.w;
    return (a * a + b * b) + (c * c + d * d);
}

/* Each thread's share in a fixed order: 16-byte loads, four of them in flight per iteration (with one 4-byte
 * load at a time the pass ran at a sixth of the memory's bandwidth on an H200), then the unaligned tail. */
__global__ void sumsq_partial_kernel(double *part, const float *g, size_t n) {
    __shared__ double red[32];
    double s = 0.0;
    const size_t nt = (size_t)gridDim.x * blockDim.x, t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const size_t n4 = ((uintptr_t)g & 15) ? 0 : n / 4;
    const float4 *g4 = reinterpret_cast<const float4 *>(g);
    size_t i = t;
    for (; i + 3 * nt < n4; i += 4 * nt) {
        const float4 a = g4[i], b = g4[i + nt], c = g4[i + 2 * nt], d = g4[i + 3 * nt];
        s += (sumsq4(a) + sumsq4(b)) + (sumsq4(c) + sumsq4(d));
    }
    for (; i < n4; i += nt) s += sumsq4(g4[i]);
    for (size_t k = 4 * n4 + t; k < n; k += nt) {
        const double x = g[k];
        s += x * x;
    }
    s = lt_cu_block_sum(s, red);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

__global__ void sumsq_final_kernel(double *out, const double *part, int parts) {
    __shared__ double red[32];
    double s = 0.0;
    for (int i = threadIdx.x; i < parts; i += blockDim.x) s += part[i];
    s = lt_cu_block_sum(s, red);
    if (threadIdx.x == 0) *out = s;
}


lt_status cuda_fail(char *err, size_t errlen, const char *what, cudaError_t e) {
    cudaGetLastError(); /* clear it: the message carries it */
    lt_errmsg(err, errlen, "device GPT-2: %s: %s", what, cudaGetErrorString(e));
    return e == cudaErrorMemoryAllocation ? LT_ERR_NOMEM : LT_ERR_DEVICE;
}

lt_status nn_fail(const lt_gpt2_dev *d, char *err, size_t errlen, const char *what) {
    lt_errmsg(err, errlen, "device GPT-2: %s: %s", what, lt_cunn_error(d->nn));
    return LT_ERR_DEVICE;
}

/* cudaMalloc, counted */
cudaError_t dev_alloc(lt_gpt2_dev *d, void **p, size_t bytes) {
    *p = nullptr;
    cudaError_t e = cudaMalloc(p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        *p = nullptr;
        return e;
    }
    d->allocated += bytes;
    if (d->allocated > d->peak) d->peak = d->allocated;
    return cudaSuccess;
}

void dev_free(lt_gpt2_dev *d, void *p, size_t bytes) {
    if (!p) return;
    cudaFree(p);
    d->allocated -= bytes;
}

size_t elem_bytes(const lt_gpt2_dev *d) { return d->precision == LT_GPT2_F32 ? 4 : 2; }
/* the storage type of the activations, their gradients and the compute copy of the weights */
lt_dtype dtype(const lt_gpt2_dev *d) {
    return d->precision == LT_GPT2_BF16 ? LT_DTYPE_BF16 : d->precision == LT_GPT2_F16 ? LT_DTYPE_F16 : LT_DTYPE_F32;
}
size_t w32_bytes(const lt_gpt2_dev *d) { return d->memory_floats * sizeof(float); }
size_t w16_bytes(const lt_gpt2_dev *d) { return d->memory_floats * sizeof(uint16_t); }

/* Tensor i as the compute reads it: the fp32 masters, or the 16-bit values. */
const void *W(const lt_gpt2_dev *d, int i) {
    if (d->precision != LT_GPT2_F32) return d->w16 + d->off[i];
    return d->w32 + d->off[i];
}
float *G(const lt_gpt2_dev *d, int i) { return d->params[i].grad; }
int blk(int l, int k) { return LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK * l + k; }
int lnf_index(const lt_gpt2_dev *d) { return LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK * d->cfg.n_layer; }

/* A sub-buffer of the activation allocation. */
void *buf(const lt_gpt2_dev *d, int id) { return d->arena + d->lay.offset[id]; }
float *fbuf(const lt_gpt2_dev *d, int id) { return reinterpret_cast<float *>(buf(d, id)); }
int32_t *ibuf(const lt_gpt2_dev *d, int id) { return reinterpret_cast<int32_t *>(buf(d, id)); }

/* The internals of one block: pointers into the activation buffer (the CPU model's block_acts). */
struct block_acts {
    void *ln1, *qkv, *atty, *res2, *ln2, *fch, *fchg, *res3;
    float *ln1_mean, *ln1_rstd, *ln2_mean, *ln2_rstd;
    float *att_lse; /* [B, NH, T]: the attention's log-sum-exp per query row */
};

block_acts block_at(const lt_gpt2_dev *d, int l) {
    const size_t S = elem_bytes(d), C = (size_t)d->cfg.n_embd, cap = (size_t)d->max_B * (size_t)d->max_T;
    /* with checkpointing every block uses slot 0 of its internals, statistics and residual2 */
    const size_t li = d->checkpointing ? 0 : (size_t)l, rows = li * cap;
    const size_t lse_slot = cap * (size_t)d->cfg.n_head; /* floats of a block's attention lse */
    auto at = [&](int id, size_t elems) { return static_cast<void *>(static_cast<char *>(buf(d, id)) + elems * S); };
    block_acts b;
    b.ln1 = at(LT_GPT2_DEV_LN1, rows * C);
    b.qkv = at(LT_GPT2_DEV_QKV, rows * 3 * C);
    b.atty = at(LT_GPT2_DEV_ATTY, rows * C);
    b.res2 = at(LT_GPT2_DEV_RES2, rows * C);
    b.ln2 = at(LT_GPT2_DEV_LN2, rows * C);
    b.fch = at(LT_GPT2_DEV_FCH, rows * 4 * C);
    b.fchg = at(LT_GPT2_DEV_FCHG, rows * 4 * C);
    b.res3 = at(LT_GPT2_DEV_RES3, (size_t)l * cap * C);
    b.ln1_mean = fbuf(d, LT_GPT2_DEV_LN1_MEAN) + rows;
    b.ln1_rstd = fbuf(d, LT_GPT2_DEV_LN1_RSTD) + rows;
    b.ln2_mean = fbuf(d, LT_GPT2_DEV_LN2_MEAN) + rows;
    b.ln2_rstd = fbuf(d, LT_GPT2_DEV_LN2_RSTD) + rows;
    b.att_lse = fbuf(d, LT_GPT2_DEV_ATT) + li * lse_slot;
    return b;
}

/* fp16: room for the rounded weight-gradient products of lt_cunn_*_backward_r in the activation-gradient
 * sub-buffers first .. last (adjacent in the layout, none of them in use during the call), *elems values of the
 * storage type; NULL in fp32 and bf16, whose weight gradients are accumulated in fp32 unrounded (llm.c's rule). */
void *wscratch(const lt_gpt2_dev *d, int first, int last, size_t *elems) {
    *elems = 0;
    if (d->precision != LT_GPT2_F16) return nullptr;
    *elems = (d->lay.offset[last] + d->lay.bytes[last] - d->lay.offset[first]) / elem_bytes(d);
    return buf(d, first);
}

/* The block input of block l: the embeddings, or block l-1's output. */
const void *block_input(const lt_gpt2_dev *d, int l) {
    if (l == 0) return buf(d, LT_GPT2_DEV_ENCODED);
    const size_t cap = (size_t)d->max_B * (size_t)d->max_T;
    return static_cast<char *>(buf(d, LT_GPT2_DEV_RES3)) + (size_t)(l - 1) * cap * (size_t)d->cfg.n_embd * elem_bytes(d);
}

/* Points every parameter's grad into the gradient buffer: one slot per tensor, or (per-block) the blocks' tensor
 * k sharing block 0's. */
void point_grads(lt_gpt2_dev *d) {
    const int first = LT_GPT2_BLOCK_FIRST, block1 = first + LT_GPT2_PER_BLOCK, after = lnf_index(d);
    size_t at = 0;
    for (int i = 0; i < d->num_tensors; i++) {
        if (d->grad_per_block && i >= block1 && i < after) {
            d->params[i].grad = d->params[first + (i - first) % LT_GPT2_PER_BLOCK].grad;
            continue;
        }
        d->params[i].grad = d->grad + at;
        at += d->span[i];
    }
}

size_t grad_floats_for(const lt_gpt2_dev *d, int per_block) {
    const int block1 = LT_GPT2_BLOCK_FIRST + (int)LT_GPT2_PER_BLOCK, after = lnf_index(d);
    size_t n = 0;
    for (int i = 0; i < d->num_tensors; i++)
        if (!(per_block && i >= block1 && i < after)) n += d->span[i];
    return n;
}

/* A zeroed gradient buffer (d->grad was freed or never allocated) for one gradient per parameter or, per_block,
 * per-block mode; d->grad, grad_floats and grad_per_block describe it once it is allocated. */
cudaError_t alloc_grads(lt_gpt2_dev *d, bool per_block) {
    const size_t n = grad_floats_for(d, per_block);
    cudaError_t e = dev_alloc(d, reinterpret_cast<void **>(&d->grad), n * sizeof(float));
    if (e != cudaSuccess) return e;
    d->grad_floats = n;
    d->grad_per_block = per_block;
    return cudaMemsetAsync(d->grad, 0, n * sizeof(float), d->stream);
}

void point_weights(lt_gpt2_dev *d) {
    for (int i = 0; i < d->num_tensors; i++) {
        d->params[i].data = d->w32 ? d->w32 + d->off[i] : nullptr;
        d->params[i].data16 = d->w16 ? d->w16 + d->off[i] : nullptr;
    }
}

void drop_batch(lt_gpt2_dev *d) {
    dev_free(d, d->arena, d->lay.total_bytes);
    d->arena = nullptr;
    memset(&d->lay, 0, sizeof d->lay);
    free(d->h_tokens), free(d->h_plan), free(d->h_count);
    d->h_tokens = d->h_plan = d->h_count = nullptr;
    d->max_B = d->max_T = 0;
    d->B = d->T = 0;
    d->have_targets = d->head_done = 0;
}

/* Converts the whole parameter layout: fp32 src into bf16 or fp16 dst (to = LT_DTYPE_BF16 or LT_DTYPE_F16, each
 * value rounded to nearest even), or bf16 src into fp32 dst (to = LT_DTYPE_F32, exact). Queued. */
lt_status convert(lt_gpt2_dev *d, void *dst, const void *src, lt_dtype to, char *err, size_t errlen) {
    const lt_dtype from = to == LT_DTYPE_F32 ? LT_DTYPE_BF16 : LT_DTYPE_F32;
    if (lt_cunn_convert(d->nn, to, dst, from, src, d->memory_floats))
        return nn_fail(d, err, errlen, "converting the weights");
    return LT_OK;
}

lt_status wait(const lt_gpt2_dev *d, char *err, size_t errlen, const char *what) {
    cudaError_t e = cudaStreamSynchronize(d->stream);
    if (e == cudaSuccess) e = cudaGetLastError();
    return e == cudaSuccess ? LT_OK : cuda_fail(err, errlen, what, e);
}

int same_config(const lt_gpt2_config *a, const lt_gpt2_config *b) {
    return a->vocab_size == b->vocab_size && a->n_positions == b->n_positions && a->n_embd == b->n_embd &&
           a->n_layer == b->n_layer && a->n_head == b->n_head && a->layer_norm_epsilon == b->layer_norm_epsilon;
}

/* Dropout site `site` with probability p in the last forward (lt_gpt2_set_dropout's masks: the CPU model's
 * drop_site); threshold 0 (off) unless that forward applied dropout. */
lt_dropout drop_site(const lt_gpt2_dev *d, double p, uint32_t site) {
    return lt_dropout_make(d->drop_active ? p : 0.0, d->dropout_seed, site, d->drop_stream);
}

/* Block l's forward from `residual` to its residual3 slice (the CPU model's block_forward). */
lt_status block_forward(lt_gpt2_dev *d, int l, const void *residual, int B, int T, char *err, size_t errlen) {
    lt_cunn *nn = d->nn;
    const lt_dtype dt = dtype(d);
    const int C = d->cfg.n_embd, NH = d->cfg.n_head;
    const size_t N = (size_t)B * (size_t)T, NC = N * (size_t)C;
    const double eps = d->cfg.layer_norm_epsilon;
    const block_acts b = block_at(d, l);
    const lt_dropout datt = drop_site(d, d->cfg.attn_pdrop, LT_GPT2_DROP_ATTN(l)),
                     dout1 = drop_site(d, d->cfg.resid_pdrop, LT_GPT2_DROP_ATTN_OUT(l)),
                     dout2 = drop_site(d, d->cfg.resid_pdrop, LT_GPT2_DROP_MLP_OUT(l));
    if (lt_cunn_layernorm_forward(nn, dt, b.ln1, b.ln1_mean, b.ln1_rstd, residual, W(d, blk(l, LT_GPT2_LN1_W)),
                                  W(d, blk(l, LT_GPT2_LN1_B)), N, C, eps) ||
        lt_cunn_matmul_forward(nn, dt, b.qkv, b.ln1, W(d, blk(l, LT_GPT2_QKV_W)), W(d, blk(l, LT_GPT2_QKV_B)), N, C,
                               3 * C) ||
        lt_cunn_attention_forward(nn, dt, b.atty, b.att_lse, b.qkv, B, T, C, NH, &datt) ||
        /* c_proj writes into residual2 (then its dropout), then the block input is added in place */
        lt_cunn_matmul_forward(nn, dt, b.res2, b.atty, W(d, blk(l, LT_GPT2_ATTPROJ_W)),
                               W(d, blk(l, LT_GPT2_ATTPROJ_B)), N, C, C) ||
        lt_cunn_dropout(nn, dt, b.res2, b.res2, NC, &dout1) ||
        lt_cunn_residual_forward(nn, dt, b.res2, b.res2, residual, NC) ||
        lt_cunn_layernorm_forward(nn, dt, b.ln2, b.ln2_mean, b.ln2_rstd, b.res2, W(d, blk(l, LT_GPT2_LN2_W)),
                                  W(d, blk(l, LT_GPT2_LN2_B)), N, C, eps) ||
        lt_cunn_matmul_forward(nn, dt, b.fch, b.ln2, W(d, blk(l, LT_GPT2_FC_W)), W(d, blk(l, LT_GPT2_FC_B)), N, C,
                               4 * C) ||
        lt_cunn_gelu_forward(nn, dt, b.fchg, b.fch, 4 * NC) ||
        lt_cunn_matmul_forward(nn, dt, b.res3, b.fchg, W(d, blk(l, LT_GPT2_FCPROJ_W)),
                               W(d, blk(l, LT_GPT2_FCPROJ_B)), N, 4 * C, C) ||
        lt_cunn_dropout(nn, dt, b.res3, b.res3, NC, &dout2) ||
        lt_cunn_residual_forward(nn, dt, b.res3, b.res3, b.res2, NC)) {
        char what[48];
        snprintf(what, sizeof what, "forward of block %d", l);
        return nn_fail(d, err, errlen, what);
    }
    return LT_OK;
}

} // namespace

extern "C" {

lt_status lt_gpt2_dev_create(const lt_gpt2 *host, void *stream, lt_gpt2_dev **out, char *err, size_t errlen) {
    return lt_gpt2_dev_create_as(host, stream, LT_GPT2_F32, 0, 0, out, err, errlen);
}

lt_status lt_gpt2_dev_create_as(const lt_gpt2 *host, void *stream, lt_gpt2_precision p, int pure_bf16,
                                int grad_per_block, lt_gpt2_dev **out, char *err, size_t errlen) {
    *out = nullptr;
    if (lt_gpt2_dev_check_precision(p, pure_bf16, err, errlen)) return LT_ERR_ARG;
    const int n = host->num_tensors;
    const void *base = host->param_memory ? (const void *)host->param_memory : (const void *)host->param16_memory;
    if (!base || n != LT_GPT2_PER_BLOCK * host->cfg.n_layer + 4) {
        lt_errmsg(err, errlen, "device GPT-2: the host model has no parameters");
        return LT_ERR_ARG;
    }
    lt_gpt2_dev *d = static_cast<lt_gpt2_dev *>(calloc(1, sizeof *d));
    if (!d) {
        lt_errmsg(err, errlen, "device GPT-2: out of host memory");
        return LT_ERR_NOMEM;
    }
    d->cfg = host->cfg;
    d->num_tensors = n;
    d->memory_floats = host->memory_floats;
    d->stream = static_cast<cudaStream_t>(stream);
    d->precision = p;
    d->pure_bf16 = pure_bf16 != 0;
    d->loss_scale = 1.0f;
    d->off = static_cast<size_t *>(calloc((size_t)n, sizeof *d->off));
    d->span = static_cast<size_t *>(calloc((size_t)n, sizeof *d->span));
    d->params = static_cast<lt_gpt2_dev_param *>(calloc((size_t)n, sizeof *d->params));
    lt_status st = LT_ERR_NOMEM;
    if (!d->off || !d->span || !d->params) {
        lt_errmsg(err, errlen, "device GPT-2: out of host memory");
        goto fail;
    }
    /* the host layout, read off the host's pointers */
    for (int i = 0; i < n; i++) {
        const lt_gpt2_param *p = &host->params[i];
        size_t o = p->data ? (size_t)(p->data - host->param_memory) : (size_t)(p->data16 - host->param16_memory);
        d->off[i] = o;
        d->params[i].numel = p->numel;
        if ((i > 0 && o < d->off[i - 1] + host->params[i - 1].numel) || o + p->numel > d->memory_floats) {
            lt_errmsg(err, errlen, "device GPT-2: the host model's parameter layout is not the expected one");
            st = LT_ERR_ARG;
            goto fail;
        }
    }
    for (int i = 0; i < n; i++) d->span[i] = (i + 1 < n ? d->off[i + 1] : d->memory_floats) - d->off[i];
    {
        char nerr[512];
        d->nn = lt_cunn_create(stream, nerr, sizeof nerr);
        if (!d->nn) {
            lt_errmsg(err, errlen, "device GPT-2: %s", nerr);
            st = LT_ERR_DEVICE;
            goto fail;
        }
    }
    {
        /* only the buffers this configuration keeps: no fp32 copy of pure bf16 parameters, no whole-model
         * gradient in per-block mode, so the peak is the planned steady state from the start */
        cudaError_t e = d->pure_bf16 ? cudaSuccess : dev_alloc(d, reinterpret_cast<void **>(&d->w32), w32_bytes(d));
        if (e == cudaSuccess && p != LT_GPT2_F32) e = dev_alloc(d, reinterpret_cast<void **>(&d->w16), w16_bytes(d));
        if (e == cudaSuccess) e = alloc_grads(d, grad_per_block != 0);
        if (e != cudaSuccess) {
            st = cuda_fail(err, errlen, "allocating the weights and gradients", e);
            goto fail;
        }
    }
    point_weights(d);
    point_grads(d);
    if ((st = lt_gpt2_dev_upload(d, host, err, errlen)) != LT_OK) goto fail;
    *out = d;
    return LT_OK;
fail:
    lt_gpt2_dev_free(d);
    return st;
}

void lt_gpt2_dev_free(lt_gpt2_dev *d) {
    if (!d) return;
    if (d->nn) cudaStreamSynchronize(d->stream);
    drop_batch(d);
    dev_free(d, d->w32, w32_bytes(d));
    dev_free(d, d->w16, w16_bytes(d));
    dev_free(d, d->grad, d->grad_floats * sizeof(float));
    lt_cunn_destroy(d->nn);
    free(d->off), free(d->span), free(d->params);
    free(d);
}

lt_status lt_gpt2_dev_upload(lt_gpt2_dev *d, const lt_gpt2 *host, char *err, size_t errlen) {
    if (!same_config(&d->cfg, &host->cfg) || host->memory_floats != d->memory_floats) {
        lt_errmsg(err, errlen, "device GPT-2: upload from a model of another shape");
        return LT_ERR_ARG;
    }
    const size_t n = d->memory_floats;
    void *dst = d->pure_bf16 ? static_cast<void *>(d->w16) : static_cast<void *>(d->w32);
    const size_t bytes = n * (d->pure_bf16 ? sizeof(uint16_t) : sizeof(float));
    const int host16 = host->param_memory == nullptr;
    void *staged = nullptr;
    const void *src = host16 ? static_cast<const void *>(host->param16_memory)
                             : static_cast<const void *>(host->param_memory);
    if (host16 != d->pure_bf16) { /* convert on the host, once */
        staged = malloc(bytes);
        if (!staged) {
            lt_errmsg(err, errlen, "device GPT-2: out of host memory staging the weights");
            return LT_ERR_NOMEM;
        }
        for (size_t i = 0; i < n; i++) {
            if (host16) static_cast<float *>(staged)[i] = lt_bf16_to_f32(host->param16_memory[i]);
            else static_cast<uint16_t *>(staged)[i] = lt_f32_to_bf16(host->param_memory[i]);
        }
        src = staged;
    }
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, d->stream);
    lt_status st = e == cudaSuccess ? wait(d, err, errlen, "uploading the weights")
                                    : cuda_fail(err, errlen, "uploading the weights", e);
    free(staged);
    if (st) return st;
    if ((st = lt_gpt2_dev_refresh_bf16(d, err, errlen))) return st;
    return wait(d, err, errlen, "uploading the weights");
}

lt_status lt_gpt2_dev_download(const lt_gpt2_dev *d, lt_gpt2 *host, char *err, size_t errlen) {
    if (!same_config(&d->cfg, &host->cfg) || host->memory_floats != d->memory_floats) {
        lt_errmsg(err, errlen, "device GPT-2: download into a model of another shape");
        return LT_ERR_ARG;
    }
    const size_t n = d->memory_floats;
    const void *src = d->pure_bf16 ? static_cast<const void *>(d->w16) : static_cast<const void *>(d->w32);
    const size_t bytes = n * (d->pure_bf16 ? sizeof(uint16_t) : sizeof(float));
    const int host16 = host->param_memory == nullptr;
    void *dst = host16 ? static_cast<void *>(host->param16_memory) : static_cast<void *>(host->param_memory);
    void *staged = nullptr;
    if (host16 != d->pure_bf16 && !(staged = malloc(bytes))) {
        lt_errmsg(err, errlen, "device GPT-2: out of host memory staging the weights");
        return LT_ERR_NOMEM;
    }
    lt_status st = wait(d, err, errlen, "before downloading the weights");
    cudaError_t e = cudaSuccess;
    if (st == LT_OK) e = cudaMemcpyAsync(staged ? staged : dst, src, bytes, cudaMemcpyDeviceToHost, d->stream);
    if (st == LT_OK)
        st = e == cudaSuccess ? wait(d, err, errlen, "downloading the weights")
                              : cuda_fail(err, errlen, "downloading the weights", e);
    if (st == LT_OK && staged) {
        for (size_t i = 0; i < n; i++) {
            if (host16) host->param16_memory[i] = lt_f32_to_bf16(static_cast<const float *>(staged)[i]);
            else host->param_memory[i] = lt_bf16_to_f32(static_cast<const uint16_t *>(staged)[i]);
        }
    }
    free(staged);
    return st;
}

lt_status lt_gpt2_dev_download_grads(const lt_gpt2_dev *d, lt_gpt2 *host, char *err, size_t errlen) {
    if (!same_config(&d->cfg, &host->cfg)) {
        lt_errmsg(err, errlen, "device GPT-2: gradients into a model of another shape");
        return LT_ERR_ARG;
    }
    lt_status st = wait(d, err, errlen, "before downloading the gradients");
    for (int i = 0; i < d->num_tensors && st == LT_OK; i++) {
        cudaError_t e = cudaMemcpyAsync(host->params[i].grad, d->params[i].grad, d->params[i].numel * sizeof(float),
                                        cudaMemcpyDeviceToHost, d->stream);
        if (e != cudaSuccess) st = cuda_fail(err, errlen, "downloading the gradients", e);
    }
    return st ? st : wait(d, err, errlen, "downloading the gradients");
}

lt_status lt_gpt2_dev_set_batch(lt_gpt2_dev *d, int B, int T, char *err, size_t errlen) {
    lt_gpt2_dev_layout lay;
    lt_status st = lt_gpt2_dev_layout_of(&d->cfg, B, T, d->checkpointing, (lt_gpt2_precision)d->precision,
                                         d->head_rows, &lay, err, errlen);
    if (st) return st;
    const size_t BT = (size_t)B * (size_t)T;
    /* the plan's copy of the column-sum scratch formula must cover what the kernels use */
    if (lay.bytes[LT_GPT2_DEV_COLSUM] < lt_cunn_colsum_scratch_floats(BT, 4 * d->cfg.n_embd) * sizeof(float)) {
        lt_errmsg(err, errlen, "device GPT-2: internal error: the layout's column-sum scratch is too small");
        return LT_ERR_STATE;
    }
    drop_batch(d); /* before allocating the new one: the old never coexists with it */
    d->h_tokens = static_cast<int32_t *>(malloc(BT * sizeof(int32_t)));
    d->h_plan = static_cast<int32_t *>(malloc(lt_cunn_encoder_plan_ints(BT) * sizeof(int32_t)));
    d->h_count = static_cast<int32_t *>(malloc((size_t)d->cfg.vocab_size * sizeof(int32_t)));
    if (!d->h_tokens || !d->h_plan || !d->h_count) {
        drop_batch(d);
        lt_errmsg(err, errlen, "device GPT-2: out of host memory for the token buffers");
        return LT_ERR_NOMEM;
    }
    cudaError_t e = dev_alloc(d, reinterpret_cast<void **>(&d->arena), lay.total_bytes);
    if (e != cudaSuccess) {
        drop_batch(d);
        char what[96];
        snprintf(what, sizeof what, "activations of B %d x T %d (%zu MiB)", B, T, lay.total_bytes >> 20);
        return cuda_fail(err, errlen, what, e);
    }
    d->lay = lay;
    d->max_B = B, d->max_T = T;
    return LT_OK;
}

void lt_gpt2_dev_set_checkpointing(lt_gpt2_dev *d, int on) {
    cudaStreamSynchronize(d->stream); /* queued kernels may still use the buffer */
    d->checkpointing = on != 0;
    drop_batch(d);
}

void lt_gpt2_dev_set_label_smoothing(lt_gpt2_dev *d, float eps) { d->label_smoothing = eps; }

void lt_gpt2_dev_set_neftune(lt_gpt2_dev *d, float alpha) { d->neftune_alpha = alpha; }

void lt_gpt2_dev_set_head_rows(lt_gpt2_dev *d, int rows) {
    cudaStreamSynchronize(d->stream); /* queued kernels may still use the buffer */
    d->head_rows = rows > 0 ? rows : 0;
    drop_batch(d);
}

lt_status lt_gpt2_dev_set_tf32(lt_gpt2_dev *d, int on, char *err, size_t errlen) {
    if (on) {
        int dev = 0;
        cudaDeviceProp prop;
        cudaError_t e = cudaGetDevice(&dev);
        if (e == cudaSuccess) e = cudaGetDeviceProperties(&prop, dev);
        if (e != cudaSuccess) return cuda_fail(err, errlen, "reading the GPU's compute capability for TF32", e);
        if (prop.major < 8) {
            lt_errmsg(err, errlen,
                      "device GPT-2: TF32 needs a GPU of compute capability 8.0 (Ampere) or later; device %d (%s) is "
                      "%d.%d: leave TF32 off (fp32 matrix multiplies)",
                      dev, prop.name, prop.major, prop.minor);
            return LT_ERR_DEVICE;
        }
    }
    lt_cunn_gemm_tf32(d->nn, on);
    return LT_OK;
}

lt_status lt_gpt2_dev_set_precision(lt_gpt2_dev *d, lt_gpt2_precision p, int pure_bf16, char *err, size_t errlen) {
    if (lt_gpt2_dev_check_precision(p, pure_bf16, err, errlen)) return LT_ERR_ARG;
    lt_status st = wait(d, err, errlen, "before changing the precision");
    if (st) return st;
    pure_bf16 = pure_bf16 != 0;
    cudaError_t e = cudaSuccess;
    if (pure_bf16 && !d->pure_bf16) { /* fp32 masters -> bf16 parameters */
        if (!d->w16) e = dev_alloc(d, reinterpret_cast<void **>(&d->w16), w16_bytes(d));
        if (e != cudaSuccess) return cuda_fail(err, errlen, "allocating bf16 parameters", e);
        if ((st = convert(d, d->w16, d->w32, LT_DTYPE_BF16, err, errlen)) || (st = wait(d, err, errlen, "converting")))
            return st;
        dev_free(d, d->w32, w32_bytes(d));
        d->w32 = nullptr;
    } else if (!pure_bf16 && d->pure_bf16) { /* bf16 parameters -> fp32 masters (exact) */
        e = dev_alloc(d, reinterpret_cast<void **>(&d->w32), w32_bytes(d));
        if (e != cudaSuccess) return cuda_fail(err, errlen, "allocating fp32 parameters", e);
        if ((st = convert(d, d->w32, d->w16, LT_DTYPE_F32, err, errlen)) || (st = wait(d, err, errlen, "converting")))
            return st;
    }
    d->pure_bf16 = pure_bf16;
    /* the 16-bit compute copy exists exactly in bf16 or fp16 compute with fp32 masters (or holds the pure
     * parameters); between bf16 and fp16 the buffer stays and the refresh below refills it */
    if (p != LT_GPT2_F32 && !d->w16) {
        e = dev_alloc(d, reinterpret_cast<void **>(&d->w16), w16_bytes(d));
        if (e != cudaSuccess) return cuda_fail(err, errlen, "allocating the 16-bit weights", e);
    } else if (p == LT_GPT2_F32 && d->w16) {
        dev_free(d, d->w16, w16_bytes(d));
        d->w16 = nullptr;
    }
    d->precision = p;
    point_weights(d);
    drop_batch(d);
    if ((st = lt_gpt2_dev_refresh_bf16(d, err, errlen))) return st;
    return wait(d, err, errlen, "changing the precision");
}

lt_status lt_gpt2_dev_set_grad_per_block(lt_gpt2_dev *d, int on, char *err, size_t errlen) {
    lt_status st = wait(d, err, errlen, "before reallocating the gradients");
    if (st) return st;
    dev_free(d, d->grad, d->grad_floats * sizeof(float));
    d->grad = nullptr;
    d->grad_floats = 0;
    cudaError_t e = alloc_grads(d, on != 0);
    if (e != cudaSuccess) {
        for (int i = 0; i < d->num_tensors; i++) d->params[i].grad = nullptr;
        return cuda_fail(err, errlen, "allocating the gradients", e);
    }
    point_grads(d);
    return LT_OK;
}

void lt_gpt2_dev_set_loss_scale(lt_gpt2_dev *d, float scale) { d->loss_scale = scale; }

void lt_gpt2_dev_set_dropout(lt_gpt2_dev *d, int on, uint64_t seed, uint32_t stream) {
    d->dropout_on = on != 0;
    d->dropout_seed = seed;
    d->dropout_stream = stream;
}

lt_status lt_gpt2_dev_refresh_bf16(lt_gpt2_dev *d, char *err, size_t errlen) {
    if (d->precision == LT_GPT2_F32 || d->pure_bf16) return LT_OK;
    return convert(d, d->w16, d->w32, dtype(d), err, errlen);
}

lt_status lt_gpt2_dev_zero_grad(lt_gpt2_dev *d, char *err, size_t errlen) {
    cudaError_t e = cudaMemsetAsync(d->grad, 0, d->grad_floats * sizeof(float), d->stream);
    return e == cudaSuccess ? LT_OK : cuda_fail(err, errlen, "zeroing the gradients", e);
}

/* The head's backward on rows r0 .. r0+n of the last forward, whose logits buffer holds their d loss / d logits:
 * d ln_f into dln's rows, and wte's gradient: added into it (fp32 and bf16 compute, and fp16 in one chunk: rounded
 * once through wscratch in the free dbig), or, fp16 in chunks, into the fp32 head sum (forward adds it, rounded). */
lt_status head_backward(lt_gpt2_dev *d, size_t r0, size_t n, bool sum, char *err, size_t errlen) {
    const int C = d->cfg.n_embd, V = d->cfg.vocab_size;
    const lt_dtype dt = dtype(d);
    const size_t S = elem_bytes(d), rc = r0 * (size_t)C * S;
    size_t ws_big = 0;
    void *w_big = sum ? nullptr : wscratch(d, LT_GPT2_DEV_DBIG, LT_GPT2_DEV_DBIG, &ws_big);
    float *dwte = sum ? fbuf(d, LT_GPT2_DEV_HEADSUM) : G(d, LT_GPT2_WTE);
    /* dbig is free until the blocks' backward: the lm head sums its split dinp product there (16-bit, V not a
     * multiple of 64), before w_big (the same memory, fp16) holds its weight gradient */
    if (lt_cunn_lmhead_backward_r(d->nn, dt, static_cast<char *>(buf(d, LT_GPT2_DEV_DLN)) + rc, dwte,
                                  buf(d, LT_GPT2_DEV_LOGITS), static_cast<const char *>(buf(d, LT_GPT2_DEV_LNF)) + rc,
                                  W(d, LT_GPT2_WTE), n, C, V, d->lay.ldv, w_big, ws_big,
                                  fbuf(d, LT_GPT2_DEV_DBIG), d->lay.bytes[LT_GPT2_DEV_DBIG] / sizeof(float)))
        return nn_fail(d, err, errlen, "lm head backward");
    return LT_OK;
}

/* grad: a training forward (targets given; a backward follows, and in chunked mode the head's backward runs
 * here); drop: apply the dropout set_dropout turned on; hits (with targets, not grad): the positions whose top-1
 * prediction is the target */
lt_status forward(lt_gpt2_dev *d, const int32_t *inputs, const int32_t *targets, int B, int T, bool grad, bool drop,
                  float *loss, long *hits, char *err, size_t errlen) {
    if (loss) *loss = NAN;
    if (hits) *hits = 0;
    if (!d->arena) {
        lt_errmsg(err, errlen, "device GPT-2: forward: no activation buffer: call lt_gpt2_dev_set_batch first");
        return LT_ERR_STATE;
    }
    if (B < 1 || T < 1 || B > d->max_B || T > d->max_T) {
        lt_errmsg(err, errlen, "device GPT-2: forward: B %d, T %d exceed the capacity set by set_batch (B %d, T %d)", B,
            T, d->max_B, d->max_T);
        return LT_ERR_ARG;
    }
    const lt_gpt2_config *c = &d->cfg;
    const int L = c->n_layer, C = c->n_embd, V = c->vocab_size, ldv = d->lay.ldv;
    const size_t N = (size_t)B * (size_t)T;
    if (!inputs) {
        lt_errmsg(err, errlen, "device GPT-2: forward: no inputs given");
        return LT_ERR_ARG;
    }
    for (int k = 0; k < 2; k++) {
        const int32_t *tok = k ? targets : inputs;
        for (size_t i = 0; tok && i < N; i++)
            if (tok[i] < 0 || tok[i] >= V) {
                lt_errmsg(err, errlen, "device GPT-2: forward: %s[%zu] = %d is not a token id (0 to %d)",
                    k ? "targets" : "inputs", i, (int)tok[i], V - 1);
                return LT_ERR_ARG;
            }
    }
    /* the lm head's rows at a time: all N, or chunks of at most the buffer's rows */
    const size_t R = lt_gpt2_head_chunk(N, (int)d->lay.head_chunk);
    if (!targets && R < N) {
        lt_errmsg(err, errlen,
                  "device GPT-2: forward: the logits are kept in chunks of %zu rows (lt_gpt2_dev_set_head_rows): a "
                  "forward without targets needs all %zu rows at once (a smaller batch, or set_head_rows(0))",
                  d->lay.head_chunk, N);
        return LT_ERR_STATE;
    }
    d->have_targets = d->head_done = 0;
    d->B = B, d->T = T;
    /* dropout while it is on, in training forwards (never eval_loss); the backward and recomputations take this
       forward's masks */
    d->drop_active = drop && d->dropout_on;
    d->drop_stream = d->dropout_stream;
    /* the inputs, and the bucket list of their rows that the embedding gradient needs, go over with the batch */
    memcpy(d->h_tokens, inputs, N * sizeof *inputs);
    d->ngroups = lt_cunn_encoder_plan(d->h_plan, d->h_count, inputs, N, V);
    cudaError_t e = cudaMemcpyAsync(ibuf(d, LT_GPT2_DEV_INPUTS), d->h_tokens, N * sizeof(int32_t),
                                    cudaMemcpyHostToDevice, d->stream);
    if (e == cudaSuccess)
        e = cudaMemcpyAsync(ibuf(d, LT_GPT2_DEV_PLAN), d->h_plan, lt_cunn_encoder_plan_ints(N) * sizeof(int32_t),
                            cudaMemcpyHostToDevice, d->stream);
    if (e == cudaSuccess && targets)
        e = cudaMemcpyAsync(ibuf(d, LT_GPT2_DEV_TARGETS), targets, N * sizeof(int32_t), cudaMemcpyHostToDevice,
                            d->stream);
    if (e != cudaSuccess) return cuda_fail(err, errlen, "forward: copying the tokens", e);

    lt_cunn *nn = d->nn;
    const lt_dtype dt = dtype(d);
    const int lnf = lnf_index(d);
    void *encoded = buf(d, LT_GPT2_DEV_ENCODED), *lnf_out = buf(d, LT_GPT2_DEV_LNF), *logits = buf(d, LT_GPT2_DEV_LOGITS);
    const lt_dropout demb = drop_site(d, c->embd_pdrop, LT_GPT2_DROP_EMBD);
    /* NEFTune's noise where this forward applies dropout (the CPU model's rule, its values) */
    const lt_noise nz = lt_noise_make(d->drop_active ? lt_gpt2_neftune_magnitude(d->neftune_alpha, T, C) : 0.0f,
                                      d->dropout_seed, LT_GPT2_NOISE_NEFTUNE, d->drop_stream);
    if (lt_cunn_encoder_forward(nn, dt, encoded, ibuf(d, LT_GPT2_DEV_INPUTS), W(d, LT_GPT2_WTE), W(d, LT_GPT2_WPE), B,
                                T, C, &nz) ||
        lt_cunn_dropout(nn, dt, encoded, encoded, N * (size_t)C, &demb))
        return nn_fail(d, err, errlen, "forward: embeddings");
    lt_status st;
    for (int l = 0; l < L; l++)
        if ((st = block_forward(d, l, block_input(d, l), B, T, err, errlen))) return st;
    if (lt_cunn_layernorm_forward(nn, dt, lnf_out, fbuf(d, LT_GPT2_DEV_LNF_MEAN), fbuf(d, LT_GPT2_DEV_LNF_RSTD),
                                  block_input(d, L), W(d, lnf), W(d, lnf + 1), N, C, c->layer_norm_epsilon))
        return nn_fail(d, err, errlen, "forward: ln_f");
    /* the lm head chunk by chunk (whole mode: one chunk of all rows, whose backward lt_gpt2_dev_backward does):
     * the logits, then with targets their losses, in training the fused classifier overwriting them with their
     * gradient (the CPU model's crossentropy_backward scale: loss_scale / N), and in chunked training the head's
     * backward at once */
    const bool fused = grad && d->head_rows > 0, sum16 = fused && R < N && dt == LT_DTYPE_F16;
    if (sum16 && d->lay.bytes[LT_GPT2_DEV_HEADSUM] < (size_t)V * (size_t)C * sizeof(float)) {
        lt_errmsg(err, errlen, "device GPT-2: internal error: fp16 in chunks without the head's gradient sum");
        return LT_ERR_STATE;
    }
    if (sum16) {
        e = cudaMemsetAsync(buf(d, LT_GPT2_DEV_HEADSUM), 0, (size_t)V * (size_t)C * sizeof(float), d->stream);
        if (e != cudaSuccess) return cuda_fail(err, errlen, "forward: zeroing the head's gradient sum", e);
    }
    /* the loss sum's buffer: [0] the sum (double), [1] the top-1 hits (an integer count) */
    double *loss_sum = reinterpret_cast<double *>(buf(d, LT_GPT2_DEV_LOSS_SUM));
    unsigned long long *top1 = reinterpret_cast<unsigned long long *>(loss_sum + 1);
    const bool count = targets && hits && !grad;
    if (count && (e = cudaMemsetAsync(top1, 0, sizeof *top1, d->stream)) != cudaSuccess)
        return cuda_fail(err, errlen, "forward: zeroing the top-1 count", e);
    const size_t S = elem_bytes(d);
    for (size_t r0 = 0; r0 < N; r0 += R) {
        const size_t n = N - r0 < R ? N - r0 : R;
        if (lt_cunn_lmhead_forward(nn, dt, logits, static_cast<const char *>(lnf_out) + r0 * (size_t)C * S,
                                   W(d, LT_GPT2_WTE), n, C, V, ldv))
            return nn_fail(d, err, errlen, "forward: lm head");
        if (!targets) continue;
        float *losses = fbuf(d, LT_GPT2_DEV_LOSSES) + r0, *lse = fbuf(d, LT_GPT2_DEV_LSE) + r0;
        const int32_t *tg = ibuf(d, LT_GPT2_DEV_TARGETS) + r0;
        if (grad ? lt_cunn_classifier(nn, dt, logits, losses, lse, tg, n, V, ldv,
                                      (float)((double)d->loss_scale / (double)N), d->label_smoothing, nullptr)
                 : lt_cunn_crossentropy_forward(nn, dt, losses, lse, logits, tg, n, V, ldv, d->label_smoothing,
                                                nullptr))
            return nn_fail(d, err, errlen, "forward: classifier");
        if (count && lt_cunn_top1_hits(nn, dt, top1, logits, tg, n, V, ldv))
            return nn_fail(d, err, errlen, "forward: top-1 predictions");
        if (fused && (st = head_backward(d, r0, n, sum16, err, errlen))) return st;
    }
    if (sum16 && lt_cunn_add_rounded(nn, dt, G(d, LT_GPT2_WTE), fbuf(d, LT_GPT2_DEV_HEADSUM), (size_t)V * C))
        return nn_fail(d, err, errlen, "forward: the head's gradient sum");
    if (!targets) return LT_OK;
    /* summed over all positions in one fixed order, whatever the chunks */
    if (lt_cunn_loss_sum(nn, loss_sum, fbuf(d, LT_GPT2_DEV_LOSSES), N))
        return nn_fail(d, err, errlen, "forward: loss sum");
    double sum = 0.0;
    unsigned long long nhit = 0;
    e = cudaMemcpyAsync(&sum, loss_sum, sizeof sum, cudaMemcpyDeviceToHost, d->stream);
    if (e == cudaSuccess && count) e = cudaMemcpyAsync(&nhit, top1, sizeof nhit, cudaMemcpyDeviceToHost, d->stream);
    if (e != cudaSuccess) return cuda_fail(err, errlen, "forward: reading the loss", e);
    if ((st = wait(d, err, errlen, "forward"))) return st;
    if (loss) *loss = (float)(sum / (double)N);
    if (count) *hits = (long)nhit;
    d->have_targets = grad;
    d->head_done = fused;
    return LT_OK;
}

lt_status lt_gpt2_dev_forward(lt_gpt2_dev *d, const int32_t *inputs, const int32_t *targets, int B, int T,
                              float *loss, char *err, size_t errlen) {
    return forward(d, inputs, targets, B, T, targets != nullptr, true, loss, nullptr, err, errlen);
}

lt_status lt_gpt2_dev_eval(lt_gpt2_dev *d, const int32_t *inputs, const int32_t *targets, int B, int T, float *loss,
                           long *correct, char *err, size_t errlen) {
    if (loss) *loss = NAN;
    if (correct) *correct = 0;
    if (!targets) {
        lt_errmsg(err, errlen, "device GPT-2: eval_loss: no targets given");
        return LT_ERR_ARG;
    }
    return forward(d, inputs, targets, B, T, false, false, loss, correct, err, errlen);
}

lt_status lt_gpt2_dev_eval_loss(lt_gpt2_dev *d, const int32_t *inputs, const int32_t *targets, int B, int T,
                                float *loss, char *err, size_t errlen) {
    return lt_gpt2_dev_eval(d, inputs, targets, B, T, loss, nullptr, err, errlen);
}

lt_status lt_gpt2_dev_backward(lt_gpt2_dev *d, char *err, size_t errlen) {
    return lt_gpt2_dev_backward_cb(d, nullptr, nullptr, err, errlen);
}

lt_status lt_gpt2_dev_backward_cb(lt_gpt2_dev *d, lt_gpt2_grad_ready ready, void *ctx, char *err, size_t errlen) {
    if (!d->have_targets) {
        lt_errmsg(err, errlen, "device GPT-2: backward needs a forward with targets since the last backward");
        return LT_ERR_STATE;
    }
    /* the logits buffer holds their gradient, consumed below: a second backward would be wrong */
    d->have_targets = 0;
    const lt_gpt2_config *c = &d->cfg;
    const int L = c->n_layer, C = c->n_embd, NH = c->n_head, B = d->B, T = d->T;
    const size_t N = (size_t)B * (size_t)T, NC = N * (size_t)C;
    lt_cunn *nn = d->nn;
    const lt_dtype dt = dtype(d);
    const int lnf = lnf_index(d);
    void *dres = buf(d, LT_GPT2_DEV_DRES), *dln = buf(d, LT_GPT2_DEV_DLN), *dbig = buf(d, LT_GPT2_DEV_DBIG);
    void *dqkv = buf(d, LT_GPT2_DEV_DQKV), *datty = buf(d, LT_GPT2_DEV_DATTY);
    float *drow = fbuf(d, LT_GPT2_DEV_DROW), *cs = fbuf(d, LT_GPT2_DEV_COLSUM);
    lt_status st;
    /* fp16's weight-gradient rounding room (wscratch): buffers free during each multiply's backward */
    size_t ws_big, ws_qkv, ws_wide;
    void *w_big = wscratch(d, LT_GPT2_DEV_DBIG, LT_GPT2_DEV_DBIG, &ws_big);
    void *w_qkv = wscratch(d, LT_GPT2_DEV_DQKV, LT_GPT2_DEV_DQKV, &ws_qkv);
    void *w_wide = wscratch(d, LT_GPT2_DEV_DQKV, LT_GPT2_DEV_DATTY, &ws_wide); /* >= 4C values even for B T = 1 */

    /* whole mode: the head's backward over all rows (chunked mode did it in the forward; dln holds d ln_f) */
    if (!d->head_done && (st = head_backward(d, 0, N, false, err, errlen))) return st;
    d->head_done = 0;
    /* layernorm_backward adds into its dinp, and this is the first write to dres */
    cudaError_t e = cudaMemsetAsync(dres, 0, NC * elem_bytes(d), d->stream);
    if (e != cudaSuccess) return cuda_fail(err, errlen, "backward", e);
    if (lt_cunn_layernorm_backward(nn, dt, dres, G(d, lnf), G(d, lnf + 1), dln, block_input(d, L), W(d, lnf),
                                   fbuf(d, LT_GPT2_DEV_LNF_MEAN), fbuf(d, LT_GPT2_DEV_LNF_RSTD), N, C, cs))
        return nn_fail(d, err, errlen, "backward: ln_f");
    if (ready && (st = ready(ctx, lnf, 2)) != LT_OK) return st;
    for (int l = L - 1; l >= 0; l--) {
        if (d->grad_per_block) { /* the previous block's gradients were consumed by `ready` */
            const int first = LT_GPT2_BLOCK_FIRST;
            size_t floats = 0;
            for (int k = 0; k < LT_GPT2_PER_BLOCK; k++) floats += d->span[first + k];
            e = cudaMemsetAsync(d->params[first].grad, 0, floats * sizeof(float), d->stream);
            if (e != cudaSuccess) return cuda_fail(err, errlen, "backward: zeroing the block gradients", e);
        }
        const void *residual = block_input(d, l);
        /* checkpointing: the block's internals were overwritten; the same kernels restore them exactly */
        if (d->checkpointing && (st = block_forward(d, l, residual, B, T, err, errlen))) return st;
        const block_acts b = block_at(d, l);
        const lt_dropout datt = drop_site(d, c->attn_pdrop, LT_GPT2_DROP_ATTN(l)),
                         dout1 = drop_site(d, c->resid_pdrop, LT_GPT2_DROP_ATTN_OUT(l)),
                         dout2 = drop_site(d, c->resid_pdrop, LT_GPT2_DROP_MLP_OUT(l));
        /* the gradients entering the two output products, through their dropout: into dln (free until the c_fc
           product's backward, and again after ln_2's) */
        const void *dmlp = dout2.threshold ? dln : dres, *datt_out = dout1.threshold ? dln : dres;
        /* dres is d block output: it flows unchanged to residual2 and into the mlp */
        if (lt_cunn_dropout(nn, dt, dln, dres, NC, &dout2) ||
            lt_cunn_matmul_backward_r(nn, dt, dbig, G(d, blk(l, LT_GPT2_FCPROJ_W)), G(d, blk(l, LT_GPT2_FCPROJ_B)),
                                      dmlp, b.fchg, W(d, blk(l, LT_GPT2_FCPROJ_W)), N, 4 * C, C, cs, w_wide, ws_wide) ||
            lt_cunn_gelu_backward(nn, dt, dbig, b.fch, 4 * NC) ||
            lt_cunn_matmul_backward_r(nn, dt, dln, G(d, blk(l, LT_GPT2_FC_W)), G(d, blk(l, LT_GPT2_FC_B)), dbig, b.ln2,
                                      W(d, blk(l, LT_GPT2_FC_W)), N, C, 4 * C, cs, w_wide, ws_wide) ||
            lt_cunn_layernorm_backward(nn, dt, dres, G(d, blk(l, LT_GPT2_LN2_W)), G(d, blk(l, LT_GPT2_LN2_B)), dln,
                                       b.res2, W(d, blk(l, LT_GPT2_LN2_W)), b.ln2_mean, b.ln2_rstd, N, C, cs) ||
            /* now dres is d residual2: on to the block input and into the attention */
            lt_cunn_dropout(nn, dt, dln, dres, NC, &dout1) ||
            lt_cunn_matmul_backward_r(nn, dt, datty, G(d, blk(l, LT_GPT2_ATTPROJ_W)),
                                      G(d, blk(l, LT_GPT2_ATTPROJ_B)), datt_out, b.atty,
                                      W(d, blk(l, LT_GPT2_ATTPROJ_W)), N, C, C, cs, w_qkv, ws_qkv) ||
            lt_cunn_attention_backward(nn, dt, dqkv, drow, datty, b.qkv, b.atty, b.att_lse, B, T, C, NH, &datt) ||
            lt_cunn_matmul_backward_r(nn, dt, dln, G(d, blk(l, LT_GPT2_QKV_W)), G(d, blk(l, LT_GPT2_QKV_B)), dqkv,
                                      b.ln1, W(d, blk(l, LT_GPT2_QKV_W)), N, C, 3 * C, cs, w_big, ws_big) ||
            lt_cunn_layernorm_backward(nn, dt, dres, G(d, blk(l, LT_GPT2_LN1_W)), G(d, blk(l, LT_GPT2_LN1_B)), dln,
                                       residual, W(d, blk(l, LT_GPT2_LN1_W)), b.ln1_mean, b.ln1_rstd, N, C, cs)) {
            char what[48];
            snprintf(what, sizeof what, "backward of block %d", l);
            return nn_fail(d, err, errlen, what);
        }
        if (ready && (st = ready(ctx, blk(l, 0), LT_GPT2_PER_BLOCK)) != LT_OK) return st;
    }
    const lt_dropout demb = drop_site(d, c->embd_pdrop, LT_GPT2_DROP_EMBD);
    if (lt_cunn_dropout(nn, dt, dres, dres, NC, &demb) ||
        lt_cunn_encoder_backward(nn, dt, G(d, LT_GPT2_WTE), G(d, LT_GPT2_WPE), dres, ibuf(d, LT_GPT2_DEV_PLAN),
                                 d->ngroups, B, T, C))
        return nn_fail(d, err, errlen, "backward: embeddings");
    if (ready && (st = ready(ctx, LT_GPT2_WTE, 2)) != LT_OK) return st;
    return LT_OK;
}

lt_status lt_gpt2_dev_grad_norm(lt_gpt2_dev *d, double *norm, char *err, size_t errlen) {
    *norm = NAN;
    if (!d->arena) {
        lt_errmsg(err, errlen, "device GPT-2: grad_norm: no scratch buffer: call lt_gpt2_dev_set_batch first");
        return LT_ERR_STATE;
    }
    double *part = reinterpret_cast<double *>(buf(d, LT_GPT2_DEV_NORM)), *sum = part + LT_GPT2_DEV_NORM_PARTS;
    LT_LAUNCH(sumsq_partial_kernel, NORM_GRID, NORM_THREADS, 0, d->stream)(part, d->grad, d->grad_floats);
    LT_LAUNCH(sumsq_final_kernel, 1, NORM_THREADS, 0, d->stream)(sum, part, (int)NORM_GRID);
    cudaError_t e = cudaGetLastError();
    double s = NAN;
    if (e == cudaSuccess) e = cudaMemcpyAsync(&s, sum, sizeof s, cudaMemcpyDeviceToHost, d->stream);
    if (e != cudaSuccess) return cuda_fail(err, errlen, "grad_norm", e);
    lt_status st = wait(d, err, errlen, "grad_norm");
    if (st == LT_OK) *norm = sqrt(s);
    return st;
}

lt_status lt_gpt2_dev_sync(lt_gpt2_dev *d, char *err, size_t errlen) {
    if (lt_cunn_sync(d->nn)) return nn_fail(d, err, errlen, "sync");
    return LT_OK;
}

int lt_gpt2_dev_num_tensors(const lt_gpt2_dev *d) { return d->num_tensors; }

const lt_gpt2_dev_param *lt_gpt2_dev_param_at(const lt_gpt2_dev *d, int i) {
    return i >= 0 && i < d->num_tensors ? &d->params[i] : nullptr;
}

void *lt_gpt2_dev_stream(const lt_gpt2_dev *d) { return d->stream; }

const void *lt_gpt2_dev_logits(const lt_gpt2_dev *d, int *ldv, lt_dtype *dt) {
    if (ldv) *ldv = d->lay.ldv;
    if (dt) *dt = dtype(d);
    return d->arena ? buf(d, LT_GPT2_DEV_LOGITS) : nullptr;
}

size_t lt_gpt2_dev_allocated_bytes(const lt_gpt2_dev *d) { return d->allocated; }
size_t lt_gpt2_dev_peak_bytes(const lt_gpt2_dev *d) { return d->peak; }

} /* extern "C" */
