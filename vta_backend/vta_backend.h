// The VTA backend ("vta"): adapts the VTA compiler (vta_backend/compiler)
// and a device to the engine's Backend contract. The backend owns its device
// (by default its own simulator, vta_backend/sim, one per backend, no
// globals; VtaOptions::device_factory supplies another); every CompiledModel
// it returns shares that device and keeps it alive.
// Per-model configuration: the Compile/EstimateCost option "vta_config" (a
// preset name or a vta_config.json path; model config field vta_config)
// selects another configuration for that model: with the built-in simulator
// the backend makes one more simulator per distinct configuration, shared by
// the models naming it; a device_factory device (a board, whose bitstream
// fixes the configuration) refuses any configuration but its own with
// InvalidArgument naming the field. Supports() has no options and answers
// for the backend's own configuration.
// Thread-safety: per engine/backend.h. Supports/EstimateCost are pure;
// Compile may run concurrently (the device serializes its calls); each
// layer's run is atomic on the device, so distinct CompiledModels may
// execute concurrently.
#ifndef VTASERVE_VTA_BACKEND_VTA_BACKEND_H_
#define VTASERVE_VTA_BACKEND_VTA_BACKEND_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/backend.h"
#include "engine/parallel_runner.h"
#include "vta_backend/config.h"
#include "vta_backend/device.h"

namespace vtaserve::vta {

// Creates the device a backend runs on, for the backend's resolved config.
// Errors are returned by CreateVtaBackend unchanged.
using VtaDeviceFactory =
    std::function<absl::StatusOr<std::shared_ptr<VtaDevice>>(
        const VtaConfig& config)>;

struct VtaOptions {
  // VTA configuration: a preset name ("pynq", "1x32x32", "ultra96", ...) or
  // a vta_config.json path. Default: "pynq".
  std::string config = "pynq";
  // Simulated DRAM of the backend's device, bytes. Default: 1 GiB.
  uint64_t device_memory_bytes = uint64_t{1} << 30;
  // Device-time budget of one layer run (VTADeviceRun's wait); a longer run
  // fails with DeadlineExceeded. Default: 10 s.
  absl::Duration run_timeout = absl::Seconds(10);
  // Host packing/unpacking throughput assumed by EstimateCost for the board's
  // CPU (bytes per second; the host transforms are byte shuffles). Default:
  // 200e6, our assumption for a Cortex-A9 class core.
  double host_transform_bytes_per_second = 200e6;
  // Runs the host-side input transforms of first convs (first_conv.h) in
  // parallel, e.g. the CPU backend's pool (cpu_backend/parallel_runner.h).
  // Shared with every compiled model. Default: null (the calling thread).
  std::shared_ptr<engine::ParallelRunner> host_runner;
  // The built-in simulator also splits its large GEMM instructions over
  // host_runner's threads (sim::SimOptions::runner; results are identical
  // either way). Default: true.
  bool simulator_uses_host_runner = true;
  // Timed runs EstimateCost makes of a first conv's host transform (after
  // one warm-up); it reports the median. Default: 3.
  int host_timing_runs = 3;
  // Turns on the simulator's opt-in im2col load extension
  // (VtaConfig::ext_im2col_load) on top of `config`: the vta_im2col strategy
  // then gathers its windows on the device's load path instead of on the
  // host. No real board has it. Default: false.
  bool ext_im2col_load = false;
  // Creates the backend's device (a board driver, or a test's
  // fault-injecting device). Default: null, the built-in simulator with
  // `device_memory_bytes` of DRAM and, when simulator_uses_host_runner,
  // host_runner's threads.
  VtaDeviceFactory device_factory;
};

// Creates the backend and its device. NotFound / InvalidArgument for a bad
// config name or file, InvalidArgument for bad options.
absl::StatusOr<std::unique_ptr<engine::Backend>> CreateVtaBackend(
    const VtaOptions& options);

}  // namespace vtaserve::vta

#endif  // VTASERVE_VTA_BACKEND_VTA_BACKEND_H_
