#include "cpu_backend/cpu_backend.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cpu_backend/kernels/conv.h"
#include "cpu_backend/kernels/elementwise.h"
#include "cpu_backend/kernels/layout.h"
#include "cpu_backend/kernels/pool.h"
#include "cpu_backend/parallel.h"
#include "engine/common/status_macros.h"

namespace vtaserve::cpu {
namespace {

using engine::ConvParams;
using engine::ModelGraph;
using engine::Node;
using engine::NodeId;
using engine::OpKind;
using engine::Value;
using engine::ValueId;

// Smallest per-thread share of an elementwise op worth a thread hand-off.
constexpr int64_t kElementGrain = 16 * 1024;
// Work per self-scheduled block of a conv layer, in multiply-accumulates
// (a few microseconds): a block is as many units as make this, at least
// one. A unit (24 pixels x 16 channels) is under a microsecond of work on
// the stem but ~25 us on the last stage's 3x3 convs, so a fixed unit count
// would leave one thread a large last block there.
constexpr int64_t kConvBlockMacs = 256 * 1024;

// True if NCHW and NHWC order the value's elements differently.
bool LayoutMatters(const Value& v) {
  return v.shape.size() == 4 && v.shape[1] > 1 && v.shape[2] * v.shape[3] > 1;
}

// [C, H, W] of a value (2-D [1, C] counts as [C, 1, 1]).
struct Chw {
  int64_t c = 1, h = 1, w = 1;
};
Chw ChwOf(const Value& v) {
  Chw d;
  if (v.shape.size() == 4) {
    d = {v.shape[1], v.shape[2], v.shape[3]};
  } else if (v.shape.size() >= 2) {
    d.c = NumElements(v.shape) / std::max<int64_t>(v.shape[0], 1);
  }
  return d;
}

class CpuCompiledModel : public engine::CompiledModel {
 public:
  CpuCompiledModel(ModelGraph graph, std::shared_ptr<ThreadPool> pool,
                   CpuIsa isa)
      : graph_(std::move(graph)),
        pool_(std::move(pool)),
        isa_(isa),
        avx2_(isa != CpuIsa::kScalar) {}

  absl::Status Build() {
    const size_t nv = graph_.values.size();
    storage_.resize(nv);
    ptr_.assign(nv, nullptr);
    layout_.assign(nv, Layout::kNchw);
    std::vector<bool> is_input(nv, false);
    for (ValueId v : graph_.inputs) is_input[v] = true;
    for (size_t v = 0; v < nv; ++v) {
      if (is_input[v]) continue;
      const Value& info = graph_.values[v];
      VTASERVE_ASSIGN_OR_RETURN(storage_[v],
                                Tensor::Create(info.dtype, info.shape));
      ptr_[v] = storage_[v].bytes();
    }
    for (NodeId id = 0; id < static_cast<NodeId>(graph_.nodes.size()); ++id) {
      VTASERVE_RETURN_IF_ERROR(AddNode(id));
    }
    // Zero-initialised: the slack and Winograd overhang are read, never
    // written, and whatever a previous conv left there is a packed int8
    // value, which is all the kernels' exactness needs (conv.h).
    VTASERVE_ASSIGN_OR_RETURN(
        conv_buffer_, Tensor::Create(DataType::kUInt8, {conv_buffer_bytes_}));
    VTASERVE_ASSIGN_OR_RETURN(
        transformed_buffer_,
        Tensor::Create(DataType::kUInt8, {transformed_bytes_}));
    return absl::OkStatus();
  }

