// Writes a small generated int8 ResNet-18 (QDQ ONNX) for the tests that run
// the real vtaserve binary: write_test_model <out.onnx> [input_size]
// [num_classes]. Exit 0 on success.
#include <cstdio>
#include <cstdlib>

#include "engine/zoo/resnet_generator.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: write_test_model OUT.onnx [size] [classes]\n");
    return 2;
  }
  vtaserve::zoo::ResNetSpec spec;
  spec.depth = 18;
  spec.input_size = argc > 2 ? std::atoi(argv[2]) : 32;
  spec.num_classes = argc > 3 ? std::atoi(argv[3]) : 10;
  auto model = vtaserve::zoo::GenerateResNet(spec);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
    return 1;
  }
  absl::Status s = vtaserve::zoo::WriteModel(*model, argv[1]);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
