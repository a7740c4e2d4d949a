// CommandQueue: builds one VTA instruction stream plus its uop kernels, the
// way tvm vta/runtime/runtime.cc does (vta-isa.md 6) but without globals:
// LOAD/STORE/GEMM/ALU emission, dependency-token push/pop with the NOP
// insertion rules of 6.2, a uop cache over the uop SRAM ring (6.3) backed by
// an append-only staging buffer (every kernel has one stable DRAM location,
// avoiding the eviction caveat of 6.3), and Finalize (6.4). The result is a
// Program; LoadedProgram / RunProgram upload it to a VtaDevice and run it.
//
// Thread-compatible: one thread builds a queue; a finished Program is an
// immutable value.
#ifndef VTASERVE_VTA_BACKEND_RUNTIME_COMMAND_QUEUE_H_
#define VTASERVE_VTA_BACKEND_RUNTIME_COMMAND_QUEUE_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "vta_backend/config.h"
#include "vta_backend/device.h"
#include "vta_backend/isa/isa.h"

namespace vtaserve::vta {

// One loop level of a uop kernel: the GEMM/ALU iter_* and *_factor_* fields.
struct UopLoop {
  uint32_t extent = 1;      // trip count, 1..16383
  uint32_t dst_factor = 0;  // ACC index step
  uint32_t src_factor = 0;  // INP (GEMM) / ACC (ALU) index step
  uint32_t wgt_factor = 0;  // WGT index step (GEMM only)
};

// A micro-kernel: up to two loops (outermost first) around a uop list,
// executed as  for loops: for u in uops: op(u + loop offsets).
// GEMM maps loops[0] to the outer hardware loop; ALU with a single loop uses
// the inner one (vta-isa.md 6.3); the execution order is the same.
struct UopKernel {
  std::vector<isa::Uop> uops;
  std::vector<UopLoop> loops;
};

// Zero padding of a 2D load, each 0..15.
struct Pad2D {
  uint32_t y_before = 0;
  uint32_t y_after = 0;
  uint32_t x_before = 0;
  uint32_t x_after = 0;
};

using KernelId = int;

struct CommandQueueOptions {
  // Reject GEMM/ALU kernels that read an ACC element written by one of the
  // previous two uop executions (the pipeline hazard of vta-isa.md 4.7).
  // Default: true.
  bool check_hazards = true;
};

// A finished stream: decoded instructions (the last one FINISH) and the uop
// staging words. LOAD UOP instructions listed in uop_load_insns hold a
// dram_base relative to the start of the staging buffer; Encode relocates
// them.
struct Program {
  std::vector<isa::Insn> insns;
  std::vector<uint32_t> uop_words;
  std::vector<size_t> uop_load_insns;

  // The 16-byte little-endian image of every instruction, with uop loads
  // pointing at a staging buffer at `uop_phys_addr` (4-byte aligned).
  absl::StatusOr<std::vector<uint8_t>> Encode(const isa::IsaCodec& codec,
                                              uint32_t uop_phys_addr) const;
  // Human-readable listing, one instruction per line.
  std::string Dump() const;
};

class CommandQueue {
 public:
  // InvalidArgument if `config` is invalid.
  static absl::StatusOr<CommandQueue> Create(const VtaConfig& config,
                                             CommandQueueOptions options = {});

  const VtaConfig& config() const { return config_; }
  const isa::IsaCodec& codec() const { return codec_; }

  // DRAM element address of element `elem_offset` of `type` in `buffer`
  // (phys / element bytes + offset). InvalidArgument if the address is not
  // element aligned or overflows 32 bits. Does not check the buffer size.
  static absl::StatusOr<uint32_t> DramElemAddr(const VtaConfig& config,
                                               const DeviceBuffer& buffer,
                                               isa::MemoryType type,
                                               uint64_t elem_offset);

  // Registers a kernel and stages its uops (once). InvalidArgument for an
  // empty kernel, > 2 loops, zero or too large extents, indices or factors
  // that do not fit their fields, or (with check_hazards) a hazardous one;
  // ResourceExhausted if it is larger than the uop buffer.
  absl::StatusOr<KernelId> AddKernel(UopKernel kernel);

  // LOAD of y_size rows of x_size elements (DRAM row pitch x_stride) into a
  // dense SRAM block at sram_base, with zero padding. `type` is INP or WGT
  // (load stage) or ACC / ACC_8BIT (compute stage). InvalidArgument if a
  // field does not fit or the SRAM block exceeds the buffer.
  absl::Status Load2D(isa::MemoryType type, uint32_t sram_base,
                      uint32_t dram_elem_addr, uint32_t y_size, uint32_t x_size,
                      uint32_t x_stride, Pad2D pad = {});

