// Elementwise kernels: layout conversion against a naive per-element copy
// (including the 16x16 tiled path and its tails), and every variant of Add
// and Quantize (each ISA path forced) bit-exact against the engine's
// reference over lengths and offsets that do not divide the vector width,
// with guard bytes around the written range.
#include "cpu_backend/kernels/elementwise.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cpu_backend/cpu_isa.h"
#include "engine/reference_ops.h"
#include "engine/tensor.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace vtaserve::cpu {
namespace {

using RelayoutParam = std::tuple<int, int, int, int>;  // c, h, w, elem size

class RelayoutTest : public ::testing::TestWithParam<RelayoutParam> {};

TEST_P(RelayoutTest, MatchesNaiveCopyBothWays) {
  const auto [c, h, w, es] = GetParam();
  std::mt19937 rng(c * 1000 + h * 10 + w);
  const size_t n = size_t(c) * h * w * es;
  std::vector<uint8_t> src(n);
  for (uint8_t& v : src) v = rng() & 0xff;
  for (const bool to_nchw : {true, false}) {
    const Layout from = to_nchw ? Layout::kNhwc : Layout::kNchw;
    const Layout to = to_nchw ? Layout::kNchw : Layout::kNhwc;
    const Strides xs = MakeStrides(from, c, h, w);
    const Strides ys = MakeStrides(to, c, h, w);
    std::vector<uint8_t> got(n + 32, 0xEE);
    Relayout(src.data(), xs, got.data(), ys, c, w, es, 0, h);
    for (int ch = 0; ch < c; ++ch) {
      for (int r = 0; r < h; ++r) {
        for (int col = 0; col < w; ++col) {
          for (int b = 0; b < es; ++b) {
            ASSERT_EQ(got[(ch * ys.c + r * ys.h + col * ys.w) * es + b],
                      src[(ch * xs.c + r * xs.h + col * xs.w) * es + b])
                << (to_nchw ? "to NCHW" : "to NHWC") << " c" << ch << " h" << r
                << " w" << col;
          }
        }
      }
    }
    for (size_t i = n; i < got.size(); ++i) ASSERT_EQ(got[i], 0xEE) << "guard";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, RelayoutTest,
    ::testing::Values(RelayoutParam{64, 3, 112, 1}, RelayoutParam{16, 2, 16, 1},
                      RelayoutParam{37, 3, 45, 1}, RelayoutParam{24, 4, 4, 1},
                      RelayoutParam{3, 5, 7, 1}, RelayoutParam{33, 2, 17, 4},
                      RelayoutParam{1, 3, 20, 1}),
    [](const ::testing::TestParamInfo<RelayoutParam>& info) {
      return absl::StrCat("c", std::get<0>(info.param), "h",
                          std::get<1>(info.param), "w", std::get<2>(info.param),
                          "e", std::get<3>(info.param));
    });

constexpr int kGuard = 40;
constexpr int8_t kGuardByte = 0x5B;

// The output range [begin, end) of each case: short, unaligned and long.
std::vector<std::pair<int64_t, int64_t>> Ranges(int64_t n) {
  return {{0, n},   {0, 1},  {3, 3},      {5, 36},    {1, 32},
          {7, 100}, {0, 64}, {31, n - 2}, {n - 17, n}};
}

// Single-node graph of `op` with one int8/float input (or two for Add).
engine::ModelGraph OneNodeGraph(engine::OpKind op, engine::OpParams params,
                                DataType in_type, int inputs,
                                std::vector<int64_t> shape) {
  engine::ModelGraph g;
  g.name = "one";
  for (int i = 0; i < inputs; ++i) {
    g.values.push_back({absl::StrCat("x", i), in_type, shape, 0.1f, 0});
    g.inputs.push_back(i);
  }
  g.values.push_back({"y", DataType::kInt8, shape, 0.1f, 0});
  std::vector<engine::ValueId> in_ids;
  for (int i = 0; i < inputs; ++i) in_ids.push_back(i);
  g.nodes.push_back({"n", op, in_ids, {inputs}, params});
  g.outputs = {inputs};
  return g;
}

std::vector<int8_t> ReferenceInt8(const engine::ModelGraph& g,
                                  const std::vector<const Tensor*>& ins) {
  auto y = Tensor::Create(DataType::kInt8, g.values[g.outputs[0]].shape);
  EXPECT_TRUE(y.ok());
  Tensor* out = &*y;
  EXPECT_TRUE(engine::RunReferenceNode(g, g.nodes[0], ins, {&out, 1}).ok());
  return std::vector<int8_t>(y->data<int8_t>(),
                             y->data<int8_t>() + y->num_elements());
}

using AddFn = void (*)(const engine::AddParams&, const int8_t*, const int8_t*,
                       int8_t*, int64_t, int64_t);
using QuantizeFn = void (*)(const engine::QuantizeParams&, const float*,
                            int8_t*, int64_t, int64_t);

AddFn AddFor(CpuIsa isa) { return isa == CpuIsa::kAvx2 ? &AddS8Avx2 : &AddS8; }
QuantizeFn QuantizeFor(CpuIsa isa) {
  return isa == CpuIsa::kAvx2 ? &QuantizeF32ToS8Avx2 : &QuantizeF32ToS8;
}

// Writes fn's output for [begin, end) into a guarded copy of `want` with the
// range cleared, then checks the range and the guards.
template <typename Fn>
void CheckRange(const std::vector<int8_t>& want, int64_t begin, int64_t end,
                Fn fn) {
  SCOPED_TRACE(absl::StrCat("range [", begin, ", ", end, ")"));
  std::vector<int8_t> buf(want.size() + 2 * kGuard, kGuardByte);
  int8_t* y = buf.data() + kGuard;
  fn(y, begin, end);
  for (int64_t i = 0; i < static_cast<int64_t>(buf.size()); ++i) {
    const int64_t j = i - kGuard;
    if (j >= begin && j < end) {
      ASSERT_EQ(y[j], want[j]) << "element " << j;
    } else {
      ASSERT_EQ(buf[i], kGuardByte) << "written outside the range at " << j;
    }
  }
}

class AddKernelTest : public ::testing::TestWithParam<CpuIsa> {};

TEST_P(AddKernelTest, MatchesReferenceBitExact) {
  const CpuIsa isa = GetParam();
  if (!CpuSupports(isa)) GTEST_SKIP() << "this CPU lacks " << CpuIsaName(isa);
  std::mt19937 rng(77);
  std::uniform_int_distribution<int> x8(-128, 127);
  const std::vector<int64_t> shape = {1, 19, 5, 7};  // 665 elements
  VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor a,
                                Tensor::Create(DataType::kInt8, shape));
  VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor b,
                                Tensor::Create(DataType::kInt8, shape));
  const int64_t n = a.num_elements();
  for (int64_t i = 0; i < n; ++i) {
    a.data<int8_t>()[i] = static_cast<int8_t>(x8(rng));
    b.data<int8_t>()[i] = static_cast<int8_t>(x8(rng));
  }
  a.data<int8_t>()[0] = b.data<int8_t>()[0] = -128;
  a.data<int8_t>()[1] = b.data<int8_t>()[1] = 127;
  std::vector<engine::AddParams> cases;
  std::uniform_int_distribution<int> mul(-(1 << 14), 1 << 14);
  std::uniform_int_distribution<int> sh(0, 30);
  std::uniform_int_distribution<int> bias(-(1 << 20), 1 << 20);
  std::uniform_int_distribution<int> zp(-128, 127);
  for (int k = 0; k < 12; ++k) {
    engine::AddParams p;
    p.multiplier_a = mul(rng);
    p.multiplier_b = mul(rng);
    p.bias = bias(rng);
    p.shift = k == 0 ? 0 : k == 1 ? 30 : sh(rng) % 16;
    p.output_zero_point = zp(rng);
    p.clamp_min = k % 3 == 0 ? p.output_zero_point : -128;
    p.clamp_max = k % 4 == 1 ? 100 : 127;
    if (p.clamp_min > p.clamp_max) p.clamp_min = -128;
    cases.push_back(p);
  }
  engine::AddParams big;  // multipliers outside int16: the fallback
  big.multiplier_a = 70000;
  big.multiplier_b = -40000;
  big.shift = 17;
  cases.push_back(big);
  engine::AddParams edge;  // int16 extremes
  edge.multiplier_a = -32768;
  edge.multiplier_b = 32767;
  edge.shift = 15;
  cases.push_back(edge);
  for (size_t k = 0; k < cases.size(); ++k) {
    SCOPED_TRACE(absl::StrCat("params case ", k));
    const engine::ModelGraph g =
        OneNodeGraph(engine::OpKind::kAdd, cases[k], DataType::kInt8, 2, shape);
    const std::vector<int8_t> want = ReferenceInt8(g, {&a, &b});
    for (const auto& [begin, end] : Ranges(n)) {
      ASSERT_NO_FATAL_FAILURE(
          CheckRange(want, begin, end, [&](int8_t* y, int64_t s, int64_t e) {
            AddFor(isa)(cases[k], a.data<int8_t>(), b.data<int8_t>(), y, s, e);
          }));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, AddKernelTest,
                         ::testing::Values(CpuIsa::kScalar, CpuIsa::kAvx2),
                         [](const ::testing::TestParamInfo<CpuIsa>& info) {
                           return std::string(CpuIsaName(info.param));
                         });

class QuantizeKernelTest : public ::testing::TestWithParam<CpuIsa> {};

TEST_P(QuantizeKernelTest, MatchesReferenceBitExact) {
  const CpuIsa isa = GetParam();
  if (!CpuSupports(isa)) GTEST_SKIP() << "this CPU lacks " << CpuIsaName(isa);
  const std::vector<int64_t> shape = {1, 3, 13, 17};  // 663 elements
  VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor x,
                                Tensor::Create(DataType::kFloat32, shape));
  const int64_t n = x.num_elements();
  std::mt19937 rng(91);
  std::uniform_real_distribution<float> wide(-40.0f, 40.0f);
  std::uniform_int_distribution<int> half(-300, 300);
  float* xf = x.data<float>();
  for (int64_t i = 0; i < n; ++i) xf[i] = wide(rng);
  // Ties (round half to even), signed zero, non-finite and huge values.
  for (int64_t i = 0; i < n; i += 5) xf[i] = (half(rng) + 0.5f) * 0.25f;
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(),
                            -std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            -0.0f,
                            0.125f,
                            -0.125f,
                            0.375f,
                            3e38f,
                            -3e38f,
                            std::numeric_limits<float>::denorm_min(),
                            1e-30f};
  for (size_t k = 0; k < sizeof(specials) / sizeof(specials[0]); ++k) {
    xf[3 + 37 * k] = specials[k];
  }
  for (const auto& [scale, zp] :
       std::vector<std::pair<float, int>>{{0.25f, 0},
                                          {0.25f, -128},
                                          {0.0173f, 5},
                                          {1.0f, 127},
                                          {3.7f, -7},
                                          {1e-3f, 300},
                                          {0.5f, -300}}) {
    SCOPED_TRACE(absl::StrCat("scale ", scale, " zp ", zp));
    engine::QuantizeParams p;
    p.scale = scale;
    p.zero_point = zp;
    const engine::ModelGraph g = OneNodeGraph(engine::OpKind::kQuantize, p,
                                              DataType::kFloat32, 1, shape);
    const std::vector<int8_t> want = ReferenceInt8(g, {&x});
    for (const auto& [begin, end] : Ranges(n)) {
      ASSERT_NO_FATAL_FAILURE(
          CheckRange(want, begin, end, [&](int8_t* y, int64_t s, int64_t e) {
            QuantizeFor(isa)(p, xf, y, s, e);
          }));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, QuantizeKernelTest,
                         ::testing::Values(CpuIsa::kScalar, CpuIsa::kAvx2),
                         [](const ::testing::TestParamInfo<CpuIsa>& info) {
                           return std::string(CpuIsaName(info.param));
                         });

}  // namespace
}  // namespace vtaserve::cpu
