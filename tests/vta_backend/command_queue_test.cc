#include "vta_backend/runtime/command_queue.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "engine/common/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/vta_backend/vta_test_util.h"

namespace vtaserve::vta::testing {
namespace {

using isa::AluOpcode;
using isa::MemoryType;
using isa::Stage;
using isa::Uop;
using ::testing::HasSubstr;
using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::StatusIs;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

class CommandQueueTest : public VtaSimTest {
 public:
  CommandQueue NewQueue() {
    auto q = CommandQueue::Create(config_);
    EXPECT_THAT(q, IsOk());
    return *std::move(q);
  }
  uint32_t Addr(const DeviceBuffer& b, MemoryType t, uint64_t off = 0) {
    auto a = CommandQueue::DramElemAddr(config_, b, t, off);
    EXPECT_THAT(a, IsOk());
    return *a;
  }
  // One uop at dst `base`, looped over `n` consecutive elements.
  KernelId LinearKernel(CommandQueue& q, uint32_t base, uint32_t n,
                        uint32_t src_base = 0) {
    UopKernel k;
    k.uops = {Uop{base, src_base, 0}};
    k.loops = {UopLoop{n, 1, 1, 0}};
    auto id = q.AddKernel(k);
    EXPECT_THAT(id, IsOk());
    return *id;
  }
  // Appends commands that copy ACC[base, base + n) as full int32 values to
  // `dump` (n * AccLanes * 4 bytes) via four SHR-by-8 byte planes. Destroys
  // the ACC contents.
  void DumpAcc(CommandQueue& q, uint32_t base, uint32_t n,
               const DeviceBuffer& planes) {
    const KernelId k = LinearKernel(q, base, n);
    for (uint32_t plane = 0; plane < 4; ++plane) {
      ASSERT_THAT(q.Alu(k, AluOpcode::kShr, true, plane == 0 ? 0 : 8), IsOk());
      ASSERT_THAT(q.DepPush(Stage::kCompute, Stage::kStore), IsOk());
      ASSERT_THAT(q.DepPop(Stage::kCompute, Stage::kStore), IsOk());
      ASSERT_THAT(
          q.Store2D(base, Addr(planes, MemoryType::kOut, plane * n), 1, n, n),
          IsOk());
      ASSERT_THAT(q.DepPush(Stage::kStore, Stage::kCompute), IsOk());
      ASSERT_THAT(q.DepPop(Stage::kStore, Stage::kCompute), IsOk());
    }
  }
  std::vector<int32_t> ReadDump(const DeviceBuffer& planes, uint32_t n) {
    const std::vector<uint8_t> bytes = Download(planes);
    const size_t lanes = config_.AccLanes();
    std::vector<int32_t> out(n * lanes);
    for (size_t i = 0; i < out.size(); ++i) {
      uint32_t v = 0;
      for (int p = 0; p < 4; ++p)
        v |= uint32_t{bytes[p * n * lanes + i]} << (8 * p);
      out[i] = static_cast<int32_t>(v);
    }
    return out;
  }
  DeviceBuffer AccBuffer(const std::vector<int32_t>& v) {
    std::vector<uint8_t> bytes(v.size() * 4);
    std::memcpy(bytes.data(), v.data(), bytes.size());
    return Upload(bytes);
  }
  absl::StatusOr<RunStats> Run(CommandQueue& q) {
    auto program = q.Finalize();
    if (!program.ok()) return program.status();
    return RunProgram(*dev_, config_, *program, absl::Seconds(10));
  }
};

// y = clamp((W x) >> 4) for one BLOCK_OUT x BLOCK_IN matrix.
TEST_P(CommandQueueTest, MatrixVectorProductMatchesScalar) {
  const int bi = config_.BlockIn(), bo = config_.BlockOut();
  ASSERT_EQ(config_.Batch(), 1);
  const std::vector<uint8_t> x = RandomBytes(bi, 11),
                             w = RandomBytes(bi * bo, 12);
  DeviceBuffer xb = Upload(x), wb = Upload(w), yb = Zeros(bo);
  CommandQueue q = NewQueue();
  UopKernel gemm;
  gemm.uops = {Uop{0, 0, 0}};
  VTASERVE_ASSERT_OK_AND_ASSIGN(KernelId g, q.AddKernel(gemm));
  const KernelId a = LinearKernel(q, 0, 1);
  ASSERT_THAT(
      q.Load2D(MemoryType::kInp, 0, Addr(xb, MemoryType::kInp), 1, 1, 1),
      IsOk());
  ASSERT_THAT(
      q.Load2D(MemoryType::kWgt, 0, Addr(wb, MemoryType::kWgt), 1, 1, 1),
      IsOk());
  ASSERT_THAT(q.DepPush(Stage::kLoad, Stage::kCompute), IsOk());
  ASSERT_THAT(q.DepPop(Stage::kLoad, Stage::kCompute), IsOk());
  ASSERT_THAT(q.Gemm(g, /*reset=*/true), IsOk());
  ASSERT_THAT(q.Gemm(g, /*reset=*/false), IsOk());
  ASSERT_THAT(q.Alu(a, AluOpcode::kShr, true, 4), IsOk());
  ASSERT_THAT(q.Alu(a, AluOpcode::kMin, true, 127), IsOk());
  ASSERT_THAT(q.Alu(a, AluOpcode::kMax, true, -127), IsOk());
  ASSERT_THAT(q.DepPush(Stage::kCompute, Stage::kStore), IsOk());
  ASSERT_THAT(q.DepPop(Stage::kCompute, Stage::kStore), IsOk());
  ASSERT_THAT(q.Store2D(0, Addr(yb, MemoryType::kOut), 1, 1, 1), IsOk());
  VTASERVE_ASSERT_OK_AND_ASSIGN(RunStats stats, Run(q));
  const std::vector<uint8_t> y = Download(yb);
  for (int o = 0; o < bo; ++o) {
    int32_t dot = 0;
    for (int k = 0; k < bi; ++k) {
      dot += static_cast<int8_t>(x[k]) * static_cast<int8_t>(w[o * bi + k]);
    }
    const int32_t expect = std::clamp(dot >> 4, -127, 127);
    EXPECT_EQ(static_cast<int8_t>(y[o]), expect) << o;
  }
  EXPECT_EQ(stats.sim.gemm_counter, 1u);
  EXPECT_EQ(stats.sim.alu_counter, 3u);
  EXPECT_EQ(stats.sim.leftover_tokens, 0u);
}

struct TiledResult {
  std::vector<uint8_t> c;
  RunStats stats;
};

// C[M x N] = clamp(A[M x K] . B[N x K]^T >> 5), one output-column block per
// tile; weights and accumulators double-buffered (two SRAM regions) or not.
class TiledGemm {
 public:
  static constexpr uint32_t kM = 8, kKb = 2, kNb = 6;

