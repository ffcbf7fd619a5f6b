/* The GPT-2 model: the gpt2-trace-1 reference trace (logits, loss, every
 * gradient, AdamW training losses, by the trace's tolerances); gradients
 * against central differences of an independent float64 forward; weight
 * loading and its exact error messages; configs; and that forward/backward
 * allocate nothing and repeat bit for bit. */
#include <float.h>
#include <stdint.h>

#include "leantrain/dtype.h"
#include "leantrain/optim.h"
#include "leantrain/safetensors.h"
#include "model/gpt2.h"
#include "model/gpt2_decode.h"
#include "model/gpt2_layers.h"
#include "testutil.h"
#include <cjson/cJSON.h>

#include <omp.h>

/* ---------------------------------------------------------------- helpers */

static uint64_t rng_state = 0x1234567u;
static double urand(void) { /* uniform [0, 1), a test-local LCG so runs are reproducible */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) * 0x1.0p-53;
}

static lt_gpt2 *make_model(const lt_gpt2_config *cfg, int B, int T) {
    char err[512] = "";
    lt_gpt2 *m = NULL;
    CHECK(lt_gpt2_create(cfg, &m, err, sizeof err) == LT_OK, "create: %s", err);
    if (!m) return NULL;
    CHECK(lt_gpt2_set_batch(m, B, T, err, sizeof err) == LT_OK, "set_batch: %s", err);
    return m;
}

/* Every parameter random and O(1) so that every nonlinearity is exercised:
 * weights U(-0.5, 0.5), layernorm weights 1 +- 0.3, biases +- 0.2. */
static void randomize(lt_gpt2 *m) {
    for (int i = 0; i < m->num_tensors; i++) {
        lt_gpt2_param *p = &m->params[i];
        int bias = strstr(p->name, ".bias") != NULL, ln = strstr(p->name, "ln_") != NULL;
        for (size_t k = 0; k < p->numel; k++) {
            double u = urand() - 0.5;
            p->data[k] = (float)(ln && !bias ? 1.0 + 0.6 * u : bias ? 0.4 * u : u);
        }
    }
}

/* ----------------------------------------------- the float64 reference */

/* The dropout factor of element i of site `site` in the model's last training forward, from the documented
 * definition (one lt_dropout_keep per element; the model's loops draw words in batches): 0 or 1 / (1 - p) as
 * the float scale; 1 when the model applies no dropout. */
static double ref_drop(const lt_gpt2 *dm, double p, uint32_t site, uint64_t i) {
    if (!dm || !dm->dropout_on) return 1.0;
    lt_dropout d = lt_dropout_make(p, dm->dropout_seed, site, dm->dropout_stream);
    if (!d.threshold) return 1.0;
    return lt_dropout_keep(&d, i) ? (double)d.scale : 0.0;
}

/* NEFTune's noise on element i of the token embeddings in the model's last training forward (lt_noise_at, the
 * documented definition; its distribution is checked in test_neftune); 0 when the model applies none. */
static double ref_noise(const lt_gpt2 *dm, int T, uint64_t i) {
    if (!dm || !dm->dropout_on || dm->neftune_alpha == 0.0f) return 0.0;
    const lt_noise z = lt_noise_make(lt_gpt2_neftune_magnitude(dm->neftune_alpha, T, dm->cfg.n_embd),
                                     dm->dropout_seed, LT_GPT2_NOISE_NEFTUNE, dm->dropout_stream);
    return lt_noise_at(&z, i);
}

/* An independent, plainly written GPT-2 forward in double: w[i] is
 * parameter i of the model's table as doubles. Returns the mean loss and
 * fills logits[B*T*V] when given. With dm (a model whose dropout is on), its
 * config's dropout with its seed and stream, as GPT2LMHeadModel applies it. */
/* the label smoothing ref_forward's loss applies (lt_gpt2_set_label_smoothing's) */
static double ref_label_smoothing = 0.0;

static double ref_forward(const lt_gpt2_config *c, double **w, const int32_t *in, const int32_t *tg, int B, int T,
                          double *logits, const lt_gpt2 *dm) {
    int C = c->n_embd, V = c->vocab_size, L = c->n_layer, NH = c->n_head, hs = C / NH;
    double eps = c->layer_norm_epsilon;
    double *x = malloc(sizeof(double) * (size_t)T * C), *ln = malloc(sizeof(double) * (size_t)T * C);
    double *qkv = malloc(sizeof(double) * (size_t)T * 3 * C), *y = malloc(sizeof(double) * (size_t)T * C);
    double *h = malloc(sizeof(double) * (size_t)T * 4 * C), *sc = malloc(sizeof(double) * (size_t)T);
    double *lg = malloc(sizeof(double) * (size_t)V);
    double total = 0.0;
#define W(l, k) w[LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK * (l) + (k)]
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++)
            for (int i = 0; i < C; i++)
                x[t * C + i] = (w[LT_GPT2_WTE][in[b * T + t] * C + i] + ref_noise(dm, T, ((size_t)b * T + t) * C + i) +
                                w[LT_GPT2_WPE][t * C + i]) *
                               ref_drop(dm, c->embd_pdrop, LT_GPT2_DROP_EMBD, ((size_t)b * T + t) * C + i);
        for (int l = 0; l <= L; l++) {
            /* layernorm: ln_1 of block l, or ln_f after the last block */
            const double *g = l < L ? W(l, LT_GPT2_LN1_W) : w[LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK * L];
            const double *be = l < L ? W(l, LT_GPT2_LN1_B) : w[LT_GPT2_BLOCK_FIRST + LT_GPT2_PER_BLOCK * L + 1];
            for (int t = 0; t < T; t++) {
                double mu = 0, var = 0;
                for (int i = 0; i < C; i++) mu += x[t * C + i] / C;
                for (int i = 0; i < C; i++) var += (x[t * C + i] - mu) * (x[t * C + i] - mu) / C;
                for (int i = 0; i < C; i++) ln[t * C + i] = (x[t * C + i] - mu) / sqrt(var + eps) * g[i] + be[i];
            }
            if (l == L) break;
            for (int t = 0; t < T; t++)
                for (int o = 0; o < 3 * C; o++) {
                    double s = W(l, LT_GPT2_QKV_B)[o];
                    for (int i = 0; i < C; i++) s += ln[t * C + i] * W(l, LT_GPT2_QKV_W)[i * 3 * C + o];
                    qkv[t * 3 * C + o] = s;
                }
            for (int hd = 0; hd < NH; hd++)
                for (int t = 0; t < T; t++) {
                    double mx = -INFINITY, z = 0;
                    for (int u = 0; u <= t; u++) {
                        double s = 0;
                        for (int i = 0; i < hs; i++) s += qkv[t * 3 * C + hd * hs + i] * qkv[u * 3 * C + C + hd * hs + i];
                        sc[u] = s / sqrt((double)hs);
                        mx = fmax(mx, sc[u]);
                    }
                    for (int u = 0; u <= t; u++) z += exp(sc[u] - mx);
                    for (int i = 0; i < hs; i++) {
                        double s = 0;
                        for (int u = 0; u <= t; u++)
                            s += exp(sc[u] - mx) / z *
                                 ref_drop(dm, c->attn_pdrop, LT_GPT2_DROP_ATTN(l),
                                          (((size_t)b * NH + hd) * T + t) * T + u) *
                                 qkv[u * 3 * C + 2 * C + hd * hs + i];
                        y[t * C + hd * hs + i] = s;
                    }
                }
            for (int t = 0; t < T; t++)
                for (int o = 0; o < C; o++) {
                    double s = W(l, LT_GPT2_ATTPROJ_B)[o];
                    for (int i = 0; i < C; i++) s += y[t * C + i] * W(l, LT_GPT2_ATTPROJ_W)[i * C + o];
                    x[t * C + o] += s * ref_drop(dm, c->resid_pdrop, LT_GPT2_DROP_ATTN_OUT(l), ((size_t)b * T + t) * C + o);
                }
            for (int t = 0; t < T; t++) {
                double mu = 0, var = 0;
                for (int i = 0; i < C; i++) mu += x[t * C + i] / C;
                for (int i = 0; i < C; i++) var += (x[t * C + i] - mu) * (x[t * C + i] - mu) / C;
                for (int i = 0; i < C; i++)
                    ln[t * C + i] = (x[t * C + i] - mu) / sqrt(var + eps) * W(l, LT_GPT2_LN2_W)[i] + W(l, LT_GPT2_LN2_B)[i];
            }
            for (int t = 0; t < T; t++)
                for (int o = 0; o < 4 * C; o++) {
                    double s = W(l, LT_GPT2_FC_B)[o];
                    for (int i = 0; i < C; i++) s += ln[t * C + i] * W(l, LT_GPT2_FC_W)[i * 4 * C + o];
                    h[t * 4 * C + o] = 0.5 * s * (1 + tanh(sqrt(2 / M_PI) * (s + 0.044715 * s * s * s)));
                }
            for (int t = 0; t < T; t++)
                for (int o = 0; o < C; o++) {
                    double s = W(l, LT_GPT2_FCPROJ_B)[o];
                    for (int i = 0; i < 4 * C; i++) s += h[t * 4 * C + i] * W(l, LT_GPT2_FCPROJ_W)[i * C + o];
                    x[t * C + o] += s * ref_drop(dm, c->resid_pdrop, LT_GPT2_DROP_MLP_OUT(l), ((size_t)b * T + t) * C + o);
                }
        }
        for (int t = 0; t < T; t++) {
            double mx = -INFINITY, z = 0;
            for (int v = 0; v < V; v++) {
                double s = 0;
                for (int i = 0; i < C; i++) s += ln[t * C + i] * w[LT_GPT2_WTE][v * C + i];
                lg[v] = s;
                mx = fmax(mx, s);
            }
            double mean = 0;
            for (int v = 0; v < V; v++) z += exp(lg[v] - mx), mean += lg[v] / V;
            if (logits) memcpy(logits + ((size_t)b * T + t) * V, lg, sizeof(double) * V);
            const double ls = ref_label_smoothing, lse = mx + log(z); /* LabelSmoother's mix */
            total += (1 - ls) * (lse - lg[tg[b * T + t]]) + ls * (lse - mean);
        }
    }
#undef W
    free(x), free(ln), free(qkv), free(y), free(h), free(sc), free(lg);
    return total / ((double)B * T);
}

/* ------------------------------------------------------------ the trace */

static void test_trace(void) {
    char path[512], err[1024] = "";
    snprintf(path, sizeof path, "%s/golden/gpt2_tiny.safetensors", lt_test_data_dir());
    lt_st_file *f = NULL;
    CHECK(lt_st_open(path, &f, err, sizeof err) == LT_OK, "%s", err);
    if (!f) return;
    lt_gpt2_config cfg;
    CHECK(lt_gpt2_config_from_json(lt_st_meta(f, "config"), "config", &cfg, err, sizeof err) == LT_OK, "%s", err);
    CHECK(cfg.vocab_size == 256 && cfg.n_positions == 64 && cfg.n_embd == 48 && cfg.n_layer == 2 && cfg.n_head == 4 &&
              cfg.layer_norm_epsilon == 1e-5,
          "config parsed wrong");
    int B = atoi(lt_st_meta(f, "batch")), T = atoi(lt_st_meta(f, "seq_len"));
    double tol_logits = 1e-5, tol_loss = 1e-5, tol_grad = 1e-5, tol_train = 1e-4; /* = the trace's, checked below */
    const char *tol = lt_st_meta(f, "tolerance");
    CHECK(tol && strstr(tol, "\"logits_max_abs\": 1e-05") && strstr(tol, "\"loss_abs\": 1e-05") &&
              strstr(tol, "\"grad_max_abs_over_tensor_max_abs\": 1e-05") && strstr(tol, "\"train_losses_abs\": 0.0001"),
          "trace tolerances changed: %s", tol ? tol : "(none)");
    lt_gpt2 *m = make_model(&cfg, B, T);
    CHECK(lt_gpt2_load_weights(m, f, path, err, sizeof err) == LT_OK, "%s", err);
    size_t N = (size_t)B * T, V = (size_t)cfg.vocab_size;
    int32_t *in = malloc(N * 4), *tg = malloc(N * 4);
    float *ref = malloc(N * V * sizeof(float)), *buf = malloc(N * V * sizeof(float));
    memcpy(in, lt_st_find(f, "inputs")->data, N * 4);
    memcpy(tg, lt_st_find(f, "targets")->data, N * 4);

    CHECK(lt_gpt2_forward(m, in, tg, B, T, err, sizeof err) == LT_OK, "%s", err);
    lt_st_read_f32(lt_st_find(f, "logits"), ref, N * V, err, sizeof err);
    double worst = 0;
    for (size_t i = 0; i < N * V; i++) worst = fmax(worst, fabs((double)m->acts.logits[i] - ref[i]));
    CHECK(worst <= tol_logits, "logits max abs error %.3e > %.0e", worst, tol_logits);
    float loss_ref;
    lt_st_read_f32(lt_st_find(f, "loss"), &loss_ref, 1, err, sizeof err);
    CHECK(fabs(m->loss - loss_ref) <= tol_loss, "loss %.8f vs %.8f", m->loss, loss_ref);
    printf("trace: logits max abs %.3e, loss abs %.3e\n", worst, fabs(m->loss - loss_ref));

    lt_gpt2_zero_grad(m);
    CHECK(lt_gpt2_backward(m, err, sizeof err) == LT_OK, "%s", err);
    double gworst = 0;
    for (int i = 0; i < m->num_tensors; i++) {
        lt_gpt2_param *p = &m->params[i];
        char name[80];
        snprintf(name, sizeof name, "grad.%s", p->name);
        const lt_st_tensor *t = lt_st_find(f, name);
        CHECK(t && t->numel == p->numel, "%s missing or of another size", name);
        if (!t || t->numel != p->numel) continue;
        lt_st_read_f32(t, buf, p->numel, err, sizeof err);
        double mref = 0, md = 0;
        for (size_t k = 0; k < p->numel; k++) {
            mref = fmax(mref, fabs(buf[k]));
            md = fmax(md, fabs((double)p->grad[k] - buf[k]));
        }
        CHECK(md <= tol_grad * mref, "%s: max abs error %.3e > %.0e x max |ref| %.3e", name, md, tol_grad, mref);
        CHECK(mref > 0, "%s: reference gradient is all zero", name);
        gworst = fmax(gworst, md / mref);
    }
    printf("trace: worst gradient error / tensor max %.3e\n", gworst);

    /* AdamW on the same batch, decay on matrices and embeddings only */
    lt_hparams hp = {.lr = 3e-3, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1};
    CHECK(strstr(lt_st_meta(f, "train"), "\"lr\": 0.003") && strstr(lt_st_meta(f, "train"), "[0.9, 0.95]"),
          "train metadata changed: %s", lt_st_meta(f, "train"));
    lt_optim *o = lt_optim_create("adamw_torch", NULL, &hp, err, sizeof err);
    CHECK(o != NULL, "%s", err);
    int nd = lt_optim_add_group(o, "weight_decay=0.0");
    int ndecay = 0;
    for (int i = 0; i < m->num_tensors; i++) {
        lt_gpt2_param *p = &m->params[i];
        lt_param_desc d = {.name = p->name, .data = p->data, .grad = p->grad, .ndim = p->ndim,
                           .shape = {p->shape[0], p->shape[1]}, .group = p->weight_decay ? 0 : nd};
        CHECK(lt_optim_add_param(o, &d) == i, "%s", lt_optim_error(o));
        ndecay += p->weight_decay;
    }
    CHECK(ndecay == 2 + 4 * cfg.n_layer, "%d tensors with weight decay", ndecay);
    const lt_st_tensor *tl = lt_st_find(f, "train_losses");
    int S = (int)tl->numel;
    lt_st_read_f32(tl, buf, (size_t)S, err, sizeof err);
    double tworst = 0;
    for (int s = 0; s < S; s++) {
        lt_gpt2_zero_grad(m);
        CHECK(lt_gpt2_forward(m, in, tg, B, T, err, sizeof err) == LT_OK, "%s", err);
        CHECK(fabs(m->loss - buf[s]) <= tol_train, "train loss %d: %.7f vs %.7f", s, m->loss, buf[s]);
        tworst = fmax(tworst, fabs(m->loss - buf[s]));
        CHECK(lt_gpt2_backward(m, err, sizeof err) == LT_OK, "%s", err);
        CHECK(lt_optim_step(o, 1.0f) == LT_OK, "%s", lt_optim_error(o));
    }
    CHECK(buf[S - 1] < buf[0] - 0.1, "the trace's training does not lower the loss");
    printf("trace: worst train loss error %.3e over %d steps\n", tworst, S);
    lt_optim_free(o);
    free(in), free(tg), free(ref), free(buf);
    lt_gpt2_free(m);
    lt_st_close(f);
}

