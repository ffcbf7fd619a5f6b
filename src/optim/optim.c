/* The optimizer object: creation from a name, groups, parameters, stepping,
 * state accounting. Families (adam.c, sgd.c, ...) supply the math. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/quant.h"
#include "optim/optim_internal.h"

lt_status lt_optim_fail(lt_optim *o, lt_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->err, sizeof o->err, fmt, ap);
    va_end(ap);
    return code;
}

lt_hparams lt_hparams_default(void) {
    lt_hparams hp = {5e-5, 0.9, 0.999, 1e-8, 0.0};
    return hp;
}

static void set_err(char *err, size_t errlen, const char *msg) {
    if (err && errlen) snprintf(err, errlen, "%s", msg);
}

lt_optim *lt_optim_create(const char *name, const char *optim_args, const lt_hparams *hp, char *err,
                          size_t errlen) {
    char msg[1024];
    const lt_name_entry *e = lt_registry_find(name);
    if (!e) {
        size_t used = (size_t)snprintf(msg, sizeof msg, "unknown optimizer name '%s'; supported:", name ? name : "(null)");
        for (int i = 0; lt_optim_info_at(i) && used < sizeof msg; i++)
            used += (size_t)snprintf(msg + used, sizeof msg - used, " %s", lt_optim_info_at(i)->name);
        set_err(err, errlen, msg);
        return NULL;
    }
    lt_optim *o = calloc(1, sizeof *o);
    lt_group_hp *g = calloc(1, sizeof *g);
    char *args_copy = strdup(optim_args ? optim_args : "");
    if (!o || !g || !args_copy) {
        free(o), free(g), free(args_copy);
        set_err(err, errlen, "out of memory creating the optimizer");
        return NULL;
    }
    o->fam = e->fam;
    snprintf(o->name, sizeof o->name, "%s", e->info.name);
    o->optim_args = args_copy;
    o->groups = g;
    o->ngroups = 1;

    const lt_family *f = e->fam;
    f->defaults(g);
    lt_hparams base = hp ? *hp : lt_hparams_default();
    g->lr = base.lr;
    if (!isnan(base.weight_decay)) g->weight_decay = base.weight_decay;
    if ((f->base_keys & K_BETA1) && !isnan(base.beta1)) g->beta1 = base.beta1;
    if ((f->base_keys & K_BETA2) && !isnan(base.beta2)) g->beta2 = base.beta2;
    if ((f->base_keys & K_EPS) && !isnan(base.eps)) g->eps = base.eps;

    if ((e->forced_args && lt_hp_apply_args(f, g, e->forced_args, "built-in options", msg, sizeof msg)) ||
        lt_hp_apply_args(f, g, optim_args, "optim_args", msg, sizeof msg)) {
        set_err(err, errlen, msg);
        lt_optim_free(o);
        return NULL;
    }
    if (f->validate(o, g) != LT_OK) {
        snprintf(msg, sizeof msg, "%s: %s", o->name, o->err);
        set_err(err, errlen, msg);
        lt_optim_free(o);
        return NULL;
    }
    return o;
}

void lt_optim_free(lt_optim *o) {
    if (!o) return;
    if (o->cuda) lt_cuda_sync(o->cuda); /* kernels may still use the state freed below */
    for (int i = 0; i < o->nqtabs; i++) free(o->qtabs[i]);
    free(o->qtabs);
    for (int i = 0; i < o->nparams; i++) {
        free(o->params[i].name);
        if (o->params[i].device) lt_device_free_states(o, &o->params[i]);
        else
            for (int k = 0; k < o->params[i].nstate; k++) free(o->params[i].st[k].data);
    }
    lt_cuda_destroy(o->cuda);
    free(o->params);
    free(o->groups);
    free(o->optim_args);
    free(o->work);
    free(o->small);
    free(o);
}

const char *lt_optim_error(const lt_optim *o) { return o ? o->err : "no optimizer"; }
const char *lt_optim_name(const lt_optim *o) { return o->name; }
int lt_optim_group_count(const lt_optim *o) { return o->ngroups; }
int lt_optim_param_count(const lt_optim *o) { return o->nparams; }

