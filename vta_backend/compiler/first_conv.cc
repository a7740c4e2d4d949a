#include "vta_backend/compiler/first_conv.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/common/status_macros.h"

namespace vtaserve::vta::compiler {
namespace {

using engine::ConvParams;

constexpr int64_t kInt32Limit = int64_t{1} << 31;
// Bias lanes: one lane with input 1 carries bias mod 127, the others input
// 127 and carry the quotient in steps of at most 127 * 127.
constexpr int32_t kBiasLaneBig = 127;

int CeilDiv(int a, int b) { return (a + b - 1) / b; }

int MaxPad(const ConvParams& p) {
  return std::max({p.pad_top, p.pad_left, p.pad_bottom, p.pad_right});
}

// Splits `bias` into weights of the bias lanes (lane 0 input 1, the others
// kBiasLaneBig); false if it needs more than `lanes` lanes.
bool SplitBias(int64_t bias, int lanes, std::vector<int8_t>& w) {
  w.assign(lanes, 0);
  const int64_t r = ((bias % kBiasLaneBig) + kBiasLaneBig) % kBiasLaneBig;
  int64_t q = (bias - r) / kBiasLaneBig;
  if (r != 0) {
    if (lanes < 1) return false;
    w[0] = static_cast<int8_t>(r);
  }
  for (int l = 1; l < lanes && q != 0; ++l) {
    const int64_t step = std::clamp<int64_t>(q, -127, 127);
    w[l] = static_cast<int8_t>(step);
    q -= step;
  }
  return q == 0;
}

int64_t FoldedBias(const ConvParams& p, int c, bool zp_folded) {
  int64_t v = p.bias[c];
  if (zp_folded) v += int64_t{p.output_zero_point} * (int64_t{1} << p.shift[c]);
  return v;
}

// A run of transformed channels reading consecutive input columns of one
// input row: k0..k0+len-1 read x[c][ih][iw0 .. iw0+len-1].
struct Run {
  int k0, len, c, off_h, off_w;
};

std::vector<Run> MakeRuns(const FirstConvPlan& plan) {
  std::vector<Run> runs;
  for (int k = 0; k < plan.reduction; ++k) {
    if (!runs.empty()) {
      Run& r = runs.back();
      if (plan.source_channel[k] == r.c && plan.off_h[k] == r.off_h &&
          plan.off_w[k] == r.off_w + r.len) {
        ++r.len;
        continue;
      }
    }
    runs.push_back(
        Run{k, 1, plan.source_channel[k], plan.off_h[k], plan.off_w[k]});
  }
  return runs;
}

}  // namespace

bool ConvZeroPointFoldable(const ConvParams& p) {
  const int64_t taps = int64_t{p.in_channels} * p.kernel_h * p.kernel_w;
  for (int c = 0; c < p.out_channels; ++c) {
    const int32_t s = p.shift[c];
    if (s < 0 || s > 30) return false;
    int64_t wsum = 0;
    for (int64_t k = 0; k < taps; ++k)
      wsum += std::abs(p.weights[c * taps + k]);
    const int64_t bound =
        std::llabs(int64_t{p.bias[c]}) +
        std::llabs(int64_t{p.output_zero_point}) * (int64_t{1} << s) +
        128 * wsum;
    if (bound >= kInt32Limit) return false;
  }
  return true;
}

absl::string_view FirstConvStrategyName(FirstConvStrategy s) {
  switch (s) {
    case FirstConvStrategy::kPad:
      return "vta_pad";
    case FirstConvStrategy::kIm2col:
      return "vta_im2col";
    case FirstConvStrategy::kSpaceToDepth:
      return "vta_s2d";
    case FirstConvStrategy::kKwFold:
      return "vta_kwfold";
  }
  return "?";
}

absl::StatusOr<FirstConvStrategy> ParseFirstConvStrategy(
    absl::string_view name) {
  for (FirstConvStrategy s : kAllFirstConvStrategies) {
    if (FirstConvStrategyName(s) == name) return s;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown first-conv strategy '", name,
                   "' (expected vta_pad, vta_im2col, vta_s2d or vta_kwfold)"));
}

absl::StatusOr<std::vector<FirstConvStrategy>> CandidateStrategies(
    absl::string_view requested) {
  if (requested.empty() || requested == "auto") {
    return std::vector<FirstConvStrategy>(std::begin(kAllFirstConvStrategies),
                                          std::end(kAllFirstConvStrategies));
  }
  VTASERVE_ASSIGN_OR_RETURN(FirstConvStrategy s,
                            ParseFirstConvStrategy(requested));
  return std::vector<FirstConvStrategy>{s};
}

