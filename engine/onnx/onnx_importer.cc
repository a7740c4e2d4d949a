#include "engine/onnx/onnx_importer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "engine/onnx/importer_internal.h"

namespace vtaserve::engine::onnx_internal {

// ---------------------------------------------------------------------------
// Graph boundary.

absl::Status Importer::AddGraphInputs() {
  const onnx::GraphProto& graph = model_.graph();
  for (const onnx::ValueInfoProto& in : graph.input()) {
    if (initializers_.count(in.name()) > 0) continue;  // IR < 4 style
    const std::string& name = in.name();
    auto fail = [&](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat("graph input '", name, "': ", what));
    };
    if (name.empty()) return fail("has no name");
    if (syms_.count(name) > 0) return fail("is listed twice");
    if (!in.type().has_tensor_type()) return fail("is not a tensor");
    const auto& tt = in.type().tensor_type();
    DataType dtype;
    switch (tt.elem_type()) {
      case TP::FLOAT:
        dtype = DataType::kFloat32;
        break;
      case TP::UINT8:
        dtype = DataType::kUInt8;
        break;
      case TP::INT8:
        dtype = DataType::kInt8;
        break;
      default:
        return fail(absl::StrCat("element type ", OnnxTypeName(tt.elem_type()),
                                 " is unsupported (float32, uint8 or int8)"));
    }
    if (!tt.has_shape()) return fail("has no shape");
    std::vector<int64_t> shape;
    for (int d = 0; d < tt.shape().dim_size(); ++d) {
      const auto& dim = tt.shape().dim(d);
      const bool known = dim.has_dim_value() && dim.dim_value() > 0;
      if (d == 0) {
        if (known && dim.dim_value() != 1) {
          return fail(
              absl::StrCat("fixed batch size ", dim.dim_value(),
                           " is unsupported (use 1 or a symbolic batch)"));
        }
        shape.push_back(1);
        continue;
      }
      if (!known) {
        return fail(
            absl::StrCat("dimension ", d, " is not a known positive size"));
      }
      shape.push_back(dim.dim_value());
    }
    if (shape.empty()) return fail("is a scalar");
    if (absl::StatusOr<int64_t> n =
            CheckedElements(shape, absl::StrCat("graph input '", name, "'"));
        !n.ok()) {
      return n.status();
    }
    const ValueId v = NewValue(name, dtype, shape);
    g_.inputs.push_back(v);
    Sym s;
    s.shape = shape;
    if (dtype == DataType::kFloat32) {
      s.kind = SymKind::kFloat;
      s.value = v;
    } else if (dtype == DataType::kInt8) {
      s.kind = SymKind::kQuant;
      s.value = v;
      meta_[v].known = false;
    } else {
      const ValueId c =
          NewValue(absl::StrCat(name, "_int8"), DataType::kInt8, shape);
      meta_[c].is_uint8 = true;
      meta_[c].uint8_source = v;
      AddNode(absl::StrCat(name, "_to_int8"), OpKind::kCast, {v}, {c},
              NoParams{});
      s.kind = SymKind::kQuant;
      s.value = c;
    }
    syms_.emplace(name, std::move(s));
  }
  if (g_.inputs.empty()) {
    return absl::InvalidArgumentError("model has no (non-initializer) inputs");
  }
  return absl::OkStatus();
}

