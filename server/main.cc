// vtaserve: the gRPC inference server binary. Flags are parsed here only and
// copied into ServerOptions; backends are wired into the registry here.
// SIGTERM/SIGINT drain the server (health NOT_SERVING, new requests
// UNAVAILABLE, accepted ones finish up to --exit-timeout-secs) and exit 0;
// --reuse-grpc-port and --exit-on-error are Triton's start-up flags.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "engine/backend_registry.h"
#include "engine/common/logging.h"
#include "engine/onnx/onnx_importer.h"
#include "engine/reference_backend.h"
#include "server/device_probe.h"
#include "server/server.h"
#ifdef VTASERVE_HAVE_CPU_BACKEND
#include "cpu_backend/cpu_backend.h"
#include "cpu_backend/parallel_runner.h"
#endif
#ifdef VTASERVE_HAVE_VTA_BACKEND
#include "vta_backend/driver/device_selection.h"
#include "vta_backend/vta_backend.h"
#endif

ABSL_FLAG(std::string, model_repository, "",
          "Model repository: <repo>/<model>/[config.pbtxt] and "
          "<repo>/<model>/<version>/model.onnx");
ABSL_FLAG(int, grpc_port, 8001, "gRPC port (0: pick a free one)");
ABSL_FLAG(bool, reuse_grpc_port, false,
          "Let other processes bind the same gRPC port (requests are then "
          "split between them); off, a port in use is an error");
ABSL_FLAG(bool, exit_on_error, true,
          "Exit when the model repository does not exist or cannot be read; "
          "false keeps running, not ready (models that fail to load never "
          "stop the server)");
ABSL_FLAG(int, metrics_port, 8002,
          "Prometheus /metrics port (0: pick a free one, -1: off)");
ABSL_FLAG(std::string, vta_config, "",
          "VTA configuration (name or JSON file) for models that name none");
ABSL_FLAG(std::string, vta_device, "sim",
          "VTA device: sim (built-in simulator) or a board: pynq, ultra96, "
          "zcu104, de10nano (its VTA config preset unless --vta-config)");
ABSL_FLAG(std::string, vta_board_json, "",
          "JSON file overriding the board's register/DMA nodes and addresses");
ABSL_FLAG(int, device_degrade_after, 3,
          "Consecutive device faults after which a model leaves the device "
          "for the CPU pool (0: never)");
ABSL_FLAG(int, device_probe_secs, 30,
          "While a model is degraded, seconds between device self-tests that "
          "can take the device back");
ABSL_FLAG(int, cpu_threads, 0, "CPU backend threads (0: every core)");
ABSL_FLAG(std::string, tls_cert, "", "PEM server certificate (enables TLS)");
ABSL_FLAG(std::string, tls_key, "", "PEM server private key");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle; when set, clients must present certificates");
ABSL_FLAG(int, exit_timeout_secs, 30,
          "On SIGTERM/SIGINT, how long accepted requests may finish");
ABSL_FLAG(int, max_message_bytes, 64 << 20,
          "Largest gRPC request or response message, bytes");

namespace {

// Abseil flags are spelled with underscores; accept --grpc-port too.
std::vector<std::string> NormalizeFlagDashes(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (i > 0 && a.size() > 2 && a.rfind("--", 0) == 0) {
      const size_t end = std::min(a.find('='), a.size());
      for (size_t j = 2; j < end; ++j) {
        if (a[j] == '-') a[j] = '_';
      }
    }
    args.push_back(std::move(a));
  }
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("vtaserve --model-repository=DIR [flags]");
  std::vector<std::string> args = NormalizeFlagDashes(argc, argv);
  std::vector<char*> arg_ptrs;
  for (std::string& a : args) arg_ptrs.push_back(a.data());
  absl::ParseCommandLine(static_cast<int>(arg_ptrs.size()), arg_ptrs.data());

