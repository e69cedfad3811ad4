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

// One thread per box, scanning its item's chips: K is small (the positive chips of one image).
__global__ void assign_boxes_to_chips_kernel(const float* __restrict__ boxes, const float* __restrict__ chips,
                                             int64_t N, int64_t K, int64_t total, int64_t* __restrict__ chip_index,
                                             float* __restrict__ part) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{blockDim.x} * gridDim.x) {
    chip_index[i] = assign_box_to_chips(boxes + i * 4, chips + (i / N) * K * 4, K, part + i * 4);
  }
}

std::tuple<at::Tensor, at::Tensor> assign_boxes_to_chips_cuda(const at::Tensor& boxes, const at::Tensor& chips) {
  check_boxes_and_chips(boxes, chips);

  const c10::cuda::CUDAGuard device_guard(boxes.device());
  const auto boxes_c = boxes.contiguous();
  const auto chips_c = chips.contiguous();
  const int64_t B = boxes.size(0), N = boxes.size(1), K = chips.size(1);
  auto chip_index = at::empty({B, N}, boxes.options().dtype(at::kLong));
  auto part = at::empty({B, N, 4}, boxes.options());
  const int64_t total = B * N;
  if (total == 0) {
    return {chip_index, part};
  }
  assign_boxes_to_chips_kernel<<<elementwise_blocks(total), kThreadsPerBlock, 0, at::cuda::getCurrentCUDAStream()>>>(
      boxes_c.data_ptr<float>(), chips_c.data_ptr<float>(), N, K, total, chip_index.data_ptr<int64_t>(),
      part.data_ptr<float>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {chip_index, part};
}

}  // namespace

TORCH_LIBRARY_IMPL(sniper, CUDA, m) {
  m.impl("assign_boxes_to_chips", &assign_boxes_to_chips_cuda);
}

}  // namespace sniper
