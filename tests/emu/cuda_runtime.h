/* A CPU emulation of the part of the CUDA runtime and thread model that the
 * leantrain kernels use (src/kernels/cuda, built with LT_CUDA_EMU by
 * `make cuda-emu`), so that their sources, the flush logic and the optimizer's
 * device paths run on a machine without a GPU, under AddressSanitizer.
 *
 * Device memory is host memory (registered, so that cudaPointerGetAttributes
 * tells device from host, and filled with all ones bits, NaN as a float, when
 * allocated). A launch runs its blocks one after another, last block first (any
 * order is one a GPU may choose; LT_EMU_BLOCKS=forward runs them first to
 * last); the threads of a block are real threads (a pool), __syncthreads a
 * barrier, a warp shuffle an exchange through a buffer between two warp
 * barriers, static shared memory a static local (one block at a time: it keeps
 * what the last block left, where a GPU's would be undefined), dynamic shared
 * memory set to all ones bits before each block. Vector accesses check their
 * alignment.
 *
 * Asynchrony: every kernel, cudaMemcpyAsync, cudaMemsetAsync, event record and
 * emulated GEMM is queued on its stream and runs only when the host has to wait
 * for it: cudaStreamSynchronize, cudaEventSynchronize (up to the event),
 * cudaDeviceSynchronize, cudaFree / cudaFreeHost / cudaStreamDestroy (which
 * synchronize on a GPU too), a cudaMemcpyAsync into pageable host memory
 * (returns when done, as on a GPU), and cudaMemcpy (the legacy default stream:
 * it waits for that stream's queue, not for non-blocking streams). That is the
 * latest a GPU may run them, so a host that reads a result it has not waited
 * for, refills pinned memory an earlier copy still reads, or orders two streams
 * by nothing but luck gets wrong numbers here, every time, where a GPU would
 * get them now and then. A copy from pageable host memory takes its source at
 * the call, as the driver's staging does. LT_EMU_SYNC=1 runs everything at the
 * call instead (to tell an asynchrony bug from another). Not emulated: timing,
 * memory ordering between blocks. */
#ifndef LT_TESTS_EMU_CUDA_RUNTIME_H
#define LT_TESTS_EMU_CUDA_RUNTIME_H

#include <algorithm>
#include <atomic>
#include <barrier>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <semaphore>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define CUDART_VERSION 13000

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};
inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

struct alignas(16) float4 {
    float x, y, z, w;
};
struct alignas(16) int4 {
    int x, y, z, w;
};
struct alignas(8) uint2 {
    unsigned x, y;
};
struct alignas(16) uint4 {
    unsigned x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }
inline uint32_t max(uint32_t a, uint32_t b) { return a > b ? a : b; }

enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorNotReady = 600,
    cudaErrorMisalignedAddress = 716,
};
typedef enum cudaError cudaError_t;
typedef struct lt_emu_stream *cudaStream_t;
typedef struct lt_emu_event *cudaEvent_t;
enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
};
enum cudaMemoryType { cudaMemoryTypeUnregistered = 0, cudaMemoryTypeHost = 1, cudaMemoryTypeDevice = 2, cudaMemoryTypeManaged = 3 };
struct cudaPointerAttributes {
    enum cudaMemoryType type;
    int device;
    void *devicePointer, *hostPointer;
};
struct cudaDeviceProp {
    char name[256];
    int multiProcessorCount, major, minor, l2CacheSize;
    size_t totalGlobalMem;
};
enum cudaDeviceAttr { cudaDevAttrConcurrentManagedAccess = 89, cudaDevAttrMaxSharedMemoryPerBlockOptin = 97 };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
enum cudaMemLocationType { cudaMemLocationTypeInvalid = 0, cudaMemLocationTypeDevice = 1 };
struct cudaMemLocation {
    enum cudaMemLocationType type;
    int id;
};
#define cudaMemAttachGlobal 1u
#define cudaStreamNonBlocking 1u
#define cudaEventDisableTiming 2u

