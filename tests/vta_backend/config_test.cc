#include "vta_backend/config.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace vtaserve::vta {
namespace {

using ::testing::HasSubstr;
using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::StatusIs;

TEST(VtaConfigTest, DefaultMatchesVtaConfigJson) {
  VTASERVE_ASSERT_OK_AND_ASSIGN(VtaConfig c, VtaConfigPreset("pynq"));
  EXPECT_EQ(c.InpElemBytes(), 16);
  EXPECT_EQ(c.WgtElemBytes(), 256);
  EXPECT_EQ(c.AccElemBytes(), 64);
  EXPECT_EQ(c.OutElemBytes(), 16);
  EXPECT_EQ(c.LogUopDepth(), 13);
  EXPECT_EQ(c.LogInpDepth(), 11);
  EXPECT_EQ(c.LogWgtDepth(), 10);
  EXPECT_EQ(c.LogAccDepth(), 11);
  EXPECT_EQ(c.UopDepth(), 8192u);
  EXPECT_EQ(c.AccDepth(), 2048u);
  EXPECT_EQ(c.BusBytes(), 8);
  EXPECT_EQ(c.clock_mhz, 100.0);
  EXPECT_FALSE(c.has_mul);
  EXPECT_FALSE(c.ext_im2col_load);
  EXPECT_EQ(c.BitstreamName(), "1x16_i8w8a32_15_15_18_17");
}

TEST(VtaConfigTest, PresetsHaveTheirTargetConstants) {
  VTASERVE_ASSERT_OK_AND_ASSIGN(VtaConfig u, VtaConfigPreset("ultra96"));
  EXPECT_EQ(u.clock_mhz, 333.0);
  EXPECT_EQ(u.BusBytes(), 16);
  VTASERVE_ASSERT_OK_AND_ASSIGN(VtaConfig b, VtaConfigPreset("1x32x32"));
  EXPECT_EQ(b.BlockIn(), 32);
  EXPECT_EQ(b.InpDepth(), 2048u);
  EXPECT_EQ(b.WgtDepth(), 512u);
  EXPECT_EQ(b.AccDepth(), 2048u);
  VTASERVE_ASSERT_OK_AND_ASSIGN(VtaConfig f, VtaConfigPreset("fsim"));
  EXPECT_TRUE(f.has_mul);
  VTASERVE_ASSERT_OK_AND_ASSIGN(VtaConfig d, VtaConfigPreset("de10nano"));
  EXPECT_FALSE(d.has_mul);
  EXPECT_EQ(d.BusBytes(), 8);
  EXPECT_THAT(VtaConfigPreset("nope"), StatusIs(absl::StatusCode::kNotFound));
}

TEST(VtaConfigTest, ParsesTvmVtaConfigJson) {
  VTASERVE_ASSERT_OK_AND_ASSIGN(VtaConfig c, ParseVtaConfigJson(R"({
    "TARGET" : "ultra96", "HW_VER" : "0.0.2",
    "LOG_INP_WIDTH" : 3, "LOG_WGT_WIDTH" : 3, "LOG_ACC_WIDTH" : 5,
    "LOG_BATCH" : 0, "LOG_BLOCK" : 5,
    "LOG_UOP_BUFF_SIZE" : 15, "LOG_INP_BUFF_SIZE" : 16,
    "LOG_WGT_BUFF_SIZE" : 19, "LOG_ACC_BUFF_SIZE" : 18 })"));
  EXPECT_EQ(c.target, "ultra96");
  EXPECT_EQ(c.BlockOut(), 32);
  EXPECT_EQ(c.clock_mhz, 333.0);  // from the TARGET preset
  EXPECT_EQ(c.LogAccDepth(), 11);
}

TEST(VtaConfigTest, ParsesHistoricalAndExtensionKeys) {
  VTASERVE_ASSERT_OK_AND_ASSIGN(VtaConfig c, ParseVtaConfigJson(R"({
    "TARGET" : "sim", "LOG_BLOCK_IN" : 4, "LOG_BLOCK_OUT" : 4,
    "LOG_BUS_WIDTH" : 7, "HW_FREQ" : 150, "LOG_OUT_WIDTH" : 3,
    "EXT_IM2COL_LOAD" : true, "TIMING" : { "GEMM_LATENCY" : 80 } })"));
  EXPECT_TRUE(c.has_mul);
  EXPECT_EQ(c.BusBytes(), 16);
  EXPECT_EQ(c.clock_mhz, 150.0);
  EXPECT_TRUE(c.ext_im2col_load);
  EXPECT_EQ(c.timing.gemm_latency, 80);
}

TEST(VtaConfigTest, RejectsMalformedJson) {
  EXPECT_THAT(ParseVtaConfigJson("{ \"LOG_BATCH\": "),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseVtaConfigJson(R"({"LOG_BATCH": "one"})"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseVtaConfigJson(R"({"LOG_BLOCKK": 4})"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseVtaConfigJson(R"({"TARGET": "vax"})"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(VtaConfigTest, RejectsConfigsFailingValidation) {
  // 16-bit inputs.
  EXPECT_THAT(
      ParseVtaConfigJson(R"({"LOG_INP_WIDTH": 4})"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("LOG_INP_WIDTH")));
  // 2^17 ACC elements: the index does not fit the 16-bit SRAM field.
  EXPECT_THAT(ParseVtaConfigJson(R"({"LOG_ACC_BUFF_SIZE": 23})"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Uop fields need 13 + 13 + 10 > 32 bits.
  EXPECT_THAT(ParseVtaConfigJson(
                  R"({"LOG_ACC_BUFF_SIZE": 19, "LOG_INP_BUFF_SIZE": 17})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("uop")));
  // Buffer smaller than one element.
  EXPECT_THAT(ParseVtaConfigJson(R"({"LOG_WGT_BUFF_SIZE": 8})"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // MUL on a Pynq bitstream.
  EXPECT_THAT(ParseVtaConfigJson(R"({"TARGET": "pynq", "HAS_MUL": true})"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseVtaConfigJson(R"({"LOG_BLOCK": 4, "LOG_BLOCK_IN": 5})"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  VtaConfig c;
  c.clock_mhz = 0;
  EXPECT_THAT(c.Validate(), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(VtaConfigTest, LoadsFileOrPreset) {
  VTASERVE_ASSERT_OK_AND_ASSIGN(VtaConfig p, LoadVtaConfig("de10nano"));
  EXPECT_EQ(p.target, "de10nano");
  const std::string path =
      ::testing::TempDir() + "/vta_config_test_" +
      std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
      ".json";
  {
    std::ofstream out(path);
    out << R"({"TARGET": "pynq", "LOG_BLOCK": 5, "LOG_WGT_BUFF_SIZE": 19})";
  }
  VTASERVE_ASSERT_OK_AND_ASSIGN(VtaConfig f, LoadVtaConfig(path));
  EXPECT_EQ(f.BlockIn(), 32);
  std::remove(path.c_str());
  EXPECT_THAT(LoadVtaConfig("/nonexistent/vta_config.json"),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace vtaserve::vta
