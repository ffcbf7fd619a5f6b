/* Training data: token sequences cut into blocks of block_size + 1 tokens
 * (inputs and next-token targets), a train / validation split, and the
 * per-epoch shuffled order of the training blocks. The order of epoch e is a
 * permutation drawn from (seed, e) alone, so a position (epoch, index) is all
 * a checkpoint needs to resume the exact same batches. */
#ifndef LT_TRAIN_DATA_H
#define LT_TRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "io/tokens.h"
#include "leantrain/status.h"
#include "tokenizer/tokenizer.h"

typedef struct lt_data {
    lt_tokens train, val;   /* val is zeroed when validation shares the training file */
    size_t train_begin, train_len, val_begin, val_len; /* token ranges */
    const lt_tokens *val_src;
    int T;                  /* block size */
    size_t n_train_blocks, n_val_blocks;
    unsigned long long seed;
    long epoch;             /* the position: epoch and next index into its order */
    size_t index;
    uint32_t *order;        /* the current epoch's permutation of training blocks */
} lt_data;

/* Opens the data. validation_file may be NULL/"" (then the last val_percent of
 * the training tokens are held out). Every token id must be < vocab. Messages
 * name the file and the flag to change. */
lt_status lt_data_open(lt_data *d, const char *train_file, const char *validation_file, double val_percent, int T,
                       int vocab, unsigned long long seed, char *err, size_t errlen);

/* The same, with text files encoded by tok (NULL: text is bytes) on `threads`
 * OpenMP threads (0: all), progress(user, ...) after each 64 MiB of a file's
 * text (lt_tokenizer_open_tokens; NULL: none); llm.c token files are read as
 * they are. */
lt_status lt_data_open_tok(lt_data *d, const char *train_file, const char *validation_file, double val_percent, int T,
                           int vocab, unsigned long long seed, const lt_tokenizer *tok, int threads,
                           lt_tokenize_progress progress, void *user, char *err, size_t errlen);

/* run_clm's max_train_samples / max_eval_samples: keeps the first max_train training blocks and the first max_val
 * validation blocks, in file order (0: all), and draws the order again over what is left. */
void lt_data_limit(lt_data *d, size_t max_train, size_t max_val);

void lt_data_close(lt_data *d);

/* Moves to (epoch, index): the position a checkpoint recorded. */
void lt_data_seek(lt_data *d, long epoch, size_t index);

/* Fills B rows of inputs and targets ([B, T] each) with the next training
 * blocks; an epoch that has fewer than B blocks left ends and the next begins. */
void lt_data_next(lt_data *d, int B, int32_t *inputs, int32_t *targets);

/* Up to `rows` validation blocks from block `first` on into inputs and
 * targets ([rows, T] each); returns how many there were (fewer at the end of
 * the split, 0 past it). */
int lt_data_val_rows(const lt_data *d, size_t first, int rows, int32_t *inputs, int32_t *targets);

/* Epochs done, as a fraction (for logs). */
double lt_data_epoch_float(const lt_data *d);

/* The next 64-bit value of a splitmix64 generator (used for shuffles and sampling). */
uint64_t lt_splitmix64(uint64_t *state);

#endif
