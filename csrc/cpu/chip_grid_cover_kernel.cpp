#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <tuple>
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
  std::vector<int64_t> starts;  // ascending: the stride's multiples, then the flush window
  int64_t extent = 0;
  int64_t stride = 1;

  void build(int64_t size, int64_t chip_size, int64_t grid_stride) {
    starts.clear();
    for (int64_t x = 0; x < size - chip_size; x += grid_stride) {
      starts.push_back(x);
    }
    starts.push_back(std::max<int64_t>(size - chip_size, 0));
    extent = std::min(chip_size, size);
    stride = grid_stride;
  }

  // [first, last) of the windows that can hold [lo, hi] up to `slack` pixels: a superset of those
  // passing the exact iof test, which is then applied to each.
  // [first, last) of the windows wholly holding [lo, hi]: start <= lo and hi <= start + extent,
  // exact in double for float coordinates and integer starts.
  std::pair<int64_t, int64_t> wholly_holding(float lo, float hi) const {
    const double left = static_cast<double>(hi) - static_cast<double>(extent), right = lo;
    return {first_start(left, [left](double s) { return s >= left; }),
            first_start(right, [right](double s) { return s > right; })};
  }

  std::pair<int64_t, int64_t> holding(double lo, double hi, double slack) const {
    const double left = hi - slack - static_cast<double>(extent), right = lo + slack;
    const int64_t first = first_start(left, [left](double s) { return s >= left; });
    const int64_t last = first_start(right, [right](double s) { return s > right; });
    return {first, std::max(first, last)};
  }

 private:
  // The first window whose start satisfies `reached`, a threshold test at `bound` (false below it,
  // true above), or starts.size(). This runs for every box: the multiples are found by division
  // rather than a search, then settled by the exact test, from which division may be one off.
  template <typename Reached>
  int64_t first_start(double bound, Reached reached) const {
    const int64_t multiples = static_cast<int64_t>(starts.size()) - 1;
    const double guess = std::ceil(bound / static_cast<double>(stride));
    int64_t i = guess <= 0.0 ? 0 : guess >= static_cast<double>(multiples) ? multiples : static_cast<int64_t>(guess);
    while (i > 0 && reached(static_cast<double>((i - 1) * stride))) {
      --i;
    }
    while (i < multiples && !reached(static_cast<double>(i * stride))) {
      ++i;
    }
    if (i < multiples) {
      return i;
    }
    return reached(static_cast<double>(starts[multiples])) ? multiples : multiples + 1;
  }
};

// A box's covering candidates: the rectangle of windows wholly holding it, [ix0, ix1) x [iy0, iy1)
// (empty where ix0 == ix1 or iy0 == iy1), and the rim windows around it that hold all but a fraction
// of it that min_iof forgives, listed one by one.
struct Cover {
  int64_t ix0, ix1, iy0, iy1;
  int64_t rim_begin, rim_end;  // into Scratch::rim

  bool holds(int64_t ix, int64_t iy, const std::vector<int64_t>& rim, int64_t k) const {
    return (ix0 <= ix && ix < ix1 && iy0 <= iy && iy < iy1) ||
           std::binary_search(rim.begin() + rim_begin, rim.begin() + rim_end, k);
  }
};

// Per-thread buffers, reused across the batch items of a thread so that an item allocates nothing.
struct Scratch {
  Axis xs, ys;
  std::vector<Cover> covers;       // [N]
  std::vector<int64_t> uncovered;  // the non-empty boxes no pick has covered yet
  std::vector<int64_t> rim;        // the rim windows of every box, ascending within a box
  std::vector<int32_t> diff;       // [(ny + 1) * (nx + 1)] 2-D difference array of the uncovered boxes' rectangles
  std::vector<int32_t> rim_count;  // [K] uncovered boxes each candidate holds as a rim window
  std::vector<int32_t> column;     // [nx] running column sums of one counting pass
  std::vector<int64_t> x_extra, y_extra;  // windows of the box's holding range, not wholly holding it, that may
                                          // still pass the iof test
};

