// SplitMix64, the counter-based generator behind every random choice of chip generation. Output k of
// a generator seeded with `key` is a pure function of (key, k), so a shuffle needs no generator state
// and the C++ kernels, the numpy glue and the pure-Python reference agree bit for bit
// (docs/chip_generation.md, section 3).
#pragma once

#include <cstdint>

namespace sniper {

inline uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Output k (0-based) of SplitMix64 seeded with key.
inline uint64_t splitmix64_nth(uint64_t key, uint64_t k) {
  return splitmix64_mix(key + (k + 1) * 0x9E3779B97F4A7C15ull);
}

}  // namespace sniper
