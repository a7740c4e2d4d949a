// vtaserve-bench first-conv: the stem convs whose input channels are not a
// multiple of BLOCK_IN, on the simulated VTA with every first-conv strategy
// (vta_backend/compiler/first_conv.h), against the CPU pool.
//
// Stems (quantized by the zoo's ONNX generator, uint8 input, zero point 128):
// ResNet's 7x7/s2/p3 3 -> 64 at 224x224 and a 3x3/s2/p1 3 -> 32 at 224x224.
// Configs: pynq (1x16x16) and 1x32x32, or the one named by --config. Per
// strategy: MACs, MAC slots (GEMM uop executions x BATCH*BLOCK_IN*BLOCK_OUT),
// utilization = MACs / MAC slots, modeled cycles (GEMM uop executions, GEMM
// instruction cycles, and total with DMA) from the simulator, DRAM bytes,
// the median host transform + copy time measured in the layer's Execute on
// the CPU pool, and whether the output equals the reference bit for bit.
// When the config does not already enable it, the im2col strategy is also run
// with the simulator's opt-in im2col load extension (ext_im2col_load), which
// gathers the windows on the device's load path. Then the CPU pool's time for
// the layer (1 thread and all threads) and what the executor's auto
// placement picks. Every figure is measured or modeled here.
//
//   vtaserve-bench first-conv [--config NAME|FILE] [--runs N] [--json]
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "cpu_backend/cpu_backend.h"
#include "cpu_backend/parallel_runner.h"
#include "engine/backend_registry.h"
#include "engine/executor.h"
#include "engine/onnx/onnx_importer.h"
#include "engine/reference_backend.h"
#include "engine/zoo/resnet_generator.h"
#include "tools/bench/bench_util.h"
#include "vta_backend/compiler/first_conv.h"
#include "vta_backend/config.h"
#include "vta_backend/vta_backend.h"

