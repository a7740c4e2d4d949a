// The float ResNet of the zoo: weights, calibration images and the forward
// pass that calibrates activation scales. Compiled with -O3 (see
// CMakeLists.txt) so the conv's inner loops vectorize.
#include "engine/zoo/float_resnet.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/zoo/zoo_internal.h"

namespace vtaserve::zoo {
namespace internal {

Rng::Rng(uint64_t seed, absl::string_view label) : state_(seed) {
  // FNV-1a of the label, mixed with the seed through one SplitMix step.
  uint64_t h = 0xCBF29CE484222325ull;
  for (char c : label) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001B3ull;
  }
  state_ = seed ^ (h * 0x9E3779B97F4A7C15ull);
  state_ = Next();
}

double Rng::Normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1 = Uniform();
  while (u1 <= 0.0) u1 = Uniform();
  const double u2 = Uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double t = 2.0 * 3.14159265358979323846 * u2;
  spare_ = r * std::sin(t);
  has_spare_ = true;
  return r * std::cos(t);
}

// An AVX2 clone when the CPU has it. No FMA (and -ffp-contract=off): every
// build computes the same floats, so generated models are byte-identical on
// every x86-64 machine. Not under ThreadSanitizer: the clones' ifunc resolver
// is instrumented and runs during relocation, before the TSan runtime is up,
// and every test binary crashed at start.
#if defined(__SANITIZE_THREAD__)
#define VTASERVE_CONV2D_CLONES
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define VTASERVE_CONV2D_CLONES
#endif
#endif
#ifndef VTASERVE_CONV2D_CLONES
#define VTASERVE_CONV2D_CLONES __attribute__((target_clones("avx2", "default")))
#endif
VTASERVE_CONV2D_CLONES void Conv2D(const FloatConv& conv, const float* in,
                                   int h, int w, float* out) {
  constexpr int kTile = 128;  // output pixels per tile
  const int k = conv.kernel, s = conv.stride, pad = conv.pad;
  const int oh_n = ConvOutSize(h, k, s, pad);
  const int ow_n = ConvOutSize(w, k, s, pad);
  const int taps = conv.in_channels * k * k;
  const int pixels = oh_n * ow_n;
  const int oc_n = conv.out_channels;
  std::vector<float> col(static_cast<size_t>(taps) * kTile);
  const bool direct = (k == 1 && s == 1 && pad == 0);
  for (int p0 = 0; p0 < pixels; p0 += kTile) {
    const int pt = std::min(kTile, pixels - p0);
    // im2col of this tile: col[tap][i] (row stride kTile).
    if (!direct) {
      for (int ic = 0; ic < conv.in_channels; ++ic) {
        const float* plane = in + static_cast<size_t>(ic) * h * w;
        for (int kh = 0; kh < k; ++kh) {
          for (int kw = 0; kw < k; ++kw) {
            float* dst =
                &col[static_cast<size_t>((ic * k + kh) * k + kw) * kTile];
            int oh = p0 / ow_n, ow = p0 % ow_n;
            for (int i = 0; i < pt; ++i) {
              const int ih = oh * s + kh - pad, iw = ow * s + kw - pad;
              dst[i] = (ih >= 0 && ih < h && iw >= 0 && iw < w)
                           ? plane[ih * w + iw]
                           : 0.0f;
              if (++ow == ow_n) {
                ow = 0;
                ++oh;
              }
            }
          }
        }
      }
    }
    auto col_row = [&](int tap) -> const float* {
      return direct ? in + static_cast<size_t>(tap) * pixels + p0
                    : &col[static_cast<size_t>(tap) * kTile];
    };
    int oc = 0;
    for (; oc + 4 <= oc_n; oc += 4) {
      float a0[kTile], a1[kTile], a2[kTile], a3[kTile];
      const float b0 = conv.bias[oc], b1 = conv.bias[oc + 1],
                  b2 = conv.bias[oc + 2], b3 = conv.bias[oc + 3];
      for (int i = 0; i < kTile; ++i) {
        a0[i] = b0;
        a1[i] = b1;
        a2[i] = b2;
        a3[i] = b3;
      }
      const float* w0 = &conv.weights[static_cast<size_t>(oc) * taps];
      const float* w1 = w0 + taps;
      const float* w2 = w1 + taps;
      const float* w3 = w2 + taps;
      for (int t = 0; t < taps; ++t) {
        const float* c = col_row(t);
        const float x0 = w0[t], x1 = w1[t], x2 = w2[t], x3 = w3[t];
        for (int i = 0; i < pt; ++i) {
          const float v = c[i];
          a0[i] += x0 * v;
          a1[i] += x1 * v;
          a2[i] += x2 * v;
          a3[i] += x3 * v;
        }
      }
      float* o = out + static_cast<size_t>(oc) * pixels + p0;
      std::copy(a0, a0 + pt, o);
      std::copy(a1, a1 + pt, o + pixels);
      std::copy(a2, a2 + pt, o + 2 * pixels);
      std::copy(a3, a3 + pt, o + 3 * pixels);
    }
    for (; oc < oc_n; ++oc) {
      float a0[kTile];
      for (int i = 0; i < kTile; ++i) a0[i] = conv.bias[oc];
      const float* w0 = &conv.weights[static_cast<size_t>(oc) * taps];
      for (int t = 0; t < taps; ++t) {
        const float* c = col_row(t);
        const float x0 = w0[t];
        for (int i = 0; i < pt; ++i) a0[i] += x0 * c[i];
      }
      std::copy(a0, a0 + pt, out + static_cast<size_t>(oc) * pixels + p0);
    }
  }
}

