#include "vta_backend/sim/sim_device.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <limits>
#include <thread>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "absl/strings/str_cat.h"
#include "engine/common/status_macros.h"

namespace vtaserve::vta::sim {
namespace {

using isa::AluInsn;
using isa::AluOpcode;
using isa::DepFlags;
using isa::FinishInsn;
using isa::GemmInsn;
using isa::Insn;
using isa::MemInsn;
using isa::MemoryType;
using isa::Opcode;

enum Module { kLoadModule = 0, kComputeModule = 1, kStoreModule = 2 };
// Token queues (vta-isa.md 5.2).
enum Queue { kL2C = 0, kC2L = 1, kC2S = 2, kS2C = 3 };
constexpr const char* kModuleNames[3] = {"load", "compute", "store"};
constexpr const char* kQueueNames[4] = {"load->compute", "compute->load",
                                        "compute->store", "store->compute"};

// ALU loop nests (defined with the ALU below).
void AluAny(const AluInsn& a, const isa::Uop* uops, int32_t* acc,
            uint8_t* tracks, int lanes);
#if defined(__x86_64__) || defined(__i386__)
void Alu16Avx2(const AluInsn& a, const isa::Uop* uops, int32_t* acc,
               uint8_t* tracks, int lanes);
#endif

absl::Status Bad(size_t index, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("VTA instruction ", index, ": ", what));
}

}  // namespace

struct SimDevice::Op {
  Insn insn;
  size_t index = 0;
  int module = kComputeModule;
  uint8_t* dram = nullptr;  // first DRAM byte of a LOAD/STORE with data
  uint64_t bus_bytes = 0;   // DRAM bytes moved
  uint64_t pad_elems = 0;   // padding elements written
  // LOAD INP_IM2COL: INP elements the gather writes (one per cycle, in
  // parallel with the bus transfer).
  uint64_t gather_elems = 0;
  bool nop = false;  // LOAD/STORE with x_size == 0
  int pops[2] = {0, 0};
  int npops = 0;
  int pushes[2] = {0, 0};
  int npushes = 0;
};

absl::StatusOr<std::unique_ptr<SimDevice>> SimDevice::Create(
    const VtaConfig& config, SimOptions options) {
  VTASERVE_ASSIGN_OR_RETURN(isa::IsaCodec codec, isa::IsaCodec::Create(config));
  return std::unique_ptr<SimDevice>(
      new SimDevice(config, std::move(codec), options));
}

SimDevice::SimDevice(const VtaConfig& config, isa::IsaCodec codec,
                     SimOptions options)
    : config_(config),
      codec_(std::move(codec)),
      options_(options),
      dram_(options.memory_bytes, options.max_alloc_bytes) {
  gemm_fn_ = SelectGemmKernel(config_, !options_.force_portable_kernels,
                              &kernel_name_);
  alu_fn_ = &AluAny;
#if defined(__x86_64__) || defined(__i386__)
  if (!options_.force_portable_kernels && __builtin_cpu_supports("avx2") &&
      config_.AccLanes() == 16) {
    alu_fn_ = &Alu16Avx2;
  }
#endif
  sram_.inp.assign(size_t{config_.InpDepth()} * config_.InpLanes(), 0);
  sram_.wgt.assign(size_t{config_.WgtDepth()} * config_.WgtLanes(), 0);
  sram_.acc.assign(size_t{config_.AccDepth()} * config_.AccLanes(), 0);
  sram_.out.assign(size_t{config_.AccDepth()} * config_.AccLanes(), 0);
  sram_.out_tracks.assign(config_.AccDepth(), 1);
  sram_.uops.assign(config_.UopDepth(), isa::Uop{});
}

absl::StatusOr<DeviceBuffer> SimDevice::AllocBuffer(size_t bytes) {
  absl::MutexLock lock(&mu_);
  return dram_.Alloc(bytes);
}

absl::Status SimDevice::FreeBuffer(const DeviceBuffer& buffer) {
  absl::MutexLock lock(&mu_);
  return dram_.Free(buffer.phys_addr);
}

absl::Status SimDevice::CopyToDevice(const DeviceBuffer& buffer, size_t offset,
                                     absl::Span<const uint8_t> src) {
  absl::MutexLock lock(&mu_);
  size_t size = 0;
  uint8_t* base = dram_.BufferAt(buffer.phys_addr, &size);
  if (base == nullptr) {
    return absl::InvalidArgumentError("CopyToDevice: not a live buffer");
  }
  if (offset > size || src.size() > size - offset) {
    return absl::InvalidArgumentError(
        absl::StrCat("CopyToDevice: [", offset, ", ", offset + src.size(),
                     ") outside the buffer of ", size, " bytes"));
  }
  if (!src.empty()) std::memcpy(base + offset, src.data(), src.size());
  return absl::OkStatus();
}

absl::Status SimDevice::CopyFromDevice(const DeviceBuffer& buffer,
                                       size_t offset, absl::Span<uint8_t> dst) {
  absl::MutexLock lock(&mu_);
  size_t size = 0;
  const uint8_t* base = dram_.BufferAt(buffer.phys_addr, &size);
  if (base == nullptr) {
    return absl::InvalidArgumentError("CopyFromDevice: not a live buffer");
  }
  if (offset > size || dst.size() > size - offset) {
    return absl::InvalidArgumentError(
        absl::StrCat("CopyFromDevice: [", offset, ", ", offset + dst.size(),
                     ") outside the buffer of ", size, " bytes"));
  }
  if (!dst.empty()) std::memcpy(dst.data(), base + offset, dst.size());
  return absl::OkStatus();
}

SimStats SimDevice::CumulativeStats() const {
  absl::MutexLock lock(&mu_);
  return cumulative_;
}

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

