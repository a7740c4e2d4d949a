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
#include "engine/graph.h"

namespace vtaserve::engine {

struct PlacementOptions {
  // Backends in order of preference; a node goes to the first one whose
  // Supports() accepts it. Default: VTA, then the CPU pool, then reference.
  std::vector<std::string> preference = {"vta", "cpu", "reference"};
  // Passed to every backend's Compile/EstimateCost.
  BackendOptions backend_options;
};

// Where a node runs and why.
struct NodePlacement {
  std::string node;
  OpKind op = OpKind::kConv;
  std::string backend;
  std::string reason;  // e.g. why preferred backends declined it
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
      const ExecutionContext& context,
      absl::Span<const Tensor* const> inputs);

  const ModelGraph& graph() const { return graph_; }
  const std::vector<NodePlacement>& placements() const { return placements_; }
  // One line per partition, e.g. "vta: 20 nodes (conv1 .. fc)".
  std::vector<std::string> DescribePartitions() const;

 private:
  struct Partition {
    std::string backend;
    Subgraph sub;
    std::unique_ptr<CompiledModel> compiled;
  };
  Executor() = default;
  absl::Status RunOne(const ExecutionContext& context,
                      std::vector<Tensor>& values);

  ModelGraph graph_;
  std::vector<NodePlacement> placements_;
  std::vector<Partition> partitions_;
};

// Checks `t` against value `v` (dtype, and shape except dim 0 when
// `any_batch`). InvalidArgument naming the tensor otherwise.
absl::Status CheckTensorMatches(const Value& v, const Tensor& t, bool any_batch);

}  // namespace vtaserve::engine

#endif  // VTASERVE_ENGINE_EXECUTOR_H_
