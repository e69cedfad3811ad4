#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <tuple>

#include "../box_geometry.h"
#include "../op_checks.h"
#include "cuda_launch.h"

namespace sniper {
namespace {

__global__ void clip_boxes_to_chips_kernel(const float* __restrict__ boxes, const float* __restrict__ chips, int64_t K,
                                           int64_t N, int64_t total, float* __restrict__ clipped,
                                           float* __restrict__ iof) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{blockDim.x} * gridDim.x) {
    const float *chip, *box;
    chip_and_box_at(i, K, N, chips, boxes, chip, box);
    clip_box_to_chip(box, chip, clipped + i * 4);
    iof[i] = chip_box_iof(chip, box);
  }
}

std::tuple<at::Tensor, at::Tensor> clip_boxes_to_chips_cuda(const at::Tensor& boxes, const at::Tensor& chips) {
  check_boxes_and_chips(boxes, chips);

  const c10::cuda::CUDAGuard device_guard(boxes.device());
  const auto boxes_c = boxes.contiguous();
  const auto chips_c = chips.contiguous();
  const int64_t B = chips.size(0), K = chips.size(1), N = boxes.size(1);
  auto clipped = at::empty({B, K, N, 4}, boxes.options());
  auto iof = at::empty({B, K, N}, boxes.options());
  const int64_t total = iof.numel();
  if (total == 0) {
    return {clipped, iof};
  }
  clip_boxes_to_chips_kernel<<<elementwise_blocks(total), kThreadsPerBlock, 0, at::cuda::getCurrentCUDAStream()>>>(
      boxes_c.data_ptr<float>(), chips_c.data_ptr<float>(), K, N, total, clipped.data_ptr<float>(),
      iof.data_ptr<float>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {clipped, iof};
}

}  // namespace

TORCH_LIBRARY_IMPL(sniper, CUDA, m) {
  m.impl("clip_boxes_to_chips", &clip_boxes_to_chips_cuda);
}

}  // namespace sniper
