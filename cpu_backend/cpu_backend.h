// The CPU backend ("cpu"): runs every engine op on the host with int8
// kernels (AVX-512 VNNI, AVX-VNNI, AVX2 or portable scalar, chosen at run
// time), bit-exact with engine/reference_ops.cc. Each backend owns one
// oneTBB task_arena (CpuOptions::threads) shared by the models it compiles;
// there is no global state. A model whose options carry "cpu_threads" = N
// (model config field cpu_threads; N > 0 and not the backend's size) runs
// on an arena of N threads instead, one per size, shared by the models
// asking for it. With a profile, each layer reports the threads that ran a
// piece of it as the counter "threads_used". Activations stay NHWC between CPU
// layers and are converted at partition boundaries (the engine's NCHW).
// Thread-safety: per engine/backend.h. The CompiledModels share the
// backend's arena and keep it alive (they may outlive the Backend object).
#ifndef VTASERVE_CPU_BACKEND_CPU_BACKEND_H_
#define VTASERVE_CPU_BACKEND_CPU_BACKEND_H_

#include <memory>

#include "cpu_backend/cpu_isa.h"
#include "engine/backend.h"

namespace vtaserve::cpu {

struct CpuOptions {
  // Worker threads of the backend's task_arena. Default: 0, every core the
  // process may use.
  int threads = 0;
  // Kernel path. Default: kAuto, the fastest this CPU supports (CPUID).
  // Forcing a path the CPU lacks makes Compile fail with FailedPrecondition.
  CpuIsa isa = CpuIsa::kAuto;
  // Timed runs EstimateCost makes of a node after one warm-up; it reports
  // the median. Default: 3.
  int cost_runs = 3;
};

// Creates the backend; Name() is "cpu".
std::unique_ptr<engine::Backend> CreateCpuBackend(const CpuOptions& options);

}  // namespace vtaserve::cpu

#endif  // VTASERVE_CPU_BACKEND_CPU_BACKEND_H_
