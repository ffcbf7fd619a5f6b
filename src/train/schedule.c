/* Learning-rate schedulers, following transformers.optimization's lambdas. */
#include "train/schedule.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json_number.h"

static const struct {
    const char *name;
    lt_sched_type type;
} NAMES[] = {
    {"linear", LT_SCHED_LINEAR},
    {"cosine", LT_SCHED_COSINE},
    {"cosine_with_restarts", LT_SCHED_COSINE_WITH_RESTARTS},
    {"polynomial", LT_SCHED_POLYNOMIAL},
    {"constant", LT_SCHED_CONSTANT},
    {"constant_with_warmup", LT_SCHED_CONSTANT_WITH_WARMUP},
    {"inverse_sqrt", LT_SCHED_INVERSE_SQRT},
    {"cosine_with_min_lr", LT_SCHED_COSINE_WITH_MIN_LR},
    {"warmup_stable_decay", LT_SCHED_WARMUP_STABLE_DECAY},
    {"reduce_lr_on_plateau", LT_SCHED_REDUCE_ON_PLATEAU},
    {"cosine_warmup_with_min_lr", LT_SCHED_COSINE_WARMUP_WITH_MIN_LR},
    {"greedy", LT_SCHED_GREEDY},
};
#define NSCHED (sizeof NAMES / sizeof NAMES[0])

const char *lt_sched_names(void) {
    return "linear cosine cosine_with_restarts polynomial constant constant_with_warmup inverse_sqrt "
           "cosine_with_min_lr cosine_warmup_with_min_lr warmup_stable_decay reduce_lr_on_plateau greedy";
}

static int parse_num(const char *v, double *out) {
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (!*v || *end || errno || !isfinite(d)) return 0;
    *out = d;
    return 1;
}

static lt_status apply_kw(lt_sched *s, const char *k, const char *v, char *err, size_t errlen) {
    double d;
    if (!strcmp(k, "decay_type") || !strcmp(k, "warmup_type")) {
        int *dst = !strcmp(k, "decay_type") ? &s->decay_type : &s->warmup_type;
        if (!strcmp(v, "linear")) *dst = 0;
        else if (!strcmp(v, "cosine")) *dst = 1;
        else if (!strcmp(v, "1-sqrt") || !strcmp(v, "1_sqrt")) *dst = 2;
        else {
            snprintf(err, errlen, "--lr_scheduler_kwargs: %s '%s': expected linear, cosine or 1-sqrt", k, v);
            return LT_ERR_ARG;
        }
        return LT_OK;
    }
    if (!strcmp(k, "mode") || !strcmp(k, "threshold_mode")) {
        const int first = !strcmp(k, "mode") ? !strcmp(v, "min") : !strcmp(v, "rel");
        const int second = !strcmp(k, "mode") ? !strcmp(v, "max") : !strcmp(v, "abs");
        if (!first && !second) {
            snprintf(err, errlen, "--lr_scheduler_kwargs: %s '%s': expected %s", k, v,
                     !strcmp(k, "mode") ? "min or max" : "rel or abs");
            return LT_ERR_ARG;
        }
        *(!strcmp(k, "mode") ? &s->max_mode : &s->threshold_abs) = second;
        return LT_OK;
    }
    if (!strcmp(k, "smooth") || !strcmp(k, "verbose")) { /* verbose: GreedyLR's printing, leantrain prints anyway */
        const int t = !strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "1");
        if (!t && strcmp(v, "false") && strcmp(v, "False") && strcmp(v, "0")) {
            snprintf(err, errlen, "--lr_scheduler_kwargs: %s '%s': expected true or false", k, v);
            return LT_ERR_ARG;
        }
        if (!strcmp(k, "smooth")) s->smooth = t;
        return LT_OK;
    }
    if (!parse_num(v, &d)) {
        snprintf(err, errlen, "--lr_scheduler_kwargs: bad value '%s' for '%s': expected a number", v, k);
        return LT_ERR_ARG;
    }
    /* the whole-number keys: d converted after a clamp to +-2^53 (a double past long's range converts with
     * undefined behaviour; a patience of 1e300 steps is one of 2^53) */
    const long n = (long)(d > LT_JSON_COUNT_MAX ? LT_JSON_COUNT_MAX : d < -LT_JSON_COUNT_MAX ? -LT_JSON_COUNT_MAX : d);
    if (!strcmp(k, "num_cycles")) s->num_cycles = d;
    else if (!strcmp(k, "power")) s->power = d;
    else if (!strcmp(k, "lr_end")) s->lr_end = d;
    else if (!strcmp(k, "timescale")) s->timescale = n;
    else if (!strcmp(k, "min_lr")) s->min_lr = d;
    else if (!strcmp(k, "min_lr_rate")) s->min_lr_rate = d;
    else if (!strcmp(k, "num_stable_steps")) s->num_stable = n;
    else if (!strcmp(k, "num_decay_steps")) s->num_decay = n;
    else if (!strcmp(k, "min_lr_ratio")) s->min_lr_ratio = d;
    else if (!strcmp(k, "warmup_lr_rate")) s->warmup_lr_rate = d;
    else if (!strcmp(k, "factor")) s->factor = d;
    else if (!strcmp(k, "patience")) s->patience = n;
    else if (!strcmp(k, "threshold")) s->threshold = d;
    else if (!strcmp(k, "cooldown")) s->cooldown = n;
    else if (!strcmp(k, "eps")) s->eps = d;
    else if (!strcmp(k, "max_lr")) s->max_lr = d;
    else if (!strcmp(k, "warmup")) s->g_warmup = n;
    else if (!strcmp(k, "window_size")) s->window = n;
    else if (!strcmp(k, "reset_start")) s->reset_start = n;
    else {
        snprintf(err, errlen, "--lr_scheduler_kwargs: unknown key '%s'", k);
        return LT_ERR_ARG;
    }
    return LT_OK;
}

