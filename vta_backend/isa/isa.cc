#include "vta_backend/isa/isa.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/common/status_macros.h"

namespace vtaserve::vta::isa {
namespace {

// Field indices in the layouts (declaration order of hw_spec.h).
enum MemField {
  kMOpcode,
  kMPopPrev,
  kMPopNext,
  kMPushPrev,
  kMPushNext,
  kMMemType,
  kMSram,
  kMDram,
  kMYSize,
  kMXSize,
  kMXStride,
  kMYPad0,
  kMYPad1,
  kMXPad0,
  kMXPad1,
};
enum GemmField {
  kGOpcode,
  kGPopPrev,
  kGPopNext,
  kGPushPrev,
  kGPushNext,
  kGReset,
  kGUopBgn,
  kGUopEnd,
  kGIterOut,
  kGIterIn,
  kGDstOut,
  kGDstIn,
  kGSrcOut,
  kGSrcIn,
  kGWgtOut,
  kGWgtIn,
  // ALU shares 0..kGSrcIn, then:
  kAAluOpcode = kGWgtOut,
  kAUseImm,
  kAImm,
};

class BitWriter {
 public:
  explicit BitWriter(const std::vector<FieldPos>& layout) : layout_(layout) {}
  void Put(int field, uint64_t value, const char* name) {
    const FieldPos& p = layout_[field];
    if ((value & ~p.Mask()) != 0 && status_.ok()) {
      status_ = absl::InvalidArgumentError(
          absl::StrCat("instruction field ", name, " = ", value,
                       " does not fit in ", p.width, " bits"));
    }
    words_[p.word] |= (value & p.Mask()) << p.shift;
  }
  void PutDep(const DepFlags& d) {
    Put(kGPopPrev, d.pop_prev, "pop_prev_dep");
    Put(kGPopNext, d.pop_next, "pop_next_dep");
    Put(kGPushPrev, d.push_prev, "push_prev_dep");
    Put(kGPushNext, d.push_next, "push_next_dep");
  }
  absl::StatusOr<EncodedInsn> Result() const {
    if (!status_.ok()) return status_;
    return EncodedInsn{words_[0], words_[1]};
  }

 private:
  const std::vector<FieldPos>& layout_;
  uint64_t words_[2] = {0, 0};
  absl::Status status_;
};

class BitReader {
 public:
  BitReader(const std::vector<FieldPos>& layout, const EncodedInsn& bits)
      : layout_(layout), words_{bits.lo, bits.hi} {}
  uint64_t Get(int field) const {
    const FieldPos& p = layout_[field];
    return (words_[p.word] >> p.shift) & p.Mask();
  }
  uint32_t Get32(int field) const { return static_cast<uint32_t>(Get(field)); }
  DepFlags GetDep() const {
    return DepFlags{Get(kGPopPrev) != 0, Get(kGPopNext) != 0,
                    Get(kGPushPrev) != 0, Get(kGPushNext) != 0};
  }

