/* The GPT-2 tokenizer: reference encodings (the shared reference.json, written
 * by a JavaScript port of OpenAI's encoder, and a larger set written by Hugging
 * Face tokenizers), lossless round trips on arbitrary bytes, the safe split
 * points and the parallel and streaming encoders built on them, tokenizer.json
 * against encoder.json + vocab.bpe, saving, and the messages for bad files. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "tokenizer/tokenizer_internal.h"

static const char *gpt2_dir(void) {
    const char *d = getenv("LT_GPT2_TOKENIZER");
    return d ? d : "data/gpt2";
}

static uint64_t rng = 12345;
static uint64_t next_u64(void) {
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static size_t rnd(size_t n) { return (size_t)(next_u64() % n); }

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static int same_ids(const lt_tok_ids *a, const lt_tok_ids *b) {
    return a->n == b->n && (a->n == 0 || !memcmp(a->ids, b->ids, a->n * sizeof *a->ids));
}

/* encode, check the ids are in the vocabulary, decode, compare with the input */
static int round_trip(const lt_tokenizer *t, lt_tok_ctx *c, const char *s, size_t n, lt_tok_ids *ids) {
    char err[512];
    ids->n = 0;
    if (lt_tok_encode(c, s, n, ids, err, sizeof err)) {
        fprintf(stderr, "encode failed: %s\n", err);
        return 0;
    }
    for (size_t i = 0; i < ids->n; i++)
        if (ids->ids[i] < 0 || (size_t)ids->ids[i] >= lt_tokenizer_vocab_size(t)) return 0;
    char *back = NULL;
    size_t blen = 0;
    if (lt_tokenizer_decode(t, ids->ids, ids->n, &back, &blen, err, sizeof err)) {
        fprintf(stderr, "decode failed: %s\n", err);
        return 0;
    }
    int ok = blen == n && !memcmp(back, s, n);
    free(back);
    return ok;
}

/* Every {"text", "ids"} of a reference file encodes to exactly its ids and decodes back. */
static void check_reference(const lt_tokenizer *t, const char *file) {
    char path[512];
    size_t len;
    snprintf(path, sizeof path, "%s/tokenizer/%s", lt_test_data_dir(), file);
    char *text = lt_test_read_file(path, &len);
    CHECK(text, "cannot read %s", path);
    if (!text) return;
    cJSON *j = cJSON_Parse(text);
    free(text);
    CHECK(cJSON_IsArray(j) && cJSON_GetArraySize(j) > 0, "%s: not a list", path);
    lt_tok_ctx *c = lt_tok_ctx_new(t, NULL, 0);
    lt_tok_ids v = {0};
    int n = 0, bad = 0;
    for (const cJSON *e = j ? j->child : NULL; e; e = e->next, n++) {
        const char *s = cJSON_GetObjectItem(e, "text")->valuestring;
        const cJSON *ids = cJSON_GetObjectItem(e, "ids");
        int ok = round_trip(t, c, s, strlen(s), &v) && (int)v.n == cJSON_GetArraySize(ids);
        size_t i = 0;
        for (const cJSON *x = ids->child; ok && x; x = x->next, i++) ok = v.ids[i] == x->valueint;
        if (!ok && bad++ < 5) {
            fprintf(stderr, "%s entry %d (%s): got", file, n, s);
            for (size_t k = 0; k < v.n; k++) fprintf(stderr, " %d", v.ids[k]);
            fprintf(stderr, "\n");
        }
        CHECK(ok, "%s entry %d differs from the reference", file, n);
    }
    printf("%s: %d texts, %d differ\n", file, n, bad);
    lt_tok_ids_free(&v);
    lt_tok_ctx_free(c);
    cJSON_Delete(j);
}

/* Text pieces that exercise every branch of the pattern, the split rules and
 * the invalid-UTF-8 path. */
static const char *PIECES[] = {
    "a", "Bb", "word", " the", " ", "  ", "\n", "\n\n", "\t", "\r\n", "'s", "'ll", "'S", "'", "1", "2024", ".", "!?",
    "é", "日本", "Ω", "😀", "\xc2\xa0", "\xe3\x80\x80", "\xe2\x80\x8b", "\xc2\x85", "\xd9\xa3", "\xe2\x85\xa2",
    "\0", "\x01", "\xff", "\xfe\xfe", "\x80", "\xbf\x80", "\xc3", "\xe6\x97", "\xf0\x9f\x98", "\xc0\x80",
    "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf5", "\xe6\x97\xa5\xe6", " \xff", "\xff ",
};
#define NPIECES (sizeof PIECES / sizeof PIECES[0])

/* a piece's byte length: "\0" is one byte */
static size_t piece_len(const char *p) { return p[0] ? strlen(p) : 1; }

static size_t mixed_text(char *buf, size_t cap) {
    size_t n = 0;
    while (n + 8 < cap) {
        const char *p = PIECES[rnd(NPIECES)];
        size_t l = piece_len(p);
        memcpy(buf + n, p, l);
        n += l;
    }
    return n;
}

