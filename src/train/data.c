/* Training data: blocks, split, per-epoch order (see data.h). */
#include "train/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t lt_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void make_order(lt_data *d) {
    uint64_t st = d->seed * 0x9e3779b97f4a7c15ull + (uint64_t)d->epoch * 0xd1b54a32d192ed03ull + 1;
    for (size_t i = 0; i < d->n_train_blocks; i++) d->order[i] = (uint32_t)i;
    for (size_t i = d->n_train_blocks; i > 1; i--) { /* Fisher-Yates */
        size_t j = (size_t)(lt_splitmix64(&st) % i);
        uint32_t t = d->order[i - 1];
        d->order[i - 1] = d->order[j];
        d->order[j] = t;
    }
}

static lt_status check_ids(const lt_tokens *t, const char *path, int vocab, char *err, size_t errlen) {
    if (t->max_id < vocab) return LT_OK;
    for (size_t i = 0; i < t->n; i++)
        if (lt_tokens_get(t, i) >= vocab) {
            snprintf(err, errlen, "%s: token %zu has id %d, not below the model's vocab_size %d", path, i,
                     lt_tokens_get(t, i), vocab);
            break;
        }
    return LT_ERR_FORMAT;
}

lt_status lt_data_open(lt_data *d, const char *train_file, const char *validation_file, double val_percent, int T,
                       int vocab, unsigned long long seed, char *err, size_t errlen) {
    return lt_data_open_tok(d, train_file, validation_file, val_percent, T, vocab, seed, NULL, 0, NULL, NULL, err,
                            errlen);
}

lt_status lt_data_open_tok(lt_data *d, const char *train_file, const char *validation_file, double val_percent, int T,
                           int vocab, unsigned long long seed, const lt_tokenizer *tok, int threads,
                           lt_tokenize_progress progress, void *user, char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    d->T = T;
    d->seed = seed;
    if (!train_file || !*train_file) {
        snprintf(err, errlen, "no training data: give --train_file (UTF-8 text or an llm.c token file)");
        return LT_ERR_ARG;
    }
    lt_status st = lt_tokenizer_open_tokens(tok, train_file, threads, progress, user, &d->train, err, errlen);
    if (st) return st;
    if ((st = check_ids(&d->train, train_file, vocab, err, errlen))) goto fail;
    d->train_begin = 0;
    d->train_len = d->train.n;
    if (validation_file && *validation_file) {
        if ((st = lt_tokenizer_open_tokens(tok, validation_file, threads, progress, user, &d->val, err, errlen))) goto fail;
        if ((st = check_ids(&d->val, validation_file, vocab, err, errlen))) goto fail;
        d->val_src = &d->val;
        d->val_begin = 0;
        d->val_len = d->val.n;
    } else {
        size_t held = (size_t)((double)d->train.n * val_percent / 100.0);
        d->val_src = &d->train;
        d->train_len = d->train.n - held;
        d->val_begin = d->train_len;
        d->val_len = held;
    }
    d->n_train_blocks = d->train_len > 0 ? (d->train_len - 1) / (size_t)T : 0;
    d->n_val_blocks = d->val_len > 0 ? (d->val_len - 1) / (size_t)T : 0;
    if (d->n_train_blocks == 0) {
        snprintf(err, errlen, "%s: %zu training tokens, fewer than block_size + 1 = %d: lower --block_size or give "
                 "more text", train_file, d->train_len, T + 1);
        st = LT_ERR_ARG;
        goto fail;
    }
    if (d->n_train_blocks > UINT32_MAX) {
        snprintf(err, errlen, "%s: too many blocks", train_file);
        st = LT_ERR_ARG;
        goto fail;
    }
    d->order = malloc(d->n_train_blocks * sizeof *d->order);
    if (!d->order) {
        snprintf(err, errlen, "out of memory for the order of %zu blocks", d->n_train_blocks);
        st = LT_ERR_NOMEM;
        goto fail;
    }
    make_order(d);
    return LT_OK;
fail:
    lt_data_close(d);
    return st;
}

void lt_data_limit(lt_data *d, size_t max_train, size_t max_val) {
    if (max_train > 0 && max_train < d->n_train_blocks) d->n_train_blocks = max_train;
    if (max_val > 0 && max_val < d->n_val_blocks) d->n_val_blocks = max_val;
    make_order(d);
}

void lt_data_close(lt_data *d) {
    lt_tokens_close(&d->train);
    lt_tokens_close(&d->val);
    free(d->order);
    memset(d, 0, sizeof *d);
}

void lt_data_seek(lt_data *d, long epoch, size_t index) {
    d->epoch = epoch;
    d->index = index;
    make_order(d);
}

static void copy_block(const lt_tokens *t, size_t start, int T, int32_t *in, int32_t *tg) {
    for (int k = 0; k < T; k++) {
        in[k] = lt_tokens_get(t, start + (size_t)k);
        tg[k] = lt_tokens_get(t, start + (size_t)k + 1);
    }
}

void lt_data_next(lt_data *d, int B, int32_t *inputs, int32_t *targets) {
    if (d->index + (size_t)B > d->n_train_blocks && d->n_train_blocks >= (size_t)B) lt_data_seek(d, d->epoch + 1, 0);
    for (int b = 0; b < B; b++) {
        if (d->index >= d->n_train_blocks) lt_data_seek(d, d->epoch + 1, 0); /* fewer blocks than B: wrap */
        size_t blk = d->order[d->index++];
        copy_block(&d->train, d->train_begin + blk * (size_t)d->T, d->T, inputs + (size_t)b * d->T,
                   targets + (size_t)b * d->T);
    }
}

int lt_data_val_rows(const lt_data *d, size_t first, int rows, int32_t *inputs, int32_t *targets) {
    int n = 0;
    for (; n < rows && first + (size_t)n < d->n_val_blocks; n++) {
        size_t blk = first + (size_t)n;
        copy_block(d->val_src, d->val_begin + blk * (size_t)d->T, d->T, inputs + (size_t)n * d->T,
                   targets + (size_t)n * d->T);
    }
    return n;
}

double lt_data_epoch_float(const lt_data *d) {
    return (double)d->epoch + (double)d->index / (double)d->n_train_blocks;
}
