/* GPT-2 byte-level BPE tokenizer (the tokenizer layer: above io/, below train/ and cli/).
 *
 * Text is bytes. Encoding cuts the text into pre-tokens with GPT-2's pattern
 *
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *
 * run by PCRE2 in UTF mode with Unicode properties (so letters, numbers and
 * spaces are Unicode's classes, not tables of our own), then each pre-token's
 * bytes are merged pairwise by the rank of their merge (lowest rank first,
 * leftmost first among equals, the procedure of GPT-2's encoder and of Hugging
 * Face tokenizers). Every byte is a token of its own before merging, so any byte
 * string encodes and decodes back to exactly itself:
 *
 *   - Invalid UTF-8 (stray continuation bytes, truncated sequences, overlong
 *     forms, surrogates, bytes F5..FF) never matches the pattern: each maximal
 *     run of such bytes between two matches is a pre-token of its own. Valid
 *     text encodes exactly as GPT-2 does; invalid bytes only change how they
 *     themselves are grouped.
 *   - \s is Unicode's White_Space property (the Z categories, TAB..CR,
 *     U+0085), as in Python's regex module, which GPT-2's encoder used, and in
 *     Hugging Face tokenizers; it is spelled out in the pattern because
 *     PCRE2's own \s adds U+180E. JavaScript ports of the encoder differ on
 *     U+0085 (not a space there) and U+FEFF (a space there). Letters and
 *     numbers are those of PCRE2's Unicode version (14 in PCRE2 10.42):
 *     characters assigned later are neither.
 *   - Special tokens (<|endoftext|>) are never produced from text: the string
 *     "<|endoftext|>" in a text is encoded as ordinary text, as GPT-2's own
 *     encoder does. Use lt_tokenizer_eot() to insert the id yourself.
 *
 * Files: GPT-2's encoder.json (token -> id) + vocab.bpe (merges, one per line
 * after a "#version" line); the same under Hugging Face's names vocab.json +
 * merges.txt; or a Hugging Face tokenizer.json whose model is BPE with GPT-2's
 * ByteLevel pre-tokenizer (no normalizer, no prefix space). Token strings in
 * these files are bytes written through GPT-2's byte-to-unicode table.
 *
 * Threads: an lt_tokenizer is immutable after loading and may be shared by any
 * number of threads. Encoding state (the word cache, PCRE2 match data, scratch
 * buffers) lives in an lt_tok_ctx, one per thread. Nothing is global.
 *
 * Errors: functions that can fail return an lt_status and write one line into
 * err naming the file and the problem; nothing exits or aborts. */
#ifndef LT_TOKENIZER_TOKENIZER_H
#define LT_TOKENIZER_TOKENIZER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "io/tokens.h"
#include "leantrain/status.h"

typedef struct lt_tokenizer lt_tokenizer;
typedef struct lt_tok_ctx lt_tok_ctx;

/* A growable array of token ids. Zero-initialize, append with the encoders,
 * release with lt_tok_ids_free. */
typedef struct lt_tok_ids {
    int32_t *ids;
    size_t n, cap;
} lt_tok_ids;

void lt_tok_ids_free(lt_tok_ids *v);

/* ---- loading ---- */

/* Loads a tokenizer from `path`: a folder holding encoder.json + vocab.bpe,
 * vocab.json + merges.txt, or tokenizer.json (tried in that order), or a
 * tokenizer.json file itself. The name "gpt2" (when no such file or folder
 * exists) means the GPT-2 files shipped with leantrain: looked for in
 * $LEANTRAIN_DATA/gpt2, then <program dir>/../data/gpt2 (a build tree), then
 * <program dir>/../share/leantrain/gpt2 (an install), then ./data/gpt2. */
lt_status lt_tokenizer_load(const char *path, lt_tokenizer **out, char *err, size_t errlen);

/* Loads GPT-2's layout: `encoder_json` (a JSON object token -> id) and
 * `merges_path` (vocab.bpe / merges.txt). */
lt_status lt_tokenizer_load_gpt2(const char *encoder_json, const char *merges_path, lt_tokenizer **out, char *err,
                                 size_t errlen);

