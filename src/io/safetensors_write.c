/* safetensors writer. The header is emitted by hand rather than through
 * cJSON's printer, which would write large integers in exponent form
 * ("1e+16") that strict readers reject, and whose output order we want to
 * control. Everything the reader checks is checked here first, so a file this
 * writer produces always reads back. */
#include "leantrain/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"
#include "io/safetensors_internal.h"
#include "io/utf8.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "leantrain's safetensors I/O assumes a little-endian host"
#endif

typedef struct st_wtensor {
    char *name;
    lt_dtype dtype;
    int ndim;
    int64_t shape[LT_ST_MAX_DIMS];
    const void *data;
    size_t nbytes;
} st_wtensor;

struct lt_st_writer {
    st_wtensor *t;
    size_t n, cap;
    char **keys, **vals;
    size_t nmeta, meta_cap;
};

/* A growable byte buffer; `failed` makes every later append a no-op so that
 * out-of-memory is checked once at the end. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    int failed;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (n > SIZE_MAX - b->len - 1) {
        b->failed = 1;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_u64(sbuf *b, unsigned long long v) {
    char tmp[24];
    int k = snprintf(tmp, sizeof tmp, "%llu", v);
    sb_put(b, tmp, (size_t)k);
}

/* A JSON string literal. Names are valid UTF-8 (checked on entry), so only
 * quotes, backslashes and control characters need escaping. */
static void sb_json_str(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char tmp[8];
        if (*p == '"' || *p == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)*p;
            sb_put(b, tmp, 2);
        } else if (*p < 0x20) {
            snprintf(tmp, sizeof tmp, "\\u%04x", *p);
            sb_put(b, tmp, 6);
        } else {
            sb_put(b, (const char *)p, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static int valid_text(const char *s) {
    size_t n = strlen(s);
    return lt_utf8_check(s, n) == n;
}

lt_st_writer *lt_st_writer_new(void) { return calloc(1, sizeof(lt_st_writer)); }

void lt_st_writer_free(lt_st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) free(w->t[i].name);
    for (size_t i = 0; i < w->nmeta; i++) {
        free(w->keys[i]);
        free(w->vals[i]);
    }
    free(w->t);
    free(w->keys);
    free(w->vals);
    free(w);
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

lt_status lt_st_writer_add(lt_st_writer *w, const char *name, lt_dtype dtype, int ndim,
                           const int64_t *shape, const void *data) {
    if (!w || !name || !*name || strcmp(name, "__metadata__") == 0 || !valid_text(name))
        return LT_ERR_ARG;
    size_t esize = lt_dtype_size(dtype);
    if (esize == 0 || ndim < 0 || ndim > LT_ST_MAX_DIMS || (ndim > 0 && !shape)) return LT_ERR_ARG;
    size_t numel = 1;
    int overflow = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) return LT_ERR_ARG;
        uint64_t v = (uint64_t)shape[d];
        /* Offsets must stay below 2^53 for any JSON reader to read them exactly. */
        if (v >= ((uint64_t)1 << 53)) return LT_ERR_ARG;
        if (v > SIZE_MAX || (v && numel > SIZE_MAX / (size_t)v)) overflow = 1;
        else numel *= (size_t)v;
    }
    if (numel && overflow) return LT_ERR_ARG;
    if (numel > SIZE_MAX / esize) return LT_ERR_ARG;
    size_t nbytes = numel * esize;
    if (nbytes && !data) return LT_ERR_ARG;
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0) return LT_ERR_ARG;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        if (cap > SIZE_MAX / sizeof *w->t) return LT_ERR_NOMEM;
        st_wtensor *t = realloc(w->t, cap * sizeof *t);
        if (!t) return LT_ERR_NOMEM;
        w->t = t;
        w->cap = cap;
    }
    st_wtensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = dup_str(name);
    if (!t->name) return LT_ERR_NOMEM;
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    t->data = data;
    t->nbytes = nbytes;
    w->n++;
    return LT_OK;
}

lt_status lt_st_writer_meta(lt_st_writer *w, const char *key, const char *value) {
    if (!w || !key || !value || !valid_text(key) || !valid_text(value)) return LT_ERR_ARG;
    char *v = dup_str(value);
    if (!v) return LT_ERR_NOMEM;
    for (size_t i = 0; i < w->nmeta; i++)
        if (strcmp(w->keys[i], key) == 0) {
            free(w->vals[i]);
            w->vals[i] = v;
            return LT_OK;
        }
    if (w->nmeta == w->meta_cap) {
        size_t cap = w->meta_cap ? w->meta_cap * 2 : 8;
        char **k = realloc(w->keys, cap * sizeof *k);
        if (k) w->keys = k;
        char **vv = k ? realloc(w->vals, cap * sizeof *vv) : NULL;
        if (vv) w->vals = vv;
        if (!k || !vv) {
            free(v);
            return LT_ERR_NOMEM;
        }
        w->meta_cap = cap;
    }
    char *k = dup_str(key);
    if (!k) {
        free(v);
        return LT_ERR_NOMEM;
    }
    w->keys[w->nmeta] = k;
    w->vals[w->nmeta] = v;
    w->nmeta++;
    return LT_OK;
}

