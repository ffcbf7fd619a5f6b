/* The memory table (see memplan.h). */
#include "train/memplan.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "leantrain/optim.h"
#include "kernels/optim_kernels_cuda.h"
#include "model/cuda/gpt2_device.h"
#include "util/sysmem.h"

/* What the process holds besides the tensors, calibrated on the 2-core Debian CI-class machine
 * (2026-11-27, `leantrain train`, 0.8M and 4.9M-parameter models, with and without checkpointing:
 * the peak RSS exceeded the tensors by 7-8 MiB in every run): the program, its libraries and the
 * BLAS's touched buffers. */
#define BASE_BYTES ((size_t)7 << 20)
#define BLAS_BYTES_PER_THREAD ((size_t)1 << 19)
/* oneDNN's own when bf16 products use it (model/gemm_bf16.h), beyond the buffers the model plan counts: the library
 * loaded (4.7 MiB of resident memory by itself), its code as it runs and the kernels it generates for each shape.
 * Calibrated on the 2-core AMD EPYC build machine (2026-11-30, `leantrain train --bf16`): 6.5 MiB over the plan for
 * a 3 x 96 model at 12 x 96 tokens, 15 MiB for GPT-2 124M at 256 tokens, where the fp32 runs come out 1-5%
 * over their plans (the tests' small models) and 1% (GPT-2); with 8 MiB the bf16 runs come out -2% to +3%. */
#define DNNL_BASE_BYTES ((size_t)8 << 20)

lt_status lt_memplan(const lt_gpt2_config *cfg, int B, int T, const char *optim, const char *optim_args,
                     const lt_mem_methods *me, size_t data_bytes, lt_mem_table *t, char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    lt_gpt2_memory mm;
    lt_gpt2_dev_memory dm;
    lt_status st = me->device ? lt_gpt2_dev_memory_plan(cfg, B, T, me->gradient_checkpointing, me->optim_in_backward,
                                                        me->precision, me->pure_bf16, lt_gpt2_head_rows_default(cfg),
                                                        &dm, err, errlen)
                              : lt_gpt2_memory_plan(cfg, B, T, me->gradient_checkpointing, me->optim_in_backward,
                                                    me->precision, me->pure_bf16, lt_gpt2_head_rows_default(cfg),
                                                    &mm, err, errlen);
    if (st) return st;
    lt_hparams hp = lt_hparams_default();
    lt_optim *o = lt_optim_create(optim, optim_args, &hp, err, errlen);
    if (!o) return LT_ERR_ARG;
    int nodecay = lt_optim_add_group(o, "weight_decay=0.0");
    lt_gpt2_param *tab = NULL;
    int n = 0;
    if ((st = lt_gpt2_param_table(cfg, &tab, &n, err, errlen))) {
        lt_optim_free(o);
        return st;
    }
    size_t state = 0;
    for (int i = 0; i < n; i++) {
        lt_param_desc d = {.name = tab[i].name, .ndim = tab[i].ndim, .group = tab[i].weight_decay ? 0 : nodecay,
                           .dtype = me->pure_bf16 ? LT_DTYPE_BF16 : LT_DTYPE_F32, .device = me->device};
        d.shape[0] = tab[i].shape[0], d.shape[1] = tab[i].shape[1];
        size_t b = lt_optim_plan_param(o, &d);
        if (b == (size_t)-1) {
            snprintf(err, errlen, "%s", lt_optim_error(o));
            free(tab);
            lt_optim_free(o);
            return LT_ERR_ARG;
        }
        state += b;
    }
    free(tab);
    lt_optim_free(o);
    /* mixed precision: the f32 parameters are the master weights, the compute's 16-bit copies the weights */
    int mixed = me->precision != LT_GPT2_F32 && !me->pure_bf16;
    t->optim_state = state;
    if (me->device) {
        t->weights = mixed ? dm.weight16_bytes : dm.weight_bytes;
        t->master = mixed ? dm.weight_bytes : 0;
        t->grads = dm.grad_bytes;
        t->activations = dm.activation_bytes + dm.backward_bytes;
        t->workspace = dm.token_bytes + dm.cublas_bytes;
        t->cublas = dm.cublas_bytes;
    } else {
        size_t threads = (size_t)omp_get_max_threads();
        size_t blocks = data_bytes / (size_t)(T > 0 ? T : 1);
        t->weights = mixed ? mm.scratch_bytes : mm.weight_bytes + mm.scratch_bytes;
        t->master = mixed ? mm.weight_bytes : 0;
        t->grads = mm.grad_bytes;
        t->activations = mm.activation_bytes;
        t->workspace = mm.token_bytes + 2 * (size_t)B * (size_t)T * sizeof(int32_t) + blocks * sizeof(uint32_t) +
                       (me->run_clm ? blocks * sizeof(size_t) : 0) + me->tokenizer_bytes + data_bytes + BASE_BYTES +
                       threads * BLAS_BYTES_PER_THREAD + mm.gemm16_bytes + (mm.gemm16_bytes ? DNNL_BASE_BYTES : 0);
    }
    t->total = t->weights + t->master + t->grads + t->optim_state + t->activations + t->workspace;
    return LT_OK;
}

int lt_auto_batch_next(int b) { return (int)((double)b * 0.9); }

