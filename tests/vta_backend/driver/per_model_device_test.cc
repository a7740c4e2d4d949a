// What a model gets of the backend's device: its buffers are allocated once,
// at compile, and reused by every execution (a counting device wrapper);
// its vta_config option compiles it for another configuration on its own
// simulator, a device from a factory (a board) refuses a configuration
// other than its own, and a bad value is refused naming the field.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "cpu_backend/cpu_backend.h"
#include "engine/backend_registry.h"
#include "engine/executor.h"
#include "engine/model_manager.h"
#include "engine/onnx/onnx_importer.h"
#include "engine/reference_backend.h"
#include "engine/zoo/resnet_generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/vta_backend/driver/counting_device.h"
#include "vta_backend/sim/sim_device.h"
#include "vta_backend/vta_backend.h"

namespace vtaserve::vta {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using testing::CountingDevice;
using ::testing::HasSubstr;
using ::testing::Not;
using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::StatusIs;

engine::ModelGraph Import(const onnx::ModelProto& m) {
  engine::ImportOptions import;
  import.requant.shift_group = 16;
  auto g = engine::ImportOnnxModel(m, import);
  EXPECT_THAT(g, IsOk());
  return *std::move(g);
}

engine::ModelGraph SmallResNet18() {
  zoo::ResNetSpec spec;
  spec.depth = 18;
  spec.input_size = 32;
  spec.num_classes = 10;
  auto m = zoo::GenerateResNet(spec);
  EXPECT_THAT(m, IsOk());
  return Import(*m);
}

engine::ModelGraph Conv32() {
  zoo::ConvSpec spec;
  spec.in_channels = 32;
  spec.out_channels = 64;
  spec.input_h = 14;
  spec.input_w = 14;
  spec.kernel = 3;
  spec.stride = 1;
  spec.pad = 1;
  spec.relu = true;
  auto m = zoo::GenerateConv(spec);
  EXPECT_THAT(m, IsOk());
  return Import(*m);
}

Tensor Input(const engine::ModelGraph& g, uint64_t seed) {
  const engine::Value& v = g.value(g.inputs[0]);
  auto t = Tensor::Create(v.dtype, v.shape);
  EXPECT_THAT(t, IsOk());
  for (size_t i = 0; i < t->byte_size(); ++i)
    t->bytes()[i] = static_cast<uint8_t>((i * 2654435761u + seed) >> 7);
  return *std::move(t);
}

// Registry of vta (from `vo`), cpu and reference.
absl::Status Register(engine::BackendRegistry& registry, const VtaOptions& vo) {
  auto vta = CreateVtaBackend(vo);
  if (!vta.ok()) return vta.status();
  if (auto s = registry.Register(*std::move(vta)); !s.ok()) return s;
  cpu::CpuOptions co;
  co.threads = 1;
  if (auto s = registry.Register(cpu::CreateCpuBackend(co)); !s.ok()) return s;
  return registry.Register(engine::CreateReferenceBackend());
}

absl::StatusOr<std::unique_ptr<engine::Executor>> Create(
    const engine::ModelGraph& g, const engine::BackendRegistry& registry,
    const engine::BackendOptions& options,
    std::vector<std::string> preference = {"vta", "cpu", "reference"}) {
  engine::PlacementOptions p;
  p.preference = std::move(preference);
  p.backend_options = options;
  // The stem on VTA too, whatever the (measured) cost model would say.
  if (p.preference.front() == "vta") {
    p.backend_options[engine::kFirstConvOption] = "vta_im2col";
  }
  return engine::Executor::Create(g, registry, p);
}

std::vector<Tensor> RunOnce(engine::Executor& ex, const Tensor& x) {
  const Tensor* in[] = {&x};
  auto out = ex.Run(engine::ExecutionContext{}, in);
  EXPECT_THAT(out, IsOk());
  return out.ok() ? *std::move(out) : std::vector<Tensor>{};
}

void ExpectSameBytes(const std::vector<Tensor>& a,
                     const std::vector<Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].byte_size(), b[i].byte_size());
    EXPECT_EQ(std::memcmp(a[i].bytes(), b[i].bytes(), a[i].byte_size()), 0)
        << "output " << i;
  }
}

