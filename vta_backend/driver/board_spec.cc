#include "vta_backend/driver/board_spec.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"
#include "proto/vta_board.pb.h"

namespace vtaserve::vta::driver {

absl::StatusOr<BoardSpec> BoardPreset(absl::string_view name) {
  BoardSpec s;
  s.name = std::string(name);
  if (name == "pynq" || name == "ultra96" || name == "zcu104") {
    // Xilinx HLS design; registers through a UIO node covering the four
    // blocks, buffers from u-dma-buf; tvm-vta builds these bitstreams with
    // coherent AXI ports.
    s.vta_preset = std::string(name);
    s.design = Design::kXilinxHls;
    s.register_phys = name == "pynq" ? 0x43C00000 : 0xA0000000;
    s.register_node = "/dev/uio0";
    s.dma = DmaKind::kUdmabuf;
    s.dma_node = "/dev/udmabuf0";
    s.cache = CacheMode::kCoherent;
    return s;
  }
  if (name == "de10nano") {
    // Chisel design; registers through /dev/mem at the lightweight HPS-FPGA
    // bridge, buffers from tvm-vta's /dev/cma module (non-cached).
    s.vta_preset = "de10nano";
    s.design = Design::kChisel;
    s.register_phys = 0xFF220000;
    s.register_node = "/dev/mem";
    s.register_offset = 0xFF220000;
    s.dma = DmaKind::kCma;
    s.dma_node = "/dev/cma";
    s.cache = CacheMode::kUncached;
    s.device_address_offset = 0x80000000;
    return s;
  }
  return absl::NotFoundError(absl::StrCat(
      "unknown VTA board \"", name, "\" (pynq, ultra96, zcu104, de10nano)"));
}

absl::Status ApplyBoardJson(absl::string_view json, BoardSpec& spec) {
  vta_board::VtaBoardJson m;
  const auto st = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &m,
      google::protobuf::util::JsonParseOptions());
  if (!st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid VTA board JSON: ", std::string(st.message())));
  }
  if (m.has_register_node()) spec.register_node = m.register_node();
  if (m.has_register_offset()) spec.register_offset = m.register_offset();
  if (m.has_dma()) {
    if (m.dma() == "udmabuf") {
      spec.dma = DmaKind::kUdmabuf;
    } else if (m.dma() == "cma") {
      spec.dma = DmaKind::kCma;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "VTA board JSON: dma \"", m.dma(), "\" (udmabuf or cma)"));
    }
  }
  if (m.has_dma_node()) spec.dma_node = m.dma_node();
  if (m.has_dma_sysfs_dir()) spec.dma_sysfs_dir = m.dma_sysfs_dir();
  if (m.has_cache()) {
    absl::StatusOr<CacheMode> mode = ParseCacheMode(m.cache());
    if (!mode.ok()) return mode.status();
    spec.cache = *mode;
  }
  if (m.has_device_address_offset()) {
    if (m.device_address_offset() >= (uint64_t{1} << 32)) {
      return absl::InvalidArgumentError(
          "VTA board JSON: device_address_offset must be below 2^32");
    }
    spec.device_address_offset = m.device_address_offset();
  }
  if (m.has_max_alloc_bytes()) {
    if (m.max_alloc_bytes() == 0 || m.max_alloc_bytes() > (uint64_t{1} << 31)) {
      return absl::InvalidArgumentError(
          "VTA board JSON: max_alloc_bytes must be in 1..2^31");
    }
    spec.max_alloc_bytes = m.max_alloc_bytes();
  }
  if (m.has_settle_us()) {
    if (m.settle_us() > 1000000) {
      return absl::InvalidArgumentError(
          "VTA board JSON: settle_us must be at most 1000000");
    }
    spec.settle_us = m.settle_us();
  }
  if (m.has_fpga_manager()) spec.fpga_manager = m.fpga_manager();
  return absl::OkStatus();
}

absl::Status ApplyBoardJsonFile(const std::string& path, BoardSpec& spec) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read VTA board JSON file ", path));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  absl::Status s = ApplyBoardJson(ss.str(), spec);
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
  }
  return absl::OkStatus();
}

absl::Status CheckFpgaManager(const BoardSpec& spec, const std::string& root) {
  if (spec.fpga_manager == "none") return absl::OkStatus();
  std::vector<std::filesystem::path> dirs;
  std::error_code ec;
  if (!spec.fpga_manager.empty()) {
    dirs.emplace_back(spec.fpga_manager);
  } else if (std::filesystem::is_directory(root, ec)) {
    for (const auto& e : std::filesystem::directory_iterator(root, ec)) {
      dirs.push_back(e.path());
    }
  }
  for (const auto& dir : dirs) {
    std::ifstream in(dir / "state");
    if (!in) continue;  // not a manager folder
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string state(absl::StripAsciiWhitespace(ss.str()));
    if (state != "operating") {
      return absl::FailedPreconditionError(
          absl::StrCat("FPGA manager ", dir.string(), " reports \"", state,
                       "\", not \"operating\" (is the bitstream loaded?)"));
    }
  }
  return absl::OkStatus();
}

std::string DescribeBoard(const BoardSpec& s) {
  return absl::StrCat(
      s.name, ": ", s.design == Design::kXilinxHls ? "xilinx-hls" : "chisel",
      " design, VTA config ", s.vta_preset, ", registers ", s.register_node,
      " @0x", absl::Hex(s.register_offset), " (bus 0x",
      absl::Hex(s.register_phys), "), DMA ",
      s.dma == DmaKind::kUdmabuf ? "u-dma-buf " : "cma ", s.dma_node, " (",
      CacheModeName(s.cache), "), device address offset 0x",
      absl::Hex(s.device_address_offset));
}

}  // namespace vtaserve::vta::driver