namespace {

// out[l] = low 8 bits of acc[l], l < lanes.
inline void NarrowAcc(const int32_t* acc, void* out, int lanes) {
  int l = 0;
#if defined(__x86_64__) || defined(__i386__)
  // SSE2: mask to 0..255, then two saturating packs that cannot saturate.
  const __m128i mask = _mm_set1_epi32(0xff);
  for (; l + 16 <= lanes; l += 16) {
    const __m128i* a = reinterpret_cast<const __m128i*>(acc + l);
    const __m128i a0 = _mm_and_si128(_mm_loadu_si128(a), mask);
    const __m128i a1 = _mm_and_si128(_mm_loadu_si128(a + 1), mask);
    const __m128i a2 = _mm_and_si128(_mm_loadu_si128(a + 2), mask);
    const __m128i a3 = _mm_and_si128(_mm_loadu_si128(a + 3), mask);
    _mm_storeu_si128(
        reinterpret_cast<__m128i*>(static_cast<uint8_t*>(out) + l),
        _mm_packus_epi16(_mm_packs_epi32(a0, a1), _mm_packs_epi32(a2, a3)));
  }
#endif
  for (; l < lanes; ++l)
    static_cast<uint8_t*>(out)[l] = static_cast<uint8_t>(acc[l]);
}

}  // namespace

void SimDevice::DetachOut(uint32_t elem) {
  if (!sram_.out_tracks[elem]) return;
  const int lanes = config_.AccLanes();
  NarrowAcc(&sram_.acc[size_t{elem} * lanes], &sram_.out[size_t{elem} * lanes],
            lanes);
  sram_.out_tracks[elem] = 0;
}

namespace {

// Geometry of a LOAD INP_IM2COL (isa::MemoryType::kInpIm2col).
struct Im2colGeometry {
  uint32_t kh, kw, channels, stride, blocks;
  uint64_t rows_in, row_span;  // source rows touched, bytes used per row
};

Im2colGeometry Im2colOf(const MemInsn& m, int block_in) {
  Im2colGeometry g;
  g.kh = m.y_pad_0 + 1;
  g.kw = m.y_pad_1 + 1;
  g.channels = m.x_pad_0 + 1;
  g.stride = m.x_pad_1 + 1;
  g.blocks = (g.kh * g.kw * g.channels + block_in - 1) / block_in;
  g.rows_in = (uint64_t{m.y_size} - 1) * g.stride + g.kh;
  g.row_span = ((uint64_t{m.x_size} - 1) * g.stride + g.kw) * g.channels;
  return g;
}

}  // namespace

absl::Status SimDevice::ValidateIm2colLoad(const MemInsn& m, size_t index,
                                           Op& op) {
  if (!config_.ext_im2col_load) {
    return Bad(index, "LOAD INP_IM2COL needs the ext_im2col_load extension");
  }
  if (m.x_size == 0) {
    op.nop = true;
    return absl::OkStatus();
  }
  if (m.y_size == 0) return Bad(index, "LOAD INP_IM2COL with y_size 0");
  const Im2colGeometry g = Im2colOf(m, config_.BlockIn());
  if (g.row_span > m.x_stride) {
    return Bad(index, "LOAD INP_IM2COL window row exceeds x_stride");
  }
  const uint64_t elems = uint64_t{g.blocks} * m.y_size * m.x_size;
  if (uint64_t{m.sram_base} + elems > config_.InpDepth()) {
    return Bad(index,
               absl::StrCat("LOAD INP_IM2COL SRAM range [", m.sram_base, ", ",
                            uint64_t{m.sram_base} + elems,
                            ") exceeds buffer depth ", config_.InpDepth()));
  }
  const uint64_t span = (g.rows_in - 1) * m.x_stride + g.row_span;
  op.dram = dram_.Translate(m.dram_base, span);
  if (op.dram == nullptr) {
    return Bad(index,
               absl::StrCat("DRAM range [0x", absl::Hex(m.dram_base), ", 0x",
                            absl::Hex(uint64_t{m.dram_base} + span),
                            ") is not inside one allocated buffer"));
  }
  // Each source row segment crosses the bus once; the gather writes one INP
  // element per cycle while it streams.
  op.bus_bytes = g.rows_in * g.row_span;
  op.gather_elems = elems;
  return absl::OkStatus();
}

void SimDevice::ExecIm2colLoad(const Op& op) {
  const MemInsn& m = std::get<MemInsn>(op.insn);
  const Im2colGeometry g = Im2colOf(m, config_.BlockIn());
  const int lanes = config_.InpLanes();
  const uint32_t pixels = m.y_size * m.x_size;
  const uint32_t k_real = g.kh * g.kw * g.channels;
  std::vector<int8_t> v(size_t{g.blocks} * lanes, 0);
  int16_t* inp = sram_.inp.data();
  for (uint32_t r = 0; r < m.y_size; ++r) {
    for (uint32_t x = 0; x < m.x_size; ++x) {
      uint32_t k = 0;
      for (uint32_t a = 0; a < g.kh; ++a) {
        const uint8_t* row =
            op.dram + (uint64_t{r} * g.stride + a) * m.x_stride;
        const uint8_t* src = row + uint64_t{x} * g.stride * g.channels;
        const uint32_t n = g.kw * g.channels;
        for (uint32_t t = 0; t < n; ++t) v[k + t] = static_cast<int8_t>(src[t]);
        k += n;
      }
      std::fill(v.begin() + k_real, v.end(), 0);
      const uint32_t p = r * m.x_size + x;
      for (uint32_t b = 0; b < g.blocks; ++b) {
        int16_t* dst =
            inp + (size_t{m.sram_base} + size_t{b} * pixels + p) * lanes;
        for (int l = 0; l < lanes; ++l) dst[l] = v[size_t{b} * lanes + l];
      }
    }
  }
}