/* ---- memory: a registry of allocations ---- */
struct lt_emu_alloc {
    size_t bytes;
    enum cudaMemoryType type;
};
inline std::mutex &lt_emu_mu() {
    static std::mutex m;
    return m;
}
inline std::map<uintptr_t, lt_emu_alloc> &lt_emu_allocs() {
    static std::map<uintptr_t, lt_emu_alloc> m;
    return m;
}
inline cudaError_t &lt_emu_last() {
    static cudaError_t e = cudaSuccess;
    return e;
}
inline cudaError_t lt_emu_err(cudaError_t e) {
    if (e != cudaSuccess) lt_emu_last() = e;
    return e;
}
/* ---- streams: queues of work that runs when the host waits for it ---- */
struct lt_emu_stream {
    std::deque<std::pair<long, std::function<void()>>> q; /* (sequence number, work), oldest first */
    long done = 0;                                        /* sequence number of the last work run */
};
/* one lock for every queue: enqueueing and draining are serialized across host threads */
inline std::recursive_mutex &lt_emu_qmu() {
    static std::recursive_mutex m;
    return m;
}
inline lt_emu_stream &lt_emu_legacy() {
    static lt_emu_stream s;
    return s;
}
/* the streams made by cudaStreamCreateWithFlags, alive */
inline std::vector<lt_emu_stream *> &lt_emu_streams() {
    static std::vector<lt_emu_stream *> v;
    return v;
}
inline lt_emu_stream *lt_emu_st(cudaStream_t s) { return s ? s : &lt_emu_legacy(); }
inline bool lt_emu_sync_mode() {
    static const bool on = getenv("LT_EMU_SYNC") && strcmp(getenv("LT_EMU_SYNC"), "0") != 0;
    return on;
}
/* runs the queued work of s, oldest first, up to and including sequence number `upto` */
inline void lt_emu_drain(lt_emu_stream *s, long upto = LONG_MAX) {
    std::lock_guard<std::recursive_mutex> g(lt_emu_qmu());
    while (!s->q.empty() && s->q.front().first <= upto) {
        std::pair<long, std::function<void()>> w = std::move(s->q.front());
        s->q.pop_front();
        w.second();
        s->done = w.first;
    }
}
inline void lt_emu_drain_all() {
    std::lock_guard<std::recursive_mutex> g(lt_emu_qmu());
    lt_emu_drain(&lt_emu_legacy());
    for (lt_emu_stream *s : lt_emu_streams()) lt_emu_drain(s);
}
/* queues fn on stream s (runs it at once under LT_EMU_SYNC=1); returns its sequence number */
inline long lt_emu_enqueue(cudaStream_t s, std::function<void()> fn) {
    std::lock_guard<std::recursive_mutex> g(lt_emu_qmu());
    static long seq = 0;
    lt_emu_stream *st = lt_emu_st(s);
    st->q.emplace_back(++seq, std::move(fn));
    const long mine = seq;
    if (lt_emu_sync_mode()) lt_emu_drain(st);
    return mine;
}

/* the allocation holding p (and its type), or Unregistered */
inline enum cudaMemoryType lt_emu_kind(const void *p, size_t bytes = 1) {
    std::lock_guard<std::mutex> g(lt_emu_mu());
    auto &m = lt_emu_allocs();
    auto it = m.upper_bound((uintptr_t)p);
    if (it == m.begin()) return cudaMemoryTypeUnregistered;
    --it;
    if ((uintptr_t)p + bytes > it->first + it->second.bytes) return cudaMemoryTypeUnregistered;
    return it->second.type;
}
/* The emulated device's memory: LT_EMU_MEM_MIB (default 8192, fractions allowed; cudaGetDeviceProperties'
 * totalGlobalMem).
 * cudaMalloc's allocations (in 256-byte units) count against it and one past it fails with
 * cudaErrorMemoryAllocation, as on a full GPU; cudaMemGetInfo reports what is left. Managed and pinned host
 * memory do not count (a GPU pages managed memory in and out). */
