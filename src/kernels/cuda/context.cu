/* The CUDA backend's host side: contexts, state memory (plain and managed),
 * the per-step queue of tensors and its flush into a few multi-tensor
 * launches, the found-inf flag, and helpers for the program and the tests.
 * Every CUDA call is checked; a failure leaves its message in the context. */
#include <cuda_runtime.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <new>
#include <vector>

#include "kernels/cuda/cu_internal.cuh"
#include "kernels/cuda/cu_tune.h"
#include "kernels/optim_kernels_cuda.h"
#include "kernels/quant.h"

namespace {

struct QEntry {
    int kind;
    lt_cu_item it;
    const lt_qtable *tab[2];
};

struct DevTab {
    const lt_qtable *host;
    lt_cu_qtab *dev;
};

struct Arena {
    char *base;
    size_t cap, used;
};

struct Launch {
    int kind, variant;
    int first, count;
    uint64_t nunits, maxcols;
    const lt_cu_qtab *t0, *t1;
    int block;
};

/* a launch timed for the choice of its form (cu_tune.h): read back at a later flush, once its events are done */
struct Timed {
    size_t tune;
    int cand;
    cudaEvent_t a, b;
};

} // namespace

struct lt_cuda {
    int device;
    int sm_count;
    uint64_t af_smcols; /* lt_cu_af_smcols of the device */
    int managed_prefetch;
    cudaStream_t stream;
    int *flag;
    int check;
    char err[512];
    std::vector<QEntry> queue;
    std::vector<lt_cu_item> host_items;
    std::vector<char> list; /* the uploaded bytes: per launch, items and their unit0 values */
    lt_cu_item *d_items;
    size_t d_items_cap; /* bytes */
    char *d_ws;
    size_t ws_cap; /* bytes */
    std::vector<DevTab> tabs;
    std::vector<Arena> arenas;
    int *pinned; /* LT_CUDA_RECORDS ints */
    cudaEvent_t ev[LT_CUDA_RECORDS];
    std::vector<lt_cu_tune> tunes; /* per launch shape with forms to choose among */
    std::vector<Timed> timed;      /* launches whose times are not read yet */
    std::vector<cudaEvent_t> spare; /* timing events to reuse */
};

static int fail(lt_cuda *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(lt_cuda *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return -1;
}

/* Checks a CUDA call; on failure records "what: message (cudaErrorX)" and returns -1 from the caller. */
#define CU(c, call, what)                                                                                              \
    do {                                                                                                               \
        cudaError_t e_ = (call);                                                                                       \
        if (e_ != cudaSuccess) {                                                                                       \
            cudaGetLastError();                                                                                        \
            return fail((c), "CUDA error in %s: %s (%s)", (what), cudaGetErrorString(e_), cudaGetErrorName(e_));       \
        }                                                                                                              \
    } while (0)

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

extern "C" {

int lt_cuda_built(void) { return 1; }

/* leantrain's kernels are built for sm_80 and sm_90 (cp.async, bf16 tensor cores): older GPUs cannot run them */
static int cc_supported(const cudaDeviceProp &prop) { return prop.major >= 8; }

int lt_cuda_device_count(void) {
    int n = 0, usable = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    for (int d = 0; d < n; d++) {
        cudaDeviceProp prop;
        if (cudaGetDeviceProperties(&prop, d) != cudaSuccess) cudaGetLastError();
        else usable += cc_supported(prop);
    }
    return usable;
}

/* the current device and its properties when the kernels can run on it; -1 with the reason in err otherwise */
static int current_device(int *dev, cudaDeviceProp *prop, char *err, size_t errlen) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        cudaGetLastError();
        set_err(err, errlen, "no CUDA device is available (%s)",
                e != cudaSuccess ? cudaGetErrorString(e) : "cudaGetDeviceCount found none");
        return -1;
    }
    if ((e = cudaGetDevice(dev)) != cudaSuccess || (e = cudaGetDeviceProperties(prop, *dev)) != cudaSuccess) {
        cudaGetLastError();
        set_err(err, errlen, "cannot query the CUDA device: %s", cudaGetErrorString(e));
        return -1;
    }
    if (!cc_supported(*prop)) {
        set_err(err, errlen,
                "CUDA device %d (%s) has compute capability %d.%d; leantrain's CUDA kernels need 8.0 or later "
                "(Ampere, Ada, Hopper or newer): use --device cpu%s",
                *dev, prop->name, prop->major, prop->minor,
                lt_cuda_device_count() > 0 ? ", or CUDA_VISIBLE_DEVICES to choose one of this machine's newer GPUs" : "");
        return -1;
    }
    return 0;
}

int lt_cuda_check_device(char *err, size_t errlen) {
    int dev = 0;
    cudaDeviceProp prop;
    return current_device(&dev, &prop, err, errlen);
}

int lt_cuda_mem_info(size_t *free_bytes, size_t *total_bytes, char *err, size_t errlen) {
    int dev = 0;
    cudaDeviceProp prop;
    if (current_device(&dev, &prop, err, errlen)) return -1;
    cudaError_t e = cudaMemGetInfo(free_bytes, total_bytes);
    if (e != cudaSuccess) {
        cudaGetLastError();
        set_err(err, errlen, "cudaMemGetInfo on device %d (%s): %s", dev, prop.name, cudaGetErrorString(e));
        return -1;
    }
    return 0;
}