lt_status lt_sched_init(lt_sched *s, const char *name, long warmup, long total, double base_lr, const char *kwargs,
                        char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    size_t i = 0;
    while (i < NSCHED && strcmp(NAMES[i].name, name)) i++;
    if (i == NSCHED) {
        snprintf(err, errlen, "--lr_scheduler_type '%s' is not supported; choose one of: %s", name, lt_sched_names());
        return LT_ERR_ARG;
    }
    if (warmup < 0 || total < 0) {
        snprintf(err, errlen, "warmup steps (%ld) and total steps (%ld) must be >= 0", warmup, total);
        return LT_ERR_ARG;
    }
    s->type = NAMES[i].type;
    s->warmup = warmup;
    s->total = total;
    s->base_lr = base_lr;
    s->num_cycles = s->type == LT_SCHED_COSINE_WITH_RESTARTS ? 1.0 : 0.5;
    s->power = 1.0;
    s->lr_end = 1e-7;
    s->min_lr = -1;
    s->min_lr_rate = -1;
    s->num_stable = -1;
    s->num_decay = -1;
    s->decay_type = 1; /* transformers' get_wsd_schedule: cosine decay, linear warmup */
    s->warmup_type = 0;
    s->factor = 0.1, s->patience = 10, s->threshold = 1e-4, s->eps = 1e-8; /* torch's ReduceLROnPlateau */
    s->warmup_lr_rate = -1;
    if (s->type == LT_SCHED_GREEDY) /* GreedyLR's defaults where they differ from ReduceLROnPlateau's */
        s->factor = 0.95, s->threshold = 1e-6, s->threshold_abs = 1;
    s->max_lr = 1.0, s->window = 50, s->reset_start = 500;
    while (kwargs && (*kwargs == ' ' || *kwargs == '\t')) kwargs++;
    if (kwargs && *kwargs == '{') { /* the Trainer's own form: a JSON object, '{"min_lr_rate": 0.1}' */
        cJSON *j = cJSON_Parse(kwargs);
        if (!cJSON_IsObject(j)) {
            cJSON_Delete(j);
            snprintf(err, errlen, "--lr_scheduler_kwargs: '%.200s' is not a JSON object (or give key=value,key=value)",
                     kwargs);
            return LT_ERR_ARG;
        }
        for (const cJSON *e = j->child; e; e = e->next) {
            char v[64];
            if (cJSON_IsNumber(e)) snprintf(v, sizeof v, "%.17g", e->valuedouble);
            else if (cJSON_IsBool(e)) snprintf(v, sizeof v, "%s", cJSON_IsTrue(e) ? "true" : "false");
            else if (cJSON_IsString(e)) snprintf(v, sizeof v, "%s", e->valuestring);
            else snprintf(v, sizeof v, "(not a number or a string)");
            if (apply_kw(s, e->string, v, err, errlen)) {
                cJSON_Delete(j);
                return LT_ERR_ARG;
            }
        }
        cJSON_Delete(j);
    } else if (kwargs && *kwargs) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", kwargs);
        char *save = NULL;
        for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(tok, '=');
            if (!eq) {
                snprintf(err, errlen, "--lr_scheduler_kwargs: malformed entry '%s': expected key=value", tok);
                return LT_ERR_ARG;
            }
            *eq = 0;
            if (apply_kw(s, tok, eq + 1, err, errlen)) return LT_ERR_ARG;
        }
    }
    if (s->type == LT_SCHED_COSINE_WITH_MIN_LR || s->type == LT_SCHED_COSINE_WARMUP_WITH_MIN_LR) {
        if ((s->min_lr >= 0) == (s->min_lr_rate >= 0)) {
            snprintf(err, errlen, "%s needs exactly one of min_lr or min_lr_rate in --lr_scheduler_kwargs", name);
            return LT_ERR_ARG;
        }
        if (s->min_lr >= 0) s->min_lr_rate = base_lr > 0 ? s->min_lr / base_lr : 0;
    }
    if (s->type == LT_SCHED_POLYNOMIAL && !(base_lr > s->lr_end)) {
        snprintf(err, errlen, "polynomial: lr_end (%g) must be smaller than the learning rate (%g)", s->lr_end, base_lr);
        return LT_ERR_ARG;
    }
    if (s->type == LT_SCHED_WARMUP_STABLE_DECAY) {
        if (s->num_decay < 0) {
            snprintf(err, errlen, "warmup_stable_decay needs num_decay_steps in --lr_scheduler_kwargs");
            return LT_ERR_ARG;
        }
        if (s->num_stable < 0) s->num_stable = total - warmup - s->num_decay;
        if (s->num_stable < 0) s->num_stable = 0;
    }
    if (s->type == LT_SCHED_INVERSE_SQRT && s->timescale <= 0) s->timescale = warmup > 0 ? warmup : 10000;
    if (lt_sched_metric_driven(s)) {
        const int greedy = s->type == LT_SCHED_GREEDY;
        if (warmup > 0) {
            snprintf(err, errlen, "%s has no warmup (the Trainer ignores it): drop --warmup_steps / --warmup_ratio, or "
                     "choose another --lr_scheduler_type", name);
            return LT_ERR_ARG;
        }
        if (!(s->factor < 1.0 && s->factor >= (greedy ? 1e-300 : 0)) || s->patience < 0 || s->cooldown < 0 ||
            !(s->threshold >= 0) || !(s->eps >= 0)) {
            snprintf(err, errlen, "--lr_scheduler_kwargs: %s needs %s factor < 1 and patience, cooldown, threshold, "
                     "eps >= 0", name, greedy ? "0 <" : "0 <=");
            return LT_ERR_ARG;
        }
        if (greedy && (s->g_warmup < 0 || s->reset_start < 0 || s->window < 1 || s->window > LT_SCHED_WINDOW_MAX ||
                       !(s->max_lr > 0))) {
            snprintf(err, errlen,
                     "--lr_scheduler_kwargs: greedy needs warmup >= 0, reset_start >= 0, max_lr > 0 and window_size in "
                     "1..%d",
                     LT_SCHED_WINDOW_MAX);
            return LT_ERR_ARG;
        }
        if (s->min_lr < 0) s->min_lr = greedy ? 1e-3 : 0;
        s->lr = base_lr;
        s->best = s->max_mode ? -INFINITY : INFINITY;
        s->reset_left = s->reset_start;
    }
    return LT_OK;
}

