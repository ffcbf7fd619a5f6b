/* `leantrain plan`: the memory table of a training run without training; with --memory SIZE (or auto: this
 * machine's free memory) the batch sizes that fit, and with --fit too the method combinations that fit, fastest
 * first. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "model/gemm_bf16.h"
#include "train/args.h"
#include "tokenizer/tokenizer.h"
#include "train/memplan.h"

/* The cost model, calibrated by `leantrain bench train` and `leantrain bench optim` on the 2-core
 * CI-class machine (bench/RESULTS.md): forward + backward at the achieved training rate (fp32, OpenBLAS's AVX-512 kernels, the attention by
 * sgemms, 2026-11-28 late: byte-10M at T 256 226-235 GFLOP/s, GPT-2 124M at T 1024 about 228, a 4 x 256 model
 * at T 1024 about 215; the smallest models (make run's) fall short of it, about 160), plus the optimizer step at
 * its measured nanoseconds per parameter. (15.4e9 on OpenBLAS's SSE3 fallback, 160e9 before the attention's
 * sgemms.) */
#define TRAIN_FLOPS_PER_S 210e9
/* The step's nanoseconds per parameter on that CPU, and (gpu_ns) on the GPU: the H200 of 2026-11-28 (commit 818ea9e,
 * bench/RESULTS.md: `bench optim --device cuda` over 262M parameters; torchao's 8-bit from the H100's ratio to
 * bitsandbytes' 8-bit of the same day). */
static const struct {
    const char *optim;
    double ns_per_param, gpu_ns;
} STEP_COST[] = {
    {"adamw_torch_fused", 0.72, 0.0069}, {"adafactor", 0.62, 0.0056},        {"lion_8bit", 1.6, 0.0063},
    {"adamw_bnb_8bit", 2.4, 0.0108},     {"adamw_torch_8bit", 2.9, 0.0113}, {"adamw_torch_4bit", 3.9, 0.0126},
};
#define NCOST ((int)(sizeof STEP_COST / sizeof STEP_COST[0]))

static double step_ns(const char *optim, int gpu) {
    for (int i = 0; i < NCOST; i++)
        if (!strcmp(STEP_COST[i].optim, optim)) return gpu ? STEP_COST[i].gpu_ns : STEP_COST[i].ns_per_param;
    return gpu ? 0.0069 : 1.0; /* the other fp32 optimizers move 12-28 bytes per parameter, like AdamW or less */
}

/* The GPU's training rates, from the same H200 run (bench/gpu-logs/2026-11-28-h200-818ea9e, GPT-2 124M at 4 x
 * 1024): fp32 compute (set a, 43,621 tokens/s) 37.8 TFLOP/s of forward + backward; 16-bit compute with
 * checkpointing (set b, 122,351 tokens/s; set c's 120,682 predicted within 1%) 146 TFLOP/s counting the
 * recomputed forward. One GPU, one model: a ranking of the methods and a rough rate, not a promise for others. */
#define GPU_F32_FLOPS_PER_S 37.8e12
#define GPU_16BIT_FLOPS_PER_S 146e12

/* 16-bit compute on the CPU where it is emulated (fp16; bf16 without oneDNN or without the CPU's bf16 instructions:
 * operands rounded, sgemm in fp32): the same GEMMs plus the rounding, the 16-bit store and more OpenMP regions.
 * `leantrain bench train --bf16` against the fp32 run, 2026-11-28 (bench/RESULTS.md): 1.0-1.2x the time for GPT-2
 * 124M, 1.2-1.4x for the 10-16M models; 1.3 in between. */
#define LOWP_TIME_FACTOR 1.3
/* bf16 products on the CPU's bf16 instructions (model/gemm_bf16.h): `leantrain bench train --bf16` against the fp32
 * run, 2026-11-30 (bench/RESULTS.md): 0.73x the time for byte-10M, 0.65x for bpe-16M, 0.74x for GPT-2 124M. */
#define BF16_GEMM_TIME_FACTOR 0.7

