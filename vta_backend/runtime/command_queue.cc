#include "vta_backend/runtime/command_queue.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/common/status_macros.h"

namespace vtaserve::vta {
namespace {

using isa::AluInsn;
using isa::DepFlags;
using isa::GemmInsn;
using isa::Insn;
using isa::MemInsn;
using isa::MemoryType;
using isa::Opcode;
using isa::Stage;

constexpr uint32_t kMaxLoopExtent = (1u << 14) - 1;

int StageIndex(Stage s) { return static_cast<int>(s); }

bool Fits(uint64_t v, int bits) { return bits >= 64 || (v >> bits) == 0; }

// True if some uop execution reads an ACC element written by one of the
// previous two executions (dst repeats; with check_src also src == dst).
// Index differences between executions at distance <= 2 only depend on the
// uop pair and on which loop boundaries lie between them, so it suffices to
// enumerate outer iterations {0,1,2} and inner {0,1,2,n-2,n-1}.
bool HasHazard(const UopKernel& k, bool check_src) {
  const UopLoop one;
  const UopLoop& out = k.loops.size() >= 1 ? k.loops[0] : one;
  const UopLoop& in = k.loops.size() >= 2 ? k.loops[1] : one;
  std::vector<uint32_t> outs, ins;
  for (uint32_t o = 0; o < std::min<uint32_t>(out.extent, 3); ++o) {
    outs.push_back(o);
  }
  for (uint32_t i : {0u, 1u, 2u, in.extent - 2, in.extent - 1}) {
    if (i < in.extent && std::find(ins.begin(), ins.end(), i) == ins.end()) {
      ins.push_back(i);
    }
  }
  std::sort(ins.begin(), ins.end());
  struct Exec {
    uint64_t flat;
    uint64_t dst, src;
  };
  const uint64_t n = k.uops.size();
  Exec prev[2] = {{~uint64_t{0}, 0, 0}, {~uint64_t{0}, 0, 0}};
  int count = 0;
  for (uint32_t o : outs) {
    for (uint32_t i : ins) {
      for (uint64_t u = 0; u < n; ++u) {
        const uint64_t flat = (uint64_t{o} * in.extent + i) * n + u;
        const uint64_t base_d =
            uint64_t{o} * out.dst_factor + uint64_t{i} * in.dst_factor;
        const uint64_t base_s =
            uint64_t{o} * out.src_factor + uint64_t{i} * in.src_factor;
        const Exec e{flat, k.uops[u].dst_idx + base_d,
                     k.uops[u].src_idx + base_s};
        for (int p = 0; p < std::min(count, 2); ++p) {
          const Exec& q = prev[p];
          if (flat - q.flat <= 2) {
            if (e.dst == q.dst) return true;
            if (check_src && e.src == q.dst) return true;
          }
        }
        prev[1] = prev[0];
        prev[0] = e;
        ++count;
      }
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<std::vector<uint8_t>> Program::Encode(
    const isa::IsaCodec& codec, uint32_t uop_phys_addr) const {
  if (uop_phys_addr % VtaConfig::kUopElemBytes != 0) {
    return absl::InvalidArgumentError(
        "uop staging buffer is not 4-byte aligned");
  }
  std::vector<uint8_t> bytes(insns.size() * VtaConfig::kInsnBytes);
  size_t next_reloc = 0;
  for (size_t i = 0; i < insns.size(); ++i) {
    Insn insn = insns[i];
    if (next_reloc < uop_load_insns.size() && uop_load_insns[next_reloc] == i) {
      ++next_reloc;
      auto& m = std::get<MemInsn>(insn);
      const uint64_t addr =
          uint64_t{m.dram_base} + uop_phys_addr / VtaConfig::kUopElemBytes;
      if (!Fits(addr, 32)) {
        return absl::InvalidArgumentError("uop DRAM address overflows 32 bits");
      }
      m.dram_base = static_cast<uint32_t>(addr);
    }
    VTASERVE_ASSIGN_OR_RETURN(isa::EncodedInsn e, codec.Encode(insn));
    isa::StoreEncodedInsn(e, &bytes[i * VtaConfig::kInsnBytes]);
  }
  return bytes;
}

std::string Program::Dump() const {
  std::string out;
  for (size_t i = 0; i < insns.size(); ++i) {
    absl::StrAppend(&out, i, ": ", isa::ToString(insns[i]), "\n");
  }
  return out;
}

absl::StatusOr<CommandQueue> CommandQueue::Create(const VtaConfig& config,
                                                  CommandQueueOptions options) {
  VTASERVE_ASSIGN_OR_RETURN(isa::IsaCodec codec, isa::IsaCodec::Create(config));
  return CommandQueue(config, std::move(codec), options);
}

absl::StatusOr<uint32_t> CommandQueue::DramElemAddr(const VtaConfig& config,
                                                    const DeviceBuffer& buffer,
                                                    MemoryType type,
                                                    uint64_t elem_offset) {
  const int eb = isa::ElemBytes(config, type);
  if (eb <= 0 || buffer.phys_addr % eb != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("buffer at 0x", absl::Hex(buffer.phys_addr),
                     " is not aligned to the element size ", eb));
  }
  const uint64_t addr = buffer.phys_addr / eb + elem_offset;
  if (!Fits(addr, 32)) {
    return absl::InvalidArgumentError("DRAM element address overflows 32 bits");
  }
  return static_cast<uint32_t>(addr);
}

absl::StatusOr<KernelId> CommandQueue::AddKernel(UopKernel kernel) {
  if (kernel.uops.empty()) {
    return absl::InvalidArgumentError("uop kernel has no uops");
  }
  if (kernel.loops.size() > 2) {
    return absl::InvalidArgumentError("uop kernel has more than two loops");
  }
  if (kernel.uops.size() > config_.UopDepth() || kernel.uops.size() > 0xffff) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "uop kernel of ", kernel.uops.size(), " uops exceeds the uop buffer (",
        config_.UopDepth(), ")"));
  }
  for (const UopLoop& l : kernel.loops) {
    if (l.extent < 1 || l.extent > kMaxLoopExtent) {
      return absl::InvalidArgumentError(
          absl::StrCat("uop loop extent ", l.extent, " outside [1, 16383]"));
    }
    if (!Fits(l.dst_factor, config_.LogAccDepth()) ||
        !Fits(l.src_factor, config_.SrcFactorBits()) ||
        !Fits(l.wgt_factor, config_.LogWgtDepth())) {
      return absl::InvalidArgumentError(
          "uop loop factor does not fit its field");
    }
  }
  StagedKernel s;
  s.staging_offset = static_cast<uint32_t>(staging_.size());
  for (const isa::Uop& u : kernel.uops) {
    VTASERVE_ASSIGN_OR_RETURN(uint32_t w, codec_.EncodeUop(u));
    staging_.push_back(w);
  }
  if (options_.check_hazards) {
    s.hazard = HasHazard(kernel, /*check_src=*/false);
    s.alu_tensor_hazard = s.hazard || HasHazard(kernel, /*check_src=*/true);
  }
  s.kernel = std::move(kernel);
  kernels_.push_back(std::move(s));
  return static_cast<KernelId>(kernels_.size() - 1);
}

void CommandQueue::Emit(Insn insn) {
  const int s = StageIndex(isa::StageOf(insn));
  DepFlags& dep = isa::MutableDepOf(insn);
  dep.pop_prev |= pending_pop_prev_[s];
  dep.pop_next |= pending_pop_next_[s];
  pending_pop_prev_[s] = pending_pop_next_[s] = false;
  insns_.push_back(std::move(insn));
}

void CommandQueue::EmitNop(Stage stage, DepFlags dep) {
  MemInsn m;
  m.dep = dep;
  switch (stage) {
    case Stage::kLoad:
      m.opcode = Opcode::kLoad;
      m.memory_type = MemoryType::kInp;
      break;
    case Stage::kCompute:
      m.opcode = Opcode::kLoad;
      m.memory_type = MemoryType::kUop;
      break;
    case Stage::kStore:
      m.opcode = Opcode::kStore;
      m.memory_type = MemoryType::kUop;  // memory_type 0, as the runtime
      break;
  }
  Emit(m);
}

void CommandQueue::CommitPendingPop(Stage stage) {
  const int s = StageIndex(stage);
  if (pending_pop_prev_[s] || pending_pop_next_[s]) EmitNop(stage, {});
}

absl::Status CommandQueue::Load2D(MemoryType type, uint32_t sram_base,
                                  uint32_t dram_elem_addr, uint32_t y_size,
                                  uint32_t x_size, uint32_t x_stride,
                                  Pad2D pad) {
  uint32_t depth = 0;
  switch (type) {
    case MemoryType::kInp:
      depth = config_.InpDepth();
      break;
    case MemoryType::kWgt:
      depth = config_.WgtDepth();
      break;
    case MemoryType::kAcc:
      depth = config_.AccDepth();
      break;
    case MemoryType::kAcc8Bit:
      if (!config_.has_acc_8bit_load) {
        return absl::InvalidArgumentError(
            "LOAD ACC_8BIT is not supported by this VTA configuration");
      }
      depth = config_.AccDepth();
      break;
    default:
      return absl::InvalidArgumentError(
          "Load2D memory type must be INP, WGT, ACC or ACC_8BIT");
  }
  if (pad.y_before > 15 || pad.y_after > 15 || pad.x_before > 15 ||
      pad.x_after > 15) {
    return absl::InvalidArgumentError("padding exceeds 15 elements per side");
  }
  if (type == MemoryType::kWgt &&
      (pad.y_before | pad.y_after | pad.x_before | pad.x_after) != 0) {
    return absl::InvalidArgumentError(
        "WGT loads cannot be padded (HLS ignores it)");
  }
  if (!Fits(y_size, 16) || !Fits(x_size, 16) || !Fits(x_stride, 16) ||
      x_size == 0 || y_size == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Load2D sizes y=", y_size, " x=", x_size,
                     " stride=", x_stride, " must be 1..65535"));
  }
  if (y_size > 1 && x_stride < x_size) {
    return absl::InvalidArgumentError("Load2D x_stride < x_size");
  }
  const uint64_t xt = uint64_t{pad.x_before} + x_size + pad.x_after;
  const uint64_t yt = uint64_t{pad.y_before} + y_size + pad.y_after;
  if (uint64_t{sram_base} + xt * yt > depth) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Load2D SRAM range [", sram_base, ", ", sram_base + xt * yt,
        ") exceeds the buffer depth ", depth));
  }
  MemInsn m;
  m.opcode = Opcode::kLoad;
  m.memory_type = type;
  m.sram_base = sram_base;
  m.dram_base = dram_elem_addr;
  m.y_size = y_size;
  m.x_size = x_size;
  m.x_stride = x_stride;
  m.y_pad_0 = pad.y_before;
  m.y_pad_1 = pad.y_after;
  m.x_pad_0 = pad.x_before;
  m.x_pad_1 = pad.x_after;
  Emit(m);
  return absl::OkStatus();
}

