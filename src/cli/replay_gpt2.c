/* `leantrain replay` for gpt2-trace-1 files: builds the GPT-2 the trace's
 * metadata describes, loads its weights from the trace and checks, each by
 * the trace's own tolerance: the logits and the loss of a forward pass, the
 * gradient of every weight, and the losses of S AdamW steps on the same
 * batch. On the CPU (the host model) or the GPU (the device model, its
 * optimizer state on the device), in fp32 or, with bf16, in bf16 mixed
 * precision against bf16 tolerances (bf16_tolerances below). A trace whose
 * metadata has "dropout": {"seed": S} was made with the config's pdrops and
 * leantrain's masks (scripts/make-gpt2-trace.py --dropout): the forward of the
 * logits, loss and gradients draws stream 0, training step s stream s. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "kernels/optim_kernels_cuda.h"
#include "leantrain/dtype.h"
#include "leantrain/optim.h"
#include "leantrain/safetensors.h"
#include "model/cuda/gpt2_device.h"
#include "model/gpt2.h"

/* One comparison: its worst error by its metric, the tolerance, and where. */
typedef struct check {
    const char *what;
    double worst, tol;
    char where[160];
} check;

/* Records error e of element idx of `name` (idx < 0: a scalar) if it is the worst so far. */
static void note(check *c, double e, const char *name, long idx) {
    if (isnan(e)) e = INFINITY; /* NaN counts as worst */
    if (e > c->worst || (e == INFINITY && c->worst != INFINITY)) {
        c->worst = e;
        if (idx < 0) snprintf(c->where, sizeof c->where, "%s", name);
        else snprintf(c->where, sizeof c->where, "%s[%ld]", name, idx);
    }
}

/* A required positive number of a JSON object. */
static int get_pos(const cJSON *o, const char *key, double *out, const char *obj, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0) || !isfinite(v->valuedouble)) {
        snprintf(err, errlen, "metadata '%s': '%s' is missing or not a positive number", obj, key);
        return 0;
    }
    *out = v->valuedouble;
    return 1;
}

/* A metadata value that must be a positive decimal integer. */
static int meta_int(const lt_st_file *f, const char *key, int *out, char *err, size_t errlen) {
    const char *s = lt_st_meta(f, key);
    char *end = NULL;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || end == s || *end || errno || v < 1 || v > 1 << 20) {
        snprintf(err, errlen, "metadata '%s' is %s", key, s ? "not a positive integer" : "missing");
        return 0;
    }
    *out = (int)v;
    return 1;
}

/* The trace's tensor `name` with exactly `dtype` and shape, or NULL with a message. */
static const lt_st_tensor *want_tensor(const lt_st_file *f, const char *name, const char *dtype, int ndim,
                                       const int64_t *shape, char *err, size_t errlen) {
    const lt_st_tensor *t = lt_st_find(f, name);
    int ok = t && strcmp(t->dtype, dtype) == 0 && t->ndim == ndim;
    for (int k = 0; ok && k < ndim; k++) ok = t->shape[k] == shape[k];
    if (!ok) {
        char s[96];
        size_t u = 0;
        for (int k = 0; k < ndim && u < sizeof s; k++)
            u += (size_t)snprintf(s + u, sizeof s - u, "%s%lld", k ? ", " : "", (long long)shape[k]);
        snprintf(err, errlen, "tensor '%s' is %s (expected %s [%s])", name, t ? "of another dtype or shape" : "missing",
                 dtype, s);
        return NULL;
    }
    return t;
}

/* The weight decay of the decay and no-decay groups: either one number
 * (the Trainer's weight_decay, which biases and ln_* weights never get) or
 * {"decay": x, "no_decay ...": y}. */
static int get_decays(const cJSON *train, double *decay, double *no_decay, char *err, size_t errlen) {
    const cJSON *wd = cJSON_GetObjectItemCaseSensitive(train, "weight_decay"), *kv;
    *no_decay = 0.0;
    if (cJSON_IsNumber(wd)) {
        *decay = wd->valuedouble;
        return 1;
    }
    int have = 0;
    if (cJSON_IsObject(wd)) {
        cJSON_ArrayForEach(kv, wd) {
            if (!cJSON_IsNumber(kv)) break;
            if (strcmp(kv->string, "decay") == 0) *decay = kv->valuedouble, have |= 1;
            else if (strncmp(kv->string, "no_decay", 8) == 0) *no_decay = kv->valuedouble, have |= 2;
        }
    }
    if (have != 3) {
        snprintf(err, errlen, "metadata 'train': weight_decay must be a number or {\"decay\": x, \"no_decay\": y}");
        return 0;
    }
    return 1;
}

