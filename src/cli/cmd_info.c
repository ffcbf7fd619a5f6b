/* `leantrain info FILE...`: a human-readable summary of safetensors files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "leantrain/safetensors.h"

#define INFO_MAX_VALUE 200 /* characters of a metadata value shown before "..." */

static const char k_usage[] =
    "usage: leantrain info FILE...\n"
    "Prints each safetensors file's metadata (key = value, long values cut at 200\n"
    "characters) and its tensors (name, dtype, shape, bytes), in data order.\n"
    "Exit status: 0 when every file was read, 1 when any could not be, 2 on a\n"
    "usage error.\n";

/* A printable copy of s: control characters escaped so one entry stays on one
 * line, cut after max_chars characters (UTF-8 code points, never inside one)
 * with "..." appended; max_chars 0 means no limit. NULL when out of memory. */
static char *printable(const char *s, size_t max_chars) {
    size_t len = strlen(s);
    if (len > (SIZE_MAX - 4) / 4) return NULL;
    char *out = malloc(4 * len + 4); /* "\xNN" is the longest escape */
    if (!out) return NULL;
    size_t o = 0, chars = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int lead = (*p & 0xc0) != 0x80;
        if (lead && max_chars && chars == max_chars) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        chars += (size_t)lead;
        if (*p == '\n') {
            memcpy(out + o, "\\n", 2);
            o += 2;
        } else if (*p == '\t') {
            memcpy(out + o, "\\t", 2);
            o += 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            o += (size_t)snprintf(out + o, 5, "\\x%02x", *p);
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = 0;
    return out;
}

/* Display width in characters (UTF-8 code points), for column alignment. */
static size_t width(const char *s) {
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) w += (*p & 0xc0) != 0x80;
    return w;
}

static void pad_print(const char *s, size_t w) {
    fputs(s, stdout);
    for (size_t k = width(s); k < w; k++) putchar(' ');
}

static char *shape_str(const lt_st_tensor *t) {
    char *s = malloc(LT_ST_MAX_DIMS * 22 + 3);
    if (!s) return NULL;
    size_t k = 0;
    s[k++] = '[';
    for (int d = 0; d < t->ndim; d++)
        k += (size_t)sprintf(s + k, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    s[k++] = ']';
    s[k] = 0;
    return s;
}

/* Prints one file; returns 0 on success, 1 after reporting an error. */
static int info_file(const char *path) {
    char err[1024];
    lt_st_file *f = NULL;
    if (lt_st_open(path, &f, err, sizeof err) != LT_OK) {
        fprintf(stderr, "leantrain info: %s\n", err);
        return 1;
    }
    int rc = 0;
    size_t nt = lt_st_count(f), nm = lt_st_meta_count(f);
    char **names = calloc(nt ? nt : 1, sizeof *names);
    char **shapes = calloc(nt ? nt : 1, sizeof *shapes);
    char **keys = calloc(nm ? nm : 1, sizeof *keys);
    char **vals = calloc(nm ? nm : 1, sizeof *vals);
    if (!names || !shapes || !keys || !vals) goto oom;

    size_t total = 0, wname = strlen("NAME"), wdtype = strlen("DTYPE"), wshape = strlen("SHAPE"),
           wbytes = strlen("BYTES"), wkey = 0;
    for (size_t i = 0; i < nt; i++) {
        const lt_st_tensor *t = lt_st_at(f, i);
        names[i] = printable(t->name, 0);
        shapes[i] = shape_str(t);
        if (!names[i] || !shapes[i]) goto oom;
        char num[32];
        size_t wb = (size_t)snprintf(num, sizeof num, "%zu", t->nbytes);
        if (width(names[i]) > wname) wname = width(names[i]);
        if (strlen(t->dtype) > wdtype) wdtype = strlen(t->dtype);
        if (width(shapes[i]) > wshape) wshape = width(shapes[i]);
        if (wb > wbytes) wbytes = wb;
        total += t->nbytes; /* cannot wrap: the tensors tile a mapped file */
    }
    for (size_t i = 0; i < nm; i++) {
        const char *k, *v;
        lt_st_meta_at(f, i, &k, &v);
        keys[i] = printable(k, 0);
        vals[i] = printable(v, INFO_MAX_VALUE);
        if (!keys[i] || !vals[i]) goto oom;
        if (width(keys[i]) > wkey) wkey = width(keys[i]);
    }

    printf("%s\n", path);
    printf("  metadata: %zu entr%s\n", nm, nm == 1 ? "y" : "ies");
    for (size_t i = 0; i < nm; i++) {
        printf("    ");
        pad_print(keys[i], wkey);
        printf(" = %s\n", vals[i]);
    }
    printf("  tensors: %zu, %zu bytes\n", nt, total);
    if (nt) {
        printf("    ");
        pad_print("NAME", wname);
        printf("  ");
        pad_print("DTYPE", wdtype);
        printf("  ");
        pad_print("SHAPE", wshape);
        printf("  %*s\n", (int)wbytes, "BYTES");
    }
    for (size_t i = 0; i < nt; i++) {
        const lt_st_tensor *t = lt_st_at(f, i);
        printf("    ");
        pad_print(names[i], wname);
        printf("  ");
        pad_print(t->dtype, wdtype);
        printf("  ");
        pad_print(shapes[i], wshape);
        printf("  %*zu\n", (int)wbytes, t->nbytes);
    }
    goto out;
oom:
    fprintf(stderr, "leantrain info: %s: out of memory\n", path);
    rc = 1;
out:
    for (size_t i = 0; names && i < nt; i++) free(names[i]);
    for (size_t i = 0; shapes && i < nt; i++) free(shapes[i]);
    for (size_t i = 0; keys && i < nm; i++) free(keys[i]);
    for (size_t i = 0; vals && i < nm; i++) free(vals[i]);
    free(names);
    free(shapes);
    free(keys);
    free(vals);
    lt_st_close(f);
    return rc;
}

int lt_cmd_info(int argc, char **argv) {
    int first = 1;
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        fputs(k_usage, stdout);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--") == 0) first = 2;
    else if (argc > 1 && argv[1][0] == '-' && argv[1][1] != 0) {
        fprintf(stderr, "leantrain info: unknown option '%s'\n%s", argv[1], k_usage);
        return 2;
    }
    if (first >= argc) {
        fprintf(stderr, "leantrain info: no file given\n%s", k_usage);
        return 2;
    }
    int rc = 0;
    for (int i = first; i < argc; i++) {
        if (i > first) putchar('\n');
        rc |= info_file(argv[i]);
    }
    /* A full disk or closed pipe shows up only here. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "leantrain info: cannot write the output: %s\n", strerror(errno));
        return 1;
    }
    return rc;
}
