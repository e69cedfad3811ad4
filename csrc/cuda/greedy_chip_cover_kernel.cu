#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../op_checks.h"
#include "cuda_launch.h"

namespace sniper {
namespace {

constexpr int kWarpSize = 32;
// unsigned long long rather than uint64_t (unsigned long here): CUDA's max, __shfl_down_sync and
// __popcll are overloaded for it.
using Word = unsigned long long;

// Block-wide maximum of a 64-bit key; every thread gets the result. `warp_keys` holds one slot per warp.
__device__ Word block_max(Word key, Word* warp_keys, Word* result) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    key = max(key, __shfl_down_sync(0xffffffffu, key, offset));
  }
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  if (lane == 0) {
    warp_keys[warp] = key;
  }
  __syncthreads();
  if (warp == 0) {
    key = lane < blockDim.x / kWarpSize ? warp_keys[lane] : 0;
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
      key = max(key, __shfl_down_sync(0xffffffffu, key, offset));
    }
    if (lane == 0) {
      *result = key;
    }
  }
  __syncthreads();
  return *result;
}

// One block per batch item. Each chip's covered boxes are a bit set of 64-bit words: `bits` [K, W],
// `counts` [K] (still-uncovered boxes per chip), `uncovered` / `newly_covered` [W]. They live in
// dynamic shared memory when they fit (`workspace` is null) and in a per-item slice of `workspace`
// otherwise; the algorithm is the same.
__global__ void greedy_chip_cover_kernel(const bool* __restrict__ covers, int64_t K, int64_t N, int64_t W,
                                         int64_t min_count, Word* __restrict__ workspace, int64_t* __restrict__ picks) {
  extern __shared__ Word shared_state[];
  __shared__ Word warp_keys[kThreadsPerBlock / kWarpSize];
  __shared__ Word best_key;

  const int64_t b = blockIdx.x;
  const int64_t state_words = K * W + 2 * W + K;  // counts take one word each, for alignment
  Word* bits = workspace == nullptr ? shared_state : workspace + b * state_words;
  Word* uncovered = bits + K * W;
  Word* newly_covered = uncovered + W;
  int64_t* counts = reinterpret_cast<int64_t*>(newly_covered + W);
  const bool* item_covers = covers + b * K * N;
  picks += b * K;

  for (int64_t i = threadIdx.x; i < K * W; i += blockDim.x) {
    const int64_t k = i / W, first = (i % W) * 64;
    const int64_t last = min(first + 64, N);
    Word word = 0;
    for (int64_t n = first; n < last; ++n) {
      word |= Word{item_covers[k * N + n]} << (n - first);
    }
    bits[i] = word;
  }
  for (int64_t w = threadIdx.x; w < W; w += blockDim.x) {
    uncovered[w] = ~Word{0};
  }
  __syncthreads();
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
    int64_t count = 0;
    for (int64_t w = 0; w < W; ++w) {
      count += __popcll(bits[k * W + w]);
    }
    counts[k] = count;
  }
  __syncthreads();

  for (int64_t pick = 0; pick < K; ++pick) {
    // Key = count in the high half, inverted chip index in the low half: the maximum key is the
    // highest count and, among equal counts, the lowest chip index.
    Word key = 0;
    for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
      key = max(key, (static_cast<Word>(counts[k]) << 32) | (0xffffffffull - static_cast<Word>(k)));
    }
    key = block_max(key, warp_keys, &best_key);
    const int64_t best_count = static_cast<int64_t>(key >> 32);
    if (best_count < min_count) {
      break;  // every thread read the same key, so the whole block leaves together
    }
    const int64_t best = static_cast<int64_t>(0xffffffffull - (key & 0xffffffffull));
    if (threadIdx.x == 0) {
      picks[pick] = best;
    }
    for (int64_t w = threadIdx.x; w < W; w += blockDim.x) {
      const Word best_bits = bits[best * W + w];
      newly_covered[w] = best_bits & uncovered[w];
      uncovered[w] &= ~best_bits;
    }
    __syncthreads();
    for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
      if (counts[k] == 0) {
        continue;  // counts never grow
      }
      int64_t removed = 0;
      for (int64_t w = 0; w < W; ++w) {
        removed += __popcll(bits[k * W + w] & newly_covered[w]);
      }
      counts[k] -= removed;
    }
    __syncthreads();
  }
}

at::Tensor greedy_chip_cover_cuda(const at::Tensor& covers, int64_t min_count) {
  check_covers(covers);
  check_min_count(min_count);

  const c10::cuda::CUDAGuard device_guard(covers.device());
  const auto covers_c = covers.contiguous();
  const int64_t B = covers.size(0), K = covers.size(1), N = covers.size(2);
  auto picks = at::full({B, K}, -1, covers.options().dtype(at::kLong));
  if (B == 0 || K == 0 || N == 0) {
    return picks;  // nothing can be covered
  }
  const int64_t W = (N + 63) / 64;
  const int64_t state_words = K * W + 2 * W + K;
  const size_t state_bytes = static_cast<size_t>(state_words) * sizeof(Word);
  const size_t shared_limit = at::cuda::getCurrentDeviceProperties()->sharedMemPerBlockOptin;
  const size_t static_shared_bytes = (kThreadsPerBlock / kWarpSize + 1) * sizeof(Word);

  at::Tensor workspace;
  size_t dynamic_shared_bytes = 0;
  if (state_bytes + static_shared_bytes <= shared_limit) {
    dynamic_shared_bytes = state_bytes;
    // Above 48 KiB a kernel must opt in to the larger shared memory carve-out.
    C10_CUDA_CHECK(cudaFuncSetAttribute(greedy_chip_cover_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(dynamic_shared_bytes)));
  } else {
    workspace = at::empty({B, state_words}, covers.options().dtype(at::kLong));
  }
  greedy_chip_cover_kernel<<<static_cast<unsigned int>(B), kThreadsPerBlock, dynamic_shared_bytes,
                             at::cuda::getCurrentCUDAStream()>>>(
      covers_c.data_ptr<bool>(), K, N, W, min_count,
      workspace.defined() ? reinterpret_cast<Word*>(workspace.data_ptr<int64_t>()) : nullptr,
      picks.data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return picks;
}

}  // namespace

TORCH_LIBRARY_IMPL(sniper, CUDA, m) {
  m.impl("greedy_chip_cover", &greedy_chip_cover_cuda);
}

}  // namespace sniper
