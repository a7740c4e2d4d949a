#include "server/inference_service.h"

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/status_conversion.h"
#include "server/tensor_conversion.h"

namespace vtaserve::server {
namespace {

constexpr char kServerName[] = "vtaserve";
constexpr char kServerVersion[] = "0.1.0";
constexpr char kPlatform[] = "vtaserve_onnx";

absl::Time DeadlineOf(const grpc::CallbackServerContext& context) {
  const auto d = context.deadline();
  if (d == std::chrono::system_clock::time_point::max()) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(d);
}

bool WantsTiming(const inference::ModelInferRequest& request) {
  auto it = request.parameters().find("timing");
  if (it == request.parameters().end()) return false;
  const inference::InferParameter& p = it->second;
  if (p.has_bool_param()) return p.bool_param();
  if (p.has_string_param()) return p.string_param() == "true";
  if (p.has_int64_param()) return p.int64_param() != 0;
  return false;
}

void SetDouble(inference::ModelInferResponse* response, const std::string& key,
               double value) {
  (*response->mutable_parameters())[key].set_double_param(value);
}

inference::DataType ToProtoType(DataType t) {
  switch (t) {
    case DataType::kUInt8:
      return inference::TYPE_UINT8;
    case DataType::kInt8:
      return inference::TYPE_INT8;
    case DataType::kInt32:
      return inference::TYPE_INT32;
    case DataType::kFloat32:
      return inference::TYPE_FP32;
  }
  return inference::TYPE_INVALID;
}

void FillStat(inference::StatisticDuration* d, uint64_t count, uint64_t ns) {
  d->set_count(count);
  d->set_ns(ns);
}

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                    const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

// One ModelInfer call: finished exactly once, from the callback thread on
// early errors or from the scheduler's worker otherwise; deletes itself
// when gRPC is done with it. An accepted call (ModelInfer counted it in
// in_flight_) leaves the count only then, once its status has been sent, so
// a drained server can exit without losing a response.
class InferenceService::InferReactor : public grpc::ServerUnaryReactor {
 public:
  InferReactor(InferenceService* service, bool accepted)
      : service_(service),
        accepted_(accepted),
        start_(absl::Now()),
        cancelled_(std::make_shared<std::atomic<bool>>(false)) {}

  const std::shared_ptr<std::atomic<bool>>& cancelled() const {
    return cancelled_;
  }

  // Records the request metric and sends the status.
  void Complete(const std::string& model, const absl::Status& status) {
    const grpc::Status g = ToGrpcStatus(status);
    service_->metrics_->RecordRequest(
        model, g.error_code(), absl::ToDoubleSeconds(absl::Now() - start_));
    Finish(g);
  }

  void OnCancel() override { cancelled_->store(true); }
  void OnDone() override {
    // The service may be destroyed once in_flight_ reaches zero.
    InferenceService* service = service_;
    const bool accepted = accepted_;
    delete this;
    if (accepted) service->in_flight_.fetch_sub(1);
  }

