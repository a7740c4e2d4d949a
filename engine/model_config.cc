#include "engine/model_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "proto/model_config.pb.h"

namespace vtaserve::engine {
namespace {

constexpr int kMaxBatchSizeLimit = 4096;
constexpr int kMaxQueueSizeLimit = 1 << 20;
constexpr int kMaxConcurrentExecutions = 256;
constexpr int kMaxCpuThreads = 1024;
constexpr int kMaxShiftGroup = 4096;

// Collects the first syntax error of a text-format parse.
class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (error_.empty()) {
      // The parser counts from 0.
      error_ = absl::StrCat("line ", line + 1, ", column ", column + 1, ": ",
                            message);
    }
  }
  void AddWarning(int, google::protobuf::io::ColumnNumber,
                  const std::string&) override {}
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

absl::Status FieldError(absl::string_view source, absl::string_view field,
                        absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": field '", field, "': ", what));
}

absl::StatusOr<std::optional<DataType>> ConvertDataType(
    inference::DataType t, absl::string_view source, absl::string_view field) {
  switch (t) {
    case inference::TYPE_INVALID:
      return std::optional<DataType>();
    case inference::TYPE_UINT8:
      return std::optional<DataType>(DataType::kUInt8);
    case inference::TYPE_INT8:
      return std::optional<DataType>(DataType::kInt8);
    case inference::TYPE_INT32:
      return std::optional<DataType>(DataType::kInt32);
    case inference::TYPE_FP32:
      return std::optional<DataType>(DataType::kFloat32);
    default:
      return FieldError(
          source, field,
          absl::StrCat("unsupported data type ", inference::DataType_Name(t),
                       " (expected TYPE_UINT8, TYPE_INT8, TYPE_INT32 or "
                       "TYPE_FP32)"));
  }
}

