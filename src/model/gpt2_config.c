/* GPT-2 configurations: the Hugging Face presets, and config.json parsing
 * with transformers' GPT2Config defaults and a refusal of every option that
 * would change the math this model implements. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/gpt2.h"
#include "util/errmsg.h"

/* Upper bounds that keep every size product far inside size_t and every
 * BLAS dimension inside int, well above any real GPT-2. */
#define MAX_VOCAB (1 << 24)
#define MAX_POSITIONS (1 << 20)
#define MAX_EMBD (1 << 16)
#define MAX_LAYER 4096
#define MAX_CONFIG_BYTES (16u << 20)

lt_status lt_gpt2_config_preset(const char *name, lt_gpt2_config *cfg, char *err, size_t errlen) {
    static const struct {
        const char *name;
        int C, L, NH;
    } presets[] = {
        {"gpt2", 768, 12, 12}, {"gpt2-medium", 1024, 24, 16}, {"gpt2-large", 1280, 36, 20}, {"gpt2-xl", 1600, 48, 25}};
    for (size_t i = 0; name && i < sizeof presets / sizeof presets[0]; i++) {
        if (strcmp(name, presets[i].name) == 0) {
            *cfg = (lt_gpt2_config){.vocab_size = 50257, .n_positions = 1024, .n_embd = presets[i].C,
                                    .n_layer = presets[i].L, .n_head = presets[i].NH, .layer_norm_epsilon = 1e-5};
            return LT_OK;
        }
    }
    lt_errmsg(err, errlen, "unknown GPT-2 preset '%s' (known: gpt2, gpt2-medium, gpt2-large, gpt2-xl)", name ? name : "");
    return LT_ERR_ARG;
}

lt_status lt_gpt2_config_check(const lt_gpt2_config *c, char *err, size_t errlen) {
    const struct {
        const char *key;
        int v, max;
    } dims[] = {{"vocab_size", c->vocab_size, MAX_VOCAB},
                {"n_positions", c->n_positions, MAX_POSITIONS},
                {"n_embd", c->n_embd, MAX_EMBD},
                {"n_layer", c->n_layer, MAX_LAYER},
                {"n_head", c->n_head, MAX_EMBD}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        if (dims[i].v < 1 || dims[i].v > dims[i].max) {
            lt_errmsg(err, errlen, "config: %s %d is out of range (1 to %d)", dims[i].key, dims[i].v, dims[i].max);
            return LT_ERR_ARG;
        }
    }
    if (c->n_embd % c->n_head != 0) {
        lt_errmsg(err, errlen, "config: n_embd %d is not divisible by n_head %d", c->n_embd, c->n_head);
        return LT_ERR_ARG;
    }
    if (!(c->layer_norm_epsilon >= 0.0) || !isfinite(c->layer_norm_epsilon)) {
        lt_errmsg(err, errlen, "config: layer_norm_epsilon %g must be a finite number >= 0", c->layer_norm_epsilon);
        return LT_ERR_ARG;
    }
    const struct {
        const char *key;
        double p;
    } drops[] = {{"embd_pdrop", c->embd_pdrop}, {"resid_pdrop", c->resid_pdrop}, {"attn_pdrop", c->attn_pdrop}};
    for (size_t i = 0; i < sizeof drops / sizeof drops[0]; i++) {
        if (!(drops[i].p >= 0.0 && drops[i].p < 1.0)) {
            lt_errmsg(err, errlen, "config: %s %g is out of range (a dropout probability: 0 <= p < 1)", drops[i].key,
                drops[i].p);
            return LT_ERR_ARG;
        }
    }
    return LT_OK;
}

size_t lt_gpt2_config_num_params(const lt_gpt2_config *c) {
    size_t V = (size_t)c->vocab_size, P = (size_t)c->n_positions, C = (size_t)c->n_embd, L = (size_t)c->n_layer;
    return V * C + P * C + L * (12 * C * C + 13 * C) + 2 * C;
}

/* Reads integer key `key` of `root` into *out if present (else keeps the default). */
static int get_int(const cJSON *root, const char *key, int *out, const char *label, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v) return 1;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 ||
        v->valuedouble > 2147483647.0) {
        char *txt = cJSON_PrintUnformatted(v);
        lt_errmsg(err, errlen, "%s: %s must be a positive integer, got %s", label, key, txt ? txt : "?");
        free(txt);
        return 0;
    }
    *out = (int)v->valuedouble;
    return 1;
}

/* A boolean option whose only supported value is `want`: absent is fine. */
static int require_bool(const cJSON *root, const char *key, int want, const char *why, const char *label, char *err,
                        size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return 1;
    if (!cJSON_IsBool(v)) {
        lt_errmsg(err, errlen, "%s: %s must be true or false", label, key);
        return 0;
    }
    if ((cJSON_IsTrue(v) ? 1 : 0) != want) {
        lt_errmsg(err, errlen, "%s: %s=%s is not supported (%s)", label, key, want ? "false" : "true", why);
        return 0;
    }
    return 1;
}