int lt_optim_add_group(lt_optim *o, const char *overrides) {
    lt_group_hp g = o->groups[0];
    char what[32], msg[700];
    snprintf(what, sizeof what, "group %d", o->ngroups);
    if (lt_hp_apply_args(o->fam, &g, overrides, what, msg, sizeof msg) != LT_OK) {
        lt_optim_fail(o, LT_ERR_ARG, "%s", msg);
        return -1;
    }
    if (o->fam->validate(o, &g) != LT_OK) return -1;
    lt_group_hp *ng = realloc(o->groups, (size_t)(o->ngroups + 1) * sizeof *ng);
    if (!ng) {
        lt_optim_fail(o, LT_ERR_NOMEM, "out of memory adding a parameter group");
        return -1;
    }
    o->groups = ng;
    o->groups[o->ngroups] = g;
    return o->ngroups++;
}

static lt_status check_group(lt_optim *o, int group, int allow_all) {
    if ((allow_all && group == -1) || (group >= 0 && group < o->ngroups)) return LT_OK;
    return lt_optim_fail(o, LT_ERR_ARG, "group %d does not exist (the optimizer has %d group%s)", group, o->ngroups,
                         o->ngroups == 1 ? "" : "s");
}

lt_status lt_optim_set_hparam(lt_optim *o, int group, const char *key, const char *value) {
    if (check_group(o, group, 1)) return LT_ERR_ARG;
    int lo = group < 0 ? 0 : group, hi = group < 0 ? o->ngroups : group + 1;
    for (int i = lo; i < hi; i++) {
        lt_group_hp g = o->groups[i];
        char msg[600];
        if (lt_hp_set(o->fam, &g, key, value, msg, sizeof msg) != LT_OK)
            return lt_optim_fail(o, LT_ERR_ARG, "group %d: %s", i, msg);
        if (o->fam->validate(o, &g) != LT_OK) return LT_ERR_ARG;
        o->groups[i] = g;
    }
    return LT_OK;
}

lt_status lt_optim_set_lr(lt_optim *o, int group, double lr) {
    if (check_group(o, group, 1)) return LT_ERR_ARG;
    if (!isfinite(lr) || lr < 0) return lt_optim_fail(o, LT_ERR_ARG, "learning rate %g is not a finite value >= 0", lr);
    int lo = group < 0 ? 0 : group, hi = group < 0 ? o->ngroups : group + 1;
    for (int i = lo; i < hi; i++) o->groups[i].lr = lr;
    return LT_OK;
}

double lt_optim_get_lr(const lt_optim *o, int group) {
    return group >= 0 && group < o->ngroups ? o->groups[group].lr : NAN;
}

lt_state *lt_param_state(lt_param *p, const char *name) {
    for (int k = 0; k < p->nstate; k++)
        if (!strcmp(p->st[k].name, name)) return &p->st[k];
    return NULL;
}

