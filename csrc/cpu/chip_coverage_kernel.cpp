#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../box_geometry.h"
#include "../op_checks.h"

namespace sniper {
namespace {

// The mode is a template argument so that the loop over boxes has no branch and can be vectorised.
template <bool kIou>
void coverage_row(const float* chip, const float* boxes, int64_t N, float* out) {
  for (int64_t n = 0; n < N; ++n) {
    out[n] = kIou ? chip_box_iou(chip, boxes + n * 4) : chip_box_iof(chip, boxes + n * 4);
  }
}

at::Tensor chip_coverage_cpu(const at::Tensor& chips, const at::Tensor& boxes, c10::string_view mode) {
  check_boxes_and_chips(boxes, chips);
  const bool iou = parse_coverage_mode(std::string(mode));

  const auto chips_c = chips.contiguous();
  const auto boxes_c = boxes.contiguous();
  const int64_t B = chips.size(0), K = chips.size(1), N = boxes.size(1);
  auto out = at::empty({B, K, N}, chips.options());
  const float* chip_data = chips_c.data_ptr<float>();
  const float* box_data = boxes_c.data_ptr<float>();
  float* out_data = out.data_ptr<float>();

  // One task per (batch item, chip) row; the grain keeps tasks large enough to amortise threading.
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(N, 1));
  at::parallel_for(0, B * K, grain, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / K;
      const float* item_boxes = box_data + b * N * 4;
      if (iou) {
        coverage_row<true>(chip_data + row * 4, item_boxes, N, out_data + row * N);
      } else {
        coverage_row<false>(chip_data + row * 4, item_boxes, N, out_data + row * N);
      }
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(sniper, CPU, m) {
  m.impl("chip_coverage", &chip_coverage_cpu);
}

}  // namespace sniper
