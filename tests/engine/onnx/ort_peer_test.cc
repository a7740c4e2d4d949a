// The real peer: ONNX Runtime (onnxruntime-node, run by tests/peer/ort_run.js)
// against our importer + reference executor on the same generated models and
// the same deterministic random inputs:
//  - the ResNet 7x7/s2/p3 stem as a single QLinearConv (uint8 input, zero
//    point 128), per-channel and per-tensor weights, shift_group 1 and 16;
//  - the generated ResNet-18 (QDQ, 224x224, 1000 classes) on prototype
//    images plus noise (see PeerImage).
// Both with 7-bit (reduce_range) weights: see PeerWeightBits.
// Prints max difference in output LSBs, share of outputs within 1 LSB, top-1
// agreement and cosine of the dequantized logits; asserts the floors
// (stem >= 99% within 1 LSB; ResNet-18 top-1 >= 95%, cosine >= 0.99).
// The stem is also computed exactly (integer accumulation, double rescale)
// to tell which side a disagreement comes from: where ONNX Runtime itself
// is not within 1 LSB of the exact result on >= 99% of the outputs (its
// AVX2 u8s8 kernel saturates int16 pair sums, onnxruntime issue #16105, and
// this machine's CPU gets that kernel), the stem floor is checked against
// the exact result instead, and a warning with both figures is printed.
// Needs /usr/bin/node and tests/peer/node_modules/onnxruntime-node (run
// scripts/setup-peers.sh); without them it skips, and fails under CI=true
// (the peer policy of docs/testing.md).
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/npy.h"
#include "engine/onnx/onnx_importer.h"
#include "engine/zoo/float_resnet.h"
#include "engine/zoo/resnet_generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/onnx/onnx_test_util.h"
#include "tests/testing/peer.h"
#include "tests/testing/status_matchers.h"

namespace vtaserve::engine {
namespace {

using ::vtaserve::engine::testing::RandomTensor;
using ::vtaserve::engine::testing::RunOnReference;

constexpr int kImages = 50;
constexpr char kNode[] = "/usr/bin/node";

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string SourceDir() {
  if (const char* env = std::getenv("VTASERVE_SOURCE_DIR");
      env != nullptr && *env) {
    return env;
  }
  // Fallback when the binary is run by hand: this file's location.
  std::string file = __FILE__;
  const size_t pos = file.rfind("/tests/engine/onnx/");
  return pos == std::string::npos ? "." : file.substr(0, pos);
}

// Why the peer cannot run (see VTASERVE_REQUIRE_PEER), or success.
::testing::AssertionResult PeerAvailable(std::string& script) {
  const std::string peer = SourceDir() + "/tests/peer";
  script = peer + "/ort_run.js";
  if (!Exists(kNode)) {
    return ::testing::AssertionFailure()
           << kNode
           << " is missing: install nodejs and run scripts/setup-peers.sh";
  }
  if (!Exists(peer + "/node_modules/onnxruntime-node") || !Exists(script)) {
    return ::testing::AssertionFailure()
           << "ONNX Runtime peer missing under " << peer
           << " (no node_modules/onnxruntime-node or ort_run.js): run "
              "scripts/setup-peers.sh";
  }
  return ::testing::AssertionSuccess();
}

std::string MakeTempDir(const std::string& name) {
  std::string dir = absl::StrCat(::testing::TempDir(), "/ort_peer_", name, "_",
                                 static_cast<long long>(::getpid()));
  ::mkdir(dir.c_str(), 0755);
  ::mkdir((dir + "/out").c_str(), 0755);
  return dir;
}

// Writes `inputs` as dir/in_NNN.npy, runs ONNX Runtime once over all of them
// and reads back dir/out/in_NNN.npy.
absl::StatusOr<std::vector<Tensor>> RunOrt(const std::string& script,
                                           const std::string& dir,
                                           const std::string& model_path,
                                           const std::vector<Tensor>& inputs) {
  std::ofstream list(dir + "/inputs.txt");
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string p = absl::StrFormat("%s/in_%03d.npy", dir, i);
    if (absl::Status s = WriteNpy(p, inputs[i]); !s.ok()) return s;
    list << p << "\n";
  }
  list.close();
  const std::string cmd =
      absl::StrCat(kNode, " '", script, "' '", model_path, "' --input-list '",
                   dir, "/inputs.txt' --output-dir '", dir,
                   "/out' --threads 1 2> '", dir, "/ort_stderr.txt'");
  const int rc = std::system(cmd.c_str());
  if (rc != 0) {
    std::ifstream err(dir + "/ort_stderr.txt");
    std::string msg((std::istreambuf_iterator<char>(err)),
                    std::istreambuf_iterator<char>());
    return absl::InternalError(
        absl::StrCat("ONNX Runtime failed (", rc, "): ", msg));
  }
  std::vector<Tensor> outs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    absl::StatusOr<Tensor> t =
        ReadNpy(absl::StrFormat("%s/out/in_%03d.npy", dir, i));
    if (!t.ok()) return t.status();
    outs.push_back(std::move(t).value());
  }
  return outs;
}