ActivationRange MeasureRange(const std::vector<float>& values, bool relu) {
  ActivationRange r;
  if (values.empty()) return r;
  std::vector<float> v = values;
  const size_t n = v.size();
  const size_t lo_idx = static_cast<size_t>(0.0001 * (n - 1));
  const size_t hi_idx = static_cast<size_t>(0.9999 * (n - 1));
  std::nth_element(v.begin(), v.begin() + lo_idx, v.end());
  r.lo = v[lo_idx];
  std::nth_element(v.begin() + lo_idx, v.begin() + hi_idx, v.end());
  r.hi = v[hi_idx];
  const auto [mn, mx] = std::minmax_element(values.begin(), values.end());
  r.min = *mn;
  r.max = *mx;
  size_t nonzero = 0;
  for (float x : values) nonzero += relu ? (x > 0.0f) : (x != 0.0f);
  r.nonzero_fraction = static_cast<double>(nonzero) / n;
  return r;
}

QuantizedWeights QuantizeWeights(const std::vector<float>& weights,
                                 int out_channels, bool per_channel,
                                 int weight_bits) {
  const float qmax = weight_bits == 7 ? 63.0f : 127.0f;
  QuantizedWeights q;
  q.values.resize(weights.size());
  const size_t per = weights.size() / out_channels;
  const int groups = per_channel ? out_channels : 1;
  const size_t group_size = per_channel ? per : weights.size();
  for (int g = 0; g < groups; ++g) {
    const float* w = &weights[g * group_size];
    float m = 0.0f;
    for (size_t i = 0; i < group_size; ++i) m = std::max(m, std::fabs(w[i]));
    const float scale = m > 0.0f ? m / qmax : 1.0f;
    q.scales.push_back(scale);
    for (size_t i = 0; i < group_size; ++i) {
      const float r = std::nearbyint(w[i] / scale);
      q.values[g * group_size + i] =
          static_cast<int8_t>(std::clamp(r, -qmax, qmax));
    }
  }
  return q;
}

