// The board driver (vta_backend/driver) against the register-level model
// (register_model.h) of both designs: the Xilinx HLS blocks (pynq config)
// and the Chisel block of DE10-Nano (de10nano config, device addresses =
// physical + 0x80000000). Layers, the four first-conv strategies and a
// whole generated ResNet-18 (32x32 input, to keep CI cheap) must be byte
// identical to the built-in simulator; every misbehaviour of the model
// gives its status; runs serialize on the one device.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/backend_registry.h"
#include "engine/executor.h"
#include "engine/onnx/onnx_importer.h"
#include "engine/reference_backend.h"
#include "engine/zoo/resnet_generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/vta_backend/driver/register_model.h"
#include "vta_backend/driver/board_spec.h"
#include "vta_backend/runtime/self_test.h"
#include "vta_backend/vta_backend.h"

namespace vtaserve::vta {
namespace {

using ::testing::HasSubstr;
using testing::ModelFault;
using testing::RegisterModel;
using testing::RegisterModelOptions;
using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::StatusIs;

struct DesignCase {
  const char* name;
  driver::Design design;
  const char* preset;
  uint64_t device_address_offset;
};

constexpr DesignCase kDesigns[] = {
    {"hls_pynq", driver::Design::kXilinxHls, "pynq", 0},
    {"chisel_de10nano", driver::Design::kChisel, "de10nano", 0x80000000},
};

class BoardDeviceTest : public ::testing::TestWithParam<DesignCase> {
 protected:
  void SetUp() override {
    VTASERVE_ASSERT_OK_AND_ASSIGN(config_, VtaConfigPreset(GetParam().preset));
  }
  std::unique_ptr<RegisterModel> NewModel(size_t dram_bytes = size_t{32}
                                                              << 20) {
    RegisterModelOptions o;
    o.design = GetParam().design;
    o.config = config_;
    o.dram_bytes = dram_bytes;
    o.device_address_offset = GetParam().device_address_offset;
    auto m = RegisterModel::Create(o);
    EXPECT_THAT(m, IsOk());
    return m.ok() ? *std::move(m) : nullptr;
  }
  // Runs `graph` on VTA (+ reference for the rest) with the device from
  // `factory` (null: the built-in simulator).
  std::vector<Tensor> RunGraph(const engine::ModelGraph& graph,
                               const Tensor& input,
                               const VtaDeviceFactory& factory,
                               const std::string& first_conv = "auto") {
    VtaOptions vo;
    vo.config = GetParam().preset;
    vo.device_factory = factory;
    vo.run_timeout = absl::Seconds(30);
    auto vta = CreateVtaBackend(vo);
    EXPECT_THAT(vta, IsOk());
    if (!vta.ok()) return {};
    engine::BackendRegistry registry;
    EXPECT_THAT(registry.Register(*std::move(vta)), IsOk());
    EXPECT_THAT(registry.Register(engine::CreateReferenceBackend()), IsOk());
    engine::PlacementOptions placement;
    placement.preference = {"vta", "reference"};
    placement.backend_options[engine::kFirstConvOption] = first_conv;
    auto ex = engine::Executor::Create(graph, registry, placement);
    EXPECT_THAT(ex, IsOk());
    if (!ex.ok()) return {};
    bool on_vta = false;
    for (const auto& p : (*ex)->placements()) on_vta |= p.backend == "vta";
    EXPECT_TRUE(on_vta);
    const Tensor* inputs[] = {&input};
    auto out = (*ex)->Run(engine::ExecutionContext{}, inputs);
    EXPECT_THAT(out, IsOk());
    return out.ok() ? *std::move(out) : std::vector<Tensor>{};
  }
  VtaDeviceFactory ModelFactory(RegisterModel* model) {
    return [model](
               const VtaConfig&) -> absl::StatusOr<std::shared_ptr<VtaDevice>> {
      auto d = model->OpenDevice();
      if (!d.ok()) return d.status();
      return std::shared_ptr<VtaDevice>(*std::move(d));
    };
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
  void ExpectModelClean(const RegisterModel& m) {
    EXPECT_GT(m.runs(), 0);
    EXPECT_EQ(m.overlapping_starts(), 0);
    EXPECT_THAT(m.last_sim_error(), IsOk());
    EXPECT_GT(m.syncs(), 0);  // explicit cache maintenance happened
  }

  VtaConfig config_;
};

Tensor RandomInput(const engine::Value& v, uint64_t seed) {
  auto t = Tensor::Create(v.dtype, v.shape);
  EXPECT_THAT(t, IsOk());
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < t->byte_size(); ++i) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    t->bytes()[i] = static_cast<uint8_t>(s);
  }
  return *std::move(t);
}

absl::StatusOr<engine::ModelGraph> ConvGraph(const VtaConfig& config, int cin,
                                             int k, int stride, int pad) {
  zoo::ConvSpec spec;
  spec.in_channels = cin;
  spec.out_channels = 32;
  spec.input_h = 21;
  spec.input_w = 23;
  spec.kernel = k;
  spec.stride = stride;
  spec.pad = pad;
  spec.relu = true;
  auto model = zoo::GenerateConv(spec);
  if (!model.ok()) return model.status();
  engine::ImportOptions import;
  import.requant.shift_group = config.BlockOut();
  return engine::ImportOnnxModel(*model, import);
}

TEST_P(BoardDeviceTest, SelfTestPassesThroughTheDriver) {
  auto model = NewModel();
  ASSERT_NE(model, nullptr);
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto dev, model->OpenDevice());
  EXPECT_THAT(RunDeviceSelfTest(*dev, config_, absl::Seconds(10)), IsOk());
  ExpectModelClean(*model);
}