inline size_t lt_emu_mem_total();
inline size_t &lt_emu_dev_used() {
    static size_t used = 0;
    return used;
}
inline cudaError_t lt_emu_alloc_(void **p, size_t bytes, enum cudaMemoryType type) {
    size_t n = (bytes + 255) / 256 * 256;
    if (type == cudaMemoryTypeDevice) {
        std::lock_guard<std::mutex> g(lt_emu_mu());
        if (n > lt_emu_mem_total() - lt_emu_dev_used()) return *p = nullptr, lt_emu_err(cudaErrorMemoryAllocation);
        lt_emu_dev_used() += n;
    }
    *p = aligned_alloc(256, n ? n : 256);
    if (!*p) {
        std::lock_guard<std::mutex> g(lt_emu_mu());
        if (type == cudaMemoryTypeDevice) lt_emu_dev_used() -= n;
        return lt_emu_err(cudaErrorMemoryAllocation);
    }
    memset(*p, 0xff, n ? n : 256); /* cudaMalloc does not zero: unwritten memory reads as NaN (or -1) */
    std::lock_guard<std::mutex> g(lt_emu_mu());
    lt_emu_allocs()[(uintptr_t)*p] = lt_emu_alloc{bytes, type};
    return cudaSuccess;
}
inline cudaError_t lt_emu_free_(void *p) {
    if (!p) return cudaSuccess;
    lt_emu_drain_all(); /* cudaFree waits for the device */
    {
        std::lock_guard<std::mutex> g(lt_emu_mu());
        auto it = lt_emu_allocs().find((uintptr_t)p);
        if (it == lt_emu_allocs().end()) return lt_emu_err(cudaErrorInvalidValue);
        if (it->second.type == cudaMemoryTypeDevice) lt_emu_dev_used() -= (it->second.bytes + 255) / 256 * 256;
        lt_emu_allocs().erase(it);
    }
    free(p);
    return cudaSuccess;
}
inline cudaError_t cudaMalloc(void **p, size_t bytes) { return lt_emu_alloc_(p, bytes, cudaMemoryTypeDevice); }
inline cudaError_t cudaMallocManaged(void **p, size_t bytes, unsigned = cudaMemAttachGlobal) {
    return lt_emu_alloc_(p, bytes, cudaMemoryTypeManaged);
}
inline cudaError_t cudaMallocHost(void **p, size_t bytes) { return lt_emu_alloc_(p, bytes, cudaMemoryTypeHost); }
inline cudaError_t cudaFree(void *p) { return lt_emu_free_(p); }
inline cudaError_t cudaFreeHost(void *p) { return lt_emu_free_(p); }
/* checks a copy's direction and bounds at the call, as the runtime does */
inline cudaError_t lt_emu_copy_check(void *dst, const void *src, size_t n, cudaMemcpyKind k) {
    bool dd = lt_emu_kind(dst, n) >= cudaMemoryTypeDevice, sd = lt_emu_kind(src, n) >= cudaMemoryTypeDevice;
    bool ok = k == cudaMemcpyHostToDevice ? dd && !sd : k == cudaMemcpyDeviceToHost ? sd && !dd
              : k == cudaMemcpyDeviceToDevice ? sd && dd : true;
    if (!ok) {
        fprintf(stderr, "cuda emu: cudaMemcpy kind %d between %p (%s) and %p (%s), %zu bytes: wrong direction or bounds\n",
                (int)k, dst, dd ? "device" : "host", src, sd ? "device" : "host", n);
        return lt_emu_err(cudaErrorInvalidValue);
    }
    return cudaSuccess;
}
/* on the legacy default stream: after that stream's queued work (not a non-blocking stream's), done at return */
inline cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind k) {
    if (!n) return cudaSuccess;
    if (lt_emu_copy_check(d, s, n, k) != cudaSuccess) return cudaErrorInvalidValue;
    lt_emu_drain(&lt_emu_legacy());
    memcpy(d, s, n);
    return cudaSuccess;
}
/* queued on the stream; into pageable host memory it returns when done, from pageable host memory the source is
 * taken at the call (the driver's staging copy); pinned host memory is read or written when the copy runs */
inline cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind k, cudaStream_t st = nullptr) {
    if (!n) return cudaSuccess;
    if (lt_emu_copy_check(d, s, n, k) != cudaSuccess) return cudaErrorInvalidValue;
    const bool dst_pageable = lt_emu_kind(d, n) == cudaMemoryTypeUnregistered;
    const bool src_pageable = lt_emu_kind(s, n) == cudaMemoryTypeUnregistered;
    std::function<void()> copy;
    if (src_pageable) {
        std::shared_ptr<std::vector<unsigned char>> staged =
            std::make_shared<std::vector<unsigned char>>((const unsigned char *)s, (const unsigned char *)s + n);
        copy = [d, staged, n] { memcpy(d, staged->data(), n); };
    } else {
        copy = [d, s, n] { memcpy(d, s, n); };
    }
    const long seq = lt_emu_enqueue(st, std::move(copy));
    if (dst_pageable) lt_emu_drain(lt_emu_st(st), seq);
    return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t st = nullptr) {
    if (n && lt_emu_kind(p, n) < cudaMemoryTypeDevice) return lt_emu_err(cudaErrorInvalidValue);
    if (n) lt_emu_enqueue(st, [p, v, n] { memset(p, v, n); });
    return cudaSuccess;
}
inline cudaError_t cudaMemPrefetchAsync(const void *p, size_t n, cudaMemLocation loc, unsigned, cudaStream_t = nullptr) {
    if (loc.type != cudaMemLocationTypeDevice || lt_emu_kind(p, n) != cudaMemoryTypeManaged)
        return lt_emu_err(cudaErrorInvalidValue);
    return cudaSuccess;
}
inline cudaError_t cudaPointerGetAttributes(cudaPointerAttributes *a, const void *p) {
    memset(a, 0, sizeof *a);
    a->type = lt_emu_kind(p);
    a->device = a->type == cudaMemoryTypeUnregistered ? -2 : 0;
    return cudaSuccess;
}

