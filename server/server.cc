#include "server/server.h"

#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/common/logging.h"
#include "grpc/grpc.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace vtaserve::server {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path,
                                    absl::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": cannot read '", path, "'"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeCredentials(
    const ServerOptions& options) {
  if (options.tls_cert.empty() && options.tls_key.empty() &&
      options.tls_client_ca.empty()) {
    return grpc::InsecureServerCredentials();
  }
  if (options.tls_cert.empty() || options.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs both --tls-cert and --tls-key");
  }
  grpc::SslServerCredentialsOptions ssl;
  auto cert = ReadPem(options.tls_cert, "--tls-cert");
  if (!cert.ok()) return cert.status();
  auto key = ReadPem(options.tls_key, "--tls-key");
  if (!key.ok()) return key.status();
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  if (!options.tls_client_ca.empty()) {
    auto ca = ReadPem(options.tls_client_ca, "--tls-client-ca");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    ssl.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

// OK when `path` is a directory whose entries can be listed; otherwise
// NotFound or FailedPrecondition with the reason.
absl::Status CheckRepository(const std::string& path) {
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::status(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model repository '", path, "' cannot be read: ", ec.message()));
  }
  if (!std::filesystem::exists(st)) {
    return absl::NotFoundError(
        absl::StrCat("model repository '", path, "' does not exist"));
  }
  if (!std::filesystem::is_directory(st)) {
    return absl::FailedPreconditionError(
        absl::StrCat("model repository '", path, "' is not a directory"));
  }
  std::filesystem::directory_iterator it(path, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model repository '", path, "' cannot be read: ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace

Server::Server(const ServerOptions& options,
               const engine::BackendRegistry* registry,
               engine::GraphLoader loader, std::function<bool()> device_ready)
    : options_(options),
      device_ready_(std::move(device_ready)),
      registry_(std::make_shared<prometheus::Registry>()),
      metrics_(std::make_unique<ServerMetrics>(*registry_)) {
  engine::ModelManagerOptions mm;
  mm.repository = options.model_repository;
  mm.default_vta_config = options.vta_config;
  mm.default_cpu_threads = options.cpu_threads;
  mm.device_faults = options.device_faults;
  manager_ =
      std::make_unique<engine::ModelManager>(mm, registry, std::move(loader));
  ServiceHooks hooks;
  hooks.server_ready = [this] { return Ready(); };
  hooks.run_control = [this](std::function<void()> fn) {
    RunControl(std::move(fn));
  };
  hooks.models_changed = [this] { UpdateHealth(); };
  service_ =
      std::make_unique<InferenceService>(manager_.get(), metrics_.get(), hooks);
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(
    const ServerOptions& options, const engine::BackendRegistry* registry,
    engine::GraphLoader loader, std::function<bool()> device_ready) {
  if (options.grpc_port < 0 || options.grpc_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("grpc port ", options.grpc_port, " is out of range"));
  }
  if (options.metrics_port < -1 || options.metrics_port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics port ", options.metrics_port, " is out of range"));
  }
  if (options.max_message_bytes <= 0) {
    return absl::InvalidArgumentError("max message bytes must be positive");
  }
  if (registry == nullptr) {
    return absl::InvalidArgumentError("no backend registry");
  }
  absl::Status repository = absl::OkStatus();
  if (!options.model_repository.empty()) {
    repository = CheckRepository(options.model_repository);
    if (!repository.ok() && options.exit_on_error) return repository;
  }
  auto server = std::unique_ptr<Server>(new Server(
      options, registry, std::move(loader), std::move(device_ready)));
  absl::Status s = server->StartServing();
  if (!s.ok()) return s;

  if (!repository.ok()) {
    server->repository_unreadable_ = true;
    VTASERVE_LOG(kError, absl::StrCat(repository.message(),
                                      "; serving nothing, not ready "
                                      "(--exit-on-error=false)"));
  } else if (!options.model_repository.empty()) {
    absl::Status loaded = server->manager_->LoadAll();
    if (!loaded.ok()) {
      VTASERVE_LOG(kError,
                   absl::StrCat("model repository: ", loaded.message()));
    }
  }
  {
    absl::MutexLock lock(&server->mu_);
    server->started_ = true;
  }
  server->UpdateHealth();
  return server;
}

absl::Status Server::StartServing() {
  auto creds = MakeCredentials(options_);
  if (!creds.ok()) return creds.status();

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default: a second server on a used port would
  // bind too and take a share of the requests.
  const int reuse_port = options_.reuse_grpc_port ? 1 : 0;
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, reuse_port);
  builder.AddListeningPort(
      absl::StrCat(options_.grpc_address, ":", options_.grpc_port), *creds,
      &grpc_port_);
  builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
  builder.SetMaxSendMessageSize(options_.max_message_bytes);
  builder.RegisterService(service_.get());
  grpc_server_ = builder.BuildAndStart();
  if (grpc_server_ == nullptr || grpc_port_ <= 0) {
    if (!options_.tls_cert.empty()) {
      // gRPC reports unusable PEM only as a failed port: if the address
      // binds in plaintext, the TLS files are what it rejected.
      grpc::ServerBuilder probe;
      probe.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, reuse_port);
      grpc::CallbackGenericService no_methods;  // a server needs a service
      probe.RegisterCallbackGenericService(&no_methods);
      int probe_port = 0;
      probe.AddListeningPort(
          absl::StrCat(options_.grpc_address, ":", options_.grpc_port),
          grpc::InsecureServerCredentials(), &probe_port);
      std::unique_ptr<grpc::Server> probe_server = probe.BuildAndStart();
      if (probe_server != nullptr) probe_server->Shutdown();
      if (probe_server != nullptr && probe_port > 0) {
        return absl::InvalidArgumentError(
            "--tls-cert, --tls-key or --tls-client-ca: gRPC rejected the "
            "PEM (not a certificate or key, or the key does not match)");
      }
    }
    return absl::UnavailableError(absl::StrCat(
        "cannot serve gRPC on ", options_.grpc_address, ":", options_.grpc_port,
        ": port ", options_.grpc_port,
        " is in use or the address cannot be bound",
        options_.reuse_grpc_port ? ""
                                 : " (--reuse-grpc-port lets servers share "
                                   "a port)"));
  }
  if (auto* health = grpc_server_->GetHealthCheckService()) {
    health->SetServingStatus("", false);
  }

  if (options_.metrics_port >= 0) {
    const std::string address =
        absl::StrCat(options_.metrics_address, ":", options_.metrics_port);
    try {
      exposer_ = std::make_unique<prometheus::Exposer>(address);
      exposer_->RegisterCollectable(registry_);
      const std::vector<int> ports = exposer_->GetListeningPorts();
      metrics_port_ = ports.empty() ? -1 : ports.front();
    } catch (const std::exception& e) {
      grpc_server_->Shutdown();
      return absl::UnavailableError(
          absl::StrCat("cannot serve metrics on ", address, ": ", e.what()));
    }
  }
  VTASERVE_LOG(kInfo, absl::StrCat("serving gRPC on port ", grpc_port_,
                                   ", metrics on port ", metrics_port_));
  return absl::OkStatus();
}

Server::~Server() { Shutdown(options_.exit_timeout); }

bool Server::Ready() const {
  {
    absl::MutexLock lock(&mu_);
    if (!started_ || draining_) return false;
  }
  if (repository_unreadable_) return false;
  if (device_ready_ && !device_ready_()) return false;
  return manager_->AllReady();
}

void Server::UpdateHealth() {
  absl::MutexLock health_lock(&health_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (draining_ || grpc_server_ == nullptr) return;
  }
  const bool device_ok = !device_ready_ || device_ready_();
  grpc::HealthCheckServiceInterface* health =
      grpc_server_->GetHealthCheckService();
  for (const engine::ModelState& row : manager_->Index()) {
    const bool ready =
        row.state == engine::ModelState::State::kReady && device_ok;
    if (health != nullptr) health->SetServingStatus(row.name, ready);
    absl::StatusOr<std::shared_ptr<const engine::ModelInfo>> info =
        manager_->Find(row.name, "");
    if (info.ok()) {
      metrics_->SetPlacement(**info);
    } else {
      metrics_->RemovePlacement(row.name);
    }
  }
  const bool ready = Ready();
  if (health != nullptr) {
    health->SetServingStatus("", ready);
    health->SetServingStatus("inference.GRPCInferenceService", ready);
  }
}

void Server::RunControl(std::function<void()> fn) {
  {
    absl::MutexLock lock(&mu_);
    if (!draining_) {
      control_threads_.emplace_back(std::move(fn));
      return;
    }
  }
  // Draining: Shutdown may already have joined the control threads.
  fn();
}

void Server::Drain(absl::Duration timeout) {
  {
    absl::MutexLock lock(&mu_);
    if (draining_) {
      auto drained = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return drained_;
      };
      mu_.Await(absl::Condition(&drained));
      return;
    }
    draining_ = true;
  }
  const absl::Time deadline = absl::Now() + timeout;
  VTASERVE_LOG(kInfo, absl::StrCat("draining for up to ",
                                   absl::FormatDuration(timeout)));
  {
    absl::MutexLock health_lock(&health_mu_);
    if (grpc_server_ != nullptr) {
      if (auto* health = grpc_server_->GetHealthCheckService()) {
        health->SetServingStatus(false);
        health->Shutdown();
      }
    }
  }
  service_->StartDraining();
  // Accepted requests run to completion (or are cancelled at the deadline);
  // then gRPC reports each one done, its status sent.
  manager_->Shutdown(deadline);
  while (service_->InFlight() > 0 &&
         absl::Now() < deadline + absl::Seconds(1)) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    threads.swap(control_threads_);
  }
  for (std::thread& t : threads) t.join();
  VTASERVE_LOG(kInfo, "drained");
  absl::MutexLock lock(&mu_);
  drained_ = true;
}

void Server::Shutdown(absl::Duration timeout) {
  Drain(timeout);
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopped_;
      };
      mu_.Await(absl::Condition(&stopped));
      return;
    }
    stopping_ = true;
  }
  if (grpc_server_ != nullptr) {
    grpc_server_->Shutdown(std::chrono::system_clock::now() +
                           std::chrono::milliseconds(200));
    grpc_server_->Wait();
  }
  exposer_.reset();
  VTASERVE_LOG(kInfo, "server stopped");
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

}  // namespace vtaserve::server
