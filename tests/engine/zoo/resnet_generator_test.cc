#include "engine/zoo/resnet_generator.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/zoo/float_resnet.h"
#include "engine/zoo/zoo_internal.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace vtaserve::zoo {
namespace {

using ::testing::HasSubstr;
using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::StatusIs;

std::map<std::string, int> OpCounts(const onnx::ModelProto& m) {
  std::map<std::string, int> counts;
  for (const auto& n : m.graph().node()) ++counts[n.op_type()];
  return counts;
}

const onnx::NodeProto* FindNode(const onnx::ModelProto& m,
                                const std::string& name) {
  for (const auto& n : m.graph().node()) {
    if (n.name() == name) return &n;
  }
  return nullptr;
}

const onnx::TensorProto* FindInitializer(const onnx::ModelProto& m,
                                         const std::string& name) {
  for (const auto& t : m.graph().initializer()) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

template <typename T>
std::vector<T> RawValues(const onnx::TensorProto& t) {
  std::vector<T> v(t.raw_data().size() / sizeof(T));
  std::memcpy(v.data(), t.raw_data().data(), v.size() * sizeof(T));
  return v;
}

std::vector<int64_t> Dims(const onnx::ValueInfoProto& info) {
  std::vector<int64_t> dims;
  for (const auto& d : info.type().tensor_type().shape().dim()) {
    dims.push_back(d.dim_value());
  }
  return dims;
}

int ConvCount(int depth) {
  // stem + convs per block * blocks + downsamples.
  switch (depth) {
    case 18:
      return 1 + 2 * 8 + 3;
    case 34:
      return 1 + 2 * 16 + 3;
    default:
      return 1 + 3 * 16 + 4;
  }
}

// ---- every variant passes the checker and has the documented interface ----

using VariantParam = std::tuple<ModelFormat, bool /*uint8*/,
                                bool /*explicit_relu*/, bool /*softmax*/>;

class ResNetVariantTest : public ::testing::TestWithParam<VariantParam> {};

TEST_P(ResNetVariantTest, PassesCheckerWithDocumentedInterface) {
  const auto [format, uint8, explicit_relu, softmax] = GetParam();
  ResNetSpec spec;
  spec.input_size = 32;
  spec.num_classes = 10;
  spec.format = format;
  spec.uint8_activations = uint8;
  spec.explicit_relu = explicit_relu;
  spec.softmax = softmax;
  spec.calibration_images = 1;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto m, GenerateResNet(spec));
  EXPECT_THAT(CheckModel(m), IsOk());

  ASSERT_EQ(m.graph().input_size(), 1);
  EXPECT_EQ(m.graph().input(0).name(), "input");
  EXPECT_EQ(m.graph().input(0).type().tensor_type().elem_type(),
            onnx::TensorProto::FLOAT);
  EXPECT_THAT(Dims(m.graph().input(0)), ::testing::ElementsAre(1, 3, 32, 32));
  ASSERT_EQ(m.graph().output_size(), 1);
  EXPECT_EQ(m.graph().output(0).name(), softmax ? "probabilities" : "logits");
  EXPECT_THAT(Dims(m.graph().output(0)), ::testing::ElementsAre(1, 10));

  const std::map<std::string, int> ops = OpCounts(m);
  for (const char* name :
       {"conv1", "maxpool", "layer1.0.conv1", "layer2.0.downsample",
        "layer4.1.add", "avgpool", "flatten", "fc"}) {
    EXPECT_NE(FindNode(m, name), nullptr) << name;
  }
  const int relus_expected = 1 + 8 + 8;  // stem, block conv1s, block adds
  const bool relu_nodes =
      format == ModelFormat::kFloat || explicit_relu || !uint8;
  auto count = [&](const char* op) {
    auto it = ops.find(op);
    return it == ops.end() ? 0 : it->second;
  };
  EXPECT_EQ(count("Relu"), relu_nodes ? relus_expected : 0);
  EXPECT_EQ(count("Softmax"), softmax ? 1 : 0);
  switch (format) {
    case ModelFormat::kFloat:
      EXPECT_EQ(count("Conv"), 20);
      EXPECT_EQ(count("Gemm"), 1);
      EXPECT_EQ(count("QuantizeLinear"), 0);
      break;
    case ModelFormat::kQdq:
      EXPECT_EQ(count("Conv"), 20);
      EXPECT_EQ(count("Gemm"), 1);
      EXPECT_EQ(count("Add"), 8);
      EXPECT_EQ(count("QLinearConv"), 0);
      EXPECT_GT(count("DequantizeLinear"), count("QuantizeLinear"));
      break;
    case ModelFormat::kQOperator:
      EXPECT_EQ(count("QLinearConv"), 20);
      EXPECT_EQ(count("QLinearAdd"), 8);
      EXPECT_EQ(count("QLinearGlobalAveragePool"), 1);
      EXPECT_EQ(count("QGemm"), 1);
      EXPECT_EQ(count("Conv"), 0);
      EXPECT_EQ(FindNode(m, "fc")->domain(), "com.microsoft");
      break;
  }
  // The input quantizer: uint8 zero point 128, or int8 zero point 0.
  if (format != ModelFormat::kFloat) {
    const onnx::TensorProto* zp = FindInitializer(m, "input_zero_point");
    ASSERT_NE(zp, nullptr);
    if (uint8) {
      EXPECT_EQ(zp->data_type(), onnx::TensorProto::UINT8);
      EXPECT_EQ(RawValues<uint8_t>(*zp)[0], 128);
    } else {
      EXPECT_EQ(zp->data_type(), onnx::TensorProto::INT8);
      EXPECT_EQ(RawValues<int8_t>(*zp)[0], 0);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Formats, ResNetVariantTest,
    ::testing::Values(VariantParam{ModelFormat::kFloat, true, false, false},
                      VariantParam{ModelFormat::kFloat, true, false, true},
                      VariantParam{ModelFormat::kQdq, true, false, false},
                      VariantParam{ModelFormat::kQdq, true, true, false},
                      VariantParam{ModelFormat::kQdq, true, false, true},
                      VariantParam{ModelFormat::kQdq, false, false, false},
                      VariantParam{ModelFormat::kQOperator, true, false, false},
                      VariantParam{ModelFormat::kQOperator, true, false, true},
                      VariantParam{ModelFormat::kQOperator, false, false,
                                   false}));

// ---- sizes and depths ----

class ResNet18SizeTest : public ::testing::TestWithParam<int> {};

TEST_P(ResNet18SizeTest, GeneratesAtInputSize) {
  ResNetSpec spec;
  spec.input_size = GetParam();
  spec.calibration_images = 1;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto m, GenerateResNet(spec));
  EXPECT_THAT(Dims(m.graph().input(0)),
              ::testing::ElementsAre(1, 3, GetParam(), GetParam()));
  EXPECT_THAT(Dims(m.graph().output(0)), ::testing::ElementsAre(1, 1000));
  EXPECT_EQ(OpCounts(m)["Conv"], 20);
}

INSTANTIATE_TEST_SUITE_P(Sizes, ResNet18SizeTest,
                         ::testing::Values(32, 33, 64, 224));

TEST(ResNetGeneratorTest, ResNet50HasBottlenecksWithStrideOnThe3x3) {
  ResNetSpec spec;
  spec.depth = 50;
  spec.input_size = 64;
  spec.num_classes = 100;
  spec.format = ModelFormat::kQOperator;
  spec.calibration_images = 1;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto m, GenerateResNet(spec));
  EXPECT_EQ(OpCounts(m)["QLinearConv"], ConvCount(50));
  EXPECT_EQ(OpCounts(m)["QLinearAdd"], 16);
  auto stride_of = [&](const std::string& name) {
    const onnx::NodeProto* n = FindNode(m, name);
    EXPECT_NE(n, nullptr) << name;
    if (n == nullptr) return int64_t{-1};
    for (const auto& a : n->attribute()) {
      if (a.name() == "strides") return a.ints(0);
    }
    return int64_t{-1};
  };
  EXPECT_EQ(stride_of("layer2.0.conv1"), 1);  // 1x1
  EXPECT_EQ(stride_of("layer2.0.conv2"), 2);  // 3x3 (v1.5)
  EXPECT_EQ(stride_of("layer2.0.downsample"), 2);
  EXPECT_EQ(stride_of("layer1.0.downsample"), 1);  // 64 -> 256 channels
  const onnx::TensorProto* w = FindInitializer(m, "fc.weight_quantized");
  ASSERT_NE(w, nullptr);
  EXPECT_THAT(w->dims(), ::testing::ElementsAre(100, 2048));
}

TEST(ResNetGeneratorTest, ResNet34HasThirtySixConvs) {
  ResNetSpec spec;
  spec.depth = 34;
  spec.input_size = 32;
  spec.num_classes = 10;
  spec.format = ModelFormat::kFloat;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto m, GenerateResNet(spec));
  EXPECT_EQ(OpCounts(m)["Conv"], ConvCount(34));
}