  absl::Status Execute(const engine::ExecutionContext& context,
                       absl::Span<const Tensor* const> inputs,
                       absl::Span<Tensor* const> outputs) override {
    if (inputs.size() != graph_.inputs.size() ||
        outputs.size() != graph_.outputs.size()) {
      return absl::InvalidArgumentError("wrong number of inputs or outputs");
    }
    for (size_t i = 0; i < inputs.size(); ++i) {
      ptr_[graph_.inputs[i]] = inputs[i]->bytes();
    }
    for (const Step& step : steps_) {
      VTASERVE_RETURN_IF_ERROR(context.CheckContinue());
      const absl::Time start = absl::Now();
      double transform = 0.0;
      std::optional<ThreadUsage> usage;
      if (context.profile != nullptr) usage.emplace();
      step.run(transform);
      if (context.profile != nullptr) {
        const Node& node = graph_.nodes[step.node];
        engine::LayerTiming t;
        t.layer = node.name;
        t.op = node.op;
        t.device = "cpu";
        t.wall_seconds = absl::ToDoubleSeconds(absl::Now() - start);
        t.host_transform_seconds = transform;
        const int64_t macs = graph_.NodeMacs(step.node);
        if (macs > 0) t.counters["macs"] = static_cast<double>(macs);
        // Threads that ran a piece of the layer (1 for a one-thread pool;
        // absent for layers with no work of their own, e.g. Flatten).
        if (const int used = usage->count(); used > 0)
          t.counters["threads_used"] = used;
        context.profile->push_back(std::move(t));
      }
    }
    for (size_t i = 0; i < outputs.size(); ++i) {
      const ValueId v = graph_.outputs[i];
      const Value& info = graph_.values[v];
      uint8_t* dst = outputs[i]->bytes();
      if (layout_[v] == Layout::kNhwc && LayoutMatters(info)) {
        const Chw d = ChwOf(info);
        const int es = static_cast<int>(DataTypeSize(info.dtype));
        pool_->ParallelFor(
            d.h,
            [&](int64_t b, int64_t e) {
              Relayout(ptr_[v], MakeStrides(Layout::kNhwc, d.c, d.h, d.w), dst,
                       MakeStrides(Layout::kNchw, d.c, d.h, d.w), d.c, d.w, es,
                       b, e);
            },
            std::max<int64_t>(1,
                              kElementGrain / std::max<int64_t>(1, d.c * d.w)));
      } else if (dst != ptr_[v]) {
        std::memcpy(dst, ptr_[v], outputs[i]->byte_size());
      }
    }
    return absl::OkStatus();
  }

  std::string Describe() const override {
    return absl::StrCat("cpu: ", graph_.nodes.size(), " nodes, ", convs_,
                        " conv/dense on ", CpuIsaName(isa_), ", ",
                        pool_->num_threads(), " threads");
  }

 private:
  struct Step {
    NodeId node;
    // Runs the node; adds the seconds spent on layout/packing transforms.
    std::function<void(double&)> run;
  };

  Strides StridesOf(ValueId v) const {
    const Chw d = ChwOf(graph_.values[v]);
    return MakeStrides(layout_[v], d.c, d.h, d.w);
  }
  uint8_t* Out(ValueId v) { return storage_[v].bytes(); }

  // Elementwise step over the value's elements.
  template <typename Fn>
  void AddElementwise(NodeId id, int64_t n, Fn fn) {
    steps_.push_back({id, [this, n, fn](double&) {
                        pool_->ParallelFor(n, fn, kElementGrain);
                      }});
  }

