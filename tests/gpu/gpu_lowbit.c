/* The low-bit acceptance harness of tests/test_lowbit.c (bitsandbytes' own
 * test for every 8-bit name, the 4-bit report, non-finite gradients, all-zero
 * blocks, the sign fix, a checkpoint's own maps, state bytes, drift against
 * f32) with every parameter on the GPU: the same file, compiled with device
 * copies of each optimizer's parameter and gradient, uploaded before each
 * step and read back after it.
 *
 * Needs a GPU; built only with CUDA (tests/gpu is not part of `make test`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/optim_kernels_cuda.h"
#include "leantrain/optim.h"

#define LT_TEST_GPU 1

typedef struct {
    lt_optim *o;
    void *hp, *hg, *dp, *dg;
    size_t pbytes, gbytes;
} shim_t;
static shim_t shims[32];

__attribute__((constructor)) static void need_gpu(void) {
    char dev[256];
    lt_cuda_describe(dev, sizeof dev);
    printf("gpu_lowbit: %s\n", dev);
    if (lt_cuda_device_count() < 1) {
        fprintf(stderr, "gpu_lowbit: needs a CUDA device\n");
        exit(1);
    }
}

static shim_t *shim_of(lt_optim *o) {
    for (int i = 0; i < 32; i++)
        if (shims[i].o == o) return &shims[i];
    return NULL;
}

static int add1(lt_optim *o, const lt_param_desc *d) {
    char err[512];
    shim_t *s = shim_of(NULL);
    if (!s) {
        fprintf(stderr, "gpu_lowbit: too many live optimizers\n");
        return -1;
    }
    size_t n = 1;
    for (int k = 0; k < d->ndim; k++) n *= (size_t)d->shape[k];
    s->pbytes = n * lt_dtype_size(d->dtype);
    s->gbytes = n * lt_dtype_size(d->grad_dtype);
    if (lt_cuda_malloc_raw(&s->dp, s->pbytes, err, sizeof err) || lt_cuda_malloc_raw(&s->dg, s->gbytes, err, sizeof err) ||
        lt_cuda_memcpy_raw(s->dp, d->data, s->pbytes, 0, err, sizeof err)) {
        fprintf(stderr, "gpu_lowbit: %s\n", err);
        return -1;
    }
    s->o = o;
    s->hp = d->data;
    s->hg = (void *)d->grad;
    lt_param_desc dd = *d;
    dd.data = s->dp, dd.grad = s->dg, dd.device = 1;
    return lt_optim_add_param(o, &dd);
}

/* parameter and gradient up, step, parameter back */
static lt_status step1(lt_optim *o) {
    char err[512];
    shim_t *s = shim_of(o);
    if (!s) return lt_optim_step(o, 1.0f);
    if (lt_cuda_memcpy_raw(s->dp, s->hp, s->pbytes, 0, err, sizeof err) ||
        lt_cuda_memcpy_raw(s->dg, s->hg, s->gbytes, 0, err, sizeof err)) {
        fprintf(stderr, "gpu_lowbit: %s\n", err);
        return LT_ERR_DEVICE;
    }
    lt_status st = lt_optim_step(o, 1.0f);
    if (st == LT_OK) st = lt_optim_sync(o);
    if (st == LT_OK && lt_cuda_memcpy_raw(s->hp, s->dp, s->pbytes, 1, err, sizeof err)) {
        fprintf(stderr, "gpu_lowbit: %s\n", err);
        return LT_ERR_DEVICE;
    }
    return st;
}

static void free1(lt_optim *o) {
    shim_t *s = o ? shim_of(o) : NULL;
    lt_optim_free(o);
    if (!s) return;
    lt_cuda_free_raw(s->dp), lt_cuda_free_raw(s->dg);
    memset(s, 0, sizeof *s);
}

#include "../test_lowbit.c"
