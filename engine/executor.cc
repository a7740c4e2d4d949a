#include "engine/executor.h"

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "engine/common/status_macros.h"

namespace vtaserve::engine {

absl::Status ExecutionContext::CheckContinue() const {
  if (cancelled != nullptr && cancelled->load(std::memory_order_relaxed)) {
    return absl::CancelledError("execution cancelled");
  }
  if (deadline != absl::InfiniteFuture() && absl::Now() > deadline) {
    return absl::DeadlineExceededError("deadline exceeded during execution");
  }
  return absl::OkStatus();
}

absl::Status CheckTensorMatches(const Value& v, const Tensor& t,
                                bool any_batch) {
  if (t.dtype() != v.dtype) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", v.name, "': expected datatype ",
                     DataTypeName(v.dtype), ", got ", DataTypeName(t.dtype())));
  }
  bool ok = t.shape().size() == v.shape.size();
  for (size_t i = 0; ok && i < v.shape.size(); ++i) {
    if (i == 0 && any_batch) {
      ok = t.shape()[0] >= 1;
    } else {
      ok = t.shape()[i] == v.shape[i];
    }
  }
  if (!ok) {
    std::vector<std::string> dims;
    for (size_t i = 0; i < v.shape.size(); ++i) {
      dims.push_back(i == 0 && any_batch ? "N" : absl::StrCat(v.shape[i]));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor '", v.name, "': expected shape [", absl::StrJoin(dims, ","),
        "], got ", ShapeToString(t.shape())));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Executor>> Executor::Create(
    ModelGraph graph, const BackendRegistry& registry,
    const PlacementOptions& options) {
  VTASERVE_RETURN_IF_ERROR(graph.Validate());
  auto ex = std::unique_ptr<Executor>(new Executor());
  ex->graph_ = std::move(graph);
  const ModelGraph& g = ex->graph_;

  std::vector<Backend*> prefs;
  for (const std::string& name : options.preference) {
    if (Backend* b = registry.Find(name)) prefs.push_back(b);
  }
  if (prefs.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("none of the backends [",
                     absl::StrJoin(options.preference, ","), "] is available"));
  }
  std::vector<Backend*> chosen(g.nodes.size(), nullptr);
  BackendOptions compile_options = options.backend_options;
  NodeId first_conv = -1;
  for (size_t i = 0; i < g.nodes.size() && first_conv < 0; ++i) {
    if (g.nodes[i].op == OpKind::kConv) first_conv = static_cast<NodeId>(i);
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& node = g.nodes[i];
    NodePlacement pl;
    pl.node = node.name;
    pl.op = node.op;
    if (static_cast<NodeId>(i) == first_conv) {
      VTASERVE_ASSIGN_OR_RETURN(chosen[i],
                                PlaceFirstConv(g, first_conv, prefs, registry,
                                               options.backend_options, pl));
      compile_options[absl::StrCat(kStrategyOptionPrefix, node.name)] =
          pl.strategy;
      ex->placements_.push_back(std::move(pl));
      continue;
    }
    std::vector<std::string> declined;
    for (Backend* b : prefs) {
      absl::Status s = b->Supports(g, node);
      if (s.ok()) {
        chosen[i] = b;
        break;
      }
      declined.push_back(absl::StrCat(b->Name(), ": ", s.message()));
    }
    if (chosen[i] == nullptr) {
      return absl::UnimplementedError(absl::StrCat(
          "no backend can run node '", node.name, "' (", OpKindName(node.op),
          "): ", absl::StrJoin(declined, "; ")));
    }
    pl.backend = std::string(chosen[i]->Name());
    pl.strategy = pl.backend;
    pl.reason = absl::StrJoin(declined, "; ");
    ex->placements_.push_back(std::move(pl));
  }
  // Contiguous runs on the same backend become partitions.
  size_t start = 0;
  while (start < g.nodes.size()) {
    size_t end = start + 1;
    while (end < g.nodes.size() && chosen[end] == chosen[start]) ++end;
    std::vector<NodeId> ids;
    for (size_t i = start; i < end; ++i) ids.push_back(static_cast<NodeId>(i));
    Partition part;
    part.backend = std::string(chosen[start]->Name());
    part.sub = ExtractSubgraph(g, ids);
    absl::StatusOr<std::unique_ptr<CompiledModel>> compiled =
        chosen[start]->Compile(part.sub.graph, compile_options);
    if (!compiled.ok()) {
      return AnnotateStatus(
          compiled.status(),
          absl::StrCat("compiling nodes '", g.nodes[start].name, "'..'",
                       g.nodes[end - 1].name, "' on ", part.backend));
    }
    part.compiled = std::move(compiled).value();
    ex->partitions_.push_back(std::move(part));
    start = end;
  }
  ex->registry_ = &registry;
  ex->options_ = options;
  ex->compile_options_ = std::move(compile_options);
  return ex;
}

