// Generated models run by ONNX Runtime (tests/peer/ort_run.js, Node) against
// the zoo's own float forward pass: the float ONNX graph must encode exactly
// the network the C++ calibration runs, and every quantized form must track
// it. Needs node and tests/peer/node_modules (run scripts/setup-peers.sh):
// without them it skips, and fails under CI=true (the peer policy of
// docs/testing.md).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/zoo/float_resnet.h"
#include "engine/zoo/resnet_generator.h"
#include "gtest/gtest.h"
#include "tests/testing/peer.h"
#include "tests/testing/status_matchers.h"

namespace vtaserve::zoo {
namespace {

using ::vtaserve::testing::IsOk;

void WriteFloatNpy(const std::string& path, const std::vector<float>& data,
                   const std::vector<int64_t>& dims) {
  std::string shape;
  for (size_t i = 0; i < dims.size(); ++i) {
    absl::StrAppend(&shape, i ? ", " : "", dims[i]);
  }
  if (dims.size() == 1) shape += ",";
  std::string header = absl::StrCat(
      "{'descr': '<f4', 'fortran_order': False, 'shape': (", shape, "), }");
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const char len[2] = {static_cast<char>(header.size() & 0xff),
                       static_cast<char>(header.size() >> 8)};
  out.write(len, 2);
  out << header;
  out.write(reinterpret_cast<const char*>(data.data()),
            static_cast<std::streamsize>(data.size() * sizeof(float)));
}

// Reads a little-endian float32 .npy (v1.0) written by ort_run.js; empty on
// any mismatch.
std::vector<float> ReadFloatNpy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) return {};
  const size_t header_len =
      static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
  const std::string header = bytes.substr(10, header_len);
  if (header.find("'<f4'") == std::string::npos) return {};
  const size_t start = 10 + header_len;
  std::vector<float> v((bytes.size() - start) / sizeof(float));
  std::memcpy(v.data(), bytes.data() + start, v.size() * sizeof(float));
  return v;
}

class ZooOrtPeerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string src = __FILE__;  // run by hand: this file's checkout
    src = src.substr(0, src.rfind("/tests/engine/zoo/"));
    if (const char* env = std::getenv("VTASERVE_SOURCE_DIR");
        env != nullptr && *env) {
      src = env;  // ctest sets it
    }
    script_ = src + "/tests/peer/ort_run.js";
    VTASERVE_REQUIRE_PEER(
        std::system("node --version > /dev/null 2>&1") == 0,
        "node not found: install nodejs (scripts/setup-debian.sh)");
    VTASERVE_REQUIRE_PEER(
        std::filesystem::exists(src +
                                "/tests/peer/node_modules/onnxruntime-node"),
        "onnxruntime-node not installed under "
            << src << "/tests/peer: run scripts/setup-peers.sh");
    dir_ = ::testing::TempDir() + "/zoo_ort_peer";
    std::filesystem::create_directories(dir_);
  }

  // Runs `model` on `image` ([1,3,S,S]) in ONNX Runtime; returns the output.
  std::vector<float> RunOrt(const onnx::ModelProto& model,
                            const std::vector<float>& image, int size,
                            const std::string& tag) {
    const std::string model_path = dir_ + "/" + tag + ".onnx";
    const std::string in_path = dir_ + "/" + tag + "_in.npy";
    const std::string out_path = dir_ + "/" + tag + "_out.npy";
    EXPECT_THAT(WriteModel(model, model_path), IsOk());
    WriteFloatNpy(in_path, image, {1, 3, size, size});
    const std::string cmd = absl::StrCat("node ", script_, " ", model_path, " ",
                                         in_path, " ", out_path);
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return ReadFloatNpy(out_path);
  }

  std::string script_, dir_;
};

double Cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  return dot / std::sqrt(na * nb);
}

TEST_F(ZooOrtPeerTest, ResNetFormsTrackTheFloatForwardPass) {
  ResNetSpec spec;
  spec.input_size = 64;
  spec.num_classes = 100;
  VTASERVE_ASSERT_OK_AND_ASSIGN(FloatResNet net, BuildFloatResNet(spec));
  // An image that is not one of the calibration images.
  const std::vector<float> image = CalibrationImage(99, 5, spec.input_size);
  const std::vector<float> reference = RunFloatResNet(net, image, nullptr);

  spec.format = ModelFormat::kFloat;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto fm, GenerateResNet(spec));
  const std::vector<float> f = RunOrt(fm, image, spec.input_size, "float");
  ASSERT_EQ(f.size(), reference.size());
  for (size_t i = 0; i < f.size(); ++i) {
    EXPECT_NEAR(f[i], reference[i], 1e-3 * (1 + std::fabs(reference[i])))
        << "logit " << i;
  }

  struct Form {
    ModelFormat format;
    bool uint8;
    const char* tag;
  };
  for (const Form& form : {Form{ModelFormat::kQdq, true, "qdq_u8"},
                           Form{ModelFormat::kQOperator, true, "qop_u8"},
                           Form{ModelFormat::kQdq, false, "qdq_s8"},
                           Form{ModelFormat::kQOperator, false, "qop_s8"}}) {
    SCOPED_TRACE(form.tag);
    spec.format = form.format;
    spec.uint8_activations = form.uint8;
    VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto qm, GenerateResNet(spec));
    const std::vector<float> q = RunOrt(qm, image, spec.input_size, form.tag);
    ASSERT_EQ(q.size(), reference.size());
    // The logits carry only the input-dependent part of the features (the
    // classifier is centered), so this measures quantization noise against
    // real signal: measured 0.955 (uint8) to 0.965 (int8 QOperator) here.
    // A wrong scale or zero point anywhere drops it far lower.
    const double cosine = Cosine(q, reference);
    std::printf("[ zoo ort  ] resnet18@64 %s: cosine vs float %.5f\n", form.tag,
                cosine);
    EXPECT_GT(cosine, 0.9);
  }
}

TEST_F(ZooOrtPeerTest, SoftmaxOutputIsAProbabilityVector) {
  ResNetSpec spec;
  spec.input_size = 32;
  spec.num_classes = 10;
  spec.softmax = true;
  spec.explicit_relu = true;
  VTASERVE_ASSERT_OK_AND_ASSIGN(onnx::ModelProto m, GenerateResNet(spec));
  const std::vector<float> p =
      RunOrt(m, CalibrationImage(3, 0, 32), 32, "softmax");
  ASSERT_EQ(p.size(), 10u);
  double sum = 0;
  for (float v : p) {
    EXPECT_GE(v, 0.0f);
    sum += v;
  }
  EXPECT_NEAR(sum, 1.0, 1e-5);
}

}  // namespace
}  // namespace vtaserve::zoo
