/* The work list of the multi-tensor CUDA kernels, in C that both nvcc and the
 * C compiler build (tests/test_cuda_host.c checks it on the host).
 *
 * A launch covers many tensors. The host lists them as lt_cu_item
 * descriptors (pointers, dtypes, count, the kernel's scalars) and gives each
 * item a range of work units: fixed chunks of LT_CU_CHUNK elements for the
 * elementwise passes, quantization blocks for the low-bit kernels, groups of
 * LT_CU_ROWS rows for Adafactor's row pass. unit0 is the item's first unit;
 * a CTA (or a group of threads) finds its item by binary search over unit0
 * (lt_cu_find), so the list is one upload per step and the grid is the sum of
 * the units. */
#ifndef LT_KERNELS_CUDA_CU_PLAN_H
#define LT_KERNELS_CUDA_CU_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/cuda/cu_math.h"

#define LT_CU_CHUNK 8192   /* elements per unit of the elementwise passes */
#define LT_CU_THREADS 256  /* threads per CTA of the elementwise passes */
#define LT_CU_ROWS 64      /* rows per unit of Adafactor's row pass */
#define LT_CU_ROWB 4       /* rows the row pass reads together */

/* Kinds of launch. */
enum {
    LT_CU_ADAM = 0,
    LT_CU_ANYPREC,
    LT_CU_SGD,
    LT_CU_ADAGRAD,
    LT_CU_RMSPROP,
    LT_CU_LION,
    LT_CU_BNB32_ADAM,
    LT_CU_BNB32_LION,
    LT_CU_AO_PLAIN,
    LT_CU_EW_LAST = LT_CU_AO_PLAIN, /* the kinds above are elementwise */
    LT_CU_CHECK,                    /* the found-inf check over gradients */
    LT_CU_BNB8_ADAM,                /* low-bit blockwise */
    LT_CU_BNB8_LION,
    LT_CU_AO8,
    LT_CU_AO4,
    LT_CU_AF_PSUM, /* Adafactor: sum of p^2 (scale_parameter) */
    LT_CU_AF_ROWS, /* factored: row/column sums and the clipping norm's column terms */
    LT_CU_AF_VEC,  /* vector: V and the clipping norm's partial sums */
    LT_CU_AF_FINAL, /* per tensor: factors, C, lr_t, clipdiv */
    LT_CU_AF_APPLY, /* the update */
    LT_CU_NKINDS
};

/* Adafactor's per-tensor operands on the device (see lt_kaf_args). The
 * workspace pointers index the flush's workspace: colpart holds, per row
 * group, the group's column sums of u and of g^2/R (2 x cols floats); part and
 * psum one double per chunk; rf, cf the factors; scal lr_t, clipdiv, wd_lr. */
typedef struct lt_kaf_dev {
    double rho, eps2, clip, wd;
    float eps1, b2t, omb2t, b1;
    uint64_t batch, rows, cols;
    float *R, *C, *m;
    float *colpart;
    double *part, *psum;
    float *rf, *cf, *scal;
    uint32_t ngroups; /* row groups per batch */
    uint32_t nchunks; /* chunks of the tensor */
    int32_t factored, scale_parameter;
} lt_kaf_dev;

typedef struct lt_cu_item {
    void *p;         /* parameter (device) */
    const void *g;   /* gradient (device) */
    void *s[4];      /* elementwise states */
    void *q[4];      /* low-bit: codes1, scale1, codes2, scale2 */
    uint64_t n;      /* elements */
    uint64_t unit0;  /* first work unit of this item in its launch */
    float gscale;
    uint32_t sr;     /* bf16 parameter: stochastic rounding seed (0: nearest even) */
    uint8_t pdt, gdt;
    uint8_t sdt[4];
    uint8_t vec;     /* every operand is aligned for 4-element vector access */
    uint8_t flags;   /* LT_CU_ITEM_* */
    union {
        lt_kadam adam;
        lt_kanyprec anyprec;
        lt_ksgd sgd;
        lt_kadagrad adagrad;
        lt_krmsprop rmsprop;
        lt_klion lion;
        lt_kbnb bnb;
        lt_kao ao;
        lt_kaf_dev af;
    } h;
} lt_cu_item;

