// Whole generated ResNets (small inputs) through the engine's Executor with
// every conv but the stem on the simulated VTA: the logits must equal the
// reference executor's bit for bit.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cpu_backend/parallel_runner.h"
#include "engine/backend_registry.h"
#include "engine/executor.h"
#include "engine/onnx/onnx_importer.h"
#include "engine/reference_backend.h"
#include "engine/zoo/float_resnet.h"
#include "engine/zoo/resnet_generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "vta_backend/config.h"
#include "vta_backend/vta_backend.h"

namespace vtaserve::vta {
namespace {

using ::vtaserve::testing::IsOk;

struct ResNetCase {
  int depth;
  int size;
  const char* config;
  // > 1: the simulator splits its large GEMMs over a CPU-pool runner.
  int sim_threads = 1;
};

class VtaResNetTest : public ::testing::TestWithParam<ResNetCase> {};

TEST_P(VtaResNetTest, EveryConvButTheStemOnVtaIsBitExact) {
  const ResNetCase rc = GetParam();
  zoo::ResNetSpec spec;
  spec.depth = rc.depth;
  spec.input_size = rc.size;
  spec.num_classes = 100;
  auto model = zoo::GenerateResNet(spec);
  ASSERT_THAT(model, IsOk());
  VtaOptions vta_options;
  vta_options.config = rc.config;
  if (rc.sim_threads > 1)
    vta_options.host_runner = cpu::CreateCpuParallelRunner(rc.sim_threads);
  auto vta = CreateVtaBackend(vta_options);
  ASSERT_THAT(vta, IsOk());
  engine::ImportOptions import;
  auto config = VtaConfigPreset(rc.config);
  ASSERT_THAT(config, IsOk());
  import.requant.shift_group = config->BlockOut();
  auto graph = engine::ImportOnnxModel(*model, import);
  ASSERT_THAT(graph, IsOk());

  engine::BackendRegistry with_vta, ref_only;
  ASSERT_THAT(with_vta.Register(*std::move(vta)), IsOk());
  ASSERT_THAT(with_vta.Register(engine::CreateReferenceBackend()), IsOk());
  ASSERT_THAT(ref_only.Register(engine::CreateReferenceBackend()), IsOk());
  engine::PlacementOptions placement;
  placement.preference = {"vta", "reference"};
  auto on_vta = engine::Executor::Create(*graph, with_vta, placement);
  ASSERT_THAT(on_vta, IsOk());
  engine::PlacementOptions ref_placement;
  ref_placement.preference = {"reference"};
  auto on_ref = engine::Executor::Create(*graph, ref_only, ref_placement);
  ASSERT_THAT(on_ref, IsOk());

  // Every conv except the first (the 3-channel stem, whose placement is
  // the first-conv strategies' business) runs on VTA.
  int convs = 0, vta_convs = 0;
  for (const auto& p : (*on_vta)->placements()) {
    if (p.op != engine::OpKind::kConv) continue;
    if (++convs == 1) continue;
    EXPECT_EQ(p.backend, "vta") << p.node << ": " << p.reason;
    vta_convs += p.backend == "vta";
  }
  EXPECT_EQ(vta_convs, rc.depth == 18 ? 19 : 52);

  std::vector<float> image = zoo::CalibrationImage(3, 1, rc.size);
  auto input = Tensor::Create(DataType::kFloat32, {1, 3, rc.size, rc.size});
  ASSERT_THAT(input, IsOk());
  std::memcpy(input->data<float>(), image.data(), image.size() * sizeof(float));
  const Tensor* ins[] = {&*input};
  std::vector<engine::LayerTiming> profile;
  engine::ExecutionContext ctx;
  ctx.profile = &profile;
  auto got = (*on_vta)->Run(ctx, ins);
  ASSERT_THAT(got, IsOk());
  auto want = (*on_ref)->Run({}, ins);
  ASSERT_THAT(want, IsOk());
  ASSERT_EQ(got->size(), want->size());
  for (size_t i = 0; i < got->size(); ++i) {
    ASSERT_EQ((*got)[i].byte_size(), (*want)[i].byte_size());
    EXPECT_EQ(std::memcmp((*got)[i].bytes(), (*want)[i].bytes(),
                          (*got)[i].byte_size()),
              0)
        << "output " << i << " differs";
  }
  int vta_layers = 0;
  for (const auto& t : profile) vta_layers += t.device == "vta";
  EXPECT_GE(vta_layers, vta_convs);
}

INSTANTIATE_TEST_SUITE_P(
    Models, VtaResNetTest,
    ::testing::Values(ResNetCase{18, 64, "pynq"}, ResNetCase{50, 32, "pynq"},
                      ResNetCase{18, 32, "1x32x32"},
                      ResNetCase{18, 64, "pynq", 2}),
    [](const auto& info) {
      return std::string("resnet") + std::to_string(info.param.depth) + "_" +
             std::to_string(info.param.size) + "_" +
             (std::string(info.param.config) == "pynq" ? "pynq" : "1x32x32") +
             (info.param.sim_threads > 1
                  ? "_threads" + std::to_string(info.param.sim_threads)
                  : "");
    });

}  // namespace
}  // namespace vtaserve::vta
