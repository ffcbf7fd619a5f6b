/* safetensors reader and writer: round trips, the golden files, every
 * rejection rule (with its message), the fuzz corpus, and the atomic write. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomic_file.h"
#include "io/safetensors_internal.h"
#include "leantrain/safetensors.h"
#include "testutil.h"

static char g_path[1024];

/* A path in the scratch directory (which is created if missing). */
static const char *tmp_path(const char *name) {
    mkdir(lt_test_tmp_dir(), 0777);
    snprintf(g_path, sizeof g_path, "%s/%s", lt_test_tmp_dir(), name);
    return g_path;
}

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    unsigned char *b = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            unsigned char *nb = realloc(b, cap);
            if (!nb) break;
            b = nb;
        }
        size_t k = fread(b + n, 1, cap - n, fp);
        n += k;
        if (k == 0) break;
    }
    fclose(fp);
    *len = n;
    return b;
}

/* Number of entries in `dir` whose name starts with `prefix`. */
static int count_prefixed(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) n++;
    closedir(d);
    return n;
}

/* ---- round trip ---- */

static void test_round_trip(void) {
    float f32[12];
    for (int i = 0; i < 12; i++) f32[i] = (float)i * 0.25f - 1.0f;
    uint16_t bf16[6], f16[5] = {0x3c00, 0xc000, 0x7c00, 0x0001, 0x3555};
    for (int i = 0; i < 6; i++) bf16[i] = lt_f32_to_bf16((float)i - 2.5f);
    uint8_t u8[7] = {0, 1, 2, 127, 128, 254, 255};
    int32_t i32[4] = {-7, 0, 7, 2147483647};
    int64_t i64[3] = {-3, 0, (int64_t)1 << 40};
    float scalar = 3.5f;
    int64_t s34[] = {3, 4}, s23[] = {2, 3}, s5[] = {5}, s7[] = {7}, s22[] = {2, 2}, s3[] = {3};
    int64_t s05[] = {0, 5}, s30[] = {3, 0}, s8d[] = {1, 1, 1, 1, 1, 1, 1, 3};

    lt_st_writer *w = lt_st_writer_new();
    CHECK(w != NULL, "writer_new");
    CHECK(lt_st_writer_add(w, "w", LT_DTYPE_F32, 2, s34, f32) == LT_OK, "add w");
    CHECK(lt_st_writer_add(w, "b.bf16", LT_DTYPE_BF16, 2, s23, bf16) == LT_OK, "add bf16");
    CHECK(lt_st_writer_add(w, "h", LT_DTYPE_F16, 1, s5, f16) == LT_OK, "add f16");
    CHECK(lt_st_writer_add(w, "codes", LT_DTYPE_U8, 1, s7, u8) == LT_OK, "add u8");
    CHECK(lt_st_writer_add(w, "i32", LT_DTYPE_I32, 2, s22, i32) == LT_OK, "add i32");
    CHECK(lt_st_writer_add(w, "step", LT_DTYPE_I64, 1, s3, i64) == LT_OK, "add i64");
    CHECK(lt_st_writer_add(w, "scalar", LT_DTYPE_F32, 0, NULL, &scalar) == LT_OK, "add scalar");
    CHECK(lt_st_writer_add(w, "empty", LT_DTYPE_F32, 2, s05, NULL) == LT_OK, "add empty");
    CHECK(lt_st_writer_add(w, "empty2", LT_DTYPE_BF16, 2, s30, NULL) == LT_OK, "add empty2");
    CHECK(lt_st_writer_add(w, "deep", LT_DTYPE_U8, 8, s8d, u8) == LT_OK, "add 8 dims");
    CHECK(lt_st_writer_add(w, "n\"a\\m\xc3\xa9", LT_DTYPE_U8, 1, s3, u8) == LT_OK, "add odd name");

    /* Rejected additions leave the writer usable. */
    int64_t neg[] = {-1}, nine[] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    CHECK(lt_st_writer_add(w, "w", LT_DTYPE_F32, 1, s3, f32) == LT_ERR_ARG, "duplicate name");
    CHECK(lt_st_writer_add(w, "neg", LT_DTYPE_F32, 1, neg, f32) == LT_ERR_ARG, "negative dim");
    CHECK(lt_st_writer_add(w, "nine", LT_DTYPE_F32, 9, nine, f32) == LT_ERR_ARG, "9 dims");
    CHECK(lt_st_writer_add(w, "__metadata__", LT_DTYPE_F32, 1, s3, f32) == LT_ERR_ARG, "reserved");
    CHECK(lt_st_writer_add(w, "", LT_DTYPE_F32, 1, s3, f32) == LT_ERR_ARG, "empty name");
    CHECK(lt_st_writer_add(w, "nodata", LT_DTYPE_F32, 1, s3, NULL) == LT_ERR_ARG, "NULL data");
    CHECK(lt_st_writer_add(w, "bad\xff", LT_DTYPE_F32, 1, s3, f32) == LT_ERR_ARG, "bad UTF-8");
    CHECK(lt_st_writer_add(w, "dt", (lt_dtype)42, 1, s3, f32) == LT_ERR_ARG, "bad dtype");
    int64_t huge[] = {INT64_C(1) << 40, INT64_C(1) << 40};
    CHECK(lt_st_writer_add(w, "huge", LT_DTYPE_F32, 2, huge, f32) == LT_ERR_ARG, "too large");

    CHECK(lt_st_writer_meta(w, "format", "first") == LT_OK, "meta");
    CHECK(lt_st_writer_meta(w, "zeta", "quote \" slash \\ nl \n tab \t \xe2\x82\xac") == LT_OK,
          "meta");
    CHECK(lt_st_writer_meta(w, "alpha", "") == LT_OK, "meta");
    CHECK(lt_st_writer_meta(w, "format", "round-trip-1") == LT_OK, "meta replace");
    CHECK(lt_st_writer_meta(w, "bad", "\xc0\x80") == LT_ERR_ARG, "overlong UTF-8 value");

    const char *path = tmp_path("st_round_trip.safetensors");
    char err[512];
    lt_status rc = lt_st_writer_write(w, path, err, sizeof err);
    CHECK(rc == LT_OK, "write: %s", err);

    /* The data section starts 8-byte aligned, and the in-memory form is
     * byte for byte the file. */
    size_t flen = 0, mlen = 0;
    unsigned char *raw = read_all(path, &flen), *mem = NULL;
    CHECK(raw != NULL && flen >= 8, "read back %s", path);
    if (raw && flen >= 8) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = (n << 8) | raw[i];
        CHECK((8 + n) % 8 == 0, "data section at %llu", (unsigned long long)(8 + n));
        CHECK(raw[8 + n - 1] == ' ' || raw[8 + n - 1] == '}', "padding");
        CHECK(raw[8] == '{' && memcmp(raw + 9, "\"__metadata__\":{\"format\"", 22) == 0,
              "metadata first, in insertion order");
    }
    CHECK(lt_st_writer_to_memory(w, &mem, &mlen) == LT_OK, "to_memory");
    CHECK(raw && mem && mlen == flen && memcmp(raw, mem, flen) == 0, "memory form == file");
    free(mem);
    free(raw);
    lt_st_writer_free(w);

    lt_st_file *f = NULL;
    rc = lt_st_open(path, &f, err, sizeof err);
    CHECK(rc == LT_OK && f != NULL, "open: %s", err);
    if (!f) return;
    CHECK(lt_st_count(f) == 11, "count %zu", lt_st_count(f));
    /* Offset order, which for this writer is insertion order, except that an
     * empty tensor sorts before a non-empty one starting at the same offset. */
    static const char *order[] = {"w",    "b.bf16", "h",     "codes",  "i32",
                                  "step", "scalar", "empty", "empty2", "deep",
                                  "n\"a\\m\xc3\xa9"};
    for (size_t i = 0; i < 11 && i < lt_st_count(f); i++)
        CHECK(strcmp(lt_st_at(f, i)->name, order[i]) == 0, "tensor %zu is %s, expected %s", i,
              lt_st_at(f, i)->name, order[i]);
    CHECK(lt_st_at(f, 11) == NULL, "at past the end");

    const lt_st_tensor *t = lt_st_find(f, "w");
    CHECK(t && strcmp(t->dtype, "F32") == 0 && t->lt_type == LT_DTYPE_F32 && t->ndim == 2 &&
              t->shape[0] == 3 && t->shape[1] == 4 && t->numel == 12 && t->nbytes == 48 &&
              t->elem_size == 4,
          "w metadata");
    if (t) CHECK(memcmp(t->data, f32, 48) == 0, "w data");
    float out[12];
    CHECK(t && lt_st_read_f32(t, out, 12, err, sizeof err) == LT_OK, "read w: %s", err);
    CHECK(memcmp(out, f32, sizeof out) == 0, "w as f32");
    CHECK(t && lt_st_read_f32(t, out, 11, err, sizeof err) == LT_ERR_ARG, "wrong count");
    CHECK(strstr(err, "tensor 'w' has 12 elements but 11") != NULL, "count message: %s", err);

    t = lt_st_find(f, "b.bf16");
    CHECK(t && t->lt_type == LT_DTYPE_BF16 && t->nbytes == 12 && t->elem_size == 2, "bf16");
    CHECK(t && lt_st_read_f32(t, out, 6, err, sizeof err) == LT_OK, "read bf16: %s", err);
    for (int i = 0; i < 6; i++) CHECK(out[i] == (float)i - 2.5f, "bf16[%d] = %g", i, out[i]);

    t = lt_st_find(f, "h");
    CHECK(t && t->lt_type == LT_DTYPE_F16 && t->numel == 5, "f16");
    CHECK(t && lt_st_read_f32(t, out, 5, err, sizeof err) == LT_OK, "read f16: %s", err);
    CHECK(out[0] == 1.0f && out[1] == -2.0f && isinf(out[2]) && out[3] == ldexpf(1.0f, -24),
          "f16 values %g %g %g %g", out[0], out[1], out[2], out[3]);

    t = lt_st_find(f, "codes");
    CHECK(t && t->lt_type == LT_DTYPE_U8 && t->nbytes == 7, "u8");
    CHECK(t && lt_st_read_f32(t, out, 7, err, sizeof err) == LT_OK, "read u8: %s", err);
    for (int i = 0; i < 7; i++) CHECK(out[i] == (float)u8[i], "u8[%d]", i);

    t = lt_st_find(f, "i32");
    CHECK(t && t->lt_type == LT_DTYPE_I32 && t->shape[0] == 2 && t->shape[1] == 2, "i32");
    CHECK(t && lt_st_read_f32(t, out, 4, err, sizeof err) == LT_OK, "read i32: %s", err);
    CHECK(out[0] == -7.0f && out[3] == 2147483648.0f, "i32 values");

    t = lt_st_find(f, "step");
    CHECK(t && t->lt_type == LT_DTYPE_I64 && t->nbytes == 24, "i64");
    if (t) CHECK(memcmp(t->data, i64, 24) == 0, "i64 data");
    CHECK(t && lt_st_read_f32(t, out, 3, err, sizeof err) == LT_OK, "read i64: %s", err);
    CHECK(out[0] == -3.0f && out[2] == 1099511627776.0f, "i64 values");

    t = lt_st_find(f, "scalar");
    CHECK(t && t->ndim == 0 && t->numel == 1 && t->nbytes == 4, "scalar");
    CHECK(t && lt_st_read_f32(t, out, 1, err, sizeof err) == LT_OK && out[0] == 3.5f, "scalar");

    t = lt_st_find(f, "empty");
    CHECK(t && t->ndim == 2 && t->shape[0] == 0 && t->shape[1] == 5 && t->numel == 0 &&
              t->nbytes == 0,
          "empty");
    CHECK(t && lt_st_read_f32(t, NULL, 0, err, sizeof err) == LT_OK, "read empty: %s", err);
    t = lt_st_find(f, "empty2");
    CHECK(t && t->numel == 0 && t->nbytes == 0 && strcmp(t->dtype, "BF16") == 0, "empty2");

    t = lt_st_find(f, "deep");
    CHECK(t && t->ndim == 8 && t->shape[7] == 3 && t->numel == 3, "8 dims");
    t = lt_st_find(f, "n\"a\\m\xc3\xa9");
    CHECK(t && t->numel == 3, "escaped name survives");
    CHECK(lt_st_find(f, "missing") == NULL && lt_st_find(f, "") == NULL, "find missing");

    CHECK(lt_st_meta_count(f) == 3, "meta count %zu", lt_st_meta_count(f));
    const char *k = NULL, *v = NULL;
    lt_st_meta_at(f, 0, &k, &v);
    CHECK(k && strcmp(k, "alpha") == 0 && v && strcmp(v, "") == 0, "meta 0 sorted");
    lt_st_meta_at(f, 1, &k, &v);
    CHECK(k && strcmp(k, "format") == 0 && v && strcmp(v, "round-trip-1") == 0, "later wins");
    lt_st_meta_at(f, 2, &k, &v);
    CHECK(k && strcmp(k, "zeta") == 0, "meta 2");
    CHECK(v && strcmp(v, "quote \" slash \\ nl \n tab \t \xe2\x82\xac") == 0, "escaped value");
    lt_st_meta_at(f, 3, &k, &v);
    CHECK(k == NULL && v == NULL, "meta past the end");
    CHECK(lt_st_meta(f, "format") && strcmp(lt_st_meta(f, "format"), "round-trip-1") == 0, "meta");
    CHECK(lt_st_meta(f, "nope") == NULL, "meta missing");
    lt_st_close(f);

    /* Replacing an existing file. */
    w = lt_st_writer_new();
    CHECK(lt_st_writer_add(w, "only", LT_DTYPE_F32, 1, s3, f32) == LT_OK, "add");
    CHECK(lt_st_writer_write(w, path, err, sizeof err) == LT_OK, "overwrite: %s", err);
    lt_st_writer_free(w);
    CHECK(lt_st_open(path, &f, err, sizeof err) == LT_OK && lt_st_count(f) == 1 &&
              lt_st_meta_count(f) == 0,
          "overwritten file: %s", err);
    lt_st_close(f);
}