/* Builds the padded header; returns its length or 0 when out of memory. */
static size_t build_header(const lt_st_writer *w, sbuf *b, uint64_t *data_len) {
    uint64_t off = 0;
    sb_put(b, "{", 1);
    if (w->nmeta) {
        sb_str(b, "\"__metadata__\":{");
        for (size_t i = 0; i < w->nmeta; i++) {
            if (i) sb_put(b, ",", 1);
            sb_json_str(b, w->keys[i]);
            sb_put(b, ":", 1);
            sb_json_str(b, w->vals[i]);
        }
        sb_put(b, "}", 1);
    }
    for (size_t i = 0; i < w->n; i++) {
        const st_wtensor *t = &w->t[i];
        if (i || w->nmeta) sb_put(b, ",", 1);
        sb_json_str(b, t->name);
        sb_str(b, ":{\"dtype\":\"");
        sb_str(b, lt_dtype_name(t->dtype));
        sb_str(b, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            if (d) sb_put(b, ",", 1);
            sb_u64(b, (unsigned long long)t->shape[d]);
        }
        sb_str(b, "],\"data_offsets\":[");
        sb_u64(b, off);
        sb_put(b, ",", 1);
        off += t->nbytes; /* the caller checked that the sum fits */
        sb_u64(b, off);
        sb_str(b, "]}");
    }
    sb_put(b, "}", 1);
    /* Pad with spaces (allowed by the format) so that the data section starts
     * 8-byte aligned and a mapped reader can use the tensors in place. */
    while (!b->failed && (8 + b->len) % 8 != 0) sb_put(b, " ", 1);
    *data_len = off;
    return b->failed ? 0 : b->len;
}

/* Checks the sizes and builds the header and its 8-byte length prefix; on
 * failure returns the code and writes "<label>: <reason>" into err. */
static lt_status prepare(const lt_st_writer *w, const char *label, sbuf *b, unsigned char lenbuf[8],
                         char *err, size_t errlen) {
    uint64_t total = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (w->t[i].nbytes >= ((uint64_t)1 << 53) - total) {
            if (err && errlen)
                snprintf(err, errlen, "%s: the tensors add up to more than 2^53 bytes", label);
            return LT_ERR_ARG;
        }
        total += w->t[i].nbytes;
    }
    uint64_t data_len = 0;
    size_t hlen = build_header(w, b, &data_len);
    if (!hlen) {
        if (err && errlen) snprintf(err, errlen, "%s: out of memory building the header", label);
        return LT_ERR_NOMEM;
    }
    if (hlen > LT_ST_MAX_HEADER) {
        if (err && errlen)
            snprintf(err, errlen, "%s: header of %zu bytes exceeds the maximum of %u", label, hlen,
                     LT_ST_MAX_HEADER);
        return LT_ERR_ARG;
    }
    for (int i = 0; i < 8; i++) lenbuf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    return LT_OK;
}

lt_status lt_st_writer_write(lt_st_writer *w, const char *path, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!w || !path || !*path) {
        if (err && errlen) snprintf(err, errlen, "lt_st_writer_write: no writer or path given");
        return LT_ERR_ARG;
    }
    sbuf b = {0};
    unsigned char lenbuf[8];
    lt_status rc = prepare(w, path, &b, lenbuf, err, errlen);
    if (rc != LT_OK) {
        free(b.p);
        return rc;
    }
    lt_atomic_file *af;
    rc = lt_atomic_open(path, &af, err, errlen);
    if (rc != LT_OK) {
        free(b.p);
        return rc;
    }
    rc = lt_atomic_write(af, lenbuf, 8, err, errlen);
    if (rc == LT_OK) rc = lt_atomic_write(af, b.p, b.len, err, errlen);
    /* Tensor data goes straight from the caller's buffers: no second copy. */
    for (size_t i = 0; rc == LT_OK && i < w->n; i++)
        if (w->t[i].nbytes) rc = lt_atomic_write(af, w->t[i].data, w->t[i].nbytes, err, errlen);
    free(b.p);
    if (rc != LT_OK) {
        lt_atomic_abort(af);
        return rc;
    }
    return lt_atomic_commit(af, err, errlen);
}

lt_status lt_st_writer_to_memory(const lt_st_writer *w, unsigned char **out, size_t *len) {
    if (!out || !len) return LT_ERR_ARG;
    *out = NULL;
    *len = 0;
    if (!w) return LT_ERR_ARG;
    sbuf b = {0};
    unsigned char lenbuf[8];
    lt_status rc = prepare(w, "memory", &b, lenbuf, NULL, 0);
    if (rc != LT_OK) {
        free(b.p);
        return rc;
    }
    size_t total = 8 + b.len;
    for (size_t i = 0; i < w->n; i++) {
        if (w->t[i].nbytes > SIZE_MAX - total) { /* only possible with a 32-bit size_t */
            free(b.p);
            return LT_ERR_NOMEM;
        }
        total += w->t[i].nbytes;
    }
    unsigned char *p = malloc(total ? total : 1);
    if (!p) {
        free(b.p);
        return LT_ERR_NOMEM;
    }
    memcpy(p, lenbuf, 8);
    memcpy(p + 8, b.p, b.len);
    size_t at = 8 + b.len;
    for (size_t i = 0; i < w->n; i++) {
        if (w->t[i].nbytes) memcpy(p + at, w->t[i].data, w->t[i].nbytes);
        at += w->t[i].nbytes;
    }
    free(b.p);
    *out = p;
    *len = total;
    return LT_OK;
}
