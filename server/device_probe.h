// DeviceProbe: device readiness of the server. A backend with a device
// (engine::Backend::SelfTest) is not ready until its self-test passes; the
// probe runs it at once and then every `interval` until it passes, calling
// `changed` after the first pass (the server then re-reads its health).
// Failures are logged with their reason. Thread-safe; the destructor stops
// and joins the probe thread.
#ifndef VTASERVE_SERVER_DEVICE_PROBE_H_
#define VTASERVE_SERVER_DEVICE_PROBE_H_

#include <atomic>
#include <functional>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "engine/backend.h"

namespace vtaserve::server {

class DeviceProbe {
 public:
  // `backend` null: nothing to probe, ready at once. Ready() is false until
  // Start() and a passing self-test.
  DeviceProbe(engine::Backend* backend, absl::Duration interval);
  ~DeviceProbe();

  // Starts probing; `changed` runs on the probe thread after a pass.
  void Start(std::function<void()> changed);
  bool Ready() const { return ready_.load(); }
  // Stops and joins the probe thread (waits for a self-test in flight).
  void Stop();

 private:
  engine::Backend* backend_;
  absl::Duration interval_;
  std::atomic<bool> ready_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace vtaserve::server

#endif  // VTASERVE_SERVER_DEVICE_PROBE_H_
