// Internal helpers of the model zoo shared by its .cc files: a portable
// deterministic PRNG (the same numbers on every platform, unlike the
// distributions of <random>) and the float kernels of the calibration
// forward pass. Not part of the public zoo API. Pure functions; Rng is not
// thread-safe (one per thread).
#ifndef VTASERVE_ENGINE_ZOO_ZOO_INTERNAL_H_
#define VTASERVE_ENGINE_ZOO_ZOO_INTERNAL_H_

#include <cmath>
#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "engine/zoo/float_resnet.h"
#include "engine/zoo/resnet_generator.h"

namespace vtaserve::zoo::internal {

// SplitMix64 stream with Box-Muller normals.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  // A stream for (seed, label), independent of every other label.
  Rng(uint64_t seed, absl::string_view label);

  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1).
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  // Standard normal.
  double Normal();

 private:
  uint64_t state_;
  bool has_spare_ = false;
  double spare_ = 0;
};

// Output size of a conv/pool along one axis.
inline int ConvOutSize(int in, int kernel, int stride, int pad) {
  return (in + 2 * pad - kernel) / stride + 1;
}

// out[oc][OH][OW] = bias[oc] + sum w[oc][ic][kh][kw] * in_pad[ic][..][..]
// with zero padding; `in` is [IC][H][W]. No ReLU.
void Conv2D(const FloatConv& conv, const float* in, int h, int w, float* out);

// ActivationRange of `values` (lo/hi percentiles, extremes, nonzero
// fraction after ReLU when `relu`).
ActivationRange MeasureRange(const std::vector<float>& values, bool relu);

// Weight quantization: symmetric with one scale per group of
// `group_size` consecutive values (per output channel) or one scale overall.
struct QuantizedWeights {
  std::vector<int8_t> values;
  std::vector<float> scales;
};
// `weight_bits` 8: values in [-127, 127]; 7: in [-63, 63] (reduce_range).
QuantizedWeights QuantizeWeights(const std::vector<float>& weights,
                                 int out_channels, bool per_channel,
                                 int weight_bits);
// round(bias[c] / (input_scale * weight_scale[c])), saturated to int32;
// `bias_scales` receives the products (float32, as stored in the model).
std::vector<int32_t> QuantizeBias(const std::vector<float>& bias,
                                  float input_scale,
                                  const std::vector<float>& weight_scales,
                                  std::vector<float>* bias_scales);

}  // namespace vtaserve::zoo::internal

#endif  // VTASERVE_ENGINE_ZOO_ZOO_INTERNAL_H_
