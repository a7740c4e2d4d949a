// ThreadPool: ParallelFor and ParallelForDynamic cover every index exactly
// once, in the promised pieces (contiguous; dynamic blocks aligned to the
// block size, only the last one short), for 1, 2 and 5 threads, empty and
// tiny ranges, and blocks larger than the range; a stalled thread's share
// of a dynamic loop is finished by the others.
#include "cpu_backend/parallel.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace vtaserve::cpu {
namespace {

struct Seen {
  explicit Seen(int64_t n) : counts(n) {}
  std::vector<std::atomic<int>> counts;
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> calls;
  void Record(int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) counts[i].fetch_add(1);
    std::lock_guard<std::mutex> lock(mu);
    calls.emplace_back(b, e);
  }
};

TEST(ThreadPoolTest, DynamicCoversEveryIndexOnceInAlignedBlocks) {
  for (const int threads : {1, 2, 5}) {
    ThreadPool pool(threads);
    for (const int64_t n : {0, 1, 7, 8, 9, 100, 2092}) {
      for (const int64_t block : {1, 3, 8, 5000}) {
        SCOPED_TRACE(
            absl::StrCat("threads ", threads, " n ", n, " block ", block));
        Seen seen(n);
        pool.ParallelForDynamic(
            n, [&](int64_t b, int64_t e) { seen.Record(b, e); }, block);
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_EQ(seen.counts[i].load(), 1) << "index " << i;
        }
        if (n == 0) {
          EXPECT_TRUE(seen.calls.empty());
          continue;
        }
        const bool one_call = threads == 1 || block >= n;
        if (one_call) {
          ASSERT_EQ(seen.calls.size(), 1u);
          EXPECT_EQ(seen.calls[0], std::make_pair(int64_t{0}, n));
          continue;
        }
        EXPECT_EQ(static_cast<int64_t>(seen.calls.size()),
                  (n + block - 1) / block);
        for (const auto& [b, e] : seen.calls) {
          EXPECT_EQ(b % block, 0) << b;
          EXPECT_LT(b, e);
          EXPECT_TRUE(e - b == block || e == n) << b << ".." << e;
        }
      }
    }
  }
}

TEST(ThreadPoolTest, DynamicHandsAStalledThreadsShareToTheOthers) {
  // Block 0 is the first of the first share; whichever thread takes it
  // waits (up to 20 s) until every other block has run. Without stealing
  // from the end of its share, blocks 1..49 would wait behind it. Needs a
  // second thread running at the same time.
  if (std::thread::hardware_concurrency() < 2) {
    GTEST_SKIP() << "one hardware thread: no second thread to take the share";
  }
  ThreadPool pool(2);
  constexpr int64_t kBlocks = 100;
  std::atomic<int64_t> done{0};
  bool others_finished = false;
  pool.ParallelForDynamic(
      kBlocks,
      [&](int64_t b, int64_t) {
        if (b != 0) {
          done.fetch_add(1);
          return;
        }
        const auto deadline =
            std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (done.load() < kBlocks - 1 &&
               std::chrono::steady_clock::now() < deadline) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        others_finished = done.load() == kBlocks - 1;
      },
      1);
  EXPECT_TRUE(others_finished);
  EXPECT_EQ(done.load(), kBlocks - 1);
}

TEST(ThreadPoolTest, StaticCoversEveryIndexOnceInAtMostThreadsPieces) {
  for (const int threads : {1, 2, 5}) {
    ThreadPool pool(threads);
    for (const int64_t n : {0, 1, 4, 5, 6, 1000}) {
      SCOPED_TRACE(absl::StrCat("threads ", threads, " n ", n));
      Seen seen(n);
      pool.ParallelFor(n, [&](int64_t b, int64_t e) { seen.Record(b, e); });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(seen.counts[i].load(), 1) << i;
      EXPECT_LE(static_cast<int64_t>(seen.calls.size()), threads);
      for (const auto& [b, e] : seen.calls) EXPECT_LT(b, e);
    }
  }
}

}  // namespace
}  // namespace vtaserve::cpu
