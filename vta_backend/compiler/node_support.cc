// Which engine nodes the VTA compiler runs, and their modeled cost.
#include "vta_backend/compiler/node_layers.h"

namespace vtaserve::vta::compiler {

namespace {

absl::Status Unsupported(const Node& node, absl::string_view why) {
  return absl::UnimplementedError(
      absl::StrCat("VTA cannot run node ", node.name, " (",
                   engine::OpKindName(node.op), "): ", why));
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
}  // namespace vtaserve::vta::compiler
