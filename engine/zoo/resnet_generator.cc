#include "engine/zoo/resnet_generator.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/common/logging.h"
#include "engine/common/status_macros.h"
#include "engine/zoo/float_resnet.h"
#include "engine/zoo/onnx_builder.h"
#include "engine/zoo/zoo_internal.h"

namespace vtaserve::zoo {
namespace {

using internal::ConvOutSize;
using internal::QuantizeBias;
using internal::QuantizedWeights;
using internal::QuantizeWeights;
using internal::Rng;

// Largest |x| of normalized ImageNet input: (1 - 0.406) / 0.225.
constexpr float kInputAbsMax = 2.64f;
// Floor for activation ranges, so a dead tensor still gets a valid scale.
constexpr float kMinRange = 1e-3f;
// Range widening for tensors calibrated by their extremes.
constexpr float kExtremesHeadroom = 1.25f;

struct QParams {
  float scale = 1.0f;
  int32_t zero_point = 0;
};

// A quantized activation of the emitted graph. `tensor` is the quantized
// tensor (QuantizeLinear output in QDQ; the QLinear* output in QOperator) or
// the float tensor (kFloat); scale_name/zp_name are its initializers.
struct Act {
  std::string tensor;
  std::string scale_name, zp_name;
  QParams q;
};

std::vector<int64_t> ConvAttrsKernel(int k) { return {k, k}; }

class Emitter {
 public:
  Emitter(const ResNetSpec& spec, const Calibration* cal, OnnxGraphBuilder& b)
      : spec_(spec),
        cal_(cal),
        b_(b),
        uint8_(spec.uint8_activations),
        act_type_(spec.uint8_activations ? onnx::TensorProto::UINT8
                                         : onnx::TensorProto::INT8),
        // Symmetric int8 cannot fuse ReLU into the quantization.
        relu_node_(spec.explicit_relu || !spec.uint8_activations) {}

  Act Input() {
    const int64_t s = spec_.input_size;
    b_.AddInput("input", onnx::TensorProto::FLOAT, {1, 3, s, s});
    if (spec_.format == ModelFormat::kFloat) return Act{"input", "", "", {}};
    const QParams q{kInputAbsMax / 127.0f, uint8_ ? 128 : 0};
    return Quantize("input", q);
  }

  Act Conv(const FloatConv& c, const Act& in) {
    const std::vector<onnx::AttributeProto> attrs = {
        IntsAttr("kernel_shape", ConvAttrsKernel(c.kernel)),
        IntsAttr("strides", {c.stride, c.stride}),
        IntsAttr("pads", {c.pad, c.pad, c.pad, c.pad}),
        IntsAttr("dilations", {1, 1}), IntAttr("group", 1)};
    const std::vector<int64_t> wdims = {c.out_channels, c.in_channels, c.kernel,
                                        c.kernel};
    const std::string out = c.name + "_out";
    if (spec_.format == ModelFormat::kFloat) {
      const std::string w =
          b_.AddFloatInitializer(c.name + ".weight", wdims, c.weights);
      const std::string bias =
          b_.AddFloatInitializer(c.name + ".bias", {c.out_channels}, c.bias);
      b_.AddNode("Conv", c.name, {in.tensor, w, bias}, {out}, attrs);
      if (!c.relu) return Act{out, "", "", {}};
      b_.AddNode("Relu", c.name + ".relu", {out}, {c.name + ".relu_out"});
      return Act{c.name + ".relu_out", "", "", {}};
    }
    const ActivationRange& range = Range(c.name);
    const QuantizedWeights qw =
        QuantizeWeights(c.weights, c.out_channels,
                        /*per_channel=*/true, spec_.weight_bits);
    std::vector<float> bias_scales;
    const std::vector<int32_t> qb =
        QuantizeBias(c.bias, in.q.scale, qw.scales, &bias_scales);
    if (spec_.format == ModelFormat::kQdq) {
      const std::string w = DqWeights(c.name + ".weight", wdims, qw);
      const std::string bias = DqBias(c.name + ".bias", qb, bias_scales);
      b_.AddNode("Conv", c.name, {Dq(in), w, bias}, {out}, attrs);
      return QdqOutput(c.name, out, range, c.relu);
    }
    // QOperator.
    const std::string w =
        b_.AddInt8Initializer(c.name + ".weight_quantized", wdims, qw.values);
    const std::string ws = b_.AddFloatInitializer(c.name + ".weight_scale",
                                                  {c.out_channels}, qw.scales);
    const std::vector<int8_t> wzp(c.out_channels, 0);
    const std::string wz = b_.AddInt8Initializer(c.name + ".weight_zero_point",
                                                 {c.out_channels}, wzp);
    const std::string bias = b_.AddInt32Initializer(c.name + ".bias_quantized",
                                                    {c.out_channels}, qb);
    const bool fused_relu = c.relu && uint8_;
    // int8 + ReLU: the conv output already uses the ReLU output's scale
    // (negatives saturate, then Relu zeroes them), which makes the integer
    // results identical to the QDQ form's Conv -> Relu -> Q.
    const Act y = Params(out, OutputParams(range, c.relu));
    b_.AddNode("QLinearConv", c.name,
               {in.tensor, in.scale_name, in.zp_name, w, ws, wz, y.scale_name,
                y.zp_name, bias},
               {out}, attrs);
    if (!c.relu || fused_relu) return y;
    return QOperatorRelu(c.name + ".relu", y, range);
  }

