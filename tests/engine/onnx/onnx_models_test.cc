// Whole generated models through the importer and the reference executor:
// ResNet-18/34/50 in both quantized forms, QDQ vs QOperator bit-exactness,
// and a single conv against a float computation of the same model.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/graph.h"
#include "engine/onnx/onnx_importer.h"
#include "engine/requant.h"
#include "engine/zoo/resnet_generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/onnx/onnx_test_util.h"
#include "tests/testing/status_matchers.h"

namespace vtaserve::engine {
namespace {

using ::testing::Eq;
using ::vtaserve::engine::testing::CountOps;
using ::vtaserve::engine::testing::RandomTensor;
using ::vtaserve::engine::testing::RunOnReference;
using ::vtaserve::testing::IsOk;

struct ResNetCase {
  int depth;
  int size;
  zoo::ModelFormat format;
};

std::string CaseName(const ::testing::TestParamInfo<ResNetCase>& info) {
  return absl::StrCat(
      "ResNet", info.param.depth, "At", info.param.size,
      info.param.format == zoo::ModelFormat::kQdq ? "Qdq" : "QOperator");
}

class ResNetImportTest : public ::testing::TestWithParam<ResNetCase> {};

TEST_P(ResNetImportTest, ImportsAndRunsOnReference) {
  const ResNetCase& c = GetParam();
  zoo::ResNetSpec spec;
  spec.depth = c.depth;
  spec.input_size = c.size;
  spec.num_classes = 100;
  spec.format = c.format;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto model,
                                zoo::GenerateResNet(spec));
  VTASERVE_ASSERT_OK_AND_ASSIGN(ModelGraph g,
                                ImportOnnxModel(model, ImportOptions{}));
  // One engine conv per ONNX conv: 20 for ResNet-18 (incl. 3 downsamples),
  // 36 for ResNet-34, 53 for ResNet-50.
  const int convs = c.depth == 18 ? 20 : c.depth == 34 ? 36 : 53;
  EXPECT_EQ(CountOps(g, OpKind::kConv), convs);
  EXPECT_EQ(CountOps(g, OpKind::kAdd), c.depth == 18   ? 8
                                       : c.depth == 34 ? 16
                                                       : 16);
  EXPECT_EQ(CountOps(g, OpKind::kDense), 1);
  EXPECT_EQ(CountOps(g, OpKind::kGlobalAvgPool), 1);
  EXPECT_EQ(CountOps(g, OpKind::kMaxPool), 1);
  ASSERT_EQ(g.inputs.size(), 1u);
  EXPECT_EQ(g.value(g.inputs[0]).name, "input");
  EXPECT_EQ(g.value(g.inputs[0]).dtype, DataType::kFloat32);
  EXPECT_EQ(g.value(g.inputs[0]).shape,
            (std::vector<int64_t>{1, 3, c.size, c.size}));
  ASSERT_EQ(g.outputs.size(), 1u);
  EXPECT_EQ(g.value(g.outputs[0]).name, "logits");
  EXPECT_EQ(g.value(g.outputs[0]).shape, (std::vector<int64_t>{1, 100}));

  Tensor x = RandomTensor(DataType::kFloat32, {2, 3, c.size, c.size}, 7, 2.0f);
  VTASERVE_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> out,
                                RunOnReference(std::move(g), {&x}));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].shape(), (std::vector<int64_t>{2, 100}));
  int distinct = 0;
  for (int64_t i = 1; i < 100; ++i) {
    distinct += out[0].data<float>()[i] != out[0].data<float>()[0] ? 1 : 0;
    EXPECT_TRUE(std::isfinite(out[0].data<float>()[i]));
  }
  EXPECT_GT(distinct, 10) << "logits are (nearly) constant";
}