lt_cuda *lt_cuda_create(char *err, size_t errlen) {
    int dev = 0;
    cudaDeviceProp prop;
    if (current_device(&dev, &prop, err, errlen)) return NULL;
    lt_cuda *c = new (std::nothrow) lt_cuda();
    if (!c) {
        set_err(err, errlen, "out of memory creating the CUDA context");
        return NULL;
    }
    c->device = dev;
    c->sm_count = prop.multiProcessorCount;
    int cma = 0;
    if (cudaDeviceGetAttribute(&cma, cudaDevAttrConcurrentManagedAccess, dev) != cudaSuccess) cudaGetLastError(), cma = 0;
    c->managed_prefetch = cma;
    int optin = 0;
    if (cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess)
        cudaGetLastError(), optin = 48 * 1024; /* what every device allows */
    c->af_smcols = lt_cu_af_smcols(optin);
    c->stream = NULL;
    c->flag = NULL;
    c->check = 0;
    c->err[0] = 0;
    c->d_items = NULL;
    c->d_items_cap = 0;
    c->d_ws = NULL;
    c->ws_cap = 0;
    c->pinned = NULL;
    for (int i = 0; i < LT_CUDA_RECORDS; i++) c->ev[i] = NULL;
    return c;
}

void lt_cuda_destroy(lt_cuda *c) {
    if (!c) return;
    cudaStreamSynchronize(c->stream);
    cudaFree(c->d_items);
    cudaFree(c->d_ws);
    for (size_t i = 0; i < c->tabs.size(); i++) cudaFree(c->tabs[i].dev);
    for (size_t i = 0; i < c->arenas.size(); i++) cudaFree(c->arenas[i].base);
    for (int i = 0; i < LT_CUDA_RECORDS; i++)
        if (c->ev[i]) cudaEventDestroy(c->ev[i]);
    for (size_t i = 0; i < c->timed.size(); i++) cudaEventDestroy(c->timed[i].a), cudaEventDestroy(c->timed[i].b);
    for (size_t i = 0; i < c->spare.size(); i++) cudaEventDestroy(c->spare[i]);
    if (c->pinned) cudaFreeHost(c->pinned);
    cudaGetLastError();
    delete c;
}

const char *lt_cuda_error(const lt_cuda *c) { return c ? c->err : "no CUDA context"; }
int lt_cuda_device(const lt_cuda *c) { return c->device; }
void *lt_cuda_stream(const lt_cuda *c) { return (void *)c->stream; }

int lt_cuda_set_stream(lt_cuda *c, void *stream) {
    /* the previous stream's kernels may still read the descriptor list and workspace */
    CU(c, cudaStreamSynchronize(c->stream), "set_stream (waiting for the previous stream)");
    c->stream = (cudaStream_t)stream;
    return 0;
}

int lt_cuda_sync(lt_cuda *c) {
    CU(c, cudaStreamSynchronize(c->stream), "synchronizing the optimizer's stream");
    CU(c, cudaGetLastError(), "an earlier kernel");
    return 0;
}

int lt_cuda_check_ptr(lt_cuda *c, const void *ptr, const char *what) {
    cudaPointerAttributes a;
    cudaError_t e = cudaPointerGetAttributes(&a, ptr);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return fail(c, "%s (%p) is not CUDA memory: %s", what, ptr, cudaGetErrorString(e));
    }
    if (a.type != cudaMemoryTypeDevice && a.type != cudaMemoryTypeManaged)
        return fail(c, "%s (%p) is %s memory, not device memory", what, ptr,
                    a.type == cudaMemoryTypeHost ? "pinned host" : "host");
    if (a.type == cudaMemoryTypeDevice && a.device != c->device)
        return fail(c, "%s (%p) is memory of CUDA device %d, but the optimizer's device is %d", what, ptr, a.device,
                    c->device);
    return 0;
}

int lt_cuda_alloc(lt_cuda *c, void **ptr, size_t bytes, int managed) {
    *ptr = NULL;
    if (!bytes) return 0;
    if (!managed) {
        CU(c, cudaMalloc(ptr, bytes), "cudaMalloc of optimizer state");
        return 0;
    }
    /* managed state comes from arenas, so that a step prefetches a few ranges */
    size_t need = (bytes + 255) / 256 * 256;
    for (size_t i = 0; i < c->arenas.size(); i++) {
        Arena &a = c->arenas[i];
        if (a.cap - a.used >= need) {
            *ptr = a.base + a.used;
            a.used += need;
            return 0;
        }
    }
    Arena a;
    a.cap = std::max(need, (size_t)64 << 20);
    CU(c, cudaMallocManaged((void **)&a.base, a.cap, cudaMemAttachGlobal), "cudaMallocManaged of paged optimizer state");
    a.used = need;
    c->arenas.push_back(a);
    *ptr = a.base;
    return 0;
}

void lt_cuda_free(lt_cuda *c, void *ptr) {
    if (!ptr) return;
    for (size_t i = 0; i < c->arenas.size(); i++)
        if ((char *)ptr >= c->arenas[i].base && (char *)ptr < c->arenas[i].base + c->arenas[i].cap)
            return; /* arenas are freed with the context */
    cudaFree(ptr);
    cudaGetLastError();
}

int lt_cuda_prefetch(lt_cuda *c) {
    if (!c->managed_prefetch) return 0;
    for (size_t i = 0; i < c->arenas.size(); i++) {
#if CUDART_VERSION >= 13000
        cudaMemLocation loc;
        loc.type = cudaMemLocationTypeDevice;
        loc.id = c->device;
        CU(c, cudaMemPrefetchAsync(c->arenas[i].base, c->arenas[i].used, loc, 0, c->stream), "prefetching paged state");
#else
        CU(c, cudaMemPrefetchAsync(c->arenas[i].base, c->arenas[i].used, c->device, c->stream), "prefetching paged state");
#endif
    }
    return 0;
}

int lt_cuda_copy(lt_cuda *c, void *dst, const void *src, size_t bytes, int kind) {
    if (!bytes) return 0;
    cudaMemcpyKind k = kind == 0 ? cudaMemcpyHostToDevice : kind == 1 ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice;
    CU(c, cudaMemcpyAsync(dst, src, bytes, k, c->stream), "copying optimizer state");
    CU(c, cudaStreamSynchronize(c->stream), "copying optimizer state");
    return 0;
}

