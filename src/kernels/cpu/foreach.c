/* The CPU elementwise driver (see foreach.h). */
#include "kernels/cpu/foreach.h"

#include <omp.h>
#include <string.h>


/* Both conversions go in pieces of LT_PF_PIECE, each asking for the 16-bit side's lines ahead (foreach.h). */
LT_KERNEL void lt_cpu_load_f32(lt_karr x, size_t off, float *out, size_t n) {
    const size_t es = x.dt == LT_DTYPE_F32 ? sizeof(float) : sizeof(uint16_t);
    for (size_t s = 0; s < n; s += LT_PF_PIECE) {
        const size_t e = s + LT_PF_PIECE < n ? s + LT_PF_PIECE : n;
        lt_prefetch_ahead((const char *)x.ptr + (off + s) * es, (e - s) * es, 0);
        if (x.dt == LT_DTYPE_F32) {
            const float *src = (const float *)x.ptr + off;
            for (size_t i = s; i < e; i++) out[i] = src[i];
        } else if (x.dt == LT_DTYPE_BF16) {
            const uint16_t *src = (const uint16_t *)x.ptr + off;
            for (size_t i = s; i < e; i++) out[i] = lt_bf16_to_f32(src[i]);
        } else {
            const uint16_t *src = (const uint16_t *)x.ptr + off;
            for (size_t i = s; i < e; i++) out[i] = lt_f16_to_f32(src[i]);
        }
    }
}

/* With an AVX-512 clone besides LT_KERNEL's: stochastic rounding's hash multiplies 64-bit integers, which AVX2 has no
 * vector instruction for (AVX512DQ has: 4.6% of a pure-bf16 GPT-2 step went to this loop on the AVX2 clone); integer
 * arithmetic, so every clone gives the same bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(LT_NO_CLONES)
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
void lt_cpu_store_f32(lt_karr x, size_t off, const float *in, size_t n) {
    const size_t es = x.dt == LT_DTYPE_F32 ? sizeof(float) : sizeof(uint16_t);
    for (size_t s = 0; s < n; s += LT_PF_PIECE) {
        const size_t e = s + LT_PF_PIECE < n ? s + LT_PF_PIECE : n;
        lt_prefetch_ahead((char *)x.ptr + (off + s) * es, (e - s) * es, 1);
        if (x.dt == LT_DTYPE_F32) {
            float *dst = (float *)x.ptr + off;
            for (size_t i = s; i < e; i++) dst[i] = in[i];
        } else if (x.dt == LT_DTYPE_BF16 && x.sr) { /* stochastic rounding: the bits depend on the element index */
            uint16_t *dst = (uint16_t *)x.ptr + off;
            for (size_t i = s; i < e; i++) dst[i] = lt_f32_to_bf16_sr(in[i], lt_sr_bits(x.sr, off + i));
        } else if (x.dt == LT_DTYPE_BF16) {
            uint16_t *dst = (uint16_t *)x.ptr + off;
            for (size_t i = s; i < e; i++) dst[i] = lt_f32_to_bf16(in[i]);
        } else {
            uint16_t *dst = (uint16_t *)x.ptr + off;
            for (size_t i = s; i < e; i++) dst[i] = lt_f32_to_f16(in[i]);
        }
    }
}

/* Below this many elements a tensor is stepped by one thread: waking the team
 * costs more than the work. */
#define LT_CPU_PAR_MIN 65536

void lt_cpu_foreach(const lt_ktensor *t, lt_chunk_fn fn, const void *h) {
    const lt_karr *ops[6] = {&t->p, &t->g, &t->s[0], &t->s[1], &t->s[2], &t->s[3]};
    size_t n = t->n, nchunks = (n + LT_CPU_CHUNK - 1) / LT_CPU_CHUNK;
    int direct = 1; /* every operand f32: no buffers at all */
    for (int k = 0; k < 6; k++)
        if (ops[k]->ptr && ops[k]->dt != LT_DTYPE_F32) direct = 0;

#pragma omp parallel for schedule(static) if (n >= LT_CPU_PAR_MIN)
    for (size_t c = 0; c < nchunks; c++) {
        size_t off = c * LT_CPU_CHUNK, len = n - off < LT_CPU_CHUNK ? n - off : LT_CPU_CHUNK;
        float buf[6][LT_CPU_CHUNK];
        float *a[6];
        for (int k = 0; k < 6; k++) {
            if (!ops[k]->ptr) {
                a[k] = NULL;
            } else if (direct || ops[k]->dt == LT_DTYPE_F32) {
                a[k] = (float *)ops[k]->ptr + off;
            } else {
                lt_cpu_load_f32(*ops[k], off, buf[k], len);
                a[k] = buf[k];
            }
        }
        /* in pieces, each f32 operand read in place getting its lines requested LT_PF_AHEAD bytes ahead
         * (foreach.h; the 16-bit ones are prefetched by their conversions) */
        for (size_t s = 0; s < len; s += LT_PF_PIECE) {
            const size_t pl = len - s < LT_PF_PIECE ? len - s : LT_PF_PIECE;
            float *ap[6];
            for (int k = 0; k < 6; k++) {
                ap[k] = a[k] ? a[k] + s : NULL;
                if (ap[k] && ops[k]->dt == LT_DTYPE_F32) lt_prefetch_ahead(ap[k], pl * sizeof(float), k != 1);
            }
            fn(ap, pl, t->gscale, h);
        }
        if (!direct)
            for (int k = 0; k < 6; k++)
                if (k != 1 && ops[k]->ptr && ops[k]->dt != LT_DTYPE_F32) lt_cpu_store_f32(*ops[k], off, buf[k], len);
    }
}

/* Each thread memcpy's its contiguous share: the C library's large copy (with
 * non-temporal stores where it chooses them) is the best copy this machine
 * does, which makes it the honest yardstick for the optimizer kernels. */
void lt_kernel_copy(float *dst, const float *src, size_t n) {
#pragma omp parallel
    {
        size_t nt = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num();
        size_t lo = n * t / nt, hi = n * (t + 1) / nt;
        memcpy(dst + lo, src + lo, (hi - lo) * sizeof *dst);
    }
}

/* The yardstick's in-place pass, with the same prefetching as the optimizer kernels (foreach.h), so that
 * their bw_ratio compares like with like. */
LT_KERNEL void lt_kernel_negate(float *x, size_t n) {
    const size_t npieces = (n + LT_PF_PIECE - 1) / LT_PF_PIECE;
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < npieces; k++) {
        float *xk = x + k * LT_PF_PIECE;
        const size_t len = n - k * LT_PF_PIECE < LT_PF_PIECE ? n - k * LT_PF_PIECE : LT_PF_PIECE;
        lt_prefetch_ahead(xk, len * sizeof(float), 1);
        for (size_t i = 0; i < len; i++) xk[i] = -xk[i];
    }
}