// ---- determinism ----

TEST(ResNetGeneratorTest, SameSeedGivesSameBytes) {
  ResNetSpec spec;
  spec.input_size = 48;
  spec.num_classes = 16;
  for (ModelFormat f : {ModelFormat::kQdq, ModelFormat::kQOperator}) {
    spec.format = f;
    VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto a, GenerateResNet(spec));
    VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto b, GenerateResNet(spec));
    EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString())
        << ModelFormatName(f);
  }
}

TEST(ResNetGeneratorTest, DifferentSeedsGiveDifferentWeights) {
  ResNetSpec spec;
  spec.input_size = 32;
  spec.num_classes = 16;
  spec.calibration_images = 1;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto a, GenerateResNet(spec));
  spec.seed = 2;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto b, GenerateResNet(spec));
  const onnx::TensorProto* wa = FindInitializer(a, "conv1.weight_quantized");
  const onnx::TensorProto* wb = FindInitializer(b, "conv1.weight_quantized");
  ASSERT_NE(wa, nullptr);
  ASSERT_NE(wb, nullptr);
  EXPECT_NE(wa->raw_data(), wb->raw_data());
}

// ---- weights and calibration are realistic ----

class QuantizedWeightsTest : public ::testing::TestWithParam<int> {};

// weight_bits 8: [-127, 127]; 7 (reduce_range): [-63, 63].
TEST_P(QuantizedWeightsTest, UseTheFullSymmetricRangePerChannel) {
  const int weight_bits = GetParam();
  const int qmax = weight_bits == 7 ? 63 : 127;
  ResNetSpec spec;
  spec.weight_bits = weight_bits;
  spec.input_size = 32;
  spec.num_classes = 10;
  spec.calibration_images = 1;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto m, GenerateResNet(spec));
  const onnx::TensorProto* w =
      FindInitializer(m, "layer1.0.conv1.weight_quantized");
  const onnx::TensorProto* s =
      FindInitializer(m, "layer1.0.conv1.weight_scale");
  ASSERT_NE(w, nullptr);
  ASSERT_NE(s, nullptr);
  const std::vector<int8_t> q = RawValues<int8_t>(*w);
  const std::vector<float> scales = RawValues<float>(*s);
  ASSERT_EQ(scales.size(), 64u);
  const size_t per = q.size() / 64;
  for (size_t c = 0; c < 64; ++c) {
    int peak = 0;
    for (size_t i = 0; i < per; ++i)
      peak = std::max(peak, std::abs(q[c * per + i]));
    EXPECT_EQ(peak, qmax) << "channel " << c;  // symmetric per-channel max
  }
  // Per-channel scales really vary (data-dependent BN folded).
  const auto [lo, hi] = std::minmax_element(scales.begin(), scales.end());
  EXPECT_GT(*hi / *lo, 1.5f);
  // Bias scale = input scale * weight scale, zero point 0.
  const onnx::TensorProto* bs = FindInitializer(m, "layer1.0.conv1.bias_scale");
  const onnx::TensorProto* in_scale = FindInitializer(m, "maxpool_out_scale");
  ASSERT_NE(bs, nullptr);
  ASSERT_NE(in_scale, nullptr);
  const float sx = RawValues<float>(*in_scale)[0];
  const std::vector<float> bias_scales = RawValues<float>(*bs);
  for (size_t c = 0; c < 64; ++c) {
    EXPECT_FLOAT_EQ(bias_scales[c], sx * scales[c]);
  }
}

