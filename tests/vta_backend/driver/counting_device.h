// A VtaDevice that forwards to another and counts the calls a board cares
// about (buffer allocations, frees, runs), injected through
// VtaOptions::device_factory.
#ifndef VTASERVE_TESTS_VTA_BACKEND_DRIVER_COUNTING_DEVICE_H_
#define VTASERVE_TESTS_VTA_BACKEND_DRIVER_COUNTING_DEVICE_H_

#include <atomic>
#include <memory>
#include <utility>

#include "vta_backend/device.h"

namespace vtaserve::vta::testing {

class CountingDevice : public VtaDevice {
 public:
  explicit CountingDevice(std::shared_ptr<VtaDevice> inner)
      : inner_(std::move(inner)) {}

  int allocs() const { return allocs_; }
  int frees() const { return frees_; }
  int runs() const { return runs_; }

  absl::StatusOr<DeviceBuffer> AllocBuffer(size_t bytes) override {
    ++allocs_;
    return inner_->AllocBuffer(bytes);
  }
  absl::Status FreeBuffer(const DeviceBuffer& b) override {
    ++frees_;
    return inner_->FreeBuffer(b);
  }
  absl::Status CopyToDevice(const DeviceBuffer& b, size_t offset,
                            absl::Span<const uint8_t> src) override {
    return inner_->CopyToDevice(b, offset, src);
  }
  absl::Status CopyFromDevice(const DeviceBuffer& b, size_t offset,
                              absl::Span<uint8_t> dst) override {
    return inner_->CopyFromDevice(b, offset, dst);
  }
  absl::StatusOr<RunStats> Run(uint32_t insn, uint32_t count,
                               absl::Duration timeout) override {
    ++runs_;
    return inner_->Run(insn, count, timeout);
  }

 private:
  std::shared_ptr<VtaDevice> inner_;
  std::atomic<int> allocs_{0}, frees_{0}, runs_{0};
};

}  // namespace vtaserve::vta::testing

#endif  // VTASERVE_TESTS_VTA_BACKEND_DRIVER_COUNTING_DEVICE_H_