 private:
  InferenceService* const service_;
  const bool accepted_;
  const absl::Time start_;
  const std::shared_ptr<std::atomic<bool>> cancelled_;
};

InferenceService::InferenceService(engine::ModelManager* manager,
                                   ServerMetrics* metrics, ServiceHooks hooks)
    : manager_(manager), metrics_(metrics), hooks_(std::move(hooks)) {}

grpc::ServerUnaryReactor* InferenceService::ServerLive(
    grpc::CallbackServerContext* context, const inference::ServerLiveRequest*,
    inference::ServerLiveResponse* response) {
  response->set_live(true);
  return FinishNow(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::ServerReady(
    grpc::CallbackServerContext* context, const inference::ServerReadyRequest*,
    inference::ServerReadyResponse* response) {
  response->set_ready(!draining_.load() &&
                      (hooks_.server_ready ? hooks_.server_ready() : true));
  return FinishNow(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::ModelReady(
    grpc::CallbackServerContext* context,
    const inference::ModelReadyRequest* request,
    inference::ModelReadyResponse* response) {
  absl::StatusOr<std::shared_ptr<const engine::ModelInfo>> info =
      manager_->Find(request->name(), request->version());
  if (info.ok()) {
    response->set_ready(!draining_.load());
    return FinishNow(context, absl::OkStatus());
  }
  // A model of the repository that is not loaded is simply not ready.
  for (const engine::ModelState& row : manager_->Index()) {
    if (row.name == request->name() && request->version().empty()) {
      response->set_ready(false);
      return FinishNow(context, absl::OkStatus());
    }
  }
  return FinishNow(context, info.status());
}

grpc::ServerUnaryReactor* InferenceService::ServerMetadata(
    grpc::CallbackServerContext* context,
    const inference::ServerMetadataRequest*,
    inference::ServerMetadataResponse* response) {
  response->set_name(kServerName);
  response->set_version(kServerVersion);
  for (const char* ext : {"model_repository", "model_configuration",
                          "statistics", "parameters"}) {
    response->add_extensions(ext);
  }
  return FinishNow(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::ModelMetadata(
    grpc::CallbackServerContext* context,
    const inference::ModelMetadataRequest* request,
    inference::ModelMetadataResponse* response) {
  absl::StatusOr<std::shared_ptr<const engine::ModelInfo>> found =
      manager_->Find(request->name(), request->version());
  if (!found.ok()) return FinishNow(context, found.status());
  const engine::ModelInfo& info = **found;
  response->set_name(info.name);
  response->add_versions(absl::StrCat(info.version));
  response->set_platform(kPlatform);
  for (const engine::Value& v : info.inputs) {
    auto* t = response->add_inputs();
    t->set_name(v.name);
    t->set_datatype(std::string(DataTypeName(v.dtype)));
    for (int64_t d : RequestShape(info, v)) t->add_shape(d);
  }
  for (int i : info.default_outputs) {
    const engine::Value& v = info.outputs[i];
    auto* t = response->add_outputs();
    t->set_name(v.name);
    t->set_datatype(std::string(DataTypeName(v.dtype)));
    for (int64_t d : RequestShape(info, v)) t->add_shape(d);
  }
  for (const engine::NodePlacement& p : info.placements) {
    auto* lp = response->add_placements();
    lp->set_layer(p.node);
    lp->set_op(std::string(engine::OpKindName(p.op)));
    lp->set_backend(p.backend);
    lp->set_strategy(p.strategy);
    lp->set_cost_seconds(p.cost_seconds);
    lp->set_costs(p.costs);
  }
  if (info.faults != nullptr) response->set_degraded(info.faults->Describe());
  return FinishNow(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::ModelInfer(
    grpc::CallbackServerContext* context,
    const inference::ModelInferRequest* request,
    inference::ModelInferResponse* response) {
  // Counted before the draining check: StartDraining comes before the wait
  // for InFlight() == 0, so every call not refused here is waited for.
  in_flight_.fetch_add(1);
  if (draining_.load()) {
    in_flight_.fetch_sub(1);
    auto* refused = new InferReactor(this, /*accepted=*/false);
    refused->Complete("",
                      absl::UnavailableError("the server is shutting down"));
    return refused;
  }
  auto* reactor = new InferReactor(this, /*accepted=*/true);
  const absl::Time deadline = DeadlineOf(*context);
  const bool timing = WantsTiming(*request);
  std::string model_label;
  absl::Status submitted = manager_->Submit(
      request->model_name(), request->model_version(),
      [&](const std::shared_ptr<const engine::ModelInfo>& info)
          -> absl::StatusOr<engine::InferJob> {
        model_label = info->name;
        absl::StatusOr<std::vector<int>> selected =
            SelectOutputs(*info, *request);
        if (!selected.ok()) return selected.status();
        absl::StatusOr<std::vector<Tensor>> inputs =
            BuildInputs(*info, *request);
        if (!inputs.ok()) return inputs.status();
        engine::InferJob job;
        job.inputs = *std::move(inputs);
        job.deadline = deadline;
        job.cancelled = reactor->cancelled();
        job.collect_profile = true;
        job.done = [this, reactor, request, response, info, timing,
                    selected =
                        *std::move(selected)](engine::InferResult result) {
          metrics_->RecordExecution(*info, result);
          if (result.status.ok()) {
            response->set_model_name(info->name);
            response->set_model_version(absl::StrCat(info->version));
            response->set_id(request->id());
            FillOutputs(*info, selected, result.outputs, response);
            if (timing) {
              SetDouble(response, "queue_seconds",
                        absl::ToDoubleSeconds(result.queue_time));
              SetDouble(response, "compute_seconds",
                        absl::ToDoubleSeconds(result.compute_time));
              for (const engine::LayerTiming& t : result.profile) {
                SetDouble(response, absl::StrCat("layer_seconds/", t.layer),
                          t.wall_seconds);
                (*response->mutable_parameters())[absl::StrCat("layer_device/",
                                                               t.layer)]
                    .set_string_param(t.device);
                if (t.modeled_device_seconds >= 0) {
                  SetDouble(
                      response,
                      absl::StrCat("layer_modeled_device_seconds/", t.layer),
                      t.modeled_device_seconds);
                }
                if (t.host_transform_seconds > 0) {
                  SetDouble(
                      response,
                      absl::StrCat("layer_host_transform_seconds/", t.layer),
                      t.host_transform_seconds);
                }
              }
            }
          }
          reactor->Complete(info->name, result.status);
        };
        return job;
      });
  if (!submitted.ok()) reactor->Complete(model_label, submitted);
  return reactor;
}

void ToConfigProto(const engine::ModelInfo& info,
                   inference::ModelConfig* config) {
  const engine::ModelConfig& c = info.config;
  config->set_name(info.name);
  config->set_platform(kPlatform);
  config->set_backend("vtaserve");
  config->set_max_batch_size(c.max_batch_size);
  auto dims_of = [&](const engine::Value& v) {
    std::vector<int64_t> dims = v.shape;
    if (c.max_batch_size > 0 && !dims.empty()) dims.erase(dims.begin());
    return dims;
  };
  for (const engine::Value& v : info.inputs) {
    auto* in = config->add_input();
    in->set_name(v.name);
    in->set_data_type(ToProtoType(v.dtype));
    for (int64_t d : dims_of(v)) in->add_dims(d);
  }
  for (int i : info.default_outputs) {
    const engine::Value& v = info.outputs[i];
    auto* out = config->add_output();
    out->set_name(v.name);
    out->set_data_type(ToProtoType(v.dtype));
    for (int64_t d : dims_of(v)) out->add_dims(d);
  }
  auto* group = config->add_instance_group();
  group->set_name(absl::StrCat(info.name, "_executions"));
  group->set_count(c.concurrent_executions);
  group->set_kind(inference::ModelInstanceGroup::KIND_CPU);
  for (const std::string& p : c.placement) config->add_placement(p);
  config->set_first_conv(c.first_conv);
  config->set_vta_config(c.vta_config);
  config->set_cpu_threads(c.cpu_threads);
  config->set_max_queue_size(c.max_queue_size);
  config->set_concurrent_executions(c.concurrent_executions);
  config->set_shift_group(c.shift_group);
  config->set_version(info.version);
}

grpc::ServerUnaryReactor* InferenceService::ModelConfig(
    grpc::CallbackServerContext* context,
    const inference::ModelConfigRequest* request,
    inference::ModelConfigResponse* response) {
  absl::StatusOr<std::shared_ptr<const engine::ModelInfo>> found =
      manager_->Find(request->name(), request->version());
  if (!found.ok()) return FinishNow(context, found.status());
  ToConfigProto(**found, response->mutable_config());
  return FinishNow(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::ModelStatistics(
    grpc::CallbackServerContext* context,
    const inference::ModelStatisticsRequest* request,
    inference::ModelStatisticsResponse* response) {
  auto stats = manager_->Stats(request->name(), request->version());
  if (!stats.ok()) return FinishNow(context, stats.status());
  for (const auto& [info, s] : *stats) {
    auto* m = response->add_model_stats();
    m->set_name(info->name);
    m->set_version(absl::StrCat(info->version));
    m->set_last_inference(static_cast<uint64_t>(s.last_inference_ms));
    m->set_inference_count(s.inference_count);
    m->set_execution_count(s.execution_count);
    auto* is = m->mutable_inference_stats();
    FillStat(is->mutable_success(), s.success_count, s.success_ns);
    FillStat(is->mutable_fail(), s.fail_count, s.fail_ns);
    FillStat(is->mutable_queue(), s.queue_count, s.queue_ns);
    FillStat(is->mutable_compute_input(), s.compute_count, 0);
    FillStat(is->mutable_compute_infer(), s.compute_count, s.compute_ns);
    FillStat(is->mutable_compute_output(), s.compute_count, 0);
  }
  return FinishNow(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::RepositoryIndex(
    grpc::CallbackServerContext* context,
    const inference::RepositoryIndexRequest* request,
    inference::RepositoryIndexResponse* response) {
  for (const engine::ModelState& row : manager_->Index()) {
    if (request->ready() && row.state != engine::ModelState::State::kReady) {
      continue;
    }
    auto* m = response->add_models();
    m->set_name(row.name);
    if (row.version >= 0) m->set_version(absl::StrCat(row.version));
    m->set_state(std::string(engine::ModelStateName(row.state)));
    m->set_reason(row.reason);
  }
  return FinishNow(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::RepositoryModelLoad(
    grpc::CallbackServerContext* context,
    const inference::RepositoryModelLoadRequest* request,
    inference::RepositoryModelLoadResponse*) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (draining_.load()) {
    reactor->Finish(
        ToGrpcStatus(absl::UnavailableError("the server is shutting down")));
    return reactor;
  }
  const std::string name = request->model_name();
  hooks_.run_control([this, reactor, name] {
    absl::Status s = manager_->Load(name);
    if (hooks_.models_changed) hooks_.models_changed();
    reactor->Finish(ToGrpcStatus(s));
  });
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::RepositoryModelUnload(
    grpc::CallbackServerContext* context,
    const inference::RepositoryModelUnloadRequest* request,
    inference::RepositoryModelUnloadResponse*) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const std::string name = request->model_name();
  hooks_.run_control([this, reactor, name] {
    absl::Status s = manager_->Unload(name);
    if (hooks_.models_changed) hooks_.models_changed();
    reactor->Finish(ToGrpcStatus(s));
  });
  return reactor;
}

}  // namespace vtaserve::server