/* Loads a Hugging Face tokenizer.json (model BPE, pre_tokenizer ByteLevel;
 * merges as "a b" strings or as ["a", "b"] pairs; added_tokens kept for
 * decoding, under the file's ids: one whose id is a vocabulary token's, or
 * whose content is already a token, is that token and has no id of its own,
 * as in Hugging Face). Other kinds are refused with a message saying which
 * field. */
lt_status lt_tokenizer_load_hf(const char *tokenizer_json, lt_tokenizer **out, char *err, size_t errlen);

/* 1 when `dir` holds tokenizer files lt_tokenizer_load would use, else 0. */
int lt_tokenizer_present(const char *dir);

/* Writes the tokenizer into folder `dir` as vocab.json + merges.txt (Hugging
 * Face's GPT-2 names; loadable by lt_tokenizer_load and by transformers'
 * GPT2Tokenizer), each file atomically. */
lt_status lt_tokenizer_save(const lt_tokenizer *t, const char *dir, char *err, size_t errlen);

void lt_tokenizer_free(lt_tokenizer *t);

/* The bytes t holds: its vocabulary and merge tables and its compiled patterns (JIT code included), what a
 * process keeps of it once loaded (the trainer's memory plan counts them); 0 for NULL. */
size_t lt_tokenizer_memory(const lt_tokenizer *t);

/* ---- facts ---- */

/* The vocabulary size: the largest id + 1 (50257 for GPT-2). */
size_t lt_tokenizer_vocab_size(const lt_tokenizer *t);

/* The id of "<|endoftext|>", or -1 when the vocabulary has none. */
int32_t lt_tokenizer_eot(const lt_tokenizer *t);

/* The bytes token `id` stands for (not NUL-terminated) and their count in
 * *len, or NULL when id is not in the vocabulary. */
const char *lt_tokenizer_token_bytes(const lt_tokenizer *t, int32_t id, size_t *len);

/* The file(s) it was loaded from, for messages. */
const char *lt_tokenizer_source(const lt_tokenizer *t);

/* ---- encoding ---- */

/* A per-thread encoding context for t (which must outlive it). NULL when out
 * of memory or when PCRE2 could not set up (message in err). */
lt_tok_ctx *lt_tok_ctx_new(const lt_tokenizer *t, char *err, size_t errlen);
void lt_tok_ctx_free(lt_tok_ctx *c);

/* Encodes text[0..len) (any bytes) and appends the ids to *out. The context's
 * word cache persists across calls (bounded: it never grows past its fixed
 * size). Fails only on out of memory or a PCRE2 matching error. */
lt_status lt_tok_encode(lt_tok_ctx *c, const void *text, size_t len, lt_tok_ids *out, char *err, size_t errlen);

/* Convenience: encodes with a temporary context. */
lt_status lt_tokenizer_encode(const lt_tokenizer *t, const void *text, size_t len, lt_tok_ids *out, char *err,
                              size_t errlen);

/* Encodes text with up to `threads` OpenMP threads (0: OpenMP's default),
 * cutting it at safe points (lt_tokenizer_next_split) so the ids are exactly
 * those of lt_tokenizer_encode. ctxs may be NULL (temporary contexts), or an
 * array of `threads` contexts to reuse (their caches stay warm). Appends to *out. */
lt_status lt_tokenizer_encode_parallel(const lt_tokenizer *t, const void *text, size_t len, int threads,
                                       lt_tok_ctx **ctxs, lt_tok_ids *out, char *err, size_t errlen);

/* The first safe point p with from <= p <= len: a position where the text can
 * be cut and both halves encoded separately with the same ids as the whole.
 * Safe points are after a newline that sits between two non-space characters,
 * and before a space that follows a non-space character and precedes a letter.
 * Returns len when there is none. A point is only reported when the characters
 * that prove it safe lie inside text[0..len), so a chunk of a longer stream
 * can be cut at the point this returns (when < len). */
size_t lt_tokenizer_next_split(const lt_tokenizer *t, const void *text, size_t len, size_t from);

/* ---- decoding ---- */

