// Portable ALU kernels of the simulator (any lane count, hardware order).
#include "vta_backend/sim/alu_kernels.h"

#include <cstddef>

namespace vtaserve::vta::sim {

using isa::AluInsn;
using isa::AluOpcode;

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

}  // namespace

void AluAny(const AluInsn& a, const isa::Uop* uops, int32_t* acc,
            uint8_t* tracks, int lanes) {
  AluDispatch<0>(a, uops, acc, tracks, lanes);
}

}  // namespace vtaserve::vta::sim
