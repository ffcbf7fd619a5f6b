/* GPT-2 one token at a time with a key / value cache (see gpt2_decode.h). */
#include "model/gpt2_decode.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/gpt2_layers.h"
#include "util/errmsg.h"

struct lt_gpt2_kv {
    int max_T, len, L, C, NH, V;
    float *k, *v;                            /* [L, max_T, C]: each position's keys and values, heads side by side */
    float *x, *ln, *qkv, *att, *tmp, *fc, *p; /* one row: x, ln, att, tmp [C]; qkv [3C]; fc [4C]; p [max_T] */
    float mean, rstd;
};

lt_status lt_gpt2_kv_create(const lt_gpt2 *m, int max_T, lt_gpt2_kv **out, char *err, size_t errlen) {
    *out = NULL;
    const lt_gpt2_config *c = &m->cfg;
    if (max_T < 1 || max_T > c->n_positions) {
        lt_errmsg(err, errlen, "key/value cache: %d positions, the model has 1 to %d", max_T, c->n_positions);
        return LT_ERR_ARG;
    }
    if (m->pure_bf16 || !m->params[LT_GPT2_WTE].data) {
        lt_errmsg(err, errlen, "key/value cache: the model's parameters must be fp32 (not pure bf16)");
        return LT_ERR_ARG;
    }
    lt_gpt2_kv *kv = calloc(1, sizeof *kv);
    const size_t C = (size_t)c->n_embd, cache = (size_t)c->n_layer * (size_t)max_T * C;
    if (kv) {
        kv->k = malloc(cache * sizeof(float));
        kv->v = malloc(cache * sizeof(float));
        kv->x = malloc((4 * C + 3 * C + 4 * C + (size_t)max_T) * sizeof(float));
    }
    if (!kv || !kv->k || !kv->v || !kv->x) {
        lt_gpt2_kv_free(kv);
        lt_errmsg(err, errlen, "key/value cache: out of memory (%zu MiB for %d positions)",
                  (2 * cache * sizeof(float)) >> 20, max_T);
        return LT_ERR_NOMEM;
    }
    kv->ln = kv->x + C, kv->att = kv->ln + C, kv->tmp = kv->att + C, kv->qkv = kv->tmp + C;
    kv->fc = kv->qkv + 3 * C, kv->p = kv->fc + 4 * C;
    kv->max_T = max_T, kv->L = c->n_layer, kv->C = c->n_embd, kv->NH = c->n_head, kv->V = c->vocab_size;
    *out = kv;
    return LT_OK;
}

void lt_gpt2_kv_free(lt_gpt2_kv *kv) {
    if (!kv) return;
    free(kv->k), free(kv->v), free(kv->x);
    free(kv);
}

void lt_gpt2_kv_reset(lt_gpt2_kv *kv) { kv->len = 0; }

int lt_gpt2_kv_len(const lt_gpt2_kv *kv) { return kv->len; }

/* out[OC] = x[C] @ w[C, OC] + bias: one row, so a matrix-vector product (sgemm would pack the whole weight matrix
 * for a single row, reading and writing it once more) */
static void row_matmul(float *out, const float *x, const float *w, const float *bias, int C, int OC) {
    memcpy(out, bias, (size_t)OC * sizeof(float));
    cblas_sgemv(CblasRowMajor, CblasTrans, C, OC, 1.0f, w, OC, x, 1, 1.0f, out, 1);
}

/* the row's attention over the cached positions 0..t of layer l: per head softmax(q.k / sqrt(hs)) . v, the
 * scores divided by sqrt(hs) as the model's (and transformers') attention does */
static void attend(lt_gpt2_kv *kv, int l, int t) {
    const int C = kv->C, hs = C / kv->NH;
    const float scale = sqrtf((float)hs);
    const size_t layer = (size_t)l * (size_t)kv->max_T * (size_t)C;
    const float *K = kv->k + layer, *Vv = kv->v + layer;
    for (int h = 0; h < kv->NH; h++) {
        const float *q = kv->qkv + h * hs;
        float mx = -INFINITY;
        for (int s = 0; s <= t; s++) {
            const float *k = K + (size_t)s * C + h * hs;
            float d = 0;
            for (int i = 0; i < hs; i++) d += q[i] * k[i];
            kv->p[s] = d / scale;
            mx = kv->p[s] > mx ? kv->p[s] : mx;
        }
        double sum = 0;
        for (int s = 0; s <= t; s++) sum += (double)(kv->p[s] = expf(kv->p[s] - mx));
        const float inv = (float)(1.0 / sum);
        float *o = kv->att + h * hs;
        for (int i = 0; i < hs; i++) o[i] = 0;
        for (int s = 0; s <= t; s++) {
            const float w = kv->p[s] * inv, *v = Vv + (size_t)s * C + h * hs;
            for (int i = 0; i < hs; i++) o[i] += w * v[i];
        }
    }
}

