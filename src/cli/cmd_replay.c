/* `leantrain replay FILE...`: rebuilds the optimizer a reference trace
 * describes, feeds it the recorded gradients and compares every parameter
 * after every step, then the final states, by the trace's own metric
 * (max |ours - ref| / (1e-3 + |ref|)) and tolerance. With --device cuda the
 * parameters and gradients live in CUDA device memory and the steps run on the
 * GPU (each step's gradients are uploaded, the parameters read back). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "kernels/optim_kernels_cuda.h"
#include "leantrain/optim.h"
#include "leantrain/safetensors.h"

typedef struct {
    double worst;
    char where[600];
} worst_t;

static void track(worst_t *w, const float *ours, const float *ref, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)ours[i] - (double)ref[i]) / (1e-3 + fabs((double)ref[i]));
        if (!(e <= w->worst)) { /* NaN counts as worst */
            w->worst = isnan(e) ? INFINITY : e;
            snprintf(w->where, sizeof w->where, "%s[%zu]", what, i);
        }
    }
}

/* Appends "k=v" for a JSON scalar to args; returns 0 if the value has no text form. */
static int append_arg(char *args, size_t len, const char *k, const cJSON *v) {
    size_t used = strlen(args);
    const char *sep = used ? "," : "";
    if (cJSON_IsBool(v)) snprintf(args + used, len - used, "%s%s=%s", sep, k, cJSON_IsTrue(v) ? "True" : "False");
    else if (cJSON_IsNumber(v)) snprintf(args + used, len - used, "%s%s=%.17g", sep, k, v->valuedouble);
    else if (cJSON_IsNull(v)) snprintf(args + used, len - used, "%s%s=None", sep, k);
    else return 0;
    return 1;
}

/* Turns a JSON object of reference hyperparameters into optim_args and the base hparams. */
static int hparams_to_args(const cJSON *obj, lt_hparams *hp, char *args, size_t len, char *err, size_t errlen) {
    const cJSON *kv;
    hp->lr = hp->beta1 = hp->beta2 = hp->eps = hp->weight_decay = NAN;
    cJSON_ArrayForEach(kv, obj) {
        const char *k = kv->string;
        if (!strcmp(k, "lr")) {
            hp->lr = cJSON_IsNumber(kv) ? kv->valuedouble : NAN;
        } else if (!strcmp(k, "weight_decay") && cJSON_IsNumber(kv)) {
            hp->weight_decay = kv->valuedouble;
        } else if (!strcmp(k, "betas") && cJSON_GetArraySize(kv) == 2) {
            append_arg(args, len, "beta1", cJSON_GetArrayItem(kv, 0));
            append_arg(args, len, "beta2", cJSON_GetArrayItem(kv, 1));
        } else if (!strcmp(k, "eps") && cJSON_IsArray(kv) && cJSON_GetArraySize(kv) == 2) {
            append_arg(args, len, "eps1", cJSON_GetArrayItem(kv, 0));
            append_arg(args, len, "eps2", cJSON_GetArrayItem(kv, 1));
        } else if (!strcmp(k, "foreach") || !strcmp(k, "fused") || !strcmp(k, "differentiable") ||
                   !strcmp(k, "capturable") || !strcmp(k, "maximize")) {
            /* torch's implementation switches: they pick a code path, not the math; maximize flips the
               gradient, which no trainer here asks for */
            if (!strcmp(k, "maximize") && cJSON_IsTrue(kv)) {
                snprintf(err, errlen, "hyperparameter maximize=true is not supported");
                return 0;
            }
        } else if (!append_arg(args, len, k, kv)) {
            snprintf(err, errlen, "hyperparameter '%s' has a value that is not a number, bool or null", k);
            return 0;
        }
    }
    return 1;
}

static cJSON *meta_json(const lt_st_file *f, const char *key, char *err, size_t errlen) {
    const char *v = lt_st_meta(f, key);
    cJSON *j = v ? cJSON_Parse(v) : NULL;
    if (!j) snprintf(err, errlen, "metadata '%s' is %s", key, v ? "not valid JSON" : "missing");
    return j;
}

