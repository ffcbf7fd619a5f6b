/* The training loop (see trainer.h). */
#include "util/clock.h"
#include "train/trainer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/atomic_file.h"
#include "io/json_number.h"
#include "leantrain/optim.h"
#include "model/cuda/gpt2_device.h"
#include "model/gpt2.h"
#include "model/gpt2_layers.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/events.h"
#include "train/memplan.h"
#include "train/schedule.h"
#include "model/gemm_bf16.h"
#include "tokenizer/tokenizer.h"
#include "util/sysmem.h"

typedef struct {
    const lt_train_args *a;
    lt_gpt2 *m;      /* the model; with --device cuda the host copy of the weights (checkpoints go through it) */
    lt_gpt2_dev *dev; /* --device cuda: the model on the GPU, which trains */
    lt_optim *o;
    lt_data data;
    lt_tokenizer *tok; /* NULL: text files are bytes */
    lt_sched sched;
    lt_mem_table mem;
    int B, T, accum;
    long total_steps, warmup, step;
    int32_t *inputs, *targets;
    cJSON *history; /* log history, as trainer_state.json keeps it */
    FILE *jsonl;
    double t_start, t_last;
    long long tokens_at_log; /* tokens_seen at the last log line (or this process's first step): tokens/s */
    long long tokens_seen; /* the Trainer's num_input_tokens_seen: every training input token, resumes included */
    double loss_sum;
    int loss_count;
    double train_loss_sum; /* every step's loss since step 0 (resumes included; a checkpoint keeps it): train_loss */
    long train_loss_steps; /* the steps in it (a checkpoint from before it was kept: this process's only) */
    /* --fp16 dynamic loss scaling (torch.amp.GradScaler's rule) */
    double loss_scale;
    long growth_tracker; /* clean steps since the scale last changed */
    long skipped;        /* steps skipped for overflow since the last log line */
    long skipped_total;  /* all of them: the scheduler does not advance on a skipped step (the Trainer's rule) */
    long saved_step;     /* the step of the newest checkpoint this run wrote or resumed from (-1: none) */
    lt_events ev;        /* the steps that log, evaluate, save */
    long eval_step;      /* the step of this process's latest evaluation (-1: none), its loss, perplexity, accuracy, */
    double eval_loss, eval_ppl, eval_acc; /* rows, and seconds */
    long eval_rows;
    double eval_runtime;
    const char *best_metric_name; /* "eval_loss", "eval_perplexity" or "eval_accuracy" when the best model is tracked */
    double best_metric;  /* the best evaluation's value of it (the run's, resumes included) and its step (-1: none) */
    long best_step;
    int es_counter;      /* --early_stopping_patience: evaluations in a row without improvement */
    int bar;             /* the progress bar is on the terminal's current line */
    int oom_batch;       /* --auto_find_batch_size: the batch whose attempt ran out of memory (0: none) */
    int planned;         /* the batch is chosen (an out-of-memory after this point is the batch's) */
    int wrote_ckpt;      /* this attempt wrote a checkpoint (then an out-of-memory is not retried) */
    int made_dir;        /* this attempt created output_dir (a run that fails before its first step removes it) */
    long first_step;     /* the step it started from */
    long long first_tokens; /* tokens_seen when its first step began (for the rows it stepped) */
    char err[1024];
} run_t;

/* before a line of its own: ends the progress bar's line, if one is showing */
static void end_bar(run_t *r) {
    if (r->bar) putchar('\n');
    r->bar = 0;
}

static volatile sig_atomic_t g_stop_sig = 0;

void lt_train_request_stop(int sig) {
    if (!g_stop_sig) g_stop_sig = sig > 0 ? sig : SIGTERM;
}

static const char *sig_name(int sig) {
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "a signal";
}


static long peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

/* global L2 norm of the accumulated gradients, in double */
static double grad_norm(const lt_gpt2 *m) {
    double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
    for (size_t i = 0; i < m->grad_floats; i++) s += (double)m->grad_memory[i] * m->grad_memory[i];
    return sqrt(s);
}

/* --optim_in_backward: steps parameters first..first+count-1 (their gradients are final). Block
 * parameters share one gradient buffer, so each is pointed at it right before its step. */
static lt_status step_in_backward(void *ctx, int first, int count) {
    run_t *r = ctx;
    for (int i = first; i < first + count; i++) {
        const void *g = r->dev ? (const void *)lt_gpt2_dev_param_at(r->dev, i)->grad : (const void *)r->m->params[i].grad;
        if (lt_optim_set_grad(r->o, i, g, LT_DTYPE_F32) != LT_OK ||
            lt_optim_step_param(r->o, i, 1.0f) != LT_OK) {
            snprintf(r->err, sizeof r->err, "%s", lt_optim_error(r->o));
            return LT_ERR_STATE;
        }
    }
    return LT_OK;
}

/* ---- the model's steps on the CPU or the GPU ---- */

static lt_status model_zero_grad(run_t *r) {
    if (r->dev) return lt_gpt2_dev_zero_grad(r->dev, r->err, sizeof r->err);
    lt_gpt2_zero_grad(r->m);
    return LT_OK;
}

/* The dropout masks of the next training forward: micro-batch k of the step after r->step (each micro-batch of
 * the run its own stream, so a resumed run draws the uninterrupted one's masks). */
static void model_set_dropout(run_t *r, int k) {
    uint32_t stream = (uint32_t)((uint64_t)r->step * (uint64_t)r->accum + (uint64_t)k);
    if (r->dev) lt_gpt2_dev_set_dropout(r->dev, 1, r->a->seed, stream);
    else lt_gpt2_set_dropout(r->m, 1, r->a->seed, stream);
}

/* training forward of rows x T tokens and their mean loss into *loss, for a backward next */
static lt_status model_forward(run_t *r, int rows, float *loss) {
    if (r->dev) return lt_gpt2_dev_forward(r->dev, r->inputs, r->targets, rows, r->T, loss, r->err, sizeof r->err);
    lt_status st = lt_gpt2_forward(r->m, r->inputs, r->targets, rows, r->T, r->err, sizeof r->err);
    *loss = r->m->loss;
    return st;
}

/* evaluation forward: the mean loss into *loss, the positions predicted right (top-1) into *hits */
static lt_status model_eval(run_t *r, int rows, float *loss, long *hits) {
    if (r->dev) return lt_gpt2_dev_eval(r->dev, r->inputs, r->targets, rows, r->T, loss, hits, r->err, sizeof r->err);
    lt_status st = lt_gpt2_eval(r->m, r->inputs, r->targets, rows, r->T, hits, r->err, sizeof r->err);
    *loss = r->m->loss;
    return st;
}

static lt_status model_backward(run_t *r, lt_gpt2_grad_ready ready) {
    if (r->dev) return lt_gpt2_dev_backward_cb(r->dev, ready, r, r->err, sizeof r->err);
    return lt_gpt2_backward_cb(r->m, ready, r, r->err, sizeof r->err);
}

static lt_status model_grad_norm(run_t *r, double *norm) {
    if (r->dev) return lt_gpt2_dev_grad_norm(r->dev, norm, r->err, sizeof r->err);
    *norm = grad_norm(r->m);
    return LT_OK;
}

static void model_set_loss_scale(run_t *r, float s) {
    if (r->dev) lt_gpt2_dev_set_loss_scale(r->dev, s);
    else r->m->loss_scale = s;
}

/* after the optimizer changed the weights: the GPU's 16-bit (bf16 or fp16) compute copy follows its fp32 masters */
static lt_status model_stepped(run_t *r) {
    return r->dev ? lt_gpt2_dev_refresh_bf16(r->dev, r->err, sizeof r->err) : LT_OK;
}

/* The best evaluation's checkpoint folder, output_dir/checkpoint-<best step>, into buf; 1 when it exists (an
 * evaluation at a step that saved nothing has none). */
static int best_checkpoint(const run_t *r, char *buf, size_t len) {
    struct stat sb;
    snprintf(buf, len, "%.1200s/checkpoint-%ld", r->a->output_dir, r->best_step);
    return stat(buf, &sb) == 0;
}

/* A row's input tokens, as the Trainer counts input_ids: block_size (run_clm's layout, whose row predicts
   block_size - 1 positions, is T + 1 tokens; the stream's rows are T). */
static int row_tokens(const run_t *r) { return r->T + (r->data.layout == LT_DATA_RUN_CLM); }

/* NEFTune's alpha for a model of T positions whose noise must be the Trainer's: alpha / sqrt(L x n_embd) with L
   the input length, row_tokens (the model divides by sqrt(T x n_embd)). */
static float neftune_alpha(const run_t *r) {
    return (float)(r->a->neftune_noise_alpha * sqrt((double)r->T / (double)row_tokens(r)));
}

static const char *layout_name(const run_t *r) {
    return r->data.layout == LT_DATA_RUN_CLM ? "run_clm's layout: lines tokenized one by one, block_size - 1 "
                                               "predictions a block"
                                             : "one token stream, targets the next tokens";
}

/* The Trainer's total_flos: 6 x the input tokens trained on x the parameters but the embeddings' (transformers'
 * floating_point_ops; wte, the tied lm head, is an embedding) */
static double total_flos(const run_t *r) {
    double n = 0;
    for (int i = 0; i < r->m->num_tensors; i++)
        if (i != LT_GPT2_WTE && i != LT_GPT2_WPE) n += (double)r->m->params[i].numel;
    return 6.0 * (double)r->tokens_seen * n;
}