std::vector<Tensor> Reference(const engine::ModelGraph& g, const Tensor& x) {
  engine::BackendRegistry registry;
  EXPECT_THAT(registry.Register(engine::CreateReferenceBackend()), IsOk());
  auto ex = Create(g, registry, {}, {"reference"});
  EXPECT_THAT(ex, IsOk());
  return RunOnce(**ex, x);
}

// The backend's device through a CountingDevice over the simulator.
VtaDeviceFactory CountingFactory(std::shared_ptr<CountingDevice>* out) {
  return
      [out](const VtaConfig& c) -> absl::StatusOr<std::shared_ptr<VtaDevice>> {
        auto sim = sim::SimDevice::Create(c);
        if (!sim.ok()) return sim.status();
        std::shared_ptr<VtaDevice> inner = *std::move(sim);
        *out = std::make_shared<CountingDevice>(std::move(inner));
        return *out;
      };
}

TEST(PerModelDeviceTest, BuffersAreAllocatedAtCompileAndReusedByEveryRun) {
  const engine::ModelGraph g = SmallResNet18();
  std::shared_ptr<CountingDevice> dev;
  VtaOptions vo;
  vo.device_factory = CountingFactory(&dev);
  engine::BackendRegistry registry;
  ASSERT_THAT(Register(registry, vo), IsOk());
  ASSERT_NE(dev, nullptr);
  const int allocs_before = dev->allocs();
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto ex, Create(g, registry, {}));
  int on_vta = 0;
  for (const auto& p : ex->placements()) on_vta += p.backend == "vta";
  ASSERT_GT(on_vta, 10);
  const int allocs_compiled = dev->allocs();
  EXPECT_GT(allocs_compiled, allocs_before);
  const int frees_compiled = dev->frees();

  const Tensor x = Input(g, 5);
  const std::vector<Tensor> want = Reference(g, x);
  int runs = dev->runs();
  for (int i = 0; i < 4; ++i) {
    ExpectSameBytes(RunOnce(*ex, x), want);
    EXPECT_GT(dev->runs(), runs) << "execution " << i;
    runs = dev->runs();
    EXPECT_EQ(dev->allocs(), allocs_compiled) << "execution " << i;
    EXPECT_EQ(dev->frees(), frees_compiled) << "execution " << i;
  }
  // Unloading the model gives every buffer back.
  ex.reset();
  EXPECT_EQ(dev->frees(), dev->allocs() - allocs_before);
}

TEST(PerModelDeviceTest, ModelVtaConfigCompilesForThatConfig) {
  const engine::ModelGraph g = Conv32();
  VtaOptions vo;  // pynq, 1x16x16, on the built-in simulator
  engine::BackendRegistry registry;
  ASSERT_THAT(Register(registry, vo), IsOk());
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      auto wide, Create(g, registry, {{"vta_config", "1x32x32"}}));
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto own, Create(g, registry, {}));
  EXPECT_THAT(wide->DescribePartitions(), Contains(HasSubstr("on 1x32_")));
  EXPECT_THAT(own->DescribePartitions(), Contains(HasSubstr("on 1x16_")));
  EXPECT_THAT(own->DescribePartitions(), Not(Contains(HasSubstr("1x32_"))));
  bool conv_on_vta = false;
  for (const auto& p : wide->placements()) {
    conv_on_vta |= p.op == engine::OpKind::kConv && p.backend == "vta";
  }
  EXPECT_TRUE(conv_on_vta);
  const Tensor x = Input(g, 7);
  const std::vector<Tensor> want = Reference(g, x);
  ExpectSameBytes(RunOnce(*wide, x), want);
  ExpectSameBytes(RunOnce(*own, x), want);
  // Naming the backend's own configuration is the backend's own device.
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto same,
                                Create(g, registry, {{"vta_config", "pynq"}}));
  EXPECT_THAT(same->DescribePartitions(), Contains(HasSubstr("on 1x16_")));
}