TEST_P(BoardDeviceTest, ConvLayersByteIdenticalToSim) {
  auto model = NewModel();
  ASSERT_NE(model, nullptr);
  for (auto [k, stride, pad] : {std::tuple{3, 1, 1}, std::tuple{1, 2, 0}}) {
    SCOPED_TRACE(absl::StrCat(k, "x", k, "s", stride));
    VTASERVE_ASSERT_OK_AND_ASSIGN(engine::ModelGraph g,
                                  ConvGraph(config_, 32, k, stride, pad));
    const Tensor x = RandomInput(g.value(g.inputs[0]), k);
    ExpectSameBytes(RunGraph(g, x, ModelFactory(model.get())),
                    RunGraph(g, x, nullptr));
  }
  ExpectModelClean(*model);
}

TEST_P(BoardDeviceTest, FirstConvStrategiesByteIdenticalToSim) {
  auto model = NewModel();
  ASSERT_NE(model, nullptr);
  VTASERVE_ASSERT_OK_AND_ASSIGN(engine::ModelGraph g,
                                ConvGraph(config_, 3, 7, 2, 3));
  const Tensor x = RandomInput(g.value(g.inputs[0]), 5);
  for (const char* s : {"vta_pad", "vta_im2col", "vta_s2d", "vta_kwfold"}) {
    SCOPED_TRACE(s);
    ExpectSameBytes(RunGraph(g, x, ModelFactory(model.get()), s),
                    RunGraph(g, x, nullptr, s));
  }
  ExpectModelClean(*model);
}

TEST_P(BoardDeviceTest, ResNet18ByteIdenticalToSim) {
  auto model = NewModel(size_t{96} << 20);
  ASSERT_NE(model, nullptr);
  zoo::ResNetSpec spec;
  spec.depth = 18;
  spec.input_size = 32;  // small input: CI cost (the network is whole)
  spec.num_classes = 100;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto m, zoo::GenerateResNet(spec));
  engine::ImportOptions import;
  import.requant.shift_group = config_.BlockOut();
  VTASERVE_ASSERT_OK_AND_ASSIGN(engine::ModelGraph g,
                                engine::ImportOnnxModel(m, import));
  const Tensor x = RandomInput(g.value(g.inputs[0]), 18);
  ExpectSameBytes(RunGraph(g, x, ModelFactory(model.get())),
                  RunGraph(g, x, nullptr));
  ExpectModelClean(*model);
}

TEST_P(BoardDeviceTest, StaleDoneFromThePreviousRunIsNotTakenForThisRun) {
  auto model = NewModel();
  ASSERT_NE(model, nullptr);
  driver::PollOptions poll;
  poll.settle = absl::ZeroDuration();  // only the fetch-idle check guards
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto dev, model->OpenDevice(poll));
  ASSERT_THAT(RunDeviceSelfTest(*dev, config_, absl::Seconds(10)), IsOk());
  model->SetFault(ModelFault::kStaleDone);
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(RunDeviceSelfTest(*dev, config_, absl::Seconds(10)), IsOk());
  }
  ExpectModelClean(*model);
}

TEST_P(BoardDeviceTest, LateFinishWithinTheTimeoutSucceeds) {
  auto model = NewModel();
  ASSERT_NE(model, nullptr);
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto dev, model->OpenDevice());
  model->SetFault(ModelFault::kLate);  // 30 ms late
  EXPECT_THAT(RunDeviceSelfTest(*dev, config_, absl::Seconds(10)), IsOk());
}

