/* The GPT-2 model: parameter table and buffers, forward and backward passes
 * (the layer kernels are in gpt2_layers.c, weight files in gpt2_io.c). */
#include "model/gpt2.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leantrain/dtype.h"
#include "model/gemm_bf16.h"
#include "model/gpt2_layers.h"
#include "util/errmsg.h"

/* Tensors start on 64-byte boundaries (16 floats) so vector loads of a row
 * start aligned whatever the sizes before it. */
#define ALIGN_FLOATS 16

/* n rounded up to a whole number of ALIGN_FLOATS (n is far below SIZE_MAX). */
static size_t padded(size_t n) { return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS; }

/* a * b into *out; 0 when it overflows size_t. */
static int mul_ok(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }

/* A zeroed, 64-byte aligned buffer of n elements of `size` bytes, or NULL;
 * free it with free_aligned. calloc, not malloc + memset: a large block comes
 * fresh from the kernel already zero, so its pages cost no memory until they
 * are written (a buffer that is replaced before use, like the full gradient
 * buffer under --optim_in_backward, never shows in the resident set). The
 * pointer calloc returned sits just below the aligned one. */
static void *alloc_aligned(size_t n, size_t size) {
    size_t bytes;
    if (!mul_ok(n ? n : 1, size, &bytes) || bytes > SIZE_MAX - 128) return NULL;
    char *base = calloc(1, bytes + 64 + sizeof(void *));
    if (!base) return NULL;
    uintptr_t a = ((uintptr_t)base + sizeof(void *) + 63) & ~(uintptr_t)63;
    ((void **)a)[-1] = base;
    return (void *)a;
}
static void free_aligned(void *p) {
    if (p) free(((void **)p)[-1]);
}
static float *alloc_floats(size_t n) { return alloc_aligned(n, sizeof(float)); }

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
    m->loss_scale = 1.0f;
    *out = m;
    return LT_OK;
nomem:
    lt_errmsg(err, errlen, "GPT-2 (%d layers, %d channels): out of memory for parameters and gradients", cfg->n_layer,
        cfg->n_embd);
    lt_gpt2_free(m);
    return LT_ERR_NOMEM;
}

void lt_gpt2_free(lt_gpt2 *m) {
    if (!m) return;
    free(m->params);
    free_aligned(m->param_memory);
    free_aligned(m->param16_memory);
    free_aligned(m->grad_memory);
    free_aligned(m->act_memory);
    free_aligned(m->dact_memory);
    free_aligned(m->wscratch);
    free_aligned(m->store);
    free(m->tokens);
    /* the bf16 products' buffers (a model in use elsewhere in the process allocates them again at its next one) */
    if (m->precision == LT_GPT2_BF16) lt_gemm_bf16_release();
    free(m);
}

/* splitmix64: a small, seedable generator so initialisation is a pure
 * function of the seed (no global RNG state). Its state is a counter that
 * advances by SPLITMIX_STEP per draw, so the state after any number of draws
 * is known without making them (which lets the initialisation run in
 * parallel and still give the serial sequence's values). */
