// Scheduler: one model version's bounded request queue and its pool of
// concurrent executions, each a worker thread owning its own Executor
// (Executor::Run is not reentrant). Requests wait in FIFO order; a full
// queue rejects at once rather than blocking the caller.
// Thread-safety: all methods are safe to call concurrently. Job completion
// callbacks run on worker threads (or on the caller of Shutdown for jobs it
// rejects) and must not call back into this Scheduler's Shutdown/destructor.
#ifndef VTASERVE_ENGINE_SCHEDULER_H_
#define VTASERVE_ENGINE_SCHEDULER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/backend.h"
#include "engine/executor.h"
#include "engine/tensor.h"

namespace vtaserve::engine {

struct SchedulerOptions {
  // Requests waiting for a free execution (not counting running ones).
  // Default: 64.
  int max_queue_size = 64;
};

// What a finished job reports.
struct InferResult {
  // OK, or why the job did not produce outputs (DeadlineExceeded and
  // Cancelled from the job's controls, Unavailable if shut down unrun,
  // an execution error otherwise).
  absl::Status status;
  std::vector<Tensor> outputs;  // in graph output order, on success
  // Per-layer records when the job asked for a profile (also kept on
  // failure, for what ran).
  std::vector<LayerTiming> profile;
  absl::Duration queue_time;    // submit -> execution start
  absl::Duration compute_time;  // Executor::Run
  bool executed = false;        // the executor ran (even if it failed)
};

// One inference request. The scheduler owns it from a successful Submit
// until `done` has been called (exactly once).
struct InferJob {
  std::vector<Tensor> inputs;  // in graph input order
  absl::Time deadline = absl::InfiniteFuture();
  // May be null. When it becomes true the job stops (queued or between
  // layers) with Cancelled.
  std::shared_ptr<std::atomic<bool>> cancelled;
  // Backends append per-layer records to InferResult::profile.
  bool collect_profile = true;
  std::function<void(InferResult)> done;
};

// Cumulative counters, for ModelStatistics.
struct SchedulerStats {
  uint64_t success_count = 0;
  uint64_t success_ns = 0;  // queue + compute of successful jobs
  uint64_t fail_count = 0;  // accepted jobs that did not succeed
  uint64_t fail_ns = 0;
  uint64_t queue_count = 0;  // jobs that left the queue for a worker
  uint64_t queue_ns = 0;
  uint64_t compute_count = 0;  // executor runs
  uint64_t compute_ns = 0;
  uint64_t inference_count = 0;   // images (batch elements) run successfully
  uint64_t execution_count = 0;   // executor runs
  int64_t last_inference_ms = 0;  // wall clock, ms since the epoch
};

class Scheduler {
 public:
  // Starts one worker per executor. InvalidArgument if `executors` is empty
  // or the options are out of range. Takes ownership of the executors.
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(
      const SchedulerOptions& options,
      std::vector<std::unique_ptr<Executor>> executors);

  // Shutdown(InfiniteFuture()) then joins the workers.
  ~Scheduler();

  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Enqueues `job`. ResourceExhausted when max_queue_size jobs are already
  // waiting, Unavailable after Shutdown started, InvalidArgument without a
  // `done` callback. On error `job.done` is not called.
  absl::Status Submit(InferJob job);

  // Stops accepting jobs and lets queued and running ones finish until
  // `deadline`; after it, jobs still queued complete with Unavailable and
  // running ones are cancelled between layers. Returns once every accepted
  // job has completed. Idempotent.
  void Shutdown(absl::Time deadline);

  // Jobs waiting plus jobs running.
  int InFlight() const;
  SchedulerStats stats() const;
  int num_executions() const { return static_cast<int>(workers_.size()); }

 private:
  struct Queued {
    InferJob job;
    absl::Time enqueued;
  };
  Scheduler(const SchedulerOptions& options,
            std::vector<std::unique_ptr<Executor>> executors);
  void WorkerLoop(Executor* executor);
  void Execute(Executor& executor, Queued item);

  const SchedulerOptions options_;
  std::vector<std::unique_ptr<Executor>> executors_;
  std::vector<std::thread> workers_;

  mutable absl::Mutex mu_;
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool accepting_ ABSL_GUARDED_BY(mu_) = true;
  bool stop_workers_ ABSL_GUARDED_BY(mu_) = false;
  // Cancel flags of the running jobs, set when Shutdown's deadline passes.
  std::vector<std::shared_ptr<std::atomic<bool>>> running_flags_
      ABSL_GUARDED_BY(mu_);
  SchedulerStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vtaserve::engine

#endif  // VTASERVE_ENGINE_SCHEDULER_H_
