#include "engine/reference_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/requant.h"

namespace vtaserve::engine {

int8_t RequantizeConvAcc(const ConvParams& p, int c, int32_t acc) {
  int32_t v = ShiftRound(acc, p.shift[c]);
  // Adding the zero point cannot overflow for shifted values; saturate the
  // left-shift case explicitly by clamping in int64.
  int64_t y = int64_t{v} + p.output_zero_point;
  y = std::clamp<int64_t>(y, p.clamp_min, p.clamp_max);
  return static_cast<int8_t>(y);
}

void ReferenceConv(const ConvParams& p, const int8_t* x, int64_t in_h,
                   int64_t in_w, int8_t* y, int64_t out_h, int64_t out_w) {
  // Same integers as the literal formula of graph.h, in an order that
  // vectorizes: acc = bias + zx * sum(w) + sum over in-image taps of
  // (x - zx) * w (out-of-image taps read zx, contributing zx * w, which the
  // second term already counts). Integer sums are order-independent.
  const int64_t plane = out_h * out_w;
  std::vector<int32_t> acc(static_cast<size_t>(plane));
  std::vector<int16_t> xc(static_cast<size_t>(in_h * in_w));
  const size_t taps = static_cast<size_t>(p.kernel_h) * p.kernel_w;
  for (int oc = 0; oc < p.out_channels; ++oc) {
    const int8_t* w = &p.weights[size_t(oc) * p.in_channels * taps];
    int32_t wsum = 0;
    for (size_t k = 0; k < size_t(p.in_channels) * taps; ++k) wsum += w[k];
    std::fill(acc.begin(), acc.end(), p.bias[oc] + p.input_zero_point * wsum);
    for (int ic = 0; ic < p.in_channels; ++ic) {
      const int8_t* xp = x + size_t(ic) * in_h * in_w;
      for (int64_t i = 0; i < in_h * in_w; ++i) {
        xc[i] = static_cast<int16_t>(xp[i] - p.input_zero_point);
      }
      for (int kh = 0; kh < p.kernel_h; ++kh) {
        for (int kw = 0; kw < p.kernel_w; ++kw) {
          const int32_t wv =
              w[(size_t(ic) * p.kernel_h + kh) * p.kernel_w + kw];
          if (wv == 0) continue;
          // Output columns whose tap lands inside the image.
          const int64_t off = int64_t{kw} * p.dilation_w - p.pad_left;
          int64_t ow0 = off >= 0 ? 0 : (-off + p.stride_w - 1) / p.stride_w;
          int64_t ow1 = in_w - off <= 0 ? 0 : (in_w - off - 1) / p.stride_w + 1;
          ow1 = std::min(ow1, out_w);
          if (ow0 >= ow1) continue;
          for (int64_t oh = 0; oh < out_h; ++oh) {
            const int64_t ih =
                oh * p.stride_h + int64_t{kh} * p.dilation_h - p.pad_top;
            if (ih < 0 || ih >= in_h) continue;
            const int16_t* row = xc.data() + ih * in_w;  // iw = ow*s + off
            int32_t* out = &acc[oh * out_w];
            if (p.stride_w == 1) {
              for (int64_t ow = ow0; ow < ow1; ++ow)
                out[ow] += row[ow + off] * wv;
            } else {
              for (int64_t ow = ow0; ow < ow1; ++ow) {
                out[ow] += row[ow * p.stride_w + off] * wv;
              }
            }
          }
        }
      }
    }
    int8_t* yp = y + size_t(oc) * plane;
    for (int64_t i = 0; i < plane; ++i)
      yp[i] = RequantizeConvAcc(p, oc, acc[i]);
  }
}

int8_t QuantizeValue(float x, float scale, int32_t zero_point) {
  const float q = std::nearbyint(x / scale);
  if (std::isnan(q))
    return static_cast<int8_t>(std::clamp(zero_point, -128, 127));
  const float v =
      std::clamp(q + static_cast<float>(zero_point), -128.0f, 127.0f);
  return static_cast<int8_t>(v);
}

namespace {

void ReferenceMaxPool(const PoolParams& p, const int8_t* x, int64_t c,
                      int64_t in_h, int64_t in_w, int8_t* y, int64_t out_h,
                      int64_t out_w) {
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t oh = 0; oh < out_h; ++oh) {
      for (int64_t ow = 0; ow < out_w; ++ow) {
        int32_t best = std::numeric_limits<int32_t>::min();
        for (int kh = 0; kh < p.kernel_h; ++kh) {
          const int64_t ih = oh * p.stride_h + kh - p.pad_top;
          if (ih < 0 || ih >= in_h) continue;
          for (int kw = 0; kw < p.kernel_w; ++kw) {
            const int64_t iw = ow * p.stride_w + kw - p.pad_left;
            if (iw < 0 || iw >= in_w) continue;
            best = std::max<int32_t>(best, x[(ch * in_h + ih) * in_w + iw]);
          }
        }
        // Validation guarantees every window holds at least one real tap.
        y[(ch * out_h + oh) * out_w + ow] = static_cast<int8_t>(best);
      }
    }
  }
}

}  // namespace