  // LOAD INP_IM2COL (extension, needs config.ext_im2col_load; see
  // isa::MemoryType::kInpIm2col): gathers the kh x kw x channels windows of
  // out_rows x out_cols output pixels (stride `stride`) from the byte image
  // at dram_byte_addr (row pitch row_bytes) into INP blocks at sram_base
  // (load stage). FailedPrecondition without the extension, InvalidArgument
  // if a field does not fit (kh, kw, channels, stride in 1..16).
  absl::Status LoadIm2col(uint32_t sram_base, uint32_t dram_byte_addr,
                          uint32_t out_rows, uint32_t out_cols,
                          uint32_t row_bytes, int kh, int kw, int channels,
                          int stride);

  // STORE of y_size rows of x_size OUT elements read contiguously from
  // sram_base to DRAM rows of pitch x_stride (store stage).
  absl::Status Store2D(uint32_t sram_base, uint32_t dram_elem_addr,
                       uint32_t y_size, uint32_t x_size, uint32_t x_stride);

  // GEMM over kernel `id` (LOAD UOP emitted first unless resident).
  absl::Status Gemm(KernelId id, bool reset);
  // ALU over kernel `id`. MUL needs config.has_mul.
  absl::Status Alu(KernelId id, isa::AluOpcode op, bool use_imm, int16_t imm);

  // Dependency tokens between stages (VTADepPush / VTADepPop, 6.2): the
  // last instruction of `from` (or a NOP) pushes; the next instruction of
  // `to` pops. InvalidArgument for from == to or load <-> store.
  absl::Status DepPush(isa::Stage from, isa::Stage to);
  absl::Status DepPop(isa::Stage from, isa::Stage to);

  // Number of instructions emitted so far.
  size_t size() const { return insns_.size(); }

  // Commits pending pops, appends the final synchronization of 6.4 (the last
  // load and last store each signal a final compute NOP) and FINISH, and
  // returns the program; the queue is reset (uop cache empty, kernels kept
  // staged). InvalidArgument if pushes and pops of some queue do not balance
  // (leftover tokens would leak into the next run).
  absl::StatusOr<Program> Finalize();

 private:
  struct StagedKernel {
    UopKernel kernel;
    uint32_t staging_offset = 0;     // in uops
    bool hazard = false;             // dst RAW within 2 executions
    bool alu_tensor_hazard = false;  // also src reads a recent dst
    int iter_out = 1, iter_in = 1;   // GEMM mapping
    UopLoop out, in;
  };
  struct Resident {
    KernelId id;
    uint32_t begin, end;
  };

  CommandQueue(const VtaConfig& config, isa::IsaCodec codec,
               CommandQueueOptions options)
      : config_(config), codec_(std::move(codec)), options_(options) {}

  // Appends `insn`, first absorbing the pending pops of its stage.
  void Emit(isa::Insn insn);
  void EmitNop(isa::Stage stage, isa::DepFlags dep);
  void CommitPendingPop(isa::Stage stage);
  // Makes kernel `id` resident, emitting LOAD UOP if needed; returns its
  // [begin, end) range in uop SRAM.
  absl::StatusOr<std::pair<uint32_t, uint32_t>> EnsureResident(KernelId id);

  VtaConfig config_;
  isa::IsaCodec codec_;
  CommandQueueOptions options_;
  std::vector<isa::Insn> insns_;
  std::vector<size_t> uop_load_insns_;
  std::vector<StagedKernel> kernels_;
  std::vector<uint32_t> staging_;
  std::vector<Resident> resident_;  // in ring placement order
  uint32_t ring_next_ = 0;
  bool pending_pop_prev_[4] = {false, false, false, false};
  bool pending_pop_next_[4] = {false, false, false, false};
};

// A Program uploaded to a device: the instruction and uop buffers stay
// allocated (and are freed by the destructor) so it can run many times.
// Holds a pointer to the device, which must outlive it. Move-only.
class LoadedProgram {
 public:
  static absl::StatusOr<LoadedProgram> Upload(VtaDevice& device,
                                              const VtaConfig& config,
                                              const Program& program);
  LoadedProgram(LoadedProgram&& other) noexcept;
  LoadedProgram& operator=(LoadedProgram&& other) noexcept;
  LoadedProgram(const LoadedProgram&) = delete;
  LoadedProgram& operator=(const LoadedProgram&) = delete;
  ~LoadedProgram();

  // VtaDevice::Run over the uploaded instructions.
  absl::StatusOr<RunStats> Run(absl::Duration timeout) const;
  uint32_t insn_count() const { return insn_count_; }

 private:
  LoadedProgram() = default;
  void Release();

  VtaDevice* device_ = nullptr;
  DeviceBuffer insn_buffer_;
  DeviceBuffer uop_buffer_;
  uint32_t insn_count_ = 0;
};

// Upload + Run + free in one call.
absl::StatusOr<RunStats> RunProgram(VtaDevice& device, const VtaConfig& config,
                                    const Program& program,
                                    absl::Duration timeout);

}  // namespace vtaserve::vta

#endif  // VTASERVE_VTA_BACKEND_RUNTIME_COMMAND_QUEUE_H_
