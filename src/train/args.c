/* TrainingArguments parsing: one table of flags, each with its type, field and help. */
#include "train/args.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "io/json_number.h"
#include "leantrain/optim.h"
#include "tokenizer/tokenizer.h"
#include "train/args_inert.h"
#include "train/events.h"
#include "train/memplan.h"

void lt_train_args_default(lt_train_args *a) {
    memset(a, 0, sizeof *a);
    snprintf(a->optim, sizeof a->optim, "adamw_torch_fused");
    a->learning_rate = 5e-5;
    a->weight_decay = 0.0;
    a->adam_beta1 = 0.9;
    a->adam_beta2 = 0.999;
    a->adam_epsilon = 1e-8;
    a->max_grad_norm = 1.0;
    snprintf(a->lr_scheduler_type, sizeof a->lr_scheduler_type, "linear");
    a->max_steps = -1;
    a->num_train_epochs = 3.0;
    a->per_device_train_batch_size = 8;
    a->per_device_eval_batch_size = 8;
    a->gradient_accumulation_steps = 1;
    snprintf(a->memory_limit, sizeof a->memory_limit, "auto");
    a->logging_steps = 500;
    a->eval_steps = -1; /* the Trainer: eval_steps defaults to logging_steps */
    a->save_steps = 500;
    snprintf(a->logging_strategy, sizeof a->logging_strategy, "steps");
    /* the Trainer's eval_strategy is "no"; leantrain evaluates every eval_steps unless told not to (a validation
       split always exists: validation_split_percentage) */
    snprintf(a->eval_strategy, sizeof a->eval_strategy, "steps");
    snprintf(a->save_strategy, sizeof a->save_strategy, "steps");
    a->do_train = 1;
    snprintf(a->report_to, sizeof a->report_to, "none");
    a->save_safetensors = 1;
    snprintf(a->include_num_input_tokens_seen, sizeof a->include_num_input_tokens_seen, "no");
    a->greater_is_better = -1;
    snprintf(a->output_dir, sizeof a->output_dir, "trainer_output");
    a->seed = 42;
    a->data_seed = ULLONG_MAX; /* = seed unless given */
    snprintf(a->model_preset, sizeof a->model_preset, "custom");
    a->n_layer = 4;
    a->n_embd = 128;
    a->n_head = 4;
    a->n_positions = 256;
    a->vocab_size = 0; /* custom: from the data (256 for text) */
    a->validation_split_percentage = 5.0;
    snprintf(a->data_layout, sizeof a->data_layout, "auto");
    a->keep_linebreaks = 1;
    snprintf(a->device, sizeof a->device, "auto");
    a->fp16_init_scale = 65536.0;
    a->fp16_growth_interval = 2000;
}

/* A_STEPS: a double holding an integer >= 0 or a ratio in (0, 1) of the run's steps */
typedef enum { A_STR, A_DOUBLE, A_LONG, A_INT, A_BOOL, A_U64, A_STEPS } arg_type;
typedef struct {
    const char *flag;
    arg_type type;
    size_t off, size;
    const char *help;
} arg_def;

