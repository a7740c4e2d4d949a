// VtaConfig: one VTA hardware configuration as a runtime value (no -D
// macros): the vta_config.json parameters, per-target constants (clock, bus
// width), capability flags and the simulator timing constants, with the
// derived sizes and ISA field widths of vta-isa.md 1.3 and 2 as methods.
// Plain value type; thread-compatible.
#ifndef VTASERVE_VTA_BACKEND_CONFIG_H_
#define VTASERVE_VTA_BACKEND_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vtaserve::vta {

// Timing constants of the simulator's cycle model (vta_backend/sim). Sources
// are sections of the VTA ISA specification cited as "vta-isa.md N.M" (not in
// this repository; docs/vta-facts.md restates what the code relies on); where
// the public designs disagree the comment names the choice. All values are
// cycles of the VTA clock.
struct VtaTiming {
  // GEMM issues one uop execution per cycle: Chisel TensorGemmPipelinedSplit
  // (10.3) and the HLS GEMM loop at II = 1 (10.4).
  int gemm_cycles_per_uop = 1;
  // Fixed pipeline fill + drain per GEMM instruction: 10.3 says "a few
  // cycles + drain"; we take 8. (vta_cost.py, 10.5, uses 80 on intelfocl.)
  int gemm_latency = 8;
  // ALU with an immediate: 1 uop/cycle (Chisel TensorAluPipelined, 10.3).
  // Note HLS runs its ALU loop at II = 2 in both cases (10.4).
  int alu_imm_cycles_per_uop = 1;
  // ALU with a tensor source: 2 cycles/uop, one ACC read port (10.3).
  int alu_tensor_cycles_per_uop = 2;
  // ALU pipeline latency, ~4 cycles (10.3).
  int alu_latency = 4;
  // Fixed cost of each LOAD/STORE that moves data (request issue and DRAM
  // latency before the first beat): the constant term of vta_cost.py (10.5,
  // "E + 150"). tsim models no DRAM latency (10.2), so this is the
  // pessimistic published figure.
  int mem_request_latency = 150;
  // Zero-padding elements cost SRAM write cycles only (no DRAM beats): one
  // cycle per padded element (our reading of 10.3/10.4: the load module
  // writes one SRAM element per cycle).
  int pad_cycles_per_element = 1;
  // Dependency-only NOP (x_size == 0) or FINISH: one issue cycle (our choice;
  // vta_cost.py, 10.5, charges 38-50 cycles on intelfocl).
  int nop_cycles = 1;
  // Latency before the first instruction arrives from DRAM (fetch module);
  // instructions then stream at 16 bytes / bus width beats each (10.3:
  // "fetched as two 64-bit beats each").
  int fetch_latency = 150;
  // The load, compute (uop/acc loads) and store modules share one DRAM port:
  // Chisel has one AXI master for all clients (10.3). When false each module
  // has its own port (HLS uses separate AXI masters, 10.4).
  bool shared_dram_bus = true;
};

struct VtaConfig {
  // TARGET of vta_config.json: sim, tsim, pynq, ultra96, zcu104, de10nano,
  // intelfocl. Default: "pynq".
  std::string target = "pynq";
  // HW_VER. Default: "0.0.2".
  std::string hw_ver = "0.0.2";
  // log2 bits of input / weight / accumulator scalars. Only 3/3/5 (int8,
  // int8, int32) are supported. LOG_OUT_WIDTH always equals log_inp_width.
  int log_inp_width = 3;
  int log_wgt_width = 3;
  int log_acc_width = 5;
  // log2 of the GEMM intrinsic shape: BATCH x BLOCK_IN -> BATCH x BLOCK_OUT.
  // Default: 0, 4, 4 (1x16x16).
  int log_batch = 0;
  int log_block_in = 4;
  int log_block_out = 4;
  // log2 bytes of each on-chip buffer. Defaults: 15, 15, 18, 17.
  int log_uop_buff_size = 15;
  int log_inp_buff_size = 15;
  int log_wgt_buff_size = 18;
  int log_acc_buff_size = 17;
  // log2 bits of the AXI data bus (6 = 64 bit on Pynq/DE10, 7 on Ultra96).
  int log_bus_width = 6;
  // Accelerator clock in MHz (pkg_config.py fpga_freq, vta-isa.md 1.2).
  double clock_mhz = 100.0;
  // ALU MUL is implemented (fsim and intelfocl only, vta-isa.md 4.5).
  bool has_mul = false;
  // LOAD ACC_8BIT (memory type 5) is implemented (fsim/intelfocl, 4.2).
  bool has_acc_8bit_load = false;
  // Simulator-only extension LOAD INP_IM2COL (isa::MemoryType::kInpIm2col):
  // the load module gathers im2col windows from a byte image, so the
  // vta_im2col first-conv strategy needs no host-side window packing.
  // Timing: the bus moves each source row segment once, and the gather
  // writes one INP element per cycle alongside (the slower of the two
  // counts). Off by default and in every real-board preset.
  bool ext_im2col_load = false;
  // Capacity of each dependency-token queue; a push into a full queue
  // stalls. HLS: 1024-deep FIFOs; Chisel: 8-bit semaphores (255) (5.2).
  int dep_queue_depth = 1024;
  // Simulator cycle-model constants.
  VtaTiming timing;

