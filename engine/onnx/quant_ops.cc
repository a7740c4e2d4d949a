// ONNX importer: emission of requantized ops and the quantization ops
// (Constant, QuantizeLinear, DequantizeLinear).
#include "engine/onnx/importer_internal.h"

namespace vtaserve::engine::onnx_internal {

// ---------------------------------------------------------------------------
// Emission of requantized ops.

absl::StatusOr<ValueId> Importer::EmitConv(const ConvSpec& spec, double sy,
                                           int32_t zy8, bool y_uint8, bool relu,
                                           const std::string& out_name) {
  FloatConvQuant q;
  q.out_channels = spec.geom.out_channels;
  q.taps_per_channel =
      spec.geom.in_channels * spec.geom.kernel_h * spec.geom.kernel_w;
  q.centered_weights = spec.centered;
  q.multiplier.resize(q.out_channels);
  for (int c = 0; c < q.out_channels; ++c) {
    q.multiplier[c] = spec.sx * spec.w_scale[c] / sy;
  }
  if (!spec.bias_acc.empty()) {
    q.bias_lsb.resize(q.out_channels);
    for (int c = 0; c < q.out_channels; ++c) {
      q.bias_lsb[c] = spec.bias_acc[c] * q.multiplier[c];
    }
  }
  q.input_zero_point = spec.zx;
  q.output_zero_point = zy8;
  q.clamp_min = relu ? std::max(-128, zy8) : -128;
  q.clamp_max = 127;
  ConvParams p = spec.geom;
  if (absl::Status s = FoldConvRequant(q, options_.requant, p); !s.ok()) {
    return NodeError(absl::StrCat("requantization: ", s.message()));
  }
  const ValueId y = NewQuantValue(out_name, spec.out_shape,
                                  static_cast<float>(sy), zy8, y_uint8);
  AddNode(spec.name, spec.dense ? OpKind::kDense : OpKind::kConv, {spec.x}, {y},
          std::move(p));
  return y;
}

absl::StatusOr<ValueId> Importer::EmitAdd(const AddSpec& a, double sy,
                                          int32_t zy8, bool y_uint8, bool relu,
                                          const std::string& out_name) {
  const Value& va = g_.values[a.a];
  const Value& vb = g_.values[a.b];
  absl::StatusOr<AddParams> p = ComputeAddParams(
      va.scale, va.zero_point, vb.scale, vb.zero_point, sy, zy8, relu);
  if (!p.ok())
    return NodeError(absl::StrCat("requantization: ", p.status().message()));
  const ValueId y =
      NewQuantValue(out_name, a.shape, static_cast<float>(sy), zy8, y_uint8);
  AddNode(a.name, OpKind::kAdd, {a.a, a.b}, {y}, *p);
  return y;
}

absl::StatusOr<ValueId> Importer::EmitGap(const GapSpec& a, double sy,
                                          int32_t zy8, bool y_uint8, bool relu,
                                          const std::string& out_name) {
  const Value& vx = g_.values[a.x];
  absl::StatusOr<GapParams> p =
      ComputeGapParams(vx.scale, vx.zero_point, sy, zy8, a.pixels);
  if (!p.ok())
    return NodeError(absl::StrCat("requantization: ", p.status().message()));
  // GlobalAvgPool has no clamp: a folded Relu becomes a kRelu after it.
  const bool add_relu = relu && zy8 > -128;
  const ValueId y =
      NewQuantValue(add_relu ? absl::StrCat(out_name, "_prerelu") : out_name,
                    a.out_shape, static_cast<float>(sy), zy8, y_uint8);
  AddNode(a.name, OpKind::kGlobalAvgPool, {a.x}, {y}, *p);
  if (!add_relu) return y;
  const ValueId r = NewQuantValue(out_name, a.out_shape, static_cast<float>(sy),
                                  zy8, y_uint8);
  ReluParams rp;
  rp.zero_point = zy8;
  AddNode(absl::StrCat(a.name, "_relu"), OpKind::kRelu, {y}, {r}, rp);
  return r;
}

// Q(DQ(x)) with different parameters: an Add whose second operand has a
// zero multiplier is exactly a requantization with a 14-bit multiplier:
//   y = clamp(((x * m + bias) >> shift) + zy), bias = -zx * m + 2^(shift-1).
absl::StatusOr<ValueId> Importer::EmitRequant(ValueId x, double sy, int32_t zy8,
                                              bool y_uint8,
                                              const std::string& out_name) {
  const Value& v = g_.values[x];
  absl::StatusOr<AddParams> p = ComputeAddParams(
      v.scale, v.zero_point, v.scale, v.zero_point, sy, zy8, /*relu=*/false);
  if (!p.ok())
    return NodeError(absl::StrCat("requantization: ", p.status().message()));
  p->bias += v.zero_point * p->multiplier_b;
  p->multiplier_b = 0;
  const ValueId y =
      NewQuantValue(out_name, v.shape, static_cast<float>(sy), zy8, y_uint8);
  AddNode(label_, OpKind::kAdd, {x, x}, {y}, *p);
  return y;
}

absl::StatusOr<ValueId> Importer::EmitPending(const PendingOp& p, double sy,
                                              int32_t zy8, bool y_uint8,
                                              const std::string& out_name) {
  switch (p.kind) {
    case PendingOp::Kind::kConv:
      return EmitConv(p.conv, sy, zy8, y_uint8, p.relu, out_name);
    case PendingOp::Kind::kAdd:
      return EmitAdd(p.add, sy, zy8, y_uint8, p.relu, out_name);
    case PendingOp::Kind::kGap:
      return EmitGap(p.gap, sy, zy8, y_uint8, p.relu, out_name);
  }
  return absl::InternalError("unknown pending op");
}

absl::Status Importer::HandleConstant() {
  const onnx::AttributeProto* a = FindAttr(*node_, "value");
  ConstTensor c;
  if (a != nullptr && a->has_t()) {
    absl::StatusOr<ConstTensor> d = DecodeTensor(a->t(), "Constant value");
    if (!d.ok()) return Annotate(d.status());
    c = std::move(d).value();
  } else if ((a = FindAttr(*node_, "value_float")) != nullptr) {
    c.dtype = TP::FLOAT;
    c.f = {a->f()};
  } else if ((a = FindAttr(*node_, "value_floats")) != nullptr) {
    c.dtype = TP::FLOAT;
    c.f.assign(a->floats().begin(), a->floats().end());
    c.dims = {static_cast<int64_t>(c.f.size())};
  } else if ((a = FindAttr(*node_, "value_int")) != nullptr) {
    c.dtype = TP::INT64;
    c.i = {a->i()};
  } else if ((a = FindAttr(*node_, "value_ints")) != nullptr) {
    c.dtype = TP::INT64;
    c.i.assign(a->ints().begin(), a->ints().end());
    c.dims = {static_cast<int64_t>(c.i.size())};
  } else {
    return NodeError("unsupported Constant form");
  }
  Sym s;
  s.kind = SymKind::kConst;
  s.shape = c.dims;
  s.index = static_cast<int>(consts_.size());
  consts_.push_back(std::move(c));
  return Define(0, std::move(s));
}

absl::Status Importer::HandleQuantizeLinear() {
  VTASERVE_ASSIGN_OR_RETURN(const Sym* x, Input(0));
  const Sym xs = *x;
  int64_t axis = 1;
  if (const onnx::AttributeProto* a = FindAttr(*node_, "axis")) axis = a->i();
  if (xs.kind == SymKind::kConst) {
    // Constant folding (weights quantized in the graph).
    const ConstTensor& src = consts_[xs.index];
    if (src.dtype != TP::FLOAT) {
      return NodeError(
          absl::StrCat("input must be float32, got ", OnnxTypeName(src.dtype)));
    }
    ConstTensor out;
    out.dims = src.dims;
    // Read per-axis params against a same-shaped placeholder of the output
    // type.
    VTASERVE_ASSIGN_OR_RETURN(const Sym* zsym, Input(2, false));
    int32_t out_type = TP::UINT8;
    if (zsym != nullptr) {
      VTASERVE_ASSIGN_OR_RETURN(const ConstTensor* z,
                                ConstInput(2, "zero point"));
      out_type = z->dtype;
    }
    if (out_type != TP::UINT8 && out_type != TP::INT8) {
      return NodeError(absl::StrCat("zero point must be uint8 or int8, got ",
                                    OnnxTypeName(out_type)));
    }
    out.dtype = out_type;
    const int idx = static_cast<int>(consts_.size());
    consts_.push_back(std::move(out));
    consts_[idx].i.assign(src.f.size(), 0);
    absl::StatusOr<QuantConst> q = ReadQuantConst(
        idx, 1, 2, static_cast<int>(axis), "QuantizeLinear input");
    if (!q.ok()) return q.status();
    const ConstTensor& in = consts_[xs.index];
    ConstTensor& o = consts_[idx];
    const int64_t lo = out_type == TP::UINT8 ? 0 : -128;
    const int64_t hi = out_type == TP::UINT8 ? 255 : 127;
    int64_t inner = 1, axis_len = 1;
    if (q->axis >= 0) {
      axis_len = o.dims[q->axis];
      for (size_t d = q->axis + 1; d < o.dims.size(); ++d) inner *= o.dims[d];
    }
    for (int64_t k = 0; k < static_cast<int64_t>(in.f.size()); ++k) {
      const int64_t ch = q->axis >= 0 ? (k / inner) % axis_len : 0;
      const float v =
          std::nearbyint(in.f[k] / static_cast<float>(q->scale[ch]));
      const double r =
          std::isnan(v) ? 0.0 : static_cast<double>(v) + q->zero_point[ch];
      o.i[k] = static_cast<int64_t>(std::clamp<double>(r, lo, hi));
    }
    Sym s;
    s.kind = SymKind::kConst;
    s.shape = o.dims;
    s.index = idx;
    return Define(0, std::move(s));
  }
  VTASERVE_ASSIGN_OR_RETURN(const double sy, ScalarScale(1, "y_scale"));
  VTASERVE_ASSIGN_OR_RETURN(auto zp,
                            ScalarZeroPoint(2, TP::UINT8, "y_zero_point"));
  const bool y_uint8 = zp.second == TP::UINT8;
  const int32_t zy8 = ToInt8Domain(zp.first, y_uint8);
  const std::string out_name = node_->output_size() > 0 ? node_->output(0) : "";
  Sym out;
  out.kind = SymKind::kQuant;
  switch (xs.kind) {
    case SymKind::kFloat: {
      const ValueId y = NewQuantValue(out_name, g_.values[xs.value].shape,
                                      static_cast<float>(sy), zy8, y_uint8);
      QuantizeParams p;
      p.scale = static_cast<float>(sy);
      p.zero_point = zy8;
      AddNode(label_, OpKind::kQuantize, {xs.value}, {y}, p);
      out.value = y;
      break;
    }
    case SymKind::kDequant: {
      const Value& v = g_.values[xs.value];
      if (meta_[xs.value].is_uint8 == y_uint8 &&
          v.scale == static_cast<float>(sy) && v.zero_point == zy8) {
        out.value = xs.value;  // Q(DQ(x)) with equal parameters: x itself
        break;
      }
      absl::StatusOr<ValueId> y =
          EmitRequant(xs.value, sy, zy8, y_uint8, out_name);
      if (!y.ok()) return y.status();
      out.value = *y;
      break;
    }
    case SymKind::kPending: {
      absl::StatusOr<ValueId> y =
          EmitPending(pending_[xs.index], sy, zy8, y_uint8, out_name);
      if (!y.ok()) return y.status();
      out.value = *y;
      break;
    }
    default:
      return NodeError(absl::StrCat("input '", node_->input(0),
                                    "' must be float, got ",
                                    SymKindName(xs.kind), " (dtype mismatch)"));
  }
  out.shape = g_.values[out.value].shape;
  return Define(0, std::move(out));
}

absl::Status Importer::HandleDequantizeLinear() {
  VTASERVE_ASSIGN_OR_RETURN(const Sym* x, Input(0));
  const Sym xs = *x;
  int64_t axis = 1;
  if (const onnx::AttributeProto* a = FindAttr(*node_, "axis")) axis = a->i();
  if (xs.kind == SymKind::kConst) {
    const ConstTensor& c = consts_[xs.index];
    if (c.dtype != TP::INT8 && c.dtype != TP::UINT8 && c.dtype != TP::INT32) {
      return NodeError(absl::StrCat("cannot dequantize a ",
                                    OnnxTypeName(c.dtype), " constant"));
    }
    if (axis < -kMaxRank || axis > kMaxRank) {
      return NodeError(absl::StrCat("bad quantization axis ", axis));
    }
    absl::StatusOr<QuantConst> q =
        ReadQuantConst(xs.index, 1, 2, static_cast<int>(axis),
                       absl::StrCat("'", node_->input(0), "'"));
    if (!q.ok()) return q.status();
    if (c.dtype == TP::INT32) {
      for (int64_t z : q->zero_point) {
        if (z != 0) return NodeError("int32 zero point must be 0");
      }
    }
    Sym s;
    s.kind = SymKind::kDequantConst;
    s.shape = c.dims;
    s.index = static_cast<int>(qconsts_.size());
    qconsts_.push_back(std::move(q).value());
    return Define(0, std::move(s));
  }
  if (xs.kind != SymKind::kQuant) {
    return NodeError(absl::StrCat("input '", node_->input(0),
                                  "' must be a quantized tensor, got ",
                                  SymKindName(xs.kind)));
  }
  VTASERVE_ASSIGN_OR_RETURN(const double s, ScalarScale(1, "x_scale"));
  const int32_t default_type = meta_[xs.value].is_uint8 ? TP::UINT8 : TP::INT8;
  VTASERVE_ASSIGN_OR_RETURN(auto zp,
                            ScalarZeroPoint(2, default_type, "x_zero_point"));
  const bool is_u8 = zp.second == TP::UINT8;
  VTASERVE_RETURN_IF_ERROR(
      BindQuant(xs.value, s, ToInt8Domain(zp.first, is_u8), is_u8, "input"));
  Sym out;
  out.kind = SymKind::kDequant;
  out.value = xs.value;
  out.shape = xs.shape;
  return Define(0, std::move(out));
}

absl::Status Importer::DefineConvResult(ConvSpec spec, int y_scale_input) {
  if (y_scale_input >= 0) {
    VTASERVE_ASSIGN_OR_RETURN(const double sy,
                              ScalarScale(y_scale_input, "y_scale"));
    VTASERVE_ASSIGN_OR_RETURN(
        auto zy, ScalarZeroPoint(y_scale_input + 1, TP::UINT8, "y_zero_point"));
    const bool u8 = zy.second == TP::UINT8;
    VTASERVE_ASSIGN_OR_RETURN(const ValueId y,
                              EmitConv(spec, sy, ToInt8Domain(zy.first, u8), u8,
                                       /*relu=*/false, node_->output(0)));
    return DefineQuant(y, spec.out_shape);
  }
  PendingOp p;
  p.kind = PendingOp::Kind::kConv;
  p.label = label_;
  p.conv = std::move(spec);
  std::vector<int64_t> shape = p.conv.out_shape;
  return DefinePending(std::move(p), std::move(shape));
}

}  // namespace vtaserve::engine::onnx_internal
