#include "engine/reference_backend.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/common/status_macros.h"
#include "engine/reference_ops.h"

namespace vtaserve::engine {
namespace {

class ReferenceCompiledModel : public CompiledModel {
 public:
  explicit ReferenceCompiledModel(ModelGraph graph)
      : graph_(std::move(graph)) {}

  absl::Status Execute(const ExecutionContext& context,
                       absl::Span<const Tensor* const> inputs,
                       absl::Span<Tensor* const> outputs) override {
    std::vector<const Tensor*> table(graph_.values.size(), nullptr);
    std::vector<Tensor> owned(graph_.values.size());
    for (size_t i = 0; i < graph_.inputs.size(); ++i)
      table[graph_.inputs[i]] = inputs[i];
    for (size_t i = 0; i < graph_.outputs.size(); ++i)
      table[graph_.outputs[i]] = outputs[i];
    for (const Node& node : graph_.nodes) {
      VTASERVE_RETURN_IF_ERROR(context.CheckContinue());
      const absl::Time start = absl::Now();
      std::vector<const Tensor*> ins;
      for (ValueId v : node.inputs) ins.push_back(table[v]);
      std::vector<Tensor*> outs;
      for (ValueId v : node.outputs) {
        if (table[v] == nullptr) {
          const Value& info = graph_.value(v);
          VTASERVE_ASSIGN_OR_RETURN(owned[v],
                                    Tensor::Create(info.dtype, info.shape));
          table[v] = &owned[v];
        }
        outs.push_back(const_cast<Tensor*>(table[v]));
      }
      VTASERVE_RETURN_IF_ERROR(RunReferenceNode(graph_, node, ins, outs));
      if (context.profile != nullptr) {
        LayerTiming t;
        t.layer = node.name;
        t.op = node.op;
        t.device = "reference";
        t.wall_seconds = absl::ToDoubleSeconds(absl::Now() - start);
        context.profile->push_back(std::move(t));
      }
    }
    return absl::OkStatus();
  }

  std::string Describe() const override {
    return absl::StrCat("reference: ", graph_.nodes.size(), " nodes");
  }

 private:
  ModelGraph graph_;
};

class ReferenceBackend : public Backend {
 public:
  absl::string_view Name() const override { return "reference"; }
  absl::Status Supports(const ModelGraph&, const Node&) const override {
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<CompiledModel>> Compile(
      const ModelGraph& graph, const BackendOptions&) override {
    return std::make_unique<ReferenceCompiledModel>(graph);
  }
  absl::StatusOr<NodeCost> EstimateCost(const ModelGraph&, NodeId,
                                        const BackendOptions&) override {
    return absl::UnimplementedError("reference backend has no cost model");
  }
};

}  // namespace

std::unique_ptr<Backend> CreateReferenceBackend() {
  return std::make_unique<ReferenceBackend>();
}

}  // namespace vtaserve::engine
