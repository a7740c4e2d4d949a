#include "vta_backend/driver/register_window.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace vtaserve::vta::driver {

absl::StatusOr<std::unique_ptr<MmapRegisterWindow>> MmapRegisterWindow::Open(
    const std::string& path, uint64_t file_offset, size_t length) {
  const int fd = ::open(path.c_str(), O_RDWR | O_SYNC | O_CLOEXEC);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot open VTA register node ", path, ": ", std::strerror(errno)));
  }
  auto window = FromFd(fd, file_offset, length, path);
  ::close(fd);
  return window;
}

absl::StatusOr<std::unique_ptr<MmapRegisterWindow>> MmapRegisterWindow::FromFd(
    int fd, uint64_t file_offset, size_t length, const std::string& what) {
  if (length == 0 || length % 4 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("register window of ", length, " bytes on ", what));
  }
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t map_offset = file_offset / page * page;
  const size_t delta = static_cast<size_t>(file_offset - map_offset);
  const size_t map_length = delta + length;
  void* map = ::mmap(nullptr, map_length, PROT_READ | PROT_WRITE, MAP_SHARED,
                     fd, static_cast<off_t>(map_offset));
  if (map == MAP_FAILED) {
    return absl::UnavailableError(absl::StrCat(
        "cannot map ", length, " register bytes at 0x", absl::Hex(file_offset),
        " of ", what, ": ", std::strerror(errno)));
  }
  auto* base =
      reinterpret_cast<volatile uint32_t*>(static_cast<uint8_t*>(map) + delta);
  return std::unique_ptr<MmapRegisterWindow>(
      new MmapRegisterWindow(map, map_length, base, length));
}

MmapRegisterWindow::~MmapRegisterWindow() { ::munmap(map_, map_length_); }

uint32_t MmapRegisterWindow::Read32(size_t offset) const {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return base_[offset / 4];
}

void MmapRegisterWindow::Write32(size_t offset, uint32_t value) {
  base_[offset / 4] = value;
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

}  // namespace vtaserve::vta::driver
