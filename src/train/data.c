/* Training data: the two layouts' blocks, the split, the per-epoch order (see data.h). */
#include "train/data.h"
#include "util/mt19937.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t lt_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The Trainer's order: its sampler (accelerate's SeedableRandomSampler) draws epoch e's permutation as
   torch.randperm(n, generator seeded data_seed + e) (data_seed: the seed when not given). */
static void make_order(lt_data *d) { lt_randperm_torch(d->order, d->n_train_blocks, d->seed + (uint64_t)d->epoch); }

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

/* The training blocks' order, once their count is known. */
static lt_status finish(lt_data *d, const char *train_file, int block_tokens, char *err, size_t errlen) {
    if (d->n_train_blocks == 0) {
        if (d->layout == LT_DATA_RUN_CLM)
            snprintf(err, errlen, "%s: run_clm's grouping made no block of --block_size %d tokens from %zu training "
                     "tokens (each batch of 1000 lines is cut into blocks and its remainder dropped): lower "
                     "--block_size or give more text", train_file, block_tokens, d->train_len);
        else
            snprintf(err, errlen, "%s: %zu training tokens, fewer than block_size + 1 = %d: lower --block_size or "
                     "give more text", train_file, d->train_len, block_tokens);
        return LT_ERR_ARG;
    }
    if (d->n_train_blocks > UINT32_MAX) {
        snprintf(err, errlen, "%s: too many blocks", train_file);
        return LT_ERR_ARG;
    }
    d->order = malloc(d->n_train_blocks * sizeof *d->order);
    if (!d->order) {
        snprintf(err, errlen, "out of memory for the order of %zu blocks", d->n_train_blocks);
        return LT_ERR_NOMEM;
    }
    make_order(d);
    return LT_OK;
}

static lt_status open_stream(lt_data *d, const lt_data_opts *o, char *err, size_t errlen) {
    const int T = o->block_size;
    lt_status st = lt_tokenizer_open_tokens(o->tok, o->train_file, o->threads, o->progress, o->user, &d->train, err,
                                            errlen);
    if (st) return st;
    if ((st = check_ids(&d->train, o->train_file, o->vocab, err, errlen))) return st;
    d->train_begin = 0;
    d->train_len = d->train.n;
    if (o->validation_file && *o->validation_file) {
        if ((st = lt_tokenizer_open_tokens(o->tok, o->validation_file, o->threads, o->progress, o->user, &d->val, err,
                                           errlen)))
            return st;
        if ((st = check_ids(&d->val, o->validation_file, o->vocab, err, errlen))) return st;
        d->val_src = &d->val;
        d->val_begin = 0;
        d->val_len = d->val.n;
    } else {
        size_t held = (size_t)((double)d->train.n * o->val_percent / 100.0);
        d->val_src = &d->train;
        d->train_len = d->train.n - held;
        d->val_begin = d->train_len;
        d->val_len = held;
    }
    d->T = T;
    d->n_train_blocks = d->train_len > 0 ? (d->train_len - 1) / (size_t)T : 0;
    d->n_val_blocks = d->val_len > 0 ? (d->val_len - 1) / (size_t)T : 0;
    return finish(d, o->train_file, T + 1, err, errlen);
}

/* run_clm's group_texts over lines [a, b) of L: datasets' map(batched=True) in batches of 1000 lines, over
 * `workers` contiguous shards of the lines when it runs with num_proc (datasets' shard(contiguous=True): the
 * first n % workers shards one line longer); each batch's ids cut into blocks of bs, its remainder dropped.
 * starts NULL: counts only. Returns the number of blocks. */
static size_t group_blocks(const lt_text_lines *L, size_t a, size_t b, int bs, int workers, size_t *starts) {
    const size_t n = b - a;
    size_t w = workers > 1 ? (size_t)workers : 1, nb = 0;
    if (w > n) w = n ? n : 1; /* datasets lowers num_proc to the number of rows */
    const size_t div = n / w, mod = n % w;
    for (size_t k = 0; k < w; k++) {
        const size_t s = a + div * k + (k < mod ? k : mod), e = s + div + (k < mod ? 1 : 0);
        for (size_t l = s; l < e; l += 1000) {
            const size_t le = e - l > 1000 ? l + 1000 : e;
            const size_t t0 = L->first[l], cnt = (L->first[le] - t0) / (size_t)bs;
            for (size_t j = 0; j < cnt; j++, nb++)
                if (starts) starts[nb] = t0 + j * (size_t)bs;
        }
    }
    return nb;
}