INSTANTIATE_TEST_SUITE_P(Bits, QuantizedWeightsTest, ::testing::Values(8, 7));

TEST(ConvGeneratorTest, ReduceRangeWeightsStayWithin63) {
  ConvSpec spec;  // the 7x7/s2/p3 stem
  spec.input_h = spec.input_w = 32;
  spec.weight_bits = 7;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto m, GenerateConv(spec));
  const onnx::TensorProto* w = FindInitializer(m, "conv.weight_quantized");
  ASSERT_NE(w, nullptr);
  int peak = 0;
  for (int8_t v : RawValues<int8_t>(*w))
    peak = std::max(peak, std::abs(int{v}));
  EXPECT_EQ(peak, 63);
}

TEST(ResNetGeneratorTest, CalibrationRangesAreNotDegenerate) {
  ResNetSpec spec;
  spec.input_size = 64;
  VTASERVE_ASSERT_OK_AND_ASSIGN(FloatResNet net, BuildFloatResNet(spec));
  Calibration cal;
  for (int i = 0; i < 2; ++i) {
    RunFloatResNet(net, CalibrationImage(spec.seed, i, spec.input_size), &cal);
  }
  ASSERT_EQ(cal.ranges.size(), 1u + 16u + 3u + 8u + 2u);
  for (const auto& [name, r] : cal.ranges) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(std::isfinite(r.min) && std::isfinite(r.max));
    EXPECT_LE(r.min, r.lo);
    EXPECT_LT(r.lo, r.hi);
    EXPECT_LE(r.hi, r.max);
    // Nothing is dead: a good share of each tensor survives the ReLU.
    EXPECT_GT(r.nonzero_fraction, 0.1);
    // Ranges stay in a sane band through the depth of the network.
    EXPECT_GT(r.hi, 0.05f);
    EXPECT_LT(r.max, 1000.0f);
  }
}