static void test_round_trips(const lt_tokenizer *t) {
    lt_tok_ctx *c = lt_tok_ctx_new(t, NULL, 0);
    lt_tok_ids v = {0};
    static const struct {
        const char *s;
        size_t n;
    } fixed[] = {
        {"", 0}, {"\xff", 1}, {"\xc3", 1}, {"\xe6\x97", 2}, {"\x80\x80\x80", 3}, {"a\0b\0\0", 5}, {"\xc0\x80", 2},
        {"\xed\xa0\x80", 3}, {"\xf4\x90\x80\x80", 4}, {"\xf8\x88\x80\x80\x80", 5}, {" \xff ", 3}, {"\xff\n\n", 3},
        {"abc\xe6\x97\xa5\xe6\x97", 9}, {"it's\xff's", 8}, {"\0", 1}, {"  \n\xc3", 4},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        CHECK(round_trip(t, c, fixed[i].s, fixed[i].n, &v), "fixed case %zu does not round-trip", i);
    /* invalid bytes sit between valid text untouched: "a\xffb" is a, \xff, b */
    CHECK(round_trip(t, c, "a\xff" "b", 3, &v) && v.n == 3 && v.ids[0] == t->byte_id['a'] &&
              v.ids[1] == t->byte_id[0xff] && v.ids[2] == t->byte_id['b'],
          "a\\xffb: %zu ids", v.n);
    char buf[4096];
    int bad = 0;
    for (int k = 0; k < 3000; k++) { /* random bytes */
        size_t n = rnd(300);
        for (size_t i = 0; i < n; i++) buf[i] = (char)(k % 3 ? rnd(256) : 0x80 + rnd(0x80));
        bad += !round_trip(t, c, buf, n, &v);
    }
    CHECK(bad == 0, "%d random byte strings do not round-trip", bad);
    bad = 0;
    for (int k = 0; k < 2000; k++) { /* text mixed with invalid sequences */
        size_t n = mixed_text(buf, 64 + rnd(600));
        bad += !round_trip(t, c, buf, n, &v);
    }
    CHECK(bad == 0, "%d mixed texts do not round-trip", bad);
    /* one megabyte of random bytes; long runs of one word (the heap merge) */
    size_t big = (size_t)1 << 20;
    char *b = malloc(big);
    for (size_t i = 0; i < big; i++) b[i] = (char)rnd(256);
    CHECK(round_trip(t, c, b, big, &v), "1 MiB of random bytes does not round-trip");
    memset(b, 'a', 100000);
    CHECK(round_trip(t, c, b, 100000, &v) && v.n == 25000, "100000 x 'a': %zu ids", v.n); /* 'aaaa' tokens */
    memset(b, ' ', 50000);
    CHECK(round_trip(t, c, b, 50000, &v), "50000 spaces");
    size_t n = 0;
    while (n + 3 <= 60000) memcpy(b + n, "\xe6\x97\xa5", 3), n += 3; /* 20000 x 日, one \p{L}+ run */
    CHECK(round_trip(t, c, b, n, &v), "20000 x U+65E5");
    memset(b, 0xff, 70000);
    CHECK(round_trip(t, c, b, 70000, &v) && v.n == 70000, "70000 x 0xff: %zu ids", v.n);
    free(b);
    lt_tok_ids_free(&v);
    lt_tok_ctx_free(c);
}

/* The quadratic merge for short words and the heap for long ones agree. */
static void test_merge_paths(const lt_tokenizer *t) {
    lt_tok_ctx *c = lt_tok_ctx_new(t, NULL, 0);
    lt_tok_ids a = {0}, b = {0};
    char buf[1024], err[256];
    int bad = 0;
    static const char *ALPHA[] = {"a", "e", "t", "h", "n", "s", "in", "er", " ", "\xc3\xa9", "\xe6\x97\xa5", "1", "."};
    for (int k = 0; k < 3000; k++) {
        size_t n = 0, target = 2 + rnd(k < 2000 ? 60 : 400);
        while (n < target) {
            const char *p = ALPHA[rnd(sizeof ALPHA / sizeof ALPHA[0])];
            memcpy(buf + n, p, strlen(p));
            n += strlen(p);
        }
        a.n = b.n = 0;
        lt_status s1 = lt_tok_bpe_word(c, (const uint8_t *)buf, n, 1, &a, err, sizeof err);
        lt_status s2 = lt_tok_bpe_word(c, (const uint8_t *)buf, n, 2, &b, err, sizeof err);
        bad += s1 || s2 || !same_ids(&a, &b);
    }
    CHECK(bad == 0, "%d words merge differently by the two methods", bad);
    lt_tok_ids_free(&a), lt_tok_ids_free(&b);
    lt_tok_ctx_free(c);
}

/* A cut at any safe point gives the same ids as the whole; the parallel
 * encoder equals the sequential one; the cache changes nothing. */
static void test_splits(const lt_tokenizer *t) {
    lt_tok_ctx *c = lt_tok_ctx_new(t, NULL, 0);
    lt_tok_ids whole = {0}, parts = {0};
    char buf[2048], err[256];
    int bad = 0, cuts = 0;
    for (int k = 0; k < 400; k++) {
        size_t n = mixed_text(buf, 100 + rnd(400));
        whole.n = 0;
        lt_tok_encode(c, buf, n, &whole, err, sizeof err);
        for (size_t from = 0, p; (p = lt_tokenizer_next_split(t, buf, n, from)) < n; from = p + 1) {
            parts.n = 0;
            lt_tok_encode(c, buf, p, &parts, err, sizeof err);
            lt_tok_encode(c, buf + p, n - p, &parts, err, sizeof err);
            bad += !same_ids(&whole, &parts);
            cuts++;
            CHECK(p >= from && p > 0, "split %zu before from %zu", p, from);
        }
    }
    CHECK(bad == 0 && cuts > 500, "%d of %d cuts change the ids", bad, cuts);
    /* the rules themselves */
    CHECK(lt_tokenizer_next_split(t, "ab\ncd", 5, 0) == 3, "after a newline between letters");
    CHECK(lt_tokenizer_next_split(t, "ab cd", 5, 0) == 2, "before a space before a letter");
    CHECK(lt_tokenizer_next_split(t, "ab  cd", 6, 0) == 6, "not inside a run of spaces");
    CHECK(lt_tokenizer_next_split(t, "ab\n\ncd", 6, 0) == 6, "not between two newlines");
    CHECK(lt_tokenizer_next_split(t, "ab 12", 5, 0) == 5, "not before a space and a digit");
    /* parallel == sequential on a larger text, for several thread counts; the cache is warm on the second pass */
    size_t big = 3u << 20, n = 0;
    char *b = malloc(big);
    while (n + 600 < big) n += mixed_text(b + n, 600);
    lt_tok_ids seq = {0}, par = {0}, fresh = {0};
    lt_tok_encode(c, b, n, &seq, err, sizeof err);
    lt_tok_encode(c, b, n, &fresh, err, sizeof err);
    CHECK(same_ids(&seq, &fresh), "a warm cache changes the ids");
    for (int th = 1; th <= 7; th += 2) {
        par.n = 0;
        CHECK(lt_tokenizer_encode_parallel(t, b, n, th, NULL, &par, err, sizeof err) == LT_OK, "%s", err);
        CHECK(same_ids(&seq, &par), "%d threads: %zu ids, sequential %zu", th, par.n, seq.n);
    }
    free(b);
    lt_tok_ids_free(&whole), lt_tok_ids_free(&parts), lt_tok_ids_free(&seq), lt_tok_ids_free(&par);
    lt_tok_ids_free(&fresh);
    lt_tok_ctx_free(c);
}

/* more distinct words than cache slots: evictions never change an encoding */
static void test_cache_bound(const lt_tokenizer *t) {
    size_t cap = 2u << 20, n = 0;
    char *b = malloc(cap);
    while (n + 20 < cap) {
        size_t l = 2 + rnd(12);
        b[n++] = ' ';
        for (size_t i = 0; i < l; i++) b[n++] = (char)('a' + rnd(26));
    }
    lt_tok_ctx *c = lt_tok_ctx_new(t, NULL, 0);
    lt_tok_ids a = {0}, w = {0}, one = {0};
    char err[256];
    lt_tok_encode(c, b, n, &a, err, sizeof err);
    /* the same words merged one at a time without the cache */
    int bad = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && b[j] != ' ') j++;
        one.n = 0;
        lt_tok_bpe_word(c, (const uint8_t *)b + i, j - i, 0, &one, err, sizeof err);
        for (size_t k = 0; k < one.n; k++) {
            if (w.n == w.cap) {
                w.cap = w.cap ? w.cap * 2 : 1024;
                w.ids = realloc(w.ids, w.cap * sizeof *w.ids);
            }
            w.ids[w.n++] = one.ids[k];
        }
        i = j;
    }
    bad = !same_ids(&a, &w);
    CHECK(!bad, "cached encoding of %zu bytes differs from uncached (%zu vs %zu ids)", n, a.n, w.n);
    free(b);
    lt_tok_ids_free(&a), lt_tok_ids_free(&w), lt_tok_ids_free(&one);
    lt_tok_ctx_free(c);
}

