// The CPU backend end to end: a small ResNet-shaped graph using every engine
// op against the reference backend (bit-exact, floats compared bytewise),
// for each ISA path and thread count, whole and split into partitions at
// several points; profiling, cancellation, errors and the cost estimate.
#include "cpu_backend/cpu_backend.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/executor.h"
#include "engine/reference_backend.h"
#include "gtest/gtest.h"
#include "tests/cpu_backend/test_graphs.h"
#include "tests/testing/status_matchers.h"

namespace vtaserve::cpu {
namespace {

using engine::ExecutionContext;
using engine::ModelGraph;
using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::StatusIs;

constexpr int kImageSize = 29;  // odd: every stage has a tail

// Allocates tensors for the values `ids` of `g`.
std::vector<Tensor> Allocate(const ModelGraph& g,
                             const std::vector<engine::ValueId>& ids) {
  std::vector<Tensor> out;
  for (engine::ValueId v : ids) {
    auto t = Tensor::Create(g.values[v].dtype, g.values[v].shape);
    EXPECT_TRUE(t.ok());
    out.push_back(std::move(*t));
  }
  return out;
}

Tensor RandomImage(int size, uint32_t seed) {
  Tensor t = *Tensor::Create(DataType::kFloat32, {1, 3, size, size});
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-2.7f, 2.7f);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

absl::Status RunModel(engine::CompiledModel& m, const ExecutionContext& ctx,
                      const std::vector<const Tensor*>& ins,
                      std::vector<Tensor>& outs) {
  std::vector<Tensor*> out_ptrs;
  for (Tensor& t : outs) out_ptrs.push_back(&t);
  return m.Execute(ctx, ins, out_ptrs);
}

// Outputs of the whole graph on the reference backend.
absl::StatusOr<std::vector<Tensor>> ReferenceOutputs(const ModelGraph& g,
                                                     const Tensor& image) {
  auto ref = engine::CreateReferenceBackend();
  auto model = ref->Compile(g, {});
  if (!model.ok()) return model.status();
  std::vector<Tensor> outs = Allocate(g, g.outputs);
  absl::Status run = RunModel(**model, ExecutionContext{}, {&image}, outs);
  if (!run.ok()) return run;
  return outs;
}

// Success when `got` holds the same bytes as `want`; the first differing
// byte otherwise.
::testing::AssertionResult SameBytes(const Tensor& got, const Tensor& want) {
  if (got.byte_size() != want.byte_size()) {
    return ::testing::AssertionFailure()
           << got.byte_size() << " bytes, want " << want.byte_size();
  }
  for (size_t i = 0; i < want.byte_size(); ++i) {
    if (got.bytes()[i] != want.bytes()[i]) {
      return ::testing::AssertionFailure()
             << "byte " << i << ": " << int{got.bytes()[i]} << ", want "
             << int{want.bytes()[i]};
    }
  }
  return ::testing::AssertionSuccess();
}

using BackendParam = std::tuple<CpuIsa, int>;

class CpuBackendTest : public ::testing::TestWithParam<BackendParam> {
 protected:
  void SetUp() override {
    if (!CpuSupports(std::get<0>(GetParam()))) {
      GTEST_SKIP() << "this CPU lacks " << CpuIsaName(std::get<0>(GetParam()))
                   << "; that path is not exercised here";
    }
    CpuOptions options;
    options.isa = std::get<0>(GetParam());
    options.threads = std::get<1>(GetParam());
    backend_ = CreateCpuBackend(options);
  }
  std::unique_ptr<engine::Backend> backend_;
};

TEST_P(CpuBackendTest, SmallResNetMatchesReference) {
  const ModelGraph g = testing::SmallResNet(kImageSize, 7);
  ASSERT_THAT(g.Validate(), IsOk());
  const Tensor image = RandomImage(kImageSize, 3);
  VTASERVE_ASSERT_OK_AND_ASSIGN(const std::vector<Tensor> want,
                                ReferenceOutputs(g, image));
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto model, backend_->Compile(g, {}));
  std::vector<Tensor> got = Allocate(g, g.outputs);
  std::vector<engine::LayerTiming> profile;
  ExecutionContext ctx;
  ctx.profile = &profile;
  // Twice: the second run reuses the compiled buffers.
  absl::Duration run_time;
  for (int run = 0; run < 2; ++run) {
    profile.clear();
    const absl::Time start = absl::Now();
    ASSERT_THAT(RunModel(*model, ctx, {&image}, got), IsOk());
    run_time = absl::Now() - start;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_TRUE(SameBytes(got[i], want[i]))
          << "output " << i << " run " << run;
    }
  }
  ASSERT_EQ(profile.size(), g.nodes.size());
  // Every layer does work, so takes time; the layers run inside the timed
  // Execute, so their sum cannot exceed it.
  double layer_sum = 0;
  for (size_t i = 0; i < profile.size(); ++i) {
    EXPECT_EQ(profile[i].layer, g.nodes[i].name);
    EXPECT_EQ(profile[i].device, "cpu");
    EXPECT_GT(profile[i].wall_seconds, 0.0) << profile[i].layer;
    layer_sum += profile[i].wall_seconds;
  }
  EXPECT_LE(layer_sum, absl::ToDoubleSeconds(run_time));
}