#define SPLITMIX_STEP 0x9e3779b97f4a7c15ull
static uint64_t next_u64(uint64_t *s) {
    uint64_t z = (*s += SPLITMIX_STEP);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A standard normal sample (Box-Muller on two uniforms in (0, 1]). */
static double normal(uint64_t *s) {
    double u1 = ((next_u64(s) >> 11) + 1.0) * 0x1.0p-53, u2 = (next_u64(s) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* The values are those of one generator drawn in tensor order, two draws per
 * normal element (biases and LayerNorm weights draw nothing); each element
 * starts from the state that sequence has there, so the threads of the
 * parallel loop give the serial loop's bits (a 7B-parameter model initialises
 * in seconds, not minutes). */
void lt_gpt2_init_random(lt_gpt2 *m, uint64_t seed) {
    uint64_t draws = 0; /* draws made by the tensors before this one */
    double proj_std = 0.02 / sqrt(2.0 * m->cfg.n_layer);
    for (int i = 0; i < m->num_tensors; i++) {
        lt_gpt2_param *p = &m->params[i];
        const char *dot = strrchr(p->name, '.');
        int is_bias = strcmp(dot, ".bias") == 0, is_ln = strstr(p->name, "ln_") != NULL;
        /* GPT-2's scaled init of the projections that write into the residual stream */
        double sd = strstr(p->name, "c_proj.weight") ? proj_std : 0.02;
        int random = !is_bias && !is_ln;
        uint64_t base = seed + draws * SPLITMIX_STEP; /* unsigned: wraps modulo 2^64 like the counter */
        size_t n = p->numel;
#pragma omp parallel for schedule(static) if (n >= 65536)
        for (size_t j = 0; j < n; j++) {
            uint64_t s = base + 2 * (uint64_t)j * SPLITMIX_STEP;
            float v = is_bias ? 0.0f : is_ln ? 1.0f : (float)(sd * normal(&s));
            if (p->data16) p->data16[j] = lt_f32_to_bf16(v);
            else p->data[j] = v;
        }
        if (random) draws += 2 * (uint64_t)n;
    }
}

/* The float counts of every activation buffer (lt_gpt2_acts order) and backward
 * buffer (lt_gpt2_dacts order) for batches of B x T; att and big are the
 * attention-statistics and logits sizes the caller computed with overflow checks. */
enum { LT_GPT2_NACTS = 20, LT_GPT2_NDACTS = 7 };
/* Blocks whose fp32 internals (ln1, qkv, atty, ln2, fch, fch_gelu) are
 * kept at once: all of them, or one with checkpointing (recomputed in
 * backward) or with 16-bit compute (stored in 16 bits, expanded in backward). */
static size_t internal_slots(const lt_gpt2_config *c, int checkpointing, int lowp) {
    return checkpointing || lowp ? 1 : (size_t)c->n_layer;
}
static void act_sizes(const lt_gpt2_config *c, int B, int T, int checkpointing, int lowp, size_t head_chunk,
                      size_t att, size_t big, size_t *sizes, size_t *dsizes) {
    size_t L = (size_t)c->n_layer, C = (size_t)c->n_embd;
    /* with checkpointing a block's internals exist for one block at a time; the block outputs for all */
    size_t LI = internal_slots(c, checkpointing, lowp), LS = checkpointing ? 1 : L, LR = L, BT = (size_t)B * (size_t)T;
    size_t s[LT_GPT2_NACTS] = {
        BT * C,          /* encoded */
        LI * BT * C,     /* ln1 */
        LS * BT,         /* ln1_mean */
        LS * BT,         /* ln1_rstd */
        LI * BT * 3 * C, /* qkv */
        att,             /* att_stats */
        LI * BT * C,     /* atty */
        LS * BT * C,     /* residual2 */
        LI * BT * C,     /* ln2 */
        LS * BT,         /* ln2_mean */
        LS * BT,         /* ln2_rstd */
        LI * BT * 4 * C, /* fch */
        LI * BT * 4 * C, /* fch_gelu */
        LR * BT * C,     /* residual3: every block's output (the next block's input) */
        BT * C,          /* lnf */
        BT,              /* lnf_mean */
        BT,              /* lnf_rstd */
        big,             /* logits */
        BT,              /* lse */
        BT,              /* losses */
    };
    size_t d[LT_GPT2_NDACTS] = {BT * C, BT * C, BT * 4 * C, BT * 3 * C, BT * C, lowp ? BT * C : 0,
                                lowp && head_chunk < BT ? (size_t)c->vocab_size * C : 0};
    memcpy(sizes, s, sizeof s);
    memcpy(dsizes, d, sizeof d);
}

/* n rows in chunks of at most `most`, all of about the same size: a small last chunk costs as much time in
 * OpenBLAS as a large one (GPT-2 at 2048 rows: chunks of 1024 as fast as none, 667 + 667 + 667 + 47 8% slower) */
size_t lt_gpt2_head_chunk(size_t n, int most) {
    if (most <= 0 || (size_t)most >= n) return n;
    size_t k = (n + (size_t)most - 1) / (size_t)most;
    return (n + k - 1) / k;
}

/* Rows of logits the buffer holds: all B x T, or one chunk in chunked mode. In 16-bit compute, more than one
 * chunk costs the fp32 sum of wte's head gradient ([V, C]), so chunks are taken only when that still saves
 * memory (chunk + C < B x T); else one chunk of all rows. */
static size_t logit_rows(int head_rows, size_t BT, int C, int lowp) {
    const size_t chunk = lt_gpt2_head_chunk(BT, head_rows);
    return lowp && chunk + (size_t)C >= BT ? BT : chunk;
}

int lt_gpt2_head_rows_default(const lt_gpt2_config *c) {
    size_t rows = ((size_t)1 << 26) / (size_t)(c->vocab_size > 0 ? c->vocab_size : 1);
    return rows < 64 ? 64 : rows > (1u << 30) ? 1 << 30 : (int)rows;
}

/* ---- 16-bit compute buffers ---- */

/* Vocabulary rows of the lm head handled at once: as many as the biggest block weight holds, and at least 8192
 * (or the whole vocabulary), so that a narrow model's head is a few large multiplies rather than dozens of small
 * ones (each hand-off between OpenBLAS's threads and OpenMP's costs more than a small multiply). */
static int lm_rows(const lt_gpt2_config *c) {
    int rows = 4 * c->n_embd, floor = c->vocab_size < 8192 ? c->vocab_size : 8192;
    return rows > floor ? rows : floor;
}

/* Floats of wscratch: one block's tensors (padded as in param_memory) or an lm-head chunk, then ln_f's two. */
static size_t wscratch_floats(const lt_gpt2_config *c) {
    size_t C = (size_t)c->n_embd, blk = 0;
    const size_t per[LT_GPT2_PER_BLOCK] = {C, C, 3 * C * C, 3 * C, C * C, C, C, C, 4 * C * C, 4 * C, 4 * C * C, C};
    for (int k = 0; k < LT_GPT2_PER_BLOCK; k++) blk += padded(per[k]);
    size_t chunk = padded((size_t)lm_rows(c) * C);
    return (blk > chunk ? blk : chunk) + 2 * padded(C);
}
/* Floats of gscratch: the biggest block weight's gradient or an lm-head chunk's. */
static size_t gscratch_floats(const lt_gpt2_config *c) {
    size_t w = 4 * (size_t)c->n_embd * (size_t)c->n_embd, chunk = (size_t)lm_rows(c) * (size_t)c->n_embd;
    return w > chunk ? w : chunk;
}

/* 16-bit elements one block keeps between forward and backward for up to B x T tokens: ln1, qkv, atty, ln2, fch,
 * fch_gelu ([BT, 14 C] in all; the attention's row statistics stay fp32, one slot per block). 0 when it
 * overflows. */
static size_t store_block_elems(const lt_gpt2_config *c, int B, int T) {
    size_t rows;
    if (!mul_ok((size_t)B * (size_t)T, 14 * (size_t)c->n_embd, &rows)) return 0;
    return padded(rows);
}

/* bf16 compute on the CPU's bf16 instructions (model/gemm_bf16.h): the largest pack buffer plus the largest
 * scratchpad over the products of B x T tokens (BT rows; the lm head in chunks of `chunk` rows, the last one
 * possibly shorter): each linear layer's forward, input and weight gradients, the head's logits, input gradient
 * and weight gradient (whole, or in pieces of LT_NN_LM_WGRAD_ROWS vocabulary rows when chunked). 0 when that path is
 * off. */
static size_t gemm16_bytes(const lt_gpt2_config *c, size_t BT, size_t chunk, int pure_bf16) {
    if (!lt_gemm_bf16_enabled() || BT > (size_t)1 << 30) return 0;
    const int C = c->n_embd, V = c->vocab_size, R = lm_rows(c), N = (int)BT;
    const int wr = V < LT_NN_LM_WGRAD_ROWS ? V : LT_NN_LM_WGRAD_ROWS;
    size_t pack = 0, scratch = 0;
#define NEED(ta, tb, M, Nn, K, ldc, beta, ldb16)                                                             \
    do {                                                                                                   \
        size_t p_, s_;                                                                                     \
        lt_gemm_bf16_need(ta, tb, M, Nn, K, ldc, beta, ldb16, &p_, &s_);                                   \
        pack = p_ > pack ? p_ : pack, scratch = s_ > scratch ? s_ : scratch;                               \
    } while (0)
    const int lin[4][2] = {{C, 3 * C}, {C, C}, {C, 4 * C}, {4 * C, C}}; /* (in, out) of qkv, proj, fc, fc proj */
    for (int k = 0; k < 4; k++) {
        const int in = lin[k][0], out = lin[k][1];
        const int w16 = pure_bf16 ? out : 0;    /* pure bf16: w as bf16 in place (block_weights), not packed */
        NEED(0, 0, N, out, in, out, 1.0f, w16); /* forward: onto the bias */
        NEED(0, 1, N, in, out, in, 0.0f, w16);  /* d input = dout @ w^T */
        NEED(1, 0, in, out, N, out, 0.0f, 0);   /* d weight = inp^T @ dout */
    }
    const int last = (int)(BT - (BT - 1) / chunk * chunk); /* the last chunk's rows */
    const int rows[2] = {(int)chunk, last}, nvs[2] = {R < V ? R : V, V % R ? V % R : R};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            const int n = rows[i], nv = nvs[j];
            NEED(0, 1, n, nv, C, V, 0.0f, C);   /* logits (wte's rows bf16 in place: not packed) */
            NEED(0, 0, n, C, nv, C, 0.0f, C);   /* d input, first piece (the same) */
            NEED(0, 0, n, C, nv, C, 1.0f, C);   /* d input, the others added */
            NEED(1, 0, nv, C, n, C, 0.0f, 0);   /* d wte, whole head */
            NEED(1, 0, wr, C, n, C, 0.0f, 0);   /* d wte, chunked: the fp32 sum's pieces */
            NEED(1, 0, wr, C, n, C, 1.0f, 0);
            if (V % wr) NEED(1, 0, V % wr, C, n, C, 1.0f, 0);
        }
#undef NEED
    return pack + scratch;
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
        lt_errmsg(err, errlen, "out of memory");
        return LT_ERR_NOMEM;
    }
    fill_table(&tmp);
    *out = tmp.params;
    *n = tmp.num_tensors;
    return LT_OK;
}

