// BoardSpec: everything the driver needs to reach one VTA board: its
// design, VTA config preset, register window and DMA memory. Presets for
// --vta-device=pynq|ultra96|zcu104|de10nano, overridable from a JSON file
// (proto/vta_board.proto).
#ifndef VTASERVE_VTA_BACKEND_DRIVER_BOARD_SPEC_H_
#define VTASERVE_VTA_BACKEND_DRIVER_BOARD_SPEC_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "vta_backend/driver/dma_allocator.h"

namespace vtaserve::vta::driver {

enum class Design { kXilinxHls, kChisel };
enum class DmaKind { kUdmabuf, kCma };

struct BoardSpec {
  std::string name;        // "pynq"
  std::string vta_preset;  // VtaConfigPreset name
  Design design = Design::kXilinxHls;
  uint64_t register_phys = 0;  // physical address of the register blocks
  std::string register_node;   // "/dev/uio0" or "/dev/mem"
  uint64_t register_offset = 0;
  DmaKind dma = DmaKind::kUdmabuf;
  std::string dma_node;  // "/dev/udmabuf0" or "/dev/cma"
  std::string dma_sysfs_dir;
  CacheMode cache = CacheMode::kCoherent;
  uint64_t device_address_offset = 0;
  uint64_t max_alloc_bytes = uint64_t{32} << 20;  // tvm-vta's limit
  uint32_t settle_us = 10;
  std::string fpga_manager;  // "" = all of /sys/class/fpga_manager, "none"
};

// "pynq", "ultra96", "zcu104", "de10nano"; NotFound otherwise.
absl::StatusOr<BoardSpec> BoardPreset(absl::string_view name);

// Applies the JSON overrides of `json` (proto/vta_board.proto) to `spec`.
// InvalidArgument for bad JSON or values.
absl::Status ApplyBoardJson(absl::string_view json, BoardSpec& spec);
// Same, reading `path`; NotFound if unreadable.
absl::Status ApplyBoardJsonFile(const std::string& path, BoardSpec& spec);

// OK if no FPGA manager exists or every one reports "operating";
// FailedPrecondition naming the manager and its state otherwise. `root`
// defaults to /sys/class/fpga_manager (spec.fpga_manager may name one
// manager's folder or "none").
absl::Status CheckFpgaManager(
    const BoardSpec& spec, const std::string& root = "/sys/class/fpga_manager");

// One line for logs.
std::string DescribeBoard(const BoardSpec& spec);

}  // namespace vtaserve::vta::driver

#endif  // VTASERVE_VTA_BACKEND_DRIVER_BOARD_SPEC_H_
