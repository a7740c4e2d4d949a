#include "vta_backend/compiler/layer_lowering.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "engine/common/status_macros.h"

namespace vtaserve::vta::compiler {
namespace {

using isa::AluOpcode;
using isa::MemoryType;
using isa::Stage;
using isa::Uop;

constexpr uint32_t kMax16 = 0xffff;
constexpr int kMaxImm = 32767;

int CeilDiv(int a, int b) { return (a + b - 1) / b; }

// Distinct chunk sizes ceil(n / k) for k = 1..n, largest first.
std::vector<int> ChunkSizes(int n) {
  std::vector<int> out;
  for (int k = 1; k <= n; ++k) {
    const int c = CeilDiv(n, k);
    if (out.empty() || out.back() != c) out.push_back(c);
  }
  return out;
}

// ---- SRAM partition shared by planner and emitter ----
struct SramSplit {
  uint32_t inp_half = 0;
  uint32_t wgt_half = 0;  // streaming weights
  uint32_t acc_half = 0;
  uint32_t acc_reserved_base = 0;  // bias / constants live at [base, depth)
};

SramSplit SplitSram(const VtaConfig& c, uint32_t acc_reserved) {
  SramSplit s;
  s.inp_half = c.InpDepth() / 2;
  s.wgt_half = c.WgtDepth() / 2;
  s.acc_reserved_base = c.AccDepth() - acc_reserved;
  s.acc_half = s.acc_reserved_base / 2;
  return s;
}

// ---- analytic timing (mirrors the simulator's per-instruction costs) ----
struct CostModel {
  const VtaConfig& c;
  uint64_t Mem(uint64_t bytes, uint64_t pad = 0) const {
    const uint64_t bus = c.BusBytes();
    return c.timing.mem_request_latency + (bytes + bus - 1) / bus +
           pad * c.timing.pad_cycles_per_element;
  }
  uint64_t Gemm(uint64_t n) const {
    return n * c.timing.gemm_cycles_per_uop + c.timing.gemm_latency;
  }
  uint64_t AluImm(uint64_t n) const {
    return n * c.timing.alu_imm_cycles_per_uop + c.timing.alu_latency;
  }
  uint64_t AluTensor(uint64_t n) const {
    return n * c.timing.alu_tensor_cycles_per_uop + c.timing.alu_latency;
  }
};

// A double-buffered pipeline of steps (load k -> compute k) grouped in tiles
// (compute of a tile's last step -> store of the tile).
struct PipelineModel {
  uint64_t load_free = 0, comp_free = 0, store_free = 0;
  std::vector<uint64_t> comp_end, store_end;
  uint64_t Finish() const {
    return std::max({load_free, comp_free, store_free});
  }
};

// ---- conv geometry helpers ----
struct ConvShape {
  int co_n, h_n, w_n, ci_n;
};

int InRows(const ConvLayer& l, int h_n) { return (h_n - 1) * l.sh + l.kh; }
int InCols(const ConvLayer& l, int w_n) { return (w_n - 1) * l.sw + l.kw; }
bool FullWidth(const ConvLayer& l, int w_t) { return w_t == l.out.w; }
int Pitch(const ConvLayer& l, int w_t) {
  return FullWidth(l, w_t) ? l.in.PaddedW() : InCols(l, w_t);
}
bool StandardKernel(int co_n, int h_n) { return co_n * h_n >= 3; }
int KernelUops(const ConvLayer& l, const ConvShape& s) {
  const int base = s.ci_n * l.kh * s.co_n * s.h_n;
  return StandardKernel(s.co_n, s.h_n) ? base : base * s.w_n;
}

// Every edge-shape combination of a tiling.
std::vector<ConvShape> EdgeShapes(const ConvLayer& l, const ConvTiling& t) {
  auto sizes = [](int total, int tile) {
    std::vector<int> v = {std::min(total, tile)};
    if (total % tile != 0 && total > tile) v.push_back(total % tile);
    return v;
  };
  std::vector<ConvShape> out;
  for (int co : sizes(l.out.blocks, t.co_t)) {
    for (int h : sizes(l.out.h, t.h_t)) {
      for (int w : sizes(l.out.w, t.w_t)) {
        for (int ci : sizes(l.in.blocks, t.ci_t)) out.push_back({co, h, w, ci});
      }
    }
  }
  return out;
}

// SRAM / field feasibility of a conv tiling.
bool ConvTilingFits(const VtaConfig& c, const ConvLayer& l,
                    const ConvTiling& t) {
  const SramSplit s = SplitSram(c, l.out.blocks);
  const int kk = l.kh * l.kw;
  const int pitch = Pitch(l, t.w_t);
  if (uint64_t{1} * t.ci_t * InRows(l, t.h_t) * pitch > s.inp_half)
    return false;
  if (uint64_t{1} * t.co_t * t.h_t * t.w_t > s.acc_half) return false;
  if (t.wgt_resident) {
    if (t.ci_t != l.in.blocks) return false;
    if (uint64_t{1} * l.out.blocks * l.in.blocks * kk > c.WgtDepth())
      return false;
  } else {
    if (uint64_t{1} * t.co_t * t.ci_t * kk > s.wgt_half) return false;
    if (uint64_t{1} * l.in.blocks * kk > kMax16) return false;
  }
  if (l.gather_kh > 0 && (t.ci_t != l.in.blocks || l.kh != 1 || l.kw != 1 ||
                          l.gather_row_bytes > static_cast<int>(kMax16))) {
    return false;  // LOAD INP_IM2COL fills every block of whole rows
  }
  if (pitch > static_cast<int>(kMax16) ||
      l.in.PaddedW() > static_cast<int>(kMax16) ||
      l.out.PaddedW() > static_cast<int>(kMax16)) {
    return false;
  }
  for (const ConvShape& e : EdgeShapes(l, t)) {
    if (e.co_n * e.h_n * e.w_n < 3) return false;  // pipeline hazard (4.7)
    if (static_cast<uint32_t>(KernelUops(l, e)) > c.UopDepth() / 8)
      return false;
  }
  return true;
}

bool MergedInpLoad(const ConvLayer& l, int w_t, int h_n) {
  return FullWidth(l, w_t) && l.in.PlaneElems() <= kMax16 &&
         int64_t{InRows(l, h_n)} * l.in.PaddedW() <= kMax16;
}

bool MergedStore(const ConvLayer& l, int h_n, int w_n) {
  return l.out.border == 0 && w_n == l.out.w && h_n == l.out.h &&
         l.out.PlaneElems() <= kMax16;
}

// Number of SHR instructions of the epilogue of output blocks [co0, co0+n).
struct ShrOp {
  int first_block, num_blocks;
  int16_t amount;
};
std::vector<ShrOp> ShiftOps(const std::vector<int32_t>& shifts, int co0,
                            int n) {
  std::vector<ShrOp> ops;
  int b = 0;
  while (b < n) {
    int e = b + 1;
    while (e < n && shifts[co0 + e] == shifts[co0 + b]) ++e;
    int32_t s = shifts[co0 + b];
    while (s != 0) {
      const int32_t step = s > 15 ? 15 : s;
      ops.push_back({b, e - b, static_cast<int16_t>(step)});
      s -= step;
    }
    b = e;
  }
  return ops;
}

// Estimated cycles of a conv tiling (walks every step of the schedule).
uint64_t EstimateConv(const VtaConfig& c, const ConvLayer& l,
                      const ConvTiling& t) {
  const CostModel m{c};
  const int kk = l.kh * l.kw;
  const uint64_t ib = c.InpElemBytes(), wb = c.WgtElemBytes(),
                 ob = c.OutElemBytes();
  uint64_t load_free = 0, comp_free = 0, store_free = 0, bus_free = 0;
  std::vector<uint64_t> comp_done;   // per step
  std::vector<uint64_t> store_done;  // per tile
  uint64_t insns = 2;
  // Prologue: bias (compute) and resident weights (load).
  comp_free =
      l.bias_in_gemm
          ? 0
          : m.Mem(static_cast<uint64_t>(l.out.blocks) * c.AccElemBytes());
  bus_free = comp_free;
  if (t.wgt_resident) {
    load_free =
        m.Mem(static_cast<uint64_t>(l.out.blocks) * l.in.blocks * kk * wb);
    bus_free += load_free - c.timing.mem_request_latency;
  }
  uint64_t kernel_uops_loaded = 0;
  std::map<std::tuple<int, int, int, int, int, int>, bool> seen;
  int step = 0, tile = 0;
  for (int co0 = 0; co0 < l.out.blocks; co0 += t.co_t) {
    const int co_n = std::min(t.co_t, l.out.blocks - co0);
    for (int oh0 = 0; oh0 < l.out.h; oh0 += t.h_t) {
      const int h_n = std::min(t.h_t, l.out.h - oh0);
      for (int ow0 = 0; ow0 < l.out.w; ow0 += t.w_t, ++tile) {
        const int w_n = std::min(t.w_t, l.out.w - ow0);
        const uint64_t n = uint64_t{1} * co_n * h_n * w_n;
        for (int ci0 = 0; ci0 < l.in.blocks; ci0 += t.ci_t, ++step) {
          const int ci_n = std::min(t.ci_t, l.in.blocks - ci0);
          // Load stage.
          uint64_t l_start = load_free;
          if (step >= 2) l_start = std::max(l_start, comp_done[step - 2]);
          const int rows = InRows(l, h_n);
          const int cols =
              FullWidth(l, t.w_t) ? l.in.PaddedW() : InCols(l, w_n);
          const int nloads = MergedInpLoad(l, t.w_t, h_n) ? 1 : ci_n;
          uint64_t bytes = uint64_t{1} * ci_n * rows * cols * ib;
          uint64_t lt = nloads * c.timing.mem_request_latency;
          uint64_t gather = 0;
          if (l.gather_kh > 0) {  // source rows once; one INP element per cycle
            bytes = (uint64_t{1} * (h_n - 1) * l.gather_stride + l.gather_kh) *
                    ((uint64_t{1} * (w_n - 1) * l.gather_stride + l.gather_kw) *
                     l.gather_channels);
            lt = c.timing.mem_request_latency;
            gather = uint64_t{1} * ci_n * h_n * w_n;
          }
          uint64_t beats = (bytes + c.BusBytes() - 1) / c.BusBytes();
          insns += nloads + 1;
          if (!t.wgt_resident) {
            const uint64_t wbytes = uint64_t{1} * co_n * ci_n * kk * wb;
            lt += c.timing.mem_request_latency;
            beats += (wbytes + c.BusBytes() - 1) / c.BusBytes();
            insns += 1;
          }
          const uint64_t xfer = std::max(l_start + lt, bus_free);
          bus_free = xfer + beats;
          load_free = std::max(bus_free, xfer + gather);
          // Compute stage.
          uint64_t c_start = std::max(comp_free, load_free);
          uint64_t ct = 0;
          if (ci0 == 0) {
            if (tile >= 2) c_start = std::max(c_start, store_done[tile - 2]);
            ct += m.Gemm(n);  // reset
            insns += 1;
          }
          const ConvShape shape{co_n, h_n, w_n, ci_n};
          const auto key = std::make_tuple(co_n, h_n, w_n, ci_n, step % 2,
                                           t.wgt_resident ? co0 : -1);
          if (!seen[key]) {
            seen[key] = true;
            kernel_uops_loaded += KernelUops(l, shape);
            ct += m.Mem(uint64_t{4} * KernelUops(l, shape));
            insns += 1;
          }
          ct += m.Gemm(n * ci_n * kk);
          insns += 1;
          const bool last = ci0 + t.ci_t >= l.in.blocks;
          if (last) {
            if (!l.bias_in_gemm) ct += m.AluTensor(n);
            const auto shr = ShiftOps(l.block_shift, co0, co_n);
            for (const ShrOp& s : shr)
              ct += m.AluImm(uint64_t{1} * s.num_blocks * h_n * w_n);
            ct += 2 * m.AluImm(n);
            insns += 3 + shr.size();
            if (!l.zp_folded) {
              ct += m.AluImm(n);
              insns += 1;
            }
          }
          comp_free = c_start + ct;
          comp_done.push_back(comp_free);
          if (last) {
            uint64_t s_start = std::max(store_free, comp_free);
            const int nst = MergedStore(l, h_n, w_n) ? 1 : co_n;
            const uint64_t sbytes = n * ob;
            const uint64_t sx = std::max(
                s_start + uint64_t{1} * nst * c.timing.mem_request_latency,
                bus_free);
            store_free = sx + (sbytes + c.BusBytes() - 1) / c.BusBytes();
            bus_free = std::max(bus_free, store_free);
            store_done.push_back(store_free);
            insns += nst;
          }
        }
      }
    }
  }
  uint64_t total = std::max({load_free, comp_free, store_free});
  const uint64_t fetch =
      c.timing.fetch_latency +
      insns * ((VtaConfig::kInsnBytes + c.BusBytes() - 1) / c.BusBytes());
  total = std::max(total, fetch);
  // Uop thrash penalty when kernels do not all fit the uop ring.
  if (kernel_uops_loaded > c.UopDepth() / 2) total += kernel_uops_loaded;
  return total;
}

// Wrapper that turns a CommandQueue error into context.
absl::Status Annotate(const absl::Status& s, absl::string_view what) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

// Kernel cache of one emission: key -> KernelId.
class KernelCache {
 public:
  explicit KernelCache(CommandQueue& q) : q_(q) {}
  template <typename Key, typename Build>
  absl::StatusOr<KernelId> Get(const Key& key, Build build) {
    const std::string k = KeyString(key);
    auto it = ids_.find(k);
    if (it != ids_.end()) return it->second;
    VTASERVE_ASSIGN_OR_RETURN(KernelId id, q_.AddKernel(build()));
    ids_.emplace(k, id);
    return id;
  }

