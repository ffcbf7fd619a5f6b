/* safetensors reader. Everything is validated when the file is opened, so a
 * caller holding an lt_st_file can trust every tensor's dtype, shape and byte
 * span without further checks; the rules are listed in safetensors.h.
 *
 * The JSON header is parsed with cJSON, which is more lenient than the format
 * (it skips a UTF-8 BOM, treats every byte <= 0x20 as whitespace, accepts raw
 * control characters inside strings, numbers such as "007" or "1." and
 * keeps duplicate keys), so those cases
 * are checked here before and after parsing. */
#include "leantrain/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/utf8.h"

/* Tensor data is little-endian and is read with plain memcpy. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "leantrain's safetensors I/O assumes a little-endian host"
#endif

/* A tensor plus its offsets, which only matter while validating. */
typedef struct st_entry {
    lt_st_tensor t;
    uint64_t begin, end;
} st_entry;

struct lt_st_file {
    void *map; /* the mmap of lt_st_open, NULL for lt_st_parse */
    size_t map_len;
    st_entry *entries; /* sorted by data offset */
    size_t count;
    const st_entry **by_name; /* sorted by name, for lt_st_find */
    const char **meta_keys;   /* sorted by key */
    const char **meta_vals;
    size_t meta_count;
    char *strings; /* one allocation holding every name, key and value */
};

typedef struct st_ctx {
    const char *label;
    char *err;
    size_t errlen;
} st_ctx;

/* From 2^53 on, doubles skip integers, so a JSON number there may have been
 * rounded by the parser and cannot be trusted as a size or an offset. */
#define ST_MAX_EXACT 9007199254740992.0 /* 2^53 */

