/* Token data: llm.c token files (validated) and text as bytes, by mmap. */
#include "io/tokens.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomic_file.h"

lt_status lt_tokens_open(const char *path, lt_tokens *t, char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return LT_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return LT_ERR_IO;
    }
    size_t len = (size_t)st.st_size;
    if (len == 0) {
        snprintf(err, errlen, "%s: the file is empty: no tokens to train on", path);
        close(fd);
        return LT_ERR_FORMAT;
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        snprintf(err, errlen, "%s: cannot map: %s", path, strerror(errno));
        return LT_ERR_IO;
    }
    t->map = map;
    t->map_len = len;
    int32_t head[3] = {0, 0, 0};
    if (len >= 12) memcpy(head, map, sizeof head);
    if (head[0] == LT_TOKENS_MAGIC) {
        if (len < LT_TOKENS_HEADER_BYTES) {
            snprintf(err, errlen, "%s: token file is %zu bytes, shorter than its 1024-byte header", path, len);
            goto bad;
        }
        if (head[1] != LT_TOKENS_VERSION) {
            snprintf(err, errlen, "%s: token file version %d, expected %d", path, head[1], LT_TOKENS_VERSION);
            goto bad;
        }
        if (head[2] <= 0 || (size_t)head[2] * 2 + LT_TOKENS_HEADER_BYTES != len) {
            snprintf(err, errlen, "%s: header says %d tokens (%zu bytes) but the file is %zu bytes", path, head[2],
                     (size_t)(head[2] > 0 ? head[2] : 0) * 2 + LT_TOKENS_HEADER_BYTES, len);
            goto bad;
        }
        t->bytes = 2;
        t->n = (size_t)head[2];
        t->data = (const char *)map + LT_TOKENS_HEADER_BYTES;
    } else {
        t->bytes = 1;
        t->n = len;
        t->data = map;
    }
    int mx = 0;
    for (size_t i = 0; i < t->n; i++) {
        int v = lt_tokens_get(t, i);
        if (v > mx) mx = v;
    }
    t->max_id = mx;
    return LT_OK;
bad:
    munmap(map, len);
    memset(t, 0, sizeof *t);
    return LT_ERR_FORMAT;
}

/* Makes t the n ids at `owned` (bytes 1 or 2 each), taking the buffer. */
static void adopt(lt_tokens *t, void *owned, size_t n, int bytes) {
    memset(t, 0, sizeof *t);
    t->bytes = bytes;
    t->n = n;
    t->data = owned;
    t->owned = owned;
    t->map_len = n * (size_t)bytes;
    int mx = 0;
    for (size_t i = 0; i < n; i++)
        if (lt_tokens_get(t, i) > mx) mx = lt_tokens_get(t, i);
    t->max_id = mx;
}

void lt_tokens_adopt_u16(lt_tokens *t, uint16_t *ids, size_t n) { adopt(t, ids, n, 2); }

void lt_tokens_adopt_u8(lt_tokens *t, uint8_t *ids, size_t n) { adopt(t, ids, n, 1); }

void lt_tokens_release_before(const lt_tokens *t, size_t upto) {
    if (!t->map || upto == 0) return;
    const size_t page = (size_t)sysconf(_SC_PAGESIZE), whole = upto / page * page;
    if (whole) madvise(t->map, whole, MADV_DONTNEED);
}

void lt_tokens_close(lt_tokens *t) {
    if (t->map) munmap(t->map, t->map_len);
    free(t->owned);
    memset(t, 0, sizeof *t);
}

lt_status lt_tokens_write(const char *path, const int32_t *ids, size_t n, char *err, size_t errlen) {
    if (n > INT32_MAX) {
        snprintf(err, errlen, "%s: %zu tokens do not fit the llm.c header", path, n);
        return LT_ERR_ARG;
    }
    int32_t head[256] = {0};
    head[0] = LT_TOKENS_MAGIC;
    head[1] = LT_TOKENS_VERSION;
    head[2] = (int32_t)n;
    uint16_t *buf = malloc((n ? n : 1) * sizeof *buf);
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory", path);
        return LT_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] > 65535) {
            snprintf(err, errlen, "%s: token %zu is %d: llm.c files hold ids 0..65535", path, i, ids[i]);
            free(buf);
            return LT_ERR_ARG;
        }
        buf[i] = (uint16_t)ids[i];
    }
    lt_atomic_file *af = NULL;
    lt_status st = lt_atomic_open(path, &af, err, errlen);
    if (st == LT_OK) st = lt_atomic_write(af, head, sizeof head, err, errlen);
    if (st == LT_OK) st = lt_atomic_write(af, buf, n * sizeof *buf, err, errlen);
    if (st == LT_OK) st = lt_atomic_commit(af, err, errlen);
    else if (af) lt_atomic_abort(af);
    free(buf);
    return st;
}