TEST_P(CpuBackendTest, PartitionBoundariesUseEngineLayout) {
  const ModelGraph g = testing::SmallResNet(kImageSize, 11);
  const Tensor image = RandomImage(kImageSize, 5);
  VTASERVE_ASSERT_OK_AND_ASSIGN(const std::vector<Tensor> want,
                                ReferenceOutputs(g, image));
  const int n = static_cast<int>(g.nodes.size());
  for (const int split : {2, 3, 5, 9, n - 3}) {
    SCOPED_TRACE(absl::StrCat("split before node ", split));
    std::vector<engine::NodeId> first, second;
    for (int i = 0; i < n; ++i) (i < split ? first : second).push_back(i);
    const engine::Subgraph a = engine::ExtractSubgraph(g, first);
    const engine::Subgraph b = engine::ExtractSubgraph(g, second);
    VTASERVE_ASSERT_OK_AND_ASSIGN(auto ma, backend_->Compile(a.graph, {}));
    VTASERVE_ASSERT_OK_AND_ASSIGN(auto mb, backend_->Compile(b.graph, {}));
    // Values by id of the whole graph.
    std::vector<const Tensor*> by_id(g.values.size(), nullptr);
    by_id[g.inputs[0]] = &image;
    std::vector<Tensor> a_out = Allocate(a.graph, a.graph.outputs);
    std::vector<const Tensor*> a_in;
    for (engine::ValueId v : a.graph.inputs)
      a_in.push_back(by_id[a.value_map[v]]);
    ASSERT_THAT(RunModel(*ma, ExecutionContext{}, a_in, a_out), IsOk());
    for (size_t i = 0; i < a.graph.outputs.size(); ++i) {
      by_id[a.value_map[a.graph.outputs[i]]] = &a_out[i];
    }
    std::vector<Tensor> b_out = Allocate(b.graph, b.graph.outputs);
    std::vector<const Tensor*> b_in;
    for (engine::ValueId v : b.graph.inputs) {
      ASSERT_NE(by_id[b.value_map[v]], nullptr);
      b_in.push_back(by_id[b.value_map[v]]);
    }
    ASSERT_THAT(RunModel(*mb, ExecutionContext{}, b_in, b_out), IsOk());
    for (size_t i = 0; i < b.graph.outputs.size(); ++i) {
      by_id[b.value_map[b.graph.outputs[i]]] = &b_out[i];
    }
    for (size_t i = 0; i < g.outputs.size(); ++i) {
      ASSERT_NE(by_id[g.outputs[i]], nullptr);
      EXPECT_TRUE(SameBytes(*by_id[g.outputs[i]], want[i])) << "output " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    IsaAndThreads, CpuBackendTest,
    ::testing::Combine(::testing::Values(CpuIsa::kScalar, CpuIsa::kAvx2,
                                         CpuIsa::kAvxVnni, CpuIsa::kAvx512Vnni),
                       ::testing::Values(1, 2, 4)),
    [](const ::testing::TestParamInfo<BackendParam>& info) {
      return absl::StrCat(CpuIsaName(std::get<0>(info.param)), "_",
                          std::get<1>(info.param), "threads");
    });

TEST(CpuBackendApiTest, NameAndDescribe) {
  auto backend = CreateCpuBackend(CpuOptions{});
  EXPECT_EQ(backend->Name(), "cpu");
  const ModelGraph g = testing::SmallResNet(kImageSize, 1);
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto model, backend->Compile(g, {}));
  EXPECT_NE(model->Describe().find("cpu"), std::string::npos);
}

TEST(CpuBackendApiTest, RunsUnderTheExecutor) {
  engine::BackendRegistry registry;
  ASSERT_THAT(registry.Register(CreateCpuBackend(CpuOptions{})), IsOk());
  const ModelGraph g = testing::SmallResNet(kImageSize, 2);
  const Tensor image = RandomImage(kImageSize, 9);
  VTASERVE_ASSERT_OK_AND_ASSIGN(const std::vector<Tensor> want,
                                ReferenceOutputs(g, image));
  engine::PlacementOptions placement;
  placement.preference = {"cpu"};
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      auto ex, engine::Executor::Create(g, registry, placement));
  for (const auto& p : ex->placements()) EXPECT_EQ(p.backend, "cpu") << p.node;
  const Tensor* ins[] = {&image};
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto outs, ex->Run(ExecutionContext{}, ins));
  ASSERT_EQ(outs.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_TRUE(SameBytes(outs[i], want[i])) << "output " << i;
  }
}

