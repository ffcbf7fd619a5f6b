/* `leantrain optimizers`: the registry as a stable table (benchmarks parse it). */
#include <stdio.h>

#include "cli/commands.h"
#include "leantrain/optim.h"

int lt_cmd_optimizers(int argc, char **argv) {
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "leantrain optimizers: takes no arguments\n");
        return 2;
    }
    printf("%-20s %21s  %s\n", "optim", "state_bytes_per_param", "reference");
    for (int i = 0; lt_optim_info_at(i); i++) {
        const lt_optim_info *in = lt_optim_info_at(i);
        printf("%-20s %21.4f  %s; state: %s\n", in->name, in->state_bytes_per_param, in->reference, in->state);
    }
    return 0;
}