absl::Status CommandQueue::LoadIm2col(uint32_t sram_base,
                                      uint32_t dram_byte_addr,
                                      uint32_t out_rows, uint32_t out_cols,
                                      uint32_t row_bytes, int kh, int kw,
                                      int channels, int stride) {
  if (!config_.ext_im2col_load) {
    return absl::FailedPreconditionError(
        "LOAD INP_IM2COL needs the ext_im2col_load extension");
  }
  for (int v : {kh, kw, channels, stride}) {
    if (v < 1 || v > 16) {
      return absl::InvalidArgumentError(
          "im2col kernel, channels and stride must be 1..16");
    }
  }
  if (!Fits(out_rows, 16) || !Fits(out_cols, 16) || !Fits(row_bytes, 16) ||
      out_rows == 0 || out_cols == 0) {
    return absl::InvalidArgumentError("LoadIm2col sizes must be 1..65535");
  }
  const uint64_t blocks =
      (uint64_t{1} * kh * kw * channels + config_.BlockIn() - 1) /
      config_.BlockIn();
  if (uint64_t{sram_base} + blocks * out_rows * out_cols > config_.InpDepth()) {
    return absl::InvalidArgumentError(
        "LoadIm2col SRAM range exceeds the INP buffer");
  }
  if (((uint64_t{out_cols} - 1) * stride + kw) * channels > row_bytes) {
    return absl::InvalidArgumentError(
        "LoadIm2col window row exceeds the image row");
  }
  MemInsn m;
  m.opcode = Opcode::kLoad;
  m.memory_type = MemoryType::kInpIm2col;
  m.sram_base = sram_base;
  m.dram_base = dram_byte_addr;
  m.y_size = out_rows;
  m.x_size = out_cols;
  m.x_stride = row_bytes;
  m.y_pad_0 = static_cast<uint32_t>(kh - 1);
  m.y_pad_1 = static_cast<uint32_t>(kw - 1);
  m.x_pad_0 = static_cast<uint32_t>(channels - 1);
  m.x_pad_1 = static_cast<uint32_t>(stride - 1);
  Emit(m);
  return absl::OkStatus();
}