/* ------------------------------------------------- finite differences */

static const lt_gpt2_config TINY = {.vocab_size = 13, .n_positions = 9, .n_embd = 8, .n_layer = 2, .n_head = 2,
                                    .layer_norm_epsilon = 1e-5};

/* The float32 analytic gradient against central differences of the float64
 * reference loss (step 1e-4: truncation error ~1e-8 relative, rounding
 * ~1e-12). The float32 gradient itself carries roundoff of about 1e-6 of its
 * tensor's largest element, so the bound is 1e-4 x that largest element:
 * 100 times the roundoff, while a wrong formula misses by O(1). */
static void finite_differences(const lt_gpt2_config *cfg, int dropout, float smoothing, float neftune) {
    enum { B = 2, T = 7 };
    char err[512] = "";
    lt_gpt2 *m = make_model(cfg, B, T);
    if (!m) return;
    randomize(m);
    if (dropout) lt_gpt2_set_dropout(m, 1, 0x5eed, 3);
    lt_gpt2_set_label_smoothing(m, smoothing);
    ref_label_smoothing = smoothing;
    lt_gpt2_set_neftune(m, neftune);
    const lt_gpt2 *dm = dropout ? m : NULL;
    int32_t in[B * T], tg[B * T];
    for (int i = 0; i < B * T; i++) {
        in[i] = (int32_t)(urand() * 11); /* token 11 and 12 never input: their wte rows get only the head's gradient */
        tg[i] = (int32_t)(urand() * 13);
    }
    CHECK(lt_gpt2_forward(m, in, tg, B, T, err, sizeof err) == LT_OK, "%s", err);
    double **w = calloc((size_t)m->num_tensors, sizeof *w);
    for (int i = 0; i < m->num_tensors; i++) {
        w[i] = malloc(m->params[i].numel * sizeof(double));
        for (size_t k = 0; k < m->params[i].numel; k++) w[i][k] = m->params[i].data[k];
    }
    double *logits = malloc(sizeof(double) * B * T * cfg->vocab_size);
    double loss = ref_forward(cfg, w, in, tg, B, T, logits, dm), lmax = 0;
    for (int i = 0; i < B * T * cfg->vocab_size; i++) lmax = fmax(lmax, fabs(logits[i] - m->acts.logits[i]));
    CHECK(fabs(loss - m->loss) < 1e-5, "forward loss %.9f vs float64 %.9f", m->loss, loss);
    CHECK(lmax < 1e-5, "forward logits differ from float64 by %.3e", lmax);
    lt_gpt2_zero_grad(m);
    CHECK(lt_gpt2_backward(m, err, sizeof err) == LT_OK, "%s", err);
    double worst = 0;
    int checked = 0;
    for (int i = 0; i < m->num_tensors; i++) {
        lt_gpt2_param *p = &m->params[i];
        double gmax = 0;
        for (size_t k = 0; k < p->numel; k++) gmax = fmax(gmax, fabs(p->grad[k]));
        CHECK(gmax > 0 || i == LT_GPT2_WPE, "%s: gradient all zero", p->name);
        size_t idx[6] = {0, p->numel - 1, (size_t)(urand() * p->numel), (size_t)(urand() * p->numel), 0, 0};
        int n = 4;
        if (i == LT_GPT2_WTE) { /* an input token's row and a row only the lm head reads */
            idx[n++] = (size_t)in[3] * cfg->n_embd + 5;
            idx[n++] = 12 * (size_t)cfg->n_embd + 2;
        } else if (i == LT_GPT2_WPE) { /* a used position and one past T (zero gradient) */
            idx[n++] = 3 * (size_t)cfg->n_embd + 1;
            idx[n++] = 8 * (size_t)cfg->n_embd + 4;
        }
        for (int j = 0; j < n; j++) {
            size_t k = idx[j];
            double keep = w[i][k], hstep = 1e-4;
            w[i][k] = keep + hstep;
            double lp = ref_forward(cfg, w, in, tg, B, T, NULL, dm);
            w[i][k] = keep - hstep;
            double lm = ref_forward(cfg, w, in, tg, B, T, NULL, dm);
            w[i][k] = keep;
            double fd = (lp - lm) / (2 * hstep), e = fabs(fd - p->grad[k]);
            CHECK(e <= 1e-4 * fmax(gmax, 1e-6), "%s[%zu]: analytic %.9g vs finite difference %.9g (tensor max %.3g)",
                  p->name, k, p->grad[k], fd, gmax);
            worst = fmax(worst, e / fmax(gmax, 1e-6));
            checked++;
        }
    }
    printf("finite differences%s%s%s: %d elements of %d tensors, worst error / tensor max %.3e\n",
           dropout && neftune == 0 ? " with dropout" : "", smoothing > 0 ? " with label smoothing" : "",
           neftune > 0 ? " with NEFTune noise" : "", checked, m->num_tensors, worst);
    ref_label_smoothing = 0.0;
    for (int i = 0; i < m->num_tensors; i++) free(w[i]);
    free(w), free(logits);
    lt_gpt2_free(m);
}

static void test_finite_differences(void) {
    finite_differences(&TINY, 0, 0.0f, 0.0f);
    finite_differences(&TINY, 0, 0.1f, 0.0f); /* the loss (forward against float64) and its gradient with smoothing */
    /* NEFTune alpha 5 on a training forward (dropout on, every pdrop 0): magnitude 5 / sqrt(7 x 8) = 0.67, the
       noisy forward against float64 and the gradient of that loss */
    finite_differences(&TINY, 1, 0.0f, 5.0f);
}

/* ---------------------------------------------------------------- dropout */

/* Philox4x32-10 against Random123's known answers, and lt_nn_dropout (words drawn in batches, chunks split
 * over threads) against the per-element definition lt_dropout_keep, bit for bit, from an unaligned element. */
static void test_dropout_kernel(void) {
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6,
         0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420,
         0x24126ea1}};
    for (int k = 0; k < 3; k++) {
        uint32_t c[4] = {kat[k][0], kat[k][1], kat[k][2], kat[k][3]};
        lt_philox4x32_10(c, kat[k][4], kat[k][5]);
        for (int j = 0; j < 4; j++)
            CHECK(c[j] == kat[k][6 + j], "philox KAT %d word %d: %08x, want %08x", k, j, c[j], kat[k][6 + j]);
    }
    const size_t n = 70001; /* several 16K chunks and a partial one */
    const uint64_t i0 = 5;
    float *x = malloc(n * 4), *y = malloc(n * 4);
    for (size_t i = 0; i < n; i++) x[i] = (float)(urand() * 4 - 2);
    for (int r = 0; r < 2; r++) {
        const double p = r ? 0.1 : 0.3;
        lt_dropout d = lt_dropout_make(p, 42 + (uint64_t)r, 7, 11);
        CHECK(d.threshold == (uint32_t)(p * 4294967296.0) && d.scale == (float)(1 / (1 - p)), "site for p %g", p);
        lt_nn_dropout(y, x, n, i0, &d, r ? LT_NN_ROUND_BF16 : LT_NN_ROUND_NONE);
        size_t dropped = 0, bad = 0;
        for (size_t i = 0; i < n; i++) {
            float want = 0.0f;
            if (lt_dropout_keep(&d, i0 + i)) {
                want = r ? lt_bf16_to_f32(lt_f32_to_bf16(lt_bf16_to_f32(lt_f32_to_bf16(x[i])) * d.scale))
                         : x[i] * d.scale;
            } else {
                dropped++;
            }
            bad += memcmp(&want, &y[i], 4) != 0;
        }
        CHECK(bad == 0, "p %g: %zu of %zu elements differ from lt_dropout_keep's definition", p, bad, n);
        /* the dropped fraction within 5 standard deviations of p */
        double frac = (double)dropped / (double)n, sd = sqrt(p * (1 - p) / (double)n);
        CHECK(fabs(frac - p) < 5 * sd, "p %g: dropped %.5f of the elements", p, frac);
        printf("dropout kernel: p %.1f, dropped %.4f of %zu (sd %.4f)\n", p, frac, n, sd);
        /* another stream, another site: other masks */
        lt_dropout e = d;
        e.stream++;
        size_t same = 0;
        for (size_t i = 0; i < 1000; i++) same += lt_dropout_keep(&d, i) == lt_dropout_keep(&e, i);
        CHECK(same < 1000 - 50, "stream %u and %u agree on %zu of 1000 elements", d.stream, e.stream, same);
    }
    lt_dropout off = lt_dropout_make(0.0, 1, 0, 0);
    memcpy(y, x, n * 4);
    lt_nn_dropout(y, y, n, 0, &off, LT_NN_ROUND_NONE);
    CHECK(off.threshold == 0 && memcmp(x, y, n * 4) == 0, "p 0 changed the values");
    free(x), free(y);
}

/* GPT-2 with every dropout site on: loss and gradients against the float64 reference with the same masks. */
static void test_dropout_gradients(void) {
    lt_gpt2_config c = TINY;
    c.embd_pdrop = 0.2, c.resid_pdrop = 0.3, c.attn_pdrop = 0.25;
    finite_differences(&c, 1, 0.0f, 0.0f);
}

/* Dropout in the model: the same stream repeats bit for bit and another one differs; eval_loss and forwards
 * without dropout agree; checkpointing (recomputed masks) and the 16-bit store give the gradients of the run
 * without checkpointing bit for bit. */