lt_status lt_gpt2_config_from_json(const char *json, const char *label, lt_gpt2_config *cfg, char *err,
                                   size_t errlen) {
    if (!label) label = "config";
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    if (!root || !cJSON_IsObject(root)) {
        lt_errmsg(err, errlen, "%s: not a JSON object", label);
        cJSON_Delete(root);
        return LT_ERR_FORMAT;
    }
    /* GPT2Config's defaults (transformers), used for absent keys */
    lt_gpt2_config c = {.vocab_size = 50257, .n_positions = 1024, .n_embd = 768, .n_layer = 12, .n_head = 12,
                        .layer_norm_epsilon = 1e-5, .embd_pdrop = 0.1, .resid_pdrop = 0.1, .attn_pdrop = 0.1};
    lt_status st = LT_ERR_ARG;
    const cJSON *v;
    if (!get_int(root, "vocab_size", &c.vocab_size, label, err, errlen) ||
        !get_int(root, "n_positions", &c.n_positions, label, err, errlen) ||
        !get_int(root, "n_embd", &c.n_embd, label, err, errlen) ||
        !get_int(root, "n_layer", &c.n_layer, label, err, errlen) ||
        !get_int(root, "n_head", &c.n_head, label, err, errlen))
        goto out;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "layer_norm_epsilon"))) {
        if (!cJSON_IsNumber(v)) {
            lt_errmsg(err, errlen, "%s: layer_norm_epsilon must be a number", label);
            goto out;
        }
        c.layer_norm_epsilon = v->valuedouble;
    }
    const struct {
        const char *key;
        double *p;
    } drops[] = {{"embd_pdrop", &c.embd_pdrop}, {"resid_pdrop", &c.resid_pdrop}, {"attn_pdrop", &c.attn_pdrop}};
    for (size_t i = 0; i < sizeof drops / sizeof drops[0]; i++) {
        if (!(v = cJSON_GetObjectItemCaseSensitive(root, drops[i].key))) continue;
        if (!cJSON_IsNumber(v)) {
            lt_errmsg(err, errlen, "%s: %s must be a number", label, drops[i].key);
            goto out;
        }
        *drops[i].p = v->valuedouble;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "model_type")) &&
        !(cJSON_IsString(v) && strcmp(v->valuestring, "gpt2") == 0)) {
        lt_errmsg(err, errlen, "%s: model_type %s is not gpt2", label, cJSON_IsString(v) ? v->valuestring : "(not a string)");
        goto out;
    }
    /* gelu_pytorch_tanh is the same tanh formula under torch's name */
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "activation_function")) &&
        !(cJSON_IsString(v) && (strcmp(v->valuestring, "gelu_new") == 0 ||
                                strcmp(v->valuestring, "gelu_pytorch_tanh") == 0))) {
        lt_errmsg(err, errlen, "%s: activation_function '%s' is not supported (gelu_new)", label,
            cJSON_IsString(v) ? v->valuestring : "(not a string)");
        goto out;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "n_inner")) && !cJSON_IsNull(v) &&
        !(cJSON_IsNumber(v) && v->valuedouble == 4.0 * c.n_embd)) {
        lt_errmsg(err, errlen, "%s: n_inner must be null or 4 * n_embd (%d)", label, 4 * c.n_embd);
        goto out;
    }
    if (!require_bool(root, "tie_word_embeddings", 1, "the lm head is tied to wte", label, err, errlen) ||
        !require_bool(root, "scale_attn_weights", 1, "scores are divided by sqrt(head_dim)", label, err, errlen) ||
        !require_bool(root, "scale_attn_by_inverse_layer_idx", 0, "no per-layer score scaling", label, err,
                      errlen) ||
        !require_bool(root, "add_cross_attention", 0, "decoder-only model", label, err, errlen))
        goto out;
    if (lt_gpt2_config_check(&c, err, errlen) != LT_OK) {
        /* prefix the source: the check's message starts with "config: " */
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s", err && errlen ? err : "");
        lt_errmsg(err, errlen, "%s: %s", label, strncmp(tmp, "config: ", 8) == 0 ? tmp + 8 : tmp);
        goto out;
    }
    *cfg = c;
    st = LT_OK;
out:
    cJSON_Delete(root);
    return st;
}

lt_status lt_gpt2_config_load(const char *path, lt_gpt2_config *cfg, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        lt_errmsg(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return LT_ERR_IO;
    }
    char *buf = NULL;
    size_t len = 0;
    lt_status st = LT_ERR_IO;
    if (fseek(f, 0, SEEK_END) != 0) goto io;
    long sz = ftell(f);
    if (sz < 0 || fseek(f, 0, SEEK_SET) != 0) goto io;
    if ((unsigned long)sz > MAX_CONFIG_BYTES) {
        lt_errmsg(err, errlen, "%s: %ld bytes is too large for a config.json", path, sz);
        st = LT_ERR_FORMAT;
        goto out;
    }
    buf = malloc((size_t)sz + 1);
    if (!buf) {
        lt_errmsg(err, errlen, "%s: out of memory", path);
        st = LT_ERR_NOMEM;
        goto out;
    }
    len = fread(buf, 1, (size_t)sz, f);
    if (len != (size_t)sz) goto io;
    buf[len] = 0;
    st = lt_gpt2_config_from_json(buf, path, cfg, err, errlen);
    goto out;
io:
    lt_errmsg(err, errlen, "%s: cannot read: %s", path, strerror(errno ? errno : EIO));
out:
    free(buf);
    fclose(f);
    return st;
}