static double tokens_per_s(const lt_gpt2_config *c, size_t params, int B, int T, const char *optim, int ckpt,
                           lt_gpt2_precision prec, int gpu) {
    const int lowp = prec != LT_GPT2_F32;
    double flops_tok = 6.0 * (double)params + 12.0 * c->n_layer * (double)T * c->n_embd;
    if (ckpt) flops_tok *= 4.0 / 3.0; /* every block's forward runs twice */
    double rate = TRAIN_FLOPS_PER_S;
    if (gpu) rate = lowp ? GPU_16BIT_FLOPS_PER_S : GPU_F32_FLOPS_PER_S; /* the GPU's 16-bit GEMMs are real */
    else if (prec == LT_GPT2_BF16 && lt_gemm_bf16_enabled()) flops_tok *= BF16_GEMM_TIME_FACTOR;
    else if (lowp) flops_tok *= LOWP_TIME_FACTOR;
    double t = flops_tok * B * T / rate + step_ns(optim, gpu) * 1e-9 * (double)params;
    return (double)B * T / t;
}

static int model_config(const lt_train_args *a, int data_vocab, lt_gpt2_config *cfg, char *err, size_t errlen) {
    if (a->model_name_or_path[0]) {
        char path[600];
        snprintf(path, sizeof path, "%s/config.json", a->model_name_or_path);
        return lt_gpt2_config_load(path, cfg, err, errlen) != LT_OK;
    }
    return lt_train_args_scratch_config(a, data_vocab, cfg, err, errlen) != LT_OK;
}

