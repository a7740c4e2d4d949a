#include "tests/vta_backend/driver/register_model.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "vta_backend/driver/dma_allocator.h"
#include "vta_backend/driver/register_window.h"
#include "vta_backend/driver/run_protocol.h"
#include "vta_backend/isa/isa.h"

namespace vtaserve::vta::testing {
namespace {

namespace hls = driver::hls;
namespace chisel = driver::chisel;

absl::StatusOr<int> MakeMemfd(const char* name, size_t bytes) {
  const int fd = ::memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) return absl::InternalError(std::strerror(errno));
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    ::close(fd);
    return absl::InternalError(std::strerror(errno));
  }
  return fd;
}

absl::StatusOr<void*> Map(int fd, size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return absl::InternalError(std::strerror(errno));
  return p;
}

// The driver's view of the model's DRAM: a region allocator over its own
// mapping, with counted explicit syncs.
class ModelDram : public driver::RegionDmaAllocator {
 public:
  ModelDram(void* map, size_t bytes, std::shared_ptr<std::atomic<int>> syncs)
      : RegionDmaAllocator(
            static_cast<uint8_t*>(map), RegisterModel::kPhysBase, bytes,
            driver::CacheMode::kExplicitSync,
            [syncs](bool, uint64_t, size_t) {
              syncs->fetch_add(1);
              return absl::OkStatus();
            },
            bytes, "register model DRAM"),
        map_(map),
        bytes_(bytes) {}
  ~ModelDram() override { ::munmap(map_, bytes_); }

 private:
  void* map_;
  size_t bytes_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<RegisterModel>> RegisterModel::Create(
    RegisterModelOptions options) {
  auto m = std::unique_ptr<RegisterModel>(new RegisterModel(options));
  absl::StatusOr<int> fd = MakeMemfd("vta_regs", m->regs_bytes_);
  if (!fd.ok()) return fd.status();
  m->regs_fd_ = *fd;
  fd = MakeMemfd("vta_dram", options.dram_bytes);
  if (!fd.ok()) return fd.status();
  m->dram_fd_ = *fd;
  absl::StatusOr<void*> p = Map(m->regs_fd_, m->regs_bytes_);
  if (!p.ok()) return p.status();
  m->regs_ = static_cast<uint32_t*>(*p);
  p = Map(m->dram_fd_, options.dram_bytes);
  if (!p.ok()) return p.status();
  m->dram_ = static_cast<uint8_t*>(*p);
  sim::SimOptions so;
  so.memory_bytes = options.dram_bytes + 2 * kPhysBase;
  so.max_alloc_bytes = options.dram_bytes;
  absl::StatusOr<std::unique_ptr<sim::SimDevice>> sim =
      sim::SimDevice::Create(options.config, so);
  if (!sim.ok()) return sim.status();
  m->sim_ = *std::move(sim);
  absl::StatusOr<DeviceBuffer> b = m->sim_->AllocBuffer(options.dram_bytes);
  if (!b.ok()) return b.status();
  if (b->phys_addr != kPhysBase) {
    return absl::InternalError("simulator DRAM does not start at 0x1000");
  }
  m->sim_dram_ = *b;
  if (options.design == driver::Design::kXilinxHls) {
    for (size_t block : {hls::kFetch, hls::kLoad, hls::kCompute, hls::kStore})
      m->SetReg(block + hls::kCtrl, hls::kApIdle);
  }
  m->thread_ = std::thread([raw = m.get()] { raw->Loop(); });
  return m;
}

RegisterModel::~RegisterModel() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (regs_ != nullptr) ::munmap(regs_, regs_bytes_);
  if (dram_ != nullptr) ::munmap(dram_, options_.dram_bytes);
  if (regs_fd_ >= 0) ::close(regs_fd_);
  if (dram_fd_ >= 0) ::close(dram_fd_);
}

absl::StatusOr<std::unique_ptr<driver::BoardDevice>> RegisterModel::OpenDevice(
    driver::PollOptions poll) {
  absl::StatusOr<std::unique_ptr<driver::MmapRegisterWindow>> regs =
      driver::MmapRegisterWindow::FromFd(regs_fd_, 0, regs_bytes_,
                                         "register model");
  if (!regs.ok()) return regs.status();
  absl::StatusOr<void*> p = Map(dram_fd_, options_.dram_bytes);
  if (!p.ok()) return p.status();
  auto memory = std::make_unique<ModelDram>(*p, options_.dram_bytes, syncs_);
  driver::BoardDeviceOptions bo;
  bo.device_address_offset = options_.device_address_offset;
  bo.clock_mhz = options_.config.clock_mhz;
  bo.description = "register model";
  return driver::BoardDevice::Create(
      *std::move(regs), std::move(memory),
      options_.design == driver::Design::kXilinxHls
          ? driver::MakeHlsProtocol(poll)
          : driver::MakeChiselProtocol(poll),
      bo);
}

uint32_t RegisterModel::Reg(size_t offset) const {
  return __atomic_load_n(&regs_[offset / 4], __ATOMIC_SEQ_CST);
}
void RegisterModel::SetReg(size_t offset, uint32_t value) {
  __atomic_store_n(&regs_[offset / 4], value, __ATOMIC_SEQ_CST);
}

