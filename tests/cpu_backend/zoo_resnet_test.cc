// Whole ResNets from the model zoo (generated ONNX, imported by the engine's
// importer) on the CPU backend, bit-exact against the reference backend.
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cpu_backend/cpu_backend.h"
#include "engine/common/status_macros.h"
#include "engine/onnx/onnx_importer.h"
#include "engine/reference_backend.h"
#include "engine/zoo/resnet_generator.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace vtaserve::cpu {
namespace {

using ::vtaserve::testing::IsOk;

absl::StatusOr<std::vector<Tensor>> RunOn(engine::Backend& backend,
                                          const engine::ModelGraph& g,
                                          const Tensor& input) {
  VTASERVE_ASSIGN_OR_RETURN(auto model, backend.Compile(g, {}));
  std::vector<Tensor> outs;
  std::vector<Tensor*> out_ptrs;
  for (engine::ValueId v : g.outputs) {
    VTASERVE_ASSIGN_OR_RETURN(
        Tensor t, Tensor::Create(g.values[v].dtype, g.values[v].shape));
    outs.push_back(std::move(t));
  }
  for (Tensor& t : outs) out_ptrs.push_back(&t);
  const Tensor* ins[] = {&input};
  VTASERVE_RETURN_IF_ERROR(
      model->Execute(engine::ExecutionContext{}, ins, out_ptrs));
  return outs;
}

struct ZooCase {
  int depth;
  bool uint8_activations;
  bool softmax;
};

class ZooResNetTest : public ::testing::TestWithParam<ZooCase> {};

TEST_P(ZooResNetTest, MatchesReferenceBitExact) {
  zoo::ResNetSpec spec;
  spec.depth = GetParam().depth;
  spec.input_size = 32;
  spec.num_classes = 10;
  spec.uint8_activations = GetParam().uint8_activations;
  spec.softmax = GetParam().softmax;
  spec.calibration_images = 1;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto proto,
                                zoo::GenerateResNet(spec));
  VTASERVE_ASSERT_OK_AND_ASSIGN(engine::ModelGraph g,
                                engine::ImportOnnxModel(proto, {}));
  ASSERT_EQ(g.inputs.size(), 1u);
  const engine::Value& in = g.values[g.inputs[0]];
  VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor input,
                                Tensor::Create(in.dtype, in.shape));
  std::mt19937 rng(17);
  if (in.dtype == DataType::kFloat32) {
    std::uniform_real_distribution<float> d(-2.5f, 2.5f);
    for (int64_t i = 0; i < input.num_elements(); ++i)
      input.data<float>()[i] = d(rng);
  } else {
    for (size_t i = 0; i < input.byte_size(); ++i)
      input.bytes()[i] = rng() & 0xff;
  }
  auto reference = engine::CreateReferenceBackend();
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto want, RunOn(*reference, g, input));
  for (CpuIsa isa : {CpuIsa::kScalar, CpuIsa::kAvx2, CpuIsa::kAvxVnni,
                     CpuIsa::kAvx512Vnni}) {
    if (!CpuSupports(isa)) continue;  // the kernel sweeps report the skip
    CpuOptions options;
    options.isa = isa;
    options.threads = 2;
    auto cpu = CreateCpuBackend(options);
    VTASERVE_ASSERT_OK_AND_ASSIGN(auto got, RunOn(*cpu, g, input));
    ASSERT_EQ(got.size(), want.size());
    for (size_t o = 0; o < want.size(); ++o) {
      ASSERT_EQ(got[o].byte_size(), want[o].byte_size());
      for (size_t i = 0; i < want[o].byte_size(); ++i) {
        ASSERT_EQ(got[o].bytes()[i], want[o].bytes()[i])
            << CpuIsaName(isa) << " output " << o << " byte " << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Zoo, ZooResNetTest,
                         ::testing::Values(ZooCase{18, true, false},
                                           ZooCase{18, false, true},
                                           ZooCase{50, true, true}),
                         [](const ::testing::TestParamInfo<ZooCase>& info) {
                           return absl::StrCat(
                               "ResNet", info.param.depth,
                               info.param.uint8_activations ? "U8" : "S8",
                               info.param.softmax ? "Softmax" : "Logits");
                         });

}  // namespace
}  // namespace vtaserve::cpu
