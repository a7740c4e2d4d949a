#include "engine/scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace vtaserve::engine {

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(
    const SchedulerOptions& options,
    std::vector<std::unique_ptr<Executor>> executors) {
  if (executors.empty()) {
    return absl::InvalidArgumentError(
        "a scheduler needs at least one executor");
  }
  for (const auto& e : executors) {
    if (e == nullptr) return absl::InvalidArgumentError("null executor");
  }
  if (options.max_queue_size < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_queue_size must be >= 0, got ", options.max_queue_size));
  }
  return std::unique_ptr<Scheduler>(
      new Scheduler(options, std::move(executors)));
}

Scheduler::Scheduler(const SchedulerOptions& options,
                     std::vector<std::unique_ptr<Executor>> executors)
    : options_(options), executors_(std::move(executors)) {
  workers_.reserve(executors_.size());
  for (auto& e : executors_) {
    Executor* ex = e.get();
    workers_.emplace_back([this, ex] { WorkerLoop(ex); });
  }
}

Scheduler::~Scheduler() {
  Shutdown(absl::InfiniteFuture());
  {
    absl::MutexLock lock(&mu_);
    stop_workers_ = true;
  }
  for (std::thread& t : workers_) t.join();
}

absl::Status Scheduler::Submit(InferJob job) {
  if (!job.done) return absl::InvalidArgumentError("job without a callback");
  absl::MutexLock lock(&mu_);
  if (!accepting_) {
    return absl::UnavailableError("the model is shutting down");
  }
  if (static_cast<int>(queue_.size()) >= options_.max_queue_size) {
    return absl::ResourceExhaustedError(
        absl::StrCat("request queue is full (", options_.max_queue_size,
                     " waiting, ", running_, " running)"));
  }
  if (job.cancelled == nullptr) {
    job.cancelled = std::make_shared<std::atomic<bool>>(false);
  }
  queue_.push_back(Queued{std::move(job), absl::Now()});
  return absl::OkStatus();
}

void Scheduler::WorkerLoop(Executor* executor) {
  while (true) {
    Queued item;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_workers_ || !queue_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;
      item = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
      running_flags_.push_back(item.job.cancelled);
    }
    std::shared_ptr<std::atomic<bool>> flag = item.job.cancelled;
    Execute(*executor, std::move(item));
    absl::MutexLock lock(&mu_);
    --running_;
    auto it = std::find(running_flags_.begin(), running_flags_.end(), flag);
    if (it != running_flags_.end()) running_flags_.erase(it);
  }
}

void Scheduler::Execute(Executor& executor, Queued item) {
  InferJob& job = item.job;
  InferResult result;
  const absl::Time start = absl::Now();
  result.queue_time = start - item.enqueued;

  ExecutionContext context;
  context.deadline = job.deadline;
  context.cancelled = job.cancelled.get();
  if (job.collect_profile) context.profile = &result.profile;
  result.status = context.CheckContinue();
  int64_t batch = 0;
  if (result.status.ok()) {
    std::vector<const Tensor*> inputs;
    inputs.reserve(job.inputs.size());
    for (const Tensor& t : job.inputs) inputs.push_back(&t);
    batch = job.inputs.empty() || job.inputs[0].shape().empty()
                ? 1
                : job.inputs[0].shape()[0];
    absl::StatusOr<std::vector<Tensor>> outputs = executor.Run(context, inputs);
    result.executed = true;
    result.compute_time = absl::Now() - start;
    if (outputs.ok()) {
      result.outputs = *std::move(outputs);
    } else {
      result.status = outputs.status();
    }
  }
  {
    absl::MutexLock lock(&mu_);
    const uint64_t queue_ns = absl::ToInt64Nanoseconds(result.queue_time);
    const uint64_t compute_ns = absl::ToInt64Nanoseconds(result.compute_time);
    stats_.queue_count++;
    stats_.queue_ns += queue_ns;
    if (result.executed) {
      stats_.compute_count++;
      stats_.compute_ns += compute_ns;
      stats_.execution_count++;
    }
    if (result.status.ok()) {
      stats_.success_count++;
      stats_.success_ns += queue_ns + compute_ns;
      stats_.inference_count += static_cast<uint64_t>(batch);
      stats_.last_inference_ms = absl::ToUnixMillis(absl::Now());
    } else {
      stats_.fail_count++;
      stats_.fail_ns += queue_ns + compute_ns;
    }
  }
  job.done(std::move(result));
}

void Scheduler::Shutdown(absl::Time deadline) {
  std::vector<Queued> rejected;
  {
    absl::MutexLock lock(&mu_);
    accepting_ = false;
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return queue_.empty() && running_ == 0;
    };
    if (!mu_.AwaitWithDeadline(absl::Condition(&idle), deadline)) {
      // Out of time: drop what waits, stop what runs.
      while (!queue_.empty()) {
        rejected.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      for (auto& flag : running_flags_) flag->store(true);
    }
  }
  for (Queued& item : rejected) {
    InferResult result;
    result.status =
        absl::UnavailableError("the server shut down before the request ran");
    result.queue_time = absl::Now() - item.enqueued;
    {
      absl::MutexLock lock(&mu_);
      stats_.fail_count++;
      stats_.fail_ns += absl::ToInt64Nanoseconds(result.queue_time);
    }
    item.job.done(std::move(result));
  }
  absl::MutexLock lock(&mu_);
  auto none_running = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return running_ == 0;
  };
  mu_.Await(absl::Condition(&none_running));
}

int Scheduler::InFlight() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(queue_.size()) + running_;
}

SchedulerStats Scheduler::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace vtaserve::engine
