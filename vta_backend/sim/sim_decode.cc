// Decoding and static validation of an instruction stream.
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "engine/common/status_macros.h"
#include "vta_backend/sim/sim_device.h"
#include "vta_backend/sim/sim_internal.h"

namespace vtaserve::vta::sim {

absl::Status SimDevice::ValidateMem(const MemInsn& m, size_t index, Op& op) {
  const DepFlags& d = m.dep;
  const uint64_t xt = uint64_t{m.x_pad_0} + m.x_size + m.x_pad_1;
  const uint64_t yt = uint64_t{m.y_pad_0} + m.y_size + m.y_pad_1;
  uint64_t depth = 0;
  if (m.opcode == Opcode::kStore) {
    op.module = kStoreModule;
    if (d.pop_next || d.push_next) {
      return Bad(index, "STORE may only use pop_prev/push_prev dependencies");
    }
    if (m.x_size == 0) {
      op.nop = true;
      return absl::OkStatus();
    }
    if (m.memory_type != MemoryType::kOut) {
      return Bad(index, "STORE must use memory type OUT");
    }
    if ((m.y_pad_0 | m.y_pad_1 | m.x_pad_0 | m.x_pad_1) != 0) {
      return Bad(index, "STORE cannot be padded");
    }
    depth = config_.OutDepth();
    if (uint64_t{m.sram_base} + uint64_t{m.x_size} * m.y_size > depth) {
      return Bad(index, absl::StrCat("STORE SRAM range [", m.sram_base, ", ",
                                     uint64_t{m.sram_base} +
                                         uint64_t{m.x_size} * m.y_size,
                                     ") exceeds OUT depth ", depth));
    }
  } else {
    switch (m.memory_type) {
      case MemoryType::kInp:
        depth = config_.InpDepth();
        op.module = kLoadModule;
        break;
      case MemoryType::kWgt:
        depth = config_.WgtDepth();
        op.module = kLoadModule;
        break;
      case MemoryType::kUop:
        depth = config_.UopDepth();
        op.module = kComputeModule;
        break;
      case MemoryType::kAcc:
        depth = config_.AccDepth();
        op.module = kComputeModule;
        break;
      case MemoryType::kAcc8Bit:
        if (!config_.has_acc_8bit_load) {
          return Bad(index, "LOAD ACC_8BIT is not supported by this config");
        }
        depth = config_.AccDepth();
        op.module = kComputeModule;
        break;
      case MemoryType::kOut:
        return Bad(index,
                   "LOAD with memory type OUT is not executed by any module");
      case MemoryType::kInpIm2col:
        op.module = kLoadModule;
        if (d.pop_prev || d.push_prev) {
          return Bad(
              index,
              "load-module LOAD may only use pop_next/push_next dependencies");
        }
        return ValidateIm2colLoad(m, index, op);
    }
    if (op.module == kLoadModule && (d.pop_prev || d.push_prev)) {
      return Bad(
          index,
          "load-module LOAD may only use pop_next/push_next dependencies");
    }
    if (m.x_size == 0) {
      op.nop = true;
      return absl::OkStatus();
    }
    if (m.memory_type == MemoryType::kUop &&
        (m.y_size != 1 ||
         (m.y_pad_0 | m.y_pad_1 | m.x_pad_0 | m.x_pad_1) != 0)) {
      return Bad(index, "LOAD UOP must have y_size 1 and no padding");
    }
    if (m.memory_type == MemoryType::kWgt &&
        (m.y_pad_0 | m.y_pad_1 | m.x_pad_0 | m.x_pad_1) != 0) {
      return Bad(index, "LOAD WGT cannot be padded (HLS ignores WGT padding)");
    }
    if (uint64_t{m.sram_base} + xt * yt > depth) {
      return Bad(index, absl::StrCat("LOAD SRAM range [", m.sram_base, ", ",
                                     uint64_t{m.sram_base} + xt * yt,
                                     ") exceeds buffer depth ", depth));
    }
    op.pad_elems = xt * yt - uint64_t{m.x_size} * m.y_size;
  }
  if (m.y_size == 0) return absl::OkStatus();  // padding rows only
  const uint64_t eb = isa::ElemBytes(config_, m.memory_type);
  const uint64_t first = uint64_t{m.dram_base} * eb;
  const uint64_t span_elems = uint64_t{m.y_size - 1} * m.x_stride + m.x_size;
  op.dram = dram_.Translate(first, span_elems * eb);
  if (op.dram == nullptr) {
    return Bad(index, absl::StrCat("DRAM range [0x", absl::Hex(first), ", 0x",
                                   absl::Hex(first + span_elems * eb),
                                   ") is not inside one allocated buffer"));
  }
  op.bus_bytes = uint64_t{m.x_size} * m.y_size * eb;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SimDevice::Op>> SimDevice::DecodeAndValidate(
    uint32_t insn_phys_addr, uint32_t insn_count) {
  if (insn_count == 0) {
    return absl::InvalidArgumentError("empty VTA instruction stream");
  }
  const uint8_t* bytes = dram_.Translate(
      insn_phys_addr, uint64_t{insn_count} * VtaConfig::kInsnBytes);
  if (bytes == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "instruction stream at 0x", absl::Hex(insn_phys_addr), " (", insn_count,
        " instructions) is not inside one allocated buffer"));
  }
  std::vector<Op> ops(insn_count);
  bool finish_seen = false;
  for (uint32_t i = 0; i < insn_count; ++i) {
    Op& op = ops[i];
    op.index = i;
    if (finish_seen) {
      return Bad(i, "instruction after FINISH");
    }
    auto decoded = codec_.Decode(
        isa::LoadEncodedInsn(bytes + size_t{i} * VtaConfig::kInsnBytes));
    if (!decoded.ok()) return Bad(i, decoded.status().message());
    op.insn = *std::move(decoded);
    if (const auto* m = std::get_if<MemInsn>(&op.insn)) {
      VTASERVE_RETURN_IF_ERROR(ValidateMem(*m, i, op));
    } else if (const auto* g = std::get_if<GemmInsn>(&op.insn)) {
      if (g->iter_out == 0 || g->iter_in == 0) {
        return Bad(i, "GEMM with a zero loop count");
      }
      if (g->uop_end <= g->uop_bgn || g->uop_end > config_.UopDepth()) {
        return Bad(
            i, absl::StrCat("GEMM uop range [", g->uop_bgn, ", ", g->uop_end,
                            ") is empty or exceeds ", config_.UopDepth()));
      }
    } else if (const auto* a = std::get_if<AluInsn>(&op.insn)) {
      if (a->iter_out == 0 || a->iter_in == 0) {
        return Bad(i, "ALU with a zero loop count");
      }
      if (a->uop_end <= a->uop_bgn || a->uop_end > config_.UopDepth()) {
        return Bad(i,
                   absl::StrCat("ALU uop range [", a->uop_bgn, ", ", a->uop_end,
                                ") is empty or exceeds ", config_.UopDepth()));
      }
      if (a->alu_opcode == AluOpcode::kMul && !config_.has_mul) {
        return Bad(i, "ALU MUL is not supported by this config");
      }
    } else {
      if (isa::DepOf(op.insn).Any()) {
        return Bad(i, "FINISH must not carry dependency flags");
      }
      finish_seen = true;
    }
    // Dependency plan.
    const DepFlags& d = isa::DepOf(op.insn);
    switch (op.module) {
      case kLoadModule:
        if (d.pop_next) op.pops[op.npops++] = kC2L;
        if (d.push_next) op.pushes[op.npushes++] = kL2C;
        break;
      case kComputeModule:
        if (d.pop_prev) op.pops[op.npops++] = kL2C;
        if (d.pop_next) op.pops[op.npops++] = kS2C;
        if (d.push_prev) op.pushes[op.npushes++] = kC2L;
        if (d.push_next) op.pushes[op.npushes++] = kC2S;
        break;
      case kStoreModule:
        if (d.pop_prev) op.pops[op.npops++] = kC2S;
        if (d.push_prev) op.pushes[op.npushes++] = kS2C;
        break;
    }
  }
  if (!finish_seen) {
    return absl::InvalidArgumentError(
        "VTA instruction stream has no FINISH instruction");
  }
  return ops;
}
}  // namespace vtaserve::vta::sim
