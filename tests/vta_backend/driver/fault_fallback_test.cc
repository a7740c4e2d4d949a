// Device faults end to end through the engine's Executor: a VTA partition
// whose device fails (the fault-injecting simulator, or the register-level
// board model misbehaving) re-runs on the CPU pool with the reference's
// exact answer and the run succeeds; after N consecutive faults the model
// degrades to the CPU pool, and a passing self-test takes the device back.
// The self-test gates device readiness.
#include <memory>
#include <string>
#include <vector>

#include "cpu_backend/cpu_backend.h"
#include "engine/backend_registry.h"
#include "engine/device_faults.h"
#include "engine/executor.h"
#include "engine/onnx/onnx_importer.h"
#include "engine/reference_backend.h"
#include "engine/zoo/resnet_generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/vta_backend/driver/fault_injecting_device.h"
#include "tests/vta_backend/driver/register_model.h"
#include "vta_backend/vta_backend.h"

namespace vtaserve::vta {
namespace {

using testing::FaultInjectingDevice;
using testing::ModelFault;
using testing::RegisterModel;
using testing::RunFault;
using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::StatusIs;

engine::ModelGraph ConvGraph() {
  zoo::ConvSpec spec;
  spec.in_channels = 32;
  spec.out_channels = 32;
  spec.input_h = 14;
  spec.input_w = 14;
  spec.kernel = 3;
  spec.stride = 1;
  spec.pad = 1;
  spec.relu = true;
  auto model = zoo::GenerateConv(spec);
  EXPECT_THAT(model, IsOk());
  engine::ImportOptions import;
  import.requant.shift_group = 16;
  auto g = engine::ImportOnnxModel(*model, import);
  EXPECT_THAT(g, IsOk());
  return *std::move(g);
}

Tensor Input(const engine::ModelGraph& g, uint64_t seed) {
  const engine::Value& v = g.value(g.inputs[0]);
  auto t = Tensor::Create(v.dtype, v.shape);
  EXPECT_THAT(t, IsOk());
  for (size_t i = 0; i < t->byte_size(); ++i)
    t->bytes()[i] = static_cast<uint8_t>((i * 2654435761u + seed) >> 7);
  return *std::move(t);
}

std::vector<Tensor> Reference(const engine::ModelGraph& g, const Tensor& x) {
  engine::BackendRegistry reg;
  EXPECT_THAT(reg.Register(engine::CreateReferenceBackend()), IsOk());
  engine::PlacementOptions p;
  p.preference = {"reference"};
  auto ex = engine::Executor::Create(g, reg, p);
  EXPECT_THAT(ex, IsOk());
  const Tensor* in[] = {&x};
  auto out = (*ex)->Run(engine::ExecutionContext{}, in);
  EXPECT_THAT(out, IsOk());
  return *std::move(out);
}

bool SameBytes(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  if (a.size() != b.size() || a.empty()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].byte_size() != b[i].byte_size() ||
        std::memcmp(a[i].bytes(), b[i].bytes(), a[i].byte_size()) != 0)
      return false;
  }
  return true;
}

// A registry of vta (device from `factory`), cpu and reference, and an
// executor preferring them in that order with the given fault policy.
struct Rig {
  engine::BackendRegistry registry;
  std::shared_ptr<engine::DeviceFaults> faults;
  std::unique_ptr<engine::Executor> executor;
  engine::Backend* vta = nullptr;

