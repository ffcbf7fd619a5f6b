/* Host side of the CUDA work lists (kernels/cuda/cu_plan.h): units per item,
 * vector-access checks, the device copy of a search table and Adafactor's
 * workspace layout. Plain C, built in every configuration and tested on the
 * host (tests/test_cuda_host.c). */
#include <math.h>
#include <string.h>

#include "kernels/cuda/cu_plan.h"
#include "kernels/quant.h"

uint64_t lt_cu_units(int kind, const lt_cu_item *it) {
    switch (kind) {
    case LT_CU_BNB8_ADAM:
    case LT_CU_BNB8_LION: return lt_cu_qblocks(it->n, it->h.bnb.block);
    case LT_CU_AO8:
    case LT_CU_AO4: return it->n / it->h.ao.block;
    case LT_CU_AF_ROWS:
        return it->h.af.factored ? it->h.af.batch * ((it->h.af.rows + LT_CU_ROWS - 1) / LT_CU_ROWS) : 0;
    case LT_CU_AF_VEC: return it->h.af.factored ? 0 : lt_cu_chunks(it->n);
    case LT_CU_AF_PSUM: return it->h.af.scale_parameter ? lt_cu_chunks(it->n) : 0;
    case LT_CU_AF_FINAL: return 1;
    default: return lt_cu_chunks(it->n);
    }
}

uint64_t lt_cu_assign_units(int kind, lt_cu_item *it, int count) {
    uint64_t total = 0;
    for (int i = 0; i < count; i++) {
        it[i].unit0 = total;
        total += lt_cu_units(kind, &it[i]);
    }
    return total;
}

static int aligned(const void *ptr, size_t bytes) { return ptr == NULL || (uintptr_t)ptr % bytes == 0; }

int lt_cu_vec_ok(const lt_cu_item *it, int kind) {
    if (!aligned(it->p, 4 * lt_dtype_size((lt_dtype)it->pdt)) || !aligned(it->g, 4 * lt_dtype_size((lt_dtype)it->gdt)))
        return 0;
    if (kind <= LT_CU_EW_LAST) {
        for (int k = 0; k < 4; k++)
            if (!aligned(it->s[k], 4 * lt_dtype_size((lt_dtype)it->sdt[k]))) return 0;
        return 1;
    }
    switch (kind) {
    case LT_CU_BNB8_ADAM:
    case LT_CU_BNB8_LION:
    case LT_CU_AO8: return aligned(it->q[0], 4) && aligned(it->q[2], 4);
    case LT_CU_AO4: return aligned(it->q[0], 2) && aligned(it->q[2], 2);
    case LT_CU_AF_PSUM:
    case LT_CU_AF_ROWS:
    case LT_CU_AF_VEC:
    case LT_CU_AF_FINAL:
    case LT_CU_AF_APPLY:
        /* a factored tensor's four consecutive elements must share a row */
        return aligned(it->h.af.m, 16) && aligned(it->h.af.C, 16) && (!it->h.af.factored || it->h.af.cols % 4 == 0);
    default: return 1;
    }
}

