/* The GPT-2 model: parameter table and buffers, forward and backward passes
 * (the layer kernels are in gpt2_layers.c, weight files in gpt2_io.c). */
#include "model/gpt2.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/gpt2_layers.h"

/* Tensors start on 64-byte boundaries (16 floats) so vector loads of a row
 * start aligned whatever the sizes before it. */
#define ALIGN_FLOATS 16

static void msg(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* n rounded up to a whole number of ALIGN_FLOATS (n is far below SIZE_MAX). */
static size_t padded(size_t n) { return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS; }

/* a * b into *out; 0 when it overflows size_t. */
static int mul_ok(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }

/* A zeroed, 64-byte aligned buffer of n floats, or NULL. */
static float *alloc_floats(size_t n) {
    size_t bytes;
    if (!mul_ok(n ? n : 1, sizeof(float), &bytes) || bytes > SIZE_MAX - 64) return NULL;
    bytes = (bytes + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

static void set_param(lt_gpt2_param *p, const char *name, int ndim, int64_t d0, int64_t d1, int decay) {
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->shape[0] = d0;
    p->shape[1] = ndim == 2 ? d1 : 0;
    p->numel = (size_t)d0 * (ndim == 2 ? (size_t)d1 : 1);
    p->weight_decay = decay;
}

/* Fills names, shapes and the weight-decay flags of every tensor. */
static void fill_table(lt_gpt2 *m) {
    const lt_gpt2_config *c = &m->cfg;
    int64_t V = c->vocab_size, P = c->n_positions, C = c->n_embd;
    lt_gpt2_param *t = m->params;
    set_param(&t[LT_GPT2_WTE], "wte.weight", 2, V, C, 1);
    set_param(&t[LT_GPT2_WPE], "wpe.weight", 2, P, C, 1);
    static const struct {
        const char *suffix;
        int ndim, r, c, decay; /* shape in units of C: [r*C, c*C] or [r*C] */
    } block[LT_GPT2_PER_BLOCK] = {
        [LT_GPT2_LN1_W] = {"ln_1.weight", 1, 1, 0, 0},
        [LT_GPT2_LN1_B] = {"ln_1.bias", 1, 1, 0, 0},
        [LT_GPT2_QKV_W] = {"attn.c_attn.weight", 2, 1, 3, 1},
        [LT_GPT2_QKV_B] = {"attn.c_attn.bias", 1, 3, 0, 0},
        [LT_GPT2_ATTPROJ_W] = {"attn.c_proj.weight", 2, 1, 1, 1},
        [LT_GPT2_ATTPROJ_B] = {"attn.c_proj.bias", 1, 1, 0, 0},
        [LT_GPT2_LN2_W] = {"ln_2.weight", 1, 1, 0, 0},
        [LT_GPT2_LN2_B] = {"ln_2.bias", 1, 1, 0, 0},
        [LT_GPT2_FC_W] = {"mlp.c_fc.weight", 2, 1, 4, 1},
        [LT_GPT2_FC_B] = {"mlp.c_fc.bias", 1, 4, 0, 0},
        [LT_GPT2_FCPROJ_W] = {"mlp.c_proj.weight", 2, 4, 1, 1},
        [LT_GPT2_FCPROJ_B] = {"mlp.c_proj.bias", 1, 1, 0, 0},
    };
    for (int l = 0; l < c->n_layer; l++) {
        for (int k = 0; k < LT_GPT2_PER_BLOCK; k++) {
            char name[48];
            snprintf(name, sizeof name, "h.%d.%s", l, block[k].suffix);
            set_param(&t[LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK * l + k], name, block[k].ndim, block[k].r * C,
                      block[k].c * C, block[k].decay);
        }
    }
    int last = LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK * c->n_layer;
    set_param(&t[last], "ln_f.weight", 1, C, 0, 0);
    set_param(&t[last + 1], "ln_f.bias", 1, C, 0, 0);
}

lt_status lt_gpt2_create(const lt_gpt2_config *cfg, lt_gpt2 **out, char *err, size_t errlen) {
    *out = NULL;
    lt_status st = lt_gpt2_config_check(cfg, err, errlen);
    if (st != LT_OK) return st;
    lt_gpt2 *m = calloc(1, sizeof *m);
    if (!m) goto nomem;
    m->cfg = *cfg;
    m->num_tensors = LT_GPT2_PER_BLOCK * cfg->n_layer + 4;
    m->params = calloc((size_t)m->num_tensors, sizeof *m->params);
    if (!m->params) goto nomem;
    fill_table(m);
    size_t off = 0;
    for (int i = 0; i < m->num_tensors; i++) {
        m->num_params += m->params[i].numel;
        off += padded(m->params[i].numel);
    }
    m->memory_floats = off;
    m->grad_floats = off;
    m->param_memory = alloc_floats(off);
    m->grad_memory = alloc_floats(off);
    if (!m->param_memory || !m->grad_memory) goto nomem;
    off = 0;
    for (int i = 0; i < m->num_tensors; i++) {
        m->params[i].data = m->param_memory + off;
        m->params[i].grad = m->grad_memory + off;
        off += padded(m->params[i].numel);
    }
    m->loss = NAN;
    *out = m;
    return LT_OK;
nomem:
    msg(err, errlen, "GPT-2 (%d layers, %d channels): out of memory for parameters and gradients", cfg->n_layer,
        cfg->n_embd);
    lt_gpt2_free(m);
    return LT_ERR_NOMEM;
}

void lt_gpt2_free(lt_gpt2 *m) {
    if (!m) return;
    free(m->params);
    free(m->param_memory);
    free(m->grad_memory);
    free(m->act_memory);
    free(m->dact_memory);
    free(m->tokens);
    free(m);
}

/* splitmix64: a small, seedable generator so initialisation is a pure
 * function of the seed (no global RNG state). */
static uint64_t next_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A standard normal sample (Box-Muller on two uniforms in (0, 1]). */
static double normal(uint64_t *s) {
    double u1 = ((next_u64(s) >> 11) + 1.0) * 0x1.0p-53, u2 = (next_u64(s) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void lt_gpt2_init_random(lt_gpt2 *m, uint64_t seed) {
    uint64_t s = seed;
    double proj_std = 0.02 / sqrt(2.0 * m->cfg.n_layer);
    for (int i = 0; i < m->num_tensors; i++) {
        lt_gpt2_param *p = &m->params[i];
        const char *dot = strrchr(p->name, '.');
        int is_bias = strcmp(dot, ".bias") == 0, is_ln = strstr(p->name, "ln_") != NULL;
        if (is_bias) {
            memset(p->data, 0, p->numel * sizeof(float));
        } else if (is_ln) {
            for (size_t j = 0; j < p->numel; j++) p->data[j] = 1.0f;
        } else {
            /* GPT-2's scaled init of the projections that write into the residual stream */
            double sd = strstr(p->name, "c_proj.weight") ? proj_std : 0.02;
            for (size_t j = 0; j < p->numel; j++) p->data[j] = (float)(sd * normal(&s));
        }
    }
}

/* The float counts of every activation buffer (lt_gpt2_acts order) and backward
 * buffer (lt_gpt2_dacts order) for batches of B x T; att and big are the
 * attention-probability and logits sizes the caller computed with overflow checks. */
enum { LT_GPT2_NACTS = 20, LT_GPT2_NDACTS = 6 };
static void act_sizes(const lt_gpt2_config *c, int B, int T, int checkpointing, size_t att, size_t big, size_t *sizes,
                      size_t *dsizes) {
    size_t L = (size_t)c->n_layer, C = (size_t)c->n_embd, NH = (size_t)c->n_head;
    /* with checkpointing a block's internals exist for one block at a time; the block outputs for all */
    size_t LS = checkpointing ? 1 : L, LR = L, BT = (size_t)B * (size_t)T;
    size_t s[LT_GPT2_NACTS] = {
        BT * C,          /* encoded */
        LS * BT * C,     /* ln1 */
        LS * BT,         /* ln1_mean */
        LS * BT,         /* ln1_rstd */
        LS * BT * 3 * C, /* qkv */
        att,             /* att */
        LS * BT * C,     /* atty */
        LS * BT * C,     /* residual2 */
        LS * BT * C,     /* ln2 */
        LS * BT,         /* ln2_mean */
        LS * BT,         /* ln2_rstd */
        LS * BT * 4 * C, /* fch */
        LS * BT * 4 * C, /* fch_gelu */
        LR * BT * C,     /* residual3: every block's output (the next block's input) */
        BT * C,          /* lnf */
        BT,              /* lnf_mean */
        BT,              /* lnf_rstd */
        big,             /* logits */
        BT,              /* lse */
        BT,              /* losses */
    };
    size_t d[LT_GPT2_NDACTS] = {BT * C, BT * C, BT * 4 * C, BT * 3 * C, BT * C, (size_t)B * NH * (size_t)T};
    memcpy(sizes, s, sizeof s);
    memcpy(dsizes, d, sizeof d);
}

lt_status lt_gpt2_param_table(const lt_gpt2_config *c, lt_gpt2_param **out, int *n, char *err, size_t errlen) {
    lt_status st = lt_gpt2_config_check(c, err, errlen);
    if (st) return st;
    lt_gpt2 tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.cfg = *c;
    tmp.num_tensors = LT_GPT2_PER_BLOCK * c->n_layer + 4;
    tmp.params = calloc((size_t)tmp.num_tensors, sizeof *tmp.params);
    if (!tmp.params) {
        msg(err, errlen, "out of memory");
        return LT_ERR_NOMEM;
    }
    fill_table(&tmp);
    *out = tmp.params;
    *n = tmp.num_tensors;
    return LT_OK;
}

lt_status lt_gpt2_memory_plan(const lt_gpt2_config *c, int B, int T, int checkpointing, int grad_per_block,
                              lt_gpt2_memory *out, char *err, size_t errlen) {
    lt_status st = lt_gpt2_config_check(c, err, errlen);
    if (st) return st;
    size_t L = (size_t)c->n_layer, NH = (size_t)c->n_head, V = (size_t)c->vocab_size;
    size_t BT = (size_t)B * (size_t)T, att = BT * (size_t)T * NH * (checkpointing ? 1 : L), big = BT * V;
    size_t sizes[LT_GPT2_NACTS], dsizes[LT_GPT2_NDACTS], na = 0, nd = 0;
    act_sizes(c, B, T, checkpointing, att, big, sizes, dsizes);
    for (int i = 0; i < LT_GPT2_NACTS; i++) na += padded(sizes[i]);
    for (int i = 0; i < LT_GPT2_NDACTS; i++) nd += padded(dsizes[i]);
    /* the parameter table, without allocating it */
    lt_gpt2 tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.cfg = *c;
    tmp.num_tensors = LT_GPT2_PER_BLOCK * c->n_layer + 4;
    lt_gpt2_param *params = calloc((size_t)tmp.num_tensors, sizeof *params);
    if (!params) {
        msg(err, errlen, "out of memory");
        return LT_ERR_NOMEM;
    }
    tmp.params = params;
    fill_table(&tmp);
    size_t w = 0, g = 0, np = 0;
    int after = LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK * c->n_layer;
    for (int i = 0; i < tmp.num_tensors; i++) {
        w += padded(params[i].numel);
        np += params[i].numel;
        int shared = grad_per_block && i >= LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK && i < after;
        if (!shared) g += padded(params[i].numel);
    }
    free(params);
    out->num_params = np;
    out->weight_bytes = w * sizeof(float);
    out->grad_bytes = g * sizeof(float);
    out->activation_bytes = (na + nd) * sizeof(float);
    out->token_bytes = 2 * BT * sizeof(int32_t);
    return LT_OK;
}

lt_status lt_gpt2_set_batch(lt_gpt2 *m, int B, int T, char *err, size_t errlen) {
    const lt_gpt2_config *c = &m->cfg;
    if (B < 1 || T < 1 || T > c->n_positions) {
        msg(err, errlen, "set_batch: B %d, T %d: need B >= 1 and 1 <= T <= n_positions (%d)", B, T, c->n_positions);
        return LT_ERR_ARG;
    }
    size_t L = (size_t)c->n_layer, NH = (size_t)c->n_head, V = (size_t)c->vocab_size;
    size_t LS = m->checkpointing ? 1 : L; /* see act_sizes */
    size_t BT = (size_t)B * (size_t)T, att1 = 0, att = 0, big = 0;
    /* every BLAS dimension is an int; the largest matrix row count is BT */
    if (BT > (size_t)1 << 30 || !mul_ok(BT, T, &att1) || !mul_ok(att1, NH, &att1) || !mul_ok(att1, LS, &att) ||
        !mul_ok(BT, V, &big)) {
        msg(err, errlen, "set_batch: B %d x T %d is too large for this model", B, T);
        return LT_ERR_ARG;
    }
    size_t sizes[LT_GPT2_NACTS], dsizes[LT_GPT2_NDACTS];
    act_sizes(c, B, T, m->checkpointing, att, big, sizes, dsizes);
    enum { NA = LT_GPT2_NACTS, ND = LT_GPT2_NDACTS };
    _Static_assert(sizeof(lt_gpt2_acts) == NA * sizeof(float *), "sizes[] lists every activation");
    _Static_assert(sizeof(lt_gpt2_dacts) == ND * sizeof(float *), "dsizes[] lists every backward buffer");
    size_t na = 0, nd = 0;
    int overflow = 0;
    for (int i = 0; i < NA; i++) overflow |= __builtin_add_overflow(na, padded(sizes[i]), &na);
    for (int i = 0; i < ND; i++) overflow |= __builtin_add_overflow(nd, padded(dsizes[i]), &nd);
    if (overflow) {
        msg(err, errlen, "set_batch: B %d x T %d is too large for this model", B, T);
        return LT_ERR_ARG;
    }
    float *am = alloc_floats(na), *dm = alloc_floats(nd);
    int32_t *tok = malloc(2 * BT * sizeof *tok);
    if (!am || !dm || !tok) {
        free(am), free(dm), free(tok);
        msg(err, errlen, "set_batch: out of memory for activations of B %d x T %d (%zu MiB)", B, T,
            (na + nd) * sizeof(float) >> 20);
        return LT_ERR_NOMEM;
    }
    free(m->act_memory), free(m->dact_memory), free(m->tokens);
    m->act_memory = am, m->act_floats = na;
    m->dact_memory = dm, m->dact_floats = nd;
    m->tokens = tok;
    lt_gpt2_acts *a = &m->acts;
    lt_gpt2_dacts *d = &m->dacts;
    float **ap[NA] = {&a->encoded, &a->ln1, &a->ln1_mean, &a->ln1_rstd, &a->qkv, &a->att, &a->atty,
                      &a->residual2, &a->ln2, &a->ln2_mean, &a->ln2_rstd, &a->fch, &a->fch_gelu, &a->residual3,
                      &a->lnf, &a->lnf_mean, &a->lnf_rstd, &a->logits, &a->lse, &a->losses};
    float **dp[ND] = {&d->dres, &d->dln, &d->dbig, &d->dqkv, &d->datty, &d->drow};
    for (int i = 0; i < NA; i++) {
        *ap[i] = am;
        am += padded(sizes[i]);
    }
    for (int i = 0; i < ND; i++) {
        *dp[i] = dm;
        dm += padded(dsizes[i]);
    }
    m->max_B = B, m->max_T = T;
    m->B = m->T = 0;
    m->have_targets = 0;
    m->loss = NAN;
    return LT_OK;
}

void lt_gpt2_set_checkpointing(lt_gpt2 *m, int on) {
    m->checkpointing = on != 0;
    free(m->act_memory), free(m->dact_memory), free(m->tokens);
    m->act_memory = m->dact_memory = NULL;
    m->tokens = NULL;
    m->max_B = m->max_T = 0;
}

void lt_gpt2_zero_grad(lt_gpt2 *m) { memset(m->grad_memory, 0, m->grad_floats * sizeof(float)); }

lt_status lt_gpt2_set_grad_per_block(lt_gpt2 *m, int on, char *err, size_t errlen) {
    int L = m->cfg.n_layer, first_block = LT_GPT2_BLOCK_FIRST, after = LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK * L;
    size_t n = 0;
    for (int i = 0; i < m->num_tensors; i++) {
        int in_block = i >= first_block && i < after;
        if (!on || !in_block || i < first_block + LT_GPT2_PER_BLOCK) n += padded(m->params[i].numel);
    }
    float *g = alloc_floats(n);
    if (!g) {
        msg(err, errlen, "out of memory for %zu MiB of gradients", n * sizeof(float) >> 20);
        return LT_ERR_NOMEM;
    }
    memset(g, 0, n * sizeof *g);
    free(m->grad_memory);
    m->grad_memory = g;
    m->grad_floats = n;
    m->grad_per_block = on != 0;
    size_t off = 0;
    for (int i = 0; i < m->num_tensors; i++) {
        int in_block = i >= first_block && i < after;
        if (on && in_block && i >= first_block + LT_GPT2_PER_BLOCK) {
            /* tensor k of every block shares block 0's slot */
            m->params[i].grad = m->params[first_block + (i - first_block) % LT_GPT2_PER_BLOCK].grad;
            continue;
        }
        m->params[i].grad = g + off;
        off += padded(m->params[i].numel);
    }
    return LT_OK;
}

int lt_gpt2_find_param(const lt_gpt2 *m, const char *name) {
    if (strncmp(name, "transformer.", 12) == 0) name += 12;
    for (int i = 0; i < m->num_tensors; i++)
        if (strcmp(m->params[i].name, name) == 0) return i;
    return -1;
}

/* Parameter k of block l, or its gradient. */
static float *bw(const lt_gpt2 *m, int l, int k) {
    return m->params[LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK * l + k].data;
}
static float *bg(const lt_gpt2 *m, int l, int k) {
    return m->params[LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK * l + k].grad;
}

/* The checks a token array must pass before any kernel indexes with it. */
static int tokens_ok(const int32_t *tok, size_t n, int V, const char *what, char *err, size_t errlen) {
    for (size_t i = 0; i < n; i++) {
        if (tok[i] < 0 || tok[i] >= V) {
            msg(err, errlen, "forward: %s[%zu] = %d is not a token id (0 to %d)", what, i, (int)tok[i], V - 1);
            return 0;
        }
    }
    return 1;
}

/* Where block l keeps its internal activations: its own slice, or with
 * checkpointing the one slice every block shares (recomputed in backward). */
static size_t slot(const lt_gpt2 *m, int l) { return m->checkpointing ? 0 : (size_t)l; }

/* Block l's forward from its input `residual` ([B*T, C]) to residual3[l]. */
static void block_forward(lt_gpt2 *m, int l, const float *residual, int B, int T) {
    const lt_gpt2_config *c = &m->cfg;
    int C = c->n_embd, NH = c->n_head;
    size_t N = (size_t)B * (size_t)T, cap = (size_t)m->max_B * (size_t)m->max_T;
    size_t att_stride = cap * (size_t)NH * (size_t)m->max_T;
    const lt_gpt2_acts *a = &m->acts;
    size_t o1 = slot(m, l) * cap, oc = o1 * (size_t)C, orr = (size_t)l * cap * (size_t)C;
    float *ln1 = a->ln1 + oc, *qkv = a->qkv + 3 * oc, *att = a->att + slot(m, l) * att_stride;
    float *atty = a->atty + oc, *res2 = a->residual2 + oc, *ln2 = a->ln2 + oc;
    float *fch = a->fch + 4 * oc, *fchg = a->fch_gelu + 4 * oc, *res3 = a->residual3 + orr;
    lt_nn_layernorm_forward(ln1, a->ln1_mean + o1, a->ln1_rstd + o1, residual, bw(m, l, LT_GPT2_LN1_W),
                            bw(m, l, LT_GPT2_LN1_B), N, C, c->layer_norm_epsilon);
    lt_nn_matmul_forward(qkv, ln1, bw(m, l, LT_GPT2_QKV_W), bw(m, l, LT_GPT2_QKV_B), N, C, 3 * C);
    lt_nn_attention_forward(atty, att, qkv, B, T, C, NH);
    /* c_proj writes into residual2, then the block input is added in place */
    lt_nn_matmul_forward(res2, atty, bw(m, l, LT_GPT2_ATTPROJ_W), bw(m, l, LT_GPT2_ATTPROJ_B), N, C, C);
    lt_nn_residual_forward(res2, res2, residual, N * (size_t)C);
    lt_nn_layernorm_forward(ln2, a->ln2_mean + o1, a->ln2_rstd + o1, res2, bw(m, l, LT_GPT2_LN2_W),
                            bw(m, l, LT_GPT2_LN2_B), N, C, c->layer_norm_epsilon);
    lt_nn_matmul_forward(fch, ln2, bw(m, l, LT_GPT2_FC_W), bw(m, l, LT_GPT2_FC_B), N, C, 4 * C);
    lt_nn_gelu_forward(fchg, fch, N * 4 * (size_t)C);
    lt_nn_matmul_forward(res3, fchg, bw(m, l, LT_GPT2_FCPROJ_W), bw(m, l, LT_GPT2_FCPROJ_B), N, 4 * C, C);
    lt_nn_residual_forward(res3, res3, res2, N * (size_t)C);
}

lt_status lt_gpt2_forward(lt_gpt2 *m, const int32_t *inputs, const int32_t *targets, int B, int T, char *err,
                          size_t errlen) {
    const lt_gpt2_config *c = &m->cfg;
    if (!m->act_memory) {
        msg(err, errlen, "forward: no activation buffers: call lt_gpt2_set_batch first");
        return LT_ERR_STATE;
    }
    if (B < 1 || T < 1 || B > m->max_B || T > m->max_T) {
        msg(err, errlen, "forward: B %d, T %d exceed the capacity set by lt_gpt2_set_batch (B %d, T %d)", B, T,
            m->max_B, m->max_T);
        return LT_ERR_ARG;
    }
    size_t N = (size_t)B * (size_t)T;
    if (!inputs || !tokens_ok(inputs, N, c->vocab_size, "inputs", err, errlen) ||
        (targets && !tokens_ok(targets, N, c->vocab_size, "targets", err, errlen))) {
        if (!inputs) msg(err, errlen, "forward: no inputs given");
        return LT_ERR_ARG;
    }
    int L = c->n_layer, C = c->n_embd, V = c->vocab_size;
    size_t cap = (size_t)m->max_B * (size_t)m->max_T; /* per-layer slice stride */
    int32_t *in = m->tokens, *tg = m->tokens + cap;
    memcpy(in, inputs, N * sizeof *in);
    if (targets) memcpy(tg, targets, N * sizeof *tg);
    m->B = B, m->T = T;
    m->have_targets = 0;
    const lt_gpt2_acts *a = &m->acts;

    lt_nn_encoder_forward(a->encoded, in, m->params[LT_GPT2_WTE].data, m->params[LT_GPT2_WPE].data, B, T, C);
    const float *residual = a->encoded;
    for (int l = 0; l < L; l++) {
        block_forward(m, l, residual, B, T);
        residual = a->residual3 + (size_t)l * cap * (size_t)C;
    }
    int lnf = LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK * L;
    lt_nn_layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, residual, m->params[lnf].data, m->params[lnf + 1].data,
                            N, C, c->layer_norm_epsilon);
    lt_nn_lmhead_forward(a->logits, a->lnf, m->params[LT_GPT2_WTE].data, N, C, V);
    if (targets) {
        m->loss = (float)(lt_nn_crossentropy_forward(a->losses, a->lse, a->logits, tg, N, V) / (double)N);
        m->have_targets = 1;
    } else {
        m->loss = NAN;
    }
    return LT_OK;
}

lt_status lt_gpt2_backward(lt_gpt2 *m, char *err, size_t errlen) { return lt_gpt2_backward_cb(m, NULL, NULL, err, errlen); }

lt_status lt_gpt2_backward_cb(lt_gpt2 *m, lt_gpt2_grad_ready ready, void *ctx, char *err, size_t errlen) {
    if (!m->have_targets) {
        msg(err, errlen, "backward: needs a forward with targets since the last backward");
        return LT_ERR_STATE;
    }
    /* the logits buffer turns into their gradient: a second backward would be wrong */
    m->have_targets = 0;
    const lt_gpt2_config *c = &m->cfg;
    int L = c->n_layer, C = c->n_embd, NH = c->n_head, V = c->vocab_size, B = m->B, T = m->T;
    size_t N = (size_t)B * (size_t)T, cap = (size_t)m->max_B * (size_t)m->max_T;
    size_t att_stride = cap * (size_t)NH * (size_t)m->max_T;
    const int32_t *in = m->tokens, *tg = m->tokens + cap;
    const lt_gpt2_acts *a = &m->acts;
    const lt_gpt2_dacts *d = &m->dacts;
    lt_gpt2_param *wte = &m->params[LT_GPT2_WTE], *wpe = &m->params[LT_GPT2_WPE];
    int lnf = LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK * L;

    lt_nn_crossentropy_backward(a->logits, a->logits, a->lse, tg, N, V, (float)(1.0 / (double)N));
    lt_nn_lmhead_backward(d->dln, wte->grad, a->logits, a->lnf, wte->data, N, C, V);
    const float *last = L > 0 ? a->residual3 + (size_t)(L - 1) * cap * (size_t)C : a->encoded;
    /* layernorm_backward adds into its dinp, and this is the first write to dres */
    memset(d->dres, 0, N * (size_t)C * sizeof(float));
    lt_nn_layernorm_backward(d->dres, m->params[lnf].grad, m->params[lnf + 1].grad, d->dln, last,
                             m->params[lnf].data, a->lnf_mean, a->lnf_rstd, N, C);
    lt_status st;
    if (ready && (st = ready(ctx, lnf, 2)) != LT_OK) return st;
    for (int l = L - 1; l >= 0; l--) {
        if (m->grad_per_block) { /* the previous block's gradients were consumed by `ready` */
            const lt_gpt2_param *p0 = &m->params[LT_GPT2_BLOCK_FIRST], *pl = p0 + LT_GPT2_PER_BLOCK - 1;
            memset(p0->grad, 0, (size_t)(pl->grad + pl->numel - p0->grad) * sizeof(float));
        }
        const float *residual = l == 0 ? a->encoded : a->residual3 + (size_t)(l - 1) * cap * (size_t)C;
        /* checkpointing: the block's internals were overwritten; the same computation restores them exactly */
        if (m->checkpointing) block_forward(m, l, residual, B, T);
        size_t o1 = slot(m, l) * cap, oc = o1 * (size_t)C;
        /* dres is d block output: it flows unchanged to residual2 and into the mlp */
        lt_nn_matmul_backward(d->dbig, bg(m, l, LT_GPT2_FCPROJ_W), bg(m, l, LT_GPT2_FCPROJ_B), d->dres,
                              a->fch_gelu + 4 * oc, bw(m, l, LT_GPT2_FCPROJ_W), N, 4 * C, C);
        lt_nn_gelu_backward(d->dbig, a->fch + 4 * oc, N * 4 * (size_t)C);
        lt_nn_matmul_backward(d->dln, bg(m, l, LT_GPT2_FC_W), bg(m, l, LT_GPT2_FC_B), d->dbig, a->ln2 + oc,
                              bw(m, l, LT_GPT2_FC_W), N, C, 4 * C);
        lt_nn_layernorm_backward(d->dres, bg(m, l, LT_GPT2_LN2_W), bg(m, l, LT_GPT2_LN2_B), d->dln,
                                 a->residual2 + oc, bw(m, l, LT_GPT2_LN2_W), a->ln2_mean + o1, a->ln2_rstd + o1, N,
                                 C);
        /* now dres is d residual2: on to the block input and into the attention */
        lt_nn_matmul_backward(d->datty, bg(m, l, LT_GPT2_ATTPROJ_W), bg(m, l, LT_GPT2_ATTPROJ_B), d->dres,
                              a->atty + oc, bw(m, l, LT_GPT2_ATTPROJ_W), N, C, C);
        lt_nn_attention_backward(d->dqkv, d->drow, d->datty, a->qkv + 3 * oc, a->att + slot(m, l) * att_stride, B, T,
                                 C, NH);
        lt_nn_matmul_backward(d->dln, bg(m, l, LT_GPT2_QKV_W), bg(m, l, LT_GPT2_QKV_B), d->dqkv, a->ln1 + oc,
                              bw(m, l, LT_GPT2_QKV_W), N, C, 3 * C);
        lt_nn_layernorm_backward(d->dres, bg(m, l, LT_GPT2_LN1_W), bg(m, l, LT_GPT2_LN1_B), d->dln, residual,
                                 bw(m, l, LT_GPT2_LN1_W), a->ln1_mean + o1, a->ln1_rstd + o1, N, C);
        if (ready && (st = ready(ctx, LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK * l, LT_GPT2_PER_BLOCK)) != LT_OK)
            return st;
    }
    lt_nn_encoder_backward(wte->grad, wpe->grad, d->dres, in, B, T, C);
    if (ready && (st = ready(ctx, LT_GPT2_WTE, 2)) != LT_OK) return st;
    (void)err, (void)errlen;
    return LT_OK;
}
