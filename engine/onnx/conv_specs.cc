// ONNX importer: window geometry and conv / dense specs.
#include "engine/onnx/importer_internal.h"

namespace vtaserve::engine::onnx_internal {

// ---------------------------------------------------------------------------
// Windows (conv and pool geometry).

absl::StatusOr<Window> Importer::ParseWindow(const std::vector<int64_t>& x,
                                             int kh, int kw, bool pool) {
  Window w;
  w.kh = kh;
  w.kw = kw;
  auto ints =
      [&](absl::string_view name) -> absl::StatusOr<std::vector<int64_t>> {
    const onnx::AttributeProto* a = FindAttr(*node_, name);
    if (a == nullptr) return std::vector<int64_t>{};
    if (!AttrTypeIs(*a, onnx::AttributeProto::INTS)) {
      return NodeError(absl::StrCat("attribute ", name, " must be ints"));
    }
    return std::vector<int64_t>(a->ints().begin(), a->ints().end());
  };
  auto in_range = [](int64_t v, int64_t lo, int64_t hi) {
    return v >= lo && v <= hi;
  };
  VTASERVE_ASSIGN_OR_RETURN(std::vector<int64_t> strides, ints("strides"));
  VTASERVE_ASSIGN_OR_RETURN(std::vector<int64_t> dil, ints("dilations"));
  VTASERVE_ASSIGN_OR_RETURN(std::vector<int64_t> pads, ints("pads"));
  if (!strides.empty()) {
    if (strides.size() != 2 || !in_range(strides[0], 1, kMaxWindow) ||
        !in_range(strides[1], 1, kMaxWindow)) {
      return NodeError(
          absl::StrCat("bad strides [", absl::StrJoin(strides, ","), "]"));
    }
    w.sh = static_cast<int>(strides[0]);
    w.sw = static_cast<int>(strides[1]);
  }
  if (!dil.empty()) {
    if (dil.size() != 2 || !in_range(dil[0], 1, kMaxWindow) ||
        !in_range(dil[1], 1, kMaxWindow)) {
      return NodeError(
          absl::StrCat("bad dilations [", absl::StrJoin(dil, ","), "]"));
    }
    w.dh = static_cast<int>(dil[0]);
    w.dw = static_cast<int>(dil[1]);
    if (pool && (w.dh != 1 || w.dw != 1)) {
      return NodeError("dilated MaxPool is unsupported");
    }
  }
  std::string auto_pad = "NOTSET";
  if (const onnx::AttributeProto* a = FindAttr(*node_, "auto_pad")) {
    if (!AttrTypeIs(*a, onnx::AttributeProto::STRING)) {
      return NodeError("attribute auto_pad must be a string");
    }
    auto_pad = a->s();
    if (auto_pad.empty()) auto_pad = "NOTSET";
  }
  const int64_t in_h = x[2], in_w = x[3];
  const int64_t eff_h = int64_t{w.dh} * (w.kh - 1) + 1;
  const int64_t eff_w = int64_t{w.dw} * (w.kw - 1) + 1;
  if (auto_pad == "NOTSET") {
    if (!pads.empty()) {
      if (pads.size() != 4) {
        return NodeError(
            absl::StrCat("pads must have 4 values, got ", pads.size()));
      }
      for (int64_t p : pads) {
        if (!in_range(p, 0, kMaxWindow)) {
          return NodeError(
              absl::StrCat("bad pads [", absl::StrJoin(pads, ","), "]"));
        }
      }
      w.pt = static_cast<int>(pads[0]);
      w.pl = static_cast<int>(pads[1]);
      w.pb = static_cast<int>(pads[2]);
      w.pr = static_cast<int>(pads[3]);
    }
  } else if (auto_pad == "VALID") {
    // no padding
  } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    const bool upper = auto_pad == "SAME_UPPER";
    auto same = [&](int64_t in, int s, int64_t eff, int& begin, int& end) {
      const int64_t out = (in + s - 1) / s;
      const int64_t total = std::max<int64_t>(0, (out - 1) * s + eff - in);
      const int64_t small = total / 2, large = total - total / 2;
      begin = static_cast<int>(upper ? small : large);
      end = static_cast<int>(upper ? large : small);
    };
    same(in_h, w.sh, eff_h, w.pt, w.pb);
    same(in_w, w.sw, eff_w, w.pl, w.pr);
  } else {
    return NodeError(absl::StrCat("unsupported auto_pad '", auto_pad, "'"));
  }
  const int64_t span_h = in_h + w.pt + w.pb - eff_h;
  const int64_t span_w = in_w + w.pl + w.pr - eff_w;
  if (span_h < 0 || span_w < 0) {
    return NodeError(absl::StrCat("kernel ", w.kh, "x", w.kw,
                                  " is larger than the padded input ",
                                  ShapeToString(x)));
  }
  w.oh = span_h / w.sh + 1;
  w.ow = span_w / w.sw + 1;
  if (pool) {
    if (const onnx::AttributeProto* a = FindAttr(*node_, "ceil_mode")) {
      if (a->i() != 0) {
        const int64_t ch = (span_h + w.sh - 1) / w.sh + 1;
        const int64_t cw = (span_w + w.sw - 1) / w.sw + 1;
        if (ch != w.oh || cw != w.ow) {
          return NodeError(
              "ceil_mode=1 changing the output size is unsupported");
        }
      }
    }
    if (w.pt >= w.kh || w.pb >= w.kh || w.pl >= w.kw || w.pr >= w.kw) {
      return NodeError("MaxPool padding must be smaller than the kernel");
    }
  }
  return w;
}

