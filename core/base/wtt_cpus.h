/*
 * wtt_cpus.h: how many CPUs this process may use, for the engine's default
 * thread count and wtt.sys.cpu_count.
 */
#ifndef WTT_CPUS_H
#define WTT_CPUS_H

/*
 * CPUs this process may run on: its affinity mask (taskset, systemd's
 * CPUAffinity=, docker --cpuset-cpus), capped by the cgroup v2 CPU quota
 * of its cgroup and every parent (docker --cpus, systemd's CPUQuota=),
 * rounded up. At least 1; the online count when neither can be read.
 */
int wtt_cpu_count(void);

/*
 * The CPUs a cgroup v2 `cpu.max` line allows ("QUOTA PERIOD", rounded up),
 * or 0 when it sets no limit ("max ...") or cannot be read.
 */
int wtt_cpu_quota(const char *cpu_max);

#endif
