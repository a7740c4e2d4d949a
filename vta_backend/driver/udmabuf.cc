// u-dma-buf allocator (see board_memory.h).
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "vta_backend/driver/board_memory.h"

namespace vtaserve::vta::driver {
namespace {

absl::StatusOr<uint64_t> ReadSysfsNumber(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in) {
    return absl::UnavailableError(absl::StrCat("cannot read ", path));
  }
  std::string text(absl::StripAsciiWhitespace(ss.str()));
  uint64_t value = 0;
  const bool ok = absl::StartsWith(text, "0x")
                      ? absl::SimpleHexAtoi(text.substr(2), &value)
                      : absl::SimpleAtoi(text, &value);
  if (!ok) {
    return absl::UnavailableError(
        absl::StrCat(path, " holds \"", text, "\", not a number"));
  }
  return value;
}

absl::Status WriteSysfs(const std::string& path, const std::string& value) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  const ssize_t n = ::write(fd, value.data(), value.size());
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    return absl::InternalError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

class UdmabufAllocator : public RegionDmaAllocator {
 public:
  UdmabufAllocator(void* map, size_t size, uint64_t phys, CacheMode mode,
                   SyncFn sync, size_t max_alloc, std::string description)
      : RegionDmaAllocator(static_cast<uint8_t*>(map), phys, size, mode,
                           std::move(sync), max_alloc, std::move(description)),
        map_(map),
        size_(size) {}
  ~UdmabufAllocator() override { ::munmap(map_, size_); }

 private:
  void* map_;
  size_t size_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<DmaAllocator>> OpenUdmabuf(
    const std::string& device, const std::string& sysfs_dir, CacheMode mode,
    size_t max_alloc_bytes) {
  const std::string base = device.substr(device.rfind('/') + 1);
  const std::string dir = sysfs_dir.empty()
                              ? absl::StrCat("/sys/class/u-dma-buf/", base)
                              : sysfs_dir;
  const int flags =
      O_RDWR | O_CLOEXEC | (mode == CacheMode::kUncached ? O_SYNC : 0);
  const int fd = ::open(device.c_str(), flags);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot open DMA buffer node ", device, ": ", std::strerror(errno),
        " (is the u-dma-buf module loaded?)"));
  }
  auto phys = ReadSysfsNumber(dir + "/phys_addr");
  auto size = ReadSysfsNumber(dir + "/size");
  if (!phys.ok() || !size.ok()) {
    ::close(fd);
    return phys.ok() ? size.status() : phys.status();
  }
  if (*phys % RegionDmaAllocator::kPageBytes != 0 || *size == 0) {
    ::close(fd);
    return absl::UnavailableError(
        absl::StrCat(device, ": unusable buffer (phys 0x", absl::Hex(*phys),
                     ", ", *size, " bytes)"));
  }
  void* map = ::mmap(nullptr, *size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int err = errno;
  ::close(fd);
  if (map == MAP_FAILED) {
    return absl::UnavailableError(absl::StrCat(
        "cannot map ", *size, " bytes of ", device, ": ", std::strerror(err)));
  }
  RegionDmaAllocator::SyncFn sync =
      [dir, phys = *phys](bool for_device, uint64_t addr, size_t length) {
        absl::Status s =
            WriteSysfs(dir + "/sync_offset", absl::StrCat(addr - phys));
        if (s.ok()) s = WriteSysfs(dir + "/sync_size", absl::StrCat(length));
        if (s.ok())
          s = WriteSysfs(dir + "/sync_direction", for_device ? "1" : "2");
        if (s.ok())
          s = WriteSysfs(
              dir + (for_device ? "/sync_for_device" : "/sync_for_cpu"), "1");
        return s;
      };
  return std::unique_ptr<DmaAllocator>(new UdmabufAllocator(
      map, *size, *phys, mode, std::move(sync), max_alloc_bytes,
      absl::StrCat("u-dma-buf ", device, " (", *size, " bytes at 0x",
                   absl::Hex(*phys), ", ", CacheModeName(mode), ")")));
}

}  // namespace vtaserve::vta::driver