static void test_dropout_model(void) {
    lt_gpt2_config cfg = {.vocab_size = 97, .n_positions = 40, .n_embd = 64, .n_layer = 2, .n_head = 4,
                          .layer_norm_epsilon = 1e-5, .embd_pdrop = 0.1, .resid_pdrop = 0.2, .attn_pdrop = 0.3};
    enum { B = 3, T = 33 };
    char err[512] = "";
    int32_t in[B * T], tg[B * T];
    for (int i = 0; i < B * T; i++) in[i] = (int32_t)(urand() * 97), tg[i] = (int32_t)(urand() * 97);
    for (int prec = 0; prec < 2; prec++) {
        lt_gpt2 *m[2];
        float *g[2], loss[2];
        for (int k = 0; k < 2; k++) {
            CHECK(lt_gpt2_create(&cfg, &m[k], err, sizeof err) == LT_OK, "%s", err);
            if (prec) lt_gpt2_set_precision(m[k], LT_GPT2_BF16, 0, err, sizeof err);
            lt_gpt2_set_checkpointing(m[k], k == 1);
            CHECK(lt_gpt2_set_batch(m[k], B, T, err, sizeof err) == LT_OK, "%s", err);
            lt_gpt2_init_random(m[k], 9);
            lt_gpt2_set_dropout(m[k], 1, 77, 5);
            lt_gpt2_zero_grad(m[k]);
            CHECK(lt_gpt2_forward(m[k], in, tg, B, T, err, sizeof err) == LT_OK, "%s", err);
            CHECK(lt_gpt2_backward(m[k], err, sizeof err) == LT_OK, "%s", err);
            loss[k] = m[k]->loss;
            g[k] = malloc(m[k]->grad_floats * 4);
            memcpy(g[k], m[k]->grad_memory, m[k]->grad_floats * 4);
        }
        CHECK(loss[0] == loss[1] && memcmp(g[0], g[1], m[0]->grad_floats * 4) == 0,
              "%s: checkpointing changed the dropout run's loss (%.9g vs %.9g) or gradients", prec ? "bf16" : "fp32",
              loss[0], loss[1]);
        lt_gpt2 *a = m[0];
        /* the same stream again: the same bits */
        lt_gpt2_zero_grad(a);
        lt_gpt2_forward(a, in, tg, B, T, err, sizeof err);
        lt_gpt2_backward(a, err, sizeof err);
        CHECK(a->loss == loss[0] && memcmp(g[0], a->grad_memory, a->grad_floats * 4) == 0, "stream 5 did not repeat");
        /* without dropout, and evaluation with it on: one loss, lower than the run with dropout's here */
        lt_gpt2_eval_loss(a, in, tg, B, T, err, sizeof err);
        float eval = a->loss;
        lt_gpt2_set_dropout(a, 0, 77, 5);
        lt_gpt2_forward(a, in, tg, B, T, err, sizeof err);
        CHECK(a->loss == eval, "eval_loss %.9g with dropout on, forward without dropout %.9g", eval, a->loss);
        CHECK(eval != loss[0], "dropout left the loss unchanged (%.9g)", eval);
        lt_gpt2_set_dropout(a, 1, 77, 6);
        lt_gpt2_forward(a, in, tg, B, T, err, sizeof err);
        CHECK(a->loss != loss[0] && a->loss != eval, "stream 6 gave stream 5's loss or no dropout's");
        printf("dropout model (%s): loss %.6f (stream 5), %.6f (stream 6), %.6f without\n", prec ? "bf16" : "fp32",
               loss[0], a->loss, eval);
        for (int k = 0; k < 2; k++) free(g[k]), lt_gpt2_free(m[k]);
    }
}

/* ------------------------------------------ no allocation, determinism */

static void test_repeat_and_capacity(void) {
    lt_gpt2_config cfg = {.vocab_size = 97, .n_positions = 40, .n_embd = 64, .n_layer = 2, .n_head = 4,
                          .layer_norm_epsilon = 1e-5};
    enum { B = 3, T = 33 };
    char err[512] = "";
    lt_gpt2 *m = make_model(&cfg, B, T);
    if (!m) return;
    CHECK(m->num_params == lt_gpt2_config_num_params(&cfg), "num_params %zu", m->num_params);
    lt_gpt2_init_random(m, 7);
    int32_t in[B * T], tg[B * T];
    for (int i = 0; i < B * T; i++) in[i] = (int32_t)(urand() * 97), tg[i] = (int32_t)(urand() * 97);
    size_t nl = (size_t)B * T * 97;
    float *logits1 = malloc(nl * 4), *grads1 = malloc(m->memory_floats * 4);
    lt_gpt2_acts acts0 = m->acts;
    lt_gpt2_dacts dacts0 = m->dacts;
    float *am = m->act_memory, *dm = m->dact_memory, *pm = m->param_memory, *gm = m->grad_memory;
    float loss1 = 0;
    for (int rep = 0; rep < 2; rep++) {
        lt_gpt2_zero_grad(m);
        CHECK(lt_gpt2_forward(m, in, tg, B, T, err, sizeof err) == LT_OK, "%s", err);
        if (rep == 0) {
            memcpy(logits1, m->acts.logits, nl * 4);
            loss1 = m->loss;
        } else {
            CHECK(memcmp(logits1, m->acts.logits, nl * 4) == 0, "logits differ between two identical forwards");
            CHECK(memcmp(&loss1, &m->loss, 4) == 0, "loss %.9g then %.9g", loss1, m->loss);
        }
        CHECK(lt_gpt2_backward(m, err, sizeof err) == LT_OK, "%s", err);
        if (rep == 0) memcpy(grads1, m->grad_memory, m->memory_floats * 4);
        else CHECK(memcmp(grads1, m->grad_memory, m->memory_floats * 4) == 0, "gradients differ between two runs");
    }
    CHECK(am == m->act_memory && dm == m->dact_memory && pm == m->param_memory && gm == m->grad_memory &&
              memcmp(&acts0, &m->acts, sizeof acts0) == 0 && memcmp(&dacts0, &m->dacts, sizeof dacts0) == 0,
          "forward/backward moved a buffer");
    CHECK(fabs(loss1 - log(97.0)) < 0.05, "loss at init %.4f, expected about ln(97) = %.4f", loss1, log(97.0));

    /* a smaller batch inside the capacity gives exactly what a model sized for it gives */
    lt_gpt2 *m2 = make_model(&cfg, 2, 20);
    memcpy(m2->param_memory, m->param_memory, m->memory_floats * 4);
    lt_gpt2_zero_grad(m), lt_gpt2_zero_grad(m2);
    int32_t in2[40], tg2[40];
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 20; t++) in2[b * 20 + t] = in[b * T + t], tg2[b * 20 + t] = tg[b * T + t];
    CHECK(lt_gpt2_forward(m, in2, tg2, 2, 20, err, sizeof err) == LT_OK, "%s", err);
    CHECK(lt_gpt2_forward(m2, in2, tg2, 2, 20, err, sizeof err) == LT_OK, "%s", err);
    CHECK(m->loss == m2->loss, "loss %.9g in a larger buffer vs %.9g", m->loss, m2->loss);
    CHECK(memcmp(m->acts.logits, m2->acts.logits, 40 * 97 * 4) == 0, "logits differ in a larger buffer");
    lt_gpt2_backward(m, err, sizeof err);
    lt_gpt2_backward(m2, err, sizeof err);
    CHECK(memcmp(m->grad_memory, m2->grad_memory, m->memory_floats * 4) == 0, "gradients differ in a larger buffer");

    /* misuse */
    CHECK(lt_gpt2_backward(m, err, sizeof err) == LT_ERR_STATE &&
              !strcmp(err, "backward: needs a forward with targets since the last backward"),
          "%s", err);
    CHECK(lt_gpt2_forward(m, in, NULL, B, T, err, sizeof err) == LT_OK && isnan(m->loss), "forward without targets");
    CHECK(lt_gpt2_backward(m, err, sizeof err) == LT_ERR_STATE, "backward after a forward without targets");
    CHECK(lt_gpt2_forward(m, in, tg, B, T + 1, err, sizeof err) == LT_ERR_ARG &&
              !strcmp(err, "forward: B 3, T 34 exceed the capacity set by lt_gpt2_set_batch (B 3, T 33)"),
          "%s", err);
    in[5] = 97;
    CHECK(lt_gpt2_forward(m, in, tg, B, T, err, sizeof err) == LT_ERR_ARG &&
              !strcmp(err, "forward: inputs[5] = 97 is not a token id (0 to 96)"),
          "%s", err);
    CHECK(lt_gpt2_set_batch(m, 1, 41, err, sizeof err) == LT_ERR_ARG &&
              !strcmp(err, "set_batch: B 1, T 41: need B >= 1 and 1 <= T <= n_positions (40)"),
          "%s", err);
    lt_gpt2 *m3 = make_model(&cfg, 1, 1);
    lt_gpt2_free(m3);
    CHECK(lt_gpt2_create(&cfg, &m3, err, sizeof err) == LT_OK, "%s", err);
    CHECK(lt_gpt2_forward(m3, in, tg, 1, 1, err, sizeof err) == LT_ERR_STATE &&
              !strcmp(err, "forward: no activation buffers: call lt_gpt2_set_batch first"),
          "%s", err);
    lt_gpt2_free(m3);
    free(logits1), free(grads1);
    lt_gpt2_free(m), lt_gpt2_free(m2);
}

/* ------------------------------------------ the lm head in chunks */

/* m[0] with the lm head whole and m[1] with it in chunks of `rows`, both at precision p (checkpointing ckpt),
 * batch B x T, the same random weights (seed 11); 0 when either could not be made (a failed check) */
static int head_pair(const lt_gpt2_config *cfg, lt_gpt2_precision p, int ckpt, int rows, int B, int T,
                     lt_gpt2 *m[2]) {
    char err[512] = "";
    m[0] = m[1] = NULL;
    for (int k = 0; k < 2; k++) {
        CHECK(lt_gpt2_create(cfg, &m[k], err, sizeof err) == LT_OK, "%s", err);
        if (!m[k]) return 0;
        lt_gpt2_set_precision(m[k], p, 0, err, sizeof err);
        lt_gpt2_set_checkpointing(m[k], ckpt);
        if (k) lt_gpt2_set_head_rows(m[k], rows);
        CHECK(lt_gpt2_set_batch(m[k], B, T, err, sizeof err) == LT_OK, "%s", err);
        lt_gpt2_init_random(m[k], 11);
    }
    return 1;
}

/* Chunked mode (lt_gpt2_set_head_rows, the trainer's) against whole mode on
 * the same weights and tokens. The loss: the same. The gradients: the same
 * math, but OpenBLAS picks other kernels for a 7-row multiply than for a
 * 99-row one, so d lnf differs in the last fp32 bits, and wte's gradient sums
 * over the positions in another order: in fp32 within 1e-5 of each tensor's
 * largest element (measured 4e-7); in 16-bit compute such a difference can
 * move a value to the neighbouring bf16 / fp16 one wherever the backward
 * rounds, so the bound is two of its steps at the tensor's largest element
 * (2^-6, 2^-9: measured 4e-4 and 8e-4 of the maximum; one chunk of all 99 rows: 0).
 * A chunk missed, doubled or scaled wrongly misses by O(1). Then: a logits
 * buffer of 7 rows (and in 16-bit compute the fp32 sum of wte's gradient),
 * as memory_plan says; no forward without targets; eval_loss. */
