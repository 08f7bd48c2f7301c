#include "cexecutorhook.h"

bool cqrs_install_hook(void **slot, void *hook) {
    void *expected = 0;
    return __atomic_compare_exchange_n(slot, &expected, hook, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

void *cqrs_load_hook(void **slot) {
    return __atomic_load_n(slot, __ATOMIC_SEQ_CST);
}

extern void *swift_task_enqueueGlobal_hook __attribute__((weak));

void **cqrs_enqueue_global_hook_slot(void) {
    return &swift_task_enqueueGlobal_hook;
}
