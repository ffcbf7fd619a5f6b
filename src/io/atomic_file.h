/* leantrain (internal): crash-safe file replacement, shared by the safetensors
 * writer and checkpoints.
 *
 * The content goes to "<path>.tmp.<pid>", which is fsynced, then renamed over
 * <path>, and the containing directory is fsynced; so after a crash <path>
 * holds either its old content or the complete new one, never a mix.
 *
 *     lt_atomic_file *af;
 *     if (lt_atomic_open(path, &af, err, len) != LT_OK) return ...;
 *     if (lt_atomic_write(af, buf, n, err, len) != LT_OK) { lt_atomic_abort(af); return ...; }
 *     return lt_atomic_commit(af, err, len);
 *
 * Every message has the form "<path>: <what failed>: <strerror>". Two writers
 * of the same path in one process at the same time are not supported (they
 * would share the temporary name). */
#ifndef LEANTRAIN_IO_ATOMIC_FILE_H
#define LEANTRAIN_IO_ATOMIC_FILE_H

#include <stddef.h>

#include "leantrain/status.h"

typedef struct lt_atomic_file lt_atomic_file;

/* Creates the temporary file next to `path` (a stale one left by a crashed
 * process with the same pid is replaced). Returns LT_ERR_IO when it cannot be
 * created (e.g. the directory does not exist), LT_ERR_NOMEM or LT_ERR_ARG. */
lt_status lt_atomic_open(const char *path, lt_atomic_file **out, char *err, size_t errlen);

/* Appends n bytes, retrying short writes and EINTR. On failure the file is
 * still open: call lt_atomic_abort. */
lt_status lt_atomic_write(lt_atomic_file *af, const void *buf, size_t n, char *err, size_t errlen);

/* The descriptor of the temporary file, for callers that write it themselves
 * (it must stay open: commit and abort close it). */
int lt_atomic_fd(const lt_atomic_file *af);

/* Flushes, closes and renames the temporary file over the target, then
 * fsyncs the directory; frees `af` in every case. On a failure before the
 * rename the temporary file is removed and the target is untouched. A failure
 * to sync the directory after the rename is reported (LT_ERR_IO), but the new
 * file is then already in place. */
lt_status lt_atomic_commit(lt_atomic_file *af, char *err, size_t errlen);

/* Closes and removes the temporary file and frees `af`. NULL is a no-op. */
void lt_atomic_abort(lt_atomic_file *af);

#endif