/* The tolerances of a bf16 replay. A trace's own tolerances are fp32's (about 1e-5); bf16 keeps 8 significant
 * bits, and each activation (every one on the GPU, llm.c's scheme; the matrix-multiply operands on the CPU,
 * torch.autocast's) is rounded to them, so each comparison is relative to its quantity's scale, with the margins
 * tests/gpu/gpu_gpt2_model.c uses for the same model code: the loss within 1e-3 of itself (half a bf16 ulp), the
 * logits within 3e-2 of their largest magnitude and each gradient within 3e-2 of its tensor's largest (about 8
 * bf16 ulps of the scale), and the losses of the S training steps, like the first, within 1e-3 of the first.
 * Measured on gpt2_tiny (loss 5.5, largest logit 0.67), CPU / GPU in the CUDA emulation: logits 2.5e-3 / 2.8e-3
 * (tolerance 2.0e-2), loss 9.4e-5 / 1.4e-4 (5.5e-3), gradients 8.9e-3 / 1.1e-2 (3e-2), training losses 1.5e-3 /
 * 9.9e-4 (5.5e-3). */
static void bf16_tolerances(check *cl, check *cs, check *cg, check *ct, double max_logit, double loss0) {
    cl->tol = 3e-2 * max_logit;
    cs->tol = 1e-3 * fabs(loss0);
    cg->tol = 3e-2;
    ct->tol = 1e-3 * fabs(loss0);
}

/* The device model's first n rows of logits (ldv apart, its storage dtype) as floats, V columns each. */
static int dev_logits(const lt_gpt2_dev *d, size_t n, size_t V, float *out, char *err, size_t errlen) {
    int ldv = 0;
    lt_dtype dt = LT_DTYPE_F32;
    const void *src = lt_gpt2_dev_logits(d, &ldv, &dt);
    const size_t es = lt_dtype_size(dt), bytes = n * (size_t)ldv * es;
    unsigned char *h = malloc(bytes ? bytes : 1);
    if (!src || !h) {
        free(h);
        snprintf(err, errlen, "%s", src ? "out of memory" : "the device model has no logits buffer");
        return 0;
    }
    if (lt_cuda_memcpy_raw(h, src, bytes, 1, err, errlen)) {
        free(h);
        return 0;
    }
    for (size_t r = 0; r < n; r++)
        for (size_t c = 0; c < V; c++) {
            const size_t at = r * (size_t)ldv + c;
            uint16_t u;
            if (dt == LT_DTYPE_F32) memcpy(&out[r * V + c], h + 4 * at, 4);
            else {
                memcpy(&u, h + 2 * at, 2);
                out[r * V + c] = dt == LT_DTYPE_BF16 ? lt_bf16_to_f32(u) : lt_f16_to_f32(u);
            }
        }
    free(h);
    return 1;
}

/* The trace's dropout: on (with its seed) or off (drop_seed < 0) for the next forwards, at `stream`. */
static void set_stream(lt_gpt2 *m, lt_gpt2_dev *d, long long drop_seed, uint32_t stream) {
    if (drop_seed < 0) return;
    if (d) lt_gpt2_dev_set_dropout(d, 1, (uint64_t)drop_seed, stream);
    else lt_gpt2_set_dropout(m, 1, (uint64_t)drop_seed, stream);
}

/* One forward (and, with targets, its loss) on the host or the device model. */
static int pass(lt_gpt2 *m, lt_gpt2_dev *d, const int32_t *in, const int32_t *tg, int B, int T, float *loss,
                char *err, size_t errlen) {
    if (d) return lt_gpt2_dev_forward(d, in, tg, B, T, loss, err, errlen) == LT_OK;
    if (lt_gpt2_forward(m, in, tg, B, T, err, errlen) != LT_OK) return 0;
    if (loss) *loss = m->loss;
    return 1;
}