namespace {

namespace engine = vtaserve::engine;
namespace vta = vtaserve::vta;
using vtaserve::Tensor;

struct Args {
  std::vector<std::string> configs = {"pynq", "1x32x32"};
  int runs = 3;
  bool json = false;
};

struct Stem {
  std::string name;
  int kernel, stride, pad, out_channels, size;
};

struct Row {
  std::string stem, config, strategy;
  bool ext = false;
  double macs = 0, mac_slots = 0, gemm_uops = 0, gemm_cycles = 0,
         alu_cycles = 0, cycles = 0;
  double dram_bytes = 0, dram_inp = 0;
  double host_median_s = 0, sim_wall_median_s = 0;
  double modeled_s = 0;
  bool bit_exact = false;
  std::string plan, error;
};

int Fail(const std::string& what) {
  std::fprintf(stderr, "vtaserve-bench first-conv: %s\n", what.c_str());
  return 1;
}

using vtaserve::bench::Counter;
using vtaserve::bench::Median;

// The stem's conv alone, as the VTA backend sees it (int8 input).
absl::StatusOr<engine::ModelGraph> StemGraph(const Stem& stem,
                                             int shift_group) {
  vtaserve::zoo::ConvSpec spec;
  spec.in_channels = 3;
  spec.out_channels = stem.out_channels;
  spec.input_h = spec.input_w = stem.size;
  spec.kernel = stem.kernel;
  spec.stride = stem.stride;
  spec.pad = stem.pad;
  spec.uint8_input = true;
  spec.input_zero_point = 128;
  spec.relu = true;
  auto model = vtaserve::zoo::GenerateConv(spec);
  if (!model.ok()) return model.status();
  engine::ImportOptions import;
  import.requant.shift_group = shift_group;
  auto graph = engine::ImportOnnxModel(*model, import);
  if (!graph.ok()) return graph.status();
  for (size_t i = 0; i < graph->nodes.size(); ++i) {
    if (graph->nodes[i].op == engine::OpKind::kConv) {
      const engine::NodeId ids[] = {static_cast<engine::NodeId>(i)};
      engine::Subgraph sub = engine::ExtractSubgraph(*graph, ids);
      sub.graph.name = stem.name;
      return sub.graph;
    }
  }
  return absl::InternalError("generated stem has no conv");
}

absl::StatusOr<std::vector<Tensor>> RunOnce(
    engine::CompiledModel& model, const engine::ModelGraph& g, const Tensor& x,
    std::vector<engine::LayerTiming>* profile) {
  std::vector<Tensor> outs;
  std::vector<Tensor*> ptrs;
  for (engine::ValueId v : g.outputs) {
    auto t = Tensor::Create(g.value(v).dtype, g.value(v).shape);
    if (!t.ok()) return t.status();
    outs.push_back(*std::move(t));
  }
  for (Tensor& t : outs) ptrs.push_back(&t);
  engine::ExecutionContext ctx;
  ctx.profile = profile;
  const Tensor* ins[] = {&x};
  absl::Status s = model.Execute(ctx, ins, ptrs);
  if (!s.ok()) return s;
  return outs;
}

bool SameBytes(const Tensor& a, const Tensor& b) {
  return a.byte_size() == b.byte_size() &&
         std::memcmp(a.bytes(), b.bytes(), a.byte_size()) == 0;
}

Row MeasureStrategy(const Stem& stem, const std::string& config_name,
                    const vta::VtaConfig& config, const engine::ModelGraph& g,
                    const Tensor& x, const Tensor& expected,
                    const std::string& strategy, bool ext,
                    std::shared_ptr<engine::ParallelRunner> runner, int runs) {
  Row row;
  row.stem = stem.name;
  row.config = config_name;
  row.strategy = strategy;
  row.ext = ext;
  row.macs = static_cast<double>(g.NodeMacs(0));
  vta::VtaOptions options;
  options.config = config_name;
  options.host_runner = std::move(runner);
  options.ext_im2col_load = ext;
  auto backend = vta::CreateVtaBackend(options);
  if (!backend.ok()) {
    row.error = std::string(backend.status().message());
    return row;
  }
  const engine::BackendOptions bo = {
      {absl::StrCat(engine::kStrategyOptionPrefix, g.nodes[0].name), strategy}};
  auto compiled = (*backend)->Compile(g, bo);
  if (!compiled.ok()) {
    row.error = std::string(compiled.status().message());
    return row;
  }
  std::vector<double> host, wall;
  for (int r = 0; r <= runs; ++r) {
    std::vector<engine::LayerTiming> profile;
    auto out = RunOnce(**compiled, g, x, &profile);
    if (!out.ok() || profile.size() != 1) {
      row.error = out.ok() ? "no profile" : std::string(out.status().message());
      return row;
    }
    const engine::LayerTiming& t = profile[0];
    if (r == 0) {  // warm-up run: counters (identical every run) and the check
      row.bit_exact = SameBytes((*out)[0], expected);
      row.gemm_uops = Counter(t, "gemm_ops");
      row.mac_slots =
          row.gemm_uops * config.Batch() * config.BlockIn() * config.BlockOut();
      row.gemm_cycles = Counter(t, "gemm_cycles");
      row.alu_cycles = Counter(t, "alu_cycles");
      row.cycles = Counter(t, "modeled_cycles");
      row.modeled_s = t.modeled_device_seconds;
      for (const char* ty : {"inp", "wgt", "acc", "uop", "out"}) {
        row.dram_bytes += Counter(t, absl::StrCat("dram_bytes_", ty));
      }
      row.dram_inp = Counter(t, "dram_bytes_inp");
      continue;
    }
    host.push_back(t.host_transform_seconds);
    wall.push_back(t.wall_seconds);
  }
  row.host_median_s = Median(host);
  row.sim_wall_median_s = Median(wall);
  return row;
}

}  // namespace

