/* Optimizer state save/load as safetensors: tensors "<param>.<state>" with the
 * reference's state names; step counts, groups and options in the metadata. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json_number.h"
#include "leantrain/safetensors.h"
#include "optim/optim_internal.h"

#define STATE_FORMAT "leantrain-optim-1"

lt_status lt_optim_save(lt_optim *o, const char *path) {
    lt_st_writer *w = lt_st_writer_new();
    cJSON *params = cJSON_CreateArray(), *steps = cJSON_CreateObject(), *pgroup = cJSON_CreateObject();
    cJSON *groups = cJSON_CreateArray();
    char **names = calloc((size_t)o->nparams * (LT_MAX_STATES + 1) + 1, sizeof *names);
    int64_t *stepv = calloc((size_t)o->nparams + 1, sizeof *stepv);
    char *s_params = NULL, *s_steps = NULL, *s_pgroup = NULL, *s_groups = NULL;
    /* device parameters are written from host copies of their state */
    void **saved = calloc((size_t)o->nparams * LT_MAX_STATES + 1, sizeof *saved);
    int nviewed = 0;
    lt_status st = LT_ERR_NOMEM;
    if (!w || !params || !steps || !pgroup || !groups || !names || !stepv || !saved) goto out;
    if (o->ndevice && lt_device_resolve_all(o) != LT_OK) {
        st = LT_ERR_DEVICE;
        goto out_keep;
    }
    for (; nviewed < o->nparams; nviewed++)
        if (o->params[nviewed].device &&
            (st = lt_device_view(o, &o->params[nviewed], saved + (size_t)nviewed * LT_MAX_STATES, 1)) != LT_OK)
            goto out_keep;
    st = LT_ERR_NOMEM;
    for (int g = 0; g < o->ngroups; g++) {
        char *js = lt_hp_to_json(o->fam, &o->groups[g]);
        cJSON *obj = js ? cJSON_Parse(js) : NULL;
        free(js);
        if (!obj) goto out;
        cJSON_AddItemToArray(groups, obj);
    }
    size_t nn = 0;
    for (int i = 0; i < o->nparams; i++) {
        lt_param *p = &o->params[i];
        cJSON_AddItemToArray(params, cJSON_CreateString(p->name));
        cJSON_AddItemToObject(steps, p->name, cJSON_CreateNumber((double)p->step));
        cJSON_AddItemToObject(pgroup, p->name, cJSON_CreateNumber(p->group));
        for (int k = 0; k < p->nstate; k++) {
            size_t len = strlen(p->name) + strlen(p->st[k].name) + 2;
            names[nn] = malloc(len);
            if (!names[nn]) goto out;
            snprintf(names[nn], len, "%s.%s", p->name, p->st[k].name);
            st = lt_st_writer_add(w, names[nn], p->st[k].dtype, p->st[k].ndim, p->st[k].shape, p->st[k].data);
            nn++;
            if (st != LT_OK) {
                lt_optim_fail(o, st, "%s: cannot add state tensor '%s.%s'", path, p->name, p->st[k].name);
                goto out_keep;
            }
        }
        if (o->fam->step_tensor) { /* bitsandbytes keeps the step among the state tensors */
            size_t len = strlen(p->name) + 6;
            names[nn] = malloc(len);
            if (!names[nn]) goto out;
            snprintf(names[nn], len, "%s.step", p->name);
            stepv[i] = p->step;
            st = lt_st_writer_add(w, names[nn++], LT_DTYPE_I64, 0, NULL, &stepv[i]);
            if (st != LT_OK) {
                lt_optim_fail(o, st, "%s: cannot add tensor '%s.step'", path, p->name);
                goto out_keep;
            }
        }
    }
    st = LT_ERR_NOMEM;
    s_params = cJSON_PrintUnformatted(params);
    s_steps = cJSON_PrintUnformatted(steps);
    s_pgroup = cJSON_PrintUnformatted(pgroup);
    s_groups = cJSON_PrintUnformatted(groups);
    if (!s_params || !s_steps || !s_pgroup || !s_groups) goto out;
    if (lt_st_writer_meta(w, "format", STATE_FORMAT) || lt_st_writer_meta(w, "optim", o->name) ||
        lt_st_writer_meta(w, "optim_args", o->optim_args) || lt_st_writer_meta(w, "params", s_params) ||
        lt_st_writer_meta(w, "steps", s_steps) || lt_st_writer_meta(w, "param_groups", s_pgroup) ||
        lt_st_writer_meta(w, "groups", s_groups))
        goto out;
    {
        char err[700];
        st = lt_st_writer_write(w, path, err, sizeof err);
        if (st != LT_OK) lt_optim_fail(o, st, "%s", err);
        goto out_keep;
    }
