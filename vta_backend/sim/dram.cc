#include "vta_backend/sim/dram.h"

#include <algorithm>
#include <iterator>
#include <new>

#include "absl/strings/str_cat.h"

namespace vtaserve::vta::sim {

Dram::Dram(uint64_t capacity_bytes, uint64_t max_alloc_bytes)
    : max_alloc_bytes_(max_alloc_bytes) {
  // Page p has address (p + 1) * 4096; keep every address below 2^32.
  const uint64_t max_pages = (uint64_t{1} << 32) / kPageBytes - 1;
  const uint64_t pages = std::min(capacity_bytes / kPageBytes, max_pages);
  if (pages > 0) free_pages_[0] = static_cast<uint32_t>(pages);
}

absl::StatusOr<DeviceBuffer> Dram::Alloc(size_t bytes) {
  if (bytes == 0 || bytes > max_alloc_bytes_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "device buffer size ", bytes, " outside [1, ", max_alloc_bytes_, "]"));
  }
  const uint64_t need = (bytes + kPageBytes - 1) / kPageBytes;
  for (auto it = free_pages_.begin(); it != free_pages_.end(); ++it) {
    if (it->second < need) continue;
    const uint32_t first = it->first;
    const uint32_t count = it->second;
    free_pages_.erase(it);
    if (count > need)
      free_pages_[first + need] = count - static_cast<uint32_t>(need);
    Region r;
    r.data.reset(new (std::nothrow) uint8_t[bytes]());
    if (r.data == nullptr) {
      free_pages_[first] = count;  // undo (no coalescing needed: same range)
      if (count > need) free_pages_.erase(first + need);
      return absl::ResourceExhaustedError("host memory exhausted");
    }
    r.size = bytes;
    r.pages = static_cast<uint32_t>(need);
    const uint32_t phys =
        static_cast<uint32_t>((uint64_t{first} + 1) * kPageBytes);
    regions_.emplace(phys, std::move(r));
    return DeviceBuffer{phys, bytes};
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "simulated device memory exhausted allocating ", bytes, " bytes"));
}

absl::Status Dram::Free(uint32_t phys_addr) {
  auto it = regions_.find(phys_addr);
  if (it == regions_.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "FreeBuffer: 0x", absl::Hex(phys_addr), " is not a live buffer"));
  }
  uint32_t first = phys_addr / kPageBytes - 1;
  uint32_t count = it->second.pages;
  regions_.erase(it);
  // Coalesce with the following and preceding free ranges.
  auto next = free_pages_.find(first + count);
  if (next != free_pages_.end()) {
    count += next->second;
    free_pages_.erase(next);
  }
  auto after = free_pages_.lower_bound(first);
  if (after != free_pages_.begin()) {
    auto prev = std::prev(after);
    if (prev->first + prev->second == first) {
      prev->second += count;
      return absl::OkStatus();
    }
  }
  free_pages_[first] = count;
  return absl::OkStatus();
}

uint8_t* Dram::Translate(uint64_t addr, uint64_t len) {
  if (addr > 0xffffffffu) return nullptr;
  auto it = regions_.upper_bound(static_cast<uint32_t>(addr));
  if (it == regions_.begin()) return nullptr;
  --it;
  const uint64_t off = addr - it->first;
  if (off > it->second.size || len > it->second.size - off) return nullptr;
  return it->second.data.get() + off;
}

uint8_t* Dram::BufferAt(uint32_t phys_addr, size_t* size) {
  auto it = regions_.find(phys_addr);
  if (it == regions_.end()) return nullptr;
  *size = it->second.size;
  return it->second.data.get();
}

}  // namespace vtaserve::vta::sim
