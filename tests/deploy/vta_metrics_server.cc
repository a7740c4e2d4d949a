// deploy_vta_server: the real vtaserve::server::Server with the VTA backend
// (its simulator) registered before the CPU and reference backends, so the
// deployment test can check the dashboard's VTA panels (MODELED device time,
// cycle counters, fallbacks) against metrics the server really exports while
// build/server/vtaserve registers no VTA backend. Test-only; the production
// binary stays server/main.cc.
//   deploy_vta_server --model-repository=DIR [--vta-config=pynq]
//       [--grpc-port=0] [--metrics-port=0] [--exit-timeout-secs=5]
//       [--cpu-threads=1]
// Serves on loopback (port 0: a free one, logged by the server);
// SIGTERM/SIGINT drain and exit.
#include <signal.h>

#include <cstdio>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cpu_backend/cpu_backend.h"
#include "engine/backend_registry.h"
#include "engine/onnx/onnx_importer.h"
#include "engine/reference_backend.h"
#include "server/server.h"
#include "vta_backend/vta_backend.h"

int main(int argc, char** argv) {
  vtaserve::server::ServerOptions options;
  options.grpc_address = "127.0.0.1";
  options.metrics_address = "127.0.0.1";
  options.grpc_port = 0;
  options.metrics_port = 0;
  options.exit_timeout = absl::Seconds(5);
  options.cpu_threads = 1;
  std::string vta_config = "pynq";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const size_t eq = a.find('=');
    const std::string key = a.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : a.substr(eq + 1);
    int n = 0;
    const bool is_int = absl::SimpleAtoi(value, &n);
    if (key == "--model-repository") {
      options.model_repository = value;
    } else if (key == "--vta-config") {
      vta_config = value;
    } else if (key == "--exit-timeout-secs" && is_int) {
      options.exit_timeout = absl::Seconds(n);
    } else if (key == "--grpc-port" && is_int) {
      options.grpc_port = n;
    } else if (key == "--metrics-port" && is_int) {
      options.metrics_port = n;
    } else if (key == "--cpu-threads" && is_int) {
      options.cpu_threads = n;
    } else {
      std::fprintf(stderr, "deploy_vta_server: unknown argument '%s'\n",
                   a.c_str());
      return 2;
    }
  }
  options.vta_config = vta_config;

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  vtaserve::engine::BackendRegistry registry;
  vtaserve::vta::VtaOptions vta;
  vta.config = vta_config;
  auto vta_backend = vtaserve::vta::CreateVtaBackend(vta);
  if (!vta_backend.ok()) {
    std::fprintf(stderr, "vta: %s\n", vta_backend.status().ToString().c_str());
    return 1;
  }
  absl::Status registered = registry.Register(*std::move(vta_backend));
  vtaserve::cpu::CpuOptions cpu;
  cpu.threads = options.cpu_threads;
  registered.Update(registry.Register(vtaserve::cpu::CreateCpuBackend(cpu)));
  registered.Update(
      registry.Register(vtaserve::engine::CreateReferenceBackend()));
  if (!registered.ok()) {
    std::fprintf(stderr, "backends: %s\n", registered.ToString().c_str());
    return 1;
  }
  auto loader = [](const std::string& path,
                   const vtaserve::engine::ModelConfig& config) {
    vtaserve::engine::ImportOptions import;
    import.requant.shift_group = config.shift_group;
    import.model_name = config.name;
    return vtaserve::engine::ImportOnnxFile(path, import);
  };
  auto server = vtaserve::server::Server::Start(options, &registry, loader);
  if (!server.ok()) {
    std::fprintf(stderr, "cannot start: %s\n",
                 server.status().ToString().c_str());
    return 1;
  }
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  (*server)->Shutdown(options.exit_timeout);
  return 0;
}