#define S(f) offsetof(lt_train_args, f), sizeof(((lt_train_args *)0)->f)
static const arg_def ARGS[] = {
    {"optim", A_STR, S(optim), "optimizer name (see `leantrain optimizers`) [adamw_torch_fused]"},
    {"optim_args", A_STR, S(optim_args), "optimizer options k=v,k=v []"},
    {"learning_rate", A_DOUBLE, S(learning_rate), "peak learning rate [5e-5]"},
    {"weight_decay", A_DOUBLE, S(weight_decay), "decay of weights (not biases, LayerNorm weights) [0]"},
    {"adam_beta1", A_DOUBLE, S(adam_beta1), "[0.9]"},
    {"adam_beta2", A_DOUBLE, S(adam_beta2), "[0.999]"},
    {"adam_epsilon", A_DOUBLE, S(adam_epsilon), "[1e-8]"},
    {"max_grad_norm", A_DOUBLE, S(max_grad_norm), "clip the global gradient norm; 0 disables [1.0]"},
    {"neftune_noise_alpha", A_DOUBLE, S(neftune_noise_alpha), "NEFTune: uniform noise of magnitude alpha / sqrt(block_size x n_embd) on the token embeddings of training steps (the Trainer's; the paper's alphas are 5 to 15) [0: none]"},
    {"label_smoothing_factor", A_DOUBLE, S(label_smoothing_factor), "label smoothing of the loss, training and evaluation (the Trainer's LabelSmoother: (1 - f) x cross-entropy + f x the mean over the vocabulary of -log p); in [0, 1] [0]"},
    {"lr_scheduler_type", A_STR, S(lr_scheduler_type), "linear, cosine, constant, ... [linear]"},
    {"lr_scheduler_kwargs", A_STR, S(lr_scheduler_kwargs), "scheduler options: k=v,k=v or a JSON object (the Trainer's form) []"},
    {"warmup_steps", A_STEPS, S(warmup_steps), "warmup steps, or a ratio in (0, 1) of the steps [0]"},
    {"warmup_ratio", A_DOUBLE, S(warmup_ratio), "warmup as a fraction of the steps, if warmup_steps is 0 [0]"},
    {"max_steps", A_LONG, S(max_steps), "optimizer steps; -1: from num_train_epochs [-1]"},
    {"num_train_epochs", A_DOUBLE, S(num_train_epochs), "[3]"},
    {"per_device_train_batch_size", A_INT, S(per_device_train_batch_size), "sequences per micro-batch [8]"},
    {"auto_find_batch_size", A_BOOL, S(auto_find_batch_size), "train with the first of per_device_train_batch_size, x0.9, x0.9, ... (the Trainer's sequence) whose memory plan fits in --memory_limit (no trial runs; with --memory_limit none the batch given); a run that still runs out of memory starts again with the next size, unless it has written a checkpoint. Without it a run whose plan does not fit stops before it allocates"},
    {"memory_limit", A_STR, S(memory_limit), "memory the run may use: auto (the GPU's free memory less 512 MiB for the kernels' modules; on the CPU the host's available memory, or what its cgroup or ulimit -v leaves), a size (20GB, 512MiB), or none (no check) [auto]"},
    {"per_device_eval_batch_size", A_INT, S(per_device_eval_batch_size), "validation sequences per batch (the unit of eval_max_batches); the forward takes at most per_device_train_batch_size of them at a time, so evaluation needs no memory beyond training's [8]"},
    {"gradient_accumulation_steps", A_INT, S(gradient_accumulation_steps), "micro-batches per step [1]"},
    {"logging_strategy", A_STR, S(logging_strategy),
     "no, steps (every logging_steps and the last step) or epoch (each epoch's last step) [steps]"},
    {"logging_steps", A_STEPS, S(logging_steps), "steps between log lines, or a ratio in (0, 1) of the steps [500]"},
    {"logging_first_step", A_BOOL, S(logging_first_step), "also log step 1"},
    {"eval_strategy", A_STR, S(eval_strategy),
     "no, steps (every eval_steps and the last step) or epoch; the Trainer's default is no [steps]"},
    {"evaluation_strategy", A_STR, S(eval_strategy), "the old name of --eval_strategy"},
    {"eval_steps", A_STEPS, S(eval_steps),
     "evaluate every N steps (or a ratio in (0, 1) of the steps); default: logging_steps; 0: never"},
    {"eval_on_start", A_BOOL, S(eval_on_start), "evaluate before the first step (each start, resumes too)"},
    {"eval_delay", A_DOUBLE, S(eval_delay),
     "no evaluation before this step (eval_strategy steps) or epoch (epoch); the --do_eval one is not delayed [0]"},
    {"eval_max_batches", A_LONG, S(eval_max_batches), "cap on validation batches per evaluation; 0: all [0]"},
    {"prediction_loss_only", A_BOOL, S(prediction_loss_only),
     "evaluation measures the loss (and perplexity) only, no eval_accuracy, as the Trainer's [false]"},
    {"do_train", A_BOOL, S(do_train), "train (run_clm's flag); false with --do_eval: only evaluate [true]"},
    {"do_eval", A_BOOL, S(do_eval),
     "evaluate after the last step whatever eval_strategy says, and write output_dir/eval_results.json"},
    {"include_num_input_tokens_seen", A_STR, S(include_num_input_tokens_seen), "no, all or non_padding (the same: blocks have no padding), true (all) or false: each log entry and trainer_state.json carry num_input_tokens_seen [no]"},
    {"report_to", A_STR, S(report_to), "none or all: leantrain has no integrations; its log is output_dir/log.jsonl [none]"},
    {"disable_tqdm", A_BOOL, S(disable_tqdm), "no progress bar (shown only on a terminal) [false]"},
    {"save_safetensors", A_BOOL, S(save_safetensors), "every file leantrain writes is safetensors: only true [true]"},
    {"save_steps", A_STEPS, S(save_steps),
     "checkpoint every N steps (or a ratio in (0, 1) of the steps); 0: only at the end [500]"},
    {"save_total_limit", A_INT, S(save_total_limit), "keep the newest N checkpoints; 0: all [0]"},
    {"save_only_model", A_BOOL, S(save_only_model),
     "checkpoints without the optimizer state (a third of AdamW's size): they load as models, never resume"},
    {"save_strategy", A_STR, S(save_strategy),
     "steps: every save_steps and at the end; epoch: each epoch's last step; best: at each new best evaluation; "
     "no: no checkpoint at all [steps]"},
    {"metric_for_best_model", A_STR, S(metric_for_best_model),
     "loss, perplexity or accuracy (eval_ prefix optional): the best model's measure [loss when a best model is "
     "tracked]"},
    {"early_stopping_patience", A_INT, S(early_stopping_patience), "stop training after this many evaluations in a row whose metric (--metric_for_best_model) did not improve on the best by more than --early_stopping_threshold (transformers' EarlyStoppingCallback) [0: off]"},
    {"early_stopping_threshold", A_DOUBLE, S(early_stopping_threshold), "the improvement --early_stopping_patience counts as one [0.0]"},
    {"greater_is_better", A_BOOL, S(greater_is_better),
     "the best model has the larger metric [true for accuracy, false for loss and perplexity]"},
    {"load_best_model_at_end", A_BOOL, S(load_best_model_at_end),
     "at the end, load the best checkpoint's weights (save and eval strategies must match, or save_strategy best); "
     "save_total_limit never deletes the best checkpoint"},
    {"output_dir", A_STR, S(output_dir), "[trainer_output]"},
    {"overwrite_output_dir", A_BOOL, S(overwrite_output_dir), "train into an output_dir that has checkpoints"},
    {"resume_from_checkpoint", A_STR, S(resume_from_checkpoint), "a checkpoint directory, or latest"},
    {"seed", A_U64, S(seed), "the initialisation, the dropout masks and (unless --data_seed) the data order [42]"},
    {"data_seed", A_U64, S(data_seed), "the order of the training blocks: the Trainer's torch.randperm from data_seed + epoch [--seed]"},
    {"gradient_checkpointing", A_BOOL, S(gradient_checkpointing), "keep only block inputs; recompute in backward"},
    {"gradient_checkpointing_kwargs", A_STR, S(gradient_checkpointing_kwargs), "the Trainer's JSON object for torch.utils.checkpoint: only use_reentrant (true or false), accepted and without effect (no autograd here: a block's backward recomputes its forward either way) []"},
    {"optim_in_backward", A_BOOL, S(optim_in_backward),
     "step each parameter as soon as its gradient is final (needs --max_grad_norm 0, accumulation 1)"},
    {"bf16", A_BOOL, S(bf16),
     "mixed precision: bf16 matrix multiplies and stored activations, fp32 master weights (on a CPU with bf16 "
     "instructions the products run on them through oneDNN; LT_CPU_BF16_GEMM=0: sgemm)"},
    {"fp16", A_BOOL, S(fp16),
     "mixed precision in IEEE half with dynamic loss scaling (65536; x2 after 2000 clean steps; x0.5 and the "
     "step skipped on inf/NaN)"},
    {"fp16_init_scale", A_DOUBLE, S(fp16_init_scale), "--fp16: the first loss scale (GradScaler's init_scale) [65536]"},
    {"fp16_growth_interval", A_LONG, S(fp16_growth_interval),
     "--fp16: clean steps before the loss scale doubles (GradScaler's growth_interval) [2000]"},
    {"pure_bf16", A_BOOL, S(pure_bf16),
     "bf16 compute and parameters kept only in bf16 (no fp32 master); pair with --optim_args "
     "bf16_stochastic_round=True or --optim adamw_anyprecision (Kahan summation)"},
    {"tf32", A_BOOL, S(tf32),
     "--device cuda, fp32 compute: matrix multiplies take TF32 inputs (10-bit mantissa) on the tensor cores, fp32 "
     "sums; needs an Ampere or newer GPU [off]"},
    {"model_name_or_path", A_STR, S(model_name_or_path), "folder with config.json and model.safetensors"},
    {"tokenizer_name_or_path", A_STR, S(tokenizer_name_or_path),
     "GPT-2 tokenizer for text files: a folder (encoder.json + vocab.bpe, vocab.json + merges.txt or "
     "tokenizer.json) or gpt2; default: the one in model_name_or_path, if any; none: text is bytes"},
    {"tokenizer_name", A_STR, S(tokenizer_name_or_path), "run_clm's name of --tokenizer_name_or_path"},
    {"model", A_STR, S(model_preset), "gpt2, gpt2-medium, gpt2-large, gpt2-xl or custom [custom]"},
    {"config_name", A_STR, S(config_name),
     "run_clm's: train from scratch with this config: a preset name (openai-community/ allowed) or a config.json "
     "or its folder []"},
    {"model_type", A_STR, S(model_type),
     "run_clm's: gpt2 alone trains GPT2Config() from scratch (the gpt2 preset's size, dropout 0.1) []"},
    {"config_overrides", A_STR, S(config_overrides),
     "the model config's dropout, as run_clm's flag: embd_pdrop=P,resid_pdrop=P,attn_pdrop=P (training only; "
     "a preset or custom model has none, a config.json gives its own, GPT2Config's 0.1 where absent) []"},
    {"n_layer", A_INT, S(n_layer), "custom model [4]"},
    {"n_embd", A_INT, S(n_embd), "custom model [128]"},
    {"n_head", A_INT, S(n_head), "custom model [4]"},
    {"n_positions", A_INT, S(n_positions), "custom model [256]"},
    {"vocab_size", A_INT, S(vocab_size), "custom model; 0: 256 for text, 50257 for token files [0]"},
    {"train_file", A_STR, S(train_file), "UTF-8 text (tokenized, or read as bytes without a tokenizer) or an llm.c token file"},
    {"validation_file", A_STR, S(validation_file), "default: validation_split_percentage of train_file (run_clm's layout: its first lines; the stream layout: its last tokens)"},
    {"validation_split_percentage", A_DOUBLE, S(validation_split_percentage), "[5]"},
    {"block_size", A_INT, S(block_size), "tokens per block (run_clm's layout: a block predicts block_size - 1 of them); 0: run_clm's default min(1024, n_positions) in its layout, n_positions in the stream layout [0]"},
    {"data_layout", A_STR, S(data_layout), "run_clm: a text's lines tokenized one by one, the first validation_split_percentage of the lines held out, blocks grouped per 1000 lines (run_clm's numbers); stream: one token stream, its last tokens held out, blocks of block_size + 1 tokens (llm.c's); auto: run_clm for text, stream for llm.c token files [auto]"},
    {"keep_linebreaks", A_BOOL, S(keep_linebreaks), "run_clm's: each line is tokenized with its line break; false: without it (run_clm's layout only) [true]"},
    {"dataloader_drop_last", A_BOOL, S(dataloader_drop_last), "the Trainer's: in run_clm's layout an epoch's last batch, short when the blocks do not fill it, is left out (false: it is run short, and the epoch's last step ends with it); the stream layout's batches are always whole [false]"},
    {"preprocessing_num_workers", A_INT, S(preprocessing_num_workers), "run_clm's: with N, its grouping of blocks per 1000 lines restarts in each of N equal runs of the lines (as datasets' map with num_proc N does); tokenization runs on --threads [0: one]"},
    {"max_train_samples", A_LONG, S(max_train_samples), "train on the first N blocks of the training split; 0: all [0]"},
    {"max_eval_samples", A_LONG, S(max_eval_samples), "evaluate on the first N blocks of the validation split; 0: all [0]"},
    {"threads", A_INT, S(threads), "OpenMP threads; 0: all cores [0]"},
    {"device", A_STR, S(device), "cpu, cuda, or auto: cuda when a GPU is present [auto]"},
    {"use_cpu", A_BOOL, S(use_cpu), "the Trainer's name of --device cpu [false]"},
    {"run_name", A_STR, S(run_name), "a name for the run, recorded in training_args.json [output_dir]"},
};
#undef S
#define NARGS (sizeof ARGS / sizeof ARGS[0])