static cJSON *state_json(run_t *r) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "global_step", (double)r->step);
    lt_json_add_number(j, "epoch", lt_data_epoch_float(&r->data, r->B));
    cJSON_AddNumberToObject(j, "max_steps", (double)r->total_steps);
    /* the Trainer's TrainerState keeps the periods it resolved (0: none at multiples of steps) */
    cJSON_AddNumberToObject(j, "logging_steps", (double)r->ev.log.every);
    cJSON_AddNumberToObject(j, "eval_steps", (double)r->ev.eval.every);
    cJSON_AddNumberToObject(j, "save_steps", (double)r->ev.save.every);
    cJSON *d = cJSON_AddObjectToObject(j, "data_position");
    cJSON_AddNumberToObject(d, "epoch", (double)r->data.epoch);
    cJSON_AddNumberToObject(d, "index", (double)r->data.index);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", r->a->seed);
    cJSON_AddStringToObject(j, "seed", seed);
    snprintf(seed, sizeof seed, "%llu", r->a->data_seed);
    cJSON_AddStringToObject(j, "data_seed", seed); /* the data order is a function of (data_seed, epoch): no other RNG */
    if (r->a->save_only_model) cJSON_AddTrueToObject(j, "save_only_model");
    cJSON *s = cJSON_AddObjectToObject(j, "lr_scheduler");
    cJSON_AddStringToObject(s, "type", r->a->lr_scheduler_type);
    lt_sched_state_save(&r->sched, s);
    cJSON_AddNumberToObject(s, "warmup_steps", (double)r->warmup);
    cJSON_AddNumberToObject(s, "total_steps", (double)r->total_steps);
    cJSON_AddNumberToObject(s, "last_step", (double)(r->step - r->skipped_total));
    cJSON_AddStringToObject(j, "optim", lt_optim_name(r->o));
    cJSON_AddNumberToObject(j, "train_batch_size", r->B);
    cJSON_AddNumberToObject(j, "num_input_tokens_seen", (double)r->tokens_seen);
    cJSON_AddNumberToObject(j, "gradient_accumulation_steps", r->accum);
    cJSON_AddNumberToObject(j, "block_size", row_tokens(r));
    cJSON_AddStringToObject(j, "data_layout", r->data.layout == LT_DATA_RUN_CLM ? "run_clm" : "stream");
    if (r->a->fp16) {
        cJSON *g = cJSON_AddObjectToObject(j, "grad_scaler");
        lt_json_add_number(g, "scale", r->loss_scale);
        cJSON_AddNumberToObject(g, "growth_tracker", (double)r->growth_tracker);
        cJSON_AddNumberToObject(g, "growth_factor", 2.0);
        cJSON_AddNumberToObject(g, "backoff_factor", 0.5);
        cJSON_AddNumberToObject(g, "growth_interval", (double)r->a->fp16_growth_interval);
        cJSON_AddNumberToObject(g, "skipped_steps", (double)r->skipped_total);
    }
    /* the logging window still open (steps since the last log line): a resumed run's next line then averages
       the same steps an uninterrupted run's would */
    if (r->best_step >= 0) { /* TrainerState's best model: its measure, step and checkpoint (if it was saved) */
        char best[1300];
        const int saved = best_checkpoint(r, best, sizeof best); /* or being written now, with this state */
        lt_json_add_number(j, "best_metric", r->best_metric);
        cJSON_AddNumberToObject(j, "best_global_step", (double)r->best_step);
        if (r->best_step == r->step || saved) cJSON_AddStringToObject(j, "best_model_checkpoint", best);
    }
    if (r->a->early_stopping_patience > 0) { /* TrainerState's stateful_callbacks, as the Trainer writes them */
        cJSON *es = cJSON_AddObjectToObject(cJSON_AddObjectToObject(j, "stateful_callbacks"), "EarlyStoppingCallback");
        cJSON *ea = cJSON_AddObjectToObject(es, "args");
        cJSON_AddNumberToObject(ea, "early_stopping_patience", r->a->early_stopping_patience);
        lt_json_add_number(ea, "early_stopping_threshold", r->a->early_stopping_threshold);
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(es, "attributes"), "early_stopping_patience_counter",
                                r->es_counter);
    }
    cJSON_AddNumberToObject(j, "total_flos", total_flos(r));
    lt_json_add_number(j, "train_loss_sum", r->train_loss_sum); /* the steps' losses so far, for train_loss */
    cJSON *w = cJSON_AddObjectToObject(j, "logging_window");
    lt_json_add_number(w, "loss_sum", r->loss_sum);
    cJSON_AddNumberToObject(w, "steps", r->loss_count);
    cJSON_AddNumberToObject(w, "skipped_steps", (double)r->skipped);
    cJSON_AddItemToObject(j, "log_history", cJSON_Duplicate(r->history, 1));
    return j;
}

static int save(run_t *r) {
    cJSON *j = state_json(r);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) {
        fprintf(stderr, "leantrain train: out of memory writing trainer_state.json\n");
        return 1;
    }
    /* the tokenizer goes into the checkpoint too (inside the atomic write), so generate and a resume find
       the tokenizer the model was trained with */
    /* the GPU's weights come home first: checkpoints are written from the host model */
    lt_status st = r->dev ? lt_gpt2_dev_download(r->dev, r->m, r->err, sizeof r->err) : LT_OK;
    char *args = lt_train_args_to_json(r->a);
    if (st == LT_OK && !args) {
        snprintf(r->err, sizeof r->err, "out of memory writing training_args.json");
        st = LT_ERR_NOMEM;
    }
    if (st == LT_OK)
        st = lt_ckpt_save(r->a->output_dir, r->step, r->m, r->a->save_only_model ? NULL : r->o, r->tok, text, args,
                          r->a->save_total_limit, r->best_step, r->err, sizeof r->err);
    free(args);
    free(text);
    end_bar(r);
    if (st) {
        fflush(stdout);
        fprintf(stderr, "leantrain train: saving checkpoint-%ld: %s\n", r->step, r->err);
        return 1;
    }
    printf("saved %s/checkpoint-%ld\n", r->a->output_dir, r->step);
    r->saved_step = r->step;
    r->wrote_ckpt = 1;
    return 0;
}

static void log_entry(run_t *r, cJSON *e) {
    cJSON_AddItemToArray(r->history, e);
    if (r->jsonl) {
        char *line = cJSON_PrintUnformatted(e);
        if (line) fprintf(r->jsonl, "%s\n", line), fflush(r->jsonl);
        free(line);
    }
}

/* path (log.jsonl) rewritten atomically with one line per entry of history */
static int write_log(const char *path, const cJSON *history, char *err, size_t errlen) {
    lt_atomic_file *af = NULL;
    lt_status st = lt_atomic_open(path, &af, err, errlen);
    for (const cJSON *e = history ? history->child : NULL; e && st == LT_OK; e = e->next) {
        char *line = cJSON_PrintUnformatted(e);
        if (!line) {
            snprintf(err, errlen, "%.900s: out of memory", path);
            st = LT_ERR_NOMEM;
            break;
        }
        st = lt_atomic_write(af, line, strlen(line), err, errlen);
        if (st == LT_OK) st = lt_atomic_write(af, "\n", 1, err, errlen);
        free(line);
    }
    if (st == LT_OK) return lt_atomic_commit(af, err, errlen) != LT_OK;
    if (af) lt_atomic_abort(af);
    return 1;
}

/* The validation blocks (the first eval_max_batches batches of per_device_eval_batch_size), each forward over
 * at most the training batch: the buffers are the training's, so evaluating needs no memory beyond training's
 * whatever the evaluation batch. Their mean loss, its exp, the fraction of positions whose top-1 prediction is the
 * next token (run_clm's accuracy) into r->eval_*; 1 on error (r->err). */
static int evaluate(run_t *r) {
    const double t0 = lt_now_s();
    const size_t EB = (size_t)r->a->per_device_eval_batch_size;
    size_t nblk = r->data.n_val_blocks;
    if (r->a->eval_max_batches > 0 && nblk > (size_t)r->a->eval_max_batches * EB)
        nblk = (size_t)r->a->eval_max_batches * EB;
    double sum = 0;
    long rows_total = 0, hits_total = 0;
    for (size_t first = 0; first < nblk;) {
        const int want = nblk - first < (size_t)r->B ? (int)(nblk - first) : r->B;
        const int rows = lt_data_val_rows(&r->data, first, want, r->inputs, r->targets);
        if (rows <= 0) break;
        float l;
        long hits = 0;
        if (model_eval(r, rows, &l, r->a->prediction_loss_only ? NULL : &hits)) return 1;
        sum += (double)l * rows;
        rows_total += rows;
        hits_total += hits;
        first += (size_t)rows;
    }
    r->eval_loss = rows_total ? sum / (double)rows_total : NAN;
    r->eval_ppl = exp(r->eval_loss);
    r->eval_acc = rows_total && !r->a->prediction_loss_only ? (double)hits_total / ((double)rows_total * (double)r->T)
                                                            : NAN;
    r->eval_rows = rows_total;
    r->eval_runtime = lt_now_s() - t0;
    return 0;
}

/* An evaluation at the current step: printed, logged, kept for eval_results.json. 1 on error (r->err). */
static int eval_and_log(run_t *r) {
    if (evaluate(r)) return 1;
    const double el = r->eval_loss, ppl = r->eval_ppl;
    cJSON *e = cJSON_CreateObject();
    lt_json_add_number(e, "eval_loss", el);
    lt_json_add_number(e, "eval_perplexity", ppl);
    if (!isnan(r->eval_acc)) lt_json_add_number(e, "eval_accuracy", r->eval_acc);
    lt_json_add_number(e, "epoch", lt_data_epoch_float(&r->data, r->B));
    if (lt_train_args_count_tokens(r->a)) cJSON_AddNumberToObject(e, "num_input_tokens_seen", (double)r->tokens_seen);
    cJSON_AddNumberToObject(e, "step", (double)r->step);
    end_bar(r);
    printf("step %ld/%ld  eval_loss %.4f  eval_perplexity %.3f", r->step, r->total_steps, el, ppl);
    if (!isnan(r->eval_acc)) printf("  eval_accuracy %.4f", r->eval_acc);
    printf("\n");
    log_entry(r, e);
    r->eval_step = r->step;
    r->t_last = lt_now_s();
    return 0;
}

/* The latest evaluation's value of the best-model metric (also what reduce_lr_on_plateau and greedy are stepped
   with). */
static double tracked_metric(const run_t *r) {
    return !strcmp(r->best_metric_name, "eval_perplexity") ? r->eval_ppl
           : !strcmp(r->best_metric_name, "eval_accuracy") ? r->eval_acc
                                                           : r->eval_loss;
}

