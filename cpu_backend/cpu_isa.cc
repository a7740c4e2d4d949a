#include "cpu_backend/cpu_isa.h"

#include "absl/strings/str_cat.h"

namespace vtaserve::cpu {

absl::string_view CpuIsaName(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kAuto:
      return "auto";
    case CpuIsa::kScalar:
      return "scalar";
    case CpuIsa::kAvx2:
      return "avx2";
    case CpuIsa::kAvxVnni:
      return "avx_vnni";
    case CpuIsa::kAvx512Vnni:
      return "avx512_vnni";
  }
  return "unknown";
}

absl::StatusOr<CpuIsa> CpuIsaFromName(absl::string_view name) {
  for (CpuIsa isa : {CpuIsa::kAuto, CpuIsa::kScalar, CpuIsa::kAvx2,
                     CpuIsa::kAvxVnni, CpuIsa::kAvx512Vnni}) {
    if (CpuIsaName(isa) == name) return isa;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown CPU isa '", name, "'"));
}

bool CpuSupports(CpuIsa isa) {
  __builtin_cpu_init();
  switch (isa) {
    case CpuIsa::kAuto:
    case CpuIsa::kScalar:
      return true;
    case CpuIsa::kAvx2:
      return __builtin_cpu_supports("avx2");
    case CpuIsa::kAvxVnni:
      return __builtin_cpu_supports("avx2") &&
             __builtin_cpu_supports("avxvnni");
    case CpuIsa::kAvx512Vnni:
      return __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512vnni");
  }
  return false;
}

CpuIsa BestCpuIsa() {
  if (CpuSupports(CpuIsa::kAvx512Vnni)) return CpuIsa::kAvx512Vnni;
  if (CpuSupports(CpuIsa::kAvxVnni)) return CpuIsa::kAvxVnni;
  if (CpuSupports(CpuIsa::kAvx2)) return CpuIsa::kAvx2;
  return CpuIsa::kScalar;
}

}  // namespace vtaserve::cpu