int lt_cuda_zero(lt_cuda *c, void *ptr, size_t bytes) {
    if (!bytes) return 0;
    CU(c, cudaMemsetAsync(ptr, 0, bytes, c->stream), "zeroing optimizer state");
    CU(c, cudaStreamSynchronize(c->stream), "zeroing optimizer state");
    return 0;
}

int lt_cuda_set_found_inf(lt_cuda *c, int *flag, int check) {
    if (flag && lt_cuda_check_ptr(c, flag, "the found-inf flag")) return -1;
    c->flag = flag;
    c->check = check;
    return 0;
}

int lt_cuda_record(lt_cuda *c, int slot) {
    if (!c->flag) return fail(c, "no found-inf flag is set");
    if (slot < 0 || slot >= LT_CUDA_RECORDS) return fail(c, "record slot %d out of range", slot);
    if (!c->pinned) CU(c, cudaMallocHost((void **)&c->pinned, LT_CUDA_RECORDS * sizeof(int)), "cudaMallocHost");
    if (!c->ev[slot]) CU(c, cudaEventCreateWithFlags(&c->ev[slot], cudaEventDisableTiming), "cudaEventCreate");
    CU(c, cudaMemcpyAsync(&c->pinned[slot], c->flag, sizeof(int), cudaMemcpyDeviceToHost, c->stream),
       "reading the found-inf flag");
    CU(c, cudaEventRecord(c->ev[slot], c->stream), "cudaEventRecord");
    return 0;
}

int lt_cuda_record_wait(lt_cuda *c, int slot, int *value) {
    if (slot < 0 || slot >= LT_CUDA_RECORDS || !c->ev[slot] || !c->pinned) return fail(c, "no record in slot %d", slot);
    CU(c, cudaEventSynchronize(c->ev[slot]), "waiting for a step's found-inf flag");
    *value = c->pinned[slot];
    return 0;
}

} /* extern "C" */

/* ---- the queue ---- */

static void fill_common(lt_cu_item *it, lt_karr p, lt_karr g, float gscale, size_t n) {
    memset(it, 0, sizeof *it);
    it->p = p.ptr;
    it->g = g.ptr;
    it->pdt = (uint8_t)p.dt;
    it->gdt = (uint8_t)g.dt;
    it->sr = p.dt == LT_DTYPE_BF16 ? p.sr : 0;
    it->gscale = gscale;
    it->n = n;
}

static int push_ew(lt_cuda *c, int kind, const lt_ktensor *t, const void *h, size_t hsize) {
    QEntry q;
    fill_common(&q.it, t->p, t->g, t->gscale, t->n);
    for (int k = 0; k < 4; k++) {
        q.it.s[k] = t->s[k].ptr;
        q.it.sdt[k] = (uint8_t)t->s[k].dt;
    }
    memcpy(&q.it.h, h, hsize);
    q.kind = kind;
    q.tab[0] = q.tab[1] = NULL;
    q.it.vec = (uint8_t)lt_cu_vec_ok(&q.it, kind);
    try {
        c->queue.push_back(q);
    } catch (...) {
        return fail(c, "out of memory queueing a tensor");
    }
    return 0;
}

extern "C" {

int lt_kernel_adam_cuda(lt_cuda *c, const lt_ktensor *t, const lt_kadam *h) {
    lt_ktensor u = *t;
    if (!h->amsgrad) u.s[2].ptr = NULL; /* as the CPU kernel: max_exp_avg_sq only with amsgrad */
    return push_ew(c, LT_CU_ADAM, &u, h, sizeof *h);
}
int lt_kernel_anyprecision_cuda(lt_cuda *c, const lt_ktensor *t, const lt_kanyprec *h) {
    return push_ew(c, LT_CU_ANYPREC, t, h, sizeof *h);
}
int lt_kernel_sgd_cuda(lt_cuda *c, const lt_ktensor *t, const lt_ksgd *h) { return push_ew(c, LT_CU_SGD, t, h, sizeof *h); }
int lt_kernel_adagrad_cuda(lt_cuda *c, const lt_ktensor *t, const lt_kadagrad *h) {
    return push_ew(c, LT_CU_ADAGRAD, t, h, sizeof *h);
}
int lt_kernel_rmsprop_cuda(lt_cuda *c, const lt_ktensor *t, const lt_krmsprop *h) {
    return push_ew(c, LT_CU_RMSPROP, t, h, sizeof *h);
}
int lt_kernel_lion_cuda(lt_cuda *c, const lt_ktensor *t, const lt_klion *h) { return push_ew(c, LT_CU_LION, t, h, sizeof *h); }
int lt_kernel_bnb32_adam_cuda(lt_cuda *c, const lt_ktensor *t, const lt_kbnb *h) {
    return push_ew(c, LT_CU_BNB32_ADAM, t, h, sizeof *h);
}
int lt_kernel_bnb32_lion_cuda(lt_cuda *c, const lt_ktensor *t, const lt_kbnb *h) {
    return push_ew(c, LT_CU_BNB32_LION, t, h, sizeof *h);
}
int lt_kernel_ao_adam_plain_cuda(lt_cuda *c, const lt_ktensor *t, const lt_kao *h) {
    return push_ew(c, LT_CU_AO_PLAIN, t, h, sizeof *h);
}

} /* extern "C" */

