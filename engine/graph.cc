#include "engine/graph.h"

#include <algorithm>
#include <unordered_map>

#include "absl/strings/str_cat.h"

namespace vtaserve::engine {
namespace {

absl::Status NodeError(const Node& node, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      "node '", node.name, "' (", OpKindName(node.op), "): ", what));
}

bool IsQuant(DataType t) { return t == DataType::kInt8; }

int64_t ConvOutDim(int64_t in, int k, int stride, int dilation, int pad0,
                   int pad1) {
  const int64_t eff = static_cast<int64_t>(dilation) * (k - 1) + 1;
  const int64_t span = in + pad0 + pad1 - eff;
  if (span < 0) return -1;
  return span / stride + 1;
}

absl::Status CheckArity(const Node& n, size_t ins, size_t outs) {
  if (n.inputs.size() != ins || n.outputs.size() != outs) {
    return NodeError(n, absl::StrCat("expected ", ins, " inputs and ", outs,
                                     " outputs, got ", n.inputs.size(), "/",
                                     n.outputs.size()));
  }
  return absl::OkStatus();
}

absl::Status CheckClamp(const Node& n, int32_t zp, int32_t lo, int32_t hi) {
  if (zp < -128 || zp > 127)
    return NodeError(n, "zero point out of int8 range");
  if (lo < -128 || hi > 127 || lo > hi) {
    return NodeError(n, absl::StrCat("bad clamp [", lo, ", ", hi, "]"));
  }
  return absl::OkStatus();
}

absl::Status ValidateConv(const ModelGraph& g, const Node& n) {
  const auto* p = std::get_if<ConvParams>(&n.params);
  if (p == nullptr) return NodeError(n, "missing conv parameters");
  const Value& x = g.value(n.inputs[0]);
  const Value& y = g.value(n.outputs[0]);
  if (!IsQuant(x.dtype) || !IsQuant(y.dtype)) {
    return NodeError(n, "input and output must be int8");
  }
  if (p->in_channels <= 0 || p->out_channels <= 0 || p->kernel_h <= 0 ||
      p->kernel_w <= 0 || p->stride_h <= 0 || p->stride_w <= 0 ||
      p->dilation_h <= 0 || p->dilation_w <= 0 || p->pad_top < 0 ||
      p->pad_left < 0 || p->pad_bottom < 0 || p->pad_right < 0) {
    return NodeError(n, "non-positive dimension or negative padding");
  }
  const size_t wsize = static_cast<size_t>(p->out_channels) * p->in_channels *
                       p->kernel_h * p->kernel_w;
  if (p->weights.size() != wsize || p->bias.size() != size_t(p->out_channels) ||
      p->shift.size() != size_t(p->out_channels)) {
    return NodeError(n, "weights/bias/shift sizes do not match the channels");
  }
  for (int32_t s : p->shift) {
    if (s < kMinShift || s > kMaxShift)
      return NodeError(n, "shift out of range");
  }
  if (p->input_zero_point < -128 || p->input_zero_point > 127) {
    return NodeError(n, "input zero point out of int8 range");
  }
  if (absl::Status s =
          CheckClamp(n, p->output_zero_point, p->clamp_min, p->clamp_max);
      !s.ok()) {
    return s;
  }
  if (n.op == OpKind::kDense) {
    if (x.shape.size() != 2 || y.shape.size() != 2 ||
        x.shape[1] != p->in_channels || y.shape[1] != p->out_channels ||
        x.shape[0] != y.shape[0] || p->kernel_h != 1 || p->kernel_w != 1) {
      return NodeError(
          n, absl::StrCat("shape mismatch: input ", ShapeToString(x.shape),
                          " output ", ShapeToString(y.shape)));
    }
    return absl::OkStatus();
  }
  if (x.shape.size() != 4 || y.shape.size() != 4 ||
      x.shape[1] != p->in_channels || y.shape[1] != p->out_channels ||
      x.shape[0] != y.shape[0]) {
    return NodeError(
        n, absl::StrCat("shape mismatch: input ", ShapeToString(x.shape),
                        " output ", ShapeToString(y.shape)));
  }
  const int64_t oh = ConvOutDim(x.shape[2], p->kernel_h, p->stride_h,
                                p->dilation_h, p->pad_top, p->pad_bottom);
  const int64_t ow = ConvOutDim(x.shape[3], p->kernel_w, p->stride_w,
                                p->dilation_w, p->pad_left, p->pad_right);
  if (oh != y.shape[2] || ow != y.shape[3]) {
    return NodeError(
        n, absl::StrCat("output spatial size ", ShapeToString(y.shape),
                        " but expected ", oh, "x", ow));
  }
  return absl::OkStatus();
}

