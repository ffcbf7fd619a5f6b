/* What the memory system of this machine allows an optimizer step, with no
 * arithmetic in the way: the ceilings behind `leantrain bench optim`'s
 * bw_ratio column.
 *
 * bench optim divides an optimizer's bytes (read + written) by the time of an
 * in-place read-modify-write pass (and of a memcpy; the faster of the two):
 * the yardstick. On machines whose reads are the bottleneck (a read-only pass
 * moving fewer bytes per second than the yardstick's reads and writes
 * together), a step that reads more than it writes cannot reach 1.0, and
 * Adafactor, which must read the gradient twice (row and column statistics
 * first, the update after), has a ceiling well below it. This program
 * measures, in one run, on arrays the size of bench optim's (35.4M floats):
 *
 *   rw        x = -x                 (the yardstick: 4 B read + 4 B written)
 *   read      sum of x*x             (4 B read)
 *   axpy      p = p + 2g             (8 B read + 4 B written: an SGD-shaped step)
 *   adafactor read g, then p = p + 2g (g twice: 12 B read + 4 B written), in
 *             two orders: every tensor's statistics pass and then every
 *             tensor's update ("whole"), or each tensor's two passes back to
 *             back ("per tensor", so the second read of g may come from the
 *             last-level cache), with the tensors of 5 GPT-2-small blocks.
 *
 * and prints each pass's GB/s and its ratio to the yardstick; for the
 * Adafactor rows, ratio_12B is what bench optim would print for them (12
 * bytes per parameter over the yardstick): the best an Adafactor kernel can
 * get on this machine when its arithmetic is free. Every pass runs twice:
 * leaving the prefetching to the hardware, then with software prefetch as the
 * library's kernels and bench optim's yardstick do (each set against its own
 * yardstick). Best of --reps rounds (default 8) each; OpenMP threads as for
 * leantrain.
 *
 * Build and run: make bench-ceiling (or $(BUILD)/bench/stream_ceiling). */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* the loops compiled for AVX-512, AVX2 and the baseline, picked at load time,
 * as the library's kernels are (fewer instructions per byte keep more loads in
 * flight) */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* With `pf` set, every pass asks for its arrays' lines 2 KB ahead, 128 elements at a time, as the library's
 * kernels and bench optim's yardstick do (src/kernels/cpu/foreach.h); without, it leaves them to the hardware. */
static int pf;
#define PIECE 128
#define AHEAD 2048
static inline void ahead(const float *x, size_t elems, int write) {
    const uintptr_t a = (uintptr_t)x + AHEAD;
    for (size_t o = 0; o < elems * sizeof(float); o += 64) {
        if (write) __builtin_prefetch((const void *)(a + o), 1, 3);
        else __builtin_prefetch((const void *)(a + o), 0, 3);
    }
}

CLONES static void negate(float *x, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < (n + PIECE - 1) / PIECE; k++) {
        float *xk = x + k * PIECE;
        const size_t len = n - k * PIECE < PIECE ? n - k * PIECE : PIECE;
        if (pf) ahead(xk, len, 1);
        for (size_t i = 0; i < len; i++) xk[i] = -xk[i];
    }
}

/* 32 independent partial sums, so the adds never wait on each other */
CLONES static double sumsq(const float *x, size_t n) {
    double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total)
    for (size_t b = 0; b < n / 1024; b++) {
        float part[32] = {0};
        const float *xb = x + b * 1024;
        for (size_t i = 0; i < 1024; i += 32) {
            if (pf && i % PIECE == 0) ahead(xb + i, PIECE, 0);
            for (int k = 0; k < 32; k++) part[k] += xb[i + k] * xb[i + k];
        }
        for (int k = 0; k < 32; k++) total += part[k];
    }
    for (size_t i = n / 1024 * 1024; i < n; i++) total += (double)x[i] * x[i];
    return total;
}

CLONES static void axpy(float *p, const float *g, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < (n + PIECE - 1) / PIECE; k++) {
        float *pk = p + k * PIECE;
        const float *gk = g + k * PIECE;
        const size_t len = n - k * PIECE < PIECE ? n - k * PIECE : PIECE;
        if (pf) ahead(pk, len, 1), ahead(gk, len, 0);
        for (size_t i = 0; i < len; i++) pk[i] = pk[i] + 2.0f * gk[i];
    }
}

/* the sizes of bench optim's tensors: 5 GPT-2-small blocks' matrices */
static const size_t shapes[4][2] = {{768, 2304}, {768, 768}, {768, 3072}, {3072, 768}};
#define BLOCKS 5