static int push_q(lt_cuda *c, int kind, lt_karr p, lt_karr g, float gscale, size_t n, const lt_kqstate *m,
                  const lt_kqstate *v, const void *h, size_t hsize) {
    QEntry q;
    fill_common(&q.it, p, g, gscale, n);
    q.it.q[0] = m->codes;
    q.it.q[1] = m->scale;
    q.it.q[2] = v ? v->codes : NULL;
    q.it.q[3] = v ? v->scale : NULL;
    memcpy(&q.it.h, h, hsize);
    q.kind = kind;
    q.tab[0] = m->tab;
    q.tab[1] = v ? v->tab : NULL;
    q.it.vec = (uint8_t)lt_cu_vec_ok(&q.it, kind);
    if (kind == LT_CU_BNB8_ADAM && lt_cu_bnb8_nb_usable(static_cast<const lt_kbnb *>(h))) q.it.flags |= LT_CU_ITEM_NB;
    try {
        c->queue.push_back(q);
    } catch (...) {
        return fail(c, "out of memory queueing a tensor");
    }
    return 0;
}

extern "C" {

int lt_kernel_bnb8_adam_cuda(lt_cuda *c, lt_karr p, lt_karr g, float gscale, size_t n, lt_kqstate m, lt_kqstate v,
                             const lt_kbnb *h) {
    return push_q(c, LT_CU_BNB8_ADAM, p, g, gscale, n, &m, &v, h, sizeof *h);
}
int lt_kernel_bnb8_lion_cuda(lt_cuda *c, lt_karr p, lt_karr g, float gscale, size_t n, lt_kqstate m,
                             const lt_kbnb *h) {
    return push_q(c, LT_CU_BNB8_LION, p, g, gscale, n, &m, NULL, h, sizeof *h);
}
int lt_kernel_ao_adam_cuda(lt_cuda *c, lt_karr p, lt_karr g, float gscale, size_t n, lt_kqstate m, lt_kqstate v,
                           const lt_kao *h) {
    return push_q(c, h->bits == 4 ? LT_CU_AO4 : LT_CU_AO8, p, g, gscale, n, &m, &v, h, sizeof *h);
}

int lt_kernel_adafactor_cuda(lt_cuda *c, const lt_kaf_args *a) {
    QEntry q;
    size_t n = a->batch * a->rows * a->cols;
    fill_common(&q.it, a->p, a->g, a->gscale, n);
    lt_kaf_dev *d = &q.it.h.af;
    d->rho = a->rho;
    d->eps2 = a->eps2;
    d->clip = a->clip_threshold;
    d->wd = a->weight_decay;
    d->eps1 = a->eps1;
    d->b2t = a->b2t;
    d->omb2t = a->omb2t;
    d->b1 = a->b1;
    d->batch = a->batch;
    d->rows = a->rows;
    d->cols = a->cols;
    d->R = a->R;
    d->C = a->C;
    d->m = a->m;
    d->factored = a->factored;
    d->scale_parameter = a->scale_parameter;
    q.kind = LT_CU_AF_APPLY;
    q.tab[0] = q.tab[1] = NULL;
    q.it.vec = (uint8_t)lt_cu_vec_ok(&q.it, LT_CU_AF_APPLY);
    try {
        c->queue.push_back(q);
    } catch (...) {
        return fail(c, "out of memory queueing a tensor");
    }
    return 0;
}

void lt_cuda_discard(lt_cuda *c) { c->queue.clear(); }

} /* extern "C" */

