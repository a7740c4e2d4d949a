#include "vta_backend/sim/gemm_kernels.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "vta_backend/config.h"

namespace vtaserve::vta::sim {
namespace {

// SRAM images for one GEMM: random INP (int8 values widened to int16), WGT,
// ACC (including values near the int32 limits, so wrap-around shows), and
// uops.
struct Sram {
  int batch, bi, bo;
  std::vector<int16_t> inp;
  std::vector<int8_t> wgt;
  std::vector<int32_t> acc;
  std::vector<uint8_t> tracks;
  std::vector<isa::Uop> uops;
};

constexpr uint32_t kDepth = 512;  // elements of each buffer

Sram RandomSram(int batch, int bi, int bo, uint32_t seed) {
  std::mt19937 rng(seed);
  Sram s{batch, bi, bo, {}, {}, {}, {}, {}};
  s.inp.resize(size_t{kDepth} * batch * bi);
  s.wgt.resize(size_t{kDepth} * bi * bo);
  s.acc.resize(size_t{kDepth} * batch * bo);
  s.tracks.assign(kDepth, 0);
  for (auto& v : s.inp) v = static_cast<int8_t>(rng());
  for (auto& v : s.wgt) v = static_cast<int8_t>(rng());
  // Extremes too: -128 x -128 products and accumulators at the limits.
  for (size_t i = 0; i < s.inp.size(); i += 7) s.inp[i] = -128;
  for (size_t i = 0; i < s.wgt.size(); i += 5) s.wgt[i] = -128;
  for (size_t i = 0; i < s.acc.size(); ++i) {
    switch (i % 4) {
      case 0:
        s.acc[i] = std::numeric_limits<int32_t>::max() -
                   static_cast<int32_t>(rng() % 1000);
        break;
      case 1:
        s.acc[i] = std::numeric_limits<int32_t>::min() +
                   static_cast<int32_t>(rng() % 1000);
        break;
      default:
        s.acc[i] = static_cast<int32_t>(rng());
    }
  }
  return s;
}

GemmCall CallOn(Sram& s) {
  GemmCall c;
  c.acc = s.acc.data();
  c.out_tracks = s.tracks.data();
  c.inp = s.inp.data();
  c.wgt = s.wgt.data();
  c.uops = s.uops.data();
  c.uop_bgn = 0;
  c.uop_end = static_cast<uint32_t>(s.uops.size());
  c.batch = s.batch;
  c.block_in = s.bi;
  c.block_out = s.bo;
  return c;
}

// A loop/uop pattern; indices are kept inside kDepth.
struct Pattern {
  std::string name;
  uint32_t iter_out, iter_in;
  uint32_t dst_out, src_out, wgt_out;
  uint32_t dst_in, src_in, wgt_in;
  std::vector<isa::Uop> uops;
};

std::vector<Pattern> Patterns() {
  std::vector<Pattern> p;
  // The compiler's conv kernel: outer loop over output columns (weight
  // factor 0), inner over kernel columns (destination factor 0); uops over
  // (kh, co, h) with runs sharing a weight. Columns 1..9 cover every tail
  // of the 4-wide groups.
  for (uint32_t w : {1u, 2u, 3u, 4u, 5u, 7u, 9u}) {
    for (uint32_t stride : {1u, 2u}) {
      Pattern c{"conv_w" + std::to_string(w) + "_s" + std::to_string(stride),
                w,
                3,
                1,
                stride,
                0,
                0,
                1,
                1,
                {}};
      for (uint32_t kh = 0; kh < 3; ++kh) {
        for (uint32_t co = 0; co < 2; ++co) {
          for (uint32_t h = 0; h < 3; ++h) {
            c.uops.push_back(isa::Uop{(co * 3 + h) * w, (h * stride + kh) * 24,
                                      (co * 3 + kh) * 3});
          }
        }
      }
      p.push_back(c);
    }
  }
  // The compiler's residual add: inner loop over elements, weight factor 0.
  p.push_back({"add", 2, 37, 0, 40, 1, 1, 1, 0, {isa::Uop{5, 3, 9}}});
  // No loop with weight factor 0: every uop execution has its own block.
  p.push_back({"no_shared_weight",
               3,
               4,
               7,
               5,
               11,
               1,
               1,
               1,
               {isa::Uop{0, 0, 0}, isa::Uop{40, 2, 50}}});
  // Inner loop with destination factor 0: every iteration hits one element.
  p.push_back({"same_destination",
               6,
               2,
               0,
               3,
               0,
               50,
               1,
               1,
               {isa::Uop{1, 0, 2}, isa::Uop{2, 1, 2}}});
  // A run of uops sharing a weight whose destinations repeat.
  p.push_back({"run_with_repeats",
               5,
               2,
               1,
               1,
               0,
               0,
               2,
               1,
               {isa::Uop{0, 0, 4}, isa::Uop{0, 9, 4}, isa::Uop{10, 3, 4},
                isa::Uop{0, 1, 4}, isa::Uop{20, 7, 8}}});
  // Both loops with weight factor 0.
  p.push_back({"both_shared",
               6,
               5,
               1,
               2,
               0,
               7,
               1,
               0,
               {isa::Uop{0, 0, 1}, isa::Uop{50, 60, 2}}});
  // A loop with destination factor 0 longer than the kernels keep in
  // registers, and one whose weight factor is 0 as well.
  p.push_back({"long_reduction",
               5,
               9,
               1,
               1,
               0,
               0,
               1,
               1,
               {isa::Uop{0, 0, 0}, isa::Uop{9, 20, 30}}});
  p.push_back(
      {"reduction_same_weight", 4, 3, 1, 2, 0, 0, 5, 0, {isa::Uop{2, 1, 6}}});
  // A single uop execution.
  p.push_back({"single", 1, 1, 0, 0, 0, 0, 0, 0, {isa::Uop{3, 4, 5}}});
  return p;
}

void Apply(const Pattern& p, GemmCall& c) {
  c.iter_out = p.iter_out;
  c.iter_in = p.iter_in;
  c.dst_out = p.dst_out;
  c.src_out = p.src_out;
  c.wgt_out = p.wgt_out;
  c.dst_in = p.dst_in;
  c.src_in = p.src_in;
  c.wgt_in = p.wgt_in;
}

struct Shape {
  const char* preset;
  int log_batch, log_bi, log_bo;
};

void PrintTo(const Shape& s, std::ostream* os) {
  *os << s.preset << " " << (1 << s.log_batch) << "x" << (1 << s.log_bi) << "x"
      << (1 << s.log_bo);
}

class GemmKernelsTest : public ::testing::TestWithParam<Shape> {
 protected:
  VtaConfig Config() const {
    auto config = VtaConfigPreset(GetParam().preset);
    EXPECT_TRUE(config.ok()) << config.status();
    VtaConfig c = *config;
    c.log_batch = GetParam().log_batch;
    c.log_block_in = GetParam().log_bi;
    c.log_block_out = GetParam().log_bo;
    return c;
  }
};

TEST_P(GemmKernelsTest, SelectedKernelMatchesReferenceBitForBit) {
  const VtaConfig config = Config();
  const char* name = "";
  const GemmFn fast = SelectGemmKernel(config, /*allow_simd=*/true, &name);
  uint32_t seed = 1;
  for (const Pattern& p : Patterns()) {
    SCOPED_TRACE(p.name + " kernel " + name);
    Sram ref =
        RandomSram(config.Batch(), config.BlockIn(), config.BlockOut(), seed++);
    ref.uops = p.uops;
    Sram got = ref;
    GemmCall rc = CallOn(ref), gc = CallOn(got);
    Apply(p, rc);
    Apply(p, gc);
    GemmS8S8S32Ref(rc);
    fast(gc);
    EXPECT_EQ(got.acc, ref.acc);
    EXPECT_EQ(got.tracks, ref.tracks);
    EXPECT_EQ(got.inp, ref.inp);
    EXPECT_EQ(got.wgt, ref.wgt);
  }
}

TEST_P(GemmKernelsTest, DestinationRangesSplitTheInstructionExactly) {
  const VtaConfig config = Config();
  const char* name = "";
  for (bool simd : {false, true}) {
    const GemmFn fn = SelectGemmKernel(config, simd, &name);
    uint32_t seed = 100;
    for (const Pattern& p : Patterns()) {
      SCOPED_TRACE(p.name + " kernel " + name);
      Sram whole = RandomSram(config.Batch(), config.BlockIn(),
                              config.BlockOut(), seed++);
      whole.uops = p.uops;
      Sram split = whole;
      GemmCall wc = CallOn(whole);
      Apply(p, wc);
      GemmS8S8S32Ref(wc);
      // Uneven cuts, including ones that fall inside strided destination
      // sequences and an empty range.
      const uint32_t cuts[] = {0, 3, 4, 17, 17, 40, 123, kDepth};
      for (size_t k = 0; k + 1 < std::size(cuts); ++k) {
        GemmCall sc = CallOn(split);
        Apply(p, sc);
        sc.dst_lo = cuts[k];
        sc.dst_hi = cuts[k + 1];
        fn(sc);
      }
      EXPECT_EQ(split.acc, whole.acc);
      EXPECT_EQ(split.tracks, whole.tracks);
    }
  }
}

TEST_P(GemmKernelsTest, EmptyDestinationRangeChangesNothing) {
  const VtaConfig config = Config();
  const char* name = "";
  const GemmFn fn = SelectGemmKernel(config, true, &name);
  const Pattern p = Patterns()[0];
  Sram s = RandomSram(config.Batch(), config.BlockIn(), config.BlockOut(), 7);
  s.uops = p.uops;
  const Sram before = s;
  GemmCall c = CallOn(s);
  Apply(p, c);
  c.dst_lo = 300;  // beyond every destination of the pattern
  c.dst_hi = kDepth;
  fn(c);
  EXPECT_EQ(s.acc, before.acc);
  EXPECT_EQ(s.tracks, before.tracks);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GemmKernelsTest,
    ::testing::Values(Shape{"pynq", 0, 4, 4}, Shape{"1x32x32", 0, 5, 5},
                      Shape{"pynq", 0, 4, 5}, Shape{"pynq", 0, 5, 4},
                      Shape{"pynq", 1, 4, 4}, Shape{"pynq", 0, 3, 3}),
    [](const ::testing::TestParamInfo<Shape>& info) {
      return std::to_string(1 << info.param.log_batch) + "x" +
             std::to_string(1 << info.param.log_bi) + "x" +
             std::to_string(1 << info.param.log_bo);
    });

}  // namespace
}  // namespace vtaserve::vta::sim