INSTANTIATE_TEST_SUITE_P(
    Zoo, ResNetImportTest,
    ::testing::Values(ResNetCase{18, 64, zoo::ModelFormat::kQdq},
                      ResNetCase{18, 64, zoo::ModelFormat::kQOperator},
                      ResNetCase{34, 32, zoo::ModelFormat::kQdq},
                      ResNetCase{34, 32, zoo::ModelFormat::kQOperator},
                      ResNetCase{50, 32, zoo::ModelFormat::kQdq},
                      ResNetCase{50, 32, zoo::ModelFormat::kQOperator}),
    CaseName);

struct FormDiff {
  int64_t differ = 0, total = 0;
  double max_diff_lsb = 0;  // in units of the logits' quantization scale
  int top1_agree = 0, images = 0;
};

// Imports and runs both forms of `spec` on the same random images.
void CompareForms(zoo::ResNetSpec spec, int images, bool expect_same_params,
                  FormDiff& d) {
  spec.format = zoo::ModelFormat::kQdq;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto qdq,
                                zoo::GenerateResNet(spec));
  spec.format = zoo::ModelFormat::kQOperator;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto qop,
                                zoo::GenerateResNet(spec));
  VTASERVE_ASSERT_OK_AND_ASSIGN(ModelGraph gq,
                                ImportOnnxModel(qdq, ImportOptions{}));
  VTASERVE_ASSERT_OK_AND_ASSIGN(ModelGraph go,
                                ImportOnnxModel(qop, ImportOptions{}));
  // Same conv/dense integer parameters, layer by layer.
  std::vector<const ConvParams*> cq, co;
  for (const Node& n : gq.nodes) {
    if (const auto* p = std::get_if<ConvParams>(&n.params)) cq.push_back(p);
  }
  for (const Node& n : go.nodes) {
    if (const auto* p = std::get_if<ConvParams>(&n.params)) co.push_back(p);
  }
  ASSERT_EQ(cq.size(), co.size());
  for (size_t i = 0; expect_same_params && i < cq.size(); ++i) {
    EXPECT_EQ(cq[i]->weights, co[i]->weights) << "layer " << i;
    EXPECT_EQ(cq[i]->bias, co[i]->bias) << "layer " << i;
    EXPECT_EQ(cq[i]->shift, co[i]->shift) << "layer " << i;
    EXPECT_EQ(cq[i]->output_zero_point, co[i]->output_zero_point);
    EXPECT_EQ(cq[i]->clamp_min, co[i]->clamp_min) << "layer " << i;
  }
  const int s = spec.input_size;
  Tensor x = RandomTensor(DataType::kFloat32, {images, 3, s, s}, 11, 2.0f);
  VTASERVE_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> yq,
                                RunOnReference(std::move(gq), {&x}));
  VTASERVE_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> yo,
                                RunOnReference(std::move(go), {&x}));
  ASSERT_EQ(yq[0].num_elements(), yo[0].num_elements());
  // Logits are dequantized int8 values: recover their step from the spread.
  const int64_t k = spec.num_classes;
  double step = 0;
  for (int64_t i = 1; i < yq[0].num_elements(); ++i) {
    const double gap =
        std::fabs(yq[0].data<float>()[i] - yq[0].data<float>()[0]);
    if (gap > 0 && (step == 0 || gap < step)) step = gap;
  }
  d.total = yq[0].num_elements();
  d.images = images;
  for (int64_t i = 0; i < d.total; ++i) {
    const double diff =
        std::fabs(yq[0].data<float>()[i] - yo[0].data<float>()[i]);
    d.differ += diff != 0 ? 1 : 0;
    if (step > 0) d.max_diff_lsb = std::max(d.max_diff_lsb, diff / step);
  }
  for (int b = 0; b < images; ++b) {
    const float* a = yq[0].data<float>() + b * k;
    const float* o = yo[0].data<float>() + b * k;
    d.top1_agree +=
        std::max_element(a, a + k) - a == std::max_element(o, o + k) - o;
  }
}

