// ONNX importer: Relu, MaxPool, Reshape / Flatten, Softmax, Identity and the
// per-node dispatch.
#include "engine/onnx/importer_internal.h"

namespace vtaserve::engine::onnx_internal {

absl::Status Importer::HandleRelu() {
  VTASERVE_ASSIGN_OR_RETURN(const Sym* xp, Input(0));
  const Sym x = *xp;
  if (x.kind == SymKind::kPending) {
    PendingOp p = pending_[x.index];
    p.relu = true;
    return DefinePending(std::move(p), x.shape);
  }
  if (x.kind != SymKind::kQuant && x.kind != SymKind::kDequant) {
    return NodeError(
        absl::StrCat("unsupported pattern: Relu of ", SymKindName(x.kind)));
  }
  const Value& v = g_.values[x.value];
  const ValueId y = NewQuantValue(node_->output(0), v.shape, v.scale,
                                  v.zero_point, meta_[x.value].is_uint8);
  ReluParams p;
  p.zero_point = g_.values[x.value].zero_point;
  AddNode(label_, OpKind::kRelu, {x.value}, {y}, p);
  Sym out = x;
  out.value = y;
  return Define(0, std::move(out));
}

absl::Status Importer::HandleMaxPool() {
  if (node_->output_size() > 1 && !node_->output(1).empty()) {
    return NodeError("MaxPool indices output is unsupported");
  }
  VTASERVE_ASSIGN_OR_RETURN(const Sym* xp, Input(0));
  const Sym x = *xp;
  if (x.kind != SymKind::kQuant && x.kind != SymKind::kDequant) {
    return NodeError(
        absl::StrCat("unsupported pattern: MaxPool of ", SymKindName(x.kind),
                     " (float MaxPool must read a DequantizeLinear output)"));
  }
  const Value& v = g_.values[x.value];
  if (v.shape.size() != 4) {
    return NodeError(
        absl::StrCat("input must be NCHW, got ", ShapeToString(v.shape)));
  }
  const onnx::AttributeProto* ks = FindAttr(*node_, "kernel_shape");
  if (ks == nullptr || ks->ints_size() != 2 || ks->ints(0) < 1 ||
      ks->ints(1) < 1 || ks->ints(0) > kMaxWindow || ks->ints(1) > kMaxWindow) {
    return NodeError("kernel_shape must hold 2 positive values");
  }
  VTASERVE_ASSIGN_OR_RETURN(
      const Window w,
      ParseWindow(v.shape, static_cast<int>(ks->ints(0)),
                  static_cast<int>(ks->ints(1)), /*pool=*/true));
  PoolParams p;
  p.kernel_h = w.kh;
  p.kernel_w = w.kw;
  p.stride_h = w.sh;
  p.stride_w = w.sw;
  p.pad_top = w.pt;
  p.pad_left = w.pl;
  p.pad_bottom = w.pb;
  p.pad_right = w.pr;
  const std::vector<int64_t> shape = {v.shape[0], v.shape[1], w.oh, w.ow};
  if (absl::StatusOr<int64_t> n = CheckedElements(shape, "output"); !n.ok()) {
    return NodeError(n.status().message());
  }
  const ValueId y = NewQuantValue(node_->output(0), shape, v.scale,
                                  v.zero_point, meta_[x.value].is_uint8);
  AddNode(label_, OpKind::kMaxPool, {x.value}, {y}, p);
  Sym out = x;
  out.value = y;
  out.shape = shape;
  return Define(0, std::move(out));
}

absl::Status Importer::HandleReshape(bool flatten) {
  VTASERVE_ASSIGN_OR_RETURN(const Sym* xp, Input(0));
  const Sym x = *xp;
  if (x.kind != SymKind::kQuant && x.kind != SymKind::kDequant &&
      x.kind != SymKind::kFloat) {
    return NodeError(absl::StrCat("unsupported pattern: ", op_type_, " of ",
                                  SymKindName(x.kind)));
  }
  const Value& v = g_.values[x.value];
  const int64_t total = NumElements(v.shape);
  std::vector<int64_t> shape;
  if (flatten) {
    int64_t axis = 1;
    if (const onnx::AttributeProto* a = FindAttr(*node_, "axis")) axis = a->i();
    const int64_t rank = static_cast<int64_t>(v.shape.size());
    if (axis < 0) axis += rank;
    if (axis < 0 || axis > rank)
      return NodeError(absl::StrCat("bad axis ", axis));
    int64_t outer = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= v.shape[d];
    shape = {outer, outer == 0 ? 0 : total / outer};
  } else {
    VTASERVE_ASSIGN_OR_RETURN(const ConstTensor* s, ConstInput(1, "shape"));
    if (s->dtype != TP::INT64 || s->dims.size() != 1 || s->size() > kMaxRank) {
      return NodeError("shape must be a 1-D int64 constant of rank <= 8");
    }
    int64_t allowzero = 0;
    if (const onnx::AttributeProto* a = FindAttr(*node_, "allowzero"))
      allowzero = a->i();
    int infer = -1;
    int64_t known = 1;
    for (int64_t k = 0; k < s->size(); ++k) {
      int64_t d = s->i[k];
      if (d == 0 && allowzero == 0) {
        if (k >= static_cast<int64_t>(v.shape.size())) {
          return NodeError("shape copies a dimension the input lacks");
        }
        d = v.shape[k];
      }
      if (d == -1) {
        if (infer >= 0) return NodeError("shape has more than one -1");
        infer = static_cast<int>(k);
      } else if (d < 0 || d > kMaxDim) {
        return NodeError(absl::StrCat("bad target dimension ", d));
      } else {
        known *= d;
        if (known > kMaxElements) return NodeError("target shape too large");
      }
      shape.push_back(d);
    }
    if (infer >= 0) {
      if (known == 0 || total % known != 0) {
        return NodeError("cannot infer the -1 dimension");
      }
      shape[infer] = total / known;
    }
  }
  if (NumElements(shape) != total) {
    return NodeError(absl::StrCat("cannot reshape ", ShapeToString(v.shape),
                                  " to ", ShapeToString(shape)));
  }
  ValueId y;
  if (x.kind == SymKind::kFloat) {
    y = NewValue(node_->output(0), DataType::kFloat32, shape);
  } else {
    y = NewQuantValue(node_->output(0), shape, v.scale, v.zero_point,
                      meta_[x.value].is_uint8);
  }
  AddNode(label_, OpKind::kReshape, {x.value}, {y}, NoParams{});
  Sym out = x;
  out.value = y;
  out.shape = shape;
  return Define(0, std::move(out));
}

absl::Status Importer::HandleSoftmax() {
  VTASERVE_ASSIGN_OR_RETURN(const Sym* xp, Input(0));
  const Sym x = *xp;
  if (x.kind != SymKind::kFloat && x.kind != SymKind::kDequant) {
    return NodeError(
        absl::StrCat("unsupported pattern: Softmax of ", SymKindName(x.kind)));
  }
  VTASERVE_ASSIGN_OR_RETURN(const ValueId f, MaterializeFloat(x));
  const std::vector<int64_t> shape = g_.values[f].shape;
  const int64_t rank = static_cast<int64_t>(shape.size());
  int64_t axis = opset_ >= 13 ? -1 : 1;
  if (const onnx::AttributeProto* a = FindAttr(*node_, "axis")) axis = a->i();
  if (axis < 0) axis += rank;
  bool last = axis == rank - 1;
  if (!last && opset_ < 13 && axis >= 0 && axis < rank) {
    // Old semantics: flatten from `axis`; fine when the rest are all 1.
    last = true;
    for (int64_t d = axis + 1; d < rank; ++d) last = last && shape[d] == 1;
  }
  if (rank == 0 || !last) {
    return NodeError("Softmax is supported along the last axis only");
  }
  const ValueId y = NewValue(node_->output(0), DataType::kFloat32, shape);
  AddNode(label_, OpKind::kSoftmax, {f}, {y}, NoParams{});
  Sym out;
  out.kind = SymKind::kFloat;
  out.value = y;
  out.shape = shape;
  return Define(0, std::move(out));
}

absl::Status Importer::HandleIdentity() {
  VTASERVE_ASSIGN_OR_RETURN(const Sym* xp, Input(0));
  return Define(0, *xp);
}

absl::Status Importer::HandleNode() {
  std::string domain = node_->domain();
  if (domain == "ai.onnx") domain.clear();
  const std::string& op = node_->op_type();
  if (domain.empty()) {
    if (op == "Constant") return HandleConstant();
    if (op == "QuantizeLinear") return HandleQuantizeLinear();
    if (op == "DequantizeLinear") return HandleDequantizeLinear();
    if (op == "Conv") return HandleConv(false);
    if (op == "QLinearConv") return HandleConv(true);
    if (op == "MatMul") return HandleMatMul(false);
    if (op == "QLinearMatMul") return HandleMatMul(true);
    if (op == "Gemm") return HandleGemm(false);
    if (op == "Add") return HandleAdd(false);
    if (op == "Relu") return HandleRelu();
    if (op == "MaxPool") return HandleMaxPool();
    if (op == "GlobalAveragePool") return HandleGlobalAveragePool(false);
    if (op == "Flatten") return HandleReshape(true);
    if (op == "Reshape") return HandleReshape(false);
    if (op == "Softmax") return HandleSoftmax();
    if (op == "Identity") return HandleIdentity();
  } else if (domain == "com.microsoft") {
    if (op == "QGemm") return HandleGemm(true);
    if (op == "QLinearAdd") return HandleAdd(true);
    if (op == "QLinearGlobalAveragePool") return HandleGlobalAveragePool(true);
  }
  return NodeError(absl::StrCat(
      "unsupported op ", domain.empty() ? "" : absl::StrCat(domain, "."), op));
}

}  // namespace vtaserve::engine::onnx_internal
