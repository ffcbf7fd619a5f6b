/* Multi-tensor low-bit optimizer kernels: bitsandbytes 8-bit blockwise AdamW
 * and Lion, torchao 8-bit and 4-bit AdamW (lowbit_cpu.c's math, element for
 * element).
 *
 * A quantization block of B elements is handled by TPB = B/8 threads, 8
 * elements each (two runs of 4, each run one 16-byte f32 load across a
 * coalesced warp); the block's absmax is a shuffle (and, past a warp, a shared
 * memory) max. The grid is persistent: each CTA first copies the two search
 * tables into shared memory (map, thresholds and the bucket table of
 * cu_math.h), then walks its own run of consecutive blocks across the listed
 * tensors, so the nearest code costs one bucket lookup and one compare. A
 * warp of whole fp32 blocks takes a straight-line form of the step
 * (lowbit.cuh, q_step). */
#include "kernels/cuda/cu_internal.cuh"

/* one per kind, in lowbit_<kind>.cu, all of this type */
typedef cudaError_t q_launcher(int block, const lt_cu_item *items, int count, uint64_t nunits,
                               const lt_cu_qtab *t0, const lt_cu_qtab *t1, const int *flag, int variant,
                               int sm_count, cudaStream_t s);
q_launcher lt_cu_launch_q_bnb8_adam, lt_cu_launch_q_bnb8_lion, lt_cu_launch_q_ao8, lt_cu_launch_q_ao4;

cudaError_t lt_cu_launch_q(int kind, int block, const lt_cu_item *items, int count, uint64_t nunits,
                           const lt_cu_qtab *t0, const lt_cu_qtab *t1, const int *flag, int variant, int sm_count,
                           cudaStream_t s) {
    if (nunits == 0) return cudaSuccess;
    switch (kind) {
    case LT_CU_BNB8_ADAM: return lt_cu_launch_q_bnb8_adam(block, items, count, nunits, t0, t1, flag, variant, sm_count, s);
    case LT_CU_BNB8_LION: return lt_cu_launch_q_bnb8_lion(block, items, count, nunits, t0, t1, flag, variant, sm_count, s);
    case LT_CU_AO8: return lt_cu_launch_q_ao8(block, items, count, nunits, t0, t1, flag, variant, sm_count, s);
    case LT_CU_AO4: return lt_cu_launch_q_ao4(block, items, count, nunits, t0, t1, flag, variant, sm_count, s);
    default: return cudaErrorInvalidValue;
    }
}
