// Prometheus metrics of the server (the only prometheus-cpp user). Requests,
// queue and compute time per model; per-layer wall time, modeled VTA device
// time (simulated, never mixed with wall time), host transform time and
// device counters from engine::LayerTiming; placement and CPU fallback.
// All durations in seconds. The registry is passed in: no globals.
// Thread-safety: every method is safe to call concurrently.
#ifndef VTASERVE_SERVER_METRICS_H_
#define VTASERVE_SERVER_METRICS_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "engine/model_manager.h"
#include "engine/scheduler.h"
#include "grpcpp/support/status_code_enum.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace vtaserve::server {

// "OK", "INVALID_ARGUMENT", ... (the label value of `code`).
const char* GrpcCodeName(grpc::StatusCode code);

class ServerMetrics {
 public:
  // Registers the metric families in `registry`, which must outlive this.
  explicit ServerMetrics(prometheus::Registry& registry);

  // One finished ModelInfer: `model` is "" when the request named no loaded
  // model (kept out of the label space as "_unknown").
  void RecordRequest(const std::string& model, grpc::StatusCode code,
                     double seconds);

  // Queue, compute and per-layer series of one executed job of `info`.
  void RecordExecution(const engine::ModelInfo& info,
                       const engine::InferResult& result);

  // Publishes `info`'s placement (one info gauge per layer), replacing the
  // previous placement series of the same model name.
  void SetPlacement(const engine::ModelInfo& info);
  // Drops the placement series of `model` (after an unload).
  void RemovePlacement(const std::string& model);

 private:
  struct LayerSeries {
    prometheus::Histogram* wall = nullptr;
    prometheus::Histogram* modeled = nullptr;  // lazily, when reported
    prometheus::Histogram* host_transform = nullptr;
    prometheus::Counter* fallback = nullptr;  // when placed off preference
    std::map<std::string, prometheus::Counter*> counters;
  };
  struct ModelSeries {
    prometheus::Histogram* queue = nullptr;
    prometheus::Histogram* compute = nullptr;
    prometheus::Counter* fallbacks = nullptr;
    prometheus::Gauge* degraded = nullptr;
    // The fallbacks already counted of the version's DeviceFaults.
    const void* faults = nullptr;
    uint64_t fallbacks_seen = 0;
  };
  LayerSeries& Layer(const engine::ModelInfo& info,
                     const engine::LayerTiming& timing)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  prometheus::Family<prometheus::Counter>& CounterFamily(
      const std::string& counter) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  prometheus::Registry& registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& request_duration_;
  prometheus::Family<prometheus::Histogram>& queue_duration_;
  prometheus::Family<prometheus::Histogram>& compute_duration_;
  prometheus::Family<prometheus::Histogram>& layer_duration_;
  prometheus::Family<prometheus::Histogram>& layer_modeled_;
  prometheus::Family<prometheus::Histogram>& layer_host_transform_;
  prometheus::Family<prometheus::Gauge>& placement_;
  prometheus::Family<prometheus::Counter>& cpu_fallback_;
  prometheus::Family<prometheus::Counter>& fallbacks_;
  prometheus::Family<prometheus::Gauge>& degraded_;

  absl::Mutex mu_;
  std::map<std::string, ModelSeries> models_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, LayerSeries> layers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, prometheus::Family<prometheus::Counter>*>
      counter_families_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<prometheus::Gauge*>> placement_gauges_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace vtaserve::server

#endif  // VTASERVE_SERVER_METRICS_H_