  explicit TiledGemm(CommandQueueTest* t) : t_(t) {}

  absl::StatusOr<TiledResult> Run(bool double_buffer) {
    const VtaConfig& cfg = t_->config_;
    const DeviceBuffer a = t_->Upload(a_), b = t_->Upload(b_),
                       c = t_->Zeros(kM * kNb * cfg.OutElemBytes());
    auto q_or = CommandQueue::Create(cfg);
    if (!q_or.ok()) return q_or.status();
    CommandQueue q = *std::move(q_or);
    const int regions = double_buffer ? 2 : 1;
    KernelId gemm[2], reset[2], alu[2];
    for (int r = 0; r < regions; ++r) {
      UopKernel k;
      for (uint32_t kb = 0; kb < kKb; ++kb) {
        for (uint32_t m = 0; m < kM; ++m) {
          k.uops.push_back(Uop{r * kM + m, m * kKb + kb, r * kKb + kb});
        }
      }
      VTASERVE_ASSIGN_OR_RETURN(gemm[r], q.AddKernel(k));
      UopKernel z;
      z.uops = {Uop{r * kM, 0, 0}};
      z.loops = {UopLoop{kM, 1, 0, 0}};
      VTASERVE_ASSIGN_OR_RETURN(reset[r], q.AddKernel(z));
      VTASERVE_ASSIGN_OR_RETURN(alu[r], q.AddKernel(z));
    }
    auto addr = [&](const DeviceBuffer& buf, MemoryType t, uint64_t off) {
      return CommandQueue::DramElemAddr(cfg, buf, t, off);
    };
    VTASERVE_ASSIGN_OR_RETURN(uint32_t a_addr, addr(a, MemoryType::kInp, 0));
    VTASERVE_RETURN_IF_ERROR(
        q.Load2D(MemoryType::kInp, 0, a_addr, 1, kM * kKb, kM * kKb));
    for (uint32_t t = 0; t < kNb; ++t) {
      const int r = static_cast<int>(t % regions);
      if (t >= static_cast<uint32_t>(regions)) {
        VTASERVE_RETURN_IF_ERROR(q.DepPop(Stage::kCompute, Stage::kLoad));
      }
      VTASERVE_ASSIGN_OR_RETURN(uint32_t b_addr,
                                addr(b, MemoryType::kWgt, t * kKb));
      VTASERVE_RETURN_IF_ERROR(
          q.Load2D(MemoryType::kWgt, r * kKb, b_addr, 1, kKb, kKb));
      VTASERVE_RETURN_IF_ERROR(q.DepPush(Stage::kLoad, Stage::kCompute));
      VTASERVE_RETURN_IF_ERROR(q.DepPop(Stage::kLoad, Stage::kCompute));
      if (t >= static_cast<uint32_t>(regions)) {
        VTASERVE_RETURN_IF_ERROR(q.DepPop(Stage::kStore, Stage::kCompute));
      }
      VTASERVE_RETURN_IF_ERROR(q.Gemm(reset[r], true));
      VTASERVE_RETURN_IF_ERROR(q.Gemm(gemm[r], false));
      VTASERVE_RETURN_IF_ERROR(q.DepPush(Stage::kCompute, Stage::kLoad));
      VTASERVE_RETURN_IF_ERROR(q.Alu(alu[r], AluOpcode::kShr, true, 5));
      VTASERVE_RETURN_IF_ERROR(q.Alu(alu[r], AluOpcode::kMin, true, 127));
      VTASERVE_RETURN_IF_ERROR(q.Alu(alu[r], AluOpcode::kMax, true, -128));
      VTASERVE_RETURN_IF_ERROR(q.DepPush(Stage::kCompute, Stage::kStore));
      VTASERVE_RETURN_IF_ERROR(q.DepPop(Stage::kCompute, Stage::kStore));
      VTASERVE_ASSIGN_OR_RETURN(uint32_t c_addr, addr(c, MemoryType::kOut, t));
      VTASERVE_RETURN_IF_ERROR(q.Store2D(r * kM, c_addr, kM, 1, kNb));
      VTASERVE_RETURN_IF_ERROR(q.DepPush(Stage::kStore, Stage::kCompute));
    }
    // Consume the tokens of the last `regions` tiles.
    for (int r = 0; r < regions; ++r) {
      VTASERVE_RETURN_IF_ERROR(q.DepPop(Stage::kCompute, Stage::kLoad));
      VTASERVE_RETURN_IF_ERROR(q.DepPop(Stage::kStore, Stage::kCompute));
    }
    VTASERVE_ASSIGN_OR_RETURN(Program p, q.Finalize());
    TiledResult result;
    VTASERVE_ASSIGN_OR_RETURN(result.stats,
                              RunProgram(*t_->dev_, cfg, p, absl::Seconds(10)));
    result.c = t_->Download(c);
    return result;
  }

