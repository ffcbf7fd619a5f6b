/* `leantrain bench optim`: times each optimizer's step on transformer-shaped
 * tensors and reports achieved bandwidth against a copy measured in the same
 * run, so the ratio means the same on a noisy machine.
 *
 * Bytes per parameter per step: p and g read, p written (12 B for f32), plus
 * every state byte read and written (2 x state bytes per parameter). fp32
 * AdamW: 12 + 2*8 = 28 B, as design.md counts it. Adafactor's factored state
 * is tiny, so its floor is the 12 B of p and g; its extra passes over g are
 * what the ratio shows. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "cli/bench_shapes.h"
#include "cli/commands.h"
#include "kernels/optim_kernels.h"
#include "leantrain/optim.h"





/* The machine's streaming bandwidth in GB/s (bytes read + written): the best of
 * `reps` rounds of a memcpy and of an in-place read-modify-write. Measured
 * again before every optimizer, because a shared machine's bandwidth drifts. */
static double copy_bandwidth(float *dst, const float *src, size_t n, int reps) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = lt_now_s();
        lt_kernel_copy(dst, src, n);
        double t1 = lt_now_s();
        lt_kernel_negate(dst, n);
        double t2 = lt_now_s();
        if (t1 - t0 < best) best = t1 - t0;
        if (t2 - t1 < best) best = t2 - t1;
    }
    return 2.0 * (double)n * sizeof(float) / best / 1e9;
}

static void usage(void) {
    fprintf(stderr, "usage: leantrain bench optim [--optim NAME] [--params MILLIONS (default 32)] [--steps N (default 10)]\n"
                    "                             [--optim_args K=V,...] [--device cpu|cuda] [--dtype f32|bf16]\n"
                    "       leantrain bench quality [--steps N] [--learning_rate LR]\n"
                    "       leantrain bench train [--steps N] [--small_only]\n"
                    "       leantrain bench tokenize [--input FILE] [--mb M] [--threads N] [--reps R]\n"
                    "       leantrain bench generate [--model gpt2|...] [--prompt P] [--tokens N] [--no_full]\n");
}

