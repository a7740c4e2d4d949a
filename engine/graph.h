// The engine's integer graph IR: what the ONNX importer produces, what the
// partitioner splits and what every backend compiles. All quantized
// activations are int8 in an "int8 domain": a uint8 tensor u with zero point
// zu is carried as u - 128 with zero point zu - 128 (boundary Cast nodes do
// the conversion), so every kernel sees signed int8 x signed int8.
// Requantization constants are already integers here (see requant.h): the
// integer semantics of each op are defined in reference_ops.h and every
// backend must reproduce them bit for bit.
// A ModelGraph is immutable after Validate(); concurrent readers are safe.
#ifndef VTASERVE_ENGINE_GRAPH_H_
#define VTASERVE_ENGINE_GRAPH_H_

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "engine/tensor.h"

namespace vtaserve::engine {

using ValueId = int;
using NodeId = int;

// A tensor flowing through the graph. Activations are NCHW (4-D) or [N, C]
// (2-D) with N = 1: the executor runs a batch one image at a time.
struct Value {
  std::string name;
  DataType dtype = DataType::kInt8;
  std::vector<int64_t> shape;
  // For quantized tensors: real = scale * (q - zero_point), q in the int8
  // domain for kInt8, the uint8 domain for kUInt8. Unused for kFloat32.
  float scale = 1.0f;
  int32_t zero_point = 0;
};

enum class OpKind : uint8_t {
  kConv,           // int8 NCHW -> int8 NCHW, fused requant (+ReLU clamp)
  kDense,          // int8 [1, K] -> int8 [1, N], fused requant
  kAdd,            // int8 + int8 -> int8 (same shape), fused requant (+ReLU)
  kMaxPool,        // int8 -> int8, same quantization
  kGlobalAvgPool,  // int8 [1,C,H,W] -> int8 [1,C,1,1], requant
  kRelu,           // int8 -> int8, max(x, zero_point)
  kReshape,        // any -> same data, new shape (Flatten, Reshape)
  kQuantize,       // float32 -> int8
  kDequantize,     // int8 -> float32
  kCast,           // uint8 <-> int8 (x ^ 0x80)
  kSoftmax,        // float32 [1, N] -> float32 [1, N], along the last axis
};

absl::string_view OpKindName(OpKind op);

// Conv and Dense. Integer semantics for output channel c (all int32, shifts
// arithmetic, wrap-around never occurs for validated graphs):
//   acc = bias[c] + sum_{ci,kh,kw} x_pad[ci][oh*sh+kh*dh-pt][ow*sw+kw*dw-pl]
//                                 * weights[c][ci][kh][kw]
//   (x_pad is x with out-of-image taps equal to input_zero_point)
//   y   = clamp(Shift(acc, shift[c]) + output_zero_point, clamp_min, clamp_max)
// where Shift(a, s) = a >> s (floor) for s >= 0 and a << -s for s < 0.
// Dense is the same with a 1x1 kernel on [1, K] -> [1, N].
struct ConvParams {
  int in_channels = 0;
  int out_channels = 0;
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  int dilation_h = 1, dilation_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  std::vector<int8_t> weights;    // [out][in][kh][kw], requant folded in
  std::vector<int32_t> bias;      // [out], folds zero points and rounding
  std::vector<int32_t> shift;     // [out], in [kMinShift, kMaxShift]
  int32_t input_zero_point = 0;   // int8 domain; the padding value
  int32_t output_zero_point = 0;  // int8 domain
  int32_t clamp_min = -128, clamp_max = 127;  // ReLU fused: clamp_min = zp
  // Provenance, for metadata and error reports only: the float rescale
  // s_x * s_w[c] / s_y each channel approximates.
  std::vector<float> float_multiplier;
};

// Add: y = clamp(((a * multiplier_a + b * multiplier_b + bias) >> shift)
//                + output_zero_point, clamp_min, clamp_max), in int32.
// Multipliers are in [0, kMaxAddMultiplier]; bias folds -za*ma - zb*mb and
// the rounding term 2^(shift-1).
struct AddParams {
  int32_t multiplier_a = 0, multiplier_b = 0;
  int32_t bias = 0;
  int32_t shift = 0;  // in [0, 30]
  int32_t output_zero_point = 0;
  int32_t clamp_min = -128, clamp_max = 127;
};

// MaxPool over int8; out-of-image taps are ignored (never win the max).
struct PoolParams {
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
};

// GlobalAvgPool per channel, in int64:
//   y = clamp(((sum_{h,w} x) * multiplier + bias) >> shift
//             + output_zero_point, -128, 127)
// bias folds -H*W*input_zero_point*multiplier and 2^(shift-1).
struct GapParams {
  int64_t multiplier = 0;
  int64_t bias = 0;
  int32_t shift = 0;  // in [0, 62]
  int32_t output_zero_point = 0;
};

// Quantize: y = clamp(round_half_even(x / scale) + zero_point, -128, 127)
// into the int8 domain. Dequantize: y = (x - zero_point) * scale.
struct QuantizeParams {
  float scale = 1.0f;
  int32_t zero_point = 0;
};

struct ReluParams {
  int32_t zero_point = 0;  // y = max(x, zero_point)
};

struct NoParams {};

using OpParams = std::variant<NoParams, ConvParams, AddParams, PoolParams,
                              GapParams, QuantizeParams, ReluParams>;

struct Node {
  std::string name;  // unique; the layer label in metrics
  OpKind op = OpKind::kConv;
  std::vector<ValueId> inputs;
  std::vector<ValueId> outputs;
  OpParams params;
};

inline constexpr int32_t kMinShift = -15;
inline constexpr int32_t kMaxShift = 30;
inline constexpr int32_t kMaxAddMultiplier = (1 << 14) - 1;

// A whole model or a partition of one. Nodes are in topological order.
struct ModelGraph {
  std::string name;
  std::vector<Value> values;
  std::vector<Node> nodes;
  std::vector<ValueId> inputs;   // fed by the caller
  std::vector<ValueId> outputs;  // returned to the caller

  const Value& value(ValueId id) const { return values[id]; }
  // Id of the value called `name`, or NotFound.
  absl::StatusOr<ValueId> FindValue(absl::string_view name) const;

  // Checks structure and every op's parameters (shapes consistent, ids in
  // range, topological order, one producer per value, parameter ranges).
  // InvalidArgument naming the node on failure. Backends may assume a
  // validated graph.
  absl::Status Validate() const;

  // Multiply-accumulates of node `id` (0 for ops without a reduction).
  int64_t NodeMacs(NodeId id) const;
};

// Builds a standalone graph from `nodes` (a subset of `graph`, in topological
// order): its inputs are values read but not produced by the subset, its
// outputs are values produced by the subset and read outside it or listed as
// graph outputs. Value ids are renumbered; value_map[new id] = id in `graph`.
struct Subgraph {
  ModelGraph graph;
  std::vector<ValueId> value_map;
};
Subgraph ExtractSubgraph(const ModelGraph& graph,
                         absl::Span<const NodeId> nodes);

}  // namespace vtaserve::engine

#endif  // VTASERVE_ENGINE_GRAPH_H_
