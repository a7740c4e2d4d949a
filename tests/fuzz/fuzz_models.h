// Small models shared by the fuzz targets and their seed generator: a few
// convolutions of the built-in zoo, small enough for fast fuzzing.
#ifndef VTASERVE_TESTS_FUZZ_FUZZ_MODELS_H_
#define VTASERVE_TESTS_FUZZ_FUZZ_MODELS_H_

#include <cstdlib>
#include <vector>

#include "engine/zoo/resnet_generator.h"
#include "onnx/onnx_pb.h"

namespace vtaserve::fuzz {

// Every (format, input dtype, relu) combination of a 3 -> 4 channel 3x3
// convolution on an 8x8 image. Aborts if the zoo cannot build one (a bug in
// the harness, not in the code under test).
inline std::vector<onnx::ModelProto> SmallConvModels() {
  std::vector<onnx::ModelProto> models;
  for (zoo::ModelFormat format :
       {zoo::ModelFormat::kQdq, zoo::ModelFormat::kQOperator,
        zoo::ModelFormat::kFloat}) {
    for (bool uint8_input : {true, false}) {
      for (bool relu : {false, true}) {
        if (format == zoo::ModelFormat::kFloat && !uint8_input) continue;
        zoo::ConvSpec spec;
        spec.in_channels = 3;
        spec.out_channels = 4;
        spec.input_h = spec.input_w = 8;
        spec.kernel = 3;
        spec.stride = 1;
        spec.pad = 1;
        spec.format = format;
        spec.uint8_input = uint8_input;
        spec.input_zero_point = uint8_input ? 128 : 0;
        spec.relu = relu;
        auto model = zoo::GenerateConv(spec);
        if (!model.ok()) std::abort();
        models.push_back(*std::move(model));
      }
    }
  }
  return models;
}

}  // namespace vtaserve::fuzz

#endif  // VTASERVE_TESTS_FUZZ_FUZZ_MODELS_H_