absl::Status CommandQueue::Store2D(uint32_t sram_base, uint32_t dram_elem_addr,
                                   uint32_t y_size, uint32_t x_size,
                                   uint32_t x_stride) {
  if (!Fits(y_size, 16) || !Fits(x_size, 16) || !Fits(x_stride, 16) ||
      x_size == 0 || y_size == 0) {
    return absl::InvalidArgumentError("Store2D sizes must be 1..65535");
  }
  if (uint64_t{sram_base} + uint64_t{x_size} * y_size > config_.OutDepth()) {
    return absl::InvalidArgumentError(
        "Store2D SRAM range exceeds the OUT buffer");
  }
  MemInsn m;
  m.opcode = Opcode::kStore;
  m.memory_type = MemoryType::kOut;
  m.sram_base = sram_base;
  m.dram_base = dram_elem_addr;
  m.y_size = y_size;
  m.x_size = x_size;
  m.x_stride = x_stride;
  Emit(m);
  return absl::OkStatus();
}

absl::StatusOr<std::pair<uint32_t, uint32_t>> CommandQueue::EnsureResident(
    KernelId id) {
  if (id < 0 || static_cast<size_t>(id) >= kernels_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown uop kernel ", id));
  }
  for (const Resident& r : resident_) {
    if (r.id == id) return std::make_pair(r.begin, r.end);
  }
  const StagedKernel& k = kernels_[id];
  const uint32_t len = static_cast<uint32_t>(k.kernel.uops.size());
  if (ring_next_ + len > config_.UopDepth()) ring_next_ = 0;
  const uint32_t begin = ring_next_, end = begin + len;
  resident_.erase(std::remove_if(resident_.begin(), resident_.end(),
                                 [&](const Resident& r) {
                                   return r.begin < end && begin < r.end;
                                 }),
                  resident_.end());
  resident_.push_back(Resident{id, begin, end});
  ring_next_ = end;
  MemInsn m;
  m.opcode = Opcode::kLoad;
  m.memory_type = MemoryType::kUop;
  m.sram_base = begin;
  m.dram_base = k.staging_offset;  // relocated by Program::Encode
  m.y_size = 1;
  m.x_size = len;
  m.x_stride = len;
  uop_load_insns_.push_back(insns_.size());
  Emit(m);
  return std::make_pair(begin, end);
}