// The fraction of the box a window can hold at most given its overlap along one axis only, computed
// with the float operations of chip_box_iof: its overlap on the other axis is at most the box's own
// extent there, so a window below the threshold on either axis fails it.
inline float axis_bound(float overlap, float other_extent, float denominator) {
  return overlap * other_extent / denominator;
}

// The greedy cover of docs/chip_generation.md (sections 5-6) for one batch item. The candidates form a
// grid and the windows wholly holding a box are a rectangle of it, so each box adds a rectangle to a
// 2-D difference array and every candidate's count of uncovered boxes is one prefix-sum pass over the
// grid: the work is proportional to the boxes plus the candidates, per pick, not to the (box, window)
// pairs. Windows that hold a box only up to the min_iof slack are few and are counted one by one.
void grid_cover_one_item(const float* boxes, int64_t N, int64_t width, int64_t height, uint64_t key, int64_t chip_size,
                         int64_t stride, double min_iof, int64_t min_count, Scratch& s, float* out_chips,
                         int64_t* out_pick) {
  s.xs.build(width, chip_size, stride);
  s.ys.build(height, chip_size, stride);
  const int64_t nx = static_cast<int64_t>(s.xs.starts.size());
  const int64_t ny = static_cast<int64_t>(s.ys.starts.size());
  // The comparison the chip_coverage op's callers make: a float32 iof against a float32 threshold.
  const float threshold = static_cast<float>(min_iof);
  s.covers.resize(N);
  s.uncovered.clear();
  s.rim.clear();
  s.diff.assign((nx + 1) * (ny + 1), 0);
  s.rim_count.assign(nx * ny, 0);
  // The rectangle of the grid any box reaches; the counting passes visit only it.
  int64_t rx0 = nx, rx1 = 0, ry0 = ny, ry1 = 0;
  auto add_rectangle = [&](const Cover& c, int32_t sign) {
    s.diff[c.iy0 * (nx + 1) + c.ix0] += sign;
    s.diff[c.iy0 * (nx + 1) + c.ix1] -= sign;
    s.diff[c.iy1 * (nx + 1) + c.ix0] -= sign;
    s.diff[c.iy1 * (nx + 1) + c.ix1] += sign;
  };
  float chip[4];
  for (int64_t n = 0; n < N; ++n) {
    const float* box = boxes + n * 4;
    Cover& c = s.covers[n];
    c = Cover{0, 0, 0, 0, static_cast<int64_t>(s.rim.size()), static_cast<int64_t>(s.rim.size())};
    if (!(box[2] > box[0] && box[3] > box[1])) {
      continue;
    }
    s.uncovered.push_back(n);
    const double slack_x = (1.0 - min_iof) * (box[2] - box[0]) + 1.0;
    const double slack_y = (1.0 - min_iof) * (box[3] - box[1]) + 1.0;
    const auto [hx0, hx1] = s.xs.holding(box[0], box[2], slack_x);
    const auto [hy0, hy1] = s.ys.holding(box[1], box[3], slack_y);
    const float denominator = iof_denominator(box);
    // Along each axis the windows holding the box's whole extent are contiguous (the starts ascend);
    // the few others of the holding range may still pass with the rest of the box inside.
    auto near_axis = [&](const Axis& axis, int64_t h0, int64_t h1, float lo, float hi, float other_extent,
                         std::vector<int64_t>& extra, int64_t& in0, int64_t& in1) {
      std::tie(in0, in1) = axis.wholly_holding(lo, hi);
      in0 = std::max(in0, h0);
      in1 = std::min(in1, h1);
      if (in0 >= in1) {
        in0 = in1 = h1;
      }
      extra.clear();
      for (int64_t i = h0; i < h1; ++i) {
        if (i == in0) {
          i = in1 - 1;
          continue;
        }
        const float a = static_cast<float>(axis.starts[i]);
        const float b = static_cast<float>(axis.starts[i] + axis.extent);
        const float overlap = max_of(min_of(b, hi) - max_of(a, lo), 0.f);
        if (axis_bound(overlap, other_extent, denominator) >= threshold) {
          extra.push_back(i);
        }
      }
    };
    int64_t ix0, ix1, iy0, iy1;
    near_axis(s.xs, hx0, hx1, box[0], box[2], box[3] - box[1], s.x_extra, ix0, ix1);
    near_axis(s.ys, hy0, hy1, box[1], box[3], box[2] - box[0], s.y_extra, iy0, iy1);
    if (ix0 < ix1 && iy0 < iy1) {
      c.ix0 = ix0, c.ix1 = ix1, c.iy0 = iy0, c.iy1 = iy1;
      add_rectangle(c, 1);
      rx0 = std::min(rx0, ix0), rx1 = std::max(rx1, ix1), ry0 = std::min(ry0, iy0), ry1 = std::max(ry1, iy1);
    }
    // The rim: windows near the box on both axes but not wholly holding it, tested one by one. Where
    // min_iof forgives less than a pixel (the usual case) there is rarely a near window beyond those.
    auto test = [&](int64_t ix, int64_t iy) {
      chip[0] = static_cast<float>(s.xs.starts[ix]);
      chip[1] = static_cast<float>(s.ys.starts[iy]);
      chip[2] = static_cast<float>(s.xs.starts[ix] + s.xs.extent);
      chip[3] = static_cast<float>(s.ys.starts[iy] + s.ys.extent);
      if (chip_box_iof(chip, box) >= threshold) {
        const int64_t k = iy * nx + ix;
        s.rim.push_back(k);
        ++s.rim_count[k];
        rx0 = std::min(rx0, ix), rx1 = std::max(rx1, ix + 1), ry0 = std::min(ry0, iy), ry1 = std::max(ry1, iy + 1);
      }
    };
    if (!s.x_extra.empty() || !s.y_extra.empty()) {
      for (int64_t iy = iy0; iy < iy1; ++iy) {
        for (const int64_t ix : s.x_extra) {
          test(ix, iy);
        }
      }
      for (const int64_t iy : s.y_extra) {
        for (int64_t ix = ix0; ix < ix1; ++ix) {
          test(ix, iy);
        }
        for (const int64_t ix : s.x_extra) {
          test(ix, iy);
        }
      }
      std::sort(s.rim.begin() + c.rim_begin, s.rim.end());  // Cover::holds searches them
    }
    c.rim_end = static_cast<int64_t>(s.rim.size());
  }

  for (int64_t pick = 0;; ++pick) {
    // One prefix-sum pass gives each candidate its uncovered boxes. The most wins; ties go to the
    // earliest candidate in the shuffled order, then to the lowest index.
    int64_t best = -1;
    int32_t best_count = 0;
    uint64_t best_priority = 0;
    s.column.assign(nx, 0);
    for (int64_t iy = ry0; iy < ry1; ++iy) {
      int32_t row = 0;
      for (int64_t ix = rx0; ix < rx1; ++ix) {
        row += s.diff[iy * (nx + 1) + ix];
        s.column[ix] += row;
        const int64_t k = iy * nx + ix;
        const int32_t count = s.column[ix] + s.rim_count[k];
        if (count < min_count || count < best_count) {
          continue;
        }
        const uint64_t priority = splitmix64_nth(key, static_cast<uint64_t>(k));
        if (count > best_count || priority < best_priority) {
          best = k, best_count = count, best_priority = priority;
        }
      }
    }
    if (best < 0) {
      break;
    }
    const int64_t ix = best % nx, iy = best / nx;
    float* out = out_chips + pick * 4;
    out[0] = static_cast<float>(s.xs.starts[ix]);
    out[1] = static_cast<float>(s.ys.starts[iy]);
    out[2] = static_cast<float>(s.xs.starts[ix] + s.xs.extent);
    out[3] = static_cast<float>(s.ys.starts[iy] + s.ys.extent);
    size_t kept = 0;
    for (const int64_t n : s.uncovered) {
      const Cover& c = s.covers[n];
      if (!c.holds(ix, iy, s.rim, best)) {
        s.uncovered[kept++] = n;
        continue;
      }
      out_pick[n] = pick;
      if (c.ix0 < c.ix1) {
        add_rectangle(c, -1);
      }
      for (int64_t r = c.rim_begin; r < c.rim_end; ++r) {
        --s.rim_count[s.rim[r]];
      }
    }
    s.uncovered.resize(kept);
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
