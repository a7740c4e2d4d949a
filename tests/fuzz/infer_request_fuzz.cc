// libFuzzer target: bytes -> ModelInferRequest -> BuildInputs and
// SelectOutputs (server/tensor_conversion.h) against the metadata of small
// loaded models (uint8, int8 and float inputs; with and without batching;
// with declared outputs). Every request gives tensors of exactly the
// model's shapes or an InvalidArgument.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "engine/model_config.h"
#include "engine/model_manager.h"
#include "engine/onnx/onnx_importer.h"
#include "proto/inference.pb.h"
#include "server/tensor_conversion.h"
#include "tests/fuzz/fuzz_models.h"

namespace {

using vtaserve::engine::ModelInfo;

std::vector<ModelInfo> MakeInfos() {
  std::vector<ModelInfo> infos;
  for (const onnx::ModelProto& model : vtaserve::fuzz::SmallConvModels()) {
    auto graph = vtaserve::engine::ImportOnnxModel(
        model, vtaserve::engine::ImportOptions{});
    if (!graph.ok()) continue;  // the float form is not a servable model
    for (const char* config_text :
         {"", "max_batch_size: 4", "output { name: \"output\" }"}) {
      auto config =
          vtaserve::engine::ParseModelConfig(config_text, "fuzz", "fuzz_model");
      if (!config.ok()) std::abort();
      ModelInfo info;
      info.name = "fuzz_model";
      info.version = 1;
      info.config = *config;
      for (auto v : graph->inputs) info.inputs.push_back(graph->value(v));
      for (auto v : graph->outputs) info.outputs.push_back(graph->value(v));
      for (size_t i = 0; i < info.outputs.size(); ++i) {
        info.default_outputs.push_back(static_cast<int>(i));
      }
      infos.push_back(std::move(info));
    }
  }
  if (infos.size() < 12) std::abort();  // quantized forms must import
  return infos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<ModelInfo>* infos =
      new std::vector<ModelInfo>(MakeInfos());
  inference::ModelInferRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  for (const ModelInfo& info : *infos) {
    auto inputs = vtaserve::server::BuildInputs(info, request);
    if (inputs.ok()) {
      if (inputs->size() != info.inputs.size()) std::abort();
      for (size_t i = 0; i < inputs->size(); ++i) {
        const auto& t = (*inputs)[i];
        const auto& want = info.inputs[i].shape;
        // Same shape, except a batch dimension 1..max_batch_size.
        if (t.shape().size() != want.size() ||
            t.dtype() != info.inputs[i].dtype)
          std::abort();
        for (size_t d = 0; d < want.size(); ++d) {
          const bool batch = d == 0 && info.config.max_batch_size > 0;
          if (batch ? (t.shape()[0] < 1 ||
                       t.shape()[0] > info.config.max_batch_size)
                    : t.shape()[d] != want[d]) {
            std::abort();
          }
        }
      }
    } else if (inputs.status().code() != absl::StatusCode::kInvalidArgument) {
      std::abort();
    }
    auto outputs = vtaserve::server::SelectOutputs(info, request);
    if (outputs.ok()) {
      for (int o : *outputs) {
        if (o < 0 || o >= static_cast<int>(info.outputs.size())) std::abort();
      }
    } else if (outputs.status().code() != absl::StatusCode::kInvalidArgument) {
      std::abort();
    }
  }
  return 0;
}
