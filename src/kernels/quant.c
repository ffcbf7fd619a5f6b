/* Quantization tables and the plain reference search (see quant.h). */
#include "kernels/quant.h"

#include <math.h>

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Floats ordered as integers: a monotone key for bisection over float values. */
static int64_t key_of(float x) {
    int32_t i;
    memcpy(&i, &x, 4);
    return i < 0 ? -(int64_t)(i & 0x7fffffff) : (int64_t)i;
}
static float of_key(int64_t k) {
    uint32_t u = k < 0 ? (uint32_t)(-k) | 0x80000000u : (uint32_t)k;
    return from_bits(u);
}

static int ref_rule(const lt_qtable *t, float x) {
    return t->rule == LT_Q_EVEN ? lt_q_nearest_even_ref(t->map, t->n, x) : lt_q_nearest_up_ref(t->map, t->n, x);
}

/* The rule's code for x: the number of thresholds at or below x (they are sorted). */
static int code_by_thresholds(const lt_qtable *t, float x) {
    int lo = 0, hi = t->n - 1; /* the answer is in [lo, hi] */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (x >= t->th[mid]) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

int lt_qtable_build(lt_qtable *t, const float *map, int n, lt_qrule rule) {
    if (n < 2 || n > 256) return -1;
    for (int i = 0; i < n; i++) {
        if (!isfinite(map[i]) || (i > 0 && !(map[i] > map[i - 1]))) return -1;
        t->map[i] = map[i];
    }
    t->n = n;
    t->rule = rule;
    t->nneg = 0;
    while (t->nneg < n && signbit(map[t->nneg])) t->nneg++;
    /* thresholds: bisect, over the floats between map[c] and map[c+1], for the first that rounds up */
    for (int c = 0; c + 1 < n; c++) {
        int64_t lo = key_of(map[c]), hi = key_of(map[c + 1]); /* ref(lo) <= c, ref(hi) = c+1 */
        while (hi - lo > 1) {
            int64_t mid = lo + (hi - lo) / 2;
            if (ref_rule(t, of_key(mid)) > c) hi = mid;
            else lo = mid;
        }
        t->th[c] = of_key(hi);
    }
    for (int c = n - 1; c < 256; c++) t->th[c] = INFINITY;
    /* -0 would key below +0: a threshold of exactly 0 must also admit -0, so key it as -0 */
    for (int c = 0; c < 256; c++) t->thk[c] = t->th[c] == 0.0f ? lt_f32_key(-0.0f) : lt_f32_key(t->th[c]);
    t->fast = 1;
    for (uint32_t b = 0; b < 65536; b++) {
        /* the smallest and largest values a float with these top bits can have */
        float lo = from_bits((b & 0x8000u) ? ((b << 16) | 0xffffu) : (b << 16));
        float hi = from_bits((b & 0x8000u) ? (b << 16) : ((b << 16) | 0xffffu));
        if (isnan(lo) || isnan(hi)) {
            t->near[b] = 0;
            continue;
        }
        int c = code_by_thresholds(t, lo);
        t->near[b] = (uint8_t)c;
        /* one compare must finish the search anywhere in the bucket */
        if (code_by_thresholds(t, hi) > c + 1) t->fast = 0;
    }
    return 0;
}

int lt_q_nearest_even_ref(const float *map, int n, float x) {
    int best = 0;
    double bd = fabs((double)x - (double)map[0]);
    for (int i = 1; i < n; i++) {
        double d = fabs((double)x - (double)map[i]);
        if (d < bd || (d == bd && (i & 1) == 0)) best = i, bd = d;
    }
    return best;
}

int lt_q_nearest_up_ref(const float *map, int n, float x) {
    int d = 0;
    for (int i = 0; i < n; i++)
        if (x >= map[i]) d = i;
    int u = d + 1 < n ? d + 1 : d;
    float res = x - map[d], half = (map[u] - map[d]) * 0.5f;
    return res >= half ? u : d;
}
