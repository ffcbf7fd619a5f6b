/* The memory table: what a training run of GPT-2 needs, by kind, computed
 * before anything is allocated (`leantrain plan`) and printed by the trainer
 * at start beside the measured peak at the end. */
#ifndef LT_TRAIN_MEMPLAN_H
#define LT_TRAIN_MEMPLAN_H

#include <stdio.h>

#include "model/gpt2.h"

typedef struct lt_mem_table {
    size_t weights;      /* the parameters the compute reads: f32; bf16 when pure; with mixed precision the
                            16-bit copies of one block's weights (and one weight gradient) made per block */
    size_t master;       /* f32 master weights (mixed precision) */
    size_t grads;        /* gradients (one block's with the step inside backward) */
    size_t optim_state;  /* optimizer state, exactly as the library allocates it */
    size_t activations;  /* forward activations + backward scratch */
    size_t workspace;    /* tokens, data order (run_clm's block starts), the tokenizer, optimizer scratch, the
                            BLAS's buffers, the program itself */
    size_t total;
    size_t cublas;       /* GPU: cuBLAS's workspace, part of workspace (planned: the model's counters do not see it) */
} lt_mem_table;

/* The memory methods of a run besides the optimizer. */
typedef struct lt_mem_methods {
    int gradient_checkpointing;
    int optim_in_backward;
    lt_gpt2_precision precision; /* --bf16 / --fp16 */
    int pure_bf16;               /* --pure_bf16: no f32 master weights */
    int device;                  /* 1: the GPU (device memory as lt_gpt2_dev allocates it), 0: the CPU (RSS) */
    /* what else the host holds through a run (the CPU's table counts them in workspace) */
    int run_clm;                 /* run_clm's layout: each block's first token in a table, 8 bytes a block */
    size_t tokenizer_bytes;      /* the tokenizer the run keeps for its text (lt_tokenizer_memory) */
} lt_mem_methods;

/* Fills t for cfg trained with batch B x T, the optimizer `optim`/`optim_args`
 * (base hyperparameters as the trainer passes them) and the methods `mm`, over
 * a training file of data_bytes. On the GPU (mm->device) the table is device
 * memory: the device model's allocations (lt_gpt2_dev_memory_plan), the
 * optimizer state, and cuBLAS's workspace in `workspace`; the CUDA context
 * itself is not counted. */
lt_status lt_memplan(const lt_gpt2_config *cfg, int B, int T, const char *optim, const char *optim_args,
                     const lt_mem_methods *mm, size_t data_bytes, lt_mem_table *t, char *err, size_t errlen);

/* --auto_find_batch_size: the per-device batch size the Hugging Face Trainer tries after batch b ran out of
 * memory (accelerate's find_executable_batch_size: b x 0.9, truncated; 8 -> 7, 20 -> 18); 0 after 1, where the
 * Trainer gives up. */
int lt_auto_batch_next(int b);

/* The batch size --auto_find_batch_size trains with when `limit` bytes are available: the first of b0,
 * lt_auto_batch_next(b0), ... whose table (lt_memplan, the other arguments as there) totals at most `limit`,
 * the batch the Trainer would settle on if each larger one ran out of memory as planned, found without
 * running any. Its table in *t; each size tried and its total in tried / tried_bytes (up to max_tried of them;
 * *ntried counts them all). 0 when not even batch 1 fits (*t then holds batch 1's table); -1 on a planning
 * error (message in err). */
int lt_memplan_find_batch(const lt_gpt2_config *cfg, int b0, int T, const char *optim, const char *optim_args,
                          const lt_mem_methods *mm, size_t data_bytes, size_t limit, lt_mem_table *t, int *tried,
                          size_t *tried_bytes, int max_tried, int *ntried, char *err, size_t errlen);

/* The largest batch size whose table totals at most `limit` (the plan grows with the batch); 0 when batch 1
 * does not fit, -1 on a planning error (message in err). Batches above 1 << 20 are not considered. */
int lt_memplan_max_batch(const lt_gpt2_config *cfg, int T, const char *optim, const char *optim_args,
                         const lt_mem_methods *mm, size_t data_bytes, size_t limit, char *err, size_t errlen);

/* The memory a run may use, as --memory_limit names it: "auto" is the GPU's free memory less 512 MiB for the
 * kernels' modules, loaded after the check (device; lt_cuda_mem_info) or the host's available memory (lt_host_mem_available), a size is itself, "none" is 0 (no
 * check; also "auto" where the host's figure cannot be read). *limit in bytes; `source` says where it came from
 * ("--memory_limit", "the GPU's free memory", "MemAvailable", ...). LT_ERR_ARG for a malformed flag, LT_ERR_DEVICE when
 * the GPU cannot be asked (message in err). */
lt_status lt_memory_limit(const char *flag, int device, size_t *limit, char *source, size_t srclen, char *err,
                          size_t errlen);

/* Prints the table (MiB), with `measured` (bytes, 0 = not yet) as the last line. */
void lt_mem_table_print(FILE *f, const lt_mem_table *t, size_t measured);

/* Parses "24GB", "512MiB", "1.5G", "100000000" into bytes; 0 on error. */
size_t lt_parse_bytes(const char *s);

#endif
