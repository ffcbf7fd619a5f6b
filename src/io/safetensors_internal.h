/* leantrain (internal): in-memory serialization of a safetensors writer, for
 * the tests and the fuzzer, which check that what the writer produces reads
 * back identically without going through the file system. */
#ifndef LEANTRAIN_IO_SAFETENSORS_INTERNAL_H
#define LEANTRAIN_IO_SAFETENSORS_INTERNAL_H

#include <stddef.h>

#include "leantrain/safetensors.h"

/* The exact bytes lt_st_writer_write would put in the file, in a buffer the
 * caller frees. Returns LT_ERR_ARG (sizes past 2^53 or a header over
 * LT_ST_MAX_HEADER) or LT_ERR_NOMEM on failure, with *out set to NULL. */
lt_status lt_st_writer_to_memory(const lt_st_writer *w, unsigned char **out, size_t *len);

#endif
