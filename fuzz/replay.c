/* A fuzz target without libFuzzer: runs its LLVMFuzzerTestOneInput on every file of the folders (or files) named,
 * in name order, after its LLVMFuzzerInitialize where it has one. `make test` builds each target of fuzz/ with this
 * driver and gcc (tests/cli/fuzz_seeds.sh replays the committed corpora), so that a target that crashes on a seed,
 * breaks an invariant (EXPECT traps) or stops reaching what it tests fails the suite: the last needs the target to
 * count what it got through (lt_fuzz_reached, where it defines one), printed here for the test to check.
 * usage: replay_TARGET DIR_OR_FILE...; exit 0 when every input ran, 1 when an input could not be read. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#pragma weak LLVMFuzzerInitialize
#pragma weak lt_fuzz_reached
extern long lt_fuzz_reached;

static int run_file(const char *path, long *n) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: cannot open\n", path);
        return 1;
    }
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0)
        if ((len += got) == cap) {
            uint8_t *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    const int bad = !buf || ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "replay: %s: cannot read\n", path);
        free(buf);
        return 1;
    }
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    (*n)++;
    return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    long n = 0;
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            rc |= run_file(argv[i], &n);
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d) {
            fprintf(stderr, "replay: %s: cannot open the folder\n", argv[i]);
            rc = 1;
            continue;
        }
        char **names = NULL;
        size_t count = 0;
        for (struct dirent *e; (e = readdir(d)) != NULL;) {
            if (e->d_name[0] == '.') continue;
            char **nn = realloc(names, (count + 1) * sizeof *names);
            if (!nn) break;
            names = nn;
            const size_t len = strlen(argv[i]) + strlen(e->d_name) + 2;
            if (!(names[count] = malloc(len))) break;
            snprintf(names[count++], len, "%s/%s", argv[i], e->d_name);
        }
        closedir(d);
        if (count) qsort(names, count, sizeof *names, by_name);
        for (size_t k = 0; k < count; k++) rc |= run_file(names[k], &n), free(names[k]);
        free(names);
    }
    printf("replayed %ld inputs", n);
    if (&lt_fuzz_reached) printf(", %ld reached the target's checks", lt_fuzz_reached);
    printf("\n");
    return rc;
}
