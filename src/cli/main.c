/* leantrain: the command-line program. Dispatches to one command per file. */
#include <stdio.h>
#include <string.h>

#include "cli/blas_core.h"
#include "cli/commands.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: leantrain COMMAND [ARGS]\n"
            "commands:\n"
            "  train [flags]         train GPT-2 with the Hugging Face Trainer's flags (train --help)\n"
            "  generate --model_name_or_path DIR [--prompt TEXT] [--max_new_tokens N] [--temperature T]\n"
            "           [--top_k K] [--seed S]   sample text from a trained model\n"
            "  tokenize --input FILE --output FILE.bin [--tokenizer_name_or_path DIR] [--threads N]\n"
            "                        text -> llm.c token file with the GPT-2 tokenizer (streaming; --decode: back)\n"
            "  plan [model/batch/method flags] [--memory 24GB|auto [--fit]]\n"
            "                        the memory table of a run without training; what fits, fastest first\n"
            "  replay FILE...        check against reference traces (optim-trace-1, gpt2-trace-1); PASS/FAIL per file\n"
            "  optimizers            list every optim= name with its state bytes per parameter\n"
            "  bench optim [--optim NAME] [--params MILLIONS] [--steps N]\n"
            "                        time each optimizer's step against the copy bandwidth\n"
            "  bench quality [--steps N] [--learning_rate LR]\n"
            "                        final losses of AdamW, Adafactor and the low-bit optimizers on one problem\n"
            "  bench tokenize [--input FILE] [--threads N]\n"
            "                        GPT-2 tokenizer encoding MB/s, one thread and all threads\n"
            "  info FILE...          list a safetensors file's metadata and tensors\n"
            "  help                  this text\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    lt_blas_core_setup(argv); /* may re-execute the program: before any output */
    const char *cmd = argv[1];
    if (!strcmp(cmd, "replay")) return lt_cmd_replay(argc - 1, argv + 1);
    if (!strcmp(cmd, "optimizers")) return lt_cmd_optimizers(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return lt_cmd_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "info")) return lt_cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "train")) return lt_cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "plan")) return lt_cmd_plan(argc - 1, argv + 1);
    if (!strcmp(cmd, "generate")) return lt_cmd_generate(argc - 1, argv + 1);
    if (!strcmp(cmd, "tokenize")) return lt_cmd_tokenize(argc - 1, argv + 1);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "leantrain: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
