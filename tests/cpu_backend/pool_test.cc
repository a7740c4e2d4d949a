// MaxPool kernel variants (each ISA path forced) bit-exact against the
// engine's reference over channel counts that do not divide the vector
// widths, several windows and paddings, NHWC and NCHW inputs, row ranges
// split over 1, 2 and 5 threads, with guard bytes around the output.
#include "cpu_backend/kernels/pool.h"

#include <algorithm>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cpu_backend/cpu_isa.h"
#include "cpu_backend/parallel.h"
#include "engine/reference_ops.h"
#include "engine/tensor.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace vtaserve::cpu {
namespace {

constexpr int kGuard = 48;
constexpr uint8_t kGuardByte = 0xC3;

struct PoolCase {
  int c, h, w, k, s, pt, pl, pb, pr;
};

std::string CaseName(const PoolCase& p) {
  return absl::StrCat("c", p.c, "_", p.h, "x", p.w, "_k", p.k, "s", p.s, "_p",
                      p.pt, p.pl, p.pb, p.pr);
}

using PoolParam = std::tuple<CpuIsa, PoolCase>;

class MaxPoolKernelTest : public ::testing::TestWithParam<PoolParam> {};

TEST_P(MaxPoolKernelTest, MatchesReferenceBitExact) {
  const auto& [isa, pc] = GetParam();
  if (!CpuSupports(isa)) GTEST_SKIP() << "this CPU lacks " << CpuIsaName(isa);
  engine::PoolParams p;
  p.kernel_h = p.kernel_w = pc.k;
  p.stride_h = p.stride_w = pc.s;
  p.pad_top = pc.pt;
  p.pad_left = pc.pl;
  p.pad_bottom = pc.pb;
  p.pad_right = pc.pr;
  const int oh = (pc.h + pc.pt + pc.pb - pc.k) / pc.s + 1;
  const int ow = (pc.w + pc.pl + pc.pr - pc.k) / pc.s + 1;
  engine::ModelGraph g;
  g.name = "pool";
  g.values = {{"x", DataType::kInt8, {1, pc.c, pc.h, pc.w}, 0.1f, 0},
              {"y", DataType::kInt8, {1, pc.c, oh, ow}, 0.1f, 0}};
  g.nodes.push_back({"pool", engine::OpKind::kMaxPool, {0}, {1}, p});
  g.inputs = {0};
  g.outputs = {1};
  ASSERT_THAT(g.Validate(), ::vtaserve::testing::IsOk());

  std::mt19937 rng(pc.c * 31 + pc.h * 7 + pc.k);
  std::uniform_int_distribution<int> x8(-128, 127);
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      Tensor x, Tensor::Create(DataType::kInt8, {1, pc.c, pc.h, pc.w}));
  int8_t* xn = x.data<int8_t>();
  for (int64_t i = 0; i < x.num_elements(); ++i)
    xn[i] = static_cast<int8_t>(x8(rng));
  // Windows whose maximum is -128 (the initial value): every channel's first
  // rows.
  for (int ch = 0; ch < pc.c; ++ch) {
    for (int i = 0; i < std::min(pc.h, pc.k + 1) * pc.w; ++i) {
      xn[size_t(ch) * pc.h * pc.w + i] = -128;
    }
  }
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      Tensor want, Tensor::Create(DataType::kInt8, {1, pc.c, oh, ow}));
  Tensor* want_ptr = &want;
  const Tensor* x_ptr = &x;
  ASSERT_THAT(
      engine::RunReferenceNode(g, g.nodes[0], {&x_ptr, 1}, {&want_ptr, 1}),
      ::vtaserve::testing::IsOk());
  std::vector<int8_t> x_nhwc(x.num_elements());
  for (int ch = 0; ch < pc.c; ++ch) {
    for (int i = 0; i < pc.h * pc.w; ++i) {
      x_nhwc[size_t(i) * pc.c + ch] = xn[size_t(ch) * pc.h * pc.w + i];
    }
  }
  const PoolShape shape{pc.c, pc.h, pc.w, oh, ow};
  const auto fn = isa == CpuIsa::kAvx2 ? &MaxPoolS8Avx2 : &MaxPoolS8;
  for (const Layout layout : {Layout::kNhwc, Layout::kNchw}) {
    for (const int threads : {1, 2, 5}) {
      SCOPED_TRACE(absl::StrCat(layout == Layout::kNchw ? "nchw" : "nhwc",
                                " input, threads ", threads));
      const int8_t* in = layout == Layout::kNchw ? xn : x_nhwc.data();
      const Strides xs = MakeStrides(layout, pc.c, pc.h, pc.w);
      std::vector<uint8_t> out(size_t(pc.c) * oh * ow + 2 * kGuard, kGuardByte);
      int8_t* y = reinterpret_cast<int8_t*>(out.data() + kGuard);
      ThreadPool pool(threads);
      pool.ParallelFor(
          oh, [&](int64_t b, int64_t e) { fn(p, shape, in, xs, y, b, e); });
      for (int i = 0; i < kGuard; ++i) {
        ASSERT_EQ(out[i], kGuardByte) << "guard byte before the output, " << i;
        ASSERT_EQ(out[out.size() - 1 - i], kGuardByte)
            << "guard byte after the output, " << i;
      }
      for (int ch = 0; ch < pc.c; ++ch) {
        for (int i = 0; i < oh * ow; ++i) {
          ASSERT_EQ(y[size_t(i) * pc.c + ch],
                    want.data<int8_t>()[size_t(ch) * oh * ow + i])
              << "channel " << ch << " pixel " << i;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Sweep, MaxPoolKernelTest,
    ::testing::Combine(
        ::testing::Values(CpuIsa::kScalar, CpuIsa::kAvx2),
        ::testing::Values(PoolCase{64, 21, 19, 3, 2, 1, 1, 1, 1},  // ResNet's
                          PoolCase{1, 9, 8, 3, 2, 1, 1, 1, 1},
                          PoolCase{3, 7, 9, 2, 2, 0, 0, 0, 0},
                          PoolCase{16, 8, 8, 3, 1, 1, 1, 1, 1},
                          PoolCase{17, 11, 6, 3, 2, 1, 0, 2, 1},
                          PoolCase{32, 5, 5, 5, 1, 2, 2, 2, 2},
                          PoolCase{48, 6, 13, 2, 1, 0, 1, 1, 0},
                          PoolCase{65, 9, 9, 3, 2, 1, 1, 1, 1},
                          PoolCase{100, 4, 3, 3, 3, 1, 1, 1, 1})),
    [](const ::testing::TestParamInfo<PoolParam>& info) {
      return absl::StrCat(CpuIsaName(std::get<0>(info.param)), "_",
                          CaseName(std::get<1>(info.param)));
    });

}  // namespace
}  // namespace vtaserve::cpu
