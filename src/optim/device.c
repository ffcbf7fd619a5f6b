/* Device (CUDA) parameters of the optimizer: their state memory, host views
 * of it for read-back, save and load, the per-step flush of the queued
 * kernels, the stream, and the found-inf flag with its lazily read records.
 * The kernels and every CUDA call are in kernels/cuda/ (through
 * kernels/optim_kernels_cuda.h); in a build without CUDA the calls fail with
 * a message and no device parameter can be registered. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim/optim_internal.h"

static lt_status need_cuda(lt_optim *o, const char *what) {
    if (o->cuda) return LT_OK;
    char err[400];
    o->cuda = lt_cuda_create(err, sizeof err);
    if (!o->cuda) return lt_optim_fail(o, LT_ERR_DEVICE, "%s: %s", what, err);
    return LT_OK;
}

static int paged(const lt_optim *o) { return strncmp(o->name, "paged_", 6) == 0; }

lt_status lt_device_check(lt_optim *o, const lt_param_desc *d) {
    if (d->device != 1)
        return lt_optim_fail(o, LT_ERR_ARG, "add_param: parameter '%s': device must be 0 (host) or 1 (CUDA), not %d",
                             d->name, d->device);
    char what[300];
    snprintf(what, sizeof what, "add_param: parameter '%s' (device=1)", d->name);
    if (need_cuda(o, what)) return LT_ERR_DEVICE;
    if (lt_cuda_check_ptr(o->cuda, d->data, "its data") ||
        (d->grad && lt_cuda_check_ptr(o->cuda, d->grad, "its gradient")))
        return lt_optim_fail(o, LT_ERR_ARG, "%s: %s", what, lt_cuda_error(o->cuda));
    return LT_OK;
}

lt_status lt_device_alloc_states(lt_optim *o, lt_param *p, const lt_group_hp *hp) {
    const int managed = paged(o);
    void *dev[LT_MAX_STATES] = {0};
    lt_status st = LT_OK;
    int staged = o->fam->init_state != NULL;
    /* a family that fills its fresh state does so on host copies, uploaded after */
    for (int k = 0; k < p->nstate && st == LT_OK; k++) {
        size_t bytes = p->st[k].numel * lt_dtype_size(p->st[k].dtype);
        if (lt_cuda_alloc(o->cuda, &dev[k], bytes, managed) ||
            (!staged && lt_cuda_zero(o->cuda, dev[k], bytes))) {
            st = lt_optim_fail(o, LT_ERR_DEVICE, "add_param: '%s': state '%s' (%zu bytes): %s", p->name,
                               p->st[k].name, bytes, lt_cuda_error(o->cuda));
        }
        p->st[k].data = NULL;
    }
    if (st == LT_OK && staged) {
        for (int k = 0; k < p->nstate && st == LT_OK; k++) {
            size_t bytes = p->st[k].numel * lt_dtype_size(p->st[k].dtype);
            p->st[k].data = calloc(bytes ? bytes : 1, 1);
            if (!p->st[k].data) st = lt_optim_fail(o, LT_ERR_NOMEM, "add_param: out of memory staging state of '%s'", p->name);
        }
        if (st == LT_OK) st = o->fam->init_state(o, p, hp);
        for (int k = 0; k < p->nstate && st == LT_OK; k++)
            if (lt_cuda_copy(o->cuda, dev[k], p->st[k].data, p->st[k].numel * lt_dtype_size(p->st[k].dtype), 0))
                st = lt_optim_fail(o, LT_ERR_DEVICE, "add_param: '%s': uploading state: %s", p->name,
                                   lt_cuda_error(o->cuda));
        for (int k = 0; k < p->nstate; k++) {
            free(p->st[k].data);
            p->st[k].data = NULL;
        }
    }
    for (int k = 0; k < p->nstate; k++) {
        if (st == LT_OK) p->st[k].data = dev[k];
        else lt_cuda_free(o->cuda, dev[k]);
    }
    return st;
}

void lt_device_free_states(lt_optim *o, lt_param *p) {
    for (int k = 0; k < p->nstate; k++) {
        lt_cuda_free(o->cuda, p->st[k].data);
        p->st[k].data = NULL;
    }
}

