/* optim_args parsing: "k=v,k=v" strings into a group's hyperparameters, with
 * an error that names the key for anything unknown or malformed. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim/optim_internal.h"

typedef enum { T_FLOAT, T_FLOAT_OR_NONE, T_BOOL, T_DTYPE } key_type;

typedef struct {
    const char *name;
    unsigned bit;
    key_type type;
    size_t off;
} key_def;

#define F(field) offsetof(lt_group_hp, field)
static const key_def KEYS[] = {
    {"lr", K_LR, T_FLOAT_OR_NONE, F(lr)},
    {"beta1", K_BETA1, T_FLOAT, F(beta1)},
    {"beta2", K_BETA2, T_FLOAT, F(beta2)},
    {"eps", K_EPS, T_FLOAT, F(eps)},
    {"weight_decay", K_WD, T_FLOAT, F(weight_decay)},
    {"momentum", K_MOMENTUM, T_FLOAT, F(momentum)},
    {"dampening", K_DAMPENING, T_FLOAT, F(dampening)},
    {"nesterov", K_NESTEROV, T_BOOL, F(nesterov)},
    {"alpha", K_ALPHA, T_FLOAT, F(alpha)},
    {"centered", K_CENTERED, T_BOOL, F(centered)},
    {"lr_decay", K_LR_DECAY, T_FLOAT, F(lr_decay)},
    {"initial_accumulator_value", K_INIT_ACC, T_FLOAT, F(initial_accumulator_value)},
    {"amsgrad", K_AMSGRAD, T_BOOL, F(amsgrad)},
    {"eps1", K_EPS1, T_FLOAT, F(eps1)},
    {"eps2", K_EPS2, T_FLOAT, F(eps2)},
    {"clip_threshold", K_CLIP, T_FLOAT, F(clip_threshold)},
    {"decay_rate", K_DECAY_RATE, T_FLOAT, F(decay_rate)},
    {"beta1", K_AF_BETA1, T_FLOAT_OR_NONE, F(af_beta1)},
    {"scale_parameter", K_SCALE_PARAM, T_BOOL, F(scale_parameter)},
    {"relative_step", K_RELATIVE, T_BOOL, F(relative_step)},
    {"warmup_init", K_WARMUP_INIT, T_BOOL, F(warmup_init)},
    {"use_kahan_summation", K_KAHAN, T_BOOL, F(kahan)},
    {"momentum_dtype", K_MOM_DTYPE, T_DTYPE, F(momentum_dtype)},
    {"variance_dtype", K_VAR_DTYPE, T_DTYPE, F(variance_dtype)},
    {"compensation_buffer_dtype", K_COMP_DTYPE, T_DTYPE, F(compensation_dtype)},
    {"block_size", K_BLOCK, T_FLOAT, F(block_size)},
    {"min_8bit_size", K_MIN8, T_FLOAT, F(min_8bit_size)},
    {"bf16_stochastic_round", K_SR, T_BOOL, F(sr)},
};
#undef F
#define NKEYS (sizeof KEYS / sizeof KEYS[0])

static const key_def *find_key(const lt_family *fam, const char *key) {
    for (size_t i = 0; i < NKEYS; i++)
        if ((fam->keys & KEYS[i].bit) && strcmp(KEYS[i].name, key) == 0) return &KEYS[i];
    return NULL;
}

static void list_keys(const lt_family *fam, char *buf, size_t len) {
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < NKEYS && used < len; i++)
        if (fam->keys & KEYS[i].bit)
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "", KEYS[i].name);
}

static int parse_double(const char *s, double *out) {
    char *end;
    if (!*s || isspace((unsigned char)*s)) return 0;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

lt_status lt_hp_set(const lt_family *fam, lt_group_hp *hp, const char *key, const char *value, char *err,
                    size_t errlen) {
    const key_def *k = find_key(fam, key);
    if (!k) {
        char known[512];
        list_keys(fam, known, sizeof known);
        snprintf(err, errlen, "unknown key '%s' for optimizer family %s (accepted: %s)", key, fam->family, known);
        return LT_ERR_ARG;
    }
    void *field = (char *)hp + k->off;
    switch (k->type) {
    case T_FLOAT_OR_NONE:
        if (strcmp(value, "None") == 0 || strcmp(value, "none") == 0 || strcmp(value, "null") == 0) {
            *(double *)field = NAN;
            return LT_OK;
        }
        /* fall through */
    case T_FLOAT: {
        double v;
        if (!parse_double(value, &v)) {
            snprintf(err, errlen, "bad value '%s' for key '%s': expected a finite number%s", value, key,
                     k->type == T_FLOAT_OR_NONE ? " or None" : "");
            return LT_ERR_ARG;
        }
        *(double *)field = v;
        return LT_OK;
    }
    case T_BOOL:
        if (!strcmp(value, "True") || !strcmp(value, "true") || !strcmp(value, "1")) {
            *(bool *)field = true;
        } else if (!strcmp(value, "False") || !strcmp(value, "false") || !strcmp(value, "0")) {
            *(bool *)field = false;
        } else {
            snprintf(err, errlen, "bad value '%s' for key '%s': expected True or False", value, key);
            return LT_ERR_ARG;
        }
        return LT_OK;
    case T_DTYPE:
        if (!strcmp(value, "float32") || !strcmp(value, "torch.float32") || !strcmp(value, "fp32")) {
            *(lt_dtype *)field = LT_DTYPE_F32;
        } else if (!strcmp(value, "bfloat16") || !strcmp(value, "torch.bfloat16") || !strcmp(value, "bf16")) {
            *(lt_dtype *)field = LT_DTYPE_BF16;
        } else {
            snprintf(err, errlen, "bad value '%s' for key '%s': expected float32 or bfloat16", value, key);
            return LT_ERR_ARG;
        }
        return LT_OK;
    }
    return LT_ERR_ARG;
}

