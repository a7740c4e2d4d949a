#include "vta_backend/compiler/graph_compiler.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "engine/common/status_macros.h"
#include "vta_backend/compiler/first_conv.h"
#include "vta_backend/compiler/node_layers.h"

namespace vtaserve::vta::compiler {
namespace {

using engine::AddParams;
using engine::ConvParams;
using engine::ModelGraph;
using engine::Node;
using engine::NodeId;
using engine::OpKind;
using engine::ValueId;

std::vector<int8_t> PackConvWeights(const VtaConfig& c, const ConvParams& p,
                                    int ci_blocks, int co_blocks) {
  const int bi = c.BlockIn(), bo = c.BlockOut();
  const int kk = p.kernel_h * p.kernel_w;
  std::vector<int8_t> w(size_t{1} * co_blocks * ci_blocks * kk * bo * bi, 0);
  for (int oc = 0; oc < p.out_channels; ++oc) {
    for (int ic = 0; ic < p.in_channels; ++ic) {
      for (int k = 0; k < kk; ++k) {
        const size_t elem =
            (size_t{1} * (oc / bo) * ci_blocks + ic / bi) * kk + k;
        w[elem * bo * bi + (oc % bo) * bi + ic % bi] =
            p.weights[(size_t{1} * oc * p.in_channels + ic) * kk + k];
      }
    }
  }
  return w;
}

std::vector<int32_t> PackConvBias(const ConvParams& p, int co_blocks, int bo,
                                  bool zp_folded) {
  std::vector<int32_t> b(size_t{1} * co_blocks * bo, 0);
  for (int c = 0; c < p.out_channels; ++c) {
    int64_t v = p.bias[c];
    if (zp_folded)
      v += int64_t{p.output_zero_point} * (int64_t{1} << p.shift[c]);
    b[c] = static_cast<int32_t>(v);
  }
  return b;
}

}  // namespace

// ------------------------------------------------------------ compiled ----

struct CompiledGraph::ValueBuffer {
  ActivationLayout layout;
  DeviceBuffer buffer;
  int32_t border_value = 0;
  bool graph_input = false;
  bool graph_output = false;
  int input_index = -1;         // in graph.inputs
  int output_index = -1;        // in graph.outputs
  std::vector<int8_t> staging;  // host image (inputs: border pre-filled)
};

struct CompiledGraph::Layer {
  NodeId node = 0;
  std::optional<LoadedProgram> program;
  int64_t macs = 0;
  // First-conv strategies (first_conv.h): the plan, the layer's own input
  // image buffer and its host staging.
  std::optional<FirstConvPlan> first_conv;
  DeviceBuffer first_conv_input;
  std::vector<int8_t> first_conv_staging;
};

CompiledGraph::~CompiledGraph() {
  layers_.clear();  // LoadedPrograms free their buffers first
  if (device_ != nullptr) {
    for (const DeviceBuffer& b : owned_) device_->FreeBuffer(b).IgnoreError();
  }
}

absl::StatusOr<std::unique_ptr<CompiledGraph>> CompiledGraph::Compile(
    std::shared_ptr<VtaDevice> device, const VtaConfig& config,
    const ModelGraph& graph, const CompilerOptions& options) {
  if (device == nullptr) return absl::FailedPreconditionError("no VTA device");
  std::unique_ptr<CompiledGraph> cg(new CompiledGraph());
  cg->device_ = std::move(device);
  cg->config_ = config;
  cg->graph_ = graph;
  cg->options_ = options;
  const ModelGraph& g = cg->graph_;
  for (const Node& n : g.nodes) {
    VTASERVE_RETURN_IF_ERROR(CheckNodeSupported(config, g, n, options));
  }
  VtaDevice& dev = *cg->device_;
  auto alloc = [&](size_t bytes) -> absl::StatusOr<DeviceBuffer> {
    VTASERVE_ASSIGN_OR_RETURN(DeviceBuffer b,
                              dev.AllocBuffer(std::max<size_t>(bytes, 64)));
    cg->owned_.push_back(b);
    return b;
  };
  const int lanes = config.BlockOut();

  // Activation layouts: border = the largest pad of any consumer; border
  // value = the consumers' input zero point.
  cg->values_.resize(g.values.size());
  for (size_t v = 0; v < g.values.size(); ++v) {
    const engine::Value& val = g.values[v];
    bool used = false;
    int border = 0;
    int32_t zp = val.zero_point;
    int min_blocks = 0;
    for (const Node& n : g.nodes) {
      const bool reads = std::find(n.inputs.begin(), n.inputs.end(),
                                   ValueId(v)) != n.inputs.end();
      const bool writes = !n.outputs.empty() && n.outputs[0] == ValueId(v);
      used |= reads || writes;
      if (reads && n.op == OpKind::kConv &&
          !NeedsFirstConvStrategy(config, n)) {
        const auto& p = std::get<ConvParams>(n.params);
        if (MaxPad(p) > 0) {
          border = std::max(border, MaxPad(p));
          zp = p.input_zero_point;
        }
      }
      if (writes && (n.op == OpKind::kConv || n.op == OpKind::kDense)) {
        const auto& p = std::get<ConvParams>(n.params);
        const int64_t pixels =
            val.shape.size() == 4 ? val.shape[2] * val.shape[3] : 1;
        min_blocks = ConvOutBlocks(p, lanes, pixels);
      }
    }
    if (!used) continue;
    auto vb = std::make_unique<ValueBuffer>();
    vb->layout = LayoutFor(val, lanes, border, min_blocks);
    vb->border_value = std::clamp(zp, -128, 127);
    for (size_t i = 0; i < g.inputs.size(); ++i) {
      if (g.inputs[i] == ValueId(v)) {
        vb->graph_input = true;
        vb->input_index = static_cast<int>(i);
      }
    }
    for (size_t i = 0; i < g.outputs.size(); ++i) {
      if (g.outputs[i] == ValueId(v)) {
        vb->graph_output = true;
        vb->output_index = static_cast<int>(i);
      }
    }
    const size_t bytes = static_cast<size_t>(vb->layout.Elems()) * lanes;
    VTASERVE_ASSIGN_OR_RETURN(vb->buffer, alloc(bytes));
    vb->staging.assign(bytes, static_cast<int8_t>(vb->border_value));
    VTASERVE_RETURN_IF_ERROR(dev.CopyToDevice(
        vb->buffer, 0,
        absl::MakeConstSpan(
            reinterpret_cast<const uint8_t*>(vb->staging.data()), bytes)));
    if (!vb->graph_input) vb->staging.clear();
    cg->values_[v] = std::move(vb);
  }

  auto elem_addr = [&](const DeviceBuffer& b, isa::MemoryType t) {
    return CommandQueue::DramElemAddr(config, b, t, 0);
  };
  for (size_t id = 0; id < g.nodes.size(); ++id) {
    const Node& n = g.nodes[id];
    VTASERVE_ASSIGN_OR_RETURN(CommandQueue q, CommandQueue::Create(config));
    std::string plan;
    std::optional<FirstConvPlan> first_conv_plan;
    DeviceBuffer first_conv_input;
    std::vector<int8_t> first_conv_staging;
    if (n.op == OpKind::kAdd) {
      const ValueBuffer& a = *cg->values_[n.inputs[0]];
      const ValueBuffer& b = *cg->values_[n.inputs[1]];
      const ValueBuffer& y = *cg->values_[n.outputs[0]];
      AddLayer layer = MakeAddLayer(config, g, n, a.layout.border,
                                    b.layout.border, y.layout.border);
      layer.a = a.layout;
      layer.b = b.layout;
      layer.out = y.layout;
      VTASERVE_ASSIGN_OR_RETURN(AddTiling t, PlanAdd(config, layer));
      const std::vector<int8_t> w = PackAddWeights(config, layer);
      VTASERVE_ASSIGN_OR_RETURN(DeviceBuffer wb, alloc(w.size()));
      VTASERVE_RETURN_IF_ERROR(dev.CopyToDevice(
          wb, 0,
          absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(w.data()),
                              w.size())));
      AddAddrs addrs;
      VTASERVE_ASSIGN_OR_RETURN(addrs.a,
                                elem_addr(a.buffer, isa::MemoryType::kInp));
      VTASERVE_ASSIGN_OR_RETURN(addrs.b,
                                elem_addr(b.buffer, isa::MemoryType::kInp));
      VTASERVE_ASSIGN_OR_RETURN(addrs.wgt,
                                elem_addr(wb, isa::MemoryType::kWgt));
      VTASERVE_ASSIGN_OR_RETURN(addrs.out,
                                elem_addr(y.buffer, isa::MemoryType::kOut));
      VTASERVE_RETURN_IF_ERROR(EmitAdd(q, layer, t, addrs));
      plan = absl::StrCat("add c", t.c_t, " h", t.h_t, " est ", t.est_cycles,
                          " cycles");
    } else {
      const auto& p = std::get<ConvParams>(n.params);
      const ValueBuffer& x = *cg->values_[n.inputs[0]];
      const ValueBuffer& y = *cg->values_[n.outputs[0]];
      ConvLayer layer;
      std::vector<int8_t> w;
      std::vector<int32_t> bias;
      DeviceBuffer inp_buffer = x.buffer;
      isa::MemoryType inp_type = isa::MemoryType::kInp;
      if (NeedsFirstConvStrategy(config, n)) {
        VTASERVE_ASSIGN_OR_RETURN(
            FirstConvStrategy s,
            SelectFirstConvStrategy(config, g, n, options));
        VTASERVE_ASSIGN_OR_RETURN(
            FirstConvPlan fp, PlanFirstConv(config, p, x.layout.h, x.layout.w,
                                            y.layout.h, y.layout.w, s));
        layer = MakeFirstConvLayer(config, fp, y.layout);
        w = PackFirstConvWeights(config, fp, layer.out.blocks);
        bias = PackFirstConvBias(config, fp, layer.out.blocks);
        const size_t image_bytes = static_cast<size_t>(fp.ImageBytes());
        if (fp.device_gather) inp_type = isa::MemoryType::kInpIm2col;
        VTASERVE_ASSIGN_OR_RETURN(inp_buffer, alloc(image_bytes));
        first_conv_staging.assign(image_bytes, 0);
        first_conv_input = inp_buffer;
        plan = absl::StrCat(
            FirstConvStrategyName(s), fp.bias_in_gemm ? " (bias in GEMM)" : "",
            fp.device_gather ? " (device im2col gather)" : "", " ");
        first_conv_plan.emplace(std::move(fp));
      } else {
        layer = MakeConvLayer(config, g, n, x.layout.border, y.layout.border);
        layer.in = x.layout;
        layer.out = y.layout;
        w = PackConvWeights(config, p, layer.in.blocks, layer.out.blocks);
        bias = PackConvBias(p, layer.out.blocks, config.BlockOut(),
                            layer.zp_folded);
      }
      VTASERVE_ASSIGN_OR_RETURN(ConvTiling t, PlanConv(config, layer));
      VTASERVE_ASSIGN_OR_RETURN(DeviceBuffer wb, alloc(w.size()));
      VTASERVE_RETURN_IF_ERROR(dev.CopyToDevice(
          wb, 0,
          absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(w.data()),
                              w.size())));
      VTASERVE_ASSIGN_OR_RETURN(DeviceBuffer bb, alloc(bias.size() * 4));
      std::vector<uint8_t> bias_bytes(bias.size() * 4);
      for (size_t i = 0; i < bias.size(); ++i) {
        const uint32_t u = static_cast<uint32_t>(bias[i]);
        for (int k = 0; k < 4; ++k)
          bias_bytes[4 * i + k] = static_cast<uint8_t>(u >> (8 * k));
      }
      VTASERVE_RETURN_IF_ERROR(dev.CopyToDevice(bb, 0, bias_bytes));
      ConvAddrs addrs;
      VTASERVE_ASSIGN_OR_RETURN(addrs.inp, elem_addr(inp_buffer, inp_type));
      VTASERVE_ASSIGN_OR_RETURN(addrs.wgt,
                                elem_addr(wb, isa::MemoryType::kWgt));
      VTASERVE_ASSIGN_OR_RETURN(addrs.bias,
                                elem_addr(bb, isa::MemoryType::kAcc));
      VTASERVE_ASSIGN_OR_RETURN(addrs.out,
                                elem_addr(y.buffer, isa::MemoryType::kOut));
      VTASERVE_RETURN_IF_ERROR(EmitConv(q, layer, t, addrs));
      plan += t.ToString();
    }
    auto program = q.Finalize();
    if (!program.ok()) {
      return absl::InternalError(
          absl::StrCat("node ", n.name, ": ", program.status().message()));
    }
    auto loaded = LoadedProgram::Upload(dev, config, *program);
    if (!loaded.ok()) {
      return absl::Status(
          loaded.status().code(),
          absl::StrCat("node ", n.name, ": ", loaded.status().message()));
    }
    auto layer = std::make_unique<Layer>();
    layer->node = static_cast<NodeId>(id);
    layer->program.emplace(*std::move(loaded));
    layer->macs = g.NodeMacs(static_cast<NodeId>(id));
    layer->first_conv = std::move(first_conv_plan);
    layer->first_conv_input = first_conv_input;
    layer->first_conv_staging = std::move(first_conv_staging);
    cg->layers_.push_back(std::move(layer));
    cg->plans_.push_back(absl::StrCat(n.name, ": ", plan, ", ",
                                      program->insns.size(), " insns"));
  }
  return cg;
}

