/* The host's available memory (src/util/sysmem.c): /proc/meminfo's MemAvailable and a control group's limit less
 * its usage (its inactive page cache not counted), VmSize for the address space left under `ulimit -v`, parsed from
 * texts as the kernel writes them, and the live figures against this machine's own /proc files and a limit set
 * here. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

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

    /* VmSize of /proc/self/status, the address space mapped (what `ulimit -v` limits) */
    CHECK(lt_status_vmsize("Name:\tleantrain\nVmPeak:\t  999 kB\nVmSize:\t  307968 kB\nVmLck:\t 0 kB\n") ==
              (size_t)307968 * 1024,
          "VmSize: %zu", lt_status_vmsize("VmSize:\t  307968 kB\n"));
    CHECK(lt_status_vmsize("VmPeak: 5 kB\n") == 0 && lt_status_vmsize("VmSize: x kB\n") == 0 &&
              lt_status_vmsize("VmSize: 5 MB\n") == 0 && lt_status_vmsize(NULL) == 0,
          "an absent or malformed VmSize should read as 0");

    /* the live address-space figure: none without a limit; under a soft limit 1 GiB above what is mapped now, at
     * most 1 GiB (less what was mapped in between), and the available memory then names it; the limit restored */
    struct rlimit old;
    CHECK(getrlimit(RLIMIT_AS, &old) == 0, "getrlimit");
    if (old.rlim_cur == RLIM_INFINITY) {
        CHECK(lt_address_space_left() == (size_t)-1, "no limit should read as none: %zu", lt_address_space_left());
        char st[8192];
        FILE *sf = fopen("/proc/self/status", "r");
        size_t sn = sf ? fread(st, 1, sizeof st - 1, sf) : 0;
        if (sf) fclose(sf);
        st[sn] = 0;
        size_t vm = lt_status_vmsize(st);
        CHECK(vm > 0, "no VmSize in /proc/self/status");
        struct rlimit lim = {vm + ((size_t)1 << 30), old.rlim_max};
        if (vm > 0 && setrlimit(RLIMIT_AS, &lim) == 0) {
            size_t left = lt_address_space_left();
            char asrc[64] = "";
            size_t avail = lt_host_mem_available(asrc, sizeof asrc);
            setrlimit(RLIMIT_AS, &old);
            CHECK(left > ((size_t)1 << 29) && left <= ((size_t)1 << 30), "1 GiB above VmSize left %zu", left);
            CHECK(avail <= left + ((size_t)1 << 20) && strstr(asrc, "ulimit -v"),
                  "available %zu (%s) should be the address space left %zu", avail, asrc, left);
            printf("address space: %.0f MiB left under a limit 1 GiB above VmSize (%s)\n", left / 1048576.0, asrc);
        } else {
            CHECK(0, "setrlimit(RLIMIT_AS) to %zu failed", (size_t)lim.rlim_cur);
        }
    } else {
        CHECK(lt_address_space_left() < (size_t)old.rlim_cur, "a limit of %llu left %zu",
              (unsigned long long)old.rlim_cur, lt_address_space_left());
    }

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
