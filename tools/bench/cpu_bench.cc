// vtaserve-bench cpu [--threads 1,2] [--json] [--runs N] [--isa NAME]
//                    [--cases stem,mid,resnet18,resnet50] [--layers]
//                    [--blocks N]
// The CPU backend beside its peers, in the same run: oneDNN (u8 x s8 conv,
// format "any", OpenMP threads set to match; benchmark-only dependency) for
// single convs, and ONNX Runtime through `node tests/peer/ort_run.js` where
// it is installed. Our runs and oneDNN's, at every thread count, alternate
// in --blocks blocks (default 10: the machine may be shared, and its load
// changes within seconds), each after the same warm-up (3 runs and 50 ms);
// ORT, a separate process with the same warm-up, runs in five of the blocks
// and its column is the median of its five medians. Prints medians in
// microseconds, the ratios, and one JSON document with --json. --layers adds
// each layer's median wall time at every thread count and its speedup (where
// a multi-core run loses time).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "cpu_backend/cpu_backend.h"
#include "cpu_backend/cpu_isa.h"
#include "dnnl.hpp"
#include "engine/graph.h"
#include "engine/onnx/onnx_importer.h"
#include "engine/zoo/resnet_generator.h"
#include "tools/bench/bench_util.h"

extern "C" void omp_set_num_threads(int);

namespace {

using vtaserve::DataType;
using vtaserve::Tensor;
using vtaserve::engine::ModelGraph;

struct ConvCase {
  std::string name;
  int cin, cout, h, w, k, s, p;
  bool relu;
};

using vtaserve::bench::Median;

// Lets the other runtime's spinning workers go to sleep before timing.
void Settle() { std::this_thread::sleep_for(std::chrono::milliseconds(150)); }

// Warm-up before each timed block, for ours, oneDNN and ORT alike.
constexpr int kWarmupRuns = 3;
constexpr int kWarmupMs = 50;

// Runs `run` at least kWarmupRuns times and for at least kWarmupMs.
template <typename F>
absl::Status WarmUp(F run) {
  const absl::Time end = absl::Now() + absl::Milliseconds(kWarmupMs);
  for (int i = 0; i < kWarmupRuns || absl::Now() < end; ++i) {
    if (absl::Status s = run(); !s.ok()) return s;
  }
  return absl::OkStatus();
}

ModelGraph SingleConvGraph(const ConvCase& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> w8(-127, 127), b(-5000, 5000);
  vtaserve::engine::ConvParams p;
  p.in_channels = c.cin;
  p.out_channels = c.cout;
  p.kernel_h = p.kernel_w = c.k;
  p.stride_h = p.stride_w = c.s;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = c.p;
  p.weights.resize(size_t(c.cout) * c.cin * c.k * c.k);
  for (int8_t& v : p.weights) v = static_cast<int8_t>(w8(rng));
  for (int i = 0; i < c.cout; ++i) {
    p.bias.push_back(b(rng));
    p.shift.push_back(12);
  }
  p.input_zero_point = -3;
  p.output_zero_point = -128;
  p.clamp_min = -128;  // ReLU or not: the output zero point is -128
  const int oh = (c.h + 2 * c.p - c.k) / c.s + 1;
  const int ow = (c.w + 2 * c.p - c.k) / c.s + 1;
  ModelGraph g;
  g.name = c.name;
  g.values = {{"x", DataType::kInt8, {1, c.cin, c.h, c.w}, 0.02f, -3},
              {"y", DataType::kInt8, {1, c.cout, oh, ow}, 0.05f, -128}};
  g.nodes.push_back({c.name, vtaserve::engine::OpKind::kConv, {0}, {1}, p});
  g.inputs = {0};
  g.outputs = {1};
  return g;
}

// CPU time of the calling thread: with one worker thread both our pool and
// oneDNN's OpenMP run the work on the caller, so this ignores time the
// thread spent descheduled. It is not load-independent on a shared or
// virtual machine (caches, memory bandwidth and the host's other tenants
// still slow it down), only less sensitive than wall time.
double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Per op kind: summed wall seconds of the last profiled run.
struct OpTotals {
  std::map<std::string, double> seconds;
};

struct CpuResult {
  double graph_us = -1;  // whole Execute, NCHW in and out (partition edges)
  double layer_us = -1;  // conv layers alone, as inside a CPU partition
  double thread_cpu_us = -1;  // whole Execute, caller's CPU time
  std::string describe;
  OpTotals ops;
  // Per layer (profile order): name, op and median wall seconds.
  struct Layer {
    std::string name, op;
    double median_s = -1;
  };
  std::vector<Layer> layers;
};

// Our backend compiled for one thread count, timed one Execute at a time so
// the caller can interleave it with the peers' runs.
class CpuRunner {
 public:
  static absl::StatusOr<std::unique_ptr<CpuRunner>> Create(
      const ModelGraph& g, int threads, vtaserve::cpu::CpuIsa isa) {
    auto r = std::unique_ptr<CpuRunner>(new CpuRunner());
    vtaserve::cpu::CpuOptions options;
    options.threads = threads;
    options.isa = isa;
    r->backend_ = vtaserve::cpu::CreateCpuBackend(options);
    auto model = r->backend_->Compile(g, {});
    if (!model.ok()) return model.status();
    r->model_ = std::move(*model);
    std::mt19937 rng(5);
    for (auto v : g.inputs) {
      auto t = Tensor::Create(g.values[v].dtype, g.values[v].shape);
      if (!t.ok()) return t.status();
      if (t->dtype() == DataType::kFloat32) {
        std::uniform_real_distribution<float> d(-2.0f, 2.0f);
        for (int64_t i = 0; i < t->num_elements(); ++i)
          t->data<float>()[i] = d(rng);
      } else {
        for (size_t i = 0; i < t->byte_size(); ++i)
          t->bytes()[i] = rng() & 0xff;
      }
      r->ins_.push_back(std::move(*t));
    }
    for (auto v : g.outputs) {
      auto t = Tensor::Create(g.values[v].dtype, g.values[v].shape);
      if (!t.ok()) return t.status();
      r->outs_.push_back(std::move(*t));
    }
    for (auto& t : r->ins_) r->in_ptrs_.push_back(&t);
    for (auto& t : r->outs_) r->out_ptrs_.push_back(&t);
    return r;
  }