lt_status lt_hp_apply_args(const lt_family *fam, lt_group_hp *hp, const char *args, const char *what, char *err,
                           size_t errlen) {
    if (!args) return LT_OK;
    size_t len = strlen(args);
    char *copy = malloc(len + 1);
    if (!copy) {
        snprintf(err, errlen, "out of memory parsing %s", what);
        return LT_ERR_NOMEM;
    }
    /* the Trainer strips spaces before splitting; so do we */
    size_t j = 0;
    for (size_t i = 0; i < len; i++)
        if (!isspace((unsigned char)args[i])) copy[j++] = args[i];
    copy[j] = 0;
    lt_status st = LT_OK;
    char *save = NULL;
    if (j == 0) goto done;
    for (char *item = copy;; item = NULL) {
        char *tok = strtok_r(item, ",", &save);
        if (!tok) break;
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok) {
            snprintf(err, errlen, "%s: malformed entry '%s': expected key=value", what, tok);
            st = LT_ERR_ARG;
            break;
        }
        *eq = 0;
        char msg[600];
        st = lt_hp_set(fam, hp, tok, eq + 1, msg, sizeof msg);
        if (st != LT_OK) {
            snprintf(err, errlen, "%s: %s", what, msg);
            break;
        }
    }
    /* strtok_r skips empty fields; an empty one ("a=1,,b=2", trailing ",") is still malformed */
    if (st == LT_OK && (copy[0] == ',' || args[len - 1] == ',' || strstr(args, ",,"))) {
        snprintf(err, errlen, "%s: malformed '%s': empty entry between commas", what, args);
        st = LT_ERR_ARG;
    }
done:
    free(copy);
    return st;
}

static int json_num(char *buf, size_t len, double v) {
    if (isnan(v)) return snprintf(buf, len, "null");
    return snprintf(buf, len, "%.17g", v);
}

char *lt_hp_to_json(const lt_family *fam, const lt_group_hp *hp) {
    size_t cap = 2048, used = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    used += (size_t)snprintf(out, cap, "{");
    for (size_t i = 0; i < NKEYS; i++) {
        const key_def *k = &KEYS[i];
        if (!(fam->keys & k->bit)) continue;
        const void *field = (const char *)hp + k->off;
        char val[64];
        switch (k->type) {
        case T_FLOAT:
        case T_FLOAT_OR_NONE: json_num(val, sizeof val, *(const double *)field); break;
        case T_BOOL: snprintf(val, sizeof val, "%s", *(const bool *)field ? "true" : "false"); break;
        case T_DTYPE:
            snprintf(val, sizeof val, "\"%s\"", *(const lt_dtype *)field == LT_DTYPE_BF16 ? "bfloat16" : "float32");
            break;
        }
        used += (size_t)snprintf(out + used, cap - used, "%s\"%s\": %s", used > 1 ? ", " : "", k->name, val);
    }
    snprintf(out + used, cap - used, "}");
    return out;
}