TEST_P(BoardDeviceTest, LateFinishBeyondTheTimeoutIsDeadlineExceeded) {
  auto model = NewModel();
  ASSERT_NE(model, nullptr);
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto dev, model->OpenDevice());
  model->SetFault(ModelFault::kLate);
  EXPECT_THAT(RunDeviceSelfTest(*dev, config_, absl::Milliseconds(5)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  // Let the late run finish (it still runs, then raises done 30 ms late).
  for (int i = 0; i < 1000 && model->runs() == 0; ++i)
    absl::SleepFor(absl::Milliseconds(10));
  absl::SleepFor(absl::Milliseconds(60));
  model->SetFault(ModelFault::kNone);
  EXPECT_THAT(RunDeviceSelfTest(*dev, config_, absl::Seconds(10)), IsOk());
}

TEST_P(BoardDeviceTest, NeverFinishingRunTimesOutOnTime) {
  auto model = NewModel();
  ASSERT_NE(model, nullptr);
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto dev, model->OpenDevice());
  model->SetFault(ModelFault::kNeverFinish);
  const absl::Time start = absl::Now();
  EXPECT_THAT(RunDeviceSelfTest(*dev, config_, absl::Milliseconds(50)),
              StatusIs(absl::StatusCode::kDeadlineExceeded,
                       HasSubstr("did not finish")));
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(50));
  EXPECT_LT(took, absl::Seconds(5));  // bounded by the timeout, not a hang
  model->SetFault(ModelFault::kNone);
  EXPECT_THAT(RunDeviceSelfTest(*dev, config_, absl::Seconds(10)), IsOk());
}

TEST_P(BoardDeviceTest, BusErrorIsInternal) {
  auto model = NewModel();
  ASSERT_NE(model, nullptr);
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto dev, model->OpenDevice());
  model->SetFault(ModelFault::kBusError);
  EXPECT_THAT(RunDeviceSelfTest(*dev, config_, absl::Seconds(10)),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("bus error")));
  model->SetFault(ModelFault::kNone);
  EXPECT_THAT(RunDeviceSelfTest(*dev, config_, absl::Seconds(10)), IsOk());
}

TEST_P(BoardDeviceTest, ConcurrentRunsSerializeOnTheDevice) {
  auto model = NewModel();
  ASSERT_NE(model, nullptr);
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto dev, model->OpenDevice());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        if (!RunDeviceSelfTest(*dev, config_, absl::Seconds(20)).ok())
          failures.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(model->runs(), 20);
  EXPECT_EQ(model->overlapping_starts(), 0);
}

TEST_P(BoardDeviceTest, BadBuffersAndStreamsAreRefused) {
  auto model = NewModel();
  ASSERT_NE(model, nullptr);
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto dev, model->OpenDevice());
  EXPECT_THAT(dev->AllocBuffer(0),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(dev->AllocBuffer(size_t{1} << 30),
              StatusIs(absl::StatusCode::kInvalidArgument));
  VTASERVE_ASSERT_OK_AND_ASSIGN(DeviceBuffer b, dev->AllocBuffer(100));
  EXPECT_EQ(b.phys_addr % 4096, 0u);
  EXPECT_EQ(b.phys_addr >= GetParam().device_address_offset, true);
  std::vector<uint8_t> bytes(101);
  EXPECT_THAT(dev->CopyToDevice(b, 0, bytes),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(dev->Run(b.phys_addr, 100, absl::Seconds(1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(dev->FreeBuffer(b), IsOk());
  EXPECT_THAT(dev->FreeBuffer(b), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(model->runs(), 0);
}

INSTANTIATE_TEST_SUITE_P(Designs, BoardDeviceTest,
                         ::testing::ValuesIn(kDesigns), [](const auto& info) {
                           return std::string(info.param.name);
                         });

// Without a board: the presets name the nodes, opening fails with
// Unavailable naming the node, never a crash.
TEST(BoardSpecTest, PresetsAndJsonOverrides) {
  VTASERVE_ASSERT_OK_AND_ASSIGN(driver::BoardSpec pynq,
                                driver::BoardPreset("pynq"));
  EXPECT_EQ(pynq.register_phys, 0x43C00000u);
  EXPECT_EQ(pynq.register_node, "/dev/uio0");
  VTASERVE_ASSERT_OK_AND_ASSIGN(driver::BoardSpec u96,
                                driver::BoardPreset("ultra96"));
  EXPECT_EQ(u96.register_phys, 0xA0000000u);
  VTASERVE_ASSERT_OK_AND_ASSIGN(driver::BoardSpec de10,
                                driver::BoardPreset("de10nano"));
  EXPECT_EQ(de10.device_address_offset, 0x80000000u);
  EXPECT_EQ(de10.dma_node, "/dev/cma");
  EXPECT_THAT(driver::BoardPreset("zynq9000"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(driver::ApplyBoardJson(
                  R"({"register_node": "/dev/mem", "register_offset":
                      1136656384, "cache": "sync", "settle_us": 5})",
                  pynq),
              IsOk());
  EXPECT_EQ(pynq.register_node, "/dev/mem");
  EXPECT_EQ(pynq.register_offset, 0x43C00000u);
  EXPECT_EQ(pynq.cache, driver::CacheMode::kExplicitSync);
  EXPECT_THAT(driver::ApplyBoardJson(R"({"cache": "maybe"})", pynq),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(driver::ApplyBoardJson(R"({"no_such_key": 1})", pynq),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(driver::ApplyBoardJson("{", pynq),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace vtaserve::vta
