/* The GEMM of the GPT-2 layers on the GPU (cu_gemm.cuh).
 *
 * Real build: cublasGemmEx with CUBLAS_COMPUTE_32F, which takes f32 operands
 * as plain fp32 (no TF32 unless the handle's math mode asks for it, and this
 * one does not; lt_cugemm_set_tf32 asks by the compute type,
 * CUBLAS_COMPUTE_32F_FAST_TF32) and bf16 or fp16 operands on the tensor cores
 * with fp32 accumulation. The handle's math mode also disallows reduced-precision
 * reductions (CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION): by default
 * cuBLAS may add split-K partial sums in the output type when C is 16-bit,
 * which would be fp16 (or bf16) accumulation in all but name.
 * libcublas is opened with dlopen the first time a handle is made, so that the
 * library and the program link against the CUDA runtime alone and run without
 * cuBLAS installed as long as the GPT-2 device path is not used; the loaded
 * entry points are process-wide (read-only after loading, thread-safe by the
 * C++ rules for function-local statics).
 *
 * Emulation build (LT_CUDA_EMU): there is no cuBLAS; the operands are
 * converted to float and multiplied by OpenBLAS's cblas_sgemm on the host
 * (the emulated device memory is host memory), then C is rounded back (to
 * nearest even) when it is bf16 or fp16; queued on the handle's stream like
 * a kernel, so it runs when the emulation's stream does. Same arithmetic contract (fp32
 * accumulation, one rounding of C; an fp16 C overflows to inf above 65504),
 * another summation order. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <new>

#include "model/cuda/cu_gemm.cuh"
#include "util/errmsg.h"

#ifdef LT_CUDA_EMU
#include <cblas.h>

#include <vector>
#else
#include <cublas_v2.h>
#include <dlfcn.h>
#endif

namespace {


bool is16(lt_dtype dt) { return dt == LT_DTYPE_BF16 || dt == LT_DTYPE_F16; }

/* A and B of one dtype; C of theirs, or f32 under 16-bit inputs */
bool dtypes_ok(lt_dtype ab, lt_dtype cdt) {
    return (ab == LT_DTYPE_F32 || is16(ab)) && (cdt == ab || (is16(ab) && cdt == LT_DTYPE_F32));
}

int bad_dtypes(lt_dtype ab, lt_dtype cdt, char *err, size_t errlen) {
    lt_errmsg(err, errlen,
            "GEMM: unsupported dtypes (inputs %s, output %s): inputs F32, BF16 or F16, the output of the inputs' "
            "dtype or F32",
            lt_dtype_name(ab), lt_dtype_name(cdt));
    return -1;
}

} // namespace

#ifdef LT_CUDA_EMU

struct lt_cugemm {
    cudaStream_t stream;
    bool tf32;
    std::vector<float> a, b, c; /* float copies, reused between calls (the queue runs one at a time) */
    void *workspace;            /* device memory as large as cuBLAS's default workspace, never used */
};

namespace {

/* x rounded to TF32: 10 bits of mantissa, to nearest, ties away from zero (cvt.rna.tf32.f32); inf and NaN kept */
float to_tf32(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
    memcpy(&x, &u, 4);
    return x;
}

/* dst = the first `rows` of each of `cols` columns (stride ld) of src, as float; the rest of each column 0 */
void to_float(std::vector<float> &dst, const void *src, lt_dtype dt, int rows, int cols, int ld) {
    dst.assign((size_t)ld * (size_t)cols, 0.0f);
    for (size_t j = 0; j < (size_t)cols; j++)
        for (size_t i = 0; i < (size_t)rows; i++) {
            size_t at = j * (size_t)ld + i;
            dst[at] = dt == LT_DTYPE_F32    ? static_cast<const float *>(src)[at]
                      : dt == LT_DTYPE_BF16 ? lt_bf16_to_f32(static_cast<const uint16_t *>(src)[at])
                                            : lt_f16_to_f32(static_cast<const uint16_t *>(src)[at]);
        }
}

} // namespace

lt_cugemm *lt_cugemm_create(cudaStream_t s, char *err, size_t errlen) {
    lt_cugemm *g = new (std::nothrow) lt_cugemm;
    if (!g) {
        lt_errmsg(err, errlen, "out of memory creating the emulated GEMM");
        return nullptr;
    }
    g->stream = s, g->tf32 = false;
    /* cuBLAS takes its default workspace (32 MiB on Hopper, what the memory plan counts as cublas_bytes) from the
       device's memory; the emulated handle holds as much, so that the emulated device fills up as a real one */
    if (cudaMalloc(&g->workspace, (size_t)32 << 20) != cudaSuccess) {
        cudaGetLastError();
        lt_errmsg(err, errlen, "out of device memory for the GEMM workspace (32 MiB)");
        delete g;
        return nullptr;
    }
    return g;
}

