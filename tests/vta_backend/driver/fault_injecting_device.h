// A VtaDevice for fault tests: the built-in simulator whose Run fails on
// request (Internal, DeadlineExceeded at once, or never finishing: Run then
// blocks for its whole timeout and reports DeadlineExceeded), injected
// through VtaOptions::device_factory.
#ifndef VTASERVE_TESTS_VTA_BACKEND_DRIVER_FAULT_INJECTING_DEVICE_H_
#define VTASERVE_TESTS_VTA_BACKEND_DRIVER_FAULT_INJECTING_DEVICE_H_

#include <atomic>
#include <memory>

#include "absl/time/clock.h"
#include "vta_backend/device.h"
#include "vta_backend/sim/sim_device.h"

namespace vtaserve::vta::testing {

enum class RunFault { kNone, kInternal, kDeadlineExceeded, kNeverFinish };

class FaultInjectingDevice : public VtaDevice {
 public:
  explicit FaultInjectingDevice(std::unique_ptr<sim::SimDevice> sim)
      : sim_(std::move(sim)) {}

  // Every following Run fails with `fault` (kNone: runs normally).
  void SetFault(RunFault fault) { fault_ = fault; }
  int runs() const { return runs_; }
  int faults() const { return faults_; }

  absl::StatusOr<DeviceBuffer> AllocBuffer(size_t bytes) override {
    return sim_->AllocBuffer(bytes);
  }
  absl::Status FreeBuffer(const DeviceBuffer& b) override {
    return sim_->FreeBuffer(b);
  }
  absl::Status CopyToDevice(const DeviceBuffer& b, size_t offset,
                            absl::Span<const uint8_t> src) override {
    return sim_->CopyToDevice(b, offset, src);
  }
  absl::Status CopyFromDevice(const DeviceBuffer& b, size_t offset,
                              absl::Span<uint8_t> dst) override {
    return sim_->CopyFromDevice(b, offset, dst);
  }
  absl::StatusOr<RunStats> Run(uint32_t insn, uint32_t count,
                               absl::Duration timeout) override {
    ++runs_;
    switch (fault_.load()) {
      case RunFault::kNone:
        return sim_->Run(insn, count, timeout);
      case RunFault::kInternal:
        ++faults_;
        return absl::InternalError("injected device fault");
      case RunFault::kDeadlineExceeded:
        ++faults_;
        return absl::DeadlineExceededError("injected device timeout");
      case RunFault::kNeverFinish:
        ++faults_;
        absl::SleepFor(timeout);
        return absl::DeadlineExceededError(
            "injected: the device did not finish within its timeout");
    }
    return absl::InternalError("unreachable");
  }

 private:
  std::unique_ptr<sim::SimDevice> sim_;
  std::atomic<RunFault> fault_{RunFault::kNone};
  std::atomic<int> runs_{0}, faults_{0};
};

}  // namespace vtaserve::vta::testing

#endif  // VTASERVE_TESTS_VTA_BACKEND_DRIVER_FAULT_INJECTING_DEVICE_H_