static void test_head_chunks(void) {
    lt_gpt2_config cfg = {.vocab_size = 97, .n_positions = 40, .n_embd = 64, .n_layer = 2, .n_head = 4,
                          .layer_norm_epsilon = 1e-5};
    enum { B = 3, T = 33, R = 7 };
    const lt_gpt2_precision precs[3] = {LT_GPT2_F32, LT_GPT2_BF16, LT_GPT2_F16};
    const double tols[3] = {1e-5, 0x1p-6, 0x1p-9};
    char err[512] = "";
    int32_t in[B * T], tg[B * T];
    for (int i = 0; i < B * T; i++) in[i] = (int32_t)(urand() * 97), tg[i] = (int32_t)(urand() * 97);
    for (int pi = 0; pi < 3; pi++) {
        lt_gpt2 *m[2];
        if (!head_pair(&cfg, precs[pi], pi == 1, R, B, T, m)) return; /* bf16 with checkpointing */
        for (int k = 0; k < 2; k++) {
            m[k]->loss_scale = precs[pi] == LT_GPT2_F16 ? 1024.0f : 1.0f;
            lt_gpt2_zero_grad(m[k]);
            CHECK(lt_gpt2_forward(m[k], in, tg, B, T, err, sizeof err) == LT_OK, "%s", err);
            CHECK(lt_gpt2_backward(m[k], err, sizeof err) == LT_OK, "%s", err);
        }
        CHECK(fabsf(m[0]->loss - m[1]->loss) <= 1e-6f * m[0]->loss, "precision %d: loss %.9g whole, %.9g in chunks",
              pi, m[0]->loss, m[1]->loss);
        double worst = 0;
        for (int i = 0; i < m[0]->num_tensors; i++) {
            const lt_gpt2_param *a = &m[0]->params[i], *b = &m[1]->params[i];
            double gmax = 0, e = 0;
            for (size_t j = 0; j < a->numel; j++) gmax = fmax(gmax, fabs(a->grad[j]));
            for (size_t j = 0; j < a->numel; j++) e = fmax(e, fabs((double)a->grad[j] - b->grad[j]));
            CHECK(gmax > 0 || i == LT_GPT2_WPE, "precision %d: %s: gradient all zero", pi, a->name);
            CHECK(e <= tols[pi] * gmax, "precision %d: %s: gradients differ by %.3e (tensor max %.3e)", pi, a->name, e,
                  gmax);
            worst = fmax(worst, e / fmax(gmax, 1e-30));
        }
        printf("head in chunks of %d rows (precision %d): loss %s, worst gradient error / tensor max %.2e\n", R, pi,
               m[0]->loss == m[1]->loss ? "identical" : "differs", worst);
        /* the buffers: 7 rows of logits (and, in 16-bit compute, the fp32 sum of wte's gradient) */
        lt_gpt2_memory pm[2];
        for (int k = 0; k < 2; k++) {
            CHECK(lt_gpt2_memory_plan(&cfg, B, T, pi == 1, 0, precs[pi], 0, k ? R : 0, &pm[k], err, sizeof err) ==
                      LT_OK, "%s", err);
            const size_t held = (m[k]->act_floats + m[k]->dact_floats) * 4 + m[k]->store_elems * 2;
            CHECK(pm[k].activation_bytes == held, "precision %d: memory_plan's activations %zu bytes, the buffers' %zu",
                  pi, pm[k].activation_bytes, held);
        }
        size_t saved = (size_t)(B * T - R) * 97 - (precs[pi] != LT_GPT2_F32 ? (size_t)97 * 64 : 0);
        CHECK(m[0]->act_floats + m[0]->dact_floats - (m[1]->act_floats + m[1]->dact_floats) + 64 >= saved &&
                  m[0]->act_floats + m[0]->dact_floats - (m[1]->act_floats + m[1]->dact_floats) <= saved + 64,
              "precision %d: chunks saved %zu floats, expected about %zu", pi,
              m[0]->act_floats + m[0]->dact_floats - (m[1]->act_floats + m[1]->dact_floats), saved);
        /* 16-bit compute takes one chunk of all rows where chunks would not save memory (50 + C >= 99 rows): the
           whole mode's buffers and bits */
        if (precs[pi] != LT_GPT2_F32) {
            lt_gpt2 *w = NULL;
            CHECK(lt_gpt2_create(&cfg, &w, err, sizeof err) == LT_OK, "%s", err);
            if (!w) return;
            lt_gpt2_set_precision(w, precs[pi], 0, err, sizeof err);
            lt_gpt2_set_checkpointing(w, pi == 1);
            lt_gpt2_set_head_rows(w, 50);
            CHECK(lt_gpt2_set_batch(w, B, T, err, sizeof err) == LT_OK, "%s", err);
            lt_gpt2_init_random(w, 11);
            w->loss_scale = m[0]->loss_scale;
            lt_gpt2_zero_grad(w);
            CHECK(lt_gpt2_forward(w, in, tg, B, T, err, sizeof err) == LT_OK, "%s", err);
            CHECK(lt_gpt2_backward(w, err, sizeof err) == LT_OK, "%s", err);
            CHECK(w->act_floats == m[0]->act_floats && w->dact_floats == m[0]->dact_floats,
                  "precision %d: 50-row chunks hold %zu + %zu floats, whole mode %zu + %zu", pi, w->act_floats,
                  w->dact_floats, m[0]->act_floats, m[0]->dact_floats);
            CHECK(memcmp(w->grad_memory, m[0]->grad_memory, w->grad_floats * 4) == 0 && w->loss == m[0]->loss,
                  "precision %d: one chunk of all rows differs from whole mode", pi);
            lt_gpt2_free(w);
        }
        /* no whole logits in chunked mode; eval_loss: the same loss, no gradient, no backward after it */
        CHECK(lt_gpt2_forward(m[1], in, NULL, B, T, err, sizeof err) == LT_ERR_STATE &&
                  !strcmp(err, "forward: the logits are kept in chunks of 7 rows (lt_gpt2_set_head_rows): a forward "
                               "without targets needs them whole"),
              "%s", err);
        for (int k = 0; k < 2; k++) {
            float before = m[k]->loss;
            lt_gpt2_zero_grad(m[k]);
            CHECK(lt_gpt2_eval_loss(m[k], in, tg, B, T, err, sizeof err) == LT_OK, "%s", err);
            CHECK(memcmp(&before, &m[k]->loss, 4) == 0, "eval_loss %.9g vs the forward's %.9g", m[k]->loss, before);
            int nz = 0;
            for (size_t j = 0; j < m[k]->grad_floats; j++) nz += m[k]->grad_memory[j] != 0;
            CHECK(nz == 0, "eval_loss wrote %d gradient elements", nz);
            CHECK(lt_gpt2_backward(m[k], err, sizeof err) == LT_ERR_STATE, "backward after eval_loss");
        }
        lt_gpt2_free(m[0]), lt_gpt2_free(m[1]);
    }
}

/* ------------------------------------------------------------ loading */

enum variant { V_PLAIN, V_PREFIXED, V_BF16, V_MISSING, V_SHAPE, V_DTYPE, V_HEAD_DIFFERS, V_BOTH, V_DEEPER };

/* Writes the model's weights as a Hugging Face file with one twist. */
static void write_variant(const lt_gpt2 *m, const char *path, enum variant v) {
    char err[512] = "";
    lt_st_writer *w = lt_st_writer_new();
    size_t nmax = m->memory_floats;
    uint16_t *bf = malloc(nmax * 2);
    float *junk = calloc(nmax + 1, sizeof(float));
    int32_t ijunk[64] = {0};
    size_t boff = 0;
    char name[96];
    for (int i = 0; i < m->num_tensors; i++) {
        const lt_gpt2_param *p = &m->params[i];
        snprintf(name, sizeof name, "%s%s", v == V_PREFIXED ? "transformer." : "", p->name);
        if (v == V_MISSING && !strcmp(p->name, "h.1.ln_2.bias")) continue;
        if (v == V_SHAPE && !strcmp(p->name, "h.0.attn.c_attn.weight")) {
            int64_t s[2] = {p->shape[0], p->shape[1] - 4};
            lt_st_writer_add(w, name, LT_DTYPE_F32, 2, s, junk);
        } else if (v == V_DTYPE && !strcmp(p->name, "ln_f.bias")) {
            lt_st_writer_add(w, name, LT_DTYPE_I32, p->ndim, p->shape, ijunk);
        } else if (v == V_BF16) {
            for (size_t k = 0; k < p->numel; k++) bf[boff + k] = lt_f32_to_bf16(p->data[k]);
            lt_st_writer_add(w, name, LT_DTYPE_BF16, p->ndim, p->shape, bf + boff);
            boff += p->numel;
        } else {
            lt_st_writer_add(w, name, LT_DTYPE_F32, p->ndim, p->shape, p->data);
        }
    }
    const lt_gpt2_param *wte = &m->params[LT_GPT2_WTE];
    int64_t mask[4] = {1, 1, m->cfg.n_positions, m->cfg.n_positions};
    if (v == V_PREFIXED) { /* what GPT2LMHeadModel files carry besides the weights */
        lt_st_writer_add(w, "transformer.h.0.attn.bias", LT_DTYPE_F32, 4, mask, junk);
        lt_st_writer_add(w, "transformer.h.1.attn.masked_bias", LT_DTYPE_F32, 0, mask, junk);
        lt_st_writer_add(w, "lm_head.weight", LT_DTYPE_F32, 2, wte->shape, wte->data);
    }
    if (v == V_HEAD_DIFFERS) lt_st_writer_add(w, "lm_head.weight", LT_DTYPE_F32, 2, wte->shape, junk);
    if (v == V_BOTH) lt_st_writer_add(w, "transformer.wpe.weight", LT_DTYPE_F32, 2, m->params[1].shape, junk);
    if (v == V_DEEPER) {
        int64_t s[1] = {m->cfg.n_embd};
        lt_st_writer_add(w, "h.2.ln_1.weight", LT_DTYPE_F32, 1, s, junk);
    }
    CHECK(lt_st_writer_write(w, path, err, sizeof err) == LT_OK, "%s", err);
    lt_st_writer_free(w);
    free(bf), free(junk);
}

static void expect_load_error(const lt_gpt2 *src, enum variant v, const char *want_after_path) {
    char path[512], err[1024] = "", want[1024];
    snprintf(path, sizeof path, "%s/gpt2_bad_%d.safetensors", lt_test_tmp_dir(), (int)v);
    write_variant(src, path, v);
    lt_gpt2 *m = NULL;
    lt_gpt2_create(&src->cfg, &m, err, sizeof err);
    lt_status st = lt_gpt2_load(m, path, err, sizeof err);
    snprintf(want, sizeof want, "%s: %s", path, want_after_path);
    CHECK(st == LT_ERR_FORMAT, "variant %d loaded (status %d)", (int)v, (int)st);
    CHECK(!strcmp(err, want), "\n  got:  %s\n  want: %s", err, want);
    lt_gpt2_free(m);
    remove(path);
}

static void test_loading(void) {
    char path[512], err[1024] = "";
    lt_gpt2 *src = make_model(&TINY, 1, 4), *m = NULL;
    if (!src) return;
    randomize(src);
    CHECK(lt_gpt2_create(&TINY, &m, err, sizeof err) == LT_OK, "%s", err);

    /* lt_gpt2_save and back */
    snprintf(path, sizeof path, "%s/gpt2_saved.safetensors", lt_test_tmp_dir());
    CHECK(lt_gpt2_save(src, path, err, sizeof err) == LT_OK, "%s", err);
    CHECK(lt_gpt2_load(m, path, err, sizeof err) == LT_OK, "%s", err);
    CHECK(!memcmp(m->param_memory, src->param_memory, src->memory_floats * 4), "save/load changed the weights");
    lt_st_file *f = NULL;
    CHECK(lt_st_open(path, &f, err, sizeof err) == LT_OK, "%s", err);
    CHECK(f && lt_st_count(f) == (size_t)src->num_tensors && lt_st_find(f, "h.1.mlp.c_proj.weight") &&
              lt_st_find(f, "h.1.mlp.c_proj.weight")->shape[0] == 32 && !strcmp(lt_st_meta(f, "format"), "pt"),
          "saved file has the wrong tensors or metadata");
    lt_st_close(f);
    remove(path);

    /* "transformer." names, mask buffers and a tied lm_head */
    snprintf(path, sizeof path, "%s/gpt2_prefixed.safetensors", lt_test_tmp_dir());
    write_variant(src, path, V_PREFIXED);
    memset(m->param_memory, 0, m->memory_floats * 4);
    CHECK(lt_gpt2_load(m, path, err, sizeof err) == LT_OK, "%s", err);
    CHECK(!memcmp(m->param_memory, src->param_memory, src->memory_floats * 4), "prefixed load changed the weights");
    remove(path);

    /* BF16 weights widen exactly */
    snprintf(path, sizeof path, "%s/gpt2_bf16.safetensors", lt_test_tmp_dir());
    write_variant(src, path, V_BF16);
    CHECK(lt_gpt2_load(m, path, err, sizeof err) == LT_OK, "%s", err);
    int same = 1;
    for (int i = 0; i < m->num_tensors; i++)
        for (size_t k = 0; k < m->params[i].numel; k++)
            same &= m->params[i].data[k] == lt_bf16_to_f32(lt_f32_to_bf16(src->params[i].data[k]));
    CHECK(same, "BF16 weights not converted exactly");
    remove(path);

    expect_load_error(src, V_MISSING, "tensor 'h.1.ln_2.bias' is missing");
    expect_load_error(src, V_SHAPE, "tensor 'h.0.attn.c_attn.weight' has shape [8, 20], expected [8, 24]");
    expect_load_error(src, V_DTYPE, "tensor 'ln_f.bias' has dtype I32, expected F32, BF16 or F16");
    expect_load_error(src, V_HEAD_DIFFERS,
                      "tensor 'lm_head.weight' differs from wte.weight, but this GPT-2 ties the lm head to wte");
    expect_load_error(src, V_BOTH, "both 'wpe.weight' and 'transformer.wpe.weight' are present");
    expect_load_error(src, V_DEEPER, "tensor 'h.2.ln_1.weight' is beyond the config's n_layer 2");

    snprintf(path, sizeof path, "%s/gpt2_no_such_file.safetensors", lt_test_tmp_dir());
    CHECK(lt_gpt2_load(m, path, err, sizeof err) == LT_ERR_IO && strstr(err, path), "%s", err);
    lt_gpt2_free(m);
    lt_gpt2_free(src);
}

/* ------------------------------------------------------------ configs */

static void expect_config_error(const char *json, const char *want) {
    char err[512] = "";
    lt_gpt2_config c;
    CHECK(lt_gpt2_config_from_json(json, "config.json", &c, err, sizeof err) != LT_OK, "accepted %s", json);
    CHECK(!strcmp(err, want), "%s\n  got:  %s\n  want: %s", json, err, want);
}

