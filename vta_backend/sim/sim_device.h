// SimDevice: an ISA-level VTA simulator implementing VtaDevice.
//
// Functional model: bit-exact to vta-isa.md 4, hardware flavour: the OUT
// buffer is modelled explicitly (4.6): GEMM (non-reset) and ALU writes make
// OUT[i] = low8(ACC[i]); LOAD ACC/ACC_8BIT and reset GEMMs leave OUT
// unchanged (Chisel behaviour); STORE reads OUT. SHR shifts by the low 5
// bits of the operand taken as signed (-16..15; negative = left shift), as
// the HLS (Pynq) ALU does; inside -16..15 this equals fsim. SRAM contents
// persist across runs, as on the hardware; dependency queues start empty
// every run (leftover tokens are reported in SimStats).
//
// Streams are decoded and statically validated before anything executes
// (opcodes, module routing, dependency flags, SRAM/DRAM ranges, loop counts,
// FINISH last); uop-dependent index ranges are checked per instruction
// before it runs; a stream whose modules all block before FINISH is reported
// as a deadlock. All such errors are InvalidArgument.
//
// Timing model: the load, compute and store modules run concurrently, each
// in order, synchronized by the four token queues; per-instruction costs
// come from VtaConfig::timing (see config.h). Run's timeout is compared with
// modeled device time before each instruction starts (DeadlineExceeded).
//
// Thread-safe: every public method takes an internal mutex. With
// SimOptions::runner, Run may also use the runner's threads for GEMMs.
#ifndef VTASERVE_VTA_BACKEND_SIM_SIM_DEVICE_H_
#define VTASERVE_VTA_BACKEND_SIM_SIM_DEVICE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "engine/parallel_runner.h"
#include "vta_backend/config.h"
#include "vta_backend/device.h"
#include "vta_backend/isa/isa.h"
#include "vta_backend/sim/dram.h"
#include "vta_backend/sim/gemm_kernels.h"

namespace vtaserve::vta::sim {

struct SimOptions {
  // Simulated DRAM address space. Default: 1 GiB.
  uint64_t memory_bytes = uint64_t{1} << 30;
  // Largest single allocation. Default: 256 MiB.
  uint64_t max_alloc_bytes = uint64_t{256} << 20;
  // Use the portable GEMM and ALU loops even when AVX2 is available.
  // Default: false.
  bool force_portable_kernels = false;
  // Splits each large GEMM instruction over the runner's threads by
  // disjoint ACC destination ranges (same result bit for bit: a GEMM only
  // adds into ACC, and no two threads write one element). Splitting pauses
  // by itself while the other threads keep arriving late (busy cores).
  // Modeled cycles never depend on it. Default: null (the calling thread
  // does everything).
  std::shared_ptr<engine::ParallelRunner> runner;
  // GEMM instructions with fewer uop executions than this run on the
  // calling thread (the split's hand-off costs more than it saves).
  // Default: 4096 (about 20 us of work for the AVX2 kernel on Zen 3; the
  // hand-off through a oneTBB arena costs a few us).
  uint64_t parallel_min_uops = 4096;
};

class SimDevice : public VtaDevice {
 public:
  // InvalidArgument if `config` is invalid.
  static absl::StatusOr<std::unique_ptr<SimDevice>> Create(
      const VtaConfig& config, SimOptions options = {});

  absl::StatusOr<DeviceBuffer> AllocBuffer(size_t bytes) override;
  absl::Status FreeBuffer(const DeviceBuffer& buffer) override;
  absl::Status CopyToDevice(const DeviceBuffer& buffer, size_t offset,
                            absl::Span<const uint8_t> src) override;
  absl::Status CopyFromDevice(const DeviceBuffer& buffer, size_t offset,
                              absl::Span<uint8_t> dst) override;
  absl::StatusOr<RunStats> Run(uint32_t insn_phys_addr, uint32_t insn_count,
                               absl::Duration timeout) override;

  // Sum of the stats of every successful run so far.
  SimStats CumulativeStats() const;
  // The GEMM kernel in use, e.g. "avx2_blocked_1x16x16" or "portable".
  const char* KernelName() const { return kernel_name_; }
  const VtaConfig& config() const { return config_; }

 private:
  struct Op;  // a validated instruction
  struct Sram {
    std::vector<int16_t> inp;         // InpDepth x InpLanes
    std::vector<int8_t> wgt;          // WgtDepth x WgtLanes, [k/2][o][2]
    std::vector<int32_t> acc;         // AccDepth x AccLanes
    std::vector<int8_t> out;          // AccDepth x AccLanes (detached values)
    std::vector<uint8_t> out_tracks;  // 1: OUT[i] == low8(ACC[i])
    std::vector<isa::Uop> uops;       // UopDepth
  };

  SimDevice(const VtaConfig& config, isa::IsaCodec codec, SimOptions options);

  absl::StatusOr<std::vector<Op>> DecodeAndValidate(uint32_t insn_phys_addr,
                                                    uint32_t insn_count)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ValidateMem(const isa::MemInsn& m, size_t index, Op& op)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Functional execution of one instruction; InvalidArgument for an
  // out-of-range uop-derived index.
  absl::Status Execute(const Op& op, SimStats& stats)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ExecLoad(const Op& op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The ext_im2col_load extension (isa::MemoryType::kInpIm2col).
  absl::Status ValidateIm2colLoad(const isa::MemInsn& m, size_t index, Op& op)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExecIm2colLoad(const Op& op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExecStore(const Op& op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ExecGemm(const isa::GemmInsn& g)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ExecAlu(const isa::AluInsn& a)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes OUT[i] hold its current value independently of ACC[i].
  void DetachOut(uint32_t elem) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const VtaConfig config_;
  const isa::IsaCodec codec_;
  const SimOptions options_;
  GemmFn gemm_fn_ = nullptr;
  // ALU loop nest over ACC (AVX2 copy when the lanes suit it).
  void (*alu_fn_)(const isa::AluInsn& a, const isa::Uop* uops, int32_t* acc,
                  uint8_t* tracks, int lanes) = nullptr;
  const char* kernel_name_ = "";

  mutable absl::Mutex mu_;
  Dram dram_ ABSL_GUARDED_BY(mu_);
  Sram sram_ ABSL_GUARDED_BY(mu_);
  SimStats cumulative_ ABSL_GUARDED_BY(mu_);
  // GEMM splitting adapts to busy cores (see ExecGemm).
  static constexpr int kSplitBackoffGemms = 32;
  int split_misses_ ABSL_GUARDED_BY(mu_) = 0;
  int split_backoff_ ABSL_GUARDED_BY(mu_) = 0;
  int split_backoff_length_ ABSL_GUARDED_BY(mu_) = kSplitBackoffGemms;
  // Moving average of ns per uop execution of GEMMs that could have been
  // split but ran on one thread (during back-offs); 0: none yet.
  double ns_per_uop_one_thread_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vtaserve::vta::sim

#endif  // VTASERVE_VTA_BACKEND_SIM_SIM_DEVICE_H_
