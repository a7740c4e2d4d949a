#include "engine/executor.h"

#include "engine/reference_backend.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace vtaserve::engine {
namespace {

using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::StatusIs;

// x(uint8) -> Cast -> Relu -> Cast -> y(uint8)
ModelGraph TinyGraph() {
  ModelGraph g;
  g.name = "tiny";
  g.values = {{"x", DataType::kUInt8, {1, 4}, 0.1f, 128},
              {"x8", DataType::kInt8, {1, 4}, 0.1f, 0},
              {"r8", DataType::kInt8, {1, 4}, 0.1f, 0},
              {"y", DataType::kUInt8, {1, 4}, 0.1f, 128}};
  g.nodes.push_back({"in_cast", OpKind::kCast, {0}, {1}, NoParams{}});
  g.nodes.push_back({"relu", OpKind::kRelu, {1}, {2}, ReluParams{0}});
  g.nodes.push_back({"out_cast", OpKind::kCast, {2}, {3}, NoParams{}});
  g.inputs = {0};
  g.outputs = {3};
  return g;
}

TEST(ExecutorTest, RunsBatchOnReference) {
  BackendRegistry registry;
  ASSERT_THAT(registry.Register(CreateReferenceBackend()), IsOk());
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      auto ex, Executor::Create(TinyGraph(), registry, PlacementOptions{}));
  VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor in, Tensor::Create(DataType::kUInt8, {2, 4}));
  const uint8_t vals[8] = {0, 100, 128, 200, 255, 127, 129, 1};
  for (int i = 0; i < 8; ++i) in.data<uint8_t>()[i] = vals[i];
  const Tensor* ins[] = {&in};
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto outs, ex->Run(ExecutionContext{}, ins));
  ASSERT_EQ(outs.size(), 1u);
  EXPECT_EQ(outs[0].shape(), (std::vector<int64_t>{2, 4}));
  const uint8_t want[8] = {128, 128, 128, 200, 255, 128, 129, 128};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(outs[0].data<uint8_t>()[i], want[i]) << i;
  EXPECT_EQ(ex->placements()[1].backend, "reference");
}

TEST(ExecutorTest, RejectsWrongShapeAndDtype) {
  BackendRegistry registry;
  ASSERT_THAT(registry.Register(CreateReferenceBackend()), IsOk());
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      auto ex, Executor::Create(TinyGraph(), registry, PlacementOptions{}));
  VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor bad_shape, Tensor::Create(DataType::kUInt8, {1, 5}));
  const Tensor* ins1[] = {&bad_shape};
  EXPECT_THAT(ex->Run(ExecutionContext{}, ins1),
              StatusIs(absl::StatusCode::kInvalidArgument));
  VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor bad_type, Tensor::Create(DataType::kFloat32, {1, 4}));
  const Tensor* ins2[] = {&bad_type};
  EXPECT_THAT(ex->Run(ExecutionContext{}, ins2),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ExecutorTest, HonorsCancellation) {
  BackendRegistry registry;
  ASSERT_THAT(registry.Register(CreateReferenceBackend()), IsOk());
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      auto ex, Executor::Create(TinyGraph(), registry, PlacementOptions{}));
  VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor in, Tensor::Create(DataType::kUInt8, {1, 4}));
  std::atomic<bool> cancelled{true};
  ExecutionContext ctx;
  ctx.cancelled = &cancelled;
  const Tensor* ins[] = {&in};
  EXPECT_THAT(ex->Run(ctx, ins), StatusIs(absl::StatusCode::kCancelled));
}

TEST(GraphTest, ValidateRejectsReadBeforeWrite) {
  ModelGraph g = TinyGraph();
  std::swap(g.nodes[0], g.nodes[1]);
  EXPECT_THAT(g.Validate(), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace vtaserve::engine