/* Files with no data at all: the mapping ends right after the header. */
static void test_empty_files(void) {
    char err[512];
    const char *path = tmp_path("st_empty.safetensors");
    lt_st_writer *w = lt_st_writer_new();
    CHECK(lt_st_writer_write(w, path, err, sizeof err) == LT_OK, "write empty: %s", err);
    lt_st_writer_free(w);
    lt_st_file *f = NULL;
    CHECK(lt_st_open(path, &f, err, sizeof err) == LT_OK, "open empty: %s", err);
    CHECK(lt_st_count(f) == 0 && lt_st_meta_count(f) == 0, "empty counts");
    lt_st_close(f);

    w = lt_st_writer_new();
    int64_t z[] = {0};
    CHECK(lt_st_writer_add(w, "z", LT_DTYPE_I64, 1, z, NULL) == LT_OK, "add zero-sized");
    CHECK(lt_st_writer_meta(w, "k", "v") == LT_OK, "meta");
    CHECK(lt_st_writer_write(w, path, err, sizeof err) == LT_OK, "write: %s", err);
    lt_st_writer_free(w);
    CHECK(lt_st_open(path, &f, err, sizeof err) == LT_OK, "open zero data: %s", err);
    CHECK(lt_st_count(f) == 1 && lt_st_at(f, 0)->nbytes == 0, "zero-sized tensor");
    lt_st_close(f);
    lt_st_close(NULL);
    lt_st_writer_free(NULL);
}