// Runs `graph` on the reference executor over the images of `batch` (shape
// [N, ...]), split over two threads with one Executor each.
absl::StatusOr<Tensor> RunOursBatched(const ModelGraph& graph,
                                      const Tensor& batch) {
  const int64_t n = batch.shape()[0];
  const int64_t half = (n + 1) / 2;
  const size_t per_image = batch.byte_size() / n;
  std::vector<absl::StatusOr<std::vector<Tensor>>> results;
  for (int part = 0; part < 2; ++part)
    results.emplace_back(absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int part = 0; part < 2; ++part) {
    const int64_t begin = part * half, end = std::min(n, begin + half);
    if (begin >= end) {
      results[part] = std::vector<Tensor>{};
      continue;
    }
    threads.emplace_back([&, part, begin, end] {
      std::vector<int64_t> shape = batch.shape();
      shape[0] = end - begin;
      absl::StatusOr<Tensor> in = Tensor::Create(batch.dtype(), shape);
      if (!in.ok()) {
        results[part] = in.status();
        return;
      }
      std::memcpy(in->bytes(), batch.bytes() + begin * per_image,
                  in->byte_size());
      results[part] = RunOnReference(graph, {&*in});
    });
  }
  for (std::thread& t : threads) t.join();
  for (auto& r : results) {
    if (!r.ok()) return r.status();
  }
  const Tensor& first = (*results[0])[0];
  std::vector<int64_t> shape = first.shape();
  shape[0] = n;
  absl::StatusOr<Tensor> out = Tensor::Create(first.dtype(), shape);
  if (!out.ok()) return out.status();
  std::memcpy(out->bytes(), first.bytes(), first.byte_size());
  if (!results[1]->empty()) {
    const Tensor& second = (*results[1])[0];
    std::memcpy(out->bytes() + first.byte_size(), second.bytes(),
                second.byte_size());
  }
  return out;
}

Tensor Stack(const std::vector<Tensor>& images) {
  std::vector<int64_t> shape = images[0].shape();
  shape[0] = static_cast<int64_t>(images.size());
  Tensor t = std::move(Tensor::Create(images[0].dtype(), shape)).value();
  for (size_t i = 0; i < images.size(); ++i) {
    std::memcpy(t.bytes() + i * images[i].byte_size(), images[i].bytes(),
                images[i].byte_size());
  }
  return t;
}

