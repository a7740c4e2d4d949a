// The VTA compiler and backend adapter: single layers and small graphs run
// on the simulated VTA must equal the reference executor bit for bit; what
// cannot be lowered is Unimplemented; bad configs are rejected.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/backend.h"
#include "engine/reference_backend.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/vta_backend/compiler/graph_builders.h"
#include "vta_backend/compiler/layer_lowering.h"
#include "vta_backend/config.h"
#include "vta_backend/vta_backend.h"

namespace vtaserve::vta {
namespace {

using ::testing::HasSubstr;
using ::vtaserve::testing::AddCase;
using ::vtaserve::testing::ConvCase;
using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::StatusIs;

// Runs `graph` on `backend`, returning the outputs.
std::vector<Tensor> RunOn(engine::Backend& backend,
                          const engine::ModelGraph& graph,
                          const std::vector<const Tensor*>& inputs,
                          std::vector<engine::LayerTiming>* profile = nullptr) {
  auto compiled = backend.Compile(graph, {});
  EXPECT_THAT(compiled, IsOk());
  std::vector<Tensor> outs;
  if (!compiled.ok()) return outs;
  std::vector<Tensor*> out_ptrs;
  for (engine::ValueId v : graph.outputs) {
    outs.push_back(
        Tensor::Create(graph.value(v).dtype, graph.value(v).shape).value());
  }
  for (Tensor& t : outs) out_ptrs.push_back(&t);
  engine::ExecutionContext ctx;
  ctx.profile = profile;
  EXPECT_THAT((*compiled)->Execute(ctx, inputs, out_ptrs), IsOk());
  return outs;
}

void ExpectSameBytes(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.byte_size(), b.byte_size());
  int64_t mismatches = 0, first = -1;
  for (size_t i = 0; i < a.byte_size(); ++i) {
    if (a.bytes()[i] != b.bytes()[i]) {
      if (first < 0) first = static_cast<int64_t>(i);
      ++mismatches;
    }
  }
  EXPECT_EQ(mismatches, 0) << "first mismatch at byte " << first << ": "
                           << int(int8_t(a.bytes()[first])) << " vs "
                           << int(int8_t(b.bytes()[first]));
}

// Compares VTA (config `preset`) with the reference on `graph`.
void CheckBitExact(const engine::ModelGraph& graph, const std::string& preset,
                   uint64_t seed) {
  ASSERT_THAT(graph.Validate(), IsOk());
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < graph.inputs.size(); ++i) {
    inputs.push_back(
        testing::RandomInt8(graph.value(graph.inputs[i]).shape, seed + i));
  }
  std::vector<const Tensor*> in_ptrs;
  for (const Tensor& t : inputs) in_ptrs.push_back(&t);
  auto ref = engine::CreateReferenceBackend();
  VtaOptions options;
  options.config = preset;
  auto vta = CreateVtaBackend(options);
  ASSERT_THAT(vta, IsOk());
  for (const engine::Node& n : graph.nodes) {
    ASSERT_THAT((*vta)->Supports(graph, n), IsOk()) << n.name;
  }
  std::vector<engine::LayerTiming> profile;
  std::vector<Tensor> want = RunOn(*ref, graph, in_ptrs);
  std::vector<Tensor> got = RunOn(**vta, graph, in_ptrs, &profile);
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_NO_FATAL_FAILURE(ExpectSameBytes(want[i], got[i]));
  ASSERT_EQ(profile.size(), graph.nodes.size());
  for (const auto& lt : profile) {
    EXPECT_EQ(lt.device, "vta");
    EXPECT_GT(lt.modeled_device_seconds, 0.0);
    EXPECT_GT(lt.counters.at("modeled_cycles"), 0.0);
  }
}

class ConvShapeTest : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvShapeTest, MatchesReferenceOnPynq) {
  ASSERT_NO_FATAL_FAILURE(CheckBitExact(testing::SingleConvGraph(GetParam()),
                                        "pynq", GetParam().seed));
}