  absl::Status AddConv(NodeId id, const Node& node) {
    const auto& p = std::get<ConvParams>(node.params);
    const ValueId x = node.inputs[0], y = node.outputs[0];
    const Chw in = ChwOf(graph_.values[x]);
    const Chw out = ChwOf(graph_.values[y]);
    // Dense is a 1x1 conv on a 1x1 image.
    VTASERVE_ASSIGN_OR_RETURN(PackedConv pc,
                              PackConv(p, in.h, in.w, out.h, out.w, isa_));
    auto state = std::make_shared<ConvState>();
    state->pc = std::move(pc);
    // One padded buffer and one transformed-input buffer (Winograd, row
    // pairs) serve every conv (steps run one at a time): Build sizes them
    // for the largest.
    conv_buffer_bytes_ = std::max(conv_buffer_bytes_, state->pc.BufferBytes());
    transformed_bytes_ =
        std::max(transformed_bytes_, state->pc.TransformedBytes());
    state->kernel = ConvKernelFor(isa_);
    const Strides xs = StridesOf(x);
    layout_[y] = Layout::kNhwc;
    ++convs_;
    steps_.push_back(
        {id, [this, state, x, y, xs](double& transform) {
           const PackedConv& pc = state->pc;
           uint8_t* buf = conv_buffer_.bytes();
           const int8_t* src = reinterpret_cast<const int8_t*>(ptr_[x]);
           const absl::Time t0 = absl::Now();
           // The transforms are self-scheduled too: the caller starts at once
           // and a worker still waking up joins late instead of holding it up.
           pool_->ParallelForDynamic(
               pc.hp,
               [&](int64_t b, int64_t e) {
                 ConvPackInput(pc, src, xs, buf, b, e);
               },
               std::max<int64_t>(1,
                                 8192 / std::max<int64_t>(1, pc.wp * pc.cbuf)));
           int8_t* dst = reinterpret_cast<int8_t*>(Out(y));
           const uint8_t* operand = buf;
           uint8_t* v = transformed_buffer_.bytes();
           if ((pc.winograd || pc.row_pairs) && pc.pixel_major) {
             // Small weights: each thread transforms its pixel groups
             // (Winograd) or output-row pairs (row pairs) and runs every block
             // on them while they are in cache.
             transform += absl::ToDoubleSeconds(absl::Now() - t0);
             const auto fused = pc.winograd ? &ConvWinogradGroupsAvx2
                                            : &ConvRowPairsGroupsAvx2;
             pool_->ParallelForDynamic(
                 pc.winograd ? pc.pixel_groups : pc.out_pairs,
                 [&](int64_t b, int64_t e) { fused(pc, buf, v, dst, b, e); },
                 1);
             return;
           }
           if (pc.winograd) {
             pool_->ParallelForDynamic(
                 pc.Tiles(),
                 [&](int64_t b, int64_t e) {
                   ConvWinogradInputAvx2(pc, buf, v, b, e);
                 },
                 std::max<int64_t>(1, 4096 / pc.cbuf));
             operand = v;
           } else if (pc.row_pairs) {
             pool_->ParallelForDynamic(
                 pc.out_pairs,
                 [&](int64_t b, int64_t e) {
                   ConvRowPairsInputAvx2(pc, buf, v, b, e);
                 },
                 std::max<int64_t>(1, 8192 / pc.v_row));
             operand = v;
           }
           transform += absl::ToDoubleSeconds(absl::Now() - t0);
           const ConvKernelFn kernel = state->kernel;
           // Self-scheduled blocks of units (each a few microseconds of work),
           // so a slow or late thread does not hold up the layer.
           pool_->ParallelForDynamic(
               pc.Units(),
               [&](int64_t b, int64_t e) { kernel(pc, operand, dst, b, e); },
               std::max<int64_t>(1, kConvBlockMacs / pc.UnitMacs()));
         }});
    return absl::OkStatus();
  }

  // Makes `v` available in NCHW order: returns its pointer, or a copy in a
  // scratch tensor when it is held NHWC. The copy runs inside the step.
  absl::StatusOr<std::function<const uint8_t*(double&)>> CanonicalReader(
      ValueId v) {
    const Value& info = graph_.values[v];
    if (!(layout_[v] == Layout::kNhwc && LayoutMatters(info))) {
      return std::function<const uint8_t*(double&)>(
          [this, v](double&) { return ptr_[v]; });
    }
    auto scratch = std::make_shared<Tensor>();
    VTASERVE_ASSIGN_OR_RETURN(*scratch, Tensor::Create(info.dtype, info.shape));
    const Chw d = ChwOf(info);
    const int es = static_cast<int>(DataTypeSize(info.dtype));
    return std::function<const uint8_t*(double&)>([this, v, scratch, d,
                                                   es](double& transform) {
      const absl::Time t0 = absl::Now();
      uint8_t* dst = scratch->bytes();
      pool_->ParallelFor(d.h, [&](int64_t b, int64_t e) {
        Relayout(ptr_[v], MakeStrides(Layout::kNhwc, d.c, d.h, d.w), dst,
                 MakeStrides(Layout::kNchw, d.c, d.h, d.w), d.c, d.w, es, b, e);
      });
      transform += absl::ToDoubleSeconds(absl::Now() - t0);
      return static_cast<const uint8_t*>(dst);
    });
  }