bool NeedsFirstConvStrategy(const VtaConfig& config, const engine::Node& node) {
  if (node.op != engine::OpKind::kConv) return false;
  const auto* p = std::get_if<ConvParams>(&node.params);
  return p != nullptr && p->in_channels % config.BlockIn() != 0;
}

absl::StatusOr<FirstConvPlan> PlanFirstConv(const VtaConfig& config,
                                            const ConvParams& p, int in_h,
                                            int in_w, int out_h, int out_w,
                                            FirstConvStrategy strategy) {
  if (p.dilation_h != 1 || p.dilation_w != 1) {
    return absl::UnimplementedError("first-conv strategies need dilation 1");
  }
  if (p.in_channels <= 0 || p.kernel_h <= 0 || p.kernel_w <= 0 ||
      p.stride_h <= 0 || p.stride_w <= 0 || in_h <= 0 || in_w <= 0 ||
      out_h <= 0 || out_w <= 0) {
    return absl::InvalidArgumentError("inconsistent conv geometry");
  }
  const int lanes = config.BlockIn();
  const int C = p.in_channels, KH = p.kernel_h, KW = p.kernel_w;
  const int SH = p.stride_h, SW = p.stride_w;
  FirstConvPlan plan;
  plan.strategy = strategy;
  plan.in_channels = C;
  plan.in_h = in_h;
  plan.in_w = in_w;
  plan.out_h = out_h;
  plan.out_w = out_w;
  plan.in_kernel_h = KH;
  plan.in_kernel_w = KW;
  plan.in_stride = SH;
  plan.pad_value = std::clamp(p.input_zero_point, -128, 127);
  plan.zp_folded = ConvZeroPointFoldable(p);
  ConvParams& q = plan.conv;
  q = p;
  q.pad_top = q.pad_left = q.pad_bottom = q.pad_right = 0;
  q.stride_h = q.stride_w = 1;
  auto add_channel = [&](int c, int oh, int ow) {
    plan.source_channel.push_back(c);
    plan.off_h.push_back(oh);
    plan.off_w.push_back(ow);
  };
  int kh2 = KH, kw2 = KW;
  // Weight of transformed channel k at transformed tap (a, b).
  std::function<int8_t(int o, int k, int a, int b)> weight;
  ActivationLayout& lay = plan.layout;
  switch (strategy) {
    case FirstConvStrategy::kPad: {
      const int border = MaxPad(p);
      q = p;
      lay.h = in_h;
      lay.w = in_w;
      lay.border = border;
      for (int c = 0; c < C; ++c) add_channel(c, -border, -border);
      weight = [&p, C, KH, KW](int o, int k, int a, int b) {
        return p.weights[((size_t(o) * C + k) * KH + a) * KW + b];
      };
      break;
    }
    case FirstConvStrategy::kIm2col: {
      kh2 = kw2 = 1;
      const int taps = C * KH * KW;
      plan.device_gather = config.ext_im2col_load && KH <= 16 && KW <= 16 &&
                           C <= 16 && SH == SW && SH <= 16 &&
                           int64_t{(out_w - 1) * SW + KW} * C <= 0xffff;
      if (plan.device_gather) {
        // The host writes the bordered HWC image; the device gathers
        // windows in (kh, kw, c) order.
        lay.h = out_h;
        lay.w = out_w;
        for (int c = 0; c < C; ++c) add_channel(c, -p.pad_top, -p.pad_left);
        weight = [&p, C, KH, KW](int o, int k, int, int) {
          const int a = k / (KW * C), b = k / C % KW, c = k % C;
          return p.weights[((size_t(o) * C + c) * KH + a) * KW + b];
        };
        break;
      }
      plan.step_h = SH;
      plan.step_w = SW;
      lay.h = out_h;
      lay.w = out_w;
      for (int c = 0; c < C; ++c) {
        for (int a = 0; a < KH; ++a) {
          for (int b = 0; b < KW; ++b)
            add_channel(c, a - p.pad_top, b - p.pad_left);
        }
      }
      weight = [&p, taps](int o, int k, int, int) {
        return p.weights[size_t(o) * taps + k];
      };
      break;
    }
    case FirstConvStrategy::kSpaceToDepth: {
      kh2 = CeilDiv(KH, SH);
      kw2 = CeilDiv(KW, SW);
      plan.step_h = SH;
      plan.step_w = SW;
      lay.h = out_h + kh2 - 1;
      lay.w = out_w + kw2 - 1;
      for (int c = 0; c < C; ++c) {
        for (int dy = 0; dy < SH; ++dy) {
          for (int dx = 0; dx < SW; ++dx)
            add_channel(c, dy - p.pad_top, dx - p.pad_left);
        }
      }
      weight = [&p, C, KH, KW, SH, SW](int o, int k, int a, int b) -> int8_t {
        const int c = k / (SH * SW), dy = k / SW % SH, dx = k % SW;
        const int kh = a * SH + dy, kw = b * SW + dx;
        if (kh >= KH || kw >= KW) return 0;
        return p.weights[((size_t(o) * C + c) * KH + kh) * KW + kw];
      };
      break;
    }
    case FirstConvStrategy::kKwFold: {
      kw2 = 1;
      q.stride_h = SH;
      plan.step_h = 1;
      plan.step_w = SW;
      lay.h = (out_h - 1) * SH + KH;
      lay.w = out_w;
      for (int c = 0; c < C; ++c) {
        for (int b = 0; b < KW; ++b) add_channel(c, -p.pad_top, b - p.pad_left);
      }
      weight = [&p, C, KH, KW](int o, int k, int a, int) {
        const int c = k / KW, b = k % KW;
        return p.weights[((size_t(o) * C + c) * KH + a) * KW + b];
      };
      break;
    }
  }
  plan.reduction = static_cast<int>(plan.source_channel.size());
  // Transformed reduction channels of the conv.
  const int K = plan.device_gather ? C * KH * KW : plan.reduction;
  // Bias lanes need host-written constants: not with the device gather.
  const int spare = plan.device_gather ? 0 : CeilDiv(K, lanes) * lanes - K;
  // Bias lanes, when every channel's bias fits the spare lanes.
  int bias_lanes = 0;
  std::vector<std::vector<int8_t>> bias_w(p.out_channels);
  bool fits = true;
  for (int o = 0; o < p.out_channels && fits; ++o) {
    fits = SplitBias(FoldedBias(p, o, plan.zp_folded), spare, bias_w[o]);
    for (int l = 0; l < spare && fits; ++l) {
      if (bias_w[o][l] != 0) bias_lanes = std::max(bias_lanes, l + 1);
    }
  }
  plan.bias_in_gemm = fits;
  if (!fits) bias_lanes = 0;
  for (int l = 0; l < bias_lanes; ++l) {
    plan.const_value.push_back(static_cast<int8_t>(l == 0 ? 1 : kBiasLaneBig));
  }
  q.in_channels = K + bias_lanes;
  q.kernel_h = kh2;
  q.kernel_w = kw2;
  const int taps2 = kh2 * kw2;
  q.weights.assign(size_t(p.out_channels) * q.in_channels * taps2, 0);
  for (int o = 0; o < p.out_channels; ++o) {
    for (int k = 0; k < K; ++k) {
      for (int a = 0; a < kh2; ++a) {
        for (int b = 0; b < kw2; ++b) {
          q.weights[((size_t(o) * q.in_channels + k) * kh2 + a) * kw2 + b] =
              weight(o, k, a, b);
        }
      }
    }
    for (int l = 0; l < bias_lanes; ++l) {  // tap (0, 0) only: added once
      q.weights[(size_t(o) * q.in_channels + K + l) * taps2] = bias_w[o][l];
    }
  }
  if (plan.bias_in_gemm) q.bias.assign(p.out_channels, 0);
  lay.channels = q.in_channels;
  lay.blocks = CeilDiv(q.in_channels, lanes);
  plan.image = lay;
  plan.image_lanes = lanes;
  if (plan.device_gather) {
    plan.image = ActivationLayout{};
    plan.image.channels = C;
    plan.image.blocks = 1;
    plan.image.h = (out_h - 1) * SH + KH;
    plan.image.w = (out_w - 1) * SW + KW;
    plan.image_lanes = C;
  }
  // The conv's input rows/cols must cover every tap of every output.
  if (strategy != FirstConvStrategy::kPad) {
    if ((out_h - 1) * q.stride_h + q.kernel_h > lay.h ||
        (out_w - 1) * q.stride_w + q.kernel_w > lay.w) {
      return absl::InternalError("first-conv plan does not cover the output");
    }
  }
  if (lay.PaddedW() > 0xffff || lay.PlaneElems() > (int64_t{1} << 31) / lanes) {
    return absl::UnimplementedError(
        "first-conv image too large for VTA fields");
  }
  return plan;
}

