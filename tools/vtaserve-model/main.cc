// vtaserve-model: writes a generated ONNX model of the built-in zoo.
//   vtaserve-model resnet18|resnet34|resnet50|conv --format qdq|qoperator|float
//       --input-size 224 --seed 1 [--int8] [--explicit-relu] [--softmax]
//       [--num-classes 1000] [--calibration-images 2] -o model.onnx
//   conv: --in-channels 3 --out-channels 64 --kernel 7 --stride 2 --pad 3
//       [--relu] [--per-tensor] [--input-zero-point 128]
//   vtaserve-model image --input-size 224 --seed 1 --image-index 0 -o x.npy
//       writes a calibration image (float32 [1,3,S,S], normalized ImageNet
//       space) as a numpy .npy file.
// Flag names accept dashes or underscores.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/zoo/float_resnet.h"
#include "engine/zoo/resnet_generator.h"

constexpr int kAutoZeroPoint = -1000;

ABSL_FLAG(std::string, format, "qdq", "qdq, qoperator or float");
ABSL_FLAG(int, input_size, 224, "square input size (conv: height and width)");
ABSL_FLAG(uint64_t, seed, 1, "weight and calibration seed");
ABSL_FLAG(bool, int8, false, "int8 symmetric activations instead of uint8");
ABSL_FLAG(bool, explicit_relu, false, "QDQ: keep Relu nodes before Q");
ABSL_FLAG(bool, softmax, false, "append a Softmax (output 'probabilities')");
ABSL_FLAG(int, num_classes, 1000, "classifier outputs");
ABSL_FLAG(int, calibration_images, 2, "images for activation calibration");
ABSL_FLAG(std::string, o, "", "output .onnx path (required)");
ABSL_FLAG(int, in_channels, 3, "conv: input channels");
ABSL_FLAG(int, out_channels, 64, "conv: output channels");
ABSL_FLAG(int, kernel, 7, "conv: square kernel size");
ABSL_FLAG(int, stride, 2, "conv: stride");
ABSL_FLAG(int, pad, 3, "conv: padding on every side");
ABSL_FLAG(bool, relu, false, "conv: fuse a ReLU");
ABSL_FLAG(bool, per_tensor, false, "conv: one weight scale for all channels");
ABSL_FLAG(int, image_index, 0, "image: index in the calibration set of --seed");
ABSL_FLAG(int, input_zero_point, kAutoZeroPoint,
          "conv: input zero point (default 128 for uint8, 0 for int8)");

