/* Crash-safe file replacement: temporary file, fsync, rename, directory fsync. */
#include "io/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct lt_atomic_file {
    int fd;
    char *path;
    char *tmp;
};

static lt_status io_fail(char *err, size_t errlen, const char *path, int e, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static lt_status io_fail(char *err, size_t errlen, const char *path, int e, const char *fmt, ...) {
    if (err && errlen) {
        int k = snprintf(err, errlen, "%s: ", path);
        if (k >= 0 && (size_t)k < errlen) {
            va_list ap;
            va_start(ap, fmt);
            int m = vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
            va_end(ap);
            if (m >= 0 && (size_t)k + (size_t)m < errlen)
                snprintf(err + k + m, errlen - (size_t)k - (size_t)m, ": %s", strerror(e));
        }
    }
    return LT_ERR_IO;
}

static void free_af(lt_atomic_file *af) {
    free(af->path);
    free(af->tmp);
    free(af);
}

lt_status lt_atomic_open(const char *path, lt_atomic_file **out, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!out) return LT_ERR_ARG;
    *out = NULL;
    if (!path || !*path) {
        if (err && errlen) snprintf(err, errlen, "lt_atomic_open: empty path");
        return LT_ERR_ARG;
    }
    lt_atomic_file *af = calloc(1, sizeof *af);
    size_t plen = strlen(path);
    size_t tlen = plen + 32; /* ".tmp." + any pid */
    if (af) {
        af->fd = -1;
        af->path = malloc(plen + 1);
        af->tmp = malloc(tlen);
    }
    if (!af || !af->path || !af->tmp) {
        if (af) free_af(af);
        if (err && errlen) snprintf(err, errlen, "%s: out of memory", path);
        return LT_ERR_NOMEM;
    }
    memcpy(af->path, path, plen + 1);
    snprintf(af->tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
    /* O_EXCL so that a symlink planted at the temporary name is never
     * followed; a leftover with our name can only come from a dead process
     * whose pid we inherited, so it is removed and the create retried once. */
    for (int attempt = 0; attempt < 2; attempt++) {
        af->fd = open(af->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (af->fd >= 0 || errno != EEXIST || attempt) break;
        if (unlink(af->tmp) != 0) break;
    }
    if (af->fd < 0) {
        int e = errno;
        lt_status rc = io_fail(err, errlen, path, e, "cannot create temporary file %s", af->tmp);
        free_af(af);
        return rc;
    }
    *out = af;
    return LT_OK;
}

int lt_atomic_fd(const lt_atomic_file *af) { return af ? af->fd : -1; }

lt_status lt_atomic_write(lt_atomic_file *af, const void *buf, size_t n, char *err, size_t errlen) {
    if (!af || af->fd < 0 || (!buf && n)) {
        if (err && errlen) snprintf(err, errlen, "lt_atomic_write: bad arguments");
        return LT_ERR_ARG;
    }
    const char *p = buf;
    while (n > 0) {
        /* Linux moves at most ~2 GiB per call anyway; asking for less keeps
         * the count well inside ssize_t everywhere. */
        size_t chunk = n < ((size_t)1 << 30) ? n : ((size_t)1 << 30);
        ssize_t w = write(af->fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            return io_fail(err, errlen, af->path, errno, "write to %s failed", af->tmp);
        }
        if (w == 0) return io_fail(err, errlen, af->path, ENOSPC, "write to %s failed", af->tmp);
        p += w;
        n -= (size_t)w;
    }
    return LT_OK;
}

void lt_atomic_abort(lt_atomic_file *af) {
    if (!af) return;
    if (af->fd >= 0) close(af->fd);
    unlink(af->tmp);
    free_af(af);
}

/* fsync of the directory makes the rename itself durable. */
static int sync_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) {
        dir = strdup(".");
    } else {
        size_t n = slash == path ? 1 : (size_t)(slash - path); /* "/x" lives in "/" */
        dir = malloc(n + 1);
        if (dir) {
            memcpy(dir, path, n);
            dir[n] = 0;
        }
    }
    if (!dir) return ENOMEM;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0) return errno;
    int e = 0;
    /* Some file systems cannot sync directories (EINVAL): nothing more can be done there. */
    if (fsync(fd) != 0 && errno != EINVAL) e = errno;
    close(fd);
    return e;
}

lt_status lt_atomic_commit(lt_atomic_file *af, char *err, size_t errlen) {
    if (!af) return LT_ERR_ARG;
    lt_status rc = LT_OK;
    if (fsync(af->fd) != 0) {
        rc = io_fail(err, errlen, af->path, errno, "fsync of %s failed", af->tmp);
        lt_atomic_abort(af);
        return rc;
    }
    int fd = af->fd;
    af->fd = -1;
    /* close() can report a deferred write error (e.g. on NFS). */
    if (close(fd) != 0) {
        rc = io_fail(err, errlen, af->path, errno, "close of %s failed", af->tmp);
        lt_atomic_abort(af);
        return rc;
    }
    if (rename(af->tmp, af->path) != 0) {
        rc = io_fail(err, errlen, af->path, errno, "cannot rename %s over it", af->tmp);
        lt_atomic_abort(af);
        return rc;
    }
    int e = sync_dir(af->path);
    if (e) rc = io_fail(err, errlen, af->path, e, "fsync of the containing directory failed");
    free_af(af);
    return rc;
}