/* A GPT-2 tokenizer.json written from encoder.json + vocab.bpe, with merges in
 * either of Hugging Face's two forms. */
static void write_tokenizer_json(const char *path, int pairs) {
    char p[512];
    size_t len;
    snprintf(p, sizeof p, "%s/encoder.json", gpt2_dir());
    char *enc = lt_test_read_file(p, &len);
    snprintf(p, sizeof p, "%s/vocab.bpe", gpt2_dir());
    char *bpe = lt_test_read_file(p, &len);
    cJSON *root = cJSON_CreateObject(), *model = cJSON_CreateObject(), *merges = cJSON_CreateArray();
    cJSON_AddNullToObject(root, "normalizer");
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "ByteLevel");
    cJSON_AddFalseToObject(pre, "add_prefix_space");
    cJSON_AddTrueToObject(pre, "use_regex");
    cJSON *dec = cJSON_AddObjectToObject(root, "decoder");
    cJSON_AddStringToObject(dec, "type", "ByteLevel");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    cJSON *eot = cJSON_CreateObject();
    cJSON_AddNumberToObject(eot, "id", 50256);
    cJSON_AddStringToObject(eot, "content", "<|endoftext|>");
    cJSON_AddItemToArray(added, eot);
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddItemToObject(model, "vocab", cJSON_Parse(enc));
    for (char *line = strtok(bpe, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "#version", 8)) continue;
        if (pairs) {
            char *sp = strchr(line, ' ');
            *sp = 0;
            const char *two[2] = {line, sp + 1};
            cJSON_AddItemToArray(merges, cJSON_CreateStringArray(two, 2));
        } else {
            cJSON_AddItemToArray(merges, cJSON_CreateString(line));
        }
    }
    cJSON_AddItemToObject(model, "merges", merges);
    cJSON_AddItemToObject(root, "model", model);
    char *out = cJSON_PrintUnformatted(root);
    write_file(path, out);
    free(out), free(enc), free(bpe);
    cJSON_Delete(root);
}

