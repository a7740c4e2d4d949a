#include "engine/zoo/onnx_builder.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace vtaserve::zoo {
namespace {

using ::testing::HasSubstr;
using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::StatusIs;

// input (uint8) -> DequantizeLinear -> Add(bias) -> QuantizeLinear -> output.
OnnxGraphBuilder TinyQdqGraph() {
  OnnxGraphBuilder b("tiny");
  b.AddInput("x", onnx::TensorProto::UINT8, {1, 4});
  b.AddFloatScalar("x_scale", 0.5f);
  b.AddZeroPointScalar("x_zero_point", onnx::TensorProto::UINT8, 128);
  const std::vector<float> bias = {1, 2, 3, 4};
  b.AddFloatInitializer("bias", {1, 4}, bias);
  b.AddNode("DequantizeLinear", "dq", {"x", "x_scale", "x_zero_point"},
            {"x_float"});
  b.AddNode("Add", "add", {"x_float", "bias"}, {"sum"});
  b.AddNode("QuantizeLinear", "q", {"sum", "x_scale", "x_zero_point"}, {"y"});
  b.AddOutput("y", onnx::TensorProto::UINT8, {1, 4});
  return b;
}

TEST(OnnxGraphBuilderTest, BuildsAModelThatPassesTheChecker) {
  OnnxGraphBuilder b = TinyQdqGraph();
  b.AddMetadata("k", "v");
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto model, b.BuildChecked());
  EXPECT_EQ(model.ir_version(), 8);
  EXPECT_EQ(model.graph().name(), "tiny");
  ASSERT_EQ(model.opset_import_size(), 2);
  EXPECT_EQ(model.opset_import(0).domain(), "");
  EXPECT_EQ(model.opset_import(0).version(), 13);
  EXPECT_EQ(model.opset_import(1).domain(), "com.microsoft");
  EXPECT_EQ(model.opset_import(1).version(), 1);
  ASSERT_EQ(model.graph().node_size(), 3);
  EXPECT_EQ(model.graph().node(1).op_type(), "Add");
  ASSERT_EQ(model.metadata_props_size(), 1);
  EXPECT_EQ(model.metadata_props(0).value(), "v");
}

TEST(OnnxGraphBuilderTest, StoresInitializersAsRawLittleEndianData) {
  OnnxGraphBuilder b("init");
  const std::vector<int32_t> v = {1, -2, 70000};
  b.AddInt32Initializer("w", {3}, v);
  const std::vector<int8_t> i8 = {-128, 127};
  b.AddInt8Initializer("i8", {2, 1}, i8);
  const onnx::ModelProto model = b.Build();
  ASSERT_EQ(model.graph().initializer_size(), 2);
  const onnx::TensorProto& t = model.graph().initializer(0);
  EXPECT_EQ(t.data_type(), onnx::TensorProto::INT32);
  ASSERT_EQ(t.raw_data().size(), 12u);
  int32_t back[3];
  std::memcpy(back, t.raw_data().data(), sizeof(back));
  EXPECT_EQ(back[2], 70000);
  EXPECT_THAT(model.graph().initializer(1).dims(),
              ::testing::ElementsAre(2, 1));
  EXPECT_TRUE(b.HasInitializer("i8"));
  EXPECT_FALSE(b.HasInitializer("nope"));
}

TEST(OnnxGraphBuilderTest, AttributesCarryTheirTypes) {
  OnnxGraphBuilder b("attrs");
  b.AddInput("x", onnx::TensorProto::FLOAT, {1, 1, 4, 4});
  b.AddNode("MaxPool", "pool", {"x"}, {"y"},
            {IntsAttr("kernel_shape", {2, 2}), IntsAttr("strides", {2, 2})});
  b.AddOutput("y", onnx::TensorProto::FLOAT, {1, 1, 2, 2});
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto model, b.BuildChecked());
  const onnx::AttributeProto& a = model.graph().node(0).attribute(0);
  EXPECT_EQ(a.type(), onnx::AttributeProto::INTS);
  EXPECT_THAT(a.ints(), ::testing::ElementsAre(2, 2));
  EXPECT_EQ(FloatAttr("alpha", 0.5f).f(), 0.5f);
  EXPECT_EQ(StringAttr("mode", "x").s(), "x");
}

TEST(OnnxGraphBuilderTest, SymbolicBatchDimension) {
  OnnxGraphBuilder b("sym");
  b.AddInput("x", onnx::TensorProto::FLOAT, {-1, 3});
  b.AddNode("Relu", "relu", {"x"}, {"y"});
  b.AddOutput("y", onnx::TensorProto::FLOAT, {-1, 3});
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto model, b.BuildChecked());
  EXPECT_EQ(
      model.graph().input(0).type().tensor_type().shape().dim(0).dim_param(),
      "N");
}

TEST(CheckModelTest, RejectsAnUndefinedInput) {
  OnnxGraphBuilder b("bad");
  b.AddInput("x", onnx::TensorProto::FLOAT, {1, 4});
  b.AddNode("Add", "add", {"x", "missing"}, {"y"});
  b.AddOutput("y", onnx::TensorProto::FLOAT, {1, 4});
  EXPECT_THAT(b.BuildChecked(), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("missing")));
}

TEST(CheckModelTest, RejectsAnUnknownStandardOp) {
  OnnxGraphBuilder b("bad");
  b.AddInput("x", onnx::TensorProto::FLOAT, {1, 4});
  b.AddNode("NoSuchOp", "n", {"x"}, {"y"});
  b.AddOutput("y", onnx::TensorProto::FLOAT, {1, 4});
  EXPECT_THAT(CheckModel(b.Build()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CheckModelTest, RejectsATypeMismatchFoundByShapeInference) {
  OnnxGraphBuilder b("bad");
  b.AddInput("x", onnx::TensorProto::FLOAT, {1, 4});
  const std::vector<int8_t> v = {1, 2, 3, 4};
  b.AddInt8Initializer("c", {1, 4}, v);
  b.AddNode("Add", "add", {"x", "c"}, {"y"});  // float + int8
  b.AddOutput("y", onnx::TensorProto::FLOAT, {1, 4});
  EXPECT_THAT(CheckModel(b.Build()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CheckModelTest, RejectsAnOutputShapeThatContradictsInference) {
  OnnxGraphBuilder b("bad");
  b.AddInput("x", onnx::TensorProto::FLOAT, {1, 4});
  b.AddNode("Relu", "relu", {"x"}, {"y"});
  b.AddOutput("y", onnx::TensorProto::FLOAT, {1, 5});
  EXPECT_THAT(CheckModel(b.Build()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CheckModelTest, AcceptsMicrosoftDomainOps) {
  OnnxGraphBuilder b("ms");
  b.AddInput("a", onnx::TensorProto::UINT8, {1, 4});
  b.AddFloatScalar("s", 0.1f);
  b.AddZeroPointScalar("z", onnx::TensorProto::UINT8, 0);
  b.AddNode("QLinearAdd", "add", {"a", "s", "z", "a", "s", "z", "s", "z"},
            {"y"}, {}, kMsDomain);
  b.AddOutput("y", onnx::TensorProto::UINT8, {1, 4});
  EXPECT_THAT(CheckModel(b.Build()), IsOk());
}

}  // namespace
}  // namespace vtaserve::zoo
