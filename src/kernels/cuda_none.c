/* The CUDA backend's interface in a build without CUDA (no nvcc, or LT_CUDA=0):
 * no devices, and every operation fails with a message that says why. */
#ifndef LT_HAVE_CUDA
#include <stdio.h>

#include "kernels/optim_kernels_cuda.h"

#define LT_NO_CUDA "this build of leantrain has no CUDA support (rebuild with nvcc on PATH and LT_CUDA unset)"

static int no_cuda(char *err, size_t errlen) {
    if (err && errlen) snprintf(err, errlen, "%s", LT_NO_CUDA);
    return -1;
}

int lt_cuda_device_count(void) { return 0; }
int lt_cuda_check_device(char *err, size_t errlen) { return no_cuda(err, errlen); }
int lt_cuda_built(void) { return 0; }
int lt_cuda_mem_info(size_t *free_bytes, size_t *total_bytes, char *err, size_t errlen) {
    *free_bytes = *total_bytes = 0;
    return no_cuda(err, errlen);
}
lt_cuda *lt_cuda_create(char *err, size_t errlen) {
    no_cuda(err, errlen);
    return NULL;
}
/* Without a context none of the functions below can be reached with a valid one. */
void lt_cuda_destroy(lt_cuda *c) { (void)c; }
const char *lt_cuda_error(const lt_cuda *c) {
    (void)c;
    return LT_NO_CUDA;
}
int lt_cuda_device(const lt_cuda *c) {
    (void)c;
    return -1;
}
int lt_cuda_set_stream(lt_cuda *c, void *stream) {
    (void)c, (void)stream;
    return -1;
}
void *lt_cuda_stream(const lt_cuda *c) {
    (void)c;
    return NULL;
}
int lt_cuda_sync(lt_cuda *c) {
    (void)c;
    return -1;
}
int lt_cuda_check_ptr(lt_cuda *c, const void *ptr, const char *what) {
    (void)c, (void)ptr, (void)what;
    return -1;
}
int lt_cuda_alloc(lt_cuda *c, void **ptr, size_t bytes, int managed) {
    (void)c, (void)bytes, (void)managed;
    *ptr = NULL;
    return -1;
}
void lt_cuda_free(lt_cuda *c, void *ptr) { (void)c, (void)ptr; }
int lt_cuda_prefetch(lt_cuda *c) {
    (void)c;
    return -1;
}
int lt_cuda_copy(lt_cuda *c, void *dst, const void *src, size_t bytes, int kind) {
    (void)c, (void)dst, (void)src, (void)bytes, (void)kind;
    return -1;
}
int lt_cuda_zero(lt_cuda *c, void *ptr, size_t bytes) {
    (void)c, (void)ptr, (void)bytes;
    return -1;
}
int lt_cuda_set_found_inf(lt_cuda *c, int *flag, int check) {
    (void)c, (void)flag, (void)check;
    return -1;
}
int lt_cuda_record(lt_cuda *c, int slot) {
    (void)c, (void)slot;
    return -1;
}
int lt_cuda_record_wait(lt_cuda *c, int slot, int *value) {
    (void)c, (void)slot;
    *value = 0;
    return -1;
}

#define QUEUE_STUB(name, T)                                                                                            \
    int name(lt_cuda *c, const lt_ktensor *t, const T *h) {                                                           \
        (void)c, (void)t, (void)h;                                                                                     \
        return -1;                                                                                                     \
    }
QUEUE_STUB(lt_kernel_adam_cuda, lt_kadam)
QUEUE_STUB(lt_kernel_anyprecision_cuda, lt_kanyprec)
QUEUE_STUB(lt_kernel_sgd_cuda, lt_ksgd)
QUEUE_STUB(lt_kernel_adagrad_cuda, lt_kadagrad)
QUEUE_STUB(lt_kernel_rmsprop_cuda, lt_krmsprop)
QUEUE_STUB(lt_kernel_lion_cuda, lt_klion)
QUEUE_STUB(lt_kernel_bnb32_adam_cuda, lt_kbnb)
QUEUE_STUB(lt_kernel_bnb32_lion_cuda, lt_kbnb)
QUEUE_STUB(lt_kernel_ao_adam_plain_cuda, lt_kao)

int lt_kernel_bnb8_adam_cuda(lt_cuda *c, lt_karr p, lt_karr g, float gscale, size_t n, lt_kqstate m, lt_kqstate v,
                             const lt_kbnb *h) {
    (void)c, (void)p, (void)g, (void)gscale, (void)n, (void)m, (void)v, (void)h;
    return -1;
}
int lt_kernel_bnb8_lion_cuda(lt_cuda *c, lt_karr p, lt_karr g, float gscale, size_t n, lt_kqstate m,
                             const lt_kbnb *h) {
    (void)c, (void)p, (void)g, (void)gscale, (void)n, (void)m, (void)h;
    return -1;
}
int lt_kernel_ao_adam_cuda(lt_cuda *c, lt_karr p, lt_karr g, float gscale, size_t n, lt_kqstate m, lt_kqstate v,
                           const lt_kao *h) {
    (void)c, (void)p, (void)g, (void)gscale, (void)n, (void)m, (void)v, (void)h;
    return -1;
}
int lt_kernel_adafactor_cuda(lt_cuda *c, const lt_kaf_args *a) {
    (void)c, (void)a;
    return -1;
}
int lt_cuda_flush(lt_cuda *c) {
    (void)c;
    return -1;
}
void lt_cuda_discard(lt_cuda *c) { (void)c; }
int lt_cuda_tune_report(lt_cuda *c, char *buf, size_t len) {
    (void)c;
    if (len) buf[0] = 0;
    return 0;
}
int lt_cuda_check_finite(lt_cuda *c, const lt_ktensor *t, int count) {
    (void)c, (void)t, (void)count;
    return -1;
}

int lt_cuda_malloc_raw(void **ptr, size_t bytes, char *err, size_t errlen) {
    (void)bytes;
    *ptr = NULL;
    return no_cuda(err, errlen);
}
void lt_cuda_free_raw(void *ptr) { (void)ptr; }
int lt_cuda_memcpy_raw(void *dst, const void *src, size_t bytes, int kind, char *err, size_t errlen) {
    (void)dst, (void)src, (void)bytes, (void)kind;
    return no_cuda(err, errlen);
}
int lt_cuda_stream_create(void **stream, char *err, size_t errlen) {
    *stream = NULL;
    return no_cuda(err, errlen);
}
void lt_cuda_stream_destroy(void *stream) { (void)stream; }
void lt_cuda_describe(char *buf, size_t len) { snprintf(buf, len, "%s", LT_NO_CUDA); }
int lt_cuda_time_copy(void *dst, const void *src, size_t bytes, int reps, double *best_ms, double *median_ms, char *err,
                      size_t errlen) {
    (void)dst, (void)src, (void)bytes, (void)reps;
    *best_ms = *median_ms = 0;
    return no_cuda(err, errlen);
}
lt_cuda_timer *lt_cuda_timer_create(void *stream, char *err, size_t errlen) {
    (void)stream;
    no_cuda(err, errlen);
    return NULL;
}
int lt_cuda_timer_start(lt_cuda_timer *t) {
    (void)t;
    return -1;
}
int lt_cuda_timer_stop(lt_cuda_timer *t) {
    (void)t;
    return -1;
}
int lt_cuda_timer_elapsed(lt_cuda_timer *t, double *ms) {
    (void)t;
    *ms = 0;
    return -1;
}
void lt_cuda_timer_destroy(lt_cuda_timer *t) { (void)t; }
#endif