  void Init(const engine::ModelGraph& g, VtaDeviceFactory factory,
            engine::DeviceFaultOptions fo, absl::Duration run_timeout) {
    VtaOptions vo;
    vo.device_factory = std::move(factory);
    vo.run_timeout = run_timeout;
    auto b = CreateVtaBackend(vo);
    ASSERT_THAT(b, IsOk());
    vta = b->get();
    ASSERT_THAT(registry.Register(*std::move(b)), IsOk());
    cpu::CpuOptions co;
    co.threads = 1;
    ASSERT_THAT(registry.Register(cpu::CreateCpuBackend(co)), IsOk());
    ASSERT_THAT(registry.Register(engine::CreateReferenceBackend()), IsOk());
    faults = std::make_shared<engine::DeviceFaults>(fo);
    engine::PlacementOptions p;
    p.preference = {"vta", "cpu", "reference"};
    p.faults = faults;
    // The cost model would put this small conv on the CPU pool.
    p.backend_options[engine::kFirstConvOption] = "vta_pad";
    auto ex = engine::Executor::Create(g, registry, p);
    ASSERT_THAT(ex, IsOk());
    executor = *std::move(ex);
    bool on_vta = false;
    for (const auto& pl : executor->placements()) on_vta |= pl.backend == "vta";
    ASSERT_TRUE(on_vta);
  }
  absl::StatusOr<std::vector<Tensor>> Run(const Tensor& x) {
    const Tensor* in[] = {&x};
    return executor->Run(engine::ExecutionContext{}, in);
  }
};

class InjectedFaultTest : public ::testing::TestWithParam<RunFault> {};

TEST_P(InjectedFaultTest, PartitionFallsBackToTheCpuPoolWithTheRightAnswer) {
  const engine::ModelGraph g = ConvGraph();
  const Tensor x = Input(g, 3);
  const std::vector<Tensor> expected = Reference(g, x);
  FaultInjectingDevice* dev = nullptr;
  Rig rig;
  engine::DeviceFaultOptions fo;
  fo.degrade_after = 100;
  rig.Init(
      g,
      [&dev](const VtaConfig& c) -> absl::StatusOr<std::shared_ptr<VtaDevice>> {
        auto sim = sim::SimDevice::Create(c);
        if (!sim.ok()) return sim.status();
        auto d = std::make_shared<FaultInjectingDevice>(*std::move(sim));
        dev = d.get();
        return std::shared_ptr<VtaDevice>(d);
      },
      fo, absl::Milliseconds(200));
  ASSERT_NE(dev, nullptr);
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto clean, rig.Run(x));
  EXPECT_TRUE(SameBytes(clean, expected));
  EXPECT_EQ(rig.faults->fallbacks(), 0u);

  dev->SetFault(GetParam());
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto got, rig.Run(x));
  EXPECT_TRUE(SameBytes(got, expected));
  EXPECT_GT(dev->faults(), 0);
  EXPECT_EQ(rig.faults->fallbacks(), 1u);
  EXPECT_EQ(rig.faults->faults(), 1u);
  EXPECT_TRUE(rig.faults->DegradedBackends().empty());
}

INSTANTIATE_TEST_SUITE_P(Faults, InjectedFaultTest,
                         ::testing::Values(RunFault::kInternal,
                                           RunFault::kDeadlineExceeded,
                                           RunFault::kNeverFinish));

TEST(DeviceFaultPolicyTest, DegradesAfterNFaultsAndTakesTheDeviceBack) {
  const engine::ModelGraph g = ConvGraph();
  const Tensor x = Input(g, 4);
  const std::vector<Tensor> expected = Reference(g, x);
  FaultInjectingDevice* dev = nullptr;
  Rig rig;
  engine::DeviceFaultOptions fo;
  fo.degrade_after = 3;
  fo.probe_interval = absl::ZeroDuration();  // probe on every request
  rig.Init(
      g,
      [&dev](const VtaConfig& c) -> absl::StatusOr<std::shared_ptr<VtaDevice>> {
        auto sim = sim::SimDevice::Create(c);
        if (!sim.ok()) return sim.status();
        auto d = std::make_shared<FaultInjectingDevice>(*std::move(sim));
        dev = d.get();
        return std::shared_ptr<VtaDevice>(d);
      },
      fo, absl::Seconds(10));
  dev->SetFault(RunFault::kInternal);
  EXPECT_THAT(rig.vta->SelfTest(), StatusIs(absl::StatusCode::kInternal));
  for (int i = 0; i < 3; ++i) {
    VTASERVE_ASSERT_OK_AND_ASSIGN(auto got, rig.Run(x));
    EXPECT_TRUE(SameBytes(got, expected));
  }
  EXPECT_THAT(rig.faults->DegradedBackends(), ::testing::ElementsAre("vta"));
  EXPECT_THAT(rig.faults->Describe(), ::testing::HasSubstr("degraded"));
  // Degraded: the device only sees the probes' self-tests (which fail).
  const int runs_before = dev->runs();
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto degraded, rig.Run(x));
  EXPECT_TRUE(SameBytes(degraded, expected));
  EXPECT_EQ(dev->runs(), runs_before + 1);  // the probe's one run
  EXPECT_EQ(rig.faults->DegradedBackends().size(), 1u);
  // The device answers again: the next request's probe takes it back.
  dev->SetFault(RunFault::kNone);
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto back, rig.Run(x));
  EXPECT_TRUE(SameBytes(back, expected));
  EXPECT_TRUE(rig.faults->DegradedBackends().empty());
  EXPECT_GT(dev->runs(), runs_before + 2);  // probe + the layer on VTA
  EXPECT_EQ(rig.faults->fallbacks(), 4u);
}

