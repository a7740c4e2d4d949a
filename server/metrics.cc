#include "server/metrics.h"

#include <cctype>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "engine/graph.h"

namespace vtaserve::server {
namespace {

using prometheus::Histogram;

// Request-level latencies: 100 us .. 10 s.
const Histogram::BucketBoundaries& RequestBuckets() {
  static const auto* b = new Histogram::BucketBoundaries{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,  10.0};
  return *b;
}

// Layer latencies: 1 us .. 250 ms, dense below a millisecond.
const Histogram::BucketBoundaries& LayerBuckets() {
  static const auto* b = new Histogram::BucketBoundaries{
      0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005,
      0.0001,   0.00025,   0.0005,   0.001,   0.0025,   0.005,
      0.01,     0.025,     0.05,     0.1,     0.25};
  return *b;
}

std::string SanitizeMetricName(const std::string& name) {
  std::string out;
  for (char c : name) {
    out.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  }
  return out;
}

}  // namespace

const char* GrpcCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

ServerMetrics::ServerMetrics(prometheus::Registry& registry)
    : registry_(registry),
      requests_(prometheus::BuildCounter()
                    .Name("vtaserve_requests_total")
                    .Help("ModelInfer requests by model and gRPC status code")
                    .Register(registry)),
      request_duration_(
          prometheus::BuildHistogram()
              .Name("vtaserve_request_duration_seconds")
              .Help("ModelInfer wall time from arrival to response, seconds")
              .Register(registry)),
      queue_duration_(prometheus::BuildHistogram()
                          .Name("vtaserve_queue_duration_seconds")
                          .Help("Time a request waited for an execution slot, "
                                "seconds")
                          .Register(registry)),
      compute_duration_(prometheus::BuildHistogram()
                            .Name("vtaserve_compute_duration_seconds")
                            .Help("Executor wall time per request, seconds")
                            .Register(registry)),
      layer_duration_(prometheus::BuildHistogram()
                          .Name("vtaserve_layer_duration_seconds")
                          .Help("Wall time of one layer on this host, seconds")
                          .Register(registry)),
      layer_modeled_(prometheus::BuildHistogram()
                         .Name("vtaserve_layer_modeled_device_seconds")
                         .Help("MODELED accelerator time of one layer "
                               "(simulated cycles / clock), seconds; not "
                               "wall time")
                         .Register(registry)),
      layer_host_transform_(
          prometheus::BuildHistogram()
              .Name("vtaserve_layer_host_transform_seconds")
              .Help("Host-side data transform time (packing, im2col) of one "
                    "layer, seconds")
              .Register(registry)),
      placement_(prometheus::BuildGauge()
                     .Name("vtaserve_layer_placement_info")
                     .Help("1 for each layer's chosen backend and strategy")
                     .Register(registry)),
      cpu_fallback_(
          prometheus::BuildCounter()
              .Name("vtaserve_cpu_fallback_total")
              .Help("Layer executions on a backend other than the model's "
                    "preferred one because the preferred backend declined "
                    "the layer")
              .Register(registry)),
      fallbacks_(prometheus::BuildCounter()
                     .Name("vtaserve_fallbacks_total")
                     .Help("Partition runs re-run on the next backend (the "
                           "CPU pool) after a device fault, or sent there "
                           "while the model is degraded")
                     .Register(registry)),
      degraded_(prometheus::BuildGauge()
                    .Name("vtaserve_model_degraded")
                    .Help("1 while the model has left a faulty device for "
                          "the CPU pool (engine/device_faults.h)")
                    .Register(registry)) {}

void ServerMetrics::RecordRequest(const std::string& model,
                                  grpc::StatusCode code, double seconds) {
  const std::string label = model.empty() ? "_unknown" : model;
  requests_.Add({{"model", label}, {"code", GrpcCodeName(code)}}).Increment();
  if (!model.empty()) {
    request_duration_.Add({{"model", label}}, RequestBuckets())
        .Observe(seconds);
  }
}

prometheus::Family<prometheus::Counter>& ServerMetrics::CounterFamily(
    const std::string& counter) {
  auto it = counter_families_.find(counter);
  if (it != counter_families_.end()) return *it->second;
  auto& family =
      prometheus::BuildCounter()
          .Name(absl::StrCat("vtaserve_layer_", SanitizeMetricName(counter),
                             "_total"))
          .Help(absl::StrCat("Device counter '", counter,
                             "' summed over executions of the layer (modeled "
                             "by the simulator for VTA)"))
          .Register(registry_);
  counter_families_[counter] = &family;
  return family;
}

ServerMetrics::LayerSeries& ServerMetrics::Layer(
    const engine::ModelInfo& info, const engine::LayerTiming& timing) {
  const std::string version = absl::StrCat(info.version);
  const std::string key = absl::StrCat(info.name, "\x1f", version, "\x1f",
                                       timing.layer, "\x1f", timing.device);
  auto it = layers_.find(key);
  if (it != layers_.end()) return it->second;
  const prometheus::Labels labels = {
      {"model", info.name},
      {"version", version},
      {"layer", timing.layer},
      {"op", std::string(engine::OpKindName(timing.op))},
      {"device", timing.device}};
  LayerSeries series;
  series.wall = &layer_duration_.Add(labels, LayerBuckets());
  for (size_t i = 0; i < info.placements.size(); ++i) {
    if (info.placements[i].node == timing.layer && i < info.fallback.size() &&
        info.fallback[i]) {
      series.fallback = &cpu_fallback_.Add({{"model", info.name},
                                            {"version", version},
                                            {"layer", timing.layer},
                                            {"device", timing.device}});
    }
  }
  return layers_.emplace(key, std::move(series)).first->second;
}

void ServerMetrics::RecordExecution(const engine::ModelInfo& info,
                                    const engine::InferResult& result) {
  absl::MutexLock lock(&mu_);
  ModelSeries& m = models_[info.name];
  if (m.queue == nullptr) {
    m.queue = &queue_duration_.Add({{"model", info.name}}, RequestBuckets());
    m.compute =
        &compute_duration_.Add({{"model", info.name}}, RequestBuckets());
  }
  if (m.fallbacks == nullptr) {
    m.fallbacks = &fallbacks_.Add({{"model", info.name}});
    m.degraded = &degraded_.Add({{"model", info.name}});
  }
  if (info.faults != nullptr) {
    if (m.faults != info.faults.get()) {  // a new version: counts restart
      m.faults = info.faults.get();
      m.fallbacks_seen = 0;
    }
    const uint64_t total = info.faults->fallbacks();
    if (total > m.fallbacks_seen) {
      m.fallbacks->Increment(static_cast<double>(total - m.fallbacks_seen));
      m.fallbacks_seen = total;
    }
    m.degraded->Set(info.faults->DegradedBackends().empty() ? 0 : 1);
  }
  m.queue->Observe(absl::ToDoubleSeconds(result.queue_time));
  if (result.executed) {
    m.compute->Observe(absl::ToDoubleSeconds(result.compute_time));
  }
  for (const engine::LayerTiming& t : result.profile) {
    LayerSeries& s = Layer(info, t);
    s.wall->Observe(t.wall_seconds);
    const prometheus::Labels labels = {
        {"model", info.name},
        {"version", absl::StrCat(info.version)},
        {"layer", t.layer},
        {"op", std::string(engine::OpKindName(t.op))},
        {"device", t.device}};
    if (t.modeled_device_seconds >= 0) {
      if (s.modeled == nullptr) {
        s.modeled = &layer_modeled_.Add(labels, LayerBuckets());
      }
      s.modeled->Observe(t.modeled_device_seconds);
    }
    if (t.host_transform_seconds > 0) {
      if (s.host_transform == nullptr) {
        s.host_transform = &layer_host_transform_.Add(labels, LayerBuckets());
      }
      s.host_transform->Observe(t.host_transform_seconds);
    }
    if (s.fallback != nullptr) s.fallback->Increment();
    for (const auto& [name, value] : t.counters) {
      if (!(value >= 0) || !std::isfinite(value)) continue;
      prometheus::Counter*& c = s.counters[name];
      if (c == nullptr) c = &CounterFamily(name).Add(labels);
      c->Increment(value);
    }
  }
}

void ServerMetrics::SetPlacement(const engine::ModelInfo& info) {
  absl::MutexLock lock(&mu_);
  for (prometheus::Gauge* g : placement_gauges_[info.name]) {
    placement_.Remove(g);
  }
  std::vector<prometheus::Gauge*>& gauges = placement_gauges_[info.name];
  gauges.clear();
  for (size_t i = 0; i < info.placements.size(); ++i) {
    const engine::NodePlacement& p = info.placements[i];
    prometheus::Gauge& g = placement_.Add(
        {{"model", info.name},
         {"version", absl::StrCat(info.version)},
         {"layer", p.node},
         {"op", std::string(engine::OpKindName(p.op))},
         {"backend", p.backend},
         {"strategy",
          i < info.strategies.size() ? info.strategies[i] : p.backend}});
    g.Set(1);
    gauges.push_back(&g);
  }
}

void ServerMetrics::RemovePlacement(const std::string& model) {
  absl::MutexLock lock(&mu_);
  for (prometheus::Gauge* g : placement_gauges_[model]) placement_.Remove(g);
  placement_gauges_.erase(model);
}

}  // namespace vtaserve::server