lt_data_layout lt_train_args_data_layout(const lt_train_args *a, int token_file) {
    if (!strcmp(a->data_layout, "run_clm")) return LT_DATA_RUN_CLM;
    if (!strcmp(a->data_layout, "stream")) return LT_DATA_STREAM;
    return token_file ? LT_DATA_STREAM : LT_DATA_RUN_CLM;
}

const char *lt_train_args_tokenizer_path(const lt_train_args *a, const char *resume) {
    if (!strcmp(a->tokenizer_name_or_path, "none")) return NULL;
    if (a->tokenizer_name_or_path[0]) return a->tokenizer_name_or_path;
    if (resume && resume[0] && lt_tokenizer_present(resume)) return resume;
    return lt_tokenizer_present(a->model_name_or_path) ? a->model_name_or_path : NULL;
}

int lt_train_data_vocab(int token_file, size_t tok_vocab) {
    return token_file ? 50257 : tok_vocab > 0 ? (int)tok_vocab : 256;
}

int lt_train_args_block_size(const lt_train_args *a, int n_positions, lt_data_layout layout) {
    if (a->block_size > 0) return a->block_size;
    return layout == LT_DATA_RUN_CLM && n_positions > 1024 ? 1024 : n_positions;
}

int lt_train_args_on_gpu(const lt_train_args *a) {
    if (!strcmp(a->device, "cuda")) return 1;
    return !strcmp(a->device, "auto") && lt_cuda_device_count() > 0;
}