out:
    lt_optim_fail(o, st, "%s: out of memory saving the optimizer state", path);
out_keep:
    for (int i = 0; i < nviewed; i++)
        if (o->params[i].device) lt_device_unview(o, &o->params[i], saved + (size_t)i * LT_MAX_STATES, 0);
    free(saved);
    if (names)
        for (size_t i = 0; names[i]; i++) free(names[i]);
    free(names);
    free(stepv);
    free(s_params), free(s_steps), free(s_pgroup), free(s_groups);
    cJSON_Delete(params), cJSON_Delete(steps), cJSON_Delete(pgroup), cJSON_Delete(groups);
    lt_st_writer_free(w);
    return st;
}

/* Reads a JSON metadata entry that must be present. */
static cJSON *meta_json(lt_optim *o, const lt_st_file *f, const char *path, const char *key) {
    const char *v = lt_st_meta(f, key);
    if (!v) {
        lt_optim_fail(o, LT_ERR_FORMAT, "%s: metadata '%s' is missing: not a leantrain optimizer state file", path, key);
        return NULL;
    }
    cJSON *j = cJSON_Parse(v);
    if (!j) lt_optim_fail(o, LT_ERR_FORMAT, "%s: metadata '%s' is not valid JSON", path, key);
    return j;
}

static void shape_str(char *buf, size_t len, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < ndim && used < len; d++)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (used < len) snprintf(buf + used, len - used, "]");
}