  absl::Status AddNode(NodeId id) {
    const Node& node = graph_.nodes[id];
    const ValueId x = node.inputs[0];
    const ValueId y = node.outputs[0];
    const Value& yi = graph_.values[y];
    const int64_t n = NumElements(yi.shape);
    switch (node.op) {
      case OpKind::kConv:
      case OpKind::kDense:
        return AddConv(id, node);
      case OpKind::kAdd: {
        const auto p = std::get<engine::AddParams>(node.params);
        const ValueId b = node.inputs[1];
        std::shared_ptr<Tensor> tmp;
        Layout target = layout_[x];
        if (layout_[b] != target && LayoutMatters(yi)) {
          // Bring b into a's layout.
          tmp = std::make_shared<Tensor>();
          VTASERVE_ASSIGN_OR_RETURN(*tmp, Tensor::Create(yi.dtype, yi.shape));
        }
        layout_[y] = target;
        const Chw d = ChwOf(yi);
        const Strides bs = StridesOf(b);
        const Strides ts = MakeStrides(target, d.c, d.h, d.w);
        steps_.push_back(
            {id, [this, p, x, b, y, n, tmp, d, bs, ts](double& tr) {
               const int8_t* pb = reinterpret_cast<const int8_t*>(ptr_[b]);
               if (tmp != nullptr) {
                 const absl::Time t0 = absl::Now();
                 uint8_t* dst = tmp->bytes();
                 pool_->ParallelFor(d.h, [&](int64_t s, int64_t e) {
                   Relayout(ptr_[b], bs, dst, ts, d.c, d.w, 1, s, e);
                 });
                 pb = reinterpret_cast<const int8_t*>(dst);
                 tr += absl::ToDoubleSeconds(absl::Now() - t0);
               }
               const int8_t* pa = reinterpret_cast<const int8_t*>(ptr_[x]);
               int8_t* py = reinterpret_cast<int8_t*>(Out(y));
               const auto add = avx2_ ? &AddS8Avx2 : &AddS8;
               pool_->ParallelFor(
                   n, [&](int64_t s, int64_t e) { add(p, pa, pb, py, s, e); },
                   kElementGrain);
             }});
        return absl::OkStatus();
      }
      case OpKind::kMaxPool: {
        const auto p = std::get<engine::PoolParams>(node.params);
        const Chw in = ChwOf(graph_.values[x]);
        const Chw out = ChwOf(yi);
        const PoolShape shape{in.c, in.h, in.w, out.h, out.w};
        const Strides xs = StridesOf(x);
        layout_[y] = Layout::kNhwc;
        steps_.push_back(
            {id, [this, p, shape, xs, x, y](double&) {
               const int8_t* px = reinterpret_cast<const int8_t*>(ptr_[x]);
               int8_t* py = reinterpret_cast<int8_t*>(Out(y));
               const auto pool = avx2_ ? &MaxPoolS8Avx2 : &MaxPoolS8;
               pool_->ParallelFor(shape.out_h, [&](int64_t b, int64_t e) {
                 pool(p, shape, px, xs, py, b, e);
               });
             }});
        return absl::OkStatus();
      }
      case OpKind::kGlobalAvgPool: {
        const auto p = std::get<engine::GapParams>(node.params);
        const Chw in = ChwOf(graph_.values[x]);
        const Strides xs = StridesOf(x);
        steps_.push_back(
            {id, [this, p, in, xs, x, y](double&) {
               const int8_t* px = reinterpret_cast<const int8_t*>(ptr_[x]);
               int8_t* py = reinterpret_cast<int8_t*>(Out(y));
               pool_->ParallelFor(
                   in.c,
                   [&](int64_t b, int64_t e) {
                     GlobalAvgPoolS8(p, in.c, in.h, in.w, px, xs, py, b, e);
                   },
                   std::max<int64_t>(
                       1, kElementGrain / std::max<int64_t>(1, in.h * in.w)));
             }});
        return absl::OkStatus();
      }
      case OpKind::kRelu: {
        const int32_t zp = std::get<engine::ReluParams>(node.params).zero_point;
        layout_[y] = layout_[x];
        AddElementwise(id, n, [this, zp, x, y](int64_t b, int64_t e) {
          ReluS8(zp, reinterpret_cast<const int8_t*>(ptr_[x]),
                 reinterpret_cast<int8_t*>(Out(y)), b, e);
        });
        return absl::OkStatus();
      }
      case OpKind::kCast: {
        layout_[y] = layout_[x];
        AddElementwise(id, n, [this, x, y](int64_t b, int64_t e) {
          CastU8S8(ptr_[x], Out(y), b, e);
        });
        return absl::OkStatus();
      }
      case OpKind::kQuantize: {
        const auto p = std::get<engine::QuantizeParams>(node.params);
        layout_[y] = layout_[x];
        const auto quantize = avx2_ ? &QuantizeF32ToS8Avx2 : &QuantizeF32ToS8;
        AddElementwise(id, n, [this, p, x, y, quantize](int64_t b, int64_t e) {
          quantize(p, reinterpret_cast<const float*>(ptr_[x]),
                   reinterpret_cast<int8_t*>(Out(y)), b, e);
        });
        return absl::OkStatus();
      }
      case OpKind::kDequantize: {
        const auto p = std::get<engine::QuantizeParams>(node.params);
        layout_[y] = layout_[x];
        AddElementwise(id, n, [this, p, x, y](int64_t b, int64_t e) {
          DequantizeS8ToF32(p, reinterpret_cast<const int8_t*>(ptr_[x]),
                            reinterpret_cast<float*>(Out(y)), b, e);
        });
        return absl::OkStatus();
      }
      case OpKind::kReshape: {
        VTASERVE_ASSIGN_OR_RETURN(auto read, CanonicalReader(x));
        const size_t bytes = storage_[y].byte_size();
        steps_.push_back({id, [this, read, y, bytes](double& tr) {
                            std::memcpy(Out(y), read(tr), bytes);
                          }});
        return absl::OkStatus();
      }
      case OpKind::kSoftmax: {
        VTASERVE_ASSIGN_OR_RETURN(auto read, CanonicalReader(x));
        const int64_t len = yi.shape.back();
        const int64_t rows = n / std::max<int64_t>(len, 1);
        steps_.push_back({id, [this, read, y, len, rows](double& tr) {
                            const float* px =
                                reinterpret_cast<const float*>(read(tr));
                            float* py = reinterpret_cast<float*>(Out(y));
                            pool_->ParallelFor(rows, [&](int64_t b, int64_t e) {
                              SoftmaxF32(px, py, len, b, e);
                            });
                          }});
        return absl::OkStatus();
      }
    }
    return absl::UnimplementedError(
        absl::StrCat("cpu: no kernel for node ", node.name));
  }

