#include "engine/requant.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "absl/strings/str_cat.h"

namespace vtaserve::engine {
namespace {

constexpr int32_t kWeightLimit = 127;

bool FitsInt32(double v) {
  return v >= static_cast<double>(std::numeric_limits<int32_t>::min()) &&
         v <= static_cast<double>(std::numeric_limits<int32_t>::max());
}

// Largest shift in [kMinShift, kMaxShift] keeping every folded weight of
// channels [c0, c1) within +-127, and the folded bias within int32 range.
int32_t GroupShift(const FloatConvQuant& q, int c0, int c1) {
  double max_scaled = 0.0;
  double max_bias = 0.0;
  for (int c = c0; c < c1; ++c) {
    int32_t max_abs = 0;
    const int32_t* w = &q.centered_weights[size_t(c) * q.taps_per_channel];
    for (int k = 0; k < q.taps_per_channel; ++k) {
      max_abs = std::max(max_abs, std::abs(w[k]));
    }
    max_scaled = std::max(max_scaled, max_abs * q.multiplier[c]);
    if (!q.bias_lsb.empty())
      max_bias = std::max(max_bias, std::fabs(q.bias_lsb[c]));
  }
  for (int32_t s = kMaxShift; s > kMinShift; --s) {
    const double scale = std::ldexp(1.0, s);
    // round(x) <= 127 iff x < 127.5.
    if (max_scaled * scale >= kWeightLimit + 0.5) continue;
    // Keep bias, zero-point fold and rounding term comfortably in int32.
    if (max_bias * scale > 1.0e9) continue;
    return s;
  }
  return kMinShift;
}

}  // namespace

absl::Status FoldConvRequant(const FloatConvQuant& q,
                             const RequantOptions& options,
                             ConvParams& params) {
  const int oc = q.out_channels;
  const int taps = q.taps_per_channel;
  if (oc <= 0 || taps <= 0 || q.centered_weights.size() != size_t(oc) * taps ||
      q.multiplier.size() != size_t(oc) ||
      (!q.bias_lsb.empty() && q.bias_lsb.size() != size_t(oc))) {
    return absl::InvalidArgumentError("inconsistent conv quantization sizes");
  }
  if (options.shift_group <= 0) {
    return absl::InvalidArgumentError("shift_group must be positive");
  }
  for (int c = 0; c < oc; ++c) {
    if (!std::isfinite(q.multiplier[c]) || !(q.multiplier[c] > 0.0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "requantization multiplier of channel ", c, " is not positive"));
    }
    if (!q.bias_lsb.empty() && !std::isfinite(q.bias_lsb[c])) {
      return absl::InvalidArgumentError("bias is not finite");
    }
  }
  params.weights.assign(size_t(oc) * taps, 0);
  params.bias.assign(oc, 0);
  params.shift.assign(oc, 0);
  params.float_multiplier.assign(oc, 0.0f);
  params.input_zero_point = q.input_zero_point;
  params.output_zero_point = q.output_zero_point;
  params.clamp_min = q.clamp_min;
  params.clamp_max = q.clamp_max;
  for (int c0 = 0; c0 < oc; c0 += options.shift_group) {
    const int c1 = std::min(oc, c0 + options.shift_group);
    const int32_t s = GroupShift(q, c0, c1);
    const double scale = std::ldexp(1.0, s);
    for (int c = c0; c < c1; ++c) {
      const double r = q.multiplier[c] * scale;
      int64_t wsum = 0;
      for (int k = 0; k < taps; ++k) {
        const size_t i = size_t(c) * taps + k;
        const double v = std::nearbyint(q.centered_weights[i] * r);
        if (std::fabs(v) > kWeightLimit) {
          return absl::InvalidArgumentError(absl::StrCat(
              "channel ", c, ": requantization multiplier ", q.multiplier[c],
              " too large to fold into int8 weights"));
        }
        params.weights[i] = static_cast<int8_t>(v);
        wsum += static_cast<int64_t>(v);
      }
      double b =
          q.bias_lsb.empty() ? 0.0 : std::nearbyint(q.bias_lsb[c] * scale);
      b -= static_cast<double>(q.input_zero_point) * static_cast<double>(wsum);
      if (s > 0) b += std::ldexp(1.0, s - 1);
      if (!FitsInt32(b)) {
        return absl::InvalidArgumentError(
            absl::StrCat("channel ", c, ": folded bias overflows int32"));
      }
      params.bias[c] = static_cast<int32_t>(b);
      params.shift[c] = s;
      params.float_multiplier[c] = static_cast<float>(q.multiplier[c]);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<AddParams> ComputeAddParams(double sa, int32_t za, double sb,
                                           int32_t zb, double sy, int32_t zy,
                                           bool relu) {
  if (!(sa > 0) || !(sb > 0) || !(sy > 0) || !std::isfinite(sa) ||
      !std::isfinite(sb) || !std::isfinite(sy)) {
    return absl::InvalidArgumentError("Add scales must be positive and finite");
  }
  const double ma = sa / sy, mb = sb / sy;
  const double mmax = std::max(ma, mb);
  int32_t shift = -1;
  for (int32_t s = 30; s >= 0; --s) {
    if (std::nearbyint(mmax * std::ldexp(1.0, s)) <= kMaxAddMultiplier) {
      shift = s;
      break;
    }
  }
  if (shift < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Add input/output scale ratio ", mmax, " exceeds ", kMaxAddMultiplier));
  }
  AddParams p;
  p.shift = shift;
  p.multiplier_a =
      static_cast<int32_t>(std::nearbyint(ma * std::ldexp(1.0, shift)));
  p.multiplier_b =
      static_cast<int32_t>(std::nearbyint(mb * std::ldexp(1.0, shift)));
  int64_t bias = -int64_t{za} * p.multiplier_a - int64_t{zb} * p.multiplier_b;
  if (shift > 0) bias += int64_t{1} << (shift - 1);
  if (bias < std::numeric_limits<int32_t>::min() / 2 ||
      bias > std::numeric_limits<int32_t>::max() / 2) {
    return absl::InvalidArgumentError("Add bias overflows int32");
  }
  p.bias = static_cast<int32_t>(bias);
  p.output_zero_point = zy;
  p.clamp_min = relu ? std::max(-128, zy) : -128;
  p.clamp_max = 127;
  return p;
}

absl::StatusOr<GapParams> ComputeGapParams(double sx, int32_t zx, double sy,
                                           int32_t zy, int64_t pixels) {
  if (!(sx > 0) || !(sy > 0) || pixels <= 0 || !std::isfinite(sx) ||
      !std::isfinite(sy)) {
    return absl::InvalidArgumentError(
        "GlobalAveragePool scales must be positive");
  }
  const double m = sx / (sy * static_cast<double>(pixels));
  // Choose the shift that puts the multiplier in [2^23, 2^24).
  int32_t shift = 0;
  while (shift < 62 && m * std::ldexp(1.0, shift) < (1 << 23)) ++shift;
  GapParams p;
  p.shift = shift;
  p.multiplier =
      static_cast<int64_t>(std::nearbyint(m * std::ldexp(1.0, shift)));
  if (p.multiplier > (int64_t{1} << 31)) {
    return absl::InvalidArgumentError(
        "GlobalAveragePool rescale too large for the integer form");
  }
  p.bias = -pixels * zx * p.multiplier;
  if (shift > 0) p.bias += int64_t{1} << (shift - 1);
  p.output_zero_point = zy;
  return p;
}

}  // namespace vtaserve::engine
