/* Learning-rate schedulers: the Hugging Face Trainer's `lr_scheduler_type`
 * values. Each gives the factor that multiplies the base learning rate at
 * optimizer step s (0-based: the factor used by the (s+1)-th update). */
#ifndef LT_TRAIN_SCHEDULE_H
#define LT_TRAIN_SCHEDULE_H

#include <stddef.h>

#include "leantrain/status.h"

typedef enum lt_sched_type {
    LT_SCHED_LINEAR,
    LT_SCHED_COSINE,
    LT_SCHED_COSINE_WITH_RESTARTS,
    LT_SCHED_POLYNOMIAL,
    LT_SCHED_CONSTANT,
    LT_SCHED_CONSTANT_WITH_WARMUP,
    LT_SCHED_INVERSE_SQRT,
    LT_SCHED_COSINE_WITH_MIN_LR,
    LT_SCHED_WARMUP_STABLE_DECAY,
    LT_SCHED_REDUCE_ON_PLATEAU, /* torch's ReduceLROnPlateau, stepped by each evaluation's metric */
    LT_SCHED_COSINE_WARMUP_WITH_MIN_LR, /* transformers' get_cosine_with_min_lr_schedule_with_warmup_lr_rate */
    LT_SCHED_GREEDY,            /* transformers' GreedyLR, stepped by each evaluation's metric */
} lt_sched_type;

/* greedy's smoothing window holds at most this many metrics */
#define LT_SCHED_WINDOW_MAX 1024

typedef struct lt_sched {
    lt_sched_type type;
    long warmup;         /* W, warmup steps */
    long total;          /* N, total optimizer steps */
    double base_lr;      /* the optimizer's lr (polynomial and cosine_with_min_lr need it) */
    double num_cycles;   /* cosine: 0.5; cosine_with_restarts: 1 */
    double power;        /* polynomial: 1 */
    double lr_end;       /* polynomial: 1e-7 */
    long timescale;      /* inverse_sqrt: 0 = W, or 10000 when W = 0 */
    double min_lr;       /* cosine_with_min_lr: an absolute floor, or ... */
    double min_lr_rate;  /* ... a fraction of base_lr (used when min_lr < 0) */
    long num_stable;     /* warmup_stable_decay */
    long num_decay;
    int decay_type;      /* warmup_stable_decay: 0 linear, 1 cosine (default), 2 1-sqrt */
    int warmup_type;     /* warmup_stable_decay: 0 linear (default), 1 cosine, 2 1-sqrt */
    double min_lr_ratio; /* warmup_stable_decay */
    double warmup_lr_rate; /* cosine_warmup_with_min_lr: the first warmup step's factor (< 0: none given) */
    /* reduce_lr_on_plateau (torch's defaults): mode min (max_mode 0), factor 0.1, patience 10, threshold 1e-4
       relative (threshold_abs 0), cooldown 0, min_lr 0, eps 1e-8; then its state, which a checkpoint keeps: the
       lr, the best metric, the evaluations without improvement and the cooldown left */
    int max_mode, threshold_abs;
    double factor, threshold, eps;
    long patience, cooldown;
    double lr, best;
    long num_bad, cooldown_left;
    /* greedy (transformers' GreedyLR), the fields above with its defaults (factor 0.95, patience 10, threshold
       1e-6 absolute, min_lr 1e-3) and: max_lr 1.0; warmup (its own: evaluations ignored after an increase, as
       cooldown after a decrease); reset_start 500 (evaluations at min_lr before it starts over from base_lr);
       smooth (the metric averaged over the last window_size, 50); then the state besides the plateau's */
    double max_lr;
    long g_warmup, reset_start, window;
    int smooth;
    long num_good, warmup_left, reset_left;
    double win[LT_SCHED_WINDOW_MAX], win_sum; /* the window's metrics, oldest at win_head, and their running sum */
    long win_n, win_head;
} lt_sched;

/* Fills s for `name` with the Trainer's defaults for that scheduler, W and N.
 * `kwargs` is "k=v,k=v" or a JSON object ('{"k": v}', the Trainer's form) of the scheduler's options (num_cycles, power, lr_end,
 * timescale, min_lr, min_lr_rate, num_stable_steps, num_decay_steps,
 * decay_type, warmup_type, min_lr_ratio, warmup_lr_rate; reduce_lr_on_plateau: mode, factor, patience,
 * threshold, threshold_mode, cooldown, min_lr, eps; greedy: those and max_lr, warmup, smooth, window_size,
 * reset_start, verbose) or NULL. On error writes err (naming the flag or
 * key) and returns LT_ERR_ARG. */
lt_status lt_sched_init(lt_sched *s, const char *name, long warmup, long total, double base_lr, const char *kwargs,
                        char *err, size_t errlen);

/* The factor at optimizer step `step` (0-based). */
double lt_sched_factor(const lt_sched *s, long step);

/* The learning rate at optimizer step `step`: base_lr x lt_sched_factor, or a metric-driven scheduler's current
 * lr. */
double lt_sched_lr(const lt_sched *s, long step);

/* Whether the scheduler is stepped by evaluations' metrics (reduce_lr_on_plateau, greedy) rather than by steps. */
int lt_sched_metric_driven(const lt_sched *s);

/* One evaluation's metric, as the Trainer passes it to scheduler.step(metric). reduce_lr_on_plateau (torch's
 * ReduceLROnPlateau): the lr becomes max(lr x factor, min_lr) after more than `patience` evaluations without an
 * improvement beyond `threshold`, then `cooldown` evaluations pass before counting again. greedy (GreedyLR): the
 * same for a decrease, and min(lr / factor, max_lr) after more than `patience` improvements in a row, then
 * `warmup` evaluations pass; after `reset_start` decreases at min_lr it starts over at the base lr. Returns -1
 * when the lr was lowered, 1 when raised (or reset), 0 otherwise and for the other schedulers. */
int lt_sched_metric_step(lt_sched *s, double metric);

struct cJSON;
/* Adds the metric-driven schedulers' state (the part a checkpoint must keep: lr, best, counters, greedy's window)
 * to the trainer_state's lr_scheduler object j; nothing for the others. */
void lt_sched_state_save(const lt_sched *s, struct cJSON *j);

/* Restores what lt_sched_state_save wrote; LT_ERR_FORMAT with err naming what is missing or invalid. */
lt_status lt_sched_state_load(lt_sched *s, const struct cJSON *j, char *err, size_t errlen);

/* The names accepted by lt_sched_init, space separated. */
const char *lt_sched_names(void);

#endif
