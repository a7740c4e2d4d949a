// First-conv strategies: how VTA runs a conv whose input channels are not a
// multiple of BLOCK_IN (ResNet's 3-channel 7x7/s2 stem, 3x3 stems). Each
// strategy rewrites the conv into an equivalent conv whose reduction axis is
// padded to whole BLOCK_IN blocks, plus a host transform that builds that
// conv's input image from the original NCHW input:
//   vta_pad     channels padded with zeros to BLOCK_IN, KxK conv as is
//               (the host writes the bordered image, border = zero point);
//   vta_im2col  each output pixel's KHxKWxC window packed into one vector
//               padded to a multiple of BLOCK_IN: a 1x1 conv (a GEMM);
//   vta_s2d     space-to-depth by the stride (C*SH*SW channels), then a
//               stride-1 conv with a ceil(K/S) kernel;
//   vta_kwfold  kernel width x C folded into the reduction, kernel rows
//               looped on VTA (a KHx1 conv with row stride SH).
// Out-of-image taps read the input zero point written by the host (VTA pads
// only with zeros); padded channels read 0 and meet zero weights. When the
// last block has spare lanes the bias rides in the GEMM: spare lanes hold
// constants (1, 127, ...) whose weights in tap 0 sum to the bias, so the
// epilogue skips its tensor ALU add (ConvLayer::bias_in_gemm).
// With the simulator's opt-in extension VtaConfig::ext_im2col_load,
// vta_im2col gathers the windows on the device's load path (LOAD
// INP_IM2COL) from a bordered HWC byte image the host writes (C bytes per
// pixel instead of a padded window per output pixel).
//
// All functions are pure apart from the ParallelRunner they are handed;
// thread-safe.
#ifndef VTASERVE_VTA_BACKEND_COMPILER_FIRST_CONV_H_
#define VTASERVE_VTA_BACKEND_COMPILER_FIRST_CONV_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/graph.h"
#include "engine/parallel_runner.h"
#include "vta_backend/compiler/layer_lowering.h"
#include "vta_backend/config.h"

namespace vtaserve::vta::compiler {

enum class FirstConvStrategy { kPad, kIm2col, kSpaceToDepth, kKwFold };

inline constexpr FirstConvStrategy kAllFirstConvStrategies[] = {
    FirstConvStrategy::kPad, FirstConvStrategy::kIm2col,
    FirstConvStrategy::kSpaceToDepth, FirstConvStrategy::kKwFold};

// "vta_pad", "vta_im2col", "vta_s2d", "vta_kwfold".
absl::string_view FirstConvStrategyName(FirstConvStrategy strategy);

// True when bias[c] + (zp << s) can replace the separate zero-point add for
// every channel: s >= 0 and the accumulator provably stays in int32. The one
// rule for every conv lowering (the epilogue's expected bias depends on it).
bool ConvZeroPointFoldable(const engine::ConvParams& p);
// Inverse of FirstConvStrategyName; InvalidArgument for anything else.
absl::StatusOr<FirstConvStrategy> ParseFirstConvStrategy(
    absl::string_view name);

// True when VTA needs a first-conv strategy for `node`: a kConv whose input
// channels are not a multiple of BLOCK_IN.
bool NeedsFirstConvStrategy(const VtaConfig& config, const engine::Node& node);

// The rewritten conv and its host transform. Lane k of the host image at
// plane position (i, j) holds, for k < reduction:
//   x[source_channel[k]][i * step_h + off_h[k]][j * step_w + off_w[k]]
// (pad_value outside the image); for k in [reduction, reduction +
// const_value.size()): the bias constant const_value[k - reduction];
// beyond: 0. (i, j) range over the whole padded plane of `image` (for
// vta_pad the border is part of the plane: off = -border).
struct FirstConvPlan {
  FirstConvStrategy strategy = FirstConvStrategy::kPad;
  int in_channels = 0, in_h = 0, in_w = 0;  // the original input
  int out_h = 0, out_w = 0;
  int in_kernel_h = 1, in_kernel_w = 1, in_stride = 1;  // the original conv's
  int32_t pad_value = 0;  // the original input zero point (int8 domain)
  // The equivalent conv VTA runs (bias already zero-point folded and moved
  // into constant lanes when bias_in_gemm).
  engine::ConvParams conv;
  int reduction = 0;  // real transformed channels (before bias lanes)
  bool bias_in_gemm = false;
  std::vector<int8_t> const_value;  // bias lanes' input constants
  ActivationLayout layout;          // the conv's input as the lowering sees it
  // The host image: `image` with image_lanes bytes per element. Equal to
  // layout / BLOCK_IN except with device_gather (one block of C lanes:
  // the bordered HWC byte image LOAD INP_IM2COL reads).
  ActivationLayout image;
  int image_lanes = 0;
  bool device_gather = false;
  int step_h = 1, step_w = 1;
  std::vector<int> source_channel, off_h, off_w;  // [reduction]
  // Output zero point folded into the bias (see ConvLayer::zp_folded).
  bool zp_folded = false;