int lt_sched_metric_driven(const lt_sched *s) {
    return s->type == LT_SCHED_REDUCE_ON_PLATEAU || s->type == LT_SCHED_GREEDY;
}

double lt_sched_lr(const lt_sched *s, long step) {
    return lt_sched_metric_driven(s) ? s->lr : s->base_lr * lt_sched_factor(s, step);
}

/* torch's and GreedyLR's is_better (the same formulas; double arithmetic) */
static int improves(const lt_sched *s, double metric) {
    if (s->max_mode)
        return s->threshold_abs ? metric > s->best + s->threshold : metric > s->best * (s->threshold + 1.0);
    return s->threshold_abs ? metric < s->best - s->threshold : metric < s->best * (1.0 - s->threshold);
}

/* max(lr x factor, min_lr), taken when it lowers the lr by more than eps: -1 then, else 0 */
static int lower(lt_sched *s) {
    const double lr = s->lr * s->factor > s->min_lr ? s->lr * s->factor : s->min_lr;
    if (!(s->lr - lr > s->eps)) return 0;
    s->lr = lr;
    return -1;
}

/* GreedyLR: the metric smoothed over its window (StreamingAverage: the new value added to the sum, then the one
   that leaves subtracted), then cooldown and warmup, the counts of better and worse evaluations, and the moves */
