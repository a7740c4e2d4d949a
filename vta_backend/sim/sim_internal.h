// Internal to the simulator (vta_backend/sim/*.cc): the decoded
// instruction record shared by decode, memory ops, GEMM split and the timing
// model, and small helpers. Not part of the backend's interface.
#ifndef VTASERVE_VTA_BACKEND_SIM_SIM_INTERNAL_H_
#define VTASERVE_VTA_BACKEND_SIM_SIM_INTERNAL_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "vta_backend/isa/isa.h"
#include "vta_backend/sim/sim_device.h"

namespace vtaserve::vta::sim {

using isa::AluInsn;
using isa::AluOpcode;
using isa::DepFlags;
using isa::FinishInsn;
using isa::GemmInsn;
using isa::Insn;
using isa::MemInsn;
using isa::MemoryType;
using isa::Opcode;

enum Module { kLoadModule = 0, kComputeModule = 1, kStoreModule = 2 };
// Token queues (vta-isa.md 5.2).
enum Queue { kL2C = 0, kC2L = 1, kC2S = 2, kS2C = 3 };
constexpr const char* kModuleNames[3] = {"load", "compute", "store"};
constexpr const char* kQueueNames[4] = {"load->compute", "compute->load",
                                        "compute->store", "store->compute"};

inline absl::Status Bad(size_t index, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("VTA instruction ", index, ": ", what));
}

struct SimDevice::Op {
  Insn insn;
  size_t index = 0;
  int module = kComputeModule;
  uint8_t* dram = nullptr;  // first DRAM byte of a LOAD/STORE with data
  uint64_t bus_bytes = 0;   // DRAM bytes moved
  uint64_t pad_elems = 0;   // padding elements written
  // LOAD INP_IM2COL: INP elements the gather writes (one per cycle, in
  // parallel with the bus transfer).
  uint64_t gather_elems = 0;
  bool nop = false;  // LOAD/STORE with x_size == 0
  int pops[2] = {0, 0};
  int npops = 0;
  int pushes[2] = {0, 0};
  int npushes = 0;
};

// Largest index a uop field reaches over the whole instruction (factors are
// unsigned, so the last iteration is the largest).
template <typename Field>
inline uint64_t MaxIndex(const std::vector<isa::Uop>& uops, uint32_t bgn,
                         uint32_t end, Field field, uint32_t iter_out,
                         uint32_t f_out, uint32_t iter_in, uint32_t f_in) {
  uint64_t m = 0;
  for (uint32_t u = bgn; u < end; ++u)
    m = std::max<uint64_t>(m, field(uops[u]));
  return m + uint64_t{iter_out - 1} * f_out + uint64_t{iter_in - 1} * f_in;
}

}  // namespace vtaserve::vta::sim

#endif  // VTASERVE_VTA_BACKEND_SIM_SIM_INTERNAL_H_
