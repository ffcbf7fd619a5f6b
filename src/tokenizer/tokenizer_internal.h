/* leantrain (internal): the tokenizer's data structures, shared by its files
 * (load.c builds them, encode.c reads them) and by tests. */
#ifndef LT_TOKENIZER_INTERNAL_H
#define LT_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"

#if PCRE2_MAJOR < 10 || (PCRE2_MAJOR == 10 && PCRE2_MINOR < 34)
#error "PCRE2 10.34 or newer is needed (PCRE2_MATCH_INVALID_UTF)"
#endif

#define LT_TOK_MAX_VOCAB (1 << 24) /* a guard against absurd ids in a file, far above any real vocabulary */
#define LT_TOK_NO_MERGE INT32_MAX

/* (left id, right id) -> the merge's rank and the id of the merged token */
typedef struct {
    uint64_t key; /* left << 32 | right; LT_TOK_EMPTY_KEY when the slot is free */
    int32_t rank, merged;
} lt_tok_merge;
#define LT_TOK_EMPTY_KEY UINT64_MAX

struct lt_tokenizer {
    size_t n_vocab;        /* largest id + 1 */
    uint32_t *tok_off;     /* token id's bytes: tok_bytes[tok_off[id] .. tok_off[id + 1]) */
    uint8_t *tok_present;  /* 0 for ids that no token has (holes in a vocabulary) */
    char *tok_bytes;
    int32_t byte_id[256];  /* the single-byte tokens every encoding starts from */
    int32_t eot;           /* "<|endoftext|>" or -1 */
    /* bytes -> id (every present token whose bytes are unique), open addressing over ids; -1 = free */
    int32_t *bytes_tab;
    size_t bytes_mask;
    /* merges: hash table by pair, and the list in rank order (for saving) */
    lt_tok_merge *merges;
    size_t merges_mask;
    int32_t (*merge_list)[2];
    size_t n_merges;
    /* the pre-tokenizer and the safe-split finder; read-only after compiling, shared by threads */
    pcre2_code *re, *split_re;
    int re_jit, split_jit;
    char source[1100];
    size_t held; /* bytes of the tables above as allocated (lt_tokenizer_memory adds the patterns) */
};

/* Compiles the two PCRE2 patterns into t (encode.c). */
lt_status lt_tok_compile(lt_tokenizer *t, char *err, size_t errlen);

/* A 64-bit hash of n bytes (hash tables and the word cache). */
uint64_t lt_tok_hash(const void *p, size_t n);

/* The id of the token with exactly these bytes, or -1. */
int32_t lt_tok_lookup(const lt_tokenizer *t, const void *bytes, size_t n);

/* Byte-pair encodes one pre-token's bytes into *out (appended), bypassing the
 * cache. method: 0 chooses by length (the way lt_tok_encode does), 1 forces the
 * quadratic scan used for short words, 2 the heap used for long ones: tests
 * check the two agree. */
lt_status lt_tok_bpe_word(lt_tok_ctx *c, const uint8_t *w, size_t n, int method, lt_tok_ids *out, char *err,
                          size_t errlen);

/* GPT-2's byte-to-unicode table: byte b is written as code point b2u[b] in the files. */
void lt_tok_byte_unicode(uint32_t b2u[256]);

/* LT_OK when t's ids fit the 16 bits training data and llm.c token files hold; else LT_ERR_ARG with a message
 * naming path (files.c). */
lt_status lt_tok_fits_u16(const lt_tokenizer *t, const char *path, char *err, size_t errlen);

/* lt_tokenizer_open_tokens with pieces of `piece` bytes of text (the tests' small ones) */
lt_status lt_tok_open_tokens_pieces(const lt_tokenizer *t, const char *path, int threads, size_t piece,
                                    lt_tokenize_progress progress, void *user, lt_tokens *out, char *err,
                                    size_t errlen);

#endif
