/* The Trainer's and run_clm's flags taken without effect, and the values of theirs refused (see args_inert.h). */
#include "train/args_inert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    char type;        /* b: true / false; i: an integer; s: any text (a list or object as its JSON) */
    const char *ok;   /* the values taken, '|'-separated (a boolean's by its meaning); NULL: every value */
    const char *why;  /* why the flag has no effect here, or what to use instead of a refused value */
} inert;

/* the reasons several flags share */
#define WHY_LOADER "the token blocks are read in the training process"
#define WHY_DDP "one process: no distributed data parallel"
#define WHY_HUB "no Hub client (--push_to_hub is refused)"
#define WHY_METRICS "evaluation measures loss, perplexity and accuracy only (no compute_metrics)"
#define WHY_PREDICTIONS "evaluation keeps no predictions: its loss and top-1 count are sums"
#define WHY_COLUMNS "no dataset columns: the data are token blocks"
#define WHY_INTEGRATION "no integration (--report_to none)"
#define WHY_TORCH_COMPILE "no torch: the kernels are compiled C and CUDA already"
#define WHY_DTYPE "the weights are fp32 (the optimizer's master copy); to keep them only in bf16: --pure_bf16"

/* transformers 5.24's TrainingArguments fields that leantrain has no flag of its own for */
static const inert INERT[] = {
    {"accelerator_config", 's', NULL, "one process on one device: accelerate's options do not apply"},
    {"average_tokens_across_devices", 'b', NULL, "one device: the loss is averaged over its tokens"},
    {"batch_eval_metrics", 'b', NULL, WHY_METRICS},
    {"dataloader_in_order", 'b', NULL, "the token blocks are read in the training process, in the epoch's order"},
    {"dataloader_multiprocessing_context", 's', NULL, WHY_LOADER},
    {"dataloader_num_workers", 'i', NULL, "the token blocks are read in the training process (no loader workers)"},
    {"dataloader_persistent_workers", 'b', NULL, WHY_LOADER},
    {"dataloader_pin_memory", 'b', NULL, WHY_LOADER},
    {"dataloader_prefetch_factor", 'i', NULL, WHY_LOADER},
    {"ddp_backend", 's', NULL, WHY_DDP},
    {"ddp_broadcast_buffers", 'b', NULL, WHY_DDP},
    {"ddp_bucket_cap_mb", 'i', NULL, WHY_DDP},
    {"ddp_find_unused_parameters", 'b', NULL, WHY_DDP},
    {"ddp_static_graph", 'b', NULL, WHY_DDP},
    {"ddp_timeout", 'i', NULL, WHY_DDP},
    {"eval_accumulation_steps", 'i', NULL, WHY_PREDICTIONS},
    {"eval_do_concat_batches", 'b', NULL, WHY_PREDICTIONS},
    {"eval_use_gather_object", 'b', NULL, "one process: nothing to gather"},
    {"full_determinism", 'b', NULL, "leantrain's sums run in a fixed order: the same flags, threads and device "
                                    "repeat a run bit for bit"},
    {"hub_always_push", 'b', NULL, WHY_HUB},
    {"hub_model_id", 's', NULL, WHY_HUB},
    {"hub_private_repo", 'b', NULL, WHY_HUB},
    {"hub_revision", 's', NULL, WHY_HUB},
    {"hub_strategy", 's', NULL, WHY_HUB},
    {"hub_token", 's', NULL, WHY_HUB},
    {"include_for_metrics", 's', NULL, WHY_METRICS},
    {"label_names", 's', NULL, "the labels are the next tokens of each block"},
    {"length_column_name", 's', NULL, WHY_COLUMNS},
    {"log_level", 's', NULL, "leantrain's output has one level"},
    {"log_level_replica", 's', NULL, "one process: no replicas"},
    {"log_on_each_node", 'b', NULL, "one node"},
    {"logging_nan_inf_filter", 'b', NULL, "a non-finite loss stops the run (with the step and what to do), so no "
                                          "logged loss is nan or inf"},
    {"project", 's', NULL, "no integration (--report_to none): the log is output_dir/log.jsonl"},
    {"remove_unused_columns", 'b', NULL, WHY_COLUMNS},
    {"restore_callback_states_from_checkpoint", 'b', NULL, "a resume always restores early stopping's counter"},
    {"save_on_each_node", 'b', NULL, "one node"},
    {"skip_memory_metrics", 'b', NULL, "the memory table (plan and measured peak) is always printed"},
    {"torch_empty_cache_steps", 'i', NULL, "no caching allocator to empty"},
    {"trackio_bucket_id", 's', NULL, WHY_INTEGRATION},
    {"trackio_space_id", 's', NULL, WHY_INTEGRATION},
    {"trackio_static_space_id", 's', NULL, WHY_INTEGRATION},
    {"use_cache", 'b', NULL, "training keeps no key / value cache"},
    {"local_rank", 'i', "-1", "one process: a torch.distributed launch is not supported; run leantrain directly"},
    {"debug", 's', "|[]", "leantrain has no debug modes"},
    {"train_sampling_strategy", 's', "random",
     "the training blocks are drawn in a random permutation per epoch (--data_seed)"},
    {"activation_checkpointing", 'b', "false", "that is FSDP's: use --gradient_checkpointing"},
    {"activation_checkpointing_kwargs", 's', "|{}", "that is FSDP's: use --gradient_checkpointing"},
    {"bf16_full_eval", 'b', "false", "evaluation runs in the training's precision"},
    {"fp16_full_eval", 'b', "false", "evaluation runs in the training's precision"},
    {"deepspeed", 's', "", "one device and no DeepSpeed: the memory methods are leantrain's own flags "
                           "(--optim adamw_bnb_8bit, --gradient_checkpointing, --pure_bf16, --optim_in_backward)"},
    {"do_predict", 'b', "false", "there is no test split: --do_eval evaluates the validation split"},
    {"enable_jit_checkpoint", 'b', "false", "no torch JIT"},
    {"fsdp", 's', "|[]|false", "one device: no FSDP"},
    {"fsdp_config", 's', "|{}", "one device: no FSDP"},
    {"parallelism_config", 's', "|{}", "one device: no parallelism"},
    {"ignore_data_skip", 'b', "false", "a resume continues the data where the checkpoint was (skipping costs "
                                       "nothing here)"},
    {"liger_kernel_config", 's', "|{}", "leantrain's kernels are its own (no Liger)"},
    {"use_liger_kernel", 'b', "false", "leantrain's kernels are its own (no Liger)"},
    {"optim_target_modules", 's', "|[]", "no GaLore or APOLLO optimizer (see leantrain optimizers)"},
    {"push_to_hub", 'b', "false", "no Hub client: upload output_dir yourself (hf upload)"},
    {"torch_compile", 'b', "false", WHY_TORCH_COMPILE},
    {"torch_compile_backend", 's', "", WHY_TORCH_COMPILE},
    {"torch_compile_mode", 's', "", WHY_TORCH_COMPILE},
    /* run_clm's ModelArguments and DataTrainingArguments (transformers' examples/pytorch/language-modeling) */
    {"cache_dir", 's', NULL, "no Hub downloads and no datasets cache: models, tokenizers and texts are local files"},
    {"low_cpu_mem_usage", 'b', NULL, "the model is created once, in its final layout"},
    {"overwrite_cache", 'b', NULL, "no preprocessing cache: a text is tokenized at each start"},
    {"token", 's', NULL, "no Hub client: nothing is downloaded"},
    {"trust_remote_code", 'b', NULL, "no remote code is run: the model is leantrain's GPT-2"},
    {"use_fast_tokenizer", 'b', NULL, "one GPT-2 byte-level BPE (the fast and the slow tokenizer give the same ids)"},
    {"dataset_name", 's', "", "no datasets library or Hub: give the text as --train_file (and --validation_file), "
                              "e.g. the dataset's text column written to a file"},
    {"dataset_config_name", 's', "", "no datasets library or Hub: give the text as --train_file (and "
                                     "--validation_file)"},
    {"dtype", 's', "|auto|float32", WHY_DTYPE},
    {"torch_dtype", 's', "|auto|float32", WHY_DTYPE},
    {"model_revision", 's', "main", "no Hub client: a model is a local folder (--model_name_or_path DIR)"},
    {"streaming", 'b', "false", "a text is tokenized 64 MiB at a time without its text held whole, so no streaming "
                                "is needed; streaming's own split and unshuffled order are not emulated"},
};
#define NINERT (sizeof INERT / sizeof INERT[0])

