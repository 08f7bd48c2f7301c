#ifndef CEXECUTORHOOK_H
#define CEXECUTORHOOK_H

#include <stdbool.h>

/// Stores `hook` into `*slot` only if `*slot` is still null, atomically (sequentially
/// consistent): a second installer, or one racing the runtime's own reader, never tears or
/// overwrites a hook. Returns whether this call installed it.
bool cqrs_install_hook(void *_Nullable *_Nonnull slot, void *_Nonnull hook);

/// Reads `*slot` atomically.
void *_Nullable cqrs_load_hook(void *_Nullable *_Nonnull slot);

/// The address of the Swift runtime's `swift_task_enqueueGlobal_hook` variable, or null when the
/// runtime linked in has none. A weak reference resolved by the linker, so that it is found
/// whether the runtime is a shared library or linked into the binary (`-static-stdlib`), where
/// `dlsym` cannot see it: a static binary does not export the runtime's symbols.
void *_Nullable *_Nullable cqrs_enqueue_global_hook_slot(void);

#endif
