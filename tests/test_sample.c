/* The next-token choice (src/model/sample.c) against transformers' generate() itself
 * (tests/data/generate/generate.json, scripts/make-generate-reference.py): for greedy and sampled settings
 * (temperature, top-k, top-p, the repetition penalty, alone and together), at each of 6 steps, generate()'s raw
 * logits through lt_sample_process give exactly the scores its logits processors made (the same kept set, the
 * same floats); greedy, lt_sample_pick chooses generate()'s token; sampled, generate()'s token is one that was
 * kept. And the draw: over a grid of 2^17 numbers u, each token is chosen with its softmax probability
 * (recomputed in float64), within the grid's resolution. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "model/sample.h"
#include "testutil.h"

static double num(const cJSON *o, const char *key, double dflt) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsBool(v) ? (double)cJSON_IsTrue(v) : cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static void test_against_generate(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/generate/generate.json", lt_test_data_dir());
    char *text = lt_test_read_file(path, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(j != NULL, "%s: cannot read or parse", path);
    if (!j) return;
    const int L = cJSON_GetArraySize(cJSON_GetObjectItem(j, "prompt"));
    const cJSON *c;
    int ncases = 0, nsteps = 0, removed = 0, kept = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "cases")) {
        const cJSON *pj = cJSON_GetObjectItem(c, "params"), *toks = cJSON_GetObjectItem(c, "tokens"), *st;
        lt_sample_params p = lt_sample_defaults();
        p.do_sample = (int)num(pj, "do_sample", 0);
        p.temperature = num(pj, "temperature", p.temperature);
        p.top_k = (int)num(pj, "top_k", p.top_k);
        p.top_p = num(pj, "top_p", p.top_p);
        p.repetition_penalty = num(pj, "repetition_penalty", p.repetition_penalty);
        char err[256];
        CHECK(lt_sample_check(&p, err, sizeof err) == 0, "case %d: %s", ncases, err);
        const int ntok = cJSON_GetArraySize(toks);
        int32_t *hist = malloc(sizeof(int32_t) * (size_t)ntok);
        for (int i = 0; i < ntok; i++) hist[i] = cJSON_GetArrayItem(toks, i)->valueint;
        int s = 0;
        cJSON_ArrayForEach(st, cJSON_GetObjectItem(c, "steps")) {
            const cJSON *lj = cJSON_GetObjectItem(st, "logits"), *sj = cJSON_GetObjectItem(st, "scores");
            const int V = cJSON_GetArraySize(lj);
            float *sc = malloc(sizeof(float) * (size_t)V);
            int *scratch = malloc(sizeof(int) * (size_t)V);
            for (int v = 0; v < V; v++) sc[v] = (float)cJSON_GetArrayItem(lj, v)->valuedouble;
            lt_sample_process(sc, V, &p, hist, (size_t)(L + s), scratch);
            int diff = 0, first = -1;
            for (int v = 0; v < V; v++) {
                const cJSON *w = cJSON_GetArrayItem(sj, v);
                const int same = cJSON_IsNull(w) ? sc[v] == -INFINITY : sc[v] == (float)w->valuedouble;
                if (!same && first < 0) first = v;
                diff += !same;
                removed += cJSON_IsNull(w), kept += !cJSON_IsNull(w);
            }
            CHECK(diff == 0, "case %d step %d: %d of %d scores differ from generate()'s (first at %d: %.9g, its %s)",
                  ncases, s, diff, V, first, first >= 0 ? sc[first] : 0.0,
                  first >= 0 ? cJSON_PrintUnformatted(cJSON_GetArrayItem(sj, first)) : "");
            const int next = hist[L + s];
            if (!p.do_sample)
                CHECK(lt_sample_pick(sc, V, 0, 0.0) == next, "case %d step %d: greedy chose %d, generate() %d",
                      ncases, s, lt_sample_pick(sc, V, 0, 0.0), next);
            else
                CHECK(sc[next] > -INFINITY, "case %d step %d: generate() drew %d, which was removed here", ncases, s,
                      next);
            free(sc), free(scratch);
            s++, nsteps++;
        }
        free(hist);
        ncases++;
    }
    cJSON_Delete(j);
    CHECK(ncases >= 6 && removed > 0 && kept > 0, "%d cases, %d scores removed, %d kept", ncases, removed, kept);
    printf("generate()'s processors: %d cases x steps (%d in all), every score the same (%d removed, %d kept)\n",
           ncases, nsteps, removed, kept);
}

/* lt_sample_pick over u = (i + 0.5) / 2^17: the fraction choosing each token is its probability */
static void test_draw(void) {
    enum { V = 37, N = 1 << 17 };
    float sc[V];
    for (int v = 0; v < V; v++) sc[v] = (float)(0.37 * ((v * 7) % 11) - 0.2 * (v % 3));
    sc[4] = sc[9] = -INFINITY; /* removed: never chosen */
    double w[V], tot = 0;
    for (int v = 0; v < V; v++) tot += (w[v] = sc[v] > -INFINITY ? exp((double)sc[v] - 3.7) : 0.0);
    int count[V] = {0};
    for (int i = 0; i < N; i++) count[lt_sample_pick(sc, V, 1, (i + 0.5) / N)]++;
    double worst = 0;
    for (int v = 0; v < V; v++) worst = fmax(worst, fabs((double)count[v] / N - w[v] / tot));
    CHECK(worst <= 2.0 / N && count[4] == 0 && count[9] == 0, "draw frequencies off by %.3g (grid 2^-17)", worst);
    /* greedy: the first largest */
    float t[5] = {1, 3, 2, 3, -1};
    CHECK(lt_sample_pick(t, 5, 0, 0.9) == 1, "greedy: not the first largest");
    printf("draws: frequencies within %.2g of the probabilities (grid 2^-17); greedy takes the first largest\n",
           worst);
}

