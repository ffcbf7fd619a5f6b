/* Minimal test harness: CHECK records a failure with file:line and goes on;
 * a test binary returns non-zero when any check failed. */
#ifndef LT_TESTUTIL_H
#define LT_TESTUTIL_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int lt_test_failures = 0;
static int lt_test_checks = 0;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        lt_test_checks++;                                                       \
        if (!(cond)) {                                                          \
            lt_test_failures++;                                                 \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

/* The whole file at path, NUL-terminated (malloc'd; the caller frees), its length in *len when len is not NULL;
 * NULL when it cannot be opened or read whole. */
static inline char *lt_test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = 0;
        if (len) *len = (size_t)n;
    }
    return b;
}

/* Directory of the checked-in test data (tests/data), overridable by LT_TEST_DATA. */
static inline const char *lt_test_data_dir(void) {
    const char *d = getenv("LT_TEST_DATA");
    return d ? d : "tests/data";
}

/* Scratch directory for files a test writes (LT_TEST_TMP, default build/tmp). */
static inline const char *lt_test_tmp_dir(void) {
    const char *d = getenv("LT_TEST_TMP");
    return d ? d : "build/tmp";
}

static inline int lt_test_done(const char *name) {
    if (lt_test_failures) {
        fprintf(stderr, "%s: %d of %d checks FAILED\n", name, lt_test_failures, lt_test_checks);
        return 1;
    }
    printf("%s: %d checks passed\n", name, lt_test_checks);
    return 0;
}
#endif
