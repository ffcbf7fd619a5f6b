/* Which OpenBLAS kernels the program runs on. OpenBLAS built for many CPUs
 * (DYNAMIC_ARCH, as Debian's) picks its kernels once, when it is loaded, from
 * the CPU's model number; a model it does not know (Debian 12's 0.3.21 does
 * not know Emerald Rapids, family 6 model 207) gets its oldest x86-64 kernels,
 * "Prescott" (SSE3: 4.6x slower sgemm on the project's VM than its AVX-512
 * kernels). The only documented way to choose is OPENBLAS_CORETYPE in the
 * environment before the library loads, hence a re-execution. */
#ifndef LEANTRAIN_CLI_BLAS_CORE_H
#define LEANTRAIN_CLI_BLAS_CORE_H

/* The kernel set OpenBLAS should use on this CPU going by its instruction set
 * (the CPU and the OS both support it): "SkylakeX" with AVX-512 F/CD/BW/DQ/VL,
 * "Haswell" with AVX2 and FMA, "Sandybridge" with AVX; NULL otherwise. */
const char *lt_blas_core_for_cpu(void);

/* Call first in main, before any output: when OPENBLAS_CORETYPE is unset and
 * OpenBLAS fell back to "Prescott" (lt_nn_blas_core) on a CPU that
 * lt_blas_core_for_cpu() gives a kernel set for, sets OPENBLAS_CORETYPE to it
 * and re-executes the program (its file as /proc/self/exe names it, the same
 * arguments); the new process finds the variable set and goes on. Returns
 * only when no re-execution was needed or it failed (a note on stderr says
 * why; the program then runs on "Prescott").
 * OPENBLAS_CORETYPE set by the user, even to "Prescott", is left alone. */
void lt_blas_core_setup(char **argv);

#endif