std::vector<int32_t> QuantizeBias(const std::vector<float>& bias,
                                  float input_scale,
                                  const std::vector<float>& weight_scales,
                                  std::vector<float>* bias_scales) {
  std::vector<int32_t> q(bias.size());
  bias_scales->resize(bias.size());
  for (size_t c = 0; c < bias.size(); ++c) {
    const float ws =
        weight_scales.size() == 1 ? weight_scales[0] : weight_scales[c];
    const float s = input_scale * ws;
    (*bias_scales)[c] = s;
    const double r = std::nearbyint(static_cast<double>(bias[c]) / s);
    q[c] = static_cast<int32_t>(
        std::clamp(r, static_cast<double>(std::numeric_limits<int32_t>::min()),
                   static_cast<double>(std::numeric_limits<int32_t>::max())));
  }
  return q;
}

}  // namespace internal

namespace {

using internal::ConvOutSize;
using internal::Rng;

// He-normal weights, no bias: the BatchNorm is folded in later from the
// statistics of the conv's output (FitBatchNorm).
FloatConv MakeConv(uint64_t seed, std::string name, int in, int out, int k,
                   int stride, int pad, bool relu) {
  FloatConv c;
  c.name = std::move(name);
  c.in_channels = in;
  c.out_channels = out;
  c.kernel = k;
  c.stride = stride;
  c.pad = pad;
  c.relu = relu;
  Rng rng(seed, c.name);
  const int taps = in * k * k;
  const double std_dev = std::sqrt(2.0 / taps);
  c.weights.resize(static_cast<size_t>(out) * taps);
  c.bias.assign(out, 0.0f);
  for (float& w : c.weights) w = static_cast<float>(rng.Normal() * std_dev);
  return c;
}

// Normalized ImageNet channel bounds: (0 - mean) / std, (1 - mean) / std.
constexpr float kMean[3] = {0.485f, 0.456f, 0.406f};
constexpr float kStd[3] = {0.229f, 0.224f, 0.225f};

void ReluInPlace(std::vector<float>& v) {
  for (float& x : v) x = std::max(x, 0.0f);
}

void Record(Calibration* cal, const std::string& name,
            const std::vector<float>& values, bool relu) {
  if (cal == nullptr) return;
  const ActivationRange r = internal::MeasureRange(values, relu);
  for (auto& [n, existing] : cal->ranges) {
    if (n == name) {
      existing.lo = std::min(existing.lo, r.lo);
      existing.hi = std::max(existing.hi, r.hi);
      existing.min = std::min(existing.min, r.min);
      existing.max = std::max(existing.max, r.max);
      existing.nonzero_fraction =
          std::min(existing.nonzero_fraction, r.nonzero_fraction);
      return;
    }
  }
  cal->ranges.emplace_back(name, r);
}

// A conv on a [C][H][W] activation; updates h/w to the output size.
std::vector<float> RunConv(const FloatConv& c, const std::vector<float>& in,
                           int& h, int& w, Calibration* cal) {
  const int oh = ConvOutSize(h, c.kernel, c.stride, c.pad);
  const int ow = ConvOutSize(w, c.kernel, c.stride, c.pad);
  std::vector<float> out(static_cast<size_t>(c.out_channels) * oh * ow);
  internal::Conv2D(c, in.data(), h, w, out.data());
  Record(cal, c.name, out, c.relu);
  if (c.relu) ReluInPlace(out);
  h = oh;
  w = ow;
  return out;
}

std::vector<float> MaxPool3x3s2(const std::vector<float>& in, int channels,
                                int& h, int& w) {
  const int oh = ConvOutSize(h, 3, 2, 1), ow = ConvOutSize(w, 3, 2, 1);
  std::vector<float> out(static_cast<size_t>(channels) * oh * ow);
  for (int c = 0; c < channels; ++c) {
    const float* p = &in[static_cast<size_t>(c) * h * w];
    for (int y = 0; y < oh; ++y) {
      for (int x = 0; x < ow; ++x) {
        float m = -std::numeric_limits<float>::infinity();
        for (int ky = 0; ky < 3; ++ky) {
          const int iy = y * 2 + ky - 1;
          if (iy < 0 || iy >= h) continue;
          for (int kx = 0; kx < 3; ++kx) {
            const int ix = x * 2 + kx - 1;
            if (ix < 0 || ix >= w) continue;
            m = std::max(m, p[iy * w + ix]);
          }
        }
        out[(static_cast<size_t>(c) * oh + y) * ow + x] = m;
      }
    }
  }
  h = oh;
  w = ow;
  return out;
}

}  // namespace

