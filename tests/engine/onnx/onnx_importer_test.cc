// ONNX importer: every supported pattern in both quantized forms (QOperator
// and QDQ), checked against a float computation of the same model and against
// each other; every rejection with its status code; fuzzed inputs.
#include "engine/onnx/onnx_importer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/graph.h"
#include "engine/zoo/onnx_builder.h"
#include "engine/zoo/resnet_generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/onnx/onnx_test_util.h"
#include "tests/testing/status_matchers.h"

namespace vtaserve::engine {
namespace {

using ::testing::HasSubstr;
using ::vtaserve::engine::testing::CountOps;
using ::vtaserve::engine::testing::NextRandom;
using ::vtaserve::engine::testing::RandomTensor;
using ::vtaserve::engine::testing::RunOnReference;
using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::StatusIs;
using ::vtaserve::zoo::IntAttr;
using ::vtaserve::zoo::IntsAttr;
using ::vtaserve::zoo::OnnxGraphBuilder;
using ::vtaserve::zoo::StringAttr;
using TP = onnx::TensorProto;

enum class Form { kQOperator, kQdq };

std::string FormName(Form f) { return f == Form::kQdq ? "Qdq" : "QOperator"; }

// Quantization of one activation tensor, in its own (u8 or s8) domain.
struct Q {
  float scale;
  int zp;
  bool u8;
  TP::DataType type() const { return u8 ? TP::UINT8 : TP::INT8; }
  int qmin() const { return u8 ? 0 : -128; }
  int qmax() const { return u8 ? 255 : 127; }
};

void AddQ(OnnxGraphBuilder& b, const std::string& name, const Q& q) {
  b.AddFloatScalar(name + "_scale", q.scale);
  b.AddZeroPointScalar(name + "_zp", q.type(), q.zp);
}

// Reads element i of a quantized tensor as its own-domain integer.
int QAt(const Tensor& t, int64_t i) {
  return t.dtype() == DataType::kUInt8 ? int{t.bytes()[i]}
                                       : int{t.data<int8_t>()[i]};
}

std::vector<int> RandomInts(size_t n, int lo, int hi, uint64_t seed) {
  std::vector<int> v(n);
  uint64_t s = seed;
  for (int& x : v) x = lo + static_cast<int>(NextRandom(s) % (hi - lo + 1));
  return v;
}

// ---------------------------------------------------------------------------
// Conv: groups, dilation, auto_pad, asymmetric pads, weight zero points.

struct ConvCase {
  std::string name;
  int c = 4, m = 6, h = 9, w = 8, k = 3;
  int group = 1, stride = 1, dilation = 1;
  std::vector<int64_t> pads = {1, 1, 1, 1};
  std::string auto_pad;  // empty: NOTSET with `pads`
  Q x{0.05f, 128, true};
  Q y{0.11f, 120, true};
  bool per_channel = true;
  bool u8_weights = false;
  bool nonzero_weight_zp = false;
  bool bias = true;
  bool relu = false;          // QDQ: Relu before Q; QOperator: none
  bool explicit_relu = true;  // QDQ: a Relu node (else implied by Q range)
};

struct ConvData {
  std::vector<int> w;         // [m][c/g][k][k], own domain
  std::vector<float> ws;      // per channel or 1
  std::vector<int> wz;        // per channel or 1
  std::vector<int32_t> bias;  // [m]
};

ConvData MakeConvData(const ConvCase& c, uint64_t seed) {
  ConvData d;
  const int cg = c.c / c.group;
  const size_t n = static_cast<size_t>(c.m) * cg * c.k * c.k;
  const int nq = c.per_channel ? c.m : 1;
  d.w = c.u8_weights ? RandomInts(n, 0, 255, seed)
                     : RandomInts(n, -127, 127, seed);
  for (int i = 0; i < nq; ++i) {
    d.ws.push_back(0.002f + 0.0007f * static_cast<float>((i * 7) % 11));
    int z = c.u8_weights ? 128 : 0;
    if (c.nonzero_weight_zp) z += (i % 5) - 2;
    d.wz.push_back(z);
  }
  d.bias.clear();
  for (int32_t b : RandomInts(c.m, -3000, 3000, seed + 1)) d.bias.push_back(b);
  return d;
}

onnx::ModelProto BuildConv(const ConvCase& c, const ConvData& d, Form form) {
  OnnxGraphBuilder b("conv_" + c.name);
  const int cg = c.c / c.group;
  const std::vector<int64_t> wdims = {c.m, cg, c.k, c.k};
  AddQ(b, "x", c.x);
  AddQ(b, "y", c.y);
  const TP::DataType wt = c.u8_weights ? TP::UINT8 : TP::INT8;
  const std::vector<int64_t> sdims =
      c.per_channel ? std::vector<int64_t>{c.m} : std::vector<int64_t>{};
  if (c.u8_weights) {
    std::vector<uint8_t> w(d.w.begin(), d.w.end()), z(d.wz.begin(), d.wz.end());
    b.AddUInt8Initializer("w", wdims, w);
    b.AddUInt8Initializer("w_zp", sdims, z);
  } else {
    std::vector<int8_t> w(d.w.begin(), d.w.end()), z(d.wz.begin(), d.wz.end());
    b.AddInt8Initializer("w", wdims, w);
    b.AddInt8Initializer("w_zp", sdims, z);
  }
  (void)wt;
  b.AddFloatInitializer("w_scale", sdims, d.ws);
  b.AddInt32Initializer("b", {c.m}, d.bias);
  std::vector<onnx::AttributeProto> attrs = {
      IntsAttr("kernel_shape", {c.k, c.k}),
      IntsAttr("strides", {c.stride, c.stride}),
      IntsAttr("dilations", {c.dilation, c.dilation}),
      IntAttr("group", c.group)};
  if (c.auto_pad.empty()) {
    attrs.push_back(IntsAttr("pads", c.pads));
  } else {
    attrs.push_back(StringAttr("auto_pad", c.auto_pad));
  }
  b.AddInput("x", c.x.type(), {-1, c.c, c.h, c.w});
  b.AddOutput("y", c.y.type(), {});
  if (form == Form::kQOperator) {
    std::vector<std::string> in = {"x",       "x_scale", "x_zp",    "w",
                                   "w_scale", "w_zp",    "y_scale", "y_zp"};
    if (c.bias) in.push_back("b");
    b.AddNode("QLinearConv", "conv", in, {"y"}, attrs);
    return b.Build();
  }
  std::vector<float> bs;
  for (int i = 0; i < c.m; ++i) {
    bs.push_back(c.x.scale * d.ws[c.per_channel ? i : 0]);
  }
  b.AddFloatInitializer("b_scale", {c.m}, bs);
  b.AddInt32Initializer("b_zp", {c.m}, std::vector<int32_t>(c.m, 0));
  b.AddNode("DequantizeLinear", "x_dq", {"x", "x_scale", "x_zp"}, {"xf"});
  std::vector<onnx::AttributeProto> axis0;
  if (c.per_channel) axis0.push_back(IntAttr("axis", 0));
  b.AddNode("DequantizeLinear", "w_dq", {"w", "w_scale", "w_zp"}, {"wf"},
            axis0);
  b.AddNode("DequantizeLinear", "b_dq", {"b", "b_scale", "b_zp"}, {"bf"},
            {IntAttr("axis", 0)});
  std::vector<std::string> in = {"xf", "wf"};
  if (c.bias) in.push_back("bf");
  b.AddNode("Conv", "conv", in, {"cf"}, attrs);
  std::string last = "cf";
  if (c.relu && c.explicit_relu) {
    b.AddNode("Relu", "relu", {"cf"}, {"rf"});
    last = "rf";
  }
  b.AddNode("QuantizeLinear", "y_q", {last, "y_scale", "y_zp"}, {"y"});
  return b.Build();
}

// Float oracle: returns, per output element, the exact real-valued quantized
// result (before rounding) and sum |x - zx| over its taps.
void FloatConv(const ConvCase& c, const ConvData& d, const Tensor& x, int pt,
               int pl, int64_t oh, int64_t ow, std::vector<double>& want,
               std::vector<double>& abs_sum) {
  const int cg = c.c / c.group, mg = c.m / c.group;
  want.assign(static_cast<size_t>(c.m) * oh * ow, 0);
  abs_sum.assign(want.size(), 0);
  for (int oc = 0; oc < c.m; ++oc) {
    const int qi = c.per_channel ? oc : 0;
    const int g = oc / mg;
    for (int64_t yy = 0; yy < oh; ++yy) {
      for (int64_t xx = 0; xx < ow; ++xx) {
        double acc = c.bias ? d.bias[oc] * double{c.x.scale} * d.ws[qi] : 0.0;
        double as = 0;
        for (int ci = 0; ci < cg; ++ci) {
          for (int kh = 0; kh < c.k; ++kh) {
            for (int kw = 0; kw < c.k; ++kw) {
              const int64_t ih = yy * c.stride + kh * c.dilation - pt;
              const int64_t iw = xx * c.stride + kw * c.dilation - pl;
              int xv = c.x.zp;
              if (ih >= 0 && ih < c.h && iw >= 0 && iw < c.w) {
                xv = QAt(x, ((g * cg + ci) * c.h + ih) * c.w + iw);
              }
              const int wv =
                  d.w[((oc * cg + ci) * c.k + kh) * c.k + kw] - d.wz[qi];
              acc +=
                  (xv - c.x.zp) * double{c.x.scale} * (wv * double{d.ws[qi]});
              as += std::abs(xv - c.x.zp);
            }
          }
        }
        double q = acc / c.y.scale + c.y.zp;
        q = std::clamp<double>(q, c.relu ? c.y.zp : c.y.qmin(), c.y.qmax());
        want[(oc * oh + yy) * ow + xx] = q;
        abs_sum[(oc * oh + yy) * ow + xx] = as;
      }
    }
  }
}

class ConvPatternTest
    : public ::testing::TestWithParam<std::tuple<ConvCase, Form>> {};

TEST_P(ConvPatternTest, MatchesFloatWithinRequantBound) {
  const ConvCase& c = std::get<0>(GetParam());
  const Form form = std::get<1>(GetParam());
  const ConvData d = MakeConvData(c, 99);
  const onnx::ModelProto model = BuildConv(c, d, form);
  VTASERVE_ASSERT_OK_AND_ASSIGN(ModelGraph g,
                                ImportOnnxModel(model, ImportOptions{}));
  ASSERT_EQ(CountOps(g, OpKind::kConv), 1);
  const ConvParams* p = nullptr;
  for (const Node& n : g.nodes) {
    if (n.op == OpKind::kConv) {
      p = &std::get<ConvParams>(n.params);
      EXPECT_EQ(n.name, "conv");
    }
  }
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->dilation_h, c.dilation);
  EXPECT_EQ(p->in_channels, c.c);
  const ConvParams params = *p;
  EXPECT_EQ(g.value(g.inputs[0]).name, "x");
  EXPECT_EQ(g.value(g.inputs[0]).dtype,
            c.x.u8 ? DataType::kUInt8 : DataType::kInt8);
  EXPECT_EQ(g.value(g.outputs[0]).name, "y");
  const std::vector<int64_t> out_shape = g.value(g.outputs[0]).shape;
  const int64_t oh = out_shape[2], ow = out_shape[3];

