// Backend conformance (after ggml's test-backend-ops): every op case builds
// its inputs once, runs on the reference executor (the oracle), the CPU
// backend and the VTA simulator on two hardware configs (pynq 1x16x16 and
// 1x32x32); int8 results must be bit-exact. The VTA runs go through a device
// wrapper that surrounds every DRAM buffer with sentinel guard pages and
// checks them after each execution, so a store outside its tensor is caught.
// Cases a config cannot lower must be reported Unimplemented by Supports.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "cpu_backend/cpu_backend.h"
#include "engine/backend.h"
#include "engine/reference_backend.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/vta_backend/compiler/graph_builders.h"
#include "vta_backend/compiler/graph_compiler.h"
#include "vta_backend/config.h"
#include "vta_backend/device.h"
#include "vta_backend/isa/isa.h"
#include "vta_backend/runtime/command_queue.h"
#include "vta_backend/sim/sim_device.h"

namespace vtaserve {
namespace {

using ::vtaserve::testing::AddCase;
using ::vtaserve::testing::ConvCase;
using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::StatusIs;

constexpr size_t kGuardBytes = 4096;  // keeps 4 KiB alignment
constexpr uint8_t kSentinel = 0xA5;

// A VtaDevice that pads every allocation with sentinel guard pages.
class GuardedDevice : public vta::VtaDevice {
 public:
  explicit GuardedDevice(std::unique_ptr<vta::VtaDevice> inner)
      : inner_(std::move(inner)) {}

  absl::StatusOr<vta::DeviceBuffer> AllocBuffer(size_t bytes) override {
    auto raw = inner_->AllocBuffer(bytes + 2 * kGuardBytes);
    if (!raw.ok()) return raw.status();
    std::vector<uint8_t> fill(raw->size, kSentinel);
    if (absl::Status s = inner_->CopyToDevice(*raw, 0, fill); !s.ok()) return s;
    vta::DeviceBuffer user{static_cast<uint32_t>(raw->phys_addr + kGuardBytes),
                           bytes};
    absl::MutexLock lock(&mu_);
    raw_[user.phys_addr] = *raw;
    return user;
  }
  absl::Status FreeBuffer(const vta::DeviceBuffer& b) override {
    vta::DeviceBuffer raw;
    {
      absl::MutexLock lock(&mu_);
      auto it = raw_.find(b.phys_addr);
      if (it == raw_.end()) return absl::InvalidArgumentError("unknown buffer");
      raw = it->second;
      raw_.erase(it);
    }
    return inner_->FreeBuffer(raw);
  }
  absl::Status CopyToDevice(const vta::DeviceBuffer& b, size_t offset,
                            absl::Span<const uint8_t> src) override {
    if (offset > b.size || src.size() > b.size - offset) {
      return absl::InvalidArgumentError("copy outside the buffer");
    }
    return inner_->CopyToDevice(Raw(b), offset + kGuardBytes, src);
  }
  absl::Status CopyFromDevice(const vta::DeviceBuffer& b, size_t offset,
                              absl::Span<uint8_t> dst) override {
    if (offset > b.size || dst.size() > b.size - offset) {
      return absl::InvalidArgumentError("copy outside the buffer");
    }
    return inner_->CopyFromDevice(Raw(b), offset + kGuardBytes, dst);
  }
  absl::StatusOr<vta::RunStats> Run(uint32_t insn, uint32_t count,
                                    absl::Duration timeout) override {
    return inner_->Run(insn, count, timeout);
  }

  // Number of guard bytes that no longer hold the sentinel.
  int64_t CorruptedGuardBytes() {
    absl::MutexLock lock(&mu_);
    int64_t bad = 0;
    for (const auto& [user, raw] : raw_) {
      std::vector<uint8_t> bytes(raw.size);
      if (!inner_->CopyFromDevice(raw, 0, absl::MakeSpan(bytes)).ok())
        return -1;
      const size_t user_size = raw.size - 2 * kGuardBytes;
      for (size_t i = 0; i < kGuardBytes; ++i) {
        bad += bytes[i] != kSentinel;
        bad += bytes[kGuardBytes + user_size + i] != kSentinel;
      }
    }
    return bad;
  }