namespace {

// DRAM [o][k] -> SRAM [k/2][o][k%2]: one 16-bit (k even, k odd) byte pair
// per (k/2, o), i.e. a transpose of the bo x (bi/2) matrix of byte pairs.
void InterleaveWeights(const uint8_t* src, int bi, int bo, int8_t* dst) {
#if defined(__x86_64__) || defined(__i386__)
  if (bi % 16 == 0 && bo % 8 == 0) {
    // 8x8 tiles of byte pairs: 8 rows (outputs) of 8 pairs, transposed with
    // the usual three rounds of unpacks.
    for (int o0 = 0; o0 < bo; o0 += 8) {
      for (int kp0 = 0; kp0 < bi / 2; kp0 += 8) {
        __m128i r[8];
        for (int i = 0; i < 8; ++i) {
          r[i] = _mm_loadu_si128(
              reinterpret_cast<const __m128i*>(src + (o0 + i) * bi + 2 * kp0));
        }
        const __m128i a0 = _mm_unpacklo_epi16(r[0], r[1]);
        const __m128i a1 = _mm_unpackhi_epi16(r[0], r[1]);
        const __m128i a2 = _mm_unpacklo_epi16(r[2], r[3]);
        const __m128i a3 = _mm_unpackhi_epi16(r[2], r[3]);
        const __m128i a4 = _mm_unpacklo_epi16(r[4], r[5]);
        const __m128i a5 = _mm_unpackhi_epi16(r[4], r[5]);
        const __m128i a6 = _mm_unpacklo_epi16(r[6], r[7]);
        const __m128i a7 = _mm_unpackhi_epi16(r[6], r[7]);
        const __m128i b0 = _mm_unpacklo_epi32(a0, a2);
        const __m128i b1 = _mm_unpackhi_epi32(a0, a2);
        const __m128i b2 = _mm_unpacklo_epi32(a1, a3);
        const __m128i b3 = _mm_unpackhi_epi32(a1, a3);
        const __m128i b4 = _mm_unpacklo_epi32(a4, a6);
        const __m128i b5 = _mm_unpackhi_epi32(a4, a6);
        const __m128i b6 = _mm_unpacklo_epi32(a5, a7);
        const __m128i b7 = _mm_unpackhi_epi32(a5, a7);
        const __m128i t[8] = {
            _mm_unpacklo_epi64(b0, b4), _mm_unpackhi_epi64(b0, b4),
            _mm_unpacklo_epi64(b1, b5), _mm_unpackhi_epi64(b1, b5),
            _mm_unpacklo_epi64(b2, b6), _mm_unpackhi_epi64(b2, b6),
            _mm_unpacklo_epi64(b3, b7), _mm_unpackhi_epi64(b3, b7)};
        for (int i = 0; i < 8; ++i) {
          _mm_storeu_si128(
              reinterpret_cast<__m128i*>(dst + ((kp0 + i) * bo + o0) * 2),
              t[i]);
        }
      }
    }
    return;
  }
#endif
  for (int o = 0; o < bo; ++o) {
    const uint8_t* row = src + o * bi;
    for (int kp = 0; kp < bi / 2; ++kp) {
      std::memcpy(dst + (static_cast<size_t>(kp) * bo + o) * 2, row + 2 * kp,
                  2);
    }
  }
}

}  // namespace

absl::Status SimDevice::ExecLoad(const Op& op) {
  const MemInsn& m = std::get<MemInsn>(op.insn);
  const uint32_t xt = m.x_pad_0 + m.x_size + m.x_pad_1;
  const uint32_t yt = m.y_pad_0 + m.y_size + m.y_pad_1;
  const size_t eb = isa::ElemBytes(config_, m.memory_type);
  // Row by row: fill(elem, n) for n padding elements from elem, and
  // copy(elem, src, n) for n data elements (consecutive in DRAM from src).
  auto walk = [&](auto&& fill, auto&& copy) {
    uint32_t elem = m.sram_base;
    for (uint32_t y = 0; y < yt; ++y, elem += xt) {
      if (y < m.y_pad_0 || y >= m.y_pad_0 + m.y_size) {
        fill(elem, xt);
        continue;
      }
      if (m.x_pad_0 > 0) fill(elem, m.x_pad_0);
      copy(elem + m.x_pad_0, op.dram + size_t{y - m.y_pad_0} * m.x_stride * eb,
           m.x_size);
      if (m.x_pad_1 > 0) fill(elem + m.x_pad_0 + m.x_size, m.x_pad_1);
    }
  };
  switch (m.memory_type) {
    case MemoryType::kInp: {
      const size_t lanes = config_.InpLanes();
      int16_t* inp = sram_.inp.data();
      walk([&](uint32_t e,
               uint32_t n) { std::fill_n(inp + e * lanes, n * lanes, 0); },
           [&](uint32_t e, const uint8_t* src, uint32_t n) {
             int16_t* dst = inp + e * lanes;
             const size_t count = n * lanes;
             for (size_t l = 0; l < count; ++l)
               dst[l] = static_cast<int8_t>(src[l]);
           });
      break;
    }
    case MemoryType::kWgt: {
      const int bi = config_.BlockIn(), bo = config_.BlockOut();
      const size_t lanes = config_.WgtLanes();
      int8_t* wgt = sram_.wgt.data();
      walk([&](uint32_t e,
               uint32_t n) { std::fill_n(wgt + e * lanes, n * lanes, 0); },
           [&](uint32_t e, const uint8_t* src, uint32_t n) {
             for (uint32_t i = 0; i < n; ++i) {
               InterleaveWeights(src + i * lanes, bi, bo,
                                 wgt + (e + i) * lanes);
             }
           });
      break;
    }
    case MemoryType::kAcc:
    case MemoryType::kAcc8Bit: {
      const size_t lanes = config_.AccLanes();
      int32_t* acc = sram_.acc.data();
      const bool narrow = m.memory_type == MemoryType::kAcc8Bit;
      walk(
          [&](uint32_t e, uint32_t n) {
            for (uint32_t i = 0; i < n; ++i) DetachOut(e + i);
            std::fill_n(acc + e * lanes, n * lanes, 0);
          },
          [&](uint32_t e, const uint8_t* src, uint32_t n) {
            for (uint32_t i = 0; i < n; ++i) DetachOut(e + i);
            int32_t* dst = acc + e * lanes;
            if (narrow) {
              for (size_t l = 0; l < n * lanes; ++l)
                dst[l] = static_cast<int8_t>(src[l]);
            } else {
              std::memcpy(dst, src, n * lanes * 4);  // little-endian host
            }
          });
      break;
    }
    case MemoryType::kUop: {
      for (uint32_t x = 0; x < m.x_size; ++x) {
        const uint8_t* s = op.dram + size_t{x} * 4;
        const uint32_t word = uint32_t{s[0]} | uint32_t{s[1]} << 8 |
                              uint32_t{s[2]} << 16 | uint32_t{s[3]} << 24;
        sram_.uops[m.sram_base + x] = codec_.DecodeUop(word);
      }
      break;
    }
    case MemoryType::kOut:
      return absl::InternalError("LOAD OUT passed validation");
    case MemoryType::kInpIm2col:
      ExecIm2colLoad(op);
      break;
  }
  return absl::OkStatus();
}

