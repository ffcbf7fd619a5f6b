/* `leantrain bench tokenize`: GPT-2 encoding speed in MB/s, one thread and all
 * threads, on a text file or on a generated English-like text; then run_clm's
 * line-by-line reading of the same text. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "cli/commands.h"
#include "io/tokens.h"
#include "tokenizer/tokenizer.h"


static uint64_t rng_next(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* A deterministic English-like text of `len` bytes: a Zipf-distributed vocabulary
 * of 30000 made-up words (so the word cache sees a realistic spread of hits and
 * misses, unlike a small grammar), sentences with punctuation, numbers and
 * contractions, paragraphs, some accented and non-Latin words and code lines. */
static char *synthetic_text(size_t len) {
    static const char *ONSET[] = {"b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w",
                                  "br", "ch", "cr", "dr", "fl", "gr", "pl", "pr", "sh", "st", "th", "tr", "wh", ""};
    static const char *VOWEL[] = {"a", "e", "i", "o", "u", "ea", "ou", "ai", "ee", "oo", "y", "é", "ü"};
    static const char *CODA[] = {"", "", "", "n", "r", "s", "t", "l", "nd", "ng", "st", "ck", "rt", "ll", "sh", "m"};
    static const char *RARE[] = {"naïve", "Москва", "東京", "Ελλάδα", "straße", "café", "🚀", "日本語", "Zürich"};
    static const char *CODE[] = {"    for (int i = 0; i < n; i++) {\n", "        x[i] = y[i] * 2;\n",
                                 "def f(x):\n    return x ** 2  # comment\n", "}\n", "https://example.com/a?b=c&d=e\n"};
    enum { NW = 30000 };
    char (*words)[24] = malloc(NW * sizeof *words);
    double *cdf = malloc(NW * sizeof *cdf);
    char *out = malloc(len + 64);
    if (!words || !cdf || !out) {
        free(words), free(cdf), free(out);
        return NULL;
    }
    uint64_t s = 20241128;
#define PICK(a) a[rng_next(&s) % (sizeof a / sizeof a[0])]
    for (int w = 0; w < NW; w++) {
        words[w][0] = 0;
        int syl = 1 + (int)(rng_next(&s) % 3) + (w > 3000) + (w > 12000);
        for (int k = 0; k < syl && strlen(words[w]) < 16; k++) {
            strcat(words[w], PICK(ONSET));
            strcat(words[w], PICK(VOWEL));
            strcat(words[w], PICK(CODA));
        }
    }
    double z = 0;
    for (int w = 0; w < NW; w++) cdf[w] = (z += 1.0 / (w + 2.7));
    size_t n = 0;
    int sentence_start = 1, in_para = 0;
    while (n < len) {
        char tmp[128];
        const char *piece;
        uint64_t r = rng_next(&s) % 1000;
        if (r < 8) piece = PICK(RARE);
        else if (r < 14) {
            snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)(rng_next(&s) % 100000));
            piece = tmp;
        } else if (r < 18 && sentence_start) piece = PICK(CODE);
        else {
            double u = (double)rng_next(&s) / 2147483648.0 * z;
            int lo = 0, hi = NW - 1;
            while (lo < hi) {
                int mid = (lo + hi) / 2;
                if (cdf[mid] < u) lo = mid + 1;
                else hi = mid;
            }
            snprintf(tmp, sizeof tmp, "%s", words[lo]);
            if (sentence_start && tmp[0] >= 'a' && tmp[0] <= 'z') tmp[0] = (char)(tmp[0] - 32);
            piece = tmp;
        }
        size_t pl = strlen(piece);
        if (n + pl + 4 > len + 60) break;
        if (!sentence_start || in_para) out[n++] = ' ';
        memcpy(out + n, piece, pl);
        n += pl;
        in_para = 1;
        sentence_start = 0;
        uint64_t p = rng_next(&s) % 100;
        if (p < 3) n += (size_t)sprintf(out + n, "'s");
        else if (p < 9) out[n++] = ',';
        else if (p < 16) {
            out[n++] = ".!?"[rng_next(&s) % 3 == 0 ? rng_next(&s) % 3 : 0];
            sentence_start = 1;
            if (rng_next(&s) % 6 == 0) {
                n += (size_t)sprintf(out + n, "\n\n");
                in_para = 0;
            }
        }
    }