/* ---- devices, streams, events ---- */
inline cudaError_t cudaGetDeviceCount(int *n) { return *n = 1, cudaSuccess; }
inline cudaError_t cudaGetDevice(int *d) { return *d = 0, cudaSuccess; }
/* An integer setting of the emulation: environment variable `name` in [lo, hi], else `dflt` when unset; any
 * other value stops the program with `hint`. */
inline int lt_emu_env_int(const char *name, int dflt, long lo, long hi, const char *hint) {
    const char *e = getenv(name);
    if (!e || !*e) return dflt;
    char *end = nullptr;
    const long n = strtol(e, &end, 10);
    if (*end || n < lo || n > hi) {
        fprintf(stderr, "cuda emu: %s=%s: %s\n", name, e, hint);
        abort();
    }
    return (int)n;
}
/* compute capability 9.0, or LT_EMU_CC=XY (75: a T4's 7.5) */
inline int lt_emu_cc() {
    static const int v = lt_emu_env_int("LT_EMU_CC", 90, 30, 129, "give major and minor as one number, e.g. 75 or 90");
    return v;
}
inline size_t lt_emu_mem_total() {
    static const size_t v = [] {
        const char *e = getenv("LT_EMU_MEM_MIB");
        if (!e || !*e) return (size_t)8192 << 20;
        char *end = nullptr;
        const double mib = strtod(e, &end);
        if (*end || !(mib >= 1 && mib <= 1048576)) {
            fprintf(stderr, "cuda emu: LT_EMU_MEM_MIB=%s: give MiB from 1 to 1048576 (fractions allowed)\n", e);
            abort();
        }
        return (size_t)(mib * 1048576.0);
    }();
    return v;
}
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) {
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "leantrain CUDA emulation (CPU)");
    p->multiProcessorCount = 3, p->major = lt_emu_cc() / 10, p->minor = lt_emu_cc() % 10, p->l2CacheSize = 1 << 20;
    p->totalGlobalMem = lt_emu_mem_total();
    return cudaSuccess;
}
inline cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    std::lock_guard<std::mutex> g(lt_emu_mu());
    *total_bytes = lt_emu_mem_total();
    *free_bytes = *total_bytes - lt_emu_dev_used();
    return cudaSuccess;
}
/* the shared memory a block may opt into: an H100's 227 KB, or LT_EMU_SMEM_OPTIN bytes (101376: the 99 KB of an
 * sm_86 / sm_89 card); cudaFuncSetAttribute refuses more */
inline int lt_emu_dyn_optin() {
    static const int v = lt_emu_env_int("LT_EMU_SMEM_OPTIN", 227 * 1024, 48 * 1024, 227 * 1024,
                                        "give bytes from 49152 to 232448");
    return v;
}
inline cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int) {
    *v = a == cudaDevAttrMaxSharedMemoryPerBlockOptin ? lt_emu_dyn_optin() : 1;
    return cudaSuccess;
}
inline cudaError_t cudaRuntimeGetVersion(int *v) { return *v = 13000, cudaSuccess; }
inline cudaError_t cudaDriverGetVersion(int *v) { return *v = 13000, cudaSuccess; }
inline cudaError_t cudaDeviceSynchronize() { return lt_emu_drain_all(), cudaSuccess; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t s) { return lt_emu_drain(lt_emu_st(s)), cudaSuccess; }
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) {
    std::lock_guard<std::recursive_mutex> g(lt_emu_qmu());
    *s = new lt_emu_stream;
    lt_emu_streams().push_back(*s);
    return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t s) {
    std::lock_guard<std::recursive_mutex> g(lt_emu_qmu());
    auto &v = lt_emu_streams();
    auto it = std::find(v.begin(), v.end(), s);
    if (!s || it == v.end()) return lt_emu_err(cudaErrorInvalidValue);
    lt_emu_drain(s); /* queued work still runs */
    v.erase(it);
    delete s;
    return cudaSuccess;
}
struct lt_emu_event {
    double t;
    lt_emu_stream *s; /* where it was last recorded (null: never) */
    long seq;         /* and its place in that queue */
};
inline cudaError_t cudaEventCreate(cudaEvent_t *e) { return *e = new lt_emu_event{0, nullptr, 0}, cudaSuccess; }
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) { return cudaEventCreate(e); }
inline cudaError_t cudaEventDestroy(cudaEvent_t e) {
    lt_emu_drain_all(); /* no queued record may outlive it */
    return delete e, cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr) {
    static std::atomic<long> tick{0};
    std::lock_guard<std::recursive_mutex> g(lt_emu_qmu());
    e->s = lt_emu_st(s);
    e->seq = lt_emu_enqueue(s, [e] { e->t = (double)++tick; });
    return cudaSuccess;
}
inline bool lt_emu_event_done(cudaEvent_t e) { return !e->s || e->s->done >= e->seq; }
/* not ready until the host waits for the stream (the emulation runs queued work only then) */
inline cudaError_t cudaEventQuery(cudaEvent_t e) { return lt_emu_event_done(e) ? cudaSuccess : cudaErrorNotReady; }
inline cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    if (e->s) lt_emu_drain(e->s, e->seq);
    return cudaSuccess;
}
inline cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    if (!lt_emu_event_done(a) || !lt_emu_event_done(b)) return lt_emu_err(cudaErrorNotReady);
    *ms = (float)(b->t - a->t);
    return cudaSuccess;
}
inline cudaError_t cudaGetLastError() {
    cudaError_t e = lt_emu_last();
    lt_emu_last() = cudaSuccess;
    return e;
}
inline const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorMisalignedAddress: return "misaligned address";
    }
    return "unknown error";
}
inline const char *cudaGetErrorName(cudaError_t e) { return e == cudaSuccess ? "cudaSuccess" : "cudaErrorEmulated"; }
/* A launch with more than 48 KB of dynamic shared memory needs the kernel's attribute raised first, up to
 * what the device allows a block (lt_emu_dyn_optin), as on a GPU: the attributes are kept per kernel and checked. */