int RunFirstConvBench(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      return i + 1 < argc ? argv[++i] : nullptr;
    };
    if (a == "--json") {
      args.json = true;
    } else if (a == "--config") {
      const char* v = value();
      if (v == nullptr) return Fail("--config needs a value");
      args.configs = {v};
    } else if (a == "--runs") {
      const char* v = value();
      if (v == nullptr || !absl::SimpleAtoi(v, &args.runs) || args.runs < 1) {
        return Fail("--runs needs a positive integer");
      }
    } else {
      std::fprintf(stderr,
                   "usage: vtaserve-bench first-conv [--config NAME|FILE] "
                   "[--runs N] [--json]\n");
      return 2;
    }
  }
  const std::vector<Stem> stems = {{"resnet_7x7s2_224", 7, 2, 3, 64, 224},
                                   {"stem_3x3s2_32f_224", 3, 2, 1, 32, 224}};
  auto runner = vtaserve::cpu::CreateCpuParallelRunner(0);
  std::vector<Row> rows;
  std::vector<std::string> cpu_json, auto_json;
  if (!args.json) {
    std::printf(
        "first-conv bench: host transforms on %d CPU pool threads, %d timed "
        "runs\n",
        runner->NumThreads(), args.runs);
  }
  for (const std::string& config_name : args.configs) {
    auto config = vta::LoadVtaConfig(config_name);
    if (!config.ok()) return Fail(std::string(config.status().message()));
    for (const Stem& stem : stems) {
      auto g = StemGraph(stem, config->BlockOut());
      if (!g.ok()) return Fail(std::string(g.status().message()));
      // Input: a pseudo-random uint8 image carried in the int8 domain.
      auto x = Tensor::Create(vtaserve::DataType::kInt8,
                              g->value(g->inputs[0]).shape);
      if (!x.ok()) return Fail("input allocation");
      std::mt19937 rng(42);
      for (int64_t i = 0; i < x->num_elements(); ++i)
        x->data<int8_t>()[i] = int8_t(rng());
      auto ref = engine::CreateReferenceBackend();
      auto ref_model = ref->Compile(*g, {});
      if (!ref_model.ok())
        return Fail(std::string(ref_model.status().message()));
      auto expected = RunOnce(**ref_model, *g, *x, nullptr);
      if (!expected.ok()) return Fail(std::string(expected.status().message()));

      std::vector<std::pair<std::string, bool>> variants;
      for (auto s : vta::compiler::kAllFirstConvStrategies) {
        variants.emplace_back(
            std::string(vta::compiler::FirstConvStrategyName(s)),
            config->ext_im2col_load);
      }
      if (!config->ext_im2col_load) variants.emplace_back("vta_im2col", true);
      for (const auto& [strategy, ext] : variants) {
        rows.push_back(MeasureStrategy(stem, config_name, *config, *g, *x,
                                       (*expected)[0], strategy, ext, runner,
                                       args.runs));
      }
      // The CPU pool on the same layer, 1 thread and all threads.
      double cpu_s[2] = {0, 0};
      int cpu_threads[2] = {1, 0};
      for (int k = 0; k < 2; ++k) {
        vtaserve::cpu::CpuOptions co;
        co.threads = cpu_threads[k];
        co.cost_runs = std::max(args.runs, 5);
        auto cpu = vtaserve::cpu::CreateCpuBackend(co);
        auto cost = cpu->EstimateCost(*g, 0, {});
        if (!cost.ok()) return Fail(std::string(cost.status().message()));
        cpu_s[k] = cost->seconds;
      }
      cpu_json.push_back(absl::StrFormat(
          "{\"stem\": \"%s\", \"config\": \"%s\", \"cpu_1_thread_seconds\": "
          "%.6f, "
          "\"cpu_all_threads_seconds\": %.6f, \"cpu_threads\": %d}",
          stem.name, config_name, cpu_s[0], cpu_s[1], runner->NumThreads()));
      // What the executor's auto placement picks between VTA and the CPU pool.
      engine::BackendRegistry registry;
      vta::VtaOptions vo;
      vo.config = config_name;
      vo.host_runner = runner;
      auto vb = vta::CreateVtaBackend(vo);
      if (!vb.ok()) return Fail(std::string(vb.status().message()));
      vtaserve::cpu::CpuOptions co;
      co.cost_runs = std::max(args.runs, 3);
      if (!registry.Register(*std::move(vb)).ok() ||
          !registry.Register(vtaserve::cpu::CreateCpuBackend(co)).ok() ||
          !registry.Register(engine::CreateReferenceBackend()).ok()) {
        return Fail("backend registration");
      }
      engine::PlacementOptions placement;
      placement.backend_options[engine::kFirstConvOption] = "auto";
      auto ex = engine::Executor::Create(*g, registry, placement);
      if (!ex.ok()) return Fail(std::string(ex.status().message()));
      const engine::NodePlacement& pl = (*ex)->placements()[0];
      // The VTA backend's own pick among its strategies.
      std::string vta_pick = "n/a";
      if (auto c = registry.Find("vta")->EstimateCost(
              *g, 0, placement.backend_options);
          c.ok()) {
        vta_pick = c->strategy;
      }
      auto_json.push_back(absl::StrFormat(
          "{\"stem\": \"%s\", \"config\": \"%s\", \"auto_backend\": \"%s\", "
          "\"auto_strategy\": \"%s\", \"auto_cost_seconds\": %.6f, "
          "\"vta_best_strategy\": \"%s\", \"costs\": \"%s\"}",
          stem.name, config_name, pl.backend, pl.strategy, pl.cost_seconds,
          vta_pick, absl::StrReplaceAll(pl.costs, {{"\"", "'"}})));
      if (!args.json) {
        std::printf("\n%s on %s (%s, %.0f MHz): %lld MACs\n", stem.name.c_str(),
                    config_name.c_str(), config->BitstreamName().c_str(),
                    config->clock_mhz, static_cast<long long>(g->NodeMacs(0)));
        std::printf("%-16s %11s %6s %10s %10s %9s %10s %9s %10s %9s %9s %5s\n",
                    "strategy", "MAC_slots", "util", "gemm_uops", "gemm_cyc",
                    "alu_cyc", "total_cyc", "modeled", "DRAM_B", "host_ms",
                    "sim_ms", "exact");
        for (const Row& r : rows) {
          if (r.stem != stem.name || r.config != config_name) continue;
          const std::string label = r.strategy + (r.ext ? "+ext" : "");
          if (!r.error.empty()) {
            std::printf("%-16s error: %s\n", label.c_str(), r.error.c_str());
            continue;
          }
          std::printf(
              "%-16s %11.0f %5.1f%% %10.0f %10.0f %9.0f %10.0f %7.2fms %10.0f "
              "%9.3f %9.1f %5s\n",
              label.c_str(), r.mac_slots, 100 * r.macs / r.mac_slots,
              r.gemm_uops, r.gemm_cycles, r.alu_cycles, r.cycles,
              1e3 * r.modeled_s, r.dram_bytes, 1e3 * r.host_median_s,
              1e3 * r.sim_wall_median_s, r.bit_exact ? "yes" : "NO");
        }
        for (const Row& r : rows) {
          if (r.stem != stem.name || r.config != config_name ||
              r.strategy != "vta_im2col" || r.ext || !r.error.empty()) {
            continue;
          }
          // GEMM and ALU instructions run one after the other in the compute
          // module, so their sum bounds the total from below.
          std::printf(
              "vta_im2col: total %.0f cycles = %.3fx its %.0f GEMM uops; the "
              "compute module "
              "alone (GEMM incl. reset + requant ALU) needs %.0f = %.3fx\n",
              r.cycles, r.cycles / r.gemm_uops, r.gemm_uops,
              r.gemm_cycles + r.alu_cycles,
              (r.gemm_cycles + r.alu_cycles) / r.gemm_uops);
        }
        std::printf("cpu pool: %.3f ms on 1 thread, %.3f ms on %d threads\n",
                    1e3 * cpu_s[0], 1e3 * cpu_s[1], runner->NumThreads());
        std::printf(
            "auto picks: %s (%s), cost %.4f ms; VTA's best strategy: %s\n",
            pl.backend.c_str(), pl.strategy.c_str(), 1e3 * pl.cost_seconds,
            vta_pick.c_str());
      }
    }
  }
  if (args.json) {
    std::vector<std::string> rj;
    for (const Row& r : rows) {
      rj.push_back(absl::StrFormat(
          "{\"stem\": \"%s\", \"config\": \"%s\", \"strategy\": \"%s\", "
          "\"ext_im2col_load\": %s, "
          "\"error\": \"%s\", \"macs\": %.0f, \"mac_slots\": %.0f, "
          "\"utilization\": %.4f, "
          "\"gemm_uop_cycles\": %.0f, \"gemm_insn_cycles\": %.0f, "
          "\"alu_cycles\": %.0f, "
          "\"total_cycles\": %.0f, "
          "\"modeled_seconds\": %.6f, \"dram_bytes\": %.0f, "
          "\"dram_bytes_inp\": %.0f, "
          "\"host_transform_median_seconds\": %.6f, "
          "\"sim_wall_median_seconds\": %.6f, "
          "\"bit_exact\": %s}",
          r.stem, r.config, r.strategy, r.ext ? "true" : "false",
          absl::StrReplaceAll(r.error, {{"\"", "'"}}), r.macs, r.mac_slots,
          r.mac_slots > 0 ? r.macs / r.mac_slots : 0.0, r.gemm_uops,
          r.gemm_cycles, r.alu_cycles, r.cycles, r.modeled_s, r.dram_bytes,
          r.dram_inp, r.host_median_s, r.sim_wall_median_s,
          r.bit_exact ? "true" : "false"));
    }
    std::printf(
        "{\n  \"bench\": \"first-conv\", \"host_threads\": %d, \"runs\": %d,\n"
        "  \"strategies\": [\n    %s\n  ],\n  \"cpu\": [\n    %s\n  ],\n"
        "  \"auto\": [\n    %s\n  ]\n}\n",
        runner->NumThreads(), args.runs, absl::StrJoin(rj, ",\n    ").c_str(),
        absl::StrJoin(cpu_json, ",\n    ").c_str(),
        absl::StrJoin(auto_json, ",\n    ").c_str());
  }
  return 0;
}