/* Replays one optim-trace-1 file (on the GPU when device). Returns 1 on PASS; prints the line either way. */
static int replay_optim_trace(const char *path, lt_st_file *f, int device) {
    char err[1024] = "";
    char args[2048] = "";
    cJSON *hj = NULL, *gj = NULL, *pj = NULL, *lj = NULL;
    lt_optim *o = NULL;
    float **pbuf = NULL, **gbuf = NULL, *tmp = NULL;
    void **dp = NULL, **dg = NULL; /* device copies of the parameters and gradients */
    int np = 0, ok = 0, steps = 0;
    worst_t w = {0.0, ""};
    const char *optim = lt_st_meta(f, "optim"), *tol_s = lt_st_meta(f, "tolerance"), *steps_s = lt_st_meta(f, "steps");
    double tol = tol_s ? strtod(tol_s, NULL) : NAN;
    if (!optim || !steps_s || !(tol > 0)) {
        snprintf(err, sizeof err, "metadata optim, steps or tolerance missing or invalid");
        goto out;
    }
    steps = atoi(steps_s);
    if (!(hj = meta_json(f, "hparams", err, sizeof err)) || !(gj = meta_json(f, "groups", err, sizeof err)) ||
        !(pj = meta_json(f, "params", err, sizeof err)))
        goto out;
    if (lt_st_meta(f, "lr_per_step") && !(lj = meta_json(f, "lr_per_step", err, sizeof err))) goto out;
    lt_hparams hp;
    if (!hparams_to_args(hj, &hp, args, sizeof args, err, sizeof err)) goto out;
    o = lt_optim_create(optim, args, &hp, err, sizeof err);
    if (!o) goto out;

    /* groups: the first is group 0, the rest are added with their overrides */
    int ng = cJSON_GetArraySize(gj);
    np = cJSON_GetArraySize(pj);
    int *group_of = calloc((size_t)np + 1, sizeof *group_of);
    pbuf = calloc((size_t)np + 1, sizeof *pbuf);
    gbuf = calloc((size_t)np + 1, sizeof *gbuf);
    dp = calloc((size_t)np + 1, sizeof *dp);
    dg = calloc((size_t)np + 1, sizeof *dg);
    if (!group_of || !pbuf || !gbuf || !dp || !dg) {
        free(group_of);
        snprintf(err, sizeof err, "out of memory");
        goto out;
    }
    for (int g = 0; g < ng; g++) {
        const cJSON *grp = cJSON_GetArrayItem(gj, g), *ov = cJSON_GetObjectItem(grp, "overrides"), *kv, *pn;
        char oargs[1024] = "";
        if (ov)
            cJSON_ArrayForEach(kv, ov) append_arg(oargs, sizeof oargs, kv->string, kv);
        int gi = 0;
        if (g > 0 && (gi = lt_optim_add_group(o, oargs)) < 0) {
            snprintf(err, sizeof err, "%s", lt_optim_error(o));
            free(group_of);
            goto out;
        }
        if (g == 0 && oargs[0]) {
            /* overrides of the first group apply to group 0 itself */
            char *save = NULL, *tok;
            for (char *s = oargs; (tok = strtok_r(s, ",", &save)); s = NULL) {
                char *eq = strchr(tok, '=');
                *eq = 0;
                if (lt_optim_set_hparam(o, 0, tok, eq + 1) != LT_OK) {
                    snprintf(err, sizeof err, "%s", lt_optim_error(o));
                    free(group_of);
                    goto out;
                }
            }
        }
        cJSON_ArrayForEach(pn, cJSON_GetObjectItem(grp, "params")) {
            for (int i = 0; i < np; i++)
                if (cJSON_IsString(pn) && !strcmp(pn->valuestring, cJSON_GetArrayItem(pj, i)->valuestring))
                    group_of[i] = gi;
        }
    }
    size_t maxn = 0;
    for (int i = 0; i < np; i++) {
        const char *name = cJSON_GetArrayItem(pj, i)->valuestring;
        char tn[512];
        snprintf(tn, sizeof tn, "%s.init", name);
        const lt_st_tensor *t = lt_st_find(f, tn);
        if (!t) {
            snprintf(err, sizeof err, "tensor '%s' is missing", tn);
            free(group_of);
            goto out;
        }
        pbuf[i] = malloc(t->numel * sizeof(float));
        gbuf[i] = malloc(t->numel * sizeof(float));
        if (!pbuf[i] || !gbuf[i] || lt_st_read_f32(t, pbuf[i], t->numel, err, sizeof err) != LT_OK) {
            if (!err[0]) snprintf(err, sizeof err, "out of memory");
            free(group_of);
            goto out;
        }
        if (t->numel > maxn) maxn = t->numel;
        lt_param_desc d = {.name = name, .data = pbuf[i], .grad = gbuf[i], .ndim = t->ndim, .group = group_of[i]};
        if (device) {
            size_t bytes = t->numel * sizeof(float);
            if (lt_cuda_malloc_raw(&dp[i], bytes, err, sizeof err) || lt_cuda_malloc_raw(&dg[i], bytes, err, sizeof err) ||
                lt_cuda_memcpy_raw(dp[i], pbuf[i], bytes, 0, err, sizeof err)) {
                free(group_of);
                goto out;
            }
            d.data = dp[i], d.grad = dg[i], d.device = 1;
        }
        for (int k = 0; k < t->ndim; k++) d.shape[k] = t->shape[k];
        if (lt_optim_add_param(o, &d) < 0) {
            snprintf(err, sizeof err, "%s", lt_optim_error(o));
            free(group_of);
            goto out;
        }
    }
    free(group_of);
    tmp = malloc((maxn ? maxn : 1) * sizeof(float));
    if (!tmp) goto out;
    for (int s = 1; s <= steps; s++) {
        if (lj) {
            const cJSON *lr = cJSON_GetArrayItem(lj, s - 1);
            if (!cJSON_IsNumber(lr) || lt_optim_set_lr(o, -1, lr->valuedouble) != LT_OK) {
                snprintf(err, sizeof err, "lr_per_step[%d] is missing or invalid", s - 1);
                goto out;
            }
        }
        for (int i = 0; i < np; i++) {
            const char *name = cJSON_GetArrayItem(pj, i)->valuestring;
            char tn[512];
            snprintf(tn, sizeof tn, "%s.grad.%d", name, s);
            const lt_st_tensor *t = lt_st_find(f, tn);
            if (!t || lt_st_read_f32(t, gbuf[i], t->numel, err, sizeof err) != LT_OK) {
                if (!err[0]) snprintf(err, sizeof err, "tensor '%s' is missing", tn);
                goto out;
            }
            if (device && lt_cuda_memcpy_raw(dg[i], gbuf[i], t->numel * sizeof(float), 0, err, sizeof err)) goto out;
        }
        if (lt_optim_step(o, 1.0f) != LT_OK) {
            snprintf(err, sizeof err, "step %d: %s", s, lt_optim_error(o));
            goto out;
        }
        for (int i = 0; device && i < np; i++) {
            char tn[512];
            snprintf(tn, sizeof tn, "%s.init", cJSON_GetArrayItem(pj, i)->valuestring);
            size_t n = lt_st_find(f, tn)->numel; /* present: checked when the parameters were registered */
            if (lt_optim_sync(o) != LT_OK) {
                snprintf(err, sizeof err, "step %d: %s", s, lt_optim_error(o));
                goto out;
            }
            if (lt_cuda_memcpy_raw(pbuf[i], dp[i], n * sizeof(float), 1, err, sizeof err)) goto out;
        }
        for (int i = 0; i < np; i++) {
            const char *name = cJSON_GetArrayItem(pj, i)->valuestring;
            char tn[512];
            snprintf(tn, sizeof tn, "%s.param.%d", name, s);
            const lt_st_tensor *t = lt_st_find(f, tn);
            if (!t || lt_st_read_f32(t, tmp, t->numel, err, sizeof err) != LT_OK) {
                if (!err[0]) snprintf(err, sizeof err, "tensor '%s' is missing", tn);
                goto out;
            }
            track(&w, pbuf[i], tmp, t->numel, tn);
        }
    }
    /* final states: every <name>.state.<key> of the trace must exist here and match */
    int nstates = 0;
    for (size_t j = 0; j < lt_st_count(f); j++) {
        const lt_st_tensor *t = lt_st_at(f, j);
        const char *mark = strstr(t->name, ".state.");
        if (!mark) continue;
        char pname[256];
        snprintf(pname, sizeof pname, "%.*s", (int)(mark - t->name), t->name);
        const char *key = mark + 7;
        int idx = lt_optim_find_param(o, pname);
        size_t n = idx >= 0 ? lt_optim_state_numel(o, idx, key) : 0;
        if (n != t->numel) {
            snprintf(err, sizeof err, "state '%s': ours has %zu elements, the trace %zu", t->name, n, t->numel);
            goto out;
        }
        float *ours = malloc(n * sizeof(float));
        if (!ours || lt_optim_read_state(o, idx, key, ours, n) != LT_OK ||
            lt_st_read_f32(t, tmp, n, err, sizeof err) != LT_OK) {
            free(ours);
            if (!err[0]) snprintf(err, sizeof err, "cannot read state '%s'", t->name);
            goto out;
        }
        track(&w, ours, tmp, n, t->name);
        free(ours);
        nstates++;
    }
    ok = w.worst <= tol;
    printf("%s  %s  worst %.3e  tol %.3e  optim %s  steps %d  states %d%s%s%s\n", ok ? "PASS" : "FAIL", path, w.worst,
           tol, optim, steps, nstates, device ? "  device cuda" : "", ok ? "" : "  at ", ok ? "" : w.where);
out:
    if (err[0]) printf("FAIL  %s  error: %s\n", path, err);
    for (int i = 0; pbuf && i < np; i++) free(pbuf[i]);
    for (int i = 0; gbuf && i < np; i++) free(gbuf[i]);
    lt_optim_free(o);
    o = NULL;
    for (int i = 0; dp && i < np; i++) lt_cuda_free_raw(dp[i]), lt_cuda_free_raw(dg[i]);
    free(dp), free(dg);
    free(pbuf), free(gbuf), free(tmp);
    cJSON_Delete(hj), cJSON_Delete(gj), cJSON_Delete(pj), cJSON_Delete(lj);
    return ok && !err[0];
}