const ActivationRange* Calibration::Find(absl::string_view name) const {
  for (const auto& [n, r] : ranges) {
    if (n == name) return &r;
  }
  return nullptr;
}

namespace {

// The activations of the prototype images at one point of the network.
struct Batch {
  std::vector<std::vector<float>> images;  // [C][H][W] each
  int channels = 0, h = 0, w = 0;
};

// Data-dependent BatchNorm, as a trained network has it: runs `c` (raw
// weights, no bias) on every image of `in`, sets the BN's running mean and
// variance to the per-channel statistics of that output, draws a moderate
// gamma (times `gamma_scale`) and a small beta, folds the BN into the conv
// and returns the normalized (and ReLU'd when c.relu) outputs.
Batch FitBatchNorm(FloatConv& c, const Batch& in, float gamma_scale,
                   uint64_t seed) {
  Batch out;
  out.channels = c.out_channels;
  out.h = ConvOutSize(in.h, c.kernel, c.stride, c.pad);
  out.w = ConvOutSize(in.w, c.kernel, c.stride, c.pad);
  const size_t pixels = static_cast<size_t>(out.h) * out.w;
  for (const std::vector<float>& x : in.images) {
    out.images.emplace_back(c.out_channels * pixels);
    internal::Conv2D(c, x.data(), in.h, in.w, out.images.back().data());
  }
  Rng rng(seed, c.name + ".bn");
  constexpr double kEps = 1e-5;
  const int taps = c.in_channels * c.kernel * c.kernel;
  for (int oc = 0; oc < c.out_channels; ++oc) {
    double sum = 0, sum_sq = 0;
    for (const std::vector<float>& y : out.images) {
      const float* p = &y[oc * pixels];
      for (size_t i = 0; i < pixels; ++i) {
        sum += p[i];
        sum_sq += static_cast<double>(p[i]) * p[i];
      }
    }
    const double n = static_cast<double>(pixels) * out.images.size();
    const double mean = sum / n;
    const double var = std::max(sum_sq / n - mean * mean, 0.0);
    const double gamma = gamma_scale * rng.Uniform(0.6, 1.4);
    const double beta = 0.1 * rng.Normal();
    const double bn = gamma / std::sqrt(var + kEps);
    for (int t = 0; t < taps; ++t) {
      float& w = c.weights[static_cast<size_t>(oc) * taps + t];
      w = static_cast<float>(w * bn);
    }
    c.bias[oc] = static_cast<float>(beta - mean * bn);
    for (std::vector<float>& y : out.images) {
      float* p = &y[oc * pixels];
      for (size_t i = 0; i < pixels; ++i) {
        float v = static_cast<float>((p[i] - mean) * bn + beta);
        if (c.relu) v = std::max(v, 0.0f);
        p[i] = v;
      }
    }
  }
  return out;
}

// A nearest-prototype classifier on the pooled features of the prototype
// images (like a trained one, its logits have clear margins for inputs near
// a prototype). Class c responds to prototype p = c mod P along the
// direction u_p of (feature_p - mean feature): class p with gain 1, the other
// classes of prototype p with gain 0.7, each plus a random direction of
// weight 0.25 so no two classes are alike. The mean feature is folded into
// the bias, and the gain puts each prototype's own logit at kTopLogit.
void FitClassifier(FloatResNet& net, const std::vector<std::vector<float>>& f,
                   uint64_t seed) {
  constexpr double kTopLogit = 8.0;
  const int k = net.num_features, n = net.num_classes;
  const int p_count = static_cast<int>(f.size());
  std::vector<double> mean(k, 0.0);
  for (const auto& x : f) {
    for (int j = 0; j < k; ++j) mean[j] += x[j] / p_count;
  }
  std::vector<std::vector<double>> u(p_count, std::vector<double>(k));
  double norm_sum = 0;
  for (int p = 0; p < p_count; ++p) {
    double norm = 0;
    for (int j = 0; j < k; ++j) {
      u[p][j] = f[p][j] - mean[j];
      norm += u[p][j] * u[p][j];
    }
    norm = std::sqrt(norm);
    norm_sum += norm;
    for (double& v : u[p]) v = norm > 1e-12 ? v / norm : 0.0;
  }
  // |feature_p - mean| on average; the gain maps it to kTopLogit.
  const double mean_norm = norm_sum / p_count;
  const double gain = mean_norm > 1e-12 ? kTopLogit / mean_norm : 1.0;
  Rng rng(seed, "fc");
  net.fc_weights.resize(static_cast<size_t>(n) * k);
  net.fc_bias.resize(n);
  std::vector<double> r(k);
  for (int c = 0; c < n; ++c) {
    double r_norm = 0;
    for (double& v : r) {
      v = rng.Normal();
      r_norm += v * v;
    }
    r_norm = std::sqrt(r_norm);
    const double own = c < p_count ? 1.0 : 0.7;
    const std::vector<double>& up = u[c % p_count];
    double shift = 0;
    float* wr = &net.fc_weights[static_cast<size_t>(c) * k];
    for (int j = 0; j < k; ++j) {
      wr[j] = static_cast<float>(gain * (own * up[j] + 0.25 * r[j] / r_norm));
      shift += static_cast<double>(wr[j]) * mean[j];
    }
    net.fc_bias[c] = static_cast<float>(-shift);
  }
}

}  // namespace