  // One Execute; its times join the samples when `record`.
  absl::Status RunOnce(bool record) {
    std::vector<vtaserve::engine::LayerTiming> profile;
    vtaserve::engine::ExecutionContext ctx;
    ctx.profile = &profile;
    const double c0 = ThreadCpuSeconds();
    const absl::Time t0 = absl::Now();
    absl::Status s = model_->Execute(ctx, in_ptrs_, out_ptrs_);
    const double dt = absl::ToDoubleSeconds(absl::Now() - t0);
    const double dc = ThreadCpuSeconds() - c0;
    if (!s.ok() || !record) return s;
    graph_s_.push_back(dt);
    cpu_s_.push_back(dc);
    double conv = 0;
    ops_.seconds.clear();
    for (const auto& l : profile) {
      if (l.op == vtaserve::engine::OpKind::kConv) conv += l.wall_seconds;
      ops_.seconds[std::string(vtaserve::engine::OpKindName(l.op))] +=
          l.wall_seconds;
    }
    layer_s_.push_back(conv);
    if (layer_runs_.size() < profile.size()) layer_runs_.resize(profile.size());
    layer_names_.resize(profile.size());
    for (size_t i = 0; i < profile.size(); ++i) {
      layer_runs_[i].push_back(profile[i].wall_seconds);
      layer_names_[i] = {
          profile[i].layer,
          std::string(vtaserve::engine::OpKindName(profile[i].op))};
    }
    return s;
  }

  CpuResult Result() const {
    CpuResult res;
    res.graph_us = Median(graph_s_) * 1e6;
    res.layer_us = Median(layer_s_) * 1e6;
    res.thread_cpu_us = Median(cpu_s_) * 1e6;
    res.ops = ops_;  // the last recorded run
    res.describe = model_->Describe();
    for (size_t i = 0; i < layer_names_.size(); ++i) {
      res.layers.push_back({layer_names_[i].first, layer_names_[i].second,
                            Median(layer_runs_[i])});
    }
    return res;
  }