static const inert *find(const char *name) {
    for (size_t k = 0; k < NINERT; k++)
        if (!strcmp(INERT[k].name, name)) return &INERT[k];
    return NULL;
}

/* -1: not a boolean's text; else its value */
static int bool_value(const char *v) {
    if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "1")) return 1;
    if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "0")) return 0;
    return -1;
}

/* whether v is one of the '|'-separated values of ok (an empty item is the empty text) */
static int listed(const char *ok, const char *v) {
    const size_t n = strlen(v);
    for (const char *p = ok;; p++) {
        const char *bar = strchr(p, '|');
        const size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, v, n)) return 1;
        if (!bar) return 0;
        p = bar;
    }
}

int lt_train_arg_inert(const char *name, const char *value, char *err, size_t errlen) {
    const inert *f = find(name);
    if (!f) return 1;
    const int b = bool_value(value);
    if (f->type == 'b' && b < 0) {
        snprintf(err, errlen, "--%s: bad value '%s': expected true or false", name, value);
        return -1;
    }
    if (f->type == 'i') {
        char *end;
        (void)strtol(value, &end, 10);
        if (!*value || *end) {
            snprintf(err, errlen, "--%s: bad value '%s': expected an integer", name, value);
            return -1;
        }
    }
    const int taken = !f->ok || (f->type == 'b' ? b == bool_value(f->ok) : listed(f->ok, value));
    if (taken) return 0;
    snprintf(err, errlen, "--%s %s is not taken: %s", name, value, f->why);
    return -1;
}

int lt_train_arg_inert_bool(const char *name) {
    const inert *f = find(name);
    return f && f->type == 'b';
}

const char *lt_train_arg_inert_names(void) {
    static char names[NINERT * 48];
    if (!names[0]) { /* lines of up to about 110 characters, the later ones indented as the usage text's first */
        size_t len = 0, line = 0;
        for (size_t k = 0; k < NINERT && len < sizeof names; k++) {
            const int wrap = k && line + strlen(INERT[k].name) > 104;
            const int n = snprintf(names + len, sizeof names - len, "%s%s", !k ? "" : wrap ? ",\n  " : ", ",
                                   INERT[k].name);
            line = wrap ? strlen(INERT[k].name) : line + (size_t)n;
            len += (size_t)n;
        }
    }
    return names;
}
