// GEMM dispatch: index validation, and the split of one GEMM over the
// runner's threads with its wall-clock back-off heuristic.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "engine/common/status_macros.h"
#include "vta_backend/sim/sim_device.h"
#include "vta_backend/sim/sim_internal.h"

namespace vtaserve::vta::sim {

// Pieces each thread's share of a split GEMM is cut into.
constexpr int kGemmPiecesPerThread = 4;
// Consecutive split GEMMs in which the other threads took less than a
// quarter of the pieces before splitting pauses, and for how many GEMMs
// (doubling, up to the maximum, while the misses go on).
constexpr int kSplitMissesBeforeBackoff = 3;
// A split GEMM slower than this fraction of the one-thread time is a miss.
constexpr double kSplitMinSpeedup = 0.8;
constexpr int kSplitBackoffMaxGemms = 1024;

absl::Status SimDevice::ExecGemm(const GemmInsn& g) {
  const auto& uops = sram_.uops;
  const uint64_t max_dst = MaxIndex(
      uops, g.uop_bgn, g.uop_end, [](const isa::Uop& u) { return u.dst_idx; },
      g.iter_out, g.dst_factor_out, g.iter_in, g.dst_factor_in);
  if (max_dst >= config_.AccDepth()) {
    return absl::InvalidArgumentError(absl::StrCat("GEMM accumulator index ",
                                                   max_dst, " exceeds depth ",
                                                   config_.AccDepth()));
  }
  const int acc_lanes = config_.AccLanes();
  if (g.reset) {
    for (uint32_t o = 0; o < g.iter_out; ++o) {
      for (uint32_t i = 0; i < g.iter_in; ++i) {
        for (uint32_t u = g.uop_bgn; u < g.uop_end; ++u) {
          const uint32_t a =
              uops[u].dst_idx + o * g.dst_factor_out + i * g.dst_factor_in;
          DetachOut(a);  // reset leaves OUT unchanged (Chisel)
          std::fill_n(&sram_.acc[size_t{a} * acc_lanes], acc_lanes, 0);
        }
      }
    }
    return absl::OkStatus();
  }
  const uint64_t max_src = MaxIndex(
      uops, g.uop_bgn, g.uop_end, [](const isa::Uop& u) { return u.src_idx; },
      g.iter_out, g.src_factor_out, g.iter_in, g.src_factor_in);
  const uint64_t max_wgt = MaxIndex(
      uops, g.uop_bgn, g.uop_end, [](const isa::Uop& u) { return u.wgt_idx; },
      g.iter_out, g.wgt_factor_out, g.iter_in, g.wgt_factor_in);
  if (max_src >= config_.InpDepth()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "GEMM input index ", max_src, " exceeds depth ", config_.InpDepth()));
  }
  if (max_wgt >= config_.WgtDepth()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "GEMM weight index ", max_wgt, " exceeds depth ", config_.WgtDepth()));
  }
  GemmCall c;
  c.acc = sram_.acc.data();
  c.out_tracks = sram_.out_tracks.data();
  c.inp = sram_.inp.data();
  c.wgt = sram_.wgt.data();
  c.uops = uops.data();
  c.uop_bgn = g.uop_bgn;
  c.uop_end = g.uop_end;
  c.iter_out = g.iter_out;
  c.iter_in = g.iter_in;
  c.dst_out = g.dst_factor_out;
  c.dst_in = g.dst_factor_in;
  c.src_out = g.src_factor_out;
  c.src_in = g.src_factor_in;
  c.wgt_out = g.wgt_factor_out;
  c.wgt_in = g.wgt_factor_in;
  c.batch = config_.Batch();
  c.block_in = config_.BlockIn();
  c.block_out = config_.BlockOut();
  engine::ParallelRunner* runner = options_.runner.get();
  const uint64_t work =
      uint64_t{g.iter_out} * g.iter_in * (g.uop_end - g.uop_bgn);
  const int threads = runner == nullptr ? 1 : runner->NumThreads();
  const bool eligible = threads > 1 && work >= options_.parallel_min_uops;
  bool split = eligible;
  if (split && split_backoff_ > 0) {
    --split_backoff_;
    split = false;
  }
  const auto t0 = std::chrono::steady_clock::now();
  if (!split) {
    gemm_fn_(c);
    if (eligible) {
      // Single-thread speed of eligible GEMMs, the yardstick for splits.
      const double ns = std::chrono::duration<double, std::nano>(
                            std::chrono::steady_clock::now() - t0)
                            .count() /
                        work;
      ns_per_uop_one_thread_ = ns_per_uop_one_thread_ > 0
                                   ? 0.9 * ns_per_uop_one_thread_ + 0.1 * ns
                                   : ns;
    }
    return absl::OkStatus();
  }
  // Disjoint destination ranges (the compiler's GEMMs spread their work
  // evenly over a dense ACC range), a few per thread, claimed one at a
  // time: a thread that starts late or is preempted (the host may be
  // shared) holds up at most one small piece.
  uint64_t min_dst = std::numeric_limits<uint64_t>::max();
  for (uint32_t u = g.uop_bgn; u < g.uop_end; ++u) {
    min_dst = std::min<uint64_t>(min_dst, uops[u].dst_idx);
  }
  const uint64_t span = max_dst + 1 - min_dst;
  const uint64_t pieces =
      std::min<uint64_t>(uint64_t{kGemmPiecesPerThread} * threads, span);
  std::atomic<uint64_t> next{0}, helped{0};
  const std::thread::id caller = std::this_thread::get_id();
  runner->ParallelFor(threads, [&](int64_t, int64_t) {
    uint64_t mine = 0;
    for (uint64_t p = next.fetch_add(1); p < pieces; p = next.fetch_add(1)) {
      GemmCall part = c;
      part.dst_lo = static_cast<uint32_t>(min_dst + span * p / pieces);
      part.dst_hi = static_cast<uint32_t>(min_dst + span * (p + 1) / pieces);
      gemm_fn_(part);
      ++mine;
    }
    if (std::this_thread::get_id() != caller) helped += mine;
  });
  // A split that did not pay off: the other threads took under a quarter
  // of the pieces (their cores are busy), or the whole took nearly as long
  // as one thread would have (a helper was preempted mid-piece). After a
  // few in a row, run the next GEMMs on this thread, then try again.
  const double ns = std::chrono::duration<double, std::nano>(
                        std::chrono::steady_clock::now() - t0)
                        .count() /
                    work;
  const bool slow = ns_per_uop_one_thread_ > 0 &&
                    ns > kSplitMinSpeedup * ns_per_uop_one_thread_;
  if (helped.load() * 4 < pieces || slow) {
    if (++split_misses_ >= kSplitMissesBeforeBackoff) {
      // Longer pauses while the cores stay busy.
      split_misses_ = 0;
      split_backoff_ = split_backoff_length_;
      split_backoff_length_ =
          std::min(2 * split_backoff_length_, kSplitBackoffMaxGemms);
    }
  } else {
    split_misses_ = 0;
    split_backoff_length_ = kSplitBackoffGemms;
  }
  return absl::OkStatus();
}
}  // namespace vtaserve::vta::sim