void TransformFirstConvInput(const FirstConvPlan& plan, const int8_t* x,
                             int8_t* image, engine::ParallelRunner* runner) {
  const ActivationLayout& lay = plan.image;
  const int lanes = plan.image_lanes;
  const int PH = lay.PaddedH(), PW = lay.PaddedW();
  const int H = plan.in_h, W = plan.in_w;
  const int K = plan.reduction;
  const int KL = lay.blocks * lanes;
  const int64_t plane = lay.PlaneElems();
  const int8_t pad = static_cast<int8_t>(plan.pad_value);
  const std::vector<Run> runs = MakeRuns(plan);
  auto rows = [&](int64_t begin, int64_t end) {
    std::vector<int8_t> vec(KL, 0);
    for (size_t l = 0; l < plan.const_value.size(); ++l)
      vec[K + l] = plan.const_value[l];
    for (int64_t i = begin; i < end; ++i) {
      for (int j = 0; j < PW; ++j) {
        for (const Run& r : runs) {
          int8_t* dst = vec.data() + r.k0;
          const int ih = static_cast<int>(i) * plan.step_h + r.off_h;
          if (ih < 0 || ih >= H) {
            std::memset(dst, pad, r.len);
            continue;
          }
          const int8_t* row = x + (int64_t{r.c} * H + ih) * W;
          const int iw0 = j * plan.step_w + r.off_w;
          if (iw0 >= 0 && iw0 + r.len <= W) {
            for (int t = 0; t < r.len; ++t) dst[t] = row[iw0 + t];
          } else {
            for (int t = 0; t < r.len; ++t) {
              const int iw = iw0 + t;
              dst[t] = (iw >= 0 && iw < W) ? row[iw] : pad;
            }
          }
        }
        int8_t* out = image + (i * PW + j) * lanes;
        for (int b = 0; b < lay.blocks; ++b) {
          std::memcpy(out + b * plane * lanes, vec.data() + b * lanes, lanes);
        }
      }
    }
  };
  if (runner == nullptr) {
    rows(0, PH);
  } else {
    runner->ParallelFor(PH, rows);
  }
}