static int greedy_step(lt_sched *s, double metric) {
    double current = metric;
    if (s->smooth) {
        s->win_sum += metric;
        if (s->win_n == s->window) {
            s->win_sum -= s->win[s->win_head];
            s->win[s->win_head] = metric;
            s->win_head = (s->win_head + 1) % s->window;
        } else {
            s->win[(s->win_head + s->win_n) % s->window] = metric;
            s->win_n++;
        }
        current = s->win_sum / (double)s->win_n;
    }
    if (s->cooldown_left > 0) {
        s->cooldown_left--, s->num_bad = 0, s->num_good = 0;
        return 0;
    }
    if (s->warmup_left > 0) {
        s->warmup_left--, s->num_bad = 0, s->num_good = 0;
        return 0;
    }
    if (improves(s, current)) s->best = current, s->num_bad = 0, s->num_good++;
    else s->num_bad++, s->num_good = 0;
    if (s->num_good > s->patience) {
        int moved = 0;
        const double lr = s->lr / s->factor < s->max_lr ? s->lr / s->factor : s->max_lr;
        if (lr - s->lr > s->eps) s->lr = lr, moved = 1;
        s->reset_left = s->reset_start;
        s->warmup_left = s->g_warmup, s->num_good = 0;
        return moved;
    }
    if (s->num_bad > s->patience) {
        const double before = s->lr;
        int moved = lower(s);
        if (!(s->lr > s->min_lr) && --s->reset_left <= 0) { /* long enough at min_lr: start over */
            s->lr = s->base_lr;
            s->best = s->max_mode ? -INFINITY : INFINITY;
            s->num_good = s->warmup_left = 0;
            s->reset_left = s->reset_start;
            s->win_n = s->win_head = 0, s->win_sum = 0;
            moved = s->lr > before ? 1 : s->lr < before ? -1 : 0;
        }
        s->cooldown_left = s->cooldown, s->num_bad = 0; /* after a reset too, as GreedyLR.step does */
        return moved;
    }
    return 0;
}

int lt_sched_metric_step(lt_sched *s, double metric) {
    if (s->type == LT_SCHED_GREEDY) return greedy_step(s, metric);
    if (s->type != LT_SCHED_REDUCE_ON_PLATEAU) return 0;
    /* torch: is_better, then the cooldown, then the reduction */
    if (improves(s, metric)) s->best = metric, s->num_bad = 0;
    else s->num_bad++;
    if (s->cooldown_left > 0) s->cooldown_left--, s->num_bad = 0;
    if (s->num_bad > s->patience) {
        s->cooldown_left = s->cooldown, s->num_bad = 0;
        return lower(s);
    }
    return 0;
}