void lt_train_args_usage(void *file) {
    FILE *f = file;
    fprintf(f, "usage: leantrain train [FLAGS.json] [--flag value ...]\n"
               "  FLAGS.json: a JSON object of flags and values (a checkpoint's training_args.json), read first\n");
    for (size_t i = 0; i < NARGS; i++) fprintf(f, "  --%-30s %s\n", ARGS[i].flag, ARGS[i].help);
    fprintf(f, "The Trainer's flags without an effect here (one process on one device, no data loader workers, no Hub,\n"
               "no predictions kept) are taken, and refused with the reason where their value asks for something\n"
               "leantrain does not do (--push_to_hub true, --deepspeed, --torch_compile true, ...):\n  %s\n",
            lt_train_arg_inert_names());
    fprintf(f, "Ctrl-C, SIGTERM or SIGHUP: the run stops after the step in progress with a checkpoint of it (exit 128 +\n"
               "the signal); the same command with --resume_from_checkpoint latest continues it exactly. A second\n"
               "signal quits at once.\n");
}

static lt_status set_value(lt_train_args *a, const arg_def *d, const char *v, char *err, size_t errlen) {
    void *field = (char *)a + d->off;
    char *end;
    errno = 0;
    switch (d->type) {
    case A_STR:
        if (strlen(v) >= d->size) {
            snprintf(err, errlen, "--%s: value is longer than %zu characters", d->flag, d->size - 1);
            return LT_ERR_ARG;
        }
        memcpy(field, v, strlen(v) + 1);
        return LT_OK;
    case A_DOUBLE: {
        double x = strtod(v, &end);
        if (!*v || *end || errno || !isfinite(x)) break;
        *(double *)field = x;
        return LT_OK;
    }
    case A_LONG:
    case A_INT: {
        long x = strtol(v, &end, 10);
        if (!*v || *end || errno || (d->type == A_INT && (x > 2147483647L || x < -2147483647L))) break;
        if (d->type == A_LONG) *(long *)field = x;
        else *(int *)field = (int)x;
        return LT_OK;
    }
    case A_U64: {
        unsigned long long x = strtoull(v, &end, 10);
        if (!*v || *end || errno || *v == '-') break;
        *(unsigned long long *)field = x;
        return LT_OK;
    }
    case A_STEPS: {
        double x = strtod(v, &end);
        if (!*v || *end || errno || !(x >= 0 && x <= LT_MAX_RUN_STEPS) || (x >= 1 && x != floor(x))) break;
        *(double *)field = x;
        return LT_OK;
    }
    case A_BOOL:
        if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "1")) *(int *)field = 1;
        else if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "0")) *(int *)field = 0;
        else break;
        return LT_OK;
    }
    static const char *what[] = {"a string", "a number", "an integer", "an integer", "true or false",
                                 "a non-negative integer",
                                 "a whole number of steps, or a ratio in (0, 1) of the run's steps"};
    snprintf(err, errlen, "--%s: bad value '%s': expected %s", d->flag, v, what[d->type]);
    return LT_ERR_ARG;
}

static const arg_def *find_arg(const char *name) {
    for (size_t k = 0; k < NARGS; k++)
        if (!strcmp(ARGS[k].flag, name)) return &ARGS[k];
    return NULL;
}

/* An entry whose field an earlier entry already names (evaluation_strategy, tokenizer_name) */
static int is_alias(size_t k) {
    for (size_t i = 0; i < k; i++)
        if (ARGS[i].off == ARGS[k].off) return 1;
    return 0;
}

char *lt_train_args_to_json(const lt_train_args *a) {
    cJSON *j = cJSON_CreateObject();
    int ok = j != NULL;
    for (size_t k = 0; ok && k < NARGS; k++) {
        const arg_def *d = &ARGS[k];
        const void *field = (const char *)a + d->off;
        if (is_alias(k)) continue;
        cJSON *v = NULL;
        /* how this run started is not the run: the file run again from another output_dir must not look for
           "latest" there */
        if (d->off == offsetof(lt_train_args, resume_from_checkpoint)) field = "";
        switch (d->type) {
        case A_STR: v = cJSON_CreateString(field); break;
        case A_DOUBLE: /* numbers as lt_json_number writes them: cJSON's own printing may drop their last bits */
        case A_STEPS: v = lt_json_number(*(const double *)field); break;
        case A_LONG: { /* past 2^53 (a count nobody means, but accepted) as a decimal string, as the seeds */
            const long x = *(const long *)field;
            char text[24];
            snprintf(text, sizeof text, "%ld", x);
            v = x <= (1l << 53) && x >= -(1l << 53) ? lt_json_number((double)x) : cJSON_CreateString(text);
            break;
        }
        case A_INT: v = lt_json_number(*(const int *)field); break;
        case A_BOOL: v = *(const int *)field < 0 ? cJSON_CreateNull() : cJSON_CreateBool(*(const int *)field); break;
        case A_U64: {
            const unsigned long long x = *(const unsigned long long *)field;
            char text[24];
            snprintf(text, sizeof text, "%llu", x);
            v = x <= (1ull << 53) ? lt_json_number((double)x) : cJSON_CreateString(text);
            break;
        }
        }
        ok = v && cJSON_AddItemToObject(j, d->flag, v);
        if (!ok) cJSON_Delete(v);
    }
    char *text = ok ? cJSON_Print(j) : NULL;
    cJSON_Delete(j);
    return text;
}

/* A flag's value from training_args.json as a user writes it: a number in its shortest exact form */
static void value_text(const cJSON *v, char *out, size_t n) {
    if (cJSON_IsNumber(v)) lt_double_shortest(out, n, v->valuedouble);
    else if (cJSON_IsString(v)) snprintf(out, n, "%s", v->valuestring);
    else if (cJSON_IsBool(v)) snprintf(out, n, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsNull(v)) snprintf(out, n, "unset");
    else snprintf(out, n, "?");
}