const onnx::TensorProto* FindInitializer(const onnx::ModelProto& m,
                                         const std::string& name) {
  for (const auto& t : m.graph().initializer()) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

// The exact QLinearConv result for `image` (integer accumulation, double
// rescale, round half to even), as uint8 [M, OH, OW]: what both engines
// approximate. Used to tell which side an ORT disagreement comes from.
std::vector<int> ExactStem(const onnx::ModelProto& m, const zoo::ConvSpec& spec,
                           const Tensor& image) {
  auto floats = [&](const std::string& n) {
    const onnx::TensorProto* t = FindInitializer(m, n);
    std::vector<float> v(t->raw_data().size() / 4);
    std::memcpy(v.data(), t->raw_data().data(), v.size() * 4);
    return v;
  };
  const float sx = floats("input_scale")[0], sy = floats("output_scale")[0];
  const std::vector<float> sw = floats("conv.weight_scale");
  const int zx = static_cast<uint8_t>(
      FindInitializer(m, "input_zero_point")->raw_data()[0]);
  const int zy = static_cast<uint8_t>(
      FindInitializer(m, "output_zero_point")->raw_data()[0]);
  const std::string& w =
      FindInitializer(m, "conv.weight_quantized")->raw_data();
  std::vector<int32_t> bias(spec.out_channels);
  std::memcpy(bias.data(),
              FindInitializer(m, "conv.bias_quantized")->raw_data().data(),
              bias.size() * 4);
  const int k = spec.kernel, h = spec.input_h, wd = spec.input_w;
  const int oh = (h + 2 * spec.pad - k) / spec.stride + 1;
  const int ow = (wd + 2 * spec.pad - k) / spec.stride + 1;
  std::vector<int> out(static_cast<size_t>(spec.out_channels) * oh * ow);
  std::vector<int32_t> acc(static_cast<size_t>(oh) * ow);
  for (int oc = 0; oc < spec.out_channels; ++oc) {
    const double mult = double{sx} * sw[sw.size() == 1 ? 0 : oc] / sy;
    std::fill(acc.begin(), acc.end(), bias[oc]);
    for (int ic = 0; ic < spec.in_channels; ++ic) {
      const uint8_t* plane = image.bytes() + static_cast<size_t>(ic) * h * wd;
      for (int kh = 0; kh < k; ++kh) {
        for (int kw = 0; kw < k; ++kw) {
          const int wv = static_cast<int8_t>(
              w[((oc * spec.in_channels + ic) * k + kh) * k + kw]);
          // Padding taps read zx and contribute (zx - zx) * w = 0.
          for (int y = 0; y < oh; ++y) {
            const int ih = y * spec.stride + kh - spec.pad;
            if (ih < 0 || ih >= h) continue;
            int32_t* row = &acc[static_cast<size_t>(y) * ow];
            for (int x = 0; x < ow; ++x) {
              const int iw = x * spec.stride + kw - spec.pad;
              if (iw >= 0 && iw < wd)
                row[x] += (int{plane[ih * wd + iw]} - zx) * wv;
            }
          }
        }
      }
    }
    for (size_t i = 0; i < acc.size(); ++i) {
      out[oc * acc.size() + i] = static_cast<int>(
          std::clamp(std::nearbyint(acc[i] * mult) + zy, 0.0, 255.0));
    }
  }
  return out;
}

// An independent float64 interpreter of the QDQ ONNX graph the zoo writes
// (QuantizeLinear, DequantizeLinear, Conv, Relu, Add, MaxPool,
// GlobalAveragePool, Flatten, Gemm): the exact semantics of the quantized
// model, which ONNX Runtime approximates in float32 and we with folded
// integer requantization. Returns the output named `output`.
class QdqInterpreter {
 public:
  struct T {
    std::vector<int64_t> dims;
    std::vector<double> v;
    int32_t qtype = 0;  // onnx elem type of Q outputs (UINT8/INT8), else 0
  };

  explicit QdqInterpreter(const onnx::ModelProto& m) : m_(m) {
    for (const auto& t : m.graph().initializer()) {
      T x;
      x.dims.assign(t.dims().begin(), t.dims().end());
      const std::string& raw = t.raw_data();
      switch (t.data_type()) {
        case onnx::TensorProto::FLOAT:
          for (size_t i = 0; i < raw.size() / 4; ++i) {
            float f;
            std::memcpy(&f, raw.data() + 4 * i, 4);
            x.v.push_back(f);
          }
          break;
        case onnx::TensorProto::UINT8:
          for (char c : raw) x.v.push_back(static_cast<uint8_t>(c));
          break;
        case onnx::TensorProto::INT8:
          for (char c : raw) x.v.push_back(static_cast<int8_t>(c));
          break;
        case onnx::TensorProto::INT32:
          for (size_t i = 0; i < raw.size() / 4; ++i) {
            int32_t q;
            std::memcpy(&q, raw.data() + 4 * i, 4);
            x.v.push_back(q);
          }
          break;
        case onnx::TensorProto::INT64:
          for (size_t i = 0; i < raw.size() / 8; ++i) {
            int64_t q;
            std::memcpy(&q, raw.data() + 8 * i, 8);
            x.v.push_back(static_cast<double>(q));
          }
          break;
        default:
          break;
      }
      x.qtype = t.data_type();
      init_.emplace(t.name(), std::move(x));
    }
  }

  std::vector<double> Run(const std::vector<float>& input,
                          const std::string& output) const {
    std::map<std::string, T> vals;
    const auto& in = m_.graph().input(0);
    T x;
    for (const auto& d : in.type().tensor_type().shape().dim()) {
      x.dims.push_back(d.dim_value() > 0 ? d.dim_value() : 1);
    }
    x.v.assign(input.begin(), input.end());
    vals[in.name()] = std::move(x);
    auto get = [&](const std::string& n) -> const T& {
      auto it = vals.find(n);
      return it != vals.end() ? it->second : init_.at(n);
    };
    for (const auto& n : m_.graph().node()) {
      const std::string& op = n.op_type();
      T y;
      if (op == "QuantizeLinear") {
        const T& a = get(n.input(0));
        const double sc = get(n.input(1)).v[0];
        const T& z = get(n.input(2));
        const bool u8 = z.qtype == onnx::TensorProto::UINT8;
        y.dims = a.dims;
        y.qtype = z.qtype;
        y.v.resize(a.v.size());
        for (size_t i = 0; i < a.v.size(); ++i) {
          y.v[i] = std::clamp(std::nearbyint(a.v[i] / sc) + z.v[0],
                              u8 ? 0.0 : -128.0, u8 ? 255.0 : 127.0);
        }
      } else if (op == "DequantizeLinear") {
        const T& a = get(n.input(0));
        const T& sc = get(n.input(1));
        const T& z = get(n.input(2));
        y.dims = a.dims;
        y.v.resize(a.v.size());
        int64_t inner = 1;
        for (size_t d = 1; d < a.dims.size(); ++d) inner *= a.dims[d];
        for (size_t i = 0; i < a.v.size(); ++i) {
          const size_t c = sc.v.size() == 1 ? 0 : (i / inner) % sc.v.size();
          y.v[i] = (a.v[i] - z.v[c]) * sc.v[c];
        }
      } else if (op == "Conv") {
        y = Conv(n, get(n.input(0)), get(n.input(1)),
                 n.input_size() > 2 ? &get(n.input(2)) : nullptr);
      } else if (op == "Relu") {
        y = get(n.input(0));
        for (double& v : y.v) v = std::max(v, 0.0);
      } else if (op == "Add") {
        y = get(n.input(0));
        const T& b = get(n.input(1));
        for (size_t i = 0; i < y.v.size(); ++i) y.v[i] += b.v[i];
      } else if (op == "MaxPool") {
        y = MaxPool(n, get(n.input(0)));
      } else if (op == "GlobalAveragePool") {
        const T& a = get(n.input(0));
        const int64_t c = a.dims[1], hw = a.dims[2] * a.dims[3];
        y.dims = {1, c, 1, 1};
        for (int64_t ch = 0; ch < c; ++ch) {
          double sum = 0;
          for (int64_t i = 0; i < hw; ++i) sum += a.v[ch * hw + i];
          y.v.push_back(sum / hw);
        }
      } else if (op == "Flatten") {
        y = get(n.input(0));
        y.dims = {1, static_cast<int64_t>(y.v.size())};
      } else if (op == "Gemm") {
        const T& a = get(n.input(0));
        const T& w = get(n.input(1));
        bool trans_b = false;
        for (const auto& at : n.attribute()) {
          if (at.name() == "transB") trans_b = at.i() != 0;
        }
        const int64_t kk = a.dims[1];
        const int64_t nn = trans_b ? w.dims[0] : w.dims[1];
        y.dims = {1, nn};
        for (int64_t o = 0; o < nn; ++o) {
          double acc = n.input_size() > 2 ? get(n.input(2)).v[o] : 0.0;
          for (int64_t i = 0; i < kk; ++i) {
            acc += a.v[i] * (trans_b ? w.v[o * kk + i] : w.v[i * nn + o]);
          }
          y.v.push_back(acc);
        }
      } else {
        ADD_FAILURE() << "interpreter lacks " << op;
        return {};
      }
      vals[n.output(0)] = std::move(y);
    }
    return vals.at(output).v;
  }

 private:
  static std::vector<int64_t> Ints(const onnx::NodeProto& n,
                                   const std::string& name,
                                   std::vector<int64_t> def) {
    for (const auto& a : n.attribute()) {
      if (a.name() == name) return {a.ints().begin(), a.ints().end()};
    }
    return def;
  }

  static T Conv(const onnx::NodeProto& n, const T& x, const T& w, const T* b) {
    const std::vector<int64_t> s = Ints(n, "strides", {1, 1});
    const std::vector<int64_t> p = Ints(n, "pads", {0, 0, 0, 0});
    const int64_t c = x.dims[1], h = x.dims[2], wd = x.dims[3];
    const int64_t m = w.dims[0], kh = w.dims[2], kw = w.dims[3];
    const int64_t oh = (h + p[0] + p[2] - kh) / s[0] + 1;
    const int64_t ow = (wd + p[1] + p[3] - kw) / s[1] + 1;
    T y;
    y.dims = {1, m, oh, ow};
    y.v.assign(m * oh * ow, 0.0);
    for (int64_t oc = 0; oc < m; ++oc) {
      double* out = &y.v[oc * oh * ow];
      if (b != nullptr) std::fill(out, out + oh * ow, b->v[oc]);
      for (int64_t ic = 0; ic < c; ++ic) {
        for (int64_t a = 0; a < kh; ++a) {
          for (int64_t e = 0; e < kw; ++e) {
            const double wv = w.v[((oc * c + ic) * kh + a) * kw + e];
            if (wv == 0) continue;
            for (int64_t r = 0; r < oh; ++r) {
              const int64_t ih = r * s[0] + a - p[0];
              if (ih < 0 || ih >= h) continue;
              const double* row = &x.v[(ic * h + ih) * wd];
              for (int64_t q = 0; q < ow; ++q) {
                const int64_t iw = q * s[1] + e - p[1];
                if (iw >= 0 && iw < wd) out[r * ow + q] += row[iw] * wv;
              }
            }
          }
        }
      }
    }
    return y;
  }

  static T MaxPool(const onnx::NodeProto& n, const T& x) {
    const std::vector<int64_t> k = Ints(n, "kernel_shape", {1, 1});
    const std::vector<int64_t> s = Ints(n, "strides", {1, 1});
    const std::vector<int64_t> p = Ints(n, "pads", {0, 0, 0, 0});
    const int64_t c = x.dims[1], h = x.dims[2], wd = x.dims[3];
    const int64_t oh = (h + p[0] + p[2] - k[0]) / s[0] + 1;
    const int64_t ow = (wd + p[1] + p[3] - k[1]) / s[1] + 1;
    T y;
    y.dims = {1, c, oh, ow};
    for (int64_t ch = 0; ch < c; ++ch) {
      for (int64_t r = 0; r < oh; ++r) {
        for (int64_t q = 0; q < ow; ++q) {
          double best = -1e300;
          for (int64_t a = 0; a < k[0]; ++a) {
            for (int64_t e = 0; e < k[1]; ++e) {
              const int64_t ih = r * s[0] + a - p[0], iw = q * s[1] + e - p[1];
              if (ih >= 0 && ih < h && iw >= 0 && iw < wd) {
                best = std::max(best, x.v[(ch * h + ih) * wd + iw]);
              }
            }
          }
          y.v.push_back(best);
        }
      }
    }
    return y;
  }

  const onnx::ModelProto& m_;
  std::map<std::string, T> init_;
};

// Weight bits of the peer models: 7 (ONNX Runtime's reduce_range, weights in
// [-63, 63]). This machine (AMD Zen 3, AVX2, no VNNI) gets ONNX Runtime's
// AVX2 u8 x s8 kernel, whose VPMADDUBSW pair sums saturate at int16 with
// full-range 8-bit weights (onnxruntime issue #16105), so ONNX Runtime is not
// exact with 8-bit weights there; reduce_range is what its quantizer offers
// for such CPUs. VTASERVE_PEER_WEIGHT_BITS=8 measures the 8-bit models.
int PeerWeightBits() {
  const char* env = std::getenv("VTASERVE_PEER_WEIGHT_BITS");
  return env != nullptr && std::string(env) == "8" ? 8 : 7;
}

struct StemCase {
  bool per_channel;
  bool images;  // image-like inputs (else uniform random bytes)
};

class OnnxOrtPeerStemTest : public ::testing::TestWithParam<StemCase> {};

TEST_P(OnnxOrtPeerStemTest, StemConvWithinOneLsbOfOnnxRuntime) {
  std::string script;
  const ::testing::AssertionResult peer = PeerAvailable(script);
  VTASERVE_REQUIRE_PEER(peer, peer.message());
  zoo::ConvSpec spec;  // 3 -> 64, 224x224, 7x7/s2/p3, uint8 input zp 128
  spec.per_channel = GetParam().per_channel;
  spec.weight_bits = PeerWeightBits();  // see PeerWeightBits
  spec.format = zoo::ModelFormat::kQOperator;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto model,
                                zoo::GenerateConv(spec));
  const std::string dir =
      MakeTempDir(absl::StrCat(spec.per_channel ? "stem_pc" : "stem_pt",
                               GetParam().images ? "_img" : "_rnd"));
  const std::string model_path = dir + "/stem.onnx";
  ASSERT_THAT(zoo::WriteModel(model, model_path), ::vtaserve::testing::IsOk());

  std::vector<Tensor> inputs;
  for (int i = 0; i < kImages; ++i) {
    if (GetParam().images) {
      // Smooth pseudo-random images in normalized ImageNet space, quantized
      // with the stem's input scale and zero point 128.
      const std::vector<float> img =
          zoo::CalibrationImage(/*seed=*/555, i, 224);
      Tensor t =
          std::move(Tensor::Create(DataType::kUInt8, {1, 3, 224, 224})).value();
      for (int64_t k = 0; k < t.num_elements(); ++k) {
        t.bytes()[k] = static_cast<uint8_t>(std::clamp(
            std::nearbyint(img[k] / spec.input_scale) + spec.input_zero_point,
            0.0f, 255.0f));
      }
      inputs.push_back(std::move(t));
    } else {
      inputs.push_back(
          RandomTensor(DataType::kUInt8, {1, 3, 224, 224}, 1000 + i));
    }
  }
  const absl::Time t0 = absl::Now();
  VTASERVE_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> ort,
                                RunOrt(script, dir, model_path, inputs));
  const double ort_s = absl::ToDoubleSeconds(absl::Now() - t0);
  const Tensor batch = Stack(inputs);
  // Where do disagreements come from? Both sides against the exact result
  // on the first images.
  const int kExactImages = kImages;
  std::vector<std::vector<int>> exact_ref;
  double ort_vs_exact = 0;
  for (int i = 0; i < kExactImages; ++i)
    exact_ref.push_back(ExactStem(model, spec, inputs[i]));
  {
    int64_t within = 0, total = 0;
    int max_diff = 0;
    for (int i = 0; i < kExactImages; ++i) {
      for (size_t k = 0; k < exact_ref[i].size(); ++k) {
        const int d = std::abs(exact_ref[i][k] - int{ort[i].bytes()[k]});
        max_diff = std::max(max_diff, d);
        within += d <= 1 ? 1 : 0;
        ++total;
      }
    }
    ort_vs_exact = static_cast<double>(within) / total;
    std::printf(
        "[ ort peer ] stem %s: ONNX Runtime vs exact integer QLinearConv: max "
        "diff "
        "%d LSB, %.3f%% within 1 LSB (%d images)\n",
        spec.per_channel ? "per-channel" : "per-tensor ", max_diff,
        100.0 * ort_vs_exact, kExactImages);
  }

  for (int shift_group : {16, 1}) {
    ImportOptions options;
    options.requant.shift_group = shift_group;
    VTASERVE_ASSERT_OK_AND_ASSIGN(ModelGraph g,
                                  ImportOnnxModel(model, options));
    const absl::Time t1 = absl::Now();
    VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor ours, RunOursBatched(g, batch));
    const double ours_s = absl::ToDoubleSeconds(absl::Now() - t1);
    const int64_t per = ours.num_elements() / kImages;
    int64_t within = 0, exact = 0, total = 0;
    int max_diff = 0;
    for (int i = 0; i < kImages; ++i) {
      ASSERT_EQ(ort[i].dtype(), DataType::kUInt8);
      ASSERT_EQ(ort[i].num_elements(), per);
      for (int64_t k = 0; k < per; ++k) {
        const int d =
            std::abs(int{ours.bytes()[i * per + k]} - int{ort[i].bytes()[k]});
        max_diff = std::max(max_diff, d);
        within += d <= 1 ? 1 : 0;
        exact += d == 0 ? 1 : 0;
        ++total;
      }
    }
    const double share = static_cast<double>(within) / total;
    int64_t exact_within = 0, exact_total = 0;
    int exact_max = 0;
    for (int i = 0; i < kExactImages; ++i) {
      for (int64_t k = 0; k < per; ++k) {
        const int d =
            std::abs(int{ours.bytes()[i * per + k]} - exact_ref[i][k]);
        exact_max = std::max(exact_max, d);
        exact_within += d <= 1 ? 1 : 0;
        ++exact_total;
      }
    }
    std::printf(
        "[ ort peer ] stem %s, shift_group %2d: ours vs exact integer "
        "QLinearConv: "
        "max diff %d LSB, %.3f%% within 1 LSB\n",
        spec.per_channel ? "per-channel" : "per-tensor ", shift_group,
        exact_max, 100.0 * exact_within / exact_total);
    std::printf(
        "[ ort peer ] stem 7x7/s2 %s, shift_group %2d: %d images, %lld "
        "outputs: "
        "max diff %d LSB, %.3f%% within 1 LSB, %.2f%% exact "
        "(ORT %.1f s incl. start-up, ours %.1f s)\n",
        spec.per_channel ? "per-channel" : "per-tensor ", shift_group, kImages,
        static_cast<long long>(total), max_diff, 100.0 * share,
        100.0 * exact / total, ort_s, ours_s);
    if (ort_vs_exact >= 0.99) {
      EXPECT_GE(share, 0.99) << "shift_group " << shift_group;
    } else {
      // ONNX Runtime's u8s8 QGEMM on CPUs it runs with the AVX2 kernel (this
      // AMD Zen 3 among them) sums u8*s8 pairs with VPMADDUBSW, which
      // saturates at int16 (onnxruntime issue #16105): with full-range
      // per-channel weights it is itself far from the exact QLinearConv.
      // The 99% floor then applies against the exact integer result.
      std::printf(
          "[ ort peer ] WARNING: ONNX Runtime is only %.3f%% within 1 LSB of "
          "the "
          "exact QLinearConv on this CPU (int16 saturation in its u8s8 "
          "kernel); "
          "the floor is checked against the exact result\n",
          100.0 * ort_vs_exact);
      EXPECT_GE(static_cast<double>(exact_within) / exact_total, 0.99)
          << "shift_group " << shift_group;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Weights, OnnxOrtPeerStemTest,
                         ::testing::Values(StemCase{true, false},
                                           StemCase{false, false}),
                         [](const ::testing::TestParamInfo<StemCase>& i) {
                           return absl::StrCat(
                               i.param.per_channel ? "PerChannel" : "PerTensor",
                               i.param.images ? "Images" : "UniformBytes");
                         });

