#ifndef CCRC32C_H
#define CCRC32C_H

#include <stddef.h>
#include <stdint.h>

/// Whether this CPU has a CRC-32C instruction (SSE4.2 on x86-64, the CRC extension on ARMv8).
int ccrc32c_hardware_available(void);

/// Continues a CRC-32C over `count` bytes with the CPU's instruction. `crc` is the running value
/// before its final inversion (start with 0xFFFFFFFF). Call only when ccrc32c_hardware_available().
uint32_t ccrc32c_hardware_update(uint32_t crc, const void *bytes, size_t count);

#endif