std::vector<float> PrototypeImage(uint64_t seed, int prototype, int size) {
  return CalibrationImage(seed ^ 0x9B07070E5ull, prototype, size);
}

int NumPrototypes(int num_classes) {
  return std::min(kMaxPrototypes, num_classes);
}

absl::StatusOr<FloatResNet> BuildFloatResNet(const ResNetSpec& spec) {
  if (spec.depth != 18 && spec.depth != 34 && spec.depth != 50) {
    return absl::InvalidArgumentError(
        absl::StrCat("ResNet depth must be 18, 34 or 50, got ", spec.depth));
  }
  if (spec.input_size < kMinResNetInputSize ||
      spec.input_size > kMaxResNetInputSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("ResNet input size must be in [", kMinResNetInputSize,
                     ", ", kMaxResNetInputSize, "], got ", spec.input_size));
  }
  if (spec.num_classes < 1 || spec.num_classes > 100000) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_classes must be in [1, 100000], got ", spec.num_classes));
  }
  FloatResNet net;
  net.depth = spec.depth;
  net.input_size = spec.input_size;
  net.num_classes = spec.num_classes;
  const uint64_t seed = spec.seed;
  // The BatchNorm statistics and the classifier come from the prototype
  // images, at the input size (capped at kMaxStatisticsSize to keep large
  // inputs fast).
  Batch x;
  x.channels = 3;
  x.h = x.w = std::min(spec.input_size, kMaxStatisticsSize);
  const int prototypes = NumPrototypes(spec.num_classes);
  for (int p = 0; p < prototypes; ++p) {
    x.images.push_back(PrototypeImage(seed, p, x.h));
  }
  net.stem = MakeConv(seed, "conv1", 3, 64, 7, 2, 3, /*relu=*/true);
  x = FitBatchNorm(net.stem, x, 1.0f, seed);
  {
    int h = x.h, w = x.w;
    for (std::vector<float>& img : x.images) {
      h = x.h;
      w = x.w;
      img = MaxPool3x3s2(img, x.channels, h, w);
    }
    x.h = h;
    x.w = w;
  }
  const bool bottleneck = spec.depth == 50;
  const int expansion = bottleneck ? 4 : 1;
  const int counts18[4] = {2, 2, 2, 2};
  const int counts34[4] = {3, 4, 6, 3};
  const int* counts = spec.depth == 18 ? counts18 : counts34;
  int in_ch = 64;
  for (int stage = 0; stage < 4; ++stage) {
    const int width = 64 << stage;
    const int out_ch = width * expansion;
    for (int i = 0; i < counts[stage]; ++i) {
      FloatBlock b;
      b.name = absl::StrCat("layer", stage + 1, ".", i);
      const int stride = (stage > 0 && i == 0) ? 2 : 1;
      const std::string p = b.name + ".";
      // The last BN of the residual branch has a smaller gain (0.35) so the
      // residual stream does not grow without bound.
      Batch y = x;
      if (bottleneck) {
        b.convs.push_back(
            MakeConv(seed, p + "conv1", in_ch, width, 1, 1, 0, true));
        y = FitBatchNorm(b.convs.back(), y, 1.0f, seed);
        b.convs.push_back(
            MakeConv(seed, p + "conv2", width, width, 3, stride, 1, true));
        y = FitBatchNorm(b.convs.back(), y, 1.0f, seed);
        b.convs.push_back(
            MakeConv(seed, p + "conv3", width, out_ch, 1, 1, 0, false));
        y = FitBatchNorm(b.convs.back(), y, 0.35f, seed);
      } else {
        b.convs.push_back(
            MakeConv(seed, p + "conv1", in_ch, width, 3, stride, 1, true));
        y = FitBatchNorm(b.convs.back(), y, 1.0f, seed);
        b.convs.push_back(
            MakeConv(seed, p + "conv2", width, out_ch, 3, 1, 1, false));
        y = FitBatchNorm(b.convs.back(), y, 0.35f, seed);
      }
      if (stride != 1 || in_ch != out_ch) {
        b.has_downsample = true;
        b.downsample = MakeConv(seed, p + "downsample", in_ch, out_ch, 1,
                                stride, 0, false);
        x = FitBatchNorm(b.downsample, x, 0.7f, seed);
      }
      for (size_t n = 0; n < y.images.size(); ++n) {
        std::vector<float>& a = y.images[n];
        const std::vector<float>& s = x.images[n];
        for (size_t j = 0; j < a.size(); ++j)
          a[j] = std::max(a[j] + s[j], 0.0f);
      }
      x = std::move(y);
      net.blocks.push_back(std::move(b));
      in_ch = out_ch;
    }
  }
  net.num_features = in_ch;
  std::vector<std::vector<float>> features;
  const size_t pixels = static_cast<size_t>(x.h) * x.w;
  for (const std::vector<float>& img : x.images) {
    std::vector<float> pooled(in_ch);
    for (int c = 0; c < in_ch; ++c) {
      double sum = 0;
      for (size_t i = 0; i < pixels; ++i) sum += img[c * pixels + i];
      pooled[c] = static_cast<float>(sum / pixels);
    }
    features.push_back(std::move(pooled));
  }
  FitClassifier(net, features, seed);
  return net;
}