int lt_cmd_replay(int argc, char **argv) {
    int first = 1, device = 0, bf16 = 0;
    for (;;) {
        if (first + 1 < argc && !strcmp(argv[first], "--device")) {
            if (!strcmp(argv[first + 1], "cuda")) device = 1;
            else if (!strcmp(argv[first + 1], "cpu")) device = 0;
            else {
                fprintf(stderr, "leantrain replay: --device %s: expected cpu or cuda\n", argv[first + 1]);
                return 2;
            }
            first += 2;
        } else if (first < argc && !strcmp(argv[first], "--bf16")) {
            bf16 = 1;
            first++;
        } else {
            break;
        }
    }
    if (argc <= first) {
        fprintf(stderr, "usage: leantrain replay [--device cpu|cuda] [--bf16] FILE...   (optim-trace-1 or gpt2-trace-1 "
                        "safetensors files; with cuda the optimizer steps, and a GPT-2 trace's model, run on the GPU; "
                        "--bf16 runs a GPT-2 trace's model in bf16 mixed precision against bf16 tolerances)\n");
        return 2;
    }
    if (device && lt_cuda_device_count() < 1) {
        char what[256];
        lt_cuda_describe(what, sizeof what);
        fprintf(stderr, "leantrain replay: --device cuda: %s\n", what);
        return 1;
    }
    int failed = 0;
    for (int i = first; i < argc; i++) {
        char err[1024];
        lt_st_file *f = NULL;
        if (lt_st_open(argv[i], &f, err, sizeof err) != LT_OK) {
            printf("FAIL  %s  error: %s\n", argv[i], err);
            failed++;
            continue;
        }
        const char *fmt = lt_st_meta(f, "format");
        if (fmt && !strcmp(fmt, "optim-trace-1")) {
            failed += !replay_optim_trace(argv[i], f, device);
        } else if (fmt && !strcmp(fmt, "gpt2-trace-1")) {
            failed += !lt_replay_gpt2(argv[i], f, device, bf16);
        } else {
            printf("FAIL  %s  error: trace format '%s' is not supported by this build (supported: optim-trace-1, "
                   "gpt2-trace-1)\n",
                   argv[i], fmt ? fmt : "(no format metadata)");
            failed++;
        }
        lt_st_close(f);
    }
    return failed ? 1 : 0;
}
