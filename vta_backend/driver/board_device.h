// BoardDevice: a VtaDevice over a real (or modelled) VTA design: a register
// window, a DMA allocator and the design's run protocol.
//
// One device, one run at a time: every call takes the device's mutex, so
// concurrent requests serialize on it (and a Copy never overlaps a Run).
// Device addresses are the allocator's physical address plus
// `device_address_offset` (DE10-Nano: 0x80000000) and must fit in 32 bits.
// Run's timeout is wall-clock time on the host (DeadlineExceeded); a run's
// device_seconds is measured wall time and `cycles` that time at the
// design's clock.
#ifndef VTASERVE_VTA_BACKEND_DRIVER_BOARD_DEVICE_H_
#define VTASERVE_VTA_BACKEND_DRIVER_BOARD_DEVICE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "vta_backend/device.h"
#include "vta_backend/driver/dma_allocator.h"
#include "vta_backend/driver/register_window.h"
#include "vta_backend/driver/run_protocol.h"

namespace vtaserve::vta::driver {

struct BoardDeviceOptions {
  uint64_t device_address_offset = 0;
  double clock_mhz = 100.0;
  std::string description;  // for logs, e.g. "pynq: /dev/uio0 + ..."
};

class BoardDevice : public VtaDevice {
 public:
  // InvalidArgument if the window is smaller than the protocol needs.
  static absl::StatusOr<std::unique_ptr<BoardDevice>> Create(
      std::unique_ptr<RegisterWindow> regs,
      std::unique_ptr<DmaAllocator> memory,
      std::unique_ptr<RunProtocol> protocol, BoardDeviceOptions options);
  ~BoardDevice() override;

  absl::StatusOr<DeviceBuffer> AllocBuffer(size_t bytes) override;
  absl::Status FreeBuffer(const DeviceBuffer& buffer) override;
  absl::Status CopyToDevice(const DeviceBuffer& buffer, size_t offset,
                            absl::Span<const uint8_t> src) override;
  absl::Status CopyFromDevice(const DeviceBuffer& buffer, size_t offset,
                              absl::Span<uint8_t> dst) override;
  absl::StatusOr<RunStats> Run(uint32_t insn_phys_addr, uint32_t insn_count,
                               absl::Duration timeout) override;

  const std::string& description() const { return options_.description; }

 private:
  struct Live {
    DmaAllocation alloc;
    size_t requested = 0;
  };
  BoardDevice(std::unique_ptr<RegisterWindow> regs,
              std::unique_ptr<DmaAllocator> memory,
              std::unique_ptr<RunProtocol> protocol, BoardDeviceOptions options)
      : regs_(std::move(regs)),
        memory_(std::move(memory)),
        protocol_(std::move(protocol)),
        options_(std::move(options)) {}
  absl::StatusOr<Live*> Find(const DeviceBuffer& buffer, size_t offset,
                             size_t length) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::unique_ptr<RegisterWindow> regs_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<DmaAllocator> memory_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<RunProtocol> protocol_ ABSL_GUARDED_BY(mu_);
  const BoardDeviceOptions options_;
  std::map<uint32_t, Live> live_ ABSL_GUARDED_BY(mu_);  // by device address
};

}  // namespace vtaserve::vta::driver

#endif  // VTASERVE_VTA_BACKEND_DRIVER_BOARD_DEVICE_H_
