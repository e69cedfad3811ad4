// The one place where the sniper op schemas are declared; kernels register per device in cpu/ and cuda/.
#include <Python.h>
#include <torch/library.h>

extern "C" {
// Importing mmdet_sniper._C from Python runs the static TORCH_LIBRARY registrations below; the
// module itself holds nothing.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(sniper, m) {
  m.def("chip_coverage(Tensor chips, Tensor boxes, str mode=\"iof\") -> Tensor");
  m.def("greedy_chip_cover(Tensor covers, int min_count=1) -> Tensor");
  m.def("clip_boxes_to_chips(Tensor boxes, Tensor chips) -> (Tensor, Tensor)");
  m.def("assign_boxes_to_chips(Tensor boxes, Tensor chips) -> (Tensor, Tensor)");
  m.def(
      "chip_grid_cover(Tensor boxes, Tensor image_sizes, Tensor shuffle_keys, int chip_size, int stride, "
      "float min_iof, int min_count=1) -> (Tensor, Tensor)");
}
