#ifndef MARTLET_CSHA256_H
#define MARTLET_CSHA256_H

#include <stddef.h>
#include <stdint.h>

/// Whether this CPU has SHA-256 instructions that `martlet_sha256_compress_hardware` can use
/// (x86-64 with SHA extensions, SSSE3 and SSE4.1). Checked once; 0 elsewhere.
int martlet_sha256_hardware_available(void);

/// Mixes `blocks` 64-byte blocks at `data` into `state` (a, b, …, h) with the CPU's SHA
/// instructions. Only call it when `martlet_sha256_hardware_available()` is 1.
void martlet_sha256_compress_hardware(uint32_t state[8], const uint8_t *data, size_t blocks);

#endif