void SimDevice::ExecStore(const Op& op) {
  const MemInsn& m = std::get<MemInsn>(op.insn);
  const int lanes = config_.AccLanes();
  const size_t eb = config_.OutElemBytes();
  for (uint32_t r = 0; r < m.y_size; ++r) {
    for (uint32_t c = 0; c < m.x_size; ++c) {
      const uint32_t e = m.sram_base + r * m.x_size + c;
      uint8_t* dst = op.dram + (size_t{r} * m.x_stride + c) * eb;
      if (sram_.out_tracks[e]) {
        NarrowAcc(&sram_.acc[size_t{e} * lanes], dst, lanes);
      } else {
        std::memcpy(dst, &sram_.out[size_t{e} * lanes], lanes);
      }
    }
  }
}

namespace {

// Largest index a uop field reaches over the whole instruction (factors are
// unsigned, so the last iteration is the largest).
template <typename Field>
uint64_t MaxIndex(const std::vector<isa::Uop>& uops, uint32_t bgn, uint32_t end,
                  Field field, uint32_t iter_out, uint32_t f_out,
                  uint32_t iter_in, uint32_t f_in) {
  uint64_t m = 0;
  for (uint32_t u = bgn; u < end; ++u)
    m = std::max<uint64_t>(m, field(uops[u]));
  return m + uint64_t{iter_out - 1} * f_out + uint64_t{iter_in - 1} * f_in;
}

}  // namespace

// Pieces each thread's share of a split GEMM is cut into.
constexpr int kGemmPiecesPerThread = 4;
// Consecutive split GEMMs in which the other threads took less than a
// quarter of the pieces before splitting pauses, and for how many GEMMs
// (doubling, up to the maximum, while the misses go on).
constexpr int kSplitMissesBeforeBackoff = 3;
// A split GEMM slower than this fraction of the one-thread time is a miss.
constexpr double kSplitMinSpeedup = 0.8;
constexpr int kSplitBackoffMaxGemms = 1024;

absl::Status SimDevice::ExecGemm(const GemmInsn& g) {
  const auto& uops = sram_.uops;
  const uint64_t max_dst = MaxIndex(
      uops, g.uop_bgn, g.uop_end, [](const isa::Uop& u) { return u.dst_idx; },
      g.iter_out, g.dst_factor_out, g.iter_in, g.dst_factor_in);
  if (max_dst >= config_.AccDepth()) {
    return absl::InvalidArgumentError(absl::StrCat("GEMM accumulator index ",
                                                   max_dst, " exceeds depth ",
                                                   config_.AccDepth()));
  }
  const int acc_lanes = config_.AccLanes();
  if (g.reset) {
    for (uint32_t o = 0; o < g.iter_out; ++o) {
      for (uint32_t i = 0; i < g.iter_in; ++i) {
        for (uint32_t u = g.uop_bgn; u < g.uop_end; ++u) {
          const uint32_t a =
              uops[u].dst_idx + o * g.dst_factor_out + i * g.dst_factor_in;
          DetachOut(a);  // reset leaves OUT unchanged (Chisel)
          std::fill_n(&sram_.acc[size_t{a} * acc_lanes], acc_lanes, 0);
        }
      }
    }
    return absl::OkStatus();
  }
  const uint64_t max_src = MaxIndex(
      uops, g.uop_bgn, g.uop_end, [](const isa::Uop& u) { return u.src_idx; },
      g.iter_out, g.src_factor_out, g.iter_in, g.src_factor_in);
  const uint64_t max_wgt = MaxIndex(
      uops, g.uop_bgn, g.uop_end, [](const isa::Uop& u) { return u.wgt_idx; },
      g.iter_out, g.wgt_factor_out, g.iter_in, g.wgt_factor_in);
  if (max_src >= config_.InpDepth()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "GEMM input index ", max_src, " exceeds depth ", config_.InpDepth()));
  }
  if (max_wgt >= config_.WgtDepth()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "GEMM weight index ", max_wgt, " exceeds depth ", config_.WgtDepth()));
  }
  GemmCall c;
  c.acc = sram_.acc.data();
  c.out_tracks = sram_.out_tracks.data();
  c.inp = sram_.inp.data();
  c.wgt = sram_.wgt.data();
  c.uops = uops.data();
  c.uop_bgn = g.uop_bgn;
  c.uop_end = g.uop_end;
  c.iter_out = g.iter_out;
  c.iter_in = g.iter_in;
  c.dst_out = g.dst_factor_out;
  c.dst_in = g.dst_factor_in;
  c.src_out = g.src_factor_out;
  c.src_in = g.src_factor_in;
  c.wgt_out = g.wgt_factor_out;
  c.wgt_in = g.wgt_factor_in;
  c.batch = config_.Batch();
  c.block_in = config_.BlockIn();
  c.block_out = config_.BlockOut();
  engine::ParallelRunner* runner = options_.runner.get();
  const uint64_t work =
      uint64_t{g.iter_out} * g.iter_in * (g.uop_end - g.uop_bgn);
  const int threads = runner == nullptr ? 1 : runner->NumThreads();
  const bool eligible = threads > 1 && work >= options_.parallel_min_uops;
  bool split = eligible;
  if (split && split_backoff_ > 0) {
    --split_backoff_;
    split = false;
  }
  const auto t0 = std::chrono::steady_clock::now();
  if (!split) {
    gemm_fn_(c);
    if (eligible) {
      // Single-thread speed of eligible GEMMs, the yardstick for splits.
      const double ns = std::chrono::duration<double, std::nano>(
                            std::chrono::steady_clock::now() - t0)
                            .count() /
                        work;
      ns_per_uop_one_thread_ = ns_per_uop_one_thread_ > 0
                                   ? 0.9 * ns_per_uop_one_thread_ + 0.1 * ns
                                   : ns;
    }
    return absl::OkStatus();
  }
  // Disjoint destination ranges (the compiler's GEMMs spread their work
  // evenly over a dense ACC range), a few per thread, claimed one at a
  // time: a thread that starts late or is preempted (the host may be
  // shared) holds up at most one small piece.
  uint64_t min_dst = std::numeric_limits<uint64_t>::max();
  for (uint32_t u = g.uop_bgn; u < g.uop_end; ++u) {
    min_dst = std::min<uint64_t>(min_dst, uops[u].dst_idx);
  }
  const uint64_t span = max_dst + 1 - min_dst;
  const uint64_t pieces =
      std::min<uint64_t>(uint64_t{kGemmPiecesPerThread} * threads, span);
  std::atomic<uint64_t> next{0}, helped{0};
  const std::thread::id caller = std::this_thread::get_id();
  runner->ParallelFor(threads, [&](int64_t, int64_t) {
    uint64_t mine = 0;
    for (uint64_t p = next.fetch_add(1); p < pieces; p = next.fetch_add(1)) {
      GemmCall part = c;
      part.dst_lo = static_cast<uint32_t>(min_dst + span * p / pieces);
      part.dst_hi = static_cast<uint32_t>(min_dst + span * (p + 1) / pieces);
      gemm_fn_(part);
      ++mine;
    }
    if (std::this_thread::get_id() != caller) helped += mine;
  });
  // A split that did not pay off: the other threads took under a quarter
  // of the pieces (their cores are busy), or the whole took nearly as long
  // as one thread would have (a helper was preempted mid-piece). After a
  // few in a row, run the next GEMMs on this thread, then try again.
  const double ns = std::chrono::duration<double, std::nano>(
                        std::chrono::steady_clock::now() - t0)
                        .count() /
                    work;
  const bool slow = ns_per_uop_one_thread_ > 0 &&
                    ns > kSplitMinSpeedup * ns_per_uop_one_thread_;
  if (helped.load() * 4 < pieces || slow) {
    if (++split_misses_ >= kSplitMissesBeforeBackoff) {
      // Longer pauses while the cores stay busy.
      split_misses_ = 0;
      split_backoff_ = split_backoff_length_;
      split_backoff_length_ =
          std::min(2 * split_backoff_length_, kSplitBackoffMaxGemms);
    }
  } else {
    split_misses_ = 0;
    split_backoff_length_ = kSplitBackoffGemms;
  }
  return absl::OkStatus();
}