ConvCase Case(int cin, int cout, int h, int w, int k, int s, int pad, int izp,
              int ozp, bool relu, uint64_t seed) {
  ConvCase c;
  c.cin = cin;
  c.cout = cout;
  c.h = h;
  c.w = w;
  c.kh = c.kw = k;
  c.stride = s;
  c.pad_top = c.pad_left = c.pad_bottom = c.pad_right = pad;
  c.input_zp = izp;
  c.output_zp = ozp;
  c.relu = relu;
  c.seed = seed;
  return c;
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ConvShapeTest,
    ::testing::Values(Case(16, 16, 8, 8, 3, 1, 1, 0, 0, false, 1),
                      Case(32, 48, 9, 7, 3, 1, 1, -128, 5, true, 2),
                      Case(64, 32, 11, 13, 3, 2, 1, 17, -3, false, 3),
                      Case(32, 64, 14, 14, 1, 2, 0, -5, -128, true, 4),
                      Case(16, 32, 15, 15, 7, 2, 3, 100, 0, false, 5),
                      Case(128, 128, 5, 5, 3, 1, 1, -60, 7, true, 6),
                      Case(48, 16, 1, 1, 1, 1, 0, 0, 0, false, 7),
                      Case(16, 16, 6, 6, 3, 1, 2, -1, 0, false, 8)),
    [](const auto& info) { return info.param.Name(); });

TEST(VtaCompilerTest, AsymmetricPaddingAndNegativeAndLargeShifts) {
  ConvCase c = Case(32, 64, 10, 9, 3, 1, 0, 9, -7, false, 11);
  c.pad_top = 2;
  c.pad_left = 0;
  c.pad_bottom = 1;
  c.pad_right = 3;
  c.shift_lo = -3;
  c.shift_hi = 22;
  c.shift_group = 16;
  ASSERT_NO_FATAL_FAILURE(
      CheckBitExact(testing::SingleConvGraph(c), "pynq", 11));
}

TEST(VtaCompilerTest, ConvMatchesReferenceOn1x32x32) {
  ASSERT_NO_FATAL_FAILURE(CheckBitExact(
      testing::SingleConvGraph(Case(64, 96, 9, 10, 3, 1, 1, -20, 4, true, 12)),
      "1x32x32", 12));
}

TEST(VtaCompilerTest, DenseWithPaddedOutputsMatchesReference) {
  ConvCase c;
  c.dense = true;
  c.cin = 256;
  c.cout = 100;
  c.input_zp = 3;
  c.output_zp = -2;
  c.seed = 13;
  ASSERT_NO_FATAL_FAILURE(
      CheckBitExact(testing::SingleConvGraph(c), "pynq", 13));
  c.cout = 10;  // fewer than 3 blocks: padded up to 3
  ASSERT_NO_FATAL_FAILURE(
      CheckBitExact(testing::SingleConvGraph(c), "pynq", 14));
}

TEST(VtaCompilerTest, AddMatchesReference) {
  AddCase a;
  ASSERT_NO_FATAL_FAILURE(
      CheckBitExact(testing::SingleAddGraph(a), "pynq", 20));
  a.relu = true;
  a.zp = -128;
  a.bias = 3000000;  // needs several immediates
  a.ma = 16383;
  a.mb = 1;
  a.shift = 20;
  a.c = 32;
  a.h = 7;
  a.w = 5;
  ASSERT_NO_FATAL_FAILURE(
      CheckBitExact(testing::SingleAddGraph(a), "pynq", 21));
}

TEST(VtaCompilerTest, ResidualBlockMatchesReference) {
  ASSERT_NO_FATAL_FAILURE(CheckBitExact(
      testing::ResidualBlockGraph(32, 12, 10, -128, 30), "pynq", 30));
  ASSERT_NO_FATAL_FAILURE(CheckBitExact(
      testing::ResidualBlockGraph(64, 7, 7, 17, 31), "1x32x32", 31));
}

TEST(VtaCompilerTest, UnsupportedNodesAreUnimplemented) {
  auto vta = CreateVtaBackend({});
  ASSERT_THAT(vta, IsOk());
  // Convs whose input channels are no multiple of BLOCK_IN are the
  // first-conv strategies' business (first_conv.h); not asserted here.
  engine::ModelGraph stem =
      testing::SingleConvGraph(Case(16, 16, 8, 8, 3, 1, 1, 0, 0, false, 1));
  // Shifts not uniform inside a block of 16.
  ConvCase c = Case(16, 32, 8, 8, 3, 1, 1, 0, 0, false, 2);
  c.shift_group = 8;
  c.shift_lo = 2;
  c.shift_hi = 12;
  engine::ModelGraph mixed = testing::SingleConvGraph(c);
  auto& p = std::get<engine::ConvParams>(mixed.nodes[0].params);
  p.shift[8] = p.shift[0] + 1;
  EXPECT_THAT(
      (*vta)->Supports(mixed, mixed.nodes[0]),
      StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("shift_group")));
  // Dilation.
  engine::ModelGraph dil =
      testing::SingleConvGraph(Case(16, 16, 9, 9, 3, 1, 2, 0, 0, false, 3));
  std::get<engine::ConvParams>(dil.nodes[0].params).dilation_h = 2;
  EXPECT_THAT((*vta)->Supports(dil, dil.nodes[0]),
              StatusIs(absl::StatusCode::kUnimplemented));
  // Ops without a lowering.
  engine::Node pool;
  pool.name = "pool";
  pool.op = engine::OpKind::kMaxPool;
  pool.params = engine::PoolParams{};
  EXPECT_THAT((*vta)->Supports(stem, pool),
              StatusIs(absl::StatusCode::kUnimplemented));
  // Compile refuses a graph holding an unsupported node.
  EXPECT_THAT((*vta)->Compile(dil, {}),
              StatusIs(absl::StatusCode::kUnimplemented));
}

