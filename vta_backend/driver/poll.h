// A bounded wait on a register condition (shared by the run protocols).
#ifndef VTASERVE_VTA_BACKEND_DRIVER_POLL_H_
#define VTASERVE_VTA_BACKEND_DRIVER_POLL_H_

#include <algorithm>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "vta_backend/driver/run_protocol.h"

namespace vtaserve::vta::driver {

// Calls `check()` (returning 1 done, 0 not yet, -1 bus error) until done,
// sleeping between calls, until `timeout` after `start`.
template <typename Check>
absl::Status PollUntil(Check check, absl::Time start, absl::Duration timeout,
                       const PollOptions& poll, const char* what) {
  const absl::Time deadline = start + timeout;
  absl::Duration pause = poll.poll_min;
  while (true) {
    const int r = check();
    if (r > 0) return absl::OkStatus();
    if (r < 0) {
      return absl::InternalError(absl::StrCat(
          what, ": bus error (control register reads 0xffffffff)"));
    }
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          what, ": VTA did not finish within ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(std::min(pause, deadline - now));
    pause = std::min(pause * 2, poll.poll_max);
  }
}

}  // namespace vtaserve::vta::driver

#endif  // VTASERVE_VTA_BACKEND_DRIVER_POLL_H_