void lt_sched_state_save(const lt_sched *s, cJSON *j) {
    if (!lt_sched_metric_driven(s)) return;
    /* the moving part of torch's ReduceLROnPlateau / GreedyLR state_dict, under their names */
    lt_json_add_number(j, "lr", s->lr);
    if (isfinite(s->best)) lt_json_add_number(j, "best", s->best);
    cJSON_AddNumberToObject(j, "num_bad_epochs", (double)s->num_bad);
    cJSON_AddNumberToObject(j, "cooldown_counter", (double)s->cooldown_left);
    if (s->type != LT_SCHED_GREEDY) return;
    cJSON_AddNumberToObject(j, "num_good_epochs", (double)s->num_good);
    cJSON_AddNumberToObject(j, "warmup_counter", (double)s->warmup_left);
    cJSON_AddNumberToObject(j, "reset_start", (double)s->reset_left);
    if (!s->smooth) return;
    cJSON *w = cJSON_AddObjectToObject(j, "_streaming_avg");
    cJSON *v = cJSON_AddArrayToObject(w, "values");
    for (long i = 0; i < s->win_n; i++)
        cJSON_AddItemToArray(v, lt_json_number(s->win[(s->win_head + i) % s->window]));
    lt_json_add_number(w, "sum", s->win_sum);
}

lt_status lt_sched_state_load(lt_sched *s, const cJSON *j, char *err, size_t errlen) {
    if (!lt_sched_metric_driven(s)) return LT_OK;
    const cJSON *lr = cJSON_GetObjectItem(j, "lr"), *best = cJSON_GetObjectItem(j, "best");
    const cJSON *nb = cJSON_GetObjectItem(j, "num_bad_epochs"), *cc = cJSON_GetObjectItem(j, "cooldown_counter");
    const char *name = s->type == LT_SCHED_GREEDY ? "greedy" : "reduce_lr_on_plateau";
    long long num_bad, cooldown;
    if (!cJSON_IsNumber(lr) || !lt_json_count(nb, LT_JSON_COUNT_MAX, &num_bad) ||
        !lt_json_count(cc, LT_JSON_COUNT_MAX, &cooldown)) {
        snprintf(err, errlen, "no %s state in lr_scheduler (was the run trained with another --lr_scheduler_type?)",
                 name);
        return LT_ERR_FORMAT;
    }
    s->lr = lr->valuedouble, s->num_bad = (long)num_bad, s->cooldown_left = (long)cooldown;
    if (cJSON_IsNumber(best)) s->best = best->valuedouble;
    if (s->type != LT_SCHED_GREEDY) return LT_OK;
    const cJSON *ng = cJSON_GetObjectItem(j, "num_good_epochs"), *wc = cJSON_GetObjectItem(j, "warmup_counter");
    const cJSON *rs = cJSON_GetObjectItem(j, "reset_start"), *w = cJSON_GetObjectItem(j, "_streaming_avg");
    const cJSON *v = cJSON_GetObjectItem(w, "values"), *sum = cJSON_GetObjectItem(w, "sum");
    long long num_good, warmup, reset;
    if (!lt_json_count(ng, LT_JSON_COUNT_MAX, &num_good) || !lt_json_count(wc, LT_JSON_COUNT_MAX, &warmup) ||
        !lt_json_count(rs, LT_JSON_COUNT_MAX, &reset) ||
        (s->smooth && (!cJSON_IsArray(v) || !cJSON_IsNumber(sum) || cJSON_GetArraySize(v) > s->window))) {
        snprintf(err, errlen, "greedy's state in lr_scheduler is incomplete (num_good_epochs, warmup_counter, "
                 "reset_start%s; or a window longer than window_size %ld)", s->smooth ? ", _streaming_avg" : "",
                 s->window);
        return LT_ERR_FORMAT;
    }
    s->num_good = (long)num_good, s->warmup_left = (long)warmup, s->reset_left = (long)reset;
    s->win_n = s->win_head = 0, s->win_sum = 0;
    if (s->smooth) {
        const cJSON *e;
        cJSON_ArrayForEach(e, v) s->win[s->win_n++] = cJSON_IsNumber(e) ? e->valuedouble : NAN;
        s->win_sum = sum->valuedouble;
    }
    return LT_OK;
}

