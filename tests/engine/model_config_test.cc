#include "engine/model_config.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace vtaserve::engine {
namespace {

using ::testing::HasSubstr;
using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::StatusIs;

absl::StatusOr<ModelConfig> Parse(const std::string& text) {
  return ParseModelConfig(text, "repo/m/config.pbtxt", "m");
}

TEST(ModelConfigTest, EmptyTextGivesDefaults) {
  VTASERVE_ASSERT_OK_AND_ASSIGN(ModelConfig c, Parse(""));
  EXPECT_EQ(c.name, "m");
  EXPECT_EQ(c.max_batch_size, 0);
  EXPECT_EQ(c.placement, (std::vector<std::string>{"vta", "cpu", "reference"}));
  EXPECT_EQ(c.first_conv, "auto");
  EXPECT_EQ(c.max_queue_size, 64);
  EXPECT_EQ(c.concurrent_executions, 1);
  EXPECT_EQ(c.shift_group, 16);
  EXPECT_TRUE(c.inputs.empty());
}

TEST(ModelConfigTest, ParsesEveryField) {
  VTASERVE_ASSERT_OK_AND_ASSIGN(ModelConfig c, Parse(R"pb(
                                  name: "m"
                                  platform: "vtaserve_onnx"
                                  max_batch_size: 4
                                  placement: [ "cpu", "reference" ]
                                  first_conv: "vta_im2col"
                                  vta_config: "pynq"
                                  cpu_threads: 2
                                  max_queue_size: 7
                                  concurrent_executions: 3
                                  shift_group: 1
                                  input {
                                    name: "input"
                                    data_type: TYPE_FP32
                                    dims: [ 3, 32, 32 ]
                                  }
                                  output {
                                    name: "probabilities"
                                    dims: [ -1 ]
                                  }
                                )pb"));
  EXPECT_EQ(c.max_batch_size, 4);
  EXPECT_EQ(c.placement, (std::vector<std::string>{"cpu", "reference"}));
  EXPECT_EQ(c.first_conv, "vta_im2col");
  EXPECT_EQ(c.vta_config, "pynq");
  EXPECT_EQ(c.cpu_threads, 2);
  EXPECT_EQ(c.max_queue_size, 7);
  EXPECT_EQ(c.concurrent_executions, 3);
  EXPECT_EQ(c.shift_group, 1);
  ASSERT_EQ(c.inputs.size(), 1u);
  EXPECT_EQ(c.inputs[0].dtype, DataType::kFloat32);
  EXPECT_EQ(c.inputs[0].dims, (std::vector<int64_t>{3, 32, 32}));
  ASSERT_EQ(c.outputs.size(), 1u);
  EXPECT_FALSE(c.outputs[0].dtype.has_value());
  const BackendOptions opts = c.ToBackendOptions();
  EXPECT_EQ(opts.at("first_conv"), "vta_im2col");
  EXPECT_EQ(opts.at("vta_config"), "pynq");
  EXPECT_EQ(opts.at("cpu_threads"), "2");
}

struct BadConfig {
  std::string text;
  std::string field;  // expected in the message
};

class ModelConfigBadTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(ModelConfigBadTest, RejectsWithFileAndField) {
  absl::StatusOr<ModelConfig> c = Parse(GetParam().text);
  EXPECT_THAT(c, StatusIs(absl::StatusCode::kInvalidArgument,
                          HasSubstr("repo/m/config.pbtxt")));
  EXPECT_THAT(c, StatusIs(absl::StatusCode::kInvalidArgument,
                          HasSubstr(GetParam().field)));
}

INSTANTIATE_TEST_SUITE_P(
    Fields, ModelConfigBadTest,
    ::testing::Values(
        BadConfig{"first_conv: \"winograd\"", "first_conv"},
        BadConfig{"placement: \"gpu\"", "placement"},
        BadConfig{"placement: [\"cpu\", \"cpu\"]", "placement"},
        BadConfig{"max_batch_size: -1", "max_batch_size"},
        BadConfig{"max_queue_size: -5", "max_queue_size"},
        BadConfig{"concurrent_executions: 100000", "concurrent_executions"},
        BadConfig{"cpu_threads: -2", "cpu_threads"},
        BadConfig{"shift_group: -1", "shift_group"},
        BadConfig{"name: \"other\"", "name"},
        BadConfig{"platform: \"tensorflow_graphdef\"", "platform"},
        BadConfig{"backend: \"python\"", "backend"},
        BadConfig{"instance_group { count: 2 }", "instance_group"},
        BadConfig{"version: 3", "version"},
        BadConfig{"input { dims: [1] }", "input[0].name"},
        BadConfig{"input { name: \"a\" } input { name: \"a\" }",
                  "input[1].name"},
        BadConfig{"input { name: \"a\" data_type: TYPE_STRING }",
                  "input[0].data_type"},
        BadConfig{"output { name: \"a\" dims: [0] }", "output[0].dims"},
        BadConfig{"first_conv: ", "line 1"},
        BadConfig{"no_such_field: 1", "no_such_field"},
        BadConfig{"max_queue_size: \"big\"", "line 1"}));

TEST(ModelConfigTest, LoadWithoutFileGivesDefaultsNamedAfterFolder) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / "cfg_test_model";
  std::filesystem::create_directories(dir);
  std::filesystem::remove(dir / "config.pbtxt");
  VTASERVE_ASSERT_OK_AND_ASSIGN(ModelConfig c,
                                LoadModelConfig(dir.string() + "/"));
  EXPECT_EQ(c.name, "cfg_test_model");
  EXPECT_EQ(c.source, "");
}

TEST(ModelConfigTest, LoadReadsFileAndNamesItInErrors) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / "cfg_test_bad";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "config.pbtxt")
      << "max_batch_size: 2\nfirst_conv: \"x\"\n";
  EXPECT_THAT(LoadModelConfig(dir.string()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr((dir / "config.pbtxt").string())));
  std::ofstream(dir / "config.pbtxt") << "max_batch_size: 2\n";
  VTASERVE_ASSERT_OK_AND_ASSIGN(ModelConfig c, LoadModelConfig(dir.string()));
  EXPECT_EQ(c.max_batch_size, 2);
}

TEST(ModelConfigTest, LoadMissingFolderIsNotFound) {
  EXPECT_THAT(LoadModelConfig("/nonexistent/vtaserve/model"),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace vtaserve::engine