static void test_golden(void) {
    char path[2048], err[512];
    snprintf(path, sizeof path, "%s/golden/adamw_torch.safetensors", lt_test_data_dir());
    lt_st_file *f = NULL;
    lt_status rc = lt_st_open(path, &f, err, sizeof err);
    CHECK(rc == LT_OK, "open golden: %s", err);
    if (!f) return;
    const char *fmt = lt_st_meta(f, "format");
    CHECK(fmt && strcmp(fmt, "optim-trace-1") == 0, "format is %s", fmt ? fmt : "(none)");
    const lt_st_tensor *t = lt_st_find(f, "w.init");
    CHECK(t != NULL, "w.init exists");
    if (t) {
        CHECK(strcmp(t->dtype, "F32") == 0 && t->lt_type == LT_DTYPE_F32, "w.init is %s", t->dtype);
        CHECK(t->numel > 0 && t->nbytes == 4 * t->numel, "w.init size");
        float *buf = malloc(t->numel * sizeof *buf);
        CHECK(buf && lt_st_read_f32(t, buf, t->numel, err, sizeof err) == LT_OK, "read: %s", err);
        int finite = 1;
        for (size_t i = 0; buf && i < t->numel; i++) finite &= isfinite(buf[i]) != 0;
        CHECK(finite, "w.init finite");
        free(buf);
    }
    /* Every tensor lies in order, end to end. */
    const unsigned char *prev_end = NULL;
    for (size_t i = 0; i < lt_st_count(f); i++) {
        const lt_st_tensor *x = lt_st_at(f, i);
        if (prev_end) CHECK((const unsigned char *)x->data == prev_end, "tensor %s contiguous", x->name);
        prev_end = (const unsigned char *)x->data + x->nbytes;
    }
    lt_st_close(f);

    /* All the other golden files read too. */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/golden", lt_test_data_dir());
    DIR *d = opendir(dir);
    CHECK(d != NULL, "opendir %s", dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 12 || strcmp(e->d_name + len - 12, ".safetensors") != 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        CHECK(lt_st_open(path, &f, err, sizeof err) == LT_OK, "golden %s: %s", path, err);
        lt_st_close(f);
        n++;
    }
    if (d) closedir(d);
    CHECK(n > 1, "golden files found: %d", n);
}