lt_status lt_param_declare(lt_optim *o, lt_param *p, const char *name, lt_dtype dt, int ndim, const int64_t *shape) {
    if (p->nstate >= LT_MAX_STATES) return lt_optim_fail(o, LT_ERR_STATE, "too many state tensors");
    lt_state *s = &p->st[p->nstate++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->dtype = dt;
    s->ndim = ndim;
    s->numel = 1;
    for (int d = 0; d < ndim; d++) {
        s->shape[d] = shape[d];
        s->numel *= (size_t)shape[d];
    }
    return LT_OK;
}

static int valid_float_dtype(lt_dtype t) { return t == LT_DTYPE_F32 || t == LT_DTYPE_BF16 || t == LT_DTYPE_F16; }

static void free_states(lt_optim *o, lt_param *p) {
    if (p->device) {
        lt_device_free_states(o, p);
        return;
    }
    for (int k = 0; k < p->nstate; k++) free(p->st[k].data);
}

int lt_optim_add_param(lt_optim *o, const lt_param_desc *d) {
    if (!d || !d->name || !*d->name) {
        lt_optim_fail(o, LT_ERR_ARG, "add_param: a parameter needs a non-empty name");
        return -1;
    }
    if (lt_optim_find_param(o, d->name) >= 0) {
        lt_optim_fail(o, LT_ERR_ARG, "add_param: parameter '%s' is already registered", d->name);
        return -1;
    }
    if (!d->data) {
        lt_optim_fail(o, LT_ERR_ARG, "add_param: parameter '%s' has no data pointer", d->name);
        return -1;
    }
    if (!valid_float_dtype(d->dtype) || !valid_float_dtype(d->grad_dtype)) {
        lt_optim_fail(o, LT_ERR_ARG, "add_param: parameter '%s': dtype must be f32, bf16 or f16", d->name);
        return -1;
    }
    if (d->ndim < 0 || d->ndim > LT_MAX_DIMS) {
        lt_optim_fail(o, LT_ERR_ARG, "add_param: parameter '%s': ndim %d is outside 0..%d", d->name, d->ndim,
                      LT_MAX_DIMS);
        return -1;
    }
    if (d->group < 0 || d->group >= o->ngroups) {
        lt_optim_fail(o, LT_ERR_ARG, "add_param: parameter '%s': group %d does not exist (%d group%s)", d->name,
                      d->group, o->ngroups, o->ngroups == 1 ? "" : "s");
        return -1;
    }
    if (d->device && lt_device_check(o, d) != LT_OK) return -1;
    if (!d->device && o->found_inf) {
        lt_optim_fail(o, LT_ERR_STATE, "add_param: parameter '%s' is in host memory, but a found-inf flag is set "
                      "(only for optimizers whose parameters are all on the device)", d->name);
        return -1;
    }
    lt_param p;
    memset(&p, 0, sizeof p);
    p.device = d->device;
    p.ndim = d->ndim;
    p.numel = 1;
    for (int k = 0; k < d->ndim; k++) {
        if (d->shape[k] <= 0) {
            lt_optim_fail(o, LT_ERR_ARG, "add_param: parameter '%s': dimension %d is %lld, must be > 0", d->name, k,
                          (long long)d->shape[k]);
            return -1;
        }
        if ((size_t)d->shape[k] > SIZE_MAX / 16 / p.numel) {
            lt_optim_fail(o, LT_ERR_ARG, "add_param: parameter '%s': size overflows", d->name);
            return -1;
        }
        p.shape[k] = d->shape[k];
        p.numel *= (size_t)d->shape[k];
    }
    p.data = d->data;
    p.grad = d->grad;
    p.dtype = d->dtype;
    p.grad_dtype = d->grad_dtype;
    p.group = d->group;
    p.name = (char *)d->name; /* the caller's, for messages until the parameter is registered with its own copy */
    if (o->fam->declare_state(o, &p, &o->groups[d->group]) != LT_OK) return -1;
    if (p.device) {
        if (lt_device_alloc_states(o, &p, &o->groups[d->group]) != LT_OK) return -1;
    } else {
        for (int k = 0; k < p.nstate; k++) {
            size_t bytes = p.st[k].numel * lt_dtype_size(p.st[k].dtype);
            size_t rounded = (bytes + 63) / 64 * 64;
            p.st[k].data = rounded ? aligned_alloc(64, rounded) : NULL;
            if (rounded && !p.st[k].data) {
                for (int j = 0; j < k; j++) free(p.st[j].data);
                lt_optim_fail(o, LT_ERR_NOMEM, "add_param: out of memory for %zu bytes of state '%s' of '%s'", bytes,
                              p.st[k].name, d->name);
                return -1;
            }
            if (rounded) memset(p.st[k].data, 0, rounded);
        }
        if (o->fam->init_state && o->fam->init_state(o, &p, &o->groups[d->group]) != LT_OK) {
            free_states(o, &p);
            return -1;
        }
    }
    p.name = strdup(d->name);
    if (o->nparams == o->cap) {
        int ncap = o->cap ? o->cap * 2 : 16;
        lt_param *np = p.name ? realloc(o->params, (size_t)ncap * sizeof *np) : NULL;
        if (!np) {
            free(p.name);
            free_states(o, &p);
            lt_optim_fail(o, LT_ERR_NOMEM, "add_param: out of memory registering '%s'", d->name);
            return -1;
        }
        o->params = np;
        o->cap = ncap;
    }
    if (!p.name) {
        free_states(o, &p);
        lt_optim_fail(o, LT_ERR_NOMEM, "add_param: out of memory registering '%s'", d->name);
        return -1;
    }
    o->params[o->nparams] = p;
    o->ndevice += p.device;
    return o->nparams++;
}

lt_status lt_optim_set_grad(lt_optim *o, int index, const void *grad, lt_dtype grad_dtype) {
    if (index < 0 || index >= o->nparams)
        return lt_optim_fail(o, LT_ERR_ARG, "set_grad: parameter index %d out of range (0..%d)", index, o->nparams - 1);
    if (!valid_float_dtype(grad_dtype))
        return lt_optim_fail(o, LT_ERR_ARG, "set_grad: '%s': gradient dtype must be f32, bf16 or f16",
                             o->params[index].name);
    if (o->params[index].device && grad && lt_cuda_check_ptr(o->cuda, grad, "the gradient"))
        return lt_optim_fail(o, LT_ERR_ARG, "set_grad: '%s': %s", o->params[index].name, lt_cuda_error(o->cuda));
    o->params[index].grad = grad;
    o->params[index].grad_dtype = grad_dtype;
    return LT_OK;
}

int lt_optim_find_param(const lt_optim *o, const char *name) {
    for (int i = 0; i < o->nparams; i++)
        if (!strcmp(o->params[i].name, name)) return i;
    return -1;
}

static lt_status step_one(lt_optim *o, lt_param *p, float gscale) {
    if (p->pend > 0 && lt_device_resolve(o, p) != LT_OK) return LT_ERR_DEVICE; /* was its last step skipped? */
    p->step++;
    p->sr_seed = o->groups[p->group].sr ? lt_sr_seed((uint32_t)(p - o->params), p->step) : 0;
    lt_status st = o->fam->step(o, p, &o->groups[p->group], gscale);
    if (st != LT_OK) p->step--;
    else if (p->device) p->pend = -1; /* queued: lt_device_step_end launches it */
    return st;
}

static lt_status check_step_args(lt_optim *o, const lt_param *p, float gscale) {
    if (!p->grad)
        return lt_optim_fail(o, LT_ERR_STATE, "step: parameter '%s' has no gradient (set it with add_param or set_grad)",
                             p->name);
    if (!isfinite(gscale)) return lt_optim_fail(o, LT_ERR_ARG, "step: grad_scale %g is not finite", gscale);
    return LT_OK;
}

lt_status lt_optim_step(lt_optim *o, float gscale) {
    for (int i = 0; i < o->nparams; i++)
        if (check_step_args(o, &o->params[i], gscale)) return LT_ERR_STATE;
    if (o->ndevice && lt_device_step_begin(o) != LT_OK) return LT_ERR_DEVICE;
    lt_status st = LT_OK;
    for (int i = 0; i < o->nparams && st == LT_OK; i++) st = step_one(o, &o->params[i], gscale);
    /* device parameters were queued: launch them (those queued before an error did step, as on the CPU) */
    if (o->ndevice) {
        char keep[sizeof o->err];
        memcpy(keep, o->err, sizeof keep);
        lt_status fst = lt_device_step_end(o);
        if (st != LT_OK) memcpy(o->err, keep, sizeof keep); /* report the first error */
        else st = fst;
    }
    return st;
}

lt_status lt_optim_step_param(lt_optim *o, int index, float gscale) {
    if (index < 0 || index >= o->nparams)
        return lt_optim_fail(o, LT_ERR_ARG, "step_param: parameter index %d out of range (0..%d)", index,
                             o->nparams - 1);
    if (check_step_args(o, &o->params[index], gscale)) return LT_ERR_STATE;
    lt_param *p = &o->params[index];
    if (!p->device) return step_one(o, p, gscale);
    if (lt_device_step_begin(o) != LT_OK) return LT_ERR_DEVICE;
    lt_status st = step_one(o, p, gscale);
    if (st != LT_OK) {
        lt_cuda_discard(o->cuda);
        return st;
    }
    return lt_device_step_end(o);
}

int64_t lt_optim_param_step(const lt_optim *o, int index) {
    if (index < 0 || index >= o->nparams) return -1;
    lt_optim *mo = (lt_optim *)o; /* reading back a found-inf record may lower the count */
    if (o->params[index].pend > 0 && lt_device_resolve(mo, &mo->params[index]) != LT_OK) return -1;
    return o->params[index].step;
}

size_t lt_optim_state_bytes(const lt_optim *o) {
    size_t total = 0;
    for (int i = 0; i < o->nparams; i++)
        for (int k = 0; k < o->params[i].nstate; k++)
            total += o->params[i].st[k].numel * lt_dtype_size(o->params[i].st[k].dtype);
    return total;
}

int lt_optim_state_names(const lt_optim *o, int index, const char **names, int cap) {
    if (index < 0 || index >= o->nparams) return 0;
    const lt_param *p = &o->params[index];
    for (int k = 0; k < p->nstate && k < cap; k++) names[k] = p->st[k].name;
    return p->nstate;
}

size_t lt_optim_state_numel(const lt_optim *o, int index, const char *state) {
    if (index < 0 || index >= o->nparams) return 0;
    lt_state *s = lt_param_state(&o->params[index], state);
    return s ? s->numel : 0;
}

lt_status lt_optim_read_state(const lt_optim *o, int index, const char *state, float *out, size_t n) {
    lt_optim *mo = (lt_optim *)o; /* only the error buffer is written */
    if (index < 0 || index >= o->nparams)
        return lt_optim_fail(mo, LT_ERR_ARG, "read_state: parameter index %d out of range", index);
    lt_state *s = lt_param_state(&o->params[index], state);
    if (!s) return lt_optim_fail(mo, LT_ERR_ARG, "read_state: '%s' has no state '%s'", o->params[index].name, state);
    if (n != s->numel)
        return lt_optim_fail(mo, LT_ERR_ARG, "read_state: '%s.%s' has %zu elements, not %zu", o->params[index].name,
                             state, s->numel, n);
    return lt_state_read_f32(mo, &o->params[index], s, out, n);
}

lt_status lt_optim_read_moment(const lt_optim *o, int index, int which, float *out, size_t n) {
    lt_optim *mo = (lt_optim *)o; /* only the error buffer is written */
    if (index < 0 || index >= o->nparams)
        return lt_optim_fail(mo, LT_ERR_ARG, "read_moment: parameter index %d out of range", index);
    lt_param *p = &o->params[index];
    if (which < 0 || which > 1 || !o->fam->moment_names[which])
        return lt_optim_fail(mo, LT_ERR_ARG, "read_moment: %s keeps no moment %d", o->name, which);
    if (n != p->numel)
        return lt_optim_fail(mo, LT_ERR_ARG, "read_moment: '%s' has %zu elements, not %zu", p->name, p->numel, n);
    if (!o->fam->moment) return lt_optim_read_state(o, index, o->fam->moment_names[which], out, n);
    if (!p->device) return o->fam->moment(mo, p, which, out);
    void *saved[LT_MAX_STATES];
    lt_status st = lt_device_view(mo, p, saved, 1);
    if (st != LT_OK) return st;
    st = o->fam->moment(mo, p, which, out);
    lt_device_unview(mo, p, saved, 0);
    return st;
}

int lt_optim_qtab(lt_optim *o, const float *map, int n, int rule) {
    for (int i = 0; i < o->nqtabs; i++)
        if (o->qtabs[i]->n == n && (int)o->qtabs[i]->rule == rule &&
            memcmp(o->qtabs[i]->map, map, (size_t)n * sizeof *map) == 0)
            return i;
    lt_qtable *t = malloc(sizeof *t);
    lt_qtable **nt = realloc(o->qtabs, (size_t)(o->nqtabs + 1) * sizeof *nt);
    if (!t || !nt) {
        free(t);
        if (nt) o->qtabs = nt;
        lt_optim_fail(o, LT_ERR_NOMEM, "out of memory for a quantization table");
        return -1;
    }
    o->qtabs = nt;
    if (lt_qtable_build(t, map, n, (lt_qrule)rule) != 0) {
        free(t);
        lt_optim_fail(o, LT_ERR_FORMAT, "quantization map of %d values is not sorted ascending and finite", n);
        return -1;
    }
    o->qtabs[o->nqtabs] = t;
    return o->nqtabs++;
}

size_t lt_optim_plan_param(lt_optim *o, const lt_param_desc *d) {
    if (!d || d->ndim < 0 || d->ndim > LT_MAX_DIMS || d->group < 0 || d->group >= o->ngroups) {
        lt_optim_fail(o, LT_ERR_ARG, "plan_param: bad parameter description");
        return (size_t)-1;
    }
    lt_param p;
    memset(&p, 0, sizeof p);
    p.ndim = d->ndim;
    p.numel = 1;
    for (int k = 0; k < d->ndim; k++) {
        if (d->shape[k] <= 0) {
            lt_optim_fail(o, LT_ERR_ARG, "plan_param: dimension %d is %lld, must be > 0", k, (long long)d->shape[k]);
            return (size_t)-1;
        }
        p.shape[k] = d->shape[k];
        p.numel *= (size_t)d->shape[k];
    }
    p.dtype = d->dtype;
    p.grad_dtype = d->grad_dtype;
    p.group = d->group;
    if (o->fam->declare_state(o, &p, &o->groups[d->group]) != LT_OK) return (size_t)-1;
    size_t total = 0;
    for (int k = 0; k < p.nstate; k++) total += p.st[k].numel * lt_dtype_size(p.st[k].dtype);
    return total;
}
