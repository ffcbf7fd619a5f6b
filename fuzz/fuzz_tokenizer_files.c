/* libFuzzer entry for the tokenizer's file readers. The input's first byte
 * chooses the layout: even, GPT-2's encoder.json + vocab.bpe (the rest cut in
 * two at the first "\n%%\n": the JSON before, the merges after); odd, one
 * Hugging Face tokenizer.json (the rest). The files are written into a
 * private temporary folder and loaded. Any input must either load or fail with
 * a message naming the file; a loaded tokenizer must
 *   - have a token for every byte, and encode a few texts (and the input's own
 *     bytes) into ids that decode back to the text, the same by both merge
 *     paths of lt_tok_bpe_word;
 *   - save as vocab.json + merges.txt and load back with the same ids, bytes,
 *     merges, end-of-text id and encodings.
 * A broken invariant calls __builtin_trap(). Build with `make fuzz`; see
 * fuzz/README.md. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "tokenizer/tokenizer_internal.h"

static char dir[256], saved[300];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/lt-fuzz-tok-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) {
        perror("fuzz_tokenizer_files: mkdtemp");
        exit(1);
    }
    snprintf(saved, sizeof saved, "%s/saved", dir);
    if (mkdir(saved, 0700) != 0) {
        perror("fuzz_tokenizer_files: mkdir");
        exit(1);
    }
    return 0;
}

static void put(const char *name, const uint8_t *p, size_t n, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    EXPECT(f && fwrite(p, 1, n, f) == n && fclose(f) == 0);
}

static int same(const lt_tok_ids *a, const lt_tok_ids *b) {
    return a->n == b->n && (a->n == 0 || !memcmp(a->ids, b->ids, a->n * sizeof *a->ids));
}

/* encodes text with t, checks the round trip and the two merge paths; the ids in *out */
static void encode_checked(const lt_tokenizer *t, const uint8_t *text, size_t n, lt_tok_ids *out) {
    char err[512];
    EXPECT(lt_tokenizer_encode(t, text, n, out, err, sizeof err) == LT_OK);
    char *back = NULL;
    size_t len = 0;
    EXPECT(lt_tokenizer_decode(t, out->ids, out->n, &back, &len, err, sizeof err) == LT_OK);
    EXPECT(len == n && (n == 0 || !memcmp(back, text, n)));
    free(back);
    if (n == 0) return;
    lt_tok_ctx *c = lt_tok_ctx_new(t, err, sizeof err);
    EXPECT(c);
    lt_tok_ids a = {0}, b = {0};
    EXPECT(lt_tok_bpe_word(c, text, n, 1, &a, err, sizeof err) == LT_OK);
    EXPECT(lt_tok_bpe_word(c, text, n, 2, &b, err, sizeof err) == LT_OK);
    EXPECT(same(&a, &b));
    lt_tok_ids_free(&a), lt_tok_ids_free(&b);
    lt_tok_ctx_free(c);
}

static void check(const lt_tokenizer *t, const uint8_t *data, size_t size) {
    static const char *texts[] = {"Hello world, it's 2026!\n\nThe  end.", "\xe4\xbd\xa0\xe5\xa5\xbd \xff\xfe abc",
                                  "<|endoftext|>aaaa bbbb abab"};
    EXPECT(lt_tokenizer_vocab_size(t) >= 256);
    for (int c = 0; c < 256; c++) {
        size_t l = 0;
        const char *s = lt_tokenizer_token_bytes(t, t->byte_id[c], &l);
        EXPECT(s && l == 1 && (uint8_t)s[0] == c);
    }
    char err[512];
    EXPECT(lt_tokenizer_save(t, saved, err, sizeof err) == LT_OK);
    lt_tokenizer *u = NULL;
    if (lt_tokenizer_load(saved, &u, err, sizeof err) != LT_OK) {
        fprintf(stderr, "fuzz_tokenizer_files: the saved tokenizer does not load: %s\n", err);
        __builtin_trap();
    }
    EXPECT(lt_tokenizer_vocab_size(u) == lt_tokenizer_vocab_size(t) && lt_tokenizer_eot(u) == lt_tokenizer_eot(t));
    for (size_t id = 0; id < lt_tokenizer_vocab_size(t); id++) {
        size_t l1 = 0, l2 = 0;
        const char *a = lt_tokenizer_token_bytes(t, (int32_t)id, &l1), *b = lt_tokenizer_token_bytes(u, (int32_t)id, &l2);
        EXPECT(!a == !b && l1 == l2 && (!a || !memcmp(a, b, l1)));
    }
    EXPECT(t->n_merges == u->n_merges &&
           !memcmp(t->merge_list, u->merge_list, t->n_merges * sizeof t->merge_list[0]));
    for (int k = 0; k < 4; k++) {
        const uint8_t *s = k < 3 ? (const uint8_t *)texts[k] : data;
        size_t n = k < 3 ? strlen(texts[k]) : (size < 256 ? size : 256);
        lt_tok_ids a = {0}, b = {0};
        encode_checked(t, s, n, &a);
        encode_checked(u, s, n, &b);
        EXPECT(same(&a, &b));
        lt_tok_ids_free(&a), lt_tok_ids_free(&b);
    }
    lt_tokenizer_free(u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char p1[400], p2[400], err[512];
    lt_tokenizer *t = NULL;
    lt_status st;
    const uint8_t *rest = data + 1;
    size_t n = size - 1;
    if ((data[0] & 1) == 0) {
        const uint8_t *sep = memmem(rest, n, "\n%%\n", 4);
        size_t jn = sep ? (size_t)(sep - rest) : n;
        put("encoder.json", rest, jn, p1, sizeof p1);
        put("vocab.bpe", sep ? sep + 4 : rest + n, sep ? n - jn - 4 : 0, p2, sizeof p2);
        st = lt_tokenizer_load_gpt2(p1, p2, &t, err, sizeof err);
        EXPECT(st == LT_OK || !strncmp(err, p1, strlen(p1)) || !strncmp(err, p2, strlen(p2)));
    } else {
        put("tokenizer.json", rest, n, p1, sizeof p1);
        st = lt_tokenizer_load_hf(p1, &t, err, sizeof err);
        EXPECT(st == LT_OK || !strncmp(err, p1, strlen(p1)));
    }
    EXPECT((st == LT_OK) == (t != NULL));
    if (t) {
        check(t, rest, n);
        lt_tokenizer_free(t);
    }
    return 0;
}
