// DmaAllocator: physically contiguous memory shared by the CPU and a VTA
// design. An allocation has a CPU pointer and the physical address the
// device sees. Cache maintenance is explicit: SyncForDevice before the
// device reads what the CPU wrote, SyncForCpu before the CPU reads what the
// device wrote; whether they do anything is the allocator's configured
// CacheMode, never assumed.
//
// RegionDmaAllocator sub-allocates one mapped region (a u-dma-buf buffer, or
// a test's shared memory) in 4 KiB pages, first fit, coalescing on free.
// Thread-compatible: BoardDevice serializes every call.
#ifndef VTASERVE_VTA_BACKEND_DRIVER_DMA_ALLOCATOR_H_
#define VTASERVE_VTA_BACKEND_DRIVER_DMA_ALLOCATOR_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vtaserve::vta::driver {

struct DmaAllocation {
  uint8_t* virt = nullptr;
  uint64_t phys = 0;  // as the CPU's bus sees it (before any device offset)
  size_t size = 0;    // bytes reserved (page multiple)
};

// How the CPU's view of DMA memory is kept consistent with the device's.
enum class CacheMode {
  // The mapping is coherent with the device (e.g. tvm-vta's Xilinx
  // bitstreams use coherent AXI ports): syncs do nothing.
  kCoherent,
  // The mapping is uncached (u-dma-buf opened with O_SYNC, non-cached CMA):
  // syncs do nothing.
  kUncached,
  // Cached mapping: every sync asks the kernel driver to clean / invalidate
  // the range (u-dma-buf's sync_for_device / sync_for_cpu).
  kExplicitSync,
};

// "coherent" | "uncached" | "sync" -> CacheMode; InvalidArgument otherwise.
absl::StatusOr<CacheMode> ParseCacheMode(absl::string_view name);
absl::string_view CacheModeName(CacheMode mode);

class DmaAllocator {
 public:
  virtual ~DmaAllocator() = default;
  // A zero-filled allocation of at least `bytes` > 0. ResourceExhausted when
  // the memory is exhausted, InvalidArgument beyond max_alloc_bytes().
  virtual absl::StatusOr<DmaAllocation> Alloc(size_t bytes) = 0;
  // InvalidArgument if `a` is not a live allocation.
  virtual absl::Status Free(const DmaAllocation& a) = 0;
  virtual absl::Status SyncForDevice(const DmaAllocation& a, size_t offset,
                                     size_t length) = 0;
  virtual absl::Status SyncForCpu(const DmaAllocation& a, size_t offset,
                                  size_t length) = 0;
  virtual size_t max_alloc_bytes() const = 0;
  // E.g. "u-dma-buf /dev/udmabuf0 (64 MiB at 0x1f000000, coherent)".
  virtual std::string Describe() const = 0;
};

class RegionDmaAllocator : public DmaAllocator {
 public:
  static constexpr size_t kPageBytes = 4096;
  // Sync of [phys, phys + length) toward the device (true) or CPU (false).
  using SyncFn = std::function<absl::Status(bool for_device, uint64_t phys,
                                            size_t length)>;

  // `base` maps `size` bytes at physical address `phys_base` (page
  // aligned). `sync` is called for every sync when mode is kExplicitSync.
  RegionDmaAllocator(uint8_t* base, uint64_t phys_base, size_t size,
                     CacheMode mode, SyncFn sync, size_t max_alloc_bytes,
                     std::string description);

  absl::StatusOr<DmaAllocation> Alloc(size_t bytes) override;
  absl::Status Free(const DmaAllocation& a) override;
  absl::Status SyncForDevice(const DmaAllocation& a, size_t offset,
                             size_t length) override;
  absl::Status SyncForCpu(const DmaAllocation& a, size_t offset,
                          size_t length) override;
  size_t max_alloc_bytes() const override { return max_alloc_bytes_; }
  std::string Describe() const override { return description_; }

 private:
  absl::Status Sync(bool for_device, const DmaAllocation& a, size_t offset,
                    size_t length);

  uint8_t* base_;
  uint64_t phys_base_;
  CacheMode mode_;
  SyncFn sync_;
  size_t max_alloc_bytes_;
  std::string description_;
  std::map<size_t, size_t> live_;  // first page -> pages
  std::map<size_t, size_t> free_;  // first page -> pages
};

}  // namespace vtaserve::vta::driver

#endif  // VTASERVE_VTA_BACKEND_DRIVER_DMA_ALLOCATOR_H_
