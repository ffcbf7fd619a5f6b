/* The run's log / evaluation / checkpoint steps (see events.h). */
#include "train/events.h"

#include <math.h>
#include <string.h>

int lt_every_parse(const char *s) {
    return !strcmp(s, "no") ? LT_EVERY_NO : !strcmp(s, "steps") ? LT_EVERY_STEPS : !strcmp(s, "epoch") ? LT_EVERY_EPOCH : -1;
}

long lt_steps_resolve(double x, long total) {
    if (!(x > 0)) return 0;
    return x >= 1 ? (long)x : (long)ceil((double)total * x);
}

static lt_event_rule rule(const char *strategy, double steps, long total, long per_epoch) {
    lt_event_rule r = {0, 0};
    switch (lt_every_parse(strategy)) {
    case LT_EVERY_STEPS: r.every = lt_steps_resolve(steps, total), r.last = 1; break;
    case LT_EVERY_EPOCH: r.every = per_epoch > 0 ? per_epoch : 1, r.last = 1; break;
    default: break;
    }
    return r;
}

long lt_train_total_steps(const lt_train_args *a, long steps_per_epoch) {
    if (a->max_steps > 0) return a->max_steps;
    const double n = ceil(a->num_train_epochs * (double)(steps_per_epoch > 0 ? steps_per_epoch : 1));
    return n >= 1 && n <= LT_MAX_RUN_STEPS ? (long)n : -1;
}

lt_events lt_events_make(const lt_train_args *a, long total_steps, long steps_per_epoch) {
    lt_events ev;
    ev.total = total_steps;
    ev.log = rule(a->logging_strategy, a->logging_steps, total_steps, steps_per_epoch);
    const int eval_kind = lt_every_parse(a->eval_strategy);
    ev.eval = rule(a->eval_strategy, a->eval_steps, total_steps, steps_per_epoch);
    /* eval_steps 0 has always meant no evaluation at all here (the Trainer refuses it) */
    if (eval_kind == LT_EVERY_STEPS && ev.eval.every == 0) ev.eval.last = 0;
    ev.save = rule(a->save_strategy, a->save_steps, total_steps, steps_per_epoch);
    /* eval_delay counts epochs under eval_strategy epoch: an epoch's worth of steps each */
    const double per = eval_kind == LT_EVERY_EPOCH ? (double)(steps_per_epoch > 0 ? steps_per_epoch : 1) : 1.0;
    const double from = ceil(a->eval_delay * per - 1e-9); /* past any run's length: never (and no overflow) */
    ev.eval_from = from > LT_MAX_RUN_STEPS ? (long)LT_MAX_RUN_STEPS + 1 : (long)from;
    ev.log_first = a->logging_first_step; /* the Trainer logs step 1 then whatever logging_strategy says */
    return ev;
}

static int due(const lt_event_rule *r, long step, long total) {
    return (r->every > 0 && step % r->every == 0) || (r->last && step == total);
}

int lt_best_improves(double v, double best, int have_best, int greater_is_better) {
    return !have_best || (greater_is_better ? v > best : v < best);
}

int lt_events_at(const lt_events *ev, long step) {
    int m = 0;
    if (due(&ev->log, step, ev->total) || (ev->log_first && step == 1)) m |= LT_EV_LOG;
    if (due(&ev->eval, step, ev->total) && step >= ev->eval_from) m |= LT_EV_EVAL;
    if (due(&ev->save, step, ev->total)) m |= LT_EV_SAVE;
    return m;
}