// Agreement of two sets of logits ([kImages][k] each).
struct LogitAgreement {
  int top1 = 0;
  double mean_cos = 0, min_cos = 1, max_lsb = 0, within_one = 0;
};

LogitAgreement CompareLogits(const std::vector<std::vector<double>>& a,
                             const std::vector<std::vector<double>>& b,
                             double step) {
  LogitAgreement r;
  int64_t within = 0, total = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const std::vector<double>& x = a[i];
    const std::vector<double>& y = b[i];
    r.top1 += std::max_element(x.begin(), x.end()) - x.begin() ==
              std::max_element(y.begin(), y.end()) - y.begin();
    double dot = 0, nx = 0, ny = 0;
    for (size_t c = 0; c < x.size(); ++c) {
      dot += x[c] * y[c];
      nx += x[c] * x[c];
      ny += y[c] * y[c];
      const double lsb = std::fabs(x[c] - y[c]) / step;
      r.max_lsb = std::max(r.max_lsb, lsb);
      within += lsb <= 1.0 + 1e-3 ? 1 : 0;
      ++total;
    }
    const double cos = dot / std::sqrt(nx * ny + 1e-30);
    r.min_cos = std::min(r.min_cos, cos);
    r.mean_cos += cos / a.size();
  }
  r.within_one = static_cast<double>(within) / total;
  return r;
}

