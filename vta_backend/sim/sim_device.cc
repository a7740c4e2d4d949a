#include "vta_backend/sim/sim_device.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/common/status_macros.h"
#include "vta_backend/sim/alu_kernels.h"
#include "vta_backend/sim/sim_internal.h"

namespace vtaserve::vta::sim {

absl::StatusOr<std::unique_ptr<SimDevice>> SimDevice::Create(
    const VtaConfig& config, SimOptions options) {
  VTASERVE_ASSIGN_OR_RETURN(isa::IsaCodec codec, isa::IsaCodec::Create(config));
  return std::unique_ptr<SimDevice>(
      new SimDevice(config, std::move(codec), options));
}

SimDevice::SimDevice(const VtaConfig& config, isa::IsaCodec codec,
                     SimOptions options)
    : config_(config),
      codec_(std::move(codec)),
      options_(options),
      dram_(options.memory_bytes, options.max_alloc_bytes) {
  gemm_fn_ = SelectGemmKernel(config_, !options_.force_portable_kernels,
                              &kernel_name_);
  alu_fn_ = &AluAny;
#if defined(__x86_64__) || defined(__i386__)
  if (!options_.force_portable_kernels && __builtin_cpu_supports("avx2") &&
      config_.AccLanes() == 16) {
    alu_fn_ = &Alu16Avx2;
  }
#endif
  sram_.inp.assign(size_t{config_.InpDepth()} * config_.InpLanes(), 0);
  sram_.wgt.assign(size_t{config_.WgtDepth()} * config_.WgtLanes(), 0);
  sram_.acc.assign(size_t{config_.AccDepth()} * config_.AccLanes(), 0);
  sram_.out.assign(size_t{config_.AccDepth()} * config_.AccLanes(), 0);
  sram_.out_tracks.assign(config_.AccDepth(), 1);
  sram_.uops.assign(config_.UopDepth(), isa::Uop{});
}

absl::StatusOr<DeviceBuffer> SimDevice::AllocBuffer(size_t bytes) {
  absl::MutexLock lock(&mu_);
  return dram_.Alloc(bytes);
}

absl::Status SimDevice::FreeBuffer(const DeviceBuffer& buffer) {
  absl::MutexLock lock(&mu_);
  return dram_.Free(buffer.phys_addr);
}

absl::Status SimDevice::CopyToDevice(const DeviceBuffer& buffer, size_t offset,
                                     absl::Span<const uint8_t> src) {
  absl::MutexLock lock(&mu_);
  size_t size = 0;
  uint8_t* base = dram_.BufferAt(buffer.phys_addr, &size);
  if (base == nullptr) {
    return absl::InvalidArgumentError("CopyToDevice: not a live buffer");
  }
  if (offset > size || src.size() > size - offset) {
    return absl::InvalidArgumentError(
        absl::StrCat("CopyToDevice: [", offset, ", ", offset + src.size(),
                     ") outside the buffer of ", size, " bytes"));
  }
  if (!src.empty()) std::memcpy(base + offset, src.data(), src.size());
  return absl::OkStatus();
}

absl::Status SimDevice::CopyFromDevice(const DeviceBuffer& buffer,
                                       size_t offset, absl::Span<uint8_t> dst) {
  absl::MutexLock lock(&mu_);
  size_t size = 0;
  const uint8_t* base = dram_.BufferAt(buffer.phys_addr, &size);
  if (base == nullptr) {
    return absl::InvalidArgumentError("CopyFromDevice: not a live buffer");
  }
  if (offset > size || dst.size() > size - offset) {
    return absl::InvalidArgumentError(
        absl::StrCat("CopyFromDevice: [", offset, ", ", offset + dst.size(),
                     ") outside the buffer of ", size, " bytes"));
  }
  if (!dst.empty()) std::memcpy(dst.data(), base + offset, dst.size());
  return absl::OkStatus();
}

SimStats SimDevice::CumulativeStats() const {
  absl::MutexLock lock(&mu_);
  return cumulative_;
}

absl::Status SimDevice::ExecAlu(const AluInsn& a) {
  const auto& uops = sram_.uops;
  const uint64_t max_dst = MaxIndex(
      uops, a.uop_bgn, a.uop_end, [](const isa::Uop& u) { return u.dst_idx; },
      a.iter_out, a.dst_factor_out, a.iter_in, a.dst_factor_in);
  if (max_dst >= config_.AccDepth()) {
    return absl::InvalidArgumentError(absl::StrCat("ALU destination index ",
                                                   max_dst, " exceeds depth ",
                                                   config_.AccDepth()));
  }
  if (!a.use_imm) {
    const uint64_t max_src = MaxIndex(
        uops, a.uop_bgn, a.uop_end, [](const isa::Uop& u) { return u.src_idx; },
        a.iter_out, a.src_factor_out, a.iter_in, a.src_factor_in);
    if (max_src >= config_.AccDepth()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ALU source index ", max_src, " exceeds depth ", config_.AccDepth()));
    }
  }
  int32_t* acc = sram_.acc.data();
  uint8_t* tracks = sram_.out_tracks.data();
  const int lanes = config_.AccLanes();
  alu_fn_(a, uops.data(), acc, tracks, lanes);
  return absl::OkStatus();
}
}  // namespace vtaserve::vta::sim
