/* The LT_CU_AO4 instantiation of lowbit.cuh. */
#include "kernels/cuda/lowbit.cuh"

cudaError_t lt_cu_launch_q_ao4(int block, const lt_cu_item *items, int count, uint64_t nunits,
                               const lt_cu_qtab *t0, const lt_cu_qtab *t1, const int *flag, int variant, int sm_count,
                               cudaStream_t s) {
    return lt_lowbit::launch_k<LT_CU_AO4>(block, items, count, nunits, t0, t1, flag, variant, sm_count, s);
}