int lt_train_args_changed(const char *before, const lt_train_args *a, char *out, size_t outlen) {
    char *now_text = lt_train_args_to_json(a);
    cJSON *old = cJSON_Parse(before), *now = now_text ? cJSON_Parse(now_text) : NULL;
    free(now_text);
    int count = -1;
    if (cJSON_IsObject(old) && now) {
        count = 0;
        size_t len = 0;
        out[0] = 0;
        for (const cJSON *e = now->child; e; e = e->next) {
            const cJSON *o = cJSON_GetObjectItemCaseSensitive(old, e->string);
            if (!o || !strcmp(e->string, "resume_from_checkpoint") || !strcmp(e->string, "overwrite_output_dir"))
                continue;
            const int same = cJSON_IsNumber(e) && cJSON_IsNumber(o)   ? e->valuedouble == o->valuedouble
                             : cJSON_IsString(e) && cJSON_IsString(o) ? !strcmp(e->valuestring, o->valuestring)
                                                                      : (e->type & 0xff) == (o->type & 0xff);
            if (same) continue;
            char v1[600], v0[600];
            value_text(e, v1, sizeof v1);
            value_text(o, v0, sizeof v0);
            if (len < outlen) len += (size_t)snprintf(out + len, outlen - len, "%s--%s %s (was %s)", count ? ", " : "",
                                                      e->string, v1, v0);
            count++;
        }
    }
    cJSON_Delete(old);
    cJSON_Delete(now);
    return count;
}

/* err = "path: " + err */
static void prefix_path(char *err, size_t errlen, const char *path) {
    char msg[768];
    snprintf(msg, sizeof msg, "%s", err);
    snprintf(err, errlen, "%s: %s", path, msg);
}

/* The flags of JSON file `path` into a (lt_train_args_from_json) */
static lt_status load_json(lt_train_args *a, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open the flags file: %s", path, strerror(errno));
        return LT_ERR_ARG;
    }
    enum { MAX_BYTES = 1 << 20 };
    char *text = malloc(MAX_BYTES + 1);
    size_t n = text ? fread(text, 1, MAX_BYTES + 1, f) : 0;
    const int failed = ferror(f);
    fclose(f);
    if (!text || failed || n > MAX_BYTES) {
        snprintf(err, errlen, "%s: %s", path,
                 !text    ? "out of memory"
                 : failed ? "cannot read the flags file"
                          : "a flags file of over 1 MiB: expected training_args.json's object of flags");
        free(text);
        return LT_ERR_ARG;
    }
    text[n] = 0;
    lt_status st = lt_train_args_from_json(a, text, path, err, errlen);
    free(text);
    return st;
}

lt_status lt_train_args_from_json(lt_train_args *a, const char *text, const char *path, char *err, size_t errlen) {
    cJSON *j = cJSON_ParseWithOpts(text, NULL, 1); /* the whole text: nothing after the object */
    lt_status st = LT_OK;
    if (!cJSON_IsObject(j)) {
        snprintf(err, errlen, "%s: not a JSON object of flags and values (training_args.json's form)", path);
        st = LT_ERR_ARG;
    }
    for (const cJSON *e = j ? j->child : NULL; !st && e; e = e->next) {
        const arg_def *d = find_arg(e->string);
        char num[40], *printed = NULL;
        const char *v = NULL;
        if (!d) { /* one of the Trainer's flags without effect here (any value as its text), or unknown */
            int k = 1;
            if (cJSON_IsNull(e)) k = lt_train_arg_inert(e->string, "", err, errlen) > 0;
            else if (cJSON_IsString(e)) k = lt_train_arg_inert(e->string, e->valuestring, err, errlen);
            else if (cJSON_IsBool(e)) k = lt_train_arg_inert(e->string, cJSON_IsTrue(e) ? "true" : "false", err, errlen);
            else if (cJSON_IsNumber(e))
                k = lt_train_arg_inert(e->string, (snprintf(num, sizeof num, "%.17g", e->valuedouble), num), err,
                                       errlen);
            else if ((printed = cJSON_PrintUnformatted(e)) != NULL)
                k = lt_train_arg_inert(e->string, printed, err, errlen);
            cJSON_free(printed);
            if (k == 0) continue;
            if (k > 0) snprintf(err, errlen, "%s: unknown flag \"%s\" (see leantrain train --help)", path, e->string);
            else prefix_path(err, errlen, path);
            st = LT_ERR_ARG;
            break;
        }
        if (cJSON_IsNull(e) || (cJSON_IsArray(e) && !e->child)) continue; /* the default (an empty report_to list) */
        if (cJSON_IsString(e)) v = e->valuestring;
        else if (cJSON_IsBool(e)) v = cJSON_IsTrue(e) ? "true" : "false";
        else if (cJSON_IsNumber(e)) snprintf(num, sizeof num, "%.17g", e->valuedouble), v = num;
        else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 1 && cJSON_IsString(e->child))
            v = e->child->valuestring; /* the Trainer writes report_to as a list */
        else if (cJSON_IsObject(e)) v = printed = cJSON_PrintUnformatted(e); /* the *_kwargs objects */
        if (!v) {
            snprintf(err, errlen, "%s: \"%s\": expected a string, a number, true, false or null", path, e->string);
            st = LT_ERR_ARG;
        } else if (set_value(a, d, v, err, errlen)) {
            prefix_path(err, errlen, path);
            st = LT_ERR_ARG;
        }
        cJSON_free(printed);
    }
    cJSON_Delete(j);
    return st;
}

static int ends_with(const char *s, const char *tail) {
    const size_t n = strlen(s), t = strlen(tail);
    return n >= t && !strcmp(s + n - t, tail);
}