absl::Status Importer::AddGraphOutputs() {
  const onnx::GraphProto& graph = model_.graph();
  if (graph.output_size() == 0)
    return absl::InvalidArgumentError("model has no outputs");
  label_ = "graph output";
  op_type_ = "output";
  for (const onnx::ValueInfoProto& out : graph.output()) {
    const std::string& name = out.name();
    auto it = syms_.find(name);
    if (it == syms_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("graph output '", name, "' is never produced"));
    }
    const Sym s = it->second;
    ValueId v = -1;
    switch (s.kind) {
      case SymKind::kFloat:
        v = s.value;
        break;
      case SymKind::kDequant: {
        VTASERVE_ASSIGN_OR_RETURN(v, MaterializeFloat(s));
        break;
      }
      case SymKind::kQuant: {
        if (!meta_[s.value].known) {
          return absl::InvalidArgumentError(absl::StrCat(
              "graph output '", name, "' has no quantization parameters"));
        }
        v = s.value;
        if (meta_[s.value].is_uint8) {
          const Value& q = g_.values[s.value];
          const ValueId u =
              NewValue(absl::StrCat(name, "_uint8"), DataType::kUInt8, q.shape,
                       q.scale, q.zero_point + 128);
          AddNode(absl::StrCat(name, "_to_uint8"), OpKind::kCast, {s.value},
                  {u}, NoParams{});
          v = u;
        }
        break;
      }
      default:
        return absl::InvalidArgumentError(absl::StrCat(
            "graph output '", name, "' is ", SymKindName(s.kind),
            " (unsupported pattern: a float op must be followed by "
            "QuantizeLinear, outputs must be computed tensors)"));
    }
    if (std::find(g_.inputs.begin(), g_.inputs.end(), v) != g_.inputs.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("graph output '", name, "' is a graph input"));
    }
    if (std::find(g_.outputs.begin(), g_.outputs.end(), v) !=
        g_.outputs.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("graph output '", name, "' is listed twice"));
    }
    // The engine value takes the ONNX output name.
    if (g_.values[v].name != name) {
      for (Value& other : g_.values) {
        if (other.name == name)
          other.name = UniqueValueName(absl::StrCat(name, "_internal"));
      }
      value_names_.insert(name);
      g_.values[v].name = name;
    }
    // Check declared element type, if any.
    if (out.type().has_tensor_type() &&
        out.type().tensor_type().elem_type() != 0) {
      const int32_t et = out.type().tensor_type().elem_type();
      const DataType dt = g_.values[v].dtype;
      const bool match = (et == TP::FLOAT && dt == DataType::kFloat32) ||
                         (et == TP::UINT8 && dt == DataType::kUInt8) ||
                         (et == TP::INT8 && dt == DataType::kInt8);
      if (!match) {
        return absl::InvalidArgumentError(absl::StrCat(
            "graph output '", name, "' is declared ", OnnxTypeName(et),
            " but computes ", DataTypeName(dt), " (dtype mismatch)"));
      }
    }
    g_.outputs.push_back(v);
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelGraph> Importer::Run() {
  if (!model_.has_graph())
    return absl::InvalidArgumentError("model has no graph");
  const onnx::GraphProto& graph = model_.graph();
  for (const auto& imp : model_.opset_import()) {
    if (imp.domain().empty() || imp.domain() == "ai.onnx")
      opset_ = imp.version();
  }
  if (opset_ == 0 && model_.opset_import_size() == 0) opset_ = 13;
  if (opset_ < 10) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ONNX opset ", opset_, " is too old (QuantizeLinear needs >= 10)"));
  }
  if (graph.node_size() > kMaxNodes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "graph has ", graph.node_size(), " nodes (at most ", kMaxNodes, ")"));
  }
  for (const TP& init : graph.initializer()) {
    if (init.name().empty())
      return absl::InvalidArgumentError("unnamed initializer");
    // Every initializer, used or not: its shape within bounds and its data
    // the size the shape claims, before anything is allocated for it.
    VTASERVE_RETURN_IF_ERROR(
        CheckTensorData(init, absl::StrCat("initializer '", init.name(), "'")));
    if (!initializers_.emplace(init.name(), &init).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("initializer '", init.name(), "' is listed twice"));
    }
  }
  if (graph.sparse_initializer_size() > 0) {
    return absl::InvalidArgumentError("sparse initializers are unsupported");
  }
  VTASERVE_RETURN_IF_ERROR(AddGraphInputs());
  for (const onnx::ValueInfoProto& in : graph.input()) {
    value_names_.insert(in.name());
  }
  for (int i = 0; i < graph.node_size(); ++i) {
    node_ = &graph.node(i);
    op_type_ = node_->op_type();
    label_ = node_->name().empty() ? absl::StrCat("op_", i) : node_->name();
    if (node_->output_size() < 1 || node_->output(0).empty()) {
      return NodeError("has no output");
    }
    VTASERVE_RETURN_IF_ERROR(HandleNode());
  }
  node_ = nullptr;
  VTASERVE_RETURN_IF_ERROR(AddGraphOutputs());
  g_.name = options_.model_name;
  if (g_.name.empty()) g_.name = graph.name().empty() ? "model" : graph.name();
  VTASERVE_RETURN_IF_ERROR(g_.Validate());
  return std::move(g_);
}
}  // namespace vtaserve::engine::onnx_internal

namespace vtaserve::engine {

using onnx_internal::Importer;

absl::StatusOr<ModelGraph> ImportOnnxModel(const onnx::ModelProto& model,
                                           const ImportOptions& options) {
  Importer importer(model, options);
  return importer.Run();
}

absl::StatusOr<ModelGraph> ImportOnnxBytes(absl::string_view bytes,
                                           const ImportOptions& options) {
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError("model is larger than 2 GiB");
  }
  onnx::ModelProto model;
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(
        "not a valid ONNX ModelProto (corrupt or truncated protobuf)");
  }
  return ImportOnnxModel(model, options);
}

absl::StatusOr<ModelGraph> ImportOnnxFile(const std::string& path,
                                          const ImportOptions& options) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    const int err = errno;
    const std::string msg =
        absl::StrCat("cannot open model '", path, "': ", std::strerror(err));
    if (err == ENOENT || err == ENOTDIR) return absl::NotFoundError(msg);
    if (err == EACCES) return absl::PermissionDeniedError(msg);
    return absl::InvalidArgumentError(msg);
  }
  std::string bytes;
  char buf[1 << 16];
  size_t got = 0;
  while ((got = std::fread(buf, 1, sizeof(buf), f)) > 0) {
    bytes.append(buf, got);
    if (bytes.size() > (size_t{1} << 31)) {
      std::fclose(f);
      return absl::InvalidArgumentError(
          absl::StrCat("model '", path, "' is larger than 2 GiB"));
    }
  }
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) {
    return absl::InvalidArgumentError(
        absl::StrCat("error reading '", path, "'"));
  }
  absl::StatusOr<ModelGraph> g = ImportOnnxBytes(bytes, options);
  if (!g.ok()) return AnnotateStatus(g.status(), path);
  return g;
}

}  // namespace vtaserve::engine
