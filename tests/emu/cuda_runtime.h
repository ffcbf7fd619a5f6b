/* A CPU emulation of the part of the CUDA runtime and thread model that the
 * leantrain kernels use (src/kernels/cuda, built with LT_CUDA_EMU by
 * `make cuda-emu`), so that their sources, the flush logic and the optimizer's
 * device paths run on a machine without a GPU, under AddressSanitizer.
 *
 * Device memory is host memory (registered, so that cudaPointerGetAttributes
 * tells device from host, and filled with garbage when allocated). A launch
 * runs its blocks one after another; the threads of a block are real threads
 * (a pool), __syncthreads a barrier, a warp shuffle an exchange through a
 * buffer between two warp barriers, shared memory a static local (one block at
 * a time). Vector accesses check their alignment. Not emulated: timing,
 * asynchrony (everything is done when the call returns), memory ordering
 * between blocks. */
#ifndef LT_TESTS_EMU_CUDA_RUNTIME_H
#define LT_TESTS_EMU_CUDA_RUNTIME_H

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
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
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline uint32_t max(uint32_t a, uint32_t b) { return a > b ? a : b; }

enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
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
enum cudaDeviceAttr { cudaDevAttrConcurrentManagedAccess = 89 };
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
inline cudaError_t lt_emu_alloc_(void **p, size_t bytes, enum cudaMemoryType type) {
    size_t n = (bytes + 255) / 256 * 256;
    *p = aligned_alloc(256, n ? n : 256);
    if (!*p) return lt_emu_err(cudaErrorMemoryAllocation);
    memset(*p, 0xa5, n ? n : 256); /* cudaMalloc does not zero: make unwritten memory visible */
    std::lock_guard<std::mutex> g(lt_emu_mu());
    lt_emu_allocs()[(uintptr_t)*p] = lt_emu_alloc{bytes, type};
    return cudaSuccess;
}
inline cudaError_t lt_emu_free_(void *p) {
    if (!p) return cudaSuccess;
    {
        std::lock_guard<std::mutex> g(lt_emu_mu());
        if (!lt_emu_allocs().erase((uintptr_t)p)) return lt_emu_err(cudaErrorInvalidValue);
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
inline cudaError_t lt_emu_copy(void *dst, const void *src, size_t n, cudaMemcpyKind k) {
    if (!n) return cudaSuccess;
    bool dd = lt_emu_kind(dst, n) >= cudaMemoryTypeDevice, sd = lt_emu_kind(src, n) >= cudaMemoryTypeDevice;
    bool ok = k == cudaMemcpyHostToDevice ? dd && !sd : k == cudaMemcpyDeviceToHost ? sd && !dd
              : k == cudaMemcpyDeviceToDevice ? sd && dd : true;
    if (!ok) {
        fprintf(stderr, "cuda emu: cudaMemcpy kind %d between %p (%s) and %p (%s), %zu bytes: wrong direction or bounds\n",
                (int)k, dst, dd ? "device" : "host", src, sd ? "device" : "host", n);
        return lt_emu_err(cudaErrorInvalidValue);
    }
    memcpy(dst, src, n);
    return cudaSuccess;
}
inline cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind k) { return lt_emu_copy(d, s, n, k); }
inline cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind k, cudaStream_t = nullptr) {
    return lt_emu_copy(d, s, n, k);
}
inline cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t = nullptr) {
    if (n && lt_emu_kind(p, n) < cudaMemoryTypeDevice) return lt_emu_err(cudaErrorInvalidValue);
    memset(p, v, n);
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
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) {
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "leantrain CUDA emulation (CPU)");
    p->multiProcessorCount = 3, p->major = 9, p->minor = 0, p->l2CacheSize = 1 << 20;
    p->totalGlobalMem = (size_t)8 << 30;
    return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr, int) { return *v = 1, cudaSuccess; }
inline cudaError_t cudaRuntimeGetVersion(int *v) { return *v = 13000, cudaSuccess; }
inline cudaError_t cudaDriverGetVersion(int *v) { return *v = 13000, cudaSuccess; }
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) {
    *s = (cudaStream_t)malloc(16);
    return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t s) { return free(s), cudaSuccess; }
struct lt_emu_event {
    double t;
};
inline cudaError_t cudaEventCreate(cudaEvent_t *e) { return *e = new lt_emu_event{0}, cudaSuccess; }
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) { return cudaEventCreate(e); }
inline cudaError_t cudaEventDestroy(cudaEvent_t e) { return delete e, cudaSuccess; }
inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t = nullptr) {
    static std::atomic<long> tick{0};
    e->t = (double)++tick;
    return cudaSuccess;
}
inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
inline cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
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
    case cudaErrorMisalignedAddress: return "misaligned address";
    }
    return "unknown error";
}
inline const char *cudaGetErrorName(cudaError_t e) { return e == cudaSuccess ? "cudaSuccess" : "cudaErrorEmulated"; }
template <class F> cudaError_t cudaFuncSetAttribute(F, cudaFuncAttribute, int) { return cudaSuccess; }
template <class F> cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *n, F, int, size_t) {
    return *n = 2, cudaSuccess;
}

