#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstdint>
#include <vector>

#include "../op_checks.h"

namespace sniper {
namespace {

// Greedy set cover over one batch item. Each chip's covered boxes are a bit set of 64-bit words,
// so counting a chip's still-uncovered boxes costs N / 64 popcounts instead of N byte reads.
void greedy_cover_one_item(const bool* covers, int64_t K, int64_t N, int64_t min_count, int64_t* picks) {
  const int64_t W = (N + 63) / 64;
  std::vector<uint64_t> bits(K * W, 0);
  std::vector<int64_t> counts(K, 0);
  for (int64_t k = 0; k < K; ++k) {
    const bool* row = covers + k * N;
    uint64_t* chip_bits = bits.data() + k * W;
    for (int64_t n = 0; n < N; ++n) {
      if (row[n]) {
        chip_bits[n / 64] |= uint64_t{1} << (n % 64);
      }
    }
    for (int64_t w = 0; w < W; ++w) {
      counts[k] += __builtin_popcountll(chip_bits[w]);
    }
  }

  std::vector<uint64_t> uncovered(W, ~uint64_t{0});
  std::vector<uint64_t> newly_covered(W);
  for (int64_t pick = 0; pick < K; ++pick) {
    // Strict '>' keeps the lowest chip index among equal counts.
    int64_t best = 0;
    for (int64_t k = 1; k < K; ++k) {
      if (counts[k] > counts[best]) {
        best = k;
      }
    }
    if (counts[best] < min_count) {
      break;
    }
    picks[pick] = best;
    const uint64_t* best_bits = bits.data() + best * W;
    for (int64_t w = 0; w < W; ++w) {
      newly_covered[w] = best_bits[w] & uncovered[w];
      uncovered[w] &= ~best_bits[w];
    }
    for (int64_t k = 0; k < K; ++k) {
      if (counts[k] == 0) {
        continue;  // counts never grow, so a chip with nothing left stays at zero
      }
      const uint64_t* chip_bits = bits.data() + k * W;
      for (int64_t w = 0; w < W; ++w) {
        counts[k] -= __builtin_popcountll(chip_bits[w] & newly_covered[w]);
      }
    }
  }
}

at::Tensor greedy_chip_cover_cpu(const at::Tensor& covers, int64_t min_count) {
  check_covers(covers);
  check_min_count(min_count);

  const auto covers_c = covers.contiguous();
  const int64_t B = covers.size(0), K = covers.size(1), N = covers.size(2);
  auto picks = at::full({B, K}, -1, covers.options().dtype(at::kLong));
  const bool* covers_data = covers_c.data_ptr<bool>();
  int64_t* picks_data = picks.data_ptr<int64_t>();
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      greedy_cover_one_item(covers_data + b * K * N, K, N, min_count, picks_data + b * K);
    }
  });
  return picks;
}

}  // namespace

TORCH_LIBRARY_IMPL(sniper, CPU, m) {
  m.impl("greedy_chip_cover", &greedy_chip_cover_cpu);
}

}  // namespace sniper