absl::Status CommandQueue::Gemm(KernelId id, bool reset) {
  VTASERVE_ASSIGN_OR_RETURN(auto range, EnsureResident(id));
  const StagedKernel& k = kernels_[id];
  if (!reset && k.hazard) {
    return absl::InvalidArgumentError(absl::StrCat(
        "GEMM kernel ", id,
        " writes an accumulator read within the next two uops (pipeline "
        "hazard, vta-isa.md 4.7)"));
  }
  const UopLoop one;
  const auto& loops = k.kernel.loops;
  const UopLoop& out = loops.size() >= 1 ? loops[0] : one;
  const UopLoop& in = loops.size() >= 2 ? loops[1] : one;
  GemmInsn g;
  g.reset = reset;
  g.uop_bgn = range.first;
  g.uop_end = range.second;
  g.iter_out = out.extent;
  g.iter_in = in.extent;
  g.dst_factor_out = out.dst_factor;
  g.dst_factor_in = in.dst_factor;
  g.src_factor_out = out.src_factor;
  g.src_factor_in = in.src_factor;
  g.wgt_factor_out = out.wgt_factor;
  g.wgt_factor_in = in.wgt_factor;
  Emit(g);
  return absl::OkStatus();
}

absl::Status CommandQueue::Alu(KernelId id, isa::AluOpcode op, bool use_imm,
                               int16_t imm) {
  if (op == isa::AluOpcode::kMul && !config_.has_mul) {
    return absl::InvalidArgumentError(
        "ALU MUL is not supported by this VTA configuration");
  }
  VTASERVE_ASSIGN_OR_RETURN(auto range, EnsureResident(id));
  const StagedKernel& k = kernels_[id];
  if (use_imm ? k.hazard : k.alu_tensor_hazard) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ALU kernel ", id,
        " reads an accumulator written within the previous two uops "
        "(pipeline hazard, vta-isa.md 4.7)"));
  }
  const UopLoop one;
  const auto& loops = k.kernel.loops;
  // With one loop, ALU uses the inner hardware loop (vta-isa.md 6.3).
  const UopLoop& out = loops.size() == 2 ? loops[0] : one;
  const UopLoop& in =
      loops.size() == 2 ? loops[1] : (loops.size() == 1 ? loops[0] : one);
  AluInsn a;
  a.uop_bgn = range.first;
  a.uop_end = range.second;
  a.iter_out = out.extent;
  a.iter_in = in.extent;
  a.dst_factor_out = out.dst_factor;
  a.dst_factor_in = in.dst_factor;
  a.src_factor_out = out.src_factor;
  a.src_factor_in = in.src_factor;
  a.alu_opcode = op;
  a.use_imm = use_imm;
  a.imm = imm;
  Emit(a);
  return absl::OkStatus();
}