// The QDQ and QOperator forms of one generated model carry the same
// quantized weights, biases and scales, so the imported graphs must be
// identical and so must the outputs, bit for bit.
TEST(OnnxFormsTest, QdqAndQOperatorResNet18AreBitExact) {
  zoo::ResNetSpec spec;
  spec.depth = 18;
  spec.input_size = 64;
  spec.num_classes = 100;
  FormDiff d;
  ASSERT_NO_FATAL_FAILURE(CompareForms(spec, 3, true, d));
  EXPECT_EQ(d.differ, 0) << "of " << d.total << " logits";
}

TEST(OnnxFormsTest, QdqAndQOperatorResNet50AreBitExact) {
  zoo::ResNetSpec spec;
  spec.depth = 50;
  spec.input_size = 32;
  spec.num_classes = 100;
  FormDiff d;
  ASSERT_NO_FATAL_FAILURE(CompareForms(spec, 2, true, d));
  EXPECT_EQ(d.differ, 0) << "of " << d.total << " logits";
}

// With symmetric int8 activations the two forms are different models: QDQ
// rounds Conv -> Relu -> Q once, to the ReLU output's scale, while ONNX
// Runtime's QOperator form rounds QLinearConv to the conv output's scale
// and then requantizes DQ -> Relu -> Q to the ReLU output's scale (double
// rounding). They need not agree bit for bit; this measures it (on 4
// images at 32x32: 0 of 200 logits differed) and asserts top-1 agreement.
TEST(OnnxFormsTest, SymmetricInt8FormsAgreeDespiteDoubleRounding) {
  zoo::ResNetSpec spec;
  spec.depth = 18;
  spec.input_size = 32;
  spec.num_classes = 50;
  spec.uint8_activations = false;
  FormDiff d;
  ASSERT_NO_FATAL_FAILURE(CompareForms(spec, 4, false, d));
  std::printf(
      "[ forms int8 ] %lld of %lld logits differ, max %.1f LSB, top-1 "
      "agreement %d/%d\n",
      static_cast<long long>(d.differ), static_cast<long long>(d.total),
      d.max_diff_lsb, d.top1_agree, d.images);
  EXPECT_GE(d.top1_agree, d.images - 1);
}

// One quantized conv vs the float formula of the same model:
//   y = clamp(round(sum (x - zx) * s_x * (w - zw) * s_w[c] + b * s_x * s_w[c])
//             / s_y) + zy)
// The engine's only error is the re-rounding of the folded weights and bias
// (requant.h): |error| <= 0.5 + (0.5 * sum |x - zx| + 0.5) / 2^S[c].
struct FloatConvCase {
  bool per_channel;
  bool relu;
  int shift_group;
};

class ConvVsFloatTest : public ::testing::TestWithParam<FloatConvCase> {};

