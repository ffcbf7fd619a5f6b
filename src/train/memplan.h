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
    size_t workspace;    /* tokens, data order, optimizer scratch, the BLAS's buffers, the program itself */
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
} lt_mem_methods;

/* Fills t for cfg trained with batch B x T, the optimizer `optim`/`optim_args`
 * (base hyperparameters as the trainer passes them) and the methods `mm`, over
 * a training file of data_bytes. On the GPU (mm->device) the table is device
 * memory: the device model's allocations (lt_gpt2_dev_memory_plan), the
 * optimizer state, and cuBLAS's workspace in `workspace`; the CUDA context
 * itself is not counted. */
lt_status lt_memplan(const lt_gpt2_config *cfg, int B, int T, const char *optim, const char *optim_args,
                     const lt_mem_methods *mm, size_t data_bytes, lt_mem_table *t, char *err, size_t errlen);

/* Prints the table (MiB), with `measured` (bytes, 0 = not yet) as the last line. */
void lt_mem_table_print(FILE *f, const lt_mem_table *t, size_t measured);

/* Parses "24GB", "512MiB", "1.5G", "100000000" into bytes; 0 on error. */
size_t lt_parse_bytes(const char *s);

#endif
