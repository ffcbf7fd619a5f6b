/* The CUDA backend of the optimizer kernels (the .cu files of src/kernels/cuda), seen from C.
 *
 * The elementwise and low-bit kernels have the same operands and scalars as
 * their CPU twins in optim_kernels.h, but take device pointers and are queued:
 * optim/ calls lt_kernel_<name>_cuda for every device parameter of a step,
 * then lt_cuda_flush, which uploads one descriptor list and launches one
 * multi-tensor kernel per kind (a few launches per step, whatever the number
 * of tensors). Adafactor's device step takes its raw hyperparameters
 * (lt_kaf_args): the data-dependent scalars (RMS of p, the row mean, the
 * update's RMS for clipping) are computed on the device, without a host
 * round-trip.
 *
 * Every function returns 0 on success and -1 on failure, with the message in
 * lt_cuda_error(c) (or in err for the functions without a context). Nothing
 * here touches the CUDA driver until a context is created or a memory helper
 * is called, so a CUDA build runs on machines without a GPU. In a build
 * without CUDA (src/kernels/cuda_none.c) every function fails with a message
 * that says so, and lt_cuda_device_count returns 0. */
#ifndef LT_KERNELS_OPTIM_KERNELS_CUDA_H
#define LT_KERNELS_OPTIM_KERNELS_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/optim_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Number of CUDA devices the kernels run on (compute capability 8.0 or later: they are built for sm_80 and
 * sm_90); 0 without CUDA support, a driver or such a device. */
int lt_cuda_device_count(void);

/* 0 when the current CUDA device can run the kernels; -1 with the reason in err otherwise (no device, or one
 * older than compute capability 8.0: the message names it and says to use --device cpu). */
int lt_cuda_check_device(char *err, size_t errlen);

/* 1 when this build has the CUDA kernels. */
int lt_cuda_built(void);

/* The current device's free and total memory in bytes (cudaMemGetInfo: what this process and every other one have
 * not allocated; the CUDA context, created by the call if need be, is already taken off). 0 with both set; -1
 * with the reason in err without a usable device. */
int lt_cuda_mem_info(size_t *free_bytes, size_t *total_bytes, char *err, size_t errlen);

/* ---- a context: one per optimizer that has device parameters ---- */
typedef struct lt_cuda lt_cuda;

/* Creates a context on the current CUDA device; NULL (message in err) without one. */
lt_cuda *lt_cuda_create(char *err, size_t errlen);
/* Waits for the context's work, then frees it and its device buffers. NULL is a no-op. */
void lt_cuda_destroy(lt_cuda *c);
const char *lt_cuda_error(const lt_cuda *c);
int lt_cuda_device(const lt_cuda *c);

/* The stream every later operation is queued on (NULL: the legacy default
 * stream). Work already queued on the previous stream is waited for first. */
int lt_cuda_set_stream(lt_cuda *c, void *stream);
void *lt_cuda_stream(const lt_cuda *c);
/* Waits for the stream; reports an error of earlier asynchronous work. */
int lt_cuda_sync(lt_cuda *c);

/* Checks that ptr is device (or managed) memory of the context's device. */
int lt_cuda_check_ptr(lt_cuda *c, const void *ptr, const char *what);

/* State memory: cudaMalloc'ed, or managed (paged: cudaMallocManaged,
 * prefetched to the device before each step by lt_cuda_prefetch). */
int lt_cuda_alloc(lt_cuda *c, void **ptr, size_t bytes, int managed);
void lt_cuda_free(lt_cuda *c, void *ptr);
int lt_cuda_prefetch(lt_cuda *c);
/* Copies in stream order and waits: kind 0 host->device, 1 device->host, 2 device->device. */
int lt_cuda_copy(lt_cuda *c, void *dst, const void *src, size_t bytes, int kind);
int lt_cuda_zero(lt_cuda *c, void *ptr, size_t bytes);

/* ---- the found-inf flag (an int in device memory) ---- */

/* flag NULL: steps always run. check: every flush first ORs into *flag
 * whether any queued gradient element * its scale is inf or NaN. Every kernel
 * of a step returns without writing when *flag != 0. */
int lt_cuda_set_found_inf(lt_cuda *c, int *flag, int check);
/* Snapshots *flag after the queued work into ring slot `slot` (0..LT_CUDA_RECORDS-1)
 * and records an event; lt_cuda_record_wait waits for it and returns the value. */
#define LT_CUDA_RECORDS 64
int lt_cuda_record(lt_cuda *c, int slot);
int lt_cuda_record_wait(lt_cuda *c, int slot, int *value);