/* lt_cu_item.flags: bnb 8-bit Adam hyperparameters that allow the kernel's voted step (cu_math.h
 * lt_cu_bnb8_nb_usable), decided when the tensor is queued */
#define LT_CU_ITEM_NB 1

/* the uploaded list keeps each launch's unit0 values right after its items: both 16-byte aligned */
#ifdef __cplusplus
static_assert(sizeof(lt_cu_item) % 16 == 0, "lt_cu_item must be a multiple of 16 bytes");
#else
_Static_assert(sizeof(lt_cu_item) % 16 == 0, "lt_cu_item must be a multiple of 16 bytes");
#endif

/* The index of the item whose units contain `unit`: the last item with unit0 <= unit. */
LT_KHD static inline int lt_cu_find(const lt_cu_item *it, int count, uint64_t unit) {
    int lo = 0, hi = count - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) >> 1;
        if (it[mid].unit0 <= unit) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

/* The same search over the launch's copy of the items' unit0 values, which the
 * upload places right after the items (lt_cu_starts): 8 bytes per item, so the
 * search touches a few cache lines instead of one per probe. */
LT_KHD static inline int lt_cu_find_start(const uint64_t *start, int count, uint64_t unit) {
    int lo = 0, hi = count - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) >> 1;
        if (start[mid] <= unit) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}
LT_KHD static inline const uint64_t *lt_cu_starts(const lt_cu_item *items, int count) {
    return (const uint64_t *)(const void *)(items + count);
}
/* Bytes a launch's list takes: its items, then their unit0 values (padded to 16 bytes). */
LT_KHD static inline size_t lt_cu_list_bytes(int count) {
    return (size_t)count * sizeof(lt_cu_item) + ((size_t)count * 8 + 15) / 16 * 16;
}

LT_KHD static inline uint64_t lt_cu_chunks(uint64_t n) { return (n + LT_CU_CHUNK - 1) / LT_CU_CHUNK; }

/* Quantization blocks: bitsandbytes covers a partial last block, torchao
 * quantizes only whole blocks (its tensors split evenly). */
LT_KHD static inline uint64_t lt_cu_qblocks(uint64_t n, uint64_t block) { return (n + block - 1) / block; }

/* Element range [*lo, *hi) of unit u of an item of n elements (elementwise passes). */
LT_KHD static inline void lt_cu_chunk_range(uint64_t n, uint64_t u, uint64_t *lo, uint64_t *hi) {
    *lo = u * LT_CU_CHUNK;
    *hi = *lo + LT_CU_CHUNK < n ? *lo + LT_CU_CHUNK : n;
}

/* ---- host side (kernels/cuda_plan.c; no CUDA needed) ---- */
#ifdef __cplusplus
extern "C" {
#endif

/* The units of item `it` in a launch of `kind`. */
uint64_t lt_cu_units(int kind, const lt_cu_item *it);
/* Sets unit0 of count items for a launch of `kind`; returns the total units. */
uint64_t lt_cu_assign_units(int kind, lt_cu_item *it, int count);
/* 1 when every non-NULL operand (p, g, states, low-bit codes) of the item is
 * aligned for 4-element vector access (16 bytes for f32, 8 for bf16, f16). */
int lt_cu_vec_ok(const lt_cu_item *it, int kind);
/* The device copy of a search table (0), or -1 for a table this cannot hold. */
struct lt_qtable;
int lt_cu_qtab_build(lt_cu_qtab *d, const struct lt_qtable *t);

/* Bytes of Adafactor workspace an item needs, with its pieces at the given
 * base (a device address; NULL to size only): sets the workspace pointers of
 * it->h.af (aligned to 16 bytes). */
size_t lt_cu_af_layout(lt_cu_item *it, char *base);
#ifdef __cplusplus
}
#endif

#endif
