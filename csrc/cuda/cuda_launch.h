// Launch geometry shared by the elementwise CUDA kernels.
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

}  // namespace sniper
