#include "vta_backend/runtime/self_test.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/common/status_macros.h"
#include "vta_backend/runtime/command_queue.h"

namespace vtaserve::vta {
namespace {

// Frees a device buffer when it goes out of scope.
class ScopedBuffer {
 public:
  ScopedBuffer(VtaDevice& device, DeviceBuffer buffer)
      : device_(&device), buffer_(buffer) {}
  ScopedBuffer(ScopedBuffer&& o) noexcept
      : device_(o.device_), buffer_(o.buffer_) {
    o.buffer_ = DeviceBuffer{};
  }
  ScopedBuffer& operator=(ScopedBuffer&&) = delete;
  ~ScopedBuffer() {
    if (buffer_.valid()) device_->FreeBuffer(buffer_).IgnoreError();
  }
  const DeviceBuffer& get() const { return buffer_; }

 private:
  VtaDevice* device_;
  DeviceBuffer buffer_;
};

absl::StatusOr<ScopedBuffer> Upload(VtaDevice& device,
                                    const std::vector<uint8_t>& bytes) {
  VTASERVE_ASSIGN_OR_RETURN(DeviceBuffer b, device.AllocBuffer(bytes.size()));
  ScopedBuffer sb(device, b);
  VTASERVE_RETURN_IF_ERROR(device.CopyToDevice(b, 0, bytes));
  return sb;
}

}  // namespace

absl::Status RunDeviceSelfTest(VtaDevice& device, const VtaConfig& config,
                               absl::Duration timeout) {
  using isa::MemoryType;
  using isa::Stage;
  if (config.Batch() != 1) {
    return absl::UnimplementedError("self-test needs BATCH == 1");
  }
  const int bi = config.BlockIn(), bo = config.BlockOut();
  std::vector<uint8_t> x(config.InpElemBytes()), w(config.WgtElemBytes());
  uint32_t state = 0x2545F491u;  // xorshift32, fixed data
  auto next = [&state]() {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return static_cast<uint8_t>(state);
  };
  for (uint8_t& b : x) b = next();
  for (uint8_t& b : w) b = next();
  VTASERVE_ASSIGN_OR_RETURN(ScopedBuffer xb, Upload(device, x));
  VTASERVE_ASSIGN_OR_RETURN(ScopedBuffer wb, Upload(device, w));
  VTASERVE_ASSIGN_OR_RETURN(
      ScopedBuffer yb,
      Upload(device, std::vector<uint8_t>(config.OutElemBytes(), 0xAA)));
  VTASERVE_ASSIGN_OR_RETURN(CommandQueue q, CommandQueue::Create(config));
  UopKernel gemm;
  gemm.uops = {isa::Uop{0, 0, 0}};
  VTASERVE_ASSIGN_OR_RETURN(KernelId g, q.AddKernel(gemm));
  UopKernel alu;
  alu.uops = {isa::Uop{0, 0, 0}};
  VTASERVE_ASSIGN_OR_RETURN(KernelId a, q.AddKernel(alu));
  auto addr = [&](const ScopedBuffer& b, MemoryType t) {
    return CommandQueue::DramElemAddr(config, b.get(), t, 0);
  };
  VTASERVE_ASSIGN_OR_RETURN(uint32_t xa, addr(xb, MemoryType::kInp));
  VTASERVE_ASSIGN_OR_RETURN(uint32_t wa, addr(wb, MemoryType::kWgt));
  VTASERVE_ASSIGN_OR_RETURN(uint32_t ya, addr(yb, MemoryType::kOut));
  VTASERVE_RETURN_IF_ERROR(q.Load2D(MemoryType::kInp, 0, xa, 1, 1, 1));
  VTASERVE_RETURN_IF_ERROR(q.Load2D(MemoryType::kWgt, 0, wa, 1, 1, 1));
  VTASERVE_RETURN_IF_ERROR(q.DepPush(Stage::kLoad, Stage::kCompute));
  VTASERVE_RETURN_IF_ERROR(q.DepPop(Stage::kLoad, Stage::kCompute));
  VTASERVE_RETURN_IF_ERROR(q.Gemm(g, /*reset=*/true));
  VTASERVE_RETURN_IF_ERROR(q.Gemm(g, /*reset=*/false));
  VTASERVE_RETURN_IF_ERROR(q.Alu(a, isa::AluOpcode::kShr, true, 4));
  VTASERVE_RETURN_IF_ERROR(q.Alu(a, isa::AluOpcode::kAdd, true, 3));
  VTASERVE_RETURN_IF_ERROR(q.Alu(a, isa::AluOpcode::kMin, true, 127));
  VTASERVE_RETURN_IF_ERROR(q.Alu(a, isa::AluOpcode::kMax, true, -127));
  VTASERVE_RETURN_IF_ERROR(q.DepPush(Stage::kCompute, Stage::kStore));
  VTASERVE_RETURN_IF_ERROR(q.DepPop(Stage::kCompute, Stage::kStore));
  VTASERVE_RETURN_IF_ERROR(q.Store2D(0, ya, 1, 1, 1));
  VTASERVE_ASSIGN_OR_RETURN(Program program, q.Finalize());
  VTASERVE_RETURN_IF_ERROR(
      RunProgram(device, config, program, timeout).status());
  std::vector<uint8_t> y(config.OutElemBytes());
  VTASERVE_RETURN_IF_ERROR(
      device.CopyFromDevice(yb.get(), 0, absl::MakeSpan(y)));
  for (int o = 0; o < bo; ++o) {
    int32_t dot = 0;
    for (int k = 0; k < bi; ++k) {
      dot += static_cast<int8_t>(x[k]) * static_cast<int8_t>(w[o * bi + k]);
    }
    const int32_t expect = std::clamp((dot >> 4) + 3, -127, 127);
    if (static_cast<int8_t>(y[o]) != expect) {
      return absl::InternalError(absl::StrCat(
          "VTA self-test: output ", o, " is ", static_cast<int8_t>(y[o]),
          ", expected ", expect, " (the device computes wrong results)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace vtaserve::vta
