// Layout conversion kernels against a naive per-element copy, including the
// 16x16 tiled path and its tails.
#include "cpu_backend/kernels/elementwise.h"

#include <random>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

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

}  // namespace
}  // namespace vtaserve::cpu
