/* TrainingArguments: the Hugging Face Trainer's flags with its defaults, plus
 * the model and data flags of `leantrain train` (design.md). */
#ifndef LT_TRAIN_ARGS_H
#define LT_TRAIN_ARGS_H

#include <stddef.h>

#include "leantrain/status.h"
#include "model/gpt2.h"
#include "train/data.h"

/* The most optimizer steps a run may have, and the largest *_steps / warmup_steps taken (what a double counts
 * exactly and a long holds, with room). */
#define LT_MAX_RUN_STEPS 9e15

typedef struct lt_train_args {
    /* optimizer */
    char optim[48];
    char optim_args[256];
    double learning_rate, weight_decay, adam_beta1, adam_beta2, adam_epsilon, max_grad_norm;
    double label_smoothing_factor; /* the Trainer's: LabelSmoother's epsilon, 0 = none */
    double neftune_noise_alpha;    /* the Trainer's: NEFTune's alpha, 0 = none */
    int early_stopping_patience;     /* EarlyStoppingCallback's: evaluations without improvement (0: off) */
    double early_stopping_threshold; /* and the improvement that counts */
    /* schedule and length */
    char lr_scheduler_type[48];
    char lr_scheduler_kwargs[256];
    double warmup_steps;       /* an integer, or a ratio in (0, 1) of the run's steps (transformers 5) */
    double warmup_ratio;
    long max_steps;            /* -1: from num_train_epochs */
    double num_train_epochs;
    int per_device_train_batch_size, per_device_eval_batch_size, gradient_accumulation_steps;
    /* the Trainer's auto_find_batch_size: train with the first of per_device_train_batch_size, x0.9, ... that the
       memory plan fits into memory_limit ("auto": the device's free memory or the host's available memory; a
       size such as 20GB; "none": no check), instead of running out of memory and retrying */
    int auto_find_batch_size;
    char memory_limit[32];
    /* logging, evaluation, checkpoints: each *_steps is an integer or a ratio in (0, 1) of the run's steps
       (lt_steps_resolve, train/events.h); each *_strategy is "no", "steps" or "epoch" */
    double logging_steps, eval_steps, save_steps;
    char logging_strategy[16], eval_strategy[16], save_strategy[16];
    int logging_first_step, eval_on_start;
    int do_train, do_eval;     /* run_clm's: train (default on: the command's job) and evaluate at the end */
    char report_to[32];        /* "none" or "all": no integration (the log is output_dir/log.jsonl) */
    int disable_tqdm;          /* no progress bar on a terminal */
    int prediction_loss_only;  /* evaluation without the top-1 count: no eval_accuracy */
    int save_safetensors;      /* must stay true: every file is safetensors */
    char include_num_input_tokens_seen[16]; /* "no", "all" or "non_padding" (the same here: no padding), or a bool */
    /* the best model: the Trainer's metric_for_best_model (loss, perplexity or accuracy, with or without eval_;
       "" until needed, then loss), greater_is_better (-1: from the name, higher for accuracy),
       load_best_model_at_end; save_strategy "best" saves at each new best evaluation */
    char metric_for_best_model[32];
    int greater_is_better, load_best_model_at_end;
    int save_total_limit;      /* 0: keep all */
    long eval_max_batches;     /* 0: the whole validation split */
    char output_dir[512];
    char resume_from_checkpoint[512]; /* "", a directory, or "latest" */
    unsigned long long seed;
    unsigned long long data_seed; /* the training blocks' order; the Trainer's default: seed (ULLONG_MAX until parsed) */
    double eval_delay;         /* no evaluation before this step (eval_strategy steps) or epoch (epoch) */
    int save_only_model;       /* checkpoints without optimizer.safetensors (smaller; they cannot be resumed) */
    int overwrite_output_dir;
    /* memory methods */
    int gradient_checkpointing, optim_in_backward, bf16, fp16, pure_bf16;
    char gradient_checkpointing_kwargs[128]; /* the Trainer's JSON object: only use_reentrant, which has no meaning here */
    int tf32;                    /* fp32 matrix multiplies in TF32 on the GPU (the Trainer's tf32=True) */
    double fp16_init_scale;      /* GradScaler's init_scale */
    long fp16_growth_interval;   /* and growth_interval (factors 2 and 0.5) */
    /* model */
    char model_name_or_path[512]; /* a folder with config.json + model.safetensors, or empty */
    char tokenizer_name_or_path[512]; /* tokenizer files' folder or "gpt2"; empty: the model's or checkpoint's, if any */
    char model_preset[48];        /* gpt2, gpt2-medium, ... or "custom" */
    char config_name[512];        /* run_clm's: a preset name or a config.json (or its folder) to train from scratch */
    char model_type[32];          /* run_clm's: "" or gpt2 (GPT2Config()'s size, the gpt2 preset, from scratch) */
    char config_overrides[256];   /* run_clm's "key=value,key=value" over the model's config (the pdrops) */
    int n_layer, n_embd, n_head, n_positions, vocab_size;
    /* data */
    char train_file[512], validation_file[512];
    double validation_split_percentage;
    int block_size;               /* 0: the model's n_positions */
    char data_layout[16];         /* "auto" (run_clm for text, stream for token files), "run_clm" or "stream" */
    int preprocessing_num_workers; /* run_clm's: the line shards whose 1000-line batches are grouped apart; 0: one */
    int keep_linebreaks;          /* run_clm's: a line's LF is part of its text (default 1) */
    int dataloader_drop_last;     /* the Trainer's: an epoch's short last batch left out (run_clm's layout) */
    long max_train_samples, max_eval_samples; /* run_clm's: the first N training / validation blocks; 0: all */
    int threads;                  /* 0: OpenMP's default */
    char device[16];              /* "cpu", "cuda" or "auto" (cuda when a GPU is present) */
    int use_cpu;                  /* the Trainer's use_cpu: --device cpu (set there by lt_train_args_parse, then 0) */
    char run_name[256];           /* the run's name, recorded in training_args.json ("": output_dir, as the Trainer) */
} lt_train_args;

