#include "vta_backend/sim/sim_device.h"

#include <cstring>
#include <random>
#include <vector>

#include "cpu_backend/parallel_runner.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/vta_backend/vta_test_util.h"

namespace vtaserve::vta::testing {
namespace {

using isa::AluInsn;
using isa::AluOpcode;
using isa::EncodedInsn;
using isa::FinishInsn;
using isa::GemmInsn;
using isa::Insn;
using isa::MemInsn;
using isa::MemoryType;
using isa::Uop;
using ::testing::HasSubstr;
using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::StatusIs;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

GemmInsn Gemm(uint32_t bgn, uint32_t end, uint32_t iter_out, uint32_t iter_in,
              bool reset = false) {
  GemmInsn g;
  g.reset = reset;
  g.uop_bgn = bgn;
  g.uop_end = end;
  g.iter_out = iter_out;
  g.iter_in = iter_in;
  return g;
}

AluInsn Alu(AluOpcode op, bool use_imm, int16_t imm, uint32_t iter_in = 1) {
  AluInsn a;
  a.uop_bgn = 0;
  a.uop_end = 1;
  a.iter_out = 1;
  a.iter_in = iter_in;
  a.dst_factor_in = 1;
  a.src_factor_in = 1;
  a.alu_opcode = op;
  a.use_imm = use_imm;
  a.imm = imm;
  return a;
}

class SimDeviceTest : public VtaSimTest {
 protected:
  // Runs raw 16-byte words.
  absl::StatusOr<RunStats> RunWords(const std::vector<EncodedInsn>& words,
                                    absl::Duration timeout = absl::Seconds(1)) {
    std::vector<uint8_t> bytes(words.size() * 16);
    for (size_t i = 0; i < words.size(); ++i) {
      isa::StoreEncodedInsn(words[i], &bytes[i * 16]);
    }
    DeviceBuffer buf = Upload(bytes);
    auto r =
        dev_->Run(buf.phys_addr, static_cast<uint32_t>(words.size()), timeout);
    EXPECT_THAT(dev_->FreeBuffer(buf), IsOk());
    return r;
  }
};

TEST_P(SimDeviceTest, AllocatesPageAlignedNonZeroAddresses) {
  VTASERVE_ASSERT_OK_AND_ASSIGN(DeviceBuffer a, dev_->AllocBuffer(100));
  VTASERVE_ASSERT_OK_AND_ASSIGN(DeviceBuffer b, dev_->AllocBuffer(5000));
  EXPECT_NE(a.phys_addr, 0u);
  EXPECT_EQ(a.phys_addr % 4096, 0u);
  EXPECT_EQ(b.phys_addr % 4096, 0u);
  EXPECT_NE(a.phys_addr, b.phys_addr);
  EXPECT_THAT(dev_->FreeBuffer(a), IsOk());
  EXPECT_THAT(dev_->FreeBuffer(a), StatusIs(kInvalid));
  std::vector<uint8_t> big(200);
  EXPECT_THAT(dev_->CopyToDevice(a, 0, big), StatusIs(kInvalid));  // freed
  EXPECT_THAT(dev_->CopyToDevice(b, 4900, big), StatusIs(kInvalid));
  VTASERVE_ASSERT_OK_AND_ASSIGN(DeviceBuffer c, dev_->AllocBuffer(4096));
  EXPECT_EQ(c.phys_addr, a.phys_addr);  // freed pages are reused
  EXPECT_THAT(dev_->AllocBuffer(0), StatusIs(kInvalid));
}

// LOAD ACC (near INT32_MAX), LOAD INP/WGT, GEMM x3 (wraps), ALU SHR 8,
// STORE; compared with a scalar computation.
TEST_P(SimDeviceTest, GemmAccumulatesWithWrapAround) {
  const int batch = config_.Batch(), bi = config_.BlockIn(),
            bo = config_.BlockOut();
  std::vector<uint8_t> inp = RandomBytes(config_.InpElemBytes(), 1);
  std::vector<uint8_t> wgt = RandomBytes(config_.WgtElemBytes(), 2);
  std::vector<int32_t> acc0(batch * bo);
  for (int j = 0; j < batch * bo; ++j) acc0[j] = 0x7fffff00 + j * 3;
  std::vector<uint8_t> acc_bytes(acc0.size() * 4);
  std::memcpy(acc_bytes.data(), acc0.data(), acc_bytes.size());
  DeviceBuffer inp_buf = Upload(inp), wgt_buf = Upload(wgt),
               acc_buf = Upload(acc_bytes),
               out_buf = Zeros(config_.OutElemBytes()),
               uop_buf = UopBuffer({Uop{0, 0, 0}});
  MemInsn load_w =
      Load(MemoryType::kWgt, 0, Elem(wgt_buf, MemoryType::kWgt), 1, 1, 1);
  load_w.dep.push_next = true;
  GemmInsn g = Gemm(0, 1, 1, 3);
  g.dep.pop_prev = true;
  AluInsn shr = Alu(AluOpcode::kShr, true, 8);
  shr.dep.push_next = true;
  MemInsn st = Store(0, Elem(out_buf, MemoryType::kOut), 1, 1, 1);
  st.dep.pop_prev = st.dep.push_prev = true;
  MemInsn nop = ComputeNop();
  nop.dep.pop_next = true;
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      RunStats stats,
      RunRaw(
          {Load(MemoryType::kUop, 0, Elem(uop_buf, MemoryType::kUop), 1, 1, 1),
           Load(MemoryType::kAcc, 0, Elem(acc_buf, MemoryType::kAcc), 1, 1, 1),
           Load(MemoryType::kInp, 0, Elem(inp_buf, MemoryType::kInp), 1, 1, 1),
           load_w, g, shr, st, nop, FinishInsn{}}));
  std::vector<uint8_t> out = Download(out_buf);
  for (int b = 0; b < batch; ++b) {
    for (int o = 0; o < bo; ++o) {
      int32_t dot = 0;
      for (int k = 0; k < bi; ++k) {
        dot += static_cast<int8_t>(inp[b * bi + k]) *
               static_cast<int8_t>(wgt[o * bi + k]);
      }
      const uint32_t sum = static_cast<uint32_t>(acc0[b * bo + o]) +
                           3u * static_cast<uint32_t>(dot);
      const int32_t shifted = static_cast<int32_t>(sum) >> 8;
      EXPECT_EQ(static_cast<int8_t>(out[b * bo + o]),
                static_cast<int8_t>(shifted))
          << "b=" << b << " o=" << o;
    }
  }
  EXPECT_EQ(stats.sim.gemm_counter, 3u);
  EXPECT_EQ(stats.sim.alu_counter, 1u);
  EXPECT_EQ(stats.sim.inp_load_nbytes,
            static_cast<uint64_t>(config_.InpElemBytes()));
  EXPECT_EQ(stats.sim.wgt_load_nbytes,
            static_cast<uint64_t>(config_.WgtElemBytes()));
  EXPECT_EQ(stats.sim.acc_load_nbytes,
            static_cast<uint64_t>(config_.AccElemBytes()));
  EXPECT_EQ(stats.sim.uop_load_nbytes, 4u);
  EXPECT_EQ(stats.sim.out_store_nbytes,
            static_cast<uint64_t>(config_.OutElemBytes()));
  EXPECT_EQ(stats.sim.leftover_tokens, 0u);
}

// A padded 2D INP load pushed through an identity GEMM and stored.
TEST_P(SimDeviceTest, LoadPadsWithZeros) {
  const int bi = config_.BlockIn(), lanes = config_.InpLanes();
  ASSERT_EQ(config_.BlockIn(), config_.BlockOut());
  const uint32_t rows = 2, cols = 3, stride = 5, py0 = 1, py1 = 2, px0 = 2,
                 px1 = 1;
  const uint32_t yt = py0 + rows + py1, xt = px0 + cols + px1;
  std::vector<uint8_t> src =
      RandomBytes(rows * stride * config_.InpElemBytes(), 3);
  std::vector<uint8_t> wgt(config_.WgtElemBytes(), 0);
  for (int o = 0; o < bi; ++o) wgt[o * bi + o] = 1;
  DeviceBuffer src_buf = Upload(src), wgt_buf = Upload(wgt),
               out_buf = Zeros(yt * xt * config_.OutElemBytes()),
               uop_buf = UopBuffer({Uop{0, 0, 0}});
  MemInsn ld = Load(MemoryType::kInp, 0, Elem(src_buf, MemoryType::kInp), rows,
                    cols, stride);
  ld.y_pad_0 = py0;
  ld.y_pad_1 = py1;
  ld.x_pad_0 = px0;
  ld.x_pad_1 = px1;
  MemInsn lw =
      Load(MemoryType::kWgt, 0, Elem(wgt_buf, MemoryType::kWgt), 1, 1, 1);
  lw.dep.push_next = true;
  GemmInsn reset = Gemm(0, 1, 1, yt * xt, true);
  reset.dst_factor_in = 1;
  GemmInsn g = Gemm(0, 1, yt, xt);
  g.dep.pop_prev = true;
  g.dep.push_next = true;
  g.dst_factor_out = g.src_factor_out = xt;
  g.dst_factor_in = g.src_factor_in = 1;
  MemInsn st = Store(0, Elem(out_buf, MemoryType::kOut), 1, yt * xt, yt * xt);
  st.dep.pop_prev = st.dep.push_prev = true;
  MemInsn nop = ComputeNop();
  nop.dep.pop_next = true;
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      RunStats stats, RunRaw({Load(MemoryType::kUop, 0,
                                   Elem(uop_buf, MemoryType::kUop), 1, 1, 1),
                              ld, lw, reset, g, st, nop, FinishInsn{}}));
  std::vector<uint8_t> out = Download(out_buf);
  for (uint32_t y = 0; y < yt; ++y) {
    for (uint32_t x = 0; x < xt; ++x) {
      const bool inside =
          y >= py0 && y < py0 + rows && x >= px0 && x < px0 + cols;
      for (int l = 0; l < lanes; ++l) {
        const uint8_t expect =
            inside ? src[((y - py0) * stride + (x - px0)) * lanes + l] : 0;
        ASSERT_EQ(out[(y * xt + x) * lanes + l], expect)
            << y << "," << x << "," << l;
      }
    }
  }
  EXPECT_EQ(stats.sim.inp_load_nbytes,
            rows * cols * static_cast<uint64_t>(config_.InpElemBytes()));
}