static lt_status make_starts(const lt_text_lines *L, size_t a, size_t b, int bs, int workers, size_t **starts,
                             size_t *nb, char *err, size_t errlen) {
    *nb = group_blocks(L, a, b, bs, workers, NULL);
    *starts = malloc((*nb ? *nb : 1) * sizeof **starts);
    if (!*starts) {
        snprintf(err, errlen, "out of memory for %zu blocks", *nb);
        return LT_ERR_NOMEM;
    }
    group_blocks(L, a, b, bs, workers, *starts);
    return LT_OK;
}

static lt_status open_run_clm(lt_data *d, const lt_data_opts *o, char *err, size_t errlen) {
    const int bs = o->block_size;
    if (bs < 2) {
        snprintf(err, errlen, "--block_size %d: run_clm's blocks need at least 2 tokens (a block of block_size "
                 "tokens predicts block_size - 1)", bs);
        return LT_ERR_ARG;
    }
    lt_text_lines tl = {0}, vl = {0};
    const int keep = !o->drop_linebreaks;
    lt_status st = lt_tokenizer_open_lines(o->tok, o->train_file, keep, o->threads, o->progress, o->user, &tl, err,
                                           errlen);
    if (st) return st;
    const bool vfile = o->validation_file && *o->validation_file;
    if ((st = check_ids(&tl.tokens, o->train_file, o->vocab, err, errlen))) goto out;
    if (vfile && ((st = lt_tokenizer_open_lines(o->tok, o->validation_file, keep, o->threads, o->progress, o->user,
                                                &vl, err, errlen)) ||
                  (st = check_ids(&vl.tokens, o->validation_file, o->vocab, err, errlen))))
        goto out;
    /* datasets' "train[:p%]" and "train[p%:]": round(p * lines / 100), halves to even */
    const size_t held = vfile ? 0 : (size_t)nearbyint(o->val_percent * (double)tl.n_lines / 100.0);
    if (held > tl.n_lines) {
        snprintf(err, errlen, "--validation_split_percentage %g holds out more than the %zu lines of %s",
                 o->val_percent, tl.n_lines, o->train_file);
        st = LT_ERR_ARG;
        goto out;
    }
    if ((st = make_starts(&tl, held, tl.n_lines, bs, o->workers, &d->train_start, &d->n_train_blocks, err, errlen)))
        goto out;
    if ((st = vfile ? make_starts(&vl, 0, vl.n_lines, bs, o->workers, &d->val_start, &d->n_val_blocks, err, errlen)
                    : make_starts(&tl, 0, held, bs, o->workers, &d->val_start, &d->n_val_blocks, err, errlen)))
        goto out;
    d->train_len = tl.tokens.n - tl.first[held];
    d->train = tl.tokens; /* the tokens move into d; the line tables go */
    memset(&tl.tokens, 0, sizeof tl.tokens);
    if (vfile) {
        d->val = vl.tokens;
        memset(&vl.tokens, 0, sizeof vl.tokens);
        d->val_src = &d->val;
    } else {
        d->val_src = &d->train;
    }
    d->T = bs - 1;
    st = finish(d, o->train_file, bs, err, errlen);
out:
    lt_text_lines_close(&tl);
    lt_text_lines_close(&vl);
    return st;
}

lt_status lt_data_open_opts(lt_data *d, const lt_data_opts *o, char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    d->seed = o->seed;
    d->layout = o->layout;
    d->drop_last = lt_data_trainer_epochs(d) && o->drop_last; /* the Trainer's dataloader; llm.c's whole batches */
    if (!o->train_file || !*o->train_file) {
        snprintf(err, errlen, "no training data: give --train_file (UTF-8 text or an llm.c token file)");
        return LT_ERR_ARG;
    }
    lt_status st = o->layout == LT_DATA_RUN_CLM ? open_run_clm(d, o, err, errlen) : open_stream(d, o, err, errlen);
    if (st) lt_data_close(d);
    return st;
}

lt_status lt_data_open(lt_data *d, const char *train_file, const char *validation_file, double val_percent, int T,
                       int vocab, unsigned long long seed, char *err, size_t errlen) {
    const lt_data_opts o = {.train_file = train_file, .validation_file = validation_file, .val_percent = val_percent,
                            .block_size = T, .vocab = vocab, .seed = seed, .layout = LT_DATA_STREAM, .threads = 1};
    return lt_data_open_opts(d, &o, err, errlen);
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
    free(d->train_start);
    free(d->val_start);
    memset(d, 0, sizeof *d);
}