void RegisterModel::ApplyBusError(bool on) {
  if (options_.design == driver::Design::kXilinxHls) {
    for (size_t block : {hls::kFetch, hls::kLoad, hls::kCompute, hls::kStore})
      SetReg(block + hls::kCtrl, on ? 0xffffffffu : hls::kApIdle);
    SetReg(hls::kCompute + hls::kComputeDone, on ? 0xffffffffu : 0);
  } else {
    SetReg(chisel::kCtrl, on ? 0xffffffffu : 0);
  }
}

void RegisterModel::SetFault(ModelFault fault) {
  const ModelFault old = fault_.exchange(fault);
  if (old == ModelFault::kBusError && fault != ModelFault::kBusError)
    ApplyBusError(false);
  if (fault == ModelFault::kBusError) ApplyBusError(true);
}

absl::Status RegisterModel::last_sim_error() const {
  absl::MutexLock lock(&mu_);
  return sim_error_;
}

void RegisterModel::RunStream(uint32_t insn_addr, uint32_t insn_count) {
  const uint64_t off = options_.device_address_offset;
  const uint64_t phys = uint64_t{insn_addr} - off;
  const uint64_t start = phys - kPhysBase;
  const uint64_t bytes = uint64_t{insn_count} * 16;
  absl::Status s;
  if (insn_addr < off + kPhysBase || start + bytes > options_.dram_bytes) {
    s = absl::InvalidArgumentError("instructions outside the model's DRAM");
  }
  std::vector<uint8_t> original;
  if (s.ok()) {
    original.assign(dram_ + start, dram_ + start + bytes);
    // The model's bus decodes device addresses (phys + offset): rebase the
    // stream's DRAM addresses for the simulator, which sees phys.
    if (off != 0) {
      absl::StatusOr<isa::IsaCodec> codec =
          isa::IsaCodec::Create(options_.config);
      for (uint32_t i = 0; codec.ok() && s.ok() && i < insn_count; ++i) {
        uint8_t* p = dram_ + start + i * 16;
        absl::StatusOr<isa::Insn> insn = codec->Decode(isa::LoadEncodedInsn(p));
        if (!insn.ok()) break;  // the simulator reports it
        if (auto* m = std::get_if<isa::MemInsn>(&*insn)) {
          if (m->x_size > 0) {
            m->dram_base -= static_cast<uint32_t>(
                off / isa::ElemBytes(options_.config, m->memory_type));
          }
          absl::StatusOr<isa::EncodedInsn> e = codec->Encode(*insn);
          if (e.ok()) isa::StoreEncodedInsn(*e, p);
        }
      }
    }
    s = sim_->CopyToDevice(sim_dram_, 0,
                           absl::MakeConstSpan(dram_, options_.dram_bytes));
  }
  if (s.ok()) {
    absl::StatusOr<RunStats> r =
        sim_->Run(static_cast<uint32_t>(phys), insn_count, absl::Seconds(600));
    s = r.status();
  }
  if (s.ok()) {
    s = sim_->CopyFromDevice(sim_dram_, 0,
                             absl::MakeSpan(dram_, options_.dram_bytes));
  }
  if (!original.empty())
    std::memcpy(dram_ + start, original.data(), original.size());
  if (!s.ok()) {
    absl::MutexLock lock(&mu_);
    sim_error_ = s;
  }
}

void RegisterModel::Loop() {
  const bool is_hls = options_.design == driver::Design::kXilinxHls;
  while (!stop_.load()) {
    const ModelFault fault = fault_.load();
    const size_t ctrl_reg = is_hls ? hls::kFetch + hls::kCtrl : chisel::kCtrl;
    const uint32_t ctrl = Reg(ctrl_reg);
    const uint32_t start_bit = is_hls ? hls::kApStart : chisel::kLaunch;
    if (fault == ModelFault::kBusError || ctrl == 0xffffffffu ||
        (ctrl & start_bit) == 0) {
      absl::SleepFor(absl::Microseconds(20));
      continue;
    }
    // Accepted: start clears, the block is busy.
    SetReg(ctrl_reg, 0);
    const uint32_t count =
        Reg(is_hls ? hls::kFetch + hls::kFetchInsnCount : chisel::kInsnCount);
    const uint32_t addr =
        Reg(is_hls ? hls::kFetch + hls::kFetchInsnAddr : chisel::kInsnAddr);
    if (is_hls) {
      if (fault == ModelFault::kStaleDone) absl::SleepFor(options_.stale_for);
      SetReg(hls::kCompute + hls::kComputeDone, 0);
    }
    if (fault == ModelFault::kNeverFinish) continue;
    RunStream(addr, count);
    runs_.fetch_add(1);
    if (fault == ModelFault::kLate) absl::SleepFor(options_.late_by);
    if ((Reg(ctrl_reg) & start_bit) != 0) overlapping_starts_.fetch_add(1);
    if (is_hls) {
      SetReg(hls::kCompute + hls::kComputeDone, 1);
      SetReg(hls::kFetch + hls::kCtrl, hls::kApIdle | hls::kApDone);
    } else {
      SetReg(chisel::kCtrl, chisel::kDone);
    }
  }
}

}  // namespace vtaserve::vta::testing
