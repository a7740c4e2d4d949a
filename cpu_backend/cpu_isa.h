// Instruction-set paths of the CPU kernels and their run-time detection
// (CPUID through __builtin_cpu_supports). Pure functions; thread-safe.
#ifndef VTASERVE_CPU_BACKEND_CPU_ISA_H_
#define VTASERVE_CPU_BACKEND_CPU_ISA_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vtaserve::cpu {

enum class CpuIsa {
  kAuto,        // the best path this CPU supports
  kScalar,      // portable C++; runs everywhere
  kAvx2,        // AVX2 vpmaddwd on int16-widened operands (never saturates)
  kAvxVnni,     // AVX-VNNI vpdpbusd on 256-bit registers (u8 x s8)
  kAvx512Vnni,  // AVX-512 VNNI vpdpbusd on 512-bit registers (u8 x s8)
};

// "auto", "scalar", "avx2", "avx_vnni", "avx512_vnni".
absl::string_view CpuIsaName(CpuIsa isa);
// Inverse of CpuIsaName; InvalidArgument for anything else.
absl::StatusOr<CpuIsa> CpuIsaFromName(absl::string_view name);
// True if this CPU (and OS) can run `isa`'s kernels. kAuto and kScalar: true.
bool CpuSupports(CpuIsa isa);
// The fastest path this CPU supports (never kAuto).
CpuIsa BestCpuIsa();

}  // namespace vtaserve::cpu

#endif  // VTASERVE_CPU_BACKEND_CPU_ISA_H_