static double lmax(double a, double b) { return a > b ? a : b; }

double lt_sched_factor(const lt_sched *s, long step) {
    const double W = (double)s->warmup, N = (double)s->total, t = (double)step;
    if (s->type == LT_SCHED_CONSTANT) return 1.0;
    if (lt_sched_metric_driven(s)) return s->base_lr > 0 ? s->lr / s->base_lr : 1.0;
    if (s->type == LT_SCHED_COSINE_WARMUP_WITH_MIN_LR) { /* warmup from (s + 1) / W, or from warmup_lr_rate */
        if (step < s->warmup) {
            if (s->warmup_lr_rate < 0) return (t + 1.0) / lmax(1.0, W);
            return s->warmup_lr_rate + (1.0 - s->warmup_lr_rate) * t / lmax(1.0, W - 1.0);
        }
        double progress = (t - W + 1.0) / lmax(1.0, N - W);
        double f = 0.5 * (1.0 + cos(M_PI * s->num_cycles * 2.0 * progress));
        return lmax(0.0, f * (1.0 - s->min_lr_rate) + s->min_lr_rate);
    }
    if (step < s->warmup && s->type == LT_SCHED_WARMUP_STABLE_DECAY) {
        double progress = t / lmax(1.0, W), f;
        if (s->warmup_type == 0) f = progress;
        else if (s->warmup_type == 1) f = 0.5 * (1.0 - cos(M_PI * progress));
        else f = 1.0 - sqrt(1.0 - progress);
        return lmax(0.0, f * (1.0 - s->min_lr_ratio) + s->min_lr_ratio);
    }
    if (step < s->warmup) return t / lmax(1.0, W);
    switch (s->type) {
    case LT_SCHED_LINEAR: return lmax(0.0, (N - t) / lmax(1.0, N - W));
    case LT_SCHED_CONSTANT_WITH_WARMUP: return 1.0;
    case LT_SCHED_COSINE: {
        double progress = (t - W) / lmax(1.0, N - W);
        return lmax(0.0, 0.5 * (1.0 + cos(M_PI * s->num_cycles * 2.0 * progress)));
    }
    case LT_SCHED_COSINE_WITH_MIN_LR: {
        double progress = (t - W) / lmax(1.0, N - W);
        double f = 0.5 * (1.0 + cos(M_PI * s->num_cycles * 2.0 * progress));
        return lmax(0.0, f * (1.0 - s->min_lr_rate) + s->min_lr_rate);
    }
    case LT_SCHED_COSINE_WITH_RESTARTS: {
        double progress = (t - W) / lmax(1.0, N - W);
        if (progress >= 1.0) return 0.0;
        return lmax(0.0, 0.5 * (1.0 + cos(M_PI * fmod(s->num_cycles * progress, 1.0))));
    }
    case LT_SCHED_POLYNOMIAL: {
        if (step > s->total) return s->lr_end / s->base_lr;
        double range = s->base_lr - s->lr_end, remaining = 1.0 - (t - W) / lmax(1.0, N - W);
        return (range * pow(remaining, s->power) + s->lr_end) / s->base_lr;
    }
    case LT_SCHED_INVERSE_SQRT: {
        double shift = (double)s->timescale - W;
        return 1.0 / sqrt((t + shift) / (double)s->timescale);
    }
    case LT_SCHED_WARMUP_STABLE_DECAY: {
        if (step < s->warmup + s->num_stable) return 1.0;
        if (step < s->warmup + s->num_stable + s->num_decay) {
            double progress = (t - W - (double)s->num_stable) / lmax(1.0, (double)s->num_decay), f;
            if (s->decay_type == 0) f = 1.0 - progress;
            else if (s->decay_type == 1) f = 0.5 * (1.0 + cos(M_PI * s->num_cycles * 2.0 * progress));
            else f = 1.0 - sqrt(progress);
            return lmax(0.0, f * (1.0 - s->min_lr_ratio) + s->min_lr_ratio);
        }
        return s->min_lr_ratio;
    }
    default: return 1.0;
    }
}
