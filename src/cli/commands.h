/* leantrain command-line commands. Each takes the arguments after the program
 * name (argv[0] is the command's own name) and returns the process exit code. */
#ifndef LEANTRAIN_CLI_COMMANDS_H
#define LEANTRAIN_CLI_COMMANDS_H

#include "leantrain/safetensors.h"

/* `leantrain info FILE...`: prints each safetensors file's metadata and
 * tensors (name, dtype, shape, bytes). Returns 0 when every file was read, 1
 * when any could not be (the reason goes to stderr), 2 on a usage error. */
int lt_cmd_info(int argc, char **argv);

/* `leantrain replay FILE...`: checks the library against reference traces
 * (optim-trace-1, gpt2-trace-1): one line per file, PASS or FAIL with the
 * worst error and the tolerance. Returns 0 only when every file passes. */
int lt_cmd_replay(int argc, char **argv);

/* Replays one opened gpt2-trace-1 file `f` (named `path` in the output):
 * forward logits and loss, every weight gradient and the losses of the
 * recorded AdamW steps, each against the trace's `tolerance` metadata; on the
 * GPU's device model when `device` (the optimizer state there too); in bf16
 * mixed precision against bf16 tolerances when `bf16`. Prints exactly one
 * line, "PASS  <path>  worst <x>  tol <y>  ..." (worst and tol of the
 * comparison nearest its tolerance, then each check's worst/tol, then the
 * mode in brackets unless CPU fp32) or a FAIL line with the reason. Returns 1
 * on PASS, 0 otherwise. */
int lt_replay_gpt2(const char *path, lt_st_file *f, int device, int bf16);

/* `leantrain optimizers`: one line per optim= name with its state bytes per parameter. */
int lt_cmd_optimizers(int argc, char **argv);

/* `leantrain bench optim [--optim NAME] [--params M] [--steps N]`: per
 * optimizer ms per step, GB/s and the ratio to the copy bandwidth measured in
 * the same run. */
int lt_cmd_bench(int argc, char **argv);

/* `leantrain bench optim --device cuda`: the same table for device parameters,
 * timed with CUDA events, against a device-to-device copy timed in the same run. */
int lt_cmd_bench_optim_cuda(const char *only, const char *optim_args, double millions, int steps);

/* `leantrain bench quality [--steps N] [--learning_rate LR]`: final losses and state
 * bytes of fp32 AdamW, Adafactor, Lion and the 8-bit and 4-bit optimizers on one
 * small training problem. */
int lt_cmd_bench_quality(int argc, char **argv);

/* `leantrain bench train [--steps N] [--small_only]`: GPT-2 training tokens/s and FLOP/s against
 * the sgemm rate measured in the same run. */
int lt_cmd_bench_train(int argc, char **argv);

/* `leantrain bench tokenize [--input FILE] [--mb M] [--threads N] [--reps R] [--tokenizer_name_or_path DIR]`:
 * GPT-2 encoding MB/s with one thread and with N (all) threads, on a file or a generated text. */
int lt_cmd_bench_tokenize(int argc, char **argv);

/* `leantrain bench generate`: ms per token of GPT-2 inference with the key / value cache, against the weights'
 * read floor and a whole-context forward per token, measured in the same run. */
int lt_cmd_bench_generate(int argc, char **argv);

/* `leantrain tokenize --input FILE --output FILE.bin [--tokenizer_name_or_path DIR] [--threads N]
 * [--chunk_mb M]`: streams text into an llm.c token file (atomically: nothing is left on failure);
 * `--decode` turns a token file back into text. */
int lt_cmd_tokenize(int argc, char **argv);

/* `leantrain plan [model, batch and method flags] [--memory SIZE --fit]`: the memory table without
 * training; with --fit, the method combinations that fit, fastest first. */
int lt_cmd_plan(int argc, char **argv);

/* `leantrain train [flags]`: trains GPT-2 with the Trainer's flags (leantrain train --help). */
int lt_cmd_train(int argc, char **argv);

/* `leantrain generate --model_name_or_path DIR [--prompt TEXT] [--max_new_tokens N] [--temperature T]
 * [--top_k K] [--seed S]`: samples text from a trained model. */
int lt_cmd_generate(int argc, char **argv);

#endif
