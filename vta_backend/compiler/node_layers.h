// Internals of the graph compiler (graph_compiler.h): how an engine node
// becomes a VTA layer description (layer_lowering.h), shared by the node
// support checks (node_support.cc) and the compiled graph (graph_compiler.cc).
// Not part of the compiler's API.
#ifndef VTASERVE_VTA_BACKEND_COMPILER_NODE_LAYERS_H_
#define VTASERVE_VTA_BACKEND_COMPILER_NODE_LAYERS_H_

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/common/status_macros.h"
#include "vta_backend/compiler/first_conv.h"
#include "vta_backend/compiler/graph_compiler.h"
#include "vta_backend/compiler/layer_lowering.h"

namespace vtaserve::vta::compiler {

using engine::AddParams;
using engine::ConvParams;
using engine::ModelGraph;
using engine::Node;
using engine::NodeId;
using engine::OpKind;
using engine::ValueId;

// Largest of a conv's four paddings.
int MaxPad(const ConvParams& p);

// The add's bias with the zero point folded in, when that is exact.
std::optional<int32_t> AddFoldedBias(const AddParams& p);

// DRAM layout of value v with `border` and at least `min_blocks` blocks.
ActivationLayout LayoutFor(const engine::Value& v, int block, int border,
                           int min_blocks = 0);

// Output blocks of a conv/dense: padded up so that a tile can hold >= 3
// accumulator elements (the pipeline hazard rule needs 3 distinct ones).
int ConvOutBlocks(const ConvParams& p, int block, int64_t pixels);

ConvLayer MakeConvLayer(const VtaConfig& c, const ModelGraph& g, const Node& n,
                        int in_border, int out_border);
AddLayer MakeAddLayer(const VtaConfig& c, const ModelGraph& g, const Node& n,
                      int a_border, int b_border, int out_border);

// The first-conv strategy of node `n`: the one named by
// options.node_strategy, else the feasible one with the fewest modeled
// cycles. Unimplemented (with every strategy's reason) when none fits.
absl::StatusOr<FirstConvStrategy> SelectFirstConvStrategy(
    const VtaConfig& c, const ModelGraph& g, const Node& n,
    const CompilerOptions& options);

}  // namespace vtaserve::vta::compiler

#endif  // VTASERVE_VTA_BACKEND_COMPILER_NODE_LAYERS_H_
