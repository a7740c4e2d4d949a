// The engine <-> backend contract. A Backend turns a (sub)graph into a
// CompiledModel; the engine's partitioner decides which nodes each backend
// gets and the Executor runs the compiled parts in order.
//
// Thread-safety: Backend methods may be called concurrently from several
// threads (the server loads models in parallel). CompiledModel::Execute may
// run concurrently on distinct CompiledModels, never on the same one (the
// scheduler gives each concurrent execution its own instance, as Triton's
// instance rule does).
// Ownership: inputs and outputs passed to Execute are owned by the caller and
// live until Execute returns; a CompiledModel keeps no pointer to them.
#ifndef VTASERVE_ENGINE_BACKEND_H_
#define VTASERVE_ENGINE_BACKEND_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "engine/graph.h"
#include "engine/tensor.h"

namespace vtaserve::engine {

// One executed layer (graph node), as reported by the backend that ran it.
struct LayerTiming {
  std::string layer;  // Node::name
  OpKind op = OpKind::kConv;
  std::string device;  // backend name, e.g. "vta", "cpu", "reference"
  // Wall time on this host, seconds (what a client waits for).
  double wall_seconds = 0.0;
  // Modeled accelerator time (cycles / clock) for simulated devices; < 0
  // when not applicable. Never mixed with wall_seconds.
  double modeled_device_seconds = -1.0;
  // Host work for the layer outside the device (packing, im2col), seconds.
  double host_transform_seconds = 0.0;
  // Device counters by name (e.g. "gemm_ops", "modeled_cycles",
  // "dram_bytes_inp"), cumulative for this layer in this run.
  std::map<std::string, double> counters;
};

// Per-execution controls and the optional profile sink.
struct ExecutionContext {
  // Execution stops between layers with DeadlineExceeded once passed.
  absl::Time deadline = absl::InfiniteFuture();
  // When non-null and true, execution stops between layers with Cancelled.
  const std::atomic<bool>* cancelled = nullptr;
  // When non-null, backends append one LayerTiming per executed node.
  std::vector<LayerTiming>* profile = nullptr;

  // OK, or the status that should stop execution now.
  absl::Status CheckContinue() const;
};

class CompiledModel {
 public:
  virtual ~CompiledModel() = default;

  // Runs the compiled graph. inputs[i] corresponds to graph.inputs[i] and
  // outputs[i] to graph.outputs[i]; REQUIRES: the caller allocated outputs
  // with the graph's dtypes and shapes and inputs match theirs (the Executor
  // guarantees this). Errors: DeadlineExceeded/Cancelled from the context,
  // device errors (e.g. DeadlineExceeded on a device timeout), Internal.
  virtual absl::Status Execute(const ExecutionContext& context,
                               absl::Span<const Tensor* const> inputs,
                               absl::Span<Tensor* const> outputs) = 0;

  // One line for logs and model metadata, e.g. "vta: 17 conv on pynq".
  virtual std::string Describe() const = 0;
};

// Free-form options a backend understands (from the model config), e.g.
// {"first_conv": "vta_im2col"}. Unknown keys are ignored by backends.
using BackendOptions = std::map<std::string, std::string>;

// Cost estimate of running one node on a backend, for placement.
struct NodeCost {
  double seconds = 0.0;  // the figure placement compares
  std::string strategy;  // e.g. "vta_im2col", "cpu"
  std::string detail;    // human-readable breakdown
};

class Backend {
 public:
  virtual ~Backend() = default;

  // Short stable name: "reference", "cpu", "vta".
  virtual absl::string_view Name() const = 0;

  // OK if the backend can run `node` of `graph` exactly (bit-exact with the
  // reference); otherwise Unimplemented with the reason. Cheap.
  virtual absl::Status Supports(const ModelGraph& graph,
                                const Node& node) const = 0;

  // Compiles a validated graph whose every node passed Supports(). Errors:
  // Unimplemented, ResourceExhausted (e.g. does not fit device memory),
  // InvalidArgument for bad options, FailedPrecondition when not ready.
  virtual absl::StatusOr<std::unique_ptr<CompiledModel>> Compile(
      const ModelGraph& graph, const BackendOptions& options) = 0;

  // Estimated cost of `node` alone, for the placement cost model. Backends
  // without a model return Unimplemented; InvalidArgument for bad options
  // (the Executor then fails instead of placing the node elsewhere).
  virtual absl::StatusOr<NodeCost> EstimateCost(
      const ModelGraph& graph, NodeId node, const BackendOptions& options) = 0;

  // Checks that the backend's device works, e.g. by running a small program
  // with a known result on it. Backends with no device answer OK. Errors:
  // Unavailable / FailedPrecondition when the device cannot be reached,
  // DeadlineExceeded when it does not finish, Internal for a wrong result.
  // May block up to the device's run timeout; may be called concurrently
  // with Execute on the backend's CompiledModels.
  virtual absl::Status SelfTest() { return absl::OkStatus(); }
};

}  // namespace vtaserve::engine

#endif  // VTASERVE_ENGINE_BACKEND_H_
