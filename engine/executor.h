// Executor: places each node of a model on a backend, compiles the
// contiguous runs of nodes per backend (partitions) and runs them in order.
// Thread-safety: Run must not be called concurrently on one Executor (its
// CompiledModels forbid it); create one Executor per concurrent execution.
// Accessors are safe from any thread.
#ifndef VTASERVE_ENGINE_EXECUTOR_H_
#define VTASERVE_ENGINE_EXECUTOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/backend.h"
#include "engine/backend_registry.h"
#include "engine/device_faults.h"
#include "engine/graph.h"

namespace vtaserve::engine {

struct PlacementOptions {
  // Backends in order of preference; a node goes to the first one whose
  // Supports() accepts it. Default: VTA, then the CPU pool, then reference.
  std::vector<std::string> preference = {"vta", "cpu", "reference"};
  // Passed to every backend's Compile/EstimateCost. The key "first_conv"
  // places the model's first Conv node (see kFirstConvOption).
  BackendOptions backend_options;
  // Device-fault policy shared by the model's Executors (device_faults.h):
  // a partition whose backend fails with a device error re-runs on the next
  // preferred backend that supports all its nodes. Default: null (device
  // errors fail the run).
  std::shared_ptr<DeviceFaults> faults;
};

// BackendOptions key for the first conv's placement: "auto" (default: every
// backend that supports the node estimates its cost, the cheapest wins),
// "cpu", or a strategy name "vta_pad" | "vta_im2col" | "vta_s2d" |
// "vta_kwfold" (backend "vta", which receives the strategy).
inline constexpr char kFirstConvOption[] = "first_conv";
// The executor tells a backend which strategy it chose for a node through
// BackendOptions key kStrategyOptionPrefix + node name (e.g.
// "strategy:conv1" -> "vta_im2col"), in both EstimateCost and Compile.
inline constexpr char kStrategyOptionPrefix[] = "strategy:";

// Where a node runs and why.
struct NodePlacement {
  std::string node;
  OpKind op = OpKind::kConv;
  std::string backend;
  // The backend's strategy for the node (e.g. "vta_im2col"); the backend
  // name when it has no choice to make.
  std::string strategy;
  std::string reason;  // e.g. why preferred backends declined it
  // Cost-model placement only: the chosen estimate (seconds, < 0 when no
  // estimate was made) and every candidate's estimate, e.g.
  // "vta_im2col=0.0051s (...); cpu=0.0004s (...)".
  double cost_seconds = -1.0;
  std::string costs;
};

class Executor {
 public:
  // `graph` must validate. Backends named in options.preference but absent
  // from `registry` are skipped. InvalidArgument if the graph is invalid,
  // Unimplemented if some node has no backend, or a backend's Compile error.
  // REQUIRES: registry outlives the Executor.
  static absl::StatusOr<std::unique_ptr<Executor>> Create(
      ModelGraph graph, const BackendRegistry& registry,
      const PlacementOptions& options);

  // Runs a batch. inputs[i] matches graph().inputs[i] except that dim 0 may
  // be any N >= 1 (the graph is built for N = 1; images run one at a time).
  // All inputs must share N. Returns outputs in graph().outputs order with
  // dim 0 = N. InvalidArgument on dtype/shape mismatch.
  absl::StatusOr<std::vector<Tensor>> Run(
      const ExecutionContext& context, absl::Span<const Tensor* const> inputs);

  const ModelGraph& graph() const { return graph_; }
  const std::vector<NodePlacement>& placements() const { return placements_; }
  // One line per partition, e.g. "vta: 20 nodes (conv1 .. fc)".
  std::vector<std::string> DescribePartitions() const;

 private:
  struct Partition {
    std::string backend;
    Subgraph sub;
    std::unique_ptr<CompiledModel> compiled;
    // Compiled on the first device fault (see PlacementOptions::faults).
    std::unique_ptr<CompiledModel> fallback;
    std::string fallback_backend;
  };
  Executor() = default;
  absl::Status RunOne(const ExecutionContext& context,
                      std::vector<Tensor>& values);
  // Runs `part` on the device (unless degraded), falling back on a device
  // fault.
  absl::Status ExecutePartition(Partition& part,
                                const ExecutionContext& context,
                                absl::Span<const Tensor* const> ins,
                                absl::Span<Tensor* const> outs);
  absl::Status RunFallback(Partition& part, const ExecutionContext& context,
                           absl::Span<const Tensor* const> ins,
                           absl::Span<Tensor* const> outs,
                           const absl::Status& cause);

  // Chooses the backend of the first conv by policy or cost model.
  static absl::StatusOr<Backend*> PlaceFirstConv(
      const ModelGraph& graph, NodeId id, const std::vector<Backend*>& prefs,
      const BackendRegistry& registry, const BackendOptions& options,
      NodePlacement& placement);

  ModelGraph graph_;
  const BackendRegistry* registry_ = nullptr;
  PlacementOptions options_;
  BackendOptions compile_options_;
  std::vector<NodePlacement> placements_;
  std::vector<Partition> partitions_;
};

// Checks `t` against value `v` (dtype, and shape except dim 0 when
// `any_batch`). InvalidArgument naming the tensor otherwise.
absl::Status CheckTensorMatches(const Value& v, const Tensor& t,
                                bool any_batch);

}  // namespace vtaserve::engine

#endif  // VTASERVE_ENGINE_EXECUTOR_H_