/* The device copy of a host search table (uploaded once; tables never change). */
static const lt_cu_qtab *dev_table(lt_cuda *c, const lt_qtable *t) {
    if (!t) return NULL;
    for (size_t i = 0; i < c->tabs.size(); i++)
        if (c->tabs[i].host == t) return c->tabs[i].dev;
    lt_cu_qtab *h = (lt_cu_qtab *)malloc(sizeof *h);
    if (!h) {
        fail(c, "out of memory for a quantization table");
        return NULL;
    }
    if (lt_cu_qtab_build(h, t) != 0) {
        free(h);
        fail(c, "quantization map of %d values cannot be used on the device", t->n);
        return NULL;
    }
    DevTab d = {t, NULL};
    cudaError_t e = cudaMalloc((void **)&d.dev, sizeof(lt_cu_qtab));
    if (e == cudaSuccess) e = cudaMemcpyAsync(d.dev, h, sizeof *h, cudaMemcpyHostToDevice, c->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(c->stream); /* h is freed next */
    free(h);
    if (e != cudaSuccess) {
        cudaGetLastError();
        if (d.dev) cudaFree(d.dev);
        fail(c, "CUDA error uploading a quantization table: %s", cudaGetErrorString(e));
        return NULL;
    }
    c->tabs.push_back(d);
    return d.dev;
}

/* Grows a device buffer to at least `bytes` (waits for the stream before freeing the old one). */
static int grow(lt_cuda *c, void **buf, size_t *cap, size_t bytes, const char *what) {
    if (bytes <= *cap) return 0;
    size_t ncap = std::max(bytes, *cap * 3 / 2);
    CU(c, cudaStreamSynchronize(c->stream), what);
    if (*buf) cudaFree(*buf);
    *buf = NULL;
    *cap = 0;
    CU(c, cudaMalloc(buf, ncap), what);
    *cap = ncap;
    return 0;
}

/* Appends launch L over the items it.. (count) to the plan. */
static void add_launch(std::vector<Launch> &plan, std::vector<lt_cu_item> &items, int kind, int variant,
                       const std::vector<lt_cu_item> &src, const lt_cu_qtab *t0, const lt_cu_qtab *t1, int block) {
    if (src.empty()) return;
    Launch L;
    L.kind = kind;
    L.variant = variant;
    L.first = (int)items.size();
    L.count = (int)src.size();
    L.t0 = t0;
    L.t1 = t1;
    L.block = block;
    L.maxcols = 0;
    items.insert(items.end(), src.begin(), src.end());
    L.nunits = lt_cu_assign_units(kind, &items[L.first], L.count);
    for (int i = 0; i < L.count; i++)
        if (items[L.first + i].h.af.cols > L.maxcols && kind == LT_CU_AF_ROWS) L.maxcols = items[L.first + i].h.af.cols;
    if (L.nunits) plan.push_back(L);
}

/* whether the environment variable name is set to value exactly */
static bool env_is(const char *name, const char *value) {
    const char *v = getenv(name);
    return v && !strcmp(v, value);
}

/* LT_ADAFACTOR_PIPE=0 selects the Adafactor row pass that loads each group of
 * rows when it starts instead of staging the next tiles of g, =4 the one that
 * stages three tiles ahead (4 stages) instead of one (=2, the default), =1b
 * the one that stages one tile ahead with one barrier a group of rows, =2b
 * two tiles ahead with one barrier:
 * identical results, for timing one against another. Read at each flush, so a
 * test may switch it between steps. Returns the lt_cu_launch_af variant bits. */
static int af_pipe_bits() {
    return env_is("LT_ADAFACTOR_PIPE", "0")    ? 0
           : env_is("LT_ADAFACTOR_PIPE", "4")  ? 4
           : env_is("LT_ADAFACTOR_PIPE", "1b") ? 4 | 8 | 32
           : env_is("LT_ADAFACTOR_PIPE", "2b") ? 4 | 32 | 64
                                               : 4 | 8;
}

/* LT_ADAFACTOR_APPLY=2 selects the Adafactor apply pass that loads two groups of 4 elements per thread before
 * stepping them (the default loads one, as the elementwise kernels): identical results, for timing one against
 * the other. Read at each flush. Returns the lt_cu_launch_af variant bits. */
static int af_apply_bits() { return env_is("LT_ADAFACTOR_APPLY", "2") ? 16 : 0; }

/* The low-bit kernels' variants (lt_cu_launch_q), for timing them against the default: LT_LOWBIT_HOT=0 makes
 * every warp take the general step, LT_LOWBIT_REGS=80 selects the instantiation of up to 80 registers (3 CTAs
 * per SM) instead of the one held to 64 (4 CTAs, the default; blocks of 128 and 256 only, others have the one),
 * LT_LOWBIT_VOTE=1 the 64-register one's voted step (bnb 8-bit AdamW; lowbit.cuh). The same results. Read at
 * each flush. */
static int lowbit_variant() {
    const int r64 = env_is("LT_LOWBIT_REGS", "80") ? 0 : 2;
    return (env_is("LT_LOWBIT_HOT", "0") ? 1 : 0) | r64 | (r64 && env_is("LT_LOWBIT_VOTE", "1") ? 4 : 0);
}

/* ---- the choice of a kernel's form by its times (cu_tune.h) ---- */

#define LT_CU_TUNE_SHAPES 64 /* launch shapes tuned per context; later ones keep the default form */

/* Reads back the timed launches whose events are done, into their shapes' choices; the others stay queued.
 * Never waits. */
static void tune_harvest(lt_cuda *c) {
    size_t keep = 0;
    for (size_t i = 0; i < c->timed.size(); i++) {
        Timed &t = c->timed[i];
        cudaError_t e = cudaEventQuery(t.b);
        if (e == cudaErrorNotReady) {
            cudaGetLastError(); /* some runtimes record "not ready" as the last error, which a launch's check
                                   would then report as its own */
            c->timed[keep++] = t;
            continue;
        }
        float ms = -1.0f;
        if (e != cudaSuccess || cudaEventElapsedTime(&ms, t.a, t.b) != cudaSuccess) ms = -1.0f;
        cudaGetLastError();
        lt_cu_tune_sample(&c->tunes[t.tune], t.cand, ms);
        c->spare.push_back(t.a);
        c->spare.push_back(t.b);
    }
    c->timed.resize(keep);
}

static cudaEvent_t tune_event(lt_cuda *c) {
    cudaEvent_t e = NULL;
    if (!c->spare.empty()) {
        e = c->spare.back();
        c->spare.pop_back();
    } else if (cudaEventCreate(&e) != cudaSuccess) {
        cudaGetLastError();
        e = NULL;
    }
    return e;
}

/* The variant bits of launch L: the form its shape chose, or while choosing the next to time (*tune, *cand set
 * then). The environment's switches (LT_LOWBIT_HOT, LT_LOWBIT_REGS, LT_LOWBIT_VOTE, LT_ADAFACTOR_PIPE,
 * LT_ADAFACTOR_APPLY) fix the form they name, LT_TUNE=0 keeps every default, and so does a found-inf flag (a
 * skipped step's launches return at once: their times would mislead). */
static int launch_form(lt_cuda *c, const Launch &L, long *tune, int *cand) {
    *tune = -1;
    const bool q = L.kind >= LT_CU_BNB8_ADAM && L.kind <= LT_CU_AO4;
    int fixed;
    bool forced;
    if (q) {
        fixed = lowbit_variant();
        forced = getenv("LT_LOWBIT_HOT") || getenv("LT_LOWBIT_REGS") || getenv("LT_LOWBIT_VOTE");
    } else if (L.kind == LT_CU_AF_ROWS) fixed = L.variant | af_pipe_bits(), forced = getenv("LT_ADAFACTOR_PIPE") != NULL;
    else if (L.kind == LT_CU_AF_APPLY) fixed = L.variant | af_apply_bits(), forced = getenv("LT_ADAFACTOR_APPLY") != NULL;
    else return L.variant | af_pipe_bits() | af_apply_bits();
    if (forced || c->flag || env_is("LT_TUNE", "0")) return fixed;
    const int base = q ? 0 : L.variant;
    size_t i = 0;
    while (i < c->tunes.size() && !(c->tunes[i].kind == L.kind && c->tunes[i].base == base &&
                                   c->tunes[i].block == (q ? L.block : 0) && c->tunes[i].nunits == L.nunits))
        i++;
    if (i == c->tunes.size()) {
        int forms[LT_CU_TUNE_MAXC];
        int n = lt_cu_tune_forms(L.kind, q ? L.block : 0, base, forms);
        if (n < 2 || c->tunes.size() >= LT_CU_TUNE_SHAPES) return fixed;
        lt_cu_tune t;
        lt_cu_tune_init(&t, L.kind, q ? L.block : 0, base, L.nunits, forms, n);
        c->tunes.push_back(t);
    }
    int timed = 0;
    const int ci = lt_cu_tune_next(&c->tunes[i], &timed);
    if (timed) *tune = (long)i, *cand = ci;
    return c->tunes[i].cand[ci];
}

static int run_plan(lt_cuda *c, std::vector<Launch> &plan, std::vector<lt_cu_item> &items) {
    if (items.empty() || plan.empty()) return 0;
    /* one buffer: per launch its items, then their unit0 values for the search (lt_cu_starts) */
    std::vector<size_t> at(plan.size());
    size_t bytes = 0;
    for (size_t k = 0; k < plan.size(); k++) at[k] = bytes, bytes += lt_cu_list_bytes(plan[k].count);
    try {
        c->list.assign(bytes, 0);
        /* the timing bookkeeping below then never allocates (nothing there may throw) */
        c->tunes.reserve(LT_CU_TUNE_SHAPES);
        c->timed.reserve(c->timed.size() + plan.size());
        c->spare.reserve(c->spare.size() + 2 * (c->timed.size() + plan.size()));
    } catch (...) {
        return fail(c, "out of memory building the tensor list");
    }
    for (size_t k = 0; k < plan.size(); k++) {
        const Launch &L = plan[k];
        memcpy(&c->list[at[k]], &items[L.first], (size_t)L.count * sizeof(lt_cu_item));
        uint64_t *start = (uint64_t *)(void *)&c->list[at[k] + (size_t)L.count * sizeof(lt_cu_item)];
        for (int i = 0; i < L.count; i++) start[i] = items[L.first + i].unit0;
    }
    if (grow(c, (void **)&c->d_items, &c->d_items_cap, bytes, "allocating the tensor list")) return -1;
    /* pageable source: the copy is staged before the call returns, so the host buffer can be reused */
    CU(c, cudaMemcpyAsync(c->d_items, c->list.data(), bytes, cudaMemcpyHostToDevice, c->stream), "uploading the tensor list");
    tune_harvest(c);
    for (size_t k = 0; k < plan.size(); k++) {
        const Launch &L = plan[k];
        const lt_cu_item *d = (const lt_cu_item *)(const void *)((const char *)c->d_items + at[k]);
        cudaError_t e;
        long tune = -1;
        int cand = 0, form = 0;
        Timed tm = {0, 0, NULL, NULL};
        if (L.kind > LT_CU_CHECK) {
            form = launch_form(c, L, &tune, &cand);
            /* the timing events go either side of the launch; without them the launch is simply not timed */
            if (tune >= 0 && (tm.a = tune_event(c)) && (tm.b = tune_event(c)) &&
                cudaEventRecord(tm.a, c->stream) != cudaSuccess)
                cudaGetLastError(), tune = -1;
        }
        if (L.kind == LT_CU_CHECK) e = lt_cu_launch_check(d, L.count, L.nunits, c->flag, c->stream);
        else if (L.kind <= LT_CU_EW_LAST) e = lt_cu_launch_ew(L.kind, d, L.count, L.nunits, c->flag, c->stream);
        else if (L.kind >= LT_CU_BNB8_ADAM && L.kind <= LT_CU_AO4)
            e = lt_cu_launch_q(L.kind, L.block, d, L.count, L.nunits, L.t0, L.t1, c->flag, form, c->sm_count,
                               c->stream);
        else e = lt_cu_launch_af(L.kind, form, d, L.count, L.nunits, L.maxcols, c->flag, c->stream);
        if (e == cudaSuccess && tune >= 0 && tm.b && cudaEventRecord(tm.b, c->stream) == cudaSuccess) {
            tm.tune = (size_t)tune;
            tm.cand = cand;
            c->timed.push_back(tm);
        } else {
            if (tune >= 0) cudaGetLastError(); /* a failed record: the launch goes untimed */
            if (tm.a) c->spare.push_back(tm.a);
            if (tm.b) c->spare.push_back(tm.b);
        }
        if (e != cudaSuccess) {
            cudaGetLastError();
            return fail(c, "CUDA error launching optimizer kernel (kind %d, %d tensors): %s", L.kind, L.count,
                        cudaGetErrorString(e));
        }
    }
    return 0;
}

/* the check launch over the gradients of the listed items */
static void add_check(std::vector<Launch> &plan, std::vector<lt_cu_item> &items, const std::vector<lt_cu_item> &src) {
    std::vector<lt_cu_item> chk;
    chk.reserve(src.size());
    for (size_t i = 0; i < src.size(); i++) {
        lt_cu_item it;
        memset(&it, 0, sizeof it);
        it.g = src[i].g;
        it.gdt = src[i].gdt;
        it.n = src[i].n;
        it.gscale = src[i].gscale;
        it.vec = (uint8_t)lt_cu_vec_ok(&it, LT_CU_CHECK);
        chk.push_back(it);
    }
    add_launch(plan, items, LT_CU_CHECK, 0, chk, NULL, NULL, 0);
}

extern "C" {

int lt_cuda_flush(lt_cuda *c) {
    if (c->queue.empty()) return 0;
    std::vector<Launch> plan;
    std::vector<lt_cu_item> &items = c->host_items;
    items.clear();
    try {
        std::vector<lt_cu_item> all;
        for (size_t i = 0; i < c->queue.size(); i++) all.push_back(c->queue[i].it);
        if (c->flag && c->check) add_check(plan, items, all);
        /* elementwise kinds: one launch each */
        for (int kind = 0; kind <= LT_CU_EW_LAST; kind++) {
            std::vector<lt_cu_item> sel;
            for (size_t i = 0; i < c->queue.size(); i++)
                if (c->queue[i].kind == kind) sel.push_back(c->queue[i].it);
            add_launch(plan, items, kind, 0, sel, NULL, NULL, 0);
        }
        /* low-bit kinds: one launch per (kind, block size, pair of tables) */
        std::vector<bool> done(c->queue.size(), false);
        for (size_t i = 0; i < c->queue.size(); i++) {
            const QEntry &qi = c->queue[i];
            if (done[i] || qi.kind < LT_CU_BNB8_ADAM || qi.kind > LT_CU_AO4) continue;
            size_t block = qi.kind == LT_CU_AO8 || qi.kind == LT_CU_AO4 ? qi.it.h.ao.block : qi.it.h.bnb.block;
            std::vector<lt_cu_item> sel;
            for (size_t j = i; j < c->queue.size(); j++) {
                const QEntry &qj = c->queue[j];
                size_t bj = qj.kind == LT_CU_AO8 || qj.kind == LT_CU_AO4 ? qj.it.h.ao.block : qj.it.h.bnb.block;
                if (!done[j] && qj.kind == qi.kind && bj == block && qj.tab[0] == qi.tab[0] && qj.tab[1] == qi.tab[1]) {
                    sel.push_back(qj.it);
                    done[j] = true;
                }
            }
            const lt_cu_qtab *t0 = dev_table(c, qi.tab[0]), *t1 = qi.tab[1] ? dev_table(c, qi.tab[1]) : t0;
            if (!t0 || !t1) {
                c->queue.clear();
                return -1;
            }
            add_launch(plan, items, qi.kind, 0, sel, t0, t1, (int)block);
        }
        /* Adafactor: lay out the workspace, then psum, rows, vec, final, apply */
        std::vector<lt_cu_item> af;
        for (size_t i = 0; i < c->queue.size(); i++)
            if (c->queue[i].kind == LT_CU_AF_APPLY) af.push_back(c->queue[i].it);
        if (!af.empty()) {
            size_t ws = 0;
            for (size_t i = 0; i < af.size(); i++) ws += lt_cu_af_layout(&af[i], NULL);
            if (grow(c, (void **)&c->d_ws, &c->ws_cap, ws, "allocating Adafactor's workspace")) {
                c->queue.clear();
                return -1;
            }
            char *base = c->d_ws;
            for (size_t i = 0; i < af.size(); i++) base += lt_cu_af_layout(&af[i], base);
            std::vector<lt_cu_item> sel;
            for (size_t i = 0; i < af.size(); i++)
                if (af[i].h.af.scale_parameter) sel.push_back(af[i]);
            add_launch(plan, items, LT_CU_AF_PSUM, 0, sel, NULL, NULL, 0);
            for (int variant = 0; variant < 4; variant++) { /* bit 0: vectorized, bit 1: shared-memory sums */
                sel.clear();
                for (size_t i = 0; i < af.size(); i++) {
                    const lt_kaf_dev &d = af[i].h.af;
                    int v = (af[i].vec ? 1 : 0) | (d.cols <= c->af_smcols ? 2 : 0);
                    if (d.factored && v == variant) sel.push_back(af[i]);
                }
                /* a unit's cost grows with its columns: the widest first, so that the last wave is short */
                std::stable_sort(sel.begin(), sel.end(), [](const lt_cu_item &x, const lt_cu_item &y) {
                    return x.h.af.cols > y.h.af.cols;
                });
                add_launch(plan, items, LT_CU_AF_ROWS, variant, sel, NULL, NULL, 0);
            }
            sel.clear();
            for (size_t i = 0; i < af.size(); i++)
                if (!af[i].h.af.factored) sel.push_back(af[i]);
            add_launch(plan, items, LT_CU_AF_VEC, 0, sel, NULL, NULL, 0);
            add_launch(plan, items, LT_CU_AF_FINAL, 0, af, NULL, NULL, 0);
            add_launch(plan, items, LT_CU_AF_APPLY, 0, af, NULL, NULL, 0);
        }
    } catch (...) {
        c->queue.clear();
        return fail(c, "out of memory planning the step's launches");
    }
    c->queue.clear();
    return run_plan(c, plan, items);
}

int lt_cuda_tune_report(lt_cuda *c, char *buf, size_t len) {
    if (len) buf[0] = 0;
    tune_harvest(c);
    size_t at = 0;
    int lines = 0;
    for (size_t i = 0; i < c->tunes.size() && at + 1 < len; i++) {
        at += (size_t)lt_cu_tune_describe(&c->tunes[i], buf + at, len - at);
        if (at + 1 < len) buf[at++] = '\n', buf[at] = 0;
        lines++;
    }
    return lines;
}

int lt_cuda_check_finite(lt_cuda *c, const lt_ktensor *t, int count) {
    if (!c->flag) return fail(c, "check_finite: no found-inf flag is set (lt_optim_set_found_inf)");
    std::vector<Launch> plan;
    std::vector<lt_cu_item> &items = c->host_items;
    items.clear();
    try {
        std::vector<lt_cu_item> src;
        for (int i = 0; i < count; i++) {
            lt_cu_item it;
            fill_common(&it, t[i].p, t[i].g, t[i].gscale, t[i].n);
            src.push_back(it);
        }
        add_check(plan, items, src);
    } catch (...) {
        return fail(c, "out of memory planning the check");
    }
    return run_plan(c, plan, items);
}

/* ---- helpers ---- */

int lt_cuda_malloc_raw(void **ptr, size_t bytes, char *err, size_t errlen) {
    cudaError_t e = cudaMalloc(ptr, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        cudaGetLastError();
        *ptr = NULL;
        set_err(err, errlen, "cudaMalloc of %zu bytes: %s", bytes, cudaGetErrorString(e));
        return -1;
    }
    return 0;
}

void lt_cuda_free_raw(void *ptr) {
    if (!ptr) return;
    cudaFree(ptr);
    cudaGetLastError();
}

int lt_cuda_memcpy_raw(void *dst, const void *src, size_t bytes, int kind, char *err, size_t errlen) {
    cudaMemcpyKind k = kind == 0 ? cudaMemcpyHostToDevice : kind == 1 ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice;
    /* after the work queued on every stream: cudaMemcpy alone (the legacy stream) would not wait for a
     * non-blocking stream's, such as an optimizer's after lt_optim_set_stream */
    cudaError_t e = cudaDeviceSynchronize();
    if (e == cudaSuccess && bytes) e = cudaMemcpy(dst, src, bytes, k);
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    if (e != cudaSuccess) {
        cudaGetLastError();
        set_err(err, errlen, "cudaMemcpy of %zu bytes: %s", bytes, cudaGetErrorString(e));
        return -1;
    }
    return 0;
}

int lt_cuda_stream_create(void **stream, char *err, size_t errlen) {
    cudaStream_t s;
    cudaError_t e = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        cudaGetLastError();
        set_err(err, errlen, "cudaStreamCreate: %s", cudaGetErrorString(e));
        return -1;
    }
    *stream = (void *)s;
    return 0;
}

void lt_cuda_stream_destroy(void *stream) {
    if (!stream) return;
    cudaStreamDestroy((cudaStream_t)stream);
    cudaGetLastError();
}

void lt_cuda_describe(char *buf, size_t len) {
    int dev = 0, n = 0;
    cudaDeviceProp prop;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaSuccess && n > 0) e = cudaGetDevice(&dev);
    if (e == cudaSuccess && n > 0) e = cudaGetDeviceProperties(&prop, dev);
    if (e != cudaSuccess || n == 0) {
        cudaGetLastError();
        snprintf(buf, len, "no CUDA device (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "none found");
        return;
    }
    int rt = 0, drv = 0;
    cudaRuntimeGetVersion(&rt);
    cudaDriverGetVersion(&drv);
    snprintf(buf, len, "%s, %d SMs, cc %d.%d, %.1f GiB, %.0f MB L2, runtime %d, driver %d%s", prop.name,
             prop.multiProcessorCount, prop.major, prop.minor, (double)prop.totalGlobalMem / (1 << 30),
             (double)prop.l2CacheSize / 1e6, rt, drv,
             cc_supported(prop) ? "" : " (leantrain's CUDA kernels need compute capability 8.0 or later)");
}

int lt_cuda_time_copy(void *dst, const void *src, size_t bytes, int reps, double *best_ms, double *median_ms, char *err,
                      size_t errlen) {
    cudaEvent_t a = NULL, b = NULL;
    std::vector<double> t;
    cudaError_t e = cudaEventCreate(&a);
    if (e == cudaSuccess) e = cudaEventCreate(&b);
    if (e == cudaSuccess) e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0); /* warm-up */
    for (int r = 0; r < reps && e == cudaSuccess; r++) {
        float ms = 0;
        e = cudaEventRecord(a, 0);
        if (e == cudaSuccess) e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0);
        if (e == cudaSuccess) e = cudaEventRecord(b, 0);
        if (e == cudaSuccess) e = cudaEventSynchronize(b);
        if (e == cudaSuccess) e = cudaEventElapsedTime(&ms, a, b);
        t.push_back(ms);
    }
    if (a) cudaEventDestroy(a);
    if (b) cudaEventDestroy(b);
    if (e != cudaSuccess || t.empty()) {
        cudaGetLastError();
        set_err(err, errlen, "timing a device copy: %s", cudaGetErrorString(e));
        return -1;
    }
    std::sort(t.begin(), t.end());
    *best_ms = t[0];
    *median_ms = t[t.size() / 2];
    return 0;
}