static void compare_tokenizers(const lt_tokenizer *a, const lt_tokenizer *b, const char *what) {
    CHECK(lt_tokenizer_vocab_size(a) == lt_tokenizer_vocab_size(b) && a->n_merges == b->n_merges &&
              lt_tokenizer_eot(a) == lt_tokenizer_eot(b),
          "%s: vocab %zu/%zu merges %zu/%zu", what, lt_tokenizer_vocab_size(a), lt_tokenizer_vocab_size(b),
          a->n_merges, b->n_merges);
    int bad = 0;
    for (size_t id = 0; id < lt_tokenizer_vocab_size(a); id++) {
        size_t la = 0, lb = 0;
        const char *sa = lt_tokenizer_token_bytes(a, (int32_t)id, &la), *sb = lt_tokenizer_token_bytes(b, (int32_t)id, &lb);
        bad += !sa != !sb || (sa && (la != lb || memcmp(sa, sb, la))); /* holes in the same places */
    }
    CHECK(bad == 0, "%s: %d tokens differ", what, bad);
    lt_tok_ctx *ca = lt_tok_ctx_new(a, NULL, 0), *cb = lt_tok_ctx_new(b, NULL, 0);
    lt_tok_ids x = {0}, y = {0};
    char buf[2048], err[256];
    bad = 0;
    for (int k = 0; k < 300; k++) {
        size_t n = mixed_text(buf, 50 + rnd(1500));
        x.n = y.n = 0;
        lt_tok_encode(ca, buf, n, &x, err, sizeof err);
        lt_tok_encode(cb, buf, n, &y, err, sizeof err);
        bad += !same_ids(&x, &y);
    }
    CHECK(bad == 0, "%s: %d texts encode differently", what, bad);
    lt_tok_ids_free(&x), lt_tok_ids_free(&y);
    lt_tok_ctx_free(ca), lt_tok_ctx_free(cb);
}

static void test_formats(const lt_tokenizer *gpt2, const char *tmp) {
    char path[512], err[1024];
    for (int pairs = 0; pairs < 2; pairs++) {
        snprintf(path, sizeof path, "%s/tokenizer-%d.json", tmp, pairs);
        write_tokenizer_json(path, pairs);
        lt_tokenizer *h = NULL;
        CHECK(lt_tokenizer_load(path, &h, err, sizeof err) == LT_OK, "%s", err);
        if (h) compare_tokenizers(gpt2, h, pairs ? "tokenizer.json (pair merges)" : "tokenizer.json (string merges)");
        if (h) check_reference(h, "reference.json");
        lt_tokenizer_free(h);
    }
    /* saved as vocab.json + merges.txt, loaded back through the folder */
    char dir[400];
    snprintf(dir, sizeof dir, "%.300s/saved", tmp);
    mkdir(dir, 0777);
    CHECK(lt_tokenizer_save(gpt2, dir, err, sizeof err) == LT_OK, "%s", err);
    CHECK(lt_tokenizer_present(dir), "saved folder not recognised");
    lt_tokenizer *s = NULL;
    CHECK(lt_tokenizer_load(dir, &s, err, sizeof err) == LT_OK, "%s", err);
    if (s) compare_tokenizers(gpt2, s, "saved vocab.json + merges.txt");
    lt_tokenizer_free(s);
    /* merges.txt round-trips byte for byte; vocab.bpe is GPT-2's own */
    size_t l1 = 0, l2 = 0;
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    char *m1 = lt_test_read_file(path, &l1);
    snprintf(path, sizeof path, "%s/vocab.bpe", gpt2_dir());
    char *m2 = lt_test_read_file(path, &l2);
    CHECK(m1 && m2 && l1 == l2 && !memcmp(m1, m2, l1), "merges.txt differs from vocab.bpe");
    free(m1), free(m2);
    /* a different vocabulary written by Hugging Face tokenizers itself */
    snprintf(path, sizeof path, "%s/tokenizer/small-tokenizer.json", lt_test_data_dir());
    lt_tokenizer *sm = NULL;
    CHECK(lt_tokenizer_load(path, &sm, err, sizeof err) == LT_OK, "%s", err);
    if (sm) {
        CHECK(lt_tokenizer_vocab_size(sm) == 1000 && lt_tokenizer_eot(sm) == 0, "small: vocab %zu eot %d",
              lt_tokenizer_vocab_size(sm), lt_tokenizer_eot(sm));
        check_reference(sm, "small-reference.json");
        lt_tok_ctx *c = lt_tok_ctx_new(sm, NULL, 0);
        lt_tok_ids v = {0};
        char buf[1024];
        int bad = 0;
        for (int k = 0; k < 300; k++) bad += !round_trip(sm, c, buf, mixed_text(buf, 64 + rnd(900)), &v);
        CHECK(bad == 0, "small: %d texts do not round-trip", bad);
        lt_tok_ids_free(&v);
        lt_tok_ctx_free(c);
    }
    lt_tokenizer_free(sm);
}

/* Added tokens whose content is already a token (found by fuzz/fuzz_tokenizer_files: such a tokenizer saved a
 * vocab.json with the same key twice, which did not load back; with the added id below the vocabulary's, the file
 * itself was refused). Hugging Face tokenizers 0.23.3 on this file: "ab" is id 300, ids 256 and 302 are no token,
 * "xab" encodes as [120, 300]; it gives "<|endoftext|>" id 257, not the file's 301 (it renumbers added ids past
 * the vocabulary with a warning), where leantrain keeps the file's id. */