  // Bytes of the host image.
  int64_t ImageBytes() const { return image.Elems() * image_lanes; }
};

// Builds the plan of `strategy` for conv `p` on an in_h x in_w input
// producing out_h x out_w. Unimplemented when the strategy cannot express
// this conv (dilation, sizes beyond the ISA fields).
absl::StatusOr<FirstConvPlan> PlanFirstConv(const VtaConfig& config,
                                            const engine::ConvParams& p,
                                            int in_h, int in_w, int out_h,
                                            int out_w,
                                            FirstConvStrategy strategy);

// Writes the whole host image (plan.ImageBytes() bytes) from the NCHW int8
// input x [in_channels][in_h][in_w]. Rows of the plane are split over
// `runner` (nullptr: the calling thread does all of them).
void TransformFirstConvInput(const FirstConvPlan& plan, const int8_t* x,
                             int8_t* image, engine::ParallelRunner* runner);

// The lowering's view of the plan with output image layout `out`.
ConvLayer MakeFirstConvLayer(const VtaConfig& config, const FirstConvPlan& plan,
                             const ActivationLayout& out);
// Weights OIHW{BO}o{BI}i with out.blocks output blocks, and the ACC bias
// (zero when bias_in_gemm), as graph_compiler.cc packs them.
std::vector<int8_t> PackFirstConvWeights(const VtaConfig& config,
                                         const FirstConvPlan& plan,
                                         int out_blocks);
std::vector<int32_t> PackFirstConvBias(const VtaConfig& config,
                                       const FirstConvPlan& plan,
                                       int out_blocks);

// Output image layout of a conv node without border (the estimate's and
// the benchmark's), with the output blocks padded as the compiler pads them.
ActivationLayout FirstConvOutputLayout(const VtaConfig& config,
                                       const engine::ModelGraph& graph,
                                       const engine::Node& node);

// One strategy's estimate for one node.
struct FirstConvEstimate {
  FirstConvStrategy strategy = FirstConvStrategy::kPad;
  absl::Status status;      // not OK: the strategy cannot run this node (why)
  uint64_t cycles = 0;      // modeled total (planner's cycle model)
  uint64_t gemm_uops = 0;   // GEMM uop executions (cycles of pure GEMM)
  int64_t macs = 0;         // useful multiply-accumulates
  int64_t image_bytes = 0;  // host image copied to the device
  double host_seconds = 0;  // measured median transform + copy
  std::string plan;         // tiling
  double device_seconds(const VtaConfig& c) const {
    return static_cast<double>(cycles) / (c.clock_mhz * 1e6);
  }
};

// Estimates `strategies` for node `id` (NeedsFirstConvStrategy must hold):
// the planner's modeled cycles, and the host work measured on `runner`
// (input transform + copy to the device, output copy back + unpacking;
// median of `timed_runs` after one warm-up, on a synthetic input;
// timed_runs <= 0: not measured, host_seconds = 0).
std::vector<FirstConvEstimate> EstimateFirstConv(
    const VtaConfig& config, const engine::ModelGraph& graph, engine::NodeId id,
    const std::vector<FirstConvStrategy>& strategies,
    engine::ParallelRunner* runner, int timed_runs);

// The strategies a node may use under `requested` ("" or "auto": every
// strategy; a strategy name: that one). InvalidArgument for an unknown name.
absl::StatusOr<std::vector<FirstConvStrategy>> CandidateStrategies(
    absl::string_view requested);

}  // namespace vtaserve::vta::compiler

#endif  // VTASERVE_VTA_BACKEND_COMPILER_FIRST_CONV_H_