#undef PICK
    out[n < len ? n : len] = 0;
    free(words), free(cdf);
    return out;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int lt_cmd_bench_tokenize(int argc, char **argv) {
    const char *input = NULL, *tok_path = "gpt2";
    long threads = 0, reps = 3;
    double mb = 64;
    for (int i = 2; i < argc; i++) {
        if (i + 1 >= argc) {
            fprintf(stderr, "leantrain bench tokenize: %s needs a value\n", argv[i]);
            return 2;
        }
        const char *f = argv[i], *v = argv[++i];
        char *end = NULL;
        if (!strcmp(f, "--input")) input = v;
        else if (!strcmp(f, "--tokenizer_name_or_path")) tok_path = v;
        else if (!strcmp(f, "--threads")) threads = strtol(v, &end, 10);
        else if (!strcmp(f, "--mb")) mb = strtod(v, &end);
        else if (!strcmp(f, "--reps")) reps = strtol(v, &end, 10);
        else {
            fprintf(stderr, "usage: leantrain bench tokenize [--input FILE] [--mb M (64: generated text)] [--threads N]\n"
                            "                                [--reps R (3)] [--tokenizer_name_or_path DIR (gpt2)]\n");
            return 2;
        }
        if (end && (*end || end == v)) {
            fprintf(stderr, "leantrain bench tokenize: %s: bad value '%s'\n", f, v);
            return 2;
        }
    }
    if (threads < 0 || reps < 1 || reps > 100 || !(mb > 0 && mb < 65536)) {
        fprintf(stderr, "leantrain bench tokenize: --threads >= 0, --reps 1..100, --mb > 0\n");
        return 2;
    }
    int nt = threads > 0 ? (int)threads : omp_get_max_threads();
    char err[1024] = "";
    lt_tokenizer *t = NULL;
    if (lt_tokenizer_load(tok_path, &t, err, sizeof err)) {
        fprintf(stderr, "leantrain bench tokenize: %s\n", err);
        return 1;
    }
    lt_tokens file = {0};
    char *gen = NULL;
    const char *text;
    size_t len;
    if (input) {
        if (lt_tokens_open(input, &file, err, sizeof err) || file.bytes != 1) {
            fprintf(stderr, "leantrain bench tokenize: %s\n", file.bytes == 2 ? "--input is a token file, not text" : err);
            lt_tokens_close(&file);
            lt_tokenizer_free(t);
            return 1;
        }
        text = file.data, len = file.n;
    } else {
        len = (size_t)(mb * 1e6);
        if (!(gen = synthetic_text(len))) {
            fprintf(stderr, "leantrain bench tokenize: out of memory\n");
            lt_tokenizer_free(t);
            return 1;
        }
        len = strlen(gen);
        text = gen;
    }
    printf("# tokenizer %s; text: %s, %.1f MB; %ld timed runs each (median), after one warm-up run\n",
           lt_tokenizer_source(t), input ? input : "generated English-like", (double)len / 1e6, reps);
    printf("%-8s %10s %14s %16s\n", "threads", "mb_per_s", "tokens_per_s", "bytes_per_token");
    lt_tok_ctx **ctxs = calloc((size_t)nt, sizeof *ctxs);
    double *times = calloc((size_t)reps, sizeof *times);
    int rc = ctxs && times ? 0 : 1;
    for (int k = 0; k < nt && !rc; k++)
        if (!(ctxs[k] = lt_tok_ctx_new(t, err, sizeof err))) rc = 1;
    int counts[2] = {1, nt};
    for (int pass = 0; pass < (nt > 1 ? 2 : 1) && !rc; pass++) {
        int th = counts[pass];
        lt_tok_ids ids = {0};
        for (long r = -1; r < reps && !rc; r++) { /* r = -1: warm-up (caches, page faults) */
            ids.n = 0;
            double t0 = lt_now_s();
            lt_status st = th == 1 ? lt_tok_encode(ctxs[0], text, len, &ids, err, sizeof err)
                                   : lt_tokenizer_encode_parallel(t, text, len, th, ctxs, &ids, err, sizeof err);
            if (st) rc = 1;
            if (r >= 0) times[r] = lt_now_s() - t0;
        }
        if (!rc) {
            qsort(times, (size_t)reps, sizeof *times, cmp_double);
            double med = times[reps / 2];
            printf("%-8d %10.2f %14.0f %16.3f\n", th, (double)len / 1e6 / med, (double)ids.n / med,
                   (double)len / (double)ids.n);
            fflush(stdout);
        }
        lt_tok_ids_free(&ids);
    }
    /* run_clm's reading (the training data's default for text): the same text from a file, line by line, each line
       encoded on its own (lt_tokenizer_open_lines, nt threads), against the whole-text encoder's rate above */
    if (!rc) {
        char tmp_path[64] = "";
        const char *path = input;
        if (!path) { /* the generated text goes through a temporary file */
            snprintf(tmp_path, sizeof tmp_path, "/tmp/leantrain-bench-lines.XXXXXX");
            int fd = mkstemp(tmp_path);
            FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
            if (!f || fwrite(text, 1, len, f) != len) rc = 1, snprintf(err, sizeof err, "cannot write %s", tmp_path);
            if (f) fclose(f);
            path = tmp_path;
        }
        for (long r = -1; r < reps && !rc; r++) {
            lt_text_lines lines;
            double t0 = lt_now_s();
            if (lt_tokenizer_open_lines(t, path, 1, nt, NULL, NULL, &lines, err, sizeof err)) rc = 1;
            if (r >= 0) times[r] = lt_now_s() - t0;
            if (!rc && r == reps - 1) {
                qsort(times, (size_t)reps, sizeof *times, cmp_double);
                const double med = times[reps / 2];
                printf("%-8s %10.2f %14.0f %16.3f\n", "lines", (double)len / 1e6 / med, (double)lines.tokens.n / med,
                       (double)len / (double)lines.tokens.n);
                printf("# lines: run_clm's reading with %d threads (the file read, each of its %zu lines encoded on "
                       "its own), as train --data_layout run_clm reads a text\n", nt, lines.n_lines);
            }
            if (!rc) lt_text_lines_close(&lines);
        }
        if (tmp_path[0]) remove(tmp_path);
    }
    if (rc) fprintf(stderr, "leantrain bench tokenize: %s\n", err[0] ? err : "out of memory");
    for (int k = 0; ctxs && k < nt; k++) lt_tok_ctx_free(ctxs[k]);
    free(ctxs), free(times), free(gen);
    lt_tokens_close(&file);
    lt_tokenizer_free(t);
    return rc;
}
