// vtaserve-run: imports an ONNX model, runs it on the engine's Executor and
// writes the output as .npy; prints per-run wall time and, for a [1,K]
// float output, the top-5 classes.
//
//   vtaserve-run MODEL.onnx --input IN.npy|random --output OUT.npy
//       [--device reference|cpu|vta|auto] [--repeat N] [--seed S]
//       [--shift-group G] [--first-conv
//       auto|cpu|vta_pad|vta_im2col|vta_s2d|vta_kwfold]
//       [--cpu-threads N]
//
// --device D places every node D supports on D and the rest on the reference
// backend; auto prefers vta, then cpu, then reference. --cpu-threads sizes
// the CPU pool (and the VTA backend's host work); 0, the default: every core.
// Exit codes: 0 success, 1 model/input/run error, 2 usage error or a device
// that this build does not provide.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cpu_backend/cpu_backend.h"
#include "cpu_backend/parallel_runner.h"
#include "engine/backend_registry.h"
#include "engine/executor.h"
#include "engine/npy.h"
#include "engine/onnx/onnx_importer.h"
#include "engine/reference_backend.h"
#include "vta_backend/driver/device_selection.h"
#include "vta_backend/vta_backend.h"

namespace {

using vtaserve::DataType;
using vtaserve::Tensor;
namespace engine = vtaserve::engine;

struct Args {
  std::string model;
  std::string input;
  std::string output;
  std::string device = "reference";
  int repeat = 1;
  uint64_t seed = 1;
  int shift_group = engine::RequantOptions{}.shift_group;
  std::string first_conv;  // engine::kFirstConvOption; empty: the default
  int cpu_threads = 0;     // the CPU pool's threads; 0: every core
  std::string vta_device = "sim";  // vtaserve::vta::kVtaDeviceNames
  std::string vta_board_json;      // board address/node overrides
};

// Backends this build can run. Adding one is one line here. As in the
// server, the VTA backend's host-side work (first-conv transforms, split
// simulator GEMMs) runs on a oneTBB arena of the CPU pool's size.
struct DeviceFactory {
  const char* name;
  std::function<absl::StatusOr<std::unique_ptr<engine::Backend>>(const Args&)>
      create;
};
const std::vector<DeviceFactory>& Devices() {
  static const auto* devices = new std::vector<DeviceFactory>{
      {"reference",
       [](const Args&) -> absl::StatusOr<std::unique_ptr<engine::Backend>> {
         return engine::CreateReferenceBackend();
       }},
      {"cpu",
       [](const Args& args)
           -> absl::StatusOr<std::unique_ptr<engine::Backend>> {
         vtaserve::cpu::CpuOptions options;
         options.threads = args.cpu_threads;
         return vtaserve::cpu::CreateCpuBackend(options);
       }},
      {"vta",
       [](const Args& args)
           -> absl::StatusOr<std::unique_ptr<engine::Backend>> {
         vtaserve::vta::VtaOptions options;
         if (absl::Status s = vtaserve::vta::ApplyVtaDevice(
                 args.vta_device, args.vta_board_json, false, options);
             !s.ok()) {
           return s;
         }
         options.host_runner =
             vtaserve::cpu::CreateCpuParallelRunner(args.cpu_threads);
         return vtaserve::vta::CreateVtaBackend(options);
       }},
  };
  return *devices;
}
constexpr const char* kKnownDevices[] = {"reference", "cpu", "vta", "auto"};

void Usage(std::FILE* out) {
  std::fprintf(out,
               "usage: vtaserve-run MODEL.onnx --input IN.npy|random "
               "--output OUT.npy\n"
               "         [--device reference|cpu|vta|auto] [--repeat N] "
               "[--seed S] [--shift-group G] [--first-conv POLICY]\n"
               "         [--cpu-threads N] [--vta-device "
               "sim|pynq|ultra96|zcu104|de10nano] [--vta-board-json FILE]\n");
}

int UsageError(const std::string& msg) {
  std::fprintf(stderr, "vtaserve-run: %s\n", msg.c_str());
  Usage(stderr);
  return 2;
}

// Returns 0 and fills `args`, or an exit code (-1: --help printed).
int ParseArgs(int argc, char** argv, Args& args) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    bool has_value = false;
    if (a.rfind("--", 0) == 0) {
      const size_t eq = a.find('=');
      if (eq != std::string::npos) {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
        has_value = true;
      }
    }
    auto need = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 >= argc) return false;
      value = argv[++i];
      return true;
    };
    if (a == "--help" || a == "-h") {
      Usage(stdout);
      return -1;
    } else if (a == "--input") {
      if (!need()) return UsageError("--input needs a value");
      args.input = value;
    } else if (a == "--output") {
      if (!need()) return UsageError("--output needs a value");
      args.output = value;
    } else if (a == "--vta-device") {
      if (!need()) return UsageError("--vta-device needs a value");
      args.vta_device = value;
    } else if (a == "--vta-board-json") {
      if (!need()) return UsageError("--vta-board-json needs a value");
      args.vta_board_json = value;
    } else if (a == "--device") {
      if (!need()) return UsageError("--device needs a value");
      args.device = value;
    } else if (a == "--repeat") {
      if (!need() || !absl::SimpleAtoi(value, &args.repeat) ||
          args.repeat < 1) {
        return UsageError("--repeat needs a positive integer");
      }
    } else if (a == "--seed") {
      if (!need() || !absl::SimpleAtoi(value, &args.seed)) {
        return UsageError("--seed needs a non-negative integer");
      }
    } else if (a == "--first-conv") {
      if (!need()) return UsageError("--first-conv needs a value");
      args.first_conv = value;
    } else if (a == "--cpu-threads") {
      if (!need() || !absl::SimpleAtoi(value, &args.cpu_threads) ||
          args.cpu_threads < 0) {
        return UsageError(
            "--cpu-threads needs an integer >= 0 (0: every core)");
      }
    } else if (a == "--shift-group") {
      if (!need() || !absl::SimpleAtoi(value, &args.shift_group) ||
          args.shift_group < 1) {
        return UsageError("--shift-group needs a positive integer");
      }
    } else if (a.rfind("--", 0) == 0) {
      return UsageError(absl::StrCat("unknown flag ", a));
    } else if (args.model.empty()) {
      args.model = a;
    } else {
      return UsageError(absl::StrCat("unexpected argument '", a, "'"));
    }
  }
  if (args.model.empty()) return UsageError("missing MODEL.onnx");
  if (args.input.empty()) return UsageError("missing --input");
  if (args.output.empty()) return UsageError("missing --output");
  return 0;
}

