// First-conv strategies (vta_backend/compiler/first_conv.h): every strategy
// on stems whose input channels are not a multiple of BLOCK_IN, on two VTA
// configs, bit-exact against the reference; uint8 and int8 images imported
// from ONNX; the host transform on the CPU pool equals the serial one; the
// cost model and the executor's auto placement.
#include "vta_backend/compiler/first_conv.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cpu_backend/cpu_backend.h"
#include "cpu_backend/parallel_runner.h"
#include "engine/backend_registry.h"
#include "engine/executor.h"
#include "engine/onnx/onnx_importer.h"
#include "engine/reference_backend.h"
#include "engine/zoo/resnet_generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/vta_backend/compiler/graph_builders.h"
#include "vta_backend/config.h"
#include "vta_backend/isa/isa.h"
#include "vta_backend/runtime/command_queue.h"
#include "vta_backend/vta_backend.h"

namespace vtaserve::vta {
namespace {

using compiler::FirstConvStrategy;
using ::testing::HasSubstr;
using ::vtaserve::testing::ConvCase;
using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::StatusIs;

struct StemShape {
  const char* name;
  int k, stride, pad;
};

constexpr StemShape kShapes[] = {
    {"7x7s2p3", 7, 2, 3}, {"3x3s2p1", 3, 2, 1}, {"3x3s1p1", 3, 1, 1},
    {"5x5s1p2", 5, 1, 2}, {"5x5s2p0", 5, 2, 0},
};

struct Case {
  std::string config;
  FirstConvStrategy strategy;
  StemShape shape;
  int cin;
  int32_t input_zp;  // int8 domain: 0 = uint8 zp 128, -28 = uint8 zp 100
  uint64_t seed;
  bool ext = false;  // the simulator's ext_im2col_load extension
};

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  const Case& c = info.param;
  std::string s = absl::StrCat(
      c.config, "_", compiler::FirstConvStrategyName(c.strategy), "_",
      c.shape.name, "_c", c.cin, "_zp", c.input_zp < 0 ? "m" : "",
      std::abs(c.input_zp), c.ext ? "_ext" : "");
  for (char& ch : s) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return s;
}

ConvCase ToConvCase(const Case& c) {
  ConvCase cc;
  cc.cin = c.cin;
  cc.cout = c.cin == 1 ? 20 : 24;                // a partial last output block
  cc.h = 19 + static_cast<int>(c.seed % 3) * 2;  // odd sizes
  cc.w = 23 - static_cast<int>(c.seed % 2) * 6;
  cc.kh = cc.kw = c.shape.k;
  cc.stride = c.shape.stride;
  cc.pad_top = cc.pad_left = cc.pad_bottom = cc.pad_right = c.shape.pad;
  cc.input_zp = c.input_zp;
  cc.output_zp = c.seed % 2 == 0 ? -128 : 9;
  cc.relu = c.seed % 2 == 0;
  cc.shift_group = 32;  // BLOCK_OUT of both configs divides it
  cc.seed = c.seed;
  return cc;
}

std::vector<Tensor> RunCompiled(engine::Backend& backend,
                                const engine::ModelGraph& g,
                                const engine::BackendOptions& options,
                                const std::vector<const Tensor*>& inputs,
                                std::vector<engine::LayerTiming>* profile) {
  std::vector<Tensor> outs;
  auto compiled = backend.Compile(g, options);
  EXPECT_THAT(compiled, IsOk());
  if (!compiled.ok()) return outs;
  std::vector<Tensor*> ptrs;
  for (engine::ValueId v : g.outputs) {
    outs.push_back(Tensor::Create(g.value(v).dtype, g.value(v).shape).value());
  }
  for (Tensor& t : outs) ptrs.push_back(&t);
  engine::ExecutionContext ctx;
  ctx.profile = profile;
  EXPECT_THAT((*compiled)->Execute(ctx, inputs, ptrs), IsOk());
  return outs;
}

int64_t Mismatches(const Tensor& a, const Tensor& b) {
  if (a.byte_size() != b.byte_size()) return -1;
  int64_t n = 0;
  for (size_t i = 0; i < a.byte_size(); ++i) n += a.bytes()[i] != b.bytes()[i];
  return n;
}

class FirstConvStrategyTest : public ::testing::TestWithParam<Case> {};

TEST_P(FirstConvStrategyTest, BitExactWithReference) {
  const Case& c = GetParam();
  const engine::ModelGraph g = testing::SingleConvGraph(ToConvCase(c));
  ASSERT_THAT(g.Validate(), IsOk());
  const Tensor x = testing::RandomInt8(g.value(0).shape, c.seed * 31 + 5);
  std::vector<const Tensor*> in = {&x};
  auto ref = engine::CreateReferenceBackend();
  const std::vector<Tensor> expected = RunCompiled(*ref, g, {}, in, nullptr);

  VtaOptions options;
  options.config = c.config;
  options.host_runner = cpu::CreateCpuParallelRunner(2);
  options.ext_im2col_load = c.ext;
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto vta, CreateVtaBackend(options));
  ASSERT_THAT(vta->Supports(g, g.nodes[0]), IsOk());
  const std::string strategy(compiler::FirstConvStrategyName(c.strategy));
  engine::BackendOptions bo = {{"strategy:conv", strategy}};
  std::vector<engine::LayerTiming> profile;
  const std::vector<Tensor> got = RunCompiled(*vta, g, bo, in, &profile);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(Mismatches(got[0], expected[0]), 0);
  ASSERT_EQ(profile.size(), 1u);
  EXPECT_GT(profile[0].host_transform_seconds, 0.0);
  EXPECT_GT(profile[0].modeled_device_seconds, 0.0);
  EXPECT_GT(profile[0].counters["gemm_ops"], 0.0);
}

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  const int32_t zps[] = {0, -28, 17, -5};
  uint64_t seed = 1;
  for (const char* config : {"pynq", "1x32x32"}) {
    for (FirstConvStrategy s : compiler::kAllFirstConvStrategies) {
      for (const StemShape& shape : kShapes) {
        for (int cin : {1, 3, 4, 8}) {
          cases.push_back(Case{config, s, shape, cin, zps[seed % 4], seed});
          ++seed;
        }
      }
    }
    for (const StemShape& shape : kShapes) {  // device-side im2col gather
      for (int cin : {1, 3, 4, 8}) {
        cases.push_back(Case{config, FirstConvStrategy::kIm2col, shape, cin,
                             zps[seed % 4], seed, /*ext=*/true});
        ++seed;
      }
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Stems, FirstConvStrategyTest,
                         ::testing::ValuesIn(AllCases()), CaseName);

// A runner that records how many ranges it was asked to run.
class CountingRunner : public engine::ParallelRunner {
 public:
  explicit CountingRunner(std::shared_ptr<engine::ParallelRunner> inner)
      : inner_(std::move(inner)) {}
  int NumThreads() const override { return inner_->NumThreads(); }
  void ParallelFor(int64_t n,
                   absl::FunctionRef<void(int64_t, int64_t)> fn) override {
    ++calls_;
    inner_->ParallelFor(n, fn);
  }
  int calls() const { return calls_; }

 private:
  std::shared_ptr<engine::ParallelRunner> inner_;
  int calls_ = 0;
};

TEST(FirstConvTransformTest, CpuPoolMatchesSerial) {
  VTASERVE_ASSERT_OK_AND_ASSIGN(VtaConfig config, VtaConfigPreset("pynq"));
  ConvCase cc;
  cc.cin = 3;
  cc.cout = 16;
  cc.h = cc.w = 57;
  cc.kh = cc.kw = 7;
  cc.stride = 2;
  cc.pad_top = cc.pad_left = cc.pad_bottom = cc.pad_right = 3;
  const engine::ModelGraph g = testing::SingleConvGraph(cc);
  const auto& p = std::get<engine::ConvParams>(g.nodes[0].params);
  const Tensor x = testing::RandomInt8(g.value(0).shape, 3);
  auto pool = std::make_shared<CountingRunner>(cpu::CreateCpuParallelRunner(4));
  for (FirstConvStrategy s : compiler::kAllFirstConvStrategies) {
    VTASERVE_ASSERT_OK_AND_ASSIGN(
        compiler::FirstConvPlan plan,
        compiler::PlanFirstConv(config, p, 57, 57, 29, 29, s));
    const size_t bytes = static_cast<size_t>(plan.ImageBytes());
    std::vector<int8_t> serial(bytes, 99), parallel(bytes, -99);
    compiler::TransformFirstConvInput(plan, x.data<int8_t>(), serial.data(),
                                      nullptr);
    const int before = pool->calls();
    compiler::TransformFirstConvInput(plan, x.data<int8_t>(), parallel.data(),
                                      pool.get());
    EXPECT_EQ(pool->calls(), before + 1);
    EXPECT_EQ(serial, parallel) << compiler::FirstConvStrategyName(s);
  }
}

TEST(FirstConvPlanTest, Im2colOfResNetStemPacksTenBlocks) {
  VTASERVE_ASSERT_OK_AND_ASSIGN(VtaConfig config, VtaConfigPreset("pynq"));
  ConvCase cc;
  cc.cin = 3;
  cc.cout = 64;
  cc.h = cc.w = 224;
  cc.kh = cc.kw = 7;
  cc.stride = 2;
  cc.pad_top = cc.pad_left = cc.pad_bottom = cc.pad_right = 3;
  const engine::ModelGraph g = testing::SingleConvGraph(cc);
  const std::vector<compiler::FirstConvEstimate> est =
      compiler::EstimateFirstConv(config, g, 0,
                                  {compiler::kAllFirstConvStrategies[0],
                                   compiler::kAllFirstConvStrategies[1],
                                   compiler::kAllFirstConvStrategies[2],
                                   compiler::kAllFirstConvStrategies[3]},
                                  nullptr, 0);
  ASSERT_EQ(est.size(), 4u);
  for (const auto& e : est) ASSERT_THAT(e.status, IsOk());
  // DESIGN-NOTES section 2: GEMM uop iterations of each mapping.
  EXPECT_EQ(est[0].gemm_uops, 2458624u);  // pad 3 -> 16, 49 taps
  EXPECT_EQ(est[1].gemm_uops, 501760u);   // im2col 147 -> 160
  EXPECT_EQ(est[2].gemm_uops, 802816u);   // s2d 12 -> 16, 4x4 taps
  EXPECT_EQ(est[3].gemm_uops, 702464u);   // kw-fold 21 -> 32, 7 rows
  EXPECT_EQ(est[1].image_bytes, 112 * 112 * 160);
  for (const auto& e : est) EXPECT_GE(e.cycles, e.gemm_uops);
}

TEST(FirstConvPlanTest, BiasRidesInSpareLanesWhenItFits) {
  VTASERVE_ASSERT_OK_AND_ASSIGN(VtaConfig config, VtaConfigPreset("pynq"));
  ConvCase cc;
  cc.cin = 3;
  cc.cout = 16;
  const engine::ModelGraph g = testing::SingleConvGraph(cc);
  engine::ConvParams p = std::get<engine::ConvParams>(g.nodes[0].params);
  for (int32_t& b : p.bias) b = 1000;
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      compiler::FirstConvPlan plan,
      compiler::PlanFirstConv(config, p, 8, 8, 8, 8,
                              FirstConvStrategy::kIm2col));
  EXPECT_TRUE(plan.bias_in_gemm);
  EXPECT_EQ(plan.reduction, 27);
  // 27 -> 32 lanes: 5 spare; huge biases do not fit them.
  for (int32_t& b : p.bias) b = 2000000000;
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      plan, compiler::PlanFirstConv(config, p, 8, 8, 8, 8,
                                    FirstConvStrategy::kIm2col));
  EXPECT_FALSE(plan.bias_in_gemm);
}