absl::Status CommandQueue::DepPush(Stage from, Stage to) {
  if (from == to || (from != Stage::kCompute && to != Stage::kCompute)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "illegal dependency push ", StageIndex(from), " -> ", StageIndex(to)));
  }
  CommitPendingPop(from);
  const bool next = StageIndex(to) > StageIndex(from);
  if (!insns_.empty() && isa::StageOf(insns_.back()) == from &&
      isa::OpcodeOf(insns_.back()) != Opcode::kFinish) {
    DepFlags& dep = isa::MutableDepOf(insns_.back());
    bool& flag = next ? dep.push_next : dep.push_prev;
    if (!flag) {
      flag = true;
      return absl::OkStatus();
    }
  }
  DepFlags dep;
  (next ? dep.push_next : dep.push_prev) = true;
  EmitNop(from, dep);
  return absl::OkStatus();
}

absl::Status CommandQueue::DepPop(Stage from, Stage to) {
  if (from == to || (from != Stage::kCompute && to != Stage::kCompute)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "illegal dependency pop ", StageIndex(from), " -> ", StageIndex(to)));
  }
  const int t = StageIndex(to);
  bool* pending = StageIndex(from) < t ? pending_pop_prev_ : pending_pop_next_;
  if (pending[t]) CommitPendingPop(to);
  pending[t] = true;
  return absl::OkStatus();
}

absl::StatusOr<Program> CommandQueue::Finalize() {
  CommitPendingPop(Stage::kLoad);
  CommitPendingPop(Stage::kStore);
  VTASERVE_RETURN_IF_ERROR(DepPush(Stage::kStore, Stage::kCompute));
  VTASERVE_RETURN_IF_ERROR(DepPush(Stage::kLoad, Stage::kCompute));
  VTASERVE_RETURN_IF_ERROR(DepPop(Stage::kStore, Stage::kCompute));
  VTASERVE_RETURN_IF_ERROR(DepPop(Stage::kLoad, Stage::kCompute));
  CommitPendingPop(Stage::kCompute);
  insns_.push_back(isa::FinishInsn{});

  // Token balance per queue: l2c, c2l, c2s, s2c.
  int64_t balance[4] = {0, 0, 0, 0};
  for (const Insn& insn : insns_) {
    const DepFlags& d = isa::DepOf(insn);
    switch (isa::StageOf(insn)) {
      case Stage::kLoad:
        balance[0] += d.push_next;
        balance[1] -= d.pop_next;
        break;
      case Stage::kCompute:
        balance[0] -= d.pop_prev;
        balance[1] += d.push_prev;
        balance[2] += d.push_next;
        balance[3] -= d.pop_next;
        break;
      case Stage::kStore:
        balance[2] -= d.pop_prev;
        balance[3] += d.push_prev;
        break;
    }
  }
  Program p;
  p.insns = std::move(insns_);
  p.uop_words = staging_;
  p.uop_load_insns = std::move(uop_load_insns_);
  insns_.clear();
  uop_load_insns_.clear();
  resident_.clear();
  ring_next_ = 0;
  static const char* kNames[4] = {"load->compute", "compute->load",
                                  "compute->store", "store->compute"};
  for (int q = 0; q < 4; ++q) {
    if (balance[q] != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unbalanced dependency tokens on queue ", kNames[q], ": ",
          balance[q] > 0 ? "pushes exceed pops by " : "pops exceed pushes by ",
          balance[q] > 0 ? balance[q] : -balance[q]));
    }
  }
  return p;
}