static lt_status fail(const st_ctx *c, lt_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static lt_status fail(const st_ctx *c, lt_status code, const char *fmt, ...) {
    if (c->err && c->errlen) {
        int k = snprintf(c->err, c->errlen, "%s: ", c->label);
        if (k >= 0 && (size_t)k < c->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(c->err + k, c->errlen - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return code;
}

static const struct {
    const char *name;
    size_t size;
    int lt_type;
} k_dtypes[] = {
    {"F64", 8, -1},
    {"F32", 4, LT_DTYPE_F32},
    {"F16", 2, LT_DTYPE_F16},
    {"BF16", 2, LT_DTYPE_BF16},
    {"I64", 8, LT_DTYPE_I64},
    {"I32", 4, LT_DTYPE_I32},
    {"I16", 2, -1},
    {"I8", 1, -1},
    {"U8", 1, LT_DTYPE_U8},
    {"U16", 2, -1},
    {"U32", 4, -1},
    {"U64", 8, -1},
    {"BOOL", 1, -1},
    {"F8_E4M3", 1, -1},
    {"F8_E5M2", 1, -1},
};

static int is_json_space(unsigned char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static int is_digit(unsigned char ch) { return ch >= '0' && ch <= '9'; }

/* The end of the JSON number starting at h[i], or 0 when it breaks the JSON
 * grammar. cJSON hands anything made of [0-9.eE+-] to strtod, so it would
 * take "007", "1." or "1.e5", which other readers reject. */
static size_t json_number_end(const unsigned char *h, size_t n, size_t i) {
    size_t j = i;
    if (h[j] == '-') j++;
    if (j < n && h[j] == '0') {
        j++;
    } else if (j < n && is_digit(h[j])) {
        while (j < n && is_digit(h[j])) j++;
    } else {
        return 0;
    }
    if (j < n && h[j] == '.') {
        if (++j >= n || !is_digit(h[j])) return 0;
        while (j < n && is_digit(h[j])) j++;
    }
    if (j < n && (h[j] == 'e' || h[j] == 'E')) {
        j++;
        if (j < n && (h[j] == '+' || h[j] == '-')) j++;
        if (j >= n || !is_digit(h[j])) return 0;
        while (j < n && is_digit(h[j])) j++;
    }
    if (j < n && (is_digit(h[j]) || h[j] == '.' || h[j] == 'e' || h[j] == 'E' || h[j] == '+' ||
                  h[j] == '-'))
        return 0;
    return j;
}

/* Rejects what the format forbids but cJSON would let through: invalid
 * UTF-8, control characters (raw NUL would silently cut a C string short) and
 * the \u0000 escape, which cJSON decodes into a NUL that truncates the name,
 * so "a\u0000b" would alias "a"; and numbers outside the JSON grammar. */
static lt_status scan_header(const st_ctx *c, const unsigned char *h, size_t n) {
    size_t bad = lt_utf8_check(h, n);
    if (bad != n) return fail(c, LT_ERR_FORMAT, "header is not valid UTF-8 (byte %zu)", bad);
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = h[i];
        if (in_str) {
            if (ch < 0x20)
                return fail(c, LT_ERR_FORMAT,
                            "header has control character 0x%02x inside a string (byte %zu)", ch,
                            i);
            if (ch == '\\') {
                if (n - i > 5 && memcmp(h + i + 1, "u0000", 5) == 0)
                    return fail(c, LT_ERR_FORMAT,
                                "header has a \\u0000 escape (byte %zu): NUL characters in names "
                                "and metadata are not supported",
                                i);
                i++; /* the escaped character cannot end the string */
            } else if (ch == '"') {
                in_str = 0;
            }
        } else if (ch == '"') {
            in_str = 1;
        } else if (ch == '-' || is_digit(ch)) {
            /* Outside strings a digit can only be part of a number. */
            size_t j = json_number_end(h, n, i);
            if (j == 0)
                return fail(c, LT_ERR_FORMAT, "header has a malformed JSON number (byte %zu)", i);
            i = j - 1;
        } else if (ch < 0x20 && !is_json_space(ch)) {
            return fail(c, LT_ERR_FORMAT, "header has control character 0x%02x (byte %zu)", ch, i);
        }
    }
    return LT_OK;
}

/* Reads an exact non-negative integer that a double represents without loss. */
static int get_count(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return 0;
    double d = item->valuedouble;
    if (!isfinite(d) || d < 0 || d >= ST_MAX_EXACT || d != floor(d)) return 0;
    *out = (uint64_t)d;
    return 1;
}

/* Room for "[" + LT_ST_MAX_DIMS comma-separated int64 values + "]". */
#define ST_SHAPE_BUF (LT_ST_MAX_DIMS * 21 + 3)

/* Writes "[3,4]" (or "[]") into buf for messages. */
static const char *fmt_shape(char *buf, size_t len, const lt_st_tensor *t) {
    size_t k = 0;
    buf[0] = 0;
    k += (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < t->ndim && k < len; d++)
        k += (size_t)snprintf(buf + k, len - k, d ? ",%lld" : "%lld", (long long)t->shape[d]);
    if (k < len) snprintf(buf + k, len - k, "]");
    return buf;
}

/* Describes a JSON value briefly for "is X, not Y" messages. */
static const char *describe(const cJSON *v, char *buf, size_t len) {
    if (cJSON_IsNumber(v)) {
        /* The shortest form that reads back as the same double: "0.1", not
         * "0.10000000000000001". */
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, len, "%.*g", prec, v->valuedouble);
            if (strtod(buf, NULL) == v->valuedouble) break;
        }
    } else if (cJSON_IsString(v)) snprintf(buf, len, "a string");
    else if (cJSON_IsArray(v)) snprintf(buf, len, "an array");
    else if (cJSON_IsObject(v)) snprintf(buf, len, "an object");
    else if (cJSON_IsBool(v)) snprintf(buf, len, "a boolean");
    else if (cJSON_IsNull(v)) snprintf(buf, len, "null");
    else snprintf(buf, len, "an unknown value");
    return buf;
}

static lt_status parse_entry(const st_ctx *c, const cJSON *item, st_entry *e) {
    const char *name = item->string;
    char what[64];
    memset(e, 0, sizeof *e);
    e->t.name = name;
    if (!cJSON_IsObject(item))
        return fail(c, LT_ERR_FORMAT, "tensor '%s': entry is %s, not an object", name,
                    describe(item, what, sizeof what));
    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL;
    for (const cJSON *k = item->child; k; k = k->next) {
        const cJSON **slot;
        if (strcmp(k->string, "dtype") == 0) slot = &dtype;
        else if (strcmp(k->string, "shape") == 0) slot = &shape;
        else if (strcmp(k->string, "data_offsets") == 0) slot = &offs;
        else
            return fail(c, LT_ERR_FORMAT,
                        "tensor '%s': unexpected key '%s' (allowed: dtype, shape, data_offsets)",
                        name, k->string);
        if (*slot) return fail(c, LT_ERR_FORMAT, "tensor '%s': duplicate key '%s'", name, k->string);
        *slot = k;
    }
    if (!dtype) return fail(c, LT_ERR_FORMAT, "tensor '%s': missing 'dtype'", name);
    if (!shape) return fail(c, LT_ERR_FORMAT, "tensor '%s': missing 'shape'", name);
    if (!offs) return fail(c, LT_ERR_FORMAT, "tensor '%s': missing 'data_offsets'", name);

    if (!cJSON_IsString(dtype))
        return fail(c, LT_ERR_FORMAT, "tensor '%s': dtype is %s, not a string", name,
                    describe(dtype, what, sizeof what));
    size_t di = sizeof k_dtypes / sizeof k_dtypes[0];
    for (size_t i = 0; i < sizeof k_dtypes / sizeof k_dtypes[0]; i++)
        if (strcmp(dtype->valuestring, k_dtypes[i].name) == 0) di = i;
    if (di == sizeof k_dtypes / sizeof k_dtypes[0])
        return fail(c, LT_ERR_FORMAT, "tensor '%s': unknown dtype '%.32s'", name,
                    dtype->valuestring);
    snprintf(e->t.dtype, sizeof e->t.dtype, "%s", k_dtypes[di].name);
    e->t.elem_size = k_dtypes[di].size;
    e->t.lt_type = k_dtypes[di].lt_type;

    if (!cJSON_IsArray(shape))
        return fail(c, LT_ERR_FORMAT, "tensor '%s': shape is %s, not an array", name,
                    describe(shape, what, sizeof what));
    int nd = 0;
    size_t numel = 1;
    int overflow = 0;
    for (const cJSON *d = shape->child; d; d = d->next) {
        uint64_t v;
        if (nd == LT_ST_MAX_DIMS)
            return fail(c, LT_ERR_FORMAT, "tensor '%s': shape has %d dimensions, more than %d",
                        name, cJSON_GetArraySize(shape), LT_ST_MAX_DIMS);
        if (!get_count(d, &v))
            return fail(c, LT_ERR_FORMAT, "tensor '%s': shape[%d] is %s, not a non-negative integer",
                        name, nd, describe(d, what, sizeof what));
        e->t.shape[nd++] = (int64_t)v;
        /* A zero dimension makes the product 0 however large the others are,
         * so overflow only counts if no dimension is zero. */
        if (v > SIZE_MAX || (v && numel > SIZE_MAX / (size_t)v)) overflow = 1;
        else numel *= (size_t)v;
    }
    e->t.ndim = nd;
    char sh[ST_SHAPE_BUF];
    if (numel != 0 && overflow)
        return fail(c, LT_ERR_FORMAT, "tensor '%s': shape %s has too many elements", name,
                    fmt_shape(sh, sizeof sh, &e->t));
    e->t.numel = numel;
    if (numel > SIZE_MAX / e->t.elem_size)
        return fail(c, LT_ERR_FORMAT, "tensor '%s': shape %s x %s does not fit in memory", name,
                    fmt_shape(sh, sizeof sh, &e->t), e->t.dtype);
    e->t.nbytes = numel * e->t.elem_size;

    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return fail(c, LT_ERR_FORMAT, "tensor '%s': data_offsets must be an array of 2 integers",
                    name);
    if (!get_count(offs->child, &e->begin))
        return fail(c, LT_ERR_FORMAT,
                    "tensor '%s': data_offsets[0] is %s, not a non-negative integer", name,
                    describe(offs->child, what, sizeof what));
    if (!get_count(offs->child->next, &e->end))
        return fail(c, LT_ERR_FORMAT,
                    "tensor '%s': data_offsets[1] is %s, not a non-negative integer", name,
                    describe(offs->child->next, what, sizeof what));
    if (e->end < e->begin)
        return fail(c, LT_ERR_FORMAT, "tensor '%s': data_offsets [%llu, %llu] end before they begin",
                    name, (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end - e->begin != (uint64_t)e->t.nbytes) {
        return fail(c, LT_ERR_FORMAT,
                    "tensor '%s': shape %s x %s = %zu bytes but data_offsets span %llu bytes", name,
                    fmt_shape(sh, sizeof sh, &e->t), e->t.dtype, e->t.nbytes,
                    (unsigned long long)(e->end - e->begin));
    }
    return LT_OK;
}

static int cmp_offset(const void *a, const void *b) {
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->t.name, y->t.name); /* deterministic order for empty tensors */
}

static int cmp_name(const void *a, const void *b) {
    const st_entry *const *x = a, *const *y = b;
    return strcmp((*x)->t.name, (*y)->t.name);
}

static int cmp_item_key(const void *a, const void *b) {
    const cJSON *const *x = a, *const *y = b;
    return strcmp((*x)->string, (*y)->string);
}

/* Copies s into the arena at *pos and returns the copy. */
static const char *arena_put(char *arena, size_t *pos, const char *s) {
    size_t n = strlen(s) + 1;
    char *dst = arena + *pos;
    memcpy(dst, s, n);
    *pos += n;
    return dst;
}

static lt_status parse_impl(const unsigned char *buf, size_t len, const st_ctx *c,
                            lt_st_file **out) {
    lt_status rc = LT_OK;
    char *hcopy = NULL;
    cJSON *root = NULL;
    const cJSON **meta = NULL;
    lt_st_file *f = NULL;

    if (len < 8)
        return fail(c, LT_ERR_FORMAT, "file is %zu bytes, too short for the 8-byte header length",
                    len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen > LT_ST_MAX_HEADER)
        return fail(c, LT_ERR_FORMAT, "header length %llu exceeds the maximum of %u bytes",
                    (unsigned long long)hlen, LT_ST_MAX_HEADER);
    if (hlen > len - 8)
        return fail(c, LT_ERR_FORMAT,
                    "header length %llu goes beyond the end of the file (%zu bytes)",
                    (unsigned long long)hlen, len);
    const size_t n = (size_t)hlen;
    const unsigned char *h = buf + 8;
    const unsigned char *data = h + n;
    const size_t data_len = len - 8 - n;

    if ((rc = scan_header(c, h, n)) != LT_OK) return rc;
    if (n == 0 || h[0] != '{')
        return fail(c, LT_ERR_FORMAT, "header is not a JSON object (it must start with '{')");

    /* A NUL-terminated private copy: libcjson is not built with sanitizers, so
     * an over-read there would go unnoticed; the terminator bounds it. */
    hcopy = malloc(n + 1);
    if (!hcopy) return fail(c, LT_ERR_NOMEM, "out of memory copying the %zu-byte header", n);
    memcpy(hcopy, h, n);
    hcopy[n] = 0;
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(hcopy, n, &end, 0);
    if (!root) {
        size_t at = end && end >= hcopy && end <= hcopy + n ? (size_t)(end - hcopy) : 0;
        rc = fail(c, LT_ERR_FORMAT, "header is not valid JSON (error near byte %zu)", at);
        goto out;
    }
    for (const char *p = end; p < hcopy + n; p++) {
        /* The format allows padding the header with spaces; serde_json, used
         * by the reference reader, also allows the other JSON whitespace. */
        if (!is_json_space((unsigned char)*p)) {
            rc = fail(c, LT_ERR_FORMAT, "header has trailing data after the JSON object (byte %zu)",
                      (size_t)(p - hcopy));
            goto out;
        }
    }
    if (!cJSON_IsObject(root)) {
        rc = fail(c, LT_ERR_FORMAT, "header is not a JSON object (it must start with '{')");
        goto out;
    }

    /* Pass 1: find __metadata__ and count tensors. */
    const cJSON *meta_obj = NULL;
    size_t ntens = 0, nmeta = 0, strbytes = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        if (strcmp(it->string, "__metadata__") == 0) {
            if (meta_obj) {
                rc = fail(c, LT_ERR_FORMAT, "duplicate key '__metadata__'");
                goto out;
            }
            meta_obj = it;
        } else {
            ntens++;
            strbytes += strlen(it->string) + 1;
        }
    }

    f = calloc(1, sizeof *f);
    if (!f) {
        rc = fail(c, LT_ERR_NOMEM, "out of memory");
        goto out;
    }

    /* Metadata: an object of strings, kept sorted by key. */
    if (meta_obj) {
        if (!cJSON_IsObject(meta_obj)) {
            char what[64];
            rc = fail(c, LT_ERR_FORMAT, "__metadata__ is %s, not an object",
                      describe(meta_obj, what, sizeof what));
            goto out;
        }
        for (const cJSON *m = meta_obj->child; m; m = m->next) {
            if (!cJSON_IsString(m)) {
                char what[64];
                rc = fail(c, LT_ERR_FORMAT, "__metadata__ value of key '%s' is %s, not a string",
                          m->string, describe(m, what, sizeof what));
                goto out;
            }
            nmeta++;
            strbytes += strlen(m->string) + 1 + strlen(m->valuestring) + 1;
        }
        if (nmeta) {
            /* calloc checks the count x size product for overflow. */
            meta = calloc(nmeta, sizeof *meta);
            f->meta_keys = calloc(nmeta, sizeof *f->meta_keys);
            f->meta_vals = calloc(nmeta, sizeof *f->meta_vals);
            if (!meta || !f->meta_keys || !f->meta_vals) {
                rc = fail(c, LT_ERR_NOMEM, "out of memory for %zu metadata entries", nmeta);
                goto out;
            }
            size_t i = 0;
            for (const cJSON *m = meta_obj->child; m; m = m->next) meta[i++] = m;
            qsort(meta, nmeta, sizeof *meta, cmp_item_key);
            for (i = 1; i < nmeta; i++)
                if (strcmp(meta[i - 1]->string, meta[i]->string) == 0) {
                    rc = fail(c, LT_ERR_FORMAT, "duplicate __metadata__ key '%s'", meta[i]->string);
                    goto out;
                }
        }
    }

    /* Tensors: each entry on its own, then names, then the layout. */
    if (ntens) {
        f->entries = calloc(ntens, sizeof *f->entries);
        f->by_name = calloc(ntens, sizeof *f->by_name);
        if (!f->entries || !f->by_name) {
            rc = fail(c, LT_ERR_NOMEM, "out of memory for %zu tensors", ntens);
            goto out;
        }
    }
    size_t k = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        if (it == meta_obj) continue;
        if ((rc = parse_entry(c, it, &f->entries[k])) != LT_OK) goto out;
        if (f->entries[k].end > data_len) {
            rc = fail(c, LT_ERR_FORMAT,
                      "tensor '%s': data_offsets [%llu, %llu] go beyond the data section (%zu "
                      "bytes)",
                      it->string, (unsigned long long)f->entries[k].begin,
                      (unsigned long long)f->entries[k].end, data_len);
            goto out;
        }
        k++;
    }
    f->count = ntens;
    if (ntens) qsort(f->entries, ntens, sizeof *f->entries, cmp_offset);
    for (size_t i = 0; i < ntens; i++) f->by_name[i] = &f->entries[i];
    if (ntens) qsort(f->by_name, ntens, sizeof *f->by_name, cmp_name);
    for (size_t i = 1; i < ntens; i++)
        if (strcmp(f->by_name[i - 1]->t.name, f->by_name[i]->t.name) == 0) {
            rc = fail(c, LT_ERR_FORMAT, "duplicate tensor name '%s'", f->by_name[i]->t.name);
            goto out;
        }
    /* The data section must be tiled exactly: every byte belongs to one tensor. */
    uint64_t pos = 0;
    const st_entry *prev = NULL;
    for (size_t i = 0; i < ntens; i++) {
        const st_entry *e = &f->entries[i];
        if (e->begin < pos) {
            rc = fail(c, LT_ERR_FORMAT,
                      "tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s' [%llu, %llu]",
                      e->t.name, (unsigned long long)e->begin, (unsigned long long)e->end,
                      prev->t.name, (unsigned long long)prev->begin,
                      (unsigned long long)prev->end);
            goto out;
        }
        if (e->begin > pos) {
            rc = fail(c, LT_ERR_FORMAT,
                      "gap in the data section: bytes [%llu, %llu) before tensor '%s' belong to no "
                      "tensor",
                      (unsigned long long)pos, (unsigned long long)e->begin, e->t.name);
            goto out;
        }
        if (e->end > e->begin) prev = e;
        pos = e->end;
    }
    if (pos != data_len) {
        rc = fail(c, LT_ERR_FORMAT,
                  "data section is %zu bytes but the tensors cover only %llu (bytes [%llu, %zu) "
                  "belong to no tensor)",
                  data_len, (unsigned long long)pos, (unsigned long long)pos, data_len);
        goto out;
    }

    /* Everything is valid: move the strings out of the JSON tree. */
    if (strbytes) {
        f->strings = malloc(strbytes);
        if (!f->strings) {
            rc = fail(c, LT_ERR_NOMEM, "out of memory for %zu bytes of names", strbytes);
            goto out;
        }
    }
    size_t at = 0;
    for (size_t i = 0; i < ntens; i++) {
        st_entry *e = &f->entries[i];
        e->t.name = arena_put(f->strings, &at, e->t.name);
        e->t.data = data + e->begin;
    }
    for (size_t i = 0; i < nmeta; i++) {
        f->meta_keys[i] = arena_put(f->strings, &at, meta[i]->string);
        f->meta_vals[i] = arena_put(f->strings, &at, meta[i]->valuestring);
    }
    f->meta_count = nmeta;

out:
    free(meta);
    cJSON_Delete(root);
    free(hcopy);
    if (rc != LT_OK) {
        lt_st_close(f);
        f = NULL;
    }
    *out = f;
    return rc;
}

