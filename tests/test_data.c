/* The training data's run_clm layout (src/train/data.c, src/tokenizer/lines.c) against run_clm.py's own data
 * path run by the real libraries (tests/data/runclm/blocks.json, scripts/make-runclm-reference.py: datasets'
 * text loader, its percent split, the tokenizer per line, group_texts per 1000 lines and per num_proc shard):
 * for the GPT-2 and a small tokenizer, block sizes 7 to 32, 1 and 5 percent held out (26.5 lines rounded to
 * even), a validation file, 3 workers and keep_linebreaks false, every block of both splits has run_clm's ids, and a block of
 * block_size tokens gives block_size - 1 inputs and their next tokens. Then the line reader's own rules on
 * small texts (CR LF and lone CR, a last line without LF, bytes without a tokenizer), its refusals (an llm.c
 * token file, bytes that are not UTF-8, a block of 1 token), and that the stream layout is unchanged: block k
 * is the window at k * T. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "io/tokens.h"
#include "testutil.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"
#include "util/mt19937.h"

static const char *gpt2_dir(void) {
    const char *d = getenv("LT_GPT2_TOKENIZER");
    return d ? d : "data/gpt2";
}

/* tests/data/runclm/NAME parsed (NULL, with a failed check, when it cannot be read or parsed). */
static cJSON *load_json(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/runclm/%s", lt_test_data_dir(), name);
    char *text = lt_test_read_file(path, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(j != NULL, "%s: cannot read or parse", path);
    return j;
}

/* The blocks of one split against the reference's flat ids (nb blocks of bs). */
static void check_split(const char *what, const lt_data *d, const lt_tokens *src, const size_t *starts, size_t n,
                        const cJSON *ref, int bs) {
    const size_t want = (size_t)cJSON_GetArraySize(ref) / (size_t)bs;
    CHECK(n == want, "%s: %zu blocks, run_clm made %zu", what, n, want);
    if (n != want) return;
    size_t bad = 0, first = 0;
    const cJSON *v = ref ? ref->child : NULL;
    for (size_t k = 0; k < n; k++)
        for (int i = 0; i < bs; i++, v = v->next)
            if (lt_tokens_get(src, starts[k] + (size_t)i) != v->valueint && !bad++) first = k;
    CHECK(bad == 0, "%s: %zu ids differ from run_clm's, the first in block %zu", what, bad, first);
    CHECK(d->T == bs - 1, "%s: T %d for block_size %d", what, d->T, bs);
}

static void test_against_run_clm(void) {
    char tpath[600], vpath[600], err[512];
    cJSON *j = load_json("blocks.json");
    if (!j) return;
    lt_tokenizer *gpt2 = NULL, *small = NULL;
    CHECK(lt_tokenizer_load(gpt2_dir(), &gpt2, err, sizeof err) == LT_OK, "%s", err);
    snprintf(tpath, sizeof tpath, "%s/tokenizer/small-tokenizer.json", lt_test_data_dir());
    CHECK(lt_tokenizer_load(tpath, &small, err, sizeof err) == LT_OK, "%s", err);
    snprintf(tpath, sizeof tpath, "%s/runclm/text.txt", lt_test_data_dir());
    const cJSON *c;
    int ncase = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "cases")) {
        const char *tk = cJSON_GetObjectItem(c, "tokenizer")->valuestring;
        const cJSON *vf = cJSON_GetObjectItem(c, "validation_file");
        const int bs = cJSON_GetObjectItem(c, "block_size")->valueint;
        if (cJSON_IsString(vf)) snprintf(vpath, sizeof vpath, "%s/runclm/%s", lt_test_data_dir(), vf->valuestring);
        for (int threads = 1; threads <= 2; threads++) { /* the lines' groups over threads: the same ids */
            const lt_data_opts o = {.train_file = tpath,
                                    .validation_file = cJSON_IsString(vf) ? vpath : NULL,
                                    .val_percent = cJSON_GetObjectItem(c, "pct")->valuedouble,
                                    .block_size = bs,
                                    .vocab = 50257,
                                    .seed = 1,
                                    .layout = LT_DATA_RUN_CLM,
                                    .workers = cJSON_GetObjectItem(c, "num_proc")->valueint,
                                    .drop_linebreaks = cJSON_IsFalse(cJSON_GetObjectItem(c, "keep_linebreaks")),
                                    .tok = strcmp(tk, "gpt2") ? small : gpt2,
                                    .threads = threads};
            lt_data d;
            CHECK(lt_data_open_opts(&d, &o, err, sizeof err) == LT_OK, "case %d: %s", ncase, err);
            char what[96];
            snprintf(what, sizeof what, "case %d (%s, block %d, %d threads) train", ncase, tk, bs, threads);
            check_split(what, &d, &d.train, d.train_start, d.n_train_blocks, cJSON_GetObjectItem(c, "train"), bs);
            snprintf(what, sizeof what, "case %d (%s, block %d, %d threads) validation", ncase, tk, bs, threads);
            check_split(what, &d, d.val_src, d.val_start, d.n_val_blocks, cJSON_GetObjectItem(c, "validation"), bs);
            /* the rows the trainer gets: inputs a block's first bs - 1 ids, targets its last bs - 1 */
            if (d.n_val_blocks > 1) {
                int32_t *in = malloc(sizeof(int32_t) * 2 * (size_t)d.T), *tg = malloc(sizeof(int32_t) * 2 * (size_t)d.T);
                const cJSON *ref = cJSON_GetObjectItem(c, "validation");
                CHECK(lt_data_val_rows(&d, 0, 2, in, tg) == 2, "case %d: two validation rows", ncase);
                int bad = 0;
                for (int r = 0; r < 2; r++)
                    for (int i = 0; i < d.T; i++)
                        bad += in[r * d.T + i] != cJSON_GetArrayItem(ref, r * bs + i)->valueint ||
                               tg[r * d.T + i] != cJSON_GetArrayItem(ref, r * bs + i + 1)->valueint;
                CHECK(bad == 0, "case %d: %d row entries are not the block's shifted ids", ncase, bad);
                free(in), free(tg);
            }
            lt_data_close(&d);
        }
        ncase++;
    }
    CHECK(ncase == 5, "%d cases in blocks.json", ncase);
    lt_tokenizer_free(gpt2);
    lt_tokenizer_free(small);
    cJSON_Delete(j);
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(p, 1, n, f) == n, "cannot write %s", path);
    if (f) fclose(f);
}