lt_status lt_gpt2_memory_plan(const lt_gpt2_config *c, int B, int T, int checkpointing, int grad_per_block,
                              lt_gpt2_precision precision, int pure_bf16, int head_rows, lt_gpt2_memory *out,
                              char *err, size_t errlen) {
    lt_status st = lt_gpt2_config_check(c, err, errlen);
    if (st) return st;
    int lowp = precision != LT_GPT2_F32;
    size_t L = (size_t)c->n_layer, NH = (size_t)c->n_head, V = (size_t)c->vocab_size;
    size_t BT = (size_t)B * (size_t)T, att = BT * NH * 2 * (checkpointing ? 1 : L);
    size_t chunk = logit_rows(head_rows, BT, c->n_embd, lowp), big = chunk * V;
    size_t sizes[LT_GPT2_NACTS], dsizes[LT_GPT2_NDACTS], na = 0, nd = 0;
    act_sizes(c, B, T, checkpointing, lowp, chunk, att, big, sizes, dsizes);
    for (int i = 0; i < LT_GPT2_NACTS; i++) na += padded(sizes[i]);
    for (int i = 0; i < LT_GPT2_NDACTS; i++) nd += padded(dsizes[i]);
    /* the parameter table, without allocating it */
    lt_gpt2 tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.cfg = *c;
    tmp.num_tensors = LT_GPT2_PER_BLOCK * c->n_layer + 4;
    lt_gpt2_param *params = calloc((size_t)tmp.num_tensors, sizeof *params);
    if (!params) {
        lt_errmsg(err, errlen, "out of memory");
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
    out->weight_bytes = w * (pure_bf16 ? sizeof(uint16_t) : sizeof(float));
    out->scratch_bytes = lowp ? (wscratch_floats(c) + gscratch_floats(c)) * sizeof(float) : 0;
    out->grad_bytes = g * sizeof(float);
    out->activation_bytes = (na + nd) * sizeof(float);
    if (lowp && !checkpointing) out->activation_bytes += L * store_block_elems(c, B, T) * sizeof(uint16_t);
    out->token_bytes = 2 * BT * sizeof(int32_t);
    out->gemm16_bytes = precision == LT_GPT2_BF16 ? gemm16_bytes(c, BT, chunk, pure_bf16) : 0;
    return LT_OK;
}

lt_status lt_gpt2_set_batch(lt_gpt2 *m, int B, int T, char *err, size_t errlen) {
    const lt_gpt2_config *c = &m->cfg;
    if (B < 1 || T < 1 || T > c->n_positions) {
        lt_errmsg(err, errlen, "set_batch: B %d, T %d: need B >= 1 and 1 <= T <= n_positions (%d)", B, T, c->n_positions);
        return LT_ERR_ARG;
    }
    size_t L = (size_t)c->n_layer, NH = (size_t)c->n_head, V = (size_t)c->vocab_size;
    int lowp = m->precision != LT_GPT2_F32;
    size_t LS = m->checkpointing ? 1 : L; /* blocks whose attention statistics are kept (see act_sizes) */
    size_t BT = (size_t)B * (size_t)T, att1 = 0, att = 0, big = 0, sb = 0, se = 0;
    const size_t chunk = logit_rows(m->head_rows, BT, c->n_embd, lowp);
    /* every BLAS dimension is an int; the largest matrix row count is BT */
    if (BT > (size_t)1 << 30 || !mul_ok(BT, 2 * NH, &att1) || !mul_ok(att1, LS, &att) ||
        !mul_ok(chunk, V, &big) || (lowp && !m->checkpointing && (!(sb = store_block_elems(c, B, T)) || !mul_ok(sb, L, &se)))) {
        lt_errmsg(err, errlen, "set_batch: B %d x T %d is too large for this model", B, T);
        return LT_ERR_ARG;
    }
    size_t sizes[LT_GPT2_NACTS], dsizes[LT_GPT2_NDACTS];
    act_sizes(c, B, T, m->checkpointing, lowp, chunk, att, big, sizes, dsizes);
    enum { NA = LT_GPT2_NACTS, ND = LT_GPT2_NDACTS };
    _Static_assert(sizeof(lt_gpt2_acts) == NA * sizeof(float *), "sizes[] lists every activation");
    _Static_assert(sizeof(lt_gpt2_dacts) == ND * sizeof(float *), "dsizes[] lists every backward buffer");
    size_t na = 0, nd = 0;
    int overflow = 0;
    for (int i = 0; i < NA; i++) overflow |= __builtin_add_overflow(na, padded(sizes[i]), &na);
    for (int i = 0; i < ND; i++) overflow |= __builtin_add_overflow(nd, padded(dsizes[i]), &nd);
    if (overflow) {
        lt_errmsg(err, errlen, "set_batch: B %d x T %d is too large for this model", B, T);
        return LT_ERR_ARG;
    }
    size_t nw = lowp ? wscratch_floats(c) + gscratch_floats(c) : 0;
    float *am = alloc_floats(na), *dm = alloc_floats(nd), *ws = nw ? alloc_floats(nw) : NULL;
    uint16_t *store = se ? alloc_aligned(se, sizeof(uint16_t)) : NULL;
    int32_t *tok = malloc(2 * BT * sizeof *tok);
    if (!am || !dm || !tok || (nw && !ws) || (se && !store)) {
        free_aligned(am), free_aligned(dm), free_aligned(ws), free_aligned(store), free(tok);
        lt_errmsg(err, errlen, "set_batch: out of memory for activations of B %d x T %d (%zu MiB)", B, T,
            ((na + nd + nw) * sizeof(float) + se * sizeof(uint16_t)) >> 20);
        return LT_ERR_NOMEM;
    }
    free_aligned(m->act_memory), free_aligned(m->dact_memory), free_aligned(m->wscratch), free_aligned(m->store);
    free(m->tokens);
    m->act_memory = am, m->act_floats = na;
    m->dact_memory = dm, m->dact_floats = nd;
    m->wscratch = ws, m->gscratch = ws ? ws + wscratch_floats(c) : NULL, m->scratch_floats = nw;
    m->store = store, m->store_elems = se;
    m->tokens = tok;
    lt_gpt2_acts *a = &m->acts;
    lt_gpt2_dacts *d = &m->dacts;
    float **ap[NA] = {&a->encoded, &a->ln1, &a->ln1_mean, &a->ln1_rstd, &a->qkv, &a->att_stats, &a->atty,
                      &a->residual2, &a->ln2, &a->ln2_mean, &a->ln2_rstd, &a->fch, &a->fch_gelu, &a->residual3,
                      &a->lnf, &a->lnf_mean, &a->lnf_rstd, &a->logits, &a->lse, &a->losses};
    float **dp[ND] = {&d->dres, &d->dln, &d->dbig, &d->dqkv, &d->datty, &d->dtmp, &d->dwte};
    for (int i = 0; i < NA; i++) {
        *ap[i] = am;
        am += padded(sizes[i]);
    }
    for (int i = 0; i < ND; i++) {
        *dp[i] = dm;
        dm += padded(dsizes[i]);
    }
    m->max_B = B, m->max_T = T;
    m->head_chunk = m->head_rows ? (int)chunk : 0;
    m->B = m->T = 0;
    m->have_targets = 0;
    m->loss = NAN;
    return LT_OK;
}

/* Drops the activation buffers (their layout changed): lt_gpt2_set_batch must follow. */
static void drop_batch(lt_gpt2 *m) {
    free_aligned(m->act_memory), free_aligned(m->dact_memory), free_aligned(m->wscratch), free_aligned(m->store);
    free(m->tokens);
    m->act_memory = m->dact_memory = m->wscratch = m->gscratch = NULL;
    m->store = NULL;
    m->tokens = NULL;
    m->max_B = m->max_T = 0;
    m->have_targets = 0;
}

void lt_gpt2_set_head_rows(lt_gpt2 *m, int rows) {
    m->head_rows = rows > 0 ? rows : 0;
    drop_batch(m);
}

void lt_gpt2_set_label_smoothing(lt_gpt2 *m, float eps) { m->label_smoothing = eps; }

void lt_gpt2_set_neftune(lt_gpt2 *m, float alpha) { m->neftune_alpha = alpha; }

void lt_gpt2_set_checkpointing(lt_gpt2 *m, int on) {
    m->checkpointing = on != 0;
    drop_batch(m);
}

lt_status lt_gpt2_set_precision(lt_gpt2 *m, lt_gpt2_precision p, int pure_bf16, char *err, size_t errlen) {
    if (p != LT_GPT2_F32 && p != LT_GPT2_BF16 && p != LT_GPT2_F16) {
        lt_errmsg(err, errlen, "set_precision: unknown precision %d", (int)p);
        return LT_ERR_ARG;
    }
    if (pure_bf16 && p != LT_GPT2_BF16) {
        lt_errmsg(err, errlen, "pure bf16 parameters need bf16 compute (not %s)", p == LT_GPT2_F16 ? "fp16" : "fp32");
        return LT_ERR_ARG;
    }
    if (!!pure_bf16 != m->pure_bf16) {
        size_t n = m->memory_floats, off = 0;
        if (pure_bf16) {
            uint16_t *h = alloc_aligned(n, sizeof *h);
            if (!h) goto nomem;
            /* in parallel: a 7B model's weights are 6.6e9 conversions (and as many fresh pages) */
#pragma omp parallel for schedule(static) if (n >= 65536)
            for (size_t i = 0; i < n; i++) h[i] = lt_f32_to_bf16(m->param_memory[i]);
            free_aligned(m->param_memory);
            m->param_memory = NULL, m->param16_memory = h;
        } else {
            float *f = alloc_floats(n);
            if (!f) goto nomem;
#pragma omp parallel for schedule(static) if (n >= 65536)
            for (size_t i = 0; i < n; i++) f[i] = lt_bf16_to_f32(m->param16_memory[i]);
            free_aligned(m->param16_memory);
            m->param16_memory = NULL, m->param_memory = f;
        }
        for (int i = 0; i < m->num_tensors; i++) {
            m->params[i].data = pure_bf16 ? NULL : m->param_memory + off;
            m->params[i].data16 = pure_bf16 ? m->param16_memory + off : NULL;
            off += padded(m->params[i].numel);
        }
        m->pure_bf16 = pure_bf16 != 0;
    }
    m->precision = p;
    drop_batch(m);
    return LT_OK;
nomem:
    lt_errmsg(err, errlen, "set_precision: out of memory converting %zu parameters", m->num_params);
    return LT_ERR_NOMEM;
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
        lt_errmsg(err, errlen, "out of memory for %zu MiB of gradients", n * sizeof(float) >> 20);
        return LT_ERR_NOMEM;
    }
    free_aligned(m->grad_memory);
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

/* Parameter k of block l's gradient. */
static float *bg(const lt_gpt2 *m, int l, int k) {
    return m->params[LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK * l + k].grad;
}

/* The rounding of the compute precision. */
static lt_nn_round rnd(const lt_gpt2 *m) {
    return m->precision == LT_GPT2_BF16 ? LT_NN_ROUND_BF16 : m->precision == LT_GPT2_F16 ? LT_NN_ROUND_F16 : LT_NN_ROUND_NONE;
}

void lt_gpt2_set_dropout(lt_gpt2 *m, int on, uint64_t seed, uint32_t stream) {
    m->dropout_on = on != 0;
    m->dropout_seed = seed;
    m->dropout_stream = stream;
}

/* Dropout site `site` with probability p in the last forward; its threshold is 0 (off) unless that forward
 * applied dropout. */
static lt_dropout drop_site(const lt_gpt2 *m, double p, uint32_t site) {
    return lt_dropout_make(m->drop_active ? p : 0.0, m->dropout_seed, site, m->drop_stream);
}

float lt_gpt2_neftune_magnitude(float alpha, int T, int C) {
    return alpha > 0.0f ? alpha / sqrtf((float)T * (float)C) : 0.0f;
}

/* NEFTune's noise on the token embeddings of the last forward: only where it applied dropout (training
   forwards), of magnitude alpha / sqrt(T C) for its T */
static lt_noise neftune_noise(const lt_gpt2 *m, int T) {
    return lt_noise_make(m->drop_active ? lt_gpt2_neftune_magnitude(m->neftune_alpha, T, m->cfg.n_embd) : 0.0f,
                         m->dropout_seed, LT_GPT2_NOISE_NEFTUNE, m->drop_stream);
}

/* Parameter i as floats at dst: expanded from bf16, or copied from f32 and, when `round`, rounded to the compute
 * precision (the operands of a 16-bit matrix multiply; layernorm parameters stay exact). */
static void fetch_param(const lt_gpt2 *m, int i, float *dst, int round) {
    const lt_gpt2_param *p = &m->params[i];
    lt_nn_fetch16(dst, p->data, p->data16, p->numel, round ? rnd(m) : LT_NN_ROUND_NONE);
}

/* Block l's weights as the compute uses them: W[k] is tensor k (lt_nn_weight; .f the floats of all but the
 * matrices kept in bf16 below). fp32 compute reads the parameters; 16-bit compute fills wscratch with them rounded
 * (matrices and linear biases) or exact (layernorm weights and biases), except that pure bf16's four matrices,
 * where the CPU's bf16 path is on, go to their products as bf16 in place (their wscratch room is then used only
 * by a product that path declines). Mixed precision's are rounded here once for the block's products: rounding
 * them into bf16 in each product instead (as the lm head's rows are) measured slower (GPT-2 set b at 256 positions:
 * 6.8% of the samples in the packing against 4.4%). */
static void block_weights(const lt_gpt2 *m, int l, lt_nn_weight W[LT_GPT2_PER_BLOCK]) {
    int first = LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK * l;
    if (m->precision == LT_GPT2_F32) {
        for (int k = 0; k < LT_GPT2_PER_BLOCK; k++) W[k] = (lt_nn_weight){.f = m->params[first + k].data};
        return;
    }
    const int in_place = m->pure_bf16 && lt_gemm_bf16_enabled();
    float *dst = m->wscratch;
    for (int k = 0; k < LT_GPT2_PER_BLOCK; k++) {
        const lt_gpt2_param *p = &m->params[first + k];
        int ln = k == LT_GPT2_LN1_W || k == LT_GPT2_LN1_B || k == LT_GPT2_LN2_W || k == LT_GPT2_LN2_B;
        if (in_place && p->ndim == 2) {
            W[k] = (lt_nn_weight){.b16 = p->data16, .buf = dst};
        } else {
            fetch_param(m, first + k, dst, !ln);
            W[k] = (lt_nn_weight){.f = dst};
        }
        dst += padded(p->numel);
    }
}

/* ln_f's weight and bias as the compute uses them (exact; at the end of wscratch in 16-bit compute, which the
 * lm-head chunks do not reach). */
static void lnf_weights(const lt_gpt2 *m, const float **w, const float **b) {
    int i = LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK * m->cfg.n_layer;
    if (m->precision == LT_GPT2_F32 || !m->pure_bf16) {
        *w = m->params[i].data, *b = m->params[i + 1].data;
        return;
    }
    size_t C = (size_t)m->cfg.n_embd;
    float *dst = m->wscratch + wscratch_floats(&m->cfg) - 2 * padded(C);
    fetch_param(m, i, dst, 0);
    fetch_param(m, i + 1, dst + padded(C), 0);
    *w = dst, *b = dst + padded(C);
}

/* The checks a token array must pass before any kernel indexes with it. */
static int tokens_ok(const int32_t *tok, size_t n, int V, const char *what, char *err, size_t errlen) {
    for (size_t i = 0; i < n; i++) {
        if (tok[i] < 0 || tok[i] >= V) {
            lt_errmsg(err, errlen, "forward: %s[%zu] = %d is not a token id (0 to %d)", what, i, (int)tok[i], V - 1);
            return 0;
        }
    }
    return 1;
}

/* Where block l keeps its internal activations (ln1, qkv, att, atty, ln2, fch, fch_gelu): its own slice, or the
 * one slice every block shares with checkpointing (recomputed in backward) or 16-bit compute (expanded from the
 * store in backward). Its layernorm statistics and residual2 have their own slice unless checkpointing. */
static size_t islot(const lt_gpt2 *m, int l) { return m->checkpointing || m->precision != LT_GPT2_F32 ? 0 : (size_t)l; }
static size_t sslot(const lt_gpt2 *m, int l) { return m->checkpointing ? 0 : (size_t)l; }

/* The internals of one block as pointers into the activation buffers. */
typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *att_stats, *atty, *res2, *ln2, *ln2_mean, *ln2_rstd, *fch, *fchg, *res3;
} block_acts;

