/* How much memory the host can still give this process: what the kernel
 * reports as available (/proc/meminfo's MemAvailable) and, when the process
 * runs in a control group with a limit (a container, a CI job), what is left
 * of that limit, and, under an address-space limit (`ulimit -v`, common on
 * shared clusters), what is left of that. The trainer checks its memory
 * plan against it before it allocates (train/trainer.c). */
#ifndef LT_UTIL_SYSMEM_H
#define LT_UTIL_SYSMEM_H

#include <stddef.h>

/* MemAvailable of a /proc/meminfo text, in bytes; 0 when absent or malformed. */
size_t lt_meminfo_available(const char *meminfo);

/* What is left of a control group's limit: limit - (usage - reclaimable),
 * from the text of a limit file ("max" or a byte count, as cgroup v2's
 * memory.max; a v1 memory.limit_in_bytes too), of a usage file
 * (memory.current, v1's memory.usage_in_bytes) and of the group's
 * memory.stat, whose inactive_file (v1: total_inactive_file) page cache the
 * kernel reclaims before it fails an allocation (stat may be NULL: none
 * counted). (size_t)-1 when there is no limit ("max", or a v1 "no limit"
 * value of 2^60 or more) or a text is malformed; 0 when the usage has reached
 * the limit. */
size_t lt_cgroup_left(const char *limit, const char *usage, const char *stat);

/* VmSize (the address space mapped) of a /proc/self/status text, in bytes;
 * 0 when absent or malformed. */
size_t lt_status_vmsize(const char *status);

/* The address space this process may still map: the soft RLIMIT_AS
 * (`ulimit -v`) less its VmSize; (size_t)-1 when there is no such limit or
 * VmSize cannot be read, 0 when the limit is reached. Under a limit, malloc
 * fails there whatever memory the host has free. */
size_t lt_address_space_left(void);

/* The memory available to this process now, in bytes: the smallest of
 * MemAvailable, what is left of its control group's limit (v2 at
 * /sys/fs/cgroup, else v1's memory controller; 1 byte when that is used up)
 * and the address space left under `ulimit -v`. `source` receives which one
 * set the figure ("MemAvailable", "the cgroup's memory.max", "the
 * address-space limit (ulimit -v)"). 0 when none could be read (not Linux,
 * no /proc): the caller then has no figure and should not guess one. */
size_t lt_host_mem_available(char *source, size_t len);

/* Gives the pages of freed heap memory back to the system (glibc's malloc_trim: freed blocks in the middle of
 * the heap stay resident otherwise); nothing where the C library has no such call. */
void lt_release_free_memory(void);

#endif