/* Decodes ids into a malloc'd buffer *text of *len bytes (plus a NUL after
 * them, for convenience). Fails on an id that is not in the vocabulary
 * ("id 60000 is not in the vocabulary (0..50256)"). */
lt_status lt_tokenizer_decode(const lt_tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len, char *err,
                              size_t errlen);

/* ---- files ---- */

/* Progress of lt_tokenize_file and lt_tokenizer_open_tokens: bytes of input
 * read so far and in all (0 when unknown, e.g. a pipe), ids so far. */
typedef void (*lt_tokenize_progress)(void *user, uint64_t done_bytes, uint64_t total_bytes, uint64_t tokens);

/* Opens `path` for training: an llm.c token file as it is; any other file is
 * text, encoded with t into uint16 tokens held in memory (t's vocabulary must
 * fit 16 bits), 8 MiB of text at a time (cut at safe points: the ids of one
 * encode of the whole; the int32 ids of one piece at a time beside the uint16
 * ones), with progress(user, ...) after each piece when progress is not NULL.
 * t NULL: lt_tokens_open (text as bytes). threads as above. */
lt_status lt_tokenizer_open_tokens(const lt_tokenizer *t, const char *path, int threads, lt_tokenize_progress progress,
                                   void *user, lt_tokens *out, char *err, size_t errlen);

/* A text file read line by line as run_clm reads it (datasets' "text" loader): UTF-8 text with universal
 * newlines (CR LF and a lone CR become LF), cut after every LF, each line encoded on its own (so "\n\n" is two
 * ids where the whole text's encoding has one), with its LF (keep_linebreaks, run_clm's default) or without. */
typedef struct lt_text_lines {
    lt_tokens tokens; /* every line's ids in file order (owned: 16-bit, or bytes without a tokenizer) */
    size_t n_lines;
    size_t *first;    /* n_lines + 1 entries: line l's ids are tokens[first[l] .. first[l + 1]) */
} lt_text_lines;

/* Reads `path` into *out as above, 8 MiB of text at a time, the lines of a piece encoded on up to `threads`
 * OpenMP threads (0: OpenMP's default), progress(user, ...) after each piece when not NULL. t NULL: each byte
 * of the normalized text is a token. Fails, naming the file, on an llm.c token file (it has no lines), on bytes
 * that are not UTF-8 (with the offset), on an empty file, or when t's ids do not fit 16 bits. */
lt_status lt_tokenizer_open_lines(const lt_tokenizer *t, const char *path, int keep_linebreaks, int threads,
                                  lt_tokenize_progress progress, void *user, lt_text_lines *out, char *err,
                                  size_t errlen);

/* Releases what lt_tokenizer_open_lines made (a zeroed *l too). */
void lt_text_lines_close(lt_text_lines *l);

typedef struct lt_tokenize_opts {
    int threads;              /* OpenMP threads; 0: OpenMP's default */
    size_t chunk_bytes;       /* bytes read per step; 0: 16 MiB */
    lt_tokenize_progress progress; /* may be NULL; called after every chunk */
    void *user;
    volatile sig_atomic_t *cancel; /* may be NULL; when it becomes non-zero (a signal handler), the
                                      run stops after the current chunk as if it had failed */
} lt_tokenize_opts;

/* Encodes the text file `input` ("-": standard input) into the llm.c token
 * file `output` (header of 256 int32: 20240520, 1, count; then uint16 ids),
 * streaming: the input is read one chunk at a time and cut at a safe point, so
 * memory stays a small multiple of chunk_bytes (5x for English, at most about 11x
 * for text of one byte per token) whatever the input's size. The ids go to
 * a temporary file next to output whose header count is filled in at the end;
 * it is fsync'ed and renamed over output. On any error (or an empty input) the
 * temporary file is removed and output is untouched. *n_tokens and *n_bytes
 * (may be NULL) receive the counts. */
lt_status lt_tokenize_file(const lt_tokenizer *t, const char *input, const char *output, const lt_tokenize_opts *opts,
                           uint64_t *n_tokens, uint64_t *n_bytes, char *err, size_t errlen);

#endif
