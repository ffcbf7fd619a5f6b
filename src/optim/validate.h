/* Range checks shared by the families' validate functions; each records a
 * message naming the hyperparameter and returns non-zero on failure. */
#ifndef LT_OPTIM_VALIDATE_H
#define LT_OPTIM_VALIDATE_H

#include <math.h>

#include "optim/optim_internal.h"

static inline int lt_check_lr(lt_optim *o, double lr) {
    if (isnan(lr)) return lt_optim_fail(o, LT_ERR_ARG, "a learning rate is required (lr is unset)") != LT_OK;
    if (!(lr >= 0)) return lt_optim_fail(o, LT_ERR_ARG, "invalid learning rate %g: must be >= 0", lr) != LT_OK;
    return 0;
}

/* lo <= x < hi, or lo <= x <= hi when closed. */
static inline int lt_check_range(lt_optim *o, const char *what, double x, double lo, double hi, int closed) {
    if (isfinite(x) && x >= lo && (closed ? x <= hi : x < hi)) return 0;
    lt_optim_fail(o, LT_ERR_ARG, "invalid %s %g: must be in [%g, %g%s", what, x, lo, hi, closed ? "]" : ")");
    return 1;
}

static inline int lt_check_nonneg(lt_optim *o, const char *what, double x) {
    if (isfinite(x) && x >= 0) return 0;
    lt_optim_fail(o, LT_ERR_ARG, "invalid %s %g: must be >= 0", what, x);
    return 1;
}

#endif
