/* Training data: token sequences cut into blocks (windows of T + 1 tokens: T
 * inputs and their next-token targets), a train / validation split, and the
 * per-epoch shuffled order of the training blocks. Two layouts:
 * - run_clm's (LT_DATA_RUN_CLM, for text): the text's lines tokenized one by
 *   one (lt_tokenizer_open_lines), the first val_percent of the lines held out
 *   (datasets' "train[:p%]", rounded half to even), and each split grouped as
 *   run_clm's group_texts does: per batch of 1000 lines (per line shard of
 *   `workers` when run_clm's preprocessing_num_workers is given), the lines'
 *   ids concatenated and cut into blocks of block_size tokens, the remainder
 *   dropped. A block of block_size tokens predicts block_size - 1 positions
 *   (the model's labels are its inputs, shifted), so T = block_size - 1.
 * - a token stream's (LT_DATA_STREAM, llm.c's): the file's ids as one stream,
 *   the last val_percent of them held out, block k the window starting at
 *   k * T, T = block_size: block_size positions from block_size + 1 tokens.
 * The order of epoch e is the Trainer's: torch.randperm(n_train_blocks) from a
 * torch generator seeded seed + e (its sampler's; lt_randperm_torch), drawn
 * from (seed, e) alone, so a position (epoch, index) is all a checkpoint needs
 * to resume the exact same batches.
 * Batches: in run_clm's layout an epoch's last batch is short when the blocks
 * do not fill it (the Trainer's dataloader keeps it; with drop_last, the
 * Trainer's dataloader_drop_last, it is left out), and the epoch's last
 * optimizer step ends with the epoch's last batch (its fewer micro-batches are
 * the Trainer's "remainder"); in the stream layout every
 * batch is whole (llm.c's): an epoch's last blocks that do not fill one are
 * left out of it. */
#ifndef LT_TRAIN_DATA_H
#define LT_TRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "io/tokens.h"
#include "leantrain/status.h"
#include "tokenizer/tokenizer.h"

typedef enum lt_data_layout { LT_DATA_STREAM = 0, LT_DATA_RUN_CLM = 1 } lt_data_layout;

typedef struct lt_data {
    lt_tokens train, val;   /* val is zeroed when validation shares the training file */
    size_t train_begin, train_len, val_begin, val_len; /* token ranges (stream layout) */
    const lt_tokens *val_src;
    size_t *train_start, *val_start; /* run_clm layout: each block's first token (NULL: k * T + begin) */
    lt_data_layout layout;
    int T;                  /* positions a block predicts (rows of the model's batches) */
    size_t n_train_blocks, n_val_blocks;
    unsigned long long seed;
    long epoch;             /* the position: epoch and next index into its order */
    size_t index;
    uint32_t *order;        /* the current epoch's permutation of training blocks */
    int drop_last;          /* run_clm layout: the short last batch is left out (dataloader_drop_last) */
} lt_data;

/* Whether d's epochs are the Trainer's (run_clm's layout; see above): a short last batch (unless drop_last), an
 * optimizer step ending at an epoch's end. */
static inline int lt_data_trainer_epochs(const lt_data *d) { return d->layout == LT_DATA_RUN_CLM; }

typedef struct lt_data_opts {
    const char *train_file;
    const char *validation_file; /* NULL or "": val_percent of the training file is held out */
    double val_percent;
    int block_size;              /* tokens of a run_clm block; the stream layout's T */
    int vocab;                   /* every id must be below it */
    unsigned long long seed;     /* of the training order */
    lt_data_layout layout;
    int workers;                 /* run_clm layout: preprocessing_num_workers (0 or 1: one shard) */
    int drop_linebreaks;         /* run_clm layout: keep_linebreaks false (lines encoded without their LF) */
    int drop_last;               /* run_clm layout: dataloader_drop_last (an epoch's short last batch left out) */
    const lt_tokenizer *tok;     /* encodes text (NULL: text is bytes) */
    int threads;                 /* OpenMP threads for encoding (0: all) */
    lt_tokenize_progress progress; /* after each 8 MiB of a file's text (NULL: none) */
    void *user;
} lt_data_opts;

/* Opens the data as o says (see the layouts above). llm.c token files are
 * read as they are (the stream layout only). Messages name the file and the
 * flag to change. */
lt_status lt_data_open_opts(lt_data *d, const lt_data_opts *o, char *err, size_t errlen);

/* The stream layout of a file read as bytes (tests): lt_data_open_opts with
 * block_size T, no tokenizer, one thread. */
lt_status lt_data_open(lt_data *d, const char *train_file, const char *validation_file, double val_percent, int T,
                       int vocab, unsigned long long seed, char *err, size_t errlen);

/* run_clm's max_train_samples / max_eval_samples: keeps the first max_train training blocks and the first max_val
 * validation blocks, in file order (0: all), and draws the order again over what is left. */
void lt_data_limit(lt_data *d, size_t max_train, size_t max_val);

void lt_data_close(lt_data *d);

/* Moves to (epoch, index): the position a checkpoint recorded. */
void lt_data_seek(lt_data *d, long epoch, size_t index);

/* Fills rows of inputs and targets ([B, T] each) with the next training
 * blocks and returns how many: B, or with the Trainer's epochs the fewer
 * blocks the epoch has left (an epoch with none left, or with drop_last fewer
 * than B, ends and the next begins first); otherwise an epoch that has fewer
 * than B blocks left ends and the next begins (B is always returned). */
int lt_data_next(lt_data *d, int B, int32_t *inputs, int32_t *targets);

/* The next optimizer step's micro-batches of B rows, at most accum of them
 * (fewer at the end of an epoch with the Trainer's epochs), into *micro, and its rows
 * in all, as lt_data_next will give them; nothing is consumed. */
long lt_data_step_rows(const lt_data *d, int B, int accum, int *micro);

/* Optimizer steps in an epoch of batches of B rows, accum micro-batches a
 * step: with the Trainer's epochs its ceil(batches / accum), batches being
 * ceil(n / B) (floor with drop_last); else floor(floor(n / B) / accum); at
 * least 1. */
long lt_data_steps_per_epoch(const lt_data *d, int B, int accum);

/* Up to `rows` validation blocks from block `first` on into inputs and
 * targets ([rows, T] each); returns how many there were (fewer at the end of
 * the split, 0 past it). */
int lt_data_val_rows(const lt_data *d, size_t first, int rows, int32_t *inputs, int32_t *targets);

/* Epochs done, as a fraction (for logs), in batches of B: with the Trainer's
 * epochs its batches done over batches in the epoch, else blocks done over
 * blocks. */
double lt_data_epoch_float(const lt_data *d, int B);

/* The next 64-bit value of a splitmix64 generator (used for shuffles and sampling). */
uint64_t lt_splitmix64(uint64_t *state);

#endif
