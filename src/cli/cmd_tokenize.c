/* `leantrain tokenize`: text -> llm.c token file with the GPT-2 tokenizer
 * (streaming, so the corpus may be larger than memory), and --decode for the
 * way back. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "cli/commands.h"
#include "io/atomic_file.h"
#include "io/tokens.h"
#include "tokenizer/tokenizer.h"

static void usage(FILE *f) {
    fprintf(f, "usage: leantrain tokenize --input FILE --output FILE.bin [--tokenizer_name_or_path DIR (gpt2)]\n"
               "                          [--threads N (0: all cores)] [--chunk_mb M (16)]\n"
               "       leantrain tokenize --decode --input FILE.bin --output FILE.txt [--tokenizer_name_or_path DIR]\n"
               "Encodes UTF-8 text (any bytes) into an llm.c token file (uint16 ids after a 1024-byte header),\n"
               "reading it in chunks: a corpus larger than memory works. --input - reads standard input.\n"
               "The output appears only when complete (written to a temporary file, then renamed).\n"
               "--decode turns a token file back into text ('-' as output: standard output).\n"
               "DIR holds encoder.json + vocab.bpe, vocab.json + merges.txt or tokenizer.json; gpt2 is the\n"
               "GPT-2 tokenizer that ships with leantrain (data/gpt2).\n");
}

static volatile sig_atomic_t g_cancel = 0;
static void on_signal(int sig) {
    (void)sig;
    g_cancel = 1;
}

/* no SA_RESTART, so a read waiting on a pipe returns at once; SA_RESETHAND: a
 * second signal ends the process the default way */
static void catch_signals(int on) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on ? on_signal : SIG_DFL;
    sa.sa_flags = on ? SA_RESETHAND : 0;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL); /* the terminal went away */
}


typedef struct {
    double t0;
    int shown;
} bar_t;

static void progress(void *user, uint64_t done, uint64_t total, uint64_t tokens) {
    bar_t *b = user;
    double el = lt_now_s() - b->t0, mbs = el > 0 ? (double)done / 1e6 / el : 0;
    if (total > 0) {
        double frac = (double)done / (double)total;
        int w = 30, filled = (int)(frac * w + 0.5);
        fprintf(stderr, "\r[");
        for (int i = 0; i < w; i++) fputc(i < filled ? '#' : '.', stderr);
        fprintf(stderr, "] %3.0f%%  %.1f/%.1f MB  %.1f MB/s  %.2fM tokens ", 100 * frac, (double)done / 1e6,
                (double)total / 1e6, mbs, (double)tokens / 1e6);
    } else {
        fprintf(stderr, "\r%.1f MB  %.1f MB/s  %.2fM tokens ", (double)done / 1e6, mbs, (double)tokens / 1e6);
    }
    fflush(stderr);
    b->shown = 1;
}

static int decode_file(const lt_tokenizer *t, const char *in, const char *out) {
    char err[1024];
    lt_tokens tk;
    if (lt_tokens_open(in, &tk, err, sizeof err)) {
        fprintf(stderr, "leantrain tokenize: %s\n", err);
        return 1;
    }
    if (tk.bytes != 2) {
        fprintf(stderr, "leantrain tokenize: %s: not an llm.c token file (no 20240520 header)\n", in);
        lt_tokens_close(&tk);
        return 1;
    }
    int to_stdout = !strcmp(out, "-");
    lt_atomic_file *af = NULL;
    lt_status st = to_stdout ? LT_OK : lt_atomic_open(out, &af, err, sizeof err);
    int32_t *ids = malloc((size_t)1 << 22);
    const size_t step = ((size_t)1 << 22) / sizeof *ids;
    if (!ids && st == LT_OK) st = LT_ERR_NOMEM, snprintf(err, sizeof err, "out of memory");
    for (size_t i = 0; i < tk.n && st == LT_OK; i += step) {
        size_t n = tk.n - i < step ? tk.n - i : step;
        for (size_t k = 0; k < n; k++) ids[k] = lt_tokens_get(&tk, i + k);
        char *text = NULL, e2[512];
        size_t len = 0;
        st = lt_tokenizer_decode(t, ids, n, &text, &len, e2, sizeof e2);
        if (st) snprintf(err, sizeof err, "%s: token %zu and on: %s", in, i, e2);
        else if (to_stdout) {
            if (fwrite(text, 1, len, stdout) != len) st = LT_ERR_IO, snprintf(err, sizeof err, "writing standard output failed");
        } else {
            st = lt_atomic_write(af, text, len, err, sizeof err);
        }
        free(text);
    }
    if (st == LT_OK && af) st = lt_atomic_commit(af, err, sizeof err), af = NULL;
    if (af) lt_atomic_abort(af);
    free(ids);
    lt_tokens_close(&tk);
    if (st) {
        fprintf(stderr, "leantrain tokenize: %s\n", err);
        return 1;
    }
    return 0;
}