  void MakeInputs() {
    const VtaConfig& cfg = t_->config_;
    a_ = VtaSimTest::RandomBytes(kM * kKb * cfg.InpElemBytes(), 21);
    b_ = VtaSimTest::RandomBytes(kNb * kKb * cfg.WgtElemBytes(), 22);
  }

  // Scalar expectation, C packed as [m][nb][o].
  std::vector<uint8_t> Expected() const {
    const VtaConfig& cfg = t_->config_;
    const int bi = cfg.BlockIn(), bo = cfg.BlockOut();
    std::vector<uint8_t> c(kM * kNb * bo);
    for (uint32_t m = 0; m < kM; ++m) {
      for (uint32_t nb = 0; nb < kNb; ++nb) {
        for (int o = 0; o < bo; ++o) {
          int32_t sum = 0;
          for (uint32_t kb = 0; kb < kKb; ++kb) {
            for (int k = 0; k < bi; ++k) {
              const int8_t av =
                  static_cast<int8_t>(a_[(m * kKb + kb) * bi + k]);
              const int8_t bv =
                  static_cast<int8_t>(b_[((nb * kKb + kb) * bo + o) * bi + k]);
              sum += av * bv;
            }
          }
          c[(m * kNb + nb) * bo + o] =
              static_cast<uint8_t>(std::clamp(sum >> 5, -128, 127));
        }
      }
    }
    return c;
  }

