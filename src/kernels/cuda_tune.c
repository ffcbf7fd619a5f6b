/* The choice among a kernel's same-result forms by their measured times
 * (kernels/cuda/cu_tune.h). Plain C, built in every configuration. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kernels/cuda/cu_plan.h"
#include "kernels/cuda/cu_tune.h"

/* variant bits of the low-bit launch (lt_cu_launch_q) and of Adafactor's (lt_cu_launch_af) */
enum { Q_GENERIC = 1, Q_R64 = 2, Q_VOTE = 4, AF_VEC = 1, AF_STAGED = 4, AF_ONE_AHEAD = 8, AF_APPLY2 = 16,
       AF_BAR1 = 32, AF_TWO_AHEAD = 64 };

static int lowbit_kind(int kind) { return kind >= LT_CU_BNB8_ADAM && kind <= LT_CU_AO4; }

int lt_cu_tune_forms(int kind, int block, int base, int *cand) {
    int n = 0;
    cand[n++] = base;
    if (lowbit_kind(kind)) {
        /* where the block allows it (128 or 256) the default is the instantiation held to 64 registers, 4 CTAs per
           SM (the fastest form of every low-bit kind on an H200, 2026-11-30), then the 80-register one; the
           general step last (in the default instantiation, as LT_LOWBIT_HOT=0 gives it) */
        if (block == 128 || block == 256) {
            cand[0] = base | Q_R64;
            cand[n++] = base;
            /* bnb 8-bit AdamW: the 64-register one with the voted step (its square roots and divisions without
               a slow-path branch each; unmeasured on a GPU when added, 2026-12-01) */
            if (kind == LT_CU_BNB8_ADAM) cand[n++] = base | Q_R64 | Q_VOTE;
            cand[n++] = base | Q_R64 | Q_GENERIC;
        } else {
            cand[n++] = base | Q_GENERIC;
        }
    } else if (kind == LT_CU_AF_ROWS && (base & AF_VEC)) {
        /* the default stages one tile ahead (the fastest on an H200, 2026-11-30: 0.48 ms a 262M step against 0.64
           three tiles ahead and 0.71 unstaged); the other two forms as the LT_ADAFACTOR_PIPE switch gives them */
        cand[0] = base | AF_STAGED | AF_ONE_AHEAD;
        cand[n++] = base | AF_STAGED;
        cand[n++] = base & ~(AF_STAGED | AF_ONE_AHEAD);
        /* one barrier a group of rows (the old row moments read when the unit starts), one tile ahead and two
           (48 KB of stages: with the column sums of up to 3072 columns still 3 CTAs an SM, which the 64 KB of
           stage3 are not); both unmeasured on a GPU when added, 2026-12-01 */
        cand[n++] = base | AF_STAGED | AF_ONE_AHEAD | AF_BAR1;
        cand[n++] = base | AF_STAGED | AF_BAR1 | AF_TWO_AHEAD;
    } else if (kind == LT_CU_AF_APPLY) {
        cand[n++] = base | AF_APPLY2;
    }
    return n;
}

void lt_cu_tune_init(lt_cu_tune *t, int kind, int block, int base, uint64_t nunits, const int *cand, int ncand) {
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->block = block;
    t->base = base;
    t->nunits = nunits;
    t->ncand = ncand < 1 ? 1 : ncand > LT_CU_TUNE_MAXC ? LT_CU_TUNE_MAXC : ncand;
    for (int i = 0; i < t->ncand; i++) t->cand[i] = ncand < 1 ? base : cand[i];
    t->chosen = t->ncand == 1 ? 0 : -1;
}

int lt_cu_tune_next(lt_cu_tune *t, int *timed) {
    if (t->chosen >= 0) {
        *timed = 0;
        return t->chosen;
    }
    *timed = 1;
    return t->issued++ % t->ncand;
}

void lt_cu_tune_sample(lt_cu_tune *t, int ci, double ms) {
    if (t->chosen >= 0 || ci < 0 || ci >= t->ncand || !(ms >= 0)) return;
    if (t->nsamples[ci] == 0 || ms < t->best_ms[ci]) t->best_ms[ci] = ms;
    t->nsamples[ci]++;
    for (int i = 0; i < t->ncand; i++)
        if (t->nsamples[i] < LT_CU_TUNE_SAMPLES) return;
    int best = 0;
    for (int i = 1; i < t->ncand; i++)
        if (t->best_ms[i] < t->best_ms[best]) best = i;
    t->chosen = t->best_ms[best] < t->best_ms[0] * (1.0 - LT_CU_TUNE_MARGIN) ? best : 0;
}

const char *lt_cu_tune_form_name(int kind, int bits) {
    if (lowbit_kind(kind))
        return (bits & Q_GENERIC) ? "generic" : !(bits & Q_R64) ? "hot" : (bits & Q_VOTE) ? "hot/vote" : "hot/r64";
    if (kind == LT_CU_AF_ROWS) {
        if (!(bits & AF_VEC)) return "scalar";
        if (!(bits & AF_STAGED)) return "plain";
        if (bits & AF_BAR1) return (bits & AF_TWO_AHEAD) ? "stage2/bar1" : "stage1/bar1";
        return (bits & AF_ONE_AHEAD) ? "stage1" : "stage3";
    }
    if (kind == LT_CU_AF_APPLY) return (bits & AF_APPLY2) ? "apply2" : "apply1";
    return "default";
}

static const char *kind_name(int kind) {
    switch (kind) {
    case LT_CU_BNB8_ADAM: return "bitsandbytes 8-bit AdamW";
    case LT_CU_BNB8_LION: return "bitsandbytes 8-bit Lion";
    case LT_CU_AO8: return "torchao 8-bit AdamW";
    case LT_CU_AO4: return "torchao 4-bit AdamW";
    case LT_CU_AF_ROWS: return "Adafactor row pass";
    case LT_CU_AF_APPLY: return "Adafactor apply pass";
    default: return "optimizer kernel";
    }
}

/* appends to buf at *at, truncating at len - 1 */
static void append(char *buf, size_t len, size_t *at, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t len, size_t *at, const char *fmt, ...) {
    if (*at + 1 >= len) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *at, len - *at, fmt, ap);
    va_end(ap);
    if (w > 0) *at = *at + (size_t)w < len ? *at + (size_t)w : len - 1;
}

int lt_cu_tune_describe(const lt_cu_tune *t, char *buf, size_t len) {
    if (!len) return 0;
    size_t at = 0;
    buf[0] = 0;
    append(buf, len, &at, "%s", kind_name(t->kind));
    if (t->block) append(buf, len, &at, ", block %d", t->block);
    append(buf, len, &at, ", %llu units: %s", (unsigned long long)t->nunits,
           t->chosen >= 0 ? lt_cu_tune_form_name(t->kind, t->cand[t->chosen]) : "choosing");
    for (int i = 0; i < t->ncand && t->ncand > 1; i++) {
        const char *sep = i ? ", " : " (best times: ", *name = lt_cu_tune_form_name(t->kind, t->cand[i]);
        if (t->nsamples[i]) append(buf, len, &at, "%s%s %.3f ms", sep, name, t->best_ms[i]);
        else append(buf, len, &at, "%s%s untimed", sep, name);
    }
    if (t->ncand > 1) append(buf, len, &at, ")");
    return (int)at;
}
