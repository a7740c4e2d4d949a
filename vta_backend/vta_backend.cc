#include "vta_backend/vta_backend.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/common/status_macros.h"
#include "vta_backend/compiler/graph_compiler.h"
#include "vta_backend/config.h"
#include "vta_backend/sim/sim_device.h"

namespace vtaserve::vta {
namespace {

compiler::CompilerOptions ToCompilerOptions(const VtaOptions& o,
                                            const engine::BackendOptions& b) {
  compiler::CompilerOptions c;
  c.run_timeout = o.run_timeout;
  auto it = b.find("first_conv");
  if (it != b.end()) c.first_conv = it->second;
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

  absl::Status Supports(const engine::ModelGraph& graph,
                        const engine::Node& node) const override {
    return compiler::CheckNodeSupported(config_, graph, node,
                                        ToCompilerOptions(options_, {}));
  }

  absl::StatusOr<std::unique_ptr<engine::CompiledModel>> Compile(
      const engine::ModelGraph& graph,
      const engine::BackendOptions& options) override {
    VTASERVE_ASSIGN_OR_RETURN(
        auto compiled,
        compiler::CompiledGraph::Compile(device_, config_, graph,
                                         ToCompilerOptions(options_, options)));
    return std::unique_ptr<engine::CompiledModel>(
        new VtaCompiledModel(std::move(compiled)));
  }

  absl::StatusOr<engine::NodeCost> EstimateCost(
      const engine::ModelGraph& graph, engine::NodeId node,
      const engine::BackendOptions& options) override {
    VTASERVE_ASSIGN_OR_RETURN(
        compiler::NodeEstimate e,
        compiler::EstimateNode(config_, graph, node,
                               ToCompilerOptions(options_, options)));
    const double device_s = static_cast<double>(e.cycles) / (config_.clock_mhz * 1e6);
    const double host_s =
        static_cast<double>(e.host_bytes) / options_.host_transform_bytes_per_second;
    engine::NodeCost cost;
    cost.seconds = device_s + host_s;
    cost.strategy = "vta";
    cost.detail = absl::StrCat("modeled ", e.cycles, " cycles (", device_s * 1e3,
                               " ms) + host packing ", host_s * 1e3, " ms; ", e.plan);
    return cost;
  }

 private:
  const VtaOptions options_;
  const VtaConfig config_;
  std::shared_ptr<VtaDevice> device_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<engine::Backend>> CreateVtaBackend(
    const VtaOptions& options) {
  if (!(options.host_transform_bytes_per_second > 0) ||
      options.run_timeout <= absl::ZeroDuration() || options.device_memory_bytes == 0) {
    return absl::InvalidArgumentError("bad VtaOptions");
  }
  VTASERVE_ASSIGN_OR_RETURN(VtaConfig config, LoadVtaConfig(options.config));
  sim::SimOptions sim_options;
  sim_options.memory_bytes = options.device_memory_bytes;
  VTASERVE_ASSIGN_OR_RETURN(std::unique_ptr<sim::SimDevice> device,
                            sim::SimDevice::Create(config, sim_options));
  std::shared_ptr<VtaDevice> shared(std::move(device));
  return std::unique_ptr<engine::Backend>(new VtaBackend(options, config, shared));
}

}  // namespace vtaserve::vta
