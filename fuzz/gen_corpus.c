/* Writes the seed corpus for fuzz_safetensors into the directory given as
 * argv[1]: valid files made by the writer, and invalid ones made by hand.
 * The build and run commands are in fuzz/README.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leantrain/safetensors.h"

static const char *g_dir;

static void put(const char *name, const void *buf, size_t len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(buf, 1, len, fp) != len || fclose(fp) != 0) {
        fprintf(stderr, "gen_corpus: cannot write %s\n", path);
        exit(1);
    }
}

/* A file from a header text and `data_len` bytes of patterned data. */
static void raw(const char *name, const char *header, size_t data_len) {
    size_t n = strlen(header);
    size_t len = 8 + n + data_len;
    unsigned char *b = malloc(len);
    if (!b) exit(1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((unsigned long long)n >> (8 * i));
    memcpy(b + 8, header, n);
    for (size_t i = 0; i < data_len; i++) b[8 + n + i] = (unsigned char)(i * 37 + 11);
    put(name, b, len);
    free(b);
}

static void write_valid(const char *name, lt_st_writer *w) {
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    if (lt_st_writer_write(w, path, err, sizeof err) != LT_OK) {
        fprintf(stderr, "gen_corpus: %s\n", err);
        exit(1);
    }
    lt_st_writer_free(w);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: gen_corpus DIR\n");
        return 2;
    }
    g_dir = argv[1];
    float f[12];
    for (int i = 0; i < 12; i++) f[i] = (float)i * 0.5f - 2.0f;
    uint16_t h[6] = {0x3c00, 0xbc00, 0x7c00, 0x0001, 0x7e00, 0x3555};
    uint8_t u[5] = {0, 1, 127, 128, 255};
    int32_t i32[3] = {-1, 0, 2147483647};
    int64_t i64[2] = {-5, 1234567890123LL};

    lt_st_writer *w = lt_st_writer_new();
    lt_st_writer_add(w, "w", LT_DTYPE_F32, 2, (int64_t[]){3, 4}, f);
    write_valid("valid_one_f32.safetensors", w);

    w = lt_st_writer_new();
    lt_st_writer_meta(w, "format", "optim-trace-1");
    lt_st_writer_meta(w, "note", "quote \" backslash \\ newline \n tab \t unicode \xc3\xa9");
    lt_st_writer_add(w, "a.f32", LT_DTYPE_F32, 1, (int64_t[]){5}, f);
    lt_st_writer_add(w, "b.bf16", LT_DTYPE_BF16, 2, (int64_t[]){2, 3}, h);
    lt_st_writer_add(w, "c.f16", LT_DTYPE_F16, 1, (int64_t[]){6}, h);
    lt_st_writer_add(w, "d.u8", LT_DTYPE_U8, 1, (int64_t[]){5}, u);
    lt_st_writer_add(w, "e.i32", LT_DTYPE_I32, 1, (int64_t[]){3}, i32);
    lt_st_writer_add(w, "f.i64", LT_DTYPE_I64, 1, (int64_t[]){2}, i64);
    lt_st_writer_add(w, "scalar", LT_DTYPE_F32, 0, NULL, f);
    lt_st_writer_add(w, "empty", LT_DTYPE_F32, 2, (int64_t[]){0, 7}, NULL);
    write_valid("valid_all_dtypes.safetensors", w);

    w = lt_st_writer_new();
    write_valid("valid_empty.safetensors", w);

    w = lt_st_writer_new();
    lt_st_writer_meta(w, "only", "metadata");
    write_valid("valid_meta_only.safetensors", w);

    w = lt_st_writer_new();
    lt_st_writer_add(w, "z1", LT_DTYPE_I64, 3, (int64_t[]){2, 0, 9}, NULL);
    lt_st_writer_add(w, "z2", LT_DTYPE_U8, 1, (int64_t[]){0}, NULL);
    lt_st_writer_add(w, "d8", LT_DTYPE_U8, 8, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 2}, u);
    write_valid("valid_zero_sized.safetensors", w);

    /* Valid by hand: dtypes leantrain has no enum for, unaligned data, padding. */
    raw("valid_other_dtypes.safetensors",
        "{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]},"
        "\"b\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[8,11]},"
        "\"c\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[11,13]},"
        "\"d\":{\"dtype\":\"U64\",\"shape\":[1],\"data_offsets\":[13,21]},"
        "\"e\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[21,23]},"
        "\"f\":{\"dtype\":\"F8_E5M2\",\"shape\":[1],\"data_offsets\":[23,24]},"
        "\"g\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[24,25]},"
        "\"h\":{\"dtype\":\"U16\",\"shape\":[1],\"data_offsets\":[25,27]},"
        "\"i\":{\"dtype\":\"U32\",\"shape\":[1],\"data_offsets\":[27,31]}}",
        31);
    raw("valid_reordered_keys.safetensors",
        "{\"y\":{\"data_offsets\":[8,16],\"shape\":[2],\"dtype\":\"F32\"},"
        "\"__metadata__\":{\"b\":\"2\",\"a\":\"1\"},"
        "\"x\":{\"shape\":[2,1],\"dtype\":\"I32\",\"data_offsets\":[0,8]}}   \t\n",
        16);
    raw("valid_escaped_name.safetensors",
        "{\"n\\u00e9\\\"\\\\\\ud83d\\ude00\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
        1);

    /* Invalid, one defect each. */
    put("bad_short.safetensors", "\x05\0\0\0", 4);
    raw("bad_not_json.safetensors", "{\"a\":", 0);
    raw("bad_array.safetensors", "[1,2]", 0);
    raw("bad_trailing.safetensors", "{} x", 0);
    raw("bad_dtype.safetensors", "{\"a\":{\"dtype\":\"F99\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    raw("bad_negative_dim.safetensors",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4);
    raw("bad_fraction_dim.safetensors",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4);
    raw("bad_size.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8);
    raw("bad_bounds.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4);
    raw("bad_overlap.safetensors",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
        12);
    raw("bad_gap.safetensors",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
        12);
    raw("bad_uncovered.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 9);
    raw("bad_duplicate.safetensors",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
        8);
    raw("bad_meta_value.safetensors", "{\"__metadata__\":{\"k\":1}}", 0);
    raw("bad_nul_escape.safetensors",
        "{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
    raw("bad_too_many_dims.safetensors",
        "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1);
    raw("bad_overflow.safetensors",
        "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,0]}}", 0);
    raw("bad_extra_key.safetensors",
        "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":0}}", 1);
    return 0;
}
