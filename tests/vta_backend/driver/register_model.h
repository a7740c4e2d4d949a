// A register-level model of a VTA board for the driver tests: two memfd
// regions, a register file and a DRAM, each mapped twice (the driver's side
// and the "hardware" side). A model thread plays the hardware: the Xilinx
// HLS block control (ap_start / ap_done / ap_idle / auto-restart of the
// fetch, load, compute and store blocks) or the Chisel register block; on a
// start it reads the instruction count and address from the registers,
// runs the stream with the project's simulator (sim::SimDevice) over the
// DRAM bytes and raises done. It misbehaves on request (Fault).
#ifndef VTASERVE_TESTS_VTA_BACKEND_DRIVER_REGISTER_MODEL_H_
#define VTASERVE_TESTS_VTA_BACKEND_DRIVER_REGISTER_MODEL_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "vta_backend/config.h"
#include "vta_backend/driver/board_device.h"
#include "vta_backend/driver/board_spec.h"
#include "vta_backend/sim/sim_device.h"

namespace vtaserve::vta::testing {

enum class ModelFault {
  kNone,
  // HLS: compute's done keeps the previous run's 1 for `stale_for` after a
  // start (the tvm-vta race), then the run proceeds normally.
  kStaleDone,
  // Done is raised `late_by` after the run completed.
  kLate,
  // The run never completes (done never rises).
  kNeverFinish,
  // Control registers read all ones (an AXI error response) until the
  // fault is cleared.
  kBusError,
};

struct RegisterModelOptions {
  driver::Design design = driver::Design::kXilinxHls;
  VtaConfig config;
  size_t dram_bytes = size_t{32} << 20;
  // Added to DRAM physical addresses by the device (DE10-Nano: 0x80000000).
  uint64_t device_address_offset = 0;
  absl::Duration stale_for = absl::Milliseconds(20);
  absl::Duration late_by = absl::Milliseconds(30);
};

class RegisterModel {
 public:
  // DRAM physical base (so the simulator's one buffer has the same
  // addresses: its first allocation sits at 0x1000).
  static constexpr uint64_t kPhysBase = 0x1000;

  static absl::StatusOr<std::unique_ptr<RegisterModel>> Create(
      RegisterModelOptions options);
  ~RegisterModel();

  // A BoardDevice over fresh driver-side mappings of the two regions (the
  // DMA allocator uses explicit syncs, counted in syncs()).
  absl::StatusOr<std::unique_ptr<driver::BoardDevice>> OpenDevice(
      driver::PollOptions poll = {});

  void SetFault(ModelFault fault);
  int runs() const { return runs_.load(); }
  // Starts seen while a run was still in progress (must stay 0: the driver
  // serializes runs; a never-finishing run is abandoned, see Run()).
  int overlapping_starts() const { return overlapping_starts_.load(); }
  int syncs() const { return syncs_->load(); }
  // Simulator errors of streams the model ran (must stay OK).
  absl::Status last_sim_error() const;

 private:
  explicit RegisterModel(RegisterModelOptions options)
      : options_(std::move(options)),
        syncs_(std::make_shared<std::atomic<int>>(0)) {}
  void Loop();
  uint32_t Reg(size_t offset) const;
  void SetReg(size_t offset, uint32_t value);
  void RunStream(uint32_t insn_addr, uint32_t insn_count);
  void ApplyBusError(bool on);

  RegisterModelOptions options_;
  int regs_fd_ = -1, dram_fd_ = -1;
  uint32_t* regs_ = nullptr;  // hardware-side mappings
  uint8_t* dram_ = nullptr;
  size_t regs_bytes_ = 0x4000;
  std::unique_ptr<sim::SimDevice> sim_;
  DeviceBuffer sim_dram_;
  std::atomic<ModelFault> fault_{ModelFault::kNone};
  std::atomic<bool> stop_{false};
  std::atomic<int> runs_{0}, overlapping_starts_{0};
  std::shared_ptr<std::atomic<int>> syncs_;
  mutable absl::Mutex mu_;
  absl::Status sim_error_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace vtaserve::vta::testing

#endif  // VTASERVE_TESTS_VTA_BACKEND_DRIVER_REGISTER_MODEL_H_
