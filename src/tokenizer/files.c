/* Text files into tokens: in memory for training (lt_tokenizer_open_tokens),
 * and streamed into llm.c token files (lt_tokenize_file). */
#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomic_file.h"
#include "tokenizer/tokenizer_internal.h"

lt_status lt_tok_fits_u16(const lt_tokenizer *t, const char *path, char *err, size_t errlen) {
    if (t->n_vocab <= 65536) return LT_OK;
    snprintf(err, errlen, "%s: the tokenizer has %zu tokens; llm.c token files and training data hold 16-bit ids (65536)",
             path, t->n_vocab);
    return LT_ERR_ARG;
}

lt_status lt_tok_open_tokens_pieces(const lt_tokenizer *t, const char *path, int threads, size_t piece,
                                    lt_tokenize_progress progress, void *user, lt_tokens *out, char *err,
                                    size_t errlen) {
    if (!t) return lt_tokens_open(path, out, err, errlen);
    lt_tokens raw;
    lt_status st = lt_tokens_open(path, &raw, err, errlen);
    if (st) return st;
    if (raw.bytes == 2) { /* already tokens */
        *out = raw;
        return LT_OK;
    }
    memset(out, 0, sizeof *out);
    if ((st = lt_tok_fits_u16(t, path, err, errlen))) {
        lt_tokens_close(&raw);
        return st;
    }
    const char *text = raw.data;
    const size_t len = raw.n;
    lt_tok_ids ids = {0};
    uint16_t *toks = NULL;
    size_t n = 0, cap = 0;
    char e2[512];
    for (size_t from = 0; from < len && !st;) {
        /* the piece ends at the first safe point past `piece` bytes (the text's end when there is none) */
        const size_t to = len - from > piece ? lt_tokenizer_next_split(t, text, len, from + piece) : len;
        ids.n = 0;
        if ((st = lt_tokenizer_encode_parallel(t, text + from, to - from, threads, NULL, &ids, e2, sizeof e2))) {
            snprintf(err, errlen, "%s: tokenizing: %s", path, e2);
            break;
        }
        if (n + ids.n > cap) { /* about a token per 3 bytes of text to come, then half as much again */
            size_t want = n + ids.n + (len - to) / 3 + 16;
            if (want < cap + cap / 2) want = cap + cap / 2;
            uint16_t *nt = realloc(toks, want * sizeof *toks);
            if (!nt) {
                snprintf(err, errlen, "%s: out of memory for %zu tokens", path, want);
                st = LT_ERR_NOMEM;
                break;
            }
            toks = nt, cap = want;
        }
        for (size_t i = 0; i < ids.n; i++) toks[n + i] = (uint16_t)ids.ids[i];
        n += ids.n;
        lt_tokens_release_before(&raw, to); /* the file's pages read so far are done with */
        from = to;
        if (progress) progress(user, from, len, n);
    }
    lt_tok_ids_free(&ids);
    lt_tokens_close(&raw);
    if (st) {
        free(toks);
        return st;
    }
    if (n && n < cap) { /* the estimate's rest given back (kept as it is where realloc cannot) */
        uint16_t *shrunk = realloc(toks, n * sizeof *toks);
        if (shrunk) toks = shrunk;
    }
    if (!toks && !(toks = malloc(sizeof *toks))) { /* an empty text: no tokens, a buffer all the same */
        snprintf(err, errlen, "%s: out of memory", path);
        return LT_ERR_NOMEM;
    }
    lt_tokens_adopt_u16(out, toks, n);
    return LT_OK;
}

lt_status lt_tokenizer_open_tokens(const lt_tokenizer *t, const char *path, int threads, lt_tokenize_progress progress,
                                   void *user, lt_tokens *out, char *err, size_t errlen) {
    return lt_tok_open_tokens_pieces(t, path, threads, (size_t)8 << 20, progress, user, out, err, errlen);
}

/* Reads until buf holds cap bytes or the input ends; *eof set at the end. */
static lt_status fill(int fd, const char *path, char *buf, size_t *have, size_t cap, int *eof,
                      volatile sig_atomic_t *cancel, char *err, size_t errlen) {
    while (*have < cap) {
        if (cancel && *cancel) { /* before blocking on a pipe that may never deliver more */
            snprintf(err, errlen, "%s: interrupted", path);
            return LT_ERR_STATE;
        }
        ssize_t r = read(fd, buf + *have, cap - *have);
        if (r < 0 && errno == EINTR) continue; /* the loop's top stops if it was a cancelling signal */
        if (r < 0) {
            snprintf(err, errlen, "%s: read failed: %s", path, strerror(errno));
            return LT_ERR_IO;
        }
        if (r == 0) {
            *eof = 1;
            break;
        }
        *have += (size_t)r;
    }
    return LT_OK;
}