/* ---- rejections ---- */

/* A buffer: 8-byte length, header, data_len bytes of data. */
static unsigned char *build(const char *header, size_t data_len, size_t *len) {
    size_t n = strlen(header);
    *len = 8 + n + data_len;
    unsigned char *b = malloc(*len ? *len : 1);
    if (!b) return NULL;
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(b + 8, header, n);
    for (size_t i = 0; i < data_len; i++) b[8 + n + i] = (unsigned char)i;
    return b;
}

/* The base of every mutation: valid, with metadata and two tensors. */
#define A_OK "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"
#define B_OK "\"b\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[24,32]}"
#define META_OK "\"__metadata__\":{\"k\":\"v\"}"
#define BASE "{" META_OK "," A_OK "," B_OK "}"

static void expect_fail(const char *what, const unsigned char *buf, size_t len, const char *msg) {
    char err[512] = "";
    lt_st_file *f = (lt_st_file *)&err; /* must be reset to NULL */
    lt_status rc = lt_st_parse(buf, len, "mem.safetensors", &f, err, sizeof err);
    CHECK(rc == LT_ERR_FORMAT, "%s: expected LT_ERR_FORMAT, got %d (%s)", what, rc, err);
    CHECK(f == NULL, "%s: handle not cleared", what);
    CHECK(strncmp(err, "mem.safetensors: ", 17) == 0, "%s: message lacks the label: %s", what, err);
    CHECK(strstr(err, msg) != NULL, "%s: message '%s' lacks '%s'", what, err, msg);
    lt_st_close(f == (lt_st_file *)&err ? NULL : f);
}

static void expect_header_fail(const char *what, const char *header, size_t data_len,
                               const char *msg) {
    size_t len;
    unsigned char *b = build(header, data_len, &len);
    expect_fail(what, b, len, msg);
    free(b);
}