inline std::map<const void *, int> &lt_emu_dyn_attr() {
    static std::map<const void *, int> m;
    return m;
}
inline std::mutex &lt_emu_dyn_attr_lock() {
    static std::mutex m;
    return m;
}
constexpr int lt_emu_dyn_default = 48 * 1024;
template <class F> cudaError_t cudaFuncSetAttribute(F f, cudaFuncAttribute attr, int v) {
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || v < 0 || v > lt_emu_dyn_optin())
        return lt_emu_err(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> g(lt_emu_dyn_attr_lock());
    lt_emu_dyn_attr()[reinterpret_cast<const void *>(f)] = v;
    return cudaSuccess;
}
template <class F> int lt_emu_dyn_allowed(F f) {
    std::lock_guard<std::mutex> g(lt_emu_dyn_attr_lock());
    auto it = lt_emu_dyn_attr().find(reinterpret_cast<const void *>(f));
    return it == lt_emu_dyn_attr().end() ? lt_emu_dyn_default : it->second;
}
template <class F> cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *n, F, int, size_t) {
    return *n = 2, cudaSuccess;
}

/* ---- the thread model ---- */
/* LT_EMU_SCHED=forward or reverse: the threads of a block run one at a time,
 * each from one barrier (__syncthreads, or a warp's shuffle, vote or
 * __syncwarp) to the next, in thread order (forward: 0 first) or its reverse;
 * a barrier opens when every thread it waits for has reached it. Any order is
 * one a GPU may choose, and this one makes a race between threads of one
 * block (a thread that reads shared memory another writes with no barrier
 * between) give the same wrong result every run: a reader that runs before the
 * writer finds the old value (one of the two orders puts it first). Threads
 * that wait at different barriers, or for a thread that has exited, are
 * reported (a deadlock, or undefined behaviour, on a GPU). In those two orders
 * the warps keep step: every thread runs to its next warp barrier before any
 * warp's opens. LT_EMU_SCHED=warps or warps-reverse: one warp at a time
 * instead (the first in order with a thread that can run, its warp barriers
 * opened as it reaches them), so that a warp runs from one __syncthreads to
 * the next before the next warp leaves the first: a warp that writes shared
 * memory after its warp-level steps while another warp still has to read the
 * old value (a buffer reused one barrier too early) is then caught as well.
 * Unset: the threads run concurrently, in the order the operating system
 * gives them. Returns 0 (unset), 1 / -1 (forward / reverse) or 2 / -2 (warps,
 * warps-reverse). */
inline int lt_emu_sched_order() {
    static const int order = [] {
        const char *e = getenv("LT_EMU_SCHED");
        if (!e || !*e) return 0;
        if (strcmp(e, "forward") == 0) return 1;
        if (strcmp(e, "reverse") == 0) return -1;
        if (strcmp(e, "warps") == 0) return 2;
        if (strcmp(e, "warps-reverse") == 0) return -2;
        fprintf(stderr, "cuda emu: LT_EMU_SCHED=%s: use forward, reverse, warps or warps-reverse (or leave it unset)\n",
                e);
        abort();
    }();
    return order;
}
struct lt_emu_serial {
    enum { READY, AT_BLOCK, AT_WARP, DONE };
    int order = 1;
    std::vector<unsigned char> state;
    std::vector<std::unique_ptr<std::binary_semaphore>> sem;
};

