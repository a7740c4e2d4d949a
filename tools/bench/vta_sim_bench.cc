// vtaserve-bench vta-sim: throughput of the VTA simulator's functional GEMM
// path. Builds a conv-like stream (LOAD INP/WGT, reset GEMM, GEMMs with
// 3x3-style uop kernels folded into two loops, ALU requantization, STORE)
// sized to ~1.8 G MAC (ResNet-18) by default, runs it on SimDevice and prints
// wall time, GMAC/s and the modeled cycles, as text and one JSON line.
//
// Flags: --config=<preset or json> (pynq), --gmac=<total G MAC> (1.8),
//        --portable (force the portable kernel), --repeat=<runs> (3),
//        --threads=<n> (1): split large GEMMs over a CPU-pool runner of n
//        threads (0: every core), --min-split=<uops> (the simulator's
//        default): smallest GEMM (uop executions) that is split.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "cpu_backend/parallel_runner.h"
#include "vta_backend/config.h"
#include "vta_backend/runtime/command_queue.h"
#include "vta_backend/sim/sim_device.h"

namespace {

using vtaserve::vta::CommandQueue;
using vtaserve::vta::DeviceBuffer;
using vtaserve::vta::KernelId;
using vtaserve::vta::UopKernel;
using vtaserve::vta::UopLoop;
using vtaserve::vta::VtaConfig;
using vtaserve::vta::isa::AluOpcode;
using vtaserve::vta::isa::MemoryType;
using vtaserve::vta::isa::Stage;
using vtaserve::vta::isa::Uop;

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "vta-sim bench: %s\n", s.ToString().c_str());
  return 1;
}

}  // namespace