namespace {

using vtaserve::zoo::ModelFormat;

// Writes a float32 [1,3,S,S] calibration image as a .npy file (v1.0).
absl::Status WriteImageNpy(int size, uint64_t seed, int index,
                           const std::string& path) {
  if (size < 1 || size > 4096) {
    return absl::InvalidArgumentError("--input-size must be in [1, 4096]");
  }
  const std::vector<float> img =
      vtaserve::zoo::CalibrationImage(seed, index, size);
  std::string header =
      absl::StrCat("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, ",
                   size, ", ", size, "), }");
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::string bytes = "\x93NUMPY";
  bytes.push_back('\x01');
  bytes.push_back('\x00');
  bytes.push_back(static_cast<char>(header.size() & 0xff));
  bytes.push_back(static_cast<char>(header.size() >> 8));
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(img.data()),
               img.size() * sizeof(float));
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr)
    return absl::InternalError(absl::StrCat("cannot open ", path));
  const size_t n = std::fwrite(bytes.data(), 1, bytes.size(), f);
  if (std::fclose(f) != 0 || n != bytes.size()) {
    return absl::InternalError(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

absl::Status Run(const std::vector<char*>& args) {
  if (args.size() != 2) {
    return absl::InvalidArgumentError(
        "expected exactly one model kind: resnet18, resnet34, resnet50 or "
        "conv");
  }
  const std::string kind = args[1];
  const std::string path = absl::GetFlag(FLAGS_o);
  if (path.empty()) return absl::InvalidArgumentError("-o <path> is required");
  absl::StatusOr<ModelFormat> format =
      vtaserve::zoo::ParseModelFormat(absl::GetFlag(FLAGS_format));
  if (!format.ok()) return format.status();
  if (kind == "image") {
    return WriteImageNpy(absl::GetFlag(FLAGS_input_size),
                         absl::GetFlag(FLAGS_seed),
                         absl::GetFlag(FLAGS_image_index), path);
  }

  const absl::Time start = absl::Now();
  absl::StatusOr<onnx::ModelProto> model;
  if (kind == "conv") {
    vtaserve::zoo::ConvSpec spec;
    spec.in_channels = absl::GetFlag(FLAGS_in_channels);
    spec.out_channels = absl::GetFlag(FLAGS_out_channels);
    spec.input_h = spec.input_w = absl::GetFlag(FLAGS_input_size);
    spec.kernel = absl::GetFlag(FLAGS_kernel);
    spec.stride = absl::GetFlag(FLAGS_stride);
    spec.pad = absl::GetFlag(FLAGS_pad);
    spec.format = *format;
    spec.uint8_input = !absl::GetFlag(FLAGS_int8);
    const int zp = absl::GetFlag(FLAGS_input_zero_point);
    spec.input_zero_point =
        zp != kAutoZeroPoint ? zp : (spec.uint8_input ? 128 : 0);
    spec.relu = absl::GetFlag(FLAGS_relu);
    spec.explicit_relu = absl::GetFlag(FLAGS_explicit_relu);
    spec.per_channel = !absl::GetFlag(FLAGS_per_tensor);
    spec.seed = absl::GetFlag(FLAGS_seed);
    model = vtaserve::zoo::GenerateConv(spec);
  } else if (kind == "resnet18" || kind == "resnet34" || kind == "resnet50") {
    vtaserve::zoo::ResNetSpec spec;
    spec.depth = std::stoi(kind.substr(6));
    spec.input_size = absl::GetFlag(FLAGS_input_size);
    spec.num_classes = absl::GetFlag(FLAGS_num_classes);
    spec.format = *format;
    spec.seed = absl::GetFlag(FLAGS_seed);
    spec.uint8_activations = !absl::GetFlag(FLAGS_int8);
    spec.explicit_relu = absl::GetFlag(FLAGS_explicit_relu);
    spec.softmax = absl::GetFlag(FLAGS_softmax);
    spec.calibration_images = absl::GetFlag(FLAGS_calibration_images);
    model = vtaserve::zoo::GenerateResNet(spec);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown model kind '", kind,
                     "' (expected resnet18, resnet34, resnet50 or conv)"));
  }
  if (!model.ok()) return model.status();
  const absl::Duration generated = absl::Now() - start;
  absl::Status s = vtaserve::zoo::WriteModel(*model, path);
  if (!s.ok()) return s;
  std::fprintf(stderr, "wrote %s (%s, %d nodes, %zu bytes) in %.2f s\n",
               path.c_str(), kind.c_str(), model->graph().node_size(),
               model->ByteSizeLong(), absl::ToDoubleSeconds(generated));
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  // absl flag names use underscores; accept --input-size as --input_size.
  std::vector<std::string> storage(argv, argv + argc);
  std::vector<char*> fixed;
  for (std::string& arg : storage) {
    if (arg.size() > 2 && arg[0] == '-') {
      const size_t start = arg.find_first_not_of('-');
      const size_t end = std::min(arg.find('='), arg.size());
      for (size_t i = start; i < end; ++i) {
        if (arg[i] == '-') arg[i] = '_';
      }
    }
    fixed.push_back(arg.data());
  }
  absl::SetProgramUsageMessage(
      "vtaserve-model resnet18|resnet34|resnet50|conv --format "
      "qdq|qoperator|float --input-size 224 --seed 1 [--int8] "
      "[--explicit-relu] [--softmax] -o model.onnx");
  std::vector<char*> args =
      absl::ParseCommandLine(static_cast<int>(fixed.size()), fixed.data());
  const absl::Status s = Run(args);
  if (!s.ok()) {
    std::fprintf(stderr, "vtaserve-model: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