static void test_corrupt(void) {
    size_t len;
    char err[512];
    unsigned char *base = build(BASE, 32, &len);
    lt_st_file *f = NULL;
    CHECK(lt_st_parse(base, len, "base", &f, err, sizeof err) == LT_OK, "base parses: %s", err);
    CHECK(lt_st_count(f) == 2 && lt_st_meta_count(f) == 1, "base contents");
    lt_st_close(f);

    /* Mutations of the length prefix and the file size. */
    expect_fail("empty file", base, 0, "file is 0 bytes, too short for the 8-byte header length");
    expect_fail("truncated length", base, 5, "file is 5 bytes, too short");
    expect_fail("truncated header", base, 40, "goes beyond the end of the file (40 bytes)");
    expect_fail("truncated data", base, len - 3,
                "tensor 'b': data_offsets [24, 32] go beyond the data section (29 bytes)");
    unsigned char *m = malloc(len + 5);
    memcpy(m, base, len);
    m[0] = (unsigned char)(len); /* header length = whole file */
    expect_fail("header length beyond file", m, len, "goes beyond the end of the file");
    uint64_t big = (uint64_t)LT_ST_MAX_HEADER + 1;
    for (int i = 0; i < 8; i++) m[i] = (unsigned char)(big >> (8 * i));
    expect_fail("header length > max", m, len, "exceeds the maximum of 104857600 bytes");
    for (int i = 0; i < 8; i++) m[i] = 0xff;
    expect_fail("header length 2^64-1", m, len, "exceeds the maximum");
    memcpy(m, base, len);
    memset(m + len, 0, 5);
    expect_fail("extra data", m, len + 5,
                "data section is 37 bytes but the tensors cover only 32 (bytes [32, 37) belong "
                "to no tensor)");
    free(m);
    free(base);

    /* Mutations of the header. */
    static const struct {
        const char *what, *header;
        size_t data_len;
        const char *msg;
    } cases[] = {
        {"invalid JSON", "{" META_OK "," A_OK "," B_OK, 32, "header is not valid JSON"},
        {"invalid JSON 2", "{\"a\":{\"dtype\":F32}}", 0, "header is not valid JSON"},
        {"not an object", "[" A_OK "]", 32, "header is not a JSON object"},
        {"string header", "\"x\"", 0, "header is not a JSON object"},
        {"empty header", "", 0, "header is not a JSON object"},
        {"BOM", "\xef\xbb\xbf{}", 0, "header is not a JSON object"},
        {"trailing garbage", BASE " x", 32, "trailing data after the JSON object"},
        {"two objects", BASE "{}", 32, "trailing data after the JSON object"},
        {"unknown dtype", "{\"a\":{\"dtype\":\"F31\",\"shape\":[2,3],\"data_offsets\":[0,24]}}",
         24, "tensor 'a': unknown dtype 'F31'"},
        {"lowercase dtype", "{\"a\":{\"dtype\":\"f32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}",
         24, "tensor 'a': unknown dtype 'f32'"},
        {"dtype not a string", "{\"a\":{\"dtype\":4,\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24,
         "tensor 'a': dtype is 4, not a string"},
        {"negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,-3],\"data_offsets\":[0,24]}}",
         24, "tensor 'a': shape[1] is -3, not a non-negative integer"},
        {"fractional dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8,
         "tensor 'a': shape[0] is 2.5, not a non-negative integer"},
        {"string dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8,
         "tensor 'a': shape[0] is a string, not a non-negative integer"},
        {"dim 2^53", "{\"a\":{\"dtype\":\"U8\",\"shape\":[9007199254740992],\"data_offsets\":[0,0]}}",
         0, "shape[0] is 9007199254740992, not a non-negative integer"},
        {"shape not array", "{\"a\":{\"dtype\":\"F32\",\"shape\":6,\"data_offsets\":[0,24]}}", 24,
         "tensor 'a': shape is 6, not an array"},
        {"too many dims",
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
         "tensor 'a': shape has 9 dimensions, more than 8"},
        {"shape/size mismatch",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20,
         "tensor 'a': shape [2,3] x F32 = 24 bytes but data_offsets span 20 bytes"},
        {"scalar mismatch", "{\"a\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,4]}}", 4,
         "tensor 'a': shape [] x I64 = 8 bytes but data_offsets span 4 bytes"},
        {"size overflow",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,0]}}",
         0, "tensor 'a': shape [4294967296,4294967296,16] has too many elements"},
        {"bytes overflow",
         "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,1073741824],\"data_offsets\":[0,0]}}", 0,
         "does not fit in memory"},
        {"offsets out of bounds",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[8,32]}}", 24,
         "tensor 'a': data_offsets [8, 32] go beyond the data section (24 bytes)"},
        {"offsets reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8,
         "tensor 'a': data_offsets [8, 0] end before they begin"},
        {"offsets not integers",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.5]}}", 8,
         "tensor 'a': data_offsets[1] is 8.5, not a non-negative integer"},
        {"negative offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8,
         "tensor 'a': data_offsets[0] is -8, not a non-negative integer"},
        {"three offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8,
         "tensor 'a': data_offsets must be an array of 2 integers"},
        {"overlapping",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
         "\"b\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[20,28]}}",
         28, "tensor 'b': data_offsets [20, 28] overlap tensor 'a' [0, 24]"},
        {"same range",
         "{\"a\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}}",
         8, "tensor 'b': data_offsets [0, 8] overlap tensor 'a' [0, 8]"},
        {"empty inside another",
         "{\"a\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]},"
         "\"e\":{\"dtype\":\"I64\",\"shape\":[0],\"data_offsets\":[4,4]}}",
         8, "tensor 'e': data_offsets [4, 4] overlap tensor 'a' [0, 8]"},
        {"gap",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
         "\"b\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[28,36]}}",
         36, "gap in the data section: bytes [24, 28) before tensor 'b' belong to no tensor"},
        {"gap at start", "{\"b\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]}}", 16,
         "gap in the data section: bytes [0, 8) before tensor 'b'"},
        {"data not fully covered", "{" A_OK "}", 32,
         "data section is 32 bytes but the tensors cover only 24"},
        {"data with no tensors", "{}", 1, "data section is 1 bytes but the tensors cover only 0"},
        {"duplicate names",
         "{\"a\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]},"
         "\"a\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]}}",
         16, "duplicate tensor name 'a'"},
        {"duplicate __metadata__", "{" META_OK "," META_OK "}", 0, "duplicate key '__metadata__'"},
        {"duplicate metadata key", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0,
         "duplicate __metadata__ key 'k'"},
        {"metadata non-string", "{\"__metadata__\":{\"k\":\"v\",\"n\":1}," A_OK "}", 24,
         "__metadata__ value of key 'n' is 1, not a string"},
        {"metadata nested", "{\"__metadata__\":{\"k\":{}}}", 0,
         "__metadata__ value of key 'k' is an object, not a string"},
        {"metadata not an object", "{\"__metadata__\":[\"k\"]}", 0,
         "__metadata__ is an array, not an object"},
        {"entry not an object", "{\"a\":[1]}", 0, "tensor 'a': entry is an array, not an object"},
        {"missing dtype", "{\"a\":{\"shape\":[],\"data_offsets\":[0,0]}}", 0,
         "tensor 'a': missing 'dtype'"},
        {"missing shape", "{\"a\":{\"dtype\":\"U8\",\"data_offsets\":[0,0]}}", 0,
         "tensor 'a': missing 'shape'"},
        {"missing offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[]}}", 0,
         "tensor 'a': missing 'data_offsets'"},
        {"extra key", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":1}}",
         1, "tensor 'a': unexpected key 'x'"},
        {"repeated key",
         "{\"a\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
         "tensor 'a': duplicate key 'dtype'"},
        {"NUL escape", "{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
         1, "\\u0000 escape"},
        {"raw control char", "{\"a\x01\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
         1, "control character 0x01 inside a string"},
        {"control char outside strings", "{\x0b}", 0, "control character 0x0b"},
        {"invalid UTF-8", "{\"\xff\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
         "header is not valid UTF-8 (byte 2)"},
        {"leading zero", "{\"a\":{\"dtype\":\"U8\",\"shape\":[01],\"data_offsets\":[0,1]}}", 1,
         "header has a malformed JSON number (byte 28)"},
        {"bare minus", "{\"a\":{\"dtype\":\"U8\",\"shape\":[-],\"data_offsets\":[0,0]}}", 0,
         "malformed JSON number"},
        {"trailing dot", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1.],\"data_offsets\":[0,1]}}", 1,
         "malformed JSON number"},
        {"dot exponent", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1.e0],\"data_offsets\":[0,1]}}",
         1, "malformed JSON number"},
        {"empty exponent", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1e+],\"data_offsets\":[0,1]}}",
         1, "malformed JSON number"},
        {"leading dot", "{\"a\":{\"dtype\":\"U8\",\"shape\":[.5],\"data_offsets\":[0,1]}}", 1,
         "header is not valid JSON"},
        {"huge number", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1e999],\"data_offsets\":[0,1]}}",
         1, "shape[0] is inf, not a non-negative integer"},
        {"lone surrogate", "{\"\\ud800\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
         1, "header is not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_header_fail(cases[i].what, cases[i].header, cases[i].data_len, cases[i].msg);

    /* A raw NUL byte inside the header (strlen-based build cannot make it). */
    unsigned char nul[] = {4, 0, 0, 0, 0, 0, 0, 0, '{', '"', 0, '"'};
    expect_fail("raw NUL", nul, sizeof nul, "control character 0x00");

    /* Still valid: padding with JSON whitespace, keys in any order, -0 and 1.0. */
    static const char *valid[] = {
        "{}",
        "{}        ",
        "{} \t\r\n",
        "{\"a\":{\"data_offsets\":[0,4],\"shape\":[1],\"dtype\":\"F32\"}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[-0,4e0]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[0.1e1],\"data_offsets\":[0E5,40E-1]}}",
        "{\"__metadata__\":{}, \"a\":{\"dtype\":\"BOOL\",\"shape\":[4],\"data_offsets\":[0,4]}}",
    };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        size_t dl = strstr(valid[i], "\"a\"") ? 4 : 0;
        unsigned char *b = build(valid[i], dl, &len);
        CHECK(lt_st_parse(b, len, "valid", &f, err, sizeof err) == LT_OK, "valid %zu: %s", i, err);
        lt_st_close(f);
        free(b);
    }
}

