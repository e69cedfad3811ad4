// Box maths shared by the CPU and CUDA kernels, so the two cannot drift apart.
// Boxes are mmdet 3.x (x1, y1, x2, y2) in pixels; area is (x2 - x1) * (y2 - y1), no +1.
// A box with x2 <= x1 or y2 <= y1 is empty (padding rows are written that way) and covers nothing.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define SNIPER_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define SNIPER_HOST_DEVICE inline
#endif

namespace sniper {

// Plain comparisons rather than fminf / fmaxf, and selects rather than branches: coordinates are
// checked finite, and this lets the CPU compiler vectorise the loops over boxes.
SNIPER_HOST_DEVICE float min_of(float a, float b) {
  return a < b ? a : b;
}

SNIPER_HOST_DEVICE float max_of(float a, float b) {
  return a > b ? a : b;
}

// 0 for an empty box.
SNIPER_HOST_DEVICE float box_area(const float* box) {
  return max_of(box[2] - box[0], 0.f) * max_of(box[3] - box[1], 0.f);
}

SNIPER_HOST_DEVICE float intersection_area(const float* a, const float* b) {
  const float w = max_of(min_of(a[2], b[2]) - max_of(a[0], b[0]), 0.f);
  const float h = max_of(min_of(a[3], b[3]) - max_of(a[1], b[1]), 0.f);
  return w * h;
}

// What chip_box_iof divides by: the box's area, or 1 for an empty box, which intersects nothing, so
// that its zero intersection gives it the 0 it must get. Kernels that test one box against many chips
// compute it once per box.
SNIPER_HOST_DEVICE float iof_denominator(const float* box) {
  const float area = box_area(box);
  return area > 0.f ? area : 1.f;
}

// |chip ∩ box| / |box|: the fraction of the box inside the chip.
SNIPER_HOST_DEVICE float chip_box_iof(const float* chip, const float* box) {
  return intersection_area(chip, box) / iof_denominator(box);
}

// |chip ∩ box| / |chip ∪ box|; 0 for an empty box.
SNIPER_HOST_DEVICE float chip_box_iou(const float* chip, const float* box) {
  const float area = box_area(box);
  const float inter = intersection_area(chip, box);
  return inter / (area > 0.f ? box_area(chip) + area - inter : 1.f);
}

SNIPER_HOST_DEVICE float clamp_to(float v, float lo, float hi) {
  return min_of(max_of(v, lo), hi);
}

// Writes the box clipped to the chip, in the chip's coordinates (origin at its top-left corner).
// A box outside the chip comes out empty.
SNIPER_HOST_DEVICE void clip_box_to_chip(const float* box, const float* chip, float* out) {
  out[0] = clamp_to(box[0], chip[0], chip[2]) - chip[0];
  out[1] = clamp_to(box[1], chip[1], chip[3]) - chip[1];
  out[2] = clamp_to(box[2], chip[0], chip[2]) - chip[0];
  out[3] = clamp_to(box[3], chip[1], chip[3]) - chip[1];
}

// The chip holding the largest fraction of the box, the lowest index on ties; -1 when no chip holds
// any of it (an empty box included).
SNIPER_HOST_DEVICE int64_t best_chip_for_box(const float* box, const float* chips, int64_t K) {
  int64_t best = -1;
  float best_iof = 0.f;
  for (int64_t k = 0; k < K; ++k) {
    const float iof = chip_box_iof(chips + k * 4, box);
    if (iof > best_iof) {
      best_iof = iof;
      best = k;
    }
  }
  return best;
}

// Writes the box clipped to its best chip (in that chip's coordinates, zeros without one) and
// returns the chip's index: one element of the assign_boxes_to_chips op.
SNIPER_HOST_DEVICE int64_t assign_box_to_chips(const float* box, const float* chips, int64_t K, float* part) {
  const int64_t best = best_chip_for_box(box, chips, K);
  if (best >= 0) {
    clip_box_to_chip(box, chips + best * 4, part);
  } else {
    part[0] = part[1] = part[2] = part[3] = 0.f;
  }
  return best;
}

}  // namespace sniper