template <typename ProtoTensor>
absl::StatusOr<std::vector<TensorSpec>> ConvertTensors(
    const google::protobuf::RepeatedPtrField<ProtoTensor>& tensors,
    absl::string_view source, absl::string_view kind) {
  std::vector<TensorSpec> specs;
  std::set<std::string> seen;
  for (int i = 0; i < tensors.size(); ++i) {
    const ProtoTensor& t = tensors.Get(i);
    const std::string field = absl::StrCat(kind, "[", i, "]");
    if (t.name().empty()) {
      return FieldError(source, absl::StrCat(field, ".name"), "must be set");
    }
    if (!seen.insert(t.name()).second) {
      return FieldError(source, absl::StrCat(field, ".name"),
                        absl::StrCat("duplicate tensor '", t.name(), "'"));
    }
    TensorSpec spec;
    spec.name = t.name();
    auto dtype = ConvertDataType(t.data_type(), source,
                                 absl::StrCat(field, ".data_type"));
    if (!dtype.ok()) return dtype.status();
    spec.dtype = *dtype;
    for (int64_t d : t.dims()) {
      if (d < 1 && d != -1) {
        return FieldError(
            source, absl::StrCat(field, ".dims"),
            absl::StrCat("dimension ", d, " (expected >= 1, or -1 for any)"));
      }
      spec.dims.push_back(d);
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

absl::Status CheckRange(absl::string_view source, absl::string_view field,
                        int64_t value, int64_t lo, int64_t hi) {
  if (value < lo || value > hi) {
    return FieldError(
        source, field,
        absl::StrCat(value, " is out of range [", lo, ", ", hi, "]"));
  }
  return absl::OkStatus();
}

}  // namespace

BackendOptions ModelConfig::ToBackendOptions() const {
  BackendOptions options;
  options["first_conv"] = first_conv;
  if (!vta_config.empty()) options["vta_config"] = vta_config;
  if (cpu_threads > 0) options["cpu_threads"] = absl::StrCat(cpu_threads);
  return options;
}

absl::StatusOr<ModelConfig> ParseModelConfig(absl::string_view text,
                                             absl::string_view source,
                                             absl::string_view model_name) {
  inference::ModelConfig proto;
  google::protobuf::TextFormat::Parser parser;
  FirstErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &proto)) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": ", errors.error().empty() ? "parse error" : errors.error()));
  }

  ModelConfig config;
  config.source = std::string(source);
  config.name = std::string(model_name);
  if (!proto.name().empty() && proto.name() != model_name) {
    return FieldError(
        source, "name",
        absl::StrCat("'", proto.name(), "' differs from the model folder '",
                     model_name, "'"));
  }
  if (!proto.platform().empty() && proto.platform() != "vtaserve_onnx" &&
      proto.platform() != "onnxruntime_onnx") {
    return FieldError(source, "platform",
                      absl::StrCat("'", proto.platform(),
                                   "' (expected vtaserve_onnx or "
                                   "onnxruntime_onnx)"));
  }
  if (!proto.backend().empty() && proto.backend() != "vtaserve" &&
      proto.backend() != "onnxruntime") {
    return FieldError(source, "backend",
                      absl::StrCat("'", proto.backend(),
                                   "' (expected vtaserve); use 'placement' "
                                   "to choose devices"));
  }
  if (proto.instance_group_size() > 0) {
    return FieldError(source, "instance_group",
                      "not read from config.pbtxt; use concurrent_executions");
  }
  if (proto.version() != 0) {
    return FieldError(source, "version",
                      "is reported, not configured; the latest version "
                      "folder is served");
  }
  auto st = CheckRange(source, "max_batch_size", proto.max_batch_size(), 0,
                       kMaxBatchSizeLimit);
  if (!st.ok()) return st;
  config.max_batch_size = proto.max_batch_size();

  if (proto.placement_size() > 0) {
    config.placement.clear();
    std::set<std::string> seen;
    for (const std::string& name : proto.placement()) {
      if (std::find(std::begin(kKnownBackends), std::end(kKnownBackends),
                    name) == std::end(kKnownBackends)) {
        return FieldError(source, "placement",
                          absl::StrCat("unknown backend '", name,
                                       "' (expected vta, cpu or reference)"));
      }
      if (!seen.insert(name).second) {
        return FieldError(source, "placement",
                          absl::StrCat("backend '", name, "' listed twice"));
      }
      config.placement.push_back(name);
    }
  }
  if (!proto.first_conv().empty()) {
    if (std::find(std::begin(kFirstConvStrategies),
                  std::end(kFirstConvStrategies),
                  proto.first_conv()) == std::end(kFirstConvStrategies)) {
      return FieldError(
          source, "first_conv",
          absl::StrCat("'", proto.first_conv(),
                       "' (expected auto, vta_pad, vta_im2col, vta_s2d, "
                       "vta_kwfold or cpu)"));
    }
    config.first_conv = proto.first_conv();
  }
  config.vta_config = proto.vta_config();

  st =
      CheckRange(source, "cpu_threads", proto.cpu_threads(), 0, kMaxCpuThreads);
  if (!st.ok()) return st;
  config.cpu_threads = proto.cpu_threads();
  // proto3 cannot tell 0 from unset: 0 keeps the default.
  st = CheckRange(source, "max_queue_size", proto.max_queue_size(), 0,
                  kMaxQueueSizeLimit);
  if (!st.ok()) return st;
  if (proto.max_queue_size() > 0)
    config.max_queue_size = proto.max_queue_size();
  st = CheckRange(source, "concurrent_executions",
                  proto.concurrent_executions(), 0, kMaxConcurrentExecutions);
  if (!st.ok()) return st;
  if (proto.concurrent_executions() > 0) {
    config.concurrent_executions = proto.concurrent_executions();
  }
  st =
      CheckRange(source, "shift_group", proto.shift_group(), 0, kMaxShiftGroup);
  if (!st.ok()) return st;
  if (proto.shift_group() > 0) config.shift_group = proto.shift_group();

  auto inputs = ConvertTensors(proto.input(), source, "input");
  if (!inputs.ok()) return inputs.status();
  config.inputs = *std::move(inputs);
  auto outputs = ConvertTensors(proto.output(), source, "output");
  if (!outputs.ok()) return outputs.status();
  config.outputs = *std::move(outputs);
  return config;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(model_dir, ec)) {
    return absl::NotFoundError(
        absl::StrCat("model directory '", model_dir, "' does not exist"));
  }
  std::string dir = model_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const std::string model_name = fs::path(dir).filename().string();
  const fs::path path = fs::path(model_dir) / "config.pbtxt";
  if (!fs::exists(path, ec)) {
    ModelConfig config;
    config.name = model_name;
    return config;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(path.string(), ": cannot be read"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return ParseModelConfig(text.str(), path.string(), model_name);
}

}  // namespace vtaserve::engine
