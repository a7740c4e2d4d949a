// Layer lowering of conv2d (and dense as a 1x1 conv): tile search and
// emission.
#include "vta_backend/compiler/lowering_internal.h"

namespace vtaserve::vta::compiler {

namespace {

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

}  // namespace

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

}  // namespace vtaserve::vta::compiler
