/* leantrain: storage dtypes of parameters, gradients and optimizer state, and
 * the scalar conversions between them (round-to-nearest-even, NaN kept NaN). */
#ifndef LEANTRAIN_DTYPE_H
#define LEANTRAIN_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lt_dtype {
    LT_DTYPE_F32 = 0,
    LT_DTYPE_BF16 = 1,
    LT_DTYPE_F16 = 2,
    LT_DTYPE_U8 = 3, /* quantized optimizer codes */
    LT_DTYPE_I32 = 4,
    LT_DTYPE_I64 = 5,
} lt_dtype;

/* Bytes per element of a dtype. */
size_t lt_dtype_size(lt_dtype t);

/* The safetensors spelling of a dtype ("F32", "BF16", "F16", "U8", "I32", "I64"). */
const char *lt_dtype_name(lt_dtype t);

/* bf16 -> f32: exact (bf16 is the top half of an f32). */
static inline float lt_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* f32 -> bf16 with round-to-nearest-even; NaN stays a quiet NaN, inf stays inf. */
static inline uint16_t lt_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* f32 -> bf16 with stochastic rounding: `rnd16` (16 random bits) is added below
 * the bf16 mantissa and the result truncated, so E[result] = f. */
static inline uint16_t lt_f32_to_bf16_sr(float f, uint32_t rnd16) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) >= 0x7f800000u) return lt_f32_to_bf16(f);
    u += rnd16 & 0xffffu;
    return (uint16_t)(u >> 16);
}

/* IEEE half -> f32 (exact) and f32 -> half (round-to-nearest-even, overflow to inf). */
float lt_f16_to_f32(uint16_t h);
uint16_t lt_f32_to_f16(float f);

#ifdef __cplusplus
}
#endif
#endif