/* Conversions from dtypes the writer has no enum for, and unaligned data. */
static void test_read_f32(void) {
    char err[512];
    const char *hdr = "{\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]},"
                      "\"f\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]},"
                      "\"z\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[20,21]}}";
    size_t hlen = strlen(hdr), len = 8 + hlen + 21;
    /* One byte in, so that nothing is aligned. */
    unsigned char *mem = malloc(len + 1), *b = mem + 1;
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(b + 8, hdr, hlen);
    double dv[2] = {1.5, -1e300};
    float fv = 0.1f;
    memcpy(b + 8 + hlen, dv, 16);
    memcpy(b + 8 + hlen + 16, &fv, 4);
    b[8 + hlen + 20] = 1;
    lt_st_file *f = NULL;
    CHECK(lt_st_parse(b, len, "unaligned", &f, err, sizeof err) == LT_OK, "parse: %s", err);
    if (f) {
        float out[2];
        const lt_st_tensor *t = lt_st_find(f, "d");
        CHECK(t && t->lt_type == -1 && t->elem_size == 8, "F64 has no lt_dtype");
        CHECK(t && lt_st_read_f32(t, out, 2, err, sizeof err) == LT_OK, "F64: %s", err);
        CHECK(out[0] == 1.5f && isinf(out[1]) && out[1] < 0, "F64 values %g %g", out[0], out[1]);
        t = lt_st_find(f, "f");
        CHECK(t && lt_st_read_f32(t, out, 1, err, sizeof err) == LT_OK && out[0] == 0.1f, "F32");
        t = lt_st_find(f, "z");
        CHECK(t && lt_st_read_f32(t, out, 1, err, sizeof err) == LT_ERR_ARG, "BOOL refused");
        CHECK(strstr(err, "tensor 'z': dtype BOOL has no conversion to F32") != NULL, "msg: %s",
              err);
        lt_st_close(f);
    }
    free(mem);
}

