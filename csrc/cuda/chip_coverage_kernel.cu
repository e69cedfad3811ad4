#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../box_geometry.h"
#include "../op_checks.h"
#include "cuda_launch.h"

namespace sniper {
namespace {

__global__ void chip_coverage_kernel(const float* __restrict__ chips, const float* __restrict__ boxes, int64_t K,
                                     int64_t N, int64_t total, bool iou, float* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{blockDim.x} * gridDim.x) {
    const float *chip, *box;
    chip_and_box_at(i, K, N, chips, boxes, chip, box);
    out[i] = iou ? chip_box_iou(chip, box) : chip_box_iof(chip, box);
  }
}

at::Tensor chip_coverage_cuda(const at::Tensor& chips, const at::Tensor& boxes, c10::string_view mode) {
  check_boxes_and_chips(boxes, chips);
  const bool iou = parse_coverage_mode(std::string(mode));

  const c10::cuda::CUDAGuard device_guard(chips.device());
  const auto chips_c = chips.contiguous();
  const auto boxes_c = boxes.contiguous();
  const int64_t B = chips.size(0), K = chips.size(1), N = boxes.size(1);
  auto out = at::empty({B, K, N}, chips.options());
  const int64_t total = out.numel();
  if (total == 0) {
    return out;
  }
  chip_coverage_kernel<<<elementwise_blocks(total), kThreadsPerBlock, 0, at::cuda::getCurrentCUDAStream()>>>(
      chips_c.data_ptr<float>(), boxes_c.data_ptr<float>(), K, N, total, iou, out.data_ptr<float>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(sniper, CUDA, m) {
  m.impl("chip_coverage", &chip_coverage_cuda);
}

}  // namespace sniper
