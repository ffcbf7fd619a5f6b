/* `leantrain bench generate`: next-token speed of GPT-2 inference on the CPU with the key / value cache
 * (src/model/gpt2_decode.c) in ms per token, and the weight bytes it reads per token over the read bandwidth
 * measured in the same run (one token's forward reads every fp32 weight once: that is its floor), beside a
 * forward of the whole context per token (generate's way before the cache), timed in the same run. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "model/gpt2.h"
#include "model/gpt2_decode.h"
#include "model/gpt2_layers.h"
#include "model/sample.h"
#include "util/clock.h"

/* the best of `reps` parallel sums over x[n] (16 independent lanes a thread, so the loads, not the adds, set the
 * pace), as GB/s read */
static double read_bandwidth(const float *x, size_t n, int reps) {
    double best = 1e30;
    volatile float sink = 0;
    for (int r = 0; r < reps; r++) {
        const double t0 = lt_now_s();
        float total = 0;
#pragma omp parallel reduction(+ : total)
        {
            const size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
            const size_t per = (n / nt) & ~(size_t)15, lo = id * per, hi = id + 1 == nt ? n : lo + per;
            float lane[16] = {0};
            size_t i = lo;
            for (; i + 16 <= hi; i += 16)
                for (int k = 0; k < 16; k++) lane[k] += x[i + k];
            for (; i < hi; i++) lane[0] += x[i];
            for (int k = 0; k < 16; k++) total += lane[k];
        }
        const double dt = lt_now_s() - t0;
        sink += total;
        if (dt < best) best = dt;
    }
    (void)sink;
    return (double)n * sizeof(float) / best / 1e9;
}

int lt_cmd_bench_generate(int argc, char **argv) {
    const char *preset = "gpt2";
    int tokens = 32, prompt = 8, full = 1, n_layer = 0, n_embd = 0;
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "--no_full")) {
            full = 0;
            continue;
        }
        char *end = NULL;
        if (!v) {
            fprintf(stderr, "leantrain bench generate: %s needs a value\n", f);
            return 2;
        }
        i++;
        if (!strcmp(f, "--model")) preset = v;
        else if (!strcmp(f, "--tokens")) tokens = (int)strtol(v, &end, 10);
        else if (!strcmp(f, "--prompt")) prompt = (int)strtol(v, &end, 10);
        else if (!strcmp(f, "--n_layer")) n_layer = (int)strtol(v, &end, 10);
        else if (!strcmp(f, "--n_embd")) n_embd = (int)strtol(v, &end, 10);
        else {
            fprintf(stderr, "usage: leantrain bench generate [--model gpt2|gpt2-medium|gpt2-large|gpt2-xl (gpt2)] "
                            "[--n_layer L --n_embd C (override the preset's)] [--prompt P (8)] [--tokens N (32)] "
                            "[--no_full]\n");
            return 2;
        }
        if (end && *end) {
            fprintf(stderr, "leantrain bench generate: %s: bad value '%s'\n", f, v);
            return 2;
        }
    }
    char err[1024];
    lt_gpt2_config cfg;
    if (lt_gpt2_config_preset(preset, &cfg, err, sizeof err)) {
        fprintf(stderr, "leantrain bench generate: --model: %s\n", err);
        return 2;
    }
    if (n_layer > 0) cfg.n_layer = n_layer;
    if (n_embd > 0) cfg.n_embd = n_embd, cfg.n_head = n_embd % 64 == 0 ? n_embd / 64 : 1;
    if (prompt < 1 || tokens < 1 || prompt + tokens > cfg.n_positions) {
        fprintf(stderr, "leantrain bench generate: need --prompt >= 1, --tokens >= 1 and their sum at most %d\n",
                cfg.n_positions);
        return 2;
    }
    const int T = prompt + tokens, V = cfg.vocab_size;
    lt_gpt2 *m = NULL;
    lt_gpt2_kv *kv = NULL;
    int32_t *seq = malloc(sizeof(int32_t) * (size_t)T);
    float *logits = malloc(sizeof(float) * (size_t)V);
    int rc = 1;
    if (!seq || !logits || lt_nn_blas_reserve(err, sizeof err) || lt_gpt2_create(&cfg, &m, err, sizeof err) ||
        lt_gpt2_set_batch(m, 1, T, err, sizeof err) || lt_gpt2_kv_create(m, T, &kv, err, sizeof err)) {
        fprintf(stderr, "leantrain bench generate: %s\n", seq && logits ? err : "out of memory");
        goto out;
    }
    lt_gpt2_init_random(m, 1);
    size_t params = 0;
    for (int i = 0; i < m->num_tensors; i++) params += m->params[i].numel;
    const double wbytes = (double)params * sizeof(float);
    /* the yardstick: reading as many bytes as the weights, just before */
    const double bw = read_bandwidth(m->params[0].data, params, 5);
    for (int i = 0; i < prompt; i++) seq[i] = (int32_t)((i * 7919) % V);
    /* with the cache: the prompt in one forward, then one token a step (greedy) */
    double t0 = lt_now_s();
    if (lt_gpt2_kv_prefill(m, kv, seq, prompt, logits, err, sizeof err)) goto fail;
    const double t_prefill = lt_now_s() - t0;
    t0 = lt_now_s();
    for (int t = prompt; t < T; t++) {
        seq[t] = lt_sample_pick(logits, V, 0, 0.0); /* greedy */
        if (t + 1 < T && lt_gpt2_kv_step(m, kv, seq[t], logits, err, sizeof err)) goto fail;
    }
    const double ms_kv = (lt_now_s() - t0) * 1e3 / (double)(tokens > 1 ? tokens - 1 : 1);
    /* a forward of the whole context per token, the same tokens */
    double ms_full = NAN;
    if (full) {
        t0 = lt_now_s();
        for (int t = prompt; t + 1 < T; t++)
            if (lt_gpt2_forward(m, seq, NULL, 1, t + 1, err, sizeof err)) goto fail;
        ms_full = (lt_now_s() - t0) * 1e3 / (double)(tokens > 1 ? tokens - 1 : 1);
    }
    printf("# bench generate: GPT-2 %s (%d layers, C %d, %.1fM parameters), fp32, %d threads; prompt %d tokens "
           "(one forward, %.1f ms), then %d tokens one at a time\n",
           preset, cfg.n_layer, cfg.n_embd, (double)params / 1e6, omp_get_max_threads(), prompt, t_prefill * 1e3,
           tokens);
    printf("# weight_gb_per_s: the fp32 weights' bytes read per token over ms_per_token; read_gb_per_s: the best of "
           "5 parallel sums over as many bytes, just before; full: a forward of the whole context per token\n");
    printf("%-10s %12s %16s %14s %10s %16s %10s\n", "method", "ms_per_token", "weight_gb_per_s", "read_gb_per_s",
           "bw_ratio", "full_ms_per_tok", "speedup");
    const double gbs = wbytes / (ms_kv * 1e-3) / 1e9;
    printf("%-10s %12.2f %16.2f %14.2f %10.3f %16.2f %10.2f\n", "kv_cache", ms_kv, gbs, bw, gbs / bw, ms_full,
           ms_full / ms_kv);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "leantrain bench generate: %s\n", err);
out:
    lt_gpt2_kv_free(kv);
    lt_gpt2_free(m);
    free(seq), free(logits);
    return rc;
}
