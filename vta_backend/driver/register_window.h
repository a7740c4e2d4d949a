// RegisterWindow: 32-bit access to a memory-mapped register block of a VTA
// design (the AXI-lite blocks of the Xilinx HLS design, the Chisel block of
// DE10-Nano). MmapRegisterWindow maps it from a file: a UIO node
// (/dev/uioN, map 0 at offset 0), /dev/mem at the block's physical address,
// or any shared-memory fd (the tests' register model).
//
// Thread-compatible: the run protocols hold the device's lock around every
// access sequence.
#ifndef VTASERVE_VTA_BACKEND_DRIVER_REGISTER_WINDOW_H_
#define VTASERVE_VTA_BACKEND_DRIVER_REGISTER_WINDOW_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace vtaserve::vta::driver {

class RegisterWindow {
 public:
  virtual ~RegisterWindow() = default;
  // Bytes addressable; offsets passed to Read32/Write32 must be 4-byte
  // aligned and below it (callers check with Covers()).
  virtual size_t size() const = 0;
  virtual uint32_t Read32(size_t offset) const = 0;
  virtual void Write32(size_t offset, uint32_t value) = 0;

  bool Covers(size_t offset) const {
    return offset % 4 == 0 && offset + 4 <= size();
  }
};

class MmapRegisterWindow : public RegisterWindow {
 public:
  // Maps `length` bytes of `path` at file offset `file_offset` (page
  // aligned, or the window starts inside the first page: the offset is
  // split into a page-aligned map offset and an in-page delta). Unavailable
  // naming the path when it cannot be opened or mapped (no board, no
  // permission).
  static absl::StatusOr<std::unique_ptr<MmapRegisterWindow>> Open(
      const std::string& path, uint64_t file_offset, size_t length);
  // Same over an already open fd (not owned; may be closed afterwards).
  static absl::StatusOr<std::unique_ptr<MmapRegisterWindow>> FromFd(
      int fd, uint64_t file_offset, size_t length, const std::string& what);
  ~MmapRegisterWindow() override;

  size_t size() const override { return length_; }
  uint32_t Read32(size_t offset) const override;
  void Write32(size_t offset, uint32_t value) override;

 private:
  MmapRegisterWindow(void* map, size_t map_length, volatile uint32_t* base,
                     size_t length)
      : map_(map), map_length_(map_length), base_(base), length_(length) {}
  void* map_;
  size_t map_length_;
  volatile uint32_t* base_;
  size_t length_;
};

}  // namespace vtaserve::vta::driver

#endif  // VTASERVE_VTA_BACKEND_DRIVER_REGISTER_WINDOW_H_
