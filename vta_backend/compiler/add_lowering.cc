// Layer lowering of the residual add: tile search and emission.
#include "vta_backend/compiler/lowering_internal.h"

namespace vtaserve::vta::compiler {

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