static block_acts block_at(const lt_gpt2 *m, int l) {
    const lt_gpt2_acts *a = &m->acts;
    size_t C = (size_t)m->cfg.n_embd, cap = (size_t)m->max_B * (size_t)m->max_T;
    size_t stats_stride = cap * (size_t)m->cfg.n_head * 2;
    size_t oi = islot(m, l) * cap, os = sslot(m, l) * cap;
    block_acts b = {a->ln1 + oi * C,  a->ln1_mean + os, a->ln1_rstd + os, a->qkv + 3 * oi * C,
                    a->att_stats + sslot(m, l) * stats_stride, a->atty + oi * C, a->residual2 + os * C,
                    a->ln2 + oi * C,  a->ln2_mean + os, a->ln2_rstd + os, a->fch + 4 * oi * C,
                    a->fch_gelu + 4 * oi * C, a->residual3 + (size_t)l * cap * C};
    return b;
}

/* The attention's scratch (dbig's floats): the same in its forward and backward, so that both take the same
 * blocks of rows and the backward recomputes the forward's probabilities bit for bit. */
static size_t att_scratch(const lt_gpt2 *m) {
    return 4 * (size_t)m->max_B * (size_t)m->max_T * (size_t)m->cfg.n_embd;
}

/* 16-bit compute: copies block l's internals (values already of the compute precision, so exactly) between the
 * fp32 slot and the block's slice of the store; to_store 1 packs, 0 expands. */