static double best_of(int reps, void (*run)(void *), void *arg) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        run(arg);
        double t = now_s() - t0;
        if (t < best) best = t;
    }
    return best;
}

typedef struct {
    float *p, *g;
    size_t n;
    double sink;
} bufs;

static void run_rw(void *a) { negate(((bufs *)a)->p, ((bufs *)a)->n); }
static void run_read(void *a) { ((bufs *)a)->sink += sumsq(((bufs *)a)->g, ((bufs *)a)->n); }
static void run_axpy(void *a) { axpy(((bufs *)a)->p, ((bufs *)a)->g, ((bufs *)a)->n); }
static void run_af_whole(void *a) {
    bufs *b = a;
    b->sink += sumsq(b->g, b->n);
    axpy(b->p, b->g, b->n);
}
static void run_af_tensor(void *a) {
    bufs *b = a;
    size_t off = 0;
    for (int blk = 0; blk < BLOCKS; blk++)
        for (int s = 0; s < 4; s++) {
            size_t len = shapes[s][0] * shapes[s][1];
            b->sink += sumsq(b->g + off, len);
            axpy(b->p + off, b->g + off, len);
            off += len;
        }
}

int main(int argc, char **argv) {
    int reps = 8;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
            if (reps < 1) {
                fprintf(stderr, "stream_ceiling: --reps must be at least 1\n");
                return 2;
            }
        } else {
            fprintf(stderr, "usage: stream_ceiling [--reps N (default 8)]\n");
            return 2;
        }
    }
    size_t n = 0;
    for (int s = 0; s < 4; s++) n += shapes[s][0] * shapes[s][1];
    n *= BLOCKS;
    bufs b = {malloc(n * sizeof(float)), malloc(n * sizeof(float)), n, 0.0};
    if (!b.p || !b.g) {
        fprintf(stderr, "stream_ceiling: out of memory for 2 x %zu floats\n", n);
        return 1;
    }
    /* first touch by the threads that will use the pages */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        b.p[i] = 1e-3f * (float)(i % 1000);
        b.g[i] = 1e-4f * (float)(i % 777);
    }
    const double gb = (double)n * sizeof(float) / 1e9;
    printf("# stream_ceiling: %zu floats per array (%.1f MB), %d OpenMP threads, best of %d rounds each\n", n,
           gb * 1e3, omp_get_max_threads(), reps);
    printf("# ratio = GB/s (bytes read + written) over the in-place read-write pass's of the same prefetch\n"
           "# setting; ratio_12B = 12 bytes per parameter over that yardstick, as bench optim counts Adafactor\n");
    printf("%-22s %8s %9s %9s %7s %9s\n", "pass", "prefetch", "ms", "gb_per_s", "ratio", "ratio_12B");
    for (pf = 0; pf <= 1; pf++) {
    /* the yardstick is measured between the other passes as well, and the best kept */
    double t_rw = best_of(reps, run_rw, &b);
    const double t_read = best_of(reps, run_read, &b);
    double t = best_of(reps, run_rw, &b);
    if (t < t_rw) t_rw = t;
    const double t_axpy = best_of(reps, run_axpy, &b);
    const double t_whole = best_of(reps, run_af_whole, &b);
    const double t_tensor = best_of(reps, run_af_tensor, &b);
    t = best_of(reps, run_rw, &b);
    if (t < t_rw) t_rw = t;
    const double yard = 2 * gb / t_rw;
    const char *on = pf ? "yes" : "no";
    printf("%-22s %8s %9.2f %9.1f %7.3f %9s\n", "rw (yardstick)", on, t_rw * 1e3, yard, 1.0, "-");
    printf("%-22s %8s %9.2f %9.1f %7.3f %9s\n", "read", on, t_read * 1e3, gb / t_read, gb / t_read / yard, "-");
    printf("%-22s %8s %9.2f %9.1f %7.3f %9s\n", "axpy", on, t_axpy * 1e3, 3 * gb / t_axpy,
           3 * gb / t_axpy / yard, "-");
    printf("%-22s %8s %9.2f %9.1f %7.3f %9.3f\n", "adafactor, whole", on, t_whole * 1e3, 4 * gb / t_whole,
           4 * gb / t_whole / yard, 3 * gb / t_whole / yard);
    printf("%-22s %8s %9.2f %9.1f %7.3f %9.3f\n", "adafactor, per tensor", on, t_tensor * 1e3, 4 * gb / t_tensor,
           4 * gb / t_tensor / yard, 3 * gb / t_tensor / yard);
    }
    if (b.sink == 12345.0) printf("#\n"); /* keeps the sums */
    free(b.p);
    free(b.g);
    return 0;
}