/* EarlyStoppingCallback's check of the evaluation just made, before it may become the best: the counter starts
   again at an improvement by more than the threshold (or at the first evaluation), else grows; 1 when it reaches
   the patience (training stops after this step). */
static int early_stop(run_t *r) {
    const lt_train_args *a = r->a;
    if (a->early_stopping_patience <= 0 || !r->best_metric_name) return 0;
    const double v = tracked_metric(r), best = r->best_metric;
    const int better = lt_train_args_greater_is_better(a) ? v > best : v < best;
    if (r->best_step < 0 || (better && fabs(v - best) > a->early_stopping_threshold)) r->es_counter = 0;
    else r->es_counter++;
    return r->es_counter >= a->early_stopping_patience;
}

/* After an evaluation of the training loop: whether it is the run's new best by the tracked metric (the
 * Trainer's _determine_best_metric: strictly better than every earlier one). */
static int track_best(run_t *r) {
    if (!r->best_metric_name) return 0;
    const double v = tracked_metric(r);
    const int better = lt_best_improves(v, r->best_metric, r->best_step >= 0, lt_train_args_greater_is_better(r->a));
    if (better) r->best_metric = v, r->best_step = r->step;
    return better;
}

/* HF's speed_metrics: the runtime in seconds to 4 decimals, the rates to 3 */
static void add_speed(cJSON *j, const char *split, double runtime, double samples, double steps) {
    char key[64];
    runtime = round(runtime * 1e4) / 1e4;
    snprintf(key, sizeof key, "%s_runtime", split);
    cJSON_AddNumberToObject(j, key, runtime);
    snprintf(key, sizeof key, "%s_samples_per_second", split);
    cJSON_AddNumberToObject(j, key, runtime > 0 ? round(samples / runtime * 1e3) / 1e3 : 0.0);
    snprintf(key, sizeof key, "%s_steps_per_second", split);
    cJSON_AddNumberToObject(j, key, runtime > 0 ? round(steps / runtime * 1e3) / 1e3 : 0.0);
}

static int key_order(const void *a, const void *b) {
    return strcmp((*(cJSON *const *)a)->string, (*(cJSON *const *)b)->string);
}

/* An object's members in key order (the Trainer's save_metrics writes json with sort_keys) */
static void sort_keys(cJSON *j) {
    int n = cJSON_GetArraySize(j);
    cJSON **items = n ? malloc((size_t)n * sizeof *items) : NULL;
    if (!items) return; /* out of memory: left in the order built */
    for (int i = 0; i < n; i++) items[i] = cJSON_DetachItemFromArray(j, 0);
    qsort(items, (size_t)n, sizeof *items, key_order);
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(j, items[i]);
    free(items);
}

/* j written to path as text with a final newline, atomically; 1 on error (r->err) */
static int write_json(run_t *r, const char *path, const cJSON *j) {
    char *text = cJSON_Print(j), *line = text ? malloc(strlen(text) + 2) : NULL;
    if (line) sprintf(line, "%s\n", text);
    lt_status st = line ? lt_write_text_file(path, line, r->err, sizeof r->err) : LT_ERR_NOMEM;
    free(text), free(line);
    if (st == LT_ERR_NOMEM) snprintf(r->err, sizeof r->err, "%.900s: out of memory", path);
    return st != LT_OK;
}

/* run_clm's save_metrics(split, metrics): output_dir/<split>_results.json, and all_results.json with these keys
 * added to (or replacing) those it holds, each atomically and in key order; takes metrics. 1 on error (r->err). */
static int save_metrics(run_t *r, const char *split, cJSON *metrics) {
    char path[1100];
    snprintf(path, sizeof path, "%.1000s/%s_results.json", r->a->output_dir, split);
    sort_keys(metrics);
    int bad = write_json(r, path, metrics);
    snprintf(path, sizeof path, "%.1000s/all_results.json", r->a->output_dir);
    struct stat sb;
    char *old = !bad && stat(path, &sb) == 0 ? lt_read_text_file(path, r->err, sizeof r->err) : NULL;
    cJSON *all = old ? cJSON_Parse(old) : NULL;
    free(old);
    if (!cJSON_IsObject(all)) cJSON_Delete(all), all = cJSON_CreateObject(); /* none yet, or not ours: written anew */
    lt_json_numbers_exact(all); /* written again as read */
    for (cJSON *m = metrics->child; all && m && !bad; m = m->next) {
        cJSON_DeleteItemFromObjectCaseSensitive(all, m->string);
        cJSON_AddItemToObject(all, m->string, cJSON_Duplicate(m, 1));
    }
    r->err[0] = 0; /* an unreadable old file is replaced */
    if (!bad) {
        sort_keys(all);
        bad = write_json(r, path, all);
    }
    cJSON_Delete(all), cJSON_Delete(metrics);
    return bad;
}

/* --do_eval: eval_results.json (run_clm's file: the last evaluation's loss, accuracy, perplexity and speed) */
static int write_eval_results(run_t *r) {
    cJSON *j = cJSON_CreateObject();
    const long EB = r->a->per_device_eval_batch_size;
    lt_json_add_number(j, "epoch", lt_data_epoch_float(&r->data, r->B));
    if (!isnan(r->eval_acc)) lt_json_add_number(j, "eval_accuracy", r->eval_acc);
    lt_json_add_number(j, "eval_loss", r->eval_loss);
    add_speed(j, "eval", r->eval_runtime, (double)r->eval_rows, (double)((r->eval_rows + EB - 1) / EB));
    cJSON_AddNumberToObject(j, "eval_samples", (double)r->eval_rows);
    lt_json_add_number(j, "perplexity", r->eval_ppl);
    cJSON_AddNumberToObject(j, "step", (double)r->eval_step);
    return save_metrics(r, "eval", j);
}

/* After training: train_results.json (run_clm's: the mean training loss over every step, resumes included; the
 * training blocks; total_flos; the runtime and rates of the steps this process ran) and trainer_state.json in
 * output_dir (run_clm's save_state) */
static int write_train_results(run_t *r, double runtime) {
    cJSON *j = cJSON_CreateObject();
    const double steps = (double)(r->step - r->first_step);
    lt_json_add_number(j, "epoch", lt_data_epoch_float(&r->data, r->B));
    cJSON_AddNumberToObject(j, "total_flos", total_flos(r));
    lt_json_add_number(j, "train_loss", r->train_loss_steps ? r->train_loss_sum / (double)r->train_loss_steps : NAN);
    /* the blocks this process stepped (an epoch's short batches counted as they were) */
    add_speed(j, "train", runtime, (double)(r->tokens_seen - r->first_tokens) / row_tokens(r), steps);
    cJSON_AddNumberToObject(j, "train_samples", (double)r->data.n_train_blocks);
    if (save_metrics(r, "train", j)) return 1;
    char path[1100];
    snprintf(path, sizeof path, "%.1000s/trainer_state.json", r->a->output_dir);
    cJSON *st = state_json(r);
    const int bad = write_json(r, path, st);
    cJSON_Delete(st);
    return bad;
}

static void progress(run_t *r, double loss) {
    if (r->a->disable_tqdm || !isatty(STDOUT_FILENO)) return;
    double el = lt_now_s() - r->t_start, frac = (double)r->step / (double)r->total_steps;
    double eta = r->step > 0 ? el / (double)r->step * (double)(r->total_steps - r->step) : 0;
    int w = 30, filled = (int)(frac * w);
    printf("\r[");
    for (int i = 0; i < w; i++) putchar(i < filled ? '#' : '.');
    printf("] %ld/%ld loss %.4f  %02d:%02d elapsed, ETA %02d:%02d ", r->step, r->total_steps, loss, (int)el / 60,
           (int)el % 60, (int)eta / 60, (int)eta % 60);
    fflush(stdout);
    r->bar = 1;
}

/* The end of a run that lt_train_request_stop stopped: a checkpoint of the step reached, unless there is one
 * already or checkpoints are off; the exit status 128 + the signal. */
static int stop_run(run_t *r) {
    const int sig = g_stop_sig;
    const char *dir = r->a->output_dir;
    end_bar(r);
    fflush(stdout);
    if (!strcmp(r->a->save_strategy, "no")) {
        fprintf(stderr, "leantrain train: stopped by %s after step %ld of %ld; nothing saved (--save_strategy no)\n",
                sig_name(sig), r->step, r->total_steps);
    } else if (r->step == 0) {
        fprintf(stderr, "leantrain train: stopped by %s before the first step; nothing to save\n", sig_name(sig));
    } else {
        if (r->saved_step != r->step && save(r)) {
            r->err[0] = 0; /* save() said why */
            return 1;
        }
        fflush(stdout);
        fprintf(stderr,
                "leantrain train: stopped by %s after step %ld of %ld; %s/checkpoint-%ld holds it: run the same "
                "command with --resume_from_checkpoint latest to continue\n",
                sig_name(sig), r->step, r->total_steps, dir, r->step);
    }
    return 128 + sig;
}

static int setup_model(const lt_train_args *a, const char *resume_dir, int data_vocab, lt_gpt2_config *cfg,
                       char *err, size_t errlen) {
    char path[1300];
    if (resume_dir) {
        snprintf(path, sizeof path, "%s/config.json", resume_dir);
        if (lt_gpt2_config_load(path, cfg, err, errlen)) return 1;
    } else if (a->model_name_or_path[0]) {
        snprintf(path, sizeof path, "%s/config.json", a->model_name_or_path);
        if (lt_gpt2_config_load(path, cfg, err, errlen)) return 1;
    } else if (lt_train_args_scratch_config(a, data_vocab, cfg, err, errlen)) {
        return 1;
    }
    /* the dropout the checkpoint's (or model's) config.json records, unless the flag says otherwise */
    return lt_train_config_overrides(a->config_overrides, cfg, err, errlen) != LT_OK;
}

/* The memory plan of the training batch (r->mem), checked against --memory_limit before anything large is
   allocated; with --auto_find_batch_size it chooses the batch (r->B) as the Trainer's retries would end, without
   running out of memory first. A line for the start-up report goes into note. 0, or 1 with the reason in r->err
   (the table on stderr). */