static void set_msg(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_msg(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

lt_status lt_st_parse(const void *buf, size_t len, const char *label, lt_st_file **out, char *err,
                      size_t errlen) {
    st_ctx c = {label ? label : "<buffer>", err, errlen};
    if (err && errlen) err[0] = 0;
    if (!out) return fail(&c, LT_ERR_ARG, "no output handle given");
    *out = NULL;
    if (!buf && len) return fail(&c, LT_ERR_ARG, "NULL buffer of %zu bytes", len);
    return parse_impl(buf, len, &c, out);
}

lt_status lt_st_open(const char *path, lt_st_file **out, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!out || !path) {
        set_msg(err, errlen, "lt_st_open: no path or output handle given");
        return LT_ERR_ARG;
    }
    *out = NULL;
    st_ctx c = {path, err, errlen};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(&c, LT_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return fail(&c, LT_ERR_IO, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fail(&c, LT_ERR_IO, "not a regular file");
    }
    if (st.st_size < 8) {
        close(fd);
        return fail(&c, LT_ERR_FORMAT, "file is %lld bytes, too short for the 8-byte header length",
                    (long long)st.st_size);
    }
    if ((uintmax_t)st.st_size > SIZE_MAX) {
        close(fd);
        return fail(&c, LT_ERR_IO, "file of %lld bytes is too large to map", (long long)st.st_size);
    }
    size_t len = (size_t)st.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps the file alive */
    if (map == MAP_FAILED) return fail(&c, LT_ERR_IO, "cannot mmap %zu bytes: %s", len, strerror(e));
    lt_status rc = parse_impl(map, len, &c, out);
    if (rc != LT_OK) {
        munmap(map, len);
        return rc;
    }
    (*out)->map = map;
    (*out)->map_len = len;
    return LT_OK;
}

void lt_st_close(lt_st_file *f) {
    if (!f) return;
    if (f->map) munmap(f->map, f->map_len);
    free(f->entries);
    free(f->by_name);
    free(f->meta_keys);
    free(f->meta_vals);
    free(f->strings);
    free(f);
}

size_t lt_st_count(const lt_st_file *f) { return f ? f->count : 0; }

const lt_st_tensor *lt_st_at(const lt_st_file *f, size_t i) {
    return f && i < f->count ? &f->entries[i].t : NULL;
}

const lt_st_tensor *lt_st_find(const lt_st_file *f, const char *name) {
    if (!f || !name) return NULL;
    size_t lo = 0, hi = f->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->by_name[mid]->t.name);
        if (c == 0) return &f->by_name[mid]->t;
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

size_t lt_st_meta_count(const lt_st_file *f) { return f ? f->meta_count : 0; }

void lt_st_meta_at(const lt_st_file *f, size_t i, const char **key, const char **value) {
    const char *k = NULL, *v = NULL;
    if (f && i < f->meta_count) {
        k = f->meta_keys[i];
        v = f->meta_vals[i];
    }
    if (key) *key = k;
    if (value) *value = v;
}

const char *lt_st_meta(const lt_st_file *f, const char *key) {
    if (!f || !key) return NULL;
    size_t lo = 0, hi = f->meta_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, f->meta_keys[mid]);
        if (c == 0) return f->meta_vals[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

lt_status lt_st_read_f32(const lt_st_tensor *t, float *out, size_t n, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!t) {
        set_msg(err, errlen, "lt_st_read_f32: no tensor given");
        return LT_ERR_ARG;
    }
    if (n != t->numel) {
        set_msg(err, errlen, "tensor '%s' has %zu elements but %zu were asked for", t->name,
                t->numel, n);
        return LT_ERR_ARG;
    }
    if (n && !out) {
        set_msg(err, errlen, "tensor '%s': no output buffer given", t->name);
        return LT_ERR_ARG;
    }
    const unsigned char *p = t->data;
    const char *d = t->dtype;
    /* Element by element through memcpy: the data may be unaligned. */
    if (strcmp(d, "F32") == 0) {
        if (n) memcpy(out, p, n * sizeof(float));
    } else if (strcmp(d, "BF16") == 0) {
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = lt_bf16_to_f32(h);
        }
    } else if (strcmp(d, "F16") == 0) {
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = lt_f16_to_f32(h);
        }
    } else if (strcmp(d, "F64") == 0) {
        for (size_t i = 0; i < n; i++) {
            double v;
            memcpy(&v, p + 8 * i, 8);
            out[i] = (float)v;
        }
    } else if (strcmp(d, "I32") == 0) {
        for (size_t i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, p + 4 * i, 4);
            out[i] = (float)v;
        }
    } else if (strcmp(d, "I64") == 0) {
        for (size_t i = 0; i < n; i++) {
            int64_t v;
            memcpy(&v, p + 8 * i, 8);
            out[i] = (float)v;
        }
    } else if (strcmp(d, "U8") == 0) {
        for (size_t i = 0; i < n; i++) out[i] = (float)p[i];
    } else {
        set_msg(err, errlen, "tensor '%s': dtype %s has no conversion to F32", t->name, d);
        return LT_ERR_ARG;
    }
    return LT_OK;
}
