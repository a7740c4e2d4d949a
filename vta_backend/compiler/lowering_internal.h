// Internals of the layer lowering (layer_lowering.h) shared by the conv and
// add lowerings: the SRAM split, the analytic cost model and the ALU epilogue
// helpers. Not part of the compiler's API.
#ifndef VTASERVE_VTA_BACKEND_COMPILER_LOWERING_INTERNAL_H_
#define VTASERVE_VTA_BACKEND_COMPILER_LOWERING_INTERNAL_H_

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "engine/common/status_macros.h"
#include "vta_backend/compiler/layer_lowering.h"

namespace vtaserve::vta::compiler {

using isa::AluOpcode;
using isa::MemoryType;
using isa::Stage;
using isa::Uop;

constexpr uint32_t kMax16 = 0xffff;
constexpr int kMaxImm = 32767;

inline int CeilDiv(int a, int b) { return (a + b - 1) / b; }

// Distinct chunk sizes ceil(n / k) for k = 1..n, largest first.
inline std::vector<int> ChunkSizes(int n) {
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

inline SramSplit SplitSram(const VtaConfig& c, uint32_t acc_reserved) {
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

// Wrapper that turns a CommandQueue error into context.
absl::Status Annotate(const absl::Status& s, absl::string_view what);

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
UopKernel ElementwiseKernel(uint32_t dst, uint32_t n);

// ALU immediate op over n elements from dst, reusing kernels.
absl::Status AluImm(CommandQueue& q, KernelCache& cache, uint32_t dst,
                    uint32_t n, isa::AluOpcode op, int32_t imm);

// Adds a constant with as few immediates as possible (each |imm| <= 32767).
absl::Status AluAddConstant(CommandQueue& q, KernelCache& cache, uint32_t dst,
                            uint32_t n, int64_t value);

// Clamp [lo, hi] and (unless folded) the zero point; the last writer of
// every element is an ALU op.
absl::Status EmitClampAndZeroPoint(CommandQueue& q, KernelCache& cache,
                                   uint32_t dst, uint32_t n, bool zp_folded,
                                   int32_t zp, int32_t lo, int32_t hi);

// InvalidArgument unless BATCH == 1 and BLOCK_IN == BLOCK_OUT.
absl::Status CheckLayoutCommon(const VtaConfig& c);

}  // namespace vtaserve::vta::compiler

#endif  // VTASERVE_VTA_BACKEND_COMPILER_LOWERING_INTERNAL_H_
