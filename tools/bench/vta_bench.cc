// vtaserve-bench vta: a generated int8 ResNet on the engine's Executor with
// every layer VTA can lower on the simulated VTA (the rest, e.g. the 3-channel
// stem, on the CPU backend), one image. Prints per VTA layer: MACs, GEMM
// cycles, total modeled cycles, utilization = MACs / (cycles * BATCH *
// BLOCK_IN * BLOCK_OUT), DRAM bytes per memory type and simulator wall time;
// then totals, and the convs other than the stem against their ideal GEMM
// cycles (MACs / (BATCH * BLOCK_IN * BLOCK_OUT)).
//
//   vtaserve-bench vta [--model resnet18|resnet50] [--config pynq|1x32x32|...]
//                      [--size 224] [--runs 1] [--threads 0] [--json]
// --threads N: the simulator splits large GEMMs over a CPU-pool runner of N
// threads (0: every core, the default; 1: no runner, one thread).
// --runs N runs the image N times (the first run included) and reports the
// run with the smallest total VTA-layer wall time, plus every run's total.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "cpu_backend/cpu_backend.h"
#include "cpu_backend/parallel_runner.h"
#include "engine/backend_registry.h"
#include "engine/executor.h"
#include "engine/onnx/onnx_importer.h"
#include "engine/reference_backend.h"
#include "engine/zoo/float_resnet.h"
#include "engine/zoo/resnet_generator.h"
#include "tools/bench/bench_util.h"
#include "vta_backend/config.h"
#include "vta_backend/vta_backend.h"

namespace {

namespace engine = vtaserve::engine;

struct Args {
  std::string model = "resnet18";
  std::string config = "pynq";
  int size = 224;
  int runs = 1;
  int threads = 0;
  bool json = false;
};

int Fail(const std::string& what) {
  std::fprintf(stderr, "vtaserve-bench vta: %s\n", what.c_str());
  return 1;
}

using vtaserve::bench::Counter;

}  // namespace

