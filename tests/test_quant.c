/* Blockwise quantization: the generated maps equal the shared table; the fast
 * search (one table lookup and one compare) equals the plain search everywhere it can differ (every map entry,
 * every midpoint between neighbours and the floats around it, both ends of
 * every 16-bit bucket, and a dense sweep); ties go to the even index
 * (bitsandbytes) or up (torchao); 4-bit packing round-trips. */
#include <math.h>
#include <stdint.h>

#include "kernels/quant.h"
#include "testutil.h"

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int load_shared_maps(float maps[4][256], int sizes[4]) {
    char path[512];
    snprintf(path, sizeof path, "%s/golden/dynamic-maps.txt", lt_test_data_dir());
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f) return 0;
    char line[1024];
    int t = -1;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') {
            sizes[++t] = 0;
        } else if (t >= 0 && line[0] != '\n') {
            maps[t][sizes[t]++] = strtof(line, NULL);
        }
    }
    fclose(f);
    return t + 1;
}

static lt_qtable te, tu; /* one table per rule */
static int fast_even_ok(const lt_qtable *t, float x) {
    (void)t;
    return lt_q_nearest(&te, x) == lt_q_nearest_even_ref(te.map, te.n, x);
}
static int fast_up_ok(const lt_qtable *t, float x) {
    (void)t;
    return lt_q_nearest(&tu, x) == lt_q_nearest_up_ref(tu.map, tu.n, x);
}