TEST(CpuBackendApiTest, CancelledBeforeFirstLayerRunsNothing) {
  auto backend = CreateCpuBackend(CpuOptions{});
  const ModelGraph g = testing::SmallResNet(kImageSize, 1);
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto model, backend->Compile(g, {}));
  const Tensor image = RandomImage(kImageSize, 1);
  std::vector<Tensor> outs = Allocate(g, g.outputs);
  std::atomic<bool> cancelled{true};
  std::vector<engine::LayerTiming> profile;
  ExecutionContext ctx;
  ctx.cancelled = &cancelled;
  ctx.profile = &profile;
  EXPECT_THAT(RunModel(*model, ctx, {&image}, outs),
              StatusIs(absl::StatusCode::kCancelled));
  EXPECT_TRUE(profile.empty());
  ExecutionContext late;
  late.deadline = absl::Now() - absl::Seconds(1);
  EXPECT_THAT(RunModel(*model, late, {&image}, outs),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST(CpuBackendApiTest, CancellationStopsBetweenLayers) {
  CpuOptions options;
  options.threads = 1;
  options.isa = CpuIsa::kScalar;  // slowest path: many layers run per ms
  auto backend = CreateCpuBackend(options);
  const ModelGraph g = testing::SmallResNet(kImageSize, 1);
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto model, backend->Compile(g, {}));
  const Tensor image = RandomImage(kImageSize, 1);
  std::vector<Tensor> outs = Allocate(g, g.outputs);
  std::atomic<bool> cancelled{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    cancelled = true;
  });
  absl::Status status;
  std::vector<engine::LayerTiming> profile;
  for (int i = 0; i < 100000; ++i) {
    profile.clear();
    ExecutionContext ctx;
    ctx.cancelled = &cancelled;
    ctx.profile = &profile;
    status = RunModel(*model, ctx, {&image}, outs);
    if (!status.ok()) break;
  }
  canceller.join();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_LT(profile.size(), g.nodes.size());
}

TEST(CpuBackendApiTest, ForcedIsaTheCpuLacksFailsToCompile) {
  for (CpuIsa isa : {CpuIsa::kAvx2, CpuIsa::kAvxVnni, CpuIsa::kAvx512Vnni}) {
    if (CpuSupports(isa)) continue;
    CpuOptions options;
    options.isa = isa;
    auto backend = CreateCpuBackend(options);
    EXPECT_THAT(
        backend->Compile(testing::SmallResNet(kImageSize, 1), {}).status(),
        StatusIs(absl::StatusCode::kFailedPrecondition))
        << CpuIsaName(isa);
  }
}

TEST(CpuBackendApiTest, RejectsInvalidGraphAndBatchedValues) {
  auto backend = CreateCpuBackend(CpuOptions{});
  ModelGraph bad = testing::SmallResNet(kImageSize, 1);
  std::swap(bad.nodes[0], bad.nodes[1]);
  EXPECT_THAT(backend->Compile(bad, {}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ModelGraph batched = testing::SmallResNet(kImageSize, 1);
  for (auto& v : batched.values) v.shape[0] = 2;
  EXPECT_THAT(backend->Supports(batched, batched.nodes[1]),
              StatusIs(absl::StatusCode::kUnimplemented));
}

TEST(CpuBackendApiTest, EstimateCostTimesTheNode) {
  auto backend = CreateCpuBackend(CpuOptions{});
  const ModelGraph g = testing::SmallResNet(kImageSize, 1);
  VTASERVE_ASSERT_OK_AND_ASSIGN(engine::NodeCost cost,
                                backend->EstimateCost(g, 1, {}));
  EXPECT_GT(cost.seconds, 0.0);
  EXPECT_EQ(cost.strategy, "cpu");
  EXPECT_THAT(backend->EstimateCost(g, 1000, {}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace vtaserve::cpu