 private:
  vta::DeviceBuffer Raw(const vta::DeviceBuffer& b) {
    absl::MutexLock lock(&mu_);
    auto it = raw_.find(b.phys_addr);
    return it == raw_.end() ? vta::DeviceBuffer{} : it->second;
  }
  std::unique_ptr<vta::VtaDevice> inner_;
  absl::Mutex mu_;
  absl::flat_hash_map<uint32_t, vta::DeviceBuffer> raw_;
};

struct OpCase {
  std::string name;
  engine::ModelGraph graph;
};

void PrintTo(const OpCase& c, std::ostream* os) { *os << c.name; }

std::vector<Tensor> MakeOutputs(const engine::ModelGraph& g) {
  std::vector<Tensor> outs;
  for (engine::ValueId v : g.outputs) {
    outs.push_back(Tensor::Create(g.value(v).dtype, g.value(v).shape).value());
  }
  return outs;
}

std::vector<Tensor*> Ptrs(std::vector<Tensor>& v) {
  std::vector<Tensor*> p;
  for (Tensor& t : v) p.push_back(&t);
  return p;
}

int64_t Mismatches(const Tensor& a, const Tensor& b) {
  if (a.byte_size() != b.byte_size()) return -1;
  int64_t n = 0;
  for (size_t i = 0; i < a.byte_size(); ++i) n += a.bytes()[i] != b.bytes()[i];
  return n;
}

class ConformanceTest : public ::testing::TestWithParam<OpCase> {};

TEST_P(ConformanceTest, BitExactOnEveryBackend) {
  const engine::ModelGraph& g = GetParam().graph;
  ASSERT_THAT(g.Validate(), IsOk());
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    inputs.push_back(testing::RandomInt8(g.value(g.inputs[i]).shape, 1000 + i));
  }
  std::vector<const Tensor*> in_ptrs;
  for (const Tensor& t : inputs) in_ptrs.push_back(&t);

  // Oracle.
  auto ref = engine::CreateReferenceBackend();
  auto ref_model = ref->Compile(g, {});
  ASSERT_THAT(ref_model, IsOk());
  std::vector<Tensor> want = MakeOutputs(g);
  ASSERT_THAT((*ref_model)->Execute({}, in_ptrs, Ptrs(want)), IsOk());
  // The oracle's outputs must not be degenerate (e.g. all clamped), or
  // agreement would prove little.
  for (const Tensor& t : want) {
    std::vector<bool> seen(256, false);
    int distinct = 0;
    for (size_t i = 0; i < t.byte_size(); ++i) {
      if (!seen[t.bytes()[i]]) {
        seen[t.bytes()[i]] = true;
        ++distinct;
      }
    }
    EXPECT_GE(distinct, std::min<int64_t>(16, t.num_elements() / 4))
        << "degenerate reference output";
  }

  {
    auto cpu = cpu::CreateCpuBackend(cpu::CpuOptions{});
    bool all = true;
    for (const auto& n : g.nodes) all &= cpu->Supports(g, n).ok();
    if (all) {
      auto model = cpu->Compile(g, {});
      ASSERT_THAT(model, IsOk());
      std::vector<Tensor> got = MakeOutputs(g);
      ASSERT_THAT((*model)->Execute({}, in_ptrs, Ptrs(got)), IsOk());
      for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(Mismatches(want[i], got[i]), 0) << "cpu output " << i;
      }
    }
  }

  int vta_configs_run = 0;
  for (const char* preset : {"pynq", "1x32x32"}) {
    SCOPED_TRACE(preset);
    auto config = vta::VtaConfigPreset(preset);
    ASSERT_THAT(config, IsOk());
    bool supported = true;
    for (const auto& n : g.nodes) {
      absl::Status s = vta::compiler::CheckNodeSupported(*config, g, n, {});
      if (!s.ok()) {
        EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnimplemented));
        supported = false;
      }
    }
    // Only channel counts that are no multiple of the block may be refused.
    if (!supported) {
      bool channels_misfit = false;
      for (const auto& v : g.values) {
        channels_misfit |=
            v.shape.size() >= 2 && v.shape[1] % config->BlockIn() != 0;
      }
      EXPECT_TRUE(channels_misfit) << "refused without a channel reason";
      continue;
    }
    auto sim = vta::sim::SimDevice::Create(*config);
    ASSERT_THAT(sim, IsOk());
    auto guarded = std::make_shared<GuardedDevice>(*std::move(sim));
    auto compiled =
        vta::compiler::CompiledGraph::Compile(guarded, *config, g, {});
    ASSERT_THAT(compiled, IsOk());
    std::vector<Tensor> got = MakeOutputs(g);
    ASSERT_THAT((*compiled)->Execute({}, in_ptrs, Ptrs(got)), IsOk());
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(Mismatches(want[i], got[i]), 0) << "vta output " << i;
    }
    EXPECT_EQ(guarded->CorruptedGuardBytes(), 0);
    // A second run over the same buffers gives the same bytes.
    std::vector<Tensor> again = MakeOutputs(g);
    ASSERT_THAT((*compiled)->Execute({}, in_ptrs, Ptrs(again)), IsOk());
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_EQ(Mismatches(want[i], again[i]), 0);
    ++vta_configs_run;
  }
  EXPECT_GE(vta_configs_run, 1);
}

