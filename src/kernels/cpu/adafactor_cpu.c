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

/* Per thread: double column sums of u and of g^2/R, and float partials of both
 * (two float arrays in `cols` doubles). */
size_t lt_kernel_adafactor_work(size_t cols) { return 3 * (size_t)omp_get_max_threads() * cols; }

/* Rows are taken NB at a time so each column partial is loaded and stored once
 * per NB rows; the float partials are folded into double every FLUSH_ROWS rows. */
#define AF_FLUSH_ROWS 64

typedef struct {
    lt_karr g;
    size_t off, cols;
    float gs, eps1, b2t, omb2t;
    float *R;
} rowcol_args;

static inline __attribute__((always_inline)) void rowcol_block(const rowcol_args *A, size_t r0, const int NB,
                                                               float *restrict colf, float *restrict wf,
                                                               float (*buf)[LT_CPU_CHUNK]) {
    const size_t cols = A->cols;
    const float gs = A->gs, eps1 = A->eps1;
    double rs[4] = {0, 0, 0, 0};
    float inv[4];
    const float *gr[4];
    for (size_t c0 = 0; c0 < cols; c0 += LT_CPU_CHUNK) {
        size_t len = cols - c0 < LT_CPU_CHUNK ? cols - c0 : LT_CPU_CHUNK;
        for (int k = 0; k < NB; k++) gr[k] = seg_f32(A->g, A->off + (r0 + k) * cols + c0, len, buf[k]);
        float part[4][8] = {{0}};
        float *restrict cf = colf + c0;
        size_t c = 0;
        /* the 8-wide loop in pieces (multiples of 8: the same order), the rows' next lines requested ahead */
        for (size_t s = 0; s + 8 <= len; s += LT_PF_PIECE) {
            const size_t e = s + LT_PF_PIECE < len ? s + LT_PF_PIECE : len;
            if (A->g.dt == LT_DTYPE_F32)
                for (int k = 0; k < NB; k++) lt_prefetch_ahead(gr[k] + s, (e - s) * sizeof(float), 0);
            for (; c + 8 <= e; c += 8)
                for (int j = 0; j < 8; j++) {
                    float sum = 0.0f;
                    for (int k = 0; k < NB; k++) {
                        float gi = gr[k][c + j] * gs;
                        float u = gi * gi + eps1;
                        part[k][j] += u;
                        sum += u;
                    }
                    cf[c + j] += sum;
                }
        }
        for (; c < len; c++) {
            float sum = 0.0f;
            for (int k = 0; k < NB; k++) {
                float gi = gr[k][c] * gs;
                float u = gi * gi + eps1;
                part[k][0] += u;
                sum += u;
            }
            cf[c] += sum;
        }
        for (int k = 0; k < NB; k++)
            for (int j = 0; j < 8; j++) rs[k] += part[k][j];
    }
    for (int k = 0; k < NB; k++) {
        float rn = fmaf(A->omb2t, (float)rs[k] / (float)cols, A->R[r0 + k] * A->b2t);
        A->R[r0 + k] = rn;
        inv[k] = 1.0f / rn;
    }
    /* second sweep: the rows are still in L1/L2 */
    for (size_t c0 = 0; c0 < cols; c0 += LT_CPU_CHUNK) {
        size_t len = cols - c0 < LT_CPU_CHUNK ? cols - c0 : LT_CPU_CHUNK;
        for (int k = 0; k < NB; k++) gr[k] = seg_f32(A->g, A->off + (r0 + k) * cols + c0, len, buf[k]);
        float *restrict wp = wf + c0;
        for (size_t c = 0; c < len; c++) {
            float sum = 0.0f;
            for (int k = 0; k < NB; k++) {
                float gi = gr[k][c] * gs;
                sum += (gi * gi) * inv[k];
            }
            wp[c] += sum;
        }
    }
}

static void flush(float *restrict f, double *restrict d, size_t n) {
    for (size_t c = 0; c < n; c++) {
        d[c] += f[c];
        f[c] = 0.0f;
    }
}

LT_KERNEL void lt_kernel_adafactor_rowcol(lt_karr g, size_t off, float gs, size_t rows, size_t cols, float eps1,
                                          float *R, float b2t, float omb2t, float *colsum, double *w, double *work,
                                          size_t work_len) {
    size_t nt = work_len / (3 * cols), maxt = (size_t)omp_get_max_threads();
    if (nt < 1) nt = 1; /* callers always give at least one thread's accumulators */
    if (nt > maxt) nt = maxt;
    if (rows * cols < AF_PAR_MIN) nt = 1;
    for (size_t k = 0; k < 3 * nt * cols; k++) work[k] = 0.0;
    const rowcol_args A = {g, off, cols, gs, eps1, b2t, omb2t, R};
    const size_t nblk = (rows + 3) / 4;
#pragma omp parallel num_threads((int)nt)
    {
        double *colacc = work + (size_t)omp_get_thread_num() * 3 * cols, *wacc = colacc + cols;
        float *colf = (float *)(wacc + cols), *wf = colf + cols;
        float buf[4][LT_CPU_CHUNK];
        size_t since_flush = 0;
#pragma omp for schedule(static)
        for (size_t blk = 0; blk < nblk; blk++) {
            size_t r0 = blk * 4;
            if (r0 + 4 <= rows) {
                rowcol_block(&A, r0, 4, colf, wf, buf);
            } else {
                for (size_t r = r0; r < rows; r++) rowcol_block(&A, r, 1, colf, wf, buf);
            }
            since_flush += 4;
            if (since_flush >= AF_FLUSH_ROWS) {
                flush(colf, colacc, cols);
                flush(wf, wacc, cols);
                since_flush = 0;
            }
        }
        flush(colf, colacc, cols);
        flush(wf, wacc, cols);
    }
    for (size_t c = 0; c < cols; c++) {
        double s = 0.0, ws = 0.0;
        for (size_t t = 0; t < nt; t++) {
            s += work[t * 3 * cols + c];
            ws += work[t * 3 * cols + cols + c];
        }
        colsum[c] = (float)s;
        w[c] = ws;
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
        /* in pieces, the streamed operands' next lines requested ahead (foreach.h) */
        for (size_t s = 0; s < len; s += LT_PF_PIECE) {
            const size_t e = s + LT_PF_PIECE < len ? s + LT_PF_PIECE : len;
            if (g.dt == LT_DTYPE_F32) lt_prefetch_ahead(gr + s, (e - s) * sizeof(float), 0);
            if (p.dt == LT_DTYPE_F32) lt_prefetch_ahead(pr + s, (e - s) * sizeof(float), 1);
            if (mr) lt_prefetch_ahead(mr + s, (e - s) * sizeof(float), 1);
            for (size_t c = s; c < e; c++) {
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