// ---------------------------------------------------------------------------
// Conv and dense specs.

absl::Status Importer::FillBias(const ConvSpec& spec, int64_t out,
                                const ConstTensor* bias_int,
                                const QuantConst* bias_dq,
                                const ConstTensor* bias_float, double beta,
                                std::vector<double>& bias_acc) {
  bias_acc.clear();
  const ConstTensor* data = bias_int;
  if (bias_dq != nullptr) data = &consts_[bias_dq->const_index];
  if (bias_float != nullptr) data = bias_float;
  if (data == nullptr) return absl::OkStatus();
  const int64_t n = data->size();
  if (n != out && n != 1) {
    return NodeError(
        absl::StrCat("bias has ", n, " values for ", out, " output channels"));
  }
  if (bias_int != nullptr && bias_int->dtype != TP::INT32) {
    return NodeError(absl::StrCat("bias must be int32, got ",
                                  OnnxTypeName(bias_int->dtype)));
  }
  if (bias_dq != nullptr && data->dtype != TP::INT32) {
    return NodeError(absl::StrCat("dequantized bias must be int32, got ",
                                  OnnxTypeName(data->dtype)));
  }
  if (bias_float != nullptr && data->dtype != TP::FLOAT) {
    return NodeError(
        absl::StrCat("bias must be float32 or a dequantized int32, got ",
                     OnnxTypeName(data->dtype)));
  }
  bias_acc.resize(out);
  for (int64_t c = 0; c < out; ++c) {
    const int64_t k = n == 1 ? 0 : c;
    const double acc_scale = spec.sx * spec.w_scale[c];
    double v = 0.0;
    if (bias_int != nullptr) {
      v = static_cast<double>(data->i[k]);
    } else if (bias_dq != nullptr) {
      const size_t qk = bias_dq->scale.size() == 1 ? 0 : static_cast<size_t>(c);
      if (bias_dq->scale.size() != 1 && bias_dq->scale.size() != size_t(out)) {
        return NodeError("bias scale does not match the output channels");
      }
      const double sb = bias_dq->scale[qk];
      const int64_t zb = bias_dq->zero_point[qk];
      // The usual QDQ form: bias scale = s_x * s_w[c] (as a float32) and
      // zero point 0, i.e. an accumulator-unit integer, exactly as
      // QLinearConv's bias. Keep it exact then.
      const float implied = static_cast<float>(acc_scale);
      if (zb == 0 && std::fabs(sb - implied) <= 1e-6 * implied) {
        v = static_cast<double>(data->i[k]);
      } else {
        v = static_cast<double>(data->i[k] - zb) * sb / acc_scale;
      }
    } else {
      v = static_cast<double>(data->f[k]) / acc_scale;
    }
    v *= beta;
    if (!std::isfinite(v) || std::fabs(v) > 1e12) {
      return NodeError(absl::StrCat("bias of channel ", c, " is out of range"));
    }
    bias_acc[c] = v;
  }
  return absl::OkStatus();
}

