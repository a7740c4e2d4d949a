// The VTA instruction set (vta-isa.md 2-3): plain instruction and micro-op
// structs, and IsaCodec, which encodes them to / decodes them from the
// 128-bit (two little-endian uint64 words) and 32-bit binary forms with the
// exact bit layout of the reference C bitfields for any valid VtaConfig.
// Structs are values; IsaCodec is immutable after Create (thread-safe).
#ifndef VTASERVE_VTA_BACKEND_ISA_ISA_H_
#define VTASERVE_VTA_BACKEND_ISA_ISA_H_

#include <array>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "vta_backend/config.h"
#include "vta_backend/isa/field_layout.h"

namespace vtaserve::vta::isa {

// Bits 0-2 of every instruction. 5-7 are invalid.
enum class Opcode : uint8_t {
  kLoad = 0,
  kStore = 1,
  kGemm = 2,
  kFinish = 3,
  kAlu = 4,
};

// memory_type of LOAD/STORE (bits 7-9). Element sizes (default config):
// UOP 4 B, WGT 256 B, INP 16 B, ACC 64 B, OUT 16 B, ACC_8BIT 16 B.
enum class MemoryType : uint8_t {
  kUop = 0,
  kWgt = 1,
  kInp = 2,
  kAcc = 3,
  kOut = 4,
  kAcc8Bit = 5,  // int8 DRAM -> sign-extended int32 ACC (fsim/intelfocl)
  // Extension, only with VtaConfig::ext_im2col_load (no real board has it):
  // LOAD INP_IM2COL gathers im2col windows from a byte image into INP
  // (load module). dram_base is a byte address. Fields: y_size/x_size =
  // output rows/columns, x_stride = image row bytes, y_pad_0 = KH-1,
  // y_pad_1 = KW-1, x_pad_0 = C-1, x_pad_1 = S-1 (square stride). For output
  // pixel p = r*x_size + x, v[(kh*KW + kw)*C + c] =
  //   byte[dram_base + (r*S + kh)*x_stride + (x*S + kw)*C + c],
  // zero-padded to NB = ceil(KH*KW*C / BLOCK_IN) blocks; block b of pixel p
  // goes to INP[sram_base + b*y_size*x_size + p].
  kInpIm2col = 6,
};
// The standard memory types (kInpIm2col is an extension beyond them).
inline constexpr int kNumMemoryTypes = 6;

// alu_opcode of ALU instructions. MUL exists only on fsim/intelfocl.
enum class AluOpcode : uint8_t {
  kMin = 0,
  kMax = 1,
  kAdd = 2,
  kShr = 3,
  kMul = 4,
};

// Stage ids as used by the runtime (load=1, compute=2, store=3).
enum class Stage : uint8_t { kLoad = 1, kCompute = 2, kStore = 3 };

// Dependency-token flags, bits 3-6 of every instruction (vta-isa.md 5.2).
// "prev"/"next" are relative to the executing module in the order
// load -> compute -> store.
struct DepFlags {
  bool pop_prev = false;   // wait for a token from the previous stage
  bool pop_next = false;   // wait for a token from the next stage
  bool push_prev = false;  // after completion, signal the previous stage
  bool push_next = false;  // after completion, signal the next stage

  bool Any() const { return pop_prev || pop_next || push_prev || push_next; }
  bool operator==(const DepFlags&) const = default;
};

// LOAD/STORE (vta-isa.md 2.2, semantics 4.2-4.3):
//   LOAD: for y in [0, y_pad_0 + y_size + y_pad_1):
//           for x in [0, x_pad_0 + x_size + x_pad_1):
//             SRAM[sram_base + y * xt + x] =
//                 inside ? DRAM[dram_base + (y - y_pad_0) * x_stride
//                               + (x - x_pad_0)] : 0
//   STORE: DRAM[dram_base + r * x_stride + c] = OUT[sram_base + r * x_size + c]
// All addresses are element indices of memory_type; x_size == 0 is a
// dependency-only NOP.
struct MemInsn {
  Opcode opcode = Opcode::kLoad;  // kLoad or kStore
  DepFlags dep;
  MemoryType memory_type = MemoryType::kUop;
  uint32_t sram_base = 0;  // 16 bits: first SRAM element
  uint32_t dram_base = 0;  // 32 bits: DRAM address / element bytes
  uint32_t y_size = 0;     // 16 bits: rows
  uint32_t x_size = 0;     // 16 bits: elements per row (0 = NOP)
  uint32_t x_stride = 0;   // 16 bits: DRAM row pitch in elements
  uint32_t y_pad_0 = 0;    // 4 bits: zero rows before
  uint32_t y_pad_1 = 0;    // 4 bits: zero rows after
  uint32_t x_pad_0 = 0;    // 4 bits: zero columns before
  uint32_t x_pad_1 = 0;    // 4 bits: zero columns after