int RunVtaBench(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      return i + 1 < argc ? argv[++i] : nullptr;
    };
    if (a == "--json") {
      args.json = true;
    } else if (a == "--model") {
      const char* v = value();
      if (v == nullptr) return Fail("--model needs a value");
      args.model = v;
    } else if (a == "--config") {
      const char* v = value();
      if (v == nullptr) return Fail("--config needs a value");
      args.config = v;
    } else if (a == "--size") {
      const char* v = value();
      if (v == nullptr || !absl::SimpleAtoi(v, &args.size))
        return Fail("--size needs an integer");
    } else if (a == "--threads") {
      const char* v = value();
      if (v == nullptr || !absl::SimpleAtoi(v, &args.threads) ||
          args.threads < 0) {
        return Fail("--threads needs a non-negative integer");
      }
    } else if (a == "--runs") {
      const char* v = value();
      if (v == nullptr || !absl::SimpleAtoi(v, &args.runs) || args.runs < 1) {
        return Fail("--runs needs a positive integer");
      }
    } else {
      std::fprintf(stderr,
                   "usage: vtaserve-bench vta [--model resnet18|resnet50] "
                   "[--config NAME|FILE] [--size N] [--runs N] [--threads N] "
                   "[--json]\n");
      return 2;
    }
  }
  int depth = 0;
  if (args.model == "resnet18") depth = 18;
  if (args.model == "resnet50") depth = 50;
  if (depth == 0) return Fail("--model must be resnet18 or resnet50");
  auto config = vtaserve::vta::LoadVtaConfig(args.config);
  if (!config.ok()) return Fail(std::string(config.status().message()));
  const int lanes = config->Batch() * config->BlockIn() * config->BlockOut();

  vtaserve::zoo::ResNetSpec spec;
  spec.depth = depth;
  spec.input_size = args.size;
  auto onnx_model = vtaserve::zoo::GenerateResNet(spec);
  if (!onnx_model.ok()) return Fail(std::string(onnx_model.status().message()));
  engine::ImportOptions import;
  import.requant.shift_group = config->BlockOut();
  auto graph = engine::ImportOnnxModel(*onnx_model, import);
  if (!graph.ok()) return Fail(std::string(graph.status().message()));

  engine::BackendRegistry registry;
  vtaserve::vta::VtaOptions vta_options;
  vta_options.config = args.config;
  int sim_threads = 1;
  if (args.threads != 1) {
    vta_options.host_runner =
        vtaserve::cpu::CreateCpuParallelRunner(args.threads);
    sim_threads = vta_options.host_runner->NumThreads();
  }
  auto vta = vtaserve::vta::CreateVtaBackend(vta_options);
  if (!vta.ok()) return Fail(std::string(vta.status().message()));
  if (!registry.Register(*std::move(vta)).ok()) return Fail("register vta");
  if (!registry.Register(vtaserve::cpu::CreateCpuBackend({})).ok())
    return Fail("register cpu");
  if (!registry.Register(engine::CreateReferenceBackend()).ok())
    return Fail("register ref");
  engine::PlacementOptions placement;
  placement.backend_options[engine::kFirstConvOption] = "cpu";
  const absl::Time c0 = absl::Now();
  auto executor = engine::Executor::Create(*graph, registry, placement);
  if (!executor.ok()) return Fail(std::string(executor.status().message()));
  const double compile_s = absl::ToDoubleSeconds(absl::Now() - c0);

  const std::vector<float> image =
      vtaserve::zoo::CalibrationImage(7, 0, args.size);
  auto input = vtaserve::Tensor::Create(vtaserve::DataType::kFloat32,
                                        {1, 3, args.size, args.size});
  if (!input.ok()) return Fail("input allocation");
  std::memcpy(input->data<float>(), image.data(), image.size() * sizeof(float));
  std::vector<engine::LayerTiming> profile;
  double run_s = 0.0, best_wall = 0.0;
  std::vector<double> run_walls;  // total VTA-layer wall time of each run
  const vtaserve::Tensor* ins[] = {&*input};
  for (int r = 0; r < args.runs; ++r) {
    std::vector<engine::LayerTiming> p;
    engine::ExecutionContext ctx;
    ctx.profile = &p;
    const absl::Time r0 = absl::Now();
    auto out = (*executor)->Run(ctx, ins);
    if (!out.ok()) return Fail(std::string(out.status().message()));
    const double s = absl::ToDoubleSeconds(absl::Now() - r0);
    double wall = 0.0;
    for (const auto& t : p) {
      if (t.device == "vta") wall += t.wall_seconds;
    }
    run_walls.push_back(wall);
    if (r == 0 || wall < best_wall) {
      best_wall = wall;
      run_s = s;
      profile = std::move(p);
    }
  }

  // The stem: the graph's first conv (never on VTA today).
  std::string stem;
  for (const auto& n : (*executor)->graph().nodes) {
    if (n.op == engine::OpKind::kConv) {
      stem = n.name;
      break;
    }
  }
  static const char* kTypes[] = {"inp", "wgt", "acc", "uop", "out"};
  struct Total {
    double macs = 0, gemm = 0, cycles = 0, wall = 0, host = 0;
    std::map<std::string, double> bytes;
    int layers = 0;
  } all, convs;
  std::string rows_json;
  if (!args.json) {
    std::printf(
        "vta bench: %s %dx%d on %s (%s, %.0f MHz), simulator threads %d, "
        "compile "
        "%.2f s, run %.2f s\n",
        args.model.c_str(), args.size, args.size, args.config.c_str(),
        config->BitstreamName().c_str(), config->clock_mhz, sim_threads,
        compile_s, run_s);
    std::printf("%-22s %-5s %12s %10s %10s %6s %9s %9s %8s %7s %9s %8s\n",
                "layer", "op", "MACs", "gemm_cyc", "cycles", "util", "inp_B",
                "wgt_B", "acc_B", "uop_B", "out_B", "sim_ms");
  }
  for (const auto& t : profile) {
    if (t.device != "vta") continue;
    const double macs = Counter(t, "macs");
    const double gemm = Counter(t, "gemm_cycles");
    const double cycles = Counter(t, "modeled_cycles");
    const double util = cycles > 0 ? macs / (cycles * lanes) : 0.0;
    std::map<std::string, double> bytes;
    for (const char* ty : kTypes)
      bytes[ty] = Counter(t, absl::StrCat("dram_bytes_", ty).c_str());
    for (Total* tot : {&all, &convs}) {
      if (tot == &convs && (t.op != engine::OpKind::kConv || t.layer == stem))
        continue;
      tot->macs += macs;
      tot->gemm += gemm;
      tot->cycles += cycles;
      tot->wall += t.wall_seconds;
      tot->host += t.host_transform_seconds;
      for (const auto& [k, v] : bytes) tot->bytes[k] += v;
      ++tot->layers;
    }
    if (args.json) {
      absl::StrAppend(
          &rows_json, rows_json.empty() ? "" : ",\n    ",
          absl::StrFormat(
              "{\"layer\": \"%s\", \"op\": \"%s\", \"macs\": %.0f, "
              "\"gemm_cycles\": %.0f, \"modeled_cycles\": %.0f, "
              "\"utilization\": %.4f, \"dram_bytes\": {\"inp\": %.0f, "
              "\"wgt\": %.0f, \"acc\": %.0f, \"uop\": %.0f, \"out\": %.0f}, "
              "\"sim_wall_seconds\": %.6f, \"host_transform_seconds\": %.6f}",
              t.layer, engine::OpKindName(t.op), macs, gemm, cycles, util,
              bytes["inp"], bytes["wgt"], bytes["acc"], bytes["uop"],
              bytes["out"], t.wall_seconds, t.host_transform_seconds));
    } else {
      std::printf(
          "%-22s %-5s %12.0f %10.0f %10.0f %5.1f%% %9.0f %9.0f %8.0f %7.0f "
          "%9.0f %8.2f\n",
          t.layer.c_str(),
          std::string(engine::OpKindName(t.op)).substr(0, 5).c_str(), macs,
          gemm, cycles, 100 * util, bytes["inp"], bytes["wgt"], bytes["acc"],
          bytes["uop"], bytes["out"], 1e3 * t.wall_seconds);
    }
  }
  // Every run's total VTA-layer wall time, seconds (json) or ms (text).
  auto runs_list = [&](bool json) {
    std::string list;
    for (double w : run_walls) {
      absl::StrAppend(
          &list, list.empty() ? "" : (json ? ", " : " "),
          json ? absl::StrFormat("%.6f", w) : absl::StrFormat("%.2f", 1e3 * w));
    }
    return list;
  };
  const double median_wall = vtaserve::bench::Median(run_walls);
  const double ideal = convs.macs / lanes;
  const double ratio = ideal > 0 ? convs.cycles / ideal : 0.0;
  if (args.json) {
    auto total_json = [&](const Total& t) {
      return absl::StrFormat(
          "{\"layers\": %d, \"macs\": %.0f, \"gemm_cycles\": %.0f, "
          "\"modeled_cycles\": %.0f, "
          "\"modeled_seconds\": %.6f, \"utilization\": %.4f, \"dram_bytes\": "
          "{\"inp\": %.0f, "
          "\"wgt\": %.0f, \"acc\": %.0f, \"uop\": %.0f, \"out\": %.0f}, "
          "\"sim_wall_seconds\": %.4f, \"host_transform_seconds\": %.4f}",
          t.layers, t.macs, t.gemm, t.cycles,
          t.cycles / (config->clock_mhz * 1e6),
          t.cycles > 0 ? t.macs / (t.cycles * lanes) : 0.0, t.bytes.at("inp"),
          t.bytes.at("wgt"), t.bytes.at("acc"), t.bytes.at("uop"),
          t.bytes.at("out"), t.wall, t.host);
    };
    std::printf(
        "{\n  \"bench\": \"vta\", \"model\": \"%s\", \"input_size\": %d, "
        "\"config\": \"%s\", "
        "\"bitstream\": \"%s\", \"clock_mhz\": %.1f, \"simulator_threads\": "
        "%d,\n"
        "  \"compile_seconds\": %.3f, "
        "\"run_wall_seconds\": %.3f,\n  \"layers\": [\n    %s\n  ],\n  "
        "\"total_vta\": %s,\n"
        "  \"convs_except_stem\": %s,\n  "
        "\"convs_except_stem_ideal_gemm_cycles\": %.0f,\n"
        "  \"convs_except_stem_cycles_over_ideal\": %.4f,\n"
        "  \"runs\": %d, \"run_vta_sim_wall_seconds\": [%s],\n"
        "  \"median_run_vta_sim_wall_seconds\": %.6f\n}\n",
        args.model.c_str(), args.size, args.config.c_str(),
        config->BitstreamName().c_str(), config->clock_mhz, sim_threads,
        compile_s, run_s, rows_json.c_str(), total_json(all).c_str(),
        total_json(convs).c_str(), ideal, ratio, args.runs,
        runs_list(true).c_str(), median_wall);
  } else {
    for (const Total* t : {&all, &convs}) {
      std::printf(
          "%-22s %-5d %12.0f %10.0f %10.0f %5.1f%% %9.0f %9.0f %8.0f %7.0f "
          "%9.0f %8.2f\n",
          t == &all ? "TOTAL vta layers" : "TOTAL convs (no stem)", t->layers,
          t->macs, t->gemm, t->cycles,
          t->cycles > 0 ? 100 * t->macs / (t->cycles * lanes) : 0.0,
          t->bytes.count("inp") ? t->bytes.at("inp") : 0.0,
          t->bytes.count("wgt") ? t->bytes.at("wgt") : 0.0,
          t->bytes.count("acc") ? t->bytes.at("acc") : 0.0,
          t->bytes.count("uop") ? t->bytes.at("uop") : 0.0,
          t->bytes.count("out") ? t->bytes.at("out") : 0.0, 1e3 * t->wall);
    }
    std::printf(
        "convs except the stem: %.0f modeled cycles vs %.0f ideal GEMM cycles "
        "= %.3fx "
        "(modeled %.2f ms at %.0f MHz)\n",
        convs.cycles, ideal, ratio,
        1e3 * convs.cycles / (config->clock_mhz * 1e6), config->clock_mhz);
    if (args.runs > 1) {
      std::printf(
          "%d runs, total VTA-layer wall ms (the fastest is shown above): %s; "
          "median %.2f\n",
          args.runs, runs_list(false).c_str(), 1e3 * median_wall);
    }
  }
  return 0;
}