  Tensor x = RandomTensor(c.x.u8 ? DataType::kUInt8 : DataType::kInt8,
                          {1, c.c, c.h, c.w}, 3);
  VTASERVE_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> out,
                                RunOnReference(std::move(g), {&x}));
  std::vector<double> want, abs_sum;
  FloatConv(c, d, x, params.pad_top, params.pad_left, oh, ow, want, abs_sum);
  ASSERT_EQ(static_cast<int64_t>(want.size()), out[0].num_elements());
  for (size_t i = 0; i < want.size(); ++i) {
    const int oc = static_cast<int>(i / (oh * ow));
    const double bound =
        0.5 + (0.5 * abs_sum[i] + 0.5) / std::ldexp(1.0, params.shift[oc]) +
        1e-6;
    ASSERT_LE(std::fabs(QAt(out[0], i) - want[i]), bound) << "element " << i;
  }
}

std::vector<ConvCase> ConvCases() {
  std::vector<ConvCase> v;
  ConvCase base;
  base.name = "Basic";
  v.push_back(base);
  ConvCase c = base;
  c.name = "Groups2";
  c.group = 2;
  v.push_back(c);
  c = base;
  c.name = "Depthwise";
  c.m = 4;
  c.group = 4;
  v.push_back(c);
  c = base;
  c.name = "Dilation2";
  c.dilation = 2;
  c.pads = {2, 2, 2, 2};
  v.push_back(c);
  c = base;
  c.name = "AsymmetricPads";
  c.pads = {0, 1, 2, 0};
  c.stride = 2;
  v.push_back(c);
  for (const char* ap : {"SAME_UPPER", "SAME_LOWER", "VALID"}) {
    c = base;
    c.name = std::string(ap) == "SAME_UPPER"   ? "SameUpper"
             : std::string(ap) == "SAME_LOWER" ? "SameLower"
                                               : "Valid";
    c.auto_pad = ap;
    c.stride = 2;
    c.k = 4;
    v.push_back(c);
  }
  c = base;
  c.name = "PerTensorUint8WeightsWithZeroPoint";
  c.per_channel = false;
  c.u8_weights = true;
  v.push_back(c);
  c = base;
  c.name = "PerChannelNonzeroWeightZeroPoints";
  c.nonzero_weight_zp = true;
  v.push_back(c);
  c = base;
  c.name = "Int8Activations";
  c.x = Q{0.03f, -5, false};
  c.y = Q{0.09f, 3, false};
  v.push_back(c);
  c = base;
  c.name = "NoBias";
  c.bias = false;
  v.push_back(c);
  c = base;
  c.name = "FusedRelu";
  c.relu = true;
  c.y = Q{0.05f, 0, true};
  v.push_back(c);
  c.name = "ReluImpliedByRange";
  c.explicit_relu = false;
  v.push_back(c);
  c = base;
  c.name = "Strided5x5";
  c.k = 5;
  c.stride = 2;
  c.pads = {2, 2, 2, 2};
  c.h = 13;
  c.w = 11;
  v.push_back(c);
  return v;
}

std::string ConvCaseName(
    const ::testing::TestParamInfo<std::tuple<ConvCase, Form>>& i) {
  return std::get<0>(i.param).name + FormName(std::get<1>(i.param));
}

INSTANTIATE_TEST_SUITE_P(Patterns, ConvPatternTest,
                         ::testing::Combine(::testing::ValuesIn(ConvCases()),
                                            ::testing::Values(Form::kQOperator,
                                                              Form::kQdq)),
                         ConvCaseName);

// The QDQ form with a Relu is only a QOperator form when the output range
// already clamps; these must produce the same integers either way.
TEST(ConvPatternTest, QdqAndQOperatorGiveIdenticalIntegers) {
  for (const ConvCase& c : ConvCases()) {
    if (c.relu) continue;  // QOperator has no separate Relu in this builder
    const ConvData d = MakeConvData(c, 5);
    VTASERVE_ASSERT_OK_AND_ASSIGN(
        ModelGraph a,
        ImportOnnxModel(BuildConv(c, d, Form::kQOperator), ImportOptions{}));
    VTASERVE_ASSERT_OK_AND_ASSIGN(
        ModelGraph b,
        ImportOnnxModel(BuildConv(c, d, Form::kQdq), ImportOptions{}));
    Tensor x = RandomTensor(c.x.u8 ? DataType::kUInt8 : DataType::kInt8,
                            {1, c.c, c.h, c.w}, 17);
    VTASERVE_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> ya,
                                  RunOnReference(std::move(a), {&x}));
    VTASERVE_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> yb,
                                  RunOnReference(std::move(b), {&x}));
    ASSERT_EQ(ya[0].byte_size(), yb[0].byte_size());
    EXPECT_EQ(std::memcmp(ya[0].bytes(), yb[0].bytes(), ya[0].byte_size()), 0)
        << c.name;
  }
}

// ---------------------------------------------------------------------------
// Dense: QLinearMatMul / QGemm vs QDQ MatMul / Gemm.

struct DenseCase {
  std::string name;
  bool gemm;     // Gemm/QGemm (else MatMul/QLinearMatMul)
  bool trans_b;  // Gemm only
  bool per_channel;
  bool bias;  // Gemm only
};

onnx::ModelProto BuildDense(const DenseCase& c, Form form, int k, int n,
                            const std::vector<int>& w,
                            const std::vector<float>& ws,
                            const std::vector<int32_t>& bias, const Q& qx,
                            const Q& qy) {
  OnnxGraphBuilder b("dense_" + c.name);
  AddQ(b, "x", qx);
  AddQ(b, "y", qy);
  const std::vector<int64_t> wdims =
      c.trans_b ? std::vector<int64_t>{n, k} : std::vector<int64_t>{k, n};
  // w is given as [n][k]; lay it out as the op expects.
  std::vector<int8_t> wl(static_cast<size_t>(n) * k);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < k; ++j) {
      wl[c.trans_b ? i * k + j : j * n + i] = static_cast<int8_t>(w[i * k + j]);
    }
  }
  const std::vector<int64_t> sdims =
      c.per_channel ? std::vector<int64_t>{n} : std::vector<int64_t>{};
  b.AddInt8Initializer("w", wdims, wl);
  b.AddFloatInitializer("w_scale", sdims, ws);
  b.AddInt8Initializer("w_zp", sdims, std::vector<int8_t>(ws.size(), 0));
  b.AddInt32Initializer("b", {n}, bias);
  b.AddInput("x", qx.type(), {1, k});
  b.AddOutput("y", qy.type(), {1, n});
  const int out_axis = c.trans_b ? 0 : 1;
  if (form == Form::kQOperator) {
    if (c.gemm) {
      std::vector<std::string> in = {
          "x",    "x_scale",         "x_zp",    "w",   "w_scale",
          "w_zp", c.bias ? "b" : "", "y_scale", "y_zp"};
      b.AddNode("QGemm", "fc", in, {"y"},
                {IntAttr("transB", c.trans_b ? 1 : 0)}, zoo::kMsDomain);
    } else {
      b.AddNode(
          "QLinearMatMul", "fc",
          {"x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp"},
          {"y"});
    }
    return b.Build();
  }
  std::vector<float> bs;
  for (int i = 0; i < n; ++i)
    bs.push_back(qx.scale * ws[c.per_channel ? i : 0]);
  b.AddFloatInitializer("b_scale", {n}, bs);
  b.AddInt32Initializer("b_zp", {n}, std::vector<int32_t>(n, 0));
  b.AddNode("DequantizeLinear", "x_dq", {"x", "x_scale", "x_zp"}, {"xf"});
  std::vector<onnx::AttributeProto> axis;
  if (c.per_channel) axis.push_back(IntAttr("axis", out_axis));
  b.AddNode("DequantizeLinear", "w_dq", {"w", "w_scale", "w_zp"}, {"wf"}, axis);
  b.AddNode("DequantizeLinear", "b_dq", {"b", "b_scale", "b_zp"}, {"bf"},
            {IntAttr("axis", 0)});
  if (c.gemm) {
    std::vector<std::string> in = {"xf", "wf"};
    if (c.bias) in.push_back("bf");
    b.AddNode("Gemm", "fc", in, {"yf"}, {IntAttr("transB", c.trans_b ? 1 : 0)});
  } else {
    b.AddNode("MatMul", "fc", {"xf", "wf"}, {"yf"});
  }
  b.AddNode("QuantizeLinear", "y_q", {"yf", "y_scale", "y_zp"}, {"y"});
  return b.Build();
}

class DensePatternTest : public ::testing::TestWithParam<DenseCase> {};

TEST_P(DensePatternTest, BothFormsMatchFloatAndEachOther) {
  const DenseCase& c = GetParam();
  const int k = 40, n = 24;
  const std::vector<int> w =
      RandomInts(static_cast<size_t>(n) * k, -127, 127, 21);
  std::vector<float> ws;
  for (int i = 0; i < (c.per_channel ? n : 1); ++i)
    ws.push_back(0.003f + 0.0005f * (i % 7));
  std::vector<int32_t> bias;
  for (int v : RandomInts(n, -2000, 2000, 22))
    bias.push_back(c.gemm && c.bias ? v : 0);
  const Q qx{0.04f, 128, true}, qy{0.15f, 100, true};
  Tensor x = RandomTensor(DataType::kUInt8, {1, k}, 23);
  std::vector<std::vector<uint8_t>> results;
  for (Form form : {Form::kQOperator, Form::kQdq}) {
    SCOPED_TRACE(FormName(form));
    VTASERVE_ASSERT_OK_AND_ASSIGN(
        ModelGraph g,
        ImportOnnxModel(BuildDense(c, form, k, n, w, ws, bias, qx, qy),
                        ImportOptions{}));
    ASSERT_EQ(CountOps(g, OpKind::kDense), 1);
    int shift = 0;
    for (const Node& node : g.nodes) {
      if (node.op == OpKind::kDense) {
        shift =
            *std::min_element(std::get<ConvParams>(node.params).shift.begin(),
                              std::get<ConvParams>(node.params).shift.end());
      }
    }
    VTASERVE_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> out,
                                  RunOnReference(std::move(g), {&x}));
    ASSERT_EQ(out[0].shape(), (std::vector<int64_t>{1, n}));
    for (int i = 0; i < n; ++i) {
      double acc = bias[i] * double{qx.scale} * ws[c.per_channel ? i : 0];
      double as = 0;
      for (int j = 0; j < k; ++j) {
        acc += (x.bytes()[j] - qx.zp) * double{qx.scale} * w[i * k + j] *
               ws[c.per_channel ? i : 0];
        as += std::abs(x.bytes()[j] - qx.zp);
      }
      const double want = std::clamp(acc / qy.scale + qy.zp, 0.0, 255.0);
      const double bound =
          0.5 + (0.5 * as + 0.5) / std::ldexp(1.0, shift) + 1e-6;
      EXPECT_LE(std::fabs(out[0].bytes()[i] - want), bound) << "output " << i;
    }
    results.emplace_back(out[0].bytes(), out[0].bytes() + n);
  }
  EXPECT_EQ(results[0], results[1]);
}

INSTANTIATE_TEST_SUITE_P(
    Patterns, DensePatternTest,
    ::testing::Values(DenseCase{"MatMulPerTensor", false, false, false, false},
                      DenseCase{"MatMulPerChannel", false, false, true, false},
                      DenseCase{"GemmTransBBias", true, true, true, true},
                      DenseCase{"GemmNoTransPerTensor", true, false, false,
                                true},
                      DenseCase{"GemmNoBias", true, true, true, false}),
    [](const ::testing::TestParamInfo<DenseCase>& i) { return i.param.name; });

// ---------------------------------------------------------------------------
// Add, GlobalAveragePool, MaxPool, Flatten/Reshape, Relu, Softmax, and a
// float graph input, in one small network per form:
//   x(float) -Q-> a ; a -> conv1 -> c1 ; a -> conv2 -> c2 ;
//   Add(c1, c2) [+ Relu] -> s ; MaxPool(s) -> mp ; Relu(mp) -> r ;
//   GAP(r) -> gp ; Flatten(gp) -> fl ; Reshape(fl, [1, -1]) -> rs ;
//   Gemm(rs) -> logits(q) ; DQ -> Softmax -> probabilities (float).

struct NetQuant {
  Q a{0.02f, 128, true}, c1{0.05f, 110, true}, c2{0.04f, 140, true};
  Q s{0.06f, 0, true}, gp{0.03f, 5, true}, lg{0.1f, 128, true};
};

onnx::ModelProto BuildNet(Form form, bool int8) {
  NetQuant nq;
  if (int8) {
    for (Q* q : {&nq.a, &nq.c1, &nq.c2, &nq.s, &nq.gp, &nq.lg}) {
      q->u8 = false;
      q->zp = std::clamp(q->zp - 128, -128, 127);
    }
    nq.s.zp = -128;
  }
  OnnxGraphBuilder b(std::string("net_") + FormName(form));
  for (auto [name, q] : {std::pair{"a", nq.a},
                         {"c1", nq.c1},
                         {"c2", nq.c2},
                         {"s", nq.s},
                         {"gp", nq.gp},
                         {"lg", nq.lg}}) {
    AddQ(b, name, q);
  }
  const int c = 6, h = 10;
  for (const char* cv : {"conv1", "conv2"}) {
    const std::string n(cv);
    const std::vector<int> w =
        RandomInts(8 * c * 9, -100, 100, n.size() + n[4]);
    b.AddInt8Initializer(n + ".w", {8, c, 3, 3},
                         std::vector<int8_t>(w.begin(), w.end()));
    b.AddFloatInitializer(n + ".ws", {8}, std::vector<float>(8, 0.004f));
    b.AddInt8Initializer(n + ".wz", {8}, std::vector<int8_t>(8, 0));
  }
  const std::vector<int> fw = RandomInts(8 * 5, -120, 120, 77);
  b.AddInt8Initializer("fc.w", {5, 8},
                       std::vector<int8_t>(fw.begin(), fw.end()));
  b.AddFloatInitializer("fc.ws", {}, {0.01f});
  b.AddInt8Initializer("fc.wz", {}, {0});
  b.AddInt64Initializer("shape", {2}, {1, -1});
  b.AddInput("x", TP::FLOAT, {-1, c, h, h});
  b.AddOutput("probabilities", TP::FLOAT, {1, 5});
  const auto conv_attrs = std::vector<onnx::AttributeProto>{
      IntsAttr("kernel_shape", {3, 3}), IntsAttr("pads", {1, 1, 1, 1})};
  const auto pool_attrs = std::vector<onnx::AttributeProto>{
      IntsAttr("kernel_shape", {3, 3}), IntsAttr("strides", {2, 2}),
      IntsAttr("pads", {1, 1, 1, 1})};
  b.AddNode("QuantizeLinear", "quantize_input", {"x", "a_scale", "a_zp"},
            {"a"});
  if (form == Form::kQOperator) {
    for (const char* cv : {"conv1", "conv2"}) {
      const std::string n(cv), o = n == "conv1" ? "c1" : "c2";
      b.AddNode("QLinearConv", n,
                {"a", "a_scale", "a_zp", n + ".w", n + ".ws", n + ".wz",
                 o + "_scale", o + "_zp"},
                {o}, conv_attrs);
    }
    b.AddNode("QLinearAdd", "add",
              {"c1", "c1_scale", "c1_zp", "c2", "c2_scale", "c2_zp", "s_scale",
               "s_zp"},
              {"s"}, {}, zoo::kMsDomain);
    b.AddNode("MaxPool", "maxpool", {"s"}, {"mp"}, pool_attrs);
    b.AddNode("Relu", "relu", {"mp"}, {"r"});
    b.AddNode("QLinearGlobalAveragePool", "gap",
              {"r", "s_scale", "s_zp", "gp_scale", "gp_zp"}, {"gp"},
              {IntAttr("channels_last", 0)}, zoo::kMsDomain);
    b.AddNode("Flatten", "flatten", {"gp"}, {"fl"});
    b.AddNode("Reshape", "reshape", {"fl", "shape"}, {"rs"});
    b.AddNode("QGemm", "fc",
              {"rs", "gp_scale", "gp_zp", "fc.w", "fc.ws", "fc.wz", "",
               "lg_scale", "lg_zp"},
              {"lg"}, {IntAttr("transB", 1)}, zoo::kMsDomain);
  } else {
    auto dq = [&](const std::string& t, const std::string& q) {
      b.AddNode("DequantizeLinear", t + "_dq_" + q,
                {t, q + "_scale", q + "_zp"}, {t + "_f" + q});
      return t + "_f" + q;
    };
    const std::string af = dq("a", "a");
    for (const char* cv : {"conv1", "conv2"}) {
      const std::string n(cv), o = n == "conv1" ? "c1" : "c2";
      b.AddNode("DequantizeLinear", n + ".w_dq",
                {n + ".w", n + ".ws", n + ".wz"}, {n + ".wf"},
                {IntAttr("axis", 0)});
      b.AddNode("Conv", n, {af, n + ".wf"}, {n + "_out"}, conv_attrs);
      b.AddNode("QuantizeLinear", n + "_q",
                {n + "_out", o + "_scale", o + "_zp"}, {o});
    }
    b.AddNode("Add", "add", {dq("c1", "c1"), dq("c2", "c2")}, {"add_out"});
    b.AddNode("Relu", "add_relu", {"add_out"}, {"add_relu_out"});
    b.AddNode("QuantizeLinear", "s_q", {"add_relu_out", "s_scale", "s_zp"},
              {"s"});
    b.AddNode("MaxPool", "maxpool", {dq("s", "s")}, {"mp_f"}, pool_attrs);
    b.AddNode("QuantizeLinear", "mp_q", {"mp_f", "s_scale", "s_zp"}, {"mp"});
    // A separate Relu between Q/DQ pairs.
    b.AddNode("Relu", "relu", {dq("mp", "s")}, {"r_f"});
    b.AddNode("QuantizeLinear", "r_q", {"r_f", "s_scale", "s_zp"}, {"r"});
    b.AddNode("GlobalAveragePool", "gap", {dq("r", "s")}, {"gap_f"});
    b.AddNode("QuantizeLinear", "gp_q", {"gap_f", "gp_scale", "gp_zp"}, {"gp"});
    b.AddNode("Flatten", "flatten", {dq("gp", "gp")}, {"fl_f"});
    b.AddNode("Reshape", "reshape", {"fl_f", "shape"}, {"rs_f"});
    b.AddNode("QuantizeLinear", "rs_q", {"rs_f", "gp_scale", "gp_zp"}, {"rs"});
    b.AddNode("DequantizeLinear", "fc.w_dq", {"fc.w", "fc.ws", "fc.wz"},
              {"fc.wf"});
    b.AddNode("Gemm", "fc", {dq("rs", "gp"), "fc.wf"}, {"fc_out"},
              {IntAttr("transB", 1)});
    b.AddNode("QuantizeLinear", "lg_q", {"fc_out", "lg_scale", "lg_zp"},
              {"lg"});
  }
  b.AddNode("DequantizeLinear", "lg_dq", {"lg", "lg_scale", "lg_zp"},
            {"logits"});
  b.AddNode("Softmax", "softmax", {"logits"}, {"probabilities"},
            {IntAttr("axis", -1)});
  return b.Build();
}

class NetPatternTest : public ::testing::TestWithParam<bool> {};

TEST_P(NetPatternTest, QdqAndQOperatorNetworksImportToTheSameIntegers) {
  const bool int8 = GetParam();
  std::vector<std::vector<float>> results;
  for (Form form : {Form::kQOperator, Form::kQdq}) {
    SCOPED_TRACE(FormName(form));
    VTASERVE_ASSERT_OK_AND_ASSIGN(
        ModelGraph g, ImportOnnxModel(BuildNet(form, int8), ImportOptions{}));
    EXPECT_EQ(CountOps(g, OpKind::kQuantize), 1);
    EXPECT_EQ(CountOps(g, OpKind::kConv), 2);
    EXPECT_EQ(CountOps(g, OpKind::kAdd), 1);
    EXPECT_EQ(CountOps(g, OpKind::kMaxPool), 1);
    EXPECT_EQ(CountOps(g, OpKind::kRelu), 1);
    EXPECT_EQ(CountOps(g, OpKind::kGlobalAvgPool), 1);
    EXPECT_EQ(CountOps(g, OpKind::kReshape), 2);
    EXPECT_EQ(CountOps(g, OpKind::kDense), 1);
    EXPECT_EQ(CountOps(g, OpKind::kDequantize), 1);
    EXPECT_EQ(CountOps(g, OpKind::kSoftmax), 1);
    EXPECT_EQ(g.value(g.inputs[0]).name, "x");
    EXPECT_EQ(g.value(g.outputs[0]).name, "probabilities");
    for (const Node& n : g.nodes) {
      if (n.op == OpKind::kAdd) {
        // The QDQ Relu after Add is folded into the clamp (zero point = qmin
        // makes it a no-op either way).
        EXPECT_EQ(n.name, "add");
      }
    }
    Tensor x = RandomTensor(DataType::kFloat32, {2, 6, 10, 10}, 41, 3.0f);
    VTASERVE_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> out,
                                  RunOnReference(std::move(g), {&x}));
    ASSERT_EQ(out[0].shape(), (std::vector<int64_t>{2, 5}));
    double sum = 0;
    for (int i = 0; i < 5; ++i) sum += out[0].data<float>()[i];
    EXPECT_NEAR(sum, 1.0, 1e-5);
    results.emplace_back(out[0].data<float>(), out[0].data<float>() + 10);
  }
  EXPECT_EQ(results[0], results[1]);
}

INSTANTIATE_TEST_SUITE_P(Activations, NetPatternTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "Int8" : "Uint8";
                         });

// The stages of the network, checked element by element against direct
// integer/float formulas on the QOperator form.
TEST(NetPatternTest, StagesMatchDirectFormulas) {
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      ModelGraph g,
      ImportOnnxModel(BuildNet(Form::kQOperator, false), ImportOptions{}));
  // Expose every value as an output, to look inside.
  std::vector<ValueId> all;
  for (const Node& n : g.nodes) all.push_back(n.outputs[0]);
  g.outputs = all;
  const ModelGraph copy = g;
  Tensor x = RandomTensor(DataType::kFloat32, {1, 6, 10, 10}, 43, 3.0f);
  VTASERVE_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> out,
                                RunOnReference(std::move(g), {&x}));
  auto get = [&](const std::string& name) -> const Tensor& {
    for (size_t i = 0; i < all.size(); ++i) {
      if (copy.value(all[i]).name == name) return out[i];
    }
    ADD_FAILURE() << "no value " << name;
    return out[0];
  };
  NetQuant nq;
  // Quantize: round half to even of x / s + zp, in the int8 domain.
  const Tensor& a = get("a");
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    const double want = std::clamp<double>(
        std::nearbyint(x.data<float>()[i] / nq.a.scale) + nq.a.zp, 0.0, 255.0);
    ASSERT_EQ(a.data<int8_t>()[i] + 128, want) << i;
  }
  // Add: float formula within 0.5 LSB (+ multiplier error).
  const Tensor &c1 = get("c1"), &c2 = get("c2"), &s = get("s");
  for (int64_t i = 0; i < s.num_elements(); ++i) {
    const double real = nq.c1.scale * (c1.data<int8_t>()[i] + 128 - nq.c1.zp) +
                        nq.c2.scale * (c2.data<int8_t>()[i] + 128 - nq.c2.zp);
    const double want = std::clamp(real / nq.s.scale + nq.s.zp, 0.0, 255.0);
    ASSERT_LE(std::fabs(s.data<int8_t>()[i] + 128 - want), 0.55) << i;
  }
  // MaxPool 3x3/s2/p1: exact.
  const Tensor& mp = get("mp");
  ASSERT_EQ(mp.shape(), (std::vector<int64_t>{1, 8, 5, 5}));
  for (int ch = 0; ch < 8; ++ch) {
    for (int y = 0; y < 5; ++y) {
      for (int xx = 0; xx < 5; ++xx) {
        int best = -129;
        for (int kh = 0; kh < 3; ++kh) {
          for (int kw = 0; kw < 3; ++kw) {
            const int ih = y * 2 + kh - 1, iw = xx * 2 + kw - 1;
            if (ih < 0 || iw < 0 || ih >= 10 || iw >= 10) continue;
            best =
                std::max<int>(best, s.data<int8_t>()[(ch * 10 + ih) * 10 + iw]);
          }
        }
        ASSERT_EQ(mp.data<int8_t>()[(ch * 5 + y) * 5 + xx], best);
      }
    }
  }
  // GlobalAveragePool: float mean within 0.5 LSB (+ multiplier error).
  const Tensor& r = get("r");
  const Tensor& gp = get("gp");
  for (int ch = 0; ch < 8; ++ch) {
    double sum = 0;
    for (int i = 0; i < 25; ++i) {
      sum += nq.s.scale * (r.data<int8_t>()[ch * 25 + i] + 128 - nq.s.zp);
    }
    const double want =
        std::clamp(sum / 25 / nq.gp.scale + nq.gp.zp, 0.0, 255.0);
    ASSERT_LE(std::fabs(gp.data<int8_t>()[ch] + 128 - want), 0.51) << ch;
  }
}

// A uint8 graph input (QOperator) and an int8 graph input take their
// quantization from the first consumer and get a boundary Cast.
TEST(OnnxImporterTest, QuantizedGraphInputsTakeConsumerParameters) {
  ConvCase c;
  c.name = "in";
  const ConvData d = MakeConvData(c, 1);
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      ModelGraph g,
      ImportOnnxModel(BuildConv(c, d, Form::kQOperator), ImportOptions{}));
  const Value& in = g.value(g.inputs[0]);
  EXPECT_EQ(in.dtype, DataType::kUInt8);
  EXPECT_EQ(in.zero_point, 128);
  EXPECT_FLOAT_EQ(in.scale, 0.05f);
  EXPECT_EQ(in.shape,
            (std::vector<int64_t>{1, 4, 9, 8}));  // symbolic batch -> 1
  ASSERT_GE(g.nodes.size(), 3u);
  EXPECT_EQ(g.nodes.front().op, OpKind::kCast);
  EXPECT_EQ(g.nodes.back().op, OpKind::kCast);
  const Value& out = g.value(g.outputs[0]);
  EXPECT_EQ(out.dtype, DataType::kUInt8);
  EXPECT_EQ(out.zero_point, 120);
}

// ---------------------------------------------------------------------------
// Rejections.

onnx::ModelProto ValidConvModel(Form form = Form::kQOperator) {
  ConvCase c;
  c.name = "valid";
  return BuildConv(c, MakeConvData(c, 3), form);
}