bool lt_cugemm_set_tf32(lt_cugemm *g, bool on) {
    const bool was = g->tf32;
    g->tf32 = on;
    return was;
}

void lt_cugemm_destroy(lt_cugemm *g) {
    if (!g) return;
    cudaStreamSynchronize(g->stream); /* its queued products use g (cublasDestroy synchronizes too) */
    cudaFree(g->workspace);
    delete g;
}

namespace {

void gemm_now(lt_cugemm *g, bool ta, bool tb, int m, int n, int k, const void *A, int lda, const void *B, int ldb,
              lt_dtype ab, void *C, int ldc, lt_dtype cdt, float beta, bool tf32) {
    try {
        to_float(g->a, A, ab, ta ? k : m, ta ? m : k, lda);
        to_float(g->b, B, ab, tb ? n : k, tb ? k : n, ldb);
        if (tf32 && ab == LT_DTYPE_F32) {
            for (float &x : g->a) x = to_tf32(x);
            for (float &x : g->b) x = to_tf32(x);
        }
        float *c = static_cast<float *>(C);
        if (cdt != LT_DTYPE_F32) {
            if (beta != 0.0f) to_float(g->c, C, cdt, m, n, ldc);
            else g->c.assign((size_t)ldc * (size_t)n, 0.0f);
            c = g->c.data();
        }
        cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f,
                    g->a.data(), lda, g->b.data(), ldb, beta, c, ldc);
        if (cdt != LT_DTYPE_F32)
            for (size_t j = 0; j < (size_t)n; j++)
                for (size_t i = 0; i < (size_t)m; i++) {
                    const float x = c[j * (size_t)ldc + i];
                    static_cast<uint16_t *>(C)[j * (size_t)ldc + i] =
                        cdt == LT_DTYPE_BF16 ? lt_f32_to_bf16(x) : lt_f32_to_f16(x);
                }
    } catch (...) {
        fprintf(stderr, "cuda emu: out of memory in the emulated GEMM (%d x %d x %d)\n", m, n, k);
        abort();
    }
}

} // namespace

int lt_cugemm_run(lt_cugemm *g, bool ta, bool tb, int m, int n, int k, const void *A, int lda, const void *B, int ldb,
                  lt_dtype ab, void *C, int ldc, lt_dtype cdt, float beta, char *err, size_t errlen) {
    if (!dtypes_ok(ab, cdt)) return bad_dtypes(ab, cdt, err, errlen);
    if (m <= 0 || n <= 0) return 0;
    const bool tf32 = g->tf32; /* as it is now, not when the queue runs */
    lt_emu_enqueue(g->stream, [=] { gemm_now(g, ta, tb, m, n, k, A, lda, B, ldb, ab, C, ldc, cdt, beta, tf32); });
    return 0;
}

#else /* cuBLAS, opened at run time */

#define LT_GEMM_STR2(x) #x
#define LT_GEMM_STR(x) LT_GEMM_STR2(x)

namespace {

typedef cublasStatus_t (*create_fn)(cublasHandle_t *);
typedef cublasStatus_t (*destroy_fn)(cublasHandle_t);
typedef cublasStatus_t (*stream_fn)(cublasHandle_t, cudaStream_t);
typedef const char *(*status_fn)(cublasStatus_t);
typedef cublasStatus_t (*math_fn)(cublasHandle_t, cublasMath_t);
typedef cublasStatus_t (*gemm_fn)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                                  const void *, cudaDataType, int, const void *, cudaDataType, int, const void *,
                                  void *, cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);

struct Api {
    create_fn create;
    destroy_fn destroy;
    stream_fn set_stream;
    status_fn status;
    math_fn set_math;
    gemm_fn gemm;
    char err[384]; /* why loading failed ("" when it worked) */
};