 private:
  CpuRunner() = default;
  std::unique_ptr<vtaserve::engine::Backend> backend_;
  std::unique_ptr<vtaserve::engine::CompiledModel> model_;
  std::vector<Tensor> ins_, outs_;
  std::vector<const Tensor*> in_ptrs_;
  std::vector<Tensor*> out_ptrs_;
  std::vector<double> graph_s_, layer_s_, cpu_s_;
  std::vector<std::vector<double>> layer_runs_;
  std::vector<std::pair<std::string, std::string>> layer_names_;
  OpTotals ops_;
};

// oneDNN u8 x s8 -> s8 conv with per-channel output scales; formats "any";
// the primitive is created with OpenMP set to `threads` and run with it.
class OneDnnRunner {
 public:
  OneDnnRunner(const ConvCase& c, int threads) : threads_(threads) {
    omp_set_num_threads(threads);
    using namespace dnnl;
    using dt = memory::data_type;
    using tag = memory::format_tag;
    eng_ = engine(engine::kind::cpu, 0);
    strm_ = stream(eng_);
    const int oh = (c.h + 2 * c.p - c.k) / c.s + 1;
    const int ow = (c.w + 2 * c.p - c.k) / c.s + 1;
    memory::desc src_md({1, c.cin, c.h, c.w}, dt::u8, tag::any);
    memory::desc wei_md({c.cout, c.cin, c.k, c.k}, dt::s8, tag::any);
    memory::desc bia_md({c.cout}, dt::s32, tag::a);
    memory::desc dst_md({1, c.cout, oh, ow}, dt::s8, tag::any);
    convolution_forward::desc desc(
        prop_kind::forward_inference, algorithm::convolution_direct, src_md,
        wei_md, bia_md, dst_md, {c.s, c.s}, {c.p, c.p}, {c.p, c.p});
    primitive_attr attr;
    attr.set_output_scales(1 << 1, std::vector<float>(c.cout, 1.0f / 4096));
    if (c.relu) {
      post_ops ops;
      ops.append_eltwise(1.0f, algorithm::eltwise_relu, 0.0f, 0.0f);
      attr.set_post_ops(ops);
    }
    convolution_forward::primitive_desc pd(desc, attr, eng_);
    src_ = memory(pd.src_desc(), eng_);
    wei_ = memory(pd.weights_desc(), eng_);
    bia_ = memory(pd.bias_desc(), eng_);
    dst_ = memory(pd.dst_desc(), eng_);
    std::memset(src_.get_data_handle(), 0x55, pd.src_desc().get_size());
    std::memset(wei_.get_data_handle(), 0x13, pd.weights_desc().get_size());
    std::memset(bia_.get_data_handle(), 0, pd.bias_desc().get_size());
    conv_ = convolution_forward(pd);
  }

  void RunOnce(bool record) {
    omp_set_num_threads(threads_);
    const double c0 = ThreadCpuSeconds();
    const absl::Time t0 = absl::Now();
    conv_.execute(strm_, {{DNNL_ARG_SRC, src_},
                          {DNNL_ARG_WEIGHTS, wei_},
                          {DNNL_ARG_BIAS, bia_},
                          {DNNL_ARG_DST, dst_}});
    strm_.wait();
    if (record) {
      t_.push_back(absl::ToDoubleSeconds(absl::Now() - t0));
      cpu_.push_back(ThreadCpuSeconds() - c0);
    }
  }
  double median_us() const { return Median(t_) * 1e6; }
  double median_thread_cpu_us() const { return Median(cpu_) * 1e6; }

 private:
  int threads_;
  dnnl::engine eng_;
  dnnl::stream strm_;
  dnnl::memory src_, wei_, bia_, dst_;
  dnnl::convolution_forward conv_;
  std::vector<double> t_, cpu_;
};

std::string SourceDir() {
  if (const char* e = std::getenv("VTASERVE_SOURCE_DIR")) return e;
  return VTASERVE_CPU_BENCH_SOURCE_DIR;
}

// ORT median microseconds of `model_path`, or < 0 with `why` set.
double TimeOrt(const std::string& model_path, int threads, int runs,
               std::string& why) {
  const std::string script = SourceDir() + "/tests/peer/ort_run.js";
  const std::string ort_pkg =
      SourceDir() + "/tests/peer/node_modules/onnxruntime-node/package.json";
  if (FILE* f = std::fopen(script.c_str(), "r")) {
    std::fclose(f);
  } else {
    why = "tests/peer/ort_run.js absent";
    return -1;
  }
  if (FILE* f = std::fopen(ort_pkg.c_str(), "r")) {
    std::fclose(f);
  } else {
    why = "onnxruntime-node not installed (npm ci in tests/peer)";
    return -1;
  }
  const std::string cmd =
      absl::StrCat("node '", script, "' '", model_path, "' random --time ",
                   runs, " --threads ", threads, " --warmup ", kWarmupRuns,
                   " --warmup-ms ", kWarmupMs, " 2>&1");
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) {
    why = "cannot start node";
    return -1;
  }
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof(buf), pipe)) out.append(buf, n);
  const int rc = pclose(pipe);
  const size_t pos = out.find("\"median_us\":");
  double v = -1;
  if (rc != 0 || pos == std::string::npos ||
      std::sscanf(out.c_str() + pos + 12, "%lf", &v) != 1) {
    why = absl::StrCat("ort_run.js failed: ", out.substr(0, 200));
    return -1;
  }
  return v;
}

