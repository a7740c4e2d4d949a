// Every conv kernel variant, each ISA path forced, bit-exact against
// engine::ReferenceConv over a sweep of shapes, with guard bytes around the
// output and 1, 2 and more-than-cores thread counts.
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cpu_backend/cpu_isa.h"
#include "cpu_backend/kernels/conv.h"
#include "cpu_backend/parallel.h"
#include "engine/reference_ops.h"
#include "gtest/gtest.h"
#include "tests/cpu_backend/avx_vnni_emulated.h"
#include "tests/cpu_backend/test_graphs.h"
#include "tests/testing/status_matchers.h"

namespace vtaserve::cpu {
namespace {

using testing::ConvShape;

constexpr int kGuard = 64;
constexpr uint8_t kGuardByte = 0xA7;

std::vector<ConvShape> SweepShapes() {
  std::vector<ConvShape> shapes;
  const int kernels[] = {1, 3, 5, 7};
  const int strides[] = {1, 2};
  const int cins[] = {1, 3, 4, 8, 16, 64};
  const int couts[] = {5, 16, 17, 33};
  const int hs[] = {9, 7, 12, 15, 8};
  const int ws[] = {11, 13, 8, 17, 29};
  const int in_zps[] = {0, -128, 37, 127, -5};
  const int out_zps[] = {0, -128, 5, -20};
  int i = 0;
  for (int k : kernels) {
    for (int s : strides) {
      for (int cin : cins) {
        ConvShape c;
        c.cin = cin;
        c.cout = couts[i % 4];
        c.h = hs[i % 5];
        c.w = ws[(i / 2) % 5];
        c.kh = c.kw = k;
        c.sh = c.sw = s;
        switch (i % 3) {
          case 0:  // symmetric "same" padding
            c.pt = c.pl = c.pb = c.pr = k / 2;
            break;
          case 1:  // asymmetric padding
            c.pt = k / 2;
            c.pl = k - 1;
            c.pb = 0;
            c.pr = k / 2 + (k > 1 ? 1 : 0);
            break;
          default:  // none
            break;
        }
        c.in_zp = in_zps[i % 5];
        c.out_zp = out_zps[(i / 3) % 4];
        c.relu = (i % 2) == 1;
        shapes.push_back(c);
        ++i;
      }
    }
  }
  // Non-square kernels, dilation, wide rows (AVX-512 12-pixel tiles and
  // tails), the RGB stem and ResNet's mid-size layers in miniature.
  ConvShape c;
  c = ConvShape{};
  c.cin = 8;
  c.cout = 20;
  c.h = 10;
  c.w = 9;
  c.kh = 1;
  c.kw = 7;
  c.pl = 3;
  c.pr = 3;
  c.in_zp = -128;
  c.out_zp = -128;
  shapes.push_back(c);
  c = ConvShape{};
  c.cin = 3;
  c.cout = 7;
  c.h = 11;
  c.w = 10;
  c.kh = 3;
  c.kw = 1;
  c.pt = 2;
  c.pb = 1;
  c.in_zp = 100;
  c.relu = true;
  shapes.push_back(c);
  c = ConvShape{};
  c.cin = 16;
  c.cout = 18;
  c.h = 13;
  c.w = 14;
  c.kh = c.kw = 3;
  c.dh = 2;
  c.dw = 2;
  c.pt = c.pl = c.pb = c.pr = 2;
  c.in_zp = -60;
  shapes.push_back(c);
  c = ConvShape{};
  c.cin = 5;
  c.cout = 9;
  c.h = 9;
  c.w = 9;
  c.kh = c.kw = 3;
  c.dw = 2;
  c.pl = 2;
  shapes.push_back(c);
  c = ConvShape{};
  c.cin = 3;
  c.cout = 64;
  c.h = 33;
  c.w = 37;
  c.kh = c.kw = 7;
  c.sh = c.sw = 2;
  c.pt = c.pl = c.pb = c.pr = 3;
  c.in_zp = -128 + 0x75;
  c.out_zp = -128;
  c.relu = true;
  shapes.push_back(c);
  c = ConvShape{};
  c.cin = 64;
  c.cout = 64;
  c.h = 7;
  c.w = 53;
  c.kh = c.kw = 3;
  c.pt = c.pl = c.pb = c.pr = 1;
  c.in_zp = -128;
  c.out_zp = 3;
  shapes.push_back(c);
  c = ConvShape{};
  c.cin = 1;
  c.cout = 3;
  c.h = 1;
  c.w = 1;
  c.kh = c.kw = 3;
  c.pt = c.pl = c.pb = c.pr = 1;
  c.in_zp = 90;
  shapes.push_back(c);
  // Packed weights past kConvPixelMajorWeightBytes: block-major unit order
  // (with a partial last block) for the direct paths; the AVX2 Winograd
  // path's weights (640 KiB) take its fused form.
  c = ConvShape{};
  c.cin = 256;
  c.cout = 70;
  c.h = 5;
  c.w = 6;
  c.kh = c.kw = 3;
  c.pt = c.pl = c.pb = c.pr = 1;
  c.in_zp = -128;
  c.out_zp = -128;
  c.relu = true;
  shapes.push_back(c);
  c.h = 9;
  c.w = 7;
  c.sh = c.sw = 2;
  c.in_zp = 11;
  c.relu = false;
  shapes.push_back(c);
  // Winograd weights past kConvWinogradPixelMajorWeightBytes (1.25 MiB):
  // the separate transform and block-major units.
  c = ConvShape{};
  c.cin = 512;
  c.cout = 70;
  c.h = 6;
  c.w = 5;
  c.kh = c.kw = 3;
  c.pt = c.pl = c.pb = c.pr = 1;
  c.in_zp = 20;
  c.out_zp = -7;
  shapes.push_back(c);
  return shapes;
}

std::string ShapeName(const ConvShape& c) {
  return absl::StrCat("c", c.cin, "to", c.cout, "_", c.h, "x", c.w, "_k", c.kh,
                      "x", c.kw, "_s", c.sh, "x", c.sw, "_d", c.dh, "x", c.dw,
                      "_p", c.pt, c.pl, c.pb, c.pr, "_zi", c.in_zp + 128, "_zo",
                      c.out_zp + 128, c.relu ? "_relu" : "");
}

// An ISA path, for AVX2 whether Winograd (and row pairs) may be chosen,
// and whether the kernel is the AVX-VNNI one with emulated vpdpbusd
// (avx_vnni_emulated.h; runs on AVX2).
struct KernelPath {
  CpuIsa isa;
  bool winograd;
  bool emulated = false;
};
using KernelParam = std::tuple<KernelPath, ConvShape>;

class ConvKernelTest : public ::testing::TestWithParam<KernelParam> {};

TEST_P(ConvKernelTest, MatchesReferenceBitExact) {
  const auto& [path, shape] = GetParam();
  const CpuIsa isa = path.isa;
  const CpuIsa needs = path.emulated ? CpuIsa::kAvx2 : isa;
  if (!CpuSupports(needs)) {
    GTEST_SKIP() << "this CPU lacks " << CpuIsaName(needs)
                 << "; that path is not exercised here";
  }
  std::mt19937 rng(1234 + shape.cin * 7 + shape.kh * 131 + shape.cout);
  const engine::ConvParams p = testing::RandomConvParams(shape, rng);
  const int oh = shape.out_h(), ow = shape.out_w();
  ASSERT_GT(oh, 0);
  ASSERT_GT(ow, 0);

  // Random NCHW input over the full int8 range, and its NHWC copy.
  std::uniform_int_distribution<int> x8(-128, 127);
  std::vector<int8_t> x_nchw(size_t(shape.cin) * shape.h * shape.w);
  for (int8_t& v : x_nchw) v = static_cast<int8_t>(x8(rng));
  std::vector<int8_t> x_nhwc(x_nchw.size());
  for (int c = 0; c < shape.cin; ++c) {
    for (int i = 0; i < shape.h * shape.w; ++i) {
      x_nhwc[size_t(i) * shape.cin + c] =
          x_nchw[size_t(c) * shape.h * shape.w + i];
    }
  }
  std::vector<int8_t> want(size_t(shape.cout) * oh * ow);
  engine::ReferenceConv(p, x_nchw.data(), shape.h, shape.w, want.data(), oh,
                        ow);

  VTASERVE_ASSERT_OK_AND_ASSIGN(
      PackedConv pc, PackConv(p, shape.h, shape.w, oh, ow, isa, path.winograd));
  if (!path.winograd) {
    EXPECT_FALSE(pc.winograd);
    EXPECT_FALSE(pc.row_pairs);
  }
  const ConvKernelFn kernel =
      path.emulated ? &ConvS8AvxVnniEmulated_6x16 : ConvKernelFor(isa);
  for (const Layout layout : {Layout::kNchw, Layout::kNhwc}) {
    for (const int threads : {1, 2, 5}) {
      SCOPED_TRACE(absl::StrCat(layout == Layout::kNchw ? "nchw" : "nhwc",
                                " input, threads ", threads));
      ThreadPool pool(threads);
      VTASERVE_ASSERT_OK_AND_ASSIGN(
          Tensor buf, Tensor::Create(DataType::kUInt8, {pc.BufferBytes()}));
      const int8_t* x = layout == Layout::kNchw ? x_nchw.data() : x_nhwc.data();
      const Strides xs = MakeStrides(layout, shape.cin, shape.h, shape.w);
      pool.ParallelFor(pc.hp, [&](int64_t b, int64_t e) {
        ConvPackInput(pc, x, xs, buf.bytes(), b, e);
      });
      const uint8_t* operand = buf.bytes();
      Tensor v;
      if (pc.winograd) {
        VTASERVE_ASSERT_OK_AND_ASSIGN(
            v, Tensor::Create(DataType::kUInt8, {pc.TransformedBytes()}));
        pool.ParallelFor(pc.Tiles(), [&](int64_t b, int64_t e) {
          ConvWinogradInputAvx2(pc, buf.bytes(), v.bytes(), b, e);
        });
        operand = v.bytes();
      } else if (pc.row_pairs) {
        VTASERVE_ASSERT_OK_AND_ASSIGN(
            v, Tensor::Create(DataType::kUInt8, {pc.TransformedBytes()}));
        pool.ParallelFor(pc.out_pairs, [&](int64_t b, int64_t e) {
          ConvRowPairsInputAvx2(pc, buf.bytes(), v.bytes(), b, e);
        });
        operand = v.bytes();
      }
      std::vector<uint8_t> out(want.size() + 2 * kGuard, kGuardByte);
      int8_t* y = reinterpret_cast<int8_t*>(out.data() + kGuard);
      pool.ParallelFor(pc.Units(), [&](int64_t b, int64_t e) {
        kernel(pc, operand, y, b, e);
      });
      {
        // Self-scheduled blocks of units (as the backend runs them) must
        // write the same bytes.
        std::vector<uint8_t> dynamic(out.size(), kGuardByte);
        pool.ParallelForDynamic(
            pc.Units(),
            [&](int64_t b, int64_t e) {
              kernel(pc, operand,
                     reinterpret_cast<int8_t*>(dynamic.data() + kGuard), b, e);
            },
            3);
        ASSERT_EQ(dynamic, out) << "ParallelForDynamic";
      }
      if (pc.winograd) {
        // The fused form (transform per pixel group, then every block) must
        // write the same bytes.
        std::vector<uint8_t> fused(out.size(), kGuardByte);
        pool.ParallelFor(pc.pixel_groups, [&](int64_t b, int64_t e) {
          ConvWinogradGroupsAvx2(
              pc, buf.bytes(), v.bytes(),
              reinterpret_cast<int8_t*>(fused.data() + kGuard), b, e);
        });
        ASSERT_EQ(fused, out) << "ConvWinogradGroupsAvx2";
      }
      if (pc.row_pairs) {
        // The fused form (transform per output-row pair, then every block).
        std::vector<uint8_t> fused(out.size(), kGuardByte);
        pool.ParallelForDynamic(
            pc.out_pairs,
            [&](int64_t b, int64_t e) {
              ConvRowPairsGroupsAvx2(
                  pc, buf.bytes(), v.bytes(),
                  reinterpret_cast<int8_t*>(fused.data() + kGuard), b, e);
            },
            1);
        ASSERT_EQ(fused, out) << "ConvRowPairsGroupsAvx2";
      }
      for (int i = 0; i < kGuard; ++i) {
        ASSERT_EQ(out[i], kGuardByte) << "guard byte before the output, " << i;
        ASSERT_EQ(out[kGuard + want.size() + i], kGuardByte)
            << "guard byte after the output, " << i;
      }
      int mismatches = 0;
      for (int c = 0; c < shape.cout && mismatches < 5; ++c) {
        for (int i = 0; i < oh * ow && mismatches < 5; ++i) {
          const int got = y[size_t(i) * shape.cout + c];
          const int exp = want[size_t(c) * oh * ow + i];
          if (got != exp) {
            ADD_FAILURE() << "channel " << c << " pixel " << i << ": got "
                          << got << " want " << exp;
            ++mismatches;
          }
        }
      }
      ASSERT_EQ(mismatches, 0);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Sweep, ConvKernelTest,
    ::testing::Combine(
        ::testing::Values(KernelPath{CpuIsa::kScalar, false},
                          KernelPath{CpuIsa::kAvx2, true},
                          KernelPath{CpuIsa::kAvx2, false},
                          KernelPath{CpuIsa::kAvxVnni, false},
                          KernelPath{CpuIsa::kAvxVnni, false, true},
                          KernelPath{CpuIsa::kAvx512Vnni, false}),
        ::testing::ValuesIn(SweepShapes())),
    [](const ::testing::TestParamInfo<KernelParam>& info) {
      const KernelPath path = std::get<0>(info.param);
      return absl::StrCat(
          CpuIsaName(path.isa),
          path.isa == CpuIsa::kAvx2 && !path.winograd ? "_direct" : "",
          path.emulated ? "_emulated" : "", "_",
          ShapeName(std::get<1>(info.param)));
    });

// ResNet's stem: 3 -> 64 channels, 224 x 224, 7x7 stride 2, padding 3.
ConvShape RgbStemShape() {
  ConvShape s;
  s.cin = 3;
  s.cout = 64;
  s.h = s.w = 224;
  s.kh = s.kw = 7;
  s.sh = s.sw = 2;
  s.pt = s.pl = s.pb = s.pr = 3;
  return s;
}

TEST(PackConvTest, WindowReductionForRgbStem) {
  const ConvShape s = RgbStemShape();
  std::mt19937 rng(1);
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      PackedConv pc, PackConv(testing::RandomConvParams(s, rng), 224, 224, 112,
                              112, CpuIsa::kScalar));
  EXPECT_TRUE(pc.window);
  EXPECT_EQ(pc.taps, 7);
  EXPECT_EQ(pc.kred, 24);  // 7 x 3 = 21 padded to 24, not 7 x 4 per row
  EXPECT_EQ(pc.ocb, 4);
}

TEST(PackConvTest, WinogradOnlyForThreeByThreeStrideOneOnAvx2) {
  ConvShape s;
  s.cin = 64;
  s.cout = 32;
  s.h = s.w = 14;
  s.kh = s.kw = 3;
  s.pt = s.pl = s.pb = s.pr = 1;
  std::mt19937 rng(3);
  const engine::ConvParams p = testing::RandomConvParams(s, rng);
  VTASERVE_ASSERT_OK_AND_ASSIGN(PackedConv avx2,
                                PackConv(p, 14, 14, 14, 14, CpuIsa::kAvx2));
  EXPECT_TRUE(avx2.winograd);
  EXPECT_EQ(avx2.Tiles(), 49);
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      PackedConv direct, PackConv(p, 14, 14, 14, 14, CpuIsa::kAvx2, false));
  EXPECT_FALSE(direct.winograd);
  VTASERVE_ASSERT_OK_AND_ASSIGN(PackedConv scalar,
                                PackConv(p, 14, 14, 14, 14, CpuIsa::kScalar));
  EXPECT_FALSE(scalar.winograd);
  s.sh = s.sw = 2;
  const engine::ConvParams strided = testing::RandomConvParams(s, rng);
  VTASERVE_ASSERT_OK_AND_ASSIGN(PackedConv s2,
                                PackConv(strided, 14, 14, 7, 7, CpuIsa::kAvx2));
  EXPECT_FALSE(s2.winograd);
}

TEST(PackConvTest, RowPairsOnlyForSevenRowStrideTwoWindowStemsOnAvx2) {
  const ConvShape s = RgbStemShape();
  std::mt19937 rng(4);
  auto pack = [&](const ConvShape& shape, CpuIsa isa, bool allow = true) {
    return PackConv(testing::RandomConvParams(shape, rng), shape.h, shape.w,
                    shape.out_h(), shape.out_w(), isa, allow);
  };
  VTASERVE_ASSERT_OK_AND_ASSIGN(PackedConv stem, pack(s, CpuIsa::kAvx2));
  EXPECT_TRUE(stem.row_pairs);
  EXPECT_EQ(stem.out_pairs, 56);
  EXPECT_EQ(stem.taps, kRowPairPoints);
  EXPECT_EQ(stem.kred, 22);
  EXPECT_EQ(stem.unit_items, 56 * 112);
  VTASERVE_ASSERT_OK_AND_ASSIGN(PackedConv off, pack(s, CpuIsa::kAvx2, false));
  EXPECT_FALSE(off.row_pairs);
  VTASERVE_ASSERT_OK_AND_ASSIGN(PackedConv scalar, pack(s, CpuIsa::kScalar));
  EXPECT_FALSE(scalar.row_pairs);
  ConvShape t = s;
  t.sh = 1;
  VTASERVE_ASSERT_OK_AND_ASSIGN(PackedConv s1, pack(t, CpuIsa::kAvx2));
  EXPECT_FALSE(s1.row_pairs);
  t = s;
  t.kh = 5;
  VTASERVE_ASSERT_OK_AND_ASSIGN(PackedConv k5, pack(t, CpuIsa::kAvx2));
  EXPECT_FALSE(k5.row_pairs);
  t = s;
  t.cin =
      17;  // still the window scheme (119 -> 120 < 7 x 18), too many channels
  VTASERVE_ASSERT_OK_AND_ASSIGN(PackedConv c17, pack(t, CpuIsa::kAvx2));
  EXPECT_TRUE(c17.window);
  EXPECT_FALSE(c17.row_pairs);
}

// Row pairs at the extremes: 15 channels (the most it takes: on AVX2 only
// odd channel counts make the window scheme), every weight
// -128 or 127, and rows of -128 and 127 alternating so that the transformed
// rows reach |V| = 255; odd output heights (a dropped last row) and widths.
TEST(ConvRowPairsTest, ExactAtExtremeValues) {
  if (!CpuSupports(CpuIsa::kAvx2)) GTEST_SKIP() << "this CPU lacks avx2";
  for (const int h : {19, 20}) {
    SCOPED_TRACE(absl::StrCat("H ", h));
    ConvShape s;
    s.cin = 15;
    s.cout = 18;
    s.h = h;
    s.w = 13;
    s.kh = s.kw = 7;
    s.sh = s.sw = 2;
    s.pt = 3;
    s.pl = 2;
    s.pb = 4;
    s.pr = 3;
    s.in_zp = -128;
    std::mt19937 rng(8);
    engine::ConvParams p = testing::RandomConvParams(s, rng);
    for (size_t i = 0; i < p.weights.size(); ++i) {
      // Channel 0: -128 on even kernel rows, 127 on odd ones; the rest of
      // the channels all -128.
      const int kh = static_cast<int>(i / s.kw % s.kh);
      p.weights[i] =
          i < size_t(s.cin) * 49 && kh % 2 == 1 ? int8_t{127} : int8_t{-128};
    }
    for (int c = 0; c < s.cout; ++c) p.shift[c] = 21;
    std::vector<int8_t> x(size_t(s.cin) * s.h * s.w);
    for (size_t i = 0; i < x.size(); ++i) {
      x[i] = (i / s.w) % 2 == 0 ? int8_t{-128} : int8_t{127};
    }
    const int oh = s.out_h(), ow = s.out_w();
    std::vector<int8_t> want(size_t(s.cout) * oh * ow);
    engine::ReferenceConv(p, x.data(), s.h, s.w, want.data(), oh, ow);
    VTASERVE_ASSERT_OK_AND_ASSIGN(PackedConv pc,
                                  PackConv(p, s.h, s.w, oh, ow, CpuIsa::kAvx2));
    ASSERT_TRUE(pc.row_pairs);
    VTASERVE_ASSERT_OK_AND_ASSIGN(
        Tensor buf, Tensor::Create(DataType::kUInt8, {pc.BufferBytes()}));
    ConvPackInput(pc, x.data(), MakeStrides(Layout::kNchw, s.cin, s.h, s.w),
                  buf.bytes(), 0, pc.hp);
    VTASERVE_ASSERT_OK_AND_ASSIGN(
        Tensor v, Tensor::Create(DataType::kUInt8, {pc.TransformedBytes()}));
    ConvRowPairsInputAvx2(pc, buf.bytes(), v.bytes(), 0, pc.out_pairs);
    std::vector<int8_t> got(want.size() + kGuard, int8_t{0x55});
    ConvKernelFor(CpuIsa::kAvx2)(pc, v.bytes(), got.data(), 0, pc.Units());
    for (int i = 0; i < kGuard; ++i) ASSERT_EQ(got[want.size() + i], 0x55) << i;
    for (int c = 0; c < s.cout; ++c) {
      for (int i = 0; i < oh * ow; ++i) {
        ASSERT_EQ(got[size_t(i) * s.cout + c], want[size_t(c) * oh * ow + i])
            << "channel " << c << " pixel " << i;
      }
    }
  }
}

// The integer Winograd path is exact while 9 * C_in * 2^14 < 2^29: at the
// largest C_in it takes, with every product at its maximum (-128 * -128),
// and just past it (even, so not the window scheme), where it must fall
// back to the direct scheme.
TEST(ConvWinogradTest, ExactAtTheChannelBound) {
  if (!CpuSupports(CpuIsa::kAvx2)) GTEST_SKIP() << "this CPU lacks avx2";
  for (const int cin : {3640, 3642}) {
    SCOPED_TRACE(absl::StrCat("C_in ", cin));
    ConvShape s;
    s.cin = cin;
    s.cout = 17;
    s.h = 3;
    s.w = 5;
    s.kh = s.kw = 3;
    s.pt = s.pl = s.pb = s.pr = 1;
    s.in_zp = -128;  // the padding products are maximal too
    std::mt19937 rng(5);
    engine::ConvParams p = testing::RandomConvParams(s, rng);
    for (size_t i = 0; i < p.weights.size(); ++i) {
      // Output channel 0 all -128 (the largest sum), the rest mixed.
      p.weights[i] = i < size_t(cin) * 9 ? int8_t{-128} : p.weights[i];
    }
    for (int c = 0; c < s.cout; ++c) p.shift[c] = 23;
    p.bias[0] = 1000;
    std::vector<int8_t> x(size_t(cin) * s.h * s.w, int8_t{-128});
    std::vector<int8_t> want(size_t(s.cout) * s.h * s.w);
    engine::ReferenceConv(p, x.data(), s.h, s.w, want.data(), s.h, s.w);
    VTASERVE_ASSERT_OK_AND_ASSIGN(
        PackedConv pc, PackConv(p, s.h, s.w, s.h, s.w, CpuIsa::kAvx2));
    EXPECT_EQ(pc.winograd, cin <= 3640);
    VTASERVE_ASSERT_OK_AND_ASSIGN(
        Tensor buf, Tensor::Create(DataType::kUInt8, {pc.BufferBytes()}));
    ConvPackInput(pc, x.data(), MakeStrides(Layout::kNchw, cin, s.h, s.w),
                  buf.bytes(), 0, pc.hp);
    const uint8_t* operand = buf.bytes();
    Tensor v;
    if (pc.winograd) {
      VTASERVE_ASSERT_OK_AND_ASSIGN(
          v, Tensor::Create(DataType::kUInt8, {pc.TransformedBytes()}));
      ConvWinogradInputAvx2(pc, buf.bytes(), v.bytes(), 0, pc.Tiles());
      operand = v.bytes();
    }
    std::vector<int8_t> got(want.size());
    ConvKernelFor(CpuIsa::kAvx2)(pc, operand, got.data(), 0, pc.Units());
    for (int c = 0; c < s.cout; ++c) {
      for (int i = 0; i < s.h * s.w; ++i) {
        ASSERT_EQ(got[size_t(i) * s.cout + c], want[size_t(c) * s.h * s.w + i])
            << "channel " << c << " pixel " << i;
      }
    }
  }
}

// Small packed weights order units pixel-major, large ones block-major, and
// either way the units cover every (block, output pixel or tile) once.
TEST(PackConvTest, UnitsCoverEveryOutputOnceInEitherOrder) {
  struct Case {
    ConvShape shape;
    CpuIsa isa;
    bool pixel_major;
  };
  std::vector<Case> cases;
  ConvShape stem;
  stem.cin = 3;
  stem.cout = 64;
  stem.h = stem.w = 40;
  stem.kh = stem.kw = 7;
  stem.sh = stem.sw = 2;
  stem.pt = stem.pl = stem.pb = stem.pr = 3;
  cases.push_back({stem, CpuIsa::kAvx2, true});
  ConvShape big;
  big.cin = 256;
  big.cout = 70;
  big.h = 5;
  big.w = 6;
  big.kh = big.kw = 3;
  big.pt = big.pl = big.pb = big.pr = 1;
  cases.push_back(
      {big, CpuIsa::kAvx2, true});  // Winograd int16, 640 KiB: fused
  cases.push_back({big, CpuIsa::kScalar, true});  // direct int8, 180 KiB
  big.cin = 512;
  cases.push_back({big, CpuIsa::kAvx2, false});    // Winograd int16, 1.25 MiB
  cases.push_back({big, CpuIsa::kScalar, false});  // direct int8, 360 KiB
  big.cout = 20;
  cases.push_back({big, CpuIsa::kScalar, true});  // 144 KiB
  for (const Case& c : cases) {
    SCOPED_TRACE(ShapeName(c.shape));
    std::mt19937 rng(9);
    VTASERVE_ASSERT_OK_AND_ASSIGN(
        PackedConv pc,
        PackConv(testing::RandomConvParams(c.shape, rng), c.shape.h, c.shape.w,
                 c.shape.out_h(), c.shape.out_w(), c.isa));
    EXPECT_EQ(pc.pixel_major, c.pixel_major);
    std::vector<int> seen(size_t(pc.ocb) * pc.unit_items, 0);
    for (int64_t u = 0; u < pc.Units(); ++u) {
      const ConvUnit cu = DecodeConvUnit(pc, u);
      ASSERT_GE(cu.block, 0);
      ASSERT_LT(cu.block, pc.ocb);
      ASSERT_LE(cu.pix_end - cu.pix_begin, kConvUnitPixels);
      for (int64_t i = cu.pix_begin; i < cu.pix_end; ++i) {
        ++seen[size_t(cu.block) * pc.unit_items + i];
      }
    }
    for (size_t i = 0; i < seen.size(); ++i)
      ASSERT_EQ(seen[i], 1) << "item " << i;
  }
}

TEST(PackConvTest, RejectsAutoIsa) {
  ConvShape s;
  s.cin = s.cout = s.h = s.w = 4;
  std::mt19937 rng(1);
  EXPECT_THAT(
      PackConv(testing::RandomConvParams(s, rng), 4, 4, 4, 4, CpuIsa::kAuto)
          .status(),
      ::vtaserve::testing::StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CpuIsaTest, NamesRoundTrip) {
  for (CpuIsa isa : {CpuIsa::kAuto, CpuIsa::kScalar, CpuIsa::kAvx2,
                     CpuIsa::kAvxVnni, CpuIsa::kAvx512Vnni}) {
    VTASERVE_ASSERT_OK_AND_ASSIGN(CpuIsa back, CpuIsaFromName(CpuIsaName(isa)));
    EXPECT_EQ(back, isa);
  }
  EXPECT_THAT(
      CpuIsaFromName("sse9").status(),
      ::vtaserve::testing::StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(CpuSupports(BestCpuIsa()));
  EXPECT_NE(BestCpuIsa(), CpuIsa::kAuto);
}

}  // namespace
}  // namespace vtaserve::cpu