static void test_configs(void) {
    char err[512] = "", path[512];
    lt_gpt2_config c;
    const char *names[] = {"gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"};
    const size_t counts[] = {124439808u, 354823168u, 774030080u, 1557611200u}; /* transformers' num_parameters() */
    for (int i = 0; i < 4; i++) {
        CHECK(lt_gpt2_config_preset(names[i], &c, err, sizeof err) == LT_OK, "%s", err);
        CHECK(lt_gpt2_config_num_params(&c) == counts[i], "%s: %zu parameters", names[i], lt_gpt2_config_num_params(&c));
    }
    CHECK(lt_gpt2_config_preset("gpt3", &c, err, sizeof err) == LT_ERR_ARG &&
              !strcmp(err, "unknown GPT-2 preset 'gpt3' (known: gpt2, gpt2-medium, gpt2-large, gpt2-xl)"),
          "%s", err);

    /* a real config.json, as transformers writes it for gpt2-medium */
    snprintf(path, sizeof path, "%s/gpt2_config.json", lt_test_tmp_dir());
    FILE *f = fopen(path, "w");
    fputs("{\"activation_function\": \"gelu_new\", \"architectures\": [\"GPT2LMHeadModel\"], \"attn_pdrop\": 0.1,\n"
          " \"bos_token_id\": 50256, \"embd_pdrop\": 0.1, \"eos_token_id\": 50256, \"initializer_range\": 0.02,\n"
          " \"layer_norm_epsilon\": 1e-05, \"model_type\": \"gpt2\", \"n_ctx\": 1024, \"n_embd\": 1024, \"n_head\": 16,\n"
          " \"n_inner\": null, \"n_layer\": 24, \"n_positions\": 1024, \"n_special\": 0, \"predict_special_tokens\": true,\n"
          " \"reorder_and_upcast_attn\": false, \"resid_pdrop\": 0.1, \"scale_attn_by_inverse_layer_idx\": false,\n"
          " \"scale_attn_weights\": true, \"summary_activation\": null, \"task_specific_params\": {},\n"
          " \"transformers_version\": \"4.40.0\", \"use_cache\": true, \"vocab_size\": 50257}\n",
          f);
    fclose(f);
    CHECK(lt_gpt2_config_load(path, &c, err, sizeof err) == LT_OK, "%s", err);
    CHECK(c.n_embd == 1024 && c.n_layer == 24 && c.n_head == 16 && c.vocab_size == 50257 && c.n_positions == 1024,
          "config.json parsed wrong");
    remove(path);
    CHECK(lt_gpt2_config_load(path, &c, err, sizeof err) == LT_ERR_IO && strstr(err, "cannot open"), "%s", err);
    /* absent keys are GPT2Config's defaults */
    CHECK(lt_gpt2_config_from_json("{\"n_layer\": 2}", "x", &c, err, sizeof err) == LT_OK && c.n_layer == 2 &&
              c.n_embd == 768 && c.vocab_size == 50257 && c.layer_norm_epsilon == 1e-5,
          "defaults");
    expect_config_error("{\"activation_function\": \"relu\"}",
                        "config.json: activation_function 'relu' is not supported (gelu_new)");
    expect_config_error("{\"tie_word_embeddings\": false}",
                        "config.json: tie_word_embeddings=false is not supported (the lm head is tied to wte)");
    expect_config_error("{\"n_embd\": 10, \"n_head\": 3}", "config.json: n_embd 10 is not divisible by n_head 3");
    expect_config_error("{\"n_layer\": 0}", "config.json: n_layer must be a positive integer, got 0");
    expect_config_error("{\"n_head\": \"12\"}", "config.json: n_head must be a positive integer, got \"12\"");
    expect_config_error("{\"model_type\": \"bert\"}", "config.json: model_type bert is not gpt2");
    expect_config_error("{\"n_inner\": 100}", "config.json: n_inner must be null or 4 * n_embd (3072)");
    expect_config_error("{\"scale_attn_by_inverse_layer_idx\": true}",
                        "config.json: scale_attn_by_inverse_layer_idx=true is not supported (no per-layer score "
                        "scaling)");
    expect_config_error("[1, 2]", "config.json: not a JSON object");
    expect_config_error("{\"vocab_size\": 50257", "config.json: not a JSON object");
}

/* ------------------------------------------ the random initialisation */

/* lt_gpt2_init_random (a parallel loop) against the serial definition: one
 * splitmix64 generator drawn in tensor order, two draws (Box-Muller) per
 * element of a weight, none for biases and LayerNorm weights; std 0.02, the
 * residual projections 0.02 / sqrt(2 n_layer). Bit for bit, f32 and bf16. */
static uint64_t ref_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void test_init_random(void) {
    /* tensors above the parallel threshold (65536 elements) and below it */
    lt_gpt2_config cfg = {.vocab_size = 1031, .n_positions = 64, .n_embd = 96, .n_layer = 3, .n_head = 4,
                          .layer_norm_epsilon = 1e-5};
    char err[512] = "";
    for (int bf16 = 0; bf16 < 2; bf16++) {
        lt_gpt2 *m = NULL;
        CHECK(lt_gpt2_create(&cfg, &m, err, sizeof err) == LT_OK, "create: %s", err);
        if (!m) return;
        if (bf16) CHECK(lt_gpt2_set_precision(m, LT_GPT2_BF16, 1, err, sizeof err) == LT_OK, "%s", err);
        uint64_t seed = 0xfffffffffffffff0ull; /* the counter wraps around 2^64 during the draws */
        lt_gpt2_init_random(m, seed);
        uint64_t s = seed;
        size_t bad = 0, checked = 0;
        for (int i = 0; i < m->num_tensors; i++) {
            const lt_gpt2_param *p = &m->params[i];
            const char *dot = strrchr(p->name, '.');
            int is_bias = !strcmp(dot, ".bias"), is_ln = strstr(p->name, "ln_") != NULL;
            double sd = strstr(p->name, "c_proj.weight") ? 0.02 / sqrt(2.0 * cfg.n_layer) : 0.02;
            for (size_t j = 0; j < p->numel; j++) {
                float v = 1.0f;
                if (is_bias) v = 0.0f;
                else if (!is_ln) {
                    double u1 = ((ref_u64(&s) >> 11) + 1.0) * 0x1.0p-53, u2 = (ref_u64(&s) >> 11) * 0x1.0p-53;
                    v = (float)(sd * (sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2)));
                }
                if (bf16) bad += p->data16[j] != lt_f32_to_bf16(v);
                else bad += memcmp(&p->data[j], &v, sizeof v) != 0;
                checked++;
            }
        }
        CHECK(bad == 0 && checked == m->num_params, "%s init: %zu of %zu values differ from the serial draws",
              bf16 ? "bf16" : "f32", bad, checked);
        lt_gpt2_free(m);
    }
}

/* ------------------------------------------------------------------ GELU */

/* The vectorizable tanh of the GELU kernels against tanh in double: absolute
 * error under 2.5e-7 on a 1e-6 grid over [-12, 12] (measured 1.8e-7; libm's
 * tanhf: 1.0e-7), saturation to exactly +-1, NaN kept. Then the kernels
 * against gelu_new and its derivative in double (errors relative to |x| + 1
 * ulp-scale slack, see below), and their bits: the same as the scalar
 * function computes element by element (so the AVX-512 / AVX2 / baseline
 * loop variants and the thread count change nothing). */
static void test_gelu(void) {
    double worst = 0.0;
    for (long i = -12000000; i <= 12000000; i++) {
        float u = (float)i * 1e-6f;
        double e = fabs((double)lt_nn_tanh_gelu(u) - tanh((double)u));
        if (e > worst) worst = e;
    }
    printf("tanh_gelu: worst absolute error %.3e on [-12, 12]\n", worst);
    CHECK(worst < 2.5e-7, "tanh_gelu: absolute error %.3e", worst);
    const float sat[] = {10.0f, 10.5f, 100.0f, 1e30f, INFINITY};
    for (int i = 0; i < 5; i++) {
        CHECK(lt_nn_tanh_gelu(sat[i]) == 1.0f, "tanh_gelu(%g) = %.9g", sat[i], lt_nn_tanh_gelu(sat[i]));
        CHECK(lt_nn_tanh_gelu(-sat[i]) == -1.0f, "tanh_gelu(%g) = %.9g", -sat[i], lt_nn_tanh_gelu(-sat[i]));
    }
    CHECK(isnan(lt_nn_tanh_gelu(NAN)) && lt_nn_tanh_gelu(0.0f) == 0.0f, "tanh_gelu of NaN or 0");

    /* the cross-entropy's e^y: relative error under 1.2e-7 (measured 7.9e-8) on every 64th float of [-87, 88] */
    double wrel = 0.0;
    for (uint32_t b = 0; b < 0x80000000u; b += 64) {
        float y;
        memcpy(&y, &b, 4);
        for (int sgn = 0; sgn < 2; sgn++, y = -y) {
            if (!(y >= -87.0f && y <= 88.0f)) continue;
            const double ref = exp((double)y), e = fabs((double)lt_nn_exp(y) - ref) / ref;
            if (e > wrel) wrel = e;
        }
    }
    printf("exp: worst relative error %.3e on [-87, 88]\n", wrel);
    CHECK(wrel < 1.2e-7, "exp: relative error %.3e", wrel);
    CHECK(lt_nn_exp(0.0f) == 1.0f && isnan(lt_nn_exp(NAN)) && lt_nn_exp(-INFINITY) == lt_nn_exp(-87.0f) &&
              lt_nn_exp(-87.0f) > 0.0f && isfinite(lt_nn_exp(INFINITY)),
          "exp: 0, NaN, clamping");

    const size_t n = 100003; /* not a multiple of any vector width */
    float *x = malloc(n * sizeof *x), *out = malloc(n * sizeof *out), *d = malloc(n * sizeof *d),
          *g = malloc(n * sizeof *g), *o1 = malloc(n * sizeof *o1), *d1 = malloc(n * sizeof *d1);
    if (!x || !out || !d || !g || !o1 || !d1) {
        CHECK(0, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)(16.0 * urand() - 8.0) * (i % 7 == 0 ? 1e-3f : 1.0f);
        g[i] = (float)(2.0 * urand() - 1.0);
    }
    const float K = 0.7978845608028654f, A = 0.044715f;
    double werr_f = 0.0, werr_b = 0.0;
    int bits_f = 0, bits_b = 0;
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        memcpy(d, g, n * sizeof *d);
        lt_nn_gelu_forward(out, x, n);
        lt_nn_gelu_backward(d, x, n);
        if (threads == 1) {
            memcpy(o1, out, n * sizeof *o1);
            memcpy(d1, d, n * sizeof *d1);
        } else {
            CHECK(!memcmp(o1, out, n * sizeof *out) && !memcmp(d1, d, n * sizeof *d),
                  "gelu: 1 and 2 threads give different bits");
        }
    }
    for (size_t i = 0; i < n; i++) {
        const double xd = x[i], u = 0.7978845608028654 * (xd + 0.044715 * xd * xd * xd), t = tanh(u);
        const double ref = 0.5 * xd * (1.0 + t);
        const double dref = g[i] * (0.5 * (1.0 + t) + 0.5 * xd * (1.0 - t * t) * 0.7978845608028654 *
                                                         (1.0 + 3.0 * 0.044715 * xd * xd));
        /* tanh's 2.5e-7 enters scaled by |x| / 2 (forward) and by about |x| (backward), plus a few
         * roundings of the float arithmetic (each relative to the terms, at most ~|x| here) */
        const double ef = fabs(out[i] - ref) / (fabs(xd) + 1e-30), eb = fabs(d[i] - dref) / (fabs(xd) + 1.0);
        if (ef > werr_f) werr_f = ef;
        if (eb > werr_b) werr_b = eb;
        /* the scalar function's bits, element by element */
        const float xf = x[i], th = lt_nn_tanh_gelu(K * (xf + A * xf * xf * xf));
        const float sf = 0.5f * xf * (1.0f + th);
        const float du = K * (1.0f + 3.0f * A * xf * xf);
        const float sb = g[i] * (0.5f * (1.0f + th) + 0.5f * xf * (1.0f - th * th) * du);
        bits_f += memcmp(&sf, &out[i], 4) != 0;
        bits_b += memcmp(&sb, &d[i], 4) != 0;
    }
    printf("gelu: forward error %.3e x |x|, backward %.3e x (|x| + 1); %d / %d elements differ from the scalar "
           "function's bits\n",
           werr_f, werr_b, bits_f, bits_b);
    CHECK(werr_f < 2.5e-7 && werr_b < 6e-7, "gelu: errors %.3e, %.3e", werr_f, werr_b);
    CHECK(bits_f == 0 && bits_b == 0, "gelu: the kernels' bits differ from the scalar function's");
    free(x), free(out), free(d), free(g), free(o1), free(d1);
}

/* float64 gradient of the causal attention of one (batch, head) from given probabilities P[t][t2] (row-major
 * T x T, zero above the diagonal), added into ref (the layout of dqkv). */
static void ref_att_backward(double *ref, const double *P, const float *qkv, const float *dout, int b, int h, int T,
                             int C, int hs) {
    const size_t C3 = 3 * (size_t)C;
    const double scale = sqrt((double)hs);
    double *da = malloc((size_t)T * sizeof *da);
    if (!da) return;
    for (int t = 0; t < T; t++) {
        const double *a = P + (size_t)t * T;
        const float *g = dout + ((size_t)b * T + t) * C + (size_t)h * hs;
        const size_t qt = ((size_t)b * T + t) * C3 + (size_t)h * hs;
        double dot = 0.0;
        for (int t2 = 0; t2 <= t; t2++) {
            const size_t r2 = ((size_t)b * T + t2) * C3 + (size_t)h * hs;
            da[t2] = 0.0;
            for (int i = 0; i < hs; i++) {
                da[t2] += (double)g[i] * qkv[r2 + 2 * C + i];
                ref[r2 + 2 * C + i] += a[t2] * g[i];
            }
            dot += a[t2] * da[t2];
        }
        for (int t2 = 0; t2 <= t; t2++) {
            const size_t r2 = ((size_t)b * T + t2) * C3 + (size_t)h * hs;
            const double ds = a[t2] * (da[t2] - dot) / scale;
            for (int i = 0; i < hs; i++) {
                ref[qt + i] += ds * qkv[r2 + C + i];
                ref[r2 + C + i] += ds * qkv[qt + i];
            }
        }
    }
    free(da);
}

/* worst |got - ref| of dq, dk and dv, each over its tensor's max |ref| (which must not be 0) */
static void dqkv_errors(const float *got, const double *ref, size_t N, int C, double err[3]) {
    const size_t C3 = 3 * (size_t)C;
    double mx[3] = {0, 0, 0};
    err[0] = err[1] = err[2] = 0.0;
    for (size_t i = 0; i < N * C3; i++) {
        const int part = (int)(i % C3 / (size_t)C);
        err[part] = fmax(err[part], fabs(got[i] - ref[i]));
        mx[part] = fmax(mx[part], fabs(ref[i]));
    }
    for (int part = 0; part < 3; part++) err[part] = mx[part] > 0 ? err[part] / mx[part] : INFINITY;
}

/* The attention (sgemms over blocks of query rows, the backward recomputing the probabilities from the
 * forward's row statistics) against float64: the output and statistics, and the gradient, for scratch sizes
 * that give blocks of 64, 7 and 1 rows (T not a multiple of them); the same bits for 1, 2 and 3 threads. */