int RunVtaSimBench(int argc, char** argv) {
  std::string config_name = "pynq";
  double gmac = 1.8;
  bool portable = false;
  int repeat = 3;
  int threads = 1;
  int64_t min_split = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (absl::StartsWith(a, "--config=")) {
      config_name = a.substr(9);
    } else if (absl::StartsWith(a, "--gmac=")) {
      if (!absl::SimpleAtod(a.substr(7), &gmac) || gmac <= 0)
        return Fail(absl::InvalidArgumentError("bad --gmac"));
    } else if (a == "--portable") {
      portable = true;
    } else if (absl::StartsWith(a, "--threads=")) {
      if (!absl::SimpleAtoi(a.substr(10), &threads) || threads < 0) {
        return Fail(absl::InvalidArgumentError("bad --threads"));
      }
    } else if (absl::StartsWith(a, "--min-split=")) {
      if (!absl::SimpleAtoi(a.substr(12), &min_split) || min_split < 0) {
        return Fail(absl::InvalidArgumentError("bad --min-split"));
      }
    } else if (absl::StartsWith(a, "--repeat=")) {
      if (!absl::SimpleAtoi(a.substr(9), &repeat) || repeat < 1)
        return Fail(absl::InvalidArgumentError("bad --repeat"));
    } else {
      std::fprintf(stderr,
                   "usage: vta-sim [--config=pynq] [--gmac=1.8] [--portable] "
                   "[--repeat=3] "
                   "[--threads=1] [--min-split=N]\n");
      return 2;
    }
  }
  auto config_or = vtaserve::vta::LoadVtaConfig(config_name);
  if (!config_or.ok()) return Fail(config_or.status());
  const VtaConfig config = *config_or;
  vtaserve::vta::sim::SimOptions options;
  options.force_portable_kernels = portable;
  if (min_split >= 0)
    options.parallel_min_uops = static_cast<uint64_t>(min_split);
  if (threads != 1)
    options.runner = vtaserve::cpu::CreateCpuParallelRunner(threads);
  const int sim_threads =
      options.runner == nullptr ? 1 : options.runner->NumThreads();
  auto dev_or = vtaserve::vta::sim::SimDevice::Create(config, options);
  if (!dev_or.ok()) return Fail(dev_or.status());
  auto& dev = **dev_or;

  // Tile of a 3x3 conv, stride 1: h_t x w_t outputs, co_t output blocks,
  // ci_t input blocks (vta-isa.md 9.9 recipe).
  const uint32_t h_t = 7, w_t = 14, co_t = 4, ci_t = 4, kh = 3, kw = 3;
  const uint32_t hp = h_t + kh - 1, wp = w_t + kw - 1;
  const uint64_t macs_per_uop =
      uint64_t{1} * config.Batch() * config.BlockIn() * config.BlockOut();
  const uint64_t uop_execs_per_tile =
      uint64_t{ci_t} * kh * co_t * h_t * w_t * kw;
  const uint64_t macs_per_tile = uop_execs_per_tile * macs_per_uop;
  const uint64_t tiles =
      std::max<uint64_t>(1, static_cast<uint64_t>(gmac * 1e9 / macs_per_tile));
  if (ci_t * hp * wp > config.InpDepth() ||
      co_t * ci_t * kh * kw > config.WgtDepth() ||
      co_t * h_t * w_t > config.AccDepth()) {
    return Fail(absl::InvalidArgumentError("tile does not fit this config"));
  }

  std::mt19937 rng(7);
  auto random_buffer = [&](size_t bytes) -> absl::StatusOr<DeviceBuffer> {
    std::vector<uint8_t> v(bytes);
    for (auto& b : v) b = static_cast<uint8_t>(rng());
    auto buf = dev.AllocBuffer(bytes);
    if (!buf.ok()) return buf.status();
    auto s = dev.CopyToDevice(*buf, 0, v);
    if (!s.ok()) return s;
    return *buf;
  };
  auto inp = random_buffer(size_t{ci_t} * hp * wp * config.InpElemBytes());
  auto wgt =
      random_buffer(size_t{co_t} * ci_t * kh * kw * config.WgtElemBytes());
  auto out = dev.AllocBuffer(size_t{co_t} * h_t * w_t * config.OutElemBytes());
  if (!inp.ok()) return Fail(inp.status());
  if (!wgt.ok()) return Fail(wgt.status());
  if (!out.ok()) return Fail(out.status());

  auto q_or = CommandQueue::Create(config);
  if (!q_or.ok()) return Fail(q_or.status());
  CommandQueue& q = *q_or;
  // Kernels.
  std::vector<KernelId> conv(ci_t);
  for (uint32_t c = 0; c < ci_t; ++c) {
    UopKernel k;
    for (uint32_t r = 0; r < kh; ++r) {
      for (uint32_t co = 0; co < co_t; ++co) {
        for (uint32_t h = 0; h < h_t; ++h) {
          k.uops.push_back(Uop{(co * h_t + h) * w_t,
                               c * hp * wp + h * wp + r * wp,
                               ((co * ci_t + c) * kh + r) * kw});
        }
      }
    }
    k.loops = {UopLoop{w_t, 1, 1, 0}, UopLoop{kw, 0, 1, 1}};
    auto id = q.AddKernel(k);
    if (!id.ok()) return Fail(id.status());
    conv[c] = *id;
  }
  UopKernel lin;
  lin.uops = {Uop{0, 0, 0}};
  lin.loops = {UopLoop{co_t * h_t * w_t, 1, 0, 0}};
  auto lin_id = q.AddKernel(lin);
  if (!lin_id.ok()) return Fail(lin_id.status());
  auto elem = [&](const DeviceBuffer& b, MemoryType t) {
    return *CommandQueue::DramElemAddr(config, b, t, 0);
  };
  for (uint64_t t = 0; t < tiles; ++t) {
    absl::Status s;
    if (t > 0) s.Update(q.DepPop(Stage::kCompute, Stage::kLoad));
    s.Update(q.Load2D(MemoryType::kInp, 0, elem(*inp, MemoryType::kInp),
                      ci_t * hp, wp, wp));
    s.Update(q.Load2D(MemoryType::kWgt, 0, elem(*wgt, MemoryType::kWgt), 1,
                      co_t * ci_t * kh * kw, co_t * ci_t * kh * kw));
    s.Update(q.DepPush(Stage::kLoad, Stage::kCompute));
    s.Update(q.DepPop(Stage::kLoad, Stage::kCompute));
    if (t > 0) s.Update(q.DepPop(Stage::kStore, Stage::kCompute));
    s.Update(q.Gemm(*lin_id, true));
    for (uint32_t c = 0; c < ci_t; ++c) s.Update(q.Gemm(conv[c], false));
    s.Update(q.DepPush(Stage::kCompute, Stage::kLoad));
    s.Update(q.Alu(*lin_id, AluOpcode::kAdd, true, 64));
    s.Update(q.Alu(*lin_id, AluOpcode::kShr, true, 7));
    s.Update(q.Alu(*lin_id, AluOpcode::kMin, true, 127));
    s.Update(q.Alu(*lin_id, AluOpcode::kMax, true, -127));
    s.Update(q.DepPush(Stage::kCompute, Stage::kStore));
    s.Update(q.DepPop(Stage::kCompute, Stage::kStore));
    s.Update(
        q.Store2D(0, elem(*out, MemoryType::kOut), co_t, h_t * w_t, h_t * w_t));
    s.Update(q.DepPush(Stage::kStore, Stage::kCompute));
    if (!s.ok()) return Fail(s);
  }
  absl::Status s = q.DepPop(Stage::kCompute, Stage::kLoad);
  s.Update(q.DepPop(Stage::kStore, Stage::kCompute));
  if (!s.ok()) return Fail(s);
  auto program = q.Finalize();
  if (!program.ok()) return Fail(program.status());
  auto loaded = vtaserve::vta::LoadedProgram::Upload(dev, config, *program);
  if (!loaded.ok()) return Fail(loaded.status());

  // Wall time and this thread's CPU time (the machine may be shared; CPU
  // time excludes time the simulator thread was not scheduled).
  auto thread_cpu = [] {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
  };
  double best = 1e30, best_cpu = 1e30;
  vtaserve::vta::RunStats stats;
  for (int r = 0; r < repeat; ++r) {
    const double c0 = thread_cpu();
    const auto t0 = std::chrono::steady_clock::now();
    auto st = loaded->Run(absl::InfiniteDuration());
    const auto t1 = std::chrono::steady_clock::now();
    const double c1 = thread_cpu();
    if (!st.ok()) return Fail(st.status());
    stats = *st;
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
    best_cpu = std::min(best_cpu, c1 - c0);
  }
  const double total_macs =
      static_cast<double>(stats.sim.gemm_counter) * macs_per_uop;
  const double gmacs = total_macs / best / 1e9;
  const double gmacs_cpu = total_macs / best_cpu / 1e9;
  std::printf("vta-sim: config=%s kernel=%s threads=%d insns=%u tiles=%llu\n",
              config_name.c_str(), dev.KernelName(), sim_threads,
              loaded->insn_count(), static_cast<unsigned long long>(tiles));
  std::printf(
      "  %.3f G MAC in %.2f ms wall (best of %d) = %.1f GMAC/s; %.2f ms thread "
      "CPU = "
      "%.1f GMAC/s\n",
      total_macs / 1e9, best * 1e3, repeat, gmacs, best_cpu * 1e3, gmacs_cpu);
  std::printf(
      "  modeled: %llu cycles (%.2f ms at %.0f MHz), GEMM %llu cycles "
      "(%.1f%%), "
      "compute stall %llu, load busy %llu\n",
      static_cast<unsigned long long>(stats.cycles), stats.device_seconds * 1e3,
      config.clock_mhz, static_cast<unsigned long long>(stats.sim.gemm_cycles),
      100.0 * stats.sim.gemm_cycles / std::max<uint64_t>(1, stats.cycles),
      static_cast<unsigned long long>(stats.sim.compute_stall_cycles),
      static_cast<unsigned long long>(stats.sim.load_busy_cycles));
  std::printf(
      "{\"bench\":\"vta-sim\",\"config\":\"%s\",\"kernel\":\"%s\",\"threads\":%"
      "d,\"gmac\":%.4f,"
      "\"wall_ms\":%.3f,\"gmac_per_s\":%.2f,\"cpu_ms\":%.3f,\"gmac_per_cpu_s\":"
      "%.2f,\"modeled_cycles\":%llu,"
      "\"modeled_ms\":%.3f,\"gemm_cycles\":%llu,\"insns\":%u}\n",
      config_name.c_str(), dev.KernelName(), sim_threads, total_macs / 1e9,
      best * 1e3, gmacs, best_cpu * 1e3, gmacs_cpu,
      static_cast<unsigned long long>(stats.cycles), stats.device_seconds * 1e3,
      static_cast<unsigned long long>(stats.sim.gemm_cycles),
      loaded->insn_count());
  return 0;
}