static void store_block(const lt_gpt2 *m, int l, const block_acts *b, int to_store) {
    const lt_gpt2_config *c = &m->cfg;
    size_t C = (size_t)c->n_embd, N = (size_t)m->B * (size_t)m->T, cap = (size_t)m->max_B * (size_t)m->max_T;
    uint16_t *s = m->store + (size_t)l * store_block_elems(c, m->max_B, m->max_T);
    struct { float *f; size_t width; } part[6] = {{b->ln1, C}, {b->qkv, 3 * C}, {b->atty, C}, {b->ln2, C},
                                                  {b->fch, 4 * C}, {b->fchg, 4 * C}};
    lt_nn_round r = m->precision == LT_GPT2_F16 ? LT_NN_ROUND_F16 : LT_NN_ROUND_BF16;
    for (int k = 0; k < 6; k++) {
        size_t n = N * part[k].width;
        if (to_store) lt_nn_pack16(s, part[k].f, n, r);
        else lt_nn_unpack16(part[k].f, s, n, r);
        s += cap * part[k].width;
    }
}

/* Block l's forward from its input `residual` ([B*T, C]) to residual3[l], with the weights W of block_weights
 * (the caller fetches them: backward's recompute reuses them for the block's backward). In 16-bit compute every
 * rounding lt_gpt2_set_precision lists happens here, and the internals go to the store unless checkpointing. */
