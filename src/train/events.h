/* When a run logs, evaluates and saves: the Hugging Face Trainer's logging_strategy, eval_strategy and
 * save_strategy ("no", "steps", "epoch") with their *_steps, as its DefaultFlowCallback applies them after each
 * optimizer step, resolved once per run into periods in optimizer steps. */
#ifndef LT_TRAIN_EVENTS_H
#define LT_TRAIN_EVENTS_H

#include "train/args.h"

typedef enum lt_every { LT_EVERY_NO, LT_EVERY_STEPS, LT_EVERY_EPOCH } lt_every;

/* The strategy named by s ("no", "steps", "epoch"), or -1 for any other name. */
int lt_every_parse(const char *s);

/* The steps a *_steps or warmup_steps value stands for in a run of total steps (transformers 5's rule): x when
 * x >= 1 (a whole number), ceil(total * x) for a ratio in (0, 1), 0 for 0. */
long lt_steps_resolve(double x, long total);

/* The optimizer steps of a run whose epoch is steps_per_epoch steps: --max_steps when > 0, else
 * ceil(num_train_epochs x steps_per_epoch); -1 when that is not from 1 to LT_MAX_RUN_STEPS. */
long lt_train_total_steps(const lt_train_args *a, long steps_per_epoch);

/* One kind of event: at every multiple of `every` steps (0: at none) and, when `last`, at the run's last step. */
typedef struct lt_event_rule {
    long every;
    int last;
} lt_event_rule;

typedef struct lt_events {
    lt_event_rule log, eval, save;
    long eval_from; /* eval_delay: no evaluation before this step */
    int log_first; /* logging_first_step: step 1 too */
    long total;    /* the run's optimizer steps */
} lt_events;

enum { LT_EV_LOG = 1, LT_EV_EVAL = 2, LT_EV_SAVE = 4 };

/* The events of a run of total_steps optimizer steps, an epoch being steps_per_epoch of them (its last step is
 * where an "epoch" strategy acts), from a's strategies and *_steps: "steps" acts every resolved *_steps and at the
 * last step (eval_steps 0: never; save_steps 0: only at the last step), "epoch" at each epoch's last step and at
 * the run's, "no" never. (--do_eval's evaluation after the run is the trainer's, as in run_clm.) */
lt_events lt_events_make(const lt_train_args *a, long total_steps, long steps_per_epoch);

/* eval_delay (a->eval_delay) counts steps for eval_strategy steps and epochs for epoch: an evaluation is due only
 * from the step where it is reached (the Trainer compares it with global_step or the epoch). */

/* Whether an evaluation's metric v is a new best (the Trainer's _determine_best_metric: strictly better than
 * best, larger when greater_is_better; any value when there is no best yet). */
int lt_best_improves(double v, double best, int have_best, int greater_is_better);

/* The events due after optimizer step `step` (1-based): a mask of LT_EV_LOG, LT_EV_EVAL, LT_EV_SAVE. */
int lt_events_at(const lt_events *ev, long step);

#endif
