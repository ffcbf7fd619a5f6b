/* leantrain (internal, util layer): writing an error message into a
 * caller's buffer, the convention of every function that takes
 * (char *err, size_t errlen). */
#ifndef LEANTRAIN_UTIL_ERRMSG_H
#define LEANTRAIN_UTIL_ERRMSG_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* printf-formats the message into err[errlen] (truncated to fit, always
 * terminated); nothing when err is NULL or errlen 0. */
void lt_errmsg(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif
