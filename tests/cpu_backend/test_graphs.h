// Builders shared by the CPU backend tests: random but in-range ConvParams
// and a small hand-built ResNet-shaped graph exercising every engine op.
#ifndef VTASERVE_TESTS_CPU_BACKEND_TEST_GRAPHS_H_
#define VTASERVE_TESTS_CPU_BACKEND_TEST_GRAPHS_H_

#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "engine/graph.h"
#include "engine/tensor.h"

namespace vtaserve::cpu::testing {

struct ConvShape {
  int cin = 1, cout = 1, h = 1, w = 1;
  int kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int pt = 0, pl = 0, pb = 0, pr = 0;
  int in_zp = 0, out_zp = 0;
  bool relu = false;
  int out_h() const { return (h + pt + pb - (dh * (kh - 1) + 1)) / sh + 1; }
  int out_w() const { return (w + pl + pr - (dw * (kw - 1) + 1)) / sw + 1; }
};

// Readable gtest parameter dumps.
inline void PrintTo(const ConvShape& s, std::ostream* os) {
  *os << s.cin << "->" << s.cout << " " << s.h << "x" << s.w << " k" << s.kh
      << "x" << s.kw << " s" << s.sh << "x" << s.sw << " d" << s.dh << "x"
      << s.dw << " pad " << s.pt << "," << s.pl << "," << s.pb << "," << s.pr
      << " zp " << s.in_zp << "/" << s.out_zp << (s.relu ? " relu" : "");
}

// Weights over the full int8 range, biases that keep sums in int32, and
// per-channel shifts mostly in a useful range plus negative and large ones.
inline engine::ConvParams RandomConvParams(const ConvShape& s,
                                           std::mt19937& rng) {
  engine::ConvParams p;
  p.in_channels = s.cin;
  p.out_channels = s.cout;
  p.kernel_h = s.kh;
  p.kernel_w = s.kw;
  p.stride_h = s.sh;
  p.stride_w = s.sw;
  p.dilation_h = s.dh;
  p.dilation_w = s.dw;
  p.pad_top = s.pt;
  p.pad_left = s.pl;
  p.pad_bottom = s.pb;
  p.pad_right = s.pr;
  p.input_zero_point = s.in_zp;
  p.output_zero_point = s.out_zp;
  p.clamp_min = s.relu ? s.out_zp : -128;
  p.clamp_max = 127;
  std::uniform_int_distribution<int> w8(-128, 127);
  p.weights.resize(size_t(s.cout) * s.cin * s.kh * s.kw);
  for (int8_t& w : p.weights) w = static_cast<int8_t>(w8(rng));
  const int taps = s.cin * s.kh * s.kw;
  // Typical |acc| is about 128 * 74 * sqrt(taps); aim the shift at it.
  int base = 0;
  while ((1 << base) <
         74 * 128 * 2 * static_cast<int>(std::sqrt(taps) + 1) / 64) {
    ++base;
  }
  std::uniform_int_distribution<int> bias(-(1 << 16), 1 << 16);
  std::uniform_int_distribution<int> pick(0, 9);
  std::uniform_int_distribution<int> neg(engine::kMinShift, -1);
  std::uniform_int_distribution<int> any(engine::kMinShift, engine::kMaxShift);
  std::uniform_int_distribution<int> jitter(-2, 2);
  for (int c = 0; c < s.cout; ++c) {
    p.bias.push_back(bias(rng));
    const int k = pick(rng);
    p.shift.push_back(k == 0   ? neg(rng)
                      : k == 1 ? any(rng)
                               : std::max(0, base + jitter(rng)));
  }
  return p;
}

// A ResNet-shaped graph on a float [1, 3, size, size] image: Quantize, a 7x7
// stride-2 stem (3 input channels) with fused ReLU, MaxPool, a basic block,
// a strided block with a 1x1 downsample, an explicit Relu, a Cast to uint8
// (second output, a spatial tensor), GlobalAvgPool, Reshape, Dense,
// Dequantize and Softmax. Every op kind appears.
inline engine::ModelGraph SmallResNet(int size, uint32_t seed) {
  using engine::Node;
  using engine::OpKind;
  std::mt19937 rng(seed);
  engine::ModelGraph g;
  g.name = "small_resnet";
  auto value = [&](std::string name, DataType dt, std::vector<int64_t> shape,
                   int32_t zp) {
    g.values.push_back({std::move(name), dt, std::move(shape), 0.05f, zp});
    return static_cast<engine::ValueId>(g.values.size() - 1);
  };
  std::uniform_int_distribution<int> zpd(-20, 20);
  auto conv = [&](std::string name, engine::ValueId x, int cout, int k, int s,
                  int pad, bool relu) {
    const engine::Value& in = g.values[x];
    ConvShape cs;
    cs.cin = static_cast<int>(in.shape[1]);
    cs.h = static_cast<int>(in.shape[2]);
    cs.w = static_cast<int>(in.shape[3]);
    cs.cout = cout;
    cs.kh = cs.kw = k;
    cs.sh = cs.sw = s;
    cs.pt = cs.pl = cs.pb = cs.pr = pad;
    cs.in_zp = in.zero_point;
    cs.out_zp = zpd(rng);
    cs.relu = relu;
    engine::ConvParams p = RandomConvParams(cs, rng);
    const engine::ValueId y =
        value(name + ".out", DataType::kInt8, {1, cout, cs.out_h(), cs.out_w()},
              cs.out_zp);
    g.nodes.push_back({name, OpKind::kConv, {x}, {y}, p});
    return y;
  };
  auto add = [&](std::string name, engine::ValueId a, engine::ValueId b) {
    engine::AddParams p;
    std::uniform_int_distribution<int> m(1000, engine::kMaxAddMultiplier);
    p.multiplier_a = m(rng);
    p.multiplier_b = m(rng);
    p.shift = 14;
    const int32_t zp = zpd(rng);
    p.bias = -g.values[a].zero_point * p.multiplier_a -
             g.values[b].zero_point * p.multiplier_b + (1 << 13);
    p.output_zero_point = zp;
    p.clamp_min = zp;
    const engine::ValueId y =
        value(name + ".out", DataType::kInt8, g.values[a].shape, zp);
    g.nodes.push_back({name, OpKind::kAdd, {a, b}, {y}, p});
    return y;
  };
  const engine::ValueId image =
      value("image", DataType::kFloat32, {1, 3, size, size}, 0);
  const engine::ValueId q =
      value("image.q", DataType::kInt8, {1, 3, size, size}, -7);
  g.nodes.push_back({"quantize",
                     OpKind::kQuantize,
                     {image},
                     {q},
                     engine::QuantizeParams{0.02f, -7}});
  const engine::ValueId c1 = conv("conv1", q, 16, 7, 2, 3, true);
  const int64_t ph = (g.values[c1].shape[2] + 2 - 3) / 2 + 1;
  const engine::ValueId mp = value("maxpool.out", DataType::kInt8,
                                   {1, 16, ph, ph}, g.values[c1].zero_point);
  g.nodes.push_back({"maxpool",
                     OpKind::kMaxPool,
                     {c1},
                     {mp},
                     engine::PoolParams{3, 3, 2, 2, 1, 1, 1, 1}});
  const engine::ValueId b1a = conv("layer1.0.conv1", mp, 16, 3, 1, 1, true);
  const engine::ValueId b1b = conv("layer1.0.conv2", b1a, 16, 3, 1, 1, false);
  const engine::ValueId b1 = add("layer1.0.add", b1b, mp);
  const engine::ValueId b2a = conv("layer2.0.conv1", b1, 24, 3, 2, 1, true);
  const engine::ValueId b2b = conv("layer2.0.conv2", b2a, 24, 3, 1, 1, false);
  const engine::ValueId ds =
      conv("layer2.0.downsample", b1, 24, 1, 2, 0, false);
  const engine::ValueId b2 = add("layer2.0.add", b2b, ds);
  const int32_t rzp = g.values[b2].zero_point + 3;
  const engine::ValueId r =
      value("relu.out", DataType::kInt8, g.values[b2].shape, rzp);
  g.nodes.push_back(
      {"relu", OpKind::kRelu, {b2}, {r}, engine::ReluParams{rzp}});
  const engine::ValueId u8 =
      value("features", DataType::kUInt8, g.values[r].shape, rzp + 128);
  g.nodes.push_back({"cast", OpKind::kCast, {r}, {u8}, engine::NoParams{}});
  const int64_t hw = g.values[r].shape[2] * g.values[r].shape[3];
  engine::GapParams gp;
  gp.shift = 24;
  gp.multiplier = (int64_t{1} << 24) / hw;
  gp.bias = -hw * rzp * gp.multiplier + (int64_t{1} << 23);
  gp.output_zero_point = 2;
  const engine::ValueId gap =
      value("avgpool.out", DataType::kInt8, {1, 24, 1, 1}, 2);
  g.nodes.push_back({"avgpool", OpKind::kGlobalAvgPool, {r}, {gap}, gp});
  const engine::ValueId flat =
      value("flatten.out", DataType::kInt8, {1, 24}, 2);
  g.nodes.push_back(
      {"flatten", OpKind::kReshape, {gap}, {flat}, engine::NoParams{}});
  ConvShape fs;
  fs.cin = 24;
  fs.cout = 10;
  fs.h = fs.w = 1;
  fs.in_zp = 2;
  fs.out_zp = -3;
  engine::ConvParams fp = RandomConvParams(fs, rng);
  const engine::ValueId fc = value("fc.out", DataType::kInt8, {1, 10}, -3);
  g.nodes.push_back({"fc", OpKind::kDense, {flat}, {fc}, fp});
  const engine::ValueId logits =
      value("logits", DataType::kFloat32, {1, 10}, 0);
  g.nodes.push_back({"dequantize",
                     OpKind::kDequantize,
                     {fc},
                     {logits},
                     engine::QuantizeParams{0.1f, -3}});
  const engine::ValueId prob = value("prob", DataType::kFloat32, {1, 10}, 0);
  g.nodes.push_back(
      {"softmax", OpKind::kSoftmax, {logits}, {prob}, engine::NoParams{}});
  g.inputs = {image};
  g.outputs = {prob, u8};
  return g;
}

}  // namespace vtaserve::cpu::testing

#endif  // VTASERVE_TESTS_CPU_BACKEND_TEST_GRAPHS_H_
