/* The matrix multiply behind the GPT-2 layers on the GPU (gemm.cu): cuBLAS's
 * cublasGemmEx with fp32 accumulation, or, in the emulation build
 * (LT_CUDA_EMU), OpenBLAS sgemm on float copies of the operands. */
#ifndef LT_MODEL_CUDA_CU_GEMM_CUH
#define LT_MODEL_CUDA_CU_GEMM_CUH

#include <cuda_runtime.h>
#include <stddef.h>

#include "leantrain/dtype.h"

struct lt_cugemm;

/* A GEMM handle whose work goes to stream s. NULL with the message in err. */
lt_cugemm *lt_cugemm_create(cudaStream_t s, char *err, size_t errlen);
void lt_cugemm_destroy(lt_cugemm *g);

/* TF32 for fp32 operands (on: the --tf32 of the trainer): the products of
 * later runs with F32 A and B take their inputs rounded to TF32 (10 bits of
 * mantissa, fp32's range) on the tensor cores, still summed in fp32
 * (cuBLAS's CUBLAS_COMPUTE_32F_FAST_TF32; the emulation rounds the float
 * copies to nearest, ties away from zero, then runs its sgemm). 16-bit
 * operands are unaffected. Off when created. Returns the previous setting. */
bool lt_cugemm_set_tf32(lt_cugemm *g, bool on);

/* Column-major, BLAS's convention: C[m,n] = op(A) op(B) + beta * C, op(X) = X
 * or X^T (ta, tb), with fp32 accumulation. A and B are of dtype ab, C of dtype
 * cdt (each LT_DTYPE_F32, LT_DTYPE_BF16 or LT_DTYPE_F16; C of ab's dtype, or
 * f32 under bf16 or fp16 A and B); a 16-bit C is rounded once to nearest even
 * (fp16: inf above 65504).
 * beta is 0 (C overwritten, not read) or 1. 0, or -1 with the message in err. */
int lt_cugemm_run(lt_cugemm *g, bool ta, bool tb, int m, int n, int k, const void *A, int lda, const void *B, int ldb,
                  lt_dtype ab, void *C, int ldc, lt_dtype cdt, float beta, char *err, size_t errlen);

#endif