/* The defaults (the Trainer's where it has them). */
void lt_train_args_default(lt_train_args *a);

/* Parses argv[0..argc) ("--flag value" or "--flag=value"; boolean flags may
 * stand alone). argv[0] may instead be a JSON file of flags (a path ending in .json, as run_clm takes one: an
 * object of flag names and values, training_args.json's form; null leaves a flag at its default), read first, so
 * that the flags after it override its values. On error writes one line naming the flag (and the file) and
 * returns LT_ERR_ARG. */
lt_status lt_train_args_parse(lt_train_args *a, int argc, char **argv, char *err, size_t errlen);

/* What lt_train_args_parse ends with, for flags set another way (lt_train_args_from_json): the defaults that
 * follow other flags (eval_steps from logging_steps, data_seed from seed, run_name from output_dir; use_cpu into
 * device), then lt_train_args_check. */
lt_status lt_train_args_finish(lt_train_args *a, char *err, size_t errlen);

/* The flags as training_args.json holds them (a checkpoint's record of its run, and a file lt_train_args_parse
 * reads back to the same arguments): a JSON object of every flag under its name (aliases omitted) with its value,
 * strings, numbers, true / false, null for a flag left to its default by name (greater_is_better); seeds and
 * counts past 2^53 as decimal strings (a JSON number would round them); resume_from_checkpoint always "" (how the
 * run was started, not the run). A malloc'd string, or NULL when out of memory. */
char *lt_train_args_to_json(const lt_train_args *a);

/* The flags of a whose values differ from those of `before` (the JSON text of a checkpoint's training_args.json):
 * "--flag value (was value), ..." into out (truncated to outlen; "" when none differ), --resume_from_checkpoint and
 * --overwrite_output_dir left out (a resume changes them by nature), and flags `before` lacks. The number of
 * flags that differ, or -1 when `before` is not a JSON object (or memory ran out). */
int lt_train_args_changed(const char *before, const lt_train_args *a, char *out, size_t outlen);

/* Sets the flags of JSON text `text` (an object of flag names and values, as lt_train_args_to_json writes it;
 * null, or an empty list, leaves a flag as it is; an object, for the *_kwargs flags, is taken as its JSON text; a
 * list of one string, as the Trainer writes report_to, as that string) into a, without the checks and the
 * resolving of defaults that lt_train_args_parse ends with (lt_train_args_finish). Errors name `path` (the file the text came from) and
 * the flag: LT_ERR_ARG, with a possibly partly set. */
