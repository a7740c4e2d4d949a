#include "vta_backend/vta_backend.h"

#include <map>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "engine/common/status_macros.h"
#include "engine/executor.h"
#include "vta_backend/compiler/first_conv.h"
#include "vta_backend/compiler/graph_compiler.h"
#include "vta_backend/config.h"
#include "vta_backend/runtime/self_test.h"
#include "vta_backend/sim/sim_device.h"

namespace vtaserve::vta {
namespace {

compiler::CompilerOptions ToCompilerOptions(const VtaOptions& o,
                                            const engine::BackendOptions& b) {
  compiler::CompilerOptions c;
  c.run_timeout = o.run_timeout;
  auto it = b.find("first_conv");
  if (it != b.end()) c.first_conv = it->second;
  const std::string prefix = engine::kStrategyOptionPrefix;
  for (const auto& [key, value] : b) {
    if (key.rfind(prefix, 0) == 0)
      c.node_strategy[key.substr(prefix.size())] = value;
  }
  c.host_runner = o.host_runner.get();
  return c;
}

class VtaCompiledModel : public engine::CompiledModel {
 public:
  explicit VtaCompiledModel(std::unique_ptr<compiler::CompiledGraph> graph)
      : graph_(std::move(graph)) {}

  absl::Status Execute(const engine::ExecutionContext& context,
                       absl::Span<const Tensor* const> inputs,
                       absl::Span<Tensor* const> outputs) override {
    return graph_->Execute(context, inputs, outputs);
  }
  std::string Describe() const override { return graph_->Describe(); }

 private:
  std::unique_ptr<compiler::CompiledGraph> graph_;
};

class VtaBackend : public engine::Backend {
 public:
  VtaBackend(const VtaOptions& options, const VtaConfig& config,
             std::shared_ptr<VtaDevice> device)
      : options_(options), config_(config), device_(std::move(device)) {}

  absl::string_view Name() const override { return "vta"; }

  // A small GEMM + ALU program with a known result on the device
  // (runtime/self_test.h).
  absl::Status SelfTest() override {
    return RunDeviceSelfTest(*device_, config_, options_.run_timeout);
  }

  absl::Status Supports(const engine::ModelGraph& graph,
                        const engine::Node& node) const override {
    return compiler::CheckNodeSupported(config_, graph, node,
                                        ToCompilerOptions(options_, {}));
  }

  absl::StatusOr<std::unique_ptr<engine::CompiledModel>> Compile(
      const engine::ModelGraph& graph,
      const engine::BackendOptions& options) override {
    VTASERVE_ASSIGN_OR_RETURN(Target target, TargetFor(options));
    VTASERVE_ASSIGN_OR_RETURN(
        auto compiled,
        compiler::CompiledGraph::Compile(target.device, target.config, graph,
                                         ToCompilerOptions(options_, options)));
    return std::unique_ptr<engine::CompiledModel>(
        new VtaCompiledModel(std::move(compiled)));
  }

  absl::StatusOr<engine::NodeCost> EstimateCost(
      const engine::ModelGraph& graph, engine::NodeId node,
      const engine::BackendOptions& options) override {
    VTASERVE_ASSIGN_OR_RETURN(Target target, TargetFor(options));
    const VtaConfig& config = target.config;
    if (node >= 0 && static_cast<size_t>(node) < graph.nodes.size() &&
        compiler::NeedsFirstConvStrategy(config, graph.nodes[node])) {
      return EstimateFirstConvCost(config, graph, node, options);
    }
    VTASERVE_ASSIGN_OR_RETURN(
        compiler::NodeEstimate e,
        compiler::EstimateNode(config, graph, node,
                               ToCompilerOptions(options_, options)));
    const double device_s =
        static_cast<double>(e.cycles) / (config.clock_mhz * 1e6);
    const double host_s = static_cast<double>(e.host_bytes) /
                          options_.host_transform_bytes_per_second;
    engine::NodeCost cost;
    cost.seconds = device_s + host_s;
    cost.strategy = "vta";
    cost.detail =
        absl::StrCat("modeled ", e.cycles, " cycles (", device_s * 1e3,
                     " ms) + host packing ", host_s * 1e3, " ms; ", e.plan);
    return cost;
  }

 private:
  // The configuration and device a model compiles for.
  struct Target {
    VtaConfig config;
    std::shared_ptr<VtaDevice> device;
  };

  // The model's "vta_config" option (a preset name or a vta_config.json
  // path; absent or empty: the backend's). A configuration with other
  // hardware parameters than the backend's gets its own simulator, made once
  // per configuration and shared by the models naming it. A device from
  // VtaOptions::device_factory (a board: its bitstream fixes the
  // configuration) accepts only its own. InvalidArgument naming the field
  // otherwise.
  absl::StatusOr<Target> TargetFor(const engine::BackendOptions& options) {
    auto it = options.find("vta_config");
    if (it == options.end() || it->second.empty()) {
      return Target{config_, device_};
    }
    absl::StatusOr<VtaConfig> loaded = LoadVtaConfig(it->second);
    if (!loaded.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("field 'vta_config': ", loaded.status().message()));
    }
    VtaConfig config = *std::move(loaded);
    if (options_.ext_im2col_load) config.ext_im2col_load = true;
    const std::string key = HardwareKey(config);
    if (key == HardwareKey(config_)) return Target{config_, device_};
    if (options_.device_factory) {
      return absl::InvalidArgumentError(absl::StrCat(
          "field 'vta_config': \"", it->second, "\" (", key,
          ") differs from the device's configuration ", HardwareKey(config_),
          ", which its bitstream fixes; remove the field or name the "
          "device's configuration"));
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto found = extra_.find(key);
    if (found != extra_.end()) return found->second;
    sim::SimOptions sim_options;
    sim_options.memory_bytes = options_.device_memory_bytes;
    if (options_.simulator_uses_host_runner)
      sim_options.runner = options_.host_runner;
    auto sim = sim::SimDevice::Create(config, sim_options);
    if (!sim.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("field 'vta_config': ", sim.status().message()));
    }
    std::shared_ptr<VtaDevice> device = *std::move(sim);
    Target target{config, std::move(device)};
    extra_.emplace(key, target);
    return target;
  }

