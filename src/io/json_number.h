/* Doubles in JSON that read back as the same double. cJSON prints a number with 15 significant digits unless
 * those read back "close enough" (within a relative DBL_EPSILON), so a checkpoint's learning rate, loss sums or
 * best metric written through cJSON_AddNumberToObject lose their last bits, and a resumed run is no longer the
 * uninterrupted one bit for bit. lt_json_add_number writes the fewest significant digits (up to 17) that strtod
 * (which cJSON_Parse uses) turns back into exactly v, as Python's repr does. */
#ifndef LT_IO_JSON_NUMBER_H
#define LT_IO_JSON_NUMBER_H

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* v in buf with the fewest significant digits (up to 17) that strtod reads back as v: 0.3, not
 * 0.29999999999999999; buf. */
static inline const char *lt_double_shortest(char *buf, size_t len, double v) {
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, len, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) break;
    }
    return buf;
}

/* v as a JSON item (null when v is not finite: JSON has no inf or NaN); NULL when out of memory. */
static inline cJSON *lt_json_number(double v) {
    if (!isfinite(v)) return cJSON_CreateNull();
    char buf[40];
    return cJSON_CreateRaw(lt_double_shortest(buf, sizeof buf, v));
}

/* Adds key: v to obj, as lt_json_number makes it; the item, or NULL when out of memory. */
static inline cJSON *lt_json_add_number(cJSON *obj, const char *key, double v) {
    cJSON *n = lt_json_number(v);
    if (n && !cJSON_AddItemToObject(obj, key, n)) {
        cJSON_Delete(n);
        return NULL;
    }
    return n;
}

/* 1 when item is a JSON number that is a whole number from 0 to max, its value then in *out; else 0. Counts read
 * back from a checkpoint (steps, positions, counters) go through it, so that a damaged or hand-edited file is
 * refused with a message instead of converted: a double outside an integer type's range converts with undefined
 * behaviour. max at most 2^53, past which doubles are no longer every whole number. */
static inline int lt_json_count(const cJSON *item, double max, long long *out) {
    if (!cJSON_IsNumber(item) || !(item->valuedouble >= 0) || item->valuedouble > max ||
        item->valuedouble != floor(item->valuedouble))
        return 0;
    *out = (long long)item->valuedouble;
    return 1;
}

/* The largest count lt_json_count is asked for: 2^53. */
#define LT_JSON_COUNT_MAX 9007199254740992.0

/* Makes every number in the tree under item (a trainer_state.json read back, say) one that lt_json_number made,
 * so that printing the tree again writes the values it was read with, not 15-digit roundings of them. */
static inline void lt_json_numbers_exact(cJSON *item) {
    for (cJSON *c = item ? item->child : NULL; c; c = c->next) {
        if (cJSON_IsNumber(c)) {
            cJSON *n = lt_json_number(c->valuedouble);
            /* in an object the replacement takes the key (ReplaceItemViaPointer alone would leave it unnamed) */
            int ok = n && (c->string ? cJSON_ReplaceItemInObjectCaseSensitive(item, c->string, n)
                                     : cJSON_ReplaceItemViaPointer(item, c, n));
            if (ok) c = n;
            else cJSON_Delete(n);
        } else {
            lt_json_numbers_exact(c);
        }
    }
}

#endif
