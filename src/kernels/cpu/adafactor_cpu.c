/* CPU kernels of Adafactor's passes (see optim/adafactor.c for how they chain).
 * Rows of the [batch*rows, cols] view are split over threads; a row is handled
 * in segments of LT_CPU_CHUNK columns so bf16/f16 operands convert through a
 * small buffer and f32 ones are read in place. */
#include <math.h>
#include <omp.h>

#include "kernels/cpu/foreach.h"

/* Small tensors are done by one thread (team start-up costs more). */
#define AF_PAR_MIN 65536

static inline const float *seg_f32(lt_karr x, size_t off, size_t len, float *buf) {
    if (x.dt == LT_DTYPE_F32) return (const float *)x.ptr + off;
    lt_cpu_load_f32(x, off, buf, len);
    return buf;
}

size_t lt_kernel_adafactor_work(size_t cols) { return (size_t)omp_get_max_threads() * cols; }

LT_KERNEL void lt_kernel_adafactor_rowcol(lt_karr g, float gs, size_t batch, size_t rows, size_t cols, float eps1,
                                float *row_out, float *col_out, double *work, size_t work_len) {
    size_t nt = work_len / cols;
    size_t total = batch * rows * cols;
    if (nt < 1) nt = 1; /* callers always give at least one column accumulator */
    if (nt > (size_t)omp_get_max_threads()) nt = (size_t)omp_get_max_threads();
    if (total < AF_PAR_MIN) nt = 1;
    for (size_t b = 0; b < batch; b++) {
        for (size_t k = 0; k < nt * cols; k++) work[k] = 0.0;
#pragma omp parallel num_threads((int)nt)
        {
            double *colacc = work + (size_t)omp_get_thread_num() * cols;
            float buf[LT_CPU_CHUNK];
#pragma omp for schedule(static)
            for (size_t r = 0; r < rows; r++) {
                size_t base = (b * rows + r) * cols;
                double rs = 0.0;
                for (size_t c0 = 0; c0 < cols; c0 += LT_CPU_CHUNK) {
                    size_t len = cols - c0 < LT_CPU_CHUNK ? cols - c0 : LT_CPU_CHUNK;
                    const float *restrict gr = seg_f32(g, base + c0, len, buf);
                    double *restrict ca = colacc + c0;
                    float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
                    size_t c = 0;
                    for (; c + 8 <= len; c += 8)
                        for (int k = 0; k < 8; k++) {
                            float gi = gr[c + k] * gs;
                            float u = gi * gi + eps1;
                            part[k] += u;
                            ca[c + k] += u;
                        }
                    for (; c < len; c++) {
                        float gi = gr[c] * gs;
                        float u = gi * gi + eps1;
                        part[0] += u;
                        ca[c] += u;
                    }
                    for (int k = 0; k < 8; k++) rs += part[k];
                }
                row_out[b * rows + r] = (float)rs;
            }
        }
        for (size_t c = 0; c < cols; c++) {
            double s = 0.0;
            for (size_t t = 0; t < nt; t++) s += work[t * cols + c];
            col_out[b * cols + c] = (float)s;
        }
    }
}

LT_KERNEL double lt_kernel_adafactor_vec_v(lt_karr g, float gs, float *V, size_t n, float b2t, float eps1) {
    const float omb2t = 1.0f - b2t;
    size_t nchunks = (n + LT_CPU_CHUNK - 1) / LT_CPU_CHUNK;
    double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (n >= AF_PAR_MIN)
    for (size_t ch = 0; ch < nchunks; ch++) {
        size_t off = ch * LT_CPU_CHUNK, len = n - off < LT_CPU_CHUNK ? n - off : LT_CPU_CHUNK;
        float buf[LT_CPU_CHUNK];
        const float *restrict gr = seg_f32(g, off, len, buf);
        float *restrict v = V + off;
        float part = 0.0f;
        for (size_t i = 0; i < len; i++) {
            float gi = gr[i] * gs;
            float vi = fmaf(omb2t, gi * gi + eps1, v[i] * b2t);
            v[i] = vi;
            float u = 1.0f / sqrtf(vi) * gi;
            part += u * u;
        }
        total += part;
    }
    return total;
}