absl::Status ValidateNode(const ModelGraph& g, const Node& n) {
  switch (n.op) {
    case OpKind::kConv:
    case OpKind::kDense: {
      if (absl::Status s = CheckArity(n, 1, 1); !s.ok()) return s;
      return ValidateConv(g, n);
    }
    case OpKind::kAdd: {
      if (absl::Status s = CheckArity(n, 2, 1); !s.ok()) return s;
      const auto* p = std::get_if<AddParams>(&n.params);
      if (p == nullptr) return NodeError(n, "missing add parameters");
      const Value& a = g.value(n.inputs[0]);
      const Value& b = g.value(n.inputs[1]);
      const Value& y = g.value(n.outputs[0]);
      if (!IsQuant(a.dtype) || !IsQuant(b.dtype) || !IsQuant(y.dtype)) {
        return NodeError(n, "inputs and output must be int8");
      }
      if (a.shape != b.shape || a.shape != y.shape) {
        return NodeError(n, "operand shapes differ (broadcast unsupported)");
      }
      if (p->multiplier_a < 0 || p->multiplier_a > kMaxAddMultiplier ||
          p->multiplier_b < 0 || p->multiplier_b > kMaxAddMultiplier ||
          p->shift < 0 || p->shift > 30) {
        return NodeError(n, "multiplier or shift out of range");
      }
      return CheckClamp(n, p->output_zero_point, p->clamp_min, p->clamp_max);
    }
    case OpKind::kMaxPool: {
      if (absl::Status s = CheckArity(n, 1, 1); !s.ok()) return s;
      const auto* p = std::get_if<PoolParams>(&n.params);
      if (p == nullptr) return NodeError(n, "missing pool parameters");
      const Value& x = g.value(n.inputs[0]);
      const Value& y = g.value(n.outputs[0]);
      if (!IsQuant(x.dtype) || !IsQuant(y.dtype) || x.shape.size() != 4 ||
          y.shape.size() != 4 || x.shape[0] != y.shape[0] ||
          x.shape[1] != y.shape[1]) {
        return NodeError(n, "expects int8 NCHW with equal N and C");
      }
      if (p->kernel_h <= 0 || p->kernel_w <= 0 || p->stride_h <= 0 ||
          p->stride_w <= 0 || p->pad_top < 0 || p->pad_left < 0 ||
          p->pad_bottom < 0 || p->pad_right < 0 || p->pad_top >= p->kernel_h ||
          p->pad_bottom >= p->kernel_h || p->pad_left >= p->kernel_w ||
          p->pad_right >= p->kernel_w) {
        return NodeError(n, "bad kernel, stride or padding");
      }
      const int64_t oh = ConvOutDim(x.shape[2], p->kernel_h, p->stride_h, 1,
                                    p->pad_top, p->pad_bottom);
      const int64_t ow = ConvOutDim(x.shape[3], p->kernel_w, p->stride_w, 1,
                                    p->pad_left, p->pad_right);
      if (oh != y.shape[2] || ow != y.shape[3]) {
        return NodeError(n, "output spatial size mismatch");
      }
      return absl::OkStatus();
    }
    case OpKind::kGlobalAvgPool: {
      if (absl::Status s = CheckArity(n, 1, 1); !s.ok()) return s;
      const auto* p = std::get_if<GapParams>(&n.params);
      if (p == nullptr) return NodeError(n, "missing pool parameters");
      const Value& x = g.value(n.inputs[0]);
      const Value& y = g.value(n.outputs[0]);
      if (!IsQuant(x.dtype) || !IsQuant(y.dtype) || x.shape.size() != 4 ||
          y.shape != std::vector<int64_t>{x.shape[0], x.shape[1], 1, 1}) {
        return NodeError(n, "expects int8 [N,C,H,W] -> [N,C,1,1]");
      }
      if (p->shift < 0 || p->shift > 62 || p->multiplier < 0 ||
          p->multiplier > (int64_t{1} << 31)) {
        return NodeError(n, "multiplier or shift out of range");
      }
      return CheckClamp(n, p->output_zero_point, -128, 127);
    }
    case OpKind::kRelu: {
      if (absl::Status s = CheckArity(n, 1, 1); !s.ok()) return s;
      const auto* p = std::get_if<ReluParams>(&n.params);
      const Value& x = g.value(n.inputs[0]);
      const Value& y = g.value(n.outputs[0]);
      if (p == nullptr || !IsQuant(x.dtype) || !IsQuant(y.dtype) ||
          x.shape != y.shape) {
        return NodeError(n, "expects int8 in and out of equal shape");
      }
      return CheckClamp(n, p->zero_point, -128, 127);
    }
    case OpKind::kReshape: {
      if (absl::Status s = CheckArity(n, 1, 1); !s.ok()) return s;
      const Value& x = g.value(n.inputs[0]);
      const Value& y = g.value(n.outputs[0]);
      if (x.dtype != y.dtype || NumElements(x.shape) != NumElements(y.shape)) {
        return NodeError(n, "element count or dtype changes");
      }
      return absl::OkStatus();
    }
    case OpKind::kQuantize:
    case OpKind::kDequantize: {
      if (absl::Status s = CheckArity(n, 1, 1); !s.ok()) return s;
      const auto* p = std::get_if<QuantizeParams>(&n.params);
      const Value& x = g.value(n.inputs[0]);
      const Value& y = g.value(n.outputs[0]);
      const bool q = n.op == OpKind::kQuantize;
      if (p == nullptr || x.shape != y.shape ||
          x.dtype != (q ? DataType::kFloat32 : DataType::kInt8) ||
          y.dtype != (q ? DataType::kInt8 : DataType::kFloat32)) {
        return NodeError(n, "bad dtypes or shapes");
      }
      if (!(p->scale > 0.0f) || p->zero_point < -128 || p->zero_point > 127) {
        return NodeError(n, "scale must be positive and zero point int8");
      }
      return absl::OkStatus();
    }
    case OpKind::kCast: {
      if (absl::Status s = CheckArity(n, 1, 1); !s.ok()) return s;
      const Value& x = g.value(n.inputs[0]);
      const Value& y = g.value(n.outputs[0]);
      const bool ok =
          x.shape == y.shape &&
          ((x.dtype == DataType::kUInt8 && y.dtype == DataType::kInt8) ||
           (x.dtype == DataType::kInt8 && y.dtype == DataType::kUInt8));
      return ok ? absl::OkStatus() : NodeError(n, "casts uint8 <-> int8 only");
    }
    case OpKind::kSoftmax: {
      if (absl::Status s = CheckArity(n, 1, 1); !s.ok()) return s;
      const Value& x = g.value(n.inputs[0]);
      const Value& y = g.value(n.outputs[0]);
      if (x.dtype != DataType::kFloat32 || y.dtype != DataType::kFloat32 ||
          x.shape != y.shape || x.shape.empty()) {
        return NodeError(n, "expects float32 in and out of equal shape");
      }
      return absl::OkStatus();
    }
  }
  return NodeError(n, "unknown op");
}

}  // namespace

