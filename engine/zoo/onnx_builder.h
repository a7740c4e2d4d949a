// OnnxGraphBuilder: a small helper that assembles an onnx::ModelProto from
// initializers, typed inputs/outputs and nodes, with ai.onnx 13 and
// com.microsoft 1 imported by default. Used by the model zoo generator and by
// tests that need arbitrary small graphs. Tensor data is stored as raw_data
// (little endian, as ONNX requires).
// Not thread-safe; one builder per thread. Build() does not consume the
// builder, so it may be called repeatedly.
#ifndef VTASERVE_ENGINE_ZOO_ONNX_BUILDER_H_
#define VTASERVE_ENGINE_ZOO_ONNX_BUILDER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "onnx/onnx_pb.h"

namespace vtaserve::zoo {

inline constexpr char kOnnxDomain[] = "";  // ai.onnx
inline constexpr char kMsDomain[] = "com.microsoft";

// Attribute constructors for OnnxGraphBuilder::AddNode.
onnx::AttributeProto IntAttr(absl::string_view name, int64_t value);
onnx::AttributeProto FloatAttr(absl::string_view name, float value);
onnx::AttributeProto IntsAttr(absl::string_view name,
                              absl::Span<const int64_t> values);
onnx::AttributeProto FloatsAttr(absl::string_view name,
                                absl::Span<const float> values);
onnx::AttributeProto StringAttr(absl::string_view name,
                                absl::string_view value);

class OnnxGraphBuilder {
 public:
  // `graph_name` becomes GraphProto.name.
  explicit OnnxGraphBuilder(absl::string_view graph_name);

  // Sets (or adds) the opset version imported for `domain` ("" is ai.onnx).
  // Default: ai.onnx 13, com.microsoft 1.
  void SetOpset(absl::string_view domain, int64_t version);
  // Removes the import of `domain` (e.g. com.microsoft for a pure ONNX model).
  void RemoveOpset(absl::string_view domain);

  // Initializers. `dims` empty means a scalar; data.size() must equal the
  // product of dims (checked: a mismatch is a programmer error and aborts).
  // Each returns `name` for chaining into AddNode.
  std::string AddFloatInitializer(absl::string_view name,
                                  std::vector<int64_t> dims,
                                  absl::Span<const float> data);
  std::string AddInt8Initializer(absl::string_view name,
                                 std::vector<int64_t> dims,
                                 absl::Span<const int8_t> data);
  std::string AddUInt8Initializer(absl::string_view name,
                                  std::vector<int64_t> dims,
                                  absl::Span<const uint8_t> data);
  std::string AddInt32Initializer(absl::string_view name,
                                  std::vector<int64_t> dims,
                                  absl::Span<const int32_t> data);
  std::string AddInt64Initializer(absl::string_view name,
                                  std::vector<int64_t> dims,
                                  absl::Span<const int64_t> data);
  // Scalar shorthands.
  std::string AddFloatScalar(absl::string_view name, float value);
  // A zero point scalar of the given element type (UINT8, INT8 or INT32);
  // `value` must fit the type (programmer error otherwise).
  std::string AddZeroPointScalar(absl::string_view name,
                                 onnx::TensorProto::DataType type,
                                 int32_t value);
  // True if an initializer called `name` was added.
  bool HasInitializer(absl::string_view name) const;

  // Graph inputs and outputs. `elem_type` is an onnx::TensorProto::DataType;
  // a negative dim becomes the symbolic dim "N".
  void AddInput(absl::string_view name, onnx::TensorProto::DataType elem_type,
                absl::Span<const int64_t> dims);
  void AddOutput(absl::string_view name, onnx::TensorProto::DataType elem_type,
                 absl::Span<const int64_t> dims);

  // Appends a node; nodes must be added in topological order. Returns a
  // reference valid until the next AddNode call.
  onnx::NodeProto& AddNode(absl::string_view op_type, absl::string_view name,
                           std::vector<std::string> inputs,
                           std::vector<std::string> outputs,
                           std::vector<onnx::AttributeProto> attributes = {},
                           absl::string_view domain = kOnnxDomain);

  // Free-form key/value stored in ModelProto.metadata_props.
  void AddMetadata(absl::string_view key, absl::string_view value);
  void SetDocString(absl::string_view doc) { doc_string_ = std::string(doc); }

  // The model (ir_version 8, producer "vtaserve"). Unchecked.
  onnx::ModelProto Build() const;
  // Build() followed by CheckModel(); InvalidArgument with the checker's
  // message on failure.
  absl::StatusOr<onnx::ModelProto> BuildChecked() const;

 private:
  onnx::TensorProto& NewInitializer(absl::string_view name,
                                    std::vector<int64_t> dims,
                                    onnx::TensorProto::DataType type,
                                    size_t count);

  onnx::GraphProto graph_;
  std::map<std::string, int64_t> opsets_;
  std::vector<std::pair<std::string, std::string>> metadata_;
  std::string doc_string_;
};

// onnx::checker::check_model, then strict ONNX shape and type inference on a
// copy (ops of other domains are skipped by inference). InvalidArgument with
// the checker's message on failure; never throws.
absl::Status CheckModel(const onnx::ModelProto& model);

}  // namespace vtaserve::zoo

#endif  // VTASERVE_ENGINE_ZOO_ONNX_BUILDER_H_