std::vector<float> CalibrationImage(uint64_t seed, int index, int size) {
  // Sum of bilinearly upsampled random grids (8x8 and 32x32 cells),
  // correlated across channels, mapped to normalized ImageNet space.
  Rng rng(seed, absl::StrCat("calibration_image.", index));
  std::vector<float> img(static_cast<size_t>(3) * size * size);
  struct Octave {
    int cells;
    double amplitude;
  };
  const Octave octaves[] = {{4, 0.45}, {12, 0.25}, {40, 0.12}};
  std::vector<double> luma(static_cast<size_t>(size) * size, 0.0);
  std::vector<double> chroma[3];
  for (auto& c : chroma) c.assign(luma.size(), 0.0);
  auto add_octave = [&](std::vector<double>& field, int cells, double amp) {
    const int g = cells + 1;
    std::vector<double> grid(static_cast<size_t>(g) * g);
    for (double& v : grid) v = rng.Normal() * amp;
    for (int y = 0; y < size; ++y) {
      const double fy = (y + 0.5) * cells / size;
      const int y0 = std::min(static_cast<int>(fy), cells - 1);
      const double ty = fy - y0;
      for (int x = 0; x < size; ++x) {
        const double fx = (x + 0.5) * cells / size;
        const int x0 = std::min(static_cast<int>(fx), cells - 1);
        const double tx = fx - x0;
        const double v00 = grid[y0 * g + x0], v01 = grid[y0 * g + x0 + 1];
        const double v10 = grid[(y0 + 1) * g + x0];
        const double v11 = grid[(y0 + 1) * g + x0 + 1];
        field[static_cast<size_t>(y) * size + x] +=
            (1 - ty) * ((1 - tx) * v00 + tx * v01) +
            ty * ((1 - tx) * v10 + tx * v11);
      }
    }
  };
  for (const Octave& o : octaves) add_octave(luma, o.cells, o.amplitude);
  for (auto& c : chroma) add_octave(c, 6, 0.12);
  const double base = rng.Uniform(0.35, 0.6);
  for (int c = 0; c < 3; ++c) {
    for (size_t i = 0; i < luma.size(); ++i) {
      const double pixel = std::clamp(
          base + luma[i] + chroma[c][i] + 0.02 * rng.Normal(), 0.0, 1.0);
      img[c * luma.size() + i] =
          static_cast<float>((pixel - kMean[c]) / kStd[c]);
    }
  }
  return img;
}

