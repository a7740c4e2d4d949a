#include "vta_backend/compiler/graph_compiler.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "engine/common/status_macros.h"
#include "vta_backend/compiler/first_conv.h"

namespace vtaserve::vta::compiler {
namespace {

using engine::AddParams;
using engine::ConvParams;
using engine::ModelGraph;
using engine::Node;
using engine::NodeId;
using engine::OpKind;
using engine::ValueId;

constexpr int64_t kInt32Limit = int64_t{1} << 31;

absl::Status Unsupported(const Node& node, absl::string_view why) {
  return absl::UnimplementedError(
      absl::StrCat("VTA cannot run node ", node.name, " (",
                   engine::OpKindName(node.op), "): ", why));
}

int CeilDiv(int a, int b) { return (a + b - 1) / b; }

int MaxPad(const ConvParams& p) {
  return std::max({p.pad_top, p.pad_left, p.pad_bottom, p.pad_right});
}

// Shift of output block b (uniform inside the block; padded channels take
// the block's first real shift, fully padded blocks 0).
int32_t BlockShift(const ConvParams& p, int b, int bo) {
  return b * bo < p.out_channels ? p.shift[b * bo] : 0;
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
                           int min_blocks = 0) {
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

std::vector<int8_t> PackConvWeights(const VtaConfig& c, const ConvParams& p,
                                    int ci_blocks, int co_blocks) {
  const int bi = c.BlockIn(), bo = c.BlockOut();
  const int kk = p.kernel_h * p.kernel_w;
  std::vector<int8_t> w(size_t{1} * co_blocks * ci_blocks * kk * bo * bi, 0);
  for (int oc = 0; oc < p.out_channels; ++oc) {
    for (int ic = 0; ic < p.in_channels; ++ic) {
      for (int k = 0; k < kk; ++k) {
        const size_t elem =
            (size_t{1} * (oc / bo) * ci_blocks + ic / bi) * kk + k;
        w[elem * bo * bi + (oc % bo) * bi + ic % bi] =
            p.weights[(size_t{1} * oc * p.in_channels + ic) * kk + k];
      }
    }
  }
  return w;
}

std::vector<int32_t> PackConvBias(const ConvParams& p, int co_blocks, int bo,
                                  bool zp_folded) {
  std::vector<int32_t> b(size_t{1} * co_blocks * bo, 0);
  for (int c = 0; c < p.out_channels; ++c) {
    int64_t v = p.bias[c];
    if (zp_folded)
      v += int64_t{p.output_zero_point} * (int64_t{1} << p.shift[c]);
    b[c] = static_cast<int32_t>(v);
  }
  return b;
}

bool IsInt8Activation(const engine::Value& v, bool four_d) {
  return v.dtype == DataType::kInt8 && v.shape.size() == (four_d ? 4u : 2u) &&
         v.shape[0] == 1;
}

// Consumers of value `v` in `g`.
std::vector<const Node*> Consumers(const ModelGraph& g, ValueId v) {
  std::vector<const Node*> out;
  for (const Node& n : g.nodes) {
    if (std::find(n.inputs.begin(), n.inputs.end(), v) != n.inputs.end()) {
      out.push_back(&n);
    }
  }
  return out;
}

// The first-conv strategy of node `n`: the one named by
// options.node_strategy, else the feasible one with the fewest modeled
// cycles. Unimplemented (with every strategy's reason) when none fits.
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

absl::Status CheckConv(const VtaConfig& c, const ModelGraph& g, const Node& n,
                       const CompilerOptions& options) {
  const auto* pp = std::get_if<ConvParams>(&n.params);
  if (pp == nullptr || n.inputs.size() != 1 || n.outputs.size() != 1) {
    return Unsupported(n, "malformed node");
  }
  const ConvParams& p = *pp;
  const bool dense = n.op == OpKind::kDense;
  if (!IsInt8Activation(g.value(n.inputs[0]), !dense) ||
      !IsInt8Activation(g.value(n.outputs[0]), !dense)) {
    return Unsupported(n, "needs int8 activations of batch 1");
  }
  const int bi = c.BlockIn(), bo = c.BlockOut();
  const bool first_conv = NeedsFirstConvStrategy(c, n);
  if (!first_conv && p.in_channels % bi != 0) {
    return Unsupported(
        n, absl::StrCat("input channels ", p.in_channels,
                        " are not a multiple of BLOCK_IN ", bi,
                        options.first_conv.empty()
                            ? " (no first-conv strategy selected: "
                              "BackendOptions first_conv)"
                            : absl::StrCat(" (first_conv strategy \"",
                                           options.first_conv,
                                           "\" is not implemented)")));
  }
  if (p.dilation_h != 1 || p.dilation_w != 1)
    return Unsupported(n, "dilation != 1");
  for (int b = 0; b * bo < p.out_channels; ++b) {
    for (int ch = b * bo; ch < std::min(p.out_channels, (b + 1) * bo); ++ch) {
      if (p.shift[ch] != p.shift[b * bo]) {
        return Unsupported(n,
                           absl::StrCat("shifts differ inside output block ", b,
                                        " (re-import with "
                                        "RequantOptions{shift_group = ",
                                        bo, "})"));
      }
    }
  }
  if (p.clamp_min < -128 || p.clamp_max > 127 || p.clamp_min > p.clamp_max) {
    return Unsupported(n, "clamp outside int8");
  }
  if (MaxPad(p) > 0 && !first_conv) {
    // Every padded conv reading this value pads with the same zero point
    // (the value's DRAM border holds it).
    for (const Node* other : Consumers(g, n.inputs[0])) {
      const auto* op = std::get_if<ConvParams>(&other->params);
      if (other->op == OpKind::kConv && op != nullptr && MaxPad(*op) > 0 &&
          op->input_zero_point != p.input_zero_point) {
        return Unsupported(
            n,
            absl::StrCat("input is also padded with a different zero point by ",
                         other->name));
      }
    }
  }
  if (p.input_zero_point < -128 || p.input_zero_point > 127) {
    return Unsupported(n, "input zero point outside int8");
  }
  if (first_conv) {
    // The host pads (or packs) the input: any zero point works.
    auto strategy = SelectFirstConvStrategy(c, g, n, options);
    if (!strategy.ok()) return Unsupported(n, strategy.status().message());
    return absl::OkStatus();
  }
  const ConvLayer layer = MakeConvLayer(c, g, n, MaxPad(p), 0);
  auto plan = PlanConv(c, layer);
  if (!plan.ok()) return Unsupported(n, plan.status().message());
  return absl::OkStatus();
}

absl::Status CheckAdd(const VtaConfig& c, const ModelGraph& g, const Node& n) {
  const auto* pp = std::get_if<AddParams>(&n.params);
  if (pp == nullptr || n.inputs.size() != 2 || n.outputs.size() != 1) {
    return Unsupported(n, "malformed node");
  }
  const engine::Value& a = g.value(n.inputs[0]);
  const engine::Value& b = g.value(n.inputs[1]);
  const engine::Value& y = g.value(n.outputs[0]);
  if (!IsInt8Activation(a, true) || !IsInt8Activation(b, true) ||
      !IsInt8Activation(y, true) || a.shape != y.shape || b.shape != y.shape) {
    return Unsupported(n, "needs equal int8 NCHW shapes of batch 1");
  }
  if (y.shape[1] % c.BlockOut() != 0) {
    return Unsupported(
        n, absl::StrCat("channels not a multiple of BLOCK_OUT ", c.BlockOut()));
  }
  const AddParams& p = *pp;
  if (p.multiplier_a < 0 || p.multiplier_a > engine::kMaxAddMultiplier ||
      p.multiplier_b < 0 || p.multiplier_b > engine::kMaxAddMultiplier ||
      p.shift < 0 || p.shift > 30) {
    return Unsupported(n, "multipliers or shift out of range");
  }
  if (p.clamp_min < -128 || p.clamp_max > 127 || p.clamp_min > p.clamp_max) {
    return Unsupported(n, "clamp outside int8");
  }
  if (!AddFoldedBias(p).has_value() && !AddBiasSupported(p.bias)) {
    return Unsupported(n, "bias too large for ALU immediates");
  }
  auto plan = PlanAdd(c, MakeAddLayer(c, g, n, 0, 0, 0));
  if (!plan.ok()) return Unsupported(n, plan.status().message());
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckNodeSupported(const VtaConfig& config,
                                const ModelGraph& graph, const Node& node,
                                const CompilerOptions& options) {
  if (config.Batch() != 1 || config.BlockIn() != config.BlockOut()) {
    return Unsupported(node,
                       "the compiler needs BATCH 1 and BLOCK_IN == BLOCK_OUT");
  }
  switch (node.op) {
    case OpKind::kConv:
    case OpKind::kDense:
      return CheckConv(config, graph, node, options);
    case OpKind::kAdd:
      return CheckAdd(config, graph, node);
    default:
      return Unsupported(node, "no VTA lowering for this op");
  }
}

absl::StatusOr<NodeEstimate> EstimateNode(const VtaConfig& config,
                                          const ModelGraph& graph, NodeId id,
                                          const CompilerOptions& options) {
  if (id < 0 || static_cast<size_t>(id) >= graph.nodes.size()) {
    return absl::InvalidArgumentError("node id out of range");
  }
  const Node& n = graph.nodes[id];
  VTASERVE_RETURN_IF_ERROR(CheckNodeSupported(config, graph, n, options));
  NodeEstimate e;
  for (ValueId v : n.inputs) e.host_bytes += NumElements(graph.value(v).shape);
  e.host_bytes += NumElements(graph.value(n.outputs[0]).shape);
  if (n.op == OpKind::kAdd) {
    VTASERVE_ASSIGN_OR_RETURN(
        AddTiling t, PlanAdd(config, MakeAddLayer(config, graph, n, 0, 0, 0)));
    e.cycles = t.est_cycles;
    e.plan = absl::StrCat("add c", t.c_t, " h", t.h_t);
  } else if (NeedsFirstConvStrategy(config, n)) {
    VTASERVE_ASSIGN_OR_RETURN(
        FirstConvStrategy s,
        SelectFirstConvStrategy(config, graph, n, options));
    const std::vector<FirstConvEstimate> fe =
        EstimateFirstConv(config, graph, id, {s}, nullptr, /*timed_runs=*/0);
    VTASERVE_RETURN_IF_ERROR(fe[0].status);
    e.cycles = fe[0].cycles;
    e.host_bytes = static_cast<uint64_t>(fe[0].image_bytes) +
                   NumElements(graph.value(n.outputs[0]).shape);
    e.plan = absl::StrCat(FirstConvStrategyName(s), " ", fe[0].plan);
  } else {
    const auto& p = std::get<ConvParams>(n.params);
    VTASERVE_ASSIGN_OR_RETURN(
        ConvTiling t,
        PlanConv(config, MakeConvLayer(config, graph, n, MaxPad(p), 0)));
    e.cycles = t.est_cycles;
    e.plan = t.ToString();
  }
  return e;
}

// ------------------------------------------------------------ compiled ----

struct CompiledGraph::ValueBuffer {
  ActivationLayout layout;
  DeviceBuffer buffer;
  int32_t border_value = 0;
  bool graph_input = false;
  bool graph_output = false;
  int input_index = -1;         // in graph.inputs
  int output_index = -1;        // in graph.outputs
  std::vector<int8_t> staging;  // host image (inputs: border pre-filled)
};

struct CompiledGraph::Layer {
  NodeId node = 0;
  std::optional<LoadedProgram> program;
  int64_t macs = 0;
  // First-conv strategies (first_conv.h): the plan, the layer's own input
  // image buffer and its host staging.
  std::optional<FirstConvPlan> first_conv;
  DeviceBuffer first_conv_input;
  std::vector<int8_t> first_conv_staging;
};

CompiledGraph::~CompiledGraph() {
  layers_.clear();  // LoadedPrograms free their buffers first
  if (device_ != nullptr) {
    for (const DeviceBuffer& b : owned_) device_->FreeBuffer(b).IgnoreError();
  }
}

absl::StatusOr<std::unique_ptr<CompiledGraph>> CompiledGraph::Compile(
    std::shared_ptr<VtaDevice> device, const VtaConfig& config,
    const ModelGraph& graph, const CompilerOptions& options) {
  if (device == nullptr) return absl::FailedPreconditionError("no VTA device");
  std::unique_ptr<CompiledGraph> cg(new CompiledGraph());
  cg->device_ = std::move(device);
  cg->config_ = config;
  cg->graph_ = graph;
  cg->options_ = options;
  const ModelGraph& g = cg->graph_;
  for (const Node& n : g.nodes) {
    VTASERVE_RETURN_IF_ERROR(CheckNodeSupported(config, g, n, options));
  }
  VtaDevice& dev = *cg->device_;
  auto alloc = [&](size_t bytes) -> absl::StatusOr<DeviceBuffer> {
    VTASERVE_ASSIGN_OR_RETURN(DeviceBuffer b,
                              dev.AllocBuffer(std::max<size_t>(bytes, 64)));
    cg->owned_.push_back(b);
    return b;
  };
  const int lanes = config.BlockOut();

  // Activation layouts: border = the largest pad of any consumer; border
  // value = the consumers' input zero point.
  cg->values_.resize(g.values.size());
  for (size_t v = 0; v < g.values.size(); ++v) {
    const engine::Value& val = g.values[v];
    bool used = false;
    int border = 0;
    int32_t zp = val.zero_point;
    int min_blocks = 0;
    for (const Node& n : g.nodes) {
      const bool reads = std::find(n.inputs.begin(), n.inputs.end(),
                                   ValueId(v)) != n.inputs.end();
      const bool writes = !n.outputs.empty() && n.outputs[0] == ValueId(v);
      used |= reads || writes;
      if (reads && n.op == OpKind::kConv &&
          !NeedsFirstConvStrategy(config, n)) {
        const auto& p = std::get<ConvParams>(n.params);
        if (MaxPad(p) > 0) {
          border = std::max(border, MaxPad(p));
          zp = p.input_zero_point;
        }
      }
      if (writes && (n.op == OpKind::kConv || n.op == OpKind::kDense)) {
        const auto& p = std::get<ConvParams>(n.params);
        const int64_t pixels =
            val.shape.size() == 4 ? val.shape[2] * val.shape[3] : 1;
        min_blocks = ConvOutBlocks(p, lanes, pixels);
      }
    }
    if (!used) continue;
    auto vb = std::make_unique<ValueBuffer>();
    vb->layout = LayoutFor(val, lanes, border, min_blocks);
    vb->border_value = std::clamp(zp, -128, 127);
    for (size_t i = 0; i < g.inputs.size(); ++i) {
      if (g.inputs[i] == ValueId(v)) {
        vb->graph_input = true;
        vb->input_index = static_cast<int>(i);
      }
    }
    for (size_t i = 0; i < g.outputs.size(); ++i) {
      if (g.outputs[i] == ValueId(v)) {
        vb->graph_output = true;
        vb->output_index = static_cast<int>(i);
      }
    }
    const size_t bytes = static_cast<size_t>(vb->layout.Elems()) * lanes;
    VTASERVE_ASSIGN_OR_RETURN(vb->buffer, alloc(bytes));
    vb->staging.assign(bytes, static_cast<int8_t>(vb->border_value));
    VTASERVE_RETURN_IF_ERROR(dev.CopyToDevice(
        vb->buffer, 0,
        absl::MakeConstSpan(
            reinterpret_cast<const uint8_t*>(vb->staging.data()), bytes)));
    if (!vb->graph_input) vb->staging.clear();
    cg->values_[v] = std::move(vb);
  }

  auto elem_addr = [&](const DeviceBuffer& b, isa::MemoryType t) {
    return CommandQueue::DramElemAddr(config, b, t, 0);
  };
  for (size_t id = 0; id < g.nodes.size(); ++id) {
    const Node& n = g.nodes[id];
    VTASERVE_ASSIGN_OR_RETURN(CommandQueue q, CommandQueue::Create(config));
    std::string plan;
    std::optional<FirstConvPlan> first_conv_plan;
    DeviceBuffer first_conv_input;
    std::vector<int8_t> first_conv_staging;
    if (n.op == OpKind::kAdd) {
      const ValueBuffer& a = *cg->values_[n.inputs[0]];
      const ValueBuffer& b = *cg->values_[n.inputs[1]];
      const ValueBuffer& y = *cg->values_[n.outputs[0]];
      AddLayer layer = MakeAddLayer(config, g, n, a.layout.border,
                                    b.layout.border, y.layout.border);
      layer.a = a.layout;
      layer.b = b.layout;
      layer.out = y.layout;
      VTASERVE_ASSIGN_OR_RETURN(AddTiling t, PlanAdd(config, layer));
      const std::vector<int8_t> w = PackAddWeights(config, layer);
      VTASERVE_ASSIGN_OR_RETURN(DeviceBuffer wb, alloc(w.size()));
      VTASERVE_RETURN_IF_ERROR(dev.CopyToDevice(
          wb, 0,
          absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(w.data()),
                              w.size())));
      AddAddrs addrs;
      VTASERVE_ASSIGN_OR_RETURN(addrs.a,
                                elem_addr(a.buffer, isa::MemoryType::kInp));
      VTASERVE_ASSIGN_OR_RETURN(addrs.b,
                                elem_addr(b.buffer, isa::MemoryType::kInp));
      VTASERVE_ASSIGN_OR_RETURN(addrs.wgt,
                                elem_addr(wb, isa::MemoryType::kWgt));
      VTASERVE_ASSIGN_OR_RETURN(addrs.out,
                                elem_addr(y.buffer, isa::MemoryType::kOut));
      VTASERVE_RETURN_IF_ERROR(EmitAdd(q, layer, t, addrs));
      plan = absl::StrCat("add c", t.c_t, " h", t.h_t, " est ", t.est_cycles,
                          " cycles");
    } else {
      const auto& p = std::get<ConvParams>(n.params);
      const ValueBuffer& x = *cg->values_[n.inputs[0]];
      const ValueBuffer& y = *cg->values_[n.outputs[0]];
      ConvLayer layer;
      std::vector<int8_t> w;
      std::vector<int32_t> bias;
      DeviceBuffer inp_buffer = x.buffer;
      isa::MemoryType inp_type = isa::MemoryType::kInp;
      if (NeedsFirstConvStrategy(config, n)) {
        VTASERVE_ASSIGN_OR_RETURN(
            FirstConvStrategy s,
            SelectFirstConvStrategy(config, g, n, options));
        VTASERVE_ASSIGN_OR_RETURN(
            FirstConvPlan fp, PlanFirstConv(config, p, x.layout.h, x.layout.w,
                                            y.layout.h, y.layout.w, s));
        layer = MakeFirstConvLayer(config, fp, y.layout);
        w = PackFirstConvWeights(config, fp, layer.out.blocks);
        bias = PackFirstConvBias(config, fp, layer.out.blocks);
        const size_t image_bytes = static_cast<size_t>(fp.ImageBytes());
        if (fp.device_gather) inp_type = isa::MemoryType::kInpIm2col;
        VTASERVE_ASSIGN_OR_RETURN(inp_buffer, alloc(image_bytes));
        first_conv_staging.assign(image_bytes, 0);
        first_conv_input = inp_buffer;
        plan = absl::StrCat(
            FirstConvStrategyName(s), fp.bias_in_gemm ? " (bias in GEMM)" : "",
            fp.device_gather ? " (device im2col gather)" : "", " ");
        first_conv_plan.emplace(std::move(fp));
      } else {
        layer = MakeConvLayer(config, g, n, x.layout.border, y.layout.border);
        layer.in = x.layout;
        layer.out = y.layout;
        w = PackConvWeights(config, p, layer.in.blocks, layer.out.blocks);
        bias = PackConvBias(p, layer.out.blocks, config.BlockOut(),
                            layer.zp_folded);
      }
      VTASERVE_ASSIGN_OR_RETURN(ConvTiling t, PlanConv(config, layer));
      VTASERVE_ASSIGN_OR_RETURN(DeviceBuffer wb, alloc(w.size()));
      VTASERVE_RETURN_IF_ERROR(dev.CopyToDevice(
          wb, 0,
          absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(w.data()),
                              w.size())));
      VTASERVE_ASSIGN_OR_RETURN(DeviceBuffer bb, alloc(bias.size() * 4));
      std::vector<uint8_t> bias_bytes(bias.size() * 4);
      for (size_t i = 0; i < bias.size(); ++i) {
        const uint32_t u = static_cast<uint32_t>(bias[i]);
        for (int k = 0; k < 4; ++k)
          bias_bytes[4 * i + k] = static_cast<uint8_t>(u >> (8 * k));
      }
      VTASERVE_RETURN_IF_ERROR(dev.CopyToDevice(bb, 0, bias_bytes));
      ConvAddrs addrs;
      VTASERVE_ASSIGN_OR_RETURN(addrs.inp, elem_addr(inp_buffer, inp_type));
      VTASERVE_ASSIGN_OR_RETURN(addrs.wgt,
                                elem_addr(wb, isa::MemoryType::kWgt));
      VTASERVE_ASSIGN_OR_RETURN(addrs.bias,
                                elem_addr(bb, isa::MemoryType::kAcc));
      VTASERVE_ASSIGN_OR_RETURN(addrs.out,
                                elem_addr(y.buffer, isa::MemoryType::kOut));
      VTASERVE_RETURN_IF_ERROR(EmitConv(q, layer, t, addrs));
      plan += t.ToString();
    }
    auto program = q.Finalize();
    if (!program.ok()) {
      return absl::InternalError(
          absl::StrCat("node ", n.name, ": ", program.status().message()));
    }
    auto loaded = LoadedProgram::Upload(dev, config, *program);
    if (!loaded.ok()) {
      return absl::Status(
          loaded.status().code(),
          absl::StrCat("node ", n.name, ": ", loaded.status().message()));
    }
    auto layer = std::make_unique<Layer>();
    layer->node = static_cast<NodeId>(id);
    layer->program.emplace(*std::move(loaded));
    layer->macs = g.NodeMacs(static_cast<NodeId>(id));
    layer->first_conv = std::move(first_conv_plan);
    layer->first_conv_input = first_conv_input;
    layer->first_conv_staging = std::move(first_conv_staging);
    cg->layers_.push_back(std::move(layer));
    cg->plans_.push_back(absl::StrCat(n.name, ": ", plan, ", ",
                                      program->insns.size(), " insns"));
  }
  return cg;
}

absl::Status CompiledGraph::Execute(const engine::ExecutionContext& context,
                                    absl::Span<const Tensor* const> inputs,
                                    absl::Span<Tensor* const> outputs) {
  const ModelGraph& g = graph_;
  if (inputs.size() != g.inputs.size() || outputs.size() != g.outputs.size()) {
    return absl::InvalidArgumentError("wrong number of inputs or outputs");
  }
  const int lanes = config_.BlockOut();
  std::vector<bool> uploaded(values_.size(), false);
  for (const auto& layer : layers_) {
    VTASERVE_RETURN_IF_ERROR(context.CheckContinue());
    const Node& n = g.nodes[layer->node];
    const absl::Time start = absl::Now();
    double host_seconds = 0.0;
    if (layer->first_conv.has_value()) {
      VTASERVE_ASSIGN_OR_RETURN(host_seconds,
                                PrepareFirstConvInput(*layer, inputs));
    }
    for (ValueId v : n.inputs) {
      ValueBuffer& vb = *values_[v];
      if (layer->first_conv.has_value()) continue;  // transformed above
      if (!vb.graph_input || uploaded[v]) continue;
      const absl::Time h0 = absl::Now();
      const Tensor& t = *inputs[vb.input_index];
      if (t.dtype() != DataType::kInt8 ||
          t.num_elements() !=
              int64_t{vb.layout.channels} * vb.layout.h * vb.layout.w) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input ", g.value(v).name, " does not match the graph"));
      }
      PackActivation(vb.layout, lanes, t.data<int8_t>(), vb.staging.data());
      VTASERVE_RETURN_IF_ERROR(device_->CopyToDevice(
          vb.buffer, 0,
          absl::MakeConstSpan(
              reinterpret_cast<const uint8_t*>(vb.staging.data()),
              vb.staging.size())));
      uploaded[v] = true;
      host_seconds += absl::ToDoubleSeconds(absl::Now() - h0);
    }
    auto stats = layer->program->Run(options_.run_timeout);
    if (!stats.ok()) {
      return absl::Status(
          stats.status().code(),
          absl::StrCat("VTA layer ", n.name, ": ", stats.status().message()));
    }
    for (ValueId v : n.outputs) {
      ValueBuffer& vb = *values_[v];
      if (!vb.graph_output) continue;
      const absl::Time h0 = absl::Now();
      Tensor& t = *outputs[vb.output_index];
      if (t.dtype() != DataType::kInt8 ||
          t.num_elements() !=
              int64_t{vb.layout.channels} * vb.layout.h * vb.layout.w) {
        return absl::InvalidArgumentError(absl::StrCat(
            "output ", g.value(v).name, " does not match the graph"));
      }
      std::vector<int8_t> image(static_cast<size_t>(vb.layout.Elems()) * lanes);
      VTASERVE_RETURN_IF_ERROR(device_->CopyFromDevice(
          vb.buffer, 0,
          absl::MakeSpan(reinterpret_cast<uint8_t*>(image.data()),
                         image.size())));
      UnpackActivation(vb.layout, lanes, image.data(), t.data<int8_t>());
      host_seconds += absl::ToDoubleSeconds(absl::Now() - h0);
    }
    if (context.profile != nullptr) {
      engine::LayerTiming lt;
      lt.layer = n.name;
      lt.op = n.op;
      lt.device = "vta";
      lt.wall_seconds = absl::ToDoubleSeconds(absl::Now() - start);
      lt.modeled_device_seconds = stats->device_seconds;
      lt.host_transform_seconds = host_seconds;
      const SimStats& s = stats->sim;
      lt.counters = {
          {"modeled_cycles", static_cast<double>(stats->cycles)},
          {"gemm_cycles", static_cast<double>(s.gemm_cycles)},
          {"alu_cycles", static_cast<double>(s.alu_cycles)},
          {"gemm_ops", static_cast<double>(s.gemm_counter)},
          {"alu_ops", static_cast<double>(s.alu_counter)},
          {"macs", static_cast<double>(layer->macs)},
          {"load_stall_cycles", static_cast<double>(s.load_stall_cycles)},
          {"compute_stall_cycles", static_cast<double>(s.compute_stall_cycles)},
          {"store_stall_cycles", static_cast<double>(s.store_stall_cycles)},
          {"insn_count", static_cast<double>(s.insn_count)},
          {"dram_bytes_uop", static_cast<double>(s.dram_bytes_by_type[0])},
          {"dram_bytes_wgt", static_cast<double>(s.dram_bytes_by_type[1])},
          {"dram_bytes_inp", static_cast<double>(s.dram_bytes_by_type[2])},
          {"dram_bytes_acc", static_cast<double>(s.dram_bytes_by_type[3])},
          {"dram_bytes_out", static_cast<double>(s.dram_bytes_by_type[4])},
      };
      context.profile->push_back(std::move(lt));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<double> CompiledGraph::PrepareFirstConvInput(
    Layer& layer, absl::Span<const Tensor* const> inputs) {
  const absl::Time h0 = absl::Now();
  const Node& n = graph_.nodes[layer.node];
  const ValueBuffer& vb = *values_[n.inputs[0]];
  const FirstConvPlan& plan = *layer.first_conv;
  const int64_t elems = int64_t{plan.in_channels} * plan.in_h * plan.in_w;
  std::vector<int8_t> produced;
  const int8_t* nchw = nullptr;
  if (vb.graph_input) {
    const Tensor& t = *inputs[vb.input_index];
    if (t.dtype() != DataType::kInt8 || t.num_elements() != elems) {
      return absl::InvalidArgumentError(
          absl::StrCat("input ", graph_.value(n.inputs[0]).name,
                       " does not match the graph"));
    }
    nchw = t.data<int8_t>();
  } else {
    // Produced by an earlier VTA layer of this partition: read it back.
    const int lanes = config_.BlockOut();
    std::vector<int8_t> image(static_cast<size_t>(vb.layout.Elems()) * lanes);
    VTASERVE_RETURN_IF_ERROR(device_->CopyFromDevice(
        vb.buffer, 0,
        absl::MakeSpan(reinterpret_cast<uint8_t*>(image.data()),
                       image.size())));
    produced.resize(static_cast<size_t>(elems));
    UnpackActivation(vb.layout, lanes, image.data(), produced.data());
    nchw = produced.data();
  }
  TransformFirstConvInput(plan, nchw, layer.first_conv_staging.data(),
                          options_.host_runner);
  VTASERVE_RETURN_IF_ERROR(device_->CopyToDevice(
      layer.first_conv_input, 0,
      absl::MakeConstSpan(
          reinterpret_cast<const uint8_t*>(layer.first_conv_staging.data()),
          layer.first_conv_staging.size())));
  return absl::ToDoubleSeconds(absl::Now() - h0);
}

std::string CompiledGraph::Describe() const {
  int conv = 0, dense = 0, add = 0;
  for (const Node& n : graph_.nodes) {
    conv += n.op == OpKind::kConv;
    dense += n.op == OpKind::kDense;
    add += n.op == OpKind::kAdd;
  }
  return absl::StrCat("vta: ", conv, " conv, ", dense, " dense, ", add,
                      " add on ", config_.BitstreamName(), " @ ",
                      config_.clock_mhz, " MHz");
}

}  // namespace vtaserve::vta::compiler