namespace {

// SHR by b: the low 5 bits of b as a signed amount in -16..15; negative
// shifts left (HLS ap_int semantics, vta-isa.md 4.5). Equal to fsim for
// b in -16..15.
inline int32_t ShiftRight(int32_t a, int32_t b) {
  const int32_t sh = ((b & 31) ^ 16) - 16;
  if (sh >= 0) return a >> sh;
  return static_cast<int32_t>(static_cast<uint32_t>(a) << (-sh));
}

template <AluOpcode kOp>
inline int32_t AluApply(int32_t a, int32_t b) {
  if constexpr (kOp == AluOpcode::kMin) return a < b ? a : b;
  if constexpr (kOp == AluOpcode::kMax) return a > b ? a : b;
  if constexpr (kOp == AluOpcode::kAdd) {
    return static_cast<int32_t>(static_cast<uint32_t>(a) +
                                static_cast<uint32_t>(b));
  }
  if constexpr (kOp == AluOpcode::kShr) return ShiftRight(a, b);
  if constexpr (kOp == AluOpcode::kMul) {
    return static_cast<int32_t>(static_cast<uint32_t>(a) *
                                static_cast<uint32_t>(b));
  }
  return a;
}

// The ALU loop nest in hardware order (an ALU reads ACC, so order matters
// when sources and destinations overlap). kLanes: ACC lanes when known at
// compile time, else 0 (`lanes` at run time). `op(x, y)` updates the lanes
// of one destination element x; y is the source element (null with an
// immediate).
template <int kLanes, typename Op>
__attribute__((always_inline)) inline void AluWalk(const AluInsn& a,
                                                   const isa::Uop* uops,
                                                   int32_t* acc,
                                                   uint8_t* tracks,
                                                   int run_lanes, Op op) {
  const size_t lanes = kLanes > 0 ? kLanes : run_lanes;
  // Locals: the uint8_t stores below may alias anything reached through `a`.
  const uint32_t iter_out = a.iter_out, iter_in = a.iter_in;
  const uint32_t bgn = a.uop_bgn, end = a.uop_end;
  const uint32_t dst_out = a.dst_factor_out, dst_in = a.dst_factor_in;
  const uint32_t src_out = a.src_factor_out, src_in = a.src_factor_in;
  const bool use_imm = a.use_imm;
  for (uint32_t o = 0; o < iter_out; ++o) {
    for (uint32_t i = 0; i < iter_in; ++i) {
      for (uint32_t u = bgn; u < end; ++u) {
        const uint32_t d = uops[u].dst_idx + o * dst_out + i * dst_in;
        const int32_t* y = nullptr;
        if (!use_imm)
          y = acc + (uops[u].src_idx + o * src_out + i * src_in) * lanes;
        op(acc + d * lanes, y, lanes);
        tracks[d] = 1;
      }
    }
  }
}

template <int kLanes>
__attribute__((always_inline)) inline void AluDispatch(const AluInsn& a,
                                                       const isa::Uop* uops,
                                                       int32_t* acc,
                                                       uint8_t* tracks,
                                                       int run_lanes) {
  auto walk = [&](auto apply) {
    if (a.use_imm) {
      const int32_t imm = a.imm;
      AluWalk<kLanes>(a, uops, acc, tracks, run_lanes,
                      [&](int32_t* x, const int32_t*, size_t n) {
                        for (size_t l = 0; l < n; ++l) x[l] = apply(x[l], imm);
                      });
    } else {
      AluWalk<kLanes>(a, uops, acc, tracks, run_lanes,
                      [&](int32_t* x, const int32_t* y, size_t n) {
                        for (size_t l = 0; l < n; ++l) x[l] = apply(x[l], y[l]);
                      });
    }
  };
  switch (a.alu_opcode) {
    case AluOpcode::kMin:
      walk(
          [](int32_t x, int32_t y) { return AluApply<AluOpcode::kMin>(x, y); });
      break;
    case AluOpcode::kMax:
      walk(
          [](int32_t x, int32_t y) { return AluApply<AluOpcode::kMax>(x, y); });
      break;
    case AluOpcode::kAdd:
      walk(
          [](int32_t x, int32_t y) { return AluApply<AluOpcode::kAdd>(x, y); });
      break;
    case AluOpcode::kMul:
      walk(
          [](int32_t x, int32_t y) { return AluApply<AluOpcode::kMul>(x, y); });
      break;
    case AluOpcode::kShr:
      if (a.use_imm) {
        // One shift amount for the whole instruction: a plain vector shift.
        const int32_t sh = ((a.imm & 31) ^ 16) - 16;
        if (sh >= 0) {
          AluWalk<kLanes>(a, uops, acc, tracks, run_lanes,
                          [sh](int32_t* x, const int32_t*, size_t n) {
                            for (size_t l = 0; l < n; ++l) x[l] >>= sh;
                          });
        } else {
          AluWalk<kLanes>(a, uops, acc, tracks, run_lanes,
                          [sh](int32_t* x, const int32_t*, size_t n) {
                            for (size_t l = 0; l < n; ++l) {
                              x[l] = static_cast<int32_t>(
                                  static_cast<uint32_t>(x[l]) << (-sh));
                            }
                          });
        }
      } else {
        walk([](int32_t x, int32_t y) {
          return AluApply<AluOpcode::kShr>(x, y);
        });
      }
      break;
  }
}

void AluAny(const AluInsn& a, const isa::Uop* uops, int32_t* acc,
            uint8_t* tracks, int lanes) {
  AluDispatch<0>(a, uops, acc, tracks, lanes);
}

#if defined(__x86_64__) || defined(__i386__)
// 16 ACC lanes (BATCH x BLOCK_OUT = 1 x 16) with AVX2: each element is two
// vectors. Op(x, y) -> new x, 8 lanes.
#define VTASERVE_SIM_AVX2 __attribute__((target("avx2"), always_inline))
struct VecMin {
  VTASERVE_SIM_AVX2 __m256i operator()(__m256i x, __m256i y) const {
    return _mm256_min_epi32(x, y);
  }
};
struct VecMax {
  VTASERVE_SIM_AVX2 __m256i operator()(__m256i x, __m256i y) const {
    return _mm256_max_epi32(x, y);
  }
};
struct VecAdd {  // wraps, as the hardware
  VTASERVE_SIM_AVX2 __m256i operator()(__m256i x, __m256i y) const {
    return _mm256_add_epi32(x, y);
  }
};
struct VecMul {  // low 32 bits, as the hardware
  VTASERVE_SIM_AVX2 __m256i operator()(__m256i x, __m256i y) const {
    return _mm256_mullo_epi32(x, y);
  }
};
// SHR by a per-lane amount: ShiftRight() lane by lane.
struct VecShr {
  VTASERVE_SIM_AVX2 __m256i operator()(__m256i x, __m256i y) const {
    const __m256i sh = _mm256_sub_epi32(
        _mm256_xor_si256(_mm256_and_si256(y, _mm256_set1_epi32(31)),
                         _mm256_set1_epi32(16)),
        _mm256_set1_epi32(16));
    const __m256i right =
        _mm256_srav_epi32(x, sh);  // sh < 0 lanes replaced below
    const __m256i left =
        _mm256_sllv_epi32(x, _mm256_sub_epi32(_mm256_setzero_si256(), sh));
    return _mm256_blendv_epi8(right, left,
                              _mm256_cmpgt_epi32(_mm256_setzero_si256(), sh));
  }
};
// SHR by one immediate amount (already decoded: right >= 0, left < 0).
struct VecSra {
  __m128i count;
  VTASERVE_SIM_AVX2 __m256i operator()(__m256i x, __m256i) const {
    return _mm256_sra_epi32(x, count);
  }
};
struct VecSll {
  __m128i count;
  VTASERVE_SIM_AVX2 __m256i operator()(__m256i x, __m256i) const {
    return _mm256_sll_epi32(x, count);
  }
};

template <typename Op>
VTASERVE_SIM_AVX2 inline void Alu16Walk(const AluInsn& a, const isa::Uop* uops,
                                        int32_t* acc, uint8_t* tracks, Op op) {
  const uint32_t iter_out = a.iter_out, iter_in = a.iter_in;
  const uint32_t bgn = a.uop_bgn, end = a.uop_end;
  const uint32_t dst_out = a.dst_factor_out, dst_in = a.dst_factor_in;
  const uint32_t src_out = a.src_factor_out, src_in = a.src_factor_in;
  const bool use_imm = a.use_imm;
  const __m256i imm = _mm256_set1_epi32(a.imm);
  for (uint32_t o = 0; o < iter_out; ++o) {
    for (uint32_t i = 0; i < iter_in; ++i) {
      for (uint32_t u = bgn; u < end; ++u) {
        const uint32_t d = uops[u].dst_idx + o * dst_out + i * dst_in;
        __m256i* x = reinterpret_cast<__m256i*>(acc + size_t{d} * 16);
        __m256i y0 = imm, y1 = imm;
        if (!use_imm) {
          const __m256i* y = reinterpret_cast<const __m256i*>(
              acc + size_t{uops[u].src_idx + o * src_out + i * src_in} * 16);
          y0 = _mm256_loadu_si256(y);
          y1 = _mm256_loadu_si256(y + 1);
        }
        const __m256i x0 = _mm256_loadu_si256(x),
                      x1 = _mm256_loadu_si256(x + 1);
        _mm256_storeu_si256(x, op(x0, y0));
        _mm256_storeu_si256(x + 1, op(x1, y1));
        tracks[d] = 1;
      }
    }
  }
}

__attribute__((target("avx2"))) void Alu16Avx2(const AluInsn& a,
                                               const isa::Uop* uops,
                                               int32_t* acc, uint8_t* tracks,
                                               int) {
  switch (a.alu_opcode) {
    case AluOpcode::kMin:
      Alu16Walk(a, uops, acc, tracks, VecMin{});
      break;
    case AluOpcode::kMax:
      Alu16Walk(a, uops, acc, tracks, VecMax{});
      break;
    case AluOpcode::kAdd:
      Alu16Walk(a, uops, acc, tracks, VecAdd{});
      break;
    case AluOpcode::kMul:
      Alu16Walk(a, uops, acc, tracks, VecMul{});
      break;
    case AluOpcode::kShr:
      if (a.use_imm) {
        const int32_t sh = ((a.imm & 31) ^ 16) - 16;
        if (sh >= 0) {
          Alu16Walk(a, uops, acc, tracks, VecSra{_mm_cvtsi32_si128(sh)});
        } else {
          Alu16Walk(a, uops, acc, tracks, VecSll{_mm_cvtsi32_si128(-sh)});
        }
      } else {
        Alu16Walk(a, uops, acc, tracks, VecShr{});
      }
      break;
  }
}
#undef VTASERVE_SIM_AVX2
#endif

}  // namespace

