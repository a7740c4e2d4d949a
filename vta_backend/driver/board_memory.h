// The DMA allocators of real boards:
// - u-dma-buf (Xilinx boards with a current PYNQ/Petalinux image): one
//   buffer /dev/udmabufN reserved at boot, its physical address and size
//   in /sys/class/u-dma-buf/udmabufN/{phys_addr,size}; vtaserve maps it once
//   and sub-allocates it (RegionDmaAllocator). kUncached opens it O_SYNC;
//   kExplicitSync drives sync_offset / sync_size / sync_direction and
//   sync_for_device / sync_for_cpu in the same sysfs folder.
// - /dev/cma (DE10-Nano images, tvm-vta's kernel module): one ioctl per
//   allocation (magic 0xf2: alloc cached 1, alloc non-cached 2, free 3,
//   physical address 4, size 5; 32-bit argument), mapped at its physical
//   address. The module offers no cache maintenance, so only kUncached
//   (non-cached allocations) is accepted.
#ifndef VTASERVE_VTA_BACKEND_DRIVER_BOARD_MEMORY_H_
#define VTASERVE_VTA_BACKEND_DRIVER_BOARD_MEMORY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "vta_backend/driver/dma_allocator.h"

namespace vtaserve::vta::driver {

// `device` is e.g. "/dev/udmabuf0"; `sysfs_dir` defaults (empty) to
// /sys/class/u-dma-buf/<basename>. Unavailable naming the node or sysfs
// file when it cannot be opened or read.
absl::StatusOr<std::unique_ptr<DmaAllocator>> OpenUdmabuf(
    const std::string& device, const std::string& sysfs_dir, CacheMode mode,
    size_t max_alloc_bytes);

// `device` is e.g. "/dev/cma". Unavailable when it cannot be opened;
// InvalidArgument for a mode other than kUncached.
absl::StatusOr<std::unique_ptr<DmaAllocator>> OpenCma(const std::string& device,
                                                      CacheMode mode,
                                                      size_t max_alloc_bytes);

}  // namespace vtaserve::vta::driver

#endif  // VTASERVE_VTA_BACKEND_DRIVER_BOARD_MEMORY_H_