absl::Status CompiledGraph::Execute(const engine::ExecutionContext& context,
                                    absl::Span<const Tensor* const> inputs,
                                    absl::Span<Tensor* const> outputs) {
  const ModelGraph& g = graph_;
  if (inputs.size() != g.inputs.size() || outputs.size() != g.outputs.size()) {
    return absl::InvalidArgumentError("wrong number of inputs or outputs");
  }
  const int lanes = config_.BlockOut();
  std::vector<bool> uploaded(values_.size(), false);
  for (const auto& layer : layers_) {
    VTASERVE_RETURN_IF_ERROR(context.CheckContinue());
    const Node& n = g.nodes[layer->node];
    const absl::Time start = absl::Now();
    double host_seconds = 0.0;
    if (layer->first_conv.has_value()) {
      VTASERVE_ASSIGN_OR_RETURN(host_seconds,
                                PrepareFirstConvInput(*layer, inputs));
    }
    for (ValueId v : n.inputs) {
      ValueBuffer& vb = *values_[v];
      if (layer->first_conv.has_value()) continue;  // transformed above
      if (!vb.graph_input || uploaded[v]) continue;
      const absl::Time h0 = absl::Now();
      const Tensor& t = *inputs[vb.input_index];
      if (t.dtype() != DataType::kInt8 ||
          t.num_elements() !=
              int64_t{vb.layout.channels} * vb.layout.h * vb.layout.w) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input ", g.value(v).name, " does not match the graph"));
      }
      PackActivation(vb.layout, lanes, t.data<int8_t>(), vb.staging.data());
      VTASERVE_RETURN_IF_ERROR(device_->CopyToDevice(
          vb.buffer, 0,
          absl::MakeConstSpan(
              reinterpret_cast<const uint8_t*>(vb.staging.data()),
              vb.staging.size())));
      uploaded[v] = true;
      host_seconds += absl::ToDoubleSeconds(absl::Now() - h0);
    }
    auto stats = layer->program->Run(options_.run_timeout);
    if (!stats.ok()) {
      return absl::Status(
          stats.status().code(),
          absl::StrCat("VTA layer ", n.name, ": ", stats.status().message()));
    }
    for (ValueId v : n.outputs) {
      ValueBuffer& vb = *values_[v];
      if (!vb.graph_output) continue;
      const absl::Time h0 = absl::Now();
      Tensor& t = *outputs[vb.output_index];
      if (t.dtype() != DataType::kInt8 ||
          t.num_elements() !=
              int64_t{vb.layout.channels} * vb.layout.h * vb.layout.w) {
        return absl::InvalidArgumentError(absl::StrCat(
            "output ", g.value(v).name, " does not match the graph"));
      }
      std::vector<int8_t> image(static_cast<size_t>(vb.layout.Elems()) * lanes);
      VTASERVE_RETURN_IF_ERROR(device_->CopyFromDevice(
          vb.buffer, 0,
          absl::MakeSpan(reinterpret_cast<uint8_t*>(image.data()),
                         image.size())));
      UnpackActivation(vb.layout, lanes, image.data(), t.data<int8_t>());
      host_seconds += absl::ToDoubleSeconds(absl::Now() - h0);
    }
    if (context.profile != nullptr) {
      engine::LayerTiming lt;
      lt.layer = n.name;
      lt.op = n.op;
      lt.device = "vta";
      lt.wall_seconds = absl::ToDoubleSeconds(absl::Now() - start);
      lt.modeled_device_seconds = stats->device_seconds;
      lt.host_transform_seconds = host_seconds;
      const SimStats& s = stats->sim;
      lt.counters = {
          {"modeled_cycles", static_cast<double>(stats->cycles)},
          {"gemm_cycles", static_cast<double>(s.gemm_cycles)},
          {"alu_cycles", static_cast<double>(s.alu_cycles)},
          {"gemm_ops", static_cast<double>(s.gemm_counter)},
          {"alu_ops", static_cast<double>(s.alu_counter)},
          {"macs", static_cast<double>(layer->macs)},
          {"load_stall_cycles", static_cast<double>(s.load_stall_cycles)},
          {"compute_stall_cycles", static_cast<double>(s.compute_stall_cycles)},
          {"store_stall_cycles", static_cast<double>(s.store_stall_cycles)},
          {"insn_count", static_cast<double>(s.insn_count)},
          {"dram_bytes_uop", static_cast<double>(s.dram_bytes_by_type[0])},
          {"dram_bytes_wgt", static_cast<double>(s.dram_bytes_by_type[1])},
          {"dram_bytes_inp", static_cast<double>(s.dram_bytes_by_type[2])},
          {"dram_bytes_acc", static_cast<double>(s.dram_bytes_by_type[3])},
          {"dram_bytes_out", static_cast<double>(s.dram_bytes_by_type[4])},
      };
      context.profile->push_back(std::move(lt));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<double> CompiledGraph::PrepareFirstConvInput(
    Layer& layer, absl::Span<const Tensor* const> inputs) {
  const absl::Time h0 = absl::Now();
  const Node& n = graph_.nodes[layer.node];
  const ValueBuffer& vb = *values_[n.inputs[0]];
  const FirstConvPlan& plan = *layer.first_conv;
  const int64_t elems = int64_t{plan.in_channels} * plan.in_h * plan.in_w;
  std::vector<int8_t> produced;
  const int8_t* nchw = nullptr;
  if (vb.graph_input) {
    const Tensor& t = *inputs[vb.input_index];
    if (t.dtype() != DataType::kInt8 || t.num_elements() != elems) {
      return absl::InvalidArgumentError(
          absl::StrCat("input ", graph_.value(n.inputs[0]).name,
                       " does not match the graph"));
    }
    nchw = t.data<int8_t>();
  } else {
    // Produced by an earlier VTA layer of this partition: read it back.
    const int lanes = config_.BlockOut();
    std::vector<int8_t> image(static_cast<size_t>(vb.layout.Elems()) * lanes);
    VTASERVE_RETURN_IF_ERROR(device_->CopyFromDevice(
        vb.buffer, 0,
        absl::MakeSpan(reinterpret_cast<uint8_t*>(image.data()),
                       image.size())));
    produced.resize(static_cast<size_t>(elems));
    UnpackActivation(vb.layout, lanes, image.data(), produced.data());
    nchw = produced.data();
  }
  TransformFirstConvInput(plan, nchw, layer.first_conv_staging.data(),
                          options_.host_runner);
  VTASERVE_RETURN_IF_ERROR(device_->CopyToDevice(
      layer.first_conv_input, 0,
      absl::MakeConstSpan(
          reinterpret_cast<const uint8_t*>(layer.first_conv_staging.data()),
          layer.first_conv_staging.size())));
  return absl::ToDoubleSeconds(absl::Now() - h0);
}

std::string CompiledGraph::Describe() const {
  int conv = 0, dense = 0, add = 0;
  for (const Node& n : graph_.nodes) {
    conv += n.op == OpKind::kConv;
    dense += n.op == OpKind::kDense;
    add += n.op == OpKind::kAdd;
  }
  return absl::StrCat("vta: ", conv, " conv, ", dense, " dense, ", add,
                      " add on ", config_.BitstreamName(), " @ ",
                      config_.clock_mhz, " MHz");
}

}  // namespace vtaserve::vta::compiler