lt_status lt_optim_load(lt_optim *o, const char *path) {
    char err[700];
    lt_st_file *f = NULL;
    lt_status st = lt_st_open(path, &f, err, sizeof err);
    if (st != LT_OK) return lt_optim_fail(o, st, "%s", err);
    cJSON *steps = NULL, *groups = NULL;
    lt_group_hp *ng = NULL;
    int64_t *nsteps = NULL;
    st = LT_ERR_FORMAT;

    const char *fmt = lt_st_meta(f, "format"), *name = lt_st_meta(f, "optim");
    if (!fmt || strcmp(fmt, STATE_FORMAT)) {
        lt_optim_fail(o, st, "%s: metadata format is '%s', expected '%s'", path, fmt ? fmt : "(missing)", STATE_FORMAT);
        goto out;
    }
    if (!name || strcmp(name, o->name)) {
        lt_optim_fail(o, st, "%s: state of optimizer '%s' cannot be loaded into '%s'", path, name ? name : "(missing)",
                      o->name);
        goto out;
    }
    if (!(steps = meta_json(o, f, path, "steps")) || !(groups = meta_json(o, f, path, "groups"))) goto out;
    if (!cJSON_IsArray(groups) || cJSON_GetArraySize(groups) != o->ngroups) {
        lt_optim_fail(o, st, "%s: the file has %d parameter groups, this optimizer has %d", path,
                      cJSON_IsArray(groups) ? cJSON_GetArraySize(groups) : -1, o->ngroups);
        goto out;
    }
    ng = malloc((size_t)o->ngroups * sizeof *ng);
    nsteps = malloc(((size_t)o->nparams + 1) * sizeof *nsteps);
    if (!ng || !nsteps) {
        lt_optim_fail(o, st = LT_ERR_NOMEM, "%s: out of memory loading", path);
        goto out;
    }
    for (int g = 0; g < o->ngroups; g++) {
        ng[g] = o->groups[g];
        cJSON *obj = cJSON_GetArrayItem(groups, g), *kv;
        if (!cJSON_IsObject(obj)) {
            lt_optim_fail(o, st, "%s: group %d is not a JSON object", path, g);
            goto out;
        }
        cJSON_ArrayForEach(kv, obj) {
            char val[64], msg[600];
            if (cJSON_IsNull(kv)) snprintf(val, sizeof val, "None");
            else if (cJSON_IsBool(kv)) snprintf(val, sizeof val, "%s", cJSON_IsTrue(kv) ? "True" : "False");
            else if (cJSON_IsNumber(kv)) snprintf(val, sizeof val, "%.17g", kv->valuedouble);
            else if (cJSON_IsString(kv)) snprintf(val, sizeof val, "%s", kv->valuestring);
            else snprintf(val, sizeof val, "?");
            if (lt_hp_set(o->fam, &ng[g], kv->string, val, msg, sizeof msg) != LT_OK) {
                lt_optim_fail(o, st, "%s: group %d: %s", path, g, msg);
                goto out;
            }
        }
        if (o->fam->validate(o, &ng[g]) != LT_OK) { /* its message, with the file's name before it */
            char why[600];
            snprintf(why, sizeof why, "%s", lt_optim_error(o));
            lt_optim_fail(o, st, "%s: group %d: %s", path, g, why);
            goto out;
        }
    }
    /* every state of every parameter present, same dtype and shape; nothing else in the file */
    size_t expected = 0;
    for (int i = 0; i < o->nparams; i++) {
        lt_param *p = &o->params[i];
        long long sv;
        if (!lt_json_count(cJSON_GetObjectItemCaseSensitive(steps, p->name), LT_JSON_COUNT_MAX, &sv)) {
            lt_optim_fail(o, st, "%s: no valid step count for parameter '%s' (a whole number from 0 to 2^53)", path,
                          p->name);
            goto out;
        }
        nsteps[i] = sv;
        for (int k = 0; k < p->nstate; k++) {
            lt_state *s = &p->st[k];
            char tname[512], want[128], got[128];
            snprintf(tname, sizeof tname, "%s.%s", p->name, s->name);
            const lt_st_tensor *t = lt_st_find(f, tname);
            expected++;
            if (!t) {
                lt_optim_fail(o, st, "%s: state tensor '%s' is missing", path, tname);
                goto out;
            }
            if (t->lt_type != (int)s->dtype) {
                lt_optim_fail(o, st, "%s: state tensor '%s' has dtype %s, expected %s", path, tname, t->dtype,
                              lt_dtype_name(s->dtype));
                goto out;
            }
            int same = t->ndim == s->ndim;
            for (int d = 0; same && d < s->ndim; d++) same = t->shape[d] == s->shape[d];
            if (!same) {
                shape_str(got, sizeof got, t->ndim, t->shape);
                shape_str(want, sizeof want, s->ndim, s->shape);
                lt_optim_fail(o, st, "%s: state tensor '%s' has shape %s, expected %s", path, tname, got, want);
                goto out;
            }
            if (o->fam->check_state && o->fam->check_state(o, p, s->name, t->data, t->numel, path) != LT_OK) goto out;
        }
        if (o->fam->step_tensor) {
            char tname[512];
            snprintf(tname, sizeof tname, "%s.step", p->name);
            const lt_st_tensor *t = lt_st_find(f, tname);
            int64_t sv;
            expected++;
            if (!t || t->lt_type != LT_DTYPE_I64 || t->numel != 1) {
                lt_optim_fail(o, st, "%s: tensor '%s' (I64, one element) is missing or malformed", path, tname);
                goto out;
            }
            memcpy(&sv, t->data, sizeof sv);
            if (sv != nsteps[i]) {
                lt_optim_fail(o, st, "%s: tensor '%s' is %lld but the metadata says %lld", path, tname, (long long)sv,
                              (long long)nsteps[i]);
                goto out;
            }
        }
    }
    if (lt_st_count(f) != expected) {
        for (size_t j = 0; j < lt_st_count(f); j++) {
            const char *tn = lt_st_at(f, j)->name;
            const char *dot = strrchr(tn, '.');
            int idx = -1;
            if (dot) {
                char pn[512];
                snprintf(pn, sizeof pn, "%.*s", (int)(dot - tn), tn);
                idx = lt_optim_find_param(o, pn);
            }
            if (idx < 0 || (!lt_param_state(&o->params[idx], dot + 1) &&
                             !(o->fam->step_tensor && !strcmp(dot + 1, "step")))) {
                lt_optim_fail(o, st, "%s: tensor '%s' matches no registered parameter's state", path, tn);
                goto out;
            }
        }
    }
    /* all checked: commit (a device parameter's state through host copies) */
    if (o->ndevice && (st = lt_device_resolve_all(o)) != LT_OK) goto out;
    for (int g = 0; g < o->ngroups; g++) o->groups[g] = ng[g];
    for (int i = 0; i < o->nparams; i++) {
        lt_param *p = &o->params[i];
        void *saved[LT_MAX_STATES];
        if (p->device && (st = lt_device_view(o, p, saved, 0)) != LT_OK) goto out;
        p->step = nsteps[i];
        for (int k = 0; k < p->nstate; k++) {
            char tname[512];
            snprintf(tname, sizeof tname, "%s.%s", p->name, p->st[k].name);
            const lt_st_tensor *t = lt_st_find(f, tname);
            memcpy(p->st[k].data, t->data, t->nbytes);
        }
        /* the file's maps were checked above, so adopting them cannot fail on content */
        st = o->fam->after_load ? o->fam->after_load(o, p) : LT_OK;
        if (p->device) {
            lt_status ust = lt_device_unview(o, p, saved, 1);
            if (st == LT_OK) st = ust;
        }
        if (st != LT_OK) goto out;
    }
    st = LT_OK;
out:
    free(ng);
    free(nsteps);
    cJSON_Delete(steps);
    cJSON_Delete(groups);
    lt_st_close(f);
    return st;
}
