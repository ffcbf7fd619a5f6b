/* GPT-2 weights in Hugging Face model.safetensors form: names with or
 * without the "transformer." prefix (GPT2Model vs GPT2LMHeadModel saves),
 * Conv1D weights [in, out] as stored, the causal-mask buffers skipped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leantrain/dtype.h"
#include "model/gpt2.h"
#include "util/errmsg.h"

#define PREFIX "transformer."
#define PREFIX_LEN 12

/* "[a, b]" of a shape, for messages. */
static void shape_str(char *buf, size_t len, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < len) snprintf(buf + used, len - used, "]");
}

/* The tensor `name` of `f`, bare or prefixed. *t is NULL when absent; 0
 * (with a message) when both spellings are present, which would make the
 * choice arbitrary. */
static int find_either(const lt_st_file *f, const char *name, const lt_st_tensor **t, const char *label, char *err,
                       size_t errlen) {
    char pre[96];
    snprintf(pre, sizeof pre, PREFIX "%s", name);
    const lt_st_tensor *a = lt_st_find(f, name), *b = lt_st_find(f, pre);
    if (a && b) {
        lt_errmsg(err, errlen, "%s: both '%s' and '%s' are present", label, name, pre);
        return 0;
    }
    *t = a ? a : b;
    return 1;
}

static int float_dtype(const lt_st_tensor *t) {
    return strcmp(t->dtype, "F32") == 0 || strcmp(t->dtype, "BF16") == 0 || strcmp(t->dtype, "F16") == 0;
}

/* A block index named by a file tensor "h.<i>.<rest>" (prefix already
 * stripped), or -1 when the name is not of that form. */