// splitmix64: a small portable generator, so `random` inputs are the same
// everywhere for a given seed.
uint64_t NextRandom(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

absl::StatusOr<Tensor> RandomInput(const engine::Value& v, uint64_t seed) {
  absl::StatusOr<Tensor> t = Tensor::Create(v.dtype, v.shape);
  if (!t.ok()) return t.status();
  uint64_t state = seed;
  for (int64_t i = 0; i < t->num_elements(); ++i) {
    const uint64_t r = NextRandom(state);
    switch (v.dtype) {
      case DataType::kFloat32:
        // Uniform in [-1, 1).
        t->data<float>()[i] =
            static_cast<float>((r >> 40) * (1.0 / (1ull << 24)) * 2.0 - 1.0);
        break;
      case DataType::kUInt8:
      case DataType::kInt8:
        t->bytes()[i] = static_cast<uint8_t>(r >> 56);
        break;
      case DataType::kInt32:
        t->data<int32_t>()[i] = static_cast<int32_t>(r >> 32);
        break;
    }
  }
  return t;
}

void PrintTop5(const Tensor& out, const std::string& name) {
  const int64_t k = out.shape()[1];
  const int64_t n = out.shape()[0];
  for (int64_t b = 0; b < n; ++b) {
    const float* row = out.data<float>() + b * k;
    std::vector<int64_t> idx(k);
    for (int64_t i = 0; i < k; ++i) idx[i] = i;
    const int64_t top = std::min<int64_t>(5, k);
    std::partial_sort(idx.begin(), idx.begin() + top, idx.end(),
                      [row](int64_t a, int64_t c) {
                        return row[a] > row[c] || (row[a] == row[c] && a < c);
                      });
    std::printf("%s[%lld] top-%lld:", name.c_str(), static_cast<long long>(b),
                static_cast<long long>(top));
    for (int64_t i = 0; i < top; ++i) {
      std::printf(" %lld (%.4f)", static_cast<long long>(idx[i]), row[idx[i]]);
    }
    std::printf("\n");
  }
}

int Fail(const absl::Status& s, const char* what) {
  std::fprintf(stderr, "vtaserve-run: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

int Main(int argc, char** argv) {
  Args args;
  if (int rc = ParseArgs(argc, argv, args); rc != 0) return rc < 0 ? 0 : rc;

  if (std::find_if(std::begin(kKnownDevices), std::end(kKnownDevices),
                   [&](const char* d) { return args.device == d; }) ==
      std::end(kKnownDevices)) {
    return UsageError(absl::StrCat("unknown device '", args.device,
                                   "' (reference, cpu, vta or auto)"));
  }
  engine::BackendRegistry registry;
  std::vector<std::string> available;
  for (const DeviceFactory& d : Devices()) {
    absl::StatusOr<std::unique_ptr<engine::Backend>> backend = d.create(args);
    if (!backend.ok()) return Fail(backend.status(), "creating backends");
    if (absl::Status s = registry.Register(*std::move(backend)); !s.ok()) {
      return Fail(s, "registering backends");
    }
    available.push_back(d.name);
  }
  engine::PlacementOptions placement;
  if (args.device == "auto") {
    placement.preference = {"vta", "cpu", "reference"};
  } else {
    if (registry.Find(args.device) == nullptr) {
      std::fprintf(stderr,
                   "vtaserve-run: device '%s' is not available in this build "
                   "(available: %s)\n",
                   args.device.c_str(), absl::StrJoin(available, ", ").c_str());
      return 2;
    }
    // The named device runs every node it supports; the reference backend
    // takes the rest (e.g. Quantize/Softmax at the edges).
    placement.preference = {args.device};
    if (args.device != "reference") placement.preference.push_back("reference");
  }

  if (!args.first_conv.empty()) {
    placement.backend_options[engine::kFirstConvOption] = args.first_conv;
  }

  engine::ImportOptions import;
  import.requant.shift_group = args.shift_group;
  const absl::Time t_import = absl::Now();
  absl::StatusOr<engine::ModelGraph> graph =
      engine::ImportOnnxFile(args.model, import);
  if (!graph.ok()) return Fail(graph.status(), "importing the model");
  std::printf("imported %s: %zu nodes, %zu values in %.1f ms\n",
              graph->name.c_str(), graph->nodes.size(), graph->values.size(),
              absl::ToDoubleMilliseconds(absl::Now() - t_import));
  if (graph->inputs.size() != 1) {
    std::fprintf(stderr,
                 "vtaserve-run: the model has %zu inputs; one is supported\n",
                 graph->inputs.size());
    return 1;
  }
  const engine::Value input_info = graph->value(graph->inputs[0]);

  absl::StatusOr<std::unique_ptr<engine::Executor>> executor =
      engine::Executor::Create(std::move(graph).value(), registry, placement);
  if (!executor.ok()) return Fail(executor.status(), "building the executor");
  for (const std::string& line : (*executor)->DescribePartitions()) {
    std::printf("partition: %s\n", line.c_str());
  }
  for (const engine::NodePlacement& p : (*executor)->placements()) {
    if (p.op == engine::OpKind::kConv && !p.costs.empty()) {
      std::printf("first conv %s: %s (%s); costs: %s\n", p.node.c_str(),
                  p.backend.c_str(), p.strategy.c_str(), p.costs.c_str());
    }
  }
  int fallbacks = 0;
  for (const engine::NodePlacement& p : (*executor)->placements()) {
    if (args.device != "auto" && p.backend != args.device) ++fallbacks;
  }
  if (fallbacks > 0) {
    std::printf(
        "%d node(s) not supported by '%s' run on the reference backend\n",
        fallbacks, args.device.c_str());
  }

  absl::StatusOr<Tensor> input = args.input == "random"
                                     ? RandomInput(input_info, args.seed)
                                     : vtaserve::ReadNpy(args.input);
  if (!input.ok()) return Fail(input.status(), "reading the input");

  std::vector<Tensor> outputs;
  std::vector<double> times_ms;
  const Tensor* inputs[] = {&*input};
  for (int r = 0; r < args.repeat; ++r) {
    const absl::Time start = absl::Now();
    absl::StatusOr<std::vector<Tensor>> out =
        (*executor)->Run(engine::ExecutionContext{}, inputs);
    const double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
    if (!out.ok()) return Fail(out.status(), "running the model");
    times_ms.push_back(ms);
    std::printf("run %d: %.3f ms\n", r + 1, ms);
    outputs = std::move(out).value();
  }
  std::vector<double> sorted = times_ms;
  std::sort(sorted.begin(), sorted.end());
  double sum = 0;
  for (double t : times_ms) sum += t;
  std::printf("runs: %d  min %.3f ms  median %.3f ms  mean %.3f ms\n",
              args.repeat, sorted.front(), sorted[sorted.size() / 2],
              sum / times_ms.size());

  const engine::ModelGraph& g = (*executor)->graph();
  for (size_t i = 0; i < outputs.size(); ++i) {
    const std::string& name = g.value(g.outputs[i]).name;
    std::string path = args.output;
    if (outputs.size() > 1) {
      const size_t dot = path.rfind(".npy");
      path = dot == std::string::npos
                 ? absl::StrCat(path, ".", name)
                 : absl::StrCat(path.substr(0, dot), ".", name, ".npy");
    }
    if (absl::Status s = vtaserve::WriteNpy(path, outputs[i]); !s.ok()) {
      return Fail(s, "writing the output");
    }
    std::printf("output '%s' %s %s -> %s\n", name.c_str(),
                std::string(vtaserve::DataTypeName(outputs[i].dtype())).c_str(),
                vtaserve::ShapeToString(outputs[i].shape()).c_str(),
                path.c_str());
    if (outputs[i].dtype() == DataType::kFloat32 &&
        outputs[i].shape().size() == 2) {
      PrintTop5(outputs[i], name);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