 private:
  CommandQueueTest* t_;
  std::vector<uint8_t> a_, b_;
};

TEST_P(CommandQueueTest, DoubleBufferedTiledGemmMatchesScalarAndOverlaps) {
  ASSERT_EQ(config_.Batch(), 1);
  TiledGemm tg(this);
  tg.MakeInputs();
  VTASERVE_ASSERT_OK_AND_ASSIGN(TiledResult db, tg.Run(/*double_buffer=*/true));
  VTASERVE_ASSERT_OK_AND_ASSIGN(TiledResult serial,
                                tg.Run(/*double_buffer=*/false));
  const std::vector<uint8_t> expect = tg.Expected();
  EXPECT_EQ(db.c, expect);
  EXPECT_EQ(serial.c, expect);
  // Same work, but overlapped load/compute/store finishes earlier.
  EXPECT_EQ(db.stats.sim.gemm_counter, serial.stats.sim.gemm_counter);
  EXPECT_LT(db.stats.cycles, serial.stats.cycles);
  EXPECT_EQ(db.stats.sim.leftover_tokens, 0u);
}

struct AluCase {
  AluOpcode op;
  bool use_imm;
  int16_t imm;
};

int32_t AluScalar(AluOpcode op, int32_t a, int32_t b) {
  switch (op) {
    case AluOpcode::kMin:
      return std::min(a, b);
    case AluOpcode::kMax:
      return std::max(a, b);
    case AluOpcode::kAdd:
      return static_cast<int32_t>(static_cast<uint32_t>(a) +
                                  static_cast<uint32_t>(b));
    case AluOpcode::kShr: {
      const int32_t sh = ((b & 31) ^ 16) - 16;  // HLS: low 5 bits, signed
      return sh >= 0 ? a >> sh
                     : static_cast<int32_t>(static_cast<uint32_t>(a) << -sh);
    }
    case AluOpcode::kMul:
      return static_cast<int32_t>(static_cast<uint32_t>(a) *
                                  static_cast<uint32_t>(b));
  }
  return 0;
}

// Runs one ALU op over n elements (dst [0, n), src [n, 2n)) and compares
// every 32-bit lane with the scalar model.
void CheckAluOp(CommandQueueTest* t, const AluCase& c) {
  const uint32_t n = 3;
  const size_t lanes = t->config_.AccLanes();
  std::vector<int32_t> vals(2 * n * lanes);
  std::mt19937 rng(static_cast<uint32_t>(c.op) * 100 + c.imm);
  for (size_t i = 0; i < vals.size(); ++i) {
    vals[i] = static_cast<int32_t>(rng());
    if (i % 4 == 1) vals[i] = static_cast<int32_t>(rng() % 64) - 32;  // small
  }
  vals[0] = INT32_MIN;
  vals[1] = INT32_MAX;
  auto q_or = CommandQueue::Create(t->config_);
  ASSERT_THAT(q_or, IsOk());
  CommandQueue q = *std::move(q_or);
  const DeviceBuffer acc = t->AccBuffer(vals), dump = t->Zeros(4 * n * lanes);
  ASSERT_THAT(q.Load2D(MemoryType::kAcc, 0, t->Addr(acc, MemoryType::kAcc), 1,
                       2 * n, 2 * n),
              IsOk());
  UopKernel k;
  k.uops = {Uop{0, n, 0}};
  k.loops = {UopLoop{n, 1, 1, 0}};
  VTASERVE_ASSERT_OK_AND_ASSIGN(KernelId id, q.AddKernel(k));
  ASSERT_THAT(q.Alu(id, c.op, c.use_imm, c.imm), IsOk());
  ASSERT_NO_FATAL_FAILURE(t->DumpAcc(q, 0, n, dump));
  VTASERVE_ASSERT_OK_AND_ASSIGN(Program p, q.Finalize());
  ASSERT_THAT(RunProgram(*t->dev_, t->config_, p, absl::Seconds(1)), IsOk());
  const std::vector<int32_t> got = t->ReadDump(dump, n);
  for (size_t i = 0; i < n * lanes; ++i) {
    const int32_t b = c.use_imm ? int32_t{c.imm} : vals[n * lanes + i];
    ASSERT_EQ(got[i], AluScalar(c.op, vals[i], b))
        << "op " << static_cast<int>(c.op) << " imm " << c.use_imm << "/"
        << c.imm << " lane " << i << " a=" << vals[i] << " b=" << b;
  }
}

TEST_P(CommandQueueTest, AluOpsMatchScalarSemantics) {
  const std::vector<AluCase> cases = {
      {AluOpcode::kMin, true, -5},     {AluOpcode::kMin, false, 0},
      {AluOpcode::kMax, true, 127},    {AluOpcode::kMax, false, 0},
      {AluOpcode::kAdd, true, -32768}, {AluOpcode::kAdd, true, 1000},
      {AluOpcode::kAdd, false, 0},     {AluOpcode::kShr, true, 0},
      {AluOpcode::kShr, true, 15},     {AluOpcode::kShr, true, -16},
      {AluOpcode::kShr, true, 3},      {AluOpcode::kShr, true, -3},
      {AluOpcode::kShr, true, 20},     {AluOpcode::kShr, false, 0},
  };
  for (const AluCase& c : cases) {
    ASSERT_NO_FATAL_FAILURE(CheckAluOp(this, c));
    if (HasFatalFailure()) return;
  }
}

TEST_P(CommandQueueTest, RejectsMulWithoutHasMul) {
  CommandQueue q = NewQueue();
  const KernelId k = LinearKernel(q, 0, 1);
  EXPECT_THAT(q.Alu(k, AluOpcode::kMul, true, 3),
              StatusIs(kInvalid, HasSubstr("MUL")));
}

TEST_P(CommandQueueTest, RejectsHazardousKernels) {
  CommandQueue q = NewQueue();
  UopKernel k;
  k.uops = {Uop{0, 0, 0}, Uop{1, 1, 0}};
  k.loops = {UopLoop{4, 0, 0, 0}};  // dst 0 rewritten two uops later
  VTASERVE_ASSERT_OK_AND_ASSIGN(KernelId id, q.AddKernel(k));
  EXPECT_THAT(q.Gemm(id, false), StatusIs(kInvalid, HasSubstr("hazard")));
  EXPECT_THAT(q.Gemm(id, true), IsOk());  // reset does not read ACC
  UopKernel ok;
  ok.uops = {Uop{0, 0, 0}, Uop{1, 0, 0}, Uop{2, 0, 0}};
  ok.loops = {UopLoop{4, 0, 1, 0}};
  VTASERVE_ASSERT_OK_AND_ASSIGN(KernelId id2, q.AddKernel(ok));
  EXPECT_THAT(q.Gemm(id2, false), IsOk());
  // ALU tensor op reading the element written by the previous uop.
  UopKernel raw;
  raw.uops = {Uop{5, 9, 0}, Uop{6, 5, 0}, Uop{7, 8, 0}};
  VTASERVE_ASSERT_OK_AND_ASSIGN(KernelId id3, q.AddKernel(raw));
  EXPECT_THAT(q.Alu(id3, AluOpcode::kAdd, false, 0), StatusIs(kInvalid));
  EXPECT_THAT(q.Alu(id3, AluOpcode::kAdd, true, 1), IsOk());
}

TEST_P(CommandQueueTest, RejectsInvalidArguments) {
  CommandQueue q = NewQueue();
  EXPECT_THAT(q.AddKernel(UopKernel{}), StatusIs(kInvalid));
  UopKernel big;
  big.uops.assign(config_.UopDepth() + 1, Uop{});
  EXPECT_THAT(q.AddKernel(big), StatusIs(absl::StatusCode::kResourceExhausted));
  UopKernel zero;
  zero.uops = {Uop{}};
  zero.loops = {UopLoop{0, 0, 0, 0}};
  EXPECT_THAT(q.AddKernel(zero), StatusIs(kInvalid));
  EXPECT_THAT(q.Load2D(MemoryType::kInp, config_.InpDepth() - 1, 0, 1, 2, 2),
              StatusIs(kInvalid));
  EXPECT_THAT(q.Load2D(MemoryType::kAcc8Bit, 0, 0, 1, 1, 1),
              StatusIs(kInvalid));
  EXPECT_THAT(q.Load2D(MemoryType::kWgt, 0, 0, 1, 1, 1, Pad2D{1, 0, 0, 0}),
              StatusIs(kInvalid));
  EXPECT_THAT(q.DepPush(Stage::kLoad, Stage::kStore), StatusIs(kInvalid));
  EXPECT_THAT(q.DepPop(Stage::kStore, Stage::kStore), StatusIs(kInvalid));
  EXPECT_THAT(q.Gemm(42, false), StatusIs(kInvalid));
}

TEST_P(CommandQueueTest, RejectsUnbalancedTokens) {
  CommandQueue q = NewQueue();
  ASSERT_THAT(q.DepPush(Stage::kCompute, Stage::kLoad), IsOk());
  EXPECT_THAT(q.Finalize(), StatusIs(kInvalid, HasSubstr("compute->load")));
}

// NOP insertion rules of vta-isa.md 6.2 and the final synchronization 6.4.
TEST_P(CommandQueueTest, InsertsNopsAndFinalSynchronization) {
  CommandQueue q = NewQueue();
  // Push with no instruction of the stage: a store NOP carries it.
  ASSERT_THAT(q.DepPush(Stage::kStore, Stage::kCompute), IsOk());
  ASSERT_EQ(q.size(), 1u);
  // Two pops in the same direction: the first is committed as a NOP.
  ASSERT_THAT(q.DepPop(Stage::kStore, Stage::kCompute), IsOk());
  ASSERT_THAT(q.DepPush(Stage::kStore, Stage::kCompute), IsOk());
  ASSERT_THAT(q.DepPop(Stage::kStore, Stage::kCompute), IsOk());
  EXPECT_EQ(q.size(), 3u);  // compute NOP (pop_next) committed
  VTASERVE_ASSERT_OK_AND_ASSIGN(Program p, q.Finalize());
  ASSERT_FALSE(p.insns.empty());
  EXPECT_TRUE(std::holds_alternative<isa::FinishInsn>(p.insns.back()));
  EXPECT_FALSE(isa::DepOf(p.insns.back()).Any());
  // Second to last: compute NOP popping both the load and store tokens.
  const auto& sync = std::get<isa::MemInsn>(p.insns[p.insns.size() - 2]);
  EXPECT_EQ(sync.memory_type, MemoryType::kUop);
  EXPECT_EQ(sync.x_size, 0u);
  EXPECT_TRUE(sync.dep.pop_prev);
  EXPECT_TRUE(sync.dep.pop_next);
  const auto& first = std::get<isa::MemInsn>(p.insns[0]);
  EXPECT_EQ(first.opcode, isa::Opcode::kStore);
  EXPECT_TRUE(first.dep.push_prev);
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      RunStats s, RunProgram(*dev_, config_, p, absl::Seconds(1)));
  EXPECT_EQ(s.sim.leftover_tokens, 0u);
  EXPECT_EQ(s.sim.finish_count, 1u);
}

// Resident kernels are not reloaded; after the uop ring wraps, an evicted
// kernel is reloaded from its stable staging location and still correct.
TEST_P(CommandQueueTest, UopCacheReusesAndReloadsKernels) {
  CommandQueue q = NewQueue();
  const KernelId small = LinearKernel(q, 0, 1);
  UopKernel filler;
  filler.uops.assign(config_.UopDepth(), Uop{1, 0, 0});
  VTASERVE_ASSERT_OK_AND_ASSIGN(KernelId fill, q.AddKernel(filler));
  ASSERT_THAT(q.Alu(small, AluOpcode::kAdd, true, 3), IsOk());
  ASSERT_THAT(q.Alu(small, AluOpcode::kAdd, true, 4), IsOk());  // resident
  EXPECT_EQ(q.size(), 3u);                            // one LOAD UOP + two ALU
  ASSERT_THAT(q.Gemm(fill, /*reset=*/true), IsOk());  // wraps, evicts small
  ASSERT_THAT(q.Alu(small, AluOpcode::kAdd, true, 5), IsOk());  // reloaded
  const DeviceBuffer dump = Zeros(4 * config_.AccLanes());
  ASSERT_NO_FATAL_FAILURE(DumpAcc(q, 0, 1, dump));
  VTASERVE_ASSERT_OK_AND_ASSIGN(Program p, q.Finalize());
  int uop_loads = 0;
  for (const auto& insn : p.insns) {
    if (const auto* m = std::get_if<isa::MemInsn>(&insn)) {
      uop_loads += m->memory_type == MemoryType::kUop && m->x_size > 0;
    }
  }
  EXPECT_EQ(uop_loads, 4);  // small, filler, small again, dump kernel
  ASSERT_THAT(RunProgram(*dev_, config_, p, absl::Seconds(1)), IsOk());
  for (int32_t v : ReadDump(dump, 1)) EXPECT_EQ(v, 12);
}

INSTANTIATE_TEST_SUITE_P(Configs, CommandQueueTest,
                         ::testing::Values("pynq", "1x32x32"));

class CommandQueueFsimTest : public CommandQueueTest {};

TEST_P(CommandQueueFsimTest, MulMatchesScalarOnFsim) {
  ASSERT_NO_FATAL_FAILURE(CheckAluOp(this, {AluOpcode::kMul, true, -7}));
  ASSERT_NO_FATAL_FAILURE(CheckAluOp(this, {AluOpcode::kMul, false, 0}));
}

INSTANTIATE_TEST_SUITE_P(Fsim, CommandQueueFsimTest, ::testing::Values("fsim"));

}  // namespace
}  // namespace vtaserve::vta::testing
