// The GRPCInferenceService implementation (gRPC callback API). Cheap RPCs
// answer on the gRPC callback thread; ModelInfer validates the request
// there, hands it to the model's Scheduler and its reactor is finished from
// the worker thread; repository loads and unloads run on control threads
// owned by the Server.
// Thread-safety: all RPC handlers run concurrently.
#ifndef VTASERVE_SERVER_INFERENCE_SERVICE_H_
#define VTASERVE_SERVER_INFERENCE_SERVICE_H_

#include <atomic>
#include <functional>

#include "engine/model_manager.h"
#include "proto/inference.grpc.pb.h"
#include "server/metrics.h"

namespace vtaserve::server {

// What the service needs from its Server.
struct ServiceHooks {
  // Whether the server as a whole is ready (models loaded, device up, not
  // draining).
  std::function<bool()> server_ready;
  // Runs `fn` on a control thread (not a gRPC callback thread).
  std::function<void(std::function<void()>)> run_control;
  // Called after a model was loaded or unloaded by RPC.
  std::function<void()> models_changed;
};

class InferenceService final
    : public inference::GRPCInferenceService::CallbackService {
 public:
  // REQUIRES: manager and metrics outlive the service.
  InferenceService(engine::ModelManager* manager, ServerMetrics* metrics,
                   ServiceHooks hooks);

  // From now on ModelInfer answers Unavailable (the manager refuses too).
  void StartDraining() { draining_.store(true); }
  // ModelInfer calls accepted (not refused as draining) that gRPC is not
  // yet done with: their status has not been sent.
  int InFlight() const { return in_flight_.load(); }

  grpc::ServerUnaryReactor* ServerLive(
      grpc::CallbackServerContext* context,
      const inference::ServerLiveRequest* request,
      inference::ServerLiveResponse* response) override;
  grpc::ServerUnaryReactor* ServerReady(
      grpc::CallbackServerContext* context,
      const inference::ServerReadyRequest* request,
      inference::ServerReadyResponse* response) override;
  grpc::ServerUnaryReactor* ModelReady(
      grpc::CallbackServerContext* context,
      const inference::ModelReadyRequest* request,
      inference::ModelReadyResponse* response) override;
  grpc::ServerUnaryReactor* ServerMetadata(
      grpc::CallbackServerContext* context,
      const inference::ServerMetadataRequest* request,
      inference::ServerMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelMetadata(
      grpc::CallbackServerContext* context,
      const inference::ModelMetadataRequest* request,
      inference::ModelMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelInfer(
      grpc::CallbackServerContext* context,
      const inference::ModelInferRequest* request,
      inference::ModelInferResponse* response) override;
  grpc::ServerUnaryReactor* ModelConfig(
      grpc::CallbackServerContext* context,
      const inference::ModelConfigRequest* request,
      inference::ModelConfigResponse* response) override;
  grpc::ServerUnaryReactor* ModelStatistics(
      grpc::CallbackServerContext* context,
      const inference::ModelStatisticsRequest* request,
      inference::ModelStatisticsResponse* response) override;
  grpc::ServerUnaryReactor* RepositoryIndex(
      grpc::CallbackServerContext* context,
      const inference::RepositoryIndexRequest* request,
      inference::RepositoryIndexResponse* response) override;
  grpc::ServerUnaryReactor* RepositoryModelLoad(
      grpc::CallbackServerContext* context,
      const inference::RepositoryModelLoadRequest* request,
      inference::RepositoryModelLoadResponse* response) override;
  grpc::ServerUnaryReactor* RepositoryModelUnload(
      grpc::CallbackServerContext* context,
      const inference::RepositoryModelUnloadRequest* request,
      inference::RepositoryModelUnloadResponse* response) override;

 private:
  class InferReactor;

  engine::ModelManager* const manager_;
  ServerMetrics* const metrics_;
  const ServiceHooks hooks_;
  std::atomic<bool> draining_{false};
  std::atomic<int> in_flight_{0};
};

// Fills a ModelConfig message from a loaded model (the ModelConfig RPC).
void ToConfigProto(const engine::ModelInfo& info,
                   inference::ModelConfig* config);

}  // namespace vtaserve::server

#endif  // VTASERVE_SERVER_INFERENCE_SERVICE_H_