/* ---- the thread model ---- */
struct lt_emu_block {
    int nthreads;
    std::unique_ptr<std::barrier<>> bar;
    std::vector<std::unique_ptr<std::barrier<>>> warp_bar;
    std::vector<uint64_t> shfl; /* one slot per thread */
    std::atomic<int> orv{0};
    std::vector<unsigned char> dyn;
};
inline thread_local lt_emu_block *lt_emu_cur = nullptr;

inline void __syncthreads() { lt_emu_cur->bar->arrive_and_wait(); }
inline int __syncthreads_or(int v) {
    lt_emu_block *b = lt_emu_cur;
    b->bar->arrive_and_wait();
    if (v) b->orv.fetch_or(1);
    b->bar->arrive_and_wait();
    int r = b->orv.load();
    b->bar->arrive_and_wait();
    if (threadIdx.x == 0) b->orv = 0;
    b->bar->arrive_and_wait();
    return r;
}
template <class T> T __shfl_xor_sync(unsigned mask, T v, int lanemask) {
    static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
    if (mask != 0xffffffffu) abort();
    lt_emu_block *b = lt_emu_cur;
    int tid = (int)threadIdx.x, warp = tid / 32, lane = tid % 32;
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof v);
    b->shfl[tid] = bits;
    b->warp_bar[warp]->arrive_and_wait();
    uint64_t got = b->shfl[warp * 32 + (lane ^ lanemask)];
    b->warp_bar[warp]->arrive_and_wait();
    T r;
    memcpy(&r, &got, sizeof r);
    return r;
}
inline int atomicOr(int *p, int v) { return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); }
inline void *lt_emu_dyn_smem() { return lt_emu_cur->dyn.data(); }
inline void lt_emu_check_aligned(const void *p, size_t bytes) {
    if ((uintptr_t)p % bytes) {
        fprintf(stderr, "cuda emu: misaligned %zu-byte access at %p (block %u thread %u)\n", bytes, p, blockIdx.x,
                threadIdx.x);
        abort();
    }
}

/* A pool of worker threads that run the threads of one block at a time. */
class lt_emu_pool {
  public:
    static lt_emu_pool &get() {
        static lt_emu_pool p;
        return p;
    }
    /* runs fn(tid) on n threads concurrently, returns when all are done */
    void run(int n, const std::function<void(int)> &fn) {
        grow(n);
        {
            std::lock_guard<std::mutex> g(mu_);
            fn_ = &fn;
            want_ = n;
            left_ = n;
            gen_++;
        }
        cv_.notify_all();
        std::unique_lock<std::mutex> g(mu_);
        done_.wait(g, [&] { return left_ == 0; });
    }
    ~lt_emu_pool() {
        {
            std::lock_guard<std::mutex> g(mu_);
            stop_ = true;
            gen_++;
        }
        cv_.notify_all();
        for (auto &t : th_) t.join();
    }

  private:
    void grow(int n) {
        while ((int)th_.size() < n) {
            int id = (int)th_.size();
            th_.emplace_back([this, id] { work(id); });
        }
    }
    void work(int id) {
        long seen = 0;
        for (;;) {
            const std::function<void(int)> *fn;
            {
                std::unique_lock<std::mutex> g(mu_);
                cv_.wait(g, [&] { return gen_ != seen; });
                seen = gen_;
                if (stop_) return;
                if (id >= want_) continue;
                fn = fn_;
            }
            (*fn)(id);
            std::lock_guard<std::mutex> g(mu_);
            if (--left_ == 0) done_.notify_all();
        }
    }
    std::vector<std::thread> th_;
    std::mutex mu_;
    std::condition_variable cv_, done_;
    const std::function<void(int)> *fn_ = nullptr;
    int want_ = 0, left_ = 0;
    long gen_ = 0;
    bool stop_ = false;
};

template <class... P> struct lt_emu_launcher {
    void (*k)(P...);
    unsigned grid, block;
    size_t smem;
    template <class... A> void operator()(A... args) const {
        if (block == 0 || block > 1024 || grid == 0) {
            lt_emu_err(cudaErrorInvalidConfiguration);
            return;
        }
        for (unsigned bx = 0; bx < grid; bx++) {
            lt_emu_block b;
            b.nthreads = (int)block;
            b.bar = std::make_unique<std::barrier<>>((std::ptrdiff_t)block);
            for (unsigned w = 0; w < (block + 31) / 32; w++)
                b.warp_bar.push_back(std::make_unique<std::barrier<>>((std::ptrdiff_t)std::min(32u, block - 32 * w)));
            b.shfl.assign(block, 0);
            b.dyn.assign(smem ? smem : 16, 0xa5);
            std::function<void(int)> fn = [&](int tid) {
                lt_emu_cur = &b;
                threadIdx = dim3{(unsigned)tid, 1, 1};
                blockIdx = dim3{bx, 1, 1};
                blockDim = dim3{block, 1, 1};
                gridDim = dim3{grid, 1, 1};
                k(static_cast<P>(args)...);
            };
            lt_emu_pool::get().run((int)block, fn);
        }
    }
};
template <class... P> lt_emu_launcher<P...> lt_emu_launch(void (*k)(P...), unsigned grid, unsigned block, size_t smem) {
    return lt_emu_launcher<P...>{k, grid, block, smem};
}

#endif
