/* leantrain: safetensors reading (mmap, strictly validated) and writing (atomic).
 *
 * File layout: an 8-byte little-endian header length N, N bytes of JSON header
 * (tensor name -> {"dtype", "shape", "data_offsets": [begin, end]}, plus an
 * optional "__metadata__" object of string -> string), then the data section.
 * Offsets are relative to the start of the data section.
 *
 * The reader rejects, with a message naming the file and the problem: a file
 * shorter than 8 bytes, a header length beyond the file or above
 * LT_ST_MAX_HEADER, invalid JSON, a header that is not an object, unknown
 * dtypes, negative or non-integer shape entries, shape x dtype size not equal
 * to the byte span, offsets out of bounds, unordered, overlapping or leaving
 * gaps, a data section not fully covered, duplicate tensor names, metadata
 * values that are not strings, and more than LT_ST_MAX_DIMS dimensions.
 * Stricter than cJSON alone, it also rejects: a header that does not start
 * with '{' (so a UTF-8 BOM too) or has anything but JSON whitespace after the
 * object, invalid UTF-8, control characters, the \u0000 escape (a NUL would
 * silently truncate a name), tensor entries with keys other than dtype, shape
 * and data_offsets, duplicate keys anywhere, and sizes or offsets of 2^53 or
 * more (the largest a JSON number is guaranteed to carry exactly). Numbers
 * such as 4.0 or 4e0 are accepted as the integer 4. */
#ifndef LEANTRAIN_SAFETENSORS_H
#define LEANTRAIN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "leantrain/dtype.h"
#include "leantrain/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LT_ST_MAX_DIMS 8
#define LT_ST_MAX_HEADER (100u * 1024u * 1024u) /* same bound as the reference reader */

/* One tensor of an opened file. Pointers stay valid until lt_st_close. */
typedef struct lt_st_tensor {
    const char *name;
    char dtype[8];             /* safetensors spelling: "F32", "BF16", "U8", ... */
    int lt_type;               /* the matching lt_dtype, or -1 when leantrain has none */
    size_t elem_size;          /* bytes per element */
    int ndim;                  /* 0 for a scalar */
    int64_t shape[LT_ST_MAX_DIMS];
    size_t numel;              /* product of shape (1 for a scalar) */
    const void *data;          /* into the mapping; may be unaligned: use memcpy */
    size_t nbytes;
} lt_st_tensor;

typedef struct lt_st_file lt_st_file;

/* Opens and validates `path` by mmap. On failure returns an error code, sets
 * *out to NULL and writes a message naming the file into err[errlen]. */
lt_status lt_st_open(const char *path, lt_st_file **out, char *err, size_t errlen);

/* Validates an in-memory buffer (not copied: it must outlive the handle).
 * `label` names the buffer in error messages. Used by the fuzzer and tests. */
lt_status lt_st_parse(const void *buf, size_t len, const char *label, lt_st_file **out, char *err,
                      size_t errlen);

/* Releases the mapping and every tensor pointer. NULL is a no-op. */
void lt_st_close(lt_st_file *f);

/* Number of tensors, in data-offset order. */
size_t lt_st_count(const lt_st_file *f);

/* The i-th tensor (0 <= i < count), in data-offset order. */
const lt_st_tensor *lt_st_at(const lt_st_file *f, size_t i);

/* The tensor called `name`, or NULL. */
const lt_st_tensor *lt_st_find(const lt_st_file *f, const char *name);

/* Number of "__metadata__" entries, and the i-th key/value (sorted by key). */
size_t lt_st_meta_count(const lt_st_file *f);
void lt_st_meta_at(const lt_st_file *f, size_t i, const char **key, const char **value);

/* The metadata value for `key`, or NULL. */
const char *lt_st_meta(const lt_st_file *f, const char *key);

/* Copies tensor `t` into `out` as n f32 values, converting from F32, BF16, F16,
 * F64, I32, I64 or U8. Returns LT_ERR_ARG if n != t->numel or the dtype has no
 * conversion (the message goes to err). */
lt_status lt_st_read_f32(const lt_st_tensor *t, float *out, size_t n, char *err, size_t errlen);

/* ---- writing ---- */

typedef struct lt_st_writer lt_st_writer;

/* A new, empty writer, or NULL when out of memory. */
lt_st_writer *lt_st_writer_new(void);

/* Adds a tensor. `data` (nbytes = numel x dtype size) is referenced, not copied:
 * it must stay valid until lt_st_writer_write returns; it may be NULL when
 * nbytes is 0. Tensors are written in the order added. Returns LT_ERR_ARG for
 * a duplicate, empty, "__metadata__" or non-UTF-8 name, an unknown dtype, or a
 * bad shape (negative, more than LT_ST_MAX_DIMS dims, a dimension >= 2^53, or
 * a byte size that overflows size_t); the writer is unchanged then. */
lt_status lt_st_writer_add(lt_st_writer *w, const char *name, lt_dtype dtype, int ndim,
                           const int64_t *shape, const void *data);

/* Sets a metadata entry (both strings copied). A later value for the same key
 * wins. Returns LT_ERR_ARG when either string is not valid UTF-8. */
lt_status lt_st_writer_meta(lt_st_writer *w, const char *key, const char *value);

/* Writes the file atomically: `path`.tmp.<pid>, fsync, rename over `path`,
 * fsync of the directory. The header is padded with spaces so that the data
 * section starts at an 8-byte aligned file offset. On failure (LT_ERR_IO) no
 * file is left at the temporary name, `path` keeps its old content, and err
 * reads "<path>: <what failed>: <system error>"; the one exception is a failed
 * fsync of the directory, reported after the complete new file is in place.
 * The writer can be written again (e.g. to another path). */
lt_status lt_st_writer_write(lt_st_writer *w, const char *path, char *err, size_t errlen);

/* Frees the writer (not the tensor data). NULL is a no-op. */
void lt_st_writer_free(lt_st_writer *w);

#ifdef __cplusplus
}
#endif
#endif
