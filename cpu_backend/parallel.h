// The CPU backend's thread pool: one oneTBB task_arena owned by its creator,
// with static partitioning. This is the only file of the project that
// includes oneTBB (the OpenVINO parallel.hpp pattern): kernels receive plain
// index ranges, never TBB types.
// Thread-safety: ParallelFor may be called from several threads at once (the
// arena serialises nothing; each call partitions its own range). The bodies
// must not throw (oneTBB would rethrow into the caller) and should not
// allocate.
#ifndef VTASERVE_CPU_BACKEND_PARALLEL_H_
#define VTASERVE_CPU_BACKEND_PARALLEL_H_

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace vtaserve::cpu {

// Records which threads ran the pieces of the ParallelFor* calls that the
// thread creating it makes while it lives (nested scopes: the innermost
// records), e.g. the CPU backend's per-layer "threads_used" profile counter.
// One per calling thread; its Note() may run on any pool thread.
class ThreadUsage {
 public:
  ThreadUsage() : outer_(current_) { current_ = this; }
  ~ThreadUsage() { current_ = outer_; }
  ThreadUsage(const ThreadUsage&) = delete;
  ThreadUsage& operator=(const ThreadUsage&) = delete;

  // Distinct threads that ran at least one piece.
  int count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(threads_.size());
  }

  // Records the calling thread.
  void Note() {
    const std::thread::id id = std::this_thread::get_id();
    std::lock_guard<std::mutex> lock(mu_);
    if (std::find(threads_.begin(), threads_.end(), id) == threads_.end())
      threads_.push_back(id);
  }

  // The calling thread's innermost ThreadUsage, or null.
  static ThreadUsage* Current() { return current_; }

 private:
  static inline thread_local ThreadUsage* current_ = nullptr;
  ThreadUsage* const outer_;
  mutable std::mutex mu_;
  std::vector<std::thread::id> threads_;
};