 private:
  template <typename... T>
  static std::string KeyString(const std::tuple<T...>& t) {
    std::string s;
    std::apply([&](const auto&... v) { ((absl::StrAppend(&s, v, ",")), ...); },
               t);
    return s;
  }
  CommandQueue& q_;
  std::map<std::string, KernelId> ids_;
};

// One-uop elementwise kernel over n consecutive ACC elements from `dst`.
UopKernel ElementwiseKernel(uint32_t dst, uint32_t n) {
  UopKernel k;
  k.uops.push_back(Uop{dst, 0, 0});
  k.loops.push_back(UopLoop{n, 1, 0, 0});
  return k;
}

// ALU immediate op over n elements from dst, reusing kernels.
absl::Status AluImm(CommandQueue& q, KernelCache& cache, uint32_t dst,
                    uint32_t n, AluOpcode op, int32_t imm) {
  VTASERVE_ASSIGN_OR_RETURN(
      KernelId id, cache.Get(std::make_tuple(std::string("ew"), dst, n),
                             [&] { return ElementwiseKernel(dst, n); }));
  return q.Alu(id, op, /*use_imm=*/true, static_cast<int16_t>(imm));
}

// Adds a constant with as few immediates as possible (each |imm| <= 32767).
absl::Status AluAddConstant(CommandQueue& q, KernelCache& cache, uint32_t dst,
                            uint32_t n, int64_t value) {
  while (value != 0) {
    const int64_t step = std::clamp<int64_t>(value, -kMaxImm, kMaxImm);
    VTASERVE_RETURN_IF_ERROR(
        AluImm(q, cache, dst, n, AluOpcode::kAdd, static_cast<int32_t>(step)));
    value -= step;
  }
  return absl::OkStatus();
}

// Clamp [lo, hi] and (unless folded) the zero point; the last writer of
// every element is an ALU op.
absl::Status EmitClampAndZeroPoint(CommandQueue& q, KernelCache& cache,
                                   uint32_t dst, uint32_t n, bool zp_folded,
                                   int32_t zp, int32_t lo, int32_t hi) {
  const int32_t off = zp_folded ? 0 : zp;
  VTASERVE_RETURN_IF_ERROR(AluImm(q, cache, dst, n, AluOpcode::kMin, hi - off));
  VTASERVE_RETURN_IF_ERROR(AluImm(q, cache, dst, n, AluOpcode::kMax, lo - off));
  if (!zp_folded && zp != 0) {
    VTASERVE_RETURN_IF_ERROR(AluImm(q, cache, dst, n, AluOpcode::kAdd, zp));
  }
  return absl::OkStatus();
}

absl::Status CheckLayoutCommon(const VtaConfig& c) {
  if (c.Batch() != 1 || c.BlockIn() != c.BlockOut()) {
    return absl::InvalidArgumentError(
        "the VTA compiler requires BATCH == 1 and BLOCK_IN == BLOCK_OUT");
  }
  return absl::OkStatus();
}

}  // namespace

void PackActivation(const ActivationLayout& layout, int lanes,
                    const int8_t* nchw, int8_t* image) {
  for (int ch = 0; ch < layout.channels; ++ch) {
    const int b = ch / lanes, lane = ch % lanes;
    for (int y = 0; y < layout.h; ++y) {
      const int8_t* src = nchw + (int64_t{ch} * layout.h + y) * layout.w;
      int8_t* dst = image + layout.ElemIndex(b, y, 0) * lanes + lane;
      for (int x = 0; x < layout.w; ++x) dst[int64_t{x} * lanes] = src[x];
    }
  }
}

void UnpackActivation(const ActivationLayout& layout, int lanes,
                      const int8_t* image, int8_t* nchw) {
  for (int ch = 0; ch < layout.channels; ++ch) {
    const int b = ch / lanes, lane = ch % lanes;
    for (int y = 0; y < layout.h; ++y) {
      int8_t* dst = nchw + (int64_t{ch} * layout.h + y) * layout.w;
      const int8_t* src = image + layout.ElemIndex(b, y, 0) * lanes + lane;
      for (int x = 0; x < layout.w; ++x) dst[x] = src[int64_t{x} * lanes];
    }
  }
}

std::string ConvTiling::ToString() const {
  return absl::StrCat("h", h_t, " w", w_t, " co", co_t, " ci", ci_t,
                      wgt_resident ? " wgt-resident" : " wgt-streamed", " est ",
                      est_cycles, " cycles");
}

absl::StatusOr<ConvTiling> PlanConv(const VtaConfig& config,
                                    const ConvLayer& l) {
  VTASERVE_RETURN_IF_ERROR(CheckLayoutCommon(config));
  if (l.in.blocks <= 0 || l.out.blocks <= 0 || l.out.h <= 0 || l.out.w <= 0 ||
      l.kh <= 0 || l.kw <= 0 || l.sh <= 0 || l.sw <= 0 ||
      l.block_shift.size() != static_cast<size_t>(l.out.blocks)) {
    return absl::InvalidArgumentError("inconsistent conv layer");
  }
  // The bordered input must cover every tap: rows -pad_top .. (OH-1)*sh +
  // kh - 1 - pad_top (same for columns).
  const int last_row = (l.out.h - 1) * l.sh + l.kh - 1 - l.pad_top;
  const int last_col = (l.out.w - 1) * l.sw + l.kw - 1 - l.pad_left;
  if (l.pad_top > l.in.border || l.pad_left > l.in.border ||
      last_row >= l.in.h + l.in.border || last_col >= l.in.w + l.in.border) {
    return absl::InvalidArgumentError(
        "conv input border smaller than its padding");
  }
  if (static_cast<uint64_t>(l.out.blocks) > config.AccDepth() / 4) {
    return absl::ResourceExhaustedError(
        "too many output channel blocks for the ACC buffer");
  }
  ConvTiling best;
  bool found = false;
  std::vector<int> w_cands = {l.out.w};
  for (int k = 2; k <= 16 && k <= l.out.w; ++k)
    w_cands.push_back(CeilDiv(l.out.w, k));
  const SramSplit s = SplitSram(config, l.out.blocks);
  for (bool resident : {true, false}) {
    for (int co_t : ChunkSizes(l.out.blocks)) {
      for (int ci_t : ChunkSizes(l.in.blocks)) {
        if (resident && ci_t != l.in.blocks) continue;
        for (int w_t : w_cands) {
          // Largest h_t from INP and ACC, then balanced variants.
          const int pitch = Pitch(l, w_t);
          const int64_t rows_fit = s.inp_half / (int64_t{ci_t} * pitch);
          if (rows_fit < l.kh) continue;
          int h_max = static_cast<int>((rows_fit - l.kh) / l.sh + 1);
          h_max = std::min<int64_t>(h_max, s.acc_half / (int64_t{co_t} * w_t));
          h_max = std::min(h_max, l.out.h);
          if (h_max < 1) continue;
          const int n0 = CeilDiv(l.out.h, h_max);
          for (int n = n0; n <= std::min(n0 + 1, l.out.h); ++n) {
            ConvTiling t;
            t.h_t = CeilDiv(l.out.h, n);
            t.w_t = w_t;
            t.co_t = co_t;
            t.ci_t = ci_t;
            t.wgt_resident = resident;
            if (!ConvTilingFits(config, l, t)) continue;
            t.est_cycles = EstimateConv(config, l, t);
            if (!found || t.est_cycles < best.est_cycles) {
              best = t;
              found = true;
            }
          }
        }
      }
    }
  }
  if (!found) {
    return absl::ResourceExhaustedError(
        "no conv tiling fits the VTA SRAM buffers (or avoids the GEMM "
        "pipeline hazard)");
  }
  return best;
}

absl::Status EmitConv(CommandQueue& q, const ConvLayer& l, const ConvTiling& t,
                      const ConvAddrs& addrs) {
  const VtaConfig& c = q.config();
  VTASERVE_RETURN_IF_ERROR(CheckLayoutCommon(c));
  if (!ConvTilingFits(c, l, t)) {
    return absl::InvalidArgumentError(
        absl::StrCat("conv tiling does not fit: ", t.ToString()));
  }
  const SramSplit s = SplitSram(c, l.out.blocks);
  const int kk = l.kh * l.kw;
  const int CI = l.in.blocks, CO = l.out.blocks;
  const uint32_t bias_base = s.acc_reserved_base;
  KernelCache cache(q);

  // Steps.
  struct Step {
    int co0, co_n, oh0, h_n, ow0, w_n, ci0, ci_n, tile;
    bool first, last;
  };
  std::vector<Step> steps;
  int num_tiles = 0;
  for (int co0 = 0; co0 < CO; co0 += t.co_t) {
    for (int oh0 = 0; oh0 < l.out.h; oh0 += t.h_t) {
      for (int ow0 = 0; ow0 < l.out.w; ow0 += t.w_t, ++num_tiles) {
        for (int ci0 = 0; ci0 < CI; ci0 += t.ci_t) {
          steps.push_back(Step{co0, std::min(t.co_t, CO - co0), oh0,
                               std::min(t.h_t, l.out.h - oh0), ow0,
                               std::min(t.w_t, l.out.w - ow0), ci0,
                               std::min(t.ci_t, CI - ci0), num_tiles, ci0 == 0,
                               ci0 + t.ci_t >= CI});
        }
      }
    }
  }
  const int K = static_cast<int>(steps.size());
  const bool full = FullWidth(l, t.w_t);

  // Prologue: biases (compute stage) into the reserved ACC region.
  if (!l.bias_in_gemm) {
    VTASERVE_RETURN_IF_ERROR(
        Annotate(q.Load2D(MemoryType::kAcc, bias_base, addrs.bias, 1, CO, CO),
                 "bias load"));
  }

  auto emit_load = [&](int k) -> absl::Status {
    const Step& st = steps[k];
    const int par = k % 2;
    if (k >= 2)
      VTASERVE_RETURN_IF_ERROR(q.DepPop(Stage::kCompute, Stage::kLoad));
    if (k == 0 && t.wgt_resident) {
      VTASERVE_RETURN_IF_ERROR(Annotate(q.Load2D(MemoryType::kWgt, 0, addrs.wgt,
                                                 1, CO * CI * kk, CO * CI * kk),
                                        "resident weight load"));
    }
    const uint32_t inp_base = par * s.inp_half;
    const int rows = InRows(l, st.h_n);
    const int row0 = st.oh0 * l.sh - l.pad_top + l.in.border;
    const int col0 = full ? 0 : st.ow0 * l.sw - l.pad_left + l.in.border;
    const int cols = full ? l.in.PaddedW() : InCols(l, st.w_n);
    const uint32_t blk = rows * (full ? l.in.PaddedW() : cols);
    if (l.gather_kh > 0) {
      const uint32_t dram =
          addrs.inp +
          static_cast<uint32_t>(st.oh0) * l.gather_stride *
              static_cast<uint32_t>(l.gather_row_bytes) +
          static_cast<uint32_t>(st.ow0) * l.gather_stride * l.gather_channels;
      VTASERVE_RETURN_IF_ERROR(
          Annotate(q.LoadIm2col(inp_base, dram, st.h_n, st.w_n,
                                l.gather_row_bytes, l.gather_kh, l.gather_kw,
                                l.gather_channels, l.gather_stride),
                   "im2col gather load"));
    } else if (MergedInpLoad(l, t.w_t, st.h_n)) {
      const uint32_t dram = addrs.inp + st.ci0 * l.in.PlaneElems() +
                            int64_t{row0} * l.in.PaddedW();
      VTASERVE_RETURN_IF_ERROR(
          Annotate(q.Load2D(MemoryType::kInp, inp_base, dram, st.ci_n, blk,
                            st.ci_n > 1 ? l.in.PlaneElems() : blk),
                   "input load"));
    } else {
      for (int cb = 0; cb < st.ci_n; ++cb) {
        const uint32_t dram = addrs.inp + (st.ci0 + cb) * l.in.PlaneElems() +
                              int64_t{row0} * l.in.PaddedW() + col0;
        VTASERVE_RETURN_IF_ERROR(
            Annotate(q.Load2D(MemoryType::kInp, inp_base + cb * blk, dram, rows,
                              cols, l.in.PaddedW()),
                     "input load"));
      }
    }
    if (!t.wgt_resident) {
      const uint32_t dram = addrs.wgt + (st.co0 * CI + st.ci0) * kk;
      VTASERVE_RETURN_IF_ERROR(
          Annotate(q.Load2D(MemoryType::kWgt, par * s.wgt_half, dram, st.co_n,
                            st.ci_n * kk, CI * kk),
                   "weight load"));
    }
    return q.DepPush(Stage::kLoad, Stage::kCompute);
  };

  auto emit_compute = [&](int k) -> absl::Status {
    const Step& st = steps[k];
    const int par = k % 2;
    const uint32_t acc_base = (st.tile % 2) * s.acc_half;
    const uint32_t n = st.co_n * st.h_n * st.w_n;
    const uint32_t hw = st.h_n * st.w_n;
    if (st.first) {
      if (st.tile >= 2)
        VTASERVE_RETURN_IF_ERROR(q.DepPop(Stage::kStore, Stage::kCompute));
      VTASERVE_ASSIGN_OR_RETURN(
          KernelId rid,
          cache.Get(std::make_tuple(std::string("ew"), acc_base, n),
                    [&] { return ElementwiseKernel(acc_base, n); }));
      VTASERVE_RETURN_IF_ERROR(q.Gemm(rid, /*reset=*/true));
    }
    VTASERVE_RETURN_IF_ERROR(q.DepPop(Stage::kLoad, Stage::kCompute));
    // Main GEMM kernel.
    const uint32_t inp_base = par * s.inp_half;
    const int rows = InRows(l, st.h_n);
    const int pitch = full ? l.in.PaddedW() : InCols(l, st.w_n);
    const int col_off = full ? l.in.border - l.pad_left : 0;
    const uint32_t blk = rows * pitch;
    const bool standard = StandardKernel(st.co_n, st.h_n);
    auto wgt_index = [&](int co, int cb) -> uint32_t {
      if (t.wgt_resident) return ((st.co0 + co) * CI + st.ci0 + cb) * kk;
      return par * s.wgt_half + (co * st.ci_n + cb) * kk;
    };
    VTASERVE_ASSIGN_OR_RETURN(
        KernelId gid,
        cache.Get(
            std::make_tuple(std::string("gemm"), par, acc_base, st.co_n, st.h_n,
                            st.w_n, st.ci_n,
                            t.wgt_resident ? st.co0 * CI + st.ci0 : -1),
            [&] {
              UopKernel kern;
              for (int cb = 0; cb < st.ci_n; ++cb) {
                for (int kh = 0; kh < l.kh; ++kh) {
                  for (int co = 0; co < st.co_n; ++co) {
                    for (int h = 0; h < st.h_n; ++h) {
                      const uint32_t dst =
                          acc_base + (co * st.h_n + h) * st.w_n;
                      const uint32_t src = inp_base + cb * blk +
                                           (h * l.sh + kh) * pitch + col_off;
                      const uint32_t wgt = wgt_index(co, cb) + kh * l.kw;
                      if (standard) {
                        kern.uops.push_back(Uop{dst, src, wgt});
                      } else {
                        for (int w = 0; w < st.w_n; ++w) {
                          kern.uops.push_back(
                              Uop{dst + w, src + w * l.sw, wgt});
                        }
                      }
                    }
                  }
                }
              }
              if (standard) {
                kern.loops.push_back(UopLoop{static_cast<uint32_t>(st.w_n), 1,
                                             static_cast<uint32_t>(l.sw), 0});
                kern.loops.push_back(
                    UopLoop{static_cast<uint32_t>(l.kw), 0, 1, 1});
              } else {
                kern.loops.push_back(
                    UopLoop{static_cast<uint32_t>(l.kw), 0, 1, 1});
              }
              return kern;
            }));
    VTASERVE_RETURN_IF_ERROR(
        Annotate(q.Gemm(gid, /*reset=*/false), "conv GEMM"));
    if (k < K - 2)
      VTASERVE_RETURN_IF_ERROR(q.DepPush(Stage::kCompute, Stage::kLoad));
    if (!st.last) return absl::OkStatus();
    // Epilogue: + bias[c] (unless in the GEMM), SHR per block, clamp (+ zero
    // point).
    if (!l.bias_in_gemm) {
      VTASERVE_ASSIGN_OR_RETURN(
          KernelId bid,
          cache.Get(std::make_tuple(std::string("bias"), acc_base, st.co0,
                                    st.co_n, hw),
                    [&] {
                      UopKernel kern;
                      kern.uops.push_back(Uop{acc_base, bias_base + st.co0, 0});
                      kern.loops.push_back(
                          UopLoop{static_cast<uint32_t>(st.co_n), hw, 1, 0});
                      kern.loops.push_back(UopLoop{hw, 1, 0, 0});
                      return kern;
                    }));
      VTASERVE_RETURN_IF_ERROR(
          q.Alu(bid, AluOpcode::kAdd, /*use_imm=*/false, 0));
    }
    for (const ShrOp& op : ShiftOps(l.block_shift, st.co0, st.co_n)) {
      VTASERVE_RETURN_IF_ERROR(AluImm(q, cache, acc_base + op.first_block * hw,
                                      op.num_blocks * hw, AluOpcode::kShr,
                                      op.amount));
    }
    VTASERVE_RETURN_IF_ERROR(
        EmitClampAndZeroPoint(q, cache, acc_base, n, l.zp_folded,
                              l.output_zero_point, l.clamp_min, l.clamp_max));
    return q.DepPush(Stage::kCompute, Stage::kStore);
  };

  auto emit_store = [&](int k) -> absl::Status {
    const Step& st = steps[k];
    const uint32_t acc_base = (st.tile % 2) * s.acc_half;
    const uint32_t hw = st.h_n * st.w_n;
    VTASERVE_RETURN_IF_ERROR(q.DepPop(Stage::kCompute, Stage::kStore));
    if (MergedStore(l, st.h_n, st.w_n)) {
      VTASERVE_RETURN_IF_ERROR(Annotate(
          q.Store2D(acc_base, addrs.out + st.co0 * l.out.PlaneElems(), st.co_n,
                    hw, st.co_n > 1 ? l.out.PlaneElems() : hw),
          "output store"));
    } else {
      for (int co = 0; co < st.co_n; ++co) {
        const uint32_t dram =
            addrs.out + l.out.ElemIndex(st.co0 + co, st.oh0, st.ow0);
        VTASERVE_RETURN_IF_ERROR(
            Annotate(q.Store2D(acc_base + co * hw, dram, st.h_n, st.w_n,
                               l.out.PaddedW()),
                     "output store"));
      }
    }
    if (st.tile < num_tiles - 2) {
      VTASERVE_RETURN_IF_ERROR(q.DepPush(Stage::kStore, Stage::kCompute));
    }
    return absl::OkStatus();
  };

  VTASERVE_RETURN_IF_ERROR(emit_load(0));
  for (int k = 0; k < K; ++k) {
    if (k + 1 < K) VTASERVE_RETURN_IF_ERROR(emit_load(k + 1));
    VTASERVE_RETURN_IF_ERROR(emit_compute(k));
    if (steps[k].last) VTASERVE_RETURN_IF_ERROR(emit_store(k));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------- add ----

bool AddBiasSupported(int32_t bias) {
  // bias = q * 128 + r, r in [0, 127]; q applied with <= 4 immediates.
  const int64_t qv = (int64_t{bias} - (bias & 127)) / 128;
  return std::llabs(qv) <= 4 * int64_t{kMaxImm};
}

std::vector<int8_t> PackAddWeights(const VtaConfig& c, const AddLayer& l) {
  const int bo = c.BlockOut(), bi = c.BlockIn();
  std::vector<int8_t> w(size_t{4} * bo * bi, 0);
  const int32_t vals[4] = {l.multiplier_a >> 7, l.multiplier_b >> 7,
                           l.multiplier_a & 127, l.multiplier_b & 127};
  for (int e = 0; e < 4; ++e) {
    for (int o = 0; o < bo; ++o) {
      w[static_cast<size_t>(e) * bo * bi + o * bi + o] =
          static_cast<int8_t>(vals[e]);
    }
  }
  return w;
}

namespace {

bool AddTilingFits(const VtaConfig& c, const AddLayer& l, const AddTiling& t) {
  const SramSplit s = SplitSram(c, 0);
  const uint64_t n = uint64_t{1} * t.c_t * t.h_t * l.out.w;
  if (2 * n > s.inp_half || n > s.acc_half) return false;
  // Smallest tile (edges) must have >= 3 elements (hazard, 4.7).
  const int c_edge = l.out.blocks % t.c_t == 0 ? t.c_t : l.out.blocks % t.c_t;
  const int h_edge = l.out.h % t.h_t == 0 ? t.h_t : l.out.h % t.h_t;
  if (int64_t{c_edge} * h_edge * l.out.w < 3) return false;
  if (l.a.PaddedW() > static_cast<int>(kMax16) ||
      l.b.PaddedW() > static_cast<int>(kMax16) ||
      l.out.PaddedW() > static_cast<int>(kMax16) || 2 * n > kMax16) {
    return false;
  }
  return true;
}

uint64_t EstimateAdd(const VtaConfig& c, const AddLayer& l,
                     const AddTiling& t) {
  const CostModel m{c};
  uint64_t load_free = 0, comp_free = 0, store_free = 0;
  std::vector<uint64_t> comp_done, store_done;
  int k = 0;
  for (int c0 = 0; c0 < l.out.blocks; c0 += t.c_t) {
    const int cn = std::min(t.c_t, l.out.blocks - c0);
    for (int h0 = 0; h0 < l.out.h; h0 += t.h_t, ++k) {
      const int hn = std::min(t.h_t, l.out.h - h0);
      const uint64_t n = uint64_t{1} * cn * hn * l.out.w;
      uint64_t ls = load_free;
      if (k >= 2) ls = std::max(ls, comp_done[k - 2]);
      load_free =
          ls + 2 * cn * m.Mem(uint64_t{1} * hn * l.out.w * c.InpElemBytes());
      uint64_t cs = std::max(comp_free, load_free);
      if (k >= 2) cs = std::max(cs, store_done[k - 2]);
      comp_free = cs + m.Gemm(n) + 2 * m.Gemm(2 * n) + 6 * m.AluImm(n);
      comp_done.push_back(comp_free);
      store_free = std::max(store_free, comp_free) +
                   cn * m.Mem(uint64_t{1} * hn * l.out.w * c.OutElemBytes());
      store_done.push_back(store_free);
    }
  }
  return std::max({load_free, comp_free, store_free});
}

}  // namespace

absl::StatusOr<AddTiling> PlanAdd(const VtaConfig& config, const AddLayer& l) {
  VTASERVE_RETURN_IF_ERROR(CheckLayoutCommon(config));
  if (l.out.blocks <= 0 || l.out.h <= 0 || l.out.w <= 0 ||
      l.a.blocks < l.out.blocks || l.b.blocks < l.out.blocks ||
      l.a.h != l.out.h || l.b.h != l.out.h || l.a.w != l.out.w ||
      l.b.w != l.out.w) {
    return absl::InvalidArgumentError("inconsistent add layer");
  }
  if (!AddBiasSupported(l.bias)) {
    return absl::InvalidArgumentError("add bias too large for ALU immediates");
  }
  AddTiling best;
  bool found = false;
  for (int c_t : ChunkSizes(l.out.blocks)) {
    for (int h_t : ChunkSizes(l.out.h)) {
      AddTiling t{c_t, h_t, 0};
      if (!AddTilingFits(config, l, t)) continue;
      t.est_cycles = EstimateAdd(config, l, t);
      if (!found || t.est_cycles < best.est_cycles) {
        best = t;
        found = true;
      }
      break;  // smaller h_t for this c_t only adds overhead
    }
  }
  if (!found) {
    return absl::ResourceExhaustedError(
        "no add tiling fits the VTA SRAM buffers");
  }
  return best;
}

absl::Status EmitAdd(CommandQueue& q, const AddLayer& l, const AddTiling& t,
                     const AddAddrs& addrs) {
  const VtaConfig& c = q.config();
  VTASERVE_RETURN_IF_ERROR(CheckLayoutCommon(c));
  if (!AddTilingFits(c, l, t) || !AddBiasSupported(l.bias)) {
    return absl::InvalidArgumentError("add tiling does not fit");
  }
  const SramSplit s = SplitSram(c, 0);
  KernelCache cache(q);
  // Weight region: the 4 diagonal blocks at the top of WGT (never halved:
  // the add streams no weights).
  const uint32_t wbase = 0;
  struct Step {
    int c0, cn, h0, hn;
  };
  std::vector<Step> steps;
  for (int c0 = 0; c0 < l.out.blocks; c0 += t.c_t) {
    for (int h0 = 0; h0 < l.out.h; h0 += t.h_t) {
      steps.push_back({c0, std::min(t.c_t, l.out.blocks - c0), h0,
                       std::min(t.h_t, l.out.h - h0)});
    }
  }
  const int K = static_cast<int>(steps.size());
  const int W = l.out.w;
  // bias = q * 128 + r: q joins the high part before the left shift by 7.
  const int32_t r = l.bias & 127;
  const int64_t qv = (int64_t{l.bias} - r) / 128;

  auto emit_load = [&](int k) -> absl::Status {
    const Step& st = steps[k];
    if (k >= 2)
      VTASERVE_RETURN_IF_ERROR(q.DepPop(Stage::kCompute, Stage::kLoad));
    if (k == 0) {
      VTASERVE_RETURN_IF_ERROR(
          Annotate(q.Load2D(MemoryType::kWgt, wbase, addrs.wgt, 1, 4, 4),
                   "add weight load"));
    }
    const uint32_t base = (k % 2) * s.inp_half;
    const uint32_t n = st.cn * st.hn * W;
    for (int cb = 0; cb < st.cn; ++cb) {
      VTASERVE_RETURN_IF_ERROR(
          Annotate(q.Load2D(MemoryType::kInp, base + cb * st.hn * W,
                            addrs.a + l.a.ElemIndex(st.c0 + cb, st.h0, 0),
                            st.hn, W, l.a.PaddedW()),
                   "add input load"));
      VTASERVE_RETURN_IF_ERROR(
          Annotate(q.Load2D(MemoryType::kInp, base + n + cb * st.hn * W,
                            addrs.b + l.b.ElemIndex(st.c0 + cb, st.h0, 0),
                            st.hn, W, l.b.PaddedW()),
                   "add input load"));
    }
    return q.DepPush(Stage::kLoad, Stage::kCompute);
  };
  auto emit_compute = [&](int k) -> absl::Status {
    const Step& st = steps[k];
    const uint32_t acc = (k % 2) * s.acc_half;
    const uint32_t inp = (k % 2) * s.inp_half;
    const uint32_t n = st.cn * st.hn * W;
    if (k >= 2)
      VTASERVE_RETURN_IF_ERROR(q.DepPop(Stage::kStore, Stage::kCompute));
    VTASERVE_ASSIGN_OR_RETURN(
        KernelId rid, cache.Get(std::make_tuple(std::string("ew"), acc, n),
                                [&] { return ElementwiseKernel(acc, n); }));
    VTASERVE_RETURN_IF_ERROR(q.Gemm(rid, /*reset=*/true));
    VTASERVE_RETURN_IF_ERROR(q.DepPop(Stage::kLoad, Stage::kCompute));
    // acc += a * diag(w[first]) for all n, then b * diag(w[first + 1]).
    auto gemm_pair = [&](uint32_t first_wgt) -> absl::Status {
      VTASERVE_ASSIGN_OR_RETURN(
          KernelId id,
          cache.Get(
              std::make_tuple(std::string("addgemm"), acc, inp, n, first_wgt),
              [&] {
                UopKernel kern;
                kern.uops.push_back(Uop{acc, inp, wbase + first_wgt});
                kern.loops.push_back(UopLoop{2, 0, n, 1});
                kern.loops.push_back(UopLoop{n, 1, 1, 0});
                return kern;
              }));
      return Annotate(q.Gemm(id, /*reset=*/false), "add GEMM");
    };
    VTASERVE_RETURN_IF_ERROR(gemm_pair(0));  // high parts
    VTASERVE_RETURN_IF_ERROR(AluAddConstant(q, cache, acc, n, qv));
    VTASERVE_RETURN_IF_ERROR(AluImm(q, cache, acc, n, AluOpcode::kShr, -7));
    VTASERVE_RETURN_IF_ERROR(gemm_pair(2));  // low parts
    if (k < K - 2)
      VTASERVE_RETURN_IF_ERROR(q.DepPush(Stage::kCompute, Stage::kLoad));
    VTASERVE_RETURN_IF_ERROR(AluAddConstant(q, cache, acc, n, r));
    int32_t sh = l.shift;
    while (sh > 0) {
      const int32_t step = std::min(sh, 15);
      VTASERVE_RETURN_IF_ERROR(AluImm(q, cache, acc, n, AluOpcode::kShr, step));
      sh -= step;
    }
    VTASERVE_RETURN_IF_ERROR(
        EmitClampAndZeroPoint(q, cache, acc, n, l.zp_folded,
                              l.output_zero_point, l.clamp_min, l.clamp_max));
    return q.DepPush(Stage::kCompute, Stage::kStore);
  };
  auto emit_store = [&](int k) -> absl::Status {
    const Step& st = steps[k];
    const uint32_t acc = (k % 2) * s.acc_half;
    VTASERVE_RETURN_IF_ERROR(q.DepPop(Stage::kCompute, Stage::kStore));
    for (int cb = 0; cb < st.cn; ++cb) {
      VTASERVE_RETURN_IF_ERROR(
          Annotate(q.Store2D(acc + cb * st.hn * W,
                             addrs.out + l.out.ElemIndex(st.c0 + cb, st.h0, 0),
                             st.hn, W, l.out.PaddedW()),
                   "add output store"));
    }
    if (k < K - 2)
      VTASERVE_RETURN_IF_ERROR(q.DepPush(Stage::kStore, Stage::kCompute));
    return absl::OkStatus();
  };
  VTASERVE_RETURN_IF_ERROR(emit_load(0));
  for (int k = 0; k < K; ++k) {
    if (k + 1 < K) VTASERVE_RETURN_IF_ERROR(emit_load(k + 1));
    VTASERVE_RETURN_IF_ERROR(emit_compute(k));
    VTASERVE_RETURN_IF_ERROR(emit_store(k));
  }
  return absl::OkStatus();
}

}  // namespace vtaserve::vta::compiler