static int plan_memory(run_t *r, const lt_gpt2_config *cfg, int on_gpu, const cJSON *state, char *note,
                       size_t notelen) {
    const lt_train_args *a = r->a;
    const lt_mem_methods me = {a->gradient_checkpointing,
                               a->optim_in_backward,
                               lt_train_args_precision(a),
                               a->pure_bf16,
                               on_gpu,
                               r->data.layout == LT_DATA_RUN_CLM,
                               lt_tokenizer_memory(r->tok)};
    const size_t data = r->data.train.map_len + r->data.val.map_len;
    const double M = 1048576.0;
    char src[128], perr[512];
    size_t limit = 0;
    note[0] = 0;
    /* evaluation only needs less than the plan (no gradients, no optimizer state): the table alone */
    if (!a->do_train) {
        if (lt_memplan(cfg, r->B, r->T, a->optim, a->optim_args, &me, data, &r->mem, perr, sizeof perr))
            r->mem.total = 0;
        return 0;
    }
    if (lt_memory_limit(a->memory_limit, on_gpu, &limit, src, sizeof src, r->err, sizeof r->err)) return 1;
    if (a->auto_find_batch_size) {
        /* resuming: from the batch the checkpoint was trained with (the Trainer restores it the same way) */
        int b0 = r->B;
        const cJSON *tb = cJSON_GetObjectItem(state, "train_batch_size");
        if (cJSON_IsNumber(tb) && tb->valuedouble >= 1 && tb->valuedouble <= 1 << 20) b0 = (int)tb->valuedouble;
        /* after a batch ran out of memory: the next size of the sequence, whatever the plan said */
        char after[96] = "";
        const int cap = r->oom_batch ? lt_auto_batch_next(r->oom_batch) : 0;
        if (cap && b0 > cap) {
            snprintf(after, sizeof after, "; batch %d ran out of memory", r->oom_batch);
            b0 = cap;
        }
        if (!limit) { /* --memory_limit none (or no figure): the Trainer's way, out-of-memory retries only */
            r->B = b0;
            if (lt_memplan(cfg, r->B, r->T, a->optim, a->optim_args, &me, data, &r->mem, perr, sizeof perr))
                r->mem.total = 0;
            snprintf(note, notelen, "auto_find_batch_size: batch %d, unchecked (%s)%s; a batch that runs out of "
                     "memory is retried with x0.9", r->B, strcmp(a->memory_limit, "none") ? "no memory figure"
                     : "--memory_limit none", after);
            return 0;
        }
        int tried[5], n = 0;
        size_t bytes[5];
        int b = lt_memplan_find_batch(cfg, b0, r->T, a->optim, a->optim_args, &me, data, limit, &r->mem, tried, bytes,
                                      5, &n, r->err, sizeof r->err);
        if (b < 0) return 1;
        if (b == 0) {
            lt_mem_table_print(stderr, &r->mem, 0);
            snprintf(r->err, sizeof r->err,
                     "--auto_find_batch_size: not even batch 1 fits: it needs %.1f MiB (the table above), %.1f MiB "
                     "are available (%s); lower --block_size, or see which methods fit with `leantrain plan` and "
                     "these model flags plus --memory %.0fMiB --fit",
                     r->mem.total / M, limit / M, src, limit / M);
            return 1;
        }
        size_t k = 0;
#define NOTE(...) (k < notelen ? k += (size_t)snprintf(note + k, notelen - k, __VA_ARGS__) : k)
        NOTE("auto_find_batch_size: batch %d, %.1f MiB planned of %.1f MiB available (%s)", b, r->mem.total / M,
             limit / M, src);
        if (after[0]) NOTE("%s", after);
        else if (b0 != r->B) NOTE("; from the checkpoint's batch %d", b0);
        for (int i = 0; i < n - 1 && i < 5; i++)
            NOTE("%s%d needs %.1f MiB", i ? ", " : "; ", tried[i], bytes[i] / M);
        if (n - 1 > 5) NOTE(", ...");
#undef NOTE
        r->B = b;
        return 0;
    }
    /* a table the planner cannot make (it refuses nothing the trainer accepts) leaves the run unchecked */
    if (lt_memplan(cfg, r->B, r->T, a->optim, a->optim_args, &me, data, &r->mem, perr, sizeof perr)) {
        r->mem.total = 0;
        return 0;
    }
    if (!limit || r->mem.total <= limit) return 0;
    lt_mem_table_print(stderr, &r->mem, 0);
    int tried[1], n;
    size_t bytes[1];
    lt_mem_table t;
    const int fb = lt_memplan_find_batch(cfg, r->B, r->T, a->optim, a->optim_args, &me, data, limit, &t, tried, bytes,
                                         1, &n, perr, sizeof perr);
    const int mb = lt_memplan_max_batch(cfg, r->T, a->optim, a->optim_args, &me, data, limit, perr, sizeof perr);
    char hint[256];
    if (fb > 0)
        snprintf(hint, sizeof hint, "--auto_find_batch_size would train with batch %d (the largest that fits is %d)",
                 fb, mb);
    else
        snprintf(hint, sizeof hint, "not even batch 1 fits: lower --block_size");
    snprintf(r->err, sizeof r->err,
             "batch %d needs %.1f MiB (the table above) but %.1f MiB are available (%s): %s; or see which methods "
             "fit with `leantrain plan` and these model flags plus --memory %.0fMiB --fit; --memory_limit none "
             "trains without this check",
             r->B, r->mem.total / M, limit / M, src, hint, limit / M);
    return 1;
}

/* A resumed run reads its data in the layout the checkpoint's run used (trainer_state.json's data_layout; a
   checkpoint written before it existed used the stream layout): with --data_layout auto that one, and another
   asked for explicitly is refused (the data position would point into other blocks). */
static int resume_layout(const lt_train_args *a, const cJSON *state, lt_data_layout *layout, char *err,
                         size_t errlen) {
    const cJSON *v = cJSON_GetObjectItem(state, "data_layout");
    const char *was = cJSON_IsString(v) ? v->valuestring : "stream";
    const lt_data_layout rec = !strcmp(was, "run_clm") ? LT_DATA_RUN_CLM : LT_DATA_STREAM;
    if (!strcmp(was, "run_clm") || !strcmp(was, "stream")) {
        if (!strcmp(a->data_layout, "auto") || rec == *layout) {
            *layout = rec;
            return 0;
        }
    }
    snprintf(err, errlen, "the checkpoint's run read its data in the %s layout (trainer_state.json's data_layout%s): "
             "resuming with --data_layout %s would put its data position into other blocks; pass --data_layout %s "
             "(or drop the flag)", was, cJSON_IsString(v) ? "" : ": none, a checkpoint older than the flag",
             a->data_layout, was);
    return 1;
}

/* What every attempt of a run shares, made once: the checkpoint to resume and its trainer_state.json, the
   tokenizer, the model's configuration and block size, the data (a text corpus tokenized once). */
typedef struct {
    char resume[1200]; /* "" when not resuming */
    cJSON *state;      /* its trainer_state.json */
    lt_tokenizer *tok; /* NULL: text files are bytes */
    lt_gpt2_config cfg;
    int T;
    lt_data data;
    int data_open;
} prep_t;

/* A text file being tokenized: a line at each tenth of a file of over 64 MiB (a second or more of tokenizing) */
typedef struct {
    int tenth; /* tenths of the file in progress printed */
    double t0; /* when it started */
} tok_progress;
static void tokenize_progress(void *user, uint64_t done, uint64_t total, uint64_t tokens) {
    tok_progress *tp = user;
    if (total > ((uint64_t)64 << 20) && done * 10 / total > (uint64_t)tp->tenth) {
        tp->tenth = (int)(done * 10 / total);
        const double s = lt_now_s() - tp->t0;
        printf("tokenizing: %.0f of %.0f MB, %.1f M tokens, %.0f MB/s\n", done / 1e6, total / 1e6, tokens / 1e6,
               s > 0 ? done / 1e6 / s : 0.0);
    }
    if (done == total) tp->tenth = 0, tp->t0 = lt_now_s(); /* the next file (validation) starts */
}

