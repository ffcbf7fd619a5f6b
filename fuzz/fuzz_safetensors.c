/* libFuzzer entry for the safetensors reader: any input must either parse or
 * fail with a message, and a parsed file must be self-consistent (every
 * tensor inside the buffer, shapes matching byte counts, lookups agreeing
 * with iteration). A parsed file whose dtypes the writer supports is also
 * written back through the writer and must read back identically, which
 * exercises the writer's escaping of arbitrary names and metadata.
 * Build with `make fuzz`; see fuzz/README.md. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "io/safetensors_internal.h"
#include "leantrain/safetensors.h"

/* Writes f back through the writer and checks that it reads back the same. */
static void round_trip(const lt_st_file *f) {
    for (size_t i = 0; i < lt_st_count(f); i++) {
        const lt_st_tensor *t = lt_st_at(f, i);
        if (t->lt_type < 0 || t->name[0] == 0) return; /* the writer refuses these */
    }
    lt_st_writer *w = lt_st_writer_new();
    if (!w) return;
    for (size_t i = 0; i < lt_st_count(f); i++) {
        const lt_st_tensor *t = lt_st_at(f, i);
        EXPECT(lt_st_writer_add(w, t->name, (lt_dtype)t->lt_type, t->ndim, t->shape, t->data) ==
               LT_OK);
    }
    for (size_t i = 0; i < lt_st_meta_count(f); i++) {
        const char *k, *v;
        lt_st_meta_at(f, i, &k, &v);
        EXPECT(lt_st_writer_meta(w, k, v) == LT_OK);
    }
    unsigned char *buf = NULL;
    size_t len = 0;
    EXPECT(lt_st_writer_to_memory(w, &buf, &len) == LT_OK);
    lt_st_writer_free(w);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    EXPECT((8 + hlen) % 8 == 0);
    char err[512];
    lt_st_file *g = NULL;
    if (lt_st_parse(buf, len, "rewritten", &g, err, sizeof err) != LT_OK) __builtin_trap();
    EXPECT(lt_st_count(g) == lt_st_count(f) && lt_st_meta_count(g) == lt_st_meta_count(f));
    for (size_t i = 0; i < lt_st_count(f); i++) {
        const lt_st_tensor *a = lt_st_at(f, i), *b = lt_st_at(g, i);
        EXPECT(strcmp(a->name, b->name) == 0 && strcmp(a->dtype, b->dtype) == 0);
        EXPECT(a->ndim == b->ndim && a->nbytes == b->nbytes);
        EXPECT(memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof a->shape[0]) == 0);
        EXPECT(a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0);
    }
    for (size_t i = 0; i < lt_st_meta_count(f); i++) {
        const char *k1, *v1, *k2, *v2;
        lt_st_meta_at(f, i, &k1, &v1);
        lt_st_meta_at(g, i, &k2, &v2);
        EXPECT(strcmp(k1, k2) == 0 && strcmp(v1, v2) == 0);
    }
    lt_st_close(g);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    lt_st_file *f = (lt_st_file *)1;
    lt_status rc = lt_st_parse(data, size, "fuzz", &f, err, sizeof err);
    if (rc != LT_OK) {
        EXPECT(f == NULL);
        EXPECT(err[0] != 0 && strncmp(err, "fuzz: ", 6) == 0);
        return 0;
    }
    EXPECT(f != NULL);
    const uint8_t *end = data + size;
    size_t covered = 0;
    unsigned sum = 0;
    for (size_t i = 0; i < lt_st_count(f); i++) {
        const lt_st_tensor *t = lt_st_at(f, i);
        EXPECT(t != NULL && t->name != NULL);
        EXPECT(lt_st_find(f, t->name) == t);
        EXPECT(t->ndim >= 0 && t->ndim <= LT_ST_MAX_DIMS);
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            EXPECT(t->shape[d] >= 0);
            numel *= (size_t)t->shape[d]; /* may wrap only when another dim is 0 */
        }
        EXPECT(t->numel == numel || t->numel == 0);
        EXPECT(t->nbytes == t->numel * t->elem_size);
        const uint8_t *p = t->data;
        EXPECT(p >= data && p <= end && t->nbytes <= (size_t)(end - p));
        covered += t->nbytes;
        for (size_t b = 0; b < t->nbytes && b < 64; b++) sum += p[b];
        if (t->numel <= 4096) {
            float *out = malloc((t->numel ? t->numel : 1) * sizeof *out);
            if (out) {
                char e2[256];
                lt_status r2 = lt_st_read_f32(t, out, t->numel, e2, sizeof e2);
                EXPECT(r2 == LT_OK || e2[0] != 0);
                free(out);
            }
        }
    }
    EXPECT(lt_st_at(f, lt_st_count(f)) == NULL);
    const char *prev = NULL;
    for (size_t i = 0; i < lt_st_meta_count(f); i++) {
        const char *k, *v;
        lt_st_meta_at(f, i, &k, &v);
        EXPECT(k != NULL && v != NULL);
        EXPECT(lt_st_meta(f, k) == v);
        EXPECT(prev == NULL || strcmp(prev, k) < 0);
        sum += (unsigned)strlen(v);
        prev = k;
    }
    /* The tensors tile the data section exactly. */
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | data[i];
    EXPECT(covered == size - 8 - (size_t)hlen);
    (void)sum;
    round_trip(f);
    lt_st_close(f);
    return 0;
}
