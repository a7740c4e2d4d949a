// ThreadPool: ParallelFor and ParallelForDynamic cover every index exactly
// once, in the promised pieces (contiguous; dynamic blocks aligned to the
// block size, only the last one short), for 1, 2 and 5 threads, empty and
// tiny ranges, and blocks larger than the range.
#include "cpu_backend/parallel.h"

#include <atomic>
#include <cstdint>
#include <mutex>
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
        SCOPED_TRACE(absl::StrCat("threads ", threads, " n ", n, " block ", block));
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
        EXPECT_EQ(static_cast<int64_t>(seen.calls.size()), (n + block - 1) / block);
        for (const auto& [b, e] : seen.calls) {
          EXPECT_EQ(b % block, 0) << b;
          EXPECT_LT(b, e);
          EXPECT_TRUE(e - b == block || e == n) << b << ".." << e;
        }
      }
    }
  }
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