TEST(ResNetGeneratorTest, ActivationScalesAreFinitePositiveAndUsed) {
  ResNetSpec spec;
  spec.input_size = 64;
  spec.num_classes = 100;
  spec.format = ModelFormat::kQOperator;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto m, GenerateResNet(spec));
  int checked = 0;
  for (const auto& t : m.graph().initializer()) {
    const std::string& n = t.name();
    if (n.size() < 10 || n.compare(n.size() - 10, 10, "_out_scale") != 0) {
      continue;
    }
    const float s = RawValues<float>(t)[0];
    EXPECT_TRUE(std::isfinite(s) && s > 1e-4f && s < 1.0f) << n << " " << s;
    ++checked;
  }
  EXPECT_EQ(checked, 20 + 8 + 2);  // convs, adds, avgpool, fc
}

TEST(ResNetGeneratorTest, LogitsDependOnTheImage) {
  ResNetSpec spec;
  spec.input_size = 64;
  spec.num_classes = 100;
  VTASERVE_ASSERT_OK_AND_ASSIGN(FloatResNet net, BuildFloatResNet(spec));
  std::vector<std::vector<float>> logits;
  for (int i = 0; i < 2; ++i) {
    logits.push_back(
        RunFloatResNet(net, PrototypeImage(spec.seed, i, 64), nullptr));
  }
  double dot = 0, n0 = 0, n1 = 0, mean = 0, sq = 0;
  for (int c = 0; c < 100; ++c) {
    dot += logits[0][c] * logits[1][c];
    n0 += logits[0][c] * logits[0][c];
    n1 += logits[1][c] * logits[1][c];
    mean += logits[0][c] / 100;
  }
  for (int c = 0; c < 100; ++c)
    sq += (logits[0][c] - mean) * (logits[0][c] - mean);
  const double std_dev = std::sqrt(sq / 100);
  // Not the same ranking for every input, and a classifier-like spread.
  EXPECT_LT(dot / std::sqrt(n0 * n1), 0.9);
  EXPECT_GT(std_dev, 1.0);
  EXPECT_LT(std_dev, 10.0);
}