// STORE reads the OUT buffer: LOAD ACC does not update it, GEMM/ALU do,
// reset GEMM does not.
TEST_P(SimDeviceTest, StoreReadsOutBufferNotAcc) {
  const int lanes = config_.AccLanes();
  std::vector<int32_t> acc_vals(lanes, 77);
  std::vector<uint8_t> acc_bytes(lanes * 4);
  std::memcpy(acc_bytes.data(), acc_vals.data(), acc_bytes.size());
  DeviceBuffer acc_buf = Upload(acc_bytes), uop_buf = UopBuffer({Uop{0, 0, 0}}),
               out_buf = Zeros(3 * config_.OutElemBytes());
  const uint32_t out_addr = Elem(out_buf, MemoryType::kOut);
  auto sync_store = [&](uint32_t slot) {
    // ALU/whatever before -> push to store; store pops, pushes back.
    MemInsn st = Store(0, out_addr + slot, 1, 1, 1);
    st.dep.pop_prev = st.dep.push_prev = true;
    return st;
  };
  MemInsn nop_push = ComputeNop();
  nop_push.dep.push_next = true;
  MemInsn nop_pop = ComputeNop();
  nop_pop.dep.pop_next = true;
  AluInsn add5 = Alu(AluOpcode::kAdd, true, 5);
  AluInsn shr0 = Alu(AluOpcode::kShr, true, 0);
  shr0.dep.pop_next = true;
  shr0.dep.push_next = true;
  GemmInsn reset = Gemm(0, 1, 1, 1, true);
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      RunStats stats,
      RunRaw(
          {Load(MemoryType::kUop, 0, Elem(uop_buf, MemoryType::kUop), 1, 1, 1),
           add5,  // ACC=OUT=5
           Load(MemoryType::kAcc, 0, Elem(acc_buf, MemoryType::kAcc), 1, 1,
                1),                  // ACC=77
           nop_push, sync_store(0),  // stores 5 (OUT)
           shr0, sync_store(1),      // OUT = 77
           nop_pop, reset,           // ACC = 0, OUT stays 77
           nop_push, sync_store(2), nop_pop, FinishInsn{}}));
  std::vector<uint8_t> out = Download(out_buf);
  for (int l = 0; l < lanes; ++l) {
    EXPECT_EQ(out[l], 5);
    EXPECT_EQ(out[lanes + l], 77);
    EXPECT_EQ(out[2 * lanes + l], 77);
  }
  EXPECT_EQ(stats.sim.leftover_tokens, 0u);
}