static void block_forward(lt_gpt2 *m, int l, const lt_nn_weight W[LT_GPT2_PER_BLOCK], const float *residual, int B,
                          int T) {
    const lt_gpt2_config *c = &m->cfg;
    int C = c->n_embd, NH = c->n_head;
    size_t N = (size_t)B * (size_t)T, NC = N * (size_t)C;
    lt_nn_round r = rnd(m);
    block_acts b = block_at(m, l);
    lt_nn_layernorm_forward_r(b.ln1, b.ln1_mean, b.ln1_rstd, residual, W[LT_GPT2_LN1_W].f, W[LT_GPT2_LN1_B].f, N, C,
                              c->layer_norm_epsilon, r);
    lt_nn_matmul_forward_r(b.qkv, b.ln1, W[LT_GPT2_QKV_W], W[LT_GPT2_QKV_B].f, N, C, 3 * C, r);
    lt_nn_round_inplace(b.qkv, 3 * NC, r);
    /* dbig is free in the forward (and in backward's recompute, which comes before the mlp's backward) */
    const lt_dropout datt = drop_site(m, c->attn_pdrop, LT_GPT2_DROP_ATTN(l)),
                     dout1 = drop_site(m, c->resid_pdrop, LT_GPT2_DROP_ATTN_OUT(l)),
                     dout2 = drop_site(m, c->resid_pdrop, LT_GPT2_DROP_MLP_OUT(l));
    lt_nn_attention_forward_r(b.atty, b.att_stats, m->dacts.dbig, att_scratch(m), b.qkv, B, T, C, NH, r, &datt);
    /* c_proj writes into residual2 (then its dropout), then the block input is added in place */
    lt_nn_matmul_forward_r(b.res2, b.atty, W[LT_GPT2_ATTPROJ_W], W[LT_GPT2_ATTPROJ_B].f, N, C, C, r);
    lt_nn_dropout(b.res2, b.res2, NC, 0, &dout1, r);
    lt_nn_round_add(b.res2, residual, NC, r);
    lt_nn_layernorm_forward_r(b.ln2, b.ln2_mean, b.ln2_rstd, b.res2, W[LT_GPT2_LN2_W].f, W[LT_GPT2_LN2_B].f, N, C,
                              c->layer_norm_epsilon, r);
    lt_nn_matmul_forward_r(b.fch, b.ln2, W[LT_GPT2_FC_W], W[LT_GPT2_FC_B].f, N, C, 4 * C, r);
    lt_nn_gelu_forward_r(b.fchg, b.fch, 4 * NC, r);
    lt_nn_matmul_forward_r(b.res3, b.fchg, W[LT_GPT2_FCPROJ_W], W[LT_GPT2_FCPROJ_B].f, N, 4 * C, C, r);
    lt_nn_dropout(b.res3, b.res3, NC, 0, &dout2, r);
    lt_nn_round_add(b.res3, b.res2, NC, r);
    if (m->store) store_block(m, l, &b, 1);
}

/* The lm head's logits for n rows of lnf (from row r0) into the logits buffer, in the compute's precision. */
static void head_logits(lt_gpt2 *m, size_t r0, size_t n) {
    const lt_gpt2_config *c = &m->cfg;
    const lt_gpt2_param *wte = &m->params[LT_GPT2_WTE];
    const float *inp = m->acts.lnf + r0 * (size_t)c->n_embd;
    if (m->precision == LT_GPT2_F32) lt_nn_lmhead_forward(m->acts.logits, inp, wte->data, n, c->n_embd, c->vocab_size);
    else
        lt_nn_lmhead_forward_r(m->acts.logits, inp, wte->data, wte->data16, n, c->n_embd, c->vocab_size, rnd(m),
                               m->wscratch, lm_rows(c));
}

/* The head's backward for the n rows from r0 whose logits the buffer holds (N rows in all): the logits turn into
 * their gradient (times loss_scale / N), d lnf of those rows into dacts.dln, and wte's gradient grows by their
 * part: directly in fp32, and in 16-bit compute when they are all N rows (rounded once, as in whole mode); else
 * into the fp32 sum dacts.dwte (first chunk: overwritten), which head_finish rounds once. */
static void head_backward(lt_gpt2 *m, size_t r0, size_t n, size_t N) {
    const lt_gpt2_config *c = &m->cfg;
    const int C = c->n_embd, V = c->vocab_size;
    lt_gpt2_param *wte = &m->params[LT_GPT2_WTE];
    const lt_nn_round r = rnd(m);
    float *lg = m->acts.logits, *dinp = m->dacts.dln + r0 * (size_t)C;
    const float *inp = m->acts.lnf + r0 * (size_t)C;
    const int32_t *tg = m->tokens + (size_t)m->max_B * (size_t)m->max_T + r0;
    lt_nn_crossentropy_backward_r(lg, lg, m->acts.lse + r0, tg, n, V, (float)((double)m->loss_scale / (double)N),
                                  m->label_smoothing, r);
    if (m->precision == LT_GPT2_F32) lt_nn_lmhead_backward(dinp, wte->grad, lg, inp, wte->data, n, C, V);
    else if (n == N) /* one chunk: its weight gradient is the whole, rounded and added at once */
        lt_nn_lmhead_backward_r(dinp, wte->grad, lg, inp, wte->data, wte->data16, n, C, V, r, m->wscratch,
                                m->gscratch, lm_rows(c));
    else
        lt_nn_lmhead_backward_sum_r(dinp, m->dacts.dwte, r0 == 0, lg, inp, wte->data, wte->data16, n, C, V, r,
                                    m->wscratch, lm_rows(c));
}