TEST(PerModelDeviceTest, BadVtaConfigIsRefusedNamingTheField) {
  const engine::ModelGraph g = Conv32();
  engine::BackendRegistry registry;
  ASSERT_THAT(Register(registry, VtaOptions{}), IsOk());
  for (const char* bad : {"no-such-preset", "/nonexistent/vta.json"}) {
    EXPECT_THAT(
        Create(g, registry, {{"vta_config", bad}}),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vta_config")))
        << bad;
  }
}

TEST(PerModelDeviceTest, ABoardRefusesAConfigOtherThanItsBitstreams) {
  const engine::ModelGraph g = Conv32();
  std::shared_ptr<CountingDevice> dev;
  VtaOptions vo;
  vo.config = "pynq";
  vo.device_factory = CountingFactory(&dev);
  engine::BackendRegistry registry;
  ASSERT_THAT(Register(registry, vo), IsOk());
  EXPECT_THAT(Create(g, registry, {{"vta_config", "1x32x32"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("vta_config"), HasSubstr("bitstream"))));
  EXPECT_THAT(
      Create(g, registry, {{"vta_config", "ultra96"}}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vta_config")));
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto ex,
                                Create(g, registry, {{"vta_config", "pynq"}}));
  const Tensor x = Input(g, 9);
  ExpectSameBytes(RunOnce(*ex, x), Reference(g, x));
  EXPECT_GT(dev->runs(), 0);
}

// Through config.pbtxt and the model manager: vta_config and cpu_threads
// reach the backends, and a bad vta_config fails that model's load with a
// message naming the field while the others load.
TEST(PerModelDeviceTest, ConfigFieldsReachTheBackendsAtLoad) {
  namespace fs = std::filesystem;
  const fs::path repo = fs::path(::testing::TempDir()) / "per_model_repo";
  fs::remove_all(repo);
  zoo::ConvSpec spec;
  spec.in_channels = 32;
  spec.out_channels = 64;
  spec.input_h = spec.input_w = 14;
  spec.kernel = 3;
  spec.stride = 1;
  spec.pad = 1;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto m, zoo::GenerateConv(spec));
  auto add = [&](const std::string& name, const std::string& config) {
    fs::create_directories(repo / name / "1");
    std::ofstream(repo / name / "1" / "model.onnx", std::ios::binary)
        << m.SerializeAsString();
    std::ofstream(repo / name / "config.pbtxt") << config;
  };
  add("wide", "vta_config: \"1x32x32\" first_conv: \"vta_pad\"");
  add("one_thread", "placement: \"cpu\" cpu_threads: 1");
  add("bad", "vta_config: \"no-such-config\"");
  engine::BackendRegistry registry;
  VtaOptions vo;
  ASSERT_THAT(registry.Register(*CreateVtaBackend(vo)), IsOk());
  cpu::CpuOptions co;
  co.threads = 2;
  ASSERT_THAT(registry.Register(cpu::CreateCpuBackend(co)), IsOk());
  ASSERT_THAT(registry.Register(engine::CreateReferenceBackend()), IsOk());
  engine::ModelManagerOptions options;
  options.repository = repo.string();
  engine::ModelManager manager(
      options, &registry,
      [](const std::string& path, const engine::ModelConfig& config) {
        engine::ImportOptions import;
        import.requant.shift_group = config.shift_group;
        return engine::ImportOnnxFile(path, import);
      });
  EXPECT_THAT(manager.Load("wide"), IsOk());
  EXPECT_THAT(manager.Load("one_thread"), IsOk());
  EXPECT_THAT(
      manager.Load("bad"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("vta_config"), HasSubstr("no-such-config"))));
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto wide, manager.Find("wide", ""));
  EXPECT_THAT(wide->partitions, Contains(HasSubstr("on 1x32_")));
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto one, manager.Find("one_thread", ""));
  EXPECT_THAT(one->partitions, Contains(HasSubstr(", 1 threads")));
}

}  // namespace
}  // namespace vtaserve::vta
