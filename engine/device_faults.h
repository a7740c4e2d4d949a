// DeviceFaults: the device-fault policy of one model, shared by all of its
// Executors (one per concurrent execution).
//
// When a partition's Execute fails with a device error (IsDeviceFault), the
// Executor re-runs that partition on the next backend of the placement
// preference that supports all its nodes (the CPU pool) and the request
// succeeds; each such re-run is one fallback. After `degrade_after`
// consecutive device faults of a backend, the model is degraded: its
// partitions of that backend go straight to the fallback. While degraded,
// the first request after each `probe_interval` runs the backend's
// SelfTest (bounded by the device's run timeout) before its own work; OK
// takes the device back.
//
// Thread-safe.
#ifndef VTASERVE_ENGINE_DEVICE_FAULTS_H_
#define VTASERVE_ENGINE_DEVICE_FAULTS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/backend.h"

namespace vtaserve::engine {

struct DeviceFaultOptions {
  // Consecutive device faults (without a success between them) after which
  // the model leaves the device. Default: 3. 0 never degrades.
  int degrade_after = 3;
  // While degraded, how often a request probes the device with SelfTest.
  // Default: 30 s.
  absl::Duration probe_interval = absl::Seconds(30);
};

// A device failure rather than a problem of the request: Internal,
// Unavailable, or DeadlineExceeded while the request's own deadline has not
// passed (the device timed out).
bool IsDeviceFault(const absl::Status& status, const ExecutionContext& context);

class DeviceFaults {
 public:
  explicit DeviceFaults(DeviceFaultOptions options = {}) : options_(options) {}

  bool Degraded(const std::string& backend) const;
  // Records a fault of `backend`; true when it degraded the model just now.
  bool RecordFault(const std::string& backend, const absl::Status& status);
  void RecordSuccess(const std::string& backend);
  void RecordFallback() ABSL_LOCKS_EXCLUDED(mu_);
  // True (once per probe_interval) when a degraded `backend` is due a probe.
  bool ProbeDue(const std::string& backend, absl::Time now);
  // The probe's result: OK takes the device back.
  void RecordProbe(const std::string& backend, const absl::Status& status);

  uint64_t fallbacks() const;
  uint64_t faults() const;
  // Backends the model has left, sorted.
  std::vector<std::string> DegradedBackends() const;
  // e.g. "vta: degraded after 3 consecutive faults (last: INTERNAL: ...)".
  std::string Describe() const;
  const DeviceFaultOptions& options() const { return options_; }

 private:
  struct State {
    int consecutive = 0;
    bool degraded = false;
    absl::Time last_probe = absl::InfinitePast();
    std::string last_error;
  };
  const DeviceFaultOptions options_;
  mutable absl::Mutex mu_;
  std::map<std::string, State> states_ ABSL_GUARDED_BY(mu_);
  uint64_t fallbacks_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t faults_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vtaserve::engine

#endif  // VTASERVE_ENGINE_DEVICE_FAULTS_H_
