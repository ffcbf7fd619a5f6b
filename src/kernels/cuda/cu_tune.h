/* Choosing among a kernel's interchangeable forms by timing them on the
 * device that runs them (plain C, no CUDA: kernels/cuda_tune.c, tested on the
 * host by tests/test_cuda_host.c; context.cu times the launches).
 *
 * Some optimizer kernels come in forms that give the same bits and differ only
 * in speed: the low-bit kernels' straight-line step for common blocks against
 * the general one, their 64-register instantiation against the 80-register
 * one, and (8-bit AdamW) the step whose square roots and divisions have no
 * slow-path branch of their own; Adafactor's row pass staged three tiles ahead, one (with two barriers a
 * group of rows or one), two (with one), or none, and its
 * apply pass loading one or two groups ahead. Which is fastest depends on the
 * GPU (an H100 and an H200 differ in bandwidth, not in issue rate) and was
 * measured for few of them. So a launch of such a kind tries each form in turn
 * for its first launches, LT_CU_TUNE_SAMPLES times each, timed with events, and
 * then keeps the fastest by its best time (the first launch of each form also
 * loads its module, hence the best and not the mean). The default form stays
 * unless another beats it by more than LT_CU_TUNE_MARGIN. Because every form
 * gives the same bits, the choice never changes a result: a resumed run equals
 * an uninterrupted one whatever each chose.
 *
 * A choice is kept per launch shape: (kind, fixed variant bits, units), so
 * the same optimizer stepping per block in backward tunes each block size
 * on its own. */
#ifndef LT_KERNELS_CUDA_CU_TUNE_H
#define LT_KERNELS_CUDA_CU_TUNE_H

#include <stddef.h>
#include <stdint.h>

#define LT_CU_TUNE_MAXC 5     /* forms per launch shape */
#define LT_CU_TUNE_SAMPLES 3  /* timed launches of each form before choosing */
#define LT_CU_TUNE_MARGIN 0.02 /* another form must be this much faster than the default (relative) */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lt_cu_tune {
    int kind;        /* lt_cu_* launch kind (cu_plan.h) */
    int base;        /* variant bits the launch fixes (Adafactor's row pass: vectorized, shared sums) */
    int block;       /* low-bit quantization block, else 0 */
    uint64_t nunits; /* the launch's work units */
    int ncand;
    int cand[LT_CU_TUNE_MAXC]; /* each form's variant bits (base included); [0] is the default */
    int issued;                /* launches made while choosing */
    int nsamples[LT_CU_TUNE_MAXC];
    double best_ms[LT_CU_TUNE_MAXC];
    int chosen; /* index into cand; -1 while choosing */
} lt_cu_tune;

/* The forms a launch of kind may take, default first, as variant bits that include base (the bits the launch
 * fixes); block: the low-bit quantization block (the 64-register form exists for 128 and 256 only). Writes at
 * most LT_CU_TUNE_MAXC and returns how many: 1 for kinds with a single form. */
int lt_cu_tune_forms(int kind, int block, int base, int *cand);

/* Starts choosing among cand[0..ncand) for launches of this shape; ncand 1 is chosen at once. */
void lt_cu_tune_init(lt_cu_tune *t, int kind, int block, int base, uint64_t nunits, const int *cand, int ncand);

/* The index of the form the next launch takes: the chosen one, or while choosing the next in turn. Sets
 * *timed to whether that launch's time should be reported to lt_cu_tune_sample. */
int lt_cu_tune_next(lt_cu_tune *t, int *timed);

/* Reports a timed launch of form ci (ms < 0 or NaN: the timing failed, ignored). Chooses once every form has
 * LT_CU_TUNE_SAMPLES times: the lowest best time, unless it is within LT_CU_TUNE_MARGIN of the default's. */
void lt_cu_tune_sample(lt_cu_tune *t, int ci, double ms);

/* A form's name: "hot", "hot/r64", "hot/vote" or "generic" (low-bit), "stage3", "stage1", "stage1/bar1", "stage2/bar1"
 * or "plain" (Adafactor's row pass), "apply1" or "apply2" (its apply pass). */
const char *lt_cu_tune_form_name(int kind, int bits);

/* One line about t into buf: the launch, each form's best time and the choice (or "choosing"). Returns the
 * length written (truncated to len - 1). */
int lt_cu_tune_describe(const lt_cu_tune *t, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
