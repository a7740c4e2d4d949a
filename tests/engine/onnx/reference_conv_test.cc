// ReferenceConv (engine/reference_ops.cc) computes its sums in a vectorizable
// order (the peer test runs ResNet-18 at 224 on it); this checks it against
// the literal per-output formula of graph.h on random shapes, strides,
// dilations, paddings and zero points. Lives here because the ONNX tests
// needed the speed-up.
#include <algorithm>
#include <vector>

#include "engine/graph.h"
#include "engine/reference_ops.h"
#include "gtest/gtest.h"
#include "tests/engine/onnx/onnx_test_util.h"

namespace vtaserve::engine {
namespace {

using ::vtaserve::engine::testing::NextRandom;

// graph.h's formula, written literally.
void LiteralConv(const ConvParams& p, const int8_t* x, int64_t in_h,
                 int64_t in_w, int8_t* y, int64_t out_h, int64_t out_w) {
  for (int oc = 0; oc < p.out_channels; ++oc) {
    for (int64_t oh = 0; oh < out_h; ++oh) {
      for (int64_t ow = 0; ow < out_w; ++ow) {
        int32_t acc = p.bias[oc];
        for (int ic = 0; ic < p.in_channels; ++ic) {
          for (int kh = 0; kh < p.kernel_h; ++kh) {
            for (int kw = 0; kw < p.kernel_w; ++kw) {
              const int64_t ih =
                  oh * p.stride_h + kh * p.dilation_h - p.pad_top;
              const int64_t iw =
                  ow * p.stride_w + kw * p.dilation_w - p.pad_left;
              int32_t xv = p.input_zero_point;
              if (ih >= 0 && ih < in_h && iw >= 0 && iw < in_w) {
                xv = x[(ic * in_h + ih) * in_w + iw];
              }
              acc += xv *
                     p.weights[((size_t(oc) * p.in_channels + ic) * p.kernel_h +
                                kh) *
                                   p.kernel_w +
                               kw];
            }
          }
        }
        y[(oc * out_h + oh) * out_w + ow] = RequantizeConvAcc(p, oc, acc);
      }
    }
  }
}

TEST(ReferenceConvTest, MatchesTheLiteralFormulaBitForBit) {
  uint64_t rng = 2024;
  auto rnd = [&](int lo, int hi) {
    return lo + static_cast<int>(NextRandom(rng) %
                                 static_cast<uint64_t>(hi - lo + 1));
  };
  for (int trial = 0; trial < 300; ++trial) {
    ConvParams p;
    p.in_channels = rnd(1, 5);
    p.out_channels = rnd(1, 6);
    p.kernel_h = rnd(1, 5);
    p.kernel_w = rnd(1, 5);
    p.stride_h = rnd(1, 3);
    p.stride_w = rnd(1, 3);
    p.dilation_h = rnd(1, 2);
    p.dilation_w = rnd(1, 2);
    p.pad_top = rnd(0, 3);
    p.pad_left = rnd(0, 3);
    p.pad_bottom = rnd(0, 3);
    p.pad_right = rnd(0, 3);
    p.input_zero_point = rnd(-128, 127);
    p.output_zero_point = rnd(-20, 20);
    p.clamp_min = rnd(-128, 0);
    const int64_t in_h = rnd(1, 12), in_w = rnd(1, 12);
    const int64_t eh = int64_t{p.dilation_h} * (p.kernel_h - 1) + 1;
    const int64_t ew = int64_t{p.dilation_w} * (p.kernel_w - 1) + 1;
    if (in_h + p.pad_top + p.pad_bottom < eh ||
        in_w + p.pad_left + p.pad_right < ew)
      continue;
    const int64_t out_h =
        (in_h + p.pad_top + p.pad_bottom - eh) / p.stride_h + 1;
    const int64_t out_w =
        (in_w + p.pad_left + p.pad_right - ew) / p.stride_w + 1;
    p.weights.resize(size_t(p.out_channels) * p.in_channels * p.kernel_h *
                     p.kernel_w);
    for (int8_t& w : p.weights)
      w = static_cast<int8_t>(rnd(-127, 127) * (rnd(0, 5) != 0));
    for (int c = 0; c < p.out_channels; ++c) {
      p.bias.push_back(rnd(-100000, 100000));
      p.shift.push_back(rnd(kMinShift, 12));
    }
    std::vector<int8_t> x(size_t(p.in_channels) * in_h * in_w);
    for (int8_t& v : x) v = static_cast<int8_t>(rnd(-128, 127));
    std::vector<int8_t> got(size_t(p.out_channels) * out_h * out_w, 1);
    std::vector<int8_t> want(got.size(), 2);
    ReferenceConv(p, x.data(), in_h, in_w, got.data(), out_h, out_w);
    LiteralConv(p, x.data(), in_h, in_w, want.data(), out_h, out_w);
    ASSERT_EQ(got, want) << "trial " << trial;
  }
}

}  // namespace
}  // namespace vtaserve::engine