TEST(FirstConvBackendTest, LargeBiasStillBitExactThroughAluAdd) {
  ConvCase cc;
  cc.cin = 3;
  cc.cout = 16;
  cc.h = cc.w = 11;
  engine::ModelGraph g = testing::SingleConvGraph(cc);
  auto& p = std::get<engine::ConvParams>(g.nodes[0].params);
  for (size_t i = 0; i < p.bias.size(); ++i) p.bias[i] = 30000000 + int32_t(i);
  const Tensor x = testing::RandomInt8(g.value(0).shape, 9);
  auto ref = engine::CreateReferenceBackend();
  const auto expected = RunCompiled(*ref, g, {}, {&x}, nullptr);
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto vta, CreateVtaBackend(VtaOptions{}));
  for (FirstConvStrategy s : compiler::kAllFirstConvStrategies) {
    const auto got = RunCompiled(
        *vta, g,
        {{"strategy:conv", std::string(compiler::FirstConvStrategyName(s))}},
        {&x}, nullptr);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(Mismatches(got[0], expected[0]), 0)
        << compiler::FirstConvStrategyName(s);
  }
}

TEST(FirstConvPlanTest, DeviceGatherOnlyWithTheExtension) {
  VTASERVE_ASSERT_OK_AND_ASSIGN(VtaConfig config, VtaConfigPreset("pynq"));
  EXPECT_FALSE(config.ext_im2col_load);
  ConvCase cc;
  cc.cin = 3;
  cc.cout = 64;
  cc.h = cc.w = 224;
  cc.kh = cc.kw = 7;
  cc.stride = 2;
  cc.pad_top = cc.pad_left = cc.pad_bottom = cc.pad_right = 3;
  const engine::ModelGraph g = testing::SingleConvGraph(cc);
  const auto& p = std::get<engine::ConvParams>(g.nodes[0].params);
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      compiler::FirstConvPlan host,
      compiler::PlanFirstConv(config, p, 224, 224, 112, 112,
                              FirstConvStrategy::kIm2col));
  EXPECT_FALSE(host.device_gather);
  EXPECT_EQ(host.ImageBytes(), 112 * 112 * 160);
  config.ext_im2col_load = true;
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      compiler::FirstConvPlan dev,
      compiler::PlanFirstConv(config, p, 224, 224, 112, 112,
                              FirstConvStrategy::kIm2col));
  EXPECT_TRUE(dev.device_gather);
  EXPECT_EQ(dev.ImageBytes(), 229 * 229 * 3);  // bordered HWC bytes
  EXPECT_EQ(dev.layout.blocks, 10);
}