absl::Status SimDevice::ExecAlu(const AluInsn& a) {
  const auto& uops = sram_.uops;
  const uint64_t max_dst = MaxIndex(
      uops, a.uop_bgn, a.uop_end, [](const isa::Uop& u) { return u.dst_idx; },
      a.iter_out, a.dst_factor_out, a.iter_in, a.dst_factor_in);
  if (max_dst >= config_.AccDepth()) {
    return absl::InvalidArgumentError(absl::StrCat("ALU destination index ",
                                                   max_dst, " exceeds depth ",
                                                   config_.AccDepth()));
  }
  if (!a.use_imm) {
    const uint64_t max_src = MaxIndex(
        uops, a.uop_bgn, a.uop_end, [](const isa::Uop& u) { return u.src_idx; },
        a.iter_out, a.src_factor_out, a.iter_in, a.src_factor_in);
    if (max_src >= config_.AccDepth()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ALU source index ", max_src, " exceeds depth ", config_.AccDepth()));
    }
  }
  int32_t* acc = sram_.acc.data();
  uint8_t* tracks = sram_.out_tracks.data();
  const int lanes = config_.AccLanes();
  alu_fn_(a, uops.data(), acc, tracks, lanes);
  return absl::OkStatus();
}

absl::Status SimDevice::Execute(const Op& op, SimStats& stats) {
  if (const auto* m = std::get_if<MemInsn>(&op.insn)) {
    if (op.nop) {
      ++stats.nop_count;
      return absl::OkStatus();
    }
    const uint64_t n = uint64_t{m->x_size} * m->y_size;
    // The im2col extension's traffic counts as INP traffic.
    const MemoryType counted = m->memory_type == MemoryType::kInpIm2col
                                   ? MemoryType::kInp
                                   : m->memory_type;
    stats.dram_bytes_by_type[static_cast<int>(counted)] += op.bus_bytes;
    if (m->opcode == Opcode::kStore) {
      ++stats.store_count;
      stats.out_store_nbytes += n * config_.OutElemBytes();
      ExecStore(op);
      return absl::OkStatus();
    }
    ++stats.load_count;
    switch (m->memory_type) {
      case MemoryType::kInp:
        stats.inp_load_nbytes += n * config_.InpElemBytes();
        break;
      case MemoryType::kWgt:
        stats.wgt_load_nbytes += n * config_.WgtElemBytes();
        break;
      case MemoryType::kAcc:
      case MemoryType::kAcc8Bit:  // fsim counts ACC bytes for both
        stats.acc_load_nbytes += n * config_.AccElemBytes();
        break;
      case MemoryType::kUop:
        stats.uop_load_nbytes += n * 4;
        break;
      case MemoryType::kOut:
        break;
      case MemoryType::kInpIm2col:
        stats.inp_load_nbytes += op.bus_bytes;
        break;
    }
    return ExecLoad(op);
  }
  if (const auto* g = std::get_if<GemmInsn>(&op.insn)) {
    ++stats.gemm_count;
    if (!g->reset) {
      stats.gemm_counter +=
          uint64_t{g->iter_out} * g->iter_in * (g->uop_end - g->uop_bgn);
    }
    return ExecGemm(*g);
  }
  if (const auto* a = std::get_if<AluInsn>(&op.insn)) {
    ++stats.alu_count;
    stats.alu_counter +=
        uint64_t{a->iter_out} * a->iter_in * (a->uop_end - a->uop_bgn);
    return ExecAlu(*a);
  }
  ++stats.finish_count;
  return absl::OkStatus();
}