  Act MaxPool(const Act& in) {
    const std::vector<onnx::AttributeProto> attrs = {
        IntsAttr("kernel_shape", {3, 3}), IntsAttr("strides", {2, 2}),
        IntsAttr("pads", {1, 1, 1, 1})};
    return PassThrough("MaxPool", "maxpool", in, attrs);
  }

  // Residual add followed by ReLU.
  Act AddRelu(const std::string& block, const Act& a, const Act& b) {
    const std::string name = block + ".add";
    const std::string out = name + "_out";
    const std::string relu_name = block + ".relu";
    if (spec_.format == ModelFormat::kFloat) {
      b_.AddNode("Add", name, {a.tensor, b.tensor}, {out});
      b_.AddNode("Relu", relu_name, {out}, {relu_name + "_out"});
      return Act{relu_name + "_out", "", "", {}};
    }
    const ActivationRange& range = Range(name);
    if (spec_.format == ModelFormat::kQdq) {
      b_.AddNode("Add", name, {Dq(a), Dq(b)}, {out});
      return QdqOutput(block, out, range, /*relu=*/true, relu_name);
    }
    const bool fused_relu = uint8_;
    const Act y = Params(out, OutputParams(range, /*relu=*/true));
    b_.AddNode("QLinearAdd", name,
               {a.tensor, a.scale_name, a.zp_name, b.tensor, b.scale_name,
                b.zp_name, y.scale_name, y.zp_name},
               {out}, {}, kMsDomain);
    if (fused_relu) return y;
    return QOperatorRelu(relu_name, y, range);
  }

  Act GlobalAvgPool(const Act& in) {
    const std::string name = "avgpool", out = "avgpool_out";
    if (spec_.format == ModelFormat::kFloat) {
      b_.AddNode("GlobalAveragePool", name, {in.tensor}, {out});
      return Act{out, "", "", {}};
    }
    // The input is a ReLU output: the mean is never negative.
    const QParams q =
        OutputParams(Range(name), /*relu=*/true, /*extremes=*/true);
    if (spec_.format == ModelFormat::kQdq) {
      b_.AddNode("GlobalAveragePool", name, {Dq(in)}, {out});
      return Quantize(out, q);
    }
    const Act y = Params(out, q);
    b_.AddNode("QLinearGlobalAveragePool", name,
               {in.tensor, in.scale_name, in.zp_name, y.scale_name, y.zp_name},
               {out}, {IntAttr("channels_last", 0)}, kMsDomain);
    return y;
  }

  Act Flatten(const Act& in) {
    return PassThrough("Flatten", "flatten", in, {IntAttr("axis", 1)});
  }

