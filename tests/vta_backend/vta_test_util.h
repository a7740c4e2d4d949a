// Shared helpers for the vta_backend tests: a fixture owning a simulator for
// a parameterized config preset, raw-instruction upload, and byte helpers.
#ifndef VTASERVE_TESTS_VTA_BACKEND_VTA_TEST_UTIL_H_
#define VTASERVE_TESTS_VTA_BACKEND_VTA_TEST_UTIL_H_

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "vta_backend/config.h"
#include "vta_backend/isa/isa.h"
#include "vta_backend/sim/sim_device.h"

namespace vtaserve::vta::testing {

class VtaSimTest : public ::testing::TestWithParam<const char*> {
 public:
  void SetUp() override { Init(GetParam()); }

  void Init(const char* preset) {
    auto config = VtaConfigPreset(preset);
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = *config;
    ResetDevice();
  }

  void ResetDevice(sim::SimOptions options = {}) {
    auto dev = sim::SimDevice::Create(config_, options);
    ASSERT_TRUE(dev.ok()) << dev.status();
    dev_ = *std::move(dev);
    auto codec = isa::IsaCodec::Create(config_);
    ASSERT_TRUE(codec.ok()) << codec.status();
    codec_ = std::make_unique<isa::IsaCodec>(*codec);
  }

  // A device buffer holding `bytes` (at least 1 byte allocated).
  DeviceBuffer Upload(const std::vector<uint8_t>& bytes) {
    auto buf = dev_->AllocBuffer(bytes.empty() ? 1 : bytes.size());
    EXPECT_TRUE(buf.ok()) << buf.status();
    if (!bytes.empty()) {
      EXPECT_TRUE(dev_->CopyToDevice(*buf, 0, bytes).ok());
    }
    return *buf;
  }
  DeviceBuffer Zeros(size_t bytes) {
    return Upload(std::vector<uint8_t>(bytes, 0));
  }
  std::vector<uint8_t> Download(const DeviceBuffer& buf) {
    std::vector<uint8_t> out(buf.size);
    EXPECT_TRUE(dev_->CopyFromDevice(buf, 0, absl::MakeSpan(out)).ok());
    return out;
  }
  // Element address of `buf` for memory type `t`.
  uint32_t Elem(const DeviceBuffer& buf, isa::MemoryType t, uint32_t off = 0) {
    return buf.phys_addr / isa::ElemBytes(config_, t) + off;
  }

  // Encodes `insns` (must all encode) and runs them.
  absl::StatusOr<RunStats> RunRaw(const std::vector<isa::Insn>& insns,
                                  absl::Duration timeout = absl::Seconds(1)) {
    std::vector<uint8_t> bytes(insns.size() * 16);
    for (size_t i = 0; i < insns.size(); ++i) {
      auto e = codec_->Encode(insns[i]);
      if (!e.ok()) return e.status();
      isa::StoreEncodedInsn(*e, &bytes[i * 16]);
    }
    DeviceBuffer buf = Upload(bytes);
    auto r =
        dev_->Run(buf.phys_addr, static_cast<uint32_t>(insns.size()), timeout);
    EXPECT_TRUE(dev_->FreeBuffer(buf).ok());
    return r;
  }

  // Little-endian uop words for a LOAD UOP.
  DeviceBuffer UopBuffer(const std::vector<isa::Uop>& uops) {
    std::vector<uint8_t> bytes(uops.size() * 4);
    for (size_t i = 0; i < uops.size(); ++i) {
      auto w = codec_->EncodeUop(uops[i]);
      EXPECT_TRUE(w.ok()) << w.status();
      std::memcpy(&bytes[i * 4], &*w, 4);
    }
    return Upload(bytes);
  }

  static isa::MemInsn Load(isa::MemoryType type, uint32_t sram, uint32_t dram,
                           uint32_t y, uint32_t x, uint32_t stride) {
    isa::MemInsn m;
    m.opcode = isa::Opcode::kLoad;
    m.memory_type = type;
    m.sram_base = sram;
    m.dram_base = dram;
    m.y_size = y;
    m.x_size = x;
    m.x_stride = stride;
    return m;
  }
  static isa::MemInsn Store(uint32_t sram, uint32_t dram, uint32_t y,
                            uint32_t x, uint32_t stride) {
    isa::MemInsn m = Load(isa::MemoryType::kOut, sram, dram, y, x, stride);
    m.opcode = isa::Opcode::kStore;
    return m;
  }
  static isa::MemInsn ComputeNop() {
    return Load(isa::MemoryType::kUop, 0, 0, 0, 0, 0);
  }

  static std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> v(n);
    for (auto& b : v) b = static_cast<uint8_t>(rng());
    return v;
  }

  VtaConfig config_;
  std::unique_ptr<sim::SimDevice> dev_;
  std::unique_ptr<isa::IsaCodec> codec_;
};

}  // namespace vtaserve::vta::testing

#endif  // VTASERVE_TESTS_VTA_BACKEND_VTA_TEST_UTIL_H_