  struct ConvState {
    PackedConv pc;
    ConvKernelFn kernel = nullptr;
  };

  ModelGraph graph_;
  std::shared_ptr<ThreadPool> pool_;
  CpuIsa isa_;
  // The elementwise and pooling kernels' AVX2 variants (every isa but
  // kScalar implies AVX2; Compile checks the CPU supports isa_).
  bool avx2_;
  std::vector<Tensor> storage_;      // per value; empty for graph inputs
  std::vector<const uint8_t*> ptr_;  // per value: where its data is now
  std::vector<Layout> layout_;       // per value
  std::vector<Step> steps_;
  int convs_ = 0;
  // Shared by every conv step (see AddConv).
  int64_t conv_buffer_bytes_ = 0, transformed_bytes_ = 0;
  Tensor conv_buffer_, transformed_buffer_;
};

class CpuBackend : public engine::Backend {
 public:
  explicit CpuBackend(const CpuOptions& options)
      : options_(options),
        pool_(std::make_shared<ThreadPool>(options.threads)) {}

  absl::string_view Name() const override { return "cpu"; }

  absl::Status Supports(const ModelGraph& graph,
                        const Node& node) const override {
    for (const std::vector<ValueId>* ids : {&node.inputs, &node.outputs}) {
      for (ValueId v : *ids) {
        if (v < 0 || v >= static_cast<ValueId>(graph.values.size())) {
          return absl::InvalidArgumentError("value id out of range");
        }
        const Value& info = graph.values[v];
        if (!info.shape.empty() && info.shape[0] != 1) {
          return absl::UnimplementedError(
              absl::StrCat("cpu: node ", node.name, " has batch ",
                           info.shape[0], " (graphs run one image at a time)"));
        }
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<engine::CompiledModel>> Compile(
      const ModelGraph& graph, const engine::BackendOptions& options) override {
    VTASERVE_ASSIGN_OR_RETURN(std::shared_ptr<ThreadPool> pool,
                              PoolFor(options));
    VTASERVE_RETURN_IF_ERROR(graph.Validate());
    for (const Node& node : graph.nodes) {
      VTASERVE_RETURN_IF_ERROR(Supports(graph, node));
    }
    CpuIsa isa = options_.isa;
    if (isa == CpuIsa::kAuto) isa = BestCpuIsa();
    if (!CpuSupports(isa)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cpu: isa ", CpuIsaName(isa), " requested but this CPU lacks it"));
    }
    auto model =
        std::make_unique<CpuCompiledModel>(graph, std::move(pool), isa);
    VTASERVE_RETURN_IF_ERROR(model->Build());
    return model;
  }

  absl::StatusOr<engine::NodeCost> EstimateCost(
      const ModelGraph& graph, NodeId node,
      const engine::BackendOptions& options) override {
    if (node < 0 || node >= static_cast<NodeId>(graph.nodes.size())) {
      return absl::InvalidArgumentError("node id out of range");
    }
    const NodeId ids[] = {node};
    engine::Subgraph sub = engine::ExtractSubgraph(graph, ids);
    VTASERVE_ASSIGN_OR_RETURN(auto model, Compile(sub.graph, options));
    std::vector<Tensor> ins, outs;
    for (ValueId v : sub.graph.inputs) {
      const Value& info = sub.graph.values[v];
      VTASERVE_ASSIGN_OR_RETURN(Tensor t,
                                Tensor::Create(info.dtype, info.shape));
      ins.push_back(std::move(t));
    }
    for (ValueId v : sub.graph.outputs) {
      const Value& info = sub.graph.values[v];
      VTASERVE_ASSIGN_OR_RETURN(Tensor t,
                                Tensor::Create(info.dtype, info.shape));
      outs.push_back(std::move(t));
    }
    std::vector<const Tensor*> in_ptrs;
    std::vector<Tensor*> out_ptrs;
    for (Tensor& t : ins) in_ptrs.push_back(&t);
    for (Tensor& t : outs) out_ptrs.push_back(&t);
    const int runs = std::max(options_.cost_runs, 1);
    std::vector<double> seconds;
    for (int r = 0; r <= runs; ++r) {
      const absl::Time start = absl::Now();
      VTASERVE_RETURN_IF_ERROR(
          model->Execute(engine::ExecutionContext{}, in_ptrs, out_ptrs));
      if (r > 0) seconds.push_back(absl::ToDoubleSeconds(absl::Now() - start));
    }
    std::sort(seconds.begin(), seconds.end());
    engine::NodeCost cost;
    cost.seconds = seconds[seconds.size() / 2];
    cost.strategy = "cpu";
    cost.detail = absl::StrCat(model->Describe(), "; measured median of ", runs,
                               " runs: ", cost.seconds * 1e6, " us");
    return cost;
  }

 private:
  // The pool a model runs on: the option "cpu_threads" (model config field
  // cpu_threads; absent or 0: the backend's) sizes its own arena, made once
  // per size and shared by the models asking for it. InvalidArgument naming
  // the field for anything but an integer in [0, kMaxThreads].
  absl::StatusOr<std::shared_ptr<ThreadPool>> PoolFor(
      const engine::BackendOptions& options) {
    auto it = options.find("cpu_threads");
    if (it == options.end()) return pool_;
    int threads = 0;
    if (!absl::SimpleAtoi(it->second, &threads) || threads < 0 ||
        threads > kMaxThreads) {
      return absl::InvalidArgumentError(
          absl::StrCat("field 'cpu_threads': \"", it->second,
                       "\" is not an integer in [0, ", kMaxThreads, "]"));
    }
    if (threads == 0 || threads == pool_->num_threads()) return pool_;
    std::lock_guard<std::mutex> lock(mu_);
    std::shared_ptr<ThreadPool>& pool = pools_[threads];
    if (pool == nullptr) pool = std::make_shared<ThreadPool>(threads);
    return pool;
  }

  static constexpr int kMaxThreads = 1024;

  CpuOptions options_;
  std::shared_ptr<ThreadPool> pool_;
  std::mutex mu_;
  // Pools of other sizes, by thread count (guarded by mu_).
  std::map<int, std::shared_ptr<ThreadPool>> pools_;
};

}  // namespace

std::unique_ptr<engine::Backend> CreateCpuBackend(const CpuOptions& options) {
  return std::make_unique<CpuBackend>(options);
}

}  // namespace vtaserve::cpu