static void test_open_errors(void) {
    char err[512];
    lt_st_file *f = (lt_st_file *)&err;
    CHECK(lt_st_open("build/no/such/file.safetensors", &f, err, sizeof err) == LT_ERR_IO,
          "missing file");
    CHECK(f == NULL, "handle cleared");
    CHECK(strstr(err, "build/no/such/file.safetensors: cannot open: No such file or directory"),
          "msg: %s", err);
    CHECK(lt_st_open(lt_test_tmp_dir(), &f, err, sizeof err) == LT_ERR_IO, "directory");
    CHECK(strstr(err, "not a regular file") != NULL, "msg: %s", err);

    const char *path = tmp_path("st_short.safetensors");
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL, "create %s", path);
    if (fp) fclose(fp);
    CHECK(lt_st_open(path, &f, err, sizeof err) == LT_ERR_FORMAT, "empty file");
    CHECK(strstr(err, "st_short.safetensors: file is 0 bytes") != NULL, "msg: %s", err);

    /* A message is still produced (cut short) with a tiny buffer, and none is needed. */
    char small[8];
    CHECK(lt_st_open(path, &f, small, sizeof small) == LT_ERR_FORMAT && strlen(small) == 7,
          "small buffer");
    CHECK(lt_st_open(path, &f, NULL, 0) == LT_ERR_FORMAT, "no buffer");
    unlink(path);
}

/* ---- the fuzz corpus: each input parses or fails cleanly ---- */

static void test_corpus(void) {
    const char *dir = getenv("LT_FUZZ_CORPUS") ? getenv("LT_FUZZ_CORPUS") : "fuzz/corpus";
    DIR *d = opendir(dir);
    CHECK(d != NULL, "opendir %s: %s", dir, strerror(errno));
    if (!d) return;
    int n = 0, ok = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[1024], err[512], err2[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len = 0;
        unsigned char *b = read_all(path, &len);
        CHECK(b != NULL, "read %s", path);
        if (!b) continue;
        n++;
        lt_st_file *f = NULL, *g = NULL;
        lt_status rc = lt_st_parse(b, len, path, &f, err, sizeof err);
        if (rc == LT_OK) {
            ok++;
            CHECK(f != NULL, "%s: parsed without a handle", path);
        } else {
            CHECK(f == NULL && err[0] != 0, "%s: failed (%d) without a message", path, rc);
        }
        /* Reading the same bytes from disk gives the same verdict and message. */
        lt_status rc2 = lt_st_open(path, &g, err2, sizeof err2);
        CHECK(rc2 == rc, "%s: parse %d but open %d (%s)", path, rc, rc2, err2);
        if (rc != LT_OK && rc2 == rc) CHECK(strcmp(err, err2) == 0, "%s: '%s' vs '%s'", path, err, err2);
        if (f && g) CHECK(lt_st_count(f) == lt_st_count(g), "%s: counts", path);
        lt_st_close(f);
        lt_st_close(g);
        free(b);
    }
    closedir(d);
    CHECK(n > 0, "corpus %s is empty", dir);
    CHECK(ok > 0 && ok < n, "corpus %s: %d of %d parse; expected some valid and some not", dir, ok, n);
    printf("fuzz corpus: %d files, %d valid\n", n, ok);
}