// A second LOAD INP into the same SRAM slot must wait (C->L token) until the
// first GEMM has consumed the first input; with the token the results use
// both inputs in order.
TEST_P(SimDeviceTest, DependencyTokensOrderLoadAfterCompute) {
  const int bi = config_.BlockIn(), lanes = config_.InpLanes();
  std::vector<uint8_t> in_a(config_.InpElemBytes(), 1),
      in_b(config_.InpElemBytes(), 2);
  std::vector<uint8_t> wgt(config_.WgtElemBytes(), 0);
  for (int o = 0; o < bi; ++o) wgt[o * bi + o] = 1;
  DeviceBuffer a_buf = Upload(in_a), b_buf = Upload(in_b), w_buf = Upload(wgt),
               out_buf = Zeros(2 * config_.OutElemBytes()),
               uop_buf = UopBuffer({Uop{0, 0, 0}, Uop{1, 0, 0}});
  MemInsn la =
      Load(MemoryType::kInp, 0, Elem(a_buf, MemoryType::kInp), 1, 1, 1);
  MemInsn lw =
      Load(MemoryType::kWgt, 0, Elem(w_buf, MemoryType::kWgt), 1, 1, 1);
  lw.dep.push_next = true;
  MemInsn lb =
      Load(MemoryType::kInp, 0, Elem(b_buf, MemoryType::kInp), 1, 1, 1);
  lb.dep.pop_next = true;  // WAR: wait until GEMM 1 read slot 0
  lb.dep.push_next = true;
  GemmInsn reset = Gemm(0, 2, 1, 1, true);
  GemmInsn g1 = Gemm(0, 1, 1, 1);
  g1.dep.pop_prev = true;
  g1.dep.push_prev = true;
  GemmInsn g2 = Gemm(1, 2, 1, 1);
  g2.dep.pop_prev = true;
  g2.dep.push_next = true;
  MemInsn st = Store(0, Elem(out_buf, MemoryType::kOut), 1, 2, 2);
  st.dep.pop_prev = st.dep.push_prev = true;
  MemInsn nop = ComputeNop();
  nop.dep.pop_next = true;
  // Give the load module a head start: the GEMMs are long (many iterations
  // of a zero-factor loop would be a hazard on hardware, so instead delay
  // compute with a long ALU on another element).
  AluInsn slow = Alu(AluOpcode::kAdd, true, 0, 1);
  slow.iter_out = 2000;
  slow.uop_bgn = 1;
  slow.uop_end = 2;
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      RunStats stats,
      RunRaw(
          {Load(MemoryType::kUop, 0, Elem(uop_buf, MemoryType::kUop), 1, 2, 2),
           la, lw, reset, slow, g1, lb, g2, st, nop, FinishInsn{}}));
  std::vector<uint8_t> out = Download(out_buf);
  for (int l = 0; l < lanes; ++l) {
    EXPECT_EQ(out[l], 1) << l;          // first GEMM saw input A
    EXPECT_EQ(out[lanes + l], 2) << l;  // second saw input B
  }
  EXPECT_GT(stats.sim.load_stall_cycles, 0u);  // the load waited for compute
}