static void test_attention(void) {
    const int threads0 = omp_get_max_threads();
    static const struct {
        int B, T, C, NH;
    } shapes[] = {{2, 100, 48, 3}, {1, 5, 8, 2}, {1, 70, 16, 1}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int B = shapes[si].B, T = shapes[si].T, C = shapes[si].C, NH = shapes[si].NH, hs = C / NH;
        const size_t N = (size_t)B * T, C3 = 3 * (size_t)C, full = 4 * N * (size_t)C, NS = (size_t)B * NH * T * 2;
        float *qkv = malloc(N * C3 * sizeof(float)), *dout = malloc(N * C * sizeof(float)),
              *st = malloc(NS * sizeof(float)), *st1 = malloc(NS * sizeof(float)), *out = malloc(N * C * sizeof(float)),
              *out1 = malloc(N * C * sizeof(float)), *scratch = malloc(full * sizeof(float)),
              *d1 = malloc(N * C3 * sizeof(float)), *d = malloc(N * C3 * sizeof(float));
        double *ref = calloc(N * C3, sizeof(double)), *P = malloc((size_t)B * NH * T * T * sizeof(double));
        if (!qkv || !dout || !st || !st1 || !out || !out1 || !scratch || !d1 || !d || !ref || !P) {
            CHECK(0, "out of memory");
            return;
        }
        for (size_t i = 0; i < N * C3; i++) qkv[i] = (float)(2.0 * urand() - 1.0);
        for (size_t i = 0; i < N * C; i++) dout[i] = (float)(2.0 * urand() - 1.0);
        /* float64 probabilities, row statistics and output */
        const double scale = sqrt((double)hs);
        double serr = 0.0, oerr = 0.0, omax = 0.0;
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < T; t++) {
                    const size_t qt = ((size_t)b * T + t) * C3 + (size_t)h * hs;
                    double *p = P + (((size_t)b * NH + h) * T + t) * (size_t)T, mx = -INFINITY, sum = 0.0;
                    for (int t2 = 0; t2 < T; t2++) {
                        p[t2] = 0.0;
                        if (t2 > t) continue;
                        const size_t r2 = ((size_t)b * T + t2) * C3 + (size_t)h * hs;
                        for (int i = 0; i < hs; i++) p[t2] += (double)qkv[qt + i] * qkv[r2 + C + i];
                        p[t2] /= scale;
                        mx = fmax(mx, p[t2]);
                    }
                    for (int t2 = 0; t2 <= t; t2++) sum += (p[t2] = exp(p[t2] - mx));
                    for (int t2 = 0; t2 <= t; t2++) p[t2] /= sum;
                    const size_t si2 = (((size_t)b * NH + h) * T + t) * 2;
                    st[si2] = (float)mx, st[si2 + 1] = (float)(1.0 / sum); /* kept in st1 below */
                }
        memcpy(st1, st, NS * sizeof(float));
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) ref_att_backward(ref, P + ((size_t)b * NH + h) * T * (size_t)T, qkv, dout, b, h, T, C, hs);
        const size_t sizes[] = {full, 2 * 7 * (size_t)T, 2 * (size_t)T};
        const int fr = 2 * B * C < 64 ? 2 * B * C : 64; /* full / 2T */
        const int want_rows[] = {T < fr ? T : fr, T < 7 ? T : 7, 1};
        for (int k = 0; k < 3; k++) {
            CHECK(lt_nn_attention_rows(T, sizes[k]) == want_rows[k], "T %d, scratch %zu: %d rows, want %d", T,
                  sizes[k], lt_nn_attention_rows(T, sizes[k]), want_rows[k]);
            for (int threads = 1; threads <= 3; threads++) {
                omp_set_num_threads(threads);
                for (size_t i = 0; i < NS; i++) st[i] = NAN;
                for (size_t i = 0; i < N * C3; i++) d[i] = NAN; /* every element is written */
                lt_nn_attention_forward(out, st, scratch, sizes[k], qkv, B, T, C, NH);
                lt_nn_attention_backward(d, scratch, sizes[k], dout, qkv, st, B, T, C, NH, LT_NN_ROUND_NONE, NULL);
                if (threads == 1) {
                    double derr[3];
                    dqkv_errors(d, ref, N, C, derr);
                    serr = oerr = omax = 0.0;
                    /* the max score absolutely (scores are O(1) here), 1 / sum relatively */
                    for (size_t i = 0; i < NS; i++)
                        serr = fmax(serr, fabs(st[i] - st1[i]) / (i % 2 ? fabs(st1[i]) : 1.0));
                    for (int b = 0; b < B; b++)
                        for (int h = 0; h < NH; h++)
                            for (int t = 0; t < T; t++)
                                for (int i = 0; i < hs; i++) {
                                    const double *p = P + (((size_t)b * NH + h) * T + t) * (size_t)T;
                                    double o = 0.0;
                                    for (int t2 = 0; t2 <= t; t2++)
                                        o += p[t2] * qkv[((size_t)b * T + t2) * C3 + 2 * (size_t)C + (size_t)h * hs + i];
                                    oerr = fmax(oerr, fabs(out[((size_t)b * T + t) * C + (size_t)h * hs + i] - o));
                                    omax = fmax(omax, fabs(o));
                                }
                    CHECK(serr <= 1e-5 && oerr <= 1e-5 * omax,
                          "attention forward B %d T %d C %d NH %d, %d rows: statistics error %.3e, output %.3e of %.3e",
                          B, T, C, NH, want_rows[k], serr, oerr, omax);
                    CHECK(derr[0] <= 1e-5 && derr[1] <= 1e-5 && derr[2] <= 1e-5,
                          "attention backward B %d T %d C %d NH %d, %d rows: dq %.3e dk %.3e dv %.3e of max", B, T, C,
                          NH, want_rows[k], derr[0], derr[1], derr[2]);
                    if (si == 0 && k < 2)
                        printf("attention (T %d, %d rows): statistics %.2e, output %.2e; gradient dq %.2e dk %.2e dv "
                               "%.2e (errors over the tensor's max)\n",
                               T, want_rows[k], serr, oerr / omax, derr[0], derr[1], derr[2]);
                    memcpy(out1, out, N * C * sizeof(float)), memcpy(d1, d, N * C3 * sizeof(float));
                } else {
                    CHECK(!memcmp(out1, out, N * C * sizeof(float)) && !memcmp(d1, d, N * C3 * sizeof(float)),
                          "attention B %d T %d, %d rows: 1 and %d threads give different bits", B, T, want_rows[k],
                          threads);
                }
            }
        }
        omp_set_num_threads(threads0);
        free(qkv), free(dout), free(st), free(st1), free(out), free(out1), free(scratch), free(d1), free(d), free(ref),
            free(P);
    }
}

/* The backward recomputes exactly the probabilities the forward multiplied into v, bf16-rounded ones included:
 * with hs >= T and v_t2 the unit vector e_t2, out[t] is row t of those probabilities (every sum has one
 * nonzero term), and the gradient must match float64 from them (fp32: within 1e-5 of the max, where a
 * backward that skipped the rounding would be 2e-3 off; bf16, whose gradient comes out rounded: equal to the
 * rounded float64 value but for a few elements). */
static void test_attention_recompute(void) {
    const int B = 1, T = 20, NH = 2, hs = 24, C = NH * hs;
    const size_t N = (size_t)T, C3 = 3 * (size_t)C, scratch_n = 2 * 8 * (size_t)T; /* blocks of 8 rows */
    float *qkv = malloc(N * C3 * sizeof(float)), *dout = malloc(N * C * sizeof(float)), *out = malloc(N * C * 4),
          *st = malloc((size_t)NH * T * 2 * 4), *scratch = malloc(scratch_n * 4), *d = malloc(N * C3 * 4);
    double *ref = malloc(N * C3 * sizeof(double)), *P = malloc((size_t)T * T * sizeof(double));
    if (!qkv || !dout || !out || !st || !scratch || !d || !ref || !P) {
        CHECK(0, "out of memory");
        return;
    }
    for (size_t t = 0; t < N; t++)
        for (int c = 0; c < C; c++) {
            qkv[t * C3 + c] = (float)(4.0 * urand() - 2.0);
            qkv[t * C3 + C + c] = (float)(4.0 * urand() - 2.0);
            qkv[t * C3 + 2 * C + c] = c % hs == (int)t ? 1.0f : 0.0f;
        }
    for (size_t i = 0; i < N * C; i++) dout[i] = (float)(2.0 * urand() - 1.0);
    for (int r = LT_NN_ROUND_NONE; r <= LT_NN_ROUND_BF16; r++) {
        lt_nn_attention_forward_r(out, st, scratch, scratch_n, qkv, B, T, C, NH, (lt_nn_round)r, NULL);
        lt_nn_attention_backward(d, scratch, scratch_n, dout, qkv, st, B, T, C, NH, (lt_nn_round)r, NULL);
        memset(ref, 0, N * C3 * sizeof(double));
        int notbf16 = 0;
        for (int h = 0; h < NH; h++) {
            for (int t = 0; t < T; t++)
                for (int t2 = 0; t2 < T; t2++) {
                    const float p = out[(size_t)t * C + (size_t)h * hs + t2];
                    P[(size_t)t * T + t2] = p;
                    notbf16 += r == LT_NN_ROUND_BF16 && lt_bf16_to_f32(lt_f32_to_bf16(p)) != p;
                }
            ref_att_backward(ref, P, qkv, dout, 0, h, T, C, hs);
        }
        CHECK(notbf16 == 0, "bf16 attention: %d probabilities not bf16 values", notbf16);
        if (r == LT_NN_ROUND_NONE) {
            double err[3];
            dqkv_errors(d, ref, N, C, err);
            CHECK(err[0] <= 1e-5 && err[1] <= 1e-5 && err[2] <= 1e-5,
                  "attention fp32: the backward's probabilities are not the forward's (dq %.3e dk %.3e dv %.3e of max)",
                  err[0], err[1], err[2]);
        } else {
            /* the gradient comes out rounded to bf16: it must be the float64 one rounded, but where that one
             * lies within float roundoff of a bf16 rounding boundary (a few elements in 10^4); probabilities
             * off by their rounding move about half of the elements to another bf16 value */
            size_t moved = 0, far = 0;
            for (size_t i = 0; i < N * C3; i++) {
                const float want = lt_bf16_to_f32(lt_f32_to_bf16((float)ref[i]));
                moved += d[i] != want;
                far += fabs(d[i] - ref[i]) > 0x1p-7 * fabs(ref[i]) + 1e-30;
            }
            CHECK(moved * 100 <= N * C3 && far == 0,
                  "attention bf16: the backward's probabilities are not the forward's (%zu of %zu gradient elements "
                  "off the rounded float64 value, %zu by more than a bf16 step)",
                  moved, N * C3, far);
            printf("attention bf16 recompute: %zu of %zu gradient elements off the rounded float64 value\n", moved,
                   N * C3);
        }
    }
    free(qkv), free(dout), free(out), free(st), free(scratch), free(d), free(ref), free(P);
}

/* The layernorms (statistics in 16 double lanes) against float64: rows with a large mean (the variance must not
 * lose its digits), widths that are and are not multiples of 16; the same bits for 1 and 2 threads. */
