/* How an optimizer's CPU step scales with threads and with where its data
 * lives: ns per parameter of one step (best of several) for one tensor of n
 * parameters held in L2 (256K), in L3 (4M) and in DRAM (32M), with 1 thread
 * and with every thread, and the speedup of the threads. A step that scales
 * from L2 and L3 but not from DRAM is held by the memory system, not by the
 * cores. Built by `make bench-scaling`; usage:
 *     optim_scaling [OPTIM ...]      (default: adamw_torch adamw_bnb_8bit) */
#include <leantrain/optim.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* best ns per parameter of `reps` steps of `name` on n parameters with `threads` threads; < 0 on failure */
static double measure(const char *name, long n, int threads, int reps) {
    float *p = malloc((size_t)n * sizeof *p), *g = malloc((size_t)n * sizeof *g);
    if (!p || !g) {
        fprintf(stderr, "optim_scaling: out of memory for %ld parameters\n", n);
        free(p), free(g);
        return -1;
    }
    uint64_t s = 12345;
    for (long i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = 0.1f * ((float)(s >> 40) / 16777216.0f - 0.5f);
        g[i] = 0.01f * ((float)((s >> 16) & 0xffffff) / 16777216.0f - 0.5f);
    }
    char err[512];
    lt_optim *o = lt_optim_create(name, "", NULL, err, sizeof err);
    double best = -1;
    if (!o) {
        fprintf(stderr, "optim_scaling: %s\n", err);
    } else if (lt_optim_add_param(o, &(lt_param_desc){.name = "w", .data = p, .grad = g, .ndim = 2,
                                                      .shape = {n / 4096, 4096}}) < 0) {
        fprintf(stderr, "optim_scaling: %s\n", lt_optim_error(o));
    } else {
        omp_set_num_threads(threads);
        for (int r = 0; r < reps + 2; r++) { /* two warm-up steps */
            double t = now_s();
            if (lt_optim_step(o, 1.0f) != LT_OK) {
                fprintf(stderr, "optim_scaling: %s\n", lt_optim_error(o));
                best = -1;
                break;
            }
            t = now_s() - t;
            if (r >= 2 && (best < 0 || t < best)) best = t;
        }
    }
    lt_optim_free(o);
    free(p), free(g);
    return best < 0 ? -1 : best * 1e9 / (double)n;
}

int main(int argc, char **argv) {
    const char *defaults[] = {"adamw_torch", "adamw_bnb_8bit"};
    const char **names = argc > 1 ? (const char **)argv + 1 : defaults;
    const int nnames = argc > 1 ? argc - 1 : 2, maxt = omp_get_max_threads();
    const struct {
        const char *where;
        long n;
    } sizes[] = {{"L2", 256L << 10}, {"L3", 4L << 20}, {"DRAM", 32L << 20}};
    printf("# optim_scaling: ns per parameter of one step (best of several), 1 thread and %d threads\n", maxt);
    printf("%-18s %-5s %10s %12s %12s %8s\n", "optim", "where", "params", "ns_1thread", "ns_threads", "speedup");
    int rc = 0;
    for (int k = 0; k < nnames; k++)
        for (int z = 0; z < 3; z++) {
            const long n = sizes[z].n;
            const int reps = n > (8L << 20) ? 10 : 60;
            double t1 = measure(names[k], n, 1, reps), tn = measure(names[k], n, maxt, reps);
            if (t1 < 0 || tn < 0) {
                rc = 1;
                continue;
            }
            printf("%-18s %-5s %10ld %12.3f %12.3f %8.2f\n", names[k], sizes[z].where, n, t1, tn, t1 / tn);
        }
    return rc;
}