struct lt_cuda_timer {
    cudaStream_t s;
    cudaEvent_t a, b;
};

lt_cuda_timer *lt_cuda_timer_create(void *stream, char *err, size_t errlen) {
    lt_cuda_timer *t = (lt_cuda_timer *)calloc(1, sizeof *t);
    if (!t) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    t->s = (cudaStream_t)stream;
    cudaError_t e = cudaEventCreate(&t->a);
    if (e == cudaSuccess) e = cudaEventCreate(&t->b);
    if (e != cudaSuccess) {
        cudaGetLastError();
        set_err(err, errlen, "cudaEventCreate: %s", cudaGetErrorString(e));
        lt_cuda_timer_destroy(t);
        return NULL;
    }
    return t;
}

int lt_cuda_timer_start(lt_cuda_timer *t) { return cudaEventRecord(t->a, t->s) == cudaSuccess ? 0 : -1; }

int lt_cuda_timer_stop(lt_cuda_timer *t) { return cudaEventRecord(t->b, t->s) == cudaSuccess ? 0 : -1; }

int lt_cuda_timer_elapsed(lt_cuda_timer *t, double *ms) {
    float f = 0;
    if (cudaEventSynchronize(t->b) != cudaSuccess || cudaEventElapsedTime(&f, t->a, t->b) != cudaSuccess) {
        cudaGetLastError();
        return -1;
    }
    *ms = f;
    return 0;
}

void lt_cuda_timer_destroy(lt_cuda_timer *t) {
    if (!t) return;
    if (t->a) cudaEventDestroy(t->a);
    if (t->b) cudaEventDestroy(t->b);
    free(t);
}

} /* extern "C" */
