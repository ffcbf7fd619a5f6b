/* A monotonic clock for timings, progress bars and benchmarks. */
#ifndef LT_UTIL_CLOCK_H
#define LT_UTIL_CLOCK_H

#include <time.h>

/* Seconds on CLOCK_MONOTONIC (only differences mean anything). */
static inline double lt_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
