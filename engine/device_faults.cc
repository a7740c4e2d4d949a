#include "engine/device_faults.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "engine/common/logging.h"

namespace vtaserve::engine {

bool IsDeviceFault(const absl::Status& status,
                   const ExecutionContext& context) {
  switch (status.code()) {
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnavailable:
      return true;
    case absl::StatusCode::kDeadlineExceeded:
      return context.deadline == absl::InfiniteFuture() ||
             absl::Now() < context.deadline;
    default:
      return false;
  }
}

bool DeviceFaults::Degraded(const std::string& backend) const {
  absl::MutexLock lock(&mu_);
  auto it = states_.find(backend);
  return it != states_.end() && it->second.degraded;
}

bool DeviceFaults::RecordFault(const std::string& backend,
                               const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  ++faults_;
  State& s = states_[backend];
  ++s.consecutive;
  s.last_error = status.ToString();
  if (!s.degraded && options_.degrade_after > 0 &&
      s.consecutive >= options_.degrade_after) {
    s.degraded = true;
    s.last_probe = absl::Now();
    VTASERVE_LOG(kWarning,
                 absl::StrCat("backend ", backend, ": ", s.consecutive,
                              " consecutive device faults (last: ",
                              s.last_error, "); degraded to the fallback"));
    return true;
  }
  return false;
}

void DeviceFaults::RecordSuccess(const std::string& backend) {
  absl::MutexLock lock(&mu_);
  auto it = states_.find(backend);
  if (it != states_.end()) it->second.consecutive = 0;
}

void DeviceFaults::RecordFallback() {
  absl::MutexLock lock(&mu_);
  ++fallbacks_;
}

bool DeviceFaults::ProbeDue(const std::string& backend, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = states_.find(backend);
  if (it == states_.end() || !it->second.degraded) return false;
  if (now - it->second.last_probe < options_.probe_interval) return false;
  it->second.last_probe = now;
  return true;
}

void DeviceFaults::RecordProbe(const std::string& backend,
                               const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  State& s = states_[backend];
  if (status.ok()) {
    if (s.degraded) {
      VTASERVE_LOG(kInfo,
                   absl::StrCat("backend ", backend,
                                ": self-test passed; device taken back"));
    }
    s.degraded = false;
    s.consecutive = 0;
  } else {
    s.last_error = status.ToString();
  }
}

uint64_t DeviceFaults::fallbacks() const {
  absl::MutexLock lock(&mu_);
  return fallbacks_;
}

uint64_t DeviceFaults::faults() const {
  absl::MutexLock lock(&mu_);
  return faults_;
}

std::vector<std::string> DeviceFaults::DegradedBackends() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [name, s] : states_) {
    if (s.degraded) out.push_back(name);
  }
  return out;
}

std::string DeviceFaults::Describe() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> parts;
  for (const auto& [name, s] : states_) {
    if (!s.degraded) continue;
    parts.push_back(
        absl::StrCat(name, ": degraded after ", options_.degrade_after,
                     " consecutive device faults (last: ", s.last_error, ")"));
  }
  return absl::StrJoin(parts, "; ");
}

}  // namespace vtaserve::engine
