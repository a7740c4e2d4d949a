// Graph-level VTA compiler: decides which engine nodes VTA runs exactly
// (CheckNodeSupported), and compiles a partition (a ModelGraph whose every
// node is supported) into one uploaded VTA program per node plus the DRAM
// buffers it uses: packed weights and biases, and one bordered, blocked
// activation buffer per tensor (layer_lowering.h), its border pre-filled
// with the zero point the consumers pad with. CompiledGraph::Execute packs
// the partition inputs on the host, runs the programs in order and unpacks
// the partition outputs, reporting one engine::LayerTiming per node.
//
// Thread-safety: CheckNodeSupported / EstimateNode are pure. A
// CompiledGraph's Execute must not run concurrently on the same object
// (engine/backend.h); distinct CompiledGraphs may share one device.
#ifndef VTASERVE_VTA_BACKEND_COMPILER_GRAPH_COMPILER_H_
#define VTASERVE_VTA_BACKEND_COMPILER_GRAPH_COMPILER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "engine/backend.h"
#include "engine/graph.h"
#include "engine/parallel_runner.h"
#include "engine/tensor.h"
#include "vta_backend/compiler/layer_lowering.h"
#include "vta_backend/config.h"
#include "vta_backend/device.h"
#include "vta_backend/runtime/command_queue.h"

namespace vtaserve::vta::compiler {

struct CompilerOptions {
  // Device-time budget of one layer's run (VTADeviceRun's wait). Default: 10 s.
  absl::Duration run_timeout = absl::Seconds(10);
  // Value of BackendOptions "first_conv" (e.g. "vta_im2col"). Default: "".
  std::string first_conv;
  // Strategy per node name for convs whose input channels are not a
  // multiple of BLOCK_IN (first_conv.h), from BackendOptions
  // "strategy:<node>" = "vta_pad" | "vta_im2col" | "vta_s2d" | "vta_kwfold".
  // A node without an entry takes the strategy with the fewest modeled
  // cycles. Default: empty.
  std::map<std::string, std::string> node_strategy;
  // Runs the host-side input transforms of those convs in parallel; not
  // owned, must outlive the compiled graph. Default: nullptr (the calling
  // thread does the work).
  engine::ParallelRunner* host_runner = nullptr;
};

// OK if VTA computes `node` bit-exactly with this compiler; Unimplemented
// with the reason otherwise (never an error for a well-formed graph).
absl::Status CheckNodeSupported(const VtaConfig& config,
                                const engine::ModelGraph& graph,
                                const engine::Node& node,
                                const CompilerOptions& options);

// Analytic estimate of one node on VTA alone (as if it were its own
// partition): modeled device cycles and the bytes the host packs/unpacks.
struct NodeEstimate {
  uint64_t cycles = 0;
  uint64_t host_bytes = 0;
  std::string plan;  // tiling, for cost-model details
};
absl::StatusOr<NodeEstimate> EstimateNode(const VtaConfig& config,
                                          const engine::ModelGraph& graph,
                                          engine::NodeId node,
                                          const CompilerOptions& options);

class CompiledGraph {
 public:
  // Compiles `graph` (validated; every node supported). Allocates device
  // buffers and uploads programs on `device`, which must outlive the
  // result (it is shared). Errors: Unimplemented for an unsupported node,
  // ResourceExhausted when a layer or the buffers do not fit, device errors.
  static absl::StatusOr<std::unique_ptr<CompiledGraph>> Compile(
      std::shared_ptr<VtaDevice> device, const VtaConfig& config,
      const engine::ModelGraph& graph, const CompilerOptions& options);
  ~CompiledGraph();

  // engine::CompiledModel::Execute semantics.
  absl::Status Execute(const engine::ExecutionContext& context,
                       absl::Span<const Tensor* const> inputs,
                       absl::Span<Tensor* const> outputs);

  std::string Describe() const;
  // Per node: the chosen tiling / lowering, for dumps and benchmarks.
  const std::vector<std::string>& plans() const { return plans_; }

 private:
  struct ValueBuffer;
  struct Layer;
  CompiledGraph() = default;
  // Builds the input image of a first-conv layer (first_conv.h) on the host
  // and copies it to the device; returns the seconds it took.
  absl::StatusOr<double> PrepareFirstConvInput(
      Layer& layer, absl::Span<const Tensor* const> inputs);

  std::shared_ptr<VtaDevice> device_;
  VtaConfig config_;
  engine::ModelGraph graph_;
  CompilerOptions options_;
  std::vector<std::unique_ptr<ValueBuffer>> values_;  // by ValueId
  std::vector<std::unique_ptr<Layer>> layers_;        // by NodeId
  std::vector<DeviceBuffer> owned_;                   // freed at destruction
  std::vector<std::string> plans_;
};

}  // namespace vtaserve::vta::compiler

#endif  // VTASERVE_VTA_BACKEND_COMPILER_GRAPH_COMPILER_H_