lt_status lt_gpt2_kv_prefill(lt_gpt2 *m, lt_gpt2_kv *kv, const int32_t *tokens, int n, float *logits, char *err,
                             size_t errlen) {
    kv->len = 0;
    if (m->precision != LT_GPT2_F32 || m->checkpointing) {
        lt_errmsg(err, errlen, "key/value cache: prefill needs fp32 compute without checkpointing");
        return LT_ERR_STATE;
    }
    if (n < 1 || n > kv->max_T) {
        lt_errmsg(err, errlen, "key/value cache: prefill of %d tokens, the cache holds 1 to %d", n, kv->max_T);
        return LT_ERR_ARG;
    }
    lt_status st = lt_gpt2_forward(m, tokens, NULL, 1, n, err, errlen);
    if (st) return st;
    /* acts.qkv is [L, cap, 3C] (cap = the batch capacity's rows): row t of layer l holds q | k | v */
    const size_t C = (size_t)kv->C, cap = (size_t)m->max_B * (size_t)m->max_T;
    for (int l = 0; l < kv->L; l++)
        for (int t = 0; t < n; t++) {
            const float *row = m->acts.qkv + ((size_t)l * cap + (size_t)t) * 3 * C;
            const size_t at = ((size_t)l * (size_t)kv->max_T + (size_t)t) * C;
            memcpy(kv->k + at, row + C, C * sizeof(float));
            memcpy(kv->v + at, row + 2 * C, C * sizeof(float));
        }
    if (logits) memcpy(logits, m->acts.logits + (size_t)(n - 1) * (size_t)kv->V, (size_t)kv->V * sizeof(float));
    kv->len = n;
    return LT_OK;
}

lt_status lt_gpt2_kv_step(const lt_gpt2 *m, lt_gpt2_kv *kv, int32_t token, float *logits, char *err, size_t errlen) {
    const int C = kv->C, t = kv->len;
    if (token < 0 || token >= kv->V) {
        lt_errmsg(err, errlen, "key/value cache: token %d is not an id of the model (0 to %d)", (int)token, kv->V - 1);
        return LT_ERR_ARG;
    }
    if (t >= kv->max_T) {
        lt_errmsg(err, errlen, "key/value cache: full (%d positions): reset it, or create a larger one", kv->max_T);
        return LT_ERR_STATE;
    }
    const lt_gpt2_param *P = m->params;
    const double eps = m->cfg.layer_norm_epsilon;
    const float *wte = P[LT_GPT2_WTE].data + (size_t)token * C, *wpe = P[LT_GPT2_WPE].data + (size_t)t * C;
    for (int i = 0; i < C; i++) kv->x[i] = wte[i] + wpe[i];
    for (int l = 0; l < kv->L; l++) {
        const lt_gpt2_param *W = P + LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK * l;
        lt_nn_layernorm_forward(kv->ln, &kv->mean, &kv->rstd, kv->x, W[LT_GPT2_LN1_W].data, W[LT_GPT2_LN1_B].data, 1,
                                C, eps);
        row_matmul(kv->qkv, kv->ln, W[LT_GPT2_QKV_W].data, W[LT_GPT2_QKV_B].data, C, 3 * C);
        const size_t at = ((size_t)l * (size_t)kv->max_T + (size_t)t) * (size_t)C;
        memcpy(kv->k + at, kv->qkv + C, (size_t)C * sizeof(float));
        memcpy(kv->v + at, kv->qkv + 2 * C, (size_t)C * sizeof(float));
        attend(kv, l, t);
        row_matmul(kv->tmp, kv->att, W[LT_GPT2_ATTPROJ_W].data, W[LT_GPT2_ATTPROJ_B].data, C, C);
        for (int i = 0; i < C; i++) kv->x[i] += kv->tmp[i];
        lt_nn_layernorm_forward(kv->ln, &kv->mean, &kv->rstd, kv->x, W[LT_GPT2_LN2_W].data, W[LT_GPT2_LN2_B].data, 1,
                                C, eps);
        row_matmul(kv->fc, kv->ln, W[LT_GPT2_FC_W].data, W[LT_GPT2_FC_B].data, C, 4 * C);
        lt_nn_gelu_forward(kv->fc, kv->fc, 4 * (size_t)C);
        row_matmul(kv->tmp, kv->fc, W[LT_GPT2_FCPROJ_W].data, W[LT_GPT2_FCPROJ_B].data, 4 * C, C);
        for (int i = 0; i < C; i++) kv->x[i] += kv->tmp[i];
    }
    const int lnf = LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK * kv->L;
    lt_nn_layernorm_forward(kv->ln, &kv->mean, &kv->rstd, kv->x, P[lnf].data, P[lnf + 1].data, 1, C, eps);
    if (logits) /* the lm head: wte [V, C] times the row */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, kv->V, C, 1.0f, P[LT_GPT2_WTE].data, C, kv->ln, 1, 0.0f, logits, 1);
    kv->len++;
    return LT_OK;
}