/* ---- queued kernels: same math as the CPU ones (optim_kernels.h) ---- */
int lt_kernel_adam_cuda(lt_cuda *c, const lt_ktensor *t, const lt_kadam *h);
int lt_kernel_anyprecision_cuda(lt_cuda *c, const lt_ktensor *t, const lt_kanyprec *h);
int lt_kernel_sgd_cuda(lt_cuda *c, const lt_ktensor *t, const lt_ksgd *h);
int lt_kernel_adagrad_cuda(lt_cuda *c, const lt_ktensor *t, const lt_kadagrad *h);
int lt_kernel_rmsprop_cuda(lt_cuda *c, const lt_ktensor *t, const lt_krmsprop *h);
int lt_kernel_lion_cuda(lt_cuda *c, const lt_ktensor *t, const lt_klion *h);
int lt_kernel_bnb32_adam_cuda(lt_cuda *c, const lt_ktensor *t, const lt_kbnb *h);
int lt_kernel_bnb32_lion_cuda(lt_cuda *c, const lt_ktensor *t, const lt_kbnb *h);
int lt_kernel_ao_adam_plain_cuda(lt_cuda *c, const lt_ktensor *t, const lt_kao *h);
/* Low-bit: m.tab / v.tab are the host search tables (the context keeps device copies). */
int lt_kernel_bnb8_adam_cuda(lt_cuda *c, lt_karr p, lt_karr g, float gscale, size_t n, lt_kqstate m, lt_kqstate v,
                             const lt_kbnb *h);
int lt_kernel_bnb8_lion_cuda(lt_cuda *c, lt_karr p, lt_karr g, float gscale, size_t n, lt_kqstate m,
                             const lt_kbnb *h);
int lt_kernel_ao_adam_cuda(lt_cuda *c, lt_karr p, lt_karr g, float gscale, size_t n, lt_kqstate m, lt_kqstate v,
                           const lt_kao *h);

/* Adafactor on one parameter viewed as [batch, rows, cols] (a vector: factored
 * = 0, batch = rows = 1, cols = n), with the arithmetic of optim/adafactor.c. */
typedef struct lt_kaf_args {
    lt_karr p, g;
    float gscale;
    int factored;
    size_t batch, rows, cols;
    float *R, *C; /* factored: exp_avg_sq_row [batch*rows], exp_avg_sq_col [batch*cols]; vector: C = exp_avg_sq */
    float *m;     /* exp_avg, or NULL */
    double rho;   /* the step's lr before scaling (relative_step already applied) */
    int scale_parameter;
    double eps2, clip_threshold, weight_decay;
    float eps1, b2t, omb2t, b1;
} lt_kaf_args;
int lt_kernel_adafactor_cuda(lt_cuda *c, const lt_kaf_args *a);

/* Launches everything queued since the last flush (found-inf check first). */
int lt_cuda_flush(lt_cuda *c);
/* Drops what was queued since the last flush. */
void lt_cuda_discard(lt_cuda *c);
/* The forms chosen by timing (kernels/cuda/cu_tune.h): one line per launch shape that has forms to choose
 * among, each form's best time and the choice (or "choosing"), into buf (truncated to len - 1). Reads back
 * the timed launches that are done; never waits. Returns the number of lines. */
int lt_cuda_tune_report(lt_cuda *c, char *buf, size_t len);
/* Runs the found-inf check alone over the gradients of the given tensors (t[i].g, .n, .gscale). */
int lt_cuda_check_finite(lt_cuda *c, const lt_ktensor *t, int count);

/* ---- helpers for the command-line program, benchmarks and tests ---- */
/* Plain device memory, and copies (kind as lt_cuda_copy) that start after all work queued on any stream and are
 * complete on return. */
int lt_cuda_malloc_raw(void **ptr, size_t bytes, char *err, size_t errlen);
void lt_cuda_free_raw(void *ptr);
int lt_cuda_memcpy_raw(void *dst, const void *src, size_t bytes, int kind, char *err, size_t errlen);
int lt_cuda_stream_create(void **stream, char *err, size_t errlen);
void lt_cuda_stream_destroy(void *stream);
/* "NVIDIA H100 80GB HBM3, 132 SMs, cc 9.0" (or the error). */
void lt_cuda_describe(char *buf, size_t len);
/* Best and median milliseconds of `reps` device-to-device copies of `bytes`, timed with events. */
int lt_cuda_time_copy(void *dst, const void *src, size_t bytes, int reps, double *best_ms, double *median_ms, char *err,
                      size_t errlen);
/* Event timer on a stream: start and stop record events (no waiting), elapsed
 * waits for the stop event and gives the milliseconds between them. */
typedef struct lt_cuda_timer lt_cuda_timer;
lt_cuda_timer *lt_cuda_timer_create(void *stream, char *err, size_t errlen);
int lt_cuda_timer_start(lt_cuda_timer *t);
int lt_cuda_timer_stop(lt_cuda_timer *t);
int lt_cuda_timer_elapsed(lt_cuda_timer *t, double *ms);
void lt_cuda_timer_destroy(lt_cuda_timer *t);

#ifdef __cplusplus
}
#endif
#endif
