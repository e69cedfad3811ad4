#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../box_geometry.h"
#include "../op_checks.h"
#include "../splitmix64.h"

namespace sniper {
namespace {

// Left (or top) edges of the candidate windows along one image axis: every multiple of the stride
// that leaves a full window inside the image, then the window flush with the far edge, so every
// pixel is reachable. A window spans the whole axis where the image is smaller than a chip.
struct Axis {
  std::vector<int64_t> starts;  // ascending
  int64_t extent = 0;

  void build(int64_t size, int64_t chip_size, int64_t stride) {
    starts.clear();
    for (int64_t x = 0; x < size - chip_size; x += stride) {
      starts.push_back(x);
    }
    starts.push_back(std::max<int64_t>(size - chip_size, 0));
    extent = std::min(chip_size, size);
  }

  // [first, last) of the windows that can hold [lo, hi] up to `slack` pixels: a superset of those
  // passing the exact iof test, which is then applied to each.
  std::pair<int64_t, int64_t> holding(double lo, double hi, double slack) const {
    const auto first = std::lower_bound(starts.begin(), starts.end(), hi - slack - static_cast<double>(extent),
                                        [](int64_t s, double v) { return static_cast<double>(s) < v; });
    const auto last = std::upper_bound(starts.begin(), starts.end(), lo + slack,
                                       [](double v, int64_t s) { return v < static_cast<double>(s); });
    return {first - starts.begin(), std::max(first, last) - starts.begin()};
  }
};

// Per-thread buffers, reused across the batch items of a thread so that an item allocates nothing.
struct Scratch {
  Axis xs, ys;
  std::vector<int32_t> counts;      // [K] uncovered boxes each candidate covers; zero between items
  std::vector<uint64_t> priority;   // [K] shuffle priority, set for touched candidates only
  std::vector<int64_t> touched;     // candidates covering at least one box
  std::vector<int64_t> alive;       // touched candidates still able to reach min_count
  std::vector<int64_t> covered_by;  // flat lists of the candidates covering each box, ascending
  std::vector<int64_t> offsets;     // [N + 1] into covered_by
};

// The greedy cover of docs/chip_generation.md (sections 5-6) for one batch item. The candidates form a
// grid, so the chips that can hold a box are a small rectangle of it found by binary search: the work
// is proportional to the (box, covering chip) pairs, not to all chips times all boxes.
void grid_cover_one_item(const float* boxes, int64_t N, int64_t width, int64_t height, uint64_t key, int64_t chip_size,
                         int64_t stride, double min_iof, int64_t min_count, Scratch& s, float* out_chips,
                         int64_t* out_pick) {
  s.xs.build(width, chip_size, stride);
  s.ys.build(height, chip_size, stride);
  const int64_t nx = static_cast<int64_t>(s.xs.starts.size());
  const int64_t K = nx * static_cast<int64_t>(s.ys.starts.size());
  if (static_cast<int64_t>(s.counts.size()) < K) {
    s.counts.resize(K, 0);
    s.priority.resize(K);
  }
  // The comparison the chip_coverage op's callers make: a float32 iof against a float32 threshold.
  const float threshold = static_cast<float>(min_iof);
  s.touched.clear();
  s.covered_by.clear();
  s.offsets.assign(N + 1, 0);
  float chip[4];
  for (int64_t n = 0; n < N; ++n) {
    const float* box = boxes + n * 4;
    s.offsets[n] = static_cast<int64_t>(s.covered_by.size());
    if (!(box[2] > box[0] && box[3] > box[1])) {
      continue;
    }
    const double slack_x = (1.0 - min_iof) * (box[2] - box[0]) + 1.0;
    const double slack_y = (1.0 - min_iof) * (box[3] - box[1]) + 1.0;
    const auto [ix0, ix1] = s.xs.holding(box[0], box[2], slack_x);
    const auto [iy0, iy1] = s.ys.holding(box[1], box[3], slack_y);
    for (int64_t iy = iy0; iy < iy1; ++iy) {
      chip[1] = static_cast<float>(s.ys.starts[iy]);
      chip[3] = static_cast<float>(s.ys.starts[iy] + s.ys.extent);
      const bool inside_y = chip[1] <= box[1] && box[3] <= chip[3];
      for (int64_t ix = ix0; ix < ix1; ++ix) {
        chip[0] = static_cast<float>(s.xs.starts[ix]);
        chip[2] = static_cast<float>(s.xs.starts[ix] + s.xs.extent);
        // A box wholly inside has an iof of exactly 1 (its intersection is computed as its own
        // area), so only the windows at the rim of the rectangle need the arithmetic.
        const bool inside = inside_y && chip[0] <= box[0] && box[2] <= chip[2];
        if (inside || chip_box_iof(chip, box) >= threshold) {
          const int64_t k = iy * nx + ix;
          s.covered_by.push_back(k);
          if (s.counts[k]++ == 0) {
            s.touched.push_back(k);
            s.priority[k] = splitmix64_nth(key, static_cast<uint64_t>(k));
          }
        }
      }
    }
  }
  s.offsets[N] = static_cast<int64_t>(s.covered_by.size());

  s.alive = s.touched;
  for (int64_t pick = 0;; ++pick) {
    // The most uncovered boxes wins; ties go to the earliest candidate in the shuffled order.
    int64_t best = -1;
    size_t kept = 0;
    for (const int64_t k : s.alive) {
      if (s.counts[k] < min_count) {
        continue;  // counts only fall: this candidate is out for good
      }
      s.alive[kept++] = k;
      if (best < 0 || s.counts[k] > s.counts[best] ||
          (s.counts[k] == s.counts[best] &&
           (s.priority[k] < s.priority[best] || (s.priority[k] == s.priority[best] && k < best)))) {
        best = k;
      }
    }
    s.alive.resize(kept);
    if (best < 0) {
      break;
    }
    const int64_t ix = best % nx, iy = best / nx;
    float* out = out_chips + pick * 4;
    out[0] = static_cast<float>(s.xs.starts[ix]);
    out[1] = static_cast<float>(s.ys.starts[iy]);
    out[2] = static_cast<float>(s.xs.starts[ix] + s.xs.extent);
    out[3] = static_cast<float>(s.ys.starts[iy] + s.ys.extent);
    for (int64_t n = 0; n < N; ++n) {
      const auto first = s.covered_by.begin() + s.offsets[n];
      const auto last = s.covered_by.begin() + s.offsets[n + 1];
      if (out_pick[n] >= 0 || !std::binary_search(first, last, best)) {
        continue;
      }
      out_pick[n] = pick;
      for (auto it = first; it != last; ++it) {
        --s.counts[*it];
      }
    }
  }
  for (const int64_t k : s.touched) {
    s.counts[k] = 0;
  }
}

std::tuple<at::Tensor, at::Tensor> chip_grid_cover_cpu(const at::Tensor& boxes, const at::Tensor& image_sizes,
                                                       const at::Tensor& shuffle_keys, int64_t chip_size,
                                                       int64_t stride, double min_iof, int64_t min_count) {
  check_boxes(boxes, "boxes");
  check_grid_cover_args(boxes, image_sizes, shuffle_keys, chip_size, stride, min_iof);
  check_min_count(min_count);

  const auto boxes_c = boxes.contiguous();
  const auto sizes_c = image_sizes.contiguous();
  const auto keys_c = shuffle_keys.contiguous();
  const int64_t B = boxes.size(0), N = boxes.size(1);
  auto chips = at::zeros({B, N, 4}, boxes.options());
  auto box_pick = at::full({B, N}, -1, boxes.options().dtype(at::kLong));
  const float* box_data = boxes_c.data_ptr<float>();
  const int64_t* size_data = sizes_c.data_ptr<int64_t>();
  const int64_t* key_data = keys_c.data_ptr<int64_t>();
  float* chip_data = chips.data_ptr<float>();
  int64_t* pick_data = box_pick.data_ptr<int64_t>();
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    Scratch scratch;
    for (int64_t b = begin; b < end; ++b) {
      grid_cover_one_item(box_data + b * N * 4, N, size_data[b * 2], size_data[b * 2 + 1],
                          static_cast<uint64_t>(key_data[b]), chip_size, stride, min_iof, min_count, scratch,
                          chip_data + b * N * 4, pick_data + b * N);
    }
  });
  return {chips, box_pick};
}

}  // namespace

TORCH_LIBRARY_IMPL(sniper, CPU, m) {
  m.impl("chip_grid_cover", &chip_grid_cover_cpu);
}

}  // namespace sniper