static void test_added_duplicates(const char *tmp) {
    uint32_t b2u[256];
    lt_tok_byte_unicode(b2u);
    cJSON *root = cJSON_CreateObject(), *model = cJSON_CreateObject(), *vocab = cJSON_CreateObject();
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "ByteLevel");
    for (int b = 0; b < 256; b++) {
        char u[4] = {0};
        if (b2u[b] < 0x80) u[0] = (char)b2u[b];
        else u[0] = (char)(0xc0 | (b2u[b] >> 6)), u[1] = (char)(0x80 | (b2u[b] & 0x3f));
        cJSON_AddNumberToObject(vocab, u, b);
    }
    cJSON_AddNumberToObject(vocab, "ab", 300);
    cJSON_AddItemToObject(model, "vocab", vocab);
    const char *pair[2] = {"a", "b"};
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    cJSON_AddItemToArray(merges, cJSON_CreateStringArray(pair, 2));
    cJSON_AddItemToObject(root, "model", model);
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    const int ids[3] = {256, 301, 302};
    const char *content[3] = {"ab", "<|endoftext|>", "ab"};
    for (int k = 0; k < 3; k++) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "id", ids[k]);
        cJSON_AddStringToObject(a, "content", content[k]);
        cJSON_AddItemToArray(added, a);
    }
    char path[512], dir[512], err[1024];
    snprintf(path, sizeof path, "%.400s/added-duplicates.json", tmp);
    char *text = cJSON_PrintUnformatted(root);
    write_file(path, text);
    free(text);
    cJSON_Delete(root);
    lt_tokenizer *t = NULL;
    CHECK(lt_tokenizer_load(path, &t, err, sizeof err) == LT_OK, "%s", err);
    if (!t) return;
    size_t l = 0;
    const char *s300 = lt_tokenizer_token_bytes(t, 300, &l);
    CHECK(s300 && l == 2 && !memcmp(s300, "ab", 2), "id 300 is not \"ab\"");
    CHECK(!lt_tokenizer_token_bytes(t, 256, &l) && !lt_tokenizer_token_bytes(t, 302, &l),
          "an added token repeating \"ab\" kept an id of its own");
    CHECK(lt_tokenizer_eot(t) == 301 && lt_tokenizer_vocab_size(t) == 302, "eot %d, vocabulary %zu (want 301, 302)",
          lt_tokenizer_eot(t), lt_tokenizer_vocab_size(t));
    lt_tok_ids v = {0};
    CHECK(lt_tokenizer_encode(t, "xab", 3, &v, err, sizeof err) == LT_OK && v.n == 2 && v.ids[0] == 120 &&
              v.ids[1] == 300,
          "\"xab\" does not encode as [120, 300]");
    lt_tok_ids_free(&v);
    snprintf(dir, sizeof dir, "%.400s/saved-added", tmp);
    mkdir(dir, 0777);
    CHECK(lt_tokenizer_save(t, dir, err, sizeof err) == LT_OK, "%s", err);
    lt_tokenizer *u = NULL;
    CHECK(lt_tokenizer_load(dir, &u, err, sizeof err) == LT_OK, "saved, it does not load back: %s", err);
    if (u) compare_tokenizers(t, u, "added duplicates, saved and loaded back");
    lt_tokenizer_free(u);
    lt_tokenizer_free(t);
}

/* ---- bad files: one message naming the file and the problem ---- */

/* encoder.json text with the 256 byte tokens (ids 0..255 in byte order) plus `extra` entries */
static void write_byte_vocab(const char *path, const char *extra) {
    uint32_t b2u[256];
    lt_tok_byte_unicode(b2u);
    char *s = malloc(65536);
    size_t n = (size_t)sprintf(s, "{");
    for (int b = 0; b < 256; b++) n += (size_t)sprintf(s + n, "%s\"\\u%04x\": %d", b ? ", " : "", b2u[b], b);
    sprintf(s + n, "%s%s}", extra[0] ? ", " : "", extra);
    write_file(path, s);
    free(s);
}

static void expect_gpt2(const char *enc, const char *bpe, const char *want) {
    lt_tokenizer *t = NULL;
    char err[1024] = "";
    lt_status st = lt_tokenizer_load_gpt2(enc, bpe, &t, err, sizeof err);
    CHECK(st != LT_OK && !t && !strcmp(err, want), "got \"%s\" (status %d), want \"%s\"", err, st, want);
    lt_tokenizer_free(t);
}

static void expect_load(const char *path, const char *want) {
    lt_tokenizer *t = NULL;
    char err[1024] = "";
    lt_status st = lt_tokenizer_load(path, &t, err, sizeof err);
    CHECK(st != LT_OK && !t && !strcmp(err, want), "got \"%s\" (status %d), want \"%s\"", err, st, want);
    lt_tokenizer_free(t);
}