struct Row {
  std::string name;
  int threads;
  int64_t macs;
  CpuResult cpu;
  double onednn_us = -1;
  double onednn_thread_cpu_us = -1;
  double ort_us = -1;
  std::string note;
};

int64_t GraphMacs(const ModelGraph& g) {
  int64_t m = 0;
  for (int i = 0; i < static_cast<int>(g.nodes.size()); ++i) m += g.NodeMacs(i);
  return m;
}

std::string Ratio(double ours, double peer) {
  if (ours <= 0 || peer <= 0) return "-";
  char b[32];
  std::snprintf(b, sizeof(b), "%.2fx", ours / peer);
  return b;
}

// Each case's layers: median microseconds at every thread count, and the
// speedup from the first thread count to the last.
void PrintLayers(const std::vector<Row>& rows) {
  for (size_t first = 0; first < rows.size();) {
    size_t end = first;
    while (end < rows.size() && rows[end].name == rows[first].name) ++end;
    std::printf("\nlayers of %s (median us):\n%-28s %-18s",
                rows[first].name.c_str(), "layer", "op");
    for (size_t r = first; r < end; ++r) std::printf(" %7dT", rows[r].threads);
    std::printf(" %8s\n", "speedup");
    const auto& base = rows[first].cpu.layers;
    for (size_t l = 0; l < base.size(); ++l) {
      std::printf("%-28s %-18s", base[l].name.c_str(), base[l].op.c_str());
      double last = -1;
      for (size_t r = first; r < end; ++r) {
        const auto& ls = rows[r].cpu.layers;
        last = l < ls.size() ? ls[l].median_s * 1e6 : -1;
        std::printf(" %8.0f", last);
      }
      std::printf(" %7.2fx\n", last > 0 ? base[l].median_s * 1e6 / last : 0.0);
    }
    first = end;
  }
}

}  // namespace

