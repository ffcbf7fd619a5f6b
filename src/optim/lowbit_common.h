/* Pieces the low-bit families share: block-size checks, map state tensors,
 * and validation of quantized state read from a file. */
#ifndef LT_OPTIM_LOWBIT_COMMON_H
#define LT_OPTIM_LOWBIT_COMMON_H

#include "kernels/quant.h"
#include "optim/validate.h"

/* block_size must be a power of two in [64, 4096]. */
static inline int lt_check_block(lt_optim *o, double bs) {
    long b = (long)bs;
    if ((double)b != bs || b < 64 || b > 4096 || (b & (b - 1)))
        return lt_optim_fail(o, LT_ERR_ARG, "invalid block_size %g: must be a power of two from 64 to 4096", bs) !=
               LT_OK;
    return 0;
}

/* Copies `map` into the state tensor `state` of p and points qtab[slot] at its table. */
static inline lt_status lt_lowbit_init_map(lt_optim *o, lt_param *p, const char *state, const float *map, int n,
                                           int slot, lt_qrule rule) {
    lt_state *s = lt_param_state(p, state);
    memcpy(s->data, map, (size_t)n * sizeof *map);
    p->qtab[slot] = lt_optim_qtab(o, map, n, rule);
    return p->qtab[slot] < 0 ? LT_ERR_NOMEM : LT_OK;
}

/* Re-points qtab[slot] at the table of the map now stored in `state` (after a load). */
static inline lt_status lt_lowbit_adopt_map(lt_optim *o, lt_param *p, const char *state, int slot, lt_qrule rule) {
    lt_state *s = lt_param_state(p, state);
    p->qtab[slot] = lt_optim_qtab(o, s->data, (int)s->numel, rule);
    return p->qtab[slot] < 0 ? LT_ERR_FORMAT : LT_OK;
}

/* A loaded map must be sorted, finite and within [-1, 1]; a loaded scale finite and >= 0. */
static inline lt_status lt_lowbit_check(lt_optim *o, const lt_param *p, const char *state, const void *data,
                                        size_t n, const char *path, int is_map, int is_scale) {
    const float *x = data; /* maps and scales are F32: the loader checked the dtype */
    if (!is_map && !is_scale) return LT_OK;
    for (size_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, x + i, sizeof v);
        if (is_map) {
            float prev = 0;
            if (i) memcpy(&prev, x + i - 1, sizeof prev);
            if (!isfinite(v) || v < -1.0f || v > 1.0f || (i && !(v > prev)))
                return lt_optim_fail(o, LT_ERR_FORMAT,
                                     "%s: '%s.%s' is not a sorted quantization map in [-1, 1] (entry %zu is %g)", path,
                                     p->name, state, i, v);
        } else if (is_scale && !(isfinite(v) && v >= 0.0f)) {
            return lt_optim_fail(o, LT_ERR_FORMAT, "%s: '%s.%s'[%zu] is %g: a block scale must be finite and >= 0",
                                 path, p->name, state, i, v);
        }
    }
    return LT_OK;
}

#endif