namespace {

// The network up to the pooled features, on a [3][size][size] image.
std::vector<float> PooledFeatures(const FloatResNet& net,
                                  const std::vector<float>& image, int size,
                                  Calibration* cal) {
  int h = size, w = size;
  std::vector<float> x = RunConv(net.stem, image, h, w, cal);
  x = MaxPool3x3s2(x, net.stem.out_channels, h, w);
  for (const FloatBlock& b : net.blocks) {
    int bh = h, bw = w;
    std::vector<float> y = x;
    for (const FloatConv& c : b.convs) y = RunConv(c, y, bh, bw, cal);
    std::vector<float> shortcut;
    if (b.has_downsample) {
      int dh = h, dw = w;
      shortcut = RunConv(b.downsample, x, dh, dw, cal);
    } else {
      shortcut = std::move(x);
    }
    for (size_t i = 0; i < y.size(); ++i) y[i] += shortcut[i];
    Record(cal, b.name + ".add", y, /*relu=*/true);
    ReluInPlace(y);
    x = std::move(y);
    h = bh;
    w = bw;
  }
  const int channels = net.num_features;
  std::vector<float> pooled(channels);
  const int pixels = h * w;
  for (int c = 0; c < channels; ++c) {
    double sum = 0;
    for (int i = 0; i < pixels; ++i)
      sum += x[static_cast<size_t>(c) * pixels + i];
    pooled[c] = static_cast<float>(sum / pixels);
  }
  Record(cal, "avgpool", pooled, /*relu=*/false);
  return pooled;
}

}  // namespace

std::vector<float> RunFloatResNet(const FloatResNet& net,
                                  const std::vector<float>& image,
                                  Calibration* cal) {
  const std::vector<float> pooled =
      PooledFeatures(net, image, net.input_size, cal);
  const int channels = net.num_features;
  std::vector<float> logits(net.num_classes);
  for (int n = 0; n < net.num_classes; ++n) {
    double acc = net.fc_bias[n];
    const float* wr = &net.fc_weights[static_cast<size_t>(n) * channels];
    for (int k = 0; k < channels; ++k)
      acc += static_cast<double>(wr[k]) * pooled[k];
    logits[n] = static_cast<float>(acc);
  }
  Record(cal, "fc", logits, /*relu=*/false);
  return logits;
}

}  // namespace vtaserve::zoo
