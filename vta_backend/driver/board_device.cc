#include "vta_backend/driver/board_device.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace vtaserve::vta::driver {

absl::StatusOr<std::unique_ptr<BoardDevice>> BoardDevice::Create(
    std::unique_ptr<RegisterWindow> regs, std::unique_ptr<DmaAllocator> memory,
    std::unique_ptr<RunProtocol> protocol, BoardDeviceOptions options) {
  if (regs == nullptr || memory == nullptr || protocol == nullptr) {
    return absl::InvalidArgumentError("BoardDevice needs all three parts");
  }
  if (regs->size() < protocol->window_bytes()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "register window of ", regs->size(), " bytes; the ", protocol->name(),
        " design needs ", protocol->window_bytes()));
  }
  if (!(options.clock_mhz > 0)) {
    return absl::InvalidArgumentError("BoardDevice clock must be > 0");
  }
  return std::unique_ptr<BoardDevice>(
      new BoardDevice(std::move(regs), std::move(memory), std::move(protocol),
                      std::move(options)));
}

BoardDevice::~BoardDevice() {
  absl::MutexLock lock(&mu_);
  for (auto& [addr, live] : live_) memory_->Free(live.alloc).IgnoreError();
}

absl::StatusOr<DeviceBuffer> BoardDevice::AllocBuffer(size_t bytes) {
  absl::MutexLock lock(&mu_);
  if (bytes == 0) return absl::InvalidArgumentError("0-byte device buffer");
  absl::StatusOr<DmaAllocation> a = memory_->Alloc(bytes);
  if (!a.ok()) return a.status();
  const uint64_t addr = a->phys + options_.device_address_offset;
  if (addr == 0 || addr % 4096 != 0 || addr + a->size > (uint64_t{1} << 32)) {
    memory_->Free(*a).IgnoreError();
    return absl::InternalError(absl::StrCat(
        "DMA buffer at device address 0x", absl::Hex(addr),
        " is not addressable by VTA (32-bit, page aligned, non-zero)"));
  }
  live_[static_cast<uint32_t>(addr)] = Live{*a, bytes};
  DeviceBuffer b;
  b.phys_addr = static_cast<uint32_t>(addr);
  b.size = bytes;
  return b;
}

absl::Status BoardDevice::FreeBuffer(const DeviceBuffer& buffer) {
  absl::MutexLock lock(&mu_);
  auto it = live_.find(buffer.phys_addr);
  if (it == live_.end()) {
    return absl::InvalidArgumentError("FreeBuffer: not a live device buffer");
  }
  absl::Status s = memory_->Free(it->second.alloc);
  live_.erase(it);
  return s;
}

absl::StatusOr<BoardDevice::Live*> BoardDevice::Find(const DeviceBuffer& buffer,
                                                     size_t offset,
                                                     size_t length) {
  auto it = live_.find(buffer.phys_addr);
  if (it == live_.end()) {
    return absl::InvalidArgumentError("not a live device buffer");
  }
  if (offset > it->second.requested || length > it->second.requested - offset) {
    return absl::InvalidArgumentError(absl::StrCat(
        "copy of ", length, " bytes at offset ", offset,
        " is outside a buffer of ", it->second.requested, " bytes"));
  }
  return &it->second;
}

absl::Status BoardDevice::CopyToDevice(const DeviceBuffer& buffer,
                                       size_t offset,
                                       absl::Span<const uint8_t> src) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Live*> live = Find(buffer, offset, src.size());
  if (!live.ok()) return live.status();
  if (!src.empty())
    std::memcpy((*live)->alloc.virt + offset, src.data(), src.size());
  return memory_->SyncForDevice((*live)->alloc, offset, src.size());
}

absl::Status BoardDevice::CopyFromDevice(const DeviceBuffer& buffer,
                                         size_t offset,
                                         absl::Span<uint8_t> dst) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Live*> live = Find(buffer, offset, dst.size());
  if (!live.ok()) return live.status();
  absl::Status s = memory_->SyncForCpu((*live)->alloc, offset, dst.size());
  if (!s.ok()) return s;
  if (!dst.empty())
    std::memcpy(dst.data(), (*live)->alloc.virt + offset, dst.size());
  return absl::OkStatus();
}

absl::StatusOr<RunStats> BoardDevice::Run(uint32_t insn_phys_addr,
                                          uint32_t insn_count,
                                          absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  if (insn_count == 0) return absl::InvalidArgumentError("empty stream");
  // The instructions must lie inside one live buffer.
  auto it = live_.upper_bound(insn_phys_addr);
  const uint64_t bytes = uint64_t{insn_count} * 16;
  if (it == live_.begin() ||
      (--it, insn_phys_addr + bytes > it->first + it->second.requested)) {
    return absl::InvalidArgumentError(absl::StrCat(
        insn_count, " instructions at 0x", absl::Hex(insn_phys_addr),
        " are not inside one device buffer"));
  }
  const absl::Time start = absl::Now();
  absl::Status s = protocol_->Run(*regs_, insn_phys_addr, insn_count, timeout);
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (!s.ok()) return s;
  RunStats stats;
  stats.device_seconds = seconds;
  stats.cycles = static_cast<uint64_t>(seconds * options_.clock_mhz * 1e6);
  stats.sim.insn_count = insn_count;
  stats.sim.cycles_total = stats.cycles;
  return stats;
}

}  // namespace vtaserve::vta::driver