TEST_P(SimDeviceTest, GemmOfNUopsTakesAtLeastNCycles) {
  DeviceBuffer uop_buf = UopBuffer({Uop{0, 0, 0}, Uop{1, 1, 0}, Uop{2, 2, 0}});
  GemmInsn g = Gemm(0, 3, 10, 100);
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      RunStats stats, RunRaw({Load(MemoryType::kUop, 0,
                                   Elem(uop_buf, MemoryType::kUop), 1, 3, 3),
                              g, FinishInsn{}}));
  EXPECT_EQ(stats.sim.gemm_counter, 3000u);
  EXPECT_GE(stats.sim.gemm_cycles, 3000u);
  EXPECT_GE(stats.cycles, stats.sim.gemm_cycles);
  EXPECT_GE(stats.sim.compute_busy_cycles, stats.sim.gemm_cycles);
  EXPECT_DOUBLE_EQ(stats.device_seconds,
                   stats.cycles / (config_.clock_mhz * 1e6));
}

// ---- Rejections. ----

TEST_P(SimDeviceTest, RejectsInvalidOpcode) {
  EXPECT_THAT(RunWords({EncodedInsn{5, 0}, EncodedInsn{3, 0}}),
              StatusIs(kInvalid, HasSubstr("opcode")));
  EXPECT_THAT(RunWords({EncodedInsn{uint64_t{7} << 7, 0}, EncodedInsn{3, 0}}),
              StatusIs(kInvalid, HasSubstr("memory_type")));
}

TEST_P(SimDeviceTest, RejectsMissingFinishAndTrailingInstructions) {
  EXPECT_THAT(RunRaw({ComputeNop()}), StatusIs(kInvalid, HasSubstr("FINISH")));
  EXPECT_THAT(RunRaw({FinishInsn{}, ComputeNop()}),
              StatusIs(kInvalid, HasSubstr("after FINISH")));
  EXPECT_THAT(dev_->Run(0, 1, absl::Seconds(1)), StatusIs(kInvalid));
  EXPECT_THAT(dev_->Run(4096, 0, absl::Seconds(1)), StatusIs(kInvalid));
}

TEST_P(SimDeviceTest, RejectsSramRangeBeyondDepth) {
  DeviceBuffer buf = Zeros(4 * config_.InpElemBytes());
  const uint32_t depth = config_.InpDepth();
  EXPECT_THAT(RunRaw({Load(MemoryType::kInp, depth - 1,
                           Elem(buf, MemoryType::kInp), 1, 2, 2),
                      FinishInsn{}}),
              StatusIs(kInvalid, HasSubstr("SRAM")));
  EXPECT_THAT(RunRaw({Store(config_.AccDepth() - 1, Elem(buf, MemoryType::kOut),
                            1, 2, 2),
                      FinishInsn{}}),
              StatusIs(kInvalid, HasSubstr("SRAM")));
}

TEST_P(SimDeviceTest, RejectsDramRangeOutsideBuffers) {
  DeviceBuffer buf = Zeros(4 * config_.InpElemBytes());
  // Reads one element past the end.
  EXPECT_THAT(
      RunRaw({Load(MemoryType::kInp, 0, Elem(buf, MemoryType::kInp), 1, 5, 5),
              FinishInsn{}}),
      StatusIs(kInvalid, HasSubstr("DRAM")));
  // Second row beyond the buffer through the stride.
  EXPECT_THAT(
      RunRaw({Load(MemoryType::kInp, 0, Elem(buf, MemoryType::kInp), 2, 1, 4),
              FinishInsn{}}),
      StatusIs(kInvalid, HasSubstr("DRAM")));
  // Unallocated address.
  EXPECT_THAT(RunRaw({Store(0, 0, 1, 1, 1), FinishInsn{}}),
              StatusIs(kInvalid, HasSubstr("DRAM")));
}