static void test_bad_files(const lt_tokenizer *gpt2, const char *tmp) {
    char enc[512], bpe[512], js[512], want[2048];
    snprintf(enc, sizeof enc, "%s/encoder.json", tmp);
    snprintf(bpe, sizeof bpe, "%s/vocab.bpe", tmp);
    snprintf(js, sizeof js, "%s/tokenizer.json", tmp);
    /* a good small pair first: the bad ones below differ from it in one thing */
    write_byte_vocab(enc, "\"ab\": 256, \"abc\": 257");
    write_file(bpe, "#version: 0.2\na b\nab c\n");
    lt_tokenizer *t = NULL;
    char err[1024];
    CHECK(lt_tokenizer_load_gpt2(enc, bpe, &t, err, sizeof err) == LT_OK, "small good pair: %s", err);
    if (t) {
        lt_tok_ids v = {0};
        lt_tokenizer_encode(t, "abc ab", 6, &v, err, sizeof err);
        CHECK(v.n == 3 && v.ids[0] == 257 && v.ids[1] == t->byte_id[' '] && v.ids[2] == 256,
              "abc ab: %zu ids", v.n);
        lt_tok_ids_free(&v);
        char *text;
        size_t len;
        int32_t bad_ids[2] = {256, 300};
        CHECK(lt_tokenizer_decode(t, bad_ids, 2, &text, &len, err, sizeof err) == LT_ERR_ARG &&
                  !strcmp(err, "id 300 (position 1) is not in the vocabulary (0..257)"),
              "decode of an unknown id: %s", err);
        lt_tokenizer_free(t);
    }
    int32_t big[1] = {50257};
    char *text;
    size_t len;
    CHECK(lt_tokenizer_decode(gpt2, big, 1, &text, &len, err, sizeof err) == LT_ERR_ARG &&
              !strcmp(err, "id 50257 (position 0) is not in the vocabulary (0..50256)"),
          "%s", err);

    snprintf(want, sizeof want, "%s/missing.json: cannot open: No such file or directory", tmp);
    char missing[600];
    snprintf(missing, sizeof missing, "%s/missing.json", tmp);
    expect_gpt2(missing, bpe, want);

    write_file(enc, "{\"a\": 1,");
    snprintf(want, sizeof want, "%s: not valid JSON (error at byte 7)", enc);
    expect_gpt2(enc, bpe, want);

    write_file(enc, "[1, 2]");
    snprintf(want, sizeof want, "%s: expected a JSON object of token -> id", enc);
    expect_gpt2(enc, bpe, want);

    write_byte_vocab(enc, "\"ab\": -1");
    snprintf(want, sizeof want, "%s: token 'ab': the id must be an integer from 0 to 16777215", enc);
    expect_gpt2(enc, bpe, want);

    write_byte_vocab(enc, "\"ab\": \"256\"");
    expect_gpt2(enc, bpe, want);

    write_byte_vocab(enc, "\"a b\": 256");
    snprintf(want, sizeof want,
             "%s: token 'a b' (id 256): character 2 is not in GPT-2's byte alphabet (not a byte-level BPE vocabulary)",
             enc);
    expect_gpt2(enc, bpe, want);

    write_byte_vocab(enc, "\"ab\": 255");
    snprintf(want, sizeof want, "%s: id 255 is used by two tokens", enc);
    expect_gpt2(enc, bpe, want);

    write_file(enc, "{\"a\": 0, \"b\": 1}");
    snprintf(want, sizeof want,
             "%s: no token for byte 0x00 (written '\xc4\x80'): a byte-level BPE vocabulary has all 256 bytes", enc);
    expect_gpt2(enc, bpe, want);

    write_byte_vocab(enc, "\"ab\": 256, \"abc\": 257");
    snprintf(want, sizeof want, "%s/missing.bpe: cannot open: No such file or directory", tmp);
    snprintf(missing, sizeof missing, "%s/missing.bpe", tmp);
    expect_gpt2(enc, missing, want);

    write_file(bpe, "#version: 0.2\n");
    snprintf(want, sizeof want, "%s: no merges (the file has no merge lines)", bpe);
    expect_gpt2(enc, bpe, want);

    write_file(bpe, "#version: 0.2\na b c\n");
    snprintf(want, sizeof want, "%s:2: expected two tokens separated by a space, found more", bpe);
    expect_gpt2(enc, bpe, want);

    write_file(bpe, "#version: 0.2\nab\n");
    snprintf(want, sizeof want, "%s:2: expected two tokens separated by a space, found one", bpe);
    expect_gpt2(enc, bpe, want);

    write_file(bpe, "#version: 0.2\na b\nabx c\n");
    snprintf(want, sizeof want, "%s:3: token 'abx' is not in the vocabulary", bpe);
    expect_gpt2(enc, bpe, want);

    write_file(bpe, "#version: 0.2\na b\nb c\n");
    snprintf(want, sizeof want, "%s:3: the merged token 'bc' is not in the vocabulary", bpe);
    expect_gpt2(enc, bpe, want);

    write_file(bpe, "#version: 0.2\na b\n\na b\n");
    snprintf(want, sizeof want, "%s:4: the merge 'a b' repeats rank 0", bpe);
    expect_gpt2(enc, bpe, want);

    /* tokenizer.json */
    write_file(js, "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}");
    snprintf(want, sizeof want, "%s: pre_tokenizer \"null\" is not supported: only GPT-2's ByteLevel pre-tokenizer is", js);
    expect_load(js, want);

    static const char PRE[] = "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false}";
    char doc[1024];
    snprintf(doc, sizeof doc, "{%s, \"normalizer\": {\"type\": \"NFC\"}, \"model\": {}}", PRE);
    write_file(js, doc);
    snprintf(want, sizeof want, "%s: normalizer \"NFC\" is not supported (GPT-2's byte-level BPE has none)", js);
    expect_load(js, want);

    write_file(js, "{\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true}, \"model\": {}}");
    snprintf(want, sizeof want, "%s: pre_tokenizer.add_prefix_space true is not supported (GPT-2: false)", js);
    expect_load(js, want);

    snprintf(doc, sizeof doc, "{%s, \"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", PRE);
    write_file(js, doc);
    snprintf(want, sizeof want, "%s: model.type \"WordPiece\" is not supported: only BPE", js);
    expect_load(js, want);

    snprintf(doc, sizeof doc, "{%s, \"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}", PRE);
    write_file(js, doc);
    snprintf(want, sizeof want, "%s: model.vocab: the vocabulary is empty", js);
    expect_load(js, want);

    snprintf(doc, sizeof doc, "{%s, \"model\": {\"type\": \"BPE\", \"merges\": [\"a b\"]}}", PRE);
    write_file(js, doc);
    snprintf(want, sizeof want, "%s: model.vocab is missing or not an object of token -> id", js);
    expect_load(js, want);

    /* a full byte vocabulary without merges, then with a malformed one */
    {
        uint32_t b2u[256];
        lt_tok_byte_unicode(b2u);
        char *v = malloc(65536);
        size_t n = (size_t)sprintf(v, "{%s, \"model\": {\"type\": \"BPE\", \"vocab\": {", PRE);
        for (int b = 0; b < 256; b++) n += (size_t)sprintf(v + n, "%s\"\\u%04x\": %d", b ? ", " : "", b2u[b], b);
        char *tail = v + n;
        sprintf(tail, ", \"ab\": 256}, \"merges\": []}}");
        write_file(js, v);
        snprintf(want, sizeof want, "%s: model.merges is missing or empty", js);
        expect_load(js, want);
        sprintf(tail, ", \"ab\": 256}, \"merges\": [\"a b\", \"ab\"]}}");
        write_file(js, v);
        snprintf(want, sizeof want, "%s: model.merges[1]: expected \"left right\" or [\"left\", \"right\"]", js);
        expect_load(js, want);
        sprintf(tail, ", \"ab\": 256}, \"merges\": [[\"a\", \"b\"], [\"ab\", \"q\"]]}}");
        write_file(js, v);
        snprintf(want, sizeof want, "%s: model.merges[1]: the merged token 'abq' is not in the vocabulary", js);
        expect_load(js, want);
        sprintf(tail, ", \"ab\": 256}, \"merges\": [[\"a\", \"b\"]]}, \"decoder\": {\"type\": \"WordPiece\"}}");
        write_file(js, v);
        snprintf(want, sizeof want, "%s: decoder \"WordPiece\" is not supported: only ByteLevel", js);
        expect_load(js, want);
        free(v);
    }

    write_byte_vocab(js, ""); /* an encoder.json given as a file */
    snprintf(want, sizeof want,
             "%s: no \"model\" object: not a Hugging Face tokenizer.json (for encoder.json + vocab.bpe give their folder)",
             js);
    expect_load(js, want);

    write_file(js, "{\"model\": ");
    snprintf(want, sizeof want, "%s: not valid JSON (error at byte 9)", js);
    expect_load(js, want);

    /* folders */
    char empty[600];
    snprintf(empty, sizeof empty, "%s/empty-dir", tmp);
    mkdir(empty, 0777);
    snprintf(want, sizeof want,
             "%s: no tokenizer here (expected encoder.json + vocab.bpe, vocab.json + merges.txt, or tokenizer.json)",
             empty);
    expect_load(empty, want);
    CHECK(!lt_tokenizer_present(empty) && !lt_tokenizer_present(NULL) && !lt_tokenizer_present(""), "present");
    snprintf(missing, sizeof missing, "%s/nothing-here", tmp);
    snprintf(want, sizeof want, "%s: no such file or folder (give a folder with tokenizer files, or gpt2)", missing);
    expect_load(missing, want);
}