int lt_cmd_plan(int argc, char **argv) {
    size_t memory = 0;
    int fit = 0, memory_auto = 0;
    char **rest = malloc(sizeof(char *) * (size_t)(argc + 1));
    int nrest = 0;
    if (!rest) return 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: leantrain plan [FLAGS.json] [--model gpt2|... | --model_name_or_path DIR | --n_layer "
                   "--n_embd --n_head --n_positions --vocab_size] [--per_device_train_batch_size B] [--block_size T] "
                   "[--optim NAME] "
                   "[--optim_args ...] [--gradient_checkpointing] [--optim_in_backward] [--bf16 | --fp16 | "
                   "--pure_bf16] [--device cpu|cuda] [--train_file FILE] [--memory SIZE|auto [--fit]]\n"
                   "--memory says whether the batch fits in SIZE (auto: what this machine has free now, as train "
                   "--memory_limit auto finds it), the largest batch that does, and the batch "
                   "--auto_find_batch_size would train with; --fit lists every combination of the optimizers with a "
                   "calibrated cost, checkpointing, the step inside backward and fp32 / bf16 / fp16 / pure bf16 that "
                   "fits in --memory, fastest first\n"
                   "FLAGS.json: train's flags file (a checkpoint's training_args.json), read before the flags after "
                   "it\n");
            free(rest);
            return 0;
        }
        if (!strcmp(argv[i], "--fit")) fit = 1;
        else if (!strcmp(argv[i], "--memory") && i + 1 < argc) {
            memory_auto = !strcmp(argv[++i], "auto");
            memory = memory_auto ? 0 : lt_parse_bytes(argv[i]); /* auto: read once the --device is known */
            if (!memory && !memory_auto) {
                fprintf(stderr, "leantrain plan: --memory %s: expected a size such as 24GB or 512MiB, or auto\n",
                        argv[i]);
                free(rest);
                return 2;
            }
        } else rest[nrest++] = argv[i];
    }
    lt_train_args a;
    lt_train_args_default(&a);
    a.max_grad_norm = 0; /* only the memory matters here: let --optim_in_backward through */
    char err[1024];
    if (lt_train_args_parse(&a, nrest, rest, err, sizeof err) != LT_OK) {
        fprintf(stderr, "leantrain plan: %s\n", err);
        free(rest);
        return 2;
    }
    free(rest);
    if (fit && !memory && !memory_auto) {
        fprintf(stderr, "leantrain plan: --fit needs --memory SIZE (or auto: this machine's)\n");
        return 2;
    }
    char source[160] = "";
    if (memory_auto) { /* what the trainer's --memory_limit auto would find here now */
        if (lt_memory_limit("auto", !strcmp(a.device, "cuda"), &memory, source, sizeof source, err, sizeof err)) {
            fprintf(stderr, "leantrain plan: --memory auto: %s\n", err);
            return 1;
        }
        if (!memory) {
            fprintf(stderr, "leantrain plan: --memory auto: this machine's available memory could not be read (no "
                            "/proc/meminfo): give --memory SIZE\n");
            return 1;
        }
    }
    const int B = a.per_device_train_batch_size; /* evaluation runs in pieces of the training batch */
    /* the positions a block predicts, as train runs them: block_size - 1 in run_clm's layout (text), block_size in
       the stream's (an llm.c token file, or --data_layout stream); without --train_file, text */
    int token_file = 0;
    if (a.train_file[0]) {
        lt_tokens probe;
        if (lt_tokens_open(a.train_file, &probe, err, sizeof err) == LT_OK) {
            token_file = probe.bytes == 2;
            lt_tokens_close(&probe);
        }
    }
    /* the tokenizer the trainer would keep (the flag's, else the model folder's) and the vocabulary a model from
       scratch gets, as train decides them: 50257 for a token file, the tokenizer's for text, else 256 */
    lt_tokenizer *tok = NULL;
    const char *tp = lt_train_args_tokenizer_path(&a, NULL);
    if (tp && lt_tokenizer_load(tp, &tok, err, sizeof err)) {
        fprintf(stderr, "leantrain plan: %s\n", err);
        return 1;
    }
    const size_t tokenizer_bytes = lt_tokenizer_memory(tok);
    const int data_vocab = lt_train_data_vocab(token_file, tok ? lt_tokenizer_vocab_size(tok) : 0);
    lt_tokenizer_free(tok);
    lt_gpt2_config cfg;
    if (model_config(&a, data_vocab, &cfg, err, sizeof err)) {
        fprintf(stderr, "leantrain plan: %s\n", err);
        return 1;
    }
    const int run_clm = lt_train_args_data_layout(&a, token_file) == LT_DATA_RUN_CLM;
    int T = lt_train_args_block_size(&a, cfg.n_positions, run_clm ? LT_DATA_RUN_CLM : LT_DATA_STREAM);
    if (T > cfg.n_positions) {
        fprintf(stderr, "leantrain plan: --block_size %d is larger than the model's n_positions %d\n", T,
                cfg.n_positions);
        return 2;
    }
    if (run_clm) {
        if (T < 2) {
            fprintf(stderr, "leantrain plan: --block_size %d: run_clm's blocks need at least 2 tokens\n", T);
            return 2;
        }
        T--;
    }
    size_t data = 0;
    struct stat sb;
    if (a.train_file[0] && stat(a.train_file, &sb) == 0) data = (size_t)sb.st_size;
    lt_mem_table t;
    /* --device cuda plans device memory; auto and cpu plan the CPU (a plan should not depend on this machine) */
    lt_mem_methods me = {a.gradient_checkpointing, a.optim_in_backward, lt_train_args_precision(&a), a.pure_bf16,
                         !strcmp(a.device, "cuda"), run_clm, tokenizer_bytes};
    if (lt_memplan(&cfg, B, T, a.optim, a.optim_args, &me, data, &t, err, sizeof err)) {
        fprintf(stderr, "leantrain plan: %s\n", err);
        return 1;
    }
    lt_gpt2_memory mm;
    lt_gpt2_memory_plan(&cfg, B, T, 0, 0, LT_GPT2_F32, 0, 0, &mm, err, sizeof err);
    const char *precision = a.pure_bf16 ? " + pure bf16" : a.bf16 ? " + bf16" : a.fp16 ? " + fp16" : "";
    char rows[96] = "";
    if (run_clm) snprintf(rows, sizeof rows, " (run_clm's blocks of %d tokens, %d predictions each)", T + 1, T);
    printf("GPT-2 %d layers, %d embd, %d heads, vocab %d, %zu parameters; batch %d x %d%s; %s%s%s%s\n", cfg.n_layer,
           cfg.n_embd, cfg.n_head, cfg.vocab_size, mm.num_params, B, T, rows, a.optim,
           a.gradient_checkpointing ? " + gradient checkpointing" : "",
           a.optim_in_backward ? " + step inside backward" : "", precision);
    lt_mem_table_print(stdout, &t, 0);
    if (me.device) printf("device memory (cuBLAS workspace included, the CUDA context not)\n");
    printf("predicted speed: %.0f tokens/s %s\n",
           tokens_per_s(&cfg, mm.num_params, B, T, a.optim, a.gradient_checkpointing, me.precision,
                        me.device),
           me.device ? "on the calibrating H200 (bench/RESULTS.md, 2026-11-28; another GPU scales with its GEMMs)"
                     : "on the calibrated 2-core CPU");
    if (memory) { /* what fits of the batch: the largest size, and where --auto_find_batch_size would stop */
        int tried[1], nt;
        size_t tb[1];
        lt_mem_table tf;
        const int mb = lt_memplan_max_batch(&cfg, T, a.optim, a.optim_args, &me, data, memory, err, sizeof err);
        const int ab = lt_memplan_find_batch(&cfg, B, T, a.optim, a.optim_args, &me, data, memory, &tf, tried, tb, 1,
                                             &nt, err, sizeof err);
        if (mb < 0 || ab < 0) {
            fprintf(stderr, "leantrain plan: %s\n", err);
            return 1;
        }
        printf("in %.1f MiB%s%s%s: batch %d %s; the largest batch that fits: %d", memory / 1048576.0,
               source[0] ? " (" : "", source, source[0] ? ")" : "", B, t.total <= memory ? "fits" : "does not fit", mb);
        if (t.total > memory && ab > 0) printf("; --auto_find_batch_size would train with batch %d", ab);
        printf("%s\n", mb == 0 ? " (not even batch 1: lower --block_size, or --fit for the methods that fit)" : "");
    }
    if (!fit) return 0;
    typedef struct {
        const char *optim;
        int ckpt, oib, prec;
        double total, tps;
    } combo;
    static const char *const PREC[4] = {"fp32", "bf16", "fp16", "pure_bf16"};
    static const lt_gpt2_precision PREC_OF[4] = {LT_GPT2_F32, LT_GPT2_BF16, LT_GPT2_F16, LT_GPT2_BF16};
    enum { NCOMBO = NCOST * 2 * 2 * 4 };
    combo list[NCOMBO];
    int n = 0, ncombo = 0; /* ncombo: the combinations the trainer accepts */
    for (int k = 0; k < NCOST; k++)
        for (int ck = 0; ck < 2; ck++)
            for (int ob = 0; ob < 2; ob++)
                for (int pr = 0; pr < 4; pr++) {
                    /* only what the trainer accepts (fp16 does not step inside backward) */
                    lt_train_args ak = a;
                    ak.gradient_checkpointing = ck, ak.optim_in_backward = ob;
                    ak.bf16 = pr == 1, ak.fp16 = pr == 2, ak.pure_bf16 = pr == 3;
                    if (lt_train_args_check(&ak, err, sizeof err) != LT_OK) continue;
                    ncombo++;
                    lt_mem_table m;
                    lt_mem_methods mk = {ck, ob, PREC_OF[pr], pr == 3, me.device, me.run_clm, me.tokenizer_bytes};
                    if (lt_memplan(&cfg, B, T, STEP_COST[k].optim, "", &mk, data, &m, err, sizeof err)) continue;
                    if (m.total > memory) continue;
                    combo c = {STEP_COST[k].optim, ck, ob, pr, (double)m.total,
                               tokens_per_s(&cfg, mm.num_params, B, T, STEP_COST[k].optim, ck, PREC_OF[pr], me.device)};
                    int j = n++;
                    while (j > 0 && list[j - 1].tps < c.tps) list[j] = list[j - 1], j--;
                    list[j] = c;
                }
    printf("\nfits in %.1f MiB (%d of %d combinations), fastest first%s:\n", memory / 1048576.0, n, ncombo,
           me.device ? " (by the cost model of one H200 run)" : "");
    printf("%-20s %-24s %-20s %-10s %12s %14s\n", "optim", "gradient_checkpointing", "optim_in_backward", "precision",
           "total_MiB", "tokens_per_s");
    for (int i = 0; i < n; i++)
        printf("%-20s %-24s %-20s %-10s %12.1f %14.0f\n", list[i].optim, list[i].ckpt ? "yes" : "no",
               list[i].oib ? "yes" : "no", PREC[list[i].prec], list[i].total / 1048576.0, list[i].tps);
    if (n == 0) printf("(none: lower --per_device_train_batch_size or --block_size)\n");
    return 0;
}
