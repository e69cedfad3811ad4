#include "op_checks.h"

#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>
#include <string>

namespace sniper {
namespace {

// Numbers and shapes are formatted to strings here rather than streamed by TORCH_CHECK: with torch
// 2.11's CUDA wheel (built by gcc-toolset-13) and the extension built by Ubuntu's g++ 13, streaming
// an integer into the message crashed the process (seen on an H100 machine), strings did not.
std::string str(int64_t value) {
  return std::to_string(value);
}

std::string str(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%g", value);
  return buffer;
}

std::string str(at::IntArrayRef sizes) {
  std::string out = "[";
  for (size_t i = 0; i < sizes.size(); ++i) {
    out += (i ? ", " : "") + std::to_string(sizes[i]);
  }
  return out + "]";
}

// On the CPU one pass over the values, without the bool tensor and the reduction at::isfinite(...).all()
// would allocate and run: the chip generator calls the ops on millions of boxes per epoch.
bool all_finite(const at::Tensor& values) {
  if (!values.is_cpu() || !values.is_contiguous()) {
    return at::isfinite(values).all().item<bool>();
  }
  const float* data = values.data_ptr<float>();
  const int64_t n = values.numel();
  bool finite = true;
  for (int64_t i = 0; i < n; ++i) {
    finite &= std::isfinite(data[i]);
  }
  return finite;
}

}  // namespace

void check_boxes(const at::Tensor& boxes, const char* name) {
  TORCH_CHECK_TYPE(boxes.scalar_type() == at::kFloat, name, " must be float32 (x1, y1, x2, y2 in pixels), got ",
                   boxes.scalar_type());
  TORCH_CHECK_VALUE(boxes.dim() == 3 && boxes.size(2) == 4, name, " must have shape [B, M, 4] (x1, y1, x2, y2), got ",
                    str(boxes.sizes()));
  TORCH_CHECK_VALUE(all_finite(boxes), name, " must hold finite coordinates, found NaN or inf");
}

void check_boxes_and_chips(const at::Tensor& boxes, const at::Tensor& chips) {
  check_boxes(boxes, "boxes");
  check_boxes(chips, "chips");
  check_same_batch(boxes, "boxes", chips, "chips");
}

void check_same_batch(const at::Tensor& a, const char* a_name, const at::Tensor& b, const char* b_name) {
  TORCH_CHECK_VALUE(a.device() == b.device(), a_name, " and ", b_name, " must be on the same device, got ", a.device(),
                    " and ", b.device());
  TORCH_CHECK_VALUE(a.size(0) == b.size(0), a_name, " and ", b_name, " must have the same batch size B, got ",
                    str(a.size(0)), " and ", str(b.size(0)));
}

void check_covers(const at::Tensor& covers) {
  TORCH_CHECK_TYPE(covers.scalar_type() == at::kBool, "covers must be bool, got ", covers.scalar_type());
  TORCH_CHECK_VALUE(covers.dim() == 3, "covers must have shape [B, K, N] (batch, chips, boxes), got ",
                    str(covers.sizes()));
  TORCH_CHECK_VALUE(covers.size(1) < (int64_t{1} << 31), "covers must have fewer than 2^31 chips, got ",
                    str(covers.size(1)));
}

void check_min_count(int64_t min_count) {
  TORCH_CHECK_VALUE(min_count >= 1, "min_count must be >= 1, got ", str(min_count));
}

void check_grid_cover_args(const at::Tensor& boxes, const at::Tensor& image_sizes, const at::Tensor& shuffle_keys,
                           int64_t chip_size, int64_t stride, double min_iof) {
  TORCH_CHECK_TYPE(image_sizes.scalar_type() == at::kLong, "image_sizes must be int64 (width, height), got ",
                   image_sizes.scalar_type());
  TORCH_CHECK_VALUE(image_sizes.dim() == 2 && image_sizes.size(1) == 2,
                    "image_sizes must have shape [B, 2] (width, height), got ", str(image_sizes.sizes()));
  check_same_batch(boxes, "boxes", image_sizes, "image_sizes");
  TORCH_CHECK_VALUE(image_sizes.numel() == 0 || image_sizes.min().item<int64_t>() >= 1,
                    "image_sizes must be >= 1 pixel, got ", str(image_sizes.min().item<int64_t>()));
  TORCH_CHECK_TYPE(shuffle_keys.scalar_type() == at::kLong, "shuffle_keys must be int64, got ",
                   shuffle_keys.scalar_type());
  TORCH_CHECK_VALUE(shuffle_keys.dim() == 1, "shuffle_keys must have shape [B], got ", str(shuffle_keys.sizes()));
  check_same_batch(boxes, "boxes", shuffle_keys, "shuffle_keys");
  TORCH_CHECK_VALUE(chip_size >= 1, "chip_size must be >= 1, got ", str(chip_size));
  TORCH_CHECK_VALUE(stride >= 1, "stride must be >= 1, got ", str(stride));
  TORCH_CHECK_VALUE(min_iof > 0 && min_iof <= 1, "min_iof must be in (0, 1], got ", str(min_iof));
}

bool parse_coverage_mode(const std::string& mode) {
  TORCH_CHECK_VALUE(mode == "iof" || mode == "iou", "mode must be 'iof' or 'iou', got '", mode, "'");
  return mode == "iou";
}

}  // namespace sniper