/* lt_tokenize_file: tiny chunks (cut at safe points, the buffer grown where a
 * stretch has none) give the ids of one encode; failures leave nothing. */
/* lt_tok_open_tokens_pieces' progress: calls, whether `done` only grew, the last values */
static void piece_progress(void *user, uint64_t done, uint64_t total, uint64_t tokens) {
    struct {
        int calls, monotonic;
        uint64_t last, total, tokens;
    } *p = user;
    p->calls++;
    p->monotonic &= done > p->last;
    p->last = done, p->total = total, p->tokens = tokens;
}

static void test_stream(const lt_tokenizer *t, const char *tmp) {
    char in[512], out[512], err[1024], want_msg[1200];
    snprintf(in, sizeof in, "%s/stream.txt", tmp);
    snprintf(out, sizeof out, "%s/stream.bin", tmp);
    size_t cap = 600000, n = 0;
    char *b = malloc(cap);
    while (n + 700 < cap) n += mixed_text(b + n, 600);
    memset(b + 200000, 'x', 20000); /* 20000 bytes without a safe point: more than a chunk */
    memset(b + 300000, ' ', 9000);
    FILE *f = fopen(in, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
    lt_tok_ids want = {0};
    lt_tokenizer_encode(t, b, n, &want, err, sizeof err);
    for (int th = 1; th <= 3; th += 2) {
        lt_tokenize_opts o = {.threads = th, .chunk_bytes = 4096};
        uint64_t nt = 0, nb = 0;
        CHECK(lt_tokenize_file(t, in, out, &o, &nt, &nb, err, sizeof err) == LT_OK, "%s", err);
        CHECK(nt == want.n && nb == n, "%d threads: %llu tokens, %llu bytes", th, (unsigned long long)nt,
              (unsigned long long)nb);
        lt_tokens tk;
        CHECK(lt_tokens_open(out, &tk, err, sizeof err) == LT_OK && tk.bytes == 2 && tk.n == want.n, "%s", err);
        int bad = 0;
        for (size_t i = 0; i < tk.n && i < want.n; i++) bad += lt_tokens_get(&tk, i) != want.ids[i];
        CHECK(bad == 0, "%d threads: %d ids differ from a single encode", th, bad);
        lt_tokens_close(&tk);
    }
    /* the trainer's in-memory form, in pieces of 4 KiB (the 20000 bytes without a safe point make one longer
       piece): the ids of the single encode, and progress after each piece up to the whole file */
    struct {
        int calls, monotonic;
        uint64_t last, total, tokens;
    } pr = {0, 1, 0, 0, 0};
    lt_tokens mem;
    CHECK(lt_tok_open_tokens_pieces(t, in, 2, 4096, piece_progress, &pr, &mem, err, sizeof err) == LT_OK, "%s", err);
    int bad = mem.bytes == 2 && mem.n == want.n ? 0 : -1;
    for (size_t i = 0; !bad && i < mem.n; i++) bad += lt_tokens_get(&mem, i) != want.ids[i];
    CHECK(bad == 0, "open_tokens in pieces: %zu tokens of %zu bytes each, %d ids differ from a single encode", mem.n,
          (size_t)mem.bytes, bad);
    CHECK(pr.calls >= (int)(n / 8192) && pr.calls <= (int)(n / 4096) + 1 && pr.monotonic && pr.last == n && pr.total == n && pr.tokens == want.n,
          "open_tokens' progress: %d calls, monotonic %d, last %llu of %llu bytes (%zu), %llu tokens", pr.calls,
          pr.monotonic, (unsigned long long)pr.last, (unsigned long long)pr.total, n, (unsigned long long)pr.tokens);
    lt_tokens_close(&mem);
    /* failures: nothing at the output path, no temporary file left */
    unlink(out);
    char missing[600];
    snprintf(missing, sizeof missing, "%s/no-such-input.txt", tmp);
    CHECK(lt_tokenize_file(t, missing, out, NULL, NULL, NULL, err, sizeof err) == LT_ERR_IO, "missing input");
    f = fopen(in, "wb");
    fclose(f);
    CHECK(lt_tokenize_file(t, in, out, NULL, NULL, NULL, err, sizeof err) == LT_ERR_ARG, "empty input: %s", err);
    snprintf(missing, sizeof missing, "%s/no-such-dir/out.bin", tmp);
    f = fopen(in, "wb");
    fwrite("hello", 1, 5, f);
    fclose(f);
    CHECK(lt_tokenize_file(t, in, missing, NULL, NULL, NULL, err, sizeof err) == LT_ERR_IO, "missing folder");
    struct stat sb;
    CHECK(stat(out, &sb) != 0, "a failed run left %s", out);
    CHECK(lt_tokenize_file(t, in, in, NULL, NULL, NULL, err, sizeof err) == LT_ERR_ARG, "output = input accepted");
    snprintf(want_msg, sizeof want_msg, "%s: the output is the input file", in);
    CHECK(!strcmp(err, want_msg), "%s", err);
    CHECK(lt_tokenize_file(t, in, out, NULL, NULL, NULL, err, sizeof err) == LT_OK, "%s", err);
    CHECK(lt_tokenize_file(t, out, in, NULL, NULL, NULL, err, sizeof err) == LT_ERR_ARG, "a token file as input");
    snprintf(want_msg, sizeof want_msg, "%s: already an llm.c token file (it starts with 20240520)", out);
    CHECK(!strcmp(err, want_msg), "%s", err);
    f = fopen(in, "rb");
    char five[8] = "";
    CHECK(f && fread(five, 1, 8, f) == 5 && !memcmp(five, "hello", 5), "the input was changed by a failed run");
    if (f) fclose(f);
    unlink(out);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q 'stream.bin.tmp'", tmp);
    CHECK(system(cmd) != 0, "a temporary file was left in %s", tmp);
    lt_tok_ids_free(&want);
    free(b);
}

int main(void) {
    char tmp[256], err[1024];
    snprintf(tmp, sizeof tmp, "%.200s/tokenizer-test-%ld", lt_test_tmp_dir(), (long)getpid());
    mkdir(lt_test_tmp_dir(), 0777);
    mkdir(tmp, 0777);
    lt_tokenizer *t = NULL;
    CHECK(lt_tokenizer_load(gpt2_dir(), &t, err, sizeof err) == LT_OK, "%s", err);
    if (!t) return lt_test_done("test_tokenizer");
    CHECK(lt_tokenizer_vocab_size(t) == 50257 && lt_tokenizer_eot(t) == 50256 && t->n_merges == 50000,
          "vocab %zu eot %d merges %zu", lt_tokenizer_vocab_size(t), lt_tokenizer_eot(t), t->n_merges);
    check_reference(t, "reference.json");
    check_reference(t, "gpt2-hf-reference.json");
    test_round_trips(t);
    test_merge_paths(t);
    test_splits(t);
    test_cache_bound(t);
    test_formats(t, tmp);
    test_added_duplicates(tmp);
    test_bad_files(t, tmp);
    test_stream(t, tmp);
    lt_tokenizer_free(t);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (!lt_test_failures && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return lt_test_done("test_tokenizer");
}