  // The classifier; returns the float logits tensor name ("logits").
  std::string Fc(const FloatResNet& net, const Act& in) {
    const std::string name = "fc", out = "fc_out", logits = "logits";
    const std::vector<int64_t> wdims = {net.num_classes, net.num_features};
    if (spec_.format == ModelFormat::kFloat) {
      const std::string w =
          b_.AddFloatInitializer("fc.weight", wdims, net.fc_weights);
      const std::string bias =
          b_.AddFloatInitializer("fc.bias", {net.num_classes}, net.fc_bias);
      b_.AddNode("Gemm", name, {in.tensor, w, bias}, {logits},
                 {IntAttr("transB", 1)});
      return logits;
    }
    const QuantizedWeights qw = QuantizeWeights(net.fc_weights, net.num_classes,
                                                true, spec_.weight_bits);
    std::vector<float> bias_scales;
    const std::vector<int32_t> qb =
        QuantizeBias(net.fc_bias, in.q.scale, qw.scales, &bias_scales);
    const QParams q =
        OutputParams(Range(name), /*relu=*/false, /*extremes=*/true);
    if (spec_.format == ModelFormat::kQdq) {
      const std::string w = DqWeights("fc.weight", wdims, qw);
      const std::string bias = DqBias("fc.bias", qb, bias_scales);
      b_.AddNode("Gemm", name, {Dq(in), w, bias}, {out},
                 {IntAttr("transB", 1)});
      const Act y = Quantize(out, q);
      b_.AddNode("DequantizeLinear", out + "_DequantizeLinear",
                 {y.tensor, y.scale_name, y.zp_name}, {logits});
      return logits;
    }
    const std::string w =
        b_.AddInt8Initializer("fc.weight_quantized", wdims, qw.values);
    const std::string ws =
        b_.AddFloatInitializer("fc.weight_scale", {net.num_classes}, qw.scales);
    const std::vector<int8_t> wzp(net.num_classes, 0);
    const std::string wz =
        b_.AddInt8Initializer("fc.weight_zero_point", {net.num_classes}, wzp);
    const std::string bias =
        b_.AddInt32Initializer("fc.bias_quantized", {net.num_classes}, qb);
    const Act y = Params(out, q);
    b_.AddNode(
        "QGemm", name,
        {in.tensor, in.scale_name, in.zp_name, w, ws, wz, bias, y.scale_name,
         y.zp_name},
        {out},
        {FloatAttr("alpha", 1.0f), IntAttr("transA", 0), IntAttr("transB", 1)},
        kMsDomain);
    b_.AddNode("DequantizeLinear", out + "_DequantizeLinear",
               {y.tensor, y.scale_name, y.zp_name}, {logits});
    return logits;
  }

 private:
  const ActivationRange& Range(const std::string& name) {
    const ActivationRange* r = cal_->Find(name);
    // Every layer the emitter visits was run by the calibration pass.
    VTASERVE_CHECK(r != nullptr,
                   absl::StrCat("zoo: no calibration for ", name));
    return *r;
  }

  // Quantization parameters of a tensor with `range` (before ReLU); `relu`:
  // the quantized tensor holds the ReLU output.
  QParams OutputParams(const ActivationRange& range, bool relu,
                       bool extremes = false) const {
    float lo = std::min(extremes ? range.min : range.lo, 0.0f);
    float hi = std::max(extremes ? range.max : range.hi, 0.0f);
    if (extremes) {
      // Small tensors (pooled features, logits): keep every value, with
      // headroom for inputs other than the calibration images.
      lo *= kExtremesHeadroom;
      hi *= kExtremesHeadroom;
    }
    if (relu) lo = 0.0f;
    if (uint8_) {
      if (hi - lo < kMinRange) hi = lo + kMinRange;
      const float scale = (hi - lo) / 255.0f;
      const int zp = static_cast<int>(
          std::clamp(std::nearbyint(-lo / scale), 0.0f, 255.0f));
      return {scale, zp};
    }
    const float m = std::max({std::fabs(lo), std::fabs(hi), kMinRange});
    return {m / 127.0f, 0};
  }

