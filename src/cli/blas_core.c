/* OpenBLAS's kernel set: see blas_core.h. */
#include "cli/blas_core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "model/gpt2_layers.h"

const char *lt_blas_core_for_cpu(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    /* libgcc sets these only when the OS saves the registers too (XGETBV) */
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    if (__builtin_cpu_supports("avx")) return "Sandybridge";
#endif
    return NULL;
}

void lt_blas_core_setup(char **argv) {
    if (getenv("OPENBLAS_CORETYPE")) return;
    const char *want = lt_blas_core_for_cpu();
    if (!want || strcasecmp(lt_nn_blas_core(), "Prescott") != 0) return;
    /* the program's file by its own path, so that ps and top show its name (not "exe") */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0 || (size_t)n >= sizeof self - 1) snprintf(self, sizeof self, "/proc/self/exe");
    else self[n] = '\0';
    if (setenv("OPENBLAS_CORETYPE", want, 1) != 0) return;
    execv(self, argv);
    /* still here: the exec failed; this process keeps the kernels it has */
    fprintf(stderr,
            "leantrain: note: OpenBLAS chose its slow Prescott kernels on this CPU, and re-running %s with "
            "OPENBLAS_CORETYPE=%s failed (%s); set OPENBLAS_CORETYPE=%s yourself for faster matrix multiplies\n",
            self, want, strerror(errno), want);
    unsetenv("OPENBLAS_CORETYPE");
}