int lt_memplan_find_batch(const lt_gpt2_config *cfg, int b0, int T, const char *optim, const char *optim_args,
                          const lt_mem_methods *mm, size_t data_bytes, size_t limit, lt_mem_table *t, int *tried,
                          size_t *tried_bytes, int max_tried, int *ntried, char *err, size_t errlen) {
    *ntried = 0;
    for (int b = b0; b >= 1; b = lt_auto_batch_next(b)) {
        if (lt_memplan(cfg, b, T, optim, optim_args, mm, data_bytes, t, err, errlen)) return -1;
        if (*ntried < max_tried) tried[*ntried] = b, tried_bytes[*ntried] = t->total;
        ++*ntried;
        if (t->total <= limit) return b;
    }
    return 0;
}

int lt_memplan_max_batch(const lt_gpt2_config *cfg, int T, const char *optim, const char *optim_args,
                         const lt_mem_methods *mm, size_t data_bytes, size_t limit, char *err, size_t errlen) {
    lt_mem_table t;
    int lo = 0, hi = 1; /* batch lo fits (0: none yet), batch hi is the next to try */
    /* doubling, then bisection between the last fit and the first miss; past batch 1 a batch the planner
       refuses (B x T beyond what the model's counters hold) counts as a miss */
    for (;;) {
        if (lt_memplan(cfg, hi, T, optim, optim_args, mm, data_bytes, &t, err, errlen)) {
            if (hi == 1) return -1;
            break;
        }
        if (t.total > limit) break;
        lo = hi;
        if (hi >= 1 << 20) return lo;
        hi *= 2;
    }
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        if (lt_memplan(cfg, mid, T, optim, optim_args, mm, data_bytes, &t, err, errlen) == LT_OK && t.total <= limit)
            lo = mid;
        else hi = mid;
    }
    return lo;
}

/* --memory_limit auto on the GPU: device memory the plan does not count and cudaMemGetInfo has not yet taken off
 * when the trainer asks (before its first allocation, with the CUDA context already made): the kernels' modules,
 * loaded at their first launch (CUDA's lazy loading; cuBLAS's too), and the driver's rounding of allocations. On
 * the H200 (2026-11-28, bench/gpu-logs) nvidia-smi showed 573-691 MiB above the measured peak in four runs, the
 * context included, so 512 MiB is an upper bound for the rest. */
#define GPU_RESERVE_BYTES ((size_t)512 << 20)

lt_status lt_memory_limit(const char *flag, int device, size_t *limit, char *source, size_t srclen, char *err,
                          size_t errlen) {
    *limit = 0;
    snprintf(source, srclen, "--memory_limit");
    if (!strcmp(flag, "none")) return LT_OK;
    if (strcmp(flag, "auto")) {
        *limit = lt_parse_bytes(flag);
        if (!*limit) {
            snprintf(err, errlen, "--memory_limit %s: expected auto, none or a size such as 20GB or 512MiB", flag);
            return LT_ERR_ARG;
        }
        return LT_OK;
    }
    if (!device) {
        *limit = lt_host_mem_available(source, srclen);
        return LT_OK;
    }
    size_t total = 0, free_bytes = 0;
    char e2[512];
    if (lt_cuda_mem_info(&free_bytes, &total, e2, sizeof e2)) {
        snprintf(err, errlen, "--device cuda: %s", e2);
        return LT_ERR_DEVICE;
    }
    *limit = free_bytes > GPU_RESERVE_BYTES ? free_bytes - GPU_RESERVE_BYTES : 1;
    snprintf(source, srclen, "the GPU's free %.0f MiB of %.0f less %.0f for kernel modules", free_bytes / 1048576.0,
             total / 1048576.0, GPU_RESERVE_BYTES / 1048576.0);
    return LT_OK;
}

void lt_mem_table_print(FILE *f, const lt_mem_table *t, size_t measured) {
    const double M = 1048576.0;
    fprintf(f, "memory (MiB):  weights %.1f  master %.1f  gradients %.1f  optimizer state %.1f  activations %.1f  "
               "workspace %.1f  total %.1f",
            t->weights / M, t->master / M, t->grads / M, t->optim_state / M, t->activations / M, t->workspace / M,
            t->total / M);
    if (measured) fprintf(f, "  | measured peak %.1f (%+.1f%%)", measured / M, 100.0 * ((double)measured / t->total - 1));
    fprintf(f, "\n");
}

size_t lt_parse_bytes(const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v > 0)) return 0;
    double mult = 1;
    if (!strcasecmp(end, "k") || !strcasecmp(end, "kb") || !strcasecmp(end, "kib")) mult = 1024.0;
    else if (!strcasecmp(end, "m") || !strcasecmp(end, "mb") || !strcasecmp(end, "mib")) mult = 1048576.0;
    else if (!strcasecmp(end, "g") || !strcasecmp(end, "gb") || !strcasecmp(end, "gib")) mult = 1073741824.0;
    else if (!strcasecmp(end, "t") || !strcasecmp(end, "tb") || !strcasecmp(end, "tib")) mult = 1099511627776.0;
    else if (*end) return 0;
    double b = v * mult;
    return b >= 1.8e19 ? 0 : (size_t)b;
}
