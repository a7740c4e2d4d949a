// The float reference ResNet behind the model zoo (resnet_generator.h): its
// weights (BatchNorm folded), deterministic prototype and calibration images,
// and the forward pass that measures every layer's activation range for the
// quantized forms. Exposed for tests and calibration tools. Pure functions;
// thread-safe.
#ifndef VTASERVE_ENGINE_ZOO_FLOAT_RESNET_H_
#define VTASERVE_ENGINE_ZOO_FLOAT_RESNET_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/zoo/resnet_generator.h"

namespace vtaserve::zoo {

// One conv with BatchNorm folded in. Weights [out][in][k][k].
struct FloatConv {
  std::string name;
  int in_channels = 0, out_channels = 0, kernel = 1, stride = 1, pad = 0;
  bool relu = false;  // followed by ReLU
  std::vector<float> weights;
  std::vector<float> bias;
};

// A residual block: conv1, conv2 (, conv3 for the bottleneck), optional
// downsample; the Add is followed by ReLU.
struct FloatBlock {
  std::string name;  // "layer2.0"
  std::vector<FloatConv> convs;
  bool has_downsample = false;
  FloatConv downsample;
};

struct FloatResNet {
  int depth = 18;
  int input_size = 224;
  FloatConv stem;  // "conv1", 7x7/s2/p3 + ReLU, then 3x3/s2/p1 max pool
  std::vector<FloatBlock> blocks;
  int num_features = 512;  // fc input
  int num_classes = 1000;
  std::vector<float> fc_weights;  // [num_classes][num_features]
  std::vector<float> fc_bias;
};

// Range of one activation tensor over the calibration images (before any
// ReLU): lo/hi are the 0.01st / 99.99th percentiles, min/max the extremes,
// nonzero_fraction the fraction of elements that stay nonzero after ReLU
// (for tensors followed by ReLU) or that are nonzero.
struct ActivationRange {
  float lo = 0, hi = 0, min = 0, max = 0;
  double nonzero_fraction = 0;
};

struct Calibration {
  // Keyed by layer name: "conv1", "layer1.0.conv2", "layer1.0.downsample",
  // "layer1.0.add", "avgpool", "fc".
  std::vector<std::pair<std::string, ActivationRange>> ranges;
  const ActivationRange* Find(absl::string_view name) const;
};

// The float network of `spec` (weights only; format ignored). Like a
// trained network: every BatchNorm (folded into its conv) is data-dependent,
// its running mean and variance being the statistics of the conv's output
// over the prototype images (gamma random in [0.6, 1.4] times a per-layer
// scale, beta small); the classifier is nearest-prototype: class c responds
// to prototype image c mod NumPrototypes(num_classes), class p < P most
// strongly, so a prototype image (or one near it) is classified as its own
// prototype index with a clear margin (its logit is about 8).
absl::StatusOr<FloatResNet> BuildFloatResNet(const ResNetSpec& spec);

// At most this many prototype images; the statistics run at the input size
// capped at kMaxStatisticsSize.
inline constexpr int kMaxPrototypes = 10;
inline constexpr int kMaxStatisticsSize = 224;
// min(kMaxPrototypes, num_classes).
int NumPrototypes(int num_classes);
// Prototype image `prototype` of `seed` ([3][size][size], normalized
// ImageNet space, smooth like CalibrationImage but a distinct set): the
// image class `prototype` stands for.
std::vector<float> PrototypeImage(uint64_t seed, int prototype, int size);

// Deterministic smooth pseudo-random image [3][size][size] in normalized
// ImageNet space (image `index` of the calibration set of `seed`).
std::vector<float> CalibrationImage(uint64_t seed, int index, int size);

// Runs the float network on `image` ([3][S][S]) and returns the logits; when
// `calibration` is not null, appends (or widens) every layer's range.
std::vector<float> RunFloatResNet(const FloatResNet& net,
                                  const std::vector<float>& image,
                                  Calibration* calibration);

}  // namespace vtaserve::zoo

#endif  // VTASERVE_ENGINE_ZOO_FLOAT_RESNET_H_