/* Without a tokenizer a byte is a token: the lines are the normalized text's. */
static void test_line_rules(void) {
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/data_lines.txt", lt_test_tmp_dir());
    const char raw[] = "ab\r\ncd\r\rx\n\ny";
    const char *want[] = {"ab\n", "cd\n", "\n", "x\n", "\n", "y"};
    write_bytes(path, raw, sizeof raw - 1);
    lt_text_lines L;
    CHECK(lt_tokenizer_open_lines(NULL, path, 1, 1, NULL, NULL, &L, err, sizeof err) == LT_OK, "%s", err);
    CHECK(L.n_lines == 6, "%zu lines, want 6", L.n_lines);
    for (size_t l = 0; l < L.n_lines && l < 6; l++) {
        const size_t n = L.first[l + 1] - L.first[l];
        int same = n == strlen(want[l]);
        for (size_t i = 0; same && i < n; i++) same = lt_tokens_get(&L.tokens, L.first[l] + i) == want[l][i];
        CHECK(same, "line %zu is not \"%s\" with its LF", l, want[l]);
    }
    lt_text_lines_close(&L);
    /* keep_linebreaks false: the same lines without their LF (an empty line is no token) */
    CHECK(lt_tokenizer_open_lines(NULL, path, 0, 1, NULL, NULL, &L, err, sizeof err) == LT_OK, "%s", err);
    CHECK(L.n_lines == 6 && L.tokens.n == 6 && L.first[3] == 4 && lt_tokens_get(&L.tokens, 4) == 'x' &&
              lt_tokens_get(&L.tokens, 5) == 'y',
          "without line breaks: %zu lines, %zu tokens", L.n_lines, L.tokens.n);
    lt_text_lines_close(&L);

    /* refusals, each naming the file: bytes that are not UTF-8 (and where), a token file, a block of 1 */
    const char bad[] = "fine\n\xff\xfe bad\n";
    write_bytes(path, bad, sizeof bad - 1);
    err[0] = 0;
    CHECK(lt_tokenizer_open_lines(NULL, path, 1, 1, NULL, NULL, &L, err, sizeof err) == LT_ERR_FORMAT &&
              strstr(err, "byte 5 is not UTF-8") && strstr(err, path),
          "not UTF-8: %s", err);
    char tpath[512];
    snprintf(tpath, sizeof tpath, "%s/data_lines.bin", lt_test_tmp_dir());
    const int32_t ids[] = {1, 2, 3, 4, 5};
    CHECK(lt_tokens_write(tpath, ids, 5, err, sizeof err) == LT_OK, "%s", err);
    CHECK(lt_tokenizer_open_lines(NULL, tpath, 1, 1, NULL, NULL, &L, err, sizeof err) == LT_ERR_ARG &&
              strstr(err, "llm.c token file") && strstr(err, "--data_layout stream"),
          "token file: %s", err);
    write_bytes(path, raw, sizeof raw - 1);
    lt_data d;
    lt_data_opts o = {.train_file = path, .val_percent = 0, .block_size = 1, .vocab = 256, .layout = LT_DATA_RUN_CLM,
                      .threads = 1};
    CHECK(lt_data_open_opts(&d, &o, err, sizeof err) == LT_ERR_ARG && strstr(err, "--block_size 1"),
          "block_size 1: %s", err);
    /* 11 byte tokens in one batch of 6 lines: blocks of 4 at 0 and 4; the remainder of 3 dropped */
    o.block_size = 4;
    CHECK(lt_data_open_opts(&d, &o, err, sizeof err) == LT_OK, "%s", err);
    CHECK(d.n_train_blocks == 2 && d.n_val_blocks == 0 && d.T == 3 && d.train_start[1] == 4,
          "bytes in blocks of 4: %zu blocks, T %d", d.n_train_blocks, d.T);
    lt_data_close(&d);
    /* the stream layout as before, on the raw 12 bytes: 40% held out (4 tokens: one block at 8), block k the
       T + 1 tokens from k * T */
    CHECK(lt_data_open(&d, path, NULL, 40.0, 3, 256, 1, err, sizeof err) == LT_OK, "%s", err);
    int32_t in[3], tg[3];
    CHECK(d.layout == LT_DATA_STREAM && d.T == 3 && d.n_train_blocks == 2 && lt_data_val_rows(&d, 0, 1, in, tg) == 1 &&
              in[0] == raw[8] && tg[2] == raw[11],
          "stream layout: %zu blocks, T %d, val row %d..%d", d.n_train_blocks, d.T, in[0], tg[2]);
    lt_data_close(&d);
    remove(path), remove(tpath);
}

