/*
 * test_cpus.c: the CPUs this process may use (core/base/wtt_cpus.c): the
 * cgroup v2 quota line, and the affinity mask narrowing the count.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "test.h"
#include "wtt_cpus.h"

#include <sched.h>
#include <unistd.h>


int
test_cpu_quota(void)
{
    ASSERT(wtt_cpu_quota("max 100000\n") == 0);
    ASSERT(wtt_cpu_quota("200000 100000\n") == 2);
    ASSERT(wtt_cpu_quota("150000 100000") == 2);      /* 1.5: rounded up */
    ASSERT(wtt_cpu_quota("50000 100000") == 1);
    ASSERT(wtt_cpu_quota("0 100000") == 0);
    ASSERT(wtt_cpu_quota("-1 100000") == 0);
    ASSERT(wtt_cpu_quota("100000 0") == 0);
    ASSERT(wtt_cpu_quota("100000") == 0);
    ASSERT(wtt_cpu_quota("100000 100000 x") == 0);
    ASSERT(wtt_cpu_quota("") == 0);
    ASSERT(wtt_cpu_quota(NULL) == 0);
    return 0;
}


/* Narrowing this thread's affinity to one CPU narrows the count to one;
 * the full mask gives no more than the CPUs online. */
int
test_cpu_count(void)
{
    cpu_set_t all, one;
    long      online = sysconf(_SC_NPROCESSORS_ONLN);
    int       n = wtt_cpu_count(), first = -1;

    ASSERT(n >= 1 && n <= online);
    ASSERT(sched_getaffinity(0, sizeof(all), &all) == 0);
    for (int c = 0; c < CPU_SETSIZE && first < 0; c++) {
        if (CPU_ISSET(c, &all)) {
            first = c;
        }
    }
    ASSERT(first >= 0);
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    ASSERT(sched_setaffinity(0, sizeof(one), &one) == 0);
    n = wtt_cpu_count();
    ASSERT(sched_setaffinity(0, sizeof(all), &all) == 0);
    ASSERT(n == 1);
    return 0;
}