int lt_replay_gpt2(const char *path, lt_st_file *f, int device, int bf16) {
    char err[1024] = "";
    cJSON *tj = NULL, *rj = NULL;
    lt_gpt2 *m = NULL;
    lt_gpt2_dev *d = NULL;
    lt_optim *o = NULL;
    float *ref = NULL, *dlogits = NULL;
    const char *mode = device && bf16 ? "  [cuda, bf16 tolerances]" : device ? "  [cuda]" : bf16 ? "  [bf16 tolerances]" : "";
    int32_t *inputs = NULL, *targets = NULL;
    int ok = 0, B = 0, T = 0, S = 0;
    check cl = {"logits", 0, 0, ""}, cs = {"loss", 0, 0, ""}, cg = {"grads", 0, 0, ""}, ct = {"train", 0, 0, ""};

    const char *cfg_s = lt_st_meta(f, "config"), *tol_s = lt_st_meta(f, "tolerance"), *train_s = lt_st_meta(f, "train");
    if (!cfg_s || !tol_s || !train_s) {
        snprintf(err, sizeof err, "metadata config, tolerance or train missing");
        goto out;
    }
    lt_gpt2_config cfg;
    if (lt_gpt2_config_from_json(cfg_s, "metadata 'config'", &cfg, err, sizeof err) != LT_OK) goto out;
    if (!meta_int(f, "batch", &B, err, sizeof err) || !meta_int(f, "seq_len", &T, err, sizeof err)) goto out;
    if (!(tj = cJSON_Parse(tol_s)) || !(rj = cJSON_Parse(train_s))) {
        snprintf(err, sizeof err, "metadata '%s' is not valid JSON", tj ? "train" : "tolerance");
        goto out;
    }
    long long drop_seed = -1;
    const char *drop_s = lt_st_meta(f, "dropout");
    if (drop_s) {
        cJSON *dj = cJSON_Parse(drop_s);
        const cJSON *sv = dj ? cJSON_GetObjectItemCaseSensitive(dj, "seed") : NULL;
        if (cJSON_IsNumber(sv) && sv->valuedouble >= 0 && sv->valuedouble < 9007199254740992.0 &&
            sv->valuedouble == floor(sv->valuedouble))
            drop_seed = (long long)sv->valuedouble;
        cJSON_Delete(dj);
        if (drop_seed < 0) {
            snprintf(err, sizeof err, "metadata 'dropout' is not {\"seed\": a non-negative integer}");
            goto out;
        }
    }
    if (!get_pos(tj, "logits_max_abs", &cl.tol, "tolerance", err, sizeof err) ||
        !get_pos(tj, "loss_abs", &cs.tol, "tolerance", err, sizeof err) ||
        !get_pos(tj, "grad_max_abs_over_tensor_max_abs", &cg.tol, "tolerance", err, sizeof err) ||
        !get_pos(tj, "train_losses_abs", &ct.tol, "tolerance", err, sizeof err))
        goto out;

    if (lt_gpt2_create(&cfg, &m, err, sizeof err) != LT_OK ||
        (bf16 && !device && lt_gpt2_set_precision(m, LT_GPT2_BF16, 0, err, sizeof err) != LT_OK) ||
        lt_gpt2_set_batch(m, B, T, err, sizeof err) != LT_OK || lt_gpt2_load_weights(m, f, path, err, sizeof err) != LT_OK)
        goto out;
    /* the GPU: the device model of the loaded weights (the host model then only receives its gradients) */
    if (device && (lt_gpt2_dev_create(m, NULL, &d, err, sizeof err) != LT_OK ||
                   (bf16 && lt_gpt2_dev_set_precision(d, LT_GPT2_BF16, 0, err, sizeof err) != LT_OK) ||
                   lt_gpt2_dev_set_batch(d, B, T, err, sizeof err) != LT_OK))
        goto out;
    size_t N = (size_t)B * (size_t)T, V = (size_t)cfg.vocab_size, maxn = N * V;
    for (int i = 0; i < m->num_tensors; i++)
        if (m->params[i].numel > maxn) maxn = m->params[i].numel;
    ref = malloc(maxn * sizeof *ref);
    inputs = malloc(N * sizeof *inputs);
    targets = malloc(N * sizeof *targets);
    if (!ref || !inputs || !targets) {
        snprintf(err, sizeof err, "out of memory");
        goto out;
    }
    const int64_t bt[2] = {B, T}, btv[3] = {B, T, (int64_t)V}, one[1] = {1};
    const lt_st_tensor *ti = want_tensor(f, "inputs", "I32", 2, bt, err, sizeof err);
    const lt_st_tensor *tt = ti ? want_tensor(f, "targets", "I32", 2, bt, err, sizeof err) : NULL;
    const lt_st_tensor *tl = tt ? want_tensor(f, "logits", "F32", 3, btv, err, sizeof err) : NULL;
    const lt_st_tensor *ts = tl ? want_tensor(f, "loss", "F32", 1, one, err, sizeof err) : NULL;
    if (!ts) goto out;
    memcpy(inputs, ti->data, N * sizeof *inputs); /* the mapping may be unaligned */
    memcpy(targets, tt->data, N * sizeof *targets);

    /* forward: logits and loss (the device model keeps its logits only without targets: two passes there) */
    float loss = 0.0f, ref_loss;
    set_stream(m, d, drop_seed, 0);
    if (!pass(m, d, inputs, d ? NULL : targets, B, T, NULL, err, sizeof err)) goto out;
    const float *logits = m->acts.logits;
    if (d) {
        if (!(dlogits = malloc(N * V * sizeof *dlogits))) {
            snprintf(err, sizeof err, "out of memory");
            goto out;
        }
        if (!dev_logits(d, N, V, dlogits, err, sizeof err)) goto out;
        logits = dlogits;
    }
    if (lt_st_read_f32(tl, ref, N * V, err, sizeof err) != LT_OK ||
        lt_st_read_f32(ts, &ref_loss, 1, err, sizeof err) != LT_OK)
        goto out;
    double max_logit = 0.0;
    for (size_t i = 0; i < N * V; i++) {
        note(&cl, fabs((double)logits[i] - ref[i]), "logits", (long)i);
        if (fabs(ref[i]) > max_logit) max_logit = fabs(ref[i]);
    }
    if (bf16) bf16_tolerances(&cl, &cs, &cg, &ct, max_logit, ref_loss);

    /* backward: every weight's gradient, relative to that gradient's largest value */
    if (d) {
        if (lt_gpt2_dev_zero_grad(d, err, sizeof err) != LT_OK ||
            !pass(m, d, inputs, targets, B, T, &loss, err, sizeof err) ||
            lt_gpt2_dev_backward(d, err, sizeof err) != LT_OK || lt_gpt2_dev_download_grads(d, m, err, sizeof err) != LT_OK)
            goto out;
    } else {
        lt_gpt2_zero_grad(m);
        loss = m->loss;
        if (lt_gpt2_backward(m, err, sizeof err) != LT_OK) goto out;
    }
    note(&cs, fabs((double)loss - ref_loss), "loss", -1);
    int ngrads = 0;
    for (size_t j = 0; j < lt_st_count(f); j++)
        ngrads += strncmp(lt_st_at(f, j)->name, "grad.", 5) == 0;
    if (ngrads != m->num_tensors) {
        snprintf(err, sizeof err, "the trace has %d grad.* tensors, the model %d parameters", ngrads,
                 m->num_tensors);
        goto out;
    }
    for (int i = 0; i < m->num_tensors; i++) {
        const lt_gpt2_param *p = &m->params[i];
        char name[64];
        snprintf(name, sizeof name, "grad.%s", p->name);
        const lt_st_tensor *t = want_tensor(f, name, "F32", p->ndim, p->shape, err, sizeof err);
        if (!t || lt_st_read_f32(t, ref, p->numel, err, sizeof err) != LT_OK) goto out;
        double maxref = 0.0, maxdiff = 0.0;
        size_t at = 0;
        for (size_t k = 0; k < p->numel; k++) {
            double d = fabs((double)p->grad[k] - ref[k]);
            if (fabs(ref[k]) > maxref) maxref = fabs(ref[k]);
            if (!(d <= maxdiff)) maxdiff = isnan(d) ? INFINITY : d, at = k;
        }
        note(&cg, maxdiff == 0.0 ? 0.0 : maxdiff / maxref, name, (long)at);
    }

    /* training: S AdamW steps on the same batch, the loss before each */
    const cJSON *on = cJSON_GetObjectItemCaseSensitive(rj, "optim"), *betas = cJSON_GetObjectItemCaseSensitive(rj, "betas");
    lt_hparams hp = lt_hparams_default();
    double no_decay = 0.0;
    if (!cJSON_IsString(on) || !get_pos(rj, "lr", &hp.lr, "train", err, sizeof err) ||
        !get_pos(rj, "eps", &hp.eps, "train", err, sizeof err) ||
        !get_decays(rj, &hp.weight_decay, &no_decay, err, sizeof err) || cJSON_GetArraySize(betas) != 2 ||
        !cJSON_IsNumber(cJSON_GetArrayItem(betas, 0)) || !cJSON_IsNumber(cJSON_GetArrayItem(betas, 1))) {
        if (!err[0]) snprintf(err, sizeof err, "metadata 'train': optim or betas missing or invalid");
        goto out;
    }
    hp.beta1 = cJSON_GetArrayItem(betas, 0)->valuedouble;
    hp.beta2 = cJSON_GetArrayItem(betas, 1)->valuedouble;
    const lt_st_tensor *tr = lt_st_find(f, "train_losses");
    if (!tr || strcmp(tr->dtype, "F32") != 0 || tr->ndim != 1 || tr->numel < 1) {
        snprintf(err, sizeof err, "tensor 'train_losses' is missing or not F32 [S]");
        goto out;
    }
    S = (int)tr->numel;
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(rj, "steps");
    if (steps && !(cJSON_IsNumber(steps) && steps->valuedouble == S)) {
        snprintf(err, sizeof err, "metadata 'train': steps does not match the %d train_losses", S);
        goto out;
    }
    if (lt_st_read_f32(tr, ref, (size_t)S, err, sizeof err) != LT_OK) goto out;
    if (!(o = lt_optim_create(on->valuestring, NULL, &hp, err, sizeof err))) goto out;
    char nd_args[64];
    snprintf(nd_args, sizeof nd_args, "weight_decay=%.17g", no_decay);
    int nd_group = lt_optim_add_group(o, nd_args);
    for (int i = 0; nd_group >= 0 && i < m->num_tensors; i++) {
        const lt_gpt2_param *p = &m->params[i];
        lt_param_desc pd = {.name = p->name, .data = p->data, .grad = p->grad, .ndim = p->ndim,
                            .shape = {p->shape[0], p->shape[1]}, .group = p->weight_decay ? 0 : nd_group};
        if (d) { /* the device model's fp32 master weights and gradients; the state on the device */
            const lt_gpt2_dev_param *q = lt_gpt2_dev_param_at(d, i);
            pd.data = q->data, pd.grad = q->grad, pd.device = 1;
        }
        if (lt_optim_add_param(o, &pd) < 0) nd_group = -1;
    }
    if (nd_group < 0 || (d && lt_optim_set_stream(o, lt_gpt2_dev_stream(d)) != LT_OK)) {
        snprintf(err, sizeof err, "%s", lt_optim_error(o));
        goto out;
    }
    for (int s = 0; s < S; s++) {
        if (d ? lt_gpt2_dev_zero_grad(d, err, sizeof err) != LT_OK : (lt_gpt2_zero_grad(m), 0)) goto out;
        set_stream(m, d, drop_seed, (uint32_t)s);
        if (!pass(m, d, inputs, targets, B, T, &loss, err, sizeof err)) goto out;
        note(&ct, fabs((double)loss - ref[s]), "train_losses", s);
        if ((d ? lt_gpt2_dev_backward(d, err, sizeof err) : lt_gpt2_backward(m, err, sizeof err)) != LT_OK) goto out;
        if (lt_optim_step(o, 1.0f) != LT_OK) {
            snprintf(err, sizeof err, "step %d: %s", s + 1, lt_optim_error(o));
            goto out;
        }
        if (d && lt_gpt2_dev_refresh_bf16(d, err, sizeof err) != LT_OK) goto out; /* the bf16 copy of the masters */
    }

    /* the line leads with the comparison closest to its tolerance */
    check *all[4] = {&cl, &cs, &cg, &ct}, *crit = all[0];
    for (int i = 1; i < 4; i++)
        if (all[i]->worst / all[i]->tol > crit->worst / crit->tol) crit = all[i];
    ok = 1;
    for (int i = 0; i < 4; i++) ok &= all[i]->worst <= all[i]->tol;
    printf("%s  %s  worst %.3e  tol %.3e  (%s)  logits %.1e/%.0e  loss %.1e/%.0e  grads %.1e/%.0e (%d tensors)  "
           "train %.1e/%.0e (%d steps)%s%s%s%s\n",
           ok ? "PASS" : "FAIL", path, crit->worst, crit->tol, crit->what, cl.worst, cl.tol, cs.worst, cs.tol,
           cg.worst, cg.tol, m->num_tensors, ct.worst, ct.tol, S, drop_seed >= 0 ? "  [dropout]" : "", mode,
           ok ? "" : "  at ", ok ? "" : crit->where);
out:
    if (err[0]) printf("FAIL  %s  error: %s%s\n", path, err, mode);
    free(ref), free(inputs), free(targets), free(dlogits);
    lt_optim_free(o);
    lt_gpt2_dev_free(d);
    lt_gpt2_free(m);
    cJSON_Delete(tj), cJSON_Delete(rj);
    return ok && !err[0];
}
