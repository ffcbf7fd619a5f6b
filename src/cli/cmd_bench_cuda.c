/* `leantrain bench optim --device cuda`: each optimizer's step on device
 * parameters in GPT-2-small block shapes (the shapes of cmd_bench.c), timed
 * with CUDA events (the median of the timed steps, queued back to back), and
 * its bandwidth against a device-to-device cudaMemcpy of the parameters timed
 * with events just before each row (the best of 10; bytes read + written).
 * Bytes per step as for the CPU table: 12 per parameter (p, g read; p
 * written) + 2 x state bytes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench_shapes.h"
#include "cli/commands.h"
#include "kernels/cuda/cu_tune.h"
#include "kernels/optim_kernels_cuda.h"
#include "leantrain/optim.h"



int lt_cmd_bench_optim_cuda(const char *only, const char *oargs, double millions, int steps) {
    char err[1024], dev[256];
    lt_cuda_describe(dev, sizeof dev);
    if (lt_cuda_device_count() < 1) {
        fprintf(stderr, "leantrain bench: --device cuda: %s\n", dev);
        return 1;
    }
    size_t per_block = 0;
    for (int i = 0; i < LT_BENCH_NBLOCK; i++) per_block += (size_t)LT_BENCH_BLOCK[i].rows * (size_t)(LT_BENCH_BLOCK[i].cols ? LT_BENCH_BLOCK[i].cols : 1);
    int nblocks = (int)ceil(millions * 1e6 / (double)per_block);
    size_t total = per_block * (size_t)nblocks, bytes = total * sizeof(float);
    float *hp = malloc(bytes), *hg = malloc(bytes);
    void *p = NULL, *g = NULL, *scratch = NULL;
    double *times = malloc((size_t)steps * sizeof *times);
    lt_cuda_timer **t0 = calloc((size_t)steps, sizeof *t0);
    int rc = 1;
    if (!hp || !hg || !times || !t0) {
        fprintf(stderr, "leantrain bench: out of memory for %zu parameters\n", total);
        goto out;
    }
    uint32_t rng = 12345;
    for (size_t i = 0; i < total; i++) {
        rng = rng * 1664525u + 1013904223u;
        float u = (float)(rng >> 8) / 16777216.0f - 0.5f;
        hp[i] = 0.02f * u;
        hg[i] = 0.001f * hp[i] * (float)((i % 7) + 1);
    }
    if (lt_cuda_malloc_raw(&p, bytes, err, sizeof err) || lt_cuda_malloc_raw(&g, bytes, err, sizeof err) ||
        lt_cuda_malloc_raw(&scratch, bytes, err, sizeof err) || lt_cuda_memcpy_raw(p, hp, bytes, 0, err, sizeof err) ||
        lt_cuda_memcpy_raw(g, hg, bytes, 0, err, sizeof err)) {
        fprintf(stderr, "leantrain bench: %s\n", err);
        goto out;
    }
    for (int s = 0; s < steps; s++)
        if (!(t0[s] = lt_cuda_timer_create(NULL, err, sizeof err))) {
            fprintf(stderr, "leantrain bench: %s\n", err);
            goto out;
        }
    printf("# leantrain bench optim --device cuda: %zu parameters (%d GPT-2-small blocks, %d tensors), %d timed steps\n",
           total, nblocks, nblocks * LT_BENCH_NBLOCK, steps);
    printf("# device: %s\n", dev);
    printf("# bytes per step: 12 per parameter (p, g read; p written) + 2 x state bytes; bw_ratio = gb_per_s /\n"
           "# copy_gb_per_s, a device-to-device cudaMemcpy of the parameters (best of 10, timed with events) just before\n"
           "# each row; ms_per_step: the median over the timed steps, queued back to back; the low-bit and Adafactor\n"
           "# kernels time their forms (the same bits) in the warm-up steps and keep the fastest: the '# form' lines\n"
           "# (LT_TUNE=0 in the environment keeps the default forms)\n");
    printf("%-20s %12s %10s %10s %22s %14s\n", "optim", "ms_per_step", "gb_per_s", "bw_ratio", "state_bytes_per_param",
           "copy_gb_per_s");
    rc = 0;
    for (int k = 0; lt_optim_info_at(k); k++) {
        const char *name = lt_optim_info_at(k)->name;
        if (only && strcmp(lt_optim_info_find(only)->name, name)) continue;
        lt_hparams hpar = lt_hparams_default();
        hpar.weight_decay = 0.01;
        lt_optim *o = lt_optim_create(name, oargs, &hpar, err, sizeof err);
        if (!o) {
            fprintf(stderr, "leantrain bench: %s\n", err);
            rc = 1;
            continue;
        }
        size_t off = 0;
        int ok = 1;
        for (int b = 0; b < nblocks && ok; b++)
            for (int i = 0; i < LT_BENCH_NBLOCK && ok; i++) {
                char pname[96];
                snprintf(pname, sizeof pname, "h.%d.%s", b, LT_BENCH_BLOCK[i].name);
                lt_param_desc d = {.name = pname, .data = (float *)p + off, .grad = (float *)g + off, .device = 1};
                d.ndim = LT_BENCH_BLOCK[i].cols ? 2 : 1;
                d.shape[0] = LT_BENCH_BLOCK[i].rows;
                d.shape[1] = LT_BENCH_BLOCK[i].cols;
                if (lt_optim_add_param(o, &d) < 0) {
                    fprintf(stderr, "leantrain bench: %s: %s\n", name, lt_optim_error(o));
                    ok = 0;
                }
                off += (size_t)LT_BENCH_BLOCK[i].rows * (size_t)(LT_BENCH_BLOCK[i].cols ? LT_BENCH_BLOCK[i].cols : 1);
            }
        double best = 0, med = 0;
        /* warm-up: first launches, the paged state's first migration, and the kernels' choice of their forms
         * (each of up to LT_CU_TUNE_MAXC forms timed LT_CU_TUNE_SAMPLES times; the sync lets the first timed
         * step read the last of those times back and choose before it launches) */
        for (int w = 0; ok && w < LT_CU_TUNE_MAXC * LT_CU_TUNE_SAMPLES + 1; w++)
            if (lt_optim_step(o, 1.0f) != LT_OK) {
                fprintf(stderr, "leantrain bench: %s: %s\n", name, lt_optim_error(o));
                ok = 0;
            }
        if (ok && lt_optim_sync(o) != LT_OK) {
            fprintf(stderr, "leantrain bench: %s: %s\n", name, lt_optim_error(o));
            ok = 0;
        }
        if (ok && lt_cuda_time_copy(scratch, p, bytes, 10, &best, &med, err, sizeof err)) {
            fprintf(stderr, "leantrain bench: %s\n", err);
            ok = 0;
        }
        for (int s = 0; s < steps && ok; s++)
            if (lt_cuda_timer_start(t0[s]) || lt_optim_step(o, 1.0f) != LT_OK || lt_cuda_timer_stop(t0[s])) {
                fprintf(stderr, "leantrain bench: %s: step: %s\n", name, lt_optim_error(o));
                ok = 0;
            }
        if (ok && lt_optim_sync(o) != LT_OK) {
            fprintf(stderr, "leantrain bench: %s: %s\n", name, lt_optim_error(o));
            ok = 0;
        }
        for (int s = 0; s < steps && ok; s++)
            if (lt_cuda_timer_elapsed(t0[s], &times[s])) {
                fprintf(stderr, "leantrain bench: %s: reading the step timers failed\n", name);
                ok = 0;
            }
        if (!ok) {
            rc = 1;
            lt_optim_free(o);
            continue;
        }
        qsort(times, (size_t)steps, sizeof *times, lt_bench_cmp_double);
        double ms = times[steps / 2];
        double sbpp = (double)lt_optim_state_bytes(o) / (double)total;
        double moved = (12.0 + 2.0 * sbpp) * (double)total;
        double gbs = moved / ms / 1e6, bw = 2.0 * (double)bytes / best / 1e6;
        printf("%-20s %12.3f %10.1f %10.3f %22.4f %14.1f\n", name, ms, gbs, gbs / bw, sbpp, bw);
        /* the forms the kernels chose by timing (the row above ran the choice): one comment line each */
        char forms[4096];
        if (lt_optim_device_tuning(o, forms, sizeof forms) > 0)
            for (char *line = strtok(forms, "\n"); line; line = strtok(NULL, "\n")) printf("# form %s: %s\n", name, line);
        fflush(stdout);
        lt_optim_free(o);
    }
out:
    for (int s = 0; t0 && s < steps; s++) lt_cuda_timer_destroy(t0[s]);
    free(t0), free(times), free(hp), free(hg);
    lt_cuda_free_raw(p), lt_cuda_free_raw(g), lt_cuda_free_raw(scratch);
    return rc;
}
