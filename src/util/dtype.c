/* dtype sizes, names and the f16 conversions (bf16 ones are inline in dtype.h). */
#include "leantrain/dtype.h"

size_t lt_dtype_size(lt_dtype t) {
    switch (t) {
    case LT_DTYPE_F32: return 4;
    case LT_DTYPE_BF16: return 2;
    case LT_DTYPE_F16: return 2;
    case LT_DTYPE_U8: return 1;
    case LT_DTYPE_I32: return 4;
    case LT_DTYPE_I64: return 8;
    }
    return 0;
}

const char *lt_dtype_name(lt_dtype t) {
    switch (t) {
    case LT_DTYPE_F32: return "F32";
    case LT_DTYPE_BF16: return "BF16";
    case LT_DTYPE_F16: return "F16";
    case LT_DTYPE_U8: return "U8";
    case LT_DTYPE_I32: return "I32";
    case LT_DTYPE_I64: return "I64";
    }
    return "?";
}

float lt_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400u));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13) | (man ? 0x400000u : 0);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t lt_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u;           /* NaN */
    if (a >= 0x477ff000u) return sign | 0x7c00u;          /* rounds to >= 65520: inf */
    if (a < 0x38800000u) {                                /* below the smallest normal half */
        if (a < 0x33000000u) return sign;                 /* below half the smallest subnormal */
        uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e;                         /* 14..24 */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (q & 1u))) q++;
        return sign | (uint16_t)q;
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1u);           /* RNE on the 13 dropped bits */
    return sign | (uint16_t)((r - 0x38000000u) >> 13);
}