int main(void) {
    float maps[4][256];
    int sizes[4];
    const float *gen[4] = {lt_qmap_signed8, lt_qmap_unsigned8, lt_qmap_signed4, lt_qmap_linear4};
    const int gen_n[4] = {256, 256, 16, 16};
    CHECK(load_shared_maps(maps, sizes) == 4, "expected 4 maps in the shared table");
    for (int m = 0; m < 4; m++) {
        CHECK(sizes[m] == gen_n[m], "map %d has %d entries, expected %d", m, sizes[m], gen_n[m]);
        CHECK(memcmp(maps[m], gen[m], (size_t)gen_n[m] * 4) == 0, "generated map %d differs from the shared table", m);
    }
    CHECK(lt_qmap_signed8[127] == 0.0f && lt_qmap_signed8[0] > -1.0f && lt_qmap_signed8[255] == 1.0f,
          "signed 8-bit map: index 127 must be 0, no -1, max 1");
    for (int i = 0; i < 16; i++) CHECK(lt_qmap_linear4[i] == (float)(i + 1) / 16.0f, "linear4[%d]", i);

    static lt_qtable t;
    for (int m = 0; m < 4; m++) {
        CHECK(lt_qtable_build(&te, gen[m], gen_n[m], LT_Q_EVEN) == 0, "map %d rejected", m);
        CHECK(lt_qtable_build(&tu, gen[m], gen_n[m], LT_Q_UP) == 0, "map %d rejected", m);
        CHECK(te.fast && tu.fast, "map %d: the one-compare search is not exact for a shipped map", m);
        t = te;
        int n = gen_n[m];
        long bad_even = 0, bad_up = 0, checked = 0;
        /* every entry quantizes to itself, under both rules */
        for (int i = 0; i < n; i++) {
            CHECK(lt_q_nearest(&te, t.map[i]) == i, "map %d: entry %d does not quantize to itself", m, i);
            CHECK(lt_q_nearest(&tu, t.map[i]) == i, "map %d: entry %d (torchao rule)", m, i);
        }
        /* midpoints: exact (in double) ties go to the even index; floats around them */
        for (int i = 0; i + 1 < n; i++) {
            double mid = 0.5 * ((double)t.map[i] + (double)t.map[i + 1]);
            float mf = (float)mid;
            if ((double)mf == mid) {
                int want = (i & 1) ? i + 1 : i;
                CHECK(lt_q_nearest(&te, mf) == want, "map %d: tie between %d and %d gave %d, want %d", m, i, i + 1,
                      lt_q_nearest(&te, mf), want);
                CHECK(lt_q_nearest_even_ref(t.map, n, mf) == want, "map %d: reference tie %d/%d", m, i, i + 1);
                CHECK(lt_q_nearest(&tu, mf) == i + 1, "map %d: torchao tie between %d and %d not up", m, i, i + 1);
            }
            for (int d = -3; d <= 3; d++) {
                float x = from_bits(lt_f32_bits(mf) + (uint32_t)d);
                bad_even += !fast_even_ok(&t, x);
                bad_up += !fast_up_ok(&t, x);
                checked++;
            }
            for (int d = -2; d <= 2; d++) { /* and around each entry */
                float x = from_bits(lt_f32_bits(t.map[i]) + (uint32_t)d);
                bad_even += !fast_even_ok(&t, x);
                bad_up += !fast_up_ok(&t, x);
                checked++;
            }
        }
        /* both ends of every bucket of the fast table, within [-1, 1] */
        for (uint32_t b = 0; b < 65536; b++) {
            for (uint32_t lo = 0; lo <= 0xffff; lo += 0xffff) {
                float x = from_bits((b << 16) | lo);
                if (isnan(x) || fabsf(x) > 1.0f) continue;
                bad_even += !fast_even_ok(&t, x);
                bad_up += !fast_up_ok(&t, x);
                checked++;
            }
        }
        /* a sweep: every 997th float bit pattern in [-1, 1] (LT_TEST_QUICK: every 9973rd) */
        uint32_t stride = getenv("LT_TEST_QUICK") ? 9973u : 997u;
        for (uint64_t u = 0; u <= 0xffffffffu; u += stride) {
            float x = from_bits((uint32_t)u);
            if (isnan(x) || fabsf(x) > 1.0f) continue;
            bad_even += !fast_even_ok(&t, x);
            bad_up += !fast_up_ok(&t, x);
            checked++;
        }
        CHECK(bad_even == 0 && bad_up == 0, "map %d: fast search differs from the plain one on %ld/%ld of %ld values",
              m, bad_even, bad_up, checked);
        printf("map %d: fast search equals the plain search on %ld values\n", m, checked);
    }
    /* the sign fix needs the signed map to straddle 0 at index 127 */
    CHECK(lt_qtable_build(&t, lt_qmap_signed8, 256, LT_Q_EVEN) == 0, "build");
    CHECK(lt_q_nearest(&t, 1e-9f) == 127 && lt_q_nearest(&t, -1e-9f) == 127,
          "tiny values round to the zero code before the sign fix");
    /* unsorted or non-finite maps are refused */
    float badmap[16];
    memcpy(badmap, lt_qmap_linear4, sizeof badmap);
    badmap[3] = badmap[2];
    CHECK(lt_qtable_build(&t, badmap, 16, LT_Q_EVEN) == -1, "unsorted map accepted");
    badmap[3] = NAN;
    CHECK(lt_qtable_build(&t, badmap, 16, LT_Q_UP) == -1, "NaN map accepted");
    /* a map too dense for 16-bit buckets falls back to the plain search, still exact */
    float dense[256];
    for (int i = 0; i < 256; i++) dense[i] = 0.5f + (float)i * 1e-6f;
    CHECK(lt_qtable_build(&t, dense, 256, LT_Q_EVEN) == 0 && !t.fast, "dense map should not use the fast search");
    int dense_ok = 1;
    for (int i = 0; i < 1000; i++) {
        float x = 0.5f + (float)i * 2.7e-7f;
        dense_ok &= lt_q_nearest(&t, x) == lt_q_nearest_even_ref(dense, 256, x);
    }
    CHECK(dense_ok, "fallback search differs from the reference");
    /* 4-bit packing: element 2i high nibble, 2i+1 low nibble */
    uint8_t packed[3] = {0, 0, 0};
    int codes[5] = {0xa, 0x3, 0xf, 0x0, 0x7};
    for (int i = 0; i < 5; i++) lt_q4_set(packed, (size_t)i, codes[i]);
    CHECK(packed[0] == 0xa3 && packed[1] == 0xf0 && packed[2] == 0x70, "packing order: %02x %02x %02x", packed[0],
          packed[1], packed[2]);
    for (int i = 0; i < 5; i++) CHECK(lt_q4_get(packed, (size_t)i) == codes[i], "unpack %d", i);
    lt_q4_set(packed, 1, 0x5);
    CHECK(packed[0] == 0xa5 && lt_q4_get(packed, 0) == 0xa, "set keeps the other nibble");
    return lt_test_done("test_quant");
}