TEST_P(SimDeviceTest, RejectsZeroIterationsAndEmptyUopRanges) {
  EXPECT_THAT(RunRaw({Gemm(0, 1, 0, 1), FinishInsn{}}), StatusIs(kInvalid));
  EXPECT_THAT(RunRaw({Gemm(0, 1, 1, 0), FinishInsn{}}), StatusIs(kInvalid));
  EXPECT_THAT(RunRaw({Gemm(3, 3, 1, 1), FinishInsn{}}), StatusIs(kInvalid));
  AluInsn a = Alu(AluOpcode::kAdd, true, 1);
  a.iter_in = 0;
  EXPECT_THAT(RunRaw({a, FinishInsn{}}), StatusIs(kInvalid));
  EXPECT_THAT(RunRaw({Gemm(0, config_.UopDepth() + 1, 1, 1), FinishInsn{}}),
              StatusIs(kInvalid));
}

TEST_P(SimDeviceTest, RejectsUopIndexOutOfRangeAtExecution) {
  const uint32_t last = config_.AccDepth() - 1;
  DeviceBuffer uop_buf = UopBuffer({Uop{last, 0, 0}});
  GemmInsn g = Gemm(0, 1, 1, 2);
  g.dst_factor_in = 1;  // second iteration writes ACC[depth]
  EXPECT_THAT(RunRaw({Load(MemoryType::kUop, 0, Elem(uop_buf, MemoryType::kUop),
                           1, 1, 1),
                      g, FinishInsn{}}),
              StatusIs(kInvalid, HasSubstr("exceeds depth")));
  AluInsn a =
      Alu(AluOpcode::kAdd, false, 0, 2);  // src 0,1 fine; dst last, last+1
  EXPECT_THAT(RunRaw({Load(MemoryType::kUop, 0, Elem(uop_buf, MemoryType::kUop),
                           1, 1, 1),
                      a, FinishInsn{}}),
              StatusIs(kInvalid, HasSubstr("exceeds depth")));
}

TEST_P(SimDeviceTest, DetectsDeadlockOnUnmatchedPop) {
  GemmInsn g = Gemm(0, 1, 1, 1);
  g.dep.pop_prev = true;  // nobody pushes load->compute
  EXPECT_THAT(RunRaw({g, FinishInsn{}}),
              StatusIs(kInvalid, HasSubstr("deadlock")));
  MemInsn st = Store(0, 0, 0, 0, 0);  // store NOP waiting for compute
  st.dep.pop_prev = true;
  EXPECT_THAT(RunRaw({st, FinishInsn{}}),
              StatusIs(kInvalid, HasSubstr("deadlock")));
}

TEST_P(SimDeviceTest, RejectsIllegalDependencyFlags) {
  MemInsn l = Load(MemoryType::kInp, 0, 0, 0, 0, 0);
  l.dep.pop_prev = true;
  EXPECT_THAT(RunRaw({l, FinishInsn{}}), StatusIs(kInvalid));
  MemInsn s = Store(0, 0, 0, 0, 0);
  s.dep.push_next = true;
  EXPECT_THAT(RunRaw({s, FinishInsn{}}), StatusIs(kInvalid));
  FinishInsn f;
  f.dep.pop_prev = true;
  EXPECT_THAT(RunRaw({f}), StatusIs(kInvalid));
}

TEST_P(SimDeviceTest, RejectsUnsupportedOperations) {
  // MUL and ACC_8BIT on a configuration without them.
  EXPECT_THAT(RunRaw({Alu(AluOpcode::kMul, true, 3), FinishInsn{}}),
              StatusIs(kInvalid, HasSubstr("MUL")));
  DeviceBuffer buf = Zeros(64);
  EXPECT_THAT(RunRaw({Load(MemoryType::kAcc8Bit, 0,
                           Elem(buf, MemoryType::kAcc8Bit), 1, 1, 1),
                      FinishInsn{}}),
              StatusIs(kInvalid, HasSubstr("ACC_8BIT")));
  EXPECT_THAT(
      RunRaw({Load(MemoryType::kOut, 0, Elem(buf, MemoryType::kOut), 1, 1, 1),
              FinishInsn{}}),
      StatusIs(kInvalid));
  MemInsn st = Store(0, Elem(buf, MemoryType::kOut), 1, 1, 1);
  st.x_pad_0 = 1;
  EXPECT_THAT(RunRaw({st, FinishInsn{}}), StatusIs(kInvalid));
}