ConvLayer MakeFirstConvLayer(const VtaConfig& config, const FirstConvPlan& plan,
                             const ActivationLayout& out) {
  const ConvParams& q = plan.conv;
  const int bo = config.BlockOut();
  ConvLayer l;
  l.in = plan.layout;
  l.out = out;
  l.kh = q.kernel_h;
  l.kw = q.kernel_w;
  l.sh = q.stride_h;
  l.sw = q.stride_w;
  l.pad_top = q.pad_top;
  l.pad_left = q.pad_left;
  for (int b = 0; b < out.blocks; ++b) {
    l.block_shift.push_back(b * bo < q.out_channels ? q.shift[b * bo] : 0);
  }
  l.zp_folded = plan.zp_folded;
  l.bias_in_gemm = plan.bias_in_gemm;
  if (plan.device_gather) {
    l.gather_kh = plan.in_kernel_h;
    l.gather_kw = plan.in_kernel_w;
    l.gather_channels = plan.in_channels;
    l.gather_stride = plan.in_stride;
    l.gather_row_bytes = plan.image.w * plan.image_lanes;
  }
  l.output_zero_point = q.output_zero_point;
  l.clamp_min = q.clamp_min;
  l.clamp_max = q.clamp_max;
  return l;
}

std::vector<int8_t> PackFirstConvWeights(const VtaConfig& c,
                                         const FirstConvPlan& plan,
                                         int out_blocks) {
  const ConvParams& q = plan.conv;
  const int bi = c.BlockIn(), bo = c.BlockOut();
  const int kk = q.kernel_h * q.kernel_w;
  const int ci_blocks = plan.layout.blocks;
  std::vector<int8_t> w(size_t{1} * out_blocks * ci_blocks * kk * bo * bi, 0);
  for (int oc = 0; oc < q.out_channels; ++oc) {
    for (int ic = 0; ic < q.in_channels; ++ic) {
      for (int k = 0; k < kk; ++k) {
        const size_t elem =
            (size_t{1} * (oc / bo) * ci_blocks + ic / bi) * kk + k;
        w[elem * bo * bi + (oc % bo) * bi + ic % bi] =
            q.weights[(size_t{1} * oc * q.in_channels + ic) * kk + k];
      }
    }
  }
  return w;
}