onnx::TensorProto* FindInit(onnx::ModelProto& m, const std::string& name) {
  for (auto& t : *m.mutable_graph()->mutable_initializer()) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

TEST(OnnxImporterTest, RejectsUnsupportedOpNamingTheNode) {
  OnnxGraphBuilder b("sigmoid");
  b.AddInput("x", TP::FLOAT, {1, 4});
  b.AddOutput("y", TP::FLOAT, {1, 4});
  b.AddNode("Sigmoid", "my_sigmoid", {"x"}, {"y"});
  EXPECT_THAT(ImportOnnxModel(b.Build(), ImportOptions{}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::AllOf(HasSubstr("my_sigmoid"),
                                        HasSubstr("unsupported op"))));
}

TEST(OnnxImporterTest, RejectsFloatConvWithoutDequantizeLinear) {
  OnnxGraphBuilder b("float_conv");
  b.AddInput("x", TP::FLOAT, {1, 2, 5, 5});
  b.AddOutput("y", TP::FLOAT, {});
  b.AddFloatInitializer("w", {3, 2, 1, 1}, std::vector<float>(6, 0.5f));
  b.AddNode("Conv", "float_conv", {"x", "w"}, {"y"});
  EXPECT_THAT(ImportOnnxModel(b.Build(), ImportOptions{}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::AllOf(HasSubstr("float_conv"),
                                        HasSubstr("unsupported pattern"))));
}

TEST(OnnxImporterTest, RejectsFloatOpWithoutQuantizeLinear) {
  // QDQ conv whose float output is the graph output.
  onnx::ModelProto m = ValidConvModel(Form::kQdq);
  auto* nodes = m.mutable_graph()->mutable_node();
  nodes->RemoveLast();  // drop y_q
  m.mutable_graph()->mutable_output(0)->set_name("cf");
  m.mutable_graph()
      ->mutable_output(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->set_elem_type(TP::FLOAT);
  EXPECT_THAT(ImportOnnxModel(m, ImportOptions{}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("QuantizeLinear")));
}

TEST(OnnxImporterTest, RejectsCorruptProtobuf) {
  const std::string garbage =
      "\x08\x07\x12\xff\xff\xff\xff\x0f garbage that is not a model";
  EXPECT_THAT(ImportOnnxBytes(garbage, ImportOptions{}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(OnnxImporterTest, RejectsTruncatedFile) {
  std::string bytes;
  ASSERT_TRUE(ValidConvModel().SerializeToString(&bytes));
  const std::string path = ::testing::TempDir() + "/truncated.onnx";
  {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  EXPECT_THAT(ImportOnnxFile(path, ImportOptions{}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("truncated.onnx")));
}

TEST(OnnxImporterTest, ImportsFromFile) {
  std::string bytes;
  ASSERT_TRUE(ValidConvModel().SerializeToString(&bytes));
  const std::string path = ::testing::TempDir() + "/valid.onnx";
  {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  ImportOptions options;
  options.model_name = "stem";
  VTASERVE_ASSERT_OK_AND_ASSIGN(ModelGraph g, ImportOnnxFile(path, options));
  EXPECT_EQ(g.name, "stem");
}

TEST(OnnxImporterTest, MissingFileIsNotFound) {
  EXPECT_THAT(ImportOnnxFile("/nonexistent/model.onnx", ImportOptions{}),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(OnnxImporterTest, RejectsMissingInitializer) {
  onnx::ModelProto m = ValidConvModel();
  auto* inits = m.mutable_graph()->mutable_initializer();
  for (int i = 0; i < inits->size(); ++i) {
    if (inits->Get(i).name() == "w") {
      inits->DeleteSubrange(i, 1);
      break;
    }
  }
  EXPECT_THAT(ImportOnnxModel(m, ImportOptions{}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::AllOf(HasSubstr("'w'"),
                                        HasSubstr("missing initializer"))));
}

TEST(OnnxImporterTest, RejectsZeroPointDtypeMismatch) {
  onnx::ModelProto m = ValidConvModel();
  FindInit(m, "x_zp")->set_data_type(TP::INT8);  // x is uint8
  EXPECT_THAT(ImportOnnxModel(m, ImportOptions{}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("dtype mismatch")));
}

TEST(OnnxImporterTest, RejectsBadQuantizationAxis) {
  onnx::ModelProto m = ValidConvModel(Form::kQdq);
  for (auto& n : *m.mutable_graph()->mutable_node()) {
    if (n.name() == "w_dq")
      n.mutable_attribute(0)->set_i(1);  // 6 scales, dim 1 is 4
  }
  EXPECT_THAT(ImportOnnxModel(m, ImportOptions{}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("axis")));
}

TEST(OnnxImporterTest, RejectsNonPositiveOrNonFiniteScale) {
  for (float bad : {0.0f, -0.5f, std::nanf(""), INFINITY}) {
    onnx::ModelProto m = ValidConvModel();
    float v = bad;
    FindInit(m, "y_scale")
        ->set_raw_data(std::string(reinterpret_cast<char*>(&v), 4));
    EXPECT_THAT(
        ImportOnnxModel(m, ImportOptions{}),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("scale")))
        << bad;
  }
}

TEST(OnnxImporterTest, RejectsZeroPointOutOfRange) {
  onnx::ModelProto m = ValidConvModel();
  onnx::TensorProto* zp = FindInit(m, "y_zp");
  zp->clear_raw_data();
  zp->add_int32_data(300);
  EXPECT_THAT(ImportOnnxModel(m, ImportOptions{}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("range")));
}

TEST(OnnxImporterTest, RejectsKernelLargerThanInput) {
  ConvCase c;
  c.name = "big";
  c.k = 5;
  c.h = 3;
  c.w = 3;
  c.pads = {0, 0, 0, 0};
  EXPECT_THAT(
      ImportOnnxModel(BuildConv(c, MakeConvData(c, 1), Form::kQOperator),
                      ImportOptions{}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("larger than")));
}

TEST(OnnxImporterTest, RejectsWeightsThatDoNotMatchTheInput) {
  onnx::ModelProto m = ValidConvModel();
  m.mutable_graph()
      ->mutable_input(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->mutable_dim(1)
      ->set_dim_value(5);
  EXPECT_THAT(
      ImportOnnxModel(m, ImportOptions{}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("do not fit")));
}

TEST(OnnxImporterTest, RejectsTruncatedInitializerData) {
  onnx::ModelProto m = ValidConvModel();
  onnx::TensorProto* w = FindInit(m, "w");
  w->set_raw_data(w->raw_data().substr(0, 10));
  EXPECT_THAT(
      ImportOnnxModel(m, ImportOptions{}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("truncated")));
}

TEST(OnnxImporterTest, RejectsUnknownInputDimension) {
  onnx::ModelProto m = ValidConvModel();
  m.mutable_graph()
      ->mutable_input(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->mutable_dim(2)
      ->set_dim_param("H");
  EXPECT_THAT(
      ImportOnnxModel(m, ImportOptions{}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dimension 2")));
}

TEST(OnnxImporterTest, RejectsBroadcastingAdd) {
  OnnxGraphBuilder b("add");
  AddQ(b, "q", Q{0.1f, 128, true});
  b.AddInput("a", TP::UINT8, {1, 4, 2, 2});
  b.AddInput("b", TP::UINT8, {1, 4, 1, 1});
  b.AddOutput("y", TP::UINT8, {});
  b.AddNode("QLinearAdd", "add",
            {"a", "q_scale", "q_zp", "b", "q_scale", "q_zp", "q_scale", "q_zp"},
            {"y"}, {}, zoo::kMsDomain);
  EXPECT_THAT(
      ImportOnnxModel(b.Build(), ImportOptions{}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("broadcast")));
}

// DQ -> Relu -> Q with other parameters (ONNX Runtime's QOperator form of
// symmetric int8 models) becomes Relu + a requantizing Add, within 0.5 LSB
// (+ 14-bit multiplier error) of the float formula; uint8 -> int8 too.
TEST(OnnxImporterTest, RequantizesBetweenDifferentParameters) {
  const Q qa{0.1f, 7, false}, qb{0.07f, 140, true};
  OnnxGraphBuilder b("requant");
  AddQ(b, "a", qa);
  AddQ(b, "b", qb);
  b.AddInput("x", TP::INT8, {1, 4, 8, 8});
  b.AddOutput("y", TP::UINT8, {});
  b.AddNode("DequantizeLinear", "dq", {"x", "a_scale", "a_zp"}, {"xf"});
  b.AddNode("Relu", "relu", {"xf"}, {"rf"});
  b.AddNode("QuantizeLinear", "q", {"rf", "b_scale", "b_zp"}, {"y"});
  VTASERVE_ASSERT_OK_AND_ASSIGN(ModelGraph g,
                                ImportOnnxModel(b.Build(), ImportOptions{}));
  EXPECT_EQ(CountOps(g, OpKind::kRelu), 1);
  EXPECT_EQ(CountOps(g, OpKind::kAdd), 1);
  Tensor x = RandomTensor(DataType::kInt8, {1, 4, 8, 8}, 9);
  VTASERVE_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> out,
                                RunOnReference(std::move(g), {&x}));
  ASSERT_EQ(out[0].dtype(), DataType::kUInt8);
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    const double real =
        std::max(0.0, double{qa.scale} * (x.data<int8_t>()[i] - qa.zp));
    const double want = std::clamp(real / qb.scale + qb.zp, 0.0, 255.0);
    ASSERT_LE(std::fabs(out[0].bytes()[i] - want), 0.52) << i;
  }
}

TEST(OnnxImporterTest, RejectsQGemmWithFloatOutputAndChannelsLastPool) {
  OnnxGraphBuilder b("qgemm");
  AddQ(b, "q", Q{0.1f, 128, true});
  b.AddInt8Initializer("w", {3, 4}, std::vector<int8_t>(12, 1));
  b.AddFloatScalar("ws", 0.1f);
  b.AddInput("x", TP::UINT8, {1, 4});
  b.AddOutput("y", TP::FLOAT, {});
  b.AddNode("QGemm", "fc", {"x", "q_scale", "q_zp", "w", "ws"}, {"y"},
            {IntAttr("transB", 1)}, zoo::kMsDomain);
  EXPECT_THAT(
      ImportOnnxModel(b.Build(), ImportOptions{}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("float output")));

  OnnxGraphBuilder p("gap");
  AddQ(p, "q", Q{0.1f, 128, true});
  p.AddInput("x", TP::UINT8, {1, 4, 3, 3});
  p.AddOutput("y", TP::UINT8, {});
  p.AddNode("QLinearGlobalAveragePool", "gap",
            {"x", "q_scale", "q_zp", "q_scale", "q_zp"}, {"y"},
            {IntAttr("channels_last", 1)}, zoo::kMsDomain);
  EXPECT_THAT(
      ImportOnnxModel(p.Build(), ImportOptions{}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("channels_last")));
}

TEST(OnnxImporterTest, GeneratesUniqueNamesForUnnamedNodes) {
  onnx::ModelProto m = ValidConvModel(Form::kQdq);
  for (auto& n : *m.mutable_graph()->mutable_node()) n.clear_name();
  VTASERVE_ASSERT_OK_AND_ASSIGN(ModelGraph g,
                                ImportOnnxModel(m, ImportOptions{}));
  std::set<std::string> names;
  for (const Node& n : g.nodes) {
    EXPECT_FALSE(n.name.empty());
    EXPECT_TRUE(names.insert(n.name).second) << n.name;
  }
  bool has_op_n = false;
  for (const std::string& n : names) has_op_n |= n.rfind("op_", 0) == 0;
  EXPECT_TRUE(has_op_n);
}

// Random byte flips and truncations of a valid model give a status (any
// code), never a crash or a hang.
TEST(OnnxImporterFuzzTest, ByteFlipsAndTruncationsNeverCrash) {
  zoo::ResNetSpec spec;
  spec.depth = 18;
  spec.input_size = 32;
  spec.num_classes = 10;
  std::vector<std::string> seeds;
  for (Form form : {Form::kQOperator, Form::kQdq}) {
    std::string bytes;
    ASSERT_TRUE(ValidConvModel(form).SerializeToString(&bytes));
    seeds.push_back(bytes);
  }
  {
    VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto m,
                                  zoo::GenerateResNet(spec));
    // Keep the fuzz cheap: the first layers' structure matters, not 11 M
    // weights.
    std::string bytes;
    ASSERT_TRUE(m.SerializeToString(&bytes));
    seeds.push_back(bytes);
  }
  uint64_t rng = 12345;
  int ok = 0, rejected = 0;
  for (const std::string& seed : seeds) {
    const int trials = seed.size() > 100000 ? 12 : 300;
    for (int t = 0; t < trials; ++t) {
      std::string m = seed;
      const int flips = 1 + static_cast<int>(NextRandom(rng) % 4);
      for (int f = 0; f < flips; ++f) {
        // Bias towards the structure: graph/nodes/attributes precede most data.
        const size_t limit = std::min<size_t>(m.size(), 4096);
        const size_t pos = NextRandom(rng) % (t % 2 == 0 ? limit : m.size());
        m[pos] = static_cast<char>(NextRandom(rng) & 0xff);
      }
      if (t % 5 == 0) m.resize(NextRandom(rng) % m.size());
      absl::StatusOr<ModelGraph> g = ImportOnnxBytes(m, ImportOptions{});
      if (g.ok()) {
        ++ok;
        EXPECT_THAT(g->Validate(), IsOk());
      } else {
        ++rejected;
        EXPECT_NE(g.status().code(), absl::StatusCode::kOk);
      }
    }
  }
  std::printf("[ fuzz ] %d mutated models imported, %d rejected\n", ok,
              rejected);
  EXPECT_GT(rejected, 0);
}

}  // namespace
}  // namespace vtaserve::engine
