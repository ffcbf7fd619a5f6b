/* The host's available memory (see sysmem.h). */
#include "util/sysmem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* the "Key:   N kB" field of a /proc text (meminfo, status), in bytes; 0 when absent or malformed */
static size_t proc_kb(const char *text, const char *key) {
    const char *p = text ? strstr(text, key) : NULL;
    if (!p) return 0;
    char *end;
    unsigned long long kb = strtoull(p + strlen(key), &end, 10);
    if (end == p + strlen(key)) return 0;
    while (*end == ' ') end++;
    if (strncmp(end, "kB", 2) != 0) return 0;
    return (size_t)kb * 1024;
}

size_t lt_meminfo_available(const char *meminfo) { return proc_kb(meminfo, "MemAvailable:"); }

/* a byte count alone on its line (a trailing newline allowed) into *v; 0 on anything else */
static int parse_count(const char *s, unsigned long long *v) {
    char *end;
    if (!s || *s < '0' || *s > '9') return 0;
    *v = strtoull(s, &end, 10);
    while (*end == '\n' || *end == ' ') end++;
    return *end == 0;
}

/* the value of `key` (at a line's start, then a space) in a memory.stat text; 0 when absent */
static unsigned long long stat_value(const char *stat, const char *key) {
    size_t klen = strlen(key);
    for (const char *p = stat; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, key, klen) && p[klen] == ' ') return strtoull(p + klen + 1, NULL, 10);
    return 0;
}

size_t lt_cgroup_left(const char *limit, const char *usage, const char *stat) {
    unsigned long long l, u;
    if (!limit || !parse_count(limit, &l) || !parse_count(usage, &u)) return (size_t)-1; /* "max", or unreadable */
    if (l >= 1ULL << 60) return (size_t)-1; /* v1 writes its "unlimited" as a page-rounded 2^63 */
    unsigned long long cache = stat_value(stat, "total_inactive_file"); /* v1: the group and its children */
    if (!cache) cache = stat_value(stat, "inactive_file");              /* v2 (v1's own-group figure otherwise) */
    u = cache < u ? u - cache : 0;
    return u >= l ? 0 : (size_t)(l - u);
}

/* a small text file into buf (at most len - 1 bytes), or NULL */
static char *slurp(const char *path, char *buf, size_t len) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = 0;
    return n ? buf : NULL;
}

size_t lt_status_vmsize(const char *status) { return proc_kb(status, "VmSize:"); }

size_t lt_address_space_left(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return (size_t)-1;
    char status[4096];
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return (size_t)-1;
    size_t n = fread(status, 1, sizeof status - 1, f);
    fclose(f);
    status[n] = 0;
    size_t vm = lt_status_vmsize(status);
    if (!vm) return (size_t)-1;
    return (size_t)rl.rlim_cur > vm ? (size_t)rl.rlim_cur - vm : 0;
}

size_t lt_host_mem_available(char *source, size_t len) {
    char info[8192], lim[64], use[64], stat[4096];
    size_t avail = 0;
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        size_t n = fread(info, 1, sizeof info - 1, f);
        fclose(f);
        info[n] = 0;
        avail = lt_meminfo_available(info);
    }
    if (source && len) snprintf(source, len, "MemAvailable");
    size_t left = (size_t)-1;
    const char *what = NULL;
    if (slurp("/sys/fs/cgroup/memory.max", lim, sizeof lim) && slurp("/sys/fs/cgroup/memory.current", use, sizeof use))
        left = lt_cgroup_left(lim, use, slurp("/sys/fs/cgroup/memory.stat", stat, sizeof stat)),
        what = "the cgroup's memory.max";
    else if (slurp("/sys/fs/cgroup/memory/memory.limit_in_bytes", lim, sizeof lim) &&
             slurp("/sys/fs/cgroup/memory/memory.usage_in_bytes", use, sizeof use))
        left = lt_cgroup_left(lim, use, slurp("/sys/fs/cgroup/memory/memory.stat", stat, sizeof stat)),
        what = "the cgroup's memory.limit_in_bytes";
    if (what && left != (size_t)-1 && (avail == 0 || left < avail)) {
        avail = left ? left : 1; /* used up: a figure of nothing, not "unknown" */
        if (source && len) snprintf(source, len, "%s", what);
    }
    size_t as = lt_address_space_left();
    if (as != (size_t)-1 && (avail == 0 || as < avail)) {
        avail = as ? as : 1;
        if (source && len) snprintf(source, len, "the address-space limit (ulimit -v)");
    }
    return avail;
}

void lt_release_free_memory(void) {
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}
