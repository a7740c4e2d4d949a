// ALU instruction kernels of the simulator: execute one ALU instruction
// (all loop iterations, in hardware order: an ALU reads ACC, so order
// matters when sources and destinations overlap) over the ACC SRAM image,
// marking each written element's OUT as tracking low8(ACC).
//
// AluAny is portable (any lane count). Alu16Avx2 (x86 only, needs AVX2 at
// run time) handles 16 ACC lanes. Stateless; thread-safe.
#ifndef VTASERVE_VTA_BACKEND_SIM_ALU_KERNELS_H_
#define VTASERVE_VTA_BACKEND_SIM_ALU_KERNELS_H_

#include <cstdint>

#include "vta_backend/isa/isa.h"

namespace vtaserve::vta::sim {

using AluFn = void (*)(const isa::AluInsn& a, const isa::Uop* uops,
                       int32_t* acc, uint8_t* tracks, int lanes);

void AluAny(const isa::AluInsn& a, const isa::Uop* uops, int32_t* acc,
            uint8_t* tracks, int lanes);

#if defined(__x86_64__) || defined(__i386__)
void Alu16Avx2(const isa::AluInsn& a, const isa::Uop* uops, int32_t* acc,
               uint8_t* tracks, int lanes);
#endif

}  // namespace vtaserve::vta::sim

#endif  // VTASERVE_VTA_BACKEND_SIM_ALU_KERNELS_H_