int RunCpuBench(int argc, char** argv) {
  std::vector<int> threads = {1, 2};
  bool json = false;
  bool layers = false;
  int runs = 30;
  // Timed blocks per runtime and thread count: short blocks spread every
  // runtime's runs over the same stretches of the host's load.
  int blocks = 10;
  vtaserve::cpu::CpuIsa isa = vtaserve::cpu::CpuIsa::kAuto;
  std::vector<std::string> cases = {"stem", "mid", "resnet18", "resnet50"};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--json") {
      json = true;
    } else if (a == "--layers") {
      layers = true;
    } else if (a == "--threads") {
      threads.clear();
      for (absl::string_view t : absl::StrSplit(next(), ',')) {
        int v;
        if (!absl::SimpleAtoi(t, &v) || v < 1) {
          std::fprintf(stderr, "bad --threads\n");
          return 2;
        }
        threads.push_back(v);
      }
    } else if (a == "--runs") {
      if (!absl::SimpleAtoi(next(), &runs) || runs < 1) {
        std::fprintf(stderr, "bad --runs\n");
        return 2;
      }
    } else if (a == "--blocks") {
      if (!absl::SimpleAtoi(next(), &blocks) || blocks < 1) {
        std::fprintf(stderr, "bad --blocks\n");
        return 2;
      }
    } else if (a == "--isa") {
      auto v = vtaserve::cpu::CpuIsaFromName(next());
      if (!v.ok()) {
        std::fprintf(stderr, "%s\n", std::string(v.status().message()).c_str());
        return 2;
      }
      isa = *v;
    } else if (a == "--cases") {
      cases = absl::StrSplit(next(), ',');
    } else {
      std::fprintf(stderr,
                   "usage: vtaserve-bench cpu [--threads 1,2] [--json] "
                   "[--runs N] [--blocks N] [--isa NAME] "
                   "[--cases stem,mid,resnet18,resnet50] [--layers]\n");
      return 2;
    }
  }
  const vtaserve::cpu::CpuIsa used =
      isa == vtaserve::cpu::CpuIsa::kAuto ? vtaserve::cpu::BestCpuIsa() : isa;
  std::printf(
      "cpu bench: isa %s, %d runs per figure (median) in %d alternating "
      "blocks, "
      "host cores %u\n",
      std::string(vtaserve::cpu::CpuIsaName(used)).c_str(), runs,
      std::min(blocks, runs), std::thread::hardware_concurrency());
  const std::string tmpdir = "/tmp";
  std::vector<Row> rows;
  for (const std::string& name : cases) {
    ModelGraph graph;
    bool is_conv = false;
    ConvCase cc{};
    std::string onnx_path;
    std::string note;
    if (name == "stem" || name == "mid") {
      is_conv = true;
      cc = name == "stem" ? ConvCase{"stem", 3, 64, 224, 224, 7, 2, 3, true}
                          : ConvCase{"mid", 128, 128, 28, 28, 3, 1, 1, true};
      graph = SingleConvGraph(cc, 1);
      vtaserve::zoo::ConvSpec spec;
      spec.in_channels = cc.cin;
      spec.out_channels = cc.cout;
      spec.input_h = cc.h;
      spec.input_w = cc.w;
      spec.kernel = cc.k;
      spec.stride = cc.s;
      spec.pad = cc.p;
      spec.relu = cc.relu;
      auto m = vtaserve::zoo::GenerateConv(spec);
      if (m.ok()) {
        onnx_path = absl::StrCat(tmpdir, "/vtaserve_cpu_bench_", name, ".onnx");
        if (!vtaserve::zoo::WriteModel(*m, onnx_path).ok()) onnx_path.clear();
      }
    } else if (name == "resnet18" || name == "resnet50") {
      vtaserve::zoo::ResNetSpec spec;
      spec.depth = name == "resnet18" ? 18 : 50;
      auto m = vtaserve::zoo::GenerateResNet(spec);
      if (!m.ok()) {
        std::printf("%s: %s\n", name.c_str(),
                    std::string(m.status().message()).c_str());
        continue;
      }
      auto g = vtaserve::engine::ImportOnnxModel(*m, {});
      if (!g.ok()) {
        std::printf("%s: import failed: %s\n", name.c_str(),
                    std::string(g.status().message()).c_str());
        continue;
      }
      graph = std::move(*g);
      onnx_path = absl::StrCat(tmpdir, "/vtaserve_cpu_bench_", name, ".onnx");
      if (!vtaserve::zoo::WriteModel(*m, onnx_path).ok()) onnx_path.clear();
    } else {
      std::fprintf(stderr, "unknown case %s\n", name.c_str());
      return 2;
    }
    // Ours and oneDNN at every thread count, interleaved in blocks of runs,
    // so a change in the machine's load during the case affects all alike;
    // a settle between blocks lets the previous runtime's spinning workers
    // (OpenMP spins for a while after each parallel region) go to sleep.
    std::vector<std::unique_ptr<CpuRunner>> ours;
    std::vector<std::unique_ptr<OneDnnRunner>> dnn;
    bool failed = false;
    for (int t : threads) {
      auto r = CpuRunner::Create(graph, t, isa);
      if (!r.ok()) {
        std::printf("%s: cpu failed: %s\n", name.c_str(),
                    std::string(r.status().message()).c_str());
        failed = true;
        break;
      }
      ours.push_back(std::move(*r));
      if (is_conv) dnn.push_back(std::make_unique<OneDnnRunner>(cc, t));
    }
    if (failed) continue;
    // ORT (a process per invocation) runs in kOrtBlocks of the blocks.
    constexpr int kOrtBlocks = 5;
    const int nblocks = std::min(blocks, runs);
    std::vector<std::vector<double>> ort_blocks(threads.size());
    std::vector<std::string> ort_why(threads.size());
    for (int block = 0; block < nblocks && !failed; ++block) {
      // Runs [first, last) of `runs`.
      const int first = runs * block / nblocks,
                last = runs * (block + 1) / nblocks;
      // ORT's share: its invocation o covers runs [runs*o/5, runs*(o+1)/5),
      // started in the block where that range begins.
      const int ort_o = kOrtBlocks * block / nblocks;
      const bool ort_here =
          block == 0 || ort_o != kOrtBlocks * (block - 1) / nblocks;
      const int ort_runs = std::max(
          1, runs * (ort_o + 1) / kOrtBlocks - runs * ort_o / kOrtBlocks);
      for (size_t i = 0; i < threads.size() && !failed; ++i) {
        Settle();
        // Every block starts with unrecorded warm-up runs, at least 3 and
        // kWarmupMs of them, the same for every runtime: after the settle,
        // workers sleep, clocks drop and caches hold the other runtime's
        // data; on this VM a woken second core runs slow for ~10 ms.
        absl::Status s = WarmUp([&] { return ours[i]->RunOnce(false); });
        for (int run = first; s.ok() && run < last; ++run)
          s = ours[i]->RunOnce(true);
        if (!s.ok()) {
          std::printf("%s: cpu failed: %s\n", name.c_str(),
                      std::string(s.message()).c_str());
          failed = true;
          continue;
        }
        if (is_conv) {
          Settle();
          WarmUp([&] {
            dnn[i]->RunOnce(false);
            return absl::OkStatus();
          }).IgnoreError();  // the lambda never fails
          for (int run = first; run < last; ++run) dnn[i]->RunOnce(true);
        }
        // ONNX Runtime runs in its own process (node, its own warm-up):
        // kOrtBlocks invocations spread over the blocks, their medians
        // pooled below.
        if (ort_here && !onnx_path.empty() && ort_why[i].empty()) {
          Settle();
          const double us =
              TimeOrt(onnx_path, threads[i], ort_runs, ort_why[i]);
          if (us > 0) ort_blocks[i].push_back(us);
        }
      }
    }
    if (failed) continue;
    for (size_t i = 0; i < threads.size(); ++i) {
      Row row;
      row.name = name;
      row.threads = threads[i];
      row.macs = GraphMacs(graph);
      row.cpu = ours[i]->Result();
      if (is_conv) {
        row.onednn_us = dnn[i]->median_us();
        row.onednn_thread_cpu_us = dnn[i]->median_thread_cpu_us();
      }
      if (!onnx_path.empty()) {
        // Median of the per-block medians.
        row.ort_us = ort_blocks[i].empty() ? -1 : Median(ort_blocks[i]);
        row.note = ort_why[i];
      } else {
        row.note = "no ONNX model for the ORT column (engine/zoo absent)";
      }
      rows.push_back(row);
    }
  }
  std::printf("\n%-9s %3s %8s %11s %11s %10s %8s %10s %8s  %s\n", "case", "thr",
              "GMAC", "cpu_layer", "cpu_graph", "onednn", "vs_dnn", "ort",
              "vs_ort", "note");
  for (const Row& r : rows) {
    const double ours = r.name == "resnet18" || r.name == "resnet50"
                            ? r.cpu.graph_us
                            : r.cpu.layer_us;
    std::printf("%-9s %3d %8.3f %9.0fus %9.0fus %8.0fus %8s %8.0fus %8s  %s\n",
                r.name.c_str(), r.threads, r.macs / 1e9, r.cpu.layer_us,
                r.cpu.graph_us, r.onednn_us, Ratio(ours, r.onednn_us).c_str(),
                r.ort_us, Ratio(ours, r.ort_us).c_str(), r.note.c_str());
  }
  std::printf(
      "ratios are ours / peer (< 1 = faster); convs compare cpu_layer (pack "
      "from "
      "NCHW + compute, as inside a CPU partition), ResNets the whole graph.\n");
  std::printf(
      "\n1-thread CPU time of the calling thread (ignores descheduling; still "
      "load-sensitive):\n");
  for (const Row& r : rows) {
    if (r.threads != 1) continue;
    std::printf("%-9s cpu %9.0fus (%.1f GMAC/s)  onednn %9.0fus  ratio %s\n",
                r.name.c_str(), r.cpu.thread_cpu_us,
                r.macs / (r.cpu.thread_cpu_us * 1e3), r.onednn_thread_cpu_us,
                Ratio(r.cpu.thread_cpu_us, r.onednn_thread_cpu_us).c_str());
  }
  std::printf("\nwall time per op kind (last run):\n");
  for (const Row& r : rows) {
    std::printf("%-9s %dT:", r.name.c_str(), r.threads);
    for (const auto& [op, sec] : r.cpu.ops.seconds) {
      std::printf(" %s %.0fus", op.c_str(), sec * 1e6);
    }
    std::printf("\n");
  }
  if (layers) PrintLayers(rows);
  double loadavg[1] = {0};
  if (getloadavg(loadavg, 1) == 1) {
    std::printf("load average during the run: %.2f on %u cores%s\n", loadavg[0],
                std::thread::hardware_concurrency(),
                loadavg[0] > std::thread::hardware_concurrency()
                    ? " (OVERLOADED: wall times are unreliable)"
                    : "");
  }
  // 1 -> N thread speedups of the layer time.
  for (const Row& r : rows) {
    if (r.threads == 1) continue;
    for (const Row& base : rows) {
      if (base.name == r.name && base.threads == 1) {
        const double a = r.name.rfind("resnet", 0) == 0 ? base.cpu.graph_us
                                                        : base.cpu.layer_us;
        const double b =
            r.name.rfind("resnet", 0) == 0 ? r.cpu.graph_us : r.cpu.layer_us;
        std::printf("speedup %s 1 -> %d threads: %.2fx\n", r.name.c_str(),
                    r.threads, a / b);
      }
    }
  }
  // Issue #5's floors, from the medians above: (a) stem on 2 threads at most
  // 1.2x oneDNN's time, (b) stem 1 -> 2 thread speedup >= 1.8x, (c) ResNet-18
  // on 2 threads no slower than ONNX Runtime. "n/a" when a figure is missing.
  const Row* stem1 = nullptr;
  const Row* stem2 = nullptr;
  const Row* rn2 = nullptr;
  for (const Row& r : rows) {
    if (r.name == "stem" && r.threads == 1) stem1 = &r;
    if (r.name == "stem" && r.threads == 2) stem2 = &r;
    if (r.name == "resnet18" && r.threads == 2) rn2 = &r;
  }
  auto verdict = [](bool known, bool met) {
    return !known ? "n/a" : met ? "met" : "NOT met";
  };
  const bool a_known = stem2 != nullptr && stem2->onednn_us > 0;
  const double a_ratio = a_known ? stem2->cpu.layer_us / stem2->onednn_us : -1;
  const bool b_known = stem1 != nullptr && stem2 != nullptr;
  const double b_speedup =
      b_known ? stem1->cpu.layer_us / stem2->cpu.layer_us : -1;
  const bool c_known = rn2 != nullptr && rn2->ort_us > 0;
  const double c_ratio = c_known ? rn2->cpu.graph_us / rn2->ort_us : -1;
  std::printf("\nfloors (issue #5), from these medians:\n");
  std::printf("  (a) stem 2T / oneDNN 2T = %.2f (<= 1.20): %s\n", a_ratio,
              verdict(a_known, a_ratio <= 1.2));
  std::printf("  (b) stem speedup 1 -> 2 threads = %.2fx (>= 1.80x): %s\n",
              b_speedup, verdict(b_known, b_speedup >= 1.8));
  std::printf("  (c) resnet18 2T / ORT 2T = %.2f (<= 1.00): %s\n", c_ratio,
              verdict(c_known, c_ratio <= 1.0));
  if (json) {
    std::string j =
        absl::StrCat("{\"bench\":\"cpu\",\"isa\":\"",
                     vtaserve::cpu::CpuIsaName(used), "\",\"runs\":", runs,
                     ",\"blocks\":", std::min(blocks, runs), ",\"results\":[");
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      absl::StrAppend(&j, i ? "," : "", "{\"case\":\"", r.name,
                      "\",\"threads\":", r.threads, ",\"macs\":", r.macs,
                      ",\"cpu_layer_us\":", r.cpu.layer_us,
                      ",\"cpu_graph_us\":", r.cpu.graph_us,
                      ",\"cpu_thread_cpu_us\":", r.cpu.thread_cpu_us,
                      ",\"onednn_us\":", r.onednn_us,
                      ",\"onednn_thread_cpu_us\":", r.onednn_thread_cpu_us,
                      ",\"ort_us\":", r.ort_us, ",\"note\":\"", r.note, "\"}");
    }
    absl::StrAppend(&j, "],\"load_average\":", loadavg[0],
                    ",\"floors\":{\"stem_2t_vs_onednn\":", a_ratio,
                    ",\"stem_speedup_1_to_2\":", b_speedup,
                    ",\"resnet18_2t_vs_ort\":", c_ratio, "}}");
    std::printf("%s\n", j.c_str());
  }
  return 0;
}