/* 0, or 1 with the reason in err. */
static int prepare(const lt_train_args *a, prep_t *p, char *err, size_t errlen) {
    if (a->resume_from_checkpoint[0]) {
        if (!strcmp(a->resume_from_checkpoint, "latest")) {
            if (lt_ckpt_latest(a->output_dir, p->resume, sizeof p->resume, err, errlen)) return 1;
        } else {
            snprintf(p->resume, sizeof p->resume, "%s", a->resume_from_checkpoint);
        }
    } else if (a->do_train && lt_ckpt_count(a->output_dir) > 0 && !a->overwrite_output_dir) {
        snprintf(err, errlen,
                 "--output_dir %s already holds checkpoints: pass --resume_from_checkpoint latest to continue, or "
                 "--overwrite_output_dir to start over",
                 a->output_dir);
        return 1;
    }
    if (p->resume[0]) {
        char path[1300];
        snprintf(path, sizeof path, "%.1200s/trainer_state.json", p->resume);
        char *text = lt_read_text_file(path, err, errlen);
        if (!text) return 1;
        p->state = cJSON_Parse(text);
        free(text);
        if (!p->state) {
            snprintf(err, errlen, "%.1000s: not valid JSON", path);
            return 1;
        }
    }
    /* the tokenizer for text files: the flag's, else the one saved in the checkpoint or the model folder */
    const char *tok_path = lt_train_args_tokenizer_path(a, p->resume);
    if (tok_path && lt_tokenizer_load(tok_path, &p->tok, err, errlen)) return 1;
    /* the model's vocabulary for a custom model: 256 for text (the tokenizer's with one), 50257 for token files */
    int data_vocab = 256, token_file = 0;
    /* evaluation only (--do_train false) needs no training file: the validation file stands in for it */
    const char *train_file = a->train_file[0] || a->do_train ? a->train_file : a->validation_file;
    {
        lt_tokens probe;
        if (!train_file[0]) {
            snprintf(err, errlen, a->do_train ? "no training data: give --train_file (UTF-8 text or an llm.c token file)"
                                                         : "nothing to evaluate: give --validation_file (or --train_file and "
                                                           "--validation_split_percentage)");
            return 1;
        }
        if (lt_tokens_open(train_file, &probe, err, errlen)) return 1;
        token_file = probe.bytes == 2;
        data_vocab = lt_train_data_vocab(token_file, p->tok ? lt_tokenizer_vocab_size(p->tok) : 0);
        lt_tokens_close(&probe);
    }
    if (setup_model(a, p->resume[0] ? p->resume : NULL, data_vocab, &p->cfg, err, errlen)) return 1;
    tok_progress tp = {0, lt_now_s()};
    lt_data_opts dop = {.train_file = train_file,
                        .validation_file = a->validation_file,
                        .val_percent = a->validation_split_percentage,
                        .block_size = 0, /* below, once the layout is known */
                        .vocab = p->cfg.vocab_size,
                        .seed = a->data_seed,
                        .layout = lt_train_args_data_layout(a, token_file),
                        .workers = a->preprocessing_num_workers,
                        .drop_linebreaks = !a->keep_linebreaks,
                        .drop_last = a->dataloader_drop_last,
                        .tok = p->tok,
                        .threads = a->threads,
                        .progress = tokenize_progress,
                        .user = &tp};
    if (p->state && resume_layout(a, p->state, &dop.layout, err, errlen)) return 1;
    dop.block_size = lt_train_args_block_size(a, p->cfg.n_positions, dop.layout);
    if (dop.block_size > p->cfg.n_positions) {
        snprintf(err, errlen, "--block_size %d is larger than the model's n_positions %d", dop.block_size,
                 p->cfg.n_positions);
        return 1;
    }
    if (!a->keep_linebreaks && dop.layout != LT_DATA_RUN_CLM) {
        snprintf(err, errlen, "--keep_linebreaks false drops each line's line break, which needs run_clm's layout: "
                 "%s", token_file ? "an llm.c token file has no lines (drop the flag)" : "drop --data_layout stream");
        return 1;
    }
    if (lt_data_open_opts(&p->data, &dop, err, errlen)) return 1;
    /* what loading the tokenizer and reading the text freed goes back to the system (the memory plan counts
       what is kept: the tokenizer's tables, the tokens) */
    lt_release_free_memory();
    p->T = p->data.T; /* the positions a block predicts: block_size - 1 in run_clm's layout */
    p->data_open = 1;
    lt_data_limit(&p->data, (size_t)a->max_train_samples, (size_t)a->max_eval_samples);
    /* OpenBLAS's buffers before the model's memory, so that no product maps one later: under `ulimit -v` a
       buffer it could not map would hang the run (on the device, the products are cuBLAS's) */
    if (!lt_train_args_on_gpu(a) && lt_nn_blas_reserve(err, errlen)) return 1;
    return 0;
}

static void prep_free(prep_t *p) {
    if (p->data_open) lt_data_close(&p->data);
    lt_tokenizer_free(p->tok);
    cJSON_Delete(p->state);
}

/* One attempt at the run (lt_train_run's job); after batch `failed` ran out of memory (0: the first attempt),
   from the next smaller batch at most. Returns the exit status; *oom is set to this attempt's batch when it ran
   out of memory and --auto_find_batch_size retries (a note was printed instead of the error), else 0. */