lt_status lt_train_args_parse(lt_train_args *a, int argc, char **argv, char *err, size_t errlen) {
    int first = 0;
    if (argc > 0 && strncmp(argv[0], "--", 2) && ends_with(argv[0], ".json")) {
        if (load_json(a, argv[0], err, errlen)) return LT_ERR_ARG;
        first = 1;
    }
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2)) {
            snprintf(err, errlen,
                     "unexpected argument '%s': flags start with -- (a JSON file of flags may come first; see "
                     "leantrain train --help)", arg);
            return LT_ERR_ARG;
        }
        char name[64];
        const char *eq = strchr(arg + 2, '='), *val = NULL;
        size_t nlen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (nlen >= sizeof name) nlen = sizeof name - 1;
        memcpy(name, arg + 2, nlen);
        name[nlen] = 0;
        const arg_def *d = find_arg(name);
        if (!d && lt_train_arg_inert_bool(name) && !eq && (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2))) {
            if (lt_train_arg_inert(name, "true", err, errlen)) return LT_ERR_ARG; /* a boolean given alone */
            continue;
        }
        if (!d && (eq || i + 1 < argc)) { /* one of the Trainer's flags without effect here, or unknown */
            const int k = lt_train_arg_inert(name, eq ? eq + 1 : argv[i + 1], err, errlen);
            if (k < 0) return LT_ERR_ARG;
            if (k == 0) {
                i += !eq;
                continue;
            }
        }
        if (!d) {
            const int inert = lt_train_arg_inert(name, "", err, errlen) <= 0;
            snprintf(err, errlen, inert ? "--%s needs a value" : "unknown flag --%s (see leantrain train --help)", name);
            return LT_ERR_ARG;
        }
        if (eq) {
            val = eq + 1;
        } else if (d->type == A_BOOL && (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2))) {
            val = "true";
        } else {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--%s needs a value", name);
                return LT_ERR_ARG;
            }
            val = argv[++i];
        }
        if (set_value(a, d, val, err, errlen)) return LT_ERR_ARG;
    }
    return lt_train_args_finish(a, err, errlen);
}

lt_status lt_train_args_finish(lt_train_args *a, char *err, size_t errlen) {
    if (a->eval_steps < 0) a->eval_steps = a->logging_steps;
    if (a->data_seed == ULLONG_MAX) a->data_seed = a->seed;
    if (a->use_cpu && !strcmp(a->device, "cuda")) {
        snprintf(err, errlen, "--use_cpu and --device cuda ask for different devices: pass one of them");
        return LT_ERR_ARG;
    }
    if (a->use_cpu) { /* resolved into --device: a flags file written by this run may be run again on a GPU */
        snprintf(a->device, sizeof a->device, "cpu");
        a->use_cpu = 0;
    }
    if (!a->run_name[0]) snprintf(a->run_name, sizeof a->run_name, "%.255s", a->output_dir);
    return lt_train_args_check(a, err, errlen);
}

/* whether the custom size flags are at their defaults */
static int custom_size_default(const lt_train_args *a) {
    lt_train_args d;
    lt_train_args_default(&d);
    return a->n_layer == d.n_layer && a->n_embd == d.n_embd && a->n_head == d.n_head &&
           a->n_positions == d.n_positions && a->vocab_size == d.vocab_size;
}

lt_status lt_train_args_scratch_config(const lt_train_args *a, int data_vocab, lt_gpt2_config *cfg, char *err,
                                       size_t errlen) {
    char e[1024];
    if (a->config_name[0]) {
        const char *name = a->config_name;
        if (!strncmp(name, "openai-community/", 17)) name += 17;
        if (lt_gpt2_config_preset(name, cfg, e, sizeof e) == LT_OK) { /* the Hub's config.json of that name */
            cfg->embd_pdrop = cfg->resid_pdrop = cfg->attn_pdrop = 0.1;
            return LT_OK;
        }
        char path[600];
        struct stat sb;
        if (stat(a->config_name, &sb) != 0) {
            snprintf(err, errlen, "--config_name %.400s: neither a GPT-2 preset (gpt2, gpt2-medium, gpt2-large, "
                     "gpt2-xl) nor a config.json or a folder holding one", a->config_name);
            return LT_ERR_ARG;
        }
        snprintf(path, sizeof path, S_ISDIR(sb.st_mode) ? "%.500s/config.json" : "%.500s", a->config_name);
        lt_status st = lt_gpt2_config_load(path, cfg, e, sizeof e);
        if (st) snprintf(err, errlen, "--config_name: %s", e);
        return st;
    }
    if (strcmp(a->model_preset, "custom") || a->model_type[0]) {
        const lt_status st = lt_gpt2_config_preset(a->model_type[0] ? "gpt2" : a->model_preset, cfg, e, sizeof e);
        if (st) snprintf(err, errlen, "--model: %s", e);
        if (a->model_type[0]) cfg->embd_pdrop = cfg->resid_pdrop = cfg->attn_pdrop = 0.1; /* GPT2Config()'s */
        return st;
    }
    *cfg = (lt_gpt2_config){.vocab_size = a->vocab_size > 0 ? a->vocab_size : data_vocab, .n_positions = a->n_positions,
                            .n_embd = a->n_embd, .n_layer = a->n_layer, .n_head = a->n_head,
                            .layer_norm_epsilon = 1e-5};
    return lt_gpt2_config_check(cfg, err, errlen);
}

lt_status lt_train_config_overrides(const char *overrides, lt_gpt2_config *cfg, char *err, size_t errlen) {
    lt_gpt2_config c = *cfg;
    const char *s = overrides;
    while (*s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        char item[256], *eq, *stop;
        snprintf(item, sizeof item, "%.*s", (int)(len < sizeof item ? len : sizeof item - 1), s);
        double v = 0;
        if (!(eq = strchr(item, '='))) {
            snprintf(err, errlen, "--config_overrides: '%s' is not key=value", item);
            return LT_ERR_ARG;
        }
        *eq = 0;
        errno = 0;
        v = strtod(eq + 1, &stop);
        double *field = !strcmp(item, "embd_pdrop")    ? &c.embd_pdrop
                        : !strcmp(item, "resid_pdrop") ? &c.resid_pdrop
                        : !strcmp(item, "attn_pdrop")  ? &c.attn_pdrop
                                                       : NULL;
        if (!field) {
            snprintf(err, errlen,
                     "--config_overrides: '%s' cannot be overridden (embd_pdrop, resid_pdrop, attn_pdrop can; the "
                     "model's shape has its own flags)", item);
            return LT_ERR_ARG;
        }
        if (stop == eq + 1 || *stop || errno || !(v >= 0.0 && v < 1.0)) {
            snprintf(err, errlen, "--config_overrides: %s=%s: expected a dropout probability, 0 <= p < 1", item,
                     eq + 1);
            return LT_ERR_ARG;
        }
        *field = v;
        s = end ? end + 1 : s + len;
    }
    *cfg = c;
    return LT_OK;
}

