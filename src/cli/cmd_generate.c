/* `leantrain generate`: samples a continuation from a trained GPT-2 folder
 * (config.json + model.safetensors, e.g. a checkpoint). With a tokenizer (the
 * folder's own files, or --tokenizer_name_or_path) the prompt is encoded and the
 * continuation decoded; without one, byte-vocabulary models (256 tokens) read
 * and print text as bytes, and others take and print token ids. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "model/gpt2.h"
#include "model/gpt2_layers.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"

static void usage(void) {
    fprintf(stderr, "usage: leantrain generate --model_name_or_path DIR [--prompt TEXT | --prompt_ids 1,2,3]\n"
                    "                          [--max_new_tokens N (100)] [--temperature T (1.0; 0 = greedy)]\n"
                    "                          [--top_k K (40; 0 = all)] [--seed S (42)]\n"
                    "                          [--tokenizer_name_or_path DIR (default: the model folder's, if any)]\n");
}

int lt_cmd_generate(int argc, char **argv) {
    const char *dir = NULL, *prompt = "", *prompt_ids = NULL, *tok_path = NULL;
    long max_new = 100, top_k = 40;
    double temperature = 1.0;
    unsigned long long seed = 42;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (i + 1 >= argc) {
            fprintf(stderr, "leantrain generate: %s needs a value\n", f);
            usage();
            return 2;
        }
        const char *v = argv[++i];
        char *end = NULL;
        if (!strcmp(f, "--model_name_or_path")) dir = v;
        else if (!strcmp(f, "--prompt")) prompt = v;
        else if (!strcmp(f, "--prompt_ids")) prompt_ids = v;
        else if (!strcmp(f, "--tokenizer_name_or_path")) tok_path = v;
        else if (!strcmp(f, "--max_new_tokens")) max_new = strtol(v, &end, 10);
        else if (!strcmp(f, "--temperature")) temperature = strtod(v, &end);
        else if (!strcmp(f, "--top_k")) top_k = strtol(v, &end, 10);
        else if (!strcmp(f, "--seed")) seed = strtoull(v, &end, 10);
        else {
            fprintf(stderr, "leantrain generate: unknown flag '%s'\n", f);
            usage();
            return 2;
        }
        if (end && *end) {
            fprintf(stderr, "leantrain generate: %s: bad value '%s'\n", f, v);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "leantrain generate: --model_name_or_path is required\n");
        usage();
        return 2;
    }
    if (max_new < 0 || top_k < 0 || !(temperature >= 0)) {
        fprintf(stderr, "leantrain generate: --max_new_tokens, --top_k and --temperature must be >= 0\n");
        return 2;
    }
    char err[1024], path[1100];
    lt_gpt2_config cfg;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (lt_gpt2_config_load(path, &cfg, err, sizeof err)) {
        fprintf(stderr, "leantrain generate: %s\n", err);
        return 1;
    }
    int P = cfg.n_positions, V = cfg.vocab_size;
    lt_tokenizer *tok = NULL;
    if (!tok_path && lt_tokenizer_present(dir)) tok_path = dir;
    if (tok_path && lt_tokenizer_load(tok_path, &tok, err, sizeof err)) {
        fprintf(stderr, "leantrain generate: %s\n", err);
        return 1;
    }
    if (tok && lt_tokenizer_vocab_size(tok) > (size_t)V) {
        fprintf(stderr, "leantrain generate: the tokenizer %s has %zu tokens, more than the model's vocab_size %d\n",
                lt_tokenizer_source(tok), lt_tokenizer_vocab_size(tok), V);
        lt_tokenizer_free(tok);
        return 1;
    }
    int32_t *ctx = malloc((size_t)P * sizeof *ctx);
    float *probs = malloc((size_t)V * sizeof *probs);
    int *idx = malloc((size_t)V * sizeof *idx);
    lt_gpt2 *m = NULL;
    int rc = 1, n = 0;
    if (!ctx || !probs || !idx) goto out;
    if (prompt_ids) {
        for (const char *s = prompt_ids; *s && n < P;) {
            char *end;
            long id = strtol(s, &end, 10);
            if (end == s || id < 0 || id >= V) {
                fprintf(stderr, "leantrain generate: --prompt_ids: bad id near '%s' (ids are 0..%d)\n", s, V - 1);
                goto out;
            }
            ctx[n++] = (int32_t)id;
            s = *end == ',' ? end + 1 : end;
        }
    } else if (tok) {
        lt_tok_ids ids = {0};
        if (lt_tokenizer_encode(tok, prompt, strlen(prompt), &ids, err, sizeof err)) {
            fprintf(stderr, "leantrain generate: --prompt: %s\n", err);
            lt_tok_ids_free(&ids);
            goto out;
        }
        size_t skip = ids.n > (size_t)P - 1 ? ids.n - ((size_t)P - 1) : 0; /* the prompt's end, if too long */
        for (size_t i = skip; i < ids.n; i++) ctx[n++] = ids.ids[i];
        lt_tok_ids_free(&ids);
    } else {
        if (V < 256 && prompt[0]) {
            fprintf(stderr, "leantrain generate: this model's vocabulary (%d) is not bytes: use --prompt_ids\n", V);
            goto out;
        }
        if (V != 256 && prompt[0]) {
            fprintf(stderr, "leantrain generate: this model has a %d-token vocabulary and %s has no tokenizer files: give "
                            "--tokenizer_name_or_path (gpt2 for GPT-2's) or --prompt_ids\n", V, dir);
            goto out;
        }
        for (const unsigned char *s = (const unsigned char *)prompt; *s && n < P; s++) ctx[n++] = *s;
    }
    if (n == 0) /* start from <|endoftext|> or a newline */
        ctx[n++] = tok && lt_tokenizer_eot(tok) >= 0 ? lt_tokenizer_eot(tok) : V == 256 ? '\n' : 50256 < V ? 50256 : 0;
    /* OpenBLAS's buffers before the model's memory (lt_nn_blas_reserve: no hang under `ulimit -v`) */
    if (lt_nn_blas_reserve(err, sizeof err) || lt_gpt2_create(&cfg, &m, err, sizeof err) ||
        lt_gpt2_load(m, (snprintf(path, sizeof path, "%s/model.safetensors", dir), path), err, sizeof err) ||
        lt_gpt2_set_batch(m, 1, P, err, sizeof err)) {
        fprintf(stderr, "leantrain generate: %s\n", err);
        goto out;
    }
    if (tok && !prompt_ids) fwrite(prompt, 1, strlen(prompt), stdout);
    else if (tok) {
        for (int i = 0; i < n; i++) {
            size_t len;
            const char *s = lt_tokenizer_token_bytes(tok, ctx[i], &len);
            if (s) fwrite(s, 1, len, stdout);
        }
    } else if (V == 256) fwrite(prompt, 1, strlen(prompt), stdout);
    else
        for (int i = 0; i < n; i++) printf("%s%d", i ? "," : "", ctx[i]);
    uint64_t rng = seed;
    for (long t = 0; t < max_new; t++) {
        int start = n > P ? n - P : 0, T = n - start; /* a sliding window when the context is full */
        if (n == P) { /* keep the last P-1 tokens */
            memmove(ctx, ctx + 1, (size_t)(P - 1) * sizeof *ctx);
            n = P - 1, start = 0, T = n;
        }
        if (lt_gpt2_forward(m, ctx + start, NULL, 1, T, err, sizeof err)) {
            fprintf(stderr, "\nleantrain generate: %s\n", err);
            goto out;
        }
        const float *logits = m->acts.logits + (size_t)(T - 1) * (size_t)V;
        int next = 0;
        if (temperature == 0) {
            for (int v = 1; v < V; v++)
                if (logits[v] > logits[next]) next = v;
        } else {
            int K = top_k > 0 && top_k < V ? (int)top_k : V;
            for (int v = 0; v < V; v++) idx[v] = v;
            for (int k = 0; k < K; k++) { /* partial selection of the K largest */
                int best = k;
                for (int v = k + 1; v < V; v++)
                    if (logits[idx[v]] > logits[idx[best]]) best = v;
                int tmp = idx[k];
                idx[k] = idx[best];
                idx[best] = tmp;
                if (K == V && k > 64) break; /* unbounded: the tail below handles the rest */
            }
            double mx = logits[idx[0]], sum = 0;
            int cnt = K == V ? V : K;
            for (int k = 0; k < cnt; k++) sum += (probs[k] = (float)exp((logits[idx[k]] - mx) / temperature));
            double u = (double)(lt_splitmix64(&rng) >> 11) / 9007199254740992.0 * sum, c = 0;
            next = idx[cnt - 1];
            for (int k = 0; k < cnt; k++)
                if ((c += probs[k]) >= u) {
                    next = idx[k];
                    break;
                }
        }
        ctx[n++] = next;
        size_t len;
        const char *bytes = tok ? lt_tokenizer_token_bytes(tok, next, &len) : NULL;
        if (bytes) fwrite(bytes, 1, len, stdout); /* a token may end inside a character: the bytes join up */
        else if (tok) printf("<%d>", next); /* an id the tokenizer lacks (the model's vocabulary is larger) */
        else if (V == 256) putchar(next);
        else printf(",%d", next);
        fflush(stdout);
    }
    printf("\n");
    rc = 0;
out:
    lt_gpt2_free(m);
    lt_tokenizer_free(tok);
    free(ctx), free(probs), free(idx);
    return rc;
}
