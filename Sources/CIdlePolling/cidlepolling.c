#define _GNU_SOURCE
#include "cidlepolling.h"
#include <errno.h>
#include <sched.h>

int cidle_pin_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : errno;
}

int cidle_become_sched_idle(void) {
    struct sched_param parameters = {0};
    return sched_setscheduler(0, SCHED_IDLE, &parameters) == 0 ? 0 : errno;
}

int cidle_policy(void) { return sched_getscheduler(0); }

int cidle_sched_idle_value(void) { return SCHED_IDLE; }

int cidle_allowed_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    return CPU_COUNT(&set);
}

int cidle_allowed_cpus(int *cpus, int capacity) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    int n = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && n < capacity; cpu++) {
        if (CPU_ISSET(cpu, &set)) cpus[n++] = cpu;
    }
    return n;
}

// One step of a spinner's wait: a pause, then the CPU offered to any runnable thread. The yield is
// what makes the spinner give way to a thread woken on its CPU (see IdlePoller's "How").
void cidle_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
    sched_yield();
}