const char *lt_train_args_best_metric(const lt_train_args *a) {
    const char *m = a->metric_for_best_model;
    if (!m[0])
        return a->load_best_model_at_end || !strcmp(a->save_strategy, "best") ||
                       !strcmp(a->lr_scheduler_type, "reduce_lr_on_plateau") || !strcmp(a->lr_scheduler_type, "greedy")
                   ? "eval_loss"
                   : NULL;
    if (!strncmp(m, "eval_", 5)) m += 5;
    return !strcmp(m, "loss")         ? "eval_loss"
           : !strcmp(m, "perplexity") ? "eval_perplexity"
           : !strcmp(m, "accuracy")   ? "eval_accuracy"
                                      : NULL;
}

int lt_train_args_greater_is_better(const lt_train_args *a) {
    if (a->greater_is_better >= 0) return a->greater_is_better > 0;
    const char *m = lt_train_args_best_metric(a);
    return m && !strcmp(m, "eval_accuracy");
}

int lt_train_args_count_tokens(const lt_train_args *a) {
    const char *v = a->include_num_input_tokens_seen;
    return !strcmp(v, "all") || !strcmp(v, "non_padding") || !strcmp(v, "true") || !strcmp(v, "True");
}

/* save_steps a multiple of eval_steps, as the Trainer checks it: whole numbers, or ratios in millionths */
static int steps_multiple(double save, double eval) {
    if (save >= 1 && eval >= 1) return eval > 0 && fmod(save, eval) == 0;
    if (save >= 1 || eval >= 1) return 0;
    const long s = lround(save * 1e6), e = lround(eval * 1e6);
    return e > 0 && s % e == 0;
}

/* --gradient_checkpointing_kwargs: empty or a JSON object of use_reentrant alone (a boolean). torch's reentrant
 * and non-reentrant checkpointing differ in how autograd reruns a block, not in what it computes; here a block's
 * backward recomputes its forward either way. Any other key is an error, not silently dropped. */
static int checkpoint_kwargs_check(const char *text, char *err, size_t errlen) {
    if (!text[0]) return 0;
    cJSON *o = cJSON_Parse(text);
    int bad = !o || !cJSON_IsObject(o);
    const cJSON *k = NULL;
    if (!bad)
        cJSON_ArrayForEach(k, o) if (strcmp(k->string, "use_reentrant") || !cJSON_IsBool(k)) {
            bad = 1;
            break;
        }
    const char *why = !k                               ? ""
                      : strcmp(k->string, "use_reentrant") ? " (no other key: torch.utils.checkpoint's other options "
                                                             "have no counterpart here)"
                                                           : " (use_reentrant is true or false)";
    if (bad)
        snprintf(err, errlen,
                 "--gradient_checkpointing_kwargs %s: expected a JSON object with use_reentrant alone, such as "
                 "'{\"use_reentrant\": false}'%s",
                 text, why);
    cJSON_Delete(o);
    return bad;
}

