// engine::ParallelRunner on the CPU backend's oneTBB pool (parallel.h), so
// other backends (the VTA backend's first-conv transforms) can spread host
// work over the same kind of arena without including oneTBB or depending on
// the CPU backend's internals.
// Thread-safety: ParallelFor may be called from several threads at once.
#ifndef VTASERVE_CPU_BACKEND_PARALLEL_RUNNER_H_
#define VTASERVE_CPU_BACKEND_PARALLEL_RUNNER_H_

#include <memory>

#include "engine/parallel_runner.h"

namespace vtaserve::cpu {

class ThreadPool;

// A runner over its own ThreadPool of `threads` workers (<= 0: every core
// the process may use, as CpuOptions::threads). oneTBB's workers are
// process-wide: arenas of the same size share them rather than adding
// threads.
std::shared_ptr<engine::ParallelRunner> CreateCpuParallelRunner(int threads);

// A runner over an existing pool (e.g. one a backend owns); keeps it alive.
std::shared_ptr<engine::ParallelRunner> CreateCpuParallelRunner(
    std::shared_ptr<ThreadPool> pool);

}  // namespace vtaserve::cpu

#endif  // VTASERVE_CPU_BACKEND_PARALLEL_RUNNER_H_