  // Adds scale/zero point initializers "<tensor>_scale",
  // "<tensor>_zero_point" and returns the activation.
  Act Params(const std::string& tensor, const QParams& q) {
    Act a;
    a.tensor = tensor;
    a.q = q;
    a.scale_name = b_.AddFloatScalar(tensor + "_scale", q.scale);
    a.zp_name =
        b_.AddZeroPointScalar(tensor + "_zero_point", act_type_, q.zero_point);
    return a;
  }

  // QDQ/QOperator: QuantizeLinear of float `tensor`.
  Act Quantize(const std::string& tensor, const QParams& q) {
    Act a = Params(tensor, q);
    a.tensor = tensor + "_quantized";
    b_.AddNode("QuantizeLinear", tensor + "_QuantizeLinear",
               {tensor, a.scale_name, a.zp_name}, {a.tensor});
    return a;
  }

  // QDQ: the DequantizeLinear of `a` (one shared node per tensor).
  std::string Dq(const Act& a) {
    std::string base = a.tensor;
    const std::string suffix = "_quantized";
    if (base.size() > suffix.size() &&
        base.compare(base.size() - suffix.size(), suffix.size(), suffix) == 0) {
      base.resize(base.size() - suffix.size());
    }
    const std::string out = base + "_dequantized";
    if (dequantized_.insert(out).second) {
      b_.AddNode("DequantizeLinear", base + "_DequantizeLinear",
                 {a.tensor, a.scale_name, a.zp_name}, {out});
    }
    return out;
  }

  // QDQ: int8 weights with per-channel scales through DequantizeLinear.
  std::string DqWeights(const std::string& name,
                        const std::vector<int64_t>& dims,
                        const QuantizedWeights& qw) {
    const int64_t oc = dims[0];
    const std::string w =
        b_.AddInt8Initializer(name + "_quantized", dims, qw.values);
    const std::string s =
        b_.AddFloatInitializer(name + "_scale", {oc}, qw.scales);
    const std::vector<int8_t> zp(oc, 0);
    const std::string z = b_.AddInt8Initializer(name + "_zero_point", {oc}, zp);
    const std::string out = name + "_dequantized";
    b_.AddNode("DequantizeLinear", name + "_DequantizeLinear", {w, s, z}, {out},
               {IntAttr("axis", 0)});
    return out;
  }

  // QDQ: int32 bias with scale s_x * s_w[c] through DequantizeLinear.
  std::string DqBias(const std::string& name, const std::vector<int32_t>& qb,
                     const std::vector<float>& scales) {
    const int64_t n = static_cast<int64_t>(qb.size());
    const std::string b = b_.AddInt32Initializer(name + "_quantized", {n}, qb);
    const std::string s = b_.AddFloatInitializer(name + "_scale", {n}, scales);
    const std::vector<int32_t> zp(n, 0);
    const std::string z = b_.AddInt32Initializer(name + "_zero_point", {n}, zp);
    const std::string out = name + "_dequantized";
    b_.AddNode("DequantizeLinear", name + "_DequantizeLinear", {b, s, z}, {out},
               {IntAttr("axis", 0)});
    return out;
  }

  // QDQ: quantizes float `out` of layer `layer` ([-> Relu] -> Q).
  Act QdqOutput(const std::string& layer, const std::string& out,
                const ActivationRange& range, bool relu,
                std::string relu_name = "") {
    if (!relu) return Quantize(out, OutputParams(range, false));
    const QParams q = OutputParams(range, true);
    if (!relu_node_) return Quantize(out, q);
    if (relu_name.empty()) relu_name = layer + ".relu";
    b_.AddNode("Relu", relu_name, {out}, {relu_name + "_out"});
    return Quantize(relu_name + "_out", q);
  }

  // QOperator int8: DequantizeLinear -> Relu -> QuantizeLinear, with the
  // same scale and zero point on both sides (an exact integer max(q, 0)).
  Act QOperatorRelu(const std::string& relu_name, const Act& y,
                    const ActivationRange& range) {
    const std::string dq = y.tensor + "_dequantized";
    b_.AddNode("DequantizeLinear", y.tensor + "_DequantizeLinear",
               {y.tensor, y.scale_name, y.zp_name}, {dq});
    b_.AddNode("Relu", relu_name, {dq}, {relu_name + "_out"});
    return Quantize(relu_name + "_out", OutputParams(range, true));
  }

