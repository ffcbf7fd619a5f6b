/* bench placeholder replaced below */
#include "cli/commands.h"
#include <stdio.h>
int lt_cmd_bench(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "bench: not yet\n"); return 1; }
