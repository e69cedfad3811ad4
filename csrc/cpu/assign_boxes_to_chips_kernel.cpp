#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstdint>
#include <tuple>
#include <vector>

#include "../box_geometry.h"
#include "../op_checks.h"

namespace sniper {
namespace {

std::tuple<at::Tensor, at::Tensor> assign_boxes_to_chips_cpu(const at::Tensor& boxes, const at::Tensor& chips) {
  check_boxes_and_chips(boxes, chips);

  const auto boxes_c = boxes.contiguous();
  const auto chips_c = chips.contiguous();
  const int64_t B = boxes.size(0), N = boxes.size(1), K = chips.size(1);
  auto chip_index = at::empty({B, N}, boxes.options().dtype(at::kLong));
  auto part = at::empty({B, N, 4}, boxes.options());
  const float* box_data = boxes_c.data_ptr<float>();
  const float* chip_data = chips_c.data_ptr<float>();
  int64_t* index_data = chip_index.data_ptr<int64_t>();
  float* part_data = part.data_ptr<float>();

  // Per item, chips in the outer loop and boxes in the inner one, over the boxes' coordinates laid
  // out as separate arrays: the inner loop is branch-free arithmetic on contiguous floats and
  // vectorises. It is best_chip_for_box (what the CUDA kernel runs per box) with the loops swapped:
  // the same intersection_area over iof_denominator, the same strict '>' from 0 keeping the lowest
  // chip index on ties, so the two pick the same chip. An empty chip holds nothing of any box and is
  // never picked, so only the others are visited: callers pad items to the most chips of a batch.
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> x1(N), y1(N), x2(N), y2(N), denominator(N), best_iof(N);
    std::vector<int32_t> best(N);
    std::vector<int32_t> nonempty;
    nonempty.reserve(K);
    for (int64_t b = begin; b < end; ++b) {
      const float* item_boxes = box_data + b * N * 4;
      const float* item_chips = chip_data + b * K * 4;
      for (int64_t n = 0; n < N; ++n) {
        const float* box = item_boxes + n * 4;
        x1[n] = box[0], y1[n] = box[1], x2[n] = box[2], y2[n] = box[3];
        denominator[n] = iof_denominator(box);
        best_iof[n] = 0.f;
        best[n] = -1;
      }
      nonempty.clear();
      for (int64_t k = 0; k < K; ++k) {
        if (box_area(item_chips + k * 4) > 0.f) {
          nonempty.push_back(static_cast<int32_t>(k));
        }
      }
      for (const int32_t chip_k : nonempty) {
        const float* chip = item_chips + chip_k * 4;
        for (int64_t n = 0; n < N; ++n) {
          const float box[4] = {x1[n], y1[n], x2[n], y2[n]};
          const float iof = intersection_area(chip, box) / denominator[n];
          // A bit-mask select: GCC does not vectorise the integer ternary.
          const int32_t better = -static_cast<int32_t>(iof > best_iof[n]);
          best_iof[n] = iof > best_iof[n] ? iof : best_iof[n];
          best[n] = (chip_k & better) | (best[n] & ~better);
        }
      }
      for (int64_t n = 0; n < N; ++n) {
        index_data[b * N + n] = best[n];
        float* out = part_data + (b * N + n) * 4;
        if (best[n] >= 0) {
          clip_box_to_chip(item_boxes + n * 4, item_chips + best[n] * 4, out);
        } else {
          out[0] = out[1] = out[2] = out[3] = 0.f;
        }
      }
    }
  });
  return {chip_index, part};
}

}  // namespace

TORCH_LIBRARY_IMPL(sniper, CPU, m) {
  m.impl("assign_boxes_to_chips", &assign_boxes_to_chips_cpu);
}

}  // namespace sniper