  // An op that keeps the quantization of its input (MaxPool, Flatten).
  Act PassThrough(const std::string& op, const std::string& name, const Act& in,
                  std::vector<onnx::AttributeProto> attrs) {
    const std::string out = name + "_out";
    switch (spec_.format) {
      case ModelFormat::kFloat:
        b_.AddNode(op, name, {in.tensor}, {out}, std::move(attrs));
        return Act{out, "", "", {}};
      case ModelFormat::kQdq:
        b_.AddNode(op, name, {Dq(in)}, {out}, std::move(attrs));
        return Quantize(out, in.q);
      case ModelFormat::kQOperator: {
        b_.AddNode(op, name, {in.tensor}, {out}, std::move(attrs));
        Act a = in;
        a.tensor = out;
        return a;
      }
    }
    return in;
  }

  const ResNetSpec& spec_;
  const Calibration* cal_;
  OnnxGraphBuilder& b_;
  const bool uint8_;
  const onnx::TensorProto::DataType act_type_;
  const bool relu_node_;
  std::set<std::string> dequantized_;
};

absl::Status ValidateResNetSpec(const ResNetSpec& spec) {
  if (spec.calibration_images < 1 || spec.calibration_images > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("calibration_images must be in [1, 64], got ",
                     spec.calibration_images));
  }
  if (spec.weight_bits != 7 && spec.weight_bits != 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight_bits must be 7 or 8, got ", spec.weight_bits));
  }
  if (spec.explicit_relu && spec.format == ModelFormat::kQOperator) {
    return absl::InvalidArgumentError(
        "explicit_relu applies to the QDQ format only");
  }
  switch (spec.format) {
    case ModelFormat::kQdq:
    case ModelFormat::kQOperator:
    case ModelFormat::kFloat:
      return absl::OkStatus();
  }
  return absl::InvalidArgumentError("unknown model format");
}

}  // namespace

absl::string_view ModelFormatName(ModelFormat format) {
  switch (format) {
    case ModelFormat::kQdq:
      return "qdq";
    case ModelFormat::kQOperator:
      return "qoperator";
    case ModelFormat::kFloat:
      return "float";
  }
  return "unknown";
}