lt_status lt_train_args_from_json(lt_train_args *a, const char *text, const char *path, char *err, size_t errlen);

/* The checks lt_train_args_parse ends with: every value in range and the
 * flags compatible with each other (e.g. --fp16 refuses --optim_in_backward).
 * Writes the first problem as one line naming the flags; LT_ERR_ARG then. */
lt_status lt_train_args_check(const lt_train_args *a, char *err, size_t errlen);

/* The compute precision and master-weight choice the flags ask for, as
 * lt_gpt2_set_precision takes them. */
static inline lt_gpt2_precision lt_train_args_precision(const lt_train_args *a) {
    return a->fp16 ? LT_GPT2_F16 : a->bf16 || a->pure_bf16 ? LT_GPT2_BF16 : LT_GPT2_F32;
}

/* The data layout --data_layout asks for (train/data.h): auto is run_clm's
 * for text and the stream's for an llm.c token file (token_file non-zero). */
lt_data_layout lt_train_args_data_layout(const lt_train_args *a, int token_file);

/* The tokenizer a run reads its text with: --tokenizer_name_or_path's (NULL for "none": the text is bytes), else
 * the one saved in the checkpoint it resumes (resume: its folder, or NULL), else the model folder's; NULL when
 * there is none. */
const char *lt_train_args_tokenizer_path(const lt_train_args *a, const char *resume);

/* The vocabulary of a model from scratch for its data: 50257 for an llm.c token file, the tokenizer's
 * vocabulary for text read with one (tok_vocab > 0), else 256 (bytes). */
int lt_train_data_vocab(int token_file, size_t tok_vocab);

/* The block size: --block_size, else run_clm's default in its layout (min(1024, n_positions): GPT-2's
 * tokenizer's model_max_length, capped by the model), else the model's n_positions. */
int lt_train_args_block_size(const lt_train_args *a, int n_positions, lt_data_layout layout);

/* Whether the run trains on the GPU: --device cuda, or auto with a CUDA
 * device present (every precision: fp32, --bf16, --pure_bf16 and --fp16). */
int lt_train_args_on_gpu(const lt_train_args *a);

/* Applies --config_overrides ("embd_pdrop=0.1,resid_pdrop=0,attn_pdrop=0.1";
 * "" changes nothing) to cfg. A key other than the three, a value that is
 * not a number in [0, 1) or a malformed item is LT_ERR_ARG with one line
 * naming the flag and the item; cfg is then unchanged. */
lt_status lt_train_config_overrides(const char *overrides, lt_gpt2_config *cfg, char *err, size_t errlen);

/* The config of a model trained from scratch (no --model_name_or_path, no checkpoint): --config_name's (a preset
 * name, "openai-community/" allowed, with the dropout 0.1 of the Hub's config.json of that name; or a config.json
 * or the folder holding one), --model's preset (no dropout), --model_type gpt2's (GPT2Config(): the gpt2 preset
 * with its dropout 0.1), or the custom size flags with data_vocab as the vocabulary unless --vocab_size says
 * otherwise. Without --config_overrides, which the caller applies. Messages name the flag. */
lt_status lt_train_args_scratch_config(const lt_train_args *a, int data_vocab, lt_gpt2_config *cfg, char *err,
                                       size_t errlen);

/* The metric lt_train_args_check accepted for the best model ("eval_loss", "eval_perplexity" or "eval_accuracy";
 * also the one reduce_lr_on_plateau and greedy are stepped with), or NULL when no best model is tracked (neither
 * --load_best_model_at_end, --save_strategy best, --metric_for_best_model nor one of those two schedulers). */
const char *lt_train_args_best_metric(const lt_train_args *a);

/* Whether a larger value of the best-model metric is better (--greater_is_better, else the Trainer's default:
 * not for a name ending in loss, so for accuracy; perplexity, a loss's exponential, is lower-better here, where
 * the Trainer's rule would make it greater-better). */
int lt_train_args_greater_is_better(const lt_train_args *a);

/* Whether --include_num_input_tokens_seen asks for the count (all, non_padding or true: the training blocks have no
 * padding, so every input token counts). */
int lt_train_args_count_tokens(const lt_train_args *a);

/* The usage text of every flag with its default. */
void lt_train_args_usage(void *file);

#endif
