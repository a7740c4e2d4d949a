// GEMM instruction kernels of the simulator: execute one non-reset GEMM
// instruction (all loop iterations) over the simulator's SRAM images.
// INP is stored as int16 lanes [b][k] (widened at LOAD time); WGT as int8
// pairs [k/2][o][2] (interleaved at LOAD time, widened in registers, so the
// inner loop is a pmaddwd and the weights take half the cache);
// ACC as int32 lanes [b][o] with wrap-around (mod 2^32) accumulation.
//
// A non-reset GEMM only adds products into ACC (it never reads ACC
// otherwise), and wrap-around addition is associative and commutative, so
// a kernel may visit the instruction's uop executions in any order and
// still produce the hardware's ACC bit for bit. The blocked AVX2 kernels
// use that: they widen one weight block once and apply it to every uop
// execution that uses it (a loop whose weight factor is 0, runs of uops
// with the same weight index), several inputs at a time.
//
// GemmS8S8S32Ref is the portable kernel, in hardware order. Stateless;
// thread-safe; calls with disjoint [dst_lo, dst_hi) ranges on the same SRAM
// may run concurrently.
#ifndef VTASERVE_VTA_BACKEND_SIM_GEMM_KERNELS_H_
#define VTASERVE_VTA_BACKEND_SIM_GEMM_KERNELS_H_

#include <cstdint>
#include <limits>

#include "vta_backend/config.h"
#include "vta_backend/isa/isa.h"

namespace vtaserve::vta::sim {

struct GemmCall {
  int32_t* acc = nullptr;          // ACC SRAM, AccLanes per element
  uint8_t* out_tracks = nullptr;   // per ACC element: OUT == low8(ACC)
  const int16_t* inp = nullptr;    // INP SRAM, InpLanes per element
  const int8_t* wgt = nullptr;     // WGT SRAM, WgtLanes per element
  const isa::Uop* uops = nullptr;  // uop SRAM (decoded)
  uint32_t uop_bgn = 0, uop_end = 0;
  uint32_t iter_out = 0, iter_in = 0;
  uint32_t dst_out = 0, dst_in = 0;
  uint32_t src_out = 0, src_in = 0;
  uint32_t wgt_out = 0, wgt_in = 0;
  int batch = 1, block_in = 16, block_out = 16;
  // Only uop executions whose ACC element lies in [dst_lo, dst_hi) run (and
  // only those elements are marked in out_tracks). The whole instruction
  // split over disjoint ranges covering every destination gives the same
  // result as one call over everything.
  uint32_t dst_lo = 0;
  uint32_t dst_hi = std::numeric_limits<uint32_t>::max();
};

using GemmFn = void (*)(const GemmCall&);

// Portable reference kernel (any shape with even block_in), hardware order.
void GemmS8S8S32Ref(const GemmCall& c);

// Best kernel for `config` on this CPU; portable when `allow_simd` is false.
// `*name` receives a short description, e.g. "avx2_blocked_1x16x16".
GemmFn SelectGemmKernel(const VtaConfig& config, bool allow_simd,
                        const char** name);

}  // namespace vtaserve::vta::sim

#endif  // VTASERVE_VTA_BACKEND_SIM_GEMM_KERNELS_H_