LT_KERNEL double lt_kernel_adafactor_update_sumsq(lt_karr g, float gs, size_t batch, size_t rows, size_t cols,
                                        const float *rf, const float *cf) {
    size_t nrows = batch * rows;
    double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (nrows * cols >= AF_PAR_MIN)
    for (size_t br = 0; br < nrows; br++) {
        const float rfi = rf[br];
        const float *restrict cfb = cf + (br / rows) * cols;
        float buf[LT_CPU_CHUNK];
        for (size_t c0 = 0; c0 < cols; c0 += LT_CPU_CHUNK) {
            size_t len = cols - c0 < LT_CPU_CHUNK ? cols - c0 : LT_CPU_CHUNK;
            const float *restrict gr = seg_f32(g, br * cols + c0, len, buf);
            float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            size_t c = 0;
            for (; c + 8 <= len; c += 8)
                for (int k = 0; k < 8; k++) {
                    float u = (rfi * cfb[c0 + c + k]) * (gr[c + k] * gs);
                    part[k] += u * u;
                }
            for (; c < len; c++) {
                float u = (rfi * cfb[c0 + c]) * (gr[c] * gs);
                part[0] += u * u;
            }
            double s = 0.0;
            for (int k = 0; k < 8; k++) s += part[k];
            total += s;
        }
    }
    return total;
}

LT_KERNEL void lt_kernel_adafactor_apply(lt_karr p, lt_karr g, float *m, float gs, size_t batch, size_t rows,
                               size_t cols, const float *rf, const float *cf, float clipdiv, float lr_t,
                               float b1, float wd_lr) {
    size_t nrows = batch * rows;
    const float omb1 = 1.0f - b1, nwd = -wd_lr;
    /* a vector is one long row: split it by segments instead of rows */
    size_t nseg = (cols + LT_CPU_CHUNK - 1) / LT_CPU_CHUNK;
    size_t units = nrows * nseg;
#pragma omp parallel for schedule(static) if (nrows * cols >= AF_PAR_MIN)
    for (size_t un = 0; un < units; un++) {
        size_t br = un / nseg, c0 = (un % nseg) * LT_CPU_CHUNK;
        size_t len = cols - c0 < LT_CPU_CHUNK ? cols - c0 : LT_CPU_CHUNK;
        size_t off = br * cols + c0;
        float gbuf[LT_CPU_CHUNK], pbuf[LT_CPU_CHUNK];
        const float *restrict gr = seg_f32(g, off, len, gbuf);
        float *restrict pr = p.dt == LT_DTYPE_F32 ? (float *)p.ptr + off : pbuf;
        if (p.dt != LT_DTYPE_F32) lt_cpu_load_f32(p, off, pbuf, len);
        float *restrict mr = m ? m + off : NULL;
        const float *restrict cfb = rf ? cf + (br / rows) * cols + c0 : cf + off;
        const float rfi = rf ? rf[br] : 1.0f;
        for (size_t c = 0; c < len; c++) {
            float gi = gr[c] * gs;
            float u = rf ? (rfi * cfb[c]) * gi : (1.0f / sqrtf(cfb[c])) * gi;
            u = u / clipdiv * lr_t;
            if (mr) {
                u = fmaf(omb1, u, mr[c] * b1);
                mr[c] = u;
            }
            float pi = pr[c];
            pi = fmaf(nwd, pi, pi);
            pr[c] = pi + -u;
        }
        if (p.dt != LT_DTYPE_F32) lt_cpu_store_f32(p, off, pbuf, len);
    }
}

LT_KERNEL double lt_kernel_sumsq(lt_karr x, size_t n) {
    size_t nchunks = (n + LT_CPU_CHUNK - 1) / LT_CPU_CHUNK;
    double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (n >= AF_PAR_MIN)
    for (size_t ch = 0; ch < nchunks; ch++) {
        size_t off = ch * LT_CPU_CHUNK, len = n - off < LT_CPU_CHUNK ? n - off : LT_CPU_CHUNK;
        float buf[LT_CPU_CHUNK];
        const float *restrict xr = seg_f32(x, off, len, buf);
        float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        size_t i = 0;
        for (; i + 8 <= len; i += 8)
            for (int k = 0; k < 8; k++) part[k] += xr[i + k] * xr[i + k];
        for (; i < len; i++) part[0] += xr[i] * xr[i];
        double s = 0.0;
        for (int k = 0; k < 8; k++) s += part[k];
        total += s;
    }
    return total;
}