absl::string_view OpKindName(OpKind op) {
  switch (op) {
    case OpKind::kConv:
      return "Conv";
    case OpKind::kDense:
      return "Dense";
    case OpKind::kAdd:
      return "Add";
    case OpKind::kMaxPool:
      return "MaxPool";
    case OpKind::kGlobalAvgPool:
      return "GlobalAveragePool";
    case OpKind::kRelu:
      return "Relu";
    case OpKind::kReshape:
      return "Reshape";
    case OpKind::kQuantize:
      return "Quantize";
    case OpKind::kDequantize:
      return "Dequantize";
    case OpKind::kCast:
      return "Cast";
    case OpKind::kSoftmax:
      return "Softmax";
  }
  return "Unknown";
}

absl::StatusOr<ValueId> ModelGraph::FindValue(absl::string_view name) const {
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i].name == name) return static_cast<ValueId>(i);
  }
  return absl::NotFoundError(absl::StrCat("no tensor named '", name, "'"));
}

absl::Status ModelGraph::Validate() const {
  const int nv = static_cast<int>(values.size());
  std::vector<int> producer(nv, -1);
  std::vector<bool> available(nv, false);
  for (ValueId v : inputs) {
    if (v < 0 || v >= nv)
      return absl::InvalidArgumentError("graph input id out of range");
    available[v] = true;
    producer[v] = -2;
  }
  for (const Value& v : values) {
    if (NumElements(v.shape) < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor '", v.name, "' has a bad shape ", ShapeToString(v.shape)));
    }
    if (v.dtype != DataType::kFloat32 && !(v.scale > 0.0f)) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", v.name, "' has a non-positive scale"));
    }
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    for (ValueId v : n.inputs) {
      if (v < 0 || v >= nv) return NodeError(n, "input id out of range");
      if (!available[v]) {
        return NodeError(n, absl::StrCat("reads '", values[v].name,
                                         "' before it is produced"));
      }
    }
    for (ValueId v : n.outputs) {
      if (v < 0 || v >= nv) return NodeError(n, "output id out of range");
      if (producer[v] != -1) {
        return NodeError(n, absl::StrCat("'", values[v].name,
                                         "' has more than one producer"));
      }
      producer[v] = static_cast<int>(i);
      available[v] = true;
    }
    if (absl::Status s = ValidateNode(*this, n); !s.ok()) return s;
  }
  for (ValueId v : outputs) {
    if (v < 0 || v >= nv || !available[v]) {
      return absl::InvalidArgumentError("graph output is never produced");
    }
  }
  return absl::OkStatus();
}