/* top-k over many shapes against a sort: the k-th largest is the threshold, ties kept */
static void test_top_k(void) {
    enum { V = 101 };
    float sc[V], orig[V], sorted[V];
    int scratch[V], bad = 0;
    uint64_t r = 12345;
    lt_sample_params p = lt_sample_defaults();
    p.do_sample = 1;
    for (int trial = 0; trial < 300; trial++) {
        for (int v = 0; v < V; v++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            orig[v] = (float)((r >> 40) % (trial % 3 ? 1000 : 7)); /* few distinct values: many ties */
        }
        p.top_k = 1 + trial % V;
        memcpy(sc, orig, sizeof sc);
        lt_sample_process(sc, V, &p, NULL, 0, scratch);
        memcpy(sorted, orig, sizeof sorted);
        for (int a = 1; a < V; a++) /* descending insertion sort */
            for (int b = a; b > 0 && sorted[b] > sorted[b - 1]; b--) {
                const float x = sorted[b];
                sorted[b] = sorted[b - 1], sorted[b - 1] = x;
            }
        const float th = sorted[p.top_k - 1];
        for (int v = 0; v < V; v++) bad += (orig[v] < th) != (sc[v] == -INFINITY);
    }
    CHECK(bad == 0, "top-k: %d scores kept or removed against the sorted threshold", bad);
}

static void test_check(void) {
    char err[256];
    lt_sample_params p = lt_sample_defaults();
    p.top_p = 0;
    CHECK(lt_sample_check(&p, err, sizeof err) && strstr(err, "--top_p"), "top_p 0 accepted");
    p = lt_sample_defaults(), p.temperature = -1;
    CHECK(lt_sample_check(&p, err, sizeof err) && strstr(err, "--temperature"), "temperature -1 accepted");
    p = lt_sample_defaults(), p.repetition_penalty = 0;
    CHECK(lt_sample_check(&p, err, sizeof err) && strstr(err, "--repetition_penalty"), "penalty 0 accepted");
}

int main(void) {
    test_against_generate();
    test_draw();
    test_top_k();
    test_check();
    return lt_test_done("test_sample");
}
