#include "server/device_probe.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/common/logging.h"

namespace vtaserve::server {

DeviceProbe::DeviceProbe(engine::Backend* backend, absl::Duration interval)
    : backend_(backend), interval_(interval), ready_(backend == nullptr) {}

DeviceProbe::~DeviceProbe() { Stop(); }

void DeviceProbe::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void DeviceProbe::Start(std::function<void()> changed) {
  if (backend_ == nullptr || thread_.joinable()) return;
  thread_ = std::thread([this, changed = std::move(changed)] {
    do {
      const absl::Status s = backend_->SelfTest();
      if (s.ok()) {
        VTASERVE_LOG(kInfo, absl::StrCat("backend ", backend_->Name(),
                                         ": device self-test passed"));
        ready_ = true;
        if (changed) changed();
        return;
      }
      VTASERVE_LOG(
          kError,
          absl::StrCat("backend ", backend_->Name(),
                       ": device self-test failed (not ready; retry "
                       "in ",
                       absl::FormatDuration(interval_), "): ", s.ToString()));
    } while (!stop_.WaitForNotificationWithTimeout(interval_));
  });
}

}  // namespace vtaserve::server