void lt_data_seek(lt_data *d, long epoch, size_t index) {
    d->epoch = epoch;
    d->index = index;
    make_order(d);
}

/* Block blk's first token: from the run_clm layout's table, or the stream's k * T past begin. */
static size_t block_start(const size_t *table, size_t begin, size_t blk, int T) {
    return table ? table[blk] : begin + blk * (size_t)T;
}

static void copy_block(const lt_tokens *t, size_t start, int T, int32_t *in, int32_t *tg) {
    for (int k = 0; k < T; k++) {
        in[k] = lt_tokens_get(t, start + (size_t)k);
        tg[k] = lt_tokens_get(t, start + (size_t)k + 1);
    }
}

/* With the Trainer's epochs: whether an epoch at index `at` has no batch left (none of its blocks, or with
 * drop_last fewer than B) */
static int epoch_over(const lt_data *d, size_t at, int B) {
    return at >= d->n_train_blocks || (d->drop_last && d->n_train_blocks - at < (size_t)B);
}

/* With the Trainer's epochs: the batches of B in an epoch (the short one counted unless drop_last) */
static size_t epoch_batches(const lt_data *d, int B) {
    const size_t n = d->n_train_blocks;
    return d->drop_last ? n / (size_t)B : (n + (size_t)B - 1) / (size_t)B;
}

int lt_data_next(lt_data *d, int B, int32_t *inputs, int32_t *targets) {
    int rows = B;
    if (lt_data_trainer_epochs(d)) {
        if (epoch_over(d, d->index, B)) lt_data_seek(d, d->epoch + 1, 0);
        if (d->n_train_blocks - d->index < (size_t)B) rows = (int)(d->n_train_blocks - d->index);
    } else if (d->index + (size_t)B > d->n_train_blocks && d->n_train_blocks >= (size_t)B) {
        lt_data_seek(d, d->epoch + 1, 0);
    }
    for (int b = 0; b < rows; b++) {
        if (d->index >= d->n_train_blocks) lt_data_seek(d, d->epoch + 1, 0); /* fewer blocks than B: wrap */
        size_t blk = d->order[d->index++];
        copy_block(&d->train, block_start(d->train_start, d->train_begin, blk, d->T), d->T, inputs + (size_t)b * d->T,
                   targets + (size_t)b * d->T);
    }
    return rows;
}

long lt_data_step_rows(const lt_data *d, int B, int accum, int *micro) {
    if (!lt_data_trainer_epochs(d) || d->n_train_blocks == 0) {
        *micro = accum;
        return (long)B * accum;
    }
    size_t at = epoch_over(d, d->index, B) ? 0 : d->index; /* as lt_data_next moves to the next epoch */
    long rows = 0;
    int k = 0;
    while (k < accum) {
        const size_t r = d->n_train_blocks - at < (size_t)B ? d->n_train_blocks - at : (size_t)B;
        rows += (long)r, at += r, k++;
        if (epoch_over(d, at, B)) break; /* the epoch's last batch ends the step */
    }
    *micro = k;
    return rows;
}

long lt_data_steps_per_epoch(const lt_data *d, int B, int accum) {
    long per = lt_data_trainer_epochs(d) ? (long)((epoch_batches(d, B) + (size_t)accum - 1) / (size_t)accum)
                                         : (long)(d->n_train_blocks / (size_t)B) / accum;
    return per < 1 ? 1 : per;
}

int lt_data_val_rows(const lt_data *d, size_t first, int rows, int32_t *inputs, int32_t *targets) {
    int n = 0;
    for (; n < rows && first + (size_t)n < d->n_val_blocks; n++) {
        size_t blk = first + (size_t)n;
        copy_block(d->val_src, block_start(d->val_start, d->val_begin, blk, d->T), d->T, inputs + (size_t)n * d->T,
                   targets + (size_t)n * d->T);
    }
    return n;
}

double lt_data_epoch_float(const lt_data *d, int B) {
    const size_t batches = lt_data_trainer_epochs(d) && B > 0 ? epoch_batches(d, B) : 0;
    if (batches > 0) /* the Trainer's: epoch + batches done / batches in an epoch */
        return (double)d->epoch + (double)((d->index + (size_t)B - 1) / (size_t)B) / (double)batches;
    return (double)d->epoch + (double)d->index / (double)d->n_train_blocks;
}
