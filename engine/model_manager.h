// ModelManager: the model repository (<repo>/<model>/config.pbtxt and
// <repo>/<model>/<version>/model.onnx). Loads the latest version of each
// model into a Scheduler with one Executor per concurrent execution, serves
// lookups and request submission, and swaps models on (re)load and unload
// without losing accepted requests: the old version drains before it is
// destroyed.
// Thread-safety: every method may be called concurrently. Loads and unloads
// are serialized among themselves; lookups and submissions run in parallel
// and only wait for the brief swap of a (re)load.
#ifndef VTASERVE_ENGINE_MODEL_MANAGER_H_
#define VTASERVE_ENGINE_MODEL_MANAGER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/backend_registry.h"
#include "engine/device_faults.h"
#include "engine/executor.h"
#include "engine/graph.h"
#include "engine/model_config.h"
#include "engine/scheduler.h"

namespace vtaserve::engine {

// Everything about one loaded model version that requests and metadata
// need. Immutable once published.
struct ModelInfo {
  std::string name;
  int64_t version = 0;
  std::string model_path;  // the .onnx file
  ModelConfig config;
  std::vector<Value> inputs;   // graph inputs (batch dimension 1)
  std::vector<Value> outputs;  // graph outputs (batch dimension 1)
  // Outputs returned when a request names none (config outputs if declared,
  // else every output): indexes into `outputs`.
  std::vector<int> default_outputs;
  std::vector<NodePlacement> placements;  // one per graph node
  std::vector<std::string> strategies;    // per node: backend strategy
  // Per node: the model's preferred backend (its first registered placement
  // entry) declined the node, which runs elsewhere (a CPU fallback).
  std::vector<bool> fallback;
  std::vector<std::string> partitions;  // Executor::DescribePartitions()
  // Device faults, fallbacks and degradation of this version (shared by its
  // Executors; the pointer is fixed, the state inside changes).
  std::shared_ptr<DeviceFaults> faults;
};

// One row of the repository index.
struct ModelState {
  enum class State { kReady, kUnavailable, kLoading };
  std::string name;
  int64_t version = -1;  // served version, -1 when none
  State state = State::kUnavailable;
  std::string reason;  // why not ready, or the last reload error
};
absl::string_view ModelStateName(ModelState::State state);

// Turns <version>/model.onnx into a graph. The server passes the ONNX
// importer; tests may pass their own.
using GraphLoader = std::function<absl::StatusOr<ModelGraph>(
    const std::string& model_path, const ModelConfig& config)>;

struct ModelManagerOptions {
  // Root folder of the repository. Default: "" (empty repository).
  std::string repository;
  // VTA config for models whose config names none. Default: "" (backend's).
  std::string default_vta_config;
  // CPU threads for models whose config sets none. Default: 0 (backend's).
  int default_cpu_threads = 0;
  // Device-fault policy of every model (engine/device_faults.h): fall back
  // per partition, degrade after N consecutive faults, probe to take back.
  DeviceFaultOptions device_faults;
};

class ModelManager {
 public:
  // REQUIRES: `registry` outlives the manager and is no longer modified.
  ModelManager(const ModelManagerOptions& options,
               const BackendRegistry* registry, GraphLoader loader);
  // Shutdown(InfiniteFuture()).
  ~ModelManager();

  ModelManager(const ModelManager&) = delete;
  ModelManager& operator=(const ModelManager&) = delete;

  // Loads every model folder of the repository. Models that load are served
  // even if others fail; the error names every failure. NotFound if the
  // repository folder does not exist.
  absl::Status LoadAll();

  // Loads or reloads `name` (latest version). On failure a previously
  // loaded version keeps serving. NotFound for an unknown model folder,
  // InvalidArgument for a bad config or model file, backend errors.
  absl::Status Load(absl::string_view name);

  // Stops serving `name` after its accepted requests finish. NotFound if
  // it is not loaded.
  absl::Status Unload(absl::string_view name);

  // The served version of `name`; `version` empty or equal to it.
  // NotFound for unknown models or versions not served.
  absl::StatusOr<std::shared_ptr<const ModelInfo>> Find(
      absl::string_view name, absl::string_view version) const;

  // Looks `name`/`version` up as Find does, builds the job with `make_job`
  // (called with the model's info; its error is returned unchanged) and
  // enqueues it: Scheduler::Submit's errors, Unavailable after Shutdown.
  absl::Status Submit(absl::string_view name, absl::string_view version,
                      absl::FunctionRef<absl::StatusOr<InferJob>(
                          const std::shared_ptr<const ModelInfo>&)>
                          make_job);

  // Repository folders and loaded models, sorted by name.
  std::vector<ModelState> Index() const;

  // True when no model of the repository is left unserved by a failed load
  // and Shutdown has not started.
  bool AllReady() const;

  // Statistics of the served models (all when `name` is empty). NotFound
  // for an unknown name or version.
  absl::StatusOr<
      std::vector<std::pair<std::shared_ptr<const ModelInfo>, SchedulerStats>>>
  Stats(absl::string_view name, absl::string_view version) const;

  // Requests accepted and not yet completed, over all models.
  int InFlight() const;

  // Stops accepting requests (Unavailable) and drains every model's
  // scheduler until `deadline` (see Scheduler::Shutdown). Idempotent.
  void Shutdown(absl::Time deadline);

 private:
  struct Model {
    std::shared_ptr<const ModelInfo> info;
    std::unique_ptr<Scheduler> scheduler;
  };
  struct Entry {
    std::shared_ptr<Model> model;  // null when not served
    ModelState state;
    bool failed = false;  // the last load failed
  };

  absl::StatusOr<std::shared_ptr<Model>> Build(const std::string& name);
  absl::StatusOr<std::shared_ptr<Model>> FindModel(
      absl::string_view name, absl::string_view version) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const ModelManagerOptions options_;
  const BackendRegistry* const registry_;
  const GraphLoader loader_;

  absl::Mutex load_mu_;  // serializes Load/Unload/Shutdown
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> models_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
};

// The numeric version folders of `model_dir`, ascending. NotFound if none.
absl::StatusOr<std::vector<int64_t>> ListVersions(const std::string& model_dir);

}  // namespace vtaserve::engine

#endif  // VTASERVE_ENGINE_MODEL_MANAGER_H_