TEST_P(ConvVsFloatTest, WithinRequantErrorBound) {
  const FloatConvCase& c = GetParam();
  zoo::ConvSpec spec;
  spec.in_channels = 3;
  spec.out_channels = 32;
  spec.input_h = 40;
  spec.input_w = 36;
  spec.kernel = 7;
  spec.stride = 2;
  spec.pad = 3;
  spec.per_channel = c.per_channel;
  spec.relu = c.relu;
  spec.format = zoo::ModelFormat::kQOperator;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto model,
                                zoo::GenerateConv(spec));
  ImportOptions options;
  options.requant.shift_group = c.shift_group;
  VTASERVE_ASSERT_OK_AND_ASSIGN(ModelGraph g, ImportOnnxModel(model, options));
  const ConvParams* folded = nullptr;
  for (const Node& n : g.nodes) {
    if (n.op == OpKind::kConv) folded = &std::get<ConvParams>(n.params);
  }
  ASSERT_NE(folded, nullptr);
  const ConvParams p = *folded;

  // The float model, read straight from the ONNX initializers.
  auto init = [&](const std::string& name) -> const onnx::TensorProto& {
    for (const auto& t : model.graph().initializer()) {
      if (t.name() == name) return t;
    }
    ADD_FAILURE() << "no initializer " << name;
    return model.graph().initializer(0);
  };
  auto floats = [](const onnx::TensorProto& t) {
    std::vector<float> v(t.raw_data().size() / 4);
    std::memcpy(v.data(), t.raw_data().data(), v.size() * 4);
    return v;
  };
  const float sx = floats(init("input_scale"))[0];
  const float sy = floats(init("output_scale"))[0];
  const int zx = static_cast<uint8_t>(init("input_zero_point").raw_data()[0]);
  const int zy = static_cast<uint8_t>(init("output_zero_point").raw_data()[0]);
  const std::vector<float> sw = floats(init("conv.weight_scale"));
  const std::string& wraw = init("conv.weight_quantized").raw_data();
  std::vector<int32_t> bias(spec.out_channels);
  std::memcpy(bias.data(), init("conv.bias_quantized").raw_data().data(),
              bias.size() * 4);

  const int64_t oh =
      (spec.input_h + 2 * spec.pad - spec.kernel) / spec.stride + 1;
  const int64_t ow =
      (spec.input_w + 2 * spec.pad - spec.kernel) / spec.stride + 1;
  Tensor x =
      RandomTensor(DataType::kUInt8, {1, 3, spec.input_h, spec.input_w}, 5);
  VTASERVE_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> out,
                                RunOnReference(std::move(g), {&x}));
  ASSERT_EQ(out[0].shape(),
            (std::vector<int64_t>{1, spec.out_channels, oh, ow}));
  const int taps = spec.in_channels * spec.kernel * spec.kernel;
  double max_err = 0.0, max_excess = -1e9;
  int64_t within_one = 0, total = 0;
  for (int oc = 0; oc < spec.out_channels; ++oc) {
    const double s_w = sw[sw.size() == 1 ? 0 : oc];
    for (int64_t y = 0; y < oh; ++y) {
      for (int64_t xo = 0; xo < ow; ++xo) {
        double acc = bias[oc] * static_cast<double>(sx) * s_w;
        double abs_sum = 0;
        for (int k = 0; k < taps; ++k) {
          const int ic = k / (spec.kernel * spec.kernel);
          const int kh = (k / spec.kernel) % spec.kernel, kw = k % spec.kernel;
          const int64_t ih = y * spec.stride + kh - spec.pad;
          const int64_t iw = xo * spec.stride + kw - spec.pad;
          int xv = zx;
          if (ih >= 0 && ih < spec.input_h && iw >= 0 && iw < spec.input_w) {
            xv = x.bytes()[(ic * spec.input_h + ih) * spec.input_w + iw];
          }
          const int wv = static_cast<int8_t>(wraw[oc * taps + k]);
          acc += (xv - zx) * static_cast<double>(sx) * (wv * s_w);
          abs_sum += std::abs(xv - zx);
        }
        double want = acc / sy + zy;
        want = std::clamp(want, c.relu ? static_cast<double>(zy) : 0.0, 255.0);
        const int got = out[0].bytes()[(oc * oh + y) * ow + xo];
        const double err = std::fabs(got - want);
        const double bound =
            0.5 + (0.5 * abs_sum + 0.5) / std::ldexp(1.0, p.shift[oc]) + 1e-6;
        max_err = std::max(max_err, err);
        max_excess = std::max(max_excess, err - bound);
        within_one += std::fabs(got - std::nearbyint(want)) <= 1.0 ? 1 : 0;
        ++total;
        ASSERT_LE(err, bound) << "channel " << oc << " at " << y << "," << xo;
      }
    }
  }
  std::printf(
      "[ conv vs float ] per_channel=%d relu=%d shift_group=%d: max |err| "
      "%.3f LSB, %.2f%% within 1 LSB of round(float)\n",
      c.per_channel, c.relu, c.shift_group, max_err,
      100.0 * within_one / total);
}

INSTANTIATE_TEST_SUITE_P(Stem, ConvVsFloatTest,
                         ::testing::Values(FloatConvCase{true, false, 16},
                                           FloatConvCase{true, true, 16},
                                           FloatConvCase{true, false, 1},
                                           FloatConvCase{false, false, 16}));

}  // namespace
}  // namespace vtaserve::engine