int lt_cmd_tokenize(int argc, char **argv) {
    const char *input = NULL, *output = NULL, *tok_path = "gpt2";
    long threads = 0;
    double chunk_mb = 16;
    int decode = 0;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = NULL;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(f, "--decode")) {
            decode = 1;
            continue;
        }
        char name[64];
        const char *eq = strchr(f, '=');
        size_t nl = eq ? (size_t)(eq - f) : strlen(f);
        snprintf(name, sizeof name, "%.*s", (int)(nl < 63 ? nl : 63), f);
        if (eq) v = eq + 1;
        else if (i + 1 < argc) v = argv[++i];
        else {
            fprintf(stderr, "leantrain tokenize: %s needs a value\n", f);
            usage(stderr);
            return 2;
        }
        char *end = NULL;
        if (!strcmp(name, "--input")) input = v;
        else if (!strcmp(name, "--output")) output = v;
        else if (!strcmp(name, "--tokenizer_name_or_path")) tok_path = v;
        else if (!strcmp(name, "--threads")) threads = strtol(v, &end, 10);
        else if (!strcmp(name, "--chunk_mb")) chunk_mb = strtod(v, &end);
        else {
            fprintf(stderr, "leantrain tokenize: unknown flag '%s'\n", name);
            usage(stderr);
            return 2;
        }
        if (end && (*end || end == v)) {
            fprintf(stderr, "leantrain tokenize: %s: bad value '%s'\n", name, v);
            return 2;
        }
    }
    if (!input || !output) {
        fprintf(stderr, "leantrain tokenize: --input and --output are required\n");
        usage(stderr);
        return 2;
    }
    if (threads < 0 || threads > 1024 || !(chunk_mb >= 0.01 && chunk_mb <= 65536)) {
        fprintf(stderr, "leantrain tokenize: --threads must be 0..1024 and --chunk_mb 0.01..65536\n");
        return 2;
    }
    char err[1024];
    lt_tokenizer *t = NULL;
    if (lt_tokenizer_load(tok_path, &t, err, sizeof err)) {
        fprintf(stderr, "leantrain tokenize: %s\n", err);
        return 1;
    }
    if (decode) {
        int rc = decode_file(t, input, output);
        lt_tokenizer_free(t);
        return rc;
    }
    bar_t bar = {lt_now_s(), 0};
    lt_tokenize_opts o = {.threads = (int)threads, .chunk_bytes = (size_t)(chunk_mb * 1048576.0), .cancel = &g_cancel};
    if (isatty(STDERR_FILENO)) o.progress = progress, o.user = &bar;
    catch_signals(1);
    uint64_t ntok = 0, nbytes = 0;
    lt_status st = lt_tokenize_file(t, input, output, &o, &ntok, &nbytes, err, sizeof err);
    catch_signals(0);
    if (bar.shown) fputc('\n', stderr);
    lt_tokenizer_free(t);
    if (st) {
        fprintf(stderr, "leantrain tokenize: %s\n", err);
        return 1;
    }
    double el = lt_now_s() - bar.t0;
    printf("tokenize: %llu tokens from %llu bytes (%.2f bytes per token) in %.1f s (%.1f MB/s) -> %s\n",
           (unsigned long long)ntok, (unsigned long long)nbytes, (double)nbytes / (double)ntok, el,
           el > 0 ? (double)nbytes / 1e6 / el : 0, output);
    return 0;
}
