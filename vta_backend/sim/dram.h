// Simulated DRAM: a 4 KiB page allocator handing out "physical" addresses
// (first page index + 1) * 4096 as in tvm-vta's virtual_memory.cc (vta-isa.md
// 7.2): every buffer is page aligned and address 0 is never valid. Freed
// ranges are coalesced and reused. Not thread-safe (SimDevice locks).
#ifndef VTASERVE_VTA_BACKEND_SIM_DRAM_H_
#define VTASERVE_VTA_BACKEND_SIM_DRAM_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "vta_backend/device.h"

namespace vtaserve::vta::sim {

class Dram {
 public:
  static constexpr uint64_t kPageBytes = 4096;

  // `capacity_bytes` of address space (rounded down to pages, at most 4 GiB
  // minus one page); single allocations are limited to `max_alloc_bytes`.
  Dram(uint64_t capacity_bytes, uint64_t max_alloc_bytes);

  absl::StatusOr<DeviceBuffer> Alloc(size_t bytes);
  absl::Status Free(uint32_t phys_addr);

  // Host pointer to [addr, addr + len) if the range lies inside one live
  // buffer (its requested size), else nullptr.
  uint8_t* Translate(uint64_t addr, uint64_t len);

  // The live buffer starting exactly at `phys_addr`, or nullptr.
  uint8_t* BufferAt(uint32_t phys_addr, size_t* size);

 private:
  struct Region {
    std::unique_ptr<uint8_t[]> data;
    size_t size = 0;
    uint32_t pages = 0;
  };
  uint64_t max_alloc_bytes_;
  std::map<uint32_t, Region> regions_;       // by phys address
  std::map<uint32_t, uint32_t> free_pages_;  // first page -> page count
};

}  // namespace vtaserve::vta::sim

#endif  // VTASERVE_VTA_BACKEND_SIM_DRAM_H_