absl::StatusOr<ModelFormat> ParseModelFormat(absl::string_view name) {
  for (ModelFormat f :
       {ModelFormat::kQdq, ModelFormat::kQOperator, ModelFormat::kFloat}) {
    if (name == ModelFormatName(f)) return f;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown model format '", name, "' (expected qdq, qoperator or float)"));
}

absl::StatusOr<onnx::ModelProto> GenerateResNet(const ResNetSpec& spec) {
  VTASERVE_RETURN_IF_ERROR(ValidateResNetSpec(spec));
  VTASERVE_ASSIGN_OR_RETURN(const FloatResNet net, BuildFloatResNet(spec));
  Calibration cal;
  if (spec.format != ModelFormat::kFloat) {
    for (int i = 0; i < spec.calibration_images; ++i) {
      RunFloatResNet(net, CalibrationImage(spec.seed, i, spec.input_size),
                     &cal);
    }
  }
  const std::string model_name = absl::StrCat("resnet", spec.depth);
  OnnxGraphBuilder b(absl::StrCat(model_name, "_", ModelFormatName(spec.format),
                                  "_", spec.input_size));
  if (spec.format != ModelFormat::kQOperator) b.RemoveOpset(kMsDomain);
  b.SetDocString(absl::StrCat(
      "ResNet-", spec.depth, " v1.5 generated by vtaserve (",
      ModelFormatName(spec.format), ", pseudo-random weights, seed ", spec.seed,
      "); not a trained model"));
  b.AddMetadata("vtaserve.model", model_name);
  b.AddMetadata("vtaserve.format", ModelFormatName(spec.format));
  b.AddMetadata("vtaserve.input_size", absl::StrCat(spec.input_size));
  b.AddMetadata("vtaserve.seed", absl::StrCat(spec.seed));
  if (spec.format != ModelFormat::kFloat) {
    b.AddMetadata("vtaserve.activations",
                  spec.uint8_activations ? "uint8" : "int8");
    b.AddMetadata("vtaserve.calibration_images",
                  absl::StrCat(spec.calibration_images));
    b.AddMetadata("vtaserve.weight_bits", absl::StrCat(spec.weight_bits));
  }

  Emitter e(spec, &cal, b);
  Act x = e.Input();
  x = e.Conv(net.stem, x);
  x = e.MaxPool(x);
  for (const FloatBlock& block : net.blocks) {
    Act y = x;
    for (const FloatConv& c : block.convs) y = e.Conv(c, y);
    const Act shortcut = block.has_downsample ? e.Conv(block.downsample, x) : x;
    x = e.AddRelu(block.name, y, shortcut);
  }
  x = e.GlobalAvgPool(x);
  x = e.Flatten(x);
  const std::string logits = e.Fc(net, x);
  const int64_t classes = spec.num_classes;
  if (spec.softmax) {
    b.AddNode("Softmax", "softmax", {logits}, {"probabilities"},
              {IntAttr("axis", -1)});
    b.AddOutput("probabilities", onnx::TensorProto::FLOAT, {1, classes});
  } else {
    b.AddOutput(logits, onnx::TensorProto::FLOAT, {1, classes});
  }
  return b.BuildChecked();
}

absl::StatusOr<onnx::ModelProto> GenerateConv(const ConvSpec& spec) {
  auto bad = [](auto... parts) {
    return absl::InvalidArgumentError(absl::StrCat("conv spec: ", parts...));
  };
  if (spec.in_channels < 1 || spec.in_channels > 4096 ||
      spec.out_channels < 1 || spec.out_channels > 4096) {
    return bad("channels must be in [1, 4096], got ", spec.in_channels, " -> ",
               spec.out_channels);
  }
  if (spec.weight_bits != 7 && spec.weight_bits != 8) {
    return bad("weight_bits must be 7 or 8, got ", spec.weight_bits);
  }
  if (spec.kernel < 1 || spec.kernel > 15) {
    return bad("kernel must be in [1, 15], got ", spec.kernel);
  }
  if (spec.stride < 1 || spec.stride > 8) {
    return bad("stride must be in [1, 8], got ", spec.stride);
  }
  if (spec.pad < 0 || spec.pad >= spec.kernel) {
    return bad("pad must be in [0, kernel), got ", spec.pad);
  }
  if (spec.input_h < 1 || spec.input_h > 4096 || spec.input_w < 1 ||
      spec.input_w > 4096) {
    return bad("input size must be in [1, 4096], got ", spec.input_h, "x",
               spec.input_w);
  }
  const int oh = ConvOutSize(spec.input_h, spec.kernel, spec.stride, spec.pad);
  const int ow = ConvOutSize(spec.input_w, spec.kernel, spec.stride, spec.pad);
  if (spec.input_h + 2 * spec.pad < spec.kernel ||
      spec.input_w + 2 * spec.pad < spec.kernel || oh < 1 || ow < 1) {
    return bad("kernel ", spec.kernel, " does not fit the padded input");
  }
  const int qmin = spec.uint8_input ? 0 : -128;
  const int qmax = spec.uint8_input ? 255 : 127;
  if (spec.input_zero_point < qmin || spec.input_zero_point > qmax) {
    return bad("input zero point ", spec.input_zero_point, " outside [", qmin,
               ", ", qmax, "]");
  }
  if (!(spec.input_scale > 0.0f) || !std::isfinite(spec.input_scale)) {
    return bad("input scale must be finite and positive");
  }
  const double macs = static_cast<double>(spec.out_channels) * oh * ow *
                      spec.in_channels * spec.kernel * spec.kernel;
  if (macs > 2e10) {
    return bad("layer too large (", macs, " MACs)");
  }

  // Weights: He-normal with per-channel variation and a bias.
  FloatConv c;
  c.name = "conv";
  c.in_channels = spec.in_channels;
  c.out_channels = spec.out_channels;
  c.kernel = spec.kernel;
  c.stride = spec.stride;
  c.pad = spec.pad;
  c.relu = spec.relu;
  const int taps = spec.in_channels * spec.kernel * spec.kernel;
  {
    Rng rng(spec.seed, "conv.weights");
    const double std_dev = std::sqrt(2.0 / taps);
    c.weights.resize(static_cast<size_t>(spec.out_channels) * taps);
    c.bias.resize(spec.out_channels);
    for (int oc = 0; oc < spec.out_channels; ++oc) {
      const double factor = std::exp(0.3 * rng.Normal());
      for (int t = 0; t < taps; ++t) {
        c.weights[static_cast<size_t>(oc) * taps + t] =
            static_cast<float>(rng.Normal() * std_dev * factor);
      }
      c.bias[oc] = static_cast<float>(0.1 * rng.Normal());
    }
  }

  const std::vector<int64_t> in_dims = {1, spec.in_channels, spec.input_h,
                                        spec.input_w};
  const std::vector<int64_t> out_dims = {1, spec.out_channels, oh, ow};
  const std::vector<int64_t> wdims = {spec.out_channels, spec.in_channels,
                                      spec.kernel, spec.kernel};
  const std::vector<onnx::AttributeProto> attrs = {
      IntsAttr("kernel_shape", {spec.kernel, spec.kernel}),
      IntsAttr("strides", {spec.stride, spec.stride}),
      IntsAttr("pads", {spec.pad, spec.pad, spec.pad, spec.pad}),
      IntsAttr("dilations", {1, 1}), IntAttr("group", 1)};

  OnnxGraphBuilder b(absl::StrCat("conv", spec.kernel, "x", spec.kernel, "_",
                                  ModelFormatName(spec.format)));
  b.RemoveOpset(kMsDomain);
  b.AddMetadata("vtaserve.model", "conv");
  b.AddMetadata("vtaserve.format", ModelFormatName(spec.format));
  b.AddMetadata("vtaserve.seed", absl::StrCat(spec.seed));

  if (spec.format == ModelFormat::kFloat) {
    b.AddInput("input", onnx::TensorProto::FLOAT, in_dims);
    b.AddFloatInitializer("conv.weight", wdims, c.weights);
    b.AddFloatInitializer("conv.bias", {spec.out_channels}, c.bias);
    b.AddNode("Conv", "conv", {"input", "conv.weight", "conv.bias"},
              {spec.relu ? "conv_out" : "output"}, attrs);
    if (spec.relu) b.AddNode("Relu", "relu", {"conv_out"}, {"output"});
    b.AddOutput("output", onnx::TensorProto::FLOAT, out_dims);
    return b.BuildChecked();
  }

  // Calibrate the output on a pseudo-random quantized input.
  const onnx::TensorProto::DataType qtype =
      spec.uint8_input ? onnx::TensorProto::UINT8 : onnx::TensorProto::INT8;
  std::vector<float> x(static_cast<size_t>(spec.in_channels) * spec.input_h *
                       spec.input_w);
  {
    Rng rng(spec.seed, "conv.input");
    for (float& v : x) {
      const int q = qmin + static_cast<int>(rng.Next() % (qmax - qmin + 1));
      v = spec.input_scale * static_cast<float>(q - spec.input_zero_point);
    }
  }
  std::vector<float> y(static_cast<size_t>(spec.out_channels) * oh * ow);
  internal::Conv2D(c, x.data(), spec.input_h, spec.input_w, y.data());
  const ActivationRange range = internal::MeasureRange(y, spec.relu);
  float lo = std::min(range.lo, 0.0f), hi = std::max(range.hi, 0.0f);
  if (spec.relu) lo = 0.0f;
  if (hi - lo < kMinRange) hi = lo + kMinRange;
  const float out_scale = (hi - lo) / 255.0f;
  const int out_zp = static_cast<int>(
      std::clamp(std::nearbyint(static_cast<float>(qmin) - lo / out_scale),
                 static_cast<float>(qmin), static_cast<float>(qmax)));

  const QuantizedWeights qw = QuantizeWeights(
      c.weights, spec.out_channels, spec.per_channel, spec.weight_bits);
  std::vector<float> bias_scales;
  const std::vector<int32_t> qb =
      QuantizeBias(c.bias, spec.input_scale, qw.scales, &bias_scales);
  const int64_t nscale = static_cast<int64_t>(qw.scales.size());
  const std::vector<int64_t> sdims =
      spec.per_channel ? std::vector<int64_t>{nscale} : std::vector<int64_t>{};
  const std::vector<int8_t> wzp(nscale, 0);

  b.AddInput("input", qtype, in_dims);
  b.AddOutput("output", qtype, out_dims);
  b.AddFloatScalar("input_scale", spec.input_scale);
  b.AddZeroPointScalar("input_zero_point", qtype, spec.input_zero_point);
  b.AddFloatScalar("output_scale", out_scale);
  b.AddZeroPointScalar("output_zero_point", qtype, out_zp);
  b.AddInt8Initializer("conv.weight_quantized", wdims, qw.values);
  b.AddFloatInitializer("conv.weight_scale", sdims, qw.scales);
  b.AddInt8Initializer("conv.weight_zero_point", sdims, wzp);
  b.AddInt32Initializer("conv.bias_quantized", {spec.out_channels}, qb);
  b.AddMetadata("vtaserve.output_scale", absl::StrCat(out_scale));
  b.AddMetadata("vtaserve.output_zero_point", absl::StrCat(out_zp));

  if (spec.format == ModelFormat::kQOperator) {
    b.AddNode(
        "QLinearConv", "conv",
        {"input", "input_scale", "input_zero_point", "conv.weight_quantized",
         "conv.weight_scale", "conv.weight_zero_point", "output_scale",
         "output_zero_point", "conv.bias_quantized"},
        {"output"}, attrs);
    return b.BuildChecked();
  }
  // QDQ.
  std::vector<onnx::AttributeProto> axis;
  if (spec.per_channel) axis.push_back(IntAttr("axis", 0));
  b.AddNode("DequantizeLinear", "input_DequantizeLinear",
            {"input", "input_scale", "input_zero_point"},
            {"input_dequantized"});
  b.AddNode(
      "DequantizeLinear", "conv.weight_DequantizeLinear",
      {"conv.weight_quantized", "conv.weight_scale", "conv.weight_zero_point"},
      {"conv.weight_dequantized"}, axis);
  const std::vector<int32_t> bzp(spec.out_channels, 0);
  b.AddFloatInitializer("conv.bias_scale", {spec.out_channels}, bias_scales);
  b.AddInt32Initializer("conv.bias_zero_point", {spec.out_channels}, bzp);
  b.AddNode("DequantizeLinear", "conv.bias_DequantizeLinear",
            {"conv.bias_quantized", "conv.bias_scale", "conv.bias_zero_point"},
            {"conv.bias_dequantized"}, {IntAttr("axis", 0)});
  b.AddNode(
      "Conv", "conv",
      {"input_dequantized", "conv.weight_dequantized", "conv.bias_dequantized"},
      {"conv_out"}, attrs);
  std::string to_quantize = "conv_out";
  if (spec.relu && spec.explicit_relu) {
    b.AddNode("Relu", "relu", {"conv_out"}, {"relu_out"});
    to_quantize = "relu_out";
  }
  b.AddNode("QuantizeLinear", "output_QuantizeLinear",
            {to_quantize, "output_scale", "output_zero_point"}, {"output"});
  return b.BuildChecked();
}

absl::Status WriteModel(const onnx::ModelProto& model,
                        const std::string& path) {
  VTASERVE_RETURN_IF_ERROR(CheckModel(model));
  std::string bytes;
  if (!model.SerializeToString(&bytes)) {
    return absl::InternalError("cannot serialize the model");
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    return absl::InternalError(absl::StrCat("cannot open ", path));
  }
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    return absl::InternalError(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

}  // namespace vtaserve::zoo