/* The training order against torch.randperm itself (tests/data/runclm/randperm.json): whole permutations up to
 * 1000, the first and last 8 of longer ones (to 2^24 + 3), a seed past 32 bits. */
static void test_randperm(void) {
    cJSON *j = load_json("randperm.json");
    if (!j) return;
    const cJSON *c;
    int ncase = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "cases")) {
        const size_t n = (size_t)cJSON_GetObjectItem(c, "n")->valuedouble;
        const uint64_t seed = (uint64_t)cJSON_GetObjectItem(c, "seed")->valuedouble;
        uint32_t *p = malloc(n * sizeof *p);
        if (!p) break;
        lt_randperm_torch(p, n, seed);
        const cJSON *all = cJSON_GetObjectItem(c, "all"), *head = cJSON_GetObjectItem(c, "head"),
                    *tail = cJSON_GetObjectItem(c, "tail");
        size_t bad = 0;
        if (cJSON_IsArray(all))
            for (size_t i = 0; i < n; i++) bad += p[i] != (uint32_t)cJSON_GetArrayItem(all, (int)i)->valuedouble;
        const int nh = cJSON_GetArraySize(head), nt = cJSON_GetArraySize(tail);
        for (int i = 0; i < nh; i++) bad += p[i] != (uint32_t)cJSON_GetArrayItem(head, i)->valuedouble;
        for (int i = 0; i < nt; i++) bad += p[n - (size_t)nt + (size_t)i] != (uint32_t)cJSON_GetArrayItem(tail, i)->valuedouble;
        CHECK(bad == 0, "randperm(%zu, seed %llu): %zu values differ from torch's", n, (unsigned long long)seed, bad);
        free(p);
        ncase++;
    }
    CHECK(ncase == 8, "%d randperm cases", ncase);
    cJSON_Delete(j);
}

int main(void) {
    test_randperm();
    test_against_run_clm();
    test_line_rules();
    return lt_test_done("test_data");
}
