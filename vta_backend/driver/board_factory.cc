#include "vta_backend/driver/board_factory.h"

#include "absl/strings/str_cat.h"
#include "vta_backend/driver/board_memory.h"

namespace vtaserve::vta::driver {

absl::StatusOr<std::unique_ptr<BoardDevice>> OpenBoard(
    const BoardSpec& spec, const VtaConfig& config) {
  if (absl::Status s = CheckFpgaManager(spec); !s.ok()) return s;
  std::unique_ptr<RunProtocol> protocol;
  PollOptions poll;
  poll.settle = absl::Microseconds(spec.settle_us);
  protocol = spec.design == Design::kXilinxHls ? MakeHlsProtocol(poll)
                                               : MakeChiselProtocol(poll);
  absl::StatusOr<std::unique_ptr<MmapRegisterWindow>> regs =
      MmapRegisterWindow::Open(spec.register_node, spec.register_offset,
                               protocol->window_bytes());
  if (!regs.ok()) return regs.status();
  absl::StatusOr<std::unique_ptr<DmaAllocator>> memory =
      spec.dma == DmaKind::kUdmabuf
          ? OpenUdmabuf(spec.dma_node, spec.dma_sysfs_dir, spec.cache,
                        spec.max_alloc_bytes)
          : OpenCma(spec.dma_node, spec.cache, spec.max_alloc_bytes);
  if (!memory.ok()) return memory.status();
  BoardDeviceOptions options;
  options.device_address_offset = spec.device_address_offset;
  options.clock_mhz = config.clock_mhz;
  options.description = DescribeBoard(spec);
  return BoardDevice::Create(*std::move(regs), *std::move(memory),
                             std::move(protocol), std::move(options));
}

}  // namespace vtaserve::vta::driver