  // What tells two configurations' devices apart: the bitstream's
  // parameters, the target (clock, bus, cost constants) and its version.
  static std::string HardwareKey(const VtaConfig& c) {
    return absl::StrCat(c.target, "/", c.hw_ver, "/", c.BitstreamName(),
                        c.ext_im2col_load ? "/im2col-load" : "");
  }

  // Every first-conv strategy allowed by "strategy:<node>" (all of them
  // when absent or not a VTA strategy): modeled device time at the config's
  // clock plus the measured host transform and copies; the cheapest wins.
  absl::StatusOr<engine::NodeCost> EstimateFirstConvCost(
      const VtaConfig& config, const engine::ModelGraph& graph,
      engine::NodeId node, const engine::BackendOptions& options) {
    const engine::Node& n = graph.nodes[node];
    VTASERVE_RETURN_IF_ERROR(compiler::CheckNodeSupported(
        config, graph, n, ToCompilerOptions(options_, options)));
    std::string requested;
    auto it = options.find(absl::StrCat(engine::kStrategyOptionPrefix, n.name));
    if (it != options.end() && it->second.rfind("vta_", 0) == 0)
      requested = it->second;
    VTASERVE_ASSIGN_OR_RETURN(
        std::vector<compiler::FirstConvStrategy> candidates,
        compiler::CandidateStrategies(requested));
    const std::vector<compiler::FirstConvEstimate> estimates =
        compiler::EstimateFirstConv(config, graph, node, candidates,
                                    options_.host_runner.get(),
                                    options_.host_timing_runs);
    const compiler::FirstConvEstimate* best = nullptr;
    double best_seconds = 0.0;
    std::vector<std::string> lines;
    for (const compiler::FirstConvEstimate& e : estimates) {
      const absl::string_view name =
          compiler::FirstConvStrategyName(e.strategy);
      if (!e.status.ok()) {
        lines.push_back(absl::StrCat(name, ": n/a (", e.status.message(), ")"));
        continue;
      }
      const double device_s = e.device_seconds(config);
      const double seconds = device_s + e.host_seconds;
      lines.push_back(absl::StrFormat(
          "%s: %.4f ms = modeled %d cycles (GEMM %d) at %g MHz %.4f ms + host "
          "transform/copy %.4f ms (measured, %d B image)",
          name, seconds * 1e3, e.cycles, e.gemm_uops, config.clock_mhz,
          device_s * 1e3, e.host_seconds * 1e3, e.image_bytes));
      if (best == nullptr || seconds < best_seconds) {
        best = &e;
        best_seconds = seconds;
      }
    }
    if (best == nullptr) {
      return absl::UnimplementedError(absl::StrCat(
          "VTA cannot run node ", n.name, ": ", absl::StrJoin(lines, "; ")));
    }
    engine::NodeCost cost;
    cost.seconds = best_seconds;
    cost.strategy =
        std::string(compiler::FirstConvStrategyName(best->strategy));
    cost.detail = absl::StrCat("best ", cost.strategy, " of [",
                               absl::StrJoin(lines, "; "), "]; ", best->plan);
    return cost;
  }

  const VtaOptions options_;
  const VtaConfig config_;
  std::shared_ptr<VtaDevice> device_;
  std::mutex mu_;
  // Simulators of other configurations, by HardwareKey (guarded by mu_).
  std::map<std::string, Target> extra_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<engine::Backend>> CreateVtaBackend(
    const VtaOptions& options) {
  if (!(options.host_transform_bytes_per_second > 0) ||
      options.host_timing_runs < 0 ||
      options.run_timeout <= absl::ZeroDuration() ||
      options.device_memory_bytes == 0) {
    return absl::InvalidArgumentError("bad VtaOptions");
  }
  VTASERVE_ASSIGN_OR_RETURN(VtaConfig config, LoadVtaConfig(options.config));
  if (options.ext_im2col_load) config.ext_im2col_load = true;
  std::shared_ptr<VtaDevice> device;
  if (options.device_factory) {
    VTASERVE_ASSIGN_OR_RETURN(device, options.device_factory(config));
    if (device == nullptr) {
      return absl::InternalError("VTA device factory returned no device");
    }
  } else {
    sim::SimOptions sim_options;
    sim_options.memory_bytes = options.device_memory_bytes;
    if (options.simulator_uses_host_runner)
      sim_options.runner = options.host_runner;
    VTASERVE_ASSIGN_OR_RETURN(device,
                              sim::SimDevice::Create(config, sim_options));
  }
  return std::unique_ptr<engine::Backend>(
      new VtaBackend(options, config, std::move(device)));
}

}  // namespace vtaserve::vta
