/* Doubles written to JSON by src/io/json_number.h read back as the same double (cJSON's own printing keeps 15
 * significant digits and loses the last bits of many), in the shortest of 15-17 digits; a parsed tree's numbers
 * re-made exact print as they were read, keys kept. */
#include <stdint.h>
#include <string.h>

#include "io/json_number.h"
#include "testutil.h"

static double from_bits(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

int main(void) {
    /* 200,000 doubles of random bit patterns (finite ones) and every 1e-3 / 0.95^k */
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    int n = 0, lossy_cjson = 0, bad = 0;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double v = from_bits(x);
        if (!isfinite(v)) continue;
        cJSON *item = lt_json_number(v);
        char *t = cJSON_PrintUnformatted(item);
        bad += !t || strtod(t, NULL) != v;
        cJSON *c = cJSON_CreateNumber(v);
        char *tc = cJSON_PrintUnformatted(c);
        lossy_cjson += tc && strtod(tc, NULL) != v;
        free(t), free(tc);
        cJSON_Delete(item), cJSON_Delete(c);
        n++;
    }
    CHECK(bad == 0, "%d of %d doubles did not read back exactly", bad, n);
    printf("%d random doubles read back exactly (cJSON's own printing: %d of them lossy)\n", n, lossy_cjson);
    double lr = 1e-3;
    for (int k = 0; k < 100; k++, lr /= 0.95) {
        cJSON *item = lt_json_number(lr);
        char *t = cJSON_PrintUnformatted(item);
        CHECK(t && strtod(t, NULL) == lr, "1e-3 / 0.95^%d: %s", k, t ? t : "(null)");
        free(t);
        cJSON_Delete(item);
    }
    /* the shortest form: what Python's repr prints for these */
    const struct {
        double v;
        const char *text;
    } shortest[] = {{0.1, "0.1"}, {1e-3, "0.001"}, {5, "5"}, {0.1 + 0.2, "0.30000000000000004"},
                    {1.0 / 3.0, "0.3333333333333333"}, {-2.5e-8, "-2.5e-08"}};
    for (size_t i = 0; i < sizeof shortest / sizeof shortest[0]; i++) {
        cJSON *item = lt_json_number(shortest[i].v);
        char *t = cJSON_PrintUnformatted(item);
        CHECK(t && !strcmp(t, shortest[i].text), "%.17g printed as %s, expected %s", shortest[i].v, t ? t : "(null)",
              shortest[i].text);
        free(t);
        cJSON_Delete(item);
    }
    cJSON *inf = lt_json_number(INFINITY);
    CHECK(cJSON_IsNull(inf), "inf should be null");
    cJSON_Delete(inf);

    /* a parsed tree, made exact: keys, nesting and arrays kept, values printed as read */
    const char *text = "{\"a\":0.30000000000000004,\"b\":[1,0.1,{\"c\":0.003157894736842105}],\"s\":\"x\"}";
    cJSON *tree = cJSON_Parse(text);
    lt_json_numbers_exact(tree);
    char *out = cJSON_PrintUnformatted(tree);
    CHECK(out && !strcmp(out, text), "re-printed as %s", out ? out : "(null)");
    free(out);
    cJSON_Delete(tree);
    return lt_test_done("test_json_number");
}