// The classifier is nearest-prototype (see BuildFloatResNet): each prototype
// image gets its own class with a clear margin, and a noisy one still does.
TEST(ResNetGeneratorTest, PrototypesGetTheirOwnClassWithAClearMargin) {
  ResNetSpec spec;
  spec.input_size = 64;
  spec.num_classes = 1000;
  VTASERVE_ASSERT_OK_AND_ASSIGN(FloatResNet net, BuildFloatResNet(spec));
  ASSERT_EQ(NumPrototypes(spec.num_classes), kMaxPrototypes);
  EXPECT_EQ(NumPrototypes(3), 3);
  for (int p = 0; p < kMaxPrototypes; ++p) {
    for (const float blend : {0.0f, 0.3f}) {
      std::vector<float> img = PrototypeImage(spec.seed, p, 64);
      const std::vector<float> other = CalibrationImage(9, p, 64);
      for (size_t i = 0; i < img.size(); ++i) {
        img[i] = (1 - blend) * img[i] + blend * other[i];
      }
      std::vector<float> logits = RunFloatResNet(net, img, nullptr);
      const int top =
          std::max_element(logits.begin(), logits.end()) - logits.begin();
      EXPECT_EQ(top, p) << "blend " << blend;
      const float best = logits[top];
      logits[top] = -1e30f;
      const float second = *std::max_element(logits.begin(), logits.end());
      std::printf("prototype %d blend %.1f: top logit %.2f margin %.2f\n", p,
                  blend, best, best - second);
      if (blend == 0.0f) {
        EXPECT_GT(best - second, 1.0f) << "prototype " << p;
      }
    }
  }
}

TEST(ResNetGeneratorTest, CalibrationImagesAreSmoothAndInRange) {
  const std::vector<float> img = CalibrationImage(1, 0, 64);
  ASSERT_EQ(img.size(), 3u * 64 * 64);
  double neighbour_diff = 0, spread = 0, mean = 0;
  for (float v : img) mean += v;
  mean /= img.size();
  for (size_t i = 0; i < img.size(); ++i) {
    EXPECT_GE(img[i], -2.2f);
    EXPECT_LE(img[i], 2.7f);
    spread += std::fabs(img[i] - mean);
    if (i % 64 != 63) neighbour_diff += std::fabs(img[i + 1] - img[i]);
  }
  // Neighbouring pixels are much closer than in white noise (where the
  // ratio is about sqrt(2)).
  EXPECT_LT(neighbour_diff / img.size(), 0.5 * spread / img.size());
  EXPECT_NE(CalibrationImage(1, 1, 64), img);
  EXPECT_EQ(CalibrationImage(1, 0, 64), img);
}

// ---- bad specs ----

TEST(ResNetGeneratorTest, RejectsBadSpecs) {
  auto expect_bad = [](ResNetSpec spec, const char* what) {
    EXPECT_THAT(GenerateResNet(spec),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(what)));
  };
  ResNetSpec s;
  s.depth = 19;
  expect_bad(s, "depth");
  s = ResNetSpec();
  s.input_size = 7;
  expect_bad(s, "input size");
  s = ResNetSpec();
  s.input_size = 5000;
  expect_bad(s, "input size");
  s = ResNetSpec();
  s.num_classes = 0;
  expect_bad(s, "num_classes");
  s = ResNetSpec();
  s.calibration_images = 0;
  expect_bad(s, "calibration_images");
  s = ResNetSpec();
  s.format = ModelFormat::kQOperator;
  s.explicit_relu = true;
  expect_bad(s, "explicit_relu");
  s = ResNetSpec();
  s.weight_bits = 6;
  expect_bad(s, "weight_bits");
}

