#include "vta_backend/driver/dma_allocator.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace vtaserve::vta::driver {

absl::StatusOr<CacheMode> ParseCacheMode(absl::string_view name) {
  if (name == "coherent") return CacheMode::kCoherent;
  if (name == "uncached") return CacheMode::kUncached;
  if (name == "sync") return CacheMode::kExplicitSync;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown DMA cache mode \"", name, "\" (coherent, uncached or sync)"));
}

absl::string_view CacheModeName(CacheMode mode) {
  switch (mode) {
    case CacheMode::kCoherent:
      return "coherent";
    case CacheMode::kUncached:
      return "uncached";
    case CacheMode::kExplicitSync:
      return "sync";
  }
  return "?";
}

RegionDmaAllocator::RegionDmaAllocator(uint8_t* base, uint64_t phys_base,
                                       size_t size, CacheMode mode, SyncFn sync,
                                       size_t max_alloc_bytes,
                                       std::string description)
    : base_(base),
      phys_base_(phys_base),
      mode_(mode),
      sync_(std::move(sync)),
      max_alloc_bytes_(max_alloc_bytes),
      description_(std::move(description)) {
  const size_t pages = size / kPageBytes;
  if (pages > 0) free_[0] = pages;
}

absl::StatusOr<DmaAllocation> RegionDmaAllocator::Alloc(size_t bytes) {
  if (bytes == 0 || bytes > max_alloc_bytes_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "DMA allocation of ", bytes, " bytes (limit ", max_alloc_bytes_, ")"));
  }
  const size_t pages = (bytes + kPageBytes - 1) / kPageBytes;
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < pages) continue;
    const size_t first = it->first;
    const size_t rest = it->second - pages;
    free_.erase(it);
    if (rest > 0) free_[first + pages] = rest;
    live_[first] = pages;
    DmaAllocation a;
    a.virt = base_ + first * kPageBytes;
    a.phys = phys_base_ + first * kPageBytes;
    a.size = pages * kPageBytes;
    std::memset(a.virt, 0, a.size);
    return a;
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("DMA memory exhausted: no ", bytes, " contiguous bytes in ",
                   description_));
}

absl::Status RegionDmaAllocator::Free(const DmaAllocation& a) {
  if (a.virt < base_) return absl::InvalidArgumentError("not a DMA buffer");
  const size_t off = static_cast<size_t>(a.virt - base_);
  auto it = live_.find(off / kPageBytes);
  if (off % kPageBytes != 0 || it == live_.end()) {
    return absl::InvalidArgumentError("not a live DMA buffer");
  }
  size_t first = it->first, pages = it->second;
  live_.erase(it);
  auto next = free_.find(first + pages);
  if (next != free_.end()) {
    pages += next->second;
    free_.erase(next);
  }
  auto prev = free_.lower_bound(first);
  if (prev != free_.begin()) {
    --prev;
    if (prev->first + prev->second == first) {
      first = prev->first;
      pages += prev->second;
      free_.erase(prev);
    }
  }
  free_[first] = pages;
  return absl::OkStatus();
}

absl::Status RegionDmaAllocator::Sync(bool for_device, const DmaAllocation& a,
                                      size_t offset, size_t length) {
  if (offset > a.size || length > a.size - offset) {
    return absl::InvalidArgumentError("DMA sync range outside the buffer");
  }
  if (mode_ != CacheMode::kExplicitSync || length == 0) {
    return absl::OkStatus();
  }
  if (!sync_) return absl::InternalError("explicit sync without a sync hook");
  return sync_(for_device, a.phys + offset, length);
}

absl::Status RegionDmaAllocator::SyncForDevice(const DmaAllocation& a,
                                               size_t offset, size_t length) {
  return Sync(true, a, offset, length);
}

absl::Status RegionDmaAllocator::SyncForCpu(const DmaAllocation& a,
                                            size_t offset, size_t length) {
  return Sync(false, a, offset, length);
}

}  // namespace vtaserve::vta::driver
