// Layer lowering: the ALU epilogue helpers shared by conv and add.
#include "vta_backend/compiler/lowering_internal.h"

namespace vtaserve::vta::compiler {

// Wrapper that turns a CommandQueue error into context.
absl::Status Annotate(const absl::Status& s, absl::string_view what) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

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

}  // namespace vtaserve::vta::compiler