  vtaserve::server::ServerOptions options;
  options.model_repository = absl::GetFlag(FLAGS_model_repository);
  options.grpc_port = absl::GetFlag(FLAGS_grpc_port);
  options.reuse_grpc_port = absl::GetFlag(FLAGS_reuse_grpc_port);
  options.exit_on_error = absl::GetFlag(FLAGS_exit_on_error);
  options.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  options.vta_config = absl::GetFlag(FLAGS_vta_config);
  options.cpu_threads = absl::GetFlag(FLAGS_cpu_threads);
  if (absl::GetFlag(FLAGS_device_degrade_after) < 0 ||
      absl::GetFlag(FLAGS_device_probe_secs) < 0) {
    VTASERVE_LOG(kError,
                 "--device-degrade-after and --device-probe-secs must "
                 "be >= 0");
    return 2;
  }
  options.device_faults.degrade_after =
      absl::GetFlag(FLAGS_device_degrade_after);
  options.device_faults.probe_interval =
      absl::Seconds(absl::GetFlag(FLAGS_device_probe_secs));
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  options.exit_timeout = absl::Seconds(absl::GetFlag(FLAGS_exit_timeout_secs));
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);

  // Every thread started from here on inherits the blocked signals; only
  // the sigwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  vtaserve::engine::BackendRegistry registry;
  absl::Status registered = absl::OkStatus();
  // Host-side work of other backends (the VTA first-conv transforms) runs on
  // a oneTBB arena of the CPU pool's size.
  std::shared_ptr<vtaserve::engine::ParallelRunner> host_runner;
#ifdef VTASERVE_HAVE_CPU_BACKEND
  {
    vtaserve::cpu::CpuOptions cpu;
    cpu.threads = options.cpu_threads;
    registered.Update(registry.Register(vtaserve::cpu::CreateCpuBackend(cpu)));
    host_runner = vtaserve::cpu::CreateCpuParallelRunner(options.cpu_threads);
  }
#endif
  // The accelerator (the built-in simulator unless --vta-config names a
  // board or file): the server stays NOT_SERVING when it cannot come up.
  bool device_ok = true;
  vtaserve::engine::Backend* device_backend = nullptr;  // self-tested
#ifdef VTASERVE_HAVE_VTA_BACKEND
  {
    vtaserve::vta::VtaOptions vta;
    if (!options.vta_config.empty()) vta.config = options.vta_config;
    vta.host_runner = host_runner;
    const absl::Status selected = vtaserve::vta::ApplyVtaDevice(
        absl::GetFlag(FLAGS_vta_device), absl::GetFlag(FLAGS_vta_board_json),
        !options.vta_config.empty(), vta);
    if (!selected.ok()) {
      VTASERVE_LOG(kError, absl::StrCat("--vta-device: ", selected.message()));
      return 2;
    }
    auto backend = vtaserve::vta::CreateVtaBackend(vta);
    if (backend.ok()) {
      device_backend = backend->get();
      registered.Update(registry.Register(*std::move(backend)));
    } else {
      device_ok = false;
      VTASERVE_LOG(kError,
                   absl::StrCat("VTA device: ", backend.status().message()));
    }
  }
#endif
  registered.Update(
      registry.Register(vtaserve::engine::CreateReferenceBackend()));
  if (!registered.ok()) {
    VTASERVE_LOG(kError, absl::StrCat("backends: ", registered.message()));
    return 1;
  }

  auto loader = [](const std::string& path,
                   const vtaserve::engine::ModelConfig& config) {
    vtaserve::engine::ImportOptions import;
    import.requant.shift_group = config.shift_group;
    import.model_name = config.name;
    return vtaserve::engine::ImportOnnxFile(path, import);
  };
  // Not ready until the device's self-test passes (retried every 10 s).
  vtaserve::server::DeviceProbe probe(device_backend, absl::Seconds(10));
  absl::StatusOr<std::unique_ptr<vtaserve::server::Server>> server =
      vtaserve::server::Server::Start(
          options, &registry, loader,
          [device_ok, &probe] { return device_ok && probe.Ready(); });
  if (!server.ok()) {
    VTASERVE_LOG(kError,
                 absl::StrCat("cannot start: ", server.status().message()));
    return 1;
  }
  probe.Start([s = server->get()] { s->UpdateHealth(); });
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  VTASERVE_LOG(kInfo, absl::StrCat("received signal ", signal_number,
                                   ", shutting down"));
  (*server)->Drain(options.exit_timeout);
  probe.Stop();
  // Exit without stopping gRPC: grpc::Server::Shutdown cancels the calls
  // that reach it while it stops, and their clients see CANCELLED, which
  // they do not retry. Exiting resets the connections instead: a call in
  // flight then ends UNAVAILABLE, which clients retry elsewhere. Nothing is
  // lost: Drain returns once every accepted request's response was sent.
  VTASERVE_LOG(kInfo, "exiting");
  std::fflush(nullptr);
  std::_Exit(0);
}