ConvCase Conv(int cin, int cout, int h, int w, int k, int s, int pt, int pl,
              int pb, int pr, int izp, int ozp, bool relu, uint64_t seed) {
  ConvCase c;
  c.cin = cin;
  c.cout = cout;
  c.h = h;
  c.w = w;
  c.kh = c.kw = k;
  c.stride = s;
  c.pad_top = pt;
  c.pad_left = pl;
  c.pad_bottom = pb;
  c.pad_right = pr;
  c.input_zp = izp;
  c.output_zp = ozp;
  c.relu = relu;
  c.seed = seed;
  return c;
}

std::vector<OpCase> AllCases() {
  std::vector<OpCase> cases;
  auto conv = [&](ConvCase c) {
    cases.push_back({c.Name(), testing::SingleConvGraph(c)});
  };
  // Kernel 1/3/7, stride 1/2, paddings 0..3 and asymmetric, channels
  // 16..512, odd spatial sizes, tiles that do not divide the output.
  conv(Conv(16, 16, 9, 9, 1, 1, 0, 0, 0, 0, 0, 0, false, 1));
  conv(Conv(64, 128, 15, 15, 1, 1, 0, 0, 0, 0, -128, 3, true, 2));
  conv(Conv(256, 512, 13, 13, 1, 2, 0, 0, 0, 0, 5, -4, false, 3));
  conv(Conv(32, 32, 31, 29, 3, 1, 1, 1, 1, 1, -128, -128, true, 4));
  conv(Conv(128, 64, 17, 17, 3, 1, 1, 1, 1, 1, 12, 0, false, 5));
  conv(Conv(64, 128, 23, 23, 3, 2, 1, 1, 1, 1, -7, 9, true, 6));
  conv(Conv(512, 512, 5, 5, 3, 1, 1, 1, 1, 1, 0, -128, true, 7));
  conv(Conv(48, 80, 11, 9, 3, 1, 0, 0, 0, 0, 33, 1, false, 8));
  conv(Conv(32, 64, 19, 19, 7, 2, 3, 3, 3, 3, -128, -128, true, 9));
  conv(Conv(16, 16, 13, 11, 7, 1, 3, 3, 3, 3, 77, 0, false, 10));
  conv(Conv(32, 32, 10, 12, 3, 1, 2, 0, 1, 3, -3, 2, false, 11));
  conv(Conv(16, 32, 5, 130, 3, 1, 1, 1, 1, 1, 1, 1, true, 12));
  conv(Conv(96, 32, 7, 7, 3, 2, 0, 0, 0, 0, -100, 0, false, 13));
  conv(Conv(32, 48, 6, 6, 5, 1, 2, 2, 2, 2, 0, 0, false, 14));
  {
    ConvCase c = Conv(64, 64, 9, 9, 3, 1, 1, 1, 1, 1, 4, -9, false, 15);
    c.shift_lo = -4;  // left shifts and shifts > 15 in one layer
    c.shift_hi = 25;
    conv(c);
  }
  // Dense (the classifier and small heads).
  for (auto [k, n, seed] : {std::tuple{512, 1000, 20}, std::tuple{64, 10, 21},
                            std::tuple{2048, 96, 22}}) {
    ConvCase c;
    c.dense = true;
    c.cin = k;
    c.cout = n;
    c.input_zp = -11;
    c.output_zp = 6;
    c.seed = seed;
    cases.push_back({c.Name(), testing::SingleConvGraph(c)});
  }
  // Residual adds.
  {
    AddCase a;
    cases.push_back({"add_c16", testing::SingleAddGraph(a)});
    a.c = 64;
    a.h = 9;
    a.w = 11;
    a.relu = true;
    a.zp = -100;
    a.ma = 16383;
    a.mb = 127;
    a.bias = 2500000;
    a.shift = 15;
    cases.push_back({"add_c64_relu_bigbias", testing::SingleAddGraph(a)});
    a.c = 512;
    a.h = a.w = 3;
    a.ma = 1;
    a.mb = 0;
    a.bias = 7;
    a.shift = 0;
    a.zp = -20;
    cases.push_back({"add_c512_shift0", testing::SingleAddGraph(a)});
  }
  // Small graphs: values shared between VTA layers through bordered buffers.
  cases.push_back(
      {"block_c32", testing::ResidualBlockGraph(32, 11, 9, -128, 40)});
  cases.push_back({"block_c64", testing::ResidualBlockGraph(64, 8, 8, 21, 41)});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Ops, ConformanceTest, ::testing::ValuesIn(AllCases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace vtaserve

namespace vtaserve {
namespace {

// A compiled conv layer's instruction stream, corrupted in several ways,
// must be rejected by the device with InvalidArgument (never a crash or a
// hang); the intact stream runs.
TEST(CompiledStreamTest, CorruptedStreamsAreRejected) {
  auto config = vta::VtaConfigPreset("pynq");
  ASSERT_THAT(config, IsOk());
  auto sim = vta::sim::SimDevice::Create(*config);
  ASSERT_THAT(sim, IsOk());
  vta::VtaDevice& dev = **sim;
  auto codec = vta::isa::IsaCodec::Create(*config);
  ASSERT_THAT(codec, IsOk());
  vta::compiler::ConvLayer layer;
  layer.in = {32, 2, 8, 8, 1};
  layer.out = {32, 2, 8, 8, 0};
  layer.kh = layer.kw = 3;
  layer.pad_top = layer.pad_left = 1;
  layer.block_shift = {6, 6};
  auto tiling = vta::compiler::PlanConv(*config, layer);
  ASSERT_THAT(tiling, IsOk());
  auto inp = dev.AllocBuffer(layer.in.Elems() * 16);
  auto wgt = dev.AllocBuffer(2 * 2 * 9 * 256);
  auto bias = dev.AllocBuffer(2 * 64);
  auto out = dev.AllocBuffer(layer.out.Elems() * 16);
  ASSERT_TRUE(inp.ok() && wgt.ok() && bias.ok() && out.ok());
  vta::compiler::ConvAddrs addrs{inp->phys_addr / 16, wgt->phys_addr / 256,
                                 bias->phys_addr / 64, out->phys_addr / 16};
  auto q = vta::CommandQueue::Create(*config);
  ASSERT_THAT(q, IsOk());
  ASSERT_THAT(vta::compiler::EmitConv(*q, layer, *tiling, addrs), IsOk());
  auto program = q->Finalize();
  ASSERT_THAT(program, IsOk());
  auto uops = dev.AllocBuffer(program->uop_words.size() * 4);
  ASSERT_THAT(uops, IsOk());
  std::vector<uint8_t> uop_bytes(program->uop_words.size() * 4);
  std::memcpy(uop_bytes.data(), program->uop_words.data(), uop_bytes.size());
  ASSERT_THAT(dev.CopyToDevice(*uops, 0, uop_bytes), IsOk());
  auto good = program->Encode(*codec, uops->phys_addr);
  ASSERT_THAT(good, IsOk());
  auto run = [&](const std::vector<uint8_t>& bytes) -> absl::Status {
    auto buf = dev.AllocBuffer(bytes.size());
    if (!buf.ok()) return buf.status();
    absl::Status s = dev.CopyToDevice(*buf, 0, bytes);
    if (s.ok()) {
      s = dev.Run(buf->phys_addr, static_cast<uint32_t>(bytes.size() / 16),
                  absl::Seconds(1))
              .status();
    }
    dev.FreeBuffer(*buf).IgnoreError();
    return s;
  };
  EXPECT_THAT(run(*good), IsOk());
  const size_t n = good->size() / 16;
  {  // An undefined opcode (7) in the middle.
    std::vector<uint8_t> b = *good;
    b[(n / 2) * 16] |= 0x7;
    EXPECT_THAT(run(b), StatusIs(absl::StatusCode::kInvalidArgument));
  }
  {  // FINISH dropped.
    std::vector<uint8_t> b(good->begin(), good->end() - 16);
    EXPECT_THAT(run(b), StatusIs(absl::StatusCode::kInvalidArgument));
  }
  {  // Every push flag cleared: pops wait forever -> deadlock reported.
    std::vector<uint8_t> b = *good;
    for (size_t i = 0; i < n; ++i) b[i * 16] &= static_cast<uint8_t>(~0x60);
    EXPECT_THAT(run(b), StatusIs(absl::StatusCode::kInvalidArgument));
  }
  {  // A LOAD/STORE pointed outside every DRAM buffer.
    std::vector<uint8_t> b = *good;
    bool patched = false;
    for (size_t i = 0; i < n && !patched; ++i) {
      auto insn = codec->Decode(vta::isa::LoadEncodedInsn(&b[i * 16]));
      ASSERT_THAT(insn, IsOk());
      if (auto* m = std::get_if<vta::isa::MemInsn>(&*insn);
          m != nullptr && m->x_size > 0 &&
          m->opcode == vta::isa::Opcode::kStore) {
        m->dram_base = 0x7ffffff0u / 16;
        auto e = codec->Encode(*insn);
        ASSERT_THAT(e, IsOk());
        vta::isa::StoreEncodedInsn(*e, &b[i * 16]);
        patched = true;
      }
    }
    ASSERT_TRUE(patched);
    EXPECT_THAT(run(b), StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

}  // namespace
}  // namespace vtaserve
