/* Multi-tensor Adafactor: the passes of optim/adafactor.c with every
 * data-dependent scalar computed on the device (no host round-trip).
 *
 *   psum   (scale_parameter only) per chunk: sum of p^2
 *   rows   factored tensors, per group of LT_CU_ROWS rows of one batch
 *          matrix: reads each row of g once from memory (and again from
 *          L2, or from the staged tile still in shared memory) for the new
 *          row moment R, the group's column sums of
 *          u = (g*gs)^2 + eps1 and of (g*gs)^2 / R: the latter give the
 *          unclipped update's norm without another pass over g; the first
 *          read goes through shared memory (cp.async) a tile ahead of the
 *          arithmetic, one tile ahead (LT_ADAFACTOR_PIPE=0: plain loads;
 *          =4: AF_STAGES - 1 tiles ahead; =1b, =2b: one or two ahead with
 *          one barrier a group of rows instead of two; the same bits, the
 *          tuner's forms: cu_tune.h)
 *   vec    vectors, per chunk: the new V and the update's squared norm
 *   final  per tensor: C from the column sums, the row and column factors,
 *          lr_t, the clipping divisor, the decay
 *   apply  per chunk: the update (one read of g and p, one write of p)
 * So g is read twice from memory and p once (plus the write): 16 bytes per
 * f32 element against a floor of 12. Partial sums go through fixed-order
 * double reductions, so results do not change from run to run. */
#include "kernels/cuda/cu_internal.cuh"

