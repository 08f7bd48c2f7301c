#ifndef CEXECUTORHOOK_H
#define CEXECUTORHOOK_H

#include <stdbool.h>

/// Stores `hook` into `*slot` only if `*slot` is still null, atomically (sequentially
/// consistent): a second installer, or one racing the runtime's own reader, never tears or
/// overwrites a hook. Returns whether this call installed it.
bool cqrs_install_hook(void *_Nullable *_Nonnull slot, void *_Nonnull hook);

/// Reads `*slot` atomically.
void *_Nullable cqrs_load_hook(void *_Nullable *_Nonnull slot);

#endif