int lt_cmd_bench(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "quality")) return lt_cmd_bench_quality(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "train")) return lt_cmd_bench_train(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "tokenize")) return lt_cmd_bench_tokenize(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "generate")) return lt_cmd_bench_generate(argc, argv);
    if (argc < 2 || strcmp(argv[1], "optim")) {
        usage();
        return 2;
    }
    const char *only = NULL, *oargs = NULL;
    double millions = 32;
    int steps = 10, device = 0, bf16 = 0;
    for (int i = 2; i < argc; i++) {
        if (i + 1 >= argc) {
            fprintf(stderr, "leantrain bench: flag %s needs a value\n", argv[i]);
            return 2;
        }
        char *end;
        if (!strcmp(argv[i], "--optim")) only = argv[++i];
        else if (!strcmp(argv[i], "--optim_args")) oargs = argv[++i];
        else if (!strcmp(argv[i], "--device")) {
            device = !strcmp(argv[++i], "cuda");
            if (!device && strcmp(argv[i], "cpu")) {
                fprintf(stderr, "leantrain bench: --device %s: expected cpu or cuda\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--dtype")) {
            bf16 = !strcmp(argv[++i], "bf16");
            if (!bf16 && strcmp(argv[i], "f32")) {
                fprintf(stderr, "leantrain bench: --dtype %s: expected f32 or bf16 (the parameters' and gradients' "
                                "storage)\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--params")) {
            millions = strtod(argv[++i], &end);
            if (*end || !(millions > 0 && millions <= 4096)) {
                fprintf(stderr, "leantrain bench: --params %s: expected millions of parameters in (0, 4096]\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--steps")) {
            steps = (int)strtol(argv[++i], &end, 10);
            if (*end || steps < 1 || steps > 100000) {
                fprintf(stderr, "leantrain bench: --steps %s: expected an integer >= 1\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "leantrain bench: unknown flag '%s'\n", argv[i]);
            usage();
            return 2;
        }
    }
    if (only && !lt_optim_info_find(only)) {
        fprintf(stderr, "leantrain bench: unknown optimizer '%s' (see `leantrain optimizers`)\n", only);
        return 2;
    }
    if (device && bf16) {
        fprintf(stderr, "leantrain bench: --dtype bf16 is for the CPU benchmark; the GPU's bf16 steps are timed by "
                        "scripts/gpu-check\n");
        return 2;
    }
    if (device) return lt_cmd_bench_optim_cuda(only, oargs, millions, steps);
    size_t per_block = lt_bench_block_numel();
    int nblocks = (int)ceil(millions * 1e6 / (double)per_block);
    size_t total = per_block * (size_t)nblocks;
    float *p = malloc(total * sizeof *p), *g = malloc(total * sizeof *g);
    if (!p || !g) {
        fprintf(stderr, "leantrain bench: out of memory for %zu parameters\n", total);
        free(p), free(g);
        return 1;
    }
    uint32_t rng = 12345;
    for (size_t i = 0; i < total; i++) {
        rng = rng * 1664525u + 1013904223u;
        float u = (float)(rng >> 8) / 16777216.0f - 0.5f;
        p[i] = 0.02f * u;
        g[i] = 0.001f * u * (float)((i % 7) + 1);
    }
    float *scratch = malloc(total * sizeof *scratch);
    if (!scratch) {
        fprintf(stderr, "leantrain bench: out of memory for the copy yardstick\n");
        free(p), free(g);
        return 1;
    }
    for (size_t i = 0; i < total; i++) g[i] = 0.001f * p[i] * (float)((i % 7) + 1);
    /* --dtype bf16: parameters and gradients stored as bf16 (pure bf16 training), converted from the same values */
    uint16_t *p16 = NULL, *g16 = NULL;
    if (bf16) {
        p16 = malloc(total * sizeof *p16), g16 = malloc(total * sizeof *g16);
        if (!p16 || !g16) {
            fprintf(stderr, "leantrain bench: out of memory for %zu bf16 parameters\n", total);
            free(p), free(g), free(scratch), free(p16), free(g16);
            return 1;
        }
        for (size_t i = 0; i < total; i++) p16[i] = lt_f32_to_bf16(p[i]), g16[i] = lt_f32_to_bf16(g[i]);
    }
    const double pg_bytes = bf16 ? 6.0 : 12.0;
    printf("# leantrain bench optim: %zu parameters (%d GPT-2-small blocks), %d threads, %d timed steps\n", total,
           nblocks, omp_get_max_threads(), steps);
    printf("# parameters and gradients stored as %s\n", bf16 ? "bf16" : "f32");
    printf("# bytes per step: %g per parameter (p, g read; p written) + 2 x state bytes; bw_ratio = gb_per_s /\n"
           "# copy_gb_per_s, the best of 8 memcpy and in-place read-write rounds measured just before each row\n",
           pg_bytes);
    printf("%-20s %12s %10s %10s %22s %14s\n", "optim", "ms_per_step", "gb_per_s", "bw_ratio", "state_bytes_per_param",
           "copy_gb_per_s");
    int rc = 0;
    for (int k = 0; lt_optim_info_at(k); k++) {
        const char *name = lt_optim_info_at(k)->name;
        if (only && strcmp(lt_optim_info_find(only)->name, name)) continue;
        char err[1024];
        lt_hparams hp = lt_hparams_default();
        hp.weight_decay = 0.01;
        const char *args = oargs;
        if (!strcmp(name, "adafactor") && !oargs) args = "";
        lt_optim *o = lt_optim_create(name, args, &hp, err, sizeof err);
        if (!o) {
            fprintf(stderr, "leantrain bench: %s\n", err);
            rc = 1;
            continue;
        }
        size_t off = 0;
        for (int b = 0; b < nblocks; b++)
            for (int i = 0; i < LT_BENCH_NBLOCK; i++) {
                char pname[96];
                snprintf(pname, sizeof pname, "h.%d.%s", b, LT_BENCH_BLOCK[i].name);
                lt_param_desc d = {.name = pname, .data = p + off, .grad = g + off};
                if (bf16) {
                    d.data = p16 + off, d.grad = g16 + off;
                    d.dtype = d.grad_dtype = LT_DTYPE_BF16;
                }
                d.ndim = LT_BENCH_BLOCK[i].cols ? 2 : 1;
                d.shape[0] = LT_BENCH_BLOCK[i].rows;
                d.shape[1] = LT_BENCH_BLOCK[i].cols;
                if (lt_optim_add_param(o, &d) < 0) {
                    fprintf(stderr, "leantrain bench: %s\n", lt_optim_error(o));
                    lt_optim_free(o);
                    free(p), free(g), free(scratch), free(p16), free(g16);
                    return 1;
                }
                off += (size_t)LT_BENCH_BLOCK[i].rows * (size_t)(LT_BENCH_BLOCK[i].cols ? LT_BENCH_BLOCK[i].cols : 1);
            }
        double *times = malloc((size_t)steps * sizeof *times);
        lt_optim_step(o, 1.0f); /* warm-up: first touch of the state pages */
        double bw = copy_bandwidth(scratch, p, total, 8);
        for (int s = 0; s < steps && times; s++) {
            double t0 = lt_now_s();
            lt_optim_step(o, 1.0f);
            times[s] = lt_now_s() - t0;
        }
        if (!times) {
            lt_optim_free(o);
            continue;
        }
        qsort(times, (size_t)steps, sizeof *times, lt_bench_cmp_double);
        double med = times[steps / 2];
        double sbpp = (double)lt_optim_state_bytes(o) / (double)total;
        double bytes = (pg_bytes + 2.0 * sbpp) * (double)total;
        double gbs = bytes / med / 1e9;
        printf("%-20s %12.2f %10.2f %10.3f %22.4f %14.2f\n", name, med * 1e3, gbs, gbs / bw, sbpp, bw);
        fflush(stdout);
        free(times);
        lt_optim_free(o);
    }
    free(p), free(g), free(scratch), free(p16), free(g16);
    return rc;
}
