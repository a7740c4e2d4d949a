// ParallelRunner: a parallel-for that engine code and backends can use for
// host-side work (e.g. the VTA backend's im2col packing) without depending
// on the CPU backend, which implements it on its oneTBB arena.
// Thread-safety: ParallelFor may be called from several threads at once.
#ifndef VTASERVE_ENGINE_PARALLEL_RUNNER_H_
#define VTASERVE_ENGINE_PARALLEL_RUNNER_H_

#include <cstdint>

#include "absl/functional/function_ref.h"

namespace vtaserve::engine {

class ParallelRunner {
 public:
  virtual ~ParallelRunner() = default;

  // Worker threads available to ParallelFor (>= 1).
  virtual int NumThreads() const = 0;

  // Calls fn(begin, end) over disjoint ranges covering [0, n), statically
  // partitioned, and returns when all calls are done. `fn` must not throw.
  virtual void ParallelFor(int64_t n,
                           absl::FunctionRef<void(int64_t, int64_t)> fn) = 0;
};

}  // namespace vtaserve::engine

#endif  // VTASERVE_ENGINE_PARALLEL_RUNNER_H_
