/* bf16 matrix products on the CPU's bf16 dot-product instructions (AVX512-BF16, AMX-BF16), through oneDNN's
 * matmul, for the bf16 compute of gpt2_layers.c.
 *
 * The emulated 16-bit compute keeps bf16 values in floats and multiplies them with OpenBLAS's sgemm: every
 * product of two bf16 values is exact in fp32, so the result is the fp32 sum of exact products. Here the same
 * operands are packed into bf16 (exactly: they are bf16 values), multiplied by oneDNN with fp32 accumulation, and
 * the fp32 result written or added: the same exact products, summed in fp32 in another order (the results agree
 * within fp32 accumulation, K x 2^-24 of the sum of the products' magnitudes; bf16 subnormal operands, below
 * 1.2e-38, count as zero on these instructions). At a fixed thread count a product repeats bit for bit.
 *
 * Used when the library was built with oneDNN (LT_HAVE_DNNL, Debian's libdnnl-dev), oneDNN finds the bf16
 * instructions on this CPU, and the environment variable LT_CPU_BF16_GEMM is not 0; otherwise lt_gemm_bf16
 * declines and the caller's sgemm computes the product. Products asked for by several threads at once run one
 * after another (a lock: one pack buffer and one scratchpad per process); a product runs on oneDNN's OpenMP
 * threads, so it is not asked for from inside an OpenMP parallel region. */
#ifndef LT_MODEL_GEMM_BF16_H
#define LT_MODEL_GEMM_BF16_H

#include <stddef.h>
#include <stdint.h>

/* 1 when lt_gemm_bf16 computes products (decided at the first call: build, CPU, LT_CPU_BF16_GEMM), else 0. */
int lt_gemm_bf16_enabled(void);

/* Turns the oneDNN path off (on = 0) or back on (on = 1, which takes effect only where lt_gemm_bf16_enabled
 * could be 1); returns the previous state. For tests and benchmarks that compare the two paths in one process. */
int lt_gemm_bf16_set_enabled(int on);

/* One line saying what computes bf16 products on the CPU: "oneDNN 2.6.3 matmul on avx512_core_bf16 (fp32 sums)",
 * or "OpenBLAS sgemm on bf16 values (...)" with the reason. */
const char *lt_gemm_bf16_describe(void);

/* C[M,N] = op(A)[M,K] @ op(B)[K,N] + beta * C, with beta 0 (C overwritten) or 1 (added; any other value
 * declines). A and B are row-major floats holding bf16 values: op(A) is A (lda >= K) or, when ta, the transpose
 * of A stored [K,M] (lda >= M); op(B) likewise with tb, ldb. The operands are packed into a buffer this module
 * keeps (grown to the largest product's M x K + K x N bf16 values), and oneDNN's scratchpad too (see
 * lt_gemm_bf16_need). Returns 0 when the product was computed; -1, with nothing written to C, when the path is
 * off, an argument is outside what it takes, or oneDNN or an allocation failed: the caller then computes the
 * product itself. */
int lt_gemm_bf16(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                 float *C, int ldc);

/* lt_gemm_bf16 with B already bf16: B16 is op(B)'s storage as bf16 values (row stride ldb, as for lt_gemm_bf16),
 * used in place (only A is packed). The same return values; B16 NULL declines. */
int lt_gemm_bf16_b16(int ta, int tb, int M, int N, int K, const float *A, int lda, const uint16_t *B16, int ldb,
                     float beta, float *C, int ldc);

/* What lt_gemm_bf16 (ldb16 0) or lt_gemm_bf16_b16 (ldb16: its ldb) of this shape needs held: *pack (the packed
 * operands) and *scratch (oneDNN's scratchpad: the per-thread blocks it copies operands into), in bytes; both 0
 * when the path is off. Each buffer is kept at the largest size a product has needed, so a model's memory plan
 * counts the largest of each over its products. */
void lt_gemm_bf16_need(int ta, int tb, int M, int N, int K, int ldc, float beta, int ldb16, size_t *pack,
                       size_t *scratch);

/* Bytes lt_gemm_bf16 holds now (the pack buffer and the scratchpad). */
size_t lt_gemm_bf16_held_bytes(void);

/* Frees what lt_gemm_bf16 holds (a later product allocates again). */
void lt_gemm_bf16_release(void);

#endif