/* ---- atomic writing ---- */

static void test_atomic(void) {
    char err[512];
    const char *tmp = lt_test_tmp_dir();
    const char *path = tmp_path("st_atomic.safetensors");
    char keep[1024];
    snprintf(keep, sizeof keep, "%s", path);
    float v[4] = {1, 2, 3, 4};
    int64_t s4[] = {4};

    lt_st_writer *w = lt_st_writer_new();
    CHECK(lt_st_writer_add(w, "v", LT_DTYPE_F32, 1, s4, v) == LT_OK, "add");
    CHECK(lt_st_writer_write(w, keep, err, sizeof err) == LT_OK, "write: %s", err);
    CHECK(count_prefixed(tmp, "st_atomic.safetensors.tmp.") == 0, "no temp file after success");
    struct stat st;
    CHECK(stat(keep, &st) == 0 && st.st_size > 16, "file written");

    /* The directory does not exist: LT_ERR_IO and nothing left anywhere. */
    char bad[1024];
    snprintf(bad, sizeof bad, "%s/st_no_such_dir/x.safetensors", tmp);
    err[0] = 0;
    CHECK(lt_st_writer_write(w, bad, err, sizeof err) == LT_ERR_IO, "missing dir");
    CHECK(strncmp(err, bad, strlen(bad)) == 0 && strstr(err, ": No such file or directory"),
          "message: %s", err);
    CHECK(stat(bad, &st) != 0, "nothing at the target");
    CHECK(count_prefixed(tmp, "st_no_such_dir") == 0, "no directory created");

    /* The rename fails (the target is a directory): the temp file is removed. */
    snprintf(bad, sizeof bad, "%s/st_target_is_dir", tmp);
    mkdir(bad, 0777);
    CHECK(lt_st_writer_write(w, bad, err, sizeof err) == LT_ERR_IO, "target is a directory");
    CHECK(strstr(err, "cannot rename") != NULL && strstr(err, "Is a directory"), "msg: %s", err);
    CHECK(count_prefixed(tmp, "st_target_is_dir.tmp.") == 0, "temp file removed after failure");
    rmdir(bad);
    lt_st_writer_free(w);

    /* The helper on its own: abort leaves nothing; a stale temp file is replaced. */
    lt_atomic_file *af = NULL;
    const char *ap = tmp_path("st_helper.bin");
    snprintf(keep, sizeof keep, "%s", ap);
    unlink(keep);
    CHECK(lt_atomic_open(keep, &af, err, sizeof err) == LT_OK, "open: %s", err);
    CHECK(lt_atomic_fd(af) >= 0, "fd");
    CHECK(lt_atomic_write(af, "abc", 3, err, sizeof err) == LT_OK, "write: %s", err);
    CHECK(count_prefixed(tmp, "st_helper.bin.tmp.") == 1, "temp file while writing");
    lt_atomic_abort(af);
    CHECK(count_prefixed(tmp, "st_helper.bin") == 0, "nothing after abort");

    char stale[1100];
    snprintf(stale, sizeof stale, "%s.tmp.%ld", keep, (long)getpid());
    FILE *fp = fopen(stale, "wb");
    if (fp) {
        fputs("stale", fp);
        fclose(fp);
    }
    CHECK(lt_atomic_open(keep, &af, err, sizeof err) == LT_OK, "open over stale: %s", err);
    CHECK(lt_atomic_write(af, "hello", 5, err, sizeof err) == LT_OK, "write: %s", err);
    CHECK(lt_atomic_commit(af, err, sizeof err) == LT_OK, "commit: %s", err);
    size_t len = 0;
    unsigned char *b = read_all(keep, &len);
    CHECK(b && len == 5 && memcmp(b, "hello", 5) == 0, "committed content");
    free(b);
    CHECK(count_prefixed(tmp, "st_helper.bin.tmp.") == 0, "no temp after commit");
    unlink(keep);
    lt_atomic_abort(NULL);
}

int main(void) {
    test_round_trip();
    test_empty_files();
    test_golden();
    test_corrupt();
    test_read_f32();
    test_open_errors();
    test_corpus();
    test_atomic();
    return lt_test_done("test_safetensors");
}
