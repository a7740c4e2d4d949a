#include "engine/requant.h"

#include <cmath>
#include <random>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace vtaserve::engine {
namespace {

using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::StatusIs;

// Folded integer conv output vs the float formula, for one dot product.
TEST(FoldConvRequantTest, MatchesFloatFormulaWithinDocumentedError) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> wdist(-127, 127);
  std::uniform_int_distribution<int> xdist(-128, 127);
  std::uniform_real_distribution<double> mdist(0.0005, 0.004);
  const int taps = 147, oc = 32;
  FloatConvQuant q;
  q.out_channels = oc;
  q.taps_per_channel = taps;
  q.input_zero_point = 0;
  q.output_zero_point = -5;
  for (int i = 0; i < oc * taps; ++i) q.centered_weights.push_back(wdist(rng));
  for (int c = 0; c < oc; ++c) {
    q.multiplier.push_back(mdist(rng));
    q.bias_lsb.push_back(std::uniform_real_distribution<double>(-20, 20)(rng));
  }
  for (int group : {1, 16, 32}) {
    ConvParams p;
    ASSERT_THAT(FoldConvRequant(q, RequantOptions{group}, p), IsOk());
    double worst = 0;
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<int> x(taps);
      for (int& v : x) v = xdist(rng);
      for (int c = 0; c < oc; ++c) {
        int64_t exact_acc = 0;
        int32_t acc = p.bias[c];
        for (int k = 0; k < taps; ++k) {
          exact_acc += int64_t{x[k]} * q.centered_weights[c * taps + k];
          acc += x[k] * p.weights[c * taps + k];
        }
        const double real = exact_acc * q.multiplier[c] + q.bias_lsb[c];
        const int32_t got = ShiftRound(acc, p.shift[c]);
        // Error bound: half a folded-weight LSB per tap, times |x|.
        const double r = q.multiplier[c] * std::ldexp(1.0, p.shift[c]);
        double bound = 0.5 + 1e-9;
        for (int k = 0; k < taps; ++k)
          bound += 0.5 * std::abs(x[k]) * q.multiplier[c] / r;
        const double err = std::fabs(got - real);
        EXPECT_LE(err, bound + 0.5);
        worst = std::max(worst, err);
      }
    }
    // Shifts are uniform inside each group.
    for (int c = 0; c < oc; ++c)
      EXPECT_EQ(p.shift[c], p.shift[(c / group) * group]);
    EXPECT_LT(worst, 8.0) << "group " << group;
  }
}

TEST(FoldConvRequantTest, RejectsNonPositiveMultiplier) {
  FloatConvQuant q;
  q.out_channels = 1;
  q.taps_per_channel = 1;
  q.centered_weights = {3};
  q.multiplier = {0.0};
  ConvParams p;
  EXPECT_THAT(FoldConvRequant(q, RequantOptions{}, p),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ComputeAddParamsTest, MatchesFloatFormula) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 50; ++trial) {
    const double sa = std::uniform_real_distribution<double>(0.01, 0.1)(rng);
    const double sb = std::uniform_real_distribution<double>(0.01, 0.1)(rng);
    const double sy = std::uniform_real_distribution<double>(0.02, 0.2)(rng);
    const int za = -20, zb = 7, zy = -128;
    VTASERVE_ASSERT_OK_AND_ASSIGN(
        AddParams p, ComputeAddParams(sa, za, sb, zb, sy, zy, true));
    for (int a = -128; a < 128; a += 5) {
      for (int b = -128; b < 128; b += 7) {
        const double real = (sa * (a - za) + sb * (b - zb)) / sy;
        const int32_t acc = a * p.multiplier_a + b * p.multiplier_b + p.bias;
        const int32_t got = (acc >> p.shift);
        EXPECT_LE(std::fabs(got - real), 0.5 + 256.0 / (1 << 13));
      }
    }
  }
}

TEST(ComputeGapParamsTest, MatchesFloatFormula) {
  VTASERVE_ASSERT_OK_AND_ASSIGN(GapParams p,
                                ComputeGapParams(0.05, -128, 0.03, -100, 49));
  for (int64_t sum = -128 * 49; sum <= 127 * 49; sum += 37) {
    const double real = 0.05 * (sum - 49.0 * -128) / (49 * 0.03);
    const int64_t got = (sum * p.multiplier + p.bias) >> p.shift;
    EXPECT_LE(std::fabs(got - real), 0.5 + 1e-3);
  }
}

}  // namespace
}  // namespace vtaserve::engine
