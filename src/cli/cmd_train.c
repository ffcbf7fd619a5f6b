/* `leantrain train`: the Trainer-style command line (flags in train/args.c). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "train/args.h"
#include "train/trainer.h"

int lt_cmd_train(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            lt_train_args_usage(stdout);
            return 0;
        }
    lt_train_args a;
    lt_train_args_default(&a);
    char err[1024];
    if (lt_train_args_parse(&a, argc - 1, argv + 1, err, sizeof err) != LT_OK) {
        fprintf(stderr, "leantrain train: %s\n", err);
        return 2;
    }
    return lt_train_run(&a);
}