static int train_attempt(const lt_train_args *a, const prep_t *p, int failed, int *oom) {
    run_t R;
    memset(&R, 0, sizeof R);
    run_t *r = &R;
    r->a = a;
    r->oom_batch = failed;
    *oom = 0;
    r->best_step = -1;
    r->best_metric_name = lt_train_args_best_metric(a);
    int rc = 1;
    const char *resume = p->resume;
    cJSON *state = p->state;
    lt_gpt2_config cfg = p->cfg;
    r->tok = p->tok;
    r->T = p->T;
    r->B = a->per_device_train_batch_size;
    r->accum = a->gradient_accumulation_steps;
    /* borrowed; its order buffer is shared, so it may hold a later epoch's permutation from a failed attempt:
       the position is set again (a resume seeks below) */
    r->data = p->data;
    lt_data_seek(&r->data, 0, 0);
    int on_gpu = lt_train_args_on_gpu(a);
    if (a->tf32 && !on_gpu) {
        snprintf(r->err, sizeof r->err,
                 "--tf32 needs a GPU (Ampere or newer) and --device auto found none; the CPU multiplies in fp32: "
                 "drop --tf32");
        goto out;
    }
    char fit_note[512];
    if (plan_memory(r, &cfg, on_gpu, state, fit_note, sizeof fit_note)) goto out;
    r->planned = 1;
    if (lt_gpt2_create(&cfg, &r->m, r->err, sizeof r->err)) goto out;
    lt_gpt2_set_label_smoothing(r->m, (float)a->label_smoothing_factor);
    lt_gpt2_set_neftune(r->m, neftune_alpha(r));
    if (on_gpu) {
        /* the host model only carries the weights (loading, initialising, checkpoints), in bf16 when pure */
        if (a->pure_bf16 && lt_gpt2_set_precision(r->m, LT_GPT2_BF16, 1, r->err, sizeof r->err)) goto out;
    } else {
        if (a->gradient_checkpointing) lt_gpt2_set_checkpointing(r->m, 1);
        if (a->optim_in_backward && lt_gpt2_set_grad_per_block(r->m, 1, r->err, sizeof r->err)) goto out;
        if (lt_gpt2_set_precision(r->m, lt_train_args_precision(a), a->pure_bf16, r->err, sizeof r->err)) goto out;
        /* the logits in chunks, their gradient and the head's backward computed in the forward */
        lt_gpt2_set_head_rows(r->m, lt_gpt2_head_rows_default(&cfg));
        if (lt_gpt2_set_batch(r->m, r->B, r->T, r->err, sizeof r->err)) goto out;
    }
    /* the buffers hold the training batch; evaluation runs in pieces of it */
    r->inputs = malloc((size_t)r->B * (size_t)r->T * sizeof(int32_t));
    r->targets = malloc((size_t)r->B * (size_t)r->T * sizeof(int32_t));
    if (!r->inputs || !r->targets) {
        snprintf(r->err, sizeof r->err, "out of memory for the batch buffers");
        goto out;
    }
    char path[1300];
    if (resume[0]) {
        snprintf(path, sizeof path, "%s/model.safetensors", resume);
        if (lt_gpt2_load(r->m, path, r->err, sizeof r->err)) goto out;
    } else if (a->model_name_or_path[0]) {
        snprintf(path, sizeof path, "%s/model.safetensors", a->model_name_or_path);
        if (lt_gpt2_load(r->m, path, r->err, sizeof r->err)) goto out;
    } else {
        lt_gpt2_init_random(r->m, a->seed);
    }
    if (on_gpu) {
        char e2[1024];
        /* made in its final configuration: a pure-bf16 7B model never holds fp32 weights or whole-model gradients */
        if (lt_gpt2_dev_create_as(r->m, NULL, lt_train_args_precision(a), a->pure_bf16, a->optim_in_backward,
                                  &r->dev, e2, sizeof e2) ||
            (lt_gpt2_dev_set_checkpointing(r->dev, a->gradient_checkpointing), 0) ||
            (lt_gpt2_dev_set_label_smoothing(r->dev, (float)a->label_smoothing_factor), 0) ||
            (lt_gpt2_dev_set_neftune(r->dev, neftune_alpha(r)), 0) ||
            /* as on the CPU: the logits in chunks, the head's backward in the forward */
            (lt_gpt2_dev_set_head_rows(r->dev, lt_gpt2_head_rows_default(&cfg)), 0) ||
            (a->tf32 && lt_gpt2_dev_set_tf32(r->dev, 1, e2, sizeof e2)) ||
            lt_gpt2_dev_set_batch(r->dev, r->B, r->T, e2, sizeof e2)) {
            snprintf(r->err, sizeof r->err, "--device cuda: %.1000s", e2);
            goto out;
        }
    }
    /* the optimizer: the Trainer's two groups (no decay on biases and LayerNorm weights) */
    lt_hparams hp = {a->learning_rate, a->adam_beta1, a->adam_beta2, a->adam_epsilon, a->weight_decay};
    r->o = lt_optim_create(a->optim, a->optim_args, &hp, r->err, sizeof r->err);
    if (!r->o) {
        char e2[1024];
        snprintf(e2, sizeof e2, "--optim %s: %.900s", a->optim, r->err);
        snprintf(r->err, sizeof r->err, "%s", e2);
        goto out;
    }
    int nodecay = lt_optim_add_group(r->o, "weight_decay=0.0");
    if (nodecay < 0) {
        snprintf(r->err, sizeof r->err, "%s", lt_optim_error(r->o));
        goto out;
    }
    if (r->dev && lt_optim_set_stream(r->o, lt_gpt2_dev_stream(r->dev)) != LT_OK) {
        snprintf(r->err, sizeof r->err, "%s", lt_optim_error(r->o));
        goto out;
    }
    for (int i = 0; i < r->m->num_tensors; i++) {
        lt_gpt2_param *p = &r->m->params[i];
        lt_param_desc d = {.name = p->name, .data = p->data16 ? (void *)p->data16 : (void *)p->data, .grad = p->grad,
                           .dtype = p->data16 ? LT_DTYPE_BF16 : LT_DTYPE_F32, .ndim = p->ndim,
                           .group = p->weight_decay ? 0 : nodecay};
        if (r->dev) { /* the optimizer steps the GPU's copy, on the model's stream */
            const lt_gpt2_dev_param *dp = lt_gpt2_dev_param_at(r->dev, i);
            d.data = dp->data ? (void *)dp->data : (void *)dp->data16;
            d.dtype = dp->data ? LT_DTYPE_F32 : LT_DTYPE_BF16;
            d.grad = dp->grad;
            d.device = 1;
        }
        d.shape[0] = p->shape[0];
        d.shape[1] = p->shape[1];
        if (lt_optim_add_param(r->o, &d) < 0) {
            snprintf(r->err, sizeof r->err, "%s", lt_optim_error(r->o));
            goto out;
        }
    }
    /* length and schedule */
    if (a->do_train && r->data.drop_last && r->data.n_train_blocks < (size_t)r->B) {
        snprintf(r->err, sizeof r->err,
                 "--dataloader_drop_last: the %zu training blocks do not fill one batch of %d, so every epoch would be "
                 "empty: lower --per_device_train_batch_size or drop the flag (the short batch is then run)",
                 r->data.n_train_blocks, r->B);
        goto out;
    }
    long per_epoch = lt_data_steps_per_epoch(&r->data, r->B, r->accum);
    if ((r->total_steps = lt_train_total_steps(a, per_epoch)) < 0) {
        snprintf(r->err, sizeof r->err,
                 "--num_train_epochs %g of %ld steps each is more than %.0e steps: give fewer epochs or --max_steps",
                 a->num_train_epochs, per_epoch, LT_MAX_RUN_STEPS);
        goto out;
    }
    r->warmup = a->warmup_steps > 0 ? lt_steps_resolve(a->warmup_steps, r->total_steps)
                                    : (long)ceil(a->warmup_ratio * (double)r->total_steps);
    r->ev = lt_events_make(a, r->total_steps, per_epoch);
    r->eval_step = -1;
    if ((a->do_eval || !a->do_train) && r->data.n_val_blocks == 0) {
        snprintf(r->err, sizeof r->err, "--do_eval: the validation split is empty (give --validation_file, or a "
                 "--validation_split_percentage that leaves at least one block of %d tokens)", row_tokens(r));
        goto out;
    }
    if (lt_sched_init(&r->sched, a->lr_scheduler_type, r->warmup, r->total_steps, a->learning_rate,
                      a->lr_scheduler_kwargs, r->err, sizeof r->err))
        goto out;
    r->history = cJSON_CreateArray();
    r->loss_scale = a->fp16 ? a->fp16_init_scale : 1.0;
    if (state) {
        snprintf(path, sizeof path, "%s/optimizer.safetensors", resume);
        if (a->do_train && access(path, F_OK) != 0 && errno == ENOENT) {
            snprintf(r->err, sizeof r->err,
                     "--resume_from_checkpoint %.400s: it has no optimizer.safetensors (a --save_only_model checkpoint), "
                     "so training cannot resume from it; start a new run from its weights with --model_name_or_path "
                     "%.400s",
                     resume, resume);
            goto out;
        }
        if (a->do_train && lt_optim_load(r->o, path)) {
            snprintf(r->err, sizeof r->err, "%s", lt_optim_error(r->o));
            goto out;
        }
        /* every count read back is a whole number in range (lt_json_count), or the file is refused */
        const cJSON *dp = cJSON_GetObjectItem(state, "data_position");
        long long gstep, epoch, index;
        if (!lt_json_count(cJSON_GetObjectItem(state, "global_step"), LT_JSON_COUNT_MAX, &gstep) ||
            !lt_json_count(cJSON_GetObjectItem(dp, "epoch"), LT_JSON_COUNT_MAX, &epoch) ||
            !lt_json_count(cJSON_GetObjectItem(dp, "index"), (double)r->data.n_train_blocks, &index)) {
            snprintf(r->err, sizeof r->err,
                     "%.700s/trainer_state.json: global_step or data_position (epoch, index) missing or not a whole "
                     "number in range (the index at most the %zu training blocks: was the data changed?)",
                     resume, r->data.n_train_blocks);
            goto out;
        }
        r->step = (long)gstep;
        const cJSON *gsc = cJSON_GetObjectItem(state, "grad_scaler");
        if (a->fp16 && gsc) {
            const cJSON *sc = cJSON_GetObjectItem(gsc, "scale"), *gt = cJSON_GetObjectItem(gsc, "growth_tracker");
            const cJSON *sk = cJSON_GetObjectItem(gsc, "skipped_steps");
            long long growth, skipped;
            if (!cJSON_IsNumber(sc) || !(sc->valuedouble > 0) || !lt_json_count(gt, LT_JSON_COUNT_MAX, &growth) ||
                !lt_json_count(sk, (double)r->step, &skipped)) {
                snprintf(r->err, sizeof r->err,
                         "%.900s/trainer_state.json: grad_scaler.scale, growth_tracker or skipped_steps invalid", resume);
                goto out;
            }
            r->loss_scale = sc->valuedouble;
            r->growth_tracker = (long)growth;
            r->skipped_total = (long)skipped;
        }
        lt_data_seek(&r->data, (long)epoch, (size_t)index);
        cJSON *h = cJSON_GetObjectItem(state, "log_history");
        if (cJSON_IsArray(h)) {
            cJSON_Delete(r->history);
            r->history = cJSON_Duplicate(h, 1);
            lt_json_numbers_exact(r->history); /* written again as read, not rounded to 15 digits */
        }
        /* checkpoints written before the window was saved lack it: the next line then averages fewer steps */
        const cJSON *w = cJSON_GetObjectItem(state, "logging_window");
        if (w) {
            const cJSON *ls = cJSON_GetObjectItem(w, "loss_sum"), *ln = cJSON_GetObjectItem(w, "steps");
            const cJSON *lk = cJSON_GetObjectItem(w, "skipped_steps");
            long long wsteps, wskipped;
            if (!cJSON_IsNumber(ls) || !lt_json_count(ln, r->step < INT_MAX ? (double)r->step : (double)INT_MAX, &wsteps) ||
                !lt_json_count(lk, (double)r->step, &wskipped)) {
                snprintf(r->err, sizeof r->err, "%.900s/trainer_state.json: logging_window invalid", resume);
                goto out;
            }
            r->loss_sum = ls->valuedouble;
            r->loss_count = (int)wsteps;
            r->skipped = (long)wskipped;
        }
        r->saved_step = r->step;
        const cJSON *tl = cJSON_GetObjectItem(state, "train_loss_sum"); /* absent before 2026-11-30 */
        if (cJSON_IsNumber(tl)) r->train_loss_sum = tl->valuedouble, r->train_loss_steps = r->step;
        const cJSON *ts = cJSON_GetObjectItem(state, "num_input_tokens_seen"); /* absent before 2026-11-30: 0 */
        long long count;
        if (lt_json_count(ts, LT_JSON_COUNT_MAX, &count)) r->tokens_seen = count;
        const cJSON *bm = cJSON_GetObjectItem(state, "best_metric"), *bs = cJSON_GetObjectItem(state, "best_global_step");
        if (cJSON_IsNumber(bm) && lt_json_count(bs, (double)r->step, &count))
            r->best_metric = bm->valuedouble, r->best_step = (long)count;
        /* the patience counter (the Trainer restores it with restore_callback_states_from_checkpoint; here always,
           so that a resumed run stops where the uninterrupted one does) */
        const cJSON *esc = cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(state, "stateful_callbacks"),
                                                    "EarlyStoppingCallback"),
                                "attributes"),
            "early_stopping_patience_counter");
        if (lt_json_count(esc, 1e9, &count)) r->es_counter = (int)count;
        if (lt_sched_metric_driven(&r->sched)) {
            char e2[512];
            if (lt_sched_state_load(&r->sched, cJSON_GetObjectItem(state, "lr_scheduler"), e2, sizeof e2)) {
                snprintf(r->err, sizeof r->err, "%.500s/trainer_state.json: %.500s", resume, e2);
                goto out;
            }
        }
    } else {
        r->saved_step = -1;
    }
    r->first_step = r->step;
    if (a->do_train) lt_ckpt_clean_tmp(a->output_dir); /* evaluation only leaves a running training's temporaries */
    {
        char e2[1024];
        struct stat sb;
        if (stat(a->output_dir, &sb) != 0) {
            if (mkdir(a->output_dir, 0777) != 0 && errno != EEXIST) {
                snprintf(r->err, sizeof r->err, "--output_dir %s: cannot create: %s", a->output_dir, strerror(errno));
                goto out;
            }
            r->made_dir = 1;
        }
        snprintf(e2, sizeof e2, "%s/log.jsonl", a->output_dir);
        /* on resume the log restarts from the checkpoint's history: lines a killed run wrote after its last
           checkpoint would otherwise appear twice (the resumed run logs those steps again) */
        if (a->do_train && resume[0] && write_log(e2, r->history, r->err, sizeof r->err)) goto out;
        /* evaluation only leaves a training run's log alone */
        r->jsonl = a->do_train ? fopen(e2, resume[0] ? "a" : "w") : NULL;
    }
    printf("leantrain train: GPT-2 %d layers, %d embd, %d heads, vocab %d: %zu parameters; optimizer %s (%zu state "
           "bytes)\n",
           cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.vocab_size, r->m->num_params, lt_optim_name(r->o),
           lt_optim_state_bytes(r->o));
    if (!a->do_train) {
        printf("data: %zu validation blocks of %d tokens (%s), evaluated in batches of %d; no training (--do_train "
               "false)\n", r->data.n_val_blocks, row_tokens(r), layout_name(r), r->B);
    } else {
        /* the Trainer's epoch end when the blocks do not fill the last batch: a short batch, or blocks left out */
        char tail[160] = "";
        const size_t left = r->data.n_train_blocks % (size_t)r->B;
        if (lt_data_trainer_epochs(&r->data) && left && r->data.n_train_blocks > (size_t)r->B)
            snprintf(tail, sizeof tail, r->data.drop_last ? " (each epoch leaves %zu blocks out: --dataloader_drop_last)"
                                                          : " (each epoch ends with a batch of %zu, as the Trainer's)",
                     left);
        printf("data: %zu training blocks of %d tokens (%s), %zu validation blocks; batch %d x %d accumulation%s; %ld "
               "steps (%ld warmup), %d threads%s%s%s%s%s\n",
               r->data.n_train_blocks, row_tokens(r), layout_name(r), r->data.n_val_blocks, r->B, r->accum, tail,
               r->total_steps, r->warmup, omp_get_max_threads(), r->dev ? "" : " (OpenBLAS ",
               r->dev ? "" : lt_nn_blas_core(), r->dev ? "" : ")", resume[0] ? "; resuming from " : "", resume);
    }
    if (a->do_train && resume[0]) { /* a resume with other flags is another run: say which */
        char args_path[1300], changed[2048];
        snprintf(args_path, sizeof args_path, "%.1200s/training_args.json", resume);
        char *before = access(args_path, R_OK) == 0 ? lt_read_text_file(args_path, r->err, sizeof r->err) : NULL;
        int n = before ? lt_train_args_changed(before, a, changed, sizeof changed) : 0;
        if (n < 0)
            printf("note: %s is not a JSON object of flags: the checkpoint's run's flags are unknown\n", args_path);
        if (n > 0) printf("note: %d flag%s differ%s from the checkpoint's run: %s\n", n, n > 1 ? "s" : "",
                          n > 1 ? "" : "s", changed);
        free(before);
        r->err[0] = 0;
    }
    if (cfg.embd_pdrop > 0 || cfg.resid_pdrop > 0 || cfg.attn_pdrop > 0)
        printf("dropout: embd_pdrop %g, resid_pdrop %g, attn_pdrop %g (training steps only; masks from --seed)\n",
               cfg.embd_pdrop, cfg.resid_pdrop, cfg.attn_pdrop);
    if (!r->dev && lt_train_args_precision(a) == LT_GPT2_BF16) printf("bf16 products: %s\n", lt_gemm_bf16_describe());
    if (r->tok) printf("tokenizer: %s (%zu tokens); text files encoded with it\n", lt_tokenizer_source(r->tok),
                       lt_tokenizer_vocab_size(r->tok));
    if (r->dev)
        printf("device: cuda (the model, its gradients and the optimizer state in GPU memory; the memory table "
               "counts device memory)\n");
    if (a->tf32)
        printf("tf32: %s\n", lt_train_args_precision(a) == LT_GPT2_F32
                                  ? "fp32 matrix multiplies take TF32 inputs on the tensor cores (fp32 sums)"
                                  : "no effect: the matrix multiplies are 16-bit already");
    if (a->neftune_noise_alpha > 0)
        printf("NEFTune: training steps add uniform noise of magnitude %g / sqrt(%d x %d) = %.4g to the token "
               "embeddings (drawn from --seed; evaluation adds none)\n",
               a->neftune_noise_alpha, row_tokens(r), cfg.n_embd,
               (double)lt_gpt2_neftune_magnitude((float)a->neftune_noise_alpha, row_tokens(r), cfg.n_embd));
    if (a->label_smoothing_factor > 0)
        printf("label smoothing %g: the loss (training and evaluation, and eval_perplexity from it) is (1 - %g) x "
               "cross-entropy + %g x the mean over the vocabulary of -log p, as the Trainer's LabelSmoother\n",
               a->label_smoothing_factor, a->label_smoothing_factor, a->label_smoothing_factor);
    if (a->fp16 || a->bf16 || a->pure_bf16)
        printf("precision: %s compute (matrix multiplies and stored activations), %s%s\n", a->fp16 ? "fp16" : "bf16",
               a->pure_bf16 ? "parameters in bf16 only (no fp32 master)" : "fp32 master weights",
               a->fp16 ? "; dynamic loss scaling" : "");
    if (a->pure_bf16 && !strstr(a->optim_args, "bf16_stochastic_round=True") &&
        !strstr(a->optim_args, "use_kahan_summation=True"))
        printf("note: pure bf16 rounds every update to nearest: updates below half a bf16 step are lost; consider "
               "--optim_args bf16_stochastic_round=True, or --optim adamw_anyprecision --optim_args "
               "use_kahan_summation=True\n");
    if (fit_note[0]) printf("%s\n", fit_note);
    if (r->mem.total) lt_mem_table_print(stdout, &r->mem, 0);
    if (r->data.train.bytes == 1) { /* the yardstick a byte-level model must beat: the unigram entropy */
        double cnt[256] = {0}, H = 0;
        for (size_t i = 0; i < r->data.train_len; i++) cnt[lt_tokens_get(&r->data.train, r->data.train_begin + i)]++;
        for (int c = 0; c < 256; c++)
            if (cnt[c] > 0) H -= cnt[c] / (double)r->data.train_len * log(cnt[c] / (double)r->data.train_len);
        printf("unigram entropy of the training text: %.4f nats per byte (a model that learned nothing scores this)\n",
               H);
    }
    fflush(stdout);
    if (!a->do_train) { /* --do_train false --do_eval: the model as loaded, on the validation split */
        if (eval_and_log(r) || write_eval_results(r)) goto out;
        printf("done: evaluated the model of %s without training (--do_train false); %s/eval_results.json\n",
               resume[0] ? resume : a->model_name_or_path[0] ? a->model_name_or_path : "--seed's initialisation",
               a->output_dir);
        rc = 0;
        goto out;
    }
    if (a->eval_on_start && eval_and_log(r)) goto out;
    r->t_start = r->t_last = lt_now_s();
    r->tokens_at_log = r->first_tokens = r->tokens_seen; /* a resumed run's count starts where the checkpoint's ended */
    /* tests: LT_TEST_SIGNAL=TERM@K (or INT@K, HUP@K; xN: N times) raises the signal at the end of step K */
    int test_sig = 0, test_count = 1;
    long test_step = -1;
    if (getenv("LT_TEST_SIGNAL")) {
        char name[8] = "";
        if (sscanf(getenv("LT_TEST_SIGNAL"), "%7[A-Z]@%ldx%d", name, &test_step, &test_count) >= 2)
            test_sig = !strcmp(name, "INT") ? SIGINT : !strcmp(name, "HUP") ? SIGHUP : SIGTERM;
    }
    /* tests: LT_TEST_OOM=N@K: a batch above N runs out of memory at step K (default 1), as an allocation there
       would: --auto_find_batch_size's retries without a machine that runs out */
    int test_oom = -1;
    long test_oom_step = 1;
    if (getenv("LT_TEST_OOM")) sscanf(getenv("LT_TEST_OOM"), "%d@%ld", &test_oom, &test_oom_step);
    while (r->step < r->total_steps) {
        if (test_oom >= 0 && r->B > test_oom && r->step + 1 == test_oom_step) {
            snprintf(r->err, sizeof r->err, "step %ld: out of memory (LT_TEST_OOM=%s: a batch above %d fails here)",
                     r->step + 1, getenv("LT_TEST_OOM"), test_oom);
            goto out;
        }
        if (g_stop_sig) { /* a stop was asked for during the last step (or before the first) */
            rc = stop_run(r);
            goto out;
        }
        /* the scheduler counts optimizer steps taken: an fp16 step skipped for overflow does not advance it */
        double lr = lt_sched_lr(&r->sched, r->step - r->skipped_total);
        lt_optim_set_lr(r->o, -1, lr);
        if (model_zero_grad(r)) goto out;
        double loss = 0;
        double norm = NAN;
        float l;
        model_set_loss_scale(r, (float)r->loss_scale);
        /* this step's micro-batches and rows: accum batches of B, or at an epoch's end in run_clm's layout fewer,
           the last one short (the Trainer's remainder and short batch) */
        int micro;
        const long step_rows = lt_data_step_rows(&r->data, r->B, r->accum, &micro);
        if (a->optim_in_backward) {
            /* each parameter group is stepped by the callback as soon as backward finishes it */
            const int rows = lt_data_next(&r->data, r->B, r->inputs, r->targets);
            model_set_dropout(r, 0);
            if (model_forward(r, rows, &l) || model_backward(r, step_in_backward) || model_stepped(r)) goto out;
            loss = l;
        } else {
            for (int k = 0; k < micro; k++) {
                const int rows = lt_data_next(&r->data, r->B, r->inputs, r->targets);
                /* the step's loss is the mean over all its rows (the Trainer's num_items_in_batch): a micro-batch's
                   mean counts rows / step_rows of it, folded into its backward's scale beside 1 / micro below
                   (exactly 1 when every micro-batch is whole) */
                const double w = (double)rows * (double)micro / (double)step_rows;
                if (w != 1.0) model_set_loss_scale(r, (float)(r->loss_scale * w));
                model_set_dropout(r, k);
                if (model_forward(r, rows, &l) || model_backward(r, NULL)) goto out;
                if (w != 1.0) model_set_loss_scale(r, (float)r->loss_scale);
                loss += (double)l * w;
            }
            loss /= micro;
            /* the gradient of the mean loss over the accumulated micro-batches (unscaled), then clipping */
            double gn;
            if (model_grad_norm(r, &gn)) goto out;
            norm = gn / micro / r->loss_scale;
            if (a->fp16 && !isfinite(norm)) {
                /* GradScaler: an overflowed step is skipped and the scale halved */
                end_bar(r);
                printf("step %ld: gradients overflowed at loss scale %g: step skipped, loss scale now %g\n",
                       r->step + 1, r->loss_scale, r->loss_scale * 0.5);
                r->loss_scale *= 0.5;
                r->growth_tracker = 0;
                r->skipped++;
                r->skipped_total++;
                norm = NAN;
            } else {
                double clip = a->max_grad_norm > 0 && norm > a->max_grad_norm ? a->max_grad_norm / (norm + 1e-6) : 1.0;
                if (lt_optim_step(r->o, (float)(clip / micro / r->loss_scale)) != LT_OK) {
                    snprintf(r->err, sizeof r->err, "%s", lt_optim_error(r->o));
                    goto out;
                }
                if (model_stepped(r)) goto out;
                if (a->fp16 && ++r->growth_tracker >= a->fp16_growth_interval) {
                    r->loss_scale *= 2.0;
                    r->growth_tracker = 0;
                }
            }
        }
        r->step++;
        r->loss_sum += loss;
        r->loss_count++;
        r->train_loss_sum += loss;
        r->train_loss_steps++;
        r->tokens_seen += (long long)step_rows * row_tokens(r);
        if (!isfinite(loss)) {
            snprintf(r->err, sizeof r->err, "the loss is %g at step %ld: lower --learning_rate%s", loss, r->step,
                     a->fp16 ? " (or use --bf16: fp16 activations overflow above 65504)" : "");
            goto out;
        }
        const int due = lt_events_at(&r->ev, r->step);
        if (due & LT_EV_LOG) {
            double t = lt_now_s(), tps = (double)(r->tokens_seen - r->tokens_at_log) / (t - r->t_last);
            cJSON *e = cJSON_CreateObject();
            lt_json_add_number(e, "loss", r->loss_sum / r->loss_count);
            if (!isnan(norm)) lt_json_add_number(e, "grad_norm", norm);
            lt_json_add_number(e, "learning_rate", lr);
            lt_json_add_number(e, "epoch", lt_data_epoch_float(&r->data, r->B));
            if (lt_train_args_count_tokens(a))
                cJSON_AddNumberToObject(e, "num_input_tokens_seen", (double)r->tokens_seen);
            cJSON_AddNumberToObject(e, "step", (double)r->step);
            cJSON_AddNumberToObject(e, "tokens_per_s", tps);
            if (a->fp16) {
                cJSON_AddNumberToObject(e, "loss_scale", r->loss_scale);
                cJSON_AddNumberToObject(e, "skipped_steps", (double)r->skipped);
            }
            end_bar(r);
            /* the step inside backward takes no norm (each parameter is stepped before the next gradient exists):
               no grad_norm, as the Trainer logs none without clipping; a norm that was taken prints even as nan */
            char gn[40] = "";
            if (!a->optim_in_backward) snprintf(gn, sizeof gn, "  grad_norm %.4f", norm);
            printf("step %ld/%ld  loss %.4f%s  learning_rate %.4e  epoch %.3f  tokens/s %.0f\n", r->step,
                   r->total_steps, r->loss_sum / r->loss_count, gn, lr, lt_data_epoch_float(&r->data, r->B), tps);
            log_entry(r, e);
            r->loss_sum = 0, r->loss_count = 0, r->tokens_at_log = r->tokens_seen, r->skipped = 0, r->t_last = lt_now_s();
        }
        int new_best = 0, stop_early = 0;
        if ((due & LT_EV_EVAL) && r->data.n_val_blocks > 0) {
            if (eval_and_log(r)) goto out;
            stop_early = early_stop(r);
            new_best = track_best(r);
            if (lt_sched_metric_driven(&r->sched) && lt_sched_metric_step(&r->sched, tracked_metric(r)))
                printf("step %ld/%ld  %s: learning_rate now %.4e\n", r->step, r->total_steps, a->lr_scheduler_type,
                       r->sched.lr);
        }
        if ((due & LT_EV_SAVE) || (new_best && !strcmp(a->save_strategy, "best"))) {
            if (save(r)) {
                r->err[0] = 0; /* save() printed it */
                goto out;
            }
            r->t_last = lt_now_s();
        }
        progress(r, loss);
        if (test_sig && r->step == test_step)
            for (int k = 0; k < test_count; k++) raise(test_sig);
        if (stop_early) { /* the Trainer's should_training_stop: on to the end of training from this step */
            end_bar(r);
            printf("early stopping at step %ld of %ld: %s did not improve on %.6g by more than %g in %d evaluations "
                   "(--early_stopping_patience)\n",
                   r->step, r->total_steps, r->best_metric_name, r->best_metric, a->early_stopping_threshold,
                   r->es_counter);
            break;
        }
    }
    end_bar(r);
    const double train_runtime = lt_now_s() - r->t_start;
    /* the end of a run with save_total_limit 1 and a best model: only the best checkpoint stays (the Trainer
       deletes the others, the last one included, when training ends) */
    if (a->save_total_limit == 1 && r->best_step >= 0 && strcmp(a->save_strategy, "no") &&
        lt_ckpt_keep_only(a->output_dir, r->best_step) && r->saved_step != r->best_step)
        r->saved_step = -1;
    /* --load_best_model_at_end: the best checkpoint's weights replace the last step's (the Trainer's
       _load_best_model); --do_eval then measures them */
    const int best_loaded = a->load_best_model_at_end && r->best_step >= 0 && r->best_step != r->step;
    if (best_loaded) {
        char best[1300], mp[1400];
        best_checkpoint(r, best, sizeof best);
        snprintf(mp, sizeof mp, "%s/model.safetensors", best);
        if (lt_gpt2_load(r->m, mp, r->err, sizeof r->err) ||
            (r->dev && lt_gpt2_dev_upload(r->dev, r->m, r->err, sizeof r->err)))
            goto out;
        printf("loaded the best model: %s (%s %.4f at step %ld)\n", best, r->best_metric_name, r->best_metric,
               r->best_step);
    }
    /* the final model (the best, once loaded) in output_dir itself, as run_clm's save_model leaves it, unless
       --save_strategy no asked for no files */
    if (strcmp(a->save_strategy, "no")) {
        char *args = lt_train_args_to_json(a);
        if (!args) snprintf(r->err, sizeof r->err, "out of memory writing training_args.json");
        const int not_saved =
            !args || (r->dev && !best_loaded && lt_gpt2_dev_download(r->dev, r->m, r->err, sizeof r->err)) ||
            lt_ckpt_save_model(a->output_dir, r->m, r->tok, args, r->err, sizeof r->err);
        free(args);
        if (not_saved) goto out;
        printf("saved the %s model in %s\n", best_loaded ? "best" : "final", a->output_dir);
    }
    if (write_train_results(r, train_runtime)) goto out;
    /* --do_eval: the evaluation after the last step (a run resumed at its end has not made one yet) */
    if (a->do_eval && (((r->eval_step != r->step || best_loaded) && eval_and_log(r)) || write_eval_results(r)))
        goto out;
    printf("done: %ld steps in %.1f s", r->step, lt_now_s() - r->t_start);
    if (r->train_loss_steps) printf(" (train_loss %.4f)", r->train_loss_sum / (double)r->train_loss_steps);
    printf("; peak memory (RSS) %ld MiB; ", peak_rss_mb());
    if (!strcmp(a->save_strategy, "no")) printf("no checkpoint (--save_strategy no)");
    else if (r->saved_step == r->step) printf("model in %s and %s/checkpoint-%ld", a->output_dir, a->output_dir, r->step);
    else printf("model in %s", a->output_dir);
    if (r->best_step >= 0 && strcmp(a->save_strategy, "no")) {
        /* an evaluation at a step that saved nothing (eval_steps not a divisor of save_steps) is the best without a
           checkpoint, as in the Trainer's state (best_global_step, no best_model_checkpoint) */
        char best[1300];
        if (best_checkpoint(r, best, sizeof best)) printf("; best model (%s %.4f) in %s", r->best_metric_name, r->best_metric, best);
        else printf("; best evaluation (%s %.4f) at step %ld, which saved no checkpoint", r->best_metric_name,
                    r->best_metric, r->best_step);
    }
    printf("\n");
    if (r->mem.total) {
        /* on the GPU: what the model allocated at most, plus the optimizer state and cuBLAS's workspace (as planned) */
        size_t measured = r->dev ? lt_gpt2_dev_peak_bytes(r->dev) + lt_optim_state_bytes(r->o) + r->mem.cublas
                                 : (size_t)peak_rss_mb() << 20;
        lt_mem_table_print(stdout, &r->mem, measured);
    }
    if (r->dev) { /* the forms the optimizer's tunable kernels chose by timing their first launches */
        char forms[4096], *save = NULL;
        if (lt_optim_device_tuning(r->o, forms, sizeof forms) > 0)
            for (char *line = strtok_r(forms, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                printf("kernel form: %s\n", line);
    }
    rc = 0;
out:
    /* the Trainer's retry: the whole run again with the next smaller batch, unless a checkpoint of this attempt
       (which the retry would find in output_dir) or a stop request stands in the way */
    if (rc == 1 && a->auto_find_batch_size && a->do_train && r->planned && !r->wrote_ckpt && !g_stop_sig &&
        strstr(r->err, "out of memory") && lt_auto_batch_next(r->B) > 0) {
        *oom = r->B;
        end_bar(r);
        fflush(stdout);
        fprintf(stderr, "leantrain train: batch %d ran out of memory (%s); --auto_find_batch_size retries with batch %d\n",
                r->B, r->err, lt_auto_batch_next(r->B));
        r->err[0] = 0;
    }
    if (rc && r->err[0]) {
        fprintf(stderr, "%sleantrain train: %s\n", r->bar ? "\n" : "", r->err);
        if (!strstr(r->err, "out of memory") || strstr(r->err, "--memory_limit")) {
            /* no hint: not a lack of memory, or the memory check's own message */
        } else if (a->auto_find_batch_size && r->wrote_ckpt)
            fprintf(stderr, "leantrain train: --auto_find_batch_size does not restart a run that has written "
                            "checkpoints: run the same command with --resume_from_checkpoint latest (its retries "
                            "start from the checkpoint's batch, %d)\n", r->B);
        else if (a->auto_find_batch_size && r->planned && r->B == 1)
            fprintf(stderr, "leantrain train: --auto_find_batch_size: not even batch 1 fits; `leantrain plan ... "
                            "--memory SIZE --fit` lists the methods that do\n");
        else
            fprintf(stderr, "leantrain train: the run needs more memory than it found (`leantrain plan` with the same "
                            "flags prints its memory table); --auto_find_batch_size trains with a batch that fits, "
                            "`leantrain plan ... --memory SIZE --fit` lists the methods that do\n");
    }
    if (r->jsonl) fclose(r->jsonl);
    /* a training run that failed before its first step leaves no output folder behind it (only its empty log) */
    if (rc == 1 && r->made_dir && r->step == r->first_step && !r->wrote_ckpt) {
        char lp[1300];
        snprintf(lp, sizeof lp, "%s/log.jsonl", a->output_dir);
        unlink(lp);
        rmdir(a->output_dir); /* not when anything else is in it */
    }
    cJSON_Delete(r->history);
    lt_optim_free(r->o);
    lt_gpt2_dev_free(r->dev);
    free(r->inputs), free(r->targets);
    lt_gpt2_free(r->m);
    return rc;
}

int lt_train_run(const lt_train_args *a) {
    if (a->threads > 0) omp_set_num_threads(a->threads);
    prep_t p;
    memset(&p, 0, sizeof p);
    char err[1024];
    int rc = 1;
    if (prepare(a, &p, err, sizeof err)) {
        fprintf(stderr, "leantrain train: %s\n", err);
    } else {
        int oom = 0;
        do rc = train_attempt(a, &p, oom, &oom);
        while (oom);
    }
    prep_free(&p);
    return rc;
}