/* 16-bit compute in chunked mode: wte's gradient += round(the chunks' fp32 sum), one rounding as in whole mode */
static void head_finish(lt_gpt2 *m) {
    if (m->precision == LT_GPT2_F32) return;
    const size_t n = (size_t)m->cfg.vocab_size * (size_t)m->cfg.n_embd;
    lt_nn_lmhead_sum_finish_r(m->params[LT_GPT2_WTE].grad, m->dacts.dwte, n, rnd(m));
}

/* grad: a backward may follow (targets given); drop: apply the dropout lt_gpt2_set_dropout turned on */
static lt_status forward(lt_gpt2 *m, const int32_t *inputs, const int32_t *targets, int B, int T, int grad,
                         int drop, long *hits, char *err, size_t errlen) {
    const lt_gpt2_config *c = &m->cfg;
    if (!m->act_memory) {
        lt_errmsg(err, errlen, "forward: no activation buffers: call lt_gpt2_set_batch first");
        return LT_ERR_STATE;
    }
    if (B < 1 || T < 1 || B > m->max_B || T > m->max_T) {
        lt_errmsg(err, errlen, "forward: B %d, T %d exceed the capacity set by lt_gpt2_set_batch (B %d, T %d)", B, T,
            m->max_B, m->max_T);
        return LT_ERR_ARG;
    }
    size_t N = (size_t)B * (size_t)T;
    if (!inputs || !tokens_ok(inputs, N, c->vocab_size, "inputs", err, errlen) ||
        (targets && !tokens_ok(targets, N, c->vocab_size, "targets", err, errlen))) {
        if (!inputs) lt_errmsg(err, errlen, "forward: no inputs given");
        return LT_ERR_ARG;
    }
    if (!targets && m->head_rows) {
        lt_errmsg(err, errlen, "forward: the logits are kept in chunks of %d rows (lt_gpt2_set_head_rows): a forward "
                  "without targets needs them whole", m->head_rows);
        return LT_ERR_STATE;
    }
    int L = c->n_layer, C = c->n_embd, V = c->vocab_size;
    size_t cap = (size_t)m->max_B * (size_t)m->max_T; /* per-layer slice stride */
    int32_t *in = m->tokens, *tg = m->tokens + cap;
    memcpy(in, inputs, N * sizeof *in);
    if (targets) memcpy(tg, targets, N * sizeof *tg);
    m->B = B, m->T = T;
    m->have_targets = m->head_done = 0;
    /* dropout while it is on, in lt_gpt2_forward (never eval_loss); the backward and recomputations take this
       forward's masks */
    m->drop_active = drop && m->dropout_on;
    m->drop_stream = m->dropout_stream;
    const lt_gpt2_acts *a = &m->acts;
    const lt_gpt2_param *wte = &m->params[LT_GPT2_WTE], *wpe = &m->params[LT_GPT2_WPE];

    /* the embeddings are exact in every precision (autocast leaves embedding lookups in fp32) */
    const lt_noise nz = neftune_noise(m, T);
    if (m->pure_bf16) lt_nn_encoder_forward16(a->encoded, in, wte->data16, wpe->data16, B, T, C, &nz);
    else lt_nn_encoder_forward(a->encoded, in, wte->data, wpe->data, B, T, C, &nz);
    const lt_dropout demb = drop_site(m, c->embd_pdrop, LT_GPT2_DROP_EMBD);
    lt_nn_dropout(a->encoded, a->encoded, N * (size_t)C, 0, &demb, LT_NN_ROUND_NONE); /* fp32, as autocast's */
    const float *residual = a->encoded;
    for (int l = 0; l < L; l++) {
        lt_nn_weight W[LT_GPT2_PER_BLOCK];
        block_weights(m, l, W);
        block_forward(m, l, W, residual, B, T);
        residual = a->residual3 + (size_t)l * cap * (size_t)C;
    }
    const float *lw, *lb;
    lnf_weights(m, &lw, &lb);
    lt_nn_layernorm_forward_r(a->lnf, a->lnf_mean, a->lnf_rstd, residual, lw, lb, N, C, c->layer_norm_epsilon,
                              rnd(m));
    /* the lm head chunk by chunk: logits, their losses, and in chunked training their gradient and the head's
       backward; whole mode is one chunk of all rows whose backward lt_gpt2_backward does */
    const size_t R = lt_gpt2_head_chunk(N, m->head_chunk); /* at most the buffer's rows (head_chunk 0: all N) */
    const int fused = m->head_rows && grad;
    size_t top1 = 0;
    for (size_t r0 = 0; r0 < N; r0 += R) {
        const size_t n = N - r0 < R ? N - r0 : R;
        head_logits(m, r0, n);
        if (targets)
            lt_nn_crossentropy_forward(a->losses + r0, a->lse + r0, a->logits, tg + r0, n, V, m->label_smoothing);
        if (targets && hits) top1 += lt_nn_top1_hits(a->logits, tg + r0, n, V);
        if (fused) head_backward(m, r0, n, N);
    }
    if (fused && N > R) head_finish(m);
    m->head_done = fused;
    if (hits) *hits = (long)top1;
    if (targets) {
        /* summed over all positions in order, whatever the chunks (lt_nn_crossentropy_forward's order) */
        double total = 0.0;
        for (size_t n = 0; n < N; n++) total += a->losses[n];
        m->loss = (float)(total / (double)N);
        m->have_targets = grad;
    } else {
        m->loss = NAN;
    }
    return LT_OK;
}

lt_status lt_gpt2_forward(lt_gpt2 *m, const int32_t *inputs, const int32_t *targets, int B, int T, char *err,
                          size_t errlen) {
    return forward(m, inputs, targets, B, T, targets != NULL, 1, NULL, err, errlen);
}

lt_status lt_gpt2_eval(lt_gpt2 *m, const int32_t *inputs, const int32_t *targets, int B, int T, long *correct,
                       char *err, size_t errlen) {
    if (correct) *correct = 0;
    if (!targets) {
        lt_errmsg(err, errlen, "eval_loss: no targets given");
        return LT_ERR_ARG;
    }
    return forward(m, inputs, targets, B, T, 0, 0, correct, err, errlen);
}

lt_status lt_gpt2_eval_loss(lt_gpt2 *m, const int32_t *inputs, const int32_t *targets, int B, int T, char *err,
                            size_t errlen) {
    return lt_gpt2_eval(m, inputs, targets, B, T, NULL, err, errlen);
}

lt_status lt_gpt2_backward(lt_gpt2 *m, char *err, size_t errlen) { return lt_gpt2_backward_cb(m, NULL, NULL, err, errlen); }

