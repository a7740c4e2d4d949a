#include "engine/zoo/onnx_builder.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <utility>

#include "absl/base/config.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/common/logging.h"
#include "onnx/checker.h"
#include "onnx/shape_inference/implementation.h"

namespace vtaserve::zoo {
namespace {

int64_t Product(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

void SetShape(onnx::ValueInfoProto* info, onnx::TensorProto::DataType type,
              absl::Span<const int64_t> dims) {
  auto* tensor_type = info->mutable_type()->mutable_tensor_type();
  tensor_type->set_elem_type(type);
  auto* shape = tensor_type->mutable_shape();
  for (int64_t d : dims) {
    auto* dim = shape->add_dim();
    if (d < 0) {
      dim->set_dim_param("N");
    } else {
      dim->set_dim_value(d);
    }
  }
}

}  // namespace

onnx::AttributeProto IntAttr(absl::string_view name, int64_t value) {
  onnx::AttributeProto a;
  a.set_name(std::string(name));
  a.set_type(onnx::AttributeProto::INT);
  a.set_i(value);
  return a;
}

onnx::AttributeProto FloatAttr(absl::string_view name, float value) {
  onnx::AttributeProto a;
  a.set_name(std::string(name));
  a.set_type(onnx::AttributeProto::FLOAT);
  a.set_f(value);
  return a;
}

onnx::AttributeProto IntsAttr(absl::string_view name,
                              absl::Span<const int64_t> values) {
  onnx::AttributeProto a;
  a.set_name(std::string(name));
  a.set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a.add_ints(v);
  return a;
}

onnx::AttributeProto FloatsAttr(absl::string_view name,
                                absl::Span<const float> values) {
  onnx::AttributeProto a;
  a.set_name(std::string(name));
  a.set_type(onnx::AttributeProto::FLOATS);
  for (float v : values) a.add_floats(v);
  return a;
}

onnx::AttributeProto StringAttr(absl::string_view name,
                                absl::string_view value) {
  onnx::AttributeProto a;
  a.set_name(std::string(name));
  a.set_type(onnx::AttributeProto::STRING);
  a.set_s(std::string(value));
  return a;
}

OnnxGraphBuilder::OnnxGraphBuilder(absl::string_view graph_name) {
  graph_.set_name(std::string(graph_name));
  opsets_[""] = 13;
  opsets_[kMsDomain] = 1;
}

void OnnxGraphBuilder::SetOpset(absl::string_view domain, int64_t version) {
  opsets_[std::string(domain)] = version;
}

void OnnxGraphBuilder::RemoveOpset(absl::string_view domain) {
  opsets_.erase(std::string(domain));
}

onnx::TensorProto& OnnxGraphBuilder::NewInitializer(
    absl::string_view name, std::vector<int64_t> dims,
    onnx::TensorProto::DataType type, size_t count) {
  // A size mismatch is a bug in the caller's code, never input data.
  VTASERVE_CHECK(static_cast<int64_t>(count) == Product(dims),
                 absl::StrCat("OnnxGraphBuilder: initializer ", name, " has ",
                              count, " values"));
  onnx::TensorProto* t = graph_.add_initializer();
  t->set_name(std::string(name));
  t->set_data_type(type);
  for (int64_t d : dims) t->add_dims(d);
  return *t;
}

template <typename T>
static void SetRaw(onnx::TensorProto& t, absl::Span<const T> data) {
  static_assert(ABSL_IS_LITTLE_ENDIAN, "raw_data is little endian");
  t.set_raw_data(std::string(reinterpret_cast<const char*>(data.data()),
                             data.size() * sizeof(T)));
}

std::string OnnxGraphBuilder::AddFloatInitializer(
    absl::string_view name, std::vector<int64_t> dims,
    absl::Span<const float> data) {
  SetRaw(NewInitializer(name, std::move(dims), onnx::TensorProto::FLOAT,
                        data.size()),
         data);
  return std::string(name);
}

std::string OnnxGraphBuilder::AddInt8Initializer(
    absl::string_view name, std::vector<int64_t> dims,
    absl::Span<const int8_t> data) {
  SetRaw(NewInitializer(name, std::move(dims), onnx::TensorProto::INT8,
                        data.size()),
         data);
  return std::string(name);
}

std::string OnnxGraphBuilder::AddUInt8Initializer(
    absl::string_view name, std::vector<int64_t> dims,
    absl::Span<const uint8_t> data) {
  SetRaw(NewInitializer(name, std::move(dims), onnx::TensorProto::UINT8,
                        data.size()),
         data);
  return std::string(name);
}

std::string OnnxGraphBuilder::AddInt32Initializer(
    absl::string_view name, std::vector<int64_t> dims,
    absl::Span<const int32_t> data) {
  SetRaw(NewInitializer(name, std::move(dims), onnx::TensorProto::INT32,
                        data.size()),
         data);
  return std::string(name);
}

std::string OnnxGraphBuilder::AddInt64Initializer(
    absl::string_view name, std::vector<int64_t> dims,
    absl::Span<const int64_t> data) {
  SetRaw(NewInitializer(name, std::move(dims), onnx::TensorProto::INT64,
                        data.size()),
         data);
  return std::string(name);
}

std::string OnnxGraphBuilder::AddFloatScalar(absl::string_view name,
                                             float value) {
  return AddFloatInitializer(name, {}, absl::MakeConstSpan(&value, 1));
}

std::string OnnxGraphBuilder::AddZeroPointScalar(
    absl::string_view name, onnx::TensorProto::DataType type, int32_t value) {
  switch (type) {
    case onnx::TensorProto::UINT8: {
      VTASERVE_CHECK(value >= 0 && value <= 255, "uint8 zero point");
      const uint8_t v = static_cast<uint8_t>(value);
      return AddUInt8Initializer(name, {}, absl::MakeConstSpan(&v, 1));
    }
    case onnx::TensorProto::INT8: {
      VTASERVE_CHECK(value >= -128 && value <= 127, "int8 zero point");
      const int8_t v = static_cast<int8_t>(value);
      return AddInt8Initializer(name, {}, absl::MakeConstSpan(&v, 1));
    }
    case onnx::TensorProto::INT32:
      return AddInt32Initializer(name, {}, absl::MakeConstSpan(&value, 1));
    default:
      CheckFailed(__FILE__, __LINE__, "zero point type",
                  absl::StrCat("OnnxGraphBuilder: bad zero point type ",
                               static_cast<int>(type)));
  }
}

bool OnnxGraphBuilder::HasInitializer(absl::string_view name) const {
  for (const auto& t : graph_.initializer()) {
    if (t.name() == name) return true;
  }
  return false;
}

void OnnxGraphBuilder::AddInput(absl::string_view name,
                                onnx::TensorProto::DataType elem_type,
                                absl::Span<const int64_t> dims) {
  onnx::ValueInfoProto* info = graph_.add_input();
  info->set_name(std::string(name));
  SetShape(info, elem_type, dims);
}

void OnnxGraphBuilder::AddOutput(absl::string_view name,
                                 onnx::TensorProto::DataType elem_type,
                                 absl::Span<const int64_t> dims) {
  onnx::ValueInfoProto* info = graph_.add_output();
  info->set_name(std::string(name));
  SetShape(info, elem_type, dims);
}

onnx::NodeProto& OnnxGraphBuilder::AddNode(
    absl::string_view op_type, absl::string_view name,
    std::vector<std::string> inputs, std::vector<std::string> outputs,
    std::vector<onnx::AttributeProto> attributes, absl::string_view domain) {
  onnx::NodeProto* node = graph_.add_node();
  node->set_op_type(std::string(op_type));
  node->set_name(std::string(name));
  if (!domain.empty()) node->set_domain(std::string(domain));
  for (auto& in : inputs) node->add_input(std::move(in));
  for (auto& out : outputs) node->add_output(std::move(out));
  for (auto& attr : attributes) *node->add_attribute() = std::move(attr);
  return *node;
}

void OnnxGraphBuilder::AddMetadata(absl::string_view key,
                                   absl::string_view value) {
  metadata_.emplace_back(std::string(key), std::string(value));
}

onnx::ModelProto OnnxGraphBuilder::Build() const {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.set_producer_name("vtaserve");
  model.set_producer_version("0.1");
  if (!doc_string_.empty()) model.set_doc_string(doc_string_);
  for (const auto& [domain, version] : opsets_) {
    onnx::OperatorSetIdProto* op = model.add_opset_import();
    op->set_domain(domain);
    op->set_version(version);
  }
  for (const auto& [key, value] : metadata_) {
    onnx::StringStringEntryProto* e = model.add_metadata_props();
    e->set_key(key);
    e->set_value(value);
  }
  *model.mutable_graph() = graph_;
  return model;
}

absl::StatusOr<onnx::ModelProto> OnnxGraphBuilder::BuildChecked() const {
  onnx::ModelProto model = Build();
  absl::Status s = CheckModel(model);
  if (!s.ok()) return s;
  return model;
}

absl::Status CheckModel(const onnx::ModelProto& model) {
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("ONNX checker: ", e.what()));
  }
  try {
    onnx::ModelProto copy = model;
    onnx::ShapeInferenceOptions options(/*check_type_val=*/true,
                                        /*strict_mode_val=*/1,
                                        /*data_prop_val=*/false);
    onnx::shape_inference::InferShapes(copy, onnx::OpSchemaRegistry::Instance(),
                                       options);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("ONNX shape inference: ", e.what()));
  }
  return absl::OkStatus();
}

}  // namespace vtaserve::zoo