TEST(ModelFormatTest, ParsesNamesAndRejectsOthers) {
  EXPECT_EQ(*ParseModelFormat("qdq"), ModelFormat::kQdq);
  EXPECT_EQ(*ParseModelFormat("qoperator"), ModelFormat::kQOperator);
  EXPECT_EQ(*ParseModelFormat("float"), ModelFormat::kFloat);
  EXPECT_THAT(ParseModelFormat("QDQ"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// ---- single conv models ----

TEST(ConvGeneratorTest, QOperatorIsOneQLinearConv) {
  ConvSpec spec;  // the 7x7/s2/p3 stem
  spec.input_h = spec.input_w = 64;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto m, GenerateConv(spec));
  ASSERT_EQ(m.graph().node_size(), 1);
  EXPECT_EQ(m.graph().node(0).op_type(), "QLinearConv");
  EXPECT_EQ(m.graph().input(0).type().tensor_type().elem_type(),
            onnx::TensorProto::UINT8);
  EXPECT_THAT(Dims(m.graph().output(0)), ::testing::ElementsAre(1, 64, 32, 32));
  const onnx::TensorProto* ws = FindInitializer(m, "conv.weight_scale");
  ASSERT_NE(ws, nullptr);
  EXPECT_THAT(ws->dims(), ::testing::ElementsAre(64));
}

TEST(ConvGeneratorTest, QdqWithReluInt8PerTensor) {
  ConvSpec spec;
  spec.in_channels = 16;
  spec.out_channels = 32;
  spec.input_h = 9;
  spec.input_w = 11;
  spec.kernel = 3;
  spec.stride = 1;
  spec.pad = 1;
  spec.format = ModelFormat::kQdq;
  spec.uint8_input = false;
  spec.input_zero_point = -3;
  spec.relu = true;
  spec.explicit_relu = true;
  spec.per_channel = false;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto m, GenerateConv(spec));
  std::vector<std::string> ops;
  for (const auto& n : m.graph().node()) ops.push_back(n.op_type());
  EXPECT_THAT(ops, ::testing::ElementsAre(
                       "DequantizeLinear", "DequantizeLinear",
                       "DequantizeLinear", "Conv", "Relu", "QuantizeLinear"));
  EXPECT_EQ(m.graph().output(0).type().tensor_type().elem_type(),
            onnx::TensorProto::INT8);
  EXPECT_THAT(Dims(m.graph().output(0)), ::testing::ElementsAre(1, 32, 9, 11));
  const onnx::TensorProto* ws = FindInitializer(m, "conv.weight_scale");
  ASSERT_NE(ws, nullptr);
  EXPECT_EQ(ws->dims_size(), 0);  // per-tensor scalar
  const onnx::TensorProto* zp = FindInitializer(m, "output_zero_point");
  ASSERT_NE(zp, nullptr);
  EXPECT_EQ(RawValues<int8_t>(*zp)[0], -128);  // ReLU output: qmin
}

TEST(ConvGeneratorTest, RejectsBadSpecs) {
  auto expect_bad = [](ConvSpec spec) {
    EXPECT_THAT(GenerateConv(spec),
                StatusIs(absl::StatusCode::kInvalidArgument));
  };
  ConvSpec s;
  s.kernel = 0;
  expect_bad(s);
  s = ConvSpec();
  s.weight_bits = 9;
  expect_bad(s);
  s = ConvSpec();
  s.pad = 7;
  expect_bad(s);
  s = ConvSpec();
  s.stride = 0;
  expect_bad(s);
  s = ConvSpec();
  s.input_h = 2;  // 7x7 kernel does not fit 2 + 2*3 = 8? it does; use pad 0
  s.pad = 0;
  expect_bad(s);
  s = ConvSpec();
  s.input_zero_point = 300;
  expect_bad(s);
  s = ConvSpec();
  s.uint8_input = false;  // zero point 128 does not fit int8
  expect_bad(s);
  s = ConvSpec();
  s.in_channels = 0;
  expect_bad(s);
  s = ConvSpec();
  s.input_scale = -1.0f;
  expect_bad(s);
}

// ---- the float conv of the calibration pass ----

class Conv2DTest
    : public ::testing::TestWithParam<std::tuple<int, int, int, int>> {};

TEST_P(Conv2DTest, MatchesNaiveConvolution) {
  const auto [in_ch, out_ch, kernel, stride] = GetParam();
  FloatConv c;
  c.in_channels = in_ch;
  c.out_channels = out_ch;
  c.kernel = kernel;
  c.stride = stride;
  c.pad = kernel / 2;
  internal::Rng rng(3);
  c.weights.resize(static_cast<size_t>(out_ch) * in_ch * kernel * kernel);
  for (float& w : c.weights) w = static_cast<float>(rng.Normal());
  c.bias.resize(out_ch);
  for (float& b : c.bias) b = static_cast<float>(rng.Normal());
  const int h = 13, w = 17;  // output pixels not a multiple of the tile
  std::vector<float> x(static_cast<size_t>(in_ch) * h * w);
  for (float& v : x) v = static_cast<float>(rng.Normal());
  const int oh = internal::ConvOutSize(h, kernel, stride, c.pad);
  const int ow = internal::ConvOutSize(w, kernel, stride, c.pad);
  std::vector<float> y(static_cast<size_t>(out_ch) * oh * ow);
  internal::Conv2D(c, x.data(), h, w, y.data());
  for (int o = 0; o < out_ch; ++o) {
    for (int i = 0; i < oh; ++i) {
      for (int j = 0; j < ow; ++j) {
        double acc = c.bias[o];
        for (int ic = 0; ic < in_ch; ++ic) {
          for (int kh = 0; kh < kernel; ++kh) {
            for (int kw = 0; kw < kernel; ++kw) {
              const int ih = i * stride + kh - c.pad;
              const int iw = j * stride + kw - c.pad;
              if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
              acc += static_cast<double>(
                         c.weights[((o * in_ch + ic) * kernel + kh) * kernel +
                                   kw]) *
                     x[(ic * h + ih) * w + iw];
            }
          }
        }
        ASSERT_NEAR(y[(o * oh + i) * ow + j], acc, 1e-4 * (1 + std::fabs(acc)))
            << o << "," << i << "," << j;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Conv2DTest,
                         ::testing::Values(std::make_tuple(3, 5, 7, 2),
                                           std::make_tuple(8, 9, 3, 1),
                                           std::make_tuple(8, 4, 3, 2),
                                           std::make_tuple(6, 7, 1, 1),
                                           std::make_tuple(6, 7, 1, 2)));

// ---- writing ----

TEST(WriteModelTest, WritesBytesThatParseBack) {
  ConvSpec spec;
  spec.input_h = spec.input_w = 16;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto m, GenerateConv(spec));
  const std::string path = ::testing::TempDir() + "/zoo_conv.onnx";
  ASSERT_THAT(WriteModel(m, path), IsOk());
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  onnx::ModelProto back;
  ASSERT_TRUE(back.ParseFromString(ss.str()));
  EXPECT_EQ(back.SerializeAsString(), m.SerializeAsString());
  std::remove(path.c_str());
}

TEST(WriteModelTest, RejectsInvalidModelAndUnwritablePath) {
  onnx::ModelProto bad;  // no graph, no opset
  EXPECT_THAT(WriteModel(bad, ::testing::TempDir() + "/bad.onnx"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ConvSpec spec;
  spec.input_h = spec.input_w = 16;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto m, GenerateConv(spec));
  EXPECT_THAT(WriteModel(m, "/nonexistent-dir/x/model.onnx"),
              StatusIs(absl::StatusCode::kInternal));
}

}  // namespace
}  // namespace vtaserve::zoo