absl::StatusOr<RunStats> SimDevice::Run(uint32_t insn_phys_addr,
                                        uint32_t insn_count,
                                        absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  VTASERVE_ASSIGN_OR_RETURN(std::vector<Op> ops,
                            DecodeAndValidate(insn_phys_addr, insn_count));
  const VtaTiming& t = config_.timing;
  const uint64_t bus_bytes = config_.BusBytes();
  const uint64_t fetch_beats =
      (VtaConfig::kInsnBytes + bus_bytes - 1) / bus_bytes;
  uint64_t timeout_cycles = std::numeric_limits<uint64_t>::max();
  if (timeout != absl::InfiniteDuration()) {
    const double c = absl::ToDoubleSeconds(timeout) * config_.clock_mhz * 1e6;
    timeout_cycles =
        c <= 0 ? 0 : (c >= 1.8e19 ? timeout_cycles : static_cast<uint64_t>(c));
  }

  std::vector<uint32_t> lists[3];
  for (const Op& op : ops)
    lists[op.module].push_back(static_cast<uint32_t>(op.index));
  size_t pc[3] = {0, 0, 0};
  uint64_t free_at[3] = {0, 0, 0};
  uint64_t bus_free[3] = {0, 0, 0};  // [0] only when the bus is shared
  std::deque<uint64_t> tokens[4];    // availability time of each queued token
  // Pop time of every token popped so far and number pushed, per queue: the
  // k-th push into a full queue waits for the (k - depth)-th pop.
  std::vector<uint64_t> pop_times[4];
  uint64_t pushed[4] = {0, 0, 0, 0};
  const size_t queue_depth = static_cast<size_t>(config_.dep_queue_depth);
  SimStats stats;
  stats.insn_count = insn_count;
  stats.insn_fetch_bytes = uint64_t{insn_count} * VtaConfig::kInsnBytes;
  uint64_t end_time = 0;

  for (;;) {
    int best = -1;
    uint64_t best_start = 0, best_ready = 0;
    for (int m = 0; m < 3; ++m) {
      if (pc[m] >= lists[m].size()) continue;
      const Op& op = ops[lists[m][pc[m]]];
      bool ready = true;
      for (int p = 0; p < op.npops; ++p) ready &= !tokens[op.pops[p]].empty();
      for (int p = 0; p < op.npushes; ++p) {
        ready &= tokens[op.pushes[p]].size() < queue_depth;
      }
      if (!ready) continue;
      const uint64_t dispatch = t.fetch_latency + (op.index + 1) * fetch_beats;
      const uint64_t ready_at = std::max(free_at[m], dispatch);
      uint64_t start = ready_at;
      for (int p = 0; p < op.npops; ++p) {
        start = std::max(start, tokens[op.pops[p]].front());
      }
      for (int p = 0; p < op.npushes; ++p) {
        const int q = op.pushes[p];
        if (pushed[q] >= queue_depth) {
          start = std::max(start, pop_times[q][pushed[q] - queue_depth]);
        }
      }
      if (best < 0 || start < best_start ||
          (start == best_start &&
           op.index < ops[lists[best][pc[best]]].index)) {
        best = m;
        best_start = start;
        best_ready = ready_at;
      }
    }
    if (best < 0) break;
    const Op& op = ops[lists[best][pc[best]]];
    const uint64_t start = best_start;

    // Cost of the instruction.
    uint64_t end = start;
    uint64_t* bus = t.shared_dram_bus ? &bus_free[0] : &bus_free[best];
    uint64_t new_bus = *bus;
    if (const auto* g = std::get_if<GemmInsn>(&op.insn)) {
      const uint64_t n =
          uint64_t{g->iter_out} * g->iter_in * (g->uop_end - g->uop_bgn);
      end = start + n * t.gemm_cycles_per_uop + t.gemm_latency;
    } else if (const auto* a = std::get_if<AluInsn>(&op.insn)) {
      const uint64_t n =
          uint64_t{a->iter_out} * a->iter_in * (a->uop_end - a->uop_bgn);
      end = start +
            n * (a->use_imm ? t.alu_imm_cycles_per_uop
                            : t.alu_tensor_cycles_per_uop) +
            t.alu_latency;
    } else if (std::holds_alternative<MemInsn>(op.insn) && !op.nop) {
      const uint64_t beats = (op.bus_bytes + bus_bytes - 1) / bus_bytes;
      const uint64_t xfer = std::max(start + t.mem_request_latency, *bus);
      new_bus = xfer + beats;
      end = new_bus + op.pad_elems * t.pad_cycles_per_element;
      if (op.gather_elems > beats) end = xfer + op.gather_elems;
    } else {
      end = start + t.nop_cycles;
    }
    if (end > timeout_cycles) {
      return absl::DeadlineExceededError(absl::StrCat(
          "VTA run exceeded its timeout of ", absl::FormatDuration(timeout),
          " (", timeout_cycles, " cycles) at instruction ", op.index));
    }
    absl::Status s = Execute(op, stats);
    if (!s.ok()) {
      return absl::Status(
          s.code(), absl::StrCat("VTA instruction ", op.index, " (",
                                 isa::ToString(op.insn), "): ", s.message()));
    }
    *bus = new_bus;
    const uint64_t busy = end - start;
    const uint64_t stall = start - best_ready;
    switch (best) {
      case kLoadModule:
        stats.load_busy_cycles += busy;
        stats.load_stall_cycles += stall;
        break;
      case kComputeModule:
        stats.compute_busy_cycles += busy;
        stats.compute_stall_cycles += stall;
        break;
      default:
        stats.store_busy_cycles += busy;
        stats.store_stall_cycles += stall;
    }
    if (std::holds_alternative<GemmInsn>(op.insn)) stats.gemm_cycles += busy;
    if (std::holds_alternative<AluInsn>(op.insn)) stats.alu_cycles += busy;
    for (int p = 0; p < op.npops; ++p) {
      tokens[op.pops[p]].pop_front();
      pop_times[op.pops[p]].push_back(start);
    }
    for (int p = 0; p < op.npushes; ++p) {
      tokens[op.pushes[p]].push_back(end);
      ++pushed[op.pushes[p]];
    }
    free_at[best] = end;
    end_time = std::max(end_time, end);
    ++pc[best];
  }

  std::string blocked;
  for (int m = 0; m < 3; ++m) {
    if (pc[m] >= lists[m].size()) continue;
    const Op& op = ops[lists[m][pc[m]]];
    std::string waits;
    for (int p = 0; p < op.npops; ++p) {
      if (tokens[op.pops[p]].empty()) {
        absl::StrAppend(&waits, " pop ", kQueueNames[op.pops[p]]);
      }
    }
    for (int p = 0; p < op.npushes; ++p) {
      if (tokens[op.pushes[p]].size() >= queue_depth) {
        absl::StrAppend(&waits, " push into full ", kQueueNames[op.pushes[p]]);
      }
    }
    absl::StrAppend(&blocked, blocked.empty() ? "" : "; ", kModuleNames[m],
                    " module at instruction ", op.index, " waits for", waits);
  }
  if (!blocked.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("VTA instruction stream deadlocks: ", blocked));
  }
  for (const auto& q : tokens) stats.leftover_tokens += q.size();
  stats.cycles_total = end_time;
  cumulative_ += stats;
  RunStats r;
  r.cycles = end_time;
  r.device_seconds = static_cast<double>(end_time) / (config_.clock_mhz * 1e6);
  r.sim = stats;
  return r;
}

}  // namespace vtaserve::vta::sim