lt_status lt_device_view(lt_optim *o, lt_param *p, void **saved, int fetch) {
    for (int k = 0; k < p->nstate; k++) saved[k] = p->st[k].data;
    lt_status st = LT_OK;
    for (int k = 0; k < p->nstate; k++) {
        size_t bytes = p->st[k].numel * lt_dtype_size(p->st[k].dtype);
        void *h = malloc(bytes ? bytes : 1);
        if (!h) {
            st = lt_optim_fail(o, LT_ERR_NOMEM, "out of memory copying the state of '%s' to the host", p->name);
        } else if (fetch && lt_cuda_copy(o->cuda, h, saved[k], bytes, 1)) {
            st = lt_optim_fail(o, LT_ERR_DEVICE, "'%s.%s': copying to the host: %s", p->name, p->st[k].name,
                               lt_cuda_error(o->cuda));
        }
        p->st[k].data = h;
        if (st != LT_OK) {
            for (int j = 0; j <= k; j++) {
                free(p->st[j].data);
                p->st[j].data = saved[j];
            }
            return st;
        }
    }
    p->viewed = 1;
    return LT_OK;
}

lt_status lt_device_unview(lt_optim *o, lt_param *p, void **saved, int upload) {
    lt_status st = LT_OK;
    for (int k = 0; k < p->nstate; k++) {
        size_t bytes = p->st[k].numel * lt_dtype_size(p->st[k].dtype);
        if (upload && st == LT_OK && lt_cuda_copy(o->cuda, saved[k], p->st[k].data, bytes, 0))
            st = lt_optim_fail(o, LT_ERR_DEVICE, "'%s.%s': copying to the device: %s", p->name, p->st[k].name,
                               lt_cuda_error(o->cuda));
        free(p->st[k].data);
        p->st[k].data = saved[k];
    }
    p->viewed = 0;
    return st;
}

lt_status lt_state_read_f32(lt_optim *o, const lt_param *p, const lt_state *s, float *out, size_t n) {
    const void *src = s->data;
    void *tmp = NULL;
    if (p->device && !p->viewed) {
        size_t bytes = n * lt_dtype_size(s->dtype);
        tmp = malloc(bytes ? bytes : 1);
        if (!tmp) return lt_optim_fail(o, LT_ERR_NOMEM, "out of memory reading '%s.%s'", p->name, s->name);
        if (lt_cuda_copy(o->cuda, tmp, s->data, bytes, 1)) {
            free(tmp);
            return lt_optim_fail(o, LT_ERR_DEVICE, "reading '%s.%s': %s", p->name, s->name, lt_cuda_error(o->cuda));
        }
        src = tmp;
    }
    for (size_t i = 0; i < n; i++) {
        switch (s->dtype) {
        case LT_DTYPE_F32: out[i] = ((const float *)src)[i]; break;
        case LT_DTYPE_BF16: out[i] = lt_bf16_to_f32(((const uint16_t *)src)[i]); break;
        case LT_DTYPE_F16: out[i] = lt_f16_to_f32(((const uint16_t *)src)[i]); break;
        case LT_DTYPE_U8: out[i] = ((const uint8_t *)src)[i]; break;
        case LT_DTYPE_I32: out[i] = (float)((const int32_t *)src)[i]; break;
        case LT_DTYPE_I64: out[i] = (float)((const int64_t *)src)[i]; break;
        }
    }
    free(tmp);
    return LT_OK;
}

/* ---- found-inf records: a step's flag, read back when a step count is next needed ---- */

static lt_status resolve_seq(lt_optim *o, int64_t seq) {
    int slot = (int)(seq % LT_CUDA_RECORDS), skipped = 0;
    if (o->rec_live[slot] != seq) return LT_OK;
    if (lt_cuda_record_wait(o->cuda, slot, &skipped))
        return lt_optim_fail(o, LT_ERR_DEVICE, "reading back a step's found-inf flag: %s", lt_cuda_error(o->cuda));
    for (int i = 0; i < o->nparams; i++) {
        lt_param *p = &o->params[i];
        if (p->pend != seq) continue;
        if (skipped) p->step--;
        p->pend = 0;
    }
    o->rec_live[slot] = 0;
    return LT_OK;
}

lt_status lt_device_resolve(lt_optim *o, lt_param *p) { return p->pend > 0 ? resolve_seq(o, p->pend) : LT_OK; }

lt_status lt_device_resolve_all(lt_optim *o) {
    for (int s = 0; s < LT_CUDA_RECORDS; s++)
        if (o->rec_live[s] && resolve_seq(o, o->rec_live[s]) != LT_OK) return LT_ERR_DEVICE;
    return LT_OK;
}

