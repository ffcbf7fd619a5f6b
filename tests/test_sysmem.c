/* The host's available memory (src/util/sysmem.c): /proc/meminfo's MemAvailable and a control group's limit less
 * its usage (its inactive page cache not counted), parsed from texts as the kernel writes them, and the live figure against this machine's own
 * /proc/meminfo. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "util/sysmem.h"

int main(void) {
    const char *meminfo = "MemTotal:       24588756 kB\nMemFree:         1036504 kB\n"
                          "MemAvailable:   20123456 kB\nBuffers:          123456 kB\n";
    CHECK(lt_meminfo_available(meminfo) == (size_t)20123456 * 1024, "MemAvailable: %zu",
          lt_meminfo_available(meminfo));
    CHECK(lt_meminfo_available("MemTotal: 1 kB\n") == 0, "no MemAvailable line should read as 0");
    CHECK(lt_meminfo_available("MemAvailable: x kB\n") == 0, "a malformed MemAvailable should read as 0");
    CHECK(lt_meminfo_available("MemAvailable: 12 MB\n") == 0, "a unit other than kB should read as 0");
    CHECK(lt_meminfo_available(NULL) == 0, "no text should read as 0");

    /* cgroup v2: memory.max "max" (no limit) or bytes; v1: a page-rounded 2^63 for no limit; the inactive page
     * cache of memory.stat (v2 inactive_file, v1 total_inactive_file) counts as free */
    CHECK(lt_cgroup_left("max\n", "123456\n", NULL) == (size_t)-1, "memory.max max should be no limit");
    CHECK(lt_cgroup_left("25769803776\n", "1073741824\n", NULL) == (size_t)23 << 30, "23 GiB left: %zu",
          lt_cgroup_left("25769803776\n", "1073741824\n", NULL));
    const char *v2stat = "anon 536870912\nfile 805306368\nactive_file 268435456\ninactive_file 536870912\n";
    const char *v1stat = "cache 805306368\nrss 1\ninactive_file 7\ntotal_inactive_file 536870912\n";
    CHECK(lt_cgroup_left("25769803776\n", "1073741824\n", v2stat) == (size_t)47 << 29, "v2: 23.5 GiB left: %zu",
          lt_cgroup_left("25769803776\n", "1073741824\n", v2stat));
    CHECK(lt_cgroup_left("25769803776\n", "1073741824\n", "total_inactive_file 536870912\n") == (size_t)47 << 29,
          "v1: 23.5 GiB left");
    CHECK(lt_cgroup_left("25769803776\n", "1073741824\n", v1stat) == (size_t)47 << 29,
          "v1 stat: total_inactive_file (the hierarchy's) should win over the group's own inactive_file");
    CHECK(lt_cgroup_left("9223372036854771712\n", "5\n", NULL) == (size_t)-1, "v1's unlimited should be no limit");
    CHECK(lt_cgroup_left("1000\n", "1000\n", NULL) == 0 &&
              lt_cgroup_left("1000\n", "2000\n", "inactive_file 500\n") == 0 &&
              lt_cgroup_left("1000\n", "1200\n", "inactive_file 500\n") == 300,
          "usage at or past the limit should leave 0, the inactive cache not counted");
    CHECK(lt_cgroup_left("10x\n", "5\n", NULL) == (size_t)-1 && lt_cgroup_left("100\n", "", NULL) == (size_t)-1 &&
              lt_cgroup_left(NULL, "1", NULL) == (size_t)-1,
          "malformed texts should read as no figure");

    /* the live figure: positive, at most MemTotal, and named */
    char src[64] = "";
    size_t avail = lt_host_mem_available(src, sizeof src);
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char text[8192];
        size_t n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[n] = 0;
        const char *t = strstr(text, "MemTotal:");
        size_t total = t ? (size_t)strtoull(t + 9, NULL, 10) * 1024 : 0;
        CHECK(avail > 0 && avail <= total, "available %zu of MemTotal %zu", avail, total);
        CHECK(src[0] != 0, "the figure's source is not named");
        printf("this machine: %.0f MiB available (%s) of %.0f MiB\n", avail / 1048576.0, src, total / 1048576.0);
    }
    return lt_test_done("test_sysmem");
}