std::vector<int32_t> PackFirstConvBias(const VtaConfig& c,
                                       const FirstConvPlan& plan,
                                       int out_blocks) {
  std::vector<int32_t> b(size_t{1} * out_blocks * c.BlockOut(), 0);
  if (plan.bias_in_gemm) return b;
  for (int o = 0; o < plan.conv.out_channels; ++o) {
    b[o] = static_cast<int32_t>(FoldedBias(plan.conv, o, plan.zp_folded));
  }
  return b;
}

ActivationLayout FirstConvOutputLayout(const VtaConfig& config,
                                       const engine::ModelGraph& graph,
                                       const engine::Node& node) {
  const engine::Value& y = graph.value(node.outputs[0]);
  const int bo = config.BlockOut();
  ActivationLayout l;
  l.channels = static_cast<int>(y.shape[1]);
  l.h = static_cast<int>(y.shape[2]);
  l.w = static_cast<int>(y.shape[3]);
  l.blocks = CeilDiv(l.channels, bo);
  while (int64_t{l.blocks} * l.h * l.w < 3) ++l.blocks;
  return l;
}

std::vector<FirstConvEstimate> EstimateFirstConv(
    const VtaConfig& config, const engine::ModelGraph& graph, engine::NodeId id,
    const std::vector<FirstConvStrategy>& strategies,
    engine::ParallelRunner* runner, int timed_runs) {
  const engine::Node& n = graph.nodes[id];
  const auto& p = std::get<ConvParams>(n.params);
  const engine::Value& xv = graph.value(n.inputs[0]);
  const ActivationLayout out = FirstConvOutputLayout(config, graph, n);
  const int in_h = static_cast<int>(xv.shape[2]),
            in_w = static_cast<int>(xv.shape[3]);
  // Synthetic input for timing the host transform.
  std::vector<int8_t> x(size_t{1} * p.in_channels * in_h * in_w);
  std::mt19937 rng(7);
  for (int8_t& v : x) v = static_cast<int8_t>(rng());
  std::vector<FirstConvEstimate> result;
  for (FirstConvStrategy s : strategies) {
    FirstConvEstimate e;
    e.strategy = s;
    e.macs = graph.NodeMacs(id);
    auto plan = PlanFirstConv(config, p, in_h, in_w, out.h, out.w, s);
    if (!plan.ok()) {
      e.status = plan.status();
      result.push_back(std::move(e));
      continue;
    }
    const ConvLayer layer = MakeFirstConvLayer(config, *plan, out);
    auto tiling = PlanConv(config, layer);
    if (!tiling.ok()) {
      e.status = tiling.status();
      result.push_back(std::move(e));
      continue;
    }
    e.cycles = tiling->est_cycles;
    e.gemm_uops = uint64_t{1} * out.h * out.w * out.blocks * layer.in.blocks *
                  layer.kh * layer.kw;
    e.image_bytes = plan->ImageBytes();
    e.plan = tiling->ToString();
    if (timed_runs <= 0) {
      result.push_back(std::move(e));
      continue;
    }
    // Measured: the input transform and its copy to device memory, and the
    // output's copy back and unpacking to NCHW (the simulator's device
    // memory is host memory, so each copy is a memcpy, as here).
    std::vector<int8_t> image(static_cast<size_t>(e.image_bytes));
    std::vector<int8_t> device_copy(image.size());
    const size_t out_bytes =
        static_cast<size_t>(out.Elems()) * config.BlockOut();
    std::vector<int8_t> out_device(out_bytes, 1), out_host(out_bytes);
    std::vector<int8_t> y(size_t{1} * out.channels * out.h * out.w);
    std::vector<double> seconds;
    for (int r = 0; r <= timed_runs; ++r) {
      const absl::Time t0 = absl::Now();
      TransformFirstConvInput(*plan, x.data(), image.data(), runner);
      std::memcpy(device_copy.data(), image.data(), image.size());
      std::memcpy(out_host.data(), out_device.data(), out_bytes);
      UnpackActivation(out, config.BlockOut(), out_host.data(), y.data());
      if (r > 0) seconds.push_back(absl::ToDoubleSeconds(absl::Now() - t0));
    }
    std::sort(seconds.begin(), seconds.end());
    e.host_seconds = seconds[seconds.size() / 2];
    result.push_back(std::move(e));
  }
  return result;
}

}  // namespace vtaserve::vta::compiler