int lt_cu_qtab_build(lt_cu_qtab *d, const lt_qtable *t) {
    memset(d, 0, sizeof *d);
    if (t->n < 2 || t->n > 256) return -1;
    for (int i = 0; i < t->n; i++) d->map[i] = t->map[i];
    for (int i = 0; i < 256; i++) d->th[i] = t->th[i];
    d->n = t->n;
    d->nneg = t->nneg;
    /* bitsandbytes' sign fix (lt_cu_signfix) moves a code one step toward x's side of the table when its side
     * (c < nneg: negative) is not x's. When code nneg is 0 with thresholds of both signs around it (th[nneg-1]
     * <= 0 < th[nneg]), a positive quotient (+0 included) lands on code nneg or above, never on the wrong side,
     * and a negative one (-0 included) on nneg or below, at most one code past its side. So only a negative
     * non-zero x on code nneg moves, to nneg - 1: the fix is min(c, nneg - 1) for those x and nothing for the
     * rest (lt_cu_quantize_f; the quotient keeps x's sign, the maximum being positive) */
    d->sfclamp = t->nneg >= 1 && t->nneg < t->n && t->map[t->nneg] == 0.0f && t->th[t->nneg - 1] <= 0.0f &&
                 t->th[t->nneg] > 0.0f;
    /* inf and NaN: whatever the CPU search gives them (it is called with NaN
     * when a block overflows; see lowbit_cpu.c) */
    const uint32_t special[2][2] = {{0x7f800000u, 0xff800000u}, {0x7fc00000u, 0xffc00000u}};
    for (int s = 0; s < 2; s++) {
        float inf, nan;
        memcpy(&inf, &special[0][s], 4);
        memcpy(&nan, &special[1][s], 4);
        d->inf_code[s] = lt_q_nearest(t, inf);
        d->nan_code[s] = lt_q_nearest(t, nan);
    }
    d->fast = 0;
    if (!t->fast) return 0;
    /* every threshold must be non-zero and at least 2^(emin-127) in magnitude, so
     * that below that one code per sign is right */
    float minabs = INFINITY;
    for (int c = 0; c + 1 < t->n; c++) {
        if (t->th[c] == 0.0f) return 0;
        if (fabsf(t->th[c]) < minabs) minabs = fabsf(t->th[c]);
    }
    uint32_t bits;
    memcpy(&bits, &minabs, 4);
    int emin = (int)((bits >> 23) & 0xffu);
    if (emin > 127) emin = 127;
    if (emin < 2 || (129 - emin) * 256 > LT_CU_QNEAR) return 0; /* thresholds too small: binary search */
    d->base = (emin - 1) * 128;
    d->half = (129 - emin) * 128;
    const int small_code[2] = {lt_q_nearest(t, 0.0f), lt_q_nearest(t, -0.0f)}; /* the row below emin */
    for (int s = 0; s < 2; s++)
        for (int e = emin - 1; e <= 127; e++)
            for (int m = 0; m < 128; m++) {
                uint32_t bucket = ((uint32_t)s << 15) | ((uint32_t)e << 7) | (uint32_t)m;
                d->near[s * d->half + (e - (emin - 1)) * 128 + m] =
                    e < emin ? (uint8_t)small_code[s] : t->near[bucket];
            }
    d->fast = 1;
    return 0;
}

/* the next piece at *cur (integer arithmetic: base may be NULL when only sizing) */
static uintptr_t take(uintptr_t *cur, size_t bytes) {
    uintptr_t r = *cur;
    *cur += (bytes + 15) / 16 * 16;
    return r;
}

size_t lt_cu_af_layout(lt_cu_item *it, char *base) {
    lt_kaf_dev *a = &it->h.af;
    uintptr_t cur = (uintptr_t)base;
    a->ngroups = (uint32_t)((a->rows + LT_CU_ROWS - 1) / LT_CU_ROWS);
    a->nchunks = (uint32_t)lt_cu_chunks(it->n);
    if (a->factored) {
        a->colpart = (float *)take(&cur, a->batch * a->ngroups * 2 * a->cols * sizeof(float));
        a->rf = (float *)take(&cur, a->batch * a->rows * sizeof(float));
        a->cf = (float *)take(&cur, a->batch * a->cols * sizeof(float));
        a->part = NULL;
    } else {
        a->colpart = NULL;
        a->rf = a->cf = NULL;
        a->part = (double *)take(&cur, a->nchunks * sizeof(double));
    }
    a->psum = a->scale_parameter ? (double *)take(&cur, a->nchunks * sizeof(double)) : NULL;
    a->scal = (float *)take(&cur, 4 * sizeof(float));
    return (size_t)(cur - (uintptr_t)base);
}