int64_t ModelGraph::NodeMacs(NodeId id) const {
  const Node& n = nodes[id];
  if (n.op != OpKind::kConv && n.op != OpKind::kDense) return 0;
  const auto& p = std::get<ConvParams>(n.params);
  const Value& y = values[n.outputs[0]];
  return NumElements(y.shape) * p.in_channels * p.kernel_h * p.kernel_w;
}

Subgraph ExtractSubgraph(const ModelGraph& graph,
                         absl::Span<const NodeId> nodes) {
  Subgraph sub;
  sub.graph.name = graph.name;
  std::unordered_map<ValueId, ValueId> remap;
  auto map_value = [&](ValueId old_id) {
    auto it = remap.find(old_id);
    if (it != remap.end()) return it->second;
    ValueId id = static_cast<ValueId>(sub.graph.values.size());
    sub.graph.values.push_back(graph.values[old_id]);
    sub.value_map.push_back(old_id);
    remap.emplace(old_id, id);
    return id;
  };
  std::vector<bool> in_set(graph.nodes.size(), false);
  std::vector<bool> produced(graph.values.size(), false);
  for (NodeId id : nodes) in_set[id] = true;
  for (NodeId id : nodes) {
    const Node& n = graph.nodes[id];
    Node copy = n;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const ValueId v = n.inputs[i];
      const bool is_new = remap.find(v) == remap.end();
      copy.inputs[i] = map_value(v);
      if (is_new && !produced[v]) sub.graph.inputs.push_back(copy.inputs[i]);
    }
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      produced[n.outputs[i]] = true;
      copy.outputs[i] = map_value(n.outputs[i]);
    }
    sub.graph.nodes.push_back(std::move(copy));
  }
  // Outputs: produced here and consumed outside, or graph outputs.
  std::vector<bool> used_outside(graph.values.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (in_set[i]) continue;
    for (ValueId v : graph.nodes[i].inputs) used_outside[v] = true;
  }
  for (ValueId v : graph.outputs) used_outside[v] = true;
  for (ValueId new_id = 0; new_id < static_cast<ValueId>(sub.value_map.size());
       ++new_id) {
    const ValueId old_id = sub.value_map[new_id];
    if (produced[old_id] && used_outside[old_id]) {
      sub.graph.outputs.push_back(new_id);
    }
  }
  return sub;
}

}  // namespace vtaserve::engine