lt_status lt_device_step_begin(lt_optim *o) {
    if (paged(o) && lt_cuda_prefetch(o->cuda))
        return lt_optim_fail(o, LT_ERR_DEVICE, "step: %s", lt_cuda_error(o->cuda));
    return LT_OK;
}

lt_status lt_device_step_end(lt_optim *o) {
    int flushed = lt_cuda_flush(o->cuda) == 0;
    int64_t seq = 0;
    if (flushed && o->found_inf) {
        seq = ++o->rec_seq;
        int slot = (int)(seq % LT_CUDA_RECORDS);
        if (o->rec_live[slot] && resolve_seq(o, o->rec_live[slot]) != LT_OK) return LT_ERR_DEVICE;
        if (lt_cuda_record(o->cuda, slot))
            return lt_optim_fail(o, LT_ERR_DEVICE, "step: recording the found-inf flag: %s", lt_cuda_error(o->cuda));
        o->rec_live[slot] = seq;
    }
    /* the parameters queued in this step (pend -1) wait for the record, if any */
    for (int i = 0; i < o->nparams; i++)
        if (o->params[i].pend == -1) o->params[i].pend = seq;
    if (!flushed) return lt_optim_fail(o, LT_ERR_DEVICE, "step: %s", lt_cuda_error(o->cuda));
    return LT_OK;
}

/* ---- public functions ---- */

lt_status lt_optim_set_stream(lt_optim *o, void *cuda_stream) {
    if (need_cuda(o, "set_stream")) return LT_ERR_DEVICE;
    if (lt_cuda_set_stream(o->cuda, cuda_stream))
        return lt_optim_fail(o, LT_ERR_DEVICE, "set_stream: %s", lt_cuda_error(o->cuda));
    return LT_OK;
}

lt_status lt_optim_set_found_inf(lt_optim *o, int *device_flag, int check) {
    for (int i = 0; i < o->nparams; i++)
        if (!o->params[i].device && device_flag)
            return lt_optim_fail(o, LT_ERR_STATE,
                                 "set_found_inf: parameter '%s' is in host memory; the flag is only for optimizers "
                                 "whose parameters are all on the device",
                                 o->params[i].name);
    if (!device_flag && !o->cuda) {
        o->found_inf = NULL;
        return LT_OK;
    }
    if (need_cuda(o, "set_found_inf")) return LT_ERR_DEVICE;
    if (lt_cuda_set_found_inf(o->cuda, device_flag, check))
        return lt_optim_fail(o, LT_ERR_ARG, "set_found_inf: %s", lt_cuda_error(o->cuda));
    o->found_inf = device_flag;
    return LT_OK;
}

lt_status lt_optim_check_finite(lt_optim *o, float grad_scale) {
    if (!o->found_inf) return lt_optim_fail(o, LT_ERR_STATE, "check_finite: no found-inf flag is set (set_found_inf)");
    lt_ktensor *t = calloc((size_t)o->nparams + 1, sizeof *t);
    if (!t) return lt_optim_fail(o, LT_ERR_NOMEM, "check_finite: out of memory");
    int n = 0;
    for (int i = 0; i < o->nparams; i++) {
        const lt_param *p = &o->params[i];
        if (!p->device) continue;
        if (!p->grad) {
            free(t);
            return lt_optim_fail(o, LT_ERR_STATE, "check_finite: parameter '%s' has no gradient", p->name);
        }
        t[n++] = lt_param_ktensor(p, grad_scale);
    }
    int rc = lt_cuda_check_finite(o->cuda, t, n);
    free(t);
    return rc ? lt_optim_fail(o, LT_ERR_DEVICE, "check_finite: %s", lt_cuda_error(o->cuda)) : LT_OK;
}

lt_status lt_optim_sync(lt_optim *o) {
    if (!o->cuda) return LT_OK;
    return lt_cuda_sync(o->cuda) ? lt_optim_fail(o, LT_ERR_DEVICE, "sync: %s", lt_cuda_error(o->cuda)) : LT_OK;
}

int lt_optim_device_tuning(lt_optim *o, char *buf, size_t len) {
    if (len) buf[0] = 0;
    return o->cuda ? lt_cuda_tune_report(o->cuda, buf, len) : 0;
}
