#include "vta_backend/isa/isa.h"

#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace vtaserve::vta::isa {
namespace {

using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::StatusIs;

IsaCodec DefaultCodec() {
  auto config = VtaConfigPreset("pynq");
  EXPECT_THAT(config, IsOk());
  auto codec = IsaCodec::Create(*config);
  EXPECT_THAT(codec, IsOk());
  return *std::move(codec);
}

// The test vectors of vta-isa.md 2.7.
TEST(IsaCodecTest, EncodesLoadTestVector) {
  MemInsn m;
  m.opcode = Opcode::kLoad;
  m.dep.push_next = true;
  m.memory_type = MemoryType::kInp;
  m.sram_base = 0x10;
  m.dram_base = 0x12345;
  m.y_size = 4;
  m.x_size = 4;
  m.x_stride = 16;
  m.y_pad_0 = m.y_pad_1 = m.x_pad_0 = m.x_pad_1 = 1;
  const IsaCodec codec = DefaultCodec();
  VTASERVE_ASSERT_OK_AND_ASSIGN(EncodedInsn e, codec.Encode(m));
  EXPECT_EQ(e.lo, 0x0000048d14004140u);
  EXPECT_EQ(e.hi, 0x1111001000040004u);
  VTASERVE_ASSERT_OK_AND_ASSIGN(Insn d, codec.Decode(e));
  EXPECT_EQ(std::get<MemInsn>(d), m);
}

TEST(IsaCodecTest, EncodesGemmTestVector) {
  GemmInsn g;
  g.dep.pop_prev = true;
  g.dep.push_prev = true;
  g.uop_bgn = 5;
  g.uop_end = 9;
  g.iter_out = 3;
  g.iter_in = 2;
  g.dst_factor_out = 16;
  g.dst_factor_in = 1;
  g.src_factor_out = 18;
  g.src_factor_in = 1;
  g.wgt_factor_out = 0;
  g.wgt_factor_in = 9;
  const IsaCodec codec = DefaultCodec();
  VTASERVE_ASSERT_OK_AND_ASSIGN(EncodedInsn e, codec.Encode(g));
  EXPECT_EQ(e.lo, 0x000400180120052au);
  EXPECT_EQ(e.hi, 0x0240000204800810u);
  VTASERVE_ASSERT_OK_AND_ASSIGN(Insn d, codec.Decode(e));
  EXPECT_EQ(std::get<GemmInsn>(d), g);
}

TEST(IsaCodecTest, EncodesAluTestVector) {
  AluInsn a;
  a.dep.push_next = true;
  a.uop_bgn = 0;
  a.uop_end = 1;
  a.iter_out = 1;
  a.iter_in = 64;
  a.dst_factor_in = 1;
  a.src_factor_in = 1;
  a.alu_opcode = AluOpcode::kShr;
  a.use_imm = true;
  a.imm = -3;
  const IsaCodec codec = DefaultCodec();
  VTASERVE_ASSERT_OK_AND_ASSIGN(EncodedInsn e, codec.Encode(a));
  EXPECT_EQ(e.lo, 0x0080000800200044u);
  EXPECT_EQ(e.hi, 0xfffdb00200000800u);
  VTASERVE_ASSERT_OK_AND_ASSIGN(Insn d, codec.Decode(e));
  EXPECT_EQ(std::get<AluInsn>(d), a);
}

TEST(IsaCodecTest, EncodesFinishTestVector) {
  const IsaCodec codec = DefaultCodec();
  VTASERVE_ASSERT_OK_AND_ASSIGN(EncodedInsn e, codec.Encode(FinishInsn{}));
  EXPECT_EQ(e.lo, 0x3u);
  EXPECT_EQ(e.hi, 0x0u);
}

TEST(IsaCodecTest, EncodesStoreTestVector) {
  MemInsn m;
  m.opcode = Opcode::kStore;
  m.dep.pop_prev = true;
  m.dep.push_prev = true;
  m.memory_type = MemoryType::kOut;
  m.sram_base = 0x20;
  m.dram_base = 0x40000;
  m.y_size = 2;
  m.x_size = 8;
  m.x_stride = 56;
  const IsaCodec codec = DefaultCodec();
  VTASERVE_ASSERT_OK_AND_ASSIGN(EncodedInsn e, codec.Encode(m));
  EXPECT_EQ(e.lo, 0x0000100000008229u);
  EXPECT_EQ(e.hi, 0x0000003800080002u);
}

TEST(IsaCodecTest, EncodesUopExample) {
  const IsaCodec codec = DefaultCodec();
  VTASERVE_ASSERT_OK_AND_ASSIGN(uint32_t w, codec.EncodeUop(Uop{3, 5, 7}));
  EXPECT_EQ(w, 0x01c02803u);
  EXPECT_EQ(codec.DecodeUop(w), (Uop{3, 5, 7}));
}

TEST(IsaCodecTest, DefaultLayoutHasDocumentedHoles) {
  const IsaCodec codec = DefaultCodec();
  // dram_base ends at bit 57, y_size starts at 64 (hole 58-63).
  EXPECT_EQ(codec.MemLayout()[7].Bit(), 26);
  EXPECT_EQ(codec.MemLayout()[8].Bit(), 64);
  // iter_in at 49..62, dst_factor_out at 64 (hole at 63).
  EXPECT_EQ(codec.GemmLayout()[9].Bit(), 49);
  EXPECT_EQ(codec.GemmLayout()[10].Bit(), 64);
  EXPECT_EQ(codec.AluLayout()[14].Bit(), 108);
  EXPECT_EQ(codec.AluLayout()[16].Bit(), 112);
}

TEST(IsaCodecTest, RejectsInvalidOpcodes) {
  const IsaCodec codec = DefaultCodec();
  for (uint64_t op : {5u, 6u, 7u}) {
    EXPECT_THAT(codec.Decode(EncodedInsn{op, 0}),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
  // memory_type 6 in a LOAD.
  EXPECT_THAT(codec.Decode(EncodedInsn{uint64_t{6} << 7, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // ALU opcode 5.
  EXPECT_THAT(codec.Decode(EncodedInsn{4, uint64_t{5} << 44}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(IsaCodecTest, RejectsFieldOverflowOnEncode) {
  const IsaCodec codec = DefaultCodec();
  MemInsn m;
  m.y_pad_0 = 16;
  EXPECT_THAT(codec.Encode(m), StatusIs(absl::StatusCode::kInvalidArgument));
  GemmInsn g;
  g.iter_out = 1 << 14;
  EXPECT_THAT(codec.Encode(g), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(codec.EncodeUop(Uop{2048, 0, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

class IsaRoundTripTest : public ::testing::TestWithParam<const char*> {};

TEST_P(IsaRoundTripTest, RandomInstructionsRoundTrip) {
  VTASERVE_ASSERT_OK_AND_ASSIGN(VtaConfig config, VtaConfigPreset(GetParam()));
  VTASERVE_ASSERT_OK_AND_ASSIGN(IsaCodec codec, IsaCodec::Create(config));
  std::mt19937_64 rng(42);
  auto bits = [&](int n) -> uint32_t {
    return static_cast<uint32_t>(rng() & ((uint64_t{1} << n) - 1));
  };
  auto dep = [&] {
    return DepFlags{bits(1) != 0, bits(1) != 0, bits(1) != 0, bits(1) != 0};
  };
  const int u = config.LogUopDepth(), a = config.LogAccDepth(),
            s = config.SrcFactorBits(), w = config.LogWgtDepth();
  for (int i = 0; i < 2000; ++i) {
    Insn insn;
    switch (i % 4) {
      case 0: {
        MemInsn m;
        m.opcode = bits(1) ? Opcode::kStore : Opcode::kLoad;
        m.dep = dep();
        m.memory_type = static_cast<MemoryType>(rng() % kNumMemoryTypes);
        m.sram_base = bits(16);
        m.dram_base = bits(32);
        m.y_size = bits(16);
        m.x_size = bits(16);
        m.x_stride = bits(16);
        m.y_pad_0 = bits(4);
        m.y_pad_1 = bits(4);
        m.x_pad_0 = bits(4);
        m.x_pad_1 = bits(4);
        insn = m;
        break;
      }
      case 1: {
        GemmInsn g{dep(),    bits(1) != 0, bits(u), bits(u + 1),
                   bits(14), bits(14),     bits(a), bits(a),
                   bits(s),  bits(s),      bits(w), bits(w)};
        insn = g;
        break;
      }
      case 2: {
        AluInsn al{dep(),
                   bits(1) != 0,
                   bits(u),
                   bits(u + 1),
                   bits(14),
                   bits(14),
                   bits(a),
                   bits(a),
                   bits(s),
                   bits(s),
                   static_cast<AluOpcode>(rng() % 5),
                   bits(1) != 0,
                   static_cast<int16_t>(bits(16))};
        insn = al;
        break;
      }
      default:
        insn = FinishInsn{dep()};
    }
    VTASERVE_ASSERT_OK_AND_ASSIGN(EncodedInsn e, codec.Encode(insn));
    VTASERVE_ASSERT_OK_AND_ASSIGN(Insn back, codec.Decode(e));
    EXPECT_EQ(back, insn) << ToString(insn);
    uint8_t bytes[16];
    StoreEncodedInsn(e, bytes);
    EXPECT_EQ(LoadEncodedInsn(bytes), e);
  }
  const int src_bits = config.UopSrcBits();
  for (int i = 0; i < 1000; ++i) {
    const Uop uop{bits(a), bits(src_bits), bits(w)};
    VTASERVE_ASSERT_OK_AND_ASSIGN(uint32_t word, codec.EncodeUop(uop));
    EXPECT_EQ(codec.DecodeUop(word), uop);
  }
}

INSTANTIATE_TEST_SUITE_P(Configs, IsaRoundTripTest,
                         ::testing::Values("pynq", "1x32x32", "ultra96",
                                           "fsim"));

}  // namespace
}  // namespace vtaserve::vta::isa
