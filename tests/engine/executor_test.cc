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
  VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor in,
                                Tensor::Create(DataType::kUInt8, {2, 4}));
  const uint8_t vals[8] = {0, 100, 128, 200, 255, 127, 129, 1};
  for (int i = 0; i < 8; ++i) in.data<uint8_t>()[i] = vals[i];
  const Tensor* ins[] = {&in};
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto outs, ex->Run(ExecutionContext{}, ins));
  ASSERT_EQ(outs.size(), 1u);
  EXPECT_EQ(outs[0].shape(), (std::vector<int64_t>{2, 4}));
  const uint8_t want[8] = {128, 128, 128, 200, 255, 128, 129, 128};
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(outs[0].data<uint8_t>()[i], want[i]) << i;
  EXPECT_EQ(ex->placements()[1].backend, "reference");
}

TEST(ExecutorTest, RejectsWrongShapeAndDtype) {
  BackendRegistry registry;
  ASSERT_THAT(registry.Register(CreateReferenceBackend()), IsOk());
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      auto ex, Executor::Create(TinyGraph(), registry, PlacementOptions{}));
  VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor bad_shape,
                                Tensor::Create(DataType::kUInt8, {1, 5}));
  const Tensor* ins1[] = {&bad_shape};
  EXPECT_THAT(ex->Run(ExecutionContext{}, ins1),
              StatusIs(absl::StatusCode::kInvalidArgument));
  VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor bad_type,
                                Tensor::Create(DataType::kFloat32, {1, 4}));
  const Tensor* ins2[] = {&bad_type};
  EXPECT_THAT(ex->Run(ExecutionContext{}, ins2),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ExecutorTest, HonorsCancellation) {
  BackendRegistry registry;
  ASSERT_THAT(registry.Register(CreateReferenceBackend()), IsOk());
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      auto ex, Executor::Create(TinyGraph(), registry, PlacementOptions{}));
  VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor in,
                                Tensor::Create(DataType::kUInt8, {1, 4}));
  std::atomic<bool> cancelled{true};
  ExecutionContext ctx;
  ctx.cancelled = &cancelled;
  const Tensor* ins[] = {&in};
  EXPECT_THAT(ex->Run(ctx, ins), StatusIs(absl::StatusCode::kCancelled));
}

// A backend that runs on the reference but reports a fixed cost, and
// records the options its Compile saw.
class FakeCostBackend : public Backend {
 public:
  FakeCostBackend(std::string name, double seconds, bool supports)
      : name_(std::move(name)),
        seconds_(seconds),
        supports_(supports),
        reference_(CreateReferenceBackend()) {}
  absl::string_view Name() const override { return name_; }
  absl::Status Supports(const ModelGraph&, const Node&) const override {
    return supports_ ? absl::OkStatus() : absl::UnimplementedError("no");
  }
  absl::StatusOr<std::unique_ptr<CompiledModel>> Compile(
      const ModelGraph& graph, const BackendOptions& options) override {
    last_options = options;
    return reference_->Compile(graph, options);
  }
  absl::StatusOr<NodeCost> EstimateCost(
      const ModelGraph&, NodeId, const BackendOptions& options) override {
    auto it = options.find("strategy:conv");
    NodeCost c;
    c.seconds = seconds_;
    c.strategy = it != options.end() ? it->second : name_ + "_best";
    c.detail = "fake";
    return c;
  }
  BackendOptions last_options;

 private:
  std::string name_;
  double seconds_;
  bool supports_;
  std::unique_ptr<Backend> reference_;
};

// x(int8 [1,1,2,2]) -> conv 1x1 -> y
ModelGraph ConvGraph() {
  ModelGraph g;
  g.name = "conv";
  g.values = {{"x", DataType::kInt8, {1, 1, 2, 2}, 0.1f, 0},
              {"y", DataType::kInt8, {1, 1, 2, 2}, 0.1f, 0}};
  ConvParams p;
  p.in_channels = p.out_channels = 1;
  p.weights = {2};
  p.bias = {0};
  p.shift = {0};
  g.nodes.push_back({"conv", OpKind::kConv, {0}, {1}, p});
  g.inputs = {0};
  g.outputs = {1};
  return g;
}

TEST(ExecutorTest, FirstConvAutoPicksCheapestBackend) {
  BackendRegistry registry;
  auto slow = std::make_unique<FakeCostBackend>("vta", 2.0, true);
  auto fast = std::make_unique<FakeCostBackend>("cpu", 1.0, true);
  FakeCostBackend* fast_ptr = fast.get();
  ASSERT_THAT(registry.Register(std::move(slow)), IsOk());
  ASSERT_THAT(registry.Register(std::move(fast)), IsOk());
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      auto ex, Executor::Create(ConvGraph(), registry, PlacementOptions{}));
  ASSERT_EQ(ex->placements().size(), 1u);
  EXPECT_EQ(ex->placements()[0].backend, "cpu");
  EXPECT_EQ(ex->placements()[0].strategy, "cpu_best");
  EXPECT_DOUBLE_EQ(ex->placements()[0].cost_seconds, 1.0);
  EXPECT_EQ(fast_ptr->last_options.at("strategy:conv"), "cpu_best");
}

TEST(ExecutorTest, FirstConvForcedStrategyReachesBackend) {
  BackendRegistry registry;
  auto vta = std::make_unique<FakeCostBackend>("vta", 2.0, true);
  FakeCostBackend* vta_ptr = vta.get();
  ASSERT_THAT(registry.Register(std::move(vta)), IsOk());
  ASSERT_THAT(
      registry.Register(std::make_unique<FakeCostBackend>("cpu", 1.0, true)),
      IsOk());
  PlacementOptions options;
  options.backend_options["first_conv"] = "vta_im2col";
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      auto ex, Executor::Create(ConvGraph(), registry, options));
  EXPECT_EQ(ex->placements()[0].backend, "vta");
  EXPECT_EQ(ex->placements()[0].strategy, "vta_im2col");
  EXPECT_EQ(vta_ptr->last_options.at("strategy:conv"), "vta_im2col");
}

TEST(ExecutorTest, FirstConvRejectsUnknownPolicyAndMissingBackend) {
  BackendRegistry registry;
  ASSERT_THAT(
      registry.Register(std::make_unique<FakeCostBackend>("cpu", 1.0, true)),
      IsOk());
  PlacementOptions options;
  options.backend_options["first_conv"] = "gpu";
  EXPECT_THAT(Executor::Create(ConvGraph(), registry, options),
              StatusIs(absl::StatusCode::kInvalidArgument));
  options.backend_options["first_conv"] = "vta_pad";
  EXPECT_THAT(Executor::Create(ConvGraph(), registry, options),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(ExecutorTest, FirstConvForcedOnBackendThatDeclinesIsInvalid) {
  BackendRegistry registry;
  ASSERT_THAT(
      registry.Register(std::make_unique<FakeCostBackend>("vta", 1.0, false)),
      IsOk());
  ASSERT_THAT(registry.Register(CreateReferenceBackend()), IsOk());
  PlacementOptions options;
  options.backend_options["first_conv"] = "vta_im2col";
  EXPECT_THAT(Executor::Create(ConvGraph(), registry, options),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(GraphTest, ValidateRejectsReadBeforeWrite) {
  ModelGraph g = TinyGraph();
  std::swap(g.nodes[0], g.nodes[1]);
  EXPECT_THAT(g.Validate(), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace vtaserve::engine