TEST(VtaCompilerTest, BadConfigsAreRejected) {
  VtaOptions o;
  o.config = "no-such-preset";
  EXPECT_THAT(CreateVtaBackend(o), StatusIs(absl::StatusCode::kNotFound));
  o.config = "pynq";
  o.run_timeout = absl::ZeroDuration();
  EXPECT_THAT(CreateVtaBackend(o),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(VtaCompilerTest, TooShortTimeoutIsDeadlineExceeded) {
  VtaOptions o;
  o.run_timeout = absl::Nanoseconds(100);  // 10 cycles at 100 MHz
  auto vta = CreateVtaBackend(o);
  ASSERT_THAT(vta, IsOk());
  engine::ModelGraph g =
      testing::SingleConvGraph(Case(16, 16, 8, 8, 3, 1, 1, 0, 0, false, 5));
  auto compiled = (*vta)->Compile(g, {});
  ASSERT_THAT(compiled, IsOk());
  Tensor x = testing::RandomInt8({1, 16, 8, 8}, 5);
  Tensor y = Tensor::Create(DataType::kInt8, {1, 16, 8, 8}).value();
  const Tensor* ins[] = {&x};
  Tensor* outs[] = {&y};
  EXPECT_THAT((*compiled)->Execute({}, ins, outs),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST(VtaCompilerTest, CancelledContextStopsBetweenLayers) {
  auto vta = CreateVtaBackend({});
  ASSERT_THAT(vta, IsOk());
  engine::ModelGraph g = testing::ResidualBlockGraph(16, 6, 6, 0, 7);
  auto compiled = (*vta)->Compile(g, {});
  ASSERT_THAT(compiled, IsOk());
  Tensor x = testing::RandomInt8({1, 16, 6, 6}, 5);
  Tensor y = Tensor::Create(DataType::kInt8, {1, 16, 6, 6}).value();
  const Tensor* ins[] = {&x};
  Tensor* outs[] = {&y};
  std::atomic<bool> cancelled{true};
  engine::ExecutionContext ctx;
  ctx.cancelled = &cancelled;
  EXPECT_THAT((*compiled)->Execute(ctx, ins, outs),
              StatusIs(absl::StatusCode::kCancelled));
}

TEST(VtaCompilerTest, EstimateCostReportsModeledTime) {
  auto vta = CreateVtaBackend({});
  ASSERT_THAT(vta, IsOk());
  engine::ModelGraph g =
      testing::SingleConvGraph(Case(64, 64, 14, 14, 3, 1, 1, 0, 0, false, 5));
  auto cost = (*vta)->EstimateCost(g, 0, {});
  ASSERT_THAT(cost, IsOk());
  // 64x64x3x3 over 14x14 = 7.2 M MAC = 28224 GEMM cycles at 100 MHz.
  EXPECT_GT(cost->seconds, 28224 / 100e6);
  EXPECT_EQ(cost->strategy, "vta");
}

TEST(VtaCompilerTest, PackUnpackActivationRoundTrips) {
  compiler::ActivationLayout l;
  l.channels = 32;
  l.blocks = 2;
  l.h = 3;
  l.w = 5;
  l.border = 2;
  Tensor x = testing::RandomInt8({1, 32, 3, 5}, 9);
  std::vector<int8_t> image(l.Elems() * 16, 77);
  compiler::PackActivation(l, 16, x.data<int8_t>(), image.data());
  EXPECT_EQ(image[0], 77);  // border untouched
  EXPECT_EQ(image[l.ElemIndex(1, 2, 4) * 16 + 3],
            x.data<int8_t>()[(19 * 3 + 2) * 5 + 4]);
  Tensor y = Tensor::Create(DataType::kInt8, {1, 32, 3, 5}).value();
  compiler::UnpackActivation(l, 16, image.data(), y.data<int8_t>());
  ASSERT_NO_FATAL_FAILURE(ExpectSameBytes(x, y));
}

}  // namespace
}  // namespace vtaserve::vta
