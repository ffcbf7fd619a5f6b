/* generate()'s logits processors and the next-token choice (see sample.h). */
#include "model/sample.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

lt_sample_params lt_sample_defaults(void) {
    return (lt_sample_params){.do_sample = 0, .temperature = 1.0, .top_k = 50, .top_p = 1.0, .repetition_penalty = 1.0};
}

int lt_sample_check(const lt_sample_params *p, char *err, size_t errlen) {
    const char *bad = !(p->temperature > 0 && isfinite(p->temperature)) ? "--temperature must be > 0 (0 with "
                                                                          "--do_sample false: greedy)"
                      : p->top_k < 0                                    ? "--top_k must be >= 0 (0: no top-k)"
                      : !(p->top_p > 0 && p->top_p <= 1)                ? "--top_p must be in (0, 1] (1: no top-p)"
                      : !(p->repetition_penalty > 0 && isfinite(p->repetition_penalty))
                          ? "--repetition_penalty must be > 0 (1: none)"
                          : NULL;
    if (bad) snprintf(err, errlen, "%s", bad);
    return bad ? -1 : 0;
}

/* the k-th largest of scores[V] (k in 1..V), by selection over the index array idx[V] (reordered) */
static float kth_largest(const float *s, int *idx, int V, int k) {
    for (int i = 0; i < V; i++) idx[i] = i;
    int lo = 0, hi = V - 1, want = k - 1; /* position in descending order */
    while (lo < hi) {
        const float pivot = s[idx[lo + (hi - lo) / 2]];
        int i = lo, j = hi;
        while (i <= j) {
            while (s[idx[i]] > pivot) i++;
            while (s[idx[j]] < pivot) j--;
            if (i <= j) {
                const int t = idx[i];
                idx[i] = idx[j], idx[j] = t;
                i++, j--;
            }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else break; /* between j and i: every element there equals the pivot */
    }
    return s[idx[want]];
}

static int ascending(const void *a, const void *b, void *ctx) {
    const float *s = ctx, x = s[*(const int *)a], y = s[*(const int *)b];
    return (x > y) - (x < y);
}

void lt_sample_process(float *scores, int V, const lt_sample_params *p, const int32_t *history, size_t n,
                       int *scratch) {
    if (p->repetition_penalty != 1.0) { /* RepetitionPenaltyLogitsProcessor: each id of the history once */
        const float pen = (float)p->repetition_penalty;
        for (int v = 0; v < V; v++) scratch[v] = 0;
        for (size_t i = 0; i < n; i++) {
            const int32_t id = history[i];
            if (id < 0 || id >= V || scratch[id]) continue;
            scratch[id] = 1;
            scores[id] = scores[id] < 0 ? scores[id] * pen : scores[id] / pen;
        }
    }
    if (!p->do_sample) return; /* the warpers act only when sampling */
    if (p->temperature != 1.0) {
        const float t = (float)p->temperature;
        for (int v = 0; v < V; v++) scores[v] /= t;
    }
    if (p->top_k > 0 && p->top_k < V) { /* TopKLogitsWarper */
        const float th = kth_largest(scores, scratch, V, p->top_k);
        for (int v = 0; v < V; v++)
            if (scores[v] < th) scores[v] = -INFINITY;
    }
    if (p->top_p < 1.0) { /* TopPLogitsWarper over the scores still in (a removed one has probability 0) */
        int m = 0;
        for (int v = 0; v < V; v++)
            if (scores[v] > -INFINITY) scratch[m++] = v;
        if (m == 0) return;
        qsort_r(scratch, (size_t)m, sizeof *scratch, ascending, scores);
        const float mx = scores[scratch[m - 1]];
        double total = 0;
        for (int i = 0; i < m; i++) total += (double)expf(scores[scratch[i]] - mx);
        /* torch: the softmax in float, its running sum accumulated in double and stored in float, compared with
           1 - top_p in float */
        const float cut = (float)(1.0 - p->top_p);
        double run = 0;
        for (int i = 0; i < m - 1; i++) { /* the largest stays */
            run += (double)(float)((double)expf(scores[scratch[i]] - mx) / total);
            if ((float)run <= cut) scores[scratch[i]] = -INFINITY;
            else break; /* the running sum only grows */
        }
    }
}

int lt_sample_pick(const float *scores, int V, int do_sample, double u) {
    int best = 0;
    for (int v = 1; v < V; v++)
        if (scores[v] > scores[best]) best = v;
    if (!do_sample) return best;
    const float mx = scores[best];
    if (!(mx > -INFINITY)) return best; /* nothing left to draw from */
    double total = 0;
    for (int v = 0; v < V; v++) total += scores[v] > -INFINITY ? exp((double)scores[v] - mx) : 0.0;
    const double target = u * total;
    double c = 0;
    int last = best;
    for (int v = 0; v < V; v++) {
        if (!(scores[v] > -INFINITY)) continue;
        c += exp((double)scores[v] - mx);
        last = v;
        if (c > target) return v;
    }
    return last;
}
