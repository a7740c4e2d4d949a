// ONNX importer: names, values and the symbolic state of ONNX tensors.
#include "engine/onnx/importer_internal.h"

namespace vtaserve::engine::onnx_internal {

std::string Importer::UniqueNodeName(const std::string& want) {
  std::string name = want.empty() ? "op" : want;
  for (int k = 1; node_names_.count(name) > 0; ++k) {
    name = absl::StrCat(want, "_", k);
  }
  node_names_.insert(name);
  return name;
}

std::string Importer::UniqueValueName(const std::string& want) {
  std::string name = want.empty() ? "tensor" : want;
  for (int k = 1; value_names_.count(name) > 0; ++k) {
    name = absl::StrCat(want, "_", k);
  }
  value_names_.insert(name);
  return name;
}

ValueId Importer::NewValue(const std::string& name, DataType dtype,
                           std::vector<int64_t> shape, float scale,
                           int32_t zero_point) {
  Value v;
  v.name = UniqueValueName(name);
  v.dtype = dtype;
  v.shape = std::move(shape);
  v.scale = scale;
  v.zero_point = zero_point;
  g_.values.push_back(std::move(v));
  meta_.emplace_back();
  return static_cast<ValueId>(g_.values.size() - 1);
}

ValueId Importer::NewQuantValue(const std::string& name,
                                std::vector<int64_t> shape, float scale,
                                int32_t zp8, bool is_uint8) {
  const ValueId v =
      NewValue(name, DataType::kInt8, std::move(shape), scale, zp8);
  meta_[v].known = true;
  meta_[v].is_uint8 = is_uint8;
  return v;
}

void Importer::AddNode(const std::string& name, OpKind op,
                       std::vector<ValueId> in, std::vector<ValueId> out,
                       OpParams params) {
  Node n;
  n.name = UniqueNodeName(name);
  n.op = op;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  n.params = std::move(params);
  g_.nodes.push_back(std::move(n));
}

absl::Status Importer::BindQuant(ValueId v, double scale, int32_t zp8,
                                 bool is_uint8, absl::string_view role) {
  QuantMeta& m = meta_[v];
  Value& val = g_.values[v];
  if (m.is_uint8 != is_uint8) {
    return NodeError(
        absl::StrCat(role, " '", val.name, "' is ",
                     m.is_uint8 ? "uint8" : "int8", " but its zero point is ",
                     is_uint8 ? "uint8" : "int8", " (dtype mismatch)"));
  }
  const float s = static_cast<float>(scale);
  if (m.known) {
    if (val.scale != s || val.zero_point != zp8) {
      return NodeError(absl::StrCat(
          role, " '", val.name, "' is quantized with scale ", val.scale,
          " zero point ", val.zero_point + (is_uint8 ? 128 : 0),
          " by its producer but read with scale ", s, " zero point ",
          zp8 + (is_uint8 ? 128 : 0), " (requantization is unsupported)"));
    }
    return absl::OkStatus();
  }
  m.known = true;
  val.scale = s;
  val.zero_point = zp8;
  if (m.uint8_source >= 0) {
    g_.values[m.uint8_source].scale = s;
    g_.values[m.uint8_source].zero_point = zp8 + 128;
  }
  return absl::OkStatus();
}

absl::StatusOr<const Sym*> Importer::Lookup(const std::string& name) {
  auto it = syms_.find(name);
  if (it != syms_.end()) return &it->second;
  auto init = initializers_.find(name);
  if (init == initializers_.end()) {
    return NodeError(absl::StrCat(
        "input '", name,
        "' is neither a graph input, an initializer nor the output of an "
        "earlier node (missing initializer or graph not topologically "
        "sorted)"));
  }
  absl::StatusOr<ConstTensor> c =
      DecodeTensor(*init->second, absl::StrCat("initializer '", name, "'"));
  if (!c.ok()) return Annotate(c.status());
  Sym s;
  s.kind = SymKind::kConst;
  s.shape = c->dims;
  s.index = static_cast<int>(consts_.size());
  consts_.push_back(std::move(c).value());
  return &syms_.emplace(name, std::move(s)).first->second;
}

absl::StatusOr<const Sym*> Importer::Input(int i, bool required) {
  if (i >= node_->input_size() || node_->input(i).empty()) {
    if (required) return NodeError(absl::StrCat("missing required input ", i));
    return static_cast<const Sym*>(nullptr);
  }
  return Lookup(node_->input(i));
}

absl::Status Importer::Define(int i, Sym sym) {
  if (i >= node_->output_size()) {
    return NodeError(absl::StrCat("missing output ", i));
  }
  const std::string& name = node_->output(i);
  if (name.empty()) return absl::OkStatus();
  if (syms_.count(name) > 0 || initializers_.count(name) > 0) {
    return NodeError(absl::StrCat("tensor '", name, "' is produced twice"));
  }
  syms_.emplace(name, std::move(sym));
  return absl::OkStatus();
}

absl::Status Importer::DefineQuant(ValueId y, std::vector<int64_t> shape) {
  Sym out;
  out.kind = SymKind::kQuant;
  out.value = y;
  out.shape = std::move(shape);
  return Define(0, std::move(out));
}

absl::Status Importer::DefinePending(PendingOp p, std::vector<int64_t> shape) {
  Sym out;
  out.kind = SymKind::kPending;
  out.shape = std::move(shape);
  out.index = static_cast<int>(pending_.size());
  pending_.push_back(std::move(p));
  return Define(0, std::move(out));
}

absl::StatusOr<const ConstTensor*> Importer::ConstInput(
    int i, absl::string_view role) {
  VTASERVE_ASSIGN_OR_RETURN(const Sym* s, Input(i));
  if (s->kind != SymKind::kConst) {
    return NodeError(absl::StrCat(role, " '", node_->input(i),
                                  "' must be a constant, got ",
                                  SymKindName(s->kind)));
  }
  return &consts_[s->index];
}

absl::StatusOr<double> Importer::ScalarScale(int i, absl::string_view role) {
  VTASERVE_ASSIGN_OR_RETURN(const ConstTensor* c, ConstInput(i, role));
  if (c->dtype != TP::FLOAT) {
    return NodeError(
        absl::StrCat(role, " must be float32, got ", OnnxTypeName(c->dtype)));
  }
  if (c->size() != 1) {
    return NodeError(absl::StrCat(
        role,
        " must be a scalar here (per-axis activation quantization is "
        "unsupported), got shape ",
        ShapeToString(c->dims)));
  }
  const double s = c->f[0];
  if (absl::Status st = CheckScale(s); !st.ok()) {
    return NodeError(absl::StrCat(role, ": ", st.message()));
  }
  return s;
}

absl::StatusOr<std::pair<int64_t, int32_t>> Importer::ScalarZeroPoint(
    int i, int32_t default_type, absl::string_view role) {
  VTASERVE_ASSIGN_OR_RETURN(const Sym* s, Input(i, /*required=*/false));
  if (s == nullptr) return std::make_pair(int64_t{0}, default_type);
  VTASERVE_ASSIGN_OR_RETURN(const ConstTensor* c, ConstInput(i, role));
  if (c->dtype != TP::UINT8 && c->dtype != TP::INT8) {
    return NodeError(absl::StrCat(role, " must be uint8 or int8, got ",
                                  OnnxTypeName(c->dtype)));
  }
  if (c->size() != 1) {
    return NodeError(absl::StrCat(role, " must be a scalar, got shape ",
                                  ShapeToString(c->dims)));
  }
  return std::make_pair(c->i[0], c->dtype);
}

// Scale/zero point of a constant being dequantized (or quantized).
absl::StatusOr<QuantConst> Importer::ReadQuantConst(int const_index,
                                                    int scale_input,
                                                    int zp_input, int axis,
                                                    absl::string_view role) {
  const ConstTensor& data = consts_[const_index];
  VTASERVE_ASSIGN_OR_RETURN(
      const ConstTensor* sc,
      ConstInput(scale_input, absl::StrCat(role, " scale")));
  if (sc->dtype != TP::FLOAT) {
    return NodeError(absl::StrCat(role, " scale must be float32, got ",
                                  OnnxTypeName(sc->dtype)));
  }
  QuantConst q;
  q.const_index = const_index;
  const int64_t ns = sc->size();
  if (ns == 0) return NodeError(absl::StrCat(role, " scale is empty"));
  if (ns != 1) {
    // Per-axis: a 1-D scale with one entry per index of `axis`.
    const int rank = static_cast<int>(data.dims.size());
    if (sc->dims.size() != 1 || rank == 0) {
      return NodeError(absl::StrCat(role, " scale of shape ",
                                    ShapeToString(sc->dims),
                                    " is neither a scalar nor 1-D"));
    }
    const int a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank) {
      return NodeError(absl::StrCat("bad quantization axis ", axis, " for ",
                                    role, " of rank ", rank));
    }
    if (data.dims[a] != ns) {
      return NodeError(absl::StrCat("bad quantization axis ", axis, ": ", role,
                                    " has ", data.dims[a],
                                    " entries on it but the scale has ", ns));
    }
    q.axis = a;
  }
  for (int64_t k = 0; k < ns; ++k) {
    const double s = sc->f[k];
    if (absl::Status st = CheckScale(s); !st.ok()) {
      return NodeError(absl::StrCat(role, ": ", st.message()));
    }
    q.scale.push_back(s);
  }
  VTASERVE_ASSIGN_OR_RETURN(const Sym* zs, Input(zp_input, /*required=*/false));
  if (zs == nullptr) {
    q.zero_point.assign(ns, 0);
    return q;
  }
  VTASERVE_ASSIGN_OR_RETURN(
      const ConstTensor* zp,
      ConstInput(zp_input, absl::StrCat(role, " zero point")));
  if (zp->dtype != data.dtype) {
    return NodeError(absl::StrCat(
        role, " is ", OnnxTypeName(data.dtype), " but its zero point is ",
        OnnxTypeName(zp->dtype), " (dtype mismatch)"));
  }
  if (zp->size() != ns) {
    return NodeError(absl::StrCat(role, " zero point has ", zp->size(),
                                  " entries, the scale ", ns));
  }
  q.zero_point = zp->i;
  return q;
}

absl::StatusOr<ValueId> Importer::MaterializeFloat(const Sym& s) {
  if (s.kind == SymKind::kFloat) return s.value;
  if (s.kind != SymKind::kDequant) {
    return NodeError(
        absl::StrCat("expected a float tensor, got ", SymKindName(s.kind)));
  }
  auto it = dequantized_.find(s.value);
  if (it != dequantized_.end()) return it->second;
  const Value& q = g_.values[s.value];
  const ValueId f = NewValue(absl::StrCat(q.name, "_dequantized"),
                             DataType::kFloat32, q.shape);
  QuantizeParams p;
  p.scale = q.scale;
  p.zero_point = q.zero_point;
  AddNode(absl::StrCat(q.name, "_dequantize"), OpKind::kDequantize, {s.value},
          {f}, p);
  dequantized_.emplace(s.value, f);
  return f;
}

}  // namespace vtaserve::engine::onnx_internal