absl::StatusOr<Backend*> Executor::PlaceFirstConv(
    const ModelGraph& graph, NodeId id, const std::vector<Backend*>& prefs,
    const BackendRegistry& registry, const BackendOptions& options,
    NodePlacement& placement) {
  const Node& node = graph.nodes[id];
  std::string policy = "auto";
  if (auto it = options.find(kFirstConvOption); it != options.end()) {
    policy = it->second;
  }
  const std::string strategy_key =
      absl::StrCat(kStrategyOptionPrefix, node.name);
  auto forced = [&](absl::string_view backend_name,
                    absl::string_view strategy) -> absl::StatusOr<Backend*> {
    Backend* b = registry.Find(backend_name);
    if (b == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(kFirstConvOption, ": ", policy, " needs backend '",
                       backend_name, "', which is not available"));
    }
    if (absl::Status s = b->Supports(graph, node); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(kFirstConvOption, ": ", policy, " cannot run node '",
                       node.name, "': ", s.message()));
    }
    BackendOptions with_strategy = options;
    with_strategy[strategy_key] = std::string(strategy);
    absl::StatusOr<NodeCost> cost = b->EstimateCost(graph, id, with_strategy);
    if (!cost.ok() && !absl::IsUnimplemented(cost.status())) {
      return absl::InvalidArgumentError(
          absl::StrCat(kFirstConvOption, ": ", policy, " cannot run node '",
                       node.name, "': ", cost.status().message()));
    }
    placement.backend = std::string(b->Name());
    placement.strategy = std::string(strategy);
    placement.reason =
        absl::StrCat("forced by ", kFirstConvOption, "=", policy);
    if (cost.ok()) {
      placement.cost_seconds = cost->seconds;
      placement.costs =
          absl::StrCat(strategy, "=", cost->seconds, "s (", cost->detail, ")");
    }
    return b;
  };
  if (policy == "cpu") return forced("cpu", "cpu");
  if (absl::StartsWith(policy, "vta_")) return forced("vta", policy);
  if (policy != "auto") {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown ", kFirstConvOption, " policy '", policy,
        "' (expected auto, cpu, vta_pad, vta_im2col, vta_s2d or vta_kwfold)"));
  }
  // Cost model: every supporting backend estimates; the cheapest wins. A
  // backend without a cost model only wins if nobody has one (preference).
  Backend* best = nullptr;
  Backend* first_supporting = nullptr;
  NodeCost best_cost;
  std::vector<std::string> lines, declined;
  for (Backend* b : prefs) {
    if (absl::Status s = b->Supports(graph, node); !s.ok()) {
      declined.push_back(absl::StrCat(b->Name(), ": ", s.message()));
      continue;
    }
    if (first_supporting == nullptr) first_supporting = b;
    absl::StatusOr<NodeCost> cost = b->EstimateCost(graph, id, options);
    if (absl::IsInvalidArgument(cost.status())) {
      // Bad options (e.g. a model's vta_config or cpu_threads): the model's
      // load fails rather than placing the node elsewhere.
      return AnnotateStatus(
          cost.status(),
          absl::StrCat("estimating node '", node.name, "' on ", b->Name()));
    }
    if (!cost.ok()) continue;
    lines.push_back(absl::StrCat(
        cost->strategy.empty() ? std::string(b->Name()) : cost->strategy, "=",
        cost->seconds, "s (", cost->detail, ")"));
    if (best == nullptr || cost->seconds < best_cost.seconds) {
      best = b;
      best_cost = *cost;
    }
  }
  if (first_supporting == nullptr) {
    return absl::UnimplementedError(absl::StrCat(
        "no backend can run node '", node.name, "' (", OpKindName(node.op),
        "): ", absl::StrJoin(declined, "; ")));
  }
  placement.reason = absl::StrJoin(declined, "; ");
  placement.costs = absl::StrJoin(lines, "; ");
  if (best == nullptr) {
    placement.backend = std::string(first_supporting->Name());
    placement.strategy = placement.backend;
    return first_supporting;
  }
  placement.backend = std::string(best->Name());
  placement.strategy =
      best_cost.strategy.empty() ? placement.backend : best_cost.strategy;
  placement.cost_seconds = best_cost.seconds;
  return best;
}

std::vector<std::string> Executor::DescribePartitions() const {
  std::vector<std::string> lines;
  for (const Partition& p : partitions_) {
    lines.push_back(p.compiled->Describe());
  }
  return lines;
}

absl::Status Executor::RunOne(const ExecutionContext& context,
                              std::vector<Tensor>& values) {
  for (Partition& part : partitions_) {
    std::vector<const Tensor*> ins;
    for (ValueId v : part.sub.graph.inputs) {
      const ValueId g = part.sub.value_map[v];
      if (values[g].empty()) {
        return absl::InternalError(absl::StrCat(
            "partition input '", graph_.value(g).name, "' was not produced"));
      }
      ins.push_back(&values[g]);
    }
    std::vector<Tensor*> outs;
    for (ValueId v : part.sub.graph.outputs) {
      const ValueId g = part.sub.value_map[v];
      const Value& info = graph_.value(g);
      VTASERVE_ASSIGN_OR_RETURN(values[g],
                                Tensor::Create(info.dtype, info.shape));
      outs.push_back(&values[g]);
    }
    VTASERVE_RETURN_IF_ERROR(ExecutePartition(part, context, ins, outs));
  }
  return absl::OkStatus();
}

