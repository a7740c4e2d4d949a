// VtaDevice: the driver interface of a VTA accelerator, shaped like
// tvm-vta include/vta/driver.h (VTAMemAlloc / VTAMemCopy* / VTADeviceRun) but
// typed and returning absl::Status. The simulator (vta_backend/sim)
// implements it; an FPGA driver would too. SimStats holds the profiling
// counters a device reports per run (no prometheus here).
//
// Thread-safety: implementations must be safe to call from several threads;
// the simulator serializes all calls with an internal mutex. A Run sees the
// effects of every Copy that returned before it started.
#ifndef VTASERVE_VTA_BACKEND_DEVICE_H_
#define VTASERVE_VTA_BACKEND_DEVICE_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace vtaserve::vta {

// A physically contiguous DRAM buffer. `phys_addr` is what instructions
// address (dram_base = phys_addr / element bytes + element offset): 4 KiB
// aligned, never 0 (vta-isa.md 7.2). A plain handle: copying it does not
// copy or own the memory; FreeBuffer releases it.
struct DeviceBuffer {
  uint32_t phys_addr = 0;
  size_t size = 0;  // bytes requested

  bool valid() const { return phys_addr != 0; }
};

// Profiling counters of one run (or, summed with +=, of many).
struct SimStats {
  // ---- fsim profiler counters (vta-isa.md 10.1, same semantics). ----
  uint64_t inp_load_nbytes = 0;   // x_size*y_size*INP bytes, no padding
  uint64_t wgt_load_nbytes = 0;   // x_size*y_size*WGT bytes
  uint64_t acc_load_nbytes = 0;   // x_size*y_size*ACC bytes (also ACC_8BIT)
  uint64_t uop_load_nbytes = 0;   // x_size*y_size*4
  uint64_t out_store_nbytes = 0;  // x_size*y_size*OUT bytes
  uint64_t gemm_counter = 0;      // uop executions of non-reset GEMMs
  uint64_t alu_counter = 0;       // uop executions of ALU instructions

  // ---- Cycle model (see VtaTiming in config.h). ----
  // Cycles from launch until FINISH and every other instruction completed.
  uint64_t cycles_total = 0;
  // Cycles each module spent executing instructions.
  uint64_t load_busy_cycles = 0;
  uint64_t compute_busy_cycles = 0;
  uint64_t store_busy_cycles = 0;
  // Cycles each module was idle with an instruction ready to issue but
  // waiting for a dependency token (or queue space).
  uint64_t load_stall_cycles = 0;
  uint64_t compute_stall_cycles = 0;
  uint64_t store_stall_cycles = 0;
  // Cycles of GEMM (incl. reset) and ALU instructions, part of compute busy.
  uint64_t gemm_cycles = 0;
  uint64_t alu_cycles = 0;
  // DRAM traffic in bytes, indexed by isa::MemoryType (UOP, WGT, INP, ACC,
  // OUT, ACC_8BIT): actual bytes moved over the bus (ACC_8BIT: 1 B/lane).
  std::array<uint64_t, 6> dram_bytes_by_type{};
  uint64_t insn_fetch_bytes = 0;  // 16 per instruction

  // ---- Instruction counts. ----
  uint64_t insn_count = 0;
  uint64_t load_count = 0;   // LOAD with x_size > 0 (any memory type)
  uint64_t store_count = 0;  // STORE with x_size > 0
  uint64_t gemm_count = 0;   // GEMM instructions (incl. reset)
  uint64_t alu_count = 0;
  uint64_t nop_count = 0;  // LOAD/STORE with x_size == 0
  uint64_t finish_count = 0;
  // Tokens pushed but never popped at the end of the run (a well-formed
  // stream leaves none; hardware FIFOs would keep them for the next run).
  uint64_t leftover_tokens = 0;

  SimStats& operator+=(const SimStats& o);
};

// What Run reports.
struct RunStats {
  // Modeled (or, on hardware, measured) device cycles and seconds.
  uint64_t cycles = 0;
  double device_seconds = 0.0;
  // Detailed counters; simulators fill all, hardware drivers what they can.
  SimStats sim;
};

class VtaDevice {
 public:
  virtual ~VtaDevice() = default;

  // Allocates a physically contiguous, zero-filled buffer of `bytes` > 0.
  // ResourceExhausted when device memory is exhausted, InvalidArgument for
  // 0 bytes or more than the device's transfer limit.
  virtual absl::StatusOr<DeviceBuffer> AllocBuffer(size_t bytes) = 0;

  // Releases `buffer`. InvalidArgument if it is not a live allocation.
  virtual absl::Status FreeBuffer(const DeviceBuffer& buffer) = 0;

  // Copies host bytes into `buffer` at `offset`. InvalidArgument if
  // [offset, offset + src.size()) is outside the buffer or it is not live.
  virtual absl::Status CopyToDevice(const DeviceBuffer& buffer, size_t offset,
                                    absl::Span<const uint8_t> src) = 0;

  // Copies bytes from `buffer` at `offset` into `dst` (same checks).
  virtual absl::Status CopyFromDevice(const DeviceBuffer& buffer, size_t offset,
                                      absl::Span<uint8_t> dst) = 0;

  // Executes `insn_count` instructions stored at `insn_phys_addr` (16 bytes
  // each) and returns when FINISH completed (VTADeviceRun). Errors:
  // DeadlineExceeded if the device did not finish within `timeout` of
  // device time (VTADeviceRun returning 1); InvalidArgument for a malformed
  // stream (bad opcode, out-of-range address, deadlock...), detected before
  // or during execution, never by crashing or hanging; Internal for a
  // device fault. On error, device memory may be partially updated.
  virtual absl::StatusOr<RunStats> Run(uint32_t insn_phys_addr,
                                       uint32_t insn_count,
                                       absl::Duration timeout) = 0;
};

}  // namespace vtaserve::vta

#endif  // VTASERVE_VTA_BACKEND_DEVICE_H_