lt_status lt_tokenize_file(const lt_tokenizer *t, const char *input, const char *output, const lt_tokenize_opts *opts,
                           uint64_t *n_tokens, uint64_t *n_bytes, char *err, size_t errlen) {
    lt_tokenize_opts o = opts ? *opts : (lt_tokenize_opts){0};
    if (n_tokens) *n_tokens = 0;
    if (n_bytes) *n_bytes = 0;
    int threads = o.threads > 0 ? o.threads : omp_get_max_threads();
    size_t cap = o.chunk_bytes ? o.chunk_bytes : (size_t)16 << 20;
    if (cap < 4096) cap = 4096;
    lt_status st = lt_tok_fits_u16(t, lt_tokenizer_source(t), err, errlen);
    if (st) return st;
    int is_stdin = !strcmp(input, "-");
    int fd = is_stdin ? STDIN_FILENO : open(input, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", input, strerror(errno));
        return LT_ERR_IO;
    }
    uint64_t total = 0;
    struct stat sb = {0}, so;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) total = (uint64_t)sb.st_size;
    else if (!is_stdin && fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "%s: is a folder, not a text file", input);
        close(fd);
        return LT_ERR_IO;
    }
    /* the rename at the end would put the tokens in place of the text */
    if (S_ISREG(sb.st_mode) && stat(output, &so) == 0 && so.st_dev == sb.st_dev && so.st_ino == sb.st_ino) {
        snprintf(err, errlen, "%s: the output is the input file", output);
        if (!is_stdin) close(fd);
        return LT_ERR_ARG;
    }
    char *buf = malloc(cap);
    uint16_t *u16 = NULL;
    size_t u16_cap = 0;
    lt_tok_ctx **ctxs = calloc((size_t)threads, sizeof *ctxs);
    lt_atomic_file *af = NULL;
    lt_tok_ids ids = {0};
    uint64_t done = 0, count = 0;
    if (!buf || !ctxs) {
        snprintf(err, errlen, "out of memory for a %zu-byte buffer", cap);
        st = LT_ERR_NOMEM;
        goto out;
    }
    for (int k = 0; k < threads; k++)
        if (!(ctxs[k] = lt_tok_ctx_new(t, err, errlen))) {
            st = LT_ERR_NOMEM;
            goto out;
        }
    if ((st = lt_atomic_open(output, &af, err, errlen))) goto out;
    int32_t head[256] = {0}; /* the count is patched in when known */
    head[0] = LT_TOKENS_MAGIC;
    head[1] = LT_TOKENS_VERSION;
    if ((st = lt_atomic_write(af, head, sizeof head, err, errlen))) goto out;
    size_t have = 0;
    int eof = 0;
    while (!eof || have > 0) {
        if (!eof && (st = fill(fd, input, buf, &have, cap, &eof, o.cancel, err, errlen))) goto out;
        if (have == 0) break;
        if (done == 0 && count == 0 && have >= 4) {
            int32_t magic;
            memcpy(&magic, buf, sizeof magic);
            if (magic == LT_TOKENS_MAGIC) {
                snprintf(err, errlen, "%s: already an llm.c token file (it starts with 20240520)", input);
                st = LT_ERR_ARG;
                goto out;
            }
        }
        size_t cut = have;
        if (!eof) {
            /* cut late in the buffer at a safe point, so no pre-token straddles two chunks;
             * failing that anywhere in it; failing that, read more into a larger buffer */
            size_t from = have - (have / 4 < ((size_t)1 << 20) ? have / 4 : ((size_t)1 << 20));
            cut = lt_tokenizer_next_split(t, buf, have, from);
            if (cut >= have) cut = lt_tokenizer_next_split(t, buf, have, 0);
            if (cut >= have) {
                if (have == cap) {
                    char *nb = realloc(buf, cap * 2);
                    if (!nb) {
                        snprintf(err, errlen, "%s: no safe place to cut within %zu bytes and no memory for more", input,
                                 cap);
                        st = LT_ERR_NOMEM;
                        goto out;
                    }
                    buf = nb, cap *= 2;
                }
                continue;
            }
        }
        ids.n = 0;
        char e2[512];
        if ((st = lt_tokenizer_encode_parallel(t, buf, cut, threads, ctxs, &ids, e2, sizeof e2))) {
            snprintf(err, errlen, "%s: tokenizing: %s", input, e2);
            goto out;
        }
        if (count + ids.n > INT32_MAX) {
            snprintf(err, errlen, "%s: more than %d tokens: the llm.c header holds a 32-bit count; split the input",
                     input, INT32_MAX);
            st = LT_ERR_ARG;
            goto out;
        }
        if (ids.n > u16_cap) {
            uint16_t *p = realloc(u16, ids.n * sizeof *p);
            if (!p) {
                snprintf(err, errlen, "out of memory for %zu token ids", ids.n);
                st = LT_ERR_NOMEM;
                goto out;
            }
            u16 = p, u16_cap = ids.n;
        }
        for (size_t i = 0; i < ids.n; i++) u16[i] = (uint16_t)ids.ids[i];
        if ((st = lt_atomic_write(af, u16, ids.n * sizeof *u16, err, errlen))) goto out;
        count += ids.n;
        done += cut;
        memmove(buf, buf + cut, have - cut);
        have -= cut;
        if (o.progress) o.progress(o.user, done, total, count);
        if (o.cancel && *o.cancel) {
            snprintf(err, errlen, "%s: interrupted", input);
            st = LT_ERR_STATE;
            goto out;
        }
    }
    if (count == 0) {
        snprintf(err, errlen, "%s: the input is empty: no tokens to write", input);
        st = LT_ERR_ARG;
        goto out;
    }
    head[2] = (int32_t)count;
    if (pwrite(lt_atomic_fd(af), head, sizeof head, 0) != (ssize_t)sizeof head) {
        snprintf(err, errlen, "%s: writing the header failed: %s", output, strerror(errno));
        st = LT_ERR_IO;
        goto out;
    }
    st = lt_atomic_commit(af, err, errlen);
    af = NULL;
    if (st == LT_OK) {
        if (n_tokens) *n_tokens = count;
        if (n_bytes) *n_bytes = done;
    }
out:
    if (af) lt_atomic_abort(af);
    if (!is_stdin) close(fd);
    if (ctxs)
        for (int k = 0; k < threads; k++) lt_tok_ctx_free(ctxs[k]);
    free(ctxs), free(buf), free(u16);
    lt_tok_ids_free(&ids);
    return st;
}
