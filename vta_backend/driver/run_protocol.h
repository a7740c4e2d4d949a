// How one instruction stream is started and awaited on a VTA design's
// registers (one protocol per hardware design). Every wait is bounded by a
// wall-clock deadline (DeadlineExceeded), never an endless spin. A control
// register reading all ones (an AXI slave/decode error, or a block that is
// not there: no bitstream loaded) is reported as Internal "bus error".
#ifndef VTASERVE_VTA_BACKEND_DRIVER_RUN_PROTOCOL_H_
#define VTASERVE_VTA_BACKEND_DRIVER_RUN_PROTOCOL_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "vta_backend/driver/register_window.h"

namespace vtaserve::vta::driver {

struct PollOptions {
  // Wait after starting before the first poll. The HLS compute block's done
  // register still reads the previous run's 1 for a moment after a start
  // (the race tvm-vta fixed with a 1 us wait). Default: 10 us.
  absl::Duration settle = absl::Microseconds(10);
  // Pause between polls, doubling from `poll_min` to `poll_max`.
  absl::Duration poll_min = absl::Microseconds(2);
  absl::Duration poll_max = absl::Microseconds(500);
};

class RunProtocol {
 public:
  virtual ~RunProtocol() = default;
  // Bytes of register window the protocol touches.
  virtual size_t window_bytes() const = 0;
  // Runs `insn_count` instructions at device address `insn_addr`; returns
  // when the design reports done, DeadlineExceeded after `timeout`,
  // Internal on a bus error.
  virtual absl::Status Run(RegisterWindow& regs, uint32_t insn_addr,
                           uint32_t insn_count, absl::Duration timeout) = 0;
  virtual const char* name() const = 0;
};

// The Xilinx HLS design (Pynq, Ultra96, ZCU104): fetch, load, compute and
// store blocks 0x1000 apart from the window's start, each with the HLS
// control register at 0x00 (ap_start bit 0, ap_done 1, ap_idle 2,
// auto-restart bit 7). Fetch: insn count at 0x10, insn address at 0x18;
// compute: done at 0x18. A run writes count and address, starts fetch with
// 0x1 and load/compute/store with 0x81, waits `settle`, then polls until
// compute done == 1 and the fetch block is idle again (a done that is still
// set from the previous run while fetch is busy is not taken for this run's).
std::unique_ptr<RunProtocol> MakeHlsProtocol(PollOptions poll = {});

// The Chisel design of DE10-Nano: one block, 0x04 = 0, 0x08 = insn count,
// 0x0C = insn address, 0x00 = 1 launches; done is bit 1 of 0x00.
std::unique_ptr<RunProtocol> MakeChiselProtocol(PollOptions poll = {});

// Register layout constants (shared with the tests' register model).
namespace hls {
inline constexpr size_t kFetch = 0x0000, kLoad = 0x1000, kCompute = 0x2000,
                        kStore = 0x3000, kBlockBytes = 0x1000;
inline constexpr size_t kCtrl = 0x00;
inline constexpr uint32_t kApStart = 1u << 0, kApDone = 1u << 1,
                          kApIdle = 1u << 2, kAutoRestart = 1u << 7;
inline constexpr size_t kFetchInsnCount = 0x10, kFetchInsnAddr = 0x18,
                        kComputeDone = 0x18;
}  // namespace hls
namespace chisel {
inline constexpr size_t kCtrl = 0x00, kEvent = 0x04, kInsnCount = 0x08,
                        kInsnAddr = 0x0C, kBlockBytes = 0x1000;
inline constexpr uint32_t kLaunch = 1u << 0, kDone = 1u << 1;
}  // namespace chisel

}  // namespace vtaserve::vta::driver

#endif  // VTASERVE_VTA_BACKEND_DRIVER_RUN_PROTOCOL_H_