TEST_P(SimDeviceTest, TimesOutOnHugeInstructionWithoutHanging) {
  DeviceBuffer uop_buf = UopBuffer({Uop{0, 0, 0}});
  GemmInsn g = Gemm(0, 1, 16383, 16383);  // 2.7e8 uop executions
  EXPECT_THAT(RunRaw({Load(MemoryType::kUop, 0, Elem(uop_buf, MemoryType::kUop),
                           1, 1, 1),
                      g, FinishInsn{}},
                     absl::Milliseconds(1)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

// Random 128-bit words (with valid and invalid opcodes) as instruction
// streams: every run returns a status; the device stays usable.
TEST_P(SimDeviceTest, RandomStreamsNeverCrashOrHang) {
  std::mt19937_64 rng(1234);
  DeviceBuffer data = Zeros(1 << 16);
  int failed = 0;
  for (int iter = 0; iter < 500; ++iter) {
    const int n = 1 + static_cast<int>(rng() % 24);
    std::vector<EncodedInsn> words;
    for (int i = 0; i < n; ++i) {
      EncodedInsn w{rng(), rng()};
      if (iter % 2 == 0) {
        // Bias towards decodable instructions with small fields so that
        // some get past validation.
        w.lo &= 0x00000000ffffffffull;
        w.hi &= 0x0000000300030003ull;
        if ((w.lo & 7) == 0 || (w.lo & 7) == 1) {
          w.lo = (w.lo & ~(uint64_t{0xffffffff} << 26)) |
                 (uint64_t{data.phys_addr / 64} << 26);
        }
      }
      words.push_back(w);
    }
    if (rng() % 2) words.push_back(EncodedInsn{3, 0});
    auto r = RunWords(words, absl::Milliseconds(1));
    if (!r.ok()) {
      ++failed;
      const auto code = r.status().code();
      ASSERT_TRUE(code == kInvalid ||
                  code == absl::StatusCode::kDeadlineExceeded)
          << r.status();
    }
  }
  EXPECT_GT(failed, 0);
  // Still functional.
  EXPECT_THAT(RunRaw({ComputeNop(), FinishInsn{}}), IsOk());
}

// Structurally valid but random instructions (random types, small fields,
// random dependency flags, DRAM inside a buffer): many pass validation and
// execute; none may crash, hang or return anything but OK, InvalidArgument
// or DeadlineExceeded.
TEST_P(SimDeviceTest, RandomValidLookingProgramsExecuteSafely) {
  std::mt19937 rng(99);
  auto small = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
  const size_t data_bytes = 1 << 16;
  DeviceBuffer data = Zeros(data_bytes);
  std::vector<Uop> uops;
  for (int i = 0; i < 64; ++i)
    uops.push_back(Uop{small(40), small(40), small(40)});
  DeviceBuffer uop_buf = UopBuffer(uops);
  int ok = 0;
  for (int iter = 0; iter < 400; ++iter) {
    std::vector<Insn> insns;
    insns.push_back(
        Load(MemoryType::kUop, 0, Elem(uop_buf, MemoryType::kUop), 1, 64, 64));
    const int n = 1 + small(12);
    for (int i = 0; i < n; ++i) {
      Insn insn;
      switch (small(5)) {
        case 0: {
          const MemoryType t =
              static_cast<MemoryType>(small(isa::kNumMemoryTypes));
          const uint32_t eb = isa::ElemBytes(config_, t);
          MemInsn m = Load(t, small(48), data.phys_addr / eb + small(8),
                           small(4), small(5), 1 + small(6));
          m.x_pad_0 = small(2);
          m.y_pad_1 = small(2);
          if (t == MemoryType::kUop) m.y_size = 1, m.x_pad_0 = m.y_pad_1 = 0;
          m.dep.pop_next = small(4) == 0;
          m.dep.push_next = small(4) == 0;
          insn = m;
          break;
        }
        case 1: {
          MemInsn m = Store(small(48), Elem(data, MemoryType::kOut, small(8)),
                            small(4), small(5), 1 + small(6));
          m.dep.pop_prev = small(4) == 0;
          m.dep.push_prev = small(4) == 0;
          insn = m;
          break;
        }
        case 2: {
          GemmInsn g =
              Gemm(small(60), 0, 1 + small(4), 1 + small(4), small(3) == 0);
          g.uop_end = g.uop_bgn + 1 + small(4);
          g.dst_factor_out = small(8);
          g.dst_factor_in = small(8);
          g.src_factor_out = small(8);
          g.src_factor_in = small(8);
          g.wgt_factor_out = small(8);
          g.wgt_factor_in = small(8);
          g.dep.pop_prev = small(4) == 0;
          g.dep.push_next = small(4) == 0;
          insn = g;
          break;
        }
        case 3: {
          AluInsn a =
              Alu(static_cast<AluOpcode>(small(4)), small(2) == 0,
                  static_cast<int16_t>(static_cast<int>(small(64)) - 32),
                  1 + small(4));
          a.uop_bgn = small(60);
          a.uop_end = a.uop_bgn + 1 + small(4);
          a.dep.pop_next = small(4) == 0;
          a.dep.push_prev = small(4) == 0;
          insn = a;
          break;
        }
        default:
          insn = ComputeNop();
      }
      insns.push_back(insn);
    }
    insns.push_back(FinishInsn{});
    auto r = RunRaw(insns, absl::Milliseconds(1));
    if (r.ok()) {
      ++ok;
    } else {
      const auto code = r.status().code();
      ASSERT_TRUE(code == kInvalid ||
                  code == absl::StatusCode::kDeadlineExceeded)
          << r.status();
    }
  }
  EXPECT_GT(ok, 20);  // the generator does reach execution
  EXPECT_THAT(RunRaw({ComputeNop(), FinishInsn{}}), IsOk());
}

TEST_P(SimDeviceTest, PortableAndSimdKernelsAgree) {
  // Same random GEMM on both kernels.
  std::vector<std::vector<uint8_t>> results;
  for (bool portable : {false, true}) {
    sim::SimOptions options;
    options.force_portable_kernels = portable;
    ASSERT_NO_FATAL_FAILURE(ResetDevice(options));
    const int n = 8;
    std::vector<uint8_t> inp = RandomBytes(n * config_.InpElemBytes(), 5);
    std::vector<uint8_t> wgt = RandomBytes(n * config_.WgtElemBytes(), 6);
    DeviceBuffer ib = Upload(inp), wb = Upload(wgt),
                 ob = Zeros(n * config_.OutElemBytes());
    std::vector<Uop> uops;
    for (uint32_t i = 0; i < static_cast<uint32_t>(n); ++i)
      uops.push_back(Uop{i, i, (i * 3) % n});
    DeviceBuffer ub = UopBuffer(uops);
    MemInsn lw = Load(MemoryType::kWgt, 0, Elem(wb, MemoryType::kWgt), 1, n, n);
    lw.dep.push_next = true;
    GemmInsn reset = Gemm(0, n, 1, 1, true);
    GemmInsn g = Gemm(0, n, 2, 3);
    g.dep.pop_prev = true;
    g.src_factor_in = 0;
    AluInsn shr = Alu(AluOpcode::kShr, true, 6, n);
    shr.dep.push_next = true;
    MemInsn st = Store(0, Elem(ob, MemoryType::kOut), 1, n, n);
    st.dep.pop_prev = st.dep.push_prev = true;
    MemInsn nop = ComputeNop();
    nop.dep.pop_next = true;
    ASSERT_THAT(
        RunRaw({Load(MemoryType::kUop, 0, Elem(ub, MemoryType::kUop), 1, n, n),
                Load(MemoryType::kInp, 0, Elem(ib, MemoryType::kInp), 1, n, n),
                lw, reset, g, shr, st, nop, FinishInsn{}}),
        IsOk());
    results.push_back(Download(ob));
  }
  EXPECT_EQ(results[0], results[1]);
}

TEST_P(SimDeviceTest, GemmSplitOverThreadsMatchesOneThread) {
  // A conv-shaped GEMM (outer loop over 30 output columns with weight factor
  // 0, inner loop over 3 kernel columns hitting the same destination) and a
  // GEMM whose inner loop repeats one destination, split over 2 threads
  // (any size) or run on one, with either kernel: same OUT and cycles.
  const uint32_t w = 30, rows = 3, co_n = 2, kh = 3, pitch = 32;
  const uint32_t n_inp = (rows + kh - 1) * pitch, n_wgt = co_n * kh * 3,
                 n_acc = co_n * rows * w;
  std::vector<Uop> uops;
  for (uint32_t r = 0; r < kh; ++r) {
    for (uint32_t co = 0; co < co_n; ++co) {
      for (uint32_t h = 0; h < rows; ++h) {
        uops.push_back(
            Uop{(co * rows + h) * w, (h + r) * pitch, (co * kh + r) * 3});
      }
    }
  }
  const uint32_t conv_uops = static_cast<uint32_t>(uops.size());
  uops.push_back(Uop{7, 0, 1});
  const std::vector<uint8_t> inp =
      RandomBytes(n_inp * config_.InpElemBytes(), 11);
  const std::vector<uint8_t> wgt =
      RandomBytes(n_wgt * config_.WgtElemBytes(), 12);
  std::vector<std::vector<uint8_t>> results;
  std::vector<uint64_t> cycles;
  for (int threads : {1, 2}) {
    for (bool portable : {false, true}) {
      SCOPED_TRACE(::testing::Message()
                   << "threads " << threads << " portable " << portable);
      sim::SimOptions options;
      options.force_portable_kernels = portable;
      if (threads > 1) options.runner = cpu::CreateCpuParallelRunner(threads);
      options.parallel_min_uops = 0;
      ASSERT_NO_FATAL_FAILURE(ResetDevice(options));
      DeviceBuffer ib = Upload(inp), wb = Upload(wgt),
                   ob = Zeros(n_acc * config_.OutElemBytes());
      DeviceBuffer ub = UopBuffer(uops);
      MemInsn lw = Load(MemoryType::kWgt, 0, Elem(wb, MemoryType::kWgt), 1,
                        n_wgt, n_wgt);
      lw.dep.push_next = true;
      GemmInsn reset = Gemm(0, 1, 1, n_acc, true);
      reset.dst_factor_in = 1;
      GemmInsn conv = Gemm(0, conv_uops, w, 3);
      conv.dep.pop_prev = true;
      conv.dst_factor_out = 1;
      conv.src_factor_out = 1;
      conv.src_factor_in = 1;
      conv.wgt_factor_in = 1;
      GemmInsn repeat = Gemm(conv_uops, conv_uops + 1, 4, 25);
      repeat.src_factor_out = 3;
      repeat.src_factor_in = 2;
      repeat.wgt_factor_out = 1;
      repeat.dst_factor_out = 40;
      AluInsn shr = Alu(AluOpcode::kShr, true, 9, n_acc);
      shr.dep.push_next = true;
      MemInsn st = Store(0, Elem(ob, MemoryType::kOut), 1, n_acc, n_acc);
      st.dep.pop_prev = st.dep.push_prev = true;
      MemInsn nop = ComputeNop();
      nop.dep.pop_next = true;
      VTASERVE_ASSERT_OK_AND_ASSIGN(
          RunStats stats,
          RunRaw({Load(MemoryType::kUop, 0, Elem(ub, MemoryType::kUop), 1,
                       static_cast<uint32_t>(uops.size()),
                       static_cast<uint32_t>(uops.size())),
                  Load(MemoryType::kInp, 0, Elem(ib, MemoryType::kInp), 1,
                       n_inp, n_inp),
                  lw, reset, conv, repeat, shr, st, nop, FinishInsn{}}));
      results.push_back(Download(ob));
      cycles.push_back(stats.cycles);
    }
  }
  for (size_t i = 1; i < results.size(); ++i) {
    EXPECT_EQ(results[i], results[0]) << "run " << i;
    EXPECT_EQ(cycles[i], cycles[0]) << "run " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Configs, SimDeviceTest,
                         ::testing::Values("pynq", "1x32x32"));

class SimDeviceFsimTest : public VtaSimTest {};

TEST_P(SimDeviceFsimTest, LoadAcc8BitSignExtends) {
  const int lanes = config_.AccLanes();
  std::vector<uint8_t> src(config_.OutElemBytes());
  for (int l = 0; l < lanes; ++l) src[l] = static_cast<uint8_t>(l * 37 - 100);
  DeviceBuffer sb = Upload(src), ob = Zeros(config_.OutElemBytes()),
               ub = UopBuffer({Uop{0, 0, 0}});
  AluInsn shr = Alu(AluOpcode::kShr, true, 1);  // keeps sign: v >> 1
  shr.dep.push_next = true;
  MemInsn st = Store(0, Elem(ob, MemoryType::kOut), 1, 1, 1);
  st.dep.pop_prev = st.dep.push_prev = true;
  MemInsn nop = ComputeNop();
  nop.dep.pop_next = true;
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      RunStats stats,
      RunRaw({Load(MemoryType::kUop, 0, Elem(ub, MemoryType::kUop), 1, 1, 1),
              Load(MemoryType::kAcc8Bit, 0, Elem(sb, MemoryType::kAcc8Bit), 1,
                   1, 1),
              shr, st, nop, FinishInsn{}}));
  std::vector<uint8_t> out = Download(ob);
  for (int l = 0; l < lanes; ++l) {
    EXPECT_EQ(static_cast<int8_t>(out[l]), static_cast<int8_t>(src[l]) >> 1);
  }
  EXPECT_EQ(stats.sim.acc_load_nbytes,
            static_cast<uint64_t>(config_.AccElemBytes()));
}

INSTANTIATE_TEST_SUITE_P(Fsim, SimDeviceFsimTest, ::testing::Values("fsim"));

class SimDeviceQueueDepthTest : public VtaSimTest {};

// More tokens than a dependency queue holds (255 on Chisel designs): the
// producer stalls until the consumer pops instead of losing tokens.
TEST_P(SimDeviceQueueDepthTest, ProducerStallsOnFullQueue) {
  ASSERT_EQ(config_.dep_queue_depth, 255);
  std::vector<Insn> insns;
  MemInsn push = ComputeNop();
  push.dep.push_next = true;
  for (int i = 0; i < 300; ++i) insns.push_back(push);
  MemInsn pop = Store(0, 0, 0, 0, 0);
  pop.dep.pop_prev = true;
  for (int i = 0; i < 299; ++i) insns.push_back(pop);
  pop.dep.push_prev = true;
  insns.push_back(pop);
  MemInsn sync = ComputeNop();
  sync.dep.pop_next = true;
  insns.push_back(sync);
  insns.push_back(FinishInsn{});
  VTASERVE_ASSERT_OK_AND_ASSIGN(RunStats stats, RunRaw(insns));
  EXPECT_EQ(stats.sim.leftover_tokens, 0u);
  EXPECT_EQ(stats.sim.nop_count, 601u);
  EXPECT_GT(stats.sim.compute_stall_cycles, 0u);
}

INSTANTIATE_TEST_SUITE_P(De10Nano, SimDeviceQueueDepthTest,
                         ::testing::Values("de10nano"));

}  // namespace
}  // namespace vtaserve::vta::testing
