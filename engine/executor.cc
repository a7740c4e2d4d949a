#include "engine/executor.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", v.name, "': expected shape [",
                     absl::StrJoin(dims, ","), "], got ",
                     ShapeToString(t.shape())));
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
                     absl::StrJoin(options.preference, ","),
                     "] is available"));
  }
  std::vector<Backend*> chosen(g.nodes.size(), nullptr);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& node = g.nodes[i];
    NodePlacement pl;
    pl.node = node.name;
    pl.op = node.op;
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
      return absl::UnimplementedError(
          absl::StrCat("no backend can run node '", node.name, "' (",
                       OpKindName(node.op), "): ",
                       absl::StrJoin(declined, "; ")));
    }
    pl.backend = std::string(chosen[i]->Name());
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
        chosen[start]->Compile(part.sub.graph, options.backend_options);
    if (!compiled.ok()) {
      return AnnotateStatus(compiled.status(),
                            absl::StrCat("compiling nodes '", g.nodes[start].name,
                                         "'..'", g.nodes[end - 1].name, "' on ",
                                         part.backend));
    }
    part.compiled = std::move(compiled).value();
    ex->partitions_.push_back(std::move(part));
    start = end;
  }
  return ex;
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
      VTASERVE_ASSIGN_OR_RETURN(values[g], Tensor::Create(info.dtype, info.shape));
      outs.push_back(&values[g]);
    }
    VTASERVE_RETURN_IF_ERROR(part.compiled->Execute(context, ins, outs));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Tensor>> Executor::Run(
    const ExecutionContext& context, absl::Span<const Tensor* const> inputs) {
  if (inputs.size() != graph_.inputs.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected ", graph_.inputs.size(), " inputs, got ",
                     inputs.size()));
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
    VTASERVE_ASSIGN_OR_RETURN(Tensor t, Tensor::Create(graph_.value(v).dtype, shape));
    results.push_back(std::move(t));
  }
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<Tensor> values(graph_.values.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Value& info = graph_.value(graph_.inputs[i]);
      VTASERVE_ASSIGN_OR_RETURN(Tensor t, Tensor::Create(info.dtype, info.shape));
      std::memcpy(t.bytes(), inputs[i]->bytes() + b * t.byte_size(), t.byte_size());
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
