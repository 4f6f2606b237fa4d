/*
 * wtt_cpus.c: CPUs this process may use (see wtt_cpus.h). A container or a
 * unit limited to 2 CPUs on a 64-core host should run 2 inference threads,
 * not 64 that the quota then throttles in turn.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "wtt_cpus.h"

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Affinity masks sized for hosts this large. */
#define MAX_CPUS 8192


int
wtt_cpu_quota(const char *cpu_max)
{
    long long quota, period;
    char      extra;

    if (cpu_max == NULL
        || sscanf(cpu_max, "%lld %lld %c", &quota, &period, &extra) != 2
        || quota <= 0 || period <= 0)
    {
        return 0;       /* "max 100000", or nothing we can read */
    }
    if ((quota + period - 1) / period > INT_MAX) {
        return INT_MAX;
    }
    return (int) ((quota + period - 1) / period);
}


static int
affinity_count(void)
{
    cpu_set_t *set = CPU_ALLOC(MAX_CPUS);
    size_t     size = CPU_ALLOC_SIZE(MAX_CPUS);
    int        n = 0;

    if (set != NULL && sched_getaffinity(0, size, set) == 0) {
        n = CPU_COUNT_S(size, set);
    }
    CPU_FREE(set);
    return n;
}


/* The tightest quota on this process's cgroup v2 path, or 0 for none. */
static int
cgroup_quota(void)
{
    char  line[4096], path[4096 + 64], buf[128];
    FILE *f = fopen("/proc/self/cgroup", "re");
    int   best = 0;
    char *dir = NULL;

    if (f == NULL) {
        return 0;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "0::", 3) == 0) {
            line[strcspn(line, "\n")] = '\0';
            dir = line + 3;
            break;
        }
    }
    fclose(f);
    if (dir == NULL) {
        return 0;       /* cgroup v1 only: not read */
    }
    for (;;) {
        FILE *m;
        char *slash;

        snprintf(path, sizeof(path), "/sys/fs/cgroup%s/cpu.max",
                 strcmp(dir, "/") == 0 ? "" : dir);
        if ((m = fopen(path, "re")) != NULL) {
            if (fgets(buf, sizeof(buf), m) != NULL) {
                int q = wtt_cpu_quota(buf);
                if (q > 0 && (best == 0 || q < best)) {
                    best = q;
                }
            }
            fclose(m);
        }
        slash = strrchr(dir, '/');
        if (slash == NULL || (slash == dir && dir[1] == '\0')) {
            break;
        }
        if (slash == dir) {
            dir[1] = '\0';      /* up to the root */
        } else {
            *slash = '\0';
        }
    }
    return best;
}


int
wtt_cpu_count(void)
{
    int  n = affinity_count(), q = cgroup_quota();
    long online;

    if (n < 1) {
        online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online > 0 && online < INT_MAX ? (int) online : 1;
    }
    if (q > 0 && q < n) {
        n = q;
    }
    return n;
}
