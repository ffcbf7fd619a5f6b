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
#include "model/gpt2_decode.h"
#include "model/gpt2_layers.h"
#include "model/sample.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"
#include "train/data.h"

#include <cjson/cJSON.h>

/* generate()'s default end of text: config.json's eos_token_id, else GPT2Config's (50256); -1 when outside the
 * vocabulary (a byte model never ends) */
static long config_eos(const char *config_path, int V) {
    char e[256];
    char *text = lt_read_text_file(config_path, e, sizeof e);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "eos_token_id");
    long id = cJSON_IsNumber(v) ? (long)v->valuedouble : 50256;
    cJSON_Delete(j);
    return id >= 0 && id < V ? id : -1;
}

static void usage(void) {
    fprintf(stderr, "usage: leantrain generate --model_name_or_path DIR [--prompt TEXT | --prompt_ids 1,2,3]\n"
                    "                          [--max_new_tokens N (100)] [--do_sample true|false (true; false: "
                    "greedy)]\n"
                    "                          [--temperature T (1.0; 0: greedy)] [--top_k K (50; 0: all)]\n"
                    "                          [--top_p P (1.0: all)] [--repetition_penalty R (1.0: none)] [--seed S "
                    "(42)]\n"
                    "                          [--eos_token_id ID (config.json's, else 50256; -1: none): stop "
                    "after it]\n"
                    "                          [--tokenizer_name_or_path DIR (default: the model folder's, if any)]\n");
}

int lt_cmd_generate(int argc, char **argv) {
    const char *dir = NULL, *prompt = "", *prompt_ids = NULL, *tok_path = NULL;
    long max_new = 100, eos = -2; /* -2: config.json's */
    lt_sample_params sp = lt_sample_defaults();
    sp.do_sample = 1; /* leantrain samples unless told otherwise (generate()'s default is greedy) */
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
        else if (!strcmp(f, "--temperature")) sp.temperature = strtod(v, &end);
        else if (!strcmp(f, "--top_k")) {
            const long k = strtol(v, &end, 10);
            sp.top_k = k < 0 ? -1 : k > INT32_MAX ? INT32_MAX : (int)k;
        } else if (!strcmp(f, "--top_p")) sp.top_p = strtod(v, &end);
        else if (!strcmp(f, "--repetition_penalty")) sp.repetition_penalty = strtod(v, &end);
        else if (!strcmp(f, "--do_sample")) {
            const int t = !strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "1");
            if (!t && strcmp(v, "false") && strcmp(v, "False") && strcmp(v, "0")) {
                fprintf(stderr, "leantrain generate: --do_sample: bad value '%s': expected true or false\n", v);
                return 2;
            }
            sp.do_sample = t;
        }
        else if (!strcmp(f, "--seed")) seed = strtoull(v, &end, 10);
        else if (!strcmp(f, "--eos_token_id")) eos = strtol(v, &end, 10);
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
    char err[1024], path[1100];
    if (sp.temperature == 0) sp.do_sample = 0, sp.temperature = 1.0; /* temperature 0: greedy */
    if (max_new < 0) {
        fprintf(stderr, "leantrain generate: --max_new_tokens must be >= 0\n");
        return 2;
    }
    if (lt_sample_check(&sp, err, sizeof err)) {
        fprintf(stderr, "leantrain generate: %s\n", err);
        return 2;
    }
    lt_gpt2_config cfg;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (lt_gpt2_config_load(path, &cfg, err, sizeof err)) {
        fprintf(stderr, "leantrain generate: %s\n", err);
        return 1;
    }
    int P = cfg.n_positions, V = cfg.vocab_size;
    /* the context holds at most W = n_positions - 1 tokens: a model trained on run_clm's blocks (leantrain's
       default for text, and run_clm's own) never trained its last position, whose logits have no label (it
       sees only itself), so its embedding is still the initial one; one token less of context costs a model
       that did train it next to nothing */
    const int W = P > 1 ? P - 1 : P;
    if (eos == -2) eos = config_eos(path, V);
    if (eos < -1 || eos >= V) {
        fprintf(stderr, "leantrain generate: --eos_token_id %ld is not a token of this model (0 to %d; -1: none)\n",
                eos, V - 1);
        return 2;
    }
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
    float *scores = malloc((size_t)V * sizeof *scores), *logits = malloc((size_t)V * sizeof *logits);
    lt_gpt2_kv *kv = NULL;
    int *idx = malloc((size_t)V * sizeof *idx);
    lt_gpt2 *m = NULL;
    int rc = 1, n = 0;
    if (!ctx || !scores || !logits || !idx) goto out;
    if (prompt_ids) {
        for (const char *s = prompt_ids; *s && n < W;) {
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
        size_t skip = ids.n > (size_t)W ? ids.n - (size_t)W : 0; /* the prompt's end, if too long */
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
        for (const unsigned char *s = (const unsigned char *)prompt; *s && n < W; s++) ctx[n++] = *s;
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
    /* the prompt in one forward into the key / value cache; then one token's forward per step. Once the context
       fills W positions, the window slides by one token a step (the oldest dropped), and each step is a
       forward of the whole window (the cache's positions would all move) */
    if (lt_gpt2_kv_create(m, P, &kv, err, sizeof err) || lt_gpt2_kv_prefill(m, kv, ctx, n, logits, err, sizeof err)) {
        fprintf(stderr, "leantrain generate: %s\n", err);
        goto out;
    }
    for (long t = 0; t < max_new; t++) {
        /* generate()'s processors over the context's tokens, then its choice */
        memcpy(scores, logits, (size_t)V * sizeof *scores);
        lt_sample_process(scores, V, &sp, ctx, (size_t)n, idx);
        const double u = (double)(lt_splitmix64(&rng) >> 11) / 9007199254740992.0;
        const int next = lt_sample_pick(scores, V, sp.do_sample, u);
        const int slide = n == W; /* keep the last W - 1 tokens */
        if (slide) memmove(ctx, ctx + 1, (size_t)(W - 1) * sizeof *ctx), n = W - 1;
        ctx[n++] = next;
        size_t len;
        const char *bytes = tok ? lt_tokenizer_token_bytes(tok, next, &len) : NULL;
        if (bytes) fwrite(bytes, 1, len, stdout); /* a token may end inside a character: the bytes join up */
        else if (tok) printf("<%d>", next); /* an id the tokenizer lacks (the model's vocabulary is larger) */
        else if (V == 256) putchar(next);
        else printf(",%d", next);
        fflush(stdout);
        if (next == eos || t + 1 == max_new) break; /* generate()'s end: the end-of-text token, printed */
        lt_status st = LT_OK;
        if (!slide && lt_gpt2_kv_len(kv) == n - 1) st = lt_gpt2_kv_step(m, kv, next, logits, err, sizeof err);
        else if ((st = lt_gpt2_forward(m, ctx, NULL, 1, n, err, sizeof err)) == LT_OK)
            memcpy(logits, m->acts.logits + (size_t)(n - 1) * (size_t)V, (size_t)V * sizeof *logits);
        if (st) {
            fprintf(stderr, "\nleantrain generate: %s\n", err);
            goto out;
        }
    }
    printf("\n");
    rc = 0;
out:
    lt_gpt2_kv_free(kv);
    lt_gpt2_free(m);
    lt_tokenizer_free(tok);
    free(ctx), free(scores), free(logits), free(idx);
    return rc;
}
