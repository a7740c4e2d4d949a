// How an engine conv / dense / add node becomes a VTA layer description.
#include "vta_backend/compiler/node_layers.h"

namespace vtaserve::vta::compiler {

namespace {

constexpr int64_t kInt32Limit = int64_t{1} << 31;

int CeilDiv(int a, int b) { return (a + b - 1) / b; }

// Shift of output block b (uniform inside the block; padded channels take
// the block's first real shift, fully padded blocks 0).
int32_t BlockShift(const ConvParams& p, int b, int bo) {
  return b * bo < p.out_channels ? p.shift[b * bo] : 0;
}

}  // namespace

int MaxPad(const ConvParams& p) {
  return std::max({p.pad_top, p.pad_left, p.pad_bottom, p.pad_right});
}

// The add's bias with the zero point folded in, when that is exact.
std::optional<int32_t> AddFoldedBias(const AddParams& p) {
  const int64_t folded =
      int64_t{p.bias} + int64_t{p.output_zero_point} * (int64_t{1} << p.shift);
  const int64_t bound =
      128 * (int64_t{p.multiplier_a} + p.multiplier_b) +
      std::llabs(int64_t{p.bias}) +
      std::llabs(int64_t{p.output_zero_point}) * (int64_t{1} << p.shift);
  if (bound >= kInt32Limit || !AddBiasSupported(static_cast<int32_t>(folded))) {
    return std::nullopt;
  }
  return static_cast<int32_t>(folded);
}

ActivationLayout LayoutFor(const engine::Value& v, int block, int border,
                           int min_blocks) {
  ActivationLayout l;
  l.channels = static_cast<int>(v.shape[1]);
  l.blocks = std::max(CeilDiv(l.channels, block), min_blocks);
  if (v.shape.size() == 4) {
    l.h = static_cast<int>(v.shape[2]);
    l.w = static_cast<int>(v.shape[3]);
  } else {
    l.h = l.w = 1;
  }
  l.border = border;
  return l;
}

// Output blocks of a conv/dense: padded up so that a tile can hold >= 3
// accumulator elements (the pipeline hazard rule needs 3 distinct ones).
int ConvOutBlocks(const ConvParams& p, int block, int64_t pixels) {
  int blocks = CeilDiv(p.out_channels, block);
  while (int64_t{blocks} * pixels < 3) ++blocks;
  return blocks;
}

ConvLayer MakeConvLayer(const VtaConfig& c, const ModelGraph& g, const Node& n,
                        int in_border, int out_border) {
  const auto& p = std::get<ConvParams>(n.params);
  const engine::Value& x = g.value(n.inputs[0]);
  const engine::Value& y = g.value(n.outputs[0]);
  const int bo = c.BlockOut();
  ConvLayer l;
  l.in = LayoutFor(x, c.BlockIn(), in_border);
  const int64_t pixels = y.shape.size() == 4 ? y.shape[2] * y.shape[3] : 1;
  l.out = LayoutFor(y, bo, out_border, ConvOutBlocks(p, bo, pixels));
  l.kh = p.kernel_h;
  l.kw = p.kernel_w;
  l.sh = p.stride_h;
  l.sw = p.stride_w;
  l.pad_top = p.pad_top;
  l.pad_left = p.pad_left;
  for (int b = 0; b < l.out.blocks; ++b)
    l.block_shift.push_back(BlockShift(p, b, bo));
  l.zp_folded = ConvZeroPointFoldable(p);
  l.output_zero_point = p.output_zero_point;
  l.clamp_min = p.clamp_min;
  l.clamp_max = p.clamp_max;
  return l;
}

AddLayer MakeAddLayer(const VtaConfig& c, const ModelGraph& g, const Node& n,
                      int a_border, int b_border, int out_border) {
  const auto& p = std::get<AddParams>(n.params);
  AddLayer l;
  l.a = LayoutFor(g.value(n.inputs[0]), c.BlockOut(), a_border);
  l.b = LayoutFor(g.value(n.inputs[1]), c.BlockOut(), b_border);
  l.out = LayoutFor(g.value(n.outputs[0]), c.BlockOut(), out_border);
  l.multiplier_a = p.multiplier_a;
  l.multiplier_b = p.multiplier_b;
  l.shift = p.shift;
  const auto folded = AddFoldedBias(p);
  l.zp_folded = folded.has_value();
  l.bias = folded.value_or(p.bias);
  l.output_zero_point = p.output_zero_point;
  l.clamp_min = p.clamp_min;
  l.clamp_max = p.clamp_max;
  return l;
}

absl::StatusOr<FirstConvStrategy> SelectFirstConvStrategy(
    const VtaConfig& c, const ModelGraph& g, const Node& n,
    const CompilerOptions& options) {
  std::string requested;
  if (auto it = options.node_strategy.find(n.name);
      it != options.node_strategy.end() && it->second.rfind("vta_", 0) == 0) {
    requested = it->second;
  }
  auto candidates = CandidateStrategies(requested);
  if (!candidates.ok())
    return absl::UnimplementedError(candidates.status().message());
  NodeId id = -1;
  for (size_t i = 0; i < g.nodes.size() && id < 0; ++i) {
    if (g.nodes[i].name == n.name) id = static_cast<NodeId>(i);
  }
  if (id < 0) return absl::InternalError("node is not part of the graph");
  const std::vector<FirstConvEstimate> estimates =
      EstimateFirstConv(c, g, id, *candidates, nullptr, /*timed_runs=*/0);
  const FirstConvEstimate* best = nullptr;
  std::vector<std::string> reasons;
  for (const FirstConvEstimate& e : estimates) {
    if (!e.status.ok()) {
      reasons.push_back(absl::StrCat(FirstConvStrategyName(e.strategy), ": ",
                                     e.status.message()));
    } else if (best == nullptr || e.cycles < best->cycles) {
      best = &e;
    }
  }
  if (best == nullptr) {
    return absl::UnimplementedError(absl::StrCat(
        "input channels ", std::get<ConvParams>(n.params).in_channels,
        " are not a multiple of BLOCK_IN ", c.BlockIn(),
        " and no first-conv strategy fits: ", absl::StrJoin(reasons, "; ")));
  }
  return best->strategy;
}
}  // namespace vtaserve::vta::compiler
