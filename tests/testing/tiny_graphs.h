// Small hand-built graphs and a gated backend for engine and server tests.
// TinyClassifier: float input -> quantize -> conv+relu -> global average pool
// -> dense -> dequantize -> softmax, in the engine's integer semantics.
// GatedBackend: the reference backend that can be held before each
// execution, to fill queues and hold requests in flight deterministically.
#ifndef VTASERVE_TESTS_TESTING_TINY_GRAPHS_H_
#define VTASERVE_TESTS_TESTING_TINY_GRAPHS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "engine/backend.h"
#include "engine/graph.h"
#include "engine/reference_backend.h"

namespace vtaserve::testing {

// Input "input" float32 [1,3,size,size]; output "probabilities" float32
// [1,classes]; layers conv1, gap, flatten, fc, ...
inline engine::ModelGraph TinyClassifier(int size = 8, int classes = 10,
                                         uint32_t seed = 7) {
  using engine::OpKind;
  engine::ModelGraph g;
  g.name = "tiny";
  const int64_t s = size;
  const int c1 = 8;
  g.values = {
      {"input", DataType::kFloat32, {1, 3, s, s}, 1.0f, 0},
      {"input_q", DataType::kInt8, {1, 3, s, s}, 1.0f / 64, 0},
      {"conv1_out", DataType::kInt8, {1, c1, s, s}, 0.05f, -128},
      {"gap_out", DataType::kInt8, {1, c1, 1, 1}, 0.05f, -128},
      {"flat", DataType::kInt8, {1, c1}, 0.05f, -128},
      {"fc_out", DataType::kInt8, {1, classes}, 0.1f, 0},
      {"logits", DataType::kFloat32, {1, classes}, 1.0f, 0},
      {"probabilities", DataType::kFloat32, {1, classes}, 1.0f, 0},
  };
  uint32_t state = seed;
  auto next = [&state](int lo, int hi) {
    state = state * 1664525u + 1013904223u;
    return lo +
           static_cast<int>((state >> 8) % static_cast<uint32_t>(hi - lo + 1));
  };
  engine::ConvParams conv;
  conv.in_channels = 3;
  conv.out_channels = c1;
  conv.kernel_h = conv.kernel_w = 3;
  conv.pad_top = conv.pad_left = conv.pad_bottom = conv.pad_right = 1;
  for (int i = 0; i < c1 * 3 * 9; ++i) conv.weights.push_back(next(-40, 40));
  for (int i = 0; i < c1; ++i) conv.bias.push_back(next(-500, 500));
  conv.shift.assign(c1, 6);
  conv.output_zero_point = -128;
  conv.clamp_min = -128;  // ReLU at the zero point
  engine::GapParams gap;
  gap.multiplier = 1 << 16;
  gap.shift = 16 + 6;  // average over 64 taps for size 8
  gap.bias =
      int64_t{s * s * 128} * gap.multiplier + (int64_t{1} << (gap.shift - 1));
  gap.output_zero_point = -128;
  engine::ConvParams fc;
  fc.in_channels = c1;
  fc.out_channels = classes;
  for (int i = 0; i < classes * c1; ++i) fc.weights.push_back(next(-60, 60));
  for (int i = 0; i < classes; ++i) fc.bias.push_back(next(-2000, 2000));
  fc.shift.assign(classes, 5);
  fc.input_zero_point = -128;
  g.nodes.push_back({"quantize",
                     OpKind::kQuantize,
                     {0},
                     {1},
                     engine::QuantizeParams{1.0f / 64, 0}});
  g.nodes.push_back({"conv1", OpKind::kConv, {1}, {2}, conv});
  g.nodes.push_back({"gap", OpKind::kGlobalAvgPool, {2}, {3}, gap});
  g.nodes.push_back(
      {"flatten", OpKind::kReshape, {3}, {4}, engine::NoParams{}});
  g.nodes.push_back({"fc", OpKind::kDense, {4}, {5}, fc});
  g.nodes.push_back({"dequantize",
                     OpKind::kDequantize,
                     {5},
                     {6},
                     engine::QuantizeParams{0.1f, 0}});
  g.nodes.push_back(
      {"softmax", OpKind::kSoftmax, {6}, {7}, engine::NoParams{}});
  g.inputs = {0};
  g.outputs = {7};
  return g;
}

// Shared switch of GatedBackend executions.
struct Gate {
  absl::Mutex mu;
  bool open ABSL_GUARDED_BY(mu) = true;
  int waiting ABSL_GUARDED_BY(mu) = 0;  // executions held right now
  std::atomic<int> started{0};          // executions that passed the gate

  void Close() {
    absl::MutexLock l(&mu);
    open = false;
  }
  void Open() {
    absl::MutexLock l(&mu);
    open = true;
  }
  // Waits until `n` executions are held at the gate (or 10 s passed).
  bool AwaitWaiting(int n) {
    absl::MutexLock l(&mu);
    auto cond = [this, n]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return waiting >= n; };
    return mu.AwaitWithTimeout(absl::Condition(&cond), absl::Seconds(10));
  }
};

// The reference backend under the name "reference", held at `gate` before
// every execution; the hold honours the context's deadline and cancel flag.
class GatedBackend : public engine::Backend {
 public:
  explicit GatedBackend(std::shared_ptr<Gate> gate)
      : gate_(std::move(gate)), inner_(engine::CreateReferenceBackend()) {}

  absl::string_view Name() const override { return "reference"; }
  absl::Status Supports(const engine::ModelGraph& g,
                        const engine::Node& n) const override {
    return inner_->Supports(g, n);
  }
  absl::StatusOr<std::unique_ptr<engine::CompiledModel>> Compile(
      const engine::ModelGraph& g,
      const engine::BackendOptions& options) override {
    auto inner = inner_->Compile(g, options);
    if (!inner.ok()) return inner.status();
    return std::unique_ptr<engine::CompiledModel>(
        new Compiled(gate_, *std::move(inner)));
  }
  absl::StatusOr<engine::NodeCost> EstimateCost(
      const engine::ModelGraph& g, engine::NodeId id,
      const engine::BackendOptions& options) override {
    return inner_->EstimateCost(g, id, options);
  }

 private:
  class Compiled : public engine::CompiledModel {
   public:
    Compiled(std::shared_ptr<Gate> gate,
             std::unique_ptr<engine::CompiledModel> inner)
        : gate_(std::move(gate)), inner_(std::move(inner)) {}
    absl::Status Execute(const engine::ExecutionContext& context,
                         absl::Span<const Tensor* const> inputs,
                         absl::Span<Tensor* const> outputs) override {
      {
        absl::MutexLock l(&gate_->mu);
        ++gate_->waiting;
        while (!gate_->open) {
          absl::Status s = context.CheckContinue();
          if (!s.ok()) {
            --gate_->waiting;
            return s;
          }
          gate_->mu.AwaitWithTimeout(absl::Condition(&gate_->open),
                                     absl::Milliseconds(2));
        }
        --gate_->waiting;
      }
      gate_->started.fetch_add(1);
      return inner_->Execute(context, inputs, outputs);
    }
    std::string Describe() const override { return inner_->Describe(); }

   private:
    std::shared_ptr<Gate> gate_;
    std::unique_ptr<engine::CompiledModel> inner_;
  };

  std::shared_ptr<Gate> gate_;
  std::unique_ptr<engine::Backend> inner_;
};

}  // namespace vtaserve::testing

#endif  // VTASERVE_TESTS_TESTING_TINY_GRAPHS_H_
