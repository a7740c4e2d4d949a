// Model configuration: <repo>/<model>/config.pbtxt (protobuf text format of
// inference.ModelConfig in proto/model_config.proto) parsed once into a
// validated ModelConfig struct. Nothing after parsing reads the proto.
// Thread-safety: the functions are pure; a ModelConfig is a plain value.
#ifndef VTASERVE_ENGINE_MODEL_CONFIG_H_
#define VTASERVE_ENGINE_MODEL_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/backend.h"
#include "engine/tensor.h"

namespace vtaserve::engine {

// A declared model input or output. The model file stays the source of
// truth: a declared tensor must exist in it and agree on what is given.
struct TensorSpec {
  std::string name;
  // Default: unset (taken from the model).
  std::optional<DataType> dtype;
  // Default: empty (taken from the model). Without the batch dimension when
  // max_batch_size > 0.
  std::vector<int64_t> dims;
};

// First-convolution strategies the VTA and CPU backends understand.
inline constexpr absl::string_view kFirstConvStrategies[] = {
    "auto", "vta_pad", "vta_im2col", "vta_s2d", "vta_kwfold", "cpu"};
// Backend names a placement list may use (a server may register fewer).
inline constexpr absl::string_view kKnownBackends[] = {"vta", "cpu",
                                                       "reference"};

struct ModelConfig {
  // The model folder name (config `name`, when given, must equal it).
  std::string name;
  // 0: requests carry the model's exact shapes (batch of 1). N > 0: inputs
  // take a leading batch dimension 1..N. Default: 0.
  int max_batch_size = 0;
  // Backends in order of preference. Default: vta, cpu, reference.
  std::vector<std::string> placement = {"vta", "cpu", "reference"};
  // Default: "auto" (the backend's cost model decides).
  std::string first_conv = "auto";
  // VTA configuration name or JSON path. Default: empty (the server's).
  std::string vta_config;
  // CPU backend threads. Default: 0 (the server's).
  int cpu_threads = 0;
  // Requests waiting for an execution slot. Default: 64.
  int max_queue_size = 64;
  // Executions in parallel, each with its own Executor. Default: 1.
  int concurrent_executions = 1;
  // Output channels per requantization shift. Default: 16 (VTA BLOCK_OUT).
  int shift_group = 16;
  // Declared inputs and outputs. Default: none (all from the model). When
  // outputs are declared, responses return only those unless the request
  // names outputs.
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
  // Where the config came from ("" for defaults), for error messages.
  std::string source;

  // Options passed to every backend's Compile ("first_conv", and
  // "vta_config"/"cpu_threads" when set).
  BackendOptions ToBackendOptions() const;
};

// Parses and validates config text. `source` names the file in errors and
// `model_name` is the folder name. InvalidArgument naming the file and the
// field (or line and column for syntax errors).
absl::StatusOr<ModelConfig> ParseModelConfig(absl::string_view text,
                                             absl::string_view source,
                                             absl::string_view model_name);

// Reads <model_dir>/config.pbtxt when present, else returns defaults named
// after the folder. NotFound if model_dir is not a directory, plus the
// errors of ParseModelConfig.
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir);

}  // namespace vtaserve::engine

#endif  // VTASERVE_ENGINE_MODEL_CONFIG_H_
