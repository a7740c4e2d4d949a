// Header-only builders of small random int8 graphs (single conv, dense, add,
// and short chains) for the VTA compiler tests and the conformance suite.
// Deterministic for a given seed.
#ifndef VTASERVE_TESTS_VTA_BACKEND_COMPILER_GRAPH_BUILDERS_H_
#define VTASERVE_TESTS_VTA_BACKEND_COMPILER_GRAPH_BUILDERS_H_

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/graph.h"
#include "engine/tensor.h"

namespace vtaserve::testing {

struct ConvCase {
  int cin = 16, cout = 16, h = 8, w = 8;
  int kh = 3, kw = 3, stride = 1;
  int pad_top = 1, pad_left = 1, pad_bottom = 1, pad_right = 1;
  int32_t input_zp = 0, output_zp = 0;
  bool relu = false;
  // Consecutive output channels sharing a shift.
  int shift_group = 32;
  // Shifts are drawn from [shift_lo, shift_hi] (clamped to the IR range);
  // when shift_lo > shift_hi they are derived from the accumulator scale.
  int shift_lo = 1, shift_hi = 0;
  uint64_t seed = 1;
  bool dense = false;  // [1, cin] -> [1, cout]; kernel/pad ignored

  std::string Name() const {
    if (dense) return absl::StrCat("dense", cin, "x", cout, "_s", seed);
    return absl::StrCat("c", cin, "_", cout, "_", h, "x", w, "_k", kh, "x", kw,
                        "_s", stride, "_p", pad_top, pad_left, pad_bottom,
                        pad_right, "_zp", input_zp < 0 ? "m" : "",
                        std::abs(input_zp), relu ? "_relu" : "", "_seed", seed);
  }
};

inline int64_t OutDim(int in, int k, int s, int p0, int p1) {
  return (in + p0 + p1 - k) / s + 1;
}

// Fills `p` with random weights/bias/shifts for `c`.
inline void RandomConvParams(const ConvCase& c, std::mt19937_64& rng,
                             engine::ConvParams& p) {
  p.in_channels = c.cin;
  p.out_channels = c.cout;
  if (!c.dense) {
    p.kernel_h = c.kh;
    p.kernel_w = c.kw;
    p.stride_h = p.stride_w = c.stride;
    p.pad_top = c.pad_top;
    p.pad_left = c.pad_left;
    p.pad_bottom = c.pad_bottom;
    p.pad_right = c.pad_right;
  }
  const int taps = c.cin * p.kernel_h * p.kernel_w;
  std::uniform_int_distribution<int> w8(-127, 127);
  p.weights.resize(size_t(c.cout) * taps);
  for (auto& v : p.weights) v = static_cast<int8_t>(w8(rng));
  // Typical |acc| ~ 64 * 73 * sqrt(taps): pick shifts so outputs spread.
  int base = 0;
  for (double m = 64.0 * 73.0 * std::sqrt(double(taps)) / 48.0; m > 1.0; m /= 2)
    ++base;
  p.shift.resize(c.cout);
  p.bias.resize(c.cout);
  std::uniform_int_distribution<int> jitter(-2, 2);
  for (int g = 0; g < c.cout; g += c.shift_group) {
    int s = c.shift_lo <= c.shift_hi ? std::uniform_int_distribution<int>(
                                           c.shift_lo, c.shift_hi)(rng)
                                     : base + jitter(rng);
    s = std::clamp(s, engine::kMinShift, engine::kMaxShift);
    for (int ch = g; ch < std::min(c.cout, g + c.shift_group); ++ch)
      p.shift[ch] = s;
  }
  for (int ch = 0; ch < c.cout; ++ch) {
    const int s = p.shift[ch];
    const int64_t range = s >= 0 ? (int64_t{1} << std::min(s + 6, 28)) : 64;
    p.bias[ch] = static_cast<int32_t>(
        std::uniform_int_distribution<int64_t>(-range, range)(rng));
  }
  p.input_zero_point = c.input_zp;
  p.output_zero_point = c.output_zp;
  p.clamp_min = c.relu ? c.output_zp : -128;
  p.clamp_max = 127;
}

inline engine::Value MakeValue(std::string name, std::vector<int64_t> shape,
                               int32_t zp) {
  engine::Value v;
  v.name = std::move(name);
  v.dtype = DataType::kInt8;
  v.shape = std::move(shape);
  v.zero_point = zp;
  return v;
}

inline std::vector<int64_t> ConvOutShape(const ConvCase& c) {
  if (c.dense) return {1, c.cout};
  return {1, c.cout, OutDim(c.h, c.kh, c.stride, c.pad_top, c.pad_bottom),
          OutDim(c.w, c.kw, c.stride, c.pad_left, c.pad_right)};
}

// A graph with one conv (or dense) node "conv": input "x", output "y".
inline engine::ModelGraph SingleConvGraph(const ConvCase& c) {
  std::mt19937_64 rng(c.seed);
  engine::ModelGraph g;
  g.name = c.Name();
  g.values.push_back(MakeValue("x",
                               c.dense
                                   ? std::vector<int64_t>{1, c.cin}
                                   : std::vector<int64_t>{1, c.cin, c.h, c.w},
                               c.input_zp));
  g.values.push_back(MakeValue("y", ConvOutShape(c), c.output_zp));
  engine::Node n;
  n.name = "conv";
  n.op = c.dense ? engine::OpKind::kDense : engine::OpKind::kConv;
  n.inputs = {0};
  n.outputs = {1};
  engine::ConvParams p;
  RandomConvParams(c, rng, p);
  n.params = std::move(p);
  g.nodes.push_back(std::move(n));
  g.inputs = {0};
  g.outputs = {1};
  return g;
}

struct AddCase {
  int c = 16, h = 8, w = 8;
  int32_t ma = 9000, mb = 7000, bias = -12345, shift = 13;
  int32_t zp = 5;
  bool relu = false;
  uint64_t seed = 1;
};

// One add node "add": inputs "a", "b", output "y".
inline engine::ModelGraph SingleAddGraph(const AddCase& a) {
  engine::ModelGraph g;
  g.name = "add";
  g.values.push_back(MakeValue("a", {1, a.c, a.h, a.w}, 0));
  g.values.push_back(MakeValue("b", {1, a.c, a.h, a.w}, 0));
  g.values.push_back(MakeValue("y", {1, a.c, a.h, a.w}, a.zp));
  engine::Node n;
  n.name = "add";
  n.op = engine::OpKind::kAdd;
  n.inputs = {0, 1};
  n.outputs = {2};
  engine::AddParams p;
  p.multiplier_a = a.ma;
  p.multiplier_b = a.mb;
  p.bias = a.bias;
  p.shift = a.shift;
  p.output_zero_point = a.zp;
  p.clamp_min = a.relu ? a.zp : -128;
  n.params = p;
  g.nodes.push_back(std::move(n));
  g.inputs = {0, 1};
  g.outputs = {2};
  return g;
}

// A residual block: y = relu(add(conv2(relu(conv1(x))), x)), channels c,
// size h x w, 3x3 pad 1 convs; x padded with zero point `zp`.
inline engine::ModelGraph ResidualBlockGraph(int c, int h, int w, int32_t zp,
                                             uint64_t seed) {
  std::mt19937_64 rng(seed);
  engine::ModelGraph g;
  g.name = "block";
  g.values.push_back(MakeValue("x", {1, c, h, w}, zp));
  g.values.push_back(MakeValue("t1", {1, c, h, w}, -128));
  g.values.push_back(MakeValue("t2", {1, c, h, w}, 3));
  g.values.push_back(MakeValue("y", {1, c, h, w}, -128));
  ConvCase cc;
  cc.cin = cc.cout = c;
  cc.h = h;
  cc.w = w;
  cc.input_zp = zp;
  cc.output_zp = -128;
  cc.relu = true;
  engine::Node n1;
  n1.name = "conv1";
  n1.inputs = {0};
  n1.outputs = {1};
  engine::ConvParams p1;
  RandomConvParams(cc, rng, p1);
  n1.params = p1;
  cc.input_zp = -128;
  cc.output_zp = 3;
  cc.relu = false;
  engine::Node n2;
  n2.name = "conv2";
  n2.inputs = {1};
  n2.outputs = {2};
  engine::ConvParams p2;
  RandomConvParams(cc, rng, p2);
  n2.params = p2;
  engine::Node n3;
  n3.name = "add";
  n3.op = engine::OpKind::kAdd;
  n3.inputs = {2, 0};
  n3.outputs = {3};
  engine::AddParams pa;
  pa.multiplier_a = 11000;
  pa.multiplier_b = 9000;
  pa.shift = 14;
  pa.bias = -(3 * 11000 + zp * 9000) + (1 << 13) - 128 * (1 << 14) + 40000;
  pa.output_zero_point = -128;
  pa.clamp_min = -128;
  n3.params = pa;
  g.nodes = {n1, n2, n3};
  g.inputs = {0};
  g.outputs = {3};
  return g;
}

// Uniform random int8 tensor of `shape`.
inline Tensor RandomInt8(const std::vector<int64_t>& shape, uint64_t seed) {
  Tensor t = Tensor::Create(DataType::kInt8, shape).value();
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> d(-128, 127);
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    t.data<int8_t>()[i] = static_cast<int8_t>(d(rng));
  }
  return t;
}

}  // namespace vtaserve::testing

#endif  // VTASERVE_TESTS_VTA_BACKEND_COMPILER_GRAPH_BUILDERS_H_
