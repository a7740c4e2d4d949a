// ONNX importer: Conv, MatMul, Gemm, Add and GlobalAveragePool, each in its
// QOperator and QDQ spelling.
#include "engine/onnx/importer_internal.h"

namespace vtaserve::engine::onnx_internal {

namespace {

// Reads (scale, zero point) inputs for a quantized activation input and binds
// them to its value. Returns the value.
absl::Status RequireQuant(
    const Sym& s, absl::string_view role, const std::string& name,
    const std::function<absl::Status(absl::string_view)>& err) {
  if (s.kind != SymKind::kQuant) {
    return err(absl::StrCat(role, " '", name,
                            "' must be a quantized tensor, got ",
                            SymKindName(s.kind)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Importer::HandleConv(bool qlinear) {
  int64_t group = 1;
  if (const onnx::AttributeProto* a = FindAttr(*node_, "group")) group = a->i();
  if (group < 1 || group > kMaxDim) {
    return NodeError(absl::StrCat("bad group ", group));
  }
  const int x_in = 0;
  const int w_in = qlinear ? 3 : 1;
  const int b_in = qlinear ? 8 : 2;
  VTASERVE_ASSIGN_OR_RETURN(const Sym* xp, Input(x_in));
  const Sym x = *xp;
  auto err = [this](absl::string_view m) { return NodeError(m); };
  QuantConst w;
  const ConstTensor* bias_int = nullptr;
  const ConstTensor* bias_float = nullptr;
  std::optional<QuantConst> bias_dq;
  if (qlinear) {
    VTASERVE_RETURN_IF_ERROR(RequireQuant(x, "input", node_->input(0), err));
    VTASERVE_ASSIGN_OR_RETURN(const double sx, ScalarScale(1, "x_scale"));
    const int32_t dt = meta_[x.value].is_uint8 ? TP::UINT8 : TP::INT8;
    VTASERVE_ASSIGN_OR_RETURN(auto zx, ScalarZeroPoint(2, dt, "x_zero_point"));
    const bool u8 = zx.second == TP::UINT8;
    VTASERVE_RETURN_IF_ERROR(
        BindQuant(x.value, sx, ToInt8Domain(zx.first, u8), u8, "input"));
    VTASERVE_ASSIGN_OR_RETURN(const Sym* ws, Input(w_in));
    if (ws->kind != SymKind::kConst) {
      return NodeError("weights must be a constant");
    }
    VTASERVE_ASSIGN_OR_RETURN(w, ReadQuantConst(ws->index, 4, 5, 0, "weights"));
    VTASERVE_ASSIGN_OR_RETURN(const Sym* bs, Input(b_in, false));
    if (bs != nullptr) {
      VTASERVE_ASSIGN_OR_RETURN(bias_int, ConstInput(b_in, "bias"));
    }
  } else {
    if (x.kind != SymKind::kDequant) {
      return NodeError(absl::StrCat(
          "unsupported pattern: float Conv input '", node_->input(0), "' is ",
          SymKindName(x.kind), ", not a DequantizeLinear output"));
    }
    VTASERVE_ASSIGN_OR_RETURN(const Sym* ws, Input(w_in));
    if (ws->kind != SymKind::kDequantConst) {
      return NodeError(absl::StrCat("unsupported pattern: float Conv weights '",
                                    node_->input(w_in), "' are ",
                                    SymKindName(ws->kind),
                                    ", not DequantizeLinear of a constant"));
    }
    w = qconsts_[ws->index];
    VTASERVE_ASSIGN_OR_RETURN(const Sym* bs, Input(b_in, false));
    if (bs != nullptr) {
      if (bs->kind == SymKind::kDequantConst) {
        bias_dq = qconsts_[bs->index];
      } else if (bs->kind == SymKind::kConst) {
        bias_float = &consts_[bs->index];
      } else {
        return NodeError("bias must be a constant or a dequantized constant");
      }
    }
  }
  const Value& xv = g_.values[x.value];
  if (xv.shape.size() != 4 || xv.shape[0] != 1) {
    return NodeError(absl::StrCat("input must be NCHW with N = 1, got ",
                                  ShapeToString(xv.shape)));
  }
  const ConstTensor& wd = consts_[w.const_index];
  if (wd.dims.size() != 4 || wd.dims[2] < 1 || wd.dims[3] < 1 ||
      wd.dims[2] > kMaxWindow || wd.dims[3] > kMaxWindow) {
    return NodeError(absl::StrCat("weights must be [M, C/group, kH, kW], got ",
                                  ShapeToString(wd.dims)));
  }
  if (const onnx::AttributeProto* a = FindAttr(*node_, "kernel_shape")) {
    if (a->ints_size() != 2 || a->ints(0) != wd.dims[2] ||
        a->ints(1) != wd.dims[3]) {
      return NodeError("kernel_shape does not match the weights");
    }
  }
  VTASERVE_ASSIGN_OR_RETURN(
      const Window win,
      ParseWindow(xv.shape, static_cast<int>(wd.dims[2]),
                  static_cast<int>(wd.dims[3]), /*pool=*/false));
  ConvSpec spec;
  VTASERVE_RETURN_IF_ERROR(
      BuildConvSpec(x, w, static_cast<int>(group), win, bias_int,
                    bias_dq ? &*bias_dq : nullptr, bias_float, spec));
  return DefineConvResult(std::move(spec), /*y_scale_input=*/qlinear ? 6 : -1);
}

absl::Status Importer::HandleMatMul(bool qlinear) {
  VTASERVE_ASSIGN_OR_RETURN(const Sym* xp, Input(0));
  const Sym x = *xp;
  auto err = [this](absl::string_view m) { return NodeError(m); };
  QuantConst w;
  if (qlinear) {
    VTASERVE_RETURN_IF_ERROR(RequireQuant(x, "input", node_->input(0), err));
    VTASERVE_ASSIGN_OR_RETURN(const double sx, ScalarScale(1, "a_scale"));
    const int32_t dt = meta_[x.value].is_uint8 ? TP::UINT8 : TP::INT8;
    VTASERVE_ASSIGN_OR_RETURN(auto zx, ScalarZeroPoint(2, dt, "a_zero_point"));
    const bool u8 = zx.second == TP::UINT8;
    VTASERVE_RETURN_IF_ERROR(
        BindQuant(x.value, sx, ToInt8Domain(zx.first, u8), u8, "input"));
    VTASERVE_ASSIGN_OR_RETURN(const Sym* ws, Input(3));
    if (ws->kind != SymKind::kConst)
      return NodeError("weights must be a constant");
    VTASERVE_ASSIGN_OR_RETURN(w, ReadQuantConst(ws->index, 4, 5, 1, "weights"));
  } else {
    if (x.kind != SymKind::kDequant) {
      return NodeError(absl::StrCat(
          "unsupported pattern: float MatMul input '", node_->input(0), "' is ",
          SymKindName(x.kind), ", not a DequantizeLinear output"));
    }
    VTASERVE_ASSIGN_OR_RETURN(const Sym* ws, Input(1));
    if (ws->kind != SymKind::kDequantConst) {
      return NodeError(
          "unsupported pattern: float MatMul weights must be "
          "DequantizeLinear of a constant");
    }
    w = qconsts_[ws->index];
  }
  ConvSpec spec;
  VTASERVE_RETURN_IF_ERROR(BuildDenseSpec(x, w, /*w_is_nk=*/false, 1.0, nullptr,
                                          nullptr, nullptr, 1.0, spec));
  return DefineConvResult(std::move(spec), /*y_scale_input=*/qlinear ? 6 : -1);
}

absl::Status Importer::HandleGemm(bool qgemm) {
  double alpha = 1.0, beta = 1.0;
  int64_t trans_a = 0, trans_b = 0;
  if (const onnx::AttributeProto* a = FindAttr(*node_, "alpha")) alpha = a->f();
  if (const onnx::AttributeProto* a = FindAttr(*node_, "beta")) beta = a->f();
  if (const onnx::AttributeProto* a = FindAttr(*node_, "transA"))
    trans_a = a->i();
  if (const onnx::AttributeProto* a = FindAttr(*node_, "transB"))
    trans_b = a->i();
  if (trans_a != 0) return NodeError("transA = 1 is unsupported");
  if (qgemm && beta != 1.0) return NodeError("QGemm has no beta");
  if (!std::isfinite(beta)) return NodeError("beta must be finite");
  VTASERVE_ASSIGN_OR_RETURN(const Sym* xp, Input(0));
  const Sym x = *xp;
  auto err = [this](absl::string_view m) { return NodeError(m); };
  QuantConst w;
  const ConstTensor* bias_int = nullptr;
  const ConstTensor* bias_float = nullptr;
  std::optional<QuantConst> bias_dq;
  const int w_axis = trans_b != 0 ? 0 : 1;
  if (qgemm) {
    VTASERVE_RETURN_IF_ERROR(RequireQuant(x, "input", node_->input(0), err));
    VTASERVE_ASSIGN_OR_RETURN(const double sx, ScalarScale(1, "a_scale"));
    const int32_t dt = meta_[x.value].is_uint8 ? TP::UINT8 : TP::INT8;
    VTASERVE_ASSIGN_OR_RETURN(auto zx, ScalarZeroPoint(2, dt, "a_zero_point"));
    const bool u8 = zx.second == TP::UINT8;
    VTASERVE_RETURN_IF_ERROR(
        BindQuant(x.value, sx, ToInt8Domain(zx.first, u8), u8, "input"));
    VTASERVE_ASSIGN_OR_RETURN(const Sym* ws, Input(3));
    if (ws->kind != SymKind::kConst)
      return NodeError("weights must be a constant");
    VTASERVE_ASSIGN_OR_RETURN(
        w, ReadQuantConst(ws->index, 4, 5, w_axis, "weights"));
    VTASERVE_ASSIGN_OR_RETURN(const Sym* bs, Input(6, false));
    if (bs != nullptr) {
      VTASERVE_ASSIGN_OR_RETURN(bias_int, ConstInput(6, "bias"));
    }
    VTASERVE_ASSIGN_OR_RETURN(const Sym* ys, Input(7, false));
    if (ys == nullptr) {
      return NodeError("QGemm with a float output (no y_scale) is unsupported");
    }
  } else {
    if (x.kind != SymKind::kDequant) {
      return NodeError(absl::StrCat(
          "unsupported pattern: float Gemm input '", node_->input(0), "' is ",
          SymKindName(x.kind), ", not a DequantizeLinear output"));
    }
    VTASERVE_ASSIGN_OR_RETURN(const Sym* ws, Input(1));
    if (ws->kind != SymKind::kDequantConst) {
      return NodeError(
          "unsupported pattern: float Gemm weights must be "
          "DequantizeLinear of a constant");
    }
    w = qconsts_[ws->index];
    VTASERVE_ASSIGN_OR_RETURN(const Sym* bs, Input(2, false));
    if (bs != nullptr) {
      if (bs->kind == SymKind::kDequantConst) {
        bias_dq = qconsts_[bs->index];
      } else if (bs->kind == SymKind::kConst) {
        bias_float = &consts_[bs->index];
      } else {
        return NodeError("bias must be a constant or a dequantized constant");
      }
    }
  }
  ConvSpec spec;
  // QGemm's int32 bias is in a_scale * b_scale units, unscaled by alpha.
  VTASERVE_RETURN_IF_ERROR(BuildDenseSpec(
      x, w, trans_b != 0, alpha, bias_int, bias_dq ? &*bias_dq : nullptr,
      bias_float, qgemm ? 1.0 / alpha : beta, spec));
  return DefineConvResult(std::move(spec), /*y_scale_input=*/qgemm ? 7 : -1);
}

absl::Status Importer::HandleAdd(bool qlinear) {
  if (qlinear) {
    VTASERVE_ASSIGN_OR_RETURN(const Sym* ap, Input(0));
    const Sym a = *ap;
    VTASERVE_ASSIGN_OR_RETURN(const Sym* bp, Input(3));
    const Sym b = *bp;
    auto err = [this](absl::string_view m) { return NodeError(m); };
    VTASERVE_RETURN_IF_ERROR(RequireQuant(a, "input A", node_->input(0), err));
    VTASERVE_RETURN_IF_ERROR(RequireQuant(b, "input B", node_->input(3), err));
    VTASERVE_ASSIGN_OR_RETURN(const double sa, ScalarScale(1, "A_scale"));
    VTASERVE_ASSIGN_OR_RETURN(
        auto za,
        ScalarZeroPoint(2, meta_[a.value].is_uint8 ? TP::UINT8 : TP::INT8,
                        "A_zero_point"));
    VTASERVE_ASSIGN_OR_RETURN(const double sb, ScalarScale(4, "B_scale"));
    VTASERVE_ASSIGN_OR_RETURN(
        auto zb,
        ScalarZeroPoint(5, meta_[b.value].is_uint8 ? TP::UINT8 : TP::INT8,
                        "B_zero_point"));
    VTASERVE_ASSIGN_OR_RETURN(const double sy, ScalarScale(6, "C_scale"));
    VTASERVE_ASSIGN_OR_RETURN(auto zy,
                              ScalarZeroPoint(7, TP::UINT8, "C_zero_point"));
    const bool ua = za.second == TP::UINT8, ub = zb.second == TP::UINT8,
               uy = zy.second == TP::UINT8;
    VTASERVE_RETURN_IF_ERROR(
        BindQuant(a.value, sa, ToInt8Domain(za.first, ua), ua, "input A"));
    VTASERVE_RETURN_IF_ERROR(
        BindQuant(b.value, sb, ToInt8Domain(zb.first, ub), ub, "input B"));
    if (g_.values[a.value].shape != g_.values[b.value].shape) {
      return NodeError(absl::StrCat(
          "operand shapes ", ShapeToString(g_.values[a.value].shape), " and ",
          ShapeToString(g_.values[b.value].shape),
          " differ (broadcasting is unsupported)"));
    }
    AddSpec spec{label_, a.value, b.value, g_.values[a.value].shape};
    VTASERVE_ASSIGN_OR_RETURN(const ValueId y,
                              EmitAdd(spec, sy, ToInt8Domain(zy.first, uy), uy,
                                      false, node_->output(0)));
    return DefineQuant(y, spec.shape);
  }
  VTASERVE_ASSIGN_OR_RETURN(const Sym* ap, Input(0));
  const Sym a = *ap;
  VTASERVE_ASSIGN_OR_RETURN(const Sym* bp, Input(1));
  const Sym b = *bp;
  if (a.kind != SymKind::kDequant || b.kind != SymKind::kDequant) {
    return NodeError(
        absl::StrCat("unsupported pattern: float Add of ", SymKindName(a.kind),
                     " and ", SymKindName(b.kind),
                     " (both inputs must be DequantizeLinear outputs)"));
  }
  if (g_.values[a.value].shape != g_.values[b.value].shape) {
    return NodeError(
        absl::StrCat("operand shapes ", ShapeToString(g_.values[a.value].shape),
                     " and ", ShapeToString(g_.values[b.value].shape),
                     " differ (broadcasting is unsupported)"));
  }
  PendingOp p;
  p.kind = PendingOp::Kind::kAdd;
  p.label = label_;
  p.add = AddSpec{label_, a.value, b.value, g_.values[a.value].shape};
  std::vector<int64_t> shape = p.add.shape;
  return DefinePending(std::move(p), std::move(shape));
}

absl::Status Importer::HandleGlobalAveragePool(bool qlinear) {
  VTASERVE_ASSIGN_OR_RETURN(const Sym* xp, Input(0));
  const Sym x = *xp;
  auto err = [this](absl::string_view m) { return NodeError(m); };
  if (qlinear) {
    VTASERVE_RETURN_IF_ERROR(RequireQuant(x, "input", node_->input(0), err));
    if (const onnx::AttributeProto* a = FindAttr(*node_, "channels_last")) {
      if (a->i() != 0) return NodeError("channels_last = 1 is unsupported");
    }
  } else if (x.kind != SymKind::kDequant) {
    return NodeError(
        absl::StrCat("unsupported pattern: float GlobalAveragePool of ",
                     SymKindName(x.kind)));
  }
  const Value& v = g_.values[x.value];
  if (v.shape.size() != 4) {
    return NodeError(
        absl::StrCat("input must be NCHW, got ", ShapeToString(v.shape)));
  }
  GapSpec spec{
      label_, x.value, {v.shape[0], v.shape[1], 1, 1}, v.shape[2] * v.shape[3]};
  if (qlinear) {
    VTASERVE_ASSIGN_OR_RETURN(const double sx, ScalarScale(1, "x_scale"));
    VTASERVE_ASSIGN_OR_RETURN(
        auto zx,
        ScalarZeroPoint(2, meta_[x.value].is_uint8 ? TP::UINT8 : TP::INT8,
                        "x_zero_point"));
    const bool ux = zx.second == TP::UINT8;
    VTASERVE_RETURN_IF_ERROR(
        BindQuant(x.value, sx, ToInt8Domain(zx.first, ux), ux, "input"));
    VTASERVE_ASSIGN_OR_RETURN(const double sy, ScalarScale(3, "y_scale"));
    VTASERVE_ASSIGN_OR_RETURN(auto zy,
                              ScalarZeroPoint(4, TP::UINT8, "y_zero_point"));
    const bool uy = zy.second == TP::UINT8;
    VTASERVE_ASSIGN_OR_RETURN(const ValueId y,
                              EmitGap(spec, sy, ToInt8Domain(zy.first, uy), uy,
                                      false, node_->output(0)));
    return DefineQuant(y, spec.out_shape);
  }
  PendingOp p;
  p.kind = PendingOp::Kind::kGap;
  p.label = label_;
  p.gap = std::move(spec);
  std::vector<int64_t> shape = p.gap.out_shape;
  return DefinePending(std::move(p), std::move(shape));
}

}  // namespace vtaserve::engine::onnx_internal
