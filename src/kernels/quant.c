/* Quantization tables and the plain reference search (see quant.h). */
#include "kernels/quant.h"

#include <math.h>

int lt_qtable_build(lt_qtable *t, const float *map, int n) {
    if (n < 2 || n > 256) return -1;
    for (int i = 0; i < n; i++) {
        if (!isfinite(map[i]) || (i > 0 && !(map[i] > map[i - 1]))) return -1;
        t->map[i] = map[i];
    }
    t->n = n;
    for (uint32_t b = 0; b < 65536; b++) {
        /* the smallest value any float with these top bits can have */
        uint32_t bits = (b & 0x8000u) ? ((b << 16) | 0xffffu) : (b << 16);
        float lo;
        memcpy(&lo, &bits, 4);
        int i = 0;
        if (!isnan(lo))
            while (i + 1 < n && lo >= map[i + 1]) i++;
        t->floor[b] = (uint8_t)i;
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