Api load_api() {
    Api a = {};
    /* the soname of the toolkit we were compiled against first (its ABI), then any */
    const char *names[] = {"libcublas.so." LT_GEMM_STR(CUBLAS_VER_MAJOR), "libcublas.so"};
    void *lib = nullptr;
    for (const char *nm : names)
        if ((lib = dlopen(nm, RTLD_NOW | RTLD_LOCAL))) break;
    if (!lib) {
        const char *e = dlerror();
        snprintf(a.err, sizeof a.err,
                 "cannot load cuBLAS (libcublas.so." LT_GEMM_STR(CUBLAS_VER_MAJOR) "): %s; the GPT-2 device path "
                 "needs the CUDA toolkit's cuBLAS on the library path",
                 e ? e : "not found");
        return a;
    }
    a.create = reinterpret_cast<create_fn>(dlsym(lib, "cublasCreate_v2"));
    a.destroy = reinterpret_cast<destroy_fn>(dlsym(lib, "cublasDestroy_v2"));
    a.set_stream = reinterpret_cast<stream_fn>(dlsym(lib, "cublasSetStream_v2"));
    a.status = reinterpret_cast<status_fn>(dlsym(lib, "cublasGetStatusString"));
    a.set_math = reinterpret_cast<math_fn>(dlsym(lib, "cublasSetMathMode"));
    a.gemm = reinterpret_cast<gemm_fn>(dlsym(lib, "cublasGemmEx"));
    if (!a.create || !a.destroy || !a.set_stream || !a.set_math || !a.gemm)
        snprintf(a.err, sizeof a.err,
                 "cuBLAS was loaded but lacks cublasCreate_v2 / cublasSetStream_v2 / cublasSetMathMode / cublasGemmEx");
    return a; /* the library stays open for the life of the process */
}

const Api &api() {
    static const Api a = load_api();
    return a;
}

const char *status_str(cublasStatus_t s) {
    const Api &a = api();
    return a.status ? a.status(s) : "cuBLAS error";
}

cudaDataType cuda_type(lt_dtype dt) {
    return dt == LT_DTYPE_F32 ? CUDA_R_32F : dt == LT_DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_16F;
}

} // namespace

struct lt_cugemm {
    cublasHandle_t h;
    bool tf32;
};

bool lt_cugemm_set_tf32(lt_cugemm *g, bool on) {
    const bool was = g->tf32;
    g->tf32 = on;
    return was;
}

lt_cugemm *lt_cugemm_create(cudaStream_t s, char *err, size_t errlen) {
    const Api &a = api();
    if (a.err[0]) {
        lt_errmsg(err, errlen, "%s", a.err);
        return nullptr;
    }
    lt_cugemm *g = new (std::nothrow) lt_cugemm;
    if (!g) {
        lt_errmsg(err, errlen, "out of memory creating the cuBLAS handle");
        return nullptr;
    }
    g->tf32 = false;
    cublasStatus_t st = a.create(&g->h);
    const bool created = st == CUBLAS_STATUS_SUCCESS;
    if (st == CUBLAS_STATUS_SUCCESS) st = a.set_stream(g->h, s);
    /* fp32 accumulation throughout, split-K reductions included (see the top of this file) */
    if (st == CUBLAS_STATUS_SUCCESS)
        st = a.set_math(g->h, static_cast<cublasMath_t>(CUBLAS_DEFAULT_MATH |
                                                        CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION));
    if (st != CUBLAS_STATUS_SUCCESS) {
        lt_errmsg(err, errlen, "cuBLAS handle: %s", status_str(st));
        if (created) a.destroy(g->h);
        delete g;
        return nullptr;
    }
    return g;
}

void lt_cugemm_destroy(lt_cugemm *g) {
    if (!g) return;
    api().destroy(g->h);
    delete g;
}

int lt_cugemm_run(lt_cugemm *g, bool ta, bool tb, int m, int n, int k, const void *A, int lda, const void *B, int ldb,
                  lt_dtype ab, void *C, int ldc, lt_dtype cdt, float beta, char *err, size_t errlen) {
    if (!dtypes_ok(ab, cdt)) return bad_dtypes(ab, cdt, err, errlen);
    if (m <= 0 || n <= 0) return 0;
    const float alpha = 1.0f;
    cublasStatus_t st = api().gemm(g->h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k,
                                   &alpha, A, cuda_type(ab), lda, B, cuda_type(ab), ldb, &beta, C, cuda_type(cdt), ldc,
                                   g->tf32 && ab == LT_DTYPE_F32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F,
                                   CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) {
        lt_errmsg(err, errlen, "cublasGemmEx (m %d n %d k %d, %s inputs, %s output): %s", m, n, k,
                lt_dtype_name(ab), lt_dtype_name(cdt), status_str(st));
        return -1;
    }
    return 0;
}

#endif
