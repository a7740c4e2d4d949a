#include "cpu_backend/parallel_runner.h"

#include <utility>

#include "cpu_backend/parallel.h"

namespace vtaserve::cpu {
namespace {

class CpuParallelRunner : public engine::ParallelRunner {
 public:
  explicit CpuParallelRunner(std::shared_ptr<ThreadPool> pool)
      : pool_(std::move(pool)) {}

  int NumThreads() const override { return pool_->num_threads(); }

  void ParallelFor(int64_t n,
                   absl::FunctionRef<void(int64_t, int64_t)> fn) override {
    pool_->ParallelFor(n, [&fn](int64_t b, int64_t e) { fn(b, e); });
  }

 private:
  std::shared_ptr<ThreadPool> pool_;
};

}  // namespace

std::shared_ptr<engine::ParallelRunner> CreateCpuParallelRunner(int threads) {
  return CreateCpuParallelRunner(std::make_shared<ThreadPool>(threads));
}

std::shared_ptr<engine::ParallelRunner> CreateCpuParallelRunner(
    std::shared_ptr<ThreadPool> pool) {
  return std::make_shared<CpuParallelRunner>(std::move(pool));
}

}  // namespace vtaserve::cpu