absl::StatusOr<LoadedProgram> LoadedProgram::Upload(VtaDevice& device,
                                                    const VtaConfig& config,
                                                    const Program& program) {
  if (program.insns.empty()) {
    return absl::InvalidArgumentError("empty program");
  }
  VTASERVE_ASSIGN_OR_RETURN(isa::IsaCodec codec, isa::IsaCodec::Create(config));
  LoadedProgram lp;
  lp.device_ = &device;
  if (!program.uop_words.empty()) {
    VTASERVE_ASSIGN_OR_RETURN(
        lp.uop_buffer_,
        device.AllocBuffer(program.uop_words.size() * sizeof(uint32_t)));
    std::vector<uint8_t> bytes(program.uop_words.size() * 4);
    for (size_t i = 0; i < program.uop_words.size(); ++i) {
      for (int b = 0; b < 4; ++b) {
        bytes[4 * i + b] =
            static_cast<uint8_t>(program.uop_words[i] >> (8 * b));
      }
    }
    VTASERVE_RETURN_IF_ERROR(device.CopyToDevice(lp.uop_buffer_, 0, bytes));
  }
  VTASERVE_ASSIGN_OR_RETURN(std::vector<uint8_t> insn_bytes,
                            program.Encode(codec, lp.uop_buffer_.phys_addr));
  VTASERVE_ASSIGN_OR_RETURN(lp.insn_buffer_,
                            device.AllocBuffer(insn_bytes.size()));
  VTASERVE_RETURN_IF_ERROR(device.CopyToDevice(lp.insn_buffer_, 0, insn_bytes));
  lp.insn_count_ = static_cast<uint32_t>(program.insns.size());
  return lp;
}

LoadedProgram::LoadedProgram(LoadedProgram&& other) noexcept
    : device_(std::exchange(other.device_, nullptr)),
      insn_buffer_(std::exchange(other.insn_buffer_, DeviceBuffer{})),
      uop_buffer_(std::exchange(other.uop_buffer_, DeviceBuffer{})),
      insn_count_(other.insn_count_) {}

LoadedProgram& LoadedProgram::operator=(LoadedProgram&& other) noexcept {
  if (this != &other) {
    Release();
    device_ = std::exchange(other.device_, nullptr);
    insn_buffer_ = std::exchange(other.insn_buffer_, DeviceBuffer{});
    uop_buffer_ = std::exchange(other.uop_buffer_, DeviceBuffer{});
    insn_count_ = other.insn_count_;
  }
  return *this;
}

LoadedProgram::~LoadedProgram() { Release(); }

void LoadedProgram::Release() {
  if (device_ == nullptr) return;
  if (insn_buffer_.valid()) device_->FreeBuffer(insn_buffer_).IgnoreError();
  if (uop_buffer_.valid()) device_->FreeBuffer(uop_buffer_).IgnoreError();
  insn_buffer_ = uop_buffer_ = DeviceBuffer{};
  device_ = nullptr;
}

absl::StatusOr<RunStats> LoadedProgram::Run(absl::Duration timeout) const {
  if (device_ == nullptr) {
    return absl::FailedPreconditionError("program is not uploaded");
  }
  return device_->Run(insn_buffer_.phys_addr, insn_count_, timeout);
}

absl::StatusOr<RunStats> RunProgram(VtaDevice& device, const VtaConfig& config,
                                    const Program& program,
                                    absl::Duration timeout) {
  VTASERVE_ASSIGN_OR_RETURN(LoadedProgram lp,
                            LoadedProgram::Upload(device, config, program));
  return lp.Run(timeout);
}

}  // namespace vtaserve::vta
