// /dev/cma allocator of DE10-Nano images (see board_memory.h).
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"
#include "vta_backend/driver/board_memory.h"

namespace vtaserve::vta::driver {
namespace {

constexpr unsigned kCmaMagic = 0xf2;
constexpr unsigned long kCmaAllocNonCached =
    _IOC(_IOC_READ | _IOC_WRITE, kCmaMagic, 2, 4);
constexpr unsigned long kCmaFree = _IOC(_IOC_WRITE, kCmaMagic, 3, 4);

class CmaAllocator : public DmaAllocator {
 public:
  CmaAllocator(int fd, std::string device, size_t max_alloc)
      : fd_(fd), device_(std::move(device)), max_alloc_(max_alloc) {}
  ~CmaAllocator() override {
    while (!live_.empty()) {
      DmaAllocation a{live_.begin()->first, live_.begin()->second.phys,
                      live_.begin()->second.size};
      Free(a).IgnoreError();
    }
    ::close(fd_);
  }

  absl::StatusOr<DmaAllocation> Alloc(size_t bytes) override {
    if (bytes == 0 || bytes > max_alloc_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "DMA allocation of ", bytes, " bytes (limit ", max_alloc_, ")"));
    }
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const size_t size = (bytes + page - 1) / page * page;
    uint32_t arg = static_cast<uint32_t>(size);  // in: size, out: phys
    if (::ioctl(fd_, kCmaAllocNonCached, &arg) == -1) {
      return absl::ResourceExhaustedError(absl::StrCat(
          device_, ": allocating ", size, " bytes: ", std::strerror(errno)));
    }
    void* mem = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_,
                       static_cast<off_t>(arg));
    if (mem == MAP_FAILED) {
      return absl::InternalError(absl::StrCat(
          device_, ": mapping ", size, " bytes: ", std::strerror(errno)));
    }
    DmaAllocation a{static_cast<uint8_t*>(mem), arg, size};
    std::memset(a.virt, 0, a.size);
    live_[a.virt] = a;
    return a;
  }

  absl::Status Free(const DmaAllocation& a) override {
    auto it = live_.find(a.virt);
    if (it == live_.end()) {
      return absl::InvalidArgumentError("not a live DMA buffer");
    }
    ::munmap(a.virt, it->second.size);
    // The module identifies a buffer by its (32-bit) user address.
    uint32_t arg = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(a.virt));
    live_.erase(it);
    if (::ioctl(fd_, kCmaFree, &arg) == -1) {
      return absl::InternalError(
          absl::StrCat(device_, ": free: ", std::strerror(errno)));
    }
    return absl::OkStatus();
  }

  // Non-cached memory: nothing to maintain.
  absl::Status SyncForDevice(const DmaAllocation&, size_t, size_t) override {
    return absl::OkStatus();
  }
  absl::Status SyncForCpu(const DmaAllocation&, size_t, size_t) override {
    return absl::OkStatus();
  }
  size_t max_alloc_bytes() const override { return max_alloc_; }
  std::string Describe() const override {
    return absl::StrCat("cma ", device_, " (uncached)");
  }

 private:
  int fd_;
  std::string device_;
  size_t max_alloc_;
  std::map<uint8_t*, DmaAllocation> live_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<DmaAllocator>> OpenCma(const std::string& device,
                                                      CacheMode mode,
                                                      size_t max_alloc_bytes) {
  if (mode != CacheMode::kUncached) {
    return absl::InvalidArgumentError(
        absl::StrCat("/dev/cma offers no cache maintenance: cache mode must "
                     "be \"uncached\", not \"",
                     CacheModeName(mode), "\""));
  }
  const int fd = ::open(device.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot open DMA allocator node ", device, ": ",
                     std::strerror(errno), " (is the cma module loaded?)"));
  }
  return std::unique_ptr<DmaAllocator>(
      new CmaAllocator(fd, device, max_alloc_bytes));
}

}  // namespace vtaserve::vta::driver