  // ---- Derived values (vta-isa.md 1.3). ----
  int Batch() const { return 1 << log_batch; }
  int BlockIn() const { return 1 << log_block_in; }
  int BlockOut() const { return 1 << log_block_out; }
  int LogOutWidth() const { return log_inp_width; }
  // Element sizes in bytes (one SRAM word of each buffer).
  int InpElemBytes() const {
    return (Batch() * BlockIn() << log_inp_width) / 8;
  }
  int WgtElemBytes() const {
    return (BlockOut() * BlockIn() << log_wgt_width) / 8;
  }
  int AccElemBytes() const {
    return (Batch() * BlockOut() << log_acc_width) / 8;
  }
  int OutElemBytes() const {
    return (Batch() * BlockOut() << LogOutWidth()) / 8;
  }
  static constexpr int kUopElemBytes = 4;
  static constexpr int kInsnBytes = 16;
  // Lanes (scalars) per element.
  int InpLanes() const { return Batch() * BlockIn(); }
  int WgtLanes() const { return BlockOut() * BlockIn(); }
  int AccLanes() const { return Batch() * BlockOut(); }
  // log2 of buffer depths (in elements); these are also the ISA index
  // widths (uop_end is one bit wider than uop_bgn).
  int LogUopDepth() const { return log_uop_buff_size - 2; }
  int LogInpDepth() const {
    return log_inp_buff_size - log_batch - log_block_in - log_inp_width + 3;
  }
  int LogWgtDepth() const {
    return log_wgt_buff_size - log_block_out - log_block_in - log_wgt_width + 3;
  }
  int LogAccDepth() const {
    return log_acc_buff_size - log_batch - log_block_out - log_acc_width + 3;
  }
  // The OUT buffer shares the ACC index space (vta-isa.md 1.3).
  int LogOutDepth() const { return LogAccDepth(); }
  uint32_t UopDepth() const { return uint32_t{1} << LogUopDepth(); }
  uint32_t InpDepth() const { return uint32_t{1} << LogInpDepth(); }
  uint32_t WgtDepth() const { return uint32_t{1} << LogWgtDepth(); }
  uint32_t AccDepth() const { return uint32_t{1} << LogAccDepth(); }
  uint32_t OutDepth() const { return AccDepth(); }
  // Width of the uop src_idx field: an INP index for GEMM, an ACC index for
  // ALU, hence max(LOG_ACC_DEPTH, LOG_INP_DEPTH) (vta-isa.md 3).
  int UopSrcBits() const {
    return LogAccDepth() > LogInpDepth() ? LogAccDepth() : LogInpDepth();
  }
  // GEMM/ALU src_factor width: LOG_INP_BUFF_DEPTH in both (hw_spec.h).
  int SrcFactorBits() const { return LogInpDepth(); }
  int BusBytes() const { return (1 << log_bus_width) / 8; }
  // "{BATCH}x{BLOCK}_i{INP}w{WGT}a{ACC}_{LOGUOP}_{LOGINP}_{LOGWGT}_{LOGACC}",
  // e.g. "1x16_i8w8a32_15_15_18_17" (vta-isa.md 1.2).
  std::string BitstreamName() const;

  // OK iff every value is supported and the ISA fields fit their encodings:
  // index widths fit the 16-bit SRAM fields and the 32-bit uop, GEMM/ALU
  // fields fit 128 bits, element sizes <= 4 KiB, bus 8..1024 bits, etc.
  // InvalidArgument with the offending key otherwise.
  absl::Status Validate() const;
};

// A validated preset: "pynq" (the default, 1x16x16, 100 MHz, 64-bit bus),
// "1x32x32" (LOG_BLOCK 5, doubled buffers, 100 MHz, 64-bit), "ultra96"
// (333 MHz, 128-bit), "zcu104" (same as ultra96), "de10nano" (100 MHz,
// 64-bit, Chisel: 255-token queues), "fsim"/"sim" (has_mul and ACC_8BIT),
// "tsim", "intelfocl". NotFound for other names.
absl::StatusOr<VtaConfig> VtaConfigPreset(absl::string_view name);

// Parses vta_config.json text. Keys absent from the file keep the values of
// the preset named by its TARGET (pynq when absent). Unknown keys, type
// errors and invalid values -> InvalidArgument.
absl::StatusOr<VtaConfig> ParseVtaConfigJson(absl::string_view json);

// `path_or_preset` names a preset (see VtaConfigPreset) or a JSON file.
// NotFound if it is neither a preset nor a readable file.
absl::StatusOr<VtaConfig> LoadVtaConfig(absl::string_view path_or_preset);

}  // namespace vtaserve::vta

#endif  // VTASERVE_VTA_BACKEND_CONFIG_H_