TEST(DeviceFaultPolicyTest, RequestDeadlineIsNotADeviceFault) {
  engine::ExecutionContext ctx;
  ctx.deadline = absl::Now() - absl::Seconds(1);
  EXPECT_FALSE(engine::IsDeviceFault(absl::DeadlineExceededError("late"), ctx));
  EXPECT_TRUE(engine::IsDeviceFault(absl::DeadlineExceededError("device"),
                                    engine::ExecutionContext{}));
  EXPECT_TRUE(engine::IsDeviceFault(absl::InternalError("x"), ctx));
  EXPECT_TRUE(engine::IsDeviceFault(absl::UnavailableError("x"), ctx));
  EXPECT_FALSE(engine::IsDeviceFault(absl::InvalidArgumentError("x"), ctx));
}

// Every misbehaviour of the register-level board model: the layer still
// gives the reference's answer (on the board, or through the CPU pool).
class BoardFaultTest : public ::testing::TestWithParam<ModelFault> {};

TEST_P(BoardFaultTest, RequestSucceedsThroughTheDriverOrTheCpuFallback) {
  const engine::ModelGraph g = ConvGraph();
  const Tensor x = Input(g, 5);
  const std::vector<Tensor> expected = Reference(g, x);
  testing::RegisterModelOptions mo;
  VTASERVE_ASSERT_OK_AND_ASSIGN(mo.config, VtaConfigPreset("pynq"));
  mo.dram_bytes = size_t{8} << 20;
  mo.late_by = absl::Milliseconds(1500);  // beyond the 1 s run timeout
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto model, RegisterModel::Create(mo));
  Rig rig;
  engine::DeviceFaultOptions fo;
  fo.degrade_after = 100;
  rig.Init(
      g,
      [&model](const VtaConfig&) -> absl::StatusOr<std::shared_ptr<VtaDevice>> {
        auto d = model->OpenDevice();
        if (!d.ok()) return d.status();
        return std::shared_ptr<VtaDevice>(*std::move(d));
      },
      fo, absl::Seconds(1));
  EXPECT_THAT(rig.vta->SelfTest(), IsOk());
  model->SetFault(GetParam());
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto got, rig.Run(x));
  EXPECT_TRUE(SameBytes(got, expected));
  // The tvm-vta race is survived by the driver itself; the others fall back.
  EXPECT_EQ(rig.faults->fallbacks(),
            GetParam() == ModelFault::kStaleDone ? 0u : 1u);
  absl::SleepFor(absl::Milliseconds(1600));  // a late run completes
  model->SetFault(ModelFault::kNone);
  EXPECT_THAT(rig.vta->SelfTest(), IsOk());
}

INSTANTIATE_TEST_SUITE_P(Misbehaviours, BoardFaultTest,
                         ::testing::Values(ModelFault::kStaleDone,
                                           ModelFault::kLate,
                                           ModelFault::kNeverFinish,
                                           ModelFault::kBusError));

}  // namespace
}  // namespace vtaserve::vta