namespace {

/* arr[c..c+V) += x (one 16-byte access when V = 4: no bank conflicts in shared memory) */
template <int V> __device__ __forceinline__ void acc(float *arr, uint64_t c, const float (&x)[V]) {
    if constexpr (V == 4) {
        LT_ALIGNED(arr + c, 16);
        float4 *q = reinterpret_cast<float4 *>(arr + c);
        float4 y = *q;
        y.x += x[0], y.y += x[1], y.z += x[2], y.w += x[3];
        *q = y;
    } else {
        arr[c] += x[0];
    }
}

__device__ __forceinline__ const lt_cu_item *find_item(const lt_cu_item *items, int count, uint64_t unit) {
    return items + lt_cu_find_start(lt_cu_starts(items, count), count, unit);
}

/* per chunk: sum of p^2 into psum[chunk] */
__global__ void __launch_bounds__(LT_CU_THREADS) af_psum(const lt_cu_item *__restrict__ items, int count,
                                                         const int *flag) {
    __shared__ double red[32];
    if (lt_cu_flag_set(flag)) return;
    const uint64_t unit = blockIdx.x;
    const lt_cu_item *it = find_item(items, count, unit);
    const uint64_t u = unit - it->unit0;
    uint64_t lo, hi;
    lt_cu_chunk_range(it->n, u, &lo, &hi);
    const void *P = it->p;
    const int pdt = it->pdt;
    float part = 0.0f;
    uint64_t vhi = lo;
    if (it->vec) {
        vhi = lo + ((hi - lo) & ~(uint64_t)3);
        for (uint64_t i = lo + 4 * (uint64_t)threadIdx.x; i < vhi; i += 4 * LT_CU_THREADS) {
            float x[4];
            lt_ld<4>(P, pdt, i, x);
#pragma unroll
            for (int j = 0; j < 4; j++) part += x[j] * x[j];
        }
    }
    for (uint64_t i = vhi + threadIdx.x; i < hi; i += LT_CU_THREADS) {
        float x[1];
        lt_ld<1>(P, pdt, i, x);
        part += x[0] * x[0];
    }
    double s = lt_cu_block_sum((double)part, red);
    if (threadIdx.x == 0) it->h.af.psum[u] = s;
}

/* The staged row pass's tiles: LT_CU_ROWB rows x one chunk of LT_CU_THREADS * 4 columns, each thread's 4
 * columns of each row in its own 16-byte slot (8 bytes used for a 16-bit g), 16 KB a stage. AF_STAGES stages
 * keep AF_STAGES - 1 tiles in flight: with 2 (one ahead, the default) the pass read a 262M-parameter step's 1 GB
 * of gradients in 480-483 us on an H200, 0.51 of its copy bandwidth, each CTA waiting for its tile at every group
 * of rows; 4 stages (64 KB, LT_ADAFACTOR_PIPE=4) took 641-647 us there (2026-11-30). */
constexpr int AF_STAGES = 4;
LT_KHD constexpr size_t af_stage_bytes(int nst) { return (size_t)nst * LT_CU_ROWB * LT_CU_THREADS * sizeof(float4); }
/* af_rows' static shared memory (lt_cu_af_smcols counts the larger): the per-warp sums of each row read
 * together, and those rows' 1 / R; with one barrier a row group (B1), the per-warp sums in two buffers, used in
 * turn, and the unit's old row moments, read when it starts */
template <bool B1> struct AfRowsShared {
    double red[LT_CU_ROWB][LT_CU_THREADS / 32];
    float inv_s[LT_CU_ROWB];
};
template <> struct AfRowsShared<true> {
    double red[2][LT_CU_ROWB][LT_CU_THREADS / 32];
    float rold[LT_CU_ROWS];
};
static_assert(LT_CU_ROWS <= LT_CU_THREADS && LT_CU_ROWB <= 32, "B1: a thread per old row moment, a lane per row");

/* V: vector width (4 or 1); SM: column sums in shared memory, else in the group's workspace slot; NST > 0 (V = 4
 * only): the first sweep's tiles of g come through shared memory with cp.async in NST stages, the next NST - 1
 * tiles in flight while this one is summed and while a row group is reduced and swept again, so that the CTA's
 * loads do not stop at every group of rows. B1: one barrier a row group instead of two: the unit's old row
 * moments are read into shared memory when it starts (not by 4 threads between the barriers, a memory latency
 * each group of rows while the CTA waits), and lanes 0..3 of every warp each sum one row's per-warp sums and
 * compute its R and 1 / R, which the warp's shuffles hand to the other lanes; the per-warp sums alternate
 * between two buffers, so a group's writes never meet the previous group's reads (a thread writes buffer i
 * again only after the barrier of group i + 1, which every thread passes after reading buffer i). The same
 * operations in the same order in every form: the same bits. */
template <int V, bool SM, int NST, bool B1 = false>
__global__ void __launch_bounds__(LT_CU_THREADS, 3) af_rows(const lt_cu_item *__restrict__ items, int count,
                                                         const int *flag) {
    constexpr bool PIPE = NST > 0;
    constexpr int NS = PIPE ? NST : 1; /* the modulus of a tile's stage */
    static_assert(!PIPE || V == 4, "the staged row pass moves 4 columns per copy");
    LT_DYN_SMEM(float4, dsm0);
    __shared__ AfRowsShared<B1> sh;
    if (lt_cu_flag_set(flag)) return;
    const uint64_t unit = blockIdx.x;
    const lt_cu_item *it = find_item(items, count, unit);
    const lt_kaf_dev *a = &it->h.af;
    const uint64_t rows = a->rows, cols = a->cols, ng = a->ngroups;
    const uint64_t u = unit - it->unit0, b = u / ng, rg = u % ng;
    const uint64_t r0 = rg * LT_CU_ROWS, r1 = r0 + LT_CU_ROWS < rows ? r0 + LT_CU_ROWS : rows;
    const float gs = it->gscale, eps1 = a->eps1, b2t = a->b2t, omb2t = a->omb2t;
    const void *G = it->g;
    const int gdt = it->gdt;
    float *R = a->R + b * rows;
    float *slot = a->colpart + (b * ng + rg) * 2 * cols;
    float4 *stage = dsm0 + threadIdx.x; /* PIPE: stage s, row k at stage[(s ROWB + k) THREADS] */
    float4 *dsm = dsm0 + af_stage_bytes(NST) / sizeof(float4); /* past the stages */
    float *colp = SM ? reinterpret_cast<float *>(dsm) : slot, *wp = colp + cols;
    const uint64_t gbase = b * rows * cols;
    if constexpr (B1)
        if (threadIdx.x < r1 - r0) sh.rold[threadIdx.x] = R[r0 + threadIdx.x];
    /* each thread owns the columns c = (tid + k*THREADS)*V .. +V-1: no sharing, no barriers for them */
    for (uint64_t c = (uint64_t)threadIdx.x * V; c < cols; c += (uint64_t)LT_CU_THREADS * V)
#pragma unroll
        for (int j = 0; j < V; j++) colp[c + j] = 0.0f, wp[c + j] = 0.0f;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    /* PIPE: tile t is row group t / nchunk (rows r0 + ROWB (t / nchunk) ...), column chunk t % nchunk */
    const uint64_t chunk = (uint64_t)LT_CU_THREADS * V, nchunk = (cols + chunk - 1) / chunk;
    const uint64_t ntiles = (r1 - r0 + LT_CU_ROWB - 1) / LT_CU_ROWB * nchunk;
    const size_t gsz = gdt == LT_DTYPE_F32 ? 4 : 2;
    auto issue = [&](uint64_t t) {
        if (t < ntiles) {
            const uint64_t r = r0 + (t / nchunk) * LT_CU_ROWB, c = (t % nchunk) * chunk + (uint64_t)threadIdx.x * V;
            const int nr = r1 - r < LT_CU_ROWB ? (int)(r1 - r) : LT_CU_ROWB;
            float4 *dst = stage + (t % NS) * LT_CU_ROWB * LT_CU_THREADS;
            if (c < cols)
                for (int k = 0; k < nr; k++) {
                    const char *src = static_cast<const char *>(G) + (gbase + (r + k) * cols + c) * gsz;
                    if (gsz == 4) lt_cp_async<16>(dst + k * LT_CU_THREADS, src);
                    else lt_cp_async<8>(dst + k * LT_CU_THREADS, src);
                }
        }
        lt_cp_commit();
    };
    uint64_t tile = 0;
    if constexpr (PIPE)
        for (int t = 0; t < NST - 1; t++) issue(t);
    for (uint64_t r = r0; r < r1; r += LT_CU_ROWB) {
        const int nr = r1 - r < LT_CU_ROWB ? (int)(r1 - r) : LT_CU_ROWB;
        float racc[LT_CU_ROWB] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (uint64_t ci = 0; ci < nchunk; ci++, tile++) {
            const uint64_t c = ci * chunk + (uint64_t)threadIdx.x * V;
            if constexpr (PIPE) { /* one tile per chunk, whether or not this thread has columns in it */
                issue(tile + NST - 1);
                lt_cp_wait<(NST > 1 ? NST - 1 : 0)>(); /* this tile has landed, the next NST - 1 are in flight */
            }
            if (c >= cols) continue;
            float gv[LT_CU_ROWB][V];
#pragma unroll
            for (int k = 0; k < LT_CU_ROWB; k++)
                if (k < nr) {
                    if constexpr (PIPE) lt_ld<V>(stage + ((tile % NS) * LT_CU_ROWB + k) * LT_CU_THREADS, gdt, 0, gv[k]);
                    else lt_ld<V>(G, gdt, gbase + (r + k) * cols + c, gv[k]);
                }
            float cs[V];
#pragma unroll
            for (int j = 0; j < V; j++) cs[j] = 0.0f;
#pragma unroll
            for (int k = 0; k < LT_CU_ROWB; k++)
                if (k < nr)
#pragma unroll
                    for (int j = 0; j < V; j++) {
                        float gi = gv[k][j] * gs;
                        float uu = gi * gi + eps1;
                        racc[k] += uu;
                        cs[j] += uu;
                    }
            acc<V>(colp, c, cs);
        }
        /* the rows' sums over the CTA, in double, in a fixed order */
        float inv[LT_CU_ROWB];
        if constexpr (B1) {
            const int buf = (int)((r - r0) / LT_CU_ROWB) & 1;
#pragma unroll
            for (int k = 0; k < LT_CU_ROWB; k++) {
                double d = racc[k];
#pragma unroll
                for (int o = 16; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
                if (lane == 0) sh.red[buf][k][warp] = d;
            }
            __syncthreads();
            float il = 0.0f;
            if (lane < nr) { /* every warp's lane k: row r + k, as thread k of the two-barrier form */
                double s = 0.0;
                for (int w = 0; w < LT_CU_THREADS / 32; w++) s += sh.red[buf][lane][w];
                float rn = fmaf(omb2t, (float)s / (float)cols, sh.rold[r - r0 + lane] * b2t);
                if (warp == 0) R[r + lane] = rn;
                il = 1.0f / rn;
            }
#pragma unroll
            for (int k = 0; k < LT_CU_ROWB; k++) inv[k] = __shfl_sync(0xffffffffu, il, k);
        } else {
            auto &red = sh.red;
            auto &inv_s = sh.inv_s;
#pragma unroll
            for (int k = 0; k < LT_CU_ROWB; k++) {
                double d = racc[k];
#pragma unroll
                for (int o = 16; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
                if (lane == 0) red[k][warp] = d;
            }
            __syncthreads();
            if (threadIdx.x < (unsigned)nr) {
                double s = 0.0;
                for (int w = 0; w < LT_CU_THREADS / 32; w++) s += red[threadIdx.x][w];
                /* lt_kernel_adafactor_rowcol: R = fmaf(omb2t, rowsum/cols, R*b2t) */
                float rn = fmaf(omb2t, (float)s / (float)cols, R[r + threadIdx.x] * b2t);
                R[r + threadIdx.x] = rn;
                inv_s[threadIdx.x] = 1.0f / rn;
            }
            __syncthreads();
#pragma unroll
            for (int k = 0; k < LT_CU_ROWB; k++) inv[k] = inv_s[k];
        }
        /* second sweep over the same rows: they are still in L2, and the group's last tile (its only one when
         * cols <= 1024) still in this thread's stage slots: a stage is refilled by the issue one tile later, which
         * comes with the next row group */
        uint64_t ci = 0;
        for (uint64_t c = (uint64_t)threadIdx.x * V; c < cols; c += (uint64_t)LT_CU_THREADS * V, ci++) {
            float gv[LT_CU_ROWB][V];
            const bool staged = PIPE && ci == nchunk - 1;
#pragma unroll
            for (int k = 0; k < LT_CU_ROWB; k++)
                if (k < nr) {
                    if (staged) lt_ld<V>(stage + (((tile - 1) % NS) * LT_CU_ROWB + k) * LT_CU_THREADS, gdt, 0, gv[k]);
                    else lt_ld<V>(G, gdt, gbase + (r + k) * cols + c, gv[k]);
                }
            float ws[V];
#pragma unroll
            for (int j = 0; j < V; j++) {
                float sum = 0.0f;
#pragma unroll
                for (int k = 0; k < LT_CU_ROWB; k++)
                    if (k < nr) {
                        float gi = gv[k][j] * gs;
                        sum += (gi * gi) * inv[k];
                    }
                ws[j] = sum;
            }
            acc<V>(wp, c, ws);
        }
    }
    if (SM)
        for (uint64_t c = (uint64_t)threadIdx.x * V; c < cols; c += (uint64_t)LT_CU_THREADS * V)
#pragma unroll
            for (int j = 0; j < V; j++) slot[c + j] = colp[c + j], slot[cols + c + j] = wp[c + j];
}

/* vectors, per chunk: V = fmaf(1-b2t, g^2 + eps1, V*b2t) and the sum of (g/sqrt(V))^2 */
__global__ void __launch_bounds__(LT_CU_THREADS) af_vec(const lt_cu_item *__restrict__ items, int count,
                                                        const int *flag) {
    __shared__ double red[32];
    if (lt_cu_flag_set(flag)) return;
    const uint64_t unit = blockIdx.x;
    const lt_cu_item *it = find_item(items, count, unit);
    const lt_kaf_dev *a = &it->h.af;
    const uint64_t u = unit - it->unit0;
    uint64_t lo, hi;
    lt_cu_chunk_range(it->n, u, &lo, &hi);
    const void *G = it->g;
    const int gdt = it->gdt;
    float *Vp = a->C;
    /* lt_kernel_adafactor_vec_v computes 1 - b2t in float */
    const float gs = it->gscale, b2t = a->b2t, omb2t = 1.0f - a->b2t, eps1 = a->eps1;
    float part = 0.0f;
    uint64_t vhi = lo;
    if (it->vec) {
        vhi = lo + ((hi - lo) & ~(uint64_t)3);
        for (uint64_t i = lo + 4 * (uint64_t)threadIdx.x; i < vhi; i += 4 * LT_CU_THREADS) {
            float g[4], v[4];
            lt_ld<4>(G, gdt, i, g);
            lt_ld<4>(Vp, LT_DTYPE_F32, i, v);
#pragma unroll
            for (int j = 0; j < 4; j++) part += lt_em_af_vec(g[j], gs, &v[j], b2t, omb2t, eps1);
            lt_st<4>(Vp, LT_DTYPE_F32, i, v, 0);
        }
    }
    for (uint64_t i = vhi + threadIdx.x; i < hi; i += LT_CU_THREADS) {
        float g[1];
        lt_ld<1>(G, gdt, i, g);
        part += lt_em_af_vec(g[0], gs, &Vp[i], b2t, omb2t, eps1);
    }
    double s = lt_cu_block_sum((double)part, red);
    if (threadIdx.x == 0) a->part[u] = s;
}

/* af_final's loops load ahead of using them, in the order a plain loop would (lt_cu_loads_ahead,
 * lt_cu_ordered_sum): otherwise each thread waits out one memory latency per value (the pass took 61 us for
 * 262M parameters on an H200 while reading 33 MB, 8 values ahead and the two column sums one after the other;
 * the column sums' loop over the row groups is the longest). Since 2026-12-01 (unmeasured on a GPU) the two
 * column sums load together: the same additions in the same order. */

/* one CTA per tensor: the scalars of optim/adafactor.c af_step */
__global__ void __launch_bounds__(LT_CU_THREADS) af_final(const lt_cu_item *__restrict__ items, int count,
                                                          const int *flag) {
    __shared__ double red[32];
    if (lt_cu_flag_set(flag)) return;
    if ((int)blockIdx.x >= count) return;
    const lt_cu_item *it = items + blockIdx.x;
    const lt_kaf_dev *a = &it->h.af;
    const uint64_t n = it->n;
    double scale = 1.0;
    if (a->scale_parameter) {
        const double s = lt_cu_block_sum(lt_cu_ordered_sum<double>(a->psum, threadIdx.x, a->nchunks, LT_CU_THREADS), red);
        scale = fmax(a->eps2, sqrt(s / (double)n));
    }
    const float lr_t = (float)(a->rho * scale);
    double sumsq = 0.0;
    if (a->factored) {
        const uint64_t rows = a->rows, cols = a->cols, ng = a->ngroups;
        const float b2t = a->b2t, omb2t = a->omb2t;
        for (uint64_t b = 0; b < a->batch; b++) {
            const float *Rb = a->R + b * rows;
            float *Cb = a->C + b * cols, *rfb = a->rf + b * rows, *cfb = a->cf + b * cols;
            const double rs = lt_cu_block_sum(lt_cu_ordered_sum<double>(Rb, threadIdx.x, rows, LT_CU_THREADS), red);
            const float rmean = (float)(rs / (double)rows);
            lt_cu_loads_ahead(
                threadIdx.x, rows, LT_CU_THREADS, [&](uint64_t r) { return Rb[r]; },
                [&](uint64_t r, float v) { rfb[r] = 1.0f / sqrtf(v / rmean); });
            double ws_t = 0.0;
            for (uint64_t c = threadIdx.x; c < cols; c += LT_CU_THREADS) {
                const float *col = a->colpart + b * ng * 2 * cols + c; /* group g's two sums: col[2 g cols (+ cols)] */
                /* both sums over the row groups in order, their loads together, 8 groups ahead (16 in flight; the
                   two were summed one after the other: the longest columns, 48 groups in GPT-2's c_proj, waited
                   out 12 latencies each instead of 6; 16 ahead spills at this kernel's 64 registers) */
                struct sums {
                    float c, w;
                };
                double cs = 0.0, ws = 0.0;
                lt_cu_loads_ahead<8>(
                    0, ng * 2 * cols, 2 * cols, [&](uint64_t j) { return sums{col[j], col[j + cols]}; },
                    [&](uint64_t, sums v) { cs += v.c, ws += v.w; });
                float cn = fmaf(omb2t, (float)cs / (float)rows, Cb[c] * b2t);
                Cb[c] = cn;
                cfb[c] = 1.0f / sqrtf(cn);
                ws_t += ws / (double)cn;
            }
            double wsum = lt_cu_block_sum(ws_t, red);
            sumsq += (double)rmean * wsum;
        }
    } else {
        sumsq = lt_cu_block_sum(lt_cu_ordered_sum<double>(a->part, threadIdx.x, a->nchunks, LT_CU_THREADS), red);
    }
    if (threadIdx.x == 0) {
        const double rms_u = sqrt(sumsq / (double)n);
        a->scal[0] = lr_t;
        a->scal[1] = (float)fmax(1.0, rms_u / a->clip);
        a->scal[2] = (float)(a->wd * (double)lr_t);
    }
}

/* Element i's row over the batch's matrices (br) and column (c) in a tensor of cols columns, advanced by a fixed
 * step with an add and a compare: one division per thread instead of one per 4 elements (the apply pass ran at
 * 0.85 of the copy bandwidth on an H200 where an SGD step, the same bytes, runs at 0.99). */
struct af_rowcol {
    uint64_t br, c, dq, dr, cols;
    __device__ __forceinline__ af_rowcol(uint64_t i, uint64_t step, uint64_t cols_, bool small) : cols(cols_) {
        if (small) { /* every index and step fits in 32 bits */
            br = (uint32_t)i / (uint32_t)cols, dq = (uint32_t)step / (uint32_t)cols;
        } else {
            br = i / cols, dq = step / cols;
        }
        c = i - br * cols, dr = step - dq * cols;
    }
    __device__ __forceinline__ void next() {
        br += dq, c += dr; /* c + dr < 2 cols */
        if (c >= cols) c -= cols, br++;
    }
};

/* one 4-element group of the apply pass, as loaded: p, g, m (when momentum), the column factors (or V), rf */
struct af_in {
    float p[4], g[4], m[4], cv[4], rfi;
};

/* The apply pass's scalars and pointers for one tensor. */
struct af_ctx {
    void *P;
    const void *G;
    float *M;
    const float *rf, *cf;
    uint64_t rows, cols;
    int pdt, gdt, factored;
    bool small, one; /* indices fit in 32 bits; one matrix (C indexed by column) */
    uint32_t sr;
    float gs, lr_t, clipdiv, nwd, b1, omb1;
};

/* The vectorized groups of 4 from i0 below vhi, LT_CU_THREADS * 4 apart, AH groups loaded before the first of them
 * is stepped (lt_cu_loads_ahead). Inlined, so that a call whose dtypes, momentum and layout are constants (the hot
 * call in af_apply) compiles without their branches. */
template <int AH>
__device__ __forceinline__ void af_apply_vec(const af_ctx &x, int pdt, int gdt, float *M, int factored, bool one,
                                             uint64_t i0, uint64_t vhi) {
    const uint64_t step = 4 * LT_CU_THREADS;
    af_rowcol rc(i0, step, factored ? x.cols : 1, x.small);
    lt_cu_loads_ahead<AH>(
        i0, vhi, step,
        [&](uint64_t i) {
            af_in v;
            lt_ld<4>(x.P, pdt, i, v.p);
            lt_ld<4>(x.G, gdt, i, v.g);
            if (M) lt_ld<4>(M, LT_DTYPE_F32, i, v.m);
            if (factored) { /* 4 elements of one row (cols % 4 == 0) */
                v.rfi = x.rf[rc.br];
                lt_ld<4>(x.cf, LT_DTYPE_F32, one ? rc.c : (rc.br / x.rows) * x.cols + rc.c, v.cv);
                rc.next();
            } else {
                v.rfi = 1.0f;
                lt_ld<4>(x.cf, LT_DTYPE_F32, i, v.cv);
            }
            return v;
        },
        [&](uint64_t i, af_in v) {
            /* momentum or not outside the element calls: a pointer chosen per element would put m in local memory */
#pragma unroll
            for (int j = 0; j < 4; j++) {
                if (M)
                    lt_em_af_apply(factored, v.rfi, v.cv[j], x.gs, x.clipdiv, x.lr_t, x.b1, x.omb1, x.nwd, &v.p[j],
                                   v.g[j], &v.m[j]);
                else
                    lt_em_af_apply(factored, v.rfi, v.cv[j], x.gs, x.clipdiv, x.lr_t, x.b1, x.omb1, x.nwd, &v.p[j],
                                   v.g[j], nullptr);
            }
            lt_st<4>(x.P, pdt, i, v.p, x.sr);
            if (M) lt_st<4>(M, LT_DTYPE_F32, i, v.m, 0);
        });
}

/* per chunk: p -= the clipped, scaled update (with momentum when m); AH: groups of 4 elements a thread loads
 * before it steps the first of them (1: one at a time, as the SGD and AdamW kernels, whose steps run at 0.95-0.99
 * of the copy bandwidth). A matrix with fp32 p and g and no momentum (the usual case) takes a copy of the loop
 * compiled for exactly that; the rest the general one. The same operations either way: the same bits. */
template <int AH>
__global__ void __launch_bounds__(LT_CU_THREADS, AH == 1 ? 6 : 4) af_apply(const lt_cu_item *__restrict__ items,
                                                                           int count, const int *flag) {
    if (lt_cu_flag_set(flag)) return;
    const uint64_t unit = blockIdx.x;
    const lt_cu_item *it = find_item(items, count, unit);
    const lt_kaf_dev *a = &it->h.af;
    uint64_t lo, hi;
    lt_cu_chunk_range(it->n, unit - it->unit0, &lo, &hi);
    af_ctx x;
    x.P = it->p, x.G = it->g, x.M = a->m;
    x.pdt = it->pdt, x.gdt = it->gdt, x.factored = a->factored;
    x.rf = a->rf, x.cf = x.factored ? a->cf : a->C;
    x.rows = a->rows, x.cols = a->cols;
    x.small = it->n <= 0xffffffffull, x.one = a->batch == 1;
    x.sr = it->sr;
    x.gs = it->gscale, x.lr_t = a->scal[0], x.clipdiv = a->scal[1], x.nwd = -a->scal[2];
    x.b1 = a->b1, x.omb1 = 1.0f - a->b1;
    uint64_t vhi = lo;
    if (it->vec) {
        vhi = lo + ((hi - lo) & ~(uint64_t)3);
        const uint64_t i0 = lo + 4 * (uint64_t)threadIdx.x;
        if (x.pdt == LT_DTYPE_F32 && x.gdt == LT_DTYPE_F32 && !x.M && x.factored && x.one)
            af_apply_vec<AH>(x, LT_DTYPE_F32, LT_DTYPE_F32, nullptr, 1, true, i0, vhi);
        else
            af_apply_vec<AH>(x, x.pdt, x.gdt, x.M, x.factored, x.one, i0, vhi);
    }
    for (uint64_t i = vhi + threadIdx.x; i < hi; i += LT_CU_THREADS) {
        float p[1], g[1], rfi = 1.0f, cv;
        lt_ld<1>(x.P, x.pdt, i, p);
        lt_ld<1>(x.G, x.gdt, i, g);
        if (x.factored) {
            uint64_t br = x.small ? (uint64_t)((uint32_t)i / (uint32_t)x.cols) : i / x.cols, c = i - br * x.cols;
            rfi = x.rf[br];
            cv = x.cf[x.one ? c : (br / x.rows) * x.cols + c];
        } else {
            cv = x.cf[i];
        }
        lt_em_af_apply(x.factored, rfi, cv, x.gs, x.clipdiv, x.lr_t, x.b1, x.omb1, x.nwd, &p[0], g[0],
                       x.M ? &x.M[i] : nullptr);
        lt_st<1>(x.P, x.pdt, i, p, x.sr);
    }
}

template <int V, bool SM, int NST, bool B1 = false>
cudaError_t launch_rows(const lt_cu_item *items, int count, uint64_t nunits, uint64_t maxcols, const int *flag,
                        cudaStream_t s) {
    const size_t smem = (SM ? 2 * maxcols * sizeof(float) : 0) + af_stage_bytes(NST);
    auto kernel = af_rows<V, SM, NST, B1>;
    if (smem > 0) { /* past 48 KB a launch needs the attribute raised first */
        cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) return e;
    }
    LT_LAUNCH(kernel, (unsigned)nunits, LT_CU_THREADS, smem, s)(items, count, flag);
    return cudaGetLastError();
}

/* the staged vectorized row pass: variant bit 32 one barrier a group of rows, then bit 64 two tiles ahead (else
 * one); without bit 32, bit 8 one tile ahead (else AF_STAGES - 1) */
template <bool SM>
cudaError_t launch_staged(int variant, const lt_cu_item *items, int count, uint64_t nunits, uint64_t maxcols,
                          const int *flag, cudaStream_t s) {
    if (variant & 32)
        return variant & 64 ? launch_rows<4, SM, 3, true>(items, count, nunits, maxcols, flag, s)
                            : launch_rows<4, SM, 2, true>(items, count, nunits, maxcols, flag, s);
    return variant & 8 ? launch_rows<4, SM, 2>(items, count, nunits, maxcols, flag, s)
                       : launch_rows<4, SM, AF_STAGES>(items, count, nunits, maxcols, flag, s);
}

} // namespace

uint64_t lt_cu_af_smcols(int optin_bytes) {
    const size_t stat = sizeof(AfRowsShared<false>) > sizeof(AfRowsShared<true>) ? sizeof(AfRowsShared<false>)
                                                                                   : sizeof(AfRowsShared<true>);
    const size_t fixed = af_stage_bytes(AF_STAGES) + stat; /* the most stages a launch takes */
    if (optin_bytes <= 0 || (size_t)optin_bytes <= fixed) return 0;
    const uint64_t fit = ((size_t)optin_bytes - fixed) / (2 * sizeof(float)); /* two floats a column */
    return fit < LT_CU_AF_SMCOLS ? fit : LT_CU_AF_SMCOLS;
}

cudaError_t lt_cu_launch_af(int kind, int variant, const lt_cu_item *items, int count, uint64_t nunits,
                            uint64_t maxcols, const int *flag, cudaStream_t s) {
    if (nunits == 0) return cudaSuccess;
    if (nunits > 0x7fffffffull) return cudaErrorInvalidConfiguration;
    switch (kind) {
    case LT_CU_AF_PSUM: LT_LAUNCH(af_psum, (unsigned)nunits, LT_CU_THREADS, 0, s)(items, count, flag); break;
    case LT_CU_AF_ROWS:
        switch (variant & 7) {
        case 0:
        case 4: return launch_rows<1, false, 0>(items, count, nunits, maxcols, flag, s);
        case 1: return launch_rows<4, false, 0>(items, count, nunits, maxcols, flag, s);
        case 2:
        case 6: return launch_rows<1, true, 0>(items, count, nunits, maxcols, flag, s);
        case 3: return launch_rows<4, true, 0>(items, count, nunits, maxcols, flag, s);
        case 5: return launch_staged<false>(variant, items, count, nunits, maxcols, flag, s);
        default: return launch_staged<true>(variant, items, count, nunits, maxcols, flag, s);
        }
    case LT_CU_AF_VEC: LT_LAUNCH(af_vec, (unsigned)nunits, LT_CU_THREADS, 0, s)(items, count, flag); break;
    case LT_CU_AF_FINAL: LT_LAUNCH(af_final, (unsigned)nunits, LT_CU_THREADS, 0, s)(items, count, flag); break;
    case LT_CU_AF_APPLY:
        if (variant & 16) LT_LAUNCH(af_apply<2>, (unsigned)nunits, LT_CU_THREADS, 0, s)(items, count, flag);
        else LT_LAUNCH(af_apply<1>, (unsigned)nunits, LT_CU_THREADS, 0, s)(items, count, flag);
        break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}
