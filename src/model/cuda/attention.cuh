/* What the two attention implementations share (attention.cu: fp32 FMA on
 * the CUDA cores, every storage type, head sizes up to 128; attention_tc.cu:
 * tensor cores, 16-bit storage with head sizes up to 64, or 128 when asked,
 * and fp32 storage with head sizes up to 64 by 3xTF32): the CTA numbering, the
 * scores' scale, and the tensor-core path's entry points. Internal to
 * src/model/cuda; every name is in the namespace ltnn. */
#ifndef LT_MODEL_CUDA_ATTENTION_CUH
#define LT_MODEL_CUDA_ATTENTION_CUH

#include "kernels/philox.h"
#include "model/cuda/cu_nn.cuh"

namespace ltnn {

/* A CTA's (b, h) and first row, for CTAs of `rows` rows of one (batch, head) each, numbered with the (b, h)
 * varying fastest and the row tiles heaviest first when `reverse` (the last tile is the heaviest). */
struct head_tile {
    size_t b, bh, C3; /* batch, b * NH + h, 3 C */
    int h, hs, row0;  /* head, head size, first row */
};
__device__ __forceinline__ head_tile head_tile_of(int B, int T, int C, int NH, int rows, bool reverse) {
    const int BH = B * NH, ntiles = (T + rows - 1) / rows, r = (int)(blockIdx.x / (unsigned)BH);
    const size_t bh = blockIdx.x % (unsigned)BH;
    return head_tile{bh / (size_t)NH, bh, 3 * (size_t)C, (int)(bh % (size_t)NH), C / NH,
                     (reverse ? ntiles - 1 - r : r) * rows};
}

/* x / sqrt(hs), the scores' scale (HF GPT-2 divides). When sqrt(hs) is a power of two (hs = 16, 64, 256, ...)
 * the product with its reciprocal `inv` is the same correctly rounded value, and cheaper; inv is 0 otherwise. */
struct score_scale {
    float scale, inv;
    __device__ __forceinline__ float div(float x) const { return inv != 0.0f ? x * inv : x / scale; }
};

/* score_scale's inv for head size hs: 1 / sqrt(hs) when sqrt(hs) is a power of two (then multiplying by it
 * equals dividing by sqrt(hs) bit for bit), else 0 (the kernels divide). */
float exact_inv_scale(int hs);

/* Attention dropout's keep bits of 16 consecutive elements of site d from element i0 (bit c: element i0 + c is
 * kept): the five Philox groups that can hold them. Element (b, h, t, t2) of the site is ((b NH + h) T + t) T +
 * t2, as on the CPU (lt_nn_attention_forward_r). */
__device__ __forceinline__ uint32_t drop_bits16(const lt_dropout &d, uint64_t i0) {
    const uint64_t g0 = i0 >> 2;
    const int off = (int)(i0 & 3);
    uint32_t bits = 0;
#pragma unroll
    for (int q = 0; q < 5; q++) {
        uint32_t w[4];
        lt_dropout_group(&d, g0 + (uint64_t)q, w);
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int c = 4 * q + e - off;
            if (c >= 0 && c < 16 && w[e] >= d.threshold) bits |= 1u << c;
        }
    }
    return bits;
}

/* A kept probability's factor (the keep scale) or a dropped one's (0): bit c of bits. */
__device__ __forceinline__ float drop_factor(uint32_t bits, int c, float scale) {
    return (bits >> c) & 1u ? scale : 0.0f;
}

/* The instantiation for head size hs (at most 128): its DH, 32, 64 or 128 dims (the head zero-padded to it). */
inline int head_dims(int hs) { return hs <= 32 ? 32 : hs <= 64 ? 64 : 128; }

/* The tensor-core kernels serve 16-bit storage (bf16, fp16) with head sizes up to 64, up to 128 when nn asks for
 * them (lt_cunn_attention_tc128), and fp32 storage with head sizes up to 64 by 3xTF32 products when nn asks
 * for them (lt_cunn_attention_tf32), unless nn keeps attention on the CUDA cores (lt_cunn_attention_simt). */
inline bool attn_tc_serves(const lt_cunn *nn, lt_dtype dt, int hs) {
    if (nn->attn_simt) return false;
    if (dt == LT_DTYPE_F32) return nn->attn_tf32 && hs <= 64;
    return (dt == LT_DTYPE_BF16 || dt == LT_DTYPE_F16) && (hs <= 64 || (nn->attn_tc128 && hs <= 128));
}

/* The tensor-core forward and backward (attention_tc.cu), same arguments and results as
 * lt_cunn_attention_forward / _backward (drop: NULL, or a site with a non-zero threshold), for what
 * attn_tc_serves; shapes already checked, non-empty. */
void attn_tc_forward(lt_cunn *nn, lt_dtype dt, void *out, float *lse, const void *qkv, int B, int T, int C, int NH,
                     const lt_dropout *drop);
void attn_tc_backward(lt_cunn *nn, lt_dtype dt, void *dqkv, float *Dsum, const void *dout, const void *qkv,
                      const void *out, const float *lse, int B, int T, int C, int NH, const lt_dropout *drop);

} // namespace ltnn

#endif
