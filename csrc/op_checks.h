// Argument checks run once by every kernel, CPU or CUDA, before it touches data. They raise
// ValueError / TypeError in Python (TORCH_CHECK_VALUE / TORCH_CHECK_TYPE) naming the argument.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace sniper {

// A float32 [B, M, 4] tensor of finite box coordinates.
void check_boxes(const at::Tensor& boxes, const char* name);

// The boxes and chips of a per-chip op: both valid boxes, on one device, with one batch size.
void check_boxes_and_chips(const at::Tensor& boxes, const at::Tensor& chips);

// Both on one device and with the same batch size B.
void check_same_batch(const at::Tensor& a, const char* a_name, const at::Tensor& b, const char* b_name);

// A bool [B, K, N] coverage tensor.
void check_covers(const at::Tensor& covers);

void check_min_count(int64_t min_count);

// The arguments of chip_grid_cover besides the boxes: int64 [B, 2] image sizes >= 1 and int64 [B]
// shuffle keys on the boxes' device, chip size and stride >= 1, min_iof in (0, 1].
void check_grid_cover_args(const at::Tensor& boxes, const at::Tensor& image_sizes, const at::Tensor& shuffle_keys,
                           int64_t chip_size, int64_t stride, double min_iof);

// Returns true for "iou", false for "iof"; anything else is a ValueError.
bool parse_coverage_mode(const std::string& mode);

}  // namespace sniper
