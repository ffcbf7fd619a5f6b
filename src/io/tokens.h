/* Token data: llm.c token files and UTF-8 text read as bytes.
 *
 * llm.c token file: a header of 256 little-endian int32 (magic 20240520,
 * version 1, token count, the rest 0), then `count` uint16 tokens. The reader
 * validates magic, version and that the size is exactly 1024 + 2 * count. */
#ifndef LT_IO_TOKENS_H
#define LT_IO_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#include "leantrain/status.h"

#define LT_TOKENS_MAGIC 20240520
#define LT_TOKENS_VERSION 1
#define LT_TOKENS_HEADER_BYTES 1024

/* A read-only sequence of token ids. */
typedef struct lt_tokens {
    size_t n;            /* number of tokens */
    int bytes;           /* 1: text read as bytes (vocabulary 256); 2: uint16 token file */
    const void *data;    /* n elements of uint8 or uint16 */
    void *map;           /* the mapping (munmap on close) */
    size_t map_len;      /* bytes held: the mapping's, or the owned buffer's */
    void *owned;         /* or a malloc'd buffer (free on close): tokens made in memory */
    int max_id;          /* the largest id present (computed on open) */
} lt_tokens;

/* Opens `path`: an llm.c token file when it starts with the magic number,
 * otherwise text read as bytes. Empty files are an error. The message names
 * the file and the problem. */
lt_status lt_tokens_open(const char *path, lt_tokens *t, char *err, size_t errlen);

/* Token i (i < t->n). */
static inline int lt_tokens_get(const lt_tokens *t, size_t i) {
    return t->bytes == 1 ? ((const uint8_t *)t->data)[i] : ((const uint16_t *)t->data)[i];
}

/* Makes t the n uint16 tokens ids[0..n), taking ownership of the malloc'd
 * buffer (freed by lt_tokens_close): text encoded in memory. */
void lt_tokens_adopt_u16(lt_tokens *t, uint16_t *ids, size_t n);

/* The same for n byte tokens (text as bytes, made in memory). */
void lt_tokens_adopt_u8(lt_tokens *t, uint8_t *ids, size_t n);

/* A mapped file read once from its start: gives its pages before byte `upto`
 * back to the system (out of the resident set; the mapping is read-only and
 * private, so nothing is lost). Nothing for tokens held in memory. */
void lt_tokens_release_before(const lt_tokens *t, size_t upto);

/* Unmaps (or frees). Safe on a zeroed struct. */
void lt_tokens_close(lt_tokens *t);

/* Writes ids[0..n) as an llm.c token file, atomically. Ids must be < 65536. */
lt_status lt_tokens_write(const char *path, const int32_t *ids, size_t n, char *err, size_t errlen);

#endif
