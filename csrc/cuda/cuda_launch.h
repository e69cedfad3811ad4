// Launch geometry and indexing shared by the elementwise CUDA kernels.
#pragma once

#include <algorithm>
#include <cstdint>

namespace sniper {

constexpr int kThreadsPerBlock = 256;

// Grid-stride kernels need at most this many blocks to fill any current GPU.
inline unsigned int elementwise_blocks(int64_t total) {
  const int64_t needed = (total + kThreadsPerBlock - 1) / kThreadsPerBlock;
  return static_cast<unsigned int>(std::min<int64_t>(std::max<int64_t>(needed, 1), 65535));
}

// The chip and the box of element i of a [B, K, N] output, for the elementwise kernels.
__device__ __forceinline__ void chip_and_box_at(int64_t i, int64_t K, int64_t N, const float* chips, const float* boxes,
                                                const float*& chip, const float*& box) {
  const int64_t row = i / N;  // batch item * K + chip
  chip = chips + row * 4;
  box = boxes + ((row / K) * N + i % N) * 4;
}

}  // namespace sniper