  bool operator==(const MemInsn&) const = default;
};

// GEMM (vta-isa.md 2.3, 4.4):
//   for i_out < iter_out, i_in < iter_in, u in [uop_bgn, uop_end):
//     a = uop[u].dst + i_out*dst_factor_out + i_in*dst_factor_in
//     s = uop[u].src + i_out*src_factor_out + i_in*src_factor_in
//     w = uop[u].wgt + i_out*wgt_factor_out + i_in*wgt_factor_in
//     ACC[a] = reset ? 0 : ACC[a] + INP[s] x WGT[w]^T   (int32 wrap)
struct GemmInsn {
  DepFlags dep;
  bool reset = false;
  uint32_t uop_bgn = 0;         // LOG_UOP_DEPTH bits
  uint32_t uop_end = 0;         // LOG_UOP_DEPTH + 1 bits, exclusive
  uint32_t iter_out = 0;        // 14 bits, >= 1 to be valid
  uint32_t iter_in = 0;         // 14 bits, >= 1 to be valid
  uint32_t dst_factor_out = 0;  // LOG_ACC_DEPTH bits
  uint32_t dst_factor_in = 0;
  uint32_t src_factor_out = 0;  // LOG_INP_DEPTH bits
  uint32_t src_factor_in = 0;
  uint32_t wgt_factor_out = 0;  // LOG_WGT_DEPTH bits
  uint32_t wgt_factor_in = 0;

  bool operator==(const GemmInsn&) const = default;
};

// ALU (vta-isa.md 2.4, 4.5): loops as GEMM (no wgt), then per lane
//   ACC[d] = op(ACC[d], use_imm ? sext32(imm) : ACC[s])
struct AluInsn {
  DepFlags dep;
  bool reset = false;  // bit 7, ignored by every implementation
  uint32_t uop_bgn = 0;
  uint32_t uop_end = 0;
  uint32_t iter_out = 0;
  uint32_t iter_in = 0;
  uint32_t dst_factor_out = 0;  // LOG_ACC_DEPTH bits
  uint32_t dst_factor_in = 0;
  uint32_t src_factor_out = 0;  // LOG_INP_DEPTH bits (as hw_spec.h)
  uint32_t src_factor_in = 0;
  AluOpcode alu_opcode = AluOpcode::kMin;
  bool use_imm = false;
  int16_t imm = 0;  // sign-extended to 32 bits

  bool operator==(const AluInsn&) const = default;
};

// FINISH: routed to compute; marks the end of the stream.
struct FinishInsn {
  DepFlags dep;

  bool operator==(const FinishInsn&) const = default;
};

using Insn = std::variant<MemInsn, GemmInsn, AluInsn, FinishInsn>;

// One micro-op (vta-isa.md 3): 32-bit word, dst in the low bits.
struct Uop {
  uint32_t dst_idx = 0;  // ACC index (LOG_ACC_DEPTH bits)
  uint32_t src_idx = 0;  // INP (GEMM) or ACC (ALU) index
  uint32_t wgt_idx = 0;  // WGT index (GEMM only)

  bool operator==(const Uop&) const = default;
};

// The binary form: lo = bits 0-63 (lower address), hi = bits 64-127.
struct EncodedInsn {
  uint64_t lo = 0;
  uint64_t hi = 0;

  bool operator==(const EncodedInsn&) const = default;
};

// Opcode / executing stage of a decoded instruction (vta-isa.md 2.6, 6.2):
// LOAD INP/WGT -> load; LOAD of other types, GEMM, ALU, FINISH -> compute;
// STORE -> store.
Opcode OpcodeOf(const Insn& insn);
Stage StageOf(const Insn& insn);
const DepFlags& DepOf(const Insn& insn);
DepFlags& MutableDepOf(Insn& insn);

// Bytes per element of `type` for `config` (4 for UOP).
int ElemBytes(const VtaConfig& config, MemoryType type);

// Writes / reads the 16-byte little-endian DRAM image of an instruction.
void StoreEncodedInsn(const EncodedInsn& insn, uint8_t* dst16);
EncodedInsn LoadEncodedInsn(const uint8_t* src16);

// Human-readable one-liner, e.g. for debug dumps.
std::string ToString(const Insn& insn);
std::string ToString(const Uop& uop);

// Encoder/decoder for one configuration's field widths.
class IsaCodec {
 public:
  // InvalidArgument if `config` fails VtaConfig::Validate().
  static absl::StatusOr<IsaCodec> Create(const VtaConfig& config);

  // InvalidArgument if a field value does not fit its bit width (or, for a
  // MemInsn, its opcode is not kLoad/kStore).
  absl::StatusOr<EncodedInsn> Encode(const Insn& insn) const;
  // InvalidArgument for opcodes 5-7, memory types 6-7 (6 is accepted for
  // LOAD when the config enables ext_im2col_load), ALU opcodes 5-7.
  // Unused (hole) bits are ignored.
  absl::StatusOr<Insn> Decode(const EncodedInsn& bits) const;

  // InvalidArgument if an index does not fit its field.
  absl::StatusOr<uint32_t> EncodeUop(const Uop& uop) const;
  // Never fails: bits above the three fields are ignored.
  Uop DecodeUop(uint32_t word) const {
    return Uop{word & uop_dst_mask_, (word >> uop_src_shift_) & uop_src_mask_,
               (word >> uop_wgt_shift_) & uop_wgt_mask_};
  }

  // Field positions, exposed for tests and dumps (vta-isa.md 2 tables).
  const std::vector<FieldPos>& MemLayout() const { return mem_; }
  const std::vector<FieldPos>& GemmLayout() const { return gemm_; }
  const std::vector<FieldPos>& AluLayout() const { return alu_; }

 private:
  IsaCodec() = default;
  std::vector<FieldPos> mem_, gemm_, alu_;
  uint32_t uop_dst_mask_ = 0, uop_src_mask_ = 0, uop_wgt_mask_ = 0;
  int uop_src_shift_ = 0, uop_wgt_shift_ = 0;
  bool ext_im2col_load_ = false;
};

}  // namespace vtaserve::vta::isa

#endif  // VTASERVE_VTA_BACKEND_ISA_ISA_H_
