#ifndef CIDLEPOLLING_H
#define CIDLEPOLLING_H

/// The Linux calls the idle poller needs that Swift's Glibc module does not expose
/// (they need _GNU_SOURCE), and the CPU's spin-wait hint.

/// Pins the calling thread to `cpu`; 0 on success, else errno.
int cidle_pin_to_cpu(int cpu);
/// Gives the calling thread the SCHED_IDLE policy; 0 on success, else errno.
int cidle_become_sched_idle(void);
/// The calling thread's scheduling policy (sched_getscheduler(0)).
int cidle_policy(void);
/// The value of SCHED_IDLE.
int cidle_sched_idle_value(void);
/// How many CPUs the calling thread may run on.
int cidle_allowed_cpu_count(void);
/// Writes up to `capacity` CPU numbers the calling thread may run on; returns how many.
int cidle_allowed_cpus(int *cpus, int capacity);
/// One spin-wait hint (x86 PAUSE, arm64 YIELD): kinder to a sibling hyperthread than a bare loop.
void cidle_relax(void);

#endif