static long block_index(const char *name) {
    if (strncmp(name, "h.", 2) != 0) return -1;
    char *end;
    long i = strtol(name + 2, &end, 10);
    return end != name + 2 && *end == '.' && name[2] >= '0' && name[2] <= '9' ? i : -1;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* lm_head.weight, when the file has one, must be a copy of wte: the model
 * ties them, so a different head could not be represented. */
static lt_status check_lm_head(const lt_gpt2 *m, const lt_st_tensor *head, const char *label, char *err,
                               size_t errlen) {
    const lt_gpt2_param *wte = &m->params[LT_GPT2_WTE];
    if (!float_dtype(head) || head->ndim != 2 || head->shape[0] != wte->shape[0] || head->shape[1] != wte->shape[1]) {
        char got[96], want[96];
        shape_str(got, sizeof got, head->ndim, head->shape);
        shape_str(want, sizeof want, 2, wte->shape);
        lt_errmsg(err, errlen, "%s: tensor '%s' is %s %s, expected a tied copy of wte.weight (F32/BF16/F16 %s)", label,
            head->name, head->dtype, got, want);
        return LT_ERR_FORMAT;
    }
    float *tmp = malloc(head->numel * sizeof *tmp);
    if (!tmp) {
        lt_errmsg(err, errlen, "%s: out of memory comparing '%s' with wte.weight", label, head->name);
        return LT_ERR_NOMEM;
    }
    lt_status st = lt_st_read_f32(head, tmp, head->numel, err, errlen);
    int differs = 0;
    if (st == LT_OK && wte->data16) { /* pure bf16: wte was rounded, so compare the rounded head */
        for (size_t i = 0; i < head->numel && !differs; i++) differs = lt_f32_to_bf16(tmp[i]) != wte->data16[i];
    } else if (st == LT_OK) {
        differs = memcmp(tmp, wte->data, head->numel * sizeof *tmp) != 0;
    }
    if (differs) {
        lt_errmsg(err, errlen, "%s: tensor '%s' differs from wte.weight, but this GPT-2 ties the lm head to wte", label,
            head->name);
        st = LT_ERR_FORMAT;
    }
    free(tmp);
    return st;
}

/* A pure-bf16 model's tensor: BF16 copied as is, F32 / F16 rounded to nearest (a few MiB of f32 at a time). */
static lt_status read_bf16(const lt_st_tensor *t, uint16_t *out, size_t n, char *err, size_t errlen) {
    if (strcmp(t->dtype, "BF16") == 0) {
        memcpy(out, t->data, n * sizeof *out);
        return LT_OK;
    }
    enum { CHUNK = 1 << 20 };
    float *tmp = malloc((n < CHUNK ? n : CHUNK) * sizeof *tmp);
    if (!tmp) {
        lt_errmsg(err, errlen, "out of memory converting '%s' to bf16", t->name);
        return LT_ERR_NOMEM;
    }
    lt_status st = LT_OK;
    size_t esz = strcmp(t->dtype, "F32") == 0 ? 4 : 2;
    for (size_t i = 0; i < n && st == LT_OK; i += CHUNK) {
        size_t k = n - i < CHUNK ? n - i : CHUNK;
        lt_st_tensor part = *t; /* the same dtype, a window of the elements */
        part.data = (const char *)t->data + i * esz;
        part.numel = k;
        part.nbytes = k * esz;
        part.ndim = 1;
        part.shape[0] = (int64_t)k;
        st = lt_st_read_f32(&part, tmp, k, err, errlen);
        for (size_t j = 0; st == LT_OK && j < k; j++) out[i + j] = lt_f32_to_bf16(tmp[j]);
    }
    free(tmp);
    return st;
}

lt_status lt_gpt2_load_weights(lt_gpt2 *m, const lt_st_file *f, const char *label, char *err, size_t errlen) {
    if (!label) label = "weights";
    /* a block beyond n_layer means the file belongs to a deeper model */
    for (size_t i = 0; i < lt_st_count(f); i++) {
        const char *name = lt_st_at(f, i)->name;
        if (strncmp(name, PREFIX, PREFIX_LEN) == 0) name += PREFIX_LEN;
        long l = block_index(name);
        if (l >= m->cfg.n_layer && !ends_with(name, ".attn.bias") && !ends_with(name, ".attn.masked_bias")) {
            lt_errmsg(err, errlen, "%s: tensor '%s' is beyond the config's n_layer %d", label, lt_st_at(f, i)->name,
                m->cfg.n_layer);
            return LT_ERR_FORMAT;
        }
    }
    for (int i = 0; i < m->num_tensors; i++) {
        lt_gpt2_param *p = &m->params[i];
        const lt_st_tensor *t;
        if (!find_either(f, p->name, &t, label, err, errlen)) return LT_ERR_FORMAT;
        if (!t) {
            lt_errmsg(err, errlen, "%s: tensor '%s' is missing", label, p->name);
            return LT_ERR_FORMAT;
        }
        if (!float_dtype(t)) {
            lt_errmsg(err, errlen, "%s: tensor '%s' has dtype %s, expected F32, BF16 or F16", label, t->name, t->dtype);
            return LT_ERR_FORMAT;
        }
        int same = t->ndim == p->ndim;
        for (int k = 0; same && k < p->ndim; k++) same = t->shape[k] == p->shape[k];
        if (!same) {
            char got[96], want[96];
            shape_str(got, sizeof got, t->ndim, t->shape);
            shape_str(want, sizeof want, p->ndim, p->shape);
            lt_errmsg(err, errlen, "%s: tensor '%s' has shape %s, expected %s", label, t->name, got, want);
            return LT_ERR_FORMAT;
        }
        lt_status st = p->data16 ? read_bf16(t, p->data16, p->numel, err, errlen)
                                 : lt_st_read_f32(t, p->data, p->numel, err, errlen);
        if (st != LT_OK) return st;
    }
    /* GPT2LMHeadModel saves the head beside "transformer", never under it */
    const lt_st_tensor *head = lt_st_find(f, "lm_head.weight");
    return head ? check_lm_head(m, head, label, err, errlen) : LT_OK;
}

lt_status lt_gpt2_load(lt_gpt2 *m, const char *path, char *err, size_t errlen) {
    lt_st_file *f = NULL;
    lt_status st = lt_st_open(path, &f, err, errlen);
    if (st != LT_OK) return st;
    st = lt_gpt2_load_weights(m, f, path, err, errlen);
    lt_st_close(f);
    return st;
}

lt_status lt_gpt2_save(const lt_gpt2 *m, const char *path, char *err, size_t errlen) {
    lt_st_writer *w = lt_st_writer_new();
    if (!w) {
        lt_errmsg(err, errlen, "%s: out of memory", path);
        return LT_ERR_NOMEM;
    }
    lt_status st = lt_st_writer_meta(w, "format", "pt");
    for (int i = 0; st == LT_OK && i < m->num_tensors; i++) {
        const lt_gpt2_param *p = &m->params[i];
        st = p->data16 ? lt_st_writer_add(w, p->name, LT_DTYPE_BF16, p->ndim, p->shape, p->data16)
                       : lt_st_writer_add(w, p->name, LT_DTYPE_F32, p->ndim, p->shape, p->data);
        if (st != LT_OK) lt_errmsg(err, errlen, "%s: cannot add tensor '%s'", path, p->name);
    }
    if (st == LT_OK) st = lt_st_writer_write(w, path, err, errlen);
    lt_st_writer_free(w);
    return st;
}
