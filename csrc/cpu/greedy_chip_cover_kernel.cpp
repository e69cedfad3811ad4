#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/llvmMathExtras.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../op_checks.h"

namespace sniper {
namespace {

// Packs up to 64 bools (bytes of 0 or 1) into the bits of a word, bool n into bit n. Eight at a time:
// multiplying the eight bytes read as a little-endian word by 0x0102040810204080 moves byte i's low
// bit to bit 56 + i without any two partial products meeting, so no carries disturb the result.
uint64_t pack_bools(const bool* flags, int64_t count) {
  uint64_t word = 0;
  int64_t n = 0;
  for (; n + 8 <= count; n += 8) {
    uint64_t eight;
    std::memcpy(&eight, flags + n, sizeof(eight));
    word |= ((eight * 0x0102040810204080ull) >> 56) << n;
  }
  for (; n < count; ++n) {
    word |= uint64_t{flags[n]} << n;
  }
  return word;
}

// Greedy set cover over one batch item. Each chip's covered boxes are a bit set of 64-bit words, so
// counting a chip's still-uncovered boxes costs N / 64 popcounts instead of N byte reads (c10's
// countPopulation: GCC's and Clang's builtin where there is one, a portable fallback elsewhere). Counts only
// fall, so a chip whose count drops below min_count can never be picked again and leaves the list of
// candidates; each pick then scans only the chips still in the running.
void greedy_cover_one_item(const bool* covers, int64_t K, int64_t N, int64_t min_count, int64_t* picks) {
  const int64_t W = (N + 63) / 64;
  std::vector<uint64_t> bits(K * W);
  std::vector<int64_t> counts(K);
  std::vector<int64_t> candidates;  // in chip index order, so strict '>' below keeps the lowest index on ties
  int64_t best = -1;
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t w = 0; w < W; ++w) {
      bits[k * W + w] = pack_bools(covers + k * N + w * 64, std::min<int64_t>(64, N - w * 64));
      counts[k] += c10::llvm::countPopulation(bits[k * W + w]);
    }
    if (counts[k] >= min_count) {
      candidates.push_back(k);
      best = (best < 0 || counts[k] > counts[best]) ? k : best;
    }
  }

  std::vector<uint64_t> uncovered(W, ~uint64_t{0});
  std::vector<uint64_t> newly_covered(W);
  for (int64_t pick = 0; best >= 0; ++pick) {
    picks[pick] = best;
    const uint64_t* best_bits = bits.data() + best * W;
    for (int64_t w = 0; w < W; ++w) {
      newly_covered[w] = best_bits[w] & uncovered[w];
      uncovered[w] &= ~best_bits[w];
    }
    // One pass discounts the newly covered boxes, drops chips that fell below min_count (the pick
    // itself among them) and finds the next pick.
    size_t kept = 0;
    int64_t next = -1;
    for (const int64_t k : candidates) {
      const uint64_t* chip_bits = bits.data() + k * W;
      for (int64_t w = 0; w < W; ++w) {
        counts[k] -= c10::llvm::countPopulation(chip_bits[w] & newly_covered[w]);
      }
      if (counts[k] >= min_count) {
        candidates[kept++] = k;
        next = (next < 0 || counts[k] > counts[next]) ? k : next;
      }
    }
    candidates.resize(kept);
    best = next;
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