 private:
  const std::vector<FieldPos>& layout_;
  uint64_t words_[2];
};

std::string DepString(const DepFlags& d) {
  std::string s;
  if (d.pop_prev) s += " pop_prev";
  if (d.pop_next) s += " pop_next";
  if (d.push_prev) s += " push_prev";
  if (d.push_next) s += " push_next";
  return s;
}

const char* MemTypeName(MemoryType t) {
  switch (t) {
    case MemoryType::kUop:
      return "UOP";
    case MemoryType::kWgt:
      return "WGT";
    case MemoryType::kInp:
      return "INP";
    case MemoryType::kAcc:
      return "ACC";
    case MemoryType::kOut:
      return "OUT";
    case MemoryType::kAcc8Bit:
      return "ACC_8BIT";
    case MemoryType::kInpIm2col:
      return "INP_IM2COL";
  }
  return "?";
}

const char* AluName(AluOpcode op) {
  switch (op) {
    case AluOpcode::kMin:
      return "MIN";
    case AluOpcode::kMax:
      return "MAX";
    case AluOpcode::kAdd:
      return "ADD";
    case AluOpcode::kShr:
      return "SHR";
    case AluOpcode::kMul:
      return "MUL";
  }
  return "?";
}

}  // namespace

Opcode OpcodeOf(const Insn& insn) {
  switch (insn.index()) {
    case 0:
      return std::get<MemInsn>(insn).opcode;
    case 1:
      return Opcode::kGemm;
    case 2:
      return Opcode::kAlu;
    default:
      return Opcode::kFinish;
  }
}

Stage StageOf(const Insn& insn) {
  if (const auto* m = std::get_if<MemInsn>(&insn)) {
    if (m->opcode == Opcode::kStore) return Stage::kStore;
    if (m->memory_type == MemoryType::kInp ||
        m->memory_type == MemoryType::kWgt ||
        m->memory_type == MemoryType::kInpIm2col) {
      return Stage::kLoad;
    }
  }
  return Stage::kCompute;
}

const DepFlags& DepOf(const Insn& insn) {
  return std::visit([](const auto& i) -> const DepFlags& { return i.dep; },
                    insn);
}

DepFlags& MutableDepOf(Insn& insn) {
  return std::visit([](auto& i) -> DepFlags& { return i.dep; }, insn);
}

int ElemBytes(const VtaConfig& config, MemoryType type) {
  switch (type) {
    case MemoryType::kUop:
      return VtaConfig::kUopElemBytes;
    case MemoryType::kWgt:
      return config.WgtElemBytes();
    case MemoryType::kInp:
      return config.InpElemBytes();
    case MemoryType::kAcc:
      return config.AccElemBytes();
    case MemoryType::kOut:
      return config.OutElemBytes();
    case MemoryType::kAcc8Bit:
      return config.OutElemBytes();
    case MemoryType::kInpIm2col:
      return 1;  // byte-addressed source image
  }
  return 0;
}

void StoreEncodedInsn(const EncodedInsn& insn, uint8_t* dst16) {
  for (int i = 0; i < 8; ++i) {
    dst16[i] = static_cast<uint8_t>(insn.lo >> (8 * i));
    dst16[8 + i] = static_cast<uint8_t>(insn.hi >> (8 * i));
  }
}

EncodedInsn LoadEncodedInsn(const uint8_t* src16) {
  EncodedInsn e;
  for (int i = 7; i >= 0; --i) {
    e.lo = (e.lo << 8) | src16[i];
    e.hi = (e.hi << 8) | src16[8 + i];
  }
  return e;
}

std::string ToString(const Insn& insn) {
  if (const auto* m = std::get_if<MemInsn>(&insn)) {
    return absl::StrFormat(
        "%s %s sram=%u dram=%u y=%u x=%u stride=%u pad=(%u,%u,%u,%u)%s",
        m->opcode == Opcode::kLoad ? "LOAD" : "STORE",
        MemTypeName(m->memory_type), m->sram_base, m->dram_base, m->y_size,
        m->x_size, m->x_stride, m->y_pad_0, m->y_pad_1, m->x_pad_0, m->x_pad_1,
        DepString(m->dep));
  }
  if (const auto* g = std::get_if<GemmInsn>(&insn)) {
    return absl::StrFormat(
        "GEMM%s uop=[%u,%u) iter=%ux%u dst=%u/%u src=%u/%u wgt=%u/%u%s",
        g->reset ? " reset" : "", g->uop_bgn, g->uop_end, g->iter_out,
        g->iter_in, g->dst_factor_out, g->dst_factor_in, g->src_factor_out,
        g->src_factor_in, g->wgt_factor_out, g->wgt_factor_in,
        DepString(g->dep));
  }
  if (const auto* a = std::get_if<AluInsn>(&insn)) {
    return absl::StrFormat(
        "ALU %s%s uop=[%u,%u) iter=%ux%u dst=%u/%u src=%u/%u%s",
        AluName(a->alu_opcode),
        a->use_imm ? absl::StrCat(" imm=", a->imm) : std::string(" tensor"),
        a->uop_bgn, a->uop_end, a->iter_out, a->iter_in, a->dst_factor_out,
        a->dst_factor_in, a->src_factor_out, a->src_factor_in,
        DepString(a->dep));
  }
  return absl::StrCat("FINISH", DepString(std::get<FinishInsn>(insn).dep));
}

std::string ToString(const Uop& uop) {
  return absl::StrFormat("uop(dst=%u src=%u wgt=%u)", uop.dst_idx, uop.src_idx,
                         uop.wgt_idx);
}

absl::StatusOr<IsaCodec> IsaCodec::Create(const VtaConfig& config) {
  VTASERVE_RETURN_IF_ERROR(config.Validate());
  IsaCodec c;
  const std::vector<int> mem = {3,  1,  1,  1, 1, 3, 16, 32,
                                16, 16, 16, 4, 4, 4, 4};
  const int u = config.LogUopDepth();
  const int a = config.LogAccDepth();
  const int s = config.SrcFactorBits();
  const int w = config.LogWgtDepth();
  const std::vector<int> gemm = {3,  1,  1, 1, 1, 1, u, u + 1,
                                 14, 14, a, a, s, s, w, w};
  const std::vector<int> alu = {3,  1, 1, 1, 1, 1, u, u + 1, 14,
                                14, a, a, s, s, 3, 1, 16};
  VTASERVE_ASSIGN_OR_RETURN(c.mem_, PackBitfields(mem, 2));
  VTASERVE_ASSIGN_OR_RETURN(c.gemm_, PackBitfields(gemm, 2));
  VTASERVE_ASSIGN_OR_RETURN(c.alu_, PackBitfields(alu, 2));
  c.uop_dst_mask_ = (uint32_t{1} << a) - 1;
  c.uop_src_shift_ = a;
  c.uop_src_mask_ = (uint32_t{1} << config.UopSrcBits()) - 1;
  c.uop_wgt_shift_ = a + config.UopSrcBits();
  c.uop_wgt_mask_ = (uint32_t{1} << w) - 1;
  c.ext_im2col_load_ = config.ext_im2col_load;
  return c;
}

absl::StatusOr<EncodedInsn> IsaCodec::Encode(const Insn& insn) const {
  if (const auto* m = std::get_if<MemInsn>(&insn)) {
    if (m->opcode != Opcode::kLoad && m->opcode != Opcode::kStore) {
      return absl::InvalidArgumentError(
          "MemInsn opcode must be kLoad or kStore");
    }
    BitWriter b(mem_);
    b.Put(kMOpcode, static_cast<uint64_t>(m->opcode), "opcode");
    b.PutDep(m->dep);
    b.Put(kMMemType, static_cast<uint64_t>(m->memory_type), "memory_type");
    b.Put(kMSram, m->sram_base, "sram_base");
    b.Put(kMDram, m->dram_base, "dram_base");
    b.Put(kMYSize, m->y_size, "y_size");
    b.Put(kMXSize, m->x_size, "x_size");
    b.Put(kMXStride, m->x_stride, "x_stride");
    b.Put(kMYPad0, m->y_pad_0, "y_pad_0");
    b.Put(kMYPad1, m->y_pad_1, "y_pad_1");
    b.Put(kMXPad0, m->x_pad_0, "x_pad_0");
    b.Put(kMXPad1, m->x_pad_1, "x_pad_1");
    return b.Result();
  }
  if (const auto* g = std::get_if<GemmInsn>(&insn)) {
    BitWriter b(gemm_);
    b.Put(kGOpcode, static_cast<uint64_t>(Opcode::kGemm), "opcode");
    b.PutDep(g->dep);
    b.Put(kGReset, g->reset, "reset_reg");
    b.Put(kGUopBgn, g->uop_bgn, "uop_bgn");
    b.Put(kGUopEnd, g->uop_end, "uop_end");
    b.Put(kGIterOut, g->iter_out, "iter_out");
    b.Put(kGIterIn, g->iter_in, "iter_in");
    b.Put(kGDstOut, g->dst_factor_out, "dst_factor_out");
    b.Put(kGDstIn, g->dst_factor_in, "dst_factor_in");
    b.Put(kGSrcOut, g->src_factor_out, "src_factor_out");
    b.Put(kGSrcIn, g->src_factor_in, "src_factor_in");
    b.Put(kGWgtOut, g->wgt_factor_out, "wgt_factor_out");
    b.Put(kGWgtIn, g->wgt_factor_in, "wgt_factor_in");
    return b.Result();
  }
  if (const auto* a = std::get_if<AluInsn>(&insn)) {
    BitWriter b(alu_);
    b.Put(kGOpcode, static_cast<uint64_t>(Opcode::kAlu), "opcode");
    b.PutDep(a->dep);
    b.Put(kGReset, a->reset, "reset_reg");
    b.Put(kGUopBgn, a->uop_bgn, "uop_bgn");
    b.Put(kGUopEnd, a->uop_end, "uop_end");
    b.Put(kGIterOut, a->iter_out, "iter_out");
    b.Put(kGIterIn, a->iter_in, "iter_in");
    b.Put(kGDstOut, a->dst_factor_out, "dst_factor_out");
    b.Put(kGDstIn, a->dst_factor_in, "dst_factor_in");
    b.Put(kGSrcOut, a->src_factor_out, "src_factor_out");
    b.Put(kGSrcIn, a->src_factor_in, "src_factor_in");
    b.Put(kAAluOpcode, static_cast<uint64_t>(a->alu_opcode), "alu_opcode");
    b.Put(kAUseImm, a->use_imm, "use_imm");
    b.Put(kAImm, static_cast<uint16_t>(a->imm), "imm");
    return b.Result();
  }
  const auto& f = std::get<FinishInsn>(insn);
  BitWriter b(gemm_);
  b.Put(kGOpcode, static_cast<uint64_t>(Opcode::kFinish), "opcode");
  b.PutDep(f.dep);
  return b.Result();
}

absl::StatusOr<Insn> IsaCodec::Decode(const EncodedInsn& bits) const {
  const uint64_t opcode = bits.lo & 0x7;
  switch (opcode) {
    case 0:
    case 1: {
      BitReader r(mem_, bits);
      MemInsn m;
      m.opcode = static_cast<Opcode>(opcode);
      m.dep = r.GetDep();
      const uint64_t type = r.Get(kMMemType);
      const bool ext = type == static_cast<uint64_t>(MemoryType::kInpIm2col) &&
                       opcode == 0 && ext_im2col_load_;
      if (type >= kNumMemoryTypes && !ext) {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid memory_type ", type, " in ",
                         opcode == 0 ? "LOAD" : "STORE"));
      }
      m.memory_type = static_cast<MemoryType>(type);
      m.sram_base = r.Get32(kMSram);
      m.dram_base = r.Get32(kMDram);
      m.y_size = r.Get32(kMYSize);
      m.x_size = r.Get32(kMXSize);
      m.x_stride = r.Get32(kMXStride);
      m.y_pad_0 = r.Get32(kMYPad0);
      m.y_pad_1 = r.Get32(kMYPad1);
      m.x_pad_0 = r.Get32(kMXPad0);
      m.x_pad_1 = r.Get32(kMXPad1);
      return Insn(m);
    }
    case 2: {
      BitReader r(gemm_, bits);
      GemmInsn g;
      g.dep = r.GetDep();
      g.reset = r.Get(kGReset) != 0;
      g.uop_bgn = r.Get32(kGUopBgn);
      g.uop_end = r.Get32(kGUopEnd);
      g.iter_out = r.Get32(kGIterOut);
      g.iter_in = r.Get32(kGIterIn);
      g.dst_factor_out = r.Get32(kGDstOut);
      g.dst_factor_in = r.Get32(kGDstIn);
      g.src_factor_out = r.Get32(kGSrcOut);
      g.src_factor_in = r.Get32(kGSrcIn);
      g.wgt_factor_out = r.Get32(kGWgtOut);
      g.wgt_factor_in = r.Get32(kGWgtIn);
      return Insn(g);
    }
    case 3: {
      BitReader r(gemm_, bits);
      return Insn(FinishInsn{r.GetDep()});
    }
    case 4: {
      BitReader r(alu_, bits);
      AluInsn a;
      a.dep = r.GetDep();
      a.reset = r.Get(kGReset) != 0;
      a.uop_bgn = r.Get32(kGUopBgn);
      a.uop_end = r.Get32(kGUopEnd);
      a.iter_out = r.Get32(kGIterOut);
      a.iter_in = r.Get32(kGIterIn);
      a.dst_factor_out = r.Get32(kGDstOut);
      a.dst_factor_in = r.Get32(kGDstIn);
      a.src_factor_out = r.Get32(kGSrcOut);
      a.src_factor_in = r.Get32(kGSrcIn);
      const uint64_t op = r.Get(kAAluOpcode);
      if (op > static_cast<uint64_t>(AluOpcode::kMul)) {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid ALU opcode ", op));
      }
      a.alu_opcode = static_cast<AluOpcode>(op);
      a.use_imm = r.Get(kAUseImm) != 0;
      a.imm = static_cast<int16_t>(static_cast<uint16_t>(r.Get(kAImm)));
      return Insn(a);
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("invalid instruction opcode ", opcode));
  }
}

absl::StatusOr<uint32_t> IsaCodec::EncodeUop(const Uop& uop) const {
  if (uop.dst_idx > uop_dst_mask_ || uop.src_idx > uop_src_mask_ ||
      uop.wgt_idx > uop_wgt_mask_) {
    return absl::InvalidArgumentError(
        absl::StrCat("uop index does not fit its field: ", ToString(uop)));
  }
  return uop.dst_idx | (uop.src_idx << uop_src_shift_) |
         (uop.wgt_idx << uop_wgt_shift_);
}

}  // namespace vtaserve::vta::isa