static void test_layernorm(void) {
    const int threads0 = omp_get_max_threads(), widths[] = {100, 768, 7};
    const size_t N = 37;
    for (int wi = 0; wi < 3; wi++) {
        const int C = widths[wi];
        const size_t NC = N * (size_t)C;
        float *x = malloc(NC * 4), *g = malloc(NC * 4), *w = malloc(C * 4), *b = malloc(C * 4), *o = malloc(NC * 4),
              *o1 = malloc(NC * 4), *d = malloc(NC * 4), *d1 = malloc(NC * 4), *m = malloc(N * 4), *r = malloc(N * 4),
              *dw = malloc(C * 4), *db = malloc(C * 4), *dw1 = malloc(C * 4), *db1 = malloc(C * 4);
        if (!x || !g || !w || !b || !o || !o1 || !d || !d1 || !m || !r || !dw || !db || !dw1 || !db1) {
            CHECK(0, "out of memory");
            return;
        }
        for (size_t n = 0; n < N; n++)
            for (int c = 0; c < C; c++) {
                x[n * C + c] = (float)((n % 3 == 0 ? 1000.0 : 0.0) + 4.0 * urand() - 2.0);
                g[n * C + c] = (float)(2.0 * urand() - 1.0);
            }
        for (int c = 0; c < C; c++) w[c] = (float)(0.5 + urand()), b[c] = (float)(urand() - 0.5);
        for (int threads = 1; threads <= 2; threads++) {
            omp_set_num_threads(threads);
            memset(d, 0, NC * 4), memset(dw, 0, C * 4), memset(db, 0, C * 4);
            lt_nn_layernorm_forward(o, m, r, x, w, b, N, C, 1e-5);
            lt_nn_layernorm_backward(d, dw, db, g, x, w, m, r, N, C);
            if (threads == 1) {
                memcpy(o1, o, NC * 4), memcpy(d1, d, NC * 4), memcpy(dw1, dw, C * 4), memcpy(db1, db, C * 4);
            } else {
                CHECK(!memcmp(o1, o, NC * 4) && !memcmp(d1, d, NC * 4) && !memcmp(dw1, dw, C * 4) &&
                          !memcmp(db1, db, C * 4),
                      "layernorm C %d: 1 and 2 threads give different bits", C);
            }
        }
        omp_set_num_threads(threads0);
        double eo = 0.0, ed = 0.0, dmax = 0.0, ew = 0.0, wmax = 0.0;
        double *rdw = calloc(C, sizeof(double)), *rdb = calloc(C, sizeof(double));
        for (size_t n = 0; n < N && rdw && rdb; n++) {
            const float *xr = x + n * C, *gr = g + n * C;
            double mu = 0.0, v = 0.0, m1 = 0.0, m2 = 0.0;
            for (int c = 0; c < C; c++) mu += xr[c];
            mu /= C;
            for (int c = 0; c < C; c++) v += (xr[c] - mu) * (xr[c] - mu);
            const double rs = 1.0 / sqrt(v / C + 1e-5);
            for (int c = 0; c < C; c++) eo = fmax(eo, fabs(o[n * C + c] - ((xr[c] - mu) * rs * w[c] + b[c])));
            /* the backward is defined by the float mean and rstd the forward keeps (at a mean of 1000 the
             * float mean alone moves xhat by up to 3e-5) */
            const double muf = m[n], rsf = r[n];
            CHECK(fabs(muf - mu) <= 0.5 * fabs(mu) * 0x1p-23 + 1e-12 && fabs(rsf - rs) <= rs * 0x1p-23,
                  "layernorm C %d row %zu: mean %.9g rstd %.9g, float64 %.9g %.9g", C, n, muf, rsf, mu, rs);
            for (int c = 0; c < C; c++) {
                const double xh = (xr[c] - muf) * rsf;
                m1 += (double)gr[c] * w[c];
                m2 += (double)gr[c] * w[c] * xh;
                rdw[c] += (double)gr[c] * xh;
                rdb[c] += gr[c];
            }
            for (int c = 0; c < C; c++) {
                const double xh = (xr[c] - muf) * rsf, want = ((double)gr[c] * w[c] - m1 / C - xh * m2 / C) * rsf;
                ed = fmax(ed, fabs(d[n * C + c] - want));
                dmax = fmax(dmax, fabs(want));
            }
        }
        for (int c = 0; c < C && rdw && rdb; c++) {
            ew = fmax(ew, fmax(fabs(dw[c] - rdw[c]), fabs(db[c] - rdb[c])));
            wmax = fmax(wmax, fmax(fabs(rdw[c]), fabs(rdb[c])));
        }
        CHECK(rdw && rdb, "out of memory");
        /* outputs of a few units: float rounding of the normalized value and of its scale and shift; the
         * gradients: float arithmetic on terms up to the tensor's max */
        CHECK(eo < 2e-6 && ed < 2e-6 * dmax && ew < 2e-6 * wmax,
              "layernorm C %d: output error %.3e, dinp %.3e of %.3e, dw/db %.3e of %.3e", C, eo, ed, dmax, ew, wmax);
        if (wi == 1)
            printf("layernorm (C %d, rows of mean 1000 among them): output error %.2e, dinp %.2e, dw/db %.2e of max\n",
                   C, eo, ed / dmax, ew / wmax);
        free(rdw), free(rdb);
        free(x), free(g), free(w), free(b), free(o), free(o1), free(d), free(d1), free(m), free(r), free(dw), free(db),
            free(dw1), free(db1);
    }
}

/* The lm head's backward at a vocabulary of several 4096-row pieces of the weight gradient's GEMM (lmhead_wgrad)
 * and a last short one: dinp and dwte (added onto what it held) against float64 sums, for lt_nn_lmhead_backward
 * and, per chunk with its fp32 sum (overwritten by the first chunk, added by the next), for
 * lt_nn_lmhead_backward_sum_r (f32 rounding: none). Tolerance: 1e-5 of each result's scale (sums of 7 to 8269
 * products in fp32). */
static void test_lmhead_backward(void) {
    enum { N = 7, C = 24, V = 2 * 4096 + 77 };
    float *dl = malloc((size_t)N * V * 4), *inp = malloc(N * C * 4), *wte = malloc((size_t)V * C * 4),
          *dinp = malloc(N * C * 4), *dw = malloc((size_t)V * C * 4), *sum = malloc((size_t)V * C * 4),
          *ws = malloc((size_t)4096 * C * 4);
    double *rw = malloc((size_t)V * C * 8), *ri = malloc(N * C * 8);
    if (!dl || !inp || !wte || !dinp || !dw || !sum || !ws || !rw || !ri) {
        CHECK(0, "out of memory");
        return;
    }
    for (size_t i = 0; i < (size_t)N * V; i++) dl[i] = urand() - 0.5f;
    for (int i = 0; i < N * C; i++) inp[i] = urand() - 0.5f;
    for (size_t i = 0; i < (size_t)V * C; i++) wte[i] = urand() - 0.5f, dw[i] = urand() - 0.5f;
    for (size_t v = 0; v < V; v++)
        for (int c = 0; c < C; c++) {
            double a = dw[v * C + c];
            for (int n = 0; n < N; n++) a += (double)dl[(size_t)n * V + v] * inp[n * C + c];
            rw[v * C + c] = a;
        }
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            double a = 0.0;
            for (size_t v = 0; v < V; v++) a += (double)dl[(size_t)n * V + v] * wte[v * C + c];
            ri[n * C + c] = a;
        }
    /* the sum form first: rows 0..3 then 3..7 as two chunks, from a garbage sum the first chunk overwrites */
    for (size_t i = 0; i < (size_t)V * C; i++) sum[i] = 1e30f;
    double es = 0.0, ei = 0.0, ew = 0.0, sw = 0.0, si = 0.0;
    for (int k = 0; k < 2; k++) {
        const int r0 = k ? 3 : 0, n = k ? N - 3 : 3;
        lt_nn_lmhead_backward_sum_r(dinp + r0 * C, sum, k == 0, dl + (size_t)r0 * V, inp + r0 * C, wte, NULL, n, C, V,
                                    LT_NN_ROUND_NONE, ws, 4096);
    }
    for (size_t i = 0; i < (size_t)V * C; i++) sw = fmax(sw, fabs(rw[i]));
    for (int i = 0; i < N * C; i++) si = fmax(si, fabs(ri[i]));
    for (size_t i = 0; i < (size_t)V * C; i++) es = fmax(es, fabs((double)sum[i] + dw[i] - rw[i]) / sw);
    lt_nn_lmhead_backward(dinp, dw, dl, inp, wte, N, C, V);
    for (size_t i = 0; i < (size_t)V * C; i++) ew = fmax(ew, fabs((double)dw[i] - rw[i]) / sw);
    for (int i = 0; i < N * C; i++) ei = fmax(ei, fabs((double)dinp[i] - ri[i]) / si);
    CHECK(ew <= 1e-5 && ei <= 1e-5, "lmhead_backward, V %d: dwte err %.3g, dinp err %.3g", V, ew, ei);
    CHECK(es <= 1e-5, "lmhead_backward_sum_r, V %d in two chunks: the sum's err %.3g", V, es);
    printf("lm head backward, V %d (4096-row pieces): dwte err %.2e, dinp err %.2e, chunked sum err %.2e\n", V, ew,
           ei, es);
    free(dl), free(inp), free(wte), free(dinp), free(dw), free(sum), free(ws), free(rw), free(ri);
}

/* ---------------------------------------------------------------- NEFTune */

/* The noise's distribution: 2^20 values of one forward lie in [-mag, mag), with mean 0 and variance mag^2 / 3
 * (a uniform's) to within 5 standard errors, on a grid of mag 2^-23; another stream's values are uncorrelated
 * with them. The model adds it to the token embeddings of training forwards only: the encoder's output is the
 * plain one plus lt_noise_at's values (added before the position embedding), a forward with dropout off and an
 * evaluation see none, and the magnitude is alpha / sqrt(T C) (HF's hook). */
static void test_neftune(void) {
    const size_t n = (size_t)1 << 20;
    const float mag = 0.25f;
    const lt_noise z = lt_noise_make(mag, 42, LT_GPT2_NOISE_NEFTUNE, 5), z2 = lt_noise_make(mag, 42, LT_GPT2_NOISE_NEFTUNE, 6);
    double sum = 0, sq = 0, cross = 0;
    int out = 0, offgrid = 0;
    for (size_t i = 0; i < n; i++) {
        const double v = lt_noise_at(&z, i), v2 = lt_noise_at(&z2, i);
        out += !(v >= -mag && v < mag);
        offgrid += fmod(fabs(v) / (mag * 0x1p-23), 1.0) != 0.0;
        sum += v, sq += v * v, cross += v * v2;
    }
    const double var = (double)mag * mag / 3, mean = sum / n, m2 = sq / n, c = cross / n;
    CHECK(out == 0 && offgrid == 0, "NEFTune noise: %d values outside [-mag, mag), %d off the grid", out, offgrid);
    CHECK(fabs(mean) < 5 * sqrt(var / n), "NEFTune noise: mean %.3g", mean);
    CHECK(fabs(m2 - var) < 5 * sqrt(0.8 * var * var / n), "NEFTune noise: variance %.6g, uniform's %.6g", m2, var);
    CHECK(fabs(c) < 5 * var / sqrt((double)n), "NEFTune noise: streams 5 and 6 correlate: %.3g", c);
    CHECK(lt_gpt2_neftune_magnitude(5.0f, 1024, 768) == 5.0f / sqrtf(1024.0f * 768.0f) &&
              lt_gpt2_neftune_magnitude(0.0f, 1024, 768) == 0.0f,
          "NEFTune magnitude");

    enum { B = 2, T = 7 };
    char err[512] = "";
    lt_gpt2 *m = make_model(&TINY, B, T);
    if (!m) return;
    randomize(m);
    int32_t in[B * T], tg[B * T];
    for (int i = 0; i < B * T; i++) in[i] = (int32_t)(urand() * 13), tg[i] = (int32_t)(urand() * 13);
    const size_t NC = (size_t)B * T * TINY.n_embd;
    float *plain = malloc(NC * sizeof(float));
    lt_nn_encoder_forward(plain, in, m->params[LT_GPT2_WTE].data, m->params[LT_GPT2_WPE].data, B, T, TINY.n_embd, NULL);
    CHECK(lt_gpt2_eval_loss(m, in, tg, B, T, err, sizeof err) == LT_OK, "%s", err);
    const float l_eval = m->loss;
    lt_gpt2_set_neftune(m, 5.0f);
    lt_gpt2_set_dropout(m, 1, 0x5eed, 9);
    CHECK(lt_gpt2_forward(m, in, tg, B, T, err, sizeof err) == LT_OK, "%s", err);
    const float l_noisy = m->loss;
    const lt_noise zm = lt_noise_make(lt_gpt2_neftune_magnitude(5.0f, T, TINY.n_embd), 0x5eed, LT_GPT2_NOISE_NEFTUNE, 9);
    int bad = 0;
    for (size_t i = 0; i < NC; i++) {
        const size_t row = i / (size_t)TINY.n_embd, col = i % (size_t)TINY.n_embd;
        const float e = m->params[LT_GPT2_WTE].data[(size_t)in[row] * TINY.n_embd + col];
        const float p = m->params[LT_GPT2_WPE].data[(row % T) * TINY.n_embd + col];
        bad += m->acts.encoded[i] != (e + lt_noise_at(&zm, i)) + p;
    }
    CHECK(bad == 0, "NEFTune: %d embeddings are not (wte + noise) + wpe", bad);
    CHECK(memcmp(m->acts.encoded, plain, NC * sizeof(float)) != 0 && l_noisy != l_eval, "NEFTune: no noise added");
    CHECK(lt_gpt2_eval_loss(m, in, tg, B, T, err, sizeof err) == LT_OK && m->loss == l_eval,
          "NEFTune: evaluation loss %.9g, without noise %.9g", m->loss, l_eval);
    lt_gpt2_set_dropout(m, 0, 0x5eed, 9);
    CHECK(lt_gpt2_forward(m, in, tg, B, T, err, sizeof err) == LT_OK &&
              memcmp(m->acts.encoded, plain, NC * sizeof(float)) == 0,
          "NEFTune: a forward with dropout off added noise");
    /* pure bf16 weights: the same noise between the bf16 tables' values */
    CHECK(lt_gpt2_set_precision(m, LT_GPT2_BF16, 1, err, sizeof err) == LT_OK &&
              lt_gpt2_set_batch(m, B, T, err, sizeof err) == LT_OK,
          "%s", err);
    lt_gpt2_set_dropout(m, 1, 0x5eed, 9);
    CHECK(lt_gpt2_forward(m, in, tg, B, T, err, sizeof err) == LT_OK, "%s", err);
    bad = 0;
    for (size_t i = 0; i < NC; i++) {
        const size_t row = i / (size_t)TINY.n_embd, col = i % (size_t)TINY.n_embd;
        const float e = lt_bf16_to_f32(m->params[LT_GPT2_WTE].data16[(size_t)in[row] * TINY.n_embd + col]);
        const float p = lt_bf16_to_f32(m->params[LT_GPT2_WPE].data16[(row % T) * TINY.n_embd + col]);
        bad += m->acts.encoded[i] != (e + lt_noise_at(&zm, i)) + p;
    }
    CHECK(bad == 0, "NEFTune, pure bf16: %d embeddings are not (wte + noise) + wpe", bad);
    printf("NEFTune noise: 2^20 values in [-mag, mag), mean %.2e, variance %.4f of mag^2/3; the model's training "
           "forward adds it (fp32 and pure bf16 weights), evaluation not\n", mean, m2 / var);
    free(plain);
    lt_gpt2_free(m);
}

/* ---------------------------------------------------------------- label smoothing */