void PrintAgreement(const char* what, const LogitAgreement& r, int images) {
  std::printf(
      "[ ort peer ] ResNet-18 QDQ 224, %-34s top-1 %2d/%d (%5.1f%%), cosine "
      "mean "
      "%.5f min %.5f, max diff %3.0f LSB, %6.2f%% of logits within 1 LSB\n",
      what, r.top1, images, 100.0 * r.top1 / images, r.mean_cos, r.min_cos,
      r.max_lsb, 100.0 * r.within_one);
}

// Inputs like a labelled data set: image i is prototype i mod P of the
// generated model (its class, see zoo::BuildFloatResNet) blended with an
// independent smooth image (weight 0.3) and per-pixel noise.
std::vector<float> PeerImage(uint64_t model_seed, int num_classes, int i,
                             int size) {
  const std::vector<float> proto = zoo::PrototypeImage(
      model_seed, i % zoo::NumPrototypes(num_classes), size);
  const std::vector<float> other = zoo::CalibrationImage(/*seed=*/777, i, size);
  std::vector<float> img(proto.size());
  uint32_t state = 12345u + static_cast<uint32_t>(i);
  for (size_t k = 0; k < img.size(); ++k) {
    state = state * 1664525u + 1013904223u;
    const float noise =
        (static_cast<float>(state >> 8) / 16777216.0f - 0.5f) * 0.2f;
    img[k] = 0.7f * proto[k] + 0.3f * other[k] + noise;
  }
  return img;
}

