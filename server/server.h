// Server: the gRPC inference service, the standard grpc.health.v1 service
// (service "" for the server and one name per model), the Prometheus
// exposer and the model repository, started and drained together.
// Thread-safety: Shutdown may be called from any thread, once or more;
// the accessors are safe at any time.
#ifndef VTASERVE_SERVER_SERVER_H_
#define VTASERVE_SERVER_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/backend_registry.h"
#include "engine/device_faults.h"
#include "engine/model_manager.h"
#include "grpcpp/server.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"
#include "server/inference_service.h"
#include "server/metrics.h"

namespace vtaserve::server {

struct ServerOptions {
  // Root of the model repository. Default: "" (serve no models).
  std::string model_repository;
  // Address the gRPC service binds. Default: "0.0.0.0" (all interfaces).
  std::string grpc_address = "0.0.0.0";
  // gRPC port; 0 picks a free one (see grpc_port()). Default: 8001.
  int grpc_port = 8001;
  // Lets other processes bind the same gRPC port (SO_REUSEPORT): requests
  // are then split between them. Off, a port in use fails Start. Default:
  // false (Triton's --reuse-grpc-port).
  bool reuse_grpc_port = false;
  // A model repository that does not exist or cannot be read fails Start;
  // false keeps serving (not ready). Models that fail to load never fail
  // Start: the others are served and the server is not ready. Default: true
  // (Triton's --exit-on-error).
  bool exit_on_error = true;
  // Address the metrics endpoint binds. Default: "0.0.0.0".
  std::string metrics_address = "0.0.0.0";
  // Prometheus /metrics port; 0 picks a free one, -1 disables. Default: 8002.
  int metrics_port = 8002;
  // VTA configuration for models that name none. Default: "" (built-in).
  std::string vta_config;
  // CPU backend threads for models that set none. Default: 0 (backend's).
  int cpu_threads = 0;
  // Device faults (engine/device_faults.h): a faulty partition re-runs on
  // the CPU pool; after `device_faults.degrade_after` consecutive faults
  // the model degrades to it and a self-test every `probe_interval` takes
  // the device back. Defaults: 3 faults, 30 s.
  engine::DeviceFaultOptions device_faults;
  // PEM files for TLS; all empty means plaintext. A client CA makes the
  // server require and verify client certificates. Default: "".
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  // How long Shutdown lets accepted requests finish. Default: 30 s.
  absl::Duration exit_timeout = absl::Seconds(30);
  // Largest request or response message. Default: 64 MiB.
  int max_message_bytes = 64 << 20;
};

class Server {
 public:
  // Starts serving gRPC (health NOT_SERVING) and metrics, loads the
  // repository, then marks itself ready. A model that fails to load is
  // logged and leaves the server not ready; it does not fail Start.
  // Errors: InvalidArgument for bad options or TLS files, Unavailable when
  // a port cannot be bound (in use, unless reuse_grpc_port), NotFound or
  // FailedPrecondition for a repository that does not exist or cannot be
  // read (when exit_on_error).
  // REQUIRES: `registry` outlives the Server and is no longer modified.
  // `device_ready` (may be empty) reports whether accelerators are up.
  static absl::StatusOr<std::unique_ptr<Server>> Start(
      const ServerOptions& options, const engine::BackendRegistry* registry,
      engine::GraphLoader loader, std::function<bool()> device_ready = {});

  // Shutdown(options.exit_timeout).
  ~Server();

  // Health NOT_SERVING and new requests Unavailable at once, then accepted
  // requests finish (until `timeout`, after which they are cancelled) and
  // their responses are sent. gRPC keeps answering (Unavailable) and
  // metrics keep serving. Idempotent; returns once drained.
  void Drain(absl::Duration timeout);
  // Drain(timeout), then gRPC and metrics stop. Calls that reach gRPC while
  // it stops may end CANCELLED on the client (gRPC's shutdown cancels
  // them); a process that exits after Drain instead resets its
  // connections, which clients see as UNAVAILABLE. Idempotent.
  void Shutdown(absl::Duration timeout);
  void Shutdown() { Shutdown(options_.exit_timeout); }

  int grpc_port() const { return grpc_port_; }
  // -1 when metrics are disabled.
  int metrics_port() const { return metrics_port_; }
  engine::ModelManager& models() { return *manager_; }
  // Server readiness as ServerReady and the "" health service report it.
  bool Ready() const;
  // Re-reads model states into the health service.
  void UpdateHealth();

 private:
  Server(const ServerOptions& options, const engine::BackendRegistry* registry,
         engine::GraphLoader loader, std::function<bool()> device_ready);
  absl::Status StartServing();
  void RunControl(std::function<void()> fn);

  const ServerOptions options_;
  const std::function<bool()> device_ready_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<engine::ModelManager> manager_;
  std::unique_ptr<InferenceService> service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int grpc_port_ = -1;
  int metrics_port_ = -1;
  // The repository could not be read at start (exit_on_error false): the
  // server stays not ready.
  bool repository_unreadable_ = false;

  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;  // initial load done
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool drained_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> control_threads_ ABSL_GUARDED_BY(mu_);
  absl::Mutex health_mu_;  // orders health updates
};

}  // namespace vtaserve::server

#endif  // VTASERVE_SERVER_SERVER_H_
