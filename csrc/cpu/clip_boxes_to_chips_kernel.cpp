#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <tuple>

#include "../box_geometry.h"
#include "../op_checks.h"

namespace sniper {
namespace {

std::tuple<at::Tensor, at::Tensor> clip_boxes_to_chips_cpu(const at::Tensor& boxes, const at::Tensor& chips) {
  check_boxes_and_chips(boxes, chips);

  const auto boxes_c = boxes.contiguous();
  const auto chips_c = chips.contiguous();
  const int64_t B = chips.size(0), K = chips.size(1), N = boxes.size(1);
  auto clipped = at::empty({B, K, N, 4}, boxes.options());
  auto iof = at::empty({B, K, N}, boxes.options());
  const float* chip_data = chips_c.data_ptr<float>();
  const float* box_data = boxes_c.data_ptr<float>();
  float* clipped_data = clipped.data_ptr<float>();
  float* iof_data = iof.data_ptr<float>();

  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(N, 1));
  at::parallel_for(0, B * K, grain, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / K;
      const float* chip = chip_data + row * 4;
      const float* item_boxes = box_data + b * N * 4;
      for (int64_t n = 0; n < N; ++n) {
        clip_box_to_chip(item_boxes + n * 4, chip, clipped_data + (row * N + n) * 4);
        iof_data[row * N + n] = chip_box_iof(chip, item_boxes + n * 4);
      }
    }
  });
  return {clipped, iof};
}

}  // namespace

TORCH_LIBRARY_IMPL(sniper, CPU, m) {
  m.impl("clip_boxes_to_chips", &clip_boxes_to_chips_cpu);
}

}  // namespace sniper