struct lt_emu_block {
    int nthreads;
    std::unique_ptr<std::barrier<>> bar;
    std::vector<std::unique_ptr<std::barrier<>>> warp_bar;
    std::unique_ptr<lt_emu_serial> ser; /* LT_EMU_SCHED set */
    std::vector<uint64_t> shfl; /* one slot per thread */
    std::atomic<int> orv{0};
    std::vector<unsigned char> dyn;
};
inline thread_local lt_emu_block *lt_emu_cur = nullptr;

/* The serial scheduler: thread tid (the one running) has set its state; the
 * next ready thread in order runs (opening a barrier first when none is
 * ready), and tid waits for its turn again unless it has exited. */
inline void lt_emu_serial_pass(lt_emu_block *b, int tid) {
    lt_emu_serial &s = *b->ser;
    const int n = b->nthreads;
    auto pick = [&] {
        if (s.order == 2 || s.order == -2) { /* a warp at a time, its own warp barriers opened as it needs them */
            const int nw = (n + 31) / 32;
            for (int k = 0; k < nw; k++) {
                const int w = s.order > 0 ? k : nw - 1 - k, lo = 32 * w, hi = std::min(n, lo + 32);
                int at = 0;
                for (int j = 0; j < hi - lo; j++) {
                    const int i = s.order > 0 ? lo + j : hi - 1 - j;
                    if (s.state[(size_t)i] == lt_emu_serial::READY) return i;
                    at += s.state[(size_t)i] == lt_emu_serial::AT_WARP;
                }
                if (at == hi - lo) {
                    for (int i = lo; i < hi; i++) s.state[(size_t)i] = lt_emu_serial::READY;
                    return s.order > 0 ? lo : hi - 1;
                }
            }
            return -1;
        }
        for (int k = 0; k < n; k++) {
            const int i = s.order > 0 ? k : n - 1 - k;
            if (s.state[(size_t)i] == lt_emu_serial::READY) return i;
        }
        return -1;
    };
    int next = pick();
    if (next < 0) {
        int done = 0, at_block = 0;
        for (int i = 0; i < n; i++) {
            done += s.state[(size_t)i] == lt_emu_serial::DONE;
            at_block += s.state[(size_t)i] == lt_emu_serial::AT_BLOCK;
        }
        if (done == n) return; /* the block has finished */
        for (int w = 0; w * 32 < n && next < 0; w++) {
            const int lo = 32 * w, hi = std::min(n, lo + 32);
            int at = 0;
            for (int i = lo; i < hi; i++) at += s.state[(size_t)i] == lt_emu_serial::AT_WARP;
            if (at == hi - lo) {
                for (int i = lo; i < hi; i++) s.state[(size_t)i] = lt_emu_serial::READY;
                next = pick();
            }
        }
        if (next < 0 && at_block == n) {
            for (int i = 0; i < n; i++) s.state[(size_t)i] = lt_emu_serial::READY;
            next = pick();
        }
        if (next < 0) {
            fprintf(stderr,
                    "cuda emu: block %u can go no further: of its %d threads %d wait at __syncthreads, %d at a warp "
                    "barrier, %d have exited (threads of a block, or lanes of a warp, at different barriers)\n",
                    blockIdx.x, n, at_block, n - done - at_block, done);
            abort();
        }
    }
    if (next == tid) return;
    s.sem[(size_t)next]->release();
    if (s.state[(size_t)tid] != lt_emu_serial::DONE) s.sem[(size_t)tid]->acquire();
}
/* the barriers, both ways */
inline void lt_emu_block_barrier(lt_emu_block *b) {
    if (!b->ser) return b->bar->arrive_and_wait();
    b->ser->state[threadIdx.x] = lt_emu_serial::AT_BLOCK;
    lt_emu_serial_pass(b, (int)threadIdx.x);
}
inline void lt_emu_warp_barrier(lt_emu_block *b) {
    if (!b->ser) return b->warp_bar[threadIdx.x / 32]->arrive_and_wait();
    b->ser->state[threadIdx.x] = lt_emu_serial::AT_WARP;
    lt_emu_serial_pass(b, (int)threadIdx.x);
}