class ThreadPool {
 public:
  // threads <= 0 means every core the process may use.
  explicit ThreadPool(int threads) {
    num_threads_ = threads > 0 ? threads : tbb::info::default_concurrency();
    num_threads_ = std::max(num_threads_, 1);
    arena_ = std::make_unique<tbb::task_arena>(num_threads_);
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Calls fn(begin, end) on disjoint ranges covering [0, n): at most
  // num_threads() contiguous chunks of near-equal size (static partition),
  // none smaller than `grain` unless n is, run inside the arena. Returns
  // when every chunk has run. fn must not throw.
  template <typename Fn>
  void ParallelFor(int64_t n, const Fn& fn, int64_t grain = 1) {
    if (n <= 0) return;
    grain = std::max<int64_t>(grain, 1);
    const int64_t chunks =
        std::clamp<int64_t>(n / grain, int64_t{1}, int64_t{num_threads_});
    ThreadUsage* const usage = ThreadUsage::Current();
    if (chunks == 1) {
      if (usage != nullptr) usage->Note();
      fn(int64_t{0}, n);
      return;
    }
    arena_->execute([&] {
      tbb::parallel_for(
          tbb::blocked_range<int64_t>(0, chunks, 1),
          [&](const tbb::blocked_range<int64_t>& r) {
            if (usage != nullptr) usage->Note();
            for (int64_t t = r.begin(); t != r.end(); ++t) {
              fn(n * t / chunks, n * (t + 1) / chunks);
            }
          },
          tbb::static_partitioner());
    });
  }

  // Like ParallelFor, but self-scheduled in blocks of `block` indices, so a
  // thread that runs slow (descheduled by another tenant, or a core still
  // waking up) does less of the work instead of holding up the others.
  // Each thread first takes the blocks of its own contiguous share in
  // increasing order (the static split's locality: neighbouring blocks
  // share input rows and weight blocks, and streams stay sequential); a
  // thread whose share is done takes blocks from the end of the share with
  // the most left. Each call of fn gets one contiguous block.
  template <typename Fn>
  void ParallelForDynamic(int64_t n, const Fn& fn, int64_t block) {
    if (n <= 0) return;
    block = std::max<int64_t>(block, 1);
    const int64_t blocks = (n + block - 1) / block;
    ThreadUsage* const usage = ThreadUsage::Current();
    if (num_threads_ == 1 || blocks == 1) {
      if (usage != nullptr) usage->Note();
      fn(int64_t{0}, n);
      return;
    }
    if (blocks > kMaxDynamicBlocks) {
      // Coarser blocks keep the indices within a share's 32-bit halves.
      block = (n + kMaxDynamicBlocks - 1) / kMaxDynamicBlocks;
      ParallelForDynamic(n, fn, block);
      return;
    }
    const int64_t workers =
        std::min<int64_t>({num_threads_, blocks, kMaxDynamicShares});
    // Share t: blocks [front, back), packed as front << 32 | back so one
    // compare-and-swap claims from either end.
    Share shares[kMaxDynamicShares];
    for (int64_t t = 0; t < workers; ++t) {
      shares[t].range.store(
          Pack(blocks * t / workers, blocks * (t + 1) / workers),
          std::memory_order_relaxed);
    }
    auto run = [&](int64_t b) { fn(b * block, std::min(n, (b + 1) * block)); };
    arena_->execute([&] {
      tbb::parallel_for(
          tbb::blocked_range<int64_t>(0, workers, 1),
          [&](const tbb::blocked_range<int64_t>& r) {
            if (usage != nullptr) usage->Note();
            for (int64_t t = r.begin(); t != r.end(); ++t) {
              for (int64_t b; (b = shares[t].Claim(/*from_front=*/true)) >= 0;)
                run(b);
              for (;;) {
                // The share with the most blocks left, if any.
                int64_t victim = -1, most = 0;
                for (int64_t v = 0; v < workers; ++v) {
                  const int64_t left = shares[v].Left();
                  if (left > most) {
                    most = left;
                    victim = v;
                  }
                }
                if (victim < 0) break;
                const int64_t b = shares[victim].Claim(/*from_front=*/false);
                if (b >= 0) run(b);
              }
            }
          },
          tbb::static_partitioner());
    });
  }

  // Two-dimensional variant over [0, n0) x [0, n1): the flattened index
  // space (row-major) is split statically; fn(i0, i1_begin, i1_end) is
  // called once per row piece, so each call sees a contiguous range of the
  // inner dimension.
  template <typename Fn>
  void ParallelFor2D(int64_t n0, int64_t n1, const Fn& fn) {
    if (n0 <= 0 || n1 <= 0) return;
    ParallelFor(n0 * n1, [&](int64_t begin, int64_t end) {
      while (begin < end) {
        const int64_t i0 = begin / n1;
        const int64_t b1 = begin % n1;
        const int64_t e1 = std::min<int64_t>(n1, b1 + (end - begin));
        fn(i0, b1, e1);
        begin += e1 - b1;
      }
    });
  }

 private:
  static constexpr int64_t kMaxDynamicShares = 64;
  static constexpr int64_t kMaxDynamicBlocks = int64_t{1} << 30;

  static uint64_t Pack(int64_t front, int64_t back) {
    return static_cast<uint64_t>(front) << 32 | static_cast<uint64_t>(back);
  }

  // One thread's share of a dynamic loop's blocks (own cache line).
  struct alignas(64) Share {
    std::atomic<uint64_t> range{0};
    int64_t Left() const {
      const uint64_t v = range.load(std::memory_order_relaxed);
      const int64_t front = static_cast<int64_t>(v >> 32);
      const int64_t back = static_cast<int64_t>(v & 0xffffffffu);
      return back - front;
    }
    // Takes the first (or last) block left, or returns -1 when none is.
    int64_t Claim(bool from_front) {
      uint64_t v = range.load(std::memory_order_relaxed);
      for (;;) {
        const int64_t front = static_cast<int64_t>(v >> 32);
        const int64_t back = static_cast<int64_t>(v & 0xffffffffu);
        if (front >= back) return -1;
        const uint64_t next =
            from_front ? Pack(front + 1, back) : Pack(front, back - 1);
        if (range.compare_exchange_weak(v, next, std::memory_order_relaxed)) {
          return from_front ? front : back - 1;
        }
      }
    }
  };

  int num_threads_ = 1;
  std::unique_ptr<tbb::task_arena> arena_;
};

}  // namespace vtaserve::cpu

#endif  // VTASERVE_CPU_BACKEND_PARALLEL_H_
