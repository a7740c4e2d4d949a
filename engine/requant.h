// Integer requantization, defined once for every backend.
//
// Scheme ("fold and shift"): a quantized conv/dense computes
//   y = round(M[c] * sum (x - zx) * (w - zw) + bias_lsb[c]) + zy,
//   M[c] = s_x * s_w[c] / s_y.
// VTA's portable ALU has ADD, MIN, MAX and SHR by an immediate, but no MUL,
// so the per-channel multiplier is folded into the weights:
//   w'[c,k] = round((w - zw)[c,k] * M[c] * 2^S_g)        (|w'| <= 127)
//   b'[c]   = round(bias_lsb[c] * 2^S_g) - zx * sum_k w'[c,k] + 2^(S_g - 1)
//   y       = clamp((sum x * w' + b') >> S_g + zy)
// with one shift S_g per group of `shift_group` consecutive output channels
// (a VTA accumulator element holds BLOCK_OUT channels and an ALU immediate
// applies to all of them, so the VTA needs shift_group % BLOCK_OUT == 0).
// S_g is the largest shift for which every folded weight of the group fits
// int8. The only error versus the float formula is the re-rounding of the
// weights (at most 0.5 of a folded weight LSB per tap); the zero-point
// folding is exact, and padding uses zx (conv input taps outside the image
// read zx, see graph.h). Add uses 14-bit multipliers and GlobalAvgPool a
// 24-bit multiplier, both exact to well under 1 LSB.
// Pure functions; thread-safe.
#ifndef VTASERVE_ENGINE_REQUANT_H_
#define VTASERVE_ENGINE_REQUANT_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/graph.h"

namespace vtaserve::engine {

struct RequantOptions {
  // Consecutive output channels sharing one shift. Default: 16 (VTA's
  // BLOCK_OUT in the default config). 1 gives the best accuracy.
  int shift_group = 16;
};

// The float description of one quantized conv or dense layer.
struct FloatConvQuant {
  int out_channels = 0;
  int taps_per_channel = 0;               // in_channels * kh * kw
  std::vector<int32_t> centered_weights;  // (w - zw), [out][taps]
  std::vector<double> multiplier;         // M[c] = s_x * s_w[c] / s_y
  std::vector<double> bias_lsb;   // real bias / s_y, [out] (may be empty)
  int32_t input_zero_point = 0;   // int8 domain
  int32_t output_zero_point = 0;  // int8 domain
  int32_t clamp_min = -128, clamp_max = 127;
};

// Fills weights, bias, shift, zero points, clamps and float_multiplier of
// `params` (other fields untouched). InvalidArgument when a multiplier is
// not finite and positive or a folded value cannot be represented.
absl::Status FoldConvRequant(const FloatConvQuant& q,
                             const RequantOptions& options, ConvParams& params);

// Add of a (scale sa, zero point za) and b into (sy, zy), int8 domain.
absl::StatusOr<AddParams> ComputeAddParams(double sa, int32_t za, double sb,
                                           int32_t zb, double sy, int32_t zy,
                                           bool relu);

// GlobalAvgPool over `pixels` positions, int8 domain.
absl::StatusOr<GapParams> ComputeGapParams(double sx, int32_t zx, double sy,
                                           int32_t zy, int64_t pixels);

// Shift(a, s) of graph.h: floor(a / 2^s) for s >= 0, a * 2^-s (wrapping in
// int32) for s < 0.
inline int32_t ShiftRound(int32_t a, int32_t s) {
  if (s >= 0) return a >> s;
  return static_cast<int32_t>(static_cast<uint32_t>(a) << (-s));
}

}  // namespace vtaserve::engine

#endif  // VTASERVE_ENGINE_REQUANT_H_