// Floors of issue 2, ours (default RequantOptions, shift_group 16) against
// ONNX Runtime: top-1 agreement >= 95% and mean cosine of the dequantized
// logits >= 0.99 (the minimum is printed too). Also prints ORT and ours
// against the exact float64 semantics of the QDQ model.
TEST(OnnxOrtPeerTest, ResNet18QdqAgreesWithOnnxRuntime) {
  std::string script;
  const ::testing::AssertionResult peer = PeerAvailable(script);
  VTASERVE_REQUIRE_PEER(peer, peer.message());
  zoo::ResNetSpec spec;
  spec.depth = 18;
  spec.input_size = 224;
  spec.num_classes = 1000;
  spec.format = zoo::ModelFormat::kQdq;
  spec.weight_bits = PeerWeightBits();
  std::printf("[ ort peer ] ResNet-18 QDQ 224 with %d-bit weights\n",
              spec.weight_bits);
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto model,
                                zoo::GenerateResNet(spec));
  const std::string dir = MakeTempDir("resnet18");
  const std::string model_path = dir + "/resnet18_qdq.onnx";
  ASSERT_THAT(zoo::WriteModel(model, model_path), ::vtaserve::testing::IsOk());
  VTASERVE_ASSERT_OK_AND_ASSIGN(ModelGraph g,
                                ImportOnnxModel(model, ImportOptions{}));
  // The logits' quantization step, from the output Dequantize.
  float step = 0;
  for (const Node& n : g.nodes) {
    if (n.op == OpKind::kDequantize)
      step = std::get<QuantizeParams>(n.params).scale;
  }
  ASSERT_GT(step, 0);
  const int k = spec.num_classes;

  std::vector<Tensor> inputs;
  std::vector<std::vector<float>> images;
  for (int i = 0; i < kImages; ++i) {
    images.push_back(PeerImage(spec.seed, k, i, 224));
    Tensor t =
        std::move(Tensor::Create(DataType::kFloat32, {1, 3, 224, 224})).value();
    ASSERT_EQ(images.back().size(), static_cast<size_t>(t.num_elements()));
    std::memcpy(t.bytes(), images.back().data(), t.byte_size());
    inputs.push_back(std::move(t));
  }
  const absl::Time t0 = absl::Now();
  VTASERVE_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> ort_out,
                                RunOrt(script, dir, model_path, inputs));
  const double ort_s = absl::ToDoubleSeconds(absl::Now() - t0);
  std::vector<std::vector<double>> ort;
  for (const Tensor& t : ort_out) {
    ASSERT_EQ(t.num_elements(), k);
    ort.emplace_back(t.data<float>(), t.data<float>() + k);
  }

  // The exact semantics of the same QDQ model (float64), on two threads.
  const absl::Time te = absl::Now();
  const QdqInterpreter interp(model);
  std::vector<std::vector<double>> exact(kImages);
  {
    std::vector<std::thread> threads;
    for (int part = 0; part < 2; ++part) {
      threads.emplace_back([&, part] {
        for (int i = part; i < kImages; i += 2)
          exact[i] = interp.Run(images[i], "logits");
      });
    }
    for (std::thread& t : threads) t.join();
  }
  const double exact_s = absl::ToDoubleSeconds(absl::Now() - te);

  std::vector<std::vector<double>> ours16, ours1;
  double ours_s = 0;
  const Tensor batch = Stack(inputs);
  for (int shift_group : {16, 1}) {
    ImportOptions options;
    options.requant.shift_group = shift_group;
    VTASERVE_ASSERT_OK_AND_ASSIGN(ModelGraph gs,
                                  ImportOnnxModel(model, options));
    const absl::Time t1 = absl::Now();
    VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor out, RunOursBatched(gs, batch));
    if (shift_group == 16) ours_s = absl::ToDoubleSeconds(absl::Now() - t1);
    auto& dst = shift_group == 16 ? ours16 : ours1;
    for (int i = 0; i < kImages; ++i) {
      dst.emplace_back(out.data<float>() + i * k,
                       out.data<float>() + (i + 1) * k);
    }
  }
  const LogitAgreement o16_ort = CompareLogits(ours16, ort, step);
  const LogitAgreement o1_ort = CompareLogits(ours1, ort, step);
  const LogitAgreement ort_exact = CompareLogits(ort, exact, step);
  const LogitAgreement o16_exact = CompareLogits(ours16, exact, step);
  const LogitAgreement o1_exact = CompareLogits(ours1, exact, step);
  PrintAgreement("ours (shift_group 16) vs ORT:", o16_ort, kImages);
  PrintAgreement("ours (shift_group 1) vs ORT:", o1_ort, kImages);
  PrintAgreement("ORT vs exact float64 QDQ:", ort_exact, kImages);
  PrintAgreement("ours (shift_group 16) vs exact:", o16_exact, kImages);
  PrintAgreement("ours (shift_group 1) vs exact:", o1_exact, kImages);
  std::printf(
      "[ ort peer ] ResNet-18 timings: ORT %.1f s incl. start-up, exact "
      "float64 %.1f s, "
      "ours (reference executor, 2 threads) %.1f s\n",
      ort_s, exact_s, ours_s);
  EXPECT_GE(o16_ort.top1, 0.95 * kImages);
  EXPECT_GE(o16_ort.mean_cos, 0.99);
}

}  // namespace
}  // namespace vtaserve::engine