absl::Status Importer::BuildConvSpec(const Sym& x, const QuantConst& w,
                                     int group, const Window& win,
                                     const ConstTensor* bias_int,
                                     const QuantConst* bias_dq,
                                     const ConstTensor* bias_float,
                                     ConvSpec& spec) {
  const ConstTensor& wd = consts_[w.const_index];
  if (wd.dtype != TP::INT8 && wd.dtype != TP::UINT8) {
    return NodeError(absl::StrCat("weights must be int8 or uint8, got ",
                                  OnnxTypeName(wd.dtype)));
  }
  if (wd.dims.size() != 4) {
    return NodeError(absl::StrCat("only 2-D convolution is supported; weights ",
                                  ShapeToString(wd.dims)));
  }
  const Value& xv = g_.values[x.value];
  const int64_t m = wd.dims[0], cg = wd.dims[1];
  const int64_t c_in = xv.shape[1];
  if (group <= 0 || m % group != 0 || cg * group != c_in || m <= 0 || cg <= 0) {
    return NodeError(absl::StrCat("weights ", ShapeToString(wd.dims),
                                  " with group ", group, " do not fit input ",
                                  ShapeToString(xv.shape)));
  }
  if (w.scale.size() != 1 && w.axis != 0) {
    return NodeError(absl::StrCat("bad quantization axis ", w.axis,
                                  " for conv weights (must be 0)"));
  }
  const int64_t taps = c_in * win.kh * win.kw;
  if (taps > kMaxTaps || m * taps > kMaxConvWeights) {
    return NodeError("convolution is too large");
  }
  spec.name = label_;
  spec.x = x.value;
  spec.sx = xv.scale;
  spec.zx = xv.zero_point;
  ConvParams& p = spec.geom;
  p.in_channels = static_cast<int>(c_in);
  p.out_channels = static_cast<int>(m);
  p.kernel_h = win.kh;
  p.kernel_w = win.kw;
  p.stride_h = win.sh;
  p.stride_w = win.sw;
  p.dilation_h = win.dh;
  p.dilation_w = win.dw;
  p.pad_top = win.pt;
  p.pad_left = win.pl;
  p.pad_bottom = win.pb;
  p.pad_right = win.pr;
  spec.out_shape = {1, m, win.oh, win.ow};
  if (absl::StatusOr<int64_t> n = CheckedElements(spec.out_shape, "output");
      !n.ok()) {
    return NodeError(n.status().message());
  }
  spec.w_scale.resize(m);
  spec.centered.assign(m * taps, 0);
  const int64_t mg = m / group;
  const int64_t khw = int64_t{win.kh} * win.kw;
  for (int64_t oc = 0; oc < m; ++oc) {
    const size_t qk = w.scale.size() == 1 ? 0 : static_cast<size_t>(oc);
    spec.w_scale[oc] = w.scale[qk];
    const int64_t zw = w.zero_point[qk];
    const int64_t g = oc / mg;
    for (int64_t ci = 0; ci < cg; ++ci) {
      for (int64_t k = 0; k < khw; ++k) {
        const int64_t src = (oc * cg + ci) * khw + k;
        const int64_t dst = oc * taps + (g * cg + ci) * khw + k;
        spec.centered[dst] = static_cast<int32_t>(wd.i[src] - zw);
      }
    }
  }
  return FillBias(spec, m, bias_int, bias_dq, bias_float, 1.0, spec.bias_acc);
}

absl::Status Importer::BuildDenseSpec(const Sym& x, const QuantConst& w,
                                      bool w_is_nk, double alpha,
                                      const ConstTensor* bias_int,
                                      const QuantConst* bias_dq,
                                      const ConstTensor* bias_float,
                                      double beta, ConvSpec& spec) {
  const ConstTensor& wd = consts_[w.const_index];
  if (wd.dtype != TP::INT8 && wd.dtype != TP::UINT8) {
    return NodeError(absl::StrCat("weights must be int8 or uint8, got ",
                                  OnnxTypeName(wd.dtype)));
  }
  const Value& xv = g_.values[x.value];
  if (xv.shape.size() != 2 || xv.shape[0] != 1) {
    return NodeError(
        absl::StrCat("input must be [1, K], got ", ShapeToString(xv.shape)));
  }
  if (wd.dims.size() != 2) {
    return NodeError(
        absl::StrCat("weights must be 2-D, got ", ShapeToString(wd.dims)));
  }
  const int64_t k_dim = w_is_nk ? wd.dims[1] : wd.dims[0];
  const int64_t n_dim = w_is_nk ? wd.dims[0] : wd.dims[1];
  if (k_dim != xv.shape[1] || n_dim <= 0) {
    return NodeError(absl::StrCat("weights ", ShapeToString(wd.dims),
                                  " do not match input ",
                                  ShapeToString(xv.shape)));
  }
  const int out_axis = w_is_nk ? 0 : 1;
  if (w.scale.size() != 1 && w.axis != out_axis) {
    return NodeError(absl::StrCat("bad quantization axis ", w.axis,
                                  " for weights (must be the output axis ",
                                  out_axis, ")"));
  }
  if (k_dim > kMaxTaps || k_dim * n_dim > kMaxConvWeights) {
    return NodeError("dense layer is too large");
  }
  if (!std::isfinite(alpha) || !(alpha > 0.0)) {
    return NodeError(absl::StrCat("alpha ", alpha, " must be positive"));
  }
  spec.name = label_;
  spec.dense = true;
  spec.x = x.value;
  spec.sx = xv.scale;
  spec.zx = xv.zero_point;
  spec.geom.in_channels = static_cast<int>(k_dim);
  spec.geom.out_channels = static_cast<int>(n_dim);
  spec.out_shape = {1, n_dim};
  spec.w_scale.resize(n_dim);
  spec.centered.resize(n_dim * k_dim);
  for (int64_t n = 0; n < n_dim; ++n) {
    const size_t qk = w.scale.size() == 1 ? 0 : static_cast<size_t>(n);
    spec.w_scale[n] = w.scale[qk] * alpha;
    const int64_t zw = w.zero_point[qk];
    for (int64_t k = 0; k < k_dim; ++k) {
      const int64_t src = w_is_nk ? n * k_dim + k : k * n_dim + n;
      spec.centered[n * k_dim + k] = static_cast<int32_t>(wd.i[src] - zw);
    }
  }
  return FillBias(spec, n_dim, bias_int, bias_dq, bias_float, beta,
                  spec.bias_acc);
}

}  // namespace vtaserve::engine::onnx_internal