TEST(FirstConvIsaTest, ExtensionIsOffInEveryPreset) {
  for (const char* name : {"pynq", "1x32x32", "ultra96", "zcu104", "de10nano",
                           "fsim", "sim", "tsim", "intelfocl"}) {
    VTASERVE_ASSERT_OK_AND_ASSIGN(VtaConfig config, VtaConfigPreset(name));
    EXPECT_FALSE(config.ext_im2col_load) << name;
  }
}

TEST(FirstConvIsaTest, Im2colLoadNeedsTheExtension) {
  VTASERVE_ASSERT_OK_AND_ASSIGN(VtaConfig config, VtaConfigPreset("pynq"));
  VTASERVE_ASSERT_OK_AND_ASSIGN(CommandQueue plain,
                                CommandQueue::Create(config));
  EXPECT_THAT(plain.LoadIm2col(0, 4096, 2, 4, 64, 3, 3, 3, 1),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // A LOAD with memory type 6 does not decode without the extension.
  isa::MemInsn m;
  m.opcode = isa::Opcode::kLoad;
  m.memory_type = isa::MemoryType::kInpIm2col;
  m.x_size = m.y_size = 1;
  config.ext_im2col_load = true;
  VTASERVE_ASSERT_OK_AND_ASSIGN(isa::IsaCodec ext_codec,
                                isa::IsaCodec::Create(config));
  VTASERVE_ASSERT_OK_AND_ASSIGN(isa::EncodedInsn bits, ext_codec.Encode(m));
  EXPECT_THAT(ext_codec.Decode(bits), IsOk());
  config.ext_im2col_load = false;
  VTASERVE_ASSERT_OK_AND_ASSIGN(isa::IsaCodec codec,
                                isa::IsaCodec::Create(config));
  EXPECT_THAT(codec.Decode(bits), StatusIs(absl::StatusCode::kInvalidArgument));
  config.ext_im2col_load = true;
  VTASERVE_ASSERT_OK_AND_ASSIGN(CommandQueue q, CommandQueue::Create(config));
  EXPECT_THAT(q.LoadIm2col(0, 4096, 2, 4, 64, 3, 3, 3, 1), IsOk());
  EXPECT_THAT(q.LoadIm2col(0, 4096, 2, 4, 64, 17, 3, 3, 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(q.LoadIm2col(0, 4096, 2, 40, 64, 3, 3, 3, 1),  // row too wide
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(FirstConvBackendTest, FullSizeStemBitExactWithAndWithoutDeviceGather) {
  // 224x224 7x7/s2: a window row of 10 blocks x 112 columns exceeds half the
  // pynq INP buffer, so tiles split the width (gather offsets by columns).
  ConvCase cc;
  cc.cin = 3;
  cc.cout = 16;
  cc.h = cc.w = 224;
  cc.kh = cc.kw = 7;
  cc.stride = 2;
  cc.pad_top = cc.pad_left = cc.pad_bottom = cc.pad_right = 3;
  cc.input_zp = 0;
  cc.output_zp = -128;
  cc.relu = true;
  const engine::ModelGraph g = testing::SingleConvGraph(cc);
  const Tensor x = testing::RandomInt8(g.value(0).shape, 11);
  auto ref = engine::CreateReferenceBackend();
  const auto expected = RunCompiled(*ref, g, {}, {&x}, nullptr);
  for (bool ext : {false, true}) {
    VtaOptions options;
    options.ext_im2col_load = ext;
    options.host_runner = cpu::CreateCpuParallelRunner(0);
    VTASERVE_ASSERT_OK_AND_ASSIGN(auto vta, CreateVtaBackend(options));
    const auto got =
        RunCompiled(*vta, g, {{"strategy:conv", "vta_im2col"}}, {&x}, nullptr);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(Mismatches(got[0], expected[0]), 0) << "ext " << ext;
  }
}

TEST(FirstConvBackendTest, UnknownStrategyIsRejected) {
  ConvCase cc;
  cc.cin = 3;
  const engine::ModelGraph g = testing::SingleConvGraph(cc);
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto vta, CreateVtaBackend(VtaOptions{}));
  EXPECT_THAT(
      vta->Compile(g, {{"strategy:conv", "vta_bogus"}}).status(),
      StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("vta_bogus")));
  EXPECT_THAT(
      vta->EstimateCost(g, 0, {{"strategy:conv", "vta_bogus"}}).status(),
      StatusIs(absl::StatusCode::kUnimplemented));
}

TEST(FirstConvBackendTest, EstimateCostTakesTheCheapestStrategy) {
  ConvCase cc;
  cc.cin = 3;
  cc.cout = 32;
  cc.h = cc.w = 33;
  cc.kh = cc.kw = 3;
  cc.stride = 2;
  const engine::ModelGraph g = testing::SingleConvGraph(cc);
  VtaOptions options;
  options.host_runner = cpu::CreateCpuParallelRunner(0);
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto vta, CreateVtaBackend(options));
  VTASERVE_ASSERT_OK_AND_ASSIGN(engine::NodeCost cost,
                                vta->EstimateCost(g, 0, {}));
  // The detail lists every strategy's total; the chosen one is their minimum.
  double min_ms = 1e300;
  std::string min_name;
  int listed = 0;
  for (FirstConvStrategy s : compiler::kAllFirstConvStrategies) {
    const std::string name(compiler::FirstConvStrategyName(s));
    const size_t at = cost.detail.find(name + ": ");
    ASSERT_NE(at, std::string::npos) << cost.detail;
    double ms = 0;
    const std::string rest = cost.detail.substr(at + name.size() + 2);
    ASSERT_TRUE(absl::SimpleAtod(rest.substr(0, rest.find(' ')), &ms)) << rest;
    ++listed;
    if (ms < min_ms) {
      min_ms = ms;
      min_name = name;
    }
  }
  EXPECT_EQ(listed, 4);
  EXPECT_EQ(cost.strategy, min_name);
  EXPECT_NEAR(cost.seconds * 1e3, min_ms, 1e-3 + 1e-3 * min_ms);
  EXPECT_THAT(cost.detail, HasSubstr("measured"));
  // Naming a strategy restricts the estimate to it.
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      engine::NodeCost forced,
      vta->EstimateCost(g, 0, {{"strategy:conv", "vta_kwfold"}}));
  EXPECT_EQ(forced.strategy, "vta_kwfold");
  EXPECT_THAT(forced.detail, ::testing::Not(HasSubstr("vta_pad")));
}

// Splits the executor's "name=Xs (detail); name=Ys (detail)" into seconds.
std::vector<std::pair<std::string, double>> ParseCosts(
    const std::string& costs) {
  std::vector<std::pair<std::string, double>> out;
  int depth = 0;
  std::string cur;
  auto flush = [&] {
    const size_t eq = cur.find('=');
    const size_t s = cur.find("s (");
    if (eq != std::string::npos && s != std::string::npos) {
      double v = 0;
      if (absl::SimpleAtod(cur.substr(eq + 1, s - eq - 1), &v)) {
        out.emplace_back(cur.substr(0, eq), v);
      }
    }
    cur.clear();
  };
  for (size_t i = 0; i < costs.size(); ++i) {
    const char ch = costs[i];
    if (ch == '(') ++depth;
    if (ch == ')') --depth;
    if (depth == 0 && ch == ';') {
      flush();
      if (i + 1 < costs.size() && costs[i + 1] == ' ') ++i;
      continue;
    }
    cur.push_back(ch);
  }
  flush();
  return out;
}

// Onnx stem (uint8 with zero point, or int8) through the executor.
struct OnnxStem {
  bool uint8_input;
  int zero_point;
  int k, stride, pad;
};

class FirstConvOnnxTest : public ::testing::TestWithParam<OnnxStem> {};

TEST_P(FirstConvOnnxTest, EveryPolicyMatchesReferenceAndAutoTakesTheMinimum) {
  const OnnxStem& s = GetParam();
  zoo::ConvSpec spec;
  spec.in_channels = 3;
  spec.out_channels = 32;
  spec.input_h = 29;
  spec.input_w = 31;
  spec.kernel = s.k;
  spec.stride = s.stride;
  spec.pad = s.pad;
  spec.uint8_input = s.uint8_input;
  spec.input_zero_point = s.zero_point;
  spec.relu = true;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto model,
                                zoo::GenerateConv(spec));
  engine::ImportOptions import;
  import.requant.shift_group = 16;
  VTASERVE_ASSERT_OK_AND_ASSIGN(engine::ModelGraph graph,
                                engine::ImportOnnxModel(model, import));
  const engine::Value& in = graph.value(graph.inputs[0]);
  ASSERT_EQ(in.dtype, s.uint8_input ? DataType::kUInt8 : DataType::kInt8);
  Tensor x = testing::RandomInt8(in.shape, 77);
  if (s.uint8_input) {
    VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor u,
                                  Tensor::Create(DataType::kUInt8, in.shape));
    std::memcpy(u.bytes(), x.bytes(), x.byte_size());
    x = std::move(u);
  }
  const Tensor* inputs[] = {&x};

  engine::BackendRegistry ref_only;
  ASSERT_THAT(ref_only.Register(engine::CreateReferenceBackend()), IsOk());
  engine::PlacementOptions ref_placement;
  ref_placement.preference = {"reference"};
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      auto ref_ex, engine::Executor::Create(graph, ref_only, ref_placement));
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      std::vector<Tensor> expected,
      ref_ex->Run(engine::ExecutionContext{}, inputs));

  engine::BackendRegistry registry;
  VtaOptions vo;
  vo.host_runner = cpu::CreateCpuParallelRunner(0);
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto vta, CreateVtaBackend(vo));
  ASSERT_THAT(registry.Register(std::move(vta)), IsOk());
  cpu::CpuOptions co;
  co.cost_runs = 1;
  ASSERT_THAT(registry.Register(cpu::CreateCpuBackend(co)), IsOk());
  ASSERT_THAT(registry.Register(engine::CreateReferenceBackend()), IsOk());
  for (const char* policy :
       {"auto", "vta_pad", "vta_im2col", "vta_s2d", "vta_kwfold", "cpu"}) {
    SCOPED_TRACE(policy);
    engine::PlacementOptions placement;
    placement.backend_options[engine::kFirstConvOption] = policy;
    VTASERVE_ASSERT_OK_AND_ASSIGN(
        auto ex, engine::Executor::Create(graph, registry, placement));
    const engine::NodePlacement* conv = nullptr;
    for (const auto& pl : ex->placements()) {
      if (pl.op == engine::OpKind::kConv) conv = &pl;
    }
    ASSERT_NE(conv, nullptr);
    if (std::string(policy) == "auto") {
      const auto costs = ParseCosts(conv->costs);
      ASSERT_GE(costs.size(), 2u) << conv->costs;  // vta and cpu
      double min_s = 1e300;
      std::string min_name;
      for (const auto& [name, sec] : costs) {
        if (sec < min_s) {
          min_s = sec;
          min_name = name;
        }
      }
      EXPECT_EQ(conv->strategy, min_name) << conv->costs;
      EXPECT_DOUBLE_EQ(conv->cost_seconds, min_s);
    } else {
      EXPECT_EQ(conv->strategy, policy);
      EXPECT_EQ(conv->backend, std::string(policy) == "cpu" ? "cpu" : "vta");
    }
    VTASERVE_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> got,
                                  ex->Run(engine::ExecutionContext{}, inputs));
    ASSERT_EQ(got.size(), expected.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(Mismatches(got[i], expected[i]), 0) << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Images, FirstConvOnnxTest,
                         ::testing::Values(OnnxStem{true, 128, 7, 2, 3},
                                           OnnxStem{true, 100, 3, 2, 1},
                                           OnnxStem{false, 0, 3, 1, 1},
                                           OnnxStem{false, -7, 5, 2, 2}));

}  // namespace
}  // namespace vtaserve::vta