lt_status lt_train_args_check(const lt_train_args *a, char *err, size_t errlen) {
    const struct {
        int bad;
        const char *msg;
    } checks[] = {
        {a->per_device_train_batch_size < 1, "--per_device_train_batch_size must be >= 1"},
        {a->per_device_eval_batch_size < 1, "--per_device_eval_batch_size must be >= 1"},
        {strcmp(a->memory_limit, "auto") && strcmp(a->memory_limit, "none") && !lt_parse_bytes(a->memory_limit),
         "--memory_limit must be auto, none or a size such as 20GB or 512MiB"},
        {a->gradient_accumulation_steps < 1, "--gradient_accumulation_steps must be >= 1"},
        {a->max_steps == 0 || a->max_steps < -1, "--max_steps must be >= 1, or -1 to use --num_train_epochs"},
        {a->max_steps < 0 && !(a->num_train_epochs > 0), "--num_train_epochs must be > 0"},
        {a->learning_rate < 0, "--learning_rate must be >= 0"},
        {a->max_grad_norm < 0, "--max_grad_norm must be >= 0 (0 disables clipping)"},
        {!(a->neftune_noise_alpha >= 0), "--neftune_noise_alpha must be >= 0 (0: none)"},
        {!(a->label_smoothing_factor >= 0 && a->label_smoothing_factor <= 1),
         "--label_smoothing_factor must be in [0, 1] (0: none; the Trainer's usual value is 0.1)"},
        {a->warmup_ratio < 0 || a->warmup_ratio > 1, "--warmup_ratio must be in [0, 1]"},
        {!(a->logging_steps > 0), "--logging_steps must be > 0 (a number of steps, or a ratio in (0, 1) of them)"},
        {lt_every_parse(a->logging_strategy) < 0, "--logging_strategy must be no, steps or epoch"},
        {lt_every_parse(a->eval_strategy) < 0, "--eval_strategy must be no, steps or epoch"},
        {lt_every_parse(a->save_strategy) < 0 && strcmp(a->save_strategy, "best"),
         "--save_strategy must be no, steps, epoch or best"},
        {a->prediction_loss_only && lt_train_args_best_metric(a) &&
             !strcmp(lt_train_args_best_metric(a), "eval_accuracy"),
         "--metric_for_best_model accuracy needs the evaluation's predictions: drop --prediction_loss_only"},
        {a->model_type[0] && strcmp(a->model_type, "gpt2"),
         "--model_type: leantrain trains GPT-2 only (gpt2)"},
        {a->config_name[0] && a->model_name_or_path[0],
         "--config_name and --model_name_or_path both give the model's config: pass one (the model folder's "
         "config.json comes with its weights)"},
        {(a->config_name[0] || a->model_type[0]) && strcmp(a->model_preset, "custom"),
         "--config_name or --model_type with --model: pass one of them"},
        {a->model_type[0] && !a->config_name[0] && !a->model_name_or_path[0] && !custom_size_default(a),
         "--model_type gpt2 trains GPT2Config()'s size (the gpt2 preset), as run_clm does: drop it to train the "
         "size of --n_layer / --n_embd / --n_head / --n_positions / --vocab_size"},
        {a->metric_for_best_model[0] && !lt_train_args_best_metric(a),
         "--metric_for_best_model: leantrain's evaluation measures loss, perplexity and accuracy (eval_loss, "
         "eval_perplexity, eval_accuracy)"},
        {(a->load_best_model_at_end || !strcmp(a->save_strategy, "best")) &&
             (!strcmp(a->eval_strategy, "no") || (!strcmp(a->eval_strategy, "steps") && a->eval_steps == 0)),
         "--load_best_model_at_end and --save_strategy best need evaluations: set --eval_strategy steps or epoch"},
        {(!strcmp(a->lr_scheduler_type, "reduce_lr_on_plateau") || !strcmp(a->lr_scheduler_type, "greedy")) &&
             (!strcmp(a->eval_strategy, "no") || (!strcmp(a->eval_strategy, "steps") && a->eval_steps == 0)),
         "--lr_scheduler_type reduce_lr_on_plateau and greedy are stepped by evaluations: set --eval_strategy steps "
         "or epoch"},
        {a->load_best_model_at_end && !strcmp(a->save_strategy, "no"),
         "--load_best_model_at_end needs checkpoints to load: set --save_strategy (the eval strategy's, or best)"},
        {a->load_best_model_at_end && strcmp(a->save_strategy, "best") && strcmp(a->save_strategy, "no") &&
             strcmp(a->save_strategy, a->eval_strategy),
         "--load_best_model_at_end needs --save_strategy to match --eval_strategy (or be best), as the Trainer does"},
        {a->load_best_model_at_end && !strcmp(a->save_strategy, "steps") && !strcmp(a->eval_strategy, "steps") &&
             !steps_multiple(a->save_steps, a->eval_steps),
         "--load_best_model_at_end needs --save_steps to be a multiple of --eval_steps (both whole numbers, or both "
         "ratios), so that every checkpoint has its evaluation"},
        {a->save_total_limit < 0, "--save_total_limit must be >= 0"},
        {a->early_stopping_patience < 0, "--early_stopping_patience must be >= 0 (0: off)"},
        {!(a->early_stopping_threshold >= 0), "--early_stopping_threshold must be >= 0"},
        {a->early_stopping_patience > 0 && !lt_train_args_best_metric(a),
         "--early_stopping_patience needs the metric it watches: pass --metric_for_best_model loss (or perplexity, "
         "accuracy), or --load_best_model_at_end (whose metric is loss)"},
        {a->early_stopping_patience > 0 &&
             (!strcmp(a->eval_strategy, "no") || (!strcmp(a->eval_strategy, "steps") && a->eval_steps == 0)),
         "--early_stopping_patience counts evaluations: set --eval_strategy steps or epoch"},
        {a->eval_delay < 0, "--eval_delay must be >= 0"},
        {a->max_train_samples < 0, "--max_train_samples must be >= 0 (0: all)"},
        {a->max_eval_samples < 0, "--max_eval_samples must be >= 0 (0: all)"},
        {!lt_train_args_count_tokens(a) && strcmp(a->include_num_input_tokens_seen, "no") &&
             strcmp(a->include_num_input_tokens_seen, "false") && strcmp(a->include_num_input_tokens_seen, "False"),
         "--include_num_input_tokens_seen must be no, all, non_padding, true or false"},
        {strcmp(a->report_to, "none") && strcmp(a->report_to, "all"),
         "--report_to: leantrain reports to no service (its log is output_dir/log.jsonl): pass none"},
        {!a->save_safetensors,
         "--save_safetensors false: leantrain writes only safetensors (model, optimizer state): drop the flag"},
        {!a->do_train && !a->do_eval, "--do_train false leaves nothing to do: add --do_eval to only evaluate"},
        {a->block_size < 0, "--block_size must be >= 0"},
        {strcmp(a->data_layout, "auto") && strcmp(a->data_layout, "run_clm") && strcmp(a->data_layout, "stream"),
         "--data_layout must be auto, run_clm or stream"},
        {a->preprocessing_num_workers < 0, "--preprocessing_num_workers must be >= 0"},
        {a->threads < 0, "--threads must be >= 0 (0: all cores)"},
        {a->validation_split_percentage < 0 || a->validation_split_percentage >= 100,
         "--validation_split_percentage must be in [0, 100)"},
        {a->optim_in_backward && a->gradient_accumulation_steps > 1,
         "--optim_in_backward cannot accumulate gradients (the step happens inside each backward): use "
         "--gradient_accumulation_steps 1"},
        {a->optim_in_backward && a->max_grad_norm > 0,
         "--optim_in_backward cannot clip by the global norm (no gradient waits for the others): pass --max_grad_norm 0"},
        {!(a->fp16_init_scale >= 1 && a->fp16_init_scale <= 1e30), "--fp16_init_scale must be in [1, 1e30]"},
        {a->fp16_growth_interval < 1, "--fp16_growth_interval must be >= 1"},
        {a->fp16 && (a->bf16 || a->pure_bf16), "--fp16 cannot be combined with --bf16 or --pure_bf16: choose one"},
        {a->fp16 && a->optim_in_backward,
         "--fp16 cannot step inside backward: a loss-scaled step is skipped when any gradient overflows, which is "
         "known only after the whole backward; use --bf16 (no loss scaling) with --optim_in_backward"},
        {!a->output_dir[0], "--output_dir must not be empty"},
        {strcmp(a->device, "cpu") && strcmp(a->device, "cuda") && strcmp(a->device, "auto"),
         "--device must be cpu, cuda or auto"},
        {a->tf32 && !strcmp(a->device, "cpu"),
         "--tf32 is a mode of NVIDIA GPUs (Ampere or newer); the CPU multiplies in fp32: drop --tf32 or use "
         "--device cuda"},
    };
    for (size_t k = 0; k < sizeof checks / sizeof checks[0]; k++)
        if (checks[k].bad) {
            snprintf(err, errlen, "%s", checks[k].msg);
            return LT_ERR_ARG;
        }
    if (checkpoint_kwargs_check(a->gradient_checkpointing_kwargs, err, errlen)) return LT_ERR_ARG;
    lt_gpt2_config probe = {0};
    return lt_train_config_overrides(a->config_overrides, &probe, err, errlen);
}