lt_status lt_gpt2_backward_cb(lt_gpt2 *m, lt_gpt2_grad_ready ready, void *ctx, char *err, size_t errlen) {
    if (!m->have_targets) {
        lt_errmsg(err, errlen, "backward: needs a forward with targets since the last backward");
        return LT_ERR_STATE;
    }
    /* the logits buffer turns into their gradient: a second backward would be wrong */
    m->have_targets = 0;
    const lt_gpt2_config *c = &m->cfg;
    int L = c->n_layer, C = c->n_embd, NH = c->n_head, B = m->B, T = m->T;
    size_t N = (size_t)B * (size_t)T, NC = N * (size_t)C, cap = (size_t)m->max_B * (size_t)m->max_T;
    const int32_t *in = m->tokens;
    const lt_gpt2_acts *a = &m->acts;
    const lt_gpt2_dacts *d = &m->dacts;
    lt_gpt2_param *wte = &m->params[LT_GPT2_WTE], *wpe = &m->params[LT_GPT2_WPE];
    int lnf = LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK * L;
    lt_nn_round r = rnd(m);
    float *gs = m->gscratch;

    /* whole mode: the head's backward over all rows (chunked mode did it in the forward; dln holds d lnf) */
    if (!m->head_done) head_backward(m, 0, N, N);
    m->head_done = 0;
    const float *last = L > 0 ? a->residual3 + (size_t)(L - 1) * cap * (size_t)C : a->encoded;
    const float *lw, *lb;
    lnf_weights(m, &lw, &lb);
    /* layernorm_backward adds into its dinp, and this is the first write to dres */
    memset(d->dres, 0, NC * sizeof(float));
    lt_nn_layernorm_backward(d->dres, m->params[lnf].grad, m->params[lnf + 1].grad, d->dln, last, lw, a->lnf_mean,
                             a->lnf_rstd, N, C);
    lt_status st;
    if (ready && (st = ready(ctx, lnf, 2)) != LT_OK) return st;
    /* in 16-bit compute the gradient entering a matrix multiply is rounded; the residual stream's stays fp32 */
    const float *dres_mm = r ? d->dtmp : d->dres;
    for (int l = L - 1; l >= 0; l--) {
        if (m->grad_per_block) { /* the previous block's gradients were consumed by `ready` */
            const lt_gpt2_param *p0 = &m->params[LT_GPT2_BLOCK_FIRST], *pl = p0 + LT_GPT2_PER_BLOCK - 1;
            memset(p0->grad, 0, (size_t)(pl->grad + pl->numel - p0->grad) * sizeof(float));
        }
        const float *residual = l == 0 ? a->encoded : a->residual3 + (size_t)(l - 1) * cap * (size_t)C;
        lt_nn_weight W[LT_GPT2_PER_BLOCK];
        block_weights(m, l, W);
        block_acts b = block_at(m, l);
        /* checkpointing: the block's internals were overwritten; the same computation restores them exactly */
        if (m->checkpointing) {
            block_forward(m, l, W, residual, B, T);
        } else if (m->store) {
            store_block(m, l, &b, 0);
        }
        const lt_dropout datt = drop_site(m, c->attn_pdrop, LT_GPT2_DROP_ATTN(l)),
                         dout1 = drop_site(m, c->resid_pdrop, LT_GPT2_DROP_ATTN_OUT(l)),
                         dout2 = drop_site(m, c->resid_pdrop, LT_GPT2_DROP_MLP_OUT(l));
        /* dres is d block output: it flows unchanged to residual2 and, through the mlp output's dropout (its
           mask into dln, free until the c_fc product's backward), into the mlp */
        const float *dmm = dres_mm;
        if (dout2.threshold) lt_nn_dropout(d->dln, d->dres, NC, 0, &dout2, r), dmm = d->dln;
        else if (r) lt_nn_round_copy(d->dtmp, d->dres, NC, r);
        lt_nn_matmul_backward_r(d->dbig, bg(m, l, LT_GPT2_FCPROJ_W), bg(m, l, LT_GPT2_FCPROJ_B), dmm, b.fchg,
                                W[LT_GPT2_FCPROJ_W], N, 4 * C, C, r, gs);
        lt_nn_gelu_backward_r(d->dbig, b.fch, 4 * NC, r);
        lt_nn_matmul_backward_r(d->dln, bg(m, l, LT_GPT2_FC_W), bg(m, l, LT_GPT2_FC_B), d->dbig, b.ln2,
                                W[LT_GPT2_FC_W], N, C, 4 * C, r, gs);
        lt_nn_layernorm_backward(d->dres, bg(m, l, LT_GPT2_LN2_W), bg(m, l, LT_GPT2_LN2_B), d->dln, b.res2,
                                 W[LT_GPT2_LN2_W].f, b.ln2_mean, b.ln2_rstd, N, C);
        /* now dres is d residual2: on to the block input and, through the attention output's dropout (dln is
           free again), into the attention */
        dmm = dres_mm;
        if (dout1.threshold) lt_nn_dropout(d->dln, d->dres, NC, 0, &dout1, r), dmm = d->dln;
        else if (r) lt_nn_round_copy(d->dtmp, d->dres, NC, r);
        lt_nn_matmul_backward_r(d->datty, bg(m, l, LT_GPT2_ATTPROJ_W), bg(m, l, LT_GPT2_ATTPROJ_B), dmm, b.atty,
                                W[LT_GPT2_ATTPROJ_W], N, C, C, r, gs);
        /* dbig is free again (the mlp's backward is done): the attention's scratch, the forward's size */
        lt_nn_attention_backward(d->dqkv, d->dbig, att_scratch(m), d->datty, b.qkv, b.att_stats, B, T, C, NH, r,
                                 &datt);
        lt_nn_matmul_backward_r(d->dln, bg(m, l, LT_GPT2_QKV_W), bg(m, l, LT_GPT2_QKV_B), d->dqkv, b.ln1,
                                W[LT_GPT2_QKV_W], N, C, 3 * C, r, gs);
        lt_nn_layernorm_backward(d->dres, bg(m, l, LT_GPT2_LN1_W), bg(m, l, LT_GPT2_LN1_B), d->dln, residual,
                                 W[LT_GPT2_LN1_W].f, b.ln1_mean, b.ln1_rstd, N, C);
        if (ready && (st = ready(ctx, LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK * l, LT_GPT2_PER_BLOCK)) != LT_OK)
            return st;
    }
    const lt_dropout demb = drop_site(m, c->embd_pdrop, LT_GPT2_DROP_EMBD);
    lt_nn_dropout(d->dres, d->dres, NC, 0, &demb, LT_NN_ROUND_NONE);
    lt_nn_encoder_backward(wte->grad, wpe->grad, d->dres, in, B, T, C);
    if (ready && (st = ready(ctx, LT_GPT2_WTE, 2)) != LT_OK) return st;
    (void)err, (void)errlen;
    return LT_OK;
}
