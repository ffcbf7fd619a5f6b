/* leantrain (internal): UTF-8 validation shared by the safetensors reader and
 * writer, so that the writer never produces a header the reader would reject. */
#ifndef LEANTRAIN_IO_UTF8_H
#define LEANTRAIN_IO_UTF8_H

#include <stddef.h>

/* Returns the offset of the first byte of `s[0..n)` that is not part of a
 * well-formed UTF-8 sequence (overlong forms, surrogates and code points above
 * U+10FFFF are ill-formed), or n when the whole buffer is valid. */
size_t lt_utf8_check(const void *s, size_t n);

#endif