absl::Status Executor::ExecutePartition(Partition& part,
                                        const ExecutionContext& context,
                                        absl::Span<const Tensor* const> ins,
                                        absl::Span<Tensor* const> outs) {
  DeviceFaults* faults = options_.faults.get();
  if (faults == nullptr) return part.compiled->Execute(context, ins, outs);
  if (faults->Degraded(part.backend) &&
      faults->ProbeDue(part.backend, absl::Now())) {
    Backend* b = registry_->Find(part.backend);
    faults->RecordProbe(part.backend, b != nullptr
                                          ? b->SelfTest()
                                          : absl::NotFoundError("no backend"));
  }
  if (faults->Degraded(part.backend)) {
    return RunFallback(
        part, context, ins, outs,
        absl::UnavailableError(absl::StrCat(part.backend, " is degraded")));
  }
  absl::Status s = part.compiled->Execute(context, ins, outs);
  if (s.ok()) {
    faults->RecordSuccess(part.backend);
    return s;
  }
  if (!IsDeviceFault(s, context)) return s;
  faults->RecordFault(part.backend, s);
  return RunFallback(part, context, ins, outs, s);
}

absl::Status Executor::RunFallback(Partition& part,
                                   const ExecutionContext& context,
                                   absl::Span<const Tensor* const> ins,
                                   absl::Span<Tensor* const> outs,
                                   const absl::Status& cause) {
  if (part.fallback == nullptr) {
    // The next preferred backend after the failing one that supports every
    // node of the partition.
    std::vector<std::string> tried;
    bool after = false;
    for (const std::string& name : options_.preference) {
      if (name == part.backend) {
        after = true;
        continue;
      }
      Backend* b = after ? registry_->Find(name) : nullptr;
      if (b == nullptr) continue;
      bool all = true;
      for (const Node& n : part.sub.graph.nodes) {
        all = all && b->Supports(part.sub.graph, n).ok();
      }
      if (!all) continue;
      absl::StatusOr<std::unique_ptr<CompiledModel>> c =
          b->Compile(part.sub.graph, compile_options_);
      if (!c.ok()) {
        tried.push_back(absl::StrCat(name, ": ", c.status().message()));
        continue;
      }
      part.fallback = *std::move(c);
      part.fallback_backend = name;
      break;
    }
    if (part.fallback == nullptr) {
      return AnnotateStatus(
          cause, absl::StrCat("no fallback backend for the ", part.backend,
                              " partition (", absl::StrJoin(tried, "; "), ")"));
    }
  }
  VTASERVE_RETURN_IF_ERROR(context.CheckContinue());
  VTASERVE_RETURN_IF_ERROR(part.fallback->Execute(context, ins, outs));
  options_.faults->RecordFallback();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Tensor>> Executor::Run(
    const ExecutionContext& context, absl::Span<const Tensor* const> inputs) {
  if (inputs.size() != graph_.inputs.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected ", graph_.inputs.size(), " inputs, got ", inputs.size()));
  }
  int64_t batch = -1;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i] == nullptr) return absl::InvalidArgumentError("null input");
    const Value& v = graph_.value(graph_.inputs[i]);
    VTASERVE_RETURN_IF_ERROR(CheckTensorMatches(v, *inputs[i], true));
    const int64_t n = inputs[i]->shape().empty() ? 1 : inputs[i]->shape()[0];
    if (batch >= 0 && n != batch) {
      return absl::InvalidArgumentError("inputs disagree on the batch size");
    }
    batch = n;
  }
  if (batch < 0) batch = 1;

  std::vector<Tensor> results;
  for (ValueId v : graph_.outputs) {
    std::vector<int64_t> shape = graph_.value(v).shape;
    if (!shape.empty()) shape[0] *= batch;
    VTASERVE_ASSIGN_OR_RETURN(Tensor t,
                              Tensor::Create(graph_.value(v).dtype, shape));
    results.push_back(std::move(t));
  }
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<Tensor> values(graph_.values.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Value& info = graph_.value(graph_.inputs[i]);
      VTASERVE_ASSIGN_OR_RETURN(Tensor t,
                                Tensor::Create(info.dtype, info.shape));
      std::memcpy(t.bytes(), inputs[i]->bytes() + b * t.byte_size(),
                  t.byte_size());
      values[graph_.inputs[i]] = std::move(t);
    }
    VTASERVE_RETURN_IF_ERROR(RunOne(context, values));
    for (size_t i = 0; i < graph_.outputs.size(); ++i) {
      const Tensor& out = values[graph_.outputs[i]];
      if (out.empty()) {
        // An output that is also an input passes straight through.
        return absl::InternalError("graph output was not produced");
      }
      std::memcpy(results[i].bytes() + b * out.byte_size(), out.bytes(),
                  out.byte_size());
    }
  }
  return results;
}

}  // namespace vtaserve::engine