/* tests/data/NAME parsed (its path into path), or NULL after a failed check */
static cJSON *data_json(const char *name, char *path, size_t len) {
    snprintf(path, len, "%s/%s", lt_test_data_dir(), name);
    char *text = lt_test_read_file(path, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(j != NULL, "%s: cannot read or parse", path);
    return j;
}

/* The classifier with label smoothing against the Trainer's own LabelSmoother (tests/data/label_smoothing.json,
 * scripts/make-label-smoothing-reference.py: transformers 5.24 on float32 logits): the mean loss and its gradient
 * with respect to the logits (scale 1 / N) by autograd, for factors 0 to 0.9 and V up to 1031. Both sides compute
 * in float32 (torch's log_softmax and its float32 sum over the vocabulary; here double sums rounded to float), so
 * the loss must agree to 2e-6 relative (V x 1e-7 of float32 sums over rows of up to |logit| ~ 30 bounds torch's
 * side) and each gradient element to 4 float32 epsilons times the case's largest |lse|, relative to the largest
 * element (e^(x - lse) inherits lse's rounding). Also: a row's gradient sums to zero (softmax sums
 * to 1 and so do the smoothed targets), checked in double. */
static void test_label_smoothing(void) {
    char path[512];
    cJSON *j = data_json("label_smoothing.json", path, sizeof path);
    if (!j) return;
    const cJSON *cases = cJSON_GetObjectItem(j, "cases"), *cs;
    CHECK(cJSON_GetArraySize(cases) == 5, "%s: expected 5 cases", path);
    double worst_l = 0, worst_g = 0;
    cJSON_ArrayForEach(cs, cases) {
        const int N = cJSON_GetObjectItem(cs, "N")->valueint, V = cJSON_GetObjectItem(cs, "V")->valueint;
        const float eps = (float)cJSON_GetObjectItem(cs, "epsilon")->valuedouble;
        const double ref = cJSON_GetObjectItem(cs, "loss")->valuedouble;
        const cJSON *lj = cJSON_GetObjectItem(cs, "logits"), *gj = cJSON_GetObjectItem(cs, "grad"),
                    *tj = cJSON_GetObjectItem(cs, "labels");
        float *lg = malloc(sizeof(float) * N * V), *d = malloc(sizeof(float) * N * V), *losses = malloc(sizeof(float) * N),
              *lse = malloc(sizeof(float) * N);
        int32_t *tg = malloc(sizeof(int32_t) * N);
        for (int i = 0; i < N * V; i++) lg[i] = (float)cJSON_GetArrayItem(lj, i)->valuedouble;
        for (int i = 0; i < N; i++) tg[i] = cJSON_GetArrayItem(tj, i)->valueint;
        const double loss = lt_nn_crossentropy_forward(losses, lse, lg, tg, (size_t)N, V, eps) / N;
        lt_nn_crossentropy_backward(d, lg, lse, tg, (size_t)N, V, 1.0f / (float)N, eps);
        const double el = fabs(loss - ref) / fabs(ref);
        CHECK(el <= 2e-6, "label smoothing %.1f, N %d, V %d: loss %.9g, LabelSmoother's %.9g", eps, N, V, loss, ref);
        double gmax = 0, eg = 0, rowsum_worst = 0;
        for (int i = 0; i < N * V; i++) gmax = fmax(gmax, fabs(cJSON_GetArrayItem(gj, i)->valuedouble));
        for (int i = 0; i < N * V; i++) eg = fmax(eg, fabs(d[i] - cJSON_GetArrayItem(gj, i)->valuedouble) / gmax);
        for (int n = 0; n < N; n++) {
            double rs = 0;
            for (int v = 0; v < V; v++) rs += d[n * V + v];
            rowsum_worst = fmax(rowsum_worst, fabs(rs));
        }
        /* e^(x - lse) carries the float32 rounding of lse (and of x - lse), on both sides: the bound scales with
           the largest |lse| of the case */
        double zmax = 1;
        for (int n = 0; n < N; n++) zmax = fmax(zmax, fabs(lse[n]));
        const double gtol = 4 * FLT_EPSILON * zmax;
        printf("  label smoothing %.1f, N %d, V %4d: loss error %.2e, gradient error %.2e of its largest (bound %.2e)\n",
               eps, N, V, el, eg, gtol);
        CHECK(eg <= gtol, "label smoothing %.1f, N %d, V %d: gradient off by %.3g of its largest", eps, N, V, eg);
        CHECK(rowsum_worst <= 1e-6 * gmax, "label smoothing %.1f: a row's gradient sums to %.3g", eps, rowsum_worst);
        worst_l = fmax(worst_l, el), worst_g = fmax(worst_g, eg);
        free(lg), free(d), free(losses), free(lse), free(tg);
    }
    cJSON_Delete(j);
    printf("label smoothing against transformers' LabelSmoother: loss within %.2e relative, gradient within %.2e of "
           "its largest\n", worst_l, worst_g);
}

/* lt_nn_top1_hits against torch.argmax (tests/data/top1.json, scripts/make-top1-reference.py): for each row,
 * a target at torch's index is a hit and a target anywhere else is not (ties, NaNs, infinities) */
static void test_top1_reference(void) {
    char path[512];
    cJSON *j = data_json("top1.json", path, sizeof path);
    if (!j) return;
    const cJSON *rows = cJSON_GetObjectItem(j, "rows"), *row;
    int n = 0, bad = 0, ties = 0;
    cJSON_ArrayForEach(row, rows) {
        const cJSON *bits = cJSON_GetObjectItem(row, "bits");
        const int V = cJSON_GetArraySize(bits), want = cJSON_GetObjectItem(row, "argmax")->valueint;
        float *l = malloc(sizeof(float) * (size_t)V * (size_t)V);
        int32_t *tg = malloc(sizeof(int32_t) * (size_t)V);
        for (int v = 0; v < V; v++) {
            const uint32_t u = (uint32_t)(int32_t)cJSON_GetArrayItem(bits, v)->valuedouble;
            memcpy(&l[v], &u, sizeof u);
        }
        int equal_max = 0;
        for (int v = 0; v < V; v++) equal_max += l[v] == l[want] && v != want;
        ties += equal_max > 0;
        /* the row V times, with every target: exactly one hit, at torch's index */
        for (int t = 0; t < V; t++) memcpy(l + (size_t)t * V, l, sizeof(float) * (size_t)V), tg[t] = t;
        const size_t hits = lt_nn_top1_hits(l, tg, (size_t)V, V);
        size_t at_want = lt_nn_top1_hits(l, &tg[want], 1, V);
        if (hits != 1 || at_want != 1) {
            bad++;
            CHECK(0, "top1 row %d (V %d): %zu hits over all targets, torch's index %d %s", n, V, hits, want,
                  at_want ? "hit" : "missed");
        }
        free(l), free(tg);
        n++;
    }
    cJSON_Delete(j);
    CHECK(n >= 60 && ties >= 10, "top1.json: %d rows, %d with ties", n, ties);
    printf("top-1 predictions: torch.argmax's index in %d of %d rows (ties in %d, NaNs, infinities)\n",
           n - bad, n, ties);
}

/* lt_gpt2_eval's count: the positions whose logits' first largest value is at the target, the logits those of a
 * forward without targets; the same count with the head in chunks; fp32 and bf16 */
static void test_eval_accuracy(void) {
    lt_gpt2_config cfg = {.vocab_size = 97, .n_positions = 40, .n_embd = 64, .n_layer = 2, .n_head = 4,
                          .layer_norm_epsilon = 1e-5};
    enum { B = 3, T = 33, N = B * T, V = 97 };
    const lt_gpt2_precision precs[2] = {LT_GPT2_F32, LT_GPT2_BF16};
    char err[512] = "";
    int32_t in[N], tg[N];
    for (int i = 0; i < N; i++) in[i] = (int32_t)(urand() * V), tg[i] = (int32_t)(urand() * V);
    for (int pi = 0; pi < 2; pi++) {
        lt_gpt2 *m[2];
        if (!head_pair(&cfg, precs[pi], 0, 7, B, T, m)) return;
        CHECK(lt_gpt2_forward(m[0], in, NULL, B, T, err, sizeof err) == LT_OK, "%s", err);
        /* every other target set to the row's first largest logit, so that about half are hits */
        long want = 0;
        int tied = 0;
        for (int i = 0; i < N; i++) {
            const float *l = m[0]->acts.logits + (size_t)i * V;
            int best = 0;
            for (int v = 1; v < V; v++)
                if (l[v] > l[best]) best = v;
            for (int v = best + 1; v < V; v++) tied += l[v] == l[best];
            if (i % 2 == 0) tg[i] = best;
            want += tg[i] == best;
        }
        long got[2] = {-1, -1};
        for (int k = 0; k < 2; k++)
            CHECK(lt_gpt2_eval(m[k], in, tg, B, T, &got[k], err, sizeof err) == LT_OK, "%s", err);
        CHECK(got[0] == want && got[1] == want && want >= N / 2,
              "precision %d: %ld positions predicted right (%ld with the head in chunks), the logits' argmax gives %ld",
              pi, got[0], got[1], want);
        printf("eval accuracy (precision %d): %ld of %d positions, whole and in chunks (%d tied maxima after the "
               "first)\n", pi, want, N, tied);
        lt_gpt2_free(m[0]), lt_gpt2_free(m[1]);
    }
}

/* lt_gpt2_kv_step, one token at a time with the key / value cache, against lt_gpt2_forward over the whole
 * sequence: every position's logits within fp32 rounding (1e-5 of the largest); a reset starts again with the
 * same bits; a full cache and a bad token are refused and change nothing */
static void test_kv_decode(void) {
    lt_gpt2_config cfg = {.vocab_size = 97, .n_positions = 40, .n_embd = 64, .n_layer = 2, .n_head = 4,
                          .layer_norm_epsilon = 1e-5};
    enum { T = 33, V = 97 };
    char err[512] = "";
    lt_gpt2 *m = NULL;
    CHECK(lt_gpt2_create(&cfg, &m, err, sizeof err) == LT_OK, "%s", err);
    if (!m) return;
    CHECK(lt_gpt2_set_batch(m, 1, T, err, sizeof err) == LT_OK, "%s", err);
    lt_gpt2_init_random(m, 5);
    for (size_t i = 0; i < m->params[LT_GPT2_WTE].numel; i++) m->params[LT_GPT2_WTE].data[i] *= 10.0f; /* spread */
    int32_t in[T];
    for (int i = 0; i < T; i++) in[i] = (int32_t)(urand() * V);
    CHECK(lt_gpt2_forward(m, in, NULL, 1, T, err, sizeof err) == LT_OK, "%s", err);
    lt_gpt2_kv *kv = NULL;
    CHECK(lt_gpt2_kv_create(m, T, &kv, err, sizeof err) == LT_OK, "%s", err);
    if (!kv) return;
    float lg[V], first[V];
    double worst = 0, scale = 0;
    for (int t = 0; t < T; t++) {
        CHECK(lt_gpt2_kv_step(m, kv, in[t], lg, err, sizeof err) == LT_OK, "%s", err);
        const float *ref = m->acts.logits + (size_t)t * V;
        for (int v = 0; v < V; v++) scale = fmax(scale, fabs(ref[v]));
        for (int v = 0; v < V; v++) worst = fmax(worst, fabs((double)lg[v] - ref[v]));
        if (t == 0) memcpy(first, lg, sizeof lg);
    }
    CHECK(scale > 1 && worst <= 1e-5 * scale, "kv decode: logits off by %.3g (largest %.3g)", worst, scale);
    CHECK(lt_gpt2_kv_step(m, kv, in[0], lg, err, sizeof err) == LT_ERR_STATE && strstr(err, "full") &&
              lt_gpt2_kv_len(kv) == T,
          "a full cache took a step: %s", err);
    lt_gpt2_kv_reset(kv);
    CHECK(lt_gpt2_kv_step(m, kv, V, lg, err, sizeof err) == LT_ERR_ARG && lt_gpt2_kv_len(kv) == 0,
          "a bad token was taken");
    CHECK(lt_gpt2_kv_step(m, kv, in[0], lg, err, sizeof err) == LT_OK && memcmp(lg, first, sizeof lg) == 0,
          "after a reset, position 0 differs");
    /* the first 20 tokens in one forward, the rest one at a time: the same logits */
    double worst2 = 0;
    CHECK(lt_gpt2_kv_prefill(m, kv, in, 20, lg, err, sizeof err) == LT_OK && lt_gpt2_kv_len(kv) == 20, "%s", err);
    float *full = malloc(sizeof(float) * T * V);
    CHECK(lt_gpt2_forward(m, in, NULL, 1, T, err, sizeof err) == LT_OK, "%s", err);
    memcpy(full, m->acts.logits, sizeof(float) * T * V);
    for (int v = 0; v < V; v++) worst2 = fmax(worst2, fabs((double)lg[v] - full[19 * V + v]));
    for (int t = 20; t < T; t++) {
        CHECK(lt_gpt2_kv_step(m, kv, in[t], lg, err, sizeof err) == LT_OK, "%s", err);
        for (int v = 0; v < V; v++) worst2 = fmax(worst2, fabs((double)lg[v] - full[(size_t)t * V + v]));
    }
    CHECK(worst2 <= 1e-5 * scale, "kv prefill then steps: logits off by %.3g", worst2);
    free(full);
    printf("kv-cache decoding: %d positions, logits within %.2e of the full forward's (largest %.2f); after a "
           "20-token prefill within %.2e\n", T, worst, scale, worst2);
    lt_gpt2_kv_free(kv);
    lt_gpt2_free(m);
}

int main(void) {
    test_kv_decode();
    test_top1_reference();
    test_eval_accuracy();
    test_label_smoothing();
    test_neftune();
    test_gelu();
    test_layernorm();
    test_attention();
    test_attention_recompute();
    test_init_random();
    test_configs();
    test_loading();
    test_finite_differences();
    test_dropout_kernel();
    test_dropout_gradients();
    test_dropout_model();
    test_repeat_and_capacity();
    test_head_chunks();
    test_lmhead_backward();
    test_trace();
    return lt_test_done("test_gpt2");
}
