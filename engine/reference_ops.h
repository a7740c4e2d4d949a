// Reference (oracle) implementations of every engine op: plain scalar C++
// written for obviousness, not speed. Every backend must match these bit for
// bit on integer outputs. Stateless; thread-safe.
#ifndef VTASERVE_ENGINE_REFERENCE_OPS_H_
#define VTASERVE_ENGINE_REFERENCE_OPS_H_

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/graph.h"
#include "engine/tensor.h"

namespace vtaserve::engine {

// Runs node `node` of validated `graph`. inputs/outputs follow node.inputs /
// node.outputs; outputs are preallocated with the graph's dtype and shape.
absl::Status RunReferenceNode(const ModelGraph& graph, const Node& node,
                              absl::Span<const Tensor* const> inputs,
                              absl::Span<Tensor* const> outputs);

// Scalar building blocks, shared with tests and other backends' tails.
// int8 conv (NCHW, N = 1) per ConvParams semantics in graph.h.
void ReferenceConv(const ConvParams& p, const int8_t* x, int64_t in_h,
                   int64_t in_w, int8_t* y, int64_t out_h, int64_t out_w);
// Requantizes one accumulator of channel c per graph.h.
int8_t RequantizeConvAcc(const ConvParams& p, int c, int32_t acc);
// Quantize one float per QuantizeParams semantics (round half to even).
int8_t QuantizeValue(float x, float scale, int32_t zero_point);

}  // namespace vtaserve::engine

#endif  // VTASERVE_ENGINE_REFERENCE_OPS_H_