inline void __syncthreads() { lt_emu_block_barrier(lt_emu_cur); }
inline int __syncthreads_or(int v) {
    lt_emu_block *b = lt_emu_cur;
    lt_emu_block_barrier(b);
    if (v) b->orv.fetch_or(1);
    lt_emu_block_barrier(b);
    int r = b->orv.load();
    lt_emu_block_barrier(b);
    if (threadIdx.x == 0) b->orv = 0;
    lt_emu_block_barrier(b);
    return r;
}
/* a whole warp's shuffle: every lane publishes v, then reads lane src(lane)'s */
template <class T, class F> T lt_emu_shfl(unsigned mask, T v, F src) {
    static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
    if (mask != 0xffffffffu) abort();
    lt_emu_block *b = lt_emu_cur;
    int tid = (int)threadIdx.x, warp = tid / 32, lane = tid % 32;
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof v);
    b->shfl[tid] = bits;
    lt_emu_warp_barrier(b);
    uint64_t got = b->shfl[warp * 32 + (src(lane) & 31)];
    lt_emu_warp_barrier(b);
    T r;
    memcpy(&r, &got, sizeof r);
    return r;
}
template <class T> T __shfl_xor_sync(unsigned mask, T v, int lanemask) {
    return lt_emu_shfl(mask, v, [lanemask](int lane) { return lane ^ lanemask; });
}
/* srcLane modulo the warp's 32 lanes, as CUDA's with the default width */
template <class T> T __shfl_sync(unsigned mask, T v, int srcLane) {
    return lt_emu_shfl(mask, v, [srcLane](int) { return srcLane; });
}
/* every lane of the (whole) warp votes; all of them get whether every vote was nonzero */
inline int __all_sync(unsigned mask, int pred) {
    if (mask != 0xffffffffu) abort();
    lt_emu_block *b = lt_emu_cur;
    int tid = (int)threadIdx.x, warp = tid / 32;
    b->shfl[tid] = pred != 0;
    lt_emu_warp_barrier(b);
    int all = 1;
    for (int l = 0; l < 32 && warp * 32 + l < b->nthreads; l++) all &= b->shfl[warp * 32 + l] != 0;
    lt_emu_warp_barrier(b);
    return all;
}
inline int atomicOr(int *p, int v) { return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); }
inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v) {
    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
/* the block's dynamic shared memory, 128-byte aligned (its vector holds 128 bytes more) */
inline void *lt_emu_dyn_smem() {
    const uintptr_t p = (uintptr_t)lt_emu_cur->dyn.data();
    return (void *)((p + 127) & ~(uintptr_t)127);
}
inline void lt_emu_check_aligned(const void *p, size_t bytes) {
    if ((uintptr_t)p % bytes) {
        fprintf(stderr, "cuda emu: misaligned %zu-byte access at %p (block %u thread %u)\n", bytes, p, blockIdx.x,
                threadIdx.x);
        abort();
    }
}

/* cp.async (lt_cp_async and friends in kernels/cuda/cu_internal.cuh): each
 * thread queues its copies, a commit closes a group, and a wait performs all
 * but the newest K groups: the latest a GPU may complete them, so a thread
 * that reads its shared memory before the wait reads what was there before
 * (dynamic shared memory starts as all ones bits: NaN). The destination must
 * be in the block's dynamic shared memory, both addresses aligned to the size.
 * LT_EMU_CP=issue performs each copy at its issue instead: the earliest a GPU
 * may, so that a copy into a buffer other threads still read (a missing
 * barrier before the issue) overwrites it under their feet; with LT_EMU_SCHED
 * it does so every run. */
inline bool lt_emu_cp_at_issue() {
    static const bool on = [] {
        const char *e = getenv("LT_EMU_CP");
        if (!e || !*e || strcmp(e, "wait") == 0) return false;
        if (strcmp(e, "issue") == 0) return true;
        fprintf(stderr, "cuda emu: LT_EMU_CP=%s: use issue or wait (the default)\n", e);
        abort();
    }();
    return on;
}
struct lt_emu_cp {
    void *dst;
    const void *src;
    size_t n;
};
inline thread_local std::vector<lt_emu_cp> lt_emu_cp_open;
inline thread_local std::deque<std::vector<lt_emu_cp>> lt_emu_cp_groups;
inline void lt_emu_cp_reset() {
    lt_emu_cp_open.clear();
    lt_emu_cp_groups.clear();
}
inline void lt_emu_cp_async(void *dst, const void *src, size_t n) {
    const unsigned char *lo = lt_emu_cur->dyn.data(), *hi = lo + lt_emu_cur->dyn.size();
    const unsigned char *d = static_cast<const unsigned char *>(dst);
    if ((n != 4 && n != 8 && n != 16) || d < lo || d + n > hi) {
        fprintf(stderr, "cuda emu: cp.async of %zu bytes to %p, outside dynamic shared memory or of a bad size\n", n,
                dst);
        abort();
    }
    lt_emu_check_aligned(dst, n);
    lt_emu_check_aligned(src, n);
    if (lt_emu_cp_at_issue()) memcpy(dst, src, n);
    else lt_emu_cp_open.push_back({dst, src, n});
}
inline void lt_emu_cp_commit() {
    lt_emu_cp_groups.push_back(std::move(lt_emu_cp_open));
    lt_emu_cp_open.clear();
}
inline void lt_emu_cp_wait(size_t k) {
    while (lt_emu_cp_groups.size() > k) {
        for (const lt_emu_cp &c : lt_emu_cp_groups.front()) memcpy(c.dst, c.src, c.n);
        lt_emu_cp_groups.pop_front();
    }
}

/* A pool of worker threads that run the threads of one block at a time. Each worker sleeps on its own
 * semaphore, so a block of n threads wakes exactly n workers however large the pool has grown. */
class lt_emu_pool {
  public:
    static lt_emu_pool &get() {
        static lt_emu_pool p;
        return p;
    }
    /* runs fn(tid) on n threads concurrently, returns when all are done (one caller at a time: the queue lock) */
    void run(int n, const std::function<void(int)> &fn) {
        grow(n);
        fn_ = &fn;
        left_.store(n);
        for (int i = 0; i < n; i++) w_[(size_t)i]->go.release();
        done_.acquire();
    }
    ~lt_emu_pool() {
        stop_.store(true);
        for (auto &w : w_) w->go.release();
        for (auto &w : w_) w->th.join();
    }

  private:
    struct worker {
        std::binary_semaphore go{0};
        std::thread th;
    };
    void grow(int n) {
        while ((int)w_.size() < n) {
            const int id = (int)w_.size();
            w_.push_back(std::make_unique<worker>());
            worker *w = w_.back().get();
            w->th = std::thread([this, id, w] { work(id, w); });
        }
    }
    void work(int id, worker *w) {
        for (;;) {
            w->go.acquire(); /* fn_ was set before the release */
            if (stop_.load()) return;
            (*fn_)(id);
            if (left_.fetch_sub(1) == 1) done_.release();
        }
    }
    std::vector<std::unique_ptr<worker>> w_;
    const std::function<void(int)> *fn_ = nullptr;
    std::atomic<int> left_{0};
    std::binary_semaphore done_{0};
    std::atomic<bool> stop_{false};
};

inline bool lt_emu_blocks_forward() {
    static const bool on = getenv("LT_EMU_BLOCKS") && strcmp(getenv("LT_EMU_BLOCKS"), "forward") == 0;
    return on;
}

template <class... P> struct lt_emu_launcher {
    void (*k)(P...);
    unsigned grid, block;
    size_t smem;
    cudaStream_t stream;
    /* checks the configuration now (cudaGetLastError after the launch sees it), queues the grid on the stream */
    template <class... A> void operator()(A... args) const {
        if (block == 0 || block > 1024 || grid == 0 || smem > (size_t)lt_emu_dyn_allowed(k)) {
            lt_emu_err(cudaErrorInvalidConfiguration);
            return;
        }
        const lt_emu_launcher self = *this;
        lt_emu_enqueue(stream, [self, args...] { self.run(args...); });
    }
    template <class... A> void run(A... args) const {
        for (unsigned i = 0; i < grid; i++) {
            const unsigned bx = lt_emu_blocks_forward() ? i : grid - 1 - i;
            lt_emu_block b;
            b.nthreads = (int)block;
            b.bar = std::make_unique<std::barrier<>>((std::ptrdiff_t)block);
            for (unsigned w = 0; w < (block + 31) / 32; w++)
                b.warp_bar.push_back(std::make_unique<std::barrier<>>((std::ptrdiff_t)std::min(32u, block - 32 * w)));
            b.shfl.assign(block, 0);
            b.dyn.assign((smem ? smem : 16) + 128, 0xff);
            if (lt_emu_sched_order()) {
                b.ser = std::make_unique<lt_emu_serial>();
                b.ser->order = lt_emu_sched_order();
                b.ser->state.assign(block, lt_emu_serial::READY);
                for (unsigned t = 0; t < block; t++) b.ser->sem.push_back(std::make_unique<std::binary_semaphore>(0));
                b.ser->sem[b.ser->order > 0 ? 0 : block - 1]->release(); /* the first thread in order runs */
            }
            std::function<void(int)> fn = [&](int tid) {
                lt_emu_cur = &b;
                lt_emu_cp_reset();
                threadIdx = dim3{(unsigned)tid, 1, 1};
                blockIdx = dim3{bx, 1, 1};
                blockDim = dim3{block, 1, 1};
                gridDim = dim3{grid, 1, 1};
                if (b.ser) b.ser->sem[(size_t)tid]->acquire();
                k(static_cast<P>(args)...);
                if (b.ser) {
                    b.ser->state[(size_t)tid] = lt_emu_serial::DONE;
                    lt_emu_serial_pass(&b, tid);
                }
            };
            lt_emu_pool::get().run((int)block, fn);
        }
    }
};
template <class... P>
lt_emu_launcher<P...> lt_emu_launch(void (*k)(P...), unsigned grid, unsigned block, size_t smem, cudaStream_t stream) {
    return lt_emu_launcher<P...>{k, grid, block, smem, stream};
}

#endif