absl::Status RunReferenceNode(const ModelGraph& graph, const Node& node,
                              absl::Span<const Tensor* const> inputs,
                              absl::Span<Tensor* const> outputs) {
  const Tensor& x = *inputs[0];
  Tensor& y = *outputs[0];
  switch (node.op) {
    case OpKind::kConv: {
      const auto& p = std::get<ConvParams>(node.params);
      ReferenceConv(p, x.data<int8_t>(), x.shape()[2], x.shape()[3],
                    y.data<int8_t>(), y.shape()[2], y.shape()[3]);
      return absl::OkStatus();
    }
    case OpKind::kDense: {
      const auto& p = std::get<ConvParams>(node.params);
      const int8_t* xv = x.data<int8_t>();
      for (int oc = 0; oc < p.out_channels; ++oc) {
        int32_t acc = p.bias[oc];
        for (int k = 0; k < p.in_channels; ++k) {
          acc += int32_t{xv[k]} * p.weights[size_t(oc) * p.in_channels + k];
        }
        y.data<int8_t>()[oc] = RequantizeConvAcc(p, oc, acc);
      }
      return absl::OkStatus();
    }
    case OpKind::kAdd: {
      const auto& p = std::get<AddParams>(node.params);
      const int8_t* a = inputs[0]->data<int8_t>();
      const int8_t* b = inputs[1]->data<int8_t>();
      int8_t* out = y.data<int8_t>();
      for (int64_t i = 0; i < y.num_elements(); ++i) {
        const int32_t acc =
            a[i] * p.multiplier_a + b[i] * p.multiplier_b + p.bias;
        const int32_t v = (acc >> p.shift) + p.output_zero_point;
        out[i] = static_cast<int8_t>(std::clamp(v, p.clamp_min, p.clamp_max));
      }
      return absl::OkStatus();
    }
    case OpKind::kMaxPool: {
      const auto& p = std::get<PoolParams>(node.params);
      ReferenceMaxPool(p, x.data<int8_t>(), x.shape()[1], x.shape()[2],
                       x.shape()[3], y.data<int8_t>(), y.shape()[2],
                       y.shape()[3]);
      return absl::OkStatus();
    }
    case OpKind::kGlobalAvgPool: {
      const auto& p = std::get<GapParams>(node.params);
      const int64_t c = x.shape()[1];
      const int64_t hw = x.shape()[2] * x.shape()[3];
      for (int64_t ch = 0; ch < c; ++ch) {
        int64_t sum = 0;
        for (int64_t i = 0; i < hw; ++i) sum += x.data<int8_t>()[ch * hw + i];
        const int64_t v =
            ((sum * p.multiplier + p.bias) >> p.shift) + p.output_zero_point;
        y.data<int8_t>()[ch] =
            static_cast<int8_t>(std::clamp<int64_t>(v, -128, 127));
      }
      return absl::OkStatus();
    }
    case OpKind::kRelu: {
      const auto& p = std::get<ReluParams>(node.params);
      for (int64_t i = 0; i < y.num_elements(); ++i) {
        y.data<int8_t>()[i] = static_cast<int8_t>(
            std::max<int32_t>(x.data<int8_t>()[i], p.zero_point));
      }
      return absl::OkStatus();
    }
    case OpKind::kReshape:
      std::memcpy(y.bytes(), x.bytes(), x.byte_size());
      return absl::OkStatus();
    case OpKind::kQuantize: {
      const auto& p = std::get<QuantizeParams>(node.params);
      for (int64_t i = 0; i < y.num_elements(); ++i) {
        y.data<int8_t>()[i] =
            QuantizeValue(x.data<float>()[i], p.scale, p.zero_point);
      }
      return absl::OkStatus();
    }
    case OpKind::kDequantize: {
      const auto& p = std::get<QuantizeParams>(node.params);
      for (int64_t i = 0; i < y.num_elements(); ++i) {
        y.data<float>()[i] =
            static_cast<float>(x.data<int8_t>()[i] - p.zero_point) * p.scale;
      }
      return absl::OkStatus();
    }
    case OpKind::kCast: {
      for (int64_t i = 0; i < y.num_elements(); ++i) {
        y.bytes()[i] = x.bytes()[i] ^ 0x80;
      }
      return absl::OkStatus();
    }
    case OpKind::kSoftmax: {
      const int64_t n = x.shape().back();
      const int64_t rows = x.num_elements() / std::max<int64_t>(n, 1);
      for (int64_t r = 0; r < rows; ++r) {
        const float* in = x.data<float>() + r * n;
        float* out = y.data<float>() + r * n;
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t i = 0; i < n; ++i) mx = std::max(mx, in[i]);
        double sum = 0.0;
        for (int64_t i = 0; i < n; ++i) {
          out[i] = std::exp(in[i] - mx);
          sum += out[i];
        }
        for (int64_t i = 0; i < n; ++i)
          out[i] = static_cast<float>(out[i] / sum);
      }
      return absl::OkStatus();
    }
  }
  return absl::InternalError(absl::StrCat("unknown op in node ", node.name));
}

}  // namespace vtaserve::engine
