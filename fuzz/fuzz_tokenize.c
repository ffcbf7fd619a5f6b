/* libFuzzer entry for the GPT-2 encoder: any bytes are a text. Checks, on
 * the tokenizer shipped in data/gpt2 (or $LEANTRAIN_DATA/gpt2):
 *   - every id is in the vocabulary and the ids decode to exactly the input;
 *   - a context whose word cache holds every earlier input's words encodes
 *     as a fresh context does (the cache never answers for another word);
 *   - the input merged as one word gives the same ids by the quadratic scan
 *     and by the heap (the two merge paths of lt_tok_bpe_word);
 *   - at every safe split point lt_tokenizer_next_split reports (up to 16),
 *     the two halves encoded separately give the ids of the whole, which is
 *     what the parallel and streaming encoders rely on.
 * A broken invariant calls __builtin_trap(). Build with `make fuzz`; see
 * fuzz/README.md. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "tokenizer/tokenizer_internal.h"

static lt_tokenizer *tok;
static lt_tok_ctx *warm; /* kept across inputs: its cache fills up */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    char err[512];
    if (lt_tokenizer_load("gpt2", &tok, err, sizeof err) != LT_OK) {
        fprintf(stderr, "fuzz_tokenize: %s (run from the repository root or set LEANTRAIN_DATA)\n", err);
        exit(1);
    }
    if (!(warm = lt_tok_ctx_new(tok, err, sizeof err))) {
        fprintf(stderr, "fuzz_tokenize: %s\n", err);
        exit(1);
    }
    return 0;
}

static int same(const lt_tok_ids *a, const lt_tok_ids *b) {
    return a->n == b->n && (a->n == 0 || !memcmp(a->ids, b->ids, a->n * sizeof *a->ids));
}

/* the ids' bytes, in order, are exactly text[0..n) */
static void decodes_to(const lt_tok_ids *v, const uint8_t *text, size_t n) {
    size_t at = 0;
    for (size_t i = 0; i < v->n; i++) {
        size_t l = 0;
        const char *s = lt_tokenizer_token_bytes(tok, v->ids[i], &l);
        EXPECT(s && l > 0 && at + l <= n && !memcmp(s, text + at, l));
        at += l;
    }
    EXPECT(at == n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    lt_tok_ids whole = {0}, fresh = {0};
    EXPECT(lt_tok_encode(warm, data, size, &whole, err, sizeof err) == LT_OK);
    decodes_to(&whole, data, size);
    char *text = NULL;
    size_t len = 0;
    EXPECT(lt_tokenizer_decode(tok, whole.ids, whole.n, &text, &len, err, sizeof err) == LT_OK);
    EXPECT(len == size && (size == 0 || !memcmp(text, data, size)));
    free(text);

    EXPECT(lt_tokenizer_encode(tok, data, size, &fresh, err, sizeof err) == LT_OK);
    EXPECT(same(&whole, &fresh));

    if (size > 0 && size <= 1024) {
        lt_tok_ids a = {0}, b = {0};
        EXPECT(lt_tok_bpe_word(warm, data, size, 1, &a, err, sizeof err) == LT_OK);
        EXPECT(lt_tok_bpe_word(warm, data, size, 2, &b, err, sizeof err) == LT_OK);
        EXPECT(same(&a, &b));
        decodes_to(&a, data, size);
        lt_tok_ids_free(&a), lt_tok_ids_free(&b);
    }

    size_t from = 0, p;
    for (int k = 0; k < 16 && (p = lt_tokenizer_next_split(tok, data, size, from)) < size; k++, from = p + 1) {
        EXPECT(p >= from && p > 0);
        lt_tok_ids parts = {0};
        EXPECT(lt_tok_encode(warm, data, p, &parts, err, sizeof err) == LT_OK);
        EXPECT(lt_tok_encode(warm, data + p, size - p, &parts, err, sizeof err) == LT_OK);
        EXPECT(same(&whole, &parts));
        lt_tok_ids_free(&parts);
    }
    lt_tok_ids_free(&whole), lt_tok_ids_free(&fresh);
    return 0;
}
